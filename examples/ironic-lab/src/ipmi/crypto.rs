//! The BMC side of RMCP+ cipher suite 3: RAKP-HMAC-SHA1 authentication,
//! HMAC-SHA1-96 integrity and AES-CBC-128 confidentiality (IPMI v2.0 §13.28-13.32).
//!
//! The primitives (HMAC, the session keys K1/K2, integrity codes, AES-CBC with
//! IPMI's confidentiality pad) are ironic-drivers-ipmi's: the driver and this
//! simulator share one implementation, and ipmitool and pyghmi, which talk to
//! both, keep it honest. Only what the BMC computes and the console does not
//! (the RAKP 2 code, checking RAKP 3, the RAKP 4 ICV) is written here.

pub use ironic_drivers_ipmi::session::crypto::{CipherSuite, SessionKeys, mac_eq as codes_equal};

/// The cipher suite this BMC speaks.
pub const SUITE: CipherSuite = CipherSuite::Suite3;

/// Length of a session integrity code (HMAC-SHA1-96).
pub const ICV_LEN: usize = 12;

/// HMAC-SHA1 over the concatenation of `parts`.
fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    SUITE.hmac(key, parts)
}

/// The user key K_UID: the password, zero-padded to 20 bytes (IPMI v2.0 §13.31).
pub fn user_key(password: &str) -> [u8; 20] {
    let mut k = [0u8; 20];
    let p = password.as_bytes();
    let n = p.len().min(20);
    k[..n].copy_from_slice(&p[..n]);
    k
}

/// The inputs of the RAKP exchange, as the BMC sees them.
#[derive(Clone, Debug)]
pub struct Rakp<'a> {
    /// The console's (remote console) session id.
    pub console_sid: u32,
    /// The BMC's session id.
    pub bmc_sid: u32,
    /// The console's random number (RAKP 1).
    pub console_rand: [u8; 16],
    /// The BMC's random number (RAKP 2).
    pub bmc_rand: [u8; 16],
    /// The BMC's GUID.
    pub bmc_guid: [u8; 16],
    /// The requested role byte (privilege and name-only lookup bit).
    pub role: u8,
    /// The user name.
    pub user: &'a [u8],
}

impl Rakp<'_> {
    fn user_len(&self) -> [u8; 1] {
        [self.user.len() as u8]
    }

    /// The key exchange authentication code of RAKP 2.
    pub fn rakp2_code(&self, kuid: &[u8]) -> Vec<u8> {
        hmac(
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
    pub fn rakp3_code(&self, kuid: &[u8]) -> Vec<u8> {
        hmac(
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

    /// The session integrity key (K_G is K_UID when no BMC key is set).
    pub fn sik(&self, kg: &[u8]) -> Vec<u8> {
        hmac(
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
    pub fn rakp4_icv(&self, sik: &[u8]) -> Vec<u8> {
        let mut icv = hmac(
            sik,
            &[
                &self.console_rand,
                &self.bmc_sid.to_le_bytes(),
                &self.bmc_guid,
            ],
        );
        icv.truncate(ICV_LEN);
        icv
    }
}

/// The session keys of an established session.
pub fn session_keys(sik: &[u8]) -> SessionKeys {
    SessionKeys::derive(SUITE, sik)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suite_is_hmac_sha1_with_96_bit_codes() {
        assert_eq!(SUITE.icv_len(), ICV_LEN);
        assert_eq!(SUITE.rakp_code_len(), 20);
        assert_eq!(
            hex::encode(hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"])),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn aes_round_trips_every_length_and_rejects_garbage() {
        let keys = session_keys(&[7u8; 20]);
        for len in 0..40 {
            let data: Vec<u8> = (0..len as u8).collect();
            let enc = keys.encrypt(&data, [9u8; 16]);
            assert_eq!(enc.len() % 16, 0);
            assert_eq!(keys.decrypt(&enc).unwrap(), data);
        }
        assert!(keys.decrypt(&[0u8; 20]).is_err());
        let other = session_keys(&[8u8; 20]);
        let enc = keys.encrypt(b"hello", [1u8; 16]);
        // With the wrong key the pad check fails (or, rarely, yields other bytes): never panics.
        let _ = other.decrypt(&enc);
    }
}
