//! End-to-end behaviour of the engine on the memory store, under a virtual clock
//! (`start_paused`): backoffs and timeouts of minutes take no real time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use workflow_core::store::Store;
use workflow_core::{
    Activity, ActivityContext, ActivityError, ActivityFailure, ActivityOptions, Client, Clock, ControlError, EventKind,
    Limits, ResultError, RetryPolicy, RunningWorker, StartError, StartOptions, TimeoutKind, Timestamp, Worker,
    WorkerOptions, Workflow, WorkflowContext, WorkflowError,
};

mod common;

use common::{eventually, setup};

// ---------- activities ----------

#[derive(Clone, Default)]
struct Inc {
    calls: Arc<Mutex<Vec<u64>>>,
}
impl Activity for Inc {
    const NAME: &'static str = "inc";
    type Input = u64;
    type Output = u64;
    async fn run(&self, _: ActivityContext, n: u64) -> Result<u64, ActivityError> {
        self.calls.lock().unwrap().push(n);
        Ok(n + 1)
    }
}

/// Fails (retryably) until attempt `fail_times + 1`.
#[derive(Clone)]
struct Flaky {
    fail_times: u32,
}
impl Activity for Flaky {
    const NAME: &'static str = "flaky";
    type Input = ();
    type Output = u32;
    fn options() -> ActivityOptions {
        ActivityOptions::default().retry_policy(
            RetryPolicy::default()
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(30))
                .maximum_attempts(5),
        )
    }
    async fn run(&self, ctx: ActivityContext, _: ()) -> Result<u32, ActivityError> {
        if ctx.attempt() <= self.fail_times {
            Err(ActivityError::retryable("Flaky", format!("attempt {} failed", ctx.attempt())))
        } else {
            Ok(ctx.attempt())
        }
    }
}

#[derive(Clone)]
struct Reject;
impl Activity for Reject {
    const NAME: &'static str = "reject";
    type Input = ();
    type Output = ();
    async fn run(&self, _: ActivityContext, _: ()) -> Result<(), ActivityError> {
        Err(ActivityError::non_retryable("InvalidCard", "card number is malformed"))
    }
}

/// Never finishes on its own.
#[derive(Clone)]
struct Hang;
impl Activity for Hang {
    const NAME: &'static str = "hang";
    type Input = ();
    type Output = ();
    async fn run(&self, _: ActivityContext, _: ()) -> Result<(), ActivityError> {
        tokio::time::sleep(Duration::from_secs(86_400 * 365)).await;
        Ok(())
    }
}

/// Processes items 0..10, heartbeating progress; the first attempt stalls after item 5.
#[derive(Clone)]
struct Progress;
impl Activity for Progress {
    const NAME: &'static str = "progress";
    type Input = ();
    type Output = Vec<u32>;
    fn options() -> ActivityOptions {
        ActivityOptions::default()
            .heartbeat_timeout(Duration::from_secs(5))
            .retry_policy(RetryPolicy::default().maximum_attempts(3))
    }
    async fn run(&self, ctx: ActivityContext, _: ()) -> Result<Vec<u32>, ActivityError> {
        let start = ctx.last_heartbeat::<u32>().map_or(0, |i| i + 1);
        for i in start..10 {
            if ctx.attempt() == 1 && i == 6 {
                std::future::pending::<()>().await;
            }
            ctx.heartbeat(&i);
        }
        Ok(vec![start, ctx.attempt()])
    }
}

/// Blocks while `block` is set (a worker that will "crash" mid-activity).
#[derive(Clone)]
struct Gate {
    block: bool,
    calls: Arc<AtomicUsize>,
}
impl Activity for Gate {
    const NAME: &'static str = "gate";
    type Input = u64;
    type Output = u64;
    fn options() -> ActivityOptions {
        ActivityOptions::default().start_to_close_timeout(Duration::from_secs(30))
    }
    async fn run(&self, _: ActivityContext, n: u64) -> Result<u64, ActivityError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.block {
            std::future::pending::<()>().await;
        }
        Ok(n * 10)
    }
}

// ---------- workflows ----------

struct Seq3;
impl Workflow for Seq3 {
    const NAME: &'static str = "seq3";
    type Input = u64;
    type Output = u64;
    async fn run(ctx: WorkflowContext, mut n: u64) -> Result<u64, WorkflowError> {
        for _ in 0..3 {
            n = ctx.activity::<Inc>(n).await?;
        }
        Ok(n)
    }
}

struct Fan;
impl Workflow for Fan {
    const NAME: &'static str = "fan";
    type Input = Vec<u64>;
    type Output = Vec<u64>;
    async fn run(ctx: WorkflowContext, input: Vec<u64>) -> Result<Vec<u64>, WorkflowError> {
        let futs: Vec<_> = input.into_iter().map(|n| ctx.activity::<Inc>(n)).collect();
        join_all(futs).await.into_iter().map(|r| r.map_err(WorkflowError::from)).collect()
    }
}

struct RetryWf;
impl Workflow for RetryWf {
    const NAME: &'static str = "retry";
    type Input = ();
    type Output = u32;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<u32, WorkflowError> {
        Ok(ctx.activity::<Flaky>(()).await?)
    }
}

struct Fallback;
impl Workflow for Fallback {
    const NAME: &'static str = "fallback";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        match ctx.activity::<Reject>(()).await {
            Ok(()) => Ok("charged".into()),
            Err(ActivityFailure::Failed { error, attempts, .. }) => {
                Ok(format!("fallback after {attempts}: {}", error.error_type))
            }
            Err(other) => Err(other.into()),
        }
    }
}

struct Propagate;
impl Workflow for Propagate {
    const NAME: &'static str = "propagate";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        ctx.activity::<Reject>(()).await?;
        Ok(())
    }
}

struct TimeoutWf;
impl Workflow for TimeoutWf {
    const NAME: &'static str = "timeout";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let opts = ActivityOptions::default()
            .start_to_close_timeout(Duration::from_secs(10))
            .retry_policy(RetryPolicy::default().maximum_attempts(2));
        match ctx.activity_with::<Hang>((), opts).await {
            Err(ActivityFailure::TimedOut { timeout, attempts, .. }) => Ok(format!("{timeout} after {attempts}")),
            other => Ok(format!("unexpected: {other:?}")),
        }
    }
}

struct HeartbeatWf;
impl Workflow for HeartbeatWf {
    const NAME: &'static str = "heartbeat";
    type Input = ();
    type Output = Vec<u32>;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<Vec<u32>, WorkflowError> {
        Ok(ctx.activity::<Progress>(()).await?)
    }
}

struct GateWf;
impl Workflow for GateWf {
    const NAME: &'static str = "gate_wf";
    type Input = ();
    type Output = Vec<u64>;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<Vec<u64>, WorkflowError> {
        let a = ctx.activity::<Inc>(1).await?;
        let b = ctx.activity::<Gate>(a).await?;
        let c = ctx.activity::<Inc>(b).await?;
        Ok(vec![a, b, c])
    }
}

struct Sleeper;
impl Workflow for Sleeper {
    const NAME: &'static str = "sleeper";
    type Input = ();
    type Output = Timestamp;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<Timestamp, WorkflowError> {
        ctx.sleep(Duration::from_secs(3600)).await?;
        Ok(ctx.now())
    }
}

struct CancelWf;
impl Workflow for CancelWf {
    const NAME: &'static str = "cancel_wf";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        if ctx.sleep(Duration::from_secs(3600)).await.is_err() {
            // Cleanup still runs after cancellation.
            ctx.activity::<Inc>(100).await?;
            return Err(WorkflowError::Cancelled);
        }
        Ok(())
    }
}

struct TokioInside;
impl Workflow for TokioInside {
    const NAME: &'static str = "tokio_inside";
    type Input = ();
    type Output = ();
    async fn run(_: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(())
    }
}

/// Random values, a uuid and a side effect, each passed through an activity and returned:
/// the activity's inputs must equal the result even after the run was evicted and replayed.
struct Determinism;
impl Workflow for Determinism {
    const NAME: &'static str = "determinism";
    type Input = ();
    type Output = (u64, String, u64);
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(u64, String, u64), WorkflowError> {
        let r = ctx.random() % 1_000_000;
        let u = ctx.uuid().to_string();
        let se: u64 = ctx.side_effect(|| SIDE_EFFECTS.fetch_add(1, Ordering::SeqCst) as u64)?;
        ctx.activity::<Inc>(r).await?;
        ctx.activity::<Inc>(se).await?;
        ctx.sleep(Duration::from_secs(1)).await?;
        Ok((r, u, se))
    }
}
static SIDE_EFFECTS: AtomicUsize = AtomicUsize::new(1000);

// ---------- harness ----------

fn worker_on(store: Arc<dyn Store>, clock: Arc<dyn Clock>, options: WorkerOptions) -> Worker {
    Worker::new(store, options.poll_interval(Duration::from_millis(200))).with_clock(clock)
}

fn standard(store: Arc<dyn Store>, clock: Arc<dyn Clock>, inc: Inc) -> RunningWorker {
    let mut w = worker_on(store, clock, WorkerOptions::default());
    w.register_workflow::<Seq3>().unwrap();
    w.register_workflow::<Fan>().unwrap();
    w.register_workflow::<RetryWf>().unwrap();
    w.register_workflow::<Fallback>().unwrap();
    w.register_workflow::<Propagate>().unwrap();
    w.register_workflow::<TimeoutWf>().unwrap();
    w.register_workflow::<HeartbeatWf>().unwrap();
    w.register_workflow::<Sleeper>().unwrap();
    w.register_workflow::<CancelWf>().unwrap();
    w.register_workflow::<Determinism>().unwrap();
    w.register_activity(inc).unwrap();
    w.register_activity(Flaky { fail_times: 3 }).unwrap();
    w.register_activity(Reject).unwrap();
    w.register_activity(Hang).unwrap();
    w.register_activity(Progress).unwrap();
    w.start().unwrap()
}

fn completed_seqs(history: &[workflow_core::Event]) -> Vec<u32> {
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActivityCompleted { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect()
}

// ---------- tests ----------

#[tokio::test(start_paused = true)]
async fn sequential_activities_complete_once_each() {
    let (store, clock) = setup();
    let inc = Inc::default();
    let worker = standard(store.clone(), clock.clone(), inc.clone());
    let client = worker.client();
    let h = client.start::<Seq3>("seq-1", 10, StartOptions::default()).await.unwrap();
    assert_eq!(h.result().await.unwrap(), 13);
    assert_eq!(*inc.calls.lock().unwrap(), vec![10, 11, 12]);
    let history = h.history().await.unwrap();
    workflow_core::history::check_invariants(&history).unwrap();
    assert_eq!(completed_seqs(&history), vec![0, 1, 2]);
    assert!(matches!(history.last().unwrap().kind, EventKind::WorkflowCompleted { .. }));
    let d = client.describe("seq-1").await.unwrap();
    assert_eq!(d.attempts.len(), 3, "every attempt is in the attempt log");
    assert!(d.pending.is_empty());
    worker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn concurrent_activities_are_joined() {
    let (store, clock) = setup();
    let worker = standard(store, clock, Inc::default());
    let h = worker.client().start::<Fan>("fan-1", vec![1, 2, 3, 4, 5], StartOptions::default()).await.unwrap();
    assert_eq!(h.result().await.unwrap(), vec![2, 3, 4, 5, 6]);
    let history = h.history().await.unwrap();
    // All five were scheduled by the first workflow task, before any completed.
    let first_completion = history.iter().position(|e| matches!(e.kind, EventKind::ActivityCompleted { .. })).unwrap();
    let scheduled_before =
        history[..first_completion].iter().filter(|e| matches!(e.kind, EventKind::ActivityScheduled { .. })).count();
    assert_eq!(scheduled_before, 5);
}

#[tokio::test(start_paused = true)]
async fn retries_follow_the_backoff_schedule() {
    let (store, clock) = setup();
    let worker = standard(store, clock, Inc::default());
    let client = worker.client();
    let h = client.start::<RetryWf>("retry-1", (), StartOptions::default()).await.unwrap();
    assert_eq!(h.result().await.unwrap(), 4, "succeeds on attempt 4");
    let attempts = client.describe("retry-1").await.unwrap().attempts;
    assert_eq!(attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert!(
        attempts[..3].iter().all(
            |a| matches!(&a.outcome, workflow_core::store::AttemptOutcome::Failed { error } if error.error_type == "Flaky")
        ),
        "{attempts:?}"
    );
    let gaps: Vec<u64> = attempts.windows(2).map(|w| w[1].started_at.since(w[0].ended_at).as_millis() as u64).collect();
    for (gap, want) in gaps.iter().zip([1000u64, 2000, 4000]) {
        assert!(*gap >= want && *gap < want + 300, "backoff gaps {gaps:?}, want 1s, 2s, 4s");
    }
    // Intermediate failures stay out of the history: one ActivityStarted for the final attempt.
    let started: Vec<u32> = h
        .history()
        .await
        .unwrap()
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ActivityStarted { attempt, .. } => Some(attempt),
            _ => None,
        })
        .collect();
    assert_eq!(started, vec![4]);
}

#[tokio::test(start_paused = true)]
async fn non_retryable_errors_are_not_retried_and_can_be_handled_or_propagated() {
    let (store, clock) = setup();
    let worker = standard(store, clock, Inc::default());
    let client = worker.client();
    let fb = client.start::<Fallback>("fb", (), StartOptions::default()).await.unwrap();
    assert_eq!(fb.result().await.unwrap(), "fallback after 1: InvalidCard");
    let pr = client.start::<Propagate>("pr", (), StartOptions::default()).await.unwrap();
    match pr.result().await {
        Err(ResultError::Failed { failure, .. }) => {
            let chain: Vec<&str> = failure.chain().map(|f| f.error_type.as_str()).collect();
            assert_eq!(chain, vec!["ActivityFailed", "InvalidCard"], "{failure}");
            assert!(failure.message.contains("after 1 attempt"), "{failure}");
        }
        other => panic!("expected a failed workflow, got {other:?}"),
    }
    assert_eq!(client.describe("pr").await.unwrap().attempts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn start_to_close_timeout_fails_attempts_and_exhausts_retries() {
    let (store, clock) = setup();
    let worker = standard(store, clock.clone(), Inc::default());
    let client = worker.client();
    let begin = clock.now();
    let h = client.start::<TimeoutWf>("to", (), StartOptions::default()).await.unwrap();
    assert_eq!(h.result().await.unwrap(), "start-to-close after 2");
    let attempts = client.describe("to").await.unwrap().attempts;
    assert_eq!(attempts.len(), 2);
    assert!(attempts
        .iter()
        .all(|a| a.outcome == workflow_core::store::AttemptOutcome::TimedOut { timeout: TimeoutKind::StartToClose }));
    assert!(clock.now().since(begin) >= Duration::from_secs(21), "two 10 s attempts and a 1 s backoff");
}

#[tokio::test(start_paused = true)]
async fn heartbeat_timeout_retries_and_the_next_attempt_resumes_from_the_last_heartbeat() {
    let (store, clock) = setup();
    let worker = standard(store, clock, Inc::default());
    let client = worker.client();
    let h = client.start::<HeartbeatWf>("hb", (), StartOptions::default()).await.unwrap();
    assert_eq!(h.result().await.unwrap(), vec![6, 2], "attempt 2 resumes after item 5");
    let attempts = client.describe("hb").await.unwrap().attempts;
    assert_eq!(attempts[0].outcome, workflow_core::store::AttemptOutcome::TimedOut { timeout: TimeoutKind::Heartbeat });
    assert_eq!(attempts[0].last_heartbeat.as_ref().map(|p| p.as_json().clone()), Some(serde_json::json!(5)));
}

#[tokio::test(start_paused = true)]
async fn a_new_worker_finishes_what_a_dropped_worker_started() {
    let (store, clock) = setup();
    let inc = Inc::default();
    let gate_calls = Arc::new(AtomicUsize::new(0));
    let mut w1 = worker_on(store.clone(), clock.clone(), WorkerOptions::default().identity("w1"));
    w1.register_workflow::<GateWf>().unwrap();
    w1.register_activity(inc.clone()).unwrap();
    w1.register_activity(Gate { block: true, calls: gate_calls.clone() }).unwrap();
    let w1 = w1.start().unwrap();
    let client = w1.client();
    let h = client.start::<GateWf>("crashy", (), StartOptions::default()).await.unwrap();
    eventually(&clock, "the gate activity started", || {
        let c = gate_calls.clone();
        async move { c.load(Ordering::SeqCst) == 1 }
    })
    .await;
    drop(w1); // a crash: the gate attempt is abandoned mid-flight

    let mut w2 = worker_on(store.clone(), clock.clone(), WorkerOptions::default().identity("w2"));
    w2.register_workflow::<GateWf>().unwrap();
    w2.register_activity(inc.clone()).unwrap();
    w2.register_activity(Gate { block: false, calls: gate_calls.clone() }).unwrap();
    let w2 = w2.start().unwrap();
    assert_eq!(h.result().await.unwrap(), vec![2, 20, 21]);
    assert_eq!(*inc.calls.lock().unwrap(), vec![1, 20], "completed activities are not run again");
    assert_eq!(gate_calls.load(Ordering::SeqCst), 2, "the abandoned attempt ran again (at least once)");
    let history = h.history().await.unwrap();
    assert_eq!(completed_seqs(&history), vec![0, 1, 2], "each completion recorded once");
    let attempts = client.describe("crashy").await.unwrap().attempts;
    assert!(attempts.iter().any(|a| a.outcome == workflow_core::store::AttemptOutcome::WorkerLost), "{attempts:?}");
    w2.shutdown().await;
}

mod nondeterminism {
    use super::*;

    pub(super) struct V1;
    impl Workflow for V1 {
        const NAME: &'static str = "evolving";
        type Input = ();
        type Output = u64;
        async fn run(ctx: WorkflowContext, _: ()) -> Result<u64, WorkflowError> {
            let a = ctx.activity::<Inc>(1).await?;
            ctx.sleep(Duration::from_secs(3600)).await?;
            Ok(a)
        }
    }

    pub(super) struct V2;
    impl Workflow for V2 {
        const NAME: &'static str = "evolving";
        type Input = ();
        type Output = u64;
        async fn run(ctx: WorkflowContext, _: ()) -> Result<u64, WorkflowError> {
            ctx.sleep(Duration::from_secs(1)).await?;
            Ok(ctx.activity::<Inc>(1).await?)
        }
    }
}

#[tokio::test(start_paused = true)]
async fn nondeterminism_stops_the_run_without_losing_it_and_fixed_code_resumes() {
    let (store, clock) = setup();
    let start_worker = |v2: bool| {
        let mut w = worker_on(store.clone(), clock.clone(), WorkerOptions::default());
        if v2 {
            w.register_workflow::<nondeterminism::V2>().unwrap();
        } else {
            w.register_workflow::<nondeterminism::V1>().unwrap();
        }
        w.register_activity(Inc::default()).unwrap();
        w.start().unwrap()
    };
    let w1 = start_worker(false);
    let client = w1.client();
    let h = client.start::<nondeterminism::V1>("evolve", (), StartOptions::default()).await.unwrap();
    eventually(&clock, "the timer started", || {
        let h = h.clone();
        async move { h.history().await.unwrap().iter().any(|e| matches!(e.kind, EventKind::TimerStarted { .. })) }
    })
    .await;
    drop(w1);
    let before = h.history().await.unwrap();

    let w2 = start_worker(true);
    // Wake the run: the timer fires under the changed code, which must replay first.
    eventually(&clock, "the run is reported stuck", || {
        let c = client.clone();
        async move { c.describe("evolve").await.unwrap().info.task_failure.is_some() }
    })
    .await;
    let failure = client.describe("evolve").await.unwrap().info.task_failure.unwrap();
    assert!(failure.contains("[WF-NONDET]"), "{failure}");
    assert!(failure.contains("at event 2"), "{failure}");
    assert!(failure.contains("history holds ActivityScheduled(seq 0, inc)"), "{failure}");
    assert!(failure.contains("code asked for TimerStarted(seq 0"), "{failure}");
    let during = h.history().await.unwrap();
    assert_eq!(&during[..before.len()], &before[..], "nothing recorded is lost");
    drop(w2);

    let w3 = start_worker(false);
    assert_eq!(h.result().await.unwrap(), 2, "the fixed code resumes the run");
    assert!(client.describe("evolve").await.unwrap().info.task_failure.is_none(), "stuck flag cleared");
    w3.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn durable_timer_fires_once_after_its_duration() {
    let (store, clock) = setup();
    let worker = standard(store, clock.clone(), Inc::default());
    let begin = clock.now();
    let h = worker.client().start::<Sleeper>("nap", (), StartOptions::default()).await.unwrap();
    let woke = h.result().await.unwrap();
    assert!(woke.since(begin) >= Duration::from_secs(3600), "woke at {woke}, began {begin}");
    let fired = h.history().await.unwrap().iter().filter(|e| matches!(e.kind, EventKind::TimerFired { .. })).count();
    assert_eq!(fired, 1);
}

#[tokio::test(start_paused = true)]
async fn cancellation_runs_cleanup_then_ends_cancelled_and_termination_is_immediate() {
    let (store, clock) = setup();
    let inc = Inc::default();
    let worker = standard(store, clock.clone(), inc.clone());
    let client = worker.client();
    let h = client.start::<CancelWf>("c1", (), StartOptions::default()).await.unwrap();
    eventually(&clock, "timer started", || {
        let h = h.clone();
        async move { h.history().await.unwrap().len() >= 2 }
    })
    .await;
    h.cancel().await.unwrap();
    assert!(matches!(h.result().await, Err(ResultError::Cancelled { .. })));
    assert_eq!(*inc.calls.lock().unwrap(), vec![100], "the cleanup activity ran");
    let names: Vec<&str> = h.history().await.unwrap().iter().map(|e| e.kind.name()).collect();
    assert!(names.ends_with(&["ActivityCompleted", "WorkflowCancelled"]), "{names:?}");
    assert!(names.contains(&"TimerCancelled"));
    assert!(matches!(h.cancel().await, Err(ControlError::AlreadyClosed { .. })));

    let t = client.start::<Sleeper>("t1", (), StartOptions::default()).await.unwrap();
    t.terminate("operator said so").await.unwrap();
    match t.result().await {
        Err(ResultError::Terminated { reason, .. }) => assert_eq!(reason, "operator said so"),
        other => panic!("{other:?}"),
    }
    assert!(client.describe("t1").await.unwrap().pending.is_empty(), "no work left for a terminated run");
    assert!(matches!(client.cancel("nope", None).await, Err(ControlError::NotFound { .. })));
}

#[tokio::test(start_paused = true)]
async fn tokio_inside_workflow_code_fails_the_task_visibly() {
    let (store, clock) = setup();
    let mut w = worker_on(store, clock.clone(), WorkerOptions::default());
    w.register_workflow::<TokioInside>().unwrap();
    let w = w.start().unwrap();
    let client = w.client();
    client.start::<TokioInside>("tk", (), StartOptions::default()).await.unwrap();
    eventually(&clock, "stuck with a reason", || {
        let c = client.clone();
        async move { c.describe("tk").await.unwrap().info.task_failure.is_some() }
    })
    .await;
    let reason = client.describe("tk").await.unwrap().info.task_failure.unwrap();
    assert!(reason.contains("workflow code used the tokio runtime") && reason.contains("ctx.sleep"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn replay_after_cache_eviction_is_deterministic() {
    let (store, clock) = setup();
    let inc = Inc::default();
    let mut w = worker_on(store, clock, WorkerOptions::default().max_cached_runs(1));
    w.register_workflow::<Determinism>().unwrap();
    w.register_activity(inc.clone()).unwrap();
    let w = w.start().unwrap();
    let client = w.client();
    let mut handles = Vec::new();
    for i in 0..4 {
        handles.push(client.start::<Determinism>(&format!("det-{i}"), (), StartOptions::default()).await.unwrap());
    }
    let before = SIDE_EFFECTS.load(Ordering::SeqCst);
    let mut results = Vec::new();
    for h in &handles {
        results.push(h.result().await.unwrap());
    }
    let calls = inc.calls.lock().unwrap().clone();
    for (r, _, se) in &results {
        assert!(calls.contains(r), "the random number the activity saw is the one returned ({r})");
        assert!(calls.contains(se), "the side effect the activity saw is the one returned ({se})");
    }
    let uuids: std::collections::HashSet<_> = results.iter().map(|(_, u, _)| u.clone()).collect();
    assert_eq!(uuids.len(), 4, "uuids differ between runs");
    assert!(SIDE_EFFECTS.load(Ordering::SeqCst) - before <= 4, "each side effect ran once");
}

#[tokio::test(start_paused = true)]
async fn bad_input_gets_typed_errors() {
    let (store, clock) = setup();
    let mut w = worker_on(
        store.clone(),
        clock.clone(),
        WorkerOptions::default().limits(Limits::default().max_payload_bytes(64)),
    );
    w.register_workflow::<Seq3>().unwrap();
    w.register_workflow::<Fan>().unwrap();
    w.register_activity(Inc::default()).unwrap();
    let w = w.start().unwrap();
    let client = w.client();
    let err = client.start::<Seq3>("", 1, StartOptions::default()).await.unwrap_err();
    assert!(matches!(err, StartError::InvalidId(_)), "{err}");
    let err = client.start::<Seq3>(&"x".repeat(1001), 1, StartOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("1001 bytes"), "{err}");
    let err = client.start::<Seq3>("a\nb", 1, StartOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("control character"), "{err}");
    let err = client.start::<Fan>("big", vec![7; 100], StartOptions::default()).await.unwrap_err();
    assert!(matches!(err, StartError::Payload(workflow_core::PayloadError::TooLarge { .. })), "{err}");
    assert!(err.to_string().contains("pass a reference"), "{err}");
    let err = client.start::<Determinism>("unreg", (), StartOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("\"determinism\" is not registered (registered: fan, seq3)"), "{err}");

    let h = client.start::<Seq3>("dup", 1, StartOptions::default()).await.unwrap();
    let err = client.start::<Seq3>("dup", 1, StartOptions::default()).await.unwrap_err();
    assert!(matches!(err, StartError::AlreadyStarted { .. }), "{err}");
    let again = client.start::<Seq3>("dup", 1, StartOptions::default().idempotent(true)).await.unwrap();
    assert_eq!(again.run_id(), h.run_id(), "idempotent start attaches to the open run");
    assert_eq!(again.result().await.unwrap(), 4);
}

#[tokio::test(start_paused = true)]
async fn an_unregistered_workflow_type_is_stuck_visibly_until_a_worker_has_it() {
    let (store, clock) = setup();
    let mut w = worker_on(store.clone(), clock.clone(), WorkerOptions::default());
    w.register_workflow::<Fan>().unwrap();
    w.register_activity(Inc::default()).unwrap();
    let w = w.start().unwrap();
    // A plain client cannot check registrations; the worker reports the run stuck.
    let client = Client::new(store.clone()).with_clock(clock.clone());
    let h = client.start::<Seq3>("orphan", 5, StartOptions::default()).await.unwrap();
    eventually(&clock, "stuck", || {
        let c = client.clone();
        async move { c.describe("orphan").await.unwrap().info.task_failure.is_some() }
    })
    .await;
    let reason = client.describe("orphan").await.unwrap().info.task_failure.unwrap();
    assert!(reason.contains("\"seq3\" is not registered") && reason.contains("registered: fan"), "{reason}");
    drop(w);
    let w2 = standard(store, clock, Inc::default());
    assert_eq!(h.result().await.unwrap(), 8);
    w2.shutdown().await;
}

/// Heartbeats every second until its context says it was cancelled.
#[derive(Clone)]
struct Patient {
    saw_cancel: Arc<AtomicUsize>,
}
impl Activity for Patient {
    const NAME: &'static str = "patient";
    type Input = ();
    type Output = ();
    fn options() -> ActivityOptions {
        ActivityOptions::default().heartbeat_timeout(Duration::from_secs(4))
    }
    async fn run(&self, ctx: ActivityContext, _: ()) -> Result<(), ActivityError> {
        for i in 0u32.. {
            ctx.heartbeat(&i);
            if ctx.is_cancelled() {
                self.saw_cancel.fetch_add(1, Ordering::SeqCst);
                return Err(ActivityError::non_retryable("Cancelled", "stopped on cancellation"));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(())
    }
}

struct WaitsOnPatient;
impl Workflow for WaitsOnPatient {
    const NAME: &'static str = "waits_on_patient";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        ctx.activity::<Patient>(()).await?;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_running_activity_learns_of_cancellation_on_heartbeat() {
    let (store, clock) = setup();
    let saw_cancel = Arc::new(AtomicUsize::new(0));
    let mut w = worker_on(store, clock.clone(), WorkerOptions::default());
    w.register_workflow::<WaitsOnPatient>().unwrap();
    w.register_activity(Patient { saw_cancel: saw_cancel.clone() }).unwrap();
    let w = w.start().unwrap();
    let h = w.client().start::<WaitsOnPatient>("patient", (), StartOptions::default()).await.unwrap();
    clock.sleep(Duration::from_secs(10)).await;
    h.cancel().await.unwrap();
    assert!(matches!(h.result().await, Err(ResultError::Cancelled { .. })));
    eventually(&clock, "the activity noticed", || {
        let s = saw_cancel.clone();
        async move { s.load(Ordering::SeqCst) == 1 }
    })
    .await;
    // The attempt that was running when the run was cancelled is in the attempt log.
    let client = w.client();
    eventually(&clock, "the cancelled attempt is logged", || {
        let client = client.clone();
        async move {
            let attempts = client.describe("patient").await.unwrap().attempts;
            attempts.iter().any(|a| a.outcome == workflow_core::store::AttemptOutcome::Cancelled)
        }
    })
    .await;
}

/// Blocks forever when `block`, else returns its input; at most 2 attempts.
#[derive(Clone)]
struct Fragile {
    block: bool,
    calls: Arc<AtomicUsize>,
}
impl Activity for Fragile {
    const NAME: &'static str = "fragile";
    type Input = u64;
    type Output = u64;
    fn options() -> ActivityOptions {
        ActivityOptions::default()
            .start_to_close_timeout(Duration::from_secs(30))
            .retry_policy(RetryPolicy::default().maximum_attempts(2))
    }
    async fn run(&self, _: ActivityContext, n: u64) -> Result<u64, ActivityError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.block {
            std::future::pending::<()>().await;
        }
        Ok(n)
    }
}

struct FragileWf;
impl Workflow for FragileWf {
    const NAME: &'static str = "fragile_wf";
    type Input = ();
    type Output = u64;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<u64, WorkflowError> {
        Ok(ctx.activity::<Fragile>(7).await?)
    }
}

/// Starts a worker `name` whose `fragile` activity blocks, waits until it runs the attempt
/// number `calls`, and drops it (a crash).
async fn crash_during_attempt(
    store: &Arc<dyn Store>,
    clock: &Arc<dyn Clock>,
    name: &str,
    calls: &Arc<AtomicUsize>,
    n: usize,
) {
    let mut w = worker_on(store.clone(), clock.clone(), WorkerOptions::default().identity(name));
    w.register_workflow::<FragileWf>().unwrap();
    w.register_activity(Fragile { block: true, calls: calls.clone() }).unwrap();
    let w = w.start().unwrap();
    eventually(clock, "the attempt started", || {
        let c = calls.clone();
        async move { c.load(Ordering::SeqCst) == n }
    })
    .await;
    drop(w);
}

#[tokio::test(start_paused = true)]
async fn attempts_lost_with_their_workers_do_not_use_up_the_retry_policy() {
    let (store, clock) = setup();
    let calls = Arc::new(AtomicUsize::new(0));
    let client = workflow_core::Client::new(store.clone()).with_clock(clock.clone());
    let h = client.start::<FragileWf>("fragile", (), StartOptions::default()).await.unwrap();
    // Four crashes in a row; the policy allows 2 attempts.
    for i in 1..=4 {
        crash_during_attempt(&store, &clock, &format!("crashed-{i}"), &calls, i).await;
    }
    let mut w = worker_on(store.clone(), clock.clone(), WorkerOptions::default().identity("survivor"));
    w.register_workflow::<FragileWf>().unwrap();
    w.register_activity(Fragile { block: false, calls: calls.clone() }).unwrap();
    let w = w.start().unwrap();
    assert_eq!(h.result().await.unwrap(), 7, "a crash is not the activity's fault");
    let attempts = client.describe("fragile").await.unwrap().attempts;
    let lost: Vec<&str> = attempts
        .iter()
        .filter(|a| a.outcome == workflow_core::store::AttemptOutcome::WorkerLost)
        .map(|a| a.worker.as_str())
        .collect();
    assert_eq!(lost, vec!["crashed-1", "crashed-2", "crashed-3", "crashed-4"], "each lost attempt names its worker");
    for a in attempts.iter().filter(|a| a.outcome == workflow_core::store::AttemptOutcome::WorkerLost) {
        assert!(a.started_at <= a.ended_at, "{a:?}");
        assert!(
            clock.now().since(a.started_at) >= Duration::from_secs(30),
            "started when it ran, not when noticed: {a:?}"
        );
    }
    let last = attempts.last().unwrap();
    assert_eq!((last.attempt, last.worker.as_str()), (5, "survivor"));
    assert_eq!(last.outcome, workflow_core::store::AttemptOutcome::Completed);
    w.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_activity_that_loses_ten_workers_in_a_row_fails_as_a_crash_loop() {
    let (store, clock) = setup();
    let calls = Arc::new(AtomicUsize::new(0));
    let client = workflow_core::Client::new(store.clone()).with_clock(clock.clone());
    let h = client.start::<FragileWf>("loop", (), StartOptions::default()).await.unwrap();
    for i in 1..=workflow_core::store::MAX_LOST_IN_A_ROW as usize {
        crash_during_attempt(&store, &clock, &format!("crashed-{i}"), &calls, i).await;
    }
    let mut w = worker_on(store.clone(), clock.clone(), WorkerOptions::default().identity("last"));
    w.register_workflow::<FragileWf>().unwrap();
    w.register_activity(Fragile { block: false, calls: calls.clone() }).unwrap();
    let w = w.start().unwrap();
    let err = h.result().await.unwrap_err().to_string();
    assert!(err.contains("WorkerLost") && err.contains("10 attempts in a row"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 10, "no eleventh attempt ran");
    w.shutdown().await;
}

/// Returns `n` bytes.
#[derive(Clone)]
struct Blob;
impl Activity for Blob {
    const NAME: &'static str = "blob";
    type Input = usize;
    type Output = String;
    async fn run(&self, _: ActivityContext, n: usize) -> Result<String, ActivityError> {
        Ok("x".repeat(n))
    }
}

/// Never registered.
struct Missing;
impl Activity for Missing {
    const NAME: &'static str = "missing";
    type Input = ();
    type Output = ();
    async fn run(&self, _: ActivityContext, _: ()) -> Result<(), ActivityError> {
        Ok(())
    }
}

/// Tries each kind of oversized or unknown work and reports what it got.
struct Misuse;
impl Workflow for Misuse {
    const NAME: &'static str = "misuse";
    type Input = ();
    type Output = Vec<String>;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
        let mut out = Vec::new();
        // Input too large: refused before anything is recorded.
        let big_input = vec![0u8; 4096];
        match ctx.activity::<Inc>(big_input.len() as u64).await {
            Ok(_) => out.push("small input ok".into()),
            Err(e) => out.push(e.to_string()),
        }
        match ctx.activity_with::<Blob>(5000, Blob::options()).await {
            Ok(_) => out.push("big output accepted?".into()),
            Err(e) => out.push(e.to_string()),
        }
        match ctx.activity::<Missing>(()).await {
            Ok(()) => out.push("missing ran?".into()),
            Err(e) => out.push(e.to_string()),
        }
        let opts = ActivityOptions::default().heartbeat_timeout(Duration::ZERO);
        match ctx.activity_with::<Inc>(1, opts).await {
            Ok(_) => out.push("zero timeout accepted?".into()),
            Err(e) => out.push(e.to_string()),
        }
        Ok(out)
    }
}

/// Schedules activities until the history cap stops it.
struct Endless;
impl Workflow for Endless {
    const NAME: &'static str = "endless";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        let mut n = 0;
        loop {
            n = ctx.activity::<Inc>(n).await?;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn oversized_and_unknown_work_gets_typed_failures_and_the_history_cap_holds() {
    let (store, clock) = setup();
    let limits = Limits::default().max_payload_bytes(1024).max_history_events(40);
    let mut w = worker_on(store, clock, WorkerOptions::default().limits(limits.clone()));
    w.register_workflow::<Misuse>().unwrap();
    w.register_workflow::<Endless>().unwrap();
    w.register_activity(Inc::default()).unwrap();
    w.register_activity(Blob).unwrap();
    let w = w.start().unwrap();
    let client = w.client().with_limits(limits);
    let out = client.start::<Misuse>("misuse", (), StartOptions::default()).await.unwrap().result().await.unwrap();
    assert_eq!(out[0], "small input ok");
    assert!(
        out[1].contains("PayloadTooLarge") && out[1].contains("result of activity blob is 5002 bytes"),
        "{}",
        out[1]
    );
    assert!(
        out[2].contains("activity type \"missing\" is not registered") && out[2].contains("registered: blob, inc"),
        "{}",
        out[2]
    );
    assert!(out[3].contains("was not scheduled") && out[3].contains("heartbeat_timeout"), "{}", out[3]);

    let h = client.start::<Endless>("endless", (), StartOptions::default()).await.unwrap();
    match h.result().await {
        Err(ResultError::Failed { failure, .. }) => {
            assert_eq!(failure.error_type, "HistoryLimitExceeded");
            assert!(failure.message.contains("continue-as-new"), "{failure}");
        }
        other => panic!("{other:?}"),
    }
    let history = h.history().await.unwrap();
    assert!(history.len() <= 40, "history has {} events", history.len());
    workflow_core::history::check_invariants(&history).unwrap();
}

/// Sleeps `secs` seconds (tokio time: virtual in these tests).
#[derive(Clone)]
struct Slow {
    calls: Arc<AtomicUsize>,
}
impl Activity for Slow {
    const NAME: &'static str = "slow";
    type Input = u64;
    type Output = u64;
    async fn run(&self, _: ActivityContext, secs: u64) -> Result<u64, ActivityError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        Ok(secs)
    }
}

struct SlowWf;
impl Workflow for SlowWf {
    const NAME: &'static str = "slow_wf";
    type Input = u64;
    type Output = u64;
    async fn run(ctx: WorkflowContext, secs: u64) -> Result<u64, WorkflowError> {
        Ok(ctx.activity::<Slow>(secs).await?)
    }
}

#[tokio::test(start_paused = true)]
async fn graceful_shutdown_lets_attempts_finish_or_releases_them() {
    let (store, clock) = setup();
    let calls = Arc::new(AtomicUsize::new(0));
    let start = |calls: Arc<AtomicUsize>| {
        let mut w =
            worker_on(store.clone(), clock.clone(), WorkerOptions::default().shutdown_grace(Duration::from_secs(10)));
        w.register_workflow::<SlowWf>().unwrap();
        w.register_activity(Slow { calls }).unwrap();
        w.start().unwrap()
    };
    let w = start(calls.clone());
    let client = w.client();
    let quick = client.start::<SlowWf>("quick", 5, StartOptions::default()).await.unwrap();
    let long = client.start::<SlowWf>("long", 60, StartOptions::default()).await.unwrap();
    eventually(&clock, "both attempts running", || {
        let c = calls.clone();
        async move { c.load(Ordering::SeqCst) == 2 }
    })
    .await;
    w.shutdown().await;
    // The short attempt finished within the grace period and its result was recorded.
    assert_eq!(quick.result().await.unwrap(), 5);
    // The long one was cancelled and released: not counted as a failed attempt.
    let d = client.describe("long").await.unwrap();
    assert_eq!(d.attempts.len(), 1);
    assert_eq!(d.attempts[0].outcome, workflow_core::store::AttemptOutcome::Cancelled);
    let pending: Vec<_> = d.pending.iter().filter(|p| p.lease.is_none()).collect();
    assert_eq!(pending.len(), 1, "the released task waits for the next worker");
    // A new worker picks it up at once, as attempt 1 again.
    let w2 = start(calls.clone());
    assert_eq!(long.result().await.unwrap(), 60);
    let started: Vec<u32> = long
        .history()
        .await
        .unwrap()
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ActivityStarted { attempt, .. } => Some(attempt),
            _ => None,
        })
        .collect();
    assert_eq!(started, vec![1], "a released attempt does not count");
    w2.shutdown().await;
}

/// Runs until told to stop, then cleans up (which takes a moment).
#[derive(Clone)]
struct Tidy {
    started: Arc<AtomicUsize>,
    cleaned: Arc<AtomicUsize>,
}
impl Activity for Tidy {
    const NAME: &'static str = "tidy";
    type Input = ();
    type Output = ();
    async fn run(&self, ctx: ActivityContext, _: ()) -> Result<(), ActivityError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        ctx.cancelled().await;
        tokio::time::sleep(Duration::from_millis(100)).await; // the cleanup
        self.cleaned.fetch_add(1, Ordering::SeqCst);
        Err(ActivityError::retryable("Stopped", "told to stop"))
    }
}

struct TidyWf;
impl Workflow for TidyWf {
    const NAME: &'static str = "tidy_wf";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        Ok(ctx.activity::<Tidy>(()).await?)
    }
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_past_its_grace_lets_running_attempts_run_their_cleanup() {
    let (store, clock) = setup();
    let tidy = Tidy { started: Arc::default(), cleaned: Arc::default() };
    let mut w =
        worker_on(store.clone(), clock.clone(), WorkerOptions::default().shutdown_grace(Duration::from_secs(2)));
    w.register_workflow::<TidyWf>().unwrap();
    w.register_activity(tidy.clone()).unwrap();
    let w = w.start().unwrap();
    let client = w.client();
    client.start::<TidyWf>("tidy", (), StartOptions::default()).await.unwrap();
    eventually(&clock, "the attempt started", || {
        let s = tidy.started.clone();
        async move { s.load(Ordering::SeqCst) == 1 }
    })
    .await;
    w.shutdown().await;
    assert_eq!(tidy.cleaned.load(Ordering::SeqCst), 1, "told to stop, the attempt had time to clean up");
    let attempts = client.describe("tidy").await.unwrap().attempts;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0].outcome, workflow_core::store::AttemptOutcome::Cancelled, "released at shutdown");
}

/// Fails with a 1 MB message and 1 MB of details, built by hand (past the constructors).
struct Loud;
impl Activity for Loud {
    const NAME: &'static str = "loud";
    type Input = ();
    type Output = ();
    async fn run(&self, _: ActivityContext, _: ()) -> Result<(), ActivityError> {
        let mut e = ActivityError::non_retryable("Loud", "");
        e.message = "m".repeat(1_000_000);
        e.details = Some(workflow_core::Payload::encode(&"d".repeat(1_000_000)).unwrap());
        Err(e)
    }
}

struct LoudWf;
impl Workflow for LoudWf {
    const NAME: &'static str = "loud_wf";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        Ok(ctx.activity::<Loud>(()).await?)
    }
}

#[tokio::test(start_paused = true)]
async fn huge_failure_messages_and_details_are_recorded_bounded() {
    let (store, clock) = setup();
    let mut w = worker_on(store, clock, WorkerOptions::default());
    w.register_workflow::<LoudWf>().unwrap();
    w.register_activity(Loud).unwrap();
    let w = w.start().unwrap();
    let client = w.client();
    let h = client.start::<LoudWf>("loud", (), StartOptions::default()).await.unwrap();
    assert!(h.result().await.is_err());
    let history = h.history().await.unwrap();
    let total: usize = history.iter().map(|e| serde_json::to_string(e).unwrap().len()).sum();
    assert!(total < 3 * workflow_core::MAX_FAILURE_MESSAGE_BYTES + 4_000, "history of {total} bytes");
    let attempts = client.describe("loud").await.unwrap().attempts;
    let workflow_core::store::AttemptOutcome::Failed { error } = &attempts[0].outcome else { panic!("{attempts:?}") };
    assert!(error.message.len() <= workflow_core::MAX_FAILURE_MESSAGE_BYTES, "{}", error.message.len());
    assert!(error.message.contains("truncated: 1000000 bytes in all"));
    assert!(error.details.is_none(), "1 MB of details dropped");
    w.shutdown().await;
}
