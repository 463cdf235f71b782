//! The `bagbase` command: parses arguments and calls the library (and picks the
//! allocator). Nothing else.

mod cli;

/// mimalloc rather than glibc's malloc: a served point lookup spent ≈ 15 % of its CPU
/// in glibc's allocator (docs/BENCHMARKS.md, serve).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(cli::run());
}
