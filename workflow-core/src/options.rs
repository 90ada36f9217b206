//! Options: activity options and engine limits.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::OptionsError;
use crate::policy::RetryPolicy;
use crate::time::opt_duration_ms;

/// How much longer an activity attempt's lease lasts than its heartbeat or attempt timeout:
/// a dead worker's attempt is taken over this much after it would have timed out.
pub const LEASE_MARGIN: Duration = Duration::from_secs(1);

/// The longest a local activity ([`WorkflowContext::local_activity`](crate::WorkflowContext::local_activity))
/// may take, retries and backoff included: 5 minutes. Its schedule-to-close timeout is capped
/// at this; work that may take longer belongs in a scheduled activity.
pub const MAX_LOCAL_ACTIVITY: Duration = Duration::from_secs(300);

/// How an activity is run: timeouts and retries. Set per activity type with
/// [`Activity::options`](crate::Activity::options) or per call with
/// [`WorkflowContext::activity_with`](crate::WorkflowContext::activity_with).
///
/// Defaults: start-to-close 10 minutes, no other timeouts, the default [`RetryPolicy`].
///
/// ```
/// use std::time::Duration;
/// use workflow_core::{ActivityOptions, RetryPolicy};
/// let options = ActivityOptions::default()
///     .start_to_close_timeout(Duration::from_secs(300))
///     .heartbeat_timeout(Duration::from_secs(15))
///     .retry_policy(RetryPolicy::default().maximum_attempts(3));
/// assert!(options.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ActivityOptions {
    /// Longest a single attempt may run. A timed-out attempt is retried by the policy.
    #[serde(default, with = "opt_duration_ms")]
    pub start_to_close_timeout: Option<Duration>,
    /// Longest from scheduling to the final result, across all attempts and backoffs.
    #[serde(default, with = "opt_duration_ms")]
    pub schedule_to_close_timeout: Option<Duration>,
    /// Longest the first attempt may wait for a worker. Not retried.
    #[serde(default, with = "opt_duration_ms")]
    pub schedule_to_start_timeout: Option<Duration>,
    /// Longest between heartbeats of a running attempt. A missed heartbeat fails the attempt.
    #[serde(default, with = "opt_duration_ms")]
    pub heartbeat_timeout: Option<Duration>,
    /// How failed attempts are retried.
    pub retry_policy: RetryPolicy,
    /// What cancelling the activity does (default: try-cancel).
    #[serde(default, skip_serializing_if = "ActivityCancellationType::is_default")]
    pub cancellation_type: ActivityCancellationType,
}

/// What cancelling a pending activity does (its run's cancellation, or
/// [`ActivityFuture::cancel`](crate::ActivityFuture::cancel)), as Temporal's
/// `ActivityCancellationType`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActivityCancellationType {
    /// The future resolves as cancelled at once; the activity's task is removed and a running
    /// attempt learns it at its next heartbeat; its late result is not recorded.
    #[default]
    TryCancel,
    /// The running attempt is told at its next heartbeat (`ctx.cancelled()`), and the future
    /// resolves only when the activity ends: cancelled when the attempt stops with an error
    /// (it is not retried), or with its result when it finishes anyway. An attempt not running
    /// is cancelled at once. Use it when the workflow must not go on before the activity's
    /// cleanup is done.
    WaitCancellationCompleted,
    /// The future resolves as cancelled at once and the activity is not told: it runs on,
    /// and its result is dropped.
    Abandon,
}

impl ActivityCancellationType {
    fn is_default(&self) -> bool {
        *self == ActivityCancellationType::TryCancel
    }
}

impl Default for ActivityOptions {
    fn default() -> Self {
        ActivityOptions {
            start_to_close_timeout: Some(Duration::from_secs(600)),
            schedule_to_close_timeout: None,
            schedule_to_start_timeout: None,
            heartbeat_timeout: None,
            retry_policy: RetryPolicy::default(),
            cancellation_type: ActivityCancellationType::TryCancel,
        }
    }
}

impl ActivityOptions {
    /// Sets the start-to-close timeout.
    pub fn start_to_close_timeout(mut self, d: Duration) -> Self {
        self.start_to_close_timeout = Some(d);
        self
    }

    /// Sets the schedule-to-close timeout.
    pub fn schedule_to_close_timeout(mut self, d: Duration) -> Self {
        self.schedule_to_close_timeout = Some(d);
        self
    }

    /// Sets the schedule-to-start timeout.
    pub fn schedule_to_start_timeout(mut self, d: Duration) -> Self {
        self.schedule_to_start_timeout = Some(d);
        self
    }

    /// Sets the heartbeat timeout.
    pub fn heartbeat_timeout(mut self, d: Duration) -> Self {
        self.heartbeat_timeout = Some(d);
        self
    }

    /// Sets the retry policy.
    pub fn retry_policy(mut self, p: RetryPolicy) -> Self {
        self.retry_policy = p;
        self
    }

    /// Sets what cancelling the activity does.
    pub fn cancellation_type(mut self, c: ActivityCancellationType) -> Self {
        self.cancellation_type = c;
        self
    }

    /// Checks the values: timeouts above zero, at least one of start-to-close and
    /// schedule-to-close, a valid retry policy.
    pub fn validate(&self) -> Result<(), OptionsError> {
        for (name, v) in [
            ("start_to_close_timeout", self.start_to_close_timeout),
            ("schedule_to_close_timeout", self.schedule_to_close_timeout),
            ("schedule_to_start_timeout", self.schedule_to_start_timeout),
            ("heartbeat_timeout", self.heartbeat_timeout),
        ] {
            if v == Some(Duration::ZERO) {
                return Err(OptionsError { option: name, reason: "must be above zero (or unset)".into() });
            }
        }
        if self.start_to_close_timeout.is_none() && self.schedule_to_close_timeout.is_none() {
            return Err(OptionsError {
                option: "start_to_close_timeout",
                reason: "set start_to_close_timeout or schedule_to_close_timeout, so a lost attempt is detected".into(),
            });
        }
        self.retry_policy.validate()
    }

    /// How long one attempt may run before it counts as timed out.
    pub(crate) fn attempt_timeout(&self) -> Duration {
        match (self.start_to_close_timeout, self.schedule_to_close_timeout) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => Duration::from_secs(600),
        }
    }

    /// How long a lease on an attempt lasts before another worker may take it over: the
    /// heartbeat timeout when set (heartbeats extend it), else the attempt timeout, plus [`LEASE_MARGIN`].
    ///
    /// The margin lets a live worker, which enforces those timeouts itself, record its
    /// attempt's timeout (and the retry's backoff) before the lease can be taken as lost.
    /// Without it both fell on the same instant, and a timed-out attempt was sometimes
    /// retried at once, as a lost one, without its backoff.
    pub(crate) fn lease_duration(&self) -> Duration {
        let t = self.attempt_timeout();
        self.heartbeat_timeout.map_or(t, |h| h.min(t)) + LEASE_MARGIN
    }
}

/// Limits that protect the engine from oversized input. Each is a typed error when exceeded.
///
/// ```
/// use workflow_core::Limits;
/// let limits = Limits::default();
/// assert_eq!(limits.max_payload_bytes, 2 * 1024 * 1024);
/// assert_eq!(limits.max_history_events, 50_000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest payload (input, output, heartbeat details). Default 2 MiB.
    pub max_payload_bytes: usize,
    /// Most events in one run's history. Default 50,000; use continue-as-new for longer work.
    pub max_history_events: u64,
    /// Longest workflow id (and other user ids) in bytes. Default 1,000.
    pub max_id_bytes: usize,
    /// Most activities and timers pending at once in one run. Default 2,000.
    pub max_pending_per_run: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload_bytes: 2 * 1024 * 1024,
            max_history_events: 50_000,
            max_id_bytes: 1_000,
            max_pending_per_run: 2_000,
        }
    }
}

impl Limits {
    /// Sets the payload limit.
    pub fn max_payload_bytes(mut self, n: usize) -> Self {
        self.max_payload_bytes = n;
        self
    }

    /// Sets the history cap.
    pub fn max_history_events(mut self, n: u64) -> Self {
        self.max_history_events = n;
        self
    }

    /// Sets the id length limit.
    pub fn max_id_bytes(mut self, n: usize) -> Self {
        self.max_id_bytes = n;
        self
    }

    /// Sets the pending limit.
    pub fn max_pending_per_run(mut self, n: usize) -> Self {
        self.max_pending_per_run = n;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!(ActivityOptions::default().validate().is_ok());
        let zero = ActivityOptions::default().heartbeat_timeout(Duration::ZERO);
        assert_eq!(zero.validate().unwrap_err().option, "heartbeat_timeout");
        let none = ActivityOptions { start_to_close_timeout: None, ..Default::default() };
        assert!(none.validate().is_err());
    }

    #[test]
    fn lease_is_heartbeat_bounded() {
        let o = ActivityOptions::default()
            .start_to_close_timeout(Duration::from_secs(300))
            .heartbeat_timeout(Duration::from_secs(15));
        assert_eq!(o.lease_duration(), Duration::from_secs(15) + LEASE_MARGIN);
        assert_eq!(o.attempt_timeout(), Duration::from_secs(300));
    }
}
