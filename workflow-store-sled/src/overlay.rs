//! The writes of one group commit, with read-your-writes: every operation of a group sees the
//! writes of the operations before it, and an operation that fails leaves nothing behind.

use std::collections::{BTreeMap, HashSet};

use sled::IVec;
use workflow_core::store::{Task, TaskKey};
use workflow_core::StoreError;

use crate::codec::{backend, decode, encode};
use crate::keys;
use crate::state::{Change, TaskMeta};

/// A key's new value (`None`: deleted).
type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// What the operations of a group that succeeded have written so far.
#[derive(Default)]
pub(crate) struct Group {
    writes: Writes,
    pub(crate) changes: Vec<Change>,
    /// Tasks upserted in this group (a lease on them keeps the task on completion).
    upserted: HashSet<TaskKey>,
    /// Leases ended in this group (they can't be completed twice).
    ended: HashSet<TaskKey>,
}

impl Group {
    pub(crate) fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    pub(crate) fn into_batch(self) -> (sled::Batch, Vec<Change>) {
        let mut b = sled::Batch::default();
        for (k, v) in self.writes {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        (b, self.changes)
    }

    pub(crate) fn absorb(&mut self, op: Staged) {
        self.writes.extend(op.writes);
        self.changes.extend(op.changes);
        self.upserted.extend(op.upserted);
        self.ended.extend(op.ended);
    }
}

/// What a successful operation staged, detached from its group so the group can take it.
pub(crate) struct Staged {
    writes: Writes,
    changes: Vec<Change>,
    upserted: HashSet<TaskKey>,
    ended: HashSet<TaskKey>,
}

/// The writes of one operation, on top of its group.
pub(crate) struct Op<'a> {
    tree: &'a sled::Tree,
    group: &'a Group,
    writes: Writes,
    changes: Vec<Change>,
    upserted: HashSet<TaskKey>,
    ended: HashSet<TaskKey>,
}

impl<'a> Op<'a> {
    pub(crate) fn new(tree: &'a sled::Tree, group: &'a Group) -> Self {
        Op { tree, group, writes: Writes::new(), changes: Vec::new(), upserted: HashSet::new(), ended: HashSet::new() }
    }

    pub(crate) fn staged(self) -> Staged {
        Staged { writes: self.writes, changes: self.changes, upserted: self.upserted, ended: self.ended }
    }

    /// The tree, for scans (which see what is on disk, not this group's writes).
    pub(crate) fn tree(&self) -> &'a sled::Tree {
        self.tree
    }

    /// A key's value as this operation sees it.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        if let Some(v) = self.writes.get(key).or_else(|| self.group.writes.get(key)) {
            return Ok(v.as_ref().map(|v| IVec::from(v.as_slice())));
        }
        self.tree.get(key).map_err(backend)
    }

    pub(crate) fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    pub(crate) fn del(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    pub(crate) fn task(&self, key: &TaskKey) -> Result<Option<Task>, StoreError> {
        match self.get(&keys::task(key))? {
            Some(v) => decode(|| format!("tasks/{key}"), &v).map(Some),
            None => Ok(None),
        }
    }

    /// Whether the task exists as this operation sees it (without decoding it).
    pub(crate) fn has_task(&self, key: &TaskKey) -> Result<bool, StoreError> {
        Ok(self.get(&keys::task(key))?.is_some())
    }

    pub(crate) fn upsert_task(&mut self, task: &Task) -> Result<(), StoreError> {
        self.put(keys::task(&task.key), encode("task", task)?);
        self.upserted.insert(task.key.clone());
        self.changes.push(Change::Put(task.key.clone(), TaskMeta::of(task)));
        Ok(())
    }

    /// Rewrites a task's record without touching the queue (heartbeat details).
    pub(crate) fn rewrite_task(&mut self, task: &Task) -> Result<(), StoreError> {
        self.put(keys::task(&task.key), encode("task", task)?);
        Ok(())
    }

    pub(crate) fn delete_task(&mut self, key: &TaskKey) {
        self.del(keys::task(key));
        self.del(keys::lease(key));
        self.changes.push(Change::Delete(key.clone()));
    }

    /// Ends a lease but keeps the task.
    pub(crate) fn end_lease(&mut self, key: &TaskKey) {
        self.del(keys::lease(key));
        self.changes.push(Change::EndLease(key.clone()));
        self.ended.insert(key.clone());
    }

    pub(crate) fn change(&mut self, c: Change) {
        self.changes.push(c);
    }

    /// Whether this group already ended the lease on `key`.
    pub(crate) fn lease_ended(&self, key: &TaskKey) -> bool {
        self.ended.contains(key) || self.group.ended.contains(key)
    }

    /// Whether this group upserted `key` (so far).
    pub(crate) fn upserted_in_group(&self, key: &TaskKey) -> bool {
        self.upserted.contains(key) || self.group.upserted.contains(key)
    }

    /// Keys of tasks upserted in this group (a closing run deletes those that are its own).
    pub(crate) fn group_upserted(&self) -> impl Iterator<Item = &TaskKey> {
        self.upserted.iter().chain(self.group.upserted.iter())
    }
}
