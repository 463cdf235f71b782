//! Point lookups in process (issue "PostgreSQL wire server", acceptance 4, the part
//! that is bagbase's own): `SELECT obs_x, obs_y, action FROM steps WHERE episode_id =
//! e AND step_index = s` on the serve bench's steps table (BENCH_LOOKUP_EPISODES ×
//! 1,000 rows, 10 M by default, segments of 256,000 rows), through `Store::sql`:
//! - the same statement again (its plan kept, src/catalog/plans.rs);
//! - new literals each time (one generic plan bound per run, src/catalog/template.rs);
//! - new literals planned from scratch in a new session (what every such statement
//!   cost before generic plans).
//!
//! Medians and 10th/90th percentiles of BENCH_LOOKUP_RUNS runs (300) each, µs.
//!
//! cargo bench --bench lookup
//! BENCH_LOOKUP_CASE=generic cargo bench --bench lookup   # one case (a part of its name), e.g. to profile

mod common;

use bagbase::Store;
use std::time::Instant;

fn main() {
    let episodes = common::env_or("BENCH_LOOKUP_EPISODES", 10_000) as i64;
    let runs = common::env_or("BENCH_LOOKUP_RUNS", 300) as i64;
    let dir = common::scratch().join(format!("lookup-{episodes}"));
    let store_dir = dir.join("store");
    if !store_dir.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::init(&store_dir, Default::default()).unwrap();
        common::steps::build_packed(&store, "main", "steps", episodes);
        store.commit("main", "steps").unwrap();
    }
    let store = Store::open(&store_dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let q = |e: i64, s: i64| {
        format!(
            "SELECT obs_x, obs_y, action FROM steps WHERE episode_id = {e} AND step_index = {s}"
        )
    };
    let pick = |i: i64| q((i * 7919) % episodes, (i * 31) % common::steps::STEPS);
    println!(
        "point lookups, {} rows, {runs} runs each (µs):\n",
        episodes * common::steps::STEPS
    );
    println!("| case | median | p10 | p90 |");
    println!("|---|---|---|---|");
    rt.block_on(async {
        let only = std::env::var("BENCH_LOOKUP_CASE").unwrap_or_default();
        for case in [
            "same statement (plan kept)",
            "new literals (generic plan)",
            "new literals, planned in a new session",
            "aggregate over 10 episodes, new literals (generic plan)",
        ] {
            if !case.contains(only.as_str()) {
                continue;
            }
            let mut times = Vec::new();
            for i in 0..runs {
                let t = Instant::now();
                let rows: usize = match case.as_bytes()[0] {
                    b's' => store.sql(&q(episodes / 2, 123), None).await.unwrap(),
                    b'a' => {
                        let e = (i * 7919) % (episodes - 10);
                        let sql = format!(
                            "SELECT count(*), avg(action), max(reward) FROM steps WHERE episode_id BETWEEN {e} AND {}",
                            e + 9
                        );
                        store.sql(&sql, None).await.unwrap()
                    }
                    _ if case.ends_with("plan)") => store.sql(&pick(i), None).await.unwrap(),
                    _ => {
                        let ctx = store.session_context();
                        ctx.sql(&pick(i)).await.unwrap().collect().await.unwrap()
                    }
                }
                .iter()
                .map(|b| b.num_rows())
                .sum();
                times.push(t.elapsed().as_secs_f64() * 1e6);
                assert_eq!(rows, 1, "{case}");
            }
            times.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let at = |f: f64| times[((times.len() - 1) as f64 * f) as usize];
            println!(
                "| {case} | {:.0} | {:.0} | {:.0} |",
                at(0.5),
                at(0.1),
                at(0.9)
            );
        }
    });
    assert!(store.generic_plans() >= 1, "the generic plan was made");
}
