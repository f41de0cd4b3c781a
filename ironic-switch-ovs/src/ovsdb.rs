//! OVSDB's JSON encodings (RFC 7047 §5.1): sets, maps, UUIDs, and the operations
//! this driver builds.

use serde_json::{Value, json};

/// `["set", [..]]` (an empty set is how an optional column is cleared).
pub fn set(items: impl IntoIterator<Item = Value>) -> Value {
    json!(["set", items.into_iter().collect::<Vec<_>>()])
}

/// `["map", [[k, v], ..]]`.
pub fn map<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> Value {
    json!([
        "map",
        pairs
            .into_iter()
            .map(|(k, v)| json!([k, v]))
            .collect::<Vec<_>>()
    ])
}

/// `["uuid", id]`.
pub fn uuid(id: &str) -> Value {
    json!(["uuid", id])
}

/// The elements of a set column (a bare atom is a one-element set).
pub fn elements(v: &Value) -> Vec<Value> {
    match v.as_array() {
        Some(a) if a.first().and_then(Value::as_str) == Some("set") => a
            .get(1)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        _ => vec![v.clone()],
    }
}

/// The UUID string of `["uuid", id]`.
pub fn uuid_of(v: &Value) -> Option<String> {
    match v.as_array().map(Vec::as_slice) {
        Some([t, id]) if t == "uuid" => id.as_str().map(str::to_owned),
        _ => None,
    }
}

/// The UUIDs in a set-of-references column.
pub fn uuids(v: &Value) -> Vec<String> {
    elements(v).iter().filter_map(uuid_of).collect()
}

/// An optional integer column.
pub fn opt_int(v: &Value) -> Option<i64> {
    elements(v).first().and_then(Value::as_i64)
}

/// An optional string column.
pub fn opt_str(v: &Value) -> Option<String> {
    elements(v)
        .first()
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// A map column as `(key, value)` string pairs.
pub fn map_of(v: &Value) -> Vec<(String, String)> {
    match v.as_array().map(Vec::as_slice) {
        Some([t, pairs]) if t == "map" => pairs
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| {
                        let p = p.as_array()?;
                        Some((
                            p.first()?.as_str()?.to_owned(),
                            p.get(1)?.as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// `select` of `columns` from `table` where `column == value`.
pub fn select_eq(table: &str, column: &str, value: Value, columns: &[&str]) -> Value {
    json!({"op": "select", "table": table, "where": [[column, "==", value]], "columns": columns})
}

/// `update` of the row with `_uuid`.
pub fn update_uuid(table: &str, id: &str, row: Value) -> Value {
    json!({"op": "update", "table": table, "where": [["_uuid", "==", uuid(id)]], "row": row})
}

/// `mutate` of the row with `_uuid`.
pub fn mutate_uuid(table: &str, id: &str, mutations: Value) -> Value {
    json!({"op": "mutate", "table": table, "where": [["_uuid", "==", uuid(id)]], "mutations": mutations})
}

/// A guard: the transaction fails unless the row with `_uuid` still exists with
/// this `name` (nobody deleted or renamed it since it was read).
pub fn wait_named(table: &str, id: &str, name: &str) -> Value {
    json!({"op": "wait", "timeout": 0, "table": table, "where": [["_uuid", "==", uuid(id)]],
           "columns": ["name"], "until": "==", "rows": [{"name": name}]})
}

/// The rows of a `select` result.
pub fn rows(result: &Value) -> Vec<Value> {
    result
        .get("rows")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_round_trip() {
        assert_eq!(elements(&json!(["set", [1, 2]])), vec![json!(1), json!(2)]);
        assert_eq!(elements(&json!(7)), vec![json!(7)]);
        assert_eq!(opt_int(&json!(["set", []])), None);
        assert_eq!(opt_int(&json!(100)), Some(100));
        assert_eq!(uuids(&json!(["uuid", "a"])), vec!["a".to_string()]);
        assert_eq!(
            uuids(&json!(["set", [["uuid", "a"], ["uuid", "b"]]])),
            vec!["a".to_string(), "b".to_string()]
        );
        assert_eq!(
            map_of(&map([("k", "v".to_string())])),
            vec![("k".to_string(), "v".to_string())]
        );
    }
}
