//! # batch-example: the CSV enrichment batch
//!
//! A durable batch job on `workflow-core`: read a users CSV, enrich every user through an
//! HTTP API, and write the enriched records as JSON files, one per chunk. Kill it at any
//! point (Ctrl-C, `kill -9`), run the same command again, and it resumes the same workflow:
//! saved chunks are not redone and the output equals an uninterrupted run's.
//!
//! ```text
//! cargo run -p batch-example                      # 10,000 generated users, mock API
//! cargo run -p batch-example -- --input users.csv --chunk-size 1000 --concurrency 8
//! ```
//!
//! The shape:
//!
//! - [`BatchWorkflow`](workflows::BatchWorkflow) starts a child
//!   [`LoadChunksWorkflow`](workflows::LoadChunksWorkflow), whose `load_csv_chunks` activity
//!   parses the CSV into small [`ChunkDescriptor`](csv_chunks::ChunkDescriptor)s (byte ranges,
//!   not rows, so histories stay small);
//! - then, for each chunk, at most `--concurrency` at a time, a child
//!   [`EnrichAndSaveWorkflow`](workflows::EnrichAndSaveWorkflow) runs `enrich_chunk` (HTTP
//!   calls, heartbeats, resume from the last heartbeat) and `save_chunk` (atomic file write);
//! - a chunk that fails after its retries is recorded in the [`BatchSummary`](summary::BatchSummary)
//!   and the others finish.
#![warn(missing_docs)]

pub mod activities;
pub mod app;
pub mod cli;
pub mod csv_chunks;
pub mod display;
pub mod mock_api;
pub mod progress;
pub mod summary;
pub mod workflows;
