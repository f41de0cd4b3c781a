//! Enrolling the rack's servers through the conductor, with the drivers this build has.

use std::time::{Duration, Instant};

use ironic_core::conductor::{Conductor, ProvisionRequest};
use ironic_core::model::{InterfaceType, Node, Port};
use ironic_core::{DriverInfo, Ident, ProvisionState};
use serde_json::json;

use crate::lab::images::{DEPLOY_ISO, DEPLOY_KERNEL, DEPLOY_RAMDISK, FileServer};
use crate::lab::rack::{BmcKind, RackServer};

/// How a server is enrolled: the hardware type and the interfaces chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePlan {
    /// Hardware type.
    pub driver: String,
    /// Boot interface (empty: the hardware type's default).
    pub boot: String,
    /// Deploy interface (empty: default).
    pub deploy: String,
    /// Whether the node's BMC is the simulator (false: fake-hardware stands in).
    pub uses_bmc: bool,
}

fn has(conductor: &Conductor, t: InterfaceType, name: &str) -> bool {
    conductor
        .registry()
        .interface_names(t)
        .iter()
        .any(|n| n == name)
}

fn first_of(conductor: &Conductor, t: InterfaceType, names: &[&str]) -> String {
    names
        .iter()
        .find(|n| has(conductor, t, n))
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Picks the hardware type and interfaces for a server from what is registered:
/// `redfish` (virtual media boot) or `ipmi` (iPXE/PXE boot) with the `direct` deploy;
/// `fake-hardware` when this build lacks one of them.
pub fn plan(conductor: &Conductor, kind: BmcKind) -> NodePlan {
    let registry = conductor.registry();
    let hw = match kind {
        BmcKind::Redfish => "redfish",
        BmcKind::Ipmi => "ipmi",
    };
    let boot = match kind {
        BmcKind::Redfish => first_of(
            conductor,
            InterfaceType::Boot,
            &["redfish-virtual-media", "ipxe", "pxe"],
        ),
        BmcKind::Ipmi => first_of(conductor, InterfaceType::Boot, &["ipxe", "pxe"]),
    };
    let deploy = first_of(conductor, InterfaceType::Deploy, &["direct"]);
    if registry.hardware_type(hw).is_ok() && !boot.is_empty() && !deploy.is_empty() {
        NodePlan {
            driver: hw.to_string(),
            boot,
            deploy,
            uses_bmc: true,
        }
    } else {
        NodePlan {
            driver: "fake-hardware".to_string(),
            boot: first_of(conductor, InterfaceType::Boot, &["fake"]),
            deploy: first_of(conductor, InterfaceType::Deploy, &["fake"]),
            uses_bmc: false,
        }
    }
}

/// Creates the node and its ports (in `enroll`). With `wiring` (one
/// `local_link_connection` per NIC) the node uses the `switch` network interface.
pub async fn create(
    conductor: &Conductor,
    server: &RackServer,
    plan: &NodePlan,
    files: &FileServer,
    wiring: &[ironic_core::model::JsonMap],
) -> ironic_core::Result<Node> {
    let spec = server.server.spec();
    let mut node = Node::new(plan.driver.clone());
    node.name = Some(spec.name.clone());
    let mut info = if plan.uses_bmc {
        server.driver_info()
    } else {
        serde_json::Map::new()
    };
    info.insert("deploy_kernel".into(), json!(files.url(DEPLOY_KERNEL)));
    info.insert("deploy_ramdisk".into(), json!(files.url(DEPLOY_RAMDISK)));
    info.insert("deploy_iso".into(), json!(files.url(DEPLOY_ISO)));
    node.driver_info = DriverInfo::from(info);
    node.interfaces.boot_interface = plan.boot.clone();
    node.interfaces.deploy_interface = plan.deploy.clone();
    node.interfaces.network_interface = if wiring.is_empty() {
        "noop".into()
    } else {
        ironic_core::switch::SwitchNetwork::NAME.into()
    };
    node.resource_class = Some("baremetal".into());
    node.description = Some(format!(
        "ironic lab simulated server ({} BMC at {})",
        match server.kind {
            BmcKind::Redfish => "Redfish",
            BmcKind::Ipmi => "IPMI",
        },
        server.bmc
    ));
    for (k, v) in [
        ("cpus", json!(spec.cpus)),
        ("memory_mb", json!(spec.memory_mib)),
        ("local_gb", json!(spec.disk_size >> 30)),
        ("cpu_arch", json!("x86_64")),
        (
            "root_device",
            json!({"name": spec.disk.display().to_string()}),
        ),
    ] {
        node.properties.insert(k.to_string(), v);
    }
    let node = conductor.create_node(node).await?;
    for (i, mac) in spec.macs.iter().enumerate() {
        let mut port = Port::new(node.uuid, *mac);
        port.pxe_enabled = i == 0;
        if let Some(llc) = wiring.get(i) {
            port.local_link_connection = llc.clone();
        }
        conductor.create_port(port).await?;
    }
    Ok(node)
}

/// Runs `verb` and waits until the node reaches `target` (or fails, or `timeout` passes).
pub async fn drive(
    conductor: &Conductor,
    ident: &Ident,
    verb: &str,
    target: ProvisionState,
    timeout: Duration,
) -> Result<(), String> {
    conductor
        .provision(ident, ProvisionRequest::new(verb))
        .await
        .map_err(|e| format!("{verb}: {e}"))?;
    wait_for(conductor, ident, target, timeout).await
}

/// Waits until a node is in `target`; an error names the state it got stuck in.
pub async fn wait_for(
    conductor: &Conductor,
    ident: &Ident,
    target: ProvisionState,
    timeout: Duration,
) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let node = conductor.get_node(ident).await.map_err(|e| e.to_string())?;
        if node.provision_state == target {
            return Ok(());
        }
        let failed = matches!(
            node.provision_state,
            ProvisionState::CleanFailed
                | ProvisionState::DeployFailed
                | ProvisionState::InspectFailed
                | ProvisionState::Error
        ) || (node.provision_state == ProvisionState::Enroll
            && target != ProvisionState::Enroll
            && node.last_error.is_some());
        if failed || start.elapsed() > timeout {
            return Err(format!(
                "stopped in {}{}",
                node.provision_state,
                node.last_error
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `verb` on the node named `name` through the Ironic API at `api`, which
/// hands it to the conductor that owns the node (several conductors).
pub async fn drive_via_api(api: &str, name: &str, verb: &str) -> Result<(), String> {
    let resp = reqwest::Client::new()
        .put(format!("{api}/v1/nodes/{name}/states/provision"))
        .header("X-OpenStack-Ironic-API-Version", "latest")
        .json(&json!({ "target": verb }))
        .send()
        .await
        .map_err(|e| format!("{verb}: {e}"))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    Err(format!("{verb}: the API answered {status}: {body}"))
}
