//! `image_info`, as Ironic sends it in `standby.prepare_image`.

use base64::Engine as _;
use ironic_core::Secret;
use serde_json::Value;

use super::{DiskFormat, ExpectedChecksum, HashAlgo};
use crate::error::{AgentError, Result};

/// Whole-disk or partition image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageType {
    /// The image is a whole disk (with its own partition table).
    WholeDisk,
    /// The image is one filesystem; the agent makes a partition table for it.
    Partition,
}

/// How the checksum is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChecksumSpec {
    /// A known value.
    Value(ExpectedChecksum),
    /// A URL of a `sha256sum`-style file to read it from.
    Url(String),
}

/// The parsed `image_info`.
#[derive(Clone, Debug)]
pub struct ImageInfo {
    /// Image id (Glance UUID or URL).
    pub id: String,
    /// Where to download from, in order.
    pub urls: Vec<String>,
    /// Declared format.
    pub disk_format: DiskFormat,
    /// Expected checksum.
    pub checksum: ChecksumSpec,
    /// Whole disk or partition.
    pub image_type: ImageType,
    /// Root partition size in MiB (partition images; 0 = rest of the disk).
    pub root_mb: u64,
    /// Swap partition in MiB (partition images).
    pub swap_mb: u64,
    /// Ephemeral partition in MiB (partition images).
    pub ephemeral_mb: u64,
    /// `Authorization` header value for the image server.
    pub authorization: Option<Secret>,
    /// `deploy_boot_mode` of a partition image (`uefi`, `bios`).
    pub boot_mode: Option<String>,
    /// `disk_label` (`gpt`, `msdos`) of a partition image.
    pub disk_label: Option<String>,
    /// Filesystem of the ephemeral partition (`ext4` unless said).
    pub ephemeral_format: String,
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(|x| x.as_str())
        .map(str::to_owned)
        .filter(|s| !s.is_empty())
}

fn mb_field(v: &Value, key: &str) -> Result<u64> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            AgentError::InvalidParams(format!("image_info.{key} must be a non-negative integer"))
        }),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| {
            AgentError::InvalidParams(format!("image_info.{key} must be a non-negative integer"))
        }),
        Some(_) => Err(AgentError::InvalidParams(format!(
            "image_info.{key} must be a non-negative integer"
        ))),
    }
}

impl ImageInfo {
    /// Validate and parse as IPA's `_validate_image_info` does.
    pub fn parse(v: &Value, allow_md5: bool) -> Result<Self> {
        if !v.is_object() {
            return Err(AgentError::InvalidParams(
                "image_info must be an object".into(),
            ));
        }
        let id = str_field(v, "id")
            .ok_or_else(|| AgentError::InvalidParams("Image is missing the 'id' field.".into()))?;
        let urls: Vec<String> = match v.get("urls") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|u| {
                    u.as_str().map(str::to_owned).ok_or_else(|| {
                        AgentError::InvalidParams("image_info.urls must be strings".into())
                    })
                })
                .collect::<Result<_>>()?,
            _ => {
                return Err(AgentError::InvalidParams(
                    "Image 'urls' must be a list with at least one element.".into(),
                ));
            }
        };
        if urls.is_empty() {
            return Err(AgentError::InvalidParams(
                "Image 'urls' must be a list with at least one element.".into(),
            ));
        }
        let disk_format =
            DiskFormat::parse(&str_field(v, "disk_format").unwrap_or_else(|| "raw".into()))?;
        let algo = str_field(v, "os_hash_algo");
        let value = str_field(v, "os_hash_value");
        let checksum = match (algo, value, str_field(v, "checksum")) {
            (Some(a), Some(h), _) => {
                let algo = HashAlgo::parse(&a)?;
                if algo == HashAlgo::Md5 && !allow_md5 {
                    return Err(AgentError::InvalidParams(
                        "MD5 image checksums are not allowed".into(),
                    ));
                }
                ChecksumSpec::Value(ExpectedChecksum::new(algo, &h)?)
            }
            (_, _, Some(c)) if c.starts_with("http://") || c.starts_with("https://") => {
                ChecksumSpec::Url(c)
            }
            (_, _, Some(c)) => ChecksumSpec::Value(ExpectedChecksum::from_bare(&c, allow_md5)?),
            _ => {
                return Err(AgentError::InvalidParams(format!(
                    "Image checksum is not valid for image {id}: give os_hash_algo and \
                     os_hash_value, or checksum"
                )));
            }
        };
        let image_type = match str_field(v, "image_type").as_deref() {
            Some("partition") => ImageType::Partition,
            Some("whole-disk") | Some("whole_disk") => ImageType::WholeDisk,
            None if v.get("root_mb").is_some_and(|x| !x.is_null()) => ImageType::Partition,
            None => ImageType::WholeDisk,
            Some(other) => {
                return Err(AgentError::InvalidParams(format!(
                    "Unknown image_type {other:?}"
                )));
            }
        };
        let authorization = if let Some(a) = str_field(v, "image_request_authorization") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(a.as_bytes())
                .map_err(|_| {
                    AgentError::InvalidParams(
                        "image_request_authorization is not valid base64".into(),
                    )
                })?;
            Some(Secret::new(String::from_utf8(raw).map_err(|_| {
                AgentError::InvalidParams("image_request_authorization is not text".into())
            })?))
        } else if str_field(v, "image_server_auth_strategy").as_deref() == Some("http_basic") {
            let user = str_field(v, "image_server_user").unwrap_or_default();
            let pass = str_field(v, "image_server_password").unwrap_or_default();
            let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            Some(Secret::new(format!("Basic {enc}")))
        } else {
            None
        };
        Ok(ImageInfo {
            id,
            urls,
            disk_format,
            checksum,
            image_type,
            root_mb: mb_field(v, "root_mb")?,
            swap_mb: mb_field(v, "swap_mb")?,
            ephemeral_mb: mb_field(v, "ephemeral_mb")?,
            authorization,
            boot_mode: str_field(v, "deploy_boot_mode"),
            disk_label: str_field(v, "disk_label"),
            ephemeral_format: str_field(v, "ephemeral_format").unwrap_or_else(|| "ext4".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_ironic_image_info() {
        let v = json!({"id": "abc", "urls": ["http://h/img"], "disk_format": "qcow2",
            "container_format": "bare", "stream_raw_images": true,
            "os_hash_algo": "sha512", "os_hash_value": "a".repeat(128),
            "checksum": "b".repeat(32), "node_uuid": "x"});
        let i = ImageInfo::parse(&v, true).unwrap();
        assert_eq!(i.disk_format, DiskFormat::Qcow2);
        assert_eq!(i.image_type, ImageType::WholeDisk);
        match i.checksum {
            ChecksumSpec::Value(c) => assert_eq!(c.algo, HashAlgo::Sha512),
            _ => panic!(),
        }
    }

    #[test]
    fn rejects_missing_fields() {
        assert!(
            ImageInfo::parse(
                &json!({"urls": ["http://h/i"], "checksum": "a".repeat(64)}),
                true
            )
            .is_err()
        );
        assert!(
            ImageInfo::parse(
                &json!({"id": "x", "urls": [], "checksum": "a".repeat(64)}),
                true
            )
            .is_err()
        );
        assert!(ImageInfo::parse(&json!({"id": "x", "urls": ["http://h/i"]}), true).is_err());
        assert!(
            ImageInfo::parse(
                &json!({"id": "x", "urls": ["http://h/i"], "checksum": "a".repeat(32)}),
                false
            )
            .is_err()
        );
        assert!(ImageInfo::parse(&json!({"id": "x", "urls": ["http://h/i"], "checksum": "a".repeat(64), "disk_format": "vmdk"}), true).is_err());
    }

    #[test]
    fn partition_image_and_auth() {
        let v = json!({"id": "x", "urls": ["http://h/i"], "checksum": "a".repeat(64),
            "image_type": "partition", "root_mb": 10, "swap_mb": "2",
            "image_server_auth_strategy": "http_basic", "image_server_user": "u", "image_server_password": "p"});
        let i = ImageInfo::parse(&v, false).unwrap();
        assert_eq!(i.image_type, ImageType::Partition);
        assert_eq!((i.root_mb, i.swap_mb), (10, 2));
        assert_eq!(i.authorization.unwrap().expose(), "Basic dTpw");
    }
}
