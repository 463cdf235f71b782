//! Command-line parsing and dispatch (SPEC section 2). Each command is a thin call
//! into `bagbase::Store`; printing lives in `output.rs`, progress in `progress.rs`.

pub mod alloc;
mod output;
mod password;
mod progress;

use bagbase::store::StoreConfig;
use bagbase::{IngestOptions, Store};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "bagbase",
    version,
    about = "Versioned storage and SQL for robot and training data"
)]
struct Cli {
    /// The store directory.
    #[arg(
        long,
        global = true,
        env = "BAGBASE_STORE",
        default_value = "./bagbase-store"
    )]
    store: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new store.
    Init {
        /// FastCDC minimum chunk size in bytes.
        #[arg(long, default_value_t = StoreConfig::default().chunk_min)]
        chunk_min: u32,
        /// FastCDC average chunk size in bytes.
        #[arg(long, default_value_t = StoreConfig::default().chunk_avg)]
        chunk_avg: u32,
        /// FastCDC maximum chunk size in bytes.
        #[arg(long, default_value_t = StoreConfig::default().chunk_max)]
        chunk_max: u32,
        /// zstd compression level of stored chunks (1-22).
        #[arg(long, default_value_t = StoreConfig::default().zstd_level)]
        zstd_level: i32,
    },
    /// Ingest files and directories (recursively); commits unless --no-commit.
    Ingest {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long, default_value = "main")]
        branch: String,
        #[arg(short = 'm', long)]
        message: Option<String>,
        #[arg(long)]
        no_commit: bool,
        /// Topic whose timestamps define steps (used by episode alignment).
        #[arg(long)]
        main_topic: Option<String>,
        /// Alignment/episode configuration (TOML).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Treat a recording cut short as an error instead of a warning.
        #[arg(long)]
        strict: bool,
    },
    /// Turn the working set of a branch into a version.
    Commit {
        #[arg(short = 'm', long, required = true)]
        message: String,
        #[arg(long, default_value = "main")]
        branch: String,
    },
    /// Show the history of a ref (default: main).
    Log {
        #[arg(default_value = "main")]
        reference: String,
    },
    /// Create a tag (it never moves).
    Tag {
        name: String,
        #[arg(default_value = "main")]
        reference: String,
    },
    /// Create a branch with its own working set.
    Branch {
        name: String,
        #[arg(default_value = "main")]
        from: String,
    },
    /// Run a SQL query.
    Sql {
        query: String,
        /// What unqualified table names read (branch, tag or version).
        #[arg(long = "ref", default_value = "main")]
        reference: String,
        #[arg(long, value_enum, default_value_t = output::Format::Table)]
        format: output::Format,
    },
    /// What changed between two refs: a summary per table and file, or with --rows
    /// TABLE the changed rows of one table.
    Diff {
        from: String,
        to: String,
        #[arg(long)]
        rows: Option<String>,
        #[arg(long, value_enum, default_value_t = output::Format::Table)]
        format: output::Format,
    },
    /// Write out the data of a version: `bag` gives back every ROS1 bag byte for byte.
    Export {
        #[arg(long = "ref", default_value = "main")]
        reference: String,
        #[arg(long, value_enum)]
        format: ExportFormat,
        out: PathBuf,
        /// lerobot: the task text of every episode.
        #[arg(long, default_value = "unspecified")]
        task: String,
        /// lerobot: frames per second in info.json (default: the steps' mean rate).
        #[arg(long)]
        fps: Option<u32>,
        /// lerobot: only the episodes matching this SQL condition on the `episodes`
        /// table, e.g. "file_id IN (SELECT file_id FROM files WHERE path LIKE '%.hdf5')".
        #[arg(long = "where")]
        filter: Option<String>,
    },
    /// Serve the PostgreSQL wire protocol (the database name picks the ref).
    Serve {
        #[arg(long, default_value = "127.0.0.1:5433")]
        listen: std::net::SocketAddr,
        /// PEM certificate chain; with --tls-key, clients may use SSL.
        #[arg(long)]
        tls_cert: Option<PathBuf>,
        #[arg(long)]
        tls_key: Option<PathBuf>,
        /// How users prove their password: scram-sha-256, md5, or password (TLS only).
        #[arg(long, default_value = "scram-sha-256")]
        auth: bagbase::server::AuthMethod,
        /// Memory the queries of one ref may hold at once, in MiB; a query needing
        /// more fails with SQLSTATE 53200.
        #[arg(long)]
        memory_limit: Option<usize>,
        /// Also take InfluxDB line-protocol writes over HTTP on this address
        /// (POST /write, POST /api/v2/write, GET /health, /ping).
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
        /// Largest HTTP request body accepted, in MiB (compressed or not).
        #[arg(long, default_value_t = 25)]
        max_body_mb: usize,
    },
    /// Manage the users who may connect to `serve`.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// How long points of a measurement are kept (line-protocol tables).
    Retention {
        #[command(subcommand)]
        action: RetentionAction,
    },
    /// Rollup tables of line-protocol measurements, kept up to date on every write.
    Downsample {
        #[command(subcommand)]
        action: DownsampleAction,
    },
    /// Re-hash every chunk and check every manifest; exit 1 on any damage.
    Fsck,
    /// Drop chunks and nodes that no version and no working set references.
    Gc,
}

#[derive(Subcommand)]
enum RetentionAction {
    /// Keep points of MEASUREMENT for DURATION (30d, 12h, 90m, 2w; inf = forever), and
    /// remove older ones from the branch's working set now.
    Set {
        measurement: String,
        duration: String,
        #[arg(long, default_value = "main")]
        branch: String,
    },
    /// List the rules.
    List,
    /// Remove every point older than its rule from the branch's working set.
    Apply {
        #[arg(long, default_value = "main")]
        branch: String,
    },
}

#[derive(Subcommand)]
enum DownsampleAction {
    /// Roll SOURCE up into TARGET: per tag set and bucket of --every, `count` and
    /// `mean_`/`min_`/`max_` of every numeric field; backfilled now, then kept up to
    /// date by every write into SOURCE.
    Add {
        source: String,
        #[arg(long)]
        every: String,
        #[arg(long)]
        into: String,
        #[arg(long, default_value = "main")]
        branch: String,
    },
    /// List the rules.
    List,
    /// Stop maintaining TARGET (its rows stay).
    Remove { target: String },
}

#[derive(Subcommand)]
enum UserAction {
    /// Add a user; the password comes from a prompt or --password-stdin.
    Add {
        name: String,
        #[arg(long, default_value = "read")]
        role: bagbase::users::Role,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users and their roles.
    List,
    /// Remove a user.
    Remove { name: String },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    Bag,
    Parquet,
    Lerobot,
}

/// redb's cache for commands other than `serve` (see `store::meta::set_cache_bytes`).
const ONE_SHOT_META_CACHE: usize = 256 << 10;

/// Runs the command line; returns the process exit status.
pub fn run() -> i32 {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve { .. });
    alloc::tune(serving);
    if !serving {
        bagbase::store::meta::set_cache_bytes(ONE_SHOT_META_CACHE);
    }
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn dispatch(cli: Cli) -> bagbase::Result<i32> {
    let path = cli.store;
    match cli.command {
        Command::Init {
            chunk_min,
            chunk_avg,
            chunk_max,
            zstd_level,
        } => {
            let config = StoreConfig {
                chunk_min,
                chunk_avg,
                chunk_max,
                zstd_level,
                ..StoreConfig::default()
            };
            Store::init(&path, config)?;
            println!("initialized empty bagbase store in {}", path.display());
            Ok(0)
        }
        Command::Ingest {
            paths,
            branch,
            message,
            no_commit,
            main_topic,
            config,
            strict,
        } => {
            let store = Store::open(&path)?;
            let sources = bagbase::ingest::expand(&paths)?;
            let bar = progress::Bar::new(sources.iter().map(|s| s.size).sum());
            let started = Instant::now();
            let opts = IngestOptions {
                branch: branch.clone(),
                message,
                commit: !no_commit,
                author: None,
                strict,
                align: align_config(config.as_deref(), main_topic)?,
            };
            let report = store.ingest(&paths, &opts, &bar);
            bar.finish();
            let report = report?;
            for w in report.files.iter().flat_map(|f| &f.warnings) {
                eprintln!("warning: {w}");
            }
            println!(
                "{}",
                output::ingest_summary(&report, &branch, started.elapsed())
            );
            Ok(0)
        }
        Command::Commit { message, branch } => {
            let store = Store::open(&path)?;
            let id = store.commit(&branch, &message)?;
            println!("[{branch} {}] {message}", &id.hex()[..12]);
            Ok(0)
        }
        Command::Log { reference } => {
            let store = Store::open(&path)?;
            print!("{}", output::log(&store.log(&reference)?));
            Ok(0)
        }
        Command::Tag { name, reference } => {
            let store = Store::open(&path)?;
            let id = store.tag(&name, &reference)?;
            println!("tag {name} -> {}", &id.hex()[..12]);
            Ok(0)
        }
        Command::Branch { name, from } => {
            let store = Store::open(&path)?;
            let id = store.branch(&name, &from)?;
            println!("branch {name} -> {}", &id.hex()[..12]);
            Ok(0)
        }
        Command::Sql {
            query,
            reference,
            format,
        } => {
            let store = Store::open(&path)?;
            let rt = runtime()?;
            let batches = rt.block_on(store.sql(&query, Some(&reference)))?;
            output::write_batches(&batches, format)?;
            Ok(0)
        }
        Command::Diff {
            from,
            to,
            rows,
            format,
        } => {
            let store = Store::open(&path)?;
            let rt = runtime()?;
            let batches = rt.block_on(async {
                match &rows {
                    Some(t) => store.version_diff(t, &from, &to).await,
                    None => store.diff_summary(&from, &to).await,
                }
            })?;
            output::write_batches(&batches, format)?;
            Ok(0)
        }
        Command::Export {
            reference,
            format,
            out,
            task,
            fps,
            filter,
        } => {
            let store = Store::open(&path)?;
            match format {
                ExportFormat::Bag => {
                    let files = store.export_files(&reference, Some("rosbag1"), &out)?;
                    let total: u64 = files.iter().map(|f| f.1).sum();
                    println!(
                        "exported {} bags ({}) to {}",
                        files.len(),
                        output::bytes(total),
                        out.display()
                    );
                    Ok(0)
                }
                ExportFormat::Parquet => {
                    let tables = store.export_parquet(&reference, &out)?;
                    let rows: u64 = tables.iter().map(|t| t.rows).sum();
                    let files: usize = tables.iter().map(|t| t.files).sum();
                    println!(
                        "exported {} tables ({rows} rows in {files} Parquet files) to {}",
                        tables.len(),
                        out.display()
                    );
                    Ok(0)
                }
                ExportFormat::Lerobot => {
                    let bar = progress::Bar::steps(0);
                    let episodes = match filter {
                        Some(cond) => {
                            Some(runtime()?.block_on(store.episode_ids(&reference, &cond))?)
                        }
                        None => None,
                    };
                    let opts = bagbase::export::lerobot::Options {
                        task,
                        fps,
                        episodes,
                    };
                    let res = store.export_lerobot(&reference, &out, &opts, &bar);
                    bar.finish();
                    let s = res?;
                    for w in &s.warnings {
                        eprintln!("warning: {w}");
                    }
                    println!(
                        "exported {} episodes ({} frames at {} fps, {} data files; features {}) to {}",
                        s.episodes,
                        s.frames,
                        s.fps,
                        s.data_files,
                        s.features.join(", "),
                        out.display()
                    );
                    Ok(0)
                }
            }
        }
        Command::Serve {
            listen,
            tls_cert,
            tls_key,
            auth,
            memory_limit,
            http,
            max_body_mb,
        } => {
            let store = std::sync::Arc::new(Store::open(&path)?);
            let opts = bagbase::server::ServeOptions {
                listen,
                tls_cert,
                tls_key,
                auth,
                memory_limit: memory_limit.map(|m| m << 20),
                http,
                max_body: max_body_mb << 20,
            };
            let rt = runtime()?;
            let served = rt.block_on(async {
                // Installed before the server says it is ready, so a SIGTERM sent as
                // soon as it listens is a clean stop, not the default kill.
                let term = unix_signal(tokio::signal::unix::SignalKind::terminate())?;
                let int = unix_signal(tokio::signal::unix::SignalKind::interrupt())?;
                bagbase::server::serve(
                    store,
                    opts,
                    |addr, http| {
                        println!("bagbase serving {} on {addr}", path.display());
                        if let Some(http) = http {
                            println!("bagbase http (InfluxDB writes) on {http}");
                        }
                        let _ = std::io::Write::flush(&mut std::io::stdout());
                    },
                    shutdown_signal(term, int),
                )
                .await
                .map_err(|e| e.to_string())
            });
            match served {
                Ok(()) => Ok(0),
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(1)
                }
            }
        }
        Command::Downsample { action } => {
            let store = Store::open(&path)?;
            match action {
                DownsampleAction::Add {
                    source,
                    every,
                    into,
                    branch,
                } => {
                    let every_ns =
                        match bagbase::ingest::lineproto::retention::parse_duration(&every) {
                            Ok(Some(ns)) => ns,
                            Ok(None) => {
                                eprintln!("error: --every needs a finite duration, like 5m");
                                return Ok(2);
                            }
                            Err(e) => {
                                eprintln!("error: {e}");
                                return Ok(2);
                            }
                        };
                    let n = store.add_downsample(&source, &into, every_ns, &branch)?;
                    println!("{into}: {source} rolled up every {every}; {n} points backfilled on {branch}");
                }
                DownsampleAction::List => {
                    for r in store.downsample_rules()? {
                        println!("{}\t{}\t{}", r.target, r.source, human_duration(r.every_ns));
                    }
                }
                DownsampleAction::Remove { target } => {
                    store.remove_downsample(&target)?;
                    println!("{target}: no longer maintained");
                }
            }
            Ok(0)
        }
        Command::Retention { action } => {
            let store = Store::open(&path)?;
            let apply = |branch: &str| -> Result<(), bagbase::Error> {
                for (table, n) in store.apply_retention(branch)? {
                    println!("{table}: {n} points older than the rule removed from {branch}");
                }
                Ok(())
            };
            match action {
                RetentionAction::Set {
                    measurement,
                    duration,
                    branch,
                } => {
                    let keep =
                        match bagbase::ingest::lineproto::retention::parse_duration(&duration) {
                            Ok(k) => k,
                            Err(e) => {
                                eprintln!("error: {e}");
                                return Ok(2);
                            }
                        };
                    store.set_retention(&measurement, keep)?;
                    match keep {
                        Some(_) => println!("{measurement}: points kept for {duration}"),
                        None => println!("{measurement}: points kept forever"),
                    }
                    apply(&branch)?;
                }
                RetentionAction::List => {
                    for (m, ns) in store.retention()? {
                        println!("{m}\t{}", human_duration(ns));
                    }
                }
                RetentionAction::Apply { branch } => apply(&branch)?,
            }
            Ok(0)
        }
        Command::User { action } => {
            let store = Store::open(&path)?;
            match action {
                UserAction::Add {
                    name,
                    role,
                    password_stdin,
                } => {
                    let password = if password_stdin {
                        let mut line = String::new();
                        std::io::stdin().read_line(&mut line)?;
                        line.trim_end_matches(['\r', '\n']).to_string()
                    } else {
                        password::prompt(&name)?
                    };
                    store.add_user(&name, role, &password)?;
                    println!("user {name} added with role {role}");
                }
                UserAction::List => {
                    for u in store.users()? {
                        println!("{}\t{}", u.name, u.role);
                    }
                }
                UserAction::Remove { name } => {
                    store.remove_user(&name)?;
                    println!("user {name} removed");
                }
            }
            Ok(0)
        }
        Command::Fsck => {
            let store = Store::open(&path)?;
            let r = store.fsck()?;
            print!("{}", output::fsck(&r));
            Ok(if r.problems.is_empty() { 0 } else { 1 })
        }
        Command::Gc => {
            let store = Store::open(&path)?;
            let r = store.gc()?;
            println!(
                "gc: freed {} ({} chunks, {} manifest nodes removed; {} packs deleted, {} rewritten)",
                output::bytes(r.bytes_freed),
                r.chunks_removed,
                r.nodes_removed,
                r.packs_deleted,
                r.packs_rewritten
            );
            Ok(0)
        }
    }
}

fn unix_signal(
    kind: tokio::signal::unix::SignalKind,
) -> Result<tokio::signal::unix::Signal, String> {
    tokio::signal::unix::signal(kind).map_err(|e| format!("cannot handle signals: {e}"))
}

/// SIGTERM or Ctrl-C: stop accepting, let running queries finish, exit 0.
async fn shutdown_signal(
    mut term: tokio::signal::unix::Signal,
    mut int: tokio::signal::unix::Signal,
) {
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// The alignment config of `ingest`: the `--config` file, with `--main-topic` over it.
fn align_config(
    file: Option<&std::path::Path>,
    main_topic: Option<String>,
) -> bagbase::Result<bagbase::ingest::steps::AlignConfig> {
    let mut cfg = match file {
        Some(f) => bagbase::ingest::steps::AlignConfig::from_file(f).map_err(|what| {
            bagbase::ingest::IngestError::Bad {
                path: f.display().to_string(),
                what: format!("alignment config: {what}"),
            }
        })?,
        None => Default::default(),
    };
    if let Some(t) = main_topic {
        cfg.main_topic = Some(t);
        cfg.fps = None;
    }
    Ok(cfg)
}

/// Nanoseconds as the largest whole unit (`30d`, `90m`).
fn human_duration(ns: i64) -> String {
    for (unit, size) in [
        ("w", 604_800_000_000_000i64),
        ("d", 86_400_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
    ] {
        if ns % size == 0 {
            return format!("{}{unit}", ns / size);
        }
    }
    format!("{}s", ns / 1_000_000_000)
}
