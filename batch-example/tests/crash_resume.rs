//! Kill the batch with SIGKILL in the middle, run the same command again, and check that the
//! output equals an uninterrupted run's and that no chunk was enriched again after it was saved.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_batch-example");
const CHUNKS: usize = 20;

/// 2,000 users in chunks of 100; the mock's latency makes a run last a few seconds so that
/// the kill lands in the middle.
fn command(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(["--rows", "2000", "--chunk-size", "100", "--concurrency", "4", "--latency-ms", "100"])
        .arg("--db")
        .arg(dir.join("db"))
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--audit-log")
        .arg(dir.join("audit.log"))
        .env("RUST_LOG", "warn,batch_example=info")
        .stdin(Stdio::null());
    c
}

fn run_to_end(dir: &Path, extra: &[&str]) -> Output {
    let out = command(dir).args(extra).output().expect("the binary runs");
    common::assert_success(&out);
    out
}

fn batch_dir(dir: &Path) -> PathBuf {
    dir.join("out").join("batch-enrich-sample-users-2000")
}

/// The chunk files of the batch in `dir`.
fn chunk_files(dir: &Path) -> BTreeMap<String, Vec<serde_json::Value>> {
    common::chunk_files(&batch_dir(dir))
}

fn audit_lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("audit.log")).unwrap_or_default().lines().map(str::to_string).collect()
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn killed_batch_resumes_to_the_same_output_without_redoing_saved_chunks() {
    let reference = tempfile::tempdir().unwrap();
    let expected = common::summary(&run_to_end(reference.path(), &["--json"]));
    let expected_files = chunk_files(reference.path());
    assert_eq!(expected_files.len(), CHUNKS);
    assert_eq!(expected["chunks_done"], CHUNKS as u64);

    let crashed = tempfile::tempdir().unwrap();
    let mut child = command(crashed.path()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // Wait (for the subprocess, not a fixed time) until a few chunks are saved, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(120);
    while audit_lines(crashed.path()).iter().filter(|l| l.starts_with("save-done")).count() < 3 {
        assert!(Instant::now() < deadline, "no chunk saved in time");
        assert!(child.try_wait().unwrap().is_none(), "the batch ended before it was killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let saved_before = chunk_files(crashed.path()).len();
    assert!(saved_before < CHUNKS, "the kill should land mid-run, {saved_before} chunks were saved already");

    let resumed = common::summary(&run_to_end(crashed.path(), &["--json"]));
    for key in ["rows", "valid_rows", "enriched", "fallback", "malformed", "chunks", "chunks_done", "chunks_failed"] {
        assert_eq!(resumed[key], expected[key], "{key}");
    }
    assert_eq!(chunk_files(crashed.path()), expected_files, "resumed output differs from an uninterrupted run's");
    assert!(!batch_dir(crashed.path()).join(".staging").exists());

    // No chunk was enriched again once it had been saved.
    let lines = audit_lines(crashed.path());
    let mut saved_at: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let chunk = field(line, "chunk").unwrap();
        if line.starts_with("save-done") {
            saved_at.entry(chunk).or_insert(i);
        } else if line.starts_with("enrich-start") {
            assert!(
                !saved_at.contains_key(chunk),
                "chunk {chunk} enriched again after it was saved:\n{}",
                lines.join("\n")
            );
        }
    }
    assert_eq!(saved_at.len(), CHUNKS);
    let pids: std::collections::BTreeSet<&str> = lines.iter().filter_map(|l| field(l, "pid")).collect();
    assert_eq!(pids.len(), 2, "two processes worked on the batch");

    // A third run finds the batch finished: it prints the recorded summary and does no work.
    let again = run_to_end(crashed.path(), &["--json"]);
    let again = common::summary(&again);
    assert_eq!(again["already_finished"], true);
    assert_eq!(again["enriched"], expected["enriched"]);
    assert_eq!(audit_lines(crashed.path()).len(), lines.len());
}

#[test]
fn missing_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path()).args(["--input", "/nonexistent/users.csv"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read the input file /nonexistent/users.csv"), "{stderr}");
}

#[test]
fn empty_csv_gives_a_zero_row_summary() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("empty.csv");
    std::fs::write(&csv, "").unwrap();
    let out = command(dir.path()).arg("--input").arg(&csv).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = common::summary(&out);
    assert_eq!((s["rows"].as_u64(), s["chunks"].as_u64(), s["status"].as_str()), (Some(0), Some(0), Some("completed")));
}

#[test]
fn api_outage_fails_chunks_and_the_batch_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("few.csv");
    std::fs::write(&csv, "id,name,email,country\nu1,Ann,ann@example.com,DE\nu2,Bob,bob@example.com,US\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = command(dir.path())
        .arg("--input")
        .arg(&csv)
        .args(["--json", "--api-url", &format!("http://127.0.0.1:{port}")])
        .output()
        .unwrap();
    // Exit code 2: the batch finished, with failed chunks.
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let s = common::summary(&out);
    assert_eq!(s["status"], "partial");
    assert_eq!(s["chunks_failed"].as_array().unwrap().len(), 1);
    assert!(s["chunks_failed"][0]["error"].as_str().unwrap().contains("ApiUnavailable"), "{s}");
    assert_eq!(s["activity_retries"], 2, "3 attempts of enrich_chunk");

    // The API is back (the built-in mock): the same command redoes the failed chunk only.
    let again = command(dir.path()).arg("--input").arg(&csv).arg("--json").output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(String::from_utf8_lossy(&again.stderr).contains("retrying only those"), "says what it does");
    let s = common::summary(&again);
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(
        (s["chunks_done"].as_u64(), s["chunks"].as_u64(), s["retried_chunks"].as_u64()),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(s["enriched"].as_u64().unwrap() + s["fallback"].as_u64().unwrap(), 2, "both rows are in the output");
    assert!(dir.path().join("out/batch-enrich-few/chunk-00000.json").exists());
}
