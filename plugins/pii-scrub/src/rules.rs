//! The compiled rule set: which detectors run, what they do with a match, and
//! the text-level `scrub` that the plugin and the native benchmark share.

use crate::detect::{self, Hit};
use crate::hash::Keyed;

/// Number of detectors.
pub const RULES: usize = 15;

/// A detector. Its [`name`](Rule::name) is used in the config, in the
/// `scrubbed_<name>` counters and in `_wraith.redactions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Rule {
    Email = 0,
    Ip,
    CreditCard,
    Ssn,
    Phone,
    Iban,
    Jwt,
    AwsKey,
    Token,
    Bearer,
    UrlPassword,
    PrivateKey,
    HomeDir,
    Mac,
    SecretKey,
}

impl Rule {
    /// Every detector, in config order.
    pub const ALL: [Rule; RULES] = [
        Rule::Email,
        Rule::Ip,
        Rule::CreditCard,
        Rule::Ssn,
        Rule::Phone,
        Rule::Iban,
        Rule::Jwt,
        Rule::AwsKey,
        Rule::Token,
        Rule::Bearer,
        Rule::UrlPassword,
        Rule::PrivateKey,
        Rule::HomeDir,
        Rule::Mac,
        Rule::SecretKey,
    ];

    /// The name used in config, counters and annotations.
    pub const fn name(self) -> &'static str {
        match self {
            Rule::Email => "email",
            Rule::Ip => "ip",
            Rule::CreditCard => "credit_card",
            Rule::Ssn => "ssn",
            Rule::Phone => "phone",
            Rule::Iban => "iban",
            Rule::Jwt => "jwt",
            Rule::AwsKey => "aws_key",
            Rule::Token => "token",
            Rule::Bearer => "bearer",
            Rule::UrlPassword => "url_password",
            Rule::PrivateKey => "private_key",
            Rule::HomeDir => "home_dir",
            Rule::Mac => "mac",
            Rule::SecretKey => "secret_key",
        }
    }

    /// The word inside the placeholder: `[email]`, `[card:…]`.
    pub const fn label(self) -> &'static str {
        match self {
            Rule::Email => "email",
            Rule::Ip => "ip",
            Rule::CreditCard => "card",
            Rule::Ssn => "ssn",
            Rule::Phone => "phone",
            Rule::Iban => "iban",
            Rule::Jwt => "jwt",
            Rule::AwsKey => "aws-key",
            Rule::Token => "token",
            Rule::Bearer => "credential",
            Rule::UrlPassword => "password",
            Rule::PrivateKey => "private-key",
            Rule::HomeDir => "~",
            Rule::Mac => "mac",
            Rule::SecretKey => "redacted",
        }
    }

    /// The counter this detector increments.
    pub const fn counter(self) -> &'static str {
        match self {
            Rule::Email => "scrubbed_email",
            Rule::Ip => "scrubbed_ip",
            Rule::CreditCard => "scrubbed_credit_card",
            Rule::Ssn => "scrubbed_ssn",
            Rule::Phone => "scrubbed_phone",
            Rule::Iban => "scrubbed_iban",
            Rule::Jwt => "scrubbed_jwt",
            Rule::AwsKey => "scrubbed_aws_key",
            Rule::Token => "scrubbed_token",
            Rule::Bearer => "scrubbed_bearer",
            Rule::UrlPassword => "scrubbed_url_password",
            Rule::PrivateKey => "scrubbed_private_key",
            Rule::HomeDir => "scrubbed_home_dir",
            Rule::Mac => "scrubbed_mac",
            Rule::SecretKey => "scrubbed_secret_key",
        }
    }

    /// Look a detector up by its config name.
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }

    /// When two matches overlap, the one with the smaller rank wins: the
    /// more specific or wider detector first (a PEM block over anything in
    /// it, `Bearer <jwt>` as a bearer credential, a card over a phone).
    pub(crate) const fn rank(self) -> u8 {
        match self {
            Rule::PrivateKey => 0,
            Rule::UrlPassword => 1,
            Rule::Bearer => 2,
            Rule::Jwt => 3,
            Rule::AwsKey => 4,
            Rule::Token => 5,
            Rule::SecretKey => 6,
            Rule::Email => 7,
            Rule::Iban => 8,
            Rule::CreditCard => 9,
            Rule::Ssn => 10,
            Rule::Mac => 11,
            Rule::Ip => 12,
            Rule::Phone => 13,
            Rule::HomeDir => 14,
        }
    }

    pub(crate) const fn bit(self) -> u16 {
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
    enabled: u16,
    hasher: Option<Keyed>,
}

impl std::fmt::Debug for Ruleset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ruleset")
            .field("methods", &self.methods)
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
            .fold(0u16, |acc, r| acc | r.bit());
        Ruleset {
            methods,
            enabled,
            hasher: hash_key.map(Keyed::new),
        }
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
    pub(crate) fn text_bits(&self) -> u16 {
        self.enabled
    }

    /// Whether `rule` runs.
    pub fn enabled(&self, rule: Rule) -> bool {
        self.enabled & rule.bit() != 0
    }

    /// Find every match in `s`: non-overlapping, in order. `hits` is cleared
    /// first; it only allocates when something matches.
    pub fn find(&self, s: &str, hits: &mut Vec<Hit>) {
        hits.clear();
        detect::find_all(s.as_bytes(), self.enabled, hits);
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
        self.find(s, hits);
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
            if rule == Rule::Email {
                // Addresses are case-insensitive in practice: one pseudonym
                // for Ada@Example.com and ada@example.com.
                hasher.push_tag(matched.to_ascii_lowercase().as_bytes(), out);
            } else {
                hasher.push_tag(matched.as_bytes(), out);
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
