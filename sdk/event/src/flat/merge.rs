//! Edits applied to an event in the flat layout, without a JSON tree: what
//! the host does to carry an edited event over to the next plugin's batch.
//!
//! The result is the flat encoding of the event that [`super::apply_edits`]
//! would give on its JSON value (same leaves, same order): a set on a new
//! key lands after its object's last leaf, a scalar or empty container in
//! the way is replaced, an object left without keys becomes `{}`. Edits
//! that address array elements by index are not handled here; for those
//! [`FlatBatch::push_edited`] answers `false` and the caller encodes the
//! edited JSON value instead.

use super::{EDIT_WORDS, EVENT_WORDS, FlatBatch, LEAF_WORDS, ValueRef, kind, op};
use crate::path::{self, SegmentRef};
use serde_json::Value;
use std::borrow::Cow;

/// One leaf being rebuilt: escaped path, kind, value bytes; borrowed from
/// the source batch unless an edit made it.
#[derive(Debug, Clone)]
struct Leaf<'a> {
    path: Cow<'a, str>,
    kind: u32,
    value: Cow<'a, [u8]>,
}

/// Whether a leaf's path is `p` itself, or lies under it.
fn at_or_under(leaf: &str, p: &str) -> (bool, bool) {
    if leaf == p {
        return (true, false);
    }
    let under = p.is_empty()
        || (leaf.len() > p.len()
            && leaf.starts_with(p)
            && matches!(leaf.as_bytes()[p.len()], b'.' | b'['));
    (false, under)
}

/// One edit, read for the flat layout: canonical escaped path, and the
/// value for a set.
#[derive(Debug, Clone)]
pub struct FlatEdit {
    path: String,
    value: Option<Value>,
}

impl FlatEdit {
    /// Read an edit; `None` when its path holds an array index (not handled
    /// in the flat layout) or does not parse.
    fn read(path_text: &str, value: Option<ValueRef<'_>>) -> Option<FlatEdit> {
        let mut segments: Vec<SegmentRef<'_>> = Vec::new();
        path::parse_into(path_text, &mut segments).ok()?;
        let mut canonical = String::with_capacity(path_text.len());
        for s in &segments {
            match s {
                SegmentRef::Key(k) => path::push_key(&mut canonical, k),
                SegmentRef::Index(_) => return None,
            }
        }
        let value = match value {
            Some(v) => Some(v.to_value().ok()?),
            None => None,
        };
        Some(FlatEdit {
            path: canonical,
            value,
        })
    }
}

/// The end of the parent's part of `p` (its last unescaped dot), or `None`
/// for a top-level key.
fn parent_end(p: &str) -> Option<usize> {
    let b = p.as_bytes();
    let mut last = None;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'.' => last = Some(i),
            _ => {}
        }
        i += 1;
    }
    last
}

/// The leaves a value makes at `path`.
fn leaves_of(path: &str, value: &Value, out: &mut Vec<Leaf<'_>>) {
    match value {
        Value::String(s) => out.push(Leaf {
            path: Cow::Owned(path.to_string()),
            kind: kind::STRING,
            value: Cow::Owned(s.as_bytes().to_vec()),
        }),
        _ => {
            let mut batch = FlatBatch::default();
            let mut p = path.to_string();
            batch.push_value(value, &mut p);
            for w in batch.leaves.chunks_exact(LEAF_WORDS) {
                let text =
                    |off: u32, len: u32| batch.data[off as usize..(off + len) as usize].to_vec();
                out.push(Leaf {
                    path: Cow::Owned(String::from_utf8(text(w[0], w[1])).expect("paths are UTF-8")),
                    kind: w[2],
                    value: Cow::Owned(text(w[3], w[4])),
                });
            }
        }
    }
}

/// Apply one edit; `false` when it is one the flat layout does not handle.
fn apply(leaves: &mut Vec<Leaf<'_>>, edit: &FlatEdit) -> bool {
    let p = edit.path.as_str();
    // Where the path is now: one leaf at it, or a run of leaves under it.
    let mut first = None;
    let mut last = 0;
    for (i, l) in leaves.iter().enumerate() {
        let (at, under) = at_or_under(&l.path, p);
        if at || under {
            first.get_or_insert(i);
            last = i;
        }
    }
    match &edit.value {
        Some(value) => {
            let mut new = Vec::new();
            leaves_of(p, value, &mut new);
            if let Some(first) = first {
                leaves.splice(first..=last, new);
                return true;
            }
            // A new key: find the nearest ancestor that exists.
            let mut end = parent_end(p);
            loop {
                let a = end.map_or("", |e| &p[..e]);
                let mut at = None;
                let mut under = None;
                for (i, l) in leaves.iter().enumerate() {
                    match at_or_under(&l.path, a) {
                        (true, _) => at = Some(i),
                        (false, true) => {
                            if under.is_none()
                                && !a.is_empty()
                                && l.path.as_bytes()[a.len()] == b'['
                            {
                                // The ancestor is an array, which the tree
                                // replaces by an object: not done here.
                                return false;
                            }
                            under = Some(i);
                        }
                        _ => {}
                    }
                }
                if let Some(i) = at {
                    // A scalar or an empty container in the way is replaced.
                    leaves.splice(i..=i, new);
                    return true;
                }
                if let Some(i) = under {
                    // A new key goes after its object's last one.
                    leaves.splice(i + 1..i + 1, new);
                    return true;
                }
                if a.is_empty() {
                    leaves.extend(new);
                    return true;
                }
                end = parent_end(a);
            }
        }
        None => {
            let Some(first) = first else {
                return true;
            };
            leaves.drain(first..=last);
            // An object left without keys is `{}`.
            let q = parent_end(p).map_or("", |e| &p[..e]);
            let left = leaves.iter().any(|l| {
                let (at, under) = at_or_under(&l.path, q);
                at || under
            });
            if !left {
                leaves.insert(
                    first,
                    Leaf {
                        path: Cow::Owned(q.to_string()),
                        kind: kind::JSON,
                        value: Cow::Borrowed(b"{}"),
                    },
                );
            }
            true
        }
    }
}

impl FlatBatch {
    /// Append event `index` of another batch (given as its three buffers)
    /// with `edits` applied in order, without a JSON tree. Returns `false`,
    /// appending nothing, when an edit is one this does not handle (an
    /// array index in its path, a key under an array) or the event's leaves
    /// are damaged: the caller then encodes the edited JSON value instead.
    pub fn push_edited(
        &mut self,
        data: &[u8],
        leaves: &[u32],
        events: &[u32],
        index: usize,
        edits: &[FlatEdit],
    ) -> bool {
        let Some(e) = events.get(index * EVENT_WORDS..(index + 1) * EVENT_WORDS) else {
            return false;
        };
        let (first, count) = (e[0] as usize, e[1] as usize);
        let Some(words) = leaves.get(first * LEAF_WORDS..(first + count) * LEAF_WORDS) else {
            return false;
        };
        let mut list = Vec::with_capacity(count + edits.len());
        for w in words.chunks_exact(LEAF_WORDS) {
            let get = |off: u32, len: u32| data.get(off as usize..off as usize + len as usize);
            let (Some(p), Some(v)) = (get(w[0], w[1]), get(w[3], w[4])) else {
                return false;
            };
            let Ok(p) = std::str::from_utf8(p) else {
                return false;
            };
            list.push(Leaf {
                path: Cow::Borrowed(p),
                kind: w[2],
                value: Cow::Borrowed(v),
            });
        }
        for edit in edits {
            if !apply(&mut list, edit) {
                return false;
            }
        }
        let first_new = (self.leaves.len() / LEAF_WORDS) as u32;
        for l in &list {
            self.push_leaf(&l.path, l.kind, &l.value);
        }
        self.events
            .extend_from_slice(&[first_new, list.len() as u32]);
        true
    }
}

/// The edits of a plugin's answer (already checked by
/// [`super::apply_edits`]) per event of its batch, for
/// [`FlatBatch::push_edited`]: `None` for an event whose edits the flat
/// layout does not handle.
pub fn edits_by_event(edits: &[u32], data: &[u8], events: usize) -> Vec<Option<Vec<FlatEdit>>> {
    let mut out: Vec<Option<Vec<FlatEdit>>> = (0..events).map(|_| Some(Vec::new())).collect();
    for w in edits.chunks_exact(EDIT_WORDS) {
        let (event, edit_op, path_off, path_len, value_kind, val_off, val_len) =
            (w[0] as usize, w[1], w[2], w[3], w[4], w[5], w[6]);
        let slice = |off: u32, len: u32| data.get(off as usize..off as usize + len as usize);
        let Some(slot) = out.get_mut(event) else {
            continue;
        };
        let Some(list) = slot else { continue };
        let path_text = slice(path_off, path_len).and_then(|b| std::str::from_utf8(b).ok());
        let read = match (edit_op, path_text) {
            (op::SET, Some(p)) => slice(val_off, val_len)
                .and_then(|b| ValueRef::decode(value_kind, b).ok())
                .and_then(|v| FlatEdit::read(p, Some(v))),
            (op::REMOVE, Some(p)) => FlatEdit::read(p, None),
            _ => None,
        };
        match read {
            Some(e) => list.push(e),
            None => *slot = None,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{EditBuffer, apply_edits};
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const KEYS: &[&str] = &["a", "b", "c", "x.y", "k\\", "[i]"];

    fn key() -> impl Strategy<Value = String> {
        proptest::sample::select(KEYS).prop_map(str::to_string)
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-5i64..100).prop_map(Value::from),
            Just(json!(1.5)),
            "[a-z@.]{0,6}".prop_map(Value::String),
            Just(json!({})),
            Just(json!([])),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 1..3).prop_map(Value::Array),
                proptest::collection::vec((key(), inner), 1..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn event() -> impl Strategy<Value = Value> {
        proptest::collection::vec((key(), value()), 0..5)
            .prop_map(|kv| Value::Object(kv.into_iter().collect()))
    }

    #[derive(Debug, Clone)]
    enum Edit {
        Set(Vec<String>, bool, (u32, String)),
        Remove(Vec<String>, bool),
    }

    fn edit_value() -> impl Strategy<Value = (u32, String)> {
        prop_oneof![
            "[a-z]{0,4}".prop_map(|s| (kind::STRING, s)),
            proptest::sample::select(&["0", "7", "1.50", "-3", "1e2"][..])
                .prop_map(|n| (kind::NUMBER, n.to_string())),
            Just((kind::NULL, String::new())),
            Just((kind::TRUE, String::new())),
            proptest::sample::select(&["{}", "[]", "{\"q\":1}", "[1,{\"r\":2}]", "\"s\"", "3"][..])
                .prop_map(|j| (kind::JSON, j.to_string())),
        ]
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let path = || proptest::collection::vec(key(), 1..4);
        prop_oneof![
            3 => (path(), any::<bool>(), edit_value()).prop_map(|(p, i, v)| Edit::Set(p, i, v)),
            1 => (path(), any::<bool>()).prop_map(|(p, i)| Edit::Remove(p, i)),
        ]
    }

    /// Render a path; `odd` escapes a letter needlessly (the parser takes
    /// it) or, for the second key, addresses an array element instead.
    fn render(keys: &[String], odd: bool) -> String {
        let mut p = String::new();
        for (n, k) in keys.iter().enumerate() {
            if odd && n == 1 {
                p.push_str("[0]");
                continue;
            }
            if odd && n == 0 && k == "a" {
                p.push_str("\\a");
                continue;
            }
            path::push_key(&mut p, k);
        }
        p
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The flat result is the encoding of the edited JSON value, or
        /// `false` (never a different event).
        #[test]
        fn flat_edits_encode_as_the_edited_tree(ev in event(), edits in proptest::collection::vec(edit(), 1..5)) {
            let mut buf = EditBuffer::default();
            for e in &edits {
                match e {
                    Edit::Set(p, odd, (k, v)) => {
                        let value = ValueRef::decode_text(*k, v).unwrap();
                        buf.set(0, &render(p, *odd), value);
                    }
                    Edit::Remove(p, odd) => buf.remove(0, &render(p, *odd)),
                }
            }
            let mut tree = vec![ev.clone()];
            if apply_edits(&mut tree, &buf.edits, &buf.data).is_err() {
                // A value the tree refuses (a malformed answer): the host
                // never gets as far as the flat layout.
                return Ok(());
            }
            let src = FlatBatch::encode([&ev]);
            let per_event = edits_by_event(&buf.edits, &buf.data, 1);
            let mut out = FlatBatch::default();
            let handled = match &per_event[0] {
                Some(list) => out.push_edited(&src.data, &src.leaves, &src.events, 0, list),
                None => false,
            };
            if handled {
                prop_assert_eq!(out, FlatBatch::encode(&tree));
            } else {
                prop_assert!(out.is_empty());
            }
        }
    }

    #[test]
    fn the_common_edits_are_handled_flat() {
        let ev = json!({"a": 1, "context": {"os": "linux", "v": "1.2"}, "tags": ["x"], "e": {}});
        let mut buf = EditBuffer::default();
        buf.set(0, "context.os_family", ValueRef::String("linux"));
        buf.set(0, "_wraith.labels.environment", ValueRef::String("dev"));
        buf.set(0, "a", ValueRef::Number("2"));
        buf.set(0, "e.k", ValueRef::Bool(true));
        buf.remove(0, "context.v");
        buf.set(0, "tags", ValueRef::Json("[\"y\"]"));
        let mut tree = vec![ev.clone()];
        apply_edits(&mut tree, &buf.edits, &buf.data).unwrap();
        let src = FlatBatch::encode([&ev]);
        let per_event = edits_by_event(&buf.edits, &buf.data, 1);
        let mut out = FlatBatch::default();
        assert!(out.push_edited(
            &src.data,
            &src.leaves,
            &src.events,
            0,
            per_event[0].as_ref().unwrap()
        ));
        assert_eq!(out, FlatBatch::encode(&tree));
        // An index in a path is left to the tree.
        let mut buf = EditBuffer::default();
        buf.set(0, "tags[0]", ValueRef::String("z"));
        assert!(edits_by_event(&buf.edits, &buf.data, 1)[0].is_none());
    }
}
