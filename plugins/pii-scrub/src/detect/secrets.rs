//! Credentials: JWTs, AWS keys, vendor API tokens, `Bearer`/`Basic`
//! authorization values and PEM private keys.

use super::Input;
use super::entropy::LongRuns;
use super::{
    Hit, at, before, contains_ci, find, find_at, find_byte, find_byte2, is_digit, is_word,
    starts_with_ci,
};
use crate::rules::Rule;

fn is_b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

fn skip(b: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while i < b.len() && f(b[i]) {
        i += 1;
    }
    i
}

// ---------------------------------------------------------------- JWT

/// `eyJ…` header, payload and (possibly empty) signature, base64url and
/// dot-separated; the five-part JWE form is taken whole.
pub(crate) fn jwt(b: &[u8], out: &mut Vec<Hit>) {
    let mut from = 0;
    while let Some(p) = find_at(b, b"eyJ", 2, from) {
        from = p + 1;
        if is_b64url(before(b, p)) {
            continue;
        }
        let e1 = skip(b, p, is_b64url);
        if e1 - p < 10 || at(b, e1) != b'.' {
            continue;
        }
        let e2 = skip(b, e1 + 1, is_b64url);
        if e2 - (e1 + 1) < 2 || at(b, e2) != b'.' {
            continue;
        }
        let mut end = skip(b, e2 + 1, is_b64url);
        for _ in 0..2 {
            if at(b, end) == b'.' && is_b64url(at(b, end + 1)) {
                end = skip(b, end + 1, is_b64url);
            }
        }
        while at(b, end) == b'=' {
            end += 1;
        }
        out.push(Hit::new(Rule::Jwt, p, end));
        from = end;
    }
}

// ---------------------------------------------------------------- AWS

/// Access key ids (`AKIA`/`ASIA` + 16 uppercase letters or digits) and
/// secret access keys: a 40-character base64 word (mixed case, a digit, few
/// slashes) with `aws` or `secret` in the 80 bytes before it. Secret keys
/// stored under a key named like `aws_secret_access_key` are caught by name
/// (see `keys.rs`).
pub(crate) fn aws_key(inp: &Input, out: &mut Vec<Hit>) {
    let b = inp.b;
    let mut from = 0;
    while let Some(p) = find_byte(b, b'A', from) {
        from = p + 1;
        if p + 20 > b.len() {
            break;
        }
        let prefix = &b[p..p + 4];
        if (prefix != b"AKIA" && prefix != b"ASIA")
            || before(b, p).is_ascii_alphanumeric()
            || !b[p + 4..p + 20]
                .iter()
                .all(|c| c.is_ascii_uppercase() || is_digit(*c))
            || at(b, p + 20).is_ascii_alphanumeric()
        {
            continue;
        }
        out.push(Hit::new(Rule::AwsKey, p, p + 20));
        from = p + 20;
    }
    if b.len() >= 40 {
        aws_secret(b, inp.long_runs(), out);
    }
}

/// Runs of exactly 40 base64 characters: the pieces, between `-` and `_`,
/// of the long base64url runs (see `LongRuns`; every run of 32 bytes or
/// more is one of its stops).
fn aws_secret(b: &[u8], runs: &LongRuns, out: &mut Vec<Hit>) {
    for stop in runs.iter(b) {
        let mut s = stop.s;
        while s + 40 <= stop.r {
            let e = s + b[s..stop.r]
                .iter()
                .position(|&c| c == b'-' || c == b'_')
                .unwrap_or(stop.r - s);
            if e - s == 40 && at(b, e) != b'=' {
                aws_secret_at(b, s, e, out);
            }
            s = e + 1;
        }
    }
}

/// Whether the base64 run `s..e` (40 bytes) is a secret key.
fn aws_secret_at(b: &[u8], s: usize, e: usize, out: &mut Vec<Hit>) {
    let run = &b[s..e];
    let upper = run.iter().any(u8::is_ascii_uppercase);
    let lower = run.iter().any(u8::is_ascii_lowercase);
    let digit = run.iter().any(u8::is_ascii_digit);
    let punct = run.iter().filter(|c| matches!(c, b'/' | b'+')).count();
    if !(upper && lower && digit) || punct > 4 || run[0] == b'/' || run[39] == b'/' {
        return;
    }
    let ctx = &b[s.saturating_sub(80)..s];
    if contains_ci(ctx, b"aws") || contains_ci(ctx, b"secret") {
        out.push(Hit::new(Rule::AwsKey, s, e));
    }
}

// ---------------------------------------------------------------- Bearer / Basic

fn is_bearer_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

/// `Bearer <token>` and `Basic <base64>` (scheme in any case). The scheme is
/// kept; the credential becomes `[credential]`. A bearer token must look like
/// one (8+ characters with a digit or punctuation, or 20+), so `Bearer
/// authentication failed` is prose; a Basic credential must decode to
/// `user:password`, so `basic auth` is prose too.
pub(crate) fn bearer(b: &[u8], out: &mut Vec<Hit>) {
    let mut from = 0;
    while let Some(i) = find_byte2(b, b'b', b'B', from) {
        from = i + 1;
        if i + 7 >= b.len() {
            break;
        }
        if before(b, i).is_ascii_alphanumeric() {
            continue;
        }
        let rest = &b[i..];
        let (basic, kw) = if starts_with_ci(rest, b"bearer") {
            (false, 6)
        } else if starts_with_ci(rest, b"basic") {
            (true, 5)
        } else {
            continue;
        };
        let sp = i + kw;
        let ts = skip(b, sp, |c| c == b' ');
        if ts == sp || ts - sp > 3 {
            continue;
        }
        let found = if basic {
            basic_credential(b, ts)
        } else {
            bearer_token(b, ts)
        };
        match found {
            Some(end) => {
                out.push(Hit::new(Rule::Bearer, ts, end));
                from = end;
            }
            None => from = ts,
        }
    }
}

fn bearer_token(b: &[u8], ts: usize) -> Option<usize> {
    let mut end = skip(b, ts, is_bearer_char);
    // Sentence punctuation is not part of the token.
    while end > ts && b[end - 1] == b'.' {
        end -= 1;
    }
    if end > ts && at(b, end) == b'=' {
        end = skip(b, end, |c| c == b'=');
    }
    let tok = &b[ts..end];
    let strong = tok.len() >= 20
        || (tok.len() >= 8
            && tok
                .iter()
                .any(|c| is_digit(*c) || !c.is_ascii_alphanumeric()));
    strong.then_some(end)
}

fn basic_credential(b: &[u8], ts: usize) -> Option<usize> {
    let body_end = skip(b, ts, is_b64);
    let mut end = body_end;
    while end < b.len() && b[end] == b'=' && end - body_end < 2 {
        end += 1;
    }
    let body = &b[ts..body_end];
    if body.len() < 4 || is_word(at(b, end)) {
        return None;
    }
    // Decode and look for `user:password` without materialising it.
    let mut acc = 0u32;
    let mut bits = 0;
    let mut colon = false;
    for &c in body {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            let byte = (acc >> bits) as u8;
            acc &= (1 << bits) - 1;
            if byte < 0x20 || byte == 0x7f {
                return None;
            }
            colon |= byte == b':';
        }
    }
    colon.then_some(end)
}

// ---------------------------------------------------------------- PEM

/// `-----BEGIN … PRIVATE KEY-----` through the matching `-----END …-----`
/// (or the end of the string when the block is cut off), as one match.
pub(crate) fn private_key(b: &[u8], out: &mut Vec<Hit>) {
    let mut from = 0;
    // Anchored on the `G`: dashes are common in text, capitals rarer.
    while let Some(p) = find_at(b, b"-----BEGIN ", 7, from) {
        from = p + 1;
        let ls = p + 11;
        let Some(le) = find(b, b"-----", ls) else {
            break;
        };
        if le - ls > 60 || find(&b[ls..le], b"PRIVATE KEY", 0).is_none() {
            continue;
        }
        let end = match find(b, b"-----END ", le + 5) {
            Some(q) => match find(b, b"-----", q + 9) {
                Some(r) if r - (q + 9) <= 60 => r + 5,
                _ => b.len(),
            },
            None => b.len(),
        };
        out.push(Hit::new(Rule::PrivateKey, p, end));
        from = end;
    }
}

#[cfg(test)]
mod tests {
    use crate::detect::test_util::check_rule;
    use crate::rules::Rule;

    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

    #[test]
    fn jwts() {
        let r = Rule::Jwt;
        check_rule(r, JWT, "[jwt]");
        check_rule(r, &format!("token={JWT}&x=1"), "token=[jwt]&x=1");
        check_rule(r, &format!("\"{JWT}\"."), "\"[jwt]\".");
        check_rule(r, "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "[jwt]");
        check_rule(r, "eyJhbGciOiJIUzI1NiJ9 only", "eyJhbGciOiJIUzI1NiJ9 only");
        check_rule(
            r,
            "keyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.x",
            "keyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.x",
        );
        check_rule(r, "eyJ.short.x", "eyJ.short.x");
    }

    #[test]
    fn aws() {
        let r = Rule::AwsKey;
        check_rule(r, "key AKIAIOSFODNN7EXAMPLE used", "key [aws-key] used");
        check_rule(r, "ASIAY34FZKBOKMUTVV7A", "[aws-key]");
        check_rule(r, "AKIAIOSFODNN7EXAMPLEX", "AKIAIOSFODNN7EXAMPLEX");
        check_rule(r, "AKIAiosfodnn7example", "AKIAiosfodnn7example");
        check_rule(
            r,
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key = [aws-key]",
        );
        check_rule(
            r,
            "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY ./deploy.sh",
            "AWS_SECRET_ACCESS_KEY=[aws-key] ./deploy.sh",
        );
        // Right after `=` padding, or in a `-`/`_`-joined word.
        check_rule(
            r,
            "aws x==wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws x==[aws-key]",
        );
        check_rule(
            r,
            "secret v1_wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY-x",
            "secret v1_[aws-key]-x",
        );
        // More long runs than the shared walk stores.
        let many = "aws wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY ".repeat(20);
        check_rule(r, &many, &"aws [aws-key] ".repeat(20));
        // No context, or a commit hash.
        check_rule(
            r,
            "blob wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "blob wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        check_rule(
            r,
            "aws commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
            "aws commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        );
    }

    #[test]
    fn bearer_and_basic() {
        let r = Rule::Bearer;
        check_rule(
            r,
            "Authorization: Bearer abc123.def456-ghi",
            "Authorization: Bearer [credential]",
        );
        check_rule(
            r,
            "authorization: bearer AbCdEfGhIjKlMnOpQrStUv",
            "authorization: bearer [credential]",
        );
        check_rule(r, "BEARER tok_9f8e7d6c5b4a", "BEARER [credential]");
        check_rule(
            r,
            "Authorization: Basic dXNlcjpwYXNzd29yZA==",
            "Authorization: Basic [credential]",
        );
        check_rule(r, "basic YWRhOmh1bnRlcjI=;", "basic [credential];");
        check_rule(
            r,
            "Bearer authentication failed",
            "Bearer authentication failed",
        );
        check_rule(
            r,
            "Basic authentication is required",
            "Basic authentication is required",
        );
        check_rule(r, "bearer token expired.", "bearer token expired.");
        check_rule(r, "Bearer [credential]", "Bearer [credential]");
        check_rule(r, "BasicAuth enabled", "BasicAuth enabled");
    }

    #[test]
    fn pem() {
        let r = Rule::PrivateKey;
        check_rule(
            r,
            "key: -----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK==\n-----END RSA PRIVATE KEY-----\nok",
            "key: [private-key]\nok",
        );
        check_rule(
            r,
            "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXk\\n-----END OPENSSH PRIVATE KEY-----",
            "[private-key]",
        );
        check_rule(
            r,
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC (truncated",
            "[private-key]",
        );
        check_rule(
            r,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        );
        check_rule(
            r,
            "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
            "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
        );
    }
}
