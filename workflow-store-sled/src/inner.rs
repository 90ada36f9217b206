//! The store's logic, synchronous: every mutation runs under one lock and commits one sled
//! transaction; the async [`Store`](workflow_core::store::Store) impl waits for the flush.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use sled::IVec;
use workflow_core::history::Event;
use workflow_core::store::{
    AppendOutcome, AppendRequest, AttemptRecord, LeaseToken, LeasedTask, NewRun, PendingTask, RunFilter, RunInfo,
    RunStatus, Task, TaskKey, TaskKind, TaskOp, TaskQueue,
};
use workflow_core::{EventId, Payload, RunId, StoreError, Timestamp};

use crate::batch::{Batch, Trees, T};
use crate::codec::{backend, decode, encode, LeaseMarker, RunRecord};
use crate::keys;
use crate::leases::{Lease, Leases};

pub(crate) struct State {
    pub(crate) leases: Leases,
    pub(crate) next_seq_no: u64,
}

pub(crate) struct Inner {
    pub(crate) trees: Trees,
    pub(crate) state: RwLock<State>,
    /// This process's store instance: lease markers carry it.
    pub(crate) instance: String,
}

fn not_found(run_id: &RunId) -> StoreError {
    StoreError::NotFound { what: format!("run {run_id}") }
}

impl Inner {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn tree(&self, t: T) -> &sled::Tree {
        self.trees.get(t)
    }

    pub(crate) fn run_record(&self, run_id: &RunId) -> Result<Option<RunRecord>, StoreError> {
        match self.tree(T::Runs).get(run_id.as_str()).map_err(backend)? {
            Some(v) => decode(|| format!("runs/{run_id} (run {run_id})"), &v).map(Some),
            None => Ok(None),
        }
    }

    fn current_run_id(&self, workflow_id: &str) -> Result<Option<RunId>, StoreError> {
        match self.tree(T::Workflows).get(workflow_id).map_err(backend)? {
            Some(v) => match std::str::from_utf8(&v) {
                Ok(s) => Ok(Some(RunId(s.to_string()))),
                Err(e) => Err(StoreError::Corrupt {
                    key: format!("workflows/{workflow_id}"),
                    reason: format!("run id is not UTF-8: {e}"),
                }),
            },
            None => Ok(None),
        }
    }

    pub(crate) fn create_run(&self, run: NewRun) -> Result<(), StoreError> {
        let mut st = self.write();
        let wf = run.info.workflow_id.clone();
        if let Some(existing) = self.current_run_id(&wf)? {
            if let Some(rec) = self.run_record(&existing)? {
                if !rec.info.status.is_closed() {
                    return Err(StoreError::AlreadyExists { workflow_id: wf, run_id: rec.info.run_id });
                }
            }
        }
        let run_id = run.info.run_id.clone();
        if self.run_record(&run_id)?.is_some() {
            return Err(StoreError::AlreadyExists { workflow_id: wf, run_id });
        }
        let mut info = run.info;
        info.last_event_id = 1;
        let seq_no = st.next_seq_no;
        let mut b = Batch::new(&self.trees);
        let event = Event { id: 1, time: run.time, kind: run.started };
        b.put(T::History, keys::event_key(&run_id, 1), encode("event", &event)?);
        b.put(T::Workflows, wf.into_bytes(), run_id.as_str().as_bytes().to_vec());
        b.put(T::RunOrder, seq_no.to_be_bytes().to_vec(), run_id.as_str().as_bytes().to_vec());
        b.put(
            T::Runs,
            run_id.as_str().as_bytes().to_vec(),
            encode("run", &RunRecord { info, seq_no, last_time: run.time })?,
        );
        b.upsert(Task::workflow(&run_id, run.time))?;
        b.commit(&mut st.leases)?;
        st.next_seq_no += 1;
        Ok(())
    }

    pub(crate) fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        let mut st = self.write();
        let run_id = req.run_id.clone();
        let rec = self.run_record(&run_id)?.ok_or_else(|| not_found(&run_id))?;
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
            st.leases.check(&c.key, c.token)?;
        }
        let time = req.time.max(rec.last_time);
        let mut info = rec.info;
        let mut b = Batch::new(&self.trees);
        let mut closed = false;
        let appended = req.events.len() as EventId;
        for (i, kind) in req.events.into_iter().enumerate() {
            if RunStatus::from_terminal(&kind).is_some() {
                closed = true;
            }
            info.apply_event(&kind, time);
            let id = last + 1 + i as EventId;
            let event = Event { id, time, kind };
            b.put(T::History, keys::event_key(&run_id, id), encode("event", &event)?);
        }
        info.last_event_id = last + appended;
        if let Some(f) = req.task_failure {
            info.task_failure = f;
        }
        for op in req.task_ops {
            match op {
                TaskOp::Upsert(t) => b.upsert(t)?,
                TaskOp::Delete(k) => b.delete(&k)?,
            }
        }
        if let Some(c) = req.complete {
            let rearmed = b.upserted.contains(&c.key) || st.leases.get(&c.key).is_some_and(|l| l.rearmed);
            // A task deleted by this very append only loses its lease.
            let gone = b.task(&c.key)?.is_none();
            if gone || (!c.release && !rearmed) {
                b.delete(&c.key)?;
            } else {
                b.clear_lease(&c.key);
            }
        }
        if closed {
            let mut doomed: Vec<TaskKey> = self.run_task_keys(&run_id)?;
            doomed.extend(b.touched_tasks().cloned());
            for key in doomed {
                if b.task(&key)?.is_some_and(|t| t.run_id == run_id) {
                    b.delete(&key)?;
                }
            }
            b.put(T::Closed, keys::closed_key(time, &run_id), Vec::new());
        }
        if let Some(a) = req.attempt {
            let n = self.next_attempt_no(&run_id)?;
            b.put(T::Attempts, keys::attempt_key(&run_id, n), encode("attempt", &a)?);
        }
        let new_last = info.last_event_id;
        let last_time = if appended > 0 { time } else { rec.last_time };
        b.put(
            T::Runs,
            run_id.as_str().as_bytes().to_vec(),
            encode("run", &RunRecord { info, seq_no: rec.seq_no, last_time })?,
        );
        b.commit(&mut st.leases)?;
        Ok(AppendOutcome { last_event_id: new_last, time })
    }

    fn run_task_keys(&self, run_id: &RunId) -> Result<Vec<TaskKey>, StoreError> {
        let prefix = keys::run_prefix(run_id);
        let mut out = Vec::new();
        for kv in self.tree(T::RunTasks).scan_prefix(&prefix) {
            let (k, _) = kv.map_err(backend)?;
            let key = std::str::from_utf8(&k[prefix.len()..]).map_err(|e| StoreError::Corrupt {
                key: format!("run_tasks/{run_id}/.."),
                reason: format!("task key is not UTF-8 (run {run_id}): {e}"),
            })?;
            out.push(TaskKey(key.to_string()));
        }
        Ok(out)
    }

    fn next_attempt_no(&self, run_id: &RunId) -> Result<u64, StoreError> {
        let last =
            self.tree(T::Attempts).scan_prefix(keys::run_prefix(run_id)).next_back().transpose().map_err(backend)?;
        Ok(last.and_then(|(k, _)| keys::trailing_u64(&k)).map_or(0, |n| n + 1))
    }

    pub(crate) fn lease_tasks(
        &self,
        queue: TaskQueue,
        now: Timestamp,
        max: usize,
        owner: &str,
    ) -> Result<Vec<LeasedTask>, StoreError> {
        let mut st = self.write();
        let mut picked: Vec<(TaskKey, bool)> =
            st.leases.expired(queue, now, max).into_iter().map(|k| (k, true)).collect();
        if picked.len() < max {
            let start = keys::ready_key(queue, Timestamp(0), &TaskKey(String::new()));
            for kv in self.tree(T::Ready).range(start..) {
                let (k, _) = kv.map_err(backend)?;
                if k.first() != Some(&keys::queue_byte(queue)) {
                    break;
                }
                let (at, key) = parse_ready(&k)?;
                if at > now || picked.len() >= max {
                    break;
                }
                if !st.leases.is_leased(&key) {
                    picked.push((key, false));
                }
            }
        }
        let mut out = Vec::with_capacity(picked.len());
        for (key, expired) in picked {
            let Some(task) = self.trees.task(&key)? else {
                // Cannot happen: the index and the task are written in one transaction.
                tracing::warn!(task = %key, "ready index names a missing task; skipping");
                st.leases.remove(&key);
                continue;
            };
            let marker = LeaseMarker { instance: self.instance.clone(), owner: owner.to_string() };
            // Not flushed: see the crate docs on what a crash can lose.
            self.tree(T::Leases).insert(key.0.as_bytes(), encode("lease marker", &marker)?).map_err(backend)?;
            let lost = st.leases.lost.remove(&key) || expired;
            let token = st.leases.next_token();
            st.leases.insert(
                key.clone(),
                Lease { token, until: now.add(task.lease_duration), owner: owner.to_string(), queue, rearmed: false },
            );
            out.push(LeasedTask { task, token, previous_lease_lost: lost });
        }
        Ok(out)
    }

    pub(crate) fn next_due(&self, queue: TaskQueue) -> Result<Option<Timestamp>, StoreError> {
        let st = self.read();
        let mut ready = None;
        let start = keys::ready_key(queue, Timestamp(0), &TaskKey(String::new()));
        for kv in self.tree(T::Ready).range(start..) {
            let (k, _) = kv.map_err(backend)?;
            if k.first() != Some(&keys::queue_byte(queue)) {
                break;
            }
            let (at, key) = parse_ready(&k)?;
            if !st.leases.is_leased(&key) {
                ready = Some(at);
                break;
            }
        }
        Ok(match (ready, st.leases.first_expiry(queue)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    pub(crate) fn heartbeat(
        &self,
        key: &TaskKey,
        token: LeaseToken,
        details: Option<Payload>,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        let mut st = self.write();
        st.leases.check(key, token)?;
        if let Some(d) = details {
            if let Some(mut task) = self.trees.task(key)? {
                if let TaskKind::Activity(a) = &mut task.kind {
                    a.heartbeat = Some(d);
                    a.heartbeat_at = Some(now);
                    // Not flushed: heartbeat details may be lost in a crash.
                    self.tree(T::Tasks).insert(key.0.as_bytes(), encode("task", &task)?).map_err(backend)?;
                }
            }
        }
        st.leases.extend(key, until);
        Ok(())
    }

    pub(crate) fn read_history(&self, run_id: &RunId, after: EventId) -> Result<Vec<Event>, StoreError> {
        let _st = self.read();
        if self.run_record(run_id)?.is_none() {
            return Err(not_found(run_id));
        }
        let prefix = keys::run_prefix(run_id);
        let mut end = prefix.clone();
        end.extend_from_slice(&u64::MAX.to_be_bytes());
        let start = keys::event_key(run_id, after.saturating_add(1));
        let mut out = Vec::new();
        for kv in self.tree(T::History).range(start..=end) {
            let (k, v) = kv.map_err(backend)?;
            let id = keys::trailing_u64(&k).unwrap_or_default();
            out.push(decode(|| format!("history/{run_id}/{id} (run {run_id})"), &v)?);
        }
        Ok(out)
    }

    pub(crate) fn get_run(&self, run_id: &RunId) -> Result<Option<RunInfo>, StoreError> {
        let _st = self.read();
        Ok(self.run_record(run_id)?.map(|r| r.info))
    }

    pub(crate) fn current_run(&self, workflow_id: &str) -> Result<Option<RunInfo>, StoreError> {
        let _st = self.read();
        match self.current_run_id(workflow_id)? {
            Some(id) => Ok(self.run_record(&id)?.map(|r| r.info)),
            None => Ok(None),
        }
    }

    pub(crate) fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunInfo>, StoreError> {
        let _st = self.read();
        let limit = filter.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        for kv in self.tree(T::RunOrder).iter().rev() {
            if out.len() >= limit {
                break;
            }
            let (k, v) = kv.map_err(backend)?;
            let id = run_id_from(&v, || format!("run_order/{}", keys::trailing_u64(&k).unwrap_or_default()))?;
            if let Some(rec) = self.run_record(&id)? {
                if filter.matches(&rec.info) {
                    out.push(rec.info);
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn list_tasks(&self, run_id: &RunId) -> Result<Vec<PendingTask>, StoreError> {
        let st = self.read();
        let mut out = Vec::new();
        for key in self.run_task_keys(run_id)? {
            if let Some(task) = self.trees.task(&key)? {
                let lease = st.leases.get(&key).map(|l| (l.owner.clone(), l.until));
                out.push(PendingTask { task, lease });
            }
        }
        out.sort_by(|a, b| a.task.key.cmp(&b.task.key));
        Ok(out)
    }

    pub(crate) fn list_attempts(&self, run_id: &RunId) -> Result<Vec<AttemptRecord>, StoreError> {
        let _st = self.read();
        let mut out = Vec::new();
        for kv in self.tree(T::Attempts).scan_prefix(keys::run_prefix(run_id)) {
            let (k, v) = kv.map_err(backend)?;
            let n = keys::trailing_u64(&k).unwrap_or_default();
            out.push(decode(|| format!("attempts/{run_id}/{n} (run {run_id})"), &v)?);
        }
        Ok(out)
    }

    /// Deletes runs closed before `before`, one transaction per run. Returns how many.
    pub(crate) fn delete_closed_before(&self, before: Timestamp) -> Result<usize, StoreError> {
        let mut n = 0;
        let end = before.as_millis().to_be_bytes();
        loop {
            // Small chunks, so that the lock is not held for long.
            let mut st = self.write();
            let chunk: Vec<IVec> = self
                .tree(T::Closed)
                .range(..end.as_slice())
                .keys()
                .take(64)
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            if chunk.is_empty() {
                return Ok(n);
            }
            for k in chunk {
                let mut b = Batch::new(&self.trees);
                b.del(T::Closed, k.to_vec());
                if let Some((_, run_id)) = keys::parse_closed_key(&k) {
                    if self.delete_run(&mut b, &run_id)? {
                        n += 1;
                    }
                }
                b.commit(&mut st.leases)?;
            }
        }
    }

    fn delete_run(&self, b: &mut Batch<'_>, run_id: &RunId) -> Result<bool, StoreError> {
        let Some(rec) = self.run_record(run_id)? else {
            return Ok(false);
        };
        let prefix = keys::run_prefix(run_id);
        for t in [T::History, T::Attempts] {
            for k in self.tree(t).scan_prefix(&prefix).keys() {
                b.del(t, k.map_err(backend)?.to_vec());
            }
        }
        for key in self.run_task_keys(run_id)? {
            b.delete(&key)?;
        }
        b.del(T::RunOrder, rec.seq_no.to_be_bytes().to_vec());
        if self.current_run_id(&rec.info.workflow_id)?.as_ref() == Some(run_id) {
            b.del(T::Workflows, rec.info.workflow_id.as_bytes().to_vec());
        }
        b.del(T::Runs, run_id.as_str().as_bytes().to_vec());
        Ok(true)
    }
}

fn parse_ready(k: &[u8]) -> Result<(Timestamp, TaskKey), StoreError> {
    keys::parse_ready_key(k).ok_or_else(|| StoreError::Corrupt {
        key: keys::describe("ready", k),
        reason: "malformed ready-index key".into(),
    })
}

fn run_id_from(v: &[u8], key: impl FnOnce() -> String) -> Result<RunId, StoreError> {
    match std::str::from_utf8(v) {
        Ok(s) => Ok(RunId(s.to_string())),
        Err(e) => Err(StoreError::Corrupt { key: key(), reason: format!("run id is not UTF-8: {e}") }),
    }
}
