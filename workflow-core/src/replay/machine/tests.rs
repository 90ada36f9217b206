//! The pure core, without a runtime: feed events, assert the events the code produces.
use super::*;
use crate::activity::{Activity, ActivityContext, ActivityError};
use crate::history::check_invariants;
use crate::time::Timestamp;
use crate::workflow::Workflow;
use futures::future::{join_all, select, Either};
use proptest::prelude::*;

struct Double;
impl Activity for Double {
    const NAME: &'static str = "double";
    type Input = u64;
    type Output = u64;
    async fn run(&self, _: ActivityContext, n: u64) -> Result<u64, ActivityError> {
        Ok(n * 2)
    }
}

struct Other;
impl Activity for Other {
    const NAME: &'static str = "other";
    type Input = u64;
    type Output = u64;
    async fn run(&self, _: ActivityContext, n: u64) -> Result<u64, ActivityError> {
        Ok(n)
    }
}

/// Doubles each input concurrently, then sums; draws a random number and a side effect.
struct FanOut;
impl Workflow for FanOut {
    const NAME: &'static str = "fan_out";
    type Input = Vec<u64>;
    type Output = (u64, u64, u64);
    async fn run(ctx: WorkflowContext, input: Vec<u64>) -> Result<(u64, u64, u64), WorkflowError> {
        let r = ctx.random();
        let se: u64 = ctx.side_effect(|| 99)?;
        let futs: Vec<_> = input.into_iter().map(|n| ctx.activity::<Double>(n)).collect();
        let mut sum = 0;
        for r in join_all(futs).await {
            sum += r?;
        }
        ctx.sleep(std::time::Duration::from_secs(5)).await?;
        Ok((sum, r, se))
    }
}

/// Races two activities and reports which won.
struct Race;
impl Workflow for Race {
    const NAME: &'static str = "race";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let a = ctx.activity::<Double>(1);
        let b = ctx.activity::<Other>(2);
        Ok(match select(a, b).await {
            Either::Left(_) => "double".into(),
            Either::Right(_) => "other".into(),
        })
    }
}

struct OtherFirst;
impl Workflow for OtherFirst {
    const NAME: &'static str = "fan_out";
    type Input = Vec<u64>;
    type Output = u64;
    async fn run(ctx: WorkflowContext, _: Vec<u64>) -> Result<u64, WorkflowError> {
        let _ = ctx.random();
        let _: u64 = ctx.side_effect(|| 99)?;
        Ok(ctx.activity::<Other>(1).await?)
    }
}

fn wf<W: Workflow>() -> WorkflowFn {
    let mut r = crate::worker::Registry::default();
    r.add_workflow::<W>().unwrap();
    *r.workflows.get(W::NAME).unwrap()
}

fn started(input: Payload) -> Event {
    Event {
        id: 1,
        time: Timestamp(1000),
        kind: EventKind::WorkflowStarted {
            workflow_type: "t".into(),
            workflow_id: "wf".into(),
            input,
            seed: 42,
            parent: None,
            start: crate::history::RunStart::plain(),
        },
    }
}

/// A live run, as the worker drives it: after each input, the new events are committed
/// and fed back. `pick` chooses which pending outcome arrives next.
fn live(f: WorkflowFn, input: Payload, mut pick: impl FnMut(usize) -> usize) -> (Vec<Event>, RunMachine) {
    let mut m = RunMachine::new(RunId("r".into()), f, Limits::default());
    let mut history = vec![started(input)];
    m.apply(&history).unwrap();
    let mut time = 1000;
    loop {
        let act = m.take_activation();
        time += 10;
        let base = history.len() as EventId;
        let committed: Vec<Event> = act
            .new_events
            .into_iter()
            .enumerate()
            .map(|(i, kind)| Event { id: base + 1 + i as EventId, time: Timestamp(time), kind })
            .collect();
        history.extend(committed.iter().cloned());
        m.apply(&committed).unwrap();
        if m.is_closed() {
            return (history, m);
        }
        // Outcomes for every pending command, in the order `pick` chooses.
        let pending: Vec<(Seq, Option<u64>)> = history
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::ActivityScheduled { seq, input, .. } => Some((*seq, input.decode::<u64>("x").ok())),
                EventKind::TimerStarted { seq, .. } => Some((*seq, None)),
                _ => None,
            })
            .filter(|(seq, _)| {
                !history.iter().any(|e| {
                    matches!(&e.kind, EventKind::ActivityCompleted { seq: s, .. } | EventKind::TimerFired { seq: s } if s == seq)
                })
            })
            .collect();
        assert!(!pending.is_empty(), "workflow waits on nothing");
        let (seq, input) = pending[pick(pending.len()) % pending.len()];
        time += 10;
        let inputs = match input {
            Some(n) => vec![
                EventKind::ActivityStarted { seq, attempt: 1, worker: "w".into() },
                EventKind::ActivityCompleted { seq, result: Payload::encode(&(n * 2)).unwrap() },
            ],
            None => vec![EventKind::TimerFired { seq }],
        };
        let base = history.len() as EventId;
        let evs: Vec<Event> = inputs
            .into_iter()
            .enumerate()
            .map(|(i, kind)| Event { id: base + 1 + i as EventId, time: Timestamp(time), kind })
            .collect();
        history.extend(evs.iter().cloned());
        m.apply(&evs).unwrap();
    }
}

fn result_of(history: &[Event]) -> Payload {
    match &history.last().unwrap().kind {
        EventKind::WorkflowCompleted { result } => result.clone(),
        other => panic!("run did not complete: {other:?}"),
    }
}

#[test]
fn first_activation_schedules_everything_concurrently() {
    let mut m = RunMachine::new(RunId("r".into()), wf::<FanOut>(), Limits::default());
    m.apply(&[started(Payload::encode(&vec![1u64, 2, 3]).unwrap())]).unwrap();
    let act = m.take_activation();
    let names: Vec<String> = act.new_events.iter().map(EventKind::describe).collect();
    assert_eq!(
        names,
        vec![
            "SideEffectRecorded(seq 0)",
            "ActivityScheduled(seq 1, double)",
            "ActivityScheduled(seq 2, double)",
            "ActivityScheduled(seq 3, double)"
        ]
    );
    assert!(!act.closed);
}

#[test]
fn replaying_a_history_produces_nothing_new_and_the_same_result() {
    let (history, _) = live(wf::<FanOut>(), Payload::encode(&vec![1u64, 2, 3]).unwrap(), |n| n - 1);
    check_invariants(&history).unwrap();
    let result = result_of(&history);
    let (sum, _, se): (u64, u64, u64) = result.decode("r").unwrap();
    assert_eq!((sum, se), (12, 99));
    let mut replay = RunMachine::new(RunId("r".into()), wf::<FanOut>(), Limits::default());
    replay.apply(&history).unwrap();
    assert_eq!(replay.take_activation(), Activation { closed: true, ..Activation::default() });
}

#[test]
fn select_resolves_in_history_order() {
    // The second-scheduled activity completes first in history: it wins, live and on replay.
    let (history, _) = live(wf::<Race>(), Payload::null(), |n| n - 1);
    assert_eq!(result_of(&history), Payload::encode(&"other").unwrap());
    let (history, _) = live(wf::<Race>(), Payload::null(), |_| 0);
    assert_eq!(result_of(&history), Payload::encode(&"double").unwrap());
    let mut replay = RunMachine::new(RunId("r".into()), wf::<Race>(), Limits::default());
    replay.apply(&history).unwrap();
    assert!(replay.take_activation().new_events.is_empty());
}

#[test]
fn changed_code_is_a_nondeterminism_error_naming_both_sides() {
    let (history, _) = live(wf::<FanOut>(), Payload::encode(&vec![1u64]).unwrap(), |_| 0);
    let mut m = RunMachine::new(RunId("r".into()), wf::<OtherFirst>(), Limits::default());
    let err = m.apply(&history).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, WorkflowTaskError::Nondeterminism(NondeterminismError { event_id: 3, .. })), "{msg}");
    assert!(msg.contains("[WF-NONDET]"), "{msg}");
    assert!(msg.contains("ActivityScheduled(seq 1, double)"), "{msg}");
    assert!(msg.contains("ActivityScheduled(seq 1, other)"), "{msg}");
}

#[test]
fn missing_command_is_detected() {
    // History holds an activity the code never asks for (the code finishes first).
    struct Nothing;
    impl Workflow for Nothing {
        const NAME: &'static str = "fan_out";
        type Input = Vec<u64>;
        type Output = u64;
        async fn run(_: WorkflowContext, _: Vec<u64>) -> Result<u64, WorkflowError> {
            Ok(0)
        }
    }
    let (history, _) = live(wf::<FanOut>(), Payload::encode(&vec![1u64]).unwrap(), |_| 0);
    let mut m = RunMachine::new(RunId("r".into()), wf::<Nothing>(), Limits::default());
    let msg = m.apply(&history).unwrap_err().to_string();
    assert!(msg.contains("[WF-NONDET]") && msg.contains("SideEffectRecorded(seq 0), code asked for nothing"), "{msg}");
}

#[test]
fn workflow_panics_are_caught() {
    struct Boom;
    impl Workflow for Boom {
        const NAME: &'static str = "boom";
        type Input = ();
        type Output = ();
        async fn run(_: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
            panic!("kaboom")
        }
    }
    let mut m = RunMachine::new(RunId("r".into()), wf::<Boom>(), Limits::default());
    let err = m.apply(&[started(Payload::null())]).unwrap_err();
    assert_eq!(err, WorkflowTaskError::Panic { message: "kaboom".into() });
}

#[test]
fn tokio_in_workflow_code_is_reported() {
    struct Sleepy;
    impl Workflow for Sleepy {
        const NAME: &'static str = "sleepy";
        type Input = ();
        type Output = ();
        async fn run(_: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            Ok(())
        }
    }
    let mut m = RunMachine::new(RunId("r".into()), wf::<Sleepy>(), Limits::default());
    let err = m.apply(&[started(Payload::null())]).unwrap_err();
    assert!(matches!(err, WorkflowTaskError::TokioInWorkflow { .. }), "{err}");
    assert!(err.to_string().contains("use ctx.sleep"), "{err}");
}

#[test]
fn cancellation_resolves_pending_work_and_records_it() {
    let mut m = RunMachine::new(RunId("r".into()), wf::<FanOut>(), Limits::default());
    m.apply(&[started(Payload::encode(&vec![1u64, 2]).unwrap())]).unwrap();
    let first = m.take_activation().new_events;
    let evs: Vec<Event> = first
        .into_iter()
        .enumerate()
        .map(|(i, kind)| Event { id: 2 + i as EventId, time: Timestamp(1000), kind })
        .collect();
    m.apply(&evs).unwrap();
    let cancel =
        Event { id: 5, time: Timestamp(2000), kind: EventKind::CancelRequested { reason: None, sender: None } };
    m.apply(&[cancel]).unwrap();
    let act = m.take_activation();
    let names: Vec<&str> = act.new_events.iter().map(EventKind::name).collect();
    assert_eq!(names, vec!["ActivityCancelled", "ActivityCancelled", "WorkflowCancelled"]);
    assert!(act.closed);
}

proptest! {
    /// Any completion order gives a well-formed history, and replaying it reproduces the
    /// run exactly: no new commands, the same result.
    #[test]
    fn any_completion_order_replays_identically(inputs in proptest::collection::vec(0u64..1000, 1..8), picks in proptest::collection::vec(0usize..100, 0..20)) {
        let mut it = picks.into_iter();
        let (history, _) = live(wf::<FanOut>(), Payload::encode(&inputs).unwrap(), |n| it.next().unwrap_or(0) % n);
        prop_assert!(check_invariants(&history).is_ok());
        prop_assert_eq!(history.iter().filter(|e| e.kind.is_terminal()).count(), 1);
        let (sum, _, _): (u64, u64, u64) = result_of(&history).decode("r").unwrap();
        prop_assert_eq!(sum, inputs.iter().map(|n| n * 2).sum::<u64>());
        let mut replay = RunMachine::new(RunId("r".into()), wf::<FanOut>(), Limits::default());
        replay.apply(&history).unwrap();
        prop_assert_eq!(replay.take_activation(), Activation { closed: true, ..Activation::default() });
        // Replaying in slices cut before inputs (as a cached run receives deltas: whole
        // appends) agrees too.
        let mut sliced = RunMachine::new(RunId("r".into()), wf::<FanOut>(), Limits::default());
        let mut start = 0;
        for i in 1..=history.len() {
            if i == history.len() || !history[i].kind.is_from_workflow_task() {
                sliced.apply(&history[start..i]).unwrap();
                start = i;
            }
        }
        prop_assert!(sliced.take_activation().new_events.is_empty());
    }
}

/// Schedules an activity, cancels it at once, then runs another.
struct CancelFirst;
impl Workflow for CancelFirst {
    const NAME: &'static str = "cancel_first";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let a = ctx.activity::<Double>(1);
        assert!(a.cancel());
        let first = match a.await {
            Err(crate::ActivityFailure::Cancelled { .. }) => "cancelled",
            _ => "not cancelled",
        };
        let b = ctx.activity::<Other>(2).await?;
        Ok(format!("{first} {b}"))
    }
}

fn at(id: EventId, kind: EventKind) -> Event {
    Event { id, time: Timestamp(1000 + id * 10), kind }
}

#[test]
fn a_cancel_is_a_command_with_its_consequence_and_replays_without_new_events() {
    let mut m = RunMachine::new(RunId("r".into()), wf::<CancelFirst>(), Limits::default());
    m.apply(&[started(Payload::null())]).unwrap();
    let names: Vec<String> = m.take_activation().new_events.iter().map(EventKind::describe).collect();
    assert_eq!(
        names,
        [
            "ActivityScheduled(seq 0, double)",
            "CommandCancelled(seq 1, of seq 0)",
            "ActivityCancelled",
            "ActivityScheduled(seq 2, other)"
        ]
    );
    let mut history = vec![started(Payload::null())];
    let schedule = |seq, activity_type: &str, n: u64| EventKind::ActivityScheduled {
        seq,
        activity_type: activity_type.into(),
        input: Payload::encode(&n).unwrap(),
        options: crate::ActivityOptions::default(),
    };
    history.push(at(2, schedule(0, "double", 1)));
    history.push(at(3, EventKind::CommandCancelled { seq: 1, target: 0 }));
    history.push(at(4, EventKind::ActivityCancelled { seq: 0 }));
    history.push(at(5, schedule(2, "other", 2)));
    history.push(at(6, EventKind::ActivityCompleted { seq: 2, result: Payload::encode(&2u64).unwrap() }));
    history.push(at(7, EventKind::WorkflowCompleted { result: Payload::encode(&"cancelled 2").unwrap() }));
    let mut replay = RunMachine::new(RunId("r".into()), wf::<CancelFirst>(), Limits::default());
    replay.apply(&history).unwrap();
    assert_eq!(replay.take_activation(), Activation { closed: true, ..Activation::default() });

    // A history whose cancel targets another command is not this code's.
    history[2] = at(3, EventKind::CommandCancelled { seq: 1, target: 2 });
    let mut other = RunMachine::new(RunId("r".into()), wf::<CancelFirst>(), Limits::default());
    let err = other.apply(&history).unwrap_err();
    assert!(matches!(err, WorkflowTaskError::Nondeterminism(_)), "{err}");
    assert!(err.to_string().contains("CommandCancelled(seq 1, of seq 2)"), "{err}");
}

struct Shout;
impl crate::Signal for Shout {
    const NAME: &'static str = "shout";
    type Payload = String;
}

/// Signals workflow "x" and reports the outcome.
struct SignalX;
impl Workflow for SignalX {
    const NAME: &'static str = "signal_x";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        Ok(match ctx.signal_workflow::<Shout>("x", "hi".into()).await {
            Ok(()) => "delivered".into(),
            Err(e) => e.to_string(),
        })
    }
}

#[test]
fn an_external_signal_resolves_with_its_recorded_outcome() {
    use crate::history::ExternalOutcome;
    for (outcome, expected) in [
        (ExternalOutcome::Delivered, "delivered"),
        (ExternalOutcome::NotFound, "no workflow \"x\" to deliver to"),
        (ExternalOutcome::AlreadyClosed, "workflow \"x\" is already closed"),
    ] {
        let mut m = RunMachine::new(RunId("r".into()), wf::<SignalX>(), Limits::default());
        m.apply(&[started(Payload::null())]).unwrap();
        let new = m.take_activation().new_events;
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].describe(), "ExternalSignalInitiated(seq 0, shout to x)");
        let history = [at(2, new[0].clone()), at(3, EventKind::ExternalDelivered { seq: 0, outcome })];
        m.apply(&history).unwrap();
        let act = m.take_activation();
        assert!(act.closed);
        assert_eq!(act.new_events, vec![EventKind::WorkflowCompleted { result: Payload::encode(&expected).unwrap() }]);
    }
    // An outcome for a delivery the code never asked for.
    let mut m = RunMachine::new(RunId("r".into()), wf::<CancelFirst>(), Limits::default());
    let err = m
        .apply(&[
            started(Payload::null()),
            at(2, EventKind::ExternalDelivered { seq: 7, outcome: ExternalOutcome::Delivered }),
        ])
        .unwrap_err();
    assert!(matches!(err, WorkflowTaskError::Nondeterminism(_)), "{err}");
}

struct Rename;
impl crate::workflow::Update for Rename {
    const NAME: &'static str = "rename";
    type Args = String;
    type Output = usize;
}

/// Answers renames with the name's length until one is "stop"; refuses empty names.
struct Renamer;
impl Workflow for Renamer {
    const NAME: &'static str = "renamer";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let renames = ctx.register_update_with::<Rename>(|n| if n.is_empty() { Err("empty".into()) } else { Ok(()) });
        loop {
            let r = renames.next().await?;
            let name = r.args().clone();
            r.complete(&name.len());
            if name == "stop" {
                return Ok(name);
            }
        }
    }
}

#[test]
fn updates_are_validated_on_the_current_state_and_answered_as_commands() {
    let mut m = RunMachine::new(RunId("r".into()), wf::<Renamer>(), Limits::default());
    m.apply(&[started(Payload::null())]).unwrap();
    assert!(m.take_activation().new_events.is_empty());
    let arg = |s: &str| Payload::encode(&s.to_string()).unwrap();
    assert!(matches!(
        m.validate_update("rename", &arg("")),
        Err(crate::error::UpdateError::Rejected { reason, .. }) if reason == "empty"
    ));
    assert!(matches!(m.validate_update("other", &arg("x")), Err(crate::error::UpdateError::UnknownUpdate { .. })));
    assert!(m.validate_update("rename", &arg("ada")).is_ok());
    let accepted = |id: EventId, update_id: &str, name: &str| Event {
        id,
        time: Timestamp(2000),
        kind: EventKind::UpdateAccepted { update_id: update_id.into(), name: "rename".into(), args: arg(name) },
    };
    m.apply(&[accepted(2, "u1", "ada")]).unwrap();
    let act = m.take_activation();
    assert_eq!(
        act.new_events,
        vec![EventKind::UpdateCompleted {
            seq: 0,
            update_id: "u1".into(),
            outcome: crate::history::UpdateOutcome::Completed { result: Payload::encode(&3usize).unwrap() },
        }]
    );
    let answered = Event { id: 3, time: Timestamp(2000), kind: act.new_events[0].clone() };
    m.apply(&[answered.clone(), accepted(4, "u2", "stop")]).unwrap();
    let names: Vec<&str> = m.take_activation().new_events.iter().map(EventKind::name).collect();
    assert_eq!(names, ["UpdateCompleted", "WorkflowCompleted"]);

    // Replaying the recorded history issues nothing new; the update answered is not answered twice.
    let mut replay = RunMachine::new(RunId("r".into()), wf::<Renamer>(), Limits::default());
    replay.apply(&[started(Payload::null()), accepted(2, "u1", "ada"), answered]).unwrap();
    assert!(replay.take_activation().new_events.is_empty());
}
