//! The operator's verbs on a running gateway: `gateway reload` (SIGHUP:
//! tokens and limits change without dropping connections, a bad config
//! changes nothing), `gateway status`, `gateway stop`, the pid file, JSON logs.

use crate::support::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn post(gw: &Gateway, body: &Value, token: &str) -> (u16, Value) {
    let r = gw
        .http
        .post(format!("{}/v1/events", gw.url))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(body.to_string())
        .send()
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().unwrap_or(Value::Null))
}

fn verb(gw: &Gateway, args: &[&str]) -> (bool, String, String) {
    let out = gateway_command()
        .args(args)
        .args(["--data-dir", gw.data_dir().to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One HTTP/1.1 request on a kept-alive connection; the answer's status.
fn request_on(conn: &mut BufReader<TcpStream>, token: &str) -> u16 {
    let body = json!([event(1)]).to_string();
    write!(
        conn.get_mut(),
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut status = String::new();
    conn.read_line(&mut status).unwrap();
    let mut length = 0;
    loop {
        let mut h = String::new();
        conn.read_line(&mut h).unwrap();
        if h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut rest = vec![0; length];
    conn.read_exact(&mut rest).unwrap();
    status.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn reload_applies_tokens_and_limits_keeps_connections_and_refuses_a_bad_config() {
    let mut gw = Gateway::start_with(Options {
        plugins: vec![("upper", "upper")],
        extra_config: "[auth]\ntokens = [\"a:tok-a-1\"]\n".into(),
        ..Default::default()
    });
    let config_path = gw.root.path().join("gateway.toml");
    let original = std::fs::read_to_string(&config_path).unwrap();
    assert_eq!(
        post(&gw, &json!([event(1), event(2), event(3)]), "tok-a-1").0,
        200
    );
    let addr = gw.url.strip_prefix("http://").unwrap().to_string();
    let mut conn = BufReader::new(TcpStream::connect(&addr).unwrap());
    conn.get_mut()
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    assert_eq!(request_on(&mut conn, "tok-a-1"), 200);

    // New tokens and a smaller request limit, and one setting that needs a restart.
    std::fs::write(
        &config_path,
        original
            .replace("a:tok-a-1", "b:tok-b-1")
            .replace("call_timeout = \"300ms\"", "call_timeout = \"250ms\"")
            + "[server]\nmax_events_per_request = 2\nbusy_timeout = \"3s\"\n",
    )
    .unwrap();
    let (ok, out, err) = verb(&gw, &["reload"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("reloaded the gateway"), "{out}");
    assert!(
        out.contains("auth.tokens") && out.contains("limits"),
        "{out}"
    );
    assert!(out.contains("needs restart:  server"), "{out}");
    assert!(out.contains("plugins limits"), "{out}");
    // The plugin was loaded again under its new limits: a new chain.
    assert!(out.contains("chain generation 2"), "{out}");
    assert!(!out.contains("needs restart:  server, plugins"), "{out}");
    // The kept-alive connection is still served, now under the new tokens.
    assert_eq!(request_on(&mut conn, "tok-a-1"), 401);
    assert_eq!(request_on(&mut conn, "tok-b-1"), 200);
    assert_eq!(post(&gw, &json!([event(1)]), "tok-a-1").0, 401);
    let (s, a) = post(&gw, &json!([event(1), event(2), event(3)]), "tok-b-1");
    assert_eq!(s, 413, "{a}");
    assert!(
        a["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 2"),
        "{a}"
    );
    assert_eq!(post(&gw, &json!([event(1), event(2)]), "tok-b-1").0, 200);

    // A config that does not validate leaves the running one in place.
    let good = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(
        &config_path,
        good.clone() + "[limits]\nmax_nesting = \"deep\"\nno_such_key = 1\n",
    )
    .unwrap();
    let (ok, out, _) = verb(&gw, &["reload"]);
    assert!(!ok, "{out}");
    assert!(out.contains("kept its running config"), "{out}");
    assert!(
        out.contains("max_nesting") || out.contains("no_such_key"),
        "{out}"
    );
    assert_eq!(post(&gw, &json!([event(1)]), "tok-b-1").0, 200);
    let status = gw
        .http
        .get(format!("{}/v1/status", gw.url))
        .bearer_auth("tok-b-1")
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    assert_eq!(status["last_reload"]["ok"], false, "{status}");
    assert_eq!(gw.get_json("/health")["status"], "ok");
    // The processing delay of the 5 batches that went in.
    let metrics = gw.get_text("/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l == "wraith_batch_processing_seconds_count 5"),
        "{metrics}"
    );

    // `gateway status`: the table, and a clear error without the token.
    let st = gateway_command()
        .args(["status", "--url", &gw.url, "--token", "tok-b-1"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&st.stdout);
    assert!(st.status.success(), "{table}");
    assert!(table.contains("events: 8 received, 8 accepted"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("upper") && l.contains("active")),
        "{table}"
    );
    assert!(table.contains("sink file: ready"), "{table}");
    assert!(table.contains("refused:"), "{table}");
    let st = gateway_command()
        .args(["status", "--url", &gw.url])
        .env_remove("WRAITH_TOKEN")
        .output()
        .unwrap();
    assert!(!st.status.success());
    assert!(String::from_utf8_lossy(&st.stderr).contains("needs an API token"));

    // A second gateway on the same data folder is refused.
    let second = gateway_command()
        .args(["--plugins", gw.plugins_dir().to_str().unwrap()])
        .args(["--data-dir", gw.data_dir().to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another gateway") && err.contains(&gw.child.id().to_string()),
        "{err}"
    );

    // `gateway stop` waits until it has drained and exited.
    let pid_file = gw.data_dir().join("gateway.pid");
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        gw.child.id().to_string()
    );
    let (ok, out, err) = verb(&gw, &["stop"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("stopped the gateway"), "{out}");
    let status = gw.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!pid_file.exists());
    let (ok, _, err) = verb(&gw, &["reload"]);
    assert!(!ok && err.contains("no gateway is running"), "{err}");
    drop(conn);
}

#[test]
fn logs_are_json_on_request() {
    let gw = Gateway::start_with(Options {
        args: vec!["--log-format".into(), "json".into()],
        ..Default::default()
    });
    gw.wait_for_log("gateway listening");
    let log = gw.log();
    let line = log
        .lines()
        .find(|l| l.contains("gateway listening"))
        .unwrap();
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["level"], "INFO", "{v}");
    assert_eq!(v["fields"]["message"], "gateway listening", "{v}");
}
