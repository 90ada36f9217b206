//! What happens to a child run when its parent closes.

use serde::{Deserialize, Serialize};

/// Applied to every open child when its parent completes, fails, is cancelled or terminated.
/// The child's history records why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParentClosePolicy {
    /// Terminate the child (the default).
    #[default]
    Terminate,
    /// Ask the child to cancel; it may clean up and ends cancelled.
    RequestCancel,
    /// Leave the child running on its own.
    Abandon,
}
