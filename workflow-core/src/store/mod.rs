//! The storage contract: everything the engine needs from a database, and nothing more.
//!
//! A [`Store`] keeps runs, their histories, tasks (with visibility times and leases) and the
//! attempt log. It is used as `Arc<dyn Store>`. Implementations: [`MemoryStore`] here,
//! `SledStore` in `workflow-store-sled`. Every implementation runs the conformance suite
//! (`conformance` feature).
//!
//! Durability: when [`Store::create_run`] or [`Store::append`] returns `Ok`, the change is
//! durable (for a durable store) and atomic: a history append and the tasks it causes are one
//! write. Leases and heartbeats need not be durable: after a crash, leased tasks become
//! visible again.

mod memory;
mod types;

#[cfg(any(test, feature = "conformance"))]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod model;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;

pub use memory::MemoryStore;
pub use types::{
    ActivityTask, AppendOutcome, AppendRequest, AsyncOutcome, AsyncResult, AttemptOutcome, AttemptRecord, Completion,
    EagerLease, ExternalAction, ExternalTask, LeaseHolder, LeaseToken, LeasedTask, NewRun, PendingTask, RunFilter,
    RunInfo, RunStatus, StartChildTask, StartRunTask, Task, TaskKey, TaskKind, TaskOp, TaskQueue, MAX_LOST_IN_A_ROW,
    WORKFLOW_TASK_LEASE,
};

use crate::error::StoreError;
use crate::history::Event;
use crate::ids::{EventId, RunId};
use crate::payload::Payload;
use crate::time::Timestamp;

/// The storage contract. Object safe; used as `Arc<dyn Store>`.
///
/// ```
/// use std::sync::Arc;
/// use workflow_core::store::{MemoryStore, Store};
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// # let _ = store;
/// ```
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a run: its `WorkflowStarted` event and its first workflow task, atomically.
    /// Fails with [`StoreError::AlreadyExists`] when the workflow id has an open run.
    ///
    /// With [`NewRun::lease`] naming the run's workflow task, that task is leased to its
    /// owner in the same write and returned (eager workflow start); otherwise `None`. After a
    /// crash such a task is visible again and its next lease reports `previous_lease_lost`.
    /// Creations share writes with appends (group commit) under the same rules.
    async fn create_run(&self, run: NewRun) -> Result<Option<LeasedTask>, StoreError>;

    /// Appends events to a run together with the task changes they cause, atomically.
    ///
    /// - With `expected_last_event_id`, fails with [`StoreError::Conflict`] when the history
    ///   has moved on (optimistic concurrency for workflow tasks).
    /// - With `complete`, fails with [`StoreError::LeaseLost`] when the lease is not held; a
    ///   completed task is deleted unless it was re-armed (upserted) while leased, in which
    ///   case only its lease is cleared.
    /// - A terminal event closes the run (status, close time, result) and deletes its tasks.
    /// - Events on a closed run fail with [`StoreError::RunClosed`].
    /// - A task op may create a task of *another* run (a child's end delivered to its parent,
    ///   a parent-close policy applied to a child): the task belongs to `task.run_id`.
    /// - With `lease`, the tasks it names that this append upserts are leased to its owner in
    ///   the same write (eager dispatch) and returned in [`AppendOutcome::leased`]. After a
    ///   crash such a task is visible again and its next lease reports `previous_lease_lost`.
    /// - Nothing an append writes is visible to any reader (`read_history`, `lease_tasks`,
    ///   `get_run`, ...) before the append is durable, and `Ok` is returned only then.
    ///   Concurrent appends may share one write and one flush (group commit); one that fails
    ///   its own checks fails alone.
    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError>;

    /// Leases up to `max` tasks of `queue` that are visible at `now` (or whose lease expired),
    /// for `owner`. Each lease lasts the task's `lease_duration`.
    async fn lease_tasks(
        &self,
        queue: TaskQueue,
        now: Timestamp,
        max: usize,
        owner: &str,
    ) -> Result<Vec<LeasedTask>, StoreError>;

    /// When the next task of `queue` becomes visible (or its lease expires).
    async fn next_due(&self, queue: TaskQueue) -> Result<Option<Timestamp>, StoreError>;

    /// Records heartbeat details (made at `now`) on a leased activity task and extends its
    /// lease to `until`.
    /// [`StoreError::LeaseLost`] tells the attempt it was cancelled or taken over.
    async fn heartbeat(
        &self,
        key: &TaskKey,
        token: LeaseToken,
        details: Option<Payload>,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<(), StoreError>;

    /// The events of a run with ids above `after`.
    async fn read_history(&self, run_id: &RunId, after: EventId) -> Result<Vec<Event>, StoreError>;

    /// A run by run id.
    async fn get_run(&self, run_id: &RunId) -> Result<Option<RunInfo>, StoreError>;

    /// The latest run of a workflow id.
    async fn current_run(&self, workflow_id: &str) -> Result<Option<RunInfo>, StoreError>;

    /// Runs matching a filter, newest first.
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunInfo>, StoreError>;

    /// The tasks a run has (pending activities and timers, with their leases).
    async fn list_tasks(&self, run_id: &RunId) -> Result<Vec<PendingTask>, StoreError>;

    /// The attempt log of a run.
    async fn list_attempts(&self, run_id: &RunId) -> Result<Vec<AttemptRecord>, StoreError>;

    /// Deletes runs closed before `before` (history, attempts, info). Returns how many.
    async fn delete_closed_before(&self, before: Timestamp) -> Result<usize, StoreError>;

    /// Ends every lease `owner` holds, as if it had expired at `now`: the next
    /// [`Store::lease_tasks`] takes those tasks at once (reporting `previous_lease_lost`), after
    /// which the old tokens fail with [`StoreError::LeaseLost`]. A worker calls
    /// this as it starts, for the leases a previous process with the same identity held
    /// (worker identities are unique among live workers). Returns how many leases ended.
    ///
    /// The default does nothing: for stores whose leases do not outlive the process that
    /// took them (in memory, or dropped when the store is opened again, as sled's are).
    async fn release_leases_of(&self, owner: &str, now: Timestamp) -> Result<usize, StoreError> {
        let _ = (owner, now);
        Ok(0)
    }

    /// Woken whenever tasks or runs change, so workers need not poll. `None`: poll.
    fn notifier(&self) -> Option<Arc<Notify>> {
        None
    }

    /// Announces each run as it closes (once the close is durable), so that callers waiting
    /// for results need not re-read runs on every change. `None`: use [`Store::notifier`].
    fn closed_runs(&self) -> Option<tokio::sync::broadcast::Receiver<RunId>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn _object_safe(_: &dyn Store) {}
}
