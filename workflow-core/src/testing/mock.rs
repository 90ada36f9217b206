//! Activity mocks: an activity type replaced by a closure or a scripted sequence of outcomes,
//! with every call recorded.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde::Serialize;

use super::TestClock;
use crate::activity::{Activity, ActivityContext, ActivityError};
use crate::ids::{RunId, Seq};
use crate::payload::Payload;
use crate::worker::registry::ErasedActivity;

/// What a mocked attempt does.
///
/// ```
/// use workflow_core::{testing::MockOutcome, ActivityError};
/// let script = [
///     MockOutcome::error(ActivityError::retryable("Unavailable", "503")),
///     MockOutcome::time_out(),
///     MockOutcome::ok(&42).after_heartbeats([&1, &2]),
/// ];
/// # let _ = script;
/// ```
#[derive(Clone, Debug)]
pub struct MockOutcome {
    heartbeats: Vec<Payload>,
    end: End,
}

#[derive(Clone, Debug)]
enum End {
    Return(Result<Payload, ActivityError>),
    TimeOut,
    UntilCancelled,
}

impl MockOutcome {
    /// The attempt returns `value`. A value that does not serialize makes the attempt fail
    /// with a non-retryable `MockInvalid` error saying so.
    pub fn ok<T: Serialize>(value: &T) -> Self {
        let r = Payload::encode(value).map_err(|e| {
            ActivityError::non_retryable("MockInvalid", format!("the mock's value does not serialize: {e}"))
        });
        MockOutcome { heartbeats: Vec::new(), end: End::Return(r) }
    }

    /// The attempt fails with `error` (retried or not by the activity's retry policy, as
    /// `error.retryable` says).
    pub fn error(error: ActivityError) -> Self {
        MockOutcome { heartbeats: Vec::new(), end: End::Return(Err(error)) }
    }

    /// The attempt never answers: the engine times it out (its start-to-close, heartbeat or
    /// schedule-to-close timeout), with time skipped to that deadline.
    pub fn time_out() -> Self {
        MockOutcome { heartbeats: Vec::new(), end: End::TimeOut }
    }

    /// The attempt runs until it is told to stop (its activity was cancelled, or the worker
    /// shuts down), then fails with a retryable `Cancelled` error, as a well-behaved
    /// long-running activity does. Time may skip while it waits.
    pub fn until_cancelled() -> Self {
        MockOutcome { heartbeats: Vec::new(), end: End::UntilCancelled }
    }

    /// Heartbeats each of `details` (in order) before the outcome.
    pub fn after_heartbeats<T: Serialize>(mut self, details: impl IntoIterator<Item = T>) -> Self {
        self.heartbeats = details.into_iter().filter_map(|d| Payload::encode(&d).ok()).collect();
        self
    }
}

/// One call a mocked activity received.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct MockCall {
    /// The activity type.
    pub activity_type: String,
    /// The input, as recorded.
    pub input: Payload,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The workflow that called it.
    pub workflow_id: String,
    /// The run that called it.
    pub run_id: RunId,
    /// The activity's position in that run.
    pub seq: Seq,
    /// The heartbeat details the previous attempt left (what this attempt resumes from).
    pub previous_heartbeat: Option<Payload>,
}

impl MockCall {
    /// The input decoded as `T`, `None` when it does not decode.
    pub fn input_as<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        self.input.decode("mocked activity input").ok()
    }
}

type Respond = dyn Fn(&ActivityContext, Payload) -> MockOutcome + Send + Sync;

enum Behaviour {
    Script(Mutex<VecDeque<MockOutcome>>, usize),
    Respond(Box<Respond>),
}

/// A mocked activity type: its behaviour and the calls it received.
pub(crate) struct Mock {
    pub(crate) activity_type: String,
    behaviour: Behaviour,
    pub(crate) calls: Mutex<Vec<MockCall>>,
    pub(crate) clock: Mutex<Option<TestClock>>,
}

impl Mock {
    /// A mock of `A` answering with `f`.
    pub(crate) fn respond<A: Activity>(
        f: impl Fn(&ActivityContext, A::Input) -> Result<A::Output, ActivityError> + Send + Sync + 'static,
    ) -> Mock {
        let name = A::NAME;
        let respond = move |ctx: &ActivityContext, input: Payload| match input
            .decode::<A::Input>(&format!("input of activity {name}"))
        {
            Err(e) => MockOutcome::error(ActivityError::non_retryable("InvalidInput", e.to_string())),
            Ok(input) => match f(ctx, input) {
                Ok(out) => MockOutcome::ok(&out),
                Err(e) => MockOutcome::error(e),
            },
        };
        Mock::new(A::NAME, Behaviour::Respond(Box::new(respond)))
    }

    /// A mock of `activity_type` answering with `outcomes`, one per attempt, in order.
    pub(crate) fn script(activity_type: &str, outcomes: impl IntoIterator<Item = MockOutcome>) -> Mock {
        let outcomes: VecDeque<MockOutcome> = outcomes.into_iter().collect();
        let n = outcomes.len();
        Mock::new(activity_type, Behaviour::Script(Mutex::new(outcomes), n))
    }

    fn new(activity_type: &str, behaviour: Behaviour) -> Mock {
        Mock { activity_type: activity_type.into(), behaviour, calls: Mutex::default(), clock: Mutex::default() }
    }

    fn next(&self, ctx: &ActivityContext, input: Payload) -> MockOutcome {
        match &self.behaviour {
            Behaviour::Respond(f) => f(ctx, input),
            Behaviour::Script(queue, n) => {
                queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front().unwrap_or_else(|| {
                    MockOutcome::error(ActivityError::non_retryable(
                        "MockExhausted",
                        format!(
                        "the mock of activity {} was scripted for {n} call(s) and got one more; script more outcomes",
                        self.activity_type
                    ),
                    ))
                })
            }
        }
    }
}

/// The registered stand-in for a mocked activity type.
pub(crate) struct MockActivity(pub(crate) Arc<Mock>);

impl ErasedActivity for MockActivity {
    fn run(&self, ctx: ActivityContext, input: Payload) -> BoxFuture<'_, Result<Payload, ActivityError>> {
        let mock = self.0.clone();
        Box::pin(async move {
            let info = ctx.info();
            mock.calls.lock().unwrap_or_else(|e| e.into_inner()).push(MockCall {
                activity_type: mock.activity_type.clone(),
                input: input.clone(),
                attempt: info.attempt,
                workflow_id: info.workflow_id.clone(),
                run_id: info.run_id.clone(),
                seq: info.seq,
                previous_heartbeat: ctx.previous_heartbeat().cloned(),
            });
            let outcome = mock.next(&ctx, input);
            for d in &outcome.heartbeats {
                ctx.heartbeat_payload(d.clone());
            }
            match outcome.end {
                End::Return(r) => r,
                End::TimeOut => {
                    // Waiting for the engine's timeout: let time skip to it.
                    let clock = mock.clock.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let _let_time_pass = clock.as_ref().map(TestClock::release_hold);
                    std::future::pending().await
                }
                End::UntilCancelled => {
                    let clock = mock.clock.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    {
                        let _let_time_pass = clock.as_ref().map(TestClock::release_hold);
                        ctx.cancelled().await;
                    }
                    Err(ActivityError::retryable("Cancelled", "the attempt was told to stop"))
                }
            }
        })
    }
}
