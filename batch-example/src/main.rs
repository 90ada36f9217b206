//! `cargo run -p batch-example`: the CSV enrichment batch. See the crate docs and `--help`.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use batch_example::{app, cli::Args, display::Display};

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let display = Display::new();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,batch_example=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(display.log_writer())
        .with_target(false)
        .with_ansi(display.is_tty())
        .init();
    match app::run(args, display).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
