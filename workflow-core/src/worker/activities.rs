//! Activity attempts: run, heartbeat, time out, retry with backoff, or report the outcome.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info_span, warn, Instrument};

use super::workflow_tasks::{process_run, Trigger};
use super::Inner;
use crate::activity::TaskToken;
use crate::activity::{ActivityContext, ActivityError, ActivityInfo, ActivityShared};
use crate::error::StoreError;
use crate::history::{ActivityFailure, EventKind, TimeoutKind};
use crate::policy::{next_retry, NextRetry};
use crate::store::{
    ActivityTask, AppendRequest, AsyncOutcome, AttemptOutcome, AttemptRecord, LeasedTask, Task, TaskKind, TaskOp,
    MAX_LOST_IN_A_ROW,
};
use crate::time::Timestamp;

/// How long an attempt told to stop at shutdown (after the grace period) may run its cleanup
/// before it is dropped: 1 second.
pub const CANCEL_CLEANUP: Duration = Duration::from_secs(1);

/// Builds the activity's final event from the attempt count and the last error.
type FinalEvent = Box<dyn FnOnce(u32, ActivityError) -> EventKind + Send>;

enum AttemptResult {
    Ok(crate::payload::Payload),
    Err(ActivityError),
    TimedOut(TimeoutKind),
    /// The worker is shutting down: give the task back.
    Released,
    /// The lease was lost (cancelled or taken over): drop silently.
    Cancelled,
}

pub(crate) async fn handle(inner: &Arc<Inner>, leased: LeasedTask) {
    let TaskKind::Activity(a) = &leased.task.kind else {
        warn!(task = %leased.task.key, "non-activity task on the activity queue; ignoring");
        return;
    };
    let a = (**a).clone();
    let span = info_span!("activity", workflow_id = %a.workflow_id, run_id = %leased.task.run_id, activity = %a.activity_type, seq = a.seq, attempt = a.attempt);
    run(inner, leased, a).instrument(span).await
}

async fn run(inner: &Arc<Inner>, leased: LeasedTask, mut a: ActivityTask) {
    let now = inner.clock.now();
    let worker = inner.options.identity.clone();
    let s2c_deadline = a.options.schedule_to_close_timeout.map(|d| a.scheduled_at.add(d));
    let timed_out_kind =
        if a.options.heartbeat_timeout.is_some() { TimeoutKind::Heartbeat } else { TimeoutKind::StartToClose };

    if let Some(done) = a.async_result.take() {
        // The attempt was completed from outside through its task token: record it as if it
        // had returned this (its timeouts were watched until then).
        let result = match done.outcome {
            AsyncOutcome::Completed { result } => AttemptResult::Ok(result),
            AsyncOutcome::Failed { error } => AttemptResult::Err(error.bounded()),
        };
        let times = AttemptTimes { worker: done.worker, started: done.started_at, ended: done.ended_at };
        settle(inner, leased, a, times, None, result).await;
        return;
    }
    // An activity whose cancellation the workflow may wait for starts no attempt once it was
    // asked: its task says so when it was idle, the history in any case.
    let waited_for = a.options.cancellation_type == crate::options::ActivityCancellationType::WaitCancellationCompleted;
    let cancel = if a.cancel_requested || waited_for {
        match cancel_state(inner, &leased, a.seq).await {
            Ok(c) => Some(c),
            Err(e) if a.cancel_requested => {
                warn!(error = %e, "reading the history of an activity to cancel failed; its lease will expire and it is looked at again");
                return;
            }
            Err(_) => None,
        }
    } else {
        None
    };
    if let Some(CancelState { settled, .. }) = cancel.filter(|c| a.cancel_requested || c.requested) {
        // The workflow asked to cancel it and waits: no attempt runs; the cancellation is the
        // outcome, unless an attempt recorded one already (the task was re-armed under it).
        if settled {
            let req =
                AppendRequest::new(leased.task.run_id.clone(), now).complete(leased.task.key.clone(), leased.token);
            if let Err(e) = inner.store.append(req).await {
                warn!(error = %e, "removing a settled activity task failed; its lease will expire");
            }
            return;
        }
        let rec = record(&leased, &a, &worker, now, now, AttemptOutcome::Cancelled);
        let failure = ActivityFailure::Cancelled { activity_type: a.activity_type.clone() };
        finish(inner, leased, &a, EventKind::ActivityFailed { seq: a.seq, failure }, rec).await;
        return;
    }
    if leased.previous_lease_lost {
        // The attempt that held the lease never reported: its worker died or hung. That is
        // not the activity's fault: the lost attempt is logged (with the worker that ran it
        // and since when, where the store knows) but not counted against maximum_attempts.
        // Only a run of MAX_LOST_IN_A_ROW losses without heartbeat progress fails it.
        let lost = lost_record(&leased, &a, now);
        let progress = a.heartbeat_at.is_some() && a.heartbeat_at != a.lost_heartbeat_at;
        let streak = if progress { 1 } else { a.lost_streak + 1 };
        if streak >= MAX_LOST_IN_A_ROW {
            let failure = ActivityFailure::TimedOut {
                activity_type: a.activity_type.clone(),
                attempts: a.attempt,
                timeout: timed_out_kind,
                last_error: Some(ActivityError::non_retryable(
                    "WorkerLost",
                    format!(
                        "{streak} attempts in a row were lost with their workers without heartbeat progress (a crash loop?); see the attempt log"
                    ),
                )),
            };
            finish(inner, leased, &a, EventKind::ActivityTimedOut { seq: a.seq, failure }, lost).await;
            return;
        }
        a.attempt += 1;
        a.lost_attempts += 1;
        a.lost_streak = streak;
        a.lost_heartbeat_at = a.heartbeat_at;
        a.last_error = Some(ActivityError::retryable("WorkerLost", "the previous attempt's worker stopped responding"));
        if let Err(e) = reschedule(inner, &leased, &a, now, Some(lost)).await {
            warn!(error = %e, "rescheduling after a lost attempt failed");
        }
        return;
    }
    if let Some(s2s) = a.options.schedule_to_start_timeout {
        if a.attempt == 1 && now.since(a.scheduled_at) > s2s {
            let failure = ActivityFailure::TimedOut {
                activity_type: a.activity_type.clone(),
                attempts: 0,
                timeout: TimeoutKind::ScheduleToStart,
                last_error: None,
            };
            let rec = record(
                &leased,
                &a,
                &worker,
                now,
                now,
                AttemptOutcome::TimedOut { timeout: TimeoutKind::ScheduleToStart },
            );
            finish(inner, leased, &a, EventKind::ActivityTimedOut { seq: a.seq, failure }, rec).await;
            return;
        }
    }
    if s2c_deadline.is_some_and(|d| now >= d) {
        let failure = ActivityFailure::TimedOut {
            activity_type: a.activity_type.clone(),
            attempts: a.attempt - 1,
            timeout: TimeoutKind::ScheduleToClose,
            last_error: a.last_error.clone(),
        };
        let rec =
            record(&leased, &a, &worker, now, now, AttemptOutcome::TimedOut { timeout: TimeoutKind::ScheduleToClose });
        finish(inner, leased, &a, EventKind::ActivityTimedOut { seq: a.seq, failure }, rec).await;
        return;
    }

    let Some(activity) = inner.registry.activities.get(&a.activity_type).cloned() else {
        let error = ActivityError::non_retryable(
            "UnknownActivityType",
            format!("activity type {:?} is not registered with this worker (registered: {}); register it with Worker::register_activity", a.activity_type, inner.registry.activity_names()),
        );
        let rec = record(&leased, &a, &worker, now, now, AttemptOutcome::Failed { error: error.clone() });
        let failure = ActivityFailure::Failed { activity_type: a.activity_type.clone(), attempts: a.attempt, error };
        finish(inner, leased, &a, EventKind::ActivityFailed { seq: a.seq, failure }, rec).await;
        return;
    };

    let shared = Arc::new(ActivityShared::default());
    let info = ActivityInfo {
        workflow_id: a.workflow_id.clone(),
        run_id: leased.task.run_id.clone(),
        seq: a.seq,
        activity_type: a.activity_type.clone(),
        attempt: a.attempt,
        scheduled_at: a.scheduled_at,
        worker: worker.clone(),
    };
    let token = TaskToken {
        workflow_id: a.workflow_id.clone(),
        run_id: leased.task.run_id.clone(),
        seq: a.seq,
        activity_type: a.activity_type.clone(),
        attempt: a.attempt,
        worker: worker.clone(),
        started_at: now,
        task: leased.task.key.clone(),
        lease: leased.token,
    };
    let ctx = ActivityContext::new(info, a.heartbeat.clone(), shared.clone()).with_token(token);
    let attempt_timeout = {
        let t = a.options.attempt_timeout();
        match s2c_deadline {
            Some(d) => t.min(d.since(now)),
            None => t,
        }
    };
    let attempt_kind = if s2c_deadline.is_some_and(|d| d.since(now) < a.options.attempt_timeout()) {
        TimeoutKind::ScheduleToClose
    } else {
        TimeoutKind::StartToClose
    };
    // Set when the workflow asked to cancel this activity and waits for it to end.
    let told = std::sync::atomic::AtomicBool::new(false);
    let mut shutdown = inner.shutdown.clone();
    let started = now;
    let result = {
        let work = activity.run(ctx, a.input.clone());
        let pump = heartbeat_pump(inner, &leased, &a, shared.clone(), &told);
        tokio::pin!(work);
        tokio::pin!(pump);
        tokio::select! {
            r = &mut work => match r { Ok(p) => AttemptResult::Ok(p), Err(e) => AttemptResult::Err(e.bounded()) },
            kind = &mut pump => {
                if matches!(kind, AttemptResult::Cancelled) {
                    // The context says so now; give the attempt the grace period to notice and
                    // stop on its own, then drop it. Its outcome is not recorded.
                    tokio::select! {
                        _ = &mut work => {}
                        _ = inner.clock.sleep(inner.options.shutdown_grace) => {}
                    }
                }
                kind
            }
            _ = inner.clock.sleep(attempt_timeout) => AttemptResult::TimedOut(attempt_kind),
            _ = wait_shutdown(&mut shutdown) => {
                // Let the attempt finish within the grace period; then tell it to stop and give
                // it CANCEL_CLEANUP to run its cleanup (its `ctx.cancelled()` branch) before
                // it is dropped and its task released for another worker.
                tokio::select! {
                    r = &mut work => match r { Ok(p) => AttemptResult::Ok(p), Err(e) => AttemptResult::Err(e.bounded()) },
                    _ = inner.clock.sleep(inner.options.shutdown_grace) => {
                        shared.cancel();
                        tokio::select! {
                            r = &mut work => match r { Ok(p) => AttemptResult::Ok(p), Err(_) => AttemptResult::Released },
                            _ = inner.clock.sleep(CANCEL_CLEANUP) => AttemptResult::Released,
                        }
                    }
                }
            }
        }
    };
    let ended = inner.clock.now();
    let last_hb = shared.latest.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match &result {
        AttemptResult::Err(e) if e.is_result_pending() => {
            // The attempt goes on outside; its slot is free, its lease and timeouts stay. The
            // lease is renewed from now (with the latest details), so it cannot end before
            // the deadlines the watch keeps.
            let until = ended.add(leased.task.lease_duration);
            match inner.store.heartbeat(&leased.task.key, leased.token, last_hb.clone(), ended, until).await {
                Ok(()) => {}
                Err(StoreError::LeaseLost { .. }) => return,
                Err(e) => warn!(error = %e, "renewing the lease of an asynchronous attempt failed"),
            }
            if last_hb.is_some() {
                a.heartbeat = last_hb;
                a.heartbeat_at = Some(ended);
            }
            watch_async(inner, leased, a, AttemptTimes { worker, started, ended }, attempt_timeout, attempt_kind);
            return;
        }
        AttemptResult::TimedOut(_) => shared.cancel(),
        _ => {}
    }
    if told.load(std::sync::atomic::Ordering::SeqCst) {
        a.cancel_requested = true;
    }
    settle(inner, leased, a, AttemptTimes { worker, started, ended }, last_hb, result).await;
}

/// What the history says of a cancellation the workflow waits for
/// (`WaitCancellationCompleted`), whatever became of the task's flag.
struct CancelState {
    /// `ActivityCancelRequested` is recorded for the activity.
    requested: bool,
    /// A final outcome is recorded for it.
    settled: bool,
}

/// Reads [`CancelState`] of activity `seq` from its run's history (one read).
async fn cancel_state(inner: &Inner, leased: &LeasedTask, seq: crate::ids::Seq) -> Result<CancelState, StoreError> {
    let history = inner.store.read_history(&leased.task.run_id, 0).await?;
    let mut state = CancelState { requested: false, settled: false };
    for e in &history {
        match &e.kind {
            EventKind::ActivityCancelRequested { seq: s } if *s == seq => state.requested = true,
            EventKind::ActivityCompleted { seq: s, .. }
            | EventKind::ActivityFailed { seq: s, .. }
            | EventKind::ActivityTimedOut { seq: s, .. }
            | EventKind::ActivityCancelled { seq: s }
                if *s == seq =>
            {
                state.settled = true
            }
            _ => {}
        }
    }
    Ok(state)
}

/// Whether the history records that the workflow asked to cancel this activity and waits.
async fn cancel_requested_now(inner: &Inner, leased: &LeasedTask, seq: crate::ids::Seq) -> bool {
    cancel_state(inner, leased, seq).await.is_ok_and(|c| c.requested)
}

/// Who ran an attempt and when.
struct AttemptTimes {
    worker: String,
    started: Timestamp,
    ended: Timestamp,
}

/// Records an attempt's result through the retry policy: the activity's outcome (advancing
/// the workflow in the same write), or its next attempt.
async fn settle(
    inner: &Arc<Inner>,
    leased: LeasedTask,
    mut a: ActivityTask,
    times: AttemptTimes,
    last_hb: Option<crate::payload::Payload>,
    result: AttemptResult,
) {
    let policy = a.options.retry_policy.clone();
    let s2c_deadline = a.options.schedule_to_close_timeout.map(|d| a.scheduled_at.add(d));
    let AttemptTimes { worker, started, ended } = times;
    if last_hb.is_some() {
        a.heartbeat = last_hb.clone();
        a.heartbeat_at = Some(ended);
    }
    let rec = |outcome| {
        let mut r = record(&leased, &a, &worker, started, ended, outcome);
        r.last_heartbeat = last_hb.clone().or_else(|| a.heartbeat.clone());
        r
    };
    let (error, outcome, final_event): (ActivityError, AttemptOutcome, FinalEvent) = match result {
        AttemptResult::Ok(p) => {
            let rec = rec(AttemptOutcome::Completed);
            match p
                .check_size(&format!("result of activity {}", a.activity_type), inner.options.limits.max_payload_bytes)
            {
                Ok(()) => {
                    finish(inner, leased, &a, EventKind::ActivityCompleted { seq: a.seq, result: p }, rec).await;
                    return;
                }
                Err(e) => {
                    let error = ActivityError::non_retryable("PayloadTooLarge", e.to_string());
                    let seq = a.seq;
                    let ty = a.activity_type.clone();
                    (
                        error.clone(),
                        AttemptOutcome::Failed { error },
                        Box::new(move |n, error| EventKind::ActivityFailed {
                            seq,
                            failure: ActivityFailure::Failed { activity_type: ty, attempts: n, error },
                        }),
                    )
                }
            }
        }
        AttemptResult::Err(error) => {
            let seq = a.seq;
            let ty = a.activity_type.clone();
            (
                error.clone(),
                AttemptOutcome::Failed { error },
                Box::new(move |n, error| EventKind::ActivityFailed {
                    seq,
                    failure: ActivityFailure::Failed { activity_type: ty, attempts: n, error },
                }),
            )
        }
        AttemptResult::TimedOut(kind) => {
            let seq = a.seq;
            let ty = a.activity_type.clone();
            let error = ActivityError::retryable("Timeout", format!("attempt exceeded its {kind} timeout"));
            let last = a.last_error.clone();
            (
                error,
                AttemptOutcome::TimedOut { timeout: kind },
                Box::new(move |n, _| EventKind::ActivityTimedOut {
                    seq,
                    failure: ActivityFailure::TimedOut {
                        activity_type: ty,
                        attempts: n,
                        timeout: kind,
                        last_error: last,
                    },
                }),
            )
        }
        AttemptResult::Released => {
            let rec = rec(AttemptOutcome::Cancelled);
            let req = AppendRequest::new(leased.task.run_id.clone(), ended)
                .release(leased.task.key.clone(), leased.token)
                .attempt(rec);
            if let Err(e) = inner.store.append(req).await {
                warn!(error = %e, "releasing the activity task at shutdown failed; its lease will expire");
            }
            return;
        }
        AttemptResult::Cancelled => {
            // The lease ended under the attempt. When its run closed (cancelled, terminated,
            // or finished without it), the attempt was cancelled: log it. When another worker
            // took the task over, that worker logs this attempt as lost.
            let closed = matches!(inner.store.get_run(&leased.task.run_id).await, Ok(Some(r)) if r.status.is_closed());
            if closed {
                let req = AppendRequest::new(leased.task.run_id.clone(), ended).attempt(rec(AttemptOutcome::Cancelled));
                if let Err(e) = inner.store.append(req).await {
                    warn!(error = %e, "logging the cancelled attempt failed");
                }
            }
            return;
        }
    };
    let rec = rec(outcome);
    // An attempt that ends with an error after the workflow asked to cancel the activity and
    // waits for it acknowledges the cancellation: no retry.
    let waited_for = a.options.cancellation_type == crate::options::ActivityCancellationType::WaitCancellationCompleted;
    if waited_for && (a.cancel_requested || cancel_requested_now(inner, &leased, a.seq).await) {
        let failure = ActivityFailure::Cancelled { activity_type: a.activity_type.clone() };
        finish(inner, leased, &a, EventKind::ActivityFailed { seq: a.seq, failure }, rec).await;
        return;
    }
    // Attempts lost with their workers do not count against the policy.
    let counted = a.attempt.saturating_sub(a.lost_attempts).max(1);
    match next_retry(&policy, counted, &error.error_type, error.retryable) {
        NextRetry::RetryAfter { after, .. } if s2c_deadline.is_none_or(|d| ended.add(after) < d) => {
            a.attempt += 1;
            a.lost_streak = 0;
            a.last_error = Some(error);
            if let Err(e) = reschedule(inner, &leased, &a, ended.add(after), Some(rec)).await {
                warn!(error = %e, "scheduling the retry failed; the lease will expire and the attempt is retried");
            }
        }
        NextRetry::RetryAfter { .. } => {
            let failure = ActivityFailure::TimedOut {
                activity_type: a.activity_type.clone(),
                attempts: a.attempt,
                timeout: TimeoutKind::ScheduleToClose,
                last_error: Some(error),
            };
            finish(inner, leased, &a, EventKind::ActivityTimedOut { seq: a.seq, failure }, rec).await;
        }
        NextRetry::NonRetryable | NextRetry::AttemptsExhausted => {
            let ev = final_event(a.attempt, error);
            finish(inner, leased, &a, ev, rec).await;
        }
    }
}

/// Watches an attempt that goes on outside the activity's code (it returned
/// [`ActivityError::result_pending`]) until it is completed through its token, or one of its
/// timeouts fires first: then the attempt is recorded as timed out, through the retry policy.
/// The watch holds no slot. If this worker dies, the attempt's lease expires and another
/// worker retries it as an attempt lost with its worker.
fn watch_async(
    inner: &Arc<Inner>,
    leased: LeasedTask,
    a: ActivityTask,
    times: AttemptTimes,
    attempt_timeout: Duration,
    attempt_kind: TimeoutKind,
) {
    let i = inner.clone();
    let deadline = times.started.add(attempt_timeout);
    let mut a = a;
    let fut = async move {
        loop {
            let beat_deadline = a.options.heartbeat_timeout.map(|t| a.heartbeat_at.unwrap_or(times.started).add(t));
            let wake = beat_deadline.map_or(deadline, |b| b.min(deadline));
            i.clock.sleep(wake.since(i.clock.now())).await;
            let _hold = i.holds.as_ref().map(crate::testing::TestClock::hold);
            // The task as the store has it now: gone, re-armed or completed through the token
            // means this attempt is settled already.
            let current = match i.store.list_tasks(&leased.task.run_id).await {
                Ok(tasks) => tasks.into_iter().find(|t| t.task.key == leased.task.key),
                Err(e) => {
                    warn!(error = %e, "reading an asynchronous attempt's task failed; its lease will expire");
                    return;
                }
            };
            let Some(TaskKind::Activity(now_a)) = current.map(|t| t.task.kind) else { return };
            if now_a.attempt != a.attempt || now_a.async_result.is_some() {
                return;
            }
            let now = i.clock.now();
            let kind = if now >= deadline {
                attempt_kind
            } else if a
                .options
                .heartbeat_timeout
                .is_some_and(|t| now.since(now_a.heartbeat_at.unwrap_or(times.started)) >= t)
            {
                TimeoutKind::Heartbeat
            } else {
                // A heartbeat through the token moved the heartbeat deadline.
                a.heartbeat_at = now_a.heartbeat_at;
                continue;
            };
            let times = AttemptTimes { worker: times.worker.clone(), started: times.started, ended: now };
            settle(&i, leased.clone(), (*now_a).clone(), times, None, AttemptResult::TimedOut(kind)).await;
            return;
        }
    };
    super::spawn_background(inner, fut);
}

async fn wait_shutdown(rx: &mut tokio::sync::watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// The attempt-log record of an attempt lost with its worker: that worker and when it
/// started, where the store knows (else this worker and now), ending at its last heartbeat
/// (the last sign of life) or when it started.
fn lost_record(leased: &LeasedTask, a: &ActivityTask, now: Timestamp) -> AttemptRecord {
    let (worker, started) = match &leased.previous_holder {
        Some(h) => (h.owner.clone(), h.since),
        None => ("unknown (its worker's lease was lost)".to_string(), now),
    };
    let ended = a.heartbeat_at.filter(|t| *t > started).unwrap_or(started);
    let mut r = record(leased, a, &worker, started, ended, AttemptOutcome::WorkerLost);
    r.last_heartbeat = a.heartbeat.clone();
    r
}

fn record(
    leased: &LeasedTask,
    a: &ActivityTask,
    worker: &str,
    started: Timestamp,
    ended: Timestamp,
    outcome: AttemptOutcome,
) -> AttemptRecord {
    AttemptRecord {
        run_id: leased.task.run_id.clone(),
        seq: a.seq,
        activity_type: a.activity_type.clone(),
        attempt: a.attempt,
        worker: worker.to_string(),
        started_at: started,
        ended_at: ended,
        outcome,
        last_heartbeat: None,
    }
}

/// Re-arms the activity task for its next attempt at `at`, releasing this lease.
async fn reschedule(
    inner: &Inner,
    leased: &LeasedTask,
    a: &ActivityTask,
    at: Timestamp,
    rec: Option<AttemptRecord>,
) -> Result<(), StoreError> {
    let task = Task { visible_at: at, kind: TaskKind::Activity(Box::new(a.clone())), ..leased.task.clone() };
    let mut req = AppendRequest::new(leased.task.run_id.clone(), inner.clock.now())
        .task_op(TaskOp::Upsert(task))
        .complete(leased.task.key.clone(), leased.token);
    if let Some(r) = rec {
        req = req.attempt(r);
    }
    inner.store.append(req).await.map(|_| ())
}

/// Records the activity's final outcome and advances the workflow in the same write.
async fn finish(inner: &Arc<Inner>, leased: LeasedTask, a: &ActivityTask, outcome: EventKind, rec: AttemptRecord) {
    let inputs = vec![
        EventKind::ActivityStarted { seq: a.seq, attempt: a.attempt.max(1), worker: inner.options.identity.clone() },
        outcome,
    ];
    let run_id = leased.task.run_id.clone();
    process_run(inner, run_id, Trigger::Activity { task: leased, seq: a.seq, inputs, attempt: rec }).await;
}

/// Sends heartbeats to the store (throttled) and watches the heartbeat timeout. Resolves only
/// when the heartbeat timeout fires; a lost lease cancels the attempt.
async fn heartbeat_pump(
    inner: &Inner,
    leased: &LeasedTask,
    a: &ActivityTask,
    shared: Arc<ActivityShared>,
    told: &std::sync::atomic::AtomicBool,
) -> AttemptResult {
    let waited_for = a.options.cancellation_type == crate::options::ActivityCancellationType::WaitCancellationCompleted;
    let hb_timeout = a.options.heartbeat_timeout;
    let throttle = hb_timeout.map_or(Duration::from_secs(10), |t| (t / 2).max(Duration::from_millis(1)));
    let lease = leased.task.lease_duration;
    let mut last_beat = inner.clock.now();
    let mut last_sent: Option<Timestamp> = None;
    let mut last_look = inner.clock.now();
    let mut dirty = false;
    loop {
        let now = inner.clock.now();
        let mut wait = match hb_timeout {
            Some(t) => t.saturating_sub(now.since(last_beat)),
            None => Duration::from_secs(3600),
        };
        if dirty {
            let since = last_sent.map_or(throttle, |s| now.since(s));
            wait = wait.min(throttle.saturating_sub(since));
        }
        // An activity whose cancellation the workflow waits for looks for it once per
        // throttle interval, heartbeat or not.
        let looking = waited_for && !told.load(std::sync::atomic::Ordering::SeqCst);
        if looking {
            wait = wait.min(throttle.saturating_sub(now.since(last_look)));
        }
        tokio::select! {
            _ = shared.beat.notified() => {
                last_beat = inner.clock.now();
                dirty = true;
            }
            _ = wait_beat(inner, wait, hb_timeout.is_some() || dirty || looking) => {}
        }
        let now = inner.clock.now();
        if hb_timeout.is_some_and(|t| now.since(last_beat) >= t) {
            return AttemptResult::TimedOut(TimeoutKind::Heartbeat);
        }
        if dirty && last_sent.is_none_or(|s| now.since(s) >= throttle) {
            let details = shared.latest.lock().unwrap_or_else(|e| e.into_inner()).clone();
            dirty = false;
            last_sent = Some(now);
            match inner.store.heartbeat(&leased.task.key, leased.token, details, now, now.add(lease)).await {
                Ok(()) => {}
                Err(StoreError::LeaseLost { .. }) => {
                    shared.cancel();
                    return AttemptResult::Cancelled;
                }
                Err(e) => warn!(error = %e, "recording a heartbeat failed"),
            }
        }
        if looking && now.since(last_look) >= throttle {
            last_look = now;
            if cancel_requested_now(inner, leased, a.seq).await {
                // Told now; the attempt may finish its cleanup, and its end is the outcome.
                told.store(true, std::sync::atomic::Ordering::SeqCst);
                shared.cancel();
            }
        }
    }
}

/// The heartbeat pump's wait: a deadline when a heartbeat timeout runs or details wait to be
/// sent, else only a bound on how long it goes without looking.
async fn wait_beat(inner: &Inner, wait: Duration, deadline: bool) {
    if deadline {
        inner.clock.sleep(wait).await
    } else {
        inner.clock.poll_sleep(wait).await
    }
}
