//! # workflow-cli: inspect workflow runs
//!
//! The `wf` command-line tool and the admin endpoint that lets it inspect a running process.
//!
//! ```text
//! wf --db batch-data list --status failed          # a store no process holds
//! wf --url http://127.0.0.1:7233 describe order-7  # a running worker's admin endpoint
//! wf --db batch-data history order-7 --json        # the stable JSON history format
//! ```
//!
//! The pieces, each usable on its own:
//!
//! - [`model`]: the data every command shows ([`RunDetails`](model::RunDetails),
//!   [`TreeNode`](model::TreeNode), ...) and how to gather it from a
//!   [`Client`](workflow_core::Client);
//! - [`source::Source`]: where the data comes from, a store opened directly or the admin
//!   endpoint over HTTP, with the same answers either way;
//! - [`render`]: pure functions from that data to the text `wf` prints;
//! - [`admin::AdminServer`]: the JSON API a worker process serves;
//! - [`cli`]: the `wf` arguments and commands.
//!
//! Reading a store in-process and rendering it:
//!
//! ```
//! use std::sync::Arc;
//! use workflow_cli::{model::ListQuery, render, source::Source};
//! use workflow_core::{store::MemoryStore, Client, Timestamp};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let source = Source::Direct(Client::new(Arc::new(MemoryStore::new())));
//! let runs = source.list(&ListQuery::default()).await?;
//! assert_eq!(render::render_list(&runs, Timestamp(0)), "no runs\n");
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod admin;
pub mod cli;
pub mod location;
pub mod model;
pub mod render;
pub mod source;
pub mod ui;

/// The README's examples, compiled and run as doctests so that what crates.io shows works.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
