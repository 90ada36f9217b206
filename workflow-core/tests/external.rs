//! Workflows talking to workflows: signals and cancellation requests by workflow id.

use std::time::Duration;

use workflow_core::history::ExternalOutcome;
use workflow_core::replay::{ReplayOutcome, Replayer};
use workflow_core::store::RunStatus;
use workflow_core::testing::{CrashSimulation, TestEnv};
use workflow_core::{
    ChildWorkflowOptions, EventKind, ExternalError, ResultError, Signal, Workflow, WorkflowContext, WorkflowError,
};

struct Greeting;
impl Signal for Greeting {
    const NAME: &'static str = "greeting";
    type Payload = String;
}

/// Waits (up to a week) for a greeting and returns it.
struct Listener;
impl Workflow for Listener {
    const NAME: &'static str = "listener";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        match ctx.timeout(Duration::from_secs(7 * 86_400), ctx.signal::<Greeting>()).await {
            Ok(g) => Ok(format!("heard {}", g?)),
            Err(_) => Err(WorkflowError::Cancelled),
        }
    }
}

/// Sends a greeting to the workflow named by its input; says what became of it.
struct Greeter;
impl Workflow for Greeter {
    const NAME: &'static str = "greeter";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, target: String) -> Result<String, WorkflowError> {
        Ok(match ctx.signal_workflow::<Greeting>(&target, "hello".into()).await {
            Ok(()) => "delivered".into(),
            Err(e) => e.to_string(),
        })
    }
}

fn env() -> TestEnv {
    TestEnv::builder()
        .workflow::<Listener>()
        .workflow::<Greeter>()
        .workflow::<Canceller>()
        .workflow::<ParentSignalsChild>()
        .start()
        .unwrap()
}

#[tokio::test]
async fn a_workflow_signals_another_and_learns_what_became_of_it() {
    let env = env();
    let listener = env.start::<Listener>("listener-1", ()).await.unwrap();
    assert_eq!(env.execute::<Greeter>("greeter-1", "listener-1".into()).await.unwrap(), "delivered");
    assert_eq!(listener.result().await.unwrap(), "heard hello");
    let history = env.history("greeter-1").await.unwrap();
    let names: Vec<String> = history.iter().map(|e| e.kind.describe()).collect();
    assert!(names.contains(&"ExternalSignalInitiated(seq 0, greeting to listener-1)".to_string()), "{names:?}");
    assert!(history
        .iter()
        .any(|e| e.kind == EventKind::ExternalDelivered { seq: 0, outcome: ExternalOutcome::Delivered }));

    // Nobody by that name: a typed outcome, not a failure of the sender.
    let out = env.execute::<Greeter>("greeter-2", "nobody".into()).await.unwrap();
    assert_eq!(out, ExternalError::NotFound { workflow_id: "nobody".into() }.to_string());
    assert_eq!(out, "no workflow \"nobody\" to deliver to");
    // A closed workflow.
    let out = env.execute::<Greeter>("greeter-3", "listener-1".into()).await.unwrap();
    assert_eq!(out, "workflow \"listener-1\" is already closed");
}

/// Asks the workflow named by its input to cancel.
struct Canceller;
impl Workflow for Canceller {
    const NAME: &'static str = "canceller";
    type Input = String;
    type Output = ();
    async fn run(ctx: WorkflowContext, target: String) -> Result<(), WorkflowError> {
        ctx.cancel_workflow(&target, "no longer needed").await?;
        Ok(())
    }
}

#[tokio::test]
async fn a_workflow_cancels_another_by_id() {
    let env = env();
    let listener = env.start::<Listener>("listener-2", ()).await.unwrap();
    env.execute::<Canceller>("canceller-1", "listener-2".into()).await.unwrap();
    assert!(matches!(listener.result().await, Err(ResultError::Cancelled { .. })));
    let history = env.history("listener-2").await.unwrap();
    let reason = history.iter().find_map(|e| match &e.kind {
        EventKind::CancelRequested { reason, .. } => reason.clone(),
        _ => None,
    });
    assert_eq!(reason.as_deref(), Some("no longer needed (asked by workflow canceller-1)"));
    // `?` on an undeliverable cancellation fails the sender with a typed error.
    let err = env.execute::<Canceller>("canceller-2", "nobody".into()).await.unwrap_err();
    assert!(err.to_string().contains("ExternalNotFound"), "{err}");
    let d = env.client().describe("canceller-2").await.unwrap();
    assert_eq!(d.info.status, RunStatus::Failed);
}

/// Starts a listener as a child, greets it by id, and returns what it heard.
struct ParentSignalsChild;
impl Workflow for ParentSignalsChild {
    const NAME: &'static str = "parent_signals_child";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let child_id = format!("{}/listener", ctx.workflow_id());
        let child = ctx.child_with::<Listener>((), ChildWorkflowOptions::default().id(child_id.clone()));
        // The child may not exist yet when the signal is first tried: retry after a timer.
        loop {
            match ctx.signal_workflow::<Greeting>(&child_id, "from your parent".into()).await {
                Ok(()) => break,
                Err(ExternalError::NotFound { .. }) => ctx.sleep(Duration::from_secs(1)).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(child.await?)
    }
}

#[tokio::test]
async fn a_parent_signals_its_child() {
    let env = env();
    assert_eq!(env.execute::<ParentSignalsChild>("family", ()).await.unwrap(), "heard from your parent");
}

#[tokio::test]
async fn every_crash_point_of_a_parent_signalling_its_child_holds() {
    let report =
        CrashSimulation::<ParentSignalsChild>::new(()).workflow::<Listener>().random_faults(10).run().await.unwrap();
    assert!(report.passed(), "{report}");
    assert!(report.crash_points >= 4, "{report}");
    println!("{report}");
}

/// Version 2 of the greeter, which greets someone else: its old histories must not replay.
struct GreeterV2;
impl Workflow for GreeterV2 {
    const NAME: &'static str = "greeter";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, _: String) -> Result<String, WorkflowError> {
        ctx.signal_workflow::<Greeting>("someone-else", "hello".into()).await?;
        Ok("delivered".into())
    }
}

#[tokio::test]
async fn greeting_someone_else_diverges_from_the_recorded_history() {
    let env = env();
    env.start::<Listener>("listener-3", ()).await.unwrap();
    env.execute::<Greeter>("greeter-4", "listener-3".into()).await.unwrap();
    let history = env.history("greeter-4").await.unwrap();
    let mut v2 = Replayer::new();
    v2.register_workflow::<GreeterV2>().unwrap();
    match v2.replay_history("greeter-4", &history).outcome {
        ReplayOutcome::Diverged(d) => assert!(format!("{d:?}").contains("someone-else"), "{d:?}"),
        other => panic!("expected a divergence, got {other:?}"),
    }
}
