//! An activity completed asynchronously on the sled store: the token handed out before a
//! restart of the process, and the attempt after it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use workflow_core::testing::TestEnv;
use workflow_core::{
    Activity, ActivityContext, ActivityError, ActivityOptions, AsyncCompletionError, Client, TaskToken, Workflow,
    WorkflowContext, WorkflowError,
};
use workflow_store_sled::SledStore;

#[derive(Clone)]
struct AskHuman(Arc<Mutex<mpsc::UnboundedSender<String>>>);
impl Activity for AskHuman {
    const NAME: &'static str = "ask_human";
    type Input = ();
    type Output = String;
    async fn run(&self, ctx: ActivityContext, _: ()) -> Result<String, ActivityError> {
        let _ = self.0.lock().unwrap().send(ctx.task_token().unwrap().to_string());
        Err(ActivityError::result_pending())
    }
}

struct Approval;
impl Workflow for Approval {
    const NAME: &'static str = "approval";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let options = ActivityOptions::default().start_to_close_timeout(Duration::from_secs(3600));
        Ok(ctx.activity_with::<AskHuman>((), options).await?)
    }
}

fn env(store: Arc<SledStore>) -> (TestEnv, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let env = TestEnv::builder()
        .workflow::<Approval>()
        .activity(AskHuman(Arc::new(Mutex::new(tx))))
        .store(store)
        .start()
        .unwrap();
    (env, rx)
}

async fn token(env: &TestEnv, rx: &mut mpsc::UnboundedReceiver<String>) -> TaskToken {
    let _time_may_pass = env.clock().release_hold();
    rx.recv().await.unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_token_completes_its_attempt_and_a_restart_hands_out_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        // Completed through the token within one process.
        let (env, mut rx) = env(Arc::new(SledStore::open(&path).unwrap()));
        let h = env.start::<Approval>("one", ()).await.unwrap();
        let t = token(&env, &mut rx).await;
        Client::new(env.store().clone()).complete_activity(&t, &"yes").await.unwrap();
        assert_eq!(h.result().await.unwrap(), "yes");

        env.start::<Approval>("two", ()).await.unwrap();
        let before = token(&env, &mut rx).await;
        // The process stops here with the attempt waiting for its answer.
        std::fs::write(dir.path().join("token"), before.to_string()).unwrap();
    }
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    let before: TaskToken = std::fs::read_to_string(dir.path().join("token")).unwrap().parse().unwrap();
    let (env, mut rx) = env(Arc::new(SledStore::open(&path).unwrap()));
    // The attempt died with its process: it is retried (not counted against the policy),
    // and the retry hands out a new token. The old one is spent.
    let after = token(&env, &mut rx).await;
    assert_eq!((after.workflow_id.as_str(), after.attempt), ("two", 2));
    let late = env.client().complete_activity(&before, &"late").await.unwrap_err();
    assert!(matches!(late, AsyncCompletionError::NotCurrent { .. }), "{late:?}");
    env.client().complete_activity(&after, &"after the restart").await.unwrap();
    assert_eq!(env.client().handle::<Approval>("two").result().await.unwrap(), "after the restart");
    let history = env.history("two").await.unwrap();
    assert_eq!(history.iter().filter(|e| e.kind.name() == "ActivityCompleted").count(), 1);
}
