//! `wf history` and `wf attempts`.

use workflow_core::history::{LocalActivityOutcome, UpdateOutcome};
use workflow_core::store::AttemptRecord;
use workflow_core::{ChildEnd, Event, EventKind};

use super::runs::outcome;
use super::{format_duration, one_line, preview, relative, Table};

const MESSAGE_CHARS: usize = 100;

/// The `wf history` table: event id, time relative to the first event, type and details.
pub fn render_history(events: &[Event]) -> String {
    let Some(first) = events.first() else { return "no events\n".into() };
    let mut t = Table::new(["ID", "TIME", "EVENT", "DETAILS"]);
    for e in events {
        t.row(vec![e.id.to_string(), relative(e.time, first.time), e.kind.name().to_string(), event_details(&e.kind)]);
    }
    format!("History starts at {}\n{}", first.time, t.render(0))
}

/// The `wf history --json` text: the events as a JSON array, one event per line.
///
/// Each event is the serde form of [`workflow_core::Event`]: `id`, `time` (milliseconds since
/// the Unix epoch) and a `type` tag (`WorkflowStarted`, `ActivityScheduled`, ...) with that
/// event's fields beside it. The replay tests load this format with
/// `serde_json::from_str::<Vec<Event>>`.
pub fn render_history_json(events: &[Event]) -> String {
    let mut out = String::from("[\n");
    for (i, e) in events.iter().enumerate() {
        // Serializing a history event (plain data, string keys) cannot fail.
        let line = serde_json::to_string(e).unwrap_or_default();
        out.push_str("  ");
        out.push_str(&line);
        if i + 1 < events.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str("]\n");
    out
}

/// The one line `wf history` shows for an event beside its type.
pub fn event_details(kind: &EventKind) -> String {
    match kind {
        EventKind::WorkflowStarted { workflow_type, input, parent, start, .. } => {
            let mut s = format!("{workflow_type} input {}", preview(input));
            if let Some(p) = parent {
                s.push_str(&format!(", parent {} (command {})", p.workflow_id, p.seq));
            }
            if start.attempt > 1 {
                s.push_str(&format!(", attempt {}", start.attempt));
            }
            if let Some(r) = &start.continued_from {
                s.push_str(&format!(", continues run {r}"));
            }
            if let Some(r) = &start.reset_from {
                s.push_str(&format!(
                    ", reset from run {} at its event {}: {}",
                    r.run_id,
                    r.event_id,
                    one_line(&r.reason, MESSAGE_CHARS)
                ));
            }
            s
        }
        EventKind::ActivityScheduled { seq, activity_type, input, .. } => {
            format!("seq {seq} {activity_type} input {}", preview(input))
        }
        EventKind::ActivityStarted { seq, attempt, worker } => format!("seq {seq} attempt {attempt} on {worker}"),
        EventKind::ActivityCompleted { seq, result } => format!("seq {seq} result {}", preview(result)),
        EventKind::ActivityFailed { seq, failure } | EventKind::ActivityTimedOut { seq, failure } => {
            format!("seq {seq} {}", one_line(&failure.to_string(), MESSAGE_CHARS))
        }
        EventKind::ActivityCancelled { seq }
        | EventKind::TimerFired { seq }
        | EventKind::TimerCancelled { seq }
        | EventKind::SideEffectRecorded { seq, .. } => format!("seq {seq}"),
        EventKind::TimerStarted { seq, fire_at } => format!("seq {seq} fires at {fire_at}"),
        EventKind::LocalActivityRecorded { seq, activity_type, attempts, outcome } => match outcome {
            LocalActivityOutcome::Completed { result } => {
                format!("seq {seq} {activity_type} (local, {attempts} attempt(s)) result {}", preview(result))
            }
            LocalActivityOutcome::Failed { failure } => format!(
                "seq {seq} {activity_type} (local, {attempts} attempt(s)) {}",
                one_line(&failure.to_string(), MESSAGE_CHARS)
            ),
        },
        EventKind::CommandCancelled { seq, target } => format!("seq {seq} cancels seq {target}"),
        EventKind::ChildWorkflowInitiated { seq, workflow_type, workflow_id, .. } => {
            format!("seq {seq} {workflow_type} id {workflow_id}")
        }
        EventKind::ChildWorkflowStarted { seq, run_id } => format!("seq {seq} run {run_id}"),
        EventKind::ChildWorkflowStartFailed { seq, reason } => format!("seq {seq} {}", one_line(reason, MESSAGE_CHARS)),
        EventKind::ChildWorkflowCompleted { seq, result } => format!("seq {seq} result {}", preview(result)),
        EventKind::ChildWorkflowFailed { seq, failure } => {
            let how = match failure.kind {
                ChildEnd::Failed => "failed",
                ChildEnd::Cancelled => "cancelled",
                ChildEnd::Terminated => "terminated",
                ChildEnd::StartFailed => "could not start",
                ChildEnd::TimedOut => "timed out",
            };
            let cause = failure.cause.as_ref().map(|c| format!(": {}", one_line(&c.to_string(), MESSAGE_CHARS)));
            format!("seq {seq} {} {how}{}", failure.workflow_id, cause.unwrap_or_default())
        }
        EventKind::PatchMarker { seq, patch_id } => format!("seq {seq} {patch_id}"),
        EventKind::CancelRequested { reason, .. } => {
            reason.as_deref().map(|r| one_line(r, MESSAGE_CHARS)).unwrap_or_default()
        }
        EventKind::SignalReceived { name, payload, sender } => match sender {
            Some(from) => format!("{name} {} from {} (seq {})", preview(payload), from.workflow_id, from.seq),
            None => format!("{name} {}", preview(payload)),
        },
        EventKind::ExternalSignalInitiated { seq, workflow_id, signal, payload } => {
            format!("seq {seq} {signal} {} to {workflow_id}", preview(payload))
        }
        EventKind::ExternalCancelInitiated { seq, workflow_id, reason } => {
            format!("seq {seq} cancel {workflow_id}: {}", one_line(reason, MESSAGE_CHARS))
        }
        EventKind::ExternalDelivered { seq, outcome } => format!("seq {seq} {outcome:?}"),
        EventKind::UpdateAccepted { update_id, name, args } => format!("{name} {} id {update_id}", preview(args)),
        EventKind::UpdateCompleted { seq, update_id, outcome } => match outcome {
            UpdateOutcome::Completed { result } => format!("seq {seq} id {update_id} result {}", preview(result)),
            UpdateOutcome::Failed { failure } => {
                format!("seq {seq} id {update_id} failed: {}", one_line(&failure.to_string(), MESSAGE_CHARS))
            }
        },
        EventKind::WorkflowCompleted { result } => format!("result {}", preview(result)),
        EventKind::WorkflowFailed { failure, next_run } => {
            let mut s = one_line(&failure.to_string(), MESSAGE_CHARS);
            if let Some(r) = next_run {
                s.push_str(&format!(" (retried as run {r})"));
            }
            s
        }
        EventKind::WorkflowContinuedAsNew { input, new_run_id } => {
            format!("new run {new_run_id} input {}", preview(input))
        }
        EventKind::WorkflowTerminated { reason } => one_line(reason, MESSAGE_CHARS),
        EventKind::WorkflowTimedOut | EventKind::WorkflowCancelled => String::new(),
        other => other.describe(),
    }
}

/// The `wf attempts` table: every attempt of every activity, by activity then attempt.
pub fn render_attempts(attempts: &[AttemptRecord]) -> String {
    if attempts.is_empty() {
        return "no activity attempts\n".into();
    }
    let mut t = Table::new(["SEQ", "ACTIVITY", "ATTEMPT", "STARTED", "DURATION", "WORKER", "OUTCOME", "HEARTBEAT"]);
    for a in attempts {
        t.row(vec![
            a.seq.to_string(),
            a.activity_type.clone(),
            a.attempt.to_string(),
            a.started_at.to_string(),
            format_duration(a.ended_at.since(a.started_at)),
            a.worker.clone(),
            outcome(&a.outcome),
            a.last_heartbeat.as_ref().map(preview).unwrap_or_else(|| "-".into()),
        ]);
    }
    t.render(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use workflow_core::{Payload, Timestamp};

    fn ev(id: u64, ms: u64, kind: EventKind) -> Event {
        Event { id, time: Timestamp(1_767_225_600_000 + ms), kind }
    }

    #[test]
    fn history_is_aligned_with_relative_times() {
        let events = vec![
            ev(
                1,
                0,
                EventKind::SignalReceived { name: "go".into(), payload: Payload::encode(&1).unwrap(), sender: None },
            ),
            ev(2, 1_500, EventKind::WorkflowCompleted { result: Payload::null() }),
        ];
        let out = render_history(&events);
        assert_eq!(
            out,
            "History starts at 2026-01-01T00:00:00.000Z\n\
             ID  TIME    EVENT              DETAILS\n\
             1   +0ms    SignalReceived     go 1\n\
             2   +1.50s  WorkflowCompleted  result null\n"
        );
    }

    #[test]
    fn history_json_round_trips() {
        let events = vec![
            ev(1, 0, EventKind::CancelRequested { reason: Some("stop".into()), sender: None }),
            ev(2, 5, EventKind::WorkflowCancelled),
        ];
        let json = render_history_json(&events);
        assert!(json.contains(r#"{"id":1,"time":1767225600000,"type":"CancelRequested","reason":"stop"}"#), "{json}");
        let back: Vec<Event> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, events);
    }
}
