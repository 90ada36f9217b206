//! [`TestEnv`]: a worker, a client and an in-memory store on a clock that skips time by itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::mock::{Mock, MockActivity, MockCall, MockOutcome};
use super::TestClock;
use crate::activity::{Activity, ActivityContext, ActivityError};
use crate::client::{Client, StartOptions, WorkflowHandle};
use crate::error::{ControlError, Error, QueryError, StartError, WorkerError};
use crate::history::Event;
use crate::store::{AttemptRecord, MemoryStore, Store};
use crate::time::{Clock, Timestamp};
use crate::worker::{Registry, RunningWorker, Worker, WorkerOptions};
use crate::workflow::{Query, Signal, Workflow};

/// When a [`TestEnv`]'s clock starts: 2026-01-01T00:00:00Z.
pub const TEST_START: Timestamp = Timestamp(1_767_225_600_000);

/// A worker, a client and an in-memory store on a [`TestClock`] that skips time whenever
/// nothing is running: a workflow that sleeps thirty days, or an activity retried with an
/// hour of backoff, completes in milliseconds, on any tokio runtime (no `start_paused`).
///
/// Time moves on its own only while the test waits for a run to close
/// ([`WorkflowHandle::result`], [`Client::wait_closed`], [`TestEnv::execute`]) and no task is
/// being handled, so it never jumps between two lines of a test, and a real activity doing
/// real I/O sees real timeouts; a mocked activity scripted to
/// [`time out`](MockOutcome::time_out) lets time skip to its timeout.
/// [`TestEnv::sleep`] moves time by hand.
///
/// Activities can be replaced by type with a closure ([`TestEnvBuilder::mock`]) or a script
/// of outcomes ([`TestEnvBuilder::script`]), and their calls read back
/// ([`TestEnv::calls`]).
///
/// ```
/// use std::time::Duration;
/// use workflow_core::testing::{MockOutcome, TestEnv};
/// use workflow_core::{Activity, ActivityContext, ActivityError, ActivityOptions, RetryPolicy};
/// use workflow_core::{Workflow, WorkflowContext, WorkflowError};
///
/// struct Charge;
/// impl Activity for Charge {
///     const NAME: &'static str = "charge";
///     type Input = u64;
///     type Output = String;
///     async fn run(&self, _: ActivityContext, _: u64) -> Result<String, ActivityError> {
///         unimplemented!("calls the payment provider; mocked in tests")
///     }
/// }
///
/// struct Renew;
/// impl Workflow for Renew {
///     const NAME: &'static str = "renew";
///     type Input = u64;
///     type Output = String;
///     async fn run(ctx: WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
///         ctx.sleep(Duration::from_secs(30 * 86_400)).await?; // a month
///         let retry = RetryPolicy::default().initial_interval(Duration::from_secs(3600));
///         Ok(ctx.activity_with::<Charge>(cents, ActivityOptions::default().retry_policy(retry)).await?)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), workflow_core::Error> {
/// let env = TestEnv::builder()
///     .workflow::<Renew>()
///     .script::<Charge>([
///         MockOutcome::error(ActivityError::retryable("Unavailable", "503")),
///         MockOutcome::ok(&"receipt-1"),
///     ])
///     .start()?;
/// let receipt = env.execute::<Renew>("renew-42", 999).await?; // a month and an hour, at once
/// assert_eq!(receipt, "receipt-1");
/// let calls = env.calls("charge");
/// assert_eq!(calls.iter().map(|c| c.attempt).collect::<Vec<_>>(), vec![1, 2]);
/// assert_eq!(calls[0].input_as::<u64>(), Some(999));
/// assert!(env.now().since(workflow_core::testing::TEST_START) >= Duration::from_secs(30 * 86_400 + 3600));
/// # Ok(()) }
/// ```
pub struct TestEnv {
    clock: TestClock,
    store: Arc<dyn Store>,
    registry: Registry,
    options: WorkerOptions,
    worker: Option<RunningWorker>,
    mocks: BTreeMap<String, Arc<Mock>>,
    skipper: tokio::task::JoinHandle<()>,
    restarts: u32,
    /// The test's own hold: time skips only while the test waits for a run to close.
    _test_hold: super::Hold,
}

/// Builds a [`TestEnv`]: register workflows, activities and mocks, then
/// [`start`](Self::start).
pub struct TestEnvBuilder {
    registry: Registry,
    error: Option<WorkerError>,
    mocks: BTreeMap<String, Arc<Mock>>,
    start: Timestamp,
    options: WorkerOptions,
    store: Option<Arc<dyn Store>>,
}

impl TestEnvBuilder {
    fn keep(mut self, r: Result<(), WorkerError>) -> Self {
        if let Err(e) = r {
            self.error.get_or_insert(e);
        }
        self
    }

    /// Registers workflow `W`.
    pub fn workflow<W: Workflow>(mut self) -> Self {
        let r = self.registry.add_workflow::<W>();
        self.keep(r)
    }

    /// Registers `activity` (a mock of the same type replaces it).
    pub fn activity<A: Activity>(mut self, activity: A) -> Self {
        let r = self.registry.add_activity(activity);
        self.keep(r)
    }

    /// Replaces activity `A` with `respond`, called once per attempt with the attempt's
    /// context (its [`attempt`](ActivityContext::attempt), its
    /// [`last_heartbeat`](ActivityContext::last_heartbeat)) and input.
    pub fn mock<A: Activity>(
        mut self,
        respond: impl Fn(&ActivityContext, A::Input) -> Result<A::Output, ActivityError> + Send + Sync + 'static,
    ) -> Self {
        self.mocks.insert(A::NAME.into(), Arc::new(Mock::respond::<A>(respond)));
        self
    }

    /// Replaces activity `A` with a script: the first attempt gets the first outcome, the
    /// next attempt (of any call) the next one. A call beyond the script fails with a
    /// non-retryable `MockExhausted` error.
    pub fn script<A: Activity>(self, outcomes: impl IntoIterator<Item = MockOutcome>) -> Self {
        self.script_type(A::NAME, outcomes)
    }

    /// [`script`](Self::script) by type name, for an activity type this build does not
    /// link (one another service registers).
    pub fn script_type(mut self, activity_type: &str, outcomes: impl IntoIterator<Item = MockOutcome>) -> Self {
        self.mocks.insert(activity_type.into(), Arc::new(Mock::script(activity_type, outcomes)));
        self
    }

    /// Where the clock starts (default [`TEST_START`]).
    pub fn start_time(mut self, at: Timestamp) -> Self {
        self.start = at;
        self
    }

    /// Worker options (default: [`WorkerOptions::default`] with identity `test-worker-1`).
    pub fn worker_options(mut self, options: WorkerOptions) -> Self {
        self.options = options;
        self
    }

    /// Runs on `store` instead of a new [`MemoryStore`].
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Starts the worker and the time skipping. Must be called inside a tokio runtime.
    ///
    /// Errors: a workflow or activity type registered twice, invalid worker options.
    pub fn start(self) -> Result<TestEnv, WorkerError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let clock = TestClock::new(self.start);
        for mock in self.mocks.values() {
            *mock.clock.lock().unwrap_or_else(|e| e.into_inner()) = Some(clock.clone());
        }
        let mut registry = self.registry;
        for (name, mock) in &self.mocks {
            registry.activities.insert(name.clone(), Arc::new(MockActivity(mock.clone())));
        }
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let skipper = tokio::spawn(clock.clone().skip_automatically_on(store.clone()));
        let mut env = TestEnv {
            clock: clock.clone(),
            store,
            registry,
            options: self.options,
            worker: None,
            mocks: self.mocks,
            skipper,
            restarts: 0,
            _test_hold: clock.hold(),
        };
        env.worker = Some(env.new_worker()?);
        Ok(env)
    }
}

impl TestEnv {
    /// A builder with nothing registered.
    pub fn builder() -> TestEnvBuilder {
        TestEnvBuilder {
            registry: Registry::default(),
            error: None,
            mocks: BTreeMap::new(),
            start: TEST_START,
            options: WorkerOptions::default().identity("test-worker-1"),
            store: None,
        }
    }

    fn new_worker(&self) -> Result<RunningWorker, WorkerError> {
        let mut options = self.options.clone();
        if self.restarts > 0 {
            options.identity = format!("{}-restart-{}", options.identity, self.restarts);
        }
        Worker::new(self.store.clone(), options)
            .with_test_clock(self.clock.clone())
            .with_registry(self.registry.clone())
            .start()
    }

    fn running(&self) -> &RunningWorker {
        self.worker.as_ref().expect("a TestEnv always has a worker between calls")
    }

    /// A client on the env's store and clock (it refuses to start unregistered types).
    pub fn client(&self) -> Client {
        self.running().client()
    }

    /// The running worker.
    pub fn worker(&self) -> &RunningWorker {
        self.running()
    }

    /// The env's clock.
    pub fn clock(&self) -> &TestClock {
        &self.clock
    }

    /// The env's store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The current time on the env's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Moves time forward by `d` by hand, running what each deadline on the way wakes (time
    /// also moves by itself whenever nothing runs).
    pub async fn sleep(&self, d: Duration) {
        self.clock.advance(d).await
    }

    /// Starts workflow `W` under `workflow_id` with default options.
    pub async fn start<W: Workflow>(
        &self,
        workflow_id: &str,
        input: W::Input,
    ) -> Result<WorkflowHandle<W>, StartError> {
        self.client().start::<W>(workflow_id, input, StartOptions::default()).await
    }

    /// Starts workflow `W` and waits for its result, skipping time meanwhile.
    pub async fn execute<W: Workflow>(&self, workflow_id: &str, input: W::Input) -> Result<W::Output, Error> {
        Ok(self.start::<W>(workflow_id, input).await?.result().await?)
    }

    /// The history of the latest run of `workflow_id`.
    pub async fn history(&self, workflow_id: &str) -> Result<Vec<Event>, ControlError> {
        self.client().history(workflow_id).await
    }

    /// The attempt log of the latest run of `workflow_id`.
    pub async fn attempts(&self, workflow_id: &str) -> Result<Vec<AttemptRecord>, ControlError> {
        let run = self
            .store
            .current_run(workflow_id)
            .await?
            .ok_or_else(|| ControlError::NotFound { workflow_id: workflow_id.to_string() })?;
        Ok(self.store.list_attempts(&run.run_id).await?)
    }

    /// Sends signal `S` to the open run of `workflow_id`.
    pub async fn signal<S: Signal>(&self, workflow_id: &str, payload: S::Payload) -> Result<(), ControlError> {
        self.client().signal::<S>(workflow_id, payload).await
    }

    /// Asks the latest run of `workflow_id` query `Q`.
    pub async fn query<Q: Query>(&self, workflow_id: &str, args: Q::Args) -> Result<Q::Output, QueryError> {
        self.running().query::<Q>(workflow_id, args).await
    }

    /// Sends update `U` to the open run of `workflow_id` and waits for its answer (time
    /// skips while the workflow works on it, as for [`execute`](Self::execute)).
    pub async fn update<U: crate::workflow::Update>(
        &self,
        workflow_id: &str,
        args: U::Args,
    ) -> Result<U::Output, crate::error::UpdateError> {
        self.client().update::<U>(workflow_id, args).await
    }

    /// The calls the mock of `activity_type` received, in order (none for a type that is
    /// not mocked).
    pub fn calls(&self, activity_type: &str) -> Vec<MockCall> {
        self.mocks
            .get(activity_type)
            .map(|m| m.calls.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default()
    }

    /// Kills the worker as a process death would (running attempts are dropped, the cache
    /// is lost, leases are left to expire) and starts a new one, with a new identity, on the
    /// same store: what a crash and a restart do to the runs in flight.
    pub fn crash_worker(&mut self) -> Result<(), WorkerError> {
        self.restarts += 1;
        let next = self.new_worker()?;
        drop(self.worker.replace(next));
        Ok(())
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.skipper.abort();
    }
}
