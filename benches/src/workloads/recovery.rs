//! W5 recovery: N workflows in flight, the process killed with SIGKILL, the store reopened.
//! Time until every workflow has made progress again and until all have finished.
//!
//! A child process (`workloads __child w5 ...`) starts the workflows on a durable sled
//! store and says so; the runner kills it, reopens the store itself and watches.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use workflow_core::store::{RunFilter, RunStatus, Store};
use workflow_core::{EventId, RunId, StartOptions, WorkerOptions};

use super::start_worker;
use crate::defs::ThreeSteps;
use crate::measure::{grouped, human, Row};
use crate::stores::{open_sled, StoreKind};

/// The child's side: starts `n` workflows on a sled store in `dir`, prints `started`, and
/// keeps working until it is killed.
pub async fn child(n: u64, dir: &Path) -> anyhow::Result<()> {
    let store: Arc<dyn Store> = Arc::new(open_sled(dir)?);
    let worker = start_worker(store, WorkerOptions::default())?;
    let client = worker.client();
    futures::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            async move { client.start::<ThreeSteps>(&format!("w5-{i}"), i, StartOptions::default()).await }
        })
        .buffer_unordered(256)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    println!("started");
    std::io::stdout().flush()?;
    std::future::pending::<()>().await;
    drop(worker);
    Ok(())
}

/// Runs W5 (sled only: a memory store does not outlive its process).
pub async fn run(kind: StoreKind, n: u64) -> anyhow::Result<Vec<Row>> {
    if kind == StoreKind::Memory {
        return Ok(vec![Row::new("W5 recovery", kind.name(), "n/a: nothing outlives the process", "-")]);
    }
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("db");
    let mut child = Command::new(std::env::current_exe()?)
        .args(["__child", "w5", &n.to_string()])
        .arg(&dir)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    anyhow::ensure!(line.trim() == "started", "W5 child failed before starting its workflows");
    // Let the worker get into the middle of things, then pull the plug.
    tokio::time::sleep(Duration::from_millis(100)).await;
    child.kill()?; // SIGKILL
    child.wait()?;

    let began = Instant::now();
    let store: Arc<dyn Store> = Arc::new(open_sled(&dir)?);
    let opened = began.elapsed();
    let open_runs = store.list_runs(&RunFilter::default().status(RunStatus::Running)).await?;
    let mut not_progressed: HashMap<RunId, EventId> =
        open_runs.iter().map(|r| (r.run_id.clone(), r.last_event_id)).collect();
    let mut not_closed: Vec<RunId> = open_runs.iter().map(|r| r.run_id.clone()).collect();
    let in_flight = not_closed.len();
    let worker = start_worker(store.clone(), WorkerOptions::default())?;
    let mut progressed_after = if in_flight == 0 { Some(began.elapsed()) } else { None };
    let deadline = Instant::now() + Duration::from_secs(600);
    while !not_closed.is_empty() {
        anyhow::ensure!(Instant::now() < deadline, "W5: {} workflows still open after 10 minutes", not_closed.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let infos: Vec<_> = futures::stream::iter(not_closed.iter()).then(|id| store.get_run(id)).try_collect().await?;
        let mut still_open = Vec::with_capacity(not_closed.len());
        for (id, info) in not_closed.iter().zip(infos) {
            let info = info.ok_or_else(|| anyhow::anyhow!("run {id} vanished"))?;
            if not_progressed.get(id).is_some_and(|&last| info.last_event_id > last || info.status.is_closed()) {
                not_progressed.remove(id);
            }
            if !info.status.is_closed() {
                still_open.push(id.clone());
            }
        }
        not_closed = still_open;
        if progressed_after.is_none() && not_progressed.is_empty() {
            progressed_after = Some(began.elapsed());
        }
    }
    let finished_after = began.elapsed();
    worker.shutdown().await;
    let progressed_after = progressed_after.unwrap_or(finished_after);
    let size = format!("{} of {} in flight", grouped(in_flight as f64), grouped(n as f64));
    Ok(vec![
        Row::new("W5 recovery", kind.name(), "reopen the store", human(opened)),
        Row::new("W5 recovery", kind.name(), format!("all progressing again ({size})"), human(progressed_after))
            .target("≤ 3 s", progressed_after <= Duration::from_secs(3)),
        Row::new("W5 recovery", kind.name(), "all finished", human(finished_after)),
    ])
}
