use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{BaseInterface, StepOutcome, Task};
use crate::error::DriverError;

/// One BIOS setting (`/v1/nodes/{id}/bios`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BiosSetting {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Option<String>,
    /// Allowed values, if the BMC says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowable_values: Option<Vec<String>>,
    /// Whether it is read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Whether changing it needs a reboot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_required: Option<bool>,
}

/// BIOS settings (Ironic's `BIOSInterface`, optional).
#[async_trait]
pub trait BiosInterface: BaseInterface {
    /// Apply settings.
    async fn apply_configuration(
        &self,
        task: &mut Task,
        settings: &[BiosSetting],
    ) -> Result<StepOutcome, DriverError>;
    /// Reset to factory defaults.
    async fn factory_reset(&self, task: &mut Task) -> Result<StepOutcome, DriverError>;
    /// Read the current settings (the conductor caches them).
    async fn cache_bios_settings(&self, task: &mut Task) -> Result<Vec<BiosSetting>, DriverError>;
}
