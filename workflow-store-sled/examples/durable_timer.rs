//! A durable timer outlives a restart: the workflow starts a 3-second timer, the worker
//! stops (as a crashed or redeployed process would) and its store is closed; a new worker
//! on the same directory fires the timer on time and finishes the run.
//!
//! Run with `cargo run -p workflow-store-sled --example durable_timer [DIR]` (a temporary
//! directory by default). Kill it with Ctrl-C between the two phases and run it again on the
//! same DIR: the second start resumes the run instead of starting it anew.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use workflow_core::{
    Activity, ActivityContext, ActivityError, RunningWorker, StartOptions, Worker, WorkerOptions, Workflow,
    WorkflowContext, WorkflowError,
};
use workflow_store_sled::SledStore;

struct SendReminder;

impl Activity for SendReminder {
    const NAME: &'static str = "send_reminder";
    type Input = String;
    type Output = String;

    async fn run(&self, _ctx: ActivityContext, who: String) -> Result<String, ActivityError> {
        Ok(format!("reminded {who}"))
    }
}

/// Waits, then sends a reminder. The wait is a timer recorded in the run's history.
struct Reminder;

impl Workflow for Reminder {
    const NAME: &'static str = "reminder";
    type Input = String;
    type Output = String;

    async fn run(ctx: WorkflowContext, who: String) -> Result<String, WorkflowError> {
        ctx.sleep(Duration::from_secs(3)).await?;
        Ok(ctx.activity::<SendReminder>(who).await?)
    }
}

fn start_worker(dir: &PathBuf, name: &str) -> Result<RunningWorker, Box<dyn std::error::Error>> {
    let store = SledStore::open(dir)?;
    let mut worker = Worker::new(Arc::new(store), WorkerOptions::default().identity(name));
    worker.register_workflow::<Reminder>()?;
    worker.register_activity(SendReminder)?;
    Ok(worker.start()?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (dir, temporary) = match std::env::args().nth(1) {
        Some(dir) => (PathBuf::from(dir), false),
        None => (std::env::temp_dir().join(format!("durable-timer-{}", std::process::id())), true),
    };
    let began = Instant::now();

    // Phase 1: start the run (or find it, when DIR holds one already), then stop the worker
    // while the timer is pending.
    let worker = start_worker(&dir, "first-process")?;
    let client = worker.client();
    let options = StartOptions::default().idempotent(true);
    client.start::<Reminder>("remind-ann", "ann".into(), options).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pending = client.describe("remind-ann").await?.pending;
    println!(
        "{:>5.1}s first worker stops; pending: {} task(s), the 3 s timer among them",
        began.elapsed().as_secs_f64(),
        pending.len()
    );
    drop(client);
    worker.shutdown().await; // closes the store: nothing but the directory remains

    // Phase 2: a new worker on the same directory; the timer fires at its recorded time.
    let worker = start_worker(&dir, "second-process")?;
    println!("{:>5.1}s second worker started on {}", began.elapsed().as_secs_f64(), dir.display());
    let result = worker.client().handle::<Reminder>("remind-ann").result().await?;
    println!("{:>5.1}s result: {result}", began.elapsed().as_secs_f64());
    for event in worker.client().history("remind-ann").await? {
        println!("       {:>2} {:<24} {}", event.id, event.kind.name(), event.time);
    }
    worker.shutdown().await;
    if temporary {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
