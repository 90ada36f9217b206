//! What closing a run causes in other runs: its parent learns the outcome, its open children
//! get their parent-close policy. Pure: computes task changes from history.

use std::time::Duration;

use crate::history::{open_children, EventKind, ParentRef};
use crate::ids::RunId;
use crate::policy::ParentClosePolicy;
use crate::store::{Task, TaskKey, TaskKind, TaskOp};
use crate::time::Timestamp;

/// The task changes that closing `run_id` causes, given its whole history (`events`, including
/// the terminal event) and its parent.
pub(crate) fn close_ops<'a>(
    run_id: &RunId,
    workflow_id: &str,
    parent: Option<&ParentRef>,
    events: impl IntoIterator<Item = &'a EventKind>,
    now: Timestamp,
) -> Vec<TaskOp> {
    let mut ops = Vec::new();
    if let Some(p) = parent {
        ops.push(TaskOp::Upsert(Task {
            key: TaskKey::child_closed(&p.run_id, p.seq),
            run_id: p.run_id.clone(),
            visible_at: now,
            lease_duration: Duration::from_secs(60),
            kind: TaskKind::ChildClosed { seq: p.seq, child_run_id: run_id.clone() },
        }));
    }
    for child in open_children(events) {
        if child.policy == ParentClosePolicy::Abandon {
            continue;
        }
        ops.push(parent_closed_op(&child.run_id, child.policy, workflow_id, now));
    }
    ops
}

pub(crate) fn parent_closed_op(
    child_run_id: &RunId,
    policy: ParentClosePolicy,
    parent_workflow_id: &str,
    now: Timestamp,
) -> TaskOp {
    TaskOp::Upsert(Task {
        key: TaskKey::parent_closed(child_run_id),
        run_id: child_run_id.clone(),
        visible_at: now,
        lease_duration: Duration::from_secs(60),
        kind: TaskKind::ParentClosed { policy, parent_workflow_id: parent_workflow_id.to_string() },
    })
}

/// The parent recorded in a history's first event.
pub(crate) fn parent_of<'a>(mut events: impl Iterator<Item = &'a EventKind>) -> Option<ParentRef> {
    match events.next() {
        Some(EventKind::WorkflowStarted { parent, .. }) => parent.clone(),
        _ => None,
    }
}

/// Terminates `run_id` with `reason`: the terminal event and what closing causes (parent
/// notified, children closed by their policy) in one append. `complete` finishes a lease in
/// the same write.
pub(crate) async fn terminate(
    store: &dyn crate::store::Store,
    run_id: &RunId,
    reason: String,
    now: Timestamp,
    complete: Option<(TaskKey, crate::store::LeaseToken)>,
) -> Result<(), crate::error::StoreError> {
    let history = store.read_history(run_id, 0).await?;
    let (workflow_id, parent) = match history.first().map(|e| &e.kind) {
        Some(EventKind::WorkflowStarted { workflow_id, parent, .. }) => (workflow_id.clone(), parent.clone()),
        _ => (String::new(), None),
    };
    let terminal = EventKind::WorkflowTerminated { reason };
    let ops = close_ops(
        run_id,
        &workflow_id,
        parent.as_ref(),
        history.iter().map(|e| &e.kind).chain(std::iter::once(&terminal)),
        now,
    );
    let mut req = crate::store::AppendRequest::new(run_id.clone(), now).events([terminal]);
    req.task_ops = ops;
    if let Some((key, token)) = complete {
        req = req.complete(key, token);
    }
    store.append(req).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Payload;

    #[test]
    fn closing_notifies_parent_and_applies_policies() {
        let run = RunId("p".into());
        let parent = ParentRef { workflow_id: "gp".into(), run_id: RunId("gp-run".into()), seq: 3 };
        let events = vec![
            EventKind::ChildWorkflowInitiated {
                seq: 0,
                workflow_type: "C".into(),
                workflow_id: "c0".into(),
                input: Payload::null(),
                parent_close_policy: ParentClosePolicy::Terminate,
            },
            EventKind::ChildWorkflowStarted { seq: 0, run_id: RunId("c0-run".into()) },
            EventKind::ChildWorkflowInitiated {
                seq: 1,
                workflow_type: "C".into(),
                workflow_id: "c1".into(),
                input: Payload::null(),
                parent_close_policy: ParentClosePolicy::Abandon,
            },
            EventKind::ChildWorkflowStarted { seq: 1, run_id: RunId("c1-run".into()) },
            EventKind::ChildWorkflowInitiated {
                seq: 2,
                workflow_type: "C".into(),
                workflow_id: "c2".into(),
                input: Payload::null(),
                parent_close_policy: ParentClosePolicy::RequestCancel,
            },
            EventKind::ChildWorkflowStarted { seq: 2, run_id: RunId("c2-run".into()) },
            EventKind::ChildWorkflowCompleted { seq: 2, result: Payload::null() },
        ];
        let ops = close_ops(&run, "p", Some(&parent), &events, Timestamp(5));
        let keys: Vec<String> = ops
            .iter()
            .map(|o| match o {
                TaskOp::Upsert(t) => t.key.0.clone(),
                TaskOp::Delete(k) => k.0.clone(),
            })
            .collect();
        assert_eq!(keys, vec!["childclosed/gp-run/3".to_string(), "parentclosed/c0-run".to_string()]);
    }
}
