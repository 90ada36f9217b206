//! The workflow context: everything workflow code may do, all of it recorded.

use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::activity::Activity;
use crate::history::{ActivityFailure, ChildEnd, ChildFailure, ExternalOutcome};
use crate::ids::{RunId, Seq};
use crate::options::ActivityOptions;
use crate::payload::Payload;
use crate::policy::ParentClosePolicy;
use crate::replay::{Command, Resolution, RunState};
use crate::time::Timestamp;
use crate::workflow::Workflow;
use crate::workflow::WorkflowError;

/// The workflow was cancelled while this future was pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

/// Workflow code's handle on the engine. Cheap to clone; every method is deterministic on
/// replay.
#[derive(Clone)]
pub struct WorkflowContext {
    pub(crate) state: Rc<RefCell<RunState>>,
}

impl WorkflowContext {
    /// The workflow id.
    pub fn workflow_id(&self) -> String {
        self.state.borrow().workflow_id.clone()
    }

    /// The run id.
    pub fn run_id(&self) -> RunId {
        self.state.borrow().run_id.clone()
    }

    /// Deterministic current time: the time of the event that woke the workflow.
    pub fn now(&self) -> Timestamp {
        self.state.borrow().now
    }

    /// A deterministic random number (seeded from the run's history).
    pub fn random(&self) -> u64 {
        self.state.borrow_mut().next_random()
    }

    /// A deterministic random UUID (v4 layout).
    pub fn uuid(&self) -> uuid::Uuid {
        let mut s = self.state.borrow_mut();
        let hi = s.next_random().to_be_bytes();
        let lo = s.next_random().to_be_bytes();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&hi);
        bytes[8..].copy_from_slice(&lo);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// Whether a cancellation was requested.
    pub fn is_cancel_requested(&self) -> bool {
        self.state.borrow().cancel_requested
    }

    /// Resolves when cancellation is requested.
    pub fn cancelled(&self) -> CancelledFuture {
        CancelledFuture { state: self.state.clone() }
    }

    /// Ends this run and starts a new run of the same workflow (same workflow id, new run id)
    /// with `input`, so the history starts fresh. Return it: `return Err(ctx.continue_as_new(&next))`.
    /// A [`WorkflowHandle`](crate::WorkflowHandle) follows the chain to the final result.
    pub fn continue_as_new<T: Serialize>(&self, input: &T) -> WorkflowError {
        match Payload::encode(input) {
            Ok(input) => WorkflowError::ContinueAsNew { input },
            Err(e) => e.into(),
        }
    }

    /// Guards a change to workflow code: `true` for runs that reach this point on the new code
    /// (a marker is recorded), `false` for runs whose history was recorded before the change,
    /// which replay down the old path. The answer is stable for a run.
    ///
    /// ```ignore
    /// if ctx.patched("charge-before-reserve") {
    ///     ctx.activity::<Charge>(order).await?;   // new order of steps
    /// } else {
    ///     ctx.activity::<Reserve>(order).await?;  // old runs keep the old order
    /// }
    /// ```
    #[track_caller]
    pub fn patched(&self, patch_id: &str) -> bool {
        let mut s = self.state.borrow_mut();
        if let Some(known) = s.patches.get(patch_id) {
            return *known;
        }
        let next = s.take_seq();
        let decision = match s.recorded_patches.get(&next) {
            Some(id) if id == patch_id => true,
            _ => !s.replaying,
        };
        if decision {
            s.issue(Command::RecordPatch { seq: next, patch_id: patch_id.to_string() });
        } else {
            // The old code issued no marker here: give the seq back so later commands line up.
            s.untake_seq();
        }
        s.patches.insert(patch_id.to_string(), decision);
        decision
    }

    /// Registers a read-only query handler, answered from the run's current state by
    /// [`RunningWorker::query`](crate::RunningWorker::query) without writing history.
    /// Register it before the first await so that every replay has it.
    pub fn register_query<Q: Query>(&self, handler: impl Fn(Q::Args) -> Q::Output + 'static) {
        let h: crate::replay::QueryHandler = std::rc::Rc::new(move |args: &Payload| {
            let args: Q::Args = args.decode(&format!("arguments of query {}", Q::NAME)).map_err(|e| e.to_string())?;
            Payload::encode(&handler(args)).map_err(|e| e.to_string())
        });
        self.state.borrow_mut().queries.insert(Q::NAME.to_string(), h);
    }

    /// Waits for the next signal `S` (signals of one name are received in the order they
    /// arrived; signals that arrived before the call are kept until received).
    pub fn signal<S: Signal>(&self) -> SignalFuture<S::Payload> {
        SignalFuture { state: self.state.clone(), name: S::NAME, _p: PhantomData }
    }

    /// Takes the next signal `S` if one has arrived, without waiting.
    pub fn try_signal<S: Signal>(&self) -> Option<Result<S::Payload, WorkflowError>> {
        let mut s = self.state.borrow_mut();
        let i = s.signals.iter().position(|(n, _)| n == S::NAME)?;
        let (_, p) = s.signals.remove(i)?;
        Some(p.decode(&format!("payload of signal {}", S::NAME)).map_err(WorkflowError::from))
    }

    /// Runs `fut` with a durable deadline: `Err(Elapsed)` when `d` of workflow time passes
    /// first. (The timer stays in the history and fires harmlessly if `fut` wins.)
    pub async fn timeout<F: Future>(&self, d: Duration, fut: F) -> Result<F::Output, Elapsed> {
        let timer = self.sleep(d);
        let fut = std::pin::pin!(fut);
        match futures::future::select(fut, timer).await {
            futures::future::Either::Left((v, _)) => Ok(v),
            futures::future::Either::Right(_) => Err(Elapsed),
        }
    }

    /// Runs `f` once and records its value; replay returns the recorded value without running
    /// `f`. For small non-deterministic values (a generated id, a config read); do I/O in
    /// activities.
    #[track_caller]
    pub fn side_effect<T, F>(&self, f: F) -> Result<T, WorkflowError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> T,
    {
        let (seq, recorded) = {
            let mut s = self.state.borrow_mut();
            let seq = s.take_seq();
            (seq, s.recorded_side_effects.remove(&seq))
        };
        let value = match recorded {
            Some(p) => p,
            None => Payload::encode(&f())?,
        };
        let out = value.decode("side effect value")?;
        self.state.borrow_mut().issue(Command::RecordSideEffect { seq, value });
        Ok(out)
    }

    /// Schedules activity `A` with its default options ([`Activity::options`]).
    #[track_caller]
    pub fn activity<A: Activity>(&self, input: A::Input) -> ActivityFuture<A::Output> {
        self.activity_with::<A>(input, A::options())
    }

    /// Schedules activity `A` with the given options. The command is issued now, in call
    /// order; await the future for the result.
    #[track_caller]
    pub fn activity_with<A: Activity>(&self, input: A::Input, options: ActivityOptions) -> ActivityFuture<A::Output> {
        self.activity_command::<A>(input, options, false)
    }

    /// Runs activity `A` as a **local activity**, with its default options: in the worker
    /// that runs this workflow task, right away, without a task queue or a lease, recorded by
    /// one `LocalActivityRecorded` marker when it has finished (its retries included). For
    /// short work (a lookup, a small write) where a scheduled activity's round trip through
    /// the store costs more than the work. Its whole run, retries and backoff included, is
    /// bounded by its schedule-to-close timeout, at most [`MAX_LOCAL_ACTIVITY`]; if the worker
    /// dies meanwhile, it runs again from attempt 1 (at least once, as every activity).
    ///
    /// [`MAX_LOCAL_ACTIVITY`]: crate::MAX_LOCAL_ACTIVITY
    #[track_caller]
    pub fn local_activity<A: Activity>(&self, input: A::Input) -> ActivityFuture<A::Output> {
        self.local_activity_with::<A>(input, A::options())
    }

    /// [`local_activity`](Self::local_activity) with explicit options (the retry policy,
    /// start-to-close and schedule-to-close apply; heartbeat and schedule-to-start timeouts do
    /// not).
    #[track_caller]
    pub fn local_activity_with<A: Activity>(
        &self,
        input: A::Input,
        options: ActivityOptions,
    ) -> ActivityFuture<A::Output> {
        self.activity_command::<A>(input, options, true)
    }

    #[track_caller]
    fn activity_command<A: Activity>(
        &self,
        input: A::Input,
        options: ActivityOptions,
        local: bool,
    ) -> ActivityFuture<A::Output> {
        let reject = |reason: String| ActivityFuture {
            state: self.state.clone(),
            seq: None,
            rejected: Some(ActivityFailure::Rejected { activity_type: A::NAME.into(), reason }),
            _out: PhantomData,
        };
        if let Err(e) = options.validate() {
            return reject(e.to_string());
        }
        let input = match Payload::encode(&input) {
            Ok(p) => p,
            Err(e) => return reject(e.to_string()),
        };
        let mut s = self.state.borrow_mut();
        if let Err(e) = input.check_size(&format!("input of activity {}", A::NAME), s.limits.max_payload_bytes) {
            drop(s);
            return reject(e.to_string());
        }
        if s.pending.len() >= s.limits.max_pending_per_run {
            let max = s.limits.max_pending_per_run;
            drop(s);
            return reject(format!(
                "the run already has {max} pending activities and timers (Limits::max_pending_per_run)"
            ));
        }
        let seq = s.take_seq();
        let activity_type = A::NAME.into();
        s.issue(if local {
            Command::RunLocalActivity { seq, activity_type, input, options }
        } else {
            Command::ScheduleActivity { seq, activity_type, input, options }
        });
        drop(s);
        ActivityFuture { state: self.state.clone(), seq: Some(seq), rejected: None, _out: PhantomData }
    }

    /// Sends signal `S` with `payload` to workflow `workflow_id` (its latest run: a child of
    /// this workflow, or any other). The command is recorded now; the future resolves once
    /// the signal is recorded in the target, or with why it could not be
    /// ([`ExternalError::NotFound`], [`ExternalError::AlreadyClosed`]). Delivered once, also
    /// across crashes.
    #[track_caller]
    pub fn signal_workflow<S: Signal>(&self, workflow_id: &str, payload: S::Payload) -> ExternalFuture {
        let target = workflow_id.to_string();
        let payload = match Payload::encode(&payload) {
            Ok(p) => p,
            Err(e) => return ExternalFuture::rejected(&self.state, target, e.to_string()),
        };
        let mut s = self.state.borrow_mut();
        if let Err(e) = payload.check_size(&format!("payload of signal {}", S::NAME), s.limits.max_payload_bytes) {
            drop(s);
            return ExternalFuture::rejected(&self.state, target, e.to_string());
        }
        let seq = s.take_seq();
        s.issue(Command::SignalExternal { seq, workflow_id: target.clone(), name: S::NAME.into(), payload });
        ExternalFuture { state: self.state.clone(), seq: Some(seq), workflow_id: target, rejected: None }
    }

    /// Asks workflow `workflow_id` (its latest run) to cancel, recording `reason` in its
    /// `CancelRequested`. Resolves once the request is recorded in the target (the target
    /// then cancels as it sees fit), or with why it could not be.
    #[track_caller]
    pub fn cancel_workflow(&self, workflow_id: &str, reason: &str) -> ExternalFuture {
        let mut s = self.state.borrow_mut();
        let seq = s.take_seq();
        s.issue(Command::CancelExternal { seq, workflow_id: workflow_id.to_string(), reason: reason.to_string() });
        ExternalFuture {
            state: self.state.clone(),
            seq: Some(seq),
            workflow_id: workflow_id.to_string(),
            rejected: None,
        }
    }

    /// A durable timer: resolves after `d` of workflow time, across restarts. Fails with
    /// [`Cancelled`] when the workflow is cancelled first.
    #[track_caller]
    pub fn sleep(&self, d: Duration) -> TimerFuture {
        let mut s = self.state.borrow_mut();
        let seq = s.take_seq();
        let fire_at = s.now.add(d);
        s.issue(Command::StartTimer { seq, fire_at });
        TimerFuture { state: self.state.clone(), seq }
    }
}

/// A handle on a pending activity or timer, to cancel it from workflow code without
/// cancelling the run (see [`ActivityFuture::handle`], [`TimerFuture::handle`]). Cheap to
/// clone; it outlives the future, so the future can be moved into `ctx.timeout` or a
/// `select` and still be cancelled afterwards.
///
/// Cancellation is *try-cancel*, as Temporal's default: the future resolves at once (an
/// activity with [`ActivityFailure::Cancelled`], a timer with [`Cancelled`]), the cancellation
/// is recorded (`CommandCancelled`, then `ActivityCancelled` or `TimerCancelled`), the
/// activity's task is removed, and a running attempt learns it at its next heartbeat
/// ([`ActivityContext::cancelled`](crate::ActivityContext::cancelled)) and its late result,
/// if any, is not recorded. To abandon an activity instead (let it run, ignore its result),
/// drop its future without cancelling it.
///
/// A child is asked to cancel (`CommandCancelled`, then `ChildCancelRequested` once it has
/// started), as when its parent is cancelled: its future resolves when the child ends (with
/// [`ChildEnd::Cancelled`] when the child honours the request, or its result if it finishes
/// anyway), so the parent waits for the child's cleanup, as Temporal's default for children.
#[derive(Clone)]
pub struct CommandHandle {
    state: Rc<RefCell<RunState>>,
    seq: Option<Seq>,
}

impl CommandHandle {
    /// Cancels the activity, timer or child if it is still pending; returns whether it was
    /// (a command that already finished, or was already cancelled, is left alone).
    #[track_caller]
    pub fn cancel(&self) -> bool {
        match self.seq {
            Some(seq) => self.state.borrow_mut().cancel_command(seq),
            None => false,
        }
    }

    /// Whether the activity, timer or child still waits for its outcome.
    pub fn is_pending(&self) -> bool {
        self.seq.is_some_and(|seq| self.state.borrow().pending.contains_key(&seq))
    }
}

/// The pending result of an activity.
#[must_use = "an activity's result is only observed when awaited"]
pub struct ActivityFuture<O> {
    state: Rc<RefCell<RunState>>,
    seq: Option<Seq>,
    rejected: Option<ActivityFailure>,
    _out: PhantomData<fn() -> O>,
}

impl<O> Unpin for ActivityFuture<O> {}

impl<O> ActivityFuture<O> {
    /// A handle to cancel this activity later (see [`CommandHandle`]).
    pub fn handle(&self) -> CommandHandle {
        CommandHandle { state: self.state.clone(), seq: self.seq }
    }

    /// Cancels this activity (try-cancel, see [`CommandHandle`]): awaiting the future then
    /// gives [`ActivityFailure::Cancelled`]. Returns whether it was pending.
    #[track_caller]
    pub fn cancel(&self) -> bool {
        self.handle().cancel()
    }
}

impl<O: DeserializeOwned> Future for ActivityFuture<O> {
    type Output = Result<O, ActivityFailure>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(f) = self.rejected.take() {
            return Poll::Ready(Err(f));
        }
        let Some(seq) = self.seq else {
            return Poll::Pending;
        };
        let mut s = self.state.borrow_mut();
        match s.take_resolution(seq, cx.waker()) {
            Some(Resolution::Activity { activity_type, result }) => Poll::Ready(match result {
                Ok(p) => {
                    p.decode(&format!("result of activity {activity_type}")).map_err(|e| ActivityFailure::Failed {
                        activity_type,
                        attempts: 0,
                        error: crate::ActivityError::non_retryable("PayloadDecode", e.to_string()),
                    })
                }
                Err(f) => Err(f),
            }),
            Some(_) | None => Poll::Pending,
        }
    }
}

/// Why a signal or a cancellation for another workflow was not delivered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExternalError {
    /// No workflow has this id (or its runs were removed by retention).
    #[error("no workflow {workflow_id:?} to deliver to")]
    NotFound {
        /// The target.
        workflow_id: String,
    },
    /// The workflow's latest run is closed.
    #[error("workflow {workflow_id:?} is already closed")]
    AlreadyClosed {
        /// The target.
        workflow_id: String,
    },
    /// The request could not be made (its payload does not encode or is too large).
    #[error("cannot send to workflow {workflow_id:?}: {reason}")]
    Rejected {
        /// The target.
        workflow_id: String,
        /// Why.
        reason: String,
    },
}

impl From<ExternalError> for WorkflowError {
    fn from(e: ExternalError) -> Self {
        let kind = match &e {
            ExternalError::NotFound { .. } => "ExternalNotFound",
            ExternalError::AlreadyClosed { .. } => "ExternalAlreadyClosed",
            ExternalError::Rejected { .. } => "ExternalRejected",
        };
        WorkflowError::new(kind, e.to_string())
    }
}

/// The pending outcome of [`WorkflowContext::signal_workflow`] or
/// [`WorkflowContext::cancel_workflow`].
#[must_use = "the delivery's outcome is only observed when awaited"]
pub struct ExternalFuture {
    state: Rc<RefCell<RunState>>,
    seq: Option<Seq>,
    workflow_id: String,
    rejected: Option<String>,
}

impl ExternalFuture {
    fn rejected(state: &Rc<RefCell<RunState>>, workflow_id: String, reason: String) -> Self {
        ExternalFuture { state: state.clone(), seq: None, workflow_id, rejected: Some(reason) }
    }
}

impl Future for ExternalFuture {
    type Output = Result<(), ExternalError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(reason) = self.rejected.take() {
            return Poll::Ready(Err(ExternalError::Rejected { workflow_id: self.workflow_id.clone(), reason }));
        }
        let Some(seq) = self.seq else {
            return Poll::Pending;
        };
        let resolution = self.state.borrow_mut().take_resolution(seq, cx.waker());
        let workflow_id = self.workflow_id.clone();
        match resolution {
            Some(Resolution::External { outcome }) => Poll::Ready(match outcome {
                ExternalOutcome::Delivered => Ok(()),
                ExternalOutcome::NotFound => Err(ExternalError::NotFound { workflow_id }),
                ExternalOutcome::AlreadyClosed => Err(ExternalError::AlreadyClosed { workflow_id }),
            }),
            Some(_) | None => Poll::Pending,
        }
    }
}

/// A pending durable timer.
#[must_use = "a timer only delays code that awaits it"]
pub struct TimerFuture {
    state: Rc<RefCell<RunState>>,
    seq: Seq,
}

impl TimerFuture {
    /// A handle to cancel this timer later (see [`CommandHandle`]).
    pub fn handle(&self) -> CommandHandle {
        CommandHandle { state: self.state.clone(), seq: Some(self.seq) }
    }

    /// Cancels this timer: awaiting it then gives [`Cancelled`]. Returns whether it was
    /// pending.
    #[track_caller]
    pub fn cancel(&self) -> bool {
        self.handle().cancel()
    }
}

impl Future for TimerFuture {
    type Output = Result<(), Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.state.borrow_mut();
        match s.take_resolution(self.seq, cx.waker()) {
            Some(Resolution::Timer { fired }) => Poll::Ready(if fired { Ok(()) } else { Err(Cancelled) }),
            Some(_) | None => Poll::Pending,
        }
    }
}

/// Resolves when the workflow's cancellation is requested.
pub struct CancelledFuture {
    state: Rc<RefCell<RunState>>,
}

impl Future for CancelledFuture {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.state.borrow_mut();
        if s.cancel_requested {
            Poll::Ready(())
        } else {
            s.cancel_wakers.push(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// How a child workflow is started.
///
/// ```
/// use workflow_core::{ChildWorkflowOptions, ParentClosePolicy};
/// let options = ChildWorkflowOptions::default()
///     .id("batch-7/chunk-3")
///     .parent_close_policy(ParentClosePolicy::Abandon);
/// assert_eq!(options.id.as_deref(), Some("batch-7/chunk-3"));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ChildWorkflowOptions {
    /// The child's workflow id. Default: `<parent workflow id>/child-<seq>`, deterministic.
    pub id: Option<String>,
    /// What happens to the child when the parent closes. Default: terminate it.
    pub parent_close_policy: ParentClosePolicy,
    /// Retry the child as a whole: a failed child run is followed by a new run after the
    /// policy's backoff; the parent sees the last run's outcome. Default: no retries.
    pub retry_policy: Option<crate::RetryPolicy>,
    /// Close a child run as timed out after this long. Default: no limit.
    pub run_timeout: Option<Duration>,
    /// Close the child as timed out when all its runs take longer than this. Default: no limit.
    pub execution_timeout: Option<Duration>,
}

impl ChildWorkflowOptions {
    /// Sets the child's workflow id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the child's retry policy.
    pub fn retry_policy(mut self, p: crate::RetryPolicy) -> Self {
        self.retry_policy = Some(p);
        self
    }

    /// Sets the child's run timeout.
    pub fn run_timeout(mut self, d: Duration) -> Self {
        self.run_timeout = Some(d);
        self
    }

    /// Sets the child's execution timeout.
    pub fn execution_timeout(mut self, d: Duration) -> Self {
        self.execution_timeout = Some(d);
        self
    }

    /// Sets the parent-close policy.
    pub fn parent_close_policy(mut self, p: ParentClosePolicy) -> Self {
        self.parent_close_policy = p;
        self
    }
}

impl WorkflowContext {
    /// Starts child workflow `W` with default options.
    #[track_caller]
    pub fn child<W: Workflow>(&self, input: W::Input) -> ChildFuture<W::Output> {
        self.child_with::<W>(input, ChildWorkflowOptions::default())
    }

    /// Starts child workflow `W`. The child is a run of its own, with its own history; the
    /// future resolves when it ends. A failed, cancelled or terminated child, or one that
    /// could not start (unknown type, id in use), resolves to a [`ChildFailure`].
    #[track_caller]
    pub fn child_with<W: Workflow>(&self, input: W::Input, options: ChildWorkflowOptions) -> ChildFuture<W::Output> {
        let mut s = self.state.borrow_mut();
        let seq = s.take_seq();
        let workflow_id = options.id.clone().unwrap_or_else(|| format!("{}/child-{seq}", s.workflow_id));
        let reject = |reason: String| ChildFailure {
            workflow_id: workflow_id.clone(),
            workflow_type: W::NAME.into(),
            kind: ChildEnd::StartFailed,
            cause: Some(crate::Failure::new("ChildStartRejected", reason)),
        };
        let checked = crate::ids::validate_id("child workflow id", &workflow_id, s.limits.max_id_bytes)
            .map_err(|e| e.to_string())
            .and_then(|_| options.retry_policy.as_ref().map_or(Ok(()), |p| p.validate().map_err(|e| e.to_string())))
            .and_then(|_| match (options.run_timeout, options.execution_timeout) {
                (Some(Duration::ZERO), _) | (_, Some(Duration::ZERO)) => {
                    Err("child timeouts must be above zero (or unset)".to_string())
                }
                _ => Ok(()),
            })
            .and_then(|_| Payload::encode(&input).map_err(|e| e.to_string()))
            .and_then(|p| {
                p.check_size(&format!("input of child workflow {}", W::NAME), s.limits.max_payload_bytes)
                    .map(|_| p)
                    .map_err(|e| e.to_string())
            });
        let input = match checked {
            Ok(p) => p,
            Err(reason) => {
                // The seq stays consumed without a command: a rejection is deterministic.
                return ChildFuture {
                    state: self.state.clone(),
                    seq,
                    rejected: Some(reject(reason)),
                    _out: PhantomData,
                };
            }
        };
        let start = crate::history::RunStart {
            retry_policy: options.retry_policy.clone(),
            run_timeout: options.run_timeout,
            execution_deadline: options.execution_timeout.map(|t| s.now.add(t)),
            ..crate::history::RunStart::plain()
        };
        s.issue(Command::StartChild {
            seq,
            workflow_type: W::NAME.into(),
            workflow_id,
            input,
            parent_close_policy: options.parent_close_policy,
            start,
        });
        drop(s);
        ChildFuture { state: self.state.clone(), seq, rejected: None, _out: PhantomData }
    }
}

/// The pending result of a child workflow.
#[must_use = "a child's result is only observed when awaited"]
pub struct ChildFuture<O> {
    state: Rc<RefCell<RunState>>,
    seq: Seq,
    rejected: Option<ChildFailure>,
    _out: PhantomData<fn() -> O>,
}

impl<O> Unpin for ChildFuture<O> {}

impl<O> ChildFuture<O> {
    /// A handle to cancel this child later (see [`CommandHandle`]).
    pub fn handle(&self) -> CommandHandle {
        CommandHandle { state: self.state.clone(), seq: self.rejected.is_none().then_some(self.seq) }
    }

    /// Asks this child to cancel, without cancelling this run (see [`CommandHandle`]):
    /// awaiting the future then gives the child's end, [`ChildEnd::Cancelled`] when it
    /// honours the request. Returns whether it was pending and not asked already.
    #[track_caller]
    pub fn cancel(&self) -> bool {
        self.handle().cancel()
    }
}

impl<O: DeserializeOwned> Future for ChildFuture<O> {
    type Output = Result<O, ChildFailure>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(f) = self.rejected.take() {
            return Poll::Ready(Err(f));
        }
        let mut s = self.state.borrow_mut();
        let who = s.pending_child(self.seq).map(|(t, id)| (t.to_string(), id.to_string()));
        match s.take_resolution(self.seq, cx.waker()) {
            Some(Resolution::Child { result }) => Poll::Ready(match result {
                Ok(p) => p.decode("child workflow result").map_err(|e| ChildFailure {
                    workflow_id: who.as_ref().map(|w| w.1.clone()).unwrap_or_default(),
                    workflow_type: who.map(|w| w.0).unwrap_or_default(),
                    kind: ChildEnd::Failed,
                    cause: Some(crate::Failure::new("PayloadDecode", e.to_string())),
                }),
                Err(f) => Err(f),
            }),
            Some(_) | None => Poll::Pending,
        }
    }
}

/// A signal: a named, typed message sent to a running workflow with
/// [`Client::signal`](crate::Client::signal).
///
/// ```
/// use workflow_core::Signal;
/// struct Approve;
/// impl Signal for Approve {
///     const NAME: &'static str = "approve";
///     type Payload = String;
/// }
/// ```
pub trait Signal: 'static {
    /// The stable name recorded in histories.
    const NAME: &'static str;
    /// The payload type.
    type Payload: Serialize + DeserializeOwned + 'static;
}

/// The deadline of [`WorkflowContext::timeout`] passed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("deadline elapsed")]
pub struct Elapsed;

impl From<Elapsed> for WorkflowError {
    fn from(_: Elapsed) -> Self {
        WorkflowError::new("Timeout", "a workflow deadline elapsed")
    }
}

/// Waits for the next signal of one name.
#[must_use = "a signal is only received when awaited"]
pub struct SignalFuture<P> {
    state: Rc<RefCell<RunState>>,
    name: &'static str,
    _p: PhantomData<fn() -> P>,
}

impl<P> Unpin for SignalFuture<P> {}

impl<P: DeserializeOwned> Future for SignalFuture<P> {
    type Output = Result<P, WorkflowError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.state.borrow_mut();
        match s.signals.iter().position(|(n, _)| n == self.name) {
            Some(i) => {
                let (_, p) = s.signals.remove(i).expect("index from position");
                Poll::Ready(p.decode(&format!("payload of signal {}", self.name)).map_err(WorkflowError::from))
            }
            None => {
                s.signal_wakers.push(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A query: a named, typed, read-only question answered from a workflow's current state.
///
/// ```
/// use workflow_core::Query;
/// struct Progress;
/// impl Query for Progress {
///     const NAME: &'static str = "progress";
///     type Args = ();
///     type Output = u32;
/// }
/// ```
pub trait Query: 'static {
    /// The query's name.
    const NAME: &'static str;
    /// Its arguments.
    type Args: Serialize + DeserializeOwned + 'static;
    /// Its answer.
    type Output: Serialize + DeserializeOwned + 'static;
}
