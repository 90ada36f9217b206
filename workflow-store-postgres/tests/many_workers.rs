//! What only a shared store has to get right: several store instances (as several processes
//! would have) on one schema.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use workflow_core::history::EventKind;
use workflow_core::store::conformance::new_run;
use workflow_core::store::{AppendRequest, Store, Task, TaskKey, TaskKind, TaskOp, TaskQueue};
use workflow_core::{Payload, StoreError, Timestamp};
use workflow_store_postgres::{testing, PostgresStore};

const T0: Timestamp = Timestamp(1_700_000_000_000);

/// Two instances on one fresh schema.
async fn pair(tag: &str) -> Option<(PostgresStore, PostgresStore)> {
    let server = testing::server()?;
    let a = server.store(tag).await;
    let b = PostgresStore::builder(server.url()).schema(a.schema()).pool_size(4).connect().await.unwrap();
    Some((a, b))
}

fn timer(run: &workflow_core::RunId, seq: u32) -> Task {
    Task {
        key: TaskKey::timer(run, seq),
        run_id: run.clone(),
        visible_at: T0,
        lease_duration: Duration::from_secs(600),
        kind: TaskKind::Timer { seq },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_leasers_never_share_a_task() {
    let Some((a, b)) = pair("skiplocked").await else { return };
    let run = new_run("wf", "T", T0);
    let id = run.info.run_id.clone();
    a.create_run(run).await.unwrap();
    let mut req = AppendRequest::new(id.clone(), T0);
    for seq in 0..200 {
        req = req.task_op(TaskOp::Upsert(timer(&id, seq)));
    }
    a.append(req).await.unwrap();
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut handles = Vec::new();
    for (i, s) in [a.clone(), b.clone(), a.clone(), b.clone()].into_iter().enumerate() {
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let v = s.lease_tasks(TaskQueue::Workflow, T0, 7, &format!("w{i}")).await.unwrap();
                if v.is_empty() {
                    return got;
                }
                got.extend(v.into_iter().map(|l| l.task.key));
            }
        }));
    }
    let mut all = HashSet::new();
    let mut total = 0;
    for h in handles {
        for k in h.await.unwrap() {
            total += 1;
            assert!(all.insert(k.clone()), "{k} was leased twice");
        }
    }
    assert_eq!(total, 201, "every task (200 timers and the workflow task) leased exactly once");
    let s = Arc::try_unwrap(a).ok().unwrap();
    drop(b);
    s.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_of_two_writers_records_a_step() {
    let Some((a, b)) = pair("occ").await else { return };
    let run = new_run("wf", "T", T0);
    let id = run.info.run_id.clone();
    a.create_run(run).await.unwrap();
    let step = |s: u32| {
        AppendRequest::new(id.clone(), T0)
            .expect_last(1)
            .events([EventKind::SideEffectRecorded { seq: s, value: Payload::null() }])
    };
    let (ra, rb) = tokio::join!(a.append(step(0)), b.append(step(1)));
    let wins = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "exactly one writer wins: {ra:?} {rb:?}");
    let loser = if ra.is_err() { ra } else { rb };
    assert!(matches!(loser, Err(StoreError::Conflict { expected: 1, actual: 2, .. })), "{loser:?}");
    assert_eq!(b.read_history(&id, 0).await.unwrap().len(), 2);
    drop(b);
    a.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_is_woken_and_told_of_closes() {
    let Some((a, b)) = pair("notify").await else { return };
    let notify = b.notifier().unwrap();
    let mut closed = b.closed_runs().unwrap();
    // Let b's LISTEN connection come up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let run = new_run("wf", "T", T0);
    let id = run.info.run_id.clone();
    let woken = notify.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    a.create_run(run).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), woken).await.expect("b is woken by a's commit");
    a.append(AppendRequest::new(id.clone(), T0).events([EventKind::WorkflowCompleted { result: Payload::null() }]))
        .await
        .unwrap();
    let got =
        tokio::time::timeout(Duration::from_secs(10), closed.recv()).await.expect("b hears of the close").unwrap();
    assert_eq!(got, id);
    drop(b);
    a.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_identity_takes_its_leases_back_at_once() {
    let Some((a, b)) = pair("reclaim").await else { return };
    let run = new_run("wf", "T", T0);
    let id = run.info.run_id.clone();
    a.create_run(run).await.unwrap();
    a.append(AppendRequest::new(id.clone(), T0).task_op(TaskOp::Upsert(timer(&id, 0)))).await.unwrap();
    let held = a.lease_tasks(TaskQueue::Workflow, T0, 10, "pod-1").await.unwrap();
    assert_eq!(held.len(), 2);
    // "pod-1" dies; its leases last 10 minutes. Another identity releasing changes nothing.
    assert_eq!(b.release_leases_of("pod-2", T0).await.unwrap(), 0);
    assert!(b.lease_tasks(TaskQueue::Workflow, T0, 10, "pod-1").await.unwrap().is_empty());
    // "pod-1" comes back (a new process, the same identity) and takes them at once.
    assert_eq!(b.release_leases_of("pod-1", T0).await.unwrap(), 2);
    let again = b.lease_tasks(TaskQueue::Workflow, T0, 10, "pod-1").await.unwrap();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|l| l.previous_lease_lost), "the loss is reported");
    // The dead process's tokens are fenced off.
    let old = &held[0];
    let done = a.append(AppendRequest::new(id.clone(), T0).complete(old.task.key.clone(), old.token)).await;
    assert!(matches!(done, Err(StoreError::LeaseLost { .. })), "{done:?}");
    drop(b);
    a.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_and_bad_credentials_are_named() {
    let Some(server) = testing::server() else { return };
    let a = server.store("version").await;
    let schema = a.schema().to_string();
    {
        // A future version of this crate migrated the schema further.
        let url = server.url().to_string();
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        let conn = tokio::spawn(conn);
        client.batch_execute(&format!("INSERT INTO {schema}.wf_migrations (version) VALUES (999)")).await.unwrap();
        drop(client);
        let _ = conn.await;
    }
    let err = PostgresStore::builder(server.url()).schema(&schema).connect().await.err().expect("refused");
    assert!(
        matches!(err, StoreError::UnsupportedVersion { found: 999, supported } if supported == workflow_store_postgres::SCHEMA_VERSION as u32),
        "{err}"
    );
    a.destroy().await.unwrap();

    let err = PostgresStore::connect("postgres://nobody:hunter2@127.0.0.1:1/nowhere").await.err().expect("unreachable");
    let msg = err.to_string();
    assert!(msg.contains("127.0.0.1:1/nowhere") && msg.contains("nobody"), "{msg}");
    assert!(!msg.contains("hunter2"), "the password leaked: {msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_used_when_the_url_asks_for_it() {
    let Some(server) = testing::server() else { return };
    let sep = if server.url().contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}sslmode=require&application_name=wf-tls-test", server.url());
    let (client, conn) = tokio_postgres::connect(server.url(), tokio_postgres::NoTls).await.unwrap();
    let conn = tokio::spawn(conn);
    let ssl_on: String = client.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    let store = PostgresStore::builder(url.as_str()).schema(server.fresh_schema("tls")).listen(false).connect().await;
    if ssl_on == "on" {
        let store = store.expect("sslmode=require connects to a server with TLS");
        let row = client
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
                  WHERE a.application_name = 'wf-tls-test'",
                &[],
            )
            .await
            .unwrap();
        let (all, tls): (i64, i64) = (row.get(0), row.get(1));
        assert!(all > 0 && all == tls, "{tls} of {all} connections use TLS");
        store.destroy().await.unwrap();
    } else {
        let err = store.err().expect("sslmode=require fails without TLS on the server");
        assert!(err.to_string().contains("127.0.0.1") || err.to_string().contains("localhost"), "{err}");
    }
    drop(client);
    let _ = conn.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_sweeps_old_closed_runs_in_the_background() {
    let Some((a, _b)) = pair("retention").await else { return };
    let (old, open) = (new_run("old", "T", T0), new_run("open", "T", T0));
    let (old_id, open_id) = (old.info.run_id.clone(), open.info.run_id.clone());
    a.create_run(old).await.unwrap();
    a.create_run(open).await.unwrap();
    a.append(AppendRequest::new(old_id.clone(), T0).events([EventKind::WorkflowCompleted { result: Payload::null() }]))
        .await
        .unwrap();
    // T0 is in 2023: a store keeping closed runs for a day deletes it on its first sweep.
    let server = testing::server().unwrap();
    let sweeper = PostgresStore::builder(server.url())
        .schema(a.schema())
        .retention(Duration::from_secs(86_400))
        .connect()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while a.get_run(&old_id).await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "the old run was not swept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(a.read_history(&old_id, 0).await.is_err(), "its history went with it");
    assert!(a.get_run(&open_id).await.unwrap().is_some(), "an open run is kept");
    drop(sweeper);
    a.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_connecting_at_once_migrate_once() {
    let Some(server) = testing::server() else { return };
    let schema = server.fresh_schema("migrate");
    let connects = (0..8).map(|_| PostgresStore::builder(server.url()).schema(schema.as_str()).listen(false).connect());
    let stores: Vec<PostgresStore> =
        futures::future::join_all(connects).await.into_iter().map(|r| r.expect("every worker connects")).collect();
    let (client, conn) = tokio_postgres::connect(server.url(), tokio_postgres::NoTls).await.unwrap();
    let conn = tokio::spawn(conn);
    let rows =
        client.query(&format!("SELECT version FROM {schema}.wf_migrations ORDER BY version"), &[]).await.unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, (1..=workflow_store_postgres::SCHEMA_VERSION).collect::<Vec<_>>(), "each migration once");
    drop(client);
    let _ = conn.await;
    stores[0].destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_starts_of_one_workflow_id_give_one_run_and_a_typed_error() {
    let Some((a, b)) = pair("race").await else { return };
    for i in 0..20 {
        let id = format!("wf-{i}");
        let (ra, rb) = tokio::join!(a.create_run(new_run(&id, "T", T0)), b.create_run(new_run(&id, "T", T0)));
        let ok = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "exactly one start of {id} wins: {ra:?} {rb:?}");
        let lost = if ra.is_err() { ra } else { rb };
        // The loser's group hit the unique index (or saw the run) and was retried: a typed
        // error, never a backend failure.
        assert!(matches!(lost, Err(StoreError::AlreadyExists { .. })), "{lost:?}");
    }
    drop(b);
    a.destroy().await.unwrap();
}

struct AddOne;
impl workflow_core::Activity for AddOne {
    const NAME: &'static str = "add_one";
    type Input = u64;
    type Output = u64;
    async fn run(&self, _: workflow_core::ActivityContext, n: u64) -> Result<u64, workflow_core::ActivityError> {
        Ok(n + 1)
    }
}

struct Twice;
impl workflow_core::Workflow for Twice {
    const NAME: &'static str = "twice";
    type Input = u64;
    type Output = u64;
    async fn run(ctx: workflow_core::WorkflowContext, n: u64) -> Result<u64, workflow_core::WorkflowError> {
        let n = ctx.activity::<AddOne>(n).await?;
        Ok(ctx.activity::<AddOne>(n).await?)
    }
}

/// A restarted process gives up its previous incarnation's leases as it starts; a run it
/// starts at once (eager workflow start) keeps its brand-new lease, so its first workflow
/// task runs once, without the queue. (That the start waits for the release is checked
/// deterministically in `workflow-core/tests/eager.rs`; here, on a real PostgreSQL, three
/// restarts of one identity.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eager_start_right_after_a_restart_keeps_its_lease() {
    let Some(server) = testing::server() else { return };
    let store = server.store("eagerstart").await;
    let counting = Arc::new(workflow_core::testing::CountingStore::new(Arc::new(store)));
    for round in 0..3 {
        // The same identity each round, as a restarted pod has.
        let mut w =
            workflow_core::Worker::new(counting.clone(), workflow_core::WorkerOptions::default().identity("pod-x"));
        w.register_workflow::<Twice>().unwrap();
        w.register_activity(AddOne).unwrap();
        let running = w.start().unwrap();
        let before = counting.calls();
        let h = running
            .client()
            .start::<Twice>(&format!("eager-{round}"), round, workflow_core::StartOptions::default())
            .await
            .unwrap();
        assert_eq!(h.result().await.unwrap(), round + 2);
        let after = counting.calls();
        assert_eq!(after.eager_starts - before.eager_starts, 1, "the start was eager: {after:?}");
        assert_eq!(
            after.workflow_leases, before.workflow_leases,
            "no workflow task went through the queue (a released eager lease would): {after:?}"
        );
        running.shutdown().await;
    }
}
