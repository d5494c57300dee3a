use super::*;
use serde_json::json;
use wraith_plugin::testing::Harness;

fn harness(config: Value) -> Harness<Route> {
    Harness::new(config).unwrap()
}

/// Run one event through a config; its verdict.
fn verdict(config: Value, event: Value) -> Verdict {
    harness(config).run_one(event).verdict
}

/// A config with one rule `when` → route to `hit`.
fn one_rule(when: Value) -> Value {
    json!({"rules": [{"when": when, "then": {"route": "hit"}}]})
}

/// Whether `when` matches `event`.
fn check_match(when: Value, event: Value, expected: bool) {
    let got = verdict(one_rule(when.clone()), event.clone()) == Verdict::Route("hit".into());
    assert_eq!(got, expected, "{when} on {event}");
}

fn check_config_error(config: Value, field: &str, message_part: &str) {
    let err = Harness::<Route>::new(config.clone())
        .err()
        .expect("config refused");
    assert_eq!(err.field, field, "{config}: {err}");
    assert!(err.message.contains(message_part), "{config}: {err}");
}

/// An event id that looks like a UUID, different for each `n`.
fn uuid_like(n: u64) -> String {
    // splitmix64, so the ids are spread like random ones.
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        z >> 32,
        (z >> 16) & 0xffff,
        z & 0xfff,
        (n >> 8) & 0xfff,
        n & 0xffff_ffff_ffff
    )
}

/// Leaves for matching without the harness.
struct Leaves(Vec<(&'static str, ValueRef<'static>)>);

impl Fields for Leaves {
    fn value(&self, path: &str) -> Option<ValueRef<'_>> {
        self.0.iter().find(|(p, _)| *p == path).map(|(_, v)| *v)
    }
    fn exists(&self, path: &str) -> bool {
        self.0.iter().any(|(p, _)| *p == path || is_under(p, path))
    }
}

#[test]
fn values_compare_by_type_and_value() {
    assert!(value_equals(&json!("error"), ValueRef::String("error")));
    assert!(!value_equals(&json!("error"), ValueRef::String("Error")));
    assert!(!value_equals(&json!("5"), ValueRef::Number("5")));
    assert!(value_equals(&json!(5), ValueRef::Number("5")));
    assert!(value_equals(&json!(5), ValueRef::Number("5.0")));
    assert!(value_equals(&json!(5.5), ValueRef::Number("5.5")));
    assert!(!value_equals(&json!(5), ValueRef::Number("6")));
    assert!(value_equals(
        &json!(u64::MAX),
        ValueRef::Number("18446744073709551615")
    ));
    assert!(value_equals(&json!(true), ValueRef::Bool(true)));
    assert!(!value_equals(&json!(true), ValueRef::String("true")));
    assert!(value_equals(&json!(null), ValueRef::Null));
    assert!(!value_equals(&json!(null), ValueRef::String("")));
}

#[test]
fn destinations_are_checked() {
    for ok in [
        "errors",
        "a",
        "audit_log",
        "eu-west-1",
        "0",
        &"x".repeat(64),
    ] {
        assert_eq!(check_destination(ok), Ok(()), "{ok}");
    }
    for bad in [
        "",
        "Errors",
        "a b",
        "a.b",
        "dlq",
        "ünï",
        "a/b",
        &"x".repeat(65),
    ] {
        assert!(check_destination(bad).is_err(), "{bad}");
    }
}

#[test]
fn sampling_is_deterministic() {
    for n in [1, 2, 10, 100] {
        for i in 0..200 {
            let id = uuid_like(i);
            assert_eq!(sample_keeps(&id, n), sample_keeps(&id, n), "{id}");
        }
    }
    // keep_one_in = 1 keeps everything.
    assert!((0..100).all(|i| sample_keeps(&uuid_like(i), 1)));
    // One in N is kept, roughly.
    for n in [2u64, 10, 100] {
        let kept = (0..10_000)
            .filter(|&i| sample_keeps(&uuid_like(i), n))
            .count() as u64;
        let expected = 10_000 / n;
        assert!(
            kept > expected * 7 / 10 && kept < expected * 13 / 10,
            "1 in {n}: kept {kept} of 10000"
        );
    }
    // Sequential ids (same prefix) are spread as well.
    let kept = (0..10_000)
        .filter(|i| sample_keeps(&format!("0192f0c1-7c4e-7a3b-9c1d-{i:012x}"), 10))
        .count();
    assert!((700..1300).contains(&kept), "sequential ids: kept {kept}");
    // Kept at 1 in 100 implies kept at 1 in 10: the decisions nest.
    for i in 0..10_000 {
        let id = uuid_like(i);
        if sample_keeps(&id, 100) {
            assert!(sample_keeps(&id, 10));
        }
    }
}

#[test]
fn sampling_through_the_plugin() {
    let config = json!({"rules": [{"when": {"field": "level", "equals": "debug"},
                                    "then": {"sample": {"keep_one_in": 10}}}]});
    let events: Vec<Value> = (0..2_000)
        .map(|i| json!({"event_id": uuid_like(i), "level": "debug"}))
        .collect();
    let mut h = harness(config.clone());
    let first: Vec<Verdict> = h
        .run(events.clone())
        .into_iter()
        .map(|p| p.verdict)
        .collect();
    // A retry (a fresh plugin instance, too) agrees on every event.
    let mut again = harness(config);
    let second: Vec<Verdict> = again.run(events).into_iter().map(|p| p.verdict).collect();
    assert_eq!(first, second);
    let kept = first.iter().filter(|v| **v == Verdict::Keep).count();
    assert!((120..280).contains(&kept), "kept {kept} of 2000");
    assert!(
        first.iter().all(
            |v| *v == Verdict::Keep || *v == Verdict::Drop("sampled out (keep 1 in 10)".into())
        )
    );
    let c = again.counters();
    assert_eq!(c["sampled_in"] as usize, kept);
    assert_eq!(c["sampled_out"] as usize, 2_000 - kept);
    assert_eq!(c.get("routed"), None);
}

#[test]
fn sampling_with_a_route_and_without_an_id() {
    let config = json!({"rules": [{"when": {"field": "level", "equals": "debug"},
                                    "then": {"sample": {"keep_one_in": 3, "route": "debug-sample"}}}]});
    let mut h = harness(config);
    let out = h.run(
        (0..300)
            .map(|i| json!({"event_id": uuid_like(i), "level": "debug"}))
            .collect(),
    );
    for (i, p) in out.iter().enumerate() {
        let expected = if sample_keeps(&uuid_like(i as u64), 3) {
            Verdict::Route("debug-sample".into())
        } else {
            Verdict::Drop("sampled out (keep 1 in 3)".into())
        };
        assert_eq!(p.verdict, expected);
    }
    let routed = h.counters()["routed"];
    assert_eq!(h.counters()["sampled_in"], routed);
    // No event_id: kept (and routed).
    assert_eq!(
        h.run_one(json!({"level": "debug"})).verdict,
        Verdict::Route("debug-sample".into())
    );
    assert_eq!(
        h.run_one(json!({"level": "debug", "event_id": null}))
            .verdict,
        Verdict::Route("debug-sample".into())
    );
}

#[test]
fn equals_and_in() {
    check_match(
        json!({"field": "level", "equals": "error"}),
        json!({"level": "error"}),
        true,
    );
    check_match(
        json!({"field": "level", "equals": "error"}),
        json!({"level": "info"}),
        false,
    );
    check_match(
        json!({"field": "level", "equals": "error"}),
        json!({}),
        false,
    );
    check_match(json!({"field": "n", "equals": 3}), json!({"n": 3.0}), true);
    check_match(json!({"field": "n", "equals": 3}), json!({"n": "3"}), false);
    check_match(
        json!({"field": "ok", "equals": false}),
        json!({"ok": false}),
        true,
    );
    check_match(
        json!({"field": "x", "equals": null}),
        json!({"x": null}),
        true,
    );
    check_match(json!({"field": "x", "equals": null}), json!({}), false);
    check_match(
        json!({"field": "context.os", "equals": "linux"}),
        json!({"context": {"os": "linux"}}),
        true,
    );
    check_match(
        json!({"field": "tags[1]", "equals": "b"}),
        json!({"tags": ["a", "b"]}),
        true,
    );
    check_match(
        json!({"field": "a\\.b", "equals": 1}),
        json!({"a.b": 1}),
        true,
    );
    check_match(
        json!({"field": "a.b", "equals": 1}),
        json!({"a.b": 1}),
        false,
    );
    let within = json!({"field": "level", "in": ["error", "critical", "fatal"]});
    check_match(within.clone(), json!({"level": "critical"}), true);
    check_match(within.clone(), json!({"level": "warning"}), false);
    check_match(within, json!({}), false);
    check_match(
        json!({"field": "code", "in": [1, "1"]}),
        json!({"code": 1}),
        true,
    );
}

#[test]
fn prefix_and_regex() {
    let prefix = json!({"field": "tool", "prefix": "migrate"});
    check_match(prefix.clone(), json!({"tool": "migrateiq"}), true);
    check_match(prefix.clone(), json!({"tool": "premigrate"}), false);
    check_match(prefix.clone(), json!({"tool": 5}), false);
    check_match(prefix, json!({}), false);
    let regex = json!({"field": "command", "regex": "^scan"});
    check_match(regex.clone(), json!({"command": "scan --all"}), true);
    check_match(regex.clone(), json!({"command": "rescan"}), false);
    check_match(regex, json!({"command": ["scan"]}), false);
    // Unanchored patterns search anywhere.
    check_match(
        json!({"field": "command", "regex": "sc[a-z]n"}),
        json!({"command": "rescan"}),
        true,
    );
}

#[test]
fn exists() {
    let present = json!({"field": "context.ci", "exists": true});
    check_match(present.clone(), json!({"context": {"ci": true}}), true);
    check_match(present.clone(), json!({"context": {"ci": null}}), true);
    check_match(
        present.clone(),
        json!({"context": {"ci": {"provider": "gha"}}}),
        true,
    );
    check_match(present.clone(), json!({"context": {"ci": []}}), true);
    check_match(present.clone(), json!({"context": {"ci": ["x"]}}), true);
    check_match(present.clone(), json!({"context": {"cid": 1}}), false);
    check_match(present, json!({"context": {}}), false);
    check_match(
        json!({"field": "context", "exists": true}),
        json!({"context": {"os": "x"}}),
        true,
    );
    let absent = json!({"field": "context.ci", "exists": false});
    check_match(absent.clone(), json!({"context": {"os": "linux"}}), true);
    check_match(absent, json!({"context": {"ci": "1"}}), false);
}

#[test]
fn all_any_not() {
    let all = json!({"all": [
        {"field": "level", "in": ["error", "critical"]},
        {"field": "tool", "prefix": "migrate"}
    ]});
    check_match(
        all.clone(),
        json!({"level": "error", "tool": "migrateiq"}),
        true,
    );
    check_match(
        all.clone(),
        json!({"level": "error", "tool": "other"}),
        false,
    );
    check_match(all, json!({"level": "info", "tool": "migrateiq"}), false);
    let any = json!({"any": [
        {"field": "level", "equals": "fatal"},
        {"field": "context.ci", "exists": true}
    ]});
    check_match(any.clone(), json!({"level": "fatal"}), true);
    check_match(
        any.clone(),
        json!({"level": "info", "context": {"ci": true}}),
        true,
    );
    check_match(any, json!({"level": "info"}), false);
    let nested = json!({"all": [
        {"not": {"field": "level", "equals": "debug"}},
        {"any": [{"field": "command", "regex": "^scan"}, {"field": "command", "regex": "^migrate"}]}
    ]});
    check_match(
        nested.clone(),
        json!({"level": "info", "command": "migrate up"}),
        true,
    );
    check_match(
        nested.clone(),
        json!({"level": "debug", "command": "migrate up"}),
        false,
    );
    check_match(nested, json!({"level": "info", "command": "help"}), false);
}

#[test]
fn matchers_work_on_any_fields_source() {
    let m = Matcher::compile(
        &json!({"all": [{"field": "level", "equals": "error"}, {"field": "context.ci", "exists": true}]}),
        "when",
    )
    .unwrap();
    let hit = Leaves(vec![
        ("level", ValueRef::String("error")),
        ("context.ci.provider", ValueRef::String("gha")),
    ]);
    let miss = Leaves(vec![
        ("level", ValueRef::String("error")),
        ("context.cid", ValueRef::Bool(true)),
    ]);
    assert!(m.matches(&hit));
    assert!(!m.matches(&miss));
    assert!(is_under("a.b", "a"));
    assert!(is_under("a[0]", "a"));
    assert!(!is_under("a", "a"));
    assert!(!is_under("ab", "a"));
}

#[test]
fn first_match_wins_and_keep_stops() {
    let config = json!({
        "rules": [
            {"when": {"field": "tool", "equals": "internal"}, "then": "keep"},
            {"when": {"field": "level", "in": ["error", "critical", "fatal"]}, "then": {"route": "errors"}},
            {"when": {"field": "level", "equals": "debug"}, "then": {"drop": "debug is not collected"}},
            {"when": {"field": "level", "equals": "error"}, "then": {"route": "never"}}
        ],
        "default": {"route": "main"}
    });
    let mut h = harness(config);
    let out = h.run(vec![
        json!({"tool": "internal", "level": "error"}),
        json!({"tool": "x", "level": "error"}),
        json!({"tool": "x", "level": "debug"}),
        json!({"tool": "x", "level": "info"}),
    ]);
    let verdicts: Vec<_> = out.into_iter().map(|p| p.verdict).collect();
    assert_eq!(
        verdicts,
        vec![
            Verdict::Keep,
            Verdict::Route("errors".into()),
            Verdict::Drop("debug is not collected".into()),
            Verdict::Route("main".into()),
        ]
    );
    let c = h.counters();
    assert_eq!(c["routed"], 2);
    assert_eq!(c["dropped"], 1);
    assert_eq!(c.get("sampled_out"), None);
}

#[test]
fn actions_and_defaults() {
    let rule =
        |then: Value| json!({"rules": [{"when": {"field": "a", "exists": true}, "then": then}]});
    assert_eq!(
        verdict(rule(json!("drop")), json!({"a": 1})),
        Verdict::Drop("dropped by route rules[0]".into())
    );
    assert_eq!(
        verdict(rule(json!({"drop": null})), json!({"a": 1})),
        Verdict::Drop("dropped by route rules[0]".into())
    );
    assert_eq!(
        verdict(rule(json!({"drop": "noise"})), json!({"a": 1})),
        Verdict::Drop("noise".into())
    );
    assert_eq!(verdict(rule(json!("keep")), json!({"a": 1})), Verdict::Keep);
    assert_eq!(
        verdict(rule(json!({"route": "x"})), json!({"b": 1})),
        Verdict::Keep,
        "default keep"
    );
    // No rules at all: everything is kept.
    assert_eq!(verdict(json!({}), json!({"a": 1})), Verdict::Keep);
    assert_eq!(
        verdict(json!({"default": "keep"}), json!({})),
        Verdict::Keep
    );
    assert_eq!(verdict(json!({"default": null}), json!({})), Verdict::Keep);
    assert_eq!(
        verdict(json!({"default": "drop"}), json!({})),
        Verdict::Drop("dropped by route default".into())
    );
    assert_eq!(
        verdict(json!({"default": {"route": "rest"}}), json!({})),
        Verdict::Route("rest".into())
    );
    let sampled = json!({"default": {"sample": {"keep_one_in": 1000000}}});
    let id = (0..)
        .map(uuid_like)
        .find(|id| !sample_keeps(id, 1_000_000))
        .unwrap();
    assert_eq!(
        verdict(sampled, json!({"event_id": id})),
        Verdict::Drop("sampled out (keep 1 in 1000000)".into())
    );
}

#[test]
fn router_compiles_actions() {
    let r = Router::new(&Settings {
        rules: vec![RuleSettings {
            when: json!({"field": "level", "equals": "error"}),
            then: json!({"sample": {"keep_one_in": 5, "route": "errs"}}),
        }],
        default: None,
    })
    .unwrap();
    assert_eq!(
        r.rules[0].then,
        Action::Sample {
            keep_one_in: 5,
            route: Some("errs".into())
        }
    );
    assert_eq!(r.default, Action::Keep);
    let event = Leaves(vec![("level", ValueRef::String("error"))]);
    assert_eq!(
        r.decide(&event),
        Decision {
            verdict: Verdict::Route("errs".into()),
            counters: &["sampled_in", "routed"]
        }
    );
}

#[test]
fn config_errors_name_the_field() {
    let rule = |when: Value, then: Value| json!({"rules": [{"when": {"field": "a", "exists": true}, "then": "keep"}, {"when": when, "then": then}]});
    let ok_when = json!({"field": "level", "equals": "error"});
    // Actions.
    check_config_error(
        rule(ok_when.clone(), json!({"route": "Errors"})),
        "rules[1].then.route",
        "a-z",
    );
    check_config_error(
        rule(ok_when.clone(), json!({"route": "dlq"})),
        "rules[1].then.route",
        "dead-letter",
    );
    check_config_error(
        rule(ok_when.clone(), json!({"route": ""})),
        "rules[1].then.route",
        "1 to 64",
    );
    check_config_error(
        rule(ok_when.clone(), json!({"route": 5})),
        "rules[1].then.route",
        "string",
    );
    check_config_error(
        rule(ok_when.clone(), json!({"sample": {"keep_one_in": 0}})),
        "rules[1].then.sample.keep_one_in",
        "at least 1",
    );
    check_config_error(
        rule(ok_when.clone(), json!({"sample": {"keep_one_in": 2.5}})),
        "rules[1].then.sample.keep_one_in",
        "whole number",
    );
    check_config_error(
        rule(ok_when.clone(), json!({"sample": {}})),
        "rules[1].then.sample.keep_one_in",
        "required",
    );
    check_config_error(
        rule(
            ok_when.clone(),
            json!({"sample": {"keep_one_in": 2, "route": "a b"}}),
        ),
        "rules[1].then.sample.route",
        "a-z",
    );
    check_config_error(
        rule(
            ok_when.clone(),
            json!({"sample": {"keep_one_in": 2, "rate": 1}}),
        ),
        "rules[1].then.sample.rate",
        "unknown key",
    );
    check_config_error(
        rule(ok_when.clone(), json!({"sample": 10})),
        "rules[1].then.sample",
        "object",
    );
    check_config_error(
        rule(ok_when.clone(), json!({"drop": 5})),
        "rules[1].then.drop",
        "reason",
    );
    check_config_error(
        rule(ok_when.clone(), json!({"drop": ""})),
        "rules[1].then.drop",
        "reason",
    );
    check_config_error(
        rule(ok_when.clone(), json!({"forward": "x"})),
        "rules[1].then.forward",
        "unknown action",
    );
    check_config_error(
        rule(ok_when.clone(), json!({"route": "a", "drop": "b"})),
        "rules[1].then",
        "exactly one",
    );
    check_config_error(
        rule(ok_when.clone(), json!({})),
        "rules[1].then",
        "exactly one",
    );
    check_config_error(
        rule(ok_when.clone(), json!("route")),
        "rules[1].then",
        "an action is",
    );
    check_config_error(
        json!({"default": {"route": "dlq"}}),
        "default.route",
        "dead-letter",
    );
    check_config_error(json!({"default": "skip"}), "default", "an action is");
    // Conditions.
    let then = json!("keep");
    check_config_error(
        rule(json!({"field": "command", "regex": "(["}), then.clone()),
        "rules[1].when.regex",
        "invalid regular expression",
    );
    check_config_error(
        rule(json!({"field": "command", "regex": 1}), then.clone()),
        "rules[1].when.regex",
        "string",
    );
    check_config_error(
        rule(json!({"equals": "x"}), then.clone()),
        "rules[1].when.field",
        "required",
    );
    check_config_error(
        rule(json!({"field": 1, "equals": "x"}), then.clone()),
        "rules[1].when.field",
        "path",
    );
    check_config_error(
        rule(json!({"field": "a..b", "equals": "x"}), then.clone()),
        "rules[1].when.field",
        "path",
    );
    check_config_error(
        rule(json!({"field": "a"}), then.clone()),
        "rules[1].when",
        "exactly one",
    );
    check_config_error(
        rule(
            json!({"field": "a", "equals": 1, "prefix": "x"}),
            then.clone(),
        ),
        "rules[1].when",
        "got equals, prefix",
    );
    check_config_error(
        rule(json!({"field": "a", "equal": 1}), then.clone()),
        "rules[1].when.equal",
        "unknown key",
    );
    check_config_error(
        rule(json!({"field": "a", "equals": [1]}), then.clone()),
        "rules[1].when.equals",
        "string, number",
    );
    check_config_error(
        rule(json!({"field": "a", "in": []}), then.clone()),
        "rules[1].when.in",
        "non-empty",
    );
    check_config_error(
        rule(json!({"field": "a", "in": [1, {}]}), then.clone()),
        "rules[1].when.in[1]",
        "string, number",
    );
    check_config_error(
        rule(json!({"field": "a", "prefix": 1}), then.clone()),
        "rules[1].when.prefix",
        "string",
    );
    check_config_error(
        rule(json!({"field": "a", "exists": "yes"}), then.clone()),
        "rules[1].when.exists",
        "true or false",
    );
    check_config_error(
        rule(json!("level == error"), then.clone()),
        "rules[1].when",
        "a condition is",
    );
    check_config_error(
        rule(json!({"all": []}), then.clone()),
        "rules[1].when.all",
        "non-empty",
    );
    check_config_error(
        rule(json!({"any": {}}), then.clone()),
        "rules[1].when.any",
        "non-empty",
    );
    check_config_error(
        rule(
            json!({"all": [{"field": "a", "exists": true}, {"any": [{"field": "b", "regex": "+"}]}]}),
            then.clone(),
        ),
        "rules[1].when.all[1].any[0].regex",
        "invalid regular expression",
    );
    check_config_error(
        rule(json!({"not": {"field": "a"}}), then.clone()),
        "rules[1].when.not",
        "exactly one",
    );
    check_config_error(
        rule(
            json!({"all": [{"field": "a", "exists": true}], "field": "b"}),
            then.clone(),
        ),
        "rules[1].when",
        "only key",
    );
    // Structure (reported by serde).
    check_config_error(
        json!({"rules": [{"when": {"field": "a", "exists": true}}]}),
        "rules[0].then",
        "missing field `then`",
    );
    check_config_error(
        json!({"rules": [{"when": {}, "then": "keep", "name": "x"}]}),
        "rules[0].name",
        "unknown field",
    );
    check_config_error(json!({"rule": []}), "rule", "unknown field");
    check_config_error(json!({"rules": {}}), "rules", "invalid type");
}

/// The config of every ```toml example in the README, as the gateway hands it
/// to the plugin.
fn readme_configs() -> Vec<Value> {
    wraith_plugin::testing::configs_in_markdown(include_str!("../README.md"), "route").unwrap()
}

#[test]
fn readme_examples_are_valid_configs() {
    let configs = readme_configs();
    assert!(configs.len() >= 2);
    for config in configs {
        if let Err(e) = Harness::<Route>::new(config.clone()) {
            panic!("{config}: {e}");
        }
    }
}

#[test]
fn readme_examples_behave_as_documented() {
    let configs = readme_configs();
    let mut h = harness(configs[0].clone());
    let ci_id = (0..)
        .map(uuid_like)
        .find(|id| sample_keeps(id, 10))
        .unwrap();
    let out: Vec<Verdict> = h
        .run(vec![
            json!({"tool": "internal-probe", "level": "error"}),
            json!({"tool": "x", "level": "critical"}),
            json!({"tool": "x", "level": "debug"}),
            json!({"event_type": "tool_invoked", "event_id": ci_id, "context": {"ci": {"provider": "gha"}}}),
            json!({"event_type": "tool_invoked", "level": "info"}),
        ])
        .into_iter()
        .map(|p| p.verdict)
        .collect();
    assert_eq!(
        out,
        vec![
            Verdict::Keep,
            Verdict::Route("errors".into()),
            Verdict::Drop("debug events are not collected".into()),
            Verdict::Route("ci".into()),
            Verdict::Keep,
        ]
    );
    let last = configs.last().unwrap().clone();
    let mut h = harness(last);
    assert_eq!(
        h.run_one(json!({"command": "ping"})).verdict,
        Verdict::Drop("health check".into())
    );
    assert_eq!(
        h.run_one(json!({"event_type": "tool_invoked", "context": {"ci": true}}))
            .verdict,
        Verdict::Route("main".into())
    );
}
