//! Resetting a run: what a new run keeps of an old run's history when it re-runs it from a
//! point, and what must be done again. Pure: the client and the worker apply the plan.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{Event, EventKind, RunStart};
use crate::error::ResetError;
use crate::ids::{EventId, RunId, Seq};

/// Where a reset takes a run back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "to", content = "event_id")]
pub enum ResetPoint {
    /// Keep the old run's events up to and including this one (by the old run's event ids).
    Event(EventId),
    /// Keep everything before the run's last failure: the last failed or timed-out activity,
    /// or failed child, when there is one; otherwise everything before the run's closing
    /// event. For runs that failed, timed out or were terminated.
    BeforeFailure,
}

/// Where a run came from when it was made by a reset: recorded in its `WorkflowStarted`
/// ([`RunStart::reset_from`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetFrom {
    /// The run that was reset.
    pub run_id: RunId,
    /// The last of its events the new run keeps (the old run's numbering).
    pub event_id: EventId,
    /// Why, as the operator said.
    pub reason: String,
}

/// What a new run made by a reset starts with.
#[derive(Clone, Debug, PartialEq)]
pub struct ResetPlan {
    /// The last event of the old run that is kept.
    pub point: EventId,
    /// The events the new run records after its `WorkflowStarted`: the old run's events 2 to
    /// `point` (minus the starts of attempts that had not ended by then, and the starts of
    /// children that are started again), then the signals the old run received after
    /// `point`, in order.
    pub events: Vec<EventKind>,
    /// Of `events`, the commands whose outcome was not recorded by `point`: their work
    /// (an activity, a timer, a child start) is scheduled again.
    pub pending: Vec<EventKind>,
    /// Children started before `point` whose end came after it (or never): they are
    /// started again. A reset is refused while one of them is still open.
    pub restarted_children: Vec<(Seq, String, RunId)>,
}

impl ResetPlan {
    /// Plans a reset of the run whose whole history is `history` to `point`.
    pub fn new(history: &[Event], point: ResetPoint) -> Result<ResetPlan, ResetError> {
        let last = history.last().map_or(0, |e| e.id);
        let terminal = history.iter().find(|e| e.kind.is_terminal());
        let point = match point {
            ResetPoint::Event(id) => id,
            ResetPoint::BeforeFailure => {
                let Some(end) = terminal else {
                    return Err(ResetError::NoFailure { status: "running".into() });
                };
                match &end.kind {
                    EventKind::WorkflowFailed { .. }
                    | EventKind::WorkflowTimedOut
                    | EventKind::WorkflowTerminated { .. } => {}
                    other => return Err(ResetError::NoFailure { status: other.name().into() }),
                }
                history
                    .iter()
                    .rev()
                    .find(|e| {
                        matches!(
                            e.kind,
                            EventKind::ActivityFailed { .. }
                                | EventKind::ActivityTimedOut { .. }
                                | EventKind::ChildWorkflowFailed { .. }
                                | EventKind::ChildWorkflowStartFailed { .. }
                        )
                    })
                    .map_or(end.id, |e| e.id)
                    - 1
            }
        };
        let end = terminal.map_or(last + 1, |e| e.id);
        if point < 1 || point >= end {
            return Err(ResetError::PointOutOfRange { point, last: end - 1 });
        }
        let kept: Vec<&Event> = history.iter().filter(|e| e.id >= 2 && e.id <= point).collect();

        // Which commands had their outcome by `point`.
        let mut ended: HashSet<Seq> = HashSet::new();
        let mut started_children: HashMap<Seq, RunId> = HashMap::new();
        for e in &kept {
            match &e.kind {
                EventKind::ActivityCompleted { seq, .. }
                | EventKind::ActivityFailed { seq, .. }
                | EventKind::ActivityTimedOut { seq, .. }
                | EventKind::ActivityCancelled { seq }
                | EventKind::TimerFired { seq }
                | EventKind::TimerCancelled { seq }
                | EventKind::ChildWorkflowStartFailed { seq, .. }
                | EventKind::ChildWorkflowCompleted { seq, .. }
                | EventKind::ChildWorkflowFailed { seq, .. } => {
                    ended.insert(*seq);
                }
                EventKind::ChildWorkflowStarted { seq, run_id } => {
                    started_children.insert(*seq, run_id.clone());
                }
                _ => {}
            }
        }
        let mut plan = ResetPlan { point, events: Vec::new(), pending: Vec::new(), restarted_children: Vec::new() };
        for e in kept {
            let open = |seq: &Seq| !ended.contains(seq);
            match &e.kind {
                // An attempt that had not ended is started again, as attempt 1 of a new task.
                EventKind::ActivityStarted { seq, .. } if open(seq) => continue,
                // A child that had not ended is started again: forget its old run.
                EventKind::ChildWorkflowStarted { seq, .. } | EventKind::ChildCancelRequested { seq, .. }
                    if open(seq) =>
                {
                    continue
                }
                EventKind::ActivityScheduled { seq, .. } | EventKind::TimerStarted { seq, .. } if open(seq) => {
                    plan.pending.push(e.kind.clone());
                }
                EventKind::ChildWorkflowInitiated { seq, workflow_id, .. } if open(seq) => {
                    if let Some(run) = started_children.get(seq) {
                        plan.restarted_children.push((*seq, workflow_id.clone(), run.clone()));
                    }
                    plan.pending.push(e.kind.clone());
                }
                _ => {}
            }
            plan.events.push(e.kind.clone());
        }
        // Signals and updates are requests from outside: the new run receives those the old
        // one got later.
        plan.events.extend(
            history
                .iter()
                .filter(|e| {
                    e.id > point
                        && matches!(e.kind, EventKind::SignalReceived { .. } | EventKind::UpdateAccepted { .. })
                })
                .map(|e| e.kind.clone()),
        );
        Ok(plan)
    }

    /// The `WorkflowStarted` of the new run: the old run's (same type, id, input and seed, so
    /// that replaying the kept events gives the same values), with `reset_from` set, no
    /// parent, and no execution deadline (it had passed, or would pass, for the old run).
    pub fn started(history: &[Event], from: ResetFrom) -> Option<EventKind> {
        match history.first().map(|e| &e.kind) {
            Some(EventKind::WorkflowStarted { workflow_type, workflow_id, input, seed, start, .. }) => {
                Some(EventKind::WorkflowStarted {
                    workflow_type: workflow_type.clone(),
                    workflow_id: workflow_id.clone(),
                    input: input.clone(),
                    seed: *seed,
                    parent: None,
                    start: RunStart {
                        continued_from: None,
                        execution_deadline: None,
                        reset_from: Some(Box::new(from)),
                        ..start.clone()
                    },
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{ActivityFailure, ChildFailure};
    use crate::{ActivityError, ActivityOptions, Failure, ParentClosePolicy, Payload, Timestamp};

    fn history(kinds: Vec<EventKind>) -> Vec<Event> {
        kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| Event { id: i as EventId + 1, time: Timestamp(0), kind })
            .collect()
    }

    fn started() -> EventKind {
        EventKind::WorkflowStarted {
            workflow_type: "t".into(),
            workflow_id: "w".into(),
            input: Payload::null(),
            seed: 7,
            parent: None,
            start: RunStart::plain(),
        }
    }

    fn scheduled(seq: Seq) -> EventKind {
        EventKind::ActivityScheduled {
            seq,
            activity_type: "a".into(),
            input: Payload::null(),
            options: ActivityOptions::default(),
        }
    }

    fn completed(seq: Seq) -> EventKind {
        EventKind::ActivityCompleted { seq, result: Payload::null() }
    }

    fn failed(seq: Seq) -> EventKind {
        EventKind::ActivityFailed {
            seq,
            failure: ActivityFailure::Failed {
                activity_type: "a".into(),
                attempts: 3,
                error: ActivityError::non_retryable("Broken", "no"),
            },
        }
    }

    fn started_attempt(seq: Seq) -> EventKind {
        EventKind::ActivityStarted { seq, attempt: 1, worker: "w1".into() }
    }

    fn workflow_failed() -> EventKind {
        EventKind::WorkflowFailed { failure: Failure::new("ActivityFailed", "x"), next_run: None }
    }

    fn signal(n: u32) -> EventKind {
        EventKind::SignalReceived { name: "s".into(), payload: Payload::encode(&n).unwrap(), sender: None }
    }

    #[test]
    fn before_failure_keeps_what_succeeded_and_schedules_the_failed_activity_again() {
        let h = history(vec![
            started(),          // 1
            scheduled(0),       // 2
            started_attempt(0), // 3
            completed(0),       // 4
            scheduled(1),       // 5
            signal(1),          // 6
            started_attempt(1), // 7
            failed(1),          // 8
            signal(2),          // 9
            workflow_failed(),  // 10
        ]);
        let plan = ResetPlan::new(&h, ResetPoint::BeforeFailure).unwrap();
        assert_eq!(plan.point, 7);
        // Activity 1's start is dropped (its attempt starts again); signal 2 is received again.
        assert_eq!(
            plan.events,
            vec![scheduled(0), started_attempt(0), completed(0), scheduled(1), signal(1), signal(2)]
        );
        assert_eq!(plan.pending, vec![scheduled(1)]);
        assert!(plan.restarted_children.is_empty());
    }

    #[test]
    fn pending_timers_and_children_are_started_again() {
        let child = EventKind::ChildWorkflowInitiated {
            seq: 1,
            workflow_type: "c".into(),
            workflow_id: "w/c".into(),
            input: Payload::null(),
            parent_close_policy: ParentClosePolicy::Terminate,
            start: RunStart::plain(),
        };
        let child_started = EventKind::ChildWorkflowStarted { seq: 1, run_id: RunId("c-run".into()) };
        let timer = EventKind::TimerStarted { seq: 0, fire_at: Timestamp(99) };
        let child_failed = EventKind::ChildWorkflowFailed {
            seq: 1,
            failure: ChildFailure {
                workflow_type: "c".into(),
                workflow_id: "w/c".into(),
                kind: crate::history::ChildEnd::Failed,
                cause: None,
            },
        };
        let h = history(vec![started(), timer.clone(), child.clone(), child_started, child_failed, workflow_failed()]);
        let plan = ResetPlan::new(&h, ResetPoint::BeforeFailure).unwrap();
        assert_eq!(plan.point, 4);
        assert_eq!(plan.events, vec![timer.clone(), child.clone()]);
        assert_eq!(plan.pending, vec![timer, child]);
        assert_eq!(plan.restarted_children, vec![(1, "w/c".to_string(), RunId("c-run".into()))]);
    }

    #[test]
    fn points_outside_the_history_or_at_its_end_are_refused() {
        let h = history(vec![started(), scheduled(0), completed(0), workflow_failed()]);
        assert!(matches!(ResetPlan::new(&h, ResetPoint::Event(0)), Err(ResetError::PointOutOfRange { last: 3, .. })));
        assert!(matches!(ResetPlan::new(&h, ResetPoint::Event(4)), Err(ResetError::PointOutOfRange { .. })));
        // Event 1: run again from the start, with the same input and seed.
        let plan = ResetPlan::new(&h, ResetPoint::Event(1)).unwrap();
        assert!(plan.events.is_empty() && plan.pending.is_empty());
        // No failure of the run itself to go back before.
        let done = history(vec![started(), EventKind::WorkflowCompleted { result: Payload::null() }]);
        assert!(matches!(ResetPlan::new(&done, ResetPoint::BeforeFailure), Err(ResetError::NoFailure { .. })));
        let open = history(vec![started(), scheduled(0)]);
        assert!(matches!(ResetPlan::new(&open, ResetPoint::BeforeFailure), Err(ResetError::NoFailure { .. })));
        assert_eq!(ResetPlan::new(&open, ResetPoint::Event(2)).unwrap().pending, vec![scheduled(0)]);
    }

    #[test]
    fn the_new_run_starts_like_the_old_one_without_parent_or_deadline() {
        let h = history(vec![started()]);
        let from = ResetFrom { run_id: RunId("old".into()), event_id: 1, reason: "fixed".into() };
        match ResetPlan::started(&h, from.clone()) {
            Some(EventKind::WorkflowStarted { seed: 7, parent: None, start, .. }) => {
                assert_eq!(start.reset_from.as_deref(), Some(&from));
                assert_eq!(start.execution_deadline, None);
            }
            other => panic!("{other:?}"),
        }
    }
}
