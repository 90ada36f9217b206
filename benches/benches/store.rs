//! One durable step through the `Store` contract, on `MemoryStore` and on `SledStore`
//! (durable: acknowledged after the flush): append a command event with the task it causes,
//! lease the task, append its outcome completing the lease. This is what a timer firing
//! costs the store; an activity step adds only payloads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use workflow_core::store::{AppendRequest, MemoryStore, Store, Task, TaskKey, TaskKind, TaskOp, TaskQueue};
use workflow_core::{Client, Clock, EventKind, RunId, StartOptions, SystemClock};

use benches::defs::Parked;
use benches::stores::open_sled;

/// A fresh run whose first workflow task is already done, so that the workflow queue holds
/// only the timers the benchmark creates.
async fn fresh_run(store: &Arc<dyn Store>, n: u64) -> RunId {
    let client = Client::new(store.clone());
    let id = format!("bench-{n}");
    client.start::<Parked>(&id, (), StartOptions::default()).await.expect("start");
    let run_id = client.describe(&id).await.expect("describe").info.run_id;
    let leased = store.lease_tasks(TaskQueue::Workflow, SystemClock.now(), 1, "bench").await.expect("lease");
    let t = leased.into_iter().next().expect("the first workflow task");
    store
        .append(AppendRequest::new(run_id.clone(), SystemClock.now()).complete(t.task.key, t.token))
        .await
        .expect("complete");
    run_id
}

async fn steps(store: &Arc<dyn Store>, run: u64, iters: u64) -> Duration {
    let run_id = fresh_run(store, run).await;
    let began = Instant::now();
    for seq in 0..iters as u32 {
        let now = SystemClock.now();
        let task = Task {
            key: TaskKey::timer(&run_id, seq),
            run_id: run_id.clone(),
            visible_at: now,
            lease_duration: Duration::from_secs(60),
            kind: TaskKind::Timer { seq },
        };
        store
            .append(
                AppendRequest::new(run_id.clone(), now)
                    .events([EventKind::TimerStarted { seq, fire_at: now }])
                    .task_op(TaskOp::Upsert(task)),
            )
            .await
            .expect("append");
        let leased = store.lease_tasks(TaskQueue::Workflow, now, 1, "bench").await.expect("lease");
        let t = leased.into_iter().next().expect("the timer task");
        store
            .append(
                AppendRequest::new(run_id.clone(), now)
                    .events([EventKind::TimerFired { seq }])
                    .complete(t.task.key, t.token),
            )
            .await
            .expect("append outcome");
    }
    began.elapsed()
}

fn store_step(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let dir = tempfile::tempdir().expect("a temp dir");
    let stores: [(&str, Arc<dyn Store>); 2] = [
        ("memory", Arc::new(MemoryStore::new())),
        ("sled_durable", Arc::new(open_sled(&dir.path().join("db")).expect("a sled store"))),
    ];
    let mut group = c.benchmark_group("store_step");
    group.throughput(Throughput::Elements(1));
    for (name, store) in stores {
        let mut run = 0;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                run += 1;
                rt.block_on(steps(&store, run, iters))
            })
        });
    }
    group.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, without their undocumented public fn.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    store_step(&mut c);
    c.final_summary();
}
