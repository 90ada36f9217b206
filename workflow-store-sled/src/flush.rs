//! Group commit: one background thread flushes sled for every writer that is waiting.
//!
//! Writers bump a write generation after their transaction commits and wait until a flush
//! that *started* after that bump has finished. Every writer that commits while a flush is in
//! progress is covered by the next one, so N concurrent writers cost about two flushes, not N.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;
use workflow_core::StoreError;

use crate::config::Durability;

#[derive(Clone, Debug, Default)]
struct Flushed {
    /// Every write with a generation up to this one is on disk.
    through: u64,
    /// The last flush failure: the generation it was meant to cover, and what happened.
    error: Option<(u64, String)>,
}

#[derive(Default)]
struct Pending {
    written: u64,
    stop: bool,
    /// The flusher sleeps on the condvar: a writer must wake it. Otherwise it is flushing and
    /// will see the new write when it looks again, and a wake-up would be a wasted syscall.
    waiting: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    flushes: std::sync::atomic::AtomicU64,
    wake: Condvar,
    flushed: watch::Sender<Flushed>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) struct Flusher {
    shared: Arc<Shared>,
    durability: Durability,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    pub(crate) fn start(db: sled::Db, durability: Durability, delay: Duration) -> Flusher {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            flushes: Default::default(),
            wake: Condvar::new(),
            flushed: watch::Sender::new(Flushed::default()),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sled-group-commit".into())
            .spawn(move || run(&s, &db, durability, delay))
            .ok();
        if thread.is_none() {
            tracing::error!("could not start the flusher thread; writes will flush inline");
        }
        Flusher { shared, durability, thread }
    }

    /// Records that a write committed; returns its generation.
    pub(crate) fn wrote(&self) -> u64 {
        let mut p = self.shared.lock();
        p.written += 1;
        let gen = p.written;
        let wake = p.waiting;
        drop(p);
        if wake {
            self.shared.wake.notify_one();
        }
        gen
    }

    /// How many flushes the flusher has done.
    #[cfg(test)]
    pub(crate) fn flushes(&self) -> u64 {
        self.shared.flushes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until write `gen` is on disk (immediately in relaxed mode).
    pub(crate) async fn wait(&self, gen: u64) -> Result<(), StoreError> {
        if !matches!(self.durability, Durability::Flush) {
            return Ok(());
        }
        let mut rx = self.shared.flushed.subscribe();
        let state = rx
            .wait_for(|f| f.through >= gen || f.error.as_ref().is_some_and(|(g, _)| *g >= gen))
            .await
            .map_err(|_| StoreError::Backend { reason: "the store's flusher stopped".into(), retryable: false })?
            .clone();
        if state.through >= gen {
            return Ok(());
        }
        let reason = state.error.map(|(_, e)| e).unwrap_or_default();
        Err(StoreError::Backend {
            reason: format!("flushing to disk failed, the write may be lost: {reason}"),
            retryable: false,
        })
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(s: &Shared, db: &sled::Db, durability: Durability, delay: Duration) {
    let mut flushed = 0u64;
    loop {
        let mut p = s.lock();
        match durability {
            Durability::Flush => {
                while p.written == flushed && !p.stop {
                    p.waiting = true;
                    p = s.wake.wait(p).unwrap_or_else(|e| e.into_inner());
                    p.waiting = false;
                }
            }
            Durability::Relaxed { every } => {
                if !p.stop {
                    p = s
                        .wake
                        .wait_timeout_while(p, every, |p| !p.stop)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0);
                }
            }
        }
        let stop = p.stop;
        if p.written == flushed {
            if stop {
                return;
            }
            continue;
        }
        drop(p);
        if !delay.is_zero() && !stop {
            // Let more writers join this flush.
            std::thread::sleep(delay);
        }
        let target = s.lock().written;
        s.flushes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match db.flush() {
            Ok(_) => {
                flushed = target;
                s.flushed.send_modify(|f| f.through = target);
            }
            Err(e) => {
                tracing::error!(error = %e, "sled flush failed");
                flushed = target;
                s.flushed.send_modify(|f| f.error = Some((target, e.to_string())));
            }
        }
        if stop && s.lock().written == flushed {
            return;
        }
    }
}
