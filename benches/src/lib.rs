//! # benches: how close to free durable execution is
//!
//! Shared pieces of the criterion micro-benchmarks (`benches/*.rs`) and of the workload
//! runner (`src/bin/workloads.rs`), which runs the workloads W1 to W5 and replay from the
//! benchmarks issue and prints a markdown table:
//!
//! ```text
//! cargo run --release -p benches --bin workloads            # full sizes (minutes)
//! cargo run --release -p benches --bin workloads -- --quick # small sizes (CI)
//! cargo bench -p benches                                    # criterion micro-benchmarks
//! ```
//!
//! - [`defs`]: the workflows and activities the workloads run;
//! - [`stores`]: `MemoryStore` and `SledStore` (durable) behind one switch;
//! - [`measure`]: clocks, percentiles, resident memory, sizes on disk, the table;
//! - [`workloads`]: W1 to W5 and replay.
#![warn(missing_docs)]

pub mod defs;
pub mod measure;
pub mod stores;
pub mod workloads;
