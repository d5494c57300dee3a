//! `pattern`: a regular expression, and for the patterns that ids are
//! written in (`^[0-9a-f]{8}-[0-9a-f]{4}-…$`: a fixed sequence of ASCII
//! classes from the start of the text to its end) a match by table instead
//! of the regex engine: one byte, one class, the length known beforehand.
//! Both give the same answer for every text (a test holds them to it).

use regex::Regex;
use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// A compiled `pattern`.
#[derive(Debug, Clone)]
pub struct Pattern {
    re: Regex,
    fixed: Option<Fixed>,
}

impl Pattern {
    /// Compile `text` (Rust `regex` syntax, searched anywhere in a string
    /// unless anchored, as before).
    pub fn new(text: &str) -> Result<Self, regex::Error> {
        let re = Regex::new(text)?;
        Ok(Pattern {
            fixed: Fixed::of(text),
            re,
        })
    }

    /// Whether `s` matches.
    #[inline]
    pub fn is_match(&self, s: &str) -> bool {
        match &self.fixed {
            Some(f) => f.matches(s),
            None => self.re.is_match(s),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.re.as_str()
    }

    /// Whether this pattern is matched by table.
    pub fn is_fixed(&self) -> bool {
        self.fixed.is_some()
    }
}

/// One set of ASCII bytes per byte of a matching text, as an index into
/// the distinct sets (a few: an id pattern has one or two), which are
/// tables of the 256 byte values back to back.
#[derive(Debug, Clone)]
struct Fixed {
    at: Vec<u8>,
    sets: Vec<bool>,
}

/// Longer fixed patterns are left to the regex engine.
const MAX_FIXED: usize = 256;

impl Fixed {
    /// The table of a pattern that is `^`, then literals, ASCII classes and
    /// exact repetitions of them (in groups or not), then `$` (the end of
    /// the text: `regex` without the `m` flag); `None` for any other.
    fn of(text: &str) -> Option<Fixed> {
        let hir = regex_syntax::Parser::new().parse(text).ok()?;
        let HirKind::Concat(parts) = hir.kind() else {
            return None;
        };
        let (first, rest) = parts.split_first()?;
        let (last, middle) = rest.split_last()?;
        if *first.kind() != HirKind::Look(Look::Start) || *last.kind() != HirKind::Look(Look::End) {
            return None;
        }
        let mut classes = Vec::new();
        for h in middle {
            push(h, &mut classes)?;
        }
        let mut distinct: Vec<u128> = Vec::new();
        let mut at = Vec::with_capacity(classes.len());
        for c in classes {
            let k = match distinct.iter().position(|&d| d == c) {
                Some(k) => k,
                None => {
                    distinct.push(c);
                    distinct.len() - 1
                }
            };
            at.push(u8::try_from(k).ok()?);
        }
        let sets = distinct
            .iter()
            .flat_map(|&c| (0..256).map(move |b| b < 128 && (c >> b) & 1 == 1))
            .collect();
        Some(Fixed { at, sets })
    }

    #[inline]
    fn matches(&self, s: &str) -> bool {
        let s = s.as_bytes();
        if s.len() != self.at.len() {
            return false;
        }
        // Every byte looked up, without a branch per byte.
        let mut ok = true;
        for (&b, &k) in s.iter().zip(&self.at) {
            ok &= self.sets[(k as usize) << 8 | b as usize];
        }
        ok
    }
}

/// Append the classes `h` matches, byte by byte; `None` when it is not a
/// fixed sequence of ASCII classes.
fn push(h: &Hir, out: &mut Vec<u128>) -> Option<()> {
    match h.kind() {
        HirKind::Literal(lit) => {
            for &b in lit.0.iter() {
                out.push(ascii(b as u32, b as u32)?);
            }
        }
        HirKind::Class(Class::Unicode(c)) => {
            let mut set = 0;
            for r in c.ranges() {
                set |= ascii(r.start() as u32, r.end() as u32)?;
            }
            out.push(set);
        }
        HirKind::Class(Class::Bytes(c)) => {
            let mut set = 0;
            for r in c.ranges() {
                set |= ascii(r.start() as u32, r.end() as u32)?;
            }
            out.push(set);
        }
        HirKind::Repetition(rep) if rep.max == Some(rep.min) => {
            let mut one = Vec::new();
            push(&rep.sub, &mut one)?;
            for _ in 0..rep.min {
                out.extend_from_slice(&one);
                if out.len() > MAX_FIXED {
                    return None;
                }
            }
        }
        HirKind::Capture(cap) => push(&cap.sub, out)?,
        HirKind::Concat(parts) => {
            for p in parts {
                push(p, out)?;
            }
        }
        _ => return None,
    }
    (out.len() <= MAX_FIXED).then_some(())
}

/// The set of `from..=to`, when all of it is ASCII.
fn ascii(from: u32, to: u32) -> Option<u128> {
    if to >= 128 || from > to {
        return None;
    }
    let width = to - from + 1;
    let ones = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    Some(ones << from)
}

#[cfg(test)]
mod tests {
    use super::{Fixed, Pattern};

    const UUID: &str =
        "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

    /// Patterns of fixed shape, and a text each matches.
    const FIXED: [(&str, &str); 9] = [
        (UUID, "3f2a9c1e-7b4d-4e8a-9c2f-1a2b3c4d5e6f"),
        ("^[a-z]{3}$", "abc"),
        ("^v[0-9]\\.[0-9]$", "v1.2"),
        ("^(?:[0-9]{2}:){2}[0-9]{2}$", "12:34:56"),
        ("^([A-Z][a-z]){2}x$", "AbCdx"),
        ("^(?i)abc$", "ABC"),
        ("^$", ""),
        ("^[\\x00-\\x7f]{2}$", "\u{0}\u{7f}"),
        ("^-[ -/]$", "- "),
    ];

    /// Which patterns go by table: anchored fixed sequences of ASCII
    /// classes only.
    #[test]
    fn fixed_shapes_are_recognised_and_nothing_else() {
        for (text, _) in FIXED {
            assert!(Fixed::of(text).is_some(), "{text}");
        }
        for text in [
            "[a-z]{3}",
            "^[a-z]{3}",
            "[a-z]{3}$",
            "^[a-z]+$",
            "^[a-z]{2,3}$",
            "^a|b$",
            "^.$",
            "^\\d{3}$",
            "^é$",
            "^(?i)k$",
            "^[^a]$",
            "(?m)^a$",
            "^\\w$",
            "^a\\b$",
            "^[a-z]{300}$",
        ] {
            assert!(Fixed::of(text).is_none(), "{text}");
        }
        assert!(Pattern::new(UUID).unwrap().is_fixed());
        assert!(!Pattern::new("^[a-z]+$").unwrap().is_fixed());
    }

    /// The table gives the regex engine's answer on every text tried:
    /// random texts over the characters the patterns use and others,
    /// including texts of exactly the pattern's length and near misses of
    /// real matches.
    #[test]
    fn the_table_answers_as_the_regex_engine() {
        let chars: Vec<char> = "0123456789abcdefABCDEFxyzXYZ-.:v \n\u{0}\u{7f}é€K\u{212a}"
            .chars()
            .collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut matched = 0;
        for (text, _) in FIXED {
            let p = Pattern::new(text).unwrap();
            assert!(p.is_fixed(), "{text}");
            let re = regex::Regex::new(text).unwrap();
            // Real matches (of every pattern), then each changed at one place.
            for (_, s) in FIXED {
                assert_eq!(p.is_match(s), re.is_match(s), "{text} on {s:?}");
                matched += re.is_match(s) as usize;
                let s: Vec<char> = s.chars().collect();
                for at in 0..s.len() {
                    for &c in &chars {
                        let mut t = s.clone();
                        t[at] = c;
                        let t: String = t.into_iter().collect();
                        assert_eq!(p.is_match(&t), re.is_match(&t), "{text} on {t:?}");
                    }
                }
            }
            for _ in 0..20_000 {
                let len = (next() % 40) as usize;
                let t: String = (0..len)
                    .map(|_| chars[(next() % chars.len() as u64) as usize])
                    .collect();
                assert_eq!(p.is_match(&t), re.is_match(&t), "{text} on {t:?}");
            }
        }
        assert!(matched >= 9, "{matched} samples matched their patterns");
    }
}
