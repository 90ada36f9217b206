//! An update accepted before a restart of the process is answered once after it, and the
//! caller's retry with the same update id gets that answer.

use std::sync::Arc;
use std::time::Duration;

use workflow_core::history::pending_updates;
use workflow_core::testing::TestEnv;
use workflow_core::{EventKind, Update, Workflow, WorkflowContext, WorkflowError};
use workflow_store_sled::SledStore;

struct Bump;
impl Update for Bump {
    const NAME: &'static str = "bump";
    type Args = u32;
    type Output = u32;
}

/// Takes one bump, thinks about it for a minute, answers the new total and ends with it.
struct Counter;
impl Workflow for Counter {
    const NAME: &'static str = "counter";
    type Input = u32;
    type Output = u32;
    async fn run(ctx: WorkflowContext, start: u32) -> Result<u32, WorkflowError> {
        let bumps = ctx.register_update::<Bump>();
        let bump = bumps.next().await?;
        ctx.sleep(Duration::from_secs(60)).await?;
        let total = start + bump.args();
        bump.complete(&total);
        Ok(total)
    }
}

fn env(store: Arc<SledStore>) -> TestEnv {
    TestEnv::builder().workflow::<Counter>().store(store).start().unwrap()
}

#[tokio::test]
async fn an_update_accepted_before_a_restart_is_answered_once_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let env = env(Arc::new(SledStore::open(&path).unwrap()));
        env.start::<Counter>("counter", 40).await.unwrap();
        env.client().start_update_with_id::<Bump>("counter", "bump-1", 2).await.unwrap();
        let history = env.history("counter").await.unwrap();
        assert_eq!(pending_updates(&history).len(), 1, "accepted, not answered yet");
        // The process stops here, before the answer.
    }
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    let env = env(Arc::new(SledStore::open(&path).unwrap()));
    // The caller retries the same request: it finds the accepted update and its answer.
    assert_eq!(env.client().update_with_id::<Bump>("counter", "bump-1", 2).await.unwrap(), 42);
    assert_eq!(env.client().handle::<Counter>("counter").result().await.unwrap(), 42);
    let history = env.history("counter").await.unwrap();
    let count = |name: &str| history.iter().filter(|e| e.kind.name() == name).count();
    assert_eq!((count("UpdateAccepted"), count("UpdateCompleted")), (1, 1));
    assert!(history
        .iter()
        .any(|e| matches!(&e.kind, EventKind::UpdateCompleted { update_id, .. } if update_id == "bump-1")));
    assert!(pending_updates(&history).is_empty());
}
