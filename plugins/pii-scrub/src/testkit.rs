//! Test support shared by the unit tests, the generated corpus
//! (`tests/corpus/generated.rs`) and the bench sweep
//! (`benches/support/sweep.rs`), which include this file by path: one
//! seeded generator and one list of field names that the detectors' context
//! checks read.
#![allow(dead_code)] // each includer uses a part

/// xorshift64*: small, seeded, reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    pub fn chars(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n).map(|_| *self.pick(alphabet) as char).collect()
    }

    pub fn digits(&mut self, n: usize) -> String {
        self.chars(b"0123456789", n)
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Field names, bare or under which values are scanned: names the context
/// checks read (versions, addresses, national ids, MACs), secret-like and
/// header-like names, escaped and PII-holding keys.
#[rustfmt::skip]
pub const FIELD_NAMES: &[&str] = &[
    "message", "version", "driver_version", "osVersion", "ip", "client_ip", "remote_addr", "host",
    "X-Forwarded-For", "ssn", "social_security_number", "tax_id", "tin", "mac", "mac_address",
    "hwaddr", "password", "db_password", "apiKey", "token_count", "aws_secret_access_key",
    "awsSecretKey", "Authorization", "set-cookie", "note", "a.b", "[0]", "auth", "session",
    "firmware_version", "tool_version", "hardware_address", "x-api-key", "max_tokens", "password_hash",
    "secret_name", "ada@example.com", "10.0.0.1", "/home/ada/x", "é",
];
