//! Encoded text: percent-encoding (`%40`, with `+` for a space) and JSON
//! string escapes (`\u0040`, `\/`, `\"`, `\n`). A string holding such an
//! escape is scanned a second time as decoded; each match found there is
//! mapped back onto the encoded span it came from, so the mask replaces
//! `ada%40example.com` whole.
//!
//! Only the whitespace-delimited words that hold an escape are decoded and
//! scanned again, each in a stack buffer (no allocation); a word longer
//! than 2 KiB is not decoded.

use super::{FieldName, Hit, find_all, find_byte2, is_hex};
use crate::rules::TABLE;

const STACK: usize = 2048;

fn hex(c: u8) -> u32 {
    match c {
        b'0'..=b'9' => (c - b'0') as u32,
        b'a'..=b'f' => (c - b'a' + 10) as u32,
        _ => (c - b'A' + 10) as u32,
    }
}

fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let q = b.get(i..i + 4)?;
    q.iter()
        .all(|c| is_hex(*c))
        .then(|| q.iter().fold(0, |a, c| a * 16 + hex(*c)))
}

/// `%XX` at `i`.
fn percent_at(b: &[u8], i: usize) -> bool {
    b[i] == b'%' && is_hex(at(b, i + 1)) && is_hex(at(b, i + 2))
}

fn has_percent(b: &[u8]) -> bool {
    let mut from = 0;
    while let Some(i) = find_byte2(b, b'%', b'%', from) {
        if percent_at(b, i) {
            return true;
        }
        from = i + 1;
    }
    false
}

/// Decode one unit at `i`: the byte it stands for and where the next starts.
/// A non-ASCII `\u` escape decodes to 0x80 (the scanners treat it as a
/// separator, as they do every non-ASCII byte).
#[inline(always)]
fn step(b: &[u8], i: usize, plus: bool) -> (u8, usize) {
    let c = b[i];
    if percent_at(b, i) {
        return ((hex(b[i + 1]) * 16 + hex(b[i + 2])) as u8, i + 3);
    }
    if c == b'+' && plus {
        return (b' ', i + 1);
    }
    if c == b'\\' {
        let (d, n) = match at(b, i + 1) {
            b'u' => match hex4(b, i + 2) {
                Some(v) if v < 0x80 => (v as u8, 6),
                Some(_) => (0x80, 6),
                None => (c, 1),
            },
            b'/' => (b'/', 2),
            b'"' => (b'"', 2),
            b'\\' => (b'\\', 2),
            b'n' => (b'\n', 2),
            b't' => (b'\t', 2),
            b'r' => (b'\r', 2),
            _ => (c, 1),
        };
        return (d, i + n);
    }
    (c, i + 1)
}

/// `m` decoded when it holds an escape (for keyed pseudonyms: one value,
/// one pseudonym, however it was written). `+` is a space only next to a
/// percent escape, as in the scan.
pub(crate) fn decoded(m: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if next_escape(m, 0).is_none() {
        return m.into();
    }
    let plus = has_percent(m);
    let mut out = Vec::with_capacity(m.len());
    let mut i = 0;
    while i < m.len() {
        let (d, next) = step(m, i, plus);
        out.push(d);
        i = next;
    }
    out.into()
}

/// A set of bytes.
#[derive(Default)]
struct Bytes([u64; 4]);

impl Bytes {
    fn insert(&mut self, c: u8) {
        self.0[(c >> 6) as usize] |= 1 << (c & 63);
    }

    fn has(&self, c: u8) -> bool {
        self.0[(c >> 6) as usize] & (1 << (c & 63)) != 0
    }

    fn any_alphanumeric(&self) -> bool {
        const DIGITS: u64 = 0x03ff << 48; // b'0'..=b'9' in the first word
        const LETTERS: u64 = (0x03ff_ffff << 1) | (0x03ff_ffff << 33); // A-Z, a-z in the second
        self.0[0] & DIGITS != 0 || self.0[1] & LETTERS != 0
    }
}

/// The detectors among `enabled` whose matches can hold one of `escaped`
/// (the bytes the word's escapes stand for; see `RuleDef::holds`).
fn rules_holding(escaped: &Bytes, enabled: u32) -> u32 {
    if escaped.any_alphanumeric() {
        return enabled;
    }
    TABLE
        .iter()
        .filter(|d| enabled & d.rule.bit() != 0)
        .filter(|d| d.holds.is_none_or(|h| h.iter().any(|&c| escaped.has(c))))
        .fold(0, |m, d| m | d.rule.bit())
}

/// Decode `b` into `out`, recording in `map` the encoded offset of every
/// decoded byte (and of the end) and in `escaped` the bytes that escapes
/// stood for; the number of bytes written (never more than `b.len()`).
fn decode(b: &[u8], plus: bool, out: &mut [u8], map: &mut [u16], escaped: &mut Bytes) -> usize {
    let (mut i, mut n) = (0, 0);
    let out = &mut out[..b.len()];
    let map = &mut map[..b.len() + 1];
    while i < b.len() {
        let c = b[i];
        if !matches!(c, b'%' | b'\\' | b'+') {
            // Most bytes stand for themselves.
            out[n] = c;
            map[n] = i as u16;
            n += 1;
            i += 1;
            continue;
        }
        let (d, next) = step(b, i, plus);
        if next - i > 1 {
            escaped.insert(d);
        }
        out[n] = d;
        map[n] = i as u16;
        n += 1;
        i = next;
    }
    map[n] = b.len() as u16;
    n
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// Scan the decoded form of every whitespace-delimited word of `b` that
/// holds an escape (a URL, a query string, a form body, an escaped JSON
/// fragment) and append the matches that cover an escape, mapped onto `b`.
/// Words longer than 2 KiB are not decoded.
pub(crate) fn find_decoded(b: &[u8], enabled: u32, key: &FieldName<'_>, hits: &mut Vec<Hit>) {
    let mut from = 0;
    while let Some(e) = next_escape(b, from) {
        let mut ws = e;
        while ws > 0 && !is_space(b[ws - 1]) {
            ws -= 1;
        }
        let mut we = e;
        while we < b.len() && !is_space(b[we]) {
            we += 1;
        }
        from = we;
        // Most words are short: a small buffer is cheaper to set up.
        match we - ws {
            n if n <= 256 => scan_word::<256, 257>(b, ws, we, enabled, key, hits),
            n if n <= STACK => scan_word::<STACK, { STACK + 1 }>(b, ws, we, enabled, key, hits),
            _ => {}
        }
    }
}

/// The next `%XX`, `\uXXXX` or `\/` at or after `from`.
fn next_escape(b: &[u8], mut from: usize) -> Option<usize> {
    while let Some(i) = find_byte2(b, b'%', b'\\', from) {
        if percent_at(b, i)
            || (b[i] == b'\\'
                && (at(b, i + 1) == b'/' || (at(b, i + 1) == b'u' && hex4(b, i + 2).is_some())))
        {
            return Some(i);
        }
        from = i + if b[i] == b'\\' { 2 } else { 1 };
    }
    None
}

/// Decode `b[ws..we]` (at most `N` bytes; `M` is `N + 1`) and scan it.
fn scan_word<const N: usize, const M: usize>(
    b: &[u8],
    ws: usize,
    we: usize,
    enabled: u32,
    key: &FieldName<'_>,
    hits: &mut Vec<Hit>,
) {
    let word = &b[ws..we];
    // `+` means a space only in form/query encoding, which comes with `%XX`.
    let plus = has_percent(word);
    let mut buf = [0u8; N];
    let mut map = [0u16; M];
    let mut escaped = Bytes::default();
    let n = decode(word, plus, &mut buf, &mut map, &mut escaped);
    // A match that holds no byte an escape stood for covers no escape.
    let rules = rules_holding(&escaped, enabled);
    let first = hits.len();
    let _ = find_all(&buf[..n], rules, key, hits);
    let mut kept = first;
    for k in first..hits.len() {
        let h = hits[k];
        let (s, e) = (map[h.start] as usize, map[h.end] as usize);
        // A match that covers no escape was found by the plain scan.
        if e - s != h.end - h.start {
            hits[kept] = Hit::new(h.rule, ws + s, ws + e);
            kept += 1;
        }
    }
    hits.truncate(kept);
}

#[cfg(test)]
mod tests {
    use crate::detect::test_util::check;

    #[test]
    fn decoded_matches_replace_the_encoded_span() {
        check(
            "GET /cb?redirect_uri=https%3A%2F%2Fapp.example.com%2F%3Fu%3Dada.lovelace%2540x&email=ada.lovelace%40example.org&x=1",
            "GET /cb?redirect_uri=https%3A%2F%2Fapp.example.com%2F%3Fu%3Dada.lovelace%2540x&email=[email]&x=1",
        );
        check("to=ada%2Bops%40example.com", "to=[email]");
        check("q=call+%2B44+20+7946+0958", "q=call+[phone]");
        check(
            r#"{\"user\": \"ada\u0040example.com\"}"#,
            r#"{\"user\": \"[email]\"}"#,
        );
        check(r"see https:\/\/10.1.2.3\/x", r"see https:\/\/[ip]\/x");
        // Nothing encoded to find: unchanged.
        check(
            "path=%2Fvar%2Flog%2Fsyslog&q=a+b",
            "path=%2Fvar%2Flog%2Fsyslog&q=a+b",
        );
        check("100%25 done", "100%25 done");
    }

    #[test]
    fn decoded_values() {
        use super::decoded;
        assert_eq!(&*decoded(b"ada%40example.com"), b"ada@example.com");
        assert_eq!(&*decoded(b"ada\\u0040example.com"), b"ada@example.com");
        assert_eq!(&*decoded(b"a+b%2Bc"), b"a b+c");
        assert_eq!(&*decoded(b"a+b"), b"a+b");
    }
}
