//! Progress bars for long commands (indicatif, on stderr), drawn only when
//! stderr is a terminal; otherwise hidden, so pipes and logs get no escape
//! sequences.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

fn bar(len: u64, template: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        // Whole records per second: indicatif's own {per_sec} prints four decimals.
        let rate = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}/s", state.per_sec());
        };
        bar.set_style(style.progress_chars("=> ").with_key("rate", rate));
    }
    bar
}

/// Bytes of an input of known size; hidden when the size is unknown (a pipe).
pub fn bytes(total: Option<u64>) -> ProgressBar {
    match total {
        Some(len) => bar(len, "{elapsed_precise} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)"),
        None => ProgressBar::hidden(),
    }
}

/// Bytes copied of a total that may grow, with a message saying what moves.
pub fn copying(total: u64) -> ProgressBar {
    bar(total, "{elapsed_precise} [{bar:40}] {bytes}/{total_bytes} copied, {msg} ({bytes_per_sec}, {eta} left)")
}

/// A count of records.
pub fn records(total: u64) -> ProgressBar {
    bar(total, "{elapsed_precise} [{bar:40}] {human_pos}/{human_len} records ({rate}, {eta} left)")
}

/// A spinner with the elapsed time for a wait of unknown length (describing
/// a group's lag, planning and committing an offset reset), drawn only on a
/// terminal. Dropping it clears it, so the output that follows stands alone.
pub struct Spinner(ProgressBar);

impl Spinner {
    /// Starts spinning with `message`.
    pub fn new(message: &str) -> Spinner {
        if !std::io::stderr().is_terminal() {
            return Spinner(ProgressBar::hidden());
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(message.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Spinner(bar)
    }

    /// Changes what it says it is waiting for.
    pub fn say(&self, message: &str) {
        self.0.set_message(message.to_string());
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
