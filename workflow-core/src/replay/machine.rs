//! The run machine: replays history into workflow code and turns new commands into events.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures::future::LocalBoxFuture;

use super::state::{CancelTarget, Command, Resolution, RunState};
use crate::error::{Failure, NondeterminismError, WorkflowTaskError};
use crate::history::{ChildEnd, ChildFailure, Event, EventKind};
use crate::ids::{EventId, RunId, Seq};
use crate::options::Limits;
use crate::payload::Payload;
use crate::workflow::{WorkflowContext, WorkflowError};

/// A workflow's code with its types erased: input payload in, result payload out.
pub type WorkflowFn = fn(WorkflowContext, Payload) -> LocalBoxFuture<'static, Result<Payload, WorkflowError>>;

/// What processing events produced.
#[derive(Debug, Default, PartialEq)]
pub struct Activation {
    /// Events to append, in order: recorded commands, cancellations, the run's completion.
    pub new_events: Vec<EventKind>,
    /// Whether the run is closed (its code finished or it was terminated).
    pub closed: bool,
    /// Local activities to run now (asked for and not recorded yet), in command order.
    pub local_activities: Vec<LocalActivityRequest>,
    /// Whether any local activity still waits for its marker.
    pub local_pending: bool,
}

/// A local activity workflow code asked for, to run in this worker and record as a
/// `LocalActivityRecorded` marker.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalActivityRequest {
    /// Command position.
    pub seq: Seq,
    /// The activity's name.
    pub activity_type: String,
    /// Its input.
    pub input: Payload,
    /// Its options.
    pub options: crate::options::ActivityOptions,
}

struct FlagWaker(AtomicBool);

impl Wake for FlagWaker {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Polls beyond this within one input mean the code keeps waking itself without waiting for
/// anything the engine provides.
const MAX_POLLS_PER_INPUT: usize = 100_000;

/// Drives one run's workflow code. Feed it history with [`apply`](Self::apply); it checks
/// that the code asks for what the history recorded and collects what is new.
pub struct RunMachine {
    state: Rc<RefCell<RunState>>,
    root: Option<LocalBoxFuture<'static, Result<Payload, WorkflowError>>>,
    workflow_fn: WorkflowFn,
    /// Command events from history, by seq.
    /// Command events from history, by seq: their id and what identifies them.
    recorded: Vec<Option<(EventId, CommandKey)>>,
    recorded_terminal: Option<(EventId, EventKind)>,
    /// Id of the last event a workflow task wrote; inputs before it are being replayed.
    last_task_event_id: EventId,
    last_event_id: EventId,
    new_events: Vec<EventKind>,
    local_requests: Vec<LocalActivityRequest>,
    outcome: Option<EventKind>,
    closed: bool,
}

impl RunMachine {
    /// A machine for `run_id` that will run `workflow_fn` when it sees `WorkflowStarted`.
    pub fn new(run_id: RunId, workflow_fn: WorkflowFn, limits: Limits) -> Self {
        RunMachine {
            state: Rc::new(RefCell::new(RunState::new(run_id, limits))),
            root: None,
            workflow_fn,
            recorded: Vec::new(),
            recorded_terminal: None,
            last_task_event_id: 0,
            last_event_id: 0,
            new_events: Vec::new(),
            local_requests: Vec::new(),
            outcome: None,
            closed: false,
        }
    }

    /// A machine running workflow `W` (for tools and benchmarks that replay histories).
    pub fn for_workflow<W: crate::workflow::Workflow>(run_id: RunId, limits: Limits) -> Self {
        let mut r = crate::worker::Registry::default();
        // A fresh registry cannot hold a duplicate.
        let _ = r.add_workflow::<W>();
        let f = *r.workflows.get(W::NAME).expect("just registered");
        RunMachine::new(run_id, f, limits)
    }

    /// The id of the last event applied.
    pub fn last_event_id(&self) -> EventId {
        self.last_event_id
    }

    /// Whether the run waits only on timers, the earliest at least `at_least` away: worth
    /// evicting from a cache (replay is cheaper than holding it).
    pub fn is_parked(&self, at_least: std::time::Duration) -> bool {
        let s = self.state.borrow();
        s.parked_until().is_some_and(|t| t.since(s.now) >= at_least)
    }

    /// Whether child `seq` is known to have started (its `ChildWorkflowStarted` was applied).
    pub fn child_started(&self, seq: Seq) -> bool {
        self.state.borrow().child_run_id(seq).is_some()
    }

    /// The workflow id (empty before `WorkflowStarted` was applied).
    pub fn workflow_id(&self) -> String {
        self.state.borrow().workflow_id.clone()
    }

    /// Whether the run is closed.
    pub fn is_closed(&self) -> bool {
        self.closed || self.outcome.is_some()
    }

    /// Whether command `seq` (an activity or a timer) waits for its outcome.
    pub fn is_pending(&self, seq: Seq) -> bool {
        let s = self.state.borrow();
        s.is_pending_activity(seq).is_some()
            || s.is_pending_timer(seq)
            || s.pending_child(seq).is_some()
            || s.is_pending_external(seq)
    }

    fn run_id(&self) -> RunId {
        self.state.borrow().run_id.clone()
    }

    fn next_seq_issued(&self, seq: Seq) -> bool {
        self.state.borrow().seq_issued(seq)
    }

    fn nondet(&self, event_id: EventId, recorded: String, requested: String) -> WorkflowTaskError {
        self.nondet_at(event_id, recorded, requested, None)
    }

    /// A nondeterminism error naming where the code issued the command, when that is in the
    /// workflow's own source (not inside this library, as for `ctx.timeout`'s timer).
    fn nondet_at(
        &self,
        event_id: EventId,
        recorded: String,
        requested: String,
        at: Option<&'static std::panic::Location<'static>>,
    ) -> WorkflowTaskError {
        let location = at.filter(|l| !l.file().ends_with("workflow/context.rs")).map(|l| l.to_string());
        WorkflowTaskError::Nondeterminism(NondeterminismError {
            run_id: self.run_id(),
            event_id,
            recorded,
            requested,
            location,
        })
    }

    fn malformed(&self, event_id: EventId, reason: impl Into<String>) -> WorkflowTaskError {
        WorkflowTaskError::MalformedHistory { run_id: self.run_id(), event_id, reason: reason.into() }
    }

    /// Applies history events (already applied ones are skipped). Inputs are delivered one
    /// at a time, each followed by polling the code until it waits again, so concurrent
    /// branches see outcomes in history order.
    pub fn apply(&mut self, events: &[Event]) -> Result<(), WorkflowTaskError> {
        for e in events.iter().filter(|e| e.id > self.last_event_id) {
            if let Some(seq) = e.kind.command_seq() {
                if let Some(key) = CommandKey::of_event(&e.kind) {
                    let i = seq as usize;
                    if self.recorded.len() <= i {
                        self.recorded.resize(i + 1, None);
                    }
                    self.recorded[i] = Some((e.id, key));
                }
                match &e.kind {
                    EventKind::SideEffectRecorded { value, .. } => {
                        self.state.borrow_mut().recorded_side_effects.insert(seq, value.clone());
                    }
                    EventKind::PatchMarker { patch_id, .. } => {
                        self.state.borrow_mut().recorded_patches.insert(seq, patch_id.clone());
                    }
                    _ => {}
                }
            }
            if e.kind.is_from_workflow_task() {
                self.last_task_event_id = self.last_task_event_id.max(e.id);
                if e.kind.is_terminal() {
                    self.recorded_terminal = Some((e.id, e.kind.clone()));
                }
            }
        }
        for e in events {
            if e.id <= self.last_event_id {
                continue;
            }
            if e.id != self.last_event_id + 1 {
                return Err(self.malformed(e.id, format!("expected event {}, found {}", self.last_event_id + 1, e.id)));
            }
            if self.closed {
                return Err(self.malformed(e.id, "event after the run closed"));
            }
            self.last_event_id = e.id;
            self.apply_one(e)?;
        }
        Ok(())
    }

    fn apply_one(&mut self, e: &Event) -> Result<(), WorkflowTaskError> {
        match &e.kind {
            EventKind::WorkflowStarted { workflow_id, input, seed, .. } => {
                if e.id != 1 || self.root.is_some() {
                    return Err(self.malformed(e.id, "WorkflowStarted must be the first event"));
                }
                {
                    let mut s = self.state.borrow_mut();
                    s.workflow_id = workflow_id.clone();
                    s.seed(*seed);
                    s.now = e.time;
                }
                let ctx = WorkflowContext { state: self.state.clone() };
                self.root = Some((self.workflow_fn)(ctx, input.clone()));
                self.drive(e.id)
            }
            EventKind::ActivityScheduled { seq, .. }
            | EventKind::TimerStarted { seq, .. }
            | EventKind::SideEffectRecorded { seq, .. }
            | EventKind::ChildWorkflowInitiated { seq, .. }
            | EventKind::PatchMarker { seq, .. }
            | EventKind::CommandCancelled { seq, .. }
            | EventKind::ExternalSignalInitiated { seq, .. }
            | EventKind::ExternalCancelInitiated { seq, .. }
            | EventKind::UpdateCompleted { seq, .. } => {
                if !self.next_seq_issued(*seq) {
                    return Err(self.nondet(
                        e.id,
                        e.kind.describe(),
                        "nothing (the code did not ask for it at this point)".into(),
                    ));
                }
                Ok(())
            }
            EventKind::ActivityStarted { seq, .. } => {
                if !self.next_seq_issued(*seq) {
                    return Err(self.nondet(e.id, e.kind.describe(), "nothing".into()));
                }
                Ok(())
            }
            EventKind::ActivityCompleted { seq, result } => self.resolve_activity(e, *seq, Ok(result.clone())),
            EventKind::LocalActivityRecorded { seq, outcome, .. } => {
                if !self.next_seq_issued(*seq) {
                    return Err(self.nondet(e.id, e.kind.describe(), "nothing (the code did not ask for it)".into()));
                }
                // A marker for a local activity no longer waited for (cancelled, or recorded
                // twice by two workers racing after a crash) changes nothing.
                if self.state.borrow().is_pending_activity(*seq).is_none() {
                    return Ok(());
                }
                let result = match outcome {
                    crate::history::LocalActivityOutcome::Completed { result } => Ok(result.clone()),
                    crate::history::LocalActivityOutcome::Failed { failure } => Err(failure.clone()),
                };
                self.resolve_activity(e, *seq, result)
            }
            EventKind::ActivityFailed { seq, failure } | EventKind::ActivityTimedOut { seq, failure } => {
                self.resolve_activity(e, *seq, Err(failure.clone()))
            }
            EventKind::TimerFired { seq } => {
                if !self.state.borrow().is_pending_timer(*seq) {
                    return Err(self.unexpected_outcome(e, *seq));
                }
                self.state.borrow_mut().now = e.time;
                self.state.borrow_mut().resolve(*seq, Resolution::Timer { fired: true });
                self.drive(e.id)
            }
            EventKind::ExternalDelivered { seq, outcome } => {
                if !self.state.borrow().is_pending_external(*seq) {
                    return Err(self.unexpected_outcome(e, *seq));
                }
                {
                    let mut s = self.state.borrow_mut();
                    s.now = e.time;
                    s.resolve(*seq, Resolution::External { outcome: *outcome });
                }
                self.drive(e.id)
            }
            EventKind::ChildWorkflowStarted { seq, run_id } => {
                if !self.next_seq_issued(*seq) {
                    return Err(self.unexpected_outcome(e, *seq));
                }
                let ask = {
                    let mut s = self.state.borrow_mut();
                    s.child_started(*seq, run_id);
                    s.cancel_when_started.remove(seq)
                };
                // The code cancelled it before it started: ask it now.
                if let Some(by) = ask.filter(|_| !self.replaying(e.id)) {
                    self.new_events.push(EventKind::ChildCancelRequested {
                        seq: *seq,
                        run_id: run_id.clone(),
                        by_command: Some(by),
                    });
                }
                Ok(())
            }
            EventKind::ChildWorkflowStartFailed { seq, reason } => {
                let failure = {
                    let s = self.state.borrow();
                    s.pending_child(*seq).map(|(t, id)| ChildFailure {
                        workflow_id: id.to_string(),
                        workflow_type: t.to_string(),
                        kind: ChildEnd::StartFailed,
                        cause: Some(Failure::new("ChildStartFailed", reason.clone())),
                    })
                };
                match failure {
                    Some(f) => self.resolve_child(e, *seq, Err(f)),
                    None => Err(self.unexpected_outcome(e, *seq)),
                }
            }
            EventKind::ChildWorkflowCompleted { seq, result } => self.resolve_child(e, *seq, Ok(result.clone())),
            EventKind::ChildWorkflowFailed { seq, failure } => self.resolve_child(e, *seq, Err(failure.clone())),
            // Recorded consequences of CancelRequested, which re-derives them.
            EventKind::ActivityCancelled { .. }
            | EventKind::ActivityCancelRequested { .. }
            | EventKind::TimerCancelled { .. }
            | EventKind::ChildCancelRequested { .. } => Ok(()),
            EventKind::CancelRequested { .. } => {
                let cancels = {
                    let mut s = self.state.borrow_mut();
                    s.now = e.time;
                    s.request_cancel()
                };
                if !self.replaying(e.id) {
                    self.new_events.extend(cancels);
                }
                self.drive(e.id)
            }
            EventKind::SignalReceived { name, payload, .. } => {
                {
                    let mut s = self.state.borrow_mut();
                    s.now = e.time;
                    s.signals.push_back((name.clone(), payload.clone()));
                    for w in s.signal_wakers.drain(..) {
                        w.wake();
                    }
                }
                self.drive(e.id)
            }
            EventKind::UpdateAccepted { update_id, name, args } => {
                {
                    let mut s = self.state.borrow_mut();
                    s.now = e.time;
                    s.updates.push_back(crate::replay::AcceptedUpdate {
                        update_id: update_id.clone(),
                        name: name.clone(),
                        args: args.clone(),
                    });
                    for w in s.update_wakers.drain(..) {
                        w.wake();
                    }
                }
                self.drive(e.id)
            }
            EventKind::WorkflowCompleted { .. }
            | EventKind::WorkflowFailed { .. }
            | EventKind::WorkflowCancelled
            | EventKind::WorkflowContinuedAsNew { .. } => match &self.outcome {
                Some(o) if o.name() == e.kind.name() => {
                    self.closed = true;
                    Ok(())
                }
                Some(o) => Err(self.nondet(e.id, e.kind.describe(), o.describe())),
                None => Err(self.nondet(e.id, e.kind.describe(), "nothing (the code is still running)".into())),
            },
            EventKind::WorkflowTerminated { .. } | EventKind::WorkflowTimedOut => {
                self.root = None;
                self.closed = true;
                Ok(())
            }
        }
    }

    fn unexpected_outcome(&self, e: &Event, seq: Seq) -> WorkflowTaskError {
        if self.next_seq_issued(seq) {
            self.malformed(e.id, format!("{} for seq {seq}, which is not pending", e.kind.name()))
        } else {
            self.nondet(e.id, e.kind.describe(), format!("nothing (the code never asked for seq {seq})"))
        }
    }

    fn resolve_activity(
        &mut self,
        e: &Event,
        seq: Seq,
        result: Result<Payload, crate::history::ActivityFailure>,
    ) -> Result<(), WorkflowTaskError> {
        let activity_type = match self.state.borrow().is_pending_activity(seq) {
            Some(t) => t.to_string(),
            None => return Err(self.unexpected_outcome(e, seq)),
        };
        {
            let mut s = self.state.borrow_mut();
            s.now = e.time;
            s.resolve(seq, Resolution::Activity { activity_type, result });
        }
        self.drive(e.id)
    }

    fn resolve_child(
        &mut self,
        e: &Event,
        seq: Seq,
        result: Result<Payload, ChildFailure>,
    ) -> Result<(), WorkflowTaskError> {
        if self.state.borrow().pending_child(seq).is_none() {
            return Err(self.unexpected_outcome(e, seq));
        }
        {
            let mut s = self.state.borrow_mut();
            s.now = e.time;
            s.resolve(seq, Resolution::Child { result });
        }
        self.drive(e.id)
    }

    /// Inputs before the last event a workflow task wrote were already processed once: the
    /// commands they cause must be in the history, not new.
    fn replaying(&self, input_id: EventId) -> bool {
        self.last_task_event_id > input_id
    }

    fn drive(&mut self, input_id: EventId) -> Result<(), WorkflowTaskError> {
        self.state.borrow_mut().replaying = self.replaying(input_id);
        let flag = Arc::new(FlagWaker(AtomicBool::new(true)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut polls = 0;
        while flag.0.swap(false, Ordering::SeqCst) {
            let Some(root) = self.root.as_mut() else {
                return Ok(());
            };
            polls += 1;
            if polls > MAX_POLLS_PER_INPUT {
                return Err(WorkflowTaskError::Panic {
                    message: "workflow code keeps waking itself without waiting on the context (busy loop?)".into(),
                });
            }
            let polled = catch_unwind(AssertUnwindSafe(|| root.as_mut().poll(&mut cx)));
            self.process_issued(input_id)?;
            match polled {
                Err(panic) => {
                    self.root = None;
                    return Err(panic_error(panic));
                }
                Ok(Poll::Ready(result)) => {
                    self.root = None;
                    return self.finish(input_id, result);
                }
                Ok(Poll::Pending) => {}
            }
        }
        Ok(())
    }

    fn process_issued(&mut self, input_id: EventId) -> Result<(), WorkflowTaskError> {
        let issued = std::mem::take(&mut self.state.borrow_mut().issued);
        for (cmd, at) in issued {
            let seq = cmd.seq();
            if let Some((rid, recorded)) = self.recorded.get(seq as usize).and_then(Option::as_ref) {
                if *recorded != CommandKey::of_command(&cmd) {
                    return Err(self.nondet_at(*rid, recorded.describe(seq), command_event(cmd).describe(), Some(at)));
                }
                continue;
            }
            if let Command::RunLocalActivity { seq, activity_type, input, options } = cmd {
                // Not recorded yet: whether live or replayed, it is (still) to run. Its marker
                // is its record; nothing is written now.
                self.local_requests.push(LocalActivityRequest { seq, activity_type, input, options });
                continue;
            }
            let consequence = match &cmd {
                Command::Cancel { target, what: CancelTarget::Activity, .. } => {
                    Some(EventKind::ActivityCancelled { seq: *target })
                }
                Command::Cancel { target, what: CancelTarget::ActivityWait, .. } => {
                    Some(EventKind::ActivityCancelRequested { seq: *target })
                }
                Command::Cancel { target, what: CancelTarget::Timer, .. } => {
                    Some(EventKind::TimerCancelled { seq: *target })
                }
                Command::Cancel { seq, target, what: CancelTarget::Child { run_id: Some(run_id) } } => {
                    Some(EventKind::ChildCancelRequested {
                        seq: *target,
                        run_id: run_id.clone(),
                        by_command: Some(*seq),
                    })
                }
                _ => None,
            };
            let ev = command_event(cmd);
            if self.replaying(input_id) {
                return Err(self.nondet_at(
                    self.last_task_event_id,
                    format!("no command with seq {seq} (the workflow task after event {input_id} recorded others)"),
                    ev.describe(),
                    Some(at),
                ));
            } else {
                self.new_events.push(ev);
                self.new_events.extend(consequence);
            }
        }
        Ok(())
    }

    fn finish(&mut self, input_id: EventId, result: Result<Payload, WorkflowError>) -> Result<(), WorkflowTaskError> {
        let (cancel_requested, limit) = {
            let s = self.state.borrow();
            (s.cancel_requested, s.limits.max_payload_bytes)
        };
        let ev = match result {
            Ok(p) => match p.check_size("workflow result", limit) {
                Ok(()) => EventKind::WorkflowCompleted { result: p },
                Err(e) => EventKind::WorkflowFailed {
                    failure: Failure::new("PayloadTooLarge", e.to_string()),
                    next_run: None,
                },
            },
            Err(WorkflowError::Cancelled) if cancel_requested => EventKind::WorkflowCancelled,
            Err(WorkflowError::ContinueAsNew { input }) => {
                // The successor's run id comes from the run's seeded randomness: replay agrees.
                let new_run_id = {
                    let mut s = self.state.borrow_mut();
                    let (a, b) = (s.next_random(), s.next_random());
                    RunId(uuid::Uuid::from_u64_pair(a, b).to_string())
                };
                EventKind::WorkflowContinuedAsNew { input, new_run_id }
            }
            Err(e) => EventKind::WorkflowFailed { failure: e.to_failure(), next_run: None },
        };
        self.outcome = Some(ev.clone());
        if let Some((rid, rk)) = &self.recorded_terminal {
            if rk.name() != ev.name() {
                return Err(self.nondet(*rid, rk.describe(), ev.describe()));
            }
        } else if self.replaying(input_id) {
            return Err(self.nondet(
                self.last_task_event_id,
                "more commands recorded after this point".into(),
                format!("{} (the code finished)", ev.describe()),
            ));
        } else {
            self.new_events.push(ev);
        }
        Ok(())
    }

    /// Takes what the events applied so far produced.
    pub fn take_activation(&mut self) -> Activation {
        Activation {
            new_events: std::mem::take(&mut self.new_events),
            closed: self.is_closed(),
            // Only those still waited for: one cancelled meanwhile (or in a closed run) is not
            // run, also when a replay asks for it again.
            local_activities: {
                let requests = std::mem::take(&mut self.local_requests);
                let s = self.state.borrow();
                let open = !self.is_closed();
                requests.into_iter().filter(|r| open && s.is_pending_activity(r.seq).is_some()).collect()
            },
            local_pending: !self.is_closed() && self.state.borrow().local_pending(),
        }
    }

    /// Answers query `name` with `args` from the run's current state, without changing it.
    pub fn query(&self, name: &str, args: &Payload) -> Result<Payload, crate::error::QueryError> {
        let handler = {
            let s = self.state.borrow();
            match s.queries.get(name) {
                Some(h) => h.clone(),
                None => {
                    let mut names: Vec<&str> = s.queries.keys().map(String::as_str).collect();
                    names.sort_unstable();
                    return Err(crate::error::QueryError::UnknownQuery {
                        name: name.to_string(),
                        registered: if names.is_empty() { "none".into() } else { names.join(", ") },
                    });
                }
            }
        };
        handler(args).map_err(|reason| crate::error::QueryError::Handler { name: name.to_string(), reason })
    }

    /// Checks update `name` with `args` against the run's current state, without changing it:
    /// the update must be registered and its validator must accept it.
    pub fn validate_update(&self, name: &str, args: &Payload) -> Result<(), crate::error::UpdateError> {
        use crate::error::UpdateError;
        if self.is_closed() {
            return Err(UpdateError::AlreadyClosed { workflow_id: self.workflow_id(), status: "closed".into() });
        }
        let validator = {
            let s = self.state.borrow();
            match s.update_validators.get(name) {
                Some(v) => v.clone(),
                None => {
                    let mut names: Vec<&str> = s.update_validators.keys().map(String::as_str).collect();
                    names.sort_unstable();
                    return Err(UpdateError::UnknownUpdate {
                        name: name.to_string(),
                        registered: if names.is_empty() { "none".into() } else { names.join(", ") },
                    });
                }
            }
        };
        validator(args).map_err(|r| match r {
            crate::replay::UpdateRejection::BadArguments(reason) => {
                UpdateError::BadArguments { name: name.to_string(), reason }
            }
            crate::replay::UpdateRejection::Rejected(reason) => {
                UpdateError::Rejected { name: name.to_string(), reason }
            }
        })
    }
}

fn command_event(cmd: Command) -> EventKind {
    match cmd {
        Command::ScheduleActivity { seq, activity_type, input, options } => {
            EventKind::ActivityScheduled { seq, activity_type, input, options }
        }
        Command::StartTimer { seq, fire_at } => EventKind::TimerStarted { seq, fire_at },
        Command::RecordSideEffect { seq, value } => EventKind::SideEffectRecorded { seq, value },
        Command::RecordPatch { seq, patch_id } => EventKind::PatchMarker { seq, patch_id },
        Command::StartChild { seq, workflow_type, workflow_id, input, parent_close_policy, start } => {
            EventKind::ChildWorkflowInitiated { seq, workflow_type, workflow_id, input, parent_close_policy, start }
        }
        Command::Cancel { seq, target, .. } => EventKind::CommandCancelled { seq, target },
        Command::SignalExternal { seq, workflow_id, name, payload } => {
            EventKind::ExternalSignalInitiated { seq, workflow_id, signal: name, payload }
        }
        Command::CancelExternal { seq, workflow_id, reason } => {
            EventKind::ExternalCancelInitiated { seq, workflow_id, reason }
        }
        Command::CompleteUpdate { seq, update_id, outcome } => EventKind::UpdateCompleted { seq, update_id, outcome },
        // Recorded by its marker when it has run (see `process_issued`); described as that.
        Command::RunLocalActivity { seq, activity_type, .. } => EventKind::LocalActivityRecorded {
            seq,
            activity_type,
            attempts: 0,
            outcome: crate::history::LocalActivityOutcome::Completed { result: Payload::null() },
        },
    }
}

/// What identifies a command on replay: its kind and target. Inputs, options and timer
/// durations may change between versions without breaking replay.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CommandKey {
    Activity(String),
    Timer,
    SideEffect,
    Child { workflow_type: String, workflow_id: String },
    Patch(String),
    Cancel { target: Seq },
    SignalExternal { workflow_id: String, name: String },
    CancelExternal { workflow_id: String },
    CompleteUpdate { update_id: String },
    LocalActivity(String),
}

impl CommandKey {
    fn of_event(kind: &EventKind) -> Option<CommandKey> {
        Some(match kind {
            EventKind::ActivityScheduled { activity_type, .. } => CommandKey::Activity(activity_type.clone()),
            EventKind::TimerStarted { .. } => CommandKey::Timer,
            EventKind::SideEffectRecorded { .. } => CommandKey::SideEffect,
            EventKind::ChildWorkflowInitiated { workflow_type, workflow_id, .. } => {
                CommandKey::Child { workflow_type: workflow_type.clone(), workflow_id: workflow_id.clone() }
            }
            EventKind::PatchMarker { patch_id, .. } => CommandKey::Patch(patch_id.clone()),
            EventKind::CommandCancelled { target, .. } => CommandKey::Cancel { target: *target },
            EventKind::ExternalSignalInitiated { workflow_id, signal, .. } => {
                CommandKey::SignalExternal { workflow_id: workflow_id.clone(), name: signal.clone() }
            }
            EventKind::ExternalCancelInitiated { workflow_id, .. } => {
                CommandKey::CancelExternal { workflow_id: workflow_id.clone() }
            }
            EventKind::UpdateCompleted { update_id, .. } => CommandKey::CompleteUpdate { update_id: update_id.clone() },
            EventKind::LocalActivityRecorded { activity_type, .. } => CommandKey::LocalActivity(activity_type.clone()),
            _ => return None,
        })
    }

    fn of_command(cmd: &Command) -> CommandKey {
        match cmd {
            Command::ScheduleActivity { activity_type, .. } => CommandKey::Activity(activity_type.clone()),
            Command::StartTimer { .. } => CommandKey::Timer,
            Command::RecordSideEffect { .. } => CommandKey::SideEffect,
            Command::StartChild { workflow_type, workflow_id, .. } => {
                CommandKey::Child { workflow_type: workflow_type.clone(), workflow_id: workflow_id.clone() }
            }
            Command::RecordPatch { patch_id, .. } => CommandKey::Patch(patch_id.clone()),
            Command::Cancel { target, .. } => CommandKey::Cancel { target: *target },
            Command::SignalExternal { workflow_id, name, .. } => {
                CommandKey::SignalExternal { workflow_id: workflow_id.clone(), name: name.clone() }
            }
            Command::CancelExternal { workflow_id, .. } => {
                CommandKey::CancelExternal { workflow_id: workflow_id.clone() }
            }
            Command::CompleteUpdate { update_id, .. } => CommandKey::CompleteUpdate { update_id: update_id.clone() },
            Command::RunLocalActivity { activity_type, .. } => CommandKey::LocalActivity(activity_type.clone()),
        }
    }

    /// As `EventKind::describe` names the recorded event.
    fn describe(&self, seq: Seq) -> String {
        match self {
            CommandKey::Activity(t) => format!("ActivityScheduled(seq {seq}, {t})"),
            CommandKey::Timer => format!("TimerStarted(seq {seq})"),
            CommandKey::SideEffect => format!("SideEffectRecorded(seq {seq})"),
            CommandKey::Child { workflow_type, workflow_id } => {
                format!("ChildWorkflowInitiated(seq {seq}, {workflow_type}, id {workflow_id})")
            }
            CommandKey::Patch(id) => format!("PatchMarker(seq {seq}, {id})"),
            CommandKey::Cancel { target } => format!("CommandCancelled(seq {seq}, of seq {target})"),
            CommandKey::SignalExternal { workflow_id, name } => {
                format!("ExternalSignalInitiated(seq {seq}, {name} to {workflow_id})")
            }
            CommandKey::CancelExternal { workflow_id } => {
                format!("ExternalCancelInitiated(seq {seq}, of {workflow_id})")
            }
            CommandKey::CompleteUpdate { update_id } => format!("UpdateCompleted(seq {seq}, id {update_id})"),
            CommandKey::LocalActivity(t) => format!("LocalActivityRecorded(seq {seq}, {t})"),
        }
    }
}

fn panic_error(panic: Box<dyn std::any::Any + Send>) -> WorkflowTaskError {
    let message = if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    };
    if message.contains("Tokio") || message.contains("tokio") || message.contains("reactor") {
        WorkflowTaskError::TokioInWorkflow { message }
    } else {
        WorkflowTaskError::Panic { message }
    }
}

#[cfg(test)]
mod tests;
