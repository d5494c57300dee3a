//! HTTP ingest: routes, body limits and decoding, per-event validation, and
//! the JSON answers. Knows nothing of wasmtime or sink clients: it hands
//! validated events to [`Gateway::submit`].

pub mod auth;
mod decode;
mod error;
#[cfg(test)]
mod fuzz;
pub mod limits;
pub mod otlp;
pub mod seeds;

use crate::gateway::{Batch, Gateway, SubmitError};
use crate::pipeline::Events;
use crate::sinks::{BatchMeta, Readiness};
use crate::telemetry::{HttpLabels, RefusedLabels};
pub use auth::{Auth, Client};
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
pub use decode::WireLimitError;
pub use error::ApiError;
use http_body_util::BodyExt as _;
pub use limits::{EventLimits, RateLimits};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tower_http::decompression::RequestDecompressionLayer;
pub use wraith_event::wire::{BatchAnswer, EventErrorBody};

/// The field ingest sets to the authenticated client's name on every event
/// (and removes from events sent without a token), so a body cannot claim
/// to come from another client.
pub const CLIENT_FIELD: &str = "_client";

/// Limits applied to requests.
#[derive(Debug, Clone)]
pub struct IngestLimits {
    /// `server.max_body_size`: the body after decompression.
    pub max_body_bytes: usize,
    /// `limits.max_wire_body_size`: the body as sent.
    pub max_wire_bytes: usize,
    /// `server.max_events_per_request`.
    pub max_events: usize,
    /// `limits.body_read_timeout`.
    pub body_timeout: Duration,
    /// The shape of each event.
    pub event: EventLimits,
}

impl Default for IngestLimits {
    fn default() -> Self {
        let c = crate::config::Config::default();
        IngestLimits::from_config(&c)
    }
}

impl IngestLimits {
    pub fn from_config(c: &crate::config::Config) -> Self {
        IngestLimits {
            max_body_bytes: c.server.max_body_size.as_u64() as usize,
            max_wire_bytes: c.limits.max_wire_body_size.as_u64() as usize,
            max_events: c.server.max_events_per_request,
            body_timeout: c.limits.body_read_timeout,
            event: EventLimits::from_config(&c.limits),
        }
    }
}

/// Shared state of the routes.
pub struct AppState {
    pub gateway: Arc<Gateway>,
    /// Swapped whole when the config is reloaded (SIGHUP).
    pub limits: arc_swap::ArcSwap<IngestLimits>,
    /// The accepted tokens (none: anyone may send).
    pub auth: Arc<Auth>,
    /// Per-client token buckets, when `limits.requests_per_second` is set.
    pub rate: arc_swap::ArcSwapOption<RateLimits>,
}

impl AppState {
    pub fn new(
        gateway: Arc<Gateway>,
        limits: IngestLimits,
        auth: Arc<Auth>,
        rate: Option<Arc<RateLimits>>,
    ) -> Self {
        AppState {
            gateway,
            limits: arc_swap::ArcSwap::from_pointee(limits),
            auth,
            rate: arc_swap::ArcSwapOption::new(rate),
        }
    }

    /// The limits in force now.
    pub fn limits(&self) -> Arc<IngestLimits> {
        self.limits.load_full()
    }
}

/// The gateway's HTTP API.
pub fn app(state: Arc<AppState>) -> Router<()> {
    // Everything that takes data or shows the chain needs a token (when
    // tokens are on) and room in the client's bucket.
    let guarded = Router::new()
        .route("/v1/events", post(post_events))
        .route("/events", post(post_events_compat))
        .route("/event", post(post_event))
        .route("/api/v1/events", post(post_envelope))
        .route("/v1/metrics", post(otlp::metrics))
        .route("/v1/logs", post(otlp::logs))
        .route("/v1/traces", post(otlp::traces))
        .route("/v1/plugins", get(plugins))
        .route("/v1/status", get(crate::status::status))
        .route("/v1/playground", post(playground))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), guard));
    Router::new()
        .merge(guarded)
        .route("/", get(crate::status::page))
        .route("/ui/page.js", get(crate::status::script))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(RequestDecompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            wire_limit,
        ))
        .layer(axum::middleware::from_fn(explain_bare_errors))
        .with_state(state)
}

/// The OTLP paths, whose refusals are `google.rpc.Status` bodies.
fn otlp_encoding(req: &Request) -> Option<otlp::Encoding> {
    match req.uri().path() {
        "/v1/metrics" | "/v1/logs" | "/v1/traces" => {
            let proto = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.to_ascii_lowercase().contains("protobuf"));
            Some(if proto {
                otlp::Encoding::Protobuf
            } else {
                otlp::Encoding::Json
            })
        }
        _ => None,
    }
}

fn refused(state: &AppState, reason: &'static str) {
    state
        .gateway
        .metrics
        .requests_refused
        .get_or_create(&RefusedLabels { reason })
        .inc();
}

/// A refusal before the handler: the Wraith error body, or for OTLP paths
/// a `Status` in the request's encoding; `Retry-After` and
/// `WWW-Authenticate` are kept either way.
fn refusal(
    otlp: Option<otlp::Encoding>,
    e: ApiError,
    extra: &[(header::HeaderName, HeaderValue)],
) -> Response {
    let mut resp = match otlp {
        Some(enc) => otlp::status_response(e.status, e.message, enc),
        None => e.into_response(),
    };
    for (k, v) in extra {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    resp
}

/// Auth and rate limits of the guarded routes: the client's name goes
/// into the request's extensions for the handler.
async fn guard(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let otlp = otlp_encoding(&req);
    let client = match state.auth.check(req.headers()) {
        Ok(c) => c,
        Err(auth::Unauthorized(message)) => {
            refused(&state, "unauthorized");
            return refusal(
                otlp,
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message),
                &[(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"wraith\""),
                )],
            );
        }
    };
    if let Some(rate) = state.rate.load_full() {
        let key: Arc<str> = match &client {
            Some(c) => c.clone(),
            None => req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(a)| a.ip().to_string().into())
                .unwrap_or_else(|| "unknown".into()),
        };
        if let Err(wait) = rate.check(&key) {
            refused(&state, "rate_limited");
            state.gateway.metrics.rate_limited.inc();
            let resp = rate.refusal(&key, wait);
            let Some(enc) = otlp else { return resp };
            let retry = resp.headers()[header::RETRY_AFTER].clone();
            return refusal(
                Some(enc),
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("client `{key}` is over its rate limit (limits.requests_per_second)"),
                ),
                &[(header::RETRY_AFTER, retry)],
            );
        }
    }
    if let Some(c) = client {
        req.extensions_mut().insert(Client(c));
    }
    next.run(req).await
}

/// `limits.max_wire_body_size` on the body as sent: a body that grows past
/// it fails its read (and so its decompression) at that point, answered 413.
/// (Refusing on `Content-Length` before reading would close the connection
/// while the client still writes, and it would never see the answer.)
async fn wire_limit(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let limit = state.limits.load().max_wire_bytes;
    let req = req.map(|body| {
        Body::new(http_body_util::Limited::new(body, limit).map_err(move |e| {
            if e.is::<http_body_util::LengthLimitError>() {
                Box::new(WireLimitError { limit }) as axum::BoxError
            } else {
                e
            }
        }))
    });
    next.run(req).await
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
    client: Option<Extension<Client>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let limits = state.limits();
    let bytes = decode::read_body(body, &limits).await?;
    let meta = meta("http", client);
    // Nearly every body: an array or NDJSON of valid events, read straight
    // into the layout the chain runs on.
    if let Some(parsed) = decode::parse_flat(
        &headers,
        &bytes,
        &limits,
        meta.client.as_deref(),
        meta.received_at,
    ) {
        return flat_response(&state, parsed, meta).await;
    }
    let parsed = decode::parse_batch(&headers, &bytes)?;
    batch_response(&state, parsed, meta).await
}

/// The answer to a body whose events were all read and checked on the fast
/// route ([`decode::parse_flat`]).
async fn flat_response(
    state: &AppState,
    parsed: wraith_event::body::Parsed,
    meta: BatchMeta,
) -> Result<Response, ApiError> {
    let metrics = &state.gateway.metrics;
    metrics.events_received.inc_by(parsed.ids.len() as u64);
    let submitted = submit(state, Events::Flat(parsed.batch), meta).await?;
    let answer = BatchAnswer {
        accepted: submitted.accepted,
        dropped: submitted.dropped,
        dead_lettered: submitted.dead_lettered,
        invalid: 0,
        event_ids: parsed.ids.into_iter().map(Some).collect(),
        errors: Vec::new(),
    };
    Ok(Json(answer).into_response())
}

/// Run checked events through the gateway; its refusals as HTTP errors.
async fn submit(
    state: &AppState,
    events: Events,
    meta: BatchMeta,
) -> Result<crate::gateway::Submitted, ApiError> {
    state
        .gateway
        .submit(Batch { events, meta })
        .await
        .map_err(|e| match e {
            SubmitError::Sink(e) => ApiError::unavailable(e.to_string()),
            e @ SubmitError::Busy { .. } => ApiError::busy(e.to_string()),
            SubmitError::Internal(m) => ApiError::internal(m),
        })
}

/// `/events`: Wraith events as at `/v1/events`, and network-probe
/// measurements (no `event_type`, a `ts_ms`), mapped by [`seeds::probe`].
async fn post_events_compat(
    State(state): State<Arc<AppState>>,
    client: Option<Extension<Client>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = decode::read_body(body, &state.limits()).await?;
    let parsed = decode::parse_batch(&headers, &bytes)?
        .into_iter()
        .map(|item| {
            item.map(|v| {
                if seeds::is_probe(&v) {
                    seeds::probe(v)
                } else {
                    v
                }
            })
        })
        .collect();
    batch_response(&state, parsed, meta("http", client)).await
}

async fn post_event(
    State(state): State<Arc<AppState>>,
    client: Option<Extension<Client>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = decode::read_body(body, &state.limits()).await?;
    let parsed = decode::parse_single(&headers, &bytes)?;
    batch_response(&state, parsed, meta("http", client)).await
}

/// `/api/v1/events`: the envelope, answered in its own shape
/// `{"status": "ok", "received": N, "warnings": [...]}`.
async fn post_envelope(
    State(state): State<Arc<AppState>>,
    client: Option<Extension<Client>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = decode::read_body(body, &state.limits()).await?;
    let value = decode::parse_json_body(&headers, &bytes)?;
    let env = seeds::envelope(value)?;
    let mut warnings = env.warnings;
    if env.items.is_empty() {
        return Ok(
            Json(json!({"status": "ok", "received": 0, "warnings": warnings})).into_response(),
        );
    }
    let answer = ingest_events(&state, env.items, meta("envelope", client)).await?;
    for e in &answer.errors {
        warnings.push(format!("event {} refused: {}", e.index, e.message));
    }
    if answer.dropped > 0 {
        warnings.push(format!(
            "{} events dropped by the plugin chain",
            answer.dropped
        ));
    }
    if answer.dead_lettered > 0 {
        warnings.push(format!(
            "{} events rejected by the plugin chain (kept in the dead-letter queue)",
            answer.dead_lettered
        ));
    }
    let received = answer.accepted + answer.dropped + answer.dead_lettered;
    if received == 0 {
        return Ok((
            StatusCode::BAD_REQUEST,
            Json(json!({
                "status": "error",
                "received": 0,
                "warnings": warnings,
                "error": {"code": "invalid_events", "message": "no event of the request is valid; the warnings say why"},
            })),
        )
            .into_response());
    }
    Ok(Json(json!({"status": "ok", "received": received, "warnings": warnings})).into_response())
}

fn meta(source: &'static str, client: Option<Extension<Client>>) -> BatchMeta {
    let mut m = BatchMeta::now(source);
    m.client = client.map(|Extension(Client(c))| c);
    m
}

/// Ingest and answer with the Wraith batch answer: 400 when every event
/// was invalid, else 200.
async fn batch_response(
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
    let answer = ingest_events(state, parsed, meta).await?;
    let all_invalid = answer.accepted + answer.dropped + answer.dead_lettered == 0
        && !answer.errors.is_empty()
        && answer.errors.len() == answer.event_ids.len();
    let status = if all_invalid {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((status, Json(answer)).into_response())
}

/// Check every candidate event (shape limits, then the event checks), mark
/// it with the client, and submit the valid ones as one batch.
pub(crate) async fn ingest_events(
    state: &AppState,
    parsed: Vec<Result<Value, decode::Refused>>,
    meta: BatchMeta,
) -> Result<BatchAnswer, ApiError> {
    let max_events = state.limits.load().max_events;
    if parsed.len() > max_events {
        refused(state, "too_many_events");
        return Err(ApiError::too_large(format!(
            "the request holds {} events; at most {} are accepted in one request (server.max_events_per_request)",
            parsed.len(),
            max_events
        )));
    }
    let metrics = &state.gateway.metrics;
    metrics.events_received.inc_by(parsed.len() as u64);
    let now = meta.received_at;
    let mut valid = Vec::with_capacity(parsed.len());
    let mut event_ids = Vec::with_capacity(parsed.len());
    let mut errors = Vec::new();
    let limits = state.limits.load();
    for (index, item) in parsed.into_iter().enumerate() {
        let checked = item.and_then(|v| check_one(&limits.event, v, meta.client.as_deref(), now));
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
        submit(state, Events::Values(valid), meta).await?
    };
    Ok(BatchAnswer {
        accepted: submitted.accepted,
        dropped: submitted.dropped,
        dead_lettered: submitted.dead_lettered,
        invalid: errors.len(),
        event_ids,
        errors,
    })
}

/// The checks every event passes before the chain: the shape limits, the
/// client field, then the event checks and defaults.
fn check_one(
    limits: &EventLimits,
    v: Value,
    client: Option<&str>,
    now: time::OffsetDateTime,
) -> Result<Value, decode::Refused> {
    limits::check_event(&v, limits)?;
    let mut v = v;
    if let Value::Object(m) = &mut v {
        m.remove(CLIENT_FIELD);
        if let Some(c) = client {
            m.insert(CLIENT_FIELD.into(), Value::String(c.to_string()));
        }
    }
    wraith_event::validate::normalize(v, now).map_err(|e| decode::Refused {
        field: e.field.to_string(),
        message: e.message,
    })
}

/// `POST /v1/playground`: one event through the live chain, a plugin at a
/// time, stored nowhere. Answers the [`crate::pipeline::trace::Trace`]:
/// the event before and after, and each plugin's verdict and edited paths.
async fn playground(
    State(state): State<Arc<AppState>>,
    client: Option<Extension<Client>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = decode::read_body(body, &state.limits()).await?;
    let item = decode::parse_single(&headers, &bytes)?
        .pop()
        .expect("one event");
    let client = client.map(|Extension(Client(c))| c);
    let event = item
        .and_then(|v| {
            check_one(
                &state.limits.load().event,
                v,
                client.as_deref(),
                time::OffsetDateTime::now_utc(),
            )
        })
        .map_err(|r| {
            ApiError::bad_request(
                "invalid_event",
                format!("invalid event: `{}`: {}", r.field, r.message),
            )
        })?;
    let trace = state
        .gateway
        .trace(event, client)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(trace).into_response())
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
