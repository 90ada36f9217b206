//! The deterministic core: drives workflow code against its history.
//!
//! No I/O, no clock, no randomness, no tokio: a [`RunMachine`] takes history events and
//! returns the events its workflow code's new commands become. The worker wraps it, and
//! [`Replayer`] uses it as a replay gate: stored histories against the code registered now.

mod gate;
mod machine;
mod state;

pub use gate::{Divergence, ReplayOutcome, ReplayReport, Replayer, RunReplay};
pub use machine::{Activation, LocalActivityRequest, RunMachine, WorkflowFn};
pub(crate) use state::{AcceptedUpdate, Command, QueryHandler, Resolution, RunState, UpdateRejection, UpdateValidator};
