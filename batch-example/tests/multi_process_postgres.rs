//! One batch spread over four processes on one PostgreSQL database: the starter and three
//! `--worker-only` workers. One worker is killed with SIGKILL mid-run and another is stopped
//! and started again; the output must equal an uninterrupted single-process run's, with
//! every record exactly once.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use workflow_core::store::{AttemptOutcome, RunFilter, RunStatus, Store, TaskQueue};
use workflow_store_postgres::{testing, PostgresStore};

const BIN: &str = env!("CARGO_BIN_EXE_batch-example");
const ID: &str = "enrich-shared";

fn batch(db: &str, out: &Path, input: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(["--chunk-size", "500", "--concurrency", "6", "--latency-ms", "10", "--workflow-id", ID, "--db", db])
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    c
}

fn worker(db: &str, out: &Path) -> Child {
    Command::new(BIN)
        .args(["--worker-only", "--latency-ms", "10", "--workflow-id", ID, "--db", db])
        .arg("--out")
        .arg(out)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start a worker")
}

fn json(out: &std::process::Output) -> serde_json::Value {
    common::assert_success(out);
    common::summary(out)
}

#[test]
fn a_batch_spread_over_four_processes_survives_a_killed_and_a_restarted_worker() {
    let Some(server) = testing::server() else { return };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = rt.block_on(server.create_database("batch"));
    let dir = tempfile::tempdir().unwrap();

    // The reference: one process, the embedded store, no interruption. It also writes the input.
    let reference = dir.path().join("ref");
    let gen = Command::new(BIN)
        .args(["--rows", "20000", "--chunk-size", "500", "--latency-ms", "0", "--json", "--workflow-id", ID])
        .arg("--db")
        .arg(reference.join("db"))
        .arg("--out")
        .arg(&reference)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let expected = json(&gen);
    let input = reference.join("sample-users-20000.csv");
    let expected_files = common::chunk_files(&reference.join(format!("batch-{ID}")));
    assert_eq!(expected_files.len(), 40);

    // Three workers first, then the starter (itself a worker too).
    let out = dir.path().join("shared");
    let mut workers: Vec<Child> = (0..3).map(|_| worker(&url, &out)).collect();
    let starter =
        batch(&url, &out, &input).arg("--json").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();

    // Mid-run, once it holds an activity attempt: SIGKILL one worker; then stop another
    // (Ctrl-C's SIGINT) and start it again.
    let batch_dir = out.join(format!("batch-{ID}"));
    let victim = format!("{}@", workers[0].id());
    let start = Instant::now();
    let observer = rt.block_on(PostgresStore::builder(url.as_str()).listen(false).connect()).unwrap();
    while !rt.block_on(holds_an_attempt(&observer, &victim)) {
        assert!(start.elapsed() < Duration::from_secs(60), "the victim worker never ran an attempt");
        std::thread::sleep(Duration::from_millis(20));
    }
    let done_at_kill = chunk_files_count(&batch_dir);
    workers[0].kill().unwrap();
    let _ = workers[0].wait();
    let _ = Command::new("kill").args(["-INT", &workers[1].id().to_string()]).status();
    let _ = workers[1].wait();
    workers[1] = worker(&url, &out);
    assert!(done_at_kill < 40, "the batch finished before the kill ({done_at_kill} chunks); make it slower");

    let got = json(&starter.wait_with_output().unwrap());
    for w in workers.iter_mut().skip(1) {
        // Each remaining worker stops on its own once the batch has finished.
        let status = w.wait().unwrap();
        assert!(status.success(), "a worker exited with {status:?}");
    }

    for key in
        ["status", "rows", "valid_rows", "enriched", "fallback", "malformed", "chunks", "chunks_done", "chunks_failed"]
    {
        assert_eq!(got[key], expected[key], "summary field {key} differs from the uninterrupted run's");
    }
    let files = common::chunk_files(&batch_dir);
    assert_eq!(files, expected_files, "the output differs from the uninterrupted run's");
    let mut rows = BTreeSet::new();
    for records in files.values() {
        for r in records {
            assert!(rows.insert(r["row"].as_u64().unwrap()), "row {} is in the output twice", r["row"]);
        }
    }

    // The killed worker held attempts; other workers took them over once their leases expired.
    let lost = rt.block_on(async {
        let store =
            workflow_store_postgres::PostgresStore::builder(url.as_str()).listen(false).connect().await.unwrap();
        let mut lost = 0;
        for run in store.list_runs(&RunFilter::default()).await.unwrap() {
            for a in store.list_attempts(&run.run_id).await.unwrap() {
                lost += usize::from(a.outcome == AttemptOutcome::WorkerLost);
            }
        }
        lost
    });
    assert!(lost > 0, "the killed worker's attempt is not in the attempt log as lost");
    drop(observer);
    rt.block_on(server.drop_database(&url));
}

/// Whether a worker whose identity starts with `prefix` holds an activity lease.
async fn holds_an_attempt(store: &PostgresStore, prefix: &str) -> bool {
    let Ok(runs) = store.list_runs(&RunFilter::default().status(RunStatus::Running)).await else { return false };
    for run in runs {
        for t in store.list_tasks(&run.run_id).await.unwrap_or_default() {
            let leased_by_victim = t.lease.as_ref().is_some_and(|(owner, _)| owner.starts_with(prefix));
            if leased_by_victim && t.task.queue() == TaskQueue::Activity {
                return true;
            }
        }
    }
    false
}

fn chunk_files_count(batch_dir: &Path) -> usize {
    std::fs::read_dir(batch_dir)
        .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".json")).count())
        .unwrap_or(0)
}
