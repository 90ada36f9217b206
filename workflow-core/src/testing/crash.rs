//! Crash simulation: [`FaultyStore`] kills the engine after its Nth store write, or fails a
//! write; [`CrashSimulation`] runs a workflow once per crash point and checks what must hold.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tokio::sync::Notify;

use super::{TestClock, TEST_START};
use crate::activity::{Activity, ActivityContext, ActivityError};
use crate::client::StartOptions;
use crate::error::{ResultError, StoreError, WorkerError};
use crate::history::{Event, EventKind};
use crate::ids::{EventId, RunId, Seq};
use crate::payload::Payload;
use crate::store::{
    AppendOutcome, AppendRequest, AttemptRecord, LeaseToken, LeasedTask, MemoryStore, NewRun, PendingTask, RunFilter,
    RunInfo, Store, TaskKey, TaskQueue,
};
use crate::time::{Clock, Timestamp};
use crate::worker::registry::ErasedActivity;
use crate::worker::{Registry, Worker, WorkerOptions};
use crate::workflow::{Signal, Workflow};

/// What a [`FaultyStore`] does to its Nth write (a `create_run` or an `append`, counted from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Makes the write, then dies as the process would: the write's caller and every call
    /// after it get a non-retryable error, as if the process had stopped at that instant.
    CrashAfter(u64),
    /// Refuses the write (nothing is written) with a retryable error; the engine goes on.
    FailWrite(u64),
    /// Makes the write but reports it failed (an acknowledgement lost on the way back, as a
    /// networked store can), with a retryable error; the engine goes on.
    LoseAck(u64),
}

impl Fault {
    fn at(self) -> u64 {
        match self {
            Fault::CrashAfter(n) | Fault::FailWrite(n) | Fault::LoseAck(n) => n,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::CrashAfter(n) => write!(f, "crash after write {n}"),
            Fault::FailWrite(n) => write!(f, "write {n} fails"),
            Fault::LoseAck(n) => write!(f, "write {n} is made but reported failed"),
        }
    }
}

/// A store wrapper for tests that injects one [`Fault`] into the writes passing through it.
/// After a [`Fault::CrashAfter`], every call fails: drop the worker on it (as the process
/// died) and go on with another on the inner store.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use workflow_core::store::{MemoryStore, NewRun, Store};
/// use workflow_core::testing::{Fault, FaultyStore};
/// use workflow_core::{Payload, RunId, Timestamp};
/// let inner: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// let faulty = FaultyStore::new(inner.clone(), Some(Fault::CrashAfter(1)));
/// let run = NewRun::new(RunId::generate(), "w", "id-1", Payload::null(), Timestamp(0));
/// assert!(faulty.create_run(run).await.is_err()); // made, then the "process" died
/// assert!(faulty.crashed());
/// assert!(inner.current_run("id-1").await.unwrap().is_some());
/// # }
/// ```
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    fault: Option<Fault>,
    writes: AtomicU64,
    crashed: AtomicBool,
    crash: Notify,
}

impl FaultyStore {
    /// Wraps `inner`, injecting `fault` (none: counts writes only).
    pub fn new(inner: Arc<dyn Store>, fault: Option<Fault>) -> Self {
        FaultyStore { inner, fault, writes: AtomicU64::new(0), crashed: AtomicBool::new(false), crash: Notify::new() }
    }

    /// Writes that reached the store so far (`create_run` and `append` calls).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Whether a [`Fault::CrashAfter`] happened.
    pub fn crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }

    /// Resolves once a [`Fault::CrashAfter`] happened.
    pub async fn wait_crashed(&self) {
        loop {
            let n = self.crash.notified();
            if self.crashed() {
                return;
            }
            n.await;
        }
    }

    fn dead(&self) -> StoreError {
        let at = self.fault.map_or(0, Fault::at);
        StoreError::Backend {
            reason: format!("simulated crash: the process died after store write {at}"),
            retryable: false,
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.crashed() {
            return Err(self.dead());
        }
        Ok(())
    }

    async fn write<T>(&self, make: impl std::future::Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        self.check()?;
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        let simulated =
            |what: &str| StoreError::Backend { reason: format!("simulated fault: {what}"), retryable: true };
        match self.fault {
            Some(Fault::FailWrite(k)) if k == n => Err(simulated(&format!("store write {n} failed"))),
            Some(Fault::LoseAck(k)) if k == n => {
                let _ = make.await;
                Err(simulated(&format!("store write {n} was made but its acknowledgement was lost")))
            }
            Some(Fault::CrashAfter(k)) if k == n => {
                let _ = make.await;
                self.crashed.store(true, Ordering::SeqCst);
                self.crash.notify_waiters();
                Err(self.dead())
            }
            _ => make.await,
        }
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn create_run(&self, run: NewRun) -> Result<Option<LeasedTask>, StoreError> {
        self.write(self.inner.create_run(run)).await
    }

    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        self.write(self.inner.append(req)).await
    }

    async fn lease_tasks(
        &self,
        queue: TaskQueue,
        now: Timestamp,
        max: usize,
        owner: &str,
    ) -> Result<Vec<LeasedTask>, StoreError> {
        self.check()?;
        self.inner.lease_tasks(queue, now, max, owner).await
    }

    async fn next_due(&self, queue: TaskQueue) -> Result<Option<Timestamp>, StoreError> {
        self.check()?;
        self.inner.next_due(queue).await
    }

    async fn heartbeat(
        &self,
        key: &TaskKey,
        token: LeaseToken,
        details: Option<Payload>,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.heartbeat(key, token, details, now, until).await
    }

    async fn read_history(&self, run_id: &RunId, after: EventId) -> Result<Vec<Event>, StoreError> {
        self.check()?;
        self.inner.read_history(run_id, after).await
    }

    async fn get_run(&self, run_id: &RunId) -> Result<Option<RunInfo>, StoreError> {
        self.check()?;
        self.inner.get_run(run_id).await
    }

    async fn current_run(&self, workflow_id: &str) -> Result<Option<RunInfo>, StoreError> {
        self.check()?;
        self.inner.current_run(workflow_id).await
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunInfo>, StoreError> {
        self.check()?;
        self.inner.list_runs(filter).await
    }

    async fn list_tasks(&self, run_id: &RunId) -> Result<Vec<PendingTask>, StoreError> {
        self.check()?;
        self.inner.list_tasks(run_id).await
    }

    async fn list_attempts(&self, run_id: &RunId) -> Result<Vec<AttemptRecord>, StoreError> {
        self.check()?;
        self.inner.list_attempts(run_id).await
    }

    async fn delete_closed_before(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.check()?;
        self.inner.delete_closed_before(before).await
    }

    async fn release_leases_of(&self, owner: &str, now: Timestamp) -> Result<usize, StoreError> {
        self.check()?;
        self.inner.release_leases_of(owner, now).await
    }

    fn notifier(&self) -> Option<Arc<Notify>> {
        self.inner.notifier()
    }

    fn closed_runs(&self) -> Option<tokio::sync::broadcast::Receiver<RunId>> {
        self.inner.closed_runs()
    }
}

/// Successful executions of each activity, by run and position: the side effects made.
type Effects = Arc<Mutex<HashMap<(RunId, Seq), u32>>>;

/// Counts an activity's successful executions.
struct Counted {
    inner: Arc<dyn ErasedActivity>,
    effects: Effects,
}

impl ErasedActivity for Counted {
    fn run(&self, ctx: ActivityContext, input: Payload) -> BoxFuture<'_, Result<Payload, ActivityError>> {
        Box::pin(async move {
            let key = (ctx.info().run_id.clone(), ctx.info().seq);
            let out = self.inner.run(ctx, input).await;
            if out.is_ok() {
                *self.effects.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default() += 1;
            }
            out
        })
    }
}

/// Runs workflow `W` to completion once without faults, then once per crash point (a crash
/// after store write 1, 2, ... up to the last write of the fault-free run) and for a number
/// of seeded random faults (a failed write, a lost acknowledgement), each time recovering
/// with a new worker on the same store, and checks:
///
/// - the workflow's result (or failure) equals the fault-free run's;
/// - every run (children too) closed, with event ids 1, 2, 3, ... and no gap;
/// - every command (activity, timer, child, side effect, signal to another workflow) recorded
///   once, at most one outcome per activity, timer, child and delivery, and every signal or
///   cancellation a workflow sent received once;
/// - every activity recorded as completed really ran to success at least once.
///
/// Time skips as in a [`TestEnv`](super::TestEnv), so lease expiries after a crash pass at
/// once. Run it in your own tests on your own workflows.
///
/// ```
/// use workflow_core::testing::CrashSimulation;
/// use workflow_core::{Activity, ActivityContext, ActivityError};
/// use workflow_core::{Workflow, WorkflowContext, WorkflowError};
///
/// struct Double;
/// impl Activity for Double {
///     const NAME: &'static str = "double";
///     type Input = u64;
///     type Output = u64;
///     async fn run(&self, _: ActivityContext, n: u64) -> Result<u64, ActivityError> { Ok(n * 2) }
/// }
///
/// struct Twice;
/// impl Workflow for Twice {
///     const NAME: &'static str = "twice";
///     type Input = u64;
///     type Output = u64;
///     async fn run(ctx: WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
///         let a = ctx.activity::<Double>(n).await?;
///         Ok(ctx.activity::<Double>(a).await?)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let report = CrashSimulation::<Twice>::new(5).activity(Double).seed(7).random_faults(4).run().await.unwrap();
/// assert!(report.passed(), "{report}");
/// assert!(report.crash_points >= 3);
/// # }
/// ```
pub struct CrashSimulation<W: Workflow> {
    input: W::Input,
    after_start: Vec<AfterStart>,
    same: Option<SameResult<W>>,
    registry: Registry,
    error: Option<WorkerError>,
    seed: u64,
    random_faults: u32,
    time_limit: Duration,
}

/// What a [`CrashSimulation`] explored and found.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SimulationReport {
    /// Store writes of the fault-free run.
    pub baseline_writes: u64,
    /// Crash points explored (one per write of the fault-free run).
    pub crash_points: u64,
    /// Random faults explored (failed writes, lost acknowledgements).
    pub random_faults: u64,
    /// Activity executions beyond one per completed activity, summed over every run: the
    /// price of at-least-once.
    pub repeated_executions: u64,
    /// What did not hold, one line per fault that broke something.
    pub violations: Vec<String>,
}

impl SimulationReport {
    /// Whether every invariant held at every fault.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

impl fmt::Display for SimulationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} crash points and {} random faults over {} store writes: {} violation(s), {} repeated activity execution(s)",
            self.crash_points,
            self.random_faults,
            self.baseline_writes,
            self.violations.len(),
            self.repeated_executions
        )?;
        for v in &self.violations {
            write!(f, "\n  {v}")?;
        }
        Ok(())
    }
}

/// The simulation could not run at all (a registration error, or the fault-free run itself
/// did not finish).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimulationError {
    /// A type was registered twice, or the worker options are invalid.
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// The fault-free run did not finish.
    #[error("the fault-free run of the workflow did not finish: {0}")]
    Baseline(String),
}

/// Whether two results of `W` count as the same.
type SameResult<W> = Box<dyn Fn(&<W as Workflow>::Output, &<W as Workflow>::Output) -> bool + Send + Sync>;

/// Something the simulation does through a client once the workflow started.
type AfterStart = Box<dyn Fn(crate::client::Client) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// How one run under a fault ended.
struct Outcome {
    result: Result<Payload, String>,
    writes: u64,
    repeated: u64,
    violations: Vec<String>,
}

impl<W: Workflow> CrashSimulation<W>
where
    W::Input: Clone + Send,
{
    /// A simulation of `W` started with `input` (register the activities and child
    /// workflows it uses).
    pub fn new(input: W::Input) -> Self {
        let mut registry = Registry::default();
        let error = registry.add_workflow::<W>().err();
        CrashSimulation {
            input,
            after_start: Vec::new(),
            same: None,
            registry,
            error,
            seed: 1,
            random_faults: 0,
            time_limit: Duration::from_secs(365 * 86_400),
        }
    }

    fn keep(mut self, r: Result<(), WorkerError>) -> Self {
        if let Err(e) = r {
            self.error.get_or_insert(e);
        }
        self
    }

    /// Registers an activity the workflow calls.
    pub fn activity<A: Activity>(mut self, activity: A) -> Self {
        let r = self.registry.add_activity(activity);
        self.keep(r)
    }

    /// Registers a workflow the workflow starts as a child.
    pub fn workflow<C: Workflow>(mut self) -> Self {
        let r = self.registry.add_workflow::<C>();
        self.keep(r)
    }

    /// Sends signal `S` with `payload` once the workflow started (after the signals and
    /// cancellations asked for before it), in every run of the simulation.
    pub fn then_signal<S: Signal>(mut self, payload: S::Payload) -> Self
    where
        S::Payload: Clone + Send + Sync,
    {
        self.after_start.push(Box::new(move |client| {
            let payload = payload.clone();
            Box::pin(async move { client.signal::<S>("simulated", payload).await.map_err(|e| e.to_string()) })
        }));
        self
    }

    /// Sends update `U` with `args` once the workflow started (in order with the signals
    /// asked for), in every run of the simulation; the workflow's result shows what it did
    /// with it. The update is accepted by the first worker's code and answered by whichever
    /// worker runs the workflow then; the simulation checks it is answered at most once.
    pub fn then_update<U: crate::workflow::Update>(mut self, args: U::Args) -> Self
    where
        U::Args: Clone + Send + Sync,
    {
        let update_id = format!("simulated-update-{}", self.after_start.len() + 1);
        self.after_start.push(Box::new(move |client| {
            let (args, update_id) = (args.clone(), update_id.clone());
            Box::pin(async move {
                client
                    .start_update_with_id::<U>("simulated", &update_id, args)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        }));
        self
    }

    /// Requests cancellation of the workflow once it started (after the signals asked for
    /// before it), in every run of the simulation.
    pub fn then_cancel(mut self) -> Self {
        self.after_start.push(Box::new(|client| {
            Box::pin(async move {
                client
                    .cancel("simulated", Some("cancelled by the crash simulation".into()))
                    .await
                    .map_err(|e| e.to_string())
            })
        }));
        self
    }

    /// How to compare a result with the fault-free run's (default: equal as recorded).
    /// For a result that holds times, which a crash legitimately delays, compare the rest.
    pub fn same_result(mut self, same: impl Fn(&W::Output, &W::Output) -> bool + Send + Sync + 'static) -> Self {
        self.same = Some(Box::new(same));
        self
    }

    fn same(&self, a: &Result<Payload, String>, b: &Result<Payload, String>) -> bool {
        match (a, b, &self.same) {
            (Ok(a), Ok(b), Some(same)) => match (a.decode::<W::Output>("result"), b.decode::<W::Output>("result")) {
                (Ok(a), Ok(b)) => same(&a, &b),
                _ => false,
            },
            _ => a == b,
        }
    }

    /// The seed choosing the random faults (default 1).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How many random faults (failed writes, lost acknowledgements) to try besides the
    /// crash points (default 0).
    pub fn random_faults(mut self, n: u32) -> Self {
        self.random_faults = n;
        self
    }

    /// Virtual time after which a run that has not finished counts as stuck (default a year).
    pub fn time_limit(mut self, d: Duration) -> Self {
        self.time_limit = d;
        self
    }

    /// Runs the simulation.
    ///
    /// The simulation runs on a runtime of its own (one thread, in tokio's blocking pool),
    /// whatever runtime calls it: on one thread, "nothing is running" (when time may skip)
    /// is exact, so every run of it is deterministic.
    pub async fn run(self) -> Result<SimulationReport, SimulationError> {
        let joined = tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| SimulationError::Baseline(format!("cannot build the simulation's runtime: {e}")))?;
            rt.block_on(self.run_here())
        })
        .await;
        match joined {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(SimulationError::Baseline(format!("the simulation was cancelled: {e}"))),
        }
    }

    async fn run_here(self) -> Result<SimulationReport, SimulationError> {
        if let Some(e) = self.error.clone() {
            return Err(e.into());
        }
        let baseline = self.once(None).await?;
        if !baseline.violations.is_empty() {
            return Err(SimulationError::Baseline(baseline.violations.join("; ")));
        }
        let mut report = SimulationReport {
            baseline_writes: baseline.writes,
            crash_points: 0,
            random_faults: 0,
            repeated_executions: 0,
            violations: Vec::new(),
        };
        let mut faults: Vec<Fault> = (1..=baseline.writes).map(Fault::CrashAfter).collect();
        let mut rng = self.seed;
        for _ in 0..self.random_faults {
            let n = 1 + splitmix(&mut rng) % baseline.writes.max(1);
            faults.push(if splitmix(&mut rng).is_multiple_of(2) { Fault::FailWrite(n) } else { Fault::LoseAck(n) });
        }
        for fault in faults {
            let run = self.once(Some(fault)).await?;
            match fault {
                Fault::CrashAfter(_) => report.crash_points += 1,
                _ => report.random_faults += 1,
            }
            report.repeated_executions += run.repeated;
            let mut broke = run.violations;
            if !self.same(&run.result, &baseline.result) {
                broke.push(format!("ended with {:?}, the fault-free run with {:?}", run.result, baseline.result));
            }
            report.violations.extend(broke.into_iter().map(|v| format!("{fault}: {v}")));
        }
        Ok(report)
    }

    /// One run of the workflow under `fault` (none: the fault-free run).
    async fn once(&self, fault: Option<Fault>) -> Result<Outcome, SimulationError> {
        let clock = TestClock::new(TEST_START);
        let inner: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let skipper = AbortOnDrop(tokio::spawn(clock.clone().skip_automatically_on(inner.clone())));
        // As in a TestEnv: time moves only while the simulation waits for the result.
        let _hold = clock.hold();
        let effects: Effects = Arc::default();
        let mut registry = self.registry.clone();
        for activity in registry.activities.values_mut() {
            *activity = Arc::new(Counted { inner: activity.clone(), effects: effects.clone() });
        }
        let worker = |store: Arc<dyn Store>, identity: &str| {
            Worker::new(store, WorkerOptions::default().identity(identity))
                .with_test_clock(clock.clone())
                .with_registry(registry.clone())
                .start()
        };
        let faulty = Arc::new(FaultyStore::new(inner.clone(), fault));
        let first = worker(faulty.clone(), "simulated-process-1")?;
        let started = first.client().start::<W>("simulated", self.input.clone(), StartOptions::default()).await;
        let mut violations = Vec::new();
        if let Err(e) = &started {
            if !faulty.crashed() && fault.is_none() {
                return Err(SimulationError::Baseline(e.to_string()));
            }
        }
        let client = crate::client::Client::new(inner.clone())
            .with_clock(Arc::new(clock.clone()))
            .with_worker(first.worker_link());
        if inner.current_run("simulated").await.ok().flatten().is_none() {
            // The start itself failed before it was written (a refused write): the caller
            // saw an error and starts again, as an application would.
            if let Err(e) = client.start::<W>("simulated", self.input.clone(), StartOptions::default()).await {
                violations.push(format!("starting again after a failed start: {e}"));
            }
        }
        for action in &self.after_start {
            if let Err(e) = action(client.clone()).await {
                violations.push(format!("after the start: {e}"));
            }
        }
        let handle = client.handle::<W>("simulated");
        let limit = clock.sleep(self.time_limit);
        let result = tokio::select! {
            r = handle.result() => Some(r),
            _ = faulty.wait_crashed() => None,
            _ = limit => return Ok(stuck(&self.time_limit, faulty.writes())),
        };
        let mut _second = None;
        let result = match result {
            Some(r) => r,
            None => {
                // The process died: a new one takes over on the same store.
                drop(first);
                _second = Some(worker(inner.clone(), "simulated-process-2")?);
                let limit = clock.sleep(self.time_limit);
                tokio::select! {
                    r = handle.result() => r,
                    _ = limit => return Ok(stuck(&self.time_limit, faulty.writes())),
                }
            }
        };
        let result = match result {
            Ok(out) => Payload::encode(&out).map_err(|e| e.to_string()),
            Err(ResultError::Store(e)) => {
                violations.push(format!("reading the result failed: {e}"));
                Err(e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        let (mut found, repeated) = check_store(&*inner, &effects).await;
        violations.append(&mut found);
        drop(skipper);
        Ok(Outcome { result, writes: faulty.writes(), repeated, violations })
    }
}

fn stuck(limit: &Duration, writes: u64) -> Outcome {
    Outcome {
        result: Err("stuck".into()),
        writes,
        repeated: 0,
        violations: vec![format!("the workflow did not finish within {} s of virtual time", limit.as_secs())],
    }
}

/// Checks every run's history and the side effects; returns the violations and how many
/// activity executions were repeated.
async fn check_store(store: &dyn Store, effects: &Effects) -> (Vec<String>, u64) {
    let mut violations = Vec::new();
    let runs = match store.list_runs(&RunFilter::default()).await {
        Ok(r) => r,
        Err(e) => return (vec![format!("listing runs failed: {e}")], 0),
    };
    let effects = effects.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut repeated = 0;
    // Signals and cancellations workflows sent, by sending command: each arrives once.
    let mut received: BTreeMap<(RunId, Seq), u32> = BTreeMap::new();
    for run in runs {
        let who = format!("run {} ({})", run.run_id, run.workflow_id);
        if !run.status.is_closed() {
            violations.push(format!("{who} is still {}", run.status));
        }
        let history = match store.read_history(&run.run_id, 0).await {
            Ok(h) => h,
            Err(e) => {
                violations.push(format!("{who}: reading its history failed: {e}"));
                continue;
            }
        };
        let mut commands: BTreeMap<Seq, u32> = BTreeMap::new();
        let mut outcomes: BTreeMap<(&str, Seq), u32> = BTreeMap::new();
        for (i, e) in history.iter().enumerate() {
            if e.id != i as EventId + 1 {
                violations.push(format!("{who}: event {} is at position {}", e.id, i + 1));
                break;
            }
            if let Some(seq) = e.kind.command_seq() {
                *commands.entry(seq).or_default() += 1;
            }
            let outcome = match &e.kind {
                EventKind::ActivityCompleted { seq, .. } => {
                    match effects.get(&(run.run_id.clone(), *seq)) {
                        None | Some(0) => violations
                            .push(format!("{who}: activity {seq} is recorded completed but never ran to success")),
                        Some(n) => repeated += u64::from(n - 1),
                    }
                    Some(("activity", *seq))
                }
                EventKind::ActivityFailed { seq, .. }
                | EventKind::ActivityTimedOut { seq, .. }
                | EventKind::ActivityCancelled { seq, .. } => Some(("activity", *seq)),
                EventKind::TimerFired { seq, .. } | EventKind::TimerCancelled { seq, .. } => Some(("timer", *seq)),
                EventKind::ChildWorkflowCompleted { seq, .. }
                | EventKind::ChildWorkflowFailed { seq, .. }
                | EventKind::ChildWorkflowStartFailed { seq, .. } => Some(("child", *seq)),
                EventKind::ExternalDelivered { seq, .. } => Some(("delivery", *seq)),
                EventKind::SignalReceived { sender: Some(from), .. }
                | EventKind::CancelRequested { sender: Some(from), .. } => {
                    *received.entry((from.run_id.clone(), from.seq)).or_default() += 1;
                    None
                }
                _ => None,
            };
            if let Some(k) = outcome {
                *outcomes.entry(k).or_default() += 1;
            }
        }
        for (seq, n) in commands.into_iter().filter(|(_, n)| *n > 1) {
            violations.push(format!("{who}: command {seq} is recorded {n} times"));
        }
        for ((what, seq), n) in outcomes.into_iter().filter(|(_, n)| *n > 1) {
            violations.push(format!("{who}: {what} {seq} has {n} outcomes recorded"));
        }
    }
    for ((run, seq), n) in received.into_iter().filter(|(_, n)| *n > 1) {
        violations.push(format!("command {seq} of run {run} was delivered {n} times"));
    }
    (violations, repeated)
}

/// A step of SplitMix64: a small, well-mixed generator for choosing faults from a seed.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
