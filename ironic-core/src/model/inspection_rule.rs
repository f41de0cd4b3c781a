//! Inspection rules (API 1.96): conditions on the inspection data and actions on
//! the node, its ports and the stored plugin data, run when inspection data is
//! processed. The engine is [`crate::inspection_rules`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Timestamp;
use crate::ids::InspectionRuleId;

/// An inspection rule, with Ironic's fields.
///
/// `conditions` and `actions` are kept as the JSON objects the user sent
/// (`{"op": "eq", "args": {...}, "loop": [...], "multiple": "any"}`): the
/// engine validates them ([`crate::inspection_rules::validate_rule`]) and reads
/// them at inspection time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InspectionRule {
    /// UUID.
    pub uuid: InspectionRuleId,
    /// Free text (at most 255 characters).
    #[serde(default)]
    pub description: Option<String>,
    /// Rules run from the highest priority down (0..=9999 for user rules;
    /// built-in rules may use any value).
    #[serde(default)]
    pub priority: i64,
    /// A sensitive rule's conditions and actions are never shown by the API,
    /// and it sees unmasked secrets when `mask_secrets = "sensitive"`. Once set
    /// it cannot be unset.
    #[serde(default)]
    pub sensitive: bool,
    /// The inspection phase the rule runs in (`main`, the only one so far).
    #[serde(default = "main_phase")]
    pub phase: String,
    /// Conditions, all of which must hold (none: always).
    #[serde(default)]
    pub conditions: Vec<Value>,
    /// Actions, at least one.
    pub actions: Vec<Value>,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
}

fn main_phase() -> String {
    "main".to_owned()
}

impl InspectionRule {
    /// A new rule in the `main` phase, priority 0, with these actions.
    pub fn new(actions: Vec<Value>) -> Self {
        InspectionRule {
            uuid: InspectionRuleId::new(),
            description: None,
            priority: 0,
            sensitive: false,
            phase: main_phase(),
            conditions: Vec::new(),
            actions,
            created_at: super::now(),
            updated_at: None,
        }
    }
}
