//! The testing kit on real workflows: time skipping, activity mocks, crash simulation.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use workflow_core::history::EventKind;
use workflow_core::store::AttemptOutcome;
use workflow_core::testing::{CrashSimulation, MockOutcome, TestEnv, TEST_START};
use workflow_core::{
    Activity, ActivityContext, ActivityError, ActivityOptions, ChildWorkflowOptions, Error, Query, ResultError,
    RetryPolicy, Signal, TimeoutKind, Workflow, WorkflowContext, WorkflowError,
};

const DAY: Duration = Duration::from_secs(86_400);

/// Calls a remote service (never called for real here: mocked).
struct Fetch;
impl Activity for Fetch {
    const NAME: &'static str = "fetch";
    type Input = u32;
    type Output = u32;
    fn options() -> ActivityOptions {
        ActivityOptions::default()
            .start_to_close_timeout(Duration::from_secs(60))
            .retry_policy(RetryPolicy::default().initial_interval(Duration::from_secs(3600)).maximum_attempts(4))
    }
    async fn run(&self, _: ActivityContext, _: u32) -> Result<u32, ActivityError> {
        Err(ActivityError::non_retryable("NotInTests", "the real service is not reachable from tests"))
    }
}

/// A real activity: adds one, counting its executions.
#[derive(Clone, Default)]
struct AddOne(Arc<AtomicU32>);
impl Activity for AddOne {
    const NAME: &'static str = "add_one";
    type Input = u32;
    type Output = u32;
    async fn run(&self, _: ActivityContext, n: u32) -> Result<u32, ActivityError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(n + 1)
    }
}

/// Waits a month, then fetches.
struct Monthly;
impl Workflow for Monthly {
    const NAME: &'static str = "monthly";
    type Input = u32;
    type Output = u32;
    async fn run(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        ctx.sleep(30 * DAY).await?;
        Ok(ctx.activity::<Fetch>(n).await?)
    }
}

#[tokio::test]
async fn a_month_long_sleep_and_hours_of_backoff_pass_at_once() {
    let env = TestEnv::builder()
        .workflow::<Monthly>()
        .script::<Fetch>([
            MockOutcome::error(ActivityError::retryable("Unavailable", "503")),
            MockOutcome::time_out(),
            MockOutcome::ok(&7u32).after_heartbeats([1u32, 2]),
        ])
        .start()
        .unwrap();
    assert_eq!(env.execute::<Monthly>("m-1", 41).await.unwrap(), 7);
    // Thirty days, then two backoffs of at least an hour each, and a 60 s timeout.
    let elapsed = env.now().since(TEST_START);
    assert!(elapsed >= 30 * DAY + Duration::from_secs(2 * 3600 + 60), "{elapsed:?}");
    assert!(elapsed < 31 * DAY, "time moved no further than needed: {elapsed:?}");

    let calls = env.calls(Fetch::NAME);
    assert_eq!(calls.iter().map(|c| c.attempt).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(calls.iter().all(|c| c.input_as::<u32>() == Some(41)));
    let outcomes: Vec<_> = env.attempts("m-1").await.unwrap().into_iter().map(|a| a.outcome).collect();
    assert!(matches!(outcomes[0], AttemptOutcome::Failed { .. }), "{outcomes:?}");
    assert_eq!(outcomes[1], AttemptOutcome::TimedOut { timeout: TimeoutKind::StartToClose });
    assert_eq!(outcomes[2], AttemptOutcome::Completed);
    let history = env.history("m-1").await.unwrap();
    assert!(history.iter().any(|e| matches!(e.kind, EventKind::TimerFired { .. })));
}

#[tokio::test]
async fn a_mock_sees_the_previous_attempts_heartbeat_and_an_exhausted_script_says_so() {
    let env = TestEnv::builder()
        .workflow::<Monthly>()
        .mock::<Fetch>(|ctx, n| match ctx.last_heartbeat::<u32>() {
            None => {
                ctx.heartbeat(&5u32);
                Err(ActivityError::retryable("Interrupted", "half done"))
            }
            Some(done) => Ok(n + done),
        })
        .start()
        .unwrap();
    assert_eq!(env.execute::<Monthly>("m-2", 10).await.unwrap(), 15);
    let calls = env.calls(Fetch::NAME);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].previous_heartbeat.as_ref().and_then(|p| p.decode::<u32>("hb").ok()), Some(5));

    let env = TestEnv::builder().workflow::<Monthly>().script::<Fetch>([]).start().unwrap();
    let err = env.execute::<Monthly>("m-3", 1).await.unwrap_err();
    assert!(matches!(err, Error::Result(ResultError::Failed { .. })));
    assert!(err.to_string().contains("MockExhausted") || format!("{err:?}").contains("MockExhausted"), "{err:?}");
}

struct Approve;
impl Signal for Approve {
    const NAME: &'static str = "approve";
    type Payload = String;
}

struct Stage;
impl Query for Stage {
    const NAME: &'static str = "stage";
    type Args = ();
    type Output = String;
}

/// Waits up to a week for an approval, then adds one to its length.
struct Approval;
impl Workflow for Approval {
    const NAME: &'static str = "approval";
    type Input = ();
    type Output = u32;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<u32, WorkflowError> {
        ctx.register_query::<Stage>(|_| "waiting for approval".to_string());
        let by = ctx.timeout(7 * DAY, ctx.signal::<Approve>()).await??;
        Ok(ctx.activity::<AddOne>(by.len() as u32).await?)
    }
}

#[tokio::test]
async fn signals_and_queries_go_through_the_env_and_a_missing_approval_times_out_after_a_week() {
    let adds = AddOne::default();
    let env = TestEnv::builder().workflow::<Approval>().activity(adds.clone()).start().unwrap();
    let h = env.start::<Approval>("a-1", ()).await.unwrap();
    assert_eq!(env.query::<Stage>("a-1", ()).await.unwrap(), "waiting for approval");
    env.sleep(DAY).await; // by hand: a day passes, the workflow still waits
    assert!(!env.client().describe("a-1").await.unwrap().info.status.is_closed());
    env.signal::<Approve>("a-1", "ada".into()).await.unwrap();
    assert_eq!(h.result().await.unwrap(), 4);
    assert_eq!(adds.0.load(Ordering::SeqCst), 1);
    assert!(env.now().since(TEST_START) < 2 * DAY);

    let h = env.start::<Approval>("a-2", ()).await.unwrap();
    assert!(matches!(h.result().await, Err(ResultError::Failed { .. })));
    assert!(env.now().since(TEST_START) >= 8 * DAY, "the week passed on its own");
}

#[tokio::test]
async fn a_crashed_worker_is_replaced_and_the_run_finishes() {
    let adds = AddOne::default();
    let mut env = TestEnv::builder().workflow::<Approval>().activity(adds.clone()).start().unwrap();
    let h = env.start::<Approval>("c-1", ()).await.unwrap();
    env.crash_worker().unwrap();
    env.signal::<Approve>("c-1", "grace".into()).await.unwrap();
    assert_eq!(h.result().await.unwrap(), 6);
    assert_eq!(adds.0.load(Ordering::SeqCst), 1);
}

/// Sums a child's work and its own, around a timer.
struct Parent;
impl Workflow for Parent {
    const NAME: &'static str = "parent";
    type Input = u32;
    type Output = u32;
    async fn run(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        let a = ctx.activity::<AddOne>(n).await?;
        ctx.sleep(Duration::from_secs(600)).await?;
        let b = ctx.child_with::<Child>(a, ChildWorkflowOptions::default().id("child-of-parent")).await?;
        let (c, d) = futures::join!(ctx.activity::<AddOne>(b), ctx.activity::<AddOne>(b * 10));
        Ok(c? + d?)
    }
}

struct Child;
impl Workflow for Child {
    const NAME: &'static str = "child";
    type Input = u32;
    type Output = u32;
    async fn run(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        Ok(ctx.activity::<AddOne>(n).await? * 2)
    }
}

#[tokio::test]
async fn every_crash_point_of_a_workflow_with_a_timer_a_child_and_parallel_activities_holds() {
    let report = CrashSimulation::<Parent>::new(1)
        .workflow::<Child>()
        .activity(AddOne::default())
        .seed(0xC0FFEE)
        .random_faults(20)
        .run()
        .await
        .unwrap();
    assert!(report.passed(), "{report}");
    assert!(report.crash_points >= 10, "{report}");
    println!("{report}");
}

#[tokio::test]
async fn every_crash_point_holds_with_a_signal_and_with_a_cancellation() {
    let report = CrashSimulation::<Approval>::new(())
        .activity(AddOne::default())
        .then_signal::<Approve>("ok".into())
        .run()
        .await;
    let report = report.unwrap();
    assert!(report.passed(), "{report}");
    println!("signal: {report}");

    let report = CrashSimulation::<CancelMe>::new(()).activity(AddOne::default()).then_cancel().run().await.unwrap();
    assert!(report.passed(), "{report}");
    println!("cancel: {report}");
}

/// Sleeps a day; cancelled, runs a cleanup activity first.
struct CancelMe;
impl Workflow for CancelMe {
    const NAME: &'static str = "cancel_me";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        if ctx.sleep(DAY).await.is_err() {
            ctx.activity::<AddOne>(0).await?;
            return Err(WorkflowError::Cancelled);
        }
        Ok(())
    }
}

/// A deliberately wrong workflow: its result reads state outside the history (a counter of
/// how often its code ran in this process), so it differs from one run to the next, as a
/// workflow that reads a clock or a global would after a crash. The simulation must say so.
struct Flaky;
impl Workflow for Flaky {
    const NAME: &'static str = "flaky";
    type Input = ();
    type Output = u32;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<u32, WorkflowError> {
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let first = ctx.side_effect(|| RUNS.fetch_add(1, Ordering::SeqCst))?;
        let _ = ctx.activity::<AddOne>(first).await?;
        Ok(RUNS.load(Ordering::SeqCst))
    }
}

#[tokio::test]
async fn the_simulation_reports_a_workflow_whose_result_changes_with_a_crash() {
    let report = CrashSimulation::<Flaky>::new(()).activity(AddOne::default()).run().await.unwrap();
    assert!(!report.passed(), "reading a global counter outside a side effect must be caught: {report}");
    assert!(report.violations.iter().any(|v| v.contains("fault-free run")), "{report}");
}

#[tokio::test]
async fn queries_go_through_any_client_of_a_running_worker_and_are_answered_by_replay() {
    let env = TestEnv::builder().workflow::<Approval>().activity(AddOne::default()).start().unwrap();
    env.start::<Approval>("q-1", ()).await.unwrap();
    // A second worker on the same store never ran the run: it answers by replaying it.
    let mut other = workflow_core::Worker::new(env.store().clone(), workflow_core::WorkerOptions::default());
    other.register_workflow::<Approval>().unwrap();
    let other = other.start().unwrap();
    assert_eq!(other.client().query::<Stage>("q-1", ()).await.unwrap(), "waiting for approval");
    assert_eq!(env.client().query::<Stage>("q-1", ()).await.unwrap(), "waiting for approval");

    let err = env.client().query::<Unknown>("q-1", ()).await.unwrap_err();
    assert!(matches!(err, workflow_core::QueryError::UnknownQuery { .. }), "{err}");
    assert!(err.to_string().contains("registered: stage"), "{err}");
    let err = env.client().query::<Stage>("nobody", ()).await.unwrap_err();
    assert!(matches!(err, workflow_core::QueryError::NotFound { .. }), "{err}");
    // A plain client has no workflow code: a typed error that says where to ask.
    let plain = workflow_core::Client::new(env.store().clone());
    let err = plain.query::<Stage>("q-1", ()).await.unwrap_err();
    assert!(matches!(err, workflow_core::QueryError::NoWorkflowCode), "{err}");
    assert!(err.to_string().contains("RunningWorker::client"), "{err}");
}

struct Unknown;
impl Query for Unknown {
    const NAME: &'static str = "unknown";
    type Args = ();
    type Output = ();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_env_skips_time_on_a_multi_thread_runtime_too() {
    let env = TestEnv::builder().workflow::<Parent>().workflow::<Child>().activity(AddOne::default()).start().unwrap();
    for i in 0..5 {
        // 1 + 1 = 2; child: (2 + 1) * 2 = 6; then 7 + 61.
        assert_eq!(env.execute::<Parent>(&format!("mt-{i}"), 1).await.unwrap(), 68);
    }
    assert!(env.now().since(TEST_START) >= Duration::from_secs(5 * 600));
    let report = CrashSimulation::<Parent>::new(1).workflow::<Child>().activity(AddOne::default()).run().await.unwrap();
    assert!(report.passed(), "{report}");
}

/// Two different activities at once.
struct Both;
impl Workflow for Both {
    const NAME: &'static str = "both";
    type Input = ();
    type Output = (u32, u32);
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(u32, u32), WorkflowError> {
        let (a, b) = futures::join!(ctx.activity::<Fetch>(1), ctx.activity::<AddOne>(1));
        Ok((a?, b?))
    }
}

#[tokio::test]
async fn time_skips_to_a_timeout_even_when_the_only_slot_waits_for_it() {
    // One activity slot, held by an attempt that only its timeout ends: the other activity
    // is due but cannot start until time moves.
    let env = TestEnv::builder()
        .workflow::<Both>()
        .script::<Fetch>([MockOutcome::time_out(), MockOutcome::ok(&5u32)])
        .activity(AddOne::default())
        .worker_options(workflow_core::WorkerOptions::default().max_concurrent_activities(1))
        .start()
        .unwrap();
    assert_eq!(env.execute::<Both>("both-1", ()).await.unwrap(), (5, 2));
    assert!(env.now().since(TEST_START) >= Duration::from_secs(60));
}
