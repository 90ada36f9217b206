//! The client: start workflows, await results, inspect, cancel and terminate them.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::close_watch::CloseWatch;
use crate::error::{ControlError, ResetError, ResultError, StartError, StoreError};
use crate::history::{Event, EventKind, ResetFrom, ResetPlan, ResetPoint};
use crate::ids::{validate_id, RunId};
use crate::options::Limits;
use crate::payload::Payload;
use crate::store::{
    AppendRequest, AttemptRecord, NewRun, PendingTask, RunFilter, RunInfo, RunStatus, Store, Task, TaskOp,
};
use crate::time::{Clock, SystemClock};
use crate::workflow::Workflow;

mod async_completion;
mod update;

pub use update::UpdateHandle;

/// How to start a workflow.
///
/// ```
/// use workflow_core::{IdConflictPolicy, IdReusePolicy, StartOptions};
/// let options = StartOptions::default()
///     .id_conflict_policy(IdConflictPolicy::UseExisting)
///     .id_reuse_policy(IdReusePolicy::AllowDuplicateFailedOnly);
/// assert_eq!(options.id_conflict_policy, IdConflictPolicy::UseExisting);
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct StartOptions {
    /// What the start does when the workflow id has an open run. Default
    /// [`IdConflictPolicy::Fail`].
    pub id_conflict_policy: IdConflictPolicy,
    /// What the start does when the workflow id's latest run is closed. Default
    /// [`IdReusePolicy::AllowDuplicate`].
    pub id_reuse_policy: IdReusePolicy,
    /// Retry the whole workflow: a failed run is followed by a new run (same workflow id) after
    /// the policy's backoff, until the policy gives up. Default: no retries.
    pub retry_policy: Option<crate::RetryPolicy>,
    /// Close a run as timed out when it takes longer than this. Default: no limit.
    pub run_timeout: Option<Duration>,
    /// Close the workflow as timed out when all its runs (continue-as-new, retries) take longer
    /// than this. Default: no limit.
    pub execution_timeout: Option<Duration>,
}

/// What starting a workflow id does when a run of it is still open (as Temporal's
/// `WorkflowIdConflictPolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdConflictPolicy {
    /// Refuse with [`StartError::AlreadyStarted`] (the default).
    #[default]
    Fail,
    /// Return a handle on the open run; nothing is started. The start of an application
    /// that may have crashed after starting: it attaches to the run it started.
    UseExisting,
    /// Terminate the open run (its children closed by their policies), then start anew.
    TerminateExisting,
}

/// What starting a workflow id does when its latest run is closed (as Temporal's
/// `WorkflowIdReusePolicy`). A run removed by retention no longer counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdReusePolicy {
    /// Start a new run whatever the last one's outcome (the default).
    #[default]
    AllowDuplicate,
    /// Start a new run only when the last one did not complete: it failed, was cancelled,
    /// terminated or timed out. A completed job is not done twice.
    AllowDuplicateFailedOnly,
    /// Never start a second run of the id.
    RejectDuplicate,
}

impl IdReusePolicy {
    fn allows(self, last: RunStatus) -> bool {
        match self {
            IdReusePolicy::AllowDuplicate => true,
            IdReusePolicy::AllowDuplicateFailedOnly => {
                matches!(last, RunStatus::Failed | RunStatus::Cancelled | RunStatus::Terminated | RunStatus::TimedOut)
            }
            IdReusePolicy::RejectDuplicate => false,
        }
    }
}

impl StartOptions {
    /// Sets the workflow retry policy.
    pub fn retry_policy(mut self, p: crate::RetryPolicy) -> Self {
        self.retry_policy = Some(p);
        self
    }

    /// Sets the execution timeout (across continue-as-new and retries).
    pub fn execution_timeout(mut self, d: Duration) -> Self {
        self.execution_timeout = Some(d);
        self
    }

    /// Sets the run timeout.
    pub fn run_timeout(mut self, d: Duration) -> Self {
        self.run_timeout = Some(d);
        self
    }

    /// Sets what a start does when the id has an open run.
    pub fn id_conflict_policy(mut self, p: IdConflictPolicy) -> Self {
        self.id_conflict_policy = p;
        self
    }

    /// Sets what a start does when the id's latest run is closed.
    pub fn id_reuse_policy(mut self, p: IdReusePolicy) -> Self {
        self.id_reuse_policy = p;
        self
    }

    /// `true`: [`IdConflictPolicy::UseExisting`]; `false`: [`IdConflictPolicy::Fail`].
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.id_conflict_policy = if yes { IdConflictPolicy::UseExisting } else { IdConflictPolicy::Fail };
        self
    }
}

/// A run as [`Client::describe`] shows it: its info, pending work and attempt log.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Description {
    /// The run.
    pub info: RunInfo,
    /// Tasks not yet done: activities (with attempt, last error, heartbeat), timers.
    pub pending: Vec<PendingTask>,
    /// Every activity attempt so far.
    pub attempts: Vec<AttemptRecord>,
}

/// Talks to a store on behalf of users: start, await, describe, list, cancel, terminate.
///
/// ```
/// use std::sync::Arc;
/// use workflow_core::{store::MemoryStore, Client};
/// let client = Client::new(Arc::new(MemoryStore::new()));
/// # let _ = client;
/// ```
#[derive(Clone)]
pub struct Client {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    limits: Limits,
    registered: Option<Arc<Vec<String>>>,
    close_watch: Arc<std::sync::OnceLock<Option<Arc<CloseWatch>>>>,
    /// The running worker this client came from: its workflow code answers queries and
    /// validates updates, and it runs the first workflow task of the runs this client starts.
    worker: Option<std::sync::Weak<dyn WorkerLink>>,
}

/// What a client asks of the running worker it came from.
pub(crate) trait WorkerLink: Send + Sync {
    /// Reserves a free workflow-task slot for the first workflow task of a run of
    /// `workflow_type` (eager workflow start): the lease holder to name and the slot, or
    /// `None` when the worker does not run the type, has no free slot or is shutting down.
    fn reserve_workflow_slot(&self, workflow_type: &str) -> Option<(String, tokio::sync::OwnedSemaphorePermit)>;

    /// Runs a workflow task leased to this worker in the slot reserved for it.
    fn run_leased(self: Arc<Self>, task: crate::store::LeasedTask, slot: tokio::sync::OwnedSemaphorePermit);

    /// Waits until the worker has given up the leases of its identity's previous process
    /// (a lease taken before would be given up with them); `false` when it stopped first.
    fn wait_reclaimed(&self) -> futures::future::BoxFuture<'_, bool>;

    /// Answers a query from a run's history with the workflow code it knows.
    fn answer(
        &self,
        run: &RunInfo,
        history: Vec<Event>,
        name: &str,
        args: Payload,
    ) -> Result<Payload, crate::error::QueryError>;

    /// Checks update `name` with `args` against the run's state after `history`.
    fn validate_update(
        &self,
        run: &RunInfo,
        history: Vec<Event>,
        name: &str,
        args: Payload,
    ) -> Result<(), crate::error::UpdateError>;
}

impl Client {
    /// A client on `store` with the system clock and default limits. It cannot check that a
    /// worker knows the workflow type; clients from [`Worker::client`](crate::Worker::client)
    /// can.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Client {
            store,
            clock: Arc::new(SystemClock),
            limits: Limits::default(),
            registered: None,
            close_watch: Arc::default(),
            worker: None,
        }
    }

    /// Links the client to a running worker (see [`WorkerLink`]).
    pub(crate) fn with_worker(mut self, server: std::sync::Weak<dyn WorkerLink>) -> Self {
        self.worker = Some(server);
        self
    }

    /// Asks workflow `workflow_id` (its latest run, open or closed) query `Q`, answered from
    /// its current state, rebuilt from its history by the workflow code of the worker this
    /// client came from ([`RunningWorker::client`](crate::RunningWorker::client)). Writes
    /// nothing, and needs no worker to be running the run: any worker that registered the
    /// workflow type answers.
    ///
    /// Errors: [`QueryError::NotFound`](crate::error::QueryError::NotFound),
    /// [`QueryError::UnknownQuery`](crate::error::QueryError::UnknownQuery), and
    /// [`QueryError::NoWorkflowCode`](crate::error::QueryError::NoWorkflowCode) for a client
    /// made with [`Client::new`] or before its worker started.
    pub async fn query<Q: crate::workflow::Query>(
        &self,
        workflow_id: &str,
        args: Q::Args,
    ) -> Result<Q::Output, crate::error::QueryError> {
        use crate::error::QueryError;
        let server = self.worker.as_ref().and_then(std::sync::Weak::upgrade).ok_or(QueryError::NoWorkflowCode)?;
        let info = self
            .store
            .current_run(workflow_id)
            .await?
            .ok_or_else(|| QueryError::NotFound { workflow_id: workflow_id.to_string() })?;
        let history = self.store.read_history(&info.run_id, 0).await?;
        let answer = server.answer(&info, history, Q::NAME, Payload::encode(&args)?)?;
        Ok(answer.decode(&format!("answer of query {}", Q::NAME))?)
    }

    /// Uses `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `limits`.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Checks starts against these registered workflow types.
    pub fn with_registered(mut self, types: Vec<String>) -> Self {
        self.registered = Some(Arc::new(types));
        self
    }

    /// The time now, by this client's clock (a virtual one in tests).
    pub fn now(&self) -> crate::Timestamp {
        self.clock.now()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Starts workflow `W` under `workflow_id`. Returns once the start is recorded (durably,
    /// for a durable store).
    pub async fn start<W: Workflow>(
        &self,
        workflow_id: &str,
        input: W::Input,
        options: StartOptions,
    ) -> Result<WorkflowHandle<W>, StartError> {
        validate_id("workflow id", workflow_id, self.limits.max_id_bytes)?;
        if let Some(reg) = &self.registered {
            if !reg.iter().any(|t| t == W::NAME) {
                return Err(StartError::UnknownWorkflowType {
                    workflow_type: W::NAME.into(),
                    registered: if reg.is_empty() { "none".into() } else { reg.join(", ") },
                });
            }
        }
        let input = Payload::encode(&input)?;
        input.check_size("workflow input", self.limits.max_payload_bytes)?;
        if let Some(p) = &options.retry_policy {
            p.validate()?;
        }
        for (option, v) in [("run_timeout", options.run_timeout), ("execution_timeout", options.execution_timeout)] {
            if v == Some(Duration::ZERO) {
                return Err(crate::error::OptionsError { option, reason: "must be above zero".into() }.into());
            }
        }
        let run_id = RunId::generate();
        let now = self.clock.now();
        let start = crate::history::RunStart {
            retry_policy: options.retry_policy.clone(),
            run_timeout: options.run_timeout,
            execution_deadline: options.execution_timeout.map(|t| now.add(t)),
            ..crate::history::RunStart::plain()
        };
        let run = NewRun::new(run_id.clone(), W::NAME, workflow_id, input, now)
            .start(start)
            .seed(uuid::Uuid::new_v4().as_u64_pair().0);
        if options.id_reuse_policy != IdReusePolicy::AllowDuplicate {
            if let Some(last) = self.store.current_run(workflow_id).await? {
                if last.status.is_closed() && !options.id_reuse_policy.allows(last.status) {
                    return Err(StartError::IdReuseRejected {
                        workflow_id: workflow_id.to_string(),
                        run_id: last.run_id,
                        status: last.status,
                        policy: options.id_reuse_policy,
                    });
                }
            }
        }
        // Eager workflow start: a client of a running worker with a free slot has the run's
        // first workflow task leased to that worker in the creating write, and runs it at
        // once, without a round through the store's queue.
        let worker = self.worker.as_ref().and_then(std::sync::Weak::upgrade);
        let slot = match &worker {
            Some(w) if w.wait_reclaimed().await => w.reserve_workflow_slot(W::NAME),
            _ => None,
        };
        let run = match &slot {
            Some((owner, _)) => run.lease_to(owner.clone(), now),
            None => run,
        };
        // A run terminated to make room may be replaced by a racing start: a few tries.
        let mut tries = 0;
        loop {
            match self.store.create_run(run.clone()).await {
                Ok(leased) => {
                    if let (Some(task), Some(w), Some((_, permit))) = (leased, worker, slot) {
                        w.run_leased(task, permit);
                    }
                    return Ok(self.handle_for_run(workflow_id, Some(run_id)));
                }
                Err(StoreError::AlreadyExists { workflow_id, run_id: open }) => match options.id_conflict_policy {
                    IdConflictPolicy::UseExisting => return Ok(self.handle_for_run(&workflow_id, Some(open))),
                    IdConflictPolicy::TerminateExisting if tries < 3 => {
                        tries += 1;
                        let reason = format!("terminated to start run {run_id} (IdConflictPolicy::TerminateExisting)");
                        match crate::worker::terminate(&*self.store, &open, reason, self.clock.now()).await {
                            Ok(()) | Err(StoreError::RunClosed { .. }) | Err(StoreError::Conflict { .. }) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                    _ => return Err(StartError::AlreadyStarted { workflow_id, run_id: open }),
                },
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A handle on the latest run of `workflow_id`.
    pub fn handle<W: Workflow>(&self, workflow_id: &str) -> WorkflowHandle<W> {
        self.handle_for_run(workflow_id, None)
    }

    fn handle_for_run<W: Workflow>(&self, workflow_id: &str, run_id: Option<RunId>) -> WorkflowHandle<W> {
        WorkflowHandle { client: self.clone(), workflow_id: workflow_id.to_string(), run_id, _w: PhantomData }
    }

    async fn run_info(&self, workflow_id: &str, run_id: Option<&RunId>) -> Result<RunInfo, ControlError> {
        let found = match run_id {
            Some(r) => self.store.get_run(r).await?,
            None => self.store.current_run(workflow_id).await?,
        };
        found.ok_or_else(|| ControlError::NotFound { workflow_id: workflow_id.to_string() })
    }

    /// Describes the latest run of `workflow_id`.
    pub async fn describe(&self, workflow_id: &str) -> Result<Description, ControlError> {
        let info = self.run_info(workflow_id, None).await?;
        let pending = self.store.list_tasks(&info.run_id).await?;
        let attempts = self.store.list_attempts(&info.run_id).await?;
        Ok(Description { info, pending, attempts })
    }

    /// The history of the latest run of `workflow_id`.
    pub async fn history(&self, workflow_id: &str) -> Result<Vec<Event>, ControlError> {
        let info = self.run_info(workflow_id, None).await?;
        Ok(self.store.read_history(&info.run_id, 0).await?)
    }

    /// Runs matching `filter`, newest first.
    pub async fn list(&self, filter: &RunFilter) -> Result<Vec<RunInfo>, ControlError> {
        Ok(self.store.list_runs(filter).await?)
    }

    /// Requests cancellation: the workflow's pending activities and timers fail with
    /// `Cancelled`, it may run cleanup, then it ends cancelled.
    pub async fn cancel(&self, workflow_id: &str, reason: Option<String>) -> Result<(), ControlError> {
        let info = self.open_run(workflow_id).await?;
        let now = self.clock.now();
        let req = AppendRequest::new(info.run_id.clone(), now)
            .events([EventKind::CancelRequested { reason, sender: None }])
            .task_op(TaskOp::Upsert(Task::workflow(&info.run_id, now)));
        self.append_control(workflow_id, req).await
    }

    /// Terminates the run at once, recording `reason`; no workflow code runs after it.
    pub async fn terminate(&self, workflow_id: &str, reason: &str) -> Result<(), ControlError> {
        let info = self.open_run(workflow_id).await?;
        let result = crate::worker::terminate(&*self.store, &info.run_id, reason.to_string(), self.clock.now()).await;
        self.control_result(workflow_id, result).await
    }

    /// Sends signal `S` to the open run of `workflow_id`. Fails with
    /// [`ControlError::NotFound`] or [`ControlError::AlreadyClosed`] when there is no open run.
    pub async fn signal<S: crate::workflow::Signal>(
        &self,
        workflow_id: &str,
        payload: S::Payload,
    ) -> Result<(), ControlError> {
        self.signal_raw(workflow_id, S::NAME, Payload::encode(&payload)?).await
    }

    /// Sends signal `name` with `payload` to the open run of `workflow_id`.
    pub async fn signal_raw(&self, workflow_id: &str, name: &str, payload: Payload) -> Result<(), ControlError> {
        payload.check_size("signal payload", self.limits.max_payload_bytes)?;
        let info = self.open_run(workflow_id).await?;
        let now = self.clock.now();
        let req = AppendRequest::new(info.run_id.clone(), now)
            .events([EventKind::SignalReceived { name: name.to_string(), payload, sender: None }])
            .task_op(TaskOp::Upsert(Task::workflow(&info.run_id, now)));
        self.append_control(workflow_id, req).await
    }

    /// Re-runs the latest run of `workflow_id` from `point` as a new run, with the code
    /// registered now: the new run keeps the old run's events up to the point (so completed
    /// activities, fired timers and ended children are not done again), schedules again the
    /// work that was pending there (activities start over at attempt 1, timers keep their
    /// time, children that had not ended are started again), receives again the signals the
    /// old run got after the point, and goes on. As Temporal's reset.
    ///
    /// An open run is terminated first (its children follow their parent-close policies);
    /// a closed one stays as it ended. The new run's `WorkflowStarted` records where it came
    /// from ([`RunStart::reset_from`](crate::history::RunStart::reset_from)); it has the old
    /// run's input and seed, no parent, and no execution deadline. Returns the new run's id.
    ///
    /// Refused, with a [`ResetError`] that says what to do, when the point is outside the
    /// history, when a child that would be started again is still open, or when the run is
    /// a child whose parent is open. If the process dies midway, the new run is completed by
    /// the first worker that picks it up, or, if it was not created yet, the old run is left
    /// closed and `reset` can be called again.
    pub async fn reset(&self, workflow_id: &str, point: ResetPoint, reason: &str) -> Result<RunId, ResetError> {
        let info = self.run_info(workflow_id, None).await?;
        let history = self.store.read_history(&info.run_id, 0).await?;
        if let Some(parent) = &info.parent {
            let open = self.store.current_run(&parent.workflow_id).await?;
            if open.is_some_and(|p| !p.status.is_closed()) {
                return Err(ResetError::ParentOpen { parent_workflow_id: parent.workflow_id.clone() });
            }
        }
        let plan = ResetPlan::new(&history, point)?;
        for (seq, child_workflow_id, _) in &plan.restarted_children {
            let child = self.store.current_run(child_workflow_id).await?;
            if child.is_some_and(|c| !c.status.is_closed()) {
                return Err(ResetError::ChildStillOpen { seq: *seq, child_workflow_id: child_workflow_id.clone() });
            }
        }
        let from = ResetFrom { run_id: info.run_id.clone(), event_id: plan.point, reason: reason.to_string() };
        let started = ResetPlan::started(&history, from.clone())
            .ok_or_else(|| ResetError::MalformedHistory { run_id: info.run_id.clone() })?;
        let new_run_id = RunId::generate();
        let now = self.clock.now();
        if !info.status.is_closed() {
            let why = format!("reset: re-run from event {} as run {new_run_id}: {reason}", plan.point);
            match crate::worker::terminate(&*self.store, &info.run_id, why, now).await {
                Ok(()) | Err(StoreError::RunClosed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut run = NewRun::new(new_run_id.clone(), &info.workflow_type, workflow_id, info.input.clone(), now);
        run.started = started;
        self.store.create_run(run).await?;
        crate::worker::reset::finish(&*self.store, &new_run_id, workflow_id, &from, now).await?;
        Ok(new_run_id)
    }

    async fn open_run(&self, workflow_id: &str) -> Result<RunInfo, ControlError> {
        let info = self.run_info(workflow_id, None).await?;
        if info.status.is_closed() {
            return Err(ControlError::AlreadyClosed {
                workflow_id: workflow_id.to_string(),
                status: info.status.to_string(),
            });
        }
        Ok(info)
    }

    async fn append_control(&self, workflow_id: &str, req: AppendRequest) -> Result<(), ControlError> {
        let result = self.store.append(req).await.map(|_| ());
        self.control_result(workflow_id, result).await
    }

    /// Maps a write that found the run closed to [`ControlError::AlreadyClosed`].
    async fn control_result(&self, workflow_id: &str, result: Result<(), StoreError>) -> Result<(), ControlError> {
        match result {
            Ok(()) => Ok(()),
            Err(StoreError::RunClosed { .. }) => {
                let info = self.run_info(workflow_id, None).await?;
                Err(ControlError::AlreadyClosed {
                    workflow_id: workflow_id.to_string(),
                    status: info.status.to_string(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Polls `check` until it yields a value, waking on store changes (or every 500 ms when
    /// the store cannot notify).
    async fn wait_for<T, E, F, Fut>(&self, mut check: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, E>>,
    {
        let notify = self.store.notifier().unwrap_or_else(|| Arc::new(tokio::sync::Notify::new()));
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = check().await? {
                return Ok(v);
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = self.clock.poll_sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    async fn wait_exists(&self, run_id: &RunId) -> Result<(), StoreError> {
        let _waiting = self.clock.waiting();
        self.wait_for(|| async { Ok(self.store.get_run(run_id).await?.map(|_| ())) }).await
    }

    /// Waits until the run closes and returns its info.
    pub async fn wait_closed(&self, workflow_id: &str, run_id: Option<&RunId>) -> Result<RunInfo, ControlError> {
        let _waiting = self.clock.waiting();
        let watch = self.close_watch.get_or_init(|| self.store.closed_runs().map(CloseWatch::start)).clone();
        if let Some(watch) = watch {
            let mut info = self.run_info(workflow_id, run_id).await?;
            loop {
                // Registered before the look: a close in between is not missed.
                let closed = watch.register(&info.run_id);
                info = self.run_info(workflow_id, run_id).await?;
                if info.status.is_closed() {
                    return Ok(info);
                }
                tokio::select! {
                    _ = closed => {}
                    // A safety net for a store that stops announcing.
                    _ = self.clock.poll_sleep(Duration::from_secs(60)) => {}
                }
            }
        }
        self.wait_for(|| async {
            let info = self.run_info(workflow_id, run_id).await?;
            Ok(info.status.is_closed().then_some(info))
        })
        .await
    }
}

/// A typed handle on a workflow's run.
pub struct WorkflowHandle<W> {
    client: Client,
    workflow_id: String,
    run_id: Option<RunId>,
    _w: PhantomData<fn() -> W>,
}

impl<W> std::fmt::Debug for WorkflowHandle<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowHandle").field("workflow_id", &self.workflow_id).field("run_id", &self.run_id).finish()
    }
}

impl<W> Clone for WorkflowHandle<W> {
    fn clone(&self) -> Self {
        WorkflowHandle {
            client: self.client.clone(),
            workflow_id: self.workflow_id.clone(),
            run_id: self.run_id.clone(),
            _w: PhantomData,
        }
    }
}

impl<W: Workflow> WorkflowHandle<W> {
    /// The workflow id.
    pub fn workflow_id(&self) -> &str {
        &self.workflow_id
    }

    /// The run this handle follows, when known.
    pub fn run_id(&self) -> Option<&RunId> {
        self.run_id.as_ref()
    }

    /// Waits for the workflow to finish and returns its typed result. Follows the chain of
    /// runs: continue-as-new and retries by the workflow's retry policy.
    pub async fn result(&self) -> Result<W::Output, ResultError> {
        let mut run_id = self.run_id.clone();
        let wid = self.workflow_id.clone();
        loop {
            let info = self.client.wait_closed(&self.workflow_id, run_id.as_ref()).await.map_err(|e| match e {
                ControlError::Store(s) => ResultError::Store(s),
                other => ResultError::Store(StoreError::NotFound { what: other.to_string() }),
            })?;
            let last = self.client.store.read_history(&info.run_id, info.last_event_id.saturating_sub(1)).await?;
            let next = last.last().and_then(|e| match &e.kind {
                EventKind::WorkflowContinuedAsNew { new_run_id, .. } => Some(new_run_id.clone()),
                EventKind::WorkflowFailed { next_run: Some(next), .. } => Some(next.clone()),
                _ => None,
            });
            if let Some(next) = next {
                // The successor is created by a task; wait for it to exist.
                self.client.wait_exists(&next).await?;
                run_id = Some(next);
                continue;
            }
            return match info.status {
                RunStatus::Completed => {
                    let p = info.result.unwrap_or_else(Payload::null);
                    Ok(p.decode(&format!("result of workflow {}", W::NAME))?)
                }
                RunStatus::Failed | RunStatus::ContinuedAsNew => Err(ResultError::Failed {
                    workflow_id: wid,
                    failure: info
                        .failure
                        .unwrap_or_else(|| crate::error::Failure::new("Unknown", "no failure recorded")),
                }),
                RunStatus::Cancelled => Err(ResultError::Cancelled { workflow_id: wid }),
                RunStatus::TimedOut => Err(ResultError::TimedOut { workflow_id: wid }),
                RunStatus::Terminated => Err(ResultError::Terminated {
                    workflow_id: wid,
                    reason: info.failure.map(|f| f.message).unwrap_or_default(),
                }),
                RunStatus::Running => unreachable!("wait_closed returns closed runs only"),
            };
        }
    }

    /// Describes the run.
    pub async fn describe(&self) -> Result<Description, ControlError> {
        self.client.describe(&self.workflow_id).await
    }

    /// The run's history.
    pub async fn history(&self) -> Result<Vec<Event>, ControlError> {
        match &self.run_id {
            Some(r) => Ok(self.client.store.read_history(r, 0).await?),
            None => self.client.history(&self.workflow_id).await,
        }
    }

    /// Requests cancellation.
    pub async fn cancel(&self) -> Result<(), ControlError> {
        self.client.cancel(&self.workflow_id, None).await
    }

    /// Terminates the run.
    pub async fn terminate(&self, reason: &str) -> Result<(), ControlError> {
        self.client.terminate(&self.workflow_id, reason).await
    }
}
