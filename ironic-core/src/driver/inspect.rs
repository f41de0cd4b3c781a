use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{BaseInterface, Task};
use crate::error::DriverError;
use crate::mac::MacAddress;
use crate::model::JsonMap;

/// A NIC found by inspection; the conductor creates a port for each new MAC.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DiscoveredPort {
    /// MAC address.
    pub address: MacAddress,
    /// Whether the node boots from it.
    pub pxe_enabled: bool,
    /// Switch connection from LLDP, if known.
    #[serde(default)]
    pub local_link_connection: JsonMap,
    /// Physical network, if inspection could tell (e.g. from the NIC's address).
    #[serde(default)]
    pub physical_network: Option<String>,
}

impl DiscoveredPort {
    /// A NIC with its MAC address, whether the node boots from it, and no wiring.
    pub fn new(address: MacAddress, pxe_enabled: bool) -> Self {
        DiscoveredPort {
            address,
            pxe_enabled,
            local_link_connection: JsonMap::new(),
            physical_network: None,
        }
    }
}

/// What inspection found: properties to merge into the node and NICs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InspectionData {
    /// Merged into `node.properties` (`cpus`, `memory_mb`, `local_gb`, `cpu_arch`, ...).
    pub properties: JsonMap,
    /// NICs; a port is created for each MAC not yet known.
    pub ports: Vec<DiscoveredPort>,
    /// The boot mode found, stored in `node.boot_mode`.
    pub boot_mode: Option<String>,
    /// The full inventory, kept for `GET /v1/nodes/{id}/inventory`.
    pub inventory: Option<serde_json::Value>,
}

/// What `inspect_hardware` led to.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum InspectOutcome {
    /// Out-of-band inspection finished.
    Done(InspectionData),
    /// In-band inspection started; data arrives later through `continue_inspection`.
    Wait,
}

/// Hardware inspection (Ironic's `InspectInterface`, optional).
#[async_trait]
pub trait InspectInterface: BaseInterface {
    /// Inspect the node.
    async fn inspect_hardware(&self, task: &mut Task) -> Result<InspectOutcome, DriverError>;

    /// In-band data arrived (`POST /v1/continue_inspection`).
    async fn continue_inspection(
        &self,
        task: &mut Task,
        inventory: &serde_json::Value,
    ) -> Result<InspectionData, DriverError> {
        let _ = (task, inventory);
        Err(DriverError::unsupported("continue_inspection"))
    }

    /// Abort asynchronous inspection.
    async fn abort(&self, task: &mut Task) -> Result<(), DriverError> {
        let _ = task;
        Err(DriverError::unsupported("inspection abort"))
    }
}
