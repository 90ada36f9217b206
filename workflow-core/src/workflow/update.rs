//! Updates: request-response messages to a running workflow, seen from workflow code.

use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Failure;
use crate::history::UpdateOutcome;
use crate::payload::Payload;
use crate::replay::{Command, RunState, UpdateRejection, UpdateValidator};
use crate::workflow::{WorkflowContext, WorkflowError};

/// An update: a named, typed request to a running workflow that may change its state and
/// returns a value or a failure to the caller ([`Client::update`](crate::Client::update)).
///
/// ```
/// use workflow_core::Update;
/// struct AddItem;
/// impl Update for AddItem {
///     const NAME: &'static str = "add_item";
///     type Args = String;
///     type Output = usize;
/// }
/// ```
pub trait Update: 'static {
    /// The stable name recorded in histories.
    const NAME: &'static str;
    /// Its arguments.
    type Args: Serialize + DeserializeOwned + 'static;
    /// Its result.
    type Output: Serialize + DeserializeOwned + 'static;
}

impl WorkflowContext {
    /// Declares that this workflow accepts update `U` and returns the receiver its requests
    /// arrive on. An update of a name no run registered is refused with
    /// [`UpdateError::UnknownUpdate`](crate::error::UpdateError::UnknownUpdate) before
    /// anything is recorded. Register before the first await so that every replay has it.
    pub fn register_update<U: Update>(&self) -> UpdateReceiver<U> {
        self.register_update_with::<U>(|_| Ok(()))
    }

    /// As [`register_update`](Self::register_update), with a validator that sees the
    /// arguments and the workflow's current state (what it captured) and may refuse the
    /// update with a reason: the caller gets
    /// [`UpdateError::Rejected`](crate::error::UpdateError::Rejected) and nothing is
    /// recorded. The validator must only read: it also runs outside workflow tasks.
    pub fn register_update_with<U: Update>(
        &self,
        validator: impl Fn(&U::Args) -> Result<(), String> + 'static,
    ) -> UpdateReceiver<U> {
        let v: UpdateValidator = Rc::new(move |args: &Payload| {
            let args: U::Args = args
                .decode(&format!("arguments of update {}", U::NAME))
                .map_err(|e| UpdateRejection::BadArguments(e.to_string()))?;
            validator(&args).map_err(UpdateRejection::Rejected)
        });
        self.state.borrow_mut().update_validators.insert(U::NAME.to_string(), v);
        UpdateReceiver { state: self.state.clone(), _u: PhantomData }
    }
}

/// Where accepted updates `U` arrive, in the order they were accepted (interleaved with
/// signals as they arrived). Made by [`WorkflowContext::register_update`].
pub struct UpdateReceiver<U> {
    state: Rc<RefCell<RunState>>,
    _u: PhantomData<fn() -> U>,
}

impl<U> Clone for UpdateReceiver<U> {
    fn clone(&self) -> Self {
        UpdateReceiver { state: self.state.clone(), _u: PhantomData }
    }
}

impl<U: Update> UpdateReceiver<U> {
    /// Waits for the next accepted update. Answer it with [`UpdateRequest::complete`] or
    /// [`UpdateRequest::fail`]; the caller waits until then (or until the run closes).
    pub fn next(&self) -> UpdateFuture<U> {
        UpdateFuture { state: self.state.clone(), _u: PhantomData }
    }

    /// Takes the next accepted update if one has arrived, without waiting.
    pub fn try_next(&self) -> Option<Result<UpdateRequest<U>, WorkflowError>> {
        take::<U>(&self.state)
    }
}

fn take<U: Update>(state: &Rc<RefCell<RunState>>) -> Option<Result<UpdateRequest<U>, WorkflowError>> {
    let accepted = {
        let mut s = state.borrow_mut();
        let i = s.updates.iter().position(|u| u.name == U::NAME)?;
        s.updates.remove(i)?
    };
    Some(
        accepted
            .args
            .decode::<U::Args>(&format!("arguments of update {}", U::NAME))
            .map(|args| UpdateRequest { state: state.clone(), update_id: accepted.update_id, args, _u: PhantomData })
            .map_err(WorkflowError::from),
    )
}

/// Waits for the next accepted update of one name.
#[must_use = "an update is only received when awaited"]
pub struct UpdateFuture<U> {
    state: Rc<RefCell<RunState>>,
    _u: PhantomData<fn() -> U>,
}

impl<U> Unpin for UpdateFuture<U> {}

impl<U: Update> Future for UpdateFuture<U> {
    type Output = Result<UpdateRequest<U>, WorkflowError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match take::<U>(&self.state) {
            Some(r) => Poll::Ready(r),
            None => {
                self.state.borrow_mut().update_wakers.push(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// One accepted update, waiting for its answer. Dropping it unanswered leaves the caller
/// waiting until the run closes.
#[must_use = "the caller waits until the update is answered with complete or fail"]
pub struct UpdateRequest<U: Update> {
    state: Rc<RefCell<RunState>>,
    update_id: String,
    args: U::Args,
    _u: PhantomData<fn() -> U>,
}

impl<U: Update> std::fmt::Debug for UpdateRequest<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateRequest").field("name", &U::NAME).field("update_id", &self.update_id).finish()
    }
}

impl<U: Update> UpdateRequest<U> {
    /// The update's id (the caller's, or one the client generated).
    pub fn id(&self) -> &str {
        &self.update_id
    }

    /// The arguments.
    pub fn args(&self) -> &U::Args {
        &self.args
    }

    /// Answers with `result` (recorded; a result over the payload limit is recorded as a
    /// `PayloadTooLarge` failure instead).
    #[track_caller]
    pub fn complete(self, result: &U::Output) {
        let limit = self.state.borrow().limits.max_payload_bytes;
        let outcome = match Payload::encode(result)
            .and_then(|p| p.check_size(&format!("result of update {}", U::NAME), limit).map(|()| p))
        {
            Ok(result) => UpdateOutcome::Completed { result },
            Err(e) => UpdateOutcome::Failed { failure: Failure::new("PayloadTooLarge", e.to_string()) },
        };
        self.answer(outcome);
    }

    /// Answers with a failure: the caller gets
    /// [`UpdateError::Failed`](crate::error::UpdateError::Failed) with it.
    #[track_caller]
    pub fn fail(self, failure: Failure) {
        self.answer(UpdateOutcome::Failed { failure });
    }

    #[track_caller]
    fn answer(self, outcome: UpdateOutcome) {
        let mut s = self.state.borrow_mut();
        let seq = s.take_seq();
        s.issue(Command::CompleteUpdate { seq, update_id: self.update_id, outcome });
    }
}
