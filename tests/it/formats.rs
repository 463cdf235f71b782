//! Stores of each on-disk format version (docs/format.md): a new store is format 2,
//! keeps its metadata in redb and a camera bag's images as references to the bag (blob
//! columns); the format-1 store in tests/data/format1 (sled; written by bagbase before
//! format 2 existed, by `init` + `ingest tests/data/gen/camera.bag` + `tag v1`) still
//! opens, reads, passes fsck and takes new ingests, which stay plain.

use crate::common::{copy_dir, csv_rows, ok, walk};
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
    assert_eq!(marker(&store), "bagbase store\nformat 2\n");
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
    cfg.format_version = 3;
    let mut b = bagbase::store::Batch::default();
    b.put(b"m/config".to_vec(), serde_json::to_vec(&cfg).unwrap());
    s.publish(b).unwrap();
    drop(s);
    let err = crate::common::fails(&store, &["log"]);
    assert!(
        err.contains("store format version 3 is not supported (this build reads versions 1 to 2)"),
        "{err}"
    );
}
