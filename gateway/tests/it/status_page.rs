//! The status page and the playground: through HTTP, and in a real headless
//! Chromium that loads the page, asks for a token, reads the chain, the
//! dead-letter reasons, and runs an event through the playground.

use crate::browser::Browser;
use crate::support::*;
use serde_json::{Value, json};

const TOKEN: &str = "tok-status-page-1";

fn gateway(tokens: bool) -> Gateway {
    Gateway::start_with(Options {
        plugins: vec![
            ("scrub-email", "scrub-email"),
            ("upper", "upper"),
            ("verdicts", "verdicts"),
        ],
        manifest: Some("order = [\"scrub-email\", \"upper\", \"verdicts\"]\n".into()),
        extra_config: if tokens {
            format!("[auth]\ntokens = [\"ops:{TOKEN}\"]\n")
        } else {
            String::new()
        },
        ..Default::default()
    })
}

fn post(gw: &Gateway, path: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
    let mut req = gw
        .http
        .post(format!("{}{path}", gw.url))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let r = req.send().unwrap();
    let s = r.status().as_u16();
    (s, r.json().unwrap_or(Value::Null))
}

#[test]
fn the_playground_answers_each_plugins_verdict_and_edits_and_stores_nothing() {
    let gw = gateway(false);
    let event = json!({
        "event_type": "tool_invoked", "tool": "t", "command": "deploy",
        "message": "by ada@example.org", "_client": "forged"
    });
    let (s, t) = post(&gw, "/v1/playground", &event, None);
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["verdict"], "keep", "{t}");
    assert_eq!(t["destination"], "events");
    let steps = t["steps"].as_array().unwrap();
    let names: Vec<&str> = steps
        .iter()
        .map(|s| s["plugin"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["scrub-email", "upper", "verdicts"], "{t}");
    assert_eq!(steps[0]["edits"], json!([{"op": "set", "path": "message"}]));
    assert_eq!(steps[1]["edits"], json!([{"op": "set", "path": "command"}]));
    assert_eq!(steps[2]["edits"], json!([]));
    assert_eq!(steps[2]["verdict"], "keep");
    assert_eq!(t["before"]["message"], "by ada@example.org");
    assert_eq!(t["after"]["command"], "DEPLOY");
    assert!(
        !t["after"]["message"].as_str().unwrap().contains("ada@"),
        "{t}"
    );
    // Ingest's checks ran: defaults filled in, the forged client removed.
    assert!(t["before"]["event_id"].is_string(), "{t}");
    assert!(t["before"].get("_client").is_none(), "{t}");

    // A rejection stops the walk and names the plugin and reason.
    let (s, t) = post(
        &gw,
        "/v1/playground",
        &json!({"event_type": "x", "reject_reason": "no tool"}),
        None,
    );
    assert_eq!(s, 200, "{t}");
    assert_eq!(
        (t["verdict"].as_str(), t["plugin"].as_str()),
        (Some("dead_letter"), Some("verdicts"))
    );
    assert_eq!(t["reason"], "no tool");
    assert!(t.get("after").is_none());
    let (s, t) = post(
        &gw,
        "/v1/playground",
        &json!({"event_type": "x", "level": "debug"}),
        None,
    );
    assert_eq!((s, t["verdict"].as_str()), (200, Some("drop")), "{t}");

    // Bad input is refused with a message that names the problem.
    let (s, t) = post(&gw, "/v1/playground", &json!({"tool": "t"}), None);
    assert_eq!(s, 400, "{t}");
    assert!(
        t["error"]["message"]
            .as_str()
            .unwrap()
            .contains("event_type"),
        "{t}"
    );
    let (s, t) = post(&gw, "/v1/playground", &json!([1, 2]), None);
    assert_eq!(s, 400, "{t}");

    // Nothing was stored, and the counters of ingest did not move.
    assert!(gw.lines("events").is_empty());
    assert!(gw.lines("dlq").is_empty());
    let status = gw.get_json("/v1/status");
    assert_eq!(status["totals"]["received"], 0, "{status}");
    assert_eq!(gw.get_json("/health")["status"], "ok");
    // Each plugin names the contract it was built against.
    let plugins = gw.get_json("/v1/plugins");
    for p in plugins["plugins"].as_array().unwrap() {
        assert_eq!(p["contract"], "wraith:plugin@0.1.0", "{p}");
    }
}

#[test]
fn a_plugin_cannot_forge_the_client_field() {
    let gw = Gateway::start_with(Options {
        plugins: vec![("upper", "upper")],
        manifest: Some("[plugins.upper.config]\nfield = \"_client\"\n".into()),
        extra_config: "[auth]\ntokens = [\"ops:tok-forge-1\"]\n".into(),
        ..Default::default()
    });
    let (s, a) = post(&gw, "/v1/events", &json!([event(1)]), Some("tok-forge-1"));
    assert_eq!((s, a["accepted"].as_u64()), (200, Some(1)), "{a}");
    // The plugin rewrote `_client` to "OPS"; the stored event says "ops".
    let plugins: Value = gw
        .http
        .get(format!("{}/v1/plugins", gw.url))
        .bearer_auth("tok-forge-1")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(plugins["plugins"][0]["events_in"], 1, "{plugins}");
    assert_eq!(plugins["plugins"][0]["name"], "upper", "{plugins}");
    let lines = gw.lines("events");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["_client"], "ops", "{}", lines[0]);
}

#[test]
fn the_status_page_in_a_real_browser() {
    let gw = gateway(true);
    // Traffic for the page to show: kept, dropped and dead-lettered events,
    // one reason written as markup (it must show as text).
    let batch = json!([
        event(1),
        event(2),
        {"event_type": "x", "tool": "t", "level": "debug"},
        {"event_type": "x", "tool": "t", "reject_reason": "<img src=x onerror=\"document.title='pwned'\"> bad"},
    ]);
    let (s, a) = post(&gw, "/v1/events", &batch, Some(TOKEN));
    assert_eq!(s, 200, "{a}");
    assert_eq!(
        (
            a["accepted"].as_u64(),
            a["dropped"].as_u64(),
            a["dead_lettered"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    // The page's data needs the token; the page itself holds none.
    let (s, _) = post(&gw, "/v1/playground", &event(3), None);
    assert_eq!(s, 401);
    let r = gw.http.get(format!("{}/v1/status", gw.url)).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = gw.http.get(format!("{}/", gw.url)).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    assert!(
        !r.text().unwrap().contains("https://"),
        "the page loads nothing from elsewhere"
    );

    let mut b = Browser::start();
    b.open(&format!("{}/", gw.url));
    b.wait_for(
        "the token form",
        "getComputedStyle(document.getElementById('token-form')).display !== 'none'",
    );
    b.eval(&format!(
        "document.getElementById('token').value = {t}; document.getElementById('token-entry').requestSubmit(); true",
        t = json!(TOKEN)
    ));
    b.wait_for(
        "the chain table",
        "document.querySelector('#chain-body tr[data-plugin=\"verdicts\"]')",
    );
    let rows = b.eval(
        "[...document.querySelectorAll('#chain-body tr')].map(r => [...r.cells].map(c => c.textContent))",
    );
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    // # plugin state in kept dropped rejected faulted calls …
    assert_eq!(rows[0][1], "scrub-email");
    assert_eq!(rows[2][1], "verdicts");
    assert_eq!(rows[2][2], "active");
    assert_eq!(rows[2][3], "4", "events in: {rows:?}");
    assert_eq!(rows[2][4], "2", "kept: {rows:?}");
    assert_eq!(rows[2][5], "1", "dropped: {rows:?}");
    assert_eq!(rows[2][6], "1", "rejected: {rows:?}");
    assert!(
        b.text("#totals")
            .contains("4 received, 2 accepted, 1 dropped, 1 dead-lettered"),
        "{}",
        b.text("#totals")
    );

    // The dead-letter reason is shown as text, not as markup.
    b.wait_for(
        "the dead-letter reasons",
        "document.querySelector('#dlq-body td:nth-child(5)')",
    );
    let reason = b.text("#dlq-body tr td:nth-child(5)");
    assert!(reason.starts_with("<img src=x"), "{reason}");
    assert_eq!(
        b.eval("document.querySelectorAll('#dlq-body img').length"),
        json!(0)
    );
    assert_ne!(b.eval("document.title"), json!("pwned"));

    // The playground: a pasted event through the live chain.
    let pasted = json!({"event_type": "deploy_done", "tool": "t", "command": "ship", "message": "ping grace@example.com now"});
    b.eval(&format!(
        "document.getElementById('playground-input').value = {v}; document.getElementById('playground-run').click(); true",
        v = json!(pasted.to_string())
    ));
    b.wait_for(
        "the playground's answer",
        "document.getElementById('playground-verdict').textContent !== ''",
    );
    assert_eq!(
        b.text("#playground-verdict"),
        "keep",
        "{}",
        b.text("#playground-error")
    );
    let steps = b.eval(
        "[...document.querySelectorAll('#playground-steps tr')].map(r => [...r.cells].map(c => c.textContent))",
    );
    assert_eq!(
        steps,
        json!([
            ["scrub-email", "keep", "", "set message"],
            ["upper", "keep", "", "set command"],
            ["verdicts", "keep", "", "none"],
        ])
    );
    let after = b.text("#playground-after");
    assert!(
        after.contains("\"SHIP\"") && !after.contains("grace@example.com"),
        "{after}"
    );
    assert!(b.text("#playground-before").contains("grace@example.com"));
    // What the page showed is what the API answers, and nothing was stored.
    let (_, t) = post(&gw, "/v1/playground", &pasted, Some(TOKEN));
    assert_eq!(t["after"]["command"], "SHIP");
    assert_eq!(gw.lines("events").len(), 2);

    // A sample from the list, through the same button.
    b.eval("const s = document.getElementById('sample'); s.value = '2'; s.dispatchEvent(new Event('change')); document.getElementById('playground-verdict').textContent = ''; document.getElementById('playground-run').click(); true");
    b.wait_for(
        "the sample's answer",
        "document.getElementById('playground-verdict').textContent !== ''",
    );
    assert_eq!(b.text("#playground-verdict"), "keep");
    // Invalid JSON is caught in the page, with a message.
    b.eval("document.getElementById('playground-input').value = '{nope'; document.getElementById('playground-run').click(); true");
    b.wait_for(
        "the JSON error",
        "document.getElementById('playground-error').textContent.includes('not valid JSON')",
    );
}
