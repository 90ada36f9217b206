//! A store wrapper that counts the calls the engine makes, for tests and benchmarks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::error::StoreError;
use crate::history::Event;
use crate::ids::{EventId, RunId};
use crate::payload::Payload;
use crate::store::{
    AppendOutcome, AppendRequest, AttemptRecord, LeaseToken, LeasedTask, NewRun, PendingTask, RunFilter, RunInfo,
    Store, TaskKey, TaskQueue,
};
use crate::time::Timestamp;

/// How many calls of each kind a [`CountingStore`] has passed on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreCalls {
    /// `create_run` calls.
    pub creates: u64,
    /// `append` calls.
    pub appends: u64,
    /// `lease_tasks` calls on the workflow queue that leased something.
    pub workflow_leases: u64,
    /// `lease_tasks` calls on the activity queue that leased something.
    pub activity_leases: u64,
    /// Tasks leased eagerly by the appends that created them (eager dispatch).
    pub eager_leases: u64,
    /// First workflow tasks leased by the `create_run` that created their run (eager
    /// workflow start).
    pub eager_starts: u64,
    /// `heartbeat` calls.
    pub heartbeats: u64,
    /// `read_history` calls.
    pub history_reads: u64,
}

impl StoreCalls {
    /// Calls that write: creates, appends, heartbeats and leases taken through the queue
    /// (each writes a lease marker or a lease row).
    pub fn writes(&self) -> u64 {
        self.creates + self.appends + self.heartbeats + self.workflow_leases + self.activity_leases
    }
}

#[derive(Default)]
struct Counters {
    creates: AtomicU64,
    appends: AtomicU64,
    workflow_leases: AtomicU64,
    activity_leases: AtomicU64,
    eager_leases: AtomicU64,
    eager_starts: AtomicU64,
    heartbeats: AtomicU64,
    history_reads: AtomicU64,
}

/// Wraps a store and counts what passes through, so that a test or a benchmark can say how
/// many store calls a workflow step costs.
///
/// ```
/// use std::sync::Arc;
/// use workflow_core::store::{MemoryStore, Store};
/// use workflow_core::testing::CountingStore;
/// let counting = Arc::new(CountingStore::new(Arc::new(MemoryStore::new())));
/// let store: Arc<dyn Store> = counting.clone();
/// # let _ = store;
/// assert_eq!(counting.calls().writes(), 0);
/// ```
pub struct CountingStore {
    inner: Arc<dyn Store>,
    n: Counters,
    /// `create_run` and `append` calls that returned `Ok`.
    durable: AtomicU64,
    after_write: Option<AfterWrite>,
}

type AfterWrite = Box<dyn Fn(u64) + Send + Sync>;

impl CountingStore {
    /// Counts the calls made to `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        CountingStore { inner, n: Counters::default(), durable: AtomicU64::new(0), after_write: None }
    }

    /// Calls `hook` with the running count after each durable write (a `create_run` or an
    /// `append` that returned `Ok`), before its caller sees the result: crash tests abort
    /// the process there.
    pub fn after_write(mut self, hook: impl Fn(u64) + Send + Sync + 'static) -> Self {
        self.after_write = Some(Box::new(hook));
        self
    }

    /// Durable writes so far: `create_run` and `append` calls that returned `Ok`.
    pub fn durable_writes(&self) -> u64 {
        self.durable.load(Ordering::SeqCst)
    }

    fn wrote(&self) {
        let n = self.durable.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(hook) = &self.after_write {
            hook(n);
        }
    }

    /// The counts so far.
    pub fn calls(&self) -> StoreCalls {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StoreCalls {
            creates: l(&self.n.creates),
            appends: l(&self.n.appends),
            workflow_leases: l(&self.n.workflow_leases),
            activity_leases: l(&self.n.activity_leases),
            eager_leases: l(&self.n.eager_leases),
            eager_starts: l(&self.n.eager_starts),
            heartbeats: l(&self.n.heartbeats),
            history_reads: l(&self.n.history_reads),
        }
    }
}

fn bump(a: &AtomicU64, by: u64) {
    a.fetch_add(by, Ordering::Relaxed);
}

#[async_trait]
impl Store for CountingStore {
    async fn create_run(&self, run: NewRun) -> Result<Option<LeasedTask>, StoreError> {
        bump(&self.n.creates, 1);
        let leased = self.inner.create_run(run).await?;
        bump(&self.n.eager_starts, leased.is_some() as u64);
        self.wrote();
        Ok(leased)
    }

    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        bump(&self.n.appends, 1);
        let out = self.inner.append(req).await?;
        bump(&self.n.eager_leases, out.leased.len() as u64);
        self.wrote();
        Ok(out)
    }

    async fn lease_tasks(
        &self,
        queue: TaskQueue,
        now: Timestamp,
        max: usize,
        owner: &str,
    ) -> Result<Vec<LeasedTask>, StoreError> {
        let v = self.inner.lease_tasks(queue, now, max, owner).await?;
        if !v.is_empty() {
            match queue {
                TaskQueue::Workflow => bump(&self.n.workflow_leases, 1),
                TaskQueue::Activity => bump(&self.n.activity_leases, 1),
            }
        }
        Ok(v)
    }

    async fn next_due(&self, queue: TaskQueue) -> Result<Option<Timestamp>, StoreError> {
        self.inner.next_due(queue).await
    }

    async fn heartbeat(
        &self,
        key: &TaskKey,
        token: LeaseToken,
        details: Option<Payload>,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        bump(&self.n.heartbeats, 1);
        self.inner.heartbeat(key, token, details, now, until).await
    }

    async fn read_history(&self, run_id: &RunId, after: EventId) -> Result<Vec<Event>, StoreError> {
        bump(&self.n.history_reads, 1);
        self.inner.read_history(run_id, after).await
    }

    async fn get_run(&self, run_id: &RunId) -> Result<Option<RunInfo>, StoreError> {
        self.inner.get_run(run_id).await
    }

    async fn current_run(&self, workflow_id: &str) -> Result<Option<RunInfo>, StoreError> {
        self.inner.current_run(workflow_id).await
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunInfo>, StoreError> {
        self.inner.list_runs(filter).await
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
        self.inner.release_leases_of(owner, now).await
    }

    fn notifier(&self) -> Option<Arc<Notify>> {
        self.inner.notifier()
    }

    fn closed_runs(&self) -> Option<tokio::sync::broadcast::Receiver<crate::ids::RunId>> {
        self.inner.closed_runs()
    }
}
