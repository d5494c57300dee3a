//! A seeded sweep for comparing two builds match for match: about 1.9
//! million random strings built from PII fragments, look-alikes, escapes,
//! labels and base64 runs, each scanned bare and under a field name that
//! the context checks read (a quarter of them by each detector alone as
//! well), and random nested events through the whole plugin. Every hit
//! (string, rule, span) and every output event is written to a file; two
//! builds agree when their files are identical.

use serde_json::{Map, Value, json};
use std::io::Write;
use wraith_plugin::testing::Harness;
use wraith_plugin_pii_scrub::{PiiScrub, Rule, Ruleset};

/// Strings per fragment count.
const STRINGS: usize = 1_920_000;
/// Events through the plugin.
const EVENTS: usize = 60_000;

#[rustfmt::skip]
const FRAGS: &[&str] = &[
    // Separators and punctuation the scanners key on.
    " ", "  ", "\n", "\t", ",", ", ", ";", ":", ": ", "::", ".", "-", "--", "_", "/", "\\", "\\\\",
    "=", " = ", "'", "\"", "(", ")", "[", "]", "{", "}", "<", ">", "|", "&", "?", "#", "+", "*", "@",
    "%", "$", "~", "é", "電", "\r\n",
    // Digits and numbers.
    "0", "1", "4", "7", "9", "00", "12", "123", "555", "2024", "4111", "0044", "8080", "255",
    "1970-01-01", "12:30:45", "2026-11-22T10:00:00.123Z", "v1.4.2", "1.4.2-rc.1", "10.2.14.7",
    "3.11.7", "219450912", "840 ms",
    // PII and secrets, whole.
    "ada@example.com", "ada.lovelace42@mail.example.net", "10.0.0.1", "192.168.1.20", "203.0.113.7:443",
    "2001:db8::1", "fe80::1%eth0", "[2001:db8::1]:443", "::ffff:192.0.2.1", "4111 1111 1111 1111",
    "4111-1111-1111-1111", "4111111111111111", "378282246310005", "219-45-0912", "219 45 0912",
    "+44 20 7946 0958", "(555) 123-4567", "555-123-4567", "1-800-555-0199", "020 7946 0958",
    "06-12345678", "DE89370400440532013000", "GB82 WEST 1234 5698 7654 32",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "xoxb-1234-5678-abcdefghij", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789AB",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "SK0123456789abcdef0123456789abcdef",
    "AIzaSyA1234567890abcdefghijklmnopqrstu", "glpat-abcdefghij0123456789", "npm_abcdefghijklmnopqrstuvwxyz0123456789",
    "Bearer abc123def456ghi789jkl", "Basic YWRhOmh1bnRlcjI=", "bearer ", "Basic ",
    "postgres://app:Hunt3r2024@db.internal:5432/prod", "https://ada@example.com/x", "://", "u:p@h",
    "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----\nMIIE",
    "/home/ada/src", "/Users/grace/", "C:\\Users\\alan\\", "C:\\\\Users\\\\alan", "/home/", "/mnt/home/x",
    "00:1A:2B:3C:4D:5E", "00-1a-2b-3c-4d-5e", "001a.2b3c.4d5e", "0024.9735.1180",
    "q8Rt2vLw0ZbX9kPm4sNc7yHj1uEa5GdF3oTiWxYz", "Zk3/Qm8vT1xLr+9NpA2sWc6HdYb4FgJe0uKiOt7R",
    "a7Kq2Lm9Xw4Rt8Vb3Np6Yc1Hs5Gd0JfTe", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9fG==",
    // Fragments of the above, and look-alikes.
    "ada", "example", ".com", "@example.com", "10.0", ".0.1", "4111 ", "1111 ", "-45-", "+1", "+44",
    "(555) ", "DE89", "GB82 ", "WEST ", "eyJ", "AKIA", "ASIA", "ghp_", "sk-", "SK", "xox", "hf_",
    "k9Xq", "Q8rT", "Zb", "==", "550e8400-e29b-41d4-a716-446655440000", "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39",
    "sha256:", "sha512-", "integrity ", "h1:", "_ZN4core3ptr", "17h0123456789abcdefE", "ConnectionError",
    "aGVsbG8gd29ybGQsIGhvdyBhcmUgeW91IHRvZGF5Pw", "migrateiq", "/usr/lib/python3.11/site-packages/",
    "File \"", "\", line 88, in connect", "git@github.com:", "icon@2x.png", "user@localhost",
    // Escapes.
    "%40", "%2F", "%3A", "%2B", "%20", "%2540", "+", "\\u0040", "\\/", "\\\"", "\\n", "\\\\", "%",
    "redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fu%3D", "email=ada%40example.org",
    // Labels and context words.
    "password=", "password: ", "passwd ", "secret=", "token=", "token: ", "api_key=", "apiKey\": \"",
    "--password ", "--token ", "--key ", "key=", "pw=", "tok=", "-u ", "curl ", "--user ", "Authorization: ",
    "Cookie: ", "DB_PASSWORD = ", "aws ", "aws_secret_access_key=", "SSN: ", "ssn=", "social security ",
    "tax id ", "version ", "ver ", "firmware ", "driver_version=", "build ", "kernel ", "ip ", "ip=",
    "host ", "from ", "peer ", "addr ", "X-Forwarded-For: ", "mac ", "hwaddr ", "ether ", "v", "$", "${X}",
    "<secret>", "[redacted]", "***", "null", "true", "iban ",
];

#[path = "../../src/testkit.rs"]
mod testkit;
use testkit::{FIELD_NAMES as KEYS, Rng};

impl Rng {
    /// A random string: fragments, sometimes a random base64 run.
    fn text(&mut self, max_frags: usize) -> String {
        let mut s = String::new();
        for _ in 0..self.below(max_frags + 1) {
            if self.below(24) == 0 {
                const B64: &[u8] =
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_";
                let n = 20 + self.below(110);
                s.extend((0..n).map(|_| B64[self.below(B64.len())] as char));
            } else {
                let frag: &&str = self.pick(FRAGS);
                s.push_str(frag);
            }
        }
        s
    }
}

/// A random nested event: objects and arrays, values from [`Rng::text`],
/// keys from [`KEYS`] or random text.
fn event(r: &mut Rng, depth: usize) -> Value {
    let mut m = Map::new();
    for _ in 0..1 + r.below(5) {
        // No empty keys: the SDK's paths cannot name one (an edit under
        // `""` is refused), which is not what this sweep compares.
        let key = if r.below(6) == 0 {
            let k = r.text(3);
            if k.is_empty() { "k".to_string() } else { k }
        } else {
            r.pick(KEYS).to_string()
        };
        let v = match r.below(if depth < 3 { 8 } else { 6 }) {
            0 => json!(r.next() % 100_000),
            1 => {
                Value::String((*r.pick(&["4111111111111111", "219450912", "1234567890123"])).into())
            }
            2 => json!(r.below(2) == 0),
            3..=5 => Value::String(r.text(12)),
            6 => Value::Array((0..r.below(4)).map(|_| Value::String(r.text(6))).collect()),
            _ => event(r, depth + 1),
        };
        m.insert(key, v);
    }
    Value::Object(m)
}

/// Write every hit and every output event to `path`.
pub fn run(path: &str) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create the dump"));
    let mut r = Rng(0x5eed_0000_d00d_f00d);
    let rules = [Ruleset::default(), Ruleset::default().with_decoding(false)];
    // Each detector alone too: with all of them on, a higher-ranked match
    // can hide a change in a lower-ranked one.
    let alone: Vec<Ruleset> = Rule::ALL.iter().map(|&r| Ruleset::only(r)).collect();
    let mut hits = Vec::new();
    let mut total = 0usize;
    for n in 0..STRINGS {
        let s = r.text(if n % 4 == 0 { 60 } else { 16 });
        let key = if n % 3 == 0 {
            None
        } else {
            Some(*r.pick(KEYS))
        };
        for (k, rules) in rules.iter().enumerate() {
            if k == 1 && n % 8 != 0 {
                continue;
            }
            rules.find_in(key, &s, &mut hits);
            total += hits.len();
            for h in &hits {
                writeln!(out, "{n} {k} {} {} {}", h.rule.name(), h.start, h.end).expect("write");
            }
        }
        if n % 4 == 1 {
            for rules in &alone {
                rules.find_in(key, &s, &mut hits);
                total += hits.len();
                for h in &hits {
                    writeln!(out, "{n} alone {} {} {}", h.rule.name(), h.start, h.end)
                        .expect("write");
                }
            }
        }
    }
    let mut h = Harness::<PiiScrub>::new(json!({})).expect("default config");
    for chunk in 0..EVENTS / 16 {
        let batch: Vec<Value> = (0..16).map(|_| event(&mut r, 0)).collect();
        for (k, p) in h.run(batch).into_iter().enumerate() {
            writeln!(out, "event {} {}", chunk * 16 + k, p.event).expect("write");
        }
    }
    out.flush().expect("flush");
    println!("sweep: {STRINGS} strings, {total} hits, {EVENTS} events written to {path}");
}
