//! The crash-test harness: runs the crash workload on a `SledStore` in `<dir>` until every
//! workflow has its result, then prints `writes=<n>` and exits 0.
//!
//! With `KILL_AFTER_WRITES=k` it aborts right after its k-th durable store write. Run it again
//! on the same directory to recover: workflows that were started are not started again.
//!
//! `CRASH_RELAXED_MS=n` opens the store with `Durability::Relaxed` (flush every n ms): a store
//! that acknowledges before flushing, to see the crash test's checks catch lost writes.
//!
//! With `CRASH_PG_URL` and `CRASH_PG_SCHEMA` it uses that PostgreSQL store instead (the
//! directory still holds the acknowledgement and execution logs). The worker's identity is
//! fixed, so that a recovery takes back the leases the killed process held at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tests::crash::{
    acks_path, append_line, execs_path, kill_switch, store_path, Kind, Parallel, Parent, Sequential, Step, WORKLOAD,
};
use workflow_core::store::Store;
use workflow_core::{Client, StartOptions, Worker, WorkerOptions, Workflow};
use workflow_store_postgres::PostgresStore;
use workflow_store_sled::{Durability, SledStore};

async fn start_or_attach<W: Workflow<Input = u64, Output = u64>>(
    client: &Client,
    dir: &std::path::Path,
    id: &str,
    input: u64,
) -> anyhow::Result<u64> {
    let existing = client.store().current_run(id).await?;
    let handle = match existing {
        Some(_) => client.handle::<W>(id),
        None => match client.start::<W>(id, input, StartOptions::default()).await {
            Ok(h) => {
                let run_id = h.run_id().map(|r| r.to_string()).unwrap_or_default();
                append_line(&acks_path(dir), &format!("start {id} {run_id}"))?;
                h
            }
            // A start the killed process sent but never saw acknowledged can become visible
            // between our look and our start (PostgreSQL finishes a transaction whose COMMIT
            // it received before the connection dropped): attach to it, as a client would.
            Err(workflow_core::StartError::AlreadyStarted { .. }) => client.handle::<W>(id),
            Err(e) => return Err(e.into()),
        },
    };
    let v = handle.result().await.with_context(|| format!("result of {id}"))?;
    append_line(&acks_path(dir), &format!("done {id} {v}"))?;
    Ok(v)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    // The engine's warnings go to stderr, which the crash test keeps as `harness.log` and
    // prints when a harness hangs; `CRASH_LOG` (a tracing filter) asks for more.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CRASH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let dir = PathBuf::from(std::env::args().nth(1).context("usage: crash_workload <dir>")?);
    let kill_after = match std::env::var("KILL_AFTER_WRITES") {
        Ok(v) => Some(v.parse::<u64>().context("KILL_AFTER_WRITES")?),
        Err(_) => None,
    };
    let (inner, recovered): (Arc<dyn Store>, usize) =
        match (std::env::var("CRASH_PG_URL"), std::env::var("CRASH_PG_SCHEMA")) {
            (Ok(url), Ok(schema)) => {
                let pg =
                    PostgresStore::builder(url).schema(schema).pool_size(4).connect().await.context("connecting")?;
                (Arc::new(pg), 0)
            }
            _ => {
                let mut builder = SledStore::builder(store_path(&dir));
                if let Ok(ms) = std::env::var("CRASH_RELAXED_MS") {
                    let every = Duration::from_millis(ms.parse().context("CRASH_RELAXED_MS")?);
                    builder = builder.durability(Durability::Relaxed { every });
                }
                let sled = builder.open().context("opening the store")?;
                let recovered = sled.recovery().lost_leases;
                (Arc::new(sled), recovered)
            }
        };
    let store = Arc::new(kill_switch(inner, kill_after));
    let mut worker = Worker::new(store.clone(), WorkerOptions::default().identity("crash-harness"));
    worker.register_workflow::<Sequential>()?;
    worker.register_workflow::<Parallel>()?;
    worker.register_workflow::<Parent>()?;
    worker.register_activity(Step { log: execs_path(&dir) })?;
    let worker = worker.start()?;
    let client = worker.client();
    let runs = WORKLOAD.iter().map(|&(id, kind, input)| {
        let (client, dir) = (client.clone(), dir.clone());
        async move {
            match kind {
                Kind::Sequential => start_or_attach::<Sequential>(&client, &dir, id, input).await,
                Kind::Parallel => start_or_attach::<Parallel>(&client, &dir, id, input).await,
                Kind::Parent => start_or_attach::<Parent>(&client, &dir, id, input).await,
            }
        }
    });
    for r in futures::future::join_all(runs).await {
        r?;
    }
    worker.shutdown().await;
    println!("writes={} lost_leases={recovered}", store.durable_writes());
    Ok(())
}
