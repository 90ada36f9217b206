//! Key encodings. Every multi-part key starts with a length-prefixed id, so that a run's keys
//! form one prefix no other run shares, whatever characters the ids hold. Numbers are big
//! endian so that byte order is numeric order.

use workflow_core::store::{TaskKey, TaskQueue};
use workflow_core::{EventId, RunId, Timestamp};

/// `len (u32 BE) ++ run id`: the prefix of all of a run's keys in a per-run tree.
pub(crate) fn run_prefix(run_id: &RunId) -> Vec<u8> {
    let id = run_id.as_str().as_bytes();
    let mut k = Vec::with_capacity(4 + id.len() + 8);
    k.extend_from_slice(&(id.len() as u32).to_be_bytes());
    k.extend_from_slice(id);
    k
}

/// A history key: run prefix ++ event id (u64 BE).
pub(crate) fn event_key(run_id: &RunId, id: EventId) -> Vec<u8> {
    let mut k = run_prefix(run_id);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// An attempt-log key: run prefix ++ position (u64 BE).
pub(crate) fn attempt_key(run_id: &RunId, n: u64) -> Vec<u8> {
    let mut k = run_prefix(run_id);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

/// The trailing u64 of a per-run key (event id, attempt position).
pub(crate) fn trailing_u64(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

/// A run-task index key: run prefix ++ task key.
pub(crate) fn run_task_key(run_id: &RunId, key: &TaskKey) -> Vec<u8> {
    let mut k = run_prefix(run_id);
    k.extend_from_slice(key.0.as_bytes());
    k
}

pub(crate) fn queue_byte(q: TaskQueue) -> u8 {
    match q {
        TaskQueue::Workflow => 0,
        TaskQueue::Activity => 1,
    }
}

/// A ready-index key: queue (u8) ++ visible_at (u64 BE) ++ task key.
pub(crate) fn ready_key(q: TaskQueue, at: Timestamp, key: &TaskKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + key.0.len());
    k.push(queue_byte(q));
    k.extend_from_slice(&at.as_millis().to_be_bytes());
    k.extend_from_slice(key.0.as_bytes());
    k
}

/// Splits a ready-index key into (visible_at, task key).
pub(crate) fn parse_ready_key(k: &[u8]) -> Option<(Timestamp, TaskKey)> {
    let at: [u8; 8] = k.get(1..9)?.try_into().ok()?;
    let key = std::str::from_utf8(k.get(9..)?).ok()?;
    Some((Timestamp(u64::from_be_bytes(at)), TaskKey(key.to_string())))
}

/// A closed-run index key: close time (u64 BE) ++ run id.
pub(crate) fn closed_key(at: Timestamp, run_id: &RunId) -> Vec<u8> {
    let mut k = at.as_millis().to_be_bytes().to_vec();
    k.extend_from_slice(run_id.as_str().as_bytes());
    k
}

/// Splits a closed-run index key into (close time, run id).
pub(crate) fn parse_closed_key(k: &[u8]) -> Option<(Timestamp, RunId)> {
    let at: [u8; 8] = k.get(..8)?.try_into().ok()?;
    let id = std::str::from_utf8(k.get(8..)?).ok()?;
    Some((Timestamp(u64::from_be_bytes(at)), RunId(id.to_string())))
}

/// A key for humans (error messages): `tree/` and the printable parts of the key.
pub(crate) fn describe(tree: &str, key: &[u8]) -> String {
    format!("{tree}/{}", String::from_utf8_lossy(key).escape_debug())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_prefixes_do_not_overlap() {
        // "a" + event key must never fall under the prefix of run "a\u{1}..." or similar.
        let a = RunId("a".into());
        let ab = RunId("ab".into());
        assert!(!event_key(&ab, 1).starts_with(&run_prefix(&a)));
        assert!(event_key(&a, 7).starts_with(&run_prefix(&a)));
        assert_eq!(trailing_u64(&event_key(&a, 7)), Some(7));
    }

    #[test]
    fn event_keys_sort_numerically() {
        let r = RunId("r".into());
        assert!(event_key(&r, 255) < event_key(&r, 256));
    }

    #[test]
    fn ready_keys_round_trip_and_sort_by_time() {
        let k = TaskKey("act/r/1".into());
        let early = ready_key(TaskQueue::Activity, Timestamp(5), &k);
        let late = ready_key(TaskQueue::Activity, Timestamp(300), &TaskKey("a".into()));
        assert!(early < late);
        assert_eq!(parse_ready_key(&early), Some((Timestamp(5), k)));
        assert!(ready_key(TaskQueue::Workflow, Timestamp(u64::MAX), &TaskKey("z".into())) < early);
    }

    #[test]
    fn closed_keys_round_trip() {
        let r = RunId("x/y z".into());
        assert_eq!(parse_closed_key(&closed_key(Timestamp(9), &r)), Some((Timestamp(9), r)));
    }
}
