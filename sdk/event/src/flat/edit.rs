//! A plugin's edits, checked once, then applied either to JSON values (the
//! plugin SDK's harness) or straight to the flat layout (the gateway, which
//! then never rebuilds an edited event as a JSON value).
//!
//! Both applications give the same events: [`Rewriter::push_edited`]
//! produces exactly the leaves [`FlatBatch::encode`] would write for the
//! event after [`Edits::apply_to_values`]. What the flat rewrite does not
//! cover (removing an array element, which renumbers the ones after it; a
//! value holding an empty key, which the layout cannot spell) it refuses,
//! and the caller edits that event as a JSON value instead.

use super::{EDIT_WORDS, EventView, FlatBatch, FlatError, LEAF_WORDS, ValueRef, kind, op};
use crate::path::{self, SegmentRef};
use serde_json::Value;
use std::fmt::Write as _;
use std::ops::Range;

/// What one edit does.
#[derive(Debug)]
enum Change {
    Remove,
    /// Set the path to one leaf: its kind and value bytes (in `Edits::text`).
    Leaf {
        kind: u32,
        value: Range<usize>,
    },
    /// Set the path to a JSON text, parsed.
    Json(Value),
}

#[derive(Debug)]
struct Edit {
    event: u32,
    /// The path as the layout writes it (`Edits::text`).
    path: Range<usize>,
    /// Where each step of the path ends, relative to its start (`Edits::ends`).
    steps: Range<usize>,
    change: Change,
}

/// A plugin's edits, checked: every path parsed and written as the layout
/// writes paths, every value decoded. Made by [`Edits::check`], which refuses
/// a malformed answer whole, before anything is applied.
#[derive(Debug, Default)]
pub struct Edits {
    edits: Vec<Edit>,
    /// Canonical paths and leaf values, back to back.
    text: String,
    ends: Vec<usize>,
    /// Edit positions grouped by event, each event's in answer order.
    order: Vec<u32>,
    /// Per event, its range of `order`.
    spans: Vec<(u32, u32)>,
}

impl Edits {
    /// Check the edits a plugin returned for a batch of `events` events.
    pub fn check(edits: &[u32], data: &[u8], events: usize) -> Result<Self, FlatError> {
        if !edits.len().is_multiple_of(EDIT_WORDS) {
            return Err(FlatError::EditLength(edits.len()));
        }
        // Sized for the answer: its paths and values are about its data, a
        // path has a few steps.
        let count = edits.len() / EDIT_WORDS;
        let mut out = Edits {
            edits: Vec::with_capacity(count),
            text: String::with_capacity(data.len() + data.len() / 8),
            ends: Vec::with_capacity(count * 3),
            ..Edits::default()
        };
        let mut segments = Vec::new();
        let mut canon = String::new();
        // The SDK writes only UTF-8 into an answer's data: checked once,
        // each path and value is then a slice of it whose ends fall on
        // character boundaries. Otherwise each is checked alone. Either way
        // a text is refused exactly when it is not UTF-8 by itself.
        let whole = std::str::from_utf8(data).ok();
        for (n, w) in edits.chunks_exact(EDIT_WORDS).enumerate() {
            let (event, operation, path_off, path_len, value_kind, val_off, val_len) =
                (w[0], w[1], w[2], w[3], w[4], w[5], w[6]);
            if event as usize >= events {
                return Err(FlatError::EventOutOfRange {
                    edit: n,
                    event,
                    len: events,
                });
            }
            // `Ok(None)`: in bounds, but not UTF-8.
            let text = |off: u32, len: u32| {
                let range = off as usize..off as usize + len as usize;
                let bytes = data.get(range.clone()).ok_or(FlatError::OutOfBounds {
                    edit: n,
                    off,
                    len,
                    size: data.len(),
                })?;
                Ok::<_, FlatError>(match whole {
                    Some(t) => t.get(range),
                    None => std::str::from_utf8(bytes).ok(),
                })
            };
            let path_text = text(path_off, path_len)?.ok_or_else(|| FlatError::Value {
                edit: n,
                source: Box::new(FlatError::NotUtf8),
            })?;
            // A plain path's steps end at its dots and at its end.
            let first_end = out.ends.len();
            let plain = plain_steps(path_text.as_bytes(), &mut out.ends);
            if !plain {
                segments.clear();
                path::parse_into(path_text, &mut segments)
                    .map_err(|source| FlatError::Path { edit: n, source })?;
            }
            let bad_value = |e: FlatError| FlatError::Value {
                edit: n,
                source: Box::new(e),
            };
            let change = match operation {
                op::SET => {
                    let value = match text(val_off, val_len)? {
                        Some(t) => ValueRef::decode_text(value_kind, t),
                        None => Err(FlatError::NotUtf8),
                    }
                    .map_err(bad_value)?;
                    match value {
                        ValueRef::Json(_) => Change::Json(value.to_value().map_err(bad_value)?),
                        ValueRef::Number(n) => {
                            let start = out.text.len();
                            if plain_integer(n) {
                                // Read and written again, it is the same text.
                                out.text.push_str(n);
                            } else {
                                // As the value is read and encoded again, so
                                // `1.50` is stored as `1.5`.
                                let Value::Number(number) = value.to_value().map_err(bad_value)?
                                else {
                                    unreachable!("a number reads as a number")
                                };
                                let _ = write!(out.text, "{number}");
                            }
                            Change::Leaf {
                                kind: kind::NUMBER,
                                value: start..out.text.len(),
                            }
                        }
                        other => {
                            let (k, _) = other.encode();
                            let start = out.text.len();
                            // A string's text as decoded; null and booleans
                            // have none.
                            if let ValueRef::String(t) = other {
                                out.text.push_str(t);
                            }
                            Change::Leaf {
                                kind: k,
                                value: start..out.text.len(),
                            }
                        }
                    }
                }
                op::REMOVE => Change::Remove,
                other => return Err(FlatError::BadOp { edit: n, op: other }),
            };
            let start = out.text.len();
            if plain {
                // Written as the layout writes it already (its steps were
                // pushed by `plain_steps`).
                out.text.push_str(path_text);
            } else {
                canon.clear();
                for s in &segments {
                    match s {
                        SegmentRef::Key(k) => path::push_key(&mut canon, k),
                        SegmentRef::Index(i) => path::push_index(&mut canon, *i),
                    }
                    out.ends.push(canon.len());
                }
                out.text.push_str(&canon);
            }
            out.edits.push(Edit {
                event,
                path: start..out.text.len(),
                steps: first_end..out.ends.len(),
                change,
            });
        }
        // Group by event, keeping each event's edits in order.
        out.order = (0..out.edits.len() as u32).collect();
        if !out.edits.is_sorted_by_key(|e| e.event) {
            out.order.sort_by_key(|&k| out.edits[k as usize].event);
        }
        out.spans = vec![(0, 0); events];
        let mut k = 0;
        while k < out.order.len() {
            let event = out.edits[out.order[k] as usize].event as usize;
            let start = k;
            while k < out.order.len() && out.edits[out.order[k] as usize].event as usize == event {
                k += 1;
            }
            out.spans[event] = (start as u32, k as u32);
        }
        Ok(out)
    }

    /// Whether there is no edit at all.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    /// About how much applying these edits adds to a batch: bytes of data
    /// and words of leaves (a set adds its path and value, most often one
    /// leaf). The host sizes a plugin's next batch with it, so that it
    /// does not grow while it is built.
    pub fn growth(&self) -> (usize, usize) {
        (self.text.len(), self.edits.len() * 2 * LEAF_WORDS)
    }

    /// Whether event `event` has edits.
    pub fn touches(&self, event: usize) -> bool {
        self.spans.get(event).is_some_and(|(a, b)| a < b)
    }

    fn of(&self, event: usize) -> impl Iterator<Item = &Edit> + '_ {
        let (a, b) = self.spans.get(event).copied().unwrap_or((0, 0));
        self.order[a as usize..b as usize]
            .iter()
            .map(|&k| &self.edits[k as usize])
    }

    fn path(&self, e: &Edit) -> &str {
        &self.text[e.path.clone()]
    }

    /// The value an edit sets, as JSON (a JSON text's value cloned).
    fn value(&self, change: &Change) -> Option<Value> {
        match change {
            Change::Remove => None,
            Change::Leaf { kind, value } => Some(
                ValueRef::decode_text(*kind, &self.text[value.clone()])
                    .and_then(|v| v.to_value())
                    .expect("checked"),
            ),
            Change::Json(v) => Some(v.clone()),
        }
    }

    /// Apply event `event`'s edits to its JSON value.
    pub fn apply_event(&self, event: usize, value: &mut Value) {
        let mut segments = Vec::new();
        for e in self.of(event) {
            apply(self.path(e), self.value(&e.change), value, &mut segments);
        }
    }

    /// Apply every edit to the events it names, moving the values out.
    /// Returns, per event, whether it has edits.
    pub fn apply_to_values(mut self, events: &mut [Value]) -> Vec<bool> {
        let mut segments = Vec::new();
        let mut changed = vec![false; events.len()];
        for e in std::mem::take(&mut self.edits) {
            let target = &mut events[e.event as usize];
            changed[e.event as usize] = true;
            let value = match e.change {
                Change::Json(v) => Some(v),
                other => self.value(&other),
            };
            apply(&self.text[e.path], value, target, &mut segments);
        }
        changed
    }
}

/// `path::set` (a value) or `path::remove` (none) at a checked path.
fn apply<'a>(
    path: &'a str,
    value: Option<Value>,
    target: &mut Value,
    segments: &mut Vec<SegmentRef<'a>>,
) {
    segments.clear();
    path::parse_into(path, segments).expect("checked");
    match value {
        Some(v) => path::set(target, segments, v),
        None => {
            path::remove(target, segments);
        }
    }
}

/// If `p` is a plain path (keys only, none empty and none with a byte that
/// the layout escapes in a key, `.` aside, which separates them: it reads
/// as its keys and is written back the same), push where each of its steps
/// ends (each dot, then its length) to `ends` and return `true`; else
/// leave `ends` as it was and return `false`. Eight bytes at a time: paths
/// run to a few dozen bytes, with a dot or two.
fn plain_steps(p: &[u8], ends: &mut Vec<usize>) -> bool {
    use crate::words::{bytes_equal, padded, word};
    if p.first().is_none_or(|&b| b == b'.') || p.last() == Some(&b'.') {
        return false;
    }
    let mark = ends.len();
    let mut last_dot = usize::MAX;
    let mut i = 0;
    while i < p.len() {
        // The last bytes padded with a byte of no interest.
        let w = if i + 8 <= p.len() {
            word(p, i)
        } else {
            padded(p, i, b'a')
        };
        let bad = bytes_equal(w, b'[') | bytes_equal(w, b']') | bytes_equal(w, b'\\');
        let mut dots = bytes_equal(w, b'.');
        if bad != 0 {
            ends.truncate(mark);
            return false;
        }
        while dots != 0 {
            let at = i + (dots.trailing_zeros() / 8) as usize;
            // Two dots in a row: an empty key.
            if last_dot.wrapping_add(1) == at {
                ends.truncate(mark);
                return false;
            }
            ends.push(at);
            last_dot = at;
            dots &= dots - 1;
        }
        i += 8;
    }
    ends.push(p.len());
    true
}

/// [`plain_steps`]'s answer, byte by byte: the reference it is tested
/// against.
#[cfg(test)]
fn plain_path(p: &[u8]) -> bool {
    let mut prev = b'.';
    for &b in p {
        if matches!(b, b'[' | b']' | b'\\') || (b == b'.' && prev == b'.') {
            return false;
        }
        prev = b;
    }
    !p.is_empty() && prev != b'.'
}

/// A non-negative integer as `serde_json` writes it: digits, no leading
/// zero, at most 19 of them (so it fits a `u64`).
fn plain_integer(n: &str) -> bool {
    (1..=19).contains(&n.len())
        && n.bytes().all(|b| b.is_ascii_digit())
        && (n.len() == 1 || !n.starts_with('0'))
}

/// Whether the layout writes this value without loss: it cannot tell an
/// empty key from its parent, so a value holding one must be edited as JSON.
pub fn lossless(value: &Value) -> bool {
    match value {
        Value::Object(m) => m.iter().all(|(k, v)| !k.is_empty() && lossless(v)),
        Value::Array(a) => a.iter().all(lossless),
        _ => true,
    }
}

/// Where a working leaf's bytes are: the batch being edited, or the
/// rewriter's own buffer.
#[derive(Debug, Clone, Copy)]
enum Src {
    Old(u32, u32),
    New(u32, u32),
}

#[derive(Debug, Clone, Copy)]
struct Work {
    path: Src,
    kind: u32,
    value: Src,
    /// The path's first byte (0 for the event itself), which most leaves
    /// are told apart by when an edit looks for its place.
    first: u8,
}

/// Applies edits to events in the flat layout; holds its buffers from one
/// event to the next.
#[derive(Debug, Default)]
pub struct Rewriter {
    work: Vec<Work>,
    /// New leaves (set values, padding) are encoded here first.
    fresh: FlatBatch,
    path: String,
    /// Leaves on their way into `work`.
    tmp: Vec<Work>,
}

/// The flat rewrite does not cover this event's edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported;

impl Rewriter {
    /// Append event `index` of `from` to `to` with its edits applied. On
    /// [`Unsupported`], `to` is unchanged and the event is to be edited as
    /// a JSON value.
    pub fn push_edited(
        &mut self,
        to: &mut FlatBatch,
        from: &EventView<'_>,
        edits: &Edits,
        index: usize,
    ) -> Result<(), Unsupported> {
        self.work.clear();
        self.fresh.data.clear();
        self.fresh.leaves.clear();
        for w in from.leaves.chunks_exact(LEAF_WORDS) {
            self.work.push(Work {
                path: Src::Old(w[0], w[1]),
                kind: w[2],
                value: Src::Old(w[3], w[4]),
                first: first_byte(from.data, w[0], w[1]),
            });
        }
        for e in edits.of(index) {
            let p = edits.path(e);
            let ends = &edits.ends[e.steps.clone()];
            match &e.change {
                Change::Remove => self.remove(from.data, p, ends)?,
                change => self.set(from.data, p, ends, edits, change)?,
            }
        }
        let first = (to.leaves.len() / LEAF_WORDS) as u32;
        let mut k = 0;
        while k < self.work.len() {
            // A run of old leaves whose bytes follow one another is copied
            // in one piece (most of an event: edits touch a few fields).
            let w = self.work[k];
            if let Src::Old(start, _) = w.path {
                let mut end = k;
                let mut next = start;
                while let Some(Work {
                    path: Src::Old(p, pl),
                    value: Src::Old(v, vl),
                    ..
                }) = self.work.get(end)
                    && *p == next
                    && *v == p + pl
                {
                    next = v + vl;
                    end += 1;
                }
                if end > k
                    && let Some(piece) = from.data.get(start as usize..next as usize)
                {
                    let base = to.data.len() as u32;
                    to.data.extend_from_slice(piece);
                    for w in &self.work[k..end] {
                        let (Src::Old(p, pl), Src::Old(v, vl)) = (w.path, w.value) else {
                            unreachable!("old leaves")
                        };
                        to.leaves.extend_from_slice(&[
                            p - start + base,
                            pl,
                            w.kind,
                            v - start + base,
                            vl,
                        ]);
                    }
                    k = end;
                    continue;
                }
            }
            let path = bytes(from.data, &self.fresh.data, w.path);
            let value = bytes(from.data, &self.fresh.data, w.value);
            to.push_leaf_bytes(path, w.kind, value);
            k += 1;
        }
        to.events
            .extend_from_slice(&[first, self.work.len() as u32]);
        Ok(())
    }

    fn path_of<'a>(&'a self, old: &'a [u8], w: &Work) -> &'a [u8] {
        bytes(old, &self.fresh.data, w.path)
    }

    /// The leaves at or under `p`: one contiguous run, as the layout keeps
    /// every value's leaves together.
    fn run(&self, old: &[u8], p: &str) -> Option<Range<usize>> {
        let start = self
            .work
            .iter()
            .position(|w| at_or_under(self.path_of(old, w), p))?;
        let len = self.work[start..]
            .iter()
            .take_while(|w| at_or_under(self.path_of(old, w), p))
            .count();
        Some(start..start + len)
    }

    /// The deepest of the path's prefixes (`j` steps of it, `0` for the
    /// event itself) that has leaves at or under it, and their run: one
    /// pass over the leaves, each compared with the path's prefixes from the
    /// shortest until one does not hold it. `None` for an event without
    /// leaves, which the encoder never writes.
    fn deepest(&self, old: &[u8], p: &str, ends: &[usize]) -> Option<(usize, Range<usize>)> {
        let n = self.work.len();
        if n == 0 {
            return None;
        }
        // A leaf whose path starts with another byte than `p` is under none
        // of its steps (each is a key or an index, so none is empty): such
        // leaves are skipped in a loop of their own, most of an event's.
        let first = p.as_bytes().first().copied().unwrap_or(0);
        let every = ends.first() == Some(&0);
        let skip = |mut k: usize| {
            if !every {
                while k < n && self.work[k].first != first {
                    k += 1;
                }
            }
            k
        };
        // While `best` is 0, no prefix has been found: the deepest is the
        // event itself, every leaf.
        let (mut best, mut run) = (0, 0..0);
        let mut k = skip(0);
        while k < n {
            let path = self.path_of(old, &self.work[k]);
            let mut d = 0;
            if every || self.work[k].first == first {
                while d < ends.len() && at_or_under(path, &p[..ends[d]]) {
                    d += 1;
                }
            }
            if d > best {
                best = d;
                run = k..k + 1;
            } else if d > 0 && d == best && run.end == k {
                run.end = k + 1;
            } else if d < best {
                // The leaves under a prefix are one run: past the run of
                // the deepest found, no leaf is under it or deeper.
                break;
            } else if best == 0 {
                k = skip(k + 1);
                continue;
            }
            k += 1;
        }
        if best == 0 {
            run = 0..n;
        }
        Some((best, run))
    }

    /// Encode `change` at path `p` into `fresh`; returns its working leaves.
    fn fresh_leaves(
        &mut self,
        p: &str,
        edits: &Edits,
        change: &Change,
    ) -> Result<Range<usize>, Unsupported> {
        let first = self.fresh.leaves.len() / LEAF_WORDS;
        match change {
            Change::Remove => unreachable!("a set"),
            Change::Leaf { kind, value } => {
                self.fresh
                    .push_leaf(p, *kind, edits.text[value.clone()].as_bytes());
            }
            Change::Json(v) => {
                if !lossless(v) {
                    return Err(Unsupported);
                }
                self.path.clear();
                self.path.push_str(p);
                let mut path = std::mem::take(&mut self.path);
                self.fresh.push_value(v, &mut path);
                self.path = path;
            }
        }
        Ok(first..self.fresh.leaves.len() / LEAF_WORDS)
    }

    /// Nulls at `a[from..to]` (an array padded up to a new index).
    fn pad(&mut self, a: &str, from: usize, to: usize) -> Range<usize> {
        let first = self.fresh.leaves.len() / LEAF_WORDS;
        for i in from..to {
            self.path.clear();
            self.path.push_str(a);
            path::push_index(&mut self.path, i);
            let p = std::mem::take(&mut self.path);
            self.fresh.push_leaf(&p, kind::NULL, b"");
            self.path = p;
        }
        first..self.fresh.leaves.len() / LEAF_WORDS
    }

    fn fresh_work(&self, leaves: Range<usize>) -> impl Iterator<Item = Work> + '_ {
        self.fresh.leaves[leaves.start * LEAF_WORDS..leaves.end * LEAF_WORDS]
            .chunks_exact(LEAF_WORDS)
            .map(|w| Work {
                path: Src::New(w[0], w[1]),
                kind: w[2],
                value: Src::New(w[3], w[4]),
                first: first_byte(&self.fresh.data, w[0], w[1]),
            })
    }

    /// `path::set`, on leaves.
    fn set(
        &mut self,
        old: &[u8],
        p: &str,
        ends: &[usize],
        edits: &Edits,
        change: &Change,
    ) -> Result<(), Unsupported> {
        let (j, run) = self.deepest(old, p, ends).ok_or(Unsupported)?;
        // The path is there: its leaves give way to the new value's.
        if j == ends.len() {
            let new = self.fresh_leaves(p, edits, change)?;
            let mut tmp = std::mem::take(&mut self.tmp);
            tmp.clear();
            tmp.extend(self.fresh_work(new));
            self.work.splice(run, tmp.drain(..));
            self.tmp = tmp;
            return Ok(());
        }
        // Else from the deepest part of the path that is there.
        {
            let a = &p[..if j == 0 { 0 } else { ends[j - 1] }];
            // Whether the step the path takes from there is an index.
            let index = p[a.len()..].starts_with('[').then_some(());
            let first_path = self.path_of(old, &self.work[run.start]);
            let node = if run.len() == 1 && first_path.len() == a.len() {
                Node::Leaf
            } else if first_path.get(a.len()) == Some(&b'[') {
                // `a[0]…`, or `[0]…` for the event itself.
                Node::Array
            } else {
                Node::Object
            };
            let (at, remove_old, first_pad) = match (node, index) {
                // A new key of an object: after its last leaf.
                (Node::Object, None) => (run.end, false, 0),
                // A new element of an array, padded with nulls up to it.
                (Node::Array, Some(_)) => {
                    let last = self.path_of(old, &self.work[run.end - 1]);
                    let count = element_index(&last[a.len()..]).ok_or(Unsupported)? + 1;
                    (run.end, false, count)
                }
                // A scalar, or a container of the other kind: replaced by
                // the container the path needs.
                _ => (run.start, true, 0),
            };
            // Every array the path creates is padded with nulls up to its
            // index: `a[2].b[1]` on nothing is `a: [null, null, {b: [null, …]}]`.
            let mut leaves = std::mem::take(&mut self.tmp);
            leaves.clear();
            for t in j..ends.len() {
                let step = &p[if t == 0 { 0 } else { ends[t - 1] }..ends[t]];
                let Some(i) = step.trim_start_matches('.').strip_prefix('[').map(|s| {
                    s.trim_end_matches(']')
                        .parse::<usize>()
                        .expect("a rendered index")
                }) else {
                    continue;
                };
                let from = if t == j { first_pad } else { 0 };
                let prefix = &p[..if t == 0 { 0 } else { ends[t - 1] }];
                let padding = self.pad(prefix, from, i);
                leaves.extend(self.fresh_work(padding));
            }
            let new = self.fresh_leaves(p, edits, change)?;
            leaves.extend(self.fresh_work(new));
            let replaced = if remove_old { run } else { at..at };
            self.work.splice(replaced, leaves.drain(..));
            self.tmp = leaves;
            Ok(())
        }
    }

    /// `path::remove`, on leaves: a key only (an element's removal renumbers
    /// the ones after it).
    fn remove(&mut self, old: &[u8], p: &str, ends: &[usize]) -> Result<(), Unsupported> {
        let run = match self.deepest(old, p, ends) {
            Some((j, run)) if j == ends.len() => run,
            _ => return Ok(()),
        };
        let parent = &p[..if ends.len() >= 2 {
            ends[ends.len() - 2]
        } else {
            0
        }];
        if p[parent.len()..].starts_with('[') {
            return Err(Unsupported);
        }
        let at = run.start;
        self.work.drain(run);
        // An object left without keys is an empty object.
        if self.run(old, parent).is_none() {
            let first = self.fresh.leaves.len() / LEAF_WORDS;
            self.fresh.push_leaf(parent, kind::JSON, b"{}");
            let w: Vec<Work> = self.fresh_work(first..first + 1).collect();
            self.work.splice(at..at, w);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Leaf,
    Object,
    Array,
}

fn bytes<'a>(old: &'a [u8], fresh: &'a [u8], src: Src) -> &'a [u8] {
    let (buf, off, len) = match src {
        Src::Old(o, l) => (old, o, l),
        Src::New(o, l) => (fresh, o, l),
    };
    buf.get(off as usize..off as usize + len as usize)
        .unwrap_or(&[])
}

/// The first byte of the path at `off..off + len` of `buf`, 0 when empty.
fn first_byte(buf: &[u8], off: u32, len: u32) -> u8 {
    if len == 0 {
        0
    } else {
        buf.get(off as usize).copied().unwrap_or(0)
    }
}

/// Whether a leaf at `path` is at or under `p` (both as the layout writes
/// paths; `p` empty is the event itself).
pub fn at_or_under(path: &[u8], p: &str) -> bool {
    let p = p.as_bytes();
    if p.is_empty() {
        return true;
    }
    path.len() >= p.len()
        && super::same_bytes(&path[..p.len()], p)
        && (path.len() == p.len() || matches!(path[p.len()], b'.' | b'['))
}

/// The index `i` of a path's rest that starts with `[i]`.
fn element_index(rest: &[u8]) -> Option<usize> {
    let rest = rest.strip_prefix(b"[")?;
    let end = rest.iter().position(|&b| b == b']')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flat::EditBuffer;

    /// A plain path is taken as it is written; every path, plain or not,
    /// ends up as the path parser and writer make it, with the same steps,
    /// or is refused as the parser refuses it.
    #[test]
    fn paths_are_written_as_the_parser_reads_them() {
        let pieces = [
            "a",
            "ctx",
            "é",
            ".",
            "..",
            "[1]",
            "]",
            "\\.",
            "\\\\",
            "[",
            "installation_identifier",
            "tool_version",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut plain_seen = 0;
        for _ in 0..20_000 {
            let p = crate::words::joined(&pieces, &mut seed);
            let mut buffer = EditBuffer::default();
            buffer.set(0, &p, ValueRef::String("x"));
            let checked = Edits::check(&buffer.edits, &buffer.data, 1);
            let mut segments = Vec::new();
            match path::parse_into(&p, &mut segments) {
                Err(e) => {
                    assert!(!plain_steps(p.as_bytes(), &mut Vec::new()), "{p:?}");
                    let refused = checked.expect_err(&p).to_string();
                    assert!(refused.contains(&e.to_string()), "{p:?}: {refused}");
                }
                Ok(()) => {
                    let mut canon = String::new();
                    let mut ends = Vec::new();
                    for s in &segments {
                        match s {
                            SegmentRef::Key(k) => path::push_key(&mut canon, k),
                            SegmentRef::Index(i) => path::push_index(&mut canon, *i),
                        }
                        ends.push(canon.len());
                    }
                    let edits = checked.expect(&p);
                    let e = &edits.edits[0];
                    assert_eq!(edits.path(e), canon, "{p:?}");
                    assert_eq!(&edits.ends[e.steps.clone()], &ends[..], "{p:?}");
                    plain_seen += plain_path(p.as_bytes()) as usize;
                    // The word-at-a-time split agrees with the byte loop.
                    let mut steps = vec![7];
                    let plain = plain_steps(p.as_bytes(), &mut steps);
                    assert_eq!(plain, plain_path(p.as_bytes()), "{p:?}");
                    if plain {
                        assert_eq!(&steps[1..], &ends[..], "{p:?}");
                    } else {
                        assert_eq!(steps, [7], "{p:?}");
                    }
                }
            }
        }
        assert!(plain_seen > 1_000, "{plain_seen} plain paths");
    }

    /// An answer whose data is not all UTF-8 is read text by text: a text
    /// that is UTF-8 is taken, one that is not is refused.
    #[test]
    fn texts_are_checked_alone_when_the_data_is_not_utf8() {
        let mut buffer = EditBuffer::default();
        buffer.set(0, "a.b", ValueRef::String("é"));
        // Bytes that no edit points at, and that are not UTF-8.
        buffer.data.extend_from_slice(&[0xff, 0xfe]);
        let edits = Edits::check(&buffer.edits, &buffer.data, 1).expect("the texts are UTF-8");
        assert_eq!(edits.path(&edits.edits[0]), "a.b");
        // A value that ends inside a character.
        let mut buffer = EditBuffer::default();
        buffer.set(0, "a", ValueRef::String("é"));
        let value_len = buffer.edits.len() - 1;
        buffer.edits[value_len] = 1;
        let refused = Edits::check(&buffer.edits, &buffer.data, 1).expect_err("half a character");
        assert!(refused.to_string().contains("UTF-8"), "{refused}");
    }
}
