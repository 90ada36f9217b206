//! State shared between a run's workflow code (through its context) and its machine.

use std::collections::{HashMap, VecDeque};
use std::task::Waker;

use crate::history::{ActivityFailure, ChildFailure};
use crate::ids::{RunId, Seq};
use crate::options::{ActivityCancellationType, ActivityOptions, Limits};
use crate::payload::Payload;
use crate::policy::ParentClosePolicy;
use crate::time::Timestamp;

/// What workflow code asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    ScheduleActivity {
        seq: Seq,
        activity_type: String,
        input: Payload,
        options: ActivityOptions,
    },
    StartTimer {
        seq: Seq,
        fire_at: Timestamp,
    },
    RecordSideEffect {
        seq: Seq,
        value: Payload,
    },
    RecordPatch {
        seq: Seq,
        patch_id: String,
    },
    StartChild {
        seq: Seq,
        workflow_type: String,
        workflow_id: String,
        input: Payload,
        parent_close_policy: ParentClosePolicy,
        start: crate::history::RunStart,
    },
    /// Signal workflow `workflow_id`.
    SignalExternal {
        seq: Seq,
        workflow_id: String,
        name: String,
        payload: Payload,
    },
    /// Ask workflow `workflow_id` to cancel.
    CancelExternal {
        seq: Seq,
        workflow_id: String,
        reason: String,
    },
    /// Run a local activity in this worker; recorded by its marker only.
    RunLocalActivity {
        seq: Seq,
        activity_type: String,
        input: Payload,
        options: ActivityOptions,
    },
    /// Answer accepted update `update_id`.
    CompleteUpdate {
        seq: Seq,
        update_id: String,
        outcome: crate::history::UpdateOutcome,
    },
    /// Cancel pending command `target`.
    Cancel {
        seq: Seq,
        target: Seq,
        what: CancelTarget,
    },
}

impl Command {
    pub(crate) fn seq(&self) -> Seq {
        match self {
            Command::ScheduleActivity { seq, .. }
            | Command::StartTimer { seq, .. }
            | Command::RecordSideEffect { seq, .. }
            | Command::StartChild { seq, .. }
            | Command::RecordPatch { seq, .. }
            | Command::Cancel { seq, .. }
            | Command::SignalExternal { seq, .. }
            | Command::CancelExternal { seq, .. }
            | Command::CompleteUpdate { seq, .. }
            | Command::RunLocalActivity { seq, .. } => *seq,
        }
    }
}

/// What a cancel command cancels.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CancelTarget {
    /// Try-cancel: resolved at once, its task removed.
    Activity,
    /// Asked to cancel; resolved when it ends.
    ActivityWait,
    /// Resolved at once; not told.
    ActivityAbandon,
    Timer,
    /// A child: asked to cancel (once started); its future resolves when it ends.
    Child {
        run_id: Option<RunId>,
    },
}

/// The outcome of a command, waiting for the future that asked for it.
#[derive(Debug, Clone)]
pub(crate) enum Resolution {
    Activity { activity_type: String, result: Result<Payload, ActivityFailure> },
    Timer { fired: bool },
    Child { result: Result<Payload, ChildFailure> },
    External { outcome: crate::history::ExternalOutcome },
}

#[derive(Debug)]
pub(crate) enum PendingKind {
    Activity { activity_type: String, cancellation: ActivityCancellationType },
    Timer { fire_at: Timestamp },
    Child { workflow_type: String, workflow_id: String, run_id: Option<RunId> },
    External,
}

#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) kind: PendingKind,
    pub(crate) waker: Option<Waker>,
}

/// A registered query handler, types erased.
pub(crate) type QueryHandler = std::rc::Rc<dyn Fn(&Payload) -> Result<Payload, String>>;

/// A registered update's validator, types erased: `Err` with a reason rejects the update.
pub(crate) type UpdateValidator = std::rc::Rc<dyn Fn(&Payload) -> Result<(), UpdateRejection>>;

/// Why a validator refused an update.
#[derive(Debug)]
pub(crate) enum UpdateRejection {
    /// The arguments do not decode as the update's type.
    BadArguments(String),
    /// The validator said no.
    Rejected(String),
}

/// An accepted update waiting for workflow code to receive it.
#[derive(Debug, Clone)]
pub(crate) struct AcceptedUpdate {
    pub(crate) update_id: String,
    pub(crate) name: String,
    pub(crate) args: Payload,
}

pub(crate) struct RunState {
    pub(crate) run_id: RunId,
    pub(crate) workflow_id: String,
    pub(crate) limits: Limits,
    pub(crate) now: Timestamp,
    rng: u64,
    next_seq: Seq,
    /// Commands issued since the machine last drained them.
    /// Commands issued since the machine last looked, with where in the workflow's source
    /// each was issued (for nondeterminism reports).
    pub(crate) issued: Vec<(Command, &'static std::panic::Location<'static>)>,
    /// Issued commands whose outcome has not arrived.
    pub(crate) pending: HashMap<Seq, Pending>,
    /// Outcomes not yet taken by their futures.
    pub(crate) resolved: HashMap<Seq, Resolution>,
    pub(crate) recorded_side_effects: HashMap<Seq, Payload>,
    pub(crate) recorded_patches: HashMap<Seq, String>,
    /// Decisions of `patched` so far, by patch id (stable within a run).
    pub(crate) patches: HashMap<String, bool>,
    /// Whether the input being processed was already processed once (its commands are in the
    /// history).
    pub(crate) replaying: bool,
    pub(crate) queries: HashMap<String, QueryHandler>,
    pub(crate) cancel_requested: bool,
    pub(crate) cancel_wakers: Vec<Waker>,
    pub(crate) signals: VecDeque<(String, Payload)>,
    pub(crate) signal_wakers: Vec<Waker>,
    /// Registered updates by name.
    pub(crate) update_validators: HashMap<String, UpdateValidator>,
    pub(crate) updates: VecDeque<AcceptedUpdate>,
    pub(crate) update_wakers: Vec<Waker>,
    /// Activities asked to cancel that the code waits for
    /// (`ActivityCancellationType::WaitCancellationCompleted`).
    pub(crate) activity_cancel_requested: std::collections::HashSet<Seq>,
    /// Commands that are local activities.
    pub(crate) local_seqs: std::collections::HashSet<Seq>,
    /// Children this run's code asked to cancel.
    pub(crate) children_cancelled: std::collections::HashSet<Seq>,
    /// Children asked to cancel before they started, with the asking command: asked once
    /// they start.
    pub(crate) cancel_when_started: HashMap<Seq, Seq>,
}

impl RunState {
    pub(crate) fn new(run_id: RunId, limits: Limits) -> Self {
        RunState {
            run_id,
            workflow_id: String::new(),
            limits,
            now: Timestamp(0),
            rng: 0,
            next_seq: 0,
            issued: Vec::new(),
            pending: HashMap::new(),
            resolved: HashMap::new(),
            recorded_side_effects: HashMap::new(),
            recorded_patches: HashMap::new(),
            patches: HashMap::new(),
            replaying: false,
            queries: HashMap::new(),
            cancel_requested: false,
            cancel_wakers: Vec::new(),
            signals: VecDeque::new(),
            signal_wakers: Vec::new(),
            update_validators: HashMap::new(),
            updates: VecDeque::new(),
            update_wakers: Vec::new(),
            activity_cancel_requested: Default::default(),
            local_seqs: Default::default(),
            children_cancelled: Default::default(),
            cancel_when_started: Default::default(),
        }
    }

    pub(crate) fn seed(&mut self, seed: u64) {
        self.rng = seed;
    }

    /// splitmix64: small, fast, and good enough for ids and jitter.
    pub(crate) fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn take_seq(&mut self) -> Seq {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    /// Whether workflow code has issued command `seq`: seqs are handed out densely in call
    /// order, so every seq below the counter was issued.
    pub(crate) fn seq_issued(&self, seq: Seq) -> bool {
        seq < self.next_seq
    }

    pub(crate) fn untake_seq(&mut self) {
        self.next_seq -= 1;
    }

    #[track_caller]
    pub(crate) fn issue(&mut self, cmd: Command) {
        let at = std::panic::Location::caller();
        match &cmd {
            Command::ScheduleActivity { seq, activity_type, options, .. }
            | Command::RunLocalActivity { seq, activity_type, options, .. } => {
                // A local activity runs in this worker, which has no way to tell it: cancelling
                // it resolves its future at once (its marker, if any, is ignored).
                let cancellation = if matches!(cmd, Command::RunLocalActivity { .. }) {
                    self.local_seqs.insert(*seq);
                    ActivityCancellationType::TryCancel
                } else {
                    options.cancellation_type
                };
                self.pending.insert(
                    *seq,
                    Pending {
                        kind: PendingKind::Activity { activity_type: activity_type.clone(), cancellation },
                        waker: None,
                    },
                );
            }
            Command::StartTimer { seq, fire_at } => {
                self.pending.insert(*seq, Pending { kind: PendingKind::Timer { fire_at: *fire_at }, waker: None });
            }
            Command::StartChild { seq, workflow_type, workflow_id, .. } => {
                self.pending.insert(
                    *seq,
                    Pending {
                        kind: PendingKind::Child {
                            workflow_type: workflow_type.clone(),
                            workflow_id: workflow_id.clone(),
                            run_id: None,
                        },
                        waker: None,
                    },
                );
            }
            Command::Cancel { seq, target, what: CancelTarget::Child { run_id } } => {
                self.children_cancelled.insert(*target);
                if run_id.is_none() {
                    self.cancel_when_started.insert(*target, *seq);
                }
            }
            Command::Cancel { target, what: CancelTarget::ActivityWait, .. } => {
                self.activity_cancel_requested.insert(*target);
            }
            Command::Cancel { target, .. } => {
                let resolution = match self.pending.get(target).map(|p| &p.kind) {
                    Some(PendingKind::Activity { activity_type, .. }) => Resolution::Activity {
                        activity_type: activity_type.clone(),
                        result: Err(ActivityFailure::Cancelled { activity_type: activity_type.clone() }),
                    },
                    _ => Resolution::Timer { fired: false },
                };
                self.resolve(*target, resolution);
            }
            Command::SignalExternal { seq, .. } | Command::CancelExternal { seq, .. } => {
                self.pending.insert(*seq, Pending { kind: PendingKind::External, waker: None });
            }
            Command::RecordSideEffect { .. } | Command::RecordPatch { .. } | Command::CompleteUpdate { .. } => {}
        }
        self.issued.push((cmd, at));
    }

    /// Cancels pending command `target`: an activity or a timer (try-cancel: its future
    /// resolves as cancelled at once), or a child (asked to cancel; its future resolves when
    /// it ends). Returns false, issuing nothing, when it is not pending (or a child already
    /// asked).
    #[track_caller]
    pub(crate) fn cancel_command(&mut self, target: Seq) -> bool {
        let what = match self.pending.get(&target).map(|p| &p.kind) {
            Some(PendingKind::Activity { cancellation, .. }) => match cancellation {
                ActivityCancellationType::WaitCancellationCompleted
                    if self.activity_cancel_requested.contains(&target) =>
                {
                    return false
                }
                ActivityCancellationType::WaitCancellationCompleted => CancelTarget::ActivityWait,
                ActivityCancellationType::Abandon => CancelTarget::ActivityAbandon,
                _ => CancelTarget::Activity,
            },
            Some(PendingKind::Timer { .. }) => CancelTarget::Timer,
            Some(PendingKind::Child { run_id, .. }) if !self.children_cancelled.contains(&target) => {
                CancelTarget::Child { run_id: run_id.clone() }
            }
            _ => return false,
        };
        let seq = self.take_seq();
        self.issue(Command::Cancel { seq, target, what });
        true
    }

    /// Takes the outcome for `seq`, or registers the waker to be woken when it arrives.
    pub(crate) fn take_resolution(&mut self, seq: Seq, waker: &Waker) -> Option<Resolution> {
        if let Some(r) = self.resolved.remove(&seq) {
            return Some(r);
        }
        if let Some(p) = self.pending.get_mut(&seq) {
            p.waker = Some(waker.clone());
        }
        None
    }

    /// Delivers an outcome; returns false when `seq` is not pending.
    pub(crate) fn resolve(&mut self, seq: Seq, r: Resolution) -> bool {
        match self.pending.remove(&seq) {
            Some(p) => {
                self.resolved.insert(seq, r);
                if let Some(w) = p.waker {
                    w.wake();
                }
                true
            }
            None => false,
        }
    }

    /// Whether a local activity waits for its marker.
    pub(crate) fn local_pending(&self) -> bool {
        self.local_seqs.iter().any(|s| self.pending.contains_key(s))
    }

    pub(crate) fn is_pending_activity(&self, seq: Seq) -> Option<&str> {
        match self.pending.get(&seq).map(|p| &p.kind) {
            Some(PendingKind::Activity { activity_type, .. }) => Some(activity_type),
            _ => None,
        }
    }

    pub(crate) fn pending_child(&self, seq: Seq) -> Option<(&str, &str)> {
        match self.pending.get(&seq).map(|p| &p.kind) {
            Some(PendingKind::Child { workflow_type, workflow_id, .. }) => Some((workflow_type, workflow_id)),
            _ => None,
        }
    }

    /// The run id of a started, still pending child.
    pub(crate) fn child_run_id(&self, seq: Seq) -> Option<&RunId> {
        match self.pending.get(&seq).map(|p| &p.kind) {
            Some(PendingKind::Child { run_id, .. }) => run_id.as_ref(),
            _ => None,
        }
    }

    /// When a run waits only on timers (no activity, no child): the earliest of them.
    pub(crate) fn parked_until(&self) -> Option<Timestamp> {
        let mut earliest: Option<Timestamp> = None;
        for p in self.pending.values() {
            match p.kind {
                PendingKind::Timer { fire_at } => earliest = Some(earliest.map_or(fire_at, |e| e.min(fire_at))),
                _ => return None,
            }
        }
        earliest
    }

    /// Records the run id of a started child.
    pub(crate) fn child_started(&mut self, seq: Seq, run: &RunId) {
        if let Some(Pending { kind: PendingKind::Child { run_id, .. }, .. }) = self.pending.get_mut(&seq) {
            *run_id = Some(run.clone());
        }
    }

    pub(crate) fn is_pending_external(&self, seq: Seq) -> bool {
        matches!(self.pending.get(&seq).map(|p| &p.kind), Some(PendingKind::External))
    }

    pub(crate) fn is_pending_timer(&self, seq: Seq) -> bool {
        matches!(self.pending.get(&seq).map(|p| &p.kind), Some(PendingKind::Timer { .. }))
    }

    /// Marks the run cancelled: every pending activity and timer resolves as cancelled, in seq
    /// order. Returns the events recording those cancellations.
    pub(crate) fn request_cancel(&mut self) -> Vec<crate::history::EventKind> {
        use crate::history::EventKind;
        self.cancel_requested = true;
        for w in self.cancel_wakers.drain(..) {
            w.wake();
        }
        // Started children are asked to cancel; their futures resolve when they end.
        let mut out = Vec::new();
        let mut children: Vec<(Seq, RunId)> = self
            .pending
            .iter()
            .filter_map(|(s, p)| match &p.kind {
                PendingKind::Child { run_id: Some(r), .. } if !self.children_cancelled.contains(s) => {
                    Some((*s, r.clone()))
                }
                _ => None,
            })
            .collect();
        children.sort_unstable_by_key(|(s, _)| *s);
        out.extend(children.into_iter().map(|(seq, run_id)| EventKind::ChildCancelRequested {
            seq,
            run_id,
            by_command: None,
        }));
        // Deliveries to other workflows go on: they are not this run's work to stop.
        let mut seqs: Vec<Seq> = self
            .pending
            .iter()
            .filter(|(_, p)| matches!(p.kind, PendingKind::Activity { .. } | PendingKind::Timer { .. }))
            .map(|(s, _)| *s)
            .collect();
        seqs.sort_unstable();
        for seq in seqs {
            if let Some(PendingKind::Activity { cancellation, .. }) = self.pending.get(&seq).map(|p| &p.kind) {
                if *cancellation == ActivityCancellationType::WaitCancellationCompleted {
                    // Told, and waited for: its future resolves when it ends.
                    if self.activity_cancel_requested.insert(seq) {
                        out.push(EventKind::ActivityCancelRequested { seq });
                    }
                    continue;
                }
            }
            let Some(p) = self.pending.remove(&seq) else {
                continue;
            };
            let (r, ev) = match p.kind {
                PendingKind::Activity { activity_type, cancellation } => (
                    Resolution::Activity {
                        result: Err(ActivityFailure::Cancelled { activity_type: activity_type.clone() }),
                        activity_type,
                    },
                    // An abandoned activity is not told (no event removes its task).
                    (cancellation != ActivityCancellationType::Abandon).then_some(EventKind::ActivityCancelled { seq }),
                ),
                PendingKind::Timer { .. } => {
                    (Resolution::Timer { fired: false }, Some(EventKind::TimerCancelled { seq }))
                }
                PendingKind::Child { .. } | PendingKind::External => {
                    unreachable!("only activities and timers are selected above")
                }
            };
            self.resolved.insert(seq, r);
            if let Some(w) = p.waker {
                w.wake();
            }
            out.extend(ev);
        }
        out
    }
}
