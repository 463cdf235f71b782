//! Bag → LeRobot end to end (issue "Episodes and steps", acceptance 4): a generated
//! robot bag (camera 1024×576 rgb8 at 30 Hz — 1.77 MB a frame, so ≈7 GB holds ≈4,080
//! frames as in the seed scenario — IMU 200 Hz, joint_states 100 Hz, tf 50 Hz) turned
//! into a LeRobot dataset: `bagbase init` + `ingest --config` (camera as the main topic,
//! joint positions and IMU acceleration as sources) + `export --format lerobot`, against
//! the straightforward Python `rosbags` + pandas script (benches/lerobot_peer.py) on the
//! same bag in the same run. FPS = camera frames / wall time of the whole pipeline;
//! peak RSS from wait4 (the largest of the pipeline's processes).
//!
//! The peer runs under `ulimit -v` of 20 GiB (the machine has 24 GiB): holding a 7 GB
//! bag's frames in pandas does not fit, and it is reported as such, not left to the
//! OOM killer.
//!
//! cargo bench --bench lerobot        (BENCH_LEROBOT_MIB=700,7168 by default;
//! BENCH_LEROBOT_PEER=0 skips the Python script)

mod common;

use common::bagwriter::Compression;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};

const CONFIG: &str = r#"
main_topic = "/camera/image_raw"
[[source]]
name = "observation.images.camera"
topic = "/camera/image_raw"
[[source]]
name = "observation.state"
topic = "/joint_states"
field = "position"
[[source]]
name = "observation.imu_acc"
topic = "/imu/data"
field = "linear_acceleration"
"#;

fn bag_cached(path: &Path, mib: u64) -> u64 {
    let marker = path.with_extension("frames");
    if let (Ok(n), true) = (std::fs::read_to_string(&marker), path.exists()) {
        return n.trim().parse().unwrap();
    }
    let frames = robot::write_robot_bag_sized(path, mib << 20, Compression::None, 1024, 576);
    std::fs::write(&marker, frames.to_string()).unwrap();
    frames
}

/// Address space the peer may use, KiB.
const PEER_LIMIT_KIB: u64 = 20 << 20;

/// Runs the peer under the limit: its run, and whether it finished.
fn peer(script: &str, bag: &Path, out: &Path) -> (Run, bool) {
    try_measure(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -v {PEER_LIMIT_KIB}; exec python3 \"$0\" \"$1\" \"$2\""
            ))
            .arg(script)
            .arg(bag)
            .arg(out)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

fn bagbase(store: &Path, args: &[&str]) -> Run {
    measure(
        Command::new(bagbase_bin())
            .arg("--store")
            .arg(store)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

fn main() {
    let sizes: Vec<u64> = std::env::var("BENCH_LEROBOT_MIB")
        .unwrap_or_else(|_| "700,7168".into())
        .split(',')
        .map(|s| s.trim().parse().expect("sizes in MiB"))
        .collect();
    let peer_on = std::env::var("BENCH_LEROBOT_PEER").map_or(true, |v| v != "0");
    let dir = scratch();
    let config = dir.join("lerobot-align.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let peer_script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/lerobot_peer.py");
    println!("| bag | frames | contender | ingest (s) | export (s) | total (s) | FPS | peak RSS (MiB) | RSS ingest / export (MiB) | FPS vs peer |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for mib in sizes {
        let bag = dir.join(format!("lerobot-{mib}m.bag"));
        let frames = bag_cached(&bag, mib);
        let bytes = std::fs::metadata(&bag).unwrap().len();
        let store = dir.join(format!("lerobot-store-{mib}"));
        let out = dir.join(format!("lerobot-out-{mib}"));
        let peer_out = dir.join(format!("lerobot-peer-{mib}"));
        for p in [&store, &out, &peer_out] {
            let _ = std::fs::remove_dir_all(p);
        }
        warm(&bag);
        let peer_result = peer_on.then(|| peer(peer_script, &bag, &peer_out));
        let _ = std::fs::remove_dir_all(&peer_out);
        let peer_run = peer_result.as_ref().filter(|(_, ok)| *ok).map(|(r, _)| r);
        warm(&bag);
        let init = bagbase(&store, &["init"]);
        let ingest = bagbase(
            &store,
            &[
                "ingest",
                bag.to_str().unwrap(),
                "--config",
                config.to_str().unwrap(),
            ],
        );
        let export = bagbase(
            &store,
            &["export", "--format", "lerobot", out.to_str().unwrap()],
        );
        let total = init.wall + ingest.wall + export.wall;
        let rss = [init.max_rss_kib, ingest.max_rss_kib, export.max_rss_kib]
            .into_iter()
            .max()
            .unwrap();
        let fps = frames as f64 / total.as_secs_f64();
        let peer_fps = peer_run
            .as_ref()
            .map(|r| frames as f64 / r.wall.as_secs_f64());
        let ratio = peer_fps.map_or("-".into(), |p| format!("{:.1}", fps / p));
        if let Some((r, false)) = &peer_result {
            println!(
                "| {} MiB | {frames} | rosbags + pandas (Python) | - | - | failed after {:.1} | - | > {} (out of memory) | - | - |",
                bytes >> 20,
                r.wall.as_secs_f64(),
                PEER_LIMIT_KIB >> 10
            );
        }
        if let Some(r) = &peer_run {
            println!(
                "| {} MiB | {frames} | rosbags + pandas (Python) | - | - | {:.1} | {:.1} | {:.0} | - | 1.0 |",
                bytes >> 20,
                r.wall.as_secs_f64(),
                frames as f64 / r.wall.as_secs_f64(),
                r.max_rss_kib as f64 / 1024.0
            );
        }
        println!(
            "| {} MiB | {frames} | bagbase ingest + export | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} / {:.0} | {ratio} |",
            bytes >> 20,
            ingest.wall.as_secs_f64(),
            export.wall.as_secs_f64(),
            total.as_secs_f64(),
            fps,
            rss as f64 / 1024.0,
            ingest.max_rss_kib as f64 / 1024.0,
            export.max_rss_kib as f64 / 1024.0
        );
        for p in [&store, &out] {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}
