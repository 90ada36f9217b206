//! Unit tests of one activity, alone: [`ActivityTestContext`].

use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::activity::{Activity, ActivityContext, ActivityError, ActivityInfo, ActivityShared};
use crate::ids::RunId;
use crate::payload::Payload;
use crate::time::Timestamp;

/// A context for calling one activity directly in a unit test, with no worker and no store:
/// set the attempt number and the previous attempt's heartbeat details, cancel it when you
/// like, and read back every heartbeat it made.
///
/// ```
/// use workflow_core::{testing::ActivityTestContext, Activity, ActivityContext, ActivityError};
///
/// struct CountTo;
/// impl Activity for CountTo {
///     const NAME: &'static str = "count_to";
///     type Input = u32;
///     type Output = u32;
///     async fn run(&self, ctx: ActivityContext, n: u32) -> Result<u32, ActivityError> {
///         let from = ctx.last_heartbeat::<u32>().unwrap_or(0);
///         for i in from + 1..=n {
///             ctx.heartbeat(&i);
///         }
///         Ok(n)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // A retry resumes where the first attempt's last heartbeat left it.
/// let t = ActivityTestContext::new(CountTo::NAME).attempt(2).previous_heartbeat(&3u32);
/// assert_eq!(t.run(&CountTo, 5).await, Ok(5));
/// assert_eq!(t.heartbeats::<u32>(), vec![4, 5]);
/// # }
/// ```
pub struct ActivityTestContext {
    info: ActivityInfo,
    previous: Option<Payload>,
    shared: Arc<ActivityShared>,
}

impl ActivityTestContext {
    /// Attempt 1 of `activity_type`, in workflow `test-workflow`, run `test-run`, position 0,
    /// with no previous heartbeat.
    pub fn new(activity_type: &str) -> Self {
        ActivityTestContext {
            info: ActivityInfo {
                workflow_id: "test-workflow".into(),
                run_id: RunId("test-run".into()),
                seq: 0,
                activity_type: activity_type.into(),
                attempt: 1,
                scheduled_at: Timestamp(0),
                worker: "test".into(),
            },
            previous: None,
            shared: Arc::new(ActivityShared { recorded: Some(Mutex::default()), ..ActivityShared::default() }),
        }
    }

    /// Sets the attempt number (from 1).
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.info.attempt = attempt.max(1);
        self
    }

    /// Sets the heartbeat details an earlier attempt left, which
    /// [`ActivityContext::last_heartbeat`] returns. Details that do not serialize are ignored.
    pub fn previous_heartbeat<T: Serialize>(mut self, details: &T) -> Self {
        self.previous = Payload::encode(details).ok();
        self
    }

    /// Sets the workflow id (and so the [`ActivityContext::idempotency_key`]).
    pub fn workflow_id(mut self, workflow_id: &str) -> Self {
        self.info.workflow_id = workflow_id.into();
        self
    }

    /// A context to pass to the activity (every context made shares one heartbeat log and
    /// one cancellation).
    pub fn context(&self) -> ActivityContext {
        ActivityContext::new(self.info.clone(), self.previous.clone(), self.shared.clone())
    }

    /// Runs one attempt of `activity` on `input` with a [`context`](Self::context).
    pub async fn run<A: Activity>(&self, activity: &A, input: A::Input) -> Result<A::Output, ActivityError> {
        activity.run(self.context(), input).await
    }

    /// Cancels the attempt: [`ActivityContext::is_cancelled`] turns true and
    /// [`ActivityContext::cancelled`] resolves.
    pub fn cancel(&self) {
        self.shared.cancel();
    }

    /// Every heartbeat's details so far, in order.
    pub fn heartbeat_payloads(&self) -> Vec<Payload> {
        self.shared.recorded.as_ref().map(|r| r.lock().unwrap_or_else(|e| e.into_inner()).clone()).unwrap_or_default()
    }

    /// Every heartbeat's details so far that decode as `T`, in order.
    pub fn heartbeats<T: DeserializeOwned>(&self) -> Vec<T> {
        self.heartbeat_payloads().iter().filter_map(|p| p.decode("heartbeat details").ok()).collect()
    }

    /// The latest heartbeat's details, decoded as `T`.
    pub fn last_heartbeat<T: DeserializeOwned>(&self) -> Option<T> {
        self.heartbeat_payloads().last().and_then(|p| p.decode("heartbeat details").ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct WaitForCancel;
    impl Activity for WaitForCancel {
        const NAME: &'static str = "wait_for_cancel";
        type Input = ();
        type Output = String;
        async fn run(&self, ctx: ActivityContext, _: ()) -> Result<String, ActivityError> {
            ctx.heartbeat(&"waiting");
            ctx.cancelled().await;
            Err(ActivityError::non_retryable("Cancelled", format!("stopped on attempt {}", ctx.attempt())))
        }
    }

    #[tokio::test]
    async fn cancellation_reaches_a_waiting_activity_and_heartbeats_are_kept() {
        let t = ActivityTestContext::new(WaitForCancel::NAME).attempt(3).workflow_id("wf-1");
        assert_eq!(t.context().idempotency_key(), "test-run/0");
        let run = t.run(&WaitForCancel, ());
        tokio::pin!(run);
        assert!(futures::poll!(run.as_mut()).is_pending());
        assert_eq!(t.heartbeats::<String>(), vec!["waiting".to_string()]);
        t.cancel();
        let err = run.await.unwrap_err();
        assert_eq!(err.message, "stopped on attempt 3");
        assert_eq!(t.context().info().workflow_id, "wf-1");
    }
}
