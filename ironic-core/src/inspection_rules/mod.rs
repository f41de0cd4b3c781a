//! The inspection rule engine (API 1.96), after Ironic's
//! `ironic/common/inspection_rules`: when inspection data is processed (in-band
//! `continue_inspection` and out-of-band inspection alike), every rule of the
//! phase, stored ones and the operator's built-in ones, runs from the highest
//! priority down; a rule whose conditions all hold applies its actions to the
//! node, its ports and the plugin data, before anything is stored.
//!
//! Rules are written exactly as for Ironic: the same operators (`eq`, `lt`, `gt`,
//! `is-empty`, `in-net`, `matches`, `contains`, `one-of`, `is-none`, `is-true`,
//! `is-false`, each invertible with `!`), the same actions (`fail`, `log`,
//! `set-attribute`, `extend-attribute`, `del-attribute`, `set-capability`,
//! `unset-capability`, `add-trait`, `remove-trait`, `set-plugin-data`,
//! `extend-plugin-data`, `unset-plugin-data`, `set-port-attribute`,
//! `extend-port-attribute`, `del-port-attribute`, `api-call`), `loop` with
//! `multiple` (`any`, `all`, `first`, `last`), and Python format strings
//! (`{inventory[bmc_address]}`, `{node.driver_info[ipmi_address]}`, `{item}`)
//! rendered with Python's rules.
//!
//! Where ironic-rs differs from Ironic, on purpose:
//! * a rule with a missing or unexpected argument is refused with 400 (Ironic
//!   answers 500);
//! * `set-attribute` / `del-attribute` refuse the fields the conductor owns
//!   (`uuid`, `provision_state`, `power_state`, `reservation`, ...): a rule
//!   changing them would corrupt the state machine (Ironic lets it);
//! * `set-capability` replaces the value of an existing capability (Ironic
//!   appends a second `name:value` pair);
//! * the node seen by format strings has its `driver_info` secrets masked
//!   always (Ironic masks only the inventory and plugin data), so a `log` action
//!   cannot print a BMC password;
//! * the built-in rules file is read and validated once at start (a bad file
//!   stops the service at start instead of failing every inspection).

mod ops;
mod pyfmt;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub use crate::model::InspectionRule;
use crate::model::{Node, Port};

/// The condition operators, as Ironic names them.
pub const OPERATORS: &[&str] = &[
    "eq", "lt", "gt", "is-empty", "in-net", "matches", "contains", "one-of", "is-none", "is-true",
    "is-false",
];

/// The actions, as Ironic names them.
pub const ACTIONS: &[&str] = &[
    "fail",
    "log",
    "set-attribute",
    "extend-attribute",
    "del-attribute",
    "set-capability",
    "unset-capability",
    "add-trait",
    "remove-trait",
    "set-plugin-data",
    "extend-plugin-data",
    "unset-plugin-data",
    "set-port-attribute",
    "extend-port-attribute",
    "del-port-attribute",
    "api-call",
];

/// The inspection phases (Ironic has only `main`).
pub const PHASES: &[&str] = &["main"];

/// Keys whose values rules see as `***` (Ironic's `SENSITIVE_FIELDS`).
pub const SENSITIVE_FIELDS: &[&str] = &["password", "auth_token", "bmc_password"];

/// Whether rules see secrets in the inspection data (`[inspection_rules]
/// mask_secrets`, Ironic's option of the same name).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MaskSecrets {
    /// Always masked (the default).
    #[default]
    Always,
    /// Never masked.
    Never,
    /// Masked except for rules marked `sensitive`.
    Sensitive,
}

/// One HTTP GET of an `api-call` action.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ApiCall {
    /// The URL (already formatted).
    pub url: String,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// Proxies by scheme (`{"http": "...", "https": "..."}`).
    pub proxies: Vec<(String, String)>,
    /// Timeout of one attempt (5 s).
    pub timeout: Duration,
    /// Retries on connection errors and on 429/500/502/503/504 (3).
    pub retries: u32,
    /// Backoff factor: the n-th retry waits `backoff_factor * 2^(n-1)` s (0.3).
    pub backoff_factor: f64,
}

/// Makes the HTTP requests of `api-call` actions. ironic-core has no HTTP
/// client: the application provides one (the `ironic` binary uses reqwest).
///
/// # Contract
/// `get` succeeds when the final answer (after the retries) is a 2xx or 3xx;
/// otherwise it returns the reason, which fails the inspection.
#[async_trait]
pub trait RuleHttp: Send + Sync + fmt::Debug + 'static {
    /// Send the GET request.
    async fn get(&self, call: &ApiCall) -> Result<(), String>;
}

/// The engine's settings.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RulesConfig {
    /// Secret masking.
    pub mask_secrets: MaskSecrets,
    /// The operator's built-in rules (Ironic's `[inspection_rules]
    /// built_in_rules` file), run with the stored ones.
    pub built_in: Vec<InspectionRule>,
    /// The HTTP client of `api-call` actions (without one they fail with a
    /// clear error).
    pub http: Option<Arc<dyn RuleHttp>>,
}

impl PartialEq for RulesConfig {
    fn eq(&self, other: &Self) -> bool {
        self.mask_secrets == other.mask_secrets
            && self.built_in == other.built_in
            && match (&self.http, &other.http) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

impl Eq for RulesConfig {}

/// Why applying the rules failed; the inspection fails with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError(pub String);

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RuleError {}

/// What the rules changed (the caller saves it).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    /// UUIDs of the rules whose actions ran, in order.
    pub rules: Vec<String>,
    /// Indexes (into the ports given) of the ports changed.
    pub ports_changed: Vec<usize>,
}

/// Parse a rules file: a YAML or JSON list of rules, each with `actions` and
/// optionally `uuid`, `description`, `priority`, `sensitive`, `phase`,
/// `conditions`. Rules without a UUID get Ironic's synthetic ones
/// (`00000000-0000-0000-0000-000000000000`, `...0001`, ...). Every rule is
/// validated as a built-in rule (any priority).
pub fn parse_built_in(rules: &Value) -> Result<Vec<InspectionRule>, String> {
    let list = rules
        .as_array()
        .ok_or("the built-in rules file should contain a list of rules")?;
    let mut synthetic = 0u64;
    let mut out = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let obj = r
            .as_object()
            .ok_or_else(|| format!("built-in rule #{}: not a mapping", i + 1))?;
        let body = Value::Object(obj.clone());
        check_schema(&body).map_err(|e| format!("built-in rule #{}: {e}", i + 1))?;
        let mut rule = from_body(&body).map_err(|e| format!("built-in rule #{}: {e}", i + 1))?;
        if obj.get("uuid").is_none_or(Value::is_null) {
            rule.uuid = crate::ids::InspectionRuleId(uuid::Uuid::from_u128(u128::from(synthetic)));
            synthetic += 1;
        }
        validate_rule(&rule, true).map_err(|e| format!("built-in rule #{}: {e}", i + 1))?;
        out.push(rule);
    }
    Ok(out)
}

/// Check a rule body (create request, or a rule after a PATCH) against Ironic's
/// schema (`ironic/api/schemas/v1/inspection_rule.py`): the known fields only,
/// their types, `actions` required and non-empty, every action and condition an
/// object with a known `op` and `args` (list or object), `loop` a list or
/// object, `multiple` one of `any`, `all`, `first`, `last`.
pub fn check_schema(body: &Value) -> Result<(), String> {
    let obj = body.as_object().ok_or("the rule must be an object")?;
    const FIELDS: &[&str] = &[
        "actions",
        "conditions",
        "description",
        "phase",
        "priority",
        "sensitive",
        "uuid",
    ];
    if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        ));
    }
    let actions = match obj.get("actions") {
        None => return Err("'actions' is a required property".to_owned()),
        Some(Value::Array(a)) => a,
        Some(v) => return Err(format!("{v} is not of type 'array'")),
    };
    if actions.is_empty() {
        return Err("[] should be non-empty".to_owned());
    }
    let conditions = match obj.get("conditions") {
        None => &Vec::new(),
        Some(Value::Array(a)) => a,
        Some(v) => return Err(format!("{v} is not of type 'array'")),
    };
    for (what, list, known) in [
        ("action", actions, ACTIONS),
        ("condition", conditions, OPERATORS),
    ] {
        for item in list {
            let o = item
                .as_object()
                .ok_or_else(|| format!("{item} is not of type 'object'"))?;
            let op = match o.get("op") {
                Some(Value::String(s)) => s,
                Some(v) => return Err(format!("{v} is not a valid {what} operator")),
                None => return Err("'op' is a required property".to_owned()),
            };
            let bare = if what == "condition" {
                op.strip_prefix('!').unwrap_or(op)
            } else {
                op
            };
            if !known.contains(&bare) {
                return Err(format!(
                    "'{op}' is not one of {}",
                    pyfmt::py_repr(&json!(known))
                ));
            }
            match o.get("args") {
                Some(Value::Array(_)) | Some(Value::Object(_)) => {}
                Some(v) => return Err(format!("{v} is not of type 'array', 'object'")),
                None => return Err("'args' is a required property".to_owned()),
            }
            match o.get("loop") {
                None | Some(Value::Array(_)) | Some(Value::Object(_)) => {}
                Some(v) => return Err(format!("{v} is not of type 'array', 'object'")),
            }
            if what == "condition"
                && let Some(m) = o.get("multiple")
                && !matches!(m.as_str(), Some("any" | "all" | "first" | "last"))
            {
                return Err(format!("{m} is not one of ['any', 'all', 'first', 'last']"));
            }
        }
    }
    match obj.get("description") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.chars().count() <= 255 => {}
        Some(Value::String(s)) => return Err(format!("'{s}' is too long")),
        Some(v) => return Err(format!("{v} is not of type 'string', 'null'")),
    }
    match obj.get("phase") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.chars().count() <= 16 => {}
        Some(Value::String(s)) => return Err(format!("'{s}' is too long")),
        Some(v) => return Err(format!("{v} is not of type 'string', 'null'")),
    }
    match obj.get("priority") {
        None => {}
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {}
        Some(v) => return Err(format!("{v} is not of type 'integer'")),
    }
    match obj.get("sensitive") {
        None | Some(Value::Null) | Some(Value::Bool(_)) => {}
        Some(v) => return Err(format!("{v} is not of type 'boolean', 'null'")),
    }
    match obj.get("uuid") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if uuid::Uuid::parse_str(s).is_ok() => {}
        Some(v) => return Err(format!("{v} is not a valid UUID")),
    }
    Ok(())
}

/// Build a rule from a body that passed [`check_schema`] (a missing UUID gets a
/// random one; timestamps are now).
pub fn from_body(body: &Value) -> Result<InspectionRule, String> {
    let o = body.as_object().ok_or("the rule must be an object")?;
    let mut rule = InspectionRule::new(
        o.get("actions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    );
    if let Some(u) = o.get("uuid").and_then(Value::as_str) {
        rule.uuid = u
            .parse()
            .map_err(|_| format!("'{u}' is not a valid UUID"))?;
    }
    rule.description = o
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    rule.priority = o.get("priority").and_then(Value::as_i64).unwrap_or(0);
    rule.sensitive = o.get("sensitive").and_then(Value::as_bool).unwrap_or(false);
    if let Some(p) = o.get("phase").and_then(Value::as_str) {
        rule.phase = p.to_owned();
    }
    rule.conditions = o
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok(rule)
}

/// Ironic's `validate_rule`: the phase, the priority range (0..=9999 unless
/// built in), and every operator's and action's arguments (required ones
/// present, no unknown ones; the deprecated list form is mapped by position).
pub fn validate_rule(rule: &InspectionRule, built_in: bool) -> Result<(), String> {
    let mut errors = Vec::new();
    if !PHASES.contains(&rule.phase.as_str()) {
        errors.push(format!(
            "Invalid phase: {}. Valid phases are: {}",
            rule.phase,
            PHASES.join(", ")
        ));
    }
    if rule.priority < 0 && !built_in {
        errors.push("Priority cannot be negative for user-defined rules.".to_owned());
    }
    if rule.priority > 9999 && !built_in {
        errors.push("Priority must be between 0 and 9999 for user-defined rules.".to_owned());
    }
    if rule.actions.is_empty() {
        errors.push("A rule needs at least one action.".to_owned());
    }
    for c in &rule.conditions {
        let raw = c.get("op").and_then(Value::as_str).unwrap_or_default();
        match parse_inverted(raw) {
            Ok(op) => {
                if let Err(e) = ops::operator_signature(op.0).and_then(|sig| {
                    sig.normalize(c.get("args").unwrap_or(&Value::Null))
                        .map(|_| ())
                }) {
                    errors.push(format!(
                        "Invalid parameters for condition operator {}: {e}",
                        op.0
                    ));
                }
            }
            Err(e) => errors.push(e),
        }
    }
    for a in &rule.actions {
        let op = a.get("op").and_then(Value::as_str).unwrap_or_default();
        if let Err(e) = ops::action_signature(op).and_then(|sig| {
            sig.normalize(a.get("args").unwrap_or(&Value::Null))
                .map(|_| ())
        }) {
            errors.push(format!("Invalid parameters for action operator {op}: {e}"));
        }
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(format!(
            "Multiple validation errors occurred: {}",
            errors.join("; ")
        )),
    }
}

/// Ironic's `parse_inverted_operator`: `"!eq"` is `("eq", true)`.
fn parse_inverted(op: &str) -> Result<(&str, bool), String> {
    let op = op.trim();
    if op.matches('!').count() > 1 {
        return Err(
            "Multiple exclamation marks are not allowed. To apply the invert of an \
                    operation, simply add an exclamation mark (with an optional space) \
                    before the operator, e.g. eq - !eq."
                .to_owned(),
        );
    }
    let inverted = op.starts_with('!');
    Ok((op.trim_start_matches('!').trim(), inverted))
}

/// What the rules work on.
#[derive(Debug)]
pub struct Target<'a> {
    /// The node (changed in place; the caller saves it).
    pub node: &'a mut Node,
    /// Its ports (changed in place; see [`Applied::ports_changed`]).
    pub ports: &'a mut [Port],
    /// The inventory the agent or the BMC reported.
    pub inventory: &'a Value,
    /// The plugin data (an object; rules may change it before it is stored).
    pub plugin_data: &'a mut Value,
}

/// Run `rules` (stored ones and built-in ones, any order: they are sorted by
/// priority, highest first, as Ironic does; equal priorities keep their order)
/// of `phase` against `target`.
pub async fn apply_rules(
    config: &RulesConfig,
    rules: &[InspectionRule],
    phase: &str,
    target: Target<'_>,
) -> Result<Applied, RuleError> {
    let mut rules: Vec<&InspectionRule> = rules
        .iter()
        .chain(config.built_in.iter())
        .filter(|r| r.phase == phase)
        .collect();
    rules.sort_by_key(|r| std::cmp::Reverse(r.priority));
    let mut applied = Applied::default();
    if !target.plugin_data.is_object() {
        *target.plugin_data = Value::Object(Map::new());
    }
    let mut run = ops::Run {
        config,
        node: target.node,
        ports: target.ports,
        inventory: target.inventory,
        plugin_data: target.plugin_data,
        ports_changed: Vec::new(),
        mask: true,
    };
    for rule in rules {
        run.mask = match config.mask_secrets {
            MaskSecrets::Always => true,
            MaskSecrets::Never => false,
            MaskSecrets::Sensitive => !rule.sensitive,
        };
        let node_uuid = run.node.uuid;
        let matched = run.check_conditions(rule).map_err(|e| {
            tracing::error!(node = %node_uuid, rule = %rule.uuid, error = %e, "inspection rule condition failed");
            e
        })?;
        if !matched {
            continue;
        }
        tracing::info!(node = %node_uuid, rule = %rule.uuid, "applying the actions of inspection rule");
        run.apply_actions(rule).await.map_err(|e| {
            tracing::error!(node = %node_uuid, rule = %rule.uuid, error = %e, "inspection rule action failed");
            e
        })?;
        applied.rules.push(rule.uuid.to_string());
    }
    applied.ports_changed = run.ports_changed;
    applied.ports_changed.sort_unstable();
    applied.ports_changed.dedup();
    Ok(applied)
}
