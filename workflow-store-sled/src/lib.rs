//! # workflow-store-sled: a durable embedded store for workflow-core
//!
//! [`SledStore`] keeps runs, histories, tasks and attempt logs in a [sled](https://docs.rs/sled)
//! database in one directory. It is the default store: no server, one process.
//!
//! ```
//! use std::sync::Arc;
//! use workflow_core::{
//!     Activity, ActivityContext, ActivityError, StartOptions, Worker, WorkerOptions, Workflow,
//!     WorkflowContext, WorkflowError,
//! };
//! use workflow_store_sled::SledStore;
//!
//! struct Double;
//! impl Activity for Double {
//!     const NAME: &'static str = "double";
//!     type Input = u64;
//!     type Output = u64;
//!     async fn run(&self, _ctx: ActivityContext, n: u64) -> Result<u64, ActivityError> {
//!         Ok(2 * n)
//!     }
//! }
//!
//! struct Quadruple;
//! impl Workflow for Quadruple {
//!     const NAME: &'static str = "quadruple";
//!     type Input = u64;
//!     type Output = u64;
//!     async fn run(ctx: WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
//!         let twice = ctx.activity::<Double>(n).await?;
//!         Ok(ctx.activity::<Double>(twice).await?)
//!     }
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("workflows");
//! let store = SledStore::open(&path)?; // a directory; created when missing
//! let mut worker = Worker::new(Arc::new(store), WorkerOptions::default());
//! worker.register_workflow::<Quadruple>()?;
//! worker.register_activity(Double)?;
//! let worker = worker.start()?;
//! // `start` returns once the run is on disk; so does every recorded step.
//! let handle = worker.client().start::<Quadruple>("q-1", 10, StartOptions::default()).await?;
//! assert_eq!(handle.result().await?, 40);
//! worker.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! After a crash, open the same path again and start a worker: runs continue where their
//! history ends, and activity attempts the dead process held are retried at once.
//!
//! ## What is durable when
//!
//! With the default [`Durability::Flush`]:
//! - When `create_run` or `append` returns `Ok`, its whole change (the events, the run's
//!   status and result, the task changes, the completion of a lease, the attempt record) is
//!   flushed to disk. Everything the engine acknowledges (a started workflow, an accepted
//!   activity result, a completed run) goes through these two calls, so nothing acknowledged
//!   is lost by a crash of the process or of the machine. Concurrent writers share one
//!   flush (group commit).
//! - Each `create_run` and `append` is one sled transaction: after a crash it is there
//!   entirely or not at all. Events never exist without the tasks they cause.
//! - Leases are held in memory. When a task is leased the store writes a *lease marker*
//!   (which store instance, which worker) without flushing; it reaches the disk with the
//!   next flush (the next write's group commit, or sled's own flush within half a second).
//!   When the store is reopened after a crash, every marker belongs to a dead process, so its
//!   tasks are visible at once and their next lease reports `previous_lease_lost`
//!   (an activity attempt is then recorded as `WorkerLost` and retried). A lease taken
//!   within the last moments before a crash may lack its marker: its task is still visible
//!   at once, only without `previous_lease_lost`.
//! - Heartbeat details are written without a flush; the latest ones may be lost in a crash.
//! - Retention deletions are not flushed on their own; a crash may bring back a run that
//!   was about to be deleted, and the next sweep deletes it again.
//!
//! With [`Durability::Relaxed`], writes return before they are flushed; see its docs for
//! what a crash can lose.
//!
//! ## Layout
//! One sled tree per kind of record, JSON values, keys that sort by run and then by number
//! (big endian), every id length-prefixed. The format carries a version
//! ([`FORMAT_VERSION`]); a store written by a newer version is refused with
//! [`StoreError::UnsupportedVersion`], and an unreadable record gives
//! [`StoreError::Corrupt`] naming the record and its run.
#![warn(missing_docs)]

mod batch;
mod codec;
mod config;
mod flush;
mod inner;
mod keys;
mod leases;
mod retention;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use tokio::sync::Notify;
use workflow_core::history::{Event, EventKind};
use workflow_core::store::{
    AppendOutcome, AppendRequest, AttemptRecord, LeaseToken, LeasedTask, NewRun, PendingTask, RunFilter, RunInfo,
    Store, TaskKey, TaskQueue,
};
use workflow_core::{EventId, Payload, RunId, StoreError, Timestamp};

pub use config::{Durability, SledStoreBuilder};

use batch::{Trees, T, TREE_NAMES};
use codec::{backend, decode, LeaseMarker};
use flush::Flusher;
use inner::{Inner, State};
use leases::Leases;
use retention::Sweeper;

/// The on-disk format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const VERSION_KEY: &[u8] = b"format_version";

/// What opening the store found left over from the previous process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// Tasks that were leased by a process that is gone; they are visible now and their
    /// next lease reports `previous_lease_lost`.
    pub lost_leases: usize,
}

/// Record counts, for monitoring and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// Runs (open and closed).
    pub runs: usize,
    /// History events of all runs.
    pub events: usize,
    /// Pending tasks.
    pub tasks: usize,
    /// Attempt log entries.
    pub attempts: usize,
    /// Keys in all trees, indexes included.
    pub keys: usize,
}

/// A durable [`Store`] on sled. See the [crate docs](crate) for what is durable when.
///
/// Only one process can open a path at a time; a second gets [`StoreError::InUse`] (after
/// waiting up to a second, in case the holder is a store of this process being dropped).
pub struct SledStore {
    // Field order is drop order: the sweeper writes, so it stops before the flusher's final
    // flush.
    _sweeper: Option<Sweeper>,
    flusher: Flusher,
    inner: Arc<Inner>,
    db: sled::Db,
    notify: Arc<Notify>,
    closed: tokio::sync::broadcast::Sender<RunId>,
    path: PathBuf,
    recovery: Recovery,
}

impl SledStore {
    /// Opens (or creates) a store at `path` with default options: [`Durability::Flush`],
    /// runs kept forever.
    pub fn open(path: impl AsRef<Path>) -> Result<SledStore, StoreError> {
        SledStoreBuilder::new(path).open()
    }

    /// Options for opening a store at `path`.
    pub fn builder(path: impl AsRef<Path>) -> SledStoreBuilder {
        SledStoreBuilder::new(path)
    }

    pub(crate) fn open_with(b: SledStoreBuilder) -> Result<SledStore, StoreError> {
        let path_str = b.path.display().to_string();
        let mut cfg = sled::Config::new().path(&b.path);
        if let Some(c) = b.cache_capacity {
            cfg = cfg.cache_capacity(c);
        }
        if let Durability::Relaxed { .. } = b.durability {
            // Our flusher decides when to flush.
            cfg = cfg.flush_every_ms(None);
        }
        // A store dropped a moment ago in this process may still hold the lock in sled's
        // background threads: wait for it briefly. Another process holding it still gets
        // `InUse`, a second later.
        let lock_deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let db = loop {
            // sled may panic on some damaged files; that is a corrupt store, not a crash of ours.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cfg.open())) {
                Ok(Ok(db)) => break db,
                Ok(Err(e)) => match open_error(e, &path_str) {
                    StoreError::InUse { .. } if std::time::Instant::now() < lock_deadline => {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    other => return Err(other),
                },
                Err(p) => {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    return Err(StoreError::Corrupt {
                        key: path_str,
                        reason: format!("sled could not open the database: {msg}"),
                    });
                }
            }
        };
        let trees = Trees::open(&db).map_err(backend)?;
        check_version(&db, &trees)?;
        let instance = uuid::Uuid::new_v4().to_string();
        let (leases, recovery) = recover(&trees)?;
        let next_seq_no = match trees.get(T::RunOrder).last().map_err(backend)? {
            Some((k, _)) => keys::trailing_u64(&k).map_or(0, |n| n + 1),
            None => 0,
        };
        if recovery.lost_leases > 0 {
            tracing::info!(lost_leases = recovery.lost_leases, "tasks leased by a previous process are visible again");
        }
        let inner = Arc::new(Inner { trees, state: RwLock::new(State { leases, next_seq_no }), instance });
        let flusher = Flusher::start(db.clone(), b.durability, b.group_commit_delay);
        let sweeper = match (b.retention, b.sweep_interval()) {
            (Some(keep), Some(every)) => Some(Sweeper::start(inner.clone(), keep, every)),
            _ => None,
        };
        Ok(SledStore {
            _sweeper: sweeper,
            flusher,
            inner,
            db,
            notify: Arc::new(Notify::new()),
            closed: tokio::sync::broadcast::channel(1024).0,
            path: b.path,
            recovery,
        })
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What opening found left over from a previous process.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// This process's store instance id (recorded in lease markers).
    pub fn instance_id(&self) -> &str {
        &self.inner.instance
    }

    /// Counts the records.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let _st = self.inner.read();
        let t = &self.inner.trees;
        let mut s = StoreStats {
            runs: t.get(T::Runs).len(),
            events: t.get(T::History).len(),
            tasks: t.get(T::Tasks).len(),
            attempts: t.get(T::Attempts).len(),
            keys: 0,
        };
        s.keys = t.all.iter().map(|t| t.len()).sum();
        Ok(s)
    }

    /// Flushes everything written so far (lease markers and heartbeats included).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await.map_err(backend)?;
        Ok(())
    }

    async fn durable(&self, gen: u64) -> Result<(), StoreError> {
        let r = self.flusher.wait(gen).await;
        self.notify.notify_waiters();
        r
    }
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .field("instance", &self.inner.instance)
            .finish_non_exhaustive()
    }
}

fn open_error(e: sled::Error, path: &str) -> StoreError {
    if let sled::Error::Io(io) = &e {
        if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock") {
            return StoreError::InUse { path: path.to_string() };
        }
    }
    backend(e)
}

fn check_version(db: &sled::Db, trees: &Trees) -> Result<(), StoreError> {
    match db.get(VERSION_KEY).map_err(backend)? {
        Some(v) => {
            let bytes: [u8; 4] = v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                key: "meta/format_version".into(),
                reason: format!("expected 4 bytes, found {}", v.len()),
            })?;
            let found = u32::from_be_bytes(bytes);
            if found > FORMAT_VERSION {
                return Err(StoreError::UnsupportedVersion { found, supported: FORMAT_VERSION });
            }
            Ok(())
        }
        None => {
            if let Some(name) = TREE_NAMES.iter().zip(&trees.all).find(|(_, t)| !t.is_empty()).map(|(n, _)| n) {
                return Err(StoreError::Corrupt {
                    key: "meta/format_version".into(),
                    reason: format!("missing, but tree {name} holds records"),
                });
            }
            db.insert(VERSION_KEY, &FORMAT_VERSION.to_be_bytes()).map_err(backend)?;
            db.flush().map_err(backend)?;
            Ok(())
        }
    }
}

/// Every lease marker on disk was written by a process that is gone (sled's lock lets one
/// process in at a time): its tasks are lost leases.
fn recover(trees: &Trees) -> Result<(Leases, Recovery), StoreError> {
    let mut leases = Leases::default();
    let markers = trees.get(T::Leases);
    let mut stale = Vec::new();
    for kv in markers.iter() {
        let (k, v) = kv.map_err(backend)?;
        let key = match std::str::from_utf8(&k) {
            Ok(s) => TaskKey(s.to_string()),
            Err(_) => {
                stale.push(k);
                continue;
            }
        };
        match decode::<LeaseMarker>(|| format!("leases/{key}"), &v) {
            Ok(m) => {
                tracing::debug!(task = %key, instance = %m.instance, owner = %m.owner, "lease of a previous process")
            }
            Err(e) => tracing::warn!(error = %e, "unreadable lease marker; treating the task as lost"),
        }
        if trees.get(T::Tasks).contains_key(&k).map_err(backend)? {
            leases.lost.insert(key);
        } else {
            stale.push(k);
        }
    }
    for k in stale {
        markers.remove(k).map_err(backend)?;
    }
    let lost_leases = leases.lost.len();
    Ok((leases, Recovery { lost_leases }))
}

#[async_trait]
impl Store for SledStore {
    async fn create_run(&self, run: NewRun) -> Result<(), StoreError> {
        self.inner.create_run(run)?;
        let gen = self.flusher.wrote();
        self.durable(gen).await
    }

    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        let closes = req.events.iter().any(EventKind::is_terminal).then(|| req.run_id.clone());
        let out = self.inner.append(req)?;
        let gen = self.flusher.wrote();
        self.durable(gen).await?;
        if let Some(run_id) = closes {
            // No receiver is fine: nobody waits.
            let _ = self.closed.send(run_id);
        }
        Ok(out)
    }

    async fn lease_tasks(
        &self,
        queue: TaskQueue,
        now: Timestamp,
        max: usize,
        owner: &str,
    ) -> Result<Vec<LeasedTask>, StoreError> {
        self.inner.lease_tasks(queue, now, max, owner)
    }

    async fn next_due(&self, queue: TaskQueue) -> Result<Option<Timestamp>, StoreError> {
        self.inner.next_due(queue)
    }

    async fn heartbeat(
        &self,
        key: &TaskKey,
        token: LeaseToken,
        details: Option<Payload>,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.heartbeat(key, token, details, now, until)
    }

    async fn read_history(&self, run_id: &RunId, after: EventId) -> Result<Vec<Event>, StoreError> {
        self.inner.read_history(run_id, after)
    }

    async fn get_run(&self, run_id: &RunId) -> Result<Option<RunInfo>, StoreError> {
        self.inner.get_run(run_id)
    }

    async fn current_run(&self, workflow_id: &str) -> Result<Option<RunInfo>, StoreError> {
        self.inner.current_run(workflow_id)
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunInfo>, StoreError> {
        self.inner.list_runs(filter)
    }

    async fn list_tasks(&self, run_id: &RunId) -> Result<Vec<PendingTask>, StoreError> {
        self.inner.list_tasks(run_id)
    }

    async fn list_attempts(&self, run_id: &RunId) -> Result<Vec<AttemptRecord>, StoreError> {
        self.inner.list_attempts(run_id)
    }

    async fn delete_closed_before(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.inner.delete_closed_before(before)
    }

    fn notifier(&self) -> Option<Arc<Notify>> {
        Some(self.notify.clone())
    }

    fn closed_runs(&self) -> Option<tokio::sync::broadcast::Receiver<RunId>> {
        Some(self.closed.subscribe())
    }
}

#[cfg(test)]
mod tests;
