// Child workflows, handling their failures, and parent-close policies.
// Compiled and run by `cargo test -p tests --test book_snippets`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use workflow_core::store::MemoryStore;
use workflow_core::{
    Activity, ActivityContext, ActivityError, ActivityFailure, ActivityOptions, ChildWorkflowOptions,
    ParentClosePolicy, ResultError, RetryPolicy, StartOptions, Worker, WorkerOptions, Workflow, WorkflowContext,
    WorkflowError,
};

/// Sends an invoice; invoices for customer "bad" are refused by the downstream system.
struct SendInvoice;

impl Activity for SendInvoice {
    const NAME: &'static str = "send_invoice";
    type Input = String;
    type Output = String;

    fn options() -> ActivityOptions {
        ActivityOptions::default()
            .retry_policy(RetryPolicy::default().maximum_attempts(2).initial_interval(Duration::from_millis(10)))
    }

    async fn run(&self, _ctx: ActivityContext, customer: String) -> Result<String, ActivityError> {
        if customer == "bad" {
            return Err(ActivityError::retryable("Downstream", format!("billing refused {customer}")));
        }
        Ok(format!("invoice-{customer}"))
    }
}

// ANCHOR: child
/// One customer's part of the job: a run of its own, with its own history.
struct InvoiceCustomer;

impl Workflow for InvoiceCustomer {
    const NAME: &'static str = "invoice_customer";
    type Input = String;
    type Output = String;

    async fn run(ctx: WorkflowContext, customer: String) -> Result<String, WorkflowError> {
        Ok(ctx.activity::<SendInvoice>(customer).await?)
    }
}
// ANCHOR_END: child

// ANCHOR: report
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Report {
    sent: Vec<String>,
    failed: Vec<(String, String)>,
}
// ANCHOR_END: report

// ANCHOR: parent
/// Invoices every customer; a customer whose child fails is recorded, the others go on.
struct MonthlyInvoices;

impl Workflow for MonthlyInvoices {
    const NAME: &'static str = "monthly_invoices";
    type Input = Vec<String>;
    type Output = Report;

    async fn run(ctx: WorkflowContext, customers: Vec<String>) -> Result<Report, WorkflowError> {
        let parent = ctx.workflow_id();
        // Start every child first (they run concurrently), then collect in order.
        let children: Vec<_> = customers
            .iter()
            .map(|c| {
                let options = ChildWorkflowOptions::default()
                    .id(format!("{parent}/{c}")) // readable, stable child ids
                    .parent_close_policy(ParentClosePolicy::Terminate);
                (c.clone(), ctx.child_with::<InvoiceCustomer>(c.clone(), options))
            })
            .collect();
        let mut report = Report::default();
        for (customer, child) in children {
            match child.await {
                Ok(invoice) => report.sent.push(invoice),
                // A ChildFailure says which child, how it ended, and why (a cause chain).
                Err(failure) => {
                    let root = failure.cause.as_ref().and_then(|c| c.chain().last()).map(|f| f.to_string());
                    report.failed.push((customer, root.unwrap_or_else(|| failure.to_string())));
                }
            }
        }
        Ok(report)
    }
}
// ANCHOR_END: parent

// ANCHOR: strict
/// The same job, all or nothing: `?` turns the first child failure into this workflow's
/// failure. The children still open are then closed by their parent-close policy.
struct StrictInvoices;

impl Workflow for StrictInvoices {
    const NAME: &'static str = "strict_invoices";
    type Input = Vec<String>;
    type Output = Vec<String>;

    async fn run(ctx: WorkflowContext, customers: Vec<String>) -> Result<Vec<String>, WorkflowError> {
        let mut sent = Vec::new();
        for c in customers {
            sent.push(ctx.child::<InvoiceCustomer>(c).await?);
        }
        Ok(sent)
    }
}
// ANCHOR_END: strict

// ANCHOR: fallback
/// Handling an activity's failure inside a workflow: match on ActivityFailure.
struct InvoiceOrQueue;

impl Workflow for InvoiceOrQueue {
    const NAME: &'static str = "invoice_or_queue";
    type Input = String;
    type Output = String;

    async fn run(ctx: WorkflowContext, customer: String) -> Result<String, WorkflowError> {
        match ctx.activity::<SendInvoice>(customer.clone()).await {
            Ok(invoice) => Ok(invoice),
            Err(ActivityFailure::Failed { attempts, error, .. }) => {
                Ok(format!("queued {customer} for a manual invoice after {attempts} attempts: {error}"))
            }
            Err(other) => Err(other.into()),
        }
    }
}
// ANCHOR_END: fallback

#[tokio::main]
async fn main() {
    let mut worker = Worker::new(Arc::new(MemoryStore::new()), WorkerOptions::default());
    worker.register_workflow::<InvoiceCustomer>().unwrap();
    worker.register_workflow::<MonthlyInvoices>().unwrap();
    worker.register_workflow::<StrictInvoices>().unwrap();
    worker.register_workflow::<InvoiceOrQueue>().unwrap();
    worker.register_activity(SendInvoice).unwrap();
    let worker = worker.start().unwrap();
    let client = worker.client();
    let customers = vec!["ann".to_string(), "bad".to_string(), "bob".to_string()];

    // ANCHOR: run
    let report = client
        .start::<MonthlyInvoices>("invoices-2025-01", customers.clone(), StartOptions::default())
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    println!("{report:?}");
    // ANCHOR_END: run
    assert_eq!(report.sent, ["invoice-ann", "invoice-bob"]);
    assert_eq!(report.failed, [("bad".to_string(), "Downstream: billing refused bad".to_string())]);
    // The children are runs of their own, with readable ids.
    let child = client.describe("invoices-2025-01/bad").await.unwrap();
    assert_eq!(child.info.status.to_string(), "failed");

    match client.start::<StrictInvoices>("strict-1", customers, StartOptions::default()).await.unwrap().result().await {
        Err(ResultError::Failed { failure, .. }) => {
            assert_eq!(failure.error_type, "ChildWorkflowFailed");
            println!("{failure}");
        }
        other => panic!("{other:?}"),
    }
    let out = client.start::<InvoiceOrQueue>("one", "bad".into(), StartOptions::default()).await.unwrap();
    let out = out.result().await.unwrap();
    assert!(out.starts_with("queued bad for a manual invoice after 2 attempts"), "{out}");
    worker.shutdown().await;
}
