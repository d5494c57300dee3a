//! The flat batch layout that crosses the plugin boundary (see `wit/types.wit`).
//!
//! The host encodes a batch once with [`FlatBatch::push_event`]; a plugin reads it
//! through [`BatchView`] without parsing JSON and answers with edits recorded in
//! an [`EditBuffer`]; the host applies them with [`apply_edits`].

use crate::path::{self, PathError};
use serde_json::Value;

mod edit;
mod json;

pub use edit::{Edits, Rewriter, Unsupported, at_or_under, lossless};
pub use json::{LineWriter, to_value, write_event};

/// `u32` words per leaf in `leaves`.
pub const LEAF_WORDS: usize = 5;
/// `u32` words per event in `events`.
pub const EVENT_WORDS: usize = 2;
/// `u32` words per edit in `edits`.
pub const EDIT_WORDS: usize = 7;

/// Value kinds, as numbered in `wit/types.wit`.
pub mod kind {
    /// `null`; no value bytes.
    pub const NULL: u32 = 0;
    /// `false`; no value bytes.
    pub const FALSE: u32 = 1;
    /// `true`; no value bytes.
    pub const TRUE: u32 = 2;
    /// A JSON number; the bytes are its text as written.
    pub const NUMBER: u32 = 3;
    /// A string; the bytes are its UTF-8 text, unescaped.
    pub const STRING: u32 = 4;
    /// JSON text (`{}` or `[]` for empty containers; any JSON in an edit).
    pub const JSON: u32 = 5;
}

/// Edit operations, as numbered in `wit/types.wit`.
pub mod op {
    /// Set the path to the value, creating objects along the way.
    pub const SET: u32 = 0;
    /// Remove the path; the value is ignored.
    pub const REMOVE: u32 = 1;
}

/// A batch of events in the flat layout.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FlatBatch {
    /// Path and value bytes of every leaf, back to back.
    pub data: Vec<u8>,
    /// [`LEAF_WORDS`] words per leaf: path offset, path length, value kind,
    /// value offset, value length (offsets into `data`).
    pub leaves: Vec<u32>,
    /// [`EVENT_WORDS`] words per event: index of its first leaf, leaf count.
    pub events: Vec<u32>,
}

impl FlatBatch {
    /// Encode a whole batch.
    pub fn encode<'a>(events: impl IntoIterator<Item = &'a Value>) -> Self {
        let events = events.into_iter();
        // Sized for typical telemetry (a few hundred bytes, a dozen or two
        // leaves per event) so that most batches never reallocate.
        let n = events.size_hint().0;
        let mut batch = FlatBatch {
            data: Vec::with_capacity(n * 512),
            leaves: Vec::with_capacity(n * 16 * LEAF_WORDS),
            events: Vec::with_capacity(n * EVENT_WORDS),
        };
        let mut path = String::with_capacity(64);
        for event in events {
            batch.push_event_with(event, &mut path);
        }
        batch
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len() / EVENT_WORDS
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Append one event.
    pub fn push_event(&mut self, event: &Value) {
        let mut path = String::new();
        self.push_event_with(event, &mut path);
    }

    fn push_event_with(&mut self, event: &Value, path: &mut String) {
        let first = (self.leaves.len() / LEAF_WORDS) as u32;
        path.clear();
        self.push_value(event, path);
        let count = (self.leaves.len() / LEAF_WORDS) as u32 - first;
        self.events.extend_from_slice(&[first, count]);
    }

    pub(crate) fn push_value(&mut self, value: &Value, path: &mut String) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    let len = path.len();
                    path::push_key(path, k);
                    self.push_value(v, path);
                    path.truncate(len);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                for (i, v) in items.iter().enumerate() {
                    let len = path.len();
                    path::push_index(path, i);
                    self.push_value(v, path);
                    path.truncate(len);
                }
            }
            Value::Object(_) => self.push_leaf(path, kind::JSON, b"{}"),
            Value::Array(_) => self.push_leaf(path, kind::JSON, b"[]"),
            Value::Null => self.push_leaf(path, kind::NULL, b""),
            Value::Bool(false) => self.push_leaf(path, kind::FALSE, b""),
            Value::Bool(true) => self.push_leaf(path, kind::TRUE, b""),
            Value::Number(n) => self.push_number(path, n),
            Value::String(s) => self.push_leaf(path, kind::STRING, s.as_bytes()),
        }
    }

    /// A number leaf, written as `serde_json` writes the number.
    pub(crate) fn push_number(&mut self, path: &str, n: &serde_json::Number) {
        // Numbers are rare next to strings; formatting through a small
        // stack buffer keeps this allocation-free.
        let mut buf = NumBuf::default();
        use std::fmt::Write as _;
        let _ = write!(buf, "{n}");
        self.push_leaf(path, kind::NUMBER, buf.as_bytes());
    }

    pub(crate) fn push_leaf(&mut self, path: &str, kind: u32, value: &[u8]) {
        self.push_leaf_bytes(path.as_bytes(), kind, value);
    }

    pub(crate) fn push_leaf_bytes(&mut self, path: &[u8], kind: u32, value: &[u8]) {
        let path_off = self.data.len() as u32;
        self.data.extend_from_slice(path);
        let val_off = self.data.len() as u32;
        self.data.extend_from_slice(value);
        self.leaves.extend_from_slice(&[
            path_off,
            path.len() as u32,
            kind,
            val_off,
            value.len() as u32,
        ]);
    }

    /// An empty batch with room for about `events` typical events.
    pub fn with_capacity(events: usize) -> Self {
        FlatBatch {
            data: Vec::with_capacity(events * 512),
            leaves: Vec::with_capacity(events * 16 * LEAF_WORDS),
            events: Vec::with_capacity(events * EVENT_WORDS),
        }
    }

    /// An empty batch with room for `data` bytes, `leaves` leaf words and
    /// `events` event words.
    pub fn with_room(data: usize, leaves: usize, events: usize) -> Self {
        FlatBatch {
            data: Vec::with_capacity(data),
            leaves: Vec::with_capacity(leaves),
            events: Vec::with_capacity(events),
        }
    }

    /// Append event `index` of another batch, given as its three buffers,
    /// without decoding it: its bytes are copied in one piece and its leaves
    /// re-based. The host uses it to carry unchanged events over to the next
    /// plugin's batch while re-encoding only the ones a plugin edited.
    ///
    /// An out-of-range index or a leaf pointing outside the event's own bytes
    /// (which the host's encoder never writes) appends an empty event.
    pub fn push_copied(&mut self, data: &[u8], leaves: &[u32], events: &[u32], index: usize) {
        let first_new = (self.leaves.len() / LEAF_WORDS) as u32;
        let words = events
            .get(index * EVENT_WORDS..(index + 1) * EVENT_WORDS)
            .and_then(|e| {
                let (first, count) = (e[0] as usize, e[1] as usize);
                leaves.get(first * LEAF_WORDS..(first + count) * LEAF_WORDS)
            })
            .unwrap_or(&[]);
        // An event's leaves own one contiguous run of bytes: from the first
        // leaf's path to the end of the last leaf's value.
        let span = match (words.first(), words.chunks_exact(LEAF_WORDS).last()) {
            (Some(&start), Some(last)) => {
                let end = last[3] as usize + last[4] as usize;
                let inside = words.chunks_exact(LEAF_WORDS).all(|w| {
                    (w[0] as usize) >= start as usize
                        && (w[0] + w[1]) as usize <= end
                        && (w[3] as usize) >= start as usize
                        && (w[3] + w[4]) as usize <= end
                });
                (inside && end <= data.len()).then_some((start as usize, end))
            }
            _ => None,
        };
        let Some((start, end)) = span else {
            self.events.extend_from_slice(&[first_new, 0]);
            return;
        };
        let base = self.data.len() as u32;
        self.data.extend_from_slice(&data[start..end]);
        let shift = |off: u32| off - start as u32 + base;
        for w in words.chunks_exact(LEAF_WORDS) {
            self.leaves
                .extend_from_slice(&[shift(w[0]), w[1], w[2], shift(w[3]), w[4]]);
        }
        self.events
            .extend_from_slice(&[first_new, (words.len() / LEAF_WORDS) as u32]);
    }

    /// A read-only view, as a plugin sees the batch.
    pub fn view(&self) -> BatchView<'_> {
        BatchView::new(&self.data, &self.leaves, &self.events)
    }

    /// Event `index`, its bytes checked as UTF-8 (and not the whole
    /// batch's, as [`FlatBatch::view`] does).
    pub fn event(&self, index: usize) -> EventView<'_> {
        BatchView::lazy(&self.data, &self.leaves, &self.events)
            .event(index)
            .checked()
    }
}

pub(crate) struct NumBuf {
    buf: [u8; 40],
    len: usize,
}

impl Default for NumBuf {
    fn default() -> Self {
        NumBuf {
            buf: [0; 40],
            len: 0,
        }
    }
}

impl NumBuf {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for NumBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// A value as stored in a leaf or an edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRef<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A JSON number, exactly as written.
    Number(&'a str),
    /// A string, unescaped.
    String(&'a str),
    /// A JSON text (`{}` / `[]` for empty containers in a batch).
    Json(&'a str),
}

impl<'a> ValueRef<'a> {
    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            ValueRef::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number as `f64`, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ValueRef::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// The number as `i64`, if this is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            ValueRef::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            ValueRef::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Kind code and value bytes, as written in the layout.
    pub fn encode(&self) -> (u32, &'a [u8]) {
        match *self {
            ValueRef::Null => (kind::NULL, b""),
            ValueRef::Bool(false) => (kind::FALSE, b""),
            ValueRef::Bool(true) => (kind::TRUE, b""),
            ValueRef::Number(n) => (kind::NUMBER, n.as_bytes()),
            ValueRef::String(s) => (kind::STRING, s.as_bytes()),
            ValueRef::Json(j) => (kind::JSON, j.as_bytes()),
        }
    }

    /// Decode a kind code and value bytes.
    pub fn decode(kind: u32, bytes: &'a [u8]) -> Result<Self, FlatError> {
        Self::decode_text(
            kind,
            std::str::from_utf8(bytes).map_err(|_| FlatError::NotUtf8)?,
        )
    }

    /// Decode a kind code and value text already known to be UTF-8.
    pub fn decode_text(kind: u32, text: &'a str) -> Result<Self, FlatError> {
        Self::of_kind(kind, text).ok_or(FlatError::BadKind(kind))
    }

    /// [`ValueRef::decode_text`] without the error: `None` for an unknown
    /// kind.
    #[inline(always)]
    fn of_kind(kind: u32, text: &'a str) -> Option<Self> {
        Some(match kind {
            kind::NULL => ValueRef::Null,
            kind::FALSE => ValueRef::Bool(false),
            kind::TRUE => ValueRef::Bool(true),
            kind::NUMBER => ValueRef::Number(text),
            kind::STRING => ValueRef::String(text),
            kind::JSON => ValueRef::Json(text),
            _ => return None,
        })
    }

    /// Convert to an owned JSON value.
    pub fn to_value(&self) -> Result<Value, FlatError> {
        Ok(match *self {
            ValueRef::Null => Value::Null,
            ValueRef::Bool(b) => Value::Bool(b),
            // A plain non-negative integer (what plugins mostly write) is
            // read directly, as serde_json would read it.
            ValueRef::Number(n)
                if (1..=19).contains(&n.len())
                    && n.bytes().all(|b| b.is_ascii_digit())
                    && (n.len() == 1 || !n.starts_with('0')) =>
            {
                Value::from(n.parse::<u64>().expect("at most 19 digits"))
            }
            ValueRef::Number(n) => match serde_json::from_str::<Value>(n) {
                Ok(v @ Value::Number(_)) => v,
                _ => return Err(FlatError::BadNumber(n.to_string())),
            },
            ValueRef::String(s) => Value::String(s.to_string()),
            ValueRef::Json(j) => {
                serde_json::from_str(j).map_err(|e| FlatError::BadJson(e.to_string()))?
            }
        })
    }
}

/// A read-only view of a flat batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchView<'a> {
    data: &'a [u8],
    /// `data` as text when all of it is UTF-8 (as the host writes it): leaves
    /// are then sliced out with a boundary check instead of validated one by one.
    text: Option<&'a str>,
    leaves: &'a [u32],
    events: &'a [u32],
}

impl<'a> BatchView<'a> {
    /// View raw buffers without checking up front that all of `data` is
    /// UTF-8: each leaf's text is checked when it is read. For one event
    /// of a large batch, or for reading a few leaves, where checking the
    /// whole batch would cost more than the reads.
    pub fn lazy(data: &'a [u8], leaves: &'a [u32], events: &'a [u32]) -> Self {
        BatchView {
            data,
            text: None,
            leaves,
            events,
        }
    }

    /// View raw buffers. Out-of-range references are treated as empty rather
    /// than trusted.
    pub fn new(data: &'a [u8], leaves: &'a [u32], events: &'a [u32]) -> Self {
        BatchView {
            data,
            text: std::str::from_utf8(data).ok(),
            leaves,
            events,
        }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len() / EVENT_WORDS
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The event at `index`.
    pub fn event(&self, index: usize) -> EventView<'a> {
        let first = self.events[index * EVENT_WORDS] as usize;
        let count = self.events[index * EVENT_WORDS + 1] as usize;
        let leaves = self
            .leaves
            .get(first * LEAF_WORDS..(first + count) * LEAF_WORDS)
            .unwrap_or(&[]);
        EventView {
            data: self.data,
            text: self.text,
            base: 0,
            leaves,
        }
    }
}

/// A read-only view of one event's leaves.
#[derive(Debug, Clone, Copy)]
pub struct EventView<'a> {
    data: &'a [u8],
    /// `data[base..]`'s first bytes as text, when known to be UTF-8.
    text: Option<&'a str>,
    base: usize,
    leaves: &'a [u32],
}

/// One leaf of an event: an escaped path and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf<'a> {
    /// Dotted path with `.`, `[`, `]` and `\` in keys escaped by a backslash;
    /// array items as `[i]` (see [`crate::path`]).
    pub path: &'a str,
    /// The value at that path.
    pub value: ValueRef<'a>,
}

impl<'a> EventView<'a> {
    /// Number of leaves.
    pub fn leaf_count(&self) -> usize {
        self.leaves.len() / LEAF_WORDS
    }

    /// Whether any leaf is at or under the (escaped) path `p`, comparing
    /// bytes only.
    pub fn has(&self, p: &str) -> bool {
        self.leaves
            .chunks_exact(LEAF_WORDS)
            .any(|w| at_or_under(self.bytes(w[0], w[1]), p))
    }

    fn bytes(&self, off: u32, len: u32) -> &'a [u8] {
        self.data
            .get(off as usize..off as usize + len as usize)
            .unwrap_or(&[])
    }

    /// The text at `off..off+len`; `None` when out of range, not on character
    /// boundaries, or not UTF-8.
    #[inline]
    fn text(&self, off: u32, len: u32) -> Option<&'a str> {
        let range = off as usize..off as usize + len as usize;
        match self.text {
            Some(t) if range.start >= self.base => {
                t.get(range.start - self.base..range.end - self.base)
            }
            _ => std::str::from_utf8(self.data.get(range)?).ok(),
        }
    }

    /// The same view, with the event's own bytes checked as UTF-8 once (an
    /// event's leaves own one contiguous run of bytes), so that reading
    /// its leaves checks nothing more.
    pub fn checked(mut self) -> Self {
        if self.text.is_some() {
            return self;
        }
        let (mut lo, mut hi) = (usize::MAX, 0);
        for w in self.leaves.chunks_exact(LEAF_WORDS) {
            lo = lo.min(w[0] as usize).min(w[3] as usize);
            hi = hi.max((w[0] + w[1]) as usize).max((w[3] + w[4]) as usize);
        }
        if let Some(t) = self
            .data
            .get(lo..hi)
            .and_then(|b| std::str::from_utf8(b).ok())
        {
            self.text = Some(t);
            self.base = lo;
        }
        self
    }

    // Always inlined: a call costs about as much as the reading itself.
    #[inline(always)]
    fn leaf(&self, w: &[u32; LEAF_WORDS]) -> Leaf<'a> {
        // The host writes valid UTF-8; a damaged leaf reads as an empty string.
        let (path, value) = match self.text {
            // Sliced out of text known to be UTF-8: a bounds and boundary
            // check each, the most common case by far.
            Some(t) => (
                slice_text(t, self.base, w[0], w[1]),
                slice_text(t, self.base, w[3], w[4]),
            ),
            None => (self.text(w[0], w[1]), self.text(w[3], w[4])),
        };
        Leaf {
            path: path.unwrap_or(""),
            value: value
                .and_then(|t| ValueRef::of_kind(w[2], t))
                .unwrap_or(ValueRef::String("")),
        }
    }

    /// The value of the leaf at exactly this (escaped) path.
    pub fn get(&self, path: &str) -> Option<ValueRef<'a>> {
        let wanted = path.as_bytes();
        self.leaves
            .as_chunks::<LEAF_WORDS>()
            .0
            .iter()
            // The length first: most paths differ in it.
            .find(|w| w[1] as usize == wanted.len() && same_bytes(self.bytes(w[0], w[1]), wanted))
            .map(|w| self.leaf(w).value)
    }

    /// Every leaf, in document order.
    pub fn leaves(&self) -> impl Iterator<Item = Leaf<'a>> + '_ {
        self.leaves
            .as_chunks::<LEAF_WORDS>()
            .0
            .iter()
            .map(|w| self.leaf(w))
    }
}

/// `text[off - base..][..len]`, when it lies inside `text` on character
/// boundaries (`text` holds the bytes from `base` on).
#[inline]
fn slice_text(text: &str, base: usize, off: u32, len: u32) -> Option<&str> {
    let start = (off as usize).checked_sub(base)?;
    text.get(start..start + len as usize)
}

/// Whether `a` and `b` hold the same bytes, for short texts such as paths,
/// keys and field values: a word at a time, the last word overlapping the
/// one before, without a call into `memcmp` (a byte loop in WebAssembly,
/// and a call that costs more than the comparison natively).
#[inline]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word8 =
        |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("eight bytes"));
    let word4 =
        |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("four bytes"));
    if n < 8 {
        return if n >= 4 {
            word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4)
        } else {
            (0..n).all(|i| a[i] == b[i])
        };
    }
    let mut i = 0;
    while i + 8 < n {
        if word8(a, i) != word8(b, i) {
            return false;
        }
        i += 8;
    }
    word8(a, n - 8) == word8(b, n - 8)
}

/// Edits and their bytes, as a plugin returns them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EditBuffer {
    /// [`EDIT_WORDS`] words per edit: event index, operation ([`op`]), path
    /// offset, path length, value kind ([`kind`]), value offset, value length.
    pub edits: Vec<u32>,
    /// Path and value bytes of every edit, back to back.
    pub data: Vec<u8>,
}

impl EditBuffer {
    fn push(&mut self, event: u32, op: u32, path: &str, value: ValueRef<'_>) {
        let path_off = self.data.len() as u32;
        self.data.extend_from_slice(path.as_bytes());
        let (kind, bytes) = value.encode();
        let val_off = self.data.len() as u32;
        self.data.extend_from_slice(bytes);
        self.edits.extend_from_slice(&[
            event,
            op,
            path_off,
            path.len() as u32,
            kind,
            val_off,
            bytes.len() as u32,
        ]);
    }

    /// Record "set `path` of event `event` to `value`".
    pub fn set(&mut self, event: u32, path: &str, value: ValueRef<'_>) {
        self.push(event, op::SET, path, value);
    }

    /// Record "remove `path` from event `event`".
    pub fn remove(&mut self, event: u32, path: &str) {
        self.push(event, op::REMOVE, path, ValueRef::Null);
    }

    /// Whether no edit was recorded.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    /// Forget every edit, keeping the allocations.
    pub fn clear(&mut self) {
        self.edits.clear();
        self.data.clear();
    }
}

/// What is wrong with a flat buffer a plugin returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // fields are named by the messages
pub enum FlatError {
    /// The edit list is not whole edits.
    #[error("edit list length {0} is not a multiple of {EDIT_WORDS}")]
    EditLength(usize),
    /// An edit names an event the batch does not have.
    #[error("edit {edit} names event {event}, but the batch has {len} events")]
    EventOutOfRange { edit: usize, event: u32, len: usize },
    /// An edit's operation is neither set nor remove.
    #[error("edit {edit} has unknown operation {op}")]
    BadOp { edit: usize, op: u32 },
    /// An edit's path or value lies outside the edit data.
    #[error("edit {edit} points outside its data ({off}+{len} > {size})")]
    OutOfBounds {
        edit: usize,
        off: u32,
        len: u32,
        size: usize,
    },
    /// A value kind not in [`kind`].
    #[error("unknown value kind {0}")]
    BadKind(u32),
    /// Text that is not UTF-8.
    #[error("value is not valid UTF-8")]
    NotUtf8,
    /// A number value that does not parse as a JSON number.
    #[error("{0:?} is not a JSON number")]
    BadNumber(String),
    /// A JSON value that does not parse.
    #[error("value is not valid JSON: {0}")]
    BadJson(String),
    /// An edit's path does not parse.
    #[error("edit {edit}: {source}")]
    Path { edit: usize, source: PathError },
    /// An edit's value is wrong.
    #[error("edit {edit}: {source}")]
    Value {
        edit: usize,
        #[source]
        source: Box<FlatError>,
    },
}

/// Apply a plugin's edits to the events of the batch it was given. Returns, per
/// event, whether it changed. All edits are checked before any is applied, so a
/// malformed answer leaves the events untouched.
pub fn apply_edits(
    events: &mut [Value],
    edits: &[u32],
    data: &[u8],
) -> Result<Vec<bool>, FlatError> {
    Ok(Edits::check(edits, data, events.len())?.apply_to_values(events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_read_as_serde_json_reads_them() {
        for n in [
            "0",
            "7",
            "42",
            "1234567890123456789",
            "18446744073709551615",
            "99999999999999999999",
            "-1",
            "-0",
            "1.0",
            "1e5",
            "0.5",
        ] {
            let ours = ValueRef::Number(n).to_value().unwrap();
            let theirs: Value = serde_json::from_str(n).unwrap();
            assert_eq!(ours, theirs, "{n}");
            assert_eq!(ours.to_string(), theirs.to_string(), "{n}");
        }
        for bad in ["", "00", "01", "+1", "1.", "x"] {
            assert!(ValueRef::Number(bad).to_value().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn encodes_every_leaf_losslessly() {
        let ev = json!({
            "a": 1, "b": -1.5e3, "c": "x.y", "d": null, "e": true, "f": false,
            "g": {}, "h": [], "i": {"j": [1, {"k": "v"}]}, "dot.key": "d",
            "big": 18446744073709551615u64
        });
        let batch = FlatBatch::encode([&ev]);
        let view = batch.view();
        assert_eq!(view.len(), 1);
        let e = view.event(0);
        let leaves: Vec<_> = e.leaves().map(|l| (l.path, l.value)).collect();
        assert_eq!(
            leaves,
            vec![
                ("a", ValueRef::Number("1")),
                ("b", ValueRef::Number("-1500.0")),
                ("c", ValueRef::String("x.y")),
                ("d", ValueRef::Null),
                ("e", ValueRef::Bool(true)),
                ("f", ValueRef::Bool(false)),
                ("g", ValueRef::Json("{}")),
                ("h", ValueRef::Json("[]")),
                ("i.j[0]", ValueRef::Number("1")),
                ("i.j[1].k", ValueRef::String("v")),
                ("dot\\.key", ValueRef::String("d")),
                ("big", ValueRef::Number("18446744073709551615")),
            ]
        );
        // Rebuilding the event from its leaves gives it back exactly.
        let mut rebuilt = json!({});
        for leaf in e.leaves() {
            path::set(
                &mut rebuilt,
                &path::parse(leaf.path).unwrap(),
                leaf.value.to_value().unwrap(),
            );
        }
        assert_eq!(rebuilt, ev);
    }

    #[test]
    fn copied_events_read_as_encoded() {
        let events = vec![
            json!({"a": 1, "b": {"c": "x", "d": [true, null, {}]}}),
            json!({}),
            json!({"s": "ünïcode", "n": 1.5e3}),
        ];
        let whole = FlatBatch::encode(&events);
        // Copy the events back in another order, between fresh ones.
        let mut mixed = FlatBatch::with_capacity(4);
        mixed.push_event(&json!({"fresh": 1}));
        for i in [2, 0, 1] {
            mixed.push_copied(&whole.data, &whole.leaves, &whole.events, i);
        }
        let expected = FlatBatch::encode(&[
            json!({"fresh": 1}),
            events[2].clone(),
            events[0].clone(),
            events[1].clone(),
        ]);
        assert_eq!(mixed, expected);
        // Nothing out of range is trusted.
        let mut bad = FlatBatch::default();
        bad.push_copied(&whole.data, &whole.leaves, &whole.events, 9);
        bad.push_copied(&whole.data[..3], &whole.leaves, &whole.events, 0);
        assert_eq!(bad.len(), 2);
        assert!(bad.leaves.is_empty() && bad.data.is_empty());
    }

    #[test]
    fn same_bytes_is_equality() {
        let base: Vec<u8> = (0..64u8).map(|i| b'a' + i % 26).collect();
        for n in 0..=base.len() {
            let a = &base[..n];
            assert!(same_bytes(a, a));
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 1;
                assert!(!same_bytes(a, &b), "{n} bytes, differing at {i}");
            }
        }
        assert!(!same_bytes(b"abc", b"abcd"));
        assert!(!same_bytes(b"", b"a"));
    }

    #[test]
    fn get_finds_leaves_by_path() {
        let a = json!({"context": {"os": "linux"}, "n": 3});
        let b = json!({"context": {"os": "darwin"}});
        let batch = FlatBatch::encode([&a, &b]);
        let v = batch.view();
        assert_eq!(
            v.event(0).get("context.os"),
            Some(ValueRef::String("linux"))
        );
        assert_eq!(
            v.event(1).get("context.os"),
            Some(ValueRef::String("darwin"))
        );
        assert_eq!(v.event(1).get("n"), None);
        assert_eq!(v.event(0).get("n").and_then(|n| n.as_i64()), Some(3));
    }

    #[test]
    fn edits_apply_in_order() {
        let mut events = vec![json!({"a": "x", "b": 1}), json!({"a": "y"})];
        let mut edits = EditBuffer::default();
        edits.set(1, "a", ValueRef::String("[email]"));
        edits.set(1, "meta.tags", ValueRef::Json(r#"["pii"]"#));
        edits.remove(0, "b");
        let changed = apply_edits(&mut events, &edits.edits, &edits.data).unwrap();
        assert_eq!(changed, vec![true, true]);
        assert_eq!(events[0], json!({"a": "x"}));
        assert_eq!(
            events[1],
            json!({"a": "[email]", "meta": {"tags": ["pii"]}})
        );
    }

    #[test]
    fn malformed_edits_are_refused_whole() {
        let mut events = vec![json!({"a": 1})];
        let check = |edits: &[u32], data: &[u8], events: &mut Vec<Value>| {
            let err = apply_edits(events, edits, data).unwrap_err();
            assert_eq!(events[0], json!({"a": 1}), "nothing applied after {err}");
            err
        };
        assert!(matches!(
            check(&[0, 0, 0], b"", &mut events),
            FlatError::EditLength(3)
        ));
        assert!(matches!(
            check(&[5, 0, 0, 1, 0, 0, 0], b"a", &mut events),
            FlatError::EventOutOfRange { event: 5, .. }
        ));
        assert!(matches!(
            check(&[0, 0, 0, 9, 0, 0, 0], b"a", &mut events),
            FlatError::OutOfBounds { .. }
        ));
        assert!(matches!(
            check(&[0, 7, 0, 1, 0, 0, 0], b"a", &mut events),
            FlatError::BadOp { op: 7, .. }
        ));
        // A good edit followed by a bad one: neither applies.
        assert!(matches!(
            check(
                &[0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 3, 1, 2],
                b"aZZ",
                &mut events
            ),
            FlatError::Value { .. }
        ));
    }
}
