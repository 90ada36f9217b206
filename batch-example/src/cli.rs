//! Command-line arguments.

use std::path::PathBuf;

use clap::Parser;
use workflow_cli::location::StoreLocation;

/// Enrich a users CSV through an HTTP API, durably: kill it at any point, run the same command
/// again, and it resumes where it stopped without redoing saved chunks.
///
/// With no arguments it generates a sample CSV of 10,000 users, starts a mock enrichment API
/// on 127.0.0.1 (failing about 10% of calls), keeps its state in ./batch-data and writes
/// `./batch-out/batch-<workflow id>/chunk-<index>.json`.
#[derive(Clone, Debug, Parser)]
#[command(name = "batch-example", version, about, long_about)]
#[non_exhaustive]
pub struct Args {
    /// The users CSV (columns id, name, email, country). Default: a generated sample of --rows
    /// users in the --out folder.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,

    /// Users in the generated sample (when --input is not given).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub rows: u64,

    /// Valid rows per chunk (each chunk is one child workflow and one output file).
    #[arg(long, default_value_t = 500, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_size: u64,

    /// The longest CSV record (line) to read, in bytes; a longer one stops the load with an
    /// error naming its line (a file that is not CSV, or has no line breaks).
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(64..))]
    pub max_record_bytes: u64,

    /// Chunks processed at once.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub concurrency: u32,

    /// The batch's workflow id; the same id resumes the same batch. Default: derived from the
    /// input file name (`enrich-<file stem>`).
    #[arg(long, value_name = "ID")]
    pub workflow_id: Option<String>,

    /// The durable store: a folder (an embedded sled store, one process at a time) or a
    /// PostgreSQL URL such as postgres://user@host/db (any number of processes and machines;
    /// see --worker-only).
    #[arg(long, default_value = "batch-data", value_name = "DIR|URL")]
    pub db: StoreLocation,

    /// Only run a worker: take tasks of batches that other processes started in the same
    /// PostgreSQL store (--db postgres://...), and do not start a batch. Exits when the batch
    /// given by --workflow-id has finished, or else on Ctrl-C. Chunk files are written where
    /// the starting process asked (its --out), so every worker must see that folder.
    #[arg(long)]
    pub worker_only: bool,

    /// Output folder; chunk files go to `<out>/batch-<workflow id>/`.
    #[arg(long, default_value = "batch-out", value_name = "DIR")]
    pub out: PathBuf,

    /// Share of calls the mock API fails, 0.0 to 1.0 (which users fail is fixed by their id).
    #[arg(long, default_value_t = 0.1, value_name = "RATE", value_parser = parse_rate)]
    pub failure_rate: f64,

    /// Latency of each mock API call, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,

    /// Use this enrichment API (`POST <url>/enrich`) instead of the in-process mock.
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,

    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// Run the batch again under a new run, even if it already finished (its output folder is
    /// cleared first).
    #[arg(long)]
    pub restart: bool,

    /// Serve the read-only admin endpoint on ADDR (default 127.0.0.1:7233) while the batch
    /// runs, so that `wf --url http://ADDR` can inspect it.
    /// On an address beyond loopback (0.0.0.0:PORT) every request needs a bearer token
    /// (`wf --token`): --admin-token, or one generated and printed.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:7233")]
    pub admin: Option<std::net::SocketAddr>,

    /// The admin endpoint's bearer token.
    #[arg(long, value_name = "TOKEN", env = "WORKFLOW_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Check, before a deploy, that this build can take over the batches in the store: replay
    /// every stored history against the batch workflows compiled into this binary, without
    /// running anything, and print where one diverges. Exits 0 when every history replays,
    /// 1 when one diverges. Reads the store without writing to it.
    #[arg(long)]
    pub check_replay: bool,

    /// Append every activity attempt to this file (used by the crash tests).
    #[arg(long, value_name = "FILE", hide = true)]
    pub audit_log: Option<PathBuf>,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0.0 and 1.0"))
    }
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
    fn defaults() {
        let a = Args::parse_from(["batch-example"]);
        assert_eq!((a.rows, a.chunk_size, a.concurrency), (10_000, 500, 4));
        assert_eq!(a.db, StoreLocation::Sled(PathBuf::from("batch-data")));
        assert!(Args::try_parse_from(["batch-example", "--failure-rate", "1.5"]).is_err());
        assert!(Args::try_parse_from(["batch-example", "--chunk-size", "0"]).is_err());
        let a = Args::parse_from(["batch-example", "--admin"]);
        assert_eq!(a.admin, Some("127.0.0.1:7233".parse().unwrap()));
    }
}
