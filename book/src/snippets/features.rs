// Timers, signals, timeouts around futures, cancellation and termination.
// Compiled and run by `cargo test -p tests --test book_snippets`.

use std::sync::Arc;
use std::time::Duration;

use workflow_core::store::MemoryStore;
use workflow_core::{
    Activity, ActivityContext, ActivityError, ControlError, EventKind, ResultError, Signal, StartOptions, Worker,
    WorkerOptions, Workflow, WorkflowContext, WorkflowError,
};

struct Notify;
impl Activity for Notify {
    const NAME: &'static str = "notify";
    type Input = String;
    type Output = ();
    async fn run(&self, _ctx: ActivityContext, _message: String) -> Result<(), ActivityError> {
        Ok(())
    }
}

// ANCHOR: signal_type
/// A typed signal: a stable name and a payload type.
struct Approve;

impl Signal for Approve {
    const NAME: &'static str = "approve";
    type Payload = String; // who approved
}
// ANCHOR_END: signal_type

// ANCHOR: approval
/// Waits for an approval, at most `hours` hours of workflow time; reminds once after a while.
struct Approval;

impl Workflow for Approval {
    const NAME: &'static str = "approval";
    type Input = u64;
    type Output = String;

    async fn run(ctx: WorkflowContext, hours: u64) -> Result<String, WorkflowError> {
        let deadline = Duration::from_secs(hours * 3600);
        match ctx.timeout(deadline, ctx.signal::<Approve>()).await {
            Ok(approved_by) => Ok(format!("approved by {}", approved_by?)),
            Err(_elapsed) => {
                ctx.activity::<Notify>("approval timed out".into()).await?;
                Ok("expired".into())
            }
        }
    }
}
// ANCHOR_END: approval

// ANCHOR: cleanup
/// Waits a day, unless cancelled; on cancellation it runs a cleanup activity, then ends
/// cancelled.
struct Reminder;

impl Workflow for Reminder {
    const NAME: &'static str = "reminder";
    type Input = ();
    type Output = ();

    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        match ctx.sleep(Duration::from_secs(24 * 3600)).await {
            Ok(()) => Ok(ctx.activity::<Notify>("time is up".into()).await?),
            Err(_cancelled) => {
                // Commands issued after the cancellation still run: clean up, then say so.
                ctx.activity::<Notify>("reminder cancelled".into()).await?;
                Err(WorkflowError::Cancelled)
            }
        }
    }
}
// ANCHOR_END: cleanup

/// Sleeps for a while of workflow time.
struct Nap;
impl Workflow for Nap {
    const NAME: &'static str = "nap";
    type Input = u64;
    type Output = ();
    async fn run(ctx: WorkflowContext, ms: u64) -> Result<(), WorkflowError> {
        ctx.sleep(Duration::from_millis(ms)).await?;
        Ok(())
    }
}

async fn until_history_has(client: &workflow_core::Client, id: &str, events: usize) {
    for _ in 0..1000 {
        if client.history(id).await.map(|h| h.len() >= events).unwrap_or(false) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{id} did not reach {events} events");
}

#[tokio::main]
async fn main() {
    let mut worker = Worker::new(Arc::new(MemoryStore::new()), WorkerOptions::default());
    worker.register_workflow::<Approval>().unwrap();
    worker.register_workflow::<Reminder>().unwrap();
    worker.register_workflow::<Nap>().unwrap();
    worker.register_activity(Notify).unwrap();
    let worker = worker.start().unwrap();
    let client = worker.client();

    // ANCHOR: send
    let handle = client.start::<Approval>("expense-17", 48, StartOptions::default()).await.unwrap();
    client.signal::<Approve>("expense-17", "dana".to_string()).await.unwrap();
    assert_eq!(handle.result().await.unwrap(), "approved by dana");
    // A finished run takes no more signals.
    let err = client.signal::<Approve>("expense-17", "eve".to_string()).await.unwrap_err();
    assert!(matches!(err, ControlError::AlreadyClosed { .. }));
    // ANCHOR_END: send

    // A durable timer fires once.
    let nap = client.start::<Nap>("nap-1", 20, StartOptions::default()).await.unwrap();
    nap.result().await.unwrap();
    let fired = nap.history().await.unwrap().iter().filter(|e| matches!(e.kind, EventKind::TimerFired { .. })).count();
    assert_eq!(fired, 1);

    // ANCHOR: cancel
    let handle = client.start::<Reminder>("remind-1", (), StartOptions::default()).await.unwrap();
    // ANCHOR_END: cancel
    until_history_has(&client, "remind-1", 2).await; // the timer is started
                                                     // ANCHOR: cancel2
    handle.cancel().await.unwrap();
    assert!(matches!(handle.result().await, Err(ResultError::Cancelled { .. })));

    let long = client.start::<Reminder>("remind-2", (), StartOptions::default()).await.unwrap();
    long.terminate("customer left").await.unwrap(); // immediate; no workflow code runs after it
    match long.result().await {
        Err(ResultError::Terminated { reason, .. }) => assert_eq!(reason, "customer left"),
        other => panic!("{other:?}"),
    }
    // ANCHOR_END: cancel2
    let names: Vec<&str> = client.history("remind-1").await.unwrap().iter().map(|e| e.kind.name()).collect::<Vec<_>>();
    assert!(names.contains(&"TimerCancelled"), "{names:?}");
    assert_eq!(names.last(), Some(&"WorkflowCancelled"));
    worker.shutdown().await;
}
