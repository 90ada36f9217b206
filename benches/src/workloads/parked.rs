//! W4 parked: N workflows each waiting on a one-hour timer. Resident memory per parked
//! workflow (above an empty worker's) and the store's size on disk.
//!
//! Runs in a child process (`workloads __child w4 ...`) so that resident memory is the
//! workload's alone.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use workflow_core::store::TaskQueue;
use workflow_core::{Clock, StartOptions, SystemClock, WorkerOptions};

use super::start_worker;
use crate::defs::Parked;
use crate::measure::{dir_size, grouped, human, rss_kib, Row};
use crate::stores::StoreKind;

/// What the child process measured.
#[derive(Debug, Serialize, Deserialize)]
pub struct ParkedReport {
    /// Parked workflows.
    pub workflows: u64,
    /// Resident memory with the worker started and no workflow, KiB.
    pub rss_empty_kib: u64,
    /// Resident memory with every workflow parked, KiB.
    pub rss_parked_kib: u64,
    /// Bytes of the store's files (0 for memory).
    pub store_bytes: u64,
    /// Seconds from the first start until every workflow waited on its timer.
    pub park_secs: f64,
}

/// The child's side: starts `n` parked workflows on a `kind` store in `dir` and measures.
pub async fn child(kind: StoreKind, n: u64, dir: &Path) -> anyhow::Result<ParkedReport> {
    let store = kind.open(dir)?;
    let worker = start_worker(store.clone(), WorkerOptions::default())?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_empty_kib = rss_kib().unwrap_or(0);
    let client = worker.client();
    let began = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            async move { client.start::<Parked>(&format!("w4-{i}"), (), StartOptions::default()).await }
        })
        .buffer_unordered(256)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    // Parked: no workflow task is visible or leased any more, only the timers an hour away.
    loop {
        let horizon = SystemClock.now().add(Duration::from_secs(1800));
        if store.next_due(TaskQueue::Workflow).await?.is_none_or(|t| t > horizon) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let park_secs = began.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_parked_kib = rss_kib().unwrap_or(0);
    let store_bytes = if kind == StoreKind::Memory { 0 } else { dir_size(dir) };
    // The process exits right after reporting: no need to wait for a graceful shutdown.
    drop(worker);
    Ok(ParkedReport { workflows: n, rss_empty_kib, rss_parked_kib, store_bytes, park_secs })
}

/// Runs W4 on `kind` in a child process and reports its figures.
pub async fn run(kind: StoreKind, n: u64) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let out = Command::new(std::env::current_exe()?)
        .args(["__child", "w4", kind.name(), &n.to_string()])
        .arg(dir.path().join("db"))
        .output()?;
    anyhow::ensure!(out.status.success(), "W4 child failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: ParkedReport = serde_json::from_slice(&out.stdout)?;
    let per_kib = report.rss_parked_kib.saturating_sub(report.rss_empty_kib) as f64 / n as f64;
    let mut rows = vec![
        Row::new(
            "W4 parked",
            kind.name(),
            format!("memory per parked workflow ({} parked)", grouped(n as f64)),
            format!("{per_kib:.2} KiB"),
        )
        .target("≤ 4 KiB", per_kib <= 4.0),
        Row::new("W4 parked", kind.name(), "time to park them all", human(Duration::from_secs_f64(report.park_secs))),
    ];
    if kind != StoreKind::Memory {
        rows.push(Row::new(
            "W4 parked",
            kind.name(),
            "store size on disk",
            format!(
                "{:.1} MiB ({} B per workflow)",
                report.store_bytes as f64 / (1024.0 * 1024.0),
                grouped(report.store_bytes as f64 / n as f64)
            ),
        ));
    }
    Ok(rows)
}
