//! Stage 1 of a step: before an attempt starts, whether one runs at all.

use std::sync::Arc;

use tracing::warn;

use super::settle::{finish, record, reschedule};
use super::Inner;
use crate::activity::ActivityError;
use crate::error::StoreError;
use crate::history::{ActivityFailure, EventKind, TimeoutKind};
use crate::ids::Seq;
use crate::options::ActivityCancellationType;
use crate::store::{ActivityTask, AppendRequest, AttemptOutcome, AttemptRecord, LeasedTask, MAX_LOST_IN_A_ROW};
use crate::time::Timestamp;
use crate::worker::registry::ErasedActivity;

/// What the checks decided.
#[allow(clippy::large_enum_variant)] // one per step, short-lived
pub(super) enum Verdict {
    /// Run an attempt of this code.
    Run(Arc<dyn ErasedActivity>),
    /// Nothing now: a read failed; the lease expires and the task is looked at again.
    Skip,
    /// An earlier attempt recorded the activity's outcome already: remove the task.
    Remove,
    /// Record this final outcome (with the attempt record) and advance the workflow.
    Finish(EventKind, AttemptRecord),
    /// The previous attempt was lost with its worker: log it and re-arm the task (the
    /// task's attempt fields are updated already).
    Retry(AttemptRecord),
}

/// Decides whether an attempt of `a` runs now, updating `a` for a retry of a lost attempt.
pub(super) async fn before_attempt(inner: &Inner, leased: &LeasedTask, a: &mut ActivityTask) -> Verdict {
    let now = inner.clock.now();
    if let Some(v) = cancelled(inner, leased, a, now).await {
        return v;
    }
    if leased.previous_lease_lost {
        return lost(leased, a, now);
    }
    if let Some(v) = schedule_timeouts(leased, a, &inner.options.identity, now) {
        return v;
    }
    match inner.registry.activities.get(&a.activity_type) {
        Some(activity) => Verdict::Run(activity.clone()),
        None => {
            let error = ActivityError::non_retryable(
                "UnknownActivityType",
                format!("activity type {:?} is not registered with this worker (registered: {}); register it with Worker::register_activity", a.activity_type, inner.registry.activity_names()),
            );
            let rec =
                record(leased, a, &inner.options.identity, now, now, AttemptOutcome::Failed { error: error.clone() });
            let failure =
                ActivityFailure::Failed { activity_type: a.activity_type.clone(), attempts: a.attempt, error };
            Verdict::Finish(EventKind::ActivityFailed { seq: a.seq, failure }, rec)
        }
    }
}

/// Carries out a verdict other than [`Verdict::Run`].
pub(super) async fn apply(inner: &Arc<Inner>, leased: LeasedTask, a: ActivityTask, verdict: Verdict) {
    let now = inner.clock.now();
    match verdict {
        Verdict::Run(_) | Verdict::Skip => {}
        Verdict::Remove => {
            let req =
                AppendRequest::new(leased.task.run_id.clone(), now).complete(leased.task.key.clone(), leased.token);
            if let Err(e) = inner.store.append(req).await {
                warn!(error = %e, "removing a settled activity task failed; its lease will expire");
            }
        }
        Verdict::Finish(outcome, rec) => finish(inner, leased, &a, outcome, rec).await,
        Verdict::Retry(lost) => {
            if let Err(e) = reschedule(inner, &leased, &a, now, Some(lost)).await {
                warn!(error = %e, "rescheduling after a lost attempt failed");
            }
        }
    }
}

/// An activity whose cancellation the workflow waits for starts no attempt once it was
/// asked: its task says so when it was idle, the history in any case. The cancellation is
/// the outcome, unless an attempt recorded one already (the task was re-armed under it).
async fn cancelled(inner: &Inner, leased: &LeasedTask, a: &ActivityTask, now: Timestamp) -> Option<Verdict> {
    let waited_for = a.options.cancellation_type == ActivityCancellationType::WaitCancellationCompleted;
    if !a.cancel_requested && !waited_for {
        return None;
    }
    let state = match cancel_state(inner, leased, a.seq).await {
        Ok(c) => c,
        Err(e) if a.cancel_requested => {
            warn!(error = %e, "reading the history of an activity to cancel failed; its lease will expire and it is looked at again");
            return Some(Verdict::Skip);
        }
        Err(_) => return None,
    };
    if !a.cancel_requested && !state.requested {
        return None;
    }
    if state.settled {
        return Some(Verdict::Remove);
    }
    let rec = record(leased, a, &inner.options.identity, now, now, AttemptOutcome::Cancelled);
    let failure = ActivityFailure::Cancelled { activity_type: a.activity_type.clone() };
    Some(Verdict::Finish(EventKind::ActivityFailed { seq: a.seq, failure }, rec))
}

/// The attempt that held the lease never reported: its worker died or hung. That is not the
/// activity's fault: the lost attempt is logged (with the worker that ran it and since when,
/// where the store knows) but not counted against `maximum_attempts`. Only a run of
/// [`MAX_LOST_IN_A_ROW`] losses without heartbeat progress fails it.
fn lost(leased: &LeasedTask, a: &mut ActivityTask, now: Timestamp) -> Verdict {
    let lost = lost_record(leased, a, now);
    let progress = a.heartbeat_at.is_some() && a.heartbeat_at != a.lost_heartbeat_at;
    let streak = if progress { 1 } else { a.lost_streak + 1 };
    if streak >= MAX_LOST_IN_A_ROW {
        let timeout =
            if a.options.heartbeat_timeout.is_some() { TimeoutKind::Heartbeat } else { TimeoutKind::StartToClose };
        let failure = ActivityFailure::TimedOut {
            activity_type: a.activity_type.clone(),
            attempts: a.attempt,
            timeout,
            last_error: Some(ActivityError::non_retryable(
                "WorkerLost",
                format!(
                    "{streak} attempts in a row were lost with their workers without heartbeat progress (a crash loop?); see the attempt log"
                ),
            )),
        };
        return Verdict::Finish(EventKind::ActivityTimedOut { seq: a.seq, failure }, lost);
    }
    a.attempt += 1;
    a.lost_attempts += 1;
    a.lost_streak = streak;
    a.lost_heartbeat_at = a.heartbeat_at;
    a.last_error = Some(ActivityError::retryable("WorkerLost", "the previous attempt's worker stopped responding"));
    Verdict::Retry(lost)
}

/// The schedule-to-start timeout (first attempt only) and the schedule-to-close timeout,
/// when either passed before the attempt could start.
fn schedule_timeouts(leased: &LeasedTask, a: &ActivityTask, worker: &str, now: Timestamp) -> Option<Verdict> {
    let timed_out = |timeout: TimeoutKind, attempts: u32, last_error: Option<ActivityError>| {
        let failure =
            ActivityFailure::TimedOut { activity_type: a.activity_type.clone(), attempts, timeout, last_error };
        let rec = record(leased, a, worker, now, now, AttemptOutcome::TimedOut { timeout });
        Verdict::Finish(EventKind::ActivityTimedOut { seq: a.seq, failure }, rec)
    };
    if a.options.schedule_to_start_timeout.is_some_and(|s2s| a.attempt == 1 && now.since(a.scheduled_at) > s2s) {
        return Some(timed_out(TimeoutKind::ScheduleToStart, 0, None));
    }
    if super::schedule_to_close_deadline(a).is_some_and(|d| now >= d) {
        return Some(timed_out(TimeoutKind::ScheduleToClose, a.attempt - 1, a.last_error.clone()));
    }
    None
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
async fn cancel_state(inner: &Inner, leased: &LeasedTask, seq: Seq) -> Result<CancelState, StoreError> {
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
pub(super) async fn cancel_requested_now(inner: &Inner, leased: &LeasedTask, seq: Seq) -> bool {
    cancel_state(inner, leased, seq).await.is_ok_and(|c| c.requested)
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
