// Local activities: short work run in the workflow task's worker, recorded by one marker.
// Compiled and run by `cargo test -p tests --test book_snippets`.

use std::sync::Arc;
use std::time::Duration;

use workflow_core::store::MemoryStore;
use workflow_core::{
    Activity, ActivityContext, ActivityError, ActivityOptions, RetryPolicy, StartOptions, Worker,
    WorkerOptions, Workflow, WorkflowContext, WorkflowError,
};

struct ExchangeRate;
impl Activity for ExchangeRate {
    const NAME: &'static str = "exchange_rate";
    type Input = String;
    type Output = f64;
    async fn run(&self, _ctx: ActivityContext, currency: String) -> Result<f64, ActivityError> {
        match currency.as_str() {
            "EUR" => Ok(1.08),
            other => Err(ActivityError::non_retryable("UnknownCurrency", other.to_string())),
        }
    }
}

struct Invoice;
impl Workflow for Invoice {
    const NAME: &'static str = "invoice";
    type Input = (u64, String);
    type Output = u64;
    async fn run(ctx: WorkflowContext, (amount, currency): (u64, String)) -> Result<u64, WorkflowError> {
        // ANCHOR: local
        let options = ActivityOptions::default()
            .start_to_close_timeout(Duration::from_secs(2))
            .schedule_to_close_timeout(Duration::from_secs(30)) // at most MAX_LOCAL_ACTIVITY (5 min)
            .retry_policy(RetryPolicy::default().initial_interval(Duration::from_millis(200)));
        let rate = ctx.local_activity_with::<ExchangeRate>(currency, options).await?;
        // ANCHOR_END: local
        Ok((amount as f64 * rate).round() as u64)
    }
}

#[tokio::main]
async fn main() {
    let mut worker = Worker::new(Arc::new(MemoryStore::new()), WorkerOptions::default());
    worker.register_workflow::<Invoice>().unwrap();
    worker.register_activity(ExchangeRate).unwrap();
    let worker = worker.start().unwrap();
    let client = worker.client();
    let h = client.start::<Invoice>("invoice-1", (100, "EUR".into()), StartOptions::default()).await.unwrap();
    assert_eq!(h.result().await.unwrap(), 108);
    let kinds: Vec<&str> = h.history().await.unwrap().iter().map(|e| e.kind.name()).collect();
    assert!(kinds.contains(&"LocalActivityRecorded") && !kinds.contains(&"ActivityScheduled"), "{kinds:?}");
    worker.shutdown().await;
}
