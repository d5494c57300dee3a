//! Payment cards, US social security numbers, phone numbers and IBANs.

use super::context;
use super::{DigitRuns, Hit, Input, at, before, is_digit, is_word};
use crate::rules::Rule;

// ---------------------------------------------------------------- cards

const MAX_GROUPS: usize = 10;

/// 13-19 digits, unseparated or in groups of 3-6 joined by single spaces or
/// dashes (one kind throughout), with a card-network prefix (Visa, Mastercard,
/// Amex, Discover, Diners, JCB, UnionPay, Maestro) and a valid Luhn check
/// digit. The longest valid prefix of a run of groups is taken, so a trailing
/// `… 1111 exp 12/25` does not hide the card.
pub(crate) fn credit_card(b: &[u8], runs: &DigitRuns, out: &mut Vec<Hit>) {
    if !runs.reaches(b, 12) {
        return;
    }
    let mut from = 0;
    // No card number has fewer than 12 digits.
    while let Some(i) = runs.next_with(b, from, 12) {
        from = i + 1;
        let p = before(b, i);
        let glued = is_word(p)
            || matches!(p, b'.' | b'+')
            || (matches!(p, b'-' | b'/' | b':') && is_digit(before(b, i - 1)));
        if !glued && let Some(end) = card_at(b, i) {
            out.push(Hit::new(Rule::CreditCard, i, end));
            from = end;
        }
    }
}

fn card_at(b: &[u8], i: usize) -> Option<usize> {
    let mut digits = [0u8; 24];
    let mut n = 0;
    // (end position, digits so far, group length) per group.
    let mut groups = [(0usize, 0usize, 0usize); MAX_GROUPS];
    let mut ng = 0;
    let mut sep = 0u8;
    let mut pos = i;
    loop {
        let gs = pos;
        while is_digit(at(b, pos)) {
            if n == digits.len() {
                return None;
            }
            digits[n] = b[pos] - b'0';
            n += 1;
            pos += 1;
        }
        groups[ng] = (pos, n, pos - gs);
        ng += 1;
        let c = at(b, pos);
        let len = pos - gs;
        if ng < MAX_GROUPS
            && (3..=6).contains(&len)
            && matches!(c, b' ' | b'-')
            && (sep == 0 || sep == c)
            && is_digit(at(b, pos + 1))
        {
            sep = c;
            pos += 1;
            continue;
        }
        break;
    }
    for k in (1..=ng).rev() {
        let (end, count, last_len) = groups[k - 1];
        if !(13..=19).contains(&count) {
            continue;
        }
        if k > 1 && !(1..=6).contains(&last_len) {
            continue;
        }
        if k == ng {
            let n = at(b, end);
            if is_word(n) || (matches!(n, b'.' | b',') && is_digit(at(b, end + 1))) {
                continue;
            }
        }
        let d = &digits[..count];
        if card_prefix(d) && luhn(d) {
            return Some(end);
        }
    }
    None
}

fn card_prefix(d: &[u8]) -> bool {
    let len = d.len();
    let n2 = (d[0] * 10 + d[1]) as u32;
    let n4 = n2 * 100 + (d[2] * 10 + d[3]) as u32;
    match d[0] {
        4 => matches!(len, 13 | 16 | 19),
        2 => (2221..=2720).contains(&n4) && len == 16,
        3 => match n2 {
            34 | 37 => len == 15,
            35 => (16..=19).contains(&len),
            30 | 36 | 38 | 39 => (14..=19).contains(&len),
            _ => false,
        },
        5 => match n2 {
            51..=55 => len == 16,
            50 | 56..=59 => (16..=19).contains(&len),
            _ => false,
        },
        6 => (16..=19).contains(&len),
        _ => false,
    }
}

fn luhn(d: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &x) in d.iter().rev().enumerate() {
        let mut v = x as u32;
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

// ---------------------------------------------------------------- SSN

/// US SSNs. The dashed form `123-45-6789` anywhere; nine digits in any
/// grouping (`219450912`, `219 45 0912`, `219.45.0912`) only when labelled
/// (`SSN:`, `ssn=`, `social security number`, `tax id`, a field named
/// `ssn`, …; see [`context::national_id_label`]). Area 000, 666 and 9xx,
/// group 00 and serial 0000 are refused, and so is anything glued to more
/// digits or dashes (dates, ISBNs, phone numbers).
pub(crate) fn ssn(inp: &Input, out: &mut Vec<Hit>) {
    let b = inp.b;
    if !inp.runs.reaches(b, 9) {
        return;
    }
    let mut from = 0;
    while let Some(i) = inp.runs.next_with(b, from, 9) {
        from = i + 1;
        let p = before(b, i);
        if is_word(p) || (matches!(p, b'-' | b'.' | b'+' | b'/') && is_digit(before(b, i - 1))) {
            continue;
        }
        let Some((digits, end, dashed)) = nine_digits(b, i) else {
            continue;
        };
        if valid_ssn(&digits) && (dashed || context::national_id_label(b, i, inp.key.get())) {
            out.push(Hit::new(Rule::Ssn, i, end));
            from = end;
        }
    }
}

/// Nine digits from `i` in groups joined by single spaces, dashes or dots,
/// not followed by more: the digits, the end, and whether the grouping is
/// the dashed 3-2-4.
fn nine_digits(b: &[u8], i: usize) -> Option<([u8; 9], usize, bool)> {
    let mut d = [0u8; 9];
    let mut n = 0;
    let mut pos = i;
    let mut seps = [0u8; 8];
    let mut ns = 0;
    loop {
        while is_digit(at(b, pos)) {
            if n == 9 {
                return None;
            }
            d[n] = b[pos];
            n += 1;
            pos += 1;
        }
        if n == 9 {
            break;
        }
        let c = at(b, pos);
        if matches!(c, b' ' | b'-' | b'.') && is_digit(at(b, pos + 1)) && ns < seps.len() {
            seps[ns] = c;
            ns += 1;
            pos += 1;
        } else {
            return None;
        }
    }
    let n = at(b, pos);
    if is_word(n) || (matches!(n, b'-' | b'.' | b'/' | b' ') && is_digit(at(b, pos + 1))) {
        return None;
    }
    let dashed = ns == 2
        && seps[0] == b'-'
        && seps[1] == b'-'
        && at(b, i + 3) == b'-'
        && at(b, i + 6) == b'-';
    Some((d, pos, dashed))
}

fn valid_ssn(d: &[u8; 9]) -> bool {
    let area = &d[..3];
    area != b"000" && area != b"666" && area[0] != b'9' && &d[3..5] != b"00" && &d[5..] != b"0000"
}

// ---------------------------------------------------------------- phone

#[derive(Clone, Copy, Default)]
struct Group {
    start: usize,
    end: usize,
    len: usize,
    paren: bool,
    /// The separator before this group (0 for none).
    sep: u8,
}

/// Phone numbers in international `+` form (8-15 digits in groups, e.g.
/// `+44 20 7946 0958`, `+1 (555) 123-4567`, `+4915112345678`), North American
/// forms (`(555) 123-4567`, `555-123-4567`, `555.123.4567`, `1-555-123-4567`)
/// and European national forms with a trunk `0` (`020 7946 0958`,
/// `01 23 45 67 89`, `06-12345678`, `0044 20 7946 0958`).
///
/// Deliberately not matched: unseparated digit strings without `+` (ids),
/// anything glued to letters or to `:`/`.`/`-`/`/` + digit (times, dates,
/// versions, UUIDs, IPs), and national numbers without a trunk prefix.
pub(crate) fn phone(b: &[u8], runs: &DigitRuns, out: &mut Vec<Hit>) {
    if !runs.reaches(b, 8) {
        return;
    }
    let mut from = 0;
    // Every phone number the classifier takes has at least 8 digits.
    while let Some(r) = runs.next_with(b, from, 8) {
        from = r + 1;
        // The number may open with `(`, `+` or `+(` just before the digits.
        let mut i = r;
        if before(b, i) == b'(' {
            i -= 1;
        }
        if before(b, i) == b'+' {
            i -= 1;
        }
        for start in [i, r] {
            let p = before(b, start);
            let glued = is_word(p)
                || matches!(p, b'.' | b'-' | b'+' | b'_' | b'/' | b'#' | b'$' | b'%')
                || (p == b':' && is_digit(before(b, start - 1)));
            if !glued && let Some(end) = phone_at(b, start) {
                out.push(Hit::new(Rule::Phone, start, end));
                from = end;
                break;
            }
            if i == r {
                break;
            }
        }
    }
}

fn phone_at(b: &[u8], i: usize) -> Option<usize> {
    let mut pos = i;
    let plus = b[i] == b'+';
    if plus {
        pos += 1;
        if !(is_digit(at(b, pos)) || at(b, pos) == b'(') {
            return None;
        }
    }
    let mut groups = [Group::default(); MAX_GROUPS];
    let mut ng = 0;
    let mut sep = 0u8;
    loop {
        let mut q = pos;
        let paren = at(b, q) == b'(';
        if paren {
            q += 1;
        }
        let gs = q;
        while is_digit(at(b, q)) {
            q += 1;
        }
        let len = q - gs;
        if len == 0 || len > 15 || (paren && at(b, q) != b')') {
            break;
        }
        if paren {
            q += 1;
        }
        groups[ng] = Group {
            start: gs,
            end: q,
            len,
            paren,
            sep,
        };
        ng += 1;
        pos = q;
        if ng == MAX_GROUPS {
            break;
        }
        let c = at(b, pos);
        let next = at(b, pos + 1);
        if matches!(c, b' ' | b'-' | b'.') && (is_digit(next) || next == b'(') {
            sep = c;
            pos += 1;
        } else if (paren && is_digit(c)) || c == b'(' {
            sep = 0;
        } else {
            break;
        }
    }
    if ng == 0 {
        return None;
    }
    for k in (1..=ng).rev() {
        let g = &groups[..k];
        let end = g[k - 1].end;
        let n = at(b, end);
        let glued = is_word(n)
            || (matches!(n, b'.' | b'-' | b'/' | b':' | b',') && is_digit(at(b, end + 1)))
            || n == b'%'
            || n == b'+';
        if !glued && classify(b, g, plus) {
            return Some(end);
        }
    }
    None
}

fn classify(b: &[u8], g: &[Group], plus: bool) -> bool {
    if plus {
        // `(0)` after the country code is a trunk hint, not a digit.
        let digits: usize = g
            .iter()
            .filter(|x| !(x.paren && x.len == 1 && b[x.start] == b'0'))
            .map(|x| x.len)
            .sum();
        if g.len() == 1 {
            return (10..=15).contains(&digits);
        }
        return (8..=15).contains(&digits) && g[0].len <= 5 && g.iter().all(|x| x.len <= 10);
    }
    let total: usize = g.iter().map(|x| x.len).sum();
    // North American: [1] (555) 123-4567 / 555-123-4567 / 555.123.4567.
    let mut na = g;
    if na.len() == 4 && na[0].len == 1 && b[na[0].start] == b'1' && !na[0].paren {
        na = &na[1..];
    }
    if na.len() == 3 && na[0].len == 3 && na[1].len == 3 && na[2].len == 4 {
        if na[1].paren || na[2].paren {
            return false;
        }
        if na[0].paren {
            return na[2].sep != 0;
        }
        return na[1].sep != 0 && na[1].sep == na[2].sep;
    }
    // European national numbers with a trunk 0 (or the 00 international prefix).
    if g.len() >= 2 && b[g[0].start] == b'0' && (2..=5).contains(&g[0].len) {
        let intl = at(b, g[0].start + 1) == b'0';
        let ok_len = if intl {
            (11..=15).contains(&total)
        } else {
            (10..=11).contains(&total)
        };
        let seps_ok = g[1..].iter().all(|x| !x.paren && x.sep == g[1].sep) && g[1].sep != 0;
        return ok_len && seps_ok && g.iter().all(|x| x.len >= 2);
    }
    false
}

// ---------------------------------------------------------------- IBAN

/// Country code → IBAN length.
fn iban_len(c0: u8, c1: u8) -> Option<usize> {
    const TABLE: &[(&[u8; 2], usize)] = &[
        (b"AD", 24),
        (b"AE", 23),
        (b"AL", 28),
        (b"AT", 20),
        (b"AZ", 28),
        (b"BA", 20),
        (b"BE", 16),
        (b"BG", 22),
        (b"BH", 22),
        (b"BR", 29),
        (b"BY", 28),
        (b"CH", 21),
        (b"CR", 22),
        (b"CY", 28),
        (b"CZ", 24),
        (b"DE", 22),
        (b"DK", 18),
        (b"DO", 28),
        (b"EE", 20),
        (b"EG", 29),
        (b"ES", 24),
        (b"FI", 18),
        (b"FO", 18),
        (b"FR", 27),
        (b"GB", 22),
        (b"GE", 22),
        (b"GI", 23),
        (b"GL", 18),
        (b"GR", 27),
        (b"GT", 28),
        (b"HR", 21),
        (b"HU", 28),
        (b"IE", 22),
        (b"IL", 23),
        (b"IQ", 23),
        (b"IS", 26),
        (b"IT", 27),
        (b"JO", 30),
        (b"KW", 30),
        (b"KZ", 20),
        (b"LB", 28),
        (b"LC", 32),
        (b"LI", 21),
        (b"LT", 20),
        (b"LU", 20),
        (b"LV", 21),
        (b"MC", 27),
        (b"MD", 24),
        (b"ME", 22),
        (b"MK", 19),
        (b"MR", 27),
        (b"MT", 31),
        (b"MU", 30),
        (b"NL", 18),
        (b"NO", 15),
        (b"PK", 24),
        (b"PL", 28),
        (b"PS", 29),
        (b"PT", 25),
        (b"QA", 29),
        (b"RO", 24),
        (b"RS", 22),
        (b"SA", 24),
        (b"SC", 31),
        (b"SE", 24),
        (b"SI", 19),
        (b"SK", 24),
        (b"SM", 27),
        (b"ST", 25),
        (b"SV", 28),
        (b"TL", 23),
        (b"TN", 24),
        (b"TR", 26),
        (b"UA", 29),
        (b"VA", 22),
        (b"VG", 24),
        (b"XK", 20),
    ];
    TABLE
        .iter()
        .find(|(cc, _)| cc[0] == c0 && cc[1] == c1)
        .map(|(_, n)| *n)
}

/// IBANs of a known country with that country's length, compact
/// (`DE89370400440532013000`) or in groups of four (`GB82 WEST 1234 5698
/// 7654 32`), uppercase, with a valid ISO 7064 mod-97 checksum.
pub(crate) fn iban(b: &[u8], runs: &DigitRuns, out: &mut Vec<Hit>) {
    let mut from = 2;
    while let Some(r) = runs.next_after_capitals(b, from) {
        from = r + 1;
        let i = r - 2;
        if i + 15 > b.len() {
            break;
        }
        let head = b[i].is_ascii_uppercase()
            && b[i + 1].is_ascii_uppercase()
            && is_digit(b[i + 2])
            && is_digit(b[i + 3])
            && !before(b, i).is_ascii_alphanumeric();
        let Some(want) = head.then(|| iban_len(b[i], b[i + 1])).flatten() else {
            continue;
        };
        let mut buf = [0u8; 34];
        let mut n = 0;
        let mut pos = i;
        let spaced = at(b, i + 4) == b' ';
        while n < want {
            let c = at(b, pos);
            if is_digit(c) || c.is_ascii_uppercase() {
                buf[n] = c;
                n += 1;
                pos += 1;
            } else if spaced && c == b' ' && n % 4 == 0 && at(b, pos + 1).is_ascii_alphanumeric() {
                pos += 1;
            } else {
                break;
            }
        }
        if n == want && !at(b, pos).is_ascii_alphanumeric() && mod97(&buf[..n]) == 1 {
            out.push(Hit::new(Rule::Iban, i, pos));
            from = pos;
        }
    }
}

fn mod97(s: &[u8]) -> u32 {
    let mut r = 0u32;
    for &c in s[4..].iter().chain(&s[..4]) {
        r = if is_digit(c) {
            (r * 10 + (c - b'0') as u32) % 97
        } else {
            (r * 100 + (c - b'A' + 10) as u32) % 97
        };
    }
    r
}

#[cfg(test)]
mod tests {
    use crate::detect::test_util::check_rule;
    use crate::rules::Rule;

    fn card(i: &str, o: &str) {
        check_rule(Rule::CreditCard, i, o);
    }
    fn ssn(i: &str, o: &str) {
        check_rule(Rule::Ssn, i, o);
    }

    #[test]
    fn labelled_ssns() {
        ssn("SSN: 219450912", "SSN: [ssn]");
        ssn("ssn=219 45 0912;", "ssn=[ssn];");
        ssn(
            "social security number 219.45.0912",
            "social security number [ssn]",
        );
        ssn("Tax ID: 219-450-912", "Tax ID: [ssn]");
        ssn("{\"ssn\": \"219450912\"}", "{\"ssn\": \"[ssn]\"}");
        // Unlabelled, or invalid, or longer: kept.
        ssn("order 219450912", "order 219450912");
        ssn("SSN: 919450912", "SSN: 919450912");
        ssn("SSN: 2194509123", "SSN: 2194509123");
        ssn("ssn: 219 45 0912 34", "ssn: 219 45 0912 34");
    }
    fn phone(i: &str, o: &str) {
        check_rule(Rule::Phone, i, o);
    }
    fn iban(i: &str, o: &str) {
        check_rule(Rule::Iban, i, o);
    }

    #[test]
    fn cards() {
        card("visa 4111111111111111 ok", "visa [card] ok");
        card("4111 1111 1111 1111", "[card]");
        card("4111-1111-1111-1111", "[card]");
        card("amex 3782 822463 10005.", "amex [card].");
        card("mc 5555555555554444, exp 12/25", "mc [card], exp 12/25");
        card("4111 1111 1111 1111 12/25", "[card] 12/25");
        card("2223003122003222", "[card]");
        card("discover 6011111111111117", "discover [card]");
        card("jcb 3530111333300000", "jcb [card]");
        card("diners 30569309025904", "diners [card]");
        card("visa13 4222222222222", "visa13 [card]");
        // Luhn failures, wrong prefixes, ids and timestamps.
        card("4111111111111112", "4111111111111112");
        card("1234567812345670", "1234567812345670");
        card("ts 1700000000000", "ts 1700000000000");
        card("id 41111111111111110000", "id 41111111111111110000");
        card("4111 1111 1111 1111 1111", "[card] 1111");
        card("x4111111111111111", "x4111111111111111");
        card("1.4111111111111111", "1.4111111111111111");
        card("4111-1111 1111-1111", "4111-1111 1111-1111");
    }

    #[test]
    fn ssns() {
        ssn("SSN 123-45-6789.", "SSN [ssn].");
        ssn("ssn:078-05-1120", "ssn:[ssn]");
        ssn(
            "000-12-3456 666-12-3456 900-12-3456",
            "000-12-3456 666-12-3456 900-12-3456",
        );
        ssn("123-00-4567 123-45-0000", "123-00-4567 123-45-0000");
        ssn("978-3-16-148410-0", "978-3-16-148410-0");
        ssn("1-123-45-6789", "1-123-45-6789");
        ssn("123-45-67890", "123-45-67890");
        ssn("a123-45-6789", "a123-45-6789");
    }

    #[test]
    fn phones() {
        phone("call +44 20 7946 0958 now", "call [phone] now");
        phone("+1 (555) 123-4567", "[phone]");
        phone("+1-555-123-4567", "[phone]");
        phone("tel:+4915112345678", "tel:[phone]");
        phone("+33 1 23 45 67 89", "[phone]");
        phone("+44 (0) 20 7946 0958", "[phone]");
        phone("(555) 123-4567", "[phone]");
        phone("(555)123-4567", "[phone]");
        phone("555-123-4567", "[phone]");
        phone("555.123.4567", "[phone]");
        phone("1-800-555-0199", "[phone]");
        phone("phone=555 123 4567;", "phone=[phone];");
        phone("020 7946 0958", "[phone]");
        phone("01 23 45 67 89", "[phone]");
        phone("06-12345678", "[phone]");
        phone("0044 20 7946 0958", "[phone]");
        phone("call 555-123-4567 2 times", "call [phone] 2 times");
    }

    #[test]
    fn not_phones() {
        for s in [
            "2024-01-15T10:30:00+01:00",
            "2024-01-15 10:30:00.123",
            "15/01/2024 10:30",
            "01.02.2024",
            "1234567890",
            "order 123456789012",
            "v10.4.0-beta.1",
            "192.168.1.1",
            "550e8400-e29b-41d4-a716-446655440000",
            "978-3-16-148410-0",
            "1.2.840.113549",
            "took 1500 ms, 1 234 567 rows",
            "555-123-4567-89",
            "UTC+0100",
            "+12",
            "555-123.4567",
            "pid 12345 port 8080",
            "123-45-6789",
        ] {
            phone(s, s);
        }
    }

    #[test]
    fn ibans() {
        iban("DE89370400440532013000", "[iban]");
        iban(
            "iban: GB82 WEST 1234 5698 7654 32, thanks",
            "iban: [iban], thanks",
        );
        iban("FR1420041010050500013M02606", "[iban]");
        iban("NL91 ABNA 0417 1643 00", "[iban]");
        iban("CH93 0076 2011 6238 5295 7 ok", "[iban] ok");
        // Bad checksum, wrong length, lowercase, glued.
        iban("DE89370400440532013001", "DE89370400440532013001");
        iban("DE8937040044053201300", "DE8937040044053201300");
        iban("de89370400440532013000", "de89370400440532013000");
        iban("XDE89370400440532013000", "XDE89370400440532013000");
        iban("DE893704004405320130001", "DE893704004405320130001");
    }
}
