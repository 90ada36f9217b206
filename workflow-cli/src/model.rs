//! The data every command shows, and how to gather it from a [`Client`].
//!
//! Both sources (a store opened directly, and the admin endpoint) return these types, and the
//! admin endpoint serves them as JSON, so that `wf --db` and `wf --url` print the same thing.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use workflow_core::store::{AttemptRecord, PendingTask, RunFilter, RunInfo, RunStatus, Task};
use workflow_core::{Client, ControlError, EventKind, RunId, Seq, Timestamp};

/// Which runs `wf list` shows (the query string of `GET /api/runs`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ListQuery {
    /// Only runs with this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// Only runs of this workflow type.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub workflow_type: Option<String>,
    /// At most this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

impl ListQuery {
    /// Filters by status.
    pub fn status(mut self, s: RunStatus) -> Self {
        self.status = Some(s);
        self
    }

    /// Filters by workflow type.
    pub fn workflow_type(mut self, t: impl Into<String>) -> Self {
        self.workflow_type = Some(t.into());
        self
    }

    /// Limits the count.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// As a store filter.
    pub fn to_filter(&self) -> RunFilter {
        let mut f = RunFilter::default();
        if let Some(s) = self.status {
            f = f.status(s);
        }
        if let Some(t) = &self.workflow_type {
            f = f.workflow_type(t.clone());
        }
        if let Some(n) = self.limit {
            f = f.limit(n);
        }
        f
    }
}

/// A task of a run that is not done yet, with its lease (a serializable [`PendingTask`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingView {
    /// The task (for an activity: attempt, last error, heartbeat).
    pub task: Task,
    /// The worker holding the lease, when leased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_owner: Option<String>,
    /// When the lease expires, when leased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<Timestamp>,
}

impl From<PendingTask> for PendingView {
    fn from(p: PendingTask) -> Self {
        let (lease_owner, lease_expires_at) = match p.lease {
            Some((owner, until)) => (Some(owner), Some(until)),
            None => (None, None),
        };
        PendingView { task: p.task, lease_owner, lease_expires_at }
    }
}

/// A child workflow a run asked for, and how it is doing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChildView {
    /// Command position in the parent.
    pub seq: Seq,
    /// The child's workflow id.
    pub workflow_id: String,
    /// The child's workflow type.
    pub workflow_type: String,
    /// The child's run, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    /// The child run's status, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// Why it could not start, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_failed: Option<String>,
}

/// Everything `wf describe` shows about the latest run of a workflow id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunDetails {
    /// The run.
    pub info: RunInfo,
    /// Its tasks not yet done (pending activities, timers, ...).
    pub pending: Vec<PendingView>,
    /// Its activity attempt log.
    pub attempts: Vec<AttemptRecord>,
    /// The children it asked for, in command order.
    pub children: Vec<ChildView>,
    /// Updates it accepted and has not answered, in the order accepted.
    #[serde(default)]
    pub pending_updates: Vec<workflow_core::history::PendingUpdate>,
}

/// A run and its children, as `wf tree` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TreeNode {
    /// The workflow id.
    pub workflow_id: String,
    /// The workflow type.
    pub workflow_type: String,
    /// The run, when it exists (a child that could not start has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    /// The run's status, when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// A one-line remark: the failure, or why the child could not start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Whether this is the run asked for.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub selected: bool,
    /// Its children, in command order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<TreeNode>,
}

/// Stops a malformed store (a cycle of parents) from looping forever.
const MAX_TREE_DEPTH: usize = 64;
/// Keeps `wf tree` on a huge fan-out readable and bounded.
const MAX_TREE_NODES: usize = 10_000;

/// The details of the latest run of `workflow_id`.
pub async fn run_details(client: &Client, workflow_id: &str) -> Result<RunDetails, ControlError> {
    let d = client.describe(workflow_id).await?;
    let history = client.store().read_history(&d.info.run_id, 0).await?;
    let mut children: Vec<ChildView> = Vec::new();
    let mut index: HashMap<Seq, usize> = HashMap::new();
    for e in &history {
        match &e.kind {
            EventKind::ChildWorkflowInitiated { seq, workflow_type, workflow_id, .. } => {
                index.insert(*seq, children.len());
                children.push(ChildView {
                    seq: *seq,
                    workflow_id: workflow_id.clone(),
                    workflow_type: workflow_type.clone(),
                    run_id: None,
                    status: None,
                    start_failed: None,
                });
            }
            EventKind::ChildWorkflowStarted { seq, run_id } => {
                if let Some(&i) = index.get(seq) {
                    children[i].run_id = Some(run_id.clone());
                }
            }
            EventKind::ChildWorkflowStartFailed { seq, reason } => {
                if let Some(&i) = index.get(seq) {
                    children[i].start_failed = Some(reason.clone());
                }
            }
            _ => {}
        }
    }
    for c in &mut children {
        if let Some(r) = &c.run_id {
            c.status = client.store().get_run(r).await?.map(|i| i.status);
        }
    }
    Ok(RunDetails {
        info: d.info,
        pending: d.pending.into_iter().map(PendingView::from).collect(),
        attempts: d.attempts,
        children,
        pending_updates: workflow_core::history::pending_updates(&history),
    })
}

/// The tree around the latest run of `workflow_id`: from its topmost ancestor down through
/// every child started (`ChildWorkflowStarted` events), with the asked-for run selected.
pub async fn run_tree(client: &Client, workflow_id: &str) -> Result<TreeNode, ControlError> {
    let store = client.store();
    let selected = store
        .current_run(workflow_id)
        .await?
        .ok_or_else(|| ControlError::NotFound { workflow_id: workflow_id.to_string() })?;
    let mut root = selected.clone();
    for _ in 0..MAX_TREE_DEPTH {
        let Some(parent) = &root.parent else { break };
        match store.get_run(&parent.run_id).await? {
            Some(p) => root = p,
            None => break,
        }
    }
    let mut budget = MAX_TREE_NODES;
    let mut node = node_of(&root, &selected.run_id);
    expand(client, &mut node, &selected.run_id, 0, &mut budget).await?;
    Ok(node)
}

fn node_of(info: &RunInfo, selected: &RunId) -> TreeNode {
    TreeNode {
        workflow_id: info.workflow_id.clone(),
        workflow_type: info.workflow_type.clone(),
        run_id: Some(info.run_id.clone()),
        status: Some(info.status),
        note: info.failure.as_ref().map(|f| f.to_string()).or_else(|| info.task_failure.clone()),
        selected: &info.run_id == selected,
        children: Vec::new(),
    }
}

// Recursion through an explicit boxed future: async fns cannot recurse directly.
fn expand<'a>(
    client: &'a Client,
    node: &'a mut TreeNode,
    selected: &'a RunId,
    depth: usize,
    budget: &'a mut usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ControlError>> + Send + 'a>> {
    Box::pin(async move {
        let Some(run_id) = node.run_id.clone() else { return Ok(()) };
        if depth >= MAX_TREE_DEPTH {
            return Ok(());
        }
        let store = client.store();
        let history = store.read_history(&run_id, 0).await?;
        let mut initiated: HashMap<Seq, (String, String)> = HashMap::new();
        // One node per command, even if a history records a child's start twice.
        let mut started: std::collections::HashSet<Seq> = std::collections::HashSet::new();
        let mut children: Vec<(Seq, TreeNode)> = Vec::new();
        for e in &history {
            if *budget == 0 {
                node.note.get_or_insert_with(|| "more children not shown".into());
                break;
            }
            match &e.kind {
                EventKind::ChildWorkflowInitiated { seq, workflow_type, workflow_id, .. } => {
                    initiated.insert(*seq, (workflow_id.clone(), workflow_type.clone()));
                }
                EventKind::ChildWorkflowStarted { seq, run_id } => {
                    if !started.insert(*seq) {
                        continue;
                    }
                    *budget -= 1;
                    let child = match store.get_run(run_id).await? {
                        Some(info) => node_of(&info, selected),
                        None => continue,
                    };
                    children.push((*seq, child));
                }
                EventKind::ChildWorkflowStartFailed { seq, reason } => {
                    *budget -= 1;
                    let (workflow_id, workflow_type) = initiated.get(seq).cloned().unwrap_or_default();
                    children.push((
                        *seq,
                        TreeNode {
                            workflow_id,
                            workflow_type,
                            run_id: None,
                            status: None,
                            note: Some(format!("could not start: {reason}")),
                            selected: false,
                            children: Vec::new(),
                        },
                    ));
                }
                _ => {}
            }
        }
        // In command order: children start in whatever order the store got to them.
        children.sort_by_key(|(seq, _)| *seq);
        node.children = children.into_iter().map(|(_, c)| c).collect();
        for child in &mut node.children {
            expand(client, child, selected, depth + 1, budget).await?;
        }
        Ok(())
    })
}

/// The attempt log of the latest run of `workflow_id`, by activity then attempt.
pub async fn run_attempts(client: &Client, workflow_id: &str) -> Result<Vec<AttemptRecord>, ControlError> {
    let mut attempts = client.describe(workflow_id).await?.attempts;
    attempts.sort_by_key(|a| (a.seq, a.attempt, a.started_at));
    Ok(attempts)
}
