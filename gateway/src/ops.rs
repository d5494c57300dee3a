//! Running the gateway as an operator does: the pid file in the data folder
//! (found by `gateway reload` and `gateway stop`), and reloading the config
//! on SIGHUP.
//!
//! A reload reads the config file again (with the same command-line and
//! environment overrides), validates it, and applies what can change while
//! running — tokens, request and event limits, rate limits, header limits,
//! declared destinations, the TLS certificate, the plugins' instance
//! limits — then rescans the plugins folder (its
//! `plugins.toml` holds each plugin's settings). A config that does not
//! validate changes nothing. Settings that need a restart (the listen
//! address, sinks, the plugins section…) are named in the outcome and left
//! as they are. Every outcome is logged, kept for `/v1/status`, and written
//! to `gateway.reload.json` beside the pid file, where `gateway reload`
//! reads it.

use crate::config::{Config, LimitsConfig};
use crate::ingest::{AppState, IngestLimits, RateLimits};
use crate::pipeline::registry::Registry;
use arc_swap::ArcSwap;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The pid file's name in the data folder.
pub const PID_FILE: &str = "gateway.pid";
/// The newest reload's outcome, beside the pid file.
pub const RELOAD_FILE: &str = "gateway.reload.json";

#[derive(Debug, thiserror::Error)]
pub enum PidError {
    #[error(
        "another gateway (pid {pid}) is running with the data folder {dir}; stop it (`gateway stop --data-dir {dir}`) or give this one its own --data-dir"
    )]
    Running { pid: i32, dir: String },
    #[error("cannot write the pid file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "no gateway is running with the data folder {dir} (no readable {PID_FILE} there; pass the --data-dir or --config the gateway was started with)"
    )]
    NotRunning { dir: String },
}

/// Whether a process with this pid exists (and may be signalled by us).
pub fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 checks existence and permission; it sends nothing.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

/// Read the pid of the gateway running with `dir`, if any is alive.
pub fn running_pid(dir: &Path) -> Result<i32, PidError> {
    let not_running = || PidError::NotRunning {
        dir: dir.display().to_string(),
    };
    let text = std::fs::read_to_string(dir.join(PID_FILE)).map_err(|_| not_running())?;
    let pid: i32 = text.trim().parse().map_err(|_| not_running())?;
    if alive(pid) {
        Ok(pid)
    } else {
        Err(not_running())
    }
}

/// The pid file of the running gateway; removed when dropped.
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Write this process's pid into `dir`, refusing when another live
    /// gateway holds the file (a stale one, left by a crash, is replaced).
    pub fn create(dir: &Path) -> Result<PidFile, PidError> {
        let path = dir.join(PID_FILE);
        let me = std::process::id() as i32;
        if let Ok(pid) = running_pid(dir)
            && pid != me
        {
            return Err(PidError::Running {
                pid,
                dir: dir.display().to_string(),
            });
        }
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let tmp = dir.join(format!(".{PID_FILE}.{me}"));
            std::fs::write(&tmp, format!("{me}\n"))?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|source| PidError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(PidFile { path })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Only our own: a second gateway may have taken over a stale file.
        if std::fs::read_to_string(&self.path)
            .is_ok_and(|t| t.trim() == std::process::id().to_string())
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What one reload did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ReloadOutcome {
    /// RFC 3339, UTC.
    pub at: String,
    /// Whether the config was read and applied (false: nothing changed).
    pub ok: bool,
    /// Why not, when `ok` is false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The settings that changed and were applied.
    pub applied: Vec<String>,
    /// The settings that changed but take effect only after a restart.
    pub restart_needed: Vec<String>,
    /// The plugin chain's generation after the rescan.
    pub generation: u64,
    /// Plugin files that did not load in the rescan (the previous version
    /// of each keeps running).
    pub plugin_errors: Vec<String>,
}

/// Where the config comes from, so a reload can read it again: the file
/// and the overrides from flags and environment that were applied on top.
#[derive(Clone)]
pub struct ConfigSource {
    pub path: Option<PathBuf>,
    pub overrides: Arc<dyn Fn(&mut Config) + Send + Sync>,
}

impl ConfigSource {
    pub fn read(&self) -> Result<Config, crate::config::ConfigError> {
        let mut c = match &self.path {
            Some(p) => Config::from_file(p)?,
            None => Config::default(),
        };
        (self.overrides)(&mut c);
        c.validate()?;
        Ok(c)
    }
}

/// The running gateway's reloadable parts.
pub struct Reloader {
    pub state: Arc<AppState>,
    pub registry: Arc<Registry>,
    /// The limits the accept loop reads for each new connection.
    pub connection_limits: Arc<ArcSwap<LimitsConfig>>,
    pub source: Option<ConfigSource>,
    /// The config the gateway started with, and the one in force now.
    pub started: Config,
    pub running: Mutex<Config>,
    pub data_dir: PathBuf,
    /// The listener's certificate, when it speaks TLS.
    pub tls: Option<Arc<crate::tls::Certs>>,
}

impl Reloader {
    /// Reload the config and rescan the plugins. Blocking (plugins may
    /// compile): call from a blocking thread.
    pub fn reload(&self) -> ReloadOutcome {
        let at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut outcome = match self.apply_config() {
            Ok((applied, restart_needed)) => ReloadOutcome {
                at,
                ok: true,
                applied,
                restart_needed,
                ..Default::default()
            },
            Err(error) => ReloadOutcome {
                at,
                ok: false,
                error: Some(error),
                ..Default::default()
            },
        };
        // The tokens file and the plugins folder are reread either way.
        if let Err(e) = self.state.auth.reload() {
            tracing::warn!(error = %e, "tokens file not reloaded; the tokens in use stay");
        }
        let report = self.registry.reload();
        outcome.generation = report.generation;
        outcome.plugin_errors = report
            .failed
            .iter()
            .map(|(f, e)| format!("{f}: {e}"))
            .collect();
        if outcome.ok {
            tracing::info!(applied = ?outcome.applied, restart_needed = ?outcome.restart_needed, generation = outcome.generation, "config reloaded");
            if !outcome.restart_needed.is_empty() {
                tracing::warn!(settings = ?outcome.restart_needed, "these settings changed but take effect only after a restart");
            }
        } else {
            tracing::error!(
                error = outcome.error.as_deref().unwrap_or(""),
                "config not reloaded; the running config stays"
            );
        }
        let path = self.data_dir.join(RELOAD_FILE);
        let tmp = self.data_dir.join(format!(".{RELOAD_FILE}"));
        let json = serde_json::to_vec_pretty(&outcome).expect("outcome serializes");
        if let Err(e) = std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, &path)) {
            tracing::warn!(error = %e, file = %path.display(), "cannot write the reload outcome");
        }
        self.state
            .gateway
            .activity
            .set_reload(serde_json::to_value(&outcome).expect("outcome serializes"));
        outcome
    }

    /// Apply what can change while running; name what cannot. Settings
    /// that need a restart are compared with the config the gateway started
    /// with (so each reload names them until the restart), the others with
    /// the config in force.
    fn apply_config(&self) -> Result<(Vec<String>, Vec<String>), String> {
        let new = match &self.source {
            Some(source) => source.read().map_err(|e| e.to_string())?,
            None => self.started.clone(),
        };
        let mut running = self.running.lock().expect("config");
        let (started, old) = (&self.started, running.clone());
        let mut restart = Vec::new();
        let mut differs = |changed: bool, name: &str| {
            if changed {
                restart.push(name.to_string());
            }
        };
        let fixed_server = |c: &Config| {
            let mut s = c.server.clone();
            s.max_body_size = Default::default();
            s.max_events_per_request = 0;
            s.tls_cert = PathBuf::new();
            s.tls_key = PathBuf::new();
            s
        };
        differs(started.server.tls() != new.server.tls(), "server.tls_cert");
        differs(fixed_server(started) != fixed_server(&new), "server");
        differs(
            started.auth.tokens_file != new.auth.tokens_file,
            "auth.tokens_file",
        );
        // The instances' limits reload; the rest of [plugins] needs a restart.
        let fixed_plugins = |c: &Config| {
            let mut p = c.plugins.clone();
            let d = crate::config::PluginsConfig::default();
            p.call_timeout = d.call_timeout;
            p.memory_limit = d.memory_limit;
            p.memory_high_water = d.memory_high_water;
            p.max_calls_per_instance = d.max_calls_per_instance;
            p.quarantine_after = d.quarantine_after;
            p
        };
        differs(fixed_plugins(started) != fixed_plugins(&new), "plugins");
        differs(started.sinks != new.sinks, "sinks");
        for (name, d) in &new.destinations {
            let places_changed = match started.destinations.get(name) {
                Some(o) => o.folder != d.folder || o.subject != d.subject,
                None => d.folder.is_some() || d.subject.is_some(),
            };
            differs(places_changed, &format!("destinations.{name}"));
        }
        // Refuse an open listener, as at start.
        let tokens_on =
            !new.auth.tokens.is_empty() || !started.auth.tokens_file.as_os_str().is_empty();
        if !tokens_on && !started.server.listen.ip().is_loopback() && !new.auth.allow_anonymous {
            return Err(format!(
                "the new config has no API tokens while the gateway listens on {}; set auth.tokens or auth.allow_anonymous",
                started.server.listen
            ));
        }
        // The certificate is read before anything changes, so that a bad
        // file leaves the whole reload undone.
        let cert = match &self.tls {
            Some(_) if new.server.tls() => Some(
                crate::tls::load(&new.server.tls_cert, &new.server.tls_key)
                    .map_err(|e| e.to_string())?,
            ),
            _ => None,
        };
        let mut applied = Vec::new();
        if old.auth.tokens != new.auth.tokens {
            self.state
                .auth
                .set_fixed(&new.auth.tokens)
                .map_err(|e| e.to_string())?;
            applied.push("auth.tokens".to_string());
        }
        if let (Some(certs), Some(cert)) = (&self.tls, cert) {
            certs.set(cert);
            applied.push("server.tls_cert (reread)".into());
        }
        if old.limits != new.limits
            || old.server.max_body_size != new.server.max_body_size
            || old.server.max_events_per_request != new.server.max_events_per_request
        {
            self.state
                .limits
                .store(Arc::new(IngestLimits::from_config(&new)));
            self.connection_limits.store(Arc::new(new.limits.clone()));
            applied.push("limits".into());
        }
        if (old.limits.requests_per_second, old.limits.burst)
            != (new.limits.requests_per_second, new.limits.burst)
        {
            self.state.rate.store(RateLimits::new(
                new.limits.requests_per_second,
                new.limits.burst,
            ));
        }
        if old.destinations.keys().ne(new.destinations.keys()) {
            self.state
                .gateway
                .set_destinations(new.destinations.keys().cloned());
            applied.push("destinations".into());
        }
        let limits = crate::host::Limits::from_config(&new.plugins);
        if limits != crate::host::Limits::from_config(&old.plugins) {
            // Applied by the rescan below: every plugin is loaded again.
            self.registry.set_limits(limits);
            applied.push("plugins limits (call_timeout, memory, recycling, quarantine)".into());
        }
        if old.auth.allow_anonymous != new.auth.allow_anonymous {
            applied.push("auth.allow_anonymous".into());
        }
        *running = new;
        Ok((applied, restart))
    }
}
