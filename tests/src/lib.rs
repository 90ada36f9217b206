//! Cross-crate integration and crash tests for the workflow engine.
//!
//! [`crash`] holds the crash workload that the `crash_workload` harness binary runs and that
//! `tests/crash.rs` checks after killing the harness at many points.

pub mod crash;
