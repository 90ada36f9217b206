//! A flaky activity retried with backoff, and the attempt log that shows every attempt.
//!
//! Run with `cargo run -p workflow-core --example retry`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use workflow_core::store::{AttemptOutcome, MemoryStore};
use workflow_core::{
    Activity, ActivityContext, ActivityError, ActivityOptions, RetryPolicy, StartOptions, Worker, WorkerOptions,
    Workflow, WorkflowContext, WorkflowError,
};

/// Fails its first two calls with a retryable error, as a flaky upstream would.
struct FlakyFetch {
    calls: AtomicU32,
}

impl Activity for FlakyFetch {
    const NAME: &'static str = "flaky_fetch";
    type Input = String;
    type Output = String;

    fn options() -> ActivityOptions {
        ActivityOptions::default().start_to_close_timeout(Duration::from_secs(5)).retry_policy(
            RetryPolicy::default()
                .initial_interval(Duration::from_millis(100))
                .backoff_coefficient(2.0)
                .maximum_attempts(5),
        )
    }

    async fn run(&self, ctx: ActivityContext, url: String) -> Result<String, ActivityError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        // Heartbeat details are kept in the attempt log (and given to the next attempt).
        ctx.heartbeat(&format!("call {call}"));
        if call <= 2 {
            return Err(ActivityError::retryable("Upstream503", format!("{url}: service unavailable")));
        }
        Ok(format!("{url}: 200 OK"))
    }
}

struct Fetch;

impl Workflow for Fetch {
    const NAME: &'static str = "fetch";
    type Input = String;
    type Output = String;

    async fn run(ctx: WorkflowContext, url: String) -> Result<String, WorkflowError> {
        Ok(ctx.activity::<FlakyFetch>(url).await?)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut worker = Worker::new(Arc::new(MemoryStore::new()), WorkerOptions::default().identity("example-worker"));
    worker.register_workflow::<Fetch>()?;
    worker.register_activity(FlakyFetch { calls: AtomicU32::new(0) })?;
    let worker = worker.start()?;
    let client = worker.client();

    let run = client.start::<Fetch>("fetch-1", "https://api.example/users".into(), StartOptions::default()).await?;
    println!("result: {}", run.result().await?);

    // The attempt log: every attempt, by whom, when, for how long, how it ended.
    let description = client.describe("fetch-1").await?;
    println!("{:<12} {:>7}  {:<24}  {:<14}  {:<66}  HEARTBEAT", "ACTIVITY", "ATTEMPT", "STARTED", "WORKER", "OUTCOME");
    for a in &description.attempts {
        let outcome = match &a.outcome {
            AttemptOutcome::Completed => "completed".to_string(),
            AttemptOutcome::Failed { error } => format!("failed: {error}"),
            other => format!("{other:?}"),
        };
        let heartbeat = a.last_heartbeat.as_ref().map(|p| p.as_json().to_string()).unwrap_or_default();
        println!(
            "{:<12} {:>7}  {:<24}  {:<14}  {outcome:<66}  {heartbeat}",
            a.activity_type,
            a.attempt,
            a.started_at.to_string(),
            a.worker
        );
    }
    assert_eq!(description.attempts.len(), 3, "two failures, then a success");
    worker.shutdown().await;
    Ok(())
}
