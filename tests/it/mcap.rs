//! MCAP files end to end: every file of ../shared/testdata/mcap (the MCAP conformance
//! files and rosbag2's, copied to tests/data) ingests with MANIFEST.json's topics,
//! message counts and time ranges; ROS 2 (CDR) topics are decoded into tables; a file cut
//! short keeps its complete messages (a warning; an error with --strict); a corrupt chunk
//! is an error naming the byte and leaves the store unchanged; mutated files never panic.
//! Decoded values are checked against the Python `mcap_ros2` reader by
//! tests/compare_rosbags.py.

use crate::common::{csv_rows, fails, manifest, ok, snapshot};

#[test]
fn every_mcap_file_matches_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    ok(&store, &["init"]);
    ok(&store, &["ingest", "tests/data/mcap"]);
    let m = manifest();
    let mut files = 0;
    for (key, facts) in m
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("mcap/"))
    {
        files += 1;
        let path = format!("tests/data/{key}");
        let q = format!(
            "SELECT t.topic, t.msg_type, t.msg_count, arrow_cast(t.first_time, 'Int64'), arrow_cast(t.last_time, 'Int64') \
             FROM topics t JOIN files f USING (file_id) WHERE f.path = '{path}' AND t.msg_count > 0 ORDER BY t.topic"
        );
        let rows = csv_rows(&ok(&store, &["sql", "--format", "csv", &q]));
        let topics = facts["topics"].as_object().unwrap();
        assert_eq!(rows.len(), topics.len(), "{path}: {rows:?}");
        for r in &rows {
            let want = &topics[&r[0]];
            assert_eq!(r[1], want["msg_type"].as_str().unwrap(), "{path} {}", r[0]);
            assert_eq!(r[2], want["msg_count"].to_string(), "{path} {}", r[0]);
            assert_eq!(r[3], want["first_time_ns"].to_string(), "{path} {}", r[0]);
            assert_eq!(r[4], want["last_time_ns"].to_string(), "{path} {}", r[0]);
        }
        let q = format!(
            "SELECT count(*), coalesce(sum(m.size_bytes), 0) FROM messages m JOIN files f USING (file_id) WHERE f.path = '{path}'"
        );
        let n = csv_rows(&ok(&store, &["sql", "--format", "csv", &q]));
        assert_eq!(n[0][0], facts["message_count"].to_string(), "{path}");
        let bytes: u64 = topics.values().map(|t| t["bytes"].as_u64().unwrap()).sum();
        assert_eq!(n[0][1], bytes.to_string(), "{path}");
        // ROS 2 topics are decoded: one table row per message of this file.
        if facts["profile"] == "ros2" {
            for (topic, want) in topics {
                let q = format!("SELECT count(*) FROM \"{topic}\" t JOIN files f USING (file_id) WHERE f.path = '{path}'");
                let n = csv_rows(&ok(&store, &["sql", "--format", "csv", &q]));
                assert_eq!(n[0][0], want["msg_count"].to_string(), "{path} {topic}");
            }
        }
    }
    assert_eq!(files, 26);
    conformance_messages_match_their_json(&store);
    // A nested array of structs, bounded by the CDR alignment rules (the int32 after the
    // arrays must line up).
    let out = ok(
        &store,
        &[
            "sql",
            "--format",
            "csv",
            "SELECT string_values[2], basic_types_values[1]['int32_value'], alignment_check, \
             uint64_values_default[2] FROM \"/array_topic\" ORDER BY log_time LIMIT 1",
        ],
    );
    assert_eq!(
        csv_rows(&out)[0],
        ["Complex Hello2", "0", "0", "1"],
        "{out}"
    );
}

/// tests/data/gen/steps.mcap has nine lz4 chunks; half the file keeps the first ones.
/// The conformance suite's JSON lists every record of each file: the raw messages bagbase
/// keeps (their encoding is not one it decodes) have the same log times and bytes.
fn conformance_messages_match_their_json(store: &std::path::Path) {
    let mut checked = 0;
    for dir in std::fs::read_dir("tests/data/mcap/conformance").unwrap() {
        for e in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let j: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            let mut want: Vec<(u64, String)> = Vec::new();
            for r in j["records"].as_array().unwrap() {
                if r["type"] != "Message" {
                    continue;
                }
                let field = |n: &str| {
                    r["fields"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|f| f[0] == n)
                        .map(|f| f[1].clone())
                        .unwrap()
                };
                let bytes: String = field("data")
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| format!("{:02x}", b.as_str().unwrap().parse::<u8>().unwrap()))
                    .collect();
                let t: u64 = field("log_time").as_str().unwrap().parse().unwrap();
                want.push((t, format!("{t},{bytes}")));
            }
            want.sort_by_key(|w| w.0);
            let want: Vec<String> = want.into_iter().map(|w| w.1).collect();
            let path = p.with_extension("mcap");
            let q = format!(
                "SELECT arrow_cast(m.log_time, 'Int64'), encode(m.data, 'hex') FROM messages m JOIN files f USING (file_id) \
                 WHERE f.path = '{}' ORDER BY m.log_time, m.ordinal",
                path.display()
            );
            let out = ok(store, &["sql", "--format", "csv", &q]);
            let got: Vec<String> = out.lines().skip(1).map(String::from).collect();
            assert_eq!(got, want, "{}", path.display());
            checked += 1;
        }
    }
    assert_eq!(checked, 19);
}

#[test]
fn an_mcap_cut_short_keeps_its_complete_messages() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read("tests/data/gen/steps.mcap").unwrap();
    let cut = dir.path().join("cut.mcap");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let store = dir.path().join("s");
    ok(&store, &["init"]);
    let before = snapshot(&store);
    let err = fails(&store, &["ingest", "--strict", cut.to_str().unwrap()]);
    assert!(
        err.contains("cut short: usable data ends at byte") && err.contains("--strict"),
        "{err}"
    );
    assert_eq!(snapshot(&store), before, "a failed ingest changes nothing");
    let out = crate::common::bagbase(&store, &["ingest", cut.to_str().unwrap()]);
    assert!(out.status.success());
    let warn = String::from_utf8_lossy(&out.stderr);
    assert!(
        warn.contains("cut short: usable data ends at byte"),
        "{warn}"
    );
    let n = csv_rows(&ok(
        &store,
        &[
            "sql",
            "--format",
            "csv",
            "SELECT count(*) FROM \"/joint_states\"",
        ],
    ));
    let n: u64 = n[0][0].parse().unwrap();
    assert!(n > 0 && n < 65, "{n} of 65 messages");
}

#[test]
fn a_corrupt_chunk_is_an_error_naming_the_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read("tests/data/mcap/ros2-rosbag2/cdr_test_0.mcap").unwrap();
    // The first chunk record (opcode 0x06) after the magic and header.
    let at = bytes[8..]
        .iter()
        .position(|b| *b == 0x06)
        .map(|p| p + 8)
        .unwrap();
    let last = bytes.len() - 200;
    bytes[last.min(at + 120)] ^= 0x55;
    let bad = dir.path().join("bad.mcap");
    std::fs::write(&bad, &bytes).unwrap();
    let store = dir.path().join("s");
    ok(&store, &["init"]);
    let before = snapshot(&store);
    let err = fails(&store, &["ingest", bad.to_str().unwrap()]);
    assert!(err.contains("bad.mcap") && err.contains("byte "), "{err}");
    assert!(err.contains("CRC") || err.contains("expected"), "{err}");
    assert_eq!(snapshot(&store), before);
}

/// Bit flips and cuts of every test file: the reader answers Ok or Err, never panics.
#[test]
fn mutated_mcap_files_never_panic() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for dir in [
        "tests/data/mcap/ros2-rosbag2",
        "tests/data/mcap/conformance/TenMessages",
    ] {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "mcap") {
                continue;
            }
            let orig = std::fs::read(&p).unwrap();
            assert!(bagbase::ingest::mcap::fuzz::scan_and_decode(&orig), "{p:?}");
            for _ in 0..200 {
                let mut b = orig.clone();
                for _ in 0..1 + next() % 4 {
                    let i = (next() % b.len() as u64) as usize;
                    b[i] ^= 1 << (next() % 8);
                }
                let cut = (next() % (b.len() as u64 + 1)) as usize;
                let _ = bagbase::ingest::mcap::fuzz::scan_and_decode(&b);
                let _ = bagbase::ingest::mcap::fuzz::scan_and_decode(&b[..cut]);
            }
        }
    }
}
