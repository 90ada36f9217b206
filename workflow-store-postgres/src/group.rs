//! Group commit: the creates and appends that arrive together run as one transaction.
//!
//! The transaction locks the rows the group touches (runs `FOR UPDATE`, then tasks), checks
//! and applies each write in arrival order in memory, exactly as `MemoryStore` would, and
//! then writes the final state of every touched row in a handful of pipelined statements
//! (one per table, whatever the group's size). A write whose own check fails (a conflict, a
//! lost lease, a closed run) is left out and fails alone; the rest commit together, and each
//! caller hears `Ok` only after `COMMIT` returned, that is, after PostgreSQL made it durable.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::ClientWrapper;
use workflow_core::history::Event;
use workflow_core::store::{
    AppendOutcome, AppendRequest, AttemptRecord, EagerLease, LeasedTask, NewRun, RunInfo, RunStatus, Task, TaskKey,
    TaskOp,
};
use workflow_core::RunId;
use workflow_core::{Payload, StoreError, Timestamp};

use crate::rows::{self, encode, queue_code, task_from_row, ts, TaskRow, TASK_COLUMNS};

/// A write waiting for its group.
#[allow(clippy::large_enum_variant)] // one per write in flight, short-lived
pub(crate) enum Write {
    Create(NewRun),
    Append(AppendRequest),
}

/// What a write got.
pub(crate) enum Reply {
    Created(Option<LeasedTask>),
    Appended(AppendOutcome),
}

struct RunState {
    /// The run without its input (which is written once, with a new run).
    info: RunInfo,
    input: Option<Payload>,
    last_time: Timestamp,
    new: bool,
    dirty: bool,
}

/// The group's view of the rows it touches.
#[derive(Default)]
struct Sim {
    runs: HashMap<RunId, RunState>,
    /// Runs checked for existence (by run id) that exist but are not locked for appends.
    known_run_ids: HashSet<RunId>,
    /// Open run per workflow id.
    open: HashMap<String, RunId>,
    tasks: HashMap<TaskKey, TaskRow>,
    dirty_tasks: HashSet<TaskKey>,
    deleted_tasks: HashSet<TaskKey>,
    events: Vec<(RunId, Event)>,
    attempts: Vec<AttemptRecord>,
    tokens: Vec<i64>,
    closed: Vec<RunId>,
}

/// The result of a group: one reply per write, in order, and the runs it closed.
pub(crate) struct Outcome {
    pub(crate) replies: Vec<Result<Reply, StoreError>>,
    pub(crate) closed: Vec<RunId>,
    /// Whether to wake this process's pollers.
    pub(crate) wake: bool,
}

/// Runs one group as one transaction on `tx`, from BEGIN to COMMIT, in two round trips. On
/// an error the caller rolls back (the transaction may still be open) and retries.
pub(crate) async fn run(
    tx: &ClientWrapper,
    writes: &[Write],
    channel: &str,
    origin: &str,
) -> Result<Outcome, tokio_postgres::Error> {
    let mut sim = Sim::default();
    load(tx, writes, &mut sim).await?;
    let mut replies = Vec::with_capacity(writes.len());
    for w in writes {
        replies.push(match w {
            Write::Create(run) => sim.create(run).map(Reply::Created),
            Write::Append(req) => sim.append(req).map(Reply::Appended),
        });
    }
    store(tx, &sim, channel, origin).await?;
    let wake = sim.wakes();
    Ok(Outcome { replies, closed: sim.closed, wake })
}

async fn load(tx: &ClientWrapper, writes: &[Write], sim: &mut Sim) -> Result<(), tokio_postgres::Error> {
    let mut append_runs: Vec<&str> = Vec::new();
    let mut new_ids: Vec<&str> = Vec::new();
    let mut new_wf_ids: Vec<&str> = Vec::new();
    let mut keys: Vec<&str> = Vec::new();
    let mut closing: Vec<&str> = Vec::new();
    let mut eager = 0i64;
    let wf_keys: Vec<TaskKey> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Create(r) => Some(TaskKey::workflow(&r.info.run_id)),
            Write::Append(_) => None,
        })
        .collect();
    keys.extend(wf_keys.iter().map(|k| k.0.as_str()));
    for w in writes {
        match w {
            Write::Create(r) => {
                new_ids.push(&r.info.run_id.0);
                new_wf_ids.push(&r.info.workflow_id);
                if let Some(l) = &r.lease {
                    eager += l.keys.len() as i64;
                }
            }
            Write::Append(req) => {
                append_runs.push(&req.run_id.0);
                for op in &req.task_ops {
                    keys.push(match op {
                        TaskOp::Upsert(t) => &t.key.0,
                        TaskOp::Delete(k) => &k.0,
                    });
                }
                if let Some(c) = &req.complete {
                    keys.push(&c.key.0);
                }
                if req.events.iter().any(|e| RunStatus::from_terminal(e).is_some()) {
                    closing.push(&req.run_id.0);
                }
                if let Some(l) = &req.lease {
                    eager += l.keys.len() as i64;
                }
            }
        }
    }
    append_runs.sort_unstable();
    append_runs.dedup();
    keys.sort_unstable();
    keys.dedup();

    // Lock order: runs, then tasks, each by key, so that concurrent groups do not deadlock
    // (a deadlock that happens anyway is detected by PostgreSQL and the group retried).
    let lock_runs = async {
        if append_runs.is_empty() {
            return Ok(Vec::new());
        }
        let st = tx
            .prepare_cached(
                "SELECT run_id, info::text, last_time FROM wf_runs WHERE run_id = ANY($1) ORDER BY run_id FOR UPDATE",
            )
            .await?;
        tx.query(&st, &[&append_runs]).await
    };
    let check_new = async {
        if new_ids.is_empty() {
            return Ok(Vec::new());
        }
        let st = tx
            .prepare_cached(
                "SELECT run_id, workflow_id, status FROM wf_runs \
                 WHERE run_id = ANY($1) OR (workflow_id = ANY($2) AND status = 'running')",
            )
            .await?;
        tx.query(&st, &[&new_ids, &new_wf_ids]).await
    };
    let lock_tasks = async {
        let st = tx
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM wf_tasks t WHERE t.key = ANY($1) OR t.run_id = ANY($2) ORDER BY t.key FOR UPDATE"
            ))
            .await?;
        tx.query(&st, &[&keys, &closing]).await
    };
    // One round trip: BEGIN and the reads are pipelined (sent in this order, before any
    // answer; prepared statements are cached per connection, so no Parse is needed).
    let (_, locked, existing, task_rows) =
        futures::try_join!(tx.batch_execute("BEGIN"), lock_runs, check_new, lock_tasks)?;
    for row in &locked {
        let run_id = RunId(row.get::<_, String>(0));
        // An unreadable run row fails the appends to that run (as NotFound would), alone.
        let Ok(info) = rows::run_state(row, 0) else { continue };
        if !info.status.is_closed() {
            sim.open.insert(info.workflow_id.clone(), run_id.clone());
        }
        let last_time = rows::from_ts(row.get(2));
        sim.runs.insert(run_id, RunState { info, input: None, last_time, new: false, dirty: false });
    }
    for row in &existing {
        let run_id = RunId(row.get::<_, String>(0));
        let wf: String = row.get(1);
        let status: &str = row.get(2);
        if status == "running" {
            sim.open.insert(wf, run_id.clone());
        }
        sim.known_run_ids.insert(run_id);
    }
    for row in &task_rows {
        // An unreadable task is treated as absent: it is overwritten or deleted by this group.
        if let Ok(t) = task_from_row(row) {
            sim.tasks.insert(t.task.key.clone(), t);
        }
    }
    sim.tokens = (0..eager).map(|_| eager_token()).collect();
    Ok(())
}

impl Sim {
    fn create(&mut self, run: &NewRun) -> Result<Option<LeasedTask>, StoreError> {
        let id = &run.info.run_id;
        if let Some(open) = self.open.get(&run.info.workflow_id) {
            return Err(StoreError::AlreadyExists { workflow_id: run.info.workflow_id.clone(), run_id: open.clone() });
        }
        if self.known_run_ids.contains(id) || self.runs.contains_key(id) {
            return Err(StoreError::AlreadyExists { workflow_id: run.info.workflow_id.clone(), run_id: id.clone() });
        }
        let mut info = run.info.clone();
        info.last_event_id = 1;
        let input = std::mem::replace(&mut info.input, Payload::null());
        self.open.insert(info.workflow_id.clone(), id.clone());
        self.events.push((id.clone(), Event { id: 1, time: run.time, kind: run.started.clone() }));
        self.runs
            .insert(id.clone(), RunState { info, input: Some(input), last_time: run.time, new: true, dirty: true });
        let key = TaskKey::workflow(id);
        self.upsert(Task::workflow(id, run.time));
        let Some(l) = &run.lease else { return Ok(None) };
        Ok(self.lease_eager(l, |k| *k == key).pop())
    }

    fn append(&mut self, req: &AppendRequest) -> Result<AppendOutcome, StoreError> {
        let run =
            self.runs.get(&req.run_id).ok_or_else(|| StoreError::NotFound { what: format!("run {}", req.run_id) })?;
        if run.info.status.is_closed() && !req.events.is_empty() {
            return Err(StoreError::RunClosed { run_id: req.run_id.clone() });
        }
        let last = run.info.last_event_id;
        if let Some(expected) = req.expected_last_event_id {
            if expected != last {
                return Err(StoreError::Conflict { run_id: req.run_id.clone(), expected, actual: last });
            }
        }
        if let Some(c) = &req.complete {
            match self.tasks.get(&c.key).and_then(|t| t.lease.as_ref()) {
                Some((_, token, _)) if *token as u64 == c.token => {}
                _ => return Err(StoreError::LeaseLost { task: c.key.0.clone() }),
            }
        }
        let time = req.time.max(run.last_time);

        // Checked: from here on the write applies.
        let run = self.runs.get_mut(&req.run_id).expect("checked above");
        let mut closed = false;
        for (i, kind) in req.events.iter().enumerate() {
            closed |= RunStatus::from_terminal(kind).is_some();
            run.info.apply_event(kind, time);
            self.events.push((req.run_id.clone(), Event { id: last + 1 + i as u64, time, kind: kind.clone() }));
        }
        run.info.last_event_id = last + req.events.len() as u64;
        if !req.events.is_empty() {
            run.last_time = time;
        }
        run.dirty = true;
        if let Some(f) = &req.task_failure {
            run.info.task_failure = f.clone();
        }
        let new_last = run.info.last_event_id;
        let workflow_id = run.info.workflow_id.clone();
        let mut upserted = HashSet::new();
        for op in &req.task_ops {
            match op {
                TaskOp::Upsert(t) => {
                    upserted.insert(t.key.clone());
                    self.upsert(t.clone());
                }
                TaskOp::Delete(k) => self.delete(k),
            }
        }
        if let Some(c) = &req.complete {
            if let Some(row) = self.tasks.get_mut(&c.key) {
                if !c.release && row.version == row.leased_version {
                    self.delete(&c.key);
                } else {
                    row.lease = None;
                    row.lease_since = None;
                    self.dirty_tasks.insert(c.key.clone());
                }
            }
        }
        if closed {
            let doomed: Vec<TaskKey> =
                self.tasks.values().filter(|t| t.task.run_id == req.run_id).map(|t| t.task.key.clone()).collect();
            for k in doomed {
                self.delete(&k);
            }
            if self.open.get(&workflow_id) == Some(&req.run_id) {
                self.open.remove(&workflow_id);
            }
            self.closed.push(req.run_id.clone());
        }
        if let Some(a) = &req.attempt {
            self.attempts.push(a.clone());
        }
        let leased = match &req.lease {
            Some(l) => self.lease_eager(l, |k| upserted.contains(k)),
            None => Vec::new(),
        };
        Ok(AppendOutcome { last_event_id: new_last, time, leased })
    }

    /// Leases the tasks `l` names that `written(key)` says this write upserted and that
    /// still exist (eager dispatch), with the tokens drawn for the group.
    fn lease_eager(&mut self, l: &EagerLease, written: impl Fn(&TaskKey) -> bool) -> Vec<LeasedTask> {
        let mut leased = Vec::new();
        for key in &l.keys {
            if !written(key) {
                continue;
            }
            let Some(row) = self.tasks.get_mut(key) else { continue };
            let Some(token) = self.tokens.pop() else { continue };
            row.leased_version = row.version;
            row.lease = Some((l.owner.clone(), token, l.now.add(row.task.lease_duration)));
            row.lease_since = Some(l.now);
            leased.push(LeasedTask {
                task: row.task.clone(),
                token: token as u64,
                previous_lease_lost: false,
                previous_holder: None,
            });
        }
        leased
    }

    /// Whether the group gives anyone something to do: a task that is not leased (new work,
    /// or released), a new run, a closed run. Otherwise (a step whose next task this worker
    /// leased eagerly) nobody is woken: waking would only cost every idle poller a query.
    pub(crate) fn wakes(&self) -> bool {
        !self.closed.is_empty()
            || self.runs.values().any(|r| r.new)
            || self.dirty_tasks.iter().any(|k| self.tasks.get(k).is_some_and(|t| t.lease.is_none()))
    }

    fn upsert(&mut self, task: Task) {
        let key = task.key.clone();
        self.deleted_tasks.remove(&key);
        self.dirty_tasks.insert(key.clone());
        match self.tasks.get_mut(&key) {
            Some(row) => {
                row.task = task;
                row.version += 1;
            }
            None => {
                self.tasks.insert(key, TaskRow { task, version: 1, leased_version: 0, lease: None, lease_since: None });
            }
        }
    }

    fn delete(&mut self, key: &TaskKey) {
        self.tasks.remove(key);
        self.dirty_tasks.remove(key);
        // Deleting a row that does not exist is harmless.
        self.deleted_tasks.insert(key.clone());
    }
}

/// Writes the group's final state: one statement per table, pipelined.
async fn store(tx: &ClientWrapper, sim: &Sim, channel: &str, origin: &str) -> Result<(), tokio_postgres::Error> {
    let mut new_runs = RunColumns::default();
    let mut changed_runs = RunColumns::default();
    for (id, r) in sim.runs.iter().filter(|(_, r)| r.dirty && !r.new) {
        changed_runs.push(id, r);
    }
    // New runs get their seq_no (the newest-first order) in creation order, which is the
    // order of their first events.
    for (id, _) in sim.events.iter().filter(|(_, e)| e.id == 1) {
        if let Some(r) = sim.runs.get(id).filter(|r| r.new) {
            new_runs.push(id, r);
        }
    }

    let mut ev_run: Vec<&str> = Vec::with_capacity(sim.events.len());
    let mut ev_id: Vec<i64> = Vec::with_capacity(sim.events.len());
    let mut ev_time: Vec<i64> = Vec::with_capacity(sim.events.len());
    let mut ev_kind: Vec<String> = Vec::with_capacity(sim.events.len());
    for (run, e) in &sim.events {
        ev_run.push(&run.0);
        ev_id.push(e.id as i64);
        ev_time.push(ts(e.time));
        ev_kind.push(encode_or_null(&e.kind));
    }

    let mut t = TaskColumns::default();
    for key in &sim.dirty_tasks {
        if let Some(row) = sim.tasks.get(key) {
            t.push(row);
        }
    }
    let deleted: Vec<&str> =
        sim.deleted_tasks.iter().filter(|k| !sim.dirty_tasks.contains(*k)).map(|k| k.0.as_str()).collect();

    let mut at_run: Vec<&str> = Vec::new();
    let mut at_rec: Vec<String> = Vec::new();
    for a in &sim.attempts {
        at_run.push(&a.run_id.0);
        at_rec.push(encode_or_null(a));
    }

    // One statement writes everything (each part a data-modifying CTE; a part with no rows
    // costs next to nothing), then COMMIT: one round trip, pipelined. When the statement fails
    // the transaction is aborted and COMMIT only ends it (as a rollback); the statement's
    // error fails the group (a unique violation on wf_runs means a concurrent create: the
    // group is retried and then sees that run).
    let payload = notification(origin, &sim.closed);
    let wake = sim.wakes();
    let nr = &new_runs;
    let cr = &changed_runs;
    // The statement is prepared (a round trip, the first time on a connection) before the
    // write and the COMMIT are pipelined: preparing inside the joined future let the COMMIT
    // go out first on a fresh connection, so the write ran after the transaction, outside
    // its locks, and a concurrent group could write a stale run row over it (seen in the
    // PostgreSQL crash test: a recovering process's run kept `last_event_id` 4 while its
    // events went to 6, and every later append to it conflicted).
    let st = tx.prepare_cached(WRITE_SQL).await?;
    let write = async {
        tx.execute(
            &st,
            &[
                &nr.ids,
                &nr.wf,
                &nr.ty,
                &nr.status,
                &nr.start,
                &nr.close,
                &nr.last,
                &nr.last_time,
                &nr.info,
                &nr.input,
                &cr.ids,
                &cr.status,
                &cr.close,
                &cr.last,
                &cr.last_time,
                &cr.info,
                &ev_run,
                &ev_id,
                &ev_time,
                &ev_kind,
                &t.keys,
                &t.runs,
                &t.queues,
                &t.leased,
                &t.due,
                &t.lease_ms,
                &t.task,
                &t.version,
                &t.leased_version,
                &t.owner,
                &t.token,
                &deleted,
                &at_run,
                &at_rec,
                &wake,
                &channel,
                &payload,
                &t.since,
            ],
        )
        .await
    };
    let commit = async { tx.batch_execute("COMMIT").await.map(|_| 0) };
    futures::try_join!(write, commit)?;
    Ok(())
}

/// The group's writes, one statement. Parameters: new runs ($1-$10), changed runs ($11-$16),
/// events ($17-$20), upserted tasks ($21-$31), deleted task keys ($32), attempts ($33-$34),
/// whether to notify, on which channel, with what ($35-$37), and the upserted tasks' lease
/// start times ($38).
const WRITE_SQL: &str = "\
WITH new_runs AS (
    INSERT INTO wf_runs (run_id, workflow_id, workflow_type, status, start_time, close_time, last_event_id,
                         last_time, info, input)
    SELECT u.run_id, u.wf, u.ty, u.status, u.start_time, u.close_time, u.last, u.last_time, u.info::json,
           u.input::json
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::int8[], $8::int8[],
                $9::text[], $10::text[]) WITH ORDINALITY
         AS u(run_id, wf, ty, status, start_time, close_time, last, last_time, info, input, n)
    ORDER BY u.n),
changed_runs AS (
    UPDATE wf_runs r SET status = u.status, close_time = u.close_time, last_event_id = u.last,
                         last_time = u.last_time, info = u.info::json
    FROM unnest($11::text[], $12::text[], $13::int8[], $14::int8[], $15::int8[], $16::text[])
         AS u(run_id, status, close_time, last, last_time, info)
    WHERE r.run_id = u.run_id),
events AS (
    INSERT INTO wf_events (run_id, event_id, time, kind)
    SELECT r, i, t, k::json FROM unnest($17::text[], $18::int8[], $19::int8[], $20::text[]) AS u(r, i, t, k)),
tasks AS (
    INSERT INTO wf_tasks (key, run_id, queue, leased, due_at, lease_ms, task, version, leased_version,
                          lease_owner, lease_token, lease_since, hb_details, hb_at)
    SELECT k, r, q, l, d, ms, t::json, v, lv, o, tok, since, NULL, NULL
    FROM unnest($21::text[], $22::text[], $23::int2[], $24::bool[], $25::int8[], $26::int8[], $27::text[],
                $28::int8[], $29::int8[], $30::text[], $31::int8[], $38::int8[])
         AS u(k, r, q, l, d, ms, t, v, lv, o, tok, since)
    ON CONFLICT (key) DO UPDATE SET run_id = excluded.run_id, queue = excluded.queue, leased = excluded.leased,
        due_at = excluded.due_at, lease_ms = excluded.lease_ms, task = excluded.task, version = excluded.version,
        leased_version = excluded.leased_version, lease_owner = excluded.lease_owner,
        lease_token = excluded.lease_token, lease_since = excluded.lease_since, hb_details = NULL, hb_at = NULL),
deleted AS (
    DELETE FROM wf_tasks WHERE key = ANY($32::text[])),
attempts AS (
    INSERT INTO wf_attempts (run_id, record)
    SELECT r, a::json FROM unnest($33::text[], $34::text[]) WITH ORDINALITY AS u(r, a, n) ORDER BY u.n)
SELECT CASE WHEN $35::bool THEN pg_notify($36::text, $37::text) END";

/// A lease token for an eager lease: random, with bit 62 set, so that it never equals a
/// token `lease_tasks` draws from the `wf_lease_tokens` sequence (which stays below 2^62).
/// Tokens only need to differ between the leases of one task.
fn eager_token() -> i64 {
    (1i64 << 62) | (crate::random_u64() >> 2) as i64
}

/// A notification's payload: the sender and the runs it closed (bounded: PostgreSQL takes
/// 8,000 bytes; a receiver that misses some closes learns them by polling).
pub(crate) fn notification(origin: &str, closed: &[RunId]) -> String {
    let mut s = String::from(origin);
    for id in closed {
        if s.len() + id.0.len() + 1 > 7_000 {
            break;
        }
        s.push(' ');
        s.push_str(&id.0);
    }
    s
}

fn encode_or_null<T: serde::Serialize>(v: &T) -> String {
    // Records built by the engine always encode; `null` keeps the row and shows the damage.
    encode("record", v).unwrap_or_else(|_| "null".to_string())
}

#[derive(Default)]
struct RunColumns<'a> {
    ids: Vec<&'a str>,
    wf: Vec<&'a str>,
    ty: Vec<&'a str>,
    status: Vec<String>,
    start: Vec<i64>,
    close: Vec<Option<i64>>,
    last: Vec<i64>,
    last_time: Vec<i64>,
    info: Vec<String>,
    input: Vec<String>,
}

impl<'a> RunColumns<'a> {
    fn push(&mut self, id: &'a RunId, r: &'a RunState) {
        self.ids.push(&id.0);
        self.wf.push(&r.info.workflow_id);
        self.ty.push(&r.info.workflow_type);
        self.status.push(r.info.status.to_string());
        self.start.push(ts(r.info.start_time));
        self.close.push(r.info.close_time.map(ts));
        self.last.push(r.info.last_event_id as i64);
        self.last_time.push(ts(r.last_time));
        self.info.push(encode_or_null(&r.info));
        if let Some(input) = &r.input {
            self.input.push(encode_or_null(input));
        }
    }
}

#[derive(Default)]
struct TaskColumns<'a> {
    keys: Vec<&'a str>,
    runs: Vec<&'a str>,
    queues: Vec<i16>,
    leased: Vec<bool>,
    due: Vec<i64>,
    lease_ms: Vec<i64>,
    task: Vec<String>,
    version: Vec<i64>,
    leased_version: Vec<i64>,
    owner: Vec<Option<&'a str>>,
    token: Vec<Option<i64>>,
    since: Vec<Option<i64>>,
}

impl<'a> TaskColumns<'a> {
    fn push(&mut self, row: &'a TaskRow) {
        self.keys.push(&row.task.key.0);
        self.runs.push(&row.task.run_id.0);
        self.queues.push(queue_code(row.task.queue()));
        self.leased.push(row.lease.is_some());
        self.due.push(ts(row.due_at()));
        self.lease_ms.push(i64::try_from(row.task.lease_duration.as_millis()).unwrap_or(i64::MAX));
        self.task.push(encode_or_null(&row.task));
        self.version.push(row.version);
        self.leased_version.push(row.leased_version);
        self.owner.push(row.lease.as_ref().map(|l| l.0.as_str()));
        self.token.push(row.lease.as_ref().map(|l| l.1));
        self.since.push(row.lease.as_ref().and(row.lease_since).map(ts));
    }
}
