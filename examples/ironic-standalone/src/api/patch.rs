//! JSON patch (RFC 6902) as Ironic applies it: a list of `add`/`replace`/`remove`
//! operations, only on allowed root fields, no new root attributes, applied one
//! at a time so the error names the failing operation.

use serde_json::{Map, Value};

use super::error::ApiError;

/// One operation.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchOp {
    /// `add`, `replace` or `remove`.
    pub op: Op,
    /// The JSON pointer.
    pub path: String,
    /// The value (`add`/`replace`).
    pub value: Option<Value>,
}

/// Operation kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Add a member (or replace an existing one) / insert into an array.
    Add,
    /// Replace an existing value.
    Replace,
    /// Remove an existing value.
    Remove,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Replace => "replace",
            Op::Remove => "remove",
        }
    }
}

impl PatchOp {
    /// The root field the operation touches (`/driver_info/x` → `driver_info`).
    pub fn root(&self) -> String {
        let first = self
            .path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("");
        unescape(first)
    }

    fn describe(&self) -> String {
        let mut m = Map::new();
        m.insert("op".into(), self.op.as_str().into());
        m.insert("path".into(), self.path.clone().into());
        if let Some(v) = &self.value {
            m.insert("value".into(), v.clone());
        }
        Value::Object(m).to_string()
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Parse a PATCH body: a JSON array of `{op, path[, value]}` objects.
pub fn parse(body: &[u8]) -> Result<Vec<PatchOp>, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON patch document: {e}")))?;
    let Value::Array(items) = v else {
        return Err(ApiError::bad_request(
            "Invalid JSON patch document: expected a list of operations",
        ));
    };
    let mut ops = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(mut m) = item else {
            return Err(ApiError::bad_request(format!(
                "Invalid patch operation {item}: expected an object with op and path"
            )));
        };
        for k in m.keys() {
            if !matches!(k.as_str(), "op" | "path" | "value") {
                return Err(ApiError::bad_request(format!(
                    "Invalid patch operation: additional property {k:?} is not allowed (only op, path, value)"
                )));
            }
        }
        let op = match m.get("op").and_then(Value::as_str) {
            Some("add") => Op::Add,
            Some("replace") => Op::Replace,
            Some("remove") => Op::Remove,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid patch operation: {other:?} is not one of ['add', 'replace', 'remove']"
                )));
            }
            None => {
                return Err(ApiError::bad_request(
                    "Invalid patch operation: 'op' is a required property",
                ));
            }
        };
        let path = match m.get("path").and_then(Value::as_str) {
            Some(p) if p.starts_with('/') && p.len() > 1 && !p.ends_with('/') => p.to_owned(),
            Some(p) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid patch path {p:?}: it must be a JSON pointer to an attribute, such as /extra/foo"
                )));
            }
            None => {
                return Err(ApiError::bad_request(
                    "Invalid patch operation: 'path' is a required property",
                ));
            }
        };
        let value = m.remove("value");
        if op != Op::Remove && value.is_none() {
            return Err(ApiError::bad_request(format!(
                "Invalid patch operation on {path}: 'value' is required for {}",
                op.as_str()
            )));
        }
        ops.push(PatchOp { op, path, value });
    }
    Ok(ops)
}

/// Refuse operations outside `allowed` root fields, as Ironic's
/// `patch_validate_allowed_fields` does.
pub fn check_allowed(ops: &[PatchOp], allowed: &[&str]) -> Result<(), ApiError> {
    for op in ops {
        if !allowed.contains(&op.root().as_str()) {
            return Err(ApiError::bad_request(format!(
                "Cannot patch {}. Only the following can be updated: {}",
                op.path,
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

/// Apply `ops` to `doc` one at a time. Adding a new root attribute is refused.
pub fn apply(doc: &mut Value, ops: &[PatchOp]) -> Result<(), ApiError> {
    for op in ops {
        if op.op == Op::Add && op.path.matches('/').count() == 1 && doc.get(op.root()).is_none() {
            return Err(ApiError::bad_request(format!(
                "Adding a new attribute ({}) to the root of the resource is not allowed",
                op.path
            )));
        }
    }
    for op in ops {
        apply_one(doc, op).map_err(|reason| {
            ApiError::bad_request(format!(
                "Couldn't apply patch '{}'. Reason: {reason}",
                op.describe()
            ))
        })?;
    }
    Ok(())
}

fn apply_one(doc: &mut Value, op: &PatchOp) -> Result<(), String> {
    let tokens: Vec<String> = op.path[1..].split('/').map(unescape).collect();
    let (last, parents) = tokens.split_last().ok_or("empty path")?;
    let mut cur = doc;
    for t in parents {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(t)
                .ok_or_else(|| format!("member '{t}' not found in {}", op.path))?,
            Value::Array(a) => {
                let i = index(t, a.len(), false)?;
                &mut a[i]
            }
            _ => return Err(format!("'{t}' in {} is not a container", op.path)),
        };
        // JSON null parents (e.g. an unset dict field) cannot hold members.
        if cur.is_null() {
            return Err(format!("member '{t}' of {} is null", op.path));
        }
    }
    match cur {
        Value::Object(m) => match op.op {
            Op::Add => {
                m.insert(last.clone(), op.value.clone().unwrap_or(Value::Null));
            }
            Op::Replace => {
                let slot = m
                    .get_mut(last)
                    .ok_or_else(|| format!("can't replace a non-existent object '{last}'"))?;
                *slot = op.value.clone().unwrap_or(Value::Null);
            }
            Op::Remove => {
                m.remove(last)
                    .ok_or_else(|| format!("can't remove a non-existent object '{last}'"))?;
            }
        },
        Value::Array(a) => match op.op {
            Op::Add => {
                let i = index(last, a.len(), true)?;
                a.insert(i, op.value.clone().unwrap_or(Value::Null));
            }
            Op::Replace => {
                let i = index(last, a.len(), false)?;
                a[i] = op.value.clone().unwrap_or(Value::Null);
            }
            Op::Remove => {
                let i = index(last, a.len(), false)?;
                a.remove(i);
            }
        },
        _ => {
            return Err(format!(
                "the parent of {} is not an object or a list",
                op.path
            ));
        }
    }
    Ok(())
}

fn index(token: &str, len: usize, for_insert: bool) -> Result<usize, String> {
    if token == "-" && for_insert {
        return Ok(len);
    }
    if token.is_empty()
        || !token.bytes().all(|b| b.is_ascii_digit())
        || (token.len() > 1 && token.starts_with('0'))
    {
        return Err(format!("'{token}' is not a valid list index"));
    }
    let i: usize = token
        .parse()
        .map_err(|_| format!("'{token}' is not a valid list index"))?;
    if i > len || (!for_insert && i == len) {
        return Err(format!("list index {i} is out of range"));
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(doc: Value, patch: Value) -> Result<Value, String> {
        let ops = parse(patch.to_string().as_bytes()).map_err(|e| e.message().to_owned())?;
        let mut d = doc;
        apply(&mut d, &ops).map_err(|e| e.message().to_owned())?;
        Ok(d)
    }

    #[test]
    fn add_replace_remove_nested() {
        let d = run(
            json!({"driver_info": {}, "extra": {"a": 1}, "traits": ["A"]}),
            json!([
                {"op": "add", "path": "/driver_info/ipmi_address", "value": "1.2.3.4"},
                {"op": "replace", "path": "/extra", "value": {"rack": "r1"}},
                {"op": "add", "path": "/traits/-", "value": "B"},
                {"op": "add", "path": "/traits/0", "value": "Z"},
                {"op": "remove", "path": "/traits/1"},
                {"op": "add", "path": "/driver_info/a~1b", "value": 1}
            ]),
        )
        .unwrap();
        assert_eq!(
            d,
            json!({"driver_info": {"ipmi_address": "1.2.3.4", "a/b": 1}, "extra": {"rack": "r1"}, "traits": ["Z", "B"]})
        );
    }

    #[test]
    fn errors_name_the_operation() {
        let e = run(
            json!({"extra": {}}),
            json!([{"op": "remove", "path": "/extra/nope"}]),
        )
        .unwrap_err();
        assert!(e.starts_with("Couldn't apply patch"), "{e}");
        assert!(
            e.contains("can't remove a non-existent object 'nope'"),
            "{e}"
        );
        let e = run(
            json!({"extra": {}}),
            json!([{"op": "replace", "path": "/extra/x", "value": 1}]),
        )
        .unwrap_err();
        assert!(e.contains("can't replace a non-existent object 'x'"), "{e}");
        let e = run(
            json!({"extra": {}}),
            json!([{"op": "add", "path": "/bogus", "value": 1}]),
        )
        .unwrap_err();
        assert!(e.contains("Adding a new attribute (/bogus)"), "{e}");
    }

    #[test]
    fn malformed_patches_are_refused() {
        for bad in [
            json!({"op": "add"}),
            json!([{"op": "move", "path": "/a", "from": "/b"}]),
            json!([{"op": "add", "path": "/a"}]),
            json!([{"op": "add", "path": "a", "value": 1}]),
            json!([{"path": "/a"}]),
            json!([{"op": "remove", "path": "/a", "extra": 1}]),
            json!(["x"]),
        ] {
            assert!(parse(bad.to_string().as_bytes()).is_err(), "{bad}");
        }
        assert!(parse(b"not json").is_err());
    }

    #[test]
    fn allowed_fields_are_enforced() {
        let ops = parse(br#"[{"op": "replace", "path": "/provision_state", "value": "active"}]"#)
            .unwrap();
        let e = check_allowed(&ops, &["extra", "name"]).unwrap_err();
        assert_eq!(
            e.message(),
            "Cannot patch /provision_state. Only the following can be updated: extra, name"
        );
    }

    proptest::proptest! {
        #[test]
        fn add_then_remove_restores_the_document(key in "[a-z~/]{1,8}", v in proptest::num::i64::ANY) {
            let original = json!({"extra": {"keep": true}});
            let esc = key.replace('~', "~0").replace('/', "~1");
            let d = run(original.clone(), json!([
                {"op": "add", "path": format!("/extra/{esc}"), "value": v},
                {"op": "remove", "path": format!("/extra/{esc}")}
            ]));
            if key == "keep" {
                proptest::prop_assert!(d.is_ok());
            } else {
                proptest::prop_assert_eq!(d.unwrap(), original);
            }
        }
    }
}
