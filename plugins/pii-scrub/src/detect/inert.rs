//! Strings that no detector can match, recognised before the scan.
//!
//! Every telemetry event carries an `event_id` and an installation id (UUIDs)
//! and a `timestamp`. Their digits, dashes and capitals pass five to eight
//! prefilters, so the full scan used to run that many scanners on each, for
//! nothing: together about 40 % of the value scan. [`inert`] spots these
//! two shapes in a few dozen instructions and [`Ruleset::find_in`] skips the
//! scan for them.
//!
//! The skip is exact: for every string [`inert`] accepts, under any field
//! name, with every detector on and decoding on, the scan finds nothing.
//! Why, detector by detector (the `when` prefilter of each row in
//! `rules.rs`, then the scanner for those a shape passes):
//!
//! **UUID**: 36 bytes, hex digits of one case, `-` at 8, 13, 18 and 23.
//! No `@ . : / \ = % _` or space, four dashes.
//! * `email`, `url_password` need `@`; `ip` dots or colons; `jwt` two dots;
//!   `bearer` a space; `private_key` ten dashes; `home_dir` a slash; `mac`
//!   five dashes; decoding `%` or `\`: their prefilters fail.
//! * `secret_key`: its scanner runs only with `=`, `:` or `--`: none here.
//! * `aws_key`: `AKIA`/`ASIA` hold `K`, `I`, `S` (not hex); a secret key has
//!   40 bytes, the string 36.
//! * `token`: every vendor prefix holds a letter outside `a-f` (`g h k l p
//!   s x I M R …`).
//! * `generic_secret` needs upper- *and* lower-case letters. A UUID in mixed
//!   case often passes its checks (one random one in three), so only one
//!   case is accepted.
//! * `iban`: the compact form needs 15+ alphanumerics in a row (here at most
//!   12); the grouped form needs spaces.
//! * `credit_card`, `ssn`, `phone` start a number only where it is not
//!   glued: at the string's start, or after a `-` that follows a letter
//!   (a `-` after a digit is glued), and for `phone` only at the start (any
//!   `-` before is glued). From there the digit groups are the UUID's own:
//!   8 at the start (or fewer, ending at a letter); 4, 4, 4 and then up to
//!   12 later. A card needs 13-19 digits, alone or in groups of 3-6,
//!   ending at no letter: the groups before the last sum to at most 12, and
//!   the last either ends at a letter or has 12 digits (too long for a
//!   group, too short alone). An SSN needs exactly nine digits ending at no
//!   letter or digit: the sums at group ends are 4, 8, 12 or 8, 12, so nine
//!   falls inside a group, which then goes on. A phone from the start
//!   has a first group of 8, which no form takes (3-3-4, a trunk `0` with
//!   2-5 digits, or a `+`).
//!
//! **Timestamp**: `dddd-dd-dd`, `T`, `t` or a space, `dd:dd:dd`, optionally
//! `.` and 1-9 digits, then `Z`, `z` or `±dd:dd` (any digits: ranges are not
//! checked, the argument does not need them). No `@ / \ = % _ b B`, at most
//! one dot, two or three colons and never `::`, at most three dashes, no
//! two capitals in a row, at most 35 bytes.
//! * `email`, `url_password`, `ip` (three dots, seven colons or `::`),
//!   `jwt`, `bearer` (`b`/`B`), `private_key`, `home_dir`, `mac` (five
//!   colons or dashes, two dots) and decoding: their prefilters fail.
//! * `secret_key`: a `:` is an assignment only with a space or quote after
//!   it (here a digit); there is no `--` and no `-u `.
//! * `aws_key`: no `A`; shorter than 40 bytes.
//! * `token`: the prefixes with a separator have a letter before it (here a
//!   digit: the table has no row for it); `SK` and `AIza` need `S` or `A`;
//!   `dapi` needs 36 bytes.
//! * `generic_secret`: runs of `A-Z a-z 0-9 + / - _` break at `:` and `.`;
//!   the longest, `dddd-dd-ddTdd`, has 13 bytes (32 needed).
//! * `iban` needs two capitals before its check digits: `T` and `Z` are
//!   never adjacent.
//! * Numbers start only where not glued: at the year, at the minutes, the
//!   seconds and the offset's minutes (after `d:`, which only `ssn`
//!   allows) or, with a space, at the hour; every other digit run follows
//!   a letter, or a digit and `-`, `.` or `+`.
//!   `credit_card` (groups of 3-6 joined by spaces or dashes): the year's
//!   4, then a group of 2, which ends it: 6 digits at most.
//!   `phone`: from the year 4-2-2, then `T` (glued to a letter) or, with
//!   the space, the hour, which ends at `:` + digit (glued); 4-2-2 alone
//!   (8 digits) is no form: North American is 3-3-4, a trunk `0` needs
//!   10-11 digits, `00` 11-15. From the hour: 2 digits, glued.
//!   `ssn` (exactly nine digits joined by `-`, `.` or a space, ending at no
//!   letter and at no `-`, `.` or space + digit): from the year 4+2+2 = 8
//!   then `T`, or 10 with the hour; from the hour or any minutes 2 then `:`
//!   or the end. From the seconds, `ss.fffffff` with a 7-digit fraction is
//!   nine, ending at `Z` (a letter), at `-` + digit (refused) or at `+`:
//!   then it is not the dashed 3-2-4, the words before it are digits (no
//!   label), and a field named like `ssn` does not label it either because
//!   it is glued to an assignment (`d:` right before it; see
//!   `context::national_id_label`). The test below checks this case under
//!   every field name.
//!
//! [`Ruleset::find_in`]: crate::rules::Ruleset::find_in

/// Whether `b` is a shape no detector can match under any field name: a
/// canonical UUID in one case, or an RFC 3339 timestamp (see the module
/// doc for the exact rules and why).
#[inline]
pub(crate) fn inert(b: &[u8]) -> bool {
    match b.len() {
        36 => uuid(b),
        20..=35 => timestamp(b),
        _ => false,
    }
}

/// Byte classes for [`classes`]: a digit is 0, a hex letter [`LOWER`] or
/// [`UPPER`], anything else [`OTHER`].
const LOWER: u8 = 1;
const UPPER: u8 = 2;
const OTHER: u8 = 4;

static CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match c as u8 {
            b'0'..=b'9' => 0,
            b'a'..=b'f' => LOWER,
            b'A'..=b'F' => UPPER,
            _ => OTHER,
        };
        c += 1;
    }
    t
};

/// The classes of the bytes of `b`, or-ed together (0: all digits).
#[inline]
fn classes(b: &[u8]) -> u8 {
    b.iter().fold(0, |acc, &c| acc | CLASS[c as usize])
}

/// `8-4-4-4-12` hex digits joined by `-`, all letters lower-case or all
/// upper-case (36 bytes, checked by the caller).
fn uuid(b: &[u8]) -> bool {
    if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return false;
    }
    let seen = classes(&b[..8])
        | classes(&b[9..13])
        | classes(&b[14..18])
        | classes(&b[19..23])
        | classes(&b[24..]);
    seen & OTHER == 0 && seen != LOWER | UPPER
}

/// `YYYY-MM-DD(T|t| )HH:MM:SS[.d{1,9}](Z|z|+HH:MM|-HH:MM)` with any digits
/// (20-35 bytes, checked by the caller).
fn timestamp(b: &[u8]) -> bool {
    let head = b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':'
        && classes(&b[..4])
            | classes(&b[5..7])
            | classes(&b[8..10])
            | classes(&b[11..13])
            | classes(&b[14..16])
            | classes(&b[17..19])
            == 0;
    if !head {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if !(1..=9).contains(&(i - start)) {
            return false;
        }
    }
    match b[i..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => classes(&[h1, h2, m1, m2]) == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::inert;
    use crate::rules::{Rule, Ruleset};

    /// Field names beyond the bench sweep's ([`FIELD_NAMES`]): more whose
    /// context a detector reads (`ssn`, `mac`, `ip`, versions), more
    /// secret-like and header-like names, and the fields these shapes are
    /// found in.
    #[rustfmt::skip]
    const MORE_KEYS: &[&str] = &[
        "SSN", "customer_ssn", "itin", "taxpayer_id", "social_security", "MAC", "lladdr", "ipv4",
        "ipv6", "addr", "peer", "x_forwarded_for", "Version", "ver", "kernel_version", "phone",
        "phone_number", "secret", "token", "key", "api_key", "access_token", "client_secret",
        "private_key", "cookie", "proxy-authorization", "iban", "card", "credit_card", "email",
        // Where UUIDs and timestamps live.
        "event_id", "installation_id", "timestamp", "id", "ts", "date",
    ];

    use crate::testkit::{FIELD_NAMES, Rng};

    /// Every field name the tests scan under: the sweep's, then
    /// [`MORE_KEYS`].
    fn keys() -> Vec<&'static str> {
        [FIELD_NAMES, MORE_KEYS].concat()
    }

    /// Digit strings the number scanners take: SSNs (valid areas), phones
    /// (North American, trunk `0`, `00`), Luhn-valid card numbers, IBAN
    /// check digits, dotted-quad-like digits.
    const DANGEROUS: &[&str] = &[
        "219450912",
        "078051120",
        "123456789",
        "5551234567",
        "18005550199",
        "02079460958",
        "0123456789",
        "0612345678",
        "00442079460958",
        "4111111111111111",
        "5555555555554444",
        "378282246310005",
        "6011111111111117",
        "3530111333300000",
        "30569309025904",
        "4222222222222",
        "2223003122003222",
        "8937040044053201",
        "1921681120",
        "100001",
    ];

    /// A UUID in one case, biased towards what the number scanners look
    /// for: all-digit groups, digit runs that end at a letter, `e`/`E`,
    /// and the digits of SSNs, phones and cards laid across the groups.
    fn uuid(r: &mut Rng) -> String {
        let upper = r.below(2) == 0;
        let mut hex = [0u8; 32];
        for c in hex.iter_mut() {
            *c = b"0123456789abcdef"[r.below(16)];
        }
        // Group boundaries in the 32 hex digits.
        const GROUPS: [(usize, usize); 5] = [(0, 8), (8, 12), (12, 16), (16, 20), (20, 32)];
        for (s, e) in GROUPS {
            match r.below(7) {
                0 | 1 => hex[s..e]
                    .iter_mut()
                    .for_each(|c| *c = b'0' + r.below(10) as u8),
                2 => {
                    // Digits, then letters from a random point.
                    let k = s + r.below(e - s + 1);
                    hex[s..k]
                        .iter_mut()
                        .for_each(|c| *c = b'0' + r.below(10) as u8);
                    hex[k..e]
                        .iter_mut()
                        .for_each(|c| *c = b"abcdef"[r.below(6)]);
                }
                3 => hex[s..e]
                    .iter_mut()
                    .for_each(|c| *c = b"0123456789e"[r.below(11)]),
                4 => {
                    // A letter, then digits.
                    hex[s] = b"abcdef"[r.below(6)];
                    hex[s + 1..e]
                        .iter_mut()
                        .for_each(|c| *c = b'0' + r.below(10) as u8);
                }
                _ => {}
            }
        }
        if r.below(2) == 0 {
            // A dangerous number laid over the digits, across groups.
            let d = r.pick(DANGEROUS).as_bytes();
            let at = r.below(32);
            for (k, &c) in d.iter().enumerate() {
                if at + k < 32 {
                    hex[at + k] = c;
                }
            }
        }
        let mut s = String::with_capacity(36);
        for (k, c) in hex.iter().enumerate() {
            if matches!(k, 8 | 12 | 16 | 20) {
                s.push('-');
            }
            s.push(if upper { c.to_ascii_uppercase() } else { *c } as char);
        }
        s
    }

    /// A timestamp, biased towards boundary years and offsets, years with a
    /// trunk `0`, and seconds plus a 7-digit fraction that form a valid SSN
    /// (the one nine-digit run the shape can hold).
    fn timestamp(r: &mut Rng) -> String {
        let two = |r: &mut Rng| match r.below(4) {
            0 => r
                .pick(&[
                    "00", "01", "09", "10", "12", "23", "29", "31", "59", "60", "99",
                ])
                .to_string(),
            _ => r.digits(2),
        };
        let year = match r.below(3) {
            0 => r
                .pick(&[
                    "0000", "0001", "0044", "0099", "0612", "0020", "0555", "0999", "1000", "1969",
                    "1970", "1999", "2000", "2024", "2026", "2038", "4111", "5551", "9999",
                ])
                .to_string(),
            _ => r.digits(4),
        };
        let sep = r.pick(&["T", "T", "t", " "]);
        let (mut seconds, mut fraction) = (two(r), String::new());
        match r.below(6) {
            0 => {}
            1 | 2 => {
                // Seconds and fraction: nine digits, often a valid SSN.
                let nine = match r.below(2) {
                    0 => r
                        .pick(&["219450912", "078051120", "123456789", "555123456"])
                        .to_string(),
                    _ => r.digits(9),
                };
                seconds = nine[..2].to_string();
                fraction = format!(".{}", &nine[2..]);
            }
            _ => {
                let n = 1 + r.below(9);
                fraction = format!(".{}", r.digits(n));
            }
        }
        let zone = match r.below(5) {
            0 => r.pick(&["Z", "z"]).to_string(),
            1 => r
                .pick(&[
                    "+00:00", "-00:00", "+14:00", "-12:00", "+05:30", "-03:30", "+99:99", "-09:00",
                ])
                .to_string(),
            _ => format!("{}{}:{}", r.pick(&["+", "-"]), two(r), two(r)),
        };
        format!(
            "{year}-{}-{}{sep}{}:{}:{seconds}{fraction}{zone}",
            two(r),
            two(r),
            two(r),
            two(r)
        )
    }

    /// The full scan (no shortcut) finds nothing in `s` under any field
    /// name, with every detector on and decoding on. (No hit at all after
    /// the overlaps are resolved means no raw hit either: each detector
    /// alone finds nothing too.)
    #[track_caller]
    fn assert_nothing(rules: &Ruleset, s: &str, keys: &[&str], hits: &mut Vec<crate::Hit>) {
        for key in std::iter::once(None).chain(keys.iter().copied().map(Some)) {
            rules.scan_in(key, s, hits);
            assert!(hits.is_empty(), "{hits:?} in {s:?} under {key:?}");
        }
    }

    #[test]
    fn generated_uuids_and_timestamps_match_no_detector() {
        let rules = Ruleset::default();
        let mut hits = Vec::new();
        let mut r = Rng(0x1d5e_ed00_7a11_5afe);
        let keys = keys();
        for n in 0..CASES {
            let s = if n % 2 == 0 {
                uuid(&mut r)
            } else {
                timestamp(&mut r)
            };
            assert!(inert(s.as_bytes()), "not recognised: {s:?}");
            assert_nothing(&rules, &s, &keys, &mut hits);
        }
    }

    /// Generated strings per shape and kind (each scanned bare and under
    /// every name in [`keys`]).
    const CASES: usize = 6000;

    #[test]
    fn near_misses_are_exact_when_accepted() {
        // Valid shapes with one to three bytes changed, cut or extended:
        // whatever the recogniser still accepts must match nothing.
        let rules = Ruleset::default();
        let mut hits = Vec::new();
        let mut r = Rng(0x0dd5_1de5_0f5a_fe11);
        const BYTES: &[u8] = b"0123456789aeAEfFgG-:.+ TtZz_@/=%";
        let (mut accepted, mut total) = (0, 0);
        let keys = keys();
        for n in 0..40_000 {
            let mut s = if n % 2 == 0 {
                uuid(&mut r)
            } else {
                timestamp(&mut r)
            }
            .into_bytes();
            for _ in 0..1 + r.below(3) {
                let i = r.below(s.len());
                match r.below(8) {
                    0 => {
                        s.remove(i);
                    }
                    1 => s.insert(i, BYTES[r.below(BYTES.len())]),
                    _ => s[i] = BYTES[r.below(BYTES.len())],
                }
            }
            let s = String::from_utf8(s).expect("ASCII");
            total += 1;
            if inert(s.as_bytes()) {
                accepted += 1;
                let k = r.below(keys.len() - 4);
                assert_nothing(&rules, &s, &keys[k..k + 4], &mut hits);
            }
        }
        // A fair share of the mutants is still accepted (4395 of 40000).
        assert!(accepted * 20 > total, "{accepted} of {total} accepted");
    }

    #[test]
    fn accepted_and_refused_shapes() {
        for s in [
            "550e8400-e29b-41d4-a716-446655440000",
            "550E8400-E29B-41D4-A716-446655440000",
            "00000000-0000-0000-0000-000000000000",
            "2026-11-22T10:00:00.123Z",
            "2024-01-15T10:30:00Z",
            "2024-01-15t10:30:00z",
            "2024-01-15 10:30:00+01:00",
            "2024-01-15T10:30:00.123456789-05:00",
            "2024-01-15T10:30:21.9450912+01:00",
        ] {
            assert!(inert(s.as_bytes()), "{s}");
        }
        for s in [
            // Mixed case, braces, no dashes, wrong group lengths, not hex.
            "550e8400-e29b-41d4-A716-446655440000",
            "{550e8400-e29b-41d4-a716-446655440000}",
            "550e8400e29b41d4a716446655440000",
            "550e840-0e29b-41d4-a716-446655440000",
            "550e8400-e29b-41d4-a716-44665544000g",
            // No zone, ten fraction digits, an empty fraction, `+0100`,
            // `+01`, a zone after `Z`, a `/` date, a comma fraction.
            "2024-01-15T10:30:00",
            "2024-01-15T10:30:00.1234567890Z",
            "2024-01-15T10:30:00.Z",
            "2024-01-15T10:30:00+0100",
            "2024-01-15T10:30:00+01",
            "2024-01-15T10:30:00Z+01:00",
            "2024/01/15T10:30:00Z",
            "2024-01-15T10:30:00,123Z",
            "2024-01-15_10:30:00Z",
        ] {
            assert!(!inert(s.as_bytes()), "{s}");
        }
    }

    #[test]
    fn mixed_case_uuids_can_be_secrets() {
        // Why one case only: a UUID in mixed case passes `generic_secret`'s
        // checks now and then, so skipping it would lose matches.
        let s = "7C5A6FB9-4EAB-9760-1234-a6789D92eC52";
        assert!(!inert(s.as_bytes()));
        let mut hits = Vec::new();
        Ruleset::default().find(s, &mut hits);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].rule, Rule::GenericSecret);
        // Random hex in random case: about one in three is taken (663 of
        // these 2000).
        let mut r = Rng(0x00c0_ffee_0000_0001);
        let found = (0..2000)
            .filter(|_| {
                let s: String = (0..36)
                    .map(|k| match k {
                        8 | 13 | 18 | 23 => '-',
                        _ => b"0123456789abcdefABCDEF"[r.below(22)] as char,
                    })
                    .collect();
                assert!(
                    !inert(s.as_bytes())
                        || !s.bytes().any(|c| c.is_ascii_uppercase())
                        || !s.bytes().any(|c| c.is_ascii_lowercase())
                );
                Ruleset::default().find(&s, &mut hits);
                !hits.is_empty()
            })
            .count();
        assert!(found > 500, "{found}");
    }
}
