//! The background thread: it takes encoded lines from a bounded channel and
//! hands them to the daemon's socket (starting the daemon when needed), to
//! the gateway over HTTP, or to a JSON Lines file. Everything that can block
//! or fail happens here, never on the tool's thread.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

/// Lines kept while the destination is away; past this the oldest go.
const MAX_PENDING: usize = 10_000;

pub(crate) enum Msg {
    Line(Vec<u8>),
    /// Deliver what is pending until the deadline, then answer.
    Flush(Instant, SyncSender<()>),
}

/// Where lines go.
pub(crate) enum Target {
    Daemon(DaemonTarget),
    #[cfg(feature = "http")]
    Http(HttpTarget),
    File(PathBuf),
}

pub(crate) struct DaemonTarget {
    pub(crate) socket: PathBuf,
    pub(crate) daemon: Option<PathBuf>,
    pub(crate) endpoint: String,
    pub(crate) spool_dir: Option<PathBuf>,
}

#[cfg(feature = "http")]
pub(crate) struct HttpTarget {
    pub(crate) url: String,
    pub(crate) timeout: Duration,
}

trait Sink {
    /// Try to deliver everything in `pending` (front first); what could not
    /// be delivered stays there.
    fn deliver(&mut self, pending: &mut VecDeque<Vec<u8>>) -> bool;

    /// How long a line may wait for others to share its delivery (HTTP: one
    /// request per batch rather than per event).
    fn linger(&self) -> Duration {
        Duration::ZERO
    }
}

/// Lines that make a delivery worth doing at once, lingering or not.
const BATCH: usize = 25;

pub(crate) fn run(rx: Receiver<Msg>, target: Target) {
    let mut sink: Box<dyn Sink> = match target {
        Target::Daemon(d) => Box::new(Daemon {
            t: d,
            stream: None,
            spawned: None,
            #[cfg(feature = "http")]
            fallback: None,
        }),
        #[cfg(feature = "http")]
        Target::Http(h) => Box::new(Http::new(h)),
        Target::File(path) => Box::new(File { path, file: None }),
    };
    let mut pending: VecDeque<Vec<u8>> = VecDeque::new();
    let mut backoff = Duration::from_millis(50);
    let mut retry_at: Option<Instant> = None;
    let mut oldest: Option<Instant> = None;
    let linger = sink.linger();
    loop {
        let msg = match retry_at {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        let mut flush = None;
        match msg {
            Ok(Msg::Line(l)) => push(&mut pending, l),
            Ok(Msg::Flush(deadline, ack)) => flush = Some((deadline, ack)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // Take whatever else is already queued, so one write carries many lines.
        while let Ok(m) = rx.try_recv() {
            match m {
                Msg::Line(l) => push(&mut pending, l),
                Msg::Flush(d, a) => flush = Some((d, a)),
            }
        }
        if let Some((deadline, ack)) = flush {
            while !sink.deliver(&mut pending) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20).min(deadline - Instant::now()));
            }
            let _ = ack.try_send(());
            retry_at = None;
            backoff = Duration::from_millis(50);
            if pending.is_empty() {
                oldest = None;
                continue;
            }
        }
        if pending.is_empty() {
            oldest = None;
            continue;
        }
        let first = *oldest.get_or_insert_with(Instant::now);
        if !linger.is_zero() && pending.len() < BATCH && first.elapsed() < linger {
            retry_at = Some(retry_at.map_or(first + linger, |r| r.max(first + linger)));
            continue;
        }
        if retry_at.is_some_and(|at| Instant::now() < at) {
            continue;
        }
        if sink.deliver(&mut pending) {
            oldest = None;
            retry_at = None;
            backoff = Duration::from_millis(50);
        } else {
            retry_at = Some(Instant::now() + backoff);
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

fn push(pending: &mut VecDeque<Vec<u8>>, line: Vec<u8>) {
    if pending.len() >= MAX_PENDING {
        pending.pop_front();
    }
    pending.push_back(line);
}

struct Daemon {
    t: DaemonTarget,
    stream: Option<UnixStream>,
    spawned: Option<Instant>,
    /// Direct HTTP, once it is clear that no daemon can be started here
    /// (no `wraith-daemon` binary): a machine without a daemon still reports.
    #[cfg(feature = "http")]
    fallback: Option<Http>,
}

impl Daemon {
    fn connect(&mut self) -> Option<&mut UnixStream> {
        if self.stream.is_none() {
            let s = match UnixStream::connect(&self.t.socket) {
                Ok(s) => s,
                Err(_) => {
                    self.spawn();
                    UnixStream::connect(&self.t.socket).ok()?
                }
            };
            let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
            self.stream = Some(s);
        }
        self.stream.as_mut()
    }

    /// Start `wraith-daemon` with this process as its parent; it detaches
    /// itself and returns once its socket answers. At most once a second.
    fn spawn(&mut self) {
        if self
            .spawned
            .is_some_and(|at| at.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.spawned = Some(Instant::now());
        let program = self.t.daemon.clone().unwrap_or_else(default_daemon);
        let mut cmd = Command::new(program);
        cmd.arg("--socket")
            .arg(&self.t.socket)
            .arg("--endpoint")
            .arg(&self.t.endpoint)
            .arg("--parent-pid")
            .arg(std::process::id().to_string());
        if let Some(d) = &self.t.spool_dir {
            cmd.arg("--spool-dir").arg(d);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: the tool's Ctrl-C does not reach it, so
            // it can still flush after the tool is gone.
            .process_group(0);
        match cmd.spawn() {
            Ok(mut child) => {
                // The launcher exits within a couple of seconds (its detached
                // child keeps running); wait so it leaves no zombie.
                let _ = child.wait();
            }
            #[cfg(feature = "http")]
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.fallback = Some(Http::new(HttpTarget {
                    url: events_url(&self.t.endpoint),
                    timeout: Duration::from_secs(2),
                }));
            }
            Err(_) => {}
        }
    }
}

/// `wraith-daemon` beside the tool's executable, else from `PATH`.
fn default_daemon() -> PathBuf {
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let beside = dir.join("wraith-daemon");
        if beside.is_file() {
            return beside;
        }
    }
    PathBuf::from("wraith-daemon")
}

impl Sink for Daemon {
    fn deliver(&mut self, pending: &mut VecDeque<Vec<u8>>) -> bool {
        if pending.is_empty() {
            return true;
        }
        #[cfg(feature = "http")]
        if let Some(http) = self.fallback.as_mut() {
            return http.deliver(pending);
        }
        let Some(stream) = self.connect() else {
            return false;
        };
        // One write for everything pending. On a failure, the lines written
        // whole are done; a line cut short is sent again on a new connection
        // (the daemon counts the cut one as invalid and keeps only whole lines).
        let mut buf = Vec::with_capacity(pending.iter().map(Vec::len).sum());
        for l in pending.iter() {
            buf.extend_from_slice(l);
        }
        let mut written = 0;
        let ok = loop {
            if written == buf.len() {
                break true;
            }
            match stream.write(&buf[written..]) {
                Ok(0) => break false,
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break false,
            }
        };
        if ok {
            pending.clear();
            return true;
        }
        self.stream = None;
        while pending.front().is_some_and(|l| l.len() <= written) {
            written -= pending.pop_front().map_or(0, |l| l.len());
        }
        false
    }
}

struct File {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl Sink for File {
    fn deliver(&mut self, pending: &mut VecDeque<Vec<u8>>) -> bool {
        if pending.is_empty() {
            return true;
        }
        if self.file.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                let _ = crate::settings::create_private_dir(dir);
            }
            use std::os::unix::fs::OpenOptionsExt;
            self.file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&self.path)
                .ok();
        }
        let Some(f) = self.file.as_mut() else {
            return false;
        };
        let mut buf = Vec::new();
        for l in pending.iter() {
            buf.extend_from_slice(l);
        }
        if f.write_all(&buf).is_ok() {
            pending.clear();
            true
        } else {
            self.file = None;
            false
        }
    }
}

#[cfg(feature = "http")]
struct Http {
    url: String,
    agent: ureq::Agent,
}

#[cfg(feature = "http")]
impl Http {
    fn new(t: HttpTarget) -> Http {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(t.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("wraith-sdk/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Http { url: t.url, agent }
    }
}

#[cfg(feature = "http")]
impl Sink for Http {
    fn linger(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn deliver(&mut self, pending: &mut VecDeque<Vec<u8>>) -> bool {
        while !pending.is_empty() {
            let n = pending.len().min(100);
            let mut body = Vec::new();
            for l in pending.iter().take(n) {
                body.extend_from_slice(l);
            }
            let status = self
                .agent
                .post(&self.url)
                .header("content-type", "application/x-ndjson")
                .send(&body[..])
                .map(|r| r.status().as_u16());
            match status {
                // Stored, or refused as invalid: either way not worth sending again.
                Ok(s)
                    if (200..300).contains(&s)
                        || ((400..500).contains(&s) && s != 408 && s != 429) =>
                {
                    pending.drain(..n);
                }
                _ => return false,
            }
        }
        true
    }
}

#[cfg(feature = "http")]
/// `<base>/v1/events`, unless the URL already names a path.
pub(crate) fn events_url(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    if e.ends_with("/v1/events") {
        e.to_string()
    } else {
        format!("{e}/v1/events")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_target_appends_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/events.jsonl");
        let (tx, rx) = std::sync::mpsc::sync_channel(16);
        let t = std::thread::spawn({
            let path = path.clone();
            move || run(rx, Target::File(path))
        });
        tx.send(Msg::Line(b"{\"a\":1}\n".to_vec())).unwrap();
        tx.send(Msg::Line(b"{\"a\":2}\n".to_vec())).unwrap();
        let (ack_tx, ack_rx) = std::sync::mpsc::sync_channel(1);
        tx.send(Msg::Flush(Instant::now() + Duration::from_secs(5), ack_tx))
            .unwrap();
        ack_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n"
        );
        drop(tx);
        t.join().unwrap();
    }

    #[test]
    fn unreachable_daemon_keeps_lines_and_flush_returns_by_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel(16);
        let target = Target::Daemon(DaemonTarget {
            socket: dir.path().join("none.sock"),
            daemon: Some(dir.path().join("no-such-daemon")),
            endpoint: "http://127.0.0.1:9".into(),
            spool_dir: None,
        });
        let t = std::thread::spawn(move || run(rx, target));
        tx.send(Msg::Line(b"{}\n".to_vec())).unwrap();
        let (ack_tx, ack_rx) = std::sync::mpsc::sync_channel(1);
        tx.send(Msg::Flush(
            Instant::now() + Duration::from_millis(200),
            ack_tx,
        ))
        .unwrap();
        ack_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        drop(tx);
        t.join().unwrap();
    }

    #[cfg(feature = "http")]
    #[test]
    fn events_urls() {
        assert_eq!(events_url("http://h:1"), "http://h:1/v1/events");
        assert_eq!(events_url("http://h:1/"), "http://h:1/v1/events");
        assert_eq!(events_url("https://h/v1/events"), "https://h/v1/events");
        assert_eq!(events_url("https://h/base"), "https://h/base/v1/events");
    }
}
