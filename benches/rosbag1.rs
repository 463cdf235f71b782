//! ROS1 bag ingest (issue "ROS1 bags", acceptance 3): a generated robot recording
//! (camera 640×480 rgb8 30 Hz, IMU 200 Hz, joint_states 100 Hz, tf 50 Hz) of 200 MiB
//! and 2 GiB, uncompressed, plus lz4 and bz2 variants of the small one. Same file, same
//! run: `bagbase ingest` (store + decode every message into tables), `zstd -3 -T2`, and
//! the Python `rosbags` library reading and deserializing every message. Peak RSS from
//! wait4. Then two queries timed as whole `bagbase sql` processes.
//!
//! cargo bench --bench rosbag1           (BENCH_BAG_MIB=200,2048 by default)

mod common;

use common::bagwriter::Compression;
use common::*;
use std::process::{Command, Stdio};

fn main() {
    let sizes: Vec<u64> = std::env::var("BENCH_BAG_MIB")
        .unwrap_or_else(|_| "200,2048".into())
        .split(',')
        .map(|s| s.trim().parse().expect("sizes in MiB"))
        .collect();
    let dir = scratch();
    let peer = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/rosbags_read.py");
    println!("| bag | frames | contender | time (s) | MiB/s | peak RSS (MiB) | vs zstd -3 -T2 |");
    println!("|---|---|---|---|---|---|---|");
    let mut cases: Vec<(u64, Compression, &str)> = sizes
        .iter()
        .map(|s| (*s, Compression::None, "none"))
        .collect();
    if let Some(small) = sizes.first() {
        cases.push((*small, Compression::Lz4, "lz4"));
        cases.push((*small, Compression::Bz2, "bz2"));
    }
    for (mib, comp, cname) in cases {
        let bag = dir.join(format!("robot-{mib}m-{cname}.bag"));
        let frames = write_robot_bag_cached(&bag, mib, comp);
        let bytes = std::fs::metadata(&bag).unwrap().len();
        warm(&bag);
        let rosbags = measure(
            Command::new("python3")
                .arg(peer)
                .arg(&bag)
                .stdout(Stdio::null()),
        );
        let store = dir.join(format!("bagstore-{mib}-{cname}"));
        let (zstd, ingest) = zstd_and_ingest(&bag, &store);
        let z = mib_s(bytes, zstd.wall);
        for (name, r) in [
            ("zstd -3 -T2", &zstd),
            ("rosbags (Python) read+deserialize", &rosbags),
            ("bagbase ingest", &ingest),
        ] {
            println!(
                "| {} MiB {cname} | {frames} | {name} | {:.2} | {:.0} | {:.1} | {:.2} |",
                bytes >> 20,
                r.wall.as_secs_f64(),
                mib_s(bytes, r.wall),
                r.max_rss_kib as f64 / 1024.0,
                mib_s(bytes, r.wall) / z
            );
        }
        if comp == Compression::None {
            let t0 = "TIMESTAMP '2023-11-14T22:13:25'";
            for q in [
                "SELECT count(*), avg(linear_acceleration.x) FROM \"/imu/data\"".to_string(),
                format!("SELECT count(data), sum(height * step) FROM \"/camera/image_raw\" WHERE log_time >= {t0} AND log_time < {t0} + INTERVAL '1 second'"),
            ] {
                let r = measure(Command::new(bagbase_bin()).arg("--store").arg(&store).args(["sql", &q]).stdout(Stdio::null()));
                println!("| {} MiB | | `{q}` | {:.3} | | {:.1} | |", bytes >> 20, r.wall.as_secs_f64(), r.max_rss_kib as f64 / 1024.0);
            }
        }
        let _ = std::fs::remove_dir_all(&store);
    }
}

fn write_robot_bag_cached(path: &std::path::Path, mib: u64, comp: Compression) -> u64 {
    let marker = path.with_extension("frames");
    if let (Ok(n), true) = (std::fs::read_to_string(&marker), path.exists()) {
        return n.trim().parse().unwrap();
    }
    let frames = robot::write_robot_bag(path, mib << 20, comp);
    std::fs::write(&marker, frames.to_string()).unwrap();
    frames
}
