//! Ironic's no-op interfaces: what a hardware type uses for an optional interface
//! it does not implement (`no-bios`, `no-console`, `no-inspect`, `no-raid`,
//! `no-rescue`, `no-firmware`, `no-vendor`, storage `noop`, network `noop`,
//! management `noop`).

use async_trait::async_trait;

use super::*;
use crate::error::{DriverError, ErrorKind};
use crate::model::{JsonMap, Port};

macro_rules! no_interface {
    ($(#[$m:meta])* $name:ident, $label:literal) => {
        $(#[$m])*
        #[derive(Debug, Default, Clone, Copy)]
        pub struct $name;

        #[async_trait]
        impl BaseInterface for $name {
            fn validate(&self, _task: &Task) -> Result<(), DriverError> {
                Ok(())
            }
        }

        impl $name {
            /// The name Ironic registers it under.
            pub const NAME: &'static str = $label;
        }
    };
}

fn unsupported(what: &str, iface: &str) -> DriverError {
    DriverError::unsupported(format!(
        "{what} is not supported: the node's {iface} interface is a no-op"
    ))
}

no_interface!(
    /// `bios_interface = "no-bios"`.
    NoBios,
    "no-bios"
);
#[async_trait]
impl BiosInterface for NoBios {
    async fn apply_configuration(
        &self,
        _task: &mut Task,
        _settings: &[BiosSetting],
    ) -> Result<StepOutcome, DriverError> {
        Err(unsupported("BIOS configuration", "bios"))
    }
    async fn factory_reset(&self, _task: &mut Task) -> Result<StepOutcome, DriverError> {
        Err(unsupported("BIOS factory reset", "bios"))
    }
    async fn cache_bios_settings(&self, _task: &mut Task) -> Result<Vec<BiosSetting>, DriverError> {
        Ok(Vec::new())
    }
}

no_interface!(
    /// `console_interface = "no-console"`.
    NoConsole,
    "no-console"
);
#[async_trait]
impl ConsoleInterface for NoConsole {
    async fn start_console(&self, _task: &mut Task) -> Result<(), DriverError> {
        Err(unsupported("console", "console"))
    }
    async fn stop_console(&self, _task: &mut Task) -> Result<(), DriverError> {
        Err(unsupported("console", "console"))
    }
    async fn get_console(&self, _task: &Task) -> Result<ConsoleInfo, DriverError> {
        Err(unsupported("console", "console"))
    }
}

no_interface!(
    /// `inspect_interface = "no-inspect"`.
    NoInspect,
    "no-inspect"
);
#[async_trait]
impl InspectInterface for NoInspect {
    async fn inspect_hardware(&self, _task: &mut Task) -> Result<InspectOutcome, DriverError> {
        Err(unsupported("inspection", "inspect"))
    }
}

no_interface!(
    /// `raid_interface = "no-raid"`.
    NoRaid,
    "no-raid"
);
#[async_trait]
impl RaidInterface for NoRaid {
    async fn create_configuration(
        &self,
        _task: &mut Task,
        _root: bool,
        _nonroot: bool,
        _delete: bool,
    ) -> Result<StepOutcome, DriverError> {
        Err(unsupported("RAID configuration", "raid"))
    }
    async fn delete_configuration(&self, _task: &mut Task) -> Result<StepOutcome, DriverError> {
        Err(unsupported("RAID configuration", "raid"))
    }
}

no_interface!(
    /// `rescue_interface = "no-rescue"`.
    NoRescue,
    "no-rescue"
);
#[async_trait]
impl RescueInterface for NoRescue {
    async fn rescue(&self, _task: &mut Task) -> Result<StepOutcome, DriverError> {
        Err(unsupported("rescue", "rescue"))
    }
    async fn unrescue(&self, _task: &mut Task) -> Result<(), DriverError> {
        Err(unsupported("unrescue", "rescue"))
    }
}

no_interface!(
    /// `firmware_interface = "no-firmware"`.
    NoFirmware,
    "no-firmware"
);
#[async_trait]
impl FirmwareInterface for NoFirmware {
    async fn update(
        &self,
        _task: &mut Task,
        _updates: &[FirmwareUpdate],
    ) -> Result<StepOutcome, DriverError> {
        Err(unsupported("firmware update", "firmware"))
    }
    async fn cache_firmware_components(
        &self,
        _task: &mut Task,
    ) -> Result<Vec<FirmwareComponent>, DriverError> {
        Ok(Vec::new())
    }
}

no_interface!(
    /// `vendor_interface = "no-vendor"`.
    NoVendor,
    "no-vendor"
);
impl VendorInterface for NoVendor {}

no_interface!(
    /// `storage_interface = "noop"`.
    NoopStorage,
    "noop"
);
#[async_trait]
impl StorageInterface for NoopStorage {
    async fn attach_volumes(&self, _task: &mut Task) -> Result<(), DriverError> {
        Ok(())
    }
    async fn detach_volumes(&self, _task: &mut Task) -> Result<(), DriverError> {
        Ok(())
    }
    fn should_write_image(&self, _task: &Task) -> bool {
        true
    }
}

no_interface!(
    /// `management_interface = "noop"`: for BMCs that cannot set the boot device;
    /// the node is expected to boot from the network first, always.
    NoopManagement,
    "noop"
);
#[async_trait]
impl ManagementInterface for NoopManagement {
    async fn get_supported_boot_devices(
        &self,
        _task: &Task,
    ) -> Result<Vec<BootDevice>, DriverError> {
        Ok(vec![BootDevice::Pxe, BootDevice::Disk])
    }
    async fn set_boot_device(
        &self,
        _task: &Task,
        _device: BootDevice,
        _persistent: bool,
    ) -> Result<(), DriverError> {
        Ok(())
    }
    async fn get_boot_device(&self, _task: &Task) -> Result<BootDeviceInfo, DriverError> {
        Ok(BootDeviceInfo {
            boot_device: None,
            persistent: None,
        })
    }
}

no_interface!(
    /// `network_interface = "noop"`: no network changes; VIFs are recorded on the
    /// node's ports (`internal_info.tenant_vif_port_id`) so `/vifs` works.
    NoopNetwork,
    "noop"
);

/// Record a VIF on the first free port (port-group-aware callers pass
/// `port_uuid` in the VIF info). Shared by network interfaces that keep VIFs on ports.
pub fn attach_vif_to_port(task: &mut Task, vif: &VifInfo) -> Result<Port, DriverError> {
    if task.ports.iter().any(|p| p.vif() == Some(vif.id.as_str())) {
        return Err(DriverError::new(
            ErrorKind::Conflict,
            format!(
                "Unable to attach VIF {} because it is already attached to node {}",
                vif.id, task.node.uuid
            ),
        ));
    }
    let wanted = vif.extra.get("port_uuid").and_then(|v| v.as_str());
    let port = task
        .ports
        .iter_mut()
        .find(|p| match wanted {
            Some(u) => p.uuid.to_string() == u,
            None => p.vif().is_none(),
        })
        .ok_or_else(|| {
            DriverError::new(
                ErrorKind::Conflict,
                format!(
                    "Unable to attach VIF {}, not enough free physical ports on node {}",
                    vif.id, task.node.uuid
                ),
            )
        })?;
    if port.vif().is_some() {
        return Err(DriverError::new(
            ErrorKind::Conflict,
            format!("Port {} already has a VIF attached", port.uuid),
        ));
    }
    port.internal_info.insert(
        "tenant_vif_port_id".into(),
        serde_json::Value::String(vif.id.clone()),
    );
    port.updated_at = Some(crate::model::now());
    Ok(port.clone())
}

/// Remove a VIF from whichever port holds it.
pub fn detach_vif_from_port(task: &mut Task, vif_id: &str) -> Result<Port, DriverError> {
    let port = task
        .ports
        .iter_mut()
        .find(|p| p.vif() == Some(vif_id))
        .ok_or_else(|| {
            DriverError::new(
                ErrorKind::NotFound,
                format!(
                    "Unable to detach VIF {vif_id} from node {}: it is not attached",
                    task.node.uuid
                ),
            )
        })?;
    port.internal_info.remove("tenant_vif_port_id");
    port.updated_at = Some(crate::model::now());
    Ok(port.clone())
}

#[async_trait]
impl NetworkInterface for NoopNetwork {
    async fn vif_attach(&self, task: &mut Task, vif: &VifInfo) -> Result<Port, DriverError> {
        attach_vif_to_port(task, vif)
    }
    async fn vif_detach(&self, task: &mut Task, vif_id: &str) -> Result<Port, DriverError> {
        detach_vif_from_port(task, vif_id)
    }
    async fn add_network(&self, _task: &mut Task, _phase: NetworkPhase) -> Result<(), DriverError> {
        Ok(())
    }
    async fn remove_network(
        &self,
        _task: &mut Task,
        _phase: NetworkPhase,
    ) -> Result<(), DriverError> {
        Ok(())
    }
    fn get_node_network_data(&self, task: &Task) -> JsonMap {
        task.node.network_data.clone()
    }
}
