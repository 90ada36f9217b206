//! Histories: the append-only record of a run. Pure data, no I/O.

mod event;
mod reset;

pub use event::{
    pending_updates, ActivityFailure, ChildEnd, ChildFailure, Event, EventKind, ExternalOutcome, ExternalSender,
    LocalActivityOutcome, ParentRef, PendingUpdate, RunStart, TimeoutKind, UpdateOutcome,
};
pub use reset::{ResetFrom, ResetPlan, ResetPoint};

use crate::ids::{RunId, Seq};
use crate::policy::ParentClosePolicy;

/// A child run that was started and has not reported its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenChild {
    /// Command position in the parent.
    pub seq: Seq,
    /// The child's workflow id.
    pub workflow_id: String,
    /// The child's run.
    pub run_id: RunId,
    /// Its parent-close policy.
    pub policy: ParentClosePolicy,
}

/// The children a history started that have not ended, in start order.
pub fn open_children<'a>(events: impl IntoIterator<Item = &'a EventKind>) -> Vec<OpenChild> {
    let mut initiated = std::collections::HashMap::new();
    let mut open: Vec<OpenChild> = Vec::new();
    for e in events {
        match e {
            EventKind::ChildWorkflowInitiated { seq, workflow_id, parent_close_policy, .. } => {
                initiated.insert(*seq, (workflow_id.clone(), *parent_close_policy));
            }
            EventKind::ChildWorkflowStarted { seq, run_id } => {
                if let Some((workflow_id, policy)) = initiated.get(seq) {
                    open.push(OpenChild {
                        seq: *seq,
                        workflow_id: workflow_id.clone(),
                        run_id: run_id.clone(),
                        policy: *policy,
                    });
                }
            }
            EventKind::ChildWorkflowCompleted { seq, .. } | EventKind::ChildWorkflowFailed { seq, .. } => {
                open.retain(|c| c.seq != *seq);
            }
            _ => {}
        }
    }
    open
}

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
    let fail = |event_id, reason: &str| Err(InvariantViolation { event_id, reason: reason.into() });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::ActivityError;

    #[test]
    fn a_failure_chain_names_each_cause_once() {
        let activity = ActivityFailure::Failed {
            activity_type: "enrich".into(),
            attempts: 3,
            error: ActivityError::retryable("Connect", "refused"),
        };
        let child = ChildFailure {
            workflow_id: "b/chunk-1".into(),
            workflow_type: "enrich_and_save".into(),
            kind: ChildEnd::Failed,
            cause: Some(activity.to_failure()),
        };
        assert_eq!(
            child.to_failure().to_string(),
            "ChildWorkflowFailed: child workflow enrich_and_save (id b/chunk-1) failed: caused by ActivityFailed: \
             activity enrich failed after 3 attempt(s): caused by Connect: refused"
        );
    }
}

#[cfg(test)]
mod decoder_fuzz {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Exported or stored history JSON, however damaged, decodes to an error or a value,
        /// never a panic.
        #[test]
        fn arbitrary_bytes_never_panic_the_history_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = serde_json::from_slice::<super::Event>(&bytes);
            let _ = serde_json::from_slice::<Vec<super::Event>>(&bytes);
        }

        /// Text that looks like JSON gets further into the decoder.
        #[test]
        fn arbitrary_json_never_panics_the_history_decoder(s in r#"[\[\]{}":,0-9a-zA-Z_ ]{0,200}"#) {
            let _ = serde_json::from_str::<super::Event>(&s);
            let _ = serde_json::from_str::<Vec<super::Event>>(&s);
        }
    }
}
