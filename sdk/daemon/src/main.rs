//! `wraith-daemon`: the local daemon tools send telemetry through.
//!
//! Tools write NDJSON events to its Unix socket and move on; it batches
//! them (every 30 s, at 25 events, at once for `critical`/`fatal`), sends
//! them to the gateway's `POST /v1/events`, keeps what the gateway cannot
//! take in an on-disk spool and replays it in order, and exits after a final
//! flush when its parent process is gone or it has been idle for a while.

mod check;
mod daemon;
mod log;
mod send;
mod spool;
mod status;
mod time;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use wraith_event::wire::Level;
use wraith_sdk::settings;

#[derive(Parser, Debug)]
#[command(
    name = "wraith-daemon",
    version,
    about = "Take telemetry events from tools on a Unix socket and send them to a Wraith gateway",
    long_about = "Take telemetry events from tools on a Unix socket and send them to a Wraith gateway.\n\n\
Tools write one JSON event per line to the socket and never wait for an answer. \
The daemon batches them, sends them to the gateway's POST /v1/events, keeps what the \
gateway cannot take in an on-disk spool (replayed in order later), and exits after a \
final flush when --parent-pid is gone or after --idle-timeout without events. \
Without --foreground it detaches and returns once the socket is ready.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Check that the gateway answers, and say what is wrong if not.
    Test {
        /// The gateway's base URL (`http://host:port`).
        #[arg(long, env = "WRAITH_ENDPOINT")]
        endpoint: String,
        /// Seconds to wait for an answer.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
        /// Bearer token for gateways that require one.
        #[arg(long, env = "WRAITH_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Show the daemon's state: pid, queue, spool, last send, last error.
    Status {
        /// The daemon's spool folder, where its status file is
        /// [default: ~/.wraith/spool].
        #[arg(long, env = "WRAITH_SPOOL_DIR")]
        spool_dir: Option<PathBuf>,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The gateway's base URL (`http://host:port`; `/v1/events` is added).
    #[arg(long, env = "WRAITH_ENDPOINT", default_value = settings::DEFAULT_ENDPOINT)]
    endpoint: String,
    /// The Unix socket to listen on [default: $XDG_RUNTIME_DIR/wraith/wraith.sock, else ~/.wraith/wraith.sock].
    #[arg(long, env = "WRAITH_SOCKET")]
    socket: Option<PathBuf>,
    /// Where batches wait while the gateway is away [default: ~/.wraith/spool].
    #[arg(long, env = "WRAITH_SPOOL_DIR")]
    spool_dir: Option<PathBuf>,
    /// Flush and exit once this process is gone.
    #[arg(long)]
    parent_pid: Option<u32>,
    /// Stay attached to the terminal (and log to stderr as well).
    #[arg(long)]
    foreground: bool,
    /// Print each batch that would be sent (to stdout) and send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Seconds a batch waits to fill before it is sent anyway.
    #[arg(long, env = "WRAITH_FLUSH_INTERVAL", default_value_t = 30.0)]
    flush_interval: f64,
    /// Events per batch; a full batch is sent at once.
    #[arg(long, env = "WRAITH_BATCH_SIZE", default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    batch_size: u64,
    /// Events at this level or above are sent at once (debug … fatal, or `off`).
    #[arg(long, env = "WRAITH_URGENT_LEVEL", default_value = "critical")]
    urgent_level: String,
    /// Seconds without events after which the daemon exits (0: never).
    #[arg(long, env = "WRAITH_IDLE_TIMEOUT", default_value_t = 300.0)]
    idle_timeout: f64,
    /// Seconds an HTTP request may take.
    #[arg(long, env = "WRAITH_TIMEOUT", default_value_t = 5.0)]
    timeout: f64,
    /// Longest wait, in seconds, between retries while the gateway is away.
    #[arg(long, env = "WRAITH_MAX_BACKOFF", default_value_t = 60.0)]
    max_backoff: f64,
    /// The spool's size cap in MiB; past it the oldest batches are dropped.
    #[arg(long, env = "WRAITH_SPOOL_MAX_MIB", default_value_t = 64)]
    spool_max_mib: u64,
    /// Events kept in memory before the oldest are dropped.
    #[arg(long, default_value_t = 100_000)]
    max_queue: usize,
    /// Bearer token for gateways that require one.
    #[arg(long, env = "WRAITH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The log file [default: <spool-dir>/daemon.log].
    #[arg(long, env = "WRAITH_LOG_FILE")]
    log_file: Option<PathBuf>,
}

fn seconds(name: &str, v: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(v)
        .with_context(|| format!("--{name} must be a number of seconds ≥ 0, got {v}"))
}

fn config(a: &RunArgs) -> Result<daemon::Config> {
    let env = settings::ProcessEnv;
    let socket = match &a.socket {
        Some(s) => s.clone(),
        None => settings::socket_path(&env).context(
            "no socket path: pass --socket, or set WRAITH_SOCKET, XDG_RUNTIME_DIR or HOME",
        )?,
    };
    let spool_dir = match &a.spool_dir {
        Some(s) => s.clone(),
        None => settings::spool_dir(&env)
            .context("no spool folder: pass --spool-dir, or set WRAITH_SPOOL_DIR or HOME")?,
    };
    let urgent_level = match a.urgent_level.as_str() {
        "off" | "none" => None,
        l => Some(Level::parse(l).with_context(|| {
            format!("--urgent-level must be debug, info, warning, error, critical, fatal or off, got {l:?}")
        })?),
    };
    let idle = seconds("idle-timeout", a.idle_timeout)?;
    let flush_interval = seconds("flush-interval", a.flush_interval)?;
    if a.endpoint.parse::<ureq::http::Uri>().is_err() {
        bail!("--endpoint {:?} is not a URL", a.endpoint);
    }
    // Absolute, so the detached daemon can leave the tool's working folder.
    let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
    let log_file = a
        .log_file
        .clone()
        .unwrap_or_else(|| spool_dir.join("daemon.log"));
    Ok(daemon::Config {
        endpoint: a.endpoint.clone(),
        log_file: absolute(log_file),
        socket: absolute(socket),
        spool_dir: absolute(spool_dir),
        parent_pid: a.parent_pid,
        dry_run: a.dry_run,
        flush_interval,
        batch_size: a.batch_size as usize,
        urgent_level,
        idle_timeout: (!idle.is_zero()).then_some(idle),
        timeout: seconds("timeout", a.timeout)?,
        max_backoff: seconds("max-backoff", a.max_backoff)?.max(Duration::from_millis(100)),
        spool_max_bytes: a.spool_max_mib.saturating_mul(1 << 20),
        max_queue: a.max_queue.max(1),
        token: a.token.clone(),
    })
}

/// Start a copy of this process with `--foreground`, detached (no terminal,
/// its own process group), and return once its socket answers or it exits.
fn detach(cfg: &daemon::Config) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().context("finding this executable")?;
    let mut child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .arg("--foreground")
        .env("WRAITH_DAEMON_DETACHED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("starting the detached daemon")?;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        if let Some(status) = child.try_wait().context("waiting for the daemon")? {
            // It exited at once: another instance serves the socket (0), or
            // it failed (its log says why).
            return Ok(if status.success() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "wraith-daemon: failed to start; see {}",
                    cfg.log_file.display()
                );
                ExitCode::FAILURE
            });
        }
        if std::os::unix::net::UnixStream::connect(&cfg.socket).is_ok() {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            log::error!("{e:#}");
            if std::env::var_os("WRAITH_DAEMON_DETACHED").is_some() {
                // Logged above; nobody reads stderr.
            } else {
                eprintln!("wraith-daemon: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Some(Cmd::Test {
            endpoint,
            timeout,
            token,
        }) => Ok(
            match check::check(&endpoint, seconds("timeout", timeout)?, token) {
                Ok(msg) => {
                    println!("{msg}");
                    ExitCode::SUCCESS
                }
                Err(msg) => {
                    println!("error: {msg}");
                    ExitCode::FAILURE
                }
            },
        ),
        Some(Cmd::Status { spool_dir, json }) => {
            let dir = match spool_dir {
                Some(d) => d,
                None => settings::spool_dir(&settings::ProcessEnv).context(
                    "no spool folder: pass --spool-dir, or set WRAITH_SPOOL_DIR or HOME",
                )?,
            };
            Ok(if status::show(&dir, json)? {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        None => {
            let cfg = config(&cli.run)?;
            let detached = std::env::var_os("WRAITH_DAEMON_DETACHED").is_some();
            log::init(cfg.log_file.clone(), cli.run.foreground && !detached);
            if let Err(why) = settings::resolve(&settings::ProcessEnv) {
                log::info!("telemetry is turned off ({why:?}); not starting");
                return Ok(ExitCode::SUCCESS);
            }
            if !cli.run.foreground {
                return detach(&cfg);
            }
            if detached {
                // Do not keep the tool's working folder busy (or unmountable).
                let _ = std::env::set_current_dir("/");
            }
            daemon::run(cfg)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
