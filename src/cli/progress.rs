//! The ingest progress bar: drawn on stderr only when it is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub struct Bar(ProgressBar);

impl Bar {
    pub fn new(total: u64) -> Bar {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let pb = ProgressBar::with_draw_target(Some(total), target);
        pb.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {msg}")
                .expect("static template"),
        );
        Bar(pb)
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl bagbase::ingest::Progress for Bar {
    fn file(&self, name: &str, _size: u64) {
        self.0.set_message(name.to_string());
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}
