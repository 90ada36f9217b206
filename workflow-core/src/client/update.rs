//! Updates from the client's side: validate, record the acceptance, wait for the answer.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Client, WorkerLink};
use crate::error::{StoreError, UpdateError};
use crate::history::{EventKind, UpdateOutcome};
use crate::ids::{validate_id, RunId};
use crate::payload::Payload;
use crate::store::{AppendRequest, RunInfo, Task, TaskOp};
use crate::workflow::Update;

/// Appends that lose the race with another writer are retried this many times (validating
/// again each time, against the newer state) before the conflict is returned.
const MAX_ACCEPT_TRIES: usize = 64;

impl Client {
    /// Sends update `U` to the open run of `workflow_id` and waits for the workflow's answer.
    /// The call gets a fresh update id; use [`update_with_id`](Self::update_with_id) to make
    /// a retried call idempotent.
    ///
    /// The workflow's validator runs first against the run's current state, rebuilt by the
    /// workflow code of the worker this client came from; a refused update records nothing.
    /// An accepted update is recorded (`UpdateAccepted`, in order with signals) and the call
    /// waits until workflow code answers it (`UpdateCompleted`) or the run closes.
    ///
    /// Errors: [`UpdateError`] says which: not found, closed, unknown update, bad arguments,
    /// rejected by the validator, failed by the workflow, closed without an answer, or no
    /// workflow code ([`Client::new`]: send through a worker's client).
    pub async fn update<U: Update>(&self, workflow_id: &str, args: U::Args) -> Result<U::Output, UpdateError> {
        let update_id = RunId::generate().0;
        self.update_with_id::<U>(workflow_id, &update_id, args).await
    }

    /// As [`update`](Self::update) with the caller's `update_id`: a call repeated with the
    /// same id (after a timeout or a crash of the caller) finds the update already accepted
    /// in the run and waits for, or returns, its one answer instead of sending it again.
    pub async fn update_with_id<U: Update>(
        &self,
        workflow_id: &str,
        update_id: &str,
        args: U::Args,
    ) -> Result<U::Output, UpdateError> {
        self.start_update_with_id::<U>(workflow_id, update_id, args).await?.result().await
    }

    /// Sends update `U` and returns once the workflow accepted it (validated and recorded),
    /// without waiting for the answer: [`UpdateHandle::result`] waits for it, from this
    /// process or, through [`update_handle`](Self::update_handle), from another.
    pub async fn start_update_with_id<U: Update>(
        &self,
        workflow_id: &str,
        update_id: &str,
        args: U::Args,
    ) -> Result<UpdateHandle<U>, UpdateError> {
        validate_id("update id", update_id, self.limits.max_id_bytes)?;
        let args = Payload::encode(&args)?;
        args.check_size(&format!("arguments of update {}", U::NAME), self.limits.max_payload_bytes)?;
        let server = self.worker.as_ref().and_then(std::sync::Weak::upgrade).ok_or(UpdateError::NoWorkflowCode)?;
        let run = self.accept_update(&server, workflow_id, update_id, U::NAME, args).await?;
        Ok(UpdateHandle { client: self.clone(), run, update_id: update_id.to_string(), _u: PhantomData })
    }

    /// A handle on update `update_id` that the latest run of `workflow_id` accepted, to wait
    /// for its answer (needs no workflow code).
    pub async fn update_handle<U: Update>(
        &self,
        workflow_id: &str,
        update_id: &str,
    ) -> Result<UpdateHandle<U>, UpdateError> {
        let run = self
            .store
            .current_run(workflow_id)
            .await?
            .ok_or_else(|| UpdateError::NotFound { workflow_id: workflow_id.to_string() })?;
        Ok(UpdateHandle { client: self.clone(), run, update_id: update_id.to_string(), _u: PhantomData })
    }

    /// Validates the update and records it in the open run, or finds it already recorded.
    async fn accept_update(
        &self,
        server: &Arc<dyn WorkerLink>,
        workflow_id: &str,
        update_id: &str,
        name: &str,
        args: Payload,
    ) -> Result<RunInfo, UpdateError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let info = self
                .store
                .current_run(workflow_id)
                .await?
                .ok_or_else(|| UpdateError::NotFound { workflow_id: workflow_id.to_string() })?;
            let history = self.store.read_history(&info.run_id, 0).await?;
            if let Some(recorded) = history.iter().find_map(|e| match &e.kind {
                EventKind::UpdateAccepted { update_id: id, name, .. } if id == update_id => Some(name),
                _ => None,
            }) {
                if recorded != name {
                    return Err(UpdateError::IdReused { update_id: update_id.to_string(), recorded: recorded.clone() });
                }
                return Ok(info);
            }
            if info.status.is_closed() {
                return Err(self.closed(workflow_id, &info));
            }
            let last = history.last().map_or(0, |e| e.id);
            server.validate_update(&info, history, name, args.clone())?;
            let now = self.clock.now();
            let req = AppendRequest::new(info.run_id.clone(), now)
                .expect_last(last)
                .events([EventKind::UpdateAccepted {
                    update_id: update_id.to_string(),
                    name: name.to_string(),
                    args: args.clone(),
                }])
                .task_op(TaskOp::Upsert(Task::workflow(&info.run_id, now)));
            match self.store.append(req).await {
                Ok(_) => return Ok(info),
                // The state changed between validating and recording: validate again.
                Err(StoreError::Conflict { .. }) if tries < MAX_ACCEPT_TRIES => continue,
                Err(StoreError::RunClosed { .. }) => {
                    let info = self.store.get_run(&info.run_id).await?.unwrap_or(info);
                    return Err(self.closed(workflow_id, &info));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn closed(&self, workflow_id: &str, info: &RunInfo) -> UpdateError {
        UpdateError::AlreadyClosed { workflow_id: workflow_id.to_string(), status: info.status.to_string() }
    }

    /// Waits for the answer to update `update_id` in `run`.
    async fn wait_update(&self, run: &RunInfo, update_id: &str) -> Result<UpdateOutcome, UpdateError> {
        let _waiting = self.clock.waiting();
        let seen = AtomicU64::new(0);
        self.wait_for(|| async {
            // The status first: when it says closed, the history read next is complete.
            let status = self.store.get_run(&run.run_id).await?.map(|i| i.status);
            let events = self.store.read_history(&run.run_id, seen.load(Ordering::SeqCst)).await?;
            if let Some(last) = events.last() {
                seen.store(last.id, Ordering::SeqCst);
            }
            for e in events {
                if let EventKind::UpdateCompleted { update_id: id, outcome, .. } = e.kind {
                    if id == update_id {
                        return Ok(Some(outcome));
                    }
                }
            }
            match status {
                Some(s) if s.is_closed() => Err(UpdateError::ClosedUnanswered {
                    workflow_id: run.workflow_id.clone(),
                    update_id: update_id.to_string(),
                    status: s.to_string(),
                }),
                _ => Ok(None),
            }
        })
        .await
    }
}

/// An accepted update, to wait for its answer. Made by
/// [`Client::start_update_with_id`] or [`Client::update_handle`].
pub struct UpdateHandle<U> {
    client: Client,
    run: RunInfo,
    update_id: String,
    _u: PhantomData<fn() -> U>,
}

impl<U> std::fmt::Debug for UpdateHandle<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateHandle").field("run_id", &self.run.run_id).field("update_id", &self.update_id).finish()
    }
}

impl<U: Update> UpdateHandle<U> {
    /// The update's id.
    pub fn update_id(&self) -> &str {
        &self.update_id
    }

    /// Waits until workflow code answers the update (or the run closes without answering:
    /// [`UpdateError::ClosedUnanswered`]).
    pub async fn result(&self) -> Result<U::Output, UpdateError> {
        match self.client.wait_update(&self.run, &self.update_id).await? {
            UpdateOutcome::Completed { result } => Ok(result.decode(&format!("result of update {}", U::NAME))?),
            UpdateOutcome::Failed { failure } => Err(UpdateError::Failed { name: U::NAME.to_string(), failure }),
        }
    }
}
