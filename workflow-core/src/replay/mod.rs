//! The deterministic core: drives workflow code against its history.
//!
//! No I/O, no clock, no randomness, no tokio: a [`RunMachine`] takes history events and
//! returns the events its workflow code's new commands become. The worker wraps it.

mod machine;
mod state;

pub use machine::{Activation, RunMachine, WorkflowFn};
pub(crate) use state::{Command, QueryHandler, Resolution, RunState};
