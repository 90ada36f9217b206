//! Policies: data plus pure functions.

pub mod retry;

pub use retry::{next_retry, NextRetry, RetryPolicy};
