//! Unnamed secrets: a generic rule for credential-like runs, in the style of
//! gitleaks' `generic-api-key` and truffleHog's entropy checks.
//!
//! A candidate is a maximal run of base64/base64url characters
//! (`A-Z a-z 0-9 + / - _`, up to two `=` of padding) of 32 to 120
//! characters, not glued to a dotted name or a domain. It is a secret when
//! all of these hold:
//!
//! * it mixes upper and lower case, with digits or with capitals in a
//!   random share (hex digests, UUIDs, paths and words in one case fail,
//!   and so do camelCase names without digits);
//! * its Shannon entropy is within 0.7 bit of what a random string of its
//!   length over 64 symbols is expected to have (random 40-character keys
//!   sit near 4.8 bits, identifiers and prose near 3.5-4.2);
//! * it holds no dictionary word of five letters or more (class names,
//!   mangled symbols, `camelCaseIdentifiers`);
//! * it does not decode, as base64, to mostly printable text (encoded
//!   content, not a key);
//! * it is not labelled as a digest (`sha256`, `sha512-…`, `integrity`,
//!   `checksum`, `h1:`, …);
//! * it has at most five `/`, does not start with `//`, and at most one
//!   character in five is `-` or `_` (paths, URLs, snake-case names).

use super::context::WordsBefore;
use super::{Hit, Input, at, before};
use crate::rules::Rule;

/// Shortest run considered.
pub(crate) const MIN_LEN: usize = 32;
/// Longest run considered (longer ones are blobs: images, certificates).
const MAX_LEN: usize = 120;

static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_');
        c += 1;
    }
    t
};

/// Words of five letters or more that mark a run as an identifier or text,
/// sorted (looked up by their first two letters).
#[rustfmt::skip]
const WORDS: &[&[u8]] = &[
    b"abstract", b"access", b"account", b"action", b"adapter", b"address", b"admin", b"agent",
    b"alert", b"alloc", b"allow", b"apache", b"append", b"application", b"array", b"async",
    b"attribute", b"audit", b"backup", b"batch", b"before", b"binary", b"block", b"bucket",
    b"buffer", b"build", b"bundle", b"cache", b"callback", b"change", b"channel", b"check",
    b"class", b"client", b"close", b"closure", b"cluster", b"collection", b"column",
    b"command", b"commit", b"common", b"component", b"config", b"connect", b"console",
    b"consumer", b"container", b"content", b"context", b"control", b"convert", b"create",
    b"current", b"cursor", b"customer", b"daemon", b"database", b"default", b"delete",
    b"deploy", b"device", b"dispatch", b"docker", b"document", b"domain", b"driver", b"dummy",
    b"element", b"email", b"engine", b"entity", b"error", b"event", b"example", b"exception",
    b"execute", b"export", b"extension", b"factory", b"failed", b"feature", b"fetch", b"field",
    b"filter", b"final", b"format", b"frame", b"function", b"future", b"gateway", b"generic",
    b"global", b"graph", b"group", b"handle", b"header", b"helper", b"image", b"import",
    b"index", b"input", b"insert", b"instance", b"interface", b"internal", b"invoke", b"issue",
    b"kernel", b"lambda", b"layer", b"length", b"level", b"library", b"linux", b"listen",
    b"loader", b"local", b"logger", b"lookup", b"manager", b"mapper", b"master", b"match",
    b"media", b"memory", b"message", b"method", b"metric", b"model", b"module", b"monitor",
    b"mutex", b"native", b"network", b"number", b"object", b"option", b"order", b"output",
    b"package", b"panic", b"param", b"parse", b"password", b"patch", b"payload", b"payment",
    b"place", b"plugin", b"point", b"policy", b"process", b"produce", b"product",
    b"profile", b"project", b"property", b"provider", b"proxy", b"public", b"publish",
    b"query", b"queue", b"random", b"reader", b"record", b"redis", b"reference", b"reflect",
    b"register", b"release", b"remote", b"render", b"report", b"repository", b"request",
    b"resolve", b"resource", b"response", b"result", b"return", b"route", b"runtime",
    b"sample", b"schema", b"scope", b"script", b"search", b"secret", b"security", b"select",
    b"sender", b"serial", b"server", b"service", b"session", b"setting", b"shared", b"signal",
    b"simple", b"singleton", b"socket", b"source", b"spring", b"stack", b"start", b"state",
    b"static", b"status", b"storage", b"store", b"stream", b"string", b"struct", b"super",
    b"support", b"switch", b"system", b"table", b"target", b"template", b"tenant", b"thread",
    b"timeout", b"token", b"tokio", b"trace", b"transaction", b"transform", b"trigger",
    b"unwrap", b"update", b"upload", b"utils", b"value", b"vector", b"version", b"visitor",
    b"volume", b"window", b"worker", b"wrapper", b"write", b"writer",
];

/// Labels of digests and checksums (the run is a hash of a file, not a key).
#[rustfmt::skip]
const DIGEST_LABELS: &[&[u8]] = &[
    b"sha", b"sha1", b"sha224", b"sha256", b"sha384", b"sha512", b"md5", b"digest",
    b"checksum", b"integrity", b"hash", b"etag", b"h1", b"fingerprint", b"sum", b"blake2b",
    b"blake3", b"sri",
];

/// Most stops stored by [`LongRuns`].
const STOPS: usize = 16;

/// Where the walk for long runs of `A-Z a-z 0-9 + / - _` stops, found once
/// per string and shared by [`generic_secret`] and the AWS secret-key
/// search (whose base64 runs lie inside such runs). Up to [`STOPS`] stops
/// are stored; past that [`LongRuns::iter`] walks on.
pub(crate) struct LongRuns {
    stops: [Stop; STOPS],
    len: usize,
    /// Where the walk resumes past the stored stops (`usize::MAX`: done).
    resume: usize,
}

/// A stop of the walk: the run `s..r` and `e`, its end with up to two `=`
/// of padding.
#[derive(Clone, Copy, Default)]
pub(crate) struct Stop {
    pub s: usize,
    pub r: usize,
    pub e: usize,
}

impl LongRuns {
    pub(crate) fn new(b: &[u8]) -> LongRuns {
        let mut l = LongRuns {
            stops: [Stop::default(); STOPS],
            len: 0,
            resume: usize::MAX,
        };
        let mut i = 0;
        while let Some(stop) = next_stop(b, i) {
            if l.len == STOPS {
                l.resume = i;
                break;
            }
            l.stops[l.len] = stop;
            l.len += 1;
            i = stop.e;
        }
        l
    }

    /// Every stop of the walk, in order: the stored ones, then (past
    /// [`STOPS`]) the walk goes on from the last.
    pub(crate) fn iter<'a>(&'a self, b: &'a [u8]) -> impl Iterator<Item = Stop> + 'a {
        let mut k = 0;
        let mut i = 0;
        std::iter::from_fn(move || {
            let stop = if k < self.len {
                self.stops[k]
            } else if self.resume != usize::MAX {
                next_stop(b, i)?
            } else {
                return None;
            };
            k += 1;
            i = stop.e;
            Some(stop)
        })
    }
}

/// The next stop of the walk from `i`. Probes every `MIN_LEN`-th byte: a
/// run long enough to matter covers one. Every run of `MIN_LEN` bytes or
/// more is a stop, from its first byte; so are a few shorter ones (when the byte `MIN_LEN - 1`
/// past their start belongs to the next run). The walk goes on from the end
/// of a stop (`e`): a short run whose `=` counted as padding (`key=…`) may
/// be followed at once by the run that matters, which then starts at `e`.
fn next_stop(b: &[u8], mut i: usize) -> Option<Stop> {
    let tok = |i: usize| TOKEN[b[i] as usize];
    // Invariant: `i` is 0, or a byte that is not part of a run, or follows
    // one (a stop's padding included): no run begins before `i` unseen.
    while i + MIN_LEN <= b.len() {
        let probe = i + MIN_LEN - 1;
        if !tok(probe) {
            i = probe + 1;
            continue;
        }
        let mut s = probe;
        while s > i && tok(s - 1) {
            s -= 1;
        }
        // A run from `s` too short to matter ends before `s + MIN_LEN - 1`;
        // no run long enough can start before that byte either.
        if s + MIN_LEN > b.len() {
            return None;
        }
        if !tok(s + MIN_LEN - 1) {
            i = s + MIN_LEN;
            continue;
        }
        let mut r = probe + 1;
        while r < b.len() && tok(r) {
            r += 1;
        }
        let mut e = r;
        while e < b.len() && b[e] == b'=' && e - r < 2 {
            e += 1;
        }
        return Some(Stop { s, r, e });
    }
    None
}

/// Every unnamed high-entropy credential in the string.
pub(crate) fn generic_secret(inp: &Input, out: &mut Vec<Hit>) {
    let b = inp.b;
    for Stop { s, r, e } in inp.long_runs().iter(b) {
        if (MIN_LEN..=MAX_LEN).contains(&(r - s))
            && !glued(b, s, e)
            && random_enough(&b[s..r])
            && !digest_label(b, s)
            && !decodes_to_text(&b[s..r])
            && !has_word(&b[s..r])
        {
            out.push(Hit::new(Rule::GenericSecret, s, e));
        }
    }
}

/// Part of a dotted name, a domain or an escape rather than a value.
fn glued(b: &[u8], s: usize, e: usize) -> bool {
    let p = before(b, s);
    let n = at(b, e);
    matches!(p, b'.' | b'@' | b'\\' | b'$' | b'%')
        || (matches!(n, b'.' | b'@') && at(b, e + 1).is_ascii_alphanumeric())
}

fn digest_label(b: &[u8], s: usize) -> bool {
    let run = &b[s..];
    // SRI and npm integrity values: `sha512-…`.
    if run.len() > 4 && run[..3].eq_ignore_ascii_case(b"sha") {
        let d = run[3..].iter().take_while(|c| c.is_ascii_digit()).count();
        if d > 0 && at(run, 3 + d) == b'-' {
            return true;
        }
    }
    WordsBefore::new(b, s).is_any(0, DIGEST_LABELS)
}

/// The cheap content checks on a candidate run: character classes, slashes
/// and separators, entropy (see the module doc).
fn random_enough(run: &[u8]) -> bool {
    // Most long runs of telemetry are lower-case (hex digests, UUIDs,
    // paths): rejected before counting.
    if !run.iter().any(u8::is_ascii_uppercase) {
        return false;
    }
    // Every byte of a run is ASCII (see `TOKEN`).
    let mut counts = [0u8; 128];
    for &c in run {
        let k = &mut counts[(c & 0x7f) as usize];
        *k = k.saturating_add(1);
    }
    let sum = |r: core::ops::RangeInclusive<u8>| r.map(|c| counts[c as usize] as usize).sum();
    let (upper, lower, digit): (usize, usize, usize) =
        (sum(b'A'..=b'Z'), sum(b'a'..=b'z'), sum(b'0'..=b'9'));
    let slash = counts[b'/' as usize] as usize;
    let seps = counts[b'-' as usize] as usize + counts[b'_' as usize] as usize;
    // Mixed case, and a digit or capitals in a random share (camelCase
    // identifiers without digits have one capital in five letters or
    // fewer; random letters one in two).
    if upper == 0 || lower == 0 || (digit == 0 && upper * 4 < upper + lower) {
        return false;
    }
    if slash > 5 || run.starts_with(b"//") || seps * 5 > run.len() {
        return false;
    }
    let n = run.len() as f32;
    let term = |k: u8| {
        let p = k as f32 / n;
        -p * p.log2()
    };
    // Most symbols of a run occur a few times: those terms are computed
    // once. The sum is taken over the symbols in order, as a plain
    // `counts.iter().filter(..).map(term).sum()` would (same bits).
    let mut few = [f32::NAN; 16];
    let mut entropy = -0.0f32;
    for chunk in counts.chunks_exact(8) {
        if chunk.iter().all(|&k| k == 0) {
            continue;
        }
        for &k in chunk.iter().filter(|&&k| k > 0) {
            entropy += match few.get_mut(k as usize) {
                Some(t) => {
                    if t.is_nan() {
                        *t = term(k);
                    }
                    *t
                }
                None => term(k),
            };
        }
    }
    entropy >= threshold(run.len())
}

/// Expected entropy of `len` random symbols over 64 (the Miller-Madow
/// correction, `log2(64) - 63 / (2 len ln 2)`), less a 0.7-bit margin.
fn threshold(len: usize) -> f32 {
    6.0 - 63.0 / (2.0 * len as f32 * core::f32::consts::LN_2) - 0.7
}

/// For each pair of lowercase letters (`26 * a + b`), the index in [`WORDS`]
/// of the first word starting with it; entry 676 is `WORDS.len()`.
static PAIR_START: [u16; 677] = {
    let mut t = [0u16; 677];
    let mut p = 0;
    while p <= 676 {
        let mut n = 0;
        while n < WORDS.len() && pair(WORDS[n]) < p {
            n += 1;
        }
        t[p] = n as u16;
        p += 1;
    }
    t
};

const fn pair(w: &[u8]) -> usize {
    (w[0] - b'a') as usize * 26 + (w[1] - b'a') as usize
}

fn has_word(run: &[u8]) -> bool {
    for i in 0..run.len().saturating_sub(4) {
        let (a, b) = (run[i] | 0x20, run[i + 1] | 0x20);
        if !a.is_ascii_lowercase() || !b.is_ascii_lowercase() {
            continue;
        }
        let p = (a - b'a') as usize * 26 + (b - b'a') as usize;
        let rest = &run[i..];
        let words = &WORDS[PAIR_START[p] as usize..PAIR_START[p + 1] as usize];
        // Words are lower-case letters: `c | 0x20` matches a letter of
        // either case and nothing else.
        if words.iter().any(|w| {
            rest.len() >= w.len()
                && rest[2..w.len()]
                    .iter()
                    .zip(&w[2..])
                    .all(|(c, l)| c | 0x20 == *l)
        }) {
            return true;
        }
    }
    false
}

/// Whether `run`, read as base64 (standard or URL alphabet), decodes to
/// mostly printable ASCII: encoded text, not a random key.
/// Base64 value of a run byte (`+`/`-` 62, `/`/`_` and the rest 63).
static B64: [u8; 256] = {
    let mut t = [63u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            _ => 63,
        };
        c += 1;
    }
    t
};

/// Whether a decoded byte is printable text (or a tab or line break).
fn printable(byte: u8) -> bool {
    (0x20..0x7f).contains(&byte) || matches!(byte, b'\n' | b'\r' | b'\t')
}

fn decodes_to_text(run: &[u8]) -> bool {
    let v = |c: u8| B64[c as usize] as u32;
    let (mut total, mut printable_bytes) = (0usize, 0usize);
    let mut count = |byte: u32| {
        total += 1;
        printable_bytes += printable(byte as u8) as usize;
    };
    // Four characters are three bytes; a tail of two or three characters
    // gives one or two more (the bits of a lone last character are
    // dropped).
    let mut groups = run.chunks_exact(4);
    for g in &mut groups {
        let w = v(g[0]) << 18 | v(g[1]) << 12 | v(g[2]) << 6 | v(g[3]);
        count(w >> 16);
        count((w >> 8) & 0xff);
        count(w & 0xff);
    }
    match *groups.remainder() {
        [a, b] => count(v(a) << 2 | v(b) >> 4),
        [a, b, c] => {
            let w = v(a) << 12 | v(b) << 6 | v(c);
            count(w >> 10);
            count((w >> 2) & 0xff);
        }
        _ => {}
    }
    total > 0 && printable_bytes * 10 >= total * 9
}

#[cfg(test)]
mod tests {
    use crate::detect::test_util::check_rule;
    use crate::rules::Rule;

    fn g(i: &str, o: &str) {
        check_rule(Rule::GenericSecret, i, o);
    }

    #[test]
    fn text_check_decodes_like_a_bit_stream() {
        // The straightforward decoder: six bits in, a byte out per eight.
        fn reference(run: &[u8]) -> bool {
            let (mut acc, mut bits, mut total, mut printable) = (0u32, 0, 0, 0);
            for &c in run {
                acc = (acc << 6) | super::B64[c as usize] as u32;
                bits += 6;
                if bits >= 8 {
                    bits -= 8;
                    let byte = (acc >> bits) as u8;
                    acc &= (1 << bits) - 1;
                    total += 1;
                    printable += super::printable(byte) as usize;
                }
            }
            total > 0 && printable * 10 >= total * 9
        }
        let alphabet = b"ABCXYZabcxyz0189+/-_dGhlbG8gd29ybGQ";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..80 {
            for _ in 0..200 {
                let run: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        alphabet[(seed % alphabet.len() as u64) as usize]
                    })
                    .collect();
                assert_eq!(super::decodes_to_text(&run), reference(&run), "{run:?}");
            }
        }
        // Base64 of text is text.
        assert!(super::decodes_to_text(
            b"aGVsbG8gd29ybGQsIGhvdyBhcmUgeW91IHRvZGF5Pw"
        ));
    }

    #[test]
    fn unnamed_secrets() {
        g(
            "tool publish --key q8Rt2vLw0ZbX9kPm4sNc7yHj1uEa5GdF3oTiWxYz",
            "tool publish --key [secret]",
        );
        g(
            "setting_0 = 'Zk3/Qm8vT1xLr+9NpA2sWc6HdYb4FgJe0uKiOt7R'",
            "setting_0 = '[secret]'",
        );
        g(
            "token: aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9fG==.",
            "token: [secret].",
        );
    }

    #[test]
    fn every_long_run_is_a_stop_from_its_first_byte() {
        // Against the plain definition: maximal runs of the alphabet, with
        // `=` (padding, or a short name's `key=`) between some of them.
        let pieces: &[&[u8]] = &[
            b"k",
            b"ey",
            b"=",
            b"==",
            b" ",
            b"-",
            b"_",
            b"/",
            b"Q8r",
            b"t2vLw0Zb",
            b"X9kPm4sN",
            b"c7yHj1uEa5GdF3oT",
            b"iWxYz",
            b"\n",
            b"'",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut b = Vec::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            for _ in 0..seed % 40 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                b.extend_from_slice(pieces[(seed % pieces.len() as u64) as usize]);
            }
            let runs = super::LongRuns::new(&b);
            let stops: Vec<(usize, usize)> = runs.iter(&b).map(|s| (s.s, s.r)).collect();
            let mut i = 0;
            while i < b.len() {
                if !super::TOKEN[b[i] as usize] {
                    i += 1;
                    continue;
                }
                let s = i;
                while i < b.len() && super::TOKEN[b[i] as usize] {
                    i += 1;
                }
                if i - s >= super::MIN_LEN {
                    assert!(
                        stops.contains(&(s, i)),
                        "run {s}..{i} of {:?}: stops {stops:?}",
                        String::from_utf8_lossy(&b)
                    );
                }
            }
        }
    }

    #[test]
    fn words_are_sorted_and_long_enough() {
        assert!(super::WORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(
            super::WORDS
                .iter()
                .all(|w| w.len() >= 5 && w.iter().all(u8::is_ascii_lowercase))
        );
        assert!(super::has_word(b"xxAbstractQ9"));
        assert!(!super::has_word(
            b"q8Rt2vLw0ZbX9kPm4sNc7yHj1uEa5GdF3oTiWxYz"
        ));
    }

    #[test]
    fn what_must_survive() {
        for s in [
            "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
            "id 550e8400-e29b-41d4-a716-446655440000",
            // base64 of text
            "data SGVsbG8gd29ybGQsIHRoaXMgaXMgYSB0ZXN0IG1lc3NhZ2U=",
            // file hashes in build output
            "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "integrity sha512-Ua3Nz8T5Kp0vRq2Lm9Xw4Yb7Cj1Hf6Gd3Se8Af0Iu5Oy2Et9Rw4Qq7Zx1Vc6Bn3Mk==",
            "h1:Xq9Lm2Pz8Rt4Vb6Nc1Ks7Jd3Hf5Gw0Ya2Eu4Io6Tq8Rz1=",
            // identifiers in stack traces
            "at org.springframework.beans.factory.support.AbstractBeanFactory2.getBean",
            "_ZN4core3ptr85drop_in_place17h1a2b3c4d5e6f7a8bE",
            "/usr/lib/x86_64-linux-gnu/libssl.so.3",
            "AbstractSingletonProxyFactoryBean2Impl",
            "k8s pod web-7d9f8b6c5-x2k4p",
        ] {
            g(s, s);
        }
    }
}
