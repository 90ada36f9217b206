//! One durable write per step: activities scheduled by a workflow task start on the same
//! worker without a second trip to the store (eager dispatch), and each activity's outcome
//! and the next command are one append.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

use workflow_core::history::Event;
use workflow_core::store::{
    AppendOutcome, AppendRequest, AttemptRecord, LeaseToken, LeasedTask, MemoryStore, NewRun, PendingTask, RunFilter,
    RunInfo, Store, TaskKey, TaskQueue,
};
use workflow_core::testing::{CountingStore, VirtualClock};
use workflow_core::{
    Activity, ActivityContext, ActivityError, Payload, RunId, StartOptions, StoreError, Timestamp, Worker,
    WorkerOptions, Workflow, WorkflowContext, WorkflowError,
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

/// A store whose `release_leases_of` (a restarted worker giving up its previous process's
/// leases) waits for the test's go, and which notes whether a run was created before it
/// returned.
struct SlowRelease {
    inner: Arc<dyn Store>,
    go: tokio::sync::Semaphore,
    released: std::sync::atomic::AtomicBool,
    created_before_release: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Store for SlowRelease {
    async fn create_run(&self, run: NewRun) -> Result<Option<LeasedTask>, StoreError> {
        if !self.released.load(SeqCst) {
            self.created_before_release.store(true, SeqCst);
        }
        self.inner.create_run(run).await
    }
    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        self.inner.append(req).await
    }
    async fn lease_tasks(
        &self,
        q: TaskQueue,
        now: Timestamp,
        max: usize,
        owner: &str,
    ) -> Result<Vec<LeasedTask>, StoreError> {
        self.inner.lease_tasks(q, now, max, owner).await
    }
    async fn next_due(&self, q: TaskQueue) -> Result<Option<Timestamp>, StoreError> {
        self.inner.next_due(q).await
    }
    async fn heartbeat(
        &self,
        key: &TaskKey,
        token: LeaseToken,
        d: Option<Payload>,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.heartbeat(key, token, d, now, until).await
    }
    async fn read_history(&self, run_id: &RunId, after: u64) -> Result<Vec<Event>, StoreError> {
        self.inner.read_history(run_id, after).await
    }
    async fn get_run(&self, run_id: &RunId) -> Result<Option<RunInfo>, StoreError> {
        self.inner.get_run(run_id).await
    }
    async fn current_run(&self, workflow_id: &str) -> Result<Option<RunInfo>, StoreError> {
        self.inner.current_run(workflow_id).await
    }
    async fn list_runs(&self, f: &RunFilter) -> Result<Vec<RunInfo>, StoreError> {
        self.inner.list_runs(f).await
    }
    async fn list_tasks(&self, run_id: &RunId) -> Result<Vec<PendingTask>, StoreError> {
        self.inner.list_tasks(run_id).await
    }
    async fn list_attempts(&self, run_id: &RunId) -> Result<Vec<AttemptRecord>, StoreError> {
        self.inner.list_attempts(run_id).await
    }
    async fn delete_closed_before(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.inner.delete_closed_before(before).await
    }
    async fn release_leases_of(&self, owner: &str, now: Timestamp) -> Result<usize, StoreError> {
        let _go = self.go.acquire().await;
        let n = self.inner.release_leases_of(owner, now).await;
        self.released.store(true, SeqCst);
        n
    }
    fn notifier(&self) -> Option<Arc<tokio::sync::Notify>> {
        self.inner.notifier()
    }
}

#[tokio::test(start_paused = true)]
async fn an_eager_start_waits_until_the_worker_gave_up_its_previous_leases() {
    let store = Arc::new(SlowRelease {
        inner: Arc::new(MemoryStore::new()),
        go: tokio::sync::Semaphore::new(0),
        released: Default::default(),
        created_before_release: Default::default(),
    });
    let running = worker(store.clone(), 10).start().unwrap();
    let client = running.client();
    let start = tokio::spawn(async move { client.start::<Chain>("after-restart", 2, StartOptions::default()).await });
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(!start.is_finished(), "a start through the worker waits while its earlier leases are given up");
    store.go.add_permits(1);
    let h = start.await.unwrap().unwrap();
    assert_eq!(h.result().await.unwrap(), 2);
    assert!(
        !store.created_before_release.load(SeqCst),
        "no run was created (and eagerly leased) before the worker gave up its previous leases"
    );
    running.shutdown().await;
}
