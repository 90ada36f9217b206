//! Every `wf` command against a store produced by a real run, through `--db` and `--url`.

mod common;

use common::{build_store, open_client, store_path, wf, wf_async, Output};
use workflow_cli::admin::{AdminOptions, AdminServer};
use workflow_core::{Event, Timestamp};

/// The read commands the test runs both ways, and what each output must show.
fn read_commands() -> Vec<(Vec<&'static str>, Vec<&'static str>)> {
    vec![
        (vec!["list"], vec!["WORKFLOW ID", "order-1 ", "order-1/shipping", "import-1", "reminder-1", "approval-1"]),
        (vec!["list", "--status", "failed"], vec!["order-1 ", "order-1/shipping", "failed"]),
        (vec!["list", "--type", "reminder"], vec!["reminder-1", "cancelled"]),
        (vec!["list", "--limit", "2"], vec!["WORKFLOW ID"]),
        (
            vec!["describe", "order-1"],
            vec![
                "Status       failed",
                "ChildWorkflowFailed",
                "no carrier serves this address",
                "flaky_fetch  3         completed",
                "order-1/shipping  shipping  failed",
            ],
        ),
        (
            vec!["describe", "import-1"],
            vec![
                "Status       running",
                "Pending activities:",
                "always_fails  2        retry in 59m",
                "Upstream503: the import API is down",
                r#"{"row":7}"#,
                " ago",
            ],
        ),
        (vec!["describe", "order-1/shipping"], vec!["Parent       order-1 (run ", "NoCarrier"]),
        (vec!["describe", "reminder-1"], vec!["Status       cancelled"]),
        (
            vec!["history", "order-1"],
            vec![
                "ID  TIME",
                "WorkflowStarted",
                "order input 21",
                "ActivityStarted",
                "seq 0 attempt 3 on test-worker",
                "ActivityCompleted",
                "seq 0 result 42",
                "ChildWorkflowInitiated",
                "ChildWorkflowFailed",
                "WorkflowFailed",
            ],
        ),
        (
            vec!["history", "reminder-1"],
            vec!["TimerStarted", "CancelRequested", "no longer needed", "WorkflowCancelled"],
        ),
        (vec!["history", "order-1", "--json"], vec![r#""type":"WorkflowStarted""#]),
        (
            vec!["attempts", "order-1"],
            vec![
                "SEQ  ACTIVITY",
                "flaky_fetch  1",
                "failed: Upstream503: attempt 1: service unavailable",
                r#"{"attempt":2,"rows":20}"#,
                "completed",
                "test-worker",
            ],
        ),
        (vec!["attempts", "import-1"], vec!["always_fails  1", r#"{"row":7}"#]),
        (vec!["tree", "order-1/shipping"], vec!["order-1 (order) failed", "└─ order-1/shipping (shipping) failed *"]),
        (vec!["tree", "order-1"], vec!["order-1 (order) failed *", "order-1/shipping"]),
        (
            vec!["list", "--json", "--type", "reminder"],
            vec![r#""workflow_id": "reminder-1""#, r#""status": "cancelled""#],
        ),
        (vec!["describe", "order-1", "--json"], vec![r#""status": "failed""#, "NoCarrier"]),
        (vec!["attempts", "order-1", "--json"], vec![r#""activity_type": "flaky_fetch""#, r#""outcome": "completed""#]),
        (vec!["tree", "order-1", "--json"], vec!["order-1/shipping"]),
    ]
}

/// Every file under `dir` with its bytes and modification time.
fn files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>, std::time::SystemTime)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((
                path.clone(),
                std::fs::read(&path).unwrap(),
                std::fs::metadata(&path).unwrap().modified().unwrap(),
            ));
        }
    }
    out.sort();
    out
}

fn check(args: &[&str], out: &Output, expected: &[&str]) {
    assert_eq!(out.code, 0, "wf {args:?} failed: {}", out.stderr);
    for e in expected {
        assert!(out.stdout.contains(e), "wf {args:?}: expected {e:?} in\n{}", out.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_commands_print_the_same_through_db_and_url() {
    let dir = tempfile::tempdir().unwrap();
    let now = build_store(dir.path()).await;
    let db = store_path(dir.path()).display().to_string();
    let before = files(&store_path(dir.path()));

    let mut by_db = Vec::new();
    for (cmd, expected) in read_commands() {
        let mut args = vec!["--db", db.as_str()];
        args.extend(&cmd);
        let out = wf(now, &args);
        println!("$ wf {}\n{}", cmd.join(" "), out.stdout);
        check(&args, &out, &expected);
        by_db.push(out);
    }
    // Reading wrote nothing: every file of the store has its bytes and modification time.
    assert!(before.len() >= 3, "{before:?}");
    assert!(files(&store_path(dir.path())) == before, "a read-only wf --db command changed the store's files");
    // A store that is not there is a usage error, and is not created.
    let missing = dir.path().join("no-store-here");
    let out = wf(now, &["--db", &missing.display().to_string(), "list"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(!missing.exists());

    let list = &by_db[0].stdout;
    assert_eq!(list.lines().count(), 6, "a header and five runs:\n{list}");
    assert_eq!(by_db[3].stdout.lines().count(), 3, "--limit 2:\n{}", by_db[3].stdout);
    assert_eq!(by_db[14].stdout.lines().count(), 2, "a parent and its child:\n{}", by_db[14].stdout);

    // The JSON forms read back as the data they show.
    let runs: Vec<workflow_core::store::RunInfo> = serde_json::from_str(&by_db[15].stdout).unwrap();
    assert_eq!(runs.iter().map(|r| r.workflow_id.as_str()).collect::<Vec<_>>(), vec!["reminder-1"]);
    let attempts: Vec<workflow_core::store::AttemptRecord> = serde_json::from_str(&by_db[17].stdout).unwrap();
    assert_eq!(attempts.len(), 3, "three attempts of flaky_fetch");

    // The JSON history is the stored history, event for event.
    let client = open_client(dir.path());
    let json: Vec<Event> = serde_json::from_str(&by_db[10].stdout).unwrap();
    assert_eq!(json, client.history("order-1").await.unwrap());

    // While this process holds the store, --db says so and points at --url.
    let held = wf(now, &["--db", &db, "list"]);
    assert_eq!(held.code, 3, "{held:?}");
    assert!(held.stderr.contains("in use by another process") && held.stderr.contains("--url"), "{}", held.stderr);
    assert_eq!(held.stderr.lines().count(), 1, "one line: {}", held.stderr);

    let admin = AdminServer::serve(client, "127.0.0.1:0".parse().unwrap(), AdminOptions::default()).await.unwrap();
    let url = admin.url();
    for ((cmd, _), db_out) in read_commands().into_iter().zip(&by_db) {
        let mut args = vec!["--url".to_string(), url.clone()];
        args.extend(cmd.iter().map(|s| s.to_string()));
        let out = wf_async(now, args).await;
        assert_eq!(&out, db_out, "wf {cmd:?} differs between --db and --url");
    }

    // Writes are refused by a read-only endpoint.
    let refused = wf_async(now, vec!["--url".into(), url.clone(), "cancel".into(), "import-1".into()]).await;
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(refused.stderr.contains("read-only"), "{}", refused.stderr);
    // An empty or invisible id is a usage error, the same through --db and --url.
    for bad in ["", "a\u{202E}b"] {
        let by_url = wf_async(now, vec!["--url".into(), url.clone(), "describe".into(), bad.into()]).await;
        let by_db = wf(now, &["--db", &db, "describe", bad]);
        assert_eq!((by_url.code, by_db.code), (2, 2), "{by_url:?} {by_db:?}");
    }
    let missing = wf_async(now, vec!["--url".into(), url.clone(), "describe".into(), "nope".into()]).await;
    assert_eq!(missing.code, 1, "{missing:?}");
    assert_eq!(missing.stderr.trim(), r#"wf: workflow "nope" not found"#);
    admin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_commands_work_through_db_and_url() {
    let dir = tempfile::tempdir().unwrap();
    let now = build_store(dir.path()).await;
    let db = store_path(dir.path()).display().to_string();

    let out = wf(now, &["--db", &db, "signal", "approval-1", "approve", "--json", r#"{"by":"ana"}"#]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "signal \"approve\" sent to \"approval-1\"\n"), "{out:?}");
    let out = wf(now, &["--db", &db, "cancel", "import-1", "--reason", "operator"]);
    assert_eq!(out.code, 0, "{out:?}");
    let history = wf(now, &["--db", &db, "history", "approval-1"]);
    assert!(
        history.stdout.contains("SignalReceived") && history.stdout.contains(r#"approve {"by":"ana"}"#),
        "{}",
        history.stdout
    );
    let history = wf(now, &["--db", &db, "history", "import-1"]);
    assert!(
        history.stdout.lines().any(|l| l.contains("CancelRequested") && l.ends_with("operator")),
        "{}",
        history.stdout
    );
    let out = wf(now, &["--db", &db, "terminate", "reminder-1", "--reason", "x"]);
    assert_eq!(out.code, 3, "already closed: {out:?}");
    assert!(out.stderr.contains("already finished (cancelled)"), "{}", out.stderr);

    let admin = AdminServer::serve(
        open_client(dir.path()),
        "127.0.0.1:0".parse().unwrap(),
        AdminOptions::default().allow_writes(true),
    )
    .await
    .unwrap();
    let url = admin.url();
    let token = admin.token().expect("an endpoint with writes has a token").to_string();
    // Without the token, a write is refused (401, in the documented JSON), and changes nothing.
    let out = wf_async(now, vec!["--url".into(), url.clone(), "cancel".into(), "approval-1".into()]).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("needs its token"), "{}", out.stderr);
    let wrong = wf_async(
        now,
        vec!["--url".into(), url.clone(), "--token".into(), "nope".into(), "cancel".into(), "approval-1".into()],
    )
    .await;
    assert_eq!(wrong.code, 3, "a wrong token is refused: {wrong:?}");
    // Reads on loopback need no token.
    let out = wf_async(now, vec!["--url".into(), url.clone(), "describe".into(), "approval-1".into()]).await;
    assert!(out.stdout.contains("Status       running"), "{out:?}");
    let run = |args: &[&str]| {
        let mut v = vec!["--url".to_string(), url.clone(), "--token".to_string(), token.clone()];
        v.extend(args.iter().map(|s| s.to_string()));
        wf_async(now, v)
    };
    let out = run(&["signal", "approval-1", "approve", "--json", "7"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let out = run(&["terminate", "approval-1", "--reason", "done by hand"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let out = run(&["describe", "approval-1"]).await;
    assert!(out.stdout.contains("Status       terminated"), "{}", out.stdout);
    assert!(out.stdout.contains("Terminated: done by hand"), "{}", out.stdout);
    let out = run(&["signal", "approval-1", "approve", "--json", "{not json"]).await;
    assert_eq!(out.code, 2, "bad payload is a usage error: {out:?}");
    let out = run(&["cancel", "nope"]).await;
    assert_eq!(out.code, 1, "{out:?}");

    // Reset through the endpoint: a terminated run re-run from its first events.
    let out = run(&["reset", "approval-1", "--event", "1", "--reason", "start over"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("\"approval-1\" reset: new run "), "{}", out.stdout);
    let out = run(&["history", "approval-1"]).await;
    assert!(out.stdout.contains("at its event 1: start over"), "{}", out.stdout);
    // A point past the end is a usage error; a reset needs writes and the token.
    let out = run(&["reset", "order-1", "--event", "999", "--reason", "x"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("choose an event from 1 to"), "{}", out.stderr);
    let out = wf_async(
        now,
        vec![
            "--url".into(),
            url.clone(),
            "reset".into(),
            "order-1".into(),
            "--before-failure".into(),
            "--reason".into(),
            "x".into(),
        ],
    )
    .await;
    assert_eq!(out.code, 3, "no token: {out:?}");
    admin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_one_history_file_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let now = build_store(dir.path()).await;
    let db = store_path(dir.path()).display().to_string();
    let out = dir.path().join("histories");
    let o = wf(now, &["--db", &db, "export", "--out", &out.display().to_string()]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, format!("5 histories written to {}\n", out.display()));
    let mut names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names.len(), 5);
    assert!(names.iter().any(|n| n.starts_with("order-1_shipping--")), "{names:?}");
    let client = open_client(dir.path());
    let order = names.iter().find(|n| n.starts_with("order-1--")).unwrap();
    let events: Vec<Event> = serde_json::from_str(&std::fs::read_to_string(out.join(order)).unwrap()).unwrap();
    assert_eq!(events, client.history("order-1").await.unwrap());
    drop(client);
    let failed = dir.path().join("failed");
    let o = wf(now, &["--db", &db, "export", "--status", "failed", "--out", &failed.display().to_string()]);
    assert!(o.stdout.starts_with("2 histories"), "{o:?}");
    // A store is needed: the endpoint does not serve whole stores.
    let o = wf(now, &["--url", "http://127.0.0.1:9", "export", "--out", "x"]);
    assert_eq!(o.code, 2, "{o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_through_db() {
    let dir = tempfile::tempdir().unwrap();
    let now = build_store(dir.path()).await;
    let db = store_path(dir.path()).display().to_string();
    // The point is required.
    let out = wf(now, &["--db", &db, "reset", "order-1", "--reason", "x"]);
    assert_eq!(out.code, 2, "{out:?}");
    // A cancelled run did not fail: say so, and what to give instead.
    let out = wf(now, &["--db", &db, "reset", "reminder-1", "--before-failure", "--reason", "x"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("give the event to reset to"), "{}", out.stderr);
    // A child whose parent is closed; then its failed parent, from before the child's failure.
    let out = wf(now, &["--db", &db, "reset", "order-1", "--before-failure", "--reason", "carrier added"]);
    assert_eq!(out.code, 0, "{out:?}");
    let new_run = out.stdout.trim().rsplit(' ').next().unwrap().to_string();
    let out = wf(now, &["--db", &db, "describe", "order-1"]);
    assert!(out.stdout.contains(&new_run) && out.stdout.contains("Status       running"), "{}", out.stdout);
    let out = wf(now, &["--db", &db, "history", "order-1"]);
    assert!(out.stdout.contains("reset from run") && out.stdout.contains("carrier added"), "{}", out.stdout);
    // The completed activity of the old run is kept, not scheduled again.
    assert!(out.stdout.contains("ActivityCompleted"), "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_beyond_loopback_needs_the_token_for_reads_too() {
    let dir = tempfile::tempdir().unwrap();
    let now = build_store(dir.path()).await;
    // 0.0.0.0: every interface. A token is generated (and a warning printed).
    let admin = AdminServer::serve(open_client(dir.path()), "0.0.0.0:0".parse().unwrap(), AdminOptions::default())
        .await
        .unwrap();
    let token = admin.token().expect("a token is generated").to_string();
    assert!(token.len() >= 32);
    let url = format!("http://127.0.0.1:{}", admin.local_addr().port());
    let out = wf_async(now, vec!["--url".into(), url.clone(), "list".into()]).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("needs its token"), "{}", out.stderr);
    let out = wf_async(now, vec!["--url".into(), url.clone(), "--token".into(), token, "list".into()]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("approval-1"), "{}", out.stdout);
    // Errors are JSON, also for a route that does not exist.
    let body = reqwest::get(format!("{url}/api/nothing")).await.unwrap();
    assert_eq!(body.status(), 401, "unauthenticated requests learn nothing, not even which routes exist");
    let http = reqwest::Client::new();
    for (method, path, status) in [("GET", "/api/nothing", 404), ("DELETE", "/api/runs", 405)] {
        let r = http
            .request(method.parse().unwrap(), format!("{url}{path}"))
            .bearer_auth(admin.token().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        let body: serde_json::Value = r.json().await.expect("a JSON error body");
        assert!(body["code"].is_string() && body["message"].is_string(), "{body}");
    }
    admin.shutdown().await;
}

#[test]
fn usage_errors_are_one_line_with_exit_code_2() {
    let now = Timestamp(0);
    let out = wf(now, &["list"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--db PATH") && out.stderr.lines().count() == 1, "{}", out.stderr);
    let out = wf(now, &["--db", "x", "frobnicate"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    let out = wf(now, &["--db", "/nonexistent/store", "list"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("no store at /nonexistent/store"), "{}", out.stderr);
    for cmd in ["list", "describe", "history", "attempts", "tree", "cancel", "terminate", "signal"] {
        let out = wf(now, &[cmd, "--help"]);
        assert_eq!(out.code, 0, "{cmd} --help: {out:?}");
        assert!(out.stdout.contains("Usage: wf"), "{cmd} --help: {}", out.stdout);
    }
    let out = wf(now, &["--help"]);
    assert!(out.stdout.contains("Exit codes"), "{}", out.stdout);
}

#[test]
fn unreachable_endpoint_is_reported_in_one_line() {
    // Port 1 on loopback: nothing listens there in a test sandbox.
    let out = wf(Timestamp(0), &["--url", "http://127.0.0.1:1", "list"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.starts_with("wf: cannot reach the admin endpoint at http://127.0.0.1:1/"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

/// Writes the fixture store to `$WF_FIXTURE_DIR/db` for a manual session (the book's
/// "when something goes wrong" section): `WF_FIXTURE_DIR=/tmp/fx cargo test -p workflow-cli
/// --test wf -- --ignored keep_fixture_store`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes a store for a manual session"]
async fn keep_fixture_store() {
    let dir = std::path::PathBuf::from(std::env::var("WF_FIXTURE_DIR").expect("set WF_FIXTURE_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    build_store(&dir).await;
    let runs = open_client(&dir).list(&Default::default()).await.unwrap();
    assert_eq!(runs.len(), 5, "the fixture holds the five runs the session shows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wf_ui_serves_a_store_read_only() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path()).await;
    let db = store_path(dir.path());
    let before = files(&db);
    /// Kills the server however the test ends.
    struct Server(std::process::Child);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Server(
        std::process::Command::new(env!("CARGO_BIN_EXE_wf"))
            .args(["--db", &db.display().to_string(), "ui", "--addr", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains(", read-only; Ctrl-C stops"), "{line}");
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().trim_end_matches(',').to_string();
    let http = reqwest::Client::new();
    let list = http.get(&url).send().await.unwrap();
    assert_eq!(list.status(), 200);
    let list = list.text().await.unwrap();
    assert!(list.contains("order-1/shipping") && list.contains("failed"), "{list}");
    let page = http.get(format!("{url}runs/order-1")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("NoCarrier") && page.contains("timeline-svg"), "{page}");
    let download = http.get(format!("{url}runs/order-1/history.json")).send().await.unwrap();
    let events: Vec<Event> = serde_json::from_str(&download.text().await.unwrap()).unwrap();
    assert_eq!(events[0].id, 1);
    // Read-only: no actions offered, and a post is refused.
    assert!(!page.contains("Request cancellation"));
    let post = http.post(format!("{url}runs/import-1/cancel")).form(&[("reason", "x")]).send().await.unwrap();
    assert_eq!(post.status(), 403);
    let missing = http.get(format!("{url}runs/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("workflow &quot;nope&quot; not found"));
    drop(child);
    let after = files(&db);
    let changed: Vec<String> = after
        .iter()
        .zip(&before)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("{} ({} -> {} bytes, {:?} -> {:?})", a.0.display(), b.1.len(), a.1.len(), b.2, a.2))
        .collect();
    assert!(
        after.len() == before.len() && changed.is_empty(),
        "wf ui without --allow-writes changed the store's files: {changed:?}"
    );
}
