use super::*;
use serde_json::json;
use wraith_plugin::testing::Harness;

fn harness(config: Value) -> Harness<SchemaValidate> {
    Harness::new(config).unwrap()
}

/// The envelope every ingested event has.
fn base(event_type: &str, fields: Value) -> Value {
    let mut e = json!({
        "event_id": "0192f0c1-7c4e-7a3b-9c1d-2f3e4a5b6c7d",
        "timestamp": "2025-01-01T00:00:00Z",
        "level": "info",
        "event_type": event_type,
        "context": {"installation_id": "inst-1", "tool_version": "1.4.2", "os": "linux"},
    });
    for (k, v) in fields.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

/// Run `event` through the default config and compare the verdict.
fn check(event: Value, expected: Verdict) {
    let mut h = harness(json!({}));
    let out = h.run_one(event.clone());
    assert_eq!(out.verdict, expected, "{event}");
}

fn check_valid(event: Value) {
    check(event, Verdict::Keep);
}

fn check_rejected(event: Value, reason: &str) {
    check(event, Verdict::Reject(reason.into()));
}

fn check_config_error(config: Value, field: &str, message_part: &str) {
    let err = Harness::<SchemaValidate>::new(config.clone())
        .err()
        .expect("config refused");
    assert_eq!(err.field, field, "{config}: {err}");
    assert!(err.message.contains(message_part), "{config}: {err}");
}

#[test]
fn builtin_schemas_compile() {
    for (name, text) in BUILTIN {
        let v: Value = serde_json::from_str(text).unwrap();
        Schema::compile(&v, name).unwrap();
    }
    let v = Validator::new(&Settings {
        mode: Mode::Reject,
        unknown_event_types: UnknownEventTypes::Allow,
        schemas: Map::new(),
        builtin: true,
    })
    .unwrap();
    for t in [
        "tool_invoked",
        "tool_succeeded",
        "tool_failed",
        "exception_unhandled",
        "validation_failed",
        "daemon_started",
        "daemon_stopping",
    ] {
        assert!(v.knows(t), "{t}");
    }
}

#[test]
fn seed_event_types_valid() {
    check_valid(base(
        "tool_invoked",
        json!({"tool": "migrateiq", "command": "scan"}),
    ));
    check_valid(base(
        "tool_succeeded",
        json!({"tool": "migrateiq", "command": "scan", "duration_ms": 1234}),
    ));
    check_valid(base(
        "tool_succeeded",
        json!({"tool": "migrateiq", "command": "scan", "duration_ms": 0.5}),
    ));
    check_valid(base(
        "tool_failed",
        json!({"tool": "migrateiq", "command": "scan", "error_type": "Timeout", "duration_ms": 10, "level": "error"}),
    ));
    check_valid(base(
        "exception_unhandled",
        json!({"tool": "migrateiq", "exception_type": "KeyError", "level": "critical"}),
    ));
    check_valid(base(
        "exception_unhandled",
        json!({"tool": "migrateiq", "exception_type": "KeyError", "traceback": "File x, line 1"}),
    ));
    check_valid(base(
        "validation_failed",
        json!({"tool": "t", "validation_type": "schema"}),
    ));
    check_valid(base(
        "validation_failed",
        json!({"tool": "t", "validation_type": "schema", "details": {"field": "x"}}),
    ));
    check_valid(base(
        "validation_failed",
        json!({"tool": "t", "validation_type": "s", "details": "bad"}),
    ));
    check_valid(base("daemon_started", json!({"parent_pid": 4242})));
    check_valid(base("daemon_stopping", json!({"reason": "SIGTERM"})));
    // Extra fields are fine: the seed schemas are open.
    check_valid(base(
        "tool_invoked",
        json!({"tool": "t", "command": "c", "extra": {"deep": [1, 2]}, "_wraith": {"labels": {"a": "b"}}}),
    ));
    // The envelope fields are optional; only event_type is required.
    check_valid(json!({"event_type": "daemon_stopping", "reason": "idle"}));
}

#[test]
fn seed_event_types_invalid() {
    check_rejected(
        base("tool_invoked", json!({"command": "scan"})),
        "tool: required",
    );
    check_rejected(
        base("tool_invoked", json!({})),
        "tool: required; command: required",
    );
    check_rejected(
        base("tool_invoked", json!({"tool": "", "command": "scan"})),
        "tool: minLength 1, got 0",
    );
    check_rejected(
        base("tool_succeeded", json!({"tool": "t", "command": "c"})),
        "duration_ms: required",
    );
    check_rejected(
        base(
            "tool_succeeded",
            json!({"tool": "t", "command": "c", "duration_ms": -5}),
        ),
        "duration_ms: minimum 0, got -5",
    );
    check_rejected(
        base(
            "tool_succeeded",
            json!({"tool": "t", "command": "c", "duration_ms": "5"}),
        ),
        r#"duration_ms: type number, got "5""#,
    );
    check_rejected(
        base(
            "tool_failed",
            json!({"tool": "t", "command": "c", "duration_ms": 1}),
        ),
        "error_type: required",
    );
    check_rejected(
        base(
            "tool_failed",
            json!({"tool": "t", "command": "c", "duration_ms": 1, "error_type": 7}),
        ),
        "error_type: type string, got 7",
    );
    check_rejected(
        base("exception_unhandled", json!({"tool": "t"})),
        "exception_type: required",
    );
    check_rejected(
        base(
            "exception_unhandled",
            json!({"tool": "t", "exception_type": "E", "traceback": ["a"]}),
        ),
        "traceback: type string, got an array",
    );
    check_rejected(
        base("validation_failed", json!({"tool": "t"})),
        "validation_type: required",
    );
    check_rejected(
        base(
            "validation_failed",
            json!({"tool": "t", "validation_type": "v", "details": 3}),
        ),
        "details: type string|object|array, got 3",
    );
    check_rejected(base("daemon_started", json!({})), "parent_pid: required");
    check_rejected(
        base("daemon_started", json!({"parent_pid": 12.5})),
        "parent_pid: type integer, got 12.5",
    );
    check_rejected(
        base("daemon_started", json!({"parent_pid": "12"})),
        r#"parent_pid: type integer, got "12""#,
    );
    check_rejected(
        base("daemon_stopping", json!({"reason": null})),
        "reason: type string, got null",
    );
}

#[test]
fn envelope_rules() {
    check_rejected(
        base("custom", json!({"level": "verbose"})),
        r#"level: enum ["debug","info","warning","error","critical","fatal"], got "verbose""#,
    );
    check_rejected(
        base("custom", json!({"duration_ms": -1})),
        "duration_ms: minimum 0, got -1",
    );
    check_rejected(
        base("custom", json!({"context": "linux"})),
        r#"context: type object, got "linux""#,
    );
    check_rejected(
        base(
            "custom",
            json!({"context": {"os": 5, "tool_version": 1.4, "other": 3}}),
        ),
        // In the order the schema lists the properties.
        "context.tool_version: type string, got 1.4; context.os: type string, got 5",
    );
    check_rejected(
        base("custom", json!({"tool": 5})),
        "tool: type string, got 5",
    );
    check_rejected(base("custom", json!({"event_id": "nope"})), {
        r#"event_id: pattern ^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$, got "nope""#
    });
    check_rejected(json!({"tool": "t"}), "event_type: required");
    // An empty context is an object.
    check_valid(base("custom", json!({"context": {}})));
    // The envelope and the type schema agree: one error, not two.
    check_rejected(
        base(
            "tool_succeeded",
            json!({"tool": "t", "command": "c", "duration_ms": -5}),
        ),
        "duration_ms: minimum 0, got -5",
    );
}

#[test]
fn tag_mode_keeps_and_lists_errors() {
    let mut h = harness(json!({"mode": "tag"}));
    let out = h.run_one(base("tool_failed", json!({"tool": 1, "duration_ms": -5})));
    assert_eq!(out.verdict, Verdict::Keep);
    assert_eq!(
        out.event["_wraith"]["schema_errors"],
        json!([
            "tool: type string, got 1",
            "duration_ms: minimum 0, got -5",
            "command: required",
            "error_type: required",
        ])
    );
    assert_eq!(out.event["tool"], 1, "the event is otherwise untouched");
    let ok = h.run_one(base("tool_invoked", json!({"tool": "t", "command": "c"})));
    assert_eq!(ok.verdict, Verdict::Keep);
    assert!(ok.event.get("_wraith").is_none());
    assert_eq!(h.counters().get("schema_tagged"), Some(&1));
    assert_eq!(h.counters().get("schema_rejected"), None);
}

#[test]
fn reject_mode_counts() {
    let mut h = harness(json!({"mode": "reject"}));
    let out = h.run(vec![
        base("tool_invoked", json!({})),
        base("tool_invoked", json!({"tool": "t", "command": "c"})),
        base("daemon_started", json!({})),
    ]);
    assert!(matches!(out[0].verdict, Verdict::Reject(_)));
    assert_eq!(out[1].verdict, Verdict::Keep);
    assert!(matches!(out[2].verdict, Verdict::Reject(_)));
    assert_eq!(h.counters()["schema_rejected"], 2);
}

#[test]
fn unknown_event_types() {
    let mut allow = harness(json!({}));
    assert_eq!(
        allow.run_one(base("brand_new", json!({"x": 1}))).verdict,
        Verdict::Keep
    );

    let mut reject = harness(json!({"unknown_event_types": "reject"}));
    assert_eq!(
        reject.run_one(base("brand_new", json!({}))).verdict,
        Verdict::Reject(r#"event_type: no schema for "brand_new""#.into())
    );
    assert_eq!(
        reject
            .run_one(base("tool_invoked", json!({"tool": "t", "command": "c"})))
            .verdict,
        Verdict::Keep
    );

    // Without the envelope, a missing or odd event_type is still caught.
    let mut bare = harness(json!({"builtin": false, "unknown_event_types": "reject"}));
    assert_eq!(
        bare.run_one(json!({"tool": "t"})).verdict,
        Verdict::Reject("event_type: required".into())
    );
    assert_eq!(
        bare.run_one(json!({"event_type": 3})).verdict,
        Verdict::Reject("event_type: type string, got 3".into())
    );
}

#[test]
fn operator_schemas_add_and_override() {
    let mut h = harness(json!({
        "schemas": {
            "tool_invoked": {"required": ["tool"], "properties": {"command": {"pattern": "^[a-z]+$"}}},
            "deploy": {
                "type": "object",
                "required": ["target"],
                "properties": {"target": {"enum": ["staging", "prod"]}, "replicas": {"type": "integer", "maximum": 10}},
                "additionalProperties": false
            }
        }
    }));
    // The override replaces the built-in: command is no longer required...
    assert_eq!(
        h.run_one(base("tool_invoked", json!({"tool": "t"})))
            .verdict,
        Verdict::Keep
    );
    // ...but must match the new pattern.
    assert_eq!(
        h.run_one(base(
            "tool_invoked",
            json!({"tool": "t", "command": "Scan"})
        ))
        .verdict,
        Verdict::Reject(r#"command: pattern ^[a-z]+$, got "Scan""#.into())
    );
    // The new type: envelope fields and _wraith are not "additional" properties.
    assert_eq!(
        h.run_one(base(
            "deploy",
            json!({"target": "prod", "replicas": 3, "_wraith": {"x": 1}})
        ))
        .verdict,
        Verdict::Keep
    );
    assert_eq!(
        h.run_one(base("deploy", json!({"target": "dev", "replicas": 11, "extra": true}))).verdict,
        Verdict::Reject(
            r#"target: enum ["staging","prod"], got "dev"; replicas: maximum 10, got 11; extra: additionalProperties false"#
                .into()
        )
    );
    // Other built-ins are still there.
    assert_eq!(
        h.run_one(base("daemon_started", json!({}))).verdict,
        Verdict::Reject("parent_pid: required".into())
    );
}

#[test]
fn envelope_override_and_builtin_off() {
    let mut h = harness(json!({"schemas": {"*": {"required": ["event_type", "level"]}}}));
    assert_eq!(
        h.run_one(json!({"event_type": "custom"})).verdict,
        Verdict::Reject("level: required".into())
    );
    // The built-in envelope is gone: a negative duration is fine now.
    assert_eq!(
        h.run_one(json!({"event_type": "custom", "level": "info", "duration_ms": -1}))
            .verdict,
        Verdict::Keep
    );

    let mut off = harness(json!({"builtin": false}));
    assert_eq!(
        off.run_one(json!({"event_type": "tool_invoked"})).verdict,
        Verdict::Keep
    );
    assert_eq!(
        off.run_one(json!({"event_type": "x", "level": "loud"}))
            .verdict,
        Verdict::Keep
    );

    // A closed envelope still lets the type schema's fields through.
    let mut closed = harness(json!({
        "builtin": false,
        "schemas": {
            "*": {"properties": {"event_type": {}}, "additionalProperties": false},
            "a": {"properties": {"x": {}}}
        }
    }));
    assert_eq!(
        closed.run_one(json!({"event_type": "a", "x": 1})).verdict,
        Verdict::Keep
    );
    assert_eq!(
        closed.run_one(json!({"event_type": "a", "y": 1})).verdict,
        Verdict::Reject("y: additionalProperties false".into())
    );
}

#[test]
fn escaped_and_nested_paths_in_errors() {
    let mut h = harness(json!({
        "builtin": false,
        "schemas": {"t": {"properties": {
            "a.b": {"type": "string"},
            "frames": {"items": {"required": ["file"], "properties": {"line": {"type": "integer"}}}}
        }}}
    }));
    assert_eq!(
        h.run_one(json!({"event_type": "t", "a.b": 1, "frames": [{"file": "x", "line": 1}, {"line": "2"}]}))
            .verdict,
        Verdict::Reject(r#"a\.b: type string, got 1; frames[1].file: required; frames[1].line: type integer, got "2""#.into())
    );
}

#[test]
fn many_errors_are_capped() {
    let mut h = harness(json!({"mode": "tag", "builtin": false,
        "schemas": {"t": {"properties": {"event_type": {}}, "additionalProperties": false}}}));
    let mut event = json!({"event_type": "t"});
    for i in 0..100 {
        event[format!("k{i}")] = json!(i);
    }
    let out = h.run_one(event);
    let list = out.event["_wraith"]["schema_errors"].as_array().unwrap();
    assert_eq!(list.len(), MAX_ERRORS + 1);
    assert_eq!(list[MAX_ERRORS], "(more errors not shown)");

    let mut errors = Errors::default();
    errors.push("a", "required".into());
    assert_eq!(reject_reason(&errors), "a: required");
}

#[test]
fn rebuilds_events_from_leaves() {
    let event = json!({
        "event_type": "t", "n": -1.5, "b": true, "z": null, "empty": {}, "none": [],
        "context": {"os": "linux", "deep": {"x": [1, {"y": "z"}]}}, "dot.key": "v"
    });
    // Through the harness, the plugin sees (and validates) the same value.
    let mut h = harness(json!({"builtin": false, "schemas": {"t": {
        "properties": {
            "n": {"maximum": -2},
            "empty": {"type": "object"},
            "none": {"type": "array"},
            "z": {"type": "null"},
            "b": {"type": "boolean"},
            "context": {"properties": {"deep": {"properties": {"x": {"items": {"type": "integer"}}}}}},
            "dot.key": {"enum": ["w"]}
        }
    }}}));
    assert_eq!(
        h.run_one(event).verdict,
        Verdict::Reject(
            r#"n: maximum -2, got -1.5; context.deep.x[1]: type integer, got an object; dot\.key: enum ["w"], got "v""#
                .into()
        )
    );
    assert_eq!(event_from_leaves(std::iter::empty()), json!({}));
}

#[test]
fn config_errors_name_the_field() {
    check_config_error(json!({"mode": "warn"}), "mode", "unknown variant `warn`");
    check_config_error(
        json!({"unknown_event_types": "drop"}),
        "unknown_event_types",
        "unknown variant",
    );
    check_config_error(json!({"builtin": "yes"}), "builtin", "invalid type");
    check_config_error(json!({"schema": {}}), "schema", "unknown field `schema`");
    check_config_error(json!({"schemas": []}), "schemas", "invalid type");
    check_config_error(json!({"schemas": {"": {}}}), "schemas", "must not be empty");
    check_config_error(json!({"schemas": {"t": 5}}), "schemas.t", "JSON object");
    check_config_error(
        json!({"schemas": {"t": {"properties": {"command": {"pattern": "[unclosed"}}}}}),
        "schemas.t.properties.command.pattern",
        "invalid regular expression",
    );
    check_config_error(
        json!({"schemas": {"t": {"properties": {"x": {"format": "email"}}}}}),
        "schemas.t.properties.x.format",
        "unknown keyword `format`",
    );
    check_config_error(
        json!({"schemas": {"*": {"type": "thing"}}}),
        "schemas.*.type",
        "must be one of",
    );
    check_config_error(
        json!({"schemas": {"tool_invoked": {"required": "tool"}}}),
        "schemas.tool_invoked.required",
        "array",
    );
}

/// The config of every ```toml example in the README, as the gateway hands it
/// to the plugin.
fn readme_configs() -> Vec<Value> {
    wraith_plugin::testing::configs_in_markdown(include_str!("../README.md"), "schema-validate")
        .unwrap()
}

#[test]
fn readme_examples_are_valid_configs() {
    let configs = readme_configs();
    assert!(configs.len() >= 2);
    for config in configs {
        if let Err(e) = Harness::<SchemaValidate>::new(config.clone()) {
            panic!("{config}: {e}");
        }
    }
}

#[test]
fn readme_examples_behave_as_documented() {
    let configs = readme_configs();
    let mut h = harness(configs[0].clone());
    assert_eq!(
        h.run_one(base("deploy", json!({"target": "prod", "replicas": 3})))
            .verdict,
        Verdict::Keep
    );
    assert_eq!(
        h.run_one(base("deploy", json!({"target": "prod", "replicas": 0})))
            .verdict,
        Verdict::Reject("replicas: minimum 1, got 0".into())
    );
    let mut h = harness(configs[1].clone());
    assert_eq!(
        h.run_one(base("brand_new", json!({}))).verdict,
        Verdict::Reject(r#"event_type: no schema for "brand_new""#.into())
    );
    let mut h = harness(configs[2].clone());
    let out = h
        .run_one(json!({"event_type": "tool_invoked", "tool": "Bad Tool", "command": "c", "x": 1}));
    assert_eq!(out.verdict, Verdict::Keep);
    assert_eq!(
        out.event["_wraith"]["schema_errors"],
        json!([
            r#"tool: pattern ^[a-z][a-z0-9-]*$, got "Bad Tool""#,
            "x: additionalProperties false"
        ])
    );
    let mut h = harness(configs[3].clone());
    assert_eq!(
        h.run_one(json!({"event_type": "x"})).verdict,
        Verdict::Reject("level: required".into())
    );
}

/// The fast path (validation from the leaves) must never call valid what
/// the full check refuses, and must recognise the valid events it is for.
#[test]
fn fast_path_agrees_with_the_full_check() {
    let closed = json!({"schemas": {
        "*": {"type": "object", "additionalProperties": false, "properties": {
            "tool": {"type": "string"}, "context": {"type": "object", "additionalProperties": false,
                "properties": {"os": {"enum": ["linux", "macos"]}, "n": {"type": "integer", "minimum": 1}}}}},
        "deploy": {"type": "object", "required": ["target"], "properties": {
            "target": {"enum": ["staging", "prod", 3, true, null]},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 4}},
            "nested": {"type": "object", "required": ["a"], "properties": {"a": {"type": ["integer", "null"]}}},
            "count": {"type": "integer", "minimum": -3, "maximum": 10},
            "ratio": {"type": "number", "maximum": 2.5},
            "env": {"type": "string", "enum": ["dev", "prod"]},
            "flag": {"type": ["boolean", "null", "string"]}}},
    }});
    let validators: Vec<Validator> = [json!({}), json!({"unknown_event_types": "reject"}), closed]
        .iter()
        .map(|c| Validator::new(&serde_json::from_value(c.clone()).unwrap()).unwrap())
        .collect();
    let mut events = vec![
        base("tool_invoked", json!({"tool": "t", "command": "c"})),
        base(
            "tool_failed",
            json!({"tool": "t", "command": "c", "error_type": "E", "duration_ms": 3.0}),
        ),
        base(
            "tool_failed",
            json!({"tool": "t", "command": "c", "error_type": "E", "duration_ms": -1}),
        ),
        base(
            "tool_succeeded",
            json!({"tool": "t", "command": "c", "duration_ms": "5"}),
        ),
        base("tool_invoked", json!({"tool": "", "command": "c"})),
        base("tool_invoked", json!({"command": "c"})),
        base(
            "exception_unhandled",
            json!({"tool": "t", "exception_type": "E", "traceback": 3}),
        ),
        base("brand_new", json!({"anything": {"deep": [1, {"x": null}]}})),
        json!({"event_type": 7, "level": "info"}),
        json!({"event_type": {"nested": "tool_invoked"}}),
        json!({"level": "INFO", "event_type": "tool_invoked", "tool": "t", "command": "c"}),
        json!({}),
        json!({"event_type": "deploy", "target": "prod"}),
        json!({"event_type": "deploy", "target": 3.0}),
        json!({"event_type": "deploy", "target": true}),
        json!({"event_type": "deploy", "target": false}),
        json!({"event_type": "deploy", "target": null}),
        json!({"event_type": "deploy", "target": ["prod"]}),
        json!({"event_type": "deploy", "target": {}}),
        json!({"event_type": "deploy"}),
        json!({"event_type": "deploy", "target": "prod", "tags": ["a", "bb"]}),
        json!({"event_type": "deploy", "target": "prod", "tags": ["a", "toolong"]}),
        json!({"event_type": "deploy", "target": "prod", "tags": []}),
        json!({"event_type": "deploy", "target": "prod", "tags": {}}),
        json!({"event_type": "deploy", "target": "prod", "nested": {}}),
        json!({"event_type": "deploy", "target": "prod", "nested": {"a": null}}),
        json!({"event_type": "deploy", "target": "prod", "nested": {"a": 1.5}}),
        json!({"event_type": "deploy", "target": "prod", "tool": "t", "context": {"os": "linux", "n": 2}}),
        json!({"event_type": "deploy", "target": "prod", "context": {"os": "windows"}}),
        json!({"event_type": "deploy", "target": "prod", "context": {"n": 0}}),
        json!({"event_type": "deploy", "target": "prod", "context": {"extra": 1}}),
        json!({"event_type": "deploy", "target": "prod", "extra": 1}),
        json!({"event_type": "deploy", "target": "prod", "_wraith": {"x": 1}}),
        json!({"event_type": "deploy", "target": "prod", "a.b": 1, "c[0]": 2, "d\\e": 3}),
        json!({"event_type": "deploy", "target": "prod", "tool": "t", "too": 1, "tools": 2}),
        json!({"event_type": "deploy", "target": "prod", "": 1}),
        // Lengths in characters, not bytes (maxLength 4).
        json!({"event_type": "deploy", "target": "prod", "tags": ["éééé", "日本語", "😀😀😀😀"]}),
        json!({"event_type": "deploy", "target": "prod", "tags": ["ééééé"]}),
        json!({"event_type": "deploy", "target": "prod", "tags": ["😀😀😀😀😀"]}),
        json!({"event_type": "deploy", "target": "prod", "tags": ["abcd", "abcde"]}),
        json!({"event_type": "tool_invoked", "tool": "t", "command": "c", "level": "info"}),
        json!({"event_type": "", "tool": "t"}),
        json!({"event_type": "é", "tool": "t"}),
        // Numbers: plain integers are read directly, the rest by serde_json.
        json!({"event_type": "deploy", "target": "prod", "context": {"n": 1}}),
        json!({"event_type": "deploy", "target": "prod", "context": {"n": -0.0}}),
        json!({"event_type": "deploy", "target": "prod", "context": {"n": -5}}),
        json!({"event_type": "deploy", "target": "prod", "context": {"n": 123456789012345678u64}}),
        json!({"event_type": "deploy", "target": "prod", "context": {"n": 18446744073709551615u64}}),
        json!({"event_type": "deploy", "target": "prod", "context": {"n": 2.5}}),
        json!({"event_type": "deploy", "target": "prod", "context": {"n": 1e300}}),
        json!({"event_type": "deploy", "target": 3}),
        json!({"event_type": "deploy", "target": -3}),
        // Bounds read from plain integers, and from the rest by the schema.
        json!({"event_type": "deploy", "target": "prod", "count": -3}),
        json!({"event_type": "deploy", "target": "prod", "count": -4}),
        json!({"event_type": "deploy", "target": "prod", "count": 10}),
        json!({"event_type": "deploy", "target": "prod", "count": 11}),
        json!({"event_type": "deploy", "target": "prod", "count": 0}),
        json!({"event_type": "deploy", "target": "prod", "count": 10.0}),
        json!({"event_type": "deploy", "target": "prod", "count": 9.5}),
        json!({"event_type": "deploy", "target": "prod", "count": -0.0}),
        json!({"event_type": "deploy", "target": "prod", "count": 123456789012345678901u128 as f64}),
        json!({"event_type": "deploy", "target": "prod", "count": "5"}),
        json!({"event_type": "deploy", "target": "prod", "count": null}),
        json!({"event_type": "deploy", "target": "prod", "ratio": 2}),
        json!({"event_type": "deploy", "target": "prod", "ratio": 3}),
        json!({"event_type": "deploy", "target": "prod", "ratio": 2.5}),
        json!({"event_type": "deploy", "target": "prod", "ratio": 2.6}),
        json!({"event_type": "deploy", "target": "prod", "env": "dev"}),
        json!({"event_type": "deploy", "target": "prod", "env": "de"}),
        json!({"event_type": "deploy", "target": "prod", "env": "production"}),
        json!({"event_type": "deploy", "target": "prod", "env": 1}),
        json!({"event_type": "deploy", "target": "prod", "env": {}}),
        json!({"event_type": "deploy", "target": "prod", "flag": true}),
        json!({"event_type": "deploy", "target": "prod", "flag": null}),
        json!({"event_type": "deploy", "target": "prod", "flag": ""}),
        json!({"event_type": "deploy", "target": "prod", "flag": 0}),
        json!({"event_type": "deploy", "target": "prod", "flag": []}),
        json!({"event_type": "tool_failed", "tool": "t", "command": "c", "error_type": "E", "duration_ms": 0}),
        json!({"event_type": "tool_failed", "tool": "t", "command": "c", "error_type": "E", "duration_ms": -0.0}),
        json!({"event_type": "tool_failed", "tool": "t", "command": "c", "error_type": "E", "duration_ms": -7}),
        json!({"event_type": "tool_failed", "tool": "t", "command": "c", "error_type": "E", "duration_ms": 99999999999999999999u128 as f64}),
    ];
    for mut e in events.clone() {
        if let Some(obj) = e.as_object_mut() {
            obj.remove("event_id");
            obj.insert(
                "context".into(),
                json!({"os": ["linux"], "installation_id": 5}),
            );
        }
        events.push(e);
    }
    let mut fast = 0;
    let mut plans: Vec<_> = validators
        .iter()
        .map(|_| crate::plan::Plans::default())
        .collect();
    for (k, v) in validators.iter().enumerate() {
        for e in &events {
            let batch = wraith_event::flat::FlatBatch::encode([e]);
            let view = batch.view();
            let leaves: Vec<_> = view.event(0).leaves().collect();
            let valid = v.check(e).is_empty();
            let accepted = v.accepts(&leaves);
            assert!(
                !accepted || valid,
                "validator {k} calls {e} valid: {:?}",
                v.check(e)
            );
            // Twice: the plan made, then the plan used.
            for _ in 0..2 {
                assert_eq!(
                    v.accepts_remembered(&leaves, &mut plans[k]),
                    accepted,
                    "validator {k}, remembered, on {e}"
                );
            }
            // Escaped keys and empty keys are left to the full check.
            if valid && plain_keys(e) {
                assert!(
                    accepted,
                    "validator {k}: the fast path misses the valid {e}"
                );
            }
            fast += accepted as usize;
        }
    }
    assert!(fast > 20, "only {fast} events took the fast path");
}

/// Random events against schemas with every keyword the fast path reads:
/// it never calls an invalid event valid, and it decides every valid event
/// with plain keys.
#[test]
fn fast_path_agrees_with_the_full_check_on_random_events() {
    let config = json!({"unknown_event_types": "reject", "schemas": {
        "*": {"type": "object", "required": ["event_type"], "properties": {
            "event_type": {"type": "string", "minLength": 2},
            "tool": {"type": "string", "maxLength": 3},
            "n": {"type": ["integer", "null"], "minimum": 0, "maximum": 9},
            "level": {"enum": ["info", "error", 1, null]},
            "id": {"pattern": "^[a-f]+$"},
            "context": {"type": "object", "properties": {
                "os": {"type": "string"}, "deep": {"type": "object", "additionalProperties": false,
                    "properties": {"x": {"type": "boolean"}}}}},
            "tags": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "grid": {"items": {"items": {"type": "number"}}}}},
        "closed": {"type": "object", "additionalProperties": false, "required": ["tool"],
            "properties": {"tool": {"type": "string"}, "extra": {"type": "object"}}},
        "open": {"type": "object", "properties": {"tool": {"enum": ["a", "b"]}}},
    }});
    let v = Validator::new(&serde_json::from_value(config).unwrap()).unwrap();
    let keys = [
        "event_type",
        "tool",
        "n",
        "level",
        "id",
        "context",
        "tags",
        "grid",
        "extra",
        "other",
        "os",
        "deep",
        "x",
        "_wraith",
        "event_id",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    fn value(next: &mut dyn FnMut(u64) -> u64, keys: &[&str], depth: u32) -> Value {
        match next(if depth > 2 { 8 } else { 10 }) {
            0 => Value::Null,
            1 => json!(next(2) == 0),
            2 => json!(next(20) as i64 - 5),
            3 => json!(next(20) as f64 / 4.0),
            4 => json!(
                [
                    "", "a", "ab", "abc", "abcd", "info", "error", "fed", "é", "zz"
                ][next(10) as usize]
            ),
            5 => json!({}),
            6 => json!([]),
            7 => json!(["tool_invoked", "closed", "open", "nope"][next(4) as usize]),
            8 => {
                let mut m = serde_json::Map::new();
                for _ in 0..next(4) {
                    m.insert(
                        keys[next(keys.len() as u64) as usize].into(),
                        value(next, keys, depth + 1),
                    );
                }
                Value::Object(m)
            }
            _ => Value::Array((0..next(3)).map(|_| value(next, keys, depth + 1)).collect()),
        }
    }
    /// The same structure with other leaf values: every leaf (a scalar,
    /// `{}` or `[]`) replaced by a random one, `event_type` included.
    fn revalue(next: &mut dyn FnMut(u64) -> u64, keys: &[&str], v: &Value) -> Value {
        match v {
            Value::Object(m) if !m.is_empty() => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), revalue(next, keys, v)))
                    .collect(),
            ),
            Value::Array(a) if !a.is_empty() => {
                Value::Array(a.iter().map(|v| revalue(next, keys, v)).collect())
            }
            // At depth 3 the generator makes leaves only.
            _ => value(next, keys, 3),
        }
    }
    let mut plans = crate::plan::Plans::default();
    let mut remembered_valid = 0;
    let (mut decided, mut valid_count) = (0, 0);
    for _ in 0..20_000 {
        let mut event = serde_json::Map::new();
        event.insert(
            "event_type".into(),
            json!(["tool_invoked", "closed", "open", "x"][next(4) as usize]),
        );
        for _ in 0..next(5) {
            event.insert(
                keys[next(keys.len() as u64) as usize].into(),
                value(&mut next, &keys, 1),
            );
        }
        let e = Value::Object(event);
        let batch = wraith_event::flat::FlatBatch::encode([&e]);
        let view = batch.view();
        let leaves: Vec<_> = view.event(0).leaves().collect();
        let valid = v.check(&e).is_empty();
        let accepted = v.accepts(&leaves);
        assert!(
            !accepted || valid,
            "the fast path calls {e} valid: {:?}",
            v.check(&e)
        );
        if valid {
            valid_count += 1;
            // The generated keys are never escaped or empty.
            assert!(accepted, "the fast path misses the valid {e}");
        }
        decided += accepted as usize;
        // The remembered structures give the same answers, for this event
        // and for others of its structure.
        let mut same_structure = vec![e.clone()];
        same_structure.extend((0..3).map(|_| revalue(&mut next, &keys, &e)));
        for e in &same_structure {
            let batch = wraith_event::flat::FlatBatch::encode([e]);
            let view = batch.view();
            let leaves: Vec<_> = view.event(0).leaves().collect();
            let accepted = v.accepts(&leaves);
            assert_eq!(
                v.accepts_remembered(&leaves, &mut plans),
                accepted,
                "a remembered structure decides {e} otherwise"
            );
            remembered_valid += accepted as usize;
        }
    }
    assert!(valid_count > 1_000, "only {valid_count} valid events");
    assert_eq!(decided, valid_count);
    let (hits, misses) = plans.hits_and_misses();
    assert!(
        hits > 20_000 && remembered_valid > valid_count + 500,
        "{hits} hits, {misses} misses, {remembered_valid} valid"
    );
}

/// Whether no key of `v` is empty or needs escaping in a path.
fn plain_keys(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .all(|(k, v)| !k.is_empty() && !k.contains(['.', '[', ']', '\\']) && plain_keys(v)),
        Value::Array(a) => a.iter().all(plain_keys),
        _ => true,
    }
}
