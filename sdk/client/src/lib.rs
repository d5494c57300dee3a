//! `wraith-sdk`: the thin client for tools.
//!
//! ```no_run
//! // In `main`, once; keep the guard until the tool exits.
//! let _telemetry = wraith_sdk::init("mytool", env!("CARGO_PKG_VERSION"));
//! let result = wraith_sdk::timed("scan", || -> Result<(), std::io::Error> { Ok(()) });
//! wraith_sdk::track(wraith_sdk::Event::new("cache_cleared").field("entries", 12));
//! ```
//!
//! `init` reads the opt-out rules ([`settings`]) and, when telemetry is on,
//! starts one background thread; [`track`] encodes the event on the caller's
//! thread (a few hundred nanoseconds) and hands it to that thread through a
//! bounded channel, never waiting: when the channel is full the event is
//! dropped and counted. Nothing here blocks on I/O, panics, or returns an
//! error to the tool. When the guard `init` returned is dropped, what is
//! still queued is delivered for at most [`Options::flush_timeout`].
//!
//! Three ways out of the process ([`Mode`]): the local `wraith-daemon` over
//! its Unix socket (the default; started on demand with the tool as its
//! parent), direct HTTP to the gateway (CI runners, containers), or a JSON
//! Lines file (local use only).
//!
//! Opted out (`WRAITH_TELEMETRY=false` or `0`, `DO_NOT_TRACK=1`, or
//! `"telemetry": false` in `~/.wraith/config.json`), `init` starts no
//! thread, opens no socket, writes no file and starts no daemon, and
//! [`track`] returns after one atomic load.

#![warn(missing_docs)]

mod context;
mod encode;
pub mod settings;
mod transport;

pub use context::{context, installation_id};
pub use serde_json::Value;
pub use wraith_event::wire::Level;

use settings::Env;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

/// One event, built without allocating until a custom [`field`](Event::field)
/// is added. The SDK adds `event_id`, `timestamp`, `tool` and `context`.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    event_type: &'a str,
    level: Level,
    command: Option<&'a str>,
    duration_ms: Option<u64>,
    error_type: Option<&'a str>,
    fields: Vec<(&'a str, Value)>,
}

impl<'a> Event<'a> {
    /// An `info` event of this type.
    pub fn new(event_type: &'a str) -> Self {
        Event {
            event_type,
            level: Level::Info,
            command: None,
            duration_ms: None,
            error_type: None,
            fields: Vec::new(),
        }
    }

    /// Its severity (`critical` and `fatal` leave the daemon at once).
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// The tool's command or subcommand.
    pub fn command(mut self, command: &'a str) -> Self {
        self.command = Some(command);
        self
    }

    /// How long it took.
    pub fn duration(self, d: Duration) -> Self {
        self.duration_ms(d.as_millis() as u64)
    }

    /// How long it took, in milliseconds.
    pub fn duration_ms(mut self, ms: u64) -> Self {
        self.duration_ms = Some(ms);
        self
    }

    /// The kind of error: a type name or a fixed code, never a message.
    pub fn error_type(mut self, error_type: &'a str) -> Self {
        self.error_type = Some(error_type);
        self
    }

    /// Any other field. Names the SDK writes itself (`event_id`, `tool`,
    /// `context`, …) are ignored here. The tool is responsible for what it
    /// puts in custom fields: no paths, names or messages.
    pub fn field(mut self, name: &'a str, value: impl Into<Value>) -> Self {
        self.fields.push((name, value.into()));
        self
    }
}

/// Where events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Through the local `wraith-daemon` (started when not running).
    Daemon,
    /// Straight to the gateway, in batches, with a short timeout; for
    /// machines where no daemon should run (CI runners, containers).
    #[cfg(feature = "http")]
    Http,
    /// Appended to a JSON Lines file; nothing leaves the machine.
    File(PathBuf),
}

/// How `init` sets the SDK up. Everything here is a default that the user's
/// environment and config file override (see [`settings`]).
#[derive(Debug, Clone)]
pub struct Options {
    tool: String,
    version: String,
    endpoint: Option<String>,
    mode: Option<Mode>,
    daemon: Option<PathBuf>,
    socket: Option<PathBuf>,
    flush_timeout: Duration,
    http_timeout: Duration,
    capacity: usize,
}

impl Options {
    /// Defaults for this tool and version.
    pub fn new(tool: &str, version: &str) -> Self {
        Options {
            tool: tool.to_string(),
            version: version.to_string(),
            endpoint: None,
            mode: None,
            daemon: None,
            socket: None,
            flush_timeout: Duration::from_secs(1),
            http_timeout: Duration::from_secs(2),
            capacity: 4096,
        }
    }

    /// The gateway's base URL when neither `WRAITH_ENDPOINT` nor the config
    /// file names one.
    pub fn endpoint(mut self, url: &str) -> Self {
        self.endpoint = Some(url.to_string());
        self
    }

    /// The mode when neither `WRAITH_MODE` nor the config file sets one.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// The `wraith-daemon` binary (default: `WRAITH_DAEMON`, else beside the
    /// tool's executable, else from `PATH`).
    pub fn daemon(mut self, path: impl Into<PathBuf>) -> Self {
        self.daemon = Some(path.into());
        self
    }

    /// The daemon's socket when `WRAITH_SOCKET` is not set (default:
    /// [`settings::socket_path`]).
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket = Some(path.into());
        self
    }

    /// How long dropping the guard may wait for queued events to leave
    /// (default 1 s; the daemon mode needs it only when it starts the daemon).
    pub fn flush_timeout(mut self, t: Duration) -> Self {
        self.flush_timeout = t;
        self
    }

    /// The HTTP mode's request timeout (default 2 s).
    pub fn http_timeout(mut self, t: Duration) -> Self {
        self.http_timeout = t;
        self
    }

    /// Events queued for the background thread before new ones are dropped
    /// (default 4096).
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n.max(1);
        self
    }

    /// Set the SDK up for the process. Only the first call counts.
    pub fn init(self) -> Telemetry {
        self.init_with(&settings::ProcessEnv)
    }

    fn init_with(self, env: &impl Env) -> Telemetry {
        let timeout = self.flush_timeout;
        if INITIALISED.swap(true, Ordering::AcqRel) {
            return Telemetry { timeout };
        }
        let Ok(config) = settings::resolve(env) else {
            return Telemetry { timeout };
        };
        let Some(target) = self.target(env, &config) else {
            return Telemetry { timeout };
        };
        let id = settings::wraith_dir(env).and_then(|d| installation_id(&d));
        let ctx = context(id.as_deref(), &self.version);
        let (tx, rx) = std::sync::mpsc::sync_channel(self.capacity);
        let spawned = std::thread::Builder::new()
            .name("wraith-sdk".into())
            .spawn(move || transport::run(rx, target));
        if spawned.is_err() {
            return Telemetry { timeout };
        }
        let _ = CLIENT.set(Client {
            tx,
            ids: encode::Ids::new(),
            fixed: encode::Fixed::new(&self.tool, &ctx),
            dropped: AtomicU64::new(0),
        });
        Telemetry { timeout }
    }

    fn target(&self, env: &impl Env, config: &settings::FileConfig) -> Option<transport::Target> {
        let endpoint = env
            .var(settings::ENV_ENDPOINT)
            .filter(|e| !e.is_empty())
            .or_else(|| config.endpoint.clone())
            .or_else(|| self.endpoint.clone())
            .unwrap_or_else(|| settings::DEFAULT_ENDPOINT.to_string());
        let file = env
            .var(settings::ENV_FILE)
            .filter(|f| !f.is_empty())
            .map(PathBuf::from)
            .or_else(|| config.file.clone());
        let mode = match env
            .var(settings::ENV_MODE)
            .filter(|m| !m.is_empty())
            .or_else(|| config.mode.clone())
            .as_deref()
        {
            Some("daemon") => Mode::Daemon,
            #[cfg(feature = "http")]
            Some("http") => Mode::Http,
            Some("file") => Mode::File(
                file.clone()
                    .or_else(|| settings::wraith_dir(env).map(|d| d.join("events.jsonl")))?,
            ),
            // An unknown mode sends nothing rather than guessing.
            Some(_) => return None,
            None => self.mode.clone().unwrap_or(Mode::Daemon),
        };
        Some(match mode {
            Mode::Daemon => transport::Target::Daemon(transport::DaemonTarget {
                socket: match env.var(settings::ENV_SOCKET).filter(|s| !s.is_empty()) {
                    Some(s) => PathBuf::from(s),
                    None => self.socket.clone().or_else(|| settings::socket_path(env))?,
                },
                daemon: env
                    .var(settings::ENV_DAEMON)
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from)
                    .or_else(|| self.daemon.clone()),
                endpoint,
                spool_dir: env
                    .var(settings::ENV_SPOOL_DIR)
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from),
            }),
            #[cfg(feature = "http")]
            Mode::Http => transport::Target::Http(transport::HttpTarget {
                url: transport::events_url(&endpoint),
                timeout: self.http_timeout,
            }),
            Mode::File(p) => transport::Target::File(file.unwrap_or(p)),
        })
    }
}

struct Client {
    tx: SyncSender<transport::Msg>,
    ids: encode::Ids,
    fixed: encode::Fixed,
    dropped: AtomicU64,
}

static INITIALISED: AtomicBool = AtomicBool::new(false);
static CLIENT: OnceLock<Client> = OnceLock::new();

/// Set the SDK up for this tool, with defaults ([`Options`] for more). Keep
/// the guard until the tool exits: dropping it delivers what is queued.
pub fn init(tool: &str, version: &str) -> Telemetry {
    Options::new(tool, version).init()
}

/// Returned by [`init`]; dropping it flushes (for at most the flush timeout).
#[must_use = "dropping the guard flushes; keep it until the tool exits"]
#[derive(Debug)]
pub struct Telemetry {
    timeout: Duration,
}

impl Telemetry {
    /// Deliver what is queued now, for at most `timeout`.
    pub fn flush(&self, timeout: Duration) {
        flush(timeout);
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        flush(self.timeout);
    }
}

/// Whether events are being collected (telemetry on and `init` called).
pub fn enabled() -> bool {
    CLIENT.get().is_some()
}

/// Events dropped because the queue to the background thread was full.
pub fn dropped() -> u64 {
    CLIENT
        .get()
        .map_or(0, |c| c.dropped.load(Ordering::Relaxed))
}

/// Track one event. Never blocks, never fails, never panics.
#[inline]
pub fn track(event: Event<'_>) {
    if let Some(c) = CLIENT.get() {
        track_slow(c, &event);
    }
}

#[inline(never)]
fn track_slow(c: &Client, event: &Event<'_>) {
    let mut line = Vec::with_capacity(384);
    encode::encode(&mut line, &c.ids, &c.fixed, event);
    if c.tx.try_send(transport::Msg::Line(line)).is_err() {
        c.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// Deliver what is queued, waiting at most `timeout`.
pub fn flush(timeout: Duration) {
    let Some(c) = CLIENT.get() else { return };
    let deadline = Instant::now() + timeout;
    let (ack_tx, ack_rx) = std::sync::mpsc::sync_channel(1);
    let mut msg = transport::Msg::Flush(deadline, ack_tx);
    loop {
        match c.tx.try_send(msg) {
            Ok(()) => break,
            Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                msg = m;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return,
        }
    }
    let _ = ack_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
}

/// A command being timed: [`start`] tracks `tool_invoked`; [`succeeded`] or
/// [`failed`] track `tool_succeeded` / `tool_failed` with `duration_ms`.
/// Dropped unfinished, it counts as failed (`error_type` `panic` while
/// unwinding, else `unfinished`).
///
/// [`succeeded`]: Run::succeeded
/// [`failed`]: Run::failed
#[derive(Debug)]
pub struct Run {
    command: Option<String>,
    start: Instant,
}

/// Start timing `command` (tracks `tool_invoked`).
pub fn start(command: &str) -> Run {
    let command = if enabled() {
        track(Event::new("tool_invoked").command(command));
        Some(command.to_string())
    } else {
        None
    };
    Run {
        command,
        start: Instant::now(),
    }
}

impl Run {
    /// The command worked.
    pub fn succeeded(mut self) {
        if let Some(c) = self.command.take() {
            track(
                Event::new("tool_succeeded")
                    .command(&c)
                    .duration(self.start.elapsed()),
            );
        }
    }

    /// The command failed with this error: its type is sent, never its message.
    pub fn failed<E: ?Sized>(self, _error: &E) {
        self.failed_with(error_type_name::<E>());
    }

    /// The command failed; `error_type` is a type name or fixed code.
    pub fn failed_with(mut self, error_type: &str) {
        if let Some(c) = self.command.take() {
            track(
                Event::new("tool_failed")
                    .level(Level::Error)
                    .command(&c)
                    .duration(self.start.elapsed())
                    .error_type(error_type),
            );
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.command.is_some() {
            let why = if std::thread::panicking() {
                "panic"
            } else {
                "unfinished"
            };
            Run {
                command: self.command.take(),
                start: self.start,
            }
            .failed_with(why);
        }
    }
}

/// Run `f` as `command`, timed: `tool_invoked`, then `tool_succeeded` or
/// `tool_failed` with the error's type name. Returns what `f` returned.
pub fn timed<T, E>(command: &str, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let run = start(command);
    let r = f();
    match &r {
        Ok(_) => run.succeeded(),
        Err(e) => run.failed(e),
    }
    r
}

/// The type name sent as `error_type`: the Rust type's path
/// (`std::io::error::Error`), which says what kind of error without its text.
pub fn error_type_name<E: ?Sized>() -> &'static str {
    std::any::type_name::<E>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_sdk_is_inert() {
        // No init in this test binary's process: every call is a no-op.
        assert!(!enabled());
        track(Event::new("x").field("a", 1));
        flush(Duration::from_millis(1));
        let r = start("scan");
        assert!(r.command.is_none());
        r.succeeded();
        assert_eq!(
            timed("c", || Err::<(), _>(std::fmt::Error)),
            Err(std::fmt::Error)
        );
        assert_eq!(dropped(), 0);
    }

    #[test]
    fn error_types_are_type_names() {
        assert_eq!(error_type_name::<std::io::Error>(), "std::io::error::Error");
        assert_eq!(error_type_name::<std::fmt::Error>(), "core::fmt::Error");
    }
}
