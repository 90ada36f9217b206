//! Signals and cancellations one workflow sends another: delivered by a task of the sending
//! run, whose outcome is recorded back in that run.

use std::sync::Arc;

use tracing::warn;

use super::workflow_tasks::{process_run, Trigger};
use super::Inner;
use crate::error::StoreError;
use crate::history::{EventKind, ExternalOutcome, ExternalSender};
use crate::ids::RunId;
use crate::store::{AppendRequest, ExternalAction, ExternalTask, LeasedTask, Task, TaskOp};

/// Delivers `ext` to its target, then records the outcome in the sending run (advancing it)
/// and completes the task, in one append.
pub(crate) async fn deliver(inner: &Arc<Inner>, task: LeasedTask, ext: ExternalTask) {
    let source = task.task.run_id.clone();
    let sender = ExternalSender { workflow_id: ext.sender_workflow_id.clone(), run_id: source.clone(), seq: ext.seq };
    let outcome = match outcome(inner, &ext, sender, task.previous_lease_lost).await {
        Ok(o) => o,
        Err(e) => {
            warn!(error = %e, target = %ext.workflow_id, "delivering to another workflow failed; retried when the lease expires");
            return;
        }
    };
    let input = EventKind::ExternalDelivered { seq: ext.seq, outcome };
    process_run(inner, source, Trigger::Input { task, seq: ext.seq, inputs: vec![input] }).await;
}

async fn outcome(
    inner: &Inner,
    ext: &ExternalTask,
    sender: ExternalSender,
    retried: bool,
) -> Result<ExternalOutcome, StoreError> {
    let Some(target) = inner.store.current_run(&ext.workflow_id).await? else {
        return Ok(ExternalOutcome::NotFound);
    };
    // The worker that held this task before may have delivered it and died before recording
    // the outcome: find that delivery instead of making a second one.
    if retried && already_delivered(inner, &target.run_id, &sender).await? {
        return Ok(ExternalOutcome::Delivered);
    }
    if target.status.is_closed() {
        return Ok(ExternalOutcome::AlreadyClosed);
    }
    let now = inner.clock.now();
    let event = match &ext.action {
        ExternalAction::Signal { name, payload } => {
            EventKind::SignalReceived { name: name.clone(), payload: payload.clone(), sender: Some(sender) }
        }
        ExternalAction::Cancel { reason } => EventKind::CancelRequested {
            reason: Some(format!("{reason} (asked by workflow {})", ext.sender_workflow_id)),
            sender: Some(sender),
        },
    };
    let req = AppendRequest::new(target.run_id.clone(), now)
        .events([event])
        .task_op(TaskOp::Upsert(Task::workflow(&target.run_id, now)));
    match inner.store.append(req).await {
        Ok(_) => Ok(ExternalOutcome::Delivered),
        Err(StoreError::RunClosed { .. }) => Ok(ExternalOutcome::AlreadyClosed),
        Err(e) => Err(e),
    }
}

/// Whether `run_id`'s history holds a signal or cancellation request from `sender`.
async fn already_delivered(inner: &Inner, run_id: &RunId, sender: &ExternalSender) -> Result<bool, StoreError> {
    let history = inner.store.read_history(run_id, 0).await?;
    Ok(history.iter().any(|e| match &e.kind {
        EventKind::SignalReceived { sender: Some(s), .. } | EventKind::CancelRequested { sender: Some(s), .. } => {
            s == sender
        }
        _ => false,
    }))
}
