//! Policies: data plus pure functions.

pub mod parent_close;
pub mod retry;

pub use parent_close::ParentClosePolicy;
pub use retry::{next_retry, NextRetry, RetryPolicy};
