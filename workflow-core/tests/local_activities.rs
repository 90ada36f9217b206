//! Local activities: run in the workflow task's worker, retried in memory, recorded by one
//! marker each.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use workflow_core::replay::{ReplayOutcome, Replayer};
use workflow_core::testing::{CrashSimulation, TestEnv};
use workflow_core::{
    Activity, ActivityContext, ActivityError, ActivityFailure, ActivityOptions, EventKind, RetryPolicy, Workflow,
    WorkflowContext, WorkflowError,
};

/// Looks up a price: fails the first `flaky` calls.
#[derive(Clone, Default)]
struct Price {
    calls: Arc<AtomicU32>,
    flaky: u32,
}
impl Activity for Price {
    const NAME: &'static str = "price";
    type Input = String;
    type Output = u32;
    fn options() -> ActivityOptions {
        ActivityOptions::default()
            .start_to_close_timeout(Duration::from_secs(5))
            .retry_policy(RetryPolicy::default().initial_interval(Duration::from_millis(100)).maximum_attempts(5))
    }
    async fn run(&self, _: ActivityContext, item: String) -> Result<u32, ActivityError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n <= self.flaky {
            return Err(ActivityError::retryable("Unavailable", "price service busy"));
        }
        if item == "unknown" {
            return Err(ActivityError::non_retryable("NoSuchItem", format!("no price for {item}")));
        }
        Ok(item.len() as u32 * 10)
    }
}

/// Prices two items locally, then sums them in a scheduled activity.
struct Quote;
impl Workflow for Quote {
    const NAME: &'static str = "quote";
    type Input = Vec<String>;
    type Output = String;
    async fn run(ctx: WorkflowContext, items: Vec<String>) -> Result<String, WorkflowError> {
        let mut total = 0;
        for item in items {
            match ctx.local_activity::<Price>(item.clone()).await {
                Ok(p) => total += p,
                Err(ActivityFailure::Failed { error, attempts, .. }) => {
                    return Ok(format!("{item}: {error} after {attempts} attempt(s)"));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let doubled = ctx.activity::<Double>(total).await?;
        Ok(format!("total {doubled}"))
    }
}

struct Double;
impl Activity for Double {
    const NAME: &'static str = "double";
    type Input = u32;
    type Output = u32;
    async fn run(&self, _: ActivityContext, n: u32) -> Result<u32, ActivityError> {
        Ok(n * 2)
    }
}

fn env(price: Price) -> TestEnv {
    TestEnv::builder().workflow::<Quote>().activity(price).activity(Double).start().unwrap()
}

#[tokio::test]
async fn local_activities_run_in_the_worker_and_are_recorded_by_one_marker_each() {
    let price = Price::default();
    let env = env(price.clone());
    let out = env.execute::<Quote>("q-1", vec!["tea".into(), "coffee".into()]).await.unwrap();
    assert_eq!(out, "total 180");
    let history = env.history("q-1").await.unwrap();
    let names: Vec<String> = history.iter().map(|e| e.kind.describe()).collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("LocalActivityRecorded")).collect::<Vec<_>>(),
        ["LocalActivityRecorded(seq 0, price)", "LocalActivityRecorded(seq 1, price)"]
    );
    assert!(!names.iter().any(|n| n.starts_with("ActivityScheduled(seq 0")), "no scheduling event: {names:?}");
    assert_eq!(price.calls.load(Ordering::SeqCst), 2);
    // The attempt log has them, marked local.
    let attempts = env.attempts("q-1").await.unwrap();
    assert!(attempts.iter().any(|a| a.activity_type == "price" && a.worker.ends_with("(local)")), "{attempts:?}");
}

#[tokio::test]
async fn a_local_activity_is_retried_in_memory_and_fails_with_a_typed_failure() {
    let price = Price { flaky: 2, ..Price::default() };
    let env = env(price.clone());
    assert_eq!(env.execute::<Quote>("q-2", vec!["tea".into()]).await.unwrap(), "total 60");
    assert_eq!(price.calls.load(Ordering::SeqCst), 3, "two busy answers, then the price");
    let history = env.history("q-2").await.unwrap();
    let attempts = history.iter().find_map(|e| match &e.kind {
        EventKind::LocalActivityRecorded { attempts, .. } => Some(*attempts),
        _ => None,
    });
    assert_eq!(attempts, Some(3), "one marker, with the attempts it took");

    let out = env.execute::<Quote>("q-3", vec!["unknown".into()]).await.unwrap();
    assert_eq!(out, "unknown: NoSuchItem: no price for unknown after 1 attempt(s)");
}

/// A price lookup whose first call hangs (its worker will die under it).
#[derive(Clone, Default)]
struct HangsOnce(Arc<AtomicU32>);
impl Activity for HangsOnce {
    const NAME: &'static str = "price";
    type Input = String;
    type Output = u32;
    async fn run(&self, _: ActivityContext, _: String) -> Result<u32, ActivityError> {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            std::future::pending::<()>().await;
        }
        Ok(70)
    }
}

#[tokio::test]
async fn a_local_activity_interrupted_by_a_crash_runs_again_and_is_recorded_once() {
    let calls = HangsOnce::default();
    let mut env = TestEnv::builder().workflow::<Quote>().activity(Double).activity(calls.clone()).start().unwrap();
    let h = env.start::<Quote>("q-4", vec!["biscuit".into()]).await.unwrap();
    // Wait until the first worker runs the local activity, then kill it.
    while calls.0.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let asked_at = env.now();
    env.crash_worker().unwrap();
    // Nothing records it: the run's workflow task wakes it after the longest a local
    // activity may take, the replay asks again, and the new worker runs it.
    assert_eq!(h.result().await.unwrap(), "total 140");
    assert_eq!(calls.0.load(Ordering::SeqCst), 2);
    assert!(env.now().since(asked_at) >= workflow_core::MAX_LOCAL_ACTIVITY, "woken by the safety net");
    let markers = env
        .history("q-4")
        .await
        .unwrap()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::LocalActivityRecorded { .. }))
        .count();
    assert_eq!(markers, 1);
}

#[tokio::test]
async fn every_crash_point_of_a_workflow_with_local_activities_holds() {
    let report = CrashSimulation::<Quote>::new(vec!["tea".into(), "coffee".into()])
        .activity(Price { flaky: 1, ..Price::default() })
        .activity(Double)
        .random_faults(10)
        .run()
        .await
        .unwrap();
    assert!(report.passed(), "{report}");
    assert!(report.crash_points >= 3, "{report}");
    println!("{report}");
}

/// The same workflow, with the price as a scheduled activity: it diverges from histories
/// that recorded local activities.
struct QuoteV2;
impl Workflow for QuoteV2 {
    const NAME: &'static str = "quote";
    type Input = Vec<String>;
    type Output = String;
    async fn run(ctx: WorkflowContext, items: Vec<String>) -> Result<String, WorkflowError> {
        let mut total = 0;
        for item in items {
            total += ctx.activity::<Price>(item).await?;
        }
        Ok(format!("total {}", ctx.activity::<Double>(total).await?))
    }
}

#[tokio::test]
async fn switching_a_local_activity_to_a_scheduled_one_diverges() {
    let env = env(Price::default());
    env.execute::<Quote>("q-5", vec!["tea".into()]).await.unwrap();
    let history = env.history("q-5").await.unwrap();
    let mut v2 = Replayer::new();
    v2.register_workflow::<QuoteV2>().unwrap();
    match v2.replay_history("q-5", &history).outcome {
        ReplayOutcome::Diverged(d) => assert!(format!("{d:?}").contains("LocalActivityRecorded"), "{d:?}"),
        other => panic!("expected a divergence, got {other:?}"),
    }
}

/// Asks for a price locally, gives up on it at once, then naps an hour.
struct GiveUp;
impl Workflow for GiveUp {
    const NAME: &'static str = "give_up";
    type Input = ();
    type Output = bool;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<bool, WorkflowError> {
        let price = ctx.local_activity::<Price>("tea".into());
        price.cancel();
        let cancelled = matches!(price.await, Err(ActivityFailure::Cancelled { .. }));
        ctx.sleep(Duration::from_secs(3600)).await?;
        Ok(cancelled)
    }
}

#[tokio::test]
async fn a_cancelled_local_activity_never_runs_also_after_a_replay() {
    let price = Price::default();
    let mut env = TestEnv::builder().workflow::<GiveUp>().activity(price.clone()).start().unwrap();
    let h = env.start::<GiveUp>("g-1", ()).await.unwrap();
    env.sleep(Duration::from_secs(60)).await;
    // A new worker replays the run from the start when the timer fires.
    env.crash_worker().unwrap();
    assert!(h.result().await.unwrap());
    assert_eq!(price.calls.load(Ordering::SeqCst), 0);
}
