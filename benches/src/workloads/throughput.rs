//! W2 throughput: N workflows of three sequential activities, started as fast as possible.

use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use workflow_core::{StartOptions, WorkerOptions};

use super::start_worker;
use crate::defs::ThreeSteps;
use crate::measure::{grouped, human, percentile, rate, Row};
use crate::stores::StoreKind;

/// Runs W2 on `kind`: completed workflows per second and p50 / p99 start-to-result latency
/// (from calling `start` to `result()` returning, as a client sees it).
pub async fn run(kind: StoreKind, workflows: u64) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let measured = kind.open_measured(&dir.path().join("db")).await?;
    let worker = start_worker(measured.store.clone(), WorkerOptions::default())?;
    let client = worker.client();
    let began = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..workflows {
        let client = client.clone();
        set.spawn(async move {
            let t = Instant::now();
            let handle = client.start::<ThreeSteps>(&format!("w2-{i}"), i, StartOptions::default()).await?;
            let out = handle.result().await?;
            anyhow::ensure!(out == i + 3, "workflow w2-{i} returned {out}");
            Ok::<Duration, anyhow::Error>(t.elapsed())
        });
    }
    let mut latencies = Vec::with_capacity(workflows as usize);
    while let Some(r) = set.join_next().await {
        latencies.push(r??);
    }
    let elapsed = began.elapsed();
    worker.shutdown().await;
    let per_sec = rate(workflows, elapsed);
    let p50 = percentile(&mut latencies, 50.0);
    let p99 = percentile(&mut latencies, 99.0);
    let (target, floor) = match kind {
        StoreKind::Memory => ("≥ 20,000", 20_000.0),
        StoreKind::SledDurable => ("≥ 5,000", 5_000.0),
        StoreKind::Postgres => ("≥ 1,500", 1_500.0),
    };
    let size = format!("{} workflows", grouped(workflows as f64));
    let mut p99_row = Row::new("W2 throughput", kind.name(), "p99 start-to-result", human(p99));
    match kind {
        StoreKind::SledDurable => p99_row = p99_row.target("< 1 s", p99 < Duration::from_secs(1)),
        StoreKind::Postgres => p99_row = p99_row.target("< 2 s", p99 < Duration::from_secs(2)),
        StoreKind::Memory => {}
    }
    let mut rows = vec![
        Row::new("W2 throughput", kind.name(), format!("workflows/s ({size})"), grouped(per_sec))
            .target(target, per_sec >= floor),
        Row::new("W2 throughput", kind.name(), "p50 start-to-result", human(p50)),
        p99_row,
    ];
    rows.extend(measured.cost_rows("W2 throughput", kind.name(), workflows * 3, workflows));
    measured.cleanup().await;
    Ok(rows)
}
