//! The scanners: plain functions over bytes that push [`Hit`]s.
//!
//! [`find_all`] first classifies the string in one pass (which of the bytes
//! the detectors key on occur — digits, capitals, `:`, `.`, `-`, `/`, `\`,
//! `@`, `_`, `=` — and how many digits) and only runs the scanners that
//! could possibly match; most strings in telemetry (words, identifiers, short
//! numbers) are rejected there without looking further. Scanners never
//! allocate: they push into the caller's vector, which is only grown when
//! something matches.
//!
//! Every match starts and ends on an ASCII byte or the end of the string, so
//! spans always fall on UTF-8 character boundaries. Bytes outside ASCII count
//! as separators (so `電話+81 3 1234 5678` is found).

mod context;
pub(crate) mod encoded;
pub(crate) mod entropy;
pub(crate) mod inert;
pub(crate) mod net;
pub(crate) mod numbers;
pub(crate) mod paths;
pub(crate) mod secrets;
pub(crate) mod vendors;

pub(crate) use context::{FieldName, KeyContext};

use crate::rules::{RULES, Rule, TABLE};

/// One match: `rule` fired on `start..end` (byte offsets; the replaced span).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub rule: Rule,
    pub start: usize,
    pub end: usize,
}

impl Hit {
    pub(crate) fn new(rule: Rule, start: usize, end: usize) -> Hit {
        Hit { rule, start, end }
    }
}

// Byte classes for the one-pass prefilter.
pub(crate) const AT: u16 = 1;
pub(crate) const COLON: u16 = 1 << 1;
pub(crate) const DOT: u16 = 1 << 2;
pub(crate) const DASH: u16 = 1 << 3;
pub(crate) const SLASH: u16 = 1 << 4;
pub(crate) const BACKSLASH: u16 = 1 << 5;
pub(crate) const UNDERSCORE: u16 = 1 << 6;
pub(crate) const UPPER: u16 = 1 << 7;
pub(crate) const EQ: u16 = 1 << 8;
pub(crate) const SPACE: u16 = 1 << 9;
pub(crate) const BEE: u16 = 1 << 10;
pub(crate) const PERCENT: u16 = 1 << 11;

static CLASS: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = match b {
            b'@' => AT,
            b':' => COLON,
            b'.' => DOT,
            b'-' => DASH,
            b'/' => SLASH,
            b'\\' => BACKSLASH,
            b'_' => UNDERSCORE,
            b'=' => EQ,
            b' ' => SPACE,
            b'%' => PERCENT,
            b'B' => UPPER | BEE,
            b'A'..=b'Z' => UPPER,
            b'b' => BEE,
            _ => 0,
        };
        c += 1;
    }
    t
};

/// Per byte, one increment of a packed counter: digits, `:`, `.` and `-`,
/// 16 bits each (SWAR: one add counts all four).
static PACKED: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match c as u8 {
            b'0'..=b'9' => 1,
            b':' => 1 << 16,
            b'.' => 1 << 32,
            b'-' => 1 << 48,
            _ => 0,
        };
        c += 1;
    }
    t
};

/// Which of the bytes the detectors key on occur in a string, and how many
/// digits, colons, dots and dashes it has: two table lookups per byte, cheap
/// on every target (WebAssembly without SIMD included).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Features<'b> {
    pub b: &'b [u8],
    pub len: usize,
    pub flags: u16,
    pub digits: usize,
    pub colons: usize,
    pub dots: usize,
    pub dashes: usize,
}

impl<'b> Features<'b> {
    pub(crate) fn of(b: &'b [u8]) -> Features<'b> {
        let mut f = Features {
            b,
            len: b.len(),
            flags: 0,
            digits: 0,
            colons: 0,
            dots: 0,
            dashes: 0,
        };
        // Chunks keep every 16-bit lane from overflowing.
        for chunk in b.chunks(u16::MAX as usize) {
            let mut packed = 0u64;
            for &c in chunk {
                f.flags |= CLASS[c as usize];
                packed += PACKED[c as usize];
            }
            f.digits += (packed & 0xffff) as usize;
            f.colons += ((packed >> 16) & 0xffff) as usize;
            f.dots += ((packed >> 32) & 0xffff) as usize;
            f.dashes += (packed >> 48) as usize;
        }
        f
    }

    /// Whether any byte of the classes `f` occurs.
    pub(crate) fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }

    /// IPv4 needs four digits and three dots.
    pub(crate) fn maybe_v4(&self) -> bool {
        self.digits >= 4 && self.dots >= 3
    }

    /// IPv6 needs seven colons or a `::`.
    pub(crate) fn maybe_v6(&self) -> bool {
        self.colons >= 7 || (self.colons >= 2 && find(self.b, b"::", 0).is_some())
    }

    /// The detectors (bit per [`Rule`]) among `enabled` that could match.
    pub(crate) fn candidates(&self, enabled: u32) -> u32 {
        if self.len < 3 || enabled == 0 || self.plain() {
            return 0;
        }
        crate::rules::prefilter(self, enabled)
    }

    /// A word no prefilter passes: lower-case letters, `_`, fewer than
    /// four digits and shorter than [`plain_limit`] (most field names and
    /// many short values).
    #[inline]
    fn plain(&self) -> bool {
        self.flags & !(UNDERSCORE | BEE) == 0
            && self.digits < PLAIN_DIGITS
            && self.len < plain_limit()
    }
}

/// Digits a [`Features::plain`] word may hold.
const PLAIN_DIGITS: usize = 4;

/// The features of the widest plain word of `len` bytes: every count and
/// class a plain word of that length can have, at their largest.
fn plain_bound(len: usize) -> Features<'static> {
    Features {
        b: b"",
        len,
        flags: UNDERSCORE | BEE,
        digits: PLAIN_DIGITS - 1,
        colons: 0,
        dots: 0,
        dashes: 0,
    }
}

/// The shortest plain word some prefilter passes, found once from the rule
/// table itself (so a new detector's prefilter moves it): each prefilter
/// only grows with the counts, the length and the classes present, so no
/// prefilter passes any plain word shorter than this.
fn plain_limit() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        (0..4096)
            .find(|&len| crate::rules::prefilter(&plain_bound(len), u32::MAX) != 0)
            .unwrap_or(4096)
    })
}

/// What a scanner sees: the bytes, their features, their digit runs (filled
/// only when a scanner that walks them runs) and the context of the field.
pub(crate) struct Input<'b> {
    pub b: &'b [u8],
    pub f: Features<'b>,
    pub runs: DigitRuns,
    pub key: &'b FieldName<'b>,
    /// The long base64-like runs, found by the first scanner that asks.
    long: std::cell::OnceCell<entropy::LongRuns>,
}

impl Input<'_> {
    /// The runs of base64/base64url bytes long enough for an unnamed
    /// secret or an AWS secret key (one walk shared by both).
    pub(crate) fn long_runs(&self) -> &entropy::LongRuns {
        self.long.get_or_init(|| entropy::LongRuns::new(self.b))
    }
}

/// Whether any enabled detector could match `b` (the cheap prefilter alone).
pub(crate) fn could_match(b: &[u8], enabled: u32) -> bool {
    Features::of(b).candidates(enabled) != 0
}

/// Bit per detector whose scanner walks digit runs.
const DIGIT_RULES: u32 = {
    let mut m = 0;
    let mut i = 0;
    while i < RULES {
        if TABLE[i].digits {
            m |= TABLE[i].rule.bit();
        }
        i += 1;
    }
    m
};

/// Run every enabled scanner that could match; raw (possibly overlapping)
/// hits are appended to `out`. Returns the byte classes seen (so the caller
/// knows, without another pass, whether `%` or `\` occur).
pub(crate) fn find_all(b: &[u8], enabled: u32, key: &FieldName<'_>, out: &mut Vec<Hit>) -> u16 {
    if enabled == 0 {
        return 0;
    }
    let f = Features::of(b);
    let run = f.candidates(enabled);
    if run == 0 {
        return f.flags;
    }
    let mut input = Input {
        b,
        f,
        runs: DigitRuns::empty(),
        key,
        long: std::cell::OnceCell::new(),
    };
    if run & DIGIT_RULES != 0 {
        input.runs.index(b);
    }
    for d in &TABLE {
        if run & d.rule.bit() != 0 {
            (d.scan)(&input, out);
        }
    }
    f.flags
}

/// The digit runs a number can start at, found in one pass and shared by
/// the number scanners (cards, SSNs, phones, IBANs, IPv4), which then visit
/// those runs instead of every byte.
///
/// A run is kept when its numeric span holds at least [`MIN_SPAN`] digits
/// (the fewest any number scanner needs) or when it follows two capitals,
/// as an IBAN's check digits do. Most digit runs of telemetry (the digits
/// of UUIDs, hashes, versions, short numbers) are neither, so the scanners
/// never see them. Up to [`KEPT`] runs are kept; past that nothing is
/// indexed and [`DigitRuns::next`] scans on.
pub(crate) struct DigitRuns {
    starts: [u32; KEPT],
    /// Per kept run, the digits from its start to the end of its numeric
    /// span: the runs that follow it across gaps of at most [`SPAN_GAP`]
    /// bytes that hold no letter or digit. A number (card, SSN, phone) that
    /// starts at a run takes its digits from that span only, so a run whose
    /// span is too short for a scanner is skipped without looking at it.
    reach: [u16; KEPT],
    /// Bit `k`: kept run `k` follows two capitals (an IBAN's head).
    iban: u64,
    len: usize,
    /// The largest reach of a kept run.
    max_reach: u16,
    /// Bytes before this index are fully indexed.
    scanned: usize,
    /// Where the last [`DigitRuns::first_at`] stopped.
    hint: std::cell::Cell<usize>,
}

/// Most runs kept.
const KEPT: usize = 64;

/// Fewest digits in the numeric span of any number a scanner takes (an
/// IPv4 address has four).
const MIN_SPAN: usize = 4;

/// Longest gap between two digit runs of one numeric span. Every number
/// scanner joins groups with at most two bytes (`") "` in `(555) 123-4567`);
/// one more keeps the skip safe.
const SPAN_GAP: usize = 3;

/// Bit 8·j is set when byte j of `w` (little-endian) is an ASCII digit
/// (eight bytes at once, no carry between them).
#[inline]
fn digit_bits(w: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let y = w & LOW7;
    // Per byte: high bit when y >= b'0', and when y > b'9'.
    let ge0 = y + 0x5050_5050_5050_5050;
    let gt9 = y + 0x4646_4646_4646_4646;
    ((ge0 & !gt9 & !w & HIGH) >> 7) & 0x0101_0101_0101_0101
}

/// The numeric span being indexed: its first run's index, where its last
/// run ends, its digits, and whether a run of it follows two capitals.
#[derive(Default)]
struct Span {
    first: usize,
    end: usize,
    digits: usize,
    iban: bool,
}

/// The lowest `n` bits set (`n <= 64`).
#[inline]
fn low_bits(n: usize) -> u64 {
    u64::MAX.checked_shr(64 - n as u32).unwrap_or(0)
}

impl DigitRuns {
    /// No runs (for strings no digit scanner looks at).
    pub(crate) fn empty() -> DigitRuns {
        DigitRuns {
            starts: [0; KEPT],
            reach: [0; KEPT],
            iban: 0,
            len: 0,
            max_reach: 0,
            scanned: 0,
            hint: std::cell::Cell::new(0),
        }
    }

    #[cfg(test)]
    pub(crate) fn new(b: &[u8]) -> DigitRuns {
        let mut r = DigitRuns::empty();
        r.index(b);
        r
    }

    /// Index the runs of `b` into an empty index (in place: the index is
    /// a few hundred bytes, not worth copying per string).
    pub(crate) fn index(&mut self, b: &[u8]) {
        let r = self;
        r.scanned = b.len();
        let mut span = Span::default();
        let mut run_start = 0;
        let mut carry = 0u64;
        let mut base = 0;
        while base < b.len() {
            let w = word_at(b, base);
            let d = digit_bits(w);
            // A run starts where a digit follows a non-digit and ends where
            // a non-digit follows a digit.
            let mut edges = d ^ ((d << 8) | carry);
            carry = d >> 56;
            while edges != 0 {
                let i = base + (edges.trailing_zeros() / 8) as usize;
                edges &= edges - 1;
                if i < b.len() && is_digit(b[i]) {
                    run_start = i;
                } else if !r.push_run(b, run_start, i, &mut span) {
                    return;
                }
            }
            base += 8;
        }
        if carry != 0 && !r.push_run(b, run_start, b.len(), &mut span) {
            return;
        }
        r.close_span(&span);
    }

    /// Record the run `start..end`; `false` when the index is full (then
    /// everything from the span being built on is left unindexed).
    #[inline(always)]
    fn push_run(&mut self, b: &[u8], start: usize, end: usize, span: &mut Span) -> bool {
        let gap = start - span.end;
        let joined = span.digits > 0
            && gap <= SPAN_GAP
            && !b[span.end..start].iter().any(u8::is_ascii_alphanumeric);
        if !joined {
            self.close_span(span);
            *span = Span {
                first: self.len,
                ..Span::default()
            };
        }
        span.end = end;
        span.digits += end - start;
        if self.len == KEPT {
            self.scanned = if span.first < self.len {
                self.starts[span.first] as usize
            } else {
                start
            };
            self.len = span.first;
            self.iban &= low_bits(self.len);
            return false;
        }
        let k = self.len;
        self.starts[k] = start as u32;
        self.reach[k] = (end - start).min(u16::MAX as usize) as u16;
        if start >= 2
            && end - start >= 2
            && b[start - 2].is_ascii_uppercase()
            && b[start - 1].is_ascii_uppercase()
        {
            self.iban |= 1 << k;
            span.iban = true;
        }
        self.len += 1;
        true
    }

    /// End the span `span.first..len`: sum the reaches of its runs back to
    /// front and keep those that can start a number.
    fn close_span(&mut self, span: &Span) {
        let first = span.first;
        if span.digits < MIN_SPAN && !span.iban {
            // The common case: a short number, or digits inside a word.
            self.len = first;
            self.iban &= low_bits(first);
            return;
        }
        let mut acc = 0usize;
        for k in (first..self.len).rev() {
            acc += self.reach[k] as usize;
            self.reach[k] = acc.min(u16::MAX as usize) as u16;
        }
        let mut kept = first;
        for k in first..self.len {
            let iban = self.iban >> k & 1;
            if self.reach[k] as usize >= MIN_SPAN || iban != 0 {
                self.starts[kept] = self.starts[k];
                self.reach[kept] = self.reach[k];
                self.max_reach = self.max_reach.max(self.reach[k]);
                self.iban = (self.iban & !(1 << kept)) | (iban << kept);
                kept += 1;
            }
        }
        // Bits of dropped runs must not linger above the kept ones.
        self.iban &= low_bits(kept);
        self.len = kept;
    }

    /// The index of the first kept run at or after `from`. A scanner asks
    /// with growing `from`, so the search goes on from the last answer
    /// when it can.
    #[inline]
    fn first_at(&self, from: usize) -> usize {
        let hint = self.hint.get();
        let mut k = if hint <= self.len && (hint == 0 || (self.starts[hint - 1] as usize) < from) {
            hint
        } else {
            0
        };
        while k < self.len && (self.starts[k] as usize) < from {
            k += 1;
        }
        self.hint.set(k);
        k
    }

    /// Whether some numeric span may hold `digits` digits: `false` when
    /// every run is indexed and none reaches that far (most strings with
    /// digits enough for one number scanner have too few for the others),
    /// and then [`next_with`](DigitRuns::next_with) finds nothing.
    #[inline]
    pub(crate) fn reaches(&self, b: &[u8], digits: usize) -> bool {
        self.scanned < b.len() || digits <= self.max_reach as usize
    }

    /// The first run start at or after `from` whose numeric span holds at
    /// least `digits` digits (runs past the indexed ones always qualify).
    pub(crate) fn next_with(&self, b: &[u8], from: usize, digits: usize) -> Option<usize> {
        let mut k = self.first_at(from);
        while k < self.len {
            if self.reach[k] as usize >= digits {
                return Some(self.starts[k] as usize);
            }
            k += 1;
        }
        self.next(b, from.max(self.scanned))
    }

    /// The first run start at or after `from` that follows two capitals
    /// (runs past the indexed ones always qualify).
    pub(crate) fn next_after_capitals(&self, b: &[u8], from: usize) -> Option<usize> {
        let k = self.first_at(from);
        let rest = if k >= 64 { 0 } else { self.iban >> k };
        if rest != 0 {
            return Some(self.starts[k + rest.trailing_zeros() as usize] as usize);
        }
        self.next(b, from.max(self.scanned))
    }

    /// The first kept run start at or after `from`, or past the indexed
    /// bytes the first run start there.
    pub(crate) fn next(&self, b: &[u8], from: usize) -> Option<usize> {
        let k = self.first_at(from);
        if k < self.len {
            return Some(self.starts[k] as usize);
        }
        let mut i = from.max(self.scanned);
        while i < b.len() {
            if is_digit(b[i]) && !is_digit(before(b, i)) {
                return Some(i);
            }
            i += 1;
        }
        None
    }
}

// ---- small byte helpers shared by the scanners ----

/// The byte at `i`, or 0 past the end (0 acts as a separator).
#[inline]
pub(crate) fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// The byte before `i`, or 0 at the start.
#[inline]
pub(crate) fn before(b: &[u8], i: usize) -> u8 {
    if i == 0 { 0 } else { b[i - 1] }
}

#[inline]
pub(crate) fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

#[inline]
pub(crate) fn is_digit(c: u8) -> bool {
    c.is_ascii_digit()
}

#[inline]
pub(crate) fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

/// Position of `needle` in `hay` at or after `from`, anchored on the
/// needle's byte at `anchor` (pick a rare one): `memchr` finds candidates
/// (SIMD natively, word-at-a-time in WebAssembly) and each is verified.
pub(crate) fn find_at(hay: &[u8], needle: &[u8], anchor: usize, from: usize) -> Option<usize> {
    let a = needle[anchor];
    let mut i = from + anchor;
    while i < hay.len() {
        let p = i + memchr::memchr(a, &hay[i..])?;
        let start = p - anchor;
        if hay.len() - start >= needle.len() && &hay[start..start + needle.len()] == needle {
            return Some(start);
        }
        i = p + 1;
    }
    None
}

/// Position of `needle` in `hay` at or after `from`.
#[inline]
pub(crate) fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    find_at(hay, needle, 0, from)
}

/// Position of `c` in `hay` at or after `from`.
#[inline]
pub(crate) fn find_byte(hay: &[u8], c: u8, from: usize) -> Option<usize> {
    memchr::memchr(c, hay.get(from..)?).map(|p| p + from)
}

/// Position of `c1` or `c2` in `hay` at or after `from`.
#[inline]
pub(crate) fn find_byte2(hay: &[u8], c1: u8, c2: u8, from: usize) -> Option<usize> {
    memchr::memchr2(c1, c2, hay.get(from..)?).map(|p| p + from)
}

/// Position of `c1`, `c2` or `c3` in `hay` at or after `from`.
#[inline]
pub(crate) fn find_byte3(hay: &[u8], c1: u8, c2: u8, c3: u8, from: usize) -> Option<usize> {
    memchr::memchr3(c1, c2, c3, hay.get(from..)?).map(|p| p + from)
}

/// High bit of each byte of `w` that equals `c` (exact: no carry between
/// bytes).
#[inline(always)]
fn byte_eq(w: u64, c: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = w ^ (0x0101_0101_0101_0101 * c as u64);
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// The positions of `c1`, `c2` or `c3` in a string, in order: the same as
/// [`find_byte3`] in a loop. With `dense` (the bytes occur every few bytes,
/// as in command lines, paths and stack traces) the string is read eight
/// bytes at a time instead: starting `memchr` again at every hit costs more
/// than the search there. The bytes must not be 0.
pub(crate) struct Bytes3<'h> {
    hay: &'h [u8],
    c: [u8; 3],
    dense: bool,
    /// Positions before this are not reported.
    from: usize,
    /// Dense: the word being read starts here; `mask` holds its hits.
    base: usize,
    mask: u64,
    next_base: usize,
}

impl<'h> Bytes3<'h> {
    pub(crate) fn new(hay: &'h [u8], c: [u8; 3], dense: bool) -> Bytes3<'h> {
        Bytes3 {
            hay,
            c,
            dense,
            from: 0,
            base: 0,
            mask: 0,
            next_base: 0,
        }
    }

    /// Go on at `pos` at the earliest.
    #[inline]
    pub(crate) fn skip_to(&mut self, pos: usize) {
        self.from = self.from.max(pos);
    }

    #[inline]
    pub(crate) fn next(&mut self) -> Option<usize> {
        let [c1, c2, c3] = self.c;
        if !self.dense {
            let i = find_byte3(self.hay, c1, c2, c3, self.from)?;
            self.from = i + 1;
            return Some(i);
        }
        loop {
            while self.mask != 0 {
                let i = self.base + (self.mask.trailing_zeros() / 8) as usize;
                self.mask &= self.mask - 1;
                if i >= self.from {
                    self.from = i + 1;
                    return Some(i);
                }
            }
            let start = self.next_base.max(self.from);
            let hay = self.hay;
            if start >= hay.len() {
                return None;
            }
            // Zero bytes past the end match none of the three.
            let w = word_at(hay, start);
            self.base = start;
            self.mask = byte_eq(w, c1) | byte_eq(w, c2) | byte_eq(w, c3);
            self.next_base = start + 8;
        }
    }
}

/// Whether `hay` starts with `prefix`, ignoring ASCII case.
#[inline]
pub(crate) fn starts_with_ci(hay: &[u8], prefix: &[u8]) -> bool {
    hay.len() >= prefix.len() && hay[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Whether `needle` (lowercase, starting with a letter) occurs in `hay`,
/// ignoring ASCII case: candidates are found by its first letter in either
/// case.
pub(crate) fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    let c = needle[0];
    let mut from = 0;
    while let Some(p) = find_byte2(hay, c, c.to_ascii_uppercase(), from) {
        if hay.len() - p >= needle.len() && hay[p..p + needle.len()].eq_ignore_ascii_case(needle) {
            return true;
        }
        from = p + 1;
    }
    false
}

/// The eight bytes of `b` from `at` as a little-endian word, zero past the
/// end (`at` is inside `b`).
#[inline]
pub(crate) fn word_at(b: &[u8], at: usize) -> u64 {
    match b.get(at..at + 8) {
        Some(c) => u64::from_le_bytes(c.try_into().unwrap_or([0; 8])),
        None => {
            let mut tail = [0u8; 8];
            tail[..b.len() - at].copy_from_slice(&b[at..]);
            u64::from_le_bytes(tail)
        }
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use crate::rules::{Rule, Ruleset};

    /// Scrub `input` with only `rule` enabled and compare.
    #[track_caller]
    pub fn check_rule(rule: Rule, input: &str, expected: &str) {
        let got = Ruleset::only(rule)
            .scrub_str(input)
            .unwrap_or_else(|| input.to_string());
        assert_eq!(got, expected, "{} on {input:?}", rule.name());
    }

    /// Scrub `input` with every detector enabled and compare.
    #[track_caller]
    pub fn check(input: &str, expected: &str) {
        let got = Ruleset::default()
            .scrub_str(input)
            .unwrap_or_else(|| input.to_string());
        assert_eq!(got, expected, "all detectors on {input:?}");
    }

    /// `input` must survive every detector untouched.
    #[track_caller]
    pub fn clean(input: &str) {
        check(input, input);
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use crate::rules::{Rule, TABLE};

    #[test]
    fn overlaps_resolve_by_rank() {
        // Bearer wins over the JWT inside it, keeping the scheme.
        check(
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
            "Authorization: Bearer [credential]",
        );
        // url_password wins over the e-mail-shaped `pass@host`.
        check(
            "postgres://ada:hunter2@db.example.com:5432/app",
            "postgres://[password]@db.example.com:5432/app",
        );
        check(
            "mongodb://svc:s3cret@10.0.0.5:27017",
            "mongodb://[password]@[ip]:27017",
        );
        // No password: the user name is still an address when the host has a dot.
        check("https://ada@example.com/x", "https://[email]/x");
        check("https://ada@localhost/x", "https://ada@localhost/x");
    }

    #[test]
    fn mixed_text_and_unicode() {
        check(
            "用户 ada@example.com 从 10.1.2.3 登录，电话+81 3 1234 5678",
            "用户 [email] 从 [ip] 登录，电话[phone]",
        );
        check("naïve café — ümlaut", "naïve café — ümlaut");
        check("", "");
    }

    #[test]
    fn never_panics_on_noise() {
        // Deterministic noise over the bytes the scanners care about,
        // including multi-byte characters next to every trigger.
        const ALPHABET: &[&str] = &[
            "0",
            "1",
            "4",
            "9",
            ":",
            ".",
            "-",
            "@",
            "/",
            "\\",
            " ",
            "A",
            "a",
            "f",
            "é",
            "電",
            "+",
            "(",
            ")",
            "=",
            "\"",
            "'",
            "eyJ",
            "_",
            "AKIA",
            "ghp_",
            "Bearer ",
            "Basic ",
            "://",
            "/home/",
            "C:",
            "Users",
            "-----BEGIN PRIVATE KEY-----",
            "-----END ",
            "\n",
            "[",
            "]",
            "password",
            "--",
            "%",
            "DE89",
            "::",
            "x",
            "com",
        ];
        let rules = crate::rules::Ruleset::default();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut s = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push_str(ALPHABET[(seed % ALPHABET.len() as u64) as usize]);
            }
            let _ = rules.scrub_str(&s);
        }
    }

    #[test]
    fn matches_hold_only_the_bytes_their_rule_lists() {
        // `RuleDef::holds` decides which detectors see a decoded word
        // again; a byte missing from a list would lose matches there.
        const FRAGS: &[&str] = &[
            "0",
            "1",
            "4",
            "9",
            "12",
            "123",
            "555",
            "4111",
            "2024",
            "255",
            "0044",
            "+",
            "+1",
            "+44",
            "(",
            ")",
            "(555) ",
            "-",
            "--",
            ".",
            ". ",
            ", ",
            " ",
            ":",
            "::",
            "/",
            "\\",
            "@",
            "_",
            "=",
            "#",
            "%",
            "\"",
            "'",
            "a",
            "x",
            "f",
            "e",
            "B",
            "A",
            "Z",
            "GB82 ",
            "WEST ",
            "DE89",
            "SSN: ",
            "version ",
            "ip ",
            "mac ",
            "v",
            "1111 ",
            "4111 1111 1111 1111",
            "219-45-0912",
            "555-123-4567",
            "10.0.0.1",
            "00:1A:2B:3C:4D:5E",
            "001a.2b3c.4d5e",
            "[",
            "]",
            "DE89370400440532013000",
            "+44 20 7946 0958",
            "ada@example.com",
            "password=",
            "eyJ",
            "AKIA",
            "ghp_",
            "k9Xq",
            "Q8rT",
            "fe80::1",
            "%eth0",
            "https://",
            "u:p@h",
            "/home/ada",
            "sk-",
            "SK",
            "Bearer ",
            "aws ",
            "secret=",
            "é",
            "\n",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut hits = Vec::new();
        for rule in Rule::ALL {
            let Some(holds) = TABLE[rule as usize].holds else {
                continue;
            };
            let rules = crate::rules::Ruleset::only(rule).with_decoding(false);
            for _ in 0..4000 {
                let mut s = String::new();
                for _ in 0..next() % 60 {
                    s.push_str(FRAGS[(next() % FRAGS.len() as u64) as usize]);
                }
                rules.find(&s, &mut hits);
                for h in &hits {
                    let m = &s.as_bytes()[h.start..h.end];
                    assert!(
                        m.iter()
                            .all(|c| c.is_ascii_alphanumeric() || holds.contains(c)),
                        "{} matched {:?} in {s:?}",
                        rule.name(),
                        String::from_utf8_lossy(m)
                    );
                }
            }
        }
    }

    #[test]
    fn plain_words_pass_no_prefilter() {
        // The shortcut in `Features::candidates` against the prefilter
        // itself, on words of every length from the plain alphabet and
        // next to it.
        use super::{Features, plain_limit};
        assert_eq!(plain_limit(), 16, "the token prefilter's length bound");
        let alphabet = b"abcxyz_0129AZ-.:@/ =";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            let plain_only = !seed.is_multiple_of(3);
            let word: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let n = if plain_only { 11 } else { alphabet.len() };
                    alphabet[(seed % n as u64) as usize]
                })
                .collect();
            let f = Features::of(&word);
            let slow = if f.len < 3 {
                0
            } else {
                crate::rules::prefilter(&f, u32::MAX)
            };
            assert_eq!(
                f.candidates(u32::MAX),
                slow,
                "{:?}",
                String::from_utf8_lossy(&word)
            );
        }
    }

    #[test]
    fn many_in_one_string() {
        check(
            "user=ada@example.com ip=192.168.1.20 card=4111 1111 1111 1111 ssn=123-45-6789 mac=00:1A:2B:3C:4D:5E",
            "user=[email] ip=[ip] card=[card] ssn=[ssn] mac=[mac]",
        );
    }

    #[test]
    fn numeric_spans_skip_runs_too_short_for_a_number() {
        use super::DigitRuns;
        let b = b"v1.4.2 at 2026-11-22, call (555) 123-4567 or 4111 1111 1111 1111x";
        let runs = DigitRuns::new(b);
        let starts = |min: usize| {
            let (mut from, mut out) = (0, Vec::new());
            while let Some(i) = runs.next_with(b, from, min) {
                out.push(
                    std::str::from_utf8(&b[i..])
                        .unwrap()
                        .split(' ')
                        .next()
                        .unwrap()
                        .to_string(),
                );
                from = i + 1;
            }
            out
        };
        // `1.4.2` has 3 digits, the date 8 in one span; `(555) 123-4567`
        // is one span of 10 across `) `; the card's groups make one of 16.
        assert_eq!(starts(4)[..3], ["2026-11-22,", "11-22,", "555)"]);
        assert_eq!(starts(9), ["555)", "4111", "1111"]);
        assert_eq!(starts(12), ["4111", "1111"]);
        assert!(starts(17).is_empty());
        // Past 64 stored runs the span may go on: nothing before is skipped.
        let many = "1 ".repeat(70) + "7";
        let runs = DigitRuns::new(many.as_bytes());
        assert_eq!(runs.next_with(many.as_bytes(), 0, 99), Some(0));
    }

    #[test]
    fn runs_after_two_capitals_are_kept_for_ibans() {
        use super::DigitRuns;
        let b = b"id 12 AB12 GB82 WEST 1234 x";
        let runs = DigitRuns::new(b);
        assert_eq!(runs.next_after_capitals(b, 0), Some(8));
        assert_eq!(runs.next_after_capitals(b, 9), Some(13));
        assert_eq!(runs.next_after_capitals(b, 14), None);
        // More than the index holds: the rest is scanned, none is lost.
        let many = "AB12 ".repeat(70);
        let b = many.as_bytes();
        let runs = DigitRuns::new(b);
        let (mut from, mut seen) = (0, 0);
        while let Some(i) = runs.next_after_capitals(b, from) {
            assert_eq!(i % 5, 2);
            seen += 1;
            from = i + 1;
        }
        assert_eq!(seen, 70);
    }
}
