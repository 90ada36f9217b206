//! The store conformance suite: every [`Store`] implementation runs it.
//!
//! ```ignore
//! #[tokio::test]
//! async fn conformance() {
//!     workflow_core::store::conformance::run_all(|| async { Arc::new(MyStore::new()) as Arc<dyn Store> }).await;
//! }
//! ```
//!
//! Each check panics with a message naming the broken rule.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::history::EventKind;
use crate::ids::RunId;
use crate::payload::Payload;
use crate::time::Timestamp;

const T0: Timestamp = Timestamp(1_700_000_000_000);

/// Runs every check, each on a fresh store from `make`.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    create_and_read(make().await).await;
    duplicate_workflow_id(make().await).await;
    append_assigns_ids_and_checks_conflicts(make().await).await;
    visibility_and_lease_exclusivity(make().await).await;
    lease_expiry_and_fencing(make().await).await;
    complete_rearm_and_release(make().await).await;
    terminal_event_closes_run(make().await).await;
    heartbeat_extends_lease(make().await).await;
    failed_append_changes_nothing(make().await).await;
    listing_and_attempts(make().await).await;
    retention_deletes_closed_runs(make().await).await;
    task_for_another_run_survives_close(make().await).await;
    eager_lease_in_the_same_write(make().await).await;
    eager_lease_expires_as_lost(make().await).await;
    eager_lease_of_a_new_run(make().await).await;
    concurrent_appends_fail_alone(make().await).await;
}

/// A new run for tests.
pub fn new_run(workflow_id: &str, workflow_type: &str, time: Timestamp) -> NewRun {
    NewRun::new(RunId::generate(), workflow_type, workflow_id, Payload::null(), time).seed(7)
}

fn timer_task(run_id: &RunId, seq: u32, at: Timestamp) -> Task {
    Task {
        key: TaskKey::timer(run_id, seq),
        run_id: run_id.clone(),
        visible_at: at,
        lease_duration: Duration::from_secs(10),
        kind: TaskKind::Timer { seq },
    }
}

async fn lease_one(store: &Arc<dyn Store>, now: Timestamp) -> LeasedTask {
    let mut v = store.lease_tasks(TaskQueue::Workflow, now, 1, "w1").await.expect("lease");
    assert_eq!(v.len(), 1, "expected one visible workflow-queue task at {now}");
    v.remove(0)
}

async fn create_and_read(store: Arc<dyn Store>) {
    let run = new_run("wf-1", "T", T0);
    let run_id = run.info.run_id.clone();
    store.create_run(run).await.expect("create_run");
    let h = store.read_history(&run_id, 0).await.expect("read_history");
    assert_eq!(h.len(), 1, "a new run has exactly its WorkflowStarted event");
    assert_eq!(h[0].id, 1);
    assert!(matches!(h[0].kind, EventKind::WorkflowStarted { .. }));
    let info = store.get_run(&run_id).await.unwrap().expect("get_run finds the run");
    assert_eq!(info.status, RunStatus::Running);
    assert_eq!(info.last_event_id, 1);
    let cur = store.current_run("wf-1").await.unwrap().expect("current_run");
    assert_eq!(cur.run_id, run_id);
    assert!(store.get_run(&RunId("nope".into())).await.unwrap().is_none());
    assert!(matches!(store.read_history(&RunId("nope".into()), 0).await, Err(StoreError::NotFound { .. })));
    // A new run has its first workflow task, visible at once.
    let t = lease_one(&store, T0).await;
    assert_eq!(t.task.key, TaskKey::workflow(&run_id));
}

async fn duplicate_workflow_id(store: Arc<dyn Store>) {
    let first = new_run("dup", "T", T0);
    let first_id = first.info.run_id.clone();
    store.create_run(first).await.unwrap();
    match store.create_run(new_run("dup", "T", T0)).await {
        Err(StoreError::AlreadyExists { run_id, .. }) => assert_eq!(run_id, first_id),
        other => panic!("a second open run for one workflow id must fail with AlreadyExists, got {other:?}"),
    }
    store
        .append(
            AppendRequest::new(first_id.clone(), T0).events([EventKind::WorkflowCompleted { result: Payload::null() }]),
        )
        .await
        .unwrap();
    let second = new_run("dup", "T", T0.add(Duration::from_secs(1)));
    let second_id = second.info.run_id.clone();
    store.create_run(second).await.expect("a closed workflow id can start a new run");
    assert_eq!(store.current_run("dup").await.unwrap().unwrap().run_id, second_id, "current_run is the newest run");
    assert_eq!(store.get_run(&first_id).await.unwrap().unwrap().status, RunStatus::Completed);
}

async fn append_assigns_ids_and_checks_conflicts(store: Arc<dyn Store>) {
    let run = new_run("ids", "T", T0);
    let run_id = run.info.run_id.clone();
    store.create_run(run).await.unwrap();
    let out = store
        .append(AppendRequest::new(run_id.clone(), T0.add(Duration::from_secs(1))).expect_last(1).events([
            EventKind::TimerStarted { seq: 0, fire_at: T0 },
            EventKind::SideEffectRecorded { seq: 1, value: Payload::null() },
        ]))
        .await
        .unwrap();
    assert_eq!(out.last_event_id, 3);
    match store
        .append(AppendRequest::new(run_id.clone(), T0).expect_last(1).events([EventKind::TimerFired { seq: 0 }]))
        .await
    {
        Err(StoreError::Conflict { expected: 1, actual: 3, .. }) => {}
        other => panic!("a stale expected_last_event_id must conflict, got {other:?}"),
    }
    // An earlier time is raised to the last event's time.
    let out =
        store.append(AppendRequest::new(run_id.clone(), T0).events([EventKind::TimerFired { seq: 0 }])).await.unwrap();
    assert_eq!(out.last_event_id, 4);
    assert!(out.time >= T0.add(Duration::from_secs(1)), "event times must not go back");
    let h = store.read_history(&run_id, 0).await.unwrap();
    assert_eq!(h.iter().map(|e| e.id).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    crate::history::check_invariants(&h).expect("history invariants");
    let tail = store.read_history(&run_id, 2).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.id).collect::<Vec<_>>(), vec![3, 4], "read_history returns ids above `after`");
}

async fn visibility_and_lease_exclusivity(store: Arc<dyn Store>) {
    let run = new_run("vis", "T", T0);
    let run_id = run.info.run_id.clone();
    store.create_run(run).await.unwrap();
    let wt = lease_one(&store, T0).await;
    let later = T0.add(Duration::from_secs(60));
    store
        .append(
            AppendRequest::new(run_id.clone(), T0)
                .task_op(TaskOp::Upsert(timer_task(&run_id, 0, later)))
                .complete(wt.task.key.clone(), wt.token),
        )
        .await
        .unwrap();
    assert!(
        store.lease_tasks(TaskQueue::Workflow, T0, 10, "w1").await.unwrap().is_empty(),
        "a task is invisible before visible_at"
    );
    assert!(store.lease_tasks(TaskQueue::Activity, later, 10, "w1").await.unwrap().is_empty(), "queues are separate");
    assert_eq!(store.next_due(TaskQueue::Workflow).await.unwrap(), Some(later));
    let t = lease_one(&store, later).await;
    assert_eq!(t.task.key, TaskKey::timer(&run_id, 0));
    assert!(!t.previous_lease_lost);
    assert!(
        store.lease_tasks(TaskQueue::Workflow, later, 10, "w2").await.unwrap().is_empty(),
        "a leased task is not leased again before its lease expires"
    );
}

async fn lease_expiry_and_fencing(store: Arc<dyn Store>) {
    let run = new_run("exp", "T", T0);
    let run_id = run.info.run_id.clone();
    store.create_run(run).await.unwrap();
    let first = lease_one(&store, T0).await;
    let after_expiry = T0.add(Duration::from_secs(61));
    let second = lease_one(&store, after_expiry).await;
    assert!(second.previous_lease_lost, "a task re-leased after expiry reports the lost lease");
    assert_ne!(first.token, second.token);
    match store
        .append(AppendRequest::new(run_id.clone(), after_expiry).complete(first.task.key.clone(), first.token))
        .await
    {
        Err(StoreError::LeaseLost { .. }) => {}
        other => {
            panic!("completing with a superseded lease must fail with LeaseLost, got {other:?}")
        }
    }
    store
        .append(AppendRequest::new(run_id.clone(), after_expiry).complete(second.task.key.clone(), second.token))
        .await
        .unwrap();
    assert!(store
        .lease_tasks(TaskQueue::Workflow, after_expiry.add(Duration::from_secs(600)), 10, "w")
        .await
        .unwrap()
        .is_empty());
}

async fn complete_rearm_and_release(store: Arc<dyn Store>) {
    let run = new_run("rearm", "T", T0);
    let run_id = run.info.run_id.clone();
    store.create_run(run).await.unwrap();
    let t = lease_one(&store, T0).await;
    // Re-armed while leased: completing clears the lease but keeps the task.
    store
        .append(
            AppendRequest::new(run_id.clone(), T0)
                .events([EventKind::SignalReceived { name: "s".into(), payload: Payload::null(), sender: None }])
                .task_op(TaskOp::Upsert(Task::workflow(&run_id, T0))),
        )
        .await
        .unwrap();
    store.append(AppendRequest::new(run_id.clone(), T0).complete(t.task.key.clone(), t.token)).await.unwrap();
    let again = lease_one(&store, T0).await;
    assert_eq!(again.task.key, TaskKey::workflow(&run_id), "a task re-armed during its lease survives completion");
    // Released: visible again, lease not counted as lost.
    store.append(AppendRequest::new(run_id.clone(), T0).release(again.task.key.clone(), again.token)).await.unwrap();
    let third = lease_one(&store, T0).await;
    assert!(!third.previous_lease_lost, "a released lease is not a lost lease");
    store.append(AppendRequest::new(run_id.clone(), T0).complete(third.task.key.clone(), third.token)).await.unwrap();
    assert!(
        store.lease_tasks(TaskQueue::Workflow, T0.add(Duration::from_secs(3600)), 10, "w").await.unwrap().is_empty(),
        "a completed task is gone"
    );
}

async fn terminal_event_closes_run(store: Arc<dyn Store>) {
    let run = new_run("close", "T", T0);
    let run_id = run.info.run_id.clone();
    store.create_run(run).await.unwrap();
    let t = lease_one(&store, T0).await;
    store
        .append(
            AppendRequest::new(run_id.clone(), T0)
                .task_op(TaskOp::Upsert(timer_task(&run_id, 0, T0.add(Duration::from_secs(5)))))
                .complete(t.task.key.clone(), t.token),
        )
        .await
        .unwrap();
    let end = T0.add(Duration::from_secs(2));
    store
        .append(
            AppendRequest::new(run_id.clone(), end).events([EventKind::WorkflowFailed {
                failure: crate::error::Failure::new("E", "boom"),
                next_run: None,
            }]),
        )
        .await
        .unwrap();
    let info = store.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(info.status, RunStatus::Failed);
    assert_eq!(info.close_time, Some(end));
    assert_eq!(info.failure.as_ref().map(|f| f.message.as_str()), Some("boom"));
    assert!(store.list_tasks(&run_id).await.unwrap().is_empty(), "closing a run deletes its tasks");
    match store.append(AppendRequest::new(run_id.clone(), end).events([EventKind::TimerFired { seq: 0 }])).await {
        Err(StoreError::RunClosed { .. }) => {}
        other => panic!("events on a closed run must fail with RunClosed, got {other:?}"),
    }
}

async fn heartbeat_extends_lease(store: Arc<dyn Store>) {
    let run = new_run("hb", "T", T0);
    let run_id = run.info.run_id.clone();
    store.create_run(run).await.unwrap();
    let task = Task {
        key: TaskKey::activity(&run_id, 0),
        run_id: run_id.clone(),
        visible_at: T0,
        lease_duration: Duration::from_secs(10),
        kind: TaskKind::Activity(Box::new(ActivityTask {
            workflow_id: "hb".into(),
            seq: 0,
            activity_type: "a".into(),
            input: Payload::null(),
            options: crate::ActivityOptions::default(),
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
        })),
    };
    store.append(AppendRequest::new(run_id.clone(), T0).task_op(TaskOp::Upsert(task))).await.unwrap();
    let mut v = store.lease_tasks(TaskQueue::Activity, T0, 5, "w1").await.unwrap();
    assert_eq!(v.len(), 1);
    let leased = v.remove(0);
    let until = T0.add(Duration::from_secs(30));
    let beat_at = T0.add(Duration::from_secs(1));
    store.heartbeat(&leased.task.key, leased.token, Some(Payload::encode(&42).unwrap()), beat_at, until).await.unwrap();
    assert!(
        store.lease_tasks(TaskQueue::Activity, T0.add(Duration::from_secs(20)), 5, "w2").await.unwrap().is_empty(),
        "a heartbeat extends the lease"
    );
    let pending = store.list_tasks(&run_id).await.unwrap();
    let act = pending.iter().find(|p| p.task.key == leased.task.key).expect("listed");
    assert_eq!(act.lease.as_ref().map(|(o, _)| o.as_str()), Some("w1"), "list_tasks shows the lease owner");
    assert!(matches!(
        store.heartbeat(&leased.task.key, leased.token + 999, None, beat_at, until).await,
        Err(StoreError::LeaseLost { .. })
    ));
    let mut v = store.lease_tasks(TaskQueue::Activity, until.add(Duration::from_secs(1)), 5, "w2").await.unwrap();
    assert_eq!(v.len(), 1, "expired after the extended lease");
    match &v.remove(0).task.kind {
        TaskKind::Activity(a) => assert_eq!(
            (a.heartbeat_at, a.heartbeat.clone()),
            (Some(beat_at), Some(Payload::encode(&42).unwrap())),
            "heartbeat details and their time survive for the next attempt"
        ),
        other => panic!("expected an activity task, got {other:?}"),
    }
}

async fn failed_append_changes_nothing(store: Arc<dyn Store>) {
    let run = new_run("atomic", "T", T0);
    let run_id = run.info.run_id.clone();
    store.create_run(run).await.unwrap();
    let t = lease_one(&store, T0).await;
    let res = store
        .append(
            AppendRequest::new(run_id.clone(), T0)
                .events([EventKind::TimerStarted { seq: 0, fire_at: T0 }])
                .task_op(TaskOp::Upsert(timer_task(&run_id, 0, T0)))
                .complete(t.task.key.clone(), t.token + 1000),
        )
        .await;
    assert!(matches!(res, Err(StoreError::LeaseLost { .. })));
    assert_eq!(store.read_history(&run_id, 0).await.unwrap().len(), 1, "a failed append appends no events");
    assert!(
        !store.list_tasks(&run_id).await.unwrap().iter().any(|p| p.task.key == TaskKey::timer(&run_id, 0)),
        "a failed append creates no tasks"
    );
}

async fn listing_and_attempts(store: Arc<dyn Store>) {
    for (i, ty) in ["A", "B", "A"].iter().enumerate() {
        store.create_run(new_run(&format!("l{i}"), ty, T0.add(Duration::from_secs(i as u64)))).await.unwrap();
    }
    let a = store.list_runs(&RunFilter::default().workflow_type("A")).await.unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].workflow_id, "l2", "newest first");
    let done = store.current_run("l1").await.unwrap().unwrap();
    store
        .append(
            AppendRequest::new(done.run_id.clone(), T0)
                .events([EventKind::WorkflowCompleted { result: Payload::null() }])
                .attempt(AttemptRecord {
                    run_id: done.run_id.clone(),
                    seq: 0,
                    activity_type: "x".into(),
                    attempt: 1,
                    worker: "w".into(),
                    started_at: T0,
                    ended_at: T0,
                    outcome: AttemptOutcome::Completed,
                    last_heartbeat: None,
                }),
        )
        .await
        .unwrap();
    let completed = store.list_runs(&RunFilter::default().status(RunStatus::Completed)).await.unwrap();
    assert_eq!(completed.iter().map(|r| r.workflow_id.as_str()).collect::<Vec<_>>(), vec!["l1"]);
    assert_eq!(store.list_runs(&RunFilter::default().limit(1)).await.unwrap().len(), 1);
    let attempts = store.list_attempts(&done.run_id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Completed);
}

async fn retention_deletes_closed_runs(store: Arc<dyn Store>) {
    let old = new_run("old", "T", T0);
    let old_id = old.info.run_id.clone();
    store.create_run(old).await.unwrap();
    store
        .append(
            AppendRequest::new(old_id.clone(), T0).events([EventKind::WorkflowCompleted { result: Payload::null() }]),
        )
        .await
        .unwrap();
    let open = new_run("open", "T", T0);
    let open_id = open.info.run_id.clone();
    store.create_run(open).await.unwrap();
    let n = store.delete_closed_before(T0.add(Duration::from_secs(1))).await.unwrap();
    assert_eq!(n, 1);
    assert!(store.get_run(&old_id).await.unwrap().is_none(), "a closed run past retention is deleted");
    assert!(store.get_run(&open_id).await.unwrap().is_some(), "open runs are kept");
    assert!(store.current_run("old").await.unwrap().is_none());
}

async fn task_for_another_run_survives_close(store: Arc<dyn Store>) {
    let parent = new_run("parent", "P", T0);
    let parent_id = parent.info.run_id.clone();
    store.create_run(parent).await.unwrap();
    let child = new_run("parent/child-0", "C", T0);
    let child_id = child.info.run_id.clone();
    store.create_run(child).await.unwrap();
    // Drain both runs' first workflow tasks.
    for t in store.lease_tasks(TaskQueue::Workflow, T0, 10, "w").await.unwrap() {
        store
            .append(AppendRequest::new(t.task.run_id.clone(), T0).complete(t.task.key.clone(), t.token))
            .await
            .unwrap();
    }
    let notify = Task {
        key: TaskKey::child_closed(&parent_id, 0),
        run_id: parent_id.clone(),
        visible_at: T0,
        lease_duration: Duration::from_secs(10),
        kind: TaskKind::ChildClosed { seq: 0, child_run_id: child_id.clone() },
    };
    store
        .append(
            AppendRequest::new(child_id.clone(), T0)
                .events([EventKind::WorkflowCompleted { result: Payload::null() }])
                .task_op(TaskOp::Upsert(notify)),
        )
        .await
        .unwrap();
    let t = lease_one(&store, T0).await;
    assert_eq!(
        t.task.key,
        TaskKey::child_closed(&parent_id, 0),
        "a task created for another run belongs to that run and survives the closing run"
    );
    assert_eq!(t.task.run_id, parent_id);
    assert_eq!(store.list_tasks(&parent_id).await.unwrap().len(), 1, "list_tasks lists it under its own run");

    // A task may be created for a run that does not exist yet (a successor run), and its lease
    // completed through an append on another run.
    let future_run = RunId::generate();
    let start = Task {
        key: TaskKey::start_run(&future_run),
        run_id: future_run.clone(),
        visible_at: T0,
        lease_duration: Duration::from_secs(10),
        kind: TaskKind::RunTimeout,
    };
    store.append(AppendRequest::new(child_id.clone(), T0).task_op(TaskOp::Upsert(start))).await.unwrap();
    let leased = store.lease_tasks(TaskQueue::Workflow, T0, 10, "w").await.unwrap();
    let s = leased.iter().find(|t| t.task.run_id == future_run).expect("the task of a future run is leased");
    store
        .append(AppendRequest::new(child_id.clone(), T0).complete(s.task.key.clone(), s.token))
        .await
        .expect("a lease is completed through any existing run, even a closed one");
    assert!(store.list_tasks(&future_run).await.unwrap().is_empty());
}

async fn eager_lease_in_the_same_write(store: Arc<dyn Store>) {
    let run = new_run("eager", "T", T0);
    let run_id = run.info.run_id.clone();
    store.create_run(run).await.unwrap();
    let wt = lease_one(&store, T0).await;
    let timer = timer_task(&run_id, 0, T0);
    let other = timer_task(&run_id, 1, T0);
    let out = store
        .append(
            AppendRequest::new(run_id.clone(), T0)
                .events([
                    EventKind::TimerStarted { seq: 0, fire_at: T0 },
                    EventKind::TimerStarted { seq: 1, fire_at: T0 },
                ])
                .task_op(TaskOp::Upsert(timer.clone()))
                .task_op(TaskOp::Upsert(other.clone()))
                .complete(wt.task.key.clone(), wt.token)
                // A key the append does not upsert is not leased.
                .lease_to("eager-worker", T0, vec![timer.key.clone(), TaskKey::timer(&run_id, 9)]),
        )
        .await
        .unwrap();
    assert_eq!(out.leased.len(), 1, "exactly the upserted task named in the lease is leased: {:?}", out.leased);
    let leased = &out.leased[0];
    assert_eq!(leased.task, timer, "the eager lease returns the task as written");
    assert!(!leased.previous_lease_lost);
    let visible = store.lease_tasks(TaskQueue::Workflow, T0, 10, "poller").await.unwrap();
    assert_eq!(
        visible.iter().map(|t| t.task.key.clone()).collect::<Vec<_>>(),
        vec![other.key.clone()],
        "an eagerly leased task is not leased again through the queue"
    );
    let pending = store.list_tasks(&run_id).await.unwrap();
    let lease = pending.iter().find(|p| p.task.key == timer.key).and_then(|p| p.lease.clone());
    assert_eq!(lease.map(|l| l.0), Some("eager-worker".to_string()), "list_tasks shows the eager lease's holder");
    store
        .append(AppendRequest::new(run_id.clone(), T0).complete(leased.task.key.clone(), leased.token))
        .await
        .expect("the eager lease's token completes the task");
    assert!(
        !store.list_tasks(&run_id).await.unwrap().iter().any(|p| p.task.key == timer.key),
        "the completed eager task is gone"
    );
}

async fn eager_lease_expires_as_lost(store: Arc<dyn Store>) {
    let run = new_run("eager-lost", "T", T0);
    let run_id = run.info.run_id.clone();
    store.create_run(run).await.unwrap();
    let timer = timer_task(&run_id, 0, T0);
    let out = store
        .append(
            AppendRequest::new(run_id.clone(), T0)
                .events([EventKind::TimerStarted { seq: 0, fire_at: T0 }])
                .task_op(TaskOp::Upsert(timer.clone()))
                .lease_to("dies", T0, vec![timer.key.clone()]),
        )
        .await
        .unwrap();
    assert_eq!(out.leased.len(), 1);
    let later = T0.add(timer.lease_duration).add(Duration::from_millis(1));
    let again = store.lease_tasks(TaskQueue::Workflow, later, 10, "survivor").await.unwrap();
    let t = again.iter().find(|t| t.task.key == timer.key).expect("an expired eager lease makes the task visible");
    assert!(t.previous_lease_lost, "an expired eager lease is reported as lost");
    let stale =
        store.append(AppendRequest::new(run_id.clone(), later).complete(timer.key.clone(), out.leased[0].token));
    assert!(matches!(stale.await, Err(StoreError::LeaseLost { .. })), "the dead holder's token is fenced off");
}

async fn eager_lease_of_a_new_run(store: Arc<dyn Store>) {
    let plain = store.create_run(new_run("plain-start", "T", T0)).await.unwrap();
    assert!(plain.is_none(), "a creation without a lease leases nothing");
    let run = new_run("eager-start", "T", T0);
    let run_id = run.info.run_id.clone();
    let leased = store
        .create_run(run.lease_to("starter", T0))
        .await
        .unwrap()
        .expect("the creating write leases the run's first workflow task");
    assert_eq!(leased.task.key, TaskKey::workflow(&run_id));
    assert!(!leased.previous_lease_lost);
    let visible = store.lease_tasks(TaskQueue::Workflow, T0, 10, "poller").await.unwrap();
    assert!(
        visible.iter().all(|t| t.task.run_id != run_id),
        "a workflow task leased by its run's creation is not leased again through the queue: {visible:?}"
    );
    let pending = store.list_tasks(&run_id).await.unwrap();
    let holder = pending.iter().find(|p| p.task.key == leased.task.key).and_then(|p| p.lease.clone());
    assert_eq!(holder.map(|l| l.0), Some("starter".to_string()), "list_tasks shows the eager start's holder");

    // A creation refused (the id has an open run) leases nothing and leaves the open run's
    // task as it was.
    let again = store.create_run(new_run("eager-start", "T", T0).lease_to("other", T0)).await;
    assert!(matches!(again, Err(StoreError::AlreadyExists { .. })), "{again:?}");
    let pending = store.list_tasks(&run_id).await.unwrap();
    let holder = pending.iter().find(|p| p.task.key == leased.task.key).and_then(|p| p.lease.clone());
    assert_eq!(holder.map(|l| l.0), Some("starter".to_string()), "a refused creation takes no lease");

    // The holder dies: the lease expires and the task is taken over as lost; the old token
    // is fenced off.
    let later = T0.add(WORKFLOW_TASK_LEASE).add(Duration::from_millis(1));
    let taken = store.lease_tasks(TaskQueue::Workflow, later, 10, "survivor").await.unwrap();
    let t = taken.iter().find(|t| t.task.run_id == run_id).expect("an expired eager start is visible again");
    assert!(t.previous_lease_lost, "an expired eager start is reported as lost");
    let stale = store.append(AppendRequest::new(run_id.clone(), later).complete(leased.task.key.clone(), leased.token));
    assert!(matches!(stale.await, Err(StoreError::LeaseLost { .. })), "the dead starter's token is fenced off");
    store
        .append(AppendRequest::new(run_id.clone(), later).complete(t.task.key.clone(), t.token))
        .await
        .expect("the survivor's token completes the task");
}

async fn concurrent_appends_fail_alone(store: Arc<dyn Store>) {
    let mut runs = Vec::new();
    for i in 0..16 {
        let run = new_run(&format!("group-{i}"), "T", T0);
        runs.push(run.info.run_id.clone());
        store.create_run(run).await.unwrap();
    }
    // All at once, so that a store with group commit puts them in one write; the odd ones
    // carry a stale expectation and must fail without taking the others down.
    let appends = runs.iter().enumerate().map(|(i, run_id)| {
        let store = store.clone();
        let run_id = run_id.clone();
        async move {
            let expected = if i % 2 == 0 { 1 } else { 5 };
            let req = AppendRequest::new(run_id.clone(), T0)
                .expect_last(expected)
                .events([EventKind::SignalReceived { name: format!("s{i}"), payload: Payload::null(), sender: None }]);
            (run_id, i, store.append(req).await)
        }
    });
    for (run_id, i, result) in futures::future::join_all(appends).await {
        let history = store.read_history(&run_id, 0).await.unwrap();
        if i % 2 == 0 {
            assert_eq!(result.expect("a valid append in a group succeeds").last_event_id, 2);
            assert_eq!(history.len(), 2, "run {i}: its own event is recorded");
        } else {
            assert!(matches!(result, Err(StoreError::Conflict { .. })), "run {i}: {result:?}");
            assert_eq!(history.len(), 1, "run {i}: a failed append in a group records nothing");
        }
    }
}
