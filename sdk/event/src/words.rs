//! Eight bytes at a time: the word reads and exact byte masks that the line
//! writer, the edit check and the path writer share.

/// `0x01` in every byte.
pub(crate) const ONES: u64 = 0x0101_0101_0101_0101;

/// The eight bytes of `s` from `at`, as a little-endian word.
#[inline]
pub(crate) fn word(s: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(s[at..at + 8].try_into().expect("eight bytes"))
}

/// The bytes of `s` from `at` (fewer than eight), padded with `pad`.
#[inline]
pub(crate) fn padded(s: &[u8], at: usize, pad: u8) -> u64 {
    let mut w = [pad; 8];
    for (k, &b) in s[at..].iter().enumerate() {
        w[k] = b;
    }
    u64::from_le_bytes(w)
}

/// The high bit of every zero byte of `x`, and of no other: no borrow
/// crosses a byte, so the lowest set bit marks the first zero byte.
#[inline]
pub(crate) fn zero_bytes(x: u64) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// The high bit of every byte of `w` that is `b`, exactly.
#[inline]
pub(crate) fn bytes_equal(w: u64, b: u8) -> u64 {
    zero_bytes(w ^ (ONES * b as u64))
}

/// The high bit of every byte of `w` below 0x20 (a control byte), exactly.
#[inline]
pub(crate) fn control_bytes(w: u64) -> u64 {
    zero_bytes(w & (ONES * 0xE0))
}

/// The next number of a seeded xorshift sequence, for tests that build
/// random inputs.
#[cfg(test)]
pub(crate) fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Up to five of `pieces`, drawn at random and joined, for tests that
/// build random paths and keys.
#[cfg(test)]
pub(crate) fn joined(pieces: &[&str], seed: &mut u64) -> String {
    let mut s = String::new();
    for _ in 0..*seed % 6 {
        s.push_str(pieces[(xorshift(seed) % pieces.len() as u64) as usize]);
    }
    *seed = seed.wrapping_add(1);
    s
}

#[cfg(test)]
mod tests {
    use super::{bytes_equal, control_bytes, padded, word, zero_bytes};

    /// Every byte value at every place of a word, next to every other.
    #[test]
    fn masks_mark_exactly_the_bytes_asked_for() {
        for a in 0..=255u8 {
            for b in [0u8, 1, 0x1f, 0x20, b'.', b'"', 0x7f, 0x80, 0xff] {
                for at in 0..8 {
                    let mut s = [b; 8];
                    s[at] = a;
                    let w = word(&s, 0);
                    let expect = |f: &dyn Fn(u8) -> bool| {
                        (0..8).fold(0u64, |m, k| m | (f(s[k]) as u64) << (8 * k + 7))
                    };
                    assert_eq!(zero_bytes(w), expect(&|x| x == 0));
                    assert_eq!(bytes_equal(w, b'.'), expect(&|x| x == b'.'));
                    assert_eq!(control_bytes(w), expect(&|x| x < 0x20));
                }
            }
        }
        assert_eq!(padded(b"abc", 1, b'z'), u64::from_le_bytes(*b"bczzzzzz"));
    }
}
