//! Request bodies read straight into the flat layout, with the ingest's
//! checks and defaults done on the way.
//!
//! The general route reads a body into `serde_json` values, checks each
//! event's shape (depth, string length, number of values), sets the
//! client field, completes it with [`validate::normalize`] and, when a
//! plugin runs, encodes the values into a [`FlatBatch`]. This module does
//! the same in one pass over the bytes, for the bodies nearly every client
//! sends: a JSON array of events or NDJSON, every event valid. It writes
//! each leaf as it is read (no values, no maps), gives `event_id`,
//! `timestamp` and `level` their stored form in place, and appends the
//! client field and the defaults in the order the general route inserts
//! them, so the batch is leaf for leaf the encoding of what the general
//! route makes of the same body.
//!
//! It does not explain: on anything unusual (a syntax error, an event past
//! a limit or refused by the checks, a key repeated in one object, an
//! empty key, the client field sent by the client, an empty body, too many
//! events) it answers `None`, and the caller takes the general route,
//! which answers with the exact error, or with what the event becomes.
//!
//! [`validate::normalize`]: crate::validate::normalize

use crate::flat::{FlatBatch, LEAF_WORDS, kind};
use crate::path;
use crate::validate;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use time::OffsetDateTime;

/// What the events of a body must meet, and what ingest adds to them.
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    /// Nesting depth; the event object is level 1.
    pub max_depth: usize,
    /// Bytes of a string value or a key.
    pub max_string: usize,
    /// Object members and array elements at every depth, per event.
    pub max_values: usize,
    /// Events in one body.
    pub max_events: usize,
    /// The field that carries the client's name: an event that sends it
    /// takes the general route.
    pub client_field: &'a str,
    /// The authenticated client's name, appended in `client_field`.
    pub client: Option<&'a str>,
    /// When the body arrived: the `timestamp` of events that have none.
    pub now: OffsetDateTime,
}

/// A body's events, checked and completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The events, in order.
    pub batch: FlatBatch,
    /// Each event's `event_id`, in order.
    pub ids: Vec<String>,
}

/// A body holding one JSON array of events (after any byte-order mark).
/// `None`: take the general route (see the module's documentation).
pub fn json_array(body: &[u8], rules: &Rules<'_>) -> Option<Parsed> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'[' {
        return None;
    }
    // The body is checked as UTF-8 once, in one pass, rather than string
    // by string as the deserializer reads them from bytes.
    let text = std::str::from_utf8(body).ok()?;
    let mut out = Out::new(rules, body.len());
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_seq(Events(&mut out)).ok()?;
    de.end().ok()?;
    out.finish()
}

/// A body of NDJSON: one event per line, blank lines skipped.
/// `None`: take the general route (see the module's documentation).
pub fn ndjson(body: &[u8], rules: &Rules<'_>) -> Option<Parsed> {
    // Checked as UTF-8 once, as in `json_array`.
    let text = std::str::from_utf8(body).ok()?;
    let mut out = Out::new(rules, body.len());
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.bytes().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        if out.ids.len() == rules.max_events {
            return None;
        }
        let mut de = serde_json::Deserializer::from_str(line);
        de.deserialize_map(Event(&mut out)).ok()?;
        de.end().ok()?;
    }
    out.finish()
}

/// Where the leaves go, and what is known of the event being read.
struct Out<'r> {
    rules: &'r Rules<'r>,
    batch: FlatBatch,
    ids: Vec<String>,
    path: String,
    /// The hashes of the keys of the objects being read, outermost first.
    keys: Vec<u64>,
    /// Values (members and elements) of the event so far.
    values: usize,
    /// `rules.now` as stored, written once per body when needed.
    now: Option<String>,
}

/// Why the general route must answer (never shown: it explains itself).
fn bail<E: de::Error>() -> E {
    E::custom("the general route answers this")
}

impl<'r> Out<'r> {
    fn new(rules: &'r Rules<'r>, bytes: usize) -> Self {
        // Room for the body's bytes and about one leaf per 30 of them, so
        // that most bodies never reallocate.
        let leaves = bytes / 30 + 16;
        Out {
            rules,
            batch: FlatBatch {
                data: Vec::with_capacity(bytes + bytes / 4 + 64),
                leaves: Vec::with_capacity(leaves * LEAF_WORDS),
                events: Vec::new(),
            },
            ids: Vec::new(),
            path: String::with_capacity(64),
            keys: Vec::with_capacity(32),
            values: 0,
            now: None,
        }
    }

    fn finish(self) -> Option<Parsed> {
        (!self.ids.is_empty()).then_some(Parsed {
            batch: self.batch,
            ids: self.ids,
        })
    }

    fn leaf(&mut self, kind: u32, value: &[u8]) {
        self.batch.push_leaf(&self.path, kind, value);
    }

    fn leaf_count(&self) -> usize {
        self.batch.leaves.len() / LEAF_WORDS
    }

    /// One more member or element, within `max_values`.
    fn count<E: de::Error>(&mut self) -> Result<(), E> {
        self.values += 1;
        if self.values > self.rules.max_values {
            return Err(bail());
        }
        Ok(())
    }

    /// A key of the object whose keys start at `keys[from..]`: within the
    /// limits, not empty, not seen before in that object.
    fn key<E: de::Error>(&mut self, key: &str, from: usize) -> Result<(), E> {
        if key.is_empty() || key.len() > self.rules.max_string {
            return Err(bail());
        }
        let h = key_hash(key.as_bytes());
        // A repeated key (or two keys of one hash) takes the general route,
        // which keeps the last value at the first key's place.
        if self.keys[from..].contains(&h) {
            return Err(bail());
        }
        self.keys.push(h);
        path::push_key(&mut self.path, key);
        Ok(())
    }

    /// Replace the value of the last leaf written.
    fn replace_last(&mut self, value: &[u8]) {
        let at = self.batch.leaves.len() - LEAF_WORDS;
        let off = self.batch.leaves[at + 3] as usize;
        self.batch.data.truncate(off);
        self.batch.data.extend_from_slice(value);
        self.batch.leaves[at + 4] = value.len() as u32;
    }
}

/// A small hash of a key; a collision only sends the body the general way.
fn key_hash(key: &[u8]) -> u64 {
    let mix = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    let mut h = key.len() as u64;
    let mut words = key.chunks_exact(8);
    for w in &mut words {
        h = mix(h, u64::from_le_bytes(w.try_into().expect("eight bytes")));
    }
    // The last bytes as a word padded with zeros, built in a register
    // (copying them into a buffer calls `memcpy` for each key).
    let rest = words.remainder();
    if !rest.is_empty() {
        let w = rest
            .iter()
            .enumerate()
            .fold(0u64, |w, (i, &b)| w | (b as u64) << (8 * i));
        h = mix(h, w);
    }
    h
}

/// A body's array of events.
struct Events<'o, 'r>(&'o mut Out<'r>);

impl<'de> Visitor<'de> for Events<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            if self.0.ids.len() == self.0.rules.max_events {
                // One more would be past the limit: the general route
                // counts them and answers 413.
                return match seq.next_element::<de::IgnoredAny>()? {
                    Some(_) => Err(bail()),
                    None => Ok(()),
                };
            }
            if seq.next_element_seed(Event(&mut *self.0))?.is_none() {
                return Ok(());
            }
        }
    }
}

/// The top-level fields ingest checks or completes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    EventId,
    Timestamp,
    Level,
    EventType,
    /// `tool`, `command`, `error_type`: a string or null.
    Text,
    DurationMs,
    Context,
    Other,
}

fn field(key: &str) -> Field {
    match key {
        "event_id" => Field::EventId,
        "timestamp" => Field::Timestamp,
        "level" => Field::Level,
        "event_type" => Field::EventType,
        "tool" | "command" | "error_type" => Field::Text,
        "duration_ms" => Field::DurationMs,
        "context" => Field::Context,
        _ => Field::Other,
    }
}

/// One event: a JSON object.
struct Event<'o, 'r>(&'o mut Out<'r>);

impl<'de> DeserializeSeed<'de> for Event<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Event<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let out = self.0;
        if out.rules.max_depth < 1 {
            return Err(bail());
        }
        let first = out.leaf_count() as u32;
        out.path.clear();
        out.keys.clear();
        out.values = 0;
        let (mut id, mut timestamp, mut level, mut event_type) = (false, false, false, false);
        while let Some(f) = map.next_key_seed(TopKey(&mut *out))? {
            let at = out.leaf_count();
            map.next_value_seed(Leaves {
                out: &mut *out,
                depth: 2,
            })?;
            if f != Field::Other {
                check_field(out, f, at)?;
                match f {
                    Field::EventId => id = true,
                    Field::Timestamp => timestamp = true,
                    Field::Level => level = true,
                    Field::EventType => event_type = true,
                    _ => {}
                }
            }
            out.path.clear();
        }
        if !event_type {
            return Err(bail());
        }
        // What the general route inserts, in its order: the client field,
        // then the defaults.
        if let Some(c) = out.rules.client {
            out.path.push_str(out.rules.client_field);
            out.leaf(kind::STRING, c.as_bytes());
            out.path.clear();
        }
        if !id {
            let text = validate::new_event_id();
            out.path.push_str("event_id");
            out.leaf(kind::STRING, text.as_str().as_bytes());
            out.ids.push(text.as_str().to_string());
            out.path.clear();
        }
        if !timestamp {
            let now = now_text(out)?;
            out.path.push_str("timestamp");
            out.batch.push_leaf(&out.path, kind::STRING, now.as_bytes());
            out.now = Some(now);
            out.path.clear();
        }
        if !level {
            out.path.push_str("level");
            out.leaf(kind::STRING, b"info");
            out.path.clear();
        }
        let count = out.leaf_count() as u32 - first;
        out.batch.events.extend_from_slice(&[first, count]);
        Ok(())
    }
}

/// `rules.now` as stored (formatted once per body).
fn now_text<E: de::Error>(out: &mut Out<'_>) -> Result<String, E> {
    match out.now.take() {
        Some(t) => Ok(t),
        None => validate::timestamp_text(out.rules.now).map_err(|_| bail()),
    }
}

/// The leaf (or leaves) written for top-level field `f` from leaf `at` on:
/// checked as [`validate::normalize`] checks it, and for `event_id`,
/// `timestamp` and `level` given their stored form in place.
fn check_field<E: de::Error>(out: &mut Out<'_>, f: Field, at: usize) -> Result<(), E> {
    let leaves = &out.batch.leaves[at * LEAF_WORDS..];
    let single = leaves.len() == LEAF_WORDS && leaves[1] as usize == out.path.len();
    let (k, value) = if single {
        let (off, len) = (leaves[3] as usize, leaves[4] as usize);
        (leaves[2], &out.batch.data[off..off + len])
    } else {
        (u32::MAX, &[][..])
    };
    let text = || std::str::from_utf8(value).map_err(|_| bail::<E>());
    match f {
        Field::EventId => {
            let id = match k {
                kind::STRING => validate::event_id(text()?).ok_or_else(bail)?,
                kind::NULL => validate::new_event_id(),
                _ => return Err(bail()),
            };
            out.ids.push(id.as_str().to_string());
            out.batch.leaves[at * LEAF_WORDS + 2] = kind::STRING;
            out.replace_last(id.as_str().as_bytes());
        }
        Field::Timestamp => {
            let stored = match k {
                kind::STRING => validate::timestamp_text(
                    validate::timestamp_from_text(text()?).map_err(|_| bail())?,
                )
                .map_err(|_| bail())?,
                kind::NUMBER => {
                    let ms: i64 = text()?.parse().map_err(|_| bail())?;
                    validate::timestamp_text(validate::timestamp_from_ms(ms).map_err(|_| bail())?)
                        .map_err(|_| bail())?
                }
                kind::NULL => {
                    let now = now_text(out)?;
                    out.now = Some(now.clone());
                    now
                }
                _ => return Err(bail()),
            };
            out.batch.leaves[at * LEAF_WORDS + 2] = kind::STRING;
            out.replace_last(stored.as_bytes());
        }
        Field::Level => {
            let stored = match k {
                kind::STRING => validate::level(text()?).ok_or_else(bail)?,
                kind::NULL => "info",
                _ => return Err(bail()),
            };
            out.batch.leaves[at * LEAF_WORDS + 2] = kind::STRING;
            out.replace_last(stored.as_bytes());
        }
        Field::EventType => {
            if k != kind::STRING || value.is_empty() || value.len() > validate::MAX_EVENT_TYPE_LEN {
                return Err(bail());
            }
        }
        Field::Text => {
            if k != kind::STRING && k != kind::NULL {
                return Err(bail());
            }
        }
        Field::DurationMs => match k {
            kind::NULL => {}
            kind::NUMBER => {
                let d: f64 = text()?.parse().map_err(|_| bail())?;
                if d < 0.0 {
                    return Err(bail());
                }
            }
            _ => return Err(bail()),
        },
        Field::Context => {
            // An object: members (paths under `context.`), or `{}`; or null.
            let object = if single {
                k == kind::NULL || (k == kind::JSON && value == b"{}")
            } else {
                let (off, len) = (leaves[0] as usize, leaves[1] as usize);
                out.batch.data[off..off + len].get(out.path.len()) == Some(&b'.')
            };
            if !object {
                return Err(bail());
            }
        }
        Field::Other => {}
    }
    Ok(())
}

/// A top-level key: checked and written onto the path; its [`Field`].
struct TopKey<'o, 'r>(&'o mut Out<'r>);

impl<'de> DeserializeSeed<'de> for TopKey<'_, '_> {
    type Value = Field;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for TopKey<'_, '_> {
    type Value = Field;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Field, E> {
        let out = self.0;
        if s == out.rules.client_field {
            return Err(bail());
        }
        out.count()?;
        out.key(s, 0)?;
        Ok(field(s))
    }
}

/// A key of a nested object.
struct Key<'o, 'r> {
    out: &'o mut Out<'r>,
    from: usize,
}

impl<'de> DeserializeSeed<'de> for Key<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.out.count()?;
        self.out.key(s, self.from)
    }
}

/// One JSON value at the current path, `depth` levels down (the event
/// itself is level 1).
struct Leaves<'o, 'r> {
    out: &'o mut Out<'r>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Leaves<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Leaves<'_, '_> {
    fn number<E>(self, n: serde_json::Number) -> Result<(), E> {
        let out = self.out;
        out.batch.push_number(&out.path, &n);
        Ok(())
    }
}

impl<'de> Visitor<'de> for Leaves<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.out.leaf(kind::NULL, b"");
        Ok(())
    }
    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        self.out.leaf(if b { kind::TRUE } else { kind::FALSE }, b"");
        Ok(())
    }
    fn visit_u64<E>(self, n: u64) -> Result<(), E> {
        self.number(n.into())
    }
    fn visit_i64<E>(self, n: i64) -> Result<(), E> {
        self.number(n.into())
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<(), E> {
        let n = serde_json::Number::from_f64(n).ok_or_else(bail)?;
        self.number(n)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        if s.len() > self.out.rules.max_string {
            return Err(bail());
        }
        self.out.leaf(kind::STRING, s.as_bytes());
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let out = self.out;
        if self.depth > out.rules.max_depth {
            return Err(bail());
        }
        let at = out.path.len();
        let mut i = 0;
        loop {
            path::push_index(&mut out.path, i);
            let more = seq
                .next_element_seed(Counted(Leaves {
                    out: &mut *out,
                    depth: self.depth + 1,
                }))?
                .is_some();
            out.path.truncate(at);
            if !more {
                break;
            }
            i += 1;
        }
        if i == 0 {
            out.leaf(kind::JSON, b"[]");
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let out = self.out;
        if self.depth > out.rules.max_depth {
            return Err(bail());
        }
        let at = out.path.len();
        let from = out.keys.len();
        let mut n = 0;
        while map
            .next_key_seed(Key {
                out: &mut *out,
                from,
            })?
            .is_some()
        {
            map.next_value_seed(Leaves {
                out: &mut *out,
                depth: self.depth + 1,
            })?;
            out.path.truncate(at);
            n += 1;
        }
        out.keys.truncate(from);
        if n == 0 {
            out.leaf(kind::JSON, b"{}");
        }
        Ok(())
    }
}

/// An array element: counted as one value before it is read.
struct Counted<'o, 'r>(Leaves<'o, 'r>);

impl<'de> DeserializeSeed<'de> for Counted<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.0.out.count()?;
        d.deserialize_any(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(client: Option<&'static str>) -> Rules<'static> {
        Rules {
            max_depth: 4,
            max_string: 64,
            max_values: 32,
            max_events: 3,
            client_field: "_client",
            client,
            now: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        }
    }

    fn leaves(p: &Parsed, i: usize) -> Vec<(String, String)> {
        p.batch
            .view()
            .event(i)
            .leaves()
            .map(|l| (l.path.to_string(), format!("{:?}", l.value)))
            .collect()
    }

    /// Given fields take their stored form where they are; the client field
    /// and the defaults follow the event's own members, in that order.
    #[test]
    fn fields_in_place_and_defaults_after() {
        let body = br#"[{"level":"WARN","event_type":"t","event_id":"6F9619FF-8B86-D011-B42D-00CF4FC964FF","x":{"y":[1,2.5]}}]"#;
        let p = json_array(body, &rules(Some("suite"))).unwrap();
        let got = leaves(&p, 0);
        let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "level",
                "event_type",
                "event_id",
                "x.y[0]",
                "x.y[1]",
                "_client",
                "timestamp"
            ]
        );
        assert_eq!(got[0].1, "String(\"warning\")");
        assert_eq!(got[2].1, "String(\"6f9619ff-8b86-d011-b42d-00cf4fc964ff\")");
        assert_eq!(got[5].1, "String(\"suite\")");
        assert_eq!(got[6].1, "String(\"2023-11-14T22:13:20Z\")");
        assert_eq!(p.ids, ["6f9619ff-8b86-d011-b42d-00cf4fc964ff"]);
    }

    /// What the general route must answer is left to it.
    #[test]
    fn the_unusual_goes_the_general_way() {
        let r = rules(None);
        for body in [
            &br#"[]"#[..],
            br#"{"events":[{"event_type":"t"}]}"#,
            br#"[{"event_type":"t","a":1,"a":2}]"#,
            br#"[{"event_type":"t","o":{"k":1,"k":1}}]"#,
            br#"[{"event_type":"t","_client":"forged"}]"#,
            br#"[{"event_type":"t","":1}]"#,
            br#"[{"event_type":"t","level":"loud"}]"#,
            br#"[{"event_type":"t","duration_ms":-1}]"#,
            br#"[{"event_type":"t","a":{"b":{"c":{"d":{}}}}}]"#,
            br#"[{"tool":"x"}]"#,
            br#"[{"event_type":"t"},{"event_type":"t"},{"event_type":"t"},{"event_type":"t"}]"#,
            br#"[{"event_type":"t"}] x"#,
            br#"[1]"#,
        ] {
            assert_eq!(
                json_array(body, &r),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(ndjson(b"{\"event_type\":\"t\"}\n\n{\"event_type\":\"t\"}\r\n", &r).is_some());
        assert_eq!(ndjson(b"{\"event_type\":\"t\"}\nnot json\n", &r), None);
        assert_eq!(ndjson(b"\n \n", &r), None);
        // Bytes that are not UTF-8, in a value, a key or between lines.
        for body in [
            &b"[{\"event_type\":\"t\",\"m\":\"\xff\"}]"[..],
            b"[{\"event_type\":\"t\",\"\xc3\":1}]",
            b"[{\"event_type\":\"t\"}]\xe2\x82",
        ] {
            assert_eq!(json_array(body, &r), None, "{body:?}");
        }
        assert_eq!(ndjson(b"{\"event_type\":\"t\"}\n\xff\n", &r), None);
        assert_eq!(
            ndjson(b"{\"event_type\":\"t\",\"m\":\"\xc3(\"}\n", &r),
            None
        );
        // And text that is, in every place.
        let ok = "[{\"event_type\":\"t\",\"é\":\"€ 😀\"}]";
        assert!(json_array(ok.as_bytes(), &r).is_some());
        assert!(ndjson(&ok.as_bytes()[1..ok.len() - 1], &r).is_some());
    }
}
