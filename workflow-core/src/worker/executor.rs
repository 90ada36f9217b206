//! The workflow executor thread: owns the cache of run machines and polls workflow code
//! outside the tokio runtime, so tokio calls in workflow code fail at once.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use lru::LruCache;

use super::registry::Registry;
use crate::error::WorkflowTaskError;
use crate::history::{Event, EventKind};
use crate::ids::{EventId, RunId, Seq};
use crate::options::Limits;
use crate::replay::{Activation, RunMachine};

/// The last event id of each cached run, readable without a round trip to the executor
/// thread. Only the executor writes it, as it caches and evicts runs; a reader may see a value
/// that is about to change, which costs a retry, never correctness.
pub(crate) type Known = Arc<Mutex<HashMap<RunId, EventId>>>;

pub(crate) struct ExecState {
    cache: LruCache<RunId, RunMachine>,
    known: Known,
    registry: Arc<Registry>,
    limits: Limits,
}

/// The result of advancing a run.
pub(crate) enum Advance {
    /// New events to commit after `base` (the last event id the machine had seen before the
    /// extra inputs); `inputs` are the extra inputs applied (a repeated child start is dropped).
    Ready { activation: Activation, base: EventId, inputs: Vec<EventKind>, workflow_id: String },
    /// The extra inputs refer to work that is no longer pending (cancelled, already recorded).
    Stale,
    /// The history given does not reach back to the cached run's last event (it was evicted,
    /// or never cached): read it from the start.
    NeedHistory,
}

impl ExecState {
    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, EventId>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn put(&mut self, run_id: RunId, machine: RunMachine) {
        let last = machine.last_event_id();
        let evicted = self.cache.push(run_id.clone(), machine);
        let mut known = self.known();
        if let Some((old, _)) = evicted.filter(|(old, _)| *old != run_id) {
            known.remove(&old);
        }
        known.insert(run_id, last);
    }

    fn pop(&mut self, run_id: &RunId) -> Option<RunMachine> {
        self.known().remove(run_id);
        self.cache.pop(run_id)
    }

    pub(crate) fn evict(&mut self, run_id: &RunId) {
        self.pop(run_id);
    }

    /// Applies `history` (the events after `after`: a delta for a cached run, the whole
    /// history otherwise), then `extra` inputs not yet stored, and returns what is new.
    pub(crate) fn advance(
        &mut self,
        run_id: &RunId,
        after: EventId,
        history: &[Event],
        extra: &[EventKind],
        extra_time: crate::time::Timestamp,
        extra_seq: Option<Seq>,
    ) -> Result<Advance, WorkflowTaskError> {
        let mut machine = match self.pop(run_id) {
            Some(m) if after <= m.last_event_id() => m,
            Some(m) => {
                self.put(run_id.clone(), m);
                return Ok(Advance::NeedHistory);
            }
            None if after > 0 => return Ok(Advance::NeedHistory),
            None => {
                let workflow_type = match history.first().map(|e| &e.kind) {
                    Some(EventKind::WorkflowStarted { workflow_type, .. }) => workflow_type,
                    _ => {
                        return Err(WorkflowTaskError::MalformedHistory {
                            run_id: run_id.clone(),
                            event_id: 1,
                            reason: "history does not start with WorkflowStarted".into(),
                        })
                    }
                };
                let f = *self.registry.workflows.get(workflow_type).ok_or_else(|| {
                    WorkflowTaskError::UnknownWorkflowType {
                        workflow_type: workflow_type.clone(),
                        registered: self.registry.workflow_names(),
                    }
                })?;
                RunMachine::new(run_id.clone(), f, self.limits.clone())
            }
        };
        machine.apply(history)?;
        let base = machine.last_event_id();
        if let Some(seq) = extra_seq {
            if machine.is_closed() || !machine.is_pending(seq) {
                self.put(run_id.clone(), machine);
                return Ok(Advance::Stale);
            }
        }
        // A child's start may be delivered again with its end (the end can overtake the start's
        // own task); record it once.
        let extra: Vec<EventKind> = extra
            .iter()
            .filter(|k| !matches!(k, EventKind::ChildWorkflowStarted { seq, .. } if machine.child_started(*seq)))
            .cloned()
            .collect();
        let extra_events: Vec<Event> = extra
            .iter()
            .enumerate()
            .map(|(i, k)| Event { id: base + 1 + i as EventId, time: extra_time, kind: k.clone() })
            .collect();
        machine.apply(&extra_events)?;
        let activation = machine.take_activation();
        let workflow_id = machine.workflow_id();
        // A closing run leaves the cache; so does one parked on a long timer (it costs a store
        // entry, not a live future). Either is replayed if it ever needs advancing again.
        if !activation.closed && !machine.is_parked(PARK_AFTER) {
            self.put(run_id.clone(), machine);
        }
        Ok(Advance::Ready { activation, base, inputs: extra, workflow_id })
    }

    /// Answers a query from the cached run when it is up to date with `history`, else from a
    /// fresh replay of `history` (the cache is left alone).
    pub(crate) fn query(
        &mut self,
        run_id: &RunId,
        workflow_type: &str,
        history: &[Event],
        name: &str,
        args: &crate::payload::Payload,
    ) -> Result<crate::payload::Payload, crate::error::QueryError> {
        self.with_current(run_id, workflow_type, history, |m| m.query(name, args))?
    }

    /// Checks an update against the run's current state, as [`query`](Self::query) reads it.
    pub(crate) fn validate_update(
        &mut self,
        run_id: &RunId,
        workflow_type: &str,
        history: &[Event],
        name: &str,
        args: &crate::payload::Payload,
    ) -> Result<(), crate::error::UpdateError> {
        self.with_current(run_id, workflow_type, history, |m| m.validate_update(name, args))?
    }

    /// Calls `f` on the run's state after `history`: the cached machine when it is up to date,
    /// else a fresh replay (the cache is left alone).
    fn with_current<T>(
        &mut self,
        run_id: &RunId,
        workflow_type: &str,
        history: &[Event],
        f: impl FnOnce(&RunMachine) -> T,
    ) -> Result<T, WorkflowTaskError> {
        let last = history.last().map_or(0, |e| e.id);
        if let Some(m) = self.cache.peek(run_id).filter(|m| m.last_event_id() == last) {
            return Ok(f(m));
        }
        let wf = *self.registry.workflows.get(workflow_type).ok_or_else(|| WorkflowTaskError::UnknownWorkflowType {
            workflow_type: workflow_type.to_string(),
            registered: self.registry.workflow_names(),
        })?;
        let mut m = RunMachine::new(run_id.clone(), wf, self.limits.clone());
        m.apply(history)?;
        Ok(f(&m))
    }
}

/// Runs that wait only on timers at least this far away leave the cache.
const PARK_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

type Job = Box<dyn FnOnce(&mut ExecState) + Send>;

/// Handle to the executor thread.
pub(crate) struct Executor {
    tx: mpsc::Sender<Job>,
}

impl Executor {
    pub(crate) fn spawn(registry: Arc<Registry>, limits: Limits, cache_size: usize, known: Known) -> Executor {
        let (tx, rx) = mpsc::channel::<Job>();
        let cap = NonZeroUsize::new(cache_size.max(1)).expect("max(1) is non-zero");
        thread::Builder::new()
            .name("workflow-executor".into())
            .spawn(move || {
                let mut state = ExecState { cache: LruCache::new(cap), known, registry, limits };
                while let Ok(job) = rx.recv() {
                    job(&mut state);
                }
            })
            .expect("spawning the workflow executor thread");
        Executor { tx }
    }

    /// Runs `f` on the executor thread without waiting. Jobs run in the order they were sent.
    pub(crate) fn send(&self, f: impl FnOnce(&mut ExecState) + Send + 'static) {
        self.tx.send(Box::new(f)).expect("workflow executor thread is alive");
    }

    /// Runs `f` on the executor thread and waits for its result. Blocks the calling thread
    /// for the (short, CPU-only) duration of `f`.
    pub(crate) fn call<R: Send + 'static>(&self, f: impl FnOnce(&mut ExecState) -> R + Send + 'static) -> R {
        let (rtx, rrx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |s| {
            let _ = rtx.send(f(s));
        });
        self.tx.send(job).expect("workflow executor thread is alive");
        rrx.recv().expect("workflow executor thread answered")
    }
}
