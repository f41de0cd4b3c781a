use serde::{Deserialize, Serialize};

use super::{JsonMap, Timestamp};
use crate::ids::{NodeId, PortId, PortgroupId};
use crate::mac::MacAddress;

/// A NIC of a node (`/v1/ports`). MAC addresses are unique across all ports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Port {
    /// UUID.
    pub uuid: PortId,
    /// Optional unique name (1.88).
    pub name: Option<String>,
    /// MAC address (unique).
    pub address: MacAddress,
    /// The node this port belongs to.
    pub node_uuid: NodeId,
    /// Port group, if any.
    pub portgroup_uuid: Option<PortgroupId>,
    /// Switch connection (`switch_id`, `port_id`, `switch_info`).
    pub local_link_connection: JsonMap,
    /// Whether the node may PXE boot from this NIC.
    pub pxe_enabled: bool,
    /// Physical network name.
    pub physical_network: Option<String>,
    /// Operator metadata.
    pub extra: JsonMap,
    /// Internal data (`tenant_vif_port_id`, ...).
    pub internal_info: JsonMap,
    /// Smart NIC.
    pub is_smartnic: bool,
    /// Free text (1.97).
    pub description: Option<String>,
    /// Vendor (1.100).
    pub vendor: Option<String>,
    /// Category (1.101).
    pub category: Option<String>,
    /// May join a dynamic port group.
    pub available_for_dynamic_portgroup: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Option<Timestamp>,
}

impl Port {
    /// A new port for a node.
    pub fn new(node_uuid: NodeId, address: MacAddress) -> Self {
        Port {
            uuid: PortId::new(),
            name: None,
            address,
            node_uuid,
            portgroup_uuid: None,
            local_link_connection: JsonMap::new(),
            pxe_enabled: true,
            physical_network: None,
            extra: JsonMap::new(),
            internal_info: JsonMap::new(),
            is_smartnic: false,
            description: None,
            vendor: None,
            category: None,
            available_for_dynamic_portgroup: true,
            created_at: super::now(),
            updated_at: None,
        }
    }

    /// The VIF attached to this port, if any (`internal_info.tenant_vif_port_id`).
    pub fn vif(&self) -> Option<&str> {
        self.internal_info
            .get("tenant_vif_port_id")
            .and_then(|v| v.as_str())
    }
}

/// A group of ports bonded together (`/v1/portgroups`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Portgroup {
    /// UUID.
    pub uuid: PortgroupId,
    /// Unique name.
    pub name: Option<String>,
    /// MAC address of the bond (unique if set).
    pub address: Option<MacAddress>,
    /// The node.
    pub node_uuid: NodeId,
    /// Bond mode (`active-backup`, `802.3ad`, ...).
    pub mode: Option<String>,
    /// Bond properties.
    pub properties: JsonMap,
    /// Whether member ports may be used standalone.
    pub standalone_ports_supported: bool,
    /// Physical network (1.101).
    pub physical_network: Option<String>,
    /// Category (1.101).
    pub category: Option<String>,
    /// Created by trait-based networking, not by a user (1.111; read-only in
    /// the API).
    #[serde(default)]
    pub dynamic_portgroup: bool,
    /// Operator metadata.
    pub extra: JsonMap,
    /// Internal data.
    pub internal_info: JsonMap,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Option<Timestamp>,
}

impl Portgroup {
    /// A new port group for a node.
    pub fn new(node_uuid: NodeId) -> Self {
        Portgroup {
            uuid: PortgroupId::new(),
            name: None,
            address: None,
            node_uuid,
            mode: None,
            properties: JsonMap::new(),
            standalone_ports_supported: true,
            physical_network: None,
            category: None,
            dynamic_portgroup: false,
            extra: JsonMap::new(),
            internal_info: JsonMap::new(),
            created_at: super::now(),
            updated_at: None,
        }
    }
}
