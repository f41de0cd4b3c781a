//! Cipher suites 3 and 17: RAKP key exchange HMACs, session keys, integrity
//! (HMAC-SHA1-96 / HMAC-SHA256-128) and confidentiality (AES-CBC-128).

use aes::Aes128;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use super::packet::Algorithms;

/// The cipher suites this implementation speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CipherSuite {
    /// RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128.
    Suite3,
    /// RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128.
    Suite17,
}

impl CipherSuite {
    /// The suite for an `ipmi_cipher_suite` value.
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            3 => Some(CipherSuite::Suite3),
            17 => Some(CipherSuite::Suite17),
            _ => None,
        }
    }

    /// The cipher suite ID.
    pub fn id(self) -> u8 {
        match self {
            CipherSuite::Suite3 => 3,
            CipherSuite::Suite17 => 17,
        }
    }

    /// The algorithms proposed in the Open Session Request.
    pub fn algorithms(self) -> Algorithms {
        match self {
            CipherSuite::Suite3 => Algorithms {
                auth: 1,
                integrity: 1,
                confidentiality: 1,
            },
            CipherSuite::Suite17 => Algorithms {
                auth: 3,
                integrity: 4,
                confidentiality: 1,
            },
        }
    }

    /// HMAC of the concatenated parts with the suite's RAKP hash (full length).
    pub fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            CipherSuite::Suite3 => {
                let mut m = <Hmac<Sha1> as Mac>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
                parts.iter().for_each(|p| m.update(p));
                m.finalize().into_bytes().to_vec()
            }
            CipherSuite::Suite17 => {
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
                parts.iter().for_each(|p| m.update(p));
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    /// Length of the RAKP 2/3 key exchange authentication code.
    pub fn rakp_code_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 20,
            CipherSuite::Suite17 => 32,
        }
    }

    /// Length of the RAKP 4 integrity check value and of session AuthCodes.
    pub fn icv_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 12,
            CipherSuite::Suite17 => 16,
        }
    }
}

/// Constant-time comparison of two MACs.
pub fn mac_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Keys of an established session.
#[derive(Clone)]
pub struct SessionKeys {
    suite: CipherSuite,
    k1: Vec<u8>,
    aes_key: [u8; 16],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// Derive K1 and K2 from the session integrity key. The constants are 20 bytes
    /// for every suite (IPMI v2.0 13.32; ipmitool and pyghmi agree for SHA256 too).
    pub fn derive(suite: CipherSuite, sik: &[u8]) -> Self {
        let k1 = suite.hmac(sik, &[&[0x01; 20]]);
        let k2 = suite.hmac(sik, &[&[0x02; 20]]);
        let mut aes_key = [0u8; 16];
        aes_key.copy_from_slice(&k2[..16]);
        SessionKeys { suite, k1, aes_key }
    }

    /// The suite.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// The AuthCode over `signed`.
    pub fn auth_code(&self, signed: &[u8]) -> Vec<u8> {
        let mut c = self.suite.hmac(&self.k1, &[signed]);
        c.truncate(self.suite.icv_len());
        c
    }

    /// Encrypt a payload: IV, then AES-CBC-128 of data + pad (1, 2, ...) + pad length.
    pub fn encrypt(&self, data: &[u8], iv: [u8; 16]) -> Vec<u8> {
        let pad = (16 - (data.len() + 1) % 16) % 16;
        let mut plain = Vec::with_capacity(data.len() + pad + 1);
        plain.extend_from_slice(data);
        plain.extend((1..=pad as u8).collect::<Vec<_>>());
        plain.push(pad as u8);
        let enc = cbc::Encryptor::<Aes128>::new(&self.aes_key.into(), &iv.into())
            .encrypt_padded_vec_mut::<NoPadding>(&plain);
        let mut out = Vec::with_capacity(16 + enc.len());
        out.extend_from_slice(&iv);
        out.extend_from_slice(&enc);
        out
    }

    /// Decrypt a payload produced by [`encrypt`](Self::encrypt).
    pub fn decrypt(&self, payload: &[u8]) -> Result<Vec<u8>, &'static str> {
        if payload.len() < 32 || !payload.len().is_multiple_of(16) {
            return Err("encrypted payload length is not a whole number of AES blocks");
        }
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&payload[..16]);
        let mut plain = cbc::Decryptor::<Aes128>::new(&self.aes_key.into(), &iv.into())
            .decrypt_padded_vec_mut::<NoPadding>(&payload[16..])
            .map_err(|_| "AES-CBC decryption failed")?;
        let pad = *plain.last().ok_or("empty plaintext")? as usize;
        if pad + 1 > plain.len() || pad > 15 {
            return Err("bad confidentiality pad length");
        }
        plain.truncate(plain.len() - pad - 1);
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypt_decrypt_round_trip_all_lengths() {
        for suite in [CipherSuite::Suite3, CipherSuite::Suite17] {
            let k = SessionKeys::derive(suite, b"session integrity key");
            for n in 0..40 {
                let data: Vec<u8> = (0..n as u8).collect();
                let enc = k.encrypt(&data, [7; 16]);
                assert_eq!(enc.len() % 16, 0);
                assert_eq!(k.decrypt(&enc).unwrap(), data);
            }
            assert!(k.decrypt(&[0; 17]).is_err());
            assert_eq!(k.auth_code(b"x").len(), suite.icv_len());
        }
    }

    #[test]
    fn hmac_sha1_known_answer() {
        // RFC 2202 test case 2
        let mac = CipherSuite::Suite3.hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex::encode(mac), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        // RFC 4231 test case 2
        let mac = CipherSuite::Suite17.hmac(b"Jefe", &[b"what do ya want for nothing?"]);
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
