//! The crash workload: workflows with sequential and concurrent activities, a timer and a
//! child workflow, a store wrapper that kills the process after the k-th durable write, and
//! the side files (acknowledgements, activity executions) the checks read.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;
use tokio::sync::Notify;
use workflow_core::history::Event;
use workflow_core::store::{
    AppendOutcome, AppendRequest, AttemptRecord, LeaseToken, LeasedTask, NewRun, PendingTask, RunFilter, RunInfo,
    Store, TaskKey, TaskQueue,
};
use workflow_core::{
    Activity, ActivityContext, ActivityError, ActivityOptions, EventId, Payload, RetryPolicy, RunId, StoreError,
    Timestamp, Workflow, WorkflowContext, WorkflowError,
};

/// The store's directory inside a crash test directory.
pub fn store_path(dir: &Path) -> PathBuf {
    dir.join("store")
}

/// Acknowledgements: `start <workflow id> <run id>` once a start returned, `done <workflow id>
/// <result>` once a result was observed. Each line is fsynced before the harness goes on.
pub fn acks_path(dir: &Path) -> PathBuf {
    dir.join("acks.log")
}

/// Activity executions: `exec <idempotency key> <attempt>`, fsynced before the activity returns.
pub fn execs_path(dir: &Path) -> PathBuf {
    dir.join("execs.log")
}

/// Appends one line and syncs it to disk.
pub fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(format!("{line}\n").as_bytes())?;
    f.sync_data()
}

/// The lines of a side file (none when it does not exist).
pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).map(|s| s.lines().map(str::to_string).collect()).unwrap_or_default()
}

/// The activity: records its execution, then computes `2n + 1`.
pub struct Step {
    /// Where executions are recorded.
    pub log: PathBuf,
}

/// What [`Step`] computes.
pub fn step(n: u64) -> u64 {
    n.wrapping_mul(2).wrapping_add(1)
}

impl Activity for Step {
    const NAME: &'static str = "step";
    type Input = u64;
    type Output = u64;

    fn options() -> ActivityOptions {
        // Retry soon after a lost worker, forever: a crash must not fail the workflow.
        ActivityOptions::default().retry_policy(
            RetryPolicy::default()
                .initial_interval(Duration::from_millis(10))
                .maximum_interval(Duration::from_millis(50)),
        )
    }

    async fn run(&self, ctx: ActivityContext, n: u64) -> Result<u64, ActivityError> {
        append_line(&self.log, &format!("exec {} {}", ctx.idempotency_key(), ctx.attempt()))
            .map_err(|e| ActivityError::retryable("Io", e.to_string()))?;
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok(step(n))
    }
}

/// Three activities in sequence.
pub struct Sequential;

impl Workflow for Sequential {
    const NAME: &'static str = "sequential";
    type Input = u64;
    type Output = u64;

    async fn run(ctx: WorkflowContext, mut n: u64) -> Result<u64, WorkflowError> {
        for _ in 0..3 {
            n = ctx.activity::<Step>(n).await?;
        }
        Ok(n)
    }
}

/// Three activities at once, then a timer.
pub struct Parallel;

impl Workflow for Parallel {
    const NAME: &'static str = "parallel";
    type Input = u64;
    type Output = u64;

    async fn run(ctx: WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
        let results = join_all((0..3).map(|i| ctx.activity::<Step>(n + i))).await;
        let mut sum = 0u64;
        for r in results {
            sum = sum.wrapping_add(r?);
        }
        ctx.sleep(Duration::from_millis(30)).await?;
        Ok(sum)
    }
}

/// A child workflow ([`Sequential`]), then an activity on its result.
pub struct Parent;

impl Workflow for Parent {
    const NAME: &'static str = "parent";
    type Input = u64;
    type Output = u64;

    async fn run(ctx: WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
        let c = ctx.child::<Sequential>(n).await?;
        Ok(ctx.activity::<Step>(c).await?)
    }
}

/// Which workflow a workload entry runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// [`Sequential`].
    Sequential,
    /// [`Parallel`].
    Parallel,
    /// [`Parent`].
    Parent,
}

/// The workload: (workflow id, kind, input).
pub const WORKLOAD: &[(&str, Kind, u64)] = &[
    ("seq-1", Kind::Sequential, 1),
    ("par-1", Kind::Parallel, 10),
    ("parent-1", Kind::Parent, 5),
    ("seq-2", Kind::Sequential, 7),
];

/// The result a workload entry must end with.
pub fn expected(kind: Kind, n: u64) -> u64 {
    let seq = |n| step(step(step(n)));
    match kind {
        Kind::Sequential => seq(n),
        Kind::Parallel => (0..3).map(|i| step(n + i)).fold(0u64, u64::wrapping_add),
        Kind::Parent => step(seq(n)),
    }
}

/// A store that counts durable writes (`create_run`, `append`) and aborts the process right
/// after the `kill_after`-th one returned, before its caller sees the result.
pub struct KillSwitch {
    inner: Arc<dyn Store>,
    writes: AtomicU64,
    kill_after: Option<u64>,
}

impl KillSwitch {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>, kill_after: Option<u64>) -> Self {
        KillSwitch { inner, writes: AtomicU64::new(0), kill_after }
    }

    /// Durable writes so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    fn wrote(&self) {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if self.kill_after == Some(n) {
            std::process::abort();
        }
    }
}

#[async_trait]
impl Store for KillSwitch {
    async fn create_run(&self, run: NewRun) -> Result<(), StoreError> {
        self.inner.create_run(run).await?;
        self.wrote();
        Ok(())
    }

    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        let out = self.inner.append(req).await?;
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
        self.inner.lease_tasks(queue, now, max, owner).await
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
        self.inner.heartbeat(key, token, details, now, until).await
    }

    async fn read_history(&self, run_id: &RunId, after: EventId) -> Result<Vec<Event>, StoreError> {
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
}
