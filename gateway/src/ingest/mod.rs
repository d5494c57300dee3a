//! HTTP ingest: routes, body limits and decoding, per-event validation, and
//! the JSON answers. Knows nothing of wasmtime or sink clients: it hands
//! validated events to [`Gateway::submit`].

mod decode;
mod error;

use crate::gateway::{Batch, Gateway, SubmitError};
use crate::sinks::{BatchMeta, Readiness};
use crate::telemetry::HttpLabels;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
pub use error::ApiError;
use serde_json::{Value, json};
use std::sync::Arc;
use tower_http::decompression::RequestDecompressionLayer;
pub use wraith_event::wire::{BatchAnswer, EventErrorBody};

/// Limits applied to requests.
#[derive(Debug, Clone)]
pub struct IngestLimits {
    pub max_body_bytes: usize,
    pub max_events: usize,
}

/// Shared state of the routes.
pub struct AppState {
    pub gateway: Arc<Gateway>,
    pub limits: IngestLimits,
}

/// The gateway's HTTP API.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/events", post(post_events))
        .route("/events", post(post_events))
        .route("/event", post(post_event))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/v1/plugins", get(plugins))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(RequestDecompressionLayer::new())
        .layer(axum::middleware::from_fn(explain_bare_errors))
        .with_state(state)
}

/// The router answers a wrong method (405) and the decompression layer an
/// unknown `Content-Encoding` (415) with an empty body; give them the same
/// JSON error body as every other refusal.
async fn explain_bare_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let encoding = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let resp = next.run(req).await;
    if resp.headers().contains_key(header::CONTENT_TYPE) {
        return resp;
    }
    match resp.status() {
        // The router adds the `Allow` header on the way out.
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {path} (the Allow header lists what is)"),
        )
        .into_response(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            format!(
                "content encoding {:?} is not supported; send gzip or no Content-Encoding",
                encoding.unwrap_or_default()
            ),
        )
        .into_response(),
        _ => resp,
    }
}

async fn count_requests(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let resp = next.run(req).await;
    state
        .gateway
        .metrics
        .http_requests
        .get_or_create(&HttpLabels {
            route,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}

async fn post_events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = decode::read_body(body, state.limits.max_body_bytes).await?;
    let parsed = decode::parse_batch(&headers, &bytes)?;
    ingest(&state, parsed, BatchMeta::now("http")).await
}

async fn post_event(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = decode::read_body(body, state.limits.max_body_bytes).await?;
    let parsed = decode::parse_single(&headers, &bytes)?;
    ingest(&state, parsed, BatchMeta::now("http")).await
}

async fn ingest(
    state: &AppState,
    parsed: Vec<Result<Value, decode::Refused>>,
    meta: BatchMeta,
) -> Result<Response, ApiError> {
    if parsed.is_empty() {
        return Err(ApiError::bad_request(
            "empty_batch",
            "the request holds no events",
        ));
    }
    if parsed.len() > state.limits.max_events {
        return Err(ApiError::too_large(format!(
            "the request holds {} events; at most {} are accepted in one request",
            parsed.len(),
            state.limits.max_events
        )));
    }
    let metrics = &state.gateway.metrics;
    metrics.events_received.inc_by(parsed.len() as u64);
    let now = meta.received_at;
    let mut valid = Vec::with_capacity(parsed.len());
    let mut event_ids = Vec::with_capacity(parsed.len());
    let mut errors = Vec::new();
    for (index, item) in parsed.into_iter().enumerate() {
        let checked = item.and_then(|v| {
            wraith_event::validate::normalize(v, now).map_err(|e| decode::Refused {
                field: e.field.to_string(),
                message: e.message,
            })
        });
        match checked {
            Ok(event) => {
                event_ids.push(
                    event
                        .get("event_id")
                        .and_then(|v| v.as_str())
                        .map(str::to_string),
                );
                valid.push(event);
            }
            Err(r) => {
                event_ids.push(None);
                errors.push(EventErrorBody {
                    index,
                    field: r.field,
                    message: r.message,
                });
            }
        }
    }
    metrics.events_invalid.inc_by(errors.len() as u64);
    let submitted = if valid.is_empty() {
        Default::default()
    } else {
        state
            .gateway
            .submit(Batch {
                events: valid,
                meta,
            })
            .await
            .map_err(|e| match e {
                SubmitError::Sink(e) => ApiError::unavailable(e.to_string()),
                e @ SubmitError::Busy { .. } => ApiError::busy(e.to_string()),
                SubmitError::Internal(m) => ApiError::internal(m),
            })?
    };
    let all_invalid =
        submitted == Default::default() && !errors.is_empty() && errors.len() == event_ids.len();
    let answer = BatchAnswer {
        accepted: submitted.accepted,
        dropped: submitted.dropped,
        dead_lettered: submitted.dead_lettered,
        invalid: errors.len(),
        event_ids,
        errors,
    };
    let status = if all_invalid {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((status, Json(answer)).into_response())
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Able to take data: the chain is loaded and every sink can write.
/// (`/health` only says the process is alive.)
async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let chain = state.gateway.registry.chain();
    let sinks: serde_json::Map<String, Value> = state
        .gateway
        .sinks
        .targets()
        .iter()
        .map(|t| {
            let r = t.sink.readiness();
            (t.sink.name().to_string(), json!(r))
        })
        .collect();
    let sinks_ready = state.gateway.sinks.not_ready().is_none();
    let body = json!({
        "status": if chain.generation == 0 { "loading plugins" } else if sinks_ready { "ready" } else { "sink unavailable" },
        "generation": chain.generation,
        "plugins": chain.links.len(),
        "sinks": sinks,
    });
    if chain.generation == 0 || !sinks_ready {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(body).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    for t in state.gateway.sinks.targets() {
        let up = matches!(t.sink.readiness(), Readiness::Ready);
        state
            .gateway
            .metrics
            .sink_up
            .get_or_create(&crate::telemetry::SinkLabels {
                sink: t.sink.name(),
            })
            .set(i64::from(up));
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.gateway.metrics.encode(),
    )
        .into_response()
}

async fn plugins(State(state): State<Arc<AppState>>) -> Json<Value> {
    let (generation, plugins, manifest_error) = state.gateway.registry.status();
    Json(json!({
        "generation": generation,
        "dir": state.gateway.registry.dir().display().to_string(),
        "manifest_error": manifest_error,
        "plugins": plugins,
    }))
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no route for {} {}; events go to POST /v1/events",
            req.method(),
            req.uri().path()
        ),
    )
}
