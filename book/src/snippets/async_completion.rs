// Asynchronous activity completion: the attempt hands out its task token and is completed
// from elsewhere (here a task standing in for a webhook handler).
// Compiled and run by `cargo test -p tests --test book_snippets`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use workflow_core::store::MemoryStore;
use workflow_core::{
    Activity, ActivityContext, ActivityError, ActivityOptions, Client, StartOptions, TaskToken, Worker, WorkerOptions,
    Workflow, WorkflowContext, WorkflowError,
};

// ANCHOR: activity
/// Sends a document for signature; the signing service calls back later with the token.
struct RequestSignature {
    outbox: mpsc::UnboundedSender<String>,
}
impl Activity for RequestSignature {
    const NAME: &'static str = "request_signature";
    type Input = String;
    type Output = String;
    async fn run(&self, ctx: ActivityContext, document: String) -> Result<String, ActivityError> {
        let token = ctx.task_token().expect("run by a worker");
        // A real activity would POST the document and `token.to_string()` to the service.
        let _ = self.outbox.send(format!("{document}|{token}"));
        Err(ActivityError::result_pending())
    }
}
// ANCHOR_END: activity

struct Contract;
impl Workflow for Contract {
    const NAME: &'static str = "contract";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, document: String) -> Result<String, WorkflowError> {
        // ANCHOR: options
        let options = ActivityOptions::default()
            .start_to_close_timeout(Duration::from_secs(7 * 86_400)) // the signer has a week
            .heartbeat_timeout(Duration::from_secs(86_400)); // and reports at least daily
        let signed_by = ctx.activity_with::<RequestSignature>(document, options).await?;
        // ANCHOR_END: options
        Ok(signed_by)
    }
}

#[tokio::main]
async fn main() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let store = Arc::new(MemoryStore::new());
    let mut worker = Worker::new(store.clone(), WorkerOptions::default());
    worker.register_workflow::<Contract>().unwrap();
    worker.register_activity(RequestSignature { outbox: tx }).unwrap();
    let worker = worker.start().unwrap();
    let handle = worker.client().start::<Contract>("contract-7", "lease.pdf".into(), StartOptions::default()).await.unwrap();

    // ANCHOR: callback
    // The signing service's callback, in any process with a client on the same store.
    let request = rx.recv().await.unwrap();
    let (_document, token) = request.split_once('|').unwrap();
    let token: TaskToken = token.parse().unwrap();
    let client = Client::new(store.clone());
    client.heartbeat_activity(&token, &"opened by the signer").await.unwrap();
    client.complete_activity(&token, &"signed by Ada").await.unwrap();
    // ANCHOR_END: callback
    assert_eq!(handle.result().await.unwrap(), "signed by Ada");
    worker.shutdown().await;
}
