//! Events: what a run's history records.

use serde::{Deserialize, Serialize};

use crate::activity::ActivityError;
use crate::error::Failure;
use crate::ids::{EventId, RunId, Seq};
use crate::options::ActivityOptions;
use crate::payload::Payload;
use crate::policy::ParentClosePolicy;
use crate::time::Timestamp;

/// One entry of a run's history. Ids start at 1 and increase by one; times never go back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history, from 1.
    pub id: EventId,
    /// When the event was recorded.
    pub time: Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The run that started a child run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParentRef {
    /// The parent's workflow id.
    pub workflow_id: String,
    /// The parent's run.
    pub run_id: RunId,
    /// The command position in the parent that started this child.
    pub seq: Seq,
}

/// Which timeout fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutKind {
    /// One attempt ran too long.
    StartToClose,
    /// The activity as a whole (all attempts) took too long.
    ScheduleToClose,
    /// No worker picked up the activity in time.
    ScheduleToStart,
    /// A running attempt stopped heartbeating.
    Heartbeat,
}

impl std::fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutKind::StartToClose => "start-to-close",
            TimeoutKind::ScheduleToClose => "schedule-to-close",
            TimeoutKind::ScheduleToStart => "schedule-to-start",
            TimeoutKind::Heartbeat => "heartbeat",
        })
    }
}

/// What workflow code receives when an activity does not produce a result. Convert it into a
/// [`WorkflowError`](crate::WorkflowError) with `?` to fail the workflow, or match on it to
/// fall back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActivityFailure {
    /// The last attempt failed and no retry is left (or the error is not retryable).
    #[error("activity {activity_type} failed after {attempts} attempt(s): {error}")]
    Failed {
        /// The activity's name.
        activity_type: String,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        error: ActivityError,
    },
    /// A timeout fired and no retry is left.
    #[error("activity {activity_type} timed out ({timeout}) after {attempts} attempt(s){}", last_error.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default())]
    TimedOut {
        /// The activity's name.
        activity_type: String,
        /// Attempts made.
        attempts: u32,
        /// Which timeout.
        timeout: TimeoutKind,
        /// The last attempt's error, if an earlier attempt failed with one.
        last_error: Option<ActivityError>,
    },
    /// The activity was cancelled because the workflow was cancelled.
    #[error("activity {activity_type} was cancelled")]
    Cancelled {
        /// The activity's name.
        activity_type: String,
    },
    /// The engine refused to schedule it (input not serializable or too large, invalid
    /// options, too many pending activities). Nothing was recorded.
    #[error("activity {activity_type} was not scheduled: {reason}")]
    Rejected {
        /// The activity's name.
        activity_type: String,
        /// Why.
        reason: String,
    },
}

impl ActivityFailure {
    /// The activity's name.
    pub fn activity_type(&self) -> &str {
        match self {
            ActivityFailure::Failed { activity_type, .. }
            | ActivityFailure::TimedOut { activity_type, .. }
            | ActivityFailure::Cancelled { activity_type }
            | ActivityFailure::Rejected { activity_type, .. } => activity_type,
        }
    }

    /// As a recorded [`Failure`] with its cause chain.
    pub fn to_failure(&self) -> Failure {
        // The cause travels in `cause`; the message says only what happened at this level, so
        // the chain reads once: "activity x failed after 3 attempt(s): caused by E: ...".
        let (error_type, message, cause) = match self {
            ActivityFailure::Failed { activity_type, attempts, error } => (
                "ActivityFailed",
                format!("activity {activity_type} failed after {attempts} attempt(s)"),
                Some(error.to_failure()),
            ),
            ActivityFailure::TimedOut { activity_type, attempts, timeout, last_error } => (
                "ActivityTimedOut",
                format!("activity {activity_type} timed out ({timeout}) after {attempts} attempt(s)"),
                last_error.as_ref().map(ActivityError::to_failure),
            ),
            ActivityFailure::Cancelled { .. } => ("ActivityCancelled", self.to_string(), None),
            ActivityFailure::Rejected { .. } => ("ActivityRejected", self.to_string(), None),
        };
        Failure { error_type: error_type.into(), message, details: None, cause: cause.map(Box::new) }
    }
}

/// What happened. Events that record a command carry the command's `seq`; the others are
/// inputs that wake the workflow (completions, timer firings, signals, cancellation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum EventKind {
    /// The run started.
    WorkflowStarted {
        /// The workflow's registered name.
        workflow_type: String,
        /// The workflow id.
        workflow_id: String,
        /// The input.
        input: Payload,
        /// Seed of the run's deterministic random numbers.
        seed: u64,
        /// The parent, for a child run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<ParentRef>,
        /// How the run was started beyond its input: continued-from run, attempt, retry
        /// policy and run timeout.
        #[serde(default, skip_serializing_if = "RunStart::is_plain")]
        start: RunStart,
    },
    /// Workflow code asked for an activity.
    ActivityScheduled {
        /// Command position.
        seq: Seq,
        /// The activity's name.
        activity_type: String,
        /// Its input.
        input: Payload,
        /// Its options.
        options: ActivityOptions,
    },
    /// The attempt that produced the outcome that follows started (recorded with the outcome;
    /// every attempt is in the attempt log).
    ActivityStarted {
        /// Command position.
        seq: Seq,
        /// Attempt number, from 1.
        attempt: u32,
        /// The worker that ran it.
        worker: String,
    },
    /// The activity returned a result.
    ActivityCompleted {
        /// Command position.
        seq: Seq,
        /// The result.
        result: Payload,
    },
    /// The activity failed for good (no retry left, or not retryable).
    ActivityFailed {
        /// Command position.
        seq: Seq,
        /// The failure as the workflow sees it.
        failure: ActivityFailure,
    },
    /// The activity timed out for good.
    ActivityTimedOut {
        /// Command position.
        seq: Seq,
        /// The failure as the workflow sees it.
        failure: ActivityFailure,
    },
    /// Workflow code cancelled its pending command `target` (an activity or a timer) without
    /// cancelling the run; the `ActivityCancelled` or `TimerCancelled` of `target` follows.
    CommandCancelled {
        /// Command position of this cancellation.
        seq: Seq,
        /// Command position of the activity or timer cancelled.
        target: Seq,
    },
    /// The activity was asked to cancel and the workflow waits until it ends
    /// (`ActivityCancellationType::WaitCancellationCompleted`): its running attempt is told;
    /// its end is recorded as usual (`ActivityFailed` with a `cancelled` failure, or its
    /// result).
    ActivityCancelRequested {
        /// Command position of the activity.
        seq: Seq,
    },
    /// The activity was cancelled (the workflow was cancelled while it was pending, or its
    /// code cancelled it: see `CommandCancelled`).
    ActivityCancelled {
        /// Command position.
        seq: Seq,
    },
    /// A local activity (`ctx.local_activity`) ran in the worker of the workflow task that
    /// asked for it; this marker is its only record: no scheduling event, no task.
    LocalActivityRecorded {
        /// Command position.
        seq: Seq,
        /// The activity's name.
        activity_type: String,
        /// Attempts made.
        attempts: u32,
        /// Its result or failure.
        outcome: LocalActivityOutcome,
    },
    /// Workflow code started a durable timer.
    TimerStarted {
        /// Command position.
        seq: Seq,
        /// When it fires.
        fire_at: Timestamp,
    },
    /// The timer fired.
    TimerFired {
        /// Command position.
        seq: Seq,
    },
    /// The timer was cancelled (the workflow was cancelled while it was pending, or its code
    /// cancelled it: see `CommandCancelled`).
    TimerCancelled {
        /// Command position.
        seq: Seq,
    },
    /// A side effect's value, recorded so that replay returns it.
    SideEffectRecorded {
        /// Command position.
        seq: Seq,
        /// The value.
        value: Payload,
    },
    /// Workflow code asked for a child workflow.
    ChildWorkflowInitiated {
        /// Command position.
        seq: Seq,
        /// The child's workflow type.
        workflow_type: String,
        /// The child's workflow id.
        workflow_id: String,
        /// Its input.
        input: Payload,
        /// What happens to it when this run closes.
        parent_close_policy: ParentClosePolicy,
        /// Its retry policy and timeouts.
        #[serde(default, skip_serializing_if = "RunStart::is_plain")]
        start: RunStart,
    },
    /// The child run was created.
    ChildWorkflowStarted {
        /// Command position.
        seq: Seq,
        /// The child's run.
        run_id: RunId,
    },
    /// The child could not be started (its id is in use by another open run).
    ChildWorkflowStartFailed {
        /// Command position.
        seq: Seq,
        /// Why.
        reason: String,
    },
    /// The child completed.
    ChildWorkflowCompleted {
        /// Command position.
        seq: Seq,
        /// Its result.
        result: Payload,
    },
    /// The child failed, was cancelled or terminated.
    ChildWorkflowFailed {
        /// Command position.
        seq: Seq,
        /// How it ended.
        failure: ChildFailure,
    },
    /// Workflow code signalled another workflow (`ctx.signal_workflow`).
    ExternalSignalInitiated {
        /// Command position.
        seq: Seq,
        /// The workflow signalled (its latest run).
        workflow_id: String,
        /// The signal's name.
        signal: String,
        /// Its payload.
        payload: Payload,
    },
    /// Workflow code asked another workflow to cancel (`ctx.cancel_workflow`).
    ExternalCancelInitiated {
        /// Command position.
        seq: Seq,
        /// The workflow asked to cancel (its latest run).
        workflow_id: String,
        /// Recorded in that workflow's `CancelRequested`.
        reason: String,
    },
    /// What became of an `ExternalSignalInitiated` or `ExternalCancelInitiated`.
    ExternalDelivered {
        /// Command position.
        seq: Seq,
        /// Delivered, or why not.
        outcome: ExternalOutcome,
    },
    /// Workflow code took the new path of a change guarded by `ctx.patched(patch_id)`.
    PatchMarker {
        /// Command position.
        seq: Seq,
        /// The change's id.
        patch_id: String,
    },
    /// Child `seq` was asked to cancel: this run was cancelled while it ran, or this run's
    /// code cancelled it (`by_command`).
    ChildCancelRequested {
        /// Command position.
        seq: Seq,
        /// The child's run.
        run_id: RunId,
        /// The `CommandCancelled` that asked, when the code cancelled this child alone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by_command: Option<Seq>,
    },
    /// A client asked for the run to be cancelled.
    CancelRequested {
        /// Why, if the caller said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The workflow command that asked, when a workflow did (`ctx.cancel_workflow`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sender: Option<ExternalSender>,
    },
    /// A signal arrived.
    SignalReceived {
        /// The signal's name.
        name: String,
        /// Its payload.
        payload: Payload,
        /// The workflow command that sent it, when a workflow did (`ctx.signal_workflow`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sender: Option<ExternalSender>,
    },
    /// A client's update was validated and accepted ([`Client::update`](crate::Client::update)):
    /// workflow code receives it through its
    /// [`UpdateReceiver`](crate::workflow::UpdateReceiver), in arrival order with signals.
    UpdateAccepted {
        /// The update's id: a call retried with the same id finds this one.
        update_id: String,
        /// The update's name.
        name: String,
        /// Its arguments.
        args: Payload,
    },
    /// Workflow code answered accepted update `update_id`; the caller waiting receives this.
    UpdateCompleted {
        /// Command position.
        seq: Seq,
        /// The update answered.
        update_id: String,
        /// The answer: a result or a failure.
        outcome: UpdateOutcome,
    },
    /// The run completed with a result.
    WorkflowCompleted {
        /// The result.
        result: Payload,
    },
    /// The run failed.
    WorkflowFailed {
        /// Why.
        failure: Failure,
        /// The run that retries it, when the workflow's retry policy allows another attempt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_run: Option<RunId>,
    },
    /// The run ended by starting a fresh run of the same workflow id with new input.
    WorkflowContinuedAsNew {
        /// The new run's input.
        input: Payload,
        /// The new run.
        new_run_id: RunId,
    },
    /// The run exceeded its run timeout.
    WorkflowTimedOut,
    /// The run ended cancelled.
    WorkflowCancelled,
    /// The run was terminated; no workflow code ran after this.
    WorkflowTerminated {
        /// Why.
        reason: String,
    },
}

impl EventKind {
    /// The command position for events that record a command issued by workflow code.
    pub fn command_seq(&self) -> Option<Seq> {
        match self {
            EventKind::ActivityScheduled { seq, .. }
            | EventKind::TimerStarted { seq, .. }
            | EventKind::SideEffectRecorded { seq, .. }
            | EventKind::ChildWorkflowInitiated { seq, .. }
            | EventKind::PatchMarker { seq, .. }
            | EventKind::CommandCancelled { seq, .. }
            | EventKind::ExternalSignalInitiated { seq, .. }
            | EventKind::ExternalCancelInitiated { seq, .. }
            | EventKind::UpdateCompleted { seq, .. }
            | EventKind::LocalActivityRecorded { seq, .. } => Some(*seq),
            _ => None,
        }
    }

    /// Whether a workflow task wrote this event (commands, cancellations of pending work,
    /// the run's completion) rather than an outside input.
    pub fn is_from_workflow_task(&self) -> bool {
        // A local activity's marker records a command, but its worker writes it after the
        // attempt, as an input to the workflow task that follows.
        (self.command_seq().is_some() && !matches!(self, EventKind::LocalActivityRecorded { .. }))
            || matches!(
                self,
                EventKind::ActivityCancelled { .. }
                    | EventKind::ActivityCancelRequested { .. }
                    | EventKind::TimerCancelled { .. }
                    | EventKind::ChildCancelRequested { .. }
                    | EventKind::WorkflowCompleted { .. }
                    | EventKind::WorkflowFailed { .. }
                    | EventKind::WorkflowCancelled
                    | EventKind::WorkflowContinuedAsNew { .. }
            )
    }

    /// Whether this event closes the run.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EventKind::WorkflowCompleted { .. }
                | EventKind::WorkflowFailed { .. }
                | EventKind::WorkflowCancelled
                | EventKind::WorkflowTerminated { .. }
                | EventKind::WorkflowContinuedAsNew { .. }
                | EventKind::WorkflowTimedOut
        )
    }

    /// The event's type name, as in the JSON `type` field.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::WorkflowStarted { .. } => "WorkflowStarted",
            EventKind::ActivityScheduled { .. } => "ActivityScheduled",
            EventKind::ActivityStarted { .. } => "ActivityStarted",
            EventKind::ActivityCompleted { .. } => "ActivityCompleted",
            EventKind::ActivityFailed { .. } => "ActivityFailed",
            EventKind::ActivityTimedOut { .. } => "ActivityTimedOut",
            EventKind::CommandCancelled { .. } => "CommandCancelled",
            EventKind::ActivityCancelled { .. } => "ActivityCancelled",
            EventKind::ActivityCancelRequested { .. } => "ActivityCancelRequested",
            EventKind::LocalActivityRecorded { .. } => "LocalActivityRecorded",
            EventKind::TimerStarted { .. } => "TimerStarted",
            EventKind::TimerFired { .. } => "TimerFired",
            EventKind::TimerCancelled { .. } => "TimerCancelled",
            EventKind::SideEffectRecorded { .. } => "SideEffectRecorded",
            EventKind::ChildWorkflowInitiated { .. } => "ChildWorkflowInitiated",
            EventKind::ChildWorkflowStarted { .. } => "ChildWorkflowStarted",
            EventKind::ChildWorkflowStartFailed { .. } => "ChildWorkflowStartFailed",
            EventKind::ChildWorkflowCompleted { .. } => "ChildWorkflowCompleted",
            EventKind::ChildWorkflowFailed { .. } => "ChildWorkflowFailed",
            EventKind::PatchMarker { .. } => "PatchMarker",
            EventKind::ExternalSignalInitiated { .. } => "ExternalSignalInitiated",
            EventKind::ExternalCancelInitiated { .. } => "ExternalCancelInitiated",
            EventKind::ExternalDelivered { .. } => "ExternalDelivered",
            EventKind::ChildCancelRequested { .. } => "ChildCancelRequested",
            EventKind::CancelRequested { .. } => "CancelRequested",
            EventKind::SignalReceived { .. } => "SignalReceived",
            EventKind::UpdateAccepted { .. } => "UpdateAccepted",
            EventKind::UpdateCompleted { .. } => "UpdateCompleted",
            EventKind::WorkflowCompleted { .. } => "WorkflowCompleted",
            EventKind::WorkflowFailed { .. } => "WorkflowFailed",
            EventKind::WorkflowCancelled => "WorkflowCancelled",
            EventKind::WorkflowTerminated { .. } => "WorkflowTerminated",
            EventKind::WorkflowContinuedAsNew { .. } => "WorkflowContinuedAsNew",
            EventKind::WorkflowTimedOut => "WorkflowTimedOut",
        }
    }

    /// A short description for errors and tables: the name and the identifying fields.
    pub fn describe(&self) -> String {
        match self {
            EventKind::ActivityScheduled { seq, activity_type, .. } => {
                format!("ActivityScheduled(seq {seq}, {activity_type})")
            }
            EventKind::TimerStarted { seq, fire_at } => {
                format!("TimerStarted(seq {seq}, fires {fire_at})")
            }
            EventKind::SideEffectRecorded { seq, .. } => format!("SideEffectRecorded(seq {seq})"),
            EventKind::PatchMarker { seq, patch_id } => format!("PatchMarker(seq {seq}, {patch_id})"),
            EventKind::CommandCancelled { seq, target } => format!("CommandCancelled(seq {seq}, of seq {target})"),
            EventKind::ExternalSignalInitiated { seq, workflow_id, signal, .. } => {
                format!("ExternalSignalInitiated(seq {seq}, {signal} to {workflow_id})")
            }
            EventKind::ExternalCancelInitiated { seq, workflow_id, .. } => {
                format!("ExternalCancelInitiated(seq {seq}, of {workflow_id})")
            }
            EventKind::ChildWorkflowInitiated { seq, workflow_type, workflow_id, .. } => {
                format!("ChildWorkflowInitiated(seq {seq}, {workflow_type}, id {workflow_id})")
            }
            EventKind::UpdateAccepted { update_id, name, .. } => format!("UpdateAccepted({name}, id {update_id})"),
            EventKind::LocalActivityRecorded { seq, activity_type, .. } => {
                format!("LocalActivityRecorded(seq {seq}, {activity_type})")
            }
            EventKind::UpdateCompleted { seq, update_id, .. } => {
                format!("UpdateCompleted(seq {seq}, id {update_id})")
            }
            other => other.name().to_string(),
        }
    }
}

/// The command of another workflow that sent a signal or a cancellation request: it makes a
/// delivery retried after a crash find the first one instead of delivering twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalSender {
    /// The sending workflow.
    pub workflow_id: String,
    /// Its run.
    pub run_id: RunId,
    /// The command's position in that run.
    pub seq: Seq,
}

/// How a local activity ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LocalActivityOutcome {
    /// It returned a result.
    Completed {
        /// The result.
        result: Payload,
    },
    /// It failed for good (or timed out) after its retries.
    Failed {
        /// The failure as the workflow sees it.
        failure: ActivityFailure,
    },
}

/// How workflow code answered an update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UpdateOutcome {
    /// The update's result.
    Completed {
        /// The result.
        result: Payload,
    },
    /// The update failed; the caller receives this failure.
    Failed {
        /// Why.
        failure: crate::error::Failure,
    },
}

/// An update accepted by a run that workflow code has not answered yet (shown by `wf
/// describe`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingUpdate {
    /// The update's id.
    pub update_id: String,
    /// Its name.
    pub name: String,
    /// The `UpdateAccepted` event.
    pub accepted_event: EventId,
    /// When it was accepted.
    pub accepted_at: Timestamp,
}

/// The updates `history` accepted and did not answer, in the order they were accepted.
pub fn pending_updates(history: &[Event]) -> Vec<PendingUpdate> {
    let answered: std::collections::HashSet<&str> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::UpdateCompleted { update_id, .. } => Some(update_id.as_str()),
            _ => None,
        })
        .collect();
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::UpdateAccepted { update_id, name, .. } if !answered.contains(update_id.as_str()) => {
                Some(PendingUpdate {
                    update_id: update_id.clone(),
                    name: name.clone(),
                    accepted_event: e.id,
                    accepted_at: e.time,
                })
            }
            _ => None,
        })
        .collect()
}

/// What became of a signal or cancellation one workflow sent another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExternalOutcome {
    /// Recorded in the target's latest run.
    Delivered,
    /// No workflow has that id.
    NotFound,
    /// The workflow's latest run is closed.
    AlreadyClosed,
}

/// How a child run ended without a result, as its parent sees it. Convert it into a
/// [`WorkflowError`](crate::WorkflowError) with `?` to propagate, or match on it to carry on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("child workflow {workflow_type} (id {workflow_id}) {}", describe_child_end(.kind, .cause.as_ref()))]
pub struct ChildFailure {
    /// The child's workflow id.
    pub workflow_id: String,
    /// The child's workflow type.
    pub workflow_type: String,
    /// How it ended.
    pub kind: ChildEnd,
    /// The child's recorded failure (its cause chain), when it failed.
    pub cause: Option<Failure>,
}

/// How a child ended, or why it never started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildEnd {
    /// It failed.
    Failed,
    /// It was cancelled.
    Cancelled,
    /// It was terminated.
    Terminated,
    /// It could not be started.
    StartFailed,
    /// It exceeded its run timeout.
    TimedOut,
}

fn describe_child_end(kind: &ChildEnd, cause: Option<&Failure>) -> String {
    let what = match kind {
        ChildEnd::Failed => "failed",
        ChildEnd::Cancelled => "was cancelled",
        ChildEnd::Terminated => "was terminated",
        ChildEnd::StartFailed => "could not start",
        ChildEnd::TimedOut => "timed out",
    };
    match cause {
        Some(c) => format!("{what}: {c}"),
        None => what.to_string(),
    }
}

impl ChildFailure {
    /// As a recorded [`Failure`] whose cause is the child's failure.
    pub fn to_failure(&self) -> Failure {
        Failure {
            error_type: "ChildWorkflowFailed".into(),
            message: format!(
                "child workflow {} (id {}) {}",
                self.workflow_type,
                self.workflow_id,
                describe_child_end(&self.kind, None)
            ),
            details: None,
            cause: self.cause.clone().map(Box::new),
        }
    }
}

/// How a run was started, beyond its type and input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunStart {
    /// The run this one continues (continue-as-new or a retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continued_from: Option<RunId>,
    /// The attempt of the workflow, from 1 (above 1 for retries by the retry policy).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub attempt: u32,
    /// Retry policy for the whole workflow: a failed run is retried as a new run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<crate::policy::RetryPolicy>,
    /// Longest a single run may take before it is closed as timed out.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::opt_duration_ms")]
    pub run_timeout: Option<std::time::Duration>,
    /// When the whole workflow (this run and its successors) must have finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_deadline: Option<crate::time::Timestamp>,
    /// The run this one re-runs from a point, when it was made by a reset
    /// ([`Client::reset`](crate::Client::reset)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_from: Option<Box<super::reset::ResetFrom>>,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl Default for RunStart {
    fn default() -> Self {
        RunStart::plain()
    }
}

impl RunStart {
    /// A first attempt with no policy or timeout.
    pub fn plain() -> Self {
        RunStart {
            continued_from: None,
            attempt: 1,
            retry_policy: None,
            run_timeout: None,
            execution_deadline: None,
            reset_from: None,
        }
    }

    /// When this run must close as timed out: the earlier of its run timeout and the
    /// workflow's execution deadline.
    pub fn deadline(&self, started_at: crate::time::Timestamp) -> Option<crate::time::Timestamp> {
        let run = self.run_timeout.map(|t| started_at.add(t));
        match (run, self.execution_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether this is [`RunStart::plain`] (omitted from JSON).
    pub fn is_plain(&self) -> bool {
        self.continued_from.is_none()
            && self.attempt <= 1
            && self.retry_policy.is_none()
            && self.run_timeout.is_none()
            && self.execution_deadline.is_none()
            && self.reset_from.is_none()
    }
}
