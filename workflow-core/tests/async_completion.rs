//! Asynchronous activity completion: an attempt hands out its task token and is completed,
//! failed or heartbeated from elsewhere through a `Client`, with its timeouts still watched.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use workflow_core::store::AttemptOutcome;
use workflow_core::testing::TestEnv;
use workflow_core::{
    Activity, ActivityContext, ActivityError, ActivityFailure, ActivityOptions, AsyncCompletionError, Client,
    RetryPolicy, TaskToken, Workflow, WorkflowContext, WorkflowError,
};

/// Asks a person: hands the attempt's token (as text, as a webhook would carry it) to the
/// channel and returns "result pending".
#[derive(Clone)]
struct AskHuman(Arc<Mutex<mpsc::UnboundedSender<String>>>);
impl Activity for AskHuman {
    const NAME: &'static str = "ask_human";
    type Input = String;
    type Output = String;
    async fn run(&self, ctx: ActivityContext, _question: String) -> Result<String, ActivityError> {
        let token = ctx.task_token().expect("a worker gives every attempt a token");
        let _ = self.0.lock().unwrap().send(token.to_string());
        Err(ActivityError::result_pending())
    }
}

/// The options each test's workflow uses, by its input.
fn options(case: &str) -> ActivityOptions {
    let base = ActivityOptions::default().start_to_close_timeout(Duration::from_secs(3600));
    match case {
        "once" => base.retry_policy(RetryPolicy::no_retries()),
        "heartbeat" => {
            base.start_to_close_timeout(Duration::from_secs(86_400)).heartbeat_timeout(Duration::from_secs(600))
        }
        _ => base.retry_policy(RetryPolicy::default().maximum_attempts(3)),
    }
}

/// Asks, and says what came back.
struct Approval;
impl Workflow for Approval {
    const NAME: &'static str = "approval";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, case: String) -> Result<String, WorkflowError> {
        Ok(match ctx.activity_with::<AskHuman>("may I?".into(), options(&case)).await {
            Ok(answer) => answer,
            Err(ActivityFailure::Failed { error, attempts, .. }) => format!("failed after {attempts}: {error}"),
            Err(ActivityFailure::TimedOut { timeout, attempts, .. }) => {
                format!("timed out ({timeout}) after {attempts}")
            }
            Err(other) => return Err(other.into()),
        })
    }
}

fn env() -> (TestEnv, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let env = TestEnv::builder().workflow::<Approval>().activity(AskHuman(Arc::new(Mutex::new(tx)))).start().unwrap();
    (env, rx)
}

/// The next token an attempt hands out. Time may pass meanwhile (a retry's backoff, a
/// timeout), so the test lets go of the clock while it waits.
async fn token(env: &TestEnv, rx: &mut mpsc::UnboundedReceiver<String>) -> TaskToken {
    let _time_may_pass = env.clock().release_hold();
    rx.recv().await.expect("the activity hands out its token").parse().expect("a token parses back")
}

#[tokio::test]
async fn a_token_completes_the_attempt_once() {
    let (env, mut rx) = env();
    let h = env.start::<Approval>("a-1", "default".into()).await.unwrap();
    let t = token(&env, &mut rx).await;
    assert_eq!((t.workflow_id.as_str(), t.seq, t.attempt), ("a-1", 0, 1));
    // Any client completes it: it needs no workflow code.
    let outside = Client::new(env.store().clone());
    outside.complete_activity(&t, &"yes, go ahead").await.unwrap();
    assert_eq!(h.result().await.unwrap(), "yes, go ahead");

    let again = outside.complete_activity(&t, &"no").await.unwrap_err();
    assert!(matches!(again, AsyncCompletionError::NotCurrent { .. }), "{again:?}");
    assert_eq!(
        again.to_string(),
        "activity ask_human (seq 0, attempt 1) of workflow \"a-1\" no longer waits for this attempt: it timed out, was cancelled, or was already completed"
    );
    let history = env.history("a-1").await.unwrap();
    let names: Vec<&str> = history.iter().map(|e| e.kind.name()).collect();
    assert_eq!(names.iter().filter(|n| **n == "ActivityCompleted").count(), 1, "{names:?}");
    let attempts = env.attempts("a-1").await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Completed);
    assert_eq!(attempts[0].worker, t.worker, "logged as the attempt of the worker that started it");

    let bad = "7b7d".parse::<TaskToken>().unwrap_err();
    assert!(bad.to_string().starts_with("bad task token: not a task token"), "{bad}");
}

#[tokio::test]
async fn a_failure_through_the_token_goes_through_the_retry_policy() {
    let (env, mut rx) = env();
    let h = env.start::<Approval>("a-2", "default".into()).await.unwrap();
    let client = env.client();
    let first = token(&env, &mut rx).await;
    client.fail_activity(&first, ActivityError::retryable("Busy", "try later")).await.unwrap();
    // The retry is a new attempt with a new token; the old one is spent.
    let second = token(&env, &mut rx).await;
    assert_eq!(second.attempt, 2);
    assert!(matches!(client.complete_activity(&first, &"late").await, Err(AsyncCompletionError::NotCurrent { .. })));
    client.fail_activity(&second, ActivityError::non_retryable("Refused", "the manager said no")).await.unwrap();
    assert_eq!(h.result().await.unwrap(), "failed after 2: Refused: the manager said no");
}

#[tokio::test]
async fn an_attempt_nobody_completes_times_out_and_is_retried() {
    let (env, mut rx) = env();
    let h = env.start::<Approval>("a-3", "default".into()).await.unwrap();
    let first = token(&env, &mut rx).await;
    // Nobody answers within the hour: the attempt times out and the next one starts after
    // the backoff, with its own token.
    let second = token(&env, &mut rx).await;
    assert_eq!(second.attempt, 2);
    assert!(env.now().since(first.started_at) >= Duration::from_secs(3600));
    let late = env.client().complete_activity(&first, &"too late").await.unwrap_err();
    assert!(matches!(late, AsyncCompletionError::NotCurrent { .. }), "{late:?}");
    env.client().complete_activity(&second, &"ok").await.unwrap();
    assert_eq!(h.result().await.unwrap(), "ok");
    let attempts = env.attempts("a-3").await.unwrap();
    assert_eq!(attempts[0].outcome, AttemptOutcome::TimedOut { timeout: workflow_core::TimeoutKind::StartToClose });

    let h = env.start::<Approval>("a-4", "once".into()).await.unwrap();
    let _ = token(&env, &mut rx).await;
    assert_eq!(h.result().await.unwrap(), "timed out (start-to-close) after 1");
}

#[tokio::test]
async fn heartbeats_through_the_token_keep_the_attempt_alive() {
    let (env, mut rx) = env();
    let h = env.start::<Approval>("a-5", "heartbeat".into()).await.unwrap();
    let t = token(&env, &mut rx).await;
    let client = env.client();
    for step in 0..3u32 {
        env.sleep(Duration::from_secs(480)).await;
        client.heartbeat_activity(&t, &step).await.unwrap();
    }
    // 24 minutes in, well past the 10-minute heartbeat timeout, and still alive.
    client.complete_activity(&t, &"done").await.unwrap();
    assert_eq!(h.result().await.unwrap(), "done");
    let attempts = env.attempts("a-5").await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].last_heartbeat.as_ref().map(|p| p.decode::<u32>("hb").unwrap()), Some(2));

    // Without heartbeats the heartbeat timeout fires (and is retried by the default policy).
    let h = env.start::<Approval>("a-6", "heartbeat".into()).await.unwrap();
    let t1 = token(&env, &mut rx).await;
    let t2 = token(&env, &mut rx).await;
    assert_eq!(t2.attempt, 2);
    let waited = t2.started_at.since(t1.started_at);
    assert!(waited >= Duration::from_secs(600) && waited < Duration::from_secs(3600), "{waited:?}");
    client.complete_activity(&t2, &"second time").await.unwrap();
    assert_eq!(h.result().await.unwrap(), "second time");
    let attempts = env.attempts("a-6").await.unwrap();
    assert_eq!(attempts[0].outcome, AttemptOutcome::TimedOut { timeout: workflow_core::TimeoutKind::Heartbeat });
}

#[tokio::test]
async fn a_token_outlives_the_worker_that_handed_it_out() {
    let (mut env, mut rx) = env();
    let h = env.start::<Approval>("a-7", "default".into()).await.unwrap();
    let t = token(&env, &mut rx).await;
    env.crash_worker().unwrap();
    // The attempt's lease is still valid: the completion is recorded by the new worker.
    env.client().complete_activity(&t, &"answered after the crash").await.unwrap();
    assert_eq!(h.result().await.unwrap(), "answered after the crash");
    assert_eq!(env.attempts("a-7").await.unwrap().len(), 1, "no attempt was run again");
}
