//! A mock enrichment API, served in-process on `127.0.0.1` with a random port.
//!
//! `POST /enrich` with `{"id", "email", "country"}` answers `{"id", "region", "segment"}`.
//! A configurable share of users fails: half of them with `503`, half with a `200` whose body
//! is not JSON, so both kinds of per-record failure are exercised. Which users fail is a
//! deterministic function of the user id, not a coin toss: an interrupted and resumed batch
//! produces the same output as an uninterrupted one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// How the mock behaves.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MockApiOptions {
    /// Share of users whose call fails, from 0.0 to 1.0. Default 0.1.
    pub failure_rate: f64,
    /// Delay before each answer. Default 0.
    pub latency: Duration,
}

impl Default for MockApiOptions {
    fn default() -> Self {
        MockApiOptions { failure_rate: 0.1, latency: Duration::ZERO }
    }
}

impl MockApiOptions {
    /// Sets the failure rate (clamped to 0.0..=1.0).
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.failure_rate = if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) };
        self
    }

    /// Sets the per-call latency.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }
}

/// The request body of `POST /enrich`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnrichRequest {
    /// The user's id.
    pub id: String,
    /// The user's email.
    pub email: String,
    /// The user's country code.
    pub country: String,
}

/// The response body of `POST /enrich`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnrichResponse {
    /// The user's id, echoed.
    pub id: String,
    /// The sales region of the user's country.
    pub region: String,
    /// The customer segment.
    pub segment: String,
}

/// What the mock does for one user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers normally.
    Ok,
    /// Answers `503 Service Unavailable`.
    Unavailable,
    /// Answers `200` with a body that is not JSON.
    Garbage,
}

/// FNV-1a: stable across platforms and releases, unlike `DefaultHasher`.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// What the mock does for user `id` at `failure_rate`: the same answer every time.
pub fn behaviour(id: &str, failure_rate: f64) -> Behaviour {
    let h = fnv1a(id);
    if ((h % 10_000) as f64) < failure_rate * 10_000.0 {
        if (h >> 32).is_multiple_of(2) {
            Behaviour::Unavailable
        } else {
            Behaviour::Garbage
        }
    } else {
        Behaviour::Ok
    }
}

/// The region the mock assigns to a country code.
pub fn region_of(country: &str) -> &'static str {
    match country.to_ascii_uppercase().as_str() {
        "US" | "CA" | "MX" => "NA",
        "BR" | "AR" | "CL" | "CO" => "LATAM",
        "GB" | "DE" | "FR" | "ES" | "IT" | "NL" | "SE" | "PL" => "EMEA",
        "ZA" | "NG" | "KE" | "EG" => "EMEA",
        "IN" | "JP" | "SG" | "AU" | "CN" | "KR" => "APAC",
        _ => "OTHER",
    }
}

fn segment_of(id: &str) -> &'static str {
    ["consumer", "smb", "enterprise"][(fnv1a(id) >> 16) as usize % 3]
}

async fn enrich(State(opts): State<Arc<MockApiOptions>>, Json(req): Json<EnrichRequest>) -> Response {
    if !opts.latency.is_zero() {
        tokio::time::sleep(opts.latency).await;
    }
    match behaviour(&req.id, opts.failure_rate) {
        Behaviour::Ok => Json(EnrichResponse {
            region: region_of(&req.country).to_string(),
            segment: segment_of(&req.id).to_string(),
            id: req.id,
        })
        .into_response(),
        Behaviour::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "enrichment backend overloaded").into_response(),
        Behaviour::Garbage => {
            ([(header::CONTENT_TYPE, "application/json")], "<html><body>502 Bad Gateway</body></html>").into_response()
        }
    }
}

/// A running mock API. Dropping it stops the server.
pub struct MockApi {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl MockApi {
    /// Starts the mock on `127.0.0.1` with a random port. Must be called inside a tokio runtime.
    pub async fn start(options: MockApiOptions) -> std::io::Result<MockApi> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = Router::new().route("/enrich", post(enrich)).with_state(Arc::new(options));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "mock enrichment API stopped");
            }
        });
        Ok(MockApi { addr, stop: Some(stop), task })
    }

    /// The base URL, for example `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_deterministic_and_near_the_rate() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("u{i:07}")).collect();
        let failed = ids.iter().filter(|id| behaviour(id, 0.1) != Behaviour::Ok).count();
        assert!((800..1200).contains(&failed), "{failed}");
        let garbage = ids.iter().filter(|id| behaviour(id, 0.1) == Behaviour::Garbage).count();
        assert!(garbage > 300 && garbage < failed - 300, "{garbage} of {failed}");
        assert!(ids.iter().all(|id| behaviour(id, 0.0) == Behaviour::Ok));
        assert!(ids.iter().all(|id| behaviour(id, 1.0) != Behaviour::Ok));
        assert_eq!(behaviour("u0000042", 0.3), behaviour("u0000042", 0.3));
    }

    #[tokio::test]
    async fn serves_enrichment() {
        let api = MockApi::start(MockApiOptions::default().failure_rate(0.0)).await.unwrap();
        let resp: EnrichResponse = reqwest::Client::new()
            .post(format!("{}/enrich", api.url()))
            .json(&EnrichRequest { id: "u1".into(), email: "a@example.com".into(), country: "de".into() })
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(resp.region, "EMEA");
        assert_eq!(resp.id, "u1");
        api.stop().await;
    }
}
