//! A PostgreSQL server for tests, found or started the same way everywhere.
//!
//! 1. `WORKFLOW_TEST_PG_URL`, when set, names the server (`postgres://user@127.0.0.1:5432/db`).
//! 2. Otherwise a throwaway [`Cluster`] is made with the `initdb` and `pg_ctl` found on the
//!    machine (on `PATH` or in `/usr/lib/postgresql/*/bin`, as Debian's `postgresql` package
//!    installs them), in a temporary folder, on a free port, listening on 127.0.0.1 only.
//!    It stops and its folder is removed when the test process exits, even by a crash.
//! 3. Otherwise [`server`] returns `None` after printing one line saying why the PostgreSQL
//!    tests are skipped, unless `WORKFLOW_PG_REQUIRED=1`, in which case it panics.
//!
//! Each test takes a schema of its own ([`TestServer::store`]), so tests run in parallel on
//! one server without seeing each other.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::{PostgresStore, PostgresStoreBuilder};

/// A server tests can use.
#[derive(Debug)]
pub struct TestServer {
    url: String,
    /// The throwaway cluster, when one was started.
    _cluster: Option<Mutex<Cluster>>,
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
    let cluster = Cluster::start().map_err(|e| format!("WORKFLOW_TEST_PG_URL is unset and {e}"))?;
    Ok(TestServer { url: cluster.url(), _cluster: Some(Mutex::new(cluster)) })
}

/// A throwaway PostgreSQL cluster of this process: made with `initdb` in a temporary
/// folder, listening on 127.0.0.1 on a free port, trust authentication, `fsync` on. As root
/// it runs as the `postgres` user (initdb refuses root). It is stopped and its folder removed
/// when dropped, and by a watchdog when this process exits in any other way.
#[derive(Debug)]
pub struct Cluster {
    pg_ctl: PathBuf,
    data: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
    /// Stops the server when this process exits (see `start`).
    watchdog: Option<Child>,
}

impl Cluster {
    /// Makes and starts a cluster, or says why it cannot.
    pub fn start() -> Result<Cluster, String> {
        let (Some(initdb), Some(pg_ctl)) = (pg_bin("initdb"), pg_bin("pg_ctl")) else {
            return Err("no initdb/pg_ctl was found (install Debian's postgresql)".into());
        };
        let as_postgres = is_root();
        if as_postgres && Command::new("id").arg("postgres").output().map_or(true, |o| !o.status.success()) {
            return Err("initdb refuses to run as root and there is no postgres user".into());
        }
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "workflow-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        let data = dir.join("data");
        let port = free_port()?;
        let mut cluster = Cluster { pg_ctl, data, dir, port, as_postgres, watchdog: None };
        if as_postgres {
            cluster.sh(&format!("chown postgres {}", sh_quote(&cluster.dir)), false)?;
        }
        cluster.sh(
            &format!("{} -A trust -U postgres --no-sync -D {} >/dev/null", sh_quote(&initdb), sh_quote(&cluster.data)),
            as_postgres,
        )?;
        // The watchdog stops the server and removes the folder when our end of its stdin
        // closes: when this process exits, whatever way it does.
        let stop = cluster.stop_command();
        let cleanup = format!("read _; {stop}; rm -rf {}", sh_quote(&cluster.dir));
        cluster.watchdog = Some(
            Command::new("sh")
                .args(["-c", &cleanup])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start the watchdog: {e}"))?,
        );
        cluster.start_server()?;
        Ok(cluster)
    }

    /// The cluster's URL (database `postgres`, user `postgres`).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable", self.port)
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`: no
    /// checkpoint; the next start recovers from the WAL).
    pub fn crash(&self) -> Result<(), String> {
        // The stop command switches user itself.
        self.sh(&self.stop_command(), false)
    }

    /// Starts the server again after [`Cluster::crash`].
    pub fn start_server(&self) -> Result<(), String> {
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on", self.port, sh_quote(&self.dir));
        self.sh(
            &format!(
                "{} -D {} -w -t 60 -l {} -o {} start >/dev/null",
                sh_quote(&self.pg_ctl),
                sh_quote(&self.data),
                sh_quote(&self.dir.join("log")),
                sh_quote(Path::new(&opts)),
            ),
            self.as_postgres,
        )
    }

    fn stop_command(&self) -> String {
        let stop =
            format!("{} -D {} -m immediate -w stop >/dev/null 2>&1", sh_quote(&self.pg_ctl), sh_quote(&self.data));
        if self.as_postgres {
            format!("su postgres -s /bin/sh -c {}", sh_quote(Path::new(&stop)))
        } else {
            stop
        }
    }

    fn sh(&self, script: &str, as_postgres: bool) -> Result<(), String> {
        let mut cmd = if as_postgres {
            let mut c = Command::new("su");
            c.args(["postgres", "-s", "/bin/sh", "-c", script]);
            c
        } else {
            let mut c = Command::new("sh");
            c.args(["-c", script]);
            c
        };
        let out = cmd.output().map_err(|e| format!("cannot run {script}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            Err(format!("{script} failed: {} {}", String::from_utf8_lossy(&out.stderr).trim(), log.trim()))
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.sh(&self.stop_command(), false);
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(w) = self.watchdog.as_mut() {
            let _ = w.kill();
        }
    }
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
