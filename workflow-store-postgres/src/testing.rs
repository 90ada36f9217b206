//! A PostgreSQL server for tests, found or started the same way everywhere.
//!
//! 1. `WORKFLOW_TEST_PG_URL`, when set, names the server (`postgres://user@127.0.0.1:5432/db`).
//! 2. Otherwise a throwaway cluster is made with the `initdb` and `postgres` found on the
//!    machine (on `PATH` or in `/usr/lib/postgresql/*/bin`, as Debian's `postgresql` package
//!    installs them), in a temporary folder, on a free port, listening on 127.0.0.1 only.
//!    It stops and its folder is removed when the test process exits, even by a crash.
//! 3. Otherwise [`server`] returns `None` after printing one line saying why the PostgreSQL
//!    tests are skipped, unless `WORKFLOW_PG_REQUIRED=1`, in which case it panics.
//!
//! Each test takes a schema of its own ([`TestServer::store`]), so tests run in parallel on
//! one server without seeing each other.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::{PostgresStore, PostgresStoreBuilder};

/// A server tests can use.
#[derive(Debug)]
pub struct TestServer {
    url: String,
    /// The throwaway cluster's watchdog; it stops the server when this process ends.
    _cluster: Option<Mutex<Child>>,
}

impl TestServer {
    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A schema name no other test in any process uses.
    pub fn fresh_schema(&self, tag: &str) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let tag: String = tag.chars().filter(|c| c.is_ascii_alphanumeric()).take(16).collect::<String>().to_lowercase();
        format!("wft_{tag}_{}_{n}", std::process::id())
    }

    /// Options for a store in a fresh schema of its own.
    pub fn builder(&self, tag: &str) -> PostgresStoreBuilder {
        PostgresStore::builder(self.url.clone()).schema(self.fresh_schema(tag)).pool_size(4)
    }

    /// Creates a fresh database and returns its URL, for tests that hand a URL to another
    /// process (which then uses the default `public` schema). Drop it with
    /// [`TestServer::drop_database`].
    pub async fn create_database(&self, tag: &str) -> String {
        let name = self.fresh_schema(tag);
        let (client, conn) = self.connect_admin().await;
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("CREATE DATABASE");
        drop(client);
        let _ = conn.await;
        let mut config: tokio_postgres::Config = self.url.parse().expect("test URL parses");
        config.dbname(&name);
        url_of(&config)
    }

    /// Drops a database made by [`TestServer::create_database`] (closing its connections).
    pub async fn drop_database(&self, url: &str) {
        let config: tokio_postgres::Config = url.parse().expect("URL parses");
        let Some(name) = config.get_dbname() else { return };
        let (client, conn) = self.connect_admin().await;
        let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        drop(client);
        let _ = conn.await;
    }

    async fn connect_admin(
        &self,
    ) -> (tokio_postgres::Client, tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>) {
        let target = crate::connect::Target::parse(&self.url, "public").expect("test URL parses");
        let (client, conn) = target.config.connect(target.tls.clone()).await.expect("connect to the test server");
        (client, tokio::spawn(conn))
    }

    /// A connected store in a fresh schema of its own.
    pub async fn store(&self, tag: &str) -> PostgresStore {
        self.builder(tag).connect().await.expect("connect to the test PostgreSQL server")
    }
}

/// The test server, found or started once per process; `None` (after one line on stderr)
/// when there is none and `WORKFLOW_PG_REQUIRED` is not `1`.
pub fn server() -> Option<&'static TestServer> {
    static SERVER: OnceLock<Result<TestServer, String>> = OnceLock::new();
    match SERVER.get_or_init(find) {
        Ok(s) => Some(s),
        Err(why) => {
            if std::env::var("WORKFLOW_PG_REQUIRED").as_deref() == Ok("1") {
                panic!("PostgreSQL tests are required (WORKFLOW_PG_REQUIRED=1) but {why}");
            }
            eprintln!("PostgreSQL tests skipped: {why} (set WORKFLOW_TEST_PG_URL=postgres://...)");
            None
        }
    }
}

fn find() -> Result<TestServer, String> {
    if let Ok(url) = std::env::var("WORKFLOW_TEST_PG_URL") {
        if !url.is_empty() {
            return Ok(TestServer { url, _cluster: None });
        }
    }
    start_cluster()
}

fn pg_bin(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    on_path.or_else(|| {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|e| e.path().join("bin").join(name))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        found.pop()
    })
}

fn start_cluster() -> Result<TestServer, String> {
    let (Some(initdb), Some(postgres)) = (pg_bin("initdb"), pg_bin("postgres")) else {
        return Err("WORKFLOW_TEST_PG_URL is unset and no initdb/postgres was found".into());
    };
    if is_root() {
        return Err("WORKFLOW_TEST_PG_URL is unset and initdb refuses to run as root".into());
    }
    let dir = std::env::temp_dir().join(format!("workflow-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    let out = Command::new(&initdb)
        .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
        .arg(&data)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", initdb.display()))?;
    if !out.status.success() {
        return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let port = free_port()?;
    // The watchdog shell stops the server and removes its folder when our end of its stdin
    // closes, which happens when this process exits for any reason.
    let script = format!(
        "{pg} -D {data} -p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=on >{dir}/log 2>&1 & pid=$!; \
         echo started; read _; kill -INT $pid; wait $pid; rm -rf {dir}",
        pg = sh_quote(&postgres),
        data = sh_quote(&data),
        dir = sh_quote(&dir),
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start postgres: {e}"))?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(TestServer { url, _cluster: Some(Mutex::new(child)) });
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    Err(format!("the throwaway PostgreSQL did not start: {}", log.trim()))
}

fn url_of(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    let password = config.get_password().map(|p| format!(":{}", String::from_utf8_lossy(p))).unwrap_or_default();
    let db = config.get_dbname().unwrap_or("postgres");
    format!("postgres://{user}{password}@{host}:{port}/{db}")
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
