//! `pii-scrub`: find and neutralise personal data and secrets in every string
//! of an event, at any depth, and in field names.
//!
//! The detectors live in the private `detect` module as plain functions over
//! bytes; [`Ruleset`] runs them and renders replacements; [`PiiScrub`] is the
//! thin plugin glue (leaves in, edits out, annotations and counters). See the
//! crate's `README.md` for the config and the known limits.

mod detect;
mod hash;
mod keys;
mod rules;
#[cfg(test)]
mod testkit;

pub use detect::Hit;
pub use keys::is_secret_name;
pub use rules::{Method, RULES, Rule, Ruleset, Scrubbed};

use keys::KeyKind;
use serde::Deserialize;
use std::borrow::Cow;
use wraith_plugin::{Config, ConfigError, Event, Plugin, ValueRef, Verdict};

/// Where the plugin lists what it redacted.
pub const REDACTIONS: &str = "_wraith.redactions";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    hash_key: Option<String>,
    #[serde(default = "default_true")]
    annotate: bool,
    #[serde(default)]
    detectors: serde_json::Map<String, serde_json::Value>,
    #[serde(default = "default_true")]
    decode: bool,
}

fn default_true() -> bool {
    true
}

/// The plugin.
#[derive(Debug)]
pub struct PiiScrub {
    rules: Ruleset,
    annotate: bool,
    /// Scratch space for matches, reused across strings.
    hits: Vec<Hit>,
    /// What earlier events' field names turned out to be.
    memo: keys::Memo,
    /// Earlier events' paths whose keys hold no PII.
    paths: keys::CleanPaths,
}

impl PiiScrub {
    /// Build from a JSON config (what [`Plugin::init`] does).
    pub fn from_config(config: &serde_json::Value) -> Result<PiiScrub, ConfigError> {
        let s: Settings = Config::new(config.clone()).parse()?;
        let mut methods = [Method::Mask; RULES];
        for (name, value) in &s.detectors {
            let field = format!("detectors.{name}");
            let rule = Rule::from_name(name).ok_or_else(|| {
                let names: Vec<_> = Rule::ALL.iter().map(|r| r.name()).collect();
                ConfigError::new(
                    &field,
                    format!(
                        "unknown detector `{name}`; expected one of: {}",
                        names.join(", ")
                    ),
                )
            })?;
            let method = value.as_str().and_then(Method::from_name).ok_or_else(|| {
                ConfigError::new(
                    &field,
                    format!("unknown method {value}; expected one of: mask, hash, remove, off"),
                )
            })?;
            methods[rule as usize] = method;
        }
        let hashing: Vec<&str> = Rule::ALL
            .iter()
            .filter(|r| methods[**r as usize] == Method::Hash)
            .map(|r| r.name())
            .collect();
        match &s.hash_key {
            Some(k) if k.is_empty() => {
                return Err(ConfigError::new("hash_key", "must not be empty"));
            }
            None if !hashing.is_empty() => {
                return Err(ConfigError::new(
                    "hash_key",
                    format!(
                        "required when a detector uses `hash` ({})",
                        hashing.join(", ")
                    ),
                ));
            }
            _ => {}
        }
        Ok(PiiScrub {
            rules: Ruleset::new(methods, s.hash_key.as_deref().map(str::as_bytes))
                .with_decoding(s.decode),
            annotate: s.annotate,
            hits: Vec::new(),
            memo: keys::Memo::default(),
            paths: keys::CleanPaths::default(),
        })
    }

    /// The compiled rules (for [`Ruleset::scrub_str`]).
    pub fn ruleset(&self) -> &Ruleset {
        &self.rules
    }

    /// Whether `_wraith.redactions` is written.
    pub fn annotates(&self) -> bool {
        self.annotate
    }

    fn process_event<'a>(&mut self, event: &mut Event<'a>) {
        let PiiScrub {
            rules,
            annotate,
            hits,
            memo,
            paths,
        } = self;
        let mut st = Pending::default();
        // Leaves come in document order, so siblings share their parents'
        // keys: those found clean in the previous leaf's path are not
        // scanned again.
        let mut clean = CleanPrefix::default();
        for leaf in event.leaves() {
            let path = leaf.path;
            // A path seen before with every key clean (never one under
            // `_wraith.redactions`): only its value is left to scan.
            if let Some(known) = paths.get(path) {
                let key = known.last_key(path.as_bytes());
                if let Some(found) =
                    scan_known(rules, hits, paths, known, key, leaf.value, &mut st.tally)
                {
                    st.edit(Cow::Borrowed(path), false, leaf.value, found);
                }
                continue;
            }
            if let Some(rest) = path.strip_prefix(REDACTIONS) {
                st.note_existing(rest);
                continue;
            }
            let skip = clean.shared_with(path);
            let found = scan_keys(rules, hits, path, skip, &mut clean, memo, &mut st);
            let new_path = match found.scan {
                KeyScan::Same => None,
                KeyScan::Renamed(p) => Some(p),
                KeyScan::Gone => continue,
            };
            let span = found.last_key.or_else(|| keys::last_key_span(path));
            let last_key = span.map(|(s, e)| &path.as_bytes()[s..e]);
            let kind = last_key.and_then(|k| memo.classify(k));
            let (out_path, renamed) = match new_path {
                Some(p) => (Cow::Owned(p), true),
                None => {
                    paths.insert(path, span, kind);
                    (Cow::Borrowed(path), false)
                }
            };
            let found = scan_value(rules, hits, last_key, kind, leaf.value, &mut st.tally);
            st.edit(out_path, renamed, leaf.value, found);
        }
        if st.is_empty() {
            return;
        }
        for p in &st.prefix_removes {
            event.remove(p);
        }
        for (p, v) in &st.sets {
            match v {
                NewValue::Copy(v) => event.set(p, *v),
                NewValue::Text(t) => event.set_str(p, t),
            }
        }
        // Last, and from the end, so removing an array element does not
        // shift the ones edited or removed after it.
        for p in st.removes.iter().rev() {
            event.remove(p);
        }
        if *annotate && !st.notes.is_empty() {
            match st.existing_redactions {
                Some(n) if n > 0 => {
                    let mut entry = String::new();
                    for (k, (rule, path)) in st.notes.iter().enumerate() {
                        entry.clear();
                        push_redaction(&mut entry, *rule, path);
                        event.set(&format!("{REDACTIONS}[{}]", n + k), ValueRef::Json(&entry));
                    }
                }
                _ => {
                    let size: usize = st.notes.iter().map(|(_, p)| p.len() + 32).sum();
                    let mut list = String::with_capacity(size + 2);
                    list.push('[');
                    for (k, (rule, path)) in st.notes.iter().enumerate() {
                        if k > 0 {
                            list.push(',');
                        }
                        push_redaction(&mut list, *rule, path);
                    }
                    list.push(']');
                    event.set(REDACTIONS, ValueRef::Json(&list));
                }
            }
        }
        for rule in Rule::ALL {
            let n = st.tally[rule as usize];
            if n > 0 {
                wraith_plugin::counter(rule.counter(), n);
            }
        }
    }
}

impl Plugin for PiiScrub {
    fn init(config: Config) -> Result<Self, ConfigError> {
        PiiScrub::from_config(config.value())
    }

    fn process(&mut self, event: &mut Event<'_>) -> Verdict {
        self.process_event(event);
        Verdict::Keep
    }
}

wraith_plugin::export!(PiiScrub);

// ------------------------------------------------------------------ glue

enum NewValue<'a> {
    Copy(ValueRef<'a>),
    Text(String),
}

/// A renamed key: the old path prefix and what it became.
struct Rename<'a> {
    old: &'a str,
    new: String,
    /// The key matched a `remove` detector: the whole field went.
    gone: bool,
}

/// Edits, notes and counts gathered while walking one event's leaves. Every
/// vector stays unallocated unless something fires.
#[derive(Default)]
struct Pending<'a> {
    prefix_removes: Vec<&'a str>,
    sets: Vec<(Cow<'a, str>, NewValue<'a>)>,
    removes: Vec<Cow<'a, str>>,
    renames: Vec<Rename<'a>>,
    notes: Vec<(Rule, Cow<'a, str>)>,
    tally: [u64; RULES],
    /// Number of `_wraith.redactions` entries already in the event.
    existing_redactions: Option<usize>,
}

impl<'a> Pending<'a> {
    fn is_empty(&self) -> bool {
        self.prefix_removes.is_empty()
            && self.sets.is_empty()
            && self.removes.is_empty()
            && self.notes.is_empty()
    }

    /// Record one annotation per rule that fired at `path` (a path borrowed
    /// from the event stays borrowed: nothing is copied).
    #[allow(clippy::ptr_arg)]
    fn note(&mut self, fired: u32, path: &Cow<'a, str>) {
        for rule in Rule::ALL {
            if fired & rule.bit() != 0 {
                self.notes.push((rule, path.clone()));
            }
        }
    }

    /// Record the edit for a leaf whose (possibly renamed) path is
    /// `out_path`, from what [`scan_value`] found in its `value`.
    fn edit(
        &mut self,
        out_path: Cow<'a, str>,
        renamed: bool,
        value: ValueRef<'a>,
        (scan, fired): (ValueScan, u32),
    ) {
        match scan {
            ValueScan::Same => {
                if renamed {
                    self.sets.push((out_path, NewValue::Copy(value)));
                }
            }
            ValueScan::Text(t) => {
                self.note(fired, &out_path);
                self.sets.push((out_path, NewValue::Text(t)));
            }
            ValueScan::Remove => {
                self.note(fired, &out_path);
                if !renamed {
                    self.removes.push(out_path);
                }
            }
        }
    }

    /// A leaf under `_wraith.redactions` (`rest` is what follows that).
    fn note_existing(&mut self, rest: &str) {
        let n = rest
            .strip_prefix('[')
            .and_then(|r| r.split(']').next())
            .and_then(|i| i.parse::<usize>().ok())
            .map_or(0, |i| i + 1);
        self.existing_redactions = Some(self.existing_redactions.unwrap_or(0).max(n));
    }
}

enum KeyScan {
    Same,
    Renamed(String),
    Gone,
}

/// The segments at the start of the last path scanned whose keys hold no
/// PII: where each ends (up to [`CleanPrefix::MAX`] of them).
#[derive(Default)]
struct CleanPrefix<'a> {
    path: &'a str,
    ends: [usize; CleanPrefix::MAX],
    n: usize,
}

impl<'a> CleanPrefix<'a> {
    const MAX: usize = 16;

    /// How many bytes at the start of `path` are segments already found
    /// clean: the longest recorded prefix that `path` starts with and that
    /// ends where a segment of `path` ends. (The same bytes up to there
    /// split into the same segments: the walk reaches that byte in the
    /// same state in both paths.)
    fn shared_with(&mut self, path: &str) -> usize {
        let (p, b) = (self.path.as_bytes(), path.as_bytes());
        let same = p.iter().zip(b).take_while(|(x, y)| x == y).count();
        while self.n > 0 {
            let e = self.ends[self.n - 1];
            if e <= same && matches!(b.get(e), None | Some(b'.' | b'[')) {
                return e;
            }
            self.n -= 1;
        }
        0
    }

    /// Go on recording for `path` (the ends kept by `shared_with` hold for
    /// it too).
    fn start(&mut self, path: &'a str) {
        self.path = path;
    }

    /// One more clean segment of the current path ends at `end`.
    fn push(&mut self, end: usize) {
        if self.n < Self::MAX {
            self.ends[self.n] = end;
            self.n += 1;
        }
    }
}

/// What [`scan_keys`] found in a path.
struct Keys {
    scan: KeyScan,
    /// Where the last key of the path lies, when past the skipped prefix.
    last_key: Option<(usize, usize)>,
}

/// Look for PII in the keys of `path`; rename (or drop) the field when
/// found. The first `skip` bytes are segments already found clean (see
/// [`CleanPrefix::shared_with`]); the clean segments of this path are
/// recorded in `prefix` for the next.
fn scan_keys<'a>(
    rules: &Ruleset,
    hits: &mut Vec<Hit>,
    path: &'a str,
    skip: usize,
    prefix: &mut CleanPrefix<'a>,
    memo: &mut keys::Memo,
    st: &mut Pending<'a>,
) -> Keys {
    let text_rules = rules.text_bits();
    let mut found = Keys {
        scan: KeyScan::Same,
        last_key: None,
    };
    prefix.start(path);
    // Whether every segment so far is clean.
    let mut clean = true;
    let mut cur: Option<String> = None;
    let mut copied = 0;
    for seg in keys::segments_from(path, skip) {
        if !seg.is_key {
            if clean {
                prefix.push(seg.end);
            }
            continue;
        }
        let raw = &path[seg.start..seg.end];
        found.last_key = Some((seg.start, seg.end));
        // Field names repeat from event to event: one found clean before is
        // not scanned again.
        let known = memo.known_clean(raw.as_bytes());
        let key = if known || !detect::could_match(raw.as_bytes(), text_rules) {
            None
        } else {
            let key = keys::unescape(raw);
            rules.find(&key, hits);
            (!hits.is_empty()).then_some(key)
        };
        let Some(key) = key else {
            if !known {
                memo.set_clean(raw.as_bytes());
            }
            if clean {
                prefix.push(seg.end);
            }
            continue;
        };
        clean = false;
        let old = &path[..seg.end];
        if let Some(r) = st.renames.iter().find(|r| r.old == old) {
            if r.gone {
                found.scan = KeyScan::Gone;
                return found;
            }
            cur = Some(r.new.clone());
            copied = seg.end;
            continue;
        }
        // The first renamed key of the path removes the old subtree; keys
        // renamed below it are covered by that removal.
        let topmost = cur.is_none();
        let mut np = match cur.take() {
            Some(mut n) => {
                n.push_str(&path[copied..seg.start]);
                n
            }
            None => path[..seg.start].to_string(),
        };
        let parent_len = np.len();
        let gone = hits.iter().any(|h| rules.method(h.rule) == Method::Remove);
        let new_key = rules.render(&key, hits, gone);
        keys::push_escaped(&mut np, &new_key);
        // Two keys masked to the same placeholder would merge: number them.
        let mut k = 2;
        while st.renames.iter().any(|r| r.new == np) {
            np.truncate(parent_len);
            keys::push_escaped(&mut np, &format!("{new_key} ({k})"));
            k += 1;
        }
        if topmost {
            st.prefix_removes.push(old);
        }
        let mut fired = 0u32;
        for h in hits.iter() {
            st.tally[h.rule as usize] += 1;
            fired |= h.rule.bit();
        }
        st.note(fired, &Cow::Owned(np.clone()));
        st.renames.push(Rename {
            old,
            new: np.clone(),
            gone,
        });
        if gone {
            found.scan = KeyScan::Gone;
            return found;
        }
        cur = Some(np);
        copied = seg.end;
    }
    if let Some(mut n) = cur {
        n.push_str(&path[copied..]);
        found.scan = KeyScan::Renamed(n);
    }
    found
}

enum ValueScan {
    Same,
    Text(String),
    Remove,
}

/// [`scan_value`] for a leaf whose path is in `paths` (`known`: every key
/// clean, its last key `key` and that key's class known); `None` when the
/// value stays.
/// Most leaves are text under a name that says nothing: such a value is
/// scanned as text straight away, and not at all when it is the one found
/// clean at this path last time.
#[inline]
fn scan_known(
    rules: &Ruleset,
    hits: &mut Vec<Hit>,
    paths: &mut keys::CleanPaths,
    known: keys::CleanPath,
    key: Option<&[u8]>,
    value: ValueRef<'_>,
    tally: &mut [u64; RULES],
) -> Option<(ValueScan, u32)> {
    let found = match (value, known.kind) {
        (ValueRef::String(s), None) => {
            if paths.is_clean_value(known, s) {
                return None;
            }
            rules.find_in_field(key, s, hits);
            if hits.is_empty() {
                paths.set_clean_value(known, s);
                return None;
            }
            scrub_found(rules, hits, s, tally)
        }
        (value, kind) => scan_value(rules, hits, key, kind, value, tally),
    };
    (!matches!(found.0, ValueScan::Same)).then_some(found)
}

/// Scrub one leaf value: by its key name first (`secret_key`, AWS secret
/// keys; `kind` is what [`keys::classify`] says of `key`), then its text.
fn scan_value(
    rules: &Ruleset,
    hits: &mut Vec<Hit>,
    key: Option<&[u8]>,
    kind: Option<KeyKind>,
    value: ValueRef<'_>,
    tally: &mut [u64; RULES],
) -> (ValueScan, u32) {
    let text = match value {
        ValueRef::String(s) => s,
        ValueRef::Number(n) => n,
        _ => return (ValueScan::Same, 0),
    };
    if let Some(kind) = kind {
        let rule = if kind == KeyKind::AwsSecret && rules.enabled(Rule::AwsKey) {
            Some(Rule::AwsKey)
        } else if rules.enabled(Rule::SecretKey) {
            Some(Rule::SecretKey)
        } else {
            None
        };
        if let Some(rule) = rule
            && !text.is_empty()
            && !is_placeholder(text, rule)
        {
            tally[rule as usize] += 1;
            let out = match rules.method(rule) {
                Method::Remove => ValueScan::Remove,
                _ => ValueScan::Text(rules.whole_value(rule, text)),
            };
            return (out, rule.bit());
        }
    }
    let s = match value {
        ValueRef::String(s) => s,
        // A card number sent as a JSON number: 13-19 bare digits, taken only
        // by the card detector (Luhn and network prefix checked as in text).
        ValueRef::Number(n)
            if rules.enabled(Rule::CreditCard)
                && (13..=19).contains(&n.len())
                && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            n
        }
        // Nine digits under a field named like `ssn`: a labelled SSN.
        ValueRef::Number(n)
            if rules.enabled(Rule::Ssn)
                && n.len() == 9
                && key.is_some_and(keys::names_national_id) =>
        {
            n
        }
        _ => return (ValueScan::Same, 0),
    };
    rules.find_in_field(key, s, hits);
    scrub_found(rules, hits, s, tally)
}

/// What `hits`, the matches in the text `s` of a value, make of it; the
/// rules that fired are counted.
fn scrub_found(
    rules: &Ruleset,
    hits: &[Hit],
    s: &str,
    tally: &mut [u64; RULES],
) -> (ValueScan, u32) {
    let out = match rules.scrubbed(s, hits) {
        Scrubbed::Clean => return (ValueScan::Same, 0),
        Scrubbed::Replaced(t) => ValueScan::Text(t),
        Scrubbed::Remove => ValueScan::Remove,
    };
    let mut fired = 0;
    for h in hits {
        tally[h.rule as usize] += 1;
        fired |= h.rule.bit();
    }
    (out, fired)
}

/// Append one `_wraith.redactions` entry as JSON text,
/// `{"rule":"…","path":"…"}`: what `serde_json` prints for the object with
/// these two members, written directly instead of building a `Value` and
/// printing it. Rule names are plain `[a-z_]` words (a test checks); the
/// path is escaped as a JSON string.
fn push_redaction(out: &mut String, rule: Rule, path: &str) {
    out.push_str("{\"rule\":\"");
    out.push_str(rule.name());
    out.push_str("\",\"path\":");
    push_json_string(out, path);
    out.push('}');
}

/// Append `s` as a JSON string, escaped as `serde_json` escapes it (`\"`,
/// `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, other control bytes as `\u00xx`).
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut copied = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[copied..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        } else {
            out.push_str(escape);
        }
        copied = i + 1;
    }
    out.push_str(&s[copied..]);
    out.push('"');
}

/// `[redacted]` / `[redacted:…]`: already scrubbed by name.
fn is_placeholder(text: &str, rule: Rule) -> bool {
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.strip_prefix(rule.label()))
        .is_some_and(|t| t.is_empty() || t.starts_with(':'))
}

#[cfg(test)]
mod tests;
