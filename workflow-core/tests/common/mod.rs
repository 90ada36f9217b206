//! Helpers shared by the engine's integration tests.

use std::sync::Arc;
use std::time::Duration;

use workflow_core::store::{MemoryStore, Store};
use workflow_core::testing::VirtualClock;
use workflow_core::{Clock, Timestamp};

/// The virtual clock's start: 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp(1_767_225_600_000);

/// A fresh memory store and a virtual clock reading [`T0`].
pub(crate) fn setup() -> (Arc<dyn Store>, Arc<dyn Clock>) {
    (Arc::new(MemoryStore::new()), Arc::new(VirtualClock::new(T0)))
}

/// Waits (in virtual time, a second a step) until `f` holds; panics naming `what` after
/// about five and a half virtual hours.
pub(crate) async fn eventually<F, Fut>(clock: &Arc<dyn Clock>, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..20_000 {
        if f().await {
            return;
        }
        clock.sleep(Duration::from_secs(1)).await;
    }
    panic!("timed out waiting for: {what}");
}
