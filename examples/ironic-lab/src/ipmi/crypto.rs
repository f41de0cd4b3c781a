//! The BMC side of RMCP+ cipher suite 3: RAKP-HMAC-SHA1 authentication,
//! HMAC-SHA1-96 integrity and AES-CBC-128 confidentiality (IPMI v2.0 §13.28-13.32).

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use hmac::{Hmac, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;
type AesCbcEnc = cbc::Encryptor<aes::Aes128>;
type AesCbcDec = cbc::Decryptor<aes::Aes128>;

/// Length of an RAKP-HMAC-SHA1 key exchange code.
pub const RAKP_CODE_LEN: usize = 20;
/// Length of an HMAC-SHA1-96 integrity code (also the RAKP 4 check value).
pub const ICV_LEN: usize = 12;

/// HMAC-SHA1 over the concatenation of `parts`.
pub fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = <HmacSha1 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Constant-time comparison of two codes.
pub fn codes_equal(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The user key `Kuid`: the password, zero padded to 20 bytes (longer ones are refused
/// when the BMC is configured).
pub fn user_key(password: &str) -> [u8; 20] {
    let mut k = [0u8; 20];
    let p = password.as_bytes();
    let n = p.len().min(20);
    k[..n].copy_from_slice(&p[..n]);
    k
}

/// What both sides mix into the RAKP codes.
#[derive(Clone, Debug)]
pub struct Rakp<'a> {
    /// Remote console session id.
    pub console_sid: u32,
    /// Managed system (BMC) session id.
    pub bmc_sid: u32,
    /// Remote console random number (RAKP 1).
    pub console_rand: [u8; 16],
    /// Managed system random number (RAKP 2).
    pub bmc_rand: [u8; 16],
    /// Managed system GUID.
    pub bmc_guid: [u8; 16],
    /// The role byte of RAKP 1, as sent (with the name-only lookup bit).
    pub role: u8,
    /// The user name of RAKP 1.
    pub user: &'a [u8],
}

impl Rakp<'_> {
    fn user_len(&self) -> [u8; 1] {
        [self.user.len() as u8]
    }

    /// The key exchange authentication code of RAKP 2.
    pub fn rakp2_code(&self, kuid: &[u8]) -> [u8; 20] {
        hmac_sha1(
            kuid,
            &[
                &self.console_sid.to_le_bytes(),
                &self.bmc_sid.to_le_bytes(),
                &self.console_rand,
                &self.bmc_rand,
                &self.bmc_guid,
                &[self.role],
                &self.user_len(),
                self.user,
            ],
        )
    }

    /// The code the console must send in RAKP 3.
    pub fn rakp3_code(&self, kuid: &[u8]) -> [u8; 20] {
        hmac_sha1(
            kuid,
            &[
                &self.bmc_rand,
                &self.console_sid.to_le_bytes(),
                &[self.role],
                &self.user_len(),
                self.user,
            ],
        )
    }

    /// The session integrity key (`Kg` = `Kuid`: no BMC key is set).
    pub fn sik(&self, kg: &[u8]) -> [u8; 20] {
        hmac_sha1(
            kg,
            &[
                &self.console_rand,
                &self.bmc_rand,
                &[self.role],
                &self.user_len(),
                self.user,
            ],
        )
    }

    /// The integrity check value of RAKP 4 (HMAC-SHA1-96 under the SIK).
    pub fn rakp4_icv(&self, sik: &[u8]) -> [u8; ICV_LEN] {
        let full = hmac_sha1(
            sik,
            &[
                &self.console_rand,
                &self.bmc_sid.to_le_bytes(),
                &self.bmc_guid,
            ],
        );
        let mut out = [0u8; ICV_LEN];
        out.copy_from_slice(&full[..ICV_LEN]);
        out
    }
}

/// The keys of an active session.
#[derive(Clone)]
pub struct SessionKeys {
    k1: [u8; 20],
    k2: [u8; 20],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(******)")
    }
}

impl SessionKeys {
    /// `K1 = HMAC(SIK, 0x01 * 20)`, `K2 = HMAC(SIK, 0x02 * 20)`.
    pub fn derive(sik: &[u8]) -> SessionKeys {
        SessionKeys {
            k1: hmac_sha1(sik, &[&[1u8; 20]]),
            k2: hmac_sha1(sik, &[&[2u8; 20]]),
        }
    }

    /// The HMAC-SHA1-96 integrity code over `signed`.
    pub fn auth_code(&self, signed: &[u8]) -> [u8; ICV_LEN] {
        let full = hmac_sha1(&self.k1, &[signed]);
        let mut out = [0u8; ICV_LEN];
        out.copy_from_slice(&full[..ICV_LEN]);
        out
    }

    fn aes_key(&self) -> [u8; 16] {
        let mut k = [0u8; 16];
        k.copy_from_slice(&self.k2[..16]);
        k
    }

    /// AES-CBC-128 with IPMI's confidentiality trailer (pad bytes 1, 2, ... and their count);
    /// returns IV followed by the ciphertext.
    pub fn encrypt(&self, data: &[u8], iv: [u8; 16]) -> Vec<u8> {
        let pad = (16 - (data.len() + 1) % 16) % 16;
        let mut buf = Vec::with_capacity(16 + data.len() + pad + 1);
        buf.extend_from_slice(data);
        buf.extend((1..=pad as u8).collect::<Vec<_>>());
        buf.push(pad as u8);
        let ct = AesCbcEnc::new(&self.aes_key().into(), &iv.into())
            .encrypt_padded_vec_mut::<NoPadding>(&buf);
        let mut out = iv.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    /// The inverse of [`SessionKeys::encrypt`].
    pub fn decrypt(&self, payload: &[u8]) -> Result<Vec<u8>, &'static str> {
        if payload.len() < 32 || !payload.len().is_multiple_of(16) {
            return Err("encrypted payload is not an IV plus whole AES blocks");
        }
        let (iv, ct) = payload.split_at(16);
        let mut iv16 = [0u8; 16];
        iv16.copy_from_slice(iv);
        let pt = AesCbcDec::new(&self.aes_key().into(), &iv16.into())
            .decrypt_padded_vec_mut::<NoPadding>(ct)
            .map_err(|_| "AES-CBC decryption failed")?;
        let pad = *pt.last().ok_or("empty plaintext")? as usize;
        if pad >= 16 || pad + 1 > pt.len() {
            return Err("bad confidentiality pad length");
        }
        let body_len = pt.len() - pad - 1;
        if pt[body_len..pt.len() - 1]
            .iter()
            .enumerate()
            .any(|(i, b)| *b != (i + 1) as u8)
        {
            return Err("bad confidentiality pad bytes");
        }
        Ok(pt[..body_len].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha1_matches_rfc2202_case_2() {
        let code = hmac_sha1(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(code),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn aes_round_trips_every_length_and_rejects_garbage() {
        let keys = SessionKeys::derive(&[7u8; 20]);
        for len in 0..40 {
            let data: Vec<u8> = (0..len as u8).collect();
            let enc = keys.encrypt(&data, [9u8; 16]);
            assert_eq!(enc.len() % 16, 0);
            assert_eq!(keys.decrypt(&enc).unwrap(), data);
        }
        assert!(keys.decrypt(&[0u8; 20]).is_err());
        let other = SessionKeys::derive(&[8u8; 20]);
        let enc = keys.encrypt(b"hello", [1u8; 16]);
        // With the wrong key the pad check fails (or, rarely, yields other bytes): never panics.
        let _ = other.decrypt(&enc);
    }
}
