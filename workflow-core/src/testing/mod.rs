//! Test support: a virtual clock, and a store wrapper that counts the engine's store calls.

mod counting;

pub use counting::{CountingStore, StoreCalls};

use std::time::Duration;

use futures::future::BoxFuture;

use crate::time::{Clock, Timestamp};

/// A clock driven by tokio's time, starting at a fixed instant. Under
/// `#[tokio::test(start_paused = true)]` tokio advances time by itself whenever every task
/// waits, so minutes of backoff and timeouts pass in microseconds, deterministically.
///
/// ```
/// use workflow_core::{testing::VirtualClock, Clock, Timestamp};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let clock = VirtualClock::new(Timestamp(1_000));
/// clock.sleep(std::time::Duration::from_secs(60)).await;
/// assert!(clock.now() >= Timestamp(61_000));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct VirtualClock {
    base: Timestamp,
    start: tokio::time::Instant,
}

impl VirtualClock {
    /// A clock reading `base` now. Must be created inside a tokio runtime.
    pub fn new(base: Timestamp) -> Self {
        VirtualClock { base, start: tokio::time::Instant::now() }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        self.base.add(tokio::time::Instant::now().duration_since(self.start))
    }

    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}
