//! The in-memory side of the store: the ready queue, the leases and each run's tasks.
//!
//! A sled store is opened by one process, so the queue need not live on disk: it is rebuilt
//! from the persisted tasks when the store opens, and it holds only durable tasks (the
//! committer publishes a write's task changes after its flush). Leases are void after a
//! crash; what survives is a lease marker per leased task, so that the next process knows
//! which tasks were in flight.

use std::collections::{BTreeSet, HashMap};

use workflow_core::store::{LeaseHolder, LeaseToken, Task, TaskKey, TaskQueue};
use workflow_core::{RunId, StoreError, Timestamp};

/// What the queue needs to know of a task (the task itself stays on disk).
#[derive(Clone, Debug)]
pub(crate) struct TaskMeta {
    pub(crate) queue: TaskQueue,
    pub(crate) visible_at: Timestamp,
    pub(crate) run_id: RunId,
}

impl TaskMeta {
    pub(crate) fn of(t: &Task) -> TaskMeta {
        TaskMeta { queue: t.queue(), visible_at: t.visible_at, run_id: t.run_id.clone() }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Lease {
    pub(crate) token: LeaseToken,
    pub(crate) until: Timestamp,
    pub(crate) owner: String,
    /// When the lease was taken.
    pub(crate) since: Timestamp,
    /// The task was upserted during this lease: completing the lease keeps the task.
    pub(crate) rearmed: bool,
}

/// A change to the in-memory state that takes effect once its write is durable.
#[derive(Debug)]
pub(crate) enum Change {
    /// The task was created or replaced.
    Put(TaskKey, TaskMeta),
    /// The task is gone.
    Delete(TaskKey),
    /// The lease ended; the task (if it still exists) is ready again.
    EndLease(TaskKey),
    /// The task was leased in the write that created it.
    Lease(TaskKey, Lease),
    /// A heartbeat extended the lease.
    Extend(TaskKey, Timestamp),
}

#[derive(Default)]
pub(crate) struct State {
    tasks: HashMap<TaskKey, TaskMeta>,
    /// Durable, unleased tasks by visibility time.
    ready: BTreeSet<(TaskQueue, Timestamp, TaskKey)>,
    leases: HashMap<TaskKey, Lease>,
    /// Leases by expiry.
    expiry: BTreeSet<(TaskQueue, Timestamp, TaskKey)>,
    run_tasks: HashMap<RunId, BTreeSet<TaskKey>>,
    /// Tasks whose previous lease ended without completion (its process died), with that
    /// lease's holder when its marker said.
    pub(crate) lost: HashMap<TaskKey, Option<LeaseHolder>>,
    next_token: LeaseToken,
}

fn floor(q: TaskQueue) -> (TaskQueue, Timestamp, TaskKey) {
    (q, Timestamp(0), TaskKey(String::new()))
}

impl State {
    /// Adds a task found on disk when the store opens.
    pub(crate) fn load(&mut self, key: TaskKey, meta: TaskMeta) {
        self.put(key, meta);
    }

    pub(crate) fn task_count(&self) -> usize {
        self.tasks.len()
    }

    pub(crate) fn has_task(&self, key: &TaskKey) -> bool {
        self.tasks.contains_key(key)
    }

    pub(crate) fn lease(&self, key: &TaskKey) -> Option<&Lease> {
        self.leases.get(key)
    }

    pub(crate) fn check(&self, key: &TaskKey, token: LeaseToken) -> Result<&Lease, StoreError> {
        match self.leases.get(key) {
            Some(l) if l.token == token => Ok(l),
            _ => Err(StoreError::LeaseLost { task: key.0.clone() }),
        }
    }

    pub(crate) fn next_token(&mut self) -> LeaseToken {
        self.next_token += 1;
        self.next_token
    }

    pub(crate) fn run_tasks(&self, run_id: &RunId) -> Vec<TaskKey> {
        self.run_tasks.get(run_id).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }

    /// Up to `max` tasks of `queue` to lease at `now`: expired leases first (their holder is
    /// gone or hung), then ready tasks, earliest first. Each comes with whether its previous
    /// lease was lost, and its holder when known.
    pub(crate) fn due(
        &self,
        queue: TaskQueue,
        now: Timestamp,
        max: usize,
    ) -> Vec<(TaskKey, bool, Option<LeaseHolder>)> {
        let mut out: Vec<(TaskKey, bool, Option<LeaseHolder>)> = self
            .expiry
            .range(floor(queue)..)
            .take_while(|(q, until, _)| *q == queue && *until <= now)
            .take(max)
            .map(|(_, _, k)| {
                let holder = self.leases.get(k).map(|l| LeaseHolder { owner: l.owner.clone(), since: l.since });
                (k.clone(), true, holder)
            })
            .collect();
        let room = max - out.len();
        out.extend(self.ready.range(floor(queue)..).take_while(|(q, at, _)| *q == queue && *at <= now).take(room).map(
            |(_, _, k)| match self.lost.get(k) {
                Some(holder) => (k.clone(), true, holder.clone()),
                None => (k.clone(), false, None),
            },
        ));
        out
    }

    /// Leases `key` (a due task) to `owner` until `until`.
    pub(crate) fn take(&mut self, key: &TaskKey, owner: &str, now: Timestamp, until: Timestamp) -> Option<LeaseToken> {
        let meta = self.tasks.get(key)?.clone();
        let token = self.next_token();
        self.lost.remove(key);
        self.set_lease(key, &meta, Lease { token, until, owner: owner.to_string(), since: now, rearmed: false });
        Some(token)
    }

    /// When the next task of `queue` becomes visible or its lease expires.
    pub(crate) fn next_due(&self, queue: TaskQueue) -> Option<Timestamp> {
        let first = |s: &BTreeSet<(TaskQueue, Timestamp, TaskKey)>| {
            s.range(floor(queue)..).next().filter(|(q, _, _)| *q == queue).map(|(_, t, _)| *t)
        };
        match (first(&self.ready), first(&self.expiry)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies the changes of a durable write, in order.
    pub(crate) fn apply(&mut self, changes: Vec<Change>) {
        for c in changes {
            match c {
                Change::Put(key, meta) => self.put(key, meta),
                Change::Delete(key) => self.delete(&key),
                Change::EndLease(key) => self.end_lease(&key),
                Change::Lease(key, lease) => {
                    if let Some(meta) = self.tasks.get(&key).cloned() {
                        self.set_lease(&key, &meta, lease);
                    }
                }
                Change::Extend(key, until) => {
                    if let Some(l) = self.leases.get_mut(&key) {
                        let q = self.tasks.get(&key).map_or(TaskQueue::Activity, |m| m.queue);
                        self.expiry.remove(&(q, l.until, key.clone()));
                        l.until = until;
                        self.expiry.insert((q, until, key));
                    }
                }
            }
        }
    }

    fn put(&mut self, key: TaskKey, meta: TaskMeta) {
        if let Some(old) = self.tasks.get(&key) {
            self.ready.remove(&(old.queue, old.visible_at, key.clone()));
            if old.run_id != meta.run_id {
                if let Some(s) = self.run_tasks.get_mut(&old.run_id) {
                    s.remove(&key);
                }
            }
        }
        self.run_tasks.entry(meta.run_id.clone()).or_default().insert(key.clone());
        match self.leases.get_mut(&key) {
            // Re-armed while leased: it stays leased; completing the lease keeps it.
            Some(l) => l.rearmed = true,
            None => {
                self.ready.insert((meta.queue, meta.visible_at, key.clone()));
            }
        }
        self.tasks.insert(key, meta);
    }

    fn delete(&mut self, key: &TaskKey) {
        self.drop_lease(key);
        self.lost.remove(key);
        if let Some(old) = self.tasks.remove(key) {
            self.ready.remove(&(old.queue, old.visible_at, key.clone()));
            if let Some(s) = self.run_tasks.get_mut(&old.run_id) {
                s.remove(key);
                if s.is_empty() {
                    self.run_tasks.remove(&old.run_id);
                }
            }
        }
    }

    fn end_lease(&mut self, key: &TaskKey) {
        if self.drop_lease(key).is_some() {
            if let Some(meta) = self.tasks.get(key) {
                self.ready.insert((meta.queue, meta.visible_at, key.clone()));
            }
        }
    }

    fn set_lease(&mut self, key: &TaskKey, meta: &TaskMeta, lease: Lease) {
        self.drop_lease(key);
        self.ready.remove(&(meta.queue, meta.visible_at, key.clone()));
        self.expiry.insert((meta.queue, lease.until, key.clone()));
        self.leases.insert(key.clone(), lease);
    }

    fn drop_lease(&mut self, key: &TaskKey) -> Option<Lease> {
        let l = self.leases.remove(key)?;
        let q = self.tasks.get(key).map_or(TaskQueue::Activity, |m| m.queue);
        self.expiry.remove(&(q, l.until, key.clone()));
        Some(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(at: u64) -> TaskMeta {
        TaskMeta { queue: TaskQueue::Workflow, visible_at: Timestamp(at), run_id: RunId("r".into()) }
    }

    #[test]
    fn leased_tasks_leave_the_ready_queue_and_come_back_when_the_lease_ends() {
        let mut s = State::default();
        let k = TaskKey("wf/r".into());
        s.load(k.clone(), meta(5));
        assert_eq!(s.due(TaskQueue::Workflow, Timestamp(4), 10), vec![]);
        assert_eq!(s.due(TaskQueue::Workflow, Timestamp(5), 10), vec![(k.clone(), false, None)]);
        let token = s.take(&k, "w", Timestamp(5), Timestamp(100)).unwrap();
        assert!(s.due(TaskQueue::Workflow, Timestamp(50), 10).is_empty(), "a leased task is not due");
        let holder = LeaseHolder { owner: "w".into(), since: Timestamp(5) };
        assert_eq!(
            s.due(TaskQueue::Workflow, Timestamp(100), 10),
            vec![(k.clone(), true, Some(holder))],
            "an expired lease is, with who held it since when"
        );
        assert!(s.check(&k, token).is_ok());
        s.apply(vec![Change::EndLease(k.clone())]);
        assert!(s.check(&k, token).is_err());
        assert_eq!(s.due(TaskQueue::Workflow, Timestamp(5), 10), vec![(k.clone(), false, None)]);
        s.apply(vec![Change::Delete(k.clone())]);
        assert!(s.due(TaskQueue::Workflow, Timestamp(500), 10).is_empty());
        assert!(s.run_tasks(&RunId("r".into())).is_empty());
    }

    #[test]
    fn a_task_rearmed_during_its_lease_stays_leased_and_marked() {
        let mut s = State::default();
        let k = TaskKey("act/r/0".into());
        s.load(k.clone(), meta(0));
        s.take(&k, "w", Timestamp(0), Timestamp(10)).unwrap();
        s.apply(vec![Change::Put(k.clone(), meta(7))]);
        assert!(s.lease(&k).unwrap().rearmed);
        assert!(s.due(TaskQueue::Workflow, Timestamp(8), 10).is_empty());
        s.apply(vec![Change::EndLease(k.clone())]);
        assert_eq!(s.due(TaskQueue::Workflow, Timestamp(8), 10), vec![(k, false, None)]);
    }
}
