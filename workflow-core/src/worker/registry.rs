//! Typed registration of workflows and activities, erased for dispatch by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::{BoxFuture, LocalBoxFuture};

use crate::activity::{Activity, ActivityContext, ActivityError};
use crate::error::WorkerError;
use crate::payload::Payload;
use crate::replay::WorkflowFn;
use crate::workflow::{Workflow, WorkflowContext, WorkflowError};

/// An activity behind its name: typed input and output decoded and encoded around it.
pub(crate) trait ErasedActivity: Send + Sync {
    fn run(&self, ctx: ActivityContext, input: Payload) -> BoxFuture<'_, Result<Payload, ActivityError>>;
}

struct ActivityAdapter<A>(A);

impl<A: Activity> ErasedActivity for ActivityAdapter<A> {
    fn run(&self, ctx: ActivityContext, input: Payload) -> BoxFuture<'_, Result<Payload, ActivityError>> {
        Box::pin(async move {
            let input: A::Input = input
                .decode(&format!("input of activity {}", A::NAME))
                .map_err(|e| ActivityError::non_retryable("InvalidInput", e.to_string()))?;
            let out = self.0.run(ctx, input).await?;
            Payload::encode(&out).map_err(|e| ActivityError::non_retryable("InvalidOutput", e.to_string()))
        })
    }
}

fn run_workflow<W: Workflow>(
    ctx: WorkflowContext,
    input: Payload,
) -> LocalBoxFuture<'static, Result<Payload, WorkflowError>> {
    Box::pin(async move {
        let input: W::Input = input
            .decode(&format!("input of workflow {}", W::NAME))
            .map_err(|e| WorkflowError::new("InvalidInput", e.to_string()))?;
        let out = W::run(ctx, input).await?;
        Ok(Payload::encode(&out)?)
    })
}

#[derive(Default, Clone)]
pub(crate) struct Registry {
    pub(crate) workflows: BTreeMap<String, WorkflowFn>,
    pub(crate) activities: BTreeMap<String, Arc<dyn ErasedActivity>>,
}

impl Registry {
    pub(crate) fn add_workflow<W: Workflow>(&mut self) -> Result<(), WorkerError> {
        if self.workflows.contains_key(W::NAME) {
            return Err(WorkerError::DuplicateRegistration { kind: "workflow", name: W::NAME.into() });
        }
        self.workflows.insert(W::NAME.into(), run_workflow::<W>);
        Ok(())
    }

    pub(crate) fn add_activity<A: Activity>(&mut self, activity: A) -> Result<(), WorkerError> {
        if self.activities.contains_key(A::NAME) {
            return Err(WorkerError::DuplicateRegistration { kind: "activity", name: A::NAME.into() });
        }
        self.activities.insert(A::NAME.into(), Arc::new(ActivityAdapter(activity)));
        Ok(())
    }

    pub(crate) fn workflow_names(&self) -> String {
        names(self.workflows.keys())
    }

    pub(crate) fn activity_names(&self) -> String {
        names(self.activities.keys())
    }
}

fn names<'a>(it: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = it.map(String::as_str).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}
