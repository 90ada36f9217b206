//! Record encoding (MessagePack with field names, through serde) and error mapping. Nothing
//! read from disk is trusted: every decode failure is a [`StoreError::Corrupt`] naming the
//! record.
//!
//! MessagePack rather than a schema-less format such as bincode: the engine's records use
//! serde's tagged enums, flattening and JSON payloads, which need a self-describing format.
//! It is still about half the size of JSON and faster to write and read.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use workflow_core::store::RunInfo;
use workflow_core::{StoreError, Timestamp};

/// What the store keeps per run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RunRecord {
    pub(crate) info: RunInfo,
    /// Creation order, for newest-first listing (the `o` key).
    pub(crate) seq_no: u64,
    /// The last event's time (event times never go back).
    pub(crate) last_time: Timestamp,
    /// The next attempt-log position.
    pub(crate) next_attempt: u64,
}

/// Which process (store instance) and worker leased a task. The marker of a lease taken
/// through the queue is written without a flush (it may be missing after a crash); the
/// marker of an eager lease is part of the append that created the task.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LeaseMarker {
    pub(crate) instance: String,
    pub(crate) owner: String,
    /// When the lease was taken (absent in markers of older builds).
    #[serde(default)]
    pub(crate) since: Option<workflow_core::Timestamp>,
}

pub(crate) fn encode<T: Serialize>(what: &str, v: &T) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec_named(v)
        .map_err(|e| StoreError::Backend { reason: format!("could not encode {what}: {e}"), retryable: false })
}

/// Decodes a record; `key` names it for humans (kind, run id, id).
pub(crate) fn decode<T: DeserializeOwned>(key: impl FnOnce() -> String, bytes: &[u8]) -> Result<T, StoreError> {
    rmp_serde::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt { key: key(), reason: format!("undecodable record: {e}") })
}

pub(crate) fn backend(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Corruption { at, .. } => {
            let at = at.map_or_else(|| "an unknown position".to_string(), |at| format!("{at:?}"));
            StoreError::Corrupt {
                key: format!("sled log entry at {at}"),
                reason: "sled found the entry damaged; restore the store from a backup".into(),
            }
        }
        sled::Error::Io(io) => io_error("sled I/O error", &io),
        other => StoreError::Backend { reason: format!("sled: {other}"), retryable: false },
    }
}

pub(crate) fn io_error(what: &str, io: &std::io::Error) -> StoreError {
    StoreError::Backend {
        reason: format!("{what}: {io}"),
        retryable: matches!(io.kind(), std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock),
    }
}
