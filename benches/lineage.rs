//! Recursive lineage (issue "Version comparison and lineage", acceptance 3): 100 k
//! edges in 2,000 chains of depth 50, written with `INSERT INTO lineage_edges`, walked
//! with `WITH RECURSIVE` from one node (depth 50) and from every chain head (100 k rows
//! out); the same edges and queries in PostgreSQL 15 (index on source_id) in the same
//! run. Times are medians of 15. bagbase in process: `Store::sql` asked the same
//! statement again (its plan kept, src/catalog/plans.rs), and the statement planned
//! every time in a new session (`session_context` + `sql`, what `Store::sql` does on a
//! first run). PostgreSQL through psql's `\timing`, with one connection kept (its plan
//! and catalog caches warm) and with a new connection per query. Then both over the
//! wire: `bagbase serve` and PostgreSQL each driven by one pgbench client (simple
//! protocol, connection kept; the server keeps the walk's plan, src/server/select.rs),
//! and again with a new connection per query (`pgbench -C`, what a script calling
//! `psql -c` per query does; the server's plans outlive a connection).
//!
//! A third walk starts from a different chain head each query, found through the edges
//! (`WHERE source_id = 'c<k>-0'`), as a user's lineage queries do: each text is new, so
//! bagbase runs its shape's generic plan (src/catalog/template.rs) and PostgreSQL plans
//! it afresh. In process and through psql it is timed over `SPREAD_RUNS` starts (the mean,
//! plan remakes included); over the wire pgbench draws the start (`\set c random(..)`).
//!
//! cargo bench --bench lineage
//! LINEAGE_PHASES_ONLY=1 LINEAGE_PHASE_RUNS=3000 cargo bench --bench lineage  # profile planning
//!   (also prints the time of each analyzer, optimizer and physical optimizer rule;
//!   LINEAGE_SET="datafusion.optimizer.max_passes=1,..." tries session options)
//! LINEAGE_SPREAD_ONLY=20 cargo bench --bench lineage  # profile walks from new starts

mod common;

use bagbase::Store;
use common::pg::Pg;
use common::server::Connect;
use std::time::{Duration, Instant};

const CHAINS: i64 = 2000;
const DEPTH: i64 = 50;
/// Runs per contender and case; the figures are medians.
const RUNS: usize = 15;
/// Starts of the walk from a different chain head each query; the figure is the mean
/// (more than twice `MAX_RUNS` of src/catalog/plans.rs, so generic plans made again
/// are in it).
const SPREAD_RUNS: usize = 600;

/// The walk from chain `chain`'s head, its first step read from the edges.
fn from_head(chain: &str) -> String {
    format!(
        "WITH RECURSIVE walk(id, depth) AS (
           SELECT target_id, 1 FROM lineage_edges WHERE source_id = 'c{chain}-0'
           UNION ALL
           SELECT e.target_id, w.depth + 1 FROM lineage_edges e JOIN walk w ON e.source_id = w.id
           WHERE w.depth < {}
         ) SELECT count(*), max(depth) FROM walk",
        DEPTH + 10
    )
}

/// `SPREAD_RUNS` walks from chain heads spread over every chain (the same for both).
fn spread() -> Vec<String> {
    (0..SPREAD_RUNS as i64)
        .map(|i| from_head(&((i * 7919) % CHAINS).to_string()))
        .collect()
}

fn mean(v: &[Duration]) -> Duration {
    v.iter().sum::<Duration>() / v.len() as u32
}

fn edges_sql(target: &str) -> String {
    format!(
        "INSERT INTO {target} (source_type, source_id, target_type, target_id, relation)
         SELECT 'node' AS st, 'c' || (v / {DEPTH}) || '-' || (v % {DEPTH}) AS si, 'node' AS tt,
                'c' || (v / {DEPTH}) || '-' || (v % {DEPTH} + 1) AS ti, 'parent' AS r
         FROM generate_series(0, {}) AS t(v)",
        CHAINS * DEPTH - 1
    )
}

fn queries() -> Vec<(&'static str, String)> {
    vec![
        (
            "one node, depth 50",
            format!(
                "WITH RECURSIVE walk(id, depth) AS (
                   SELECT 'c7-0', 0
                   UNION ALL
                   SELECT e.target_id, w.depth + 1 FROM lineage_edges e JOIN walk w ON e.source_id = w.id
                   WHERE w.depth < {}
                 ) SELECT count(*), max(depth) FROM walk",
                DEPTH + 10
            ),
        ),
        (
            "every chain head (100 k rows)",
            format!(
                "WITH RECURSIVE walk(id, depth) AS (
                   SELECT source_id, 0 FROM lineage_edges WHERE source_id LIKE '%-0'
                   UNION ALL
                   SELECT e.target_id, w.depth + 1 FROM lineage_edges e JOIN walk w ON e.source_id = w.id
                   WHERE w.depth < {}
                 ) SELECT count(*), max(depth) FROM walk",
                DEPTH + 10
            ),
        ),
    ]
}

/// A row of the in-process table: the walk, its rows (PostgreSQL's first output
/// column), then bagbase against PostgreSQL with the plan kept (`kept_note` after
/// those two figures) and planned per query.
fn print_row(
    name: &str,
    pg_out: &str,
    kept: (Duration, Duration),
    planned: (Duration, Duration),
    kept_note: &str,
) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let ((k, pk), (b, p)) = (kept, planned);
    println!(
        "| {name} | {} | {:.2}{kept_note} | {:.2}{kept_note} | {:.2} | {:.2} | {:.2} | {:.2} |",
        pg_out.split('|').next().unwrap_or(""),
        ms(k),
        ms(pk),
        ms(k) / ms(pk),
        ms(b),
        ms(p),
        ms(b) / ms(p)
    );
}

/// Times each statement planned from scratch in a new session and run.
fn time_planned<'a>(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    sqls: impl IntoIterator<Item = &'a str>,
) -> Vec<Duration> {
    sqls.into_iter()
        .map(|q| {
            let t = Instant::now();
            let ctx = store.session_context();
            let df = rt.block_on(ctx.sql(q)).unwrap();
            rt.block_on(df.collect()).unwrap();
            t.elapsed()
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = common::scratch().join("lineage");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::init(&dir.join("store"), Default::default()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(store.sql(&edges_sql("lineage_edges"), None))
        .unwrap();
    if std::env::var("LINEAGE_PHASES_ONLY").is_ok() {
        let ctx = store.session_context();
        // LINEAGE_SET="key=value,..." tries session options (profiling only).
        for kv in std::env::var("LINEAGE_SET").unwrap_or_default().split(',') {
            if let Some((k, v)) = kv.split_once('=') {
                ctx.state_ref()
                    .write()
                    .config_mut()
                    .options_mut()
                    .set(k, v)
                    .unwrap();
            }
        }
        phases(&ctx, &rt, &queries()[0].1);
        rules(&ctx, &rt, &queries()[0].1);
        return;
    }
    if let Ok(rounds) = std::env::var("LINEAGE_SPREAD_ONLY") {
        let rounds: usize = rounds.parse().unwrap();
        let t = Instant::now();
        for q in spread().iter().cycle().take(rounds * SPREAD_RUNS) {
            rt.block_on(store.sql(q, None)).unwrap();
        }
        let each = t.elapsed() / (rounds * SPREAD_RUNS) as u32;
        eprintln!("from a different chain head, mean of {rounds} x {SPREAD_RUNS}: {each:?}");
        return;
    }
    let pg = Pg::start(&dir.join("pg"), 55498);
    pg.run(
        "CREATE TABLE lineage_edges (source_type text, source_id text, target_type text, target_id text, relation text, created_at timestamp DEFAULT now())",
        None,
    );
    pg.run(&edges_sql("lineage_edges"), None);
    pg.run("CREATE INDEX ON lineage_edges (source_id)", None);
    pg.run("VACUUM ANALYZE lineage_edges", None);
    println!(
        "| walk | rows | bagbase `Store::sql`, plan kept (ms) | PostgreSQL, connection kept (ms) | ratio | bagbase, planned per query (ms) | PostgreSQL, new connection (ms) | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (i, (name, q)) in queries().into_iter().enumerate() {
        let (mut kept, out) = common::time_sql(&rt, &store, vec![q.as_str(); RUNS + 2]);
        assert_eq!(store.cached_plans(), i + 1, "{name}: plan not kept");
        kept.drain(..2); // the runs that planned (seen once, then kept)
        let k = median(kept);
        let b = median(time_planned(&rt, &store, vec![q.as_str(); RUNS]));
        let p = median((0..RUNS).map(|_| pg.time(&q).0).collect());
        let (pkept, pout) = pg.time_repeated(&q, RUNS);
        let pk = median(pkept);
        eprintln!("{name}: bagbase\n{out}\nPostgreSQL: {pout}");
        print_row(name, &pout, (k, pk), (b, p), "");
    }
    {
        let name = "from a different chain head each query (50 rows)";
        let texts = spread();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let (mut shared, out) = common::time_sql(&rt, &store, refs.iter().copied());
        assert_eq!(store.generic_plans(), 1, "{name}: no generic plan");
        shared.drain(..2); // the runs that planned (shape seen once, then made generic)
        let k = mean(&shared);
        let b = median(time_planned(&rt, &store, refs.iter().copied().take(RUNS)));
        let p = median(texts.iter().take(RUNS).map(|q| pg.time(q).0).collect());
        let (pkept, pout) = pg.time_each(&refs);
        let pk = mean(&pkept[2..]);
        eprintln!("{name}: bagbase\n{out}\nPostgreSQL: {pout}");
        print_row(name, &pout, (k, pk), (b, p), " (mean)");
    }
    let ctx = store.session_context();
    phases(&ctx, &rt, &queries()[0].1);
    drop(ctx);
    drop(store);

    // Over the wire: one pgbench client per server, simple protocol, connection kept.
    let secs = common::env_or("LINEAGE_WIRE_SECS", 10);
    let (mut server, port) = common::server::start(&dir.join("store"));
    println!(
        "\n| walk | bagbase serve, pgbench 1 client (ms per query) | PostgreSQL 15, pgbench 1 client (ms) | ratio | bagbase, new connection per query (ms) | PostgreSQL, new connection per query (ms) | ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    let random = (
        "from a random chain head each query",
        format!("\\set c random(0, {})\n{}", CHAINS - 1, from_head(":c")),
    );
    for (i, (name, q)) in queries().into_iter().chain([random]).enumerate() {
        let script = dir.join(format!("walk{i}.sql"));
        std::fs::write(&script, format!("{q};\n")).unwrap();
        let [b, p, bc, pc] = [Connect::Kept, Connect::Each]
            .map(|c| {
                [
                    common::server::pgbench_ms(port, "bagbase", "main", &script, secs, c),
                    common::server::pgbench_ms(pg.port(), "postgres", "postgres", &script, secs, c),
                ]
            })
            .concat()
            .try_into()
            .unwrap();
        println!(
            "| {name} | {b:.3} | {p:.3} | {:.2} | {bc:.3} | {pc:.3} | {:.2} |",
            b / p,
            bc / pc
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}

/// Where the single walk's time goes with a kept session (stderr): mean of 200 runs.
fn phases(
    ctx: &bagbase::datafusion::prelude::SessionContext,
    rt: &tokio::runtime::Runtime,
    q: &str,
) {
    use bagbase::datafusion::config::Dialect;
    let state = ctx.state();
    let mut t = [Duration::ZERO; 5];
    let n: u32 = std::env::var("LINEAGE_PHASE_RUNS").map_or(200, |v| v.parse().unwrap());
    for _ in 0..n {
        let a = Instant::now();
        let stmt = state.sql_to_statement(q, &Dialect::PostgreSQL).unwrap();
        let b = Instant::now();
        let plan = rt.block_on(state.statement_to_plan(stmt)).unwrap();
        let c = Instant::now();
        let plan = state.optimize(&plan).unwrap();
        let d = Instant::now();
        let plan = rt
            .block_on(state.query_planner().create_physical_plan(&plan, &state))
            .unwrap();
        let e = Instant::now();
        rt.block_on(bagbase::datafusion::physical_plan::collect(
            plan,
            ctx.task_ctx(),
        ))
        .unwrap();
        let f = Instant::now();
        for (i, d) in [b - a, c - b, d - c, e - d, f - e].into_iter().enumerate() {
            t[i] += d;
        }
    }
    let names = [
        "parse",
        "logical plan",
        "optimize",
        "physical plan",
        "execute",
    ];
    let parts: Vec<String> = names
        .iter()
        .zip(t)
        .map(|(name, d)| format!("{name} {:.3} ms", d.as_secs_f64() * 1e3 / f64::from(n)))
        .collect();
    eprintln!("one node, session kept, mean of {n}: {}", parts.join(", "));
}

/// Where the single walk's planning goes, rule by rule (stderr, mean of the phase
/// runs, rules above 10 µs): the analyzer, each logical optimizer rule (all passes),
/// the initial physical plan and each physical optimizer rule.
fn rules(
    ctx: &bagbase::datafusion::prelude::SessionContext,
    rt: &tokio::runtime::Runtime,
    q: &str,
) {
    use bagbase::datafusion::config::Dialect;
    use bagbase::datafusion::execution::SessionStateBuilder;
    use bagbase::datafusion::physical_optimizer::optimizer::ConfigOnlyContext;
    use std::collections::BTreeMap;
    let state = ctx.state();
    let config = ConfigOnlyContext::new(state.config_options());
    let bare = SessionStateBuilder::new_from_existing(state.clone())
        .with_physical_optimizer_rules(vec![])
        .build();
    let n: u32 = std::env::var("LINEAGE_PHASE_RUNS").map_or(200, |v| v.parse().unwrap());
    let mut t: BTreeMap<String, Duration> = BTreeMap::new();
    let mut add = |name: &str, d: Duration| *t.entry(name.to_string()).or_default() += d;
    for _ in 0..n {
        let stmt = state.sql_to_statement(q, &Dialect::PostgreSQL).unwrap();
        let a = Instant::now();
        let plan = rt.block_on(state.statement_to_plan(stmt)).unwrap();
        add("0 sql to logical plan", a.elapsed());
        let a = Instant::now();
        let plan = state
            .analyzer()
            .execute_and_check(plan, state.config_options(), |_, _| {})
            .unwrap();
        add("1 analyzer", a.elapsed());
        let mut last = Instant::now();
        let mut per: Vec<(String, Duration)> = Vec::new();
        let plan = state
            .optimizer()
            .optimize(plan, &state, |_, rule| {
                let now = Instant::now();
                per.push((format!("2 opt {}", rule.name()), now - last));
                last = now;
            })
            .unwrap();
        for (name, d) in per {
            add(&name, d);
        }
        let a = Instant::now();
        let mut plan = rt
            .block_on(bare.query_planner().create_physical_plan(&plan, &bare))
            .unwrap();
        add("3 initial physical plan", a.elapsed());
        for rule in state.physical_optimizers() {
            let a = Instant::now();
            plan = rule.optimize_with_context(plan, &config).unwrap();
            add(&format!("4 phys {}", rule.name()), a.elapsed());
        }
    }
    let mut total = Duration::ZERO;
    for (name, d) in &t {
        total += *d;
        let us = d.as_secs_f64() * 1e6 / f64::from(n);
        if us >= 10.0 {
            eprintln!("{name}: {us:.1} µs");
        }
    }
    eprintln!(
        "all rules: {:.3} ms",
        total.as_secs_f64() * 1e3 / f64::from(n)
    );
}
