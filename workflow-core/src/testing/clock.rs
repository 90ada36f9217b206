//! A virtual clock that tests move by hand or that skips ahead by itself whenever nothing is
//! running: [`TestClock`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{watch, Notify};

use crate::store::{Store, TaskQueue};
use crate::time::{Clock, Timestamp};

/// A clock whose time moves only when told to: by [`TestClock::advance`], or, once
/// [`TestClock::skip_automatically`] runs, to the next deadline whenever nothing is running.
/// It needs no paused tokio runtime and works on any runtime: its timers are its own.
///
/// "Nothing is running" means: no [`TestClock::hold`] is held, and a few rounds of letting
/// every other task run changed nothing. A [`TestEnv`](crate::testing::TestEnv)'s worker
/// holds the clock while it handles a task (so time stands still while a real activity does
/// its I/O), and the test itself holds it except while it waits for a run to close (a
/// client's wait gives a hold back through [`Clock::waiting`]): time never jumps between
/// two lines of a test. Time then moves to the earliest deadline of a [`Clock::sleep`],
/// never to the end of a [`Clock::poll_sleep`] (a poll interval is not a reason for time to
/// pass).
///
/// ```
/// use std::time::Duration;
/// use workflow_core::{testing::TestClock, Clock, Timestamp};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let clock = TestClock::new(Timestamp(1_000));
/// let nap = clock.sleep(Duration::from_secs(3600));
/// clock.advance(Duration::from_secs(3600)).await; // an hour, at once
/// nap.await;
/// assert_eq!(clock.now(), Timestamp(3_601_000));
/// # }
/// ```
#[derive(Clone)]
pub struct TestClock {
    shared: Arc<Shared>,
}

struct Shared {
    now_tx: watch::Sender<Timestamp>,
    state: Mutex<State>,
    /// Woken when a deadline is added or a hold is let go.
    kick: Notify,
    /// Changes whenever something happens that the skipper should wait out.
    epoch: AtomicU64,
    /// Holds taken minus holds given back; time skips only at zero or below.
    holds: AtomicI64,
}

#[derive(Default)]
struct State {
    /// Deadlines of pending [`Clock::sleep`]s, by (deadline, id).
    deadlines: BTreeMap<(Timestamp, u64), ()>,
    next_id: u64,
}

impl std::fmt::Debug for TestClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestClock")
            .field("now", &self.now())
            .field("holds", &self.shared.holds.load(Ordering::SeqCst))
            .finish()
    }
}

impl TestClock {
    /// A clock reading `start`.
    pub fn new(start: Timestamp) -> Self {
        TestClock {
            shared: Arc::new(Shared {
                now_tx: watch::channel(start).0,
                state: Mutex::new(State::default()),
                kick: Notify::new(),
                epoch: AtomicU64::new(0),
                holds: AtomicI64::new(0),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn touch(&self) {
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        self.shared.kick.notify_one();
    }

    /// Keeps time from skipping while the returned guard lives (time moved by
    /// [`advance`](Self::advance) still moves).
    pub fn hold(&self) -> Hold {
        self.shared.holds.fetch_add(1, Ordering::SeqCst);
        self.touch();
        Hold { clock: self.clone(), release: true }
    }

    /// Gives back one hold while the returned guard lives: code that runs under a hold but
    /// waits for time to pass (a mocked activity waiting for its timeout) lets time skip.
    pub fn release_hold(&self) -> Hold {
        self.shared.holds.fetch_sub(1, Ordering::SeqCst);
        self.touch();
        Hold { clock: self.clone(), release: false }
    }

    /// The earliest deadline of a pending sleep that is still in the future (a sleep
    /// already due is only waiting to be polled).
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let after = Timestamp(self.now().0.saturating_add(1));
        self.state().deadlines.range((after, 0)..).next().map(|((t, _), _)| *t)
    }

    /// Moves time forward by `d`, stopping at each deadline on the way so that what a timer
    /// wakes (and the timers it sets) runs before time moves on.
    pub async fn advance(&self, d: Duration) {
        // Skipping would race past the target.
        let _hold = self.hold();
        let target = self.now().add(d);
        loop {
            let next = self.next_deadline().filter(|t| *t <= target);
            let to = next.unwrap_or(target);
            self.set(to);
            self.settle(false).await;
            if next.is_none() {
                return;
            }
        }
    }

    fn set(&self, to: Timestamp) {
        self.shared.now_tx.send_if_modified(|now| {
            let later = to > *now;
            if later {
                *now = to;
            }
            later
        });
        self.touch();
    }

    /// Lets every other task run until nothing changes any more (and, when `unheld`, until
    /// no hold is held).
    ///
    /// On a multi-thread runtime, other threads may be busy while this one yields: each round
    /// also lets 200 µs of real time pass, and three quiet rounds in a row are needed. That is
    /// a heuristic; a current-thread runtime (`#[tokio::test]`'s default) makes it exact.
    async fn settle(&self, unheld: bool) {
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let rounds_needed = if multi { 3 } else { 1 };
        let mut quiet_rounds = 0;
        loop {
            let before = self.shared.epoch.load(Ordering::SeqCst);
            for _ in 0..32 {
                tokio::task::yield_now().await;
            }
            if multi {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            let quiet = self.shared.epoch.load(Ordering::SeqCst) == before;
            quiet_rounds = if quiet { quiet_rounds + 1 } else { 0 };
            let quiet = quiet_rounds >= rounds_needed;
            if quiet && (!unheld || self.shared.holds.load(Ordering::SeqCst) <= 0) {
                return;
            }
            if unheld && self.shared.holds.load(Ordering::SeqCst) > 0 {
                // Wait for a hold to go (or anything else to happen) instead of spinning.
                let kicked = self.shared.kick.notified();
                tokio::pin!(kicked);
                kicked.as_mut().enable();
                if self.shared.holds.load(Ordering::SeqCst) > 0 {
                    kicked.await;
                }
            }
        }
    }

    /// Skips time forever: whenever nothing runs, time jumps to the earliest deadline.
    /// Spawn it and abort it to stop skipping.
    pub async fn skip_automatically(self) {
        self.skip(None).await
    }

    /// As [`skip_automatically`](Self::skip_automatically), and never while `store` holds a
    /// task that is due now (work a worker is about to take, even on another thread of a
    /// multi-thread runtime). A [`TestEnv`](crate::testing::TestEnv) skips this way.
    pub async fn skip_automatically_on(self, store: Arc<dyn Store>) {
        self.skip(Some(store)).await
    }

    async fn skip(self, store: Option<Arc<dyn Store>>) {
        // Due work nobody takes (every slot is held by attempts waiting for their timeouts)
        // must not stop time for good: after this many quiet looks, time moves anyway.
        const DUE_LOOKS: u32 = 200;
        let mut due_looks = 0;
        loop {
            self.settle(true).await;
            if let Some(store) = &store {
                if due_looks < DUE_LOOKS && work_due(&**store, self.now()).await {
                    due_looks += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
            }
            due_looks = 0;
            let kicked = self.shared.kick.notified();
            tokio::pin!(kicked);
            kicked.as_mut().enable();
            match self.next_deadline() {
                Some(t) if self.shared.holds.load(Ordering::SeqCst) <= 0 => self.set(t),
                _ => kicked.await,
            }
        }
    }

    fn wait_until(&self, deadline: Timestamp, registered: Option<Deadline>) -> BoxFuture<'static, ()> {
        let mut rx = self.shared.now_tx.subscribe();
        Box::pin(async move {
            let _registered = registered;
            loop {
                if *rx.borrow_and_update() >= deadline {
                    return;
                }
                if rx.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        })
    }

    fn deadline_after(&self, d: Duration) -> Timestamp {
        // Whole milliseconds, rounded up: a sleep never ends early.
        let ms = d.as_nanos().div_ceil(1_000_000).min(u128::from(u64::MAX)) as u64;
        Timestamp(self.now().0.saturating_add(ms))
    }
}

/// Whether `store` has a task of either queue due at `now`.
async fn work_due(store: &dyn Store, now: Timestamp) -> bool {
    for queue in [TaskQueue::Workflow, TaskQueue::Activity] {
        if matches!(store.next_due(queue).await, Ok(Some(t)) if t <= now) {
            return true;
        }
    }
    false
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.shared.now_tx.borrow()
    }

    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        let deadline = self.deadline_after(d);
        let id = {
            let mut s = self.state();
            s.next_id += 1;
            let id = s.next_id;
            s.deadlines.insert((deadline, id), ());
            id
        };
        self.touch();
        self.wait_until(deadline, Some(Deadline { clock: self.clone(), key: (deadline, id) }))
    }

    fn poll_sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        self.wait_until(self.deadline_after(d), None)
    }

    fn waiting(&self) -> Option<Box<dyn Send>> {
        Some(Box::new(self.release_hold()))
    }
}

/// A pending sleep's deadline, forgotten when the sleep ends or is dropped.
struct Deadline {
    clock: TestClock,
    key: (Timestamp, u64),
}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.clock.state().deadlines.remove(&self.key);
        self.clock.touch();
    }
}

/// Keeps a [`TestClock`] from skipping (from [`TestClock::hold`]), or lets it skip (from
/// [`TestClock::release_hold`]), until dropped.
pub struct Hold {
    clock: TestClock,
    release: bool,
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.release {
            self.clock.shared.holds.fetch_sub(1, Ordering::SeqCst);
        } else {
            self.clock.shared.holds.fetch_add(1, Ordering::SeqCst);
        }
        self.clock.touch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn advance_wakes_timers_in_order_and_stops_at_the_target() {
        let clock = TestClock::new(Timestamp(0));
        let order = Arc::new(Mutex::new(Vec::new()));
        for secs in [30u64, 10, 20] {
            let (c, o) = (clock.clone(), order.clone());
            tokio::spawn(async move {
                c.sleep(Duration::from_secs(secs)).await;
                o.lock().unwrap().push((secs, c.now()));
            });
        }
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(25)).await;
        assert_eq!(*order.lock().unwrap(), vec![(10, Timestamp(10_000)), (20, Timestamp(20_000))]);
        assert_eq!(clock.now(), Timestamp(25_000));
        assert_eq!(clock.next_deadline(), Some(Timestamp(30_000)));
    }

    #[tokio::test]
    async fn skipping_jumps_to_deadlines_but_not_to_poll_sleeps_and_not_while_held() {
        let clock = TestClock::new(Timestamp(0));
        let skipper = tokio::spawn(clock.clone().skip_automatically());
        // A poll sleep alone is no reason for time to move.
        let idle = clock.poll_sleep(Duration::from_secs(1));
        tokio::pin!(idle);
        for _ in 0..200 {
            tokio::task::yield_now().await;
        }
        assert!(futures::poll!(idle.as_mut()).is_pending());
        assert_eq!(clock.now(), Timestamp(0));

        // Held: a deadline does not move time.
        let hold = clock.hold();
        let nap = tokio::spawn({
            let c = clock.clone();
            async move { c.sleep(Duration::from_secs(30 * 86_400)).await }
        });
        for _ in 0..200 {
            tokio::task::yield_now().await;
        }
        assert_eq!(clock.now(), Timestamp(0));
        // Let go: thirty days pass at once.
        drop(hold);
        nap.await.unwrap();
        assert_eq!(clock.now(), Timestamp(30 * 86_400_000));
        assert!(clock.next_deadline().is_none(), "a finished sleep leaves no deadline");
        skipper.abort();
    }

    #[tokio::test]
    async fn a_dropped_sleep_leaves_no_deadline() {
        let clock = TestClock::new(Timestamp(0));
        drop(clock.sleep(Duration::from_secs(5)));
        assert_eq!(clock.next_deadline(), None);
    }
}
