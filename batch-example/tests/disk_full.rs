//! The store's disk fills up mid-batch: the command stops at once with a clear error and a
//! non-zero exit (no endless retries), and once there is space the same command resumes and
//! ends with the output of an uninterrupted run. Needs a small tmpfs: mounted where this
//! process may (root, as on CI); elsewhere the test says it was skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_batch-example");

/// A tmpfs mounted at a folder of its own, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.0).status().unwrap();
        assert!(ok.success(), "remount {}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn batch(db: &Path, out: &Path, input: &Path) -> Output {
    let mut child = Command::new(BIN)
        .args(["--chunk-size", "500", "--json", "--workflow-id", "full"])
        .arg("--input")
        .arg(input)
        .arg("--db")
        .arg(db)
        .arg("--out")
        .arg(out)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the batch hung on a full disk for 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_full_disk_stops_the_batch_promptly_and_the_same_command_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&dir.path().join("disk"), "600k") else {
        eprintln!("disk-full test skipped: this process may not mount a tmpfs (it needs root)");
        return;
    };
    // The reference: the same input, uninterrupted, on an ordinary disk.
    let reference = dir.path().join("ref");
    let gen = Command::new(BIN)
        .args(["--rows", "20000", "--chunk-size", "500", "--json", "--workflow-id", "full"])
        .arg("--db")
        .arg(reference.join("db"))
        .arg("--out")
        .arg(&reference)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    common::assert_success(&gen);
    let input = reference.join("sample-users-20000.csv");
    let expected = common::chunk_files(&reference.join("batch-full"));

    let db = disk.0.join("db");
    let out = dir.path().join("out");
    let started = Instant::now();
    let first = batch(&db, &out, &input);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(!first.status.success(), "a full disk must not end in success:\n{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(stderr.contains("run the same command to resume"), "says what to do:\n{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30), "stopped promptly, took {:?}", started.elapsed());

    disk.resize("64m");
    let second = batch(&db, &out, &input);
    common::assert_success(&second);
    let summary = common::summary(&second);
    assert_eq!(summary["status"], "completed", "{summary}");
    assert_eq!(common::chunk_files(&out.join("batch-full")), expected, "the output equals an uninterrupted run's");
}
