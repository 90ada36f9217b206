//! The batch's activities: `load_csv_chunks`, `enrich_chunk` and `save_chunk`.
//!
//! Rows travel by reference: `load_csv_chunks` returns chunk descriptors (byte ranges),
//! `enrich_chunk` re-reads its range and appends enriched records to a staging file
//! `<batch dir>/.staging/chunk-<index>.jsonl`, and `save_chunk` turns the staging file into
//! `<batch dir>/chunk-<index>.json` atomically. Only counts go back into histories.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};
use workflow_core::{Activity, ActivityContext, ActivityError, ActivityOptions, RetryPolicy};

use crate::csv_chunks::{self, ChunkDescriptor, CsvError, LoadResult, User};
use crate::mock_api::{EnrichRequest, EnrichResponse};
use crate::progress::Progress;

/// The options every batch activity runs with: start-to-close 5 min, heartbeat timeout 15 s,
/// at most 3 attempts, retries after 1 s, 2 s, ... capped at 30 s.
pub fn batch_activity_options() -> ActivityOptions {
    ActivityOptions::default()
        .start_to_close_timeout(Duration::from_secs(300))
        .heartbeat_timeout(Duration::from_secs(15))
        .retry_policy(
            RetryPolicy::default()
                .maximum_attempts(3)
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(30)),
        )
}

/// Where chunk `index`'s final output goes.
pub fn chunk_path(batch_dir: &Path, index: u32) -> PathBuf {
    batch_dir.join(format!("chunk-{index:05}.json"))
}

/// Where chunk `index`'s enriched records are staged before they are saved.
pub fn staging_path(batch_dir: &Path, index: u32) -> PathBuf {
    batch_dir.join(".staging").join(format!("chunk-{index:05}.jsonl"))
}

fn io_error(what: impl std::fmt::Display, e: std::io::Error) -> ActivityError {
    // Disk errors (full, permissions) may clear up; let the retry policy decide.
    ActivityError::retryable("Io", format!("{what}: {e}"))
}

/// An append-only log of activity attempts (`--audit-log`): tests read it to prove that no
/// chunk was enriched again after it was saved.
#[derive(Clone)]
pub struct AuditLog {
    path: PathBuf,
    lock: Arc<Mutex<()>>,
}

impl AuditLog {
    /// A log appending to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        AuditLog { path: path.into(), lock: Arc::default() }
    }

    fn write(&self, line: std::fmt::Arguments<'_>) {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let r = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = r {
            warn!(path = %self.path.display(), error = %e, "cannot write the audit log");
        }
    }
}

/// Input of `load_csv_chunks`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadInput {
    /// The CSV file.
    pub path: PathBuf,
    /// Valid rows per chunk.
    pub chunk_size: u64,
}

/// Output of `load_csv_chunks`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadOutput {
    /// What the loader found.
    pub load: LoadResult,
    /// The attempt that produced it (retries = attempt - 1).
    pub attempt: u32,
}

/// Parses the CSV and splits it into chunk descriptors. Malformed rows are reported, not
/// fatal; a missing file or header column is a non-retryable failure.
#[derive(Clone, Default)]
pub struct LoadCsvChunks {
    progress: Progress,
}

impl LoadCsvChunks {
    /// The activity, reporting totals to `progress`.
    pub fn new(progress: Progress) -> Self {
        LoadCsvChunks { progress }
    }
}

impl Activity for LoadCsvChunks {
    const NAME: &'static str = "load_csv_chunks";
    type Input = LoadInput;
    type Output = LoadOutput;

    fn options() -> ActivityOptions {
        batch_activity_options()
    }

    async fn run(&self, ctx: ActivityContext, input: LoadInput) -> Result<LoadOutput, ActivityError> {
        let attempt = ctx.attempt();
        let beat = ctx.clone();
        let path = input.path.clone();
        let load = tokio::task::spawn_blocking(move || {
            csv_chunks::load_chunks(&path, input.chunk_size, |rows| beat.heartbeat(&format!("{rows} rows read")))
        })
        .await
        .map_err(|e| ActivityError::retryable("Panic", e.to_string()))?
        .map_err(|e: CsvError| {
            if e.retryable() {
                ActivityError::retryable("CsvIo", e.to_string())
            } else {
                ActivityError::non_retryable("InvalidInput", e.to_string())
            }
        })?;
        for m in load.malformed.iter().take(10) {
            info!(line = m.line, row = m.row, reason = %m.reason, "malformed row skipped");
        }
        if load.malformed_count > 10 {
            info!(more = load.malformed_count - 10, "more malformed rows skipped");
        }
        info!(rows = load.rows, chunks = load.chunks.len(), malformed = load.malformed_count, "CSV loaded");
        self.progress.set_totals(load.valid_rows, load.chunks.len() as u64);
        Ok(LoadOutput { load, attempt })
    }
}

/// Input of `enrich_chunk`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnrichChunkInput {
    /// The chunk to enrich.
    pub chunk: ChunkDescriptor,
    /// The batch's output folder.
    pub batch_dir: PathBuf,
}

/// Output of `enrich_chunk`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnrichChunkOutput {
    /// The chunk.
    pub index: u32,
    /// Records staged.
    pub records: u64,
    /// Records the API enriched.
    pub enriched: u64,
    /// Records that got a fallback because their call failed.
    pub fallback: u64,
    /// The attempt that finished the chunk.
    pub attempt: u32,
}

/// Heartbeat details of `enrich_chunk`: enough to resume a retried attempt where the last one
/// stopped.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnrichHeartbeat {
    /// Records processed (and staged) so far.
    pub processed: u64,
    /// Records in the chunk.
    pub total: u64,
    /// Of those, enriched.
    pub enriched: u64,
    /// Of those, fallbacks.
    pub fallback: u64,
    /// Length of the staging file holding exactly `processed` records.
    pub staged_bytes: u64,
}

/// One output record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrichedRecord {
    /// Data row number in the input.
    pub row: u64,
    /// The user's id.
    pub id: String,
    /// The user's name.
    pub name: String,
    /// The user's email.
    pub email: String,
    /// The user's country.
    pub country: String,
    /// The region, or `"UNKNOWN"` for a fallback.
    pub region: String,
    /// The segment, when enriched.
    pub segment: Option<String>,
    /// Whether the API enriched the record.
    pub enriched: bool,
    /// Why the call failed, for a fallback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl EnrichedRecord {
    fn enriched(user: User, resp: EnrichResponse) -> Self {
        EnrichedRecord {
            row: user.row,
            id: user.id,
            name: user.name,
            email: user.email,
            country: user.country,
            region: resp.region,
            segment: Some(resp.segment),
            enriched: true,
            error: None,
        }
    }

    fn fallback(user: User, error: String) -> Self {
        EnrichedRecord {
            row: user.row,
            id: user.id,
            name: user.name,
            email: user.email,
            country: user.country,
            region: "UNKNOWN".into(),
            segment: None,
            enriched: false,
            error: Some(error),
        }
    }
}

/// Why one call failed.
enum CallError {
    /// The API could not be reached at all.
    Connect,
    /// It answered, but not usefully (5xx, garbage, timeout).
    Other(String),
}

/// Enriches one chunk through the enrichment API, a bounded number of calls at a time. A
/// failed call gives a fallback record; a chunk where every call fails to connect is a
/// retryable failure (the API is down). Heartbeats `i/n processed` and, on a retried attempt,
/// resumes after the records the last heartbeat covered.
#[derive(Clone)]
pub struct EnrichChunk {
    http: reqwest::Client,
    api_url: String,
    concurrency: usize,
    progress: Progress,
    audit: Option<AuditLog>,
}

impl EnrichChunk {
    /// The activity calling the API at `api_url` (`POST <api_url>/enrich`).
    pub fn new(api_url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .expect("a plain HTTP client builds");
        EnrichChunk {
            http,
            api_url: api_url.into().trim_end_matches('/').to_string(),
            concurrency: 16,
            progress: Progress::new(),
            audit: None,
        }
    }

    /// Calls in flight per chunk (default 16).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Reports heartbeats to `progress`.
    pub fn progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// Appends attempts to `audit`.
    pub fn audit(mut self, audit: Option<AuditLog>) -> Self {
        self.audit = audit;
        self
    }

    async fn call(&self, user: &User) -> Result<EnrichResponse, CallError> {
        let req = EnrichRequest { id: user.id.clone(), email: user.email.clone(), country: user.country.clone() };
        let resp = self.http.post(format!("{}/enrich", self.api_url)).json(&req).send().await.map_err(|e| {
            if e.is_connect() {
                CallError::Connect
            } else if e.is_timeout() {
                CallError::Other("timeout".into())
            } else {
                CallError::Other(format!("request failed: {e}"))
            }
        })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(CallError::Other(format!("HTTP {}", status.as_u16())));
        }
        let body = resp.bytes().await.map_err(|_| CallError::Other("response body interrupted".into()))?;
        let parsed: EnrichResponse =
            serde_json::from_slice(&body).map_err(|_| CallError::Other("invalid JSON response".into()))?;
        if parsed.id != user.id {
            return Err(CallError::Other("response for another user".into()));
        }
        Ok(parsed)
    }
}

impl Activity for EnrichChunk {
    const NAME: &'static str = "enrich_chunk";
    type Input = EnrichChunkInput;
    type Output = EnrichChunkOutput;

    fn options() -> ActivityOptions {
        batch_activity_options()
    }

    async fn run(&self, ctx: ActivityContext, input: EnrichChunkInput) -> Result<EnrichChunkOutput, ActivityError> {
        let index = input.chunk.index;
        let attempt = ctx.attempt();
        let chunk = input.chunk.clone();
        let users = tokio::task::spawn_blocking(move || csv_chunks::read_chunk(&chunk))
            .await
            .map_err(|e| ActivityError::retryable("Panic", e.to_string()))?
            .map_err(|e| ActivityError::retryable("CsvIo", e.to_string()))?;
        let total = users.len() as u64;

        let staging = staging_path(&input.batch_dir, index);
        if let Some(dir) = staging.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_error(dir.display(), e))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&staging)
            .map_err(|e| io_error(staging.display(), e))?;
        let on_disk = file.metadata().map_err(|e| io_error(staging.display(), e))?.len();
        // Resume only from a heartbeat that matches the chunk and the staging file; records
        // written after the last recorded heartbeat are cut off and redone.
        let mut state = match ctx.last_heartbeat::<EnrichHeartbeat>() {
            Some(h) if h.total == total && h.processed <= total && h.staged_bytes <= on_disk => h,
            _ => EnrichHeartbeat { total, ..EnrichHeartbeat::default() },
        };
        file.set_len(state.staged_bytes).map_err(|e| io_error(staging.display(), e))?;
        file.seek(SeekFrom::End(0)).map_err(|e| io_error(staging.display(), e))?;
        if let Some(a) = &self.audit {
            a.write(format_args!("enrich-start chunk={index} attempt={attempt} from={}", state.processed));
        }
        if state.processed > 0 {
            info!(
                chunk = index,
                attempt,
                resumed_at = state.processed,
                total,
                "resuming chunk from its last heartbeat"
            );
        }
        self.progress.records(index, state.processed, total);

        let skip = state.processed as usize;
        let mut results = futures::stream::iter(users.into_iter().skip(skip))
            .map(|user| async move {
                let outcome = self.call(&user).await;
                (user, outcome)
            })
            .buffered(self.concurrency);

        // Until one call of this attempt gets an answer, records are held back: if every call
        // fails to connect, the API is down and the attempt fails without staging fallbacks.
        let mut reachable = false;
        let mut held: Vec<(User, String)> = Vec::new();
        let mut write = |record: EnrichedRecord, state: &mut EnrichHeartbeat| -> Result<(), ActivityError> {
            let mut line = serde_json::to_vec(&record).expect("records serialize");
            line.push(b'\n');
            file.write_all(&line).map_err(|e| io_error(staging.display(), e))?;
            state.processed += 1;
            state.staged_bytes += line.len() as u64;
            if record.enriched {
                state.enriched += 1;
            } else {
                state.fallback += 1;
            }
            Ok(())
        };
        while let Some((user, outcome)) = results.next().await {
            if ctx.is_cancelled() {
                return Err(ActivityError::retryable("Cancelled", "enrich_chunk was cancelled"));
            }
            match outcome {
                Err(CallError::Connect) if !reachable => {
                    held.push((user, "connection failed".into()));
                    continue;
                }
                Ok(resp) => {
                    reachable = true;
                    for (u, e) in held.drain(..) {
                        write(EnrichedRecord::fallback(u, e), &mut state)?;
                    }
                    write(EnrichedRecord::enriched(user, resp), &mut state)?;
                }
                Err(e) => {
                    let error = match e {
                        CallError::Connect => "connection failed".to_string(),
                        CallError::Other(m) => m,
                    };
                    debug!(chunk = index, row = user.row, id = %user.id, %error, "enrichment failed; fallback record");
                    reachable = true;
                    for (u, e) in held.drain(..) {
                        write(EnrichedRecord::fallback(u, e), &mut state)?;
                    }
                    write(EnrichedRecord::fallback(user, error), &mut state)?;
                }
            }
            ctx.heartbeat(&state);
            self.progress.records(index, state.processed, total);
        }
        if !held.is_empty() {
            return Err(ActivityError::retryable(
                "ApiUnavailable",
                format!("all {} calls of chunk {index} failed to connect to {}", held.len(), self.api_url),
            ));
        }
        drop(results);
        file.sync_data().map_err(|e| io_error(staging.display(), e))?;
        if let Some(a) = &self.audit {
            a.write(format_args!("enrich-done chunk={index} attempt={attempt} records={}", state.processed));
        }
        debug!(chunk = index, attempt, enriched = state.enriched, fallback = state.fallback, "chunk enriched");
        Ok(EnrichChunkOutput {
            index,
            records: state.processed,
            enriched: state.enriched,
            fallback: state.fallback,
            attempt,
        })
    }
}

/// Input of `save_chunk`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SaveChunkInput {
    /// The chunk.
    pub index: u32,
    /// The batch's output folder.
    pub batch_dir: PathBuf,
    /// Records `enrich_chunk` staged.
    pub records: u64,
}

/// Output of `save_chunk`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SaveChunkOutput {
    /// The chunk.
    pub index: u32,
    /// Records in the file.
    pub records: u64,
    /// The file written.
    pub file: PathBuf,
    /// The attempt that saved it.
    pub attempt: u32,
}

/// Writes a chunk's staged records to `chunk-<index>.json` atomically (temp file, fsync,
/// rename): a retried or replayed save overwrites the same file, never duplicates or tears it.
#[derive(Clone, Default)]
pub struct SaveChunk {
    progress: Progress,
    audit: Option<AuditLog>,
}

impl SaveChunk {
    /// The activity, reporting saved chunks to `progress` and attempts to `audit`.
    pub fn new(progress: Progress, audit: Option<AuditLog>) -> Self {
        SaveChunk { progress, audit }
    }
}

fn save(input: &SaveChunkInput) -> Result<u64, ActivityError> {
    let staging = staging_path(&input.batch_dir, input.index);
    let target = chunk_path(&input.batch_dir, input.index);
    let staged = match File::open(&staging) {
        Ok(f) => f,
        // An earlier attempt renamed the file and then died before its result was recorded.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && target.exists() => {
            let records: Vec<serde_json::Value> =
                serde_json::from_slice(&std::fs::read(&target).map_err(|e| io_error(target.display(), e))?)
                    .map_err(|e| ActivityError::non_retryable("CorruptOutput", format!("{}: {e}", target.display())))?;
            return Ok(records.len() as u64);
        }
        Err(e) => return Err(io_error(staging.display(), e)),
    };
    let tmp = target.with_extension("json.tmp");
    let mut out = std::io::BufWriter::new(File::create(&tmp).map_err(|e| io_error(tmp.display(), e))?);
    let mut count = 0u64;
    let werr = |e| io_error(tmp.display(), e);
    out.write_all(b"[").map_err(werr)?;
    for line in BufReader::new(staged).lines() {
        let line = line.map_err(|e| io_error(staging.display(), e))?;
        if line.is_empty() {
            continue;
        }
        out.write_all(if count == 0 { b"\n" } else { b",\n" }).map_err(werr)?;
        out.write_all(line.as_bytes()).map_err(werr)?;
        count += 1;
    }
    out.write_all(b"\n]\n").map_err(werr)?;
    if count != input.records {
        let _ = std::fs::remove_file(&tmp);
        return Err(ActivityError::non_retryable(
            "StagingMismatch",
            format!("{} holds {count} records, enrich_chunk staged {}", staging.display(), input.records),
        ));
    }
    out.into_inner().map_err(|e| werr(e.into_error()))?.sync_all().map_err(werr)?;
    std::fs::rename(&tmp, &target).map_err(|e| io_error(target.display(), e))?;
    // Make the rename itself durable before the staging copy goes away.
    if let Ok(dir) = File::open(&input.batch_dir) {
        let _ = dir.sync_all();
    }
    let _ = std::fs::remove_file(&staging);
    Ok(count)
}

impl Activity for SaveChunk {
    const NAME: &'static str = "save_chunk";
    type Input = SaveChunkInput;
    type Output = SaveChunkOutput;

    fn options() -> ActivityOptions {
        batch_activity_options()
    }

    async fn run(&self, ctx: ActivityContext, input: SaveChunkInput) -> Result<SaveChunkOutput, ActivityError> {
        let attempt = ctx.attempt();
        let job = input.clone();
        let records = tokio::task::spawn_blocking(move || save(&job))
            .await
            .map_err(|e| ActivityError::retryable("Panic", e.to_string()))??;
        if let Some(a) = &self.audit {
            a.write(format_args!("save-done chunk={} attempt={attempt} records={records}", input.index));
        }
        self.progress.saved(input.index, records);
        Ok(SaveChunkOutput { index: input.index, records, file: chunk_path(&input.batch_dir, input.index), attempt })
    }
}
