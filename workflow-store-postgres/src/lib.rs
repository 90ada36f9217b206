//! # workflow-store-postgres: many workers on many machines, one PostgreSQL
//!
//! [`PostgresStore`] keeps runs, histories, tasks and attempt logs in PostgreSQL, so that any
//! number of worker processes, on any number of machines, share one set of workflows, and
//! `wf --db postgres://...` can read and control runs while they run.
//!
//! ```no_run
//! use std::sync::Arc;
//! use workflow_core::{Worker, WorkerOptions};
//! use workflow_store_postgres::PostgresStore;
//!
//! # async fn demo() -> Result<(), workflow_core::StoreError> {
//! let store = PostgresStore::connect("postgres://app@db.internal/jobs").await?;
//! let worker = Worker::new(Arc::new(store), WorkerOptions::default());
//! # let _ = worker;
//! # Ok(()) }
//! ```
//!
//! ## How it works
//!
//! - **Schema:** created and upgraded by versioned migrations on connect, under an advisory
//!   lock so that workers connecting together do not race. A database whose schema is newer
//!   than this build is refused ([`StoreError::UnsupportedVersion`]). Tables are `wf_runs`,
//!   `wf_events`, `wf_tasks`, `wf_attempts` in the schema given by
//!   [`PostgresStoreBuilder::schema`] (`public` by default).
//! - **Many workers:** tasks are leased with `FOR UPDATE SKIP LOCKED`; a lease names its
//!   worker and expires, and an expired lease is taken over by the next worker that asks
//!   (reported as `previous_lease_lost`). Appends lock the run row and check the caller's
//!   last event id (optimistic concurrency), so two workers never both record a step; the
//!   loser gets [`StoreError::Conflict`], and the engine evicts its cached run and replays.
//! - **One transaction per step, group commit across runs:** the creates and appends that
//!   arrive together run as one transaction (each with its own checks: one run's conflict
//!   fails only that run), written with one statement per table however many runs the group
//!   holds, pipelined over one connection. `Ok` means `COMMIT` returned, so the step is as
//!   durable as the server's settings make it (`fsync` and `synchronous_commit` on by default).
//! - **Wake-ups:** every commit sends `NOTIFY`; each store `LISTEN`s on its own connection and
//!   wakes idle workers, who otherwise poll slowly. When `LISTEN` is unavailable (a lost
//!   connection, or a PostgreSQL-compatible engine without it) the store reconnects in the
//!   background and workers fall back to their poll interval.
//! - **Retries:** a transaction that fails with a serialization failure or a deadlock
//!   (SQLSTATE 40001, 40P01) is run again by the store.
//! - **Connections:** a bounded pool ([`PostgresStoreBuilder::pool_size`]), on
//!   `tokio-postgres` with `deadpool-postgres`: `tokio-postgres` pipelines the statements of
//!   a transaction over one connection (the group commit relies on it) and has no macros or
//!   build-time database; `deadpool-postgres` is a small, well-kept pool for it.
//! - **TLS:** as the URL's `sslmode` says (`disable`, `prefer`, the default, or `require`),
//!   with rustls and the Mozilla root certificates (`webpki-roots`).
//! - **Passwords** never appear in errors or logs: errors name `user@host:port/database`.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod connect;
mod group;
mod listen;
mod rows;
mod schema;
pub mod testing;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use tokio::sync::{broadcast, mpsc, oneshot, Notify, Semaphore};
use tokio::task::JoinHandle;
use workflow_core::history::Event;
use workflow_core::store::{
    AppendOutcome, AppendRequest, AttemptRecord, LeaseHolder, LeaseToken, LeasedTask, NewRun, PendingTask, RunFilter,
    RunInfo, Store, TaskKey, TaskQueue,
};
use workflow_core::{EventId, RunId};
use workflow_core::{Payload, StoreError, Timestamp};

use crate::connect::Target;
use crate::group::{Reply, Write};
use crate::rows::{decode, encode, from_ts, queue_code, task_from_row, ts, RUN_COLUMNS, TASK_COLUMNS};
pub use crate::schema::SCHEMA_VERSION;

/// How many writes one group commit takes at most.
const MAX_GROUP: usize = 256;
/// How many times a group is run again after a serialization failure or deadlock.
const MAX_RETRIES: u32 = 8;

/// A [`Store`] on PostgreSQL. See the [crate docs](crate).
pub struct PostgresStore {
    shared: Arc<Shared>,
    writes: mpsc::UnboundedSender<Pending>,
    tasks: Vec<JoinHandle<()>>,
}

struct Shared {
    pool: Pool,
    target: Target,
    notify: Arc<Notify>,
    closed: broadcast::Sender<RunId>,
    /// The NOTIFY channel of this store's schema.
    channel: String,
    /// Tells this store's own notifications from other processes'.
    origin: String,
    groups: Semaphore,
    schema: String,
    counters: Counters,
}

/// Counts of what this store instance asked PostgreSQL to do (see [`PostgresStore::counters`]).
#[derive(Default)]
struct Counters {
    group_commits: AtomicU64,
    grouped_writes: AtomicU64,
    retries: AtomicU64,
    lease_transactions: AtomicU64,
    heartbeats: AtomicU64,
}

/// What a [`PostgresStore`] has done since it connected: the transactions that change data,
/// for counting transactions per step in benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitCounters {
    /// Group commits (each one transaction, creates and appends of many runs).
    pub group_commits: u64,
    /// Creates and appends committed by them.
    pub grouped_writes: u64,
    /// Groups run again after a serialization failure, deadlock or unique violation.
    pub retries: u64,
    /// `lease_tasks` calls that leased something (each one transaction).
    pub lease_transactions: u64,
    /// Heartbeats (each one transaction).
    pub heartbeats: u64,
}

impl CommitCounters {
    /// Every transaction that wrote.
    pub fn transactions(&self) -> u64 {
        self.group_commits + self.lease_transactions + self.heartbeats
    }
}

struct Pending {
    write: Write,
    reply: oneshot::Sender<Result<Reply, StoreError>>,
}

/// Options for [`PostgresStore`]; from [`PostgresStore::builder`].
#[derive(Clone, Debug)]
pub struct PostgresStoreBuilder {
    url: String,
    schema: String,
    pool_size: usize,
    concurrent_groups: usize,
    listen: bool,
    retention: Option<Duration>,
}

impl PostgresStoreBuilder {
    /// The PostgreSQL schema holding the tables (default `public`); created when missing.
    /// Several independent stores can share one database, one schema each. Lower-case
    /// letters, digits and underscores.
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = name.into();
        self
    }

    /// The most connections this store opens (default 8), besides one for `LISTEN`. Keep the
    /// sum over all processes below the server's `max_connections`.
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(2);
        self
    }

    /// How many group commits may be in flight at once (default 2). More overlaps the round
    /// trips of one group with the flush of another.
    pub fn concurrent_groups(mut self, n: usize) -> Self {
        self.concurrent_groups = n.max(1);
        self
    }

    /// Whether to `LISTEN` for other processes' changes (default `true`). Without it, workers
    /// see other processes' tasks at their poll interval.
    pub fn listen(mut self, on: bool) -> Self {
        self.listen = on;
        self
    }

    /// Deletes runs (history, attempts, info) closed more than `keep` ago, in a background
    /// sweep every tenth of `keep` (between 1 s and 1 h), in batches of 500. Default: keep
    /// forever. Every process may sweep; they skip each other's rows.
    pub fn retention(mut self, keep: Duration) -> Self {
        self.retention = Some(keep);
        self
    }

    /// Connects, applies the migrations, and starts the committer (and the listener). Call it
    /// inside a Tokio runtime; the store's background tasks run on it.
    pub async fn connect(self) -> Result<PostgresStore, StoreError> {
        schema::check_schema_name(&self.schema)?;
        let target = Target::parse(&self.url, &self.schema)?;
        let pool = target.pool(self.pool_size)?;
        let mut conn = pool.get().await.map_err(|e| target.pool_error(e))?;
        schema::migrate(&mut conn, &self.schema, &target.describe).await?;
        drop(conn);
        let origin = format!("{:016x}", random_u64());
        let shared = Arc::new(Shared {
            pool,
            notify: Arc::new(Notify::new()),
            closed: broadcast::channel(1024).0,
            channel: format!("wf_{}", self.schema),
            origin,
            groups: Semaphore::new(self.concurrent_groups.min(self.pool_size.saturating_sub(1)).max(1)),
            schema: self.schema,
            target,
            counters: Counters::default(),
        });
        tracing::debug!(server = %shared.target.describe, tls = ?shared.target.ssl_mode(), "connected to PostgreSQL");
        let (tx, rx) = mpsc::unbounded_channel();
        let mut tasks = vec![tokio::spawn(committer(shared.clone(), rx))];
        if self.listen {
            tasks.push(tokio::spawn(listen::run(shared.clone())));
        }
        let mut store = PostgresStore { shared, writes: tx, tasks };
        if let Some(keep) = self.retention {
            let sweeper =
                PostgresStore { shared: store.shared.clone(), writes: store.writes.clone(), tasks: Vec::new() };
            store.tasks.push(tokio::spawn(sweep(sweeper, keep)));
        }
        Ok(store)
    }
}

impl PostgresStore {
    /// Connects to `url` (a `postgres://` URL or a `key=value` connection string) with the
    /// default options.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::builder(url).connect().await
    }

    /// Options for a store at `url`.
    pub fn builder(url: impl Into<String>) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            url: url.into(),
            schema: "public".into(),
            pool_size: 8,
            concurrent_groups: 2,
            listen: true,
            retention: None,
        }
    }

    /// The server, as `user@host:port/database` (no password).
    pub fn server(&self) -> &str {
        &self.shared.target.describe
    }

    /// What this instance has committed so far.
    pub fn counters(&self) -> CommitCounters {
        let c = &self.shared.counters;
        CommitCounters {
            group_commits: c.group_commits.load(Ordering::Relaxed),
            grouped_writes: c.grouped_writes.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            lease_transactions: c.lease_transactions.load(Ordering::Relaxed),
            heartbeats: c.heartbeats.load(Ordering::Relaxed),
        }
    }

    /// The schema holding this store's tables.
    pub fn schema(&self) -> &str {
        &self.shared.schema
    }

    /// Drops this store's tables (and its schema, unless `public`): everything it holds is
    /// gone. For tests and throwaway stores.
    pub async fn destroy(&self) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        let s = &self.shared.schema;
        let sql = if s == "public" {
            "DROP TABLE IF EXISTS wf_runs, wf_events, wf_tasks, wf_attempts, wf_migrations CASCADE; \
             DROP SEQUENCE IF EXISTS wf_lease_tokens"
                .to_string()
        } else {
            format!("DROP SCHEMA IF EXISTS {s} CASCADE")
        };
        conn.batch_execute(&sql).await.map_err(|e| self.shared.target.error(e))
    }

    async fn conn(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.shared.pool.get().await.map_err(|e| self.shared.target.pool_error(e))
    }

    async fn submit(&self, write: Write) -> Result<Reply, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.writes
            .send(Pending { write, reply })
            .map_err(|_| StoreError::Backend { reason: "the store's committer stopped".into(), retryable: false })?;
        rx.await
            .map_err(|_| StoreError::Backend { reason: "the store's committer stopped".into(), retryable: false })?
    }

    fn err(&self, e: tokio_postgres::Error) -> StoreError {
        self.shared.target.error(e)
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let conn = self.conn().await?;
        let st = conn.prepare_cached(sql).await.map_err(|e| self.err(e))?;
        conn.query(&st, params).await.map_err(|e| self.err(e))
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The retention sweep: deletes runs closed more than `keep` ago, now and then.
async fn sweep(store: PostgresStore, keep: Duration) {
    use workflow_core::Clock;
    let every = (keep / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    loop {
        let before = Timestamp(workflow_core::SystemClock.now().0.saturating_sub(keep.as_millis() as u64));
        match store.delete_closed_before(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "retention: deleted closed runs"),
            Err(e) => tracing::warn!(error = %e, "retention sweep failed; trying again later"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Takes writes as they come and commits them in groups.
async fn committer(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let shared_sem = shared.clone();
    while let Some(first) = rx.recv().await {
        // Wait for a free group slot first: writes keep arriving meanwhile and join this group.
        let Ok(permit) = shared_sem.groups.acquire().await else { return };
        permit.forget();
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let s = shared.clone();
        tokio::spawn(async move {
            commit_group(&s, batch).await;
            s.groups.add_permits(1);
        });
    }
}

async fn commit_group(shared: &Shared, batch: Vec<Pending>) {
    let (writes, replies): (Vec<Write>, Vec<_>) = batch.into_iter().map(|p| (p.write, p.reply)).unzip();
    let mut attempt = 0;
    let result = loop {
        attempt += 1;
        match try_group(shared, &writes).await {
            Ok(o) => break Ok(o),
            Err(GroupError::Db(e)) if connect::is_retryable(&e) && attempt < MAX_RETRIES => {
                shared.counters.retries.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, attempt, "group commit retried");
                tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 2)).await;
            }
            Err(GroupError::Db(e)) => break Err(shared.target.error(e)),
            Err(GroupError::Pool(e)) => break Err(shared.target.pool_error(e)),
        }
    };
    match result {
        Ok(outcome) => {
            shared.counters.group_commits.fetch_add(1, Ordering::Relaxed);
            shared.counters.grouped_writes.fetch_add(writes.len() as u64, Ordering::Relaxed);
            if outcome.wake {
                shared.notify.notify_waiters();
            }
            for id in outcome.closed {
                let _ = shared.closed.send(id);
            }
            for (r, tx) in outcome.replies.into_iter().zip(replies) {
                let _ = tx.send(r);
            }
        }
        Err(e) => {
            for tx in replies {
                let _ = tx.send(Err(e.clone()));
            }
        }
    }
}

enum GroupError {
    Db(tokio_postgres::Error),
    Pool(deadpool_postgres::PoolError),
}

async fn try_group(shared: &Shared, writes: &[Write]) -> Result<group::Outcome, GroupError> {
    let conn = shared.pool.get().await.map_err(GroupError::Pool)?;
    match group::run(&conn, writes, &shared.channel, &shared.origin).await {
        Ok(o) => Ok(o),
        Err(e) => {
            // Leave no transaction open on a pooled connection; one that cannot even roll
            // back is not given back to the pool.
            if conn.batch_execute("ROLLBACK").await.is_err() {
                let _ = deadpool_postgres::Object::take(conn);
            }
            Err(GroupError::Db(e))
        }
    }
}

/// A group answered a write with the other kind's reply: a bug, reported rather than a panic.
fn odd_reply(what: &str) -> StoreError {
    StoreError::Backend { reason: format!("the group commit answered {what} oddly"), retryable: false }
}

pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.write_u32(std::process::id());
    h.finish()
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_run(&self, run: NewRun) -> Result<Option<LeasedTask>, StoreError> {
        match self.submit(Write::Create(run)).await? {
            Reply::Created(leased) => Ok(leased),
            Reply::Appended(_) => Err(odd_reply("a creation")),
        }
    }

    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        match self.submit(Write::Append(req)).await? {
            Reply::Appended(o) => Ok(o),
            Reply::Created(_) => Err(odd_reply("an append")),
        }
    }

    async fn lease_tasks(
        &self,
        queue: TaskQueue,
        now: Timestamp,
        max: usize,
        owner: &str,
    ) -> Result<Vec<LeasedTask>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        // Expired leases first, then visible tasks, each oldest first (as MemoryStore).
        let sql = format!(
            "WITH expired AS (
                SELECT key, due_at, lease_owner, lease_since FROM wf_tasks WHERE queue = $1 AND leased AND due_at <= $2
                 ORDER BY due_at, key LIMIT $3 FOR UPDATE SKIP LOCKED),
             ready AS (
                SELECT key, due_at FROM wf_tasks WHERE queue = $1 AND NOT leased AND due_at <= $2
                 ORDER BY due_at, key LIMIT $3 FOR UPDATE SKIP LOCKED),
             picked AS (
                SELECT key, true AS lost, 0 AS lane, due_at, lease_owner AS prev_owner, lease_since AS prev_since
                  FROM expired
                UNION ALL SELECT key, false, 1, due_at, NULL, NULL FROM ready
                ORDER BY lane, due_at, key LIMIT $3),
             upd AS (
                UPDATE wf_tasks t SET leased = true, lease_owner = $4, lease_token = nextval('wf_lease_tokens'),
                    lease_since = $2, due_at = $2 + t.lease_ms, leased_version = t.version
                FROM picked WHERE t.key = picked.key
                RETURNING {TASK_COLUMNS}, picked.lost, picked.lane, picked.due_at AS old_due, picked.prev_owner,
                    picked.prev_since)
             SELECT * FROM upd ORDER BY 12, 13, 1"
        );
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = self.query(&sql, &[&queue_code(queue), &ts(now), &limit, &owner]).await?;
        if !rows.is_empty() {
            self.shared.counters.lease_transactions.fetch_add(1, Ordering::Relaxed);
        }
        rows.iter()
            .map(|r| {
                let lost: bool = r.get(10);
                let prev_owner: Option<String> = r.get(13);
                let prev_since: Option<i64> = r.get(14);
                let row = task_from_row(r)?;
                let token = row.lease.as_ref().map_or(0, |l| l.1) as LeaseToken;
                let previous_holder =
                    prev_owner.map(|owner| LeaseHolder { owner, since: prev_since.map_or(now, from_ts) });
                Ok(LeasedTask { task: row.task, token, previous_lease_lost: lost, previous_holder })
            })
            .collect()
    }

    async fn next_due(&self, queue: TaskQueue) -> Result<Option<Timestamp>, StoreError> {
        let rows = self
            .query(
                "SELECT LEAST((SELECT min(due_at) FROM wf_tasks WHERE queue = $1 AND leased),
                              (SELECT min(due_at) FROM wf_tasks WHERE queue = $1 AND NOT leased))",
                &[&queue_code(queue)],
            )
            .await?;
        Ok(rows.first().and_then(|r| r.get::<_, Option<i64>>(0)).map(from_ts))
    }

    async fn heartbeat(
        &self,
        key: &TaskKey,
        token: LeaseToken,
        details: Option<Payload>,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        let details = details.map(|d| encode("heartbeat details", &d)).transpose()?;
        let rows = self
            .query(
                "UPDATE wf_tasks SET due_at = $3,
                    hb_details = CASE WHEN $4::text IS NULL THEN hb_details ELSE $4::text::json END,
                    hb_at = CASE WHEN $4::text IS NULL THEN hb_at ELSE $5 END
                 WHERE key = $1 AND leased AND lease_token = $2 RETURNING 1",
                &[&key.0, &(token as i64), &ts(until), &details, &ts(now)],
            )
            .await?;
        if rows.is_empty() {
            return Err(StoreError::LeaseLost { task: key.0.clone() });
        }
        self.shared.counters.heartbeats.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn read_history(&self, run_id: &RunId, after: EventId) -> Result<Vec<Event>, StoreError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let conn = self.conn().await?;
        let exists = async {
            let st = conn.prepare_cached("SELECT 1 FROM wf_runs WHERE run_id = $1").await?;
            conn.query(&st, &[&run_id.0]).await
        };
        let events = async {
            let st = conn
                .prepare_cached(
                    "SELECT event_id, time, kind::text FROM wf_events WHERE run_id = $1 AND event_id > $2 ORDER BY event_id",
                )
                .await?;
            conn.query(&st, &[&run_id.0, &after]).await
        };
        let (exists, events) = futures::try_join!(exists, events).map_err(|e| self.err(e))?;
        if exists.is_empty() {
            return Err(StoreError::NotFound { what: format!("run {run_id}") });
        }
        events.iter().map(|r| rows::event(&run_id.0, r)).collect()
    }

    async fn get_run(&self, run_id: &RunId) -> Result<Option<RunInfo>, StoreError> {
        let rows = self.query(&format!("SELECT {RUN_COLUMNS} FROM wf_runs WHERE run_id = $1"), &[&run_id.0]).await?;
        rows.first().map(|r| rows::run_info(r, 0)).transpose()
    }

    async fn current_run(&self, workflow_id: &str) -> Result<Option<RunInfo>, StoreError> {
        let rows = self
            .query(
                &format!("SELECT {RUN_COLUMNS} FROM wf_runs WHERE workflow_id = $1 ORDER BY seq_no DESC LIMIT 1"),
                &[&workflow_id],
            )
            .await?;
        rows.first().map(|r| rows::run_info(r, 0)).transpose()
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunInfo>, StoreError> {
        // One statement per combination of filters, so that each is planned on its index
        // ((status, seq_no), (workflow_type, seq_no) or seq_no) and stops at the limit.
        let status = filter.status.map(|s| s.to_string());
        let limit = filter.limit.map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let mut conds = Vec::new();
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
        if let Some(s) = &status {
            params.push(s);
            conds.push(format!("status = ${}", params.len()));
        }
        if let Some(t) = &filter.workflow_type {
            params.push(t);
            conds.push(format!("workflow_type = ${}", params.len()));
        }
        params.push(&limit);
        let filter_sql = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
        let sql =
            format!("SELECT {RUN_COLUMNS} FROM wf_runs {filter_sql} ORDER BY seq_no DESC LIMIT ${}", params.len());
        let rows = self.query(&sql, &params).await?;
        rows.iter().map(|r| rows::run_info(r, 0)).collect()
    }

    async fn list_tasks(&self, run_id: &RunId) -> Result<Vec<PendingTask>, StoreError> {
        let rows = self
            .query(&format!("SELECT {TASK_COLUMNS} FROM wf_tasks t WHERE t.run_id = $1 ORDER BY t.key"), &[&run_id.0])
            .await?;
        rows.iter().map(|r| task_from_row(r).map(PendingTask::from)).collect()
    }

    async fn list_attempts(&self, run_id: &RunId) -> Result<Vec<AttemptRecord>, StoreError> {
        let rows =
            self.query("SELECT id, record::text FROM wf_attempts WHERE run_id = $1 ORDER BY id", &[&run_id.0]).await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.get(0);
                decode(|| format!("wf_attempts {id} (run {run_id})"), r.get(1))
            })
            .collect()
    }

    async fn delete_closed_before(&self, before: Timestamp) -> Result<usize, StoreError> {
        // In batches, so that one call never holds a huge transaction.
        let mut total = 0usize;
        loop {
            let rows = self
                .query(
                    "WITH doomed AS (
                        DELETE FROM wf_runs WHERE run_id IN (
                            SELECT run_id FROM wf_runs WHERE close_time < $1 ORDER BY close_time LIMIT 500
                            FOR UPDATE SKIP LOCKED)
                        RETURNING run_id),
                     e AS (DELETE FROM wf_events WHERE run_id IN (SELECT run_id FROM doomed)),
                     a AS (DELETE FROM wf_attempts WHERE run_id IN (SELECT run_id FROM doomed)),
                     t AS (DELETE FROM wf_tasks WHERE run_id IN (SELECT run_id FROM doomed))
                     SELECT count(*) FROM doomed",
                    &[&ts(before)],
                )
                .await?;
            let n = rows.first().map_or(0, |r| r.get::<_, i64>(0)) as usize;
            total += n;
            if n < 500 {
                return Ok(total);
            }
        }
    }

    async fn release_leases_of(&self, owner: &str, now: Timestamp) -> Result<usize, StoreError> {
        // Left leased (so the next lease reports the loss) but due at once. Leased tasks are
        // few, and found through the (queue, leased, ...) index.
        let rows = self
            .query(
                "UPDATE wf_tasks SET due_at = LEAST(due_at, $2)
                  WHERE queue IN (0, 1) AND leased AND lease_owner = $1 RETURNING 1",
                &[&owner, &ts(now)],
            )
            .await?;
        if !rows.is_empty() {
            self.shared.notify.notify_waiters();
        }
        Ok(rows.len())
    }

    fn notifier(&self) -> Option<Arc<Notify>> {
        Some(self.shared.notify.clone())
    }

    fn closed_runs(&self) -> Option<broadcast::Receiver<RunId>> {
        Some(self.shared.closed.subscribe())
    }
}

/// The README's examples, compiled and run as doctests so that what crates.io shows works.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
