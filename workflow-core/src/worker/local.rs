//! Local activities: run in the worker of the workflow task that asked for them, retried in
//! memory, and recorded by one marker with the workflow task that follows (one write).

use std::sync::Arc;

use tracing::{info_span, Instrument};

use super::workflow_tasks::{process_run, Trigger};
use super::Inner;
use crate::activity::{ActivityContext, ActivityError, ActivityInfo, ActivityShared};
use crate::history::{ActivityFailure, EventKind, LocalActivityOutcome, TimeoutKind};
use crate::ids::RunId;
use crate::options::MAX_LOCAL_ACTIVITY;
use crate::policy::{next_retry, NextRetry};
use crate::replay::LocalActivityRequest;
use crate::store::{AttemptOutcome, AttemptRecord};
use crate::testing::TestClock;

/// Starts the local activities a workflow task asked for, each once per worker.
pub(crate) fn start(inner: &Arc<Inner>, run_id: &RunId, workflow_id: &str, requests: Vec<LocalActivityRequest>) {
    for req in requests {
        let key = (run_id.clone(), req.seq);
        if !inner.local_running.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone()) {
            continue;
        }
        let i = inner.clone();
        let (run_id, workflow_id) = (run_id.clone(), workflow_id.to_string());
        let span = info_span!("local_activity", workflow_id = %workflow_id, run_id = %run_id, activity = %req.activity_type, seq = req.seq);
        // Like any running task, it holds a test clock (except while it waits for a backoff).
        let hold = inner.holds.as_ref().map(TestClock::hold);
        let fut = async move {
            let _hold = hold;
            let (inputs, attempt) = run(&i, &run_id, &workflow_id, &req).await;
            process_run(&i, run_id, Trigger::Local { seq: req.seq, inputs, attempt }).await;
            i.local_running.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        };
        super::spawn_background(inner, fut.instrument(span));
    }
}

/// Runs the attempts, with the retry policy's backoff in between, within the activity's
/// schedule-to-close (at most [`MAX_LOCAL_ACTIVITY`]); returns the marker and the last
/// attempt's log record.
async fn run(
    inner: &Arc<Inner>,
    run_id: &RunId,
    workflow_id: &str,
    req: &LocalActivityRequest,
) -> (Vec<EventKind>, AttemptRecord) {
    let worker = inner.options.identity.clone();
    let started = inner.clock.now();
    let budget = req.options.schedule_to_close_timeout.map_or(MAX_LOCAL_ACTIVITY, |t| t.min(MAX_LOCAL_ACTIVITY));
    let deadline = started.add(budget);
    let activity = inner.registry.activities.get(&req.activity_type).cloned();
    let mut attempt = 1u32;
    loop {
        let attempt_started = inner.clock.now();
        let record = |outcome| AttemptRecord {
            run_id: run_id.clone(),
            seq: req.seq,
            activity_type: req.activity_type.clone(),
            attempt,
            worker: format!("{worker} (local)"),
            started_at: attempt_started,
            ended_at: inner.clock.now(),
            outcome,
            last_heartbeat: None,
        };
        let Some(activity) = activity.clone() else {
            let error = ActivityError::non_retryable(
                "UnknownActivityType",
                format!("local activity type {:?} is not registered with this worker (registered: {}); register it with Worker::register_activity on every worker that runs this workflow", req.activity_type, inner.registry.activity_names()),
            );
            let rec = record(AttemptOutcome::Failed { error: error.clone() });
            return failed(
                req,
                attempt,
                ActivityFailure::Failed { activity_type: req.activity_type.clone(), attempts: attempt, error },
                rec,
            );
        };
        let remaining = deadline.since(attempt_started);
        let attempt_timeout = req.options.attempt_timeout().min(remaining);
        let kind = if attempt_timeout < req.options.attempt_timeout() {
            TimeoutKind::ScheduleToClose
        } else {
            TimeoutKind::StartToClose
        };
        let info = ActivityInfo {
            workflow_id: workflow_id.to_string(),
            run_id: run_id.clone(),
            seq: req.seq,
            activity_type: req.activity_type.clone(),
            attempt,
            scheduled_at: started,
            worker: worker.clone(),
        };
        let shared = Arc::new(ActivityShared::default());
        let ctx = ActivityContext::new(info, None, shared.clone());
        let result = tokio::select! {
            r = activity.run(ctx, req.input.clone()) => r.map_err(ActivityError::bounded),
            _ = inner.clock.sleep(attempt_timeout) => {
                shared.cancel();
                Err(ActivityError::retryable("Timeout", format!("attempt exceeded its {kind} timeout")))
            }
        };
        let error = match result {
            Ok(p) => match p.check_size(
                &format!("result of activity {}", req.activity_type),
                inner.options.limits.max_payload_bytes,
            ) {
                Ok(()) => {
                    let rec = record(AttemptOutcome::Completed);
                    return (vec![marker(req, attempt, LocalActivityOutcome::Completed { result: p })], rec);
                }
                Err(e) => ActivityError::non_retryable("PayloadTooLarge", e.to_string()),
            },
            Err(e) => e,
        };
        let timed_out = error.error_type == "Timeout" && inner.clock.now() >= attempt_started.add(attempt_timeout);
        let outcome = if timed_out {
            AttemptOutcome::TimedOut { timeout: kind }
        } else {
            AttemptOutcome::Failed { error: error.clone() }
        };
        let final_failure = |attempts| {
            if timed_out {
                ActivityFailure::TimedOut {
                    activity_type: req.activity_type.clone(),
                    attempts,
                    timeout: kind,
                    last_error: None,
                }
            } else {
                ActivityFailure::Failed { activity_type: req.activity_type.clone(), attempts, error: error.clone() }
            }
        };
        match next_retry(&req.options.retry_policy, attempt, &error.error_type, error.retryable) {
            NextRetry::RetryAfter { after, .. } if inner.clock.now().add(after) < deadline => {
                // The backoff is a wait: time may pass under a test clock.
                let _waiting = inner.holds.as_ref().map(TestClock::release_hold);
                inner.clock.sleep(after).await;
                attempt += 1;
            }
            NextRetry::RetryAfter { .. } => {
                let failure = ActivityFailure::TimedOut {
                    activity_type: req.activity_type.clone(),
                    attempts: attempt,
                    timeout: TimeoutKind::ScheduleToClose,
                    last_error: Some(error.clone()),
                };
                return failed(req, attempt, failure, record(outcome));
            }
            NextRetry::NonRetryable | NextRetry::AttemptsExhausted => {
                return failed(req, attempt, final_failure(attempt), record(outcome));
            }
        }
    }
}

fn failed(
    req: &LocalActivityRequest,
    attempts: u32,
    failure: ActivityFailure,
    rec: AttemptRecord,
) -> (Vec<EventKind>, AttemptRecord) {
    (vec![marker(req, attempts, LocalActivityOutcome::Failed { failure })], rec)
}

/// The one event that records a local activity.
fn marker(req: &LocalActivityRequest, attempts: u32, outcome: LocalActivityOutcome) -> EventKind {
    EventKind::LocalActivityRecorded { seq: req.seq, activity_type: req.activity_type.clone(), attempts, outcome }
}
