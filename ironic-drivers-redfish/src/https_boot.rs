//! `RedfishHttpsBoot` (`boot_interface = "redfish-https"`): the deploy ISO booted
//! by the firmware over UEFI HTTP, as Ironic's `RedfishHttpsBoot`: the BMC is
//! told `BootSourceOverrideTarget: UefiHttp` with `HttpBootUri` pointing at the
//! node's ISO (the one `redfish-virtual-media` would insert), so no virtual media
//! slot is used.

use std::sync::Arc;

use async_trait::async_trait;
use ironic_core::DriverError;
use ironic_core::driver::{
    BaseInterface, BootDevice, BootInterface, BootIsoBuilder, PropertyDoc, RamdiskKind,
    RamdiskParams, Task,
};
use serde_json::json;

use crate::error::RedfishError;
use crate::management::{set_boot_device, set_boot_device_uri};
use crate::models::ComputerSystem;
use crate::vmedia::{iso_properties, iso_url, validate_iso};
use crate::{RedfishConfig, Shared};

/// The `driver_internal_info` key where the URL booted over UEFI HTTP is kept
/// (Ironic's name).
pub const UEFI_HTTP_URL: &str = "redfish_uefi_http_url";

/// Boot the agent ramdisk over UEFI HTTP (`boot_interface = "redfish-https"`).
///
/// As Ironic's `RedfishHttpsBoot`:
/// - `prepare_ramdisk` gets the node's ISO as `redfish-virtual-media` does (a
///   prebuilt `driver_info.redfish_deploy_iso` / `deploy_iso`, or one built for
///   the node with its kernel parameters plus `boot_method=vmedia`), then sets a
///   one-time boot from `UefiHttp` with `HttpBootUri` set to the ISO's URL; the
///   URL is kept in `driver_internal_info.redfish_uefi_http_url`.
/// - A system whose `BootSourceOverrideTarget@Redfish.AllowableValues` lacks
///   `UefiHttp` is refused with Ironic's "does not support feature UefiHttp
///   boot"; one that does not advertise `HttpBootUri` is refused as sushy does
///   ("The attribute HttpBootUri is missing"). Ironic checks the first in
///   `validate`; here `validate` never contacts the BMC, so both are checked
///   when the ramdisk is prepared.
/// - `prepare_instance` removes the ISO and boots the disk persistently (the
///   `HttpBootUri` is cleared on the way); `clean_up_ramdisk` and
///   `clean_up_instance` remove the ISO. Nothing is inserted, so nothing is
///   ejected.
///
/// Not done: booting an instance's own ISO over UEFI HTTP (Ironic's `ramdisk`
/// deploy with `boot_iso`): as with `redfish-virtual-media` here, the instance
/// boots from its disk.
#[derive(Debug, Clone)]
pub struct RedfishHttpsBoot {
    shared: Arc<Shared>,
    builder: Option<Arc<dyn BootIsoBuilder>>,
}

impl RedfishHttpsBoot {
    /// A boot interface with its own client cache.
    pub fn new(config: RedfishConfig) -> Self {
        Self::with_shared(Arc::new(Shared::new(config)))
    }

    /// Build the node's ISO with `builder` when `driver_info` names no prebuilt one.
    pub fn with_boot_iso(mut self, builder: Arc<dyn BootIsoBuilder>) -> Self {
        self.builder = Some(builder);
        self
    }

    pub(crate) fn with_shared(shared: Arc<Shared>) -> Self {
        RedfishHttpsBoot {
            shared,
            builder: None,
        }
    }

    async fn remove_iso(&self, task: &mut Task) -> Result<(), DriverError> {
        if let Some(b) = &self.builder {
            b.clean_up(task).await?;
        }
        task.node.driver_internal_info.remove(UEFI_HTTP_URL);
        Ok(())
    }
}

#[async_trait]
impl BaseInterface for RedfishHttpsBoot {
    fn properties(&self) -> Vec<PropertyDoc> {
        iso_properties(self.builder.is_some())
    }

    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        self.shared.info(task)?;
        validate_iso(task, RamdiskKind::Deploy, self.builder.as_ref())
    }

    fn steps(&self) -> Vec<ironic_core::driver::StepDef> {
        Vec::new()
    }
}

#[async_trait]
impl BootInterface for RedfishHttpsBoot {
    fn capabilities(&self) -> Vec<&'static str> {
        vec!["ramdisk_boot"]
    }

    async fn prepare_ramdisk(
        &self,
        task: &mut Task,
        params: &RamdiskParams,
    ) -> Result<(), DriverError> {
        let (client, path) = self.shared.connect(task).await?;
        let system: ComputerSystem = client.get(&path).await?;
        let allowed = system
            .boot
            .as_ref()
            .map(|b| b.target_allowable.clone())
            .unwrap_or_default();
        if !allowed.is_empty() && !allowed.iter().any(|a| a.eq_ignore_ascii_case("UefiHttp")) {
            return Err(RedfishError::Unsupported(format!(
                "Node {} hardware does not support feature UefiHttp boot, which is required based upon the requested configuration.",
                task.node.uuid
            ))
            .into());
        }
        // Ironic's: the ramdisk looks for its configuration on the boot media.
        let params = params.clone().with_param("boot_method", "vmedia");
        let (iso, _) = iso_url(task, &params, self.builder.as_ref()).await?;
        set_boot_device_uri(
            &client,
            &path,
            task,
            BootDevice::UefiHttp,
            false,
            Some(&iso),
        )
        .await?;
        task.node.set_internal(UEFI_HTTP_URL, json!(iso));
        tracing::info!(node = %task.node.uuid, url = %iso, "node set to boot its ramdisk once over UEFI HTTP");
        Ok(())
    }

    async fn clean_up_ramdisk(&self, task: &mut Task) -> Result<(), DriverError> {
        self.remove_iso(task).await
    }

    async fn prepare_instance(&self, task: &mut Task) -> Result<(), DriverError> {
        self.remove_iso(task).await?;
        let (client, path) = self.shared.connect(task).await?;
        set_boot_device(&client, &path, task, BootDevice::Disk, true).await?;
        Ok(())
    }

    async fn clean_up_instance(&self, task: &mut Task) -> Result<(), DriverError> {
        self.remove_iso(task).await
    }

    fn validate_rescue(&self, task: &Task) -> Result<(), DriverError> {
        validate_iso(task, RamdiskKind::Rescue, self.builder.as_ref())
    }

    fn validate_inspection(&self, task: &Task) -> Result<(), DriverError> {
        self.shared.info(task)?;
        Ok(())
    }
}
