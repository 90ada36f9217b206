//! Resetting runs (`Client::reset`): a failed run re-run from before its failure with fixed
//! code, an open run re-run from an event, a failed child started again, a reset interrupted
//! midway and finished by a worker, and the refusals.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use workflow_core::history::{ResetFrom, RunStart};
use workflow_core::store::{NewRun, RunStatus, Store};
use workflow_core::{
    Activity, ActivityContext, ActivityError, ActivityOptions, ChildWorkflowOptions, Clock, EventKind,
    ParentClosePolicy, ResetError, ResetPoint, RetryPolicy, RunId, RunningWorker, Signal, StartOptions, Worker,
    WorkerOptions, Workflow, WorkflowContext, WorkflowError,
};

mod common;

use common::{eventually, setup};

/// Counts its calls per input; fails (for good) on inputs starting with "bad" while the
/// shared switch says the bug is there.
#[derive(Clone)]
struct Step {
    calls: Arc<std::sync::Mutex<Vec<String>>>,
    broken: Arc<AtomicBool>,
}

impl Activity for Step {
    const NAME: &'static str = "step";
    type Input = String;
    type Output = String;
    fn options() -> ActivityOptions {
        ActivityOptions::default().retry_policy(RetryPolicy::default().maximum_attempts(2))
    }
    async fn run(&self, _: ActivityContext, what: String) -> Result<String, ActivityError> {
        self.calls.lock().unwrap().push(what.clone());
        if what.starts_with("bad") && self.broken.load(Ordering::SeqCst) {
            return Err(ActivityError::non_retryable("Bug", format!("cannot do {what}")));
        }
        Ok(format!("{what} done"))
    }
}

/// Step one, an hour's wait, a step that has a bug, step three.
struct Pipeline;
impl Workflow for Pipeline {
    const NAME: &'static str = "pipeline";
    type Input = ();
    type Output = Vec<String>;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
        let one = ctx.activity::<Step>("one".into()).await?;
        ctx.sleep(Duration::from_secs(3600)).await?;
        let two = ctx.activity::<Step>("bad-two".into()).await?;
        let three = ctx.activity::<Step>("three".into()).await?;
        Ok(vec![one, two, three])
    }
}

struct Add;
impl Signal for Add {
    const NAME: &'static str = "add";
    type Payload = u32;
}

/// Step one, then the sum of two signals.
struct Collect;
impl Workflow for Collect {
    const NAME: &'static str = "collect";
    type Input = ();
    type Output = (String, u32);
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(String, u32), WorkflowError> {
        let one = ctx.activity::<Step>("one".into()).await?;
        let a = ctx.signal::<Add>().await?;
        let b = ctx.signal::<Add>().await?;
        Ok((one, a + b))
    }
}

/// One child per input, all awaited.
struct Fan;
impl Workflow for Fan {
    const NAME: &'static str = "fan";
    type Input = Vec<String>;
    type Output = Vec<String>;
    async fn run(ctx: WorkflowContext, items: Vec<String>) -> Result<Vec<String>, WorkflowError> {
        let id = ctx.workflow_id();
        let children: Vec<_> = items
            .iter()
            .map(|i| {
                let options = ChildWorkflowOptions::default()
                    .id(format!("{id}/{i}"))
                    .parent_close_policy(ParentClosePolicy::Abandon);
                ctx.child_with::<One>(i.clone(), options)
            })
            .collect();
        let mut out = Vec::new();
        for c in children {
            out.push(c.await?);
        }
        Ok(out)
    }
}

/// A child: waits `secs` seconds if its input is "slow", then one step.
struct One;
impl Workflow for One {
    const NAME: &'static str = "one";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, what: String) -> Result<String, WorkflowError> {
        if what == "slow" {
            ctx.sleep(Duration::from_secs(24 * 3600)).await?;
        }
        Ok(ctx.activity::<Step>(what).await?)
    }
}

struct Env {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    calls: Arc<std::sync::Mutex<Vec<String>>>,
    broken: Arc<AtomicBool>,
}

impl Env {
    fn new() -> Env {
        let (store, clock) = setup();
        Env { store, clock, calls: Default::default(), broken: Arc::new(AtomicBool::new(true)) }
    }

    fn worker(&self) -> RunningWorker {
        let mut w = Worker::new(self.store.clone(), WorkerOptions::default().poll_interval(Duration::from_millis(200)))
            .with_clock(self.clock.clone());
        w.register_workflow::<Pipeline>().unwrap();
        w.register_workflow::<Collect>().unwrap();
        w.register_workflow::<Fan>().unwrap();
        w.register_workflow::<One>().unwrap();
        w.register_activity(Step { calls: self.calls.clone(), broken: self.broken.clone() }).unwrap();
        w.start().unwrap()
    }

    fn calls_of(&self, what: &str) -> usize {
        self.calls.lock().unwrap().iter().filter(|c| *c == what).count()
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_run_reset_before_its_failure_redoes_only_the_failed_step() {
    let env = Env::new();
    let w = env.worker();
    let client = w.client();
    let h = client.start::<Pipeline>("p-1", (), StartOptions::default()).await.unwrap();
    assert!(h.result().await.is_err(), "the bug fails the run");
    let old = client.describe("p-1").await.unwrap().info;
    assert_eq!(old.status, RunStatus::Failed);
    let old_history = client.history("p-1").await.unwrap();

    // The bug is fixed (a new deploy); the run is re-run from before its failure.
    env.broken.store(false, Ordering::SeqCst);
    let before = env.clock.now();
    let new_run = client.reset("p-1", ResetPoint::BeforeFailure, "bug 42 fixed").await.unwrap();
    let result = client.handle::<Pipeline>("p-1").result().await.unwrap();
    assert_eq!(result, ["one done", "bad-two done", "three done"]);

    // Step one and the hour's wait are not done again; the failed step is, once.
    assert_eq!(env.calls_of("one"), 1);
    assert_eq!(env.calls_of("bad-two"), 2);
    assert_eq!(env.calls_of("three"), 1);
    assert!(env.clock.now().0 - before.0 < 3_600_000, "the timer had fired: no second hour");

    // The old run is as it ended; the new one says where it came from.
    assert_eq!(client.store().get_run(&old.run_id).await.unwrap().unwrap().status, RunStatus::Failed);
    assert_eq!(client.store().read_history(&old.run_id, 0).await.unwrap(), old_history);
    let latest = client.describe("p-1").await.unwrap().info;
    assert_eq!((latest.run_id.clone(), latest.status), (new_run, RunStatus::Completed));
    let history = client.history("p-1").await.unwrap();
    match &history[0].kind {
        EventKind::WorkflowStarted { start, .. } => {
            let from = start.reset_from.as_ref().expect("reset_from");
            assert_eq!((&from.run_id, from.reason.as_str()), (&old.run_id, "bug 42 fixed"));
        }
        other => panic!("{other:?}"),
    }
    // Resetting a completed run "before its failure" makes no sense, and says so.
    let err = client.reset("p-1", ResetPoint::BeforeFailure, "again").await.unwrap_err();
    assert!(matches!(err, ResetError::NoFailure { .. }), "{err}");
    drop(w);
}

#[tokio::test(start_paused = true)]
async fn an_open_run_reset_to_an_event_is_terminated_and_its_later_signals_are_received_again() {
    let env = Env::new();
    let w = env.worker();
    let client = w.client();
    client.start::<Collect>("c-1", (), StartOptions::default()).await.unwrap();
    let completed_step = |h: &[workflow_core::Event]| {
        h.iter().find(|e| matches!(e.kind, EventKind::ActivityCompleted { .. })).map(|e| e.id)
    };
    let store = env.store.clone();
    eventually(&env.clock, "step one completed", || {
        let client = client.clone();
        async move { completed_step(&client.history("c-1").await.unwrap()).is_some() }
    })
    .await;
    client.signal::<Add>("c-1", 5).await.unwrap();
    let old = client.describe("c-1").await.unwrap().info;
    let point = completed_step(&client.history("c-1").await.unwrap()).unwrap();

    let out_of_range = client.reset("c-1", ResetPoint::Event(999), "typo").await.unwrap_err();
    assert!(matches!(out_of_range, ResetError::PointOutOfRange { point: 999, .. }), "{out_of_range}");

    let new_run = client.reset("c-1", ResetPoint::Event(point), "re-run after step one").await.unwrap();
    let old_now = store.get_run(&old.run_id).await.unwrap().unwrap();
    assert_eq!(old_now.status, RunStatus::Terminated);
    match store.read_history(&old.run_id, 0).await.unwrap().last().map(|e| &e.kind) {
        Some(EventKind::WorkflowTerminated { reason }) => {
            assert!(reason.contains("reset") && reason.contains(new_run.as_str()), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // The signal the old run got after the point is received again; one more ends the run.
    client.signal::<Add>("c-1", 7).await.unwrap();
    let (one, sum) = client.handle::<Collect>("c-1").result().await.unwrap();
    assert_eq!((one.as_str(), sum), ("one done", 12));
    assert_eq!(env.calls_of("one"), 1);
    drop(w);
}

#[tokio::test(start_paused = true)]
async fn a_failed_child_is_started_again_and_the_others_keep_their_results() {
    let env = Env::new();
    let w = env.worker();
    let client = w.client();
    let items = vec!["a".to_string(), "bad-b".to_string(), "c".to_string()];
    let h = client.start::<Fan>("f-1", items, StartOptions::default()).await.unwrap();
    assert!(h.result().await.is_err());
    assert_eq!(client.describe("f-1/bad-b").await.unwrap().info.status, RunStatus::Failed);

    // Child c ran concurrently: its end was recorded before b's failure or after it. Only
    // a child whose end the kept events hold is not started again.
    let old = client.history("f-1").await.unwrap();
    let ended_at =
        |seq| old.iter().position(|e| matches!(e.kind, EventKind::ChildWorkflowCompleted { seq: s, .. } if s == seq));
    let failed_at = old.iter().position(|e| matches!(e.kind, EventKind::ChildWorkflowFailed { .. })).unwrap();
    let c_runs = if ended_at(2).is_some_and(|i| i < failed_at) { 1 } else { 2 };

    env.broken.store(false, Ordering::SeqCst);
    client.reset("f-1", ResetPoint::BeforeFailure, "fixed").await.unwrap();
    let out = client.handle::<Fan>("f-1").result().await.unwrap();
    assert_eq!(out, ["a done", "bad-b done", "c done"]);
    assert!(ended_at(0).is_some_and(|i| i < failed_at), "a ended before b failed");
    assert_eq!((env.calls_of("a"), env.calls_of("bad-b"), env.calls_of("c")), (1, 2, c_runs));
    assert_eq!(client.describe("f-1/bad-b").await.unwrap().info.status, RunStatus::Completed);
    drop(w);
}

#[tokio::test(start_paused = true)]
async fn a_reset_is_refused_while_a_child_it_would_restart_runs_or_while_the_parent_waits() {
    let env = Env::new();
    let w = env.worker();
    let client = w.client();
    let items = vec!["slow".to_string()];
    client.start::<Fan>("f-2", items, StartOptions::default()).await.unwrap();
    eventually(&env.clock, "the slow child started", || {
        let client = client.clone();
        async move { client.describe("f-2/slow").await.is_ok() }
    })
    .await;
    // The child's parent is open and waits for it.
    let err = client.reset("f-2/slow", ResetPoint::Event(1), "no").await.unwrap_err();
    assert!(matches!(err, ResetError::ParentOpen { .. }), "{err}");
    // The parent cannot restart a child that is still running (abandoned, it outlives it).
    client.terminate("f-2", "stop").await.unwrap();
    let err = client.reset("f-2", ResetPoint::BeforeFailure, "no").await.unwrap_err();
    match err {
        ResetError::ChildStillOpen { ref child_workflow_id, .. } => assert_eq!(child_workflow_id, "f-2/slow"),
        other => panic!("{other}"),
    }
    drop(w);
}

#[tokio::test(start_paused = true)]
async fn a_reset_interrupted_after_creating_its_run_is_finished_by_a_worker() {
    let env = Env::new();
    let w = env.worker();
    let client = w.client();
    let h = client.start::<Pipeline>("p-2", (), StartOptions::default()).await.unwrap();
    assert!(h.result().await.is_err());
    drop(w);
    env.broken.store(false, Ordering::SeqCst);

    // What Client::reset writes first, and nothing after it (its process died there).
    let old = env.store.current_run("p-2").await.unwrap().unwrap();
    let history = env.store.read_history(&old.run_id, 0).await.unwrap();
    let plan = workflow_core::history::ResetPlan::new(&history, ResetPoint::BeforeFailure).unwrap();
    let from = ResetFrom { run_id: old.run_id.clone(), event_id: plan.point, reason: "crash test".into() };
    let mut run = NewRun::new(RunId::generate(), "pipeline", "p-2", old.input.clone(), env.clock.now());
    run.started = workflow_core::history::ResetPlan::started(&history, from).unwrap();
    env.store.create_run(run).await.unwrap();
    assert!(matches!(&run_start(&env, "p-2").await, Some(s) if s.reset_from.is_some()));

    let w = env.worker();
    let result = w.client().handle::<Pipeline>("p-2").result().await.unwrap();
    assert_eq!(result, ["one done", "bad-two done", "three done"]);
    assert_eq!(env.calls_of("one"), 1, "step one was kept, not run again from scratch");
    drop(w);
}

async fn run_start(env: &Env, workflow_id: &str) -> Option<RunStart> {
    let info = env.store.current_run(workflow_id).await.unwrap()?;
    match env.store.read_history(&info.run_id, 0).await.unwrap().first().map(|e| e.kind.clone()) {
        Some(EventKind::WorkflowStarted { start, .. }) => Some(start),
        _ => None,
    }
}
