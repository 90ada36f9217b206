//! Cancelling one activity or timer from workflow code, without cancelling the run.

use std::time::Duration;

use futures::future::{select, Either};
use workflow_core::replay::{ReplayOutcome, Replayer};
use workflow_core::testing::{CrashSimulation, MockOutcome, TestEnv, TEST_START};
use workflow_core::{
    Activity, ActivityContext, ActivityError, ActivityFailure, ActivityOptions, Elapsed, EventKind, Signal, Workflow,
    WorkflowContext, WorkflowError,
};

const DAY: Duration = Duration::from_secs(86_400);

/// A slow report (mocked: never answers in these tests).
struct Report;
impl Activity for Report {
    const NAME: &'static str = "report";
    type Input = ();
    type Output = String;
    fn options() -> ActivityOptions {
        ActivityOptions::default().start_to_close_timeout(DAY)
    }
    async fn run(&self, _: ActivityContext, _: ()) -> Result<String, ActivityError> {
        Ok("full report".into())
    }
}

/// A quick fallback.
struct Summary;
impl Activity for Summary {
    const NAME: &'static str = "summary";
    type Input = ();
    type Output = String;
    async fn run(&self, _: ActivityContext, _: ()) -> Result<String, ActivityError> {
        Ok("summary".into())
    }
}

/// Waits an hour for the report; then cancels it and falls back to the summary.
struct ReportOrSummary;
impl Workflow for ReportOrSummary {
    const NAME: &'static str = "report_or_summary";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let report = ctx.activity::<Report>(());
        let handle = report.handle();
        match ctx.timeout(Duration::from_secs(3600), report).await {
            Ok(r) => Ok(r?),
            Err(Elapsed) => {
                assert!(handle.is_pending());
                assert!(handle.cancel(), "the report was pending");
                assert!(!handle.cancel(), "a second cancel finds nothing pending");
                Ok(ctx.activity::<Summary>(()).await?)
            }
        }
    }
}

#[tokio::test]
async fn an_activity_given_up_on_is_cancelled_and_the_run_moves_on() {
    let env = TestEnv::builder()
        .workflow::<ReportOrSummary>()
        .script::<Report>([MockOutcome::time_out()])
        .activity(Summary)
        .start()
        .unwrap();
    assert_eq!(env.execute::<ReportOrSummary>("r-1", ()).await.unwrap(), "summary");
    let elapsed = env.now().since(TEST_START);
    assert!(elapsed >= Duration::from_secs(3600) && elapsed < DAY, "did not wait for the report: {elapsed:?}");
    let names: Vec<String> = env.history("r-1").await.unwrap().iter().map(|e| e.kind.describe()).collect();
    let at = names.iter().position(|n| n == "CommandCancelled(seq 2, of seq 0)").expect("the cancel is recorded");
    assert_eq!(names[at + 1], "ActivityCancelled", "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("ActivityTimedOut")), "{names:?}");
    // The cancelled activity's task is gone: nothing of the run is left pending.
    let d = env.client().describe("r-1").await.unwrap();
    assert!(d.pending.is_empty(), "{:?}", d.pending);
}

struct Stop;
impl Signal for Stop {
    const NAME: &'static str = "stop";
    type Payload = ();
}

/// Sleeps thirty days unless told to stop; a stop cancels the timer.
struct Nap;
impl Workflow for Nap {
    const NAME: &'static str = "nap";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let nap = ctx.sleep(30 * DAY);
        let handle = nap.handle();
        let stop = ctx.signal::<Stop>();
        match select(nap, stop).await {
            Either::Left((slept, _)) => Ok(format!("slept: {}", slept.is_ok())),
            Either::Right((_, nap)) => {
                handle.cancel();
                Ok(format!("stopped, nap cancelled: {}", nap.await.is_err()))
            }
        }
    }
}

#[tokio::test]
async fn a_timer_is_cancelled_by_a_signal_and_its_future_says_so() {
    let env = TestEnv::builder().workflow::<Nap>().start().unwrap();
    let h = env.start::<Nap>("n-1", ()).await.unwrap();
    env.signal::<Stop>("n-1", ()).await.unwrap();
    assert_eq!(h.result().await.unwrap(), "stopped, nap cancelled: true");
    assert!(env.now().since(TEST_START) < DAY);
    let history = env.history("n-1").await.unwrap();
    assert!(history.iter().any(|e| e.kind == EventKind::CommandCancelled { seq: 1, target: 0 }), "{history:?}");
    assert!(history.iter().any(|e| e.kind == EventKind::TimerCancelled { seq: 0 }));
    assert!(!history.iter().any(|e| matches!(e.kind, EventKind::TimerFired { .. })));
}

/// Cancels an activity before awaiting it: it resolves as cancelled at once.
struct Never;
impl Workflow for Never {
    const NAME: &'static str = "never";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let r = ctx.activity::<Report>(());
        r.cancel();
        match r.await {
            Err(ActivityFailure::Cancelled { activity_type }) => Ok(format!("{activity_type} cancelled")),
            other => Ok(format!("unexpected: {other:?}")),
        }
    }
}

#[tokio::test]
async fn an_activity_cancelled_before_it_ran_never_runs() {
    let env = TestEnv::builder().workflow::<Never>().script::<Report>([]).start().unwrap();
    assert_eq!(env.execute::<Never>("x-1", ()).await.unwrap(), "report cancelled");
    assert!(env.calls(Report::NAME).is_empty(), "the cancelled activity never ran");
}

#[tokio::test]
async fn every_crash_point_of_a_cancellation_holds() {
    let report = CrashSimulation::<Nap>::new(()).then_signal::<Stop>(()).random_faults(6).run().await.unwrap();
    assert!(report.passed(), "{report}");
    println!("nap: {report}");
    let report = CrashSimulation::<Never>::new(()).activity(Report).random_faults(6).run().await.unwrap();
    assert!(report.passed(), "{report}");
    println!("never: {report}");
}

/// Version 2 of `Nap` that no longer cancels the timer: histories of version 1 must not
/// replay against it.
struct NapV2;
impl Workflow for NapV2 {
    const NAME: &'static str = "nap";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let nap = ctx.sleep(30 * DAY);
        let stop = ctx.signal::<Stop>();
        match select(nap, stop).await {
            Either::Left(_) => Ok("slept".into()),
            Either::Right(_) => Ok("stopped".into()),
        }
    }
}

#[tokio::test]
async fn code_that_stops_cancelling_diverges_from_a_history_that_cancelled() {
    let env = TestEnv::builder().workflow::<Nap>().start().unwrap();
    let h = env.start::<Nap>("n-2", ()).await.unwrap();
    env.signal::<Stop>("n-2", ()).await.unwrap();
    h.result().await.unwrap();
    let history = env.history("n-2").await.unwrap();

    let mut v1 = Replayer::new();
    v1.register_workflow::<Nap>().unwrap();
    assert!(matches!(v1.replay_history("n-2", &history).outcome, ReplayOutcome::Ok));

    let mut v2 = Replayer::new();
    v2.register_workflow::<NapV2>().unwrap();
    match v2.replay_history("n-2", &history).outcome {
        ReplayOutcome::Diverged(d) => {
            assert!(format!("{d:?}").contains("CommandCancelled"), "{d:?}");
        }
        other => panic!("expected a divergence, got {other:?}"),
    }
}
