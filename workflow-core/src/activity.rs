//! Activities: the code that does the real work (HTTP, files, CPU), run at least once.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::error::Failure;
use crate::ids::{RunId, Seq};
use crate::options::ActivityOptions;
use crate::payload::Payload;
use crate::time::Timestamp;

/// An activity: a named unit of work with a typed input and output.
///
/// The engine runs it at least once: a crash after its side effect and before its result is
/// recorded runs it again. Use [`ActivityContext::idempotency_key`] to make effects
/// idempotent.
///
/// ```
/// use workflow_core::{Activity, ActivityContext, ActivityError};
///
/// struct AddOne;
///
/// impl Activity for AddOne {
///     const NAME: &'static str = "add_one";
///     type Input = u64;
///     type Output = u64;
///
///     async fn run(&self, _ctx: ActivityContext, n: u64) -> Result<u64, ActivityError> {
///         Ok(n + 1)
///     }
/// }
/// ```
pub trait Activity: Send + Sync + 'static {
    /// The stable name recorded in histories. Changing it orphans scheduled activities.
    const NAME: &'static str;
    /// The input type.
    type Input: Serialize + DeserializeOwned + Send + 'static;
    /// The output type.
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// Default options for calls of this activity; a call may override them.
    fn options() -> ActivityOptions {
        ActivityOptions::default()
    }

    /// Runs one attempt.
    fn run(
        &self,
        ctx: ActivityContext,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, ActivityError>> + Send;
}

/// An activity attempt's error: retryable or not, with a type string that retry policies and
/// workflow code can match on.
///
/// ```
/// use workflow_core::ActivityError;
/// let e = ActivityError::retryable("Timeout", "enrichment API did not answer");
/// assert!(e.retryable);
/// let e = ActivityError::non_retryable("InvalidCard", "card number is malformed");
/// assert!(!e.retryable);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct ActivityError {
    /// A stable type string (`"Timeout"`, `"InvalidCard"`).
    pub error_type: String,
    /// A human-readable message.
    pub message: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// Optional structured details.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::payload::opt_payload")]
    pub details: Option<Payload>,
}

impl ActivityError {
    /// An error that another attempt may fix (timeouts, 5xx, connection refused).
    pub fn retryable(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        ActivityError {
            error_type: error_type.into(),
            message: crate::error::bound_message(message.into()),
            retryable: true,
            details: None,
        }
    }

    /// An error that no attempt will fix (bad input, a business rule).
    pub fn non_retryable(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        ActivityError {
            error_type: error_type.into(),
            message: crate::error::bound_message(message.into()),
            retryable: false,
            details: None,
        }
    }

    /// Not an error: tells the worker that this attempt goes on outside the activity's code
    /// and will be completed, failed or heartbeated through its task token
    /// ([`ActivityContext::task_token`], then [`Client::complete_activity`](crate::Client::complete_activity)
    /// and its siblings). The attempt keeps its timeouts; the worker's slot is freed at once.
    /// As Temporal's `ErrResultPending`.
    pub fn result_pending() -> Self {
        ActivityError::non_retryable(
            RESULT_PENDING,
            "the attempt will be completed asynchronously through its task token",
        )
    }

    /// Whether this is [`ActivityError::result_pending`].
    pub fn is_result_pending(&self) -> bool {
        self.error_type == RESULT_PENDING
    }

    /// This error within the engine's bounds (see [`crate::Failure::bounded`]); the engine
    /// applies it before recording an error.
    pub fn bounded(self) -> Self {
        let f =
            crate::Failure { error_type: self.error_type, message: self.message, details: self.details, cause: None }
                .bounded();
        ActivityError { error_type: f.error_type, message: f.message, retryable: self.retryable, details: f.details }
    }

    /// Attaches structured details (ignored when they do not serialize).
    pub fn with_details<T: Serialize>(mut self, details: &T) -> Self {
        self.details = Payload::encode(details).ok();
        self
    }

    /// As a recorded [`Failure`].
    pub fn to_failure(&self) -> Failure {
        Failure {
            error_type: self.error_type.clone(),
            message: self.message.clone(),
            details: self.details.clone(),
            cause: None,
        }
    }
}

/// The error type of [`ActivityError::result_pending`].
const RESULT_PENDING: &str = "ResultPending";

/// Names one attempt of one activity, to complete, fail or heartbeat it from outside the
/// activity's code ([`Client::complete_activity`](crate::Client::complete_activity)). Its
/// string form ([`Display`](std::fmt::Display), [`FromStr`](std::str::FromStr)) is URL-safe,
/// to hand to a webhook or another process. It is valid while that attempt runs: after the
/// attempt timed out, or the activity was cancelled or completed, using it fails with
/// [`AsyncCompletionError::NotCurrent`](crate::error::AsyncCompletionError::NotCurrent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskToken {
    /// The workflow id.
    pub workflow_id: String,
    /// The run.
    pub run_id: RunId,
    /// The activity's command position.
    pub seq: Seq,
    /// The activity's name.
    pub activity_type: String,
    /// The attempt.
    pub attempt: u32,
    /// The worker that started the attempt.
    pub worker: String,
    /// When the attempt started.
    pub started_at: Timestamp,
    pub(crate) task: crate::store::TaskKey,
    pub(crate) lease: crate::store::LeaseToken,
}

impl std::fmt::Display for TaskToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Plain data with string keys: serializing cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        for b in json {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for TaskToken {
    type Err = crate::error::AsyncCompletionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| crate::error::AsyncCompletionError::BadToken { reason: reason.to_string() };
        if !s.len().is_multiple_of(2) || s.len() > 64 * 1024 {
            return Err(bad("not a task token (odd or excessive length)"));
        }
        let bytes = (0..s.len())
            .step_by(2)
            .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| bad("not a task token (not hexadecimal)"))?;
        serde_json::from_slice(&bytes).map_err(|e| bad(&format!("not a task token ({e})")))
    }
}

/// Facts about the running attempt.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ActivityInfo {
    /// The workflow id.
    pub workflow_id: String,
    /// The run.
    pub run_id: RunId,
    /// The command position of this activity in its run.
    pub seq: Seq,
    /// The activity's name.
    pub activity_type: String,
    /// The attempt, from 1.
    pub attempt: u32,
    /// When the activity was scheduled.
    pub scheduled_at: Timestamp,
    /// The worker running the attempt.
    pub worker: String,
}

#[derive(Default)]
pub(crate) struct ActivityShared {
    pub(crate) latest: Mutex<Option<Payload>>,
    pub(crate) beat: Notify,
    pub(crate) cancelled: AtomicBool,
    pub(crate) cancel: Notify,
    /// Every heartbeat's details, when a test asked for them
    /// ([`ActivityTestContext`](crate::testing::ActivityTestContext)).
    pub(crate) recorded: Option<Mutex<Vec<Payload>>>,
}

impl ActivityShared {
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.cancel.notify_waiters();
    }
}

/// What an activity may do besides its work: report progress (heartbeat), read the previous
/// attempt's progress, learn its ids and whether it was cancelled. Not available to workflow
/// code.
#[derive(Clone)]
pub struct ActivityContext {
    info: Arc<ActivityInfo>,
    previous: Option<Payload>,
    shared: Arc<ActivityShared>,
    token: Option<Arc<TaskToken>>,
}

impl ActivityContext {
    pub(crate) fn new(info: ActivityInfo, previous: Option<Payload>, shared: Arc<ActivityShared>) -> Self {
        ActivityContext { info: Arc::new(info), previous, shared, token: None }
    }

    pub(crate) fn with_token(mut self, token: TaskToken) -> Self {
        self.token = Some(Arc::new(token));
        self
    }

    /// This attempt's task token, to complete it from elsewhere after returning
    /// [`ActivityError::result_pending`]. `None` outside a worker (in an
    /// [`ActivityTestContext`](crate::testing::ActivityTestContext)).
    pub fn task_token(&self) -> Option<TaskToken> {
        self.token.as_deref().cloned()
    }

    /// Facts about this attempt.
    pub fn info(&self) -> &ActivityInfo {
        &self.info
    }

    /// The attempt number, from 1.
    pub fn attempt(&self) -> u32 {
        self.info.attempt
    }

    /// A key that is the same on every attempt of this activity and unique across runs
    /// (`<run id>/<seq>`): pass it to downstream systems to make effects idempotent.
    pub fn idempotency_key(&self) -> String {
        format!("{}/{}", self.info.run_id, self.info.seq)
    }

    /// Records progress. Cheap: the latest details are kept in memory and sent to the store
    /// at most once per throttle interval, so a heartbeat per record is fine. Keeps the attempt
    /// alive under a heartbeat timeout. Details that do not serialize are ignored.
    pub fn heartbeat<T: Serialize>(&self, details: &T) {
        if let Ok(p) = Payload::encode(details) {
            self.heartbeat_payload(p);
        }
    }

    pub(crate) fn heartbeat_payload(&self, p: Payload) {
        if let Some(all) = &self.shared.recorded {
            all.lock().unwrap_or_else(|e| e.into_inner()).push(p.clone());
        }
        *self.shared.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        self.shared.beat.notify_one();
    }

    /// The previous attempt's last heartbeat, undecoded.
    pub(crate) fn previous_heartbeat(&self) -> Option<&Payload> {
        self.previous.as_ref()
    }

    /// The details of the last heartbeat recorded by an earlier attempt, to resume from.
    pub fn last_heartbeat<T: DeserializeOwned>(&self) -> Option<T> {
        self.previous.as_ref().and_then(|p| p.decode("heartbeat details").ok())
    }

    /// Whether the activity was cancelled (the workflow was cancelled, the attempt timed out,
    /// or the worker is shutting down). Learned on heartbeat.
    pub fn is_cancelled(&self) -> bool {
        self.shared.cancelled.load(Ordering::SeqCst)
    }

    /// Resolves when the activity is cancelled.
    pub async fn cancelled(&self) {
        loop {
            let n = self.shared.cancel.notified();
            if self.is_cancelled() {
                return;
            }
            n.await;
        }
    }
}
