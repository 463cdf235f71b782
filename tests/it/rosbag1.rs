//! ROS1 bags end to end: every test bag from ../shared/testdata (copied to tests/data)
//! ingests with MANIFEST.json's topic and message counts, the empty file gets a clear
//! error, export gives back the same SHA-256, and bags cut short keep every complete
//! message (a warning; an error with --strict).

use crate::common::{bagbase, csv_rows, fails, manifest, ok};
use bagbase::ingest::rosbag1::record::{RecordReader, MAGIC, OP_CHUNK, OP_MSG_DATA};
use std::path::Path;

const BAGS: &str = "tests/data/ros1/rosbag.js";

#[test]
fn every_bag_matches_the_manifest_and_exports_identically() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    ok(&store, &["init"]);
    let m = manifest();
    for (key, facts) in m
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("ros1/"))
    {
        let path = format!("tests/data/{key}");
        if !facts["readable"].as_bool().unwrap() {
            let err = fails(&store, &["ingest", &path]);
            assert!(
                err.contains(&path) && err.contains("byte 0: expected a ROS bag"),
                "{err}"
            );
            continue;
        }
        ok(&store, &["ingest", &path]);
        let q = format!(
            "SELECT t.topic, t.msg_type, t.msg_count FROM topics t JOIN files f USING (file_id) WHERE f.path = '{path}' ORDER BY t.topic"
        );
        let rows = csv_rows(&ok(&store, &["sql", "--format", "csv", &q]));
        let topics = facts["topics"].as_object().unwrap();
        assert_eq!(rows.len(), topics.len(), "{path}");
        for r in &rows {
            let want = &topics[&r[0]];
            assert_eq!(r[1], want["msg_type"].as_str().unwrap(), "{path} {}", r[0]);
            assert_eq!(r[2], want["msg_count"].to_string(), "{path} {}", r[0]);
        }
        let q = format!(
            "SELECT count(*) FROM messages m JOIN files f USING (file_id) WHERE f.path = '{path}'"
        );
        let n = csv_rows(&ok(&store, &["sql", "--format", "csv", &q]));
        assert_eq!(n[0][0], facts["message_count"].to_string(), "{path}");
        // Every decoded topic table holds as many rows of this file as the topic has.
        for (topic, want) in topics {
            let q = format!("SELECT count(*) FROM \"{topic}\" t JOIN files f USING (file_id) WHERE f.path = '{path}'");
            let n = csv_rows(&ok(&store, &["sql", "--format", "csv", &q]));
            assert_eq!(n[0][0], want["msg_count"].to_string(), "{path} {topic}");
        }
    }
    let out = dir.path().join("out");
    ok(
        &store,
        &[
            "export",
            "--ref",
            "main",
            "--format",
            "bag",
            out.to_str().unwrap(),
        ],
    );
    for (key, facts) in m
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, f)| k.starts_with("ros1/") && f["readable"].as_bool().unwrap())
    {
        let bytes = std::fs::read(out.join("tests/data").join(key)).unwrap();
        let sha = bagbase::store::Id::of(&bytes).hex();
        assert_eq!(sha, facts["sha256"].as_str().unwrap(), "{key}");
    }
    let fsck = ok(&store, &["fsck"]);
    assert!(fsck.contains("no damage found"), "{fsck}");
}

/// File offsets where each message record of an uncompressed bag ends.
fn message_ends(bag: &[u8]) -> Vec<u64> {
    let mut ends = Vec::new();
    let mut rr = RecordReader::new(&bag[MAGIC.len()..], MAGIC.len() as u64);
    while let Ok(Some(rec)) = rr.next_record() {
        if rec.header.op() == Some(OP_CHUNK) {
            let header_len = u32::from_le_bytes(
                bag[rec.offset as usize..rec.offset as usize + 4]
                    .try_into()
                    .unwrap(),
            ) as u64;
            let data_start = rec.offset + 4 + header_len + 4;
            let mut inner = RecordReader::new(&rec.data[..], 0);
            while let Ok(Some(r)) = inner.next_record() {
                if r.header.op() == Some(OP_MSG_DATA) {
                    ends.push(data_start + inner.offset());
                }
            }
        }
    }
    ends
}

#[test]
fn bags_cut_short_keep_their_complete_messages() {
    let bag = std::fs::read(Path::new(BAGS).join("example.bag")).unwrap();
    let ends = message_ends(&bag);
    assert_eq!(ends.len(), 8647);
    let dir = tempfile::tempdir().unwrap();
    let mut x: u64 = 0x9E3779B97F4A7C15;
    for i in 0..10 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let cut = 4200 + (x % (bag.len() as u64 - 4200));
        let file = dir.path().join(format!("cut-{i}.bag"));
        std::fs::write(&file, &bag[..cut as usize]).unwrap();
        let store = dir.path().join(format!("s{i}"));
        ok(&store, &["init"]);
        let out = bagbase(&store, &["ingest", file.to_str().unwrap()]);
        assert!(out.status.success(), "cut at {cut}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("warning:")
                && err.contains("cut short")
                && err.contains(file.to_str().unwrap()),
            "{err}"
        );
        let want = ends.iter().filter(|e| **e <= cut).count();
        let got = csv_rows(&ok(
            &store,
            &["sql", "--format", "csv", "SELECT count(*) FROM messages"],
        ));
        let got: usize = got.first().map(|r| r[0].parse().unwrap()).unwrap_or(0);
        assert_eq!(got, want, "cut at {cut}");
        let strict = dir.path().join(format!("t{i}"));
        ok(&strict, &["init"]);
        let err = fails(&strict, &["ingest", "--strict", file.to_str().unwrap()]);
        assert!(
            err.contains("cut short") && err.contains("--strict"),
            "{err}"
        );
        let files = ok(
            &strict,
            &["sql", "--format", "csv", "SELECT count(*) FROM files"],
        );
        assert_eq!(
            csv_rows(&files)[0][0],
            "0",
            "a failed --strict ingest left a file behind"
        );
    }
}

#[test]
fn bad_bags_get_clear_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    ok(&store, &["init"]);
    let bag = std::fs::read(Path::new(BAGS).join("example.bag")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "v12.bag",
            b"#ROSBAG V1.2\nxxxxxxxx".to_vec(),
            "found version 1.2",
        ),
        (
            "notabag.bag",
            b"PK\x03\x04 zip file".to_vec(),
            "expected the magic line '#ROSBAG V2.0'",
        ),
        (
            "badop.bag",
            {
                let mut b = bag.clone();
                // The first record's header: corrupt its length to something huge.
                b[13..17].copy_from_slice(&u32::MAX.to_le_bytes());
                b
            },
            "byte 13: expected a record header length of at most",
        ),
    ];
    for (name, bytes, want) in cases {
        let f = dir.path().join(name);
        std::fs::write(&f, bytes).unwrap();
        let err = fails(&store, &["ingest", f.to_str().unwrap()]);
        assert!(err.contains(name) && err.contains(want), "{name}: {err}");
    }
    let files = ok(
        &store,
        &["sql", "--format", "csv", "SELECT count(*) FROM files"],
    );
    assert_eq!(csv_rows(&files)[0][0], "0");
}

/// Thousands of corrupted and truncated bags through the whole decoding path: each is
/// accepted or refused, none panics (the fuzz targets in fuzz/ go further).
#[test]
fn mutated_bags_never_panic() {
    use bagbase::ingest::rosbag1::fuzz::scan_and_decode;
    for name in ["example-unsorted-chunks.bag", "no-messages.bag"] {
        let good = std::fs::read(Path::new(BAGS).join(name)).unwrap();
        assert!(scan_and_decode(&good), "{name}");
        let mut x: u64 = 0x2545F4914F6CDD1D;
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut b = good.clone();
            for k in 0..(1 + x % 4) {
                let at = ((x >> (8 * k)) as usize) % b.len();
                b[at] = (x >> 32) as u8 ^ b[at].rotate_left(k as u32 + 1);
            }
            let _ = scan_and_decode(&b);
            let _ = scan_and_decode(&good[..(x as usize) % good.len()]);
        }
    }
}

/// Steps are gathered in runs whose messages lie in one segment of each source
/// (src/ingest/steps/build.rs, `run_end`), so a batch of steps does not load every
/// segment of a fast topic: a 200 Hz IMU of about 6,000 rows behind 30 Hz camera steps
/// spans several segments here, and every step must still hold the IMU message
/// nearest to it (the earlier on a tie), as computed from the `/imu/data` table.
#[test]
fn steps_hold_the_nearest_message_across_segments() {
    use crate::benchgen::{bagwriter::Compression, robot};
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let bag = dir.path().join("robot.bag");
    robot::write_robot_bag_sized(&bag, 4 << 20, Compression::None, 8, 6);
    ok(&store, &["init"]);
    ok(&store, &["ingest", bag.to_str().unwrap(), "-m", "robot"]);
    let q = |sql: &str| -> Vec<(i64, Option<i64>)> {
        csv_rows(&ok(&store, &["sql", "--format", "csv", sql]))
            .into_iter()
            .map(|r| (r[0].parse().unwrap(), r[1].parse().ok()))
            .collect()
    };
    let imu = q(
        "SELECT arrow_cast(log_time, 'Int64'), header['seq'] FROM \"/imu/data\" ORDER BY log_time",
    );
    let steps = q("SELECT arrow_cast(timestamp, 'Int64'), imu_data['header']['seq'] FROM steps ORDER BY step_index");
    assert!(imu.len() > 5000, "{} IMU rows", imu.len());
    assert!(steps.len() > 800, "{} steps", steps.len());
    let mut held = 0;
    for (t, seq) in &steps {
        // The nearest IMU message: the last at or before t, or the first after it.
        let after = imu.partition_point(|(it, _)| it <= t);
        let mut best = None;
        for (it, s) in imu[after.saturating_sub(1)..(after + 1).min(imu.len())].iter() {
            if best.is_none_or(|(d, _)| (it - t).abs() < d) {
                best = Some(((it - t).abs(), s.unwrap()));
            }
        }
        let (_, want) = best.unwrap();
        if let Some(seq) = seq {
            assert_eq!(*seq, want, "step at {t}");
            held += 1;
        }
    }
    assert!(
        held > steps.len() * 9 / 10,
        "{held} of {} steps hold an IMU value",
        steps.len()
    );
}
