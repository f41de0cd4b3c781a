//! `ironic lab --switch ovs`: the rack's top-of-rack switch is a real Open vSwitch
//! bridge. Every NIC of every simulated server becomes a port of the bridge
//! (an internal interface with the NIC's MAC address), the ports are enrolled
//! wired to it (`local_link_connection`), and the nodes use the `switch` network
//! interface with the `ovs` switch driver: `ovs-vsctl get Port PORT tag` follows
//! each node through cleaning, provisioning, its tenant network and back.
//!
//! The simulated servers' agents still reach the service over loopback; the bridge
//! shows (and enforces, for whatever is plugged into its ports) the isolation.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use ironic_core::MacAddress;
use ironic_core::model::JsonMap;
use ironic_core::switch::NetworkDef;
use serde_json::json;

use crate::config::Config;
use crate::network::SwitchSection;

/// VLAN of the provisioning network (nodes being deployed).
pub const PROVISIONING_VLAN: u16 = 10;
/// VLAN of the cleaning network.
pub const CLEANING_VLAN: u16 = 20;
/// The tenant networks nodes can be attached to once deployed, with their VLANs.
pub const TENANT_NETWORKS: [(&str, u16); 2] = [("tenant-a", 101), ("tenant-b", 102)];
/// The tag OVS ports of idle nodes carry: no network, parked (see `ironic-switch-ovs`).
pub const PARKED_VLAN: u16 = 4095;

/// The default OVSDB address.
pub const DEFAULT_OVSDB: &str = "unix:/var/run/openvswitch/db.sock";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// The lab's bridge; removed (with its ports) when dropped.
#[derive(Debug)]
pub struct LabBridge {
    /// The bridge's name (also the switch's name in `[switches]`).
    pub name: String,
    /// The OVSDB address.
    pub db: String,
    /// Port names per server, per NIC (rack order).
    pub ports: Vec<Vec<String>>,
}

fn vsctl(db: &str, args: &[String]) -> Result<String, String> {
    let out = Command::new("ovs-vsctl")
        .arg(format!("--db={db}"))
        .arg("--timeout=30")
        .args(args)
        .output()
        .map_err(|e| {
            format!(
                "running ovs-vsctl: {e} (install Open vSwitch: apt-get install openvswitch-switch, then start it: /usr/share/openvswitch/scripts/ovs-ctl start)"
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "ovs-vsctl {}: {} (is Open vSwitch running at {db}? /usr/share/openvswitch/scripts/ovs-ctl start)",
            args.first().map(String::as_str).unwrap_or(""),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl LabBridge {
    /// Creates a new bridge (netdev datapath: no kernel module needed) with a
    /// name unique to this process.
    pub fn create(db: &str) -> Result<LabBridge, String> {
        let name = format!(
            "il{}{}",
            std::process::id() % 100_000,
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        vsctl(
            db,
            &[
                "--may-exist",
                "add-br",
                &name,
                "--",
                "set",
                "bridge",
                &name,
                "datapath_type=netdev",
            ]
            .map(String::from),
        )?;
        Ok(LabBridge {
            name,
            db: db.to_owned(),
            ports: Vec::new(),
        })
    }

    /// Adds one port per NIC of a server (internal interfaces carrying the NICs'
    /// MAC addresses), in one transaction; returns their names.
    pub fn add_server(&mut self, macs: &[MacAddress]) -> Result<Vec<String>, String> {
        let i = self.ports.len();
        let names: Vec<String> = (0..macs.len())
            .map(|j| format!("{}-{i}-{j}", self.name))
            .collect();
        let mut args: Vec<String> = Vec::new();
        for (p, mac) in names.iter().zip(macs) {
            args.extend(
                [
                    "--",
                    "--may-exist",
                    "add-port",
                    &self.name,
                    p,
                    "--",
                    "set",
                    "interface",
                    p,
                    "type=internal",
                    &format!("mac=\"{mac}\""),
                ]
                .map(String::from),
            );
        }
        if !args.is_empty() {
            vsctl(&self.db, &args)?;
        }
        self.ports.push(names.clone());
        Ok(names)
    }

    /// `local_link_connection` of a server's NIC.
    pub fn wiring(&self, server: usize, nic: usize) -> Option<JsonMap> {
        let port = self.ports.get(server)?.get(nic)?;
        json!({"switch_info": self.name, "port_id": port})
            .as_object()
            .cloned()
    }

    /// The VLAN tag a port carries now (`None`: untagged or unset).
    pub fn tag(&self, port: &str) -> Result<Option<u16>, String> {
        let out = vsctl(&self.db, &["get", "Port", port, "tag"].map(String::from))?;
        Ok(out.parse().ok())
    }

    /// The service's networks and switch for this bridge: provisioning, cleaning,
    /// tenant-a, tenant-b; idle nodes' ports are parked.
    pub fn configure(&self, cfg: &mut Config) {
        let net = |vlan| NetworkDef {
            vlan,
            physical_network: None,
            mtu: None,
        };
        cfg.networks
            .insert("provisioning".into(), net(PROVISIONING_VLAN));
        cfg.networks.insert("cleaning".into(), net(CLEANING_VLAN));
        for (n, v) in TENANT_NETWORKS {
            cfg.networks.insert(n.into(), net(v));
        }
        cfg.switch_network.provisioning_network = Some("provisioning".into());
        cfg.switch_network.cleaning_network = Some("cleaning".into());
        cfg.switches.insert(
            self.name.clone(),
            SwitchSection {
                driver: "ovs".into(),
                address: self.db.clone(),
                options: [("bridge".to_owned(), toml::Value::String(self.name.clone()))]
                    .into_iter()
                    .collect(),
                ..SwitchSection::default()
            },
        );
    }
}

impl Drop for LabBridge {
    fn drop(&mut self) {
        if let Err(e) = vsctl(
            &self.db,
            &["--if-exists", "del-br", &self.name].map(String::from),
        ) {
            tracing::warn!(bridge = %self.name, error = %e, "could not remove the lab's bridge");
        }
    }
}
