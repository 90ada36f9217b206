//! A kill storm: the batch with slow chunks is killed with SIGKILL twenty times at random
//! moments, then run once more to the end. Crashes are not the activities' fault, so no
//! chunk may fail for lack of attempts, and the output must equal an uninterrupted run's.
//! Set `KILL_STORM_SEED` to replay a run (the seed is printed).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_batch-example");
const KILLS: usize = 20;

fn command(db: &Path, out: &Path, input: Option<&Path>) -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "--rows",
        "4000",
        "--chunk-size",
        "200",
        "--concurrency",
        "2",
        "--latency-ms",
        "100",
        "--workflow-id",
        "storm",
    ])
    .arg("--db")
    .arg(db)
    .arg("--out")
    .arg(out)
    .env("RUST_LOG", "error")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if let Some(i) = input {
        c.arg("--input").arg(i);
    }
    c
}

#[test]
fn twenty_kills_at_random_moments_end_complete_and_identical() {
    let seed = std::env::var("KILL_STORM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    }) | 1;
    println!("kill storm seed: {seed} (set KILL_STORM_SEED={seed} to replay)");
    let mut rng = seed;
    let mut next = move |n: u64| {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    };
    let dir = tempfile::tempdir().unwrap();

    // The reference, uninterrupted (it also writes the input).
    let reference = dir.path().join("ref");
    let began = std::time::Instant::now();
    let status = command(&reference.join("db"), &reference, None).arg("--json").status().unwrap();
    assert!(status.success());
    println!("uninterrupted run: {:?}", began.elapsed());
    let input = reference.join("sample-users-4000.csv");
    let expected = common::chunk_files(&reference.join("batch-storm"));

    let (db, out) = (dir.path().join("db"), dir.path().join("out"));
    // Kill until KILLS kills have landed while the batch ran (a run that finishes on its own
    // ends the storm early, which the assertion below reports).
    let mut killed = 0;
    for _ in 0..2 * KILLS {
        if killed == KILLS {
            break;
        }
        let mut child = command(&db, &out, Some(&input)).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(150 + next(450)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        } else {
            break;
        }
        let _ = child.wait();
    }
    assert_eq!(killed, KILLS, "only {killed} kills landed while the batch ran; make it slower");

    let last = command(&db, &out, Some(&input)).arg("--json").stdout(Stdio::piped()).output().unwrap();
    let summary = common::summary(&last);
    assert!(last.status.success(), "{summary}");
    assert_eq!(summary["status"], "completed", "no chunk may fail because its worker was killed: {summary}");
    let files = common::chunk_files(&out.join("batch-storm"));
    assert_eq!(files, expected, "the output after {killed} kills differs from an uninterrupted run's");
    let mut rows = BTreeSet::new();
    for records in files.values() {
        for r in records {
            assert!(rows.insert(r["row"].as_u64().unwrap()), "row {} is in the output twice", r["row"]);
        }
    }
    println!("kill storm: {killed} kills landed mid-run; output identical");
}
