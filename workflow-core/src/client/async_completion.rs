//! Asynchronous activity completion: an attempt completed, failed or heartbeated through its
//! task token, from outside the activity's code.

use serde::Serialize;

use super::Client;
use crate::activity::{ActivityError, TaskToken};
use crate::error::{AsyncCompletionError, StoreError};
use crate::payload::Payload;
use crate::store::{ActivityTask, AppendRequest, AsyncOutcome, AsyncResult, PendingTask, Task, TaskKind, TaskOp};

impl Client {
    /// Completes the attempt named by `token` with `result`, as if the activity had returned
    /// it: a worker records it (one write that also advances the workflow). Fails with
    /// [`AsyncCompletionError::NotCurrent`] when the attempt no longer waits (it timed out, was
    /// cancelled, or was completed already); a repeated call is refused, so at most one
    /// outcome is recorded.
    pub async fn complete_activity<T: Serialize>(
        &self,
        token: &TaskToken,
        result: &T,
    ) -> Result<(), AsyncCompletionError> {
        let result = Payload::encode(result)?;
        result.check_size(&format!("result of activity {}", token.activity_type), self.limits.max_payload_bytes)?;
        self.deliver(token, AsyncOutcome::Completed { result }).await
    }

    /// Fails the attempt named by `token` with `error`, as if the activity had returned it:
    /// the activity's retry policy decides whether another attempt runs (a retryable error)
    /// or the activity fails.
    pub async fn fail_activity(&self, token: &TaskToken, error: ActivityError) -> Result<(), AsyncCompletionError> {
        self.deliver(token, AsyncOutcome::Failed { error: error.bounded() }).await
    }

    /// Records a heartbeat with `details` for the attempt named by `token`: it keeps the
    /// attempt alive under a heartbeat timeout, and the next attempt can read the details.
    pub async fn heartbeat_activity<T: Serialize>(
        &self,
        token: &TaskToken,
        details: &T,
    ) -> Result<(), AsyncCompletionError> {
        let details = Payload::encode(details)?;
        details.check_size("heartbeat details", self.limits.max_payload_bytes)?;
        let (task, _) = self.current_attempt(token).await?;
        let now = self.clock.now();
        match self
            .store
            .heartbeat(&token.task, token.lease, Some(details), now, now.add(task.task.lease_duration))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => Err(not_current(token, e)),
        }
    }

    /// The attempt's task, while it is the one the token names and has no outcome yet.
    async fn current_attempt(&self, token: &TaskToken) -> Result<(PendingTask, ActivityTask), AsyncCompletionError> {
        let tasks = match self.store.list_tasks(&token.run_id).await {
            Ok(t) => t,
            Err(e) => return Err(not_current(token, e)),
        };
        let found = tasks.into_iter().find(|t| t.task.key == token.task);
        match found {
            Some(t) => match &t.task.kind {
                TaskKind::Activity(a) if a.attempt == token.attempt && a.async_result.is_none() => {
                    let a = (**a).clone();
                    Ok((t, a))
                }
                _ => Err(not_current(token, StoreError::LeaseLost { task: token.task.0.clone() })),
            },
            None => Err(not_current(token, StoreError::LeaseLost { task: token.task.0.clone() })),
        }
    }

    /// Stores `outcome` in the attempt's task and makes it due, in one write that holds only
    /// while the attempt's lease does (the store checks the token's lease).
    async fn deliver(&self, token: &TaskToken, outcome: AsyncOutcome) -> Result<(), AsyncCompletionError> {
        let (pending, mut a) = self.current_attempt(token).await?;
        let now = self.clock.now();
        a.async_result = Some(Box::new(AsyncResult {
            outcome,
            worker: token.worker.clone(),
            started_at: token.started_at,
            ended_at: now,
        }));
        let task = Task { visible_at: now, kind: TaskKind::Activity(Box::new(a)), ..pending.task };
        let req = AppendRequest::new(token.run_id.clone(), now)
            .task_op(TaskOp::Upsert(task))
            .complete(token.task.clone(), token.lease);
        match self.store.append(req).await {
            Ok(_) => Ok(()),
            Err(e) => Err(not_current(token, e)),
        }
    }
}

/// A store error as seen through a token: a lost lease, a closed or missing run mean the
/// attempt is over; anything else is the store's.
fn not_current(token: &TaskToken, e: StoreError) -> AsyncCompletionError {
    match e {
        StoreError::LeaseLost { .. } | StoreError::RunClosed { .. } | StoreError::NotFound { .. } => {
            AsyncCompletionError::NotCurrent {
                workflow_id: token.workflow_id.clone(),
                activity_type: token.activity_type.clone(),
                seq: token.seq,
                attempt: token.attempt,
            }
        }
        e => AsyncCompletionError::Store(e),
    }
}
