//! The part of Python's `str.format` and `str()` that Ironic's inspection rules
//! use: `{inventory[interfaces][0][mac_address]}`, `{node.driver_info[ipmi_address]}`,
//! `{item[path]}`, `{{`/`}}` escapes, `!s`/`!r` conversions, and Python's
//! rendering of values (`None`, `True`, `['a', 'b']`, `{'k': 1}`), so a rule
//! written for Ironic gives the same strings here.

use serde_json::{Map, Value};

/// Why a format string could not be expanded (Python's exception class).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FormatError {
    /// A missing key or name (`KeyError`): `is-empty` treats it as `None`.
    Key(String),
    /// Anything else (`AttributeError`, `IndexError`, `ValueError`, `TypeError`).
    Other(String),
}

/// Expand `template` with the named roots in `ctx` (`node`, `inventory`,
/// `plugin_data`, `item`). `node` is the only root whose fields are read as
/// attributes (`node.uuid`); the others are dictionaries read with `[key]`.
pub(crate) fn format(template: &str, ctx: &Map<String, Value>) -> Result<String, FormatError> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' => {
                if chars.peek().map(|(_, c)| *c) == Some('{') {
                    chars.next();
                    out.push('{');
                    continue;
                }
                // find the matching '}' (nested braces only occur in format specs)
                let start = i + 1;
                let mut depth = 1;
                let mut end = None;
                for (j, c) in chars.by_ref() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(j);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or_else(|| {
                    FormatError::Other("expected '}' before end of string".to_owned())
                })?;
                out.push_str(&field(&template[start..end], ctx)?);
            }
            '}' => {
                if chars.peek().map(|(_, c)| *c) == Some('}') {
                    chars.next();
                    out.push('}');
                } else {
                    return Err(FormatError::Other(
                        "Single '}' encountered in format string".to_owned(),
                    ));
                }
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// One replacement field: `name(.attr|[key])*[!conv][:spec]`.
fn field(spec: &str, ctx: &Map<String, Value>) -> Result<String, FormatError> {
    // the field name ends at the first '!' or ':' outside brackets
    let mut in_brackets = false;
    let mut cut = spec.len();
    for (i, c) in spec.char_indices() {
        match c {
            '[' => in_brackets = true,
            ']' => in_brackets = false,
            '!' | ':' if !in_brackets => {
                cut = i;
                break;
            }
            _ => {}
        }
    }
    let name_part = &spec[..cut];
    let tail = &spec[cut..];
    let (conversion, format_spec) = match tail.strip_prefix('!') {
        Some(t) => match t.split_once(':') {
            Some((c, f)) => (Some(c), Some(f)),
            None => (Some(t), None),
        },
        None => (None, tail.strip_prefix(':')),
    };
    if format_spec.is_some_and(|s| !s.is_empty()) {
        return Err(FormatError::Other(format!(
            "format specifications are not supported: {{{spec}}}"
        )));
    }
    let value = resolve(name_part, ctx)?;
    match conversion {
        None | Some("s") => Ok(py_str(&value)),
        Some("r") | Some("a") => Ok(py_repr(&value)),
        Some(c) => Err(FormatError::Other(format!(
            "Unknown conversion specifier {c}"
        ))),
    }
}

fn resolve(path: &str, ctx: &Map<String, Value>) -> Result<Value, FormatError> {
    let first_end = path.find(['.', '[']).unwrap_or(path.len());
    let root = &path[..first_end];
    if root.is_empty() {
        return Err(FormatError::Other(
            "Format string contains positional fields".to_owned(),
        ));
    }
    let mut cur = ctx
        .get(root)
        .ok_or_else(|| FormatError::Key(format!("'{root}'")))?;
    let mut rest = &path[first_end..];
    let mut is_node = root == "node";
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let attr = &r[..end];
            if attr.is_empty() {
                return Err(FormatError::Other(
                    "Empty attribute in format string".to_owned(),
                ));
            }
            // only the node is an object with attributes; dictionaries have none
            if !is_node {
                return Err(FormatError::Other(format!(
                    "'dict' object has no attribute '{attr}'"
                )));
            }
            cur = cur.get(attr).ok_or_else(|| {
                FormatError::Other(format!("'Node' object has no attribute '{attr}'"))
            })?;
            is_node = false;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| FormatError::Other("Missing ']' in format string".to_owned()))?;
            let key = &r[..end];
            if key.is_empty() {
                return Err(FormatError::Other(
                    "Empty attribute in format string".to_owned(),
                ));
            }
            if is_node {
                return Err(FormatError::Other(
                    "'Node' object is not subscriptable".to_owned(),
                ));
            }
            let numeric = key.bytes().all(|b| b.is_ascii_digit());
            cur = match cur {
                Value::Object(m) => {
                    if numeric {
                        // Python looks the int up: JSON keys are strings
                        return Err(FormatError::Key(key.to_owned()));
                    }
                    m.get(key)
                        .ok_or_else(|| FormatError::Key(format!("'{key}'")))?
                }
                Value::Array(a) => {
                    if !numeric {
                        return Err(FormatError::Other(
                            "list indices must be integers or slices, not str".to_owned(),
                        ));
                    }
                    let i: usize = key
                        .parse()
                        .map_err(|_| FormatError::Other("list index out of range".to_owned()))?;
                    a.get(i)
                        .ok_or_else(|| FormatError::Other("list index out of range".to_owned()))?
                }
                Value::String(s) => {
                    if !numeric {
                        return Err(FormatError::Other(
                            "string indices must be integers, not 'str'".to_owned(),
                        ));
                    }
                    let i: usize = key.parse().unwrap_or(usize::MAX);
                    let ch = s.chars().nth(i).ok_or_else(|| {
                        FormatError::Other("string index out of range".to_owned())
                    })?;
                    return finish(Value::String(ch.to_string()), &r[end + 1..]);
                }
                other => {
                    return Err(FormatError::Other(format!(
                        "'{}' object is not subscriptable",
                        py_type(other)
                    )));
                }
            };
            rest = &r[end + 1..];
        } else {
            return Err(FormatError::Other(
                "Only '.' or '[' may follow ']' in format field specifier".to_owned(),
            ));
        }
    }
    Ok(cur.clone())
}

fn finish(v: Value, rest: &str) -> Result<Value, FormatError> {
    if rest.is_empty() {
        Ok(v)
    } else {
        Err(FormatError::Other(
            "'str' object is not subscriptable".to_owned(),
        ))
    }
}

/// Python's type name of a JSON value.
pub(crate) fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Python's `str(value)`.
pub(crate) fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr(value)`.
pub(crate) fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => py_float(f),
            _ => n.to_string(),
        },
        Value::String(s) => py_str_repr(s),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(py_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", py_str_repr(k), py_repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if f == f.trunc() && f.abs() < 1e16 {
        format!("{f:.1}")
    } else if f.abs() >= 1e16 || (f != 0.0 && f.abs() < 1e-4) {
        // Python switches to exponent notation: 1e+16, 1e-05
        let s = format!("{f:e}");
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
        f.to_string()
    }
}

fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Map<String, Value> {
        json!({
            "node": {"uuid": "u-1", "driver_info": {"ipmi_address": "10.0.0.1"}, "name": null},
            "inventory": {
                "bmc_address": "192.0.2.1",
                "interfaces": [{"name": "eth0", "mac_address": "52:54:00:00:00:01"}],
                "memory": {"physical_mb": 16384},
                "cpu": {"flags": ["vmx", "sse"]},
                "ratio": 0.5,
                "ok": true,
            },
            "item": {"path": "driver_info/ipmi_address"}
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn fields_are_expanded_as_python_does() {
        let c = ctx();
        let f = |s: &str| format(s, &c);
        assert_eq!(f("{inventory[bmc_address]}").unwrap(), "192.0.2.1");
        assert_eq!(
            f("mac={inventory[interfaces][0][mac_address]}!").unwrap(),
            "mac=52:54:00:00:00:01!"
        );
        assert_eq!(f("{inventory[memory][physical_mb]}").unwrap(), "16384");
        assert_eq!(f("{inventory[cpu][flags]}").unwrap(), "['vmx', 'sse']");
        assert_eq!(f("{inventory[memory]}").unwrap(), "{'physical_mb': 16384}");
        assert_eq!(f("{inventory[ratio]} {inventory[ok]}").unwrap(), "0.5 True");
        assert_eq!(f("{node.uuid} {node.name}").unwrap(), "u-1 None");
        assert_eq!(f("{node.driver_info[ipmi_address]}").unwrap(), "10.0.0.1");
        assert_eq!(f("{item[path]}").unwrap(), "driver_info/ipmi_address");
        assert_eq!(f("{{literal}}").unwrap(), "{literal}");
        assert_eq!(f("{inventory[bmc_address]!r}").unwrap(), "'192.0.2.1'");
    }

    #[test]
    fn errors_are_classified_as_python_does() {
        let c = ctx();
        let f = |s: &str| format(s, &c);
        assert!(matches!(
            f("{inventory[missing]}"),
            Err(FormatError::Key(_))
        ));
        assert!(matches!(f("{nothing}"), Err(FormatError::Key(_))));
        assert!(matches!(
            f("{inventory.bmc_address}"),
            Err(FormatError::Other(_))
        ));
        assert!(matches!(
            f("{inventory[interfaces][5]}"),
            Err(FormatError::Other(_))
        ));
        assert!(matches!(
            f("{inventory[interfaces][x]}"),
            Err(FormatError::Other(_))
        ));
        assert!(matches!(f("{node.nope}"), Err(FormatError::Other(_))));
        assert!(matches!(f("{}"), Err(FormatError::Other(_))));
        assert!(matches!(f("{inventory"), Err(FormatError::Other(_))));
        assert!(matches!(f("a } b"), Err(FormatError::Other(_))));
    }

    #[test]
    fn values_render_as_python_str() {
        assert_eq!(py_str(&json!(null)), "None");
        assert_eq!(py_str(&json!([])), "[]");
        assert_eq!(py_str(&json!({})), "{}");
        assert_eq!(py_str(&json!(1.0)), "1.0");
        assert_eq!(py_str(&json!(1e20)), "1e+20");
        assert_eq!(py_str(&json!("it's")), "it's");
        assert_eq!(py_repr(&json!("it's")), "\"it's\"");
        assert_eq!(py_repr(&json!({"a": [1, false]})), "{'a': [1, False]}");
    }
}
