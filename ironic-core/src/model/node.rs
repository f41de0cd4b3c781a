use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{JsonMap, Timestamp};
use crate::ids::{AllocationId, ChassisId, NodeId};
use crate::secret::DriverInfo;
use crate::states::{PowerState, ProvisionState, UnknownValue};

/// The kinds of driver interface a node composes, with Ironic's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum InterfaceType {
    /// `bios_interface`.
    Bios,
    /// `boot_interface`.
    Boot,
    /// `console_interface`.
    Console,
    /// `deploy_interface`.
    Deploy,
    /// `firmware_interface`.
    Firmware,
    /// `inspect_interface`.
    Inspect,
    /// `management_interface`.
    Management,
    /// `network_interface`.
    Network,
    /// `power_interface`.
    Power,
    /// `raid_interface`.
    Raid,
    /// `rescue_interface`.
    Rescue,
    /// `storage_interface`.
    Storage,
    /// `vendor_interface`.
    Vendor,
}

impl InterfaceType {
    /// All 13, in Ironic's alphabetical order.
    pub const ALL: &'static [InterfaceType] = &[
        InterfaceType::Bios,
        InterfaceType::Boot,
        InterfaceType::Console,
        InterfaceType::Deploy,
        InterfaceType::Firmware,
        InterfaceType::Inspect,
        InterfaceType::Management,
        InterfaceType::Network,
        InterfaceType::Power,
        InterfaceType::Raid,
        InterfaceType::Rescue,
        InterfaceType::Storage,
        InterfaceType::Vendor,
    ];

    /// `"power"`, `"boot"`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            InterfaceType::Bios => "bios",
            InterfaceType::Boot => "boot",
            InterfaceType::Console => "console",
            InterfaceType::Deploy => "deploy",
            InterfaceType::Firmware => "firmware",
            InterfaceType::Inspect => "inspect",
            InterfaceType::Management => "management",
            InterfaceType::Network => "network",
            InterfaceType::Power => "power",
            InterfaceType::Raid => "raid",
            InterfaceType::Rescue => "rescue",
            InterfaceType::Storage => "storage",
            InterfaceType::Vendor => "vendor",
        }
    }

    /// The node field naming this interface (`"power_interface"`).
    pub fn field(self) -> String {
        format!("{}_interface", self.as_str())
    }

    /// Core interfaces must be implemented by every hardware type.
    pub const fn is_core(self) -> bool {
        matches!(
            self,
            InterfaceType::Boot
                | InterfaceType::Deploy
                | InterfaceType::Management
                | InterfaceType::Network
                | InterfaceType::Power
        )
    }
}

impl fmt::Display for InterfaceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InterfaceType {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InterfaceType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownValue {
                kind: "interface type",
                value: s.to_owned(),
            })
    }
}

/// The implementation name chosen for each interface of a node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
#[non_exhaustive]
pub struct NodeInterfaces {
    pub bios_interface: String,
    pub boot_interface: String,
    pub console_interface: String,
    pub deploy_interface: String,
    pub firmware_interface: String,
    pub inspect_interface: String,
    pub management_interface: String,
    pub network_interface: String,
    pub power_interface: String,
    pub raid_interface: String,
    pub rescue_interface: String,
    pub storage_interface: String,
    pub vendor_interface: String,
}

impl NodeInterfaces {
    /// The implementation name for one interface.
    pub fn get(&self, t: InterfaceType) -> &str {
        match t {
            InterfaceType::Bios => &self.bios_interface,
            InterfaceType::Boot => &self.boot_interface,
            InterfaceType::Console => &self.console_interface,
            InterfaceType::Deploy => &self.deploy_interface,
            InterfaceType::Firmware => &self.firmware_interface,
            InterfaceType::Inspect => &self.inspect_interface,
            InterfaceType::Management => &self.management_interface,
            InterfaceType::Network => &self.network_interface,
            InterfaceType::Power => &self.power_interface,
            InterfaceType::Raid => &self.raid_interface,
            InterfaceType::Rescue => &self.rescue_interface,
            InterfaceType::Storage => &self.storage_interface,
            InterfaceType::Vendor => &self.vendor_interface,
        }
    }

    /// Set the implementation name for one interface.
    pub fn set(&mut self, t: InterfaceType, name: impl Into<String>) {
        let name = name.into();
        match t {
            InterfaceType::Bios => self.bios_interface = name,
            InterfaceType::Boot => self.boot_interface = name,
            InterfaceType::Console => self.console_interface = name,
            InterfaceType::Deploy => self.deploy_interface = name,
            InterfaceType::Firmware => self.firmware_interface = name,
            InterfaceType::Inspect => self.inspect_interface = name,
            InterfaceType::Management => self.management_interface = name,
            InterfaceType::Network => self.network_interface = name,
            InterfaceType::Power => self.power_interface = name,
            InterfaceType::Raid => self.raid_interface = name,
            InterfaceType::Rescue => self.rescue_interface = name,
            InterfaceType::Storage => self.storage_interface = name,
            InterfaceType::Vendor => self.vendor_interface = name,
        }
    }
}

/// Why the conductor put a node into maintenance by itself (`ironic/common/faults.py`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Fault {
    /// Power state could not be read `power_state_sync_max_retries` times.
    #[serde(rename = "power failure")]
    PowerFailure,
    /// Cleaning failed in a way that needs an operator.
    #[serde(rename = "clean failure")]
    CleanFailure,
    /// Aborting a rescue failed.
    #[serde(rename = "rescue abort failure")]
    RescueAbortFailure,
    /// Servicing failed.
    #[serde(rename = "service failure")]
    ServiceFailure,
}

impl Fault {
    /// Ironic's string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Fault::PowerFailure => "power failure",
            Fault::CleanFailure => "clean failure",
            Fault::RescueAbortFailure => "rescue abort failure",
            Fault::ServiceFailure => "service failure",
        }
    }
}

/// A bare-metal node, with the fields of Ironic's node object (API 1.115).
///
/// `Debug` masks every secret-looking value (`driver_info` passwords, the agent
/// token in `driver_internal_info`, `instance_info.rescue_password`, ...).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Node {
    /// The node's UUID.
    pub uuid: NodeId,
    /// Unique logical name.
    pub name: Option<String>,
    /// Hardware type (`ipmi`, `redfish`, `fake-hardware`, ...).
    pub driver: String,
    /// BMC address, credentials and boot images; secrets never print.
    pub driver_info: DriverInfo,
    /// Driver-private state (agent URL and token, cached steps, ...).
    pub driver_internal_info: JsonMap,
    /// Operator metadata.
    pub extra: JsonMap,
    /// Instance data (`image_source`, `root_gb`, `configdrive`, ...).
    pub instance_info: JsonMap,
    /// UUID of the instance deployed here.
    pub instance_uuid: Option<String>,
    /// Instance display name (1.104).
    pub instance_name: Option<String>,
    /// Chassis this node belongs to.
    pub chassis_uuid: Option<ChassisId>,
    /// Hardware properties (`cpus`, `memory_mb`, `local_gb`, `cpu_arch`, `capabilities`, `root_device`, ...).
    pub properties: JsonMap,
    /// Last observed power state.
    pub power_state: Option<PowerState>,
    /// Power state being requested, while a power action runs.
    pub target_power_state: Option<crate::states::PowerAction>,
    /// Provision state.
    pub provision_state: ProvisionState,
    /// The stable state the current transition heads to.
    pub target_provision_state: Option<ProvisionState>,
    /// When `provision_state` last changed (or an agent last heartbeated).
    pub provision_updated_at: Option<Timestamp>,
    /// When `provision_state` last changed. Not in Ironic's API (whose
    /// `provision_updated_at` agent heartbeats also touch): the conductor keeps it
    /// for time-in-state metrics, state budgets and the dashboard. `None` on nodes
    /// saved by a version without it.
    #[serde(default)]
    pub provision_state_since: Option<Timestamp>,
    /// When the current clean, deploy or service step started (not in Ironic's
    /// API; `None` when no step runs).
    #[serde(default)]
    pub step_started_at: Option<Timestamp>,
    /// The last error, for an operator.
    pub last_error: Option<String>,
    /// Maintenance flag.
    pub maintenance: bool,
    /// Why maintenance is set.
    pub maintenance_reason: Option<String>,
    /// Set when the conductor itself put the node into maintenance.
    pub fault: Option<Fault>,
    /// Whether the serial console is enabled.
    pub console_enabled: bool,
    /// Inspection start.
    pub inspection_started_at: Option<Timestamp>,
    /// Inspection end.
    pub inspection_finished_at: Option<Timestamp>,
    /// Host of the conductor holding the exclusive lock, if any.
    pub reservation: Option<String>,
    /// Current RAID configuration.
    pub raid_config: JsonMap,
    /// Requested RAID configuration.
    pub target_raid_config: JsonMap,
    /// Current clean step (`{}` when none).
    pub clean_step: JsonMap,
    /// Current deploy step (`{}` when none).
    pub deploy_step: JsonMap,
    /// Current service step (`{}` when none).
    pub service_step: JsonMap,
    /// Resource class for scheduling.
    pub resource_class: Option<String>,
    /// Traits.
    pub traits: Vec<String>,
    /// Conductor group.
    pub conductor_group: String,
    /// Owner project.
    pub owner: Option<String>,
    /// Lessee project.
    pub lessee: Option<String>,
    /// Protected from undeploy/rebuild.
    pub protected: bool,
    /// Why protected.
    pub protected_reason: Option<String>,
    /// Retired.
    pub retired: bool,
    /// Why retired.
    pub retired_reason: Option<String>,
    /// Per-node override of automated cleaning (`None` = conductor default).
    pub automated_clean: Option<bool>,
    /// Free text.
    pub description: Option<String>,
    /// Allocation holding this node.
    pub allocation_uuid: Option<AllocationId>,
    /// Static network data for the config drive.
    pub network_data: JsonMap,
    /// Current boot mode (`uefi`/`bios`).
    pub boot_mode: Option<String>,
    /// Secure boot state.
    pub secure_boot: Option<bool>,
    /// Shard.
    pub shard: Option<String>,
    /// Parent node (1.83).
    pub parent_node: Option<NodeId>,
    /// Never power the node off (1.95).
    pub disable_power_off: bool,
    /// Health reported by the BMC (1.109).
    pub health: Option<String>,
    /// Conductor affinity (host that last managed the node's boot config).
    pub conductor_affinity: Option<String>,
    /// Interface implementations.
    #[serde(flatten)]
    pub interfaces: NodeInterfaces,
    /// Created.
    pub created_at: Timestamp,
    /// Last updated.
    pub updated_at: Option<Timestamp>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_value(self) {
            Ok(mut v) => {
                crate::secret::mask_value(&mut v);
                write!(f, "Node({v})")
            }
            Err(_) => write!(f, "Node({})", self.uuid),
        }
    }
}

impl Node {
    /// A new node in `enroll` with the given hardware type; interfaces are filled in
    /// by the conductor from the hardware type's defaults.
    pub fn new(driver: impl Into<String>) -> Self {
        Node {
            uuid: NodeId::new(),
            name: None,
            driver: driver.into(),
            driver_info: DriverInfo::default(),
            driver_internal_info: JsonMap::new(),
            extra: JsonMap::new(),
            instance_info: JsonMap::new(),
            instance_uuid: None,
            instance_name: None,
            chassis_uuid: None,
            properties: JsonMap::new(),
            power_state: None,
            target_power_state: None,
            provision_state: ProvisionState::Enroll,
            target_provision_state: None,
            provision_updated_at: None,
            provision_state_since: None,
            step_started_at: None,
            last_error: None,
            maintenance: false,
            maintenance_reason: None,
            fault: None,
            console_enabled: false,
            inspection_started_at: None,
            inspection_finished_at: None,
            reservation: None,
            raid_config: JsonMap::new(),
            target_raid_config: JsonMap::new(),
            clean_step: JsonMap::new(),
            deploy_step: JsonMap::new(),
            service_step: JsonMap::new(),
            resource_class: None,
            traits: Vec::new(),
            conductor_group: String::new(),
            owner: None,
            lessee: None,
            protected: false,
            protected_reason: None,
            retired: false,
            retired_reason: None,
            automated_clean: None,
            description: None,
            allocation_uuid: None,
            network_data: JsonMap::new(),
            boot_mode: None,
            secure_boot: None,
            shard: None,
            parent_node: None,
            disable_power_off: false,
            health: None,
            conductor_affinity: None,
            interfaces: NodeInterfaces::default(),
            created_at: super::now(),
            updated_at: None,
        }
    }

    /// The name if set, else the UUID: how logs and messages name a node.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(n) => format!("{} ({})", self.uuid, n),
            None => self.uuid.to_string(),
        }
    }

    /// A `driver_internal_info` value.
    pub fn internal(&self, key: &str) -> Option<&serde_json::Value> {
        self.driver_internal_info.get(key)
    }

    /// Set a `driver_internal_info` value.
    pub fn set_internal(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        self.driver_internal_info
            .insert(key.to_owned(), value.into());
    }

    /// Remove a `driver_internal_info` value.
    pub fn remove_internal(&mut self, key: &str) -> Option<serde_json::Value> {
        self.driver_internal_info.remove(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_masks_secrets_everywhere() {
        let mut n = Node::new("fake-hardware");
        n.driver_info.insert("ipmi_password", "hunter2");
        n.set_internal("agent_secret_token", "tok-abcdef");
        n.instance_info
            .insert("rescue_password".into(), "r3scue".into());
        n.driver_info.insert("ipmi_address", "10.0.0.9");
        let d = format!("{n:?}");
        assert!(
            !d.contains("hunter2") && !d.contains("tok-abcdef") && !d.contains("r3scue"),
            "{d}"
        );
        assert!(d.contains("10.0.0.9") && d.contains(&n.uuid.to_string()));
    }
}
