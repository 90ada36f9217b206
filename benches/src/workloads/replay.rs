//! Replay: rebuilding a run's state from histories of 1,000 / 10,000 / 100,000 events.
//!
//! Histories are recorded by a real worker (on `MemoryStore`) running [`Sequential`], then
//! replayed by a fresh [`RunMachine`], the deterministic core the worker uses when a run is
//! not cached.

use std::sync::Arc;
use std::time::{Duration, Instant};

use workflow_core::replay::RunMachine;
use workflow_core::store::MemoryStore;
use workflow_core::{Event, RunId, StartOptions, WorkerOptions};

use super::{bench_limits, start_worker};
use crate::defs::Sequential;
use crate::measure::{grouped, rate, Row};

/// A recorded history of a completed [`Sequential`] run and its run id.
pub struct Recorded {
    /// The run.
    pub run_id: RunId,
    /// Its events, `WorkflowStarted` to `WorkflowCompleted`.
    pub events: Vec<Event>,
}

async fn record(steps: u64) -> anyhow::Result<Recorded> {
    let worker = start_worker(Arc::new(MemoryStore::new()), WorkerOptions::default())?;
    let client = worker.client().with_limits(bench_limits());
    let id = format!("replay-{steps}");
    let handle = client.start::<Sequential>(&id, steps, StartOptions::default()).await?;
    handle.result().await?;
    let run_id = client.describe(&id).await?.info.run_id;
    let events = client.history(&id).await?;
    worker.shutdown().await;
    Ok(Recorded { run_id, events })
}

/// Records a history of about `events` events (a whole number of activities).
pub async fn history_of(events: u64) -> anyhow::Result<Recorded> {
    // Histories are `fixed + per_step * steps` long; measure both on small runs.
    let (a, b) = (record(10).await?.events.len() as u64, record(20).await?.events.len() as u64);
    let per_step = ((b - a) / 10).max(1);
    let fixed = a.saturating_sub(10 * per_step);
    record(events.saturating_sub(fixed).div_ceil(per_step).max(1)).await
}

/// Replays `h` once with a fresh machine; checks that it reproduces the run exactly.
pub fn replay_once(h: &Recorded) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut machine = RunMachine::for_workflow::<Sequential>(h.run_id.clone(), bench_limits());
    machine.apply(&h.events)?;
    let activation = machine.take_activation();
    let elapsed = started.elapsed();
    anyhow::ensure!(
        activation.closed && activation.new_events.is_empty(),
        "replay diverged: closed {}, {} new events",
        activation.closed,
        activation.new_events.len()
    );
    Ok(elapsed)
}

/// Replays each history size (best of a few runs) and reports events/s and the cost ratio
/// of the two largest sizes.
pub async fn run(sizes: &[u64]) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut costs: Vec<(u64, Duration)> = Vec::new();
    for &target in sizes {
        let h = history_of(target).await?;
        let n = h.events.len() as u64;
        let reps = (2_000_000 / n).clamp(3, 200);
        let mut best = Duration::MAX;
        for _ in 0..reps {
            best = best.min(replay_once(&h)?);
        }
        let per_sec = rate(n, best);
        rows.push(
            Row::new("Replay", "-", format!("events/s ({} events)", grouped(n as f64)), grouped(per_sec))
                .target("≥ 1,000,000", per_sec >= 1_000_000.0),
        );
        costs.push((n, best));
    }
    if let [.., (n1, t1), (n2, t2)] = costs[..] {
        let ratio = t2.as_secs_f64() / t1.as_secs_f64();
        let size_ratio = n2 as f64 / n1 as f64;
        // Linear means the cost grows like the size: allow 1.2 x the size ratio (12 x for 10 x).
        rows.push(
            Row::new(
                "Replay",
                "-",
                format!("cost {} / {} events", grouped(n2 as f64), grouped(n1 as f64)),
                format!("{ratio:.1} x"),
            )
            .target(format!("≤ {:.0} x", 1.2 * size_ratio), ratio <= 1.2 * size_ratio),
        );
    }
    Ok(rows)
}
