// Queries, continue-as-new and versioning with ctx.patched.
// Compiled and run by `cargo test -p tests --test book_snippets`.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use workflow_core::store::MemoryStore;
use workflow_core::{
    Activity, ActivityContext, ActivityError, Query, Signal, StartOptions, Worker, WorkerOptions, Workflow,
    WorkflowContext, WorkflowError,
};

struct Add;
impl Signal for Add {
    const NAME: &'static str = "add";
    type Payload = u64;
}

// ANCHOR: query
/// A read-only question about a running workflow.
struct Total;

impl Query for Total {
    const NAME: &'static str = "total";
    type Args = ();
    type Output = u64;
}

/// Adds up `n` signals. Its running total can be queried at any time.
struct Tally;

impl Workflow for Tally {
    const NAME: &'static str = "tally";
    type Input = u32;
    type Output = u64;

    async fn run(ctx: WorkflowContext, n: u32) -> Result<u64, WorkflowError> {
        let total = Rc::new(Cell::new(0u64));
        // Register before the first await, so every replay has the handler.
        let seen = total.clone();
        ctx.register_query::<Total>(move |()| seen.get());
        for _ in 0..n {
            let add = ctx.signal::<Add>().await?;
            total.set(total.get() + add);
        }
        Ok(total.get())
    }
}
// ANCHOR_END: query

// ANCHOR: continue
/// Counts down in runs of at most 100 steps: each run ends by starting a fresh run of the
/// same workflow (same id, new run id, empty history) with the remaining work.
struct Countdown;

impl Workflow for Countdown {
    const NAME: &'static str = "countdown";
    type Input = (u64, u64); // (remaining, done)
    type Output = u64;

    async fn run(ctx: WorkflowContext, (remaining, mut done): (u64, u64)) -> Result<u64, WorkflowError> {
        let batch = remaining.min(100);
        for _ in 0..batch {
            ctx.sleep(Duration::from_millis(1)).await?; // one step of real work would go here
            done += 1;
        }
        if remaining > batch {
            return Err(ctx.continue_as_new(&(remaining - batch, done)));
        }
        Ok(done)
    }
}
// ANCHOR_END: continue

struct Reserve;
impl Activity for Reserve {
    const NAME: &'static str = "reserve";
    type Input = String;
    type Output = String;
    async fn run(&self, _ctx: ActivityContext, order: String) -> Result<String, ActivityError> {
        Ok(format!("reserved {order}"))
    }
}

struct Charge;
impl Activity for Charge {
    const NAME: &'static str = "charge";
    type Input = String;
    type Output = String;
    async fn run(&self, _ctx: ActivityContext, order: String) -> Result<String, ActivityError> {
        Ok(format!("charged {order}"))
    }
}

// ANCHOR: patched
/// Version 2 of an order workflow. Version 1 reserved and then charged; version 2 charges
/// first. Runs recorded by version 1 replay down the old path.
struct Order;

impl Workflow for Order {
    const NAME: &'static str = "order";
    type Input = String;
    type Output = Vec<String>;

    async fn run(ctx: WorkflowContext, order: String) -> Result<Vec<String>, WorkflowError> {
        if ctx.patched("charge-before-reserve") {
            let charged = ctx.activity::<Charge>(order.clone()).await?;
            let reserved = ctx.activity::<Reserve>(order).await?;
            Ok(vec![charged, reserved])
        } else {
            let reserved = ctx.activity::<Reserve>(order.clone()).await?;
            let charged = ctx.activity::<Charge>(order).await?;
            Ok(vec![reserved, charged])
        }
    }
}
// ANCHOR_END: patched

#[tokio::main]
async fn main() {
    let mut worker = Worker::new(Arc::new(MemoryStore::new()), WorkerOptions::default());
    worker.register_workflow::<Tally>().unwrap();
    worker.register_workflow::<Countdown>().unwrap();
    worker.register_workflow::<Order>().unwrap();
    worker.register_activity(Reserve).unwrap();
    worker.register_activity(Charge).unwrap();
    let worker = worker.start().unwrap();
    let client = worker.client();

    // ANCHOR: ask
    let handle = client.start::<Tally>("tally-1", 3, StartOptions::default()).await.unwrap();
    client.signal::<Add>("tally-1", 40).await.unwrap();
    client.signal::<Add>("tally-1", 2).await.unwrap();
    // ANCHOR_END: ask
    let mut answer = 0;
    for _ in 0..1000 {
        answer = worker.query::<Total>("tally-1", ()).await.unwrap();
        if answer == 42 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(answer, 42);
    client.signal::<Add>("tally-1", 1).await.unwrap();
    assert_eq!(handle.result().await.unwrap(), 43);

    // ANCHOR: follow
    let handle = client.start::<Countdown>("countdown-1", (250, 0), StartOptions::default()).await.unwrap();
    assert_eq!(handle.result().await.unwrap(), 250); // the handle follows the chain of runs
                                                     // ANCHOR_END: follow

    let handle = client.start::<Order>("order-1", "o-1".into(), StartOptions::default()).await.unwrap();
    assert_eq!(handle.result().await.unwrap(), ["charged o-1", "reserved o-1"]);
    worker.shutdown().await;
}
