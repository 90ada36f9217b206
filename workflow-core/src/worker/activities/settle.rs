//! Stage 3 of a step: an attempt's result through the retry policy. A retry re-arms the
//! task (one write); a final outcome goes to the workflow, which records it with its next
//! commands in one write ([`process_run`]).

use std::sync::Arc;

use tracing::warn;

use super::attempt::AttemptResult;
use super::checks::cancel_requested_now;
use super::Inner;
use crate::activity::ActivityError;
use crate::error::StoreError;
use crate::history::{ActivityFailure, EventKind, TimeoutKind};
use crate::options::ActivityCancellationType;
use crate::policy::{next_retry, NextRetry};
use crate::store::{ActivityTask, AppendRequest, AttemptOutcome, AttemptRecord, LeasedTask, Task, TaskKind, TaskOp};
use crate::time::Timestamp;
use crate::worker::workflow_tasks::{process_run, Trigger};

/// Builds the activity's final event from the attempt count and the last error.
type FinalEvent = Box<dyn FnOnce(u32, ActivityError) -> EventKind + Send>;

/// Who ran an attempt and when.
pub(super) struct AttemptTimes {
    pub(super) worker: String,
    pub(super) started: Timestamp,
    pub(super) ended: Timestamp,
}

/// Records an attempt's result through the retry policy: the activity's outcome (advancing
/// the workflow in the same write), or its next attempt.
pub(super) async fn settle(
    inner: &Arc<Inner>,
    leased: LeasedTask,
    mut a: ActivityTask,
    times: AttemptTimes,
    last_hb: Option<crate::payload::Payload>,
    result: AttemptResult,
) {
    let policy = a.options.retry_policy.clone();
    let s2c_deadline = super::schedule_to_close_deadline(&a);
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
                Err(e) => failed(&a, ActivityError::non_retryable("PayloadTooLarge", e.to_string())),
            }
        }
        AttemptResult::Err(error) => failed(&a, error),
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
    let waited_for = a.options.cancellation_type == ActivityCancellationType::WaitCancellationCompleted;
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

pub(super) fn record(
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

/// An attempt that failed with `error`: its error, its attempt outcome, and the activity's
/// final event should the retry policy give up.
fn failed(a: &ActivityTask, error: ActivityError) -> (ActivityError, AttemptOutcome, FinalEvent) {
    let (seq, ty) = (a.seq, a.activity_type.clone());
    (
        error.clone(),
        AttemptOutcome::Failed { error },
        Box::new(move |n, error| EventKind::ActivityFailed {
            seq,
            failure: ActivityFailure::Failed { activity_type: ty, attempts: n, error },
        }),
    )
}

/// Re-arms the activity task for its next attempt at `at`, releasing this lease.
pub(super) async fn reschedule(
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
pub(super) async fn finish(
    inner: &Arc<Inner>,
    leased: LeasedTask,
    a: &ActivityTask,
    outcome: EventKind,
    rec: AttemptRecord,
) {
    let inputs = vec![
        EventKind::ActivityStarted { seq: a.seq, attempt: a.attempt.max(1), worker: inner.options.identity.clone() },
        outcome,
    ];
    let run_id = leased.task.run_id.clone();
    process_run(inner, run_id, Trigger::Activity { task: leased, seq: a.seq, inputs, attempt: rec }).await;
}
