//! The workload runner: runs W1 to W5 and replay and prints a markdown table.
//!
//! ```text
//! cargo run --release -p benches --bin workloads                  # full sizes
//! cargo run --release -p benches --bin workloads -- --quick       # small sizes (CI)
//! cargo run --release -p benches --bin workloads -- --only w1,w2 --store sled  # some
//! cargo run --release -p benches --bin workloads -- --only w2 --workflows 10000 # sizes
//! cargo run --release -p benches --bin workloads -- --only w1,w2 --store postgres # PostgreSQL
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use benches::measure::{markdown, Row};
use benches::stores::StoreKind;
#[cfg(feature = "batch")]
use benches::workloads::batch;
use benches::workloads::{parked, recovery, replay, sequential, throughput, Sizes};

const USAGE: &str =
    "usage: workloads [--quick] [--only w1,w2,w3,w4,w5,replay] [--store memory|sled|postgres] [--steps N] [--workflows N]";
const ALL: [&str; 6] = ["w1", "w2", "w3", "w4", "w5", "replay"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let result = if args.first().map(String::as_str) == Some("__child") {
        rt.block_on(child(&args[1..]))
    } else {
        rt.block_on(runner(&args))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn runner(args: &[String]) -> anyhow::Result<()> {
    let mut quick = false;
    let mut only: Vec<String> = ALL.iter().map(|s| s.to_string()).collect();
    let mut stores: Vec<StoreKind> = StoreKind::ALL.to_vec();
    let mut steps: Option<u64> = None;
    let mut workflows: Option<u64> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--only" => {
                let list = it.next().ok_or_else(|| anyhow::anyhow!("--only needs a list\n{USAGE}"))?;
                only = list.split(',').map(|s| s.trim().to_lowercase()).collect();
                if let Some(bad) = only.iter().find(|w| !ALL.contains(&w.as_str())) {
                    anyhow::bail!("unknown workload {bad:?}\n{USAGE}");
                }
            }
            "--store" => {
                let name = it.next().ok_or_else(|| anyhow::anyhow!("--store needs a name\n{USAGE}"))?;
                let kind = StoreKind::parse(name).ok_or_else(|| anyhow::anyhow!("unknown store {name:?}\n{USAGE}"))?;
                stores = vec![kind];
            }
            "--steps" | "--workflows" => {
                let n = it.next().and_then(|v| v.replace('_', "").parse::<u64>().ok()).filter(|n| *n > 0);
                let n = n.ok_or_else(|| anyhow::anyhow!("{a} needs a positive number\n{USAGE}"))?;
                if a == "--steps" {
                    steps = Some(n);
                } else {
                    workflows = Some(n);
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let mut sizes = if quick { Sizes::quick() } else { Sizes::full() };
    // --steps sizes W1 (sequential activities); --workflows sizes W2.
    sizes.w1_activities = steps.unwrap_or(sizes.w1_activities);
    sizes.w2_workflows = workflows.unwrap_or(sizes.w2_workflows);
    let wants = |w: &str| only.iter().any(|o| o == w);
    let mut rows: Vec<Row> = Vec::new();
    let began = Instant::now();
    for &kind in &stores {
        if wants("w1") {
            step(&mut rows, "W1", kind, sequential::run(kind, sizes.w1_activities).await)?;
        }
        if wants("w2") {
            step(&mut rows, "W2", kind, throughput::run(kind, sizes.w2_workflows).await)?;
        }
    }
    if wants("w3") && stores.contains(&StoreKind::SledDurable) {
        #[cfg(feature = "batch")]
        step(&mut rows, "W3", StoreKind::SledDurable, batch::run(sizes.w3_rows, sizes.w3_large_rows).await)?;
        #[cfg(not(feature = "batch"))]
        rows.push(Row::new("W3 batch", "-", "skipped: built without the `batch` feature", "-"));
    }
    // W4 and W5 measure a process's memory and a crash of an embedded store: memory and sled.
    let stores: Vec<StoreKind> = stores.into_iter().filter(|k| *k != StoreKind::Postgres).collect();
    for &kind in &stores {
        if wants("w4") {
            step(&mut rows, "W4", kind, parked::run(kind, sizes.w4_parked).await)?;
        }
    }
    for &kind in &stores {
        if wants("w5") {
            step(&mut rows, "W5", kind, recovery::run(kind, sizes.w5_workflows).await)?;
        }
    }
    if wants("replay") {
        step(&mut rows, "Replay", StoreKind::Memory, replay::run(&sizes.replay_events).await)?;
    }
    eprintln!("all done in {:.1} s", began.elapsed().as_secs_f64());
    if quick {
        println!("(--quick: small sizes, targets not judged)\n");
    }
    print!("{}", markdown(&rows, !quick));
    Ok(())
}

fn step(rows: &mut Vec<Row>, name: &str, kind: StoreKind, r: anyhow::Result<Vec<Row>>) -> anyhow::Result<()> {
    let r = r.map_err(|e| e.context(format!("{name} on {}", kind.name())))?;
    for row in &r {
        eprintln!("{name:>6} {:>6}  {}: {}", row.store, row.metric, row.value);
    }
    rows.extend(r);
    Ok(())
}

/// Hidden subcommands run by the runner in child processes (W4 measures its own memory, W5
/// is killed).
async fn child(args: &[String]) -> anyhow::Result<()> {
    match args {
        [w, kind, n, dir] if w == "w4" => {
            let kind = StoreKind::parse(kind).ok_or_else(|| anyhow::anyhow!("unknown store {kind:?}"))?;
            let report = parked::child(kind, n.parse()?, &PathBuf::from(dir)).await?;
            println!("{}", serde_json::to_string(&report)?);
            // Skip dropping a large store: the figures are out.
            std::process::exit(0);
        }
        [w, n, dir] if w == "w5" => recovery::child(n.parse()?, &PathBuf::from(dir)).await,
        _ => anyhow::bail!("unknown child command {args:?}"),
    }
}
