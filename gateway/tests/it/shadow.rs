//! Shadow runs: candidates beside a live plugin, on the same batches,
//! compared and never applied; their faults are counted and change
//! nothing; promotion is a manifest edit picked up by hot reload.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

const MANIFEST: &str = r#"order = ["scrub-email"]

[plugins.scrub-same]
mode = "shadow"
shadows = "scrub-email"

[plugins.spin-next]
mode = "shadow"
shadows = "scrub-email"

[plugins.upper-next]
mode = "shadow"
shadows = "scrub-email"
config = { field = "message" }

[plugins.verdicts-next]
mode = "shadow"
shadows = "scrub-email"

[plugins.trap-next]
mode = "shadow"
shadows = "scrub-email"
"#;

/// The `shadow` object of a shadow's entry in `/v1/plugins` (the entry
/// itself says `"mode": "shadow"` and which plugin it shadows).
fn shadow<'a>(plugins: &'a Value, name: &str) -> &'a Value {
    let entry = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no plugin {name} in {plugins}"));
    assert_eq!(entry["mode"], "shadow", "{entry}");
    assert!(entry["shadows"].is_string(), "{entry}");
    &entry["shadow"]
}

fn events() -> Vec<Value> {
    let ev = |n: usize, message: &str| {
        json!({"event_type": "x", "tool": "t", "n": n, "message": message,
               "event_id": format!("0193a6f0-0000-7000-8000-{n:012}"), "timestamp": "2026-12-01T10:00:00Z"})
    };
    let mut batch = vec![
        ev(0, "mail ada@example.org"),
        ev(1, "cc bob@example.com"),
        ev(2, "to eve@example.net"),
        ev(3, "plain"),
    ];
    let mut reject = ev(4, "bad");
    reject["reject_reason"] = json!("no");
    let mut debug = ev(5, "dbg");
    debug["level"] = json!("debug");
    debug["boom"] = json!(true);
    debug["spin"] = json!(true);
    batch.push(reject);
    batch.push(debug);
    batch
}

#[test]
fn shadows_run_on_the_live_batches_are_compared_and_never_applied() {
    let gw = Gateway::start_with(Options {
        plugins: vec![
            ("scrub-email", "scrub-email"),
            ("scrub-email", "scrub-same"),
            ("upper", "upper-next"),
            ("verdicts", "verdicts-next"),
            ("trap", "trap-next"),
            ("spin", "spin-next"),
        ],
        manifest: Some(MANIFEST.into()),
        ..Default::default()
    });
    let alone = Gateway::start(&[("scrub-email", "scrub-email")]);
    let ev = |n: usize, message: &str| json!({"event_type": "x", "tool": "t", "n": n, "message": message});
    let (s, a) = gw.post_json("/v1/events", &Value::Array(events()));
    assert_eq!(s, 200, "{a}");
    // The live path: scrub-email's answer only, exactly as without shadows.
    assert_eq!(
        (
            a["accepted"].as_u64(),
            a["dropped"].as_u64(),
            a["dead_lettered"].as_u64()
        ),
        (Some(6), Some(0), Some(0)),
        "{a}"
    );
    assert_eq!(
        alone.post_json("/v1/events", &Value::Array(events())).0,
        200
    );
    let stored = gw.lines("events");
    assert_eq!(
        stored,
        alone.lines("events"),
        "shadows changed what the live path stored"
    );
    assert_eq!(stored[0]["message"], "mail [email]");
    assert_eq!(
        stored[3]["message"], "plain",
        "the shadow's upper-casing is not applied"
    );
    assert!(gw.lines("dlq").is_empty(), "a shadow never dead-letters");

    let plugins = gw.get_json("/v1/plugins");
    let names: Vec<&str> = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["state"] == "active")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["scrub-email"],
        "shadows are not in the chain: {plugins}"
    );
    assert_eq!(plugins["plugins"][0]["events_in"], 6);

    let up = shadow(&plugins, "upper-next");
    assert_eq!(
        (
            up["shadows"].as_str(),
            up["batches"].as_u64(),
            up["events"].as_u64()
        ),
        (Some("scrub-email"), Some(1), Some(6)),
        "{up}"
    );
    assert_eq!(
        (up["verdict_differs"].as_u64(), up["edits_differ"].as_u64()),
        (Some(0), Some(6)),
        "{up}"
    );
    assert_eq!(up["edit_paths"], json!({"message": 6}), "{up}");
    assert!(
        up["live_seconds"].as_f64().unwrap() > 0.0 && up["shadow_seconds"].as_f64().unwrap() > 0.0,
        "{up}"
    );

    let v = shadow(&plugins, "verdicts-next");
    assert_eq!(v["verdict_differs"], 2, "{v}");
    assert_eq!(
        v["verdict_changes"],
        json!({"keep->drop": 1, "keep->reject": 1}),
        "{v}"
    );
    // The three scrubbed events: verdicts-next makes no edit.
    assert_eq!(
        (v["edits_differ"].as_u64(), v["edit_paths"].clone()),
        (Some(3), json!({"message": 3})),
        "{v}"
    );

    let t = shadow(&plugins, "trap-next");
    assert_eq!(
        (t["faults"].as_u64(), t["events"].as_u64()),
        (Some(1), Some(6)),
        "{t}"
    );
    assert!(t["last_fault"].as_str().unwrap().contains("boom"), "{t}");
    let spin = shadow(&plugins, "spin-next");
    assert_eq!(spin["faults"], 1, "{spin}");
    assert!(
        spin["last_fault"].as_str().unwrap().contains("time"),
        "{spin}"
    );
    // Differences are named by path and verdict, never by value.
    let text = plugins.to_string();
    assert!(
        !text.contains("MAIL ADA") && !text.contains("ada@example.org"),
        "{text}"
    );

    gw.assert_metrics(&[
        "wraith_shadow_events_total{shadow=\"upper-next\",live=\"scrub-email\"} 6",
        "wraith_shadow_differences_total{shadow=\"verdicts-next\",live=\"scrub-email\",kind=\"verdict\"} 2",
        "wraith_shadow_differences_total{shadow=\"upper-next\",live=\"scrub-email\",kind=\"edits\"} 6",
        "wraith_shadow_faults_total{shadow=\"trap-next\",live=\"scrub-email\"} 1",
    ]);

    // The playground and `gateway check --sample` show both answers.
    let (s, tr) = gw.post_json("/v1/playground", &ev(9, "hi ada@example.org"));
    assert_eq!(s, 200, "{tr}");
    let shadows = tr["steps"][0]["shadows"].as_array().unwrap();
    assert_eq!(shadows.len(), 5, "{tr}");
    let up = shadows
        .iter()
        .find(|s| s["plugin"] == "upper-next")
        .unwrap();
    assert_eq!(up["edits"], json!([{"op": "set", "path": "message"}]));
    assert_eq!(tr["after"]["message"], "hi [email]");
    let sample = gw.root.path().join("sample.jsonl");
    std::fs::write(&sample, ev(1, "mail ada@example.org").to_string() + "\n").unwrap();
    let out = check_ok(&gw.plugins_dir(), Some(&sample));
    assert!(
        out.lines()
            .any(|l| l.contains("ok    scrub-email") && l.ends_with("wraith:plugin@0.1.0")),
        "{out}"
    );
    assert!(
        out.contains("upper-next") && out.contains("shadow of scrub-email"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("shadow upper-next") && l.contains("set message")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("scrub-email") && l.contains("set message")),
        "{out}"
    );

    // Promotion: one manifest edit, picked up by hot reload.
    let promoted = MANIFEST
        .replace(
            "[plugins.upper-next]\nmode = \"shadow\"\nshadows = \"scrub-email\"\n",
            "[plugins.upper-next]\n",
        )
        .replace(
            "shadows = \"scrub-email\"\n\n[plugins.trap-next]",
            "shadows = \"gone\"\n\n[plugins.trap-next]",
        );
    // Under load: every acknowledged event is stored, before and after.
    let before = gw.lines("events").len();
    let (url, http) = (gw.url.clone(), gw.http.clone());
    let load = std::thread::spawn(move || {
        let mut acked = 0;
        for k in 0..40 {
            let batch: Vec<Value> = (0..10)
                .map(|i| json!({"event_type": "x", "tool": "t", "n": k * 10 + i, "message": "load ada@example.org"}))
                .collect();
            let r = http
                .post(format!("{url}/v1/events"))
                .header("content-type", "application/json")
                .body(Value::Array(batch).to_string())
                .send()
                .unwrap();
            if r.status().as_u16() == 200 {
                acked += r.json::<Value>().unwrap()["accepted"].as_u64().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        acked
    });
    std::thread::sleep(Duration::from_millis(200));
    let tmp = gw.plugins_dir().join(".plugins.toml.tmp");
    std::fs::write(&tmp, promoted).unwrap();
    std::fs::rename(&tmp, gw.plugins_dir().join("plugins.toml")).unwrap();
    gw.wait_for("upper-next in the chain", Duration::from_secs(30), |g| {
        g.get_json("/v1/plugins")["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "upper-next" && p["state"] == "active")
    });
    let acked = load.join().unwrap();
    assert_eq!(acked, 400, "the load was refused in part");
    let after = gw.lines("events");
    assert_eq!(after.len() - before, 400, "acknowledged events are missing");
    let (s, _) = gw.post_json("/v1/events", &json!([ev(7, "mail ada@example.org")]));
    assert_eq!(s, 200);
    assert_eq!(
        gw.lines("events").last().unwrap()["message"],
        "MAIL [EMAIL]"
    );
    let plugins = gw.get_json("/v1/plugins");
    let orphan = shadow(&plugins, "verdicts-next");
    assert!(
        orphan["error"]
            .as_str()
            .unwrap()
            .contains("`gone`, which is not in the chain"),
        "{orphan}"
    );
}

#[test]
fn a_shadow_without_a_live_plugin_named_is_a_manifest_error() {
    let gw = Gateway::start_with(Options {
        plugins: vec![("upper", "upper")],
        ..Default::default()
    });
    for (manifest, needle) in [
        ("[plugins.upper]\nmode = \"shadow\"\n", "needs `shadows"),
        (
            "[plugins.upper]\nshadows = \"x\"\n",
            "`shadows` is for mode = \"shadow\"",
        ),
        (
            "[plugins.upper]\nmode = \"shadow\"\nshadows = \"upper\"\n",
            "cannot shadow itself",
        ),
        (
            "[plugins.upper]\nmode = \"shade\"\n",
            "unknown variant `shade`",
        ),
    ] {
        let tmp = gw.plugins_dir().join(".plugins.toml.tmp");
        std::fs::write(&tmp, manifest).unwrap();
        std::fs::rename(&tmp, gw.plugins_dir().join("plugins.toml")).unwrap();
        gw.wait_for(needle, Duration::from_secs(30), |g| {
            g.get_json("/v1/plugins")["manifest_error"]
                .as_str()
                .is_some_and(|e| e.contains(needle))
        });
        // The running chain stays as it was.
        assert_eq!(gw.post_json("/v1/events", &json!([event(1)])).0, 200);
    }
}
