//! The compiled rule set: which detectors run, what they do with a match, and
//! the text-level `scrub` that the plugin and the native benchmark share.

use crate::detect::{
    self, AT, BACKSLASH, BEE, DASH, DOT, EQ, Features, FieldName, Hit, Input, PERCENT, SLASH,
    SPACE, UNDERSCORE, UPPER, entropy, net, numbers, paths, secrets, vendors,
};
use crate::hash::Keyed;
use crate::keys::secret_assignments;

/// Declares the detectors: one row per rule, and from it the [`Rule`] enum,
/// [`RULES`], the [`TABLE`] that every other part of the crate reads
/// (config names, masks, counters, overlap order, scanner) and the
/// prefilter (each row's `when`: whether a string with these features could
/// match).
macro_rules! rules {
    ($(
        $(#[$doc:meta])*
        $variant:ident {
            name: $name:literal,
            label: $label:literal,
            rank: $rank:literal,
            digits: $digits:literal,
            holds: $holds:expr,
            when: $when:expr,
            scan: $scan:expr $(,)?
        }
    )*) => {
        /// A detector. Its [`name`](Rule::name) is used in the config, in the
        /// `scrubbed_<name>` counters and in `_wraith.redactions`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Rule {
            $($(#[$doc])* $variant,)*
        }

        /// Number of detectors.
        pub const RULES: usize = [$($name),*].len();

        /// Every detector, one row each, in config order (`Rule as usize`).
        pub(crate) static TABLE: [RuleDef; RULES] = [$(
            RuleDef {
                rule: Rule::$variant,
                name: $name,
                label: $label,
                counter: concat!("scrubbed_", $name),
                rank: $rank,
                digits: $digits,
                holds: $holds,
                scan: $scan,
            },
        )*];

        /// The detectors (bit per [`Rule`]) among `enabled` whose prefilter
        /// passes `f`: every row's `when`, called directly so the compiler
        /// inlines the tests (through the table's function pointers they
        /// were sixteen calls per string).
        #[inline]
        pub(crate) fn prefilter(f: &Features, enabled: u32) -> u32 {
            let mut m = 0u32;
            $(
                let bit = Rule::$variant.bit();
                if enabled & bit != 0 && when(f, $when) {
                    m |= bit;
                }
            )*
            m
        }
    };
}

/// Call a row's prefilter (a closure, so it is inlined).
#[inline(always)]
fn when(f: &Features, test: impl Fn(&Features) -> bool) -> bool {
    test(f)
}

/// One detector: everything the crate knows about it.
pub(crate) struct RuleDef {
    pub rule: Rule,
    /// Config name, annotation rule name, counter suffix.
    pub name: &'static str,
    /// The word inside the placeholder: `[email]`, `[card:…]`.
    pub label: &'static str,
    /// `scrubbed_<name>`.
    pub counter: &'static str,
    /// Overlap order: of two overlapping matches the smaller rank wins (the
    /// more specific or wider detector first: a PEM block over anything in
    /// it, `Bearer <jwt>` as a bearer credential, a card over a phone).
    pub rank: u8,
    /// The scanner walks digit runs ([`detect::DigitRuns`]).
    pub digits: bool,
    /// Besides ASCII letters and digits, the bytes a match can hold
    /// (`None`: any). A word decoded for a second scan goes only to the
    /// detectors whose matches can hold a byte one of its escapes stands
    /// for: any other match in it covers no escape and would be dropped.
    pub holds: Option<&'static [u8]>,
    /// The scanner: push every match (overlaps are resolved afterwards).
    pub scan: fn(&Input, &mut Vec<Hit>),
}

rules! {
    /// E-mail addresses.
    Email {
        name: "email", label: "email", rank: 8, digits: false,
        holds: Some(b".-_%+@"),
        when: |f| f.has(AT) && f.dots > 0 && f.len >= 6,
        scan: |i, o| net::email(i.b, o),
    }
    /// IPv4 and IPv6 addresses (not dotted quads in a version context).
    Ip {
        name: "ip", label: "ip", rank: 13, digits: true,
        holds: Some(b".:%_[]"),
        when: |f| f.maybe_v4() || f.maybe_v6(),
        scan: net::ip,
    }
    /// Payment card numbers (prefix, length and Luhn checked).
    CreditCard {
        name: "credit_card", label: "card", rank: 10, digits: true,
        holds: Some(b" -"),
        when: |f| f.digits >= 13,
        scan: |i, o| numbers::credit_card(i.b, &i.runs, o),
    }
    /// US social security numbers: dashed anywhere, any grouping when labelled.
    Ssn {
        name: "ssn", label: "ssn", rank: 11, digits: true,
        holds: Some(b" -."),
        when: |f| f.digits >= 9,
        scan: numbers::ssn,
    }
    /// Phone numbers.
    Phone {
        name: "phone", label: "phone", rank: 14, digits: true,
        holds: Some(b" -.+()"),
        when: |f| f.digits >= 8,
        scan: |i, o| numbers::phone(i.b, &i.runs, o),
    }
    /// IBANs (mod-97 checked).
    Iban {
        name: "iban", label: "iban", rank: 9, digits: true,
        holds: Some(b" "),
        when: |f| f.digits >= 2 && f.has(UPPER) && f.len >= 15,
        scan: |i, o| numbers::iban(i.b, &i.runs, o),
    }
    /// JSON web tokens.
    Jwt {
        name: "jwt", label: "jwt", rank: 3, digits: false,
        holds: Some(b"-_.="),
        when: |f| f.dots >= 2 && f.len >= 16,
        scan: |i, o| secrets::jwt(i.b, o),
    }
    /// AWS access key ids and secret access keys.
    AwsKey {
        name: "aws_key", label: "aws-key", rank: 4, digits: false,
        holds: Some(b"+/"),
        when: |f| f.has(UPPER) && f.len >= 20,
        scan: secrets::aws_key,
    }
    /// Vendor API tokens, by prefix (`detect::vendors::VENDORS`).
    Token {
        name: "token", label: "token", rank: 5, digits: false,
        holds: Some(b"_-."),
        when: |f| f.len >= 16 && (f.has(UNDERSCORE | DASH | DOT | UPPER) || f.digits >= 8),
        scan: vendors::tokens,
    }
    /// `Bearer` and `Basic` credentials.
    Bearer {
        name: "bearer", label: "credential", rank: 2, digits: false,
        holds: None,
        when: |f| f.has(SPACE) && f.has(BEE) && f.len >= 10,
        scan: |i, o| secrets::bearer(i.b, o),
    }
    /// Passwords in URLs.
    UrlPassword {
        name: "url_password", label: "password", rank: 1, digits: false,
        holds: None,
        when: |f| f.has(AT) && f.colons > 0 && f.has(SLASH),
        scan: |i, o| net::url_password(i.b, o),
    }
    /// PEM private key blocks.
    PrivateKey {
        name: "private_key", label: "private-key", rank: 0, digits: false,
        holds: None,
        when: |f| f.len >= 30 && f.dashes >= 10,
        scan: |i, o| secrets::private_key(i.b, o),
    }
    /// The user name in home directory paths.
    HomeDir {
        name: "home_dir", label: "~", rank: 15, digits: false,
        holds: None,
        when: |f| f.has(SLASH | BACKSLASH),
        scan: |i, o| paths::home_dir(i.b, o),
    }
    /// MAC addresses.
    Mac {
        name: "mac", label: "mac", rank: 12, digits: false,
        holds: Some(b":-."),
        when: |f| f.len >= 14 && (f.colons >= 5 || f.dashes >= 5 || f.dots >= 2),
        scan: net::mac,
    }
    /// Values of secret-named fields and assignments.
    SecretKey {
        name: "secret_key", label: "redacted", rank: 6, digits: false,
        holds: None,
        // Without `=` or `:` only `--flag value` is left (`-u` needs the
        // colon of `user:password`).
        when: |f| f.has(EQ) || f.colons > 0 || f.dashes >= 2,
        // A `-` or `:` per 16 bytes or more: read eight bytes at a time
        // (`detect::Bytes3`).
        scan: |i, o| {
            // Without `=` or `:` only `--flag value` can match (ids, dates
            // and `xterm-256color` have dashes but no `--`).
            if i.f.has(EQ) || i.f.colons > 0 || i.b.windows(2).any(|w| w == b"--") {
                secret_assignments(i.b, (i.f.dashes + i.f.colons) * 16 >= i.f.len, o);
            }
        },
    }
    /// Unnamed high-entropy credentials.
    GenericSecret {
        name: "generic_secret", label: "secret", rank: 7, digits: false,
        holds: Some(b"+/-_="),
        when: |f| f.len >= entropy::MIN_LEN && f.digits > 0 && f.has(UPPER),
        scan: entropy::generic_secret,
    }
}

impl Rule {
    /// Every detector, in config order.
    pub const ALL: [Rule; RULES] = {
        let mut all = [Rule::Email; RULES];
        let mut i = 0;
        while i < RULES {
            all[i] = TABLE[i].rule;
            i += 1;
        }
        all
    };

    const fn def(self) -> &'static RuleDef {
        &TABLE[self as usize]
    }

    /// The name used in config, counters and annotations.
    pub const fn name(self) -> &'static str {
        self.def().name
    }

    /// The word inside the placeholder: `[email]`, `[card:…]`.
    pub const fn label(self) -> &'static str {
        self.def().label
    }

    /// The counter this detector increments.
    pub const fn counter(self) -> &'static str {
        self.def().counter
    }

    /// Look a detector up by its config name.
    pub fn from_name(name: &str) -> Option<Rule> {
        TABLE.iter().find(|d| d.name == name).map(|d| d.rule)
    }

    /// When two matches overlap, the one with the smaller rank wins.
    pub(crate) const fn rank(self) -> u8 {
        self.def().rank
    }

    pub(crate) const fn bit(self) -> u32 {
        1 << self as u8
    }
}

/// What a detector does with what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// Replace with a placeholder such as `[email]`.
    #[default]
    Mask,
    /// Replace with a keyed pseudonym such as `[email:3f9a0c1d2b4e5f60]`.
    Hash,
    /// Remove the whole field.
    Remove,
    /// Do not run the detector.
    Off,
}

impl Method {
    /// Parse a config value.
    pub fn from_name(name: &str) -> Option<Method> {
        Some(match name {
            "mask" => Method::Mask,
            "hash" => Method::Hash,
            "remove" => Method::Remove,
            "off" => Method::Off,
            _ => return None,
        })
    }
}

/// What scrubbing a string produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scrubbed {
    /// Nothing matched.
    Clean,
    /// The string with every match replaced.
    Replaced(String),
    /// A detector configured with `remove` matched: drop the field.
    Remove,
}

/// The compiled detectors and their methods.
#[derive(Clone)]
pub struct Ruleset {
    methods: [Method; RULES],
    /// Bit per detector that is not `off`.
    enabled: u32,
    /// Scan percent- and JSON-escaped words again as decoded.
    decode: bool,
    hasher: Option<Keyed>,
}

impl std::fmt::Debug for Ruleset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ruleset")
            .field("methods", &self.methods)
            .field("decode", &self.decode)
            .field("hash_key", &self.hasher.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Default for Ruleset {
    /// Every detector on, masking.
    fn default() -> Self {
        Ruleset::new([Method::Mask; RULES], None)
    }
}

impl Ruleset {
    /// Build a rule set. `methods` is indexed by `Rule as usize`. A detector
    /// set to `hash` without a key masks instead (the config layer refuses
    /// that combination before it gets here).
    pub fn new(methods: [Method; RULES], hash_key: Option<&[u8]>) -> Ruleset {
        let enabled = Rule::ALL
            .iter()
            .filter(|r| methods[**r as usize] != Method::Off)
            .fold(0u32, |acc, r| acc | r.bit());
        Ruleset {
            methods,
            enabled,
            decode: true,
            hasher: hash_key.map(Keyed::new),
        }
    }

    /// Whether percent-encoded (`%40`, `+` for a space) and JSON-escaped
    /// (`\u0040`, `\/`) words are scanned again as decoded (on by default).
    pub fn with_decoding(mut self, on: bool) -> Ruleset {
        self.decode = on;
        self
    }

    /// Only `rule`, masking (handy in tests and benchmarks).
    pub fn only(rule: Rule) -> Ruleset {
        let mut methods = [Method::Off; RULES];
        methods[rule as usize] = Method::Mask;
        Ruleset::new(methods, None)
    }

    /// The method configured for `rule`.
    pub fn method(&self, rule: Rule) -> Method {
        self.methods[rule as usize]
    }

    /// Bit per enabled detector.
    pub(crate) fn text_bits(&self) -> u32 {
        self.enabled
    }

    /// Whether `rule` runs.
    pub fn enabled(&self, rule: Rule) -> bool {
        self.enabled & rule.bit() != 0
    }

    /// Find every match in `s`: non-overlapping, in order. `hits` is cleared
    /// first; it only allocates when something matches.
    pub fn find(&self, s: &str, hits: &mut Vec<Hit>) {
        self.find_in(None, s, hits);
    }

    /// [`find`](Ruleset::find) for the value of a field named `key` (the
    /// last key of its path, path-escaped or not): detectors that read
    /// context look at it (`driver_version` keeps a dotted quad, `ssn` takes
    /// nine bare digits).
    ///
    /// A canonical UUID or an RFC 3339 timestamp, which no detector can
    /// match under any field name, is not scanned (`detect/inert.rs`).
    pub fn find_in(&self, key: Option<&str>, s: &str, hits: &mut Vec<Hit>) {
        self.find_in_field(key.map(str::as_bytes), s, hits);
    }

    /// [`find_in`](Ruleset::find_in) with the field name as bytes (the
    /// plugin slices it out of a leaf path).
    pub(crate) fn find_in_field(&self, key: Option<&[u8]>, s: &str, hits: &mut Vec<Hit>) {
        if detect::inert::inert(s.as_bytes()) {
            hits.clear();
            return;
        }
        self.scan_field(key, s, hits);
    }

    /// [`find_in`](Ruleset::find_in) without the shortcut for inert shapes:
    /// every enabled scanner whose prefilter passes runs (the tests check
    /// the shortcut against it).
    #[cfg(test)]
    pub(crate) fn scan_in(&self, key: Option<&str>, s: &str, hits: &mut Vec<Hit>) {
        self.scan_field(key.map(str::as_bytes), s, hits);
    }

    /// [`scan_in`](Ruleset::scan_in) with the field name as bytes.
    fn scan_field(&self, key: Option<&[u8]>, s: &str, hits: &mut Vec<Hit>) {
        hits.clear();
        let key = FieldName::new(key);
        let b = s.as_bytes();
        let seen = detect::find_all(b, self.enabled, &key, hits);
        // Percent-, `+`- and JSON-escaped text is scanned again as decoded;
        // its matches are mapped back onto the encoded span.
        if self.decode && seen & (PERCENT | BACKSLASH) != 0 {
            detect::encoded::find_decoded(b, self.enabled, &key, hits);
        }
        if hits.len() > 1 {
            resolve_overlaps(hits);
        }
    }

    /// Scrub one string: `None` when nothing matched (no allocation). A match
    /// of a detector configured with `remove` yields an empty string here
    /// (the plugin removes the field instead).
    pub fn scrub_str(&self, s: &str) -> Option<String> {
        let mut hits = Vec::new();
        match self.scrub_with(s, &mut hits) {
            Scrubbed::Clean => None,
            Scrubbed::Replaced(out) => Some(out),
            Scrubbed::Remove => Some(String::new()),
        }
    }

    /// Scrub one string with a caller-provided scratch vector for the hits
    /// (left holding the hits that fired).
    pub fn scrub_with(&self, s: &str, hits: &mut Vec<Hit>) -> Scrubbed {
        self.scrub_in(None, s, hits)
    }

    /// [`scrub_with`](Ruleset::scrub_with) for the value of a field named
    /// `key` (see [`find_in`](Ruleset::find_in)).
    pub fn scrub_in(&self, key: Option<&str>, s: &str, hits: &mut Vec<Hit>) -> Scrubbed {
        self.find_in(key, s, hits);
        self.scrubbed(s, hits)
    }

    /// What scrubbing `s` gives, `hits` being what [`find_in`](Ruleset::find_in)
    /// found in it.
    pub(crate) fn scrubbed(&self, s: &str, hits: &[Hit]) -> Scrubbed {
        if hits.is_empty() {
            Scrubbed::Clean
        } else if hits.iter().any(|h| self.method(h.rule) == Method::Remove) {
            Scrubbed::Remove
        } else {
            Scrubbed::Replaced(self.render(s, hits, false))
        }
    }

    /// `s` with every hit replaced. `force_mask` renders `remove` hits as
    /// placeholders (used for a removed key's name in annotations).
    pub(crate) fn render(&self, s: &str, hits: &[Hit], force_mask: bool) -> String {
        let mut out = String::with_capacity(s.len() + 16 * hits.len());
        let mut copied = 0;
        for h in hits {
            out.push_str(&s[copied..h.start]);
            self.push_replacement(h.rule, &s[h.start..h.end], force_mask, &mut out);
            copied = h.end;
        }
        out.push_str(&s[copied..]);
        out
    }

    /// The replacement for a whole value (a field whose name says it holds a
    /// secret).
    pub(crate) fn whole_value(&self, rule: Rule, text: &str) -> String {
        let mut out = String::with_capacity(rule.label().len() + 20);
        self.push_replacement(rule, text, false, &mut out);
        out
    }

    fn push_replacement(&self, rule: Rule, matched: &str, force_mask: bool, out: &mut String) {
        if rule == Rule::HomeDir {
            out.push('~');
            return;
        }
        out.push('[');
        out.push_str(rule.label());
        if let (Method::Hash, false, Some(hasher)) =
            (self.method(rule), force_mask, self.hasher.as_ref())
        {
            out.push(':');
            // A match found in encoded text is hashed as decoded:
            // `ada%40example.com` and `ada@example.com` are one person.
            let value = detect::encoded::decoded(matched.as_bytes());
            if rule == Rule::Email {
                // Addresses are case-insensitive in practice: one pseudonym
                // for Ada@Example.com and ada@example.com.
                hasher.push_tag(&value.to_ascii_lowercase(), out);
            } else {
                hasher.push_tag(&value, out);
            }
        }
        out.push(']');
    }
}

/// Keep the highest-ranked of overlapping matches, then restore text order.
fn resolve_overlaps(hits: &mut Vec<Hit>) {
    hits.sort_unstable_by_key(|h| (h.rule.rank(), h.start, usize::MAX - h.end));
    let mut kept = 0;
    for i in 0..hits.len() {
        let h = hits[i];
        if hits[..kept]
            .iter()
            .all(|k| h.end <= k.start || h.start >= k.end)
        {
            hits[kept] = h;
            kept += 1;
        }
    }
    hits.truncate(kept);
    hits.sort_unstable_by_key(|h| h.start);
}
