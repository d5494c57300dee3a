//! Field names that say a value is secret (the `secret_key` rule), both as
//! event keys and as `name=value` / `"name": "value"` / `--name value`
//! assignments inside text, plus helpers to walk escaped leaf paths.
//!
//! A name is normalised first: camelCase is split (`apiKey` → `api_key`),
//! ASCII is lowercased and `-`, `.` and spaces become `_` (`X-Api-Key` →
//! `x_api_key`). It then names a secret when it
//!
//! * equals one of `password passwd pwd secret token api_key apikey
//!   access_key authorization auth cookie set_cookie session session_id
//!   private_key client_secret credentials` (plus `passphrase`,
//!   `secret_key`, `proxy_authorization`), or
//! * ends with `_<name>` or starts with `<name>_` for the compound-friendly
//!   names `password passwd secret token api_key apikey private_key
//!   credentials client_secret access_key secret_key passphrase`
//!   (`db_password`, `access_token`, `x_api_key`, `secret_access_key`) —
//!   unless its last word is metadata about the secret rather than the secret
//!   (`token_count`, `token_type`, `password_expires_at`, `secret_name`,
//!   `api_key_id`, …) or its first word is a count (`max_token`, `num_token`).
//!
//! `tokens_used`, `max_tokens`, `author`, `session_count`, `authority`,
//! `tokenizer` do not match.

use crate::detect::{Bytes3, Hit, at, before, find_byte3, word_at};
use crate::rules::Rule;
use wraith_plugin::same_bytes;

const MAX_NAME: usize = 64;

/// What kind of secret a name announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// A generic secret (`secret_key` rule).
    Secret,
    /// An HTTP header whose whole value is a credential (`authorization`,
    /// `cookie`): in text its value runs to the end of the line.
    Header,
    /// An AWS secret access key (`aws_key` rule, falling back to `secret_key`).
    AwsSecret,
}

const EXACT: &[&[u8]] = &[
    b"pwd",
    b"auth",
    b"session",
    b"session_id",
    b"set_cookie",
    b"cookie",
    b"authorization",
    b"proxy_authorization",
];

const COMPOUND: &[&[u8]] = &[
    b"password",
    b"passwd",
    b"secret",
    b"token",
    b"api_key",
    b"apikey",
    b"private_key",
    b"credentials",
    b"client_secret",
    b"access_key",
    b"secret_key",
    b"passphrase",
];

/// Trailing words that describe a secret rather than hold it.
const META: &[&[u8]] = &[
    b"count",
    b"counts",
    b"used",
    b"total",
    b"num",
    b"number",
    b"len",
    b"length",
    b"limit",
    b"limits",
    b"max",
    b"min",
    b"size",
    b"type",
    b"kind",
    b"expires",
    b"expiry",
    b"expiration",
    b"in",
    b"at",
    b"ttl",
    b"url",
    b"uri",
    b"endpoint",
    b"name",
    b"names",
    b"file",
    b"path",
    b"hint",
    b"policy",
    b"enabled",
    b"required",
    b"provider",
    b"format",
    b"version",
    b"id",
    b"ids",
    b"rate",
    b"remaining",
    b"source",
    b"label",
    b"field",
    b"header",
    b"param",
    b"ref",
    b"arn",
    b"changed",
    b"updated",
    b"created",
    b"rotation",
    b"rotated",
    b"strength",
    b"valid",
    b"present",
    b"set",
    b"missing",
    b"error",
    b"errors",
    b"age",
    b"algorithm",
    b"alg",
    b"scope",
    b"scopes",
    b"prefix",
    b"suffix",
    b"location",
    b"store",
    b"manager",
    b"env",
    b"var",
];

/// Leading words that make the name a count.
const COUNTING: &[&[u8]] = &[b"num", b"max", b"min", b"total", b"count", b"n"];

/// Normalise a (possibly path-escaped) key into `buf`; `None` when too long.
fn normalize<'b>(name: &[u8], buf: &'b mut [u8; MAX_NAME]) -> Option<&'b [u8]> {
    let mut n = 0;
    let mut prev = 0u8;
    let mut i = 0;
    while i < name.len() {
        let mut c = name[i];
        if c == b'\\' && i + 1 < name.len() {
            // A path escape (`\.`): take the next byte.
            i += 1;
            c = name[i];
        }
        i += 1;
        let mapped = match c {
            b'A'..=b'Z' => {
                if prev.is_ascii_lowercase() || prev.is_ascii_digit() {
                    if n == MAX_NAME {
                        return None;
                    }
                    buf[n] = b'_';
                    n += 1;
                }
                c.to_ascii_lowercase()
            }
            b'-' | b'.' | b' ' => b'_',
            _ => c,
        };
        prev = c;
        if mapped == b'_' && (n == 0 || buf[n - 1] == b'_') {
            continue; // no leading or doubled underscores
        }
        if n == MAX_NAME {
            return None;
        }
        buf[n] = mapped;
        n += 1;
    }
    while n > 0 && buf[n - 1] == b'_' {
        n -= 1;
    }
    Some(&buf[..n])
}

/// Classify a normalised name.
fn classify_normalized(k: &[u8]) -> Option<KeyKind> {
    if k.len() < 3 {
        return None;
    }
    if k.ends_with(b"secret_access_key")
        || (contains(k, b"aws") && contains(k, b"secret") && !is_meta(k))
    {
        return Some(KeyKind::AwsSecret);
    }
    if EXACT.contains(&k) {
        return Some(match k {
            b"cookie" | b"set_cookie" | b"authorization" | b"proxy_authorization" => {
                KeyKind::Header
            }
            _ => KeyKind::Secret,
        });
    }
    if COMPOUND.contains(&k) {
        return Some(KeyKind::Secret);
    }
    let compound = COMPOUND.iter().any(|name| {
        let n = name.len();
        k.len() > n
            && ((k.ends_with(name) && k[k.len() - n - 1] == b'_')
                || (k.starts_with(name) && k[n] == b'_'))
    });
    if compound && !is_meta(k) {
        return Some(KeyKind::Secret);
    }
    None
}

fn is_meta(k: &[u8]) -> bool {
    let last = k.rsplit(|&c| c == b'_').next().unwrap_or(k);
    let first = k.split(|&c| c == b'_').next().unwrap_or(k);
    META.contains(&last) || COUNTING.contains(&first)
}

fn contains(h: &[u8], n: &[u8]) -> bool {
    h.windows(n.len()).any(|w| w == n)
}

/// Cheap reject: every secret name contains one of these letter pairs
/// (`pw`, `ss`, `se`, `cr`, `ke`, `au`, `ok`), in any case: `pwd`,
/// `password`, `session`, `secret`, `credentials`, `token`, `api_key`,
/// `auth`, `cookie`. (`ok` rather than `co` for `cookie`, so `Connection`,
/// `count` and `config` are rejected here.)
fn maybe_secret(name: &[u8]) -> bool {
    name.len() >= 3
        && name.len() <= MAX_NAME
        && name.windows(2).any(|w| {
            matches!(
                [w[0] | 0x20, w[1] | 0x20],
                [b'p', b'w']
                    | [b's', b's']
                    | [b's', b'e']
                    | [b'c', b'r']
                    | [b'k', b'e']
                    | [b'a', b'u']
                    | [b'o', b'k']
            )
        })
}

/// Classify a key name (raw or path-escaped).
pub(crate) fn classify(name: &[u8]) -> Option<KeyKind> {
    if !maybe_secret(name) {
        return None;
    }
    let mut buf = [0u8; MAX_NAME];
    classify_normalized(normalize(name, &mut buf)?)
}

/// Field names seen before, in this event or an earlier one, and what was
/// found for them: whether the key itself holds PII (the key scan) and its
/// [`classify`] answer. Both depend on the name alone (and the plugin's
/// fixed rules), and telemetry repeats its field names in every event. A
/// small direct-mapped table inside the plugin: nothing is allocated, a
/// name that does not fit is simply not kept, and a slot is taken over by
/// the last name to land in it.
pub(crate) struct Memo {
    slots: [Slot; MEMO_SLOTS],
}

/// Slots in [`Memo`].
const MEMO_SLOTS: usize = 64;
/// Longest name [`Memo`] keeps.
const MEMO_NAME: usize = 32;

#[derive(Clone, Copy)]
struct Slot {
    /// 0: empty.
    len: u8,
    name: [u8; MEMO_NAME],
    /// The key scan found nothing in this name.
    clean: bool,
    /// [`classify`] of this name, once asked.
    kind: Option<Option<KeyKind>>,
}

impl Default for Memo {
    fn default() -> Memo {
        Memo {
            slots: [Slot {
                len: 0,
                name: [0; MEMO_NAME],
                clean: false,
                kind: None,
            }; MEMO_SLOTS],
        }
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let used = self.slots.iter().filter(|s| s.len > 0).count();
        write!(f, "Memo({used} of {MEMO_SLOTS} names)")
    }
}

impl Memo {
    /// The slot holding `name`, or (taken over for it, facts cleared) the
    /// one it belongs in; `None` for a name too long or empty.
    fn slot(&mut self, name: &[u8]) -> Option<&mut Slot> {
        let n = name.len();
        if n == 0 || n > MEMO_NAME {
            return None;
        }
        let h = n
            .wrapping_mul(31)
            .wrapping_add(name[0] as usize * 7)
            .wrapping_add(name[n - 1] as usize * 13)
            .wrapping_add(name[n / 2] as usize * 3);
        let slot = &mut self.slots[h % MEMO_SLOTS];
        if slot.len as usize != n || slot.name[..n] != *name {
            slot.len = n as u8;
            slot.name[..n].copy_from_slice(name);
            slot.clean = false;
            slot.kind = None;
        }
        Some(slot)
    }

    /// Whether the key scan already found nothing in `name`.
    pub(crate) fn known_clean(&mut self, name: &[u8]) -> bool {
        self.slot(name).is_some_and(|s| s.clean)
    }

    /// Record that the key scan found nothing in `name`.
    pub(crate) fn set_clean(&mut self, name: &[u8]) {
        if let Some(s) = self.slot(name) {
            s.clean = true;
        }
    }

    /// [`classify`], remembered.
    pub(crate) fn classify(&mut self, name: &[u8]) -> Option<KeyKind> {
        match self.slot(name) {
            Some(s) => *s.kind.get_or_insert_with(|| classify(name)),
            None => classify(name),
        }
    }
}

/// Leaf paths seen before, in this event or an earlier one, whose keys all
/// hold no PII, with what the plugin needs about each: where its last key
/// is and that key's [`classify`] answer. Telemetry sends the same paths in
/// every event; a path found here skips the walk over its segments, the key
/// scans and the name classification, leaving only its value to scan. All
/// three depend on the path alone (and the plugin's fixed rules). Like
/// [`Memo`] it is compared byte for byte and allocates nothing, and a path
/// that does not fit is not kept; but two paths can share a place (each
/// hash picks a pair of slots: the last path to land there and the one
/// before), so that two paths of one event that hash alike do not keep
/// evicting each other.
pub(crate) struct CleanPaths {
    slots: [PathSlot; PATH_SLOTS],
}

/// Slots in [`CleanPaths`] (a power of two), in pairs.
const PATH_SLOTS: usize = 256;
/// Longest path [`CleanPaths`] keeps.
const PATH_MAX: usize = 56;

#[derive(Clone, Copy)]
struct PathSlot {
    /// 0: empty.
    len: u8,
    path: [u8; PATH_MAX],
    /// The last key's byte range in the path (`start == end`: the path has
    /// no key, only indices).
    key_start: u8,
    key_end: u8,
    /// [`classify`] of the last key.
    kind: Option<KeyKind>,
    /// Length of the text value last found clean at this path, or
    /// [`NO_VALUE`].
    value_len: u8,
    value: [u8; VALUE_MAX],
}

/// Longest text value [`CleanPaths`] remembers per path.
const VALUE_MAX: usize = 24;
/// [`PathSlot::value_len`] when no value is remembered.
const NO_VALUE: u8 = u8::MAX;

/// What [`CleanPaths::get`] knows about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CleanPath {
    /// Its slot in [`CleanPaths`].
    slot: usize,
    key_start: u8,
    key_end: u8,
    /// [`classify`] of the last key (`None` without one).
    pub kind: Option<KeyKind>,
}

impl CleanPath {
    /// The last key of `path` (the path this was found for), escaped as in
    /// the path.
    pub(crate) fn last_key<'p>(&self, path: &'p [u8]) -> Option<&'p [u8]> {
        (self.key_start < self.key_end)
            .then(|| path.get(self.key_start as usize..self.key_end as usize))
            .flatten()
    }
}

impl Default for CleanPaths {
    fn default() -> CleanPaths {
        CleanPaths {
            slots: [PathSlot {
                len: 0,
                path: [0; PATH_MAX],
                key_start: 0,
                key_end: 0,
                kind: None,
                value_len: NO_VALUE,
                value: [0; VALUE_MAX],
            }; PATH_SLOTS],
        }
    }
}

impl std::fmt::Debug for CleanPaths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let used = self.slots.iter().filter(|s| s.len > 0).count();
        write!(f, "CleanPaths({used} of {PATH_SLOTS} paths)")
    }
}

impl CleanPaths {
    /// The first of the two slots a path of these bytes belongs in: a
    /// multiplicative hash of its length and its first and last bytes, read
    /// a word at a time (paths that differ only in the middle share a pair;
    /// that only costs a miss when a third one comes).
    fn pair(path: &[u8]) -> usize {
        let n = path.len();
        let (head, tail) = if n >= 8 {
            (word_at(path, 0), word_at(path, n - 8))
        } else if n >= 4 {
            (word4(path, 0), word4(path, n - 4))
        } else if n > 0 {
            (
                path[0] as u64 | (path[n / 2] as u64) << 8,
                path[n - 1] as u64,
            )
        } else {
            (0, 0)
        };
        let h = (head ^ tail.rotate_left(29) ^ n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> (64 - PATH_SLOTS.trailing_zeros() + 1)) as usize * 2
    }

    /// Whether slot `i` holds `path`. An empty slot has length 0: the empty
    /// path is never kept.
    #[inline]
    fn holds(&self, i: usize, path: &[u8]) -> bool {
        let slot = &self.slots[i];
        let n = path.len();
        slot.len as usize == n && n != 0 && n <= PATH_MAX && same_bytes(&slot.path[..n], path)
    }

    /// What is known about `path`, if it was found clean before.
    #[inline]
    pub(crate) fn get(&self, path: &str) -> Option<CleanPath> {
        let b = path.as_bytes();
        let pair = Self::pair(b);
        let i = if self.holds(pair, b) {
            pair
        } else if self.holds(pair + 1, b) {
            pair + 1
        } else {
            return None;
        };
        let slot = &self.slots[i];
        Some(CleanPath {
            slot: i,
            key_start: slot.key_start,
            key_end: slot.key_end,
            kind: slot.kind,
        })
    }

    /// Record that every key of `path` (not kept yet) is clean; its last
    /// key spans `key` (`None`: only indices) and classifies as `kind`. It
    /// takes the first slot of its pair, whose path moves to the second.
    /// An empty path or one longer than the slots is not kept.
    pub(crate) fn insert(
        &mut self,
        path: &str,
        key: Option<(usize, usize)>,
        kind: Option<KeyKind>,
    ) {
        let b = path.as_bytes();
        if b.is_empty() || b.len() > PATH_MAX {
            return;
        }
        let (key_start, key_end) = key.unwrap_or((0, 0));
        let pair = Self::pair(b);
        self.slots[pair + 1] = self.slots[pair];
        let slot = &mut self.slots[pair];
        slot.len = b.len() as u8;
        slot.path[..b.len()].copy_from_slice(b);
        slot.key_start = key_start as u8;
        slot.key_end = key_end as u8;
        slot.kind = kind;
        slot.value_len = NO_VALUE;
    }

    /// Whether `value` is the text last found clean at the path `at` stands
    /// for. Field values repeat too (`os`, `level`, versions): the scan of
    /// a value depends only on the value and the path's last key, so the
    /// same text at the same path has the same (empty) answer.
    #[inline]
    pub(crate) fn is_clean_value(&self, at: CleanPath, value: &str) -> bool {
        let slot = &self.slots[at.slot];
        let v = value.as_bytes();
        slot.value_len as usize == v.len()
            && v.len() <= VALUE_MAX
            && same_bytes(&slot.value[..v.len()], v)
    }

    /// Remember that the scan found nothing in `value` at the path `at`
    /// stands for (a value longer than [`VALUE_MAX`] is not kept).
    #[inline]
    pub(crate) fn set_clean_value(&mut self, at: CleanPath, value: &str) {
        let v = value.as_bytes();
        if v.len() <= VALUE_MAX {
            let slot = &mut self.slots[at.slot];
            slot.value[..v.len()].copy_from_slice(v);
            slot.value_len = v.len() as u8;
        }
    }
}

/// Four bytes of `b` from `at`, as a number.
fn word4(b: &[u8], at: usize) -> u64 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w) as u64
}

/// Whether a field named `name` holds a secret (the `secret_key` rule, or
/// an AWS secret key).
pub fn is_secret_name(name: &str) -> bool {
    classify(name.as_bytes()).is_some()
}

/// Whether a field named `name` holds a national id (`ssn`, `tax_id`, …).
pub(crate) fn names_national_id(name: &[u8]) -> bool {
    crate::detect::KeyContext::of(name) == crate::detect::KeyContext::NationalId
}

// ---------------------------------------------------------------- in text

fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// `password=hunter2`, `DB_PASSWORD = "x y"`, `"apiKey": "…"`, `token: …`
/// at the start of a line, `Authorization: Token …` / `Cookie: …` headers
/// (value to the end of the line) and `--password hunter2` on command lines.
/// Only the value is matched. Values that are empty, placeholders
/// (`[redacted]`, `***`, `$VAR`, `${VAR}`, `%VAR%`, `<secret>`) or
/// `true`/`false`/`null`/`none` are left alone, as are the names `auth`,
/// `session`, `session_id` and `pwd` (too common in prose and in `PWD=` dumps
/// of the working directory).
pub(crate) fn secret_assignments(b: &[u8], dense: bool, out: &mut Vec<Hit>) {
    let mut at_bytes = Bytes3::new(b, [b'=', b':', b'-'], dense);
    while let Some(i) = at_bytes.next() {
        let hit = match b[i] {
            b'=' | b':' => assignment(b, i),
            b'-' if at(b, i + 1) == b'-' && !is_key_char(before(b, i)) => flag(b, i),
            b'-' if at(b, i + 1) == b'u' && at(b, i + 2) == b' ' && before(b, i) == b' ' => {
                curl_user(b, i + 3)
            }
            _ => None,
        };
        if let Some((s, e)) = hit {
            out.push(Hit::new(Rule::SecretKey, s, e));
        }
    }
}

/// The key ending just before `end` (exclusive), with its start; quotes
/// around it are allowed.
fn key_before(b: &[u8], end: usize) -> Option<(usize, usize, bool)> {
    let mut e = end;
    let quote = matches!(before(b, e), b'"' | b'\'');
    if quote {
        e -= 1;
    }
    let mut s = e;
    while s > 0 && is_key_char(b[s - 1]) && e - s <= MAX_NAME {
        s -= 1;
    }
    if s == e || (s > 0 && is_key_char(b[s - 1])) {
        return None;
    }
    if quote && !matches!(before(b, s), b'"' | b'\'') {
        return None;
    }
    Some((s, e, quote))
}

/// The last dotted component of a key (`spring.datasource.password`).
fn last_component(k: &[u8]) -> &[u8] {
    match k.iter().rposition(|&c| c == b'.') {
        Some(p) => &k[p + 1..],
        None => k,
    }
}

fn inline_kind(k: &[u8]) -> Option<KeyKind> {
    if !maybe_secret(k) {
        return None;
    }
    let mut buf = [0u8; MAX_NAME];
    let norm = normalize(last_component(k), &mut buf)?;
    if matches!(norm, b"auth" | b"session" | b"session_id" | b"pwd") {
        return None;
    }
    classify_normalized(norm)
}

fn assignment(b: &[u8], i: usize) -> Option<(usize, usize)> {
    // `k: v` needs a space or a quote after the `:` (times, ports, `C:\`
    // and `scheme://` have none): checked first, it is the cheapest test.
    if b[i] == b':' && !matches!(at(b, i + 1), b' ' | b'"' | b'\'' | b'\t') {
        return None;
    }
    // `k = v`: allow spaces around `=`; `k: v` needs no space before `:`.
    let mut ke = i;
    if b[i] == b'=' {
        while ke > 0 && b[ke - 1] == b' ' {
            ke -= 1;
        }
    }
    let (ks, ke, quoted) = key_before(b, ke)?;
    let kind = inline_kind(&b[ks..ke])?;
    let mut v = i + 1;
    if b[i] == b':' {
        // `scheme://`, `12:30`, `C:\` and the like are not assignments.
        let line_start = b[..ks]
            .iter()
            .rev()
            .find(|&&c| c != b' ' && c != b'\t' && c != b'-')
            .is_none_or(|&c| c == b'\n' || c == b'{' || c == b',');
        let quote_before = ks > 0 && quoted;
        if !(quote_before || line_start || kind == KeyKind::Header) {
            return None;
        }
        if !matches!(at(b, v), b' ' | b'"' | b'\'' | b'\t') {
            return None;
        }
    }
    while matches!(at(b, v), b' ' | b'\t') {
        v += 1;
    }
    value_span(b, v, b[i] == b':' && kind == KeyKind::Header)
}

fn flag(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let ks = i + 2;
    let mut ke = ks;
    while ke < b.len() && is_key_char(b[ke]) {
        ke += 1;
    }
    if &b[ks..ke] == b"user" && at(b, ke) == b' ' {
        return curl_user(b, ke + 1);
    }
    // `--password=x` is handled as an assignment.
    if ke == ks || at(b, ke) != b' ' || inline_kind(&b[ks..ke])? == KeyKind::Header {
        return None;
    }
    let v = ke + 1;
    if matches!(at(b, v), b'-' | b' ') {
        return None;
    }
    value_span(b, v, false)
}

/// curl's `-u user:password` / `--user user:password` (only in a curl
/// command line: `docker run -u 1000:1000` is a uid, not a password).
fn curl_user(b: &[u8], v: usize) -> Option<(usize, usize)> {
    if !b[..v].windows(5).any(|w| w == b"curl ") {
        return None;
    }
    let (s, e) = value_span(b, v, false)?;
    let colon = b[s..e].iter().position(|&c| c == b':')?;
    (colon + 1 < e - s).then_some((s, e))
}

/// The value starting at `v`: quoted (to the closing quote), to the end of
/// the line (`to_eol`), or one word.
fn value_span(b: &[u8], v: usize, to_eol: bool) -> Option<(usize, usize)> {
    let q = at(b, v);
    let (s, e) = if q == b'"' || q == b'\'' {
        let s = v + 1;
        let mut e = s;
        while e < b.len() && b[e] != q && b[e] != b'\n' && e - s < 4096 {
            if b[e] == b'\\' {
                e += 1;
            }
            e += 1;
        }
        (s, e.min(b.len()))
    } else if to_eol {
        let mut e = find_byte3(b, b'\n', b'\r', b'"', v).unwrap_or(b.len());
        while e > v && b[e - 1] == b' ' {
            e -= 1;
        }
        (v, e)
    } else {
        let mut e = v;
        while e < b.len()
            && !matches!(
                b[e],
                b' ' | b'\t'
                    | b'\n'
                    | b'\r'
                    | b'&'
                    | b','
                    | b';'
                    | b'"'
                    | b'\''
                    | b')'
                    | b'}'
                    | b']'
                    | b'<'
                    | b'>'
                    | b'|'
            )
        {
            e += 1;
        }
        (v, e)
    };
    let val = &b[s..e];
    if val.is_empty()
        || matches!(val[0], b'[' | b'$' | b'%' | b'<' | b'{')
        || val
            .iter()
            .all(|&c| c == b'*' || c == b'x' || c == b'X' || c == b'.')
        || [
            &b"true"[..],
            b"false",
            b"null",
            b"none",
            b"None",
            b"NULL",
            b"nil",
        ]
        .contains(&val)
    {
        return None;
    }
    Some((s, e))
}

// ---------------------------------------------------------------- leaf paths

/// One segment of an escaped leaf path: its byte range in the path (the key
/// text or the `[n]` index), and whether it is a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub start: usize,
    pub end: usize,
    pub is_key: bool,
}

/// The segments of an escaped path (`a.b\.c[2].d`).
pub(crate) fn segments(path: &str) -> impl Iterator<Item = Segment> + '_ {
    segments_from(path, 0)
}

/// The segments of an escaped path from byte `from`, which must be 0 or
/// the end of a segment.
pub(crate) fn segments_from(path: &str, from: usize) -> impl Iterator<Item = Segment> + '_ {
    let b = path.as_bytes();
    let mut i = from;
    std::iter::from_fn(move || {
        while i < b.len() && b[i] == b'.' {
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        let start = i;
        if b[i] == b'[' {
            while i < b.len() && b[i] != b']' {
                i += 1;
            }
            i = (i + 1).min(b.len());
            return Some(Segment {
                start,
                end: i,
                is_key: false,
            });
        }
        while i < b.len() && b[i] != b'.' && b[i] != b'[' {
            i += if b[i] == b'\\' { 2 } else { 1 };
        }
        i = i.min(b.len());
        Some(Segment {
            start,
            end: i,
            is_key: true,
        })
    })
}

/// The last key of an escaped path, skipping trailing indices
/// (`headers.set-cookie[1]` → `set-cookie`).
#[cfg(test)]
pub(crate) fn last_key(path: &str) -> Option<&str> {
    last_key_span(path).map(|(s, e)| &path[s..e])
}

/// Where the last key of an escaped path lies (see [`last_key`]).
pub(crate) fn last_key_span(path: &str) -> Option<(usize, usize)> {
    segments(path)
        .filter(|s| s.is_key)
        .last()
        .map(|s| (s.start, s.end))
}

/// Remove path escapes.
pub(crate) fn unescape(key: &str) -> std::borrow::Cow<'_, str> {
    if !key.contains('\\') {
        return key.into();
    }
    let mut out = String::with_capacity(key.len());
    let mut chars = key.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// Append `key` to a path, escaped.
pub(crate) fn push_escaped(path: &mut String, key: &str) {
    for ch in key.chars() {
        if matches!(ch, '.' | '[' | ']' | '\\') {
            path.push('\\');
        }
        path.push(ch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::test_util::check_rule;

    #[test]
    fn secret_names() {
        for k in [
            "password",
            "Password",
            "PASSWORD",
            "passwd",
            "pwd",
            "secret",
            "token",
            "api_key",
            "apiKey",
            "API-KEY",
            "apikey",
            "access_key",
            "authorization",
            "Authorization",
            "auth",
            "cookie",
            "Set-Cookie",
            "set_cookie",
            "session",
            "session_id",
            "sessionId",
            "private_key",
            "privateKey",
            "client_secret",
            "clientSecret",
            "credentials",
            "db_password",
            "DB_PASSWORD",
            "dbPassword",
            "access_token",
            "accessToken",
            "refresh_token",
            "x-api-key",
            "X-Api-Key",
            "secret_key",
            "password_hash",
            "aws_secret_access_key",
            "AWS_SECRET_ACCESS_KEY",
            "github_token",
            "csrf_token",
            "token_value",
            "smtp.password",
            "passphrase",
            "secret_token",
        ] {
            assert!(is_secret_name(k), "{k} should be secret");
        }
        for k in [
            "token_count",
            "tokens_used",
            "max_tokens",
            "input_tokens",
            "author",
            "authority",
            "session_count",
            "tokenizer",
            "token_type",
            "password_expires_at",
            "password_policy",
            "secret_name",
            "api_key_id",
            "token_endpoint",
            "keyboard",
            "passage",
            "tokens",
            "secrets_count",
            "num_token",
            "user",
            "email",
            "level",
            "cookies_enabled",
            "password_length",
            "auth_method",
            "ab",
            "",
            "sessions",
            "a_very_long_name_that_goes_on_and_on_and_on_past_the_limit_password_x",
        ] {
            assert!(!is_secret_name(k), "{k} should not be secret");
        }
        assert_eq!(classify(b"aws_secret_access_key"), Some(KeyKind::AwsSecret));
        assert_eq!(classify(b"awsSecretKey"), Some(KeyKind::AwsSecret));
        assert_eq!(classify(b"Authorization"), Some(KeyKind::Header));
        assert_eq!(classify(b"x-api-key"), Some(KeyKind::Secret));
    }

    #[test]
    fn the_memo_answers_as_classify_does() {
        let names: Vec<String> = [
            "password",
            "token_count",
            "apiKey",
            "user",
            "x-api-key",
            "Authorization",
            "aws_secret_access_key",
            "a",
            "",
            "ab\\.cd",
            "session",
            "é",
            "a_very_long_name_that_goes_on_and_on_past_the_memo",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain((0..300).map(|k| format!("field_{k}_token")))
        .collect();
        let mut memo = Memo::default();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let name = names[(seed % names.len() as u64) as usize].as_bytes();
            assert_eq!(memo.classify(name), classify(name), "{name:?}");
            // `clean` is only known once recorded (and is lost when another
            // name takes the slot); names that do not fit are never kept.
            if !memo.known_clean(name) && seed.is_multiple_of(2) {
                memo.set_clean(name);
                let fits = !name.is_empty() && name.len() <= MEMO_NAME;
                assert_eq!(memo.known_clean(name), fits, "{name:?}");
            }
        }
        let mut memo = Memo::default();
        memo.set_clean(b"level");
        assert!(memo.known_clean(b"level"));
        assert!(!memo.known_clean(b"levem"));
    }

    #[test]
    fn clean_paths_answer_for_their_path_only() {
        let mut paths = CleanPaths::default();
        let long = "context.a_path_far_longer_than_the_slots_of_the_path_memo.x";
        assert!(long.len() > PATH_MAX);
        let all = [
            "os",
            "level",
            "context.os",
            "context.os2",
            "context.runtime.python",
            "context.runtime.locale",
            r"a\.b[3].c",
            "tags[0]",
            "tags[1]",
            "[0]",
            "",
            long,
        ];
        for (n, p) in all.iter().enumerate() {
            let key = last_key_span(p);
            let kind = last_key(p).and_then(|k| classify(k.as_bytes()));
            paths.insert(p, key, kind);
            let got = paths.get(p);
            assert_eq!(got.is_some(), !p.is_empty() && p.len() <= PATH_MAX, "{p}");
            if let Some(got) = got {
                assert_eq!(got.last_key(p.as_bytes()), last_key(p).map(str::as_bytes));
                assert_eq!(got.kind, kind);
            }
            // Whatever is found for another path is that path's own.
            for q in &all[..n] {
                if let Some(got) = paths.get(q) {
                    assert_eq!(got.last_key(q.as_bytes()), last_key(q).map(str::as_bytes));
                }
            }
            for q in ["o", "context.o", "context.os.", "tags[2]", "x[0]", "levem"] {
                assert!(paths.get(q).is_none(), "{q} was never found clean");
            }
        }
        // A value is remembered for its path until the slot is taken over.
        let at = paths.get("context.os").expect("kept");
        assert!(!paths.is_clean_value(at, "linux"));
        paths.set_clean_value(at, "linux");
        assert!(paths.is_clean_value(at, "linux"));
        assert!(!paths.is_clean_value(at, "linu"));
        assert!(!paths.is_clean_value(at, "linuz"));
        paths.set_clean_value(at, "");
        assert!(paths.is_clean_value(at, ""));
        assert!(!paths.is_clean_value(at, "linux"));
        let too_long = "x".repeat(VALUE_MAX + 1);
        paths.set_clean_value(at, &too_long);
        assert!(!paths.is_clean_value(at, &too_long));
        paths.insert("context.os", last_key_span("context.os"), None);
        let at = paths.get("context.os").expect("kept");
        assert!(!paths.is_clean_value(at, ""));
    }

    fn inline(i: &str, o: &str) {
        check_rule(Rule::SecretKey, i, o);
    }

    #[test]
    fn assignments_in_text() {
        inline(
            "connect password=hunter2 host=db",
            "connect password=[redacted] host=db",
        );
        inline(
            "DB_PASSWORD = \"correct horse\"",
            "DB_PASSWORD = \"[redacted]\"",
        );
        inline(
            "{\"apiKey\": \"abc123\", \"n\": 1}",
            "{\"apiKey\": \"[redacted]\", \"n\": 1}",
        );
        inline("?access_token=abc&x=1", "?access_token=[redacted]&x=1");
        inline(
            "password: hunter2\nuser: ada",
            "password: [redacted]\nuser: ada",
        );
        inline("db:\n  password: hunter2", "db:\n  password: [redacted]");
        inline(
            "Authorization: Token abc def\nHost: x",
            "Authorization: [redacted]\nHost: x",
        );
        inline("Cookie: sid=1; theme=dark", "Cookie: [redacted]");
        inline(
            "mysql --password hunter2 -u root",
            "mysql --password [redacted] -u root",
        );
        inline("app --api-key=k-123", "app --api-key=[redacted]");
        inline(
            "spring.datasource.password=s3cr3t",
            "spring.datasource.password=[redacted]",
        );
        // Left alone.
        for s in [
            "password=",
            "password=[redacted]",
            "password=${DB_PASS}",
            "password=*****",
            "password_required=true",
            "token_count=5",
            "max_tokens=4096",
            "invalid password: too short",
            "auth: ok",
            "session=3",
            "PWD=/srv/app",
            "tokens: 1500",
            "a password was set",
            "https://host/token:x",
            "password=null",
        ] {
            inline(s, s);
        }
    }

    #[test]
    fn paths() {
        let segs: Vec<_> = segments(r"a.b\.c[2].d")
            .map(|s| (s.start, s.end, s.is_key))
            .collect();
        assert_eq!(
            segs,
            vec![(0, 1, true), (2, 6, true), (6, 9, false), (10, 11, true)]
        );
        assert_eq!(last_key("headers.set-cookie[1]"), Some("set-cookie"));
        assert_eq!(last_key("[0][1]"), None);
        assert_eq!(unescape(r"ada@example\.com"), "ada@example.com");
        let mut p = String::from("users.");
        push_escaped(&mut p, "[email]");
        assert_eq!(p, r"users.\[email\]");
    }
}
