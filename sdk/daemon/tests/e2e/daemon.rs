//! The daemon on its own: the socket protocol from any language, bad lines,
//! one instance per socket, stale sockets, `test`, `status`, `--dry-run`,
//! batches the gateway refuses.

use crate::support::*;
use serde_json::{Value, json};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// `wraith-daemon --foreground` on this home's socket and spool.
fn start(home: &Home, extra: &[&str]) -> Child {
    home.command(&daemon_bin())
        .arg("--socket")
        .arg(home.socket())
        .arg("--spool-dir")
        .arg(home.spool())
        .arg("--foreground")
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_ready(home: &Home) {
    wait_for("the socket", T, || {
        UnixStream::connect(home.socket()).is_ok()
    });
}

fn stop(mut d: Child) -> String {
    unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
    let status = wait_timeout(&mut d, T);
    assert!(status.success(), "{status:?}");
    let mut out = String::new();
    use std::io::Read;
    d.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    out
}

fn write(home: &Home, text: &str) {
    let mut s = UnixStream::connect(home.socket()).unwrap();
    s.write_all(text.as_bytes()).unwrap();
}

#[test]
fn bad_lines_are_counted_and_good_ones_stamped_and_sent() {
    let gw = Gateway::start();
    let home = Home::new(&gw.url());
    let d = start(&home, &[]);
    wait_ready(&home);
    write(
        &home,
        "not json\n[1,2]\n\"a string\"\n\n{\"event_type\":\"tool_invoked\",\"tool\":\"sh\",\"command\":\"a\"}\n{\"event_type\":",
    );
    // Last line without a newline, complete: still taken.
    write(
        &home,
        "{\"event_type\":\"tool_invoked\",\"tool\":\"sh\",\"command\":\"b\"}",
    );
    wait_for("two events at the gateway", T, || gw.events().len() == 2);
    wait_for("4 invalid lines counted", T, || {
        home.status_u64("/invalid_lines") == 4
    });
    for e in gw.events() {
        // The daemon stamped what the client left out.
        assert!(uuid_like(&e["event_id"]), "{e}");
        assert!(e["timestamp"].is_string(), "{e}");
    }
    assert!(d.id() > 0 && alive(d.id()), "still running");
    stop(d);
}

fn uuid_like(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 36 && s.matches('-').count() == 4)
}

/// README's one-liners, as written there.
#[test]
fn the_socket_protocol_from_a_shell_and_python() {
    let gw = Gateway::start();
    let home = Home::new(&gw.url());
    let d = start(&home, &[]);
    wait_ready(&home);
    let sock = home.socket();
    let py = r#"import json, os, socket; s = socket.socket(socket.AF_UNIX); s.connect(os.environ["WRAITH_SOCKET"]); s.sendall((json.dumps({"event_type": "tool_invoked", "tool": "py-oneliner", "command": "scan"}) + "\n").encode())"#;
    let out = Command::new("python3")
        .args(["-c", py])
        .env("WRAITH_SOCKET", &sock)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // The README's shell form needs `nc` with Unix-socket support
    // (netcat-openbsd); the Python form above runs everywhere.
    let nc = Command::new("sh")
        .args(["-c", "command -v nc"])
        .output()
        .unwrap();
    let mut expected = 1;
    if nc.status.success() {
        let out = Command::new("sh")
            .args([
                "-c",
                r#"json='{"event_type":"tool_invoked","tool":"sh-oneliner","command":"scan"}'; printf '%s\n' "$json" | nc -N -U "$WRAITH_SOCKET""#,
            ])
            .env("WRAITH_SOCKET", &sock)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        expected = 2;
    } else {
        eprintln!(
            "note: nc is not installed, so the shell one-liner was not run (the Python one was)"
        );
    }
    wait_for("the one-liners' events", T, || {
        gw.events().len() == expected
    });
    assert!(gw.events().iter().any(|e| e["tool"] == "py-oneliner"));
    if expected == 2 {
        assert!(gw.events().iter().any(|e| e["tool"] == "sh-oneliner"));
    }
    stop(d);
}

#[test]
fn one_instance_per_socket_and_a_stale_socket_is_taken_over() {
    let home = Home::new("http://127.0.0.1:9");
    // A socket file left behind by a crash.
    std::fs::create_dir_all(home.socket().parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(home.socket()).unwrap());
    assert!(UnixStream::connect(home.socket()).is_err());
    let first = start(&home, &[]);
    wait_ready(&home);
    let pid = home.daemon_pid();
    wait_for("the status file", T, || home.daemon_pid().is_some());
    assert!(pid.is_none() || pid == Some(first.id()));
    // A second start (detached, as the SDK does) finds the first and exits 0.
    let out = home
        .command(&daemon_bin())
        .arg("--socket")
        .arg(home.socket())
        .arg("--spool-dir")
        .arg(home.spool())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut second = start(&home, &[]);
    let status = wait_timeout(&mut second, T);
    assert!(status.success());
    assert_eq!(home.daemon_pid(), Some(first.id()));
    assert!(alive(first.id()));
    stop(first);
}

#[test]
fn test_command_says_what_is_wrong() {
    let gw = Gateway::start();
    let run = |url: &str| {
        let out = Command::new(daemon_bin())
            .args(["test", "--endpoint", url, "--timeout", "5"])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, text) = run(&gw.url());
    assert!(ok, "{text}");
    assert!(text.starts_with("ok:"), "{text}");
    // Nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ok, text) = run(&format!("http://127.0.0.1:{port}"));
    assert!(!ok);
    assert!(text.contains("refused"), "{text}");
    // TLS to a plain-HTTP gateway.
    let (ok, text) = run(&format!("https://127.0.0.1:{}", gw.port));
    assert!(!ok);
    assert!(text.contains("TLS"), "{text}");
    // A path with no events endpoint: the gateway's 404.
    let (ok, text) = run(&format!("{}/nothing/here", gw.url()));
    assert!(!ok);
    assert!(text.contains("404"), "{text}");
    // A host no resolver knows (`.invalid` never resolves, RFC 6761):
    // said to be DNS, whether the resolver answers or times out.
    let (ok, text) = run("http://wraith-test.invalid:8080");
    assert!(!ok, "{text}");
    assert!(text.contains("DNS"), "{text}");
    assert!(text.contains("wraith-test.invalid"), "{text}");
    // Not a URL.
    let (ok, text) = run("::not a url");
    assert!(!ok, "{text}");
}

#[test]
fn status_dry_run_and_refused_batches() {
    let gw = Gateway::start();
    let home = Home::new(&gw.url());
    // --dry-run: printed, not sent.
    let d = start(&home, &["--dry-run"]);
    wait_ready(&home);
    write(
        &home,
        "{\"event_type\":\"tool_invoked\",\"tool\":\"dry\",\"command\":\"x\"}\n",
    );
    wait_for("the dry run's batch", T, || {
        home.status_u64("/sent/events") == 1
    });
    let out = stop(d);
    assert!(out.contains("dry run: would POST 1 events"), "{out}");
    assert!(out.contains("\"tool\":\"dry\""), "{out}");
    assert!(gw.events().is_empty());

    // A batch the gateway refuses as invalid (400) is dropped, not retried.
    let d = start(&home, &[]);
    wait_ready(&home);
    write(&home, "{\"event_type\":\"\"}\n");
    wait_for("the refusal", T, || {
        home.status_u64("/rejected_events") == 1
    });
    write(
        &home,
        "{\"event_type\":\"tool_invoked\",\"tool\":\"sh\",\"command\":\"after\"}\n",
    );
    wait_for("the next event", T, || gw.events().len() == 1);
    let s = home.status().unwrap();
    assert_eq!(s["spool"]["events"], 0);
    assert!(
        s["last_error"]
            .as_str()
            .unwrap()
            .contains("must not be empty"),
        "{s}"
    );
    let out = home
        .command(&daemon_bin())
        .args(["status", "--spool-dir"])
        .arg(home.spool())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for want in [
        format!("running (pid {}", d.id()),
        "spool:      0 batches".to_string(),
        "1 refused by the gateway".to_string(),
        "last error: gateway answered 400".to_string(),
    ] {
        assert!(text.contains(&want), "{want:?} not in\n{text}");
    }
    stop(d);
    let out = home
        .command(&daemon_bin())
        .args(["status", "--json", "--spool-dir"])
        .arg(home.spool())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["running"], json!(false));
}

#[test]
fn idle_daemon_exits_by_itself() {
    let home = Home::new("http://127.0.0.1:9");
    let mut d = start(&home, &["--idle-timeout", "1"]);
    let status = wait_timeout(&mut d, T);
    assert!(status.success());
    assert!(!home.socket().exists());
}

/// Over its size cap the spool drops its oldest batches, counts what it
/// dropped, and replays the rest in order once the gateway is back.
#[test]
fn a_full_spool_drops_the_oldest_and_counts_them() {
    let mut gw = Gateway::start();
    gw.stop();
    let home = Home::new(&gw.url());
    let d = start(&home, &["--spool-max-mib", "1", "--batch-size", "100"]);
    wait_ready(&home);
    let pad = "x".repeat(500);
    let n = 3000u64;
    let body: String = (1..=n)
        .map(|i| {
            format!("{{\"event_type\":\"tool_invoked\",\"tool\":\"cap\",\"command\":\"c\",\"n\":{i},\"pad\":\"{pad}\"}}\n")
        })
        .collect();
    write(&home, &body);
    wait_for("every event spooled or dropped", T, || {
        home.status_u64("/received") == n
            && home.status_u64("/queued") == 0
            && home.status_u64("/spool/events") + home.status_u64("/dropped_spool_full") == n
    });
    let dropped = home.status_u64("/dropped_spool_full");
    assert!(dropped > 0, "the spool never filled");
    assert!(home.status_u64("/spool/bytes") <= 1 << 20);
    gw.restart();
    let kept = n - dropped;
    wait_for("the rest replayed", T, || gw.events().len() as u64 >= kept);
    stop(d);
    let mut got: Vec<u64> = gw
        .events()
        .iter()
        .map(|e| e["n"].as_u64().unwrap())
        .collect();
    assert_eq!(got.len() as u64, kept);
    // The newest survived, in order.
    let expected: Vec<u64> = (dropped + 1..=n).collect();
    assert_eq!(got, expected);
    got.dedup();
    assert_eq!(got.len() as u64, kept);
}

/// A gateway that answers 503 with `Retry-After` (its sink cannot write: a
/// file stands where its `events` folder goes): the daemon spools, waits as
/// long as it is told before trying again, and delivers every event once
/// the sink writes again.
#[test]
fn a_503_is_spooled_and_retried_after_retry_after() {
    let gw = Gateway::start();
    let blocker = gw.root.path().join("data/events");
    std::fs::write(&blocker, b"in the way").unwrap();
    let home = Home::new(&gw.url());
    let d = start(&home, &["--batch-size", "5"]);
    wait_ready(&home);
    let mut s = UnixStream::connect(home.socket()).unwrap();
    for i in 0..5 {
        writeln!(
            s,
            "{}",
            json!({"event_type": "tool_invoked", "tool": "retry-after", "command": format!("c{i}")})
        )
        .unwrap();
    }
    drop(s);
    let refused = || {
        ureq::get(format!("{}/metrics", gw.url()))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("wraith_http_requests_total{") && l.contains("status=\"503\""))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    wait_for("a 503 from the gateway", T, || refused() >= 1);
    wait_for("the batch in the spool", T, || {
        home.status_u64("/spool/events") == 5
    });
    // The gateway said `Retry-After: 5`; with its own backoff capped at
    // 0.5 s the daemon would otherwise have tried again several times.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(refused(), 1, "the daemon waited as Retry-After said");
    std::fs::remove_file(&blocker).unwrap();
    wait_for("every event at the gateway", T, || {
        by_id(&gw.events(), "retry-after").len() == 5
    });
    assert_eq!(gw.events().len(), 5, "each event once");
    wait_for("the spool emptied", T, || {
        home.status_u64("/spool/events") == 0
    });
    stop(d);
}
