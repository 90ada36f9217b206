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
//!
//! Errors are [`ApiError`] bodies (`{"code": "not_found", "message": "..."}`) with status 404
//! (not found), 400 (bad request), 403 (writes disabled), 409 (already closed) or 500.

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
use crate::source::{ApiError, CancelBody, SignalBody, SourceError, TerminateBody};

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
}

impl AdminOptions {
    /// Enables or disables the write routes.
    pub fn allow_writes(mut self, yes: bool) -> Self {
        self.allow_writes = yes;
        self
    }
}

/// The admin HTTP server.
#[derive(Debug)]
pub struct AdminServer;

impl AdminServer {
    /// The address it listens on unless told otherwise: loopback only.
    pub const DEFAULT_ADDR: &'static str = "127.0.0.1:7233";

    /// The routes, to mount in an application's own axum server.
    pub fn router(client: Client, options: AdminOptions) -> Router {
        Router::new()
            .route("/api/runs", get(list))
            .route("/api/runs/:id", get(describe))
            .route("/api/runs/:id/history", get(history))
            .route("/api/runs/:id/attempts", get(attempts))
            .route("/api/runs/:id/tree", get(tree))
            .route("/api/runs/:id/cancel", post(cancel))
            .route("/api/runs/:id/terminate", post(terminate))
            .route("/api/runs/:id/signal", post(signal))
            .with_state(AppState { client, options })
    }

    /// Binds `addr` (port 0 picks a free port) and serves until the handle is shut down or
    /// dropped.
    pub async fn serve(client: Client, addr: SocketAddr, options: AdminOptions) -> std::io::Result<AdminHandle> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
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
        Ok(AdminHandle { local_addr, stop: Some(tx), task })
    }
}

/// A running admin endpoint. Dropping it stops the server.
#[derive(Debug)]
pub struct AdminHandle {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl AdminHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
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
struct AppState {
    client: Client,
    options: AdminOptions,
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
            SourceError::AlreadyClosed(_) => StatusCode::CONFLICT,
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
