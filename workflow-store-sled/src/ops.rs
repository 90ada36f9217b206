//! The store's write operations, checked and staged on an [`Op`] overlay by the committer.
//! Synchronous and free of I/O but for reads of the tree; the committer writes and flushes.

use workflow_core::history::Event;
use workflow_core::store::{
    AppendOutcome, AppendRequest, EagerLease, LeaseToken, LeasedTask, NewRun, RunStatus, Task, TaskKey, TaskOp,
};
use workflow_core::{EventId, Payload, RunId, StoreError, Timestamp};

use crate::codec::{decode, encode, LeaseMarker, RunRecord};
use crate::keys;
use crate::overlay::Op;
use crate::state::{Change, Lease, State};

/// A write waiting for the committer.
#[allow(clippy::large_enum_variant)] // one per write in flight, short-lived
pub(crate) enum Write {
    Create(NewRun),
    Append(AppendRequest),
    Heartbeat {
        key: TaskKey,
        token: LeaseToken,
        details: Option<Payload>,
        now: Timestamp,
        until: Timestamp,
    },
    /// Deletes up to `max` runs closed before `before`.
    Sweep {
        before: Timestamp,
        max: usize,
    },
}

/// What a write did.
pub(crate) enum Done {
    Created(Option<LeasedTask>),
    Appended(AppendOutcome),
    Heartbeat,
    Swept(usize),
}

/// Mutable context of the committer that operations share.
pub(crate) struct Ctx<'a> {
    pub(crate) state: &'a mut State,
    pub(crate) next_seq_no: &'a mut u64,
    pub(crate) instance: &'a str,
}

pub(crate) fn stage(op: &mut Op<'_>, cx: &mut Ctx<'_>, w: Write) -> Result<Done, StoreError> {
    match w {
        Write::Create(run) => create_run(op, cx, run).map(Done::Created),
        Write::Append(req) => append(op, cx, req).map(Done::Appended),
        Write::Heartbeat { key, token, details, now, until } => {
            heartbeat(op, cx, &key, token, details, now, until).map(|()| Done::Heartbeat)
        }
        Write::Sweep { before, max } => sweep(op, cx, before, max).map(Done::Swept),
    }
}

fn not_found(run_id: &RunId) -> StoreError {
    StoreError::NotFound { what: format!("run {run_id}") }
}

pub(crate) fn run_record(op: &Op<'_>, run_id: &RunId) -> Result<Option<RunRecord>, StoreError> {
    match op.get(&keys::run(run_id))? {
        Some(v) => decode(|| format!("runs/{run_id} (run {run_id})"), &v).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn run_id_from(v: &[u8], key: impl FnOnce() -> String) -> Result<RunId, StoreError> {
    match std::str::from_utf8(v) {
        Ok(s) => Ok(RunId(s.to_string())),
        Err(e) => Err(StoreError::Corrupt { key: key(), reason: format!("run id is not UTF-8: {e}") }),
    }
}

fn create_run(op: &mut Op<'_>, cx: &mut Ctx<'_>, run: NewRun) -> Result<Option<LeasedTask>, StoreError> {
    let wf = run.info.workflow_id.clone();
    if let Some(v) = op.get(&keys::workflow(&wf))? {
        let existing = run_id_from(&v, || format!("workflows/{wf}"))?;
        if let Some(rec) = run_record(op, &existing)? {
            if !rec.info.status.is_closed() {
                return Err(StoreError::AlreadyExists { workflow_id: wf, run_id: rec.info.run_id });
            }
        }
    }
    let run_id = run.info.run_id.clone();
    if run_record(op, &run_id)?.is_some() {
        return Err(StoreError::AlreadyExists { workflow_id: wf, run_id });
    }
    let mut info = run.info;
    info.last_event_id = 1;
    let seq_no = *cx.next_seq_no;
    *cx.next_seq_no += 1;
    let event = Event { id: 1, time: run.time, kind: run.started };
    op.put(keys::event(&run_id, 1), encode("event", &event)?);
    op.put(keys::workflow(&wf), run_id.as_str().as_bytes().to_vec());
    op.put(keys::order(seq_no), run_id.as_str().as_bytes().to_vec());
    let rec = RunRecord { info, seq_no, last_time: run.time, next_attempt: 0 };
    op.put(keys::run(&run_id), encode("run", &rec)?);
    let task = workflow_core::store::Task::workflow(&run_id, run.time);
    op.upsert_task(&task)?;
    let Some(l) = run.lease else { return Ok(None) };
    let mut written = std::collections::HashMap::from([(task.key.clone(), task)]);
    Ok(lease_eager(op, cx, l, &mut written)?.pop())
}

/// Leases the tasks `l` names that this write upserted (`written`) and that still exist
/// (eager dispatch): a lease marker on disk, the lease itself in memory.
fn lease_eager(
    op: &mut Op<'_>,
    cx: &mut Ctx<'_>,
    l: EagerLease,
    written: &mut std::collections::HashMap<TaskKey, Task>,
) -> Result<Vec<LeasedTask>, StoreError> {
    let mut leased = Vec::new();
    for key in l.keys {
        // Upserted by this write and not deleted again (as when the run closed).
        let Some(task) = written.remove(&key) else { continue };
        if !op.has_task(&key)? {
            continue;
        }
        let token = cx.state.next_token();
        let marker = LeaseMarker { instance: cx.instance.to_string(), owner: l.owner.clone(), since: Some(l.now) };
        op.put(keys::lease(&key), encode("lease marker", &marker)?);
        let until = l.now.add(task.lease_duration);
        op.change(Change::Lease(key, Lease { token, until, owner: l.owner.clone(), since: l.now, rearmed: false }));
        leased.push(LeasedTask { task, token, previous_lease_lost: false, previous_holder: None });
    }
    Ok(leased)
}

fn append(op: &mut Op<'_>, cx: &mut Ctx<'_>, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
    let run_id = req.run_id.clone();
    let mut rec = run_record(op, &run_id)?.ok_or_else(|| not_found(&run_id))?;
    if rec.info.status.is_closed() && !req.events.is_empty() {
        return Err(StoreError::RunClosed { run_id });
    }
    let last = rec.info.last_event_id;
    if let Some(expected) = req.expected_last_event_id {
        if expected != last {
            return Err(StoreError::Conflict { run_id, expected, actual: last });
        }
    }
    if let Some(c) = &req.complete {
        if op.lease_ended(&c.key) {
            return Err(StoreError::LeaseLost { task: c.key.0.clone() });
        }
        cx.state.check(&c.key, c.token)?;
    }
    let time = req.time.max(rec.last_time);
    let mut closed = false;
    let appended = req.events.len() as EventId;
    for (i, kind) in req.events.into_iter().enumerate() {
        closed |= RunStatus::from_terminal(&kind).is_some();
        rec.info.apply_event(&kind, time);
        let id = last + 1 + i as EventId;
        op.put(keys::event(&run_id, id), encode("event", &Event { id, time, kind })?);
    }
    rec.info.last_event_id = last + appended;
    if let Some(f) = req.task_failure {
        rec.info.task_failure = f;
    }
    // The tasks this append writes, kept for its eager leases (no decode of what was just
    // encoded).
    let mut written = std::collections::HashMap::new();
    for t in req.task_ops {
        match t {
            TaskOp::Upsert(task) => {
                op.upsert_task(&task)?;
                written.insert(task.key.clone(), task);
            }
            TaskOp::Delete(key) => {
                if op.has_task(&key)? {
                    op.delete_task(&key);
                }
            }
        }
    }
    if let Some(c) = req.complete {
        let rearmed = op.upserted_in_group(&c.key) || cx.state.lease(&c.key).is_some_and(|l| l.rearmed);
        // A completed task is done unless it was re-armed; a released or re-armed one (or
        // one this very append deleted) only loses its lease.
        if !c.release && !rearmed && op.has_task(&c.key)? {
            op.delete_task(&c.key);
        }
        op.end_lease(&c.key);
    }
    if closed {
        let mut doomed = cx.state.run_tasks(&run_id);
        doomed.extend(op.group_upserted().cloned());
        for key in doomed {
            if op.task(&key)?.is_some_and(|t| t.run_id == run_id) {
                op.delete_task(&key);
            }
        }
        op.put(keys::closed(time, &run_id), Vec::new());
    }
    if let Some(a) = req.attempt {
        op.put(keys::attempt(&run_id, rec.next_attempt), encode("attempt", &a)?);
        rec.next_attempt += 1;
    }
    let leased = match req.lease {
        Some(l) => lease_eager(op, cx, l, &mut written)?,
        None => Vec::new(),
    };
    if appended > 0 {
        rec.last_time = time;
    }
    let new_last = rec.info.last_event_id;
    op.put(keys::run(&run_id), encode("run", &rec)?);
    Ok(AppendOutcome { last_event_id: new_last, time, leased })
}

fn heartbeat(
    op: &mut Op<'_>,
    cx: &mut Ctx<'_>,
    key: &TaskKey,
    token: LeaseToken,
    details: Option<Payload>,
    now: Timestamp,
    until: Timestamp,
) -> Result<(), StoreError> {
    if op.lease_ended(key) {
        return Err(StoreError::LeaseLost { task: key.0.clone() });
    }
    cx.state.check(key, token)?;
    if let Some(d) = details {
        if let Some(mut task) = op.task(key)? {
            if let workflow_core::store::TaskKind::Activity(a) = &mut task.kind {
                a.heartbeat = Some(d);
                a.heartbeat_at = Some(now);
                op.rewrite_task(&task)?;
            }
        }
    }
    op.change(Change::Extend(key.clone(), until));
    Ok(())
}

/// Deletes up to `max` runs closed before `before`: history, attempts, tasks, indexes.
fn sweep(op: &mut Op<'_>, cx: &mut Ctx<'_>, before: Timestamp, max: usize) -> Result<usize, StoreError> {
    let tree = op.tree();
    let end = keys::closed(before, &RunId(String::new()));
    let mut n = 0;
    for kv in tree.range(vec![keys::CLOSED]..end).take(max) {
        let (k, _) = kv.map_err(crate::codec::backend)?;
        op.del(k.to_vec());
        let Some((_, run_id)) = keys::parse_closed(&k) else { continue };
        let Some(rec) = run_record(op, &run_id)? else { continue };
        for p in [keys::EVENT, keys::ATTEMPT] {
            for k in tree.scan_prefix(keys::run_prefix(p, &run_id)).keys() {
                op.del(k.map_err(crate::codec::backend)?.to_vec());
            }
        }
        for key in cx.state.run_tasks(&run_id) {
            op.delete_task(&key);
        }
        op.del(keys::order(rec.seq_no));
        let wf = keys::workflow(&rec.info.workflow_id);
        if op.get(&wf)?.is_some_and(|v| v.as_ref() == run_id.as_str().as_bytes()) {
            op.del(wf);
        }
        op.del(keys::run(&run_id));
        n += 1;
    }
    Ok(n)
}
