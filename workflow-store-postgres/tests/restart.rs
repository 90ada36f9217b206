//! The database crashes and comes back in the middle of a workflow: the store reconnects,
//! and nothing that was acknowledged is lost or recorded twice.

use std::sync::Arc;
use std::time::Duration;

use workflow_core::history::EventKind;
use workflow_core::{
    Activity, ActivityContext, ActivityError, ActivityOptions, RetryPolicy, StartOptions, Worker, WorkerOptions,
    Workflow, WorkflowContext, WorkflowError,
};
use workflow_store_postgres::testing::Cluster;
use workflow_store_postgres::PostgresStore;

struct Slow;

impl Activity for Slow {
    const NAME: &'static str = "slow_add_one";
    type Input = u64;
    type Output = u64;

    fn options() -> ActivityOptions {
        ActivityOptions::default().start_to_close_timeout(Duration::from_secs(2)).retry_policy(
            RetryPolicy::default()
                .initial_interval(Duration::from_millis(50))
                .maximum_interval(Duration::from_millis(200)),
        )
    }

    async fn run(&self, _ctx: ActivityContext, n: u64) -> Result<u64, ActivityError> {
        tokio::time::sleep(Duration::from_millis(40)).await;
        Ok(n + 1)
    }
}

struct Chain;

impl Workflow for Chain {
    const NAME: &'static str = "chain";
    type Input = u64;
    type Output = u64;

    async fn run(ctx: WorkflowContext, steps: u64) -> Result<u64, WorkflowError> {
        let mut n = 0;
        for _ in 0..steps {
            n = ctx.activity::<Slow>(n).await?;
        }
        Ok(n)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_crash_mid_workflow_loses_nothing_acknowledged() {
    let cluster = match Cluster::start() {
        Ok(c) => c,
        Err(why) if std::env::var("WORKFLOW_PG_REQUIRED").as_deref() != Ok("1") => {
            eprintln!("PostgreSQL restart test skipped: {why}");
            return;
        }
        Err(why) => panic!("PostgreSQL tests are required (WORKFLOW_PG_REQUIRED=1) but {why}"),
    };
    let store = Arc::new(PostgresStore::connect(&cluster.url()).await.unwrap());
    let mut worker = Worker::new(store.clone(), WorkerOptions::default().poll_interval(Duration::from_millis(200)));
    worker.register_workflow::<Chain>().unwrap();
    worker.register_activity(Slow).unwrap();
    let running = worker.start().unwrap();
    let client = running.client();
    let handle = client.start::<Chain>("chain-1", 60, StartOptions::default()).await.unwrap();

    // Let some steps commit, then crash the server and bring it back a second later.
    let steps_before = loop {
        let h = client.history("chain-1").await.unwrap();
        let done = h.iter().filter(|e| matches!(e.kind, EventKind::ActivityCompleted { .. })).count();
        if done >= 10 {
            break h;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    cluster.crash().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.start_server().unwrap();

    let result = tokio::time::timeout(Duration::from_secs(90), handle.result()).await.expect("the run finishes");
    assert_eq!(result.unwrap(), 60);
    let history = client.history("chain-1").await.unwrap();
    // What was acknowledged before the crash is still there, unchanged.
    assert_eq!(&history[..steps_before.len()], &steps_before[..], "acknowledged events changed");
    let mut completed = std::collections::BTreeMap::new();
    for e in &history {
        if let EventKind::ActivityCompleted { seq, .. } = e.kind {
            *completed.entry(seq).or_insert(0) += 1;
        }
    }
    assert_eq!(completed.len(), 60);
    assert!(completed.values().all(|n| *n == 1), "an activity completed twice: {completed:?}");
    drop(client);
    running.shutdown().await;
}
