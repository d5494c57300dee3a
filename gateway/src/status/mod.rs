//! The status page at `/` and the JSON it reads (`/v1/status`).
//!
//! The page is one HTML file and one script compiled into the binary: no
//! build step, no CDN, works offline. The HTML holds no data; everything it
//! shows comes from `/v1/status` and `/v1/playground`, which need a token
//! when tokens are on (the page asks for one and keeps it for the tab).
//! The script writes every value with `textContent`, never as HTML, so a
//! plugin's reason or a field of an event cannot become markup.

use crate::activity::{Totals, now_ms};
use crate::ingest::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");

/// What the page's script may do: talk to this gateway, nothing else.
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
                   style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// `GET /`.
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE,
    )
        .into_response()
}

/// `GET /ui/page.js`.
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// `GET /v1/status`: the chain with each plugin's counters, latency and
/// last error; the event totals; throughput over the last minutes; the
/// newest dead-letter reasons; the sinks' state.
pub async fn status(State(state): State<Arc<AppState>>) -> Json<Value> {
    let g = &state.gateway;
    let (generation, plugins, manifest_error) = g.registry.status();
    let sinks: serde_json::Map<String, Value> = g
        .sinks
        .targets()
        .iter()
        .map(|t| (t.sink.name().to_string(), json!(t.sink.readiness())))
        .collect();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "contract": crate::host::CONTRACTS,
        "now": now_ms(),
        "uptime_seconds": g.started.elapsed().as_secs(),
        "generation": generation,
        "plugins_dir": g.registry.dir().display().to_string(),
        "manifest_error": manifest_error,
        "plugins": plugins,
        "totals": Totals::read(&g.metrics),
        "sample_seconds": crate::activity::SAMPLE_EVERY.as_secs(),
        "rates": g.activity.rates(),
        "dead_letters": g.activity.dead_letters(),
        "sinks": sinks,
        "auth": state.auth.enabled(),
        "last_reload": g.activity.last_reload(),
    }))
}
