//! Leases live in memory: only this process can complete a lease it handed out, and after a
//! crash every lease of the dead process is void. What survives a crash is a lease *marker*
//! (the `leases` tree) so that the next process knows which tasks were in flight.

use std::collections::{BTreeSet, HashMap, HashSet};

use workflow_core::store::{LeaseToken, TaskKey, TaskQueue};
use workflow_core::{StoreError, Timestamp};

pub(crate) struct Lease {
    pub(crate) token: LeaseToken,
    pub(crate) until: Timestamp,
    pub(crate) owner: String,
    pub(crate) queue: TaskQueue,
    /// The task was upserted during this lease: completing the lease keeps the task.
    pub(crate) rearmed: bool,
}

#[derive(Default)]
pub(crate) struct Leases {
    by_key: HashMap<TaskKey, Lease>,
    by_expiry: BTreeSet<(TaskQueue, Timestamp, TaskKey)>,
    /// Tasks whose previous lease ended without completion (its process died).
    pub(crate) lost: HashSet<TaskKey>,
    next_token: LeaseToken,
}

impl Leases {
    pub(crate) fn get(&self, key: &TaskKey) -> Option<&Lease> {
        self.by_key.get(key)
    }

    pub(crate) fn is_leased(&self, key: &TaskKey) -> bool {
        self.by_key.contains_key(key)
    }

    pub(crate) fn check(&self, key: &TaskKey, token: LeaseToken) -> Result<&Lease, StoreError> {
        match self.by_key.get(key) {
            Some(l) if l.token == token => Ok(l),
            _ => Err(StoreError::LeaseLost { task: key.0.clone() }),
        }
    }

    pub(crate) fn next_token(&mut self) -> LeaseToken {
        self.next_token += 1;
        self.next_token
    }

    pub(crate) fn insert(&mut self, key: TaskKey, lease: Lease) {
        self.remove(&key);
        self.by_expiry.insert((lease.queue, lease.until, key.clone()));
        self.by_key.insert(key, lease);
    }

    pub(crate) fn remove(&mut self, key: &TaskKey) -> Option<Lease> {
        let l = self.by_key.remove(key)?;
        self.by_expiry.remove(&(l.queue, l.until, key.clone()));
        Some(l)
    }

    pub(crate) fn extend(&mut self, key: &TaskKey, until: Timestamp) {
        if let Some(l) = self.by_key.get_mut(key) {
            self.by_expiry.remove(&(l.queue, l.until, key.clone()));
            l.until = until;
            self.by_expiry.insert((l.queue, until, key.clone()));
        }
    }

    pub(crate) fn mark_rearmed(&mut self, key: &TaskKey) {
        if let Some(l) = self.by_key.get_mut(key) {
            l.rearmed = true;
        }
    }

    /// Up to `max` leases of `queue` expired at `now`, earliest first.
    pub(crate) fn expired(&self, queue: TaskQueue, now: Timestamp, max: usize) -> Vec<TaskKey> {
        self.by_expiry
            .range((queue, Timestamp(0), TaskKey(String::new()))..)
            .take_while(|(q, until, _)| *q == queue && *until <= now)
            .take(max)
            .map(|(_, _, k)| k.clone())
            .collect()
    }

    /// The earliest lease expiry in `queue`.
    pub(crate) fn first_expiry(&self, queue: TaskQueue) -> Option<Timestamp> {
        self.by_expiry
            .range((queue, Timestamp(0), TaskKey(String::new()))..)
            .next()
            .filter(|(q, _, _)| *q == queue)
            .map(|(_, t, _)| *t)
    }
}
