use serde::{Deserialize, Serialize};

use super::{JsonMap, Timestamp};
use crate::ids::{NodeId, VolumeConnectorId, VolumeTargetId};

/// How a node connects to remote storage (`/v1/volume/connectors`, 1.32): an
/// initiator identity such as an iSCSI IQN or a Fibre Channel WWPN.
///
/// `(connector_type, connector_id)` is unique across all connectors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VolumeConnector {
    /// UUID.
    pub uuid: VolumeConnectorId,
    /// The node.
    pub node_uuid: NodeId,
    /// `iqn`, `ip`, `mac`, `wwnn`, `wwpn`, `port` or `portgroup` (Ironic's `type`).
    #[serde(rename = "type")]
    pub connector_type: String,
    /// The initiator's identity of that type.
    pub connector_id: String,
    /// Operator metadata.
    pub extra: JsonMap,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Option<Timestamp>,
}

impl VolumeConnector {
    /// The connector types Ironic accepts.
    pub const TYPES: &'static [&'static str] =
        &["iqn", "ip", "mac", "wwnn", "wwpn", "port", "portgroup"];

    /// A new connector of a node.
    pub fn new(
        node_uuid: NodeId,
        connector_type: impl Into<String>,
        connector_id: impl Into<String>,
    ) -> Self {
        VolumeConnector {
            uuid: VolumeConnectorId::new(),
            node_uuid,
            connector_type: connector_type.into(),
            connector_id: connector_id.into(),
            extra: JsonMap::new(),
            created_at: super::now(),
            updated_at: None,
        }
    }
}

/// A remote volume a node boots from or attaches (`/v1/volume/targets`, 1.32).
///
/// `(node_uuid, boot_index)` is unique.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VolumeTarget {
    /// UUID.
    pub uuid: VolumeTargetId,
    /// The node.
    pub node_uuid: NodeId,
    /// The volume's type (`iscsi`, `fibre_channel`, ...).
    pub volume_type: String,
    /// Connection properties (target portal, IQN, LUN, ...).
    pub properties: JsonMap,
    /// Boot order of the volume on its node (0 is the boot volume).
    pub boot_index: u32,
    /// The volume's id in the storage service.
    pub volume_id: String,
    /// Operator metadata.
    pub extra: JsonMap,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Option<Timestamp>,
}

impl VolumeTarget {
    /// A new target of a node.
    pub fn new(
        node_uuid: NodeId,
        volume_type: impl Into<String>,
        volume_id: impl Into<String>,
        boot_index: u32,
    ) -> Self {
        VolumeTarget {
            uuid: VolumeTargetId::new(),
            node_uuid,
            volume_type: volume_type.into(),
            properties: JsonMap::new(),
            boot_index,
            volume_id: volume_id.into(),
            extra: JsonMap::new(),
            created_at: super::now(),
            updated_at: None,
        }
    }
}
