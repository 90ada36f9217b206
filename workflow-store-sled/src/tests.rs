use std::time::Duration;

use workflow_core::history::EventKind;
use workflow_core::store::conformance::new_run;
use workflow_core::store::{AttemptOutcome, RunStatus, Task, TaskOp};

use super::*;

const T0: Timestamp = Timestamp(1_700_000_000_000);

fn _object_safe(_: &dyn Store) {}

fn completed() -> EventKind {
    EventKind::WorkflowCompleted { result: Payload::null() }
}

#[tokio::test]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    let base = dir.path().to_path_buf();
    workflow_core::store::conformance::run_all(|| {
        let path = base.join(format!("db{}", n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
        async move { Arc::new(SledStore::open(path).unwrap()) as Arc<dyn Store> }
    })
    .await;
}

#[tokio::test]
async fn relaxed_mode_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    let base = dir.path().to_path_buf();
    workflow_core::store::conformance::run_all(|| {
        let path = base.join(format!("db{}", n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
        async move {
            let s = SledStore::builder(path)
                .durability(Durability::Relaxed { every: Duration::from_millis(5) })
                .open()
                .unwrap();
            Arc::new(s) as Arc<dyn Store>
        }
    })
    .await;
}

#[tokio::test]
async fn data_survives_reopen_and_a_second_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let run = new_run("wf", "T", T0);
    let run_id = run.info.run_id.clone();
    {
        let s = SledStore::open(&path).unwrap();
        s.create_run(run).await.unwrap();
        s.append(AppendRequest::new(run_id.clone(), T0).events([completed()])).await.unwrap();
    }
    for _ in 0..2 {
        let s = SledStore::open(&path).unwrap();
        assert_eq!(s.get_run(&run_id).await.unwrap().unwrap().status, RunStatus::Completed);
        assert_eq!(s.read_history(&run_id, 0).await.unwrap().len(), 2);
        assert_eq!(s.current_run("wf").await.unwrap().unwrap().run_id, run_id);
        assert_eq!(s.recovery().lost_leases, 0);
    }
}

#[tokio::test]
async fn second_open_of_a_path_is_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let _first = SledStore::open(&path).unwrap();
    match SledStore::open(&path) {
        Err(StoreError::InUse { path: p }) => assert!(p.contains("db"), "names the path: {p}"),
        other => panic!("expected InUse, got {other:?}"),
    }
}

#[tokio::test]
async fn newer_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    drop(SledStore::open(&path).unwrap());
    {
        let db = open_raw(&path);
        db.insert(VERSION_KEY, &(FORMAT_VERSION + 1).to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    match SledStore::open(&path) {
        Err(StoreError::UnsupportedVersion { found, supported }) => {
            assert_eq!((found, supported), (FORMAT_VERSION + 1, FORMAT_VERSION))
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    {
        let db = open_raw(&path);
        db.insert(VERSION_KEY, b"x".as_slice()).unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(SledStore::open(&path), Err(StoreError::Corrupt { .. })));
}

#[tokio::test]
async fn corrupt_records_are_typed_errors_naming_key_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let run = new_run("wf", "T", T0);
    let run_id = run.info.run_id.clone();
    {
        let s = SledStore::open(&path).unwrap();
        s.create_run(run).await.unwrap();
    }
    {
        let db = open_raw(&path);
        db.open_tree("records").unwrap().insert(keys::event(&run_id, 1), b"\xc1not msgpack".as_slice()).unwrap();
        db.flush().unwrap();
    }
    {
        let s = SledStore::open(&path).unwrap();
        match s.read_history(&run_id, 0).await {
            Err(StoreError::Corrupt { key, .. }) => assert!(key.contains(run_id.as_str()), "{key}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
        // Other records are still readable.
        assert!(s.get_run(&run_id).await.unwrap().is_some());
    }
    {
        let db = open_raw(&path);
        db.open_tree("records").unwrap().insert(keys::run(&run_id), vec![0xc1, 0x00, 0x13]).unwrap();
        db.flush().unwrap();
    }
    let s = SledStore::open(&path).unwrap();
    match s.get_run(&run_id).await {
        Err(StoreError::Corrupt { key, .. }) => assert!(key.contains(run_id.as_str()), "{key}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(matches!(s.current_run("wf").await, Err(StoreError::Corrupt { .. })));
    assert!(matches!(
        s.append(AppendRequest::new(run_id.clone(), T0).events([completed()])).await,
        Err(StoreError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn leases_of_a_dead_process_are_lost_and_visible_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let run = new_run("wf", "T", T0);
    let run_id = run.info.run_id.clone();
    {
        let s = SledStore::open(&path).unwrap();
        s.create_run(run).await.unwrap();
        let leased = s.lease_tasks(TaskQueue::Workflow, T0, 10, "w1").await.unwrap();
        assert_eq!(leased.len(), 1);
        s.flush().await.unwrap();
        // Dropped without completing: as if the process died.
    }
    let s = SledStore::open(&path).unwrap();
    assert_eq!(s.recovery().lost_leases, 1);
    // Visible at the time it was leased, not after the 60 s lease.
    let again = s.lease_tasks(TaskQueue::Workflow, T0, 10, "w2").await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].task.key, TaskKey::workflow(&run_id));
    assert!(again[0].previous_lease_lost);
    s.append(AppendRequest::new(run_id.clone(), T0).complete(again[0].task.key.clone(), again[0].token)).await.unwrap();
    drop(s);
    let s = SledStore::open(&path).unwrap();
    assert_eq!(s.recovery().lost_leases, 0, "a completed lease leaves no marker");
}

#[tokio::test]
async fn released_lease_leaves_no_lost_marker() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let run = new_run("wf", "T", T0);
    let run_id = run.info.run_id.clone();
    {
        let s = SledStore::open(&path).unwrap();
        s.create_run(run).await.unwrap();
        let t = s.lease_tasks(TaskQueue::Workflow, T0, 10, "w1").await.unwrap().remove(0);
        s.append(AppendRequest::new(run_id.clone(), T0).release(t.task.key.clone(), t.token)).await.unwrap();
    }
    let s = SledStore::open(&path).unwrap();
    let t = s.lease_tasks(TaskQueue::Workflow, T0, 10, "w1").await.unwrap();
    assert!(!t[0].previous_lease_lost);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_flushes() {
    let dir = tempfile::tempdir().unwrap();
    // Without a delay, batching depends on scheduling; with one, writes that commit within
    // it must share flushes.
    for delay in [Duration::ZERO, Duration::from_millis(10)] {
        let store = Arc::new(
            SledStore::builder(dir.path().join(format!("db{}", delay.as_millis())))
                .group_commit_delay(delay)
                .open()
                .unwrap(),
        );
        let writes = 64u64;
        let before = store.write_counters();
        let handles: Vec<_> = (0..writes)
            .map(|i| {
                let s = store.clone();
                tokio::spawn(async move { s.create_run(new_run(&format!("wf{i}"), "T", T0)).await })
            })
            .collect();
        for h in handles {
            h.await.unwrap().unwrap();
        }
        let after = store.write_counters();
        let flushes = after.syncs - before.syncs;
        assert_eq!(after.ops - before.ops, writes, "every create is one committed operation");
        assert_eq!(after.writes - before.writes, flushes, "each store write is flushed and synced once");
        assert!(flushes <= writes, "{writes} writes took {flushes} flushes");
        if !delay.is_zero() {
            assert!(flushes < writes / 2, "{writes} concurrent writes took {flushes} flushes (delay {delay:?})");
        }
        assert_eq!(store.stats().unwrap().runs, writes as usize);
    }
}

#[tokio::test]
async fn attempts_and_cross_run_tasks_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (a, b) = (new_run("a", "T", T0), new_run("b", "T", T0));
    let (a_id, b_id) = (a.info.run_id.clone(), b.info.run_id.clone());
    {
        let s = SledStore::open(&path).unwrap();
        s.create_run(a).await.unwrap();
        s.create_run(b).await.unwrap();
        let mut t = Task::workflow(&b_id, T0);
        t.key = TaskKey(format!("x/{b_id}"));
        s.append(AppendRequest::new(a_id.clone(), T0).task_op(TaskOp::Upsert(t)).attempt(AttemptRecord {
            run_id: a_id.clone(),
            seq: 0,
            activity_type: "x".into(),
            attempt: 1,
            worker: "w".into(),
            started_at: T0,
            ended_at: T0,
            outcome: AttemptOutcome::Completed,
            last_heartbeat: None,
        }))
        .await
        .unwrap();
        // Closing a does not delete the task of b that a created.
        s.append(AppendRequest::new(a_id.clone(), T0).events([completed()])).await.unwrap();
    }
    let s = SledStore::open(&path).unwrap();
    assert_eq!(s.list_attempts(&a_id).await.unwrap().len(), 1);
    assert!(s.list_tasks(&a_id).await.unwrap().is_empty());
    assert_eq!(s.list_tasks(&b_id).await.unwrap().len(), 2);
}

/// A steady workload (runs start and finish all the time) with a retention window keeps the
/// store at a bounded size.
#[tokio::test]
async fn retention_keeps_a_steady_workload_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path().join("db")).unwrap();
    let mut max_keys = 0;
    let mut max_runs = 0;
    for round in 0..40u64 {
        let now = T0.add(Duration::from_secs(round));
        for i in 0..10 {
            let run = new_run(&format!("wf-{round}-{i}"), "T", now);
            let id = run.info.run_id.clone();
            s.create_run(run).await.unwrap();
            s.append(
                AppendRequest::new(id.clone(), now).events([EventKind::TimerFired { seq: 0 }, completed()]).attempt(
                    AttemptRecord {
                        run_id: id.clone(),
                        seq: 0,
                        activity_type: "x".into(),
                        attempt: 1,
                        worker: "w".into(),
                        started_at: now,
                        ended_at: now,
                        outcome: AttemptOutcome::Completed,
                        last_heartbeat: None,
                    },
                ),
            )
            .await
            .unwrap();
        }
        // Keep three seconds of closed runs.
        s.delete_closed_before(Timestamp(now.as_millis().saturating_sub(3_000))).await.unwrap();
        let st = s.stats().unwrap();
        max_keys = max_keys.max(st.keys);
        max_runs = max_runs.max(st.runs);
    }
    assert!(max_runs <= 40, "runs grew to {max_runs}");
    // Per run: run, order, workflow, closed, 3 events, 1 attempt.
    assert!(max_keys <= 40 * 8, "keys grew to {max_keys}");
    s.delete_closed_before(T0.add(Duration::from_secs(3600))).await.unwrap();
    assert_eq!(s.stats().unwrap().keys, 0, "everything of closed runs is deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_retention_sweep_deletes_closed_runs() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::builder(dir.path().join("db"))
        .retention(Duration::from_millis(1))
        .retention_sweep_every(Duration::from_millis(1))
        .open()
        .unwrap();
    let now = retention_now();
    for i in 0..20 {
        let run = new_run(&format!("wf{i}"), "T", now);
        let id = run.info.run_id.clone();
        s.create_run(run).await.unwrap();
        s.append(AppendRequest::new(id, now).events([completed()])).await.unwrap();
    }
    let open = new_run("open", "T", now);
    s.create_run(open).await.unwrap();
    // The sweeper runs every millisecond; give it a bounded number of chances.
    for _ in 0..2000 {
        if s.stats().unwrap().runs == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(s.stats().unwrap().runs, 1, "closed runs past retention are swept; open runs stay");
}

fn retention_now() -> Timestamp {
    Timestamp(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64)
}

/// Opens the database with sled directly, waiting for a just-dropped store's background
/// threads to let go of the file lock.
fn open_raw(path: &std::path::Path) -> sled::Db {
    for _ in 0..100 {
        match sled::open(path) {
            Ok(db) => return db,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
    sled::open(path).expect("the store released its lock within 2 s")
}

mod decoders {
    use proptest::prelude::*;

    use crate::codec::{decode, LeaseMarker, RunRecord};
    use workflow_core::store::{AttemptRecord, Task};
    use workflow_core::Event;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Whatever bytes a damaged store holds, decoding them is an error or a value, never a
        /// panic (and never an allocation the size of a length prefix it claims).
        #[test]
        fn arbitrary_bytes_never_panic_a_record_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let key = || "fuzz".to_string();
            let _ = decode::<RunRecord>(key, &bytes);
            let _ = decode::<Event>(key, &bytes);
            let _ = decode::<Task>(key, &bytes);
            let _ = decode::<AttemptRecord>(key, &bytes);
            let _ = decode::<LeaseMarker>(key, &bytes);
        }
    }
}

#[tokio::test]
async fn a_snapshot_reads_the_store_and_writes_nothing_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let run = new_run("wf", "T", T0);
    let run_id = run.info.run_id.clone();

    // Nothing there: NotFound, and no folder is created.
    assert!(matches!(SledStore::open_snapshot(&path), Err(StoreError::NotFound { .. })));
    assert!(!path.exists());

    let s = SledStore::open(&path).unwrap();
    s.create_run(run).await.unwrap();
    // Held by a store (of any process): its files are changing, so no copy is made.
    match SledStore::open_snapshot(&path) {
        Err(StoreError::InUse { path: p }) => assert_eq!(p, path.display().to_string()),
        other => panic!("expected InUse, got {:?}", other.map(|_| ())),
    }
    drop(s);

    let files = |p: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|f| f.is_file())
            .map(|f| (f.clone(), std::fs::read(&f).unwrap(), std::fs::metadata(&f).unwrap().modified().unwrap()))
            .collect();
        v.sort();
        v
    };
    let before = files(&path);
    let snap = SledStore::open_snapshot(&path).unwrap();
    assert_ne!(snap.path(), path.as_path());
    assert!(snap.get_run(&run_id).await.unwrap().is_some());
    // A write goes to the copy only.
    snap.append(AppendRequest::new(run_id.clone(), T0).events([completed()])).await.unwrap();
    let copy = snap.path().to_path_buf();
    drop(snap);
    assert_eq!(files(&path), before, "the store's files (bytes and modification times) are unchanged");
    assert!(!copy.exists(), "the copy is deleted with the snapshot");
    let s = SledStore::open(&path).unwrap();
    assert_eq!(s.get_run(&run_id).await.unwrap().unwrap().status, RunStatus::Running);
}
