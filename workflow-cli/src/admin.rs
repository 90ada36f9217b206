//! The admin endpoint: a JSON API over HTTP that lets `wf --url` inspect a running process.
//!
//! Only one process can open a sled store, so a worker that wants to be inspected while it
//! runs serves this endpoint next to itself:
//!
//! ```no_run
//! # async fn demo(client: workflow_core::Client) -> std::io::Result<()> {
//! use workflow_cli::admin::{AdminOptions, AdminServer};
//! let admin = AdminServer::serve(client, "127.0.0.1:7233".parse().unwrap(), AdminOptions::default()).await?;
//! println!("inspect with: wf --url {}", admin.url());
//! # Ok(()) }
//! ```
//!
//! Routes (workflow ids are percent-encoded path segments; they may contain `/`):
//!
//! | Method and path                    | Answer                                   |
//! |------------------------------------|------------------------------------------|
//! | `GET /api/runs?status=&type=&limit=` | `[RunInfo]`, newest first               |
//! | `GET /api/runs/{id}`               | [`RunDetails`]                           |
//! | `GET /api/runs/{id}/history`       | `[Event]` (the `wf history --json` format) |
//! | `GET /api/runs/{id}/attempts`      | `[AttemptRecord]`                        |
//! | `GET /api/runs/{id}/tree`          | [`TreeNode`]                             |
//! | `POST /api/runs/{id}/cancel`       | body [`CancelBody`]; writes only         |
//! | `POST /api/runs/{id}/terminate`    | body [`TerminateBody`]; writes only      |
//! | `POST /api/runs/{id}/signal`       | body [`SignalBody`]; writes only         |
//! | `POST /api/runs/{id}/reset`        | body [`ResetBody`], answer [`ResetAnswer`]; writes only |
//!
//! Every error is an [`ApiError`] body (`{"code": "not_found", "message": "..."}`) with
//! status 404 (not found), 400 (bad request: a path that is not UTF-8, a malformed query or
//! body), 401 (no or wrong token), 403 (writes disabled), 405 (wrong method), 409 (already
//! closed), 413 (body too large), 414 (request target over [`MAX_URI_BYTES`]) or 500.
//! (A request target over 64 KiB is refused by the HTTP layer before it, with an empty 414.)
//!
//! **Authentication:** a bearer token (`Authorization: Bearer <token>`, `wf --token` or
//! `WF_TOKEN`) is required for the write routes always, and for every route when the
//! endpoint listens on an address other than loopback (with a warning on stderr).

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use workflow_core::Client;

use crate::model::{self, ListQuery, RunDetails, TreeNode};
use crate::source::{ApiError, CancelBody, ResetAnswer, ResetBody, SignalBody, SourceError, TerminateBody};

/// How the admin endpoint behaves.
///
/// ```
/// use workflow_cli::admin::AdminOptions;
/// let options = AdminOptions::default().allow_writes(true);
/// assert!(options.allow_writes);
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct AdminOptions {
    /// Serve cancel, terminate and signal (403 otherwise). Default: read-only.
    pub allow_writes: bool,
    /// The bearer token requests must carry (`Authorization: Bearer <token>`): always for
    /// the write routes, and for every route when the endpoint is not on a loopback address.
    /// [`AdminServer::serve`] generates one when it needs one and none is given.
    pub token: Option<String>,
    /// Require the token for reads too (what `serve` sets when it binds a non-loopback
    /// address; for [`AdminServer::router`] mounted in an application's own server).
    pub token_for_reads: bool,
}

impl AdminOptions {
    /// Enables or disables the write routes.
    pub fn allow_writes(mut self, yes: bool) -> Self {
        self.allow_writes = yes;
        self
    }

    /// Sets the bearer token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into()).filter(|t| !t.is_empty());
        self
    }

    /// Requires the token for reads too.
    pub fn token_for_reads(mut self, yes: bool) -> Self {
        self.token_for_reads = yes;
        self
    }
}

/// A random token: 32 hex digits from the operating system's random source.
fn generate_token() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("{}{}", &a[..16], &b[..16])
}

/// Compares in time independent of where the first difference is.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the bearer token where one is needed: writes always, reads when configured.
async fn authenticate(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // Writes on a read-only endpoint are refused by their route (403, says why).
    let write = req.method() == axum::http::Method::POST && s.options.allow_writes;
    if req.method() == axum::http::Method::POST && !same_origin(req.headers()) {
        let body = ApiError {
            code: "forbidden".into(),
            message: "a write from another site's page is refused (its Origin is not this endpoint)".into(),
        };
        return (StatusCode::FORBIDDEN, Json(body)).into_response();
    }
    if write || s.options.token_for_reads {
        // A UI page opened with ?token=... (it then keeps the token in a cookie).
        let ui_login = req.method() == axum::http::Method::GET
            && req.uri().path().starts_with("/ui/")
            && s.options.token.as_ref().is_some_and(|t| {
                req.uri().query().unwrap_or_default().split('&').any(|kv| {
                    kv.strip_prefix("token=").is_some_and(|given| same_secret(t.as_bytes(), given.as_bytes()))
                })
            });
        if !ui_login && !s.token_matches(req.headers()) {
            let message = if s.options.token.is_none() {
                "this admin endpoint has no token, so its write routes are closed; give it one (AdminOptions::token)"
            } else {
                "this admin endpoint needs its token: pass wf --token TOKEN or set WF_TOKEN (in a browser, open /ui/?token=TOKEN once)"
            };
            let body = ApiError { code: "unauthorized".into(), message: message.into() };
            return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        }
    }
    next.run(req).await
}

/// The longest request target (path and query) the endpoint reads; longer ones get 414.
/// Workflow ids are at most 1,000 bytes, so a real request is far below it.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The outermost layer: refuses over-long request targets with 414, and turns every error
/// response that is not already an [`ApiError`] (the ones axum's extractors produce for a
/// path that is not UTF-8, a malformed query or body, a body too large) into one, so that
/// every error the endpoint sends has the documented JSON body.
async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        let body = ApiError {
            code: "uri_too_long".into(),
            message: format!("the request target is {target} bytes; at most {MAX_URI_BYTES} are read"),
        };
        return (StatusCode::URI_TOO_LONG, Json(body)).into_response();
    }
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    // The UI's error pages are HTML on purpose.
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    // axum's rejections are short plain text; read at most a little of it.
    let text = match axum::body::to_bytes(response.into_body(), 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let code = status.canonical_reason().unwrap_or("error").to_ascii_lowercase().replace([' ', '-'], "_");
    let message = if text.is_empty() { status.to_string() } else { text };
    (status, Json(ApiError { code, message })).into_response()
}

/// Whether a request's `Origin` (sent by browsers with every form post) is this endpoint
/// itself; requests without one (`wf`, scripts) pass.
fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let Some(origin) = headers.get(axum::http::header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = headers.get(axum::http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    origin.split_once("://").is_some_and(|(_, rest)| rest == host)
}

/// The admin HTTP server.
#[derive(Debug)]
pub struct AdminServer;

impl AdminServer {
    /// The address it listens on unless told otherwise: loopback only.
    pub const DEFAULT_ADDR: &'static str = "127.0.0.1:7233";

    /// The routes, to mount in an application's own axum server.
    pub fn router(client: Client, options: AdminOptions) -> Router {
        let state = AppState { client, options };
        Router::new()
            .route("/api/runs", get(list))
            .route("/api/runs/:id", get(describe))
            .route("/api/runs/:id/history", get(history))
            .route("/api/runs/:id/attempts", get(attempts))
            .route("/api/runs/:id/tree", get(tree))
            .route("/api/runs/:id/cancel", post(cancel))
            .route("/api/runs/:id/terminate", post(terminate))
            .route("/api/runs/:id/signal", post(signal))
            .route("/api/runs/:id/reset", post(reset))
            .merge(crate::ui::routes())
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(axum::middleware::from_fn_with_state(state.clone(), authenticate))
            .layer(axum::middleware::from_fn(json_errors))
            .with_state(state)
    }

    /// Binds `addr` (port 0 picks a free port) and serves until the handle is shut down or
    /// dropped.
    ///
    /// On an address other than loopback every request needs the token, and a warning says
    /// so; with writes enabled, writes need it. When one is needed and none was given, a
    /// token is generated: [`AdminHandle::token`] returns it, and the warning shows it.
    pub async fn serve(client: Client, addr: SocketAddr, mut options: AdminOptions) -> std::io::Result<AdminHandle> {
        let exposed = !addr.ip().is_loopback();
        if exposed {
            options.token_for_reads = true;
        }
        let generated = (exposed || options.allow_writes) && options.token.is_none();
        if generated {
            options.token = Some(generate_token());
        }
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        if exposed {
            let shown = if generated { options.token.clone().unwrap_or_default() } else { "(the one given)".into() };
            eprintln!(
                "warning: the admin endpoint listens on {local_addr}, reachable beyond this machine; every request needs Authorization: Bearer <token> (wf --token): token {shown}"
            );
        }
        let token = options.token.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let app = Self::router(client, options);
        let task = tokio::spawn(async move {
            let stop = async move {
                // A dropped handle stops the server too.
                let _ = rx.await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
                eprintln!("admin endpoint stopped: {e}");
            }
        });
        Ok(AdminHandle { local_addr, stop: Some(tx), task, token })
    }
}

async fn method_not_allowed() -> Response {
    let body = ApiError {
        code: "method_not_allowed".into(),
        message: "this route does not take that method (reads are GET, cancel/terminate/signal are POST)".into(),
    };
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

async fn not_found() -> Response {
    let body = ApiError {
        code: "not_found".into(),
        message: "no such route; see the admin endpoint's routes in wf's docs".into(),
    };
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

/// A running admin endpoint. Dropping it stops the server.
#[derive(Debug)]
pub struct AdminHandle {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    token: Option<String>,
}

impl AdminHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bearer token requests must carry, where one is needed (given or generated).
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Its base URL, for `wf --url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Stops the server: open connections get a second to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let abort = self.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(1), &mut self.task).await.is_err() {
            abort.abort();
        }
    }
}

impl Drop for AdminHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) client: Client,
    pub(crate) options: AdminOptions,
}

/// The cookie the web UI keeps the token in (set by opening a page with `?token=...`).
pub(crate) const TOKEN_COOKIE: &str = "wf_token";

impl AppState {
    /// Whether `headers` carry this endpoint's token: as `Authorization: Bearer`, or in the
    /// UI's cookie.
    pub(crate) fn token_matches(&self, headers: &axum::http::HeaderMap) -> bool {
        let Some(token) = &self.options.token else { return false };
        let bearer = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let cookie = headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().strip_prefix(TOKEN_COOKIE).and_then(|rest| rest.strip_prefix('=')))
            .next();
        [bearer, cookie].into_iter().flatten().any(|given| same_secret(token.as_bytes(), given.as_bytes()))
    }
}

struct ApiFailure(SourceError);

impl From<SourceError> for ApiFailure {
    fn from(e: SourceError) -> Self {
        ApiFailure(e)
    }
}

impl From<workflow_core::ControlError> for ApiFailure {
    fn from(e: workflow_core::ControlError) -> Self {
        ApiFailure(e.into())
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            SourceError::NotFound(_) => StatusCode::NOT_FOUND,
            SourceError::Usage(_) => StatusCode::BAD_REQUEST,
            SourceError::Forbidden(_) => StatusCode::FORBIDDEN,
            SourceError::AlreadyClosed(_) | SourceError::Conflict(_) => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = ApiError { code: self.0.code().into(), message: self.0.to_string() };
        (status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiFailure>;

async fn list(
    State(s): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<workflow_core::store::RunInfo>> {
    let Query(q) = query.map_err(|e| SourceError::Usage(format!("bad query: {}", e.body_text())))?;
    Ok(Json(s.client.list(&q.to_filter()).await?))
}

async fn describe(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<RunDetails> {
    Ok(Json(model::run_details(&s.client, &id).await?))
}

async fn history(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Vec<workflow_core::Event>> {
    Ok(Json(s.client.history(&id).await?))
}

async fn attempts(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Vec<workflow_core::store::AttemptRecord>> {
    Ok(Json(model::run_attempts(&s.client, &id).await?))
}

async fn tree(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<TreeNode> {
    Ok(Json(model::run_tree(&s.client, &id).await?))
}

fn check_writes(s: &AppState) -> Result<(), ApiFailure> {
    if s.options.allow_writes {
        Ok(())
    } else {
        Err(SourceError::Forbidden(
            "this admin endpoint is read-only; the process must enable writes (AdminOptions::allow_writes)".into(),
        )
        .into())
    }
}

fn body<T>(b: Result<Json<T>, axum::extract::rejection::JsonRejection>) -> Result<T, ApiFailure> {
    b.map(|Json(v)| v).map_err(|e| SourceError::Usage(format!("bad request body: {}", e.body_text())).into())
}

async fn cancel(
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<CancelBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<serde_json::Value> {
    check_writes(&s)?;
    let b = body(b)?;
    s.client.cancel(&id, b.reason).await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

async fn terminate(
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<TerminateBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<serde_json::Value> {
    check_writes(&s)?;
    let b = body(b)?;
    s.client.terminate(&id, &b.reason).await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

async fn signal(
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<SignalBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<serde_json::Value> {
    check_writes(&s)?;
    let b = body(b)?;
    workflow_core::validate_id("signal name", &b.name, 1000).map_err(|e| SourceError::Usage(e.to_string()))?;
    s.client.signal_raw(&id, &b.name, b.payload).await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

async fn reset(
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<ResetBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<ResetAnswer> {
    check_writes(&s)?;
    let b = body(b)?;
    let run_id = s.client.reset(&id, b.point, &b.reason).await.map_err(SourceError::from)?;
    Ok(Json(ResetAnswer { run_id }))
}
