//! The `bagbase` command: parses arguments and calls the library (and picks the
//! allocator). Nothing else.

mod cli;

/// mimalloc for `serve`, glibc's malloc for every other command (src/cli/alloc.rs).
#[global_allocator]
static ALLOCATOR: cli::alloc::ProcessAlloc = cli::alloc::ProcessAlloc;

fn main() {
    std::process::exit(cli::run());
}
