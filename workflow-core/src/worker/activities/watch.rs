//! An attempt that goes on outside the activity's code (it returned
//! [`ActivityError::result_pending`](crate::ActivityError::result_pending)): its slot is
//! freed, its lease and timeouts stay, and a watch settles it as timed out when nobody
//! completes it in time.

use std::sync::Arc;

use tracing::warn;

use super::attempt::{AttemptResult, Done};
use super::settle::{settle, AttemptTimes};
use super::Inner;
use crate::error::StoreError;
use crate::history::TimeoutKind;
use crate::store::{ActivityTask, LeasedTask, TaskKind};

/// Hands an attempt over to asynchronous completion: renews its lease from now (with the
/// latest details), so that it cannot end before the deadlines the watch keeps, and starts
/// the watch.
pub(super) async fn hand_off(inner: &Arc<Inner>, leased: LeasedTask, mut a: ActivityTask, done: Done) {
    let ended = done.times.ended;
    let until = ended.add(leased.task.lease_duration);
    match inner.store.heartbeat(&leased.task.key, leased.token, done.last_hb.clone(), ended, until).await {
        Ok(()) => {}
        Err(StoreError::LeaseLost { .. }) => return,
        Err(e) => warn!(error = %e, "renewing the lease of an asynchronous attempt failed"),
    }
    if done.last_hb.is_some() {
        a.heartbeat = done.last_hb;
        a.heartbeat_at = Some(ended);
    }
    watch(inner, leased, a, done.times, done.timeout, done.timeout_kind);
}

/// Watches an attempt until it is completed through its token, or one of its timeouts fires
/// first: then the attempt is settled as timed out, through the retry policy. The watch
/// holds no slot. If this worker dies, the attempt's lease expires and another worker
/// retries it as an attempt lost with its worker.
fn watch(
    inner: &Arc<Inner>,
    leased: LeasedTask,
    a: ActivityTask,
    times: AttemptTimes,
    attempt_timeout: std::time::Duration,
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
    crate::worker::spawn_background(inner, fut);
}
