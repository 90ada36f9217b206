//! Child workflows, signals, queries, continue-as-new, workflow retries and timeouts,
//! versioning: each run live and across a simulated crash (the worker is dropped mid-run and a
//! new one, with an empty cache, replays and finishes).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use workflow_core::store::{RunFilter, RunStatus, Store};
use workflow_core::{
    Activity, ActivityContext, ActivityError, ActivityOptions, ChildEnd, ChildWorkflowOptions, Clock, ControlError,
    Event, EventKind, ParentClosePolicy, Query, QueryError, ResultError, RetryPolicy, RunningWorker, Signal,
    StartOptions, Worker, WorkerOptions, Workflow, WorkflowContext, WorkflowError,
};

mod common;

use common::{eventually, setup};

#[derive(Clone)]
struct Inc;
impl Activity for Inc {
    const NAME: &'static str = "inc";
    type Input = u64;
    type Output = u64;
    async fn run(&self, _: ActivityContext, n: u64) -> Result<u64, ActivityError> {
        Ok(n + 1)
    }
}

#[derive(Clone)]
struct Double;
impl Activity for Double {
    const NAME: &'static str = "double";
    type Input = u64;
    type Output = u64;
    async fn run(&self, _: ActivityContext, n: u64) -> Result<u64, ActivityError> {
        Ok(n * 2)
    }
}

/// Always fails; retried 3 times.
#[derive(Clone)]
struct AlwaysFails;
impl Activity for AlwaysFails {
    const NAME: &'static str = "always_fails";
    type Input = ();
    type Output = ();
    fn options() -> ActivityOptions {
        ActivityOptions::default().retry_policy(RetryPolicy::default().maximum_attempts(3))
    }
    async fn run(&self, _: ActivityContext, _: ()) -> Result<(), ActivityError> {
        Err(ActivityError::retryable("DownstreamDown", "enrichment API refused the connection"))
    }
}

/// Fails (non-retryably) on its first `fail_first` executions overall.
#[derive(Clone)]
struct FailsAtFirst {
    calls: Arc<AtomicU32>,
    fail_first: u32,
}
impl Activity for FailsAtFirst {
    const NAME: &'static str = "fails_at_first";
    type Input = ();
    type Output = u32;
    async fn run(&self, _: ActivityContext, _: ()) -> Result<u32, ActivityError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n <= self.fail_first {
            Err(ActivityError::non_retryable("NotYet", format!("call {n}")))
        } else {
            Ok(n)
        }
    }
}

// ---------- children ----------

struct FailingChild;
impl Workflow for FailingChild {
    const NAME: &'static str = "failing_child";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        ctx.activity::<AlwaysFails>(()).await?;
        Ok(())
    }
}

struct SlowChild;
impl Workflow for SlowChild {
    const NAME: &'static str = "slow_child";
    type Input = u64;
    type Output = u64;
    async fn run(ctx: WorkflowContext, secs: u64) -> Result<u64, WorkflowError> {
        ctx.sleep(Duration::from_secs(secs)).await?;
        Ok(ctx.activity::<Inc>(secs).await?)
    }
}

/// Starts a slow child and a failing child; `handle` decides whether the failure is handled.
struct Parent;
impl Workflow for Parent {
    const NAME: &'static str = "parent";
    type Input = (bool, u64);
    type Output = (Vec<u64>, Vec<String>);
    async fn run(
        ctx: WorkflowContext,
        (handle, slow_secs): (bool, u64),
    ) -> Result<(Vec<u64>, Vec<String>), WorkflowError> {
        let slow = ctx.child_with::<SlowChild>(
            slow_secs,
            ChildWorkflowOptions::default().id(format!("{}/slow", ctx.workflow_id())),
        );
        let failing = ctx.child::<FailingChild>(());
        let mut failures = Vec::new();
        match failing.await {
            Ok(()) => {}
            Err(e) if handle => failures.push(format!("{}: {:?}", e.workflow_id, e.kind)),
            Err(e) => return Err(e.into()),
        }
        let done = vec![slow.await?];
        Ok((done, failures))
    }
}

fn worker(store: &Arc<dyn Store>, clock: &Arc<dyn Clock>, calls: Arc<AtomicU32>) -> RunningWorker {
    let mut w = Worker::new(store.clone(), WorkerOptions::default().poll_interval(Duration::from_millis(200)))
        .with_clock(clock.clone());
    w.register_workflow::<Parent>().unwrap();
    w.register_workflow::<FailingChild>().unwrap();
    w.register_workflow::<SlowChild>().unwrap();
    w.register_workflow::<Counter>().unwrap();
    w.register_workflow::<Restarting>().unwrap();
    w.register_workflow::<Flaky>().unwrap();
    w.register_workflow::<Napper>().unwrap();
    w.register_workflow::<OrderV2>().unwrap();
    w.register_workflow::<Unknown>().unwrap();
    w.register_activity(Inc).unwrap();
    w.register_activity(Double).unwrap();
    w.register_activity(AlwaysFails).unwrap();
    w.register_activity(FailsAtFirst { calls, fail_first: 2 }).unwrap();
    w.start().unwrap()
}

/// Runs `scenario` twice: straight through, and with the worker replaced once `crash_when`
/// holds (a crash: the new worker has an empty cache and replays).
async fn live_and_after_crash<C, CF>(crash_when: C, scenario: impl AsyncFn(&workflow_core::Client, bool) -> ())
where
    C: Fn(Arc<dyn Store>) -> CF,
    CF: std::future::Future<Output = bool>,
{
    for crash in [false, true] {
        let (store, clock) = setup();
        let calls = Arc::new(AtomicU32::new(0));
        let w = worker(&store, &clock, calls.clone());
        let client = w.client();
        let run = scenario(&client, crash);
        tokio::pin!(run);
        if crash {
            // Drive the scenario until the crash point, then swap workers.
            let s = store.clone();
            tokio::select! {
                _ = &mut run => panic!("scenario finished before the crash point"),
                _ = eventually(&clock, "crash point", || crash_when(s.clone())) => {}
            }
            drop(w);
            let w2 = worker(&store, &clock, calls.clone());
            run.await;
            drop(w2);
        } else {
            run.await;
            drop(w);
        }
    }
}

fn chain(f: &workflow_core::Failure) -> Vec<String> {
    f.chain().map(|f| f.error_type.clone()).collect()
}

async fn has_event(store: &Arc<dyn Store>, workflow_id: &str, name: &str) -> bool {
    match store.current_run(workflow_id).await.unwrap() {
        Some(info) => store.read_history(&info.run_id, 0).await.unwrap().iter().any(|e| e.kind.name() == name),
        None => false,
    }
}

#[tokio::test(start_paused = true)]
async fn a_child_failure_propagates_and_the_other_children_are_closed_by_policy() {
    live_and_after_crash(
        |s| async move { has_event(&s, "p-a", "ChildWorkflowStarted").await },
        async |client, crash| {
            let h = client.start::<Parent>("p-a", (false, 3600), StartOptions::default()).await.unwrap();
            match h.result().await {
                Err(ResultError::Failed { failure, .. }) => {
                    assert_eq!(
                        chain(&failure),
                        vec!["ChildWorkflowFailed", "ActivityFailed", "DownstreamDown"],
                        "crash={crash}"
                    );
                    assert!(failure.message.contains("p-a/child-1"), "{failure}");
                }
                other => panic!("the parent must fail, got {other:?}"),
            }
            // The slow child was still running: terminated by the parent-close policy.
            let slow = client.handle::<SlowChild>("p-a/slow");
            match slow.result().await {
                Err(ResultError::Terminated { reason, .. }) => {
                    assert_eq!(reason, "terminated by parent close policy, parent p-a")
                }
                other => panic!("the slow child must be terminated, got {other:?}"),
            }
            let failing = client.describe("p-a/child-1").await.unwrap();
            assert_eq!(failing.info.status, RunStatus::Failed);
            assert_eq!(failing.attempts.len(), 3, "the activity used its three attempts");
            assert_eq!(
                failing.info.parent.as_ref().map(|p| p.workflow_id.as_str()),
                Some("p-a"),
                "the child records its parent"
            );
        },
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_parent_that_handles_a_child_failure_finishes_with_it_recorded() {
    live_and_after_crash(
        |s| async move { has_event(&s, "p-b", "ChildWorkflowStarted").await },
        async |client, _| {
            let h = client.start::<Parent>("p-b", (true, 5), StartOptions::default()).await.unwrap();
            let (done, failures) = h.result().await.unwrap();
            assert_eq!(done, vec![6]);
            assert_eq!(failures, vec![format!("p-b/child-1: {:?}", ChildEnd::Failed)]);
            let names: Vec<&'static str> = h.history().await.unwrap().iter().map(|e| e.kind.name()).collect();
            assert_eq!(names.iter().filter(|n| **n == "ChildWorkflowInitiated").count(), 2);
            assert_eq!(names.iter().filter(|n| **n == "ChildWorkflowStarted").count(), 2, "each start recorded once");
            assert!(names.contains(&"ChildWorkflowFailed") && names.contains(&"ChildWorkflowCompleted"), "{names:?}");
        },
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn request_cancel_and_abandon_policies() {
    struct Holder;
    impl Workflow for Holder {
        const NAME: &'static str = "holder";
        type Input = ();
        type Output = ();
        async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
            let _a = ctx.child_with::<SlowChild>(
                3600,
                ChildWorkflowOptions::default().id("cancel-me").parent_close_policy(ParentClosePolicy::RequestCancel),
            );
            let _b = ctx.child_with::<SlowChild>(
                7200,
                ChildWorkflowOptions::default().id("leave-me").parent_close_policy(ParentClosePolicy::Abandon),
            );
            ctx.sleep(Duration::from_secs(60)).await?;
            Ok(())
        }
    }
    let (store, clock) = setup();
    let mut w = Worker::new(store.clone(), WorkerOptions::default()).with_clock(clock.clone());
    w.register_workflow::<Holder>().unwrap();
    w.register_workflow::<SlowChild>().unwrap();
    w.register_activity(Inc).unwrap();
    let w = w.start().unwrap();
    let client = w.client();
    client.start::<Holder>("holder", (), StartOptions::default()).await.unwrap().result().await.unwrap();
    assert!(matches!(client.handle::<SlowChild>("cancel-me").result().await, Err(ResultError::Cancelled { .. })));
    let history = client.history("cancel-me").await.unwrap();
    assert!(history.iter().any(|e| matches!(&e.kind, EventKind::CancelRequested { reason: Some(r), .. } if r == "cancel requested by parent close policy, parent holder")));
    assert_eq!(client.handle::<SlowChild>("leave-me").result().await.unwrap(), 7201, "the abandoned child runs on");
}

// ---------- signals and queries ----------

struct Add;
impl Signal for Add {
    const NAME: &'static str = "add";
    type Payload = u64;
}

struct Total;
impl Query for Total {
    const NAME: &'static str = "total";
    type Args = ();
    type Output = (u64, u32);
}

/// Sums `n` signals; answers the running total by query.
struct Counter;
impl Workflow for Counter {
    const NAME: &'static str = "counter";
    type Input = u32;
    type Output = u64;
    async fn run(ctx: WorkflowContext, n: u32) -> Result<u64, WorkflowError> {
        let total = Rc::new(Cell::new((0u64, 0u32)));
        let t = total.clone();
        ctx.register_query::<Total>(move |()| t.get());
        for _ in 0..n {
            let v = ctx.signal::<Add>().await?;
            let (sum, count) = total.get();
            total.set((sum + v, count + 1));
        }
        Ok(total.get().0)
    }
}

#[tokio::test(start_paused = true)]
async fn signals_arrive_in_order_and_queries_read_state_across_a_crash() {
    let (store, clock) = setup();
    let calls = Arc::new(AtomicU32::new(0));
    let w = worker(&store, &clock, calls.clone());
    let client = w.client();
    let h = client.start::<Counter>("ctr", 3, StartOptions::default()).await.unwrap();
    client.signal::<Add>("ctr", 10).await.unwrap();
    client.signal::<Add>("ctr", 20).await.unwrap();
    eventually(&clock, "two signals processed", || {
        let w = &w;
        async move { w.query::<Total>("ctr", ()).await.map(|t| t.1 == 2).unwrap_or(false) }
    })
    .await;
    assert_eq!(w.query::<Total>("ctr", ()).await.unwrap(), (30, 2));
    let before = h.history().await.unwrap().len();
    assert_eq!(h.history().await.unwrap().len(), before, "queries write nothing");
    drop(w);
    let w2 = worker(&store, &clock, calls);
    assert_eq!(w2.query::<Total>("ctr", ()).await.unwrap(), (30, 2), "a fresh worker replays to answer");
    assert!(matches!(w2.query::<UnknownQuery>("ctr", ()).await, Err(QueryError::UnknownQuery { .. })));
    client.signal::<Add>("ctr", 5).await.unwrap();
    assert_eq!(h.result().await.unwrap(), 35);
    assert!(matches!(client.signal::<Add>("ctr", 1).await, Err(ControlError::AlreadyClosed { .. })));
    assert!(matches!(client.signal::<Add>("nobody", 1).await, Err(ControlError::NotFound { .. })));
}

struct UnknownQuery;
impl Query for UnknownQuery {
    const NAME: &'static str = "nope";
    type Args = ();
    type Output = ();
}

// ---------- continue-as-new, retries, timeouts ----------

/// Counts up to 5, one run per step.
struct Restarting;
impl Workflow for Restarting {
    const NAME: &'static str = "restarting";
    type Input = u64;
    type Output = u64;
    async fn run(ctx: WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
        let n = ctx.activity::<Inc>(n).await?;
        ctx.sleep(Duration::from_secs(10)).await?;
        if n < 5 {
            return Err(ctx.continue_as_new(&n));
        }
        Ok(n)
    }
}

#[tokio::test(start_paused = true)]
async fn continue_as_new_chains_runs_and_the_handle_follows_them() {
    live_and_after_crash(
        |s| async move { s.list_runs(&RunFilter::default().workflow_type("restarting")).await.unwrap().len() >= 3 },
        async |client, _| {
            let h = client.start::<Restarting>("loop", 0, StartOptions::default()).await.unwrap();
            assert_eq!(h.result().await.unwrap(), 5);
            let runs = client.list(&RunFilter::default().workflow_type("restarting")).await.unwrap();
            assert_eq!(runs.len(), 5, "one run per step");
            assert_eq!(runs.iter().filter(|r| r.status == RunStatus::ContinuedAsNew).count(), 4);
            assert!(runs.iter().all(|r| r.workflow_id == "loop"));
            let last = client.history("loop").await.unwrap();
            assert!(last.len() < 10, "each run's history starts fresh");
        },
    )
    .await;
}

struct Flaky;
impl Workflow for Flaky {
    const NAME: &'static str = "flaky_wf";
    type Input = ();
    type Output = u32;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<u32, WorkflowError> {
        let opts = ActivityOptions::default().retry_policy(RetryPolicy::no_retries());
        Ok(ctx.activity_with::<FailsAtFirst>((), opts).await?)
    }
}

#[tokio::test(start_paused = true)]
async fn a_workflow_retry_policy_reruns_failed_runs() {
    let (store, clock) = setup();
    let w = worker(&store, &clock, Arc::new(AtomicU32::new(0)));
    let client = w.client();
    let policy = RetryPolicy::default().initial_interval(Duration::from_secs(10)).maximum_attempts(5);
    let begin = clock.now();
    let h = client.start::<Flaky>("flaky", (), StartOptions::default().retry_policy(policy)).await.unwrap();
    assert_eq!(h.result().await.unwrap(), 3, "the third run succeeds");
    assert!(clock.now().since(begin) >= Duration::from_secs(30), "10 s then 20 s of backoff between runs");
    let runs = client.list(&RunFilter::default().workflow_type("flaky_wf")).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![RunStatus::Completed, RunStatus::Failed, RunStatus::Failed]
    );
}

struct Napper;
impl Workflow for Napper {
    const NAME: &'static str = "napper";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        ctx.sleep(Duration::from_secs(3600)).await?;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_timeout_closes_the_run() {
    let (store, clock) = setup();
    let w = worker(&store, &clock, Arc::new(AtomicU32::new(0)));
    let client = w.client();
    let h =
        client.start::<Napper>("nap", (), StartOptions::default().run_timeout(Duration::from_secs(600))).await.unwrap();
    assert!(matches!(h.result().await, Err(ResultError::TimedOut { .. })));
    let info = client.describe("nap").await.unwrap().info;
    assert_eq!(info.status, RunStatus::TimedOut);
    assert_eq!(info.close_time.unwrap().since(info.start_time), Duration::from_secs(600));
    assert_eq!(h.history().await.unwrap().last().unwrap().kind, EventKind::WorkflowTimedOut);
}

#[tokio::test(start_paused = true)]
async fn timeouts_around_futures_are_durable() {
    struct Impatient;
    impl Workflow for Impatient {
        const NAME: &'static str = "impatient";
        type Input = ();
        type Output = String;
        async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
            match ctx.timeout(Duration::from_secs(30), ctx.signal::<Add>()).await {
                Ok(v) => Ok(format!("got {}", v?)),
                Err(_) => Ok("gave up".into()),
            }
        }
    }
    let (store, clock) = setup();
    let mut w = Worker::new(store.clone(), WorkerOptions::default()).with_clock(clock.clone());
    w.register_workflow::<Impatient>().unwrap();
    let w = w.start().unwrap();
    let h = w.client().start::<Impatient>("imp", (), StartOptions::default()).await.unwrap();
    assert_eq!(h.result().await.unwrap(), "gave up");
}

// ---------- versioning ----------

/// The original code: two increments.
struct OrderV1;
impl Workflow for OrderV1 {
    const NAME: &'static str = "order";
    type Input = ();
    type Output = u64;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<u64, WorkflowError> {
        let a = ctx.activity::<Inc>(1).await?;
        Ok(ctx.activity::<Inc>(a).await?)
    }
}

/// The changed code: doubles first, guarded by a patch.
struct OrderV2;
impl Workflow for OrderV2 {
    const NAME: &'static str = "order";
    type Input = ();
    type Output = u64;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<u64, WorkflowError> {
        let mut start = 1;
        if ctx.patched("double-first") {
            start = ctx.activity::<Double>(start).await?;
        }
        let a = ctx.activity::<Inc>(start).await?;
        Ok(ctx.activity::<Inc>(a).await?)
    }
}

/// The changed code without the guard.
struct OrderUnguarded;
impl Workflow for OrderUnguarded {
    const NAME: &'static str = "order";
    type Input = ();
    type Output = u64;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<u64, WorkflowError> {
        let start = ctx.activity::<Double>(1).await?;
        let a = ctx.activity::<Inc>(start).await?;
        Ok(ctx.activity::<Inc>(a).await?)
    }
}

/// Registered by no worker.
struct Ghost;
impl Workflow for Ghost {
    const NAME: &'static str = "ghost";
    type Input = ();
    type Output = ();
    async fn run(_: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        Ok(())
    }
}

struct Unknown;
impl Workflow for Unknown {
    const NAME: &'static str = "unknown_child_parent";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        match ctx.child::<Ghost>(()).await {
            Ok(_) => Ok("started?".into()),
            Err(e) => Ok(e.to_string()),
        }
    }
}

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/histories/order_v1.json");

/// Regenerates the golden history recorded by `OrderV1` (run with `--ignored` after a
/// deliberate format change, and commit the file).
#[tokio::test(start_paused = true)]
#[ignore]
async fn record_order_v1_history() {
    let (store, clock) = setup();
    let mut w = Worker::new(store.clone(), WorkerOptions::default()).with_clock(clock.clone());
    w.register_workflow::<OrderV1>().unwrap();
    w.register_activity(Inc).unwrap();
    let w = w.start().unwrap();
    let h = w.client().start::<OrderV1>("order-1", (), StartOptions::default()).await.unwrap();
    assert_eq!(h.result().await.unwrap(), 3);
    let json = serde_json::to_string_pretty(&h.history().await.unwrap()).unwrap();
    std::fs::write(GOLDEN, json + "\n").unwrap();
}

fn golden() -> Vec<Event> {
    serde_json::from_str(&std::fs::read_to_string(GOLDEN).expect("golden history")).expect("golden history parses")
}

#[test]
fn a_history_recorded_before_a_change_replays_down_the_old_path() {
    let history = golden();
    let mut m =
        workflow_core::replay::RunMachine::for_workflow::<OrderV2>(history[0].kind_run_id(), Default::default());
    m.apply(&history).expect("the patched code replays the old history");
    let act = m.take_activation();
    assert!(act.new_events.is_empty() && act.closed);

    let mut m =
        workflow_core::replay::RunMachine::for_workflow::<OrderUnguarded>(history[0].kind_run_id(), Default::default());
    let err = m.apply(&history).unwrap_err().to_string();
    assert!(
        err.contains("[WF-NONDET]")
            && err.contains("history holds ActivityScheduled(seq 0, inc)")
            && err.contains("double"),
        "{err}"
    );
}

trait RunIdOf {
    fn kind_run_id(&self) -> workflow_core::RunId;
}
impl RunIdOf for Event {
    fn kind_run_id(&self) -> workflow_core::RunId {
        workflow_core::RunId("golden".into())
    }
}

#[tokio::test(start_paused = true)]
async fn new_runs_take_the_patched_path() {
    let (store, clock) = setup();
    let w = worker(&store, &clock, Arc::new(AtomicU32::new(0)));
    let h = w.client().start::<OrderV2>("order-2", (), StartOptions::default()).await.unwrap();
    assert_eq!(h.result().await.unwrap(), 4);
    assert!(h
        .history()
        .await
        .unwrap()
        .iter()
        .any(|e| matches!(&e.kind, EventKind::PatchMarker { patch_id, .. } if patch_id == "double-first")));
}

#[tokio::test(start_paused = true)]
async fn a_child_of_an_unregistered_type_fails_at_the_call_naming_the_types() {
    let (store, clock) = setup();
    let w = worker(&store, &clock, Arc::new(AtomicU32::new(0)));
    let h = w.client().start::<Unknown>("u", (), StartOptions::default()).await.unwrap();
    let msg = h.result().await.unwrap();
    assert!(msg.contains("could not start") && msg.contains("\"ghost\" is not registered"), "{msg}");
    assert!(msg.contains("registered: counter, failing_child"), "{msg}");
}

#[tokio::test(start_paused = true)]
async fn an_execution_timeout_bounds_the_whole_chain_of_runs() {
    let (store, clock) = setup();
    let w = worker(&store, &clock, Arc::new(AtomicU32::new(0)));
    let client = w.client();
    // Each run of `Restarting` takes 10 s; five runs need 50 s, the deadline allows 25 s.
    let begin = clock.now();
    let h = client
        .start::<Restarting>("bounded", 0, StartOptions::default().execution_timeout(Duration::from_secs(25)))
        .await
        .unwrap();
    assert!(matches!(h.result().await, Err(ResultError::TimedOut { .. })));
    let runs = client.list(&RunFilter::default().workflow_type("restarting")).await.unwrap();
    assert_eq!(runs.len(), 3, "runs 1 and 2 continued as new, run 3 hit the deadline");
    assert_eq!(runs[0].status, RunStatus::TimedOut);
    assert_eq!(runs[0].close_time.unwrap().since(begin), Duration::from_secs(25));
}

/// Waits on one slow child; propagates its end.
struct Guardian;
impl Workflow for Guardian {
    const NAME: &'static str = "guardian";
    type Input = ();
    type Output = u64;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<u64, WorkflowError> {
        let child = ctx.child_with::<SlowChild>(3600, ChildWorkflowOptions::default().id("ward"));
        Ok(child.await?)
    }
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_parent_cancels_its_running_children() {
    for crash in [false, true] {
        let (store, clock) = setup();
        let start = |store: &Arc<dyn Store>| {
            let mut w = Worker::new(store.clone(), WorkerOptions::default()).with_clock(clock.clone());
            w.register_workflow::<Guardian>().unwrap();
            w.register_workflow::<SlowChild>().unwrap();
            w.register_activity(Inc).unwrap();
            w.start().unwrap()
        };
        let w = start(&store);
        let client = w.client();
        let h = client.start::<Guardian>("guardian", (), StartOptions::default()).await.unwrap();
        eventually(&clock, "child started", || {
            let s = store.clone();
            async move { has_event(&s, "guardian", "ChildWorkflowStarted").await }
        })
        .await;
        let w = if crash {
            drop(w);
            start(&store)
        } else {
            w
        };
        h.cancel().await.unwrap();
        assert!(matches!(h.result().await, Err(ResultError::Cancelled { .. })), "crash={crash}");
        let ward = client.history("ward").await.unwrap();
        assert!(
            ward.iter().any(|e| matches!(&e.kind, EventKind::CancelRequested { reason: Some(r), .. } if r == "parent guardian was cancelled")),
            "crash={crash}"
        );
        assert_eq!(ward.last().unwrap().kind, EventKind::WorkflowCancelled);
        let names: Vec<&str> = h.history().await.unwrap().iter().map(|e| e.kind.name()).collect();
        assert!(
            names.contains(&"ChildCancelRequested") && names.ends_with(&["ChildWorkflowFailed", "WorkflowCancelled"]),
            "{names:?}"
        );
        drop(w);
    }
}

/// Runs `Flaky` as a child with a retry policy.
struct RetryingParent;
impl Workflow for RetryingParent {
    const NAME: &'static str = "retrying_parent";
    type Input = ();
    type Output = u32;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<u32, WorkflowError> {
        let opts = ChildWorkflowOptions::default()
            .id("flaky-child")
            .retry_policy(RetryPolicy::default().initial_interval(Duration::from_secs(10)).maximum_attempts(3));
        Ok(ctx.child_with::<Flaky>((), opts).await?)
    }
}

/// Starts a continue-as-new chain as a child, then finishes early.
struct ShortParent;
impl Workflow for ShortParent {
    const NAME: &'static str = "short_parent";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        let _chain = ctx.child_with::<Restarting>(0, ChildWorkflowOptions::default().id("chain"));
        ctx.sleep(Duration::from_secs(25)).await?;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn child_retry_policies_and_policies_that_follow_a_childs_chain_of_runs() {
    let (store, clock) = setup();
    let calls = Arc::new(AtomicU32::new(0));
    let mut w = Worker::new(store.clone(), WorkerOptions::default()).with_clock(clock.clone());
    w.register_workflow::<RetryingParent>().unwrap();
    w.register_workflow::<ShortParent>().unwrap();
    w.register_workflow::<Flaky>().unwrap();
    w.register_workflow::<Restarting>().unwrap();
    w.register_activity(Inc).unwrap();
    w.register_activity(FailsAtFirst { calls, fail_first: 2 }).unwrap();
    let w = w.start().unwrap();
    let client = w.client();

    let h = client.start::<RetryingParent>("rp", (), StartOptions::default()).await.unwrap();
    assert_eq!(h.result().await.unwrap(), 3, "the child's third run succeeds");
    let child_runs = client.list(&RunFilter::default().workflow_type("flaky_wf")).await.unwrap();
    assert_eq!(child_runs.len(), 3);
    let parent = h.history().await.unwrap();
    assert_eq!(parent.iter().filter(|e| matches!(e.kind, EventKind::ChildWorkflowCompleted { .. })).count(), 1);
    assert!(
        !parent.iter().any(|e| matches!(e.kind, EventKind::ChildWorkflowFailed { .. })),
        "only the last run reports"
    );

    client.start::<ShortParent>("sp", (), StartOptions::default()).await.unwrap().result().await.unwrap();
    let chain = client.describe("chain").await.unwrap().info;
    assert_eq!(chain.status, RunStatus::Terminated, "the policy reached the chain's current run");
    assert!(chain.failure.unwrap().message.contains("parent close policy, parent sp"));
    let runs = client.list(&RunFilter::default().workflow_type("restarting")).await.unwrap();
    assert_eq!(runs.len(), 3, "two runs continued as new before the parent closed");
}
