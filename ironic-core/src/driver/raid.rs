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
