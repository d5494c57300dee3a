//! The SDK's own behaviour, through `testing::Harness`: what a plugin reads
//! after its own edits, what happens to edits under each verdict, typed
//! setters, config errors, and per-harness counters.

use serde_json::{Value, json};
use wraith_plugin::testing::{Harness, Processed};
use wraith_plugin::{Config, ConfigError, Event, LogLevel, Plugin, ValueRef, Verdict};

/// A plugin whose behaviour each event asks for in its `op` field.
struct Scripted {
    tag: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    tag: String,
    #[serde(default)]
    #[allow(dead_code)]
    limits: Option<Limits>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Limits {
    max: u32,
}

impl Plugin for Scripted {
    fn init(config: Config) -> Result<Self, ConfigError> {
        let s: Settings = config.parse()?;
        wraith_plugin::log(LogLevel::Info, "scripted ready");
        Ok(Scripted { tag: s.tag })
    }

    fn process(&mut self, event: &mut Event<'_>) -> Verdict {
        wraith_plugin::counter("seen", 1);
        event.set_str("tag", &self.tag);
        match event.get_str("op").unwrap_or("") {
            "read-own-edit" => {
                event.set_str("context.os", "linux");
                let seen = event.get_str("context.os").map(str::to_string);
                event.set_str("seen", seen.as_deref().unwrap_or("none"));
                event.remove("secret");
                let gone = event.get("secret").is_none();
                event.set_bool("secret_gone", gone);
                Verdict::Keep
            }
            "typed" => {
                event.set_i64("n.int", -42);
                event.set_i64("n.zero", 0);
                event.set_i64("n.min", i64::MIN);
                event.set_i64("n.max", i64::MAX);
                event.set_f64("n.float", 2.5);
                event.set_f64("n.nan", f64::NAN);
                event.set_bool("n.flag", true);
                event.set_json("n.obj", &json!({"a": [1, {"b": null}]}));
                event.set("n.null", ValueRef::Null);
                Verdict::Keep
            }
            "drop" => Verdict::Drop("asked to".into()),
            "reject" => Verdict::Reject("invalid on purpose".into()),
            "route" => Verdict::Route("audit".into()),
            "leaves" => {
                let paths: Vec<String> = event.leaves().map(|l| l.path.to_string()).collect();
                event.set_json("paths", &json!(paths));
                Verdict::Keep
            }
            _ => Verdict::Keep,
        }
    }
}

fn harness() -> Harness<Scripted> {
    Harness::new(json!({"tag": "t1"})).unwrap()
}

fn run(op: &str, extra: Value) -> Processed {
    let mut e = json!({"event_type": "x", "op": op});
    e.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    harness().run_one(e)
}

#[test]
fn a_plugin_reads_its_own_edits() {
    let out = run(
        "read-own-edit",
        json!({"context": {"os": "Linux 6.1"}, "secret": "x"}),
    );
    assert_eq!(out.verdict, Verdict::Keep);
    assert_eq!(out.event["seen"], "linux");
    assert_eq!(out.event["secret_gone"], true);
    assert_eq!(out.event["context"]["os"], "linux");
    assert!(out.event.get("secret").is_none(), "{}", out.event);
}

#[test]
fn typed_setters_write_json_types() {
    let out = run("typed", json!({}));
    assert_eq!(
        out.event["n"],
        json!({"int": -42, "zero": 0, "min": i64::MIN, "max": i64::MAX, "float": 2.5, "nan": null, "flag": true, "obj": {"a": [1, {"b": null}]}, "null": null})
    );
}

#[test]
fn edits_survive_keep_and_route_but_not_drop_or_reject() {
    let out = run("route", json!({}));
    assert_eq!(out.verdict, Verdict::Route("audit".into()));
    assert_eq!(out.event["tag"], "t1");
    for (op, verdict) in [
        ("drop", Verdict::Drop("asked to".into())),
        ("reject", Verdict::Reject("invalid on purpose".into())),
    ] {
        let out = run(op, json!({}));
        assert_eq!(out.verdict, verdict);
        assert_eq!(
            out.event,
            json!({"event_type": "x", "op": op}),
            "edits of a {op}ped event came back"
        );
    }
}

#[test]
fn verdicts_and_edits_stay_with_their_event_in_a_batch() {
    let mut h = harness();
    let out = h.run(vec![
        json!({"op": "drop"}),
        json!({"op": "typed"}),
        json!({"op": "reject"}),
        json!({"op": "route"}),
        json!({"op": "keep"}),
    ]);
    let verdicts: Vec<&Verdict> = out.iter().map(|p| &p.verdict).collect();
    assert_eq!(
        verdicts,
        [
            &Verdict::Drop("asked to".into()),
            &Verdict::Keep,
            &Verdict::Reject("invalid on purpose".into()),
            &Verdict::Route("audit".into()),
            &Verdict::Keep,
        ]
    );
    assert!(out[0].event.get("tag").is_none());
    assert_eq!(out[1].event["n"]["int"], -42);
    assert!(out[2].event.get("tag").is_none());
    assert_eq!(out[3].event["tag"], "t1");
    assert_eq!(out[4].event["tag"], "t1");
    assert!(
        out[4].event.get("n").is_none(),
        "an edit leaked across events"
    );
    assert_eq!(h.counters()["seen"], 5);
}

#[test]
fn leaves_are_every_scalar_with_its_dotted_path() {
    let out = run(
        "leaves",
        json!({"context": {"os": "linux", "empty": {}}, "tags": ["a", "b"], "a.b": 1}),
    );
    let mut paths: Vec<String> = serde_json::from_value(out.event["paths"].clone()).unwrap();
    paths.sort();
    assert_eq!(
        paths,
        [
            "a\\.b",
            "context.empty",
            "context.os",
            "event_type",
            "op",
            "tags[0]",
            "tags[1]"
        ]
    );
}

#[test]
fn config_errors_name_the_field() {
    let check = |config: Value, field: &str, needle: &str| {
        let err = Harness::<Scripted>::new(config.clone()).err().unwrap();
        assert_eq!(err.field, field, "{config}: {err}");
        assert!(err.message.contains(needle), "{config}: {err}");
    };
    check(json!({}), "tag", "missing field `tag`");
    check(json!({"tag": 5}), "tag", "expected a string");
    check(
        json!({"tag": "x", "limits": {}}),
        "limits.max",
        "missing field",
    );
    check(
        json!({"tag": "x", "limits": {"max": -1}}),
        "limits.max",
        "invalid value",
    );
    check(json!({"tag": "x", "tga": 1}), "tga", "unknown field `tga`");
    let err = ConfigError::new("limits.max", "must be positive");
    assert_eq!(err.to_string(), "limits.max: must be positive");
    assert_eq!(ConfigError::new("", "bad").to_string(), "bad");
}

#[test]
fn each_harness_keeps_its_own_counters_and_logs() {
    let mut a = harness();
    let mut b = harness();
    a.run(vec![json!({}), json!({})]);
    b.run(vec![json!({})]);
    a.run(vec![json!({})]);
    assert_eq!(a.counters()["seen"], 3);
    assert_eq!(b.counters()["seen"], 1);
    assert_eq!(
        a.logs(),
        [(LogLevel::Info, "scripted ready".to_string())],
        "init's log line is recorded once, by its own harness"
    );
    assert_eq!(b.logs().len(), 1);
}
