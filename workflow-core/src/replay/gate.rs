//! The replay gate: replays recorded histories against the workflow code registered now,
//! without running any activity, timer or child, and reports for each run whether the code
//! still issues the commands its history recorded, or where it first diverges. Run it in CI
//! before a deploy, on the histories of the runs in flight (and of recent ones): a divergence
//! there is the nondeterminism error a worker would hit in production after the deploy.

use std::fmt;
use std::path::Path;

use crate::error::{StoreError, WorkerError, WorkflowTaskError};
use crate::history::{Event, EventKind};
use crate::ids::{EventId, RunId};
use crate::options::Limits;
use crate::replay::RunMachine;
use crate::store::{RunFilter, Store};
use crate::workflow::Workflow;

/// Replays histories against registered workflow code.
///
/// ```
/// use workflow_core::replay::Replayer;
/// # use workflow_core::{Workflow, WorkflowContext, WorkflowError};
/// # struct Order;
/// # impl Workflow for Order {
/// #     const NAME: &'static str = "order";
/// #     type Input = ();
/// #     type Output = ();
/// #     async fn run(_ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> { Ok(()) }
/// # }
/// let mut replayer = Replayer::new();
/// replayer.register_workflow::<Order>().unwrap();
/// let report = replayer.replay_files(["histories/order-7.json"]);
/// // An unreadable file is reported, not skipped: the gate does not pass.
/// assert!(!report.passed());
/// println!("{report}");
/// ```
#[derive(Default)]
pub struct Replayer {
    registry: crate::worker::Registry,
    limits: Limits,
}

impl Replayer {
    /// A replayer with no workflow registered.
    pub fn new() -> Replayer {
        Replayer::default()
    }

    /// Registers workflow `W` (as on a [`Worker`](crate::Worker)).
    pub fn register_workflow<W: Workflow>(&mut self) -> Result<&mut Replayer, WorkerError> {
        self.registry.add_workflow::<W>()?;
        Ok(self)
    }

    /// Replays one run's whole history (as `wf history --json` writes it). `source` names it
    /// in the report.
    pub fn replay_history(&self, source: &str, history: &[Event]) -> RunReplay {
        let (workflow_type, workflow_id) = match history.first().map(|e| &e.kind) {
            Some(EventKind::WorkflowStarted { workflow_type, workflow_id, .. }) => {
                (workflow_type.clone(), workflow_id.clone())
            }
            _ => {
                return RunReplay {
                    source: source.to_string(),
                    workflow_type: String::new(),
                    workflow_id: String::new(),
                    events: history.len(),
                    outcome: ReplayOutcome::Failed("the history does not begin with WorkflowStarted".into()),
                }
            }
        };
        let mut run = RunReplay {
            source: source.to_string(),
            workflow_type: workflow_type.clone(),
            workflow_id,
            events: history.len(),
            outcome: ReplayOutcome::Ok,
        };
        let Some(f) = self.registry.workflows.get(&workflow_type) else {
            let registered: Vec<&str> = self.registry.workflows.keys().map(String::as_str).collect();
            run.outcome = ReplayOutcome::UnknownType { registered: registered.join(", ") };
            return run;
        };
        let mut machine = RunMachine::new(RunId(format!("replay of {source}")), *f, self.limits.clone());
        run.outcome = match machine.apply(history) {
            Err(WorkflowTaskError::Nondeterminism(e)) => ReplayOutcome::Diverged(Divergence {
                event_id: e.event_id,
                recorded: e.recorded,
                requested: e.requested,
                location: e.location,
            }),
            Err(other) => ReplayOutcome::Failed(other.to_string()),
            Ok(()) => {
                let activation = machine.take_activation();
                match history.iter().find(|e| e.kind.is_terminal()) {
                    // A closed run's code must not want more than its history holds.
                    Some(end) if !activation.new_events.is_empty() => ReplayOutcome::Diverged(Divergence {
                        event_id: end.id,
                        recorded: format!("{} (the run had ended)", end.kind.name()),
                        requested: activation.new_events.iter().map(describe).collect::<Vec<_>>().join(", "),
                        location: None,
                    }),
                    _ => ReplayOutcome::Ok,
                }
            }
        };
        run
    }

    /// Replays the history of every run in `store` that `filter` selects (closed runs too).
    pub async fn replay_store(&self, store: &dyn Store, filter: &RunFilter) -> Result<ReplayReport, StoreError> {
        let mut report = ReplayReport::default();
        for info in store.list_runs(filter).await? {
            let history = store.read_history(&info.run_id, 0).await?;
            let source = format!("{} (run {})", info.workflow_id, info.run_id);
            report.runs.push(self.replay_history(&source, &history));
        }
        Ok(report)
    }

    /// Replays histories saved as JSON files (`wf history --json`, `wf export`). A file that
    /// cannot be read or parsed is reported as such, so the gate does not pass by accident.
    pub fn replay_files<P: AsRef<Path>>(&self, paths: impl IntoIterator<Item = P>) -> ReplayReport {
        let mut report = ReplayReport::default();
        for path in paths {
            let path = path.as_ref();
            let source = path.display().to_string();
            let parsed = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|text| serde_json::from_str::<Vec<Event>>(&text).map_err(|e| e.to_string()));
            report.runs.push(match parsed {
                Ok(history) => self.replay_history(&source, &history),
                Err(e) => RunReplay {
                    source,
                    workflow_type: String::new(),
                    workflow_id: String::new(),
                    events: 0,
                    outcome: ReplayOutcome::Unreadable(e),
                },
            });
        }
        report
    }
}

fn describe(e: &EventKind) -> String {
    match e {
        EventKind::ActivityScheduled { seq, activity_type, .. } => {
            format!("ActivityScheduled(seq {seq}, {activity_type})")
        }
        EventKind::ChildWorkflowInitiated { seq, workflow_type, .. } => {
            format!("ChildWorkflowInitiated(seq {seq}, {workflow_type})")
        }
        other => other.name().to_string(),
    }
}

/// How one run's replay went.
#[derive(Clone, Debug, PartialEq)]
pub struct RunReplay {
    /// Where the history came from: `workflow-id (run <id>)` or a file's path.
    pub source: String,
    /// The workflow type its `WorkflowStarted` names.
    pub workflow_type: String,
    /// The workflow id.
    pub workflow_id: String,
    /// Events in the history.
    pub events: usize,
    /// The verdict.
    pub outcome: ReplayOutcome,
}

/// The verdict on one history.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ReplayOutcome {
    /// The code issues exactly the commands the history recorded.
    Ok,
    /// The code and the history disagree, first at this event.
    Diverged(Divergence),
    /// No code is registered for the history's workflow type.
    UnknownType {
        /// The types registered.
        registered: String,
    },
    /// The replay failed otherwise (the code panicked, the history is malformed).
    Failed(String),
    /// The file could not be read or is not a history.
    Unreadable(String),
}

/// Where code and history first disagree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The history event where they disagree.
    pub event_id: EventId,
    /// What the history holds there.
    pub recorded: String,
    /// What the code asked for instead.
    pub requested: String,
    /// Where in the workflow's source it asked for it, when known (`src/flows.rs:42:17`).
    pub location: Option<String>,
}

/// The verdicts on many histories: `passed()` is the CI check.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayReport {
    /// One entry per history, in the order replayed.
    pub runs: Vec<RunReplay>,
}

impl ReplayReport {
    /// Whether every history replayed cleanly.
    pub fn passed(&self) -> bool {
        self.runs.iter().all(|r| r.outcome == ReplayOutcome::Ok)
    }

    /// The histories that replayed cleanly.
    pub fn ok(&self) -> usize {
        self.runs.iter().filter(|r| r.outcome == ReplayOutcome::Ok).count()
    }

    /// The runs that did not replay cleanly.
    pub fn problems(&self) -> impl Iterator<Item = &RunReplay> {
        self.runs.iter().filter(|r| r.outcome != ReplayOutcome::Ok)
    }
}

impl fmt::Display for ReplayReport {
    /// One line per problem, with the structured diff, then a summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in self.problems() {
            match &r.outcome {
                ReplayOutcome::Diverged(d) => {
                    writeln!(f, "DIVERGED {} ({}), {} events", r.source, r.workflow_type, r.events)?;
                    writeln!(f, "  at event {}", d.event_id)?;
                    writeln!(f, "  - history: {}", d.recorded)?;
                    writeln!(f, "  + code:    {}", d.requested)?;
                    if let Some(at) = &d.location {
                        writeln!(f, "    issued at {at}")?;
                    }
                }
                ReplayOutcome::UnknownType { registered } => writeln!(
                    f,
                    "UNKNOWN  {}: workflow type {:?} is not registered (registered: {registered})",
                    r.source, r.workflow_type
                )?,
                ReplayOutcome::Failed(why) => writeln!(f, "FAILED   {}: {why}", r.source)?,
                ReplayOutcome::Unreadable(why) => writeln!(f, "UNREADABLE {}: {why}", r.source)?,
                ReplayOutcome::Ok => {}
            }
        }
        let problems = self.runs.len() - self.ok();
        writeln!(
            f,
            "replay: {} histor{}, {} ok, {problems} with problems: {}",
            self.runs.len(),
            if self.runs.len() == 1 { "y" } else { "ies" },
            self.ok(),
            if problems == 0 { "the code can take over every run" } else { "do not deploy this code as it is" }
        )
    }
}
