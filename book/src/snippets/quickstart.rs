// The quick start, compiled and run by `cargo test -p tests --test book_snippets`.
// The book shows the parts between ANCHOR and ANCHOR_END.

// ANCHOR: imports
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use workflow_core::{
    Activity, ActivityContext, ActivityError, RunningWorker, StartOptions, Worker, WorkerOptions, Workflow,
    WorkflowContext, WorkflowError,
};
use workflow_store_sled::SledStore;
// ANCHOR_END: imports

// Lets the file simulate a crash: while set, the second step never finishes.
static HANG_ON_STEP_2: AtomicBool = AtomicBool::new(false);
static STEPS_RUN: AtomicUsize = AtomicUsize::new(0);

// ANCHOR: activity
/// One step of the work: here it only formats a line, in real code it would call an API,
/// write a file or charge a card.
struct Step;

#[derive(Serialize, Deserialize)]
struct StepInput {
    order: String,
    step: u32,
}

impl Activity for Step {
    const NAME: &'static str = "step";
    type Input = StepInput;
    type Output = String;

    async fn run(&self, ctx: ActivityContext, input: StepInput) -> Result<String, ActivityError> {
        println!("running step {} of {} (attempt {})", input.step, input.order, ctx.attempt());
        do_the_work(&input).await;
        Ok(format!("{}: step {} done", input.order, input.step))
    }
}
// ANCHOR_END: activity

// Stands in for real work. While HANG_ON_STEP_2 is set, step 2 never finishes, so the file
// can "crash" in the middle of it.
async fn do_the_work(input: &StepInput) {
    STEPS_RUN.fetch_add(1, Ordering::SeqCst);
    if input.step == 2 && HANG_ON_STEP_2.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
}

// ANCHOR: workflow
/// Runs three steps in order and returns what they reported.
struct Fulfil;

impl Workflow for Fulfil {
    const NAME: &'static str = "fulfil";
    type Input = String;
    type Output = Vec<String>;

    async fn run(ctx: WorkflowContext, order: String) -> Result<Vec<String>, WorkflowError> {
        let mut done = Vec::new();
        for step in 1..=3 {
            done.push(ctx.activity::<Step>(StepInput { order: order.clone(), step }).await?);
        }
        Ok(done)
    }
}
// ANCHOR_END: workflow

// ANCHOR: worker
/// Opens the store, registers the workflow and the activity, and starts polling.
fn start_worker(db: &Path) -> Result<RunningWorker, Box<dyn std::error::Error>> {
    let store = SledStore::open(db)?;
    let mut worker = Worker::new(Arc::new(store), WorkerOptions::default());
    worker.register_workflow::<Fulfil>()?;
    worker.register_activity(Step)?;
    Ok(worker.start()?)
}
// ANCHOR_END: worker

// ANCHOR: main
async fn run_once(db: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let worker = start_worker(db)?;
    let client = worker.client();
    // `idempotent(true)`: when "order-42" is already running (we crashed), attach to that run
    // instead of failing with StartError::AlreadyStarted.
    let handle =
        client.start::<Fulfil>("order-42", "order-42".to_string(), StartOptions::default().idempotent(true)).await?;
    let result = handle.result().await?;
    worker.shutdown().await;
    Ok(result)
}
// ANCHOR_END: main

#[tokio::main]
async fn main() {
    let db = std::env::temp_dir().join(format!("wf-book-quickstart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&db);

    // First process: steps 1 and 2 start, then the process "crashes" (the worker is dropped,
    // which aborts everything at once, as a kill would).
    HANG_ON_STEP_2.store(true, Ordering::SeqCst);
    {
        let worker = start_worker(&db).unwrap();
        let client = worker.client();
        client.start::<Fulfil>("order-42", "order-42".to_string(), StartOptions::default()).await.unwrap();
        while STEPS_RUN.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(worker);
    }
    // Aborted tasks release the store a moment later; sled allows one opener at a time.
    HANG_ON_STEP_2.store(false, Ordering::SeqCst);
    let mut result = None;
    for _ in 0..200 {
        match run_once(&db).await {
            Ok(r) => {
                result = Some(r);
                break;
            }
            Err(e) if e.to_string().contains("in use") => tokio::time::sleep(Duration::from_millis(25)).await,
            Err(e) => panic!("{e}"),
        }
    }
    let result = result.expect("the store was released");
    assert_eq!(result, ["order-42: step 1 done", "order-42: step 2 done", "order-42: step 3 done"]);
    // Step 1 ran once; step 2 ran twice (at least once: its first attempt was cut off); step 3 once.
    assert_eq!(STEPS_RUN.load(Ordering::SeqCst), 4);
    let _ = std::fs::remove_dir_all(&db);
}
