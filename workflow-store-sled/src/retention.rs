//! Retention: deleting closed runs, in bounded steps through the committer, and the
//! background sweep that does it on a schedule.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use workflow_core::{StoreError, Timestamp};

use crate::commit::Shared;
use crate::ops::{Done, Write};

/// Runs deleted per write, so that one sweep never makes a huge batch.
const PER_WRITE: usize = 64;

/// Deletes every run closed before `before`. Returns how many.
pub(crate) async fn delete_closed_before(shared: &Shared, before: Timestamp) -> Result<usize, StoreError> {
    let mut total = 0;
    loop {
        let n = match shared.submit(Write::Sweep { before, max: PER_WRITE }).await? {
            Done::Swept(n) => n,
            _ => 0,
        };
        total += n;
        if n < PER_WRITE {
            return Ok(total);
        }
    }
}

pub(crate) struct Sweeper {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

fn now() -> Timestamp {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp(d.as_millis() as u64)
}

impl Sweeper {
    pub(crate) fn start(shared: Arc<Shared>, keep: Duration, every: Duration) -> Sweeper {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sled-retention".into())
            .spawn(move || loop {
                let cutoff = Timestamp(now().as_millis().saturating_sub(keep.as_millis() as u64));
                match futures::executor::block_on(delete_closed_before(&shared, cutoff)) {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(deleted = n, "retention sweep"),
                    Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
                }
                let (lock, cv) = &*s;
                let g = lock.lock().unwrap_or_else(|e| e.into_inner());
                let (g, _) = cv.wait_timeout_while(g, every, |stopped| !*stopped).unwrap_or_else(|e| e.into_inner());
                if *g {
                    return;
                }
            })
            .ok();
        if thread.is_none() {
            tracing::error!("could not start the retention thread; closed runs are kept");
        }
        Sweeper { stop, thread }
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
