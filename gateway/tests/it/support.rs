//! Starting a gateway and looking at what it wrote.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Folder holding the built fixture components.
pub fn fixtures_dir() -> PathBuf {
    let dir = std::env::var_os("WRAITH_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
            target.join("fixtures")
        });
    assert!(
        dir.join("upper.wasm").is_file(),
        "fixture plugins are missing from {}: build them with `cargo xtask fixtures` (`cargo xtask test` does it for you)",
        dir.display()
    );
    dir
}

/// The gateway binary, for running it as a command.
pub fn gateway_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gateway"))
}

/// `gateway check --plugins DIR [--sample FILE]`, which must succeed; its stdout.
pub fn check_ok(plugins: &Path, sample: Option<&Path>) -> String {
    let mut cmd = gateway_command();
    cmd.arg("check").arg("--plugins").arg(plugins);
    if let Some(sample) = sample {
        cmd.arg("--sample").arg(sample);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "gateway check failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Path of one fixture component.
pub fn fixture(name: &str) -> PathBuf {
    let p = fixtures_dir().join(format!("{name}.wasm"));
    assert!(p.is_file(), "no fixture {}", p.display());
    p
}

/// Copy fixtures into a plugins folder under their own names or new ones.
pub fn install(dir: &Path, fixture_name: &str, as_name: &str) {
    let tmp = dir.join(format!(".{as_name}.wasm.tmp"));
    std::fs::copy(fixture(fixture_name), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join(format!("{as_name}.wasm"))).unwrap();
}

/// A shared compile cache for every gateway of the test run.
fn cache_dir() -> PathBuf {
    fixtures_dir().join("../fixture-cache")
}

pub struct Gateway {
    pub child: Child,
    pub url: String,
    pub root: tempfile::TempDir,
    pub http: reqwest::blocking::Client,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
}

#[derive(Default)]
pub struct Options {
    pub plugins: Vec<(&'static str, &'static str)>,
    pub manifest: Option<String>,
    pub extra_config: String,
    /// `plugins.reload_debounce`; 100 ms when not given.
    pub debounce: Option<&'static str>,
    /// `sinks.file.fsync` (off unless asked for: the tests' own speed).
    pub fsync: bool,
    /// More command-line arguments (`--nats URL`).
    pub args: Vec<String>,
    /// Environment variables for the process (`WRAITH_API_TOKENS`).
    pub env: Vec<(&'static str, String)>,
}

impl Gateway {
    /// Start a gateway with these fixtures (as `(fixture, installed name)`).
    pub fn start(plugins: &[(&'static str, &'static str)]) -> Gateway {
        Self::start_with(Options {
            plugins: plugins.to_vec(),
            ..Default::default()
        })
    }

    pub fn start_with(opts: Options) -> Gateway {
        let root = tempfile::tempdir().unwrap();
        let plugins = root.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        for (f, n) in &opts.plugins {
            install(&plugins, f, n);
        }
        if let Some(m) = &opts.manifest {
            std::fs::write(plugins.join("plugins.toml"), m).unwrap();
        }
        let config = root.path().join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                "[plugins]\ncache_dir = {:?}\ncall_timeout = \"300ms\"\nmemory_limit = \"32 MiB\"\nmemory_high_water = \"16 MiB\"\nreload_debounce = {:?}\n{}\n[sinks.file]\nfsync = {}\n",
                cache_dir().display().to_string(),
                opts.debounce.unwrap_or("100ms"),
                opts.extra_config,
                opts.fsync
            ),
        )
        .unwrap();
        Self::spawn(root, opts.args, opts.env)
    }

    fn spawn(
        root: tempfile::TempDir,
        args: Vec<String>,
        env: Vec<(&'static str, String)>,
    ) -> Gateway {
        let config = root.path().join("gateway.toml");
        let (child, url) = launch(root.path(), &config, &args, &env);
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Gateway {
            child,
            url,
            root,
            http,
            args,
            env,
        }
    }

    /// Kill the process with SIGKILL (no drain, no flush) and start a new
    /// one on the same plugins, data folder and config.
    pub fn kill_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let (child, url) = launch(
            self.root.path(),
            &self.root.path().join("gateway.toml"),
            &self.args,
            &self.env,
        );
        self.child = child;
        self.url = url;
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.root.path().join("plugins")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("gateway.log")).unwrap_or_default()
    }

    /// POST a JSON body to a path; returns status and parsed JSON answer.
    pub fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    pub fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        encoding: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.post(format!("{}{path}", self.url)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(enc) = encoding {
            req = req.header("content-encoding", enc);
        }
        let r = req.send().unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, r.json().unwrap_or(Value::Null), headers)
    }

    pub fn get_json(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    pub fn get_text(&self, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .unwrap()
            .text()
            .unwrap()
    }

    /// Assert that `/metrics` has each of `lines` as a whole line
    /// (`name{labels} value`); returns the text for further checks.
    pub fn assert_metrics(&self, lines: &[&str]) -> String {
        let metrics = self.get_text("/metrics");
        for line in lines {
            assert!(
                metrics.lines().any(|l| l == *line),
                "no line {line:?} in\n{metrics}"
            );
        }
        metrics
    }

    /// Every line written for a destination (`events`, `dlq`, a route).
    pub fn lines(&self, destination: &str) -> Vec<Value> {
        read_lines(&self.data_dir().join(destination))
    }

    /// The `/v1/plugins` entry of one plugin.
    pub fn plugin(&self, name: &str) -> Option<Value> {
        let v = self.get_json("/v1/plugins");
        v["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
    }

    /// Wait until `f` holds, or fail with `what`.
    /// Wait until the gateway's log contains `needle`. The log reaches the
    /// file through a copier thread, so a line just written may lag a little.
    pub fn wait_for_log(&self, needle: &str) {
        self.wait_for(
            &format!("{needle:?} in the log"),
            Duration::from_secs(10),
            |g| g.log().contains(needle),
        );
    }

    pub fn wait_for(&self, what: &str, timeout: Duration, mut f: impl FnMut(&Gateway) -> bool) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if f(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out after {timeout:?} waiting for {what}; gateway log:\n{}",
            self.log()
        );
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every JSON line in every file of a folder, files in name order.
pub fn read_lines(dir: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| {
                    serde_json::from_str(l)
                        .unwrap_or_else(|e| panic!("bad line in {}: {e}: {l}", f.display()))
                })
                .collect::<Vec<Value>>()
        })
        .collect()
}

/// A valid event with a marker field.
pub fn event(n: usize) -> Value {
    serde_json::json!({"event_type": "tool_invoked", "tool": "wraith-test", "command": format!("cmd-{n}"), "n": n})
}

/// Start the gateway binary on `root`'s `plugins` and `data` folders with
/// `config`; its stderr is appended to `root/gateway.log`. Returns the child
/// and the base URL it announced.
fn launch(
    root: &Path,
    config: &Path,
    args: &[String],
    env: &[(&'static str, String)],
) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .args(["--plugins", root.join("plugins").to_str().unwrap()])
        .args(["--data-dir", root.join("data").to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0"])
        .args(["--config", config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the gateway binary");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let log_path = root.join("gateway.log");
    std::thread::spawn(move || {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .unwrap();
        std::io::copy(&mut BufReader::new(stderr), &mut log).ok();
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("wraith gateway listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(url) => (child, url),
        Err(_) => {
            let _ = child.kill();
            let log = std::fs::read_to_string(root.join("gateway.log")).unwrap_or_default();
            panic!("gateway did not start; its log:\n{log}");
        }
    }
}
