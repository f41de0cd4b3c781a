//! The `ipxe` boot interface: the NBP over TFTP, then iPXE loads the node's script (`pxelinux.cfg/<mac>`), kernel and ramdisk over HTTP from the HTTP boot server (or the image's own http(s) URL). Ironic's default.

use std::sync::Arc;

use crate::config::PxeConfig;
use crate::netboot::{Engine, Flavor, boot_interface};

/// The `ipxe` boot interface: the NBP over TFTP, then iPXE loads the node's script (`pxelinux.cfg/<mac>`), kernel and ramdisk over HTTP from the HTTP boot server (or the image's own http(s) URL). Ironic's default.
///
/// `prepare_ramdisk` publishes the per-node files (the script under
/// `pxelinux.cfg/<mac-with-hyphens>` for each PXE-enabled port, the kernel and
/// ramdisk under `<node-uuid>/`), sets the DHCP boot options of the node's
/// ports when this process runs the DHCP server, and sets the boot device
/// through the node's management interface. `prepare_instance` removes them
/// and sets the boot device to disk, or, for a ramdisk deploy, publishes the
/// instance's kernel and ramdisk the same way.
#[derive(Debug, Clone)]
pub struct IpxeBoot(Engine);

impl IpxeBoot {
    /// The name Ironic registers it under.
    pub const NAME: &'static str = "ipxe";

    /// The interface over a configuration.
    pub fn new(cfg: Arc<PxeConfig>) -> Self {
        IpxeBoot(Engine {
            flavor: Flavor::Ipxe,
            cfg,
        })
    }
}

boot_interface!(IpxeBoot);
