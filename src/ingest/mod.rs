//! Ingest: expands the paths a user gives, detects each file's format, and stores the
//! file's bytes as chunks with a `files` entry in the working set. Format decoders
//! (later) add rows to tables through the same `WorkingEdit`. Readers here never see
//! DataFusion's session; they write through `version/` only.

pub mod detect;
pub mod error;
pub mod hdf5;
pub mod lineproto;
pub mod mcap;
pub mod message;
pub mod rosbag1;
pub mod steps;

pub use detect::Format;
pub use error::IngestError;

use crate::store::ChunkWriter;
use crate::version::chunk_list::ChunkListBuilder;
use crate::version::manifest::{file_id_for, FileEntry};
use crate::version::WorkingEdit;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// One file found under the paths given to `ingest`.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: PathBuf,
    /// The name stored in `files.path`: the path as given, cleaned of `.` parts.
    pub name: String,
    pub size: u64,
}

/// Receives progress of a long ingest (the CLI draws a bar; the library passes `()`).
pub trait Progress: Sync {
    fn file(&self, _name: &str, _size: u64) {}
    fn advance(&self, _bytes: u64) {}
}

impl Progress for () {}

fn clean(path: &Path) -> String {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    let s = out.to_string_lossy().to_string();
    if s.is_empty() {
        ".".into()
    } else {
        s
    }
}

/// Expands files and directories (recursively, in name order). Fails before anything
/// is written if a path cannot be read.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<Source>, IngestError> {
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out)?;
    }
    if out.is_empty() {
        return Err(IngestError::Empty("no files under the given paths".into()));
    }
    Ok(out)
}

fn walk(p: &Path, out: &mut Vec<Source>) -> Result<(), IngestError> {
    let open_err = |source| IngestError::Open {
        path: p.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(p).map_err(open_err)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(open_err)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(open_err)?;
        entries.sort();
        for e in entries {
            walk(&e, out)?;
        }
        Ok(())
    } else if meta.is_file() {
        std::fs::File::open(p).map_err(open_err)?;
        out.push(Source {
            path: p.to_path_buf(),
            name: clean(p),
            size: meta.len(),
        });
        Ok(())
    } else {
        Err(IngestError::NotAFile {
            path: p.to_path_buf(),
        })
    }
}

/// What happened to one file.
#[derive(Clone, Debug)]
pub struct Ingested {
    pub entry: FileEntry,
    pub format: Format,
    /// False when the working set already held this exact file at this path.
    pub changed: bool,
    /// Things a user should know that did not stop the ingest (a bag cut short...).
    pub warnings: Vec<String>,
}

/// How files are read.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// A recording cut short is an error instead of a warning.
    pub strict: bool,
    /// How decoded recordings become episodes and steps.
    pub align: steps::AlignConfig,
}

/// Stores one stream as the file `name` in the working set.
pub fn ingest_reader<R: Read + Send>(
    edit: &mut WorkingEdit<'_>,
    chunks: &mut ChunkWriter<'_>,
    name: &str,
    mut reader: R,
    progress: &dyn Progress,
) -> Result<Ingested, crate::Error> {
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < head.len() {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(IngestError::Read {
                    path: name.into(),
                    offset: got as u64,
                    source,
                }
                .into())
            }
        }
    }
    let format = detect::detect(Path::new(name), &head[..got]);
    let stream = std::io::Cursor::new(head[..got].to_vec()).chain(reader);
    let advance = |n| progress.advance(n);
    let trees = chunks.store().config().chunk_trees();
    let mut list = ChunkListBuilder::new(trees.then(|| chunks.stager()));
    let blob = match chunks.put_stream_to(stream, &advance, &mut list)? {
        Ok(b) => b,
        Err((offset, source)) => {
            return Err(IngestError::Read {
                path: name.into(),
                offset,
                source,
            }
            .into())
        }
    };
    let file_id = file_id_for(name);
    let previous = edit.root.file(&file_id)?;
    let list = list.finish(&mut edit.nodes, chunks.kv())?;
    if let Some(prev) = previous.filter(|p| p.sha256 == blob.sha256 && p.chunks == list) {
        return Ok(Ingested {
            entry: prev,
            format,
            changed: false,
            warnings: vec![],
        });
    }
    let entry = FileEntry {
        file_id,
        path: name.to_string(),
        format: format.as_str().to_string(),
        size_bytes: blob.size,
        sha256: blob.sha256,
        chunk_count: blob.chunks,
        ingested_at: crate::version::record::now_ns(),
        chunks: list,
    };
    edit.root.put_file(entry.clone())?;
    edit.root.drop_file_rows(&entry.file_id)?;
    Ok(Ingested {
        entry,
        format,
        changed: true,
        warnings: vec![],
    })
}

fn open(path: &Path) -> Result<std::fs::File, IngestError> {
    std::fs::File::open(path).map_err(|source| IngestError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// `open`, buffered, for a decoder's many small reads.
fn open_buffered(path: &Path) -> Result<std::io::BufReader<std::fs::File>, IngestError> {
    Ok(std::io::BufReader::with_capacity(1 << 20, open(path)?))
}

/// Stores one file found by `expand`, then decodes it into tables if its format has a
/// decoder (a second, streaming pass over the file).
pub fn ingest_file(
    edit: &mut WorkingEdit<'_>,
    chunks: &mut ChunkWriter<'_>,
    src: &Source,
    opts: &ReadOptions,
    progress: &dyn Progress,
) -> Result<Ingested, crate::Error> {
    progress.file(&src.name, src.size);
    let is_bag_name = src
        .path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("bag"));
    // Unbuffered: the chunk pipeline reads in blocks of MiBs, and a buffer in between
    // only added a copy of every byte (≈ 2 % of an ingest's CPU).
    let mut done = ingest_reader(edit, chunks, &src.name, open(&src.path)?, progress)?;
    let bag = done.format == Format::Rosbag1
        || (is_bag_name && matches!(done.format, Format::Empty | Format::Opaque));
    type Decoder = fn(
        &mut WorkingEdit<'_>,
        &mut ChunkWriter<'_>,
        &str,
        &str,
        std::io::BufReader<std::fs::File>,
        &ReadOptions,
    ) -> Result<Vec<String>, crate::Error>;
    let decoder: Option<Decoder> = match done.format {
        _ if bag => Some(rosbag1::ingest::decode_into),
        Format::Mcap => Some(mcap::ingest::decode_into),
        Format::LineProtocol => Some(|edit, chunks, name, _, input, opts| {
            lineproto::ingest_file(edit, chunks, name, input, opts.strict)
        }),
        _ => None,
    };
    if done.format == Format::Hdf5 && done.changed {
        let file_id = done.entry.file_id.clone();
        let warnings =
            hdf5::ingest::decode_into(edit, chunks, &src.name, &file_id, &src.path, opts)?;
        done.warnings.extend(warnings);
    }
    if let Some(decode) = decoder.filter(|_| done.changed) {
        let file_id = done.entry.file_id.clone();
        let warnings = decode(
            edit,
            chunks,
            &src.name,
            &file_id,
            open_buffered(&src.path)?,
            opts,
        )?;
        done.warnings.extend(warnings);
    }
    Ok(done)
}
