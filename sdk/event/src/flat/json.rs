//! JSON text straight from an event's leaves, as `serde_json` writes the
//! value they encode: the gateway stores an edited event without building it
//! as a JSON value first.

use super::{EventView, LEAF_WORDS, kind};
use crate::words::{bytes_equal, control_bytes, word};
use serde_json::Value;

/// One step of a path as the layout writes it: the bytes of a key (still
/// escaped) or of an index's digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    start: u32,
    end: u32,
    index: bool,
    /// Whether the key holds a backslash (an escaped `.`, `[`, `]` or `\`).
    escaped: bool,
}

/// Split a path into its steps.
fn steps(path: &[u8], out: &mut Vec<Step>) {
    out.clear();
    let mut i = 0;
    if path.is_empty() {
        return;
    }
    loop {
        if path.get(i) == Some(&b'[') {
            let start = i + 1;
            let end = start
                + path[start..]
                    .iter()
                    .position(|&b| b == b']')
                    .unwrap_or(path.len() - start);
            out.push(Step {
                start: start as u32,
                end: end as u32,
                index: true,
                escaped: false,
            });
            i = end + 1;
        } else {
            let start = i;
            let mut escaped = false;
            loop {
                i = next_special(path, i);
                if path.get(i) == Some(&b'\\') {
                    escaped = true;
                    i += 2;
                } else {
                    break;
                }
            }
            let end = i.min(path.len());
            out.push(Step {
                start: start as u32,
                end: end as u32,
                index: false,
                escaped,
            });
            i = end;
        }
        match path.get(i) {
            None => break,
            Some(b'.') => i += 1,
            Some(_) => {}
        }
    }
}

/// The first `.`, `[` or `\\` of `path` at or after `from`, or its length:
/// eight bytes at a time, as keys run to a dozen bytes and more (the
/// last eight bytes of a path are read as one word even when they overlap
/// what was read before).
#[inline]
fn next_special(path: &[u8], from: usize) -> usize {
    // Exact, so the lowest one is the first.
    let specials = |w: u64| bytes_equal(w, b'.') | bytes_equal(w, b'[') | bytes_equal(w, b'\\');
    let mut i = from;
    while i + 8 <= path.len() {
        let hit = specials(word(path, i));
        if hit != 0 {
            return i + (hit.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    if i < path.len() && path.len() >= 8 {
        let base = path.len() - 8;
        let hit = specials(word(path, base)) & (!0u64 << ((i - base) * 8));
        return if hit == 0 {
            path.len()
        } else {
            base + (hit.trailing_zeros() / 8) as usize
        };
    }
    while i < path.len() && !matches!(path[i], b'.' | b'[' | b'\\') {
        i += 1;
    }
    i
}

/// Append the event's JSON text to `out`: what `serde_json::to_writer`
/// writes for the value the leaves encode (keys in order, numbers as the
/// layout holds them, strings escaped as `serde_json` escapes them).
pub fn write_event(event: &EventView<'_>, out: &mut Vec<u8>) {
    LineWriter::default().write(event, out);
}

/// Writes events as [`write_event`] does, keeping its working lists from
/// one event to the next: a batch's lines are written without an
/// allocation per event.
#[derive(Debug, Default)]
pub struct LineWriter {
    /// Closing bytes of the containers open, and whether each has a member yet.
    open: Vec<(u8, bool)>,
    prev: Vec<Step>,
    cur: Vec<Step>,
    key: String,
}

impl LineWriter {
    /// Append `event` to `out` as one line of JSON (no newline).
    pub fn write(&mut self, event: &EventView<'_>, out: &mut Vec<u8>) {
        let LineWriter {
            open,
            prev,
            cur,
            key,
        } = self;
        open.clear();
        prev.clear();
        write_event_with(event, out, open, prev, cur, key);
    }
}

fn write_event_with(
    event: &EventView<'_>,
    out: &mut Vec<u8>,
    open: &mut Vec<(u8, bool)>,
    prev: &mut Vec<Step>,
    cur: &mut Vec<Step>,
    key: &mut String,
) {
    let event = event.checked();
    let data = event.data;
    let text = |off: u32, len: u32| {
        data.get(off as usize..off as usize + len as usize)
            .unwrap_or(&[])
    };
    let str_at = |off: u32, len: u32| event.text(off, len).unwrap_or("");
    // A string of the event's text, written with the bytes around it at
    // hand (see `write_str_in`); text that is not there is written empty.
    let string_at = |out: &mut Vec<u8>, off: u32, len: u32| match event.text(off, len) {
        Some(text) => write_str_in(out, data, off as usize, text),
        None => write_str(out, ""),
    };
    let mut prev_path: &[u8] = &[];
    for w in event.leaves.chunks_exact(LEAF_WORDS) {
        let path = text(w[0], w[1]);
        steps(path, cur);
        if cur.is_empty() {
            // The event itself is the leaf: `{}`.
            write_value(out, w[2], text(w[3], w[4]));
            return;
        }
        if open.is_empty() {
            open.push((if cur[0].index { b']' } else { b'}' }, false));
            out.push(if cur[0].index { b'[' } else { b'{' });
        }
        // The containers this leaf shares with the previous one.
        let shared = prev.len().min(cur.len()).saturating_sub(1);
        let mut common = 0;
        while common < shared
            && prev[common] == cur[common]
            && prev_path[prev[common].start as usize..prev[common].end as usize]
                == path[cur[common].start as usize..cur[common].end as usize]
        {
            common += 1;
        }
        while open.len() > common + 1 {
            let (close, _) = open.pop().expect("open");
            out.push(close);
        }
        for (k, step) in cur.iter().enumerate().skip(common) {
            let (close, any) = open.last_mut().expect("open");
            if *any {
                out.push(b',');
            }
            *any = true;
            if *close == b'}' {
                let (off, len) = (w[0] + step.start, step.end - step.start);
                if step.escaped {
                    key.clear();
                    let mut chars = str_at(off, len).chars();
                    while let Some(c) = chars.next() {
                        key.push(if c == '\\' {
                            chars.next().unwrap_or('\\')
                        } else {
                            c
                        });
                    }
                    write_str(out, key);
                } else {
                    string_at(out, off, len);
                }
                out.push(b':');
            }
            match cur.get(k + 1) {
                Some(next) => {
                    open.push((if next.index { b']' } else { b'}' }, false));
                    out.push(if next.index { b'[' } else { b'{' });
                }
                None if w[2] == kind::STRING => string_at(out, w[3], w[4]),
                None => write_value(out, w[2], text(w[3], w[4])),
            }
        }
        std::mem::swap(prev, cur);
        prev_path = path;
    }
    while let Some((close, _)) = open.pop() {
        out.push(close);
    }
}

/// Write `text`, which is `data[start..start + text.len()]`, as
/// [`write_str`] does. A string shorter than a word (most keys, many
/// values) is checked as one word of `data` around it, the other bytes
/// masked off, instead of byte by byte.
#[inline]
fn write_str_in(out: &mut Vec<u8>, data: &[u8], start: usize, text: &str) {
    let len = text.len();
    if len == 0 || len >= 8 || data.len() < 8 {
        return write_str(out, text);
    }
    // A word of `data` that holds the string; the masks are exact, so
    // bytes outside the string cannot mark bytes in it.
    let base = start.min(data.len() - 8);
    let ours = (!0u64 >> (64 - 8 * len)) << (8 * (start - base));
    if escapes(word(data, base)) & ours == 0 {
        out.reserve(len + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        write_str(out, text);
    }
}

/// Write `s` as a JSON string, escaped exactly as `serde_json` escapes it:
/// `"` and `\` with a backslash, the control bytes `\b \t \n \f \r` by
/// name and the others as `\u00xx`, everything else as it is. Text is
/// checked sixteen bytes at a time (the last eight of a string as one word,
/// overlapping what was checked) and copied in runs; only a piece that may
/// hold a byte to escape is looked at byte by byte (serde_json looks up
/// every byte in a table; string values are most of an event's bytes).
fn write_str(out: &mut Vec<u8>, s: &str) {
    let s = s.as_bytes();
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut copied = 0;
    let mut i = 0;
    while i + 16 <= s.len() {
        if escapes(word(s, i)) | escapes(word(s, i + 8)) != 0 {
            escape_run(out, s, i..i + 16, &mut copied);
        }
        i += 16;
    }
    if i + 8 <= s.len() {
        if escapes(word(s, i)) != 0 {
            escape_run(out, s, i..i + 8, &mut copied);
        }
        i += 8;
    }
    if i < s.len() {
        // Fewer than eight bytes are left: the string's last eight as one
        // word when it has them, else byte by byte (short keys and values).
        if s.len() < 8 || escapes(word(s, s.len() - 8)) != 0 {
            escape_run(out, s, i..s.len(), &mut copied);
        }
    }
    out.extend_from_slice(&s[copied..]);
    out.push(b'"');
}

/// Escape the bytes of `s[run]` that need it, first copying what is
/// pending since `copied`.
#[inline(never)]
fn escape_run(out: &mut Vec<u8>, s: &[u8], run: std::ops::Range<usize>, copied: &mut usize) {
    for j in run {
        if ESCAPE[s[j] as usize] {
            out.extend_from_slice(&s[*copied..j]);
            write_escape(out, s[j]);
            *copied = j + 1;
        }
    }
}

/// Whether a byte is escaped in a JSON string.
static ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = b < 0x20 || b == b'"' as usize || b == b'\\' as usize;
        b += 1;
    }
    t
};

/// The high bit of every byte of `word` that a JSON string escapes: `"`,
/// `\\` and the control bytes, exactly.
#[inline]
fn escapes(word: u64) -> u64 {
    bytes_equal(word, b'"') | bytes_equal(word, b'\\') | control_bytes(word)
}

fn write_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0C => out.extend_from_slice(b"\\f"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        _ => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[(b >> 4) as usize],
            HEX[(b & 0xF) as usize],
        ]),
    }
}

fn write_value(out: &mut Vec<u8>, k: u32, bytes: &[u8]) {
    match k {
        kind::NULL => out.extend_from_slice(b"null"),
        kind::FALSE => out.extend_from_slice(b"false"),
        kind::TRUE => out.extend_from_slice(b"true"),
        kind::STRING => write_str(out, std::str::from_utf8(bytes).unwrap_or("")),
        // Numbers as written; JSON text (`{}`, `[]`) as it is.
        _ => out.extend_from_slice(bytes),
    }
}

/// The event as a JSON value.
pub fn to_value(event: &EventView<'_>) -> Value {
    let mut out = Vec::with_capacity(512);
    write_event(event, &mut out);
    serde_json::from_slice(&out).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::{Step, steps, write_str, write_str_in};

    /// The steps as the byte-at-a-time reading finds them.
    fn steps_slowly(path: &[u8]) -> Vec<Step> {
        let mut out = Vec::new();
        let mut i = 0;
        if path.is_empty() {
            return out;
        }
        loop {
            if path.get(i) == Some(&b'[') {
                let start = i + 1;
                let end = start
                    + path[start..]
                        .iter()
                        .position(|&b| b == b']')
                        .unwrap_or(path.len() - start);
                out.push(Step {
                    start: start as u32,
                    end: end as u32,
                    index: true,
                    escaped: false,
                });
                i = end + 1;
            } else {
                let start = i;
                let mut escaped = false;
                while i < path.len() && !matches!(path[i], b'.' | b'[') {
                    escaped |= path[i] == b'\\';
                    i += if path[i] == b'\\' { 2 } else { 1 };
                }
                let end = i.min(path.len());
                out.push(Step {
                    start: start as u32,
                    end: end as u32,
                    index: false,
                    escaped,
                });
                i = end;
            }
            match path.get(i) {
                None => break,
                Some(b'.') => i += 1,
                Some(_) => {}
            }
        }
        out
    }

    #[test]
    fn paths_split_into_the_same_steps_word_by_word() {
        let pieces: [&[u8]; 9] = [
            b"a",
            b"context",
            b"installation_identifier",
            b".",
            b"[3]",
            b"\\.",
            b"\\\\",
            b"\\[",
            b"\xc3\xa9",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut out = Vec::new();
        for _ in 0..20_000 {
            let mut path = Vec::new();
            for _ in 0..(seed % 7) {
                path.extend_from_slice(
                    pieces[(crate::words::xorshift(&mut seed) % pieces.len() as u64) as usize],
                );
            }
            seed = seed.wrapping_add(1);
            steps(&path, &mut out);
            assert_eq!(
                out,
                steps_slowly(&path),
                "{:?}",
                String::from_utf8_lossy(&path)
            );
        }
    }

    fn check(s: &str) {
        let mut ours = Vec::new();
        write_str(&mut ours, s);
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            serde_json::to_string(s).unwrap(),
            "{s:?}"
        );
    }

    /// Every ASCII character and a few others, alone and at every place
    /// of strings long enough for the word-at-a-time path, next to each
    /// other and at word edges.
    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut chars: Vec<char> = (0u8..0x80).map(char::from).collect();
        chars.extend(['é', '€', '😀', '\u{7f}', '\u{80}', '\u{2028}']);
        check("");
        for &c in &chars {
            check(&c.to_string());
            for len in [7usize, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32, 33, 40] {
                for at in 0..len {
                    let mut s: String = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF"
                        .chars()
                        .take(len)
                        .collect();
                    s.insert(at, c);
                    check(&s);
                    s.insert(at, '"');
                    check(&s);
                }
            }
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..5_000 {
            let len = (seed % 56) as usize;
            let s: String = (0..len)
                .map(|_| chars[(crate::words::xorshift(&mut seed) % chars.len() as u64) as usize])
                .collect();
            check(&s);
        }
    }

    /// A short string is checked as a word of the buffer around it: what
    /// lies next to it (quotes, backslashes, control bytes) never changes
    /// how it is written, at any place in buffers of any length.
    #[test]
    fn short_strings_are_written_alike_whatever_surrounds_them() {
        let fill: [&[u8]; 4] = [
            b"\"\"\"\"\"\"\"\"\"",
            b"\\\\\\\\\\\\\\\\\\",
            b"\n\n\n\n\n\n\n\n\n",
            b"xxxxxxxxx",
        ];
        let texts = [
            "", "a", "ab\"", "\\", "tool", "os\n", "level", "1234567", "\u{1}x", "é€",
        ];
        for text in texts {
            for f in fill {
                for before in 0..9 {
                    for after in 0..9 {
                        let mut data = f[..before].to_vec();
                        data.extend_from_slice(text.as_bytes());
                        data.extend_from_slice(&f[..after]);
                        let mut ours = Vec::new();
                        write_str_in(&mut ours, &data, before, text);
                        assert_eq!(
                            String::from_utf8(ours).unwrap(),
                            serde_json::to_string(text).unwrap(),
                            "{text:?} after {before} and before {after} bytes of {:?}",
                            String::from_utf8_lossy(f)
                        );
                    }
                }
            }
        }
    }
}
