//! Per-node virtual media ISOs (Ironic's `image_utils.prepare_deploy_iso`): the
//! `redfish-virtual-media` boot interface asks for a node's ISO, this builds it
//! from the node's deploy (or rescue) kernel and ramdisk with the node's kernel
//! command line (`ipa-api-url`, `BOOTIF` of its PXE port, the console,
//! `kernel_append_params`) in GRUB's configuration, writes it under
//! `<storage.data_dir>/vmedia/` and publishes it on the HTTP boot server as
//! `<boot http url>/vmedia/boot-<node uuid>.iso` for the BMC to download.
//!
//! When the node's network interface gives network data (the node's
//! `network_data`, as Ironic's `get_node_network_data`), it goes into the ISO
//! as `openstack/latest/network_data.json`, where Ironic puts it; GRUB also
//! hands it to the ramdisk at that path (a second initramfs on the ISO), whose `/init` configures the static
//! addresses from it (`ironic-agent --apply-network-data`) instead of DHCP.
//!
//! The GRUB images come from `ironic ramdisk build` (kept beside the kernel:
//! `ironic-agent.eltorito.img`, `ironic-agent.esp.img`, the BIOS modules), or,
//! for a kernel without them, are built once with this host's `grub-mkimage`.
//! Building an ISO copies no kernel or ramdisk into memory: they are streamed
//! from disk into the ISO file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ironic_boot_pxe::BootFiles;
use ironic_core::DriverError;
use ironic_core::driver::{BootIsoBuilder, RamdiskKind, RamdiskParams, Task};

use crate::ramdisk::iso;

/// Where a node's network data is on its ISO (and in the ramdisk), as Ironic puts it.
pub const NETWORK_DATA: &str = "openstack/latest/network_data.json";

/// The path of a node's ISO on the HTTP boot server (Ironic names it `boot-<uuid>.iso`).
pub fn iso_name(node: &ironic_core::NodeId) -> String {
    format!("vmedia/boot-{node}.iso")
}

/// Builds and serves the per-node ISOs of `ironic serve`.
pub struct VmediaIsos {
    files: Arc<BootFiles>,
    http_url: Option<String>,
    dir: PathBuf,
    default_kernel: Option<String>,
    default_ramdisk: Option<String>,
    console: Option<String>,
    kernel_append_params: String,
    /// GRUB images by the directory of the kernel they were found beside (or
    /// `""` for the ones built with this host's grub-mkimage).
    grub: Mutex<HashMap<PathBuf, Arc<iso::BootFiles>>>,
}

impl std::fmt::Debug for VmediaIsos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the GRUB images (megabytes).
        f.debug_struct("VmediaIsos")
            .field("http_url", &self.http_url)
            .field("dir", &self.dir)
            .field("default_kernel", &self.default_kernel)
            .field("default_ramdisk", &self.default_ramdisk)
            .finish_non_exhaustive()
    }
}

/// What `[boot]` gives the ISO builder.
#[derive(Clone, Debug, Default)]
pub struct VmediaSettings {
    /// Where the ISOs are written.
    pub dir: PathBuf,
    /// The HTTP boot server's base URL as BMCs see it.
    pub http_url: Option<String>,
    /// `[boot] deploy_kernel`.
    pub default_kernel: Option<String>,
    /// `[boot] deploy_ramdisk`.
    pub default_ramdisk: Option<String>,
    /// `[boot] console` (e.g. `ttyS0,115200n8`).
    pub console: Option<String>,
    /// `[boot] kernel_append_params`.
    pub kernel_append_params: String,
}

fn invalid(msg: impl Into<String>) -> DriverError {
    DriverError::invalid(msg.into())
}

impl VmediaIsos {
    /// A builder publishing into `files`.
    pub fn new(files: Arc<BootFiles>, settings: VmediaSettings) -> Self {
        VmediaIsos {
            files,
            http_url: settings.http_url,
            dir: settings.dir,
            default_kernel: settings.default_kernel,
            default_ramdisk: settings.default_ramdisk,
            console: settings.console,
            kernel_append_params: settings.kernel_append_params,
            grub: Mutex::new(HashMap::new()),
        }
    }

    fn http_url(&self) -> Result<&str, DriverError> {
        self.http_url.as_deref().ok_or_else(|| {
            invalid(
                "cannot serve virtual media ISOs: the API listens on a wildcard address; set [boot] address (this host's address as BMCs reach it) or [boot.http] url",
            )
        })
    }

    /// A kernel or ramdisk reference as a local file: an absolute path, a
    /// `file://` URL, a path below `[boot] root`, or a URL of a file this
    /// process serves on its HTTP boot server.
    fn local_file(&self, key: &str, value: &str) -> Result<PathBuf, DriverError> {
        let value = value.trim();
        let path = if let Some(p) = value.strip_prefix("file://") {
            PathBuf::from(p)
        } else if value.starts_with('/') {
            PathBuf::from(value)
        } else if value.starts_with("http://") || value.starts_with("https://") {
            let ours = self
                .http_url
                .as_deref()
                .and_then(|base| value.strip_prefix(base))
                .and_then(|rest| rest.strip_prefix('/'));
            match ours {
                Some(rel) => match self.files.link_target(rel) {
                    Some(p) => p,
                    None => self
                        .files
                        .disk_path(rel)
                        .map_err(|e| invalid(format!("{key} {value:?}: not served here ({e})")))?,
                },
                None => {
                    return Err(invalid(format!(
                        "{key} {value:?}: to build the node's virtual media ISO the {key} must be a local file or a file this conductor serves ([boot] root); download it there"
                    )));
                }
            }
        } else if value.contains("://") {
            return Err(invalid(format!(
                "{key} {value:?}: only local files and http(s) URLs of this conductor's boot server can go into a virtual media ISO"
            )));
        } else {
            self.files
                .disk_path(value)
                .map_err(|e| invalid(format!("{key} {value:?}: {e}")))?
        };
        let meta = std::fs::metadata(&path)
            .map_err(|e| invalid(format!("{key} {}: {e}", path.display())))?;
        if !meta.is_file() {
            return Err(invalid(format!(
                "{key} {}: not a regular file",
                path.display()
            )));
        }
        Ok(path)
    }

    /// The node's kernel and ramdisk for `kind`, as local files.
    fn images(&self, task: &Task, kind: RamdiskKind) -> Result<(PathBuf, PathBuf), DriverError> {
        let (kk, rk, dk, dr) = match kind {
            RamdiskKind::Deploy => (
                "deploy_kernel",
                "deploy_ramdisk",
                self.default_kernel.as_deref(),
                self.default_ramdisk.as_deref(),
            ),
            RamdiskKind::Rescue => ("rescue_kernel", "rescue_ramdisk", None, None),
        };
        let get = |key: &str, default: Option<&str>| {
            task.node
                .driver_info
                .get_str(key)
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.to_string())
                .or_else(|| default.map(|s| s.to_string()))
                .ok_or_else(|| {
                    DriverError::missing(format!(
                        "Missing the following property in node's driver_info: {key} (and no default in [boot]); a virtual media boot without a prebuilt redfish_deploy_iso builds the node's ISO from it"
                    ))
                })
        };
        let kernel = self.local_file(kk, &get(kk, dk)?)?;
        let ramdisk = self.local_file(rk, &get(rk, dr)?)?;
        Ok((kernel, ramdisk))
    }

    /// The GRUB images beside `kernel` (from `ironic ramdisk build`), else the
    /// ones built with this host's grub-mkimage (once).
    fn grub(&self, kernel: &Path) -> Result<Arc<iso::BootFiles>, DriverError> {
        let beside = kernel.parent().unwrap_or(Path::new("/")).to_owned();
        let mut cache = self.grub.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = cache.get(&beside) {
            return Ok(b.clone());
        }
        if beside.join(iso::ELTORITO_FILE).is_file() {
            let b = Arc::new(iso::BootFiles::load(&beside).map_err(|e| {
                invalid(format!("the GRUB images beside {}: {e}", kernel.display()))
            })?);
            cache.insert(beside, b.clone());
            return Ok(b);
        }
        let host = PathBuf::new();
        if let Some(b) = cache.get(&host) {
            return Ok(b.clone());
        }
        let tmp = self.dir.join(".grub");
        let b = iso::BootFiles::build(&tmp).map_err(|e| {
            invalid(format!(
                "no GRUB images beside {} (build the ramdisk with `ironic ramdisk build`) and this host cannot build them: {e}",
                kernel.display()
            ))
        });
        let _ = std::fs::remove_dir_all(&tmp);
        let b = Arc::new(b?);
        cache.insert(host, b.clone());
        Ok(b)
    }

    /// The node's kernel command line: the conductor's parameters, `BOOTIF` of
    /// its first PXE port, the console and `kernel_append_params`.
    fn command_line(&self, task: &Task, params: &RamdiskParams) -> String {
        let mac = task.ports.iter().find(|p| p.pxe_enabled).map(|p| p.address);
        let append = task
            .node
            .driver_info
            .get_str("kernel_append_params")
            .map(|s| s.to_string())
            .unwrap_or_else(|| self.kernel_append_params.clone());
        let line = ironic_boot_pxe::render::command_line(
            &params.kernel_params,
            task.env.api_url.as_deref(),
            mac.as_ref(),
            self.console.as_deref(),
            &append,
        );
        if mac.is_some() {
            line
        } else {
            // Without a port the ramdisk runs DHCP on every interface.
            line.split(' ')
                .filter(|w| !w.starts_with("BOOTIF="))
                .collect::<Vec<_>>()
                .join(" ")
        }
    }
}

#[async_trait]
impl BootIsoBuilder for VmediaIsos {
    fn validate(&self, task: &Task, kind: RamdiskKind) -> Result<(), DriverError> {
        self.http_url()?;
        self.images(task, kind)?;
        Ok(())
    }

    async fn prepare(&self, task: &Task, params: &RamdiskParams) -> Result<String, DriverError> {
        let base = self.http_url()?.to_owned();
        let (kernel, ramdisk) = self.images(task, params.kind)?;
        let grub = self.grub(&kernel)?;
        let cmdline = self.command_line(task, params);
        let network_data = match &task.driver {
            Some(d) => d.network.get_node_network_data(task),
            None => task.node.network_data.clone(),
        };
        let mut inject = Vec::new();
        if !network_data.is_empty() {
            let json = serde_json::to_vec_pretty(&network_data)
                .map_err(|e| invalid(format!("network_data: {e}")))?;
            tracing::debug!(node = %task.node.uuid, "injecting the node's network data into its ISO");
            inject.push((NETWORK_DATA, json));
        }
        let uuid = task.node.uuid;
        let name = iso_name(&uuid);
        let path = self.dir.join(format!("boot-{uuid}.iso"));
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| invalid(format!("{}: {e}", self.dir.display())))?;
        let out = path.clone();
        let label = "IRONIC_AGENT".to_owned();
        let started = std::time::Instant::now();
        let size = tokio::task::spawn_blocking(move || {
            grub.iso(&kernel, &ramdisk, &cmdline, &label, &inject, &out)
        })
        .await
        .map_err(|e| invalid(format!("building the ISO of node {uuid}: {e}")))?
        .map_err(|e| invalid(format!("building the ISO of node {uuid}: {e}")))?;
        // An absolute path: the link is opened at each request.
        let path = path.canonicalize().unwrap_or(path);
        self.files.link(&name, &path)?;
        tracing::info!(node = %uuid, iso = %path.display(), size, elapsed_ms = started.elapsed().as_millis() as u64, "virtual media ISO built");
        Ok(format!("{base}/{name}"))
    }

    async fn clean_up(&self, task: &Task) -> Result<(), DriverError> {
        let uuid = task.node.uuid;
        self.files.remove(&iso_name(&uuid));
        let path = self.dir.join(format!("boot-{uuid}.iso"));
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(invalid(format!("{}: {e}", path.display()))),
        }
    }
}
