//! The workflow executor thread: owns the cache of run machines and polls workflow code
//! outside the tokio runtime, so tokio calls in workflow code fail at once.

use std::num::NonZeroUsize;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;

use lru::LruCache;

use super::registry::Registry;
use crate::error::WorkflowTaskError;
use crate::history::{Event, EventKind};
use crate::ids::{EventId, RunId, Seq};
use crate::options::Limits;
use crate::replay::{Activation, RunMachine};

pub(crate) struct ExecState {
    cache: LruCache<RunId, RunMachine>,
    registry: Arc<Registry>,
    limits: Limits,
}

/// The result of advancing a run.
pub(crate) enum Advance {
    /// New events to commit after `base` (the last event id the machine had seen before the
    /// extra inputs); `inputs` are the extra inputs applied (a repeated child start is dropped).
    Ready { activation: Activation, base: EventId, inputs: Vec<EventKind> },
    /// The extra inputs refer to work that is no longer pending (cancelled, already recorded).
    Stale,
}

impl ExecState {
    pub(crate) fn last_event_id(&self, run_id: &RunId) -> Option<EventId> {
        self.cache.peek(run_id).map(RunMachine::last_event_id)
    }

    pub(crate) fn workflow_id(&self, run_id: &RunId) -> Option<String> {
        self.cache.peek(run_id).map(RunMachine::workflow_id)
    }

    pub(crate) fn evict(&mut self, run_id: &RunId) {
        self.cache.pop(run_id);
    }

    /// Applies `history` (a delta after the cached machine's last event, or the whole
    /// history), then `extra` inputs not yet stored, and returns what is new.
    pub(crate) fn advance(
        &mut self,
        run_id: &RunId,
        workflow_type: &str,
        history: &[Event],
        extra: &[EventKind],
        extra_time: crate::time::Timestamp,
        extra_seq: Option<Seq>,
    ) -> Result<Advance, WorkflowTaskError> {
        let mut machine = match self.cache.pop(run_id) {
            Some(m) => m,
            None => {
                let f = *self.registry.workflows.get(workflow_type).ok_or_else(|| {
                    WorkflowTaskError::UnknownWorkflowType {
                        workflow_type: workflow_type.to_string(),
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
                self.cache.put(run_id.clone(), machine);
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
        self.cache.put(run_id.clone(), machine);
        Ok(Advance::Ready { activation, base, inputs: extra })
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
        let last = history.last().map_or(0, |e| e.id);
        if let Some(m) = self.cache.peek(run_id).filter(|m| m.last_event_id() == last) {
            return m.query(name, args);
        }
        let f = *self.registry.workflows.get(workflow_type).ok_or_else(|| WorkflowTaskError::UnknownWorkflowType {
            workflow_type: workflow_type.to_string(),
            registered: self.registry.workflow_names(),
        })?;
        let mut m = RunMachine::new(run_id.clone(), f, self.limits.clone());
        m.apply(history)?;
        m.query(name, args)
    }

    /// Feeds events a workflow task committed back into the machine, so that it knows them as
    /// recorded.
    pub(crate) fn committed(&mut self, run_id: &RunId, events: &[Event]) -> Result<(), WorkflowTaskError> {
        if let Some(m) = self.cache.get_mut(run_id) {
            let r = m.apply(events);
            if r.is_err() || m.is_closed() {
                self.cache.pop(run_id);
            }
            r?;
        }
        Ok(())
    }
}

type Job = Box<dyn FnOnce(&mut ExecState) + Send>;

/// Handle to the executor thread.
pub(crate) struct Executor {
    tx: mpsc::Sender<Job>,
}

impl Executor {
    pub(crate) fn spawn(registry: Arc<Registry>, limits: Limits, cache_size: usize) -> Executor {
        let (tx, rx) = mpsc::channel::<Job>();
        let cap = NonZeroUsize::new(cache_size.max(1)).expect("max(1) is non-zero");
        thread::Builder::new()
            .name("workflow-executor".into())
            .spawn(move || {
                let mut state = ExecState { cache: LruCache::new(cap), registry, limits };
                while let Ok(job) = rx.recv() {
                    job(&mut state);
                }
            })
            .expect("spawning the workflow executor thread");
        Executor { tx }
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
