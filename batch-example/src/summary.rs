//! The batch summary: recorded as the `BatchWorkflow` result, printed for humans or as JSON.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::csv_chunks::MalformedRow;

/// A chunk that failed after its retries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedChunk {
    /// The chunk.
    pub index: u32,
    /// Its first data row.
    pub first_row: u64,
    /// The line its first record starts on.
    pub first_line: u64,
    /// Valid rows it holds (not in the output).
    pub rows: u64,
    /// Why it failed.
    pub error: String,
}

/// What a batch did: the `BatchWorkflow` result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSummary {
    /// The batch's workflow id.
    pub workflow_id: String,
    /// The CSV file.
    pub input: PathBuf,
    /// Data rows in the file.
    pub rows: u64,
    /// Valid rows.
    pub valid_rows: u64,
    /// Rows the API enriched.
    pub enriched: u64,
    /// Rows that got a fallback record (`enriched: false, region: "UNKNOWN"`).
    pub fallback: u64,
    /// Malformed rows (skipped).
    pub malformed: u64,
    /// The first malformed rows, with line numbers.
    pub malformed_rows: Vec<MalformedRow>,
    /// Chunks in the batch.
    pub chunks: u64,
    /// Chunks saved.
    pub chunks_done: u64,
    /// Chunks that failed after their retries.
    pub chunks_failed: Vec<FailedChunk>,
    /// Activity attempts beyond the first, over all activities.
    pub activity_retries: u64,
    /// When the batch started (Unix ms, workflow time).
    pub started_at_ms: u64,
    /// When the batch finished (Unix ms, workflow time).
    pub finished_at_ms: u64,
    /// Where the chunk files are.
    pub output_dir: PathBuf,
    /// Chunks this batch redid because an earlier run of it left them failed (running the
    /// same command again on a partial batch).
    #[serde(default)]
    pub retried_chunks: u64,
}

impl BatchSummary {
    /// Wall time from start to finish, including any time the process was stopped.
    pub fn elapsed_secs(&self) -> f64 {
        self.finished_at_ms.saturating_sub(self.started_at_ms) as f64 / 1000.0
    }

    /// Rows per second over the elapsed time.
    pub fn rows_per_sec(&self) -> f64 {
        let secs = self.elapsed_secs();
        if secs > 0.0 {
            self.rows as f64 / secs
        } else {
            0.0
        }
    }

    /// Rows in failed chunks (not in the output).
    pub fn rows_not_processed(&self) -> u64 {
        self.chunks_failed.iter().map(|c| c.rows).sum()
    }

    /// The summary as JSON, with the derived figures.
    pub fn to_json(&self, already_finished: bool) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("summary serializes");
        let obj = v.as_object_mut().expect("summary is an object");
        obj.insert("status".into(), if self.chunks_failed.is_empty() { "completed" } else { "partial" }.into());
        obj.insert("elapsed_secs".into(), self.elapsed_secs().into());
        obj.insert("rows_per_sec".into(), ((self.rows_per_sec() * 10.0).round() / 10.0).into());
        obj.insert("already_finished".into(), already_finished.into());
        v
    }

    /// The summary for humans.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let status = if self.chunks_failed.is_empty() { "completed" } else { "finished with failed chunks" };
        let _ = writeln!(s, "Batch {:?} {status} in {:.1} s", self.workflow_id, self.elapsed_secs());
        let _ = writeln!(s, "  rows         {:>10}  ({:.0} rows/s)", grouped(self.rows), self.rows_per_sec());
        let _ = writeln!(s, "  enriched     {:>10}", grouped(self.enriched));
        let _ = writeln!(s, "  fallback     {:>10}  (API call failed: region UNKNOWN)", grouped(self.fallback));
        let _ = write!(s, "  malformed    {:>10}", grouped(self.malformed));
        if let Some(first) = self.malformed_rows.first() {
            let _ = write!(s, "  (skipped; first: line {}: {})", first.line, first.reason);
        }
        s.push('\n');
        for m in self.malformed_rows.iter().take(5).skip(1) {
            let _ = writeln!(s, "                            line {}: {}", m.line, m.reason);
        }
        let _ = writeln!(
            s,
            "  chunks       {:>10}  done, {} failed, of {}",
            grouped(self.chunks_done),
            self.chunks_failed.len(),
            self.chunks
        );
        if self.retried_chunks > 0 {
            let _ = writeln!(
                s,
                "                            {} retried after an earlier run left them failed",
                self.retried_chunks
            );
        }
        for c in &self.chunks_failed {
            let _ = writeln!(
                s,
                "    chunk {} (rows {}.., line {}, {} rows not processed): {}",
                c.index, c.first_row, c.first_line, c.rows, c.error
            );
        }
        let _ =
            writeln!(s, "  retries      {:>10}  activity attempts beyond the first", grouped(self.activity_retries));
        let _ = writeln!(s, "  output       {}", self.output_dir.display());
        s
    }
}

/// `12345` as `12,345`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_digits() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
    }

    #[test]
    fn renders_and_serializes() {
        let s = BatchSummary {
            workflow_id: "b".into(),
            rows: 10,
            enriched: 8,
            fallback: 1,
            malformed: 1,
            malformed_rows: vec![MalformedRow { line: 3, row: 2, reason: "invalid email \"x\"".into() }],
            chunks: 2,
            chunks_done: 2,
            started_at_ms: 1000,
            finished_at_ms: 3000,
            ..BatchSummary::default()
        };
        let text = s.render();
        assert!(text.contains("completed in 2.0 s"), "{text}");
        assert!(text.contains("line 3: invalid email"), "{text}");
        let json = s.to_json(false);
        assert_eq!(json["rows_per_sec"], 5.0);
        assert_eq!(json["status"], "completed");
    }
}
