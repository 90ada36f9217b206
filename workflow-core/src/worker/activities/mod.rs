//! Activity tasks, one step at a time. A step is a straight pipeline, each stage in its own
//! file:
//!
//! 1. [`checks`]: before an attempt, whether one runs at all (the workflow asked to cancel
//!    and waits, the previous attempt was lost with its worker, a schedule timeout passed,
//!    the type is unknown), and if not, what is recorded instead;
//! 2. [`attempt`]: run the activity's code with its timeouts, heartbeats and shutdown;
//! 3. [`settle`]: the attempt's result through the retry policy: a retry re-arms the task
//!    (one write), a final outcome goes to
//! 4. [`process_run`](super::workflow_tasks::process_run): the workflow code takes the
//!    outcome, and the outcome, the attempt record and the next commands are one write,
//!    whose eager leases start the next activities on this worker
//!    ([`dispatch_eager`](super::dispatch_eager)).
//!
//! An attempt that hands its result to a client (asynchronous completion) is watched by
//! [`watch`] until the client answers or a timeout fires; the answer is settled as in 3.

mod attempt;
mod checks;
mod settle;
mod watch;

use std::sync::Arc;

use tracing::{info_span, warn, Instrument};

use super::Inner;
use crate::store::{AsyncOutcome, LeasedTask, TaskKind};

use attempt::AttemptResult;
pub use attempt::CANCEL_CLEANUP;
use settle::AttemptTimes;

pub(crate) async fn handle(inner: &Arc<Inner>, leased: LeasedTask) {
    let TaskKind::Activity(a) = &leased.task.kind else {
        warn!(task = %leased.task.key, "non-activity task on the activity queue; ignoring");
        return;
    };
    let a = (**a).clone();
    let span = info_span!("activity", workflow_id = %a.workflow_id, run_id = %leased.task.run_id, activity = %a.activity_type, seq = a.seq, attempt = a.attempt);
    step(inner, leased, a).instrument(span).await
}

/// One step of an activity: checks, the attempt, its settlement.
async fn step(inner: &Arc<Inner>, leased: LeasedTask, mut a: crate::store::ActivityTask) {
    if let Some(done) = a.async_result.take() {
        // The attempt was completed from outside through its task token: settle it as if it
        // had returned this (its timeouts were watched until then).
        let result = match done.outcome {
            AsyncOutcome::Completed { result } => AttemptResult::Ok(result),
            AsyncOutcome::Failed { error } => AttemptResult::Err(error.bounded()),
        };
        let times = AttemptTimes { worker: done.worker, started: done.started_at, ended: done.ended_at };
        settle::settle(inner, leased, a, times, None, result).await;
        return;
    }
    let activity = match checks::before_attempt(inner, &leased, &mut a).await {
        checks::Verdict::Run(activity) => activity,
        verdict => return checks::apply(inner, leased, a, verdict).await,
    };
    let done = attempt::run(inner, &leased, &a, activity).await;
    if done.result_pending() {
        watch::hand_off(inner, leased, a, done).await;
        return;
    }
    if done.told {
        a.cancel_requested = true;
    }
    settle::settle(inner, leased, a, done.times, done.last_hb, done.result).await;
}

/// When the activity's schedule-to-close timeout ends, if it has one.
fn schedule_to_close_deadline(a: &crate::store::ActivityTask) -> Option<crate::time::Timestamp> {
    a.options.schedule_to_close_timeout.map(|d| a.scheduled_at.add(d))
}
