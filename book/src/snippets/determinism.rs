// Determinism: what workflow code may use, and what the engine says when replay diverges.
// Compiled and run by `cargo test -p tests --test book_snippets`.

use std::sync::Arc;
use std::time::Duration;

use workflow_core::store::{MemoryStore, Store};
use workflow_core::{
    Activity, ActivityContext, ActivityError, EventKind, Signal, StartOptions, Worker, WorkerOptions, Workflow,
    WorkflowContext, WorkflowError,
};

struct Charge;

impl Activity for Charge {
    const NAME: &'static str = "charge";
    type Input = (String, u64);
    type Output = String;

    async fn run(&self, ctx: ActivityContext, (order, cents): (String, u64)) -> Result<String, ActivityError> {
        Ok(format!("receipt for {order}, {cents} cents, key {}", ctx.idempotency_key()))
    }
}

// ANCHOR: deterministic
/// Everything that varies between executions comes from the context, which records it.
struct Checkout;

impl Workflow for Checkout {
    const NAME: &'static str = "checkout";
    type Input = u64;
    type Output = String;

    async fn run(ctx: WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
        let started = ctx.now(); // the time of the event being applied, not the wall clock
        let order = ctx.uuid().to_string(); // seeded from the history: the same on replay
        let coupon = ctx.random() % 100 < 5; // ditto
                                             // A small non-deterministic value, computed once and recorded; replay reads it back.
        let region: String = ctx.side_effect(|| std::env::var("REGION").unwrap_or_else(|_| "eu".into()))?;
        let cents = if coupon { cents * 9 / 10 } else { cents };
        // I/O belongs in activities: the result is recorded once and replayed.
        let receipt = ctx.activity::<Charge>((order, cents)).await?;
        // A durable timer, not tokio::time::sleep.
        ctx.sleep(Duration::from_millis(10)).await?;
        Ok(format!("{receipt} ({region}, started {started})"))
    }
}
// ANCHOR_END: deterministic

/// Any signal wakes the run; we use one to make the new code replay.
struct Poke;
impl Signal for Poke {
    const NAME: &'static str = "poke";
    type Payload = ();
}

// ANCHOR: v1
/// Version 1: charge, then wait a day.
struct ShipV1;

impl Workflow for ShipV1 {
    const NAME: &'static str = "ship";
    type Input = ();
    type Output = String;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let receipt = ctx.activity::<Charge>(("o-1".into(), 100)).await?;
        ctx.sleep(Duration::from_secs(24 * 3600)).await?;
        Ok(receipt)
    }
}
// ANCHOR_END: v1

// ANCHOR: v2
/// Version 2, deployed while a version-1 run waits: the order of the steps changed.
struct ShipV2;

impl Workflow for ShipV2 {
    const NAME: &'static str = "ship"; // same name: runs recorded by V1 replay through this code
    type Input = ();
    type Output = String;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        ctx.sleep(Duration::from_secs(60)).await?;
        Ok(ctx.activity::<Charge>(("o-1".into(), 100)).await?)
    }
}
// ANCHOR_END: v2

async fn wait_for<F, Fut>(mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1000 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached");
}

#[tokio::main]
async fn main() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());

    // The deterministic workflow runs to completion.
    let mut worker = Worker::new(store.clone(), WorkerOptions::default());
    worker.register_workflow::<Checkout>().unwrap();
    worker.register_workflow::<ShipV1>().unwrap();
    worker.register_activity(Charge).unwrap();
    let worker = worker.start().unwrap();
    let client = worker.client();
    let out = client.start::<Checkout>("checkout-1", 1000, StartOptions::default()).await.unwrap().result().await;
    assert!(out.unwrap().starts_with("receipt for "));

    // A V1 run reaches its timer; then the process stops.
    let h = client.start::<ShipV1>("ship-1", (), StartOptions::default()).await.unwrap();
    wait_for(|| {
        let h = h.clone();
        async move { h.history().await.unwrap().iter().any(|e| matches!(e.kind, EventKind::TimerStarted { .. })) }
    })
    .await;
    worker.shutdown().await;

    // ANCHOR: detect
    // A worker with the changed code picks the run up; a signal makes it replay the history.
    let mut worker = Worker::new(store.clone(), WorkerOptions::default());
    worker.register_workflow::<ShipV2>().unwrap();
    worker.register_activity(Charge).unwrap();
    let worker = worker.start().unwrap();
    let client = worker.client();
    client.signal::<Poke>("ship-1", ()).await.unwrap();
    // ANCHOR_END: detect
    wait_for(|| {
        let c = client.clone();
        async move { c.describe("ship-1").await.unwrap().info.task_failure.is_some() }
    })
    .await;
    // ANCHOR: stuck
    let stuck = client.describe("ship-1").await.unwrap().info.task_failure.unwrap();
    println!("{stuck}");
    // ANCHOR_END: stuck
    assert!(stuck.starts_with("[WF-NONDET] nondeterminism in run "), "{stuck}");
    assert!(stuck.contains("history holds ActivityScheduled(seq 0, charge), code asked for TimerStarted(seq 0"));
    client.terminate("ship-1", "book example").await.unwrap();
    worker.shutdown().await;
}
