// Updates: a validated request that changes a running workflow and returns a value.
// Compiled and run by `cargo test -p tests --test book_snippets`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use workflow_core::store::MemoryStore;
use workflow_core::{
    Failure, StartOptions, Update, UpdateError, Worker, WorkerOptions, Workflow, WorkflowContext, WorkflowError,
};

// ANCHOR: types
/// Reserve seats on a trip; answers how many seats are left.
struct Reserve;
impl Update for Reserve {
    const NAME: &'static str = "reserve";
    type Args = u32;
    type Output = u32;
}
// ANCHOR_END: types

// ANCHOR: workflow
/// A trip with 10 seats that takes reservations until it is full.
struct Trip;
impl Workflow for Trip {
    const NAME: &'static str = "trip";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        let left = Rc::new(RefCell::new(10u32));
        let seats = left.clone();
        // The validator sees the current state; a refused update is not recorded.
        let reservations = ctx.register_update_with::<Reserve>(move |n| match *n {
            0 => Err("reserve at least one seat".into()),
            n if n > *seats.borrow() => Err(format!("only {} seats left", seats.borrow())),
            _ => Ok(()),
        });
        while *left.borrow() > 0 {
            let request = reservations.next().await?;
            if *request.args() > 4 {
                // Accepted, then failed by the workflow: the caller gets this failure.
                request.fail(Failure::new("GroupTooLarge", "book groups over 4 by phone"));
                continue;
            }
            *left.borrow_mut() -= request.args();
            let now_left = *left.borrow();
            request.complete(&now_left);
        }
        Ok(())
    }
}
// ANCHOR_END: workflow

#[tokio::main]
async fn main() {
    let mut worker = Worker::new(Arc::new(MemoryStore::new()), WorkerOptions::default());
    worker.register_workflow::<Trip>().unwrap();
    let worker = worker.start().unwrap();
    let client = worker.client();
    client.start::<Trip>("trip-1", (), StartOptions::default()).await.unwrap();

    // ANCHOR: call
    assert_eq!(client.update::<Reserve>("trip-1", 3).await.unwrap(), 7);
    let err = client.update::<Reserve>("trip-1", 8).await.unwrap_err();
    assert!(matches!(err, UpdateError::Rejected { .. }));
    assert_eq!(err.to_string(), "update \"reserve\" rejected: only 7 seats left");
    let err = client.update::<Reserve>("trip-1", 5).await.unwrap_err();
    assert_eq!(err.to_string(), "update \"reserve\" failed: GroupTooLarge: book groups over 4 by phone");
    // The same update id twice: recorded once, the same answer both times.
    assert_eq!(client.update_with_id::<Reserve>("trip-1", "order-991", 2).await.unwrap(), 5);
    assert_eq!(client.update_with_id::<Reserve>("trip-1", "order-991", 2).await.unwrap(), 5);
    // ANCHOR_END: call
    worker.shutdown().await;
}
