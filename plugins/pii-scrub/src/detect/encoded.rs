//! Encoded text: percent-encoding (`%40`, with `+` for a space) and JSON
//! string escapes (`\u0040`, `\/`, `\"`, `\n`). A string holding such an
//! escape is scanned a second time as decoded; each match found there is
//! mapped back onto the encoded span it came from, so the mask replaces
//! `ada%40example.com` whole.
//!
//! Decoding uses a stack buffer for strings up to 2 KiB (no allocation);
//! longer strings with escapes decode into a heap buffer.

use super::{Hit, KeyContext, find_all, find_byte2, is_hex};

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

/// Whether `b` holds an escape that decoding would change: `%XX`, `\uXXXX`
/// or `\/`. (`\\` and `\"` alone are read fine as they are.)
pub(crate) fn has_escapes(b: &[u8]) -> bool {
    let mut from = 0;
    while let Some(i) = find_byte2(b, b'%', b'\\', from) {
        if percent_at(b, i) {
            return true;
        }
        if b[i] == b'\\' {
            match at(b, i + 1) {
                b'u' if hex4(b, i + 2).is_some() => return true,
                b'/' => return true,
                b'\\' => {
                    from = i + 2;
                    continue;
                }
                _ => {}
            }
        }
        from = i + 1;
    }
    false
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

/// Decode `b` into `out`; the number of bytes written (never more than
/// `b.len()`).
fn decode(b: &[u8], plus: bool, out: &mut [u8]) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        let (d, next) = step(b, i, plus);
        out[n] = d;
        n += 1;
        i = next;
    }
    n
}

/// The encoded offset of decoded offset `k`.
fn raw_offset(b: &[u8], plus: bool, k: usize) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < b.len() && n < k {
        i = step(b, i, plus).1;
        n += 1;
    }
    i
}

/// Scan the decoded form of `b` and append its matches, mapped onto `b`.
pub(crate) fn find_decoded(b: &[u8], enabled: u32, key: KeyContext, hits: &mut Vec<Hit>) {
    // `+` means a space only in form/query encoding, which comes with `%XX`.
    let plus = has_percent(b);
    let mut stack = [0u8; STACK];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if b.len() <= STACK {
        &mut stack[..b.len()]
    } else {
        heap.resize(b.len(), 0);
        &mut heap
    };
    let n = decode(b, plus, buf);
    let first = hits.len();
    find_all(&buf[..n], enabled, key, hits);
    for h in &mut hits[first..] {
        h.start = raw_offset(b, plus, h.start);
        h.end = raw_offset(b, plus, h.end);
    }
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
}
