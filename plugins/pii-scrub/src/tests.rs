//! Plugin-level tests through the SDK harness.

use super::*;
use serde_json::{Value, json};
use wraith_plugin::testing::Harness;

fn harness(config: Value) -> Harness<PiiScrub> {
    Harness::<PiiScrub>::new(config).expect("valid config")
}

fn run(config: Value, event: Value) -> Value {
    harness(config).run_one(event).event
}

#[test]
fn clean_events_are_untouched() {
    let ev = json!({
        "event_type": "page_view",
        "id": "550e8400-e29b-41d4-a716-446655440000",
        "ts": "2024-01-15T10:30:00Z",
        "context": {"os": "linux", "version": "v10.4.0-beta.1", "path": "/usr/lib/x86_64-linux-gnu"},
        "count": 42,
        "ok": true,
        "tags": [],
    });
    let mut h = harness(json!({}));
    assert_eq!(h.run_one(ev.clone()).event, ev);
    assert!(h.counters().is_empty());
}

#[test]
fn nested_values_and_annotations() {
    let out = run(
        json!({}),
        json!({
            "user": {"contact": "mail ada@example.com please", "name": "Ada"},
            "frames": [{"file": "/home/ada/src/main.rs"}, {"file": "lib.rs"}],
            "tags": ["ok", "10.0.0.1"],
        }),
    );
    assert_eq!(out["user"]["contact"], "mail [email] please");
    assert_eq!(out["user"]["name"], "Ada");
    assert_eq!(out["frames"][0]["file"], "~/src/main.rs");
    assert_eq!(out["tags"], json!(["ok", "[ip]"]));
    assert_eq!(
        out["_wraith"]["redactions"],
        json!([
            {"rule": "email", "path": "user.contact"},
            {"rule": "home_dir", "path": "frames[0].file"},
            {"rule": "ip", "path": "tags[1]"},
        ])
    );
    let text = out.to_string();
    assert!(!text.contains("ada@example.com") && !text.contains("10.0.0.1"));
}

#[test]
fn annotate_off() {
    let out = run(json!({"annotate": false}), json!({"m": "ada@example.com"}));
    assert_eq!(out, json!({"m": "[email]"}));
}

#[test]
fn annotations_append_to_existing_ones() {
    let out = run(
        json!({}),
        json!({"m": "ada@example.com", "_wraith": {"redactions": [{"rule": "x", "path": "y"}], "other": 1}}),
    );
    assert_eq!(
        out["_wraith"],
        json!({"redactions": [{"rule": "x", "path": "y"}, {"rule": "email", "path": "m"}], "other": 1})
    );
}

#[test]
fn secret_keys_by_name() {
    let out = run(
        json!({}),
        json!({
            "password": "hunter2",
            "db": {"DB_PASSWORD": "x", "apiKey": 123456, "token_count": 17, "tokens_used": 5},
            "headers": {"Authorization": "Token abc", "Set-Cookie": ["a=1", "b=2"], "accept": "*/*"},
            "author": "Ada",
            "session_count": 3,
            "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "empty_password": "",
            "already": {"secret": "[redacted]"},
            "flag": {"password": true},
        }),
    );
    assert_eq!(out["password"], "[redacted]");
    assert_eq!(out["db"]["DB_PASSWORD"], "[redacted]");
    assert_eq!(out["db"]["apiKey"], "[redacted]");
    assert_eq!(out["db"]["token_count"], 17);
    assert_eq!(out["db"]["tokens_used"], 5);
    assert_eq!(out["headers"]["Authorization"], "[redacted]");
    assert_eq!(
        out["headers"]["Set-Cookie"],
        json!(["[redacted]", "[redacted]"])
    );
    assert_eq!(out["headers"]["accept"], "*/*");
    assert_eq!(out["author"], "Ada");
    assert_eq!(out["session_count"], 3);
    assert_eq!(out["aws_secret_access_key"], "[aws-key]");
    assert_eq!(out["empty_password"], "");
    assert_eq!(out["already"]["secret"], "[redacted]");
    assert_eq!(out["flag"]["password"], true);
    let rules: Vec<_> = out["_wraith"]["redactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["rule"].as_str().unwrap(), r["path"].as_str().unwrap()))
        .collect();
    assert!(rules.contains(&("secret_key", "db.apiKey")));
    assert!(rules.contains(&("secret_key", "headers.Set-Cookie[1]")));
    assert!(rules.contains(&("aws_key", "aws_secret_access_key")));
}

#[test]
fn aws_secret_by_name_falls_back_to_secret_key() {
    let out = run(
        json!({"detectors": {"aws_key": "off"}}),
        json!({"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}),
    );
    assert_eq!(out["aws_secret_access_key"], "[redacted]");
}

#[test]
fn hash_is_keyed_and_stable() {
    let cfg = |key: &str| json!({"hash_key": key, "detectors": {"email": "hash", "ip": "hash"}});
    let ev = json!({"a": "ada@example.com", "b": "Ada@Example.com", "c": "grace@example.com", "ip": "10.1.2.3"});
    let one = run(cfg("k1"), ev.clone());
    let again = run(cfg("k1"), ev.clone());
    let other = run(cfg("k2"), ev.clone());
    assert_eq!(one, again, "stable across runs");
    let a = one["a"].as_str().unwrap();
    assert!(a.starts_with("[email:") && a.ends_with(']') && a.len() == "[email:]".len() + 16);
    assert!(a[7..23].bytes().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(one["a"], one["b"], "addresses hash case-insensitively");
    assert_ne!(one["a"], one["c"]);
    assert_ne!(one["a"], other["a"], "another key, another pseudonym");
    assert!(one["ip"].as_str().unwrap().starts_with("[ip:"));
    let text = one.to_string();
    assert!(!text.contains("ada@example.com") && !text.contains("10.1.2.3"));
    // Hashing a hashed event changes nothing.
    let twice = run(cfg("k1"), one.clone());
    assert_eq!(twice["a"], one["a"]);
}

#[test]
fn hash_keeps_the_bearer_scheme_and_url_host() {
    let out = run(
        json!({"hash_key": "k", "detectors": {"bearer": "hash", "url_password": "hash", "secret_key": "hash", "home_dir": "hash"}}),
        json!({
            "h": "Bearer abc123def456",
            "u": "https://ada:pw@example.com/x",
            "password": "hunter2",
            "p": "/home/ada/x",
        }),
    );
    assert!(
        out["h"]
            .as_str()
            .unwrap()
            .starts_with("Bearer [credential:")
    );
    let u = out["u"].as_str().unwrap();
    assert!(
        u.starts_with("https://[password:") && u.ends_with("]@example.com/x"),
        "{u}"
    );
    assert!(out["password"].as_str().unwrap().starts_with("[redacted:"));
    assert_eq!(out["p"], "~/x");
}

#[test]
fn remove_drops_the_field() {
    let out = run(
        json!({"detectors": {"email": "remove", "secret_key": "remove"}, "annotate": true}),
        json!({
            "user": {"contact": "ada@example.com", "name": "Ada", "password": "x"},
            "list": ["a", "b@example.com", "c", "d@example.com", "10.0.0.1"],
            "msg": "from 10.0.0.2",
        }),
    );
    assert_eq!(out["user"], json!({"name": "Ada"}));
    assert_eq!(out["list"], json!(["a", "c", "[ip]"]));
    assert_eq!(out["msg"], "from [ip]");
    let notes = &out["_wraith"]["redactions"];
    assert!(
        notes
            .as_array()
            .unwrap()
            .contains(&json!({"rule": "email", "path": "user.contact"}))
    );
    assert!(
        notes
            .as_array()
            .unwrap()
            .contains(&json!({"rule": "secret_key", "path": "user.password"}))
    );
    assert!(!out.to_string().contains("example.com"));
}

#[test]
fn off_disables_a_detector() {
    let out = run(
        json!({"detectors": {"email": "off", "home_dir": "off"}}),
        json!({"m": "ada@example.com at /home/ada from 10.0.0.1"}),
    );
    assert_eq!(out["m"], "ada@example.com at /home/ada from [ip]");
}

#[test]
fn keys_holding_pii_are_renamed() {
    let out = run(
        json!({}),
        json!({
            "by_user": {
                "ada@example.com": {"visits": 3, "last": "10.0.0.1"},
                "grace@example.com": {"visits": 5},
                "plain": 1,
            },
            "hosts": {"10.0.0.7": "up"},
            "seen": {"ada@example.com": true},
        }),
    );
    assert_eq!(
        out["by_user"],
        json!({
            "plain": 1,
            "[email]": {"visits": 3, "last": "[ip]"},
            "[email] (2)": {"visits": 5},
        })
    );
    assert_eq!(out["hosts"], json!({"[ip]": "up"}));
    assert_eq!(out["seen"], json!({"[email]": true}));
    let notes = out["_wraith"]["redactions"].as_array().unwrap().clone();
    assert!(notes.contains(&json!({"rule": "email", "path": "by_user.\\[email\\]"})));
    assert!(notes.contains(&json!({"rule": "ip", "path": "by_user.\\[email\\].last"})));
    assert!(notes.contains(&json!({"rule": "ip", "path": "hosts.\\[ip\\]"})));
    assert!(!out.to_string().contains("example.com"));
}

#[test]
fn keys_renamed_with_hash_and_removed() {
    let out = run(
        json!({"hash_key": "k", "detectors": {"email": "hash", "ip": "remove"}}),
        json!({"u": {"ada@example.com": {"n": 1}, "10.0.0.1": {"n": 2}, "x": 3}}),
    );
    let u = out["u"].as_object().unwrap();
    assert_eq!(u.len(), 2);
    assert_eq!(u["x"], 3);
    let (k, v) = u.iter().find(|(k, _)| k.starts_with("[email:")).unwrap();
    assert_eq!(v, &json!({"n": 1}));
    assert_eq!(k.len(), "[email:]".len() + 16);
    let notes = out["_wraith"]["redactions"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n["rule"] == "ip" && n["path"] == "u.\\[ip\\]")
    );
}

#[test]
fn counters_per_detector() {
    let mut h = harness(json!({}));
    h.run(vec![
        json!({"a": "ada@example.com, grace@example.com", "b": "10.0.0.1"}),
        json!({"c": "bob@example.com", "password": "x"}),
        json!({"clean": "nothing here"}),
    ]);
    let c = h.counters();
    assert_eq!(c["scrubbed_email"], 3);
    assert_eq!(c["scrubbed_ip"], 1);
    assert_eq!(c["scrubbed_secret_key"], 1);
    assert_eq!(c.len(), 3);
    assert!(c.keys().all(|k| {
        k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }));
}

#[test]
fn config_errors_name_the_field() {
    let err = |cfg: Value| Harness::<PiiScrub>::new(cfg).err().expect("config error");
    let e = err(json!({"detectors": {"emial": "mask"}}));
    assert_eq!(e.field, "detectors.emial");
    assert!(e.message.contains("unknown detector `emial`") && e.message.contains("credit_card"));
    let e = err(json!({"detectors": {"email": "masc"}}));
    assert_eq!(e.field, "detectors.email");
    assert!(e.message.contains("mask, hash, remove, off"));
    let e = err(json!({"detectors": {"email": 1}}));
    assert_eq!(e.field, "detectors.email");
    let e = err(json!({"detectors": {"ip": "hash"}}));
    assert_eq!(e.field, "hash_key");
    assert!(e.message.contains("ip"));
    let e = err(json!({"hash_key": "", "detectors": {"ip": "hash"}}));
    assert_eq!(e.field, "hash_key");
    let e = err(json!({"anotate": false}));
    assert!(e.message.contains("unknown field `anotate`"), "{e:?}");
    let e = err(json!({"annotate": "yes"}));
    assert_eq!(e.field, "annotate");
    let e = err(json!({"detectors": ["email"]}));
    assert_eq!(e.field, "detectors");
    // A key without any hashing detector is accepted.
    assert!(Harness::<PiiScrub>::new(json!({"hash_key": "k"})).is_ok());
}

#[test]
fn scrub_str_is_the_native_baseline() {
    let p = PiiScrub::from_config(&json!({})).unwrap();
    assert_eq!(p.ruleset().scrub_str("no pii here"), None);
    assert_eq!(
        p.ruleset()
            .scrub_str("ada@example.com from 10.0.0.1")
            .as_deref(),
        Some("[email] from [ip]")
    );
    assert!(p.annotates());
}

#[test]
fn processing_twice_is_stable() {
    let ev = json!({
        "m": "ada@example.com 10.0.0.1 4111 1111 1111 1111 Bearer abc123def456 https://u:p@h.io",
        "password": "x",
        "k": {"ada@example.com": 1},
    });
    let once = run(json!({"annotate": false}), ev);
    let twice = run(json!({"annotate": false}), once.clone());
    assert_eq!(once, twice);
}

#[test]
fn the_readme_config_example_works_as_described() {
    let configs =
        wraith_plugin::testing::configs_in_markdown(include_str!("../README.md"), "pii-scrub")
            .unwrap();
    assert_eq!(configs.len(), 1, "one TOML example in the README");
    let out = run(
        configs[0].clone(),
        json!({
            "message": "from ada@example.com at 10.1.2.3 in /home/ada/src",
            "password": "hunter2",
        }),
    );
    let message = out["message"].as_str().unwrap();
    // e-mail and IP hashed (stable pseudonyms, not the mask), home_dir off,
    // the secret-named field removed.
    assert!(
        !message.contains("ada@example.com") && !message.contains("10.1.2.3"),
        "{message}"
    );
    assert!(
        !message.contains("[email]") && !message.contains("[ip]"),
        "{message}"
    );
    assert!(message.ends_with("in /home/ada/src"), "{message}");
    assert!(out.get("password").is_none(), "{out}");
    assert!(
        out["_wraith"]["redactions"].is_array(),
        "annotate = true: {out}"
    );
    let again = run(
        configs[0].clone(),
        json!({"message": "from ada@example.com at 10.1.2.3 in /home/ada/src"}),
    );
    assert_eq!(again["message"], out["message"], "hashes are stable");
}

#[test]
fn card_numbers_sent_as_json_numbers() {
    let out = run(
        json!({}),
        json!({"pan": 4111111111111111u64, "order": 4111111111111112u64, "ts": 1700000000000u64, "n": 42}),
    );
    assert_eq!(out["pan"], "[card]");
    assert_eq!(out["order"], 4111111111111112u64);
    assert_eq!(out["ts"], 1700000000000u64);
    assert_eq!(out["n"], 42);
    let removed = run(
        json!({"detectors": {"credit_card": "remove"}}),
        json!({"pan": 4111111111111111u64}),
    );
    assert!(removed.get("pan").is_none(), "{removed}");
    let off = run(
        json!({"detectors": {"credit_card": "off"}}),
        json!({"pan": 4111111111111111u64}),
    );
    assert_eq!(off["pan"], 4111111111111111u64);
}

#[test]
fn field_names_are_context() {
    let out = run(
        json!({}),
        json!({
            "device": {"driver_version": "10.2.14.7", "osVersion": "6.5.0.21", "client_ip": "10.2.14.7"},
            "build": {"version": "ip=10.0.0.1"},
            "person": {"ssn": "219450912", "tax_id": 219450913u64, "order": "219450912"},
            "net": {"mac_address": "0024.9735.1180", "serial": "2024.0115.1030"},
        }),
    );
    assert_eq!(out["device"]["driver_version"], "10.2.14.7");
    assert_eq!(out["device"]["osVersion"], "6.5.0.21");
    assert_eq!(out["device"]["client_ip"], "[ip]");
    assert_eq!(out["build"]["version"], "ip=[ip]");
    assert_eq!(out["person"]["ssn"], "[ssn]");
    assert_eq!(out["person"]["tax_id"], "[ssn]");
    assert_eq!(out["person"]["order"], "219450912");
    assert_eq!(out["net"]["mac_address"], "[mac]");
    assert_eq!(out["net"]["serial"], "2024.0115.1030");
}

#[test]
fn encoded_text_and_the_decode_switch() {
    let ev = json!({"url": "/cb?redirect_uri=https%3A%2F%2Fa.example.com%2F%3Fu%3Dada.lovelace%40example.org"});
    let out = run(json!({}), ev.clone());
    assert_eq!(
        out["url"],
        "/cb?redirect_uri=https%3A%2F%2Fa.example.com%2F%3Fu%3D[email]"
    );
    assert_eq!(out["_wraith"]["redactions"][0]["rule"], "email");
    let out = run(json!({"decode": false, "annotate": false}), ev.clone());
    assert_eq!(out, ev);
}

#[test]
fn generic_secret_is_a_detector_like_the_others() {
    let ev =
        json!({"argv": ["tool", "publish", "--key", "q8Rt2vLw0ZbX9kPm4sNc7yHj1uEa5GdF3oTiWxYz"]});
    let out = run(json!({}), ev.clone());
    assert_eq!(out["argv"][3], "[secret]");
    assert_eq!(out["_wraith"]["redactions"][0]["rule"], "generic_secret");
    let out = run(json!({"detectors": {"generic_secret": "off"}}), ev.clone());
    assert_eq!(out, ev);
    let out = run(json!({"detectors": {"generic_secret": "remove"}}), ev);
    assert_eq!(out["argv"], json!(["tool", "publish", "--key"]));
}

#[test]
fn the_rule_table_is_consistent() {
    let mut ranks: Vec<u8> = Rule::ALL.iter().map(|r| r.rank()).collect();
    ranks.sort_unstable();
    assert_eq!(
        ranks,
        (0..RULES as u8).collect::<Vec<_>>(),
        "ranks are a permutation"
    );
    for (i, r) in Rule::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i);
        assert_eq!(Rule::from_name(r.name()), Some(*r));
        assert_eq!(r.counter(), format!("scrubbed_{}", r.name()));
    }
}

#[test]
fn encoded_and_plain_values_share_a_pseudonym() {
    let cfg = json!({"hash_key": "k", "annotate": false, "detectors": {"email": "hash"}});
    let out = run(
        cfg,
        json!({"a": "to=ada%40example.com", "b": "to=Ada@example.com", "c": "{\\\"u\\\": \\\"ada\\u0040example.com\\\"}"}),
    );
    let tag = out["b"]
        .as_str()
        .unwrap()
        .strip_prefix("to=")
        .unwrap()
        .to_string();
    assert!(tag.starts_with("[email:"), "{out}");
    assert_eq!(out["a"], format!("to={tag}"));
    assert!(out["c"].as_str().unwrap().contains(&tag), "{out}");
}

#[test]
fn the_gateway_chain_examples_still_hold() {
    let out = run(
        json!({}),
        json!({"command": "scan --token ghp_1234567890abcdefghijklmnopqrstuvwxyzAB", "context": {"client_ip": "203.0.113.7", "tool_version": "1.4.2"}}),
    );
    assert_eq!(out["command"], "scan --token [token]");
    assert_eq!(out["context"]["client_ip"], "[ip]");
    assert_eq!(out["context"]["tool_version"], "1.4.2");
}

#[test]
fn a_secret_after_a_short_label_is_masked_whole() {
    // Wherever the label sits (the long-run walk probes every 32nd byte,
    // so every offset is tried), the mask covers the whole secret.
    const SECRETS: &[&str] = &[
        "q8Rt2vLw0ZbX9kPm4sNc7yHj1uEa5GdF3oTiWxYz",
        "Zk3/Qm8vT1xLr+9NpA2sWc6HdYb4FgJe0uKiOt7R",
        "a7Kq2Lm9Xw4Rt8Vb3Np6Yc1Hs5Gd0JfTe",
        "N4p7Rq2Ws9Kx3Lm8Tz5Vb1Hc6Yd0Gf2J",
    ];
    const LABELS: &[&str] = &[
        "key=", "--key ", "pw=", "tok=", "-k ", "k=", "key: ", "key='", "key=\"",
    ];
    let rules = Ruleset::default();
    let (mut checked, mut wrong) = (0, Vec::new());
    for secret in SECRETS {
        for label in LABELS {
            let close = match label.as_bytes().last() {
                Some(b'\'') => "'",
                Some(b'"') => "\"",
                _ => "",
            };
            for pad in 0..70 {
                let filler = "x".repeat(pad);
                for (pre, post) in [
                    (
                        format!("/usr/bin/tool {filler} "),
                        " --env prod".to_string(),
                    ),
                    (
                        format!("[server]\nport = 8080 # {filler}\n"),
                        "\nworkers = 4".to_string(),
                    ),
                ] {
                    let input = format!("{pre}{label}{secret}{close}{post}");
                    let want = format!("{pre}{label}[secret]{close}{post}");
                    let got = rules.scrub_str(&input);
                    if got.as_deref() != Some(want.as_str()) {
                        wrong.push(format!("{input:?} -> {got:?}"));
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, SECRETS.len() * LABELS.len() * 70 * 2);
    assert!(
        wrong.is_empty(),
        "{} of {checked} not masked whole: {wrong:#?}",
        wrong.len()
    );
    // Through the plugin, in a command line.
    let out = run(
        json!({}),
        json!({"process": {"command_line": "deploy key=q8Rt2vLw0ZbX9kPm4sNc7yHj1uEa5GdF3oTiWxYz --env prod"}}),
    );
    assert_eq!(
        out["process"]["command_line"],
        "deploy key=[secret] --env prod"
    );
}

#[test]
fn keys_of_siblings_are_scanned_whatever_their_parents_share() {
    // Parents found clean for one leaf are not scanned again for the next;
    // a key that only starts like a clean one (`a.b` escaped, `ab`) still is.
    let out = run(
        json!({"annotate": false}),
        json!({
            "ctx": {"os": "linux", "ada@example.com": "x", "n": {"10.0.0.1": 1}},
            "a": {"v": 1},
            "a.b": {"grace@example.org": 2},
            "ab": {"v": 3, "/home/alan/x": 4},
            "tags": ["ok", {"hedy@example.net": 5}],
        }),
    );
    assert_eq!(
        out,
        json!({
            "ctx": {"os": "linux", "[email]": "x", "n": {"[ip]": 1}},
            "a": {"v": 1},
            "a.b": {"[email]": 2},
            "ab": {"v": 3, "~/x": 4},
            "tags": ["ok", {"[email]": 5}],
        })
    );
}

#[test]
fn redaction_entries_are_written_as_serde_json_writes_them() {
    for rule in Rule::ALL {
        assert!(
            rule.name()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{} needs no JSON escape",
            rule.name()
        );
    }
    for path in [
        "m",
        r"a\.b[2].\[email\]",
        "quote\"back\\slash",
        "ctl\u{1}\u{8}\u{c}\n\r\t\u{1f}\u{7f}",
        "ünïcode.電",
        "",
    ] {
        for rule in [Rule::Email, Rule::HomeDir] {
            let mut ours = String::new();
            push_redaction(&mut ours, rule, path);
            let theirs = json!({"rule": rule.name(), "path": path}).to_string();
            assert_eq!(ours, theirs, "{path:?}");
        }
    }
}

#[test]
fn remembered_paths_and_values_answer_as_a_fresh_plugin_does() {
    // The same paths again and again, with values and keys that change:
    // what one plugin remembers from earlier events must not change what
    // it does with the next.
    let values = [
        json!("linux"),
        json!("ada@example.com"),
        json!("linux"),
        json!("10.0.0.1"),
        json!(""),
        json!(219450912),
        json!("4111111111111111"),
        json!(true),
        json!("[redacted]"),
        json!("a rather long value of more than twenty-four bytes"),
        json!("linux"),
    ];
    let keys = [
        "os",
        "password",
        "ssn",
        "ada@example.com",
        "os",
        "a.b",
        "aws_secret_access_key",
    ];
    let mut kept = harness(json!({}));
    for round in 0..3 {
        for (i, v) in values.iter().enumerate() {
            for (j, k) in keys.iter().enumerate() {
                let ev = json!({
                    "context": {*k: v.clone(), "os": values[(i + j) % values.len()].clone()},
                    "tags": [v.clone(), "x"],
                    *k: {"deep": v.clone()},
                });
                let fresh = harness(json!({})).run_one(ev.clone()).event;
                assert_eq!(kept.run_one(ev).event, fresh, "round {round}, {k} = {v}");
            }
        }
    }
}
