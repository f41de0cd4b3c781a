//! The `pxe` boot interface: TFTP all the way: BIOS and UEFI PXE ROMs load the iPXE NBP (`undionly.kpxe` / `snponly.efi`) over TFTP, which loads the node's script, kernel and ramdisk over TFTP too (`tftp://` URLs). Kernel and ramdisk must be local files.

use std::sync::Arc;

use crate::config::PxeConfig;
use crate::netboot::{Engine, Flavor, boot_interface};

/// The `pxe` boot interface: TFTP all the way: BIOS and UEFI PXE ROMs load the iPXE NBP (`undionly.kpxe` / `snponly.efi`) over TFTP, which loads the node's script, kernel and ramdisk over TFTP too (`tftp://` URLs). Kernel and ramdisk must be local files.
///
/// `prepare_ramdisk` publishes the per-node files (the script under
/// `pxelinux.cfg/<mac-with-hyphens>` for each PXE-enabled port, the kernel and
/// ramdisk under `<node-uuid>/`), sets the DHCP boot options of the node's
/// ports when this process runs the DHCP server, and sets the boot device
/// through the node's management interface. `prepare_instance` removes them
/// and sets the boot device to disk, or, for a ramdisk deploy, publishes the
/// instance's kernel and ramdisk the same way.
#[derive(Debug, Clone)]
pub struct PxeBoot(Engine);

impl PxeBoot {
    /// The name Ironic registers it under.
    pub const NAME: &'static str = "pxe";

    /// The interface over a configuration.
    pub fn new(cfg: Arc<PxeConfig>) -> Self {
        PxeBoot(Engine {
            flavor: Flavor::Pxe,
            cfg,
        })
    }
}

boot_interface!(PxeBoot);
