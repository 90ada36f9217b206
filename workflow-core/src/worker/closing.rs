//! What closing a run causes elsewhere: a successor run (continue-as-new, a retry by the
//! workflow's retry policy), the parent learning the outcome, open children getting their
//! parent-close policy. Everything travels as tasks in the closing append (an outbox).

use crate::history::{open_children, Event, EventKind, ParentRef, RunStart};
use crate::ids::RunId;
use crate::payload::Payload;
use crate::policy::{next_retry, NextRetry, ParentClosePolicy};
use crate::store::{AppendRequest, LeaseToken, StartRunTask, Store, Task, TaskKey, TaskKind, TaskOp};
use crate::time::Timestamp;

/// The facts of a run's `WorkflowStarted` event.
pub(crate) struct Started {
    pub(crate) workflow_id: String,
    pub(crate) workflow_type: String,
    pub(crate) input: Payload,
    pub(crate) parent: Option<ParentRef>,
    pub(crate) start: RunStart,
}

impl Started {
    pub(crate) fn of(first: Option<&EventKind>) -> Option<Started> {
        match first {
            Some(EventKind::WorkflowStarted { workflow_id, workflow_type, input, parent, start, .. }) => {
                Some(Started {
                    workflow_id: workflow_id.clone(),
                    workflow_type: workflow_type.clone(),
                    input: input.clone(),
                    parent: parent.clone(),
                    start: start.clone(),
                })
            }
            _ => None,
        }
    }
}

/// Plans the close of `run_id`: fills in the successor of a retried failure on `terminal`,
/// and returns the task changes closing causes. `history` is the stored history (it starts
/// with `WorkflowStarted`); `pending` are the events appended with `terminal`, before it.
pub(crate) fn plan_close(
    run_id: &RunId,
    history: &[Event],
    pending: &[EventKind],
    terminal: &mut EventKind,
    now: Timestamp,
) -> Vec<TaskOp> {
    let Some(started) = Started::of(history.first().map(|e| &e.kind)) else { return Vec::new() };
    let mut ops = Vec::new();
    let successor = match terminal {
        EventKind::WorkflowContinuedAsNew { input, new_run_id } => Some((
            new_run_id.clone(),
            input.clone(),
            RunStart { continued_from: Some(run_id.clone()), attempt: 1, reset_from: None, ..started.start.clone() },
            now,
        )),
        EventKind::WorkflowFailed { failure, next_run } => match &started.start.retry_policy {
            Some(policy) => match next_retry(policy, started.start.attempt.max(1), &failure.error_type, true) {
                NextRetry::RetryAfter { attempt, after } => {
                    let id = RunId::generate();
                    *next_run = Some(id.clone());
                    let start = RunStart {
                        continued_from: Some(run_id.clone()),
                        attempt,
                        reset_from: None,
                        ..started.start.clone()
                    };
                    Some((id, started.input.clone(), start, now.add(after)))
                }
                _ => None,
            },
            None => None,
        },
        _ => None,
    };
    // No successor once the workflow's execution deadline has passed.
    let successor = successor.filter(|(_, _, start, at)| start.execution_deadline.is_none_or(|d| *at < d));
    if successor.is_none() {
        if let EventKind::WorkflowFailed { next_run, .. } = terminal {
            *next_run = None;
        }
    }
    match successor {
        Some((new_run_id, input, start, start_at)) => ops.push(TaskOp::Upsert(Task {
            key: TaskKey::start_run(&new_run_id),
            run_id: new_run_id,
            visible_at: now,
            lease_duration: crate::store::WORKFLOW_TASK_LEASE,
            kind: TaskKind::StartRun(Box::new(StartRunTask {
                workflow_id: started.workflow_id.clone(),
                workflow_type: started.workflow_type.clone(),
                input,
                parent: started.parent.clone(),
                start,
                start_at,
            })),
        })),
        None => {
            if let Some(p) = &started.parent {
                ops.push(TaskOp::Upsert(Task {
                    key: TaskKey::child_closed(&p.run_id, p.seq),
                    run_id: p.run_id.clone(),
                    visible_at: now,
                    lease_duration: crate::store::WORKFLOW_TASK_LEASE,
                    kind: TaskKind::ChildClosed { seq: p.seq, child_run_id: run_id.clone() },
                }));
            }
        }
    }
    let all = history.iter().map(|e| &e.kind).chain(pending.iter());
    for child in open_children(all) {
        if child.policy != ParentClosePolicy::Abandon {
            ops.push(parent_closed_op(&child.run_id, child.policy, &started.workflow_id, now));
        }
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
        lease_duration: crate::store::WORKFLOW_TASK_LEASE,
        kind: TaskKind::ParentClosed { policy, parent_workflow_id: parent_workflow_id.to_string() },
    })
}

/// Closes `run_id` from outside its code (termination, run timeout): the terminal event and
/// what closing causes, in one append. `complete` finishes a lease in the same write.
pub(crate) async fn close_run(
    store: &dyn Store,
    run_id: &RunId,
    mut terminal: EventKind,
    now: Timestamp,
    complete: Option<(TaskKey, LeaseToken)>,
) -> Result<(), crate::error::StoreError> {
    let history = store.read_history(run_id, 0).await?;
    let ops = plan_close(run_id, &history, &[], &mut terminal, now);
    let mut req = AppendRequest::new(run_id.clone(), now).events([terminal]);
    req.task_ops = ops;
    if let Some((key, token)) = complete {
        req = req.complete(key, token);
    }
    store.append(req).await.map(|_| ())
}

/// The latest run of the chain that `run_id` begins (continue-as-new, retries): policies and
/// cancellation aimed at a child's first run reach the run that is open now.
pub(crate) async fn chain_head(store: &dyn Store, run_id: &RunId) -> Result<RunId, crate::error::StoreError> {
    let mut id = run_id.clone();
    loop {
        let Some(info) = store.get_run(&id).await? else { return Ok(id) };
        if !info.status.is_closed() {
            return Ok(id);
        }
        let last = store.read_history(&id, info.last_event_id.saturating_sub(1)).await?;
        id = match last.last().map(|e| &e.kind) {
            Some(EventKind::WorkflowContinuedAsNew { new_run_id, .. }) => new_run_id.clone(),
            Some(EventKind::WorkflowFailed { next_run: Some(next), .. }) => next.clone(),
            _ => return Ok(id),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(parent: Option<ParentRef>, start: RunStart) -> Event {
        Event {
            id: 1,
            time: Timestamp(0),
            kind: EventKind::WorkflowStarted {
                workflow_type: "T".into(),
                workflow_id: "p".into(),
                input: Payload::null(),
                seed: 1,
                parent,
                start,
            },
        }
    }

    fn keys(ops: &[TaskOp]) -> Vec<String> {
        ops.iter()
            .map(|o| match o {
                TaskOp::Upsert(t) => t.key.0.split('/').next().unwrap_or_default().to_string(),
                TaskOp::Delete(k) => k.0.clone(),
            })
            .collect()
    }

    #[test]
    fn closing_notifies_parent_and_applies_policies() {
        let run = RunId("p".into());
        let parent = ParentRef { workflow_id: "gp".into(), run_id: RunId("gp-run".into()), seq: 3 };
        let mut history = vec![started(Some(parent), RunStart::plain())];
        let kinds = [
            EventKind::ChildWorkflowInitiated {
                seq: 0,
                workflow_type: "C".into(),
                workflow_id: "c0".into(),
                input: Payload::null(),
                parent_close_policy: ParentClosePolicy::Terminate,
                start: RunStart::plain(),
            },
            EventKind::ChildWorkflowStarted { seq: 0, run_id: RunId("c0-run".into()) },
            EventKind::ChildWorkflowInitiated {
                seq: 1,
                workflow_type: "C".into(),
                workflow_id: "c1".into(),
                input: Payload::null(),
                parent_close_policy: ParentClosePolicy::Abandon,
                start: RunStart::plain(),
            },
            EventKind::ChildWorkflowStarted { seq: 1, run_id: RunId("c1-run".into()) },
            EventKind::ChildWorkflowInitiated {
                seq: 2,
                workflow_type: "C".into(),
                workflow_id: "c2".into(),
                input: Payload::null(),
                parent_close_policy: ParentClosePolicy::RequestCancel,
                start: RunStart::plain(),
            },
            EventKind::ChildWorkflowStarted { seq: 2, run_id: RunId("c2-run".into()) },
            EventKind::ChildWorkflowCompleted { seq: 2, result: Payload::null() },
        ];
        for (i, k) in kinds.into_iter().enumerate() {
            history.push(Event { id: 2 + i as u64, time: Timestamp(0), kind: k });
        }
        let mut terminal = EventKind::WorkflowCompleted { result: Payload::null() };
        let ops = plan_close(&run, &history, &[], &mut terminal, Timestamp(5));
        assert_eq!(keys(&ops), vec!["childclosed", "parentclosed"]);
        match &ops[1] {
            TaskOp::Upsert(t) => assert_eq!(t.run_id, RunId("c0-run".into()), "only the open, non-abandoned child"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_retried_failure_names_its_successor_and_does_not_notify_the_parent_yet() {
        let run = RunId("p".into());
        let parent = ParentRef { workflow_id: "gp".into(), run_id: RunId("gp-run".into()), seq: 0 };
        let start =
            RunStart { retry_policy: Some(crate::RetryPolicy::default().maximum_attempts(2)), ..RunStart::plain() };
        let history = vec![started(Some(parent), start)];
        let mut terminal = EventKind::WorkflowFailed { failure: crate::Failure::new("E", "x"), next_run: None };
        let ops = plan_close(&run, &history, &[], &mut terminal, Timestamp(5));
        assert_eq!(keys(&ops), vec!["start"]);
        let EventKind::WorkflowFailed { next_run: Some(next), .. } = &terminal else { panic!("{terminal:?}") };
        match &ops[0] {
            TaskOp::Upsert(Task { run_id, kind: TaskKind::StartRun(st), .. }) => {
                assert_eq!(run_id, next);
                assert_eq!(st.start.attempt, 2);
                assert_eq!(st.start_at, Timestamp(1005), "after the policy's first backoff");
            }
            other => panic!("{other:?}"),
        }
        // The last attempt fails for good and notifies the parent.
        let history = vec![started(
            Some(ParentRef { workflow_id: "gp".into(), run_id: RunId("gp-run".into()), seq: 0 }),
            RunStart {
                attempt: 2,
                retry_policy: Some(crate::RetryPolicy::default().maximum_attempts(2)),
                ..RunStart::plain()
            },
        )];
        let mut terminal = EventKind::WorkflowFailed { failure: crate::Failure::new("E", "x"), next_run: None };
        let ops = plan_close(&run, &history, &[], &mut terminal, Timestamp(5));
        assert_eq!(keys(&ops), vec!["childclosed"]);
    }
}
