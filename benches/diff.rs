//! Version diffs (issue "Version comparison and lineage", acceptance 2 and 4): a steps
//! table of BENCH_EPISODES × 1,000 steps (10 M rows by default) built through the
//! public API (`Store::edit_table`, one segment per episode), and versions where a
//! fraction f of episodes is added, the same fraction removed and the same fraction
//! re-processed (every step modified), plus the worst case: 1% of all rows modified,
//! scattered over every episode. `version_diff` against PostgreSQL 15 on the same rows
//! in the same run, where PostgreSQL has a primary key, a row-hash column with an index,
//! work_mem 1 GB and both of its plans (FULL OUTER JOIN on the key comparing hashes,
//! and `row_hash NOT IN`). Then `diff_summary` on a store of BENCH_SUMMARY_GIB of files.
//!
//! cargo bench --bench diff     (writes target/bench-diff.csv for benches/plot_diff.py)

mod common;

use bagbase::datafusion::arrow::array::RecordBatch;
use bagbase::version::manifest::StatValue;
use bagbase::{IngestOptions, Store};
use common::pg::Pg;
use common::steps::{pg_rows, BASE_ACTION, COLUMNS, KEY, STEPS};
use common::Rng;
use std::time::{Duration, Instant};

/// How an episode's rows are made (the SQL in `pg_rows` computes the same values).
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Original,
    /// Re-processed: every action + 0.5.
    Reprocessed,
    /// 1% of steps, scattered: action + 0.25 where (step·7 + episode) % 100 = 0.
    Scattered,
}

fn action(e: i64, s: i64, k: Kind) -> f64 {
    let a = common::steps::base_action(e, s);
    match k {
        Kind::Original => a,
        Kind::Reprocessed => a + 0.5,
        Kind::Scattered if (s * 7 + e) % 100 == 0 => a + 0.25,
        Kind::Scattered => a,
    }
}

struct Variant {
    name: String,
    fraction: f64,
    removed: Vec<i64>,
    reprocessed: Vec<i64>,
    added: Vec<i64>,
    scattered: bool,
}

fn variants(episodes: i64) -> Vec<Variant> {
    let mut order: Vec<i64> = (0..episodes).collect();
    let mut rng = Rng::seeded(42);
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    let mut out: Vec<Variant> = [0.001, 0.01, 0.05]
        .iter()
        .map(|f| {
            let k = ((episodes as f64 * f).round() as usize).max(1);
            Variant {
                name: format!("f{}", (f * 1000.0) as u32),
                fraction: *f,
                removed: order[..k].to_vec(),
                reprocessed: order[k..2 * k].to_vec(),
                added: (episodes..episodes + k as i64).collect(),
                scattered: false,
            }
        })
        .collect();
    out.push(Variant {
        name: "scattered".into(),
        fraction: 0.01,
        removed: vec![],
        reprocessed: vec![],
        added: vec![],
        scattered: true,
    });
    out
}

fn episode(e: i64, k: Kind) -> RecordBatch {
    common::steps::episode(e, |e, s| action(e, s, k))
}

fn build_bagbase(store: &Store, episodes: i64, vs: &[Variant]) {
    common::steps::build(store, "main", "steps", episodes);
    store.commit("main", "A").unwrap();
    store.tag("A", "main").unwrap();
    for v in vs {
        store.branch(&v.name, "A").unwrap();
        let mut t = store.edit_table(&v.name, "steps", &KEY).unwrap();
        if v.scattered {
            for e in 0..episodes {
                t.remove_partition("episode_id", &StatValue::Int(e));
                t.append(&[episode(e, Kind::Scattered)]).unwrap();
            }
        }
        for e in v.removed.iter().chain(&v.reprocessed) {
            t.remove_partition("episode_id", &StatValue::Int(*e));
        }
        for e in &v.reprocessed {
            t.append(&[episode(*e, Kind::Reprocessed)]).unwrap();
        }
        for e in &v.added {
            t.append(&[episode(*e, Kind::Original)]).unwrap();
        }
        t.publish().unwrap();
        store.commit(&v.name, &v.name).unwrap();
    }
}

fn list(v: &[i64]) -> String {
    let s: Vec<String> = v.iter().map(|e| e.to_string()).collect();
    format!("'{{{}}}'::bigint[]", s.join(","))
}

const HASHED: &str = "md5(concat_ws(',', episode_id, step_index, \"timestamp\", is_first, is_last, is_terminal, obs_x, obs_y, action, reward))";

fn build_pg(pg: &Pg, episodes: i64, vs: &[Variant]) {
    let table = |name: &str, rows: &str| {
        pg.run(
            &format!(
                "CREATE UNLOGGED TABLE raw_{name} ({COLUMNS}); INSERT INTO raw_{name} {rows};
                 CREATE UNLOGGED TABLE steps_{name} AS SELECT *, {HASHED} AS row_hash FROM raw_{name};
                 DROP TABLE raw_{name};
                 ALTER TABLE steps_{name} ADD PRIMARY KEY (episode_id, step_index);
                 CREATE INDEX ON steps_{name} (row_hash);"
            ),
            None,
        );
        pg.run(&format!("VACUUM ANALYZE steps_{name}"), None);
    };
    table(
        "a",
        &pg_rows(
            &format!("SELECT generate_series(0, {})", episodes - 1),
            BASE_ACTION,
        ),
    );
    for v in vs {
        let rows = if v.scattered {
            pg_rows(
                &format!("SELECT generate_series(0, {})", episodes - 1),
                &format!("{BASE_ACTION} + CASE WHEN (s * 7 + e) % 100 = 0 THEN 0.25 ELSE 0 END"),
            )
        } else {
            let kept = format!(
                "SELECT episode_id, step_index, \"timestamp\", is_first, is_last, is_terminal, obs_x, obs_y, action, reward FROM steps_a WHERE episode_id <> ALL({})",
                list(&[v.removed.clone(), v.reprocessed.clone()].concat())
            );
            format!(
                "{kept} UNION ALL {} UNION ALL {}",
                pg_rows(
                    &format!("SELECT unnest({})", list(&v.reprocessed)),
                    &format!("{BASE_ACTION} + 0.5")
                ),
                pg_rows(&format!("SELECT unnest({})", list(&v.added)), BASE_ACTION)
            )
        };
        table(&v.name, &rows);
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time_bagbase(rt: &tokio::runtime::Runtime, store: &Store, sql: &str) -> (Duration, String) {
    let (times, out) = common::time_sql(rt, store, [sql; 3]);
    (median(times), out)
}

fn time_pg(pg: &Pg, sql: &str) -> (Duration, String) {
    let mut times = Vec::new();
    let mut out = String::new();
    for _ in 0..3 {
        let (t, o) = pg.time(sql);
        times.push(t);
        out = o;
    }
    (median(times), out)
}

fn main() {
    let episodes: i64 = std::env::var("BENCH_EPISODES")
        .map(|s| s.parse().unwrap())
        .unwrap_or(10_000);
    let dir = common::scratch().join("diff");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let vs = variants(episodes);
    let store = Store::init(&dir.join("store"), Default::default()).unwrap();
    let t = Instant::now();
    build_bagbase(&store, episodes, &vs);
    eprintln!(
        "bagbase versions built in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let pg = Pg::start(&dir.join("pg"), 55499);
    let t = Instant::now();
    build_pg(&pg, episodes, &vs);
    eprintln!(
        "PostgreSQL tables built in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rows = episodes * STEPS;
    println!("steps: {rows} rows ({episodes} episodes × {STEPS} steps), one segment per episode\n");
    println!("| change | rows changed | bagbase version_diff (s) | PG FULL JOIN + hash (s) | PG row_hash NOT IN (s) | PG best / bagbase |");
    println!("|---|---|---|---|---|---|");
    let mut csv = String::from("case,fraction,bagbase_s,pg_join_s,pg_notin_s\n");
    for v in &vs {
        let (b, bout) = time_bagbase(
            &rt,
            &store,
            &format!(
                "SELECT diff_type, count(*) AS n FROM version_diff('steps', 'A', '{}') GROUP BY diff_type ORDER BY diff_type",
                v.name
            ),
        );
        let (j, jout) = time_pg(
            &pg,
            &format!(
                "SELECT count(*) FILTER (WHERE a.episode_id IS NULL), count(*) FILTER (WHERE b.episode_id IS NULL), count(*) FILTER (WHERE a.episode_id IS NOT NULL AND b.episode_id IS NOT NULL)
                 FROM steps_a a FULL OUTER JOIN steps_{} b ON a.episode_id = b.episode_id AND a.step_index = b.step_index
                 WHERE a.row_hash IS DISTINCT FROM b.row_hash",
                v.name
            ),
        );
        let (n, _) = time_pg(
            &pg,
            &format!(
                "SELECT (SELECT count(*) FROM steps_{0} WHERE row_hash NOT IN (SELECT row_hash FROM steps_a)), (SELECT count(*) FROM steps_a WHERE row_hash NOT IN (SELECT row_hash FROM steps_{0}))",
                v.name
            ),
        );
        eprintln!(
            "{}: bagbase\n{bout}\nPostgreSQL added|removed|modified: {jout}",
            v.name
        );
        let changed = if v.scattered {
            rows / 100
        } else {
            (v.removed.len() + v.reprocessed.len() + v.added.len()) as i64 * STEPS
        };
        let label = if v.scattered {
            "1% of rows modified, scattered (every segment differs)".to_string()
        } else {
            format!(
                "{}% episodes added + removed + re-processed",
                v.fraction * 100.0
            )
        };
        println!(
            "| {label} | {changed} | {:.3} | {:.3} | {:.3} | {:.1}× |",
            b.as_secs_f64(),
            j.as_secs_f64(),
            n.as_secs_f64(),
            j.min(n).as_secs_f64() / b.as_secs_f64()
        );
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            v.name,
            if v.scattered { -1.0 } else { v.fraction },
            b.as_secs_f64(),
            j.as_secs_f64(),
            n.as_secs_f64()
        ));
    }
    let csv_path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench-diff.csv");
    std::fs::write(csv_path, csv).unwrap();
    drop(pg);
    summary_on_large_store(&rt, &dir);
}

/// `diff_summary` between two versions of a store of BENCH_SUMMARY_GIB of files, the
/// second with one file re-written.
fn summary_on_large_store(rt: &tokio::runtime::Runtime, dir: &std::path::Path) {
    let gib: u64 = std::env::var("BENCH_SUMMARY_GIB")
        .map(|s| s.parse().unwrap())
        .unwrap_or(10);
    let store = Store::init(&dir.join("large"), Default::default()).unwrap();
    let file = 256u64 << 20;
    let n = (gib << 30) / file;
    let mut buf = vec![0u8; file as usize];
    let opts = IngestOptions {
        commit: false,
        ..Default::default()
    };
    for i in 0..n {
        Rng::seeded(9 + i).fill(&mut buf);
        store
            .ingest_reader(&format!("data/rec-{i:04}.bin"), &buf[..], &opts)
            .unwrap();
    }
    store.commit("main", "large").unwrap();
    store.tag("L1", "main").unwrap();
    Rng::seeded(9).fill(&mut buf);
    buf[1000..2000].fill(7);
    store
        .ingest_reader("data/rec-0000.bin", &buf[..], &opts)
        .unwrap();
    store.commit("main", "one file changed").unwrap();
    let (t, out) = time_bagbase(rt, &store, "SELECT * FROM diff_summary('L1', 'main')");
    eprintln!("{out}");
    println!(
        "\ndiff_summary on a {gib} GiB store ({n} files of 256 MiB, one changed): {:.1} ms (median of 3, in process)",
        t.as_secs_f64() * 1e3
    );
}
