// Retries, timeouts and heartbeats.
// Compiled and run by `cargo test -p tests --test book_snippets`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use workflow_core::policy::next_retry;
use workflow_core::store::MemoryStore;
use workflow_core::testing::ActivityTestContext;
use workflow_core::{
    Activity, ActivityContext, ActivityError, ActivityFailure, ActivityOptions, NextRetry, RetryPolicy,
    StartOptions, Worker, WorkerOptions, Workflow, WorkflowContext, WorkflowError,
};

// ANCHOR: options
/// Calls a payment API. Per-type defaults: each attempt may take 30 s; up to 5 attempts,
/// waiting 1 s, 2 s, 4 s, 8 s between them; a declined card is never retried.
struct Charge {
    calls: Arc<AtomicU32>,
}

impl Activity for Charge {
    const NAME: &'static str = "charge";
    type Input = u64;
    type Output = String;

    fn options() -> ActivityOptions {
        ActivityOptions::default()
            .start_to_close_timeout(Duration::from_secs(30))
            .schedule_to_close_timeout(Duration::from_secs(10 * 60))
            .retry_policy(
                RetryPolicy::default()
                    .initial_interval(Duration::from_secs(1))
                    .backoff_coefficient(2.0)
                    .maximum_interval(Duration::from_secs(30))
                    .maximum_attempts(5)
                    .non_retryable("CardDeclined"),
            )
    }

    async fn run(&self, ctx: ActivityContext, cents: u64) -> Result<String, ActivityError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst); // counts calls, for the example
                                                           // Classify at the edge: a timeout or a 503 may pass, a declined card will not.
        if cents == 0 {
            return Err(ActivityError::non_retryable("CardDeclined", "amount must be above zero"));
        }
        if ctx.attempt() < 3 {
            return Err(ActivityError::retryable("Unavailable", format!("payment API answered 503 (call {n})")));
        }
        Ok(format!("paid {cents} with key {}", ctx.idempotency_key()))
    }
}
// ANCHOR_END: options

// ANCHOR: per_call
/// Per-call options override the type's defaults.
struct PayNow;

impl Workflow for PayNow {
    const NAME: &'static str = "pay_now";
    type Input = u64;
    type Output = String;

    async fn run(ctx: WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
        let fast = Charge::options()
            .retry_policy(RetryPolicy::default().initial_interval(Duration::from_millis(10)).maximum_attempts(3));
        Ok(ctx.activity_with::<Charge>(cents, fast).await?)
    }
}
// ANCHOR_END: per_call

// ANCHOR: heartbeat
#[derive(Default, Serialize, Deserialize)]
struct Progress {
    done: usize,
}

/// Processes many items; heartbeats after each so that a stuck attempt is noticed within the
/// heartbeat timeout, and a retried attempt resumes where the last one got to.
struct ProcessItems;

impl Activity for ProcessItems {
    const NAME: &'static str = "process_items";
    type Input = Vec<u32>;
    type Output = u64;

    fn options() -> ActivityOptions {
        ActivityOptions::default()
            .start_to_close_timeout(Duration::from_secs(3600))
            .heartbeat_timeout(Duration::from_secs(15))
    }

    async fn run(&self, ctx: ActivityContext, items: Vec<u32>) -> Result<u64, ActivityError> {
        let start = ctx.last_heartbeat::<Progress>().map_or(0, |p| p.done);
        let mut sum = 0u64;
        for (i, item) in items.iter().enumerate().skip(start) {
            if ctx.is_cancelled() {
                return Err(ActivityError::retryable("Cancelled", "stopping at a clean point"));
            }
            sum += u64::from(*item); // the real work, idempotent per item
            ctx.heartbeat(&Progress { done: i + 1 });
        }
        Ok(sum)
    }
}
// ANCHOR_END: heartbeat

/// Fails the activity for good; the workflow decides what that means.
struct AlwaysDeclined;
impl Workflow for AlwaysDeclined {
    const NAME: &'static str = "always_declined";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        match ctx.activity::<Charge>(0).await {
            Err(f @ ActivityFailure::Failed { .. }) => Ok(f.to_string()),
            other => Ok(format!("{other:?}")),
        }
    }
}

#[tokio::main]
async fn main() {
    // ANCHOR: schedule
    // The retry schedule is a pure function of the policy: test your policies without a worker.
    let policy = Charge::options().retry_policy;
    assert_eq!(
        next_retry(&policy, 1, "Unavailable", true),
        NextRetry::RetryAfter { attempt: 2, after: Duration::from_secs(1) }
    );
    assert_eq!(
        next_retry(&policy, 4, "Unavailable", true),
        NextRetry::RetryAfter { attempt: 5, after: Duration::from_secs(8) }
    );
    assert_eq!(next_retry(&policy, 5, "Unavailable", true), NextRetry::AttemptsExhausted);
    assert_eq!(next_retry(&policy, 1, "CardDeclined", true), NextRetry::NonRetryable);
    // ANCHOR_END: schedule

    // ANCHOR: unit
    // An activity is a plain value: call it directly in a unit test.
    let t = ActivityTestContext::new(ProcessItems::NAME);
    assert_eq!(t.run(&ProcessItems, vec![1, 2, 3]).await.unwrap(), 6);
    assert_eq!(t.heartbeats::<Progress>().len(), 3, "one heartbeat per item");
    // A retried attempt resumes from the previous attempt's last heartbeat.
    let t = ActivityTestContext::new(ProcessItems::NAME).attempt(2).previous_heartbeat(&Progress { done: 2 });
    assert_eq!(t.run(&ProcessItems, vec![1, 2, 3]).await.unwrap(), 3);
    // ANCHOR_END: unit

    let calls = Arc::new(AtomicU32::new(0));
    let mut worker = Worker::new(Arc::new(MemoryStore::new()), WorkerOptions::default());
    worker.register_workflow::<PayNow>().unwrap();
    worker.register_workflow::<AlwaysDeclined>().unwrap();
    worker.register_activity(Charge { calls: calls.clone() }).unwrap();
    let worker = worker.start().unwrap();
    let client = worker.client();
    let h = client.start::<PayNow>("pay-1", 500, StartOptions::default()).await.unwrap();
    assert!(h.result().await.unwrap().starts_with("paid 500 with key "));
    assert_eq!(calls.load(Ordering::SeqCst), 3, "two retries, then success");
    let attempts = client.describe("pay-1").await.unwrap().attempts;
    assert_eq!(attempts.len(), 3);

    let h = client.start::<AlwaysDeclined>("declined", (), StartOptions::default()).await.unwrap();
    let out = h.result().await.unwrap();
    println!("{out}");
    assert_eq!(out, "activity charge failed after 1 attempt(s): CardDeclined: amount must be above zero");
    worker.shutdown().await;
}
