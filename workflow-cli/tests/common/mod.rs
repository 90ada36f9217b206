//! A store produced by a real run, and a way to call the `wf` binary.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use workflow_core::store::{RunStatus, TaskKind};
use workflow_core::{
    Activity, ActivityContext, ActivityError, ActivityOptions, ChildWorkflowOptions, Client, Clock, RetryPolicy,
    Signal, StartOptions, SystemClock, Timestamp, Worker, WorkerOptions, Workflow, WorkflowContext, WorkflowError,
};
use workflow_store_sled::SledStore;

/// Fails twice (retryable, after a heartbeat), then doubles its input.
pub struct FlakyFetch;
impl Activity for FlakyFetch {
    const NAME: &'static str = "flaky_fetch";
    type Input = u32;
    type Output = u32;
    async fn run(&self, ctx: ActivityContext, n: u32) -> Result<u32, ActivityError> {
        let attempt = ctx.attempt();
        ctx.heartbeat(&json!({ "attempt": attempt, "rows": attempt * 10 }));
        if attempt < 3 {
            return Err(ActivityError::retryable("Upstream503", format!("attempt {attempt}: service unavailable")));
        }
        Ok(n * 2)
    }
}

/// Always fails, retryably, after a heartbeat.
pub struct AlwaysFails;
impl Activity for AlwaysFails {
    const NAME: &'static str = "always_fails";
    type Input = ();
    type Output = ();
    async fn run(&self, ctx: ActivityContext, _: ()) -> Result<(), ActivityError> {
        ctx.heartbeat(&json!({ "row": 7 }));
        Err(ActivityError::retryable("Upstream503", "the import API is down"))
    }
}

/// Runs `flaky_fetch`, then a `shipping` child that fails: the order fails.
pub struct Order;
impl Workflow for Order {
    const NAME: &'static str = "order";
    type Input = u32;
    type Output = u32;
    async fn run(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        let fast = RetryPolicy::default().initial_interval(Duration::from_millis(2)).backoff_coefficient(1.0);
        let n = ctx.activity_with::<FlakyFetch>(n, ActivityOptions::default().retry_policy(fast)).await?;
        let child = ChildWorkflowOptions::default().id(format!("{}/shipping", ctx.workflow_id()));
        ctx.child_with::<Shipping>(n, child).await?;
        Ok(n)
    }
}

/// Fails.
pub struct Shipping;
impl Workflow for Shipping {
    const NAME: &'static str = "shipping";
    type Input = u32;
    type Output = ();
    async fn run(_ctx: WorkflowContext, _n: u32) -> Result<(), WorkflowError> {
        Err(WorkflowError::new("NoCarrier", "no carrier serves this address"))
    }
}

/// Runs `always_fails` with an hour of backoff: stays running with a pending activity.
pub struct Import;
impl Workflow for Import {
    const NAME: &'static str = "import";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        let slow = RetryPolicy::default().initial_interval(Duration::from_secs(3_600));
        ctx.activity_with::<AlwaysFails>((), ActivityOptions::default().retry_policy(slow)).await?;
        Ok(())
    }
}

/// Sleeps an hour (cancelled by the fixture).
pub struct Reminder;
impl Workflow for Reminder {
    const NAME: &'static str = "reminder";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        ctx.sleep(Duration::from_secs(3_600)).await.map_err(|_| WorkflowError::Cancelled)?;
        Ok(())
    }
}

/// The signal `approval` waits for.
pub struct Approve;
impl Signal for Approve {
    const NAME: &'static str = "approve";
    type Payload = serde_json::Value;
}

/// Waits for an `approve` signal and returns its payload.
pub struct Approval;
impl Workflow for Approval {
    const NAME: &'static str = "approval";
    type Input = ();
    type Output = serde_json::Value;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<serde_json::Value, WorkflowError> {
        ctx.signal::<Approve>().await
    }
}

/// The store's folder inside `dir`.
pub fn store_path(dir: &Path) -> PathBuf {
    dir.join("db")
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs the fixture's workflows against a sled store in `dir`, then closes the store:
///
/// - `order-1` failed: `flaky_fetch` failed twice (with heartbeats) then completed, and its
///   child `order-1/shipping` failed;
/// - `import-1` is running, its `always_fails` activity waiting an hour to retry (attempt 2);
/// - `reminder-1` was cancelled while its timer was pending;
/// - `approval-1` is running, waiting for the `approve` signal.
///
/// Returns the time just after the run.
pub async fn build_store(dir: &Path) -> Timestamp {
    let store = Arc::new(SledStore::open(store_path(dir)).expect("open the store"));
    let running = populate(store).await;
    running.shutdown().await;
    // Background tasks may hold the store a little longer; the `wf` binary needs it free.
    wait_until("the store to be released", || async { SledStore::open(store_path(dir)).is_ok() }).await;
    SystemClock.now()
}

/// Runs the fixture's workflows on `store` until each is where the tests expect it, and
/// returns the worker, still running.
pub async fn populate(store: Arc<dyn workflow_core::store::Store>) -> workflow_core::RunningWorker {
    let mut worker = Worker::new(store, WorkerOptions::default().identity("test-worker"));
    worker.register_workflow::<Order>().unwrap();
    worker.register_workflow::<Shipping>().unwrap();
    worker.register_workflow::<Import>().unwrap();
    worker.register_workflow::<Reminder>().unwrap();
    worker.register_workflow::<Approval>().unwrap();
    worker.register_activity(FlakyFetch).unwrap();
    worker.register_activity(AlwaysFails).unwrap();
    let running = worker.start().unwrap();
    let client = running.client();

    let order = client.start::<Order>("order-1", 21, StartOptions::default()).await.unwrap();
    client.start::<Import>("import-1", (), StartOptions::default()).await.unwrap();
    client.start::<Reminder>("reminder-1", (), StartOptions::default()).await.unwrap();
    client.start::<Approval>("approval-1", (), StartOptions::default()).await.unwrap();

    assert!(order.result().await.is_err(), "order-1 fails with its child");
    wait_until("reminder-1's timer", || async {
        client
            .describe("reminder-1")
            .await
            .unwrap()
            .pending
            .iter()
            .any(|p| matches!(p.task.kind, TaskKind::Timer { .. }))
    })
    .await;
    client.cancel("reminder-1", Some("no longer needed".into())).await.unwrap();
    wait_until("reminder-1 cancelled", || async {
        client.describe("reminder-1").await.unwrap().info.status == RunStatus::Cancelled
    })
    .await;
    wait_until("import-1's first attempt", || async {
        client.describe("import-1").await.unwrap().pending.iter().any(|p| match &p.task.kind {
            TaskKind::Activity(a) => a.attempt == 2 && p.lease.is_none(),
            _ => false,
        })
    })
    .await;
    wait_until("approval-1's first workflow task", || async {
        client.describe("approval-1").await.unwrap().pending.is_empty()
    })
    .await;
    drop((client, order));
    running
}

/// A client on the (closed) fixture store, opened in this process.
pub fn open_client(dir: &Path) -> Client {
    Client::new(Arc::new(SledStore::open(store_path(dir)).expect("open the store")))
}

/// What a `wf` invocation printed.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs the `wf` binary with `args`, "now" pinned to `now`.
pub fn wf(now: Timestamp, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_wf"))
        .args(args)
        .env("WF_NOW_MS", now.as_millis().to_string())
        .output()
        .expect("run wf");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `wf` off the async runtime (so that an admin endpoint on it can answer).
pub async fn wf_async(now: Timestamp, args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        wf(now, &args)
    })
    .await
    .unwrap()
}
