//! W1 sequential: one workflow with N sequential activities, each returning its input + 1.

use std::time::Instant;

use workflow_core::{StartOptions, WorkerOptions};

use super::start_worker;
use crate::defs::Sequential;
use crate::measure::{grouped, rate, Row};
use crate::stores::StoreKind;

/// Runs W1 on `kind` and reports activities per second.
pub async fn run(kind: StoreKind, activities: u64) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let measured = kind.open_measured(&dir.path().join("db")).await?;
    let worker = start_worker(measured.store.clone(), WorkerOptions::default())?;
    let client = worker.client().with_limits(super::bench_limits());
    let started = Instant::now();
    let handle = client.start::<Sequential>("w1", activities, StartOptions::default()).await?;
    let result = handle.result().await?;
    let elapsed = started.elapsed();
    anyhow::ensure!(result == activities, "W1 returned {result}, expected {activities}");
    worker.shutdown().await;
    let per_sec = rate(activities, elapsed);
    let (target, floor) = match kind {
        StoreKind::Memory => ("≥ 50,000", 50_000.0),
        StoreKind::SledDurable => ("≥ 3,000", 3_000.0),
        StoreKind::Postgres => ("≥ 1,000", 1_000.0),
    };
    let mut rows = vec![Row::new(
        "W1 sequential",
        kind.name(),
        format!("activities/s ({} activities)", grouped(activities as f64)),
        grouped(per_sec),
    )
    .target(target, per_sec >= floor)];
    rows.extend(measured.cost_rows("W1 sequential", kind.name(), activities, 1));
    measured.cleanup().await;
    Ok(rows)
}
