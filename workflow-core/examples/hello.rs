//! Hello world: one workflow, one activity, an in-memory store.
//!
//! Run with `cargo run -p workflow-core --example hello`.

use std::sync::Arc;

use workflow_core::store::MemoryStore;
use workflow_core::{
    Activity, ActivityContext, ActivityError, StartOptions, Worker, WorkerOptions, Workflow, WorkflowContext,
    WorkflowError,
};

/// An activity does the I/O (here it only formats a string). It may fail and be retried.
struct Greet;

impl Activity for Greet {
    const NAME: &'static str = "greet";
    type Input = String;
    type Output = String;

    async fn run(&self, ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
        println!("  activity {} attempt {} greets {name}", ctx.info().activity_type, ctx.info().attempt);
        Ok(format!("Hello, {name}!"))
    }
}

/// A workflow orchestrates: deterministic code whose every step is recorded in its history.
struct Hello;

impl Workflow for Hello {
    const NAME: &'static str = "hello";
    type Input = String;
    type Output = String;

    async fn run(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> {
        Ok(ctx.activity::<Greet>(name).await?)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut worker = Worker::new(Arc::new(MemoryStore::new()), WorkerOptions::default());
    worker.register_workflow::<Hello>()?;
    worker.register_activity(Greet)?;
    let worker = worker.start()?;
    let client = worker.client();

    let run = client.start::<Hello>("hello-1", "world".into(), StartOptions::default()).await?;
    println!("result: {}", run.result().await?);

    println!("history of hello-1:");
    for event in client.history("hello-1").await? {
        println!("  {:>2} {}", event.id, event.kind.name());
    }
    worker.shutdown().await;
    Ok(())
}
