//! A signal from one workflow to another on the sled store, across a restart of the process
//! between the send and its delivery.

use std::sync::Arc;
use std::time::Duration;

use workflow_core::testing::TestEnv;
use workflow_core::{EventKind, Signal, Workflow, WorkflowContext, WorkflowError};
use workflow_store_sled::SledStore;

struct Greeting;
impl Signal for Greeting {
    const NAME: &'static str = "greeting";
    type Payload = String;
}

struct Listener;
impl Workflow for Listener {
    const NAME: &'static str = "listener";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        Ok(format!("heard {}", ctx.signal::<Greeting>().await?))
    }
}

struct Greeter;
impl Workflow for Greeter {
    const NAME: &'static str = "greeter";
    type Input = String;
    type Output = ();
    async fn run(ctx: WorkflowContext, target: String) -> Result<(), WorkflowError> {
        ctx.sleep(Duration::from_secs(60)).await?;
        ctx.signal_workflow::<Greeting>(&target, "hello".into()).await?;
        Ok(())
    }
}

fn env(store: Arc<SledStore>) -> TestEnv {
    TestEnv::builder().workflow::<Listener>().workflow::<Greeter>().store(store).start().unwrap()
}

#[tokio::test]
async fn a_signal_sent_before_a_restart_is_delivered_once_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let env = env(Arc::new(SledStore::open(&path).unwrap()));
        env.start::<Listener>("listener", ()).await.unwrap();
        env.start::<Greeter>("greeter", "listener".into()).await.unwrap();
        // The process stops here: the greeter's timer is pending, nothing was delivered.
    }
    // Let the runtime drop the aborted tasks of the stopped worker (they hold the store).
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    let env = env(Arc::new(SledStore::open(&path).unwrap()));
    env.client().handle::<Greeter>("greeter").result().await.unwrap();
    assert_eq!(env.client().handle::<Listener>("listener").result().await.unwrap(), "heard hello");
    let received = env
        .history("listener")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| matches!(&e.kind, EventKind::SignalReceived { sender: Some(s), .. } if s.workflow_id == "greeter"))
        .count();
    assert_eq!(received, 1);
}
