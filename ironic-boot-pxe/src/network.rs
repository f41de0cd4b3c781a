//! The DHCP-providing network interface: Ironic's `flat` network, with this
//! crate's [`DhcpServer`](crate::DhcpServer) as its DHCP provider.

use std::sync::Arc;

use async_trait::async_trait;
use ironic_core::driver::noop::{attach_vif_to_port, detach_vif_from_port};
use ironic_core::driver::{BaseInterface, NetworkInterface, NetworkPhase, Task, VifInfo};
use ironic_core::{DriverError, Port};

use crate::config::ProvisioningDhcp;
use crate::dhcp::DhcpMode;
use crate::error::PxeError;

/// `network_interface = "flat"`: every node sits on one provisioning network
/// served by this process's DHCP server, or by an external one
/// ([`DhcpNetwork::external`]: then it only records VIFs, as the external DHCP
/// server already answers the nodes).
///
/// `add_network(phase)` gives each PXE-enabled port of the node an address from
/// the pool (server mode; a ProxyDHCP needs none) and so makes the DHCP server
/// answer it; the boot interface then adds the boot options. `remove_network`
/// deletes the node's reservations: from then on its MACs are unknown and get
/// no answer. VIFs are recorded on ports as the `noop` interface does.
#[derive(Debug, Clone)]
pub struct DhcpNetwork {
    dhcp: Option<ProvisioningDhcp>,
}

impl DhcpNetwork {
    /// The name it is registered under (Ironic's flat network).
    pub const NAME: &'static str = "flat";

    /// The interface over a DHCP server's reservations.
    pub fn new(dhcp: ProvisioningDhcp) -> Self {
        DhcpNetwork { dhcp: Some(dhcp) }
    }

    /// The flat network when DHCP is served by something else (dnsmasq, an ISC
    /// server pointed at the boot files): nothing to reserve.
    pub fn external() -> Self {
        DhcpNetwork { dhcp: None }
    }

    fn ports(task: &Task) -> impl Iterator<Item = &Port> {
        task.ports.iter().filter(|p| p.pxe_enabled)
    }
}

#[async_trait]
impl BaseInterface for DhcpNetwork {
    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        let Some(dhcp) = &self.dhcp else {
            return Ok(());
        };
        let (first, last) = dhcp.pool;
        if dhcp.mode == DhcpMode::Server && u32::from(first) > u32::from(last) {
            return Err(PxeError::Invalid {
                key: "dhcp pool".into(),
                reason: format!("{first} comes after {last}"),
            }
            .into());
        }
        let _ = task;
        Ok(())
    }
}

#[async_trait]
impl NetworkInterface for DhcpNetwork {
    async fn vif_attach(&self, task: &mut Task, vif: &VifInfo) -> Result<Port, DriverError> {
        attach_vif_to_port(task, vif)
    }

    async fn vif_detach(&self, task: &mut Task, vif_id: &str) -> Result<Port, DriverError> {
        detach_vif_from_port(task, vif_id)
    }

    async fn add_network(&self, task: &mut Task, phase: NetworkPhase) -> Result<(), DriverError> {
        let Some(dhcp) = &self.dhcp else {
            return Ok(());
        };
        if dhcp.mode == DhcpMode::Proxy {
            return Ok(());
        }
        let host = task
            .node
            .name
            .clone()
            .unwrap_or_else(|| task.node.uuid.to_string());
        let (first, last) = dhcp.pool;
        for port in Self::ports(task) {
            let ip = dhcp
                .reservations
                .reserve(port.address, first, last, Some(host.clone()))
                .map_err(|reason| PxeError::NoAddress {
                    mac: port.address.to_string(),
                    reason,
                })?;
            tracing::info!(node = %task.node.uuid, mac = %port.address, %ip, ?phase, "DHCP reservation added");
        }
        Ok(())
    }

    async fn remove_network(
        &self,
        task: &mut Task,
        phase: NetworkPhase,
    ) -> Result<(), DriverError> {
        let Some(dhcp) = &self.dhcp else {
            return Ok(());
        };
        for port in &task.ports {
            if dhcp.reservations.remove(&port.address).is_some() {
                tracing::info!(node = %task.node.uuid, mac = %port.address, ?phase, "DHCP reservation removed");
            }
        }
        Ok(())
    }
}

/// Keep the type's Arc-ness obvious to callers building registries.
pub(crate) fn shared(dhcp: Option<ProvisioningDhcp>) -> Arc<DhcpNetwork> {
    Arc::new(DhcpNetwork { dhcp })
}
