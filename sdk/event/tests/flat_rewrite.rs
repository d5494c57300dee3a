//! The flat rewrite and the JSON writer against the JSON-value route they
//! replace in the gateway: for random events and random edits, editing the
//! leaves gives the leaves of the edited value, and the text written from
//! leaves is the text `serde_json` writes for the value.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use wraith_event::flat::{
    EditBuffer, Edits, FlatBatch, LineWriter, Rewriter, ValueRef, lossless, to_value, write_event,
};
use wraith_event::path::{self, Segment};

/// Keys drawn from a small set, so that edits often meet existing fields;
/// some need escapes in a path, some are not ASCII.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("ctx".to_string()),
        Just("a.b".to_string()),
        Just("x[1]".to_string()),
        Just("back\\slash".to_string()),
        Just("é\"q".to_string()),
        Just("_client".to_string()),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        Just(json!(1e300)),
        "[a-z0-9 \\\\\"\\n\\t\u{1}é€😀]{0,12}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn event() -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), value()), 0..6)
        .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>()))
}

fn edit_path() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => key().prop_map(Segment::Key),
            1 => (0usize..4).prop_map(Segment::Index),
        ],
        1..4,
    )
    .prop_map(|s| path::render(&s))
}

#[derive(Debug, Clone)]
enum Op {
    Set(String, Value),
    Remove(String),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (edit_path(), value()).prop_map(|(p, v)| Op::Set(p, v)),
        1 => edit_path().prop_map(Op::Remove),
    ]
}

fn buffer(ops: &[Op]) -> EditBuffer {
    let mut b = EditBuffer::default();
    for o in ops {
        match o {
            Op::Remove(p) => b.remove(0, p),
            Op::Set(p, v) => {
                let text = v.to_string();
                let value = match v {
                    Value::Null => ValueRef::Null,
                    Value::Bool(x) => ValueRef::Bool(*x),
                    Value::Number(_) => ValueRef::Number(&text),
                    Value::String(s) => ValueRef::String(s),
                    _ => ValueRef::Json(&text),
                };
                b.set(0, p, value);
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn text_from_leaves_is_serde_json_text(event in event()) {
        let batch = FlatBatch::encode([&event]);
        let mut out = Vec::new();
        write_event(&batch.view().event(0), &mut out);
        prop_assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&event).unwrap()
        );
        prop_assert_eq!(to_value(&batch.view().event(0)), event);
    }

    #[test]
    fn one_writer_serves_a_batch_of_lines(events in prop::collection::vec(event(), 1..6)) {
        // What one line leaves in the writer's lists must not reach the next.
        let batch = FlatBatch::encode(&events);
        let view = batch.view();
        let mut writer = LineWriter::default();
        for (i, event) in events.iter().enumerate() {
            let mut out = b"before".to_vec();
            writer.write(&view.event(i), &mut out);
            prop_assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("before{}", serde_json::to_string(event).unwrap())
            );
        }
    }

    #[test]
    fn flat_edits_give_the_edited_value(event in event(), ops in prop::collection::vec(op(), 1..6)) {
        let edits = buffer(&ops);
        let checked = Edits::check(&edits.edits, &edits.data, 1).unwrap();
        let mut expected = event.clone();
        checked.apply_event(0, &mut expected);

        let before = FlatBatch::encode([&event]);
        let mut after = FlatBatch::default();
        let rewritten = Rewriter::default().push_edited(&mut after, &before.view().event(0), &checked, 0);
        let unsupported_op = ops.iter().any(|o| match o {
            Op::Remove(p) => p.ends_with(']'),
            Op::Set(_, v) => !lossless(v),
        });
        if rewritten.is_err() {
            // Only what the rewrite leaves to the JSON route.
            prop_assert!(unsupported_op, "refused {:?} on {}", ops, event);
            prop_assert_eq!(after, FlatBatch::default());
        } else {
            prop_assert_eq!(&after, &FlatBatch::encode([&expected]), "{:?} on {}", ops, event);
            let mut out = Vec::new();
            write_event(&after.view().event(0), &mut out);
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&expected).unwrap());
        }
    }
}

#[test]
fn the_rewrite_appends_after_the_events_already_there() {
    let events = [json!({"a": 1, "b": {"c": "x"}}), json!({"a": [1, 2]})];
    let batch = FlatBatch::encode(&events);
    let mut edits = EditBuffer::default();
    edits.set(1, "a[2]", ValueRef::String("three"));
    edits.set(1, "n.m", ValueRef::Number("1.50"));
    edits.remove(0, "b.c");
    let checked = Edits::check(&edits.edits, &edits.data, 2).unwrap();
    let mut rw = Rewriter::default();
    let mut next = FlatBatch::default();
    for i in 0..2 {
        rw.push_edited(&mut next, &batch.view().event(i), &checked, i)
            .unwrap();
    }
    let expected = [
        json!({"a": 1, "b": {}}),
        json!({"a": [1, 2, "three"], "n": {"m": 1.5}}),
    ];
    assert_eq!(next, FlatBatch::encode(&expected));
}

#[test]
fn malformed_edits_are_refused_as_before() {
    let mut edits = EditBuffer::default();
    edits.set(0, "a..b", ValueRef::Null);
    let e = Edits::check(&edits.edits, &edits.data, 1).unwrap_err();
    assert!(e.to_string().contains("empty key"), "{e}");
    let mut edits = EditBuffer::default();
    edits.set(3, "a", ValueRef::Null);
    let e = Edits::check(&edits.edits, &edits.data, 2).unwrap_err();
    assert_eq!(
        e.to_string(),
        "edit 0 names event 3, but the batch has 2 events"
    );
    let mut edits = EditBuffer::default();
    edits.set(0, "a", ValueRef::Number("1x"));
    let e = Edits::check(&edits.edits, &edits.data, 1).unwrap_err();
    assert!(e.to_string().contains("not a JSON number"), "{e}");
}
