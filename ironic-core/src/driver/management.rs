use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{BaseInterface, Task};
use crate::error::DriverError;
use crate::model::JsonMap;
use crate::states::UnknownValue;

/// A boot device (`ironic.common.boot_devices`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BootDevice {
    /// Network (PXE).
    Pxe,
    /// Local disk.
    Disk,
    /// CD/DVD (and virtual media).
    Cdrom,
    /// BIOS setup.
    Bios,
    /// Safe mode.
    Safe,
    /// WAN boot.
    Wanboot,
    /// iSCSI boot.
    Iscsiboot,
    /// Floppy.
    Floppy,
    /// UEFI HTTP boot.
    UefiHttp,
}

impl BootDevice {
    /// Every device.
    pub const ALL: &'static [BootDevice] = &[
        BootDevice::Pxe,
        BootDevice::Disk,
        BootDevice::Cdrom,
        BootDevice::Bios,
        BootDevice::Safe,
        BootDevice::Wanboot,
        BootDevice::Iscsiboot,
        BootDevice::Floppy,
        BootDevice::UefiHttp,
    ];
    /// Ironic's string.
    pub const fn as_str(self) -> &'static str {
        match self {
            BootDevice::Pxe => "pxe",
            BootDevice::Disk => "disk",
            BootDevice::Cdrom => "cdrom",
            BootDevice::Bios => "bios",
            BootDevice::Safe => "safe",
            BootDevice::Wanboot => "wanboot",
            BootDevice::Iscsiboot => "iscsiboot",
            BootDevice::Floppy => "floppy",
            BootDevice::UefiHttp => "uefi http",
        }
    }
}

impl fmt::Display for BootDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BootDevice {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BootDevice::ALL
            .iter()
            .copied()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| UnknownValue {
                kind: "boot device",
                value: s.to_owned(),
            })
    }
}

impl Serialize for BootDevice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for BootDevice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A boot mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BootMode {
    /// UEFI.
    Uefi,
    /// Legacy BIOS.
    Bios,
}

impl BootMode {
    /// `"uefi"` / `"bios"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BootMode::Uefi => "uefi",
            BootMode::Bios => "bios",
        }
    }
}

impl fmt::Display for BootMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BootMode {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "uefi" => Ok(BootMode::Uefi),
            "bios" => Ok(BootMode::Bios),
            other => Err(UnknownValue {
                kind: "boot mode",
                value: other.to_owned(),
            }),
        }
    }
}

/// The boot device a BMC reports (`get_boot_device`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootDeviceInfo {
    /// The device, `None` if unknown.
    pub boot_device: Option<BootDevice>,
    /// Whether it persists across reboots, `None` if unknown.
    pub persistent: Option<bool>,
}

/// A virtual media device type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum VmediaDevice {
    /// CD/DVD.
    Cdrom,
    /// Floppy.
    Floppy,
    /// USB stick.
    Disk,
}

/// Management of a node through its BMC (Ironic's `ManagementInterface`, core).
///
/// # Contract
/// * `set_boot_device` with `persistent = false` applies to the next boot only.
///   Asking for a device not in `get_supported_boot_devices` is an
///   [`crate::ErrorKind::InvalidParameter`] error.
/// * `get_boot_device` reports what the BMC says; `None` fields mean the BMC does
///   not tell.
/// * Optional methods default to [`DriverError::unsupported`].
///
/// # For driver authors
/// Keep the boot mode (UEFI/legacy) the node's `boot_mode` or
/// `properties.capabilities` asks for when setting the boot device.
#[async_trait]
pub trait ManagementInterface: BaseInterface {
    /// Devices `set_boot_device` accepts.
    async fn get_supported_boot_devices(&self, task: &Task)
    -> Result<Vec<BootDevice>, DriverError>;

    /// Set the boot device.
    async fn set_boot_device(
        &self,
        task: &Task,
        device: BootDevice,
        persistent: bool,
    ) -> Result<(), DriverError>;

    /// Read the boot device.
    async fn get_boot_device(&self, task: &Task) -> Result<BootDeviceInfo, DriverError>;

    /// Sensor readings: `{sensor_type: {sensor_id: {"Sensor Reading": ..., ...}}}`.
    async fn get_sensors_data(&self, task: &Task) -> Result<JsonMap, DriverError> {
        let _ = task;
        Err(DriverError::unsupported("get_sensors_data"))
    }

    /// Supported boot modes.
    async fn get_supported_boot_modes(&self, task: &Task) -> Result<Vec<BootMode>, DriverError> {
        let _ = task;
        Err(DriverError::unsupported("get_supported_boot_modes"))
    }

    /// Set the boot mode.
    async fn set_boot_mode(&self, task: &Task, mode: BootMode) -> Result<(), DriverError> {
        let _ = (task, mode);
        Err(DriverError::unsupported("set_boot_mode"))
    }

    /// Read the boot mode.
    async fn get_boot_mode(&self, task: &Task) -> Result<Option<BootMode>, DriverError> {
        let _ = task;
        Err(DriverError::unsupported("get_boot_mode"))
    }

    /// Read the secure boot state.
    async fn get_secure_boot_state(&self, task: &Task) -> Result<bool, DriverError> {
        let _ = task;
        Err(DriverError::unsupported("get_secure_boot_state"))
    }

    /// Turn secure boot on or off.
    async fn set_secure_boot_state(&self, task: &Task, on: bool) -> Result<(), DriverError> {
        let _ = (task, on);
        Err(DriverError::unsupported("set_secure_boot_state"))
    }

    /// Inject a non-maskable interrupt.
    async fn inject_nmi(&self, task: &Task) -> Result<(), DriverError> {
        let _ = task;
        Err(DriverError::unsupported("inject_nmi"))
    }

    /// Health (`OK`/`Warning`/`Critical`).
    async fn get_node_health(&self, task: &Task) -> Result<Option<String>, DriverError> {
        let _ = task;
        Ok(None)
    }

    /// Indicators per component: `{component: {indicator: {readonly, states}}}`.
    async fn get_supported_indicators(&self, task: &Task) -> Result<JsonMap, DriverError> {
        let _ = task;
        Err(DriverError::unsupported("get_supported_indicators"))
    }

    /// Set an indicator (`ON`, `OFF`, `BLINKING`).
    async fn set_indicator_state(
        &self,
        task: &Task,
        component: &str,
        indicator: &str,
        state: &str,
    ) -> Result<(), DriverError> {
        let _ = (task, component, indicator, state);
        Err(DriverError::unsupported("set_indicator_state"))
    }

    /// Read an indicator.
    async fn get_indicator_state(
        &self,
        task: &Task,
        component: &str,
        indicator: &str,
    ) -> Result<String, DriverError> {
        let _ = (task, component, indicator);
        Err(DriverError::unsupported("get_indicator_state"))
    }

    /// MAC addresses the BMC knows for the node's NICs.
    async fn get_mac_addresses(&self, task: &Task) -> Result<Vec<String>, DriverError> {
        let _ = task;
        Err(DriverError::unsupported("get_mac_addresses"))
    }

    /// Attach an image as virtual media.
    async fn attach_virtual_media(
        &self,
        task: &Task,
        device: VmediaDevice,
        image_url: &str,
    ) -> Result<(), DriverError> {
        let _ = (task, device, image_url);
        Err(DriverError::unsupported("attach_virtual_media"))
    }

    /// Detach virtual media (all device types when `devices` is empty).
    async fn detach_virtual_media(
        &self,
        task: &Task,
        devices: &[VmediaDevice],
    ) -> Result<(), DriverError> {
        let _ = (task, devices);
        Err(DriverError::unsupported("detach_virtual_media"))
    }

    /// The virtual media devices and what is inserted in them, as the BMC
    /// reports it (`GET /v1/nodes/{node}/vmedia`, API 1.93): as Ironic's Redfish
    /// driver, a JSON list with one object per device,
    /// `[{"media_types": ["CD", "DVD"], "inserted": true, "image": "http://..."}]`
    /// (Metal3 decodes exactly this list).
    async fn get_virtual_media(&self, task: &Task) -> Result<serde_json::Value, DriverError> {
        let _ = task;
        Err(DriverError::unsupported("get_virtual_media"))
    }

    /// Vendor of the hardware, as the BMC reports it.
    async fn detect_vendor(&self, task: &Task) -> Result<Option<String>, DriverError> {
        let _ = task;
        Ok(None)
    }
}
