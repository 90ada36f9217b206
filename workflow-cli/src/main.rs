//! `wf`: inspect and control workflow runs. See `wf --help` and the `workflow-cli` crate docs.

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use workflow_cli::cli::{run, Args};
use workflow_core::{Clock, SystemClock, Timestamp};

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap's message spans several lines; keep the first, the one that says what is wrong.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("wf: {first} (see wf --help)");
            return ExitCode::from(2);
        }
    };
    // WF_NOW_MS pins "now" (ages, running times) so that documented sessions and tests print
    // reproducible output.
    let now = std::env::var("WF_NOW_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Timestamp)
        .unwrap_or_else(|| SystemClock.now());
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wf: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(run(args, now)) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wf: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
