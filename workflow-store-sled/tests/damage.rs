//! A real store, damaged in many ways (flipped bits, truncations, deleted files): every case
//! must end in a typed error or in exactly the content the store had. Never a panic, never an
//! `Ok` with different content. A refusal names the damaged store's folder, and opening a
//! damaged store for inspection (`open_snapshot`) gives the same answer and writes nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use workflow_core::history::EventKind;
use workflow_core::store::conformance::new_run;
use workflow_core::store::{AppendRequest, RunFilter, RunInfo, Store};
use workflow_core::{Event, Payload, Timestamp};
use workflow_store_sled::SledStore;

const T0: Timestamp = Timestamp(1_700_000_000_000);

type Snapshot = Vec<(RunInfo, Vec<Event>)>;

async fn snapshot(store: &Arc<dyn Store>) -> Result<Snapshot, workflow_core::StoreError> {
    let mut out = Vec::new();
    for info in store.list_runs(&RunFilter::default()).await? {
        let h = store.read_history(&info.run_id, 0).await?;
        out.push((info, h));
    }
    Ok(out)
}

/// 40 runs with a few events each, half of them completed.
async fn build(path: &Path) -> Snapshot {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(path).unwrap());
    for i in 0..40u32 {
        let run = new_run(&format!("order-{i}"), "order", T0);
        let id = run.info.run_id.clone();
        store.create_run(run).await.unwrap();
        let events =
            (0..5).map(|s| EventKind::SideEffectRecorded { seq: s, value: Payload::encode(&(i * 10 + s)).unwrap() });
        store.append(AppendRequest::new(id.clone(), T0).events(events)).await.unwrap();
        if i % 2 == 0 {
            let done = EventKind::WorkflowCompleted { result: Payload::encode(&format!("done {i}")).unwrap() };
            store.append(AppendRequest::new(id, T0).events([done])).await.unwrap();
        }
    }
    let snap = snapshot(&store).await.unwrap();
    drop(store);
    snap
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Every file under `dir` with its bytes, to tell whether anything was written.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(contents(&e.path()));
        } else {
            out.push((e.path(), std::fs::read(e.path()).unwrap()));
        }
    }
    out.sort();
    out
}

async fn outcome(
    open: impl FnOnce() -> Result<SledStore, workflow_core::StoreError> + std::panic::UnwindSafe,
    expected: &Snapshot,
) -> Result<Result<bool, workflow_core::StoreError>, String> {
    match std::panic::catch_unwind(open) {
        Err(_) => Err("sled panicked while opening".to_string()),
        Ok(Err(e)) => Ok(Err(e)),
        Ok(Ok(store)) => {
            let store: Arc<dyn Store> = Arc::new(store);
            Ok(snapshot(&store).await.map(|s| &s == expected))
        }
    }
}

fn flip(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    if bytes.is_empty() {
        return;
    }
    let i = (at as usize).min(bytes.len() - 1);
    bytes[i] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

fn truncate(path: &Path, len: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len).unwrap();
}

enum Damage {
    Flip(&'static str, f64),
    Truncate(&'static str, f64),
    TruncateTo(&'static str, u64),
    Delete(&'static str),
}

impl Damage {
    fn apply(&self, dir: &Path) -> String {
        let file = |name: &str| dir.join(name);
        let len = |name: &str| std::fs::metadata(file(name)).map(|m| m.len()).unwrap_or(0);
        match self {
            Damage::Flip(name, at) => {
                let at = (len(name) as f64 * at) as u64;
                flip(&file(name), at);
                format!("bit flipped in {name} at byte {at}")
            }
            Damage::Truncate(name, keep) => {
                let to = (len(name) as f64 * keep) as u64;
                truncate(&file(name), to);
                format!("{name} truncated to {to} bytes")
            }
            Damage::TruncateTo(name, to) => {
                truncate(&file(name), *to);
                format!("{name} truncated to {to} bytes")
            }
            Damage::Delete(name) => {
                let p = file(name);
                if p.is_dir() {
                    std::fs::remove_dir_all(&p).unwrap();
                } else {
                    let _ = std::fs::remove_file(&p);
                }
                format!("{name} deleted")
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_damage_ends_in_a_typed_error_or_the_original_content() {
    let root = tempfile::tempdir().unwrap();
    let pristine = root.path().join("pristine");
    let expected = build(&pristine).await;
    assert_eq!(expected.len(), 40);

    let mut cases: Vec<Damage> = vec![
        Damage::Delete("db"),
        Damage::TruncateTo("db", 0),
        Damage::TruncateTo("db", 4096),
        Damage::Delete("conf"),
        Damage::TruncateTo("conf", 0),
        Damage::Flip("conf", 0.5),
        Damage::Delete("high-water"),
        Damage::TruncateTo("high-water", 10),
        Damage::Flip("high-water", 0.5),
    ];
    for keep in [0.1, 0.25, 0.5, 0.75, 0.9, 0.99] {
        cases.push(Damage::Truncate("db", keep));
    }
    for i in 0..24 {
        cases.push(Damage::Flip("db", (f64::from(i) + 0.5) / 24.0));
    }

    let (mut errors, mut intact, mut violations) = (0, 0, Vec::new());
    for (n, damage) in cases.iter().enumerate() {
        let dir: PathBuf = root.path().join(format!("case{n}"));
        copy_dir(&pristine, &dir);
        let what = damage.apply(&dir);
        let dir_name = dir.display().to_string();

        // Inspection first: the same verdict, and not one byte of the damaged store changed.
        let before = contents(&dir);
        let inspected = outcome(|| SledStore::open_snapshot(&dir), &expected).await;
        if contents(&dir) != before {
            violations.push(format!("{what}: open_snapshot wrote to the store"));
        }

        match outcome(|| SledStore::open(&dir), &expected).await {
            Ok(Err(e)) => {
                errors += 1;
                println!("{what}: refused: {e}");
                if !e.to_string().contains(&dir_name) {
                    violations.push(format!("{what}: the error does not name the store's folder: {e}"));
                }
                match inspected {
                    Ok(Err(seen)) if seen.to_string() == e.to_string() => {}
                    other => violations.push(format!("{what}: open_snapshot answered {other:?}, open: {e}")),
                }
            }
            Ok(Ok(true)) => {
                intact += 1;
                println!("{what}: content intact");
                if !matches!(inspected, Ok(Ok(true))) {
                    violations.push(format!("{what}: open_snapshot answered {inspected:?}, open: intact"));
                }
            }
            Ok(Ok(false)) => violations.push(format!("{what}: opened with DIFFERENT content")),
            Err(p) => violations.push(format!("{what}: {p}")),
        }
    }
    println!(
        "damage test: {} cases, {errors} typed errors, {intact} intact, {} violations",
        cases.len(),
        violations.len()
    );
    assert!(cases.len() >= 30);
    assert!(violations.is_empty(), "silently wrong or crashed:\n{}", violations.join("\n"));
}
