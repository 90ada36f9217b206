//! Progress of a batch: chunks and records, merged from two sources.
//!
//! Activities in this process report their heartbeats here as they go (records processed in
//! a chunk, a chunk saved), which makes the bar move smoothly. The store is the authority for
//! everything that happened before this process started (a resumed batch): [`Progress::merge_chunk`]
//! takes what a poll of the chunk children found. Both are merged by keeping the furthest
//! state per chunk.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Where one chunk stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkProgress {
    /// Records processed so far.
    pub processed: u64,
    /// Records in the chunk, once known.
    pub total: u64,
    /// Saved (its output file is complete).
    pub done: bool,
    /// Failed after its retries.
    pub failed: bool,
}

/// A point-in-time view of the batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Valid rows to enrich, once the CSV is loaded.
    pub total_rows: Option<u64>,
    /// Chunks, once the CSV is loaded.
    pub total_chunks: Option<u64>,
    /// Records enriched (or given a fallback) so far.
    pub records: u64,
    /// Chunks saved.
    pub chunks_done: u64,
    /// Chunks failed.
    pub chunks_failed: u64,
}

#[derive(Default)]
struct State {
    totals: Option<(u64, u64)>,
    chunks: BTreeMap<u32, ChunkProgress>,
}

/// Shared progress of one batch. Cheap to clone.
#[derive(Clone, Default)]
pub struct Progress(Arc<Mutex<State>>);

impl Progress {
    /// A fresh tracker.
    pub fn new() -> Self {
        Progress::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The CSV is loaded: `rows` valid rows in `chunks` chunks.
    pub fn set_totals(&self, rows: u64, chunks: u64) {
        self.state().totals = Some((rows, chunks));
    }

    /// A heartbeat of chunk `index`: `processed` of `total` records.
    pub fn records(&self, index: u32, processed: u64, total: u64) {
        let mut s = self.state();
        let c = s.chunks.entry(index).or_default();
        c.processed = c.processed.max(processed);
        c.total = total;
    }

    /// Chunk `index` is saved with `rows` records.
    pub fn saved(&self, index: u32, rows: u64) {
        self.merge_chunk(index, ChunkProgress { processed: rows, total: rows, done: true, failed: false });
    }

    /// Merges what the store says about chunk `index`, keeping the furthest state.
    pub fn merge_chunk(&self, index: u32, seen: ChunkProgress) {
        let mut s = self.state();
        let c = s.chunks.entry(index).or_default();
        c.processed = c.processed.max(seen.processed);
        c.total = c.total.max(seen.total);
        c.done |= seen.done;
        c.failed = (c.failed || seen.failed) && !c.done;
    }

    /// The current view.
    pub fn snapshot(&self) -> Snapshot {
        let s = self.state();
        Snapshot {
            total_rows: s.totals.map(|t| t.0),
            total_chunks: s.totals.map(|t| t.1),
            records: s.chunks.values().map(|c| c.processed).sum(),
            chunks_done: s.chunks.values().filter(|c| c.done).count() as u64,
            chunks_failed: s.chunks.values().filter(|c| c.failed).count() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_heartbeats_and_store_state() {
        let p = Progress::new();
        p.set_totals(300, 3);
        p.records(0, 40, 100);
        p.records(0, 30, 100); // a late, older heartbeat does not move the bar back
        p.saved(1, 100);
        p.merge_chunk(2, ChunkProgress { processed: 0, total: 100, done: false, failed: true });
        let s = p.snapshot();
        assert_eq!((s.records, s.chunks_done, s.chunks_failed), (140, 1, 1));
        assert_eq!((s.total_rows, s.total_chunks), (Some(300), Some(3)));
    }
}
