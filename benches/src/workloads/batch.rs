//! W3 batch: the CSV enrichment batch of `batch-example` on a durable sled store, against a
//! non-durable baseline: a plain tokio program doing the same CSV parsing, the same HTTP
//! calls with the same concurrency, and writing the same JSON files, without the engine.
//!
//! Both talk to the same in-process mock API (0 latency, 10% failures) and read the same
//! generated CSV.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use batch_example::activities::{chunk_path, EnrichChunk, EnrichedRecord, LoadCsvChunks, SaveChunk};
use batch_example::csv_chunks::{generate_sample, load_chunks, read_chunk, ChunkDescriptor, User};
use batch_example::mock_api::{EnrichRequest, EnrichResponse, MockApi, MockApiOptions};
use batch_example::progress::Progress;
use batch_example::workflows::{BatchInput, BatchWorkflow, EnrichAndSaveWorkflow, LoadChunksWorkflow};
use futures::{StreamExt, TryStreamExt};
use workflow_core::store::Store;
use workflow_core::{StartOptions, Worker, WorkerOptions};

use crate::measure::{grouped, human, rate, Row};
use crate::stores::open_sled;

/// Valid rows per chunk (fixed by the workload definition).
pub const CHUNK_SIZE: u64 = 1_000;
/// Chunks in flight at once: the batch example's default, used by both sides.
pub const CHUNK_CONCURRENCY: usize = 4;
/// Calls in flight per chunk: `EnrichChunk`'s default, used by both sides.
pub const CALL_CONCURRENCY: usize = 16;

/// Runs the durable batch on `csv`, writing to `out`; returns its time and valid rows.
pub async fn durable(csv: &Path, out: &Path, db: &Path, api_url: &str) -> anyhow::Result<(Duration, u64)> {
    let store: Arc<dyn Store> = Arc::new(open_sled(db)?);
    let mut worker = Worker::new(store, WorkerOptions::default());
    worker.register_workflow::<BatchWorkflow>()?;
    worker.register_workflow::<LoadChunksWorkflow>()?;
    worker.register_workflow::<EnrichAndSaveWorkflow>()?;
    worker.register_activity(LoadCsvChunks::new(Progress::new()))?;
    worker.register_activity(EnrichChunk::new(api_url).concurrency(CALL_CONCURRENCY))?;
    worker.register_activity(SaveChunk::new(Progress::new(), None))?;
    let worker = worker.start()?;
    let input = BatchInput {
        retry_of: None,
        max_record_bytes: batch_example::csv_chunks::DEFAULT_MAX_RECORD_BYTES,
        input: csv.to_path_buf(),
        chunk_size: CHUNK_SIZE,
        concurrency: CHUNK_CONCURRENCY as u32,
        batch_dir: out.to_path_buf(),
    };
    let began = Instant::now();
    let handle = worker.client().start::<BatchWorkflow>("w3", input, StartOptions::default()).await?;
    let summary = handle.result().await?;
    let elapsed = began.elapsed();
    worker.shutdown().await;
    anyhow::ensure!(summary.chunks_failed.is_empty(), "W3: {} chunks failed", summary.chunks_failed.len());
    Ok((elapsed, summary.valid_rows))
}

async fn call(http: &reqwest::Client, url: &str, user: &User) -> Result<EnrichResponse, String> {
    let req = EnrichRequest { id: user.id.clone(), email: user.email.clone(), country: user.country.clone() };
    let resp = http.post(url).json(&req).send().await.map_err(|e| format!("request failed: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status().as_u16()));
    }
    let body = resp.bytes().await.map_err(|_| "response body interrupted".to_string())?;
    serde_json::from_slice(&body).map_err(|_| "invalid JSON response".to_string())
}

fn record(user: User, outcome: Result<EnrichResponse, String>) -> EnrichedRecord {
    let (region, segment, enriched, error) = match outcome {
        Ok(r) => (r.region, Some(r.segment), true, None),
        Err(e) => ("UNKNOWN".to_string(), None, false, Some(e)),
    };
    EnrichedRecord {
        row: user.row,
        id: user.id,
        name: user.name,
        email: user.email,
        country: user.country,
        region,
        segment,
        enriched,
        error,
    }
}

async fn baseline_chunk(http: &reqwest::Client, url: &str, chunk: ChunkDescriptor, out: &Path) -> anyhow::Result<u64> {
    let index = chunk.index;
    let users = tokio::task::spawn_blocking(move || read_chunk(&chunk)).await??;
    let records: Vec<EnrichedRecord> = futures::stream::iter(users)
        .map(|u| async move {
            let outcome = call(http, url, &u).await;
            record(u, outcome)
        })
        .buffered(CALL_CONCURRENCY)
        .collect()
        .await;
    let path = chunk_path(out, index);
    tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        // The same file as `save_chunk` writes: a JSON array, one record per line.
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path)?);
        w.write_all(b"[")?;
        for (i, r) in records.iter().enumerate() {
            w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
            serde_json::to_writer(&mut w, r)?;
        }
        w.write_all(b"\n]\n")?;
        w.flush()?;
        Ok(records.len() as u64)
    })
    .await?
}

/// The non-durable baseline on `csv`, writing to `out`; returns its time and valid rows.
pub async fn baseline(csv: &Path, out: &Path, api_url: &str) -> anyhow::Result<(Duration, u64)> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let url = format!("{}/enrich", api_url.trim_end_matches('/'));
    std::fs::create_dir_all(out)?;
    let began = Instant::now();
    let path = csv.to_path_buf();
    let load = tokio::task::spawn_blocking(move || load_chunks(&path, CHUNK_SIZE, |_| {})).await??;
    let rows: u64 = futures::stream::iter(load.chunks)
        .map(|c| baseline_chunk(&http, &url, c, out))
        .buffered(CHUNK_CONCURRENCY)
        .try_fold(0, |n, r| async move { Ok(n + r) })
        .await?;
    Ok((began.elapsed(), rows))
}

/// Runs W3 on `rows` rows (and the one-off large batch when `large` is given).
pub async fn run(rows: u64, large: Option<u64>) -> anyhow::Result<Vec<Row>> {
    let tmp = tempfile::tempdir()?;
    let mock = MockApi::start(MockApiOptions::default().failure_rate(0.1).latency(Duration::ZERO)).await?;
    let url = mock.url();
    let csv = sample(tmp.path(), rows)?;
    // Best of two runs each, alternating, so that neither side pays alone for a cold page
    // cache, a cold mock server or new connections.
    let (mut base, mut dur) = (Duration::MAX, Duration::MAX);
    let (mut base_rows, mut dur_rows) = (0, 0);
    for i in 0..2 {
        let (t, n) = baseline(&csv, &tmp.path().join(format!("baseline-{i}")), &url).await?;
        (base, base_rows) = (base.min(t), n);
        let (t, n) =
            durable(&csv, &tmp.path().join(format!("durable-{i}")), &tmp.path().join(format!("db-{i}")), &url).await?;
        (dur, dur_rows) = (dur.min(t), n);
    }
    anyhow::ensure!(base_rows == dur_rows, "W3: baseline wrote {base_rows} rows, the batch {dur_rows}");
    let ratio = dur.as_secs_f64() / base.as_secs_f64();
    let size = format!("{} rows", grouped(rows as f64));
    let mut out = vec![
        Row::new("W3 batch", "-", format!("baseline, plain tokio ({size}, best of 2)"), human(base)),
        Row::new("W3 batch", "sled", format!("durable batch ({size}, best of 2)"), human(dur)),
        Row::new("W3 batch", "sled", "durable / baseline", format!("{ratio:.2} x")).target("≤ 1.10 x", ratio <= 1.10),
        Row::new("W3 batch", "sled", "durable rows/s", grouped(rate(dur_rows, dur))),
    ];
    if let Some(large) = large {
        let csv = sample(tmp.path(), large)?;
        let (t, n) = durable(&csv, &tmp.path().join("durable-large"), &tmp.path().join("db-large"), &url).await?;
        out.push(Row::new(
            "W3 batch",
            "sled",
            format!("durable batch ({} rows)", grouped(large as f64)),
            format!("{} ({} rows/s)", human(t), grouped(rate(n, t))),
        ));
    }
    mock.stop().await;
    Ok(out)
}

fn sample(dir: &Path, rows: u64) -> anyhow::Result<PathBuf> {
    let p = dir.join(format!("users-{rows}.csv"));
    generate_sample(&p, rows)?;
    Ok(p)
}
