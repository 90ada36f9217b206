//! Workflow tasks: advance a run's code with new events and commit what it asks for.

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info_span, warn, Instrument};

use super::executor::Advance;
use super::{children, closing, Inner};
use crate::error::{Failure, StoreError, WorkflowTaskError};
use crate::history::{Event, EventKind};
use crate::ids::{EventId, RunId, Seq};
use crate::options::{LEASE_MARGIN, MAX_LOCAL_ACTIVITY};
use crate::replay::Activation;
use crate::store::{
    ActivityTask, AppendRequest, AttemptRecord, ExternalAction, ExternalTask, LeasedTask, Task, TaskKey, TaskKind,
    TaskOp,
};
use crate::time::Timestamp;

/// What made the run need advancing.
#[allow(clippy::large_enum_variant)] // short-lived, one per task
pub(crate) enum Trigger {
    /// Its workflow task.
    Workflow { task: LeasedTask, failures: u32 },
    /// An outcome for command `seq` (a timer fired, a child started or ended), recorded by
    /// `inputs`.
    Input { task: LeasedTask, seq: Seq, inputs: Vec<EventKind> },
    /// An activity reached its final outcome; `inputs` record it.
    Activity { task: LeasedTask, seq: Seq, inputs: Vec<EventKind>, attempt: AttemptRecord },
    /// A local activity of this worker finished; `inputs` hold its marker. It has no task.
    Local { seq: Seq, inputs: Vec<EventKind>, attempt: AttemptRecord },
}

impl Trigger {
    fn task(&self) -> Option<&LeasedTask> {
        match self {
            Trigger::Workflow { task, .. } | Trigger::Input { task, .. } | Trigger::Activity { task, .. } => Some(task),
            Trigger::Local { .. } => None,
        }
    }

    fn inputs(&self) -> (Vec<EventKind>, Option<Seq>) {
        match self {
            Trigger::Workflow { .. } => (Vec::new(), None),
            Trigger::Input { seq, inputs, .. }
            | Trigger::Activity { seq, inputs, .. }
            | Trigger::Local { seq, inputs, .. } => (inputs.clone(), Some(*seq)),
        }
    }

    fn attempt(&self) -> Option<AttemptRecord> {
        match self {
            Trigger::Activity { attempt, .. } | Trigger::Local { attempt, .. } => Some(attempt.clone()),
            _ => None,
        }
    }
}

/// Backoff between failed workflow task attempts: 1 s doubling, at most 10 s, so a fixed and
/// restarted worker resumes a stuck run promptly.
fn task_retry_backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(4)).min(Duration::from_secs(10))
}

pub(crate) async fn handle(inner: &Arc<Inner>, task: LeasedTask) {
    let run_id = task.task.run_id.clone();
    let trigger = match &task.task.kind {
        TaskKind::Workflow { failures } => Trigger::Workflow { failures: *failures, task },
        TaskKind::Timer { seq } => {
            Trigger::Input { seq: *seq, inputs: vec![EventKind::TimerFired { seq: *seq }], task }
        }
        TaskKind::StartChild(st) => {
            let st = (**st).clone();
            return children::start_child(inner, task, st).await;
        }
        TaskKind::ChildClosed { seq, child_run_id } => {
            let (seq, child) = (*seq, child_run_id.clone());
            return children::deliver_child_end(inner, task, seq, child).await;
        }
        TaskKind::StartRun(st) => {
            let st = (**st).clone();
            return children::start_run(inner, task, st).await;
        }
        TaskKind::RequestCancel { reason } => {
            let reason = reason.clone();
            return children::request_cancel(inner, task, reason).await;
        }
        TaskKind::RunTimeout => {
            let now = inner.clock.now();
            let done = Some((task.task.key.clone(), task.token));
            match closing::close_run(&*inner.store, &run_id, EventKind::WorkflowTimedOut, now, done).await {
                Ok(()) => evict(inner, &run_id),
                Err(e) => debug!(error = %e, "closing a timed-out run failed (it may have closed already)"),
            }
            return;
        }
        TaskKind::DeliverExternal(ext) => {
            let ext = (**ext).clone();
            return super::external::deliver(inner, task, ext).await;
        }
        TaskKind::ParentClosed { policy, parent_workflow_id } => {
            let (policy, parent) = (*policy, parent_workflow_id.clone());
            return children::apply_parent_close(inner, task, policy, parent).await;
        }
        TaskKind::Activity(_) => {
            warn!(task = %task.task.key, "activity task on the workflow queue; ignoring");
            return;
        }
    };
    process_run(inner, run_id, trigger).await;
}

/// Advances `run_id` because of `trigger` and commits the outcome in one append.
pub(crate) async fn process_run(inner: &Arc<Inner>, run_id: RunId, trigger: Trigger) {
    let span = info_span!("workflow_task", run_id = %run_id, workflow_id = tracing::field::Empty);
    process_run_inner(inner, run_id, trigger).instrument(span).await
}

async fn process_run_inner(inner: &Arc<Inner>, run_id: RunId, trigger: Trigger) {
    let _lock = inner.lock_run(&run_id).await;
    let mut after = inner.known_last(&run_id);
    let mut conflicts = 0;
    while conflicts < 8 {
        let history = match inner.store.read_history(&run_id, after).await {
            Ok(h) => h,
            Err(StoreError::NotFound { .. }) => {
                debug!("run is gone; dropping its task");
                let _ = complete_only(inner, &run_id, &trigger).await;
                return;
            }
            Err(e) => {
                warn!(error = %e, "reading history failed; the task will be retried when its lease expires");
                return;
            }
        };
        // A read from the start holds event 1: keep it for arming the run timeout below.
        let first_event = if after == 0 { history.first().cloned() } else { None };
        if history.last().is_some_and(|e| e.kind.is_terminal()) {
            evict(inner, &run_id);
            let _ = complete_only(inner, &run_id, &trigger).await;
            return;
        }
        // A run made by a reset whose kept events were never written: write them first.
        if let [only] = history.as_slice() {
            if let (Some(from), EventKind::WorkflowStarted { workflow_id, .. }) =
                (super::reset::reset_from(&only.kind), &only.kind)
            {
                match super::reset::finish(&*inner.store, &run_id, workflow_id, from, inner.clock.now()).await {
                    Ok(true) => {
                        evict(inner, &run_id);
                        after = 0;
                        continue;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        warn!(error = %e, "writing the events a reset keeps failed; retried when the task's lease expires");
                        return;
                    }
                }
            }
        }
        let now = inner.clock.now();
        let (extra, extra_seq) = trigger.inputs();
        let r = run_id.clone();
        let advance = inner.executor.call(move |s| s.advance(&r, after, &history, &extra, now, extra_seq));
        let (mut activation, base, extra, workflow_id) = match advance {
            Err(e) => {
                evict(inner, &run_id);
                on_task_failure(inner, &run_id, trigger, e).await;
                return;
            }
            Ok(Advance::NeedHistory) => {
                after = 0;
                continue;
            }
            Ok(Advance::Stale) => {
                debug!("outcome for work that is no longer pending; dropping it");
                let _ = complete_only(inner, &run_id, &trigger).await;
                return;
            }
            Ok(Advance::Ready { activation, base, inputs, workflow_id }) => (activation, base, inputs, workflow_id),
        };
        tracing::Span::current().record("workflow_id", workflow_id.as_str());
        let write = Write { run_id: &run_id, workflow_id: &workflow_id, base, now };
        let req = match write.plan(inner, &trigger, &mut activation, extra, first_event).await {
            Ok(req) => req,
            Err(e) => {
                evict(inner, &run_id);
                warn!(error = %e, "preparing the workflow task's write failed; retried later");
                return;
            }
        };
        let eager = eager_slots(inner, &req.task_ops);
        let req = match eager.is_empty() {
            true => req,
            false => req.lease_to(inner.options.identity.clone(), now, eager.iter().map(|(k, _)| k.clone()).collect()),
        };
        match inner.store.append(req).await {
            // The cached run learns its own commands from the next history delta, like any
            // other events. Activities leased by the append start at once.
            Ok(out) => {
                super::dispatch_eager(inner, out.leased, eager);
                super::local::start(inner, &run_id, &workflow_id, activation.local_activities);
                return;
            }
            Err(StoreError::Conflict { .. }) => {
                evict(inner, &run_id);
                after = 0;
                conflicts += 1;
                continue;
            }
            Err(e @ (StoreError::LeaseLost { .. } | StoreError::RunClosed { .. })) => {
                debug!(error = %e, "task superseded");
                evict(inner, &run_id);
                return;
            }
            Err(e) => {
                evict(inner, &run_id);
                warn!(error = %e, "committing the workflow task failed; it will be retried when its lease expires");
                return;
            }
        }
    }
    if let Trigger::Local { inputs, attempt, .. } = trigger {
        // A local activity's outcome has no task to retry it: record it alone, for the next
        // workflow task.
        let now = inner.clock.now();
        let req = AppendRequest::new(run_id.clone(), now)
            .events(inputs)
            .task_op(TaskOp::Upsert(Task::workflow(&run_id, now)))
            .attempt(attempt);
        if let Err(e) = inner.store.append(req).await {
            warn!(error = %e, "recording a local activity's outcome failed; it runs again when the run is replayed");
        }
        return;
    }
    warn!("workflow task kept conflicting with concurrent appends; leaving it for a later attempt");
}

/// The write a workflow task makes: its run, where the history stood, and when.
struct Write<'a> {
    run_id: &'a RunId,
    workflow_id: &'a str,
    /// The last event id the code saw (the append's optimistic check).
    base: EventId,
    now: Timestamp,
}

impl Write<'_> {
    /// The append for an activation: the trigger's inputs, the code's commands (bounded and
    /// capped), the tasks they cause, the trigger's lease completion and attempt record.
    async fn plan(
        &self,
        inner: &Inner,
        trigger: &Trigger,
        activation: &mut Activation,
        extra: Vec<EventKind>,
        first_event: Option<Event>,
    ) -> Result<AppendRequest, StoreError> {
        let (run_id, now) = (self.run_id, self.now);
        let mut new_events = self.commands(inner, activation, extra.len());
        let mut events = extra;
        events.extend(new_events.iter().cloned());
        let mut ops = task_ops(run_id, self.workflow_id, now, &new_events);
        if events.last().is_some_and(EventKind::is_terminal) {
            // Closing needs the whole history: the parent, the open children.
            let full = inner.store.read_history(run_id, 0).await?;
            let n = events.len() - 1;
            let mut terminal = events[n].clone();
            ops.extend(closing::plan_close(run_id, &full, &events[..n], &mut terminal, now));
            events[n] = terminal.clone();
            if let Some(l) = new_events.last_mut() {
                *l = terminal;
            }
        } else if let Some(first) = first_event {
            // A run's first activation (and any replay) arms its run timeout: an idempotent
            // upsert of the same task.
            let started = closing::Started::of(Some(&first.kind));
            if let Some(deadline) = started.and_then(|s| s.start.deadline(first.time)) {
                ops.push(TaskOp::Upsert(Task {
                    key: TaskKey::run_timeout(run_id),
                    run_id: run_id.clone(),
                    visible_at: deadline,
                    lease_duration: crate::store::WORKFLOW_TASK_LEASE,
                    kind: TaskKind::RunTimeout,
                }));
            }
        }
        if new_events.iter().any(|e| matches!(e, EventKind::ActivityCancelRequested { .. })) {
            let flagged = flag_cancel_requested(inner, run_id, now, &new_events, &mut ops).await?;
            ops.extend(flagged);
        }
        if activation.local_pending && !events.last().is_some_and(EventKind::is_terminal) {
            // A local activity has no task of its own: if this worker dies before recording
            // it, this workflow task wakes the run again after the longest a local activity
            // may take, and the replay asks for it again.
            ops.push(TaskOp::Upsert(Task::workflow(run_id, now.add(MAX_LOCAL_ACTIVITY + LEASE_MARGIN))));
        }
        let mut req = AppendRequest::new(run_id.clone(), now).expect_last(self.base).events(events);
        if let Some(task) = trigger.task() {
            req = req.complete(task.task.key.clone(), task.token);
        }
        req.task_ops = ops;
        if let Some(a) = trigger.attempt() {
            req = req.attempt(a);
        }
        // A successful workflow task clears any earlier stuck reason.
        Ok(req.task_failure(None))
    }

    /// The code's new commands, a workflow failure bounded; replaced by a failure when they
    /// would take the history past its cap.
    fn commands(&self, inner: &Inner, activation: &mut Activation, inputs: usize) -> Vec<EventKind> {
        let mut new_events = std::mem::take(&mut activation.new_events);
        for e in &mut new_events {
            // A workflow's failure is recorded within the engine's bounds.
            if let EventKind::WorkflowFailed { failure, .. } = e {
                *failure = std::mem::replace(failure, Failure::new("", "")).bounded();
            }
        }
        let cap = inner.options.limits.max_history_events;
        // Keep room for the outcome that may arrive with the next task (started + outcome) and
        // the terminal event, so a capped history still ends within the cap.
        if self.base + (inputs + new_events.len()) as EventId + 3 > cap {
            evict(inner, self.run_id);
            new_events = vec![EventKind::WorkflowFailed {
                next_run: None,
                failure: Failure::new(
                    "HistoryLimitExceeded",
                    format!("history would exceed {cap} events (Limits::max_history_events); use continue-as-new to start a fresh run with the state carried over"),
                ),
            }];
        }
        new_events
    }
}

/// Activity tasks among `ops` that this worker can start at once (eager dispatch): it runs
/// their type and has a free slot, which the returned permit holds.
fn eager_slots(inner: &Inner, ops: &[TaskOp]) -> Vec<(TaskKey, tokio::sync::OwnedSemaphorePermit)> {
    if inner.is_shutting_down() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for op in ops {
        let TaskOp::Upsert(Task { key, kind: TaskKind::Activity(a), .. }) = op else { continue };
        // A task flagged for cancellation may be held by a running attempt: never lease it here.
        if a.cancel_requested || !inner.registry.activities.contains_key(&a.activity_type) {
            continue;
        }
        match inner.activity_permits.clone().try_acquire_owned() {
            Ok(p) => out.push((key.clone(), p)),
            // No free slot: the rest go through the queue.
            Err(_) => break,
        }
    }
    out
}

/// Makes the activity tasks that `events` ask to cancel while the workflow waits
/// (`ActivityCancelRequested`) due now, flagged, when no attempt holds them: the worker that
/// takes one records the cancellation. A task scheduled in this same write is flagged in `ops`.
/// A task an attempt holds is left alone (rewriting it could overwrite what the attempt
/// writes meanwhile): the attempt learns the request from the history.
async fn flag_cancel_requested(
    inner: &Inner,
    run_id: &RunId,
    now: Timestamp,
    events: &[EventKind],
    ops: &mut [TaskOp],
) -> Result<Vec<TaskOp>, StoreError> {
    let mut tasks = None;
    let mut out = Vec::new();
    for e in events {
        let EventKind::ActivityCancelRequested { seq } = e else { continue };
        let key = TaskKey::activity(run_id, *seq);
        let fresh = ops.iter_mut().find_map(|op| match op {
            TaskOp::Upsert(Task { key: k, kind: TaskKind::Activity(a), .. }) if *k == key => Some(a),
            _ => None,
        });
        if let Some(a) = fresh {
            a.cancel_requested = true;
            continue;
        }
        if tasks.is_none() {
            tasks = Some(inner.store.list_tasks(run_id).await?);
        }
        let Some(p) = tasks.as_ref().and_then(|t| t.iter().find(|t| t.task.key == key)) else { continue };
        let TaskKind::Activity(a) = &p.task.kind else { continue };
        if p.lease.is_some() {
            continue;
        }
        let mut a = (**a).clone();
        a.cancel_requested = true;
        out.push(TaskOp::Upsert(Task { visible_at: now, kind: TaskKind::Activity(Box::new(a)), ..p.task.clone() }));
    }
    Ok(out)
}

fn evict(inner: &Inner, run_id: &RunId) {
    let r = run_id.clone();
    inner.executor.send(move |s| s.evict(&r));
}

async fn complete_only(inner: &Inner, run_id: &RunId, trigger: &Trigger) -> Result<(), StoreError> {
    let Some(t) = trigger.task() else { return Ok(()) };
    let mut req = AppendRequest::new(run_id.clone(), inner.clock.now()).complete(t.task.key.clone(), t.token);
    if let Some(a) = trigger.attempt() {
        req = req.attempt(a);
    }
    inner.store.append(req).await.map(|_| ())
}

/// The tasks that new events cause: an activity task per scheduled activity, a timer task per
/// timer, deletions for cancelled ones.
pub(crate) fn task_ops(run_id: &RunId, workflow_id: &str, now: Timestamp, events: &[EventKind]) -> Vec<TaskOp> {
    events
        .iter()
        .filter_map(|e| match e {
            EventKind::ActivityScheduled { seq, activity_type, input, options } => Some(TaskOp::Upsert(Task {
                key: TaskKey::activity(run_id, *seq),
                run_id: run_id.clone(),
                visible_at: now,
                lease_duration: options.lease_duration(),
                kind: TaskKind::Activity(Box::new(ActivityTask {
                    workflow_id: workflow_id.to_string(),
                    seq: *seq,
                    activity_type: activity_type.clone(),
                    input: input.clone(),
                    options: options.clone(),
                    attempt: 1,
                    scheduled_at: now,
                    last_error: None,
                    heartbeat: None,
                    heartbeat_at: None,
                    lost_attempts: 0,
                    lost_streak: 0,
                    lost_heartbeat_at: None,
                    async_result: None,
                    cancel_requested: false,
                })),
            })),
            EventKind::TimerStarted { seq, fire_at } => Some(TaskOp::Upsert(Task {
                key: TaskKey::timer(run_id, *seq),
                run_id: run_id.clone(),
                visible_at: *fire_at,
                lease_duration: crate::store::WORKFLOW_TASK_LEASE,
                kind: TaskKind::Timer { seq: *seq },
            })),
            EventKind::ChildWorkflowInitiated { seq, workflow_type, workflow_id: child_id, input, start, .. } => {
                Some(TaskOp::Upsert(Task {
                    key: TaskKey::start_child(run_id, *seq),
                    run_id: run_id.clone(),
                    visible_at: now,
                    lease_duration: crate::store::WORKFLOW_TASK_LEASE,
                    kind: TaskKind::StartChild(Box::new(crate::store::StartChildTask {
                        seq: *seq,
                        parent_workflow_id: workflow_id.to_string(),
                        workflow_type: workflow_type.clone(),
                        workflow_id: child_id.clone(),
                        input: input.clone(),
                        start: start.clone(),
                    })),
                }))
            }
            EventKind::ChildCancelRequested { run_id: child, by_command, .. } => Some(TaskOp::Upsert(Task {
                key: TaskKey::request_cancel(child),
                run_id: child.clone(),
                visible_at: now,
                lease_duration: crate::store::WORKFLOW_TASK_LEASE,
                kind: TaskKind::RequestCancel {
                    reason: match by_command {
                        Some(cmd) => format!("parent {workflow_id} cancelled it (command {cmd})"),
                        None => format!("parent {workflow_id} was cancelled"),
                    },
                },
            })),
            EventKind::ExternalSignalInitiated { seq, workflow_id: target, signal, payload } => Some(external_task(
                run_id,
                workflow_id,
                now,
                *seq,
                target,
                ExternalAction::Signal { name: signal.clone(), payload: payload.clone() },
            )),
            EventKind::ExternalCancelInitiated { seq, workflow_id: target, reason } => Some(external_task(
                run_id,
                workflow_id,
                now,
                *seq,
                target,
                ExternalAction::Cancel { reason: reason.clone() },
            )),
            EventKind::ActivityCancelled { seq } => Some(TaskOp::Delete(TaskKey::activity(run_id, *seq))),
            EventKind::TimerCancelled { seq } => Some(TaskOp::Delete(TaskKey::timer(run_id, *seq))),
            _ => None,
        })
        .collect()
}

/// The task that delivers command `seq` of `run_id` (of workflow `sender`) to `target`.
fn external_task(
    run_id: &RunId,
    sender: &str,
    now: Timestamp,
    seq: Seq,
    target: &str,
    action: ExternalAction,
) -> TaskOp {
    TaskOp::Upsert(Task {
        key: TaskKey::external(run_id, seq),
        run_id: run_id.clone(),
        visible_at: now,
        lease_duration: crate::store::WORKFLOW_TASK_LEASE,
        kind: TaskKind::DeliverExternal(Box::new(ExternalTask {
            seq,
            workflow_id: target.to_string(),
            sender_workflow_id: sender.to_string(),
            action,
        })),
    })
}

/// The run's code could not be advanced. Keep everything, mark the run stuck with the reason,
/// and try again later: a fixed and restarted worker resumes it.
async fn on_task_failure(inner: &Inner, run_id: &RunId, trigger: Trigger, err: WorkflowTaskError) {
    warn!(error = %err, "workflow task failed; the run is stuck until the cause is fixed");
    let now = inner.clock.now();
    let msg = err.to_string();
    let t = trigger.task().cloned();
    let req = match trigger {
        Trigger::Workflow { failures, .. } => {
            let mut next = Task::workflow(run_id, now.add(task_retry_backoff(failures)));
            next.kind = TaskKind::Workflow { failures: failures + 1 };
            AppendRequest::new(run_id.clone(), now).task_op(TaskOp::Upsert(next))
        }
        Trigger::Input { task, .. } => {
            let mut again = task.task.clone();
            again.visible_at = now.add(task_retry_backoff(4));
            AppendRequest::new(run_id.clone(), now).task_op(TaskOp::Upsert(again))
        }
        Trigger::Activity { inputs, attempt, .. } | Trigger::Local { inputs, attempt, .. } => {
            // The outcome must not be lost: record it; the workflow task processes it later.
            let mut wt = Task::workflow(run_id, now.add(task_retry_backoff(0)));
            wt.kind = TaskKind::Workflow { failures: 1 };
            AppendRequest::new(run_id.clone(), now).events(inputs).task_op(TaskOp::Upsert(wt)).attempt(attempt)
        }
    };
    let mut req = req.task_failure(Some(msg));
    if let Some(t) = t {
        req = req.complete(t.task.key.clone(), t.token);
    }
    if let Err(e) = inner.store.append(req).await {
        warn!(error = %e, "recording the workflow task failure failed");
    }
}
