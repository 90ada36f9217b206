//! The crash workload: workflows with sequential and concurrent activities, a timer and a
//! child workflow, a store wrapper that kills the process after the k-th durable write, and
//! the side files (acknowledgements, activity executions) the checks read.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use workflow_core::store::Store;
use workflow_core::testing::CountingStore;
use workflow_core::{
    Activity, ActivityContext, ActivityError, ActivityOptions, RetryPolicy, Workflow, WorkflowContext, WorkflowError,
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
        // A 5 s attempt timeout (the step takes 2 ms) bounds how long a lease of a killed
        // process holds a task.
        ActivityOptions::default().start_to_close_timeout(Duration::from_secs(5)).retry_policy(
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
pub fn kill_switch(inner: Arc<dyn Store>, kill_after: Option<u64>) -> CountingStore {
    CountingStore::new(inner).after_write(move |n| {
        if kill_after == Some(n) {
            std::process::abort();
        }
    })
}
