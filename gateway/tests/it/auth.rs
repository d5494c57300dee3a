//! API tokens through the real gateway: from the config, `WRAITH_API_TOKENS`
//! and a `--tokens-file` that is reloaded; the client name on the events;
//! refusing to serve a non-loopback address without tokens.

use crate::support::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

fn send(
    gw: &Gateway,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = gw
        .http
        .post(format!("{}{path}", gw.url))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().unwrap();
    let s = r.status().as_u16();
    let h = r.headers().clone();
    (s, r.json().unwrap_or(Value::Null), h)
}

#[test]
fn tokens_from_config_env_and_a_reloaded_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    std::fs::write(&file, "# the file's clients\nfile-client:tok-file-1\n").unwrap();
    let gw = Gateway::start_with(Options {
        extra_config: "[auth]\ntokens = [\"cfg-client:tok-cfg-1\"]\n".into(),
        env: vec![(
            "WRAITH_API_TOKENS",
            "env-client:tok-env-1, tok-bare-1".into(),
        )],
        args: vec!["--tokens-file".into(), file.display().to_string()],
        ..Default::default()
    });
    let ev = event(1);
    // Refusals: 401, a JSON body that says what is wrong, WWW-Authenticate.
    for (headers, needle) in [
        (vec![], "a token is required"),
        (vec![("authorization", "Bearer nope")], "not valid"),
        (vec![("authorization", "Bearer ")], "empty bearer token"),
        (
            vec![("authorization", "Basic dXNlcjpwdw==")],
            "`Basic` scheme",
        ),
        (vec![("x-api-key", "")], "X-API-Key header is empty"),
        (vec![("x-api-key", "tok-cfg-")], "not valid"),
    ] {
        let (s, a, h) = send(&gw, "/v1/events", &headers, &ev);
        assert_eq!(s, 401, "{headers:?}: {a}");
        assert_eq!(a["error"]["code"], "unauthorized");
        let m = a["error"]["message"].as_str().unwrap();
        assert!(m.contains(needle), "{headers:?}: {m}");
        assert!(h.contains_key("www-authenticate"));
    }
    // Each source's token is accepted, under its client's name; a body
    // cannot claim another client.
    let forged = json!({"event_type": "tool_invoked", "_client": "admin"});
    for (headers, client) in [
        (vec![("authorization", "Bearer tok-cfg-1")], "cfg-client"),
        (vec![("x-api-key", "tok-env-1")], "env-client"),
        (vec![("authorization", "bearer tok-file-1")], "file-client"),
    ] {
        let (s, a, _) = send(&gw, "/v1/events", &headers, &forged);
        assert_eq!(s, 200, "{a}");
        let last = gw.lines("events").pop().unwrap();
        assert_eq!(last["_client"], client, "{last}");
    }
    let (s, _, _) = send(&gw, "/event", &[("x-api-key", "tok-bare-1")], &ev);
    assert_eq!(s, 200);
    let last = gw.lines("events").pop().unwrap();
    assert!(
        last["_client"].as_str().unwrap().starts_with("token-"),
        "{last}"
    );
    // Health and readiness stay open; the plugin list does not.
    assert_eq!(gw.get_json("/health")["status"], "ok");
    let r = gw
        .http
        .get(format!("{}/v1/plugins", gw.url))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // OTLP refusals are a Status body.
    let r = gw
        .http
        .post(format!("{}/v1/logs", gw.url))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let st: Value = r.json().unwrap();
    assert_eq!(st["code"], 16, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("a token is required")
    );
    // The file is reread when it changes: the old token goes, the new one works.
    let tmp = dir.path().join(".tokens.tmp");
    std::fs::write(&tmp, "rotated:tok-file-2\n").unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    gw.wait_for("the new token", Duration::from_secs(15), |g| {
        send(g, "/v1/events", &[("x-api-key", "tok-file-2")], &ev).0 == 200
    });
    let (s, _, _) = send(&gw, "/v1/events", &[("x-api-key", "tok-file-1")], &ev);
    assert_eq!(s, 401);
    // A file that does not parse keeps the tokens in use.
    std::fs::write(&file, "bad name:tok\n").unwrap();
    gw.wait_for_log("tokens file not reloaded");
    let (s, _, _) = send(&gw, "/v1/events", &[("x-api-key", "tok-file-2")], &ev);
    assert_eq!(s, 200);
    let metrics = gw.get_text("/metrics");
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("wraith_requests_refused_total{reason=\"unauthorized\"} "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no refused count in\n{metrics}"));
    assert!(refused >= 9, "{refused}");
}

#[test]
fn a_public_address_needs_tokens_or_allow_anonymous() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let base = |extra: &[&str]| {
        let mut c = gateway_command();
        c.args(["--plugins", plugins.to_str().unwrap()])
            .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
            .args(["--listen", "0.0.0.0:0"])
            .args(extra)
            .env_remove("WRAITH_API_TOKENS")
            .env_remove("WRAITH_ALLOW_ANONYMOUS");
        c
    };
    let out = base(&[]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without API tokens")
            && err.contains("--allow-anonymous"),
        "{err}"
    );
    // With a token, or when the operator says so, it starts.
    for extra in [&["--allow-anonymous"][..], &[]] {
        let mut c = base(extra);
        if extra.is_empty() {
            c.env("WRAITH_API_TOKENS", "ops:tok-ops-1");
        }
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let line = BufReader::new(stdout).lines().next().unwrap().unwrap();
        assert!(
            line.starts_with("wraith gateway listening on http://0.0.0.0:"),
            "{line}"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
