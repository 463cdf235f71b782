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
