//! Options for opening a [`SledStore`](crate::SledStore).

use std::path::{Path, PathBuf};
use std::time::Duration;

use workflow_core::StoreError;

use crate::SledStore;

/// When a write reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// The default. `create_run` and `append` return only after their write is flushed and
    /// synced to disk (`fdatasync`); concurrent writers, of any runs, share one write and one
    /// sync (group commit). Nothing acknowledged is lost by a process crash or a power loss.
    Flush,
    /// Opt-in: writes return at once and a background thread flushes every `every`. A crash
    /// (of the process or the machine) can lose the writes of the last `every` or so,
    /// including starts and completions that were already acknowledged: lost activity results
    /// make the activities run again, lost starts are gone. Each write is still atomic, and a
    /// write is never kept while an earlier one is lost.
    Relaxed {
        /// How often to flush.
        every: Duration,
    },
}

/// Opens a [`SledStore`] with options.
///
/// ```
/// use std::time::Duration;
/// use workflow_store_sled::{Durability, SledStore};
/// let dir = tempfile::tempdir()?;
/// let store = SledStore::builder(dir.path().join("db"))
///     .durability(Durability::Flush)
///     .retention(Duration::from_secs(7 * 24 * 3600))
///     .open()?;
/// # drop(store);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct SledStoreBuilder {
    pub(crate) path: PathBuf,
    pub(crate) durability: Durability,
    pub(crate) group_commit_delay: Duration,
    pub(crate) retention: Option<Duration>,
    pub(crate) sweep_every: Option<Duration>,
    pub(crate) cache_capacity: Option<u64>,
}

impl SledStoreBuilder {
    pub(crate) fn new(path: impl AsRef<Path>) -> Self {
        SledStoreBuilder {
            path: path.as_ref().to_path_buf(),
            durability: Durability::Flush,
            group_commit_delay: Duration::ZERO,
            retention: None,
            sweep_every: None,
            cache_capacity: None,
        }
    }

    /// When writes reach the disk (default [`Durability::Flush`]).
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }

    /// How long the committer waits for more writers before it takes a group (default zero:
    /// it takes whatever is waiting at once, and writers that arrive during a write and its
    /// sync share the next one). A small delay trades latency for fewer syncs under load.
    pub fn group_commit_delay(mut self, d: Duration) -> Self {
        self.group_commit_delay = d;
        self
    }

    /// Deletes runs (history, attempt log, info) that closed more than `keep` ago, in a
    /// background sweep. Default: keep runs forever.
    pub fn retention(mut self, keep: Duration) -> Self {
        self.retention = Some(keep);
        self
    }

    /// How often the retention sweep runs (default: a tenth of the retention, between one
    /// second and one hour).
    pub fn retention_sweep_every(mut self, every: Duration) -> Self {
        self.sweep_every = Some(every);
        self
    }

    /// sled's page cache size in bytes (sled's default otherwise).
    pub fn cache_capacity(mut self, bytes: u64) -> Self {
        self.cache_capacity = Some(bytes);
        self
    }

    /// Opens (or creates) the store.
    ///
    /// Errors: [`StoreError::InUse`] when another process has it open,
    /// [`StoreError::UnsupportedVersion`] when a newer version wrote it,
    /// [`StoreError::Corrupt`] when its records cannot be read.
    pub fn open(self) -> Result<SledStore, StoreError> {
        SledStore::open_with(self)
    }

    pub(crate) fn sweep_interval(&self) -> Option<Duration> {
        let keep = self.retention?;
        Some(self.sweep_every.unwrap_or_else(|| (keep / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600))))
    }
}
