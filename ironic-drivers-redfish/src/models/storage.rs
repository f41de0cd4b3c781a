//! Storage, drives, volumes and SimpleStorage.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Link, Status, de};

/// One entry of `Storage.StorageControllers`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct StorageController {
    /// `MemberId`.
    #[serde(rename = "MemberId", deserialize_with = "de::string")]
    pub member_id: Option<String>,
    /// `Name`.
    #[serde(rename = "Name", deserialize_with = "de::string")]
    pub name: Option<String>,
    /// `SupportedRAIDTypes` (RAID0, RAID1, RAID10, ...).
    #[serde(rename = "SupportedRAIDTypes", deserialize_with = "de::strings")]
    pub supported_raid_types: Vec<String>,
}

/// A `Storage` subsystem (a controller and its drives).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Storage {
    /// `@odata.id`.
    #[serde(rename = "@odata.id", deserialize_with = "de::string")]
    pub odata_id: Option<String>,
    /// `Id`.
    #[serde(rename = "Id", deserialize_with = "de::string")]
    pub id: Option<String>,
    /// `Name`.
    #[serde(rename = "Name", deserialize_with = "de::string")]
    pub name: Option<String>,
    /// `Drives`.
    #[serde(rename = "Drives", deserialize_with = "de::list")]
    pub drives: Vec<Link>,
    /// `Volumes`.
    #[serde(rename = "Volumes", deserialize_with = "de::lenient")]
    pub volumes: Option<Link>,
    /// `StorageControllers`.
    #[serde(rename = "StorageControllers", deserialize_with = "de::list")]
    pub storage_controllers: Vec<StorageController>,
    /// `Status`.
    #[serde(rename = "Status", deserialize_with = "de::lenient")]
    pub status: Option<Status>,
}

impl Storage {
    /// RAID types any controller of this subsystem supports.
    pub fn supported_raid_types(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .storage_controllers
            .iter()
            .flat_map(|c| c.supported_raid_types.iter().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// `Drive.Links`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DriveLinks {
    /// `Volumes`.
    #[serde(rename = "Volumes", deserialize_with = "de::list")]
    pub volumes: Vec<Link>,
}

/// A `Drive`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Drive {
    /// `@odata.id`.
    #[serde(rename = "@odata.id", deserialize_with = "de::string")]
    pub odata_id: Option<String>,
    /// `Id`.
    #[serde(rename = "Id", deserialize_with = "de::string")]
    pub id: Option<String>,
    /// `Name`.
    #[serde(rename = "Name", deserialize_with = "de::string")]
    pub name: Option<String>,
    /// `CapacityBytes`.
    #[serde(rename = "CapacityBytes", deserialize_with = "de::uint")]
    pub capacity_bytes: Option<u64>,
    /// `MediaType` (HDD, SSD, SMR).
    #[serde(rename = "MediaType", deserialize_with = "de::string")]
    pub media_type: Option<String>,
    /// `Protocol` (SAS, SATA, NVMe, ...).
    #[serde(rename = "Protocol", deserialize_with = "de::string")]
    pub protocol: Option<String>,
    /// `Model`.
    #[serde(rename = "Model", deserialize_with = "de::string")]
    pub model: Option<String>,
    /// `SerialNumber`.
    #[serde(rename = "SerialNumber", deserialize_with = "de::string")]
    pub serial_number: Option<String>,
    /// `Status`.
    #[serde(rename = "Status", deserialize_with = "de::lenient")]
    pub status: Option<Status>,
    /// `Links`.
    #[serde(rename = "Links", deserialize_with = "de::lenient")]
    pub links: Option<DriveLinks>,
}

/// `Volume.Links`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct VolumeLinks {
    /// `Drives`.
    #[serde(rename = "Drives", deserialize_with = "de::list")]
    pub drives: Vec<Link>,
}

/// A `Volume` (a logical disk).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Volume {
    /// `@odata.id`.
    #[serde(rename = "@odata.id", deserialize_with = "de::string")]
    pub odata_id: Option<String>,
    /// `Id`.
    #[serde(rename = "Id", deserialize_with = "de::string")]
    pub id: Option<String>,
    /// `Name`.
    #[serde(rename = "Name", deserialize_with = "de::string")]
    pub name: Option<String>,
    /// `CapacityBytes`.
    #[serde(rename = "CapacityBytes", deserialize_with = "de::uint")]
    pub capacity_bytes: Option<u64>,
    /// `RAIDType` (RAID0, RAID1, ...).
    #[serde(rename = "RAIDType", deserialize_with = "de::string")]
    pub raid_type: Option<String>,
    /// `VolumeType` (deprecated: Mirrored, StripedWithParity, ...).
    #[serde(rename = "VolumeType", deserialize_with = "de::string")]
    pub volume_type: Option<String>,
    /// `Links`.
    #[serde(rename = "Links", deserialize_with = "de::lenient")]
    pub links: Option<VolumeLinks>,
    /// `Status`.
    #[serde(rename = "Status", deserialize_with = "de::lenient")]
    pub status: Option<Status>,
    /// `Actions`.
    #[serde(rename = "Actions", deserialize_with = "de::object")]
    pub actions: Map<String, Value>,
}

/// A device in `SimpleStorage.Devices`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SimpleDevice {
    /// `Name`.
    #[serde(rename = "Name", deserialize_with = "de::string")]
    pub name: Option<String>,
    /// `Model`.
    #[serde(rename = "Model", deserialize_with = "de::string")]
    pub model: Option<String>,
    /// `CapacityBytes`.
    #[serde(rename = "CapacityBytes", deserialize_with = "de::uint")]
    pub capacity_bytes: Option<u64>,
    /// `Status`.
    #[serde(rename = "Status", deserialize_with = "de::lenient")]
    pub status: Option<Status>,
}

/// A `SimpleStorage` controller.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SimpleStorage {
    /// `@odata.id`.
    #[serde(rename = "@odata.id", deserialize_with = "de::string")]
    pub odata_id: Option<String>,
    /// `Devices`.
    #[serde(rename = "Devices", deserialize_with = "de::list")]
    pub devices: Vec<SimpleDevice>,
}
