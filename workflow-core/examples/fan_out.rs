//! Child workflows: a parent fans out one child per item and collects the results; a
//! watchdog child it never waits for is closed by its parent-close policy when the parent
//! completes.
//!
//! Run with `cargo run -p workflow-core --example fan_out`.

use std::sync::Arc;
use std::time::Duration;

use workflow_core::store::MemoryStore;
use workflow_core::{
    Activity, ActivityContext, ActivityError, ChildWorkflowOptions, ParentClosePolicy, StartOptions, Worker,
    WorkerOptions, Workflow, WorkflowContext, WorkflowError,
};

struct Square;

impl Activity for Square {
    const NAME: &'static str = "square";
    type Input = u64;
    type Output = u64;

    async fn run(&self, _ctx: ActivityContext, n: u64) -> Result<u64, ActivityError> {
        Ok(n * n)
    }
}

/// One item's part of the job: a run of its own, with its own history and retries.
struct SquareOne;

impl Workflow for SquareOne {
    const NAME: &'static str = "square_one";
    type Input = u64;
    type Output = u64;

    async fn run(ctx: WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
        Ok(ctx.activity::<Square>(n).await?)
    }
}

/// Would wait an hour; exists only while its parent runs.
struct Watchdog;

impl Workflow for Watchdog {
    const NAME: &'static str = "watchdog";
    type Input = ();
    type Output = ();

    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        ctx.sleep(Duration::from_secs(3600)).await?;
        Ok(())
    }
}

/// Sums the squares of its input, one child per number.
struct SumOfSquares;

impl Workflow for SumOfSquares {
    const NAME: &'static str = "sum_of_squares";
    type Input = Vec<u64>;
    type Output = u64;

    async fn run(ctx: WorkflowContext, numbers: Vec<u64>) -> Result<u64, WorkflowError> {
        let parent = ctx.workflow_id();
        // Started, never awaited: the policy says what happens to it when this run closes.
        let _watchdog = ctx.child_with::<Watchdog>(
            (),
            ChildWorkflowOptions::default()
                .id(format!("{parent}/watchdog"))
                .parent_close_policy(ParentClosePolicy::Terminate),
        );
        // Start every child first (they run concurrently), then collect them in order.
        let children: Vec<_> = numbers
            .iter()
            .map(|&n| {
                let options = ChildWorkflowOptions::default().id(format!("{parent}/square-{n}"));
                ctx.child_with::<SquareOne>(n, options)
            })
            .collect();
        let mut sum = 0;
        for child in children {
            sum += child.await?;
        }
        Ok(sum)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut worker = Worker::new(Arc::new(MemoryStore::new()), WorkerOptions::default());
    worker.register_workflow::<SumOfSquares>()?;
    worker.register_workflow::<SquareOne>()?;
    worker.register_workflow::<Watchdog>()?;
    worker.register_activity(Square)?;
    let worker = worker.start()?;
    let client = worker.client();

    let run = client.start::<SumOfSquares>("squares", (1..=10).collect(), StartOptions::default()).await?;
    let sum = run.result().await?;
    println!("sum of squares 1..=10: {sum}");
    assert_eq!(sum, 385);

    // The watchdog is closed by its parent-close policy once the parent completed.
    let watchdog = client.wait_closed("squares/watchdog", None).await?;
    println!("{:<20} {:<16} STATUS", "WORKFLOW ID", "TYPE");
    for id in ["squares", "squares/square-1", "squares/square-10", "squares/watchdog"] {
        let info = client.describe(id).await?.info;
        println!("{:<20} {:<16} {}", info.workflow_id, info.workflow_type, info.status);
    }
    assert_eq!(watchdog.status.to_string(), "terminated");
    worker.shutdown().await;
    Ok(())
}
