//! Context: what the field's name and the words just before a match say
//! about it. A dotted quad after `version` is a version, after `ip=` an
//! address; nine digits after `SSN:` are an SSN, elsewhere an id.
//!
//! Everything here reads a few bytes around a candidate the scanners already
//! found, so context costs nothing on strings without candidates.

use super::is_word;

/// What the name of the field holding a string says about its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum KeyContext {
    /// Nothing in particular (or no field name: a bare string).
    #[default]
    None,
    /// `version`, `*_version`, `*Version`: dotted quads are versions.
    Version,
    /// `ip`, `*_ip`, `addr`, `host`, `x-forwarded-for`, …: addresses.
    Address,
    /// `ssn`, `social_security_number`, `tax_id`, …: national ids.
    NationalId,
    /// `mac`, `mac_address`, `hwaddr`, …: hardware addresses.
    Mac,
}

/// The name of the field holding a string, classified ([`KeyContext::of`])
/// the first time a scanner asks: most strings have no candidate that
/// reads it.
pub(crate) struct FieldName<'k> {
    name: Option<&'k [u8]>,
    ctx: std::cell::Cell<Option<KeyContext>>,
}

impl<'k> FieldName<'k> {
    pub(crate) fn new(name: Option<&'k [u8]>) -> FieldName<'k> {
        FieldName {
            name,
            ctx: std::cell::Cell::new(None),
        }
    }

    /// What the name says ([`KeyContext::None`] without one).
    #[inline]
    pub(crate) fn get(&self) -> KeyContext {
        if let Some(c) = self.ctx.get() {
            return c;
        }
        let c = self.name.map_or(KeyContext::None, KeyContext::of);
        self.ctx.set(Some(c));
        c
    }
}

impl KeyContext {
    /// Classify a field name (raw or path-escaped). The name is split into
    /// words at `_ - . space`, camelCase humps and path escapes.
    pub(crate) fn of(key: &[u8]) -> KeyContext {
        if key.len() > 64 {
            return KeyContext::None;
        }
        let mut words = [(0usize, 0usize); 8];
        let n = split_words(key, &mut words);
        if n == 0 {
            return KeyContext::None;
        }
        let w = |k: usize| &key[words[k].0..words[k].1];
        let last = w(n - 1);
        let eq = |a: &[u8], b: &[u8]| a.eq_ignore_ascii_case(b);
        if eq(last, b"version") || eq(last, b"ver") {
            return KeyContext::Version;
        }
        let any = |f: &dyn Fn(&[u8]) -> bool| (0..n).any(|k| f(w(k)));
        if any(&|x| eq(x, b"ssn") || eq(x, b"itin"))
            || (n >= 2 && eq(w(n - 2), b"social") && eq(last, b"security"))
            || any(&|x| eq(x, b"social")) && any(&|x| eq(x, b"security"))
            || (n >= 2 && (eq(w(n - 2), b"tax") || eq(w(n - 2), b"taxpayer")) && eq(last, b"id"))
            || (n == 1 && eq(last, b"tin"))
        {
            return KeyContext::NationalId;
        }
        if any(&|x| eq(x, b"mac") || eq(x, b"hwaddr") || eq(x, b"lladdr"))
            || (n >= 2 && eq(w(n - 2), b"hardware") && eq(last, b"address"))
        {
            return KeyContext::Mac;
        }
        if any(&|x| {
            eq(x, b"ip")
                || eq(x, b"ipv4")
                || eq(x, b"ipv6")
                || eq(x, b"addr")
                || eq(x, b"host")
                || eq(x, b"peer")
        }) || (n >= 2 && eq(w(n - 2), b"forwarded") && eq(last, b"for"))
        {
            return KeyContext::Address;
        }
        KeyContext::None
    }
}

/// Split `s` into words (ASCII letters and digits; a capital after a
/// lowercase letter starts a new word); returns how many were stored.
fn split_words(s: &[u8], out: &mut [(usize, usize)]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < s.len() && n < out.len() {
        if !s[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < s.len()
            && s[i].is_ascii_alphanumeric()
            && !(s[i].is_ascii_uppercase() && s[i - 1].is_ascii_lowercase())
        {
            i += 1;
        }
        out[n] = (start, i);
        n += 1;
    }
    n
}

/// Up to `N` words before byte `i`, nearest first, each an ASCII
/// alphanumeric run (camelCase humps split), looking back at most 48 bytes
/// and not across a line break.
pub(crate) struct WordsBefore<'b> {
    b: &'b [u8],
    words: [(usize, usize); 4],
    n: usize,
    floor: usize,
    /// Where the next word ends at the latest; `None` once there are no
    /// more (a line break, 48 bytes back, or four words). Words are found
    /// when first asked for: most checks read one or two.
    next: Option<usize>,
}

impl<'b> WordsBefore<'b> {
    pub(crate) fn new(b: &'b [u8], i: usize) -> WordsBefore<'b> {
        WordsBefore {
            b,
            words: [(0, 0); 4],
            n: 0,
            floor: i.saturating_sub(48),
            next: Some(i),
        }
    }

    /// Find one more word; `false` when there is none.
    fn find_next(&mut self) -> bool {
        let (b, floor) = (self.b, self.floor);
        let Some(mut e) = self.next.take() else {
            return false;
        };
        if self.n == self.words.len() {
            return false;
        }
        while e > floor && !b[e - 1].is_ascii_alphanumeric() {
            if matches!(b[e - 1], b'\n' | b'\r') {
                return false;
            }
            e -= 1;
        }
        if e == floor {
            return false;
        }
        let mut s = e;
        while s > floor
            && b[s - 1].is_ascii_alphanumeric()
            && !(s < e && b[s].is_ascii_uppercase() && b[s - 1].is_ascii_lowercase())
        {
            s -= 1;
        }
        self.words[self.n] = (s, e);
        self.n += 1;
        self.next = Some(s);
        true
    }

    /// The `k`-th word before (0: the nearest), or `b""`.
    pub(crate) fn get(&mut self, k: usize) -> &'b [u8] {
        while self.n <= k && self.find_next() {}
        if k < self.n {
            &self.b[self.words[k].0..self.words[k].1]
        } else {
            b""
        }
    }

    /// Whether the `k`-th word equals `w` (ASCII case ignored).
    pub(crate) fn is(&mut self, k: usize, w: &[u8]) -> bool {
        self.get(k).eq_ignore_ascii_case(w)
    }

    /// Whether the `k`-th word is one of `ws`.
    pub(crate) fn is_any(&mut self, k: usize, ws: &[&[u8]]) -> bool {
        let word = self.get(k);
        ws.iter().any(|w| word.eq_ignore_ascii_case(w))
    }
}

/// Filler between a label and its value: `SSN number: …`, `version is …`.
const FILLER: &[&[u8]] = &[
    b"is", b"was", b"no", b"nr", b"num", b"number", b"now", b"of",
];

/// Skip filler words; the index of the first meaningful word.
fn skip_filler(w: &mut WordsBefore<'_>) -> usize {
    let mut k = 0;
    while k < 2 && w.is_any(k, FILLER) {
        k += 1;
    }
    k
}

/// Whether the word `k` names an address: `ip`, `addr(ess)`, `host`,
/// `peer`, `client`, `remote`, `from`, `src`/`dst`, `X-Forwarded-For`, ….
fn address_word(w: &mut WordsBefore<'_>, k: usize) -> bool {
    const WORDS: &[&[u8]] = &[
        b"ip",
        b"ipv4",
        b"addr",
        b"address",
        b"host",
        b"hostname",
        b"peer",
        b"client",
        b"remote",
        b"from",
        b"src",
        b"dst",
        b"source",
        b"destination",
        b"server",
        b"upstream",
        b"gateway",
        b"gw",
        b"nameserver",
        b"inet",
        b"via",
        b"endpoint",
    ];
    w.is_any(k, WORDS) || (w.is(k, b"for") && w.is(k + 1, b"forwarded"))
}

/// Whether the word `k` announces a version: `version`, `ver`, `firmware`,
/// `fw`, `driver`, `build`, `release`, `kernel`.
fn version_word(w: &mut WordsBefore<'_>, k: usize) -> bool {
    const WORDS: &[&[u8]] = &[
        b"version",
        b"ver",
        b"firmware",
        b"fw",
        b"driver",
        b"build",
        b"release",
        b"kernel",
        b"bios",
    ];
    w.is_any(k, WORDS)
}

/// A dotted quad at `i` (already checked for shape) is a version rather
/// than an address: the words before it announce a version (or the field's
/// name does) and none of them an address, it is not the host of a URL, and
/// the field is not named for an address (`client_ip`, `host`).
pub(crate) fn is_version(b: &[u8], i: usize, key: KeyContext) -> bool {
    if key == KeyContext::Address || b[..i].ends_with(b"://") || b[..i].ends_with(b"@") {
        return false;
    }
    let mut w = WordsBefore::new(b, i);
    let k = skip_filler(&mut w);
    if address_word(&mut w, k) {
        return false;
    }
    // `version: 10.4.0.17`, but also `driver_version=…` split in two words.
    if version_word(&mut w, k) {
        return true;
    }
    key == KeyContext::Version && !glued_to_assignment(b, i)
}

/// `name=` / `name: ` right before `i` with a name that is not a version
/// word: inside a version field, `ip=1.2.3.4` is still an address, and any
/// other named value is judged by its own name.
fn glued_to_assignment(b: &[u8], i: usize) -> bool {
    let mut e = i;
    while e > 0 && matches!(b[e - 1], b' ' | b'"' | b'\'') {
        e -= 1;
    }
    e > 0 && matches!(b[e - 1], b'=' | b':') && e >= 2 && is_word(b[e - 2])
}

/// The words before `i` label a national id: `SSN`, `ssn=`, `social
/// security (number)`, `tax id`, `taxpayer id`, `TIN`, `ITIN`.
pub(crate) fn national_id_label(b: &[u8], i: usize, key: KeyContext) -> bool {
    let mut w = WordsBefore::new(b, i);
    let k = skip_filler(&mut w);
    let labelled = w.is_any(k, &[b"ssn", b"ssns", b"itin", b"tin"])
        || (w.is(k, b"security") && w.is(k + 1, b"social"))
        || (w.is(k, b"id") && w.is_any(k + 1, &[b"tax", b"taxpayer"]));
    // Under a field named `ssn`, a value of its own is labelled; another
    // named value inside it (`order=219450912`) is judged by its own name.
    labelled || (key == KeyContext::NationalId && !glued_to_assignment(b, i))
}

/// The words before `i` announce a MAC address: `mac`, `hwaddr`, `ether`,
/// `lladdr`, `bia`, `learned`, `address`, `hardware`.
pub(crate) fn mac_label(b: &[u8], i: usize, key: KeyContext) -> bool {
    let mut w = WordsBefore::new(b, i);
    let k = skip_filler(&mut w);
    key == KeyContext::Mac
        || w.is_any(
            k,
            &[
                b"mac",
                b"hwaddr",
                b"ether",
                b"lladdr",
                b"bia",
                b"learned",
                b"address",
                b"addr",
                b"hardware",
                b"station",
            ],
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_contexts() {
        for (k, want) in [
            ("version", KeyContext::Version),
            ("driver_version", KeyContext::Version),
            ("osVersion", KeyContext::Version),
            ("Version", KeyContext::Version),
            ("ssn", KeyContext::NationalId),
            ("customer_ssn", KeyContext::NationalId),
            ("social_security_number", KeyContext::NationalId),
            ("taxId", KeyContext::NationalId),
            ("mac_address", KeyContext::Mac),
            ("client_ip", KeyContext::Address),
            ("X-Forwarded-For", KeyContext::Address),
            ("remoteAddr", KeyContext::Address),
            ("versions_seen", KeyContext::None),
            ("message", KeyContext::None),
            ("tinder", KeyContext::None),
            ("machine", KeyContext::None),
        ] {
            assert_eq!(KeyContext::of(k.as_bytes()), want, "{k}");
        }
    }

    #[test]
    fn words_before() {
        let s = b"X-Forwarded-For: 1.2.3.4";
        let mut w = WordsBefore::new(s, 17);
        assert_eq!(w.get(0), b"For");
        assert_eq!(w.get(1), b"Forwarded");
        let s = b"\"driverVersion\": \"1";
        let mut w = WordsBefore::new(s, s.len() - 1);
        assert_eq!(w.get(0), b"Version");
        assert_eq!(w.get(1), b"driver");
        let s = b"ssn\nx 1";
        assert_eq!(WordsBefore::new(s, 6).get(1), b"");
    }

    #[test]
    fn versions_and_addresses() {
        let v = |s: &str, key| is_version(s.as_bytes(), s.len() - 7, key);
        assert!(v("firmware 4.1.3.9", KeyContext::None));
        assert!(v("version is 4.1.3.9", KeyContext::None));
        assert!(v("\"os_version\": \"4.1.3.9", KeyContext::None));
        assert!(v("4.1.3.9", KeyContext::Version));
        assert!(!v("ip=4.1.3.9", KeyContext::Version));
        assert!(!v("host 4.1.3.9", KeyContext::Version));
        assert!(!v("http://4.1.3.9", KeyContext::Version));
        assert!(!v("from 4.1.3.9", KeyContext::None));
        assert!(!v("4.1.3.9", KeyContext::None));
        assert!(!v("seen 4.1.3.9", KeyContext::Address));
        assert!(!v("build 4.1.3.9", KeyContext::Address));
    }
}
