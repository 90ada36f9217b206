//! The worker: leases tasks from the store, runs workflow code (through the replay core) and
//! activity attempts, and commits what they produce.

mod activities;
pub use activities::CANCEL_CLEANUP;
mod children;
mod closing;
mod executor;
mod external;
mod local;
pub(crate) mod registry;
pub(crate) mod reset;
mod workflow_tasks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::warn;

pub(crate) use registry::Registry;

use crate::activity::Activity;
use crate::client::Client;
use crate::error::WorkerError;
use crate::ids::RunId;
use crate::options::Limits;
use crate::store::{LeasedTask, Store, TaskQueue};
use crate::time::{Clock, SystemClock};
use crate::workflow::Workflow;
use executor::Executor;

/// Worker settings.
///
/// ```
/// use workflow_core::WorkerOptions;
/// let options = WorkerOptions::default().max_concurrent_activities(64);
/// assert_eq!(options.max_concurrent_activities, 64);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WorkerOptions {
    /// Identifies this worker in leases and the attempt log. Default: `<pid>@<host>-<4 random hex digits>`.
    pub identity: String,
    /// Most activity attempts running at once. Default 100.
    pub max_concurrent_activities: usize,
    /// Most workflow tasks in progress at once. Default 100.
    pub max_concurrent_workflow_tasks: usize,
    /// Runs kept in memory between tasks; an evicted run is replayed when it next has work.
    /// Default 10,000.
    pub max_cached_runs: usize,
    /// Longest wait between store polls when the store cannot notify. Default 1 s.
    pub poll_interval: Duration,
    /// How long shutdown waits for running attempts before cancelling and releasing them.
    /// Default 10 s.
    pub shutdown_grace: Duration,
    /// Limits on payloads, histories and ids.
    pub limits: Limits,
}

/// `<pid>@<host>-<4 random hex digits>`: which process on which machine ran an attempt (as
/// Temporal's default identity), told apart from other workers in the same process.
fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
                .take(64)
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!("{}@{host}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..4])
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            identity: default_identity(),
            max_concurrent_activities: 100,
            max_concurrent_workflow_tasks: 100,
            max_cached_runs: 10_000,
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
            limits: Limits::default(),
        }
    }
}

impl WorkerOptions {
    /// Sets the identity.
    pub fn identity(mut self, id: impl Into<String>) -> Self {
        self.identity = id.into();
        self
    }

    /// Sets the activity concurrency bound.
    pub fn max_concurrent_activities(mut self, n: usize) -> Self {
        self.max_concurrent_activities = n;
        self
    }

    /// Sets the workflow task concurrency bound.
    pub fn max_concurrent_workflow_tasks(mut self, n: usize) -> Self {
        self.max_concurrent_workflow_tasks = n;
        self
    }

    /// Sets the run cache size.
    pub fn max_cached_runs(mut self, n: usize) -> Self {
        self.max_cached_runs = n;
        self
    }

    /// Sets the poll interval.
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    /// Sets the shutdown grace period.
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.shutdown_grace = d;
        self
    }

    /// Sets the limits.
    pub fn limits(mut self, l: Limits) -> Self {
        self.limits = l;
        self
    }

    fn validate(&self) -> Result<(), crate::error::OptionsError> {
        for (option, v) in [
            ("max_concurrent_activities", self.max_concurrent_activities),
            ("max_concurrent_workflow_tasks", self.max_concurrent_workflow_tasks),
            ("max_cached_runs", self.max_cached_runs),
        ] {
            if v == 0 {
                return Err(crate::error::OptionsError { option, reason: "must be at least 1".into() });
            }
        }
        if self.poll_interval.is_zero() {
            return Err(crate::error::OptionsError { option: "poll_interval", reason: "must be above zero".into() });
        }
        Ok(())
    }
}

/// A worker under construction: register workflows and activities, then [`start`](Self::start).
///
/// ```no_run
/// use std::sync::Arc;
/// use workflow_core::{store::MemoryStore, Worker, WorkerOptions};
/// # async fn demo() -> Result<(), workflow_core::Error> {
/// let worker = Worker::new(Arc::new(MemoryStore::new()), WorkerOptions::default());
/// // worker.register_workflow::<MyWorkflow>()?; worker.register_activity(MyActivity)?;
/// let running = worker.start()?;
/// running.shutdown().await;
/// # Ok(()) }
/// ```
pub struct Worker {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    options: WorkerOptions,
    registry: Registry,
    /// A test clock kept from skipping while a task is handled ([`crate::testing::TestEnv`]).
    holds: Option<crate::testing::TestClock>,
}

impl Worker {
    /// A worker on `store` using the system clock.
    pub fn new(store: Arc<dyn Store>, options: WorkerOptions) -> Self {
        Worker { store, clock: Arc::new(SystemClock), options, registry: Registry::default(), holds: None }
    }

    /// Uses `clock` instead of the system clock (tests use a virtual clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses the test clock `clock`, held while a task is handled so that it skips time only
    /// when nothing runs.
    pub(crate) fn with_test_clock(mut self, clock: crate::testing::TestClock) -> Self {
        self.clock = Arc::new(clock.clone());
        self.holds = Some(clock);
        self
    }

    /// Uses `registry` (a test env's registrations, mocks included).
    pub(crate) fn with_registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    /// Registers workflow `W`.
    pub fn register_workflow<W: Workflow>(&mut self) -> Result<&mut Self, WorkerError> {
        self.registry.add_workflow::<W>()?;
        Ok(self)
    }

    /// Registers an activity.
    pub fn register_activity<A: Activity>(&mut self, activity: A) -> Result<&mut Self, WorkerError> {
        self.registry.add_activity(activity)?;
        Ok(self)
    }

    /// A client on the same store and clock that checks workflow types against this
    /// worker's registrations.
    pub fn client(&self) -> Client {
        Client::new(self.store.clone())
            .with_clock(self.clock.clone())
            .with_limits(self.options.limits.clone())
            .with_registered(self.registry.workflow_names_list())
    }

    /// Starts polling. Must be called inside a tokio runtime.
    pub fn start(self) -> Result<RunningWorker, WorkerError> {
        self.options.validate()?;
        let registry = Arc::new(self.registry);
        let known = executor::Known::default();
        let executor =
            Executor::spawn(registry.clone(), self.options.limits.clone(), self.options.max_cached_runs, known.clone());
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            store: self.store,
            clock: self.clock,
            workflow_permits: Arc::new(Semaphore::new(self.options.max_concurrent_workflow_tasks)),
            activity_permits: Arc::new(Semaphore::new(self.options.max_concurrent_activities)),
            options: self.options,
            registry,
            executor,
            known,
            run_locks: Mutex::new(HashMap::new()),
            shutdown: shutdown_rx,
            inflight: Mutex::new(JoinSet::new()),
            local_running: Mutex::default(),
            fatal: watch::channel(None).0,
            reclaimed: watch::channel(false).0,
            holds: self.holds,
        });
        // Leases this identity's previous incarnation held (in a store where leases outlive
        // the process) are given up before polling, so that its tasks run again at once.
        let reclaimed = {
            let inner = inner.clone();
            tokio::spawn(async move {
                match inner.store.release_leases_of(&inner.options.identity, inner.clock.now()).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(n, identity = %inner.options.identity, "took back the leases of this identity's previous process")
                    }
                    Err(e) => warn!(error = %e, "releasing this identity's earlier leases failed; they expire instead"),
                }
                inner.reclaimed.send_replace(true);
            })
        };
        // A test clock must not skip while the worker starts: each loop holds it until it
        // first waits.
        let starting = || inner.holds.as_ref().map(crate::testing::TestClock::hold);
        let (wf_start, act_start) = (starting(), starting());
        let wf = tokio::spawn({
            let inner = inner.clone();
            async move {
                let _ = reclaimed.await;
                let act = tokio::spawn(poll_loop(inner.clone(), TaskQueue::Activity, act_start));
                let _guard = AbortOnDrop(act);
                poll_loop(inner, TaskQueue::Workflow, wf_start).await;
            }
        });
        Ok(RunningWorker { inner, shutdown_tx, loops: vec![wf] })
    }
}

/// Aborts a task when dropped (the activity poll loop ends with the workflow one).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Registry {
    fn workflow_names_list(&self) -> Vec<String> {
        self.workflows.keys().cloned().collect()
    }
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) options: WorkerOptions,
    pub(crate) registry: Arc<Registry>,
    executor: Executor,
    /// The last event id of each cached run (see [`executor::Known`]).
    known: executor::Known,
    run_locks: Mutex<HashMap<RunId, Arc<tokio::sync::Mutex<()>>>>,
    workflow_permits: Arc<Semaphore>,
    pub(crate) activity_permits: Arc<Semaphore>,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Running tasks; aborted when the worker is dropped (as a crash would end them).
    inflight: Mutex<JoinSet<()>>,
    /// Set once the leases of this identity's previous process were given up: no eager
    /// lease is taken before, or it would be given up with them.
    reclaimed: watch::Sender<bool>,
    /// Set when the store failed for good: the worker stopped (see `RunningWorker::failed`).
    fatal: watch::Sender<Option<crate::error::StoreError>>,
    holds: Option<crate::testing::TestClock>,
    /// Local activities running in this worker, by run and seq (a replay asks again for one
    /// already running).
    local_running: Mutex<std::collections::HashSet<(RunId, crate::ids::Seq)>>,
}

fn inner_set(inner: &Inner) -> std::sync::MutexGuard<'_, JoinSet<()>> {
    inner.inflight.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    /// The last event id of `run_id` in the cache, or 0 when it is not cached.
    fn known_last(&self, run_id: &RunId) -> crate::ids::EventId {
        self.known.lock().unwrap_or_else(|e| e.into_inner()).get(run_id).copied().unwrap_or(0)
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// A free workflow-task slot for the first workflow task of a new run of `workflow_type`
    /// (eager workflow start), unless this worker does not run the type, has no free slot or
    /// is shutting down.
    fn reserve_workflow_slot(&self, workflow_type: &str) -> Option<OwnedSemaphorePermit> {
        if self.is_shutting_down() || !*self.reclaimed.borrow() || !self.registry.workflows.contains_key(workflow_type)
        {
            return None;
        }
        self.workflow_permits.clone().try_acquire_owned().ok()
    }

    /// Serializes work on one run within this worker, so that its cached machine sees one
    /// task at a time.
    async fn lock_run(&self, run_id: &RunId) -> RunLock<'_> {
        let m = {
            let mut g = self.run_locks.lock().unwrap_or_else(|e| e.into_inner());
            g.entry(run_id.clone()).or_default().clone()
        };
        let guard = m.clone().lock_owned().await;
        RunLock { inner: self, run_id: run_id.clone(), _guard: Some(guard), _m: m }
    }
}

struct RunLock<'a> {
    inner: &'a Inner,
    run_id: RunId,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    _m: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for RunLock<'_> {
    fn drop(&mut self) {
        self._guard.take();
        let mut g = self.inner.run_locks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = g.get(&self.run_id) {
            // Two references: the map's and ours. Nobody else waits; drop the entry.
            if Arc::strong_count(m) <= 2 {
                g.remove(&self.run_id);
            }
        }
    }
}

/// Terminates a run, closing its children by their policies and notifying its parent.
pub(crate) async fn terminate(
    store: &dyn Store,
    run_id: &RunId,
    reason: String,
    now: crate::Timestamp,
) -> Result<(), crate::error::StoreError> {
    closing::close_run(store, run_id, crate::history::EventKind::WorkflowTerminated { reason }, now, None).await
}

/// Leases tasks of `queue` and hands them to handlers, waiting for the store's notification,
/// the next due task or the poll interval between rounds. With a test clock, it holds the
/// clock from `starting` until it first waits, and whenever it is not waiting: time skips
/// only when it waits.
async fn poll_loop(inner: Arc<Inner>, queue: TaskQueue, starting: Option<crate::testing::Hold>) {
    let mut starting = starting;
    let permits = match queue {
        TaskQueue::Workflow => inner.workflow_permits.clone(),
        TaskQueue::Activity => inner.activity_permits.clone(),
    };
    let notify = inner.store.notifier().unwrap_or_else(|| Arc::new(tokio::sync::Notify::new()));
    let mut shutdown = inner.shutdown.clone();
    loop {
        if inner.is_shutting_down() {
            return;
        }
        let first = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // Waiting for a slot is waiting: a test clock may skip meanwhile (every slot
                // may be held by attempts that only a timeout ends, or, at start, by tasks
                // leased eagerly before this loop first ran).
                drop(starting.take());
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                    _ = shutdown.changed() => return,
                }
            }
        };
        let active = inner.holds.as_ref().map(crate::testing::TestClock::hold);
        drop(starting.take());
        let mut granted = vec![first];
        while let Ok(p) = permits.clone().try_acquire_owned() {
            granted.push(p);
            if granted.len() >= 64 {
                break;
            }
        }
        // Register interest before looking, so a change between the look and the wait wakes us.
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let now = inner.clock.now();
        let leased = match inner.store.lease_tasks(queue, now, granted.len(), &inner.options.identity).await {
            Ok(v) => v,
            Err(e) if is_fatal(&e) => {
                // The store takes no more work (a failed flush: a full disk, an I/O error).
                // Retrying would only log the same error forever: stop, and say why.
                tracing::error!(error = %e, ?queue, "the store failed; this worker stops");
                inner.fatal.send_if_modified(|f| {
                    let first = f.is_none();
                    if first {
                        *f = Some(e.clone());
                    }
                    first
                });
                return;
            }
            Err(e) => {
                warn!(error = %e, ?queue, "leasing tasks failed; retrying");
                drop(active);
                inner.clock.poll_sleep(inner.options.poll_interval).await;
                continue;
            }
        };
        let got = leased.len();
        for task in leased {
            let permit = granted.pop().expect("leased at most as many tasks as permits");
            spawn_task(&inner, task, permit);
        }
        drop(granted);
        if got > 0 {
            continue;
        }
        // Two waits: until the next task is due (a real deadline), and the poll interval (a
        // safety net only, which a time-skipping test clock does not skip to).
        let due = match inner.store.next_due(queue).await {
            Ok(Some(t)) => Some(t.since(inner.clock.now())),
            _ => None,
        };
        if due.is_some_and(|d| d.is_zero()) {
            tokio::task::yield_now().await;
            continue;
        }
        // The deadline is registered now, before the hold goes. The poll interval is a safety
        // net only when nothing is due sooner: one timer per idle wait, not two.
        let poll = inner.options.poll_interval;
        let wait = match due {
            Some(d) if d <= poll => inner.clock.sleep(d),
            Some(d) => {
                let (due, net) = (inner.clock.sleep(d), inner.clock.poll_sleep(poll));
                Box::pin(async move {
                    tokio::select! {
                        _ = due => {}
                        _ = net => {}
                    }
                })
            }
            None => inner.clock.poll_sleep(poll),
        };
        drop(active);
        tokio::select! {
            _ = &mut notified => {}
            _ = wait => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Whether a store error means the store takes no more work: a backend failure it marks as
/// not retryable (sled after a failed flush, PostgreSQL refusing the credentials).
fn is_fatal(e: &crate::error::StoreError) -> bool {
    matches!(e, crate::error::StoreError::Backend { retryable: false, .. })
}

/// Runs a leased task in the background, holding `permit` (a slot of its queue) until done.
fn spawn_task(inner: &Arc<Inner>, task: LeasedTask, permit: OwnedSemaphorePermit) {
    let i = inner.clone();
    let hold = inner.holds.as_ref().map(crate::testing::TestClock::hold);
    let fut = async move {
        handle_task(&i, task).await;
        drop(permit);
        drop(hold);
    };
    let mut set = inner_set(inner);
    while set.try_join_next().is_some() {}
    set.spawn(fut);
}

/// Runs `fut` in the background with the worker's tasks (a crash of the worker aborts it),
/// holding no slot.
pub(crate) fn spawn_background(inner: &Arc<Inner>, fut: impl std::future::Future<Output = ()> + Send + 'static) {
    let mut set = inner_set(inner);
    while set.try_join_next().is_some() {}
    set.spawn(fut);
}

/// Starts the activity tasks an append leased to this worker (eager dispatch), each in the
/// slot reserved for it; unused slots are freed.
pub(crate) fn dispatch_eager(
    inner: &Arc<Inner>,
    leased: Vec<LeasedTask>,
    mut slots: Vec<(crate::store::TaskKey, OwnedSemaphorePermit)>,
) {
    for task in leased {
        let Some(i) = slots.iter().position(|(k, _)| *k == task.task.key) else {
            warn!(task = %task.task.key, "the store leased a task this worker did not ask for; its lease will expire");
            continue;
        };
        let (_, permit) = slots.swap_remove(i);
        spawn_task(inner, task, permit);
    }
}

/// Creates `run`; when this worker has a free workflow-task slot, the creating write also
/// leases the run's first workflow task to it, and the task runs at once (eager workflow
/// start, for the runs a worker creates: children, continue-as-new, retries).
pub(crate) async fn create_run(inner: &Arc<Inner>, run: crate::store::NewRun) -> Result<(), crate::error::StoreError> {
    let now = inner.clock.now();
    // A run that starts later (a retry after its backoff) waits in the queue until then.
    let slot = if run.time <= now { inner.reserve_workflow_slot(&run.info.workflow_type) } else { None };
    let run = match slot {
        Some(_) => run.lease_to(inner.options.identity.clone(), now),
        None => run,
    };
    if let (Some(task), Some(permit)) = (inner.store.create_run(run).await?, slot) {
        spawn_task(inner, task, permit);
    }
    Ok(())
}

async fn handle_task(inner: &Arc<Inner>, task: LeasedTask) {
    match task.task.queue() {
        TaskQueue::Workflow => workflow_tasks::handle(inner, task).await,
        TaskQueue::Activity => activities::handle(inner, task).await,
    }
}

/// A started worker. Dropping it stops polling; [`shutdown`](Self::shutdown) also waits for
/// running work.
pub struct RunningWorker {
    inner: Arc<Inner>,
    shutdown_tx: watch::Sender<bool>,
    loops: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningWorker {
    /// A client on the same store and clock.
    pub fn client(&self) -> Client {
        Client::new(self.inner.store.clone())
            .with_clock(self.inner.clock.clone())
            .with_limits(self.inner.options.limits.clone())
            .with_registered(self.inner.registry.workflow_names_list())
            .with_worker(self.worker_link())
    }

    /// This worker's workflow code, to answer queries and validate updates with.
    pub(crate) fn worker_link(&self) -> std::sync::Weak<dyn crate::client::WorkerLink> {
        let server: Arc<dyn crate::client::WorkerLink> = self.inner.clone();
        Arc::downgrade(&server)
    }

    /// Asks workflow `workflow_id` (its latest run) query `Q`, answered from its current state
    /// (replayed from its history when it is not cached). Writes nothing. The same as
    /// [`Client::query`] on this worker's [`client`](Self::client).
    pub async fn query<Q: crate::workflow::Query>(
        &self,
        workflow_id: &str,
        args: Q::Args,
    ) -> Result<Q::Output, crate::error::QueryError> {
        self.client().query::<Q>(workflow_id, args).await
    }

    /// The worker's identity.
    pub fn identity(&self) -> &str {
        &self.inner.options.identity
    }

    /// Resolves when the worker stopped because its store failed for good (a write could
    /// not be made durable: a full disk, an I/O error), with that error. An application
    /// waiting for results should wait for this too, and exit with the error instead of
    /// waiting forever; after the cause is fixed, reopening the store resumes everything.
    pub async fn failed(&self) -> crate::error::StoreError {
        let mut rx = self.inner.fatal.subscribe();
        loop {
            if let Some(e) = rx.borrow_and_update().clone() {
                return e;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Stops leasing, lets running work finish (activity attempts get the grace period, then
    /// are cancelled and their tasks released for another worker), and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        for l in &self.loops {
            l.abort();
        }
        let wf = self.inner.options.max_concurrent_workflow_tasks as u32;
        let act = self.inner.options.max_concurrent_activities as u32;
        let _ = self.inner.workflow_permits.acquire_many(wf).await;
        let _ = self.inner.activity_permits.acquire_many(act).await;
        // Local activities hold no slot: give the running ones the grace period to finish and
        // record their outcome (the rest run again when their runs are replayed).
        // (Real time: a test clock may not move while they run.)
        let deadline = std::time::Instant::now() + self.inner.options.shutdown_grace;
        while !self.inner.local_running.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for RunningWorker {
    /// Stops everything at once, like a crash: running attempts are aborted and their leases
    /// expire. Use [`RunningWorker::shutdown`] to stop gracefully.
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
        for l in &self.loops {
            l.abort();
        }
        inner_set(&self.inner).abort_all();
    }
}

impl crate::client::WorkerLink for Inner {
    fn reserve_workflow_slot(&self, workflow_type: &str) -> Option<(String, OwnedSemaphorePermit)> {
        let permit = self.reserve_workflow_slot(workflow_type)?;
        Some((self.options.identity.clone(), permit))
    }

    fn run_leased(self: Arc<Self>, task: LeasedTask, slot: OwnedSemaphorePermit) {
        // A worker stopped (or dropped, as a crash) since the slot was reserved runs nothing
        // more: the lease expires and another worker takes the task as lost.
        if !self.is_shutting_down() {
            spawn_task(&self, task, slot);
        }
    }

    fn wait_reclaimed(&self) -> futures::future::BoxFuture<'_, bool> {
        Box::pin(async move {
            let (mut done, mut stop) = (self.reclaimed.subscribe(), self.shutdown.clone());
            tokio::select! {
                r = done.wait_for(|d| *d) => r.is_ok(),
                _ = stop.wait_for(|s| *s) => false,
            }
        })
    }

    fn answer(
        &self,
        run: &crate::store::RunInfo,
        history: Vec<crate::history::Event>,
        name: &str,
        args: crate::payload::Payload,
    ) -> Result<crate::payload::Payload, crate::error::QueryError> {
        let (run_id, wtype, name) = (run.run_id.clone(), run.workflow_type.clone(), name.to_string());
        self.executor.call(move |s| s.query(&run_id, &wtype, &history, &name, &args))
    }

    fn validate_update(
        &self,
        run: &crate::store::RunInfo,
        history: Vec<crate::history::Event>,
        name: &str,
        args: crate::payload::Payload,
    ) -> Result<(), crate::error::UpdateError> {
        let (run_id, wtype, name) = (run.run_id.clone(), run.workflow_type.clone(), name.to_string());
        self.executor.call(move |s| s.validate_update(&run_id, &wtype, &history, &name, &args))
    }
}
