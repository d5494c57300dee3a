//! Driving the real `gateway` binary under `wrk` load: start it, write the
//! Lua script that posts a set of bodies in turn, run `wrk`, read memory.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `WRAITH_WRK`, else `wrk` on the PATH.
pub fn wrk_binary() -> PathBuf {
    std::env::var_os("WRAITH_WRK")
        .map(PathBuf::from)
        .unwrap_or_else(|| "wrk".into())
}

/// Start a gateway and wait until it listens; returns its base URL.
pub fn start(
    gateway: &Path,
    root: &Path,
    plugins: &Path,
    config: &Path,
) -> (std::process::Child, String) {
    let mut child = Command::new(gateway)
        .args(["--plugins", plugins.to_str().unwrap()])
        .args(["--data-dir", root.join("data").to_str().unwrap()])
        .args(["--config", config.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("wraith gateway listening on ")
        .unwrap_or_else(|| panic!("gateway did not start: {line:?}"))
        .to_string();
    (child, base)
}

/// A `/proc/PID/status` memory line in MiB.
pub fn rss_mib(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

/// CPU seconds a process has used so far (user and system, from
/// `/proc/PID/stat`, in the kernel's clock ticks of 10 ms); NaN when it
/// cannot be read.
#[allow(dead_code)]
pub fn cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The command name, in parentheses, may hold spaces: count the
            // fields after its closing parenthesis (utime and stime are the
            // 14th and 15th of the line, the 12th and 13th after it).
            let rest = &s[s.rfind(')')? + 1..];
            let mut fields = rest.split_whitespace().skip(11);
            let utime: f64 = fields.next()?.parse().ok()?;
            let stime: f64 = fields.next()?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// Write `bodies` into `dir` and a Lua script that POSTs them in turn with
/// `content_type`, printing `WRAITH requests micros failures` at the end.
pub fn script(dir: &Path, name: &str, bodies: &[Vec<u8>], content_type: &str) -> PathBuf {
    let mut lua = String::from("local bodies = {}\n");
    for (k, b) in bodies.iter().enumerate() {
        let path = dir.join(format!("{name}-{k}.body"));
        std::fs::write(&path, b).unwrap();
        lua.push_str(&format!(
            "bodies[{}] = io.open({:?}, \"rb\"):read(\"*a\")\n",
            k + 1,
            path.to_str().unwrap()
        ));
    }
    lua.push_str(&format!(
        r#"local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "{content_type}"
request = function()
  n = n % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[n])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRAITH %d %d %d\n", summary.requests, summary.duration,
    e.status + e.connect + e.read + e.write + e.timeout))
end
"#
    ));
    let path = dir.join(format!("{name}.lua"));
    std::fs::write(&path, lua).unwrap();
    path
}

/// Run `wrk` against `url`; returns (requests, seconds). Fails when a
/// request was not answered 2xx.
pub fn run(
    wrk: &Path,
    script: &Path,
    url: &str,
    clients: u64,
    secs: u64,
    label: &str,
) -> (f64, f64) {
    let out = Command::new(wrk)
        .args(["-t2", &format!("-c{clients}"), &format!("-d{secs}s")])
        .args(["-s", script.to_str().unwrap()])
        .arg(url)
        .output()
        .expect("run wrk");
    assert!(
        out.status.success(),
        "wrk failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text
        .lines()
        .find_map(|l| l.strip_prefix("WRAITH "))
        .unwrap_or_else(|| panic!("no summary from wrk: {text}"));
    let f: Vec<f64> = summary.split(' ').map(|x| x.parse().unwrap()).collect();
    let (requests, micros, failed) = (f[0], f[1], f[2]);
    assert!(
        failed == 0.0,
        "{label}: {failed} of {requests} requests were not answered 2xx"
    );
    (requests, micros / 1e6)
}
