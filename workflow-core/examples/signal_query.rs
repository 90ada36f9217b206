//! Signals (messages into a running workflow) and queries (read-only questions about its
//! state).
//!
//! Run with `cargo run -p workflow-core --example signal_query`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use workflow_core::store::MemoryStore;
use workflow_core::{Query, Signal, StartOptions, Worker, WorkerOptions, Workflow, WorkflowContext, WorkflowError};

/// Adds an item to the cart.
struct AddItem;
impl Signal for AddItem {
    const NAME: &'static str = "add_item";
    type Payload = String;
}

/// Closes the cart.
struct Checkout;
impl Signal for Checkout {
    const NAME: &'static str = "checkout";
    type Payload = ();
}

/// What is in the cart now.
struct Items;
impl Query for Items {
    const NAME: &'static str = "items";
    type Args = ();
    type Output = Vec<String>;
}

/// A shopping cart: collects items until checkout, answers `items` at any time.
struct Cart;

impl Workflow for Cart {
    const NAME: &'static str = "cart";
    type Input = ();
    type Output = Vec<String>;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
        let items = Rc::new(RefCell::new(Vec::new()));
        // Register handlers before the first await, so every replay has them.
        let seen = items.clone();
        ctx.register_query::<Items>(move |()| seen.borrow().clone());
        let mut checkout = ctx.signal::<Checkout>();
        loop {
            let add = ctx.signal::<AddItem>();
            futures::pin_mut!(add);
            match futures::future::select(add, &mut checkout).await {
                futures::future::Either::Left((item, _)) => items.borrow_mut().push(item?),
                futures::future::Either::Right((done, _)) => {
                    done?;
                    return Ok(items.take());
                }
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut worker = Worker::new(Arc::new(MemoryStore::new()), WorkerOptions::default());
    worker.register_workflow::<Cart>()?;
    let worker = worker.start()?;
    let client = worker.client();

    let run = client.start::<Cart>("cart-42", (), StartOptions::default()).await?;
    for item in ["apples", "bread", "coffee"] {
        client.signal::<AddItem>("cart-42", item.to_string()).await?;
    }
    // A query is answered from the workflow's state once the signals were handled.
    let mut items = Vec::new();
    for _ in 0..100 {
        items = worker.query::<Items>("cart-42", ()).await?;
        if items.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    println!("query items: {items:?}");
    client.signal::<Checkout>("cart-42", ()).await?;
    let bought = run.result().await?;
    println!("checked out: {bought:?}");
    assert_eq!(bought, ["apples", "bread", "coffee"]);
    worker.shutdown().await;
    Ok(())
}
