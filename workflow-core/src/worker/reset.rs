//! Applying a reset: the new run's kept events and the work they leave pending, written in
//! one append. Shared by [`Client::reset`](crate::Client::reset), which does it at once, and
//! the worker, which does it when a run made by a reset has only its `WorkflowStarted` (the
//! process that reset it died between creating the run and this append).

use crate::error::StoreError;
use crate::history::{EventKind, ResetFrom, ResetPlan, ResetPoint};
use crate::ids::RunId;
use crate::store::{AppendRequest, Store, Task, TaskOp};
use crate::time::Timestamp;

/// The reset the run's `WorkflowStarted` records, if it was made by one.
pub(crate) fn reset_from(started: &EventKind) -> Option<&ResetFrom> {
    match started {
        EventKind::WorkflowStarted { start, .. } => start.reset_from.as_deref(),
        _ => None,
    }
}

/// Writes the kept events of the reset `from` into the new run `run_id` (of `workflow_id`),
/// which must hold only its `WorkflowStarted`, with the tasks of the pending work and a
/// workflow task. Returns whether it appended anything: nothing when there is nothing to
/// keep, or when someone else did it first (the append expects event 1 to be the last).
pub(crate) async fn finish(
    store: &dyn Store,
    run_id: &RunId,
    workflow_id: &str,
    from: &ResetFrom,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let old = store.read_history(&from.run_id, 0).await?;
    let plan = ResetPlan::new(&old, ResetPoint::Event(from.event_id)).map_err(|e| StoreError::Corrupt {
        key: format!("run {run_id}"),
        reason: format!(
            "it was reset from run {} at event {}, which cannot be replanned: {e}",
            from.run_id, from.event_id
        ),
    })?;
    if plan.events.is_empty() {
        return Ok(false);
    }
    let mut req = AppendRequest::new(run_id.clone(), now).expect_last(1).events(plan.events);
    for op in super::workflow_tasks::task_ops(run_id, workflow_id, now, &plan.pending) {
        req = req.task_op(op);
    }
    req = req.task_op(TaskOp::Upsert(Task::workflow(run_id, now)));
    match store.append(req).await {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}
