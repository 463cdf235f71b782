//! Whole-program behaviour of the CLI: errors name what is wrong, failed commands change
//! nothing, one process holds a store, fsck finds damage, gc frees space.

use crate::common::{bagbase, fails, ok, snapshot, walk};
use std::io::{Read, Seek, SeekFrom, Write};

#[test]
fn missing_store_and_double_init() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let err = fails(&store, &["sql", "SELECT 1"]);
    assert!(
        err.contains(&format!(
            "no bagbase store at {} — run 'bagbase init'",
            store.display()
        )),
        "{err}"
    );
    ok(&store, &["init"]);
    let err = fails(&store, &["init"]);
    assert!(err.contains("already exists"), "{err}");
}

/// Chunk sizes outside FastCDC's ranges are refused at `init` (a 32 MiB maximum was
/// accepted and the first ingest panicked), and nothing is created.
#[test]
fn init_refuses_chunk_sizes_fastcdc_cannot_cut() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let err = fails(
        &store,
        &["init", "--chunk-avg", "8388608", "--chunk-max", "33554432"],
    );
    assert!(
        err.contains("chunk avg 8388608 must be 256..4194304 bytes"),
        "{err}"
    );
    assert!(!store.exists());
    ok(
        &store,
        &[
            "init",
            "--chunk-min",
            "1024",
            "--chunk-avg",
            "4096",
            "--chunk-max",
            "16777216",
        ],
    );
}

#[test]
fn refs_errors_name_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    ok(&store, &["init"]);
    ok(&store, &["tag", "v1"]);
    let err = fails(&store, &["log", "nope"]);
    assert!(
        err.contains("unknown ref 'nope' (known refs: main, v1)"),
        "{err}"
    );
    let err = fails(&store, &["sql", "--ref", "nope", "SELECT 1"]);
    assert!(err.contains("unknown ref 'nope'"), "{err}");
    let err = fails(&store, &["tag", "v1"]);
    assert!(err.contains("tag 'v1' already exists"), "{err}");
    let err = fails(&store, &["branch", "deadbeef"]);
    assert!(err.contains("would read as a version id"), "{err}");
    let err = fails(&store, &["commit", "-m", "empty"]);
    assert!(err.contains("nothing to commit"), "{err}");
    let err = fails(&store, &["sql", "SELEC 1"]);
    assert!(err.contains("SELEC"), "{err}");
    let err = fails(&store, &["sql", "SELECT * FROM nosuch"]);
    assert!(err.contains("nosuch"), "{err}");
    let err = fails(&store, &["sql", "SELECT path,\n  nosuch FROM files"]);
    assert!(
        err.contains("No field named nosuch") && err.contains("(at line 2, column 3)"),
        "{err}"
    );
}

#[test]
fn second_process_fails_at_once_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    ok(&store, &["init"]);
    let held = bagbase::Store::open(&store).unwrap();
    let started = std::time::Instant::now();
    let err = fails(&store, &["sql", "SELECT 1"]);
    assert!(
        err.contains(&format!("in use by process {}", std::process::id())),
        "{err}"
    );
    assert!(started.elapsed().as_secs() < 5);
    drop(held);
    ok(&store, &["sql", "SELECT 1"]);
}

#[test]
fn failed_ingest_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    ok(&store, &["init"]);
    ok(&store, &["ingest", "tests/data/ros1/rosbag.js/example.bag"]);
    let before = snapshot(&store);
    // A directory holding a good file and a dangling link: refused before any write.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("a.txt"), b"hello").unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone"), data.join("b.lp")).unwrap();
    let err = fails(&store, &["ingest", data.to_str().unwrap()]);
    assert!(err.contains("b.lp"), "{err}");
    let err = fails(&store, &["ingest", "/no/such/file.bag"]);
    assert!(err.contains("/no/such/file.bag"), "{err}");
    assert_eq!(snapshot(&store), before);
    let packs = |p: &std::path::Path| walk(&p.join("packs")).len();
    let n = packs(&store);
    // An I/O error in the middle of a stream (library): named with its offset, and
    // neither metadata nor pack files change.
    {
        let s = bagbase::Store::open(&store).unwrap();
        let err = s
            .ingest_reader(
                "big.bin",
                FailingReader { left: 3 << 20 },
                &Default::default(),
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("big.bin: read failed at byte"), "{err}");
    }
    assert_eq!(packs(&store), n);
    assert_eq!(snapshot(&store), before);
}

/// Yields pseudo-random bytes, then an I/O error.
struct FailingReader {
    left: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("injected disk error"));
        }
        let n = buf.len().min(self.left);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = ((self.left + i) as u32)
                .wrapping_mul(2654435761)
                .to_le_bytes()[1];
        }
        self.left -= n;
        Ok(n)
    }
}

#[test]
fn fsck_names_the_damaged_chunk_file_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    ok(&store, &["init"]);
    ok(
        &store,
        &["ingest", "tests/data/PROVENANCE.md", "-m", "one file"],
    );
    let version = ok(
        &store,
        &[
            "sql",
            "--format",
            "csv",
            "SELECT version_id FROM refs WHERE name = 'main'",
        ],
    );
    let version = version.lines().nth(1).unwrap().to_string();
    // An opaque file: one pack, whose first entry is the file's first chunk (a bag's
    // decoded tables would add packs of their own).
    let packs = walk(&store.join("packs"));
    assert_eq!(packs.len(), 1);
    // Flip one byte inside the first entry's stored data (after the 16-byte pack
    // header and the 48-byte entry header).
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&packs[0])
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(16 + 48 + 10)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(16 + 48 + 10)).unwrap();
    f.write_all(&[b[0] ^ 0x40]).unwrap();
    drop(f);
    let out = bagbase(&store, &["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("damaged: chunk "))
        .expect(&text);
    assert!(line.contains("tests/data/PROVENANCE.md"), "{text}");
    assert!(line.contains(&format!("version {version}")), "{text}");
    assert!(line.contains("working set of main"), "{text}");
}

/// Table segments hang off `S` leaf nodes under each `T` node: gc must reach them.
#[test]
fn gc_keeps_table_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    ok(&store, &["init"]);
    ok(
        &store,
        &[
            "ingest",
            "tests/data/ros1/rosbag.js/example.bag",
            "-m",
            "bag",
        ],
    );
    let query = [
        "sql",
        "SELECT count(*) AS n FROM \"/rosout\"",
        "--format",
        "csv",
    ];
    let before = ok(&store, &query);
    ok(&store, &["gc"]);
    let fsck = ok(&store, &["fsck"]);
    assert!(fsck.contains("no damage found"), "{fsck}");
    assert_eq!(ok(&store, &query), before);
}

#[test]
fn gc_frees_what_nothing_references() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    ok(&store, &["init"]);
    let file = dir.path().join("data.bin");
    let noise: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &noise).unwrap();
    ok(&store, &["ingest", "--no-commit", file.to_str().unwrap()]);
    // Replace the uncommitted file: its first content is now unreachable.
    std::fs::write(&file, b"small").unwrap();
    ok(&store, &["ingest", file.to_str().unwrap(), "-m", "small"]);
    let before = snapshot(&store);
    let out = ok(&store, &["gc"]);
    assert!(out.starts_with("gc: freed "), "{out}");
    assert!(!out.starts_with("gc: freed 0 B"), "{out}");
    assert_eq!(snapshot(&store), before);
    let out = ok(&store, &["gc"]);
    assert!(out.starts_with("gc: freed 0 B"), "{out}");
}
