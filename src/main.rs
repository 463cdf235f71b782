//! The `bagbase` command: parses arguments and calls the library. Nothing else.

mod cli;

fn main() {
    std::process::exit(cli::run());
}
