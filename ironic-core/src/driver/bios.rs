use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{BaseInterface, StepOutcome, Task};
use crate::error::DriverError;

/// One BIOS setting (`/v1/nodes/{id}/bios`), with the attribute registry's
/// metadata when the BMC publishes one (API 1.74: `attribute_type`,
/// `allowable_values`, `lower_bound`, `max_length`, `min_length`, `read_only`,
/// `reset_required`, `unique`, `upper_bound`).
///
/// `value` is a string, as Ironic stores it: drivers render numbers and booleans
/// the way Ironic's database does (see [`BiosSetting::value_from_json`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BiosSetting {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Option<String>,
    /// Registry type (`Enumeration`, `String`, `Integer`, `Boolean`, `Password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_type: Option<String>,
    /// Allowed values, if the BMC says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowable_values: Option<Vec<String>>,
    /// Smallest value of an integer setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_bound: Option<i64>,
    /// Largest value of an integer setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper_bound: Option<i64>,
    /// Shortest value of a string setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<i64>,
    /// Longest value of a string setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<i64>,
    /// Whether it is read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Whether changing it needs a reboot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_required: Option<bool>,
    /// Whether its value must be unique among nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<bool>,
    /// When the conductor first recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<crate::model::Timestamp>,
    /// When the conductor last saw its value change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<crate::model::Timestamp>,
}

impl BiosSetting {
    /// A setting with a name and value and no registry metadata.
    pub fn new(name: impl Into<String>, value: Option<String>) -> Self {
        BiosSetting {
            name: name.into(),
            value,
            ..BiosSetting::default()
        }
    }

    /// Render a BMC's JSON value the way Ironic stores it in its `bios_settings`
    /// table (a text column written through SQLAlchemy): strings as they are,
    /// `null` as no value, integers and floats in decimal, booleans as `"1"` and
    /// `"0"` (what SQLite and MySQL store for Python's `True`/`False`). Ironic's
    /// database refuses lists and objects and drops the whole cache; they are
    /// kept here as compact JSON instead.
    pub fn value_from_json(v: &serde_json::Value) -> Option<String> {
        use serde_json::Value;
        match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Bool(true) => Some("1".to_owned()),
            Value::Bool(false) => Some("0".to_owned()),
            Value::Number(n) => Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => i.to_string(),
                (_, Some(u), _) => u.to_string(),
                (_, _, Some(f)) => python_float(f),
                _ => n.to_string(),
            }),
            other => Some(other.to_string()),
        }
    }
}

/// Python's `repr(float)`, which is what a database driver writes for a float:
/// `2.0` keeps its `.0`, large and small values use exponents (`1e+16`).
fn python_float(f: f64) -> String {
    if f.is_finite() && f == f.trunc() && f.abs() < 1e16 {
        format!("{f:.1}")
    } else if f.is_finite() && (f.abs() >= 1e16 || (f != 0.0 && f.abs() < 1e-4)) {
        let s = format!("{f:e}");
        // Rust: 1e16 / 1.5e-5; Python: 1e+16 / 1.5e-05
        match s.split_once('e') {
            Some((m, e)) => {
                let (sign, digits) = match e.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', e),
                };
                format!("{m}e{sign}{digits:0>2}")
            }
            None => s,
        }
    } else {
        format!("{f}")
    }
}

/// BIOS settings (Ironic's `BIOSInterface`, optional).
///
/// # For driver authors
/// `cache_bios_settings` reads every setting the BMC reports, with the registry's
/// metadata when there is a registry; the conductor stores the result at the
/// moments Ironic does (management verification, before and after cleaning and
/// servicing, after `apply_configuration` and `factory_reset` steps). Return
/// [`crate::ErrorKind::Unsupported`] when the hardware has no BIOS resource.
#[async_trait]
pub trait BiosInterface: BaseInterface {
    /// Apply settings.
    async fn apply_configuration(
        &self,
        task: &mut Task,
        settings: &[BiosSetting],
    ) -> Result<StepOutcome, DriverError>;
    /// Reset to factory defaults.
    async fn factory_reset(&self, task: &mut Task) -> Result<StepOutcome, DriverError>;
    /// Read the current settings (the conductor caches them).
    async fn cache_bios_settings(&self, task: &mut Task) -> Result<Vec<BiosSetting>, DriverError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_render_as_ironic_stores_them() {
        let r = |v| BiosSetting::value_from_json(&v);
        assert_eq!(r(json!("Enabled")).as_deref(), Some("Enabled"));
        assert_eq!(r(json!(null)), None);
        assert_eq!(r(json!(true)).as_deref(), Some("1"));
        assert_eq!(r(json!(false)).as_deref(), Some("0"));
        assert_eq!(r(json!(42)).as_deref(), Some("42"));
        assert_eq!(r(json!(-7)).as_deref(), Some("-7"));
        assert_eq!(r(json!(2.5)).as_deref(), Some("2.5"));
        assert_eq!(r(json!(2.0)).as_deref(), Some("2.0"));
        assert_eq!(r(json!(1e20)).as_deref(), Some("1e+20"));
        assert_eq!(r(json!(0.00001)).as_deref(), Some("1e-05"));
        assert_eq!(r(json!([1, "a"])).as_deref(), Some("[1,\"a\"]"));
        assert_eq!(r(json!({"a": 1})).as_deref(), Some("{\"a\":1}"));
    }

    #[test]
    fn old_records_without_registry_fields_still_parse() {
        let s: BiosSetting =
            serde_json::from_value(json!({"name": "A", "value": "B", "read_only": true})).unwrap();
        assert_eq!(s.read_only, Some(true));
        assert_eq!(s.upper_bound, None);
    }
}
