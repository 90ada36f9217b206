//! The records a store keeps.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::activity::ActivityError;
use crate::error::Failure;
use crate::history::{EventKind, ParentRef, RunStart, TimeoutKind};
use crate::ids::{EventId, RunId, Seq};
use crate::options::ActivityOptions;
use crate::payload::Payload;
use crate::policy::ParentClosePolicy;
use crate::time::{duration_ms, Timestamp};

/// A run's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Not finished.
    Running,
    /// Finished with a result.
    Completed,
    /// Finished with a failure.
    Failed,
    /// Finished cancelled.
    Cancelled,
    /// Terminated.
    Terminated,
    /// Ended by starting a new run of the same workflow id (continue-as-new).
    ContinuedAsNew,
    /// Exceeded its run timeout.
    TimedOut,
}

impl RunStatus {
    /// Whether the run has finished.
    pub fn is_closed(self) -> bool {
        self != RunStatus::Running
    }

    /// The status a terminal event gives a run.
    pub fn from_terminal(kind: &EventKind) -> Option<RunStatus> {
        Some(match kind {
            EventKind::WorkflowCompleted { .. } => RunStatus::Completed,
            EventKind::WorkflowFailed { .. } => RunStatus::Failed,
            EventKind::WorkflowCancelled => RunStatus::Cancelled,
            EventKind::WorkflowTerminated { .. } => RunStatus::Terminated,
            EventKind::WorkflowContinuedAsNew { .. } => RunStatus::ContinuedAsNew,
            EventKind::WorkflowTimedOut => RunStatus::TimedOut,
            _ => return None,
        })
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Terminated => "terminated",
            RunStatus::ContinuedAsNew => "continued_as_new",
            RunStatus::TimedOut => "timed_out",
        })
    }
}

impl std::str::FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "running" => RunStatus::Running,
            "completed" => RunStatus::Completed,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            "terminated" => RunStatus::Terminated,
            "continued_as_new" => RunStatus::ContinuedAsNew,
            "timed_out" => RunStatus::TimedOut,
            other => {
                return Err(format!(
                    "unknown status {other:?} (running, completed, failed, cancelled, terminated, continued_as_new, timed_out)"
                ))
            }
        })
    }
}

/// What the store knows about a run, kept in step with its history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The workflow id.
    pub workflow_id: String,
    /// The run.
    pub run_id: RunId,
    /// The workflow's name.
    pub workflow_type: String,
    /// Status.
    pub status: RunStatus,
    /// When it started.
    pub start_time: Timestamp,
    /// When it closed.
    pub close_time: Option<Timestamp>,
    /// Its input.
    pub input: Payload,
    /// Its result, when completed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::payload::opt_payload")]
    pub result: Option<Payload>,
    /// Its failure, when failed (or the termination reason).
    pub failure: Option<Failure>,
    /// The parent run, for a child.
    pub parent: Option<ParentRef>,
    /// The last event's id.
    pub last_event_id: EventId,
    /// Why its workflow task keeps failing (nondeterminism, unknown type, panic), if it does.
    pub task_failure: Option<String>,
}

impl RunInfo {
    /// Updates the info for an event appended at `time`: a terminal event sets the status,
    /// the close time and the result or failure. Stores call this for every appended event.
    pub fn apply_event(&mut self, kind: &EventKind, time: Timestamp) {
        let Some(status) = RunStatus::from_terminal(kind) else { return };
        self.status = status;
        self.close_time = Some(time);
        match kind {
            EventKind::WorkflowCompleted { result } => self.result = Some(result.clone()),
            EventKind::WorkflowFailed { failure, .. } => self.failure = Some(failure.clone()),
            EventKind::WorkflowTerminated { reason } => self.failure = Some(Failure::new("Terminated", reason.clone())),
            EventKind::WorkflowTimedOut => {
                self.failure = Some(Failure::new("RunTimedOut", "the run exceeded its run timeout"))
            }
            _ => {}
        }
    }
}

/// A filter for [`Store::list_runs`](super::Store::list_runs).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RunFilter {
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs of this workflow type.
    pub workflow_type: Option<String>,
    /// At most this many.
    pub limit: Option<usize>,
}

impl RunFilter {
    /// Filters by status.
    pub fn status(mut self, s: RunStatus) -> Self {
        self.status = Some(s);
        self
    }

    /// Filters by workflow type.
    pub fn workflow_type(mut self, t: impl Into<String>) -> Self {
        self.workflow_type = Some(t.into());
        self
    }

    /// Limits the count.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// Whether `info` passes the filter (ignoring the limit).
    pub fn matches(&self, info: &RunInfo) -> bool {
        self.status.is_none_or(|s| s == info.status)
            && self.workflow_type.as_deref().is_none_or(|t| t == info.workflow_type)
    }
}

/// Identifies a task. Stable per purpose, so re-arming a task overwrites it rather than
/// duplicating it: one workflow task per run, one activity task per activity, one timer task
/// per timer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskKey(pub String);

impl TaskKey {
    /// The workflow task of a run.
    pub fn workflow(run_id: &RunId) -> TaskKey {
        TaskKey(format!("wf/{run_id}"))
    }

    /// The task of activity `seq` of a run.
    pub fn activity(run_id: &RunId, seq: Seq) -> TaskKey {
        TaskKey(format!("act/{run_id}/{seq}"))
    }

    /// The task that starts child `seq` of a run.
    pub fn start_child(run_id: &RunId, seq: Seq) -> TaskKey {
        TaskKey(format!("child/{run_id}/{seq}"))
    }

    /// The task that delivers command `seq` of a run (a signal or a cancellation) to another
    /// workflow.
    pub fn external(run_id: &RunId, seq: Seq) -> TaskKey {
        TaskKey(format!("external/{run_id}/{seq}"))
    }

    /// The task that delivers the end of child `seq` to its parent run.
    pub fn child_closed(parent_run_id: &RunId, seq: Seq) -> TaskKey {
        TaskKey(format!("childclosed/{parent_run_id}/{seq}"))
    }

    /// The task that applies a parent-close policy to a child run.
    pub fn parent_closed(child_run_id: &RunId) -> TaskKey {
        TaskKey(format!("parentclosed/{child_run_id}"))
    }

    /// The task that creates run `run_id` (a successor).
    pub fn start_run(run_id: &RunId) -> TaskKey {
        TaskKey(format!("start/{run_id}"))
    }

    /// The task that asks a run to cancel.
    pub fn request_cancel(run_id: &RunId) -> TaskKey {
        TaskKey(format!("cancel/{run_id}"))
    }

    /// The run-timeout task of a run.
    pub fn run_timeout(run_id: &RunId) -> TaskKey {
        TaskKey(format!("runtimeout/{run_id}"))
    }

    /// The task of timer `seq` of a run.
    pub fn timer(run_id: &RunId, seq: Seq) -> TaskKey {
        TaskKey(format!("timer/{run_id}/{seq}"))
    }
}

impl fmt::Display for TaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which workers take a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskQueue {
    /// Workflow tasks and timer firings: deterministic work.
    Workflow,
    /// Activity attempts.
    Activity,
}

/// Everything needed to run an activity attempt without reading the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityTask {
    /// The workflow id.
    pub workflow_id: String,
    /// Command position.
    pub seq: Seq,
    /// The activity's name.
    pub activity_type: String,
    /// Its input.
    pub input: Payload,
    /// Its options.
    pub options: ActivityOptions,
    /// The attempt this task runs next, from 1.
    pub attempt: u32,
    /// When the activity was scheduled.
    pub scheduled_at: Timestamp,
    /// The previous attempt's error.
    pub last_error: Option<ActivityError>,
    /// The latest heartbeat details, from this or an earlier attempt.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::payload::opt_payload")]
    pub heartbeat: Option<Payload>,
    /// When the latest heartbeat was recorded.
    pub heartbeat_at: Option<Timestamp>,
    /// Attempts so far that were lost with their worker (a crash, a hang): not counted
    /// against the retry policy's `maximum_attempts`.
    #[serde(default)]
    pub lost_attempts: u32,
    /// Attempts lost in a row without heartbeat progress in between; at
    /// [`MAX_LOST_IN_A_ROW`] the activity fails (a crash loop, not bad luck).
    #[serde(default)]
    pub lost_streak: u32,
    /// `heartbeat_at` when the last attempt was lost (to tell progress since).
    #[serde(default)]
    pub lost_heartbeat_at: Option<Timestamp>,
    /// The current attempt's outcome, delivered through its task token
    /// ([`Client::complete_activity`](crate::Client::complete_activity)) and waiting for a
    /// worker to record it through the retry policy, as if the attempt had returned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub async_result: Option<Box<AsyncResult>>,
    /// The workflow asked to cancel the activity and waits for it to end
    /// ([`ActivityCancellationType::WaitCancellationCompleted`](crate::ActivityCancellationType))
    /// while no attempt held the task: the worker leasing it records the cancellation instead
    /// of running an attempt. (A running attempt learns the request from the history.)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel_requested: bool,
}

/// An attempt's outcome delivered from outside the activity's code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AsyncResult {
    /// What it produced.
    pub outcome: AsyncOutcome,
    /// The worker that started the attempt.
    pub worker: String,
    /// When the attempt started.
    pub started_at: Timestamp,
    /// When the outcome was delivered.
    pub ended_at: Timestamp,
}

/// What an attempt completed from outside produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AsyncOutcome {
    /// A result.
    Completed {
        /// The result.
        result: Payload,
    },
    /// An error, retried by the activity's retry policy like any attempt's error.
    Failed {
        /// The error.
        error: ActivityError,
    },
}

/// How many attempts of one activity may be lost with their workers in a row, without a
/// heartbeat in between, before the activity fails: 10. Lost attempts are not counted
/// against `maximum_attempts` (a crash is not the activity's fault), so this bound is what
/// stops an activity that crashes its worker every time.
pub const MAX_LOST_IN_A_ROW: u32 = 10;

/// What a task does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskKind {
    /// Advance the run's workflow code with the events it has not seen. `failures` counts
    /// failed attempts (for backoff).
    Workflow {
        /// Consecutive failures of this workflow task.
        failures: u32,
    },
    /// Run an activity attempt.
    Activity(Box<ActivityTask>),
    /// Fire timer `seq`.
    Timer {
        /// Command position.
        seq: Seq,
    },
    /// Create the child run that command `seq` asked for, then tell the parent.
    StartChild(Box<StartChildTask>),
    /// Child run `child_run_id` (command `seq` of this run) closed: deliver its outcome.
    ChildClosed {
        /// Command position in this (the parent) run.
        seq: Seq,
        /// The child's run.
        child_run_id: RunId,
    },
    /// Create this (not yet existing) run: the successor of a run that continued as new or
    /// failed with retries left.
    StartRun(Box<StartRunTask>),
    /// This run's run timeout elapsed: close it as timed out.
    RunTimeout,
    /// Ask this run to cancel (its parent was cancelled).
    RequestCancel {
        /// Recorded in the run's `CancelRequested` event.
        reason: String,
    },
    /// Deliver this run's command `seq`, a signal or a cancellation, to another workflow,
    /// then record the outcome in this run.
    DeliverExternal(Box<ExternalTask>),
    /// This run's parent closed: apply the parent-close policy.
    ParentClosed {
        /// The policy to apply.
        policy: ParentClosePolicy,
        /// The parent's workflow id (recorded in the reason).
        parent_workflow_id: String,
    },
}

/// Everything needed to create a successor run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartRunTask {
    /// The workflow id (the same as the previous run's).
    pub workflow_id: String,
    /// The workflow type.
    pub workflow_type: String,
    /// The new run's input.
    pub input: Payload,
    /// The parent, inherited from the previous run.
    pub parent: Option<ParentRef>,
    /// How it starts (continued-from, attempt, policy, timeout).
    pub start: RunStart,
    /// When the new run starts (later than now for a retry's backoff).
    pub start_at: Timestamp,
}

/// Everything needed to start a child run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartChildTask {
    /// Command position in the parent.
    pub seq: Seq,
    /// The parent's workflow id.
    pub parent_workflow_id: String,
    /// The child's workflow type.
    pub workflow_type: String,
    /// The child's workflow id.
    pub workflow_id: String,
    /// Its input.
    pub input: Payload,
    /// Its retry policy and timeouts.
    #[serde(default)]
    pub start: RunStart,
}

/// A unit of work with a visibility time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Identity.
    pub key: TaskKey,
    /// The run it belongs to.
    pub run_id: RunId,
    /// Not leased before this time.
    pub visible_at: Timestamp,
    /// How long a lease lasts.
    #[serde(with = "duration_ms")]
    pub lease_duration: Duration,
    /// What to do.
    pub kind: TaskKind,
}

impl Task {
    /// The queue the task belongs to.
    pub fn queue(&self) -> TaskQueue {
        match self.kind {
            TaskKind::Activity(_) => TaskQueue::Activity,
            TaskKind::Workflow { .. }
            | TaskKind::Timer { .. }
            | TaskKind::StartChild(_)
            | TaskKind::ChildClosed { .. }
            | TaskKind::StartRun(_)
            | TaskKind::RunTimeout
            | TaskKind::RequestCancel { .. }
            | TaskKind::DeliverExternal(_)
            | TaskKind::ParentClosed { .. } => TaskQueue::Workflow,
        }
    }

    /// The workflow task of a run, visible at `at`.
    pub fn workflow(run_id: &RunId, at: Timestamp) -> Task {
        Task {
            key: TaskKey::workflow(run_id),
            run_id: run_id.clone(),
            visible_at: at,
            lease_duration: WORKFLOW_TASK_LEASE,
            kind: TaskKind::Workflow { failures: 0 },
        }
    }
}

/// How long a worker holds a workflow-queue task (a workflow task, a timer firing, a child
/// start, ...) before another worker may take it over: 10 seconds, Temporal's default
/// workflow task timeout. These tasks take milliseconds; the lease only matters when their
/// worker died, and bounds how long its runs wait for another worker.
pub const WORKFLOW_TASK_LEASE: Duration = Duration::from_secs(10);

/// Proof of holding a lease.
pub type LeaseToken = u64;

/// A task with a lease.
#[derive(Clone, Debug, PartialEq)]
pub struct LeasedTask {
    /// The task.
    pub task: Task,
    /// The lease token, needed to complete the task or heartbeat.
    pub token: LeaseToken,
    /// Whether an earlier lease ended without completion (it expired, or its process died).
    pub previous_lease_lost: bool,
    /// Who held that lost lease and since when, when the store knows.
    pub previous_holder: Option<LeaseHolder>,
}

/// The holder of a lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    /// The worker's identity.
    pub owner: String,
    /// When the lease was taken (when its attempt started).
    pub since: Timestamp,
}

/// A task as [`Store::list_tasks`](super::Store::list_tasks) shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingTask {
    /// The task.
    pub task: Task,
    /// The lease holder and its expiry, when leased.
    pub lease: Option<(String, Timestamp)>,
}

/// A change to a task, made atomically with an append.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskOp {
    /// Creates or replaces a task (a leased task keeps its lease and is re-armed).
    Upsert(Task),
    /// Deletes a task.
    Delete(TaskKey),
}

/// What to do with a leased task at the end of an append.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// The task.
    pub key: TaskKey,
    /// The lease token.
    pub token: LeaseToken,
    /// `true`: give the task back untouched (shutdown); `false`: it is done.
    pub release: bool,
}

/// A signal or a cancellation for another workflow ([`TaskKind::DeliverExternal`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExternalTask {
    /// The command's position in the sending run.
    pub seq: Seq,
    /// The target workflow (its latest run).
    pub workflow_id: String,
    /// The sender's workflow id (recorded in a cancellation's reason).
    pub sender_workflow_id: String,
    /// What to deliver.
    pub action: ExternalAction,
}

/// What an [`ExternalTask`] delivers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExternalAction {
    /// Signal `name` with `payload`.
    Signal {
        /// The signal's name.
        name: String,
        /// Its payload.
        payload: Payload,
    },
    /// A cancellation request.
    Cancel {
        /// Recorded in the target's `CancelRequested`.
        reason: String,
    },
}

/// A new run.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRun {
    /// The run's info (status `Running`, `last_event_id` 1).
    pub info: RunInfo,
    /// The `WorkflowStarted` event.
    pub started: EventKind,
    /// Its time.
    pub time: Timestamp,
    /// Leases the run's first workflow task in the same write that creates it (eager
    /// workflow start): the worker that asked runs it at once, without going back to the
    /// store. [`Store::create_run`](super::Store::create_run) returns the lease. Only the
    /// run's workflow task ([`TaskKey::workflow`]) can be named.
    pub lease: Option<EagerLease>,
}

impl NewRun {
    /// A first run of `workflow_type` under `workflow_id`, starting at `time`, with no parent,
    /// a plain start and seed 0; set the rest with the setters.
    pub fn new(run_id: RunId, workflow_type: &str, workflow_id: &str, input: Payload, time: Timestamp) -> NewRun {
        NewRun {
            info: RunInfo {
                workflow_id: workflow_id.to_string(),
                run_id,
                workflow_type: workflow_type.to_string(),
                status: RunStatus::Running,
                start_time: time,
                close_time: None,
                input: input.clone(),
                result: None,
                failure: None,
                parent: None,
                last_event_id: 1,
                task_failure: None,
            },
            started: EventKind::WorkflowStarted {
                workflow_type: workflow_type.to_string(),
                workflow_id: workflow_id.to_string(),
                input,
                seed: 0,
                parent: None,
                start: RunStart::plain(),
            },
            time,
            lease: None,
        }
    }

    /// Leases the run's first workflow task to `owner` from `now` in the write that creates
    /// the run (see [`NewRun::lease`]).
    pub fn lease_to(mut self, owner: impl Into<String>, now: Timestamp) -> Self {
        let key = TaskKey::workflow(&self.info.run_id);
        self.lease = Some(EagerLease { owner: owner.into(), now, keys: vec![key] });
        self
    }

    /// Sets the parent (on the info and the event).
    pub fn parent(mut self, p: Option<ParentRef>) -> Self {
        self.info.parent = p.clone();
        if let EventKind::WorkflowStarted { parent, .. } = &mut self.started {
            *parent = p;
        }
        self
    }

    /// Sets how the run starts.
    pub fn start(mut self, s: RunStart) -> Self {
        if let EventKind::WorkflowStarted { start, .. } = &mut self.started {
            *start = s;
        }
        self
    }

    /// Sets the seed of the run's deterministic randomness.
    pub fn seed(mut self, s: u64) -> Self {
        if let EventKind::WorkflowStarted { seed, .. } = &mut self.started {
            *seed = s;
        }
        self
    }
}

/// An atomic change to one run: events, task changes, a lease completion, an attempt record.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct AppendRequest {
    /// The run.
    pub run_id: RunId,
    /// Fail with a conflict unless the history's last event id is this.
    pub expected_last_event_id: Option<EventId>,
    /// The time recorded on the events (raised to the last event's time if earlier).
    pub time: Timestamp,
    /// Events to append.
    pub events: Vec<EventKind>,
    /// Task changes.
    pub task_ops: Vec<TaskOp>,
    /// A leased task to complete or release.
    pub complete: Option<Completion>,
    /// Sets (`Some(Some(..))`) or clears (`Some(None)`) the run's stuck reason.
    pub task_failure: Option<Option<String>>,
    /// An attempt to add to the attempt log.
    pub attempt: Option<AttemptRecord>,
    /// Tasks upserted by this append to lease at once (eager dispatch): the write that
    /// creates them also records them as leased, so the worker starts them without going
    /// back to the store.
    pub lease: Option<EagerLease>,
}

/// Tasks to lease in the same write that creates them (see [`AppendRequest::lease`]).
#[derive(Clone, Debug, PartialEq)]
pub struct EagerLease {
    /// The lease holder (the worker's identity).
    pub owner: String,
    /// When the leases start; each lasts its task's `lease_duration`.
    pub now: Timestamp,
    /// The tasks, each upserted by the same append. Keys the append does not upsert (or
    /// deletes again, as when the run closes) are not leased.
    pub keys: Vec<TaskKey>,
}

impl AppendRequest {
    /// An empty request for `run_id` at `time`.
    pub fn new(run_id: RunId, time: Timestamp) -> Self {
        AppendRequest {
            run_id,
            expected_last_event_id: None,
            time,
            events: Vec::new(),
            task_ops: Vec::new(),
            complete: None,
            task_failure: None,
            attempt: None,
            lease: None,
        }
    }

    /// Requires the history to end at `id`.
    pub fn expect_last(mut self, id: EventId) -> Self {
        self.expected_last_event_id = Some(id);
        self
    }

    /// Adds events.
    pub fn events(mut self, events: impl IntoIterator<Item = EventKind>) -> Self {
        self.events.extend(events);
        self
    }

    /// Adds a task change.
    pub fn task_op(mut self, op: TaskOp) -> Self {
        self.task_ops.push(op);
        self
    }

    /// Completes a leased task.
    pub fn complete(mut self, key: TaskKey, token: LeaseToken) -> Self {
        self.complete = Some(Completion { key, token, release: false });
        self
    }

    /// Releases a leased task untouched.
    pub fn release(mut self, key: TaskKey, token: LeaseToken) -> Self {
        self.complete = Some(Completion { key, token, release: true });
        self
    }

    /// Records an attempt.
    pub fn attempt(mut self, a: AttemptRecord) -> Self {
        self.attempt = Some(a);
        self
    }

    /// Sets or clears the run's stuck reason.
    pub fn task_failure(mut self, f: Option<String>) -> Self {
        self.task_failure = Some(f);
        self
    }

    /// Leases the tasks `keys` (upserted by this append) to `owner` from `now`, in the same
    /// write; [`AppendOutcome::leased`] returns the leases.
    pub fn lease_to(mut self, owner: impl Into<String>, now: Timestamp, keys: Vec<TaskKey>) -> Self {
        self.lease = Some(EagerLease { owner: owner.into(), now, keys });
        self
    }
}

/// What an append did.
#[derive(Clone, Debug, PartialEq)]
pub struct AppendOutcome {
    /// The history's last event id after the append.
    pub last_event_id: EventId,
    /// The time recorded on the appended events.
    pub time: Timestamp,
    /// The tasks leased by [`AppendRequest::lease`], durable with the append.
    pub leased: Vec<LeasedTask>,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// It returned a result.
    Completed,
    /// It returned an error.
    Failed {
        /// The error.
        error: ActivityError,
    },
    /// It timed out.
    TimedOut {
        /// Which timeout.
        timeout: TimeoutKind,
    },
    /// Its worker disappeared (the lease expired or the process died).
    WorkerLost,
    /// It was cancelled.
    Cancelled,
}

/// One activity attempt, in the attempt log (kept outside the replayed history).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The run.
    pub run_id: RunId,
    /// Command position.
    pub seq: Seq,
    /// The activity's name.
    pub activity_type: String,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The worker.
    pub worker: String,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended.
    pub ended_at: Timestamp,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: AttemptOutcome,
    /// The last heartbeat details it recorded.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::payload::opt_payload")]
    pub last_heartbeat: Option<Payload>,
}
