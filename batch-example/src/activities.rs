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

/// Where attempt `attempt` of `enrich_chunk` stages chunk `index`'s records before they are
/// saved. Each attempt writes a file of its own: an attempt that lost its lease but still runs
/// (a stalled worker) can never interleave its writes with its successor's.
pub fn staging_path(batch_dir: &Path, index: u32, attempt: u32) -> PathBuf {
    batch_dir.join(".staging").join(format!("chunk-{index:05}.attempt-{attempt}.jsonl"))
}

/// Removes every staging file of chunk `index`.
fn remove_staging(batch_dir: &Path, index: u32) {
    let prefix = format!("chunk-{index:05}.");
    if let Ok(entries) = std::fs::read_dir(batch_dir.join(".staging")) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// The records an earlier attempt staged for chunk `index` that can be kept: the longest run of
/// complete lines, in any staging file of the chunk, that are exactly the chunk's first users in
/// order. Usually it reaches past the last heartbeat (heartbeats reach the store at most every
/// half heartbeat timeout); a torn last line or a record for the wrong user ends it.
fn staged_prefix(batch_dir: &Path, index: u32, users: &[User]) -> Option<(PathBuf, EnrichHeartbeat)> {
    let prefix = format!("chunk-{index:05}.attempt-");
    let mut best: Option<(PathBuf, EnrichHeartbeat)> = None;
    for entry in std::fs::read_dir(batch_dir.join(".staging")).ok()?.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let Ok(bytes) = std::fs::read(entry.path()) else { continue };
        let mut found = EnrichHeartbeat { total: users.len() as u64, ..EnrichHeartbeat::default() };
        for (line, user) in bytes.split_inclusive(|b| *b == b'\n').zip(users) {
            let Some(json) = line.strip_suffix(b"\n") else { break };
            let Ok(record) = serde_json::from_slice::<EnrichedRecord>(json) else { break };
            if record.row != user.row || record.id != user.id {
                break;
            }
            found.processed += 1;
            found.staged_bytes += line.len() as u64;
            if record.enriched {
                found.enriched += 1;
            } else {
                found.fallback += 1;
            }
        }
        if best.as_ref().is_none_or(|(_, b)| found.processed > b.processed) {
            best = Some((entry.path(), found));
        }
    }
    best.filter(|(_, b)| b.processed > 0)
}

/// Opens attempt `attempt`'s staging file for chunk `index`, starting with the first
/// `resume.staged_bytes` bytes of `from` (an earlier attempt's file, or this one's).
fn open_staging(path: &Path, from: Option<&Path>, resume: &EnrichHeartbeat) -> std::io::Result<File> {
    std::fs::create_dir_all(path.parent().expect("staging files are in a folder"))?;
    if let Some(from) = from.filter(|f| *f != path) {
        // Copied, not shared: the earlier attempt may still be running somewhere (a stalled
        // worker whose lease expired) and must not write into this attempt's file.
        let mut out = File::create(path)?;
        std::io::copy(&mut std::io::Read::take(File::open(from)?, resume.staged_bytes), &mut out)?;
    }
    let mut file = OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
    // Anything after the kept records (a torn line) is cut off.
    file.set_len(resume.staged_bytes)?;
    file.seek(SeekFrom::End(0))?;
    Ok(file)
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
            .and_then(|mut f| f.write_all(format!("{line} pid={}\n", std::process::id()).as_bytes()));
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
    /// The longest record (line) to read, in bytes.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: u64,
}

fn default_max_record_bytes() -> u64 {
    csv_chunks::DEFAULT_MAX_RECORD_BYTES
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
            csv_chunks::load_chunks_limited(&path, input.chunk_size, input.max_record_bytes, |rows| {
                beat.heartbeat(&format!("{rows} rows read"))
            })
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
    /// The staging file holding the records.
    pub staged: PathBuf,
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
    /// The attempt whose staging file holds them.
    #[serde(default)]
    pub attempt: u32,
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
/// resumes after the records the earlier attempt staged: at least those its last heartbeat
/// covered, and any complete records it wrote after that.
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
        if total != input.chunk.rows {
            return Err(ActivityError::non_retryable(
                "InputChanged",
                format!(
                    "chunk {index} of {} held {} valid rows when loaded and holds {total} now; the file changed during the batch, run it with --restart",
                    input.chunk.path.display(),
                    input.chunk.rows
                ),
            ));
        }

        let staging = staging_path(&input.batch_dir, index, attempt);
        let heartbeat = ctx.last_heartbeat::<EnrichHeartbeat>().filter(|h| h.total == total);
        let kept = staged_prefix(&input.batch_dir, index, &users);
        let mut state = EnrichHeartbeat { total, attempt, ..EnrichHeartbeat::default() };
        let mut file = match kept.as_ref().map(|(from, k)| (open_staging(&staging, Some(from), k), k)) {
            Some((Ok(file), k)) => {
                state = EnrichHeartbeat { attempt, ..k.clone() };
                file
            }
            Some((Err(_), _)) | None => {
                open_staging(&staging, None, &state).map_err(|e| io_error(staging.display(), e))?
            }
        };
        if let Some(a) = &self.audit {
            a.write(format_args!("enrich-start chunk={index} attempt={attempt} from={}", state.processed));
        }
        if state.processed > 0 || heartbeat.is_some() {
            info!(
                chunk = index,
                attempt,
                resumed_at = state.processed,
                last_heartbeat = heartbeat.map_or(0, |h| h.processed),
                total,
                "resuming chunk after the records an earlier attempt staged"
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
            staged: staging,
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
    /// The staging file `enrich_chunk` wrote.
    pub staged: PathBuf,
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
    let staging = &input.staged;
    let target = chunk_path(&input.batch_dir, input.index);
    let staged = match File::open(staging) {
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
    remove_staging(&input.batch_dir, input.index);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_chunks::load_chunks;
    use crate::mock_api::{behaviour, Behaviour, MockApi, MockApiOptions};
    use workflow_core::testing::ActivityTestContext;

    struct Fixture {
        _dir: tempfile::TempDir,
        batch_dir: PathBuf,
        chunk: ChunkDescriptor,
    }

    fn fixture(rows: u64) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("users.csv");
        let mut s = String::from("id,name,email,country\n");
        for i in 1..=rows {
            s.push_str(&format!("u{i:07},User {i},u{i}@example.com,DE\n"));
        }
        std::fs::write(&csv, s).unwrap();
        let chunk = load_chunks(&csv, rows, |_| {}).unwrap().chunks.remove(0);
        Fixture { batch_dir: dir.path().join("batch-test"), _dir: dir, chunk }
    }

    fn input(f: &Fixture) -> EnrichChunkInput {
        EnrichChunkInput { chunk: f.chunk.clone(), batch_dir: f.batch_dir.clone() }
    }

    fn staged(f: &Fixture, attempt: u32) -> Vec<EnrichedRecord> {
        std::fs::read_to_string(staging_path(&f.batch_dir, 0, attempt))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    async fn mock(rate: f64) -> MockApi {
        MockApi::start(MockApiOptions::default().failure_rate(rate)).await.unwrap()
    }

    #[tokio::test]
    async fn enriches_every_record_and_heartbeats() {
        let api = mock(0.0).await;
        let f = fixture(50);
        let t = ActivityTestContext::new(EnrichChunk::NAME);
        let ctx = t.context();
        let out = EnrichChunk::new(api.url()).run(ctx, input(&f)).await.unwrap();
        assert_eq!((out.records, out.enriched, out.fallback, out.attempt), (50, 50, 0, 1));
        let records = staged(&f, 1);
        assert_eq!(records.len(), 50);
        assert!(records.iter().all(|r| r.enriched && r.region == "EMEA" && r.segment.is_some()));
        // Output order is input order, whatever order the concurrent calls finished in.
        assert!(records.windows(2).all(|w| w[0].row < w[1].row));
        let hb: EnrichHeartbeat = t.last_heartbeat().unwrap();
        assert_eq!((hb.processed, hb.total), (50, 50));
        assert_eq!(hb.staged_bytes, std::fs::metadata(staging_path(&f.batch_dir, 0, 1)).unwrap().len());
        api.stop().await;
    }

    #[tokio::test]
    async fn failed_calls_become_fallback_records() {
        let api = mock(0.5).await;
        let f = fixture(200);
        let ctx = ActivityTestContext::new(EnrichChunk::NAME).context();
        let out = EnrichChunk::new(api.url()).run(ctx, input(&f)).await.unwrap();
        let records = staged(&f, 1);
        let expected_failures = records.iter().filter(|r| behaviour(&r.id, 0.5) != Behaviour::Ok).count() as u64;
        assert!(expected_failures > 50, "the mock should fail about half: {expected_failures}");
        assert_eq!(out.fallback, expected_failures);
        assert_eq!(out.enriched + out.fallback, 200);
        for r in &records {
            match behaviour(&r.id, 0.5) {
                Behaviour::Ok => assert!(r.enriched),
                Behaviour::Unavailable => {
                    assert_eq!((r.enriched, r.region.as_str()), (false, "UNKNOWN"));
                    assert_eq!(r.error.as_deref(), Some("HTTP 503"));
                }
                // A 200 whose body is not JSON is a per-record failure too.
                Behaviour::Garbage => assert_eq!(r.error.as_deref(), Some("invalid JSON response")),
            }
        }
        api.stop().await;
    }

    #[tokio::test]
    async fn a_changed_input_file_is_not_retried() {
        let f = fixture(10);
        std::fs::write(&f.chunk.path, "id,name,email,country\nu1,A,a@example.com,DE\n").unwrap();
        let ctx = ActivityTestContext::new(EnrichChunk::NAME).context();
        let err = EnrichChunk::new("http://127.0.0.1:9").run(ctx, input(&f)).await.unwrap_err();
        assert_eq!((err.error_type.as_str(), err.retryable), ("InputChanged", false));
    }

    #[tokio::test]
    async fn whole_api_outage_is_a_retryable_failure() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let f = fixture(20);
        let ctx = ActivityTestContext::new(EnrichChunk::NAME).context();
        let err = EnrichChunk::new(format!("http://127.0.0.1:{port}")).run(ctx, input(&f)).await.unwrap_err();
        assert!(err.retryable, "{err}");
        assert_eq!(err.error_type, "ApiUnavailable");
        // No fallback records were staged for the next attempt to resume from.
        assert!(staged(&f, 1).is_empty());
    }

    #[tokio::test]
    async fn retried_attempt_resumes_from_the_last_heartbeat() {
        let api = mock(0.1).await;
        let f = fixture(40);
        let ctx = ActivityTestContext::new(EnrichChunk::NAME).context();
        EnrichChunk::new(api.url()).run(ctx, input(&f)).await.unwrap();
        let full = staged(&f, 1);
        let path = staging_path(&f.batch_dir, 0, 1);
        let bytes = std::fs::read(&path).unwrap();
        // The earlier attempt heartbeated after 15 records, wrote a few more and a torn line,
        // then died.
        let cut: usize = bytes.split_inclusive(|b| *b == b'\n').take(15).map(<[u8]>::len).sum();
        let mut torn = bytes[..cut].to_vec();
        torn.extend_from_slice(&bytes[cut..cut + 30]);
        std::fs::write(&path, &torn).unwrap();
        let hb = EnrichHeartbeat {
            processed: 15,
            total: 40,
            enriched: full[..15].iter().filter(|r| r.enriched).count() as u64,
            fallback: full[..15].iter().filter(|r| !r.enriched).count() as u64,
            staged_bytes: cut as u64,
            attempt: 1,
        };
        let audit_path = f.batch_dir.join("audit.log");
        let ctx = ActivityTestContext::new(EnrichChunk::NAME).attempt(2).previous_heartbeat(&hb).context();
        let out =
            EnrichChunk::new(api.url()).audit(Some(AuditLog::new(&audit_path))).run(ctx, input(&f)).await.unwrap();
        assert_eq!(staged(&f, 2), full);
        // The earlier attempt's file is left alone: if that attempt still ran somewhere, its
        // writes could not tear the new attempt's records.
        assert_eq!(std::fs::read(&path).unwrap(), torn);
        assert_eq!(out.enriched + out.fallback, 40);
        assert_eq!(out.fallback, full.iter().filter(|r| !r.enriched).count() as u64);
        assert!(std::fs::read_to_string(&audit_path).unwrap().contains("enrich-start chunk=0 attempt=2 from=15"));
        api.stop().await;
    }

    #[tokio::test]
    async fn records_staged_after_the_last_heartbeat_are_kept_when_they_match() {
        let api = mock(0.1).await;
        let f = fixture(40);
        let ctx = ActivityTestContext::new(EnrichChunk::NAME).context();
        EnrichChunk::new(api.url()).run(ctx, input(&f)).await.unwrap();
        let full = staged(&f, 1);
        let path = staging_path(&f.batch_dir, 0, 1);
        let lines: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(|l| format!("{l}\n")).collect();
        // The heartbeat covered 5 records; 25 complete ones made it to the file.
        std::fs::write(&path, lines[..25].concat()).unwrap();
        let hb = EnrichHeartbeat { processed: 5, total: 40, attempt: 1, ..EnrichHeartbeat::default() };
        let audit_path = f.batch_dir.join("audit.log");
        let ctx = ActivityTestContext::new(EnrichChunk::NAME).attempt(2).previous_heartbeat(&hb).context();
        let enrich = EnrichChunk::new(api.url()).audit(Some(AuditLog::new(&audit_path)));
        let out = enrich.run(ctx, input(&f)).await.unwrap();
        assert_eq!(staged(&f, 2), full);
        assert_eq!(out.fallback, full.iter().filter(|r| !r.enriched).count() as u64);
        assert!(std::fs::read_to_string(&audit_path).unwrap().contains("attempt=2 from=25"));

        // A record that is not the next user's ends what can be kept.
        let mut wrong = lines[..25].concat();
        wrong = wrong.replacen(&format!("\"id\":\"{}\"", full[10].id), "\"id\":\"someone-else\"", 1);
        std::fs::remove_dir_all(f.batch_dir.join(".staging")).unwrap();
        std::fs::create_dir_all(f.batch_dir.join(".staging")).unwrap();
        std::fs::write(&path, wrong).unwrap();
        let ctx = ActivityTestContext::new(EnrichChunk::NAME).context();
        enrich.run(ctx, input(&f)).await.unwrap();
        assert_eq!(staged(&f, 1), full);
        assert!(std::fs::read_to_string(&audit_path).unwrap().contains("attempt=1 from=10"));
        api.stop().await;
    }

    #[tokio::test]
    async fn save_writes_the_chunk_file_atomically_and_is_idempotent() {
        let api = mock(0.1).await;
        let f = fixture(30);
        let ctx = ActivityTestContext::new(EnrichChunk::NAME).context();
        let enriched = EnrichChunk::new(api.url()).run(ctx, input(&f)).await.unwrap();
        let staged_records = staged(&f, 1);
        let save_input = SaveChunkInput {
            index: 0,
            batch_dir: f.batch_dir.clone(),
            staged: enriched.staged.clone(),
            records: enriched.records,
        };
        let ctx = ActivityTestContext::new(SaveChunk::NAME).context();
        let saved = SaveChunk::default().run(ctx, save_input.clone()).await.unwrap();
        assert_eq!(saved.records, 30);
        let written: Vec<EnrichedRecord> = serde_json::from_slice(&std::fs::read(&saved.file).unwrap()).unwrap();
        assert_eq!(written, staged_records);
        assert!(!staging_path(&f.batch_dir, 0, 1).exists());
        assert!(!saved.file.with_extension("json.tmp").exists());
        // A retried save (the first one's result was lost in a crash) finds the file in place.
        let ctx = ActivityTestContext::new(SaveChunk::NAME).context();
        let again = SaveChunk::default().run(ctx, save_input).await.unwrap();
        assert_eq!(again.records, 30);
        assert_eq!(std::fs::read(&saved.file).unwrap(), std::fs::read(&again.file).unwrap());
        api.stop().await;
    }
}
