//! Logging setup and every metric the gateway exports, defined in one place.
//!
//! Names follow `wraith_<area>_<name>_<unit>[_total]`; labels are bounded:
//! `plugin` (file names chosen by the operator), `outcome`, `reason`, `route`
//! and `status` from fixed sets. Error messages are never labels.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels naming a plugin.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabel {
    pub plugin: String,
}

/// What happened to events inside a plugin.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum PluginOutcome {
    /// Handed to the plugin (label value `in`).
    r#in,
    /// Kept (possibly changed, possibly routed).
    kept,
    /// Dropped by the plugin's verdict.
    dropped,
    /// Rejected by the plugin's verdict (dead-lettered).
    rejected,
    /// In a batch on which the plugin faulted.
    faulted,
    /// Passed on unprocessed because the plugin is fail-open and faulted or is
    /// quarantined.
    passed,
}

impl EncodeLabelValue for PluginOutcome {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder,
    ) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        encoder.write_str(match self {
            PluginOutcome::r#in => "in",
            PluginOutcome::kept => "kept",
            PluginOutcome::dropped => "dropped",
            PluginOutcome::rejected => "rejected",
            PluginOutcome::faulted => "faulted",
            PluginOutcome::passed => "passed",
        })
    }
}

/// A shadow plugin and the live plugin it runs beside.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShadowLabels {
    pub shadow: String,
    pub live: String,
}

/// What differs between a shadow's answer and its live plugin's.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShadowDiffLabels {
    pub shadow: String,
    pub live: String,
    /// `verdict` or `edits`.
    pub kind: &'static str,
}

/// Whose calls a shadow's time is.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShadowTimeLabels {
    pub shadow: String,
    pub live: String,
    /// `shadow` or `live`.
    pub plugin: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginOutcomeLabels {
    pub plugin: String,
    pub outcome: PluginOutcome,
}

/// Why a plugin call failed.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum FaultReason {
    /// The guest trapped (a panic, unreachable, out-of-bounds access).
    trap,
    /// The call ran past its deadline.
    timeout,
    /// The instance tried to grow past its memory limit.
    memory,
    /// The answer broke the contract (bad index, bad edit, bad route name).
    malformed,
    /// A fresh instance could not be created or initialised.
    instantiate,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FaultLabels {
    pub plugin: String,
    pub reason: FaultReason,
}

/// Why an instance was rebuilt.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum RecycleReason {
    calls,
    memory,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RecycleLabels {
    pub plugin: String,
    pub reason: RecycleReason,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginCounterLabels {
    pub plugin: String,
    pub name: String,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ReloadOutcome {
    /// Every plugin file loaded.
    ok,
    /// At least one file failed; the rest of the chain was updated.
    failed,
    /// Files were touched but their contents and the manifest are what is
    /// running: nothing was swapped.
    unchanged,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub outcome: ReloadOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The matched route template, never the raw URI.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    pub sink: &'static str,
}

/// Why a batch was refused with 503: `busy` (no room among the batches in
/// flight), `sink_unavailable` (a sink was down before the chain ran),
/// `sink_error` (a sink failed the write).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    pub reason: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 10 µs .. ~2.6 s
    Histogram::new(exponential_buckets(0.000_01, 4.0, 10))
}

/// Every metric of the gateway.
pub struct Metrics {
    registry: Registry,
    /// Events that arrived in requests, valid or not.
    pub events_received: Counter,
    /// Events written to the analytics sink (default or routed destinations).
    pub events_accepted: Counter,
    /// Events refused at ingest as invalid (never stored).
    pub events_invalid: Counter,
    /// Events dropped by a plugin's verdict.
    pub events_dropped: Counter,
    /// Events written to the dead-letter queue.
    pub events_dead_lettered: Counter,
    /// Events per plugin and outcome.
    pub plugin_events: Family<PluginOutcomeLabels, Counter>,
    /// Seconds per plugin call on one batch.
    pub plugin_call_seconds: HistogramFamily<PluginLabel>,
    /// Extra calls spent isolating the events a batch faulted on.
    pub plugin_isolation_calls: Family<PluginLabel, Counter>,
    /// Events isolated as faulting the plugin on their own.
    pub plugin_poison_events: Family<PluginLabel, Counter>,
    /// Plugin faults per reason.
    pub plugin_faults: Family<FaultLabels, Counter>,
    /// Instances rebuilt on purpose, per reason.
    pub plugin_recycled: Family<RecycleLabels, Counter>,
    /// 1 while a plugin is quarantined.
    pub plugin_quarantined: Family<PluginLabel, Gauge>,
    /// Counters plugins keep through the `counter-add` import.
    pub plugin_counter: Family<PluginCounterLabels, Counter>,
    /// Chain reloads, per outcome.
    pub reloads: Family<ReloadLabels, Counter>,
    /// Plugins in the running chain.
    pub chain_plugins: Gauge,
    /// HTTP requests per route and status.
    pub http_requests: Family<HttpLabels, Counter>,
    /// Seconds from request to sink acknowledgement, per sink.
    pub sink_write_seconds: HistogramFamily<SinkLabels>,
    /// Failed sink writes, per sink.
    pub sink_errors: Family<SinkLabels, Counter>,
    /// 1 while a sink can take data, 0 while it cannot (set when scraped).
    pub sink_up: Family<SinkLabels, Gauge>,
    /// Seconds from a batch entering the gateway (after ingest's checks)
    /// to every sink's acknowledgement: the processing delay.
    pub batch_seconds: Histogram,
    /// Shadow runs: batches and events a shadow saw, events whose answer
    /// differs from the live plugin's, its faults, and the time of both.
    pub shadow_batches: Family<ShadowLabels, Counter>,
    pub shadow_events: Family<ShadowLabels, Counter>,
    pub shadow_differences: Family<ShadowDiffLabels, Counter>,
    pub shadow_faults: Family<ShadowLabels, Counter>,
    pub shadow_call_seconds: Family<ShadowTimeLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    /// Batches in the chain or waiting for a sink.
    pub batches_in_flight: Gauge,
    /// Batches refused with 503, per reason.
    pub batches_refused: Family<RefusedLabels, Counter>,
    /// Requests refused before their events were read, per reason
    /// (`unauthorized`, `rate_limited`, `too_many_events`).
    pub requests_refused: Family<RefusedLabels, Counter>,
    /// Requests refused because their client was over its rate limit.
    pub rate_limited: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            events_received: Counter::default(),
            events_accepted: Counter::default(),
            events_invalid: Counter::default(),
            events_dropped: Counter::default(),
            events_dead_lettered: Counter::default(),
            plugin_events: Family::default(),
            plugin_call_seconds: Family::new_with_constructor(latency_histogram),
            plugin_isolation_calls: Family::default(),
            plugin_poison_events: Family::default(),
            plugin_faults: Family::default(),
            plugin_recycled: Family::default(),
            plugin_quarantined: Family::default(),
            plugin_counter: Family::default(),
            reloads: Family::default(),
            chain_plugins: Gauge::default(),
            http_requests: Family::default(),
            sink_write_seconds: Family::new_with_constructor(latency_histogram),
            sink_errors: Family::default(),
            sink_up: Family::default(),
            batch_seconds: latency_histogram(),
            shadow_batches: Family::default(),
            shadow_events: Family::default(),
            shadow_differences: Family::default(),
            shadow_faults: Family::default(),
            shadow_call_seconds: Family::default(),
            batches_in_flight: Gauge::default(),
            batches_refused: Family::default(),
            requests_refused: Family::default(),
            rate_limited: Counter::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "wraith_events_received",
            "Events that arrived in requests, valid or not",
            m.events_received.clone(),
        );
        r.register(
            "wraith_events_accepted",
            "Events written to the analytics sink",
            m.events_accepted.clone(),
        );
        r.register(
            "wraith_events_invalid",
            "Events refused at ingest as invalid",
            m.events_invalid.clone(),
        );
        r.register(
            "wraith_events_dropped",
            "Events dropped by a plugin verdict",
            m.events_dropped.clone(),
        );
        r.register(
            "wraith_events_dead_lettered",
            "Events written to the dead-letter queue",
            m.events_dead_lettered.clone(),
        );
        r.register(
            "wraith_plugin_events",
            "Events per plugin and outcome (in, kept, dropped, rejected, faulted, passed)",
            m.plugin_events.clone(),
        );
        r.register(
            "wraith_plugin_call_seconds",
            "Duration of one plugin call on one batch",
            m.plugin_call_seconds.clone(),
        );
        r.register(
            "wraith_plugin_isolation_calls",
            "Extra plugin calls made on parts of a faulting batch to find the events that fault",
            m.plugin_isolation_calls.clone(),
        );
        r.register(
            "wraith_plugin_poison_events",
            "Events found to fault a plugin on their own (dead-lettered alone, or passed on by a fail-open plugin)",
            m.plugin_poison_events.clone(),
        );
        r.register(
            "wraith_plugin_faults",
            "Plugin faults per reason (trap, timeout, memory, malformed, instantiate)",
            m.plugin_faults.clone(),
        );
        r.register(
            "wraith_plugin_instances_recycled",
            "Plugin instances rebuilt after too many calls or too much memory",
            m.plugin_recycled.clone(),
        );
        r.register(
            "wraith_plugin_quarantined",
            "1 while a plugin is quarantined after repeated faults",
            m.plugin_quarantined.clone(),
        );
        r.register(
            "wraith_plugin_counter",
            "Counters kept by plugins through the host import",
            m.plugin_counter.clone(),
        );
        r.register(
            "wraith_reloads",
            "Plugin chain reloads per outcome (ok, failed, unchanged)",
            m.reloads.clone(),
        );
        r.register(
            "wraith_chain_plugins",
            "Plugins in the running chain",
            m.chain_plugins.clone(),
        );
        r.register(
            "wraith_http_requests",
            "HTTP requests per matched route and status",
            m.http_requests.clone(),
        );
        r.register(
            "wraith_sink_write_seconds",
            "Time from handing events to a sink to its acknowledgement",
            m.sink_write_seconds.clone(),
        );
        r.register(
            "wraith_batch_processing_seconds",
            "Time from a batch entering the gateway to every sink's acknowledgement (the chain and the sinks)",
            m.batch_seconds.clone(),
        );
        r.register(
            "wraith_shadow_batches",
            "Batches a shadow plugin ran on beside its live plugin",
            m.shadow_batches.clone(),
        );
        r.register(
            "wraith_shadow_events",
            "Events a shadow plugin saw",
            m.shadow_events.clone(),
        );
        r.register(
            "wraith_shadow_differences",
            "Events whose shadow answer differs from the live plugin's, by kind (verdict, edits)",
            m.shadow_differences.clone(),
        );
        r.register(
            "wraith_shadow_faults",
            "Faults of a shadow plugin (counted only; the live answer stands)",
            m.shadow_faults.clone(),
        );
        r.register_with_unit(
            "wraith_shadow_call",
            "Time in the shadow's calls and in the live plugin's calls on the same batches",
            prometheus_client::registry::Unit::Seconds,
            m.shadow_call_seconds.clone(),
        );
        r.register(
            "wraith_sink_errors",
            "Failed sink writes per sink",
            m.sink_errors.clone(),
        );
        r.register(
            "wraith_sink_up",
            "1 while a sink can take data, 0 while it cannot",
            m.sink_up.clone(),
        );
        r.register(
            "wraith_batches_in_flight",
            "Batches in the chain or waiting for a sink",
            m.batches_in_flight.clone(),
        );
        r.register(
            "wraith_batches_refused",
            "Batches refused with 503 per reason (busy, sink_unavailable, sink_error)",
            m.batches_refused.clone(),
        );
        r.register(
            "wraith_requests_refused",
            "Requests refused per reason (unauthorized, rate_limited, too_many_events)",
            m.requests_refused.clone(),
        );
        r.register(
            "wraith_rate_limited_requests",
            "Requests refused with 429 because their client was over limits.requests_per_second",
            m.rate_limited.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Resolve one plugin's metric handles once, so calls on the hot path
    /// neither allocate labels nor look them up.
    pub fn for_plugin(&self, plugin: &str) -> PluginMetrics {
        let outcome = |outcome| {
            self.plugin_events
                .get_or_create(&PluginOutcomeLabels {
                    plugin: plugin.to_string(),
                    outcome,
                })
                .clone()
        };
        let label = PluginLabel {
            plugin: plugin.to_string(),
        };
        let isolation_calls = self.plugin_isolation_calls.get_or_create(&label).clone();
        let poison_events = self.plugin_poison_events.get_or_create(&label).clone();
        PluginMetrics {
            isolation_calls,
            poison_events,
            outcomes: [
                outcome(PluginOutcome::r#in),
                outcome(PluginOutcome::kept),
                outcome(PluginOutcome::dropped),
                outcome(PluginOutcome::rejected),
                outcome(PluginOutcome::faulted),
                outcome(PluginOutcome::passed),
            ],
            call_seconds: self
                .plugin_call_seconds
                .get_or_create(&PluginLabel {
                    plugin: plugin.to_string(),
                })
                .clone(),
        }
    }
}

/// One plugin's metric handles (see [`Metrics::for_plugin`]).
pub struct PluginMetrics {
    outcomes: [Counter; 6],
    pub call_seconds: Histogram,
    /// Extra calls made to find the events a faulting batch faulted on.
    pub isolation_calls: Counter,
    /// Events found to fault the plugin on their own.
    pub poison_events: Counter,
}

impl PluginMetrics {
    pub fn outcome(&self, outcome: PluginOutcome, n: usize) {
        if n > 0 {
            self.outcomes[outcome as usize].inc_by(n as u64);
        }
    }
}

/// Install the global tracing subscriber: `RUST_LOG` filters (default `info`),
/// `WRAITH_LOG_FORMAT=json` switches to JSON lines.
pub fn init_tracing() {
    init_tracing_as(LogFormat::from_env());
}

/// How logs are written on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per record (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogFormat {
    /// `WRAITH_LOG_FORMAT=json`, else text.
    pub fn from_env() -> Self {
        if std::env::var("WRAITH_LOG_FORMAT").as_deref() == Ok("json") {
            LogFormat::Json
        } else {
            LogFormat::Text
        }
    }
}

/// Logs on stderr in `format`, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing_as(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
