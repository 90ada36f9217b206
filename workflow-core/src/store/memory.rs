//! An in-memory store: fast, not durable. For tests, benchmarks and short-lived jobs.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::types::*;
use super::Store;
use crate::error::StoreError;
use crate::history::Event;
use crate::ids::{EventId, RunId};
use crate::payload::Payload;
use crate::time::Timestamp;

/// A [`Store`] in memory. Everything is lost when it is dropped.
///
/// ```
/// use workflow_core::store::MemoryStore;
/// let store = MemoryStore::new();
/// # let _ = store;
/// ```
pub struct MemoryStore {
    inner: Mutex<Inner>,
    notify: Arc<Notify>,
    closed: tokio::sync::broadcast::Sender<RunId>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore { inner: Mutex::default(), notify: Arc::default(), closed: tokio::sync::broadcast::channel(1024).0 }
    }
}

struct RunRow {
    info: RunInfo,
    events: Vec<Event>,
    seq_no: u64,
}

struct TaskRow {
    task: Task,
    lease: Option<Lease>,
    version: u64,
    leased_version: u64,
    lost: bool,
}

struct Lease {
    token: LeaseToken,
    until: Timestamp,
    owner: String,
    since: Timestamp,
}

#[derive(Default)]
struct Inner {
    runs: HashMap<RunId, RunRow>,
    by_workflow: HashMap<String, RunId>,
    tasks: HashMap<TaskKey, TaskRow>,
    /// Unleased tasks by visibility time.
    ready: BTreeSet<(TaskQueue, Timestamp, TaskKey)>,
    /// Leased tasks by lease expiry.
    leased: BTreeSet<(TaskQueue, Timestamp, TaskKey)>,
    run_tasks: HashMap<RunId, HashSet<TaskKey>>,
    attempts: HashMap<RunId, Vec<AttemptRecord>>,
    next_token: LeaseToken,
    next_seq_no: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    fn index_remove(&mut self, key: &TaskKey) {
        if let Some(row) = self.tasks.get(key) {
            let q = row.task.queue();
            match &row.lease {
                Some(l) => self.leased.remove(&(q, l.until, key.clone())),
                None => self.ready.remove(&(q, row.task.visible_at, key.clone())),
            };
        }
    }

    fn index_insert(&mut self, key: &TaskKey) {
        if let Some(row) = self.tasks.get(key) {
            let q = row.task.queue();
            match &row.lease {
                Some(l) => self.leased.insert((q, l.until, key.clone())),
                None => self.ready.insert((q, row.task.visible_at, key.clone())),
            };
        }
    }

    fn upsert(&mut self, task: Task) {
        let key = task.key.clone();
        self.index_remove(&key);
        self.run_tasks.entry(task.run_id.clone()).or_default().insert(key.clone());
        match self.tasks.get_mut(&key) {
            Some(row) => {
                row.task = task;
                row.version += 1;
            }
            None => {
                self.tasks
                    .insert(key.clone(), TaskRow { task, lease: None, version: 1, leased_version: 0, lost: false });
            }
        }
        self.index_insert(&key);
    }

    fn delete(&mut self, key: &TaskKey) {
        self.index_remove(key);
        if let Some(row) = self.tasks.remove(key) {
            if let Some(set) = self.run_tasks.get_mut(&row.task.run_id) {
                set.remove(key);
            }
        }
    }

    /// Leases the tasks `l` names that `written(key)` says this write upserted and that
    /// still exist (eager dispatch).
    fn lease_eager(&mut self, l: EagerLease, written: impl Fn(&TaskKey) -> bool) -> Vec<LeasedTask> {
        let mut leased = Vec::new();
        for key in l.keys {
            if !written(&key) || !self.tasks.contains_key(&key) {
                continue;
            }
            self.index_remove(&key);
            self.next_token += 1;
            let token = self.next_token;
            let row = self.tasks.get_mut(&key).expect("checked above");
            row.leased_version = row.version;
            row.lease =
                Some(Lease { token, until: l.now.add(row.task.lease_duration), owner: l.owner.clone(), since: l.now });
            leased.push(LeasedTask {
                task: row.task.clone(),
                token,
                previous_lease_lost: false,
                previous_holder: None,
            });
            self.index_insert(&key);
        }
        leased
    }

    fn check_lease(&self, key: &TaskKey, token: LeaseToken) -> Result<(), StoreError> {
        match self.tasks.get(key).and_then(|r| r.lease.as_ref()) {
            Some(l) if l.token == token => Ok(()),
            _ => Err(StoreError::LeaseLost { task: key.0.clone() }),
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_run(&self, run: NewRun) -> Result<Option<LeasedTask>, StoreError> {
        let mut g = self.lock();
        if let Some(existing) = g.by_workflow.get(&run.info.workflow_id) {
            if let Some(row) = g.runs.get(existing) {
                if !row.info.status.is_closed() {
                    return Err(StoreError::AlreadyExists {
                        workflow_id: run.info.workflow_id.clone(),
                        run_id: row.info.run_id.clone(),
                    });
                }
            }
        }
        if g.runs.contains_key(&run.info.run_id) {
            return Err(StoreError::AlreadyExists {
                workflow_id: run.info.workflow_id.clone(),
                run_id: run.info.run_id.clone(),
            });
        }
        let run_id = run.info.run_id.clone();
        let mut info = run.info;
        info.last_event_id = 1;
        g.by_workflow.insert(info.workflow_id.clone(), run_id.clone());
        let seq_no = g.next_seq_no;
        g.next_seq_no += 1;
        g.runs.insert(
            run_id.clone(),
            RunRow { info, events: vec![Event { id: 1, time: run.time, kind: run.started }], seq_no },
        );
        let task = Task::workflow(&run_id, run.time);
        let key = task.key.clone();
        g.upsert(task);
        let leased = run.lease.map(|l| g.lease_eager(l, |k| *k == key)).unwrap_or_default();
        drop(g);
        self.notify.notify_waiters();
        Ok(leased.into_iter().next())
    }

    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        let mut g = self.lock();
        let g = &mut *g;
        let row =
            g.runs.get(&req.run_id).ok_or_else(|| StoreError::NotFound { what: format!("run {}", req.run_id) })?;
        if row.info.status.is_closed() && !req.events.is_empty() {
            return Err(StoreError::RunClosed { run_id: req.run_id.clone() });
        }
        let last = row.info.last_event_id;
        if let Some(expected) = req.expected_last_event_id {
            if expected != last {
                return Err(StoreError::Conflict { run_id: req.run_id.clone(), expected, actual: last });
            }
        }
        if let Some(c) = &req.complete {
            g.check_lease(&c.key, c.token)?;
        }
        let last_time = row.events.last().map_or(Timestamp(0), |e| e.time);
        let time = req.time.max(last_time);

        let row = g.runs.get_mut(&req.run_id).expect("checked above");
        let mut closed = None;
        for (i, kind) in req.events.into_iter().enumerate() {
            if let Some(status) = RunStatus::from_terminal(&kind) {
                closed = Some(status);
            }
            row.info.apply_event(&kind, time);
            row.events.push(Event { id: last + 1 + i as EventId, time, kind });
        }
        row.info.last_event_id = row.events.len() as EventId;
        let new_last = row.info.last_event_id;
        if let Some(f) = req.task_failure {
            row.info.task_failure = f;
        }
        let mut upserted = HashSet::new();
        for op in req.task_ops {
            match op {
                TaskOp::Upsert(t) => {
                    upserted.insert(t.key.clone());
                    g.upsert(t)
                }
                TaskOp::Delete(k) => g.delete(&k),
            }
        }
        if let Some(c) = req.complete {
            // A task deleted by this very append has nothing left to complete.
            let done = match g.tasks.get(&c.key) {
                Some(row) => !c.release && row.version == row.leased_version,
                None => false,
            };
            if done {
                g.delete(&c.key);
            } else {
                g.index_remove(&c.key);
                if let Some(row) = g.tasks.get_mut(&c.key) {
                    row.lease = None;
                }
                g.index_insert(&c.key);
            }
        }
        if closed.is_some() {
            for key in g.run_tasks.remove(&req.run_id).unwrap_or_default() {
                g.index_remove(&key);
                g.tasks.remove(&key);
            }
        }
        if let Some(a) = req.attempt {
            g.attempts.entry(req.run_id.clone()).or_default().push(a);
        }
        let leased = match req.lease {
            Some(l) => g.lease_eager(l, |k| upserted.contains(k)),
            None => Vec::new(),
        };
        self.notify.notify_waiters();
        if closed.is_some() {
            // No receiver is fine: nobody waits.
            let _ = self.closed.send(req.run_id.clone());
        }
        Ok(AppendOutcome { last_event_id: new_last, time, leased })
    }

    async fn lease_tasks(
        &self,
        queue: TaskQueue,
        now: Timestamp,
        max: usize,
        owner: &str,
    ) -> Result<Vec<LeasedTask>, StoreError> {
        let mut g = self.lock();
        let g = &mut *g;
        let mut picked: Vec<(TaskKey, bool)> = Vec::new();
        for (q, until, key) in g.leased.range((queue, Timestamp(0), TaskKey(String::new()))..) {
            if *q != queue || *until > now || picked.len() >= max {
                break;
            }
            picked.push((key.clone(), true));
        }
        for (q, at, key) in g.ready.range((queue, Timestamp(0), TaskKey(String::new()))..) {
            if *q != queue || *at > now || picked.len() >= max {
                break;
            }
            picked.push((key.clone(), false));
        }
        let mut out = Vec::with_capacity(picked.len());
        for (key, expired) in picked {
            g.index_remove(&key);
            g.next_token += 1;
            let token = g.next_token;
            let row = g.tasks.get_mut(&key).expect("indexed task exists");
            let lost = row.lost || expired;
            row.lost = false;
            let previous_holder = match (&row.lease, expired) {
                (Some(l), true) => Some(LeaseHolder { owner: l.owner.clone(), since: l.since }),
                _ => None,
            };
            row.leased_version = row.version;
            row.lease =
                Some(Lease { token, until: now.add(row.task.lease_duration), owner: owner.to_string(), since: now });
            out.push(LeasedTask { task: row.task.clone(), token, previous_lease_lost: lost, previous_holder });
            g.index_insert(&key);
        }
        Ok(out)
    }

    async fn next_due(&self, queue: TaskQueue) -> Result<Option<Timestamp>, StoreError> {
        let g = self.lock();
        let first = |set: &BTreeSet<(TaskQueue, Timestamp, TaskKey)>| {
            set.range((queue, Timestamp(0), TaskKey(String::new()))..)
                .next()
                .filter(|(q, _, _)| *q == queue)
                .map(|(_, t, _)| *t)
        };
        Ok(match (first(&g.ready), first(&g.leased)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    async fn heartbeat(
        &self,
        key: &TaskKey,
        token: LeaseToken,
        details: Option<Payload>,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        let mut g = self.lock();
        g.check_lease(key, token)?;
        g.index_remove(key);
        let row = g.tasks.get_mut(key).expect("lease checked");
        if let Some(l) = row.lease.as_mut() {
            l.until = until;
        }
        if let (TaskKind::Activity(a), Some(d)) = (&mut row.task.kind, details) {
            a.heartbeat = Some(d);
            a.heartbeat_at = Some(now);
        }
        g.index_insert(key);
        Ok(())
    }

    async fn read_history(&self, run_id: &RunId, after: EventId) -> Result<Vec<Event>, StoreError> {
        let g = self.lock();
        let row = g.runs.get(run_id).ok_or_else(|| StoreError::NotFound { what: format!("run {run_id}") })?;
        Ok(row.events.iter().skip(after as usize).cloned().collect())
    }

    async fn get_run(&self, run_id: &RunId) -> Result<Option<RunInfo>, StoreError> {
        Ok(self.lock().runs.get(run_id).map(|r| r.info.clone()))
    }

    async fn current_run(&self, workflow_id: &str) -> Result<Option<RunInfo>, StoreError> {
        let g = self.lock();
        Ok(g.by_workflow.get(workflow_id).and_then(|r| g.runs.get(r)).map(|r| r.info.clone()))
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunInfo>, StoreError> {
        let g = self.lock();
        let mut rows: Vec<&RunRow> = g.runs.values().filter(|r| filter.matches(&r.info)).collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.seq_no));
        Ok(rows.into_iter().take(filter.limit.unwrap_or(usize::MAX)).map(|r| r.info.clone()).collect())
    }

    async fn list_tasks(&self, run_id: &RunId) -> Result<Vec<PendingTask>, StoreError> {
        let g = self.lock();
        let mut out: Vec<PendingTask> = g
            .run_tasks
            .get(run_id)
            .into_iter()
            .flatten()
            .filter_map(|k| g.tasks.get(k))
            .map(|r| PendingTask { task: r.task.clone(), lease: r.lease.as_ref().map(|l| (l.owner.clone(), l.until)) })
            .collect();
        out.sort_by(|a, b| a.task.key.cmp(&b.task.key));
        Ok(out)
    }

    async fn list_attempts(&self, run_id: &RunId) -> Result<Vec<AttemptRecord>, StoreError> {
        Ok(self.lock().attempts.get(run_id).cloned().unwrap_or_default())
    }

    async fn delete_closed_before(&self, before: Timestamp) -> Result<usize, StoreError> {
        let mut g = self.lock();
        let doomed: Vec<RunId> = g
            .runs
            .values()
            .filter(|r| r.info.close_time.is_some_and(|t| t < before))
            .map(|r| r.info.run_id.clone())
            .collect();
        for id in &doomed {
            if let Some(row) = g.runs.remove(id) {
                if g.by_workflow.get(&row.info.workflow_id) == Some(id) {
                    g.by_workflow.remove(&row.info.workflow_id);
                }
            }
            g.attempts.remove(id);
            for key in g.run_tasks.remove(id).unwrap_or_default() {
                g.index_remove(&key);
                g.tasks.remove(&key);
            }
        }
        Ok(doomed.len())
    }

    fn notifier(&self) -> Option<Arc<Notify>> {
        Some(self.notify.clone())
    }

    fn closed_runs(&self) -> Option<tokio::sync::broadcast::Receiver<RunId>> {
        Some(self.closed.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        crate::store::conformance::run_all(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> }).await;
    }
}
