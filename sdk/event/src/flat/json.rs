//! JSON text straight from an event's leaves, as `serde_json` writes the
//! value they encode: the gateway stores an edited event without building it
//! as a JSON value first.

use super::{EventView, LEAF_WORDS, kind};
use serde_json::Value;

/// One step of a path as the layout writes it: the bytes of a key (still
/// escaped) or of an index's digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    start: u32,
    end: u32,
    index: bool,
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
            });
            i = end + 1;
        } else {
            let start = i;
            while i < path.len() && !matches!(path[i], b'.' | b'[') {
                i += if path[i] == b'\\' { 2 } else { 1 };
            }
            let end = i.min(path.len());
            out.push(Step {
                start: start as u32,
                end: end as u32,
                index: false,
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

/// Append the event's JSON text to `out`: what `serde_json::to_writer`
/// writes for the value the leaves encode (keys in order, numbers as the
/// layout holds them, strings escaped as `serde_json` escapes them).
pub fn write_event(event: &EventView<'_>, out: &mut Vec<u8>) {
    let event = event.checked();
    let data = event.data;
    let text = |off: u32, len: u32| {
        data.get(off as usize..off as usize + len as usize)
            .unwrap_or(&[])
    };
    let str_at = |off: u32, len: u32| event.text(off, len).unwrap_or("");
    // Closing bytes of the containers open, and whether each has a member yet.
    let mut open: Vec<(u8, bool)> = Vec::with_capacity(8);
    let mut prev: Vec<Step> = Vec::with_capacity(8);
    let mut cur: Vec<Step> = Vec::with_capacity(8);
    let mut prev_path: &[u8] = &[];
    let mut key = String::new();
    for w in event.leaves.chunks_exact(LEAF_WORDS) {
        let path = text(w[0], w[1]);
        steps(path, &mut cur);
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
                let raw = str_at(w[0] + step.start, step.end - step.start);
                if raw.contains('\\') {
                    key.clear();
                    let mut chars = raw.chars();
                    while let Some(c) = chars.next() {
                        key.push(if c == '\\' {
                            chars.next().unwrap_or('\\')
                        } else {
                            c
                        });
                    }
                    write_str(out, &key);
                } else {
                    write_str(out, raw);
                }
                out.push(b':');
            }
            match cur.get(k + 1) {
                Some(next) => {
                    open.push((if next.index { b']' } else { b'}' }, false));
                    out.push(if next.index { b'[' } else { b'{' });
                }
                None if w[2] == kind::STRING => write_str(out, str_at(w[3], w[4])),
                None => write_value(out, w[2], text(w[3], w[4])),
            }
        }
        std::mem::swap(&mut prev, &mut cur);
        prev_path = path;
    }
    while let Some((close, _)) = open.pop() {
        out.push(close);
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
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
