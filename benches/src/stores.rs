//! The stores the workloads run on.

use std::path::Path;
use std::sync::Arc;

use workflow_core::store::{MemoryStore, Store};
use workflow_store_sled::{Durability, SledStore};

/// Which store a workload runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// `MemoryStore`: the engine's own overhead, nothing durable.
    Memory,
    /// `SledStore` with [`Durability::Flush`]: acknowledged after the flush, group commit.
    SledDurable,
}

impl StoreKind {
    /// Both kinds, in table order.
    pub const ALL: [StoreKind; 2] = [StoreKind::Memory, StoreKind::SledDurable];

    /// The name used in the table and on the command line of child processes.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::SledDurable => "sled",
        }
    }

    /// The kind called `name`.
    pub fn parse(name: &str) -> Option<StoreKind> {
        StoreKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Opens a store of this kind; a sled store lives in `dir` (ignored for memory).
    pub fn open(self, dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match self {
            StoreKind::Memory => Arc::new(MemoryStore::new()),
            StoreKind::SledDurable => Arc::new(open_sled(dir)?),
        })
    }
}

/// Opens a durable sled store (acknowledge after flush) in `dir`.
pub fn open_sled(dir: &Path) -> anyhow::Result<SledStore> {
    Ok(SledStore::builder(dir).durability(Durability::Flush).open()?)
}
