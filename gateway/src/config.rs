//! The one typed configuration tree. Every field has a default (see
//! [`Config::default`]) and a doc comment; the operator's TOML file may set any
//! subset, and unknown keys are refused so that typos do not pass silently.

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};
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
    /// The plugin chain.
    pub plugins: PluginsConfig,
    /// The embedded JSON Lines sink.
    pub file_sink: FileSinkConfig,
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_size: ByteSize::mib(5),
            max_events_per_request: 10_000,
            shutdown_timeout: Duration::from_secs(30),
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
    /// Where compiled plugins are cached so restarts do not recompile them.
    /// Default: `cache/` under the file sink's folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
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
            cache_dir: None,
        }
    }
}

/// The embedded JSON Lines sink.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FileSinkConfig {
    /// Folder the sink writes under (`<dir>/events/`, `<dir>/dlq/`, one
    /// folder per routed destination); compiled plugins are cached in
    /// `<dir>/cache/` unless `plugins.cache_dir` says otherwise. Default `data`.
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
        Ok(())
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
        let e = Config::from_toml("[file_sink]\nrotate_size = true\n").unwrap_err();
        assert!(e.contains("expected a size"), "{e}");
        let c = Config::from_toml("[server]\nmax_body_size = 1024\n").unwrap();
        assert_eq!(c.server.max_body_size, ByteSize::kib(1));
        let mut c = Config::default();
        c.plugins.memory_high_water = ByteSize::gib(1);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("plugins.memory_high_water"), "{e}");
    }
}
