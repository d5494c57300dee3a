//! The shared test vectors (`sdk/vectors/*.json`), run through
//! `testing::Harness`: the same cases the Python and JavaScript SDKs pass,
//! so what a plugin reads and what the gateway stores after its edits is one
//! behaviour in three languages. `sdk/vectors/README.md` describes the format.

use serde_json::{Value, json};
use std::path::PathBuf;
use wraith_plugin::testing::Harness;
use wraith_plugin::{Config, ConfigError, Event, Plugin, ValueRef, Verdict};

/// Does to each event what the case's `ops` say for its index.
struct Scripted {
    ops: Vec<Vec<Value>>,
}

impl Plugin for Scripted {
    fn init(config: Config) -> Result<Self, ConfigError> {
        let ops = config
            .value()
            .get("ops")
            .cloned()
            .unwrap_or_else(|| json!([]));
        let ops =
            serde_json::from_value(ops).map_err(|e| ConfigError::new("ops", e.to_string()))?;
        Ok(Scripted { ops })
    }

    fn process(&mut self, event: &mut Event<'_>) -> Verdict {
        let ops = self
            .ops
            .get(event.index() as usize)
            .cloned()
            .unwrap_or_default();
        for op in &ops {
            let s = |k: &str| {
                op[k]
                    .as_str()
                    .unwrap_or_else(|| panic!("op {op} lacks {k}"))
            };
            if op.get("set").is_some() {
                set(event, s("set"), &op["value"]);
            } else if op.get("remove").is_some() {
                event.remove(s("remove"));
            } else if op.get("copy").is_some() {
                let read = event
                    .get(s("copy"))
                    .map(|v| v.to_value().expect("a leaf's value is JSON"));
                set(event, s("to"), &read.unwrap_or_else(|| json!("<missing>")));
            } else if op.get("has").is_some() {
                let has = event.get(s("has")).is_some();
                event.set_bool(s("to"), has);
            } else if op.get("strings").is_some() {
                let walk: Vec<Value> = event
                    .leaves()
                    .filter_map(|l| l.value.as_str().map(|t| json!([l.path, t])))
                    .collect();
                event.set_json(s("strings"), &Value::Array(walk));
            } else if op.get("leaves").is_some() {
                let paths: Vec<&str> = event.leaves().map(|l| l.path).collect();
                event.set_json(s("leaves"), &json!(paths));
            } else if op.get("verdict").is_some() {
                let value = s("value").to_string();
                return match s("verdict") {
                    "drop" => Verdict::Drop(value),
                    "reject" => Verdict::Reject(value),
                    "route" => Verdict::Route(value),
                    other => panic!("unknown verdict {other}"),
                };
            } else {
                panic!("unknown op {op}");
            }
        }
        Verdict::Keep
    }
}

/// Set through the typed setter for the value's type, as the other SDKs do.
fn set(event: &mut Event<'_>, path: &str, value: &Value) {
    match value {
        Value::Null => event.set(path, ValueRef::Null),
        Value::Bool(b) => event.set_bool(path, *b),
        Value::String(t) => event.set_str(path, t),
        Value::Number(n) => event.set(path, ValueRef::Number(&n.to_string())),
        other => event.set_json(path, other),
    }
}

fn verdict_json(v: &Verdict) -> Value {
    match v {
        Verdict::Keep => json!("keep"),
        Verdict::Drop(r) => json!({"drop": r}),
        Verdict::Reject(r) => json!({"reject": r}),
        Verdict::Route(r) => json!({"route": r}),
    }
}

#[test]
fn every_shared_vector_passes() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut cases = 0;
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let list: Vec<Value> = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
        for case in list {
            cases += 1;
            let name = format!(
                "{}: {}",
                file.file_name().unwrap().to_string_lossy(),
                case["name"].as_str().unwrap()
            );
            let mut h = Harness::<Scripted>::new(json!({"ops": case["ops"]})).unwrap();
            let events: Vec<Value> = serde_json::from_value(case["events"].clone()).unwrap();
            let out = h.run(events);
            let expect = case["expect"].as_array().unwrap();
            assert_eq!(out.len(), expect.len(), "{name}");
            for (i, (got, want)) in out.iter().zip(expect).enumerate() {
                let (gv, wv) = (verdict_json(&got.verdict), &want["verdict"]);
                let (ge, we) = (
                    serde_json::to_string(&got.event).unwrap(),
                    serde_json::to_string(&want["event"]).unwrap(),
                );
                // An exact text, where given, pins how numbers are written.
                let we = want["json"].as_str().map(str::to_string).unwrap_or(we);
                if &gv != wv || ge != we {
                    failures.push(format!(
                        "{name}, event {i}:\n  verdict {gv}, expected {wv}\n  stored   {ge}\n  expected {we}"
                    ));
                }
            }
        }
    }
    assert!(cases > 10, "only {cases} vectors in {}", dir.display());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
