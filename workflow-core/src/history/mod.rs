//! Histories: the append-only record of a run. Pure data, no I/O.

mod event;

pub use event::{ActivityFailure, Event, EventKind, ParentRef, TimeoutKind};

use crate::ids::EventId;

/// A violated history invariant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("history invariant violated at event {event_id}: {reason}")]
pub struct InvariantViolation {
    /// Where.
    pub event_id: EventId,
    /// What.
    pub reason: String,
}

/// Checks a history's invariants: it starts with `WorkflowStarted` at id 1, ids increase by
/// one, times never go back, and at most one terminal event, which is the last.
pub fn check_invariants(events: &[Event]) -> Result<(), InvariantViolation> {
    let fail = |event_id, reason: &str| {
        Err(InvariantViolation {
            event_id,
            reason: reason.into(),
        })
    };
    let mut prev: Option<&Event> = None;
    for e in events {
        match prev {
            None => {
                if e.id != 1 || !matches!(e.kind, EventKind::WorkflowStarted { .. }) {
                    return fail(e.id, "history must start with WorkflowStarted at id 1");
                }
            }
            Some(p) => {
                if e.id != p.id + 1 {
                    return fail(e.id, "event ids must increase by one");
                }
                if e.time < p.time {
                    return fail(e.id, "event time went back");
                }
                if p.kind.is_terminal() {
                    return fail(e.id, "event after a terminal event");
                }
            }
        }
        prev = Some(e);
    }
    Ok(())
}
