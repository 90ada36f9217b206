// Registration, type safety, testing and observability.
// Compiled and run by `cargo test -p tests --test book_snippets`.

use std::sync::Arc;

use workflow_core::store::{AttemptOutcome, MemoryStore, RunFilter, RunStatus, Store};
use workflow_core::testing::{CrashSimulation, MockOutcome, TestEnv, TEST_START};
use workflow_core::{
    Activity, ActivityContext, ActivityError, EventKind, StartError, StartOptions, Worker, WorkerError,
    WorkerOptions, Workflow, WorkflowContext, WorkflowError,
};

struct Double;
impl Activity for Double {
    const NAME: &'static str = "double";
    type Input = u64;
    type Output = u64;
    async fn run(&self, _ctx: ActivityContext, n: u64) -> Result<u64, ActivityError> {
        Ok(n * 2)
    }
}

struct Quadruple;
impl Workflow for Quadruple {
    const NAME: &'static str = "quadruple";
    type Input = u64;
    type Output = u64;
    async fn run(ctx: WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
        let n = ctx.activity::<Double>(n).await?;
        Ok(ctx.activity::<Double>(n).await?)
    }
}

/// Not registered with the worker below.
struct Forgotten;
impl Workflow for Forgotten {
    const NAME: &'static str = "forgotten";
    type Input = ();
    type Output = ();
    async fn run(_ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    // ANCHOR: registration
    let mut worker = Worker::new(Arc::new(MemoryStore::new()), WorkerOptions::default());
    worker.register_workflow::<Quadruple>().unwrap();
    worker.register_activity(Double).unwrap();
    // Names are unique per worker: a second registration is refused.
    let err = worker.register_activity(Double).map(|_| ()).unwrap_err();
    assert!(matches!(err, WorkerError::DuplicateRegistration { .. }));
    assert_eq!(err.to_string(), "activity \"double\" is registered twice; names must be unique");
    let worker = worker.start().unwrap();
    let client = worker.client();
    // A client from the worker knows what it registered: starting anything else is refused
    // at the call, with the list of what is registered.
    let err = client.start::<Forgotten>("f-1", (), StartOptions::default()).await.unwrap_err();
    assert!(matches!(err, StartError::UnknownWorkflowType { .. }));
    println!("{err}");
    // ANCHOR_END: registration
    assert_eq!(
        err.to_string(),
        "workflow type \"forgotten\" is not registered (registered: quadruple); register it with Worker::register_workflow"
    );

    // ANCHOR: test
    // An end-to-end test on the in-memory store: start, await, then look at what was recorded.
    let handle = client.start::<Quadruple>("q-1", 5, StartOptions::default()).await.unwrap();
    assert_eq!(handle.result().await.unwrap(), 20);

    let history = handle.history().await.unwrap();
    let names: Vec<&str> = history.iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        names,
        [
            "WorkflowStarted",
            "ActivityScheduled",
            "ActivityStarted",
            "ActivityCompleted",
            "ActivityScheduled",
            "ActivityStarted",
            "ActivityCompleted",
            "WorkflowCompleted",
        ]
    );
    let completions = history.iter().filter(|e| matches!(e.kind, EventKind::ActivityCompleted { .. })).count();
    assert_eq!(completions, 2, "each step recorded once");
    // ANCHOR_END: test

    // ANCHOR: observe
    let description = client.describe("q-1").await.unwrap();
    assert_eq!(description.info.status, RunStatus::Completed);
    assert!(description.pending.is_empty());
    for a in &description.attempts {
        println!("{} seq {} attempt {} on {}: {:?}", a.activity_type, a.seq, a.attempt, a.worker, a.outcome);
        assert_eq!(a.outcome, AttemptOutcome::Completed);
    }
    for e in &history {
        println!("{:>3} {} {}", e.id, e.time, e.kind.describe());
    }
    let done = client.list(&RunFilter::default().status(RunStatus::Completed).limit(10)).await.unwrap();
    assert_eq!(done.len(), 1);
    // ANCHOR_END: observe
    let _: &Arc<dyn Store> = client.store();

    // ANCHOR: kit
    // A worker, a client and an in-memory store on a clock that skips time by itself.
    // `Double` is replaced by a script: the first attempt fails, the second succeeds.
    let env = TestEnv::builder()
        .workflow::<Quadruple>()
        .script::<Double>([
            MockOutcome::error(ActivityError::retryable("Unavailable", "503")),
            MockOutcome::ok(&10u64),
            MockOutcome::ok(&20u64),
        ])
        .start()
        .unwrap();
    assert_eq!(env.execute::<Quadruple>("q-2", 5).await.unwrap(), 20);
    let calls = env.calls(Double::NAME);
    let seen: Vec<(u32, Option<u64>)> = calls.iter().map(|c| (c.attempt, c.input_as::<u64>())).collect();
    assert_eq!(seen, [(1, Some(5)), (2, Some(5)), (1, Some(10))]);
    // The retry's backoff passed on the env's clock, not on yours.
    assert!(env.now() > TEST_START);
    // ANCHOR_END: kit

    // ANCHOR: crash
    // Runs the workflow once per store write, crashing right after it, plus 10 seeded
    // failed writes and lost acknowledgements, and checks the result and the histories.
    let report = CrashSimulation::<Quadruple>::new(5).activity(Double).seed(42).random_faults(10).run().await.unwrap();
    assert!(report.passed(), "{report}");
    println!("{report}");
    // ANCHOR_END: crash

    worker.shutdown().await;
}
