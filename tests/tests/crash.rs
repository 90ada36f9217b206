//! Crash tests: run the crash workload in a child process, kill it (after the k-th durable
//! store write for every k, and at seeded random times with SIGKILL), recover in a new
//! process, and check that nothing acknowledged was lost and nothing was recorded twice.
//!
//! Set `CRASH_SEED` to replay a run; the seed and the figures are printed (`--nocapture`).
//!
//! The same test runs on PostgreSQL (a fresh schema per case) when a test server is found
//! (see `workflow_store_postgres::testing`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tests::crash::{acks_path, execs_path, expected, read_lines, store_path, WORKLOAD};
use workflow_core::history::{check_invariants, EventKind};
use workflow_core::store::{RunFilter, RunInfo, RunStatus, Store};
use workflow_core::Event;
use workflow_store_postgres::{testing, PostgresStore};
use workflow_store_sled::SledStore;

/// How long one harness process may take before the test calls it hung (and prints the
/// harness's log, which holds the engine's warnings). A hang here found a real bug on
/// 2026-12-06 (a PostgreSQL group's write sent after its COMMIT on a fresh connection).
const HARNESS_TIMEOUT: Duration = Duration::from_secs(90);

/// The two crash tests take turns: each kills and restarts processes hundreds of times, and
/// on two cores they starve each other's timing.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Default)]
struct Figures {
    kill_points: usize,
    write_kills: usize,
    signal_kills: usize,
    recoveries: usize,
    checks: usize,
    violations: Vec<String>,
}

/// One crash case: a folder (logs, and the sled store) and, on PostgreSQL, its schema.
struct Case {
    dir: PathBuf,
    pg: Option<(String, String)>,
}

impl Case {
    async fn open(&self) -> Result<Arc<dyn Store>, workflow_core::StoreError> {
        Ok(match &self.pg {
            Some((url, schema)) => {
                Arc::new(PostgresStore::builder(url.as_str()).schema(schema.as_str()).listen(false).connect().await?)
            }
            None => Arc::new(SledStore::open(store_path(&self.dir))?),
        })
    }
}

fn spawn(case: &Case, kill_after: Option<u64>) -> Child {
    let dir = &case.dir;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("harness.log")).expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crash_workload"));
    cmd.arg(dir).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
    if let Some((url, schema)) = &case.pg {
        cmd.env("CRASH_PG_URL", url).env("CRASH_PG_SCHEMA", schema);
    }
    match kill_after {
        Some(k) => cmd.env("KILL_AFTER_WRITES", k.to_string()),
        None => cmd.env_remove("KILL_AFTER_WRITES"),
    };
    cmd.spawn().expect("spawning the crash harness")
}

/// Waits for the child (killing it when it hangs); returns its status and stdout.
fn finish(child: Child, dir: &Path) -> (ExitStatus, String) {
    match wait_for(child) {
        Some(done) => done,
        None => {
            let log = std::fs::read_to_string(dir.join("harness.log")).unwrap_or_default();
            panic!("the harness hung for {HARNESS_TIMEOUT:?} in {}; its log:\n{log}", dir.display());
        }
    }
}

/// Waits for the child; kills it and returns `None` when it hangs.
fn wait_for(mut child: Child) -> Option<(ExitStatus, String)> {
    let deadline = Instant::now() + HARNESS_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for the harness") {
            let mut out = String::new();
            if let Some(mut s) = child.stdout.take() {
                use std::io::Read;
                let _ = s.read_to_string(&mut out);
            }
            return Some((status, out));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs the harness to completion without a kill: a recovery. Returns the writes it made.
fn recover(case: &Case, f: &mut Figures) -> u64 {
    let dir = &case.dir;
    let (status, out) = finish(spawn(case, None), dir);
    if !status.success() {
        let log = std::fs::read_to_string(dir.join("harness.log")).unwrap_or_default();
        panic!("recovery failed in {} ({status}); its log:\n{log}", dir.display());
    }
    f.recoveries += 1;
    out.split_whitespace().find_map(|w| w.strip_prefix("writes=")).and_then(|n| n.parse().ok()).unwrap_or(0)
}

type Snapshot = Vec<(RunInfo, Vec<Event>)>;

async fn snapshot(store: &Arc<dyn Store>) -> Snapshot {
    let mut out = Vec::new();
    for info in store.list_runs(&RunFilter::default()).await.expect("list_runs") {
        let h = store.read_history(&info.run_id, 0).await.expect("read_history");
        out.push((info, h));
    }
    out
}

/// Opens the store twice (both must work and agree) and checks every invariant.
fn verify(case: &Case, label: &str, f: &mut Figures) {
    let dir = &case.dir;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut bad = |what: String| f.violations.push(format!("[{label}] {what}"));
        let first = {
            let store = match case.open().await {
                Ok(s) => s,
                Err(e) => {
                    bad(format!("reopen failed: {e}"));
                    return;
                }
            };
            snapshot(&store).await
        };
        let store = match case.open().await {
            Ok(s) => s,
            Err(e) => {
                bad(format!("second reopen failed: {e}"));
                return;
            }
        };
        let second = snapshot(&store).await;
        f.checks += 1;
        if first != second {
            bad("a second reopen shows different runs or histories".into());
        }

        // Every acknowledged start is there; every acknowledged result is the right one.
        let want: BTreeMap<&str, u64> = WORKLOAD.iter().map(|&(id, kind, n)| (id, expected(kind, n))).collect();
        for line in read_lines(&acks_path(dir)) {
            let parts: Vec<&str> = line.split(' ').collect();
            f.checks += 1;
            match parts.as_slice() {
                ["start", id, run_id] => {
                    let run = store.get_run(&workflow_core::RunId(run_id.to_string())).await;
                    match run {
                        Ok(Some(info)) if info.workflow_id == *id => {}
                        other => bad(format!("acknowledged start of {id} (run {run_id}) is lost: {other:?}")),
                    }
                }
                ["done", id, v] => {
                    if want.get(id).map(|w| w.to_string()).as_deref() != Some(*v) {
                        bad(format!("acknowledged result of {id} is {v}, expected {:?}", want.get(id)));
                    }
                }
                _ => bad(format!("unreadable ack line {line:?}")),
            }
        }

        // Every workflow finished once, with the right result.
        for &(id, kind, n) in WORKLOAD {
            f.checks += 1;
            let runs: Vec<&RunInfo> = second.iter().map(|(i, _)| i).filter(|i| i.workflow_id == id).collect();
            if runs.len() != 1 {
                bad(format!("{id} has {} runs, expected 1", runs.len()));
                continue;
            }
            let info = runs[0];
            let result = info.result.as_ref().and_then(|p| p.decode::<u64>("result").ok());
            if info.status != RunStatus::Completed || result != Some(expected(kind, n)) {
                bad(format!("{id} ended {} with {result:?}, expected {}", info.status, expected(kind, n)));
            }
        }

        // Histories: well formed, each activity completed once and executed at least once.
        let executed: BTreeSet<String> =
            read_lines(&execs_path(dir)).iter().filter_map(|l| l.split(' ').nth(1).map(str::to_string)).collect();
        for (info, history) in &second {
            let run = &info.run_id;
            f.checks += 1;
            if info.status != RunStatus::Completed {
                bad(format!("run {run} ({}) is {}", info.workflow_id, info.status));
            }
            if let Err(e) = check_invariants(history) {
                bad(format!("history of {run} breaks an invariant: {e:?}"));
            }
            let mut scheduled = BTreeSet::new();
            let mut completed: BTreeMap<u32, usize> = BTreeMap::new();
            let mut fired: BTreeMap<u32, usize> = BTreeMap::new();
            for e in history {
                match &e.kind {
                    EventKind::ActivityScheduled { seq, .. } => {
                        scheduled.insert(*seq);
                    }
                    EventKind::ActivityCompleted { seq, .. } => {
                        *completed.entry(*seq).or_default() += 1;
                        f.checks += 1;
                        if !executed.contains(&format!("{run}/{seq}")) {
                            bad(format!("activity {run}/{seq} completed but never executed"));
                        }
                    }
                    EventKind::TimerFired { seq } => *fired.entry(*seq).or_default() += 1,
                    _ => {}
                }
            }
            for seq in &scheduled {
                f.checks += 1;
                match completed.get(seq).copied().unwrap_or(0) {
                    1 => {}
                    n => bad(format!("activity {run}/{seq} completed {n} times in the history")),
                }
            }
            for (seq, n) in fired {
                f.checks += 1;
                if n != 1 {
                    bad(format!("timer {run}/{seq} fired {n} times"));
                }
            }
            f.checks += 1;
            match store.list_tasks(run).await {
                Ok(t) if t.is_empty() => {}
                other => bad(format!("closed run {run} still has tasks: {other:?}")),
            }
        }
    });
}

#[test]
fn crash_at_every_write_and_at_random_times() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    crash_test(None, 2, 40, 300, 300);
}

/// The same on PostgreSQL.
#[test]
fn crash_at_every_write_and_at_random_times_on_postgres() {
    let Some(server) = testing::server() else { return };
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    crash_test(Some(server), 2, 40, 110, 100);
}

/// Kills after every write (`write_passes` passes; the second also crashes the recovery),
/// then at seeded random times: at least `min_random`, and on until `target` kill points.
fn crash_test(
    pg: Option<&testing::TestServer>,
    write_passes: usize,
    min_random: usize,
    target: usize,
    at_least: usize,
) {
    let seed = std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    }) | 1;
    let store_name = if pg.is_some() { "PostgreSQL" } else { "sled" };
    println!("crash test ({store_name}) seed: {seed} (set CRASH_SEED={seed} to replay)");
    let mut rng = Rng(seed);
    let mut f = Figures::default();
    let root = tempfile::tempdir().expect("temp dir");
    let mut schemas = Vec::new();
    let mut n = 0;
    let mut fresh = || {
        n += 1;
        let d = root.path().join(format!("case{n}"));
        std::fs::create_dir_all(&d).expect("case dir");
        let pg = pg.map(|s| (s.url().to_string(), s.fresh_schema("crash")));
        if let Some((_, schema)) = &pg {
            schemas.push(schema.clone());
        }
        Case { dir: d, pg }
    };

    // A run without a crash: how many writes a run makes, and how long it takes.
    let case = fresh();
    let started = Instant::now();
    let writes = recover(&case, &mut f);
    let duration = started.elapsed();
    verify(&case, "baseline", &mut f);
    assert!(writes >= 10, "the workload made only {writes} writes");
    println!("baseline: {writes} writes in {duration:?}");

    // Kill after the k-th write, for every k; in a second pass also crash the recovery.
    for pass in 0..write_passes {
        for k in 1..=writes + 2 {
            let case = fresh();
            let (status, _) = finish(spawn(&case, Some(k)), &case.dir);
            if status.success() {
                // This run made fewer than k writes: nothing was killed.
                continue;
            }
            f.kill_points += 1;
            f.write_kills += 1;
            if pass == 1 {
                let again = 1 + rng.below(writes / 2);
                let (status, _) = finish(spawn(&case, Some(again)), &case.dir);
                if !status.success() {
                    f.kill_points += 1;
                    f.write_kills += 1;
                }
            }
            recover(&case, &mut f);
            verify(&case, &format!("pass {pass}, killed after write {k}"), &mut f);
        }
    }

    // SIGKILL at seeded random times, anywhere in the run (including mid-flush).
    // A kill that lands after the run finished does not count, and how often that happens
    // depends on the machine's speed.
    let span = duration.as_millis() as u64 + 20;
    for i in 0..1_000 {
        if i >= min_random && f.kill_points >= target {
            break;
        }
        let case = fresh();
        let mut child = spawn(&case, None);
        let delay = rng.below(span);
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let (status, _) = finish(child, &case.dir);
        if status.success() {
            continue;
        }
        f.kill_points += 1;
        f.signal_kills += 1;
        recover(&case, &mut f);
        verify(&case, &format!("random kill {i} after {delay} ms"), &mut f);
    }

    println!(
        "crash test ({store_name}): seed {seed}, {} kill points ({} after a write, {} by SIGKILL at a random time), {} recoveries, {} checks, {} violations",
        f.kill_points,
        f.write_kills,
        f.signal_kills,
        f.recoveries,
        f.checks,
        f.violations.len()
    );
    if let Some(server) = pg {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            for schema in schemas {
                if let Ok(s) = PostgresStore::builder(server.url()).schema(schema).listen(false).connect().await {
                    let _ = s.destroy().await;
                }
            }
        });
    }
    assert!(f.violations.is_empty(), "violations (seed {seed}):\n{}", f.violations.join("\n"));
    assert!(f.kill_points >= at_least, "only {} kill points", f.kill_points);
}
