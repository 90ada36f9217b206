//! Arbitrary requests to the admin endpoint (methods, paths with any bytes percent-encoded,
//! queries, bodies, tokens): no panic, and every answer is the documented JSON body, or for
//! the web UI's pages (`/ui/...`) an HTML page.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use tower::ServiceExt;
use workflow_cli::admin::{AdminOptions, AdminServer, MAX_URI_BYTES};
use workflow_cli::source::ApiError;
use workflow_core::store::MemoryStore;
use workflow_core::Client;

fn percent_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

fn request() -> impl Strategy<Value = (String, String, Vec<u8>, Option<String>)> {
    let method = prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]);
    let route =
        prop::sample::select(vec!["", "/history", "/attempts", "/tree", "/cancel", "/terminate", "/signal", "/x"]);
    let id = prop::collection::vec(any::<u8>(), 0..40);
    let prefix = prop::sample::select(vec![
        "/api/runs",
        "/api/runs/",
        "/api",
        "/",
        "/ui/",
        "/ui/runs/",
        "/ui",
        "/api/runs/a/b/c",
    ]);
    let query = prop::option::of(prop::collection::vec(any::<u8>(), 0..30));
    let body = prop::collection::vec(any::<u8>(), 0..200);
    let token = prop::option::of("[ -~]{0,40}");
    (method, prefix, id, route, query, body, token).prop_map(|(method, prefix, id, route, query, body, token)| {
        let mut uri =
            format!("{prefix}{}{route}", if prefix.ends_with('/') { percent_encode(&id) } else { String::new() });
        if let Some(q) = query {
            uri.push('?');
            uri.push_str(&percent_encode(&q));
        }
        (method.to_string(), uri, body, token)
    })
}

async fn check(router: axum::Router, method: &str, uri: &str, body: Vec<u8>, token: Option<String>) {
    let mut req = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let Ok(req) = req.body(Body::from(body)) else { return }; // not an HTTP request at all
    let response = router.oneshot(req).await.expect("the router never fails");
    let status = response.status();
    let html = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    if method == "HEAD" {
        // HTTP: the server sends no body for HEAD, whatever the router made.
        return;
    }
    if html {
        assert!(uri.starts_with("/ui"), "{method} {uri}: HTML outside the UI");
        assert!(bytes.starts_with(b"<!DOCTYPE html>"), "{method} {uri}: {status} not a page");
        return;
    }
    if status.is_client_error() || status.is_server_error() {
        let error: ApiError = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{method} {uri}: {status} with a body that is not an ApiError ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert!(!error.code.is_empty() && !error.message.is_empty(), "{method} {uri}: {error:?}");
    } else if !status.is_redirection() {
        assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(), "{method} {uri}: {status} not JSON");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
    #[test]
    fn every_answer_is_json((method, uri, body, token) in request(), writes in any::<bool>()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let client = Client::new(Arc::new(MemoryStore::new()));
            let options = AdminOptions::default().allow_writes(writes).token("secret");
            check(AdminServer::router(client, options), &method, &uri, body, token).await;
        });
    }
}

#[tokio::test]
async fn bad_utf8_long_targets_and_wrong_methods_get_json_errors() {
    let client = Client::new(Arc::new(MemoryStore::new()));
    let router = AdminServer::router(client, AdminOptions::default());
    let cases = [
        ("GET", "/api/runs/%FF%FE".to_string(), StatusCode::BAD_REQUEST),
        ("GET", "/api/runs?limit=many".to_string(), StatusCode::BAD_REQUEST),
        ("GET", format!("/api/runs/{}", "a".repeat(MAX_URI_BYTES)), StatusCode::URI_TOO_LONG),
        ("DELETE", "/api/runs/x".to_string(), StatusCode::METHOD_NOT_ALLOWED),
        ("GET", "/nowhere".to_string(), StatusCode::NOT_FOUND),
    ];
    for (method, uri, expected) in cases {
        let req = Request::builder().method(method).uri(&uri).body(Body::empty()).unwrap();
        let response = router.clone().oneshot(req).await.unwrap();
        assert_eq!(response.status(), expected, "{method} {}", &uri[..uri.len().min(40)]);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let error: ApiError = serde_json::from_slice(&bytes).expect("an ApiError body");
        assert!(!error.message.is_empty());
    }
}
