//! Progress bars (ingest: bytes; export: steps), drawn on stderr only when it is a
//! terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub struct Bar(ProgressBar);

impl Bar {
    pub fn new(total: u64) -> Bar {
        Self::with(
            total,
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
    }

    /// A bar counting steps; `file(_, n)` sets its length.
    pub fn steps(total: u64) -> Bar {
        Self::with(
            total,
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} steps {per_sec} {msg}",
        )
    }

    fn with(total: u64, template: &str) -> Bar {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let pb = ProgressBar::with_draw_target(Some(total), target);
        pb.set_style(ProgressStyle::with_template(template).expect("static template"));
        Bar(pb)
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl bagbase::ingest::Progress for Bar {
    fn file(&self, name: &str, size: u64) {
        if self.0.length() == Some(0) {
            self.0.set_length(size);
        }
        self.0.set_message(name.to_string());
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}
