//! What cancelling an activity does, by its `ActivityCancellationType`: try-cancel,
//! wait-for-cancellation-completed, abandon.

use std::time::Duration;

use workflow_core::store::RunStatus;
use workflow_core::testing::{MockOutcome, TestEnv};
use workflow_core::{
    Activity, ActivityCancellationType, ActivityContext, ActivityError, ActivityFailure, ActivityOptions, EventKind,
    ResultError, RetryPolicy, Workflow, WorkflowContext, WorkflowError,
};

/// A long report (always mocked here).
struct Report;
impl Activity for Report {
    const NAME: &'static str = "report";
    type Input = ();
    type Output = String;
    async fn run(&self, _: ActivityContext, _: ()) -> Result<String, ActivityError> {
        Ok("report".into())
    }
}

fn options(kind: ActivityCancellationType) -> ActivityOptions {
    ActivityOptions::default()
        .start_to_close_timeout(Duration::from_secs(86_400))
        .retry_policy(RetryPolicy::default().initial_interval(Duration::from_secs(3600)))
        .cancellation_type(kind)
}

/// Starts the report, cancels it after 65 s, and says what the future gave and how many
/// seconds after the cancellation.
struct CancelAfterAMinute;
impl Workflow for CancelAfterAMinute {
    const NAME: &'static str = "cancel_after_a_minute";
    type Input = ActivityCancellationType;
    type Output = (String, u64);
    async fn run(ctx: WorkflowContext, kind: ActivityCancellationType) -> Result<(String, u64), WorkflowError> {
        let report = ctx.activity_with::<Report>((), options(kind));
        ctx.sleep(Duration::from_secs(65)).await?;
        assert!(report.cancel());
        assert!(!report.cancel(), "asked once");
        let asked = ctx.now();
        let what = match report.await {
            Ok(r) => r,
            Err(ActivityFailure::Cancelled { .. }) => "cancelled".into(),
            Err(other) => other.to_string(),
        };
        Ok((what, ctx.now().since(asked).as_secs()))
    }
}

/// Awaits the report (waiting for its cancellation when the run is cancelled).
struct AwaitReport;
impl Workflow for AwaitReport {
    const NAME: &'static str = "await_report";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let options = options(ActivityCancellationType::WaitCancellationCompleted);
        Ok(ctx.activity_with::<Report>((), options).await?)
    }
}

fn env(script: Vec<MockOutcome>) -> TestEnv {
    TestEnv::builder()
        .workflow::<CancelAfterAMinute>()
        .workflow::<AwaitReport>()
        .script::<Report>(script)
        .start()
        .unwrap()
}

fn names(history: &[workflow_core::Event]) -> Vec<&'static str> {
    history.iter().map(|e| e.kind.name()).collect()
}

#[tokio::test]
async fn try_cancel_resolves_at_once_and_removes_the_task() {
    let env = env(vec![MockOutcome::until_cancelled()]);
    let out = env.execute::<CancelAfterAMinute>("t-1", ActivityCancellationType::TryCancel).await.unwrap();
    assert_eq!(out, ("cancelled".to_string(), 0));
    let history = env.history("t-1").await.unwrap();
    assert!(names(&history).contains(&"ActivityCancelled"), "{:?}", names(&history));
}

#[tokio::test]
async fn waiting_for_the_cancellation_resolves_when_the_attempt_stops() {
    let env = env(vec![MockOutcome::until_cancelled()]);
    let out =
        env.execute::<CancelAfterAMinute>("w-1", ActivityCancellationType::WaitCancellationCompleted).await.unwrap();
    // The attempt learns it at its next look (every 10 s without a heartbeat timeout: at
    // 70 s), stops, and only then does the workflow go on.
    assert_eq!(out.0, "cancelled");
    assert!(out.1 > 0 && out.1 <= 10, "waited {} s", out.1);
    let history = env.history("w-1").await.unwrap();
    let n = names(&history);
    assert!(n.contains(&"ActivityCancelRequested") && !n.contains(&"ActivityCancelled"), "{n:?}");
    assert!(history
        .iter()
        .any(|e| matches!(&e.kind, EventKind::ActivityFailed { failure: ActivityFailure::Cancelled { .. }, .. })));
    assert_eq!(env.calls("report").len(), 1, "not retried after it acknowledged");
}

#[tokio::test]
async fn waiting_for_an_activity_between_attempts_cancels_it_at_once() {
    // The first attempt fails; the retry waits an hour: the cancellation a minute in finds no
    // attempt running and is recorded at once.
    let env = env(vec![MockOutcome::error(ActivityError::retryable("Busy", "later"))]);
    let out =
        env.execute::<CancelAfterAMinute>("w-2", ActivityCancellationType::WaitCancellationCompleted).await.unwrap();
    assert_eq!(out, ("cancelled".to_string(), 0));
    assert_eq!(env.calls("report").len(), 1, "the retry never ran");
}

#[tokio::test]
async fn an_abandoned_activity_is_not_told() {
    let env = env(vec![MockOutcome::until_cancelled()]);
    let out = env.execute::<CancelAfterAMinute>("a-1", ActivityCancellationType::Abandon).await.unwrap();
    assert_eq!(out, ("cancelled".to_string(), 0));
    let n: Vec<&str> = names(&env.history("a-1").await.unwrap());
    assert!(n.contains(&"CommandCancelled"), "{n:?}");
    assert!(!n.contains(&"ActivityCancelled") && !n.contains(&"ActivityCancelRequested"), "{n:?}");
}

#[tokio::test]
async fn a_cancelled_run_waits_for_its_activity_to_stop() {
    let env = env(vec![MockOutcome::until_cancelled()]);
    let h = env.start::<AwaitReport>("r-1", ()).await.unwrap();
    env.sleep(Duration::from_secs(5)).await;
    h.cancel().await.unwrap();
    assert!(matches!(h.result().await, Err(ResultError::Cancelled { .. })));
    let history = env.history("r-1").await.unwrap();
    let n = names(&history);
    let pos = |name: &str| n.iter().position(|x| *x == name).unwrap_or_else(|| panic!("{name} in {n:?}"));
    assert!(pos("CancelRequested") < pos("ActivityCancelRequested"));
    assert!(pos("ActivityCancelRequested") < pos("ActivityFailed"));
    assert!(pos("ActivityFailed") < pos("WorkflowCancelled"));
    assert_eq!(env.client().describe("r-1").await.unwrap().info.status, RunStatus::Cancelled);
}

#[tokio::test]
async fn a_waited_for_cancellation_survives_the_death_of_the_attempts_worker() {
    let mut env = env(vec![MockOutcome::until_cancelled()]);
    let h = env.start::<CancelAfterAMinute>("w-3", ActivityCancellationType::WaitCancellationCompleted).await.unwrap();
    // The attempt runs on the first worker, which dies; the cancellation comes later.
    env.sleep(Duration::from_secs(30)).await;
    env.crash_worker().unwrap();
    // The dead attempt's lease ends after its timeout; the worker that takes the task over
    // finds the cancellation and records it instead of running another attempt.
    let (what, _) = h.result().await.unwrap();
    assert_eq!(what, "cancelled");
    assert_eq!(env.calls("report").len(), 1, "no attempt after the crash");
    let history = env.history("w-3").await.unwrap();
    let outcomes = history.iter().filter(|e| matches!(e.kind, EventKind::ActivityFailed { .. })).count();
    assert_eq!(outcomes, 1);
}

/// Schedules the report and cancels it in the same workflow task.
struct ScheduleAndCancel;
impl Workflow for ScheduleAndCancel {
    const NAME: &'static str = "schedule_and_cancel";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let report = ctx.activity_with::<Report>((), options(ActivityCancellationType::WaitCancellationCompleted));
        report.cancel();
        Ok(match report.await {
            Err(ActivityFailure::Cancelled { .. }) => "cancelled".into(),
            other => format!("{other:?}"),
        })
    }
}

#[tokio::test]
async fn an_activity_cancelled_in_the_write_that_schedules_it_never_runs() {
    let env = TestEnv::builder()
        .workflow::<ScheduleAndCancel>()
        .script::<Report>([MockOutcome::until_cancelled()])
        .start()
        .unwrap();
    assert_eq!(env.execute::<ScheduleAndCancel>("s-1", ()).await.unwrap(), "cancelled");
    assert_eq!(env.calls("report").len(), 0);
}
