//! The web UI end to end, in Debian's headless Chromium driven through chromedriver: a worker
//! runs small batches whose enrichment API is down for a while (so chunks retry, and some fail
//! for good), serves the admin endpoint with the UI, and the browser lists runs, filters the
//! failed ones, opens a chunk's page (timeline of its retried attempts, heartbeat details,
//! an event's JSON), and cancels a running batch. Screenshots go to
//! `target/ui-screenshots/` (and to the book's images with `WF_UPDATE_SCREENSHOTS=1`).
//!
//! Skipped with one line when chromium or chromedriver is missing, unless
//! `WORKFLOW_UI_REQUIRED=1` (as in CI), which makes that a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use batch_example::activities::{EnrichChunk, LoadCsvChunks, SaveChunk};
use batch_example::csv_chunks::generate_sample;
use batch_example::mock_api::{MockApi, MockApiOptions};
use batch_example::progress::Progress;
use batch_example::workflows::{BatchInput, BatchWorkflow, EnrichAndSaveWorkflow, LoadChunksWorkflow};
use fantoccini::{Client, ClientBuilder, Locator};
use tokio::net::TcpListener;
use workflow_cli::admin::{AdminOptions, AdminServer};
use workflow_core::store::{AttemptOutcome, MemoryStore, RunStatus, Store};
use workflow_core::testing::seed_long_run;
use workflow_core::{Clock, StartOptions, SystemClock, Worker, WorkerOptions};

const TOKEN: &str = "ui-test-token";

fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium =
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().map(PathBuf::from).find(|p| p.exists())?;
    let driver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())?;
    Some((chromium, driver))
}

/// A TCP forwarder on a fixed port, to take the enrichment API down and up again.
struct Switch {
    port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Switch {
    async fn new() -> Switch {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l); // nothing listens: connections are refused, as with an API that is down
        Switch { port, task: None }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn up(&mut self, to: &str) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        let target = to.trim_start_matches("http://").to_string();
        self.task = Some(tokio::spawn(async move {
            // The connections live in this task's set: taking the API down cuts them too.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                let target = target.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        }));
    }

    async fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn batch_input(dir: &Path, name: &str, rows: u64, chunk_size: u64, concurrency: u32) -> BatchInput {
    let input = dir.join(format!("{name}.csv"));
    generate_sample(&input, rows).unwrap();
    serde_json::from_value(serde_json::json!({
        "input": input,
        "chunk_size": chunk_size,
        "concurrency": concurrency,
        "batch_dir": dir.join(format!("out-{name}")),
    }))
    .unwrap()
}

struct Shots {
    dir: PathBuf,
    book: Option<PathBuf>,
}

impl Shots {
    fn new() -> Shots {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let dir = root.join("target").join("ui-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let book = (std::env::var("WF_UPDATE_SCREENSHOTS").as_deref() == Ok("1")).then(|| root.join("book/src/images"));
        Shots { dir, book }
    }

    async fn take(&self, c: &Client, name: &str) {
        let png = c.screenshot().await.unwrap();
        std::fs::write(self.dir.join(format!("{name}.png")), &png).unwrap();
        if let Some(book) = &self.book {
            std::fs::create_dir_all(book).unwrap();
            std::fs::write(book.join(format!("{name}.png")), &png).unwrap();
        }
    }
}

async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.unwrap()
}

async fn count(c: &Client, css: &str) -> usize {
    c.find_all(Locator::Css(css)).await.unwrap().len()
}

async fn scroll_to(c: &Client, id: &str) {
    c.execute("document.getElementById(arguments[0]).scrollIntoView();", vec![serde_json::json!(id)]).await.unwrap();
}

/// How long the current page took to load, by the browser's navigation timing.
async fn load_ms(c: &Client) -> f64 {
    let v = c
        .execute(
            "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime;",
            vec![],
        )
        .await
        .unwrap();
    v.as_f64().unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_in_a_real_browser() {
    let Some((chromium, driver)) = browser_binaries() else {
        if std::env::var("WORKFLOW_UI_REQUIRED").as_deref() == Ok("1") {
            panic!("WORKFLOW_UI_REQUIRED=1 but chromium or chromedriver is missing (apt-get install chromium chromium-driver)");
        }
        eprintln!("skipped: the browser tests need Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mock = MockApi::start(MockApiOptions::default().failure_rate(0.05)).await.unwrap();
    let mut api = Switch::new().await;

    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let progress = Progress::new();
    let mut worker = Worker::new(store.clone(), WorkerOptions::default().identity("ui-test-worker"));
    worker.register_workflow::<BatchWorkflow>().unwrap();
    worker.register_workflow::<LoadChunksWorkflow>().unwrap();
    worker.register_workflow::<EnrichAndSaveWorkflow>().unwrap();
    worker.register_activity(LoadCsvChunks::new(progress.clone())).unwrap();
    worker.register_activity(EnrichChunk::new(api.url()).progress(progress.clone())).unwrap();
    worker.register_activity(SaveChunk::new(progress.clone(), None)).unwrap();
    let worker = worker.start().unwrap();
    let client = worker.client();

    // Batch 1: the API is down for the first attempts, then up: every chunk retries once.
    client
        .start::<BatchWorkflow>("ui-retried", batch_input(dir.path(), "retried", 90, 30, 3), StartOptions::default())
        .await
        .unwrap();
    let chunk = "ui-retried/chunk-00000";
    wait_until("a failed enrich attempt", Duration::from_secs(60), || async {
        client
            .describe(chunk)
            .await
            .is_ok_and(|d| d.attempts.iter().any(|a| matches!(a.outcome, AttemptOutcome::Failed { .. })))
    })
    .await;
    api.up(&mock.url()).await;
    let summary = client.handle::<BatchWorkflow>("ui-retried").result().await.unwrap();
    assert!(summary.chunks_failed.is_empty(), "{summary:?}");

    // Batch 2: the API is down for good: its chunks fail after three attempts each.
    api.down().await;
    client
        .start::<BatchWorkflow>("ui-partial", batch_input(dir.path(), "partial", 40, 20, 2), StartOptions::default())
        .await
        .unwrap();
    let partial = client.handle::<BatchWorkflow>("ui-partial").result().await.unwrap();
    assert_eq!(partial.chunks_failed.len(), 2);
    // Batch 3: long (30 chunks, one at a time, each failing for a few seconds): cancelled from the UI.
    client
        .start::<BatchWorkflow>("ui-cancel", batch_input(dir.path(), "cancel", 300, 10, 1), StartOptions::default())
        .await
        .unwrap();
    // Long histories, to time the run page.
    for (id, events) in [("long-10k", 10_000), ("long-50k", 50_000)] {
        seed_long_run(&*store, id, events, SystemClock.now()).await.unwrap();
    }

    let admin = AdminServer::serve(
        client.clone(),
        "127.0.0.1:0".parse().unwrap(),
        AdminOptions::default().allow_writes(true).token(TOKEN),
    )
    .await
    .unwrap();
    let base = admin.url();

    // chromedriver on a free port, Chromium headless with a throwaway profile.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut chromedriver: Child = Command::new(&driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,1000",
                     format!("--user-data-dir={}", profile.path().display())]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut c = None;
    for _ in 0..100 {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => {
                c = Some(client);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let c = c.expect("chromedriver did not answer");
    let shots = Shots::new();
    let result = drive(&c, &base, &shots).await;
    let _ = c.close().await;
    let _ = chromedriver.kill();
    let _ = chromedriver.wait();
    result.unwrap();

    // The cancellation reached the batch.
    assert_eq!(client.describe("ui-cancel").await.unwrap().info.status, RunStatus::Cancelled);
    admin.shutdown().await;
    worker.shutdown().await;
    api.down().await;
    mock.stop().await;
}

async fn drive(c: &Client, base: &str, shots: &Shots) -> Result<(), String> {
    // The token once in the URL; the page keeps it in a cookie and drops it from the URL.
    c.goto(&format!("{base}/ui/?token={TOKEN}")).await.map_err(|e| e.to_string())?;
    let url = c.current_url().await.unwrap();
    assert_eq!(url.path(), "/ui/");
    assert_eq!(url.query(), None, "the token is not left in the address bar");
    assert_eq!(text_of(c, "h1").await, "Workflow runs");
    let all = text_of(c, "nav.counts a[href='/ui/']").await;
    assert!(all.starts_with("all "), "{all}");
    shots.take(c, "ui-runs").await;

    // Filter to the failed runs.
    c.find(Locator::Css("nav.counts a.s-failed")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("table.runs")).await.unwrap();
    let statuses: Vec<String> = {
        let mut v = Vec::new();
        for e in c.find_all(Locator::Css("table.runs tbody .badge")).await.unwrap() {
            v.push(e.text().await.unwrap());
        }
        v
    };
    // The partial batch's two chunks, and any chunk of the batch still running (its API is
    // down) that has failed by now.
    assert!(statuses.len() >= 2 && statuses.iter().all(|s| s == "failed"), "only failed runs: {statuses:?}");
    let ids = text_of(c, "table.runs tbody").await;
    assert!(ids.contains("ui-partial/chunk-00000") && ids.contains("ui-partial/chunk-00001"), "{ids}");
    assert!(c.current_url().await.unwrap().query().unwrap_or_default().contains("status=failed"));
    shots.take(c, "ui-runs-failed").await;

    // Search by id prefix.
    c.goto(&format!("{base}/ui/?q=ui-retried/chunk")).await.unwrap();
    assert_eq!(count(c, "table.runs tbody tr").await, 3);

    // A failed chunk: its failure chain, three failed attempts in one lane, heartbeats.
    c.goto(&format!("{base}/ui/")).await.unwrap();
    c.find(Locator::Css("nav.counts a.s-failed")).await.unwrap().click().await.unwrap();
    c.find(Locator::LinkText("ui-partial/chunk-00000")).await.map_err(|e| e.to_string())?.click().await.unwrap();
    c.wait().for_element(Locator::Css("#timeline-svg")).await.unwrap();
    assert!(text_of(c, "h1").await.starts_with("ui-partial/chunk-00000"));
    let failure = text_of(c, ".failure").await;
    assert!(failure.contains("ApiUnavailable"), "{failure}");
    assert_eq!(count(c, "#timeline-svg rect.b-failed").await, 3, "three failed attempts on the timeline");
    let lanes: Vec<String> = {
        let mut v = Vec::new();
        for r in c.find_all(Locator::Css("#timeline-svg rect.b-failed")).await.unwrap() {
            v.push(r.attr("y").await.unwrap().unwrap_or_default());
        }
        v
    };
    assert!(lanes.windows(2).all(|w| w[0] == w[1]), "the retries share a lane: {lanes:?}");
    let attempts = text_of(c, "table.attempts").await;
    assert_eq!(attempts.matches("failed: ApiUnavailable").count(), 3, "{attempts}");
    shots.take(c, "ui-run-failed-chunk").await;
    scroll_to(c, "timeline-h").await;
    shots.take(c, "ui-run-failed-chunk-timeline").await;

    // A retried chunk: a failed attempt, then a completed one, in one lane.
    c.goto(&format!("{base}/ui/runs/ui-retried%2Fchunk-00000")).await.unwrap();
    assert!(count(c, "#timeline-svg rect.b-failed").await >= 1);
    assert!(count(c, "#timeline-svg rect.b-ok").await >= 1);
    let title = c.find(Locator::Css("#timeline-svg rect.b-failed title")).await.unwrap().html(true).await.unwrap();
    assert!(title.contains("enrich_chunk") && title.contains("attempt 1"), "{title}");
    // The completed attempt's last heartbeat: how far it got.
    let attempts = text_of(c, "table.attempts").await;
    assert!(attempts.contains("\"processed\":30"), "heartbeat details: {attempts}");
    // The history: open an event and read its payload.
    c.find(Locator::Css("#ev-2 summary")).await.unwrap().click().await.unwrap();
    let json = text_of(c, "#ev-2 pre").await;
    assert!(
        json.contains("\"type\": \"ActivityScheduled\"") && json.contains("\"activity_type\": \"enrich_chunk\""),
        "{json}"
    );
    scroll_to(c, "timeline-h").await;
    shots.take(c, "ui-run-retried-chunk").await;
    // Zoom the timeline in.
    c.find(Locator::Css("button[data-zoom='in']")).await.unwrap().click().await.unwrap();
    let width = c.execute("return document.getElementById('timeline-svg').style.width;", vec![]).await.unwrap();
    assert_eq!(width.as_str(), Some("200%"));

    // The parent batch: its children, their counts and progress.
    c.goto(&format!("{base}/ui/runs/ui-partial")).await.unwrap();
    let children = text_of(c, "#children-h").await;
    assert!(children.starts_with("Children ("), "{children}");
    let first = text_of(c, "section[aria-labelledby='children-h'] tbody tr:first-child").await;
    assert!(first.contains("failed"), "failed children first: {first}");
    shots.take(c, "ui-run-batch").await;

    // Cancel the long batch, confirm, and see its status change.
    c.goto(&format!("{base}/ui/runs/ui-cancel")).await.unwrap();
    let reason =
        c.find(Locator::Css("form[action$='/cancel'] input[name='reason']")).await.map_err(|e| e.to_string())?;
    reason.send_keys("stopped from the UI test").await.unwrap();
    c.find(Locator::Css("form[action$='/cancel'] button")).await.unwrap().click().await.unwrap();
    c.accept_alert().await.map_err(|e| format!("the confirmation: {e}"))?;
    c.wait().for_element(Locator::Css(".notice")).await.unwrap();
    assert_eq!(text_of(c, ".notice").await, "Cancellation requested.");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        c.refresh().await.unwrap();
        if text_of(c, "h1 .badge").await == "cancelled" {
            break;
        }
        assert!(Instant::now() < deadline, "the batch did not end cancelled");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let history = text_of(c, "table.events").await;
    assert!(history.contains("CancelRequested") && history.contains("stopped from the UI test"), "{history}");
    shots.take(c, "ui-run-cancelled").await;

    // Long histories: how long the run page takes to load (printed, not asserted).
    for id in ["long-10k", "long-50k"] {
        let started = Instant::now();
        c.goto(&format!("{base}/ui/runs/{id}")).await.unwrap();
        let wall = started.elapsed();
        let load = load_ms(c).await;
        let events = text_of(c, "#history-h + p").await;
        println!(
            "run page of {id}: {events} load event after {load:.0} ms (navigation {:.0} ms)",
            wall.as_secs_f64() * 1000.0
        );
        assert!(
            events.starts_with(if id == "long-10k" { "10000 events" } else { "49999 events" })
                || events.contains("events"),
            "{events}"
        );
        c.find(Locator::Css("button[data-zoom='in']")).await.unwrap().click().await.unwrap();
    }
    scroll_to(c, "timeline-h").await;
    shots.take(c, "ui-run-long").await;

    // A phone's width.
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{base}/ui/")).await.unwrap();
    let overflow =
        c.execute("return document.documentElement.scrollWidth <= window.innerWidth + 1;", vec![]).await.unwrap();
    assert_eq!(overflow.as_bool(), Some(true), "the runs list fits a phone's width (tables scroll inside)");
    shots.take(c, "ui-runs-phone").await;
    Ok(())
}
