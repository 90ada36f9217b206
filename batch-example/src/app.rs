//! Running a batch from the command line: store, API, worker, progress and summary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::sync::watch;
use tracing::{info, warn};
use workflow_cli::admin::{AdminOptions, AdminServer};
use workflow_cli::location::StoreLocation;
use workflow_core::store::{RunFilter, RunInfo, RunStatus, Store};
use workflow_core::{Client, ControlError, RunId, StartOptions, Worker, WorkerOptions, Workflow};

use crate::activities::{AuditLog, EnrichChunk, LoadCsvChunks, LoadOutput, SaveChunk};
use crate::cli::Args;
use crate::csv_chunks::generate_sample;
use crate::display::Display;
use crate::mock_api::{MockApi, MockApiOptions};
use crate::progress::{ChunkProgress, Progress};
use crate::summary::BatchSummary;
use crate::workflows::{
    load_workflow_id, BatchInput, BatchWorkflow, ChunkOutcome, EnrichAndSaveWorkflow, LoadChunksWorkflow,
};

/// The replay gate over this binary's workflows.
pub fn replayer() -> workflow_core::replay::Replayer {
    let mut r = workflow_core::replay::Replayer::new();
    // A fresh replayer holds none of them: registering cannot clash.
    let _ = r.register_workflow::<BatchWorkflow>();
    let _ = r.register_workflow::<LoadChunksWorkflow>();
    let _ = r.register_workflow::<EnrichAndSaveWorkflow>();
    r
}

/// `--check-replay`: every history in the store against this build's workflows.
async fn check_replay(db: &StoreLocation) -> anyhow::Result<ExitCode> {
    let store: Arc<dyn Store> = match db {
        // A private copy: checking writes nothing to the store.
        StoreLocation::Sled(path) => Arc::new(
            workflow_store_sled::SledStore::open_snapshot(path)
                .with_context(|| format!("cannot read the store {db}"))?,
        ),
        StoreLocation::Postgres(_) => open_store(db).await?,
    };
    let report = replayer().replay_store(&*store, &RunFilter::default()).await.context("reading the histories")?;
    print!("{report}");
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Opens the durable store: a sled folder (one process at a time) or a PostgreSQL URL.
pub async fn open_store(db: &StoreLocation) -> anyhow::Result<Arc<dyn Store>> {
    db.open().await.with_context(|| format!("cannot open the store {db}"))
}

/// A folder name for a workflow id: letters, digits, `-`, `_` and `.` are kept, anything else
/// (`/`, `\`, `..`, spaces) becomes `_`, and a short hash of the id is appended whenever
/// something was replaced, so that two different ids never share a folder and no id escapes
/// the output folder.
pub fn sanitize_id(id: &str) -> String {
    let mut s: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect();
    let changed = s != id || s.starts_with('.') || s.len() > 100;
    if changed {
        s = s.trim_start_matches('.').chars().take(100).collect::<String>().replace("..", "__");
        let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        s = format!("{s}-{:08x}", hash as u32);
    }
    s
}

/// The default workflow id for an input file: `enrich-<file stem>`.
pub fn default_workflow_id(input: &Path) -> String {
    let stem = input.file_stem().map_or_else(|| "input".into(), |s| s.to_string_lossy().into_owned());
    format!("enrich-{stem}")
}

/// How a run of the command ended.
pub enum Outcome {
    /// The batch finished (now, or before this run).
    Finished {
        /// Its summary.
        summary: Box<BatchSummary>,
        /// It had finished before this run.
        already_finished: bool,
    },
    /// Ctrl-C: the batch stays in the store and resumes on the next run.
    Interrupted,
}

/// Runs the command.
pub async fn run(args: Args, display: Display) -> anyhow::Result<ExitCode> {
    if args.check_replay {
        return check_replay(&args.db).await;
    }
    if args.worker_only {
        return run_worker_only(args).await;
    }
    let input = match &args.input {
        Some(p) => p.clone(),
        None => {
            let p = args.out.join(format!("sample-users-{}.csv", args.rows));
            if !p.exists() {
                info!(rows = args.rows, path = %p.display(), "generating a sample CSV");
                generate_sample(&p, args.rows).with_context(|| format!("cannot write {}", p.display()))?;
            }
            p
        }
    };
    let workflow_id = args.workflow_id.clone().unwrap_or_else(|| default_workflow_id(&input));
    workflow_core::validate_id("workflow id", &workflow_id, 200).context("invalid --workflow-id")?;
    std::fs::File::open(&input).with_context(|| format!("cannot read the input file {}", input.display()))?;
    if input.is_dir() {
        bail!("the input {} is a folder, not a CSV file", input.display());
    }
    let input = std::path::absolute(&input)?;
    let out = std::path::absolute(&args.out)?;
    let batch_dir = out.join(format!("batch-{}", sanitize_id(&workflow_id)));

    let store = open_store(&args.db).await?;
    let progress = Progress::new();
    let (running, mock) = start_worker(&args, store, &progress).await?;
    let client = running.client();
    // A sled store is held by this process; the endpoint lets `wf` look at it while we run.
    let admin = serve_admin(&args, &client).await?;

    let outcome = drive(&args, &running, &workflow_id, input, batch_dir, progress, &display).await;
    drop(admin);
    running.shutdown().await;
    if let Some(m) = mock {
        m.stop().await;
    }
    match outcome? {
        Outcome::Interrupted => {
            eprintln!("Interrupted. The batch is kept in {}; run the same command to resume it.", args.db);
            Ok(ExitCode::from(130))
        }
        Outcome::Finished { summary, already_finished } => {
            // Emptied by save_chunk as chunks are saved; only a finished batch removes it.
            let _ = std::fs::remove_dir(summary.output_dir.join(".staging"));
            if args.json {
                println!("{}", serde_json::to_string_pretty(&summary.to_json(already_finished))?);
            } else {
                if already_finished {
                    println!(
                        "Batch {workflow_id:?} had already finished; its recorded summary (--restart runs it again):"
                    );
                }
                print!("{}", summary.render());
            }
            Ok(if summary.chunks_failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
    }
}

/// `--worker-only`: a worker on a shared store, until the batch named by `--workflow-id`
/// closes (or Ctrl-C).
async fn run_worker_only(args: Args) -> anyhow::Result<ExitCode> {
    if !args.db.is_postgres() {
        bail!("--worker-only joins batches in a shared store: give --db postgres://...; a sled folder belongs to one process");
    }
    if let Some(id) = &args.workflow_id {
        workflow_core::validate_id("workflow id", id, 200).context("invalid --workflow-id")?;
    }
    let store = open_store(&args.db).await?;
    let progress = Progress::new();
    let (running, mock) = start_worker(&args, store, &progress).await?;
    let client = running.client();
    let admin = serve_admin(&args, &client).await?;
    info!(store = %args.db, "worker joined; taking tasks of batches in this store");
    let finished = async {
        let Some(id) = &args.workflow_id else { return std::future::pending::<()>().await };
        // Wait for the batch to exist (the starter may not have created it yet), then to close.
        loop {
            if let Ok(d) = client.describe(id).await {
                if d.info.status.is_closed() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let code = tokio::select! {
        e = running.failed() => {
            eprintln!("The store {} failed: {e}; this worker stops.", args.db);
            ExitCode::from(3)
        }
        _ = finished => {
            eprintln!("Batch {:?} has finished; this worker stops.", args.workflow_id.as_deref().unwrap_or_default());
            ExitCode::SUCCESS
        }
        _ = tokio::signal::ctrl_c() => ExitCode::from(130),
    };
    drop(admin);
    running.shutdown().await;
    if let Some(m) = mock {
        m.stop().await;
    }
    Ok(code)
}

async fn serve_admin(args: &Args, client: &Client) -> anyhow::Result<Option<workflow_cli::admin::AdminHandle>> {
    let Some(addr) = args.admin else { return Ok(None) };
    let mut options = AdminOptions::default();
    if let Some(t) = &args.admin_token {
        options = options.token(t.clone());
    }
    let admin = AdminServer::serve(client.clone(), addr, options)
        .await
        .with_context(|| format!("cannot serve the admin endpoint on {addr}"))?;
    info!(url = %admin.url(), "admin endpoint up; inspect with: wf --url {}", admin.url());
    Ok(Some(admin))
}

/// Starts the mock API (unless --api-url) and a worker with the batch's workflows and
/// activities.
async fn start_worker(
    args: &Args,
    store: Arc<dyn Store>,
    progress: &Progress,
) -> anyhow::Result<(workflow_core::RunningWorker, Option<MockApi>)> {
    let (api_url, mock) = match &args.api_url {
        Some(url) => (url.clone(), None),
        None => {
            let options = MockApiOptions::default()
                .failure_rate(args.failure_rate)
                .latency(Duration::from_millis(args.latency_ms));
            let mock = MockApi::start(options).await.context("cannot start the mock enrichment API")?;
            info!(url = %mock.url(), failure_rate = args.failure_rate, "mock enrichment API started");
            (mock.url(), Some(mock))
        }
    };

    let audit = args.audit_log.as_ref().map(AuditLog::new);
    let mut worker = Worker::new(store, WorkerOptions::default().shutdown_grace(Duration::from_secs(2)));
    worker.register_workflow::<BatchWorkflow>()?;
    worker.register_workflow::<LoadChunksWorkflow>()?;
    worker.register_workflow::<EnrichAndSaveWorkflow>()?;
    worker.register_activity(LoadCsvChunks::new(progress.clone()))?;
    worker.register_activity(EnrichChunk::new(api_url).progress(progress.clone()).audit(audit.clone()))?;
    worker.register_activity(SaveChunk::new(progress.clone(), audit))?;
    Ok((worker.start()?, mock))
}

async fn drive(
    args: &Args,
    running: &workflow_core::RunningWorker,
    workflow_id: &str,
    input: PathBuf,
    batch_dir: PathBuf,
    progress: Progress,
    display: &Display,
) -> anyhow::Result<Outcome> {
    let client = &running.client();
    let existing = match client.describe(workflow_id).await {
        Ok(d) => Some(d.info),
        Err(ControlError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let mut retry_of = None;
    match &existing {
        Some(info) if info.status == RunStatus::Completed && !args.restart => {
            // A batch that finished with failed chunks is run again for those chunks only.
            match partial_summary(info) {
                Some(previous) => {
                    eprintln!(
                        "Batch {workflow_id:?} finished with {} failed chunk(s); retrying only those (--restart redoes everything).",
                        previous.chunks_failed.len()
                    );
                    retry_of = Some(previous);
                }
                None => return recorded(workflow_id, info),
            }
        }
        Some(info) if info.status.is_closed() && !args.restart => return recorded(workflow_id, info),
        Some(info) if !info.status.is_closed() && args.restart => {
            client.terminate(workflow_id, "restarted with --restart").await?;
        }
        Some(info) if !info.status.is_closed() => {
            let recorded: Option<BatchInput> = info.input.decode("batch input").ok();
            info!(workflow_id, run_id = %info.run_id, "resuming the batch");
            if let Some(r) = recorded.filter(|r| r.input != input || r.chunk_size != args.chunk_size) {
                warn!(input = %r.input.display(), chunk_size = r.chunk_size, "the batch continues with its recorded input and chunk size");
            }
        }
        _ => {}
    }
    if args.restart {
        clear_output(&batch_dir)?;
    }
    let batch = BatchInput {
        input,
        chunk_size: args.chunk_size,
        concurrency: args.concurrency,
        batch_dir,
        retry_of,
        max_record_bytes: args.max_record_bytes,
    };
    let handle = client.start::<BatchWorkflow>(workflow_id, batch, StartOptions::default().idempotent(true)).await?;
    let run_id = match handle.run_id() {
        Some(r) => r.clone(),
        None => client.describe(workflow_id).await?.info.run_id,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let shown = tokio::spawn({
        let (display, progress) = (display.clone(), progress.clone());
        async move { display.show(progress, stop_rx).await }
    });
    let polled = tokio::spawn(poll_store(client.clone(), workflow_id.to_string(), run_id, progress));
    let mut store_failed = None;
    let result = tokio::select! {
        r = handle.result() => Some(r),
        e = running.failed() => {
            store_failed = Some(e);
            None
        }
        _ = tokio::signal::ctrl_c() => None,
    };
    polled.abort();
    let _ = stop_tx.send(true);
    let _ = shown.await;
    if let Some(e) = store_failed {
        // A full disk or an I/O error: nothing after the failed write was acknowledged.
        bail!(
            "the store {} failed: {e}\nEverything acknowledged before is kept: fix the cause (free disk space) and run the same command to resume.",
            args.db
        );
    }
    match result {
        None => Ok(Outcome::Interrupted),
        Some(Ok(summary)) => Ok(Outcome::Finished { summary: Box::new(summary), already_finished: false }),
        Some(Err(e)) => Err(anyhow::Error::new(e).context(format!("batch {workflow_id:?} failed"))),
    }
}

/// The recorded summary of a completed batch run that left chunks failed.
fn partial_summary(info: &RunInfo) -> Option<BatchSummary> {
    let summary: BatchSummary = info.result.as_ref()?.decode("batch summary").ok()?;
    (!summary.chunks_failed.is_empty()).then_some(summary)
}

fn recorded(workflow_id: &str, info: &RunInfo) -> anyhow::Result<Outcome> {
    match info.status {
        RunStatus::Completed => {
            let summary: BatchSummary =
                info.result.as_ref().context("the finished batch has no recorded result")?.decode("batch summary")?;
            Ok(Outcome::Finished { summary: Box::new(summary), already_finished: true })
        }
        status => {
            let why = info.failure.as_ref().map(|f| format!(": {f}")).unwrap_or_default();
            bail!("batch {workflow_id:?} already ended {status}{why}; run with --restart to run it again")
        }
    }
}

/// Removes the chunk files and staging folder of an earlier run of the batch.
fn clear_output(batch_dir: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(batch_dir) else { return Ok(()) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == ".staging" {
            std::fs::remove_dir_all(entry.path())?;
        } else if name.starts_with("chunk-") && name.ends_with(".json") || name.ends_with(".json.tmp") {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Feeds `progress` from the store about once a second: the loader's totals and the chunk
/// children that finished, including those finished before this process started.
async fn poll_store(client: Client, batch_id: String, batch_run: RunId, progress: Progress) {
    let mut have_totals = false;
    let filter = RunFilter::default().workflow_type(EnrichAndSaveWorkflow::NAME);
    loop {
        if !have_totals {
            if let Ok(d) = client.describe(&load_workflow_id(&batch_id)).await {
                let ours = d.info.parent.as_ref().is_some_and(|p| p.run_id == batch_run);
                if let (true, RunStatus::Completed, Some(result)) = (ours, d.info.status, d.info.result.as_ref()) {
                    if let Ok(out) = result.decode::<LoadOutput>("load result") {
                        progress.set_totals(out.load.valid_rows, out.load.chunks.len() as u64);
                        have_totals = true;
                    }
                }
            }
        }
        if let Ok(runs) = client.list(&filter).await {
            for run in runs.iter().filter(|r| r.parent.as_ref().is_some_and(|p| p.run_id == batch_run)) {
                let Some(index) = run.workflow_id.rsplit("chunk-").next().and_then(|i| i.parse::<u32>().ok()) else {
                    continue;
                };
                match run.status {
                    RunStatus::Completed => {
                        if let Some(Ok(o)) = run.result.as_ref().map(|r| r.decode::<ChunkOutcome>("chunk outcome")) {
                            progress.saved(index, o.records);
                        }
                    }
                    status if status.is_closed() => {
                        progress.merge_chunk(index, ChunkProgress { failed: true, ..ChunkProgress::default() });
                    }
                    _ => {}
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitized_ids_stay_inside_the_output_folder() {
        assert_eq!(sanitize_id("enrich-users_2024.v1"), "enrich-users_2024.v1");
        for bad in ["../../etc", "/abs/path", "a/b", "..", ".", "a\\b", "x y", ".hidden"] {
            let s = sanitize_id(bad);
            assert!(!s.contains('/') && !s.contains('\\') && !s.contains(".."), "{bad} -> {s}");
            assert!(!s.starts_with('.'), "{bad} -> {s}");
            let p = Path::new("/out").join(format!("batch-{s}"));
            assert_eq!(p.parent(), Some(Path::new("/out")));
        }
        assert_ne!(sanitize_id("a/b"), sanitize_id("a_b"));
        assert!(sanitize_id(&"x".repeat(500)).len() < 120);
    }

    #[test]
    fn default_id_comes_from_the_file_name() {
        assert_eq!(default_workflow_id(Path::new("out/sample-users-10000.csv")), "enrich-sample-users-10000");
    }
}
