//! The store's reads: sled's tree for records, the in-memory state for the queue and leases.
//! Synchronous; the async layer holds each result back until it is durable
//! ([`Shared::visible`]).

use workflow_core::history::Event;
use workflow_core::store::{AttemptRecord, LeasedTask, PendingTask, RunFilter, RunInfo, Task, TaskKey, TaskQueue};
use workflow_core::{EventId, RunId, StoreError, Timestamp};

use crate::codec::{backend, decode, encode, LeaseMarker, RunRecord};
use crate::commit::Shared;
use crate::keys;
use crate::ops::run_id_from;

fn not_found(run_id: &RunId) -> StoreError {
    StoreError::NotFound { what: format!("run {run_id}") }
}

impl Shared {
    pub(crate) fn run_record(&self, run_id: &RunId) -> Result<Option<RunRecord>, StoreError> {
        match self.tree.get(keys::run(run_id)).map_err(backend)? {
            Some(v) => decode(|| format!("runs/{run_id} (run {run_id})"), &v).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn task(&self, key: &TaskKey) -> Result<Option<Task>, StoreError> {
        match self.tree.get(keys::task(key)).map_err(backend)? {
            Some(v) => decode(|| format!("tasks/{key}"), &v).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn read_history(&self, run_id: &RunId, after: EventId) -> Result<Vec<Event>, StoreError> {
        if !self.tree.contains_key(keys::run(run_id)).map_err(backend)? {
            return Err(not_found(run_id));
        }
        let start = keys::event(run_id, after.saturating_add(1));
        let end = keys::event(run_id, u64::MAX);
        let mut out = Vec::new();
        for kv in self.tree.range(start..=end) {
            let (k, v) = kv.map_err(backend)?;
            let id = keys::trailing_u64(&k).unwrap_or_default();
            out.push(decode(|| format!("history/{run_id}/{id} (run {run_id})"), &v)?);
        }
        Ok(out)
    }

    pub(crate) fn get_run(&self, run_id: &RunId) -> Result<Option<RunInfo>, StoreError> {
        Ok(self.run_record(run_id)?.map(|r| r.info))
    }

    pub(crate) fn current_run(&self, workflow_id: &str) -> Result<Option<RunInfo>, StoreError> {
        match self.tree.get(keys::workflow(workflow_id)).map_err(backend)? {
            Some(v) => {
                let id = run_id_from(&v, || format!("workflows/{workflow_id}"))?;
                self.get_run(&id)
            }
            None => Ok(None),
        }
    }

    pub(crate) fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunInfo>, StoreError> {
        let limit = filter.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix([keys::ORDER]).rev() {
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
        let leases: Vec<(TaskKey, Option<(String, Timestamp)>)> = {
            let st = self.state();
            st.run_tasks(run_id)
                .into_iter()
                .map(|k| {
                    let l = st.lease(&k).map(|l| (l.owner.clone(), l.until));
                    (k, l)
                })
                .collect()
        };
        let mut out = Vec::new();
        for (key, lease) in leases {
            if let Some(task) = self.task(&key)? {
                out.push(PendingTask { task, lease });
            }
        }
        out.sort_by(|a, b| a.task.key.cmp(&b.task.key));
        Ok(out)
    }

    pub(crate) fn list_attempts(&self, run_id: &RunId) -> Result<Vec<AttemptRecord>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(keys::run_prefix(keys::ATTEMPT, run_id)) {
            let (k, v) = kv.map_err(backend)?;
            let n = keys::trailing_u64(&k).unwrap_or_default();
            out.push(decode(|| format!("attempts/{run_id}/{n} (run {run_id})"), &v)?);
        }
        Ok(out)
    }

    /// Leases due tasks from the in-memory queue. The lease marker is written without a
    /// flush (it reaches the disk with the next write).
    pub(crate) fn lease_tasks(
        &self,
        queue: TaskQueue,
        now: Timestamp,
        max: usize,
        owner: &str,
    ) -> Result<Vec<LeasedTask>, StoreError> {
        let mut st = self.state();
        let mut out = Vec::new();
        for (key, lost, previous_holder) in st.due(queue, now, max) {
            let Some(task) = self.task(&key)? else {
                // Deleted by a write that is applied but not yet durable: the queue learns of
                // it when that write is published.
                continue;
            };
            let marker = LeaseMarker { instance: self.instance.clone(), owner: owner.to_string(), since: Some(now) };
            self.tree.insert(keys::lease(&key), encode("lease marker", &marker)?).map_err(backend)?;
            if let Some(token) = st.take(&key, owner, now, now.add(task.lease_duration)) {
                out.push(LeasedTask { task, token, previous_lease_lost: lost, previous_holder });
            }
        }
        Ok(out)
    }
}
