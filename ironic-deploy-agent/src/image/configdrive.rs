//! Config drives: decode what Ironic sends (gzip + base64 of an ISO9660/vfat
//! image labelled `config-2`), build one from Ironic's JSON form, and write it to
//! a partition at the end of the disk.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;

use base64::Engine as _;
use serde_json::Value;

use super::partition::{self, Partition, Table};
use crate::error::{AgentError, Result};

/// Largest config drive accepted (IPA's limit).
pub const MAX_SIZE: u64 = 64 << 20;
/// The label the config drive's filesystem and partition carry.
pub const LABEL: &str = "config-2";

/// Decode a `configdrive` string: base64 of a gzip'd image (or of a plain one).
pub fn decode(b64: &str) -> Result<Vec<u8>> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim().as_bytes())
        .map_err(|e| AgentError::InvalidParams(format!("config drive is not valid base64: {e}")))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .take(MAX_SIZE + 1)
            .read_to_end(&mut out)
            .map_err(|e| {
                AgentError::InvalidParams(format!("config drive is not valid gzip: {e}"))
            })?;
        check_size(out.len() as u64)?;
        Ok(out)
    } else {
        check_size(raw.len() as u64)?;
        Ok(raw)
    }
}

fn check_size(n: u64) -> Result<()> {
    if n > MAX_SIZE {
        return Err(AgentError::InvalidParams(format!(
            "config drive is larger than {} MiB",
            MAX_SIZE >> 20
        )));
    }
    if n == 0 {
        return Err(AgentError::InvalidParams("config drive is empty".into()));
    }
    Ok(())
}

/// Build a config drive ISO from Ironic's JSON form
/// (`{meta_data, network_data, user_data, vendor_data}`) with the same layout,
/// label and names as openstacksdk's `genisoimage -J -r -V config-2` (files under
/// `openstack/latest/`), written in Rust by `ironic-iso` (no external tool), and
/// return it gzip'd and base64-encoded, ready for `standby.prepare_image`.
pub fn build(value: &Value) -> Result<String> {
    let obj = value.as_object().ok_or_else(|| {
        AgentError::InvalidParams("configdrive must be a string or an object".into())
    })?;
    for k in obj.keys() {
        if !matches!(
            k.as_str(),
            "meta_data" | "network_data" | "user_data" | "vendor_data"
        ) {
            return Err(AgentError::InvalidParams(format!(
                "unknown configdrive key {k:?}"
            )));
        }
    }
    let data = iso(obj)?;
    check_size(data.len() as u64)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&data)
        .map_err(|e| AgentError::io("compressing config drive", e))?;
    let gz = gz
        .finish()
        .map_err(|e| AgentError::io("compressing config drive", e))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(gz))
}

/// The config drive ISO of Ironic's JSON form.
fn iso(obj: &serde_json::Map<String, Value>) -> Result<Vec<u8>> {
    let err =
        |e: ironic_iso::IsoError| AgentError::Other(format!("building the config drive: {e}"));
    let mut iso = ironic_iso::IsoBuilder::new(LABEL).map_err(err)?;
    iso.publisher("ironic-rs");
    let meta = obj
        .get("meta_data")
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    let mut add = |name: &str, data: Vec<u8>| {
        iso.add_file(&format!("openstack/latest/{name}"), data)
            .map(|_| ())
            .map_err(err)
    };
    add("meta_data.json", meta.to_string().into_bytes())?;
    if let Some(n) = obj.get("network_data") {
        add("network_data.json", n.to_string().into_bytes())?;
    }
    if let Some(v) = obj.get("vendor_data") {
        add("vendor_data.json", v.to_string().into_bytes())?;
    }
    match obj.get("user_data") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => add("user_data", s.clone().into_bytes())?,
        Some(other) => add("user_data", other.to_string().into_bytes())?,
    }
    iso.to_vec().map_err(err)
}

/// Write a config drive image to the partition labelled `config-2` if there is
/// one, else to a new 64 MiB partition at the end of the disk (IPA's
/// `sgdisk -n 0:-64MB:0`, so that a later rebuild with a bigger config drive
/// fits in the same partition). Returns it.
pub fn write(f: &File, disk_size: u64, image: &[u8]) -> Result<Partition> {
    check_size(image.len() as u64)?;
    let table = partition::read_table(f)?;
    let existing = table
        .partitions()
        .iter()
        .find(|p| {
            partition::fs_label(f, p.start)
                .as_deref()
                .is_some_and(|l| l.eq_ignore_ascii_case(LABEL))
        })
        .cloned();
    let part = match existing {
        Some(p) if p.len >= image.len() as u64 => p,
        Some(p) => {
            return Err(AgentError::DiskTooSmall(format!(
                "the existing config-2 partition {} has {} bytes, the config drive needs {}",
                p.number,
                p.len,
                image.len()
            )));
        }
        None => {
            if matches!(table, Table::None) {
                return Err(AgentError::ImageFormat(
                    "the image has no partition table, so no config drive partition can be added"
                        .into(),
                ));
            }
            partition::add_partition_at_end(f, disk_size, MAX_SIZE, LABEL)?
        }
    };
    f.write_all_at(image, part.start)
        .map_err(|e| AgentError::io("writing the config drive", e))?;
    f.sync_all()
        .map_err(|e| AgentError::io("fsync after the config drive", e))?;
    Ok(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_gzip_and_plain() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"hello").unwrap();
        let b = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        assert_eq!(decode(&b).unwrap(), b"hello");
        let b = base64::engine::general_purpose::STANDARD.encode(b"plain");
        assert_eq!(decode(&b).unwrap(), b"plain");
        assert!(decode("!!!").is_err());
        assert!(decode("").is_err());
    }

    #[test]
    fn build_rejects_unknown_keys() {
        assert!(build(&serde_json::json!({"bogus": 1})).is_err());
        assert!(build(&serde_json::json!([1])).is_err());
    }
}
