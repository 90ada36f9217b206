//! Rows to records and back. Payload-bearing columns are `json`, read as text (`::text`) and
//! written as text cast to `json`.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_postgres::Row;
use workflow_core::history::Event;
use workflow_core::store::{PendingTask, RunInfo, Task, TaskKind, TaskQueue};
use workflow_core::{Payload, StoreError, Timestamp};

/// The columns [`task_from_row`] reads, in its order.
/// (The table is aliased `t`.)
pub(crate) const TASK_COLUMNS: &str =
    "t.key, t.task::text, t.version, t.leased_version, t.lease_owner, t.lease_token, t.due_at, t.hb_details::text, t.hb_at, \
     t.lease_since";

pub(crate) fn encode<T: Serialize>(what: &str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v)
        .map_err(|e| StoreError::Backend { reason: format!("cannot encode {what}: {e}"), retryable: false })
}

pub(crate) fn decode<T: DeserializeOwned>(key: impl FnOnce() -> String, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt { key: key(), reason: e.to_string() })
}

pub(crate) fn queue_code(q: TaskQueue) -> i16 {
    match q {
        TaskQueue::Workflow => 0,
        TaskQueue::Activity => 1,
    }
}

pub(crate) fn ts(t: Timestamp) -> i64 {
    i64::try_from(t.0).unwrap_or(i64::MAX)
}

pub(crate) fn from_ts(v: i64) -> Timestamp {
    Timestamp(u64::try_from(v).unwrap_or(0))
}

/// The columns [`run_info`] reads, in its order.
pub(crate) const RUN_COLUMNS: &str = "run_id, info::text, input::text";

/// A run from [`RUN_COLUMNS`] at `col`.
pub(crate) fn run_info(row: &Row, col: usize) -> Result<RunInfo, StoreError> {
    let id: &str = row.get(col);
    let mut info = run_state(row, col)?;
    let input: &str = row.get(col + 2);
    info.input = decode(|| format!("wf_runs {id} input"), input)?;
    Ok(info)
}

/// A run's mutable part (its input left null) from `run_id, info::text` at `col`.
pub(crate) fn run_state(row: &Row, col: usize) -> Result<RunInfo, StoreError> {
    let id: &str = row.get(col);
    let text: &str = row.get(col + 1);
    decode(|| format!("wf_runs {id} info"), text)
}

pub(crate) fn event(run_id: &str, row: &Row) -> Result<workflow_core::history::Event, StoreError> {
    let id: i64 = row.get(0);
    let time: i64 = row.get(1);
    let kind: &str = row.get(2);
    let kind = decode(|| format!("wf_events ({run_id}, {id})"), kind)?;
    Ok(Event { id: id as u64, time: from_ts(time), kind })
}

/// A task row as the group commit works on it.
#[derive(Clone, Debug)]
pub(crate) struct TaskRow {
    pub(crate) task: Task,
    pub(crate) version: i64,
    pub(crate) leased_version: i64,
    /// (owner, token, until)
    pub(crate) lease: Option<(String, i64, Timestamp)>,
    /// When the lease was taken.
    pub(crate) lease_since: Option<Timestamp>,
}

impl TaskRow {
    pub(crate) fn due_at(&self) -> Timestamp {
        self.lease.as_ref().map_or(self.task.visible_at, |l| l.2)
    }
}

/// Reads [`TASK_COLUMNS`], folding heartbeat columns into the activity task.
pub(crate) fn task_from_row(row: &Row) -> Result<TaskRow, StoreError> {
    let key: &str = row.get(0);
    let text: &str = row.get(1);
    let mut task: Task = decode(|| format!("wf_tasks {key}"), text)?;
    let owner: Option<String> = row.get(4);
    let token: Option<i64> = row.get(5);
    let due_at: i64 = row.get(6);
    let hb: Option<&str> = row.get(7);
    let hb_at: Option<i64> = row.get(8);
    if let (TaskKind::Activity(a), Some(at)) = (&mut task.kind, hb_at) {
        let details: Option<Payload> = hb.map(|t| decode(|| format!("wf_tasks {key} hb_details"), t)).transpose()?;
        if details.is_some() {
            a.heartbeat = details;
        }
        a.heartbeat_at = Some(from_ts(at));
    }
    let lease = match (owner, token) {
        (Some(o), Some(t)) => Some((o, t, from_ts(due_at))),
        _ => None,
    };
    let lease_since: Option<i64> = row.get(9);
    Ok(TaskRow { task, version: row.get(2), leased_version: row.get(3), lease, lease_since: lease_since.map(from_ts) })
}

impl From<TaskRow> for PendingTask {
    fn from(r: TaskRow) -> PendingTask {
        PendingTask { task: r.task, lease: r.lease.map(|(o, _, until)| (o, until)) }
    }
}
