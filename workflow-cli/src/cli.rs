//! The `wf` command line: arguments and what each command prints.

use clap::{Parser, Subcommand};
use workflow_core::store::RunStatus;
use workflow_core::{Payload, ResetPoint, Timestamp};

use crate::location::StoreLocation;
use crate::model::ListQuery;
use crate::render;
use crate::source::{Source, SourceError};

/// Inspect and control workflow runs, in a store or in a running process.
///
/// Read a store directly with --db (only when no process holds it), or a running worker
/// through its admin endpoint with --url. Every read command prints the same either way.
#[derive(Debug, Parser)]
#[command(
    name = "wf",
    version,
    about,
    long_about,
    after_help = "Exit codes: 0 ok, 1 not found, 2 usage (bad arguments or payload), 3 other failures."
)]
#[non_exhaustive]
pub struct Args {
    /// The store: a sled store's folder (not held by another process), or a PostgreSQL URL
    /// (postgres://user@host/db; readable and controllable while workers run).
    #[arg(long, value_name = "PATH|URL", global = true, conflicts_with = "url")]
    pub db: Option<StoreLocation>,

    /// A running process's admin endpoint, e.g. http://127.0.0.1:7233.
    #[arg(long, value_name = "URL", global = true)]
    pub url: Option<String>,

    /// The admin endpoint's bearer token (needed for writes, and for every request to an
    /// endpoint beyond loopback).
    #[arg(long, value_name = "TOKEN", global = true, env = "WF_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A `wf` command.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// List runs, newest first: workflow id, run id, type, status, start, end, duration.
    List {
        /// Only runs with this status: running, completed, failed, cancelled, terminated,
        /// continued_as_new, timed_out.
        #[arg(long, value_name = "STATUS", value_parser = parse_status)]
        status: Option<RunStatus>,
        /// Only runs of this workflow type.
        #[arg(long = "type", value_name = "TYPE")]
        workflow_type: Option<String>,
        /// At most N runs.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Print the runs as JSON (the serde form of workflow_core::store::RunInfo).
        #[arg(long)]
        json: bool,
    },
    /// Describe the latest run of a workflow: status, input, result, failure, pending
    /// activities (attempt, last failure, heartbeat), children and parent.
    Describe {
        /// The workflow id.
        id: String,
        /// Print the description as JSON (the admin endpoint's `describe` body).
        #[arg(long)]
        json: bool,
    },
    /// Print the latest run's event history.
    History {
        /// The workflow id.
        id: String,
        /// Print the events as JSON (a stable format: the serde form of workflow_core::Event).
        #[arg(long)]
        json: bool,
    },
    /// Print every activity attempt of the latest run: start, duration, worker, outcome.
    Attempts {
        /// The workflow id.
        id: String,
        /// Print the attempts as JSON (the serde form of workflow_core::store::AttemptRecord).
        #[arg(long)]
        json: bool,
    },
    /// Print the parent / child tree around a workflow, with statuses.
    Tree {
        /// The workflow id.
        id: String,
        /// Print the tree as JSON (the admin endpoint's `tree` body).
        #[arg(long)]
        json: bool,
    },
    /// Request cancellation of a workflow's open run.
    Cancel {
        /// The workflow id.
        id: String,
        /// Why (recorded in the history).
        #[arg(long, value_name = "REASON")]
        reason: Option<String>,
    },
    /// Terminate a workflow's open run at once; no workflow code runs after it.
    Terminate {
        /// The workflow id.
        id: String,
        /// Why (recorded in the history).
        #[arg(long, value_name = "REASON")]
        reason: String,
    },
    /// Send a signal to a workflow's open run.
    Signal {
        /// The workflow id.
        id: String,
        /// The signal's name.
        name: String,
        /// The payload, as JSON.
        #[arg(long = "json", value_name = "PAYLOAD", default_value = "null")]
        payload: String,
    },
    /// Re-run a workflow's latest run from a point of its history as a new run, with the code
    /// deployed now (as Temporal's reset): what it did up to the point is kept, the rest is
    /// done again. An open run is terminated first.
    #[command(group(clap::ArgGroup::new("point").required(true).args(["event", "before_failure"])))]
    Reset {
        /// The workflow id.
        id: String,
        /// Keep the run's events up to this one (an event id `wf history` shows).
        #[arg(long, value_name = "EVENT_ID")]
        event: Option<u64>,
        /// Keep everything before the run's last failure (a failed activity or child, or the
        /// run's own failure, timeout or termination).
        #[arg(long)]
        before_failure: bool,
        /// Why (recorded in the new run's history).
        #[arg(long, value_name = "REASON")]
        reason: String,
    },
    /// Write the history of every run (or of those matching the filters) as a JSON file in
    /// DIR, named `<workflow id>--<run id>.json`: the files a replay gate (`Replayer::replay_files`)
    /// checks new code against before a deploy. Reads a store (--db).
    Export {
        /// The folder to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
        /// Only runs with this status.
        #[arg(long, value_name = "STATUS", value_parser = parse_status)]
        status: Option<RunStatus>,
        /// Only runs of this workflow type.
        #[arg(long = "type", value_name = "TYPE")]
        workflow_type: Option<String>,
    },
    /// Serve the web UI (and the admin endpoint's JSON API) for a store no process holds, or
    /// a PostgreSQL store, until Ctrl-C. A running worker's admin endpoint serves the same UI
    /// under /ui/ itself.
    Ui {
        /// Where to listen. Beyond loopback every request needs the token.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7244")]
        addr: std::net::SocketAddr,
        /// Offer cancel, terminate and signal (they need the token; one is generated when
        /// --token is not given). Without it the UI only reads, and a sled store is read
        /// from a private copy, so that nothing is written to it.
        #[arg(long)]
        allow_writes: bool,
    },
}

fn parse_status(s: &str) -> Result<RunStatus, String> {
    let normalized = s.replace('-', "_").to_ascii_lowercase();
    serde_json::from_value(serde_json::Value::String(normalized)).map_err(|_| {
        format!("unknown status {s:?}; expected running, completed, failed, cancelled, terminated, continued_as_new or timed_out")
    })
}

/// Runs `args`, returning what to print on stdout; `now` is used for ages and running times.
pub async fn run(args: Args, now: Timestamp) -> Result<String, SourceError> {
    check_id(&args.command)?;
    if let Command::Ui { addr, allow_writes } = &args.command {
        let Some(db) = &args.db else {
            return Err(SourceError::Usage(match &args.url {
                Some(url) => format!("a running process serves the UI itself: open {}/ui/", url.trim_end_matches('/')),
                None => "give the store with --db PATH|URL".into(),
            }));
        };
        return serve_ui(db, *addr, *allow_writes, args.token.clone(), tokio::signal::ctrl_c()).await;
    }
    let source = match (&args.db, &args.url) {
        (Some(db), None) => Source::open_location(db, args.command.writes()).await?,
        (None, Some(url)) => Source::connect_with_token(url, args.token.clone())?,
        _ => {
            return Err(SourceError::Usage(
                "give the store with --db PATH|URL or an admin endpoint with --url URL".into(),
            ))
        }
    };
    execute(&source, args.command, now).await
}

impl Command {
    /// Whether the command changes runs (cancel, terminate, signal); the others only read,
    /// and write nothing to the store they read.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Command::Cancel { .. } | Command::Terminate { .. } | Command::Signal { .. } | Command::Reset { .. }
        )
    }
}

/// `wf export`: one JSON history file per run.
async fn export(
    client: &workflow_core::Client,
    out: &std::path::Path,
    query: ListQuery,
) -> Result<String, SourceError> {
    let cannot = |e: std::io::Error| SourceError::Usage(format!("cannot write into {}: {e}", out.display()));
    std::fs::create_dir_all(out).map_err(cannot)?;
    let runs = client.list(&query.to_filter()).await?;
    for info in &runs {
        let history = client.store().read_history(&info.run_id, 0).await?;
        let name: String = info
            .workflow_id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
            .collect();
        let path = out.join(format!("{name}--{}.json", info.run_id));
        std::fs::write(&path, render::render_history_json(&history)).map_err(cannot)?;
    }
    Ok(format!("{} histories written to {}\n", runs.len(), out.display()))
}

/// `wf ui`: serves the UI for the store at `db` on `addr` until `stop` resolves; prints its
/// URL (and a generated token) on stdout first.
pub async fn serve_ui<F: std::future::Future>(
    db: &StoreLocation,
    addr: std::net::SocketAddr,
    allow_writes: bool,
    token: Option<String>,
    stop: F,
) -> Result<String, SourceError> {
    let source = Source::open_location(db, allow_writes).await?;
    let Source::Direct(client) = source else {
        return Err(SourceError::Usage("wf ui serves a store given with --db".into()));
    };
    let mut options = crate::admin::AdminOptions::default().allow_writes(allow_writes);
    if let Some(t) = token {
        options = options.token(t);
    }
    let admin = crate::admin::AdminServer::serve(client, addr, options)
        .await
        .map_err(|e| SourceError::Usage(format!("cannot listen on {addr}: {e}")))?;
    let mut line = format!("serving {db} on {}/ui/", admin.url());
    if let Some(t) = admin.token() {
        line.push_str(&format!(" (actions need the token: open {}/ui/?token={t} once)", admin.url()));
    }
    if !allow_writes {
        line.push_str(", read-only");
    }
    println!("{line}; Ctrl-C stops");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    stop.await;
    admin.shutdown().await;
    Ok(String::new())
}

/// A malformed workflow id is a usage error (exit 2), found before any store is opened, so
/// that `--db` and `--url` answer alike.
fn check_id(command: &Command) -> Result<(), SourceError> {
    if let Command::Describe { id, .. }
    | Command::History { id, .. }
    | Command::Attempts { id, .. }
    | Command::Tree { id, .. }
    | Command::Cancel { id, .. }
    | Command::Terminate { id, .. }
    | Command::Signal { id, .. }
    | Command::Reset { id, .. } = command
    {
        workflow_core::validate_id("workflow id", id, workflow_core::Limits::default().max_id_bytes)
            .map_err(|e| SourceError::Usage(e.to_string()))?;
    }
    Ok(())
}

/// Runs `command` against `source`, returning what to print on stdout.
pub async fn execute(source: &Source, command: Command, now: Timestamp) -> Result<String, SourceError> {
    check_id(&command)?;
    Ok(match command {
        Command::List { status, workflow_type, limit, json } => {
            let query = ListQuery { status, workflow_type, limit };
            let runs = source.list(&query).await?;
            if json {
                render::render_json(&runs)
            } else {
                render::render_list(&runs, now)
            }
        }
        Command::Describe { id, json } => {
            let details = source.describe(&id).await?;
            if json {
                render::render_json(&details)
            } else {
                render::render_describe(&details, now)
            }
        }
        Command::History { id, json } => {
            let events = source.history(&id).await?;
            if json {
                render::render_history_json(&events)
            } else {
                render::render_history(&events)
            }
        }
        Command::Attempts { id, json } => {
            let attempts = source.attempts(&id).await?;
            if json {
                render::render_json(&attempts)
            } else {
                render::render_attempts(&attempts)
            }
        }
        Command::Tree { id, json } => {
            let tree = source.tree(&id).await?;
            if json {
                render::render_json(&tree)
            } else {
                render::render_tree(&tree)
            }
        }
        Command::Cancel { id, reason } => {
            source.cancel(&id, reason).await?;
            format!("cancellation of {id:?} requested\n")
        }
        Command::Terminate { id, reason } => {
            source.terminate(&id, &reason).await?;
            format!("{id:?} terminated\n")
        }
        Command::Signal { id, name, payload } => {
            let value: serde_json::Value = serde_json::from_str(&payload)
                .map_err(|e| SourceError::Usage(format!("--json is not valid JSON: {e}")))?;
            source.signal(&id, &name, Payload::from_json(value)).await?;
            format!("signal {name:?} sent to {id:?}\n")
        }
        Command::Ui { .. } => return Err(SourceError::Usage("wf ui serves a store given with --db".into())),
        Command::Export { out, status, workflow_type } => {
            let Source::Direct(client) = source else {
                return Err(SourceError::Usage("wf export reads a store: give it with --db".into()));
            };
            export(client, &out, ListQuery { status, workflow_type, limit: None }).await?
        }
        Command::Reset { id, event, before_failure: _, reason } => {
            let point = event.map_or(ResetPoint::BeforeFailure, ResetPoint::Event);
            let run = source.reset(&id, point, &reason).await?;
            format!("{id:?} reset: new run {run}\n")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn parses_statuses() {
        assert_eq!(parse_status("failed"), Ok(RunStatus::Failed));
        assert_eq!(parse_status("timed-out"), Ok(RunStatus::TimedOut));
        assert!(parse_status("nope").is_err());
        let a = Args::try_parse_from(["wf", "--db", "x", "list", "--status", "cancelled", "--limit", "3"]).unwrap();
        assert!(matches!(a.command, Command::List { status: Some(RunStatus::Cancelled), limit: Some(3), .. }));
        assert!(Args::try_parse_from(["wf", "--db", "x", "--url", "http://h", "list"]).is_err());
        assert!(Args::try_parse_from(["wf", "terminate", "x"]).is_err(), "--reason is required");
    }
}
