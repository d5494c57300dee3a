//! Wraith plugin: add static labels, derive fields (version parts, OS family,
//! duration bucket) and replace ids with keyed hashes.
//!
//! See the crate's README for the config and behaviour.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Sha256;
use wraith_plugin::{Config, ConfigError, Event, Plugin, ValueRef, Verdict, path};

/// Where labels go by default.
pub const DEFAULT_LABELS_PATH: &str = "_wraith.labels";

/// Source and derived fields.
pub mod fields {
    pub const TOOL_VERSION: &str = "context.tool_version";
    pub const TOOL_VERSION_MAJOR: &str = "context.tool_version_major";
    pub const TOOL_VERSION_MINOR: &str = "context.tool_version_minor";
    pub const OS: &str = "context.os";
    pub const OS_FAMILY: &str = "context.os_family";
    pub const DURATION_MS: &str = "duration_ms";
    pub const DURATION_BUCKET: &str = "duration_bucket";
}

/// Hex characters kept from each keyed hash.
pub const HASH_HEX_CHARS: usize = 32;

/// The plugin's config, as the operator writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Static labels: name (a dotted path under `labels_path`) to value.
    #[serde(default)]
    pub labels: Map<String, Value>,
    /// Where labels go; empty puts each label at its own path from the root.
    #[serde(default = "default_labels_path")]
    pub labels_path: String,
    #[serde(default)]
    pub derive: Derive,
    #[serde(default)]
    pub hash_ids: HashIds,
}

fn default_labels_path() -> String {
    DEFAULT_LABELS_PATH.into()
}

/// Which fields to derive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derive {
    #[serde(default = "yes")]
    pub version_parts: bool,
    #[serde(default = "yes", alias = "os_normalize")]
    pub os_normalise: bool,
    #[serde(default = "yes")]
    pub duration_bucket: bool,
}

impl Default for Derive {
    fn default() -> Self {
        Derive {
            version_parts: true,
            os_normalise: true,
            duration_bucket: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// Which fields to replace with keyed hashes, and the key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashIds {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub fields: Vec<String>,
}

/// Split a version such as `1.4.2-beta` or `v2.0` into major and minor. Each
/// is `None` when it is not a plain number; minor needs a major.
pub fn version_parts(version: &str) -> (Option<i64>, Option<i64>) {
    let v = version.trim();
    let v = v.strip_prefix(['v', 'V']).unwrap_or(v);
    let core = v.split(['-', '+', ' ']).next().unwrap_or("");
    let mut parts = core.split('.');
    let number = |p: Option<&str>| {
        p.filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<i64>().ok())
    };
    let major = number(parts.next());
    let minor = major.and(number(parts.next()));
    (major, minor)
}

/// The OS family of an OS name as tools report it (`Linux`, `darwin`,
/// `win32`, `Windows_NT`, `macOS-14.2-arm64`, `freebsd13`, ...).
pub fn os_family(os: &str) -> &'static str {
    let s = os.trim().to_ascii_lowercase();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| s.starts_with(p));
    if starts(&["darwin", "mac", "osx", "os x"]) {
        "macos"
    } else if starts(&["win", "cygwin", "msys", "mingw"]) {
        "windows"
    } else if starts(&["freebsd"]) {
        "freebsd"
    } else if s.contains("linux") {
        "linux"
    } else {
        "other"
    }
}

/// The bucket of a duration in milliseconds; each bucket includes its lower
/// bound. `None` for negative or non-finite durations.
pub fn duration_bucket(ms: f64) -> Option<&'static str> {
    if !ms.is_finite() || ms < 0.0 {
        return None;
    }
    Some(if ms < 100.0 {
        "<100ms"
    } else if ms < 1_000.0 {
        "100ms-1s"
    } else if ms < 10_000.0 {
        "1s-10s"
    } else if ms < 60_000.0 {
        "10s-1m"
    } else {
        ">1m"
    })
}

/// HMAC-SHA256 with a fixed key (RustCrypto's `hmac`), the key absorbed once.
#[derive(Clone)]
pub struct KeyedHasher {
    mac: Hmac<Sha256>,
}

impl KeyedHasher {
    pub fn new(key: &[u8]) -> Self {
        KeyedHasher {
            // HMAC takes a key of any length (longer ones are hashed first).
            mac: Hmac::new_from_slice(key).expect("HMAC accepts any key length"),
        }
    }

    /// The full HMAC-SHA256 of `message`.
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(message);
        m.finalize().into_bytes().into()
    }

    /// What replaces an id: the MAC in lower-case hex, first 32 characters.
    pub fn hash_id(&self, value: &str) -> String {
        hex(&self.mac(value.as_bytes()))[..HASH_HEX_CHARS].to_string()
    }
}

impl std::fmt::Debug for KeyedHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedHasher { .. }")
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Parse a dotted path and write it back in canonical form.
fn canonical_path(text: &str, field: &str) -> Result<String, ConfigError> {
    path::parse(text)
        .map(|segments| path::render(&segments))
        .map_err(|e| ConfigError::new(field, format!("not a valid field path: {e}")))
}

/// Whether the leaf at `leaf` is `field` or lies under it.
pub fn is_at_or_under(leaf: &str, field: &str) -> bool {
    wraith_plugin::at_or_under(leaf.as_bytes(), field)
}

/// The text of a number or string value, which is what gets hashed.
fn hashable(value: ValueRef<'_>) -> Option<&str> {
    match value {
        ValueRef::String(s) | ValueRef::Number(s) => Some(s),
        _ => None,
    }
}

/// The plugin.
#[derive(Debug)]
pub struct Enrich {
    /// Full path and value of each label.
    labels: Vec<(String, Value)>,
    derive: Derive,
    hasher: Option<KeyedHasher>,
    hash_fields: Vec<String>,
}

impl Enrich {
    /// Check and compile the settings.
    pub fn new(settings: Settings) -> Result<Self, ConfigError> {
        let base = if settings.labels_path.is_empty() {
            String::new()
        } else {
            canonical_path(&settings.labels_path, "labels_path")?
        };
        let mut labels = Vec::with_capacity(settings.labels.len());
        for (name, value) in settings.labels {
            let full = if base.is_empty() {
                name.clone()
            } else {
                format!("{base}.{name}")
            };
            labels.push((canonical_path(&full, &format!("labels.{name}"))?, value));
        }
        let mut hash_fields = Vec::with_capacity(settings.hash_ids.fields.len());
        for (i, field) in settings.hash_ids.fields.iter().enumerate() {
            hash_fields.push(canonical_path(field, &format!("hash_ids.fields[{i}]"))?);
        }
        let hasher = match settings.hash_ids.key.as_deref() {
            Some("") => return Err(ConfigError::new("hash_ids.key", "must not be empty")),
            Some(key) => Some(KeyedHasher::new(key.as_bytes())),
            None if !hash_fields.is_empty() => {
                return Err(ConfigError::new(
                    "hash_ids.key",
                    "a secret key is required to hash `hash_ids.fields`",
                ));
            }
            None => None,
        };
        Ok(Enrich {
            labels,
            derive: settings.derive,
            hasher,
            hash_fields,
        })
    }

    /// `context.tool_version_major` / `_minor` from `context.tool_version`.
    fn derive_version(&self, event: &mut Event<'_>) {
        let (major, minor) = match event.get(fields::TOOL_VERSION) {
            Some(ValueRef::String(s) | ValueRef::Number(s)) => version_parts(s),
            _ => (None, None),
        };
        set_or_clear_i64(event, fields::TOOL_VERSION_MAJOR, major);
        set_or_clear_i64(event, fields::TOOL_VERSION_MINOR, minor);
    }

    /// `context.os_family` from `context.os`.
    fn derive_os(&self, event: &mut Event<'_>) {
        let family = event.get_str(fields::OS).map(os_family);
        set_or_clear_str(event, fields::OS_FAMILY, family);
    }

    /// `duration_bucket` from `duration_ms`.
    fn derive_duration(&self, event: &mut Event<'_>) {
        let bucket = event
            .get(fields::DURATION_MS)
            .and_then(|v| v.as_f64())
            .and_then(duration_bucket);
        set_or_clear_str(event, fields::DURATION_BUCKET, bucket);
    }

    /// Replace each string or number at or under the listed fields with its
    /// keyed hash; returns how many values were hashed.
    fn hash_ids(&self, event: &mut Event<'_>) -> u64 {
        let Some(hasher) = &self.hasher else { return 0 };
        let targets: Vec<_> = event
            .leaves()
            .filter(|leaf| {
                self.hash_fields
                    .iter()
                    .any(|f| is_at_or_under(leaf.path, f))
            })
            .filter_map(|leaf| hashable(leaf.value).map(|text| (leaf.path, hasher.hash_id(text))))
            .collect();
        for (path, hashed) in &targets {
            event.set_str(path, hashed);
        }
        targets.len() as u64
    }

    fn set_labels(&self, event: &mut Event<'_>) {
        for (path, value) in &self.labels {
            match value {
                Value::String(s) => event.set_str(path, s),
                other => event.set_json(path, other),
            }
        }
    }
}

/// Set a derived field, or remove a stale one so it never disagrees with its
/// source.
fn set_or_clear_i64(event: &mut Event<'_>, path: &str, value: Option<i64>) {
    match value {
        Some(n) => event.set_i64(path, n),
        None if event.get(path).is_some() => event.remove(path),
        None => {}
    }
}

fn set_or_clear_str(event: &mut Event<'_>, path: &str, value: Option<&str>) {
    match value {
        Some(s) => event.set_str(path, s),
        None if event.get(path).is_some() => event.remove(path),
        None => {}
    }
}

impl Plugin for Enrich {
    fn init(config: Config) -> Result<Self, ConfigError> {
        Enrich::new(config.parse()?)
    }

    fn process(&mut self, event: &mut Event<'_>) -> Verdict {
        // Derive from the values as they arrived, then hash, then label (so
        // labels win over anything else at their paths).
        if self.derive.version_parts {
            self.derive_version(event);
        }
        if self.derive.os_normalise {
            self.derive_os(event);
        }
        if self.derive.duration_bucket {
            self.derive_duration(event);
        }
        let hashed = self.hash_ids(event);
        if hashed > 0 {
            wraith_plugin::counter("ids_hashed", hashed);
        }
        self.set_labels(event);
        Verdict::Keep
    }
}

wraith_plugin::export!(Enrich);

#[cfg(test)]
mod tests;
