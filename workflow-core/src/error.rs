//! Public errors, one enum per operation, each convertible into the umbrella [`Error`].

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, RunId, Seq};
use crate::payload::Payload;

/// A payload that could not be encoded, decoded, or is too large.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The value could not be serialized.
    #[error("could not serialize a payload: {reason}")]
    Encode {
        /// What serde said.
        reason: String,
    },
    /// The recorded value does not deserialize into the expected type.
    #[error("{what} does not deserialize as {expected}: {reason}; check that the types on both sides agree")]
    Decode {
        /// Which value (for example "input of activity charge").
        what: String,
        /// The Rust type that was expected.
        expected: String,
        /// What serde said.
        reason: String,
    },
    /// The payload exceeds the configured limit.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes; pass a reference (file and range, blob key) instead of the data, or raise Limits::max_payload_bytes")]
    TooLarge {
        /// Which value.
        what: String,
        /// Its serialized size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// A user-supplied id that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The id is empty.
    #[error("{kind} is empty; give a non-empty id")]
    Empty {
        /// Which id ("workflow id").
        kind: &'static str,
    },
    /// The id is too long.
    #[error("{kind} is {len} bytes, over the limit of {max} bytes")]
    TooLong {
        /// Which id.
        kind: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The id contains a control character.
    #[error("{kind} contains the control character U+{ch:04X}; use printable characters only")]
    ControlCharacter {
        /// Which id.
        kind: &'static str,
        /// The offending character.
        ch: u32,
    },
    /// The id contains an invisible or direction-changing format character (a zero-width
    /// space, a bidirectional override), which would make listings show something else
    /// than the id.
    #[error("{kind} contains the invisible format character U+{ch:04X}; use visible characters only")]
    FormatCharacter {
        /// Which id.
        kind: &'static str,
        /// The offending character.
        ch: u32,
    },
}

/// An invalid option value (a zero timeout, a backoff coefficient below 1, ...).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid option {option}: {reason}")]
pub struct OptionsError {
    /// The option's name, for example `retry_policy.backoff_coefficient`.
    pub option: &'static str,
    /// Why it is invalid and what is allowed.
    pub reason: String,
}

/// A storage failure. `retryable()` says whether trying again can help.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The workflow id already has an open run.
    #[error("workflow id {workflow_id:?} already has an open run {run_id}")]
    AlreadyExists {
        /// The workflow id.
        workflow_id: String,
        /// The open run.
        run_id: RunId,
    },
    /// An append expected a different last event id: someone else appended first.
    #[error("history of run {run_id} moved on: expected last event {expected}, found {actual}")]
    Conflict {
        /// The run.
        run_id: RunId,
        /// The last event id the caller saw.
        expected: EventId,
        /// The last event id in the store.
        actual: EventId,
    },
    /// The task lease is no longer held (it expired and was taken over, or the task was removed).
    #[error("lease on task {task} is no longer held")]
    LeaseLost {
        /// The task key.
        task: String,
    },
    /// The run or workflow id does not exist.
    #[error("no run found for {what}")]
    NotFound {
        /// What was looked up.
        what: String,
    },
    /// The run is closed; nothing more can be appended.
    #[error("run {run_id} is closed")]
    RunClosed {
        /// The run.
        run_id: RunId,
    },
    /// A record in the store cannot be read.
    #[error("corrupt record {key}: {reason}")]
    Corrupt {
        /// The record's key (names the run where it has one).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The store was written by a newer version of this library.
    #[error("store format version {found} is newer than this library supports ({supported}); upgrade workflow-core")]
    UnsupportedVersion {
        /// Version on disk.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// The store was written in an older format that this version no longer reads.
    #[error(
        "store at {path} has format version {found}, older than the {supported} this library reads; finish its runs with the version that wrote it, or move it aside and start a new store"
    )]
    OutdatedFormat {
        /// The store's path.
        path: String,
        /// Version on disk.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The store holds fewer commits than it once made durable: acknowledged writes are gone
    /// (a data file deleted, truncated, rolled back to an older copy, or damaged).
    #[error(
        "store at {path} has lost acknowledged writes: it holds {found} commits, but {expected} were made durable (a data file deleted, truncated, replaced by an older copy, or damaged); restore it from a backup, or, to open what is left anyway, move {path}/high-water aside"
    )]
    LostWrites {
        /// The store's path.
        path: String,
        /// Commits the store holds.
        found: u64,
        /// Commits its high-water mark says were durable.
        expected: u64,
    },
    /// The store is held by another process.
    #[error(
        "store at {path} is in use by another process; stop it, or inspect it through that process's admin endpoint"
    )]
    InUse {
        /// The path.
        path: String,
    },
    /// An I/O or backend failure.
    #[error("store backend failure: {reason}")]
    Backend {
        /// What happened.
        reason: String,
        /// Whether retrying can help.
        retryable: bool,
    },
}

impl StoreError {
    /// Whether retrying the same operation later can succeed.
    pub fn retryable(&self) -> bool {
        match self {
            StoreError::Backend { retryable, .. } => *retryable,
            StoreError::Conflict { .. } => true,
            _ => false,
        }
    }
}

/// A serializable failure with a type, a message, optional details and a cause chain. This is
/// what histories record for failed workflows and activities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// A stable type string that code can match on (`"CardDeclined"`).
    pub error_type: String,
    /// A human-readable message.
    pub message: String,
    /// Optional structured details.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::payload::opt_payload")]
    pub details: Option<Payload>,
    /// What caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Box<Failure>>,
}

/// The longest failure message (activity errors, workflow failures) the engine records:
/// 4 KiB. A longer one is cut at a character boundary and ends with a marker saying how long
/// it was, so that a huge message (a 5 MB CSV header quoted in an error) never fills a
/// history or a terminal.
pub const MAX_FAILURE_MESSAGE_BYTES: usize = 4 * 1024;

/// The largest failure details the engine records: 64 KiB. Larger details are dropped, and
/// the message says so.
pub const MAX_FAILURE_DETAILS_BYTES: usize = 64 * 1024;

/// `message` cut to [`MAX_FAILURE_MESSAGE_BYTES`] (at a character boundary) with a marker,
/// when longer.
pub fn bound_message(message: String) -> String {
    bound_message_to(message, MAX_FAILURE_MESSAGE_BYTES)
}

fn bound_message_to(message: String, max: usize) -> String {
    if message.len() <= max {
        return message;
    }
    let total = message.len();
    let mut cut = max.saturating_sub(64);
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… [truncated: {total} bytes in all]", &message[..cut])
}

/// Details within [`MAX_FAILURE_DETAILS_BYTES`], or `None` and a note for the message.
fn bound_details(details: Option<crate::payload::Payload>) -> (Option<crate::payload::Payload>, Option<String>) {
    match details {
        Some(d) if d.encoded_len() > MAX_FAILURE_DETAILS_BYTES => {
            let note = format!(" [details of {} bytes dropped: above {MAX_FAILURE_DETAILS_BYTES}]", d.encoded_len());
            (None, Some(note))
        }
        other => (other, None),
    }
}

impl Failure {
    /// This failure within the engine's bounds: messages of at most
    /// [`MAX_FAILURE_MESSAGE_BYTES`], details of at most [`MAX_FAILURE_DETAILS_BYTES`], a
    /// cause chain of at most 32 links. The engine applies it before recording a failure.
    pub fn bounded(self) -> Failure {
        self.bounded_at(0)
    }

    fn bounded_at(self, depth: usize) -> Failure {
        let (details, note) = bound_details(self.details);
        let note = note.unwrap_or_default();
        let message = bound_message_to(self.message, MAX_FAILURE_MESSAGE_BYTES - note.len()) + &note;
        let cause = if depth >= 31 { None } else { self.cause.map(|c| Box::new(c.bounded_at(depth + 1))) };
        Failure { error_type: bound_message(self.error_type), message, details, cause }
    }

    /// A failure without details or cause.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure { error_type: error_type.into(), message: bound_message(message.into()), details: None, cause: None }
    }

    /// The chain from this failure down to the root cause.
    pub fn chain(&self) -> impl Iterator<Item = &Failure> {
        std::iter::successors(Some(self), |f| f.cause.as_deref())
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)?;
        if let Some(c) = &self.cause {
            write!(f, ": caused by {c}")?;
        }
        Ok(())
    }
}

/// Replayed workflow code asked for something other than what the history holds.
///
/// The message carries the stable code `[WF-NONDET]`, the run, the event id, what the
/// history holds and what the code asked for. The run is not continued and nothing recorded is
/// lost: fix the code (or guard the change with `ctx.patched`), restart the worker, and the run
/// resumes.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[error("[WF-NONDET] nondeterminism in run {run_id} at event {event_id}: history holds {recorded}, code asked for {requested}{}. Workflow code must issue the same commands in the same order on replay; move changing logic into activities or guard it with ctx.patched()", .location.as_ref().map(|l| format!(" at {l}")).unwrap_or_default())]
pub struct NondeterminismError {
    /// The run.
    pub run_id: RunId,
    /// The history event where code and history diverge.
    pub event_id: EventId,
    /// What the history holds there.
    pub recorded: String,
    /// What the code asked for.
    pub requested: String,
    /// Where in the workflow's source the code asked for it (`src/workflows.rs:42:17`), when
    /// known: for commands issued directly by workflow code (activities, timers, children,
    /// side effects, patches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// Why a workflow task could not be completed. The task is retried later with backoff; the run
/// is shown as stuck (see [`RunInfo::task_failure`](crate::store::RunInfo)) until it succeeds.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WorkflowTaskError {
    /// Replay diverged from history.
    #[error(transparent)]
    Nondeterminism(#[from] NondeterminismError),
    /// No workflow of this type is registered with the worker.
    #[error("workflow type {workflow_type:?} is not registered with this worker (registered: {registered}); register it with Worker::register_workflow and restart the worker, the run will resume")]
    UnknownWorkflowType {
        /// The type the run needs.
        workflow_type: String,
        /// The types the worker has, comma-separated.
        registered: String,
    },
    /// Workflow code panicked.
    #[error("workflow code panicked: {message}")]
    Panic {
        /// The panic message.
        message: String,
    },
    /// Workflow code used tokio (sleep, spawn, I/O) directly.
    #[error("workflow code used the tokio runtime ({message}); workflow code runs outside tokio: use ctx.sleep for timers and move I/O into an activity")]
    TokioInWorkflow {
        /// The panic message tokio produced.
        message: String,
    },
    /// The history is not well formed (gap in event ids, event for an unknown command).
    #[error("history of run {run_id} is malformed at event {event_id}: {reason}")]
    MalformedHistory {
        /// The run.
        run_id: RunId,
        /// Where.
        event_id: EventId,
        /// What is wrong.
        reason: String,
    },
}

/// Starting a workflow failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The workflow id already has an open run. Use `StartOptions::idempotent` to get the
    /// existing run's handle instead.
    #[error("workflow {workflow_id:?} is already running (run {run_id}); wait for it, cancel it, or start with IdConflictPolicy::UseExisting (StartOptions::idempotent(true)) to attach to it or TerminateExisting to replace it")]
    AlreadyStarted {
        /// The workflow id.
        workflow_id: String,
        /// The open run.
        run_id: RunId,
    },
    /// The workflow id's latest run is closed and the start's
    /// [`IdReusePolicy`](crate::IdReusePolicy) forbids another run.
    #[error("workflow {workflow_id:?} already ran (run {run_id} is {status}) and the start's id reuse policy {policy:?} forbids another run; use a new workflow id, or another IdReusePolicy")]
    IdReuseRejected {
        /// The workflow id.
        workflow_id: String,
        /// Its latest run.
        run_id: RunId,
        /// How that run ended.
        status: crate::store::RunStatus,
        /// The policy that refused.
        policy: crate::client::IdReusePolicy,
    },
    /// The workflow type is not registered with the worker the client belongs to.
    #[error("workflow type {workflow_type:?} is not registered (registered: {registered}); register it with Worker::register_workflow")]
    UnknownWorkflowType {
        /// The type asked for.
        workflow_type: String,
        /// The registered types.
        registered: String,
    },
    /// The workflow id is unusable.
    #[error(transparent)]
    InvalidId(#[from] IdError),
    /// The input cannot be encoded or is too large.
    #[error("workflow input: {0}")]
    Payload(#[from] PayloadError),
    /// An option is invalid.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Getting a workflow's result failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ResultError {
    /// The workflow failed.
    #[error("workflow {workflow_id:?} failed: {failure}")]
    Failed {
        /// The workflow id.
        workflow_id: String,
        /// The recorded failure.
        failure: Failure,
    },
    /// The workflow was cancelled.
    #[error("workflow {workflow_id:?} was cancelled")]
    Cancelled {
        /// The workflow id.
        workflow_id: String,
    },
    /// The workflow was terminated.
    #[error("workflow {workflow_id:?} was terminated: {reason}")]
    Terminated {
        /// The workflow id.
        workflow_id: String,
        /// The reason given.
        reason: String,
    },
    /// The run exceeded its run timeout.
    #[error("workflow {workflow_id:?} timed out")]
    TimedOut {
        /// The workflow id.
        workflow_id: String,
    },
    /// The result does not decode into the expected type.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The store failed, or the run does not exist.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An operation on an existing workflow (describe, cancel, terminate, history) failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No such workflow.
    #[error("workflow {workflow_id:?} not found")]
    NotFound {
        /// The workflow id.
        workflow_id: String,
    },
    /// The workflow has already finished.
    #[error("workflow {workflow_id:?} has already finished ({status})")]
    AlreadyClosed {
        /// The workflow id.
        workflow_id: String,
        /// Its final status.
        status: String,
    },
    /// The payload cannot be encoded or is too large.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A reset was refused ([`Client::reset`](crate::Client::reset)).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ResetError {
    /// The point is not an event the new run can keep: before the first event, or at or
    /// after the run's closing event.
    #[error("cannot reset to event {point}: choose an event from 1 to {last} (wf history shows them)")]
    PointOutOfRange {
        /// The point asked for.
        point: EventId,
        /// The last event that can be kept.
        last: EventId,
    },
    /// "Before the failure" asked of a run that did not fail.
    #[error("the run did not fail, time out or get terminated ({status}); give the event to reset to")]
    NoFailure {
        /// How it is, or how it ended.
        status: String,
    },
    /// A child the new run would start again is still running.
    #[error(
        "child {child_workflow_id:?} (command {seq}), which the new run would start again, is still open; wait until it closes (or cancel or terminate it), then reset"
    )]
    ChildStillOpen {
        /// Its command position in the parent.
        seq: Seq,
        /// Its workflow id.
        child_workflow_id: String,
    },
    /// The run is a child whose parent is open and waits for it.
    #[error(
        "the run is a child of {parent_workflow_id:?}, which is still open and waits for it; reset the parent instead"
    )]
    ParentOpen {
        /// The parent's workflow id.
        parent_workflow_id: String,
    },
    /// The run's history does not begin with `WorkflowStarted`.
    #[error("the history of run {run_id} does not begin with WorkflowStarted")]
    MalformedHistory {
        /// The run.
        run_id: RunId,
    },
    /// Looking the run up, or writing, failed.
    #[error(transparent)]
    Control(#[from] ControlError),
}

impl From<StoreError> for ResetError {
    fn from(e: StoreError) -> Self {
        ResetError::Control(e.into())
    }
}

/// A query could not be answered.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// No such workflow.
    #[error("workflow {workflow_id:?} not found")]
    NotFound {
        /// The workflow id.
        workflow_id: String,
    },
    /// The workflow registered no query of this name.
    #[error("the workflow has no query {name:?} (registered: {registered}); register it with ctx.register_query")]
    UnknownQuery {
        /// The name asked for.
        name: String,
        /// The registered names.
        registered: String,
    },
    /// The handler could not decode the arguments or encode the answer.
    #[error("query {name:?} failed: {reason}")]
    Handler {
        /// The query.
        name: String,
        /// Why.
        reason: String,
    },
    /// Rebuilding the workflow's state failed.
    #[error(transparent)]
    Replay(#[from] WorkflowTaskError),
    /// The client has no workflow code to answer with.
    #[error("this client has no workflow code to answer queries with; ask through a client from RunningWorker::client (a started worker that registered the workflow type)")]
    NoWorkflowCode,
    /// Payload problem.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Completing, failing or heartbeating an activity attempt through its task token failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AsyncCompletionError {
    /// The attempt no longer waits for this: it timed out, its activity was cancelled, or it
    /// was already completed or failed. Nothing was recorded.
    #[error("activity {activity_type} (seq {seq}, attempt {attempt}) of workflow {workflow_id:?} no longer waits for this attempt: it timed out, was cancelled, or was already completed")]
    NotCurrent {
        /// The workflow id.
        workflow_id: String,
        /// The activity's name.
        activity_type: String,
        /// Its command position.
        seq: Seq,
        /// The attempt the token named.
        attempt: u32,
    },
    /// The text is not a task token.
    #[error("bad task token: {reason}")]
    BadToken {
        /// Why.
        reason: String,
    },
    /// Payload problem (the result does not encode or is too large).
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The store failed; retrying with the same token is safe.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An update ([`Client::update`](crate::Client::update)) was not answered with a result.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// No such workflow.
    #[error("workflow {workflow_id:?} not found")]
    NotFound {
        /// The workflow id.
        workflow_id: String,
    },
    /// The workflow's latest run is closed: updates go to open runs only.
    #[error("workflow {workflow_id:?} is closed ({status}); updates go to open runs only")]
    AlreadyClosed {
        /// The workflow id.
        workflow_id: String,
        /// How it ended.
        status: String,
    },
    /// The workflow registered no update of this name. Nothing was recorded.
    #[error("the workflow has no update {name:?} (registered: {registered}); register it with ctx.register_update")]
    UnknownUpdate {
        /// The name asked for.
        name: String,
        /// The registered names.
        registered: String,
    },
    /// The arguments do not decode as the update's type. Nothing was recorded.
    #[error("bad arguments for update {name:?}: {reason}")]
    BadArguments {
        /// The update.
        name: String,
        /// Why.
        reason: String,
    },
    /// The workflow's validator refused the update. Nothing was recorded.
    #[error("update {name:?} rejected: {reason}")]
    Rejected {
        /// The update.
        name: String,
        /// The validator's reason.
        reason: String,
    },
    /// The workflow accepted the update and answered it with a failure.
    #[error("update {name:?} failed: {failure}")]
    Failed {
        /// The update.
        name: String,
        /// The workflow's failure.
        failure: Failure,
    },
    /// The run closed after accepting the update without answering it.
    #[error("workflow {workflow_id:?} closed ({status}) without answering update {update_id:?}")]
    ClosedUnanswered {
        /// The workflow id.
        workflow_id: String,
        /// The update.
        update_id: String,
        /// How the run ended.
        status: String,
    },
    /// The same update id was used for another update name.
    #[error("update id {update_id:?} was already used for update {recorded:?} in this run; use a new id")]
    IdReused {
        /// The id.
        update_id: String,
        /// The update recorded under it.
        recorded: String,
    },
    /// The update id is empty, too long or holds control characters.
    #[error(transparent)]
    Id(#[from] IdError),
    /// Rebuilding the workflow's state to validate the update failed.
    #[error(transparent)]
    Replay(#[from] WorkflowTaskError),
    /// The client has no workflow code to validate updates with.
    #[error("this client has no workflow code to validate updates with; send through a client from RunningWorker::client (a started worker that registered the workflow type)")]
    NoWorkflowCode,
    /// Payload problem.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Registering or running a worker failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// Two registrations use the same name.
    #[error("{kind} {name:?} is registered twice; names must be unique")]
    DuplicateRegistration {
        /// "workflow" or "activity".
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// An option is invalid.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Every error this crate returns, for callers that do not care which operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`StartError`].
    #[error(transparent)]
    Start(#[from] StartError),
    /// See [`ResultError`].
    #[error(transparent)]
    Result(#[from] ResultError),
    /// See [`ControlError`].
    #[error(transparent)]
    Control(#[from] ControlError),
    /// See [`WorkerError`].
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// See [`StoreError`].
    #[error(transparent)]
    Store(#[from] StoreError),
    /// See [`PayloadError`].
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// See [`OptionsError`].
    #[error(transparent)]
    Options(#[from] OptionsError),
}

#[cfg(test)]
mod bound_tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_with_a_marker_and_big_details_dropped() {
        let long = "é".repeat(10_000); // 20,000 bytes, two per char
        let f = Failure::new("T", long.clone());
        assert!(f.message.len() <= MAX_FAILURE_MESSAGE_BYTES, "{}", f.message.len());
        assert!(f.message.ends_with("[truncated: 20000 bytes in all]"), "{}", &f.message[f.message.len() - 40..]);
        let mut big = Failure::new("T", "short");
        big.details = Some(crate::payload::Payload::encode(&"x".repeat(MAX_FAILURE_DETAILS_BYTES)).unwrap());
        big.cause = Some(Box::new(Failure { message: long, ..Failure::new("C", "") }));
        let b = big.bounded();
        assert!(b.details.is_none() && b.message.starts_with("short [details of"), "{}", b.message);
        assert!(b.cause.unwrap().message.len() <= MAX_FAILURE_MESSAGE_BYTES);
        assert_eq!(bound_message("ok".into()), "ok");
    }

    #[test]
    fn cause_chains_are_bounded() {
        let mut f = Failure::new("E", "0");
        for i in 1..100 {
            f = Failure { cause: Some(Box::new(f)), ..Failure::new("E", i.to_string()) };
        }
        assert_eq!(f.bounded().chain().count(), 32);
    }
}
