//! The replay gate on the batch: `batch-example --check-replay` passes on a store the same
//! build wrote (and writes nothing to it), and the gate catches a real change of the batch
//! workflow with the event and both sides.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use batch_example::activities::LoadInput;
use batch_example::summary::BatchSummary;
use batch_example::workflows::{load_workflow_id, BatchInput, LoadChunksWorkflow};
use workflow_core::replay::ReplayOutcome;
use workflow_core::store::RunFilter;
use workflow_core::{ChildWorkflowOptions, Workflow, WorkflowContext, WorkflowError};
use workflow_store_sled::SledStore;

const BIN: &str = env!("CARGO_BIN_EXE_batch-example");

fn batch(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["--rows", "300", "--chunk-size", "100", "--db"])
        .arg(dir.join("db"))
        .arg("--out")
        .arg(dir.join("out"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A "new version" of the batch that loads the CSV with a different child id: a change a
/// developer could make without thinking of the runs in flight.
struct RenamedLoader;
impl Workflow for RenamedLoader {
    const NAME: &'static str = "batch";
    type Input = BatchInput;
    type Output = BatchSummary;
    async fn run(ctx: WorkflowContext, input: BatchInput) -> Result<BatchSummary, WorkflowError> {
        let id = format!("{}/loader", ctx.workflow_id());
        let load = LoadInput {
            path: input.input.clone(),
            chunk_size: input.chunk_size,
            max_record_bytes: input.max_record_bytes,
        };
        ctx.child_with::<LoadChunksWorkflow>(load, ChildWorkflowOptions::default().id(id)).await?;
        Ok(BatchSummary::default())
    }
}

#[test]
fn check_replay_passes_on_this_builds_store_and_catches_a_changed_batch() {
    let dir = tempfile::tempdir().unwrap();
    common::assert_success(&batch(dir.path(), &[]));

    let files = |p: &Path| {
        let mut v: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
            .collect();
        v.sort();
        v
    };
    let before = files(&dir.path().join("db"));
    let out = batch(dir.path(), &["--check-replay"]);
    common::assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    // The batch, its loader and three chunks.
    assert!(text.contains("replay: 5 histories, 5 ok, 0 with problems"), "{text}");
    assert!(files(&dir.path().join("db")) == before, "--check-replay wrote to the store");

    // The changed batch: the gate says where and how it diverges.
    let store = SledStore::open_snapshot(dir.path().join("db")).unwrap();
    let gate = batch_example::app::replayer();
    let mut changed = workflow_core::replay::Replayer::new();
    changed.register_workflow::<RenamedLoader>().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let filter = RunFilter::default().workflow_type("batch");
    let report = rt.block_on(changed.replay_store(&store, &filter)).unwrap();
    assert!(!report.passed());
    let run = &report.runs[0];
    match &run.outcome {
        ReplayOutcome::Diverged(d) => {
            assert_eq!(d.event_id, 2, "{d:?}");
            assert!(d.recorded.contains(&load_workflow_id(&run.workflow_id)), "{d:?}");
            assert!(d.requested.contains("/loader"), "{d:?}");
            assert!(d.location.as_deref().is_some_and(|l| l.contains("tests/check_replay.rs:")), "{d:?}");
        }
        other => panic!("{other:?}"),
    }
    println!("{report}");
    // And the unchanged code still passes on the same histories.
    assert!(rt.block_on(gate.replay_store(&store, &filter)).unwrap().passed());
}
