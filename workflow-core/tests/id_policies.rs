//! Workflow id conflict and reuse policies on start.

use std::time::Duration;

use workflow_core::store::RunStatus;
use workflow_core::testing::TestEnv;
use workflow_core::{
    EventKind, IdConflictPolicy, IdReusePolicy, ResultError, StartError, StartOptions, Workflow, WorkflowContext,
    WorkflowError,
};

/// Sleeps an hour, then returns its input; input 0 fails.
struct Job;
impl Workflow for Job {
    const NAME: &'static str = "job";
    type Input = u32;
    type Output = u32;
    async fn run(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        ctx.sleep(Duration::from_secs(3600)).await?;
        if n == 0 {
            return Err(WorkflowError::new("Zero", "zero is refused"));
        }
        Ok(n)
    }
}

fn env() -> TestEnv {
    TestEnv::builder().workflow::<Job>().start().unwrap()
}

#[tokio::test]
async fn an_open_run_fails_the_start_or_is_attached_to_or_is_terminated_and_replaced() {
    let env = env();
    let client = env.client();
    let first = env.start::<Job>("j", 1).await.unwrap();

    let err = client.start::<Job>("j", 2, StartOptions::default()).await.unwrap_err();
    assert!(matches!(&err, StartError::AlreadyStarted { run_id, .. } if Some(run_id) == first.run_id()), "{err}");
    assert!(err.to_string().contains("IdConflictPolicy::UseExisting"), "{err}");

    let same = client
        .start::<Job>("j", 2, StartOptions::default().id_conflict_policy(IdConflictPolicy::UseExisting))
        .await
        .unwrap();
    assert_eq!(same.run_id(), first.run_id(), "attached to the open run");

    let replaced = client
        .start::<Job>("j", 3, StartOptions::default().id_conflict_policy(IdConflictPolicy::TerminateExisting))
        .await
        .unwrap();
    assert_ne!(replaced.run_id(), first.run_id());
    assert_eq!(replaced.result().await.unwrap(), 3);
    let old = env.store().get_run(first.run_id().unwrap()).await.unwrap().unwrap();
    assert_eq!(old.status, RunStatus::Terminated);
    let history = env.store().read_history(first.run_id().unwrap(), 0).await.unwrap();
    match &history.last().unwrap().kind {
        EventKind::WorkflowTerminated { reason } => assert!(reason.contains("TerminateExisting"), "{reason}"),
        other => panic!("expected a termination, got {other:?}"),
    }
}

#[tokio::test]
async fn a_closed_run_is_reused_by_policy() {
    let env = env();
    let client = env.client();
    let with = |p| StartOptions::default().id_reuse_policy(p);

    // A completed job is not done again under AllowDuplicateFailedOnly or RejectDuplicate.
    let done = env.start::<Job>("done", 5).await.unwrap();
    assert_eq!(done.result().await.unwrap(), 5);
    for policy in [IdReusePolicy::AllowDuplicateFailedOnly, IdReusePolicy::RejectDuplicate] {
        let err = client.start::<Job>("done", 5, with(policy)).await.unwrap_err();
        match &err {
            StartError::IdReuseRejected { run_id, status, policy: p, .. } => {
                assert_eq!(Some(run_id), done.run_id());
                assert_eq!(*status, RunStatus::Completed);
                assert_eq!(*p, policy);
            }
            other => panic!("expected IdReuseRejected, got {other}"),
        }
        assert!(err.to_string().contains("already ran") && err.to_string().contains("completed"), "{err}");
    }
    // The default allows it.
    let again = client.start::<Job>("done", 6, StartOptions::default()).await.unwrap();
    assert_ne!(again.run_id(), done.run_id());
    assert_eq!(again.result().await.unwrap(), 6);

    // A failed job may run again under AllowDuplicateFailedOnly, not under RejectDuplicate.
    let failed = env.start::<Job>("failed", 0).await.unwrap();
    assert!(matches!(failed.result().await, Err(ResultError::Failed { .. })));
    let err = client.start::<Job>("failed", 7, with(IdReusePolicy::RejectDuplicate)).await.unwrap_err();
    assert!(matches!(err, StartError::IdReuseRejected { status: RunStatus::Failed, .. }), "{err}");
    let retried = client.start::<Job>("failed", 7, with(IdReusePolicy::AllowDuplicateFailedOnly)).await.unwrap();
    assert_eq!(retried.result().await.unwrap(), 7);

    // A terminated job too.
    let cut = env.start::<Job>("cut", 8).await.unwrap();
    client.terminate("cut", "operator").await.unwrap();
    assert!(cut.result().await.is_err());
    let redo = client.start::<Job>("cut", 8, with(IdReusePolicy::AllowDuplicateFailedOnly)).await.unwrap();
    assert_eq!(redo.result().await.unwrap(), 8);

    // An id never used starts under every policy.
    client.start::<Job>("fresh", 1, with(IdReusePolicy::RejectDuplicate)).await.unwrap();
}
