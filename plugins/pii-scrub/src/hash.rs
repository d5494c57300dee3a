//! HMAC-SHA256 (RFC 2104) over `sha2`, with the padded key blocks absorbed
//! once so a pseudonym costs two compressions plus the message.

use sha2::{Digest, Sha256};

const BLOCK: usize = 64;

/// A keyed hasher.
#[derive(Clone)]
pub(crate) struct Keyed {
    inner: Sha256,
    outer: Sha256,
}

impl Keyed {
    pub(crate) fn new(key: &[u8]) -> Keyed {
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let ipad = block.map(|b| b ^ 0x36);
        let opad = block.map(|b| b ^ 0x5c);
        Keyed {
            inner: Sha256::new_with_prefix(ipad),
            outer: Sha256::new_with_prefix(opad),
        }
    }

    /// The full HMAC-SHA256 of `msg`.
    pub(crate) fn mac(&self, msg: &[u8]) -> [u8; 32] {
        let inner = self.inner.clone().chain_update(msg).finalize();
        self.outer.clone().chain_update(inner).finalize().into()
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
