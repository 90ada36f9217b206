//! The testing kit: [`TestEnv`] (a worker, a client and an in-memory store on a clock that
//! skips time by itself), activity mocks ([`MockOutcome`]), [`ActivityTestContext`] for unit
//! tests of one activity, crash simulation ([`CrashSimulation`], [`FaultyStore`]), and a
//! store wrapper that counts the engine's store calls ([`CountingStore`]). The replay gate
//! is [`crate::replay::Replayer`].

mod activity;
mod clock;
mod counting;
mod crash;
mod env;
mod mock;

pub use activity::ActivityTestContext;
pub use clock::{Hold, TestClock};
pub use counting::{CountingStore, StoreCalls};
pub use crash::{CrashSimulation, Fault, FaultyStore, SimulationError, SimulationReport};
pub use env::{TestEnv, TestEnvBuilder, TEST_START};
pub use mock::{MockCall, MockOutcome};

use std::time::Duration;

use futures::future::BoxFuture;

use crate::time::{Clock, Timestamp};

/// A clock driven by tokio's time, starting at a fixed instant. Under
/// `#[tokio::test(start_paused = true)]` tokio advances time by itself whenever every task
/// waits, so minutes of backoff and timeouts pass in microseconds, deterministically.
///
/// ```
/// use workflow_core::{testing::VirtualClock, Clock, Timestamp};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let clock = VirtualClock::new(Timestamp(1_000));
/// clock.sleep(std::time::Duration::from_secs(60)).await;
/// assert!(clock.now() >= Timestamp(61_000));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct VirtualClock {
    base: Timestamp,
    start: tokio::time::Instant,
}

impl VirtualClock {
    /// A clock reading `base` now. Must be created inside a tokio runtime.
    pub fn new(base: Timestamp) -> Self {
        VirtualClock { base, start: tokio::time::Instant::now() }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        self.base.add(tokio::time::Instant::now().duration_since(self.start))
    }

    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// Writes a run of `workflow_id` whose history has about `events` events (activities of
/// three events each, `ActivityScheduled`, `ActivityStarted`, `ActivityCompleted`, each with
/// its attempt in the attempt log, 10 ms apart from `start`), and leaves it open. For
/// exercising inspection tools (the CLI, the web UI) and their benchmarks on long histories.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use workflow_core::{store::{MemoryStore, Store}, testing::seed_long_run, Timestamp};
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// let run = seed_long_run(&*store, "long", 1_000, Timestamp(0)).await.unwrap();
/// assert_eq!(store.read_history(&run, 0).await.unwrap().len(), 1_000);
/// # }
/// ```
pub async fn seed_long_run(
    store: &dyn crate::store::Store,
    workflow_id: &str,
    events: u32,
    start: Timestamp,
) -> Result<crate::RunId, crate::StoreError> {
    use crate::history::EventKind;
    use crate::store::{AppendRequest, AttemptOutcome, AttemptRecord, NewRun};
    use crate::{ActivityOptions, Payload};
    let run_id = crate::RunId::generate();
    store.create_run(NewRun::new(run_id.clone(), "long", workflow_id, Payload::null(), start)).await?;
    let encode = |v: serde_json::Value| Payload::from_json(v);
    let mut written = 1;
    let mut seq = 0;
    while written + 3 <= events {
        let t = start.add(Duration::from_millis(u64::from(seq) * 10));
        let attempt = AttemptRecord {
            run_id: run_id.clone(),
            seq,
            activity_type: "step".into(),
            attempt: 1,
            worker: "seed".into(),
            started_at: t,
            ended_at: t.add(Duration::from_millis(8)),
            outcome: AttemptOutcome::Completed,
            last_heartbeat: Some(encode(serde_json::json!({ "done": seq }))),
        };
        let req = AppendRequest::new(run_id.clone(), t)
            .events([
                EventKind::ActivityScheduled {
                    seq,
                    activity_type: "step".into(),
                    input: encode(serde_json::json!(seq)),
                    options: ActivityOptions::default(),
                },
                EventKind::ActivityStarted { seq, attempt: 1, worker: "seed".into() },
                EventKind::ActivityCompleted { seq, result: encode(serde_json::json!(seq * 2)) },
            ])
            .attempt(attempt);
        store.append(req).await?;
        seq += 1;
        written += 3;
    }
    Ok(run_id)
}
