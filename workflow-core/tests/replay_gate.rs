//! The replay gate (`replay::Replayer`): recorded histories against new code, without running
//! anything. Compatible code passes; a changed command order, an extra command after the
//! recorded end, an unknown type and an unreadable file are each reported.

use std::time::Duration;

use workflow_core::replay::{ReplayOutcome, Replayer};
use workflow_core::store::RunFilter;
use workflow_core::{
    Activity, ActivityContext, ActivityError, StartOptions, Worker, WorkerOptions, Workflow, WorkflowContext,
    WorkflowError,
};

mod common;

struct Fetch;
impl Activity for Fetch {
    const NAME: &'static str = "fetch";
    type Input = u32;
    type Output = u32;
    async fn run(&self, _: ActivityContext, n: u32) -> Result<u32, ActivityError> {
        Ok(n + 1)
    }
}

struct Notify;
impl Activity for Notify {
    const NAME: &'static str = "notify";
    type Input = u32;
    type Output = ();
    async fn run(&self, _: ActivityContext, _: u32) -> Result<(), ActivityError> {
        Ok(())
    }
}

/// What is deployed: fetch, wait a minute, fetch again.
struct OrderV1;
impl Workflow for OrderV1 {
    const NAME: &'static str = "order";
    type Input = u32;
    type Output = u32;
    async fn run(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        let a = ctx.activity::<Fetch>(n).await?;
        ctx.sleep(Duration::from_secs(60)).await?;
        Ok(ctx.activity::<Fetch>(a).await?)
    }
}

/// A compatible change: the same commands, a different computation on their results.
struct OrderV1Refactored;
impl Workflow for OrderV1Refactored {
    const NAME: &'static str = "order";
    type Input = u32;
    type Output = u32;
    async fn run(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        let first = ctx.activity::<Fetch>(n).await?;
        ctx.sleep(Duration::from_secs(60)).await?;
        let second = ctx.activity::<Fetch>(first).await?;
        Ok(second)
    }
}

/// An incompatible change: a notification before the wait.
struct OrderNotifies;
impl Workflow for OrderNotifies {
    const NAME: &'static str = "order";
    type Input = u32;
    type Output = u32;
    async fn run(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        let a = ctx.activity::<Fetch>(n).await?;
        ctx.activity::<Notify>(a).await?;
        ctx.sleep(Duration::from_secs(60)).await?;
        Ok(ctx.activity::<Fetch>(a).await?)
    }
}

/// Another incompatible change: one more step at the end.
struct OrderLonger;
impl Workflow for OrderLonger {
    const NAME: &'static str = "order";
    type Input = u32;
    type Output = u32;
    async fn run(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        let a = ctx.activity::<Fetch>(n).await?;
        ctx.sleep(Duration::from_secs(60)).await?;
        let b = ctx.activity::<Fetch>(a).await?;
        ctx.activity::<Notify>(b).await?;
        Ok(b)
    }
}

fn replayer<W: Workflow>() -> Replayer {
    let mut r = Replayer::new();
    r.register_workflow::<W>().unwrap();
    r
}

#[tokio::test(start_paused = true)]
async fn the_gate_passes_compatible_code_and_pinpoints_incompatible_changes() {
    let (store, clock) = common::setup();
    let mut w = Worker::new(store.clone(), WorkerOptions::default()).with_clock(clock.clone());
    w.register_workflow::<OrderV1>().unwrap();
    w.register_activity(Fetch).unwrap();
    let w = w.start().unwrap();
    let client = w.client();
    // One finished run, one still waiting on its timer.
    assert_eq!(client.start::<OrderV1>("done", 1, StartOptions::default()).await.unwrap().result().await.unwrap(), 3);
    client.start::<OrderV1>("waiting", 10, StartOptions::default()).await.unwrap();
    common::eventually(&clock, "the second run waits", || {
        let c = client.clone();
        async move { c.history("waiting").await.unwrap().iter().any(|e| e.kind.name() == "TimerStarted") }
    })
    .await;
    drop(w);

    let all = RunFilter::default();
    let report = replayer::<OrderV1Refactored>().replay_store(&*store, &all).await.unwrap();
    assert!(report.passed(), "{report}");
    assert_eq!(report.ok(), 2);
    assert!(report
        .to_string()
        .ends_with("replay: 2 histories, 2 ok, 0 with problems: the code can take over every run\n"));

    // A command inserted in the middle: both runs diverge where the history has the timer.
    let report = replayer::<OrderNotifies>().replay_store(&*store, &all).await.unwrap();
    assert!(!report.passed());
    for run in &report.runs {
        match &run.outcome {
            ReplayOutcome::Diverged(d) => {
                assert_eq!(d.event_id, 5, "{run:?}");
                assert!(d.recorded.contains("TimerStarted"), "{d:?}");
                assert!(d.requested.contains("notify"), "{d:?}");
                // The line of the new `ctx.activity::<Notify>` call in this file.
                let at = d.location.as_deref().unwrap_or_default();
                let line: usize = at.split(':').nth(1).and_then(|n| n.parse().ok()).unwrap_or_default();
                let source = include_str!("replay_gate.rs").lines().nth(line.saturating_sub(1)).unwrap_or_default();
                assert!(
                    at.contains("tests/replay_gate.rs:") && source.contains("ctx.activity::<Notify>"),
                    "{d:?}: {source}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    let text = report.to_string();
    assert!(text.contains("DIVERGED done (run ") && text.contains("  at event 5\n"), "{text}");
    assert!(text.contains("  - history: ") && text.contains("  + code:    "), "{text}");
    assert!(text.contains("    issued at ") && text.contains("replay_gate.rs:"), "{text}");
    assert!(text.ends_with("2 with problems: do not deploy this code as it is\n"), "{text}");

    // A step added at the end: the finished run diverges at its end, the waiting one can go on.
    let report = replayer::<OrderLonger>().replay_store(&*store, &all).await.unwrap();
    let by_id = |id: &str| report.runs.iter().find(|r| r.workflow_id == id).unwrap().outcome.clone();
    match by_id("done") {
        ReplayOutcome::Diverged(d) => {
            // Event 10 is the run's WorkflowCompleted: the history has no fourth command.
            assert_eq!(d.event_id, 10, "{d:?}");
            assert!(d.recorded.contains("no command with seq 3"), "{d:?}");
            assert!(d.requested.contains("ActivityScheduled(seq 3, notify)"), "{d:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(by_id("waiting"), ReplayOutcome::Ok);

    // Files, as wf export writes them; an unknown type and an unreadable file are reported.
    let dir = std::env::temp_dir().join(format!("replay-gate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("done.json");
    std::fs::write(&file, serde_json::to_string(&client.history("done").await.unwrap()).unwrap()).unwrap();
    std::fs::write(dir.join("junk.json"), "{ not a history").unwrap();
    let report = replayer::<OrderV1>().replay_files([file.clone(), dir.join("junk.json"), dir.join("missing.json")]);
    assert_eq!(report.ok(), 1);
    assert!(matches!(report.runs[1].outcome, ReplayOutcome::Unreadable(_)));
    assert!(matches!(report.runs[2].outcome, ReplayOutcome::Unreadable(_)));
    let report = Replayer::new().replay_files([file]);
    assert!(matches!(&report.runs[0].outcome, ReplayOutcome::UnknownType { .. }), "{report}");
    std::fs::remove_dir_all(&dir).unwrap();
}
