//! Vendor API tokens, recognised by prefix. [`VENDORS`] is the whole rule
//! set as data: one row per prefix, so a new vendor is one line.
//!
//! Prefixes that hold a separator (`_`, `-`, `.`) are found by anchoring on
//! their last separator and looking back (a table keyed by the separator and
//! the byte before it lists the few rows to try, usually none); the few
//! without one (`AIza`, `SK`, `dapi`) are searched for directly.

use super::{Bytes3, Hit, Input, UPPER, at, before, find_at, is_hex, is_word};
use crate::rules::Rule;

/// The characters a token's body may hold (after the prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// `A-Z a-z 0-9`.
    Alnum,
    /// Alphanumerics and `-`.
    AlnumDash,
    /// Alphanumerics and `_`.
    AlnumUnderscore,
    /// Alphanumerics, `-` and `_` (base64url).
    Base64Url,
    /// Base64url and `.` (SendGrid's two-part body).
    Base64UrlDot,
    /// `0-9 a-f A-F`.
    Hex,
    /// Hex digits and `-`.
    HexDash,
}

impl Body {
    fn accepts(self, c: u8) -> bool {
        match self {
            Body::Alnum => c.is_ascii_alphanumeric(),
            Body::AlnumDash => c.is_ascii_alphanumeric() || c == b'-',
            Body::AlnumUnderscore => c.is_ascii_alphanumeric() || c == b'_',
            Body::Base64Url => c.is_ascii_alphanumeric() || c == b'-' || c == b'_',
            Body::Base64UrlDot => c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'),
            Body::Hex => is_hex(c),
            Body::HexDash => is_hex(c) || c == b'-',
        }
    }
}

/// One vendor prefix: the token is `prefix` + `min..=max` body characters,
/// not glued to a word on either side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Vendor {
    pub prefix: &'static [u8],
    pub body: Body,
    pub min: u16,
    pub max: u16,
    /// Index in `prefix` of its last separator (`_ - .`), if any.
    anchor: Option<usize>,
    /// For a prefix without a separator, the index of its rarest byte in
    /// text (searched for with `memchr`).
    rare: usize,
    /// The detector the match counts for.
    pub rule: Rule,
    /// The rule's name in gitleaks' public rule list (documentation; the
    /// README's table is checked against it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub id: &'static str,
}

const fn v(
    prefix: &'static [u8],
    body: Body,
    min: u16,
    max: u16,
    rule: Rule,
    id: &'static str,
) -> Vendor {
    Vendor {
        prefix,
        body,
        min,
        max,
        anchor: anchor(prefix),
        rare: rarest(prefix),
        rule,
        id,
    }
}

const T: Rule = Rule::Token;
const ANY: u16 = u16::MAX;
use Body::*;

/// Every vendor prefix. Longer prefixes win over shorter ones that also
/// match (`sk-ant-` over `sk-`).
#[rustfmt::skip]
pub(crate) static VENDORS: &[Vendor] = &[
    v(b"ghp_", Alnum, 30, ANY, T, "github-pat"),
    v(b"gho_", Alnum, 30, ANY, T, "github-oauth"),
    v(b"ghu_", Alnum, 30, ANY, T, "github-app-token"),
    v(b"ghs_", Alnum, 30, ANY, T, "github-app-token"),
    v(b"ghr_", Alnum, 30, ANY, T, "github-refresh-token"),
    v(b"github_pat_", AlnumUnderscore, 22, ANY, T, "github-fine-grained-pat"),
    v(b"glpat-", Base64Url, 20, ANY, T, "gitlab-pat"),
    v(b"glptt-", Hex, 40, 40, T, "gitlab-ptt"),
    v(b"glrt-", Base64Url, 20, ANY, T, "gitlab-runner-authentication-token"),
    v(b"xoxb-", AlnumDash, 10, ANY, T, "slack-bot-token"),
    v(b"xoxp-", AlnumDash, 10, ANY, T, "slack-user-token"),
    v(b"xoxa-", AlnumDash, 10, ANY, T, "slack-legacy-workspace-token"),
    v(b"xoxr-", AlnumDash, 10, ANY, T, "slack-legacy-token"),
    v(b"xoxs-", AlnumDash, 10, ANY, T, "slack-legacy-token"),
    v(b"xoxe-", AlnumDash, 10, ANY, T, "slack-config-refresh-token"),
    v(b"xapp-", AlnumDash, 10, ANY, T, "slack-app-token"),
    v(b"sk_live_", Alnum, 16, ANY, T, "stripe-access-token"),
    v(b"sk_test_", Alnum, 16, ANY, T, "stripe-access-token"),
    v(b"rk_live_", Alnum, 16, ANY, T, "stripe-access-token"),
    v(b"rk_test_", Alnum, 16, ANY, T, "stripe-access-token"),
    v(b"sk-ant-", Base64Url, 32, ANY, T, "anthropic-api-key"),
    v(b"sk-proj-", Base64Url, 32, ANY, T, "openai-api-key"),
    v(b"sk-svcacct-", Base64Url, 32, ANY, T, "openai-api-key"),
    v(b"sk-admin-", Base64Url, 32, ANY, T, "openai-api-key"),
    v(b"sk-", Alnum, 32, ANY, T, "openai-api-key"),
    v(b"SK", Hex, 32, 32, T, "twilio-api-key"),
    v(b"SG.", Base64UrlDot, 66, ANY, T, "sendgrid-api-token"),
    v(b"shpat_", Hex, 32, 32, T, "shopify-access-token"),
    v(b"shpca_", Hex, 32, 32, T, "shopify-custom-access-token"),
    v(b"shppa_", Hex, 32, 32, T, "shopify-private-app-access-token"),
    v(b"shpss_", Hex, 32, 32, T, "shopify-shared-secret"),
    v(b"pypi-AgEIcHlwaS5vcmc", Base64Url, 50, ANY, T, "pypi-upload-token"),
    v(b"dckr_pat_", Base64Url, 27, ANY, T, "docker-pat"),
    v(b"hf_", Alnum, 34, 40, T, "huggingface-access-token"),
    v(b"dop_v1_", Hex, 64, 64, T, "digitalocean-pat"),
    v(b"doo_v1_", Hex, 64, 64, T, "digitalocean-access-token"),
    v(b"dor_v1_", Hex, 64, 64, T, "digitalocean-refresh-token"),
    v(b"npm_", Alnum, 36, ANY, T, "npm-access-token"),
    v(b"AIza", Base64Url, 35, 35, T, "gcp-api-key"),
    v(b"glsa_", AlnumUnderscore, 41, ANY, T, "grafana-service-account-token"),
    v(b"glc_", Alnum, 32, ANY, T, "grafana-cloud-api-token"),
    v(b"lin_api_", Alnum, 40, 40, T, "linear-api-key"),
    v(b"PMAK-", HexDash, 59, 59, T, "postman-api-token"),
    v(b"NRAK-", Alnum, 27, 27, T, "new-relic-user-api-key"),
    v(b"dapi", Hex, 32, 32, T, "databricks-api-token"),
    v(b"pul-", Hex, 40, 40, T, "pulumi-api-token"),
    v(b"dp.pt.", Alnum, 43, 43, T, "doppler-api-token"),
    v(b"AGE-SECRET-KEY-1", Alnum, 58, 58, T, "age-secret-key"),
];

/// The index of the last separator in `p`, if any.
const fn anchor(p: &[u8]) -> Option<usize> {
    let mut i = p.len();
    while i > 0 {
        i -= 1;
        if matches!(p[i], b'_' | b'-' | b'.') {
            return Some(i);
        }
    }
    None
}

/// The index of the byte of `p` least frequent in text: a capital or a
/// digit first, then letters by rarity in English.
const fn rarest(p: &[u8]) -> usize {
    const ORDER: &[u8] = b"zqxjkvbpygfwmucldrhsnioate";
    let mut best = 0;
    let mut best_score = usize::MAX;
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        let score = if c.is_ascii_uppercase() || c.is_ascii_digit() {
            0
        } else {
            let mut k = 0;
            while k < ORDER.len() && ORDER[k] != c {
                k += 1;
            }
            1 + k
        };
        if score < best_score {
            best = i;
            best_score = score;
        }
        i += 1;
    }
    best
}

/// Most rows whose prefix has no separator.
const MAX_UNANCHORED: usize = 4;

/// The rows whose prefix has no separator (`u8::MAX` ends the list), so
/// the scan does not walk the whole table for them.
static UNANCHORED: [u8; MAX_UNANCHORED] = {
    let mut t = [u8::MAX; MAX_UNANCHORED];
    let (mut k, mut n) = (0, 0);
    while k < VENDORS.len() {
        if VENDORS[k].anchor.is_none() {
            assert!(
                n < MAX_UNANCHORED,
                "too many vendor prefixes without a separator"
            );
            t[n] = k as u8;
            n += 1;
        }
        k += 1;
    }
    t
};

/// Most rows that share a (separator, byte before it) pair.
const PER_TAIL: usize = 8;

/// For each separator (`_` 0, `-` 1, `.` 2) and byte before it, the rows
/// whose prefix has that pair at its anchor (`u8::MAX` ends the list); a
/// prefix that starts with its separator is listed under every byte.
static ROWS_BY_TAIL: [[u8; PER_TAIL]; 768] = {
    let mut t = [[u8::MAX; PER_TAIL]; 768];
    let mut k = 0;
    while k < VENDORS.len() {
        let p = VENDORS[k].prefix;
        if let Some(a) = anchor(p) {
            let base = sep_index(p[a]) * 256;
            let (lo, hi) = if a == 0 {
                (0, 256)
            } else {
                (p[a - 1] as usize, p[a - 1] as usize + 1)
            };
            let mut c = lo;
            while c < hi {
                let slot = &mut t[base + c];
                let mut n = 0;
                while slot[n] != u8::MAX {
                    n += 1;
                    assert!(n < PER_TAIL, "too many vendor prefixes share a tail");
                }
                slot[n] = k as u8;
                c += 1;
            }
        }
        k += 1;
    }
    t
};

const fn sep_index(c: u8) -> usize {
    match c {
        b'_' => 0,
        b'-' => 1,
        _ => 2,
    }
}

/// A match of `v` whose prefix starts at `s`: the end of its body.
fn body_end(b: &[u8], s: usize, v: &Vendor) -> Option<usize> {
    // The first byte alone rejects most candidates, before the comparison.
    if b[s] != v.prefix[0] || is_word(before(b, s)) || !b[s..].starts_with(v.prefix) {
        return None;
    }
    let bs = s + v.prefix.len();
    let mut e = bs;
    while e < b.len() && v.body.accepts(b[e]) && e - bs <= v.max as usize {
        e += 1;
    }
    // Sentence punctuation after a token whose body may hold `.`.
    while v.body == Body::Base64UrlDot && e > bs && b[e - 1] == b'.' {
        e -= 1;
    }
    let n = e - bs;
    (n >= v.min as usize && n <= v.max as usize && !is_word(at(b, e))).then_some(e)
}

/// Every vendor token in `b` (see [`VENDORS`]).
pub(crate) fn tokens(inp: &Input, out: &mut Vec<Hit>) {
    let b = inp.b;
    // A `-` or `.` per 16 bytes or more: read eight bytes at a time
    // (`Bytes3`).
    let dense = (inp.f.dashes + inp.f.dots) * 16 >= inp.f.len;
    let mut separators = Bytes3::new(b, [b'_', b'-', b'.'], dense);
    while let Some(p) = separators.next() {
        if p == 0 {
            continue;
        }
        let rows = &ROWS_BY_TAIL[sep_index(b[p]) * 256 + b[p - 1] as usize];
        let mut best: Option<(usize, usize, &Vendor)> = None;
        for &k in rows.iter().take_while(|&&k| k != u8::MAX) {
            let v = &VENDORS[k as usize];
            let a = v.anchor.unwrap_or(0);
            if a > p {
                continue;
            }
            let s = p - a;
            if let Some(e) = body_end(b, s, v)
                && best.is_none_or(|(bs, _, bv)| {
                    s < bs || (s == bs && v.prefix.len() > bv.prefix.len())
                })
            {
                best = Some((s, e, v));
            }
        }
        if let Some((s, e, v)) = best {
            out.push(Hit::new(v.rule, s, e));
            separators.skip_to(e);
        }
    }
    for v in UNANCHORED.iter().map_while(|&k| VENDORS.get(k as usize)) {
        // A hex body of 32 or more holds digits; a capital in the prefix
        // needs one in the string.
        let short = b.len() < v.prefix.len() + v.min as usize;
        let no_hex_digits = v.body == Body::Hex && inp.f.digits < 8;
        let no_capital = v.prefix[v.rare].is_ascii_uppercase() && !inp.f.has(UPPER);
        if short || no_hex_digits || no_capital {
            continue;
        }
        let mut from = 0;
        // Anchor on the prefix's rarest byte (`A` of `AIza`, `p` of `dapi`).
        while let Some(s) = find_at(b, v.prefix, v.rare, from) {
            from = s + 1;
            if let Some(e) = body_end(b, s, v) {
                out.push(Hit::new(v.rule, s, e));
                from = e;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::detect::test_util::check_rule;
    use crate::rules::Rule;

    #[test]
    fn tokens() {
        let r = Rule::Token;
        check_rule(
            r,
            "GITHUB_TOKEN=ghp_16C7e42F292c6912E7710c838347Ae178B4a run",
            "GITHUB_TOKEN=[token] run",
        );
        check_rule(
            r,
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123",
            "[token]",
        );
        check_rule(
            r,
            "slack xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp",
            "slack [token]",
        );
        check_rule(r, "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[token]");
        check_rule(
            r,
            "key=AIzaSyA1234567890abcdefghijklmnopqrstuv",
            "key=[token]",
        );
        check_rule(r, "npm_abcdefghijklmnopqrstuvwxyz0123456789", "[token]");
        check_rule(r, "ghp_short", "ghp_short");
        check_rule(
            r,
            "my_ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            "my_ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        );
        check_rule(r, "sk_live_", "sk_live_");
    }

    #[test]
    fn vendor_prefixes() {
        let t = |i: &str, o: &str| check_rule(Rule::Token, i, o);
        t(
            "xapp-1-A0123456789-1234567890123-0123456789abcdef",
            "[token]",
        );
        t("glpat-AbCdEfGhIjKlMnOpQrSt", "[token]");
        t(
            "OPENAI_API_KEY=sk-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghij",
            "OPENAI_API_KEY=[token]",
        );
        t(
            "key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdEfGhIjKlMnOp-AA ok",
            "key [token] ok",
        );
        t(
            "twilio SK0123456789abcdef0123456789abcdef.",
            "twilio [token].",
        );
        t(
            "SG.AbCdEfGhIjKlMnOpQrStUv.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg",
            "[token]",
        );
        t("shpat_0123456789abcdef0123456789abcdef", "[token]");
        t(
            "pypi-AgEIcHlwaS5vcmcCJGE0YjM4ZjA5LTEyMzQtNDU2Ny04OWFiLWNkZWYwMTIzNDU2NwACKlsz",
            "[token]",
        );
        t("dckr_pat_AbCdEfGhIjKlMnOpQrStUvWxYz0", "[token]");
        t(
            "HF_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh",
            "HF_TOKEN=[token]",
        );
        t(
            "dop_v1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "[token]",
        );
        // Too short, glued, or a word with the prefix.
        for s in [
            "sk-learn",
            "task-ant-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
            "SKU0123456789abcdef0123456789abcdef",
            "hf_hub_download",
            "xapp-short",
            "risk-ant-x",
            "SG.x",
            "glpat-",
            "dapi_version",
        ] {
            t(s, s);
        }
    }

    #[test]
    fn the_readme_lists_every_prefix() {
        let readme = include_str!("../../README.md");
        let table = &readme[readme.find("### Vendor prefixes").expect("section")..];
        for v in super::VENDORS {
            let prefix = format!("`{}`", std::str::from_utf8(v.prefix).unwrap());
            let id = format!("`{}`", v.id);
            assert!(
                table
                    .lines()
                    .any(|l| l.starts_with('|') && l.contains(&prefix) && l.contains(&id)),
                "README row for {prefix} ({id})"
            );
        }
    }

    #[test]
    fn table_rows_are_well_formed() {
        for v in super::VENDORS {
            assert!(v.prefix.len() >= 2, "{}", v.id);
            assert!(v.min >= 10 && v.min <= v.max, "{}", v.id);
        }
    }
}
