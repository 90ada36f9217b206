//! Cancelling one child from its parent's code, without cancelling the parent.

use std::time::Duration;

use workflow_core::store::RunStatus;
use workflow_core::testing::{CrashSimulation, TestEnv};
use workflow_core::{ChildEnd, ChildWorkflowOptions, EventKind, Workflow, WorkflowContext, WorkflowError};

const DAY: Duration = Duration::from_secs(86_400);

/// Waits a week unless cancelled; when `stubborn`, finishes its week even when asked.
struct Watch;
impl Workflow for Watch {
    const NAME: &'static str = "watch";
    type Input = bool;
    type Output = String;
    async fn run(ctx: WorkflowContext, stubborn: bool) -> Result<String, WorkflowError> {
        if stubborn {
            // Its timer is cancelled with the run's cancellation; it answers anyway.
            let _ = ctx.sleep(7 * DAY).await;
            return Ok("finished anyway".into());
        }
        ctx.sleep(7 * DAY).await?;
        Ok("watched a week".into())
    }
}

/// Starts a watch, waits `delay_hours` (0: cancels before the child even started), cancels it,
/// and reports how the child ended; the parent itself completes.
struct Supervisor;
impl Workflow for Supervisor {
    const NAME: &'static str = "supervisor";
    type Input = (u64, bool);
    type Output = String;
    async fn run(ctx: WorkflowContext, (delay_hours, stubborn): (u64, bool)) -> Result<String, WorkflowError> {
        let id = format!("{}/watch", ctx.workflow_id());
        let child = ctx.child_with::<Watch>(stubborn, ChildWorkflowOptions::default().id(id));
        if delay_hours > 0 {
            ctx.sleep(Duration::from_secs(3600 * delay_hours)).await?;
        }
        assert!(child.cancel(), "pending, not asked before");
        assert!(!child.cancel(), "asked once only");
        Ok(match child.await {
            Ok(r) => format!("child said: {r}"),
            Err(f) if f.kind == ChildEnd::Cancelled => "child cancelled".into(),
            Err(f) => format!("child ended otherwise: {f}"),
        })
    }
}

fn env() -> TestEnv {
    TestEnv::builder().workflow::<Supervisor>().workflow::<Watch>().start().unwrap()
}

fn cancel_reason(history: &[workflow_core::Event]) -> Option<String> {
    history.iter().find_map(|e| match &e.kind {
        EventKind::CancelRequested { reason, .. } => reason.clone(),
        _ => None,
    })
}

#[tokio::test]
async fn a_parent_cancels_one_child_and_carries_on() {
    let env = env();
    assert_eq!(env.execute::<Supervisor>("sup-1", (2, false)).await.unwrap(), "child cancelled");
    assert_eq!(env.client().describe("sup-1").await.unwrap().info.status, RunStatus::Completed);
    let child = env.client().describe("sup-1/watch").await.unwrap();
    assert_eq!(child.info.status, RunStatus::Cancelled);
    let history = env.history("sup-1/watch").await.unwrap();
    assert_eq!(cancel_reason(&history).as_deref(), Some("parent sup-1 cancelled it (command 2)"));
    let parent = env.history("sup-1").await.unwrap();
    let names: Vec<String> = parent.iter().map(|e| e.kind.describe()).collect();
    assert!(names.contains(&"CommandCancelled(seq 2, of seq 0)".to_string()), "{names:?}");
    assert_eq!(names.iter().filter(|n| *n == "ChildCancelRequested").count(), 1, "{names:?}");
    assert!(env.now().since(workflow_core::testing::TEST_START) < DAY, "no week waited");
}

#[tokio::test]
async fn a_child_cancelled_before_it_started_is_asked_once_it_starts() {
    let env = env();
    assert_eq!(env.execute::<Supervisor>("sup-2", (0, false)).await.unwrap(), "child cancelled");
    let history = env.history("sup-2/watch").await.unwrap();
    assert_eq!(cancel_reason(&history).as_deref(), Some("parent sup-2 cancelled it (command 1)"));
}

#[tokio::test]
async fn a_child_that_finishes_anyway_gives_its_result() {
    let env = env();
    assert_eq!(env.execute::<Supervisor>("sup-3", (1, true)).await.unwrap(), "child said: finished anyway");
    assert_eq!(env.client().describe("sup-3/watch").await.unwrap().info.status, RunStatus::Completed);
}

#[tokio::test]
async fn every_crash_point_of_a_child_cancellation_holds() {
    for input in [(2, false), (0, false), (1, true)] {
        let report =
            CrashSimulation::<Supervisor>::new(input).workflow::<Watch>().random_faults(6).run().await.unwrap();
        assert!(report.passed(), "{input:?}: {report}");
        println!("{input:?}: {report}");
    }
}

/// An earlier version that let the child run: histories that cancelled it diverge from it.
struct SupervisorV0;
impl Workflow for SupervisorV0 {
    const NAME: &'static str = "supervisor";
    type Input = (u64, bool);
    type Output = String;
    async fn run(ctx: WorkflowContext, (delay_hours, stubborn): (u64, bool)) -> Result<String, WorkflowError> {
        let id = format!("{}/watch", ctx.workflow_id());
        let child = ctx.child_with::<Watch>(stubborn, ChildWorkflowOptions::default().id(id));
        if delay_hours > 0 {
            ctx.sleep(Duration::from_secs(3600 * delay_hours)).await?;
        }
        Ok(child.await?)
    }
}

#[tokio::test]
async fn code_that_stops_cancelling_the_child_diverges() {
    let env = env();
    env.execute::<Supervisor>("sup-4", (2, false)).await.unwrap();
    let history = env.history("sup-4").await.unwrap();
    let mut v0 = workflow_core::replay::Replayer::new();
    v0.register_workflow::<SupervisorV0>().unwrap();
    match v0.replay_history("sup-4", &history).outcome {
        workflow_core::replay::ReplayOutcome::Diverged(d) => {
            assert!(format!("{d:?}").contains("CommandCancelled"), "{d:?}")
        }
        other => panic!("expected a divergence, got {other:?}"),
    }
}
