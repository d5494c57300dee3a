//! Keyed pseudonyms: HMAC-SHA256 from RustCrypto's `hmac` over `sha2`. The
//! key is absorbed once at config time; each pseudonym clones that state.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A keyed hasher.
#[derive(Clone)]
pub(crate) struct Keyed {
    mac: Hmac<Sha256>,
}

impl Keyed {
    pub(crate) fn new(key: &[u8]) -> Keyed {
        Keyed {
            // HMAC takes a key of any length (longer ones are hashed first).
            mac: Hmac::new_from_slice(key).expect("HMAC accepts any key length"),
        }
    }

    /// The full HMAC-SHA256 of `msg`.
    pub(crate) fn mac(&self, msg: &[u8]) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(msg);
        m.finalize().into_bytes().into()
    }

    /// Append the first 16 hex digits of the HMAC of `msg`.
    pub(crate) fn push_tag(&self, msg: &[u8], out: &mut String) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for b in &self.mac(msg)[..8] {
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc4231_vectors() {
        // Test case 2.
        let k = Keyed::new(b"Jefe");
        assert_eq!(
            hex(&k.mac(b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        let k = Keyed::new(&[0xaa; 131]);
        assert_eq!(
            hex(&k.mac(b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        let mut s = String::new();
        Keyed::new(b"Jefe").push_tag(b"what do ya want for nothing?", &mut s);
        assert_eq!(s, "5bdcc146bf60754e");
    }
}
