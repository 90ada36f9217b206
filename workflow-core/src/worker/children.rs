//! Child workflows: starting them, delivering their end to the parent, and applying the
//! parent-close policy.

use tracing::{debug, warn};

use super::closing;
use super::workflow_tasks::{process_run, Trigger};
use std::sync::Arc;

use super::Inner;
use crate::error::{Failure, StoreError};
use crate::history::{ChildEnd, ChildFailure, EventKind, ParentRef};
use crate::ids::{RunId, Seq};
use crate::payload::Payload;
use crate::policy::ParentClosePolicy;
use crate::store::{AppendRequest, LeasedTask, NewRun, RunInfo, RunStatus, StartChildTask, Task, TaskOp};

/// Creates the child run (idempotently: a retry after a crash finds the run it created) and
/// records in the parent that it started, or why it could not.
pub(crate) async fn start_child(inner: &Arc<Inner>, task: LeasedTask, st: StartChildTask) {
    let parent_run = task.task.run_id.clone();
    let parent = ParentRef { workflow_id: st.parent_workflow_id.clone(), run_id: parent_run.clone(), seq: st.seq };
    let input = match start_outcome(inner, &st, &parent).await {
        Ok(ev) => ev,
        Err(e) => {
            warn!(error = %e, child = %st.workflow_id, "starting a child failed; retried when the lease expires");
            return;
        }
    };
    let started = match &input {
        EventKind::ChildWorkflowStarted { run_id, .. } => Some(run_id.clone()),
        _ => None,
    };
    process_run(inner, parent_run.clone(), Trigger::Input { task, seq: st.seq, inputs: vec![input] }).await;
    // If the parent closed while the child was being created, the parent's close could not
    // see the child: apply the policy now (an idempotent upsert if it did).
    if let Some(child_run) = started {
        if let Ok(Some(info)) = inner.store.get_run(&parent_run).await {
            if info.status.is_closed() {
                let history = inner.store.read_history(&parent_run, 0).await.unwrap_or_default();
                let policy = history
                    .iter()
                    .find_map(|e| match &e.kind {
                        EventKind::ChildWorkflowInitiated { seq, parent_close_policy, .. } if *seq == st.seq => {
                            Some(*parent_close_policy)
                        }
                        _ => None,
                    })
                    .unwrap_or_default();
                if policy != ParentClosePolicy::Abandon {
                    let now = inner.clock.now();
                    let req = AppendRequest::new(child_run.clone(), now).task_op(closing::parent_closed_op(
                        &child_run,
                        policy,
                        &st.parent_workflow_id,
                        now,
                    ));
                    if let Err(e) = inner.store.append(req).await {
                        debug!(error = %e, "applying the parent-close policy to a late child failed");
                    }
                }
            }
        }
    }
}

async fn start_outcome(inner: &Arc<Inner>, st: &StartChildTask, parent: &ParentRef) -> Result<EventKind, StoreError> {
    let seq = st.seq;
    if !inner.registry.workflows.contains_key(&st.workflow_type) {
        return Ok(EventKind::ChildWorkflowStartFailed {
            seq,
            reason: format!(
                "workflow type {:?} is not registered with this worker (registered: {}); register it with Worker::register_workflow",
                st.workflow_type,
                inner.registry.workflow_names()
            ),
        });
    }
    let is_ours = |info: &RunInfo| info.parent.as_ref().is_some_and(|p| p.run_id == parent.run_id && p.seq == seq);
    if let Some(existing) = inner.store.current_run(&st.workflow_id).await? {
        if is_ours(&existing) {
            return Ok(EventKind::ChildWorkflowStarted { seq, run_id: existing.run_id });
        }
    }
    let run_id = RunId::generate();
    let now = inner.clock.now();
    let run = NewRun::new(run_id.clone(), &st.workflow_type, &st.workflow_id, st.input.clone(), now)
        .parent(Some(parent.clone()))
        .start(st.start.clone())
        .seed(uuid::Uuid::new_v4().as_u64_pair().0);
    match super::create_run(inner, run).await {
        Ok(()) => Ok(EventKind::ChildWorkflowStarted { seq, run_id }),
        Err(StoreError::AlreadyExists { run_id: other, .. }) => match inner.store.get_run(&other).await? {
            Some(info) if is_ours(&info) => Ok(EventKind::ChildWorkflowStarted { seq, run_id: other }),
            _ => Ok(EventKind::ChildWorkflowStartFailed {
                seq,
                reason: format!("workflow id {:?} is already in use by open run {other}", st.workflow_id),
            }),
        },
        Err(e) => Err(e),
    }
}

/// Delivers a closed child's outcome to its parent.
pub(crate) async fn deliver_child_end(inner: &Arc<Inner>, task: LeasedTask, seq: Seq, child_run: RunId) {
    let parent_run = task.task.run_id.clone();
    let info = match inner.store.get_run(&child_run).await {
        Ok(i) => i,
        Err(e) => {
            warn!(error = %e, "reading a child's outcome failed; retried when the lease expires");
            return;
        }
    };
    let input = match info {
        Some(info) => child_end_event(seq, &info),
        None => EventKind::ChildWorkflowFailed {
            seq,
            failure: ChildFailure {
                workflow_id: String::new(),
                workflow_type: String::new(),
                kind: ChildEnd::Failed,
                cause: Some(Failure::new(
                    "ChildRunMissing",
                    format!("child run {child_run} is no longer in the store"),
                )),
            },
        },
    };
    let mut inputs = vec![EventKind::ChildWorkflowStarted { seq, run_id: child_run }];
    inputs.push(input);
    // `ChildWorkflowStarted` first: a fast child may end before its start was recorded in the
    // parent; the machine accepts a repeated start for a still-pending child.
    process_run(inner, parent_run, Trigger::Input { task, seq, inputs }).await;
}

fn child_end_event(seq: Seq, info: &RunInfo) -> EventKind {
    let failure = |kind| ChildFailure {
        workflow_id: info.workflow_id.clone(),
        workflow_type: info.workflow_type.clone(),
        kind,
        cause: info.failure.clone(),
    };
    match info.status {
        RunStatus::Completed => {
            EventKind::ChildWorkflowCompleted { seq, result: info.result.clone().unwrap_or_else(Payload::null) }
        }
        RunStatus::Failed | RunStatus::Running | RunStatus::ContinuedAsNew => {
            EventKind::ChildWorkflowFailed { seq, failure: failure(ChildEnd::Failed) }
        }
        RunStatus::TimedOut => EventKind::ChildWorkflowFailed { seq, failure: failure(ChildEnd::TimedOut) },
        RunStatus::Cancelled => EventKind::ChildWorkflowFailed { seq, failure: failure(ChildEnd::Cancelled) },
        RunStatus::Terminated => EventKind::ChildWorkflowFailed { seq, failure: failure(ChildEnd::Terminated) },
    }
}

/// Applies a parent-close policy to this task's run (the child).
pub(crate) async fn apply_parent_close(
    inner: &Inner,
    task: LeasedTask,
    policy: ParentClosePolicy,
    parent_workflow_id: String,
) {
    let run_id = closing::chain_head(&*inner.store, &task.task.run_id).await.unwrap_or(task.task.run_id.clone());
    let now = inner.clock.now();
    let done = (task.task.key.clone(), task.token);
    let result = match policy {
        ParentClosePolicy::Terminate => {
            let reason = format!("terminated by parent close policy, parent {parent_workflow_id}");
            closing::close_run(&*inner.store, &run_id, EventKind::WorkflowTerminated { reason }, now, Some(done)).await
        }
        ParentClosePolicy::RequestCancel => {
            let reason = format!("cancel requested by parent close policy, parent {parent_workflow_id}");
            append_cancel_request(inner, &run_id, reason, done).await
        }
        ParentClosePolicy::Abandon => {
            inner.store.append(AppendRequest::new(run_id.clone(), now).complete(done.0, done.1)).await.map(|_| ())
        }
    };
    finish_run_task(inner, &task, result).await;
}

/// Asks this task's run to cancel (its parent was cancelled).
pub(crate) async fn request_cancel(inner: &Inner, task: LeasedTask, reason: String) {
    let done = (task.task.key.clone(), task.token);
    let run_id = closing::chain_head(&*inner.store, &task.task.run_id).await.unwrap_or(task.task.run_id.clone());
    let result = append_cancel_request(inner, &run_id, reason, done).await;
    finish_run_task(inner, &task, result).await;
}

async fn append_cancel_request(
    inner: &Inner,
    run_id: &RunId,
    reason: String,
    done: (crate::store::TaskKey, crate::store::LeaseToken),
) -> Result<(), StoreError> {
    let now = inner.clock.now();
    let req = AppendRequest::new(run_id.clone(), now)
        .events([EventKind::CancelRequested { reason: Some(reason), sender: None }])
        .task_op(TaskOp::Upsert(Task::workflow(run_id, now)))
        .complete(done.0, done.1);
    inner.store.append(req).await.map(|_| ())
}

/// A run already closed on its own needs nothing more: drop the task.
async fn finish_run_task(inner: &Inner, task: &LeasedTask, result: Result<(), StoreError>) {
    match result {
        Ok(()) => {}
        Err(StoreError::RunClosed { .. }) => {
            let req = AppendRequest::new(task.task.run_id.clone(), inner.clock.now())
                .complete(task.task.key.clone(), task.token);
            let _ = inner.store.append(req).await;
        }
        Err(e) => warn!(error = %e, "acting on a child run failed; retried when the lease expires"),
    }
}

/// Creates a successor run (continue-as-new or a retry) whose task this is.
pub(crate) async fn start_run(inner: &Arc<Inner>, task: LeasedTask, st: crate::store::StartRunTask) {
    let run_id = task.task.run_id.clone();
    let run = NewRun::new(run_id.clone(), &st.workflow_type, &st.workflow_id, st.input.clone(), st.start_at)
        .parent(st.parent.clone())
        .start(st.start.clone())
        .seed(uuid::Uuid::new_v4().as_u64_pair().0);
    match super::create_run(inner, run).await {
        Ok(()) => {}
        Err(StoreError::AlreadyExists { run_id: existing, .. }) if existing == run_id => {}
        Err(StoreError::AlreadyExists { run_id: other, workflow_id }) => {
            warn!(%workflow_id, %other, "the successor run cannot start: another run holds the workflow id");
        }
        Err(e) => {
            warn!(error = %e, "creating the successor run failed; retried when the lease expires");
            return;
        }
    }
    // The task's run may never have been created (the id was taken): complete the lease through
    // the run it continues, which exists.
    let via = st.start.continued_from.clone().unwrap_or(run_id);
    let req = AppendRequest::new(via, inner.clock.now()).complete(task.task.key.clone(), task.token);
    if let Err(e) = inner.store.append(req).await {
        debug!(error = %e, "completing the start-run task failed");
    }
}
