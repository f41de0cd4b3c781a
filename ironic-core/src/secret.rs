//! Secrets: values that must never reach logs, `Debug` output or API responses.
//!
//! Two tools live here:
//! * [`Secret`]: a string whose `Debug` and `Display` print `******`. Drivers hold
//!   BMC passwords and agent tokens in it after parsing `driver_info`.
//! * [`DriverInfo`]: the node's free-form `driver_info` map. Its `Debug` masks every
//!   value whose key looks like a secret (as Ironic's `mask_dict_password` does), and
//!   [`DriverInfo::masked`] gives the copy the API returns.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

/// What Ironic prints instead of a secret.
pub const MASK: &str = "******";

/// A secret string. `Debug`/`Display` print `******`; use [`Secret::expose`] to read it.
///
/// It serializes to its real value (it has to reach the BMC and the store); keep it out
/// of API responses with [`DriverInfo::masked`].
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The real value. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Compare with another value in constant time (for tokens).
    pub fn ct_eq(&self, other: &str) -> bool {
        self.0.len() == other.len() && bool::from(self.0.as_bytes().ct_eq(other.as_bytes()))
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// Key fragments that mark a value as secret (after oslo's `_SANITIZE_KEYS`).
const SECRET_KEY_FRAGMENTS: &[&str] = &[
    "password",
    "passwd",
    "pswd",
    "passphrase",
    "secret",
    "token",
    "auth_key",
    "private_key",
    "encrypted_key",
    "kg_key",
    "sslkey",
    "fernetkey",
    "new_pass",
    "admin_pass",
    "adminpass",
];

/// Whether a `driver_info` / `instance_info` key holds a secret.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_KEY_FRAGMENTS.iter().any(|f| k.contains(f))
}

/// Replace every secret-looking value in a JSON tree by `******`.
pub fn mask_value(v: &mut Value) {
    match v {
        Value::Object(map) => mask_map(map),
        Value::Array(items) => items.iter_mut().for_each(mask_value),
        _ => {}
    }
}

/// Replace every secret-looking value in a JSON object by `******` (recursively).
pub fn mask_map(map: &mut Map<String, Value>) {
    for (k, v) in map.iter_mut() {
        if is_secret_key(k) && !v.is_null() {
            *v = Value::String(MASK.to_owned());
        } else {
            mask_value(v);
        }
    }
}

/// A node's `driver_info`: free-form, as in Ironic, but secrets never print.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DriverInfo(pub Map<String, Value>);

impl DriverInfo {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }
    /// A value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }
    /// A string value (numbers are rendered as strings, as Ironic's drivers accept both).
    pub fn get_str(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    /// Set a value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.0.insert(key.into(), value.into());
    }
    /// The copy the API shows: secrets replaced by `******`.
    pub fn masked(&self) -> Map<String, Value> {
        let mut m = self.0.clone();
        mask_map(&mut m);
        m
    }
    /// The map inside (with the real secrets).
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
}

impl fmt::Debug for DriverInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&Value::Object(self.masked()), f)
    }
}

impl From<Map<String, Value>> for DriverInfo {
    fn from(m: Map<String, Value>) -> Self {
        Self(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), MASK);
        assert_eq!(format!("{s:?}"), MASK);
        assert_eq!(s.expose(), "hunter2");
        assert!(s.ct_eq("hunter2"));
        assert!(!s.ct_eq("hunter3"));
        assert!(!s.ct_eq("hunter"));
    }

    #[test]
    fn driver_info_masks_passwords_in_debug_and_masked() {
        let di: DriverInfo = serde_json::from_value(json!({
            "ipmi_address": "10.0.0.1",
            "ipmi_password": "hunter2",
            "redfish_password": "p4ss",
            "nested": {"agent_token": "abc"},
            "ipmi_hex_kg_key": "0011",
        }))
        .unwrap();
        let dbg = format!("{di:?}");
        assert!(!dbg.contains("hunter2") && !dbg.contains("p4ss") && !dbg.contains("abc"));
        assert!(!dbg.contains("0011"));
        assert!(dbg.contains("10.0.0.1"));
        let m = di.masked();
        assert_eq!(m["ipmi_password"], MASK);
        assert_eq!(m["nested"]["agent_token"], MASK);
        // the real value is still there for the driver
        assert_eq!(di.get_str("ipmi_password").unwrap(), "hunter2");
    }
}
