//! BIOS, tasks, the update service and software inventory.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Action, Health, Message, SettingsAnnotation, de, find_action, redfish_enum};

/// `Bios`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Bios {
    /// `@odata.id`.
    #[serde(rename = "@odata.id", deserialize_with = "de::string")]
    pub odata_id: Option<String>,
    /// `@odata.etag`.
    #[serde(rename = "@odata.etag", deserialize_with = "de::string")]
    pub etag: Option<String>,
    /// `AttributeRegistry`.
    #[serde(rename = "AttributeRegistry", deserialize_with = "de::string")]
    pub attribute_registry: Option<String>,
    /// `Attributes`: name → value (strings, numbers, booleans).
    #[serde(rename = "Attributes", deserialize_with = "de::object")]
    pub attributes: Map<String, Value>,
    /// `@Redfish.Settings`: where to PATCH pending attributes.
    #[serde(rename = "@Redfish.Settings", deserialize_with = "de::lenient")]
    pub settings: Option<SettingsAnnotation>,
    /// `Actions`.
    #[serde(rename = "Actions", deserialize_with = "de::object")]
    pub actions: Map<String, Value>,
}

impl Bios {
    /// `#Bios.ResetBios`.
    pub fn reset_action(&self) -> Option<Action> {
        find_action(&self.actions, "Bios.ResetBios")
    }
}

redfish_enum! {
    /// `Task.TaskState`.
    TaskState {
        New = "New", Starting = "Starting", Running = "Running", Suspended = "Suspended",
        Interrupted = "Interrupted", Pending = "Pending", Stopping = "Stopping",
        Completed = "Completed", Killed = "Killed", Exception = "Exception",
        Service = "Service", Cancelling = "Cancelling", Cancelled = "Cancelled",
    }
}

impl TaskState {
    /// Whether the task is over (successfully or not).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Killed | TaskState::Exception | TaskState::Cancelled
        )
    }
    /// Whether it ended badly.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            TaskState::Killed | TaskState::Exception | TaskState::Cancelled
        )
    }
}

/// A `Task`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Task {
    /// `@odata.id`.
    #[serde(rename = "@odata.id", deserialize_with = "de::string")]
    pub odata_id: Option<String>,
    /// `Id`.
    #[serde(rename = "Id", deserialize_with = "de::string")]
    pub id: Option<String>,
    /// `TaskState`.
    #[serde(rename = "TaskState", deserialize_with = "de::lenient")]
    pub task_state: Option<TaskState>,
    /// `TaskStatus`.
    #[serde(rename = "TaskStatus", deserialize_with = "de::lenient")]
    pub task_status: Option<Health>,
    /// `PercentComplete`.
    #[serde(rename = "PercentComplete", deserialize_with = "de::uint")]
    pub percent_complete: Option<u64>,
    /// `TaskMonitor`.
    #[serde(rename = "TaskMonitor", deserialize_with = "de::string")]
    pub task_monitor: Option<String>,
    /// `Messages`.
    #[serde(rename = "Messages", deserialize_with = "de::list")]
    pub messages: Vec<Message>,
}

impl Task {
    /// The messages joined for an error text.
    pub fn message_text(&self) -> String {
        self.messages
            .iter()
            .filter_map(|m| m.message.clone().or_else(|| m.message_id.clone()))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// `UpdateService`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct UpdateService {
    /// `ServiceEnabled`.
    #[serde(rename = "ServiceEnabled", deserialize_with = "de::boolean")]
    pub service_enabled: Option<bool>,
    /// `FirmwareInventory`.
    #[serde(rename = "FirmwareInventory", deserialize_with = "de::lenient")]
    pub firmware_inventory: Option<super::Link>,
    /// `Actions`.
    #[serde(rename = "Actions", deserialize_with = "de::object")]
    pub actions: Map<String, Value>,
}

impl UpdateService {
    /// `#UpdateService.SimpleUpdate`.
    pub fn simple_update_action(&self) -> Option<Action> {
        find_action(&self.actions, "UpdateService.SimpleUpdate")
    }
}

/// A `SoftwareInventory` entry (one firmware component).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SoftwareInventory {
    /// `@odata.id`.
    #[serde(rename = "@odata.id", deserialize_with = "de::string")]
    pub odata_id: Option<String>,
    /// `Id`.
    #[serde(rename = "Id", deserialize_with = "de::string")]
    pub id: Option<String>,
    /// `Name`.
    #[serde(rename = "Name", deserialize_with = "de::string")]
    pub name: Option<String>,
    /// `Version`.
    #[serde(rename = "Version", deserialize_with = "de::string")]
    pub version: Option<String>,
    /// `Updateable`.
    #[serde(rename = "Updateable", deserialize_with = "de::boolean")]
    pub updateable: Option<bool>,
}

/// A `MessageRegistryFile` (`/redfish/v1/Registries/{id}`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RegistryFile {
    /// `Id`.
    #[serde(rename = "Id", deserialize_with = "de::string")]
    pub id: Option<String>,
    /// `Registry`.
    #[serde(rename = "Registry", deserialize_with = "de::string")]
    pub registry: Option<String>,
    /// `Location`.
    #[serde(rename = "Location", deserialize_with = "de::list")]
    pub location: Vec<RegistryLocation>,
}

/// One `Location` of a registry file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RegistryLocation {
    /// `Uri`: where the registry is served.
    #[serde(rename = "Uri", deserialize_with = "de::string")]
    pub uri: Option<String>,
    /// `Language`.
    #[serde(rename = "Language", deserialize_with = "de::string")]
    pub language: Option<String>,
}

/// A BIOS `AttributeRegistry`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AttributeRegistry {
    /// `RegistryEntries`.
    #[serde(rename = "RegistryEntries", deserialize_with = "de::lenient")]
    pub entries: Option<RegistryEntries>,
}

/// `RegistryEntries`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RegistryEntries {
    /// `Attributes`.
    #[serde(rename = "Attributes", deserialize_with = "de::list")]
    pub attributes: Vec<RegistryAttribute>,
}

/// One attribute of a BIOS registry.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RegistryAttribute {
    /// `AttributeName`.
    #[serde(rename = "AttributeName", deserialize_with = "de::string")]
    pub name: Option<String>,
    /// `Type` (Enumeration, String, Integer, Boolean, Password).
    #[serde(rename = "Type", deserialize_with = "de::string")]
    pub kind: Option<String>,
    /// `ReadOnly`.
    #[serde(rename = "ReadOnly", deserialize_with = "de::boolean")]
    pub read_only: Option<bool>,
    /// `ResetRequired`.
    #[serde(rename = "ResetRequired", deserialize_with = "de::boolean")]
    pub reset_required: Option<bool>,
    /// `Value`: the allowed values of an enumeration.
    #[serde(rename = "Value", deserialize_with = "de::list")]
    pub values: Vec<RegistryValue>,
    /// `LowerBound` (integers).
    #[serde(rename = "LowerBound", deserialize_with = "de::int")]
    pub lower_bound: Option<i64>,
    /// `UpperBound` (integers).
    #[serde(rename = "UpperBound", deserialize_with = "de::int")]
    pub upper_bound: Option<i64>,
    /// `MinLength` (strings).
    #[serde(rename = "MinLength", deserialize_with = "de::int")]
    pub min_length: Option<i64>,
    /// `MaxLength` (strings).
    #[serde(rename = "MaxLength", deserialize_with = "de::int")]
    pub max_length: Option<i64>,
    /// `IsSystemUniqueProperty`.
    #[serde(rename = "IsSystemUniqueProperty", deserialize_with = "de::boolean")]
    pub unique: Option<bool>,
}

/// One allowed value.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RegistryValue {
    /// `ValueName`.
    #[serde(rename = "ValueName", deserialize_with = "de::string")]
    pub name: Option<String>,
    /// `ValueDisplayName` (the name Ironic falls back to).
    #[serde(rename = "ValueDisplayName", deserialize_with = "de::string")]
    pub display_name: Option<String>,
}
