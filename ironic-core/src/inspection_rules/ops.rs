//! Operators and actions, argument signatures and the evaluation of one rule.

use std::cmp::Ordering;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::pyfmt::{self, FormatError, py_repr, py_str, py_type};
use super::{ApiCall, InspectionRule, RuleError, RulesConfig, SENSITIVE_FIELDS, parse_inverted};
use crate::model::{Node, Port};
use crate::secret::MASK;

/// The arguments of an operator or action (Ironic derives them from the
/// plugin's `__call__` signature).
#[derive(Debug, Clone, Copy)]
pub(super) struct Signature {
    required: &'static [&'static str],
    optional: &'static [&'static str],
    /// Arguments expanded with the format strings outside loops.
    formatted: &'static [&'static str],
    /// The action works on the plugin data (Ironic passes it as an argument).
    plugin_data: bool,
}

const fn sig(
    required: &'static [&'static str],
    optional: &'static [&'static str],
    formatted: &'static [&'static str],
) -> Signature {
    Signature {
        required,
        optional,
        formatted,
        plugin_data: false,
    }
}

pub(super) fn operator_signature(op: &str) -> Result<Signature, String> {
    Ok(match op {
        "eq" | "lt" | "gt" => sig(&["values"], &["force_strings"], &["values"]),
        "is-empty" | "is-none" | "is-true" | "is-false" => sig(&["value"], &[], &["value"]),
        "in-net" => sig(&["address", "subnet"], &[], &["address", "subnet"]),
        "matches" | "contains" => sig(&["value", "regex"], &[], &["value"]),
        "one-of" => sig(&["value"], &["values"], &["value"]),
        _ => return Err(format!("Unsupported operator '{op}'.")),
    })
}

pub(super) fn action_signature(op: &str) -> Result<Signature, String> {
    let with_pd = |mut s: Signature| {
        s.plugin_data = true;
        s
    };
    Ok(match op {
        "fail" => sig(&["msg"], &[], &[]),
        "log" => sig(&["msg"], &["level"], &["msg"]),
        "set-attribute" => sig(&["path", "value"], &[], &["value"]),
        "extend-attribute" => sig(&["path", "value"], &["unique"], &["value"]),
        "del-attribute" => sig(&["path"], &[], &[]),
        "set-capability" => sig(&["name", "value"], &[], &["value"]),
        "unset-capability" | "add-trait" | "remove-trait" => sig(&["name"], &[], &[]),
        "set-plugin-data" => with_pd(sig(&["path", "value"], &[], &["value"])),
        "extend-plugin-data" => with_pd(sig(&["path", "value"], &["unique"], &["value"])),
        "unset-plugin-data" => with_pd(sig(&["path"], &[], &[])),
        "set-port-attribute" => sig(&["port_id", "path", "value"], &[], &["value"]),
        "extend-port-attribute" => sig(&["port_id", "path", "value"], &["unique"], &["value"]),
        "del-port-attribute" => sig(&["port_id", "path"], &[], &[]),
        "api-call" => sig(
            &["url"],
            &["headers", "proxies", "timeout", "retries", "backoff_factor"],
            &["url"],
        ),
        _ => return Err(format!("Unsupported action '{op}'.")),
    })
}

impl Signature {
    /// Named arguments from the `args` of a rule entry (an object, or the
    /// deprecated list mapped by position).
    pub(super) fn normalize(&self, args: &Value) -> Result<Map<String, Value>, String> {
        match args {
            Value::Object(m) => {
                let mut m = m.clone();
                if self.plugin_data {
                    m.remove("plugin_data");
                }
                let missing: Vec<&str> = self
                    .required
                    .iter()
                    .copied()
                    .filter(|r| !m.contains_key(*r))
                    .collect();
                let unexpected: Vec<&str> = m
                    .keys()
                    .map(String::as_str)
                    .filter(|k| !self.required.contains(k) && !self.optional.contains(k))
                    .collect();
                let mut msg = Vec::new();
                if !missing.is_empty() {
                    msg.push(format!(
                        "missing required argument(s): {}",
                        missing.join(", ")
                    ));
                }
                if !unexpected.is_empty() {
                    msg.push(format!("unexpected argument(s): {}", unexpected.join(", ")));
                }
                if msg.is_empty() {
                    Ok(m)
                } else {
                    Err(msg.join("; "))
                }
            }
            Value::Array(list) => {
                if list.len() < self.required.len() {
                    return Err(format!(
                        "Not enough arguments provided. Missing: {}",
                        self.required[list.len()..].join(", ")
                    ));
                }
                Ok(self
                    .required
                    .iter()
                    .chain(self.optional)
                    .zip(list)
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect())
            }
            _ => Err("args must be either a list or dictionary".to_owned()),
        }
    }
}

/// Deep copy with the sensitive keys' values replaced by `***` (Ironic's
/// `ShallowMaskDict` view).
fn masked(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = if SENSITIVE_FIELDS.contains(&k.as_str()) {
                        json!("***")
                    } else {
                        masked(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(masked).collect()),
        other => other.clone(),
    }
}

/// Python's `==` between JSON values (`1 == 1.0`, `True == 1`).
fn py_eq(a: &Value, b: &Value) -> bool {
    match (py_number(a), py_number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => match (a, b) {
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(a, b)| py_eq(a, b))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
            }
            _ => a == b,
        },
    }
}

fn py_number(v: &Value) -> Option<f64> {
    match v {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// Python's ordering (`<`): numbers with numbers, strings with strings, lists
/// element by element; anything else is Python's `TypeError`.
fn py_cmp(a: &Value, b: &Value, sym: &str) -> Result<Ordering, String> {
    if let (Some(x), Some(y)) = (py_number(a), py_number(b)) {
        return x
            .partial_cmp(&y)
            .ok_or_else(|| "cannot compare NaN".to_owned());
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                if !py_eq(p, q) {
                    return py_cmp(p, q, sym);
                }
            }
            Ok(x.len().cmp(&y.len()))
        }
        _ => Err(format!(
            "'{sym}' not supported between instances of '{}' and '{}'",
            py_type(a),
            py_type(b)
        )),
    }
}

/// Python's truth of `value in values`.
fn py_in(value: &Value, values: &Value) -> Result<bool, String> {
    match values {
        Value::Array(a) => Ok(a.iter().any(|v| py_eq(v, value))),
        Value::Object(m) => Ok(value.as_str().is_some_and(|k| m.contains_key(k))),
        Value::String(s) => match value {
            Value::String(v) => Ok(s.contains(v.as_str())),
            other => Err(format!(
                "'in <string>' requires string as left operand, not {}",
                py_type(other)
            )),
        },
        other => Err(format!(
            "argument of type '{}' is not iterable",
            py_type(other)
        )),
    }
}

fn py_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// A subnet as netaddr's `IPNetwork` reads it (`10.0.0.0/8`, or one address).
fn in_subnet(address: &Value, subnet: &Value) -> Result<bool, RuleError> {
    let subnet_s = py_str(subnet);
    let (net, len) = match subnet_s.split_once('/') {
        Some((a, l)) => (a.trim(), Some(l.trim())),
        None => (subnet_s.trim(), None),
    };
    let net: IpAddr = net
        .parse()
        .map_err(|_| execution(format!("invalid value: invalid IPNetwork {subnet_s}")))?;
    let max = if net.is_ipv4() { 32 } else { 128 };
    let len: u32 = match len {
        Some(l) => l
            .parse()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| execution(format!("invalid value: invalid IPNetwork {subnet_s}")))?,
        None => max,
    };
    let addr_s = py_str(address);
    let addr: IpAddr = addr_s.trim().parse().map_err(|_| {
        RuleError(format!(
            "failed to detect a valid IP address from '{addr_s}'"
        ))
    })?;
    let bits = |ip: IpAddr| -> u128 {
        match ip {
            IpAddr::V4(v) => u128::from(u32::from(v)),
            IpAddr::V6(v) => u128::from(v),
        }
    };
    if addr.is_ipv4() != net.is_ipv4() {
        return Ok(false);
    }
    if len == 0 {
        return Ok(true);
    }
    let shift = max - len;
    Ok(bits(addr) >> shift == bits(net) >> shift)
}

fn execution(reason: impl std::fmt::Display) -> RuleError {
    RuleError(format!(
        "Inspection rule execution failed. Reason: {reason}"
    ))
}

fn action_failure(reason: impl std::fmt::Display) -> RuleError {
    RuleError(format!(
        "Inspection rule action execution failed. Reason: {reason}"
    ))
}

fn condition_failure(reason: impl std::fmt::Display) -> RuleError {
    RuleError(format!(
        "Inspection rule condition check failed. Reason: {reason}"
    ))
}

/// Ironic's `normalize_path`: `a/b/c` or `a.b.c`.
fn path_parts(path: &str) -> Vec<String> {
    if path.contains('/') {
        path.trim_matches('/')
            .split('/')
            .map(str::to_owned)
            .collect()
    } else {
        path.split('.').map(str::to_owned).collect()
    }
}

/// Node fields the conductor owns: rules may not set or delete them.
const NODE_OWNED: &[&str] = &[
    "uuid",
    "id",
    "provision_state",
    "target_provision_state",
    "provision_updated_at",
    "provision_state_since",
    "step_started_at",
    "power_state",
    "target_power_state",
    "reservation",
    "conductor_affinity",
    "created_at",
    "updated_at",
    "inspection_started_at",
    "inspection_finished_at",
    "allocation_uuid",
    "driver_internal_info",
    "clean_step",
    "deploy_step",
    "service_step",
    "traits",
];

/// Port fields rules may not set or delete.
const PORT_OWNED: &[&str] = &["uuid", "id", "node_uuid", "created_at", "updated_at"];

enum Edit<'v> {
    Set(&'v Value),
    Extend(&'v Value, bool),
    Delete,
}

/// Apply an edit at `parts` of a JSON object (Ironic's attribute helpers:
/// intermediate dictionaries are created by set and extend).
fn edit_json(root: &mut Value, parts: &[String], edit: &Edit<'_>) -> Result<(), String> {
    let (last, parents) = parts.split_last().ok_or("empty path")?;
    let mut cur = root;
    for p in parents {
        let obj = cur
            .as_object_mut()
            .ok_or_else(|| format!("'{p}' is not in a dictionary"))?;
        cur = match edit {
            Edit::Delete => obj.get_mut(p).ok_or_else(|| format!("'{p}'"))?,
            _ => obj.entry(p.clone()).or_insert_with(|| json!({})),
        };
    }
    let ty = py_type(cur);
    let obj = cur
        .as_object_mut()
        .ok_or_else(|| format!("'{ty}' object does not support item assignment"))?;
    match edit {
        Edit::Set(v) => {
            obj.insert(last.clone(), (*v).clone());
        }
        Edit::Extend(v, unique) => {
            let list = obj.entry(last.clone()).or_insert_with(|| json!([]));
            if list.is_null() && parents.is_empty() {
                *list = json!([]);
            }
            let list = list.as_array_mut().ok_or_else(|| {
                format!(
                    "Cannot extend non-list attribute {} with value {}",
                    parts.join("."),
                    py_str(v)
                )
            })?;
            if !*unique || !list.iter().any(|x| py_eq(x, v)) {
                list.push((*v).clone());
            }
        }
        Edit::Delete => {
            if parents.is_empty() {
                // a top-level field is reset, as deleting an object attribute
                obj.insert(last.clone(), Value::Null);
            } else if obj.remove(last).is_none() {
                return Err(format!("'{last}'"));
            }
        }
    }
    Ok(())
}

fn edit_record<T: serde::Serialize + serde::de::DeserializeOwned>(
    record: &mut T,
    owned: &[&str],
    path: &str,
    edit: &Edit<'_>,
) -> Result<(), String> {
    let parts = path_parts(path);
    if let Some(first) = parts.first()
        && owned.contains(&first.as_str())
    {
        return Err(format!(
            "{first} is managed by the conductor and cannot be changed by a rule"
        ));
    }
    let mut v = serde_json::to_value(&*record).map_err(|e| e.to_string())?;
    if let Some(first) = parts.first()
        && v.get(first).is_none()
    {
        return Err(format!("object has no attribute '{first}'"));
    }
    edit_json(&mut v, &parts, edit)?;
    *record = serde_json::from_value(v).map_err(|e| e.to_string())?;
    Ok(())
}

fn as_bool_arg(v: Option<&Value>) -> bool {
    v.is_some_and(py_truthy)
}

/// Ironic's capabilities string `k1:v1,k2:v2`.
fn set_capability(node: &mut Node, name: &str, value: Option<&str>) {
    let existing = node
        .properties
        .get("capabilities")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut caps: Vec<String> = existing
        .split(',')
        .filter(|c| !c.is_empty())
        .filter(|c| c.split(':').next() != Some(name))
        .map(str::to_owned)
        .collect();
    if let Some(v) = value {
        caps.push(format!("{name}:{v}"));
    }
    if caps.is_empty() {
        node.properties.remove("capabilities");
    } else {
        node.properties
            .insert("capabilities".to_owned(), json!(caps.join(",")));
    }
}

/// The state of one rule run over one node.
pub(super) struct Run<'a> {
    pub(super) config: &'a RulesConfig,
    pub(super) node: &'a mut Node,
    pub(super) ports: &'a mut [Port],
    pub(super) inventory: &'a Value,
    pub(super) plugin_data: &'a mut Value,
    pub(super) ports_changed: Vec<usize>,
    /// Whether the current rule sees masked secrets.
    pub(super) mask: bool,
}

impl Run<'_> {
    fn context(&self, item: Option<&Value>) -> Map<String, Value> {
        let mut node = serde_json::to_value(&*self.node).unwrap_or(Value::Null);
        if let Some(n) = node.as_object_mut() {
            n.insert(
                "driver_info".to_owned(),
                Value::Object(self.node.driver_info.masked()),
            );
            if let Some(Value::Object(dii)) = n.get_mut("driver_internal_info") {
                for k in ["agent_secret_token", "agent_secret_token_pregenerated"] {
                    if dii.contains_key(k) {
                        dii.insert(k.to_owned(), json!(MASK));
                    }
                }
            }
        }
        let view = |v: &Value| if self.mask { masked(v) } else { v.clone() };
        let mut ctx = Map::new();
        ctx.insert("node".to_owned(), node);
        ctx.insert("inventory".to_owned(), view(self.inventory));
        ctx.insert("plugin_data".to_owned(), view(self.plugin_data));
        if let Some(i) = item {
            ctx.insert("item".to_owned(), i.clone());
        }
        ctx
    }

    /// Ironic's `interpolate_variables`.
    fn interpolate(v: &Value, ctx: &Map<String, Value>, looped: bool, is_empty: bool) -> Value {
        let safe = |s: &str| -> Value {
            match pyfmt::format(s, ctx) {
                Ok(x) => Value::String(x),
                Err(FormatError::Key(_)) if is_empty => Value::Null,
                Err(e) => {
                    tracing::warn!(value = %s, error = ?e, "inspection rule interpolation failed");
                    Value::String(s.to_owned())
                }
            }
        };
        let v = match (looped, v) {
            (true, Value::String(s)) => safe(s),
            _ => v.clone(),
        };
        match &v {
            Value::String(s) => safe(s),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| {
                        let key = match safe(k) {
                            Value::String(s) => s,
                            _ => k.clone(),
                        };
                        (key, Self::interpolate(x, ctx, looped, is_empty))
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| match x {
                        Value::String(s) => safe(s),
                        other => Self::interpolate(other, ctx, looped, is_empty),
                    })
                    .collect(),
            ),
            _ => v,
        }
    }

    fn process_args(
        &self,
        sig: &Signature,
        entry: &Value,
        op: &str,
        item: Option<&Value>,
    ) -> Result<Map<String, Value>, RuleError> {
        let args = sig
            .normalize(entry.get("args").unwrap_or(&json!({})))
            .map_err(|e| RuleError(format!("Inspection rule validation failed. Reason: {e}")))?;
        let ctx = self.context(item);
        Ok(args
            .into_iter()
            .map(|(k, v)| {
                let v = if sig.formatted.contains(&k.as_str()) || item.is_some() {
                    Self::interpolate(&v, &ctx, item.is_some(), op == "is-empty")
                } else {
                    v
                };
                (k, v)
            })
            .collect())
    }

    /// All conditions of `rule` hold (none: true).
    pub(super) fn check_conditions(&self, rule: &InspectionRule) -> Result<bool, RuleError> {
        for c in &rule.conditions {
            let raw = c.get("op").and_then(Value::as_str).unwrap_or_default();
            let (op, inverted) = parse_inverted(raw).map_err(|e| self.generic(rule, e))?;
            let sig = operator_signature(op).map_err(|e| self.generic(rule, e))?;
            let looped = c.get("loop").filter(|l| py_truthy(l));
            let ok = match looped {
                None => self.check_one(rule, &sig, c, op, inverted, None)?,
                Some(l) => {
                    let multiple = c.get("multiple").and_then(Value::as_str).unwrap_or("any");
                    let mut results = Vec::new();
                    match l {
                        Value::Object(_) => {
                            let r = self.check_one(rule, &sig, c, op, inverted, Some(l))?;
                            results.push(r);
                        }
                        Value::Array(items) => {
                            let mut early = None;
                            for item in items {
                                let r = self.check_one(rule, &sig, c, op, inverted, Some(item))?;
                                if multiple == "first" && r {
                                    early = Some(true);
                                    break;
                                }
                                if multiple == "last" {
                                    results.clear();
                                }
                                results.push(r);
                            }
                            if let Some(e) = early {
                                results = vec![e];
                            }
                        }
                        _ => {}
                    }
                    match multiple {
                        "any" => results.iter().any(|r| *r),
                        "all" => results.iter().all(|r| *r),
                        _ => results.first().copied().unwrap_or(false),
                    }
                }
            };
            if !ok {
                tracing::debug!(node = %self.node.uuid, rule = %rule.uuid, op = %raw, "inspection rule skipped: condition failed");
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn generic(&self, rule: &InspectionRule, e: impl std::fmt::Display) -> RuleError {
        RuleError(format!(
            "Failed to apply rule {} to node {}: {e}",
            rule.uuid, self.node.uuid
        ))
    }

    fn check_one(
        &self,
        rule: &InspectionRule,
        sig: &Signature,
        cond: &Value,
        op: &str,
        inverted: bool,
        item: Option<&Value>,
    ) -> Result<bool, RuleError> {
        let mut args = self.process_args(sig, cond, op, item)?;
        if item.is_some() && sig.optional.contains(&"force_strings") {
            args.insert("force_strings".to_owned(), json!(true));
        }
        let arg = |k: &str| args.get(k).cloned().unwrap_or(Value::Null);
        let r = match op {
            "eq" | "lt" | "gt" => {
                let values = arg("values");
                let Value::Array(mut values) = values else {
                    return Err(condition_failure(format!(
                        "Failed to check condition: '{op}' on values: {}: Expected list for 'values', got: {}",
                        py_str(&values),
                        py_type(&values)
                    )));
                };
                if as_bool_arg(args.get("force_strings")) {
                    values = values.iter().map(|v| json!(py_str(v))).collect();
                }
                let mut ok = true;
                for w in values.windows(2) {
                    let holds = match op {
                        "eq" => py_eq(&w[0], &w[1]),
                        "lt" => {
                            py_cmp(&w[0], &w[1], "<").map_err(|e| self.generic(rule, e))?
                                == Ordering::Less
                        }
                        _ => {
                            py_cmp(&w[0], &w[1], ">").map_err(|e| self.generic(rule, e))?
                                == Ordering::Greater
                        }
                    };
                    if !holds {
                        ok = false;
                        break;
                    }
                }
                ok
            }
            "is-empty" => matches!(py_str(&arg("value")).as_str(), "" | "None" | "[]" | "{}"),
            "in-net" => in_subnet(&arg("address"), &arg("subnet")).map_err(|e| {
                if e.0.starts_with("Inspection") {
                    e
                } else {
                    self.generic(rule, e)
                }
            })?,
            "is-true" => match arg("value") {
                Value::Bool(b) => b,
                Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
                Value::String(s) => matches!(s.to_lowercase().as_str(), "yes" | "true"),
                _ => false,
            },
            "is-false" => match arg("value") {
                Value::Bool(b) => !b,
                Value::Number(n) => n.as_f64().is_none_or(|f| f == 0.0),
                Value::String(s) => matches!(s.to_lowercase().as_str(), "no" | "false"),
                Value::Null => true,
                _ => false,
            },
            "is-none" => arg("value").is_null(),
            "one-of" => py_in(&arg("value"), args.get("values").unwrap_or(&json!([])))
                .map_err(|e| self.generic(rule, e))?,
            "matches" | "contains" => {
                let regex = py_str(&arg("regex"));
                let pattern = if op == "matches" {
                    if regex.ends_with('$') {
                        format!(r"\A(?:{regex})")
                    } else {
                        format!(r"\A(?:{regex}$)")
                    }
                } else {
                    regex.clone()
                };
                let re = regex::Regex::new(&pattern)
                    .map_err(|e| execution(format!("invalid regular expression: {e}")))?;
                re.is_match(&py_str(&arg("value")))
            }
            other => return Err(self.generic(rule, format!("Unsupported operator '{other}'."))),
        };
        Ok(r != inverted)
    }

    /// Run the actions of `rule` in order.
    pub(super) async fn apply_actions(&mut self, rule: &InspectionRule) -> Result<(), RuleError> {
        for a in &rule.actions {
            let op = a.get("op").and_then(Value::as_str).unwrap_or_default();
            let sig = action_signature(op).map_err(|e| self.generic(rule, e))?;
            match a.get("loop").filter(|l| py_truthy(l)) {
                None => self.execute(rule, &sig, a, op, None).await?,
                Some(l @ Value::Object(_)) => self.execute(rule, &sig, a, op, Some(l)).await?,
                Some(Value::Array(items)) => {
                    for item in items {
                        self.execute(rule, &sig, a, op, Some(item)).await?;
                    }
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    async fn execute(
        &mut self,
        rule: &InspectionRule,
        sig: &Signature,
        action: &Value,
        op: &str,
        item: Option<&Value>,
    ) -> Result<(), RuleError> {
        let args = self.process_args(sig, action, op, item)?;
        let arg = |k: &str| args.get(k).cloned().unwrap_or(Value::Null);
        let s = |k: &str| py_str(&arg(k));
        let node = self.node.uuid;
        match op {
            "fail" => {
                return Err(RuleError(format!(
                    "Failed to inspect hardware. Reason: {}",
                    s("msg")
                )));
            }
            "log" => {
                let level = args
                    .get("level")
                    .map(py_str)
                    .unwrap_or_else(|| "info".to_owned())
                    .to_lowercase();
                let msg = s("msg");
                let rule_id = rule.uuid;
                match level.as_str() {
                    "debug" => tracing::debug!(node = %node, rule = %rule_id, "{msg}"),
                    "info" => tracing::info!(node = %node, rule = %rule_id, "{msg}"),
                    "warning" => tracing::warn!(node = %node, rule = %rule_id, "{msg}"),
                    "error" | "critical" => tracing::error!(node = %node, rule = %rule_id, "{msg}"),
                    other => {
                        return Err(execution(format!(
                            "Invalid log level: {other}. Choose from {{'debug', 'info', 'warning', 'error', 'critical'}}"
                        )));
                    }
                }
            }
            "set-attribute" | "extend-attribute" | "del-attribute" => {
                let path = s("path");
                let value = arg("value");
                let edit = match op {
                    "set-attribute" => Edit::Set(&value),
                    "extend-attribute" => Edit::Extend(&value, as_bool_arg(args.get("unique"))),
                    _ => Edit::Delete,
                };
                edit_record(&mut *self.node, NODE_OWNED, &path, &edit).map_err(|e| {
                    action_failure(match op {
                        "set-attribute" => format!(
                            "Failed to set attribute {path} with value {}: {e}",
                            py_str(&value)
                        ),
                        "extend-attribute" => format!("Failed to extend attribute {path}: {e}"),
                        _ => format!("Failed to delete attribute at {path}: {e}"),
                    })
                })?;
            }
            "set-capability" => set_capability(self.node, &s("name"), Some(&s("value"))),
            "unset-capability" => set_capability(self.node, &s("name"), None),
            "add-trait" => {
                let name = s("name");
                crate::model::validate_trait(&name)
                    .map_err(|e| action_failure(format!("Failed to add new trait {name}: {e}")))?;
                if !self.node.traits.contains(&name) {
                    self.node.traits.push(name);
                }
            }
            "remove-trait" => {
                let name = s("name");
                match self.node.traits.iter().position(|t| *t == name) {
                    Some(i) => {
                        self.node.traits.remove(i);
                    }
                    None => {
                        tracing::warn!(node = %node, "Failed to remove trait {name}: the node has no such trait")
                    }
                }
            }
            "set-plugin-data" | "extend-plugin-data" | "unset-plugin-data" => {
                let path = s("path");
                let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
                let value = arg("value");
                match op {
                    "set-plugin-data" => edit_json(self.plugin_data, &parts, &Edit::Set(&value))
                        .map_err(|e| {
                            action_failure(format!("Failed to set plugin data at {path}: {e}"))
                        })?,
                    "extend-plugin-data" => edit_json(
                        self.plugin_data,
                        &parts,
                        &Edit::Extend(&value, as_bool_arg(args.get("unique"))),
                    )
                    .map_err(|e| {
                        action_failure(format!("Failed to extend plugin data at {path}: {e}"))
                    })?,
                    _ => {
                        if !unset_nested(self.plugin_data, &parts) {
                            tracing::warn!(node = %node, "Path {path} not found");
                        }
                    }
                }
            }
            "set-port-attribute" | "extend-port-attribute" | "del-port-attribute" => {
                let port_id = s("port_id");
                let i = self
                    .ports
                    .iter()
                    .position(|p| p.uuid.to_string() == port_id)
                    .ok_or_else(|| RuleError(format!("Port {port_id} could not be found.")))?;
                let path = s("path");
                let value = arg("value");
                let edit = match op {
                    "set-port-attribute" => Edit::Set(&value),
                    "extend-port-attribute" => {
                        Edit::Extend(&value, as_bool_arg(args.get("unique")))
                    }
                    _ => Edit::Delete,
                };
                edit_record(&mut self.ports[i], PORT_OWNED, &path, &edit).map_err(|e| {
                    action_failure(match op {
                        "set-port-attribute" => {
                            format!("Failed to set attribute {path} for port {port_id}: {e}")
                        }
                        "extend-port-attribute" => {
                            format!("Failed to extend attribute {path} for port {port_id}: {e}")
                        }
                        _ => format!("Failed to delete attribute {path} for port {port_id}: {e}"),
                    })
                })?;
                self.ports_changed.push(i);
            }
            "api-call" => {
                let call = api_call(&args)
                    .map_err(|e| action_failure(format!("Invalid parameter: {e}")))?;
                let http = self.config.http.as_ref().ok_or_else(|| {
                    action_failure(format!(
                        "Request to {} failed: no HTTP client is configured for api-call actions",
                        call.url
                    ))
                })?;
                http.get(&call)
                    .await
                    .map_err(|e| action_failure(format!("Request to {} failed: {e}", call.url)))?;
            }
            other => return Err(self.generic(rule, format!("Unsupported action '{other}'."))),
        }
        Ok(())
    }
}

fn api_call(args: &Map<String, Value>) -> Result<ApiCall, String> {
    let num = |k: &str, default: f64| -> Result<f64, String> {
        match args.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) => n.as_f64().ok_or_else(|| format!("invalid {k}")),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map_err(|_| format!("could not convert string to float: '{s}'")),
            Some(v) => Err(format!("invalid {k}: {}", py_repr(v))),
        }
    };
    let timeout = num("timeout", 5.0)?;
    if timeout <= 0.0 || !timeout.is_finite() {
        return Err("timeout must be greater than zero".to_owned());
    }
    let retries = num("retries", 3.0)?;
    if retries < 0.0 || retries.fract() != 0.0 {
        return Err(format!("invalid literal for int(): '{retries}'"));
    }
    let backoff_factor = num("backoff_factor", 0.3)?;
    let pairs = |k: &str| -> Result<Vec<(String, String)>, String> {
        match args.get(k) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(m)) => Ok(m.iter().map(|(k, v)| (k.clone(), py_str(v))).collect()),
            Some(v) => Err(format!("{k} must be a dictionary, not {}", py_type(v))),
        }
    };
    let url = args.get("url").map(py_str).unwrap_or_default();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("Invalid URL '{url}': No scheme supplied."));
    }
    Ok(ApiCall {
        url,
        headers: pairs("headers")?,
        proxies: pairs("proxies")?,
        timeout: Duration::from_secs_f64(timeout),
        retries: retries as u32,
        backoff_factor,
    })
}

/// Ironic's `_unset_nested_dict`: removing the last key of a dictionary
/// removes the dictionary from its parent.
fn unset_nested(root: &mut Value, parts: &[String]) -> bool {
    let Some((last, parents)) = parts.split_last() else {
        return false;
    };
    let mut cur = &*root;
    for p in parents {
        match cur.get(p) {
            Some(v) if v.is_object() => cur = v,
            _ => return false,
        }
    }
    let Some(obj) = cur.as_object() else {
        return false;
    };
    if !obj.contains_key(last) {
        return false;
    }
    let only = obj.len() == 1;
    let mut cur = root;
    let upto = if only && !parents.is_empty() {
        parents.len() - 1
    } else {
        parents.len()
    };
    for p in &parents[..upto] {
        cur = match cur.get_mut(p) {
            Some(v) => v,
            None => return false,
        };
    }
    let key = if only && !parents.is_empty() {
        &parents[parents.len() - 1]
    } else {
        last
    };
    cur.as_object_mut().is_some_and(|o| o.remove(key).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_comparisons() {
        assert!(py_eq(&json!(1), &json!(1.0)));
        assert!(py_eq(&json!(true), &json!(1)));
        assert!(!py_eq(&json!("1"), &json!(1)));
        assert_eq!(py_cmp(&json!(2), &json!(10), "<").unwrap(), Ordering::Less);
        assert_eq!(
            py_cmp(&json!("2"), &json!("10"), "<").unwrap(),
            Ordering::Greater
        );
        assert!(py_cmp(&json!("2"), &json!(10), "<").is_err());
        assert!(py_in(&json!("a"), &json!(["a", "b"])).unwrap());
        assert!(py_in(&json!("bc"), &json!("abcd")).unwrap());
    }

    #[test]
    fn subnets() {
        let t = |a: &str, s: &str| in_subnet(&json!(a), &json!(s));
        assert!(t("10.1.2.3", "10.0.0.0/8").unwrap());
        assert!(!t("11.1.2.3", "10.0.0.0/8").unwrap());
        assert!(t("fd00::1", "fd00::/64").unwrap());
        assert!(!t("10.0.0.1", "fd00::/64").unwrap());
        assert!(t("192.0.2.7", "192.0.2.7").unwrap());
        assert!(t("192.0.2.7", "0.0.0.0/0").unwrap());
        assert!(t("x", "10.0.0.0/8").is_err());
        assert!(
            t("10.0.0.1", "10.0.0.0/33")
                .unwrap_err()
                .0
                .contains("invalid value")
        );
    }

    #[test]
    fn arguments_are_checked_as_ironic_does() {
        let s = action_signature("set-attribute").unwrap();
        assert!(s.normalize(&json!({"path": "a", "value": 1})).is_ok());
        assert_eq!(
            s.normalize(&json!({"path": "a", "bogus": 1})).unwrap_err(),
            "missing required argument(s): value; unexpected argument(s): bogus"
        );
        let m = s.normalize(&json!(["a", 1])).unwrap();
        assert_eq!(m["path"], json!("a"));
        assert!(
            s.normalize(&json!(["a"]))
                .unwrap_err()
                .contains("Missing: value")
        );
        assert!(s.normalize(&json!("x")).is_err());
        // plugin data actions: the engine passes the data, the user does not
        let p = action_signature("set-plugin-data").unwrap();
        assert!(p.normalize(&json!({"path": "a", "value": 1})).is_ok());
        assert!(operator_signature("nope").is_err());
    }

    #[test]
    fn nested_unset_removes_emptied_dictionaries() {
        let mut v = json!({"a": {"b": 1}, "c": {"d": 1, "e": 2}});
        assert!(unset_nested(&mut v, &["a".into(), "b".into()]));
        assert_eq!(v, json!({"c": {"d": 1, "e": 2}}));
        assert!(unset_nested(&mut v, &["c".into(), "d".into()]));
        assert_eq!(v, json!({"c": {"e": 2}}));
        assert!(!unset_nested(&mut v, &["x".into(), "y".into()]));
    }
}
