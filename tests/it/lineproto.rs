//! Line-protocol writes through the library: several writes published together (the
//! HTTP server's group commit) whose points share times and series.

use bagbase::ingest::lineproto::Precision;
use bagbase::Store;

#[test]
fn one_group_of_overlapping_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(&dir.path().join("s"), Default::default()).unwrap();
    let ns = Precision::Nanoseconds;
    let out = store
        .write_lines(
            "main",
            &[
                ("m,w=a v=1i 10\nm,w=a v=2i 20", ns, 0),
                ("m,w=b v=3i 10\nm,w=a v=4i 20", ns, 0),
                ("m,w=a x=1.5 20", ns, 0),
            ],
        )
        .unwrap();
    assert!(out.iter().all(|o| o.errors.is_empty()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let b = rt
        .block_on(store.sql(
            "SELECT string_agg(w || '@' || CAST(CAST(time AS BIGINT) AS VARCHAR) || '=' || CAST(v AS VARCHAR) || '/' || coalesce(CAST(x AS VARCHAR), '-'), ' ' ORDER BY w, time) AS s FROM m",
            None,
        ))
        .unwrap();
    let s = bagbase::datafusion::arrow::util::pretty::pretty_format_batches(&b)
        .unwrap()
        .to_string();
    assert!(s.contains("a@10=1/- a@20=4/1.5 b@10=3/-"), "{s}");
}

/// Many small writes leave few segments: full tiers are merged (the table's points
/// unchanged, columns added midway kept), and a point written again after its segment
/// was merged still replaces the stored one.
#[test]
fn small_writes_are_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(&dir.path().join("s"), Default::default()).unwrap();
    let ns = Precision::Nanoseconds;
    for i in 0..20i64 {
        let extra = if i == 10 { ",z=q" } else { "" };
        let field = if i == 10 { ",x=1.5" } else { "" };
        let text: Vec<String> = (0..100)
            .map(|j| {
                let t = i * 100 + j;
                format!("m,w=s{}{extra} v={t}i{field} {t}", i % 3)
            })
            .collect();
        let out = store
            .write_lines("main", &[(&text.join("\n"), ns, 0)])
            .unwrap();
        assert_eq!(out[0].points, 100);
        assert!(out[0].errors.is_empty());
    }
    let out = store
        .write_lines("main", &[("m,w=s0 v=-1i 0", ns, 0)])
        .unwrap();
    assert_eq!(out[0].points, 1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let q = |sql: &str| {
        let b = rt.block_on(store.sql(sql, None)).unwrap();
        bagbase::datafusion::arrow::util::pretty::pretty_format_batches(&b)
            .unwrap()
            .to_string()
    };
    let s = q(
        "SELECT count(*) AS n, sum(v) AS s, count(x) AS x, count(z) AS z, \
               min(CAST(time AS BIGINT)) AS lo FROM m",
    );
    assert!(s.contains("| 2000 | 1998999 | 100 | 100 | 0  |"), "{s}");
    // Merged at the 8th and the 15th write: the merged segment (rewritten without the
    // replaced point), writes 16 to 20 and the last one, 7 segments where 21 were made.
    let plan = q("EXPLAIN SELECT * FROM m");
    let segments = plan.matches(".parquet").count();
    assert!(
        segments < bagbase::ingest::lineproto::compact::FANIN,
        "{segments} segments: {plan}"
    );
}
