//! Stores of each on-disk format version (docs/format.md): a new store is format 3,
//! keeps its metadata in redb, a camera bag's images as references to the bag (blob
//! columns) and a long file's chunk list as parts under an index node; the format-1
//! store in tests/data/format1 (sled; written by bagbase before format 2 existed, by
//! `init` + `ingest tests/data/gen/camera.bag` + `tag v1`) still opens, reads, passes
//! fsck and takes new ingests, which stay plain; so does the format-2 store in
//! tests/data/format2 (made the same way by the last build writing format 2).

use crate::common::{copy_dir, csv_rows, ok, random, walk};
use std::path::Path;

const FRAMES: &str =
    r#"SELECT count(*), min(md5(data)), sum(length(data)) FROM "/camera/image_raw""#;

fn marker(store: &Path) -> String {
    std::fs::read_to_string(store.join("BAGBASE")).unwrap()
}

fn resolves_blobs(store: &Path, sql: &str) -> bool {
    ok(
        store,
        &["sql", "--format", "csv", &format!("EXPLAIN {sql}")],
    )
    .contains("BlobResolveExec")
}

#[test]
fn a_format_1_store_reads_and_writes_without_blob_columns() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    copy_dir(Path::new("tests/data/format1/store"), &store);
    assert_eq!(marker(&store), "bagbase store\nformat 1\n");
    let frames = csv_rows(&ok(&store, &["sql", "--format", "csv", FRAMES]));
    assert_eq!(
        frames,
        [["8", "38348db0dbdf561efd23edc80af7e0b6", "73728"]],
        "the images written by format 1"
    );
    assert!(ok(&store, &["fsck"]).contains("no damage found"));
    assert!(ok(&store, &["log", "v1"]).contains("camera bag, written by format 1"));
    assert!(!resolves_blobs(
        &store,
        r#"SELECT data FROM "/camera/image_raw""#
    ));

    // A new ingest into the old store keeps its values in the segments.
    let copy = dir.path().join("again.bag");
    std::fs::copy("tests/data/gen/camera.bag", &copy).unwrap();
    ok(&store, &["ingest", copy.to_str().unwrap()]);
    assert!(!resolves_blobs(
        &store,
        r#"SELECT data FROM "/camera/image_raw""#
    ));
    let frames = csv_rows(&ok(&store, &["sql", "--format", "csv", FRAMES]));
    assert_eq!(frames[0][0], "16");
    assert_eq!(marker(&store), "bagbase store\nformat 1\n");
    assert!(ok(&store, &["fsck"]).contains("no damage found"));
    // Its metadata stays in sled.
    assert!(store.join("meta/db").is_file() && !store.join("meta/bagbase.redb").exists());
}

#[test]
fn a_new_store_refers_to_the_bag_and_gc_keeps_what_it_refers_to() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ok(&store, &["init"]);
    assert_eq!(marker(&store), "bagbase store\nformat 3\n");
    // Metadata in redb (docs/format.md §3).
    assert!(store.join("meta/bagbase.redb").is_file() && !store.join("meta/db").exists());
    ok(&store, &["ingest", "tests/data/gen/camera.bag"]);
    assert!(resolves_blobs(
        &store,
        r#"SELECT data FROM "/camera/image_raw""#
    ));
    assert!(resolves_blobs(&store, "SELECT data FROM messages"));
    let before = ok(&store, &["sql", "--format", "csv", FRAMES]);
    ok(&store, &["gc"]);
    assert!(ok(&store, &["fsck"]).contains("no damage found"));
    assert_eq!(ok(&store, &["sql", "--format", "csv", FRAMES]), before);
    // The bag comes back byte for byte whatever its rows refer to.
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
    let bags: Vec<_> = walk(&out);
    assert_eq!(bags.len(), 1);
    assert_eq!(
        std::fs::read(&bags[0]).unwrap(),
        std::fs::read("tests/data/gen/camera.bag").unwrap()
    );
}

#[test]
fn an_unknown_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    copy_dir(Path::new("tests/data/format1/store"), &store);
    // Rewrite m/config as a future bagbase would: the library refuses to open it.
    let s = bagbase::store::ChunkStore::open(&store).unwrap();
    let mut cfg = s.config().clone();
    cfg.format_version = 4;
    let mut b = bagbase::store::Batch::default();
    b.put(b"m/config".to_vec(), serde_json::to_vec(&cfg).unwrap());
    s.publish(b).unwrap();
    drop(s);
    let err = crate::common::fails(&store, &["log"]);
    assert!(
        err.contains("store format version 4 is not supported (this build reads versions 1 to 3)"),
        "{err}"
    );
}

/// Every key of the metadata store, sorted (the store "exactly as before" check).
fn keys(store: &bagbase::Store) -> Vec<Vec<u8>> {
    let kv = store.chunk_store().kv();
    kv.scan_prefix(b"")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

/// A reader that fails after `n` bytes, as a disk error would.
struct FailsAfter<'a>(&'a [u8]);

impl std::io::Read for FailsAfter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() {
            return Err(std::io::Error::other("device gone"));
        }
        let n = buf.len().min(self.0.len()).min(64 * 1024);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// Format 3: a file of more than 4,096 chunks is stored as `C` parts under an `L` node
/// (docs/format.md §4), written while the file streams in. It reads back byte for byte,
/// passes fsck and gc, an equal file keeps its id, and a failed ingest removes the parts
/// it staged.
#[test]
fn a_new_store_splits_long_chunk_lists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let cfg = bagbase::store::StoreConfig {
        chunk_min: 256,
        chunk_avg: 1024,
        chunk_max: 4096,
        ..Default::default()
    };
    let store = bagbase::Store::init(&path, cfg).unwrap();
    assert_eq!(marker(&path), "bagbase store\nformat 3\n");
    let data = random(20 << 20, 7);
    let opts = bagbase::IngestOptions::default();
    let before_failure = {
        store
            .ingest_reader("small.bin", &data[..1000], &opts)
            .unwrap();
        keys(&store)
    };
    let err = store.ingest_reader("big.bin", FailsAfter(&data[..10 << 20]), &opts);
    assert!(format!("{:?}", err.unwrap_err()).contains("device gone"));
    assert_eq!(
        keys(&store),
        before_failure,
        "the failed ingest left nothing"
    );

    store.ingest_reader("big.bin", &data[..], &opts).unwrap();
    let kv = store.chunk_store().kv();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let q = "SELECT chunk_count FROM files WHERE path = 'big.bin'";
    let b = rt.block_on(store.sql(q, None)).unwrap();
    use bagbase::datafusion::arrow::array::AsArray;
    use bagbase::datafusion::arrow::datatypes::Int64Type;
    let count = b[0].column(0).as_primitive::<Int64Type>().value(0);
    assert!(count > 3 * 4096, "{count} chunks");
    let top = {
        let root = bagbase::version::manifest::load_root(
            kv,
            &bagbase::version::refs::read_root(kv, &store.resolve("main").unwrap()).unwrap(),
        )
        .unwrap();
        let files = bagbase::version::manifest::list_files(kv, &root).unwrap();
        files
            .into_iter()
            .find(|f| f.path == "big.bin")
            .unwrap()
            .chunks
    };
    let raw = bagbase::version::node::get_raw(kv, &top).unwrap();
    assert_eq!(raw[0], b'L');
    assert_eq!((raw.len() - 1) / 40, (count as usize).div_ceil(4096));
    assert_eq!(
        bagbase::version::node::get_chunks(kv, &top).unwrap().len() as i64,
        count
    );

    // The same bytes again: unchanged, nothing new.
    let again = store.ingest_reader("big.bin", &data[..], &opts).unwrap();
    assert_eq!(again.files.iter().filter(|f| f.changed).count(), 0);

    let out = dir.path().join("out");
    store.export_files("main", None, &out).unwrap();
    assert!(std::fs::read(out.join("big.bin")).unwrap() == data);
    store.gc().unwrap();
    let report = store.fsck().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(bagbase::version::node::get_chunks(kv, &top).is_ok());
}

#[test]
fn a_format_2_store_keeps_flat_chunk_lists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    copy_dir(Path::new("tests/data/format2/store"), &path);
    assert_eq!(marker(&path), "bagbase store\nformat 2\n");
    let frames = csv_rows(&ok(&path, &["sql", "--format", "csv", FRAMES]));
    assert_eq!(frames[0][0], "8");
    assert!(ok(&path, &["log", "v1"]).contains("camera bag, written by format 2"));
    assert!(ok(&path, &["fsck"]).contains("no damage found"));
    let store = bagbase::Store::open(&path).unwrap();
    assert!(!store.config().chunk_trees());
    let r = store
        .ingest_reader("big.bin", &random(5 << 20, 3)[..], &Default::default())
        .unwrap();
    let list = r.files[0].entry.chunks;
    let raw = bagbase::version::node::get_raw(store.chunk_store().kv(), &list).unwrap();
    assert_eq!(raw[0], b'C');
    drop(store);
    assert_eq!(marker(&path), "bagbase store\nformat 2\n");
    assert!(ok(&path, &["fsck"]).contains("no damage found"));
}
