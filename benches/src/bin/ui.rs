//! How fast the web UI serves a run's page for long histories: a run of 10,000 and one of
//! 50,000 events (completed activities with their attempts, `testing::seed_long_run`) in a
//! `MemoryStore`, served by the admin endpoint on loopback, each page fetched `--rounds`
//! times (default 5); prints the median and the slowest time to the last byte, and the
//! page's size. Run in release mode: `cargo run --release -p benches --bin ui`; `--serve`
//! keeps serving afterwards, to open the pages in a browser.

use std::sync::Arc;
use std::time::{Duration, Instant};

use workflow_cli::admin::{AdminOptions, AdminServer};
use workflow_core::store::{MemoryStore, Store};
use workflow_core::testing::seed_long_run;
use workflow_core::{Client, Clock, SystemClock};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: usize =
        std::env::args().skip_while(|a| a != "--rounds").nth(1).map(|v| v.parse()).transpose()?.unwrap_or(5);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let sizes = [10_000u32, 50_000];
    for n in sizes {
        seed_long_run(&*store, &format!("long-{n}"), n, SystemClock.now()).await?;
    }
    let admin = AdminServer::serve(Client::new(store), "127.0.0.1:0".parse()?, AdminOptions::default()).await?;
    let http = reqwest::Client::new();
    println!("{:<34} {:>10} {:>10} {:>10}", "page", "median", "slowest", "size");
    for n in sizes {
        for (what, path) in [
            ("run page", format!("/ui/runs/long-{n}")),
            ("run page, last history page", format!("/ui/runs/long-{n}?events_page=1000")),
            ("history JSON download", format!("/ui/runs/long-{n}/history.json")),
        ] {
            let mut times: Vec<Duration> = Vec::new();
            let mut size = 0;
            for _ in 0..rounds {
                let started = Instant::now();
                let body = http.get(format!("{}{path}", admin.url())).send().await?.error_for_status()?.bytes().await?;
                times.push(started.elapsed());
                size = body.len();
            }
            times.sort();
            println!(
                "{:<34} {:>8.1}ms {:>8.1}ms {:>8.1}KB",
                format!("{what} ({n} events)"),
                times[times.len() / 2].as_secs_f64() * 1e3,
                times[times.len() - 1].as_secs_f64() * 1e3,
                size as f64 / 1024.0
            );
        }
    }
    if std::env::args().any(|a| a == "--serve") {
        println!("serving on {}/ui/ until Ctrl-C", admin.url());
        tokio::signal::ctrl_c().await?;
    }
    admin.shutdown().await;
    Ok(())
}
