//! The scanners: plain functions over bytes that push [`Hit`]s.
//!
//! [`find_all`] first classifies the string in one pass (which punctuation
//! occurs, how many digits) and only runs the scanners that could possibly
//! match; most strings in telemetry (words, identifiers, short numbers) are
//! rejected there without looking further. Scanners never allocate: they
//! push into the caller's vector, which is only grown when something matches.
//!
//! Every match starts and ends on an ASCII byte or the end of the string, so
//! spans always fall on UTF-8 character boundaries. Bytes outside ASCII count
//! as separators (so `電話+81 3 1234 5678` is found).

mod net;
mod numbers;
mod paths;
mod secrets;

use crate::keys::secret_assignments;
use crate::rules::Rule;

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
const AT: u16 = 1;
const COLON: u16 = 1 << 1;
const DOT: u16 = 1 << 2;
const DASH: u16 = 1 << 3;
const SLASH: u16 = 1 << 4;
const BACKSLASH: u16 = 1 << 5;
const UNDERSCORE: u16 = 1 << 6;
const UPPER: u16 = 1 << 7;
const EQ: u16 = 1 << 8;
const SPACE: u16 = 1 << 9;
const DIGIT: u16 = 1 << 10;

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
            b'0'..=b'9' => DIGIT,
            b'A'..=b'Z' => UPPER,
            _ => 0,
        };
        c += 1;
    }
    t
};

/// Which byte classes occur in a string and how many digits it has.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Features {
    len: usize,
    digits: usize,
    flags: u16,
}

impl Features {
    pub(crate) fn of(b: &[u8]) -> Features {
        let mut flags = 0;
        let mut digits = 0;
        for &c in b {
            let f = CLASS[c as usize];
            flags |= f;
            digits += (f == DIGIT) as usize;
        }
        Features {
            len: b.len(),
            digits,
            flags,
        }
    }

    fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }

    /// The detectors (bit per [`Rule`]) that could match a string with
    /// these features.
    pub(crate) fn candidates(&self) -> u16 {
        let mut m = 0u16;
        let len = self.len;
        if len < 3 {
            return 0;
        }
        if self.has(AT) && self.has(DOT) && len >= 6 {
            m |= Rule::Email.bit();
        }
        if (self.has(DOT) && self.digits >= 4) || (self.has(COLON) && len >= 3) {
            m |= Rule::Ip.bit();
        }
        if self.digits >= 13 {
            m |= Rule::CreditCard.bit();
        }
        if self.digits >= 9 && self.has(DASH) {
            m |= Rule::Ssn.bit();
        }
        if self.digits >= 8 {
            m |= Rule::Phone.bit();
        }
        if self.digits >= 2 && self.has(UPPER) && len >= 15 {
            m |= Rule::Iban.bit();
        }
        if self.has(DOT) && len >= 16 {
            m |= Rule::Jwt.bit();
        }
        if len >= 20 {
            m |= Rule::AwsKey.bit() | Rule::Token.bit();
        }
        if self.has(SPACE) && len >= 10 {
            m |= Rule::Bearer.bit();
        }
        if self.has(AT) && self.has(COLON) && self.has(SLASH) {
            m |= Rule::UrlPassword.bit();
        }
        if self.has(DASH) && len >= 30 {
            m |= Rule::PrivateKey.bit();
        }
        if self.has(SLASH) || self.has(BACKSLASH) {
            m |= Rule::HomeDir.bit();
        }
        if (self.has(COLON) || self.has(DASH) || self.has(DOT)) && len >= 14 {
            m |= Rule::Mac.bit();
        }
        if self.has(EQ) || self.has(COLON) || (self.has(DASH) && self.has(SPACE)) {
            m |= Rule::SecretKey.bit();
        }
        m
    }
}

/// Whether any enabled detector could match `b` (the cheap prefilter alone).
pub(crate) fn could_match(b: &[u8], enabled: u16) -> bool {
    Features::of(b).candidates() & enabled != 0
}

/// Run every enabled scanner that could match; raw (possibly overlapping)
/// hits are appended to `out`.
pub(crate) fn find_all(b: &[u8], enabled: u16, out: &mut Vec<Hit>) {
    let run = Features::of(b).candidates() & enabled;
    if run == 0 {
        return;
    }
    let on = |r: Rule| run & r.bit() != 0;
    if on(Rule::PrivateKey) {
        secrets::private_key(b, out);
    }
    if on(Rule::UrlPassword) {
        net::url_password(b, out);
    }
    if on(Rule::Bearer) {
        secrets::bearer(b, out);
    }
    if on(Rule::Jwt) {
        secrets::jwt(b, out);
    }
    if on(Rule::AwsKey) {
        secrets::aws_key(b, out);
    }
    if on(Rule::Token) {
        secrets::token(b, out);
    }
    if on(Rule::SecretKey) {
        secret_assignments(b, out);
    }
    if on(Rule::Email) {
        net::email(b, out);
    }
    if on(Rule::Iban) {
        numbers::iban(b, out);
    }
    if on(Rule::CreditCard) {
        numbers::credit_card(b, out);
    }
    if on(Rule::Ssn) {
        numbers::ssn(b, out);
    }
    if on(Rule::Mac) {
        net::mac(b, out);
    }
    if on(Rule::Ip) {
        net::ipv4(b, out);
        net::ipv6(b, out);
    }
    if on(Rule::Phone) {
        numbers::phone(b, out);
    }
    if on(Rule::HomeDir) {
        paths::home_dir(b, out);
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

/// Position of `needle` in `hay` at or after `from`.
pub(crate) fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = from;
    while i + needle.len() <= hay.len() {
        let p = hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&c| c == first)?;
        let at = i + p;
        if &hay[at..at + needle.len()] == needle {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// Position of `c` in `hay` at or after `from`.
#[inline]
pub(crate) fn find_byte(hay: &[u8], c: u8, from: usize) -> Option<usize> {
    hay.get(from..)?
        .iter()
        .position(|&x| x == c)
        .map(|p| p + from)
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
    fn many_in_one_string() {
        check(
            "user=ada@example.com ip=192.168.1.20 card=4111 1111 1111 1111 ssn=123-45-6789 mac=00:1A:2B:3C:4D:5E",
            "user=[email] ip=[ip] card=[card] ssn=[ssn] mac=[mac]",
        );
    }
}
