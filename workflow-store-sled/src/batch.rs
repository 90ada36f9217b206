//! One atomic write: every change of a `create_run` or `append` is collected here, with
//! read-your-writes for tasks, and committed as one sled transaction over all trees.

use std::collections::{HashMap, HashSet};

use sled::transaction::TransactionResult;
use sled::Transactional;
use workflow_core::store::{Task, TaskKey};
use workflow_core::StoreError;

use crate::codec::{decode, encode, tx_backend};
use crate::keys;
use crate::leases::Leases;

/// The trees a transaction may touch, in [`Trees::all`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum T {
    /// run id -> `RunRecord`.
    Runs = 0,
    /// run prefix ++ event id -> `Event`.
    History,
    /// task key -> `Task`.
    Tasks,
    /// queue ++ visible_at ++ task key -> (). Every task is here, leased or not; leases are
    /// an in-memory overlay.
    Ready,
    /// run prefix ++ task key -> ().
    RunTasks,
    /// workflow id -> run id of its latest run.
    Workflows,
    /// creation number (BE) -> run id, for newest-first listing.
    RunOrder,
    /// close time ++ run id -> (), for retention.
    Closed,
    /// run prefix ++ position -> `AttemptRecord`.
    Attempts,
    /// task key -> `LeaseMarker`.
    Leases,
}

pub(crate) const TREE_NAMES: [&str; 10] =
    ["runs", "history", "tasks", "ready", "run_tasks", "workflows", "run_order", "closed", "attempts", "leases"];

pub(crate) struct Trees {
    pub(crate) all: Vec<sled::Tree>,
}

impl Trees {
    pub(crate) fn open(db: &sled::Db) -> sled::Result<Trees> {
        let all = TREE_NAMES.iter().map(|n| db.open_tree(n)).collect::<sled::Result<Vec<_>>>()?;
        Ok(Trees { all })
    }

    pub(crate) fn get(&self, t: T) -> &sled::Tree {
        &self.all[t as usize]
    }

    /// A task as stored.
    pub(crate) fn task(&self, key: &TaskKey) -> Result<Option<Task>, StoreError> {
        match self.get(T::Tasks).get(key.0.as_bytes()).map_err(crate::codec::backend)? {
            Some(v) => decode(|| format!("tasks/{key}"), &v).map(Some),
            None => Ok(None),
        }
    }
}

/// In-memory lease changes that take effect once the transaction commits.
enum LeaseChange {
    /// The task is gone: forget its lease and its lost mark.
    Drop(TaskKey),
    /// The lease ended (completed with a re-armed task, or released).
    Clear(TaskKey),
    /// The task was upserted: a lease on it now keeps the task on completion.
    Rearm(TaskKey),
}

pub(crate) struct Batch<'a> {
    trees: &'a Trees,
    ops: Vec<(T, Vec<u8>, Option<Vec<u8>>)>,
    tasks: HashMap<TaskKey, Option<Task>>,
    pub(crate) upserted: HashSet<TaskKey>,
    lease_changes: Vec<LeaseChange>,
}

impl<'a> Batch<'a> {
    pub(crate) fn new(trees: &'a Trees) -> Self {
        Batch { trees, ops: Vec::new(), tasks: HashMap::new(), upserted: HashSet::new(), lease_changes: Vec::new() }
    }

    pub(crate) fn put(&mut self, t: T, k: Vec<u8>, v: Vec<u8>) {
        self.ops.push((t, k, Some(v)));
    }

    pub(crate) fn del(&mut self, t: T, k: Vec<u8>) {
        self.ops.push((t, k, None));
    }

    /// The task as this batch leaves it.
    pub(crate) fn task(&self, key: &TaskKey) -> Result<Option<Task>, StoreError> {
        match self.tasks.get(key) {
            Some(t) => Ok(t.clone()),
            None => self.trees.task(key),
        }
    }

    /// Keys of tasks this batch created or replaced.
    pub(crate) fn touched_tasks(&self) -> impl Iterator<Item = &TaskKey> {
        self.tasks.keys()
    }

    pub(crate) fn upsert(&mut self, task: Task) -> Result<(), StoreError> {
        let key = task.key.clone();
        if let Some(old) = self.task(&key)? {
            self.del(T::Ready, keys::ready_key(old.queue(), old.visible_at, &key));
            if old.run_id != task.run_id {
                self.del(T::RunTasks, keys::run_task_key(&old.run_id, &key));
            }
        }
        self.put(T::Tasks, key.0.as_bytes().to_vec(), encode("task", &task)?);
        self.put(T::Ready, keys::ready_key(task.queue(), task.visible_at, &key), Vec::new());
        self.put(T::RunTasks, keys::run_task_key(&task.run_id, &key), Vec::new());
        self.upserted.insert(key.clone());
        self.lease_changes.push(LeaseChange::Rearm(key.clone()));
        self.tasks.insert(key, Some(task));
        Ok(())
    }

    pub(crate) fn delete(&mut self, key: &TaskKey) -> Result<(), StoreError> {
        if let Some(old) = self.task(key)? {
            self.del(T::Tasks, key.0.as_bytes().to_vec());
            self.del(T::Ready, keys::ready_key(old.queue(), old.visible_at, key));
            self.del(T::RunTasks, keys::run_task_key(&old.run_id, key));
            self.tasks.insert(key.clone(), None);
        }
        self.del(T::Leases, key.0.as_bytes().to_vec());
        self.lease_changes.push(LeaseChange::Drop(key.clone()));
        Ok(())
    }

    /// Ends a lease but keeps the task.
    pub(crate) fn clear_lease(&mut self, key: &TaskKey) {
        self.del(T::Leases, key.0.as_bytes().to_vec());
        self.lease_changes.push(LeaseChange::Clear(key.clone()));
    }

    /// Commits every change in one transaction, then applies the lease changes. On error
    /// nothing changed, on disk or in memory.
    pub(crate) fn commit(self, leases: &mut Leases) -> Result<(), StoreError> {
        let ops = self.ops;
        if !ops.is_empty() {
            let refs: Vec<&sled::Tree> = self.trees.all.iter().collect();
            let res: TransactionResult<(), ()> = refs.as_slice().transaction(|tx| {
                for (t, k, v) in &ops {
                    let tree = &tx[*t as usize];
                    match v {
                        Some(v) => {
                            tree.insert(k.as_slice(), v.as_slice())?;
                        }
                        None => {
                            tree.remove(k.as_slice())?;
                        }
                    }
                }
                Ok(())
            });
            res.map_err(tx_backend)?;
        }
        for c in self.lease_changes {
            match c {
                LeaseChange::Drop(k) => {
                    leases.remove(&k);
                    leases.lost.remove(&k);
                }
                LeaseChange::Clear(k) => {
                    leases.remove(&k);
                }
                LeaseChange::Rearm(k) => leases.mark_rearmed(&k),
            }
        }
        Ok(())
    }
}
