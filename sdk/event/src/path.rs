//! Dotted paths into an event: `context.os`, `tags[0]`, `frames[2].file`.
//!
//! A `.`, `[`, `]` or `\` inside a key is escaped with a backslash.

use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt::Write as _;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Why a path could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // fields are named by the messages
pub enum PathError {
    /// The path has no segment.
    #[error("path is empty")]
    Empty,
    /// Two dots in a row, or a dot at either end.
    #[error("path {path:?} has an empty key at byte {at}")]
    EmptyKey { path: String, at: usize },
    /// `[` not followed by digits and `]`.
    #[error("path {path:?} has a bad array index at byte {at}")]
    BadIndex { path: String, at: usize },
    /// A backslash with nothing after it.
    #[error("path {path:?} ends inside an escape")]
    DanglingEscape { path: String },
}

/// Parse a path into segments.
pub fn parse(path: &str) -> Result<Vec<Segment>, PathError> {
    let mut out = Vec::new();
    parse_into(path, &mut out)?;
    Ok(out.into_iter().map(Segment::from).collect())
}

/// One step of a path, borrowed from the path's text: a key is copied only
/// when it holds escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentRef<'a> {
    /// An object key, unescaped.
    Key(Cow<'a, str>),
    /// An array index.
    Index(usize),
}

impl From<SegmentRef<'_>> for Segment {
    fn from(s: SegmentRef<'_>) -> Self {
        match s {
            SegmentRef::Key(k) => Segment::Key(k.into_owned()),
            SegmentRef::Index(i) => Segment::Index(i),
        }
    }
}

/// Parse a path, appending its steps to `out`, without copying its keys:
/// what the host does for every edit a plugin returns. On an error, `out`
/// may hold some of the path's steps.
pub fn parse_into<'a>(path: &'a str, out: &mut Vec<SegmentRef<'a>>) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    let bytes = path.as_bytes();
    let mut i = 0;
    let mut expect_key = true;
    while i < bytes.len() {
        match bytes[i] {
            b'[' => {
                let start = i + 1;
                let end = path[start..].find(']').map(|e| start + e).ok_or_else(|| {
                    PathError::BadIndex {
                        path: path.into(),
                        at: i,
                    }
                })?;
                let idx: usize = path[start..end].parse().map_err(|_| PathError::BadIndex {
                    path: path.into(),
                    at: i,
                })?;
                out.push(SegmentRef::Index(idx));
                i = end + 1;
                expect_key = false;
            }
            b'.' => {
                if expect_key {
                    return Err(PathError::EmptyKey {
                        path: path.into(),
                        at: i,
                    });
                }
                i += 1;
                expect_key = true;
                if i == bytes.len() {
                    return Err(PathError::EmptyKey {
                        path: path.into(),
                        at: i,
                    });
                }
            }
            _ => {
                let start = i;
                // Most keys have no escape: borrow them.
                while i < bytes.len() && !matches!(bytes[i], b'.' | b'[' | b'\\') {
                    i += 1;
                }
                if i == bytes.len() || bytes[i] != b'\\' {
                    out.push(SegmentRef::Key(Cow::Borrowed(&path[start..i])));
                    expect_key = false;
                    continue;
                }
                let mut key = String::from(&path[start..i]);
                while i < bytes.len() && bytes[i] != b'.' && bytes[i] != b'[' {
                    if bytes[i] == b'\\' {
                        i += 1;
                        if i == bytes.len() {
                            return Err(PathError::DanglingEscape { path: path.into() });
                        }
                    }
                    // Copy one whole UTF-8 character.
                    let ch = path[i..].chars().next().expect("in bounds");
                    key.push(ch);
                    i += ch.len_utf8();
                }
                out.push(SegmentRef::Key(Cow::Owned(key)));
                expect_key = false;
            }
        }
    }
    Ok(())
}

/// A step of a path, owned or borrowed: what [`set`], [`get`] and
/// [`remove`] walk.
pub trait Step {
    /// The key, if this step is one.
    fn key(&self) -> Option<&str>;
    /// The index, if this step is one.
    fn index(&self) -> Option<usize>;
}

impl Step for Segment {
    fn key(&self) -> Option<&str> {
        match self {
            Segment::Key(k) => Some(k),
            Segment::Index(_) => None,
        }
    }
    fn index(&self) -> Option<usize> {
        match self {
            Segment::Index(i) => Some(*i),
            Segment::Key(_) => None,
        }
    }
}

impl Step for SegmentRef<'_> {
    fn key(&self) -> Option<&str> {
        match self {
            SegmentRef::Key(k) => Some(k),
            SegmentRef::Index(_) => None,
        }
    }
    fn index(&self) -> Option<usize> {
        match self {
            SegmentRef::Index(i) => Some(*i),
            SegmentRef::Key(_) => None,
        }
    }
}

/// Append `key`, escaped, to a path being built.
pub fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    push_escaped(path, key);
}

/// Append an array index to a path being built.
pub fn push_index(path: &mut String, index: usize) {
    let _ = write!(path, "[{index}]");
}

fn push_escaped(path: &mut String, key: &str) {
    if any_escape(key.as_bytes()) {
        for ch in key.chars() {
            if ch.is_ascii() && needs_escape(ch as u8) {
                path.push('\\');
            }
            path.push(ch);
        }
    } else {
        path.push_str(key);
    }
}

pub(crate) fn needs_escape(b: u8) -> bool {
    matches!(b, b'.' | b'[' | b']' | b'\\')
}

/// Whether any byte of `key` needs escaping: eight bytes at a time (the
/// last eight as one word, overlapping bytes found clean), byte by byte
/// below eight.
fn any_escape(key: &[u8]) -> bool {
    use crate::words::{bytes_equal, word};
    // Exact: a mark is a byte to escape.
    let hit = |w: u64| {
        bytes_equal(w, b'.') | bytes_equal(w, b'[') | bytes_equal(w, b']') | bytes_equal(w, b'\\')
            != 0
    };
    if key.len() < 8 {
        return key.iter().any(|&b| needs_escape(b));
    }
    let mut i = 0;
    while i + 8 <= key.len() {
        if hit(word(key, i)) {
            return true;
        }
        i += 8;
    }
    i < key.len() && hit(word(key, key.len() - 8))
}

/// Render segments back into a path.
pub fn render(segments: &[Segment]) -> String {
    let mut s = String::new();
    for seg in segments {
        match seg {
            Segment::Key(k) => push_key(&mut s, k),
            Segment::Index(i) => push_index(&mut s, *i),
        }
    }
    s
}

/// Look a path up in a value.
pub fn get<'a, S: Step>(value: &'a Value, segments: &[S]) -> Option<&'a Value> {
    segments
        .iter()
        .try_fold(value, |v, seg| match (seg.key(), seg.index(), v) {
            (Some(k), _, Value::Object(m)) => m.get(k),
            (_, Some(i), Value::Array(a)) => a.get(i),
            _ => None,
        })
}

/// Set the value at a path, creating objects and arrays along the way. A
/// scalar in the way is replaced by the container the path needs. An index
/// may address an existing element or the one just past the end (append);
/// further out, the array is padded with nulls.
pub fn set<S: Step>(root: &mut Value, segments: &[S], new: Value) {
    let Some((first, rest)) = segments.split_first() else {
        *root = new;
        return;
    };
    // The container a missing step is created as.
    let empty = |next: &S| {
        if next.index().is_some() {
            Value::Array(Vec::new())
        } else {
            Value::Object(Map::new())
        }
    };
    if let Some(k) = first.key() {
        if !root.is_object() {
            *root = Value::Object(Map::new());
        }
        let m = root.as_object_mut().expect("object");
        // One lookup for a key that is there; a key is copied only when it
        // is new, and a new child is built before it is inserted.
        match (m.get_mut(k), rest.first()) {
            (Some(slot), None) => *slot = new,
            (Some(child), Some(_)) => set(child, rest, new),
            (None, None) => {
                m.insert(k.to_owned(), new);
            }
            (None, Some(next)) => {
                let mut child = empty(next);
                set(&mut child, rest, new);
                m.insert(k.to_owned(), child);
            }
        }
    } else if let Some(i) = first.index() {
        if !root.is_array() {
            *root = Value::Array(Vec::new());
        }
        let arr = root.as_array_mut().expect("array");
        match rest.first() {
            None if i < arr.len() => arr[i] = new,
            None => {
                arr.resize(i, Value::Null);
                arr.push(new);
            }
            Some(next) => {
                if i >= arr.len() {
                    arr.resize(i, Value::Null);
                    arr.push(empty(next));
                }
                set(&mut arr[i], rest, new);
            }
        }
    }
}

/// Remove the value at a path; returns it if it was there.
pub fn remove<S: Step>(root: &mut Value, segments: &[S]) -> Option<Value> {
    let (last, parents) = segments.split_last()?;
    let mut cur = root;
    for seg in parents {
        cur = match (seg.key(), seg.index(), cur) {
            (Some(k), _, Value::Object(m)) => m.get_mut(k)?,
            (_, Some(i), Value::Array(a)) => a.get_mut(i)?,
            _ => return None,
        };
    }
    match (last.key(), last.index(), cur) {
        (Some(k), _, Value::Object(m)) => m.shift_remove(k),
        (_, Some(i), Value::Array(a)) if i < a.len() => Some(a.remove(i)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_roundtrip(path: &str, expected: &[Segment]) {
        let parsed = parse(path).unwrap();
        assert_eq!(parsed, expected, "{path}");
        // The borrowing parser gives the same steps, borrowing keys
        // without escapes.
        let mut borrowed = Vec::new();
        parse_into(path, &mut borrowed).unwrap();
        assert_eq!(borrowed.len(), expected.len(), "{path}");
        for (b, e) in borrowed.iter().zip(expected) {
            assert_eq!((b.key(), b.index()), (e.key(), e.index()), "{path}");
            if let SegmentRef::Key(k) = b {
                assert_eq!(
                    matches!(k, Cow::Borrowed(_)),
                    !k.bytes().any(needs_escape),
                    "{path}: {k:?}"
                );
            }
        }
        assert_eq!(render(&parsed), path);
    }

    #[test]
    fn parses_and_renders() {
        use Segment::*;
        check_roundtrip("a", &[Key("a".into())]);
        check_roundtrip("context.os", &[Key("context".into()), Key("os".into())]);
        check_roundtrip(
            "frames[2].file",
            &[Key("frames".into()), Index(2), Key("file".into())],
        );
        check_roundtrip("a\\.b.c", &[Key("a.b".into()), Key("c".into())]);
        check_roundtrip("[0][1]", &[Index(0), Index(1)]);
        check_roundtrip("ünï.cödé", &[Key("ünï".into()), Key("cödé".into())]);
    }

    #[test]
    fn rejects_bad_paths() {
        assert_eq!(parse(""), Err(PathError::Empty));
        assert!(matches!(parse("a..b"), Err(PathError::EmptyKey { .. })));
        assert!(matches!(parse("a."), Err(PathError::EmptyKey { .. })));
        assert!(matches!(parse("a[x]"), Err(PathError::BadIndex { .. })));
        assert!(matches!(parse("a[1"), Err(PathError::BadIndex { .. })));
        assert!(matches!(
            parse("a\\"),
            Err(PathError::DanglingEscape { .. })
        ));
    }

    #[test]
    fn set_get_remove() {
        let mut v = json!({"context": {"os": "linux"}, "tags": ["a"]});
        set(&mut v, &parse("context.os").unwrap(), json!("darwin"));
        set(&mut v, &parse("context.arch.bits").unwrap(), json!(64));
        set(&mut v, &parse("tags[1]").unwrap(), json!("b"));
        set(&mut v, &parse("new[0].x").unwrap(), json!(true));
        assert_eq!(
            v,
            json!({"context": {"os": "darwin", "arch": {"bits": 64}}, "tags": ["a", "b"], "new": [{"x": true}]})
        );
        assert_eq!(get(&v, &parse("tags[1]").unwrap()), Some(&json!("b")));
        assert_eq!(
            remove(&mut v, &parse("context.arch").unwrap()),
            Some(json!({"bits": 64}))
        );
        assert_eq!(remove(&mut v, &parse("nope.x").unwrap()), None);
        assert_eq!(v["context"], json!({"os": "darwin"}));
    }

    #[test]
    fn set_replaces_scalars_in_the_way() {
        let mut v = json!({"context": "flat"});
        set(&mut v, &parse("context.os").unwrap(), json!("linux"));
        assert_eq!(v, json!({"context": {"os": "linux"}}));
    }

    // The walk before it was made recursive, to compare against.
    fn set_reference(root: &mut Value, segments: &[Segment], new: Value) {
        let Some((last, parents)) = segments.split_last() else {
            *root = new;
            return;
        };
        let mut cur = root;
        for (n, seg) in parents.iter().enumerate() {
            let next_is_index = matches!(segments[n + 1], Segment::Index(_));
            cur = child_mut_reference(cur, seg, next_is_index);
        }
        match last {
            Segment::Key(k) => {
                if !cur.is_object() {
                    *cur = Value::Object(Map::new());
                }
                cur.as_object_mut().expect("object").insert(k.clone(), new);
            }
            Segment::Index(i) => {
                if !cur.is_array() {
                    *cur = Value::Array(Vec::new());
                }
                let arr = cur.as_array_mut().expect("array");
                if *i < arr.len() {
                    arr[*i] = new;
                } else {
                    arr.resize(*i, Value::Null);
                    arr.push(new);
                }
            }
        }
    }

    fn child_mut_reference<'a>(
        cur: &'a mut Value,
        seg: &Segment,
        next_is_index: bool,
    ) -> &'a mut Value {
        let empty = || {
            if next_is_index {
                Value::Array(Vec::new())
            } else {
                Value::Object(Map::new())
            }
        };
        match seg {
            Segment::Key(k) => {
                if !cur.is_object() {
                    *cur = Value::Object(Map::new());
                }
                let m = cur.as_object_mut().expect("object");
                m.entry(k.clone()).or_insert_with(empty)
            }
            Segment::Index(i) => {
                if !cur.is_array() {
                    *cur = Value::Array(Vec::new());
                }
                let arr = cur.as_array_mut().expect("array");
                if *i >= arr.len() {
                    arr.resize(*i, Value::Null);
                    arr.push(empty());
                }
                &mut arr[*i]
            }
        }
    }

    #[test]
    fn set_agrees_with_the_plain_walk() {
        let events = [
            json!({}),
            json!({"a": 1, "b": {"a": [1, {"b": 2}]}, "c": []}),
            json!({"a": {"a": {}}, "b": [null, "x", [3]], "c": "s"}),
        ];
        let steps = ["a", "b", "new", "[0]", "[2]"];
        let mut paths = Vec::new();
        for x in steps {
            paths.push(vec![x]);
            for y in steps {
                paths.push(vec![x, y]);
                for z in steps {
                    paths.push(vec![x, y, z]);
                }
            }
        }
        let mut cases = 0;
        for ev in &events {
            for p in &paths {
                let segments: Vec<Segment> = p
                    .iter()
                    .map(|s| match s.strip_prefix('[') {
                        Some(i) => Segment::Index(i.trim_end_matches(']').parse().unwrap()),
                        None => Segment::Key(s.to_string()),
                    })
                    .collect();
                for new in [json!(7), json!({"k": [true]})] {
                    let (mut ours, mut theirs) = (ev.clone(), ev.clone());
                    set(&mut ours, &segments, new.clone());
                    set_reference(&mut theirs, &segments, new);
                    assert_eq!(ours.to_string(), theirs.to_string(), "{ev} {p:?}");
                    cases += 1;
                }
            }
        }
        assert_eq!(cases, 3 * 155 * 2);
    }

    /// The word-at-a-time test of a key agrees with the byte loop.
    #[test]
    fn keys_needing_escapes_are_found_word_by_word() {
        let pieces: [&str; 8] = ["a", "context", "é", ".", "[", "]", "\\", "installation_id"];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let key = crate::words::joined(&pieces, &mut seed);
            assert_eq!(
                any_escape(key.as_bytes()),
                key.bytes().any(needs_escape),
                "{key:?}"
            );
        }
    }
}
