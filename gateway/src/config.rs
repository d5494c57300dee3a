//! The one typed configuration tree. Every field has a default (see
//! [`Config::default`]) and a doc comment; the operator's TOML file may set any
//! subset, and unknown keys are refused so that typos do not pass silently.

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting `{field}`: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// The gateway's configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The HTTP server.
    pub server: ServerConfig,
    /// Who may send events: API tokens.
    pub auth: AuthConfig,
    /// What one request, one event and one client may send.
    pub limits: LimitsConfig,
    /// The plugin chain.
    pub plugins: PluginsConfig,
    /// Where events go after the chain.
    pub sinks: SinksConfig,
    /// Where each destination a plugin routes to lives in each sink
    /// (`[destinations.errors] subject = "telemetry.errors"`). A destination
    /// not listed gets its defaults: folder = name, subject =
    /// `<subject_prefix>.<name>`, table = `loader.table`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub destinations: BTreeMap<String, DestinationConfig>,
    /// `gateway load`: the JetStream → ClickHouse loader.
    pub loader: LoaderConfig,
}

/// The sinks: the embedded file sink and NATS JetStream.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SinksConfig {
    /// JSON Lines under the data folder. Takes the events while NATS is off,
    /// and the dead letters always.
    pub file: FileSinkConfig,
    /// NATS JetStream. On when `url` is set (or `--nats`, or `NATS_URL`).
    pub nats: NatsSinkConfig,
}

/// Where one destination lives in each sink. Every field is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DestinationConfig {
    /// Folder under the file sink's `dir`. Default: the destination's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    /// NATS subject. Default: `<sinks.nats.subject_prefix>.<name>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// ClickHouse table the loader writes these events to. Default: `loader.table`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

/// NATS JetStream as the sink. Events are published to
/// `<subject_prefix>.<destination>` with `Nats-Msg-Id` = `event_id`, and the
/// client is answered once JetStream acknowledged every event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSinkConfig {
    /// Server URL(s), comma-separated (`nats://127.0.0.1:4222`). Empty: off.
    /// Default empty.
    pub url: String,
    /// The JetStream stream, created at start when missing. Default `WRAITH`.
    pub stream: String,
    /// Subjects are `<subject_prefix>.<destination>`; the stream takes
    /// `<subject_prefix>.>`. Default `telemetry`.
    pub subject_prefix: String,
    /// Stream replicas (1 for one server, 3 for a three-node cluster). Default `1`.
    pub replicas: usize,
    /// How long JetStream keeps events (`0s`: until the size cap). Default `7d`.
    #[serde(with = "duration")]
    pub max_age: Duration,
    /// Size cap of the stream; the oldest events go first. `0`: no cap. Default `0`.
    #[serde(with = "size")]
    pub max_bytes: ByteSize,
    /// Window in which a repeated `Nats-Msg-Id` (a retried publish) is
    /// dropped as a duplicate. Default `2m`.
    #[serde(with = "duration")]
    pub duplicate_window: Duration,
    /// How long to wait for JetStream to acknowledge a publish. Default `5s`.
    #[serde(with = "duration")]
    pub ack_timeout: Duration,
    /// Also publish dead letters to `<subject_prefix>.dlq`. They hold events
    /// as the rejecting or faulting plugin received them — possibly before a
    /// later scrubber — so by default they stay in the gateway's owner-only
    /// files. Default `false`.
    pub dead_letters: bool,
}

impl Default for NatsSinkConfig {
    fn default() -> Self {
        NatsSinkConfig {
            url: String::new(),
            stream: "WRAITH".into(),
            subject_prefix: "telemetry".into(),
            replicas: 1,
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_bytes: ByteSize(0),
            duplicate_window: Duration::from_secs(120),
            ack_timeout: Duration::from_secs(5),
            dead_letters: false,
        }
    }
}

impl NatsSinkConfig {
    /// Whether the NATS sink is on.
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }
}

/// `gateway load`: a durable JetStream consumer that batches events into
/// ClickHouse and acknowledges them only after the insert.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LoaderConfig {
    /// ClickHouse HTTP URL (`http://127.0.0.1:8123`). Default empty (set it
    /// here, with `--clickhouse` or `CLICKHOUSE_URL`).
    pub clickhouse_url: String,
    /// ClickHouse user. Default `default`.
    pub user: String,
    /// ClickHouse password. Default empty.
    pub password: String,
    /// Database, created with the schema at start. Default `wraith`.
    pub database: String,
    /// Table of events. Default `events`.
    pub table: String,
    /// Durable consumer name, shared by every loader. Default `wraith-loader`.
    pub consumer: String,
    /// Most events in one insert. Default `10000`.
    pub batch_size: usize,
    /// Longest a partial batch waits before it is inserted. Default `1s`.
    #[serde(with = "duration")]
    pub flush_interval: Duration,
    /// Deliveries after which a message that cannot be loaded goes to the
    /// dead-letter table. Default `5`.
    pub max_deliveries: u32,
    /// How long JetStream waits for an ack before redelivering. Default `60s`.
    #[serde(with = "duration")]
    pub ack_wait: Duration,
    /// Address of the loader's `/metrics` and `/health`. Default `127.0.0.1:9464`.
    pub metrics_listen: SocketAddr,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            clickhouse_url: String::new(),
            user: "default".into(),
            password: String::new(),
            database: "wraith".into(),
            table: "events".into(),
            consumer: "wraith-loader".into(),
            batch_size: 10_000,
            flush_interval: Duration::from_secs(1),
            max_deliveries: 5,
            ack_wait: Duration::from_secs(60),
            metrics_listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

/// The HTTP server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Largest accepted request body, after decompression. Default `5 MiB`.
    #[serde(with = "size")]
    pub max_body_size: ByteSize,
    /// Most events accepted in one request. Default `10000`.
    pub max_events_per_request: usize,
    /// How long shutdown waits for in-flight requests. Default `30s`.
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
    /// Most batches in the chain or waiting for a sink at once. Past it a
    /// request waits up to `busy_timeout`, then gets 503 with `Retry-After`,
    /// so a slow sink slows clients down instead of growing the gateway's
    /// memory. Default `64`.
    pub max_batches_in_flight: usize,
    /// How long a request waits for room among the batches in flight.
    /// Default `2s`.
    #[serde(with = "duration")]
    pub busy_timeout: Duration,
    /// TLS: a PEM file with the certificate chain (leaf first). With
    /// `tls_key`, the listener speaks HTTPS only; both are reread on
    /// SIGHUP (`gateway reload`), so a renewed certificate needs no
    /// restart. Empty: plain HTTP. Default empty.
    pub tls_cert: PathBuf,
    /// TLS: a PEM file with the certificate's private key (PKCS#8, PKCS#1
    /// or SEC1). Default empty.
    pub tls_key: PathBuf,
}

impl ServerConfig {
    /// Whether the listener speaks TLS.
    pub fn tls(&self) -> bool {
        !self.tls_cert.as_os_str().is_empty()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_size: ByteSize::mib(5),
            max_events_per_request: 10_000,
            shutdown_timeout: Duration::from_secs(30),
            max_batches_in_flight: 64,
            busy_timeout: Duration::from_secs(2),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
        }
    }
}

/// Who may send events. Tokens come from here, from the environment variable
/// `WRAITH_API_TOKENS` (comma-separated) and from `tokens_file` (or
/// `--tokens-file`), all together; each is `token` or `client-name:token`.
/// With any token configured, every ingest request needs one
/// (`Authorization: Bearer TOKEN` or `X-API-Key: TOKEN`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Tokens, each `token` or `client-name:token`. Default none.
    pub tokens: Vec<String>,
    /// A file of tokens, one `token` or `client-name:token` per line (`#`
    /// starts a comment); reread within 2 s of a change. Empty: none.
    /// Default empty.
    pub tokens_file: PathBuf,
    /// Serve a non-loopback `server.listen` without any token. Refused by
    /// default: anyone who can reach the port could then write events.
    /// Default `false`.
    pub allow_anonymous: bool,
}

/// What one request, one event and one client may send. Each limit is
/// answered with its own status and a message naming the setting.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body as sent, before decompression (413).
    /// `server.max_body_size` limits it after decompression. Default `5 MiB`.
    #[serde(with = "size")]
    pub max_wire_body_size: ByteSize,
    /// Deepest nesting of objects and arrays in one event (the event itself
    /// is level 1). Bodies nested past 128 levels are refused while parsing.
    /// Default `32`.
    pub max_depth: usize,
    /// Longest string value or key in an event. Default `64 KiB`.
    #[serde(with = "size")]
    pub max_string_length: ByteSize,
    /// Most values in one event: object members and array elements, counted
    /// at every depth. Default `1000`.
    pub max_fields_per_event: usize,
    /// Largest request head (request line and headers); past it the
    /// connection is answered 431 and closed. At least `8 KiB`.
    /// Default `32 KiB`.
    #[serde(with = "size")]
    pub max_header_size: ByteSize,
    /// How long a client may take to send the request head; a slower one is
    /// disconnected, so slow clients cannot hold connections. Default `10s`.
    #[serde(with = "duration")]
    pub header_read_timeout: Duration,
    /// How long a client may take to send the body, counted from the end of
    /// the head (408). Default `30s`.
    #[serde(with = "duration")]
    pub body_read_timeout: Duration,
    /// Requests per second each client may send on average (a token bucket
    /// per client: the token's client name, or the peer address without
    /// tokens); past it, 429 with `Retry-After`. `0`: no limit. Default `0`.
    pub requests_per_second: u32,
    /// How many requests a client may send at once above the rate. Default `50`.
    pub burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_wire_body_size: ByteSize::mib(5),
            max_depth: 32,
            max_string_length: ByteSize::kib(64),
            max_fields_per_event: 1000,
            max_header_size: ByteSize::kib(32),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            requests_per_second: 0,
            burst: 50,
        }
    }
}

/// The plugin chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Folder holding the `.wasm` plugins and an optional `plugins.toml`
    /// manifest. Default `plugins`.
    pub dir: PathBuf,
    /// Watch the folder and reload on changes. Default `true`.
    pub watch: bool,
    /// How long the folder must stay quiet before a reload, so that writes in
    /// progress are waited out. Default `250ms`.
    #[serde(with = "duration")]
    pub reload_debounce: Duration,
    /// Also look at the folder this often, for changes the watcher cannot
    /// see (network file systems, the folder deleted and made again). A
    /// rescan that finds nothing changed is silent. `0s` turns it off.
    /// Default `30s`.
    #[serde(with = "duration")]
    pub rescan_interval: Duration,
    /// Deadline of one plugin call on one batch. Default `2s`.
    #[serde(with = "duration")]
    pub call_timeout: Duration,
    /// Most linear memory one plugin instance may use. Default `128 MiB`.
    #[serde(with = "size")]
    pub memory_limit: ByteSize,
    /// An instance whose memory has grown past this is rebuilt after its
    /// current call. Default `64 MiB`.
    #[serde(with = "size")]
    pub memory_high_water: ByteSize,
    /// An instance is rebuilt after this many calls. Default `10000`.
    pub max_calls_per_instance: u64,
    /// Consecutive faults after which a plugin is quarantined until its file
    /// is replaced. Default `5`.
    pub quarantine_after: u32,
    /// Most events handed to a plugin in one call. Default `1024`.
    pub max_batch: usize,
    /// How many batches run through the chain at once; each plugin keeps at
    /// most this many instances (and their memory). More than the machine's
    /// cores only adds memory: the chain is CPU work. Default: the number of
    /// CPU cores (`0`).
    pub workers: usize,
    /// Where compiled plugins are cached so restarts do not recompile them.
    /// Default: `<data dir>-cache` beside the file sink's folder (`data-cache`
    /// for `data`), never inside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
}

impl PluginsConfig {
    /// `workers`, or the number of CPU cores when it is `0`.
    pub fn workers(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            n => n,
        }
    }
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            dir: PathBuf::from("plugins"),
            watch: true,
            reload_debounce: Duration::from_millis(250),
            rescan_interval: Duration::from_secs(30),
            call_timeout: Duration::from_secs(2),
            memory_limit: ByteSize::mib(128),
            memory_high_water: ByteSize::mib(64),
            max_calls_per_instance: 10_000,
            quarantine_after: 5,
            max_batch: 1024,
            workers: 0,
            cache_dir: None,
        }
    }
}

/// The embedded JSON Lines sink.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FileSinkConfig {
    /// Folder the sink writes under (`<dir>/events/`, `<dir>/dlq/`, one
    /// folder per routed destination). Default `data`.
    pub dir: PathBuf,
    /// Start a new file once the current one is larger than this. Default `64 MiB`.
    #[serde(with = "size")]
    pub rotate_size: ByteSize,
    /// `fsync` before acknowledging a write, so acknowledged events survive a
    /// power cut, not only a crash. Default `true`.
    pub fsync: bool,
}

impl Default for FileSinkConfig {
    fn default() -> Self {
        FileSinkConfig {
            dir: PathBuf::from("data"),
            rotate_size: ByteSize::mib(64),
            fsync: true,
        }
    }
}

impl Config {
    /// Read a TOML config file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parse TOML text.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Check values that types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let p = &self.plugins;
        let invalid = |field, message: &str| {
            Err(ConfigError::Invalid {
                field,
                message: message.to_string(),
            })
        };
        if p.call_timeout < Duration::from_millis(10) {
            return invalid("plugins.call_timeout", "must be at least 10ms");
        }
        if p.memory_limit < ByteSize::mib(1) {
            return invalid("plugins.memory_limit", "must be at least 1 MiB");
        }
        if p.memory_high_water > p.memory_limit {
            return invalid(
                "plugins.memory_high_water",
                "must not exceed plugins.memory_limit",
            );
        }
        if p.max_batch == 0 {
            return invalid("plugins.max_batch", "must be at least 1");
        }
        if p.max_calls_per_instance == 0 {
            return invalid("plugins.max_calls_per_instance", "must be at least 1");
        }
        if p.quarantine_after == 0 {
            return invalid("plugins.quarantine_after", "must be at least 1");
        }
        if self.server.max_events_per_request == 0 {
            return invalid("server.max_events_per_request", "must be at least 1");
        }
        if self.server.tls_cert.as_os_str().is_empty() != self.server.tls_key.as_os_str().is_empty()
        {
            return invalid(
                "server.tls_cert",
                "tls_cert and tls_key go together: set both for HTTPS, or neither",
            );
        }
        if self.server.max_batches_in_flight == 0 {
            return invalid("server.max_batches_in_flight", "must be at least 1");
        }
        let l = &self.limits;
        if l.max_depth == 0 || l.max_depth > 128 {
            return invalid("limits.max_depth", "must be between 1 and 128");
        }
        if l.max_string_length < ByteSize::b(128) {
            return invalid("limits.max_string_length", "must be at least 128 B");
        }
        if l.max_fields_per_event == 0 {
            return invalid("limits.max_fields_per_event", "must be at least 1");
        }
        if l.max_header_size < ByteSize::kib(8) {
            return invalid("limits.max_header_size", "must be at least 8 KiB");
        }
        if l.max_wire_body_size < ByteSize::kib(1) {
            return invalid("limits.max_wire_body_size", "must be at least 1 KiB");
        }
        if l.header_read_timeout < Duration::from_millis(100) {
            return invalid("limits.header_read_timeout", "must be at least 100ms");
        }
        if l.body_read_timeout < Duration::from_millis(100) {
            return invalid("limits.body_read_timeout", "must be at least 100ms");
        }
        if l.requests_per_second > 0 && l.burst == 0 {
            return invalid(
                "limits.burst",
                "must be at least 1 when limits.requests_per_second is set",
            );
        }
        for t in &self.auth.tokens {
            if let Err(message) = crate::ingest::auth::parse_token(t) {
                return invalid("auth.tokens", &message);
            }
        }
        let n = &self.sinks.nats;
        if n.stream.is_empty()
            || !n
                .stream
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return invalid(
                "sinks.nats.stream",
                "must be a non-empty name of letters, digits, `_` and `-`",
            );
        }
        if !valid_subject(&n.subject_prefix) {
            return invalid(
                "sinks.nats.subject_prefix",
                "must be a NATS subject without wildcards or spaces, like `telemetry`",
            );
        }
        if n.replicas == 0 || n.replicas > 5 {
            return invalid("sinks.nats.replicas", "must be between 1 and 5");
        }
        if n.ack_timeout < Duration::from_millis(100) {
            return invalid("sinks.nats.ack_timeout", "must be at least 100ms");
        }
        for (name, d) in &self.destinations {
            if let Err(e) = wraith_event::destination::check(name) {
                return Err(ConfigError::Invalid {
                    field: "destinations",
                    message: format!("[destinations.{name}]: {e}"),
                });
            }
            if let Some(f) = &d.folder
                && (f.is_empty() || f.contains(['/', '\\']) || f == "." || f == ".." || f == "dlq")
            {
                return Err(ConfigError::Invalid {
                    field: "destinations",
                    message: format!(
                        "[destinations.{name}] folder {f:?}: a folder is one plain name under the data folder, not `dlq`"
                    ),
                });
            }
            if let Some(s) = &d.subject
                && !valid_subject(s)
            {
                return Err(ConfigError::Invalid {
                    field: "destinations",
                    message: format!(
                        "[destinations.{name}] subject {s:?} is not a NATS subject without wildcards"
                    ),
                });
            }
            if let Some(t) = &d.table
                && !valid_identifier(t)
            {
                return Err(ConfigError::Invalid {
                    field: "destinations",
                    message: format!(
                        "[destinations.{name}] table {t:?}: use letters, digits and `_`"
                    ),
                });
            }
        }
        let l = &self.loader;
        if !valid_identifier(&l.database) {
            return invalid("loader.database", "use letters, digits and `_`");
        }
        if !valid_identifier(&l.table) {
            return invalid("loader.table", "use letters, digits and `_`");
        }
        if l.batch_size == 0 {
            return invalid("loader.batch_size", "must be at least 1");
        }
        if l.max_deliveries == 0 {
            return invalid("loader.max_deliveries", "must be at least 1");
        }
        Ok(())
    }

    /// The compile cache: `plugins.cache_dir`, else `<data dir>-cache`
    /// beside the data folder.
    pub fn cache_dir(&self) -> PathBuf {
        if let Some(d) = &self.plugins.cache_dir {
            return d.clone();
        }
        let data = &self.sinks.file.dir;
        let mut name = data
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "data".into());
        name.push("-cache");
        data.with_file_name(name)
    }

    /// Destinations routed to by `routed` (`(plugin, destination)`) that no
    /// sink knows: with `[destinations.*]` declared, every routed name must
    /// be one of them. Empty when nothing is declared (every name then maps
    /// to its default folder, subject and table).
    pub fn unknown_destinations<'a>(
        &self,
        routed: &'a [(String, String)],
    ) -> Vec<&'a (String, String)> {
        if self.destinations.is_empty() {
            return Vec::new();
        }
        routed
            .iter()
            .filter(|(_, d)| !self.destinations.contains_key(d))
            .collect()
    }

    /// The file sink's folder for a destination.
    pub fn folder_of(&self, destination: &str) -> String {
        self.destinations
            .get(destination)
            .and_then(|d| d.folder.clone())
            .unwrap_or_else(|| destination.to_string())
    }

    /// The NATS subject of a destination.
    pub fn subject_of(&self, destination: &str) -> String {
        self.destinations
            .get(destination)
            .and_then(|d| d.subject.clone())
            .unwrap_or_else(|| format!("{}.{destination}", self.sinks.nats.subject_prefix))
    }

    /// The ClickHouse table of a destination.
    pub fn table_of(&self, destination: &str) -> String {
        self.destinations
            .get(destination)
            .and_then(|d| d.table.clone())
            .unwrap_or_else(|| self.loader.table.clone())
    }

    /// The documented example file: every setting at its default.
    pub fn example_toml() -> String {
        let body = toml::to_string_pretty(&Config::default()).expect("config serializes");
        format!(
            "# Wraith gateway configuration. Every setting is shown at its default;\n\
             # see `gateway --help` and gateway/src/config.rs for what each one does.\n\n{body}"
        )
    }
}

/// A NATS subject to publish to: dot-separated tokens, no wildcards or spaces.
fn valid_subject(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'*' && b != b'>')
        })
}

/// A ClickHouse identifier that needs no quoting.
fn valid_identifier(s: &str) -> bool {
    !s.is_empty()
        && !s.as_bytes()[0].is_ascii_digit()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Sizes in the config file: a number of bytes or a string like `"5 MiB"`,
/// with an error that shows how to write one.
mod size {
    use bytesize::ByteSize;
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &ByteSize, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            D::Error::custom("expected a size: a number of bytes or a string like \"5 MiB\"")
        })? {
            Raw::Bytes(n) => Ok(ByteSize(n)),
            Raw::Text(t) => t.parse().map_err(|_| {
                D::Error::custom(format!(
                    "`{t}` is not a size: write a number of bytes or a size like \"5 MiB\", \"512 KiB\" or \"1 GB\""
                ))
            }),
        }
    }
}

/// Durations in the config file: strings like `"250ms"` or `"30s"`, with an
/// error that shows how to write one.
mod duration {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
        humantime_serde::serialize(v, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let t = String::deserialize(d).map_err(|_| {
            D::Error::custom("expected a duration: a string like \"250ms\", \"2s\" or \"1m\"")
        })?;
        humantime_serde::re::humantime::parse_duration(&t).map_err(|e| {
            D::Error::custom(format!(
                "`{t}` is not a duration ({e}): write it like \"250ms\", \"2s\" or \"1m\""
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_round_trips() {
        let text = Config::example_toml();
        assert_eq!(Config::from_toml(&text).unwrap(), Config::default());
    }

    #[test]
    fn docs_example_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/gateway.example.toml");
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            on_disk,
            Config::example_toml(),
            "docs/gateway.example.toml is stale: regenerate it with `gateway config > docs/gateway.example.toml`"
        );
    }

    #[test]
    fn partial_files_keep_defaults() {
        let c = Config::from_toml("[plugins]\ncall_timeout = \"250ms\"\nmemory_limit = \"32 MiB\"\nmemory_high_water = \"16 MiB\"\n").unwrap();
        assert_eq!(c.plugins.call_timeout, Duration::from_millis(250));
        assert_eq!(c.plugins.memory_limit, ByteSize::mib(32));
        assert_eq!(c.server, ServerConfig::default());
        c.validate().unwrap();
    }

    #[test]
    fn unknown_and_bad_values_are_named() {
        let e = Config::from_toml("[server]\nlisten_on = \"x\"\n").unwrap_err();
        assert!(e.contains("unknown field `listen_on`"), "{e}");
        let e = Config::from_toml("[plugins]\ncall_timeout = \"soon\"\n").unwrap_err();
        assert!(e.contains("call_timeout"), "{e}");
        assert!(e.contains("`soon` is not a duration"), "{e}");
        assert!(e.contains("\"250ms\""), "{e}");
        let e = Config::from_toml("[server]\nmax_body_size = \"lots\"\n").unwrap_err();
        assert!(e.contains("max_body_size"), "{e}");
        assert!(e.contains("`lots` is not a size"), "{e}");
        let e = Config::from_toml("[sinks.file]\nrotate_size = true\n").unwrap_err();
        assert!(e.contains("expected a size"), "{e}");
        let c = Config::from_toml("[server]\nmax_body_size = 1024\n").unwrap();
        assert_eq!(c.server.max_body_size, ByteSize::kib(1));
        let mut c = Config::default();
        c.plugins.memory_high_water = ByteSize::gib(1);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("plugins.memory_high_water"), "{e}");
    }
}
