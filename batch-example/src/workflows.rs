//! The batch's workflows: `BatchWorkflow` orchestrates a `LoadChunksWorkflow` child and one
//! `EnrichAndSaveWorkflow` child per chunk.
//!
//! Workflow code only orchestrates: CSV parsing, HTTP and files happen in activities. Chunks
//! travel as descriptors (byte ranges), so a history holds counts and paths, never rows.

use std::path::PathBuf;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use workflow_core::{
    ActivityFailure, ChildFailure, ChildWorkflowOptions, Failure, Payload, Workflow, WorkflowContext, WorkflowError,
};

use crate::activities::{
    EnrichChunk, EnrichChunkInput, LoadCsvChunks, LoadInput, LoadOutput, SaveChunk, SaveChunkInput,
};
use crate::csv_chunks::ChunkDescriptor;
use crate::summary::{BatchSummary, FailedChunk};

/// Input of [`BatchWorkflow`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchInput {
    /// The CSV file (absolute).
    pub input: PathBuf,
    /// Valid rows per chunk.
    pub chunk_size: u64,
    /// Chunks in flight at once.
    pub concurrency: u32,
    /// The batch's output folder, `<out>/batch-<sanitized workflow id>`.
    pub batch_dir: PathBuf,
    /// The summary of an earlier run of this batch that ended with failed chunks: this run
    /// redoes only those chunks and adds to that summary.
    #[serde(default)]
    pub retry_of: Option<BatchSummary>,
    /// The longest CSV record (line) to read, in bytes.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: u64,
}

fn default_max_record_bytes() -> u64 {
    crate::csv_chunks::DEFAULT_MAX_RECORD_BYTES
}

/// The child workflow id of chunk `index` of batch `batch_id`.
pub fn chunk_workflow_id(batch_id: &str, index: u32) -> String {
    format!("{batch_id}/chunk-{index:05}")
}

/// The child workflow id of the loader of batch `batch_id`.
pub fn load_workflow_id(batch_id: &str) -> String {
    format!("{batch_id}/load")
}

/// The whole batch: load the CSV into chunks, then enrich and save every chunk, at most
/// `concurrency` at a time. A chunk that fails after its retries is recorded in the summary;
/// the other chunks still finish.
pub struct BatchWorkflow;

impl Workflow for BatchWorkflow {
    const NAME: &'static str = "batch";
    type Input = BatchInput;
    type Output = BatchSummary;

    async fn run(ctx: WorkflowContext, input: BatchInput) -> Result<BatchSummary, WorkflowError> {
        let batch_id = ctx.workflow_id();
        let started = ctx.now();
        let loaded = ctx
            .child_with::<LoadChunksWorkflow>(
                LoadInput {
                    path: input.input.clone(),
                    chunk_size: input.chunk_size,
                    max_record_bytes: input.max_record_bytes,
                },
                ChildWorkflowOptions::default().id(load_workflow_id(&batch_id)),
            )
            .await?;
        let load = loaded.load;
        if let Some(previous) = input.retry_of.clone() {
            return retry_failed(&ctx, &input, previous, load.chunks, loaded.attempt).await;
        }
        let mut summary = BatchSummary {
            workflow_id: batch_id.clone(),
            input: input.input.clone(),
            rows: load.rows,
            valid_rows: load.valid_rows,
            malformed: load.malformed_count,
            malformed_rows: load.malformed.clone(),
            chunks: load.chunks.len() as u64,
            activity_retries: u64::from(loaded.attempt.saturating_sub(1)),
            output_dir: input.batch_dir.clone(),
            started_at_ms: started.as_millis(),
            ..BatchSummary::default()
        };

        run_chunks(&ctx, &input, load.chunks, &mut summary).await?;
        summary.finished_at_ms = ctx.now().as_millis();
        Ok(summary)
    }
}

/// Runs one child per chunk, `input.concurrency` at a time, adding their outcomes to `summary`.
/// A cancelled batch starts no more chunks (the engine asks the running ones to cancel) and
/// ends cancelled.
async fn run_chunks(
    ctx: &WorkflowContext,
    input: &BatchInput,
    chunks: Vec<ChunkDescriptor>,
    summary: &mut BatchSummary,
) -> Result<(), WorkflowError> {
    let batch_id = ctx.workflow_id();
    // `buffered` starts children in chunk order and yields results in chunk order, so the
    // commands issued are the same on replay whatever order the children finished in.
    let mut outcomes = futures::stream::iter(chunks)
        .map(|chunk| {
            let child = ctx.child_with::<EnrichAndSaveWorkflow>(
                EnrichChunkInput { chunk: chunk.clone(), batch_dir: input.batch_dir.clone() },
                ChildWorkflowOptions::default().id(chunk_workflow_id(&batch_id, chunk.index)),
            );
            async move { (chunk, child.await) }
        })
        .buffered(input.concurrency.max(1) as usize);
    while let Some((chunk, outcome)) = outcomes.next().await {
        match outcome {
            Ok(done) => {
                summary.chunks_done += 1;
                summary.enriched += done.enriched;
                summary.fallback += done.fallback;
                summary.activity_retries += done.retries;
            }
            Err(failure) => {
                summary.activity_retries += retries_of(&failure);
                summary.chunks_failed.push(failed_chunk(&chunk, &failure));
            }
        }
        if ctx.is_cancel_requested() {
            return Err(WorkflowError::Cancelled);
        }
    }
    Ok(())
}

/// A run that redoes only the chunks an earlier run left failed, on top of its summary.
async fn retry_failed(
    ctx: &WorkflowContext,
    input: &BatchInput,
    previous: BatchSummary,
    chunks: Vec<ChunkDescriptor>,
    load_attempt: u32,
) -> Result<BatchSummary, WorkflowError> {
    let failed: Vec<u32> = previous.chunks_failed.iter().map(|c| c.index).collect();
    let again: Vec<ChunkDescriptor> = chunks.into_iter().filter(|c| failed.contains(&c.index)).collect();
    let mut summary = BatchSummary {
        chunks_failed: Vec::new(),
        retried_chunks: previous.retried_chunks + again.len() as u64,
        activity_retries: previous.activity_retries + u64::from(load_attempt.saturating_sub(1)),
        started_at_ms: ctx.now().as_millis(),
        ..previous
    };
    run_chunks(ctx, input, again, &mut summary).await?;
    summary.finished_at_ms = ctx.now().as_millis();
    Ok(summary)
}

/// Details a failed chunk child records, so the batch can count its retries.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkFailureDetails {
    /// Attempts the failing activity made.
    pub attempts: u32,
}

fn retries_of(failure: &ChildFailure) -> u64 {
    let attempts = failure
        .cause
        .as_ref()
        .and_then(|c| c.details.as_ref())
        .and_then(|d| d.decode::<ChunkFailureDetails>("chunk failure details").ok())
        .map_or(0, |d| d.attempts);
    u64::from(attempts.saturating_sub(1))
}

fn failed_chunk(chunk: &ChunkDescriptor, failure: &ChildFailure) -> FailedChunk {
    // The root cause says what went wrong ("ApiUnavailable: all 100 calls failed ...").
    let root =
        failure.cause.as_ref().and_then(|c| c.chain().last()).map_or_else(|| failure.to_string(), Failure::to_string);
    FailedChunk {
        index: chunk.index,
        first_row: chunk.first_row,
        first_line: chunk.first_line,
        rows: chunk.rows,
        error: root,
    }
}

/// Loads the CSV into chunk descriptors with the `load_csv_chunks` activity.
pub struct LoadChunksWorkflow;

impl Workflow for LoadChunksWorkflow {
    const NAME: &'static str = "load_chunks";
    type Input = LoadInput;
    type Output = LoadOutput;

    async fn run(ctx: WorkflowContext, input: LoadInput) -> Result<LoadOutput, WorkflowError> {
        Ok(ctx.activity::<LoadCsvChunks>(input).await?)
    }
}

/// What one chunk produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkOutcome {
    /// The chunk.
    pub index: u32,
    /// Records saved.
    pub records: u64,
    /// Of those, enriched.
    pub enriched: u64,
    /// Of those, fallbacks.
    pub fallback: u64,
    /// Activity retries the chunk needed.
    pub retries: u64,
    /// The output file.
    pub file: PathBuf,
}

/// Enriches one chunk, then saves it.
pub struct EnrichAndSaveWorkflow;

fn chunk_failure(f: ActivityFailure) -> WorkflowError {
    let attempts = match &f {
        ActivityFailure::Failed { attempts, .. } | ActivityFailure::TimedOut { attempts, .. } => *attempts,
        _ => 0,
    };
    if matches!(f, ActivityFailure::Cancelled { .. }) {
        return WorkflowError::Cancelled;
    }
    let mut failure = f.to_failure();
    failure.details = Payload::encode(&ChunkFailureDetails { attempts }).ok();
    WorkflowError::Failed(failure)
}

impl Workflow for EnrichAndSaveWorkflow {
    const NAME: &'static str = "enrich_and_save";
    type Input = EnrichChunkInput;
    type Output = ChunkOutcome;

    async fn run(ctx: WorkflowContext, input: EnrichChunkInput) -> Result<ChunkOutcome, WorkflowError> {
        let batch_dir = input.batch_dir.clone();
        let enriched = ctx.activity::<EnrichChunk>(input).await.map_err(chunk_failure)?;
        let saved = ctx
            .activity::<SaveChunk>(SaveChunkInput {
                index: enriched.index,
                batch_dir,
                staged: enriched.staged.clone(),
                records: enriched.records,
            })
            .await
            .map_err(chunk_failure)?;
        Ok(ChunkOutcome {
            index: enriched.index,
            records: saved.records,
            enriched: enriched.enriched,
            fallback: enriched.fallback,
            retries: u64::from(enriched.attempt.saturating_sub(1) + saved.attempt.saturating_sub(1)),
            file: saved.file,
        })
    }
}
