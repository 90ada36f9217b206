//! The workloads of the benchmarks issue, with fixed definitions so that figures compare
//! across systems. Each returns rows of the table.

#[cfg(feature = "batch")]
pub mod batch;
pub mod parked;
pub mod recovery;
pub mod replay;
pub mod sequential;
pub mod throughput;

use std::sync::Arc;

use workflow_core::store::Store;
use workflow_core::{Limits, RunningWorker, Worker, WorkerOptions};

use crate::defs::{AddOne, Parked, Sequential, ThreeSteps};

/// How big each workload is.
#[derive(Clone, Debug)]
pub struct Sizes {
    /// W1: sequential activities in one workflow.
    pub w1_activities: u64,
    /// W2: workflows of three activities.
    pub w2_workflows: u64,
    /// W3: rows of the batch and of its baseline.
    pub w3_rows: u64,
    /// W3: rows of the one-off large batch, if any.
    pub w3_large_rows: Option<u64>,
    /// W4: parked workflows.
    pub w4_parked: u64,
    /// W5: workflows in flight when the process is killed.
    pub w5_workflows: u64,
    /// Replay: history lengths in events.
    pub replay_events: Vec<u64>,
}

impl Sizes {
    /// The sizes the issue fixes.
    pub fn full() -> Sizes {
        Sizes {
            w1_activities: 1_000,
            w2_workflows: 1_000,
            w3_rows: 100_000,
            w3_large_rows: Some(1_000_000),
            w4_parked: 100_000,
            w5_workflows: 10_000,
            replay_events: vec![1_000, 10_000, 100_000],
        }
    }

    /// Small sizes that only prove the runner works (CI).
    pub fn quick() -> Sizes {
        Sizes {
            w1_activities: 100,
            w2_workflows: 100,
            w3_rows: 10_000,
            w3_large_rows: None,
            w4_parked: 1_000,
            w5_workflows: 200,
            replay_events: vec![1_000, 10_000],
        }
    }
}

/// Limits roomy enough for the longest replay history (100,000 events).
pub fn bench_limits() -> Limits {
    Limits::default().max_history_events(1_000_000)
}

/// Starts a worker on `store` with every workflow and activity of [`crate::defs`] registered.
pub fn start_worker(store: Arc<dyn Store>, options: WorkerOptions) -> anyhow::Result<RunningWorker> {
    let mut worker = Worker::new(store, options.limits(bench_limits()));
    worker.register_workflow::<Sequential>()?;
    worker.register_workflow::<ThreeSteps>()?;
    worker.register_workflow::<Parked>()?;
    worker.register_activity(AddOne)?;
    Ok(worker.start()?)
}
