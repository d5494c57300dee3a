//! E-mail addresses, IP addresses, MAC addresses and credentials in URLs.

use super::context::{self, FieldName};
use super::{
    DigitRuns, Hit, Input, at, before, find, find_byte, find_byte2, is_digit, is_hex, is_word,
};
use crate::rules::Rule;

// ---------------------------------------------------------------- e-mail

fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')
}

/// `local@domain.tld`: the domain needs a dot and an alphabetic TLD of two
/// letters or more, so `user@localhost`, `pkg@1.2.3`, `image@sha256:…` and
/// `@handle` are not addresses. `git@host` (the SSH remote user) and retina
/// asset names (`icon@2x.png`) are left alone.
pub(crate) fn email(b: &[u8], out: &mut Vec<Hit>) {
    let mut from = 0;
    while let Some(at_pos) = find_byte(b, b'@', from) {
        from = at_pos + 1;
        let mut start = at_pos;
        while start > 0 && is_local(b[start - 1]) {
            start -= 1;
        }
        while start < at_pos && matches!(b[start], b'.' | b'-' | b'+') {
            start += 1;
        }
        if start == at_pos || at_pos - start > 64 {
            continue;
        }
        let mut end = at_pos + 1;
        while end < b.len() && is_domain(b[end]) {
            end += 1;
        }
        while end > at_pos + 1 && matches!(b[end - 1], b'.' | b'-') {
            end -= 1;
        }
        let domain = &b[at_pos + 1..end];
        if !valid_domain(domain) || &b[start..at_pos] == b"git" || is_retina(domain) {
            continue;
        }
        out.push(Hit::new(Rule::Email, start, end));
        from = end;
    }
}

fn valid_domain(d: &[u8]) -> bool {
    if d.len() < 4 || d.len() > 253 {
        return false;
    }
    let mut labels = 0;
    let mut tld: &[u8] = &[];
    for label in d.split(|&c| c == b'.') {
        if label.is_empty()
            || label.len() > 63
            || label[0] == b'-'
            || label[label.len() - 1] == b'-'
        {
            return false;
        }
        labels += 1;
        tld = label;
    }
    labels >= 2 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic)
}

/// `2x.png`, `3x.webp`: an asset-scale suffix, not a domain.
fn is_retina(d: &[u8]) -> bool {
    d.len() > 3 && is_digit(d[0]) && d[1] == b'x' && d[2] == b'.'
}

// ---------------------------------------------------------------- IPv4

/// IPv4 and IPv6 addresses.
pub(crate) fn ip(i: &Input, out: &mut Vec<Hit>) {
    if i.f.maybe_v4() {
        ipv4(i.b, &i.runs, i.key, out);
    }
    if i.f.maybe_v6() {
        ipv6(i.b, out);
    }
}

/// Dotted quads with octets ≤ 255. Not when part of a longer dotted run
/// (`1.3.6.1.4.1`), glued to a word (`v1.2.3.4`, `python3.1.2.3`),
/// followed by a pre-release tag (`1.2.3.4-beta`) or in a version context
/// (`firmware 4.12.3.9`, a field named `driver_version`; see
/// [`context::is_version`]). The port stays: `10.0.0.1:8080` → `[ip]:8080`.
pub(crate) fn ipv4(b: &[u8], runs: &DigitRuns, key: &FieldName<'_>, out: &mut Vec<Hit>) {
    if !runs.reaches(b, 4) {
        return;
    }
    let mut from = 0;
    // Four octets: at least four digits in the span.
    while let Some(i) = runs.next_with(b, from, 4) {
        from = i + 1;
        let p = before(b, i);
        if !(is_word(p) || p == b'.')
            && let Some(end) = parse_v4(b, i)
        {
            let n = at(b, end);
            let glued = is_word(n)
                || (n == b'.' && is_digit(at(b, end + 1)))
                || (n == b'-' && at(b, end + 1).is_ascii_alphabetic());
            if !glued && !context::is_version(b, i, key.get()) {
                out.push(Hit::new(Rule::Ip, i, end));
            }
            if !glued {
                from = end;
            }
        }
    }
}

/// Parse four octets at `i`; the end of the last one.
fn parse_v4(b: &[u8], i: usize) -> Option<usize> {
    let mut pos = i;
    for part in 0..4 {
        let start = pos;
        let mut v = 0u32;
        while pos < b.len() && is_digit(b[pos]) && pos - start < 3 {
            v = v * 10 + (b[pos] - b'0') as u32;
            pos += 1;
        }
        if pos == start || v > 255 || is_digit(at(b, pos)) {
            return None;
        }
        if part < 3 {
            if at(b, pos) != b'.' {
                return None;
            }
            pos += 1;
        }
    }
    Some(pos)
}

// ---------------------------------------------------------------- IPv6

/// Full and compressed IPv6 (`2001:db8::1`, `fe80::1%eth0`, `::1`,
/// `::ffff:10.0.0.1`, `[2001:db8::1]:443` → `[ip]:443`). The candidate is a
/// maximal run of hex digits and colons that is not glued to a word; it must
/// hold eight groups, or fewer with one `::`, and at least one decimal digit
/// (so `Add::add` or `dead::beef` in a stack trace are not addresses).
/// Times (`12:34:56`) and MACs (six groups) do not have the shape.
pub(crate) fn ipv6(b: &[u8], out: &mut Vec<Hit>) {
    let mut from = 0;
    while let Some(c) = find_byte(b, b':', from) {
        let mut s = c;
        while s > 0 && (is_hex(b[s - 1]) || b[s - 1] == b':') {
            s -= 1;
        }
        let mut e = c + 1;
        while e < b.len() && (is_hex(b[e]) || b[e] == b':' || b[e] == b'.') {
            e += 1;
        }
        from = e;
        // Sentence punctuation after an address: `… at fe80::1.` / `::1:`.
        while e > s && b[e - 1] == b'.' {
            e -= 1;
        }
        if e >= s + 2 && b[e - 1] == b':' && b[e - 2] != b':' {
            e -= 1;
        }
        let p = before(b, s);
        let n = at(b, e);
        if is_word(p) || p == b'.' || is_word(n) || !valid_v6(&b[s..e]) {
            continue;
        }
        let mut start = s;
        let mut end = e;
        if n == b'%' {
            let mut z = e + 1;
            while z < b.len() && (b[z].is_ascii_alphanumeric() || b[z] == b'_') {
                z += 1;
            }
            if z > e + 1 {
                end = z;
            }
        }
        if p == b'[' && at(b, end) == b']' {
            start -= 1;
            end += 1;
        }
        out.push(Hit::new(Rule::Ip, start, end));
        from = from.max(end);
    }
}

fn valid_v6(run: &[u8]) -> bool {
    if run.len() < 3 || !run.iter().any(|c| is_digit(*c)) {
        return false;
    }
    let dbl = find(run, b"::", 0);
    let (left, right) = match dbl {
        Some(d) => {
            if find(run, b"::", d + 1).is_some() {
                return false; // a second `::` (or `:::`)
            }
            (&run[..d], &run[d + 2..])
        }
        None => (run, &[][..]),
    };
    let Some(nl) = count_groups(left, dbl.is_none() || right.is_empty()) else {
        return false;
    };
    let Some(nr) = count_groups(right, true) else {
        return false;
    };
    match dbl {
        Some(_) => nl + nr <= 7,
        None => nl == 8,
    }
}

/// Count groups in a `:`-separated list of 1-4 hex digits; an IPv4 tail
/// counts as two groups when `v4_tail_ok`.
fn count_groups(part: &[u8], v4_tail_ok: bool) -> Option<usize> {
    if part.is_empty() {
        return Some(0);
    }
    let mut n = 0;
    let groups = part.split(|&c| c == b':');
    let total = part.iter().filter(|&&c| c == b':').count() + 1;
    for (i, g) in groups.enumerate() {
        if g.contains(&b'.') {
            if i + 1 != total || !v4_tail_ok {
                return None;
            }
            let end = parse_v4(g, 0)?;
            if end != g.len() {
                return None;
            }
            n += 2;
        } else {
            if g.is_empty() || g.len() > 4 || !g.iter().all(|c| is_hex(*c)) {
                return None;
            }
            n += 1;
        }
    }
    Some(n)
}

// ---------------------------------------------------------------- MAC

/// `00:1A:2B:3C:4D:5E`, `00-1a-2b-3c-4d-5e` (one separator throughout) and
/// Cisco's `001a.2b3c.4d5e`; not inside a longer colon/dash run (IPv6,
/// UUIDs) and not times (three groups). The Cisco form in decimal digits
/// only (`0024.9735.1180`) needs a label (`mac`, `hwaddr`, `learned`, a
/// field named `mac_address`, …): unlabelled it is more likely a number.
pub(crate) fn mac(i: &Input, out: &mut Vec<Hit>) {
    let f = &i.f;
    mac_scan(i.b, i.key, out, f.colons >= 5 || f.dashes >= 5, f.dots >= 2);
}

fn mac_scan(b: &[u8], key: &FieldName<'_>, out: &mut Vec<Hit>, separated: bool, dotted: bool) {
    // Anchor on the first separator (`00:` / `001a.`) rather than every byte.
    let starts_ok = |i: usize| !is_hex(before(b, i)) && !is_word(before(b, i));
    if separated {
        let mut j = 2;
        while let Some(next) = find_byte2(b, b':', b'-', j) {
            j = next;
            let i = j - 2;
            let p = before(b, i);
            if starts_ok(i)
                && let Some(end) = mac_colon(b, i)
            {
                let sep = b[j];
                let glued_before = p == sep && is_hex(before(b, i - 1));
                let n = at(b, end);
                let glued_after = is_word(n) || (n == sep && is_hex(at(b, end + 1)));
                if !glued_before && !glued_after {
                    out.push(Hit::new(Rule::Mac, i, end));
                    j = end + 2;
                    continue;
                }
            }
            j += 1;
        }
    }
    if dotted {
        let mut j = 4;
        while let Some(d) = find_byte(b, b'.', j) {
            j = d + 1;
            let Some(i) = d.checked_sub(4) else {
                continue;
            };
            if before(b, i) == b'.' || !starts_ok(i) {
                continue;
            }
            if let Some(end) = mac_dotted(b, i, key) {
                let n = at(b, end);
                let glued_after = is_word(n) || (n == b'.' && is_hex(at(b, end + 1)));
                if !glued_after {
                    out.push(Hit::new(Rule::Mac, i, end));
                    j = end;
                }
            }
        }
    }
}

fn mac_colon(b: &[u8], i: usize) -> Option<usize> {
    if i + 17 > b.len() {
        return None;
    }
    let sep = b[i + 2];
    if sep != b':' && sep != b'-' {
        return None;
    }
    for g in 0..6 {
        let o = i + g * 3;
        if !is_hex(b[o]) || !is_hex(b[o + 1]) || (g < 5 && b[o + 2] != sep) {
            return None;
        }
    }
    Some(i + 17)
}

fn mac_dotted(b: &[u8], i: usize, key: &FieldName<'_>) -> Option<usize> {
    if i + 14 > b.len() {
        return None;
    }
    for g in 0..3 {
        let o = i + g * 5;
        if !b[o..o + 4].iter().all(|c| is_hex(*c)) || (g < 2 && b[o + 4] != b'.') {
            return None;
        }
    }
    // Four-digit decimal groups (`2024.0115.1030`) are more likely numbers.
    if b[i..i + 14].iter().all(|c| is_digit(*c) || *c == b'.')
        && !context::mac_label(b, i, key.get())
    {
        return None;
    }
    Some(i + 14)
}

// ---------------------------------------------------------------- URL credentials

/// `scheme://user:pass@host` → `scheme://[password]@host`. The user-info is
/// everything before the last `@` of the authority and must hold a `:` with
/// a non-empty password; `https://user@host` (no password) is left to the
/// e-mail rule (which catches it when the host has a dot).
pub(crate) fn url_password(b: &[u8], out: &mut Vec<Hit>) {
    let mut from = 0;
    while let Some(p) = find(b, b"://", from) {
        from = p + 3;
        let mut s = p;
        while s > 0 && (b[s - 1].is_ascii_alphanumeric() || matches!(b[s - 1], b'+' | b'.' | b'-'))
        {
            s -= 1;
        }
        if s == p || !b[s].is_ascii_alphabetic() {
            continue;
        }
        let a = p + 3;
        let mut e = a;
        while e < b.len()
            && !matches!(
                b[e],
                b'/' | b'?'
                    | b'#'
                    | b' '
                    | b'\t'
                    | b'\n'
                    | b'\r'
                    | b'"'
                    | b'\''
                    | b'<'
                    | b'>'
                    | b'`'
            )
        {
            e += 1;
        }
        let auth = &b[a..e];
        let Some(at_rel) = auth.iter().rposition(|&c| c == b'@') else {
            continue;
        };
        let info = &auth[..at_rel];
        if info.is_empty() || info[0] == b'[' || at_rel + 1 == auth.len() {
            continue;
        }
        let Some(colon) = info.iter().position(|&c| c == b':') else {
            continue;
        };
        if colon + 1 == info.len() {
            continue;
        }
        out.push(Hit::new(Rule::UrlPassword, a, a + at_rel));
        from = e;
    }
}

#[cfg(test)]
mod tests {
    use crate::detect::test_util::{check_rule, clean};
    use crate::rules::Rule;

    fn email(i: &str, o: &str) {
        check_rule(Rule::Email, i, o);
    }
    fn ip(i: &str, o: &str) {
        check_rule(Rule::Ip, i, o);
    }
    fn mac(i: &str, o: &str) {
        check_rule(Rule::Mac, i, o);
    }
    fn url(i: &str, o: &str) {
        check_rule(Rule::UrlPassword, i, o);
    }

    #[test]
    fn emails() {
        email("mail ada@example.com now", "mail [email] now");
        email("a@b.io,c.d@e.org.", "[email],[email].");
        email("<Ada.Lovelace+tag@sub.mail.example.co.uk>", "<[email]>");
        email(
            "mailto:first_last-1@corp-mail.example.net?subject=x",
            "mailto:[email]?subject=x",
        );
        email("\"ada@example.com\"", "\"[email]\"");
        email("user@localhost", "user@localhost");
        email("@handle and @app.route('/')", "@handle and @app.route('/')");
        email("npm i left-pad@1.3.0", "npm i left-pad@1.3.0");
        email("nginx@sha256:abcdef", "nginx@sha256:abcdef");
        email("git@github.com:org/repo.git", "git@github.com:org/repo.git");
        email("icon@2x.png", "icon@2x.png");
        email("a@b.c", "a@b.c");
        email("x@-bad.com", "x@-bad.com");
    }

    #[test]
    fn ipv4() {
        ip("from 10.0.0.1 to 192.168.100.254", "from [ip] to [ip]");
        ip("upstream 10.0.0.1:8080 failed", "upstream [ip]:8080 failed");
        ip("client=203.0.113.7,", "client=[ip],");
        ip("net 172.16.0.0/12.", "net [ip]/12.");
        ip("http://8.8.8.8/dns", "http://[ip]/dns");
        ip("v1.2.3.4", "v1.2.3.4");
        ip("oid 1.3.6.1.4.1.311", "oid 1.3.6.1.4.1.311");
        ip("256.1.1.1 and 1.2.3", "256.1.1.1 and 1.2.3");
        ip("1.2.3.4-beta", "1.2.3.4-beta");
        ip("Chrome/120.0.6099.109", "Chrome/120.0.6099.109");
        ip("10.0.0.1a", "10.0.0.1a");
    }

    #[test]
    fn ipv6() {
        ip("bind fe80::1 ok", "bind [ip] ok");
        ip("lo ::1", "lo [ip]");
        ip("[2001:db8::1]:443", "[ip]:443");
        ip("http://[::1]:8080/x", "http://[ip]:8080/x");
        ip("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "[ip]");
        ip("link fe80::1ff:fe23:4567:890a%eth0 up", "link [ip] up");
        ip("mapped ::ffff:192.0.2.128.", "mapped [ip].");
        ip("net 2001:db8::/32", "net [ip]/32");
        ip("at 12:34:56", "at 12:34:56");
        ip(
            "std::vec::Vec and Add::add, dead::beef",
            "std::vec::Vec and Add::add, dead::beef",
        );
        ip("u32::MAX f64::EPSILON", "u32::MAX f64::EPSILON");
        ip("00:1A:2B:3C:4D:5E", "00:1A:2B:3C:4D:5E");
        ip("1:2:3", "1:2:3");
        ip("a:::1", "a:::1");
    }

    #[test]
    fn macs() {
        mac("eth0 00:1A:2B:3C:4D:5E up", "eth0 [mac] up");
        mac("hw=00-1a-2b-3c-4d-5e;", "hw=[mac];");
        mac("cisco 001a.2b3c.4d5e", "cisco [mac]");
        mac("ff:ff:ff:ff:ff:ff", "[mac]");
        mac(
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        );
        mac("00:11:22:33:44:55:66:77", "00:11:22:33:44:55:66:77");
        mac("12:34:56", "12:34:56");
        mac(
            "550e8400-e29b-41d4-a716-446655440000",
            "550e8400-e29b-41d4-a716-446655440000",
        );
        mac("00:1A:2B-3C:4D:5E", "00:1A:2B-3C:4D:5E");
    }

    #[test]
    fn url_passwords() {
        url(
            "postgres://ada:hunter2@db:5432/app",
            "postgres://[password]@db:5432/app",
        );
        url(
            "redis://:s3cr3t@cache.internal",
            "redis://[password]@cache.internal",
        );
        url(
            "https://u:p%40ss@host/x?y#z",
            "https://[password]@host/x?y#z",
        );
        url("amqp://guest:p@ss@rabbit/", "amqp://[password]@rabbit/");
        url("https://example.com/a@b", "https://example.com/a@b");
        url("https://user@example.com/", "https://user@example.com/");
        url("https://user:@example.com/", "https://user:@example.com/");
        url("https://[password]@host", "https://[password]@host");
        url("://x:y@z", "://x:y@z");
    }

    #[test]
    fn network_controls() {
        for s in [
            "550e8400-e29b-41d4-a716-446655440000",
            "2024-01-15T10:30:00.123Z",
            "https://example.com/path?q=1#frag",
            "1.2.3",
            "python 3.11.7",
        ] {
            clean(s);
        }
    }
}
