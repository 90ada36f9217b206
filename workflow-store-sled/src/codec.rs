//! Record encoding (JSON) and error mapping. Nothing read from disk is trusted: every decode
//! failure is a [`StoreError::Corrupt`] naming the record.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use workflow_core::store::RunInfo;
use workflow_core::{StoreError, Timestamp};

/// What the `runs` tree holds per run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RunRecord {
    pub(crate) info: RunInfo,
    /// Creation order, for newest-first listing (key of the `run_order` tree).
    pub(crate) seq_no: u64,
    /// The last event's time (event times never go back).
    pub(crate) last_time: Timestamp,
}

/// What the `leases` tree holds per leased task: which process (store instance) leased it.
/// Written without a flush: a marker may be missing after a crash (see the crate docs).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LeaseMarker {
    pub(crate) instance: String,
    pub(crate) owner: String,
}

pub(crate) fn encode<T: Serialize>(what: &str, v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v)
        .map_err(|e| StoreError::Backend { reason: format!("could not encode {what}: {e}"), retryable: false })
}

/// Decodes a record; `key` names it for humans (tree, run id, id).
pub(crate) fn decode<T: DeserializeOwned>(key: impl FnOnce() -> String, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt { key: key(), reason: format!("undecodable record: {e}") })
}

pub(crate) fn backend(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Corruption { at, .. } => {
            StoreError::Corrupt { key: format!("sled storage at {at:?}"), reason: "sled reports corruption".into() }
        }
        sled::Error::Io(io) => StoreError::Backend {
            reason: format!("sled I/O error: {io}"),
            retryable: matches!(io.kind(), std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock),
        },
        other => StoreError::Backend { reason: format!("sled: {other}"), retryable: false },
    }
}

pub(crate) fn tx_backend(e: sled::transaction::TransactionError<()>) -> StoreError {
    match e {
        sled::transaction::TransactionError::Storage(e) => backend(e),
        sled::transaction::TransactionError::Abort(()) => {
            StoreError::Backend { reason: "sled transaction aborted".into(), retryable: true }
        }
    }
}
