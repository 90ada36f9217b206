//! What the user sees while a batch runs: progress bars on a terminal, plain log lines
//! otherwise, and log output that does not tear the bars.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use tokio::sync::watch;
use tracing::info;

use crate::progress::{Progress, Snapshot};
use crate::summary::grouped;

/// The terminal (or not) on stderr.
#[derive(Clone)]
pub struct Display {
    multi: MultiProgress,
    tty: bool,
}

impl Default for Display {
    fn default() -> Self {
        Display::new()
    }
}

impl Display {
    /// Bars when stderr is a terminal, log lines otherwise.
    pub fn new() -> Self {
        let tty = std::io::stderr().is_terminal();
        let target = if tty { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        Display { multi: MultiProgress::with_draw_target(target), tty }
    }

    /// Whether progress is drawn as bars.
    pub fn is_tty(&self) -> bool {
        self.tty
    }

    /// A `tracing` writer that prints log lines above the bars.
    pub fn log_writer(&self) -> LogWriter {
        LogWriter { multi: self.multi.clone() }
    }

    /// Shows `progress` until `stop` turns true.
    pub async fn show(&self, progress: Progress, mut stop: watch::Receiver<bool>) {
        if self.tty {
            self.bars(progress, &mut stop).await;
        } else {
            lines(progress, &mut stop).await;
        }
    }

    async fn bars(&self, progress: Progress, stop: &mut watch::Receiver<bool>) {
        let style =
            |template: &str| ProgressStyle::with_template(template).expect("valid template").progress_chars("=> ");
        let chunks = self.multi.add(ProgressBar::new(0));
        chunks.set_style(style("{prefix:>8} [{bar:40.cyan/blue}] {pos}/{len} {msg}"));
        chunks.set_prefix("chunks");
        let records = self.multi.add(ProgressBar::new(0));
        records.set_style(style("{prefix:>8} [{bar:40.green/white}] {pos}/{len} ({rate}, eta {eta})").with_key(
            "rate",
            |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", s.per_sec());
            },
        ));
        records.set_prefix("records");
        loop {
            let s = progress.snapshot();
            chunks.set_length(s.total_chunks.unwrap_or(0));
            chunks.set_position(s.chunks_done);
            chunks.set_message(if s.chunks_failed > 0 {
                format!("({} failed)", s.chunks_failed)
            } else {
                String::new()
            });
            records.set_length(s.total_rows.unwrap_or(0));
            records.set_position(s.records);
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = stop.changed() => {}
            }
        }
        chunks.finish_and_clear();
        records.finish_and_clear();
        self.multi.clear().ok();
    }
}

async fn lines(progress: Progress, stop: &mut watch::Receiver<bool>) {
    let mut last = Snapshot::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.changed() => return,
        }
        let s = progress.snapshot();
        if s != last && s.total_chunks.is_some() {
            info!(
                "progress: {}/{} chunks, {}/{} records{}",
                s.chunks_done,
                s.total_chunks.unwrap_or(0),
                grouped(s.records),
                grouped(s.total_rows.unwrap_or(0)),
                if s.chunks_failed > 0 { format!(", {} chunks failed", s.chunks_failed) } else { String::new() }
            );
            last = s;
        }
    }
}

/// Makes [`LogLine`]s for `tracing_subscriber`.
#[derive(Clone)]
pub struct LogWriter {
    multi: MultiProgress,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine { multi: self.multi.clone(), buf: Vec::new() }
    }
}

/// One log event, written to stderr in one piece when dropped, with the bars out of the way.
pub struct LogLine {
    multi: MultiProgress,
    buf: Vec<u8>,
}

impl Write for LogLine {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            self.multi.suspend(|| {
                let _ = std::io::stderr().write_all(&buf);
            });
        }
    }
}
