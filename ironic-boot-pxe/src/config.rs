//! Configuration: the crate-wide [`PxeConfig`] and the typed `driver_info` /
//! `instance_info` keys the boot interfaces read.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ironic_core::driver::{PropertyDoc, RamdiskKind, Task};

use crate::dhcp::{DhcpMode, Reservations};
use crate::error::PxeError;
use crate::files::BootFiles;

/// Settings shared by the boot interfaces and the DHCP network interface.
#[derive(Clone, Debug)]
pub struct PxeConfig {
    /// The file set the TFTP and HTTP servers serve; per-node files go here.
    pub files: Arc<BootFiles>,
    /// The TFTP server's address as nodes see it (next-server).
    pub tftp_server: Ipv4Addr,
    /// The HTTP boot server's base URL as nodes see it, e.g. `http://10.0.0.1:8080`
    /// (the path where [`router`](crate::router) is mounted, no trailing slash).
    pub http_url: String,
    /// NBP for BIOS PXE ROMs, below the boot root. Default `undionly.kpxe` (iPXE).
    pub bios_nbp: String,
    /// NBP for UEFI PXE, below the boot root. Default `snponly.efi` (iPXE).
    pub uefi_nbp: String,
    /// EFI binary for UEFI HTTP boot, below the boot root (served over HTTP).
    /// Default `snponly.efi`.
    pub uefi_http_nbp: String,
    /// Kernel parameters added for every ramdisk (Ironic's
    /// `[pxe]kernel_append_params`); a node's `driver_info.kernel_append_params`
    /// replaces them. Default `nofb vga=normal`.
    pub kernel_append_params: String,
    /// The serial console for the ramdisk (`console=` parameter), e.g.
    /// `ttyS0,115200n8`; `None` adds nothing.
    pub console: Option<String>,
    /// Deploy kernel when a node names none (Ironic's `[conductor]deploy_kernel`).
    pub default_deploy_kernel: Option<String>,
    /// Deploy ramdisk when a node names none (`[conductor]deploy_ramdisk`).
    pub default_deploy_ramdisk: Option<String>,
    /// The DHCP server the `flat` network interface drives, if this process runs one.
    pub dhcp: Option<ProvisioningDhcp>,
}

impl PxeConfig {
    /// A configuration with Ironic's defaults and no DHCP.
    pub fn new(files: Arc<BootFiles>, tftp_server: Ipv4Addr, http_url: impl Into<String>) -> Self {
        PxeConfig {
            files,
            tftp_server,
            http_url: http_url.into().trim_end_matches('/').to_owned(),
            bios_nbp: "undionly.kpxe".into(),
            uefi_nbp: "snponly.efi".into(),
            uefi_http_nbp: "snponly.efi".into(),
            kernel_append_params: "nofb vga=normal".into(),
            console: None,
            default_deploy_kernel: None,
            default_deploy_ramdisk: None,
            dhcp: None,
        }
    }
}

/// The provisioning network's DHCP: the reservations a [`DhcpServer`](crate::DhcpServer)
/// answers for, and the addresses to hand out.
#[derive(Clone, Debug)]
pub struct ProvisioningDhcp {
    /// Shared with the running server.
    pub reservations: Arc<Reservations>,
    /// Server (addresses from `pool`) or proxy (no addresses).
    pub mode: DhcpMode,
    /// First and last address (inclusive) handed to booting nodes.
    pub pool: (Ipv4Addr, Ipv4Addr),
}

/// `driver_info` keys read by the boot interfaces.
pub(crate) const PROPERTIES: &[PropertyDoc] = &[
    PropertyDoc::required(
        "deploy_kernel",
        "Deploy kernel: an http(s) URL, an absolute path or file:// URL, or a path below the boot root.",
    ),
    PropertyDoc::required(
        "deploy_ramdisk",
        "Deploy ramdisk (initramfs), given as deploy_kernel is.",
    ),
    PropertyDoc::optional("rescue_kernel", "Rescue kernel, given as deploy_kernel is."),
    PropertyDoc::optional(
        "rescue_ramdisk",
        "Rescue ramdisk, given as deploy_kernel is.",
    ),
    PropertyDoc::optional(
        "kernel_append_params",
        "Kernel parameters for this node's ramdisk, replacing the configured ones.",
    ),
];

/// Where a kernel or ramdisk comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ImageRef {
    /// Fetched by the node itself (iPXE over HTTP).
    Url(String),
    /// A local file, published under a per-node path.
    File(PathBuf),
}

/// Parse and check one image reference: URLs are checked for form only (no
/// download); files must exist, be regular and readable.
pub(crate) fn image_ref(
    files: &BootFiles,
    key: &'static str,
    value: &str,
) -> Result<ImageRef, PxeError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(PxeError::Invalid {
            key: key.into(),
            reason: "empty".into(),
        });
    }
    if let Some(rest) = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
    {
        if rest.is_empty() || rest.starts_with('/') || value.chars().any(char::is_whitespace) {
            return Err(PxeError::Invalid {
                key: key.into(),
                reason: format!("{value:?} is not a usable URL"),
            });
        }
        return Ok(ImageRef::Url(value.to_owned()));
    }
    let path: PathBuf = if let Some(p) = value.strip_prefix("file://") {
        PathBuf::from(p)
    } else if value.starts_with('/') {
        PathBuf::from(value)
    } else if value.contains("://") {
        return Err(PxeError::Invalid {
            key: key.into(),
            reason: format!(
                "{value:?}: only http(s) URLs and local files are supported (no image service)"
            ),
        });
    } else {
        files.disk_path(value).map_err(|e| PxeError::Unreadable {
            key,
            path: value.to_owned(),
            reason: e.to_string(),
        })?
    };
    check_readable(key, &path)?;
    Ok(ImageRef::File(path))
}

fn check_readable(key: &'static str, path: &Path) -> Result<(), PxeError> {
    let unreadable = |reason: String| PxeError::Unreadable {
        key,
        path: path.display().to_string(),
        reason,
    };
    if !path.is_absolute() {
        return Err(unreadable("not an absolute path".into()));
    }
    let f = File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let meta = f.metadata().map_err(|e| unreadable(e.to_string()))?;
    if !meta.is_file() {
        return Err(unreadable("not a regular file".into()));
    }
    Ok(())
}

/// The kernel and ramdisk of one boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Images {
    pub(crate) kernel: ImageRef,
    pub(crate) ramdisk: ImageRef,
}

fn info_str(task: &Task, key: &str) -> Option<String> {
    task.node
        .driver_info
        .get_str(key)
        .filter(|s| !s.trim().is_empty())
}

/// The deploy or rescue kernel and ramdisk a node names (or the defaults).
pub(crate) fn ramdisk_images(
    task: &Task,
    cfg: &PxeConfig,
    kind: RamdiskKind,
) -> Result<Images, PxeError> {
    let (kk, rk, dk, dr) = match kind {
        RamdiskKind::Deploy => (
            "deploy_kernel",
            "deploy_ramdisk",
            cfg.default_deploy_kernel.clone(),
            cfg.default_deploy_ramdisk.clone(),
        ),
        RamdiskKind::Rescue => ("rescue_kernel", "rescue_ramdisk", None, None),
    };
    let kernel = info_str(task, kk).or(dk).ok_or(PxeError::Missing {
        what: "driver_info",
        key: kk,
    })?;
    let ramdisk = info_str(task, rk).or(dr).ok_or(PxeError::Missing {
        what: "driver_info",
        key: rk,
    })?;
    Ok(Images {
        kernel: image_ref(&cfg.files, kk, &kernel)?,
        ramdisk: image_ref(&cfg.files, rk, &ramdisk)?,
    })
}

/// The instance's kernel and ramdisk (`instance_info.kernel`/`ramdisk`) for a
/// ramdisk deploy, which boots them from the network every time.
pub(crate) fn instance_images(task: &Task, cfg: &PxeConfig) -> Result<Images, PxeError> {
    let get = |key: &'static str| {
        task.node
            .instance_info
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or(PxeError::Missing {
                what: "instance_info",
                key,
            })
    };
    Ok(Images {
        kernel: image_ref(&cfg.files, "kernel", &get("kernel")?)?,
        ramdisk: image_ref(&cfg.files, "ramdisk", &get("ramdisk")?)?,
    })
}

/// Whether the instance is booted from the network (ramdisk deploy) rather
/// than from its disk.
pub(crate) fn netboots_instance(task: &Task) -> bool {
    if task.node.interfaces.deploy_interface == "ramdisk" {
        return true;
    }
    let opt = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.as_str())
            .map(|s| s == "ramdisk" || s == "netboot")
    };
    opt(task.node.instance_info.get("boot_option")).unwrap_or(false)
        || task
            .node
            .instance_info
            .get("capabilities")
            .and_then(|c| c.get("boot_option"))
            .and_then(|v| v.as_str())
            .is_some_and(|s| s == "ramdisk" || s == "netboot")
}

/// The node's boot mode: `node.boot_mode`, else `properties.capabilities`
/// (`boot_mode:bios`), else UEFI (Ironic's default).
pub(crate) fn boot_mode_is_bios(task: &Task) -> bool {
    if let Some(m) = &task.node.boot_mode {
        return m == "bios";
    }
    match task.node.properties.get("capabilities") {
        Some(serde_json::Value::String(s)) => s.split(',').any(|kv| kv.trim() == "boot_mode:bios"),
        Some(serde_json::Value::Object(m)) => {
            m.get("boot_mode").and_then(|v| v.as_str()) == Some("bios")
        }
        _ => false,
    }
}

/// `driver_info.kernel_append_params`, else the configured ones.
pub(crate) fn append_params(task: &Task, cfg: &PxeConfig) -> String {
    info_str(task, "kernel_append_params").unwrap_or_else(|| cfg.kernel_append_params.clone())
}
