//! The service root, systems, managers, virtual media, NICs, processors, chassis.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Action, Link, SettingsAnnotation, Status, de, find_action, redfish_enum};

/// `/redfish/v1/`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ServiceRoot {
    /// `RedfishVersion`.
    #[serde(rename = "RedfishVersion", deserialize_with = "de::string")]
    pub redfish_version: Option<String>,
    /// `Vendor` (1.5+).
    #[serde(rename = "Vendor", deserialize_with = "de::string")]
    pub vendor: Option<String>,
    /// `Systems`.
    #[serde(rename = "Systems", deserialize_with = "de::lenient")]
    pub systems: Option<Link>,
    /// `Managers`.
    #[serde(rename = "Managers", deserialize_with = "de::lenient")]
    pub managers: Option<Link>,
    /// `Chassis`.
    #[serde(rename = "Chassis", deserialize_with = "de::lenient")]
    pub chassis: Option<Link>,
    /// `UpdateService`.
    #[serde(rename = "UpdateService", deserialize_with = "de::lenient")]
    pub update_service: Option<Link>,
    /// `SessionService`.
    #[serde(rename = "SessionService", deserialize_with = "de::lenient")]
    pub session_service: Option<Link>,
    /// `Links`.
    #[serde(rename = "Links", deserialize_with = "de::lenient")]
    pub links: Option<RootLinks>,
    /// `Oem`.
    #[serde(rename = "Oem")]
    pub oem: Value,
}

/// `ServiceRoot.Links`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RootLinks {
    /// `Sessions`: where to POST to log in.
    #[serde(rename = "Sessions", deserialize_with = "de::lenient")]
    pub sessions: Option<Link>,
}

impl ServiceRoot {
    /// Where to create sessions, if the BMC offers them.
    pub fn sessions_uri(&self) -> Option<String> {
        self.links
            .as_ref()
            .and_then(|l| l.sessions.as_ref())
            .map(|l| l.odata_id.clone())
            .or_else(|| {
                self.session_service
                    .as_ref()
                    .map(|s| format!("{}/Sessions", s.odata_id.trim_end_matches('/')))
            })
    }
}

redfish_enum! {
    /// `ComputerSystem.PowerState`.
    PowerState { On = "On", Off = "Off", PoweringOn = "PoweringOn", PoweringOff = "PoweringOff", Paused = "Paused" }
}

redfish_enum! {
    /// `ResetType`.
    ResetType {
        On = "On", ForceOff = "ForceOff", GracefulShutdown = "GracefulShutdown",
        GracefulRestart = "GracefulRestart", ForceRestart = "ForceRestart", Nmi = "Nmi",
        ForceOn = "ForceOn", PushPowerButton = "PushPowerButton", PowerCycle = "PowerCycle",
    }
}

redfish_enum! {
    /// `Boot.BootSourceOverrideTarget`.
    BootSource {
        None = "None", Pxe = "Pxe", Floppy = "Floppy", Cd = "Cd", Usb = "Usb", Hdd = "Hdd",
        BiosSetup = "BiosSetup", Utilities = "Utilities", Diags = "Diags",
        UefiShell = "UefiShell", UefiTarget = "UefiTarget", SdCard = "SDCard",
        UefiHttp = "UefiHttp", RemoteDrive = "RemoteDrive", UefiBootNext = "UefiBootNext",
        Recovery = "Recovery",
    }
}

redfish_enum! {
    /// `Boot.BootSourceOverrideEnabled`.
    BootOverrideEnabled { Disabled = "Disabled", Once = "Once", Continuous = "Continuous" }
}

redfish_enum! {
    /// `Boot.BootSourceOverrideMode`.
    BootOverrideMode { Legacy = "Legacy", Uefi = "UEFI" }
}

redfish_enum! {
    /// `IndicatorLED`.
    IndicatorLed { Lit = "Lit", Blinking = "Blinking", Off = "Off", Unknown = "Unknown" }
}

/// `ComputerSystem.Boot`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Boot {
    /// `BootSourceOverrideTarget`.
    #[serde(rename = "BootSourceOverrideTarget", deserialize_with = "de::lenient")]
    pub target: Option<BootSource>,
    /// `BootSourceOverrideTarget@Redfish.AllowableValues`.
    #[serde(
        rename = "BootSourceOverrideTarget@Redfish.AllowableValues",
        deserialize_with = "de::strings"
    )]
    pub target_allowable: Vec<String>,
    /// `BootSourceOverrideEnabled`.
    #[serde(rename = "BootSourceOverrideEnabled", deserialize_with = "de::lenient")]
    pub enabled: Option<BootOverrideEnabled>,
    /// `BootSourceOverrideMode`.
    #[serde(rename = "BootSourceOverrideMode", deserialize_with = "de::lenient")]
    pub mode: Option<BootOverrideMode>,
    /// `BootSourceOverrideMode@Redfish.AllowableValues`.
    #[serde(
        rename = "BootSourceOverrideMode@Redfish.AllowableValues",
        deserialize_with = "de::strings"
    )]
    pub mode_allowable: Vec<String>,
    /// `HttpBootUri` (some BMCs send the string "None").
    #[serde(rename = "HttpBootUri", deserialize_with = "de::string")]
    pub http_boot_uri: Option<String>,
    /// `BootOrder`.
    #[serde(rename = "BootOrder", deserialize_with = "de::strings")]
    pub boot_order: Vec<String>,
}

/// `ProcessorSummary`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ProcessorSummary {
    /// `Count` (sockets).
    #[serde(rename = "Count", deserialize_with = "de::uint")]
    pub count: Option<u64>,
    /// `LogicalProcessorCount`.
    #[serde(rename = "LogicalProcessorCount", deserialize_with = "de::uint")]
    pub logical_count: Option<u64>,
    /// `Model`.
    #[serde(rename = "Model", deserialize_with = "de::string")]
    pub model: Option<String>,
}

/// `MemorySummary`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MemorySummary {
    /// `TotalSystemMemoryGiB`.
    #[serde(rename = "TotalSystemMemoryGiB", deserialize_with = "de::float")]
    pub total_gib: Option<f64>,
}

/// `ComputerSystem.Links`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SystemLinks {
    /// `ManagedBy`.
    #[serde(rename = "ManagedBy", deserialize_with = "de::list")]
    pub managed_by: Vec<Link>,
    /// `Chassis`.
    #[serde(rename = "Chassis", deserialize_with = "de::list")]
    pub chassis: Vec<Link>,
}

/// A `ComputerSystem`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ComputerSystem {
    /// `@odata.id`.
    #[serde(rename = "@odata.id", deserialize_with = "de::string")]
    pub odata_id: Option<String>,
    /// `@odata.etag`.
    #[serde(rename = "@odata.etag", deserialize_with = "de::string")]
    pub etag: Option<String>,
    /// `Id`.
    #[serde(rename = "Id", deserialize_with = "de::string")]
    pub id: Option<String>,
    /// `Name`.
    #[serde(rename = "Name", deserialize_with = "de::string")]
    pub name: Option<String>,
    /// `UUID`.
    #[serde(rename = "UUID", deserialize_with = "de::string")]
    pub uuid: Option<String>,
    /// `Manufacturer`.
    #[serde(rename = "Manufacturer", deserialize_with = "de::string")]
    pub manufacturer: Option<String>,
    /// `Model`.
    #[serde(rename = "Model", deserialize_with = "de::string")]
    pub model: Option<String>,
    /// `SerialNumber`.
    #[serde(rename = "SerialNumber", deserialize_with = "de::string")]
    pub serial_number: Option<String>,
    /// `SKU`.
    #[serde(rename = "SKU", deserialize_with = "de::string")]
    pub sku: Option<String>,
    /// `BiosVersion`.
    #[serde(rename = "BiosVersion", deserialize_with = "de::string")]
    pub bios_version: Option<String>,
    /// `PowerState`.
    #[serde(rename = "PowerState", deserialize_with = "de::lenient")]
    pub power_state: Option<PowerState>,
    /// `Boot`.
    #[serde(rename = "Boot", deserialize_with = "de::lenient")]
    pub boot: Option<Boot>,
    /// `IndicatorLED` (deprecated in favour of `LocationIndicatorActive`).
    #[serde(rename = "IndicatorLED", deserialize_with = "de::lenient")]
    pub indicator_led: Option<IndicatorLed>,
    /// `LocationIndicatorActive`.
    #[serde(rename = "LocationIndicatorActive", deserialize_with = "de::boolean")]
    pub location_indicator_active: Option<bool>,
    /// `Status`.
    #[serde(rename = "Status", deserialize_with = "de::lenient")]
    pub status: Option<Status>,
    /// `ProcessorSummary`.
    #[serde(rename = "ProcessorSummary", deserialize_with = "de::lenient")]
    pub processor_summary: Option<ProcessorSummary>,
    /// `MemorySummary`.
    #[serde(rename = "MemorySummary", deserialize_with = "de::lenient")]
    pub memory_summary: Option<MemorySummary>,
    /// `Processors`.
    #[serde(rename = "Processors", deserialize_with = "de::lenient")]
    pub processors: Option<Link>,
    /// `Storage`.
    #[serde(rename = "Storage", deserialize_with = "de::lenient")]
    pub storage: Option<Link>,
    /// `SimpleStorage`.
    #[serde(rename = "SimpleStorage", deserialize_with = "de::lenient")]
    pub simple_storage: Option<Link>,
    /// `EthernetInterfaces`.
    #[serde(rename = "EthernetInterfaces", deserialize_with = "de::lenient")]
    pub ethernet_interfaces: Option<Link>,
    /// `VirtualMedia` (Redfish 1.11+; older BMCs have it under the Manager).
    #[serde(rename = "VirtualMedia", deserialize_with = "de::lenient")]
    pub virtual_media: Option<Link>,
    /// `Bios`.
    #[serde(rename = "Bios", deserialize_with = "de::lenient")]
    pub bios: Option<Link>,
    /// `SecureBoot`.
    #[serde(rename = "SecureBoot", deserialize_with = "de::lenient")]
    pub secure_boot: Option<Link>,
    /// `Links`.
    #[serde(rename = "Links", deserialize_with = "de::lenient")]
    pub links: Option<SystemLinks>,
    /// `Actions`.
    #[serde(rename = "Actions", deserialize_with = "de::object")]
    pub actions: Map<String, Value>,
    /// `@Redfish.Settings`.
    #[serde(rename = "@Redfish.Settings", deserialize_with = "de::lenient")]
    pub settings: Option<SettingsAnnotation>,
    /// `Oem`.
    #[serde(rename = "Oem")]
    pub oem: Value,
}

impl ComputerSystem {
    /// `#ComputerSystem.Reset`.
    pub fn reset_action(&self) -> Option<Action> {
        find_action(&self.actions, "ComputerSystem.Reset")
    }
    /// The managers of this system.
    pub fn managers(&self) -> &[Link] {
        self.links
            .as_ref()
            .map(|l| l.managed_by.as_slice())
            .unwrap_or_default()
    }
    /// The chassis of this system.
    pub fn chassis(&self) -> &[Link] {
        self.links
            .as_ref()
            .map(|l| l.chassis.as_slice())
            .unwrap_or_default()
    }
}

/// A `Manager` (the BMC itself).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Manager {
    /// `@odata.id`.
    #[serde(rename = "@odata.id", deserialize_with = "de::string")]
    pub odata_id: Option<String>,
    /// `Id`.
    #[serde(rename = "Id", deserialize_with = "de::string")]
    pub id: Option<String>,
    /// `FirmwareVersion`.
    #[serde(rename = "FirmwareVersion", deserialize_with = "de::string")]
    pub firmware_version: Option<String>,
    /// `Model`.
    #[serde(rename = "Model", deserialize_with = "de::string")]
    pub model: Option<String>,
    /// `ManagerType`.
    #[serde(rename = "ManagerType", deserialize_with = "de::string")]
    pub manager_type: Option<String>,
    /// `VirtualMedia`.
    #[serde(rename = "VirtualMedia", deserialize_with = "de::lenient")]
    pub virtual_media: Option<Link>,
    /// `Oem`.
    #[serde(rename = "Oem")]
    pub oem: Value,
}

/// A `VirtualMedia` slot.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct VirtualMedia {
    /// `@odata.id`.
    #[serde(rename = "@odata.id", deserialize_with = "de::string")]
    pub odata_id: Option<String>,
    /// `@odata.etag`.
    #[serde(rename = "@odata.etag", deserialize_with = "de::string")]
    pub etag: Option<String>,
    /// `Id`.
    #[serde(rename = "Id", deserialize_with = "de::string")]
    pub id: Option<String>,
    /// `MediaTypes` (`CD`, `DVD`, `Floppy`, `USBStick`).
    #[serde(rename = "MediaTypes", deserialize_with = "de::strings")]
    pub media_types: Vec<String>,
    /// `Image`.
    #[serde(rename = "Image", deserialize_with = "de::string")]
    pub image: Option<String>,
    /// `Inserted`.
    #[serde(rename = "Inserted", deserialize_with = "de::boolean")]
    pub inserted: Option<bool>,
    /// `WriteProtected`.
    #[serde(rename = "WriteProtected", deserialize_with = "de::boolean")]
    pub write_protected: Option<bool>,
    /// `Actions`.
    #[serde(rename = "Actions", deserialize_with = "de::object")]
    pub actions: Map<String, Value>,
    /// `Oem`.
    #[serde(rename = "Oem")]
    pub oem: Value,
}

impl VirtualMedia {
    /// Whether this slot takes any of `types` (case-insensitive; a slot that
    /// lists no types is taken to accept anything).
    pub fn accepts(&self, types: &[&str]) -> bool {
        self.media_types.is_empty()
            || self
                .media_types
                .iter()
                .any(|m| types.iter().any(|t| m.eq_ignore_ascii_case(t)))
    }
    /// Whether media is in the slot. Some BMCs omit `Inserted`; an image URL
    /// that is not empty or "None" counts then.
    pub fn is_inserted(&self) -> bool {
        match self.inserted {
            Some(b) => b,
            None => self
                .image
                .as_deref()
                .is_some_and(|i| !i.is_empty() && !i.eq_ignore_ascii_case("none")),
        }
    }
    /// `#VirtualMedia.InsertMedia`.
    pub fn insert_action(&self) -> Option<Action> {
        find_action(&self.actions, "VirtualMedia.InsertMedia")
    }
    /// `#VirtualMedia.EjectMedia`.
    pub fn eject_action(&self) -> Option<Action> {
        find_action(&self.actions, "VirtualMedia.EjectMedia")
    }
}

/// An `EthernetInterface`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct EthernetInterface {
    /// `@odata.id`.
    #[serde(rename = "@odata.id", deserialize_with = "de::string")]
    pub odata_id: Option<String>,
    /// `Id`.
    #[serde(rename = "Id", deserialize_with = "de::string")]
    pub id: Option<String>,
    /// `Name`.
    #[serde(rename = "Name", deserialize_with = "de::string")]
    pub name: Option<String>,
    /// `MACAddress`.
    #[serde(rename = "MACAddress", deserialize_with = "de::string")]
    pub mac_address: Option<String>,
    /// `PermanentMACAddress`.
    #[serde(rename = "PermanentMACAddress", deserialize_with = "de::string")]
    pub permanent_mac_address: Option<String>,
    /// `SpeedMbps`.
    #[serde(rename = "SpeedMbps", deserialize_with = "de::uint")]
    pub speed_mbps: Option<u64>,
    /// `LinkStatus`.
    #[serde(rename = "LinkStatus", deserialize_with = "de::string")]
    pub link_status: Option<String>,
    /// `Status`.
    #[serde(rename = "Status", deserialize_with = "de::lenient")]
    pub status: Option<Status>,
}

/// A `Processor`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Processor {
    /// `@odata.id`.
    #[serde(rename = "@odata.id", deserialize_with = "de::string")]
    pub odata_id: Option<String>,
    /// `ProcessorType` (CPU, GPU, ...).
    #[serde(rename = "ProcessorType", deserialize_with = "de::string")]
    pub processor_type: Option<String>,
    /// `ProcessorArchitecture` (x86, ARM, ...).
    #[serde(rename = "ProcessorArchitecture", deserialize_with = "de::string")]
    pub architecture: Option<String>,
    /// `InstructionSet` (x86-64, ARM-A64, ...).
    #[serde(rename = "InstructionSet", deserialize_with = "de::string")]
    pub instruction_set: Option<String>,
    /// `Model`.
    #[serde(rename = "Model", deserialize_with = "de::string")]
    pub model: Option<String>,
    /// `MaxSpeedMHz`.
    #[serde(rename = "MaxSpeedMHz", deserialize_with = "de::uint")]
    pub max_speed_mhz: Option<u64>,
    /// `TotalCores`.
    #[serde(rename = "TotalCores", deserialize_with = "de::uint")]
    pub total_cores: Option<u64>,
    /// `TotalThreads`.
    #[serde(rename = "TotalThreads", deserialize_with = "de::uint")]
    pub total_threads: Option<u64>,
    /// `Status`.
    #[serde(rename = "Status", deserialize_with = "de::lenient")]
    pub status: Option<Status>,
}

/// `SecureBoot`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SecureBoot {
    /// `@odata.etag`.
    #[serde(rename = "@odata.etag", deserialize_with = "de::string")]
    pub etag: Option<String>,
    /// `SecureBootEnable`.
    #[serde(rename = "SecureBootEnable", deserialize_with = "de::boolean")]
    pub enable: Option<bool>,
    /// `SecureBootCurrentBoot` (Enabled/Disabled).
    #[serde(rename = "SecureBootCurrentBoot", deserialize_with = "de::string")]
    pub current_boot: Option<String>,
}

/// A `Chassis`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Chassis {
    /// `@odata.id`.
    #[serde(rename = "@odata.id", deserialize_with = "de::string")]
    pub odata_id: Option<String>,
    /// `@odata.etag`.
    #[serde(rename = "@odata.etag", deserialize_with = "de::string")]
    pub etag: Option<String>,
    /// `Id`.
    #[serde(rename = "Id", deserialize_with = "de::string")]
    pub id: Option<String>,
    /// `IndicatorLED`.
    #[serde(rename = "IndicatorLED", deserialize_with = "de::lenient")]
    pub indicator_led: Option<IndicatorLed>,
    /// `Thermal` (deprecated; `ThermalSubsystem` in newer schemas).
    #[serde(rename = "Thermal", deserialize_with = "de::lenient")]
    pub thermal: Option<Link>,
    /// `Power`.
    #[serde(rename = "Power", deserialize_with = "de::lenient")]
    pub power: Option<Link>,
    /// `NetworkAdapters`.
    #[serde(rename = "NetworkAdapters", deserialize_with = "de::lenient")]
    pub network_adapters: Option<Link>,
}

/// A `NetworkAdapter` (under a chassis).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct NetworkAdapter {
    /// `@odata.id`.
    #[serde(rename = "@odata.id", deserialize_with = "de::string")]
    pub odata_id: Option<String>,
    /// `Id`.
    #[serde(rename = "Id", deserialize_with = "de::string")]
    pub id: Option<String>,
    /// `Manufacturer`.
    #[serde(rename = "Manufacturer", deserialize_with = "de::string")]
    pub manufacturer: Option<String>,
    /// `Model`.
    #[serde(rename = "Model", deserialize_with = "de::string")]
    pub model: Option<String>,
    /// `SerialNumber`.
    #[serde(rename = "SerialNumber", deserialize_with = "de::string")]
    pub serial_number: Option<String>,
    /// `Controllers`.
    #[serde(rename = "Controllers", deserialize_with = "de::list")]
    pub controllers: Vec<NetworkController>,
}

/// One entry of `NetworkAdapter.Controllers`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct NetworkController {
    /// `FirmwarePackageVersion`.
    #[serde(rename = "FirmwarePackageVersion", deserialize_with = "de::string")]
    pub firmware_package_version: Option<String>,
}

/// One reading in `Thermal.Temperatures`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Temperature {
    /// `MemberId`.
    #[serde(rename = "MemberId", deserialize_with = "de::string")]
    pub member_id: Option<String>,
    /// `Name`.
    #[serde(rename = "Name", deserialize_with = "de::string")]
    pub name: Option<String>,
    /// `ReadingCelsius`.
    #[serde(rename = "ReadingCelsius", deserialize_with = "de::float")]
    pub reading_celsius: Option<f64>,
    /// `UpperThresholdCritical`.
    #[serde(rename = "UpperThresholdCritical", deserialize_with = "de::float")]
    pub upper_critical: Option<f64>,
    /// `PhysicalContext`.
    #[serde(rename = "PhysicalContext", deserialize_with = "de::string")]
    pub physical_context: Option<String>,
    /// `Status`.
    #[serde(rename = "Status", deserialize_with = "de::lenient")]
    pub status: Option<Status>,
}

/// One fan in `Thermal.Fans`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Fan {
    /// `MemberId`.
    #[serde(rename = "MemberId", deserialize_with = "de::string")]
    pub member_id: Option<String>,
    /// `Name` (`FanName` in old schemas).
    #[serde(rename = "Name", alias = "FanName", deserialize_with = "de::string")]
    pub name: Option<String>,
    /// `Reading`.
    #[serde(rename = "Reading", deserialize_with = "de::float")]
    pub reading: Option<f64>,
    /// `ReadingUnits`.
    #[serde(rename = "ReadingUnits", deserialize_with = "de::string")]
    pub reading_units: Option<String>,
    /// `Status`.
    #[serde(rename = "Status", deserialize_with = "de::lenient")]
    pub status: Option<Status>,
}

/// `Thermal`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Thermal {
    /// `Temperatures`.
    #[serde(rename = "Temperatures", deserialize_with = "de::list")]
    pub temperatures: Vec<Temperature>,
    /// `Fans`.
    #[serde(rename = "Fans", deserialize_with = "de::list")]
    pub fans: Vec<Fan>,
}

/// One supply in `Power.PowerSupplies`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PowerSupply {
    /// `MemberId`.
    #[serde(rename = "MemberId", deserialize_with = "de::string")]
    pub member_id: Option<String>,
    /// `Name`.
    #[serde(rename = "Name", deserialize_with = "de::string")]
    pub name: Option<String>,
    /// `PowerCapacityWatts`.
    #[serde(rename = "PowerCapacityWatts", deserialize_with = "de::float")]
    pub capacity_watts: Option<f64>,
    /// `LastPowerOutputWatts`.
    #[serde(rename = "LastPowerOutputWatts", deserialize_with = "de::float")]
    pub last_output_watts: Option<f64>,
    /// `LineInputVoltage`.
    #[serde(rename = "LineInputVoltage", deserialize_with = "de::float")]
    pub line_input_voltage: Option<f64>,
    /// `SerialNumber`.
    #[serde(rename = "SerialNumber", deserialize_with = "de::string")]
    pub serial_number: Option<String>,
    /// `Status`.
    #[serde(rename = "Status", deserialize_with = "de::lenient")]
    pub status: Option<Status>,
}

/// `Power`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Power {
    /// `PowerSupplies`.
    #[serde(rename = "PowerSupplies", deserialize_with = "de::list")]
    pub power_supplies: Vec<PowerSupply>,
}
