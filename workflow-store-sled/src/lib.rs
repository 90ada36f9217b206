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
//!   flushed by sled and then synced with `fdatasync` (and `fsync` for sled's blob files).
//!   Everything the engine acknowledges (a started workflow, an accepted activity result, a
//!   completed run) goes through these two calls, so nothing acknowledged is lost by a crash
//!   of the process, nor by a power loss on a disk that honours cache flushes.
//! - Writes go through one committer thread: every write waiting when it looks is checked
//!   on its own (one that fails fails alone), and the survivors are applied as one sled
//!   batch with one flush and one sync (group commit across runs). A batch is atomic: after
//!   a crash it is there entirely or not at all. Events never exist without their tasks.
//! - No reader sees a write before it is durable: the ready queue learns of a task only
//!   after its write is synced, and reads of records wait for the sync of any write they
//!   may have seen.
//! - The ready queue and the leases live in memory (one process opens a store) and are
//!   rebuilt from the persisted tasks on open. A task leased through the queue gets a
//!   *lease marker* written without a flush (it reaches the disk with the next write); a
//!   task leased eagerly by the append that created it has its marker in that append. When
//!   the store is reopened after a crash, every marker belongs to a dead process, so its
//!   tasks are visible at once and their next lease reports `previous_lease_lost` (an
//!   activity attempt is then recorded as `WorkerLost` and retried). A lease taken through
//!   the queue within the last moments before a crash may lack its marker: its task is
//!   still visible at once, only without `previous_lease_lost`.
//! - Heartbeat details go through the committer like any write.
//! - A write that cannot be flushed (a full disk, an I/O error) fails, and so does every
//!   later call: nothing after it is acknowledged. Reopen the store once the cause is fixed.
//!
//! With [`Durability::Relaxed`], writes return before they are flushed; see its docs for
//! what a crash can lose.
//!
//! ## Layout
//! One sled tree, `records`, with a one-byte prefix per kind of record (see `keys.rs`),
//! MessagePack values, keys that sort by run and then by number (big endian), every id
//! length-prefixed. The format carries a version ([`FORMAT_VERSION`]); a store written by a
//! newer version is refused with [`StoreError::UnsupportedVersion`], one written in an
//! older format with [`StoreError::OutdatedFormat`] (there is no migration: finish its runs
//! with the version that wrote it), and an unreadable record gives [`StoreError::Corrupt`]
//! naming the record and its run.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod codec;
mod commit;
mod config;
mod highwater;
mod keys;
mod ops;
mod overlay;
mod read;
mod retention;
mod snapshot;
mod state;
mod sync;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;
use workflow_core::history::{Event, EventKind};
use workflow_core::store::{
    AppendOutcome, AppendRequest, AttemptRecord, LeaseToken, LeasedTask, NewRun, PendingTask, RunFilter, RunInfo,
    Store, TaskKey, TaskQueue,
};
use workflow_core::{EventId, Payload, RunId, StoreError, Timestamp};

pub use config::{Durability, SledStoreBuilder};

use codec::{backend, decode, io_error, LeaseMarker};
use commit::{Committer, Shared};
use ops::{Done, Write};
use retention::Sweeper;
use state::{State, TaskMeta};
use sync::Syncer;

/// The on-disk format version this build writes and reads. Version 1 (one tree per kind of
/// record, JSON) is not read.
pub const FORMAT_VERSION: u32 = 2;

const VERSION_KEY: &[u8] = b"format_version";
const RECORDS: &str = "records";

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
    /// Keys of every kind, indexes included.
    pub keys: usize,
}

/// How much work the store's writer has done since it opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteCounters {
    /// Store writes: sled batches applied (one per group commit).
    pub writes: u64,
    /// Operations (`create_run`, `append`, heartbeats) those writes held.
    pub ops: u64,
    /// Flush-and-sync rounds (`fdatasync` of the data file after sled's flush).
    pub syncs: u64,
}

/// A durable [`Store`] on sled. See the [crate docs](crate) for what is durable when.
///
/// Only one process can open a path at a time; a second gets [`StoreError::InUse`] (after
/// waiting up to a second, in case the holder is a store of this process being dropped).
pub struct SledStore {
    // Field order is drop order: the sweeper writes through the committer, which commits
    // what is queued and flushes before it stops.
    _sweeper: Option<Sweeper>,
    _committer: Committer,
    shared: Arc<Shared>,
    closed: tokio::sync::broadcast::Sender<RunId>,
    path: PathBuf,
    recovery: Recovery,
    /// The private copy a snapshot was opened on, deleted when the store is dropped.
    _snapshot: Option<tempfile::TempDir>,
}

impl SledStore {
    /// Opens (or creates) a store at `path` with default options: [`Durability::Flush`],
    /// runs kept forever.
    pub fn open(path: impl AsRef<Path>) -> Result<SledStore, StoreError> {
        SledStoreBuilder::new(path).open()
    }

    /// Opens a private copy of the store at `path`, for inspection: nothing in `path` is
    /// written, not even the files sled rewrites whenever it opens a database. The store's
    /// files are copied to a temporary folder (as much space as the store takes) while the
    /// store's lock is held, and the copy is opened; whatever is done to the returned store
    /// (a write, a recovery) happens to the copy and is deleted with it when it is dropped.
    ///
    /// A store another process holds gives [`StoreError::InUse`] (its files are changing);
    /// a folder with no store in it gives [`StoreError::NotFound`]. The copy is checked as
    /// [`SledStore::open`] checks a store, so damage and lost writes are reported the same
    /// way. `TMPDIR` chooses where the copy goes.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("workflows");
    /// # drop(workflow_store_sled::SledStore::open(&path)?);
    /// use workflow_store_sled::SledStore;
    /// let snapshot = SledStore::open_snapshot(&path)?; // `path` is left exactly as it was
    /// assert_ne!(snapshot.path(), path.as_path());
    /// # Ok(()) }
    /// ```
    pub fn open_snapshot(path: impl AsRef<Path>) -> Result<SledStore, StoreError> {
        let path = path.as_ref();
        let copy = snapshot::copy(path)?;
        let mut store =
            SledStoreBuilder::new(copy.path()).open().map_err(|e| snapshot::about_original(e, copy.path(), path))?;
        store._snapshot = Some(copy);
        Ok(store)
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
        // The committer decides when to flush.
        cfg = cfg.flush_every_ms(None);
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
        let tree = db.open_tree(RECORDS).map_err(backend)?;
        let commits = match tree.get(highwater::COMMITS_KEY).map_err(backend)? {
            Some(v) if v.len() == 8 => u64::from_be_bytes(v.as_ref().try_into().expect("8 bytes")),
            Some(_) => {
                return Err(StoreError::Corrupt {
                    key: format!("{path_str} (record ~commits)"),
                    reason: "the commit counter is not 8 bytes".into(),
                })
            }
            None => 0,
        };
        let (high_water, found) = highwater::HighWater::open(&b.path)
            .map_err(|e| io_error(&format!("cannot open {}/{}", path_str, highwater::FILE), &e))?;
        match found {
            highwater::Found::Mark(mark) if mark > commits => {
                return Err(StoreError::LostWrites { path: path_str, found: commits, expected: mark });
            }
            highwater::Found::Damaged(why) => {
                return Err(StoreError::Corrupt {
                    key: format!("{path_str}/{}", highwater::FILE),
                    reason: format!(
                        "the high-water mark cannot be read ({why}); if the store itself is intact, move that file aside to open it"
                    ),
                });
            }
            _ => {}
        }
        check_version(&db, &path_str).map_err(|e| in_store(e, &path_str))?;
        let (state, recovery, next_seq_no) = recover(&tree).map_err(|e| in_store(e, &path_str))?;
        if recovery.lost_leases > 0 {
            tracing::info!(lost_leases = recovery.lost_leases, "tasks leased by a previous process are visible again");
        }
        // Recovery may have removed stale lease markers: make that and the version durable.
        db.flush().map_err(backend)?;
        let syncer = Syncer::new(&b.path).map_err(|e| io_error("syncing the store's files failed", &e))?;
        let instance = uuid::Uuid::new_v4().to_string();
        let shared = Arc::new(Shared::new(db, tree, state, instance));
        let committer = Committer::start(
            shared.clone(),
            syncer,
            b.durability,
            b.group_commit_delay,
            next_seq_no,
            commits,
            high_water,
        )?;
        let sweeper = match (b.retention, b.sweep_interval()) {
            (Some(keep), Some(every)) => Some(Sweeper::start(shared.clone(), keep, every)),
            _ => None,
        };
        Ok(SledStore {
            _sweeper: sweeper,
            _committer: committer,
            shared,
            closed: tokio::sync::broadcast::channel(1024).0,
            path: b.path,
            recovery,
            _snapshot: None,
        })
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names this store's folder in a [`StoreError::Corrupt`], whose key names only the
    /// record and its run: a user with several stores must know which one is damaged.
    fn locate<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        result.map_err(|e| in_store(e, &self.path.display().to_string()))
    }

    /// What opening found left over from a previous process.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// This process's store instance id (recorded in lease markers).
    pub fn instance_id(&self) -> &str {
        &self.shared.instance
    }

    /// Counts the records.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut s = StoreStats::default();
        for k in self.shared.tree.iter().keys() {
            let k = k.map_err(backend)?;
            if k.as_ref() == highwater::COMMITS_KEY {
                continue; // bookkeeping, not a record
            }
            s.keys += 1;
            match k.first() {
                Some(&keys::RUN) => s.runs += 1,
                Some(&keys::EVENT) => s.events += 1,
                Some(&keys::TASK) => s.tasks += 1,
                Some(&keys::ATTEMPT) => s.attempts += 1,
                _ => {}
            }
        }
        Ok(s)
    }

    /// How many writes, operations and syncs the store has done since it opened.
    pub fn write_counters(&self) -> WriteCounters {
        let c = &self.shared.counters;
        WriteCounters {
            writes: c.writes.load(Ordering::Relaxed),
            ops: c.ops.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
        }
    }

    /// Flushes everything written so far (lease markers included) to sled's log.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.shared.db.flush_async().await.map_err(backend)?;
        Ok(())
    }

    async fn submit(&self, w: Write) -> Result<Done, StoreError> {
        self.shared.submit(w).await
    }
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .field("instance", &self.shared.instance)
            .finish_non_exhaustive()
    }
}

/// A [`StoreError::Corrupt`] whose key does not name the store's folder, with the folder
/// (and the file sled keeps records in) added.
fn in_store(e: StoreError, path: &str) -> StoreError {
    match e {
        StoreError::Corrupt { key, reason } if !key.contains(path) => {
            StoreError::Corrupt { key: format!("{key} in the store {path} (file {path}/db)"), reason }
        }
        other => other,
    }
}

fn open_error(e: sled::Error, path: &str) -> StoreError {
    match &e {
        sled::Error::Io(io)
            if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock") =>
        {
            StoreError::InUse { path: path.to_string() }
        }
        // sled checks its configuration file first, and reports a bad one with no position.
        sled::Error::Corruption { at: None, .. } => StoreError::Corrupt {
            key: format!("{path}/conf"),
            reason: format!(
                "sled's configuration file is damaged (its checksum does not match); it holds no records: move it aside and open again, and sled writes a new one (the records are in {path}/db, checked on their own)"
            ),
        },
        sled::Error::Corruption { at: Some(at), .. } => StoreError::Corrupt {
            key: format!("{path}/db"),
            reason: format!("sled found a damaged entry in its log at {at:?}; restore the store from a backup"),
        },
        _ => backend(e),
    }
}

fn check_version(db: &sled::Db, path: &str) -> Result<(), StoreError> {
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
            if found < FORMAT_VERSION {
                return Err(StoreError::OutdatedFormat { path: path.to_string(), found, supported: FORMAT_VERSION });
            }
            Ok(())
        }
        None => {
            let names = db.tree_names();
            if let Some(name) =
                names.iter().find(|n| n.as_ref() != b"__sled__default" && db.open_tree(n).is_ok_and(|t| !t.is_empty()))
            {
                return Err(StoreError::Corrupt {
                    key: "meta/format_version".into(),
                    reason: format!("missing, but tree {} holds records", String::from_utf8_lossy(name)),
                });
            }
            db.insert(VERSION_KEY, &FORMAT_VERSION.to_be_bytes()).map_err(backend)?;
            Ok(())
        }
    }
}

/// Rebuilds the queue from the persisted tasks. Every lease marker on disk was written by a
/// process that is gone (sled's lock lets one process in at a time): its tasks are lost
/// leases, visible at once.
fn recover(tree: &sled::Tree) -> Result<(State, Recovery, u64), StoreError> {
    let mut state = State::default();
    for kv in tree.scan_prefix([keys::TASK]) {
        let (k, v) = kv.map_err(backend)?;
        let task: workflow_core::store::Task = decode(|| keys::describe(&k), &v)?;
        state.load(task.key.clone(), TaskMeta::of(&task));
    }
    let mut stale = Vec::new();
    for kv in tree.scan_prefix([keys::LEASE]) {
        let (k, v) = kv.map_err(backend)?;
        let Some(key) = keys::task_key_of(&k) else {
            stale.push(k);
            continue;
        };
        let holder = match decode::<LeaseMarker>(|| keys::describe(&k), &v) {
            Ok(m) => {
                tracing::debug!(task = %key, instance = %m.instance, owner = %m.owner, "lease of a previous process");
                m.since.map(|since| workflow_core::store::LeaseHolder { owner: m.owner, since })
            }
            Err(e) => {
                tracing::warn!(error = %e, "unreadable lease marker; treating the task as lost");
                None
            }
        };
        if state.has_task(&key) {
            state.lost.insert(key, holder);
        } else {
            stale.push(k);
        }
    }
    for k in stale {
        tree.remove(k).map_err(backend)?;
    }
    let next_seq_no = match tree.scan_prefix([keys::ORDER]).next_back().transpose().map_err(backend)? {
        Some((k, _)) => keys::trailing_u64(&k).map_or(0, |n| n + 1),
        None => 0,
    };
    let lost_leases = state.lost.len();
    tracing::debug!(tasks = state.task_count(), lost_leases, "store opened");
    Ok((state, Recovery { lost_leases }, next_seq_no))
}

#[async_trait]
impl Store for SledStore {
    async fn create_run(&self, run: NewRun) -> Result<Option<LeasedTask>, StoreError> {
        let result = async {
            match self.submit(Write::Create(run)).await? {
                Done::Created(leased) => Ok(leased),
                _ => Err(StoreError::Backend {
                    reason: "the committer answered a creation oddly".into(),
                    retryable: false,
                }),
            }
        }
        .await;
        self.locate(result)
    }

    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        let result: Result<AppendOutcome, StoreError> = async {
            let closes = req.events.iter().any(EventKind::is_terminal).then(|| req.run_id.clone());
            match self.submit(Write::Append(req)).await? {
                Done::Appended(out) => {
                    if let Some(run_id) = closes {
                        // No receiver is fine: nobody waits.
                        let _ = self.closed.send(run_id);
                    }
                    Ok(out)
                }
                _ => Err(StoreError::Backend {
                    reason: "the committer answered an append oddly".into(),
                    retryable: false,
                }),
            }
        }
        .await;
        self.locate(result)
    }

    async fn lease_tasks(
        &self,
        queue: TaskQueue,
        now: Timestamp,
        max: usize,
        owner: &str,
    ) -> Result<Vec<LeasedTask>, StoreError> {
        let result: Result<Vec<LeasedTask>, StoreError> = async {
            self.shared.healthy()?;
            let leased = self.shared.lease_tasks(queue, now, max, owner)?;
            self.shared.visible(leased).await
        }
        .await;
        self.locate(result)
    }

    async fn next_due(&self, queue: TaskQueue) -> Result<Option<Timestamp>, StoreError> {
        let result: Result<Option<Timestamp>, StoreError> = async { Ok(self.shared.state().next_due(queue)) }.await;
        self.locate(result)
    }

    async fn heartbeat(
        &self,
        key: &TaskKey,
        token: LeaseToken,
        details: Option<Payload>,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        let result: Result<(), StoreError> =
            async { self.submit(Write::Heartbeat { key: key.clone(), token, details, now, until }).await.map(|_| ()) }
                .await;
        self.locate(result)
    }

    async fn read_history(&self, run_id: &RunId, after: EventId) -> Result<Vec<Event>, StoreError> {
        let result: Result<Vec<Event>, StoreError> = async {
            let h = self.shared.read_history(run_id, after)?;
            self.shared.visible(h).await
        }
        .await;
        self.locate(result)
    }

    async fn get_run(&self, run_id: &RunId) -> Result<Option<RunInfo>, StoreError> {
        let result: Result<Option<RunInfo>, StoreError> = async {
            let r = self.shared.get_run(run_id)?;
            self.shared.visible(r).await
        }
        .await;
        self.locate(result)
    }

    async fn current_run(&self, workflow_id: &str) -> Result<Option<RunInfo>, StoreError> {
        let result: Result<Option<RunInfo>, StoreError> = async {
            let r = self.shared.current_run(workflow_id)?;
            self.shared.visible(r).await
        }
        .await;
        self.locate(result)
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunInfo>, StoreError> {
        let result: Result<Vec<RunInfo>, StoreError> = async {
            let r = self.shared.list_runs(filter)?;
            self.shared.visible(r).await
        }
        .await;
        self.locate(result)
    }

    async fn list_tasks(&self, run_id: &RunId) -> Result<Vec<PendingTask>, StoreError> {
        let result: Result<Vec<PendingTask>, StoreError> = async {
            let r = self.shared.list_tasks(run_id)?;
            self.shared.visible(r).await
        }
        .await;
        self.locate(result)
    }

    async fn list_attempts(&self, run_id: &RunId) -> Result<Vec<AttemptRecord>, StoreError> {
        let result: Result<Vec<AttemptRecord>, StoreError> = async {
            let r = self.shared.list_attempts(run_id)?;
            self.shared.visible(r).await
        }
        .await;
        self.locate(result)
    }

    async fn delete_closed_before(&self, before: Timestamp) -> Result<usize, StoreError> {
        let result: Result<usize, StoreError> =
            async { retention::delete_closed_before(&self.shared, before).await }.await;
        self.locate(result)
    }

    fn notifier(&self) -> Option<Arc<Notify>> {
        Some(self.shared.notify.clone())
    }

    fn closed_runs(&self) -> Option<tokio::sync::broadcast::Receiver<RunId>> {
        Some(self.closed.subscribe())
    }
}

#[cfg(test)]
mod tests;

/// The README's examples, compiled and run as doctests so that what crates.io shows works.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
