//! The running daemon: one thread accepting on the socket, one per
//! connection reading lines into the in-memory queue, one sending batches
//! (and spooling and replaying them), and the main thread watching signals,
//! the parent process and idleness.
//!
//! ```text
//! tool ──NDJSON──▶ reader ──▶ queue ──▶ sender ──POST /v1/events──▶ gateway
//!                                         │  ▲
//!                   unreachable, 429, 503 ▼  │ replay, oldest first
//!                                         spool (one file per batch)
//! ```
//!
//! Ordering: while the spool holds anything, new batches join its end, so
//! the gateway sees batches in the order they were made.

use crate::log::{error, info, warning};
use crate::send::{Backoff, Client, Outcome};
use crate::spool::Spool;
use crate::status::Status;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use wraith_event::wire::Level;

/// A line longer than this is refused (and counted as invalid).
const MAX_LINE: usize = 1 << 20;
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 64;

/// Everything the daemon runs with (from the command line).
#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub socket: PathBuf,
    pub spool_dir: PathBuf,
    pub log_file: PathBuf,
    pub parent_pid: Option<u32>,
    pub dry_run: bool,
    pub flush_interval: Duration,
    pub batch_size: usize,
    /// Events at this level or above are sent at once; `None`: never.
    pub urgent_level: Option<Level>,
    pub idle_timeout: Option<Duration>,
    pub timeout: Duration,
    pub max_backoff: Duration,
    pub spool_max_bytes: u64,
    pub max_queue: usize,
    pub token: Option<String>,
}

struct State {
    queue: VecDeque<Vec<u8>>,
    /// When the oldest queued event arrived.
    oldest_at: Option<Instant>,
    urgent: bool,
    closing: bool,
    last_activity: Instant,
    status: Status,
    dirty: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    connections: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Run until the parent exits, the daemon has been idle long enough, or a
/// signal asks it to stop. `Ok(false)` when another instance already serves
/// the socket (not an error: the caller exits 0).
pub fn run(cfg: Config) -> Result<bool> {
    // Everything the daemon creates is its user's only: socket, spool, log.
    unsafe { libc::umask(0o077) };
    let socket_dir = cfg
        .socket
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    wraith_sdk::settings::create_private_dir(socket_dir)
        .with_context(|| format!("creating the socket's folder {}", socket_dir.display()))?;
    wraith_sdk::settings::create_private_dir(&cfg.spool_dir)
        .with_context(|| format!("creating the spool folder {}", cfg.spool_dir.display()))?;

    // One instance per socket: whoever holds the lock serves it.
    let lock_path = PathBuf::from(format!("{}.lock", cfg.socket.display()));
    let Some(_socket_lock) = try_lock(&lock_path)? else {
        let pid = std::fs::read_to_string(&lock_path).unwrap_or_default();
        info!(
            "already running for {} (pid {}); exiting",
            cfg.socket.display(),
            pid.trim()
        );
        return Ok(false);
    };
    let spool_lock_path = cfg.spool_dir.join("daemon.lock");
    let Some(_spool_lock) = try_lock(&spool_lock_path)? else {
        let pid = std::fs::read_to_string(&spool_lock_path).unwrap_or_default();
        bail!(
            "the spool folder {} is in use by another wraith-daemon (pid {}); give this one its own --spool-dir",
            cfg.spool_dir.display(),
            pid.trim()
        );
    };

    // A socket file left by a crash is taken over; one that answers belongs
    // to a daemon that holds no lock (an older one): leave it be.
    if cfg.socket.exists() {
        if UnixStream::connect(&cfg.socket).is_ok() {
            info!(
                "{} is served by another process; exiting",
                cfg.socket.display()
            );
            return Ok(false);
        }
        std::fs::remove_file(&cfg.socket)
            .with_context(|| format!("removing the stale socket {}", cfg.socket.display()))?;
        info!("took over the stale socket {}", cfg.socket.display());
    }
    let listener = UnixListener::bind(&cfg.socket)
        .with_context(|| format!("listening on {}", cfg.socket.display()))?;
    std::fs::set_permissions(&cfg.socket, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("setting the mode of {}", cfg.socket.display()))?;

    let spool = Spool::open(&cfg.spool_dir, cfg.spool_max_bytes)
        .with_context(|| format!("opening the spool {}", cfg.spool_dir.display()))?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }

    let mut status = Status::new(&cfg);
    status.set_spool(&spool);
    // Written before the first connection is taken, so `status` finds a
    // daemon as soon as its socket answers.
    status.write(&cfg.spool_dir.join("status.json"));
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            oldest_at: None,
            urgent: false,
            closing: false,
            last_activity: Instant::now(),
            status,
            dirty: true,
        }),
        wake: Condvar::new(),
        connections: AtomicUsize::new(0),
    });
    info!(
        "started: pid {}, socket {}, endpoint {}, spool {} ({} batches waiting){}{}",
        std::process::id(),
        cfg.socket.display(),
        cfg.endpoint,
        cfg.spool_dir.display(),
        spool.batches(),
        cfg.parent_pid
            .map(|p| format!(", parent {p}"))
            .unwrap_or_default(),
        if cfg.dry_run { ", dry run" } else { "" }
    );

    {
        let (shared, cfg) = (Arc::clone(&shared), cfg.clone());
        std::thread::Builder::new()
            .name("accept".into())
            .spawn(move || accept(listener, shared, cfg))
            .context("starting the accept thread")?;
    }
    let sender = {
        let (shared, cfg) = (Arc::clone(&shared), cfg.clone());
        std::thread::Builder::new()
            .name("sender".into())
            .spawn(move || Sender::new(cfg, spool).run(&shared))
            .context("starting the sender thread")?
    };

    let status_path = cfg.spool_dir.join("status.json");
    let mut last_status = Instant::now() - Duration::from_secs(10);
    let reason = loop {
        std::thread::sleep(Duration::from_millis(100));
        if stop.load(Ordering::Relaxed) {
            break "signal".to_string();
        }
        if let Some(pid) = cfg.parent_pid
            && !process_alive(pid)
        {
            break format!("parent {pid} exited");
        }
        let mut st = shared.lock();
        if let Some(idle) = cfg.idle_timeout
            && st.last_activity.elapsed() >= idle
            && st.queue.is_empty()
        {
            break format!("idle for {}s", idle.as_secs());
        }
        if st.dirty && last_status.elapsed() >= Duration::from_millis(500) {
            st.dirty = false;
            st.status.queued = st.queue.len() as u64;
            let s = st.status.clone();
            drop(st);
            s.write(&status_path);
            last_status = Instant::now();
        }
    };

    // Stop taking connections, give readers a moment to queue what they
    // hold, then let the sender flush (send, or spool) and finish.
    info!("stopping: {reason}");
    let _ = std::fs::remove_file(&cfg.socket);
    std::thread::sleep(Duration::from_millis(100));
    {
        let mut st = shared.lock();
        st.closing = true;
        shared.wake.notify_all();
    }
    let spool = sender.join();
    let mut st = shared.lock();
    // A client still connected may have written after the final flush took
    // the queue: keep that too, for the next daemon to send.
    if let (Ok(mut spool), Some(rest)) = (spool, take(&mut st, usize::MAX)) {
        match spool.push(&rest) {
            Ok(_) => st.status.set_spool(&spool),
            Err(e) => error!("could not spool the last events ({e}); they are lost"),
        }
    }
    st.status.queued = st.queue.len() as u64;
    st.status.stopped_ms = Some(crate::time::unix_ms());
    st.status.write(&status_path);
    info!(
        "stopped: {} events sent, {} in the spool",
        st.status.sent_events, st.status.spool_events
    );
    Ok(true)
}

/// Lock `path` (created) for this process; `None` when another holds it.
fn try_lock(path: &Path) -> Result<Option<File>> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    match f.try_lock() {
        Ok(()) => {
            f.set_len(0).ok();
            let _ = write!(f, "{}", std::process::id());
            Ok(Some(f))
        }
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Whether process `pid` exists (signal 0 checks without sending).
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn accept(listener: UnixListener, shared: Arc<Shared>, cfg: Config) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        if shared.connections.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            warning!("more than {MAX_CONNECTIONS} connections at once; closing a new one");
            continue;
        }
        shared.connections.fetch_add(1, Ordering::Relaxed);
        shared.lock().last_activity = Instant::now();
        let (shared, cfg) = (Arc::clone(&shared), cfg.clone());
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .stack_size(64 * 1024)
            .spawn({
                let shared = Arc::clone(&shared);
                move || {
                    read_lines(conn, &shared, &cfg);
                    shared.connections.fetch_sub(1, Ordering::Relaxed);
                }
            });
        if spawned.is_err() {
            shared.connections.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn read_lines(conn: UnixStream, shared: &Shared, cfg: &Config) {
    let mut r = BufReader::with_capacity(16 * 1024, conn);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut r)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.len() > MAX_LINE && line.last() != Some(&b'\n') {
            // Too long: skip to the end of the line.
            invalid(shared, "a line longer than 1 MiB");
            loop {
                line.clear();
                match (&mut r).take(MAX_LINE as u64).read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) if line.last() == Some(&b'\n') => break,
                    Ok(_) => {}
                }
            }
            continue;
        }
        take_line(&line, shared, cfg);
    }
}

fn invalid(shared: &Shared, what: &str) {
    let n = {
        let mut st = shared.lock();
        st.status.invalid_lines += 1;
        st.dirty = true;
        st.status.invalid_lines
    };
    // The first few, then one in a thousand: a broken client cannot fill the log.
    if n <= 10 || n.is_multiple_of(1000) {
        warning!("refused {what} (not an event; {n} so far)");
    }
}

/// One line from a client: check it is an event, stamp it, queue it.
fn take_line(line: &[u8], shared: &Shared, cfg: &Config) {
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() {
        return;
    }
    let mut value: Value = match serde_json::from_slice(trimmed) {
        Ok(v) => v,
        Err(_) => return invalid(shared, "a line that is not JSON"),
    };
    let Some(map) = value.as_object_mut() else {
        return invalid(shared, "a JSON line that is not an object");
    };
    let level = map
        .get("level")
        .and_then(Value::as_str)
        .and_then(Level::parse);
    // An id and the time of arrival, when the client gave none: a retried
    // batch then carries the same ids (dedup downstream), and an event that
    // waited in the spool keeps the time it happened.
    let mut stamped = false;
    if map.get("event_id").is_none_or(Value::is_null) {
        map.insert(
            "event_id".into(),
            Value::String(uuid::Uuid::now_v7().hyphenated().to_string()),
        );
        stamped = true;
    }
    if map.get("timestamp").is_none_or(Value::is_null) {
        map.insert("timestamp".into(), Value::from(crate::time::unix_ms()));
        stamped = true;
    }
    let bytes = if stamped {
        serde_json::to_vec(&value).unwrap_or_default()
    } else {
        trimmed.to_vec()
    };
    let urgent = matches!((level, cfg.urgent_level), (Some(l), Some(u)) if l >= u);
    let mut st = shared.lock();
    st.last_activity = Instant::now();
    st.status.received += 1;
    st.dirty = true;
    if st.queue.len() >= cfg.max_queue {
        st.queue.pop_front();
        st.status.dropped_queue_full += 1;
    }
    if st.queue.is_empty() {
        st.oldest_at = Some(Instant::now());
    }
    st.queue.push_back(bytes);
    st.urgent |= urgent;
    if st.urgent || st.queue.len() >= cfg.batch_size || st.queue.len() == 1 {
        shared.wake.notify_all();
    }
}

struct Sender {
    cfg: Config,
    client: Client,
    spool: Spool,
    backoff: Backoff,
    retry_at: Option<Instant>,
    out: std::io::Stdout,
}

impl Sender {
    fn new(cfg: Config, spool: Spool) -> Sender {
        Sender {
            client: Client::new(&cfg.endpoint, cfg.timeout, cfg.token.clone()),
            backoff: Backoff::new(cfg.max_backoff),
            retry_at: None,
            spool,
            out: std::io::stdout(),
            cfg,
        }
    }

    fn in_backoff(&self) -> bool {
        self.retry_at.is_some_and(|t| Instant::now() < t)
    }

    /// Returns the spool, for whatever readers queue after the final flush.
    fn run(mut self, shared: &Shared) -> Spool {
        loop {
            let (batch, closing) = self.next_batch(shared);
            if let Some(b) = batch {
                self.handle(shared, b);
            }
            if closing {
                // Final flush: what is queued, then one pass over the spool.
                loop {
                    let b = take(&mut shared.lock(), self.cfg.batch_size);
                    let Some(b) = b else { break };
                    self.handle(shared, b);
                }
                self.retry_at = None;
                self.replay(shared, Some(Instant::now() + self.cfg.timeout * 2));
                return self.spool;
            }
            self.replay(shared, None);
        }
    }

    /// Wait until a batch is due or the spool may be retried.
    fn next_batch(&mut self, shared: &Shared) -> (Option<Vec<u8>>, bool) {
        let mut st = shared.lock();
        loop {
            if st.closing {
                return (None, true);
            }
            let now = Instant::now();
            let due = st.urgent
                || st.queue.len() >= self.cfg.batch_size
                || st
                    .oldest_at
                    .is_some_and(|t| now.duration_since(t) >= self.cfg.flush_interval);
            if due {
                return (take(&mut st, self.cfg.batch_size), false);
            }
            if !self.spool.is_empty() && !self.in_backoff() && !self.cfg.dry_run {
                return (None, false);
            }
            let mut wait = Duration::from_secs(3600);
            if let Some(t) = st.oldest_at {
                wait = wait.min((t + self.cfg.flush_interval).saturating_duration_since(now));
            }
            if let (false, Some(r)) = (self.spool.is_empty(), self.retry_at) {
                wait = wait.min(r.saturating_duration_since(now));
            }
            st = shared
                .wake
                .wait_timeout(st, wait.max(Duration::from_millis(1)))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// A new batch: send it, or spool it behind what waits.
    fn handle(&mut self, shared: &Shared, body: Vec<u8>) {
        let events = body.iter().filter(|b| **b == b'\n').count() as u64;
        if self.cfg.dry_run {
            let mut out = self.out.lock();
            let _ = writeln!(
                out,
                "dry run: would POST {} events to {}",
                events,
                self.client.url()
            );
            let _ = out.write_all(&body);
            let _ = out.flush();
            let mut st = shared.lock();
            st.status.record_sent(events, None);
            st.dirty = true;
            return;
        }
        if !self.spool.is_empty() || self.in_backoff() {
            self.spool_batch(shared, &body);
            return;
        }
        match self.client.send(&body) {
            Outcome::Retry { after, why } => {
                self.failed(shared, after, &why);
                self.spool_batch(shared, &body);
            }
            outcome => self.done(shared, events, outcome),
        }
    }

    /// Send spooled batches, oldest first, until one fails (or `deadline`).
    fn replay(&mut self, shared: &Shared, deadline: Option<Instant>) {
        while !self.cfg.dry_run && !self.in_backoff() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return;
            }
            if deadline.is_none() && shared.lock().closing {
                return;
            }
            let Some((entry, body)) = self.spool.oldest() else {
                return;
            };
            let body = match body {
                Ok(b) => b,
                Err(e) => {
                    error!(
                        "spooled batch {} cannot be read ({e}); {} events lost",
                        entry.seq, entry.events
                    );
                    let _ = self.spool.remove_oldest();
                    self.update_spool(shared);
                    continue;
                }
            };
            match self.client.send(&body) {
                Outcome::Retry { after, why } => {
                    self.failed(shared, after, &why);
                    return;
                }
                outcome => {
                    if let Err(e) = self.spool.remove_oldest() {
                        error!(
                            "could not remove a sent batch from the spool ({e}); it may be sent twice"
                        );
                    }
                    self.done(shared, entry.events, outcome);
                    self.update_spool(shared);
                }
            }
        }
    }

    fn done(&mut self, shared: &Shared, events: u64, outcome: Outcome) {
        self.backoff.reset();
        self.retry_at = None;
        let mut st = shared.lock();
        st.dirty = true;
        match outcome {
            Outcome::Sent(answer) => {
                if answer.invalid > 0 {
                    let first = answer
                        .errors
                        .first()
                        .map(|e| e.message.as_str())
                        .unwrap_or("");
                    warning!(
                        "gateway refused {} of {events} events as invalid; the first: {first}",
                        answer.invalid
                    );
                }
                st.status.record_sent(events, Some(&answer));
            }
            Outcome::Refused { why, .. } => {
                error!("{why}; dropping the batch of {events} events (not retried)");
                st.status.rejected_events += events;
                st.status
                    .record_error(format!("{why} (batch of {events} dropped)"));
            }
            Outcome::Retry { .. } => {}
        }
    }

    fn failed(&mut self, shared: &Shared, after: Option<Duration>, why: &str) {
        let wait = self.backoff.next(after);
        self.retry_at = Some(Instant::now() + wait);
        warning!("{why}; next try in {:.1}s", wait.as_secs_f64());
        let mut st = shared.lock();
        st.status.record_error(why.to_string());
        st.status.next_retry_ms = Some(crate::time::unix_ms() + wait.as_millis() as u64);
        st.dirty = true;
    }

    fn spool_batch(&mut self, shared: &Shared, body: &[u8]) {
        match self.spool.push(body) {
            Ok(d) => {
                if d.batches > 0 {
                    error!(
                        "spool full ({} bytes): dropped the {} oldest batches ({} events)",
                        self.cfg.spool_max_bytes, d.batches, d.events
                    );
                    shared.lock().status.dropped_spool_full += d.events;
                }
            }
            Err(e) => {
                let events = body.iter().filter(|b| **b == b'\n').count();
                error!(
                    "could not write to the spool {} ({e}); {events} events lost",
                    self.cfg.spool_dir.display()
                );
                let mut st = shared.lock();
                st.status.dropped_spool_full += events as u64;
                st.status.record_error(format!("spool write failed: {e}"));
            }
        }
        self.update_spool(shared);
    }

    fn update_spool(&self, shared: &Shared) {
        let mut st = shared.lock();
        st.status.set_spool(&self.spool);
        st.dirty = true;
    }
}

/// Up to `n` queued events as one NDJSON body.
fn take(st: &mut State, n: usize) -> Option<Vec<u8>> {
    if st.queue.is_empty() {
        st.urgent = false;
        st.oldest_at = None;
        return None;
    }
    let mut body = Vec::new();
    for line in st.queue.drain(..n.min(st.queue.len())) {
        body.extend_from_slice(&line);
        body.push(b'\n');
    }
    if st.queue.is_empty() {
        st.urgent = false;
        st.oldest_at = None;
    }
    st.status.queued = st.queue.len() as u64;
    st.dirty = true;
    Some(body)
}
