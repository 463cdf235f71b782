//! Helpers shared by the whole-program tests: run the real `bagbase` binary on a store.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub fn bagbase(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bagbase"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env("BAGBASE_AUTHOR", "test")
        .output()
        .expect("run bagbase")
}

/// Runs a command that must succeed; returns its stdout.
pub fn ok(store: &Path, args: &[&str]) -> String {
    let out = bagbase(store, args);
    assert!(
        out.status.success(),
        "bagbase {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with status 1; returns its stderr.
pub fn fails(store: &Path, args: &[&str]) -> String {
    let out = bagbase(store, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "bagbase {args:?} should fail: {out:?}"
    );
    String::from_utf8(out.stderr).unwrap()
}

/// What a user can see of a store: refs, versions, files and fsck's verdict.
pub fn snapshot(store: &Path) -> String {
    let mut s = String::new();
    for q in [
        "SELECT * FROM refs ORDER BY name",
        "SELECT version_id, parents, branch, author, message, created_at FROM versions ORDER BY version_id",
        "SELECT * FROM files ORDER BY path",
        "SELECT * FROM storage ORDER BY version_id",
    ] {
        s.push_str(&ok(store, &["sql", "--format", "csv", q]));
    }
    let fsck = ok(store, &["fsck"]);
    assert!(fsck.contains("no damage found"), "{fsck}");
    // Counts of packs and chunks are left out: gc is allowed to change them.
    s.extend(
        fsck.lines()
            .filter(|l| !l.starts_with("checked"))
            .map(|l| format!("{l}\n")),
    );
    s
}

/// Adds a user with `bagbase user add --password-stdin`.
pub fn add_user(store: &Path, name: &str, role: &str, password: &str) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bagbase"))
        .arg("--store")
        .arg(store)
        .args(["user", "add", name, "--role", role, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(c.stdin.take().unwrap(), "{password}").unwrap();
    assert!(c.wait().unwrap().success());
}

/// The rows of `bagbase sql --format csv` output, header dropped.
pub fn csv_rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

/// tests/data/MANIFEST.json: the facts upstream readers give for every test file.
pub fn manifest() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string("tests/data/MANIFEST.json").unwrap()).unwrap()
}

/// Copies a directory tree (a fixture store is opened read-write, so tests use a copy).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Every file under `dir`, recursively (an absent directory has none).
pub fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// `n` pseudo-random bytes (xorshift64 from `seed`, which must not be 0).
pub fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}
