//! Where `wf` reads runs from: a store opened directly, or a running process's admin endpoint.

use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use workflow_core::store::{AttemptRecord, RunInfo};
use workflow_core::{Client, ControlError, Event, Payload, ResetError, ResetPoint, RunId, StoreError};
use workflow_store_sled::SledStore;

use crate::location::StoreLocation;

use crate::model::{self, ListQuery, RunDetails, TreeNode};

/// Why a command failed. Each variant maps to an exit code ([`SourceError::exit_code`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// No such workflow (exit code 1).
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong: bad payload, bad URL, bad filter (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The store is held by another process (exit code 3).
    #[error("store at {path} is in use by another process; inspect it through that process's admin endpoint with --url http://127.0.0.1:PORT (for example, start it with batch-example --admin 127.0.0.1:PORT)")]
    InUse {
        /// The store's path.
        path: String,
    },
    /// The admin endpoint refused a write (exit code 3).
    #[error("{0}")]
    Forbidden(String),
    /// The workflow has already finished, so it cannot be cancelled, terminated or signalled
    /// (exit code 3).
    #[error("{0}")]
    AlreadyClosed(String),
    /// The admin endpoint cannot be reached or answered something unexpected (exit code 3).
    #[error("{0}")]
    Endpoint(String),
    /// The request cannot be done in the run's present state, for a reason the message
    /// gives (exit code 3).
    #[error("{0}")]
    Conflict(String),
    /// The store failed (exit code 3).
    #[error("{0}")]
    Store(String),
}

impl SourceError {
    /// The process exit code: 1 not found, 2 usage, 3 anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            SourceError::NotFound(_) => 1,
            SourceError::Usage(_) => 2,
            _ => 3,
        }
    }

    /// A stable code for the admin endpoint's JSON errors.
    pub fn code(&self) -> &'static str {
        match self {
            SourceError::NotFound(_) => "not_found",
            SourceError::Usage(_) => "bad_request",
            SourceError::InUse { .. } => "in_use",
            SourceError::Forbidden(_) => "forbidden",
            SourceError::AlreadyClosed(_) => "already_closed",
            SourceError::Endpoint(_) => "endpoint",
            SourceError::Conflict(_) => "conflict",
            SourceError::Store(_) => "store",
        }
    }
}

impl From<ControlError> for SourceError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound { .. } => SourceError::NotFound(e.to_string()),
            ControlError::AlreadyClosed { .. } => SourceError::AlreadyClosed(e.to_string()),
            ControlError::Payload(p) => SourceError::Usage(p.to_string()),
            ControlError::Store(s) => s.into(),
            other => SourceError::Store(other.to_string()),
        }
    }
}

impl From<ResetError> for SourceError {
    fn from(e: ResetError) -> Self {
        match e {
            ResetError::Control(c) => c.into(),
            ResetError::PointOutOfRange { .. } | ResetError::NoFailure { .. } => SourceError::Usage(e.to_string()),
            other => SourceError::Conflict(other.to_string()),
        }
    }
}

impl From<StoreError> for SourceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InUse { path } => SourceError::InUse { path },
            StoreError::NotFound { .. } => SourceError::NotFound(e.to_string()),
            other => SourceError::Store(other.to_string()),
        }
    }
}

/// The JSON body of an admin endpoint error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    /// A stable code: `not_found`, `bad_request`, `forbidden`, `already_closed`, `store`, ...
    pub code: String,
    /// A one-line message.
    pub message: String,
}

impl From<ApiError> for SourceError {
    fn from(e: ApiError) -> Self {
        match e.code.as_str() {
            "not_found" => SourceError::NotFound(e.message),
            "bad_request" => SourceError::Usage(e.message),
            "forbidden" => SourceError::Forbidden(e.message),
            "already_closed" => SourceError::AlreadyClosed(e.message),
            "conflict" => SourceError::Conflict(e.message),
            "store" | "in_use" => SourceError::Store(e.message),
            _ => SourceError::Endpoint(e.message),
        }
    }
}

/// The body of `POST /api/runs/{id}/reset`: `{"point": {"to": "event", "event_id": 7},
/// "reason": "..."}` or `{"point": {"to": "before_failure"}, "reason": "..."}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResetBody {
    /// Where to re-run from.
    pub point: ResetPoint,
    /// Why.
    pub reason: String,
}

/// The answer of `POST /api/runs/{id}/reset`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResetAnswer {
    /// The new run.
    pub run_id: RunId,
}

/// The body of `POST /api/runs/{id}/cancel`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CancelBody {
    /// Why, if the caller says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The body of `POST /api/runs/{id}/terminate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TerminateBody {
    /// Why.
    pub reason: String,
}

/// The body of `POST /api/runs/{id}/signal`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalBody {
    /// The signal's name.
    pub name: String,
    /// Its payload.
    pub payload: Payload,
}

/// Where runs are read from. Both variants return the same data, so every command renders
/// identically whichever is used.
#[derive(Clone)]
#[non_exhaustive]
pub enum Source {
    /// A store opened in this process.
    Direct(Client),
    /// A running process's admin endpoint.
    Http(HttpSource),
}

impl Source {
    /// Opens the sled store at `path` for reading: a private copy of it
    /// ([`SledStore::open_snapshot`]), so that nothing in `path` is written, not even the
    /// files sled rewrites when it opens a store. A store held by another process gives
    /// [`SourceError::InUse`]; a missing one gives [`SourceError::Usage`].
    pub fn open_db(path: &Path) -> Result<Source, SourceError> {
        match SledStore::open_snapshot(path) {
            Ok(store) => Ok(Source::Direct(Client::new(Arc::new(store)))),
            Err(StoreError::NotFound { .. }) => Err(SourceError::Usage(format!("no store at {}", path.display()))),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the sled store at `path` itself, to change runs (cancel, terminate, signal).
    pub fn open_db_for_writes(path: &Path) -> Result<Source, SourceError> {
        if !path.exists() {
            return Err(SourceError::Usage(format!("no store at {}", path.display())));
        }
        Ok(Source::Direct(Client::new(Arc::new(SledStore::open(path)?))))
    }

    /// Opens the store at `location`: a sled folder as [`Source::open_db`] does (or
    /// [`Source::open_db_for_writes`] when `writes`), or a PostgreSQL store (shared with any
    /// workers using it; reading it writes nothing).
    pub async fn open_location(location: &StoreLocation, writes: bool) -> Result<Source, SourceError> {
        match location {
            StoreLocation::Sled(path) if writes => Source::open_db_for_writes(path),
            StoreLocation::Sled(path) => Source::open_db(path),
            StoreLocation::Postgres(_) => Ok(Source::Direct(Client::new(location.open().await?))),
        }
    }

    /// Talks to the admin endpoint at `url` (`http://127.0.0.1:PORT`).
    pub fn connect(url: &str) -> Result<Source, SourceError> {
        Source::connect_with_token(url, None)
    }

    /// Talks to the admin endpoint at `url` with a bearer token.
    pub fn connect_with_token(url: &str, token: Option<String>) -> Result<Source, SourceError> {
        Ok(Source::Http(HttpSource::new(url)?.with_token(token)))
    }

    /// Runs matching `query`, newest first.
    pub async fn list(&self, query: &ListQuery) -> Result<Vec<RunInfo>, SourceError> {
        match self {
            Source::Direct(c) => Ok(c.list(&query.to_filter()).await?),
            Source::Http(h) => h.get(&[], Some(query)).await,
        }
    }

    /// The details of the latest run of `workflow_id`.
    pub async fn describe(&self, workflow_id: &str) -> Result<RunDetails, SourceError> {
        match self {
            Source::Direct(c) => Ok(model::run_details(c, workflow_id).await?),
            Source::Http(h) => h.get(&[workflow_id], None::<&()>).await,
        }
    }

    /// The history of the latest run of `workflow_id`.
    pub async fn history(&self, workflow_id: &str) -> Result<Vec<Event>, SourceError> {
        match self {
            Source::Direct(c) => Ok(c.history(workflow_id).await?),
            Source::Http(h) => h.get(&[workflow_id, "history"], None::<&()>).await,
        }
    }

    /// The attempt log of the latest run of `workflow_id`.
    pub async fn attempts(&self, workflow_id: &str) -> Result<Vec<AttemptRecord>, SourceError> {
        match self {
            Source::Direct(c) => Ok(model::run_attempts(c, workflow_id).await?),
            Source::Http(h) => h.get(&[workflow_id, "attempts"], None::<&()>).await,
        }
    }

    /// The parent / child tree around the latest run of `workflow_id`.
    pub async fn tree(&self, workflow_id: &str) -> Result<TreeNode, SourceError> {
        match self {
            Source::Direct(c) => Ok(model::run_tree(c, workflow_id).await?),
            Source::Http(h) => h.get(&[workflow_id, "tree"], None::<&()>).await,
        }
    }

    /// Requests cancellation of the open run of `workflow_id`.
    pub async fn cancel(&self, workflow_id: &str, reason: Option<String>) -> Result<(), SourceError> {
        match self {
            Source::Direct(c) => Ok(c.cancel(workflow_id, reason).await?),
            Source::Http(h) => h.post(workflow_id, "cancel", &CancelBody { reason }).await,
        }
    }

    /// Terminates the open run of `workflow_id`.
    pub async fn terminate(&self, workflow_id: &str, reason: &str) -> Result<(), SourceError> {
        match self {
            Source::Direct(c) => Ok(c.terminate(workflow_id, reason).await?),
            Source::Http(h) => h.post(workflow_id, "terminate", &TerminateBody { reason: reason.into() }).await,
        }
    }

    /// Re-runs the latest run of `workflow_id` from `point` as a new run
    /// ([`Client::reset`]); returns the new run's id.
    pub async fn reset(&self, workflow_id: &str, point: ResetPoint, reason: &str) -> Result<RunId, SourceError> {
        match self {
            Source::Direct(c) => Ok(c.reset(workflow_id, point, reason).await?),
            Source::Http(h) => {
                let body = ResetBody { point, reason: reason.into() };
                let req = h.http.post(h.url(&[workflow_id, "reset"])).json(&body);
                let answer: ResetAnswer = h.send(req).await?;
                Ok(answer.run_id)
            }
        }
    }

    /// Sends signal `name` to the open run of `workflow_id`.
    pub async fn signal(&self, workflow_id: &str, name: &str, payload: Payload) -> Result<(), SourceError> {
        workflow_core::validate_id("signal name", name, 1000).map_err(|e| SourceError::Usage(e.to_string()))?;
        match self {
            Source::Direct(c) => Ok(c.signal_raw(workflow_id, name, payload).await?),
            Source::Http(h) => h.post(workflow_id, "signal", &SignalBody { name: name.into(), payload }).await,
        }
    }
}

/// A client of the admin endpoint.
#[derive(Clone, Debug)]
pub struct HttpSource {
    base: reqwest::Url,
    http: reqwest::Client,
    token: Option<String>,
}

impl HttpSource {
    /// A client of the endpoint at `url`.
    pub fn new(url: &str) -> Result<HttpSource, SourceError> {
        let base = reqwest::Url::parse(url).map_err(|e| SourceError::Usage(format!("invalid --url {url:?}: {e}")))?;
        if base.scheme() != "http" || base.cannot_be_a_base() {
            return Err(SourceError::Usage(format!("invalid --url {url:?}: expected http://HOST:PORT")));
        }
        Ok(HttpSource { base, http: reqwest::Client::new(), token: None })
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn with_token(mut self, token: Option<String>) -> HttpSource {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    /// `<base>/api/runs/<segments...>`, each segment percent-encoded (workflow ids may hold `/`).
    fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.base.clone();
        {
            // Checked in `new`: an http URL can be a base.
            let mut path = url.path_segments_mut().expect("http URLs have a path");
            path.pop_if_empty().extend(["api", "runs"]).extend(segments);
        }
        url
    }

    async fn get<T: DeserializeOwned, Q: Serialize + ?Sized>(
        &self,
        segments: &[&str],
        query: Option<&Q>,
    ) -> Result<T, SourceError> {
        let mut url = self.url(segments);
        if let Some(q) = query {
            if let serde_json::Value::Object(map) =
                serde_json::to_value(q).map_err(|e| SourceError::Usage(e.to_string()))?
            {
                if !map.is_empty() {
                    let pairs = map
                        .into_iter()
                        .map(|(k, v)| (k, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())));
                    url.query_pairs_mut().extend_pairs(pairs);
                }
            }
        }
        self.send(self.http.get(url)).await
    }

    async fn post<B: Serialize>(&self, workflow_id: &str, action: &str, body: &B) -> Result<(), SourceError> {
        let req = self.http.post(self.url(&[workflow_id, action])).json(body);
        let _: serde_json::Value = self.send(req).await?;
        Ok(())
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, SourceError> {
        let unreachable = |e: reqwest::Error| {
            SourceError::Endpoint(format!("cannot reach the admin endpoint at {}: {}", self.base, root_cause(&e)))
        };
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                SourceError::Endpoint(format!("unexpected answer from the admin endpoint at {}: {e}", self.base))
            });
        }
        match serde_json::from_slice::<ApiError>(&bytes) {
            Ok(e) => Err(e.into()),
            Err(_) => Err(SourceError::Endpoint(format!(
                "the admin endpoint at {} answered {status}: {}",
                self.base,
                String::from_utf8_lossy(&bytes).chars().take(200).collect::<String>()
            ))),
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
