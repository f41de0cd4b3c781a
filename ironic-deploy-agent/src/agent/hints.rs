//! Root device hints (`properties.root_device` / `instance_info.root_device`),
//! matched as IPA's `match_root_device_hints` does, with Ironic's operators
//! (`==`, `!=`, `>=`, `<=`, `>`, `<`, `s==`, `s!=`, `<in>`, `<or>`).

use serde_json::Value;

use super::inventory::BlockDevice;
use crate::error::{AgentError, Result};

const GIB: u64 = 1 << 30;

fn num_match(expr: &str, actual: u64) -> Result<bool> {
    let e = expr.trim();
    let ops = [">=", "<=", "!=", "==", ">", "<"];
    for op in ops {
        if let Some(rest) = e.strip_prefix(op) {
            let v: u64 = rest.trim().parse().map_err(|_| bad("size", expr))?;
            return Ok(match op {
                ">=" => actual >= v,
                "<=" => actual <= v,
                "!=" => actual != v,
                "==" => actual == v,
                ">" => actual > v,
                _ => actual < v,
            });
        }
    }
    if let Some(rest) = e.strip_prefix("<or>") {
        let mut any = false;
        for part in std::iter::once(rest).chain(e.split("<or>").skip(2)) {
            let v: u64 = part.trim().parse().map_err(|_| bad("size", expr))?;
            any |= v == actual;
        }
        return Ok(any);
    }
    let v: u64 = e.parse().map_err(|_| bad("size", expr))?;
    Ok(v == actual)
}

fn norm(s: &str) -> String {
    s.trim().to_lowercase()
}

fn str_match(key: &str, expr: &str, actual: Option<&str>) -> Result<bool> {
    let Some(actual) = actual else {
        return Ok(false);
    };
    let a = if key == "name" {
        actual.to_owned()
    } else {
        norm(actual)
    };
    let e = expr.trim();
    let n = |s: &str| {
        if key == "name" {
            let s = s.trim();
            if s.starts_with("/dev/") {
                s.to_owned()
            } else {
                format!("/dev/{s}")
            }
        } else {
            norm(s)
        }
    };
    if let Some(r) = e.strip_prefix("s==") {
        return Ok(a == n(r));
    }
    if let Some(r) = e.strip_prefix("s!=") {
        return Ok(a != n(r));
    }
    if let Some(r) = e.strip_prefix("<in>") {
        return Ok(a.contains(&norm(r)));
    }
    if e.starts_with("<or>") {
        return Ok(e.split("<or>").skip(1).any(|p| a == n(p)));
    }
    Ok(a == n(e))
}

fn bad(key: &str, v: impl std::fmt::Display) -> AgentError {
    AgentError::InvalidParams(format!("Invalid root device hint {key}={v}"))
}

/// Whether `dev` satisfies every hint.
pub fn matches(hints: &serde_json::Map<String, Value>, dev: &BlockDevice) -> Result<bool> {
    for (k, v) in hints {
        let ok = match k.as_str() {
            "size" => {
                let gib = dev.size / GIB;
                match v {
                    Value::Number(n) => n.as_u64().ok_or_else(|| bad(k, v))? == gib,
                    Value::String(s) => num_match(s, gib)?,
                    _ => return Err(bad(k, v)),
                }
            }
            "rotational" => {
                let want = match v {
                    Value::Bool(b) => *b,
                    Value::String(s) => matches!(norm(s).as_str(), "true" | "1" | "yes" | "on"),
                    Value::Number(n) => n.as_u64() == Some(1),
                    _ => return Err(bad(k, v)),
                };
                dev.rotational == want
            }
            "name"
            | "serial"
            | "wwn"
            | "model"
            | "vendor"
            | "wwn_with_extension"
            | "wwn_vendor_extension"
            | "hctl"
            | "by_path" => {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(bad(k, v)),
                };
                let actual = match k.as_str() {
                    "name" => Some(dev.name.as_str()),
                    "serial" => dev.serial.as_deref(),
                    "wwn" => dev.wwn.as_deref(),
                    "model" => dev.model.as_deref(),
                    "vendor" => dev.vendor.as_deref(),
                    "wwn_with_extension" => dev.wwn_with_extension.as_deref(),
                    "wwn_vendor_extension" => dev.wwn_vendor_extension.as_deref(),
                    "hctl" => dev.hctl.as_deref(),
                    _ => dev.by_path.as_deref(),
                };
                str_match(k, &s, actual)?
            }
            other => {
                return Err(AgentError::InvalidParams(format!(
                    "Unknown root device hint {other:?}"
                )));
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The root device: the first disk matching `hints`, or without hints the smallest
/// disk of at least 4 GiB (IPA's `guess_root_disk`), or with a root device
/// override that device.
pub fn pick(
    disks: &[BlockDevice],
    hints: Option<&serde_json::Map<String, Value>>,
) -> Result<BlockDevice> {
    match hints.filter(|h| !h.is_empty()) {
        Some(h) => {
            for d in disks {
                if matches(h, d)? {
                    return Ok(d.clone());
                }
            }
            Err(AgentError::NoRootDevice(format!(
                "no disk matches the root device hints {}",
                Value::Object(h.clone())
            )))
        }
        None => disks
            .iter()
            .filter(|d| d.size >= 4 * GIB || disks.len() == 1)
            .min_by_key(|d| d.size)
            .cloned()
            .ok_or_else(|| AgentError::NoRootDevice("no disk of at least 4 GiB".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dev(name: &str, gib: u64, serial: &str, rot: bool) -> BlockDevice {
        BlockDevice {
            name: name.into(),
            model: Some("Samsung SSD".into()),
            size: gib * GIB,
            rotational: rot,
            wwn: Some("0x5000c500a0b1c2d3".into()),
            serial: Some(serial.into()),
            vendor: Some("ATA".into()),
            wwn_with_extension: None,
            wwn_vendor_extension: None,
            hctl: Some("0:0:0:0".into()),
            by_path: None,
            logical_sectors: None,
            physical_sectors: None,
            tran: None,
        }
    }

    #[test]
    fn hints_with_operators() {
        let disks = vec![
            dev("/dev/sda", 100, "A1", true),
            dev("/dev/sdb", 20, "B2", false),
        ];
        let h = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(pick(&disks, None).unwrap().name, "/dev/sdb");
        assert_eq!(
            pick(&disks, Some(&h(json!({"serial": "a1"}))))
                .unwrap()
                .name,
            "/dev/sda"
        );
        assert_eq!(
            pick(&disks, Some(&h(json!({"size": ">= 50"}))))
                .unwrap()
                .name,
            "/dev/sda"
        );
        assert_eq!(
            pick(&disks, Some(&h(json!({"size": 20})))).unwrap().name,
            "/dev/sdb"
        );
        assert_eq!(
            pick(&disks, Some(&h(json!({"name": "sdb"})))).unwrap().name,
            "/dev/sdb"
        );
        assert_eq!(
            pick(&disks, Some(&h(json!({"name": "s== /dev/sda"}))))
                .unwrap()
                .name,
            "/dev/sda"
        );
        assert_eq!(
            pick(
                &disks,
                Some(&h(json!({"model": "<in> samsung", "rotational": false})))
            )
            .unwrap()
            .name,
            "/dev/sdb"
        );
        assert_eq!(
            pick(&disks, Some(&h(json!({"serial": "<or> zz <or> B2"}))))
                .unwrap()
                .name,
            "/dev/sdb"
        );
        assert_eq!(
            pick(
                &disks,
                Some(&h(json!({"wwn": "0x5000C500A0B1C2D3", "vendor": "ata"})))
            )
            .unwrap()
            .name,
            "/dev/sda"
        );
        assert!(matches!(
            pick(&disks, Some(&h(json!({"serial": "nope"})))),
            Err(AgentError::NoRootDevice(_))
        ));
        assert!(matches!(
            pick(&disks, Some(&h(json!({"size": "big"})))),
            Err(AgentError::InvalidParams(_))
        ));
        assert!(matches!(
            pick(&disks, Some(&h(json!({"colour": "red"})))),
            Err(AgentError::InvalidParams(_))
        ));
    }
}
