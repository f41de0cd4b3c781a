//! What the three boot interfaces share: publishing per-node boot files, DHCP
//! boot options and the boot device. They differ only in how the node reaches
//! its files ([`Flavor`]).

use std::sync::Arc;

use ironic_core::MacAddress;
use ironic_core::driver::{BootDevice, RamdiskKind, RamdiskParams, Task};
use ironic_core::{DriverError, Port};

use crate::config::{self, ImageRef, Images, PxeConfig};
use crate::dhcp::BootOptions;
use crate::error::PxeError;
use crate::render;

/// How a node fetches its second stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// Everything over TFTP: NBP, iPXE script, kernel, ramdisk.
    Pxe,
    /// NBP over TFTP, then iPXE fetches script, kernel and ramdisk over HTTP.
    Ipxe,
    /// UEFI HTTP boot: the firmware fetches the EFI NBP over HTTP, the rest as `Ipxe`.
    Http,
}

/// The shared implementation behind `PxeBoot`, `IpxeBoot` and `HttpBoot`.
#[derive(Debug, Clone)]
pub(crate) struct Engine {
    pub(crate) flavor: Flavor,
    pub(crate) cfg: Arc<PxeConfig>,
}

/// `driver_internal_info` key recording what was published (for clean-up).
const INTERNAL_KEY: &str = "netboot_published";

impl Engine {
    fn base_url(&self) -> String {
        match self.flavor {
            Flavor::Pxe => format!("tftp://{}", self.cfg.tftp_server),
            Flavor::Ipxe | Flavor::Http => self.cfg.http_url.clone(),
        }
    }

    fn boot_device(&self) -> BootDevice {
        match self.flavor {
            Flavor::Http => BootDevice::UefiHttp,
            _ => BootDevice::Pxe,
        }
    }

    fn check_flavor(&self, task: &Task, images: &Images) -> Result<(), PxeError> {
        if self.flavor == Flavor::Pxe {
            for (key, img) in [("kernel", &images.kernel), ("ramdisk", &images.ramdisk)] {
                if let ImageRef::Url(u) = img {
                    return Err(PxeError::Invalid {
                        key: key.into(),
                        reason: format!(
                            "{u:?}: the pxe boot interface loads everything over TFTP; give a local file, or use the ipxe boot interface"
                        ),
                    });
                }
            }
        }
        if self.flavor == Flavor::Http && config::boot_mode_is_bios(task) {
            return Err(PxeError::Invalid {
                key: "boot_mode".into(),
                reason: "UEFI HTTP boot needs boot mode uefi, the node is set to bios".into(),
            });
        }
        Ok(())
    }

    pub(crate) fn validate(&self, task: &Task) -> Result<(), DriverError> {
        let images = config::ramdisk_images(task, &self.cfg, RamdiskKind::Deploy)?;
        self.check_flavor(task, &images)?;
        if config::netboots_instance(task) && task.node.instance_info.contains_key("kernel") {
            let images = config::instance_images(task, &self.cfg)?;
            self.check_flavor(task, &images)?;
        }
        Ok(())
    }

    pub(crate) fn validate_rescue(&self, task: &Task) -> Result<(), DriverError> {
        let images = config::ramdisk_images(task, &self.cfg, RamdiskKind::Rescue)?;
        self.check_flavor(task, &images)?;
        Ok(())
    }

    fn pxe_ports(task: &Task) -> Result<Vec<&Port>, PxeError> {
        let ports: Vec<&Port> = task.ports.iter().filter(|p| p.pxe_enabled).collect();
        if ports.is_empty() {
            return Err(PxeError::NoPxePort(task.node.uuid.to_string()));
        }
        Ok(ports)
    }

    /// Publish a kernel/ramdisk pair under the node's directory; their URLs.
    fn publish_images(
        &self,
        task: &Task,
        images: &Images,
        prefix: &str,
    ) -> Result<(String, String), DriverError> {
        let base = self.base_url();
        let node = task.node.uuid.to_string();
        let mut urls = Vec::new();
        for (name, img) in [("kernel", &images.kernel), ("ramdisk", &images.ramdisk)] {
            urls.push(match img {
                ImageRef::Url(u) => u.clone(),
                ImageRef::File(path) => {
                    let rel = format!("{node}/{prefix}_{name}");
                    self.cfg.files.link(&rel, path)?;
                    format!("{base}/{rel}")
                }
            });
        }
        let ramdisk = urls.pop().unwrap_or_default();
        let kernel = urls.pop().unwrap_or_default();
        Ok((kernel, ramdisk))
    }

    /// Write the node's scripts (one per PXE port, keyed by MAC, plus
    /// `<uuid>/config`) and point DHCP at them.
    fn publish_config(
        &self,
        task: &mut Task,
        what: &str,
        images: &Images,
        prefix: &str,
        params: &RamdiskParams,
        append: &str,
    ) -> Result<(), DriverError> {
        let ports: Vec<MacAddress> = Self::pxe_ports(task)?.iter().map(|p| p.address).collect();
        let (kernel, ramdisk) = self.publish_images(task, images, prefix)?;
        let node = task.node.uuid.to_string();
        let console = self.cfg.console.as_deref();
        let api = task.env.api_url.as_deref();
        let generic = render::command_line(&params.kernel_params, api, None, console, append);
        self.cfg.files.insert(
            &format!("{node}/config"),
            render::ipxe_script(&node, what, &kernel, &ramdisk, &generic),
        )?;
        let base = self.base_url();
        for mac in &ports {
            let cmdline =
                render::command_line(&params.kernel_params, api, Some(mac), console, append);
            let name = format!("pxelinux.cfg/{}", render::mac_hyphen(mac));
            self.cfg.files.insert(
                &name,
                render::ipxe_script(&node, what, &kernel, &ramdisk, &cmdline),
            )?;
            if let Some(dhcp) = &self.cfg.dhcp {
                dhcp.reservations.set_boot(
                    *mac,
                    Some(BootOptions {
                        next_server: self.cfg.tftp_server,
                        bios_file: self.cfg.bios_nbp.clone(),
                        uefi_file: self.cfg.uefi_nbp.clone(),
                        ipxe_script: Some(format!("{base}/{name}")),
                        http_boot_url: Some(format!(
                            "{}/{}",
                            self.cfg.http_url, self.cfg.uefi_http_nbp
                        )),
                    }),
                );
            }
        }
        task.node.set_internal(
            INTERNAL_KEY,
            serde_json::json!({
                "what": what,
                "macs": ports.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            }),
        );
        tracing::info!(node = %node, what, ports = ports.len(), flavor = ?self.flavor, "network boot configuration written");
        Ok(())
    }

    /// Remove every file and DHCP boot option published for the node. Tolerates
    /// there being nothing to remove.
    fn unpublish(&self, task: &mut Task) {
        let node = task.node.uuid.to_string();
        let mut macs: Vec<MacAddress> = task.ports.iter().map(|p| p.address).collect();
        if let Some(recorded) = task
            .node
            .internal(INTERNAL_KEY)
            .and_then(|v| v.get("macs"))
            .and_then(|v| v.as_array())
        {
            macs.extend(
                recorded
                    .iter()
                    .filter_map(|m| m.as_str()?.parse::<MacAddress>().ok()),
            );
        }
        macs.sort();
        macs.dedup();
        self.cfg.files.remove_dir(&node);
        for mac in &macs {
            self.cfg
                .files
                .remove(&format!("pxelinux.cfg/{}", render::mac_hyphen(mac)));
            if let Some(dhcp) = &self.cfg.dhcp {
                dhcp.reservations.set_boot(*mac, None);
            }
        }
        task.node.remove_internal(INTERNAL_KEY);
    }

    async fn set_boot_device(
        &self,
        task: &Task,
        device: BootDevice,
        persistent: bool,
    ) -> Result<(), DriverError> {
        let mgmt = Arc::clone(&task.driver()?.management);
        let mut device = device;
        if device == BootDevice::UefiHttp
            && !mgmt
                .get_supported_boot_devices(task)
                .await?
                .contains(&BootDevice::UefiHttp)
        {
            // Many BMCs (IPMI) cannot name UEFI HTTP boot: ask for network boot
            // and let the firmware's network boot order reach its HTTP option.
            tracing::warn!(node = %task.node.uuid, "management cannot select UEFI HTTP boot; asking for network (pxe) boot instead");
            device = BootDevice::Pxe;
        }
        mgmt.set_boot_device(task, device, persistent).await
    }

    pub(crate) async fn prepare_ramdisk(
        &self,
        task: &mut Task,
        params: &RamdiskParams,
    ) -> Result<(), DriverError> {
        let images = config::ramdisk_images(task, &self.cfg, params.kind)?;
        self.check_flavor(task, &images)?;
        let (what, prefix) = match params.kind {
            RamdiskKind::Deploy => ("deploy ramdisk", "deploy"),
            RamdiskKind::Rescue => ("rescue ramdisk", "rescue"),
        };
        let append = config::append_params(task, &self.cfg);
        self.publish_config(task, what, &images, prefix, params, &append)?;
        self.set_boot_device(task, self.boot_device(), false).await
    }

    pub(crate) async fn clean_up_ramdisk(&self, task: &mut Task) -> Result<(), DriverError> {
        self.unpublish(task);
        Ok(())
    }

    pub(crate) async fn prepare_instance(&self, task: &mut Task) -> Result<(), DriverError> {
        if config::netboots_instance(task) {
            let images = config::instance_images(task, &self.cfg)?;
            self.check_flavor(task, &images)?;
            let append = task
                .node
                .instance_info
                .get("kernel_append_params")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| config::append_params(task, &self.cfg));
            let params = RamdiskParams::new(RamdiskKind::Deploy);
            self.unpublish(task);
            self.publish_config(task, "instance", &images, "instance", &params, &append)?;
            self.set_boot_device(task, self.boot_device(), true).await
        } else {
            self.unpublish(task);
            self.set_boot_device(task, BootDevice::Disk, true).await
        }
    }

    pub(crate) async fn clean_up_instance(&self, task: &mut Task) -> Result<(), DriverError> {
        self.unpublish(task);
        Ok(())
    }
}

/// Implement `BaseInterface` and `BootInterface` for a wrapper around [`Engine`].
macro_rules! boot_interface {
    ($ty:ident) => {
        #[async_trait::async_trait]
        impl ironic_core::driver::BaseInterface for $ty {
            fn properties(&self) -> Vec<ironic_core::driver::PropertyDoc> {
                crate::config::PROPERTIES.to_vec()
            }
            fn validate(
                &self,
                task: &ironic_core::driver::Task,
            ) -> Result<(), ironic_core::DriverError> {
                self.0.validate(task)
            }
        }

        #[async_trait::async_trait]
        impl ironic_core::driver::BootInterface for $ty {
            fn capabilities(&self) -> Vec<&'static str> {
                vec!["ramdisk_boot"]
            }
            async fn prepare_ramdisk(
                &self,
                task: &mut ironic_core::driver::Task,
                params: &ironic_core::driver::RamdiskParams,
            ) -> Result<(), ironic_core::DriverError> {
                self.0.prepare_ramdisk(task, params).await
            }
            async fn clean_up_ramdisk(
                &self,
                task: &mut ironic_core::driver::Task,
            ) -> Result<(), ironic_core::DriverError> {
                self.0.clean_up_ramdisk(task).await
            }
            async fn prepare_instance(
                &self,
                task: &mut ironic_core::driver::Task,
            ) -> Result<(), ironic_core::DriverError> {
                self.0.prepare_instance(task).await
            }
            async fn clean_up_instance(
                &self,
                task: &mut ironic_core::driver::Task,
            ) -> Result<(), ironic_core::DriverError> {
                self.0.clean_up_instance(task).await
            }
            fn validate_rescue(
                &self,
                task: &ironic_core::driver::Task,
            ) -> Result<(), ironic_core::DriverError> {
                self.0.validate_rescue(task)
            }
            fn validate_inspection(
                &self,
                task: &ironic_core::driver::Task,
            ) -> Result<(), ironic_core::DriverError> {
                self.0.validate(task)
            }
        }
    };
}
pub(crate) use boot_interface;
