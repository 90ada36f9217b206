//! The web UI, served under `/ui/` by the admin endpoint ([`AdminServer`](crate::admin::AdminServer))
//! and by `wf ui`: a runs list (counts per status, filters, search by id prefix, paging, live
//! refresh) and a page per run (summary and failure chain, pending activities with their
//! heartbeats, a timeline of every attempt, timer and child, the history with each event's
//! JSON, the attempt log, children with progress, and actions when writes are enabled).
//!
//! Server-rendered HTML (maud) with a little plain JavaScript, assets embedded in the binary,
//! no external requests. It reads through the same [`Client`](workflow_core::Client) as the
//! JSON API and needs the same token: a browser passes it once as `?token=...`, which sets a
//! `SameSite=Strict`, `HttpOnly` cookie.

mod page;
mod view;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use workflow_core::store::RunFilter;
use workflow_core::{ControlError, Payload};

use crate::admin::{AppState, TOKEN_COOKIE};
use crate::model;
use page::Access;
use view::{RunsQuery, RunsView};

/// The UI's routes, for the admin router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(runs))
        .route("/ui/runs/:id", get(run))
        .route("/ui/runs/:id/history.json", get(history_json))
        .route("/ui/runs/:id/cancel", post(cancel))
        .route("/ui/runs/:id/terminate", post(terminate))
        .route("/ui/runs/:id/signal", post(signal))
        .route("/ui/assets/ui.css", get(|| async { asset("text/css; charset=utf-8", include_str!("assets/ui.css")) }))
        .route(
            "/ui/assets/ui.js",
            get(|| async { asset("text/javascript; charset=utf-8", include_str!("assets/ui.js")) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}

/// An HTML error page with `status`.
fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    (status, Html(page::error_page(title, &message.to_string()))).into_response()
}

fn control_error(e: ControlError) -> Response {
    match e {
        ControlError::NotFound { .. } => error(StatusCode::NOT_FOUND, e),
        ControlError::AlreadyClosed { .. } => error(StatusCode::CONFLICT, e),
        ControlError::Payload(_) => error(StatusCode::BAD_REQUEST, e),
        other => error(StatusCode::INTERNAL_SERVER_ERROR, other),
    }
}

/// `?token=...` on a page: keep it in a cookie and show the page without it in the URL.
fn token_login(path: &str, token: Option<&str>) -> Option<Response> {
    let token = token?;
    let cookie = format!("{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
    Some(([(header::SET_COOKIE, cookie)], Redirect::to(path)).into_response())
}

fn access(s: &AppState, headers: &HeaderMap) -> Access {
    Access { writes: s.options.allow_writes, token: s.token_matches(headers) }
}

#[derive(Deserialize)]
struct TokenParam {
    token: Option<String>,
}

async fn runs(State(s): State<AppState>, Query(t): Query<TokenParam>, query: Option<Query<RunsQuery>>) -> Response {
    if let Some(r) = token_login("/ui/", t.token.as_deref()) {
        return r;
    }
    let Some(Query(query)) = query else {
        return error(StatusCode::BAD_REQUEST, "bad filter: status must be one of the listed statuses, page a number");
    };
    let all = match s.client.list(&RunFilter::default()).await {
        Ok(all) => all,
        Err(e) => return control_error(e),
    };
    let v: RunsView = view::runs_view(&all, query, s.client.now());
    Html(page::runs_page(&v)).into_response()
}

#[derive(Deserialize)]
struct RunParams {
    token: Option<String>,
    events_page: Option<usize>,
    attempts_page: Option<usize>,
    done: Option<String>,
}

async fn run(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Option<Query<RunParams>>,
) -> Response {
    let Some(Query(params)) = params else {
        return error(StatusCode::BAD_REQUEST, "bad query: events_page and attempts_page must be numbers");
    };
    if let Some(r) = token_login(&format!("/ui/runs/{}", view::encode(&id)), params.token.as_deref()) {
        return r;
    }
    let details = match model::run_details(&s.client, &id).await {
        Ok(d) => d,
        Err(e) => return control_error(e),
    };
    let history = match s.client.store().read_history(&details.info.run_id, 0).await {
        Ok(h) => h,
        Err(e) => return control_error(e.into()),
    };
    let pages = view::Pages { events: params.events_page.unwrap_or(1), attempts: params.attempts_page.unwrap_or(1) };
    let v = view::run_view(&details, &history, pages, s.client.now());
    Html(page::run_page(&v, access(&s, &headers), params.done.as_deref())).into_response()
}

async fn history_json(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.client.history(&id).await {
        Ok(h) => {
            let file = format!("attachment; filename=\"history-{}.json\"", view::encode(&id));
            let body = crate::render::render_history_json(&h);
            ([(header::CONTENT_TYPE, "application/json".to_string()), (header::CONTENT_DISPOSITION, file)], body)
                .into_response()
        }
        Err(e) => control_error(e),
    }
}

#[derive(Deserialize)]
struct ReasonForm {
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
struct SignalForm {
    name: String,
    #[serde(default)]
    payload: String,
}

/// After an action: back to the run's page, which says what was done.
fn done(id: &str, what: &str) -> Response {
    Redirect::to(&format!("/ui/runs/{}?done={}", view::encode(id), view::encode(what))).into_response()
}

fn check_writes(s: &AppState) -> Option<Response> {
    (!s.options.allow_writes).then(|| {
        error(StatusCode::FORBIDDEN, "this endpoint is read-only; the process must enable writes (AdminOptions::allow_writes, wf ui --allow-writes)")
    })
}

async fn cancel(State(s): State<AppState>, Path(id): Path<String>, Form(f): Form<ReasonForm>) -> Response {
    if let Some(r) = check_writes(&s) {
        return r;
    }
    let reason = Some(f.reason.trim().to_string()).filter(|r| !r.is_empty());
    match s.client.cancel(&id, reason).await {
        Ok(()) => done(&id, "Cancellation requested."),
        Err(e) => control_error(e),
    }
}

async fn terminate(State(s): State<AppState>, Path(id): Path<String>, Form(f): Form<ReasonForm>) -> Response {
    if let Some(r) = check_writes(&s) {
        return r;
    }
    if f.reason.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "a termination needs a reason");
    }
    match s.client.terminate(&id, f.reason.trim()).await {
        Ok(()) => done(&id, "Terminated."),
        Err(e) => control_error(e),
    }
}

async fn signal(State(s): State<AppState>, Path(id): Path<String>, Form(f): Form<SignalForm>) -> Response {
    if let Some(r) = check_writes(&s) {
        return r;
    }
    let text = if f.payload.trim().is_empty() { "null" } else { f.payload.trim() };
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("the payload is not JSON: {e}")),
    };
    if let Err(e) = workflow_core::validate_id("signal name", &f.name, 1000) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    match s.client.signal_raw(&id, &f.name, Payload::from_json(value)).await {
        Ok(()) => done(&id, &format!("Signal {:?} sent.", f.name)),
        Err(e) => control_error(e),
    }
}
