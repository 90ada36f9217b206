//! Key layout. Every record lives in one sled tree (`records`), under a one-byte prefix per
//! kind, so that one `apply_batch` writes any mix of them atomically. Multi-part keys start
//! with a length-prefixed id, so that a run's keys form one prefix no other run shares,
//! whatever characters the ids hold. Numbers are big endian so that byte order is numeric
//! order.
//!
//! | prefix | key | value |
//! |---|---|---|
//! | `r` | run id | `RunRecord` |
//! | `h` | run prefix ++ event id | `Event` |
//! | `a` | run prefix ++ position | `AttemptRecord` |
//! | `t` | task key | `Task` |
//! | `l` | task key | `LeaseMarker` (the task was leased by a process) |
//! | `w` | workflow id | run id of its latest run |
//! | `o` | creation number | run id (newest-first listing) |
//! | `c` | close time ++ run id | empty (retention) |

use workflow_core::store::TaskKey;
use workflow_core::{EventId, RunId, Timestamp};

pub(crate) const RUN: u8 = b'r';
pub(crate) const EVENT: u8 = b'h';
pub(crate) const ATTEMPT: u8 = b'a';
pub(crate) const TASK: u8 = b't';
pub(crate) const LEASE: u8 = b'l';
pub(crate) const WORKFLOW: u8 = b'w';
pub(crate) const ORDER: u8 = b'o';
pub(crate) const CLOSED: u8 = b'c';

fn with_prefix(p: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + rest.len());
    k.push(p);
    k.extend_from_slice(rest);
    k
}

/// `p ++ len (u32 BE) ++ run id`: the prefix of all of a run's keys of kind `p`.
pub(crate) fn run_prefix(p: u8, run_id: &RunId) -> Vec<u8> {
    let id = run_id.as_str().as_bytes();
    let mut k = Vec::with_capacity(5 + id.len() + 8);
    k.push(p);
    k.extend_from_slice(&(id.len() as u32).to_be_bytes());
    k.extend_from_slice(id);
    k
}

pub(crate) fn run(run_id: &RunId) -> Vec<u8> {
    with_prefix(RUN, run_id.as_str().as_bytes())
}

pub(crate) fn event(run_id: &RunId, id: EventId) -> Vec<u8> {
    let mut k = run_prefix(EVENT, run_id);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

pub(crate) fn attempt(run_id: &RunId, n: u64) -> Vec<u8> {
    let mut k = run_prefix(ATTEMPT, run_id);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

pub(crate) fn task(key: &TaskKey) -> Vec<u8> {
    with_prefix(TASK, key.0.as_bytes())
}

pub(crate) fn lease(key: &TaskKey) -> Vec<u8> {
    with_prefix(LEASE, key.0.as_bytes())
}

pub(crate) fn workflow(workflow_id: &str) -> Vec<u8> {
    with_prefix(WORKFLOW, workflow_id.as_bytes())
}

pub(crate) fn order(seq_no: u64) -> Vec<u8> {
    with_prefix(ORDER, &seq_no.to_be_bytes())
}

pub(crate) fn closed(at: Timestamp, run_id: &RunId) -> Vec<u8> {
    let mut k = with_prefix(CLOSED, &at.as_millis().to_be_bytes());
    k.extend_from_slice(run_id.as_str().as_bytes());
    k
}

/// The trailing u64 of a key (event id, attempt position, creation number).
pub(crate) fn trailing_u64(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

/// The task key of a `t` or `l` key.
pub(crate) fn task_key_of(key: &[u8]) -> Option<TaskKey> {
    std::str::from_utf8(key.get(1..)?).ok().map(|s| TaskKey(s.to_string()))
}

/// Splits a `c` key into (close time, run id).
pub(crate) fn parse_closed(k: &[u8]) -> Option<(Timestamp, RunId)> {
    let at: [u8; 8] = k.get(1..9)?.try_into().ok()?;
    let id = std::str::from_utf8(k.get(9..)?).ok()?;
    Some((Timestamp(u64::from_be_bytes(at)), RunId(id.to_string())))
}

/// A key for humans (error messages): the kind and the printable parts of the key.
pub(crate) fn describe(key: &[u8]) -> String {
    let kind = match key.first() {
        Some(&RUN) => "runs",
        Some(&EVENT) => "history",
        Some(&ATTEMPT) => "attempts",
        Some(&TASK) => "tasks",
        Some(&LEASE) => "leases",
        Some(&WORKFLOW) => "workflows",
        Some(&ORDER) => "run_order",
        Some(&CLOSED) => "closed",
        _ => "unknown",
    };
    format!("{kind}/{}", String::from_utf8_lossy(key.get(1..).unwrap_or_default()).escape_debug())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_prefixes_do_not_overlap() {
        let a = RunId("a".into());
        let ab = RunId("ab".into());
        assert!(!event(&ab, 1).starts_with(&run_prefix(EVENT, &a)));
        assert!(event(&a, 7).starts_with(&run_prefix(EVENT, &a)));
        assert!(!attempt(&a, 7).starts_with(&run_prefix(EVENT, &a)), "kinds never share a prefix");
        assert_eq!(trailing_u64(&event(&a, 7)), Some(7));
    }

    #[test]
    fn event_keys_sort_numerically() {
        let r = RunId("r".into());
        assert!(event(&r, 255) < event(&r, 256));
    }

    #[test]
    fn closed_keys_round_trip_and_sort_by_time() {
        let r = RunId("x/y z".into());
        assert_eq!(parse_closed(&closed(Timestamp(9), &r)), Some((Timestamp(9), r.clone())));
        assert!(closed(Timestamp(9), &r) < closed(Timestamp(300), &RunId("a".into())));
    }

    #[test]
    fn task_keys_round_trip() {
        let k = TaskKey("act/r/1".into());
        assert_eq!(task_key_of(&task(&k)), Some(k.clone()));
        assert_eq!(task_key_of(&lease(&k)), Some(k));
        assert_eq!(describe(&task(&TaskKey("wf/1".into()))), "tasks/wf/1");
    }
}
