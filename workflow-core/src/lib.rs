//! # workflow-core: durable workflows for Rust, embedded
//!
//! Write **workflows** (deterministic orchestration) and **activities** (the I/O); a
//! [`Worker`] runs them against a [`Store`](store::Store) so that the work survives crashes:
//! every step is recorded once in the run's history, activities are retried with backoff,
//! time out, report heartbeats, and after a crash the workflow is replayed from its history
//! and continues where it was.
//!
//! ```
//! use std::sync::Arc;
//! use workflow_core::{
//!     store::MemoryStore, Activity, ActivityContext, ActivityError, StartOptions, Worker,
//!     WorkerOptions, Workflow, WorkflowContext, WorkflowError,
//! };
//!
//! struct AddOne;
//! impl Activity for AddOne {
//!     const NAME: &'static str = "add_one";
//!     type Input = u64;
//!     type Output = u64;
//!     async fn run(&self, _ctx: ActivityContext, n: u64) -> Result<u64, ActivityError> {
//!         Ok(n + 1)
//!     }
//! }
//!
//! struct AddThree;
//! impl Workflow for AddThree {
//!     const NAME: &'static str = "add_three";
//!     type Input = u64;
//!     type Output = u64;
//!     async fn run(ctx: WorkflowContext, mut n: u64) -> Result<u64, WorkflowError> {
//!         for _ in 0..3 {
//!             n = ctx.activity::<AddOne>(n).await?;
//!         }
//!         Ok(n)
//!     }
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut worker = Worker::new(Arc::new(MemoryStore::new()), WorkerOptions::default());
//! worker.register_workflow::<AddThree>()?;
//! worker.register_activity(AddOne)?;
//! let worker = worker.start()?;
//! let handle = worker.client().start::<AddThree>("add-1", 39, StartOptions::default()).await?;
//! assert_eq!(handle.result().await?, 42);
//! worker.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! See the guide (`book/`) for concepts, the batch example, storage and operations.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod activity;
mod client;
mod close_watch;
mod error;
pub mod history;
mod ids;
mod options;
mod payload;
pub mod policy;
pub mod replay;
pub mod store;
pub mod testing;
mod time;
mod worker;
mod workflow;

pub use activity::{Activity, ActivityContext, ActivityError, ActivityInfo, TaskToken};
pub use client::{Client, Description, IdConflictPolicy, IdReusePolicy, StartOptions, UpdateHandle, WorkflowHandle};
pub use error::{
    bound_message, AsyncCompletionError, ControlError, Error, Failure, IdError, NondeterminismError, OptionsError,
    PayloadError, QueryError, ResetError, ResultError, StartError, StoreError, UpdateError, WorkerError,
    WorkflowTaskError, MAX_FAILURE_DETAILS_BYTES, MAX_FAILURE_MESSAGE_BYTES,
};
pub use history::{ActivityFailure, ChildEnd, ChildFailure, Event, EventKind, ResetPoint, TimeoutKind};
pub use ids::{validate_id, EventId, RunId, Seq};
pub use options::{ActivityCancellationType, ActivityOptions, Limits, LEASE_MARGIN, MAX_LOCAL_ACTIVITY};
pub use payload::Payload;
pub use policy::{NextRetry, ParentClosePolicy, RetryPolicy};
pub use time::{Clock, SystemClock, Timestamp};
pub use worker::{RunningWorker, Worker, WorkerOptions, CANCEL_CLEANUP};
pub use workflow::{
    ActivityFuture, Cancelled, CancelledFuture, ChildFuture, ChildWorkflowOptions, CommandHandle, Elapsed,
    ExternalError, ExternalFuture, Query, Signal, SignalFuture, TimerFuture, Update, UpdateFuture, UpdateReceiver,
    UpdateRequest, Workflow, WorkflowContext, WorkflowError,
};

/// The README's examples, compiled and run as doctests so that what crates.io shows works.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
