//! Helpers shared by the batch example's process-level tests.

#![allow(dead_code)] // each test binary uses some of them

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

/// Chunk file name -> its records, sorted by row, for the chunk files in `batch_dir`.
pub(crate) fn chunk_files(batch_dir: &Path) -> BTreeMap<String, Vec<serde_json::Value>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(batch_dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("chunk-") && name.ends_with(".json") {
            let mut records: Vec<serde_json::Value> =
                serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
            records.sort_by_key(|r| r["row"].as_u64());
            files.insert(name, records);
        }
    }
    files
}

/// The `--json` summary a run printed.
pub(crate) fn summary(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Fails the test, showing both streams, unless the run succeeded.
pub(crate) fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
