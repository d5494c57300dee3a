//! Where things live and whether telemetry is on: the rules the SDK, the
//! daemon and the Python client share.
//!
//! | what | where |
//! | --- | --- |
//! | Wraith's folder | `$WRAITH_HOME`, else `~/.wraith` |
//! | config file | `<folder>/config.json`: `{"telemetry": false}`, `"endpoint"`, `"mode"`, `"file"` |
//! | installation id | `<folder>/installation_id` (a random UUID, made on first use) |
//! | daemon socket | `$WRAITH_SOCKET`, else `$XDG_RUNTIME_DIR/wraith/wraith.sock`, else `<folder>/wraith.sock` |
//! | daemon spool | `$WRAITH_SPOOL_DIR`, else `<folder>/spool` |
//!
//! Opt-out is checked before anything else and wins over everything:
//! `WRAITH_TELEMETRY` set to `false`, `0`, `no` or `off`; `DO_NOT_TRACK` set to
//! anything but empty, `0` or `false`; `"telemetry": false` in the config file.
//! A config file that exists but cannot be read as a JSON object also turns
//! telemetry off: when the user's wish cannot be known, nothing is sent.

use std::path::{Path, PathBuf};

/// `WRAITH_TELEMETRY`: `false`/`0`/`no`/`off` turns telemetry off.
pub const ENV_TELEMETRY: &str = "WRAITH_TELEMETRY";
/// `DO_NOT_TRACK=1` (the cross-tool convention) turns telemetry off.
pub const ENV_DO_NOT_TRACK: &str = "DO_NOT_TRACK";
/// Wraith's folder (default `~/.wraith`).
pub const ENV_HOME: &str = "WRAITH_HOME";
/// The daemon's socket.
pub const ENV_SOCKET: &str = "WRAITH_SOCKET";
/// The daemon's spool folder.
pub const ENV_SPOOL_DIR: &str = "WRAITH_SPOOL_DIR";
/// The gateway's base URL.
pub const ENV_ENDPOINT: &str = "WRAITH_ENDPOINT";
/// `daemon`, `http` or `file`.
pub const ENV_MODE: &str = "WRAITH_MODE";
/// The JSON Lines file of the file mode.
pub const ENV_FILE: &str = "WRAITH_FILE";
/// The `wraith-daemon` binary the SDK starts.
pub const ENV_DAEMON: &str = "WRAITH_DAEMON";

/// The gateway used when neither the environment, the config file nor the
/// tool names one.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8080";

/// Where environment variables come from (the process, or a test's map).
pub trait Env {
    /// The variable's value, when set and valid UTF-8.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Why telemetry is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptOut {
    /// `WRAITH_TELEMETRY` says so.
    WraithTelemetry,
    /// `DO_NOT_TRACK` is set.
    DoNotTrack,
    /// `"telemetry": false` in the config file.
    ConfigFile,
    /// The config file exists but is not a readable JSON object.
    UnreadableConfig,
}

/// Why the config file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It exists but could not be read.
    #[error("cannot read the config file: {0}")]
    Read(#[from] std::io::Error),
    /// It is not JSON.
    #[error("the config file is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// It is JSON but not an object.
    #[error("the config file is not a JSON object")]
    NotAnObject,
}

/// What the config file says (`<folder>/config.json`). Unknown keys are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileConfig {
    /// `"telemetry"`: `false` turns telemetry off.
    pub telemetry: Option<bool>,
    /// `"endpoint"`: the gateway's base URL.
    pub endpoint: Option<String>,
    /// `"mode"`: `daemon`, `http` or `file`.
    pub mode: Option<String>,
    /// `"file"`: the file mode's JSON Lines file.
    pub file: Option<PathBuf>,
}

impl FileConfig {
    /// Read the config file; `Ok(default)` when there is none, `Err` when it
    /// exists but is not a JSON object.
    pub fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
            Err(e) => return Err(e.into()),
        };
        Self::parse(&text)
    }

    /// Parse the config file's text.
    pub fn parse(text: &[u8]) -> Result<FileConfig, ConfigError> {
        let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
        let value: serde_json::Value = serde_json::from_slice(text)?;
        let map = value.as_object().ok_or(ConfigError::NotAnObject)?;
        let string = |k: &str| map.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        Ok(FileConfig {
            telemetry: match map.get("telemetry") {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::Bool(b)) => Some(*b),
                // `"telemetry": "false"` or `0` mean what they say; anything
                // else that is not plainly `true` is read as off.
                Some(serde_json::Value::String(s)) => Some(!is_falsy(s)),
                Some(serde_json::Value::Number(n)) => Some(n.as_f64() != Some(0.0)),
                Some(_) => Some(false),
            },
            endpoint: string("endpoint"),
            mode: string("mode"),
            file: string("file").map(PathBuf::from),
        })
    }
}

fn is_falsy(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "false" | "0" | "no" | "off"
    )
}

/// Opt-out from the environment alone (no file read).
pub fn env_opt_out(env: &impl Env) -> Option<OptOut> {
    if env.var(ENV_TELEMETRY).is_some_and(|v| is_falsy(&v)) {
        return Some(OptOut::WraithTelemetry);
    }
    if env
        .var(ENV_DO_NOT_TRACK)
        .is_some_and(|v| !v.trim().is_empty() && !is_falsy(&v))
    {
        return Some(OptOut::DoNotTrack);
    }
    None
}

/// The whole decision: the environment first (cheap), then the config file.
/// Returns the config file's contents when telemetry is on.
pub fn resolve(env: &impl Env) -> Result<FileConfig, OptOut> {
    if let Some(o) = env_opt_out(env) {
        return Err(o);
    }
    let config = match wraith_dir(env) {
        Some(dir) => {
            FileConfig::read(&dir.join("config.json")).map_err(|_| OptOut::UnreadableConfig)?
        }
        None => FileConfig::default(),
    };
    if config.telemetry == Some(false) {
        return Err(OptOut::ConfigFile);
    }
    Ok(config)
}

/// Wraith's folder: `$WRAITH_HOME`, else `~/.wraith`.
pub fn wraith_dir(env: &impl Env) -> Option<PathBuf> {
    if let Some(d) = env.var(ENV_HOME).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    env.var("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| Path::new(&h).join(".wraith"))
}

/// The daemon's socket: `$WRAITH_SOCKET`, else
/// `$XDG_RUNTIME_DIR/wraith/wraith.sock`, else `<folder>/wraith.sock`.
pub fn socket_path(env: &impl Env) -> Option<PathBuf> {
    if let Some(s) = env.var(ENV_SOCKET).filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(s));
    }
    if let Some(r) = env.var("XDG_RUNTIME_DIR").filter(|r| !r.is_empty()) {
        return Some(Path::new(&r).join("wraith").join("wraith.sock"));
    }
    wraith_dir(env).map(|d| d.join("wraith.sock"))
}

/// The daemon's spool folder: `$WRAITH_SPOOL_DIR`, else `<folder>/spool`.
pub fn spool_dir(env: &impl Env) -> Option<PathBuf> {
    if let Some(s) = env.var(ENV_SPOOL_DIR).filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(s));
    }
    wraith_dir(env).map(|d| d.join("spool"))
}

/// Create `dir` (and its parents) readable by its owner only (0700).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Env + use<> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    #[test]
    fn environment_opt_out() {
        for v in ["false", "0", "FALSE", "no", "off", " Off "] {
            assert_eq!(
                env_opt_out(&env(&[(ENV_TELEMETRY, v)])),
                Some(OptOut::WraithTelemetry),
                "{v}"
            );
        }
        for v in ["1", "true", "yes"] {
            assert_eq!(env_opt_out(&env(&[(ENV_TELEMETRY, v)])), None, "{v}");
            assert_eq!(
                env_opt_out(&env(&[(ENV_DO_NOT_TRACK, v)])),
                Some(OptOut::DoNotTrack),
                "{v}"
            );
        }
        for v in ["", "0", "false"] {
            assert_eq!(env_opt_out(&env(&[(ENV_DO_NOT_TRACK, v)])), None, "{v:?}");
        }
        assert_eq!(env_opt_out(&env(&[])), None);
    }

    #[test]
    fn config_file_opt_out_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        let e = env(&[(ENV_HOME, home)]);
        assert_eq!(resolve(&e), Ok(FileConfig::default()));
        let write = |s: &str| std::fs::write(dir.path().join("config.json"), s).unwrap();
        write(r#"{"telemetry": false}"#);
        assert_eq!(resolve(&e), Err(OptOut::ConfigFile));
        write(r#"{"telemetry": "0"}"#);
        assert_eq!(resolve(&e), Err(OptOut::ConfigFile));
        write(
            r#"{"telemetry": true, "endpoint": "https://t.example", "mode": "http", "other": 1}"#,
        );
        let c = resolve(&e).unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("https://t.example"));
        assert_eq!(c.mode.as_deref(), Some("http"));
        write("{not json");
        assert_eq!(resolve(&e), Err(OptOut::UnreadableConfig));
        write("[]");
        assert_eq!(resolve(&e), Err(OptOut::UnreadableConfig));
        // The environment wins without reading the file.
        let e2 = env(&[(ENV_HOME, home), (ENV_DO_NOT_TRACK, "1")]);
        assert_eq!(resolve(&e2), Err(OptOut::DoNotTrack));
    }

    #[test]
    fn paths() {
        let e = env(&[("HOME", "/h")]);
        assert_eq!(wraith_dir(&e), Some(PathBuf::from("/h/.wraith")));
        assert_eq!(
            socket_path(&e),
            Some(PathBuf::from("/h/.wraith/wraith.sock"))
        );
        assert_eq!(spool_dir(&e), Some(PathBuf::from("/h/.wraith/spool")));
        let e = env(&[("HOME", "/h"), ("XDG_RUNTIME_DIR", "/run/user/1")]);
        assert_eq!(
            socket_path(&e),
            Some(PathBuf::from("/run/user/1/wraith/wraith.sock"))
        );
        let e = env(&[("HOME", "/h"), (ENV_SOCKET, "/s.sock"), (ENV_HOME, "/w")]);
        assert_eq!(socket_path(&e), Some(PathBuf::from("/s.sock")));
        assert_eq!(spool_dir(&e), Some(PathBuf::from("/w/spool")));
        assert_eq!(socket_path(&env(&[])), None);
    }
}
