//! The retry policy and the pure function that schedules the next attempt.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::OptionsError;
use crate::time::duration_ms;

/// How an activity (or a workflow) is retried. Defaults follow Temporal: first retry after 1 s,
/// each next interval doubled, capped at 100 x the initial interval, unlimited attempts.
///
/// ```
/// use std::time::Duration;
/// use workflow_core::RetryPolicy;
/// let policy = RetryPolicy::default()
///     .maximum_attempts(3)
///     .initial_interval(Duration::from_secs(1))
///     .maximum_interval(Duration::from_secs(30));
/// assert!(policy.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Wait before the first retry. Default 1 s; must be above zero.
    #[serde(with = "duration_ms")]
    pub initial_interval: Duration,
    /// Factor applied to the interval after each retry. Default 2.0; must be at least 1.0.
    pub backoff_coefficient: f64,
    /// Cap on the interval. Default 100 x `initial_interval`; must be at least `initial_interval`.
    #[serde(default, with = "crate::time::opt_duration_ms")]
    pub maximum_interval: Option<Duration>,
    /// Total attempts including the first; 0 means unlimited. Default 0.
    pub maximum_attempts: u32,
    /// Error types (see [`ActivityError::error_type`](crate::ActivityError)) that are never retried.
    #[serde(default)]
    pub non_retryable_error_types: Vec<String>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_interval: Duration::from_secs(1),
            backoff_coefficient: 2.0,
            maximum_interval: None,
            maximum_attempts: 0,
            non_retryable_error_types: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries (one attempt).
    pub fn no_retries() -> Self {
        RetryPolicy::default().maximum_attempts(1)
    }

    /// Sets the first retry interval.
    pub fn initial_interval(mut self, d: Duration) -> Self {
        self.initial_interval = d;
        self
    }

    /// Sets the backoff coefficient.
    pub fn backoff_coefficient(mut self, c: f64) -> Self {
        self.backoff_coefficient = c;
        self
    }

    /// Sets the interval cap.
    pub fn maximum_interval(mut self, d: Duration) -> Self {
        self.maximum_interval = Some(d);
        self
    }

    /// Sets the total attempt count (0 = unlimited).
    pub fn maximum_attempts(mut self, n: u32) -> Self {
        self.maximum_attempts = n;
        self
    }

    /// Adds an error type that is never retried.
    pub fn non_retryable(mut self, error_type: impl Into<String>) -> Self {
        self.non_retryable_error_types.push(error_type.into());
        self
    }

    /// The effective interval cap.
    pub fn effective_maximum_interval(&self) -> Duration {
        self.maximum_interval.unwrap_or_else(|| self.initial_interval.saturating_mul(100))
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if self.initial_interval.is_zero() {
            return Err(OptionsError { option: "retry_policy.initial_interval", reason: "must be above zero".into() });
        }
        if !(self.backoff_coefficient.is_finite() && self.backoff_coefficient >= 1.0) {
            return Err(OptionsError {
                option: "retry_policy.backoff_coefficient",
                reason: format!("must be a finite number >= 1.0, got {}", self.backoff_coefficient),
            });
        }
        if let Some(max) = self.maximum_interval {
            if max < self.initial_interval {
                return Err(OptionsError {
                    option: "retry_policy.maximum_interval",
                    reason: format!("must be at least initial_interval ({:?}), got {max:?}", self.initial_interval),
                });
            }
        }
        Ok(())
    }
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextRetry {
    /// Run attempt `attempt` after waiting `after`.
    RetryAfter {
        /// The next attempt's number (1-based).
        attempt: u32,
        /// Backoff before it.
        after: Duration,
    },
    /// Stop: the error is not retryable.
    NonRetryable,
    /// Stop: the policy's attempts are used up.
    AttemptsExhausted,
}

/// The retry decision after attempt `attempt` (1-based) failed with an error of type
/// `error_type` that the activity marked `retryable` or not. Pure: no clock, no randomness.
///
/// The interval before attempt `n + 1` is `initial * coefficient^(n - 1)`, capped at the
/// maximum interval.
pub fn next_retry(policy: &RetryPolicy, attempt: u32, error_type: &str, retryable: bool) -> NextRetry {
    if !retryable || policy.non_retryable_error_types.iter().any(|t| t == error_type) {
        return NextRetry::NonRetryable;
    }
    if policy.maximum_attempts != 0 && attempt >= policy.maximum_attempts {
        return NextRetry::AttemptsExhausted;
    }
    let cap = policy.effective_maximum_interval();
    let exp = attempt.saturating_sub(1).min(1024) as i32;
    let factor = policy.backoff_coefficient.max(1.0).powi(exp);
    let secs = policy.initial_interval.as_secs_f64() * factor;
    let after = if secs.is_finite() && secs < cap.as_secs_f64() { Duration::from_secs_f64(secs) } else { cap };
    NextRetry::RetryAfter { attempt: attempt + 1, after: after.min(cap) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn temporal_like_schedule() {
        let p = RetryPolicy::default().maximum_interval(Duration::from_secs(30)).maximum_attempts(3);
        assert_eq!(next_retry(&p, 1, "E", true), NextRetry::RetryAfter { attempt: 2, after: Duration::from_secs(1) });
        assert_eq!(next_retry(&p, 2, "E", true), NextRetry::RetryAfter { attempt: 3, after: Duration::from_secs(2) });
        assert_eq!(next_retry(&p, 3, "E", true), NextRetry::AttemptsExhausted);
        assert_eq!(next_retry(&p, 1, "E", false), NextRetry::NonRetryable);
        let p = p.non_retryable("Declined");
        assert_eq!(next_retry(&p, 1, "Declined", true), NextRetry::NonRetryable);
    }

    #[test]
    fn validation_rejects_bad_values() {
        assert!(RetryPolicy::default().initial_interval(Duration::ZERO).validate().is_err());
        assert!(RetryPolicy::default().backoff_coefficient(0.5).validate().is_err());
        assert!(RetryPolicy::default().backoff_coefficient(f64::NAN).validate().is_err());
        assert!(RetryPolicy::default()
            .initial_interval(Duration::from_secs(10))
            .maximum_interval(Duration::from_secs(1))
            .validate()
            .is_err());
    }

    fn policy() -> impl Strategy<Value = RetryPolicy> {
        (1u64..10_000, 1.0f64..10.0, proptest::option::of(1u64..1_000_000), 0u32..20).prop_map(
            |(init, coef, max, attempts)| {
                let mut p = RetryPolicy::default()
                    .initial_interval(Duration::from_millis(init))
                    .backoff_coefficient(coef)
                    .maximum_attempts(attempts);
                if let Some(m) = max {
                    p = p.maximum_interval(Duration::from_millis(init.max(m)));
                }
                p
            },
        )
    }

    proptest! {
        #[test]
        fn intervals_are_monotonic_and_capped(p in policy(), upto in 1u32..200) {
            let cap = p.effective_maximum_interval();
            let mut last = Duration::ZERO;
            for attempt in 1..upto {
                match next_retry(&p, attempt, "E", true) {
                    NextRetry::RetryAfter { attempt: next, after } => {
                        prop_assert_eq!(next, attempt + 1);
                        prop_assert!(after <= cap);
                        prop_assert!(after >= last, "interval shrank: {:?} -> {:?}", last, after);
                        prop_assert!(after >= p.initial_interval.min(cap));
                        last = after;
                    }
                    NextRetry::AttemptsExhausted => {
                        prop_assert!(p.maximum_attempts != 0 && attempt >= p.maximum_attempts);
                        break;
                    }
                    NextRetry::NonRetryable => prop_assert!(false, "retryable error refused"),
                }
            }
        }

        #[test]
        fn attempts_never_exceed_maximum(p in policy()) {
            let mut attempt = 1;
            let mut runs = 1;
            while let NextRetry::RetryAfter { attempt: next, .. } = next_retry(&p, attempt, "E", true) {
                attempt = next;
                runs += 1;
                if runs > 50 { break; }
            }
            if p.maximum_attempts != 0 {
                prop_assert_eq!(runs, p.maximum_attempts.max(1));
            }
        }

        #[test]
        fn non_retryable_never_retries(p in policy(), attempt in 1u32..100) {
            prop_assert_eq!(next_retry(&p, attempt, "E", false), NextRetry::NonRetryable);
        }
    }
}
