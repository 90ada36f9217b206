//! What the web UI's pages show, computed from the read models: pure functions, no I/O and no
//! clock (the current time comes in as `now`), so each page's content is unit-tested.

use std::collections::HashMap;

use serde::Deserialize;
use workflow_core::store::{AttemptOutcome, AttemptRecord, RunInfo, RunStatus, TaskKind};
use workflow_core::{Event, EventKind, Seq, Timestamp};

use crate::model::{ChildView, RunDetails};
use crate::render::{self, age, format_duration, one_line, preview};

/// Runs per page of the runs list.
pub(crate) const RUNS_PER_PAGE: usize = 50;
/// Events per page of a run's history table (the timeline and the JSON download have all).
pub(crate) const EVENTS_PER_PAGE: usize = 500;
/// Children listed on a parent's page (the counts and the progress cover all of them).
pub(crate) const CHILDREN_SHOWN: usize = 500;
/// The longest payload the page shows expanded; the JSON download has the rest.
const PAYLOAD_BYTES: usize = 16 * 1024;
/// Attempts per page of the attempt log.
pub(crate) const ATTEMPTS_PER_PAGE: usize = 500;
/// Above this many bars, the timeline merges neighbours of a lane that look alike.
pub(crate) const MAX_BARS: usize = 2_000;

/// Every status, in the order the UI shows them.
pub(crate) const STATUSES: [RunStatus; 7] = [
    RunStatus::Running,
    RunStatus::Completed,
    RunStatus::Failed,
    RunStatus::Cancelled,
    RunStatus::Terminated,
    RunStatus::TimedOut,
    RunStatus::ContinuedAsNew,
];

/// The runs list's query string.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub(crate) struct RunsQuery {
    /// Only this status.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub(crate) status: Option<RunStatus>,
    /// Only this workflow type.
    #[serde(default, rename = "type", deserialize_with = "empty_as_none")]
    pub(crate) workflow_type: Option<String>,
    /// Workflow ids starting with this.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub(crate) q: Option<String>,
    /// The page, from 1.
    #[serde(default)]
    pub(crate) page: Option<usize>,
}

/// A form field left empty means "any".
fn empty_as_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let s: Option<String> = Option::deserialize(d)?;
    match s.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => T::deserialize(serde_json::Value::String(v.to_string())).map(Some).map_err(serde::de::Error::custom),
    }
}

impl RunsQuery {
    /// This query's URL with another page.
    pub(crate) fn with_page(&self, page: usize) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.status {
            parts.push(format!("status={}", status_slug(s)));
        }
        if let Some(t) = &self.workflow_type {
            parts.push(format!("type={}", encode(t)));
        }
        if let Some(q) = &self.q {
            parts.push(format!("q={}", encode(q)));
        }
        parts.push(format!("page={page}"));
        format!("?{}", parts.join("&"))
    }
}

/// The runs list.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RunsView {
    /// Runs per status, over the whole store.
    pub(crate) counts: Vec<(RunStatus, usize)>,
    /// All runs in the store.
    pub(crate) total: usize,
    /// The workflow types seen, for the filter.
    pub(crate) types: Vec<String>,
    /// This page's runs, newest first.
    pub(crate) rows: Vec<RunRow>,
    /// Runs matching the filters.
    pub(crate) matching: usize,
    /// This page, from 1, and how many there are.
    pub(crate) page: usize,
    /// Pages of matching runs (at least 1).
    pub(crate) pages: usize,
    /// Whether a run is open: the page refreshes itself while one is.
    pub(crate) live: bool,
    /// The filters.
    pub(crate) query: RunsQuery,
}

/// One run in the list.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RunRow {
    pub(crate) workflow_id: String,
    pub(crate) run_id: String,
    pub(crate) workflow_type: String,
    pub(crate) status: RunStatus,
    pub(crate) start: Timestamp,
    pub(crate) close: Option<Timestamp>,
    /// Closed: how long it ran; open: how long it has run so far.
    pub(crate) duration: String,
}

/// The runs list for `query`, from every run of the store (newest first).
pub(crate) fn runs_view(all: &[RunInfo], query: RunsQuery, now: Timestamp) -> RunsView {
    let counts = STATUSES.iter().map(|s| (*s, all.iter().filter(|r| r.status == *s).count())).collect();
    let mut types: Vec<String> = all.iter().map(|r| r.workflow_type.clone()).collect();
    types.sort();
    types.dedup();
    let matching: Vec<&RunInfo> = all
        .iter()
        .filter(|r| query.status.is_none_or(|s| r.status == s))
        .filter(|r| query.workflow_type.as_ref().is_none_or(|t| &r.workflow_type == t))
        .filter(|r| query.q.as_ref().is_none_or(|q| r.workflow_id.starts_with(q.as_str())))
        .collect();
    let pages = matching.len().div_ceil(RUNS_PER_PAGE).max(1);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let rows = matching
        .iter()
        .skip((page - 1) * RUNS_PER_PAGE)
        .take(RUNS_PER_PAGE)
        .map(|r| RunRow {
            workflow_id: r.workflow_id.clone(),
            run_id: r.run_id.to_string(),
            workflow_type: r.workflow_type.clone(),
            status: r.status,
            start: r.start_time,
            close: r.close_time,
            duration: format_duration(r.close_time.unwrap_or(now).since(r.start_time)),
        })
        .collect();
    RunsView {
        counts,
        total: all.len(),
        types,
        rows,
        matching: matching.len(),
        page,
        pages,
        live: all.iter().any(|r| !r.status.is_closed()),
        query,
    }
}

/// A run's page.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RunView {
    pub(crate) info: RunInfo,
    /// How long it ran, or has run so far.
    pub(crate) duration: String,
    /// Its input, pretty JSON (cut at 16 KiB).
    pub(crate) input: String,
    /// Its result, pretty JSON, when it completed.
    pub(crate) result: Option<String>,
    /// Its failure and the causes below it, outermost first: (type, message).
    pub(crate) failure_chain: Vec<(String, String)>,
    /// Why its workflow task keeps failing (a nondeterminism error, a panic), when stuck.
    pub(crate) stuck: Option<String>,
    /// Where it came from: a continued run, a reset.
    pub(crate) origin: Vec<String>,
    /// Its tasks not yet done.
    pub(crate) pending: Vec<PendingRow>,
    /// Attempts, timers and children on a time axis.
    pub(crate) timeline: Timeline,
    /// This page of its history.
    pub(crate) events: Vec<EventRow>,
    /// Events in all.
    pub(crate) events_total: usize,
    /// The history page, from 1, and how many there are.
    pub(crate) events_page: usize,
    pub(crate) events_pages: usize,
    /// This page of the attempt log.
    pub(crate) attempts: Vec<AttemptRow>,
    /// Attempts in all.
    pub(crate) attempts_total: usize,
    /// The attempt log page, from 1, and how many there are.
    pub(crate) attempts_page: usize,
    pub(crate) attempts_pages: usize,
    /// Its children.
    pub(crate) children: ChildrenView,
    /// Whether it is open: the page refreshes itself while it is.
    pub(crate) live: bool,
}

/// A task of the run not yet done.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PendingRow {
    pub(crate) seq: Seq,
    /// `activity`, `timer`, ...
    pub(crate) kind: &'static str,
    /// The activity's type, or what the task does.
    pub(crate) name: String,
    /// The attempt an activity is at.
    pub(crate) attempt: Option<u32>,
    /// `running on <worker>`, `retry in 3.00s`, `waiting for a worker`, `fires in 1h00m`.
    pub(crate) state: String,
    /// The last heartbeat's details, and how long ago it came.
    pub(crate) heartbeat: Option<(String, String)>,
    /// The last attempt's error.
    pub(crate) last_failure: Option<String>,
}

/// Bars on a time axis, packed into lanes (what overlaps in time gets its own lane; an
/// activity's attempts share one, so its retries and the backoff between them show).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Timeline {
    pub(crate) start: Timestamp,
    pub(crate) end: Timestamp,
    pub(crate) lanes: usize,
    pub(crate) bars: Vec<Bar>,
    /// How many bars there were before merging (equal to `bars.len()` when none were).
    pub(crate) unmerged: usize,
}

/// One attempt, timer or child on the timeline.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Bar {
    pub(crate) lane: usize,
    pub(crate) start: Timestamp,
    pub(crate) end: Timestamp,
    /// The outcome, as a CSS class: `ok`, `failed`, `timed-out`, `lost`, `cancelled`,
    /// `running`, `timer`, `child`.
    pub(crate) class: &'static str,
    /// What it is and how it ended, for its tooltip.
    pub(crate) label: String,
}

/// One event of the history table.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EventRow {
    pub(crate) id: u64,
    pub(crate) time: Timestamp,
    /// Since the run started.
    pub(crate) relative: String,
    pub(crate) name: &'static str,
    /// The one line `wf history` shows.
    pub(crate) details: String,
    /// The whole event as pretty JSON (payloads cut at 16 KiB).
    pub(crate) json: String,
    /// A failure or timeout: shown in red.
    pub(crate) bad: bool,
}

/// One activity attempt.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AttemptRow {
    pub(crate) seq: Seq,
    pub(crate) activity: String,
    pub(crate) attempt: u32,
    pub(crate) started: Timestamp,
    pub(crate) duration: String,
    pub(crate) worker: String,
    pub(crate) outcome: String,
    pub(crate) class: &'static str,
    pub(crate) heartbeat: Option<String>,
}

/// A parent's children: counts, progress, the failed ones first.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ChildrenView {
    pub(crate) total: usize,
    /// Children per status (`starting` for one not started yet, `could not start`).
    pub(crate) counts: Vec<(String, usize)>,
    /// Closed children.
    pub(crate) closed: usize,
    /// Listed children, failed first, then in command order; at most [`CHILDREN_SHOWN`].
    pub(crate) rows: Vec<ChildRow>,
}

/// One child.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ChildRow {
    pub(crate) seq: Seq,
    pub(crate) workflow_id: String,
    pub(crate) workflow_type: String,
    pub(crate) status: String,
    pub(crate) bad: bool,
    /// Its parent-close policy.
    pub(crate) policy: String,
}

/// Which pages of a run's history and attempt log to show, from 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pages {
    pub(crate) events: usize,
    pub(crate) attempts: usize,
}

/// The page of run `d` with history `history`.
pub(crate) fn run_view(d: &RunDetails, history: &[Event], pages: Pages, now: Timestamp) -> RunView {
    let events_page = pages.events;
    let info = &d.info;
    let origin = match history.first().map(|e| &e.kind) {
        Some(EventKind::WorkflowStarted { start, .. }) => {
            let mut o = Vec::new();
            if let Some(r) = &start.continued_from {
                o.push(format!("continues run {r} (attempt {})", start.attempt));
            }
            if let Some(r) = &start.reset_from {
                o.push(format!("reset from run {} at its event {}: {}", r.run_id, r.event_id, r.reason));
            }
            o
        }
        _ => Vec::new(),
    };
    let events_pages = history.len().div_ceil(EVENTS_PER_PAGE).max(1);
    let events_page = events_page.clamp(1, events_pages);
    let origin_time = history.first().map_or(info.start_time, |e| e.time);
    let attempts_pages = d.attempts.len().div_ceil(ATTEMPTS_PER_PAGE).max(1);
    let attempts_page = pages.attempts.clamp(1, attempts_pages);
    let events = history
        .iter()
        .skip((events_page - 1) * EVENTS_PER_PAGE)
        .take(EVENTS_PER_PAGE)
        .map(|e| event_row(e, origin_time))
        .collect();
    RunView {
        info: info.clone(),
        duration: format_duration(info.close_time.unwrap_or(now).since(info.start_time)),
        input: pretty(info.input.as_json()),
        result: info.result.as_ref().map(|r| pretty(r.as_json())),
        failure_chain: info
            .failure
            .as_ref()
            .map(|f| f.chain().map(|c| (c.error_type.clone(), c.message.clone())).collect())
            .unwrap_or_default(),
        stuck: info.task_failure.clone(),
        origin,
        pending: pending_rows(d, now),
        timeline: timeline(info, history, &d.attempts, now),
        events,
        events_total: history.len(),
        events_page,
        events_pages,
        attempts: d
            .attempts
            .iter()
            .skip((attempts_page - 1) * ATTEMPTS_PER_PAGE)
            .take(ATTEMPTS_PER_PAGE)
            .map(attempt_row)
            .collect(),
        attempts_total: d.attempts.len(),
        attempts_page,
        attempts_pages,
        children: children_view(&d.children, history),
        live: !info.status.is_closed(),
    }
}

fn pending_rows(d: &RunDetails, now: Timestamp) -> Vec<PendingRow> {
    let mut rows = Vec::new();
    for p in &d.pending {
        match &p.task.kind {
            TaskKind::Activity(a) => rows.push(PendingRow {
                seq: a.seq,
                kind: "activity",
                name: a.activity_type.clone(),
                attempt: Some(a.attempt),
                state: match &p.lease_owner {
                    Some(owner) => format!("running on {owner}"),
                    None if p.task.visible_at > now => format!("retry {}", age(p.task.visible_at, now)),
                    None => "waiting for a worker".into(),
                },
                heartbeat: a
                    .heartbeat
                    .as_ref()
                    .map(|h| (preview(h), a.heartbeat_at.map(|t| age(t, now)).unwrap_or_else(|| "-".into()))),
                last_failure: a.last_error.as_ref().map(|e| one_line(&e.to_string(), 300)),
            }),
            TaskKind::Timer { seq } => rows.push(PendingRow {
                seq: *seq,
                kind: "timer",
                name: "timer".into(),
                attempt: None,
                state: format!("fires {} ({})", age(p.task.visible_at, now), p.task.visible_at),
                heartbeat: None,
                last_failure: None,
            }),
            _ => {}
        }
    }
    rows.sort_by_key(|r| r.seq);
    rows
}

fn event_row(e: &Event, origin: Timestamp) -> EventRow {
    EventRow {
        id: e.id,
        time: e.time,
        relative: render::relative(e.time, origin),
        name: e.kind.name(),
        details: render::event_details(&e.kind),
        json: serde_json::to_value(e).map(|v| pretty(&v)).unwrap_or_default(),
        bad: matches!(
            e.kind,
            EventKind::ActivityFailed { .. }
                | EventKind::ActivityTimedOut { .. }
                | EventKind::ChildWorkflowFailed { .. }
                | EventKind::ChildWorkflowStartFailed { .. }
                | EventKind::WorkflowFailed { .. }
                | EventKind::WorkflowTimedOut
                | EventKind::WorkflowTerminated { .. }
                | EventKind::LocalActivityRecorded {
                    outcome: workflow_core::history::LocalActivityOutcome::Failed { .. },
                    ..
                }
                | EventKind::UpdateCompleted { outcome: workflow_core::history::UpdateOutcome::Failed { .. }, .. }
        ),
    }
}

/// Pretty JSON, cut at [`PAYLOAD_BYTES`] (on a character boundary) with a marker.
fn pretty(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    if s.len() > PAYLOAD_BYTES {
        let mut cut = PAYLOAD_BYTES;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("\n… (cut; download the history JSON for all of it)");
    }
    s
}

fn outcome_class(o: &AttemptOutcome) -> &'static str {
    match o {
        AttemptOutcome::Completed => "ok",
        AttemptOutcome::Failed { .. } => "failed",
        AttemptOutcome::TimedOut { .. } => "timed-out",
        AttemptOutcome::WorkerLost => "lost",
        AttemptOutcome::Cancelled => "cancelled",
    }
}

fn attempt_row(a: &AttemptRecord) -> AttemptRow {
    AttemptRow {
        seq: a.seq,
        activity: a.activity_type.clone(),
        attempt: a.attempt,
        started: a.started_at,
        duration: format_duration(a.ended_at.since(a.started_at)),
        worker: a.worker.clone(),
        outcome: render::outcome(&a.outcome),
        class: outcome_class(&a.outcome),
        heartbeat: a.last_heartbeat.as_ref().map(preview),
    }
}

/// The timeline: one bar per activity attempt (and one for an attempt running now), per
/// timer and per child; each activity, timer or child gets one lane, shared with whatever
/// does not overlap it in time.
pub(crate) fn timeline(info: &RunInfo, history: &[Event], attempts: &[AttemptRecord], now: Timestamp) -> Timeline {
    let start = history.first().map_or(info.start_time, |e| e.time);
    let end = info.close_time.unwrap_or(now).max(start);
    // Bars grouped by command, in command order.
    let mut groups: Vec<(Seq, Vec<Bar>)> = Vec::new();
    let mut index: HashMap<Seq, usize> = HashMap::new();
    let mut push = |seq: Seq, bar: Bar, groups: &mut Vec<(Seq, Vec<Bar>)>| {
        let i = *index.entry(seq).or_insert_with(|| {
            groups.push((seq, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(bar);
    };
    for a in attempts {
        let label = format!(
            "{} (seq {}) attempt {}: {} after {}",
            a.activity_type,
            a.seq,
            a.attempt,
            render::outcome(&a.outcome),
            format_duration(a.ended_at.since(a.started_at))
        );
        let bar = Bar { lane: 0, start: a.started_at, end: a.ended_at, class: outcome_class(&a.outcome), label };
        push(a.seq, bar, &mut groups);
    }
    let mut open: HashMap<Seq, (Timestamp, String, &'static str)> = HashMap::new();
    let mut activities: HashMap<Seq, (Timestamp, String)> = HashMap::new();
    let mut finished_activities: std::collections::HashSet<Seq> = std::collections::HashSet::new();
    for e in history {
        match &e.kind {
            EventKind::ActivityScheduled { seq, activity_type, .. } => {
                activities.insert(*seq, (e.time, activity_type.clone()));
            }
            EventKind::ActivityCompleted { seq, .. }
            | EventKind::ActivityFailed { seq, .. }
            | EventKind::ActivityTimedOut { seq, .. }
            | EventKind::ActivityCancelled { seq } => {
                finished_activities.insert(*seq);
            }
            EventKind::TimerStarted { seq, fire_at } => {
                open.insert(*seq, (e.time, format!("timer (seq {seq}) until {fire_at}"), "timer"));
            }
            EventKind::ChildWorkflowInitiated { seq, workflow_id, workflow_type, .. } => {
                open.insert(*seq, (e.time, format!("child {workflow_id} ({workflow_type})"), "child"));
            }
            EventKind::TimerFired { seq } | EventKind::TimerCancelled { seq } => {
                if let Some((t, label, class)) = open.remove(seq) {
                    let how = if matches!(e.kind, EventKind::TimerFired { .. }) { "fired" } else { "cancelled" };
                    push(
                        *seq,
                        Bar { lane: 0, start: t, end: e.time, class, label: format!("{label}: {how}") },
                        &mut groups,
                    );
                }
            }
            EventKind::ChildWorkflowCompleted { seq, .. }
            | EventKind::ChildWorkflowFailed { seq, .. }
            | EventKind::ChildWorkflowStartFailed { seq, .. } => {
                if let Some((t, label, _)) = open.remove(seq) {
                    let (class, how) = match &e.kind {
                        EventKind::ChildWorkflowCompleted { .. } => ("ok", "completed".to_string()),
                        EventKind::ChildWorkflowFailed { failure, .. } => {
                            ("failed", format!("{:?}", failure.kind).to_lowercase())
                        }
                        _ => ("failed", "could not start".to_string()),
                    };
                    let label = format!("{label}: {how} after {}", format_duration(e.time.since(t)));
                    push(*seq, Bar { lane: 0, start: t, end: e.time, class, label }, &mut groups);
                }
            }
            _ => {}
        }
    }
    // What is still going on runs to the end of the axis.
    for (seq, (t, label, class)) in open {
        push(seq, Bar { lane: 0, start: t, end, class, label: format!("{label}: pending") }, &mut groups);
    }
    if !info.status.is_closed() {
        for (seq, (scheduled, activity)) in &activities {
            if finished_activities.contains(seq) {
                continue;
            }
            let since = attempts.iter().filter(|a| a.seq == *seq).map(|a| a.ended_at).max().unwrap_or(*scheduled);
            let label = format!("{activity} (seq {seq}): waiting or running since {}", render::relative(since, start));
            push(*seq, Bar { lane: 0, start: since, end, class: "running", label }, &mut groups);
        }
    }
    groups.sort_by_key(|(seq, bars)| (bars.iter().map(|b| b.start).min(), *seq));
    // Clocks of different workers may disagree a little: the axis covers every bar.
    let end = groups.iter().flat_map(|(_, bars)| bars.iter().map(|b| b.end)).max().map_or(end, |e| e.max(end));
    // Lanes: each group takes the first lane free at its start.
    let mut lane_ends: Vec<Timestamp> = Vec::new();
    let mut bars = Vec::new();
    for (_, mut group) in groups {
        let first = group.iter().map(|b| b.start).min().unwrap_or(start);
        let last = group.iter().map(|b| b.end).max().unwrap_or(start);
        let lane = match lane_ends.iter().position(|e| *e < first) {
            Some(l) => l,
            None => {
                lane_ends.push(last);
                lane_ends.len() - 1
            }
        };
        lane_ends[lane] = last;
        for b in &mut group {
            b.lane = lane;
        }
        bars.extend(group);
    }
    let unmerged = bars.len();
    if bars.len() > MAX_BARS {
        bars = merge_bars(bars, start, end);
    }
    Timeline { start, end, lanes: lane_ends.len(), bars, unmerged }
}

/// A long timeline's bars with neighbours merged: in each lane, consecutive bars of the same
/// outcome less than a thousandth of the axis apart become one (its label says how many),
/// so that a 50,000-event history draws a few hundred shapes, not tens of thousands. The
/// attempt log and the history still list each one.
fn merge_bars(mut bars: Vec<Bar>, start: Timestamp, end: Timestamp) -> Vec<Bar> {
    let gap = (end.0.saturating_sub(start.0) / 1000).max(1);
    bars.sort_by_key(|b| (b.lane, b.start));
    let mut out: Vec<(Bar, usize)> = Vec::new();
    for b in bars {
        match out.last_mut() {
            Some((m, n)) if m.lane == b.lane && m.class == b.class && b.start.0 <= m.end.0 + gap => {
                m.end = m.end.max(b.end);
                *n += 1;
            }
            _ => out.push((b, 1)),
        }
    }
    out.into_iter()
        .map(|(mut b, n)| {
            if n > 1 {
                b.label = format!(
                    "{n} bars ({}) merged, {} to {}; the attempt log and the history list each; first: {}",
                    b.class,
                    render::relative(b.start, start),
                    render::relative(b.end, start),
                    b.label
                );
            }
            b
        })
        .collect()
}

fn children_view(children: &[ChildView], history: &[Event]) -> ChildrenView {
    let policies: HashMap<Seq, String> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ChildWorkflowInitiated { seq, parent_close_policy, .. } => {
                Some((*seq, format!("{parent_close_policy:?}").to_lowercase()))
            }
            _ => None,
        })
        .collect();
    let status_of = |c: &ChildView| match (&c.status, &c.start_failed) {
        (Some(s), _) => s.to_string(),
        (None, Some(_)) => "could not start".to_string(),
        (None, None) => "starting".to_string(),
    };
    let bad = |c: &ChildView| {
        c.start_failed.is_some()
            || matches!(
                c.status,
                Some(RunStatus::Failed | RunStatus::TimedOut | RunStatus::Terminated | RunStatus::Cancelled)
            )
    };
    let mut counts: Vec<(String, usize)> = Vec::new();
    for c in children {
        let s = status_of(c);
        match counts.iter_mut().find(|(k, _)| *k == s) {
            Some((_, n)) => *n += 1,
            None => counts.push((s, 1)),
        }
    }
    let mut ordered: Vec<&ChildView> = children.iter().collect();
    ordered.sort_by_key(|c| (!bad(c), c.seq));
    ChildrenView {
        total: children.len(),
        counts,
        closed: children.iter().filter(|c| c.start_failed.is_some() || c.status.is_some_and(|s| s.is_closed())).count(),
        rows: ordered
            .into_iter()
            .take(CHILDREN_SHOWN)
            .map(|c| ChildRow {
                seq: c.seq,
                workflow_id: c.workflow_id.clone(),
                workflow_type: c.workflow_type.clone(),
                status: status_of(c),
                bad: bad(c),
                policy: policies.get(&c.seq).cloned().unwrap_or_default(),
            })
            .collect(),
    }
}

/// A status as the query string and CSS write it (`timed_out`).
pub(crate) fn status_slug(s: RunStatus) -> String {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Percent-encodes `s` for a URL path segment or query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PendingView;
    use workflow_core::history::{ActivityFailure, ChildEnd, ChildFailure, RunStart};
    use workflow_core::store::{ActivityTask, Task, TaskKey};
    use workflow_core::{ActivityError, ActivityOptions, Failure, ParentClosePolicy, Payload, RunId};

    const T0: Timestamp = Timestamp(1_767_225_600_000);

    fn info(id: &str, status: RunStatus, start: u64) -> RunInfo {
        let run = workflow_core::store::NewRun::new(
            RunId(format!("run-{id}")),
            "job",
            id,
            Payload::null(),
            Timestamp(T0.0 + start),
        );
        let mut i = run.info;
        i.status = status;
        if status.is_closed() {
            i.close_time = Some(Timestamp(T0.0 + start + 1500));
        }
        i
    }

    fn ev(id: u64, ms: u64, kind: EventKind) -> Event {
        Event { id, time: Timestamp(T0.0 + ms), kind }
    }

    fn attempt(seq: Seq, n: u32, from: u64, to: u64, outcome: AttemptOutcome) -> AttemptRecord {
        AttemptRecord {
            run_id: RunId("run-a".into()),
            seq,
            activity_type: "enrich".into(),
            attempt: n,
            worker: "w1".into(),
            started_at: Timestamp(T0.0 + from),
            ended_at: Timestamp(T0.0 + to),
            outcome,
            last_heartbeat: Some(Payload::encode(&serde_json::json!({"rows": n * 10})).unwrap()),
        }
    }

    #[test]
    fn the_runs_list_counts_filters_and_pages() {
        let mut all: Vec<RunInfo> = (0..120).map(|i| info(&format!("batch-{i:03}"), RunStatus::Completed, i)).collect();
        all.push(info("other-1", RunStatus::Failed, 500));
        all.push(info("batch-x", RunStatus::Running, 600));
        all.reverse(); // newest first, as stores list them
        let v = runs_view(&all, RunsQuery::default(), Timestamp(T0.0 + 10_000));
        assert_eq!(v.total, 122);
        assert_eq!(v.counts[0], (RunStatus::Running, 1));
        assert_eq!(v.counts[1], (RunStatus::Completed, 120));
        assert_eq!(v.counts[2], (RunStatus::Failed, 1));
        assert_eq!((v.page, v.pages, v.rows.len()), (1, 3, 50));
        assert_eq!(v.rows[0].workflow_id, "batch-x");
        assert!(v.live, "a run is open");
        assert_eq!(v.rows[0].duration, "9.40s", "an open run's duration runs to now");

        let q = RunsQuery {
            status: Some(RunStatus::Completed),
            q: Some("batch-1".into()),
            page: Some(9),
            ..Default::default()
        };
        let v = runs_view(&all, q, T0);
        assert_eq!(v.matching, 20, "batch-100..batch-119");
        assert_eq!((v.page, v.pages), (1, 1), "a page past the end shows the last");
        assert!(v.rows.iter().all(|r| r.workflow_id.starts_with("batch-1") && r.status == RunStatus::Completed));
        assert_eq!(v.rows[0].duration, "1.50s");
        assert_eq!(v.query.with_page(2), "?status=completed&q=batch-1&page=2");
    }

    #[test]
    fn empty_form_fields_mean_any() {
        let q: RunsQuery = serde_urlencoded_like("status=&type=&q=ord&page=2");
        assert_eq!(q, RunsQuery { q: Some("ord".into()), page: Some(2), ..Default::default() });
        let q: RunsQuery = serde_urlencoded_like("status=timed_out");
        assert_eq!(q.status, Some(RunStatus::TimedOut));
    }

    /// The query string through axum's own parser.
    fn serde_urlencoded_like(s: &str) -> RunsQuery {
        let uri: axum::http::Uri = format!("/ui/?{s}").parse().unwrap();
        axum::extract::Query::<RunsQuery>::try_from_uri(&uri).unwrap().0
    }

    fn failed_activity(seq: Seq) -> EventKind {
        EventKind::ActivityFailed {
            seq,
            failure: ActivityFailure::Failed {
                activity_type: "enrich".into(),
                attempts: 2,
                error: ActivityError::retryable("Upstream503", "down"),
            },
        }
    }

    fn details(
        info: RunInfo,
        attempts: Vec<AttemptRecord>,
        pending: Vec<PendingView>,
        children: Vec<ChildView>,
    ) -> RunDetails {
        serde_json::from_value(serde_json::json!({
            "info": info, "pending": pending, "attempts": attempts, "children": children
        }))
        .unwrap()
    }

    #[test]
    fn a_failed_run_shows_its_cause_chain_retries_and_the_failed_event() {
        let mut i = info("chunk-3", RunStatus::Failed, 0);
        let mut failure = Failure::new("ActivityFailed", "activity enrich failed after 2 attempt(s)");
        failure.cause = Some(Box::new(Failure::new("Upstream503", "down")));
        i.failure = Some(failure);
        let history = vec![
            ev(
                1,
                0,
                EventKind::WorkflowStarted {
                    workflow_type: "job".into(),
                    workflow_id: "chunk-3".into(),
                    input: Payload::null(),
                    seed: 1,
                    parent: None,
                    start: RunStart::plain(),
                },
            ),
            ev(
                2,
                1,
                EventKind::ActivityScheduled {
                    seq: 0,
                    activity_type: "enrich".into(),
                    input: Payload::encode(&7).unwrap(),
                    options: ActivityOptions::default(),
                },
            ),
            ev(3, 900, EventKind::ActivityStarted { seq: 0, attempt: 2, worker: "w1".into() }),
            ev(4, 900, failed_activity(0)),
            ev(5, 901, EventKind::WorkflowFailed { failure: Failure::new("ActivityFailed", "x"), next_run: None }),
        ];
        let attempts = vec![
            attempt(0, 1, 1, 200, AttemptOutcome::Failed { error: ActivityError::retryable("Upstream503", "down") }),
            attempt(0, 2, 700, 900, AttemptOutcome::Failed { error: ActivityError::retryable("Upstream503", "down") }),
        ];
        let v = run_view(&details(i, attempts, vec![], vec![]), &history, Pages { events: 1, attempts: 1 }, T0);
        assert_eq!(
            v.failure_chain,
            vec![
                ("ActivityFailed".to_string(), "activity enrich failed after 2 attempt(s)".to_string()),
                ("Upstream503".to_string(), "down".to_string())
            ]
        );
        // Both attempts in one lane, with the backoff between them as a gap.
        assert_eq!(v.timeline.lanes, 1);
        assert_eq!(v.timeline.bars.len(), 2);
        assert!(v.timeline.bars.iter().all(|b| b.class == "failed" && b.lane == 0));
        assert!(v.timeline.bars[0].end < v.timeline.bars[1].start);
        assert!(
            v.timeline.bars[1].label.contains("attempt 2: failed: Upstream503: down"),
            "{}",
            v.timeline.bars[1].label
        );
        assert_eq!(v.attempts[1].heartbeat.as_deref(), Some(r#"{"rows":20}"#));
        assert!(v.events[3].bad && v.events[4].bad && !v.events[1].bad);
        assert!(v.events[1].json.contains("\"activity_type\": \"enrich\""), "{}", v.events[1].json);
        assert_eq!(v.events[3].relative, "+900ms");
        assert!(!v.live);
    }

    #[test]
    fn an_open_run_shows_pending_work_heartbeats_and_a_running_bar() {
        let i = info("chunk-1", RunStatus::Running, 0);
        let run_id = i.run_id.clone();
        let history = vec![
            ev(
                1,
                0,
                EventKind::WorkflowStarted {
                    workflow_type: "job".into(),
                    workflow_id: "chunk-1".into(),
                    input: Payload::null(),
                    seed: 1,
                    parent: None,
                    start: RunStart::plain(),
                },
            ),
            ev(
                2,
                10,
                EventKind::ActivityScheduled {
                    seq: 0,
                    activity_type: "enrich".into(),
                    input: Payload::null(),
                    options: ActivityOptions::default(),
                },
            ),
            ev(3, 10, EventKind::TimerStarted { seq: 1, fire_at: Timestamp(T0.0 + 3_600_000) }),
        ];
        let task = Task {
            key: TaskKey::activity(&run_id, 0),
            run_id: run_id.clone(),
            visible_at: Timestamp(T0.0 + 5_000),
            lease_duration: std::time::Duration::from_secs(10),
            kind: TaskKind::Activity(Box::new(ActivityTask {
                workflow_id: "chunk-1".into(),
                seq: 0,
                activity_type: "enrich".into(),
                input: Payload::null(),
                options: ActivityOptions::default(),
                attempt: 2,
                scheduled_at: Timestamp(T0.0 + 10),
                last_error: Some(ActivityError::retryable("Upstream503", "down")),
                heartbeat: Some(Payload::encode(&serde_json::json!({"row": 7})).unwrap()),
                heartbeat_at: Some(Timestamp(T0.0 + 150)),
                lost_attempts: 0,
                lost_streak: 0,
                lost_heartbeat_at: None,
                async_result: None,
                cancel_requested: false,
            })),
        };
        let pending = vec![PendingView { task, lease_owner: None, lease_expires_at: None }];
        let attempts = vec![attempt(0, 1, 10, 200, AttemptOutcome::WorkerLost)];
        let now = Timestamp(T0.0 + 2_000);
        let v = run_view(&details(i, attempts, pending, vec![]), &history, Pages { events: 1, attempts: 1 }, now);
        assert!(v.live);
        let p = &v.pending[0];
        assert_eq!((p.kind, p.attempt, p.state.as_str()), ("activity", Some(2), "retry in 3.00s"));
        assert_eq!(p.heartbeat, Some((r#"{"row":7}"#.to_string(), "1.85s ago".to_string())));
        assert_eq!(p.last_failure.as_deref(), Some("Upstream503: down"));
        // The lost attempt, then the waiting one in the same lane; the timer in another.
        let bars: Vec<(&str, usize)> = v.timeline.bars.iter().map(|b| (b.class, b.lane)).collect();
        assert_eq!(bars, vec![("lost", 0), ("running", 0), ("timer", 1)]);
        assert_eq!(v.timeline.end, now);
        assert!(v.timeline.bars[2].label.ends_with("pending"));
    }

    #[test]
    fn a_parent_lists_failed_children_first_with_counts_and_policies() {
        let child = |seq: Seq, status: Option<RunStatus>| ChildView {
            seq,
            workflow_id: format!("batch/chunk-{seq}"),
            workflow_type: "chunk".into(),
            run_id: status.map(|_| RunId(format!("r{seq}"))),
            status,
            start_failed: None,
        };
        let mut children: Vec<ChildView> = (0..300).map(|s| child(s, Some(RunStatus::Completed))).collect();
        children[120].status = Some(RunStatus::Failed);
        children[7].status = Some(RunStatus::Running);
        children.push(ChildView { start_failed: Some("id in use".into()), ..child(300, None) });
        let history: Vec<Event> = (0..301u32)
            .map(|s| {
                ev(
                    u64::from(s) + 1,
                    u64::from(s),
                    EventKind::ChildWorkflowInitiated {
                        seq: s,
                        workflow_type: "chunk".into(),
                        workflow_id: format!("batch/chunk-{s}"),
                        input: Payload::null(),
                        parent_close_policy: ParentClosePolicy::Terminate,
                        start: RunStart::plain(),
                    },
                )
            })
            .collect();
        let v = children_view(&children, &history);
        assert_eq!((v.total, v.closed), (301, 300));
        assert_eq!(
            v.counts,
            vec![("completed".into(), 298), ("running".into(), 1), ("failed".into(), 1), ("could not start".into(), 1)]
        );
        assert_eq!(v.rows[0].workflow_id, "batch/chunk-120");
        assert_eq!(v.rows[1].status, "could not start");
        assert!(v.rows[0].bad && !v.rows[2].bad);
        assert_eq!(v.rows[0].policy, "terminate");
        let failed = ChildFailure {
            workflow_id: "x".into(),
            workflow_type: "chunk".into(),
            kind: ChildEnd::Failed,
            cause: None,
        };
        assert!(event_row(&ev(1, 0, EventKind::ChildWorkflowFailed { seq: 0, failure: failed }), T0).bad);
    }

    #[test]
    fn long_histories_are_paged_and_payloads_cut() {
        let big = "x".repeat(40_000);
        let mut history = vec![ev(
            1,
            0,
            EventKind::WorkflowStarted {
                workflow_type: "job".into(),
                workflow_id: "w".into(),
                input: Payload::encode(&big).unwrap(),
                seed: 1,
                parent: None,
                start: RunStart::plain(),
            },
        )];
        for i in 2..=1_200 {
            history.push(ev(i, i, EventKind::SideEffectRecorded { seq: i as Seq, value: Payload::null() }));
        }
        let mut i = info("w", RunStatus::Running, 0);
        i.input = Payload::encode(&big).unwrap();
        let v = run_view(&details(i, vec![], vec![], vec![]), &history, Pages { events: 3, attempts: 1 }, T0);
        assert_eq!((v.events_page, v.events_pages, v.events_total), (3, 3, 1_200));
        assert_eq!(v.events.len(), 200);
        assert_eq!(v.events[0].id, 1_001);
        assert!(v.input.len() < 17 * 1024 && v.input.ends_with("download the history JSON for all of it)"));
    }

    #[test]
    fn a_long_timeline_merges_neighbours_and_keeps_retries_apart() {
        let mut i = info("long", RunStatus::Completed, 0);
        i.close_time = Some(Timestamp(T0.0 + 100_000));
        // 3,000 quick completed attempts back to back, and one failed attempt among them.
        let mut attempts: Vec<AttemptRecord> = (0..3_000)
            .map(|s| attempt(s, 1, u64::from(s) * 30, u64::from(s) * 30 + 20, AttemptOutcome::Completed))
            .collect();
        attempts[1_500].outcome = AttemptOutcome::WorkerLost;
        let history = vec![ev(
            1,
            0,
            EventKind::WorkflowStarted {
                workflow_type: "job".into(),
                workflow_id: "long".into(),
                input: Payload::null(),
                seed: 1,
                parent: None,
                start: RunStart::plain(),
            },
        )];
        let t = timeline(&i, &history, &attempts, T0);
        assert_eq!(t.unmerged, 3_000);
        let shapes: Vec<&str> = t.bars.iter().map(|b| b.class).collect();
        assert_eq!(shapes, vec!["ok", "lost", "ok"], "merged around the one that differs");
        assert!(t.bars[0].label.starts_with("1500 bars (ok) merged"), "{}", t.bars[0].label);
        let d = details(i, attempts, vec![], vec![]);
        let v = run_view(&d, &history, Pages { events: 1, attempts: 7 }, T0);
        assert_eq!((v.attempts_page, v.attempts_pages, v.attempts.len(), v.attempts_total), (6, 6, 500, 3_000));
        assert_eq!(v.attempts[0].seq, 2_500);
    }
}
