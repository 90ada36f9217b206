//! The workflows and activities the workloads run: as small as possible, so that the figures
//! measure the engine and not the work.

use std::time::Duration;

use workflow_core::{Activity, ActivityContext, ActivityError, Workflow, WorkflowContext, WorkflowError};

/// Returns its input plus one: the activity of W1, W2, W5 and replay.
pub struct AddOne;

impl Activity for AddOne {
    const NAME: &'static str = "bench_add_one";
    type Input = u64;
    type Output = u64;

    async fn run(&self, _ctx: ActivityContext, n: u64) -> Result<u64, ActivityError> {
        Ok(n + 1)
    }
}

/// `steps` sequential [`AddOne`] activities, each fed the previous result (W1, replay).
pub struct Sequential;

impl Workflow for Sequential {
    const NAME: &'static str = "bench_sequential";
    /// How many activities.
    type Input = u64;
    /// The final value, equal to the input.
    type Output = u64;

    async fn run(ctx: WorkflowContext, steps: u64) -> Result<u64, WorkflowError> {
        let mut n = 0;
        for _ in 0..steps {
            n = ctx.activity::<AddOne>(n).await?;
        }
        Ok(n)
    }
}

/// Three sequential [`AddOne`] activities (W2, W5).
pub struct ThreeSteps;

impl Workflow for ThreeSteps {
    const NAME: &'static str = "bench_three_steps";
    type Input = u64;
    type Output = u64;

    async fn run(ctx: WorkflowContext, mut n: u64) -> Result<u64, WorkflowError> {
        for _ in 0..3 {
            n = ctx.activity::<AddOne>(n).await?;
        }
        Ok(n)
    }
}

/// Waits on a one-hour durable timer, then finishes (W4).
pub struct Parked;

impl Workflow for Parked {
    const NAME: &'static str = "bench_parked";
    type Input = ();
    type Output = ();

    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        ctx.sleep(Duration::from_secs(3600)).await?;
        Ok(())
    }
}
