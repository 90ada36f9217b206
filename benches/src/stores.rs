//! The stores the workloads run on.

use std::path::Path;
use std::sync::Arc;

use workflow_core::store::{MemoryStore, Store};
use workflow_core::testing::CountingStore;
use workflow_store_postgres::PostgresStore;
use workflow_store_sled::{Durability, SledStore};

/// Which store a workload runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// `MemoryStore`: the engine's own overhead, nothing durable.
    Memory,
    /// `SledStore` with [`Durability::Flush`]: acknowledged after the flush, group commit.
    SledDurable,
    /// `PostgresStore` on the server the tests use (`WORKFLOW_TEST_PG_URL`, or a throwaway
    /// cluster), a fresh schema per workload; only W1 and W2.
    Postgres,
}

impl StoreKind {
    /// The kinds the runner measures by default, in table order (PostgreSQL only when asked
    /// for with `--store postgres`: it needs a server).
    pub const ALL: [StoreKind; 2] = [StoreKind::Memory, StoreKind::SledDurable];

    /// The name used in the table and on the command line of child processes.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::SledDurable => "sled",
            StoreKind::Postgres => "postgres",
        }
    }

    /// The kind called `name`.
    pub fn parse(name: &str) -> Option<StoreKind> {
        [StoreKind::Memory, StoreKind::SledDurable, StoreKind::Postgres].into_iter().find(|k| k.name() == name)
    }

    /// Opens a store of this kind; a sled store lives in `dir` (ignored for memory).
    pub fn open(self, dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match self {
            StoreKind::Memory => Arc::new(MemoryStore::new()),
            StoreKind::SledDurable => Arc::new(open_sled(dir)?),
            StoreKind::Postgres => anyhow::bail!("this workload runs on memory and sled only"),
        })
    }
}

/// A store opened for a measured workload: calls are counted, and a sled store's own
/// write and sync counters are at hand.
pub struct Measured {
    /// The store to run on (counting).
    pub store: Arc<dyn Store>,
    /// The counts of its calls.
    pub counting: Arc<CountingStore>,
    /// The sled store underneath, if any.
    pub sled: Option<Arc<SledStore>>,
    /// The PostgreSQL store underneath, if any (its schema is dropped with `cleanup`).
    pub postgres: Option<Arc<PostgresStore>>,
    cpu_at_open: Option<f64>,
}

impl StoreKind {
    /// Opens a store of this kind with counters (see [`Measured`]).
    pub async fn open_measured(self, dir: &Path) -> anyhow::Result<Measured> {
        let (inner, sled, postgres): (Arc<dyn Store>, _, _) = match self {
            StoreKind::Memory => (Arc::new(MemoryStore::new()), None, None),
            StoreKind::SledDurable => {
                let s = Arc::new(open_sled(dir)?);
                (s.clone(), Some(s), None)
            }
            StoreKind::Postgres => {
                let server = workflow_store_postgres::testing::server()
                    .ok_or_else(|| anyhow::anyhow!("no PostgreSQL server (set WORKFLOW_TEST_PG_URL)"))?;
                let p = Arc::new(server.builder("bench").pool_size(8).connect().await?);
                (p.clone(), None, Some(p))
            }
        };
        let counting = Arc::new(CountingStore::new(inner));
        Ok(Measured { store: counting.clone(), counting, sled, postgres, cpu_at_open: crate::measure::cpu_seconds() })
    }
}

impl Measured {
    /// Rows saying what each of `steps` activity steps cost: store calls that write, sled
    /// batches and syncs (counted, not estimated), and the process's CPU seconds.
    pub fn cost_rows(&self, workload: &str, store: &str, steps: u64, workflows: u64) -> Vec<crate::measure::Row> {
        use crate::measure::Row;
        let per = |n: u64| format!("{:.2}", n as f64 / steps.max(1) as f64);
        let calls = self.counting.calls();
        let mut rows = vec![Row::new(
            workload,
            store,
            "store calls that write, per activity step",
            format!(
                "{} ({} appends, {} creates of which {} eager starts, {} workflow / {} activity queue leases, {} eager leases)",
                per(calls.writes()),
                calls.appends,
                calls.creates,
                calls.eager_starts,
                calls.workflow_leases,
                calls.activity_leases,
                calls.eager_leases
            ),
        )];
        if let Some(p) = &self.postgres {
            let c = p.counters();
            rows.push(Row::new(
                workload,
                store,
                "PostgreSQL transactions that write, per activity step",
                format!(
                    "{} ({} group commits of {} writes, {} lease transactions, {} heartbeats, {} retries)",
                    per(c.transactions()),
                    c.group_commits,
                    c.grouped_writes,
                    c.lease_transactions,
                    c.heartbeats,
                    c.retries
                ),
            ));
        }
        if let Some(s) = &self.sled {
            let c = s.write_counters();
            rows.push(Row::new(
                workload,
                store,
                "sled writes (batches) / syncs per activity step",
                format!("{} / {} ({} ops in {} batches)", per(c.writes), per(c.syncs), c.ops, c.writes),
            ));
        }
        if let (true, Some(a), Some(b)) = (workflows > 1, self.cpu_at_open, crate::measure::cpu_seconds()) {
            let per_k = (b - a) * 1000.0 / workflows.max(1) as f64;
            rows.push(Row::new(workload, store, "process CPU s per 1,000 workflows", format!("{per_k:.2}")));
        }
        rows
    }
}

impl Measured {
    /// Drops a PostgreSQL workload's schema.
    pub async fn cleanup(&self) {
        if let Some(p) = &self.postgres {
            if let Err(e) = p.destroy().await {
                eprintln!("could not drop the benchmark schema {}: {e}", p.schema());
            }
        }
    }
}

/// Opens a durable sled store (acknowledge after flush) in `dir`.
pub fn open_sled(dir: &Path) -> anyhow::Result<SledStore> {
    Ok(SledStore::builder(dir).durability(Durability::Flush).open()?)
}
