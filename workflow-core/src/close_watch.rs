//! One listener per client for run closes, handing each close to the callers waiting for that
//! run: waiting on a thousand results costs a thousand map entries, not a thousand wake-ups per
//! close.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, oneshot};

use crate::ids::RunId;

#[derive(Default)]
pub(crate) struct CloseWatch {
    waiters: Mutex<HashMap<RunId, Vec<oneshot::Sender<()>>>>,
}

impl CloseWatch {
    /// Starts dispatching the closes `rx` announces. The listener ends with the store.
    pub(crate) fn start(mut rx: broadcast::Receiver<RunId>) -> Arc<CloseWatch> {
        let watch = Arc::new(CloseWatch::default());
        let w = watch.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(run_id) => w.wake(Some(&run_id)),
                    // Missed some: every waiter looks again.
                    Err(broadcast::error::RecvError::Lagged(_)) => w.wake(None),
                    Err(broadcast::error::RecvError::Closed) => {
                        w.wake(None);
                        return;
                    }
                }
            }
        });
        watch
    }

    fn wake(&self, run_id: Option<&RunId>) {
        let mut g = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        let woken: Vec<oneshot::Sender<()>> = match run_id {
            Some(id) => g.remove(id).unwrap_or_default(),
            None => g.drain().flat_map(|(_, v)| v).collect(),
        };
        drop(g);
        for tx in woken {
            let _ = tx.send(());
        }
    }

    /// A signal that resolves when `run_id` closes (or when waiters should look again).
    /// Register before checking the run, so that a close in between is not missed.
    pub(crate) fn register(&self, run_id: &RunId) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap_or_else(|e| e.into_inner()).entry(run_id.clone()).or_default().push(tx);
        rx
    }
}
