use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{BaseInterface, Task};
use crate::error::DriverError;
use crate::model::{JsonMap, Port, Portgroup};

/// A VIF to attach (`POST /v1/nodes/{id}/vifs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VifInfo {
    /// VIF id.
    pub id: String,
    /// Other attributes (`port_uuid`, `portgroup_uuid`).
    #[serde(flatten)]
    pub extra: JsonMap,
}

impl VifInfo {
    /// A VIF with only its id.
    pub fn new(id: impl Into<String>) -> Self {
        VifInfo {
            id: id.into(),
            extra: JsonMap::new(),
        }
    }
}

/// Which network the node is being moved onto.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum NetworkPhase {
    /// Provisioning (deploy).
    Provisioning,
    /// Cleaning.
    Cleaning,
    /// Rescuing.
    Rescuing,
    /// Inspection.
    Inspection,
    /// Servicing.
    Servicing,
}

/// Networking of a node (Ironic's `NetworkInterface`, core).
///
/// `add_network(phase)` is called before the node boots the ramdisk for that phase,
/// `remove_network(phase)` when the ramdisk is done; `configure_tenant_networks`
/// before the instance boots. A network interface that runs DHCP adds the node's
/// boot entries in `add_network` and removes them in `remove_network`.
///
/// # Contract
/// Every method is idempotent and tolerates nothing to undo.
#[async_trait]
pub trait NetworkInterface: BaseInterface {
    /// A port of the node changed.
    async fn port_changed(&self, task: &Task, port: &Port) -> Result<(), DriverError> {
        let _ = (task, port);
        Ok(())
    }

    /// A port group of the node changed.
    async fn portgroup_changed(&self, task: &Task, pg: &Portgroup) -> Result<(), DriverError> {
        let _ = (task, pg);
        Ok(())
    }

    /// Attach a VIF: record it on a free port (`internal_info.tenant_vif_port_id`).
    /// Returns the port that got it.
    async fn vif_attach(&self, task: &mut Task, vif: &VifInfo) -> Result<Port, DriverError>;

    /// Detach a VIF.
    async fn vif_detach(&self, task: &mut Task, vif_id: &str) -> Result<Port, DriverError>;

    /// VIFs attached to the node.
    async fn vif_list(&self, task: &Task) -> Result<Vec<String>, DriverError> {
        Ok(task
            .ports
            .iter()
            .filter_map(|p| p.vif().map(str::to_owned))
            .collect())
    }

    /// Move the node onto the network for `phase`.
    async fn add_network(&self, task: &mut Task, phase: NetworkPhase) -> Result<(), DriverError>;

    /// Take the node off the network for `phase`.
    async fn remove_network(&self, task: &mut Task, phase: NetworkPhase)
    -> Result<(), DriverError>;

    /// Connect the instance's networks.
    async fn configure_tenant_networks(&self, task: &mut Task) -> Result<(), DriverError> {
        let _ = task;
        Ok(())
    }

    /// Disconnect the instance's networks.
    async fn unconfigure_tenant_networks(&self, task: &mut Task) -> Result<(), DriverError> {
        let _ = task;
        Ok(())
    }

    /// Whether network changes need the node powered on.
    fn need_power_on(&self, task: &Task) -> bool {
        let _ = task;
        false
    }

    /// Static network data for the config drive.
    fn get_node_network_data(&self, task: &Task) -> JsonMap {
        task.node.network_data.clone()
    }

    /// The physical network `port` is on as far as this interface knows from its
    /// wiring (`local_link_connection`), e.g. the configured physical network of
    /// the switch it is plugged into. Inspection gives it to ports that have none.
    fn physical_network_of(&self, port: &Port) -> Option<String> {
        let _ = port;
        None
    }
}
