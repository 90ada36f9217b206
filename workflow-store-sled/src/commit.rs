//! Group commit: one thread applies every write of the store.
//!
//! Writers queue their write and wait. The committer takes everything queued, checks and
//! stages each write on top of the ones before it (one that fails its checks fails alone),
//! applies the survivors as one sled batch, flushes and syncs once, and only then publishes
//! their task changes to the in-memory queue and acknowledges them. So N concurrent writes
//! from N runs cost one batch and one flush, and no attempt can start from a task whose
//! write a crash could still lose.
//!
//! Readers see sled's tree, where a batch is visible as soon as it is applied. Each write
//! therefore bumps `applied` before it is applied and `durable` once it is synced; a read
//! returns only once `durable` has caught up with the `applied` it saw after reading.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::highwater::{HighWater, COMMITS_KEY};

use tokio::sync::{oneshot, watch, Notify};
use workflow_core::StoreError;

use crate::codec::{backend, io_error};
use crate::config::Durability;
use crate::ops::{stage, Ctx, Done, Write};
use crate::overlay::{Group, Op};
use crate::state::State;
use crate::sync::Syncer;

/// What is durable, and whether the store has failed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Durable {
    /// Every write up to this generation is durable.
    pub(crate) through: u64,
    /// Why a flush failed. The store takes no write after that: reopen it.
    pub(crate) failed: Option<String>,
}

/// Counts of the committer's work, for benchmarks and monitoring.
#[derive(Default)]
pub(crate) struct Counters {
    /// Batches applied (store writes).
    pub(crate) writes: AtomicU64,
    /// Operations those batches held.
    pub(crate) ops: AtomicU64,
    /// Flush-and-sync rounds.
    pub(crate) syncs: AtomicU64,
}

struct Job {
    write: Write,
    reply: oneshot::Sender<Result<Done, StoreError>>,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    stop: bool,
    /// The committer sleeps on the condvar and must be woken.
    waiting: bool,
}

/// What the store's parts share.
pub(crate) struct Shared {
    pub(crate) db: sled::Db,
    pub(crate) tree: sled::Tree,
    pub(crate) state: Mutex<State>,
    /// This process's store instance: lease markers carry it.
    pub(crate) instance: String,
    queue: Mutex<Queue>,
    wake: Condvar,
    applied: AtomicU64,
    pub(crate) durable: watch::Sender<Durable>,
    pub(crate) counters: Counters,
    pub(crate) notify: Arc<Notify>,
}

impl Shared {
    pub(crate) fn new(db: sled::Db, tree: sled::Tree, state: State, instance: String) -> Shared {
        Shared {
            db,
            tree,
            state: Mutex::new(state),
            instance,
            queue: Mutex::default(),
            wake: Condvar::new(),
            applied: AtomicU64::new(0),
            durable: watch::Sender::new(Durable::default()),
            counters: Counters::default(),
            notify: Arc::new(Notify::new()),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a write and waits until it is durable (or has failed).
    pub(crate) async fn submit(&self, write: Write) -> Result<Done, StoreError> {
        let (reply, rx) = oneshot::channel();
        {
            let mut q = self.queue();
            if q.stop {
                return Err(closed());
            }
            q.jobs.push(Job { write, reply });
            if q.waiting {
                q.waiting = false;
                self.wake.notify_one();
            }
        }
        rx.await.map_err(|_| closed())?
    }

    /// Returns `v`, read from the tree, once everything it may have seen is durable.
    pub(crate) async fn visible<T>(&self, v: T) -> Result<T, StoreError> {
        let seen = self.applied.load(Ordering::SeqCst);
        {
            let d = self.durable.borrow();
            if let Some(e) = &d.failed {
                return Err(failed(e));
            }
            if d.through >= seen {
                return Ok(v);
            }
        }
        let mut rx = self.durable.subscribe();
        let d = rx.wait_for(|d| d.through >= seen || d.failed.is_some()).await.map_err(|_| closed())?.clone();
        match d.failed {
            Some(e) if d.through < seen => Err(failed(&e)),
            _ => Ok(v),
        }
    }

    /// Fails when an earlier flush failed.
    pub(crate) fn healthy(&self) -> Result<(), StoreError> {
        match &self.durable.borrow().failed {
            Some(e) => Err(failed(e)),
            None => Ok(()),
        }
    }
}

fn closed() -> StoreError {
    StoreError::Backend { reason: "the store is closing".into(), retryable: false }
}

fn failed(e: &str) -> StoreError {
    StoreError::Backend {
        reason: format!("an earlier write could not be made durable ({e}); nothing after it was acknowledged; reopen the store once the cause is fixed"),
        retryable: false,
    }
}

/// The committer thread. Dropping it commits what is queued, flushes and stops.
pub(crate) struct Committer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    pub(crate) fn start(
        shared: Arc<Shared>,
        syncer: Syncer,
        durability: Durability,
        delay: Duration,
        next_seq_no: u64,
        commits: u64,
        high_water: HighWater,
    ) -> Result<Committer, StoreError> {
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sled-committer".into())
            .spawn(move || Loop { s, syncer, durability, delay, next_seq_no, dirty: false, commits, high_water }.run())
            .map_err(|e| io_error("could not start the store's committer thread", &e))?;
        Ok(Committer { shared, thread: Some(thread) })
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.shared.queue().stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Loop {
    s: Arc<Shared>,
    syncer: Syncer,
    durability: Durability,
    delay: Duration,
    next_seq_no: u64,
    /// Relaxed mode: applied writes not flushed yet.
    dirty: bool,
    /// The number of the last commit batch (persisted in each batch).
    commits: u64,
    /// Where durable commit numbers are recorded (see `highwater`).
    high_water: HighWater,
}

impl Loop {
    fn run(mut self) {
        let mut last_flush = Instant::now();
        loop {
            let (jobs, stop) = self.take();
            if !jobs.is_empty() {
                self.commit(jobs);
            }
            let relaxed_due = match self.durability {
                Durability::Relaxed { every } => last_flush.elapsed() >= every,
                Durability::Flush => false,
            };
            if self.dirty && (relaxed_due || stop) {
                if let Err(e) = self.flush() {
                    tracing::error!(error = %e, "flushing the store failed; it takes no more writes until it is reopened");
                    self.s.durable.send_modify(|d| d.failed = Some(e.to_string()));
                }
                last_flush = Instant::now();
            }
            if stop {
                if let Err(e) = self.high_water.sync() {
                    tracing::warn!(error = %e, "syncing the high-water mark failed");
                }
                return;
            }
        }
    }

    /// Waits for writes (or, relaxed, for the next periodic flush) and takes them all.
    fn take(&mut self) -> (Vec<Job>, bool) {
        let s = self.s.clone();
        let mut q = s.queue();
        while q.jobs.is_empty() && !q.stop {
            q.waiting = true;
            q = match self.durability {
                Durability::Flush => s.wake.wait(q).unwrap_or_else(|e| e.into_inner()),
                Durability::Relaxed { every } => {
                    let (q, t) = s.wake.wait_timeout(q, every).unwrap_or_else(|e| e.into_inner());
                    if t.timed_out() {
                        let mut q = q;
                        q.waiting = false;
                        return (Vec::new(), q.stop);
                    }
                    q
                }
            };
            q.waiting = false;
        }
        if !self.delay.is_zero() && !q.stop {
            // Let more writers join this group.
            drop(q);
            std::thread::sleep(self.delay);
            q = s.queue();
        }
        (std::mem::take(&mut q.jobs), q.stop)
    }

    fn commit(&mut self, jobs: Vec<Job>) {
        if let Err(e) = self.s.healthy() {
            for j in jobs {
                let _ = j.reply.send(Err(e.clone()));
            }
            return;
        }
        let s = self.s.clone();
        let mut group = Group::default();
        let mut acks = Vec::with_capacity(jobs.len());
        {
            let mut st = s.state();
            let mut cx = Ctx { state: &mut st, next_seq_no: &mut self.next_seq_no, instance: &s.instance };
            for job in jobs {
                let mut op = Op::new(&s.tree, &group);
                match stage(&mut op, &mut cx, job.write) {
                    Ok(done) => {
                        let staged = op.staged();
                        group.absorb(staged);
                        acks.push((job.reply, done));
                    }
                    Err(e) => {
                        let _ = job.reply.send(Err(e));
                    }
                }
            }
        }
        if acks.is_empty() {
            return;
        }
        let ops = acks.len() as u64;
        let result = if group.is_empty() {
            // Nothing to write (a heartbeat without details): only leases change.
            s.state().apply(group.into_batch().1);
            Ok(())
        } else {
            self.write(group, ops)
        };
        for (reply, done) in acks {
            let _ = reply.send(result.clone().map(|()| done));
        }
        s.notify.notify_waiters();
    }

    /// Applies a group as one batch, makes it durable (or, relaxed, leaves that to the
    /// periodic flush), then publishes its task changes.
    fn write(&mut self, group: Group, ops: u64) -> Result<(), StoreError> {
        let s = self.s.clone();
        let (mut batch, changes) = group.into_batch();
        self.commits += 1;
        batch.insert(COMMITS_KEY, &self.commits.to_be_bytes());
        let gen = s.applied.fetch_add(1, Ordering::SeqCst) + 1;
        s.counters.writes.fetch_add(1, Ordering::Relaxed);
        s.counters.ops.fetch_add(ops, Ordering::Relaxed);
        let mut result = s.tree.apply_batch(batch).map_err(backend);
        if result.is_ok() {
            match self.durability {
                Durability::Flush => result = self.flush(),
                Durability::Relaxed { .. } => self.dirty = true,
            }
        }
        match &result {
            Ok(()) => s.durable.send_modify(|d| d.through = gen),
            Err(e) => {
                tracing::error!(error = %e, "a store write failed; the store takes no more writes until it is reopened");
                s.durable.send_modify(|d| d.failed = Some(e.to_string()));
                return result;
            }
        }
        s.state().apply(changes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.s.counters.syncs.fetch_add(1, Ordering::Relaxed);
        self.s.db.flush().map_err(backend)?;
        self.syncer.sync().map_err(|e| io_error("syncing the store's files to disk failed", &e))?;
        self.dirty = false;
        // Everything up to `commits` is durable now: the mark may say so.
        if let Err(e) = self.high_water.record(self.commits) {
            tracing::warn!(error = %e, "recording the high-water mark failed");
        }
        Ok(())
    }
}
