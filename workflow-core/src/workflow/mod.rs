//! Workflows: deterministic code that only orchestrates.

mod context;
mod update;

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use context::{
    ActivityFuture, CancelledFuture, ChildFuture, ChildWorkflowOptions, CommandHandle, Elapsed, ExternalError,
    ExternalFuture, Query, Signal, SignalFuture, TimerFuture, WorkflowContext,
};
pub use update::{Update, UpdateFuture, UpdateReceiver, UpdateRequest};

use crate::error::{Failure, PayloadError};
use crate::history::ActivityFailure;

/// A workflow: deterministic orchestration code with a stable name and typed input and output.
///
/// Workflow code runs on a single-threaded deterministic executor, outside the tokio runtime.
/// It must only orchestrate through its [`WorkflowContext`]: activities, timers, time, random
/// numbers and side effects. Everything it asks for is recorded, so after a crash it is
/// replayed from its history and continues where it was.
///
/// ```
/// use workflow_core::{Activity, ActivityContext, ActivityError, Workflow, WorkflowContext, WorkflowError};
///
/// struct AddOne;
/// impl Activity for AddOne {
///     const NAME: &'static str = "add_one";
///     type Input = u64;
///     type Output = u64;
///     async fn run(&self, _ctx: ActivityContext, n: u64) -> Result<u64, ActivityError> {
///         Ok(n + 1)
///     }
/// }
///
/// struct AddTwo;
/// impl Workflow for AddTwo {
///     const NAME: &'static str = "add_two";
///     type Input = u64;
///     type Output = u64;
///     async fn run(ctx: WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
///         let n = ctx.activity::<AddOne>(n).await?;
///         Ok(ctx.activity::<AddOne>(n).await?)
///     }
/// }
/// ```
pub trait Workflow: 'static {
    /// The stable name recorded in histories.
    const NAME: &'static str;
    /// The input type.
    type Input: Serialize + DeserializeOwned + 'static;
    /// The output type.
    type Output: Serialize + DeserializeOwned + 'static;

    /// The workflow's code.
    fn run(
        ctx: WorkflowContext,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, WorkflowError>> + 'static;
}

/// How workflow code ends without a result.
#[derive(Clone, Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WorkflowError {
    /// The workflow failed; the run ends failed with this failure.
    #[error("{0}")]
    Failed(Failure),
    /// The workflow observed its cancellation; the run ends cancelled.
    #[error("workflow cancelled")]
    Cancelled,
    /// The run ends and a new run of the same workflow id starts with `input` (made by
    /// [`WorkflowContext::continue_as_new`]).
    #[error("continue as new")]
    ContinueAsNew {
        /// The new run's input.
        input: crate::payload::Payload,
    },
}

impl WorkflowError {
    /// A failure with a type and a message.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        WorkflowError::Failed(Failure::new(error_type, message))
    }

    /// A failure with only a message (type `"WorkflowError"`).
    pub fn msg(message: impl Into<String>) -> Self {
        WorkflowError::new("WorkflowError", message)
    }

    /// As a recorded failure.
    pub fn to_failure(&self) -> Failure {
        match self {
            WorkflowError::Failed(f) => f.clone(),
            WorkflowError::Cancelled => Failure::new("Cancelled", "workflow cancelled"),
            WorkflowError::ContinueAsNew { .. } => Failure::new("ContinueAsNew", "continued as new"),
        }
    }
}

impl From<ActivityFailure> for WorkflowError {
    fn from(f: ActivityFailure) -> Self {
        match f {
            ActivityFailure::Cancelled { .. } => WorkflowError::Cancelled,
            other => WorkflowError::Failed(other.to_failure()),
        }
    }
}

impl From<crate::history::ChildFailure> for WorkflowError {
    fn from(f: crate::history::ChildFailure) -> Self {
        match f.kind {
            // Propagating a child's cancellation cancels this run too.
            crate::history::ChildEnd::Cancelled => WorkflowError::Cancelled,
            _ => WorkflowError::Failed(f.to_failure()),
        }
    }
}

impl From<PayloadError> for WorkflowError {
    fn from(e: PayloadError) -> Self {
        WorkflowError::new("PayloadError", e.to_string())
    }
}

impl From<crate::workflow::context::Cancelled> for WorkflowError {
    fn from(_: crate::workflow::context::Cancelled) -> Self {
        WorkflowError::Cancelled
    }
}

pub use context::Cancelled;
