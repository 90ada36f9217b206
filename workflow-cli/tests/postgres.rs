//! `wf --db postgres://...` reads and controls runs while a worker (here, in this process)
//! runs on the same database; the worker sees what `wf` did at once (LISTEN/NOTIFY).

mod common;

use std::time::Duration;

use common::{populate, wf_async};
use workflow_core::SystemClock;
use workflow_core::{Clock, Timestamp};
use workflow_store_postgres::{testing, PostgresStore};

async fn wf_pg(now: Timestamp, url: &str, args: &[&str]) -> common::Output {
    let mut v = vec!["--db".to_string(), url.to_string()];
    v.extend(args.iter().map(|s| s.to_string()));
    wf_async(now, v).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wf_reads_and_controls_runs_while_a_worker_runs() {
    let Some(server) = testing::server() else { return };
    let url = server.create_database("wf").await;
    let store = std::sync::Arc::new(PostgresStore::connect(&url).await.unwrap());
    let running = populate(store).await;
    let client = running.client();
    let now = SystemClock.now();

    let out = wf_pg(now, &url, &["list"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.lines().count(), 6, "a header and five runs:\n{}", out.stdout);
    for id in ["order-1 ", "order-1/shipping", "import-1", "reminder-1", "approval-1"] {
        assert!(out.stdout.contains(id), "{id} missing:\n{}", out.stdout);
    }
    let out = wf_pg(now, &url, &["describe", "import-1"]).await;
    assert!(out.stdout.contains("Status       running") && out.stdout.contains("always_fails"), "{}", out.stdout);
    let out = wf_pg(now, &url, &["attempts", "order-1"]).await;
    assert!(out.stdout.contains("flaky_fetch  1") && out.stdout.contains("test-worker"), "{}", out.stdout);
    let out = wf_pg(now, &url, &["list", "--status", "failed"]).await;
    assert_eq!(out.stdout.lines().count(), 3, "order-1 and its child:\n{}", out.stdout);

    // A signal sent by another process reaches the running workflow through the database.
    let out = wf_pg(now, &url, &["signal", "approval-1", "approve", "--json", r#"{"by":"ana"}"#]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let approved = client.handle::<common::Approval>("approval-1");
    let result = tokio::time::timeout(Duration::from_secs(20), approved.result()).await.expect("approval-1 finishes");
    assert_eq!(result.unwrap(), serde_json::json!({"by": "ana"}));
    let out = wf_pg(now, &url, &["describe", "approval-1"]).await;
    assert!(out.stdout.contains("Status       completed"), "{}", out.stdout);

    // A missing workflow is exit code 1, as with a sled store.
    let out = wf_pg(now, &url, &["describe", "nope"]).await;
    assert_eq!(out.code, 1, "{out:?}");

    drop(client);
    running.shutdown().await;
    server.drop_database(&url).await;
}
