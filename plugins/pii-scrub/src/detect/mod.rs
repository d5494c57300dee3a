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
pub(crate) mod net;
pub(crate) mod numbers;
pub(crate) mod paths;
pub(crate) mod secrets;
pub(crate) mod vendors;

pub(crate) use context::KeyContext;

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
        if self.len < 3 || enabled == 0 {
            return 0;
        }
        let mut m = 0u32;
        for d in &TABLE {
            let bit = d.rule.bit();
            if enabled & bit != 0 && (d.when)(self) {
                m |= bit;
            }
        }
        m
    }
}

/// What a scanner sees: the bytes, their features, their digit runs (filled
/// only when a scanner that walks them runs) and the context of the field.
pub(crate) struct Input<'b> {
    pub b: &'b [u8],
    pub f: Features<'b>,
    pub runs: DigitRuns,
    pub key: KeyContext,
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
pub(crate) fn find_all(b: &[u8], enabled: u32, key: KeyContext, out: &mut Vec<Hit>) -> u16 {
    if enabled == 0 {
        return 0;
    }
    let f = Features::of(b);
    let run = f.candidates(enabled);
    if run == 0 {
        return f.flags;
    }
    let runs = if run & DIGIT_RULES != 0 {
        DigitRuns::new(b)
    } else {
        DigitRuns::empty()
    };
    let input = Input { b, f, runs, key };
    for d in &TABLE {
        if run & d.rule.bit() != 0 {
            (d.scan)(&input, out);
        }
    }
    f.flags
}

/// Starts of the maximal digit runs of a string, found in one pass and
/// shared by the number scanners (cards, SSNs, phones, IBANs, IPv4), which
/// then visit digit runs instead of every byte. Up to 64 starts are stored;
/// past that, [`DigitRuns::next`] scans on.
pub(crate) struct DigitRuns {
    starts: [u32; 64],
    /// Per stored run, the digits from its start to the end of its numeric
    /// span: the runs that follow it across gaps of at most [`SPAN_GAP`]
    /// bytes that hold no letter or digit. A number (card, SSN, phone) that
    /// starts at a run takes its digits from that span only, so a run whose
    /// span is too short for a scanner is skipped without looking at it.
    reach: [u16; 64],
    len: usize,
    /// Bytes before this index are fully indexed.
    scanned: usize,
}

/// Longest gap between two digit runs of one numeric span. Every number
/// scanner joins groups with at most two bytes (`") "` in `(555) 123-4567`);
/// one more keeps the skip safe.
const SPAN_GAP: usize = 3;

impl DigitRuns {
    /// No runs (for strings no digit scanner looks at).
    pub(crate) fn empty() -> DigitRuns {
        DigitRuns {
            starts: [0; 64],
            reach: [0; 64],
            len: 0,
            scanned: 0,
        }
    }

    pub(crate) fn new(b: &[u8]) -> DigitRuns {
        let mut r = DigitRuns {
            starts: [0; 64],
            reach: [0; 64],
            len: 0,
            scanned: b.len(),
        };
        let mut ends = [0u32; 64];
        let mut prev_digit = false;
        for (i, &c) in b.iter().enumerate() {
            let d = is_digit(c);
            if d && !prev_digit {
                if r.len == r.starts.len() {
                    r.scanned = i;
                    break;
                }
                r.starts[r.len] = i as u32;
                r.len += 1;
            } else if !d && prev_digit {
                ends[r.len - 1] = i as u32;
            }
            prev_digit = d;
        }
        if prev_digit && r.len > 0 && r.scanned == b.len() {
            ends[r.len - 1] = b.len() as u32;
        }
        // Past the last stored run nothing is indexed: its span may go on, so
        // it reaches "far" (never skipped).
        for k in (0..r.len).rev() {
            let (start, end) = (r.starts[k] as usize, ends[k] as usize);
            let own = end.saturating_sub(start);
            let on = if k + 1 == r.len {
                if r.scanned < b.len() || end == 0 {
                    u16::MAX as usize
                } else {
                    0
                }
            } else {
                let next = r.starts[k + 1] as usize;
                let gap = &b[end.min(next)..next];
                if gap.len() <= SPAN_GAP && !gap.iter().any(|c| c.is_ascii_alphanumeric()) {
                    r.reach[k + 1] as usize
                } else {
                    0
                }
            };
            r.reach[k] = (own + on).min(u16::MAX as usize) as u16;
        }
        r
    }

    /// The first run start at or after `from` whose numeric span holds at
    /// least `digits` digits (runs past the indexed ones always qualify).
    pub(crate) fn next_with(&self, b: &[u8], from: usize, digits: usize) -> Option<usize> {
        let stored = &self.starts[..self.len];
        let mut k = stored.partition_point(|&s| (s as usize) < from);
        while k < self.len {
            if self.reach[k] as usize >= digits {
                return Some(self.starts[k] as usize);
            }
            k += 1;
        }
        self.next(b, from.max(self.scanned))
    }

    /// The first run start at or after `from`.
    pub(crate) fn next(&self, b: &[u8], from: usize) -> Option<usize> {
        let stored = &self.starts[..self.len];
        let k = stored.partition_point(|&s| (s as usize) < from);
        if let Some(&s) = stored.get(k) {
            return Some(s as usize);
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

/// Whether `hay` starts with `prefix`, ignoring ASCII case.
#[inline]
pub(crate) fn starts_with_ci(hay: &[u8], prefix: &[u8]) -> bool {
    hay.len() >= prefix.len() && hay[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Whether `needle` (lowercase) occurs in `hay`, ignoring ASCII case.
pub(crate) fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len()
        && hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
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
}
