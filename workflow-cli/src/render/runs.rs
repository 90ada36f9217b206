//! `wf list`, `wf describe` and `wf tree`.

use std::collections::BTreeMap;

use workflow_core::store::{AttemptOutcome, AttemptRecord, RunInfo, TaskKind};
use workflow_core::Timestamp;

use super::{age, format_duration, one_line, preview, Table};
use crate::model::{ChildView, RunDetails, TreeNode};

const MESSAGE_CHARS: usize = 100;

/// The `wf list` table: workflow id, run id, type, status, start, end, duration.
pub fn render_list(runs: &[RunInfo], now: Timestamp) -> String {
    if runs.is_empty() {
        return "no runs\n".into();
    }
    let mut t = Table::new(["WORKFLOW ID", "RUN ID", "TYPE", "STATUS", "START", "END", "DURATION"]);
    for r in runs {
        let (end, took) = match r.close_time {
            Some(c) => (c.to_string(), format_duration(c.since(r.start_time))),
            None => ("-".into(), format!("{} (running)", format_duration(now.since(r.start_time)))),
        };
        t.row(vec![
            r.workflow_id.clone(),
            r.run_id.to_string(),
            r.workflow_type.clone(),
            r.status.to_string(),
            r.start_time.to_string(),
            end,
            took,
        ]);
    }
    t.render(0)
}

/// The `wf describe` text: the run, its pending work, its activities and its children.
pub fn render_describe(d: &RunDetails, now: Timestamp) -> String {
    let i = &d.info;
    let mut head = Table::new(["Workflow ID", &i.workflow_id]);
    head.row(vec!["Run ID".into(), i.run_id.to_string()]);
    head.row(vec!["Type".into(), i.workflow_type.clone()]);
    head.row(vec!["Status".into(), i.status.to_string()]);
    head.row(vec!["Started".into(), i.start_time.to_string()]);
    match i.close_time {
        Some(c) => head.row(vec!["Closed".into(), format!("{c} (took {})", format_duration(c.since(i.start_time)))]),
        None => {
            head.row(vec!["Closed".into(), format!("- (running for {})", format_duration(now.since(i.start_time)))])
        }
    }
    head.row(vec!["Input".into(), preview(&i.input)]);
    if let Some(r) = &i.result {
        head.row(vec!["Result".into(), preview(r)]);
    }
    if let Some(f) = &i.failure {
        head.row(vec!["Failure".into(), one_line(&f.to_string(), 2 * MESSAGE_CHARS)]);
    }
    if let Some(stuck) = &i.task_failure {
        head.row(vec!["Stuck".into(), one_line(stuck, 2 * MESSAGE_CHARS)]);
    }
    if let Some(p) = &i.parent {
        head.row(vec!["Parent".into(), format!("{} (run {}, command {})", p.workflow_id, p.run_id, p.seq)]);
    }
    head.row(vec!["Events".into(), i.last_event_id.to_string()]);
    let mut out = head.render(0);

    let mut activities =
        Table::new(["SEQ", "ACTIVITY", "ATTEMPT", "STATE", "LAST FAILURE", "HEARTBEAT", "HEARTBEAT AGE"]);
    let mut timers = Table::new(["SEQ", "FIRES", ""]);
    for p in &d.pending {
        match &p.task.kind {
            TaskKind::Activity(a) => {
                let state = match (&p.lease_owner, p.lease_expires_at) {
                    (Some(owner), _) => format!("running on {owner}"),
                    _ if p.task.visible_at > now => format!("retry {}", age(p.task.visible_at, now)),
                    _ => "waiting for a worker".into(),
                };
                activities.row(vec![
                    a.seq.to_string(),
                    a.activity_type.clone(),
                    a.attempt.to_string(),
                    state,
                    a.last_error.as_ref().map(|e| one_line(&e.to_string(), MESSAGE_CHARS)).unwrap_or_else(dash),
                    a.heartbeat.as_ref().map(preview).unwrap_or_else(dash),
                    a.heartbeat_at.map(|t| age(t, now)).unwrap_or_else(dash),
                ]);
            }
            TaskKind::Timer { seq } => {
                timers.row(vec![seq.to_string(), p.task.visible_at.to_string(), age(p.task.visible_at, now)]);
            }
            _ => {}
        }
    }
    if !activities.is_empty() {
        out.push_str("\nPending activities:\n");
        out.push_str(&activities.render(2));
    }
    if !timers.is_empty() {
        out.push_str("\nPending timers:\n");
        out.push_str(&timers.render(2));
    }
    if !d.pending_updates.is_empty() {
        out.push_str("\nPending updates (accepted, not answered yet):\n");
        let mut t = Table::new(["UPDATE ID", "NAME", "ACCEPTED", ""]);
        for u in &d.pending_updates {
            t.row(vec![
                u.update_id.clone(),
                u.name.clone(),
                format!("event {}", u.accepted_event),
                age(u.accepted_at, now),
            ]);
        }
        out.push_str(&t.render(2));
    }
    if !d.attempts.is_empty() {
        out.push_str("\nActivities (wf attempts shows every attempt):\n");
        out.push_str(&activity_summary(&d.attempts).render(2));
    }
    if !d.children.is_empty() {
        out.push_str("\nChildren:\n");
        let mut t = Table::new(["SEQ", "WORKFLOW ID", "TYPE", "STATUS", "RUN ID"]);
        for c in &d.children {
            t.row(vec![
                c.seq.to_string(),
                c.workflow_id.clone(),
                c.workflow_type.clone(),
                child_status(c),
                c.run_id.as_ref().map(|r| r.to_string()).unwrap_or_else(dash),
            ]);
        }
        out.push_str(&t.render(2));
    }
    out
}

fn dash() -> String {
    "-".into()
}

fn child_status(c: &ChildView) -> String {
    match (&c.status, &c.start_failed) {
        (Some(s), _) => s.to_string(),
        (None, Some(reason)) => format!("could not start: {}", one_line(reason, MESSAGE_CHARS)),
        (None, None) if c.run_id.is_some() => "unknown".into(),
        (None, None) => "starting".into(),
    }
}

/// One row per activity: its attempts and how the last one ended.
fn activity_summary(attempts: &[AttemptRecord]) -> Table {
    let mut by_seq: BTreeMap<u32, Vec<&AttemptRecord>> = BTreeMap::new();
    for a in attempts {
        by_seq.entry(a.seq).or_default().push(a);
    }
    let mut t = Table::new(["SEQ", "ACTIVITY", "ATTEMPTS", "LAST OUTCOME"]);
    for (seq, list) in by_seq {
        let Some(last) = list.iter().max_by_key(|a| (a.attempt, a.started_at)) else { continue };
        t.row(vec![seq.to_string(), last.activity_type.clone(), list.len().to_string(), outcome(&last.outcome)]);
    }
    t
}

/// An attempt's outcome in a word or two, with its error.
pub fn outcome(o: &AttemptOutcome) -> String {
    match o {
        AttemptOutcome::Completed => "completed".into(),
        AttemptOutcome::Failed { error } => format!("failed: {}", one_line(&error.to_string(), MESSAGE_CHARS)),
        AttemptOutcome::TimedOut { timeout } => format!("timed out ({timeout})"),
        AttemptOutcome::WorkerLost => "worker lost".into(),
        AttemptOutcome::Cancelled => "cancelled".into(),
    }
}

/// The `wf tree` text: one line per run, indented under its parent; `*` marks the run asked for.
pub fn render_tree(root: &TreeNode) -> String {
    let mut out = String::new();
    tree_line(root, "", "", &mut out);
    out
}

fn tree_line(n: &TreeNode, first: &str, rest: &str, out: &mut String) {
    let status = n.status.map(|s| s.to_string()).unwrap_or_else(|| "not started".into());
    let mut line = format!("{first}{} ({}) {status}", n.workflow_id, n.workflow_type);
    if n.selected {
        line.push_str(" *");
    }
    if let Some(note) = &n.note {
        line.push_str(&format!(" — {}", one_line(note, MESSAGE_CHARS)));
    }
    out.push_str(&line);
    out.push('\n');
    let count = n.children.len();
    for (i, c) in n.children.iter().enumerate() {
        let last = i + 1 == count;
        let (f, r) = if last { ("└─ ", "   ") } else { ("├─ ", "│  ") };
        tree_line(c, &format!("{rest}{f}"), &format!("{rest}{r}"), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workflow_core::store::RunStatus;
    use workflow_core::{Payload, RunId};

    fn info(id: &str, status: RunStatus) -> RunInfo {
        RunInfo {
            workflow_id: id.into(),
            run_id: RunId(format!("run-{id}")),
            workflow_type: "order".into(),
            status,
            start_time: Timestamp(1_767_225_600_000),
            close_time: status.is_closed().then_some(Timestamp(1_767_225_601_500)),
            input: Payload::encode(&42).unwrap(),
            result: None,
            failure: None,
            parent: None,
            last_event_id: 3,
            task_failure: None,
        }
    }

    #[test]
    fn list_shows_one_aligned_row_per_run() {
        let now = Timestamp(1_767_225_610_000);
        let out = render_list(&[info("a", RunStatus::Completed), info("bb", RunStatus::Running)], now);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].starts_with("WORKFLOW ID  RUN ID"), "{out}");
        assert!(lines[1].contains("completed") && lines[1].ends_with("1.50s"), "{out}");
        assert!(lines[2].contains("running") && lines[2].ends_with("10.00s (running)"), "{out}");
        assert_eq!(render_list(&[], now), "no runs\n");
    }

    #[test]
    fn tree_draws_branches() {
        let leaf = |id: &str| TreeNode {
            workflow_id: id.into(),
            workflow_type: "child".into(),
            run_id: None,
            status: Some(RunStatus::Completed),
            note: None,
            selected: false,
            children: vec![],
        };
        let mut root = leaf("p");
        root.selected = true;
        root.children = vec![leaf("p/1"), leaf("p/2")];
        root.children[0].children = vec![leaf("p/1/x")];
        assert_eq!(
            render_tree(&root),
            "p (child) completed *\n├─ p/1 (child) completed\n│  └─ p/1/x (child) completed\n└─ p/2 (child) completed\n"
        );
    }

    #[test]
    fn describe_lists_pending_updates() {
        let now = Timestamp(1_767_225_610_000);
        let d: RunDetails = serde_json::from_value(serde_json::json!({
            "info": info("cart", RunStatus::Running), "pending": [], "attempts": [], "children": [],
            "pending_updates": [{
                "update_id": "req-7", "name": "add_item", "accepted_event": 5, "accepted_at": 1_767_225_605_000u64
            }]
        }))
        .unwrap();
        let out = render_describe(&d, now);
        let at = out.find("Pending updates (accepted, not answered yet):").expect("section");
        let row = out[at..].lines().nth(2).unwrap();
        assert!(row.contains("req-7") && row.contains("add_item") && row.contains("event 5"), "{out}");
    }
}
