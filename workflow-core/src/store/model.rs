//! A model-based check: a store against the reference [`MemoryStore`]. Random sequences of
//! operations must give the same results and leave the same observable state, step by step.
//! Lease tokens are the one thing allowed to differ (each store numbers its own).
//!
//! ```ignore
//! proptest! {
//!     #[test]
//!     fn my_store_behaves_like_memory_store(ops in workflow_core::store::model::ops()) {
//!         let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//!         rt.block_on(async { workflow_core::store::model::check(Arc::new(MyStore::new()), ops).await })?;
//!     }
//! }
//! ```

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::conformance::new_run;
use super::{
    ActivityTask, AppendRequest, LeasedTask, MemoryStore, NewRun, RunFilter, Store, Task, TaskKey, TaskKind, TaskOp,
    TaskQueue,
};
use crate::history::EventKind;
use crate::{ActivityOptions, Payload, RunId, StoreError, Timestamp};

const T0: Timestamp = Timestamp(1_700_000_000_000);

/// An event the model appends.
#[derive(Clone, Debug)]
pub enum Ev {
    /// A timer started.
    Timer(u32),
    /// A side effect recorded.
    Side(u32),
    /// The run completed.
    Complete,
}

/// One operation of a model sequence.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub enum Op {
    Create(usize),
    Append {
        run: usize,
        events: Vec<Ev>,
        ops: Vec<(bool, u32, u64, bool)>,
        complete: Option<(usize, bool)>,
        expect_last: Option<u64>,
        at: u64,
    },
    Lease {
        activity: bool,
        at: u64,
        max: usize,
    },
    Heartbeat {
        lease: usize,
        at: u64,
    },
    Retain {
        before: u64,
    },
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![4 => (0u32..3).prop_map(Ev::Timer), 4 => (0u32..3).prop_map(Ev::Side), 1 => Just(Ev::Complete)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0usize..3).prop_map(Op::Create),
        6 => (
            0usize..4,
            prop::collection::vec(ev(), 0..3),
            prop::collection::vec((any::<bool>(), 0u32..3, 0u64..120, any::<bool>()), 0..3),
            prop::option::of((0usize..8, any::<bool>())),
            prop::option::of(0u64..6),
            0u64..120,
        )
            .prop_map(|(run, events, ops, complete, expect_last, at)| Op::Append {
                run,
                events,
                ops,
                complete,
                expect_last,
                at
            }),
        4 => (any::<bool>(), 0u64..200, 1usize..4).prop_map(|(activity, at, max)| Op::Lease { activity, at, max }),
        1 => (0usize..8, 0u64..200).prop_map(|(lease, at)| Op::Heartbeat { lease, at }),
        1 => (0u64..200).prop_map(|before| Op::Retain { before }),
    ]
}

fn secs(s: u64) -> Timestamp {
    T0.add(Duration::from_secs(s))
}

fn task(run_id: &RunId, activity: bool, seq: u32, at: u64) -> Task {
    let kind = if activity {
        TaskKind::Activity(Box::new(ActivityTask {
            workflow_id: "w".into(),
            seq,
            activity_type: "a".into(),
            input: Payload::null(),
            options: ActivityOptions::default(),
            attempt: 1,
            scheduled_at: T0,
            last_error: None,
            heartbeat: None,
            heartbeat_at: None,
            lost_attempts: 0,
            lost_streak: 0,
            lost_heartbeat_at: None,
            async_result: None,
            cancel_requested: false,
        }))
    } else {
        TaskKind::Timer { seq }
    };
    let key = if activity { TaskKey::activity(run_id, seq) } else { TaskKey::timer(run_id, seq) };
    Task { key, run_id: run_id.clone(), visible_at: secs(at), lease_duration: Duration::from_secs(30), kind }
}

/// Errors compare by kind and message; everything else by value.
fn same<T: PartialEq + std::fmt::Debug>(
    what: &str,
    a: Result<T, StoreError>,
    b: Result<T, StoreError>,
) -> Result<Option<T>, TestCaseError> {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            prop_assert_eq!(&a, &b, "{} differs", what);
            Ok(Some(a))
        }
        (Err(a), Err(b)) => {
            prop_assert_eq!(a.to_string(), b.to_string(), "{} fails differently", what);
            Ok(None)
        }
        (a, b) => {
            prop_assert!(false, "{what}: memory {a:?}, store {b:?}");
            unreachable!()
        }
    }
}

/// Sequences of 1 to 40 operations.
pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..40)
}

/// Runs `ops` on `store` (empty) and on a fresh [`MemoryStore`], comparing every result and,
/// after each step, the whole observable state.
pub async fn check(store: Arc<dyn Store>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mem: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let other = store;
    let mut runs: Vec<RunId> = Vec::new();
    // (key, memory's token, the store's token)
    let mut leases: Vec<(TaskKey, u64, u64)> = Vec::new();
    for op in ops {
        match op {
            Op::Create(w) => {
                let run: NewRun = new_run(&format!("wf{w}"), "T", T0);
                let id = run.info.run_id.clone();
                if same("create_run", mem.create_run(run.clone()).await, other.create_run(run).await)?.is_some() {
                    runs.push(id);
                }
            }
            Op::Append { run, events, ops, complete, expect_last, at } => {
                let Some(run_id) = runs.get(run).cloned() else { continue };
                let mut req = AppendRequest::new(run_id.clone(), secs(at));
                req = req.events(events.iter().map(|e| match e {
                    Ev::Timer(seq) => EventKind::TimerStarted { seq: *seq, fire_at: T0 },
                    Ev::Side(seq) => EventKind::SideEffectRecorded { seq: *seq, value: Payload::null() },
                    Ev::Complete => EventKind::WorkflowCompleted { result: Payload::null() },
                }));
                let mut deleted = Vec::new();
                // Tasks added to a closed run: MemoryStore keeps them when retention deletes
                // the run, SledStore deletes them with it. Not generated.
                let closed = mem.get_run(&run_id).await.ok().flatten().is_some_and(|r| r.status.is_closed());
                let ops = if closed { Vec::new() } else { ops };
                for (activity, seq, at, delete) in ops {
                    let t = task(&run_id, activity, seq, at);
                    req = req.task_op(if delete {
                        deleted.push(t.key.clone());
                        TaskOp::Delete(t.key)
                    } else {
                        TaskOp::Upsert(t)
                    });
                }
                if let Some(last) = expect_last {
                    req = req.expect_last(last);
                }
                if let Some((i, release)) = complete {
                    // MemoryStore panics when an append deletes the task it completes.
                    if let Some((key, mine, theirs)) = leases.get(i).filter(|(k, _, _)| !deleted.contains(k)).cloned() {
                        let (a, b) = if release {
                            (req.clone().release(key.clone(), mine), req.release(key, theirs))
                        } else {
                            (req.clone().complete(key.clone(), mine), req.complete(key, theirs))
                        };
                        same("append", mem.append(a).await, other.append(b).await)?;
                        continue;
                    }
                }
                same("append", mem.append(req.clone()).await, other.append(req).await)?;
            }
            Op::Lease { activity, at, max } => {
                let q = if activity { TaskQueue::Activity } else { TaskQueue::Workflow };
                let a = mem.lease_tasks(q, secs(at), max, "w").await;
                let b = other.lease_tasks(q, secs(at), max, "w").await;
                let tokens = |r: &Result<Vec<LeasedTask>, StoreError>| {
                    r.as_ref().map(|v| v.iter().map(|l| l.token).collect::<Vec<_>>()).unwrap_or_default()
                };
                let (ta, tb) = (tokens(&a), tokens(&b));
                let strip = |r: Result<Vec<LeasedTask>, StoreError>| {
                    r.map(|v| {
                        v.into_iter().map(|l| (l.task, l.previous_lease_lost, l.previous_holder)).collect::<Vec<_>>()
                    })
                };
                let got = same("lease_tasks", strip(a), strip(b))?;
                for ((l, _, _), (x, y)) in got.into_iter().flatten().zip(ta.into_iter().zip(tb)) {
                    leases.push((l.key, x, y));
                }
            }
            Op::Heartbeat { lease, at } => {
                let Some((key, mine, theirs)) = leases.get(lease).cloned() else { continue };
                let d = Some(Payload::encode(&at).unwrap());
                same(
                    "heartbeat",
                    mem.heartbeat(&key, mine, d.clone(), secs(at), secs(at)).await,
                    other.heartbeat(&key, theirs, d, secs(at), secs(at)).await,
                )?;
            }
            Op::Retain { before } => {
                same(
                    "delete_closed_before",
                    mem.delete_closed_before(secs(before)).await,
                    other.delete_closed_before(secs(before)).await,
                )?;
            }
        }
        // The observable state agrees after every step.
        same("list_runs", mem.list_runs(&RunFilter::default()).await, other.list_runs(&RunFilter::default()).await)?;
        for q in [TaskQueue::Workflow, TaskQueue::Activity] {
            same("next_due", mem.next_due(q).await, other.next_due(q).await)?;
        }
        for id in &runs {
            same("get_run", mem.get_run(id).await, other.get_run(id).await)?;
            same("read_history", mem.read_history(id, 0).await, other.read_history(id, 0).await)?;
            same("list_tasks", mem.list_tasks(id).await, other.list_tasks(id).await)?;
            same("list_attempts", mem.list_attempts(id).await, other.list_attempts(id).await)?;
        }
    }
    Ok(())
}
