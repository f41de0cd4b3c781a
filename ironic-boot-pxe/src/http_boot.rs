//! The `http` boot interface: UEFI HTTP boot: the firmware loads the EFI NBP over HTTP (`PxeConfig::uefi_http_nbp`), which loads the node's script, kernel and ramdisk over HTTP. The boot device is `uefi http`; nodes in BIOS mode are refused.

use std::sync::Arc;

use crate::config::PxeConfig;
use crate::netboot::{Engine, Flavor, boot_interface};

/// The `http` boot interface: UEFI HTTP boot: the firmware loads the EFI NBP over HTTP (`PxeConfig::uefi_http_nbp`), which loads the node's script, kernel and ramdisk over HTTP. The boot device is `uefi http`; nodes in BIOS mode are refused.
///
/// `prepare_ramdisk` publishes the per-node files (the script under
/// `pxelinux.cfg/<mac-with-hyphens>` for each PXE-enabled port, the kernel and
/// ramdisk under `<node-uuid>/`), sets the DHCP boot options of the node's
/// ports when this process runs the DHCP server, and sets the boot device
/// through the node's management interface. `prepare_instance` removes them
/// and sets the boot device to disk, or, for a ramdisk deploy, publishes the
/// instance's kernel and ramdisk the same way.
#[derive(Debug, Clone)]
pub struct HttpBoot(Engine);

impl HttpBoot {
    /// The name Ironic registers it under.
    pub const NAME: &'static str = "http";

    /// The interface over a configuration.
    pub fn new(cfg: Arc<PxeConfig>) -> Self {
        HttpBoot(Engine {
            flavor: Flavor::Http,
            cfg,
        })
    }
}

boot_interface!(HttpBoot);
