use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{BaseInterface, StepOutcome, Task};
use crate::error::DriverError;

/// A firmware component (`/v1/nodes/{id}/firmware`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareComponent {
    /// `bios`, `bmc`, `nic:...`.
    pub component: String,
    /// Version at first read.
    pub initial_version: Option<String>,
    /// Current version.
    pub current_version: Option<String>,
    /// Version before the last update.
    pub last_version_flashed: Option<String>,
}

/// One update request: `{component, url, checksum?, wait?}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareUpdate {
    /// Component.
    pub component: String,
    /// Image URL.
    pub url: String,
    /// Checksum of the image.
    #[serde(default)]
    pub checksum: Option<String>,
    /// Seconds to wait after the update.
    #[serde(default)]
    pub wait: Option<u64>,
}

/// Firmware updates (Ironic's `FirmwareInterface`, optional, API 1.86).
#[async_trait]
pub trait FirmwareInterface: BaseInterface {
    /// Apply updates.
    async fn update(
        &self,
        task: &mut Task,
        updates: &[FirmwareUpdate],
    ) -> Result<StepOutcome, DriverError>;
    /// Read component versions (the conductor caches them).
    async fn cache_firmware_components(
        &self,
        task: &mut Task,
    ) -> Result<Vec<FirmwareComponent>, DriverError>;
}
