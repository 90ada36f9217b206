//! Updates: validated, recorded request-response messages to a running workflow.

use std::cell::RefCell;
use std::rc::Rc;

use futures::future::{select, Either};
use workflow_core::history::{pending_updates, UpdateOutcome};
use workflow_core::replay::{ReplayOutcome, Replayer};
use workflow_core::testing::{CrashSimulation, TestEnv};
use workflow_core::{
    Activity, ActivityContext, ActivityError, Client, EventKind, Failure, Query, Signal, Update, UpdateError, Workflow,
    WorkflowContext, WorkflowError,
};

/// Puts an item in the cart; answers how many items it holds.
struct AddItem;
impl Update for AddItem {
    const NAME: &'static str = "add_item";
    type Args = String;
    type Output = usize;
}

/// Takes an item out; fails when it is not there.
struct RemoveItem;
impl Update for RemoveItem {
    const NAME: &'static str = "remove_item";
    type Args = String;
    type Output = usize;
}

/// `add_item` with arguments of the wrong type.
struct AddNumber;
impl Update for AddNumber {
    const NAME: &'static str = "add_item";
    type Args = u64;
    type Output = usize;
}

/// An update no cart registers.
struct Discount;
impl Update for Discount {
    const NAME: &'static str = "discount";
    type Args = u32;
    type Output = ();
}

struct Checkout;
impl Signal for Checkout {
    const NAME: &'static str = "checkout";
    type Payload = ();
}

struct Note;
impl Signal for Note {
    const NAME: &'static str = "note";
    type Payload = String;
}

struct Items;
impl Query for Items {
    const NAME: &'static str = "items";
    type Args = ();
    type Output = Vec<String>;
}

/// Reserves an item in the warehouse: its reservation is the item in capitals.
struct Reserve;
impl Activity for Reserve {
    const NAME: &'static str = "reserve";
    type Input = String;
    type Output = String;
    async fn run(&self, _ctx: ActivityContext, item: String) -> Result<String, ActivityError> {
        Ok(item.to_uppercase())
    }
}

/// A cart: items arrive by update (each reserved by an activity first), notes by signal, in
/// the order they were sent; `checkout` ends it with everything it holds.
struct Cart;
impl Workflow for Cart {
    const NAME: &'static str = "cart";
    type Input = ();
    type Output = Vec<String>;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
        let items = Rc::new(RefCell::new(Vec::<String>::new()));
        let full = items.clone();
        let adds = ctx.register_update_with::<AddItem>(move |item| {
            if item.is_empty() {
                Err("an item needs a name".into())
            } else if full.borrow().len() >= 3 {
                Err("the cart is full (3 items)".into())
            } else {
                Ok(())
            }
        });
        let removes = ctx.register_update::<RemoveItem>();
        let listed = items.clone();
        ctx.register_query::<Items>(move |()| listed.borrow().clone());
        loop {
            let updates = select(adds.next(), removes.next());
            let signals = select(ctx.signal::<Checkout>(), ctx.signal::<Note>());
            match select(updates, signals).await {
                Either::Left((Either::Left((add, _)), _)) => {
                    let add = add?;
                    let reserved = ctx.activity::<Reserve>(add.args().clone()).await?;
                    items.borrow_mut().push(reserved);
                    let n = items.borrow().len();
                    add.complete(&n);
                }
                Either::Left((Either::Right((remove, _)), _)) => {
                    let remove = remove?;
                    let wanted = remove.args().to_uppercase();
                    let at = items.borrow().iter().position(|i| *i == wanted);
                    match at {
                        Some(i) => {
                            items.borrow_mut().remove(i);
                            let n = items.borrow().len();
                            remove.complete(&n);
                        }
                        None => remove.fail(Failure::new("NotInCart", format!("{wanted} is not in the cart"))),
                    }
                }
                Either::Right((Either::Left((checkout, _)), _)) => {
                    checkout?;
                    return Ok(items.borrow().clone());
                }
                Either::Right((Either::Right((note, _)), _)) => items.borrow_mut().push(format!("note: {}", note?)),
            }
        }
    }
}

fn env() -> TestEnv {
    TestEnv::builder().workflow::<Cart>().activity(Reserve).start().unwrap()
}

fn accepted(history: &[workflow_core::Event]) -> Vec<String> {
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::UpdateAccepted { update_id, .. } => Some(update_id.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn updates_change_state_and_return_values_in_order_with_signals() {
    let env = env();
    let cart = env.start::<Cart>("cart-1", ()).await.unwrap();
    assert_eq!(env.update::<AddItem>("cart-1", "apple".into()).await.unwrap(), 1);
    env.signal::<Note>("cart-1", "gift wrap".into()).await.unwrap();
    assert_eq!(env.update::<AddItem>("cart-1", "pear".into()).await.unwrap(), 3);
    assert_eq!(env.query::<Items>("cart-1", ()).await.unwrap(), ["APPLE", "note: gift wrap", "PEAR"]);
    assert_eq!(env.update::<RemoveItem>("cart-1", "apple".into()).await.unwrap(), 2);
    env.signal::<Checkout>("cart-1", ()).await.unwrap();
    assert_eq!(cart.result().await.unwrap(), ["note: gift wrap", "PEAR"]);

    let history = env.history("cart-1").await.unwrap();
    let answers: Vec<usize> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::UpdateCompleted { outcome: UpdateOutcome::Completed { result }, .. } => {
                Some(result.decode::<usize>("n").unwrap())
            }
            _ => None,
        })
        .collect();
    assert_eq!(answers, [1, 3, 2], "each answer recorded once, in order");
    assert!(pending_updates(&history).is_empty());
}

#[tokio::test]
async fn refused_updates_are_typed_errors_and_record_nothing() {
    let env = env();
    env.start::<Cart>("cart-2", ()).await.unwrap();
    let before = env.history("cart-2").await.unwrap().len();

    let err = env.update::<AddItem>("cart-2", String::new()).await.unwrap_err();
    assert!(matches!(err, UpdateError::Rejected { .. }), "{err:?}");
    assert_eq!(err.to_string(), "update \"add_item\" rejected: an item needs a name");

    let err = env.update::<Discount>("cart-2", 10).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the workflow has no update \"discount\" (registered: add_item, remove_item); register it with ctx.register_update"
    );

    let err = env.update::<AddNumber>("cart-2", 7).await.unwrap_err();
    assert!(matches!(err, UpdateError::BadArguments { .. }), "{err:?}");
    assert!(err.to_string().starts_with("bad arguments for update \"add_item\""), "{err}");

    assert_eq!(env.history("cart-2").await.unwrap().len(), before, "nothing recorded for refused updates");

    // Accepted, then failed by the workflow: the caller gets the workflow's failure.
    let err = env.update::<RemoveItem>("cart-2", "kiwi".into()).await.unwrap_err();
    match &err {
        UpdateError::Failed { name, failure } => {
            assert_eq!(name, "remove_item");
            assert_eq!(failure.error_type, "NotInCart");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(err.to_string(), "update \"remove_item\" failed: NotInCart: KIWI is not in the cart");

    // The validator sees the current state.
    for (i, item) in ["a", "b", "c"].into_iter().enumerate() {
        assert_eq!(env.update::<AddItem>("cart-2", item.into()).await.unwrap(), i + 1);
    }
    let err = env.update::<AddItem>("cart-2", "d".into()).await.unwrap_err();
    assert_eq!(err.to_string(), "update \"add_item\" rejected: the cart is full (3 items)");

    env.signal::<Checkout>("cart-2", ()).await.unwrap();
    env.client().handle::<Cart>("cart-2").result().await.unwrap();
    let err = env.update::<AddItem>("cart-2", "e".into()).await.unwrap_err();
    assert_eq!(err.to_string(), "workflow \"cart-2\" is closed (completed); updates go to open runs only");
    let err = env.update::<AddItem>("nobody", "e".into()).await.unwrap_err();
    assert_eq!(err.to_string(), "workflow \"nobody\" not found");
    let err = Client::new(env.store().clone()).update::<AddItem>("cart-2", "e".into()).await.unwrap_err();
    assert!(matches!(err, UpdateError::NoWorkflowCode), "{err:?}");
}

#[tokio::test]
async fn an_update_id_makes_a_retried_call_idempotent_even_across_a_worker_crash() {
    let mut env = env();
    let cart = env.start::<Cart>("cart-3", ()).await.unwrap();
    let client = env.client();
    assert_eq!(client.update_with_id::<AddItem>("cart-3", "req-1", "apple".into()).await.unwrap(), 1);
    // The worker dies; its cache is gone. The caller retries the same request.
    env.crash_worker().unwrap();
    let client = env.client();
    assert_eq!(client.update_with_id::<AddItem>("cart-3", "req-1", "apple".into()).await.unwrap(), 1);
    // A new request is validated against the replayed state and answered by the new worker.
    assert_eq!(client.update_with_id::<AddItem>("cart-3", "req-2", "pear".into()).await.unwrap(), 2);
    let err = client.update_with_id::<RemoveItem>("cart-3", "req-2", "pear".into()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "update id \"req-2\" was already used for update \"add_item\" in this run; use a new id"
    );
    env.signal::<Checkout>("cart-3", ()).await.unwrap();
    assert_eq!(cart.result().await.unwrap(), ["APPLE", "PEAR"]);
    let history = env.history("cart-3").await.unwrap();
    assert_eq!(accepted(&history), ["req-1", "req-2"], "each update accepted once");
    assert_eq!(env.calls("reserve").len(), 0, "the activity is real, not mocked");
}

#[tokio::test]
async fn an_accepted_update_is_answered_by_whichever_worker_runs_the_workflow() {
    let mut env = env();
    env.start::<Cart>("cart-4", ()).await.unwrap();
    let handle = env.client().start_update_with_id::<AddItem>("cart-4", "late", "fig".into()).await.unwrap();
    env.crash_worker().unwrap();
    // Waiting needs no workflow code: any client can.
    let waiter = Client::new(env.store().clone()).update_handle::<AddItem>("cart-4", "late").await.unwrap();
    assert_eq!(handle.result().await.unwrap(), 1);
    assert_eq!(waiter.result().await.unwrap(), 1);
}

#[tokio::test]
async fn a_run_that_closes_without_answering_fails_the_waiting_caller() {
    let env = env();
    env.start::<Cart>("cart-5", ()).await.unwrap();
    // Checkout first, then an update: the workflow ends before it reads the update.
    env.signal::<Checkout>("cart-5", ()).await.unwrap();
    match env.client().start_update_with_id::<AddItem>("cart-5", "too-late", "fig".into()).await {
        // Accepted before the run closed: it closes without answering.
        Ok(h) => {
            let err = h.result().await.unwrap_err();
            assert_eq!(err.to_string(), "workflow \"cart-5\" closed (completed) without answering update \"too-late\"");
            let history = env.history("cart-5").await.unwrap();
            assert_eq!(accepted(&history), ["too-late"]);
        }
        Err(UpdateError::AlreadyClosed { .. }) => {}
        Err(other) => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn every_crash_point_of_a_cart_with_updates_holds() {
    let report = CrashSimulation::<Cart>::new(())
        .activity(Reserve)
        .then_update::<AddItem>("apple".into())
        .then_signal::<Note>("fragile".into())
        .then_update::<AddItem>("pear".into())
        .then_signal::<Checkout>(())
        .random_faults(10)
        .run()
        .await
        .unwrap();
    assert!(report.passed(), "{report}");
    assert!(report.crash_points >= 4, "{report}");
    println!("{report}");
}

/// A later version that reserves before it takes the update: its commands come in another
/// order than the recorded ones.
struct CartV2;
impl Workflow for CartV2 {
    const NAME: &'static str = "cart";
    type Input = ();
    type Output = Vec<String>;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
        let adds = ctx.register_update::<AddItem>();
        ctx.register_update::<RemoveItem>();
        let add = adds.next().await?;
        let item = add.args().clone();
        add.complete(&0);
        let reserved = ctx.activity::<Reserve>(item).await;
        Ok(vec![reserved?])
    }
}

#[tokio::test]
async fn answering_before_the_activity_diverges_from_the_recorded_history() {
    let env = env();
    env.start::<Cart>("cart-6", ()).await.unwrap();
    env.update::<AddItem>("cart-6", "plum".into()).await.unwrap();
    let history = env.history("cart-6").await.unwrap();
    let mut v2 = Replayer::new();
    v2.register_workflow::<CartV2>().unwrap();
    match v2.replay_history("cart-6", &history).outcome {
        ReplayOutcome::Diverged(d) => {
            let text = format!("{d:?}");
            assert!(text.contains("UpdateCompleted"), "{text}");
        }
        other => panic!("expected a divergence, got {other:?}"),
    }
}
