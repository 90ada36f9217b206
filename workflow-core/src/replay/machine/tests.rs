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
    assert_eq!(replay.take_activation(), Activation { new_events: vec![], closed: true });
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
        prop_assert_eq!(replay.take_activation(), Activation { new_events: vec![], closed: true });
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
