//! Hand-written, tolerant Redfish models.
//!
//! Real BMCs deviate from the schema all the time, so every model here:
//! * ignores fields it does not know and accepts any missing field;
//! * never fails a whole document because one field has the wrong type: every
//!   field goes through a lenient deserializer (a field that does not fit reads as
//!   absent; a list keeps the elements that fit);
//! * has a catch-all `Other(String)` variant on every enum, so a value from a newer
//!   schema or a vendor (`"PowerState": "Resetting"`) is kept, not rejected; enum
//!   values match case-insensitively;
//! * keeps `@odata.id` links (so the client can navigate) and `Oem` as raw JSON.
//!
//! The only documents that fail to parse are those that are not JSON objects.

mod storage;
mod system;
mod tasks;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

pub use storage::*;
pub use system::*;
pub use tasks::*;

/// Lenient field deserializers (`#[serde(deserialize_with = ...)]`).
pub mod de {
    use super::*;

    /// Any `T`, or `None` when the value is null or does not fit `T`.
    pub fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        let v = Value::deserialize(d)?;
        if v.is_null() {
            return Ok(None);
        }
        Ok(T::deserialize(v).ok())
    }

    /// A list of `T`, keeping the elements that fit; anything not a list reads as empty.
    pub fn list<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Array(items) => items
                .into_iter()
                .filter_map(|v| T::deserialize(v).ok())
                .collect(),
            _ => Vec::new(),
        })
    }

    /// A string; numbers and booleans are rendered, anything else is absent.
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        })
    }

    /// A list of strings (elements that are not strings are dropped).
    pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Array(items) => items
                .into_iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        })
    }

    /// A non-negative integer from a number (floats truncate) or a numeric string.
    pub fn uint<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Ok(to_f64(&Value::deserialize(d)?)
            .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1.8e19)
            .map(|f| f as u64))
    }

    /// A signed integer from an integral number or a numeric string.
    pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        Ok(to_f64(&Value::deserialize(d)?)
            .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18)
            .map(|f| f as i64))
    }

    /// A finite number from a number or a numeric string.
    pub fn float<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(to_f64(&Value::deserialize(d)?).filter(|f| f.is_finite()))
    }

    /// A boolean from `true`/`false` or their strings.
    pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Bool(b) => Some(b),
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "enabled" => Some(true),
                "false" | "no" | "disabled" => Some(false),
                _ => None,
            },
            _ => None,
        })
    }

    /// A JSON object (anything else reads as empty).
    pub fn object<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Object(m) => m,
            _ => Map::new(),
        })
    }

    fn to_f64(v: &Value) -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// Defines a Redfish enum with a catch-all `Other(String)` variant, matched
/// case-insensitively, serialized as the schema's string.
macro_rules! redfish_enum {
    ($(#[$m:meta])* $name:ident { $( $(#[$vm:meta])* $variant:ident = $s:literal ),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vm])* #[doc = concat!("`", $s, "`.")] $variant, )+
            /// A value outside the schema, kept as the BMC sent it.
            Other(String),
        }

        impl $name {
            /// The string the BMC uses.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $s, )+
                    $name::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $( if s.eq_ignore_ascii_case($s) { return $name::$variant; } )+
                $name::Other(s.to_owned())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(match serde_json::Value::deserialize(d)? {
                    serde_json::Value::String(s) => $name::from(s.as_str()),
                    other => $name::Other(other.to_string()),
                })
            }
        }
    };
}
pub(crate) use redfish_enum;

/// A link to another resource (`{"@odata.id": "..."}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Link {
    /// The resource's URI.
    #[serde(rename = "@odata.id")]
    pub odata_id: String,
}

/// A resource collection.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Collection {
    /// The collection's URI.
    #[serde(rename = "@odata.id", deserialize_with = "de::string")]
    pub odata_id: Option<String>,
    /// Its members.
    #[serde(rename = "Members", deserialize_with = "de::list")]
    pub members: Vec<Link>,
    /// The next page, when the BMC pages the collection.
    #[serde(rename = "Members@odata.nextLink", deserialize_with = "de::string")]
    pub next_link: Option<String>,
}

redfish_enum! {
    /// `Status.Health`.
    Health { Ok = "OK", Warning = "Warning", Critical = "Critical" }
}

/// `Status`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Status {
    /// `State` (Enabled, Disabled, Absent, ...).
    #[serde(rename = "State", deserialize_with = "de::string")]
    pub state: Option<String>,
    /// `Health`.
    #[serde(rename = "Health", deserialize_with = "de::lenient")]
    pub health: Option<Health>,
    /// `HealthRollup`: the health of the resource and what it contains.
    #[serde(rename = "HealthRollup", deserialize_with = "de::lenient")]
    pub health_rollup: Option<Health>,
}

impl Status {
    /// Whether the component is absent (`State: Absent`).
    pub fn is_absent(&self) -> bool {
        self.state
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("Absent"))
    }
}

/// A message (`Messages`, `@Message.ExtendedInfo`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Message {
    /// `MessageId`.
    #[serde(rename = "MessageId", deserialize_with = "de::string")]
    pub message_id: Option<String>,
    /// `Message`.
    #[serde(rename = "Message", deserialize_with = "de::string")]
    pub message: Option<String>,
    /// `Severity` / `MessageSeverity`.
    #[serde(rename = "Severity", deserialize_with = "de::string")]
    pub severity: Option<String>,
}

/// An action a resource advertises under `Actions`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Action {
    /// Where to POST.
    pub target: String,
    /// `<Param>@Redfish.AllowableValues`, by parameter.
    pub allowable: Map<String, Value>,
}

impl Action {
    /// Allowable values of a parameter, empty when the BMC does not say.
    pub fn allowable_values(&self, param: &str) -> Vec<String> {
        self.allowable
            .get(param)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Find `#<name>` (e.g. `ComputerSystem.Reset`) in an `Actions` object.
pub fn find_action(actions: &Map<String, Value>, name: &str) -> Option<Action> {
    let key = format!("#{name}");
    let def = actions
        .get(&key)
        .or_else(|| {
            actions
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&key))
                .map(|(_, v)| v)
        })?
        .as_object()?;
    let target = def.get("target")?.as_str()?.to_owned();
    let allowable = def
        .iter()
        .filter_map(|(k, v)| {
            k.strip_suffix("@Redfish.AllowableValues")
                .map(|p| (p.to_owned(), v.clone()))
        })
        .collect();
    Some(Action { target, allowable })
}

/// `@Redfish.Settings`: where pending settings go.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SettingsAnnotation {
    /// The settings object to PATCH.
    #[serde(rename = "SettingsObject", deserialize_with = "de::lenient")]
    pub settings_object: Option<Link>,
    /// `SupportedApplyTimes`.
    #[serde(rename = "SupportedApplyTimes", deserialize_with = "de::strings")]
    pub supported_apply_times: Vec<String>,
    /// Messages about the last apply.
    #[serde(rename = "Messages", deserialize_with = "de::list")]
    pub messages: Vec<Message>,
}

/// Parse a Redfish JSON document into a model. Tolerates a UTF-8 BOM and blank
/// lines; fails only when the body is not a JSON object.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        let text = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
        format!("not JSON ({e}); body starts with {text:?}")
    })?;
    if !v.is_object() {
        return Err(format!(
            "expected a JSON object, got {}",
            match v {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            }
        ));
    }
    T::deserialize(v).map_err(|e| e.to_string())
}

/// The human-readable messages of a Redfish error body
/// (`error.message` and `@Message.ExtendedInfo[].Message`).
pub fn error_messages(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        return text.chars().take(200).collect();
    };
    let err = v.get("error").unwrap_or(&v);
    let mut out: Vec<String> = Vec::new();
    if let Some(m) = err.get("message").and_then(Value::as_str) {
        out.push(m.to_owned());
    }
    if let Some(infos) = err.get("@Message.ExtendedInfo").and_then(Value::as_array) {
        for i in infos {
            // iLO sends only a MessageId (iLO.2.14.UnableToModifyDuringSystemPOST)
            let m = i
                .get("Message")
                .and_then(Value::as_str)
                .or_else(|| i.get("MessageId").and_then(Value::as_str));
            if let Some(m) = m
                && !out.iter().any(|o| o == m)
            {
                out.push(m.to_owned());
            }
        }
    }
    out.join("; ")
}
