//! Stage 2 of a step: run one attempt of the activity's code, with its timeouts, its
//! heartbeats, a lost lease and the worker's shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use super::settle::AttemptTimes;
use super::Inner;
use crate::activity::{ActivityContext, ActivityError, ActivityInfo, ActivityShared, TaskToken};
use crate::error::StoreError;
use crate::history::TimeoutKind;
use crate::options::ActivityCancellationType;
use crate::payload::Payload;
use crate::store::{ActivityTask, LeasedTask};
use crate::time::Timestamp;
use crate::worker::registry::ErasedActivity;

/// How long an attempt told to stop at shutdown (after the grace period) may run its cleanup
/// before it is dropped: 1 second.
pub const CANCEL_CLEANUP: Duration = Duration::from_secs(1);

/// How an attempt ended.
pub(super) enum AttemptResult {
    Ok(Payload),
    Err(ActivityError),
    TimedOut(TimeoutKind),
    /// The worker is shutting down: give the task back.
    Released,
    /// The lease was lost (cancelled or taken over): drop silently.
    Cancelled,
}

/// An attempt that ran: its result, who ran it and when, its last heartbeat details.
pub(super) struct Done {
    pub(super) result: AttemptResult,
    pub(super) times: AttemptTimes,
    pub(super) last_hb: Option<Payload>,
    /// The workflow asked to cancel the activity and waits; the attempt was told.
    pub(super) told: bool,
    /// The attempt's own timeout (start-to-close, or what is left of schedule-to-close).
    pub(super) timeout: Duration,
    /// Which timeout that is.
    pub(super) timeout_kind: TimeoutKind,
}

impl Done {
    /// The attempt goes on outside the activity's code (asynchronous completion).
    pub(super) fn result_pending(&self) -> bool {
        matches!(&self.result, AttemptResult::Err(e) if e.is_result_pending())
    }
}

/// Runs one attempt of `activity` for the leased task `a`.
pub(super) async fn run(
    inner: &Inner,
    leased: &LeasedTask,
    a: &ActivityTask,
    activity: Arc<dyn ErasedActivity>,
) -> Done {
    let started = inner.clock.now();
    let worker = inner.options.identity.clone();
    let shared = Arc::new(ActivityShared::default());
    let ctx = context(leased, a, &worker, started, shared.clone());
    let (timeout, timeout_kind) = attempt_timeout(a, started);
    // Set when the workflow asked to cancel this activity and waits for it to end.
    let told = AtomicBool::new(false);
    let mut shutdown = inner.shutdown.clone();
    let result = {
        let work = activity.run(ctx, a.input.clone());
        let pump = heartbeat_pump(inner, leased, a, shared.clone(), &told);
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
            _ = inner.clock.sleep(timeout) => AttemptResult::TimedOut(timeout_kind),
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
    if matches!(result, AttemptResult::TimedOut(_)) {
        shared.cancel();
    }
    let ended = inner.clock.now();
    let last_hb = shared.latest.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Done {
        result,
        times: AttemptTimes { worker, started, ended },
        last_hb,
        told: told.load(Ordering::SeqCst),
        timeout,
        timeout_kind,
    }
}

/// The context the activity's code gets: who and what it is, the last heartbeat details,
/// and the task token for asynchronous completion.
fn context(
    leased: &LeasedTask,
    a: &ActivityTask,
    worker: &str,
    started: Timestamp,
    shared: Arc<ActivityShared>,
) -> ActivityContext {
    let info = ActivityInfo {
        workflow_id: a.workflow_id.clone(),
        run_id: leased.task.run_id.clone(),
        seq: a.seq,
        activity_type: a.activity_type.clone(),
        attempt: a.attempt,
        scheduled_at: a.scheduled_at,
        worker: worker.to_string(),
    };
    let token = TaskToken {
        workflow_id: a.workflow_id.clone(),
        run_id: leased.task.run_id.clone(),
        seq: a.seq,
        activity_type: a.activity_type.clone(),
        attempt: a.attempt,
        worker: worker.to_string(),
        started_at: started,
        task: leased.task.key.clone(),
        lease: leased.token,
    };
    ActivityContext::new(info, a.heartbeat.clone(), shared).with_token(token)
}

/// The attempt's timeout: start-to-close, or what is left of schedule-to-close when that
/// ends first.
fn attempt_timeout(a: &ActivityTask, now: Timestamp) -> (Duration, TimeoutKind) {
    let t = a.options.attempt_timeout();
    match super::schedule_to_close_deadline(a) {
        Some(d) if d.since(now) < t => (d.since(now), TimeoutKind::ScheduleToClose),
        _ => (t, TimeoutKind::StartToClose),
    }
}

async fn wait_shutdown(rx: &mut tokio::sync::watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Sends heartbeats to the store (throttled) and watches the heartbeat timeout. Resolves only
/// when the heartbeat timeout fires; a lost lease cancels the attempt.
async fn heartbeat_pump(
    inner: &Inner,
    leased: &LeasedTask,
    a: &ActivityTask,
    shared: Arc<ActivityShared>,
    told: &AtomicBool,
) -> AttemptResult {
    let waited_for = a.options.cancellation_type == ActivityCancellationType::WaitCancellationCompleted;
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
        let looking = waited_for && !told.load(Ordering::SeqCst);
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
            if super::checks::cancel_requested_now(inner, leased, a.seq).await {
                // Told now; the attempt may finish its cleanup, and its end is the outcome.
                told.store(true, Ordering::SeqCst);
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
