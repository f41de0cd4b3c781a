use async_trait::async_trait;

use super::{BaseInterface, StepOutcome, Task};
use crate::error::DriverError;
use crate::model::JsonMap;

/// RAID configuration (Ironic's `RAIDInterface`, optional). The requested
/// configuration is `node.target_raid_config`; drivers record the result in
/// `node.raid_config`.
#[async_trait]
pub trait RaidInterface: BaseInterface {
    /// Create the volumes of `target_raid_config`.
    async fn create_configuration(
        &self,
        task: &mut Task,
        create_root_volume: bool,
        create_nonroot_volumes: bool,
        delete_existing: bool,
    ) -> Result<StepOutcome, DriverError>;

    /// Delete all volumes.
    async fn delete_configuration(&self, task: &mut Task) -> Result<StepOutcome, DriverError>;

    /// The properties a logical disk of `target_raid_config` may have, with a
    /// description each (`GET /v1/drivers/{name}/raid/logical_disk_properties`).
    /// The default is Ironic's standard RAID schema; override it when the
    /// controller takes other keys.
    fn logical_disk_properties(&self) -> Vec<(&'static str, &'static str)> {
        LOGICAL_DISK_PROPERTIES.to_vec()
    }

    /// Check a RAID configuration against what the controller can do.
    fn validate_raid_config(&self, task: &Task, raid_config: &JsonMap) -> Result<(), DriverError> {
        let _ = task;
        if raid_config
            .get("logical_disks")
            .and_then(|d| d.as_array())
            .is_none()
        {
            return Err(DriverError::invalid(
                "RAID config must have a 'logical_disks' list",
            ));
        }
        Ok(())
    }
}

/// The logical disk properties of Ironic's RAID schema
/// (`ironic/drivers/raid_config_schema.json`), with its descriptions.
pub const LOGICAL_DISK_PROPERTIES: &[(&str, &str)] = &[
    (
        "raid_level",
        "RAID level for the logical disk. Valid values are 'JBOD', '0', '1', '2', '5', '6', '1+0', '5+0' and '6+0'. Required.",
    ),
    (
        "size_gb",
        "Size in GiB (Integer) for the logical disk. Use 'MAX' as size_gb if this logical disk is supposed to use the rest of the space available. Required.",
    ),
    (
        "volume_name",
        "Name of the volume to be created. If this is not specified, it will be auto-generated. Optional.",
    ),
    (
        "is_root_volume",
        "Specifies whether this disk is a root volume. By default, this is False. Optional.",
    ),
    (
        "share_physical_disks",
        "Specifies whether other logical disks can share physical disks with this logical disk. By default, this is False. Optional.",
    ),
    (
        "disk_type",
        "The type of disk preferred. Valid values are 'hdd' and 'ssd'. If this is not specified, disk type will not be a selection criterion for choosing backing physical disks. Optional.",
    ),
    (
        "interface_type",
        "The interface type of disk. Valid values are 'sata', 'scsi' and 'sas'. If this is not specified, interface type will not be a selection criterion for choosing backing physical disks. Optional.",
    ),
    (
        "number_of_physical_disks",
        "Number of physical disks to use for this logical disk. By default, the driver uses the minimum number of disks required for that RAID level. Optional.",
    ),
    (
        "controller",
        "Controller to use for this logical disk. If not specified, the driver will choose a suitable RAID controller on the bare metal node. Optional.",
    ),
    (
        "physical_disks",
        "The physical disks to use for this logical disk. If not specified, the driver will choose suitable physical disks to use. Optional.",
    ),
];
