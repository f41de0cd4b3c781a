use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{BaseInterface, StepOutcome, Task};
use crate::error::DriverError;

/// A firmware component (`/v1/nodes/{id}/firmware`), with the identity of the
/// part it runs on (API 1.114: `vendor`, `model`, `serial_number`).
///
/// Drivers report `component`, `current_version` and the identity; the
/// conductor keeps `initial_version` (the first version it saw) and
/// `last_version_flashed` (set when the version changes), as Ironic's
/// `FirmwareComponentList.sync_firmware_components` does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FirmwareComponent {
    /// `bios`, `bmc`, `nic:<serial or id>`.
    pub component: String,
    /// Version at first read.
    pub initial_version: Option<String>,
    /// Current version.
    pub current_version: Option<String>,
    /// The version last seen to change (Ironic records the new version here).
    pub last_version_flashed: Option<String>,
    /// Manufacturer of the part (1.114).
    #[serde(default)]
    pub vendor: Option<String>,
    /// Model of the part (1.114).
    #[serde(default)]
    pub model: Option<String>,
    /// Serial number of the part (1.114).
    #[serde(default)]
    pub serial_number: Option<String>,
    /// When the conductor first recorded it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<crate::model::Timestamp>,
    /// When the conductor last changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<crate::model::Timestamp>,
}

impl FirmwareComponent {
    /// A component as a driver reports it: name and current version.
    pub fn new(component: impl Into<String>, current_version: Option<String>) -> Self {
        FirmwareComponent {
            component: component.into(),
            current_version,
            ..FirmwareComponent::default()
        }
    }
}

/// One update request: `{component, url, checksum?, wait?}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
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

impl FirmwareUpdate {
    /// Update `component` from the image at `url`, no checksum, no wait.
    pub fn new(component: impl Into<String>, url: impl Into<String>) -> Self {
        FirmwareUpdate {
            component: component.into(),
            url: url.into(),
            checksum: None,
            wait: None,
        }
    }
}

/// Firmware updates (Ironic's `FirmwareInterface`, optional, API 1.86).
///
/// # For driver authors
/// `cache_firmware_components` reports what the hardware runs now; the
/// conductor merges it into what it stored before (see [`FirmwareComponent`]) at
/// the moments Ironic does (management verification, before and after cleaning
/// and servicing, after inspection). Return [`crate::ErrorKind::Unsupported`]
/// when no component can be read.
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
