//! Image checksums: which algorithm, the expected value, and hashing on the fly.

use md5::Digest as _;

use crate::error::{AgentError, Result};

/// A checksum algorithm Ironic and IPA accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgo {
    /// MD5 (only when Ironic allows it).
    Md5,
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl HashAlgo {
    /// Parse Glance's `os_hash_algo` names.
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "md5" => Ok(HashAlgo::Md5),
            "sha256" => Ok(HashAlgo::Sha256),
            "sha512" => Ok(HashAlgo::Sha512),
            other => Err(AgentError::InvalidParams(format!(
                "Unsupported image hash algorithm {other:?}; supported: md5, sha256, sha512"
            ))),
        }
    }

    /// The algorithm a bare hex checksum of this length implies (IPA's rule).
    pub fn from_hex_len(len: usize) -> Option<Self> {
        match len {
            32 => Some(HashAlgo::Md5),
            64 => Some(HashAlgo::Sha256),
            128 => Some(HashAlgo::Sha512),
            _ => None,
        }
    }

    /// Name as Glance spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgo::Md5 => "md5",
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha512 => "sha512",
        }
    }

    /// A fresh hasher.
    pub fn hasher(self) -> ImageHasher {
        match self {
            HashAlgo::Md5 => ImageHasher::Md5(md5::Md5::new()),
            HashAlgo::Sha256 => ImageHasher::Sha256(sha2::Sha256::new()),
            HashAlgo::Sha512 => ImageHasher::Sha512(sha2::Sha512::new()),
        }
    }
}

/// The checksum an image must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedChecksum {
    /// Algorithm.
    pub algo: HashAlgo,
    /// Lower-case hex digest.
    pub hex: String,
}

impl ExpectedChecksum {
    /// A checksum from an algorithm and a hex value (validated).
    pub fn new(algo: HashAlgo, hex: &str) -> Result<Self> {
        let hex = hex.trim().to_ascii_lowercase();
        let want = match algo {
            HashAlgo::Md5 => 32,
            HashAlgo::Sha256 => 64,
            HashAlgo::Sha512 => 128,
        };
        if hex.len() != want || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AgentError::InvalidParams(format!(
                "Image checksum {hex:?} is not a valid {} hex digest",
                algo.as_str()
            )));
        }
        Ok(ExpectedChecksum { algo, hex })
    }

    /// A bare checksum whose algorithm follows from its length (128: sha512,
    /// 64: sha256, 32: md5 when `allow_md5`), or one prefixed with its
    /// algorithm (`sha256:<hex>`, as operators copy it from `sha256sum` docs
    /// and image catalogues).
    pub fn from_bare(hex: &str, allow_md5: bool) -> Result<Self> {
        let hex = hex.trim();
        if let Some((name, value)) = hex.split_once(':') {
            let algo = HashAlgo::parse(name)?;
            if algo == HashAlgo::Md5 && !allow_md5 {
                return Err(AgentError::InvalidParams(
                    "Image checksum is an MD5 value but MD5 checksums are not allowed".into(),
                ));
            }
            return Self::new(algo, value);
        }
        match HashAlgo::from_hex_len(hex.len()) {
            Some(HashAlgo::Md5) if !allow_md5 => Err(AgentError::InvalidParams(
                "Image checksum is an MD5 value but MD5 checksums are not allowed".into(),
            )),
            Some(algo) => Self::new(algo, hex),
            None => Err(AgentError::InvalidParams(format!(
                "Image checksum of length {} matches no supported algorithm (md5, sha256, sha512)",
                hex.len()
            ))),
        }
    }

    /// Find the checksum of `file_name` in a `sha256sum`-style checksum file
    /// (`<hex>  <name>` lines, or a single bare digest).
    pub fn from_checksum_file(text: &str, file_name: &str, allow_md5: bool) -> Result<Self> {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        if lines.len() == 1 && !lines[0].contains(char::is_whitespace) {
            return Self::from_bare(lines[0], allow_md5);
        }
        for l in &lines {
            let mut it = l.split_whitespace();
            if let (Some(h), Some(name)) = (it.next(), it.next()) {
                let name = name.trim_start_matches('*');
                let base = name.rsplit('/').next().unwrap_or(name);
                if base == file_name {
                    return Self::from_bare(h, allow_md5);
                }
            }
        }
        Err(AgentError::InvalidParams(format!(
            "The checksum file lists no checksum for {file_name:?}"
        )))
    }
}

/// A running hash over the downloaded bytes.
#[derive(Clone)]
pub enum ImageHasher {
    /// MD5.
    Md5(md5::Md5),
    /// SHA-256.
    Sha256(sha2::Sha256),
    /// SHA-512.
    Sha512(sha2::Sha512),
}

impl ImageHasher {
    /// Add bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            ImageHasher::Md5(h) => h.update(data),
            ImageHasher::Sha256(h) => h.update(data),
            ImageHasher::Sha512(h) => h.update(data),
        }
    }

    /// The hex digest.
    pub fn finish_hex(self) -> String {
        match self {
            ImageHasher::Md5(h) => hex::encode(h.finalize()),
            ImageHasher::Sha256(h) => hex::encode(h.finalize()),
            ImageHasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_checksum_may_name_its_algorithm() {
        use super::*;
        let h = "ab".repeat(32);
        let c = ExpectedChecksum::from_bare(&format!("sha256:{h}"), false).unwrap();
        assert_eq!((c.algo, c.hex.as_str()), (HashAlgo::Sha256, h.as_str()));
        let c = ExpectedChecksum::from_bare(&format!("SHA512:{}", "CD".repeat(64)), false).unwrap();
        assert_eq!(c.algo, HashAlgo::Sha512);
        // the prefix must match the length, md5 stays refused, unknown ones named
        assert!(ExpectedChecksum::from_bare(&format!("sha512:{h}"), false).is_err());
        let e = ExpectedChecksum::from_bare(&format!("md5:{}", "a".repeat(32)), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("MD5"), "{e}");
        let e = ExpectedChecksum::from_bare(&format!("crc32:{h}"), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("crc32"), "{e}");
    }

    use super::*;

    #[test]
    fn infers_algorithm_from_length() {
        let s = "a".repeat(64);
        assert_eq!(
            ExpectedChecksum::from_bare(&s, false).unwrap().algo,
            HashAlgo::Sha256
        );
        assert!(ExpectedChecksum::from_bare(&"a".repeat(32), false).is_err());
        assert_eq!(
            ExpectedChecksum::from_bare(&"a".repeat(32), true)
                .unwrap()
                .algo,
            HashAlgo::Md5
        );
        assert!(ExpectedChecksum::from_bare("xyz", true).is_err());
        assert!(ExpectedChecksum::new(HashAlgo::Sha256, &"g".repeat(64)).is_err());
    }

    #[test]
    fn checksum_file_lookup() {
        let h1 = "1".repeat(64);
        let h2 = "2".repeat(64);
        let text = format!("{h1}  other.img\n{h2} *disk.qcow2\n");
        let c = ExpectedChecksum::from_checksum_file(&text, "disk.qcow2", false).unwrap();
        assert_eq!(c.hex, h2);
        assert!(ExpectedChecksum::from_checksum_file(&text, "nope", false).is_err());
        let c = ExpectedChecksum::from_checksum_file(&format!("{h1}\n"), "x", false).unwrap();
        assert_eq!(c.hex, h1);
    }

    #[test]
    fn hashes_known_vectors() {
        let mut h = HashAlgo::Sha256.hasher();
        h.update(b"abc");
        assert_eq!(
            h.finish_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = HashAlgo::Md5.hasher();
        h.update(b"abc");
        assert_eq!(h.finish_hex(), "900150983cd24fb0d6963f7d28e17f72");
    }
}
