//! Real processes: a gateway on a loopback port with the first-party
//! plugins and the file sink, the daemon, the example tool, Python.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `target/debug` (or whichever profile), from this test's own path:
/// `target/debug/deps/e2e-…` → `target/debug`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let deps = exe.parent().expect("deps folder");
    deps.parent().expect("profile folder").to_path_buf()
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn from_env_or(var: &str, default: PathBuf, how: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or(default);
    assert!(
        path.is_file(),
        "{} is missing: {how} (or set {var} to its path)",
        path.display()
    );
    path
}

/// The gateway binary: `WRAITH_GATEWAY_BIN`, else `<target>/debug/gateway`.
pub fn gateway_bin() -> PathBuf {
    from_env_or(
        "WRAITH_GATEWAY_BIN",
        profile_dir().join("gateway"),
        "build it with `cargo build -p wraith-gateway` (`cargo test --workspace` does)",
    )
}

/// The first-party plugins folder: `WRAITH_PLUGINS_DIR`, else `<repo>/plugins`.
pub fn plugins_dir() -> PathBuf {
    let dir = std::env::var_os("WRAITH_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("plugins"));
    for p in ["schema-validate", "pii-scrub", "enrich", "route"] {
        assert!(
            dir.join(format!("{p}.wasm")).is_file(),
            "{}/{p}.wasm is missing: build the first-party plugins with `cargo xtask plugins` (or set WRAITH_PLUGINS_DIR)",
            dir.display()
        );
    }
    dir
}

/// The daemon binary: `WRAITH_DAEMON_BIN`, else the one cargo built for this test.
pub fn daemon_bin() -> PathBuf {
    from_env_or(
        "WRAITH_DAEMON_BIN",
        PathBuf::from(env!("CARGO_BIN_EXE_wraith-daemon")),
        "build it with `cargo build -p wraith-daemon`",
    )
}

/// The example tool: `WRAITH_SDK_TOOL_BIN`, else `<target>/debug/sdk-tool`.
pub fn tool_bin() -> PathBuf {
    from_env_or(
        "WRAITH_SDK_TOOL_BIN",
        profile_dir().join("sdk-tool"),
        "build it with `cargo build -p sdk-tool` (`cargo test --workspace` does)",
    )
}

/// Poll `f` every 50 ms until it holds; fail with `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Gateway {
    child: Option<Child>,
    pub root: tempfile::TempDir,
    pub port: u16,
}

impl Gateway {
    /// A gateway with the first-party chain on a fresh port.
    pub fn start() -> Gateway {
        let root = tempfile::tempdir().unwrap();
        let cache = profile_dir().join("e2e-plugin-cache");
        std::fs::write(
            root.path().join("gateway.toml"),
            format!("[plugins]\ncache_dir = {:?}\n", cache.display().to_string()),
        )
        .unwrap();
        let mut g = Gateway {
            child: None,
            root,
            port: free_port(),
        };
        g.launch();
        g
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.path().join("gateway.log"))
            .unwrap();
        let mut child = Command::new(gateway_bin())
            .arg("--plugins")
            .arg(plugins_dir())
            .arg("--data-dir")
            .arg(self.root.path().join("data"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--config")
            .arg(self.root.path().join("gateway.toml"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the gateway");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("wraith gateway listening on ") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(120)).is_err() {
            let _ = child.kill();
            panic!("the gateway did not start; its log:\n{}", self.log());
        }
        self.child = Some(child);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("gateway.log")).unwrap_or_default()
    }

    /// SIGTERM (drain in-flight requests) and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let start = Instant::now();
            while c.try_wait().unwrap().is_none() {
                if start.elapsed() > Duration::from_secs(30) {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Start again on the same address and data folder.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Every stored event (default and routed destinations, not the dlq).
    pub fn events(&self) -> Vec<Value> {
        self.lines(|name| name != "dlq")
    }

    pub fn dead_lettered(&self) -> Vec<Value> {
        self.lines(|name| name == "dlq")
    }

    fn lines(&self, want: impl Fn(&str) -> bool) -> Vec<Value> {
        let data = self.root.path().join("data");
        let mut out = Vec::new();
        let Ok(dirs) = std::fs::read_dir(&data) else {
            return out;
        };
        let mut dirs: Vec<PathBuf> = dirs.map(|d| d.unwrap().path()).collect();
        dirs.sort();
        for d in dirs {
            let name = d.file_name().unwrap().to_string_lossy().to_string();
            if !d.is_dir() || !want(&name) {
                continue;
            }
            let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
                .collect();
            files.sort();
            for f in files {
                for l in std::fs::read_to_string(&f).unwrap().lines() {
                    out.push(
                        serde_json::from_str(l)
                            .unwrap_or_else(|e| panic!("{}: {e}: {l}", f.display())),
                    );
                }
            }
        }
        out
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A user's home for one test: the tool's environment points every Wraith
/// path in here, and nothing from the test's own environment leaks in.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub endpoint: String,
    pub extra: Vec<(String, String)>,
}

impl Home {
    pub fn new(endpoint: &str) -> Home {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("run")).unwrap();
        Home {
            dir,
            endpoint: endpoint.to_string(),
            extra: Vec::new(),
        }
    }

    pub fn set(&mut self, k: &str, v: &str) -> &mut Self {
        self.extra.push((k.into(), v.into()));
        self
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run/wraith/wraith.sock")
    }

    pub fn wraith_dir(&self) -> PathBuf {
        self.dir.path().join(".wraith")
    }

    pub fn spool(&self) -> PathBuf {
        self.wraith_dir().join("spool")
    }

    /// A command with this home's environment: fast flushes and retries so
    /// the tests do not wait on the production defaults.
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        for (k, _) in std::env::vars() {
            if k.starts_with("WRAITH_") || k == "DO_NOT_TRACK" || k == "XDG_RUNTIME_DIR" {
                c.env_remove(k);
            }
        }
        c.env("HOME", self.dir.path())
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .env("WRAITH_ENDPOINT", &self.endpoint)
            .env("WRAITH_DAEMON", daemon_bin())
            .env("WRAITH_FLUSH_INTERVAL", "0.3")
            .env("WRAITH_MAX_BACKOFF", "0.5")
            .env("WRAITH_TIMEOUT", "2")
            .env("WRAITH_IDLE_TIMEOUT", "120");
        for (k, v) in &self.extra {
            c.env(k, v);
        }
        c
    }

    /// The daemon's status file, when there is one.
    pub fn status(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.spool().join("status.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn status_u64(&self, pointer: &str) -> u64 {
        self.status()
            .and_then(|s| s.pointer(pointer).and_then(Value::as_u64))
            .unwrap_or(0)
    }

    /// The running daemon's pid (from its status file), if it is alive.
    pub fn daemon_pid(&self) -> Option<u32> {
        let s = self.status()?;
        if !s["stopped_ms"].is_null() {
            return None;
        }
        let pid = s["pid"].as_u64()? as u32;
        alive(pid).then_some(pid)
    }

    /// Every file under the home, relative paths, sorted.
    pub fn files(&self) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                out.push(p.strip_prefix(root).unwrap().display().to_string());
                if p.is_dir() {
                    walk(root, &p, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out.sort();
        out
    }
}

pub fn alive(pid: u32) -> bool {
    // A zombie still answers kill(0); read its state instead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// A tool process fed line by line on stdin.
pub struct Tool {
    pub child: Child,
}

impl Tool {
    pub fn spawn(mut cmd: Command) -> Tool {
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the tool");
        Tool { child }
    }

    pub fn send(&mut self, lines: impl IntoIterator<Item = String>) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        for l in lines {
            writeln!(stdin, "{l}").unwrap();
        }
        stdin.flush().unwrap();
    }

    /// Close stdin and wait for a clean exit.
    pub fn finish(mut self) {
        drop(self.child.stdin.take());
        let out = wait_timeout(&mut self.child, Duration::from_secs(30));
        assert!(out.success(), "the tool failed: {out:?}");
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("process {} did not exit within {timeout:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The events of one tool, by `event_type`, asserting each `event_id` once.
pub fn by_id(events: &[Value], tool: &str) -> Vec<Value> {
    let mine: Vec<Value> = events
        .iter()
        .filter(|e| e["tool"] == tool)
        .cloned()
        .collect();
    let mut ids = std::collections::HashSet::new();
    for e in &mine {
        let id = e["event_id"].as_str().expect("event_id").to_string();
        assert!(ids.insert(id.clone()), "event {id} arrived twice: {e}");
    }
    mine
}

/// The `line_no`s of `line_processed` events, sorted, each once.
pub fn line_numbers(events: &[Value]) -> Vec<u64> {
    let mut n: Vec<u64> = events
        .iter()
        .filter(|e| e["event_type"] == "line_processed")
        .map(|e| e["line_no"].as_u64().unwrap())
        .collect();
    n.sort();
    n
}
