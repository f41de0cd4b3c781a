//! MAC addresses, validated and normalised the way Ironic stores them
//! (lower case, colon separated).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 48-bit Ethernet MAC address.
///
/// Parsing accepts `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF` and `aabb.ccdd.eeff`;
/// display is always lower-case with colons, which is what Ironic stores and
/// what unique constraints compare.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddress(pub [u8; 6]);

/// A MAC address that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Expected a MAC address but received {0:?}")]
pub struct InvalidMac(pub String);

impl MacAddress {
    /// The six octets.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Whether this is a multicast (or broadcast) address, which can never be a NIC's address.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl FromStr for MacAddress {
    type Err = InvalidMac;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || InvalidMac(s.to_owned());
        let hex: String = if s.len() == 17 {
            let sep = s.as_bytes()[2];
            if sep != b':' && sep != b'-' {
                return Err(err());
            }
            for (i, b) in s.bytes().enumerate() {
                if i % 3 == 2 {
                    if b != sep {
                        return Err(err());
                    }
                } else if !b.is_ascii_hexdigit() {
                    return Err(err());
                }
            }
            s.chars().filter(|c| c.is_ascii_hexdigit()).collect()
        } else if s.len() == 14 {
            // Cisco style aabb.ccdd.eeff
            for (i, b) in s.bytes().enumerate() {
                if i == 4 || i == 9 {
                    if b != b'.' {
                        return Err(err());
                    }
                } else if !b.is_ascii_hexdigit() {
                    return Err(err());
                }
            }
            s.chars().filter(|c| c.is_ascii_hexdigit()).collect()
        } else {
            return Err(err());
        };
        let mut out = [0u8; 6];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|_| err())?;
        }
        Ok(MacAddress(out))
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }
}

impl fmt::Debug for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddress({self})")
    }
}

impl Serialize for MacAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_normalises() {
        let m: MacAddress = "52:54:00:DE:AD:01".parse().unwrap();
        assert_eq!(m.to_string(), "52:54:00:de:ad:01");
        let m2: MacAddress = "52-54-00-de-ad-01".parse().unwrap();
        assert_eq!(m, m2);
        let m3: MacAddress = "5254.00de.ad01".parse().unwrap();
        assert_eq!(m, m3);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "52:54:00:de:ad",
            "52:54:00:de:ad:0g",
            "52:54-00:de:ad:01",
            "52:54:00:de:ad:01:02",
            "zz",
        ] {
            assert!(bad.parse::<MacAddress>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn display_roundtrips(o in any::<[u8; 6]>()) {
            let m = MacAddress(o);
            prop_assert_eq!(m.to_string().parse::<MacAddress>().unwrap(), m);
        }

        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = s.parse::<MacAddress>();
        }
    }
}
