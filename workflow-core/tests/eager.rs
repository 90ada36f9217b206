//! One durable write per step: activities scheduled by a workflow task start on the same
//! worker without a second trip to the store (eager dispatch), and each activity's outcome
//! and the next command are one append.

use std::sync::Arc;

use workflow_core::store::{MemoryStore, Store};
use workflow_core::testing::{CountingStore, VirtualClock};
use workflow_core::{
    Activity, ActivityContext, ActivityError, StartOptions, Timestamp, Worker, WorkerOptions, Workflow,
    WorkflowContext, WorkflowError,
};

struct Inc;
impl Activity for Inc {
    const NAME: &'static str = "inc";
    type Input = u64;
    type Output = u64;
    async fn run(&self, _: ActivityContext, n: u64) -> Result<u64, ActivityError> {
        Ok(n + 1)
    }
}

struct Chain;
impl Workflow for Chain {
    const NAME: &'static str = "chain";
    type Input = u64;
    type Output = u64;
    async fn run(ctx: WorkflowContext, steps: u64) -> Result<u64, WorkflowError> {
        let mut n = 0;
        for _ in 0..steps {
            n = ctx.activity::<Inc>(n).await?;
        }
        Ok(n)
    }
}

fn worker(store: Arc<dyn Store>, slots: usize) -> Worker {
    let mut w = Worker::new(store, WorkerOptions::default().max_concurrent_activities(slots))
        .with_clock(Arc::new(VirtualClock::new(Timestamp(1_767_225_600_000))));
    w.register_workflow::<Chain>().unwrap();
    w.register_activity(Inc).unwrap();
    w
}

#[tokio::test(start_paused = true)]
async fn each_step_is_one_append_and_activities_skip_the_queue() {
    let counting = Arc::new(CountingStore::new(Arc::new(MemoryStore::new())));
    let running = worker(counting.clone(), 10).start().unwrap();
    let steps = 20;
    let h = running.client().start::<Chain>("chain-1", steps, StartOptions::default()).await.unwrap();
    assert_eq!(h.result().await.unwrap(), steps);
    let calls = counting.calls();
    assert_eq!(calls.activity_leases, 0, "no activity went through the queue: {calls:?}");
    assert_eq!(calls.eager_leases, steps, "every activity was leased by the append that scheduled it: {calls:?}");
    // The first workflow task schedules activity 1; each activity's outcome is recorded
    // together with the next command (or the completion): one append per step.
    assert_eq!(calls.appends, steps + 1, "{calls:?}");
    assert_eq!(calls.creates, 1);
    assert_eq!(calls.eager_starts, 1, "the creating write leased the first workflow task: {calls:?}");
    assert_eq!(calls.workflow_leases, 0, "no workflow task went through the queue: {calls:?}");
    running.shutdown().await;
}

struct Fan;
impl Workflow for Fan {
    const NAME: &'static str = "fan";
    type Input = u64;
    type Output = u64;
    async fn run(ctx: WorkflowContext, width: u64) -> Result<u64, WorkflowError> {
        let all = futures::future::join_all((0..width).map(|i| ctx.activity::<Inc>(i))).await;
        let mut sum = 0;
        for r in all {
            sum += r?;
        }
        Ok(sum)
    }
}

#[tokio::test(start_paused = true)]
async fn activities_beyond_the_free_slots_go_through_the_queue() {
    let counting = Arc::new(CountingStore::new(Arc::new(MemoryStore::new())));
    let mut w = worker(counting.clone(), 1);
    w.register_workflow::<Fan>().unwrap();
    let running = w.start().unwrap();
    let h = running.client().start::<Fan>("fan-1", 3, StartOptions::default()).await.unwrap();
    assert_eq!(h.result().await.unwrap(), 1 + 2 + 3);
    let calls = counting.calls();
    assert_eq!(calls.eager_leases, 1, "one free slot, one eager lease: {calls:?}");
    assert!(calls.activity_leases >= 1, "the others were leased through the queue: {calls:?}");
    running.shutdown().await;
}
