//! bagbase: an embedded storage engine for robot and training data with a SQL surface.
//!
//! [`Store`] is the public API: open a store directory, ingest files, commit versions,
//! make branches and tags, and query everything through a DataFusion `SessionContext`.
//!
//! ```
//! # fn main() -> Result<(), bagbase::Error> {
//! let dir = tempfile::tempdir().unwrap();
//! let store = bagbase::Store::init(dir.path(), Default::default())?;
//! std::fs::write(dir.path().join("notes.txt"), b"hello")?;
//! let report = store.ingest(&[dir.path().join("notes.txt")], &Default::default(), &())?;
//! assert!(report.version.is_some());
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! let batches = rt.block_on(store.sql("SELECT count(*) AS n FROM files", None))?;
//! assert_eq!(batches[0].num_rows(), 1);
//! # Ok(()) }
//! ```

pub mod catalog;
pub mod export;
pub mod ingest;
pub mod server;
pub mod store;
pub mod users;
pub mod version;

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use ingest::{IngestError, Ingested, Progress};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use store::{ChunkStore, Id, StoreConfig, StoreError, WriteStats};
use version::{RefKind, Resolved, Version, VersionError, WorkingEdit, DEFAULT_BRANCH};

pub use datafusion;

/// Every error the library returns; each layer's error converts at the door.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Export(#[from] export::ExportError),
    #[error("{}", sql_message(.0))]
    Sql(#[from] datafusion::error::DataFusionError),
    #[error(transparent)]
    Users(#[from] users::UserError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// How an ingest lands.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    pub branch: String,
    pub message: Option<String>,
    /// Turn the working set into a version at the end (the CLI's default).
    pub commit: bool,
    pub author: Option<String>,
    /// A recording cut short is an error instead of a warning.
    pub strict: bool,
    /// How recordings become episodes and steps (`--config`, `--main-topic`).
    pub align: ingest::steps::AlignConfig,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            branch: DEFAULT_BRANCH.into(),
            message: None,
            commit: true,
            author: None,
            strict: false,
            align: Default::default(),
        }
    }
}

#[derive(Debug)]
pub struct IngestReport {
    pub files: Vec<Ingested>,
    /// The version made, if the ingest committed and something changed.
    pub version: Option<Id>,
    pub stats: WriteStats,
}

#[derive(Debug, Default)]
pub struct FsckReport {
    pub packs: u64,
    pub chunks: u64,
    pub bytes: u64,
    pub nodes: u64,
    pub versions: u64,
    /// One line per problem; empty means the store is intact.
    pub problems: Vec<String>,
    /// Pack files no metadata refers to (left by a crash); `gc` removes them.
    pub orphan_packs: Vec<PathBuf>,
}

#[derive(Debug, Default)]
pub struct GcReport {
    pub nodes_removed: u64,
    pub chunks_removed: u64,
    pub packs_deleted: u64,
    pub packs_rewritten: u64,
    pub bytes_freed: u64,
}

/// An open store. One process at a time may hold it (see docs/design.md).
pub struct Store {
    chunks: Arc<ChunkStore>,
    /// Plans of `sql` statements, reused while the store is unchanged.
    plans: catalog::plans::PlanCache,
}

impl Store {
    /// Creates a store at `path` with an initial empty version on `main`.
    pub fn init(path: &Path, config: StoreConfig) -> Result<Store> {
        let chunks = ChunkStore::init(path, config)?;
        let batch = version::init_batch(chunks.kv(), &version::record::default_author())?;
        chunks.publish(batch)?;
        Ok(Store {
            chunks: Arc::new(chunks),
            plans: Default::default(),
        })
    }

    pub fn open(path: &Path) -> Result<Store> {
        Ok(Store {
            chunks: Arc::new(ChunkStore::open(path)?),
            plans: Default::default(),
        })
    }

    pub fn path(&self) -> &Path {
        self.chunks.root()
    }

    pub fn config(&self) -> &StoreConfig {
        self.chunks.config()
    }

    pub fn chunk_store(&self) -> &Arc<ChunkStore> {
        &self.chunks
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.chunks.write_lock()
    }

    /// Ingests files and directories (recursively). All-or-nothing: on any error the
    /// store is as it was before the call.
    pub fn ingest(
        &self,
        paths: &[PathBuf],
        opts: &IngestOptions,
        progress: &dyn Progress,
    ) -> Result<IngestReport> {
        let sources = ingest::expand(paths)?;
        let read = ingest::ReadOptions {
            strict: opts.strict,
            align: opts.align.clone(),
        };
        self.ingest_with(opts, |edit, w| {
            sources
                .iter()
                .map(|s| ingest::ingest_file(edit, w, s, &read, progress))
                .collect()
        })
    }

    /// Ingests one stream under the name `name` (used by servers and tests).
    pub fn ingest_reader<R: std::io::Read + Send>(
        &self,
        name: &str,
        reader: R,
        opts: &IngestOptions,
    ) -> Result<IngestReport> {
        self.ingest_with(opts, |edit, w| {
            Ok(vec![ingest::ingest_reader(edit, w, name, reader, &())?])
        })
    }

    fn ingest_with(
        &self,
        opts: &IngestOptions,
        body: impl FnOnce(&mut WorkingEdit<'_>, &mut store::ChunkWriter<'_>) -> Result<Vec<Ingested>>,
    ) -> Result<IngestReport> {
        let _g = self.lock();
        let kv = self.chunks.kv();
        let mut edit = WorkingEdit::begin(kv, &opts.branch)?;
        let mut w = self.chunks.writer();
        let files = body(&mut edit, &mut w)?;
        let stats = w.stats;
        w.finish()?;
        let (mut batch, root) = edit.finish()?;
        let mut made = None;
        if opts.commit {
            let message = opts
                .message
                .clone()
                .unwrap_or_else(|| default_message(&files));
            let author = opts
                .author
                .clone()
                .unwrap_or_else(version::record::default_author);
            match version::commit_into(kv, &mut batch, &opts.branch, root, &message, &author) {
                Ok(id) => made = Some(id),
                Err(VersionError::NothingToCommit(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.chunks.publish(batch)?;
        w.keep();
        Ok(IngestReport {
            files,
            version: made,
            stats,
        })
    }

    /// Appends rows to `table` in the working set of `branch`, as new segments. The
    /// table is created with the batches' schema if it does not exist; `key` names the
    /// columns that identify a row for `version_diff` (empty: the whole row).
    pub fn append_rows(
        &self,
        branch: &str,
        table: &str,
        key: &[&str],
        batches: &[RecordBatch],
    ) -> Result<u64> {
        let key: Vec<String> = key.iter().map(|k| k.to_string()).collect();
        Ok(version::rows::append(
            &self.chunks,
            branch,
            table,
            &key,
            batches,
        )?)
    }

    /// Writes InfluxDB line protocol into the working set of `branch`: each of
    /// `writes` is (text, precision, the time for points without one, ns). All are
    /// published together, durably, before this returns (the HTTP server's group
    /// commit); each gets its own report of points written and lines refused.
    pub fn write_lines(
        &self,
        branch: &str,
        writes: &[(&str, ingest::lineproto::Precision, i64)],
    ) -> Result<Vec<ingest::lineproto::Written>> {
        let parsed = writes
            .iter()
            .map(|(text, precision, now)| {
                ingest::lineproto::write::parse_text(text, 1, *precision, *now)
            })
            .collect();
        self.write_parsed(branch, parsed)
    }

    /// `write_lines` for texts already parsed (`lineproto::write::parse_text`).
    pub fn write_parsed(
        &self,
        branch: &str,
        writes: Vec<ingest::lineproto::write::Parsed>,
    ) -> Result<Vec<ingest::lineproto::Written>> {
        self.publish_edit(branch, store::Batch::default(), |edit, w| {
            let mut out = Vec::with_capacity(writes.len());
            let mut pending = ingest::lineproto::write::Pending::default();
            for parsed in writes {
                out.push(pending.add_parsed(edit, parsed)?);
            }
            if out.iter().all(|o| o.points == 0) {
                return Ok((out, false));
            }
            pending.store(edit, w)?;
            // Whole segments past a retention rule go with the write that outdates them.
            let now = version::record::now_ns();
            for (table, keep) in ingest::lineproto::retention::list(w.kv())? {
                if out.iter().any(|o| o.tables.contains(&table)) {
                    let cutoff = now.saturating_sub(keep);
                    ingest::lineproto::retention::trim(edit, w, &table, cutoff, false)?;
                }
            }
            Ok((out, true))
        })
    }

    /// Runs `body` on an edit of the working set of `branch` and, when it says something
    /// changed, publishes the edit with `extra`: chunks durable first, then one metadata
    /// batch. Holds the store's write lock throughout.
    fn publish_edit<T>(
        &self,
        branch: &str,
        extra: store::Batch,
        body: impl FnOnce(&mut WorkingEdit<'_>, &mut store::ChunkWriter<'_>) -> Result<(T, bool)>,
    ) -> Result<T> {
        let _g = self.lock();
        let kv = self.chunks.kv();
        let mut edit = WorkingEdit::begin(kv, branch)?;
        let mut w = self.chunks.writer();
        let (out, changed) = body(&mut edit, &mut w)?;
        if !changed && extra.is_empty() {
            return Ok(out);
        }
        w.finish()?;
        let (mut batch, _root) = edit.finish()?;
        batch.extend(extra);
        self.chunks.publish(batch)?;
        w.keep();
        Ok(out)
    }

    /// Sets how long points of `measurement` are kept (None: forever), for every branch.
    pub fn set_retention(&self, measurement: &str, keep_ns: Option<i64>) -> Result<()> {
        let _g = self.lock();
        let b = ingest::lineproto::retention::set(measurement, keep_ns);
        self.chunks.publish(b)?;
        Ok(())
    }

    /// The retention rules: (measurement, nanoseconds kept).
    pub fn retention(&self) -> Result<Vec<(String, i64)>> {
        Ok(ingest::lineproto::retention::list(self.chunks.kv())?)
    }

    /// Removes every point older than its measurement's retention from the working set
    /// of `branch`; returns (measurement, rows removed) for each rule.
    pub fn apply_retention(&self, branch: &str) -> Result<Vec<(String, u64)>> {
        self.publish_edit(branch, store::Batch::default(), |edit, w| {
            let now = version::record::now_ns();
            let mut out = Vec::new();
            for (table, keep) in ingest::lineproto::retention::list(w.kv())? {
                let cutoff = now.saturating_sub(keep);
                let n = ingest::lineproto::retention::trim(edit, w, &table, cutoff, true)?;
                out.push((table, n));
            }
            let changed = out.iter().any(|(_, n)| *n > 0);
            Ok((out, changed))
        })
    }

    /// Adds a downsampling rule (`source` rolled up into `target` every `every_ns`,
    /// for every branch) and backfills `target` in the working set of `branch` from
    /// the rows `source` has there; returns the rollup points written.
    pub fn add_downsample(
        &self,
        source: &str,
        target: &str,
        every_ns: i64,
        branch: &str,
    ) -> Result<u64> {
        use ingest::lineproto::downsample;
        let rule = downsample::Rule {
            target: target.to_string(),
            source: source.to_string(),
            every_ns,
        };
        let rule_batch = {
            let _g = self.lock();
            downsample::add(self.chunks.kv(), &rule).map_err(|what| ingest::IngestError::Bad {
                path: format!("downsample rule {target}"),
                what,
            })?
        };
        self.publish_edit(branch, rule_batch, |edit, w| {
            let n = match downsample::source_range(edit, source)? {
                Some((lo, hi)) => downsample::refresh(edit, w, &rule, lo, hi)?,
                None => 0,
            };
            Ok((n, n > 0))
        })
    }

    /// The downsampling rules.
    pub fn downsample_rules(&self) -> Result<Vec<ingest::lineproto::downsample::Rule>> {
        Ok(ingest::lineproto::downsample::list(self.chunks.kv())?)
    }

    /// Removes the rule that fills `target` (its rows stay).
    pub fn remove_downsample(&self, target: &str) -> Result<()> {
        let _g = self.lock();
        self.chunks
            .publish(ingest::lineproto::downsample::remove(target))?;
        Ok(())
    }

    /// Opens `table` in the working set of `branch` for several changes published at
    /// once: replace or drop partitions (an episode, a file) and append segments.
    pub fn edit_table(
        &self,
        branch: &str,
        table: &str,
        key: &[&str],
    ) -> Result<version::rows::TableEdit<'_>> {
        let key: Vec<String> = key.iter().map(|k| k.to_string()).collect();
        Ok(version::rows::TableEdit::begin(
            &self.chunks,
            branch,
            table,
            &key,
        )?)
    }

    /// Turns the working set of `branch` into a version.
    pub fn commit(&self, branch: &str, message: &str) -> Result<Id> {
        let _g = self.lock();
        let author = version::record::default_author();
        let (batch, id) = version::commit(self.chunks.kv(), branch, message, &author)?;
        self.chunks.publish(batch)?;
        Ok(id)
    }

    pub fn tag(&self, name: &str, target: &str) -> Result<Id> {
        self.create_ref(RefKind::Tag, name, target)
    }

    pub fn branch(&self, name: &str, from: &str) -> Result<Id> {
        self.create_ref(RefKind::Branch, name, from)
    }

    fn create_ref(&self, kind: RefKind, name: &str, target: &str) -> Result<Id> {
        let _g = self.lock();
        let (batch, id) = version::create_ref(self.chunks.kv(), kind, name, target)?;
        self.chunks.publish(batch)?;
        Ok(id)
    }

    pub fn resolve(&self, name: &str) -> Result<Resolved> {
        Ok(version::refs::resolve(self.chunks.kv(), name)?)
    }

    /// True when at least one user exists (the server then authenticates everyone).
    pub fn has_users(&self) -> Result<bool> {
        Ok(users::any(self.chunks.kv())?)
    }

    pub fn user(&self, name: &str) -> Result<Option<users::User>> {
        Ok(users::get(self.chunks.kv(), name)?)
    }

    pub fn users(&self) -> Result<Vec<users::User>> {
        Ok(users::list(self.chunks.kv())?)
    }

    pub fn add_user(&self, name: &str, role: users::Role, password: &str) -> Result<()> {
        let user = users::User::new(name, role, password)?;
        let _g = self.lock();
        let batch = users::add(self.chunks.kv(), &user)?;
        self.chunks.publish(batch)?;
        Ok(())
    }

    pub fn remove_user(&self, name: &str) -> Result<()> {
        let _g = self.lock();
        let batch = users::remove(self.chunks.kv(), name)?;
        self.chunks.publish(batch)?;
        Ok(())
    }

    /// History of a ref (first parents), newest first.
    pub fn log(&self, name: &str) -> Result<Vec<(Id, Version)>> {
        let r = self.resolve(name)?;
        Ok(version::log(self.chunks.kv(), &r.version)?)
    }

    /// A DataFusion session where unqualified names read the `main` branch.
    pub fn session_context(&self) -> SessionContext {
        catalog::session_context(Arc::clone(&self.chunks), DEFAULT_BRANCH)
    }

    /// A session where unqualified names read `reference` (checked first).
    pub fn session_context_at(&self, reference: &str) -> Result<SessionContext> {
        self.resolve(reference)?;
        Ok(catalog::session_context(
            Arc::clone(&self.chunks),
            reference,
        ))
    }

    /// Runs one SQL statement; `reference` picks what unqualified names read. A
    /// read-only query asked again while the store is unchanged reuses its plan
    /// (docs/design.md, "Plan cache").
    pub async fn sql(&self, query: &str, reference: Option<&str>) -> Result<Vec<RecordBatch>> {
        let reference = reference.unwrap_or(DEFAULT_BRANCH);
        self.resolve(reference)?;
        Ok(self.plans.run(&self.chunks, reference, query).await?)
    }

    /// How many statement plans `sql` keeps now (valid for the store as it is).
    pub fn cached_plans(&self) -> usize {
        self.plans.valid(self.chunks.generation())
    }

    /// How many generic plans `sql` holds now: statement shapes whose WHERE literals
    /// are bound into one plan (`catalog::template`).
    pub fn generic_plans(&self) -> usize {
        self.plans.valid_generic(self.chunks.generation())
    }

    /// The `episode_id`s of the episodes at `reference` where the SQL condition `cond`
    /// holds (`export --format lerobot --where`).
    pub async fn episode_ids(&self, reference: &str, cond: &str) -> Result<HashSet<String>> {
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::DataType;
        let q = format!("SELECT episode_id FROM episodes WHERE ({cond})");
        let mut out = HashSet::new();
        for b in self.sql(&q, Some(reference)).await? {
            let ids = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)
                .map_err(datafusion::error::DataFusionError::from)?;
            out.extend(ids.as_string::<i32>().iter().flatten().map(String::from));
        }
        Ok(out)
    }

    /// Per table and file, what changed from `from` to `to` (`diff_summary`).
    pub async fn diff_summary(&self, from: &str, to: &str) -> Result<Vec<RecordBatch>> {
        let q = format!(
            "SELECT * FROM diff_summary({}, {}) ORDER BY table_name, path",
            quote(from),
            quote(to)
        );
        self.sql(&q, None).await
    }

    /// The rows of `table` that differ between `from` and `to` (`version_diff`).
    pub async fn version_diff(
        &self,
        table: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<RecordBatch>> {
        let q = format!(
            "SELECT * FROM version_diff({}, {}, {})",
            quote(table),
            quote(from),
            quote(to)
        );
        self.sql(&q, None).await
    }

    /// Writes the files of `reference` whose format is `format` (all files for `None`)
    /// under `out`, at their stored paths, byte for byte: each file's SHA-256 is checked
    /// while it streams out, and a file appears only once it is complete.
    pub fn export_files(
        &self,
        reference: &str,
        format: Option<&str>,
        out: &Path,
    ) -> Result<Vec<(String, u64)>> {
        use sha2::Digest;
        use std::io::Write;
        let kv = self.chunks.kv();
        let r = self.resolve(reference)?;
        let root = version::manifest::load_root(kv, &version::refs::read_root(kv, &r)?)?;
        let mut written = Vec::new();
        for f in version::manifest::list_files(kv, &root)? {
            if format.is_some_and(|want| want != f.format) {
                continue;
            }
            let rel: PathBuf = Path::new(&f.path)
                .components()
                .filter(|c| matches!(c, std::path::Component::Normal(_)))
                .collect();
            let dest = out.join(&rel);
            let parent = dest.parent().unwrap_or(out).to_path_buf();
            std::fs::create_dir_all(&parent).map_err(|e| io_at(&parent, e))?;
            let tmp = parent.join(format!(
                ".{}.partial",
                rel.file_name().and_then(|n| n.to_str()).unwrap_or("file")
            ));
            let mut w =
                std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(|e| io_at(&tmp, e))?);
            let mut h = sha2::Sha256::new();
            for (id, _) in version::node::get_chunks(kv, &f.chunks)? {
                let bytes = self.chunks.read_chunk(&id)?;
                h.update(&bytes);
                w.write_all(&bytes).map_err(|e| io_at(&tmp, e))?;
            }
            w.flush().map_err(|e| io_at(&tmp, e))?;
            drop(w);
            if Id(h.finalize().into()) != f.sha256 {
                let _ = std::fs::remove_file(&tmp);
                return Err(StoreError::Corrupt {
                    what: format!("file {}", f.path),
                    detail: "its chunks do not hash to the recorded SHA-256; run 'bagbase fsck'"
                        .into(),
                }
                .into());
            }
            std::fs::rename(&tmp, &dest).map_err(|e| io_at(&dest, e))?;
            written.push((dest.display().to_string(), f.size_bytes));
        }
        Ok(written)
    }

    /// Writes every table of `reference` as Parquet under `out` (see `export::parquet`).
    pub fn export_parquet(
        &self,
        reference: &str,
        out: &Path,
    ) -> Result<Vec<export::ExportedTable>> {
        let kv = self.chunks.kv();
        let r = self.resolve(reference)?;
        let root_id = version::refs::read_root(kv, &r)?;
        let root = version::manifest::load_root(kv, &root_id)?;
        export::parquet::export(&self.chunks, &root, &r.version, out)
    }

    /// Writes the episodes and steps of `reference` as a LeRobot v3.0 dataset under `out`
    /// (see `export::lerobot`).
    pub fn export_lerobot(
        &self,
        reference: &str,
        out: &Path,
        opts: &export::lerobot::Options,
        progress: &dyn Progress,
    ) -> Result<export::lerobot::Summary> {
        let kv = self.chunks.kv();
        let r = self.resolve(reference)?;
        let root = version::manifest::load_root(kv, &version::refs::read_root(kv, &r)?)?;
        export::lerobot::export(&self.chunks, &root, out, opts, progress)
    }

    /// Re-hashes every chunk and checks every manifest node reachable from a version or
    /// working set; names the files and versions a damaged chunk breaks.
    pub fn fsck(&self) -> Result<FsckReport> {
        let _g = self.lock();
        let kv = self.chunks.kv();
        let check = self.chunks.check()?;
        let mut r = FsckReport {
            packs: check.packs,
            chunks: check.chunks,
            bytes: check.bytes,
            orphan_packs: check.orphan_packs,
            ..Default::default()
        };
        r.problems.extend(check.bad_packs);
        let bad: HashSet<Id> = check.bad_chunks.iter().map(|(id, _)| *id).collect();
        let roots = version::live_roots(kv)?;
        r.versions = roots
            .iter()
            .filter(|(l, _)| l.starts_with("version"))
            .count() as u64;
        let root_ids: Vec<Id> = roots.iter().map(|(_, id)| *id).collect();
        let mut missing: Vec<Id> = Vec::new();
        let mut node_problems = Vec::new();
        version::walk(
            kv,
            &root_ids,
            &mut |id, raw| {
                r.nodes += 1;
                match raw {
                    Err(e) => node_problems.push(format!("manifest node {id}: {e}")),
                    Ok(bytes) => {
                        if let Err(e) = version::node::children(id, bytes) {
                            node_problems.push(e.to_string());
                        }
                    }
                }
            },
            &mut |c| {
                if !bad.contains(c) && !self.chunks.has_chunk(c).unwrap_or(false) {
                    missing.push(*c);
                }
            },
        );
        r.problems.extend(node_problems);
        let mut broken: Vec<(Id, String)> = check.bad_chunks;
        broken.extend(
            missing
                .into_iter()
                .map(|c| (c, "referenced but not in the chunk index".to_string())),
        );
        let ids: HashSet<Id> = broken.iter().map(|(id, _)| *id).collect();
        let users = version::chunk_users(kv, &ids).unwrap_or_default();
        for (id, why) in broken {
            let (files, versions) = users.get(&id).cloned().unwrap_or_default();
            r.problems.push(format!(
                "chunk {id}: {why}; breaks {}; in {}",
                if files.is_empty() {
                    "no file".to_string()
                } else {
                    files.join(", ")
                },
                if versions.is_empty() {
                    "no version".to_string()
                } else {
                    versions.join(", ")
                },
            ));
        }
        Ok(r)
    }

    /// Removes every node and chunk no version and no working set reaches.
    pub fn gc(&self) -> Result<GcReport> {
        let _g = self.lock();
        let kv = self.chunks.kv();
        let roots: Vec<Id> = version::live_roots(kv)?
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        let mut live_chunks = HashSet::new();
        let mut failed = None;
        let live_nodes = version::walk(
            kv,
            &roots,
            &mut |id, raw| {
                if let Err(e) = raw {
                    failed.get_or_insert_with(|| format!("manifest node {id}: {e}"));
                }
            },
            &mut |c| {
                live_chunks.insert(*c);
            },
        );
        if let Some(f) = failed {
            return Err(StoreError::Corrupt {
                what: "manifest".into(),
                detail: format!("{f}; run 'bagbase fsck' — gc refuses to run on a damaged store"),
            }
            .into());
        }
        let mut dead = store::Batch::default();
        let mut nodes_removed = 0;
        kv.for_each_key(version::node::NODE_PREFIX, &mut |k| {
            if let Some(id) = Id::from_slice(&k[version::node::NODE_PREFIX.len()..]) {
                if !live_nodes.contains(&id) {
                    dead.delete(k.to_vec());
                    nodes_removed += 1;
                }
            }
            Ok(())
        })?;
        let g = self.chunks.collect_garbage(&live_chunks, dead)?;
        Ok(GcReport {
            nodes_removed,
            chunks_removed: g.chunks_removed,
            packs_deleted: g.packs_deleted,
            packs_rewritten: g.packs_rewritten,
            bytes_freed: g.bytes_freed,
        })
    }
}

fn io_at(path: &Path, source: std::io::Error) -> Error {
    StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
    .into()
}

/// DataFusion's message, plus the position in the query where DataFusion knows it.
fn sql_message(e: &datafusion::error::DataFusionError) -> String {
    let span = e.diagnostic().and_then(|d| d.span);
    match span {
        Some(s) if s.start.line > 0 => {
            format!("{e} (at line {}, column {})", s.start.line, s.start.column)
        }
        _ => e.to_string(),
    }
}

/// A SQL string literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn default_message(files: &[Ingested]) -> String {
    let changed: Vec<&str> = files
        .iter()
        .filter(|f| f.changed)
        .map(|f| f.entry.path.as_str())
        .collect();
    match changed.len() {
        0 => "ingest (no changes)".into(),
        1 => format!("ingest {}", changed[0]),
        n => format!("ingest {n} files"),
    }
}
