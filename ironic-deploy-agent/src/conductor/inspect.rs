//! `AgentInspect`: in-band inspection (Ironic's `inspect_interface = "agent"`).
//!
//! `inspect_hardware` boots the deploy ramdisk with
//! `ipa-inspection-callback-url={api}/v1/continue_inspection` and waits; the agent
//! posts its inventory there, and [`continue_inspection`](InspectInterface::continue_inspection)
//! turns it into node properties and ports the way Ironic's built-in inspection
//! hooks do, then powers the node off.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use ironic_core::driver::{
    BaseInterface, DiscoveredPort, InspectInterface, InspectOutcome, InspectionData, NetworkPhase,
    RamdiskKind, RamdiskParams, Task,
};
use ironic_core::model::JsonMap;
use ironic_core::{DriverError, MacAddress, PowerAction};
use serde_json::{Value, json};

use super::deploy::AgentDeploy;
use crate::agent::hints;
use crate::agent::inventory::BlockDevice;

const GIB: u64 = 1 << 30;

/// Which NICs get a port (Ironic's `[inspector]add_ports`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AddPorts {
    /// Every NIC with a valid MAC address.
    #[default]
    All,
    /// NICs with an IP address (or the PXE one).
    Active,
    /// Only the NIC the node booted from.
    Pxe,
    /// None.
    None,
}

/// Settings of the agent inspect interface.
#[derive(Clone, Debug)]
pub struct AgentInspectConfig {
    /// Which NICs become ports (default all; Ironic's default is `pxe`).
    pub add_ports: AddPorts,
    /// Subtract 1 GiB from `local_gb` for partitioning (`[inspector]disk_partitioning_spacing`, true).
    pub disk_partitioning_spacing: bool,
    /// Power the node off once the data is in (`[inspector]power_off`, true).
    pub power_off: bool,
    /// Timeout for power actions (driver default when `None`).
    pub power_timeout: Option<Duration>,
    /// Extra kernel parameters for the ramdisk.
    pub kernel_params: BTreeMap<String, String>,
    /// `(network, prefix length, physical network)`: a port whose NIC has an
    /// address in the network gets that physical network (Ironic's
    /// `[inspector]physical_network_cidr_map`).
    pub physical_network_cidr_map: Vec<(std::net::IpAddr, u8, String)>,
}

impl Default for AgentInspectConfig {
    fn default() -> Self {
        AgentInspectConfig {
            add_ports: AddPorts::All,
            disk_partitioning_spacing: true,
            power_off: true,
            power_timeout: None,
            kernel_params: BTreeMap::new(),
            physical_network_cidr_map: Vec::new(),
        }
    }
}

/// The `agent` inspect interface.
#[derive(Clone, Debug, Default)]
pub struct AgentInspect {
    cfg: AgentInspectConfig,
}

impl AgentInspect {
    /// Registered name.
    pub const NAME: &'static str = "agent";

    /// With settings.
    pub fn new(cfg: AgentInspectConfig) -> Self {
        AgentInspect { cfg }
    }

    /// Turn what the agent posted (`{"inventory": ..., "root_disk": ...}`, or a bare
    /// inventory) into inspection data for `node_properties` (used for the root
    /// device hints).
    pub fn parse(
        &self,
        node_properties: &JsonMap,
        data: &Value,
    ) -> Result<InspectionData, DriverError> {
        let inv = data.get("inventory").unwrap_or(data);
        if !inv.is_object() {
            return Err(DriverError::invalid(
                "The inspection data has no inventory object",
            ));
        }
        let mut out = InspectionData::default();
        let p = &mut out.properties;
        let cpu = inv.get("cpu");
        if let Some(n) = cpu.and_then(|c| c.get("count")).and_then(Value::as_u64) {
            p.insert("cpus".into(), json!(n));
        }
        if let Some(a) = cpu
            .and_then(|c| c.get("architecture"))
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            p.insert("cpu_arch".into(), json!(a));
        }
        let mem = inv.get("memory");
        let mb = mem
            .and_then(|m| m.get("physical_mb"))
            .and_then(Value::as_u64)
            .filter(|m| *m > 0)
            .or_else(|| {
                mem.and_then(|m| m.get("total"))
                    .and_then(Value::as_u64)
                    .map(|t| t >> 20)
            });
        if let Some(mb) = mb.filter(|m| *m > 0) {
            p.insert("memory_mb".into(), json!(mb));
        }
        let root = root_disk(node_properties, inv, data)?;
        let local_gb = match &root {
            Some(d) => {
                let gb = d.size / GIB;
                if self.cfg.disk_partitioning_spacing {
                    gb.saturating_sub(1)
                } else {
                    gb
                }
            }
            None => 0,
        };
        p.insert("local_gb".into(), json!(local_gb));
        let boot = inv.get("boot");
        out.boot_mode = boot
            .and_then(|b| b.get("current_boot_mode"))
            .and_then(Value::as_str)
            .filter(|m| matches!(*m, "uefi" | "bios"))
            .map(str::to_owned);
        let pxe: Option<MacAddress> = boot
            .and_then(|b| b.get("pxe_interface"))
            .or_else(|| data.get("boot_interface"))
            .and_then(Value::as_str)
            .map(|s| s.strip_prefix("01-").unwrap_or(s).replace('-', ":"))
            .and_then(|s| s.parse().ok());
        out.ports = ports(inv, data, pxe, &self.cfg)?;
        out.inventory = Some(data.clone());
        Ok(out)
    }
}

/// Ironic's root device rule: the disk matching the node's root device hints; or
/// the `root_disk` the agent reported; or the smallest disk of at least 4 GiB.
fn root_disk(
    props: &JsonMap,
    inv: &Value,
    data: &Value,
) -> Result<Option<BlockDevice>, DriverError> {
    let disks: Vec<BlockDevice> = inv
        .get("disks")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|d| match serde_json::from_value::<BlockDevice>(d.clone()) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        tracing::warn!(error = %e, "ignoring a disk the inventory describes badly");
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(h) = props
        .get("root_device")
        .and_then(Value::as_object)
        .filter(|h| !h.is_empty())
    {
        return hints::pick(&disks, Some(h))
            .map(Some)
            .map_err(|e| DriverError::invalid(format!("Root device selection failed: {e}")));
    }
    if let Some(r) = data
        .get("root_disk")
        .filter(|r| !r.is_null())
        .and_then(|r| serde_json::from_value::<BlockDevice>(r.clone()).ok())
    {
        return Ok(Some(r));
    }
    Ok(disks
        .iter()
        .filter(|d| d.size >= 4 * GIB)
        .min_by_key(|d| d.size)
        .cloned())
}

/// Parse `10.0.0.0/24:physnet1` (Ironic's `physical_network_cidr_map` entry).
pub fn parse_cidr_map_entry(s: &str) -> Result<(std::net::IpAddr, u8, String), String> {
    let (cidr, net) = s
        .rsplit_once(':')
        .filter(|(c, n)| c.contains('/') && !n.is_empty())
        .ok_or_else(|| format!("{s:?}: expected CIDR:PHYSNET, e.g. 10.10.10.0/24:physnet_a"))?;
    let (ip, len) = cidr.split_once('/').unwrap_or((cidr, ""));
    let ip: std::net::IpAddr = ip
        .parse()
        .map_err(|_| format!("{s:?}: {ip:?} is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= max)
        .ok_or_else(|| format!("{s:?}: bad prefix length"))?;
    Ok((ip, len, net.to_owned()))
}

fn in_net(ip: std::net::IpAddr, net: std::net::IpAddr, len: u8) -> bool {
    match (ip, net) {
        (std::net::IpAddr::V4(a), std::net::IpAddr::V4(n)) => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & m == u32::from(n) & m
        }
        (std::net::IpAddr::V6(a), std::net::IpAddr::V6(n)) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

fn ports(
    inv: &Value,
    data: &Value,
    pxe: Option<MacAddress>,
    cfg: &AgentInspectConfig,
) -> Result<Vec<DiscoveredPort>, DriverError> {
    let mode = cfg.add_ports;
    let ifaces = inv
        .get("interfaces")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            DriverError::invalid("The inventory has no interfaces: at least one is required")
        })?;
    let mut out: Vec<DiscoveredPort> = Vec::new();
    for i in ifaces {
        let Some(mac) = i
            .get("mac_address")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<MacAddress>().ok())
            .filter(|m| m.to_string() != "00:00:00:00:00:00")
        else {
            continue;
        };
        if out.iter().any(|p| p.address == mac) {
            continue;
        }
        let is_pxe = pxe == Some(mac);
        let has_ip = ["ipv4_address", "ipv6_address"].iter().any(|k| {
            i.get(*k)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        });
        let keep = match mode {
            AddPorts::All => true,
            AddPorts::Active => has_ip || is_pxe,
            AddPorts::Pxe => is_pxe || pxe.is_none(),
            AddPorts::None => false,
        };
        if keep {
            // LLDP: the interface's own `lldp`, else IPA's `lldp_raw` by name
            let name = i.get("name").and_then(Value::as_str).unwrap_or_default();
            let lldp = i
                .get("lldp")
                .filter(|l| l.as_array().is_some_and(|a| !a.is_empty()))
                .or_else(|| data.get("lldp_raw").and_then(|r| r.get(name)));
            let local_link_connection = lldp
                .map(|l| {
                    crate::agent::lldp::local_link_connection(&crate::agent::lldp::from_json(l))
                })
                .unwrap_or_default();
            let physical_network = ["ipv4_address", "ipv6_address"]
                .iter()
                .filter_map(|k| i.get(*k).and_then(Value::as_str))
                .filter_map(|s| s.split('/').next()?.parse::<std::net::IpAddr>().ok())
                .find_map(|ip| {
                    cfg.physical_network_cidr_map
                        .iter()
                        .find(|(n, l, _)| in_net(ip, *n, *l))
                        .map(|(_, _, p)| p.clone())
                });
            // without a known boot NIC every port may PXE boot, as Ironic assumes
            let mut port = DiscoveredPort::new(mac, pxe.is_none_or(|p| p == mac));
            port.local_link_connection = local_link_connection;
            port.physical_network = physical_network;
            out.push(port);
        }
    }
    Ok(out)
}

#[async_trait]
impl BaseInterface for AgentInspect {
    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        if let Some(d) = &task.driver {
            d.boot.validate_inspection(task)?;
        }
        Ok(())
    }
}

#[async_trait]
impl InspectInterface for AgentInspect {
    async fn inspect_hardware(&self, task: &mut Task) -> Result<InspectOutcome, DriverError> {
        let api = task.env.api_url.clone().ok_or_else(|| {
            DriverError::missing(
                "In-band inspection needs the API URL the agent calls back (ConductorConfig.api_url)",
            )
        })?;
        AgentDeploy::wipe_agent(task);
        let mut kp = self.cfg.kernel_params.clone();
        kp.insert("ipa-api-url".into(), api.clone());
        kp.insert(
            "ipa-inspection-callback-url".into(),
            format!("{}/v1/continue_inspection", api.trim_end_matches('/')),
        );
        let params = {
            let mut p = RamdiskParams::new(RamdiskKind::Deploy);
            p.kernel_params = kp;
            p
        };
        let driver = task.driver()?.clone();
        driver
            .network
            .add_network(task, NetworkPhase::Inspection)
            .await?;
        driver.boot.prepare_ramdisk(task, &params).await?;
        task.node_power_action(PowerAction::Reboot, self.cfg.power_timeout)
            .await?;
        Ok(InspectOutcome::Wait)
    }

    async fn continue_inspection(
        &self,
        task: &mut Task,
        inventory: &Value,
    ) -> Result<InspectionData, DriverError> {
        let data = self.parse(&task.node.properties, inventory)?;
        let driver = task.driver()?.clone();
        driver.boot.clean_up_ramdisk(task).await?;
        driver
            .network
            .remove_network(task, NetworkPhase::Inspection)
            .await?;
        if self.cfg.power_off {
            task.node_power_action(PowerAction::PowerOff, self.cfg.power_timeout)
                .await?;
        }
        AgentDeploy::wipe_agent(task);
        Ok(data)
    }

    async fn abort(&self, task: &mut Task) -> Result<(), DriverError> {
        let driver = task.driver()?.clone();
        driver.boot.clean_up_ramdisk(task).await?;
        driver
            .network
            .remove_network(task, NetworkPhase::Inspection)
            .await?;
        task.node_power_action(PowerAction::PowerOff, self.cfg.power_timeout)
            .await?;
        AgentDeploy::wipe_agent(task);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipa_inventory() -> Value {
        // the shape IPA posts (reference/ipa-protocol.md §5)
        json!({
            "inventory": {
                "interfaces": [
                    {"name": "eth0", "mac_address": "52:54:00:12:34:56", "ipv4_address": "10.0.0.5",
                     "has_carrier": true},
                    {"name": "eth1", "mac_address": "52:54:00:AB:CD:EF", "ipv4_address": null},
                    {"name": "lo", "mac_address": "00:00:00:00:00:00"},
                    {"name": "ib0", "mac_address": "not-a-mac"}
                ],
                "cpu": {"model_name": "Xeon", "count": 16, "architecture": "x86_64", "flags": []},
                "disks": [
                    {"name": "/dev/sda", "model": "big", "size": 500107862016u64, "rotational": true,
                     "serial": "S1"},
                    {"name": "/dev/sdb", "model": "small", "size": 2147483648u64, "rotational": false},
                    {"name": "/dev/nvme0n1", "model": "nvme", "size": 128035676160u64,
                     "rotational": false, "serial": "N1"}
                ],
                "memory": {"total": 34359738368u64, "physical_mb": 32768},
                "boot": {"current_boot_mode": "uefi", "pxe_interface": "52:54:00:ab:cd:ef"}
            },
            "boot_interface": "01-52-54-00-ab-cd-ef"
        })
    }

    #[test]
    fn ipa_inventory_becomes_properties_and_ports() {
        let d = AgentInspect::default()
            .parse(&JsonMap::new(), &ipa_inventory())
            .unwrap();
        assert_eq!(d.properties["cpus"], 16);
        assert_eq!(d.properties["cpu_arch"], "x86_64");
        assert_eq!(d.properties["memory_mb"], 32768);
        // smallest disk of at least 4 GiB (nvme, 119 GiB) minus 1
        assert_eq!(d.properties["local_gb"], 118);
        assert_eq!(d.boot_mode.as_deref(), Some("uefi"));
        assert_eq!(d.ports.len(), 2);
        let pxe: Vec<_> = d
            .ports
            .iter()
            .map(|p| (p.address.to_string(), p.pxe_enabled))
            .collect();
        assert_eq!(
            pxe,
            vec![
                ("52:54:00:12:34:56".to_string(), false),
                ("52:54:00:ab:cd:ef".to_string(), true)
            ]
        );
        assert!(d.inventory.is_some());
    }

    #[test]
    fn lldp_and_addresses_wire_the_ports() {
        let mut data = ipa_inventory();
        // eth0: LLDP in the interface (IPA's collect_lldp); eth1: in lldp_raw
        data["inventory"]["interfaces"][0]["lldp"] = json!([
            [1, "04525400aabbcc"],
            [2, "0545746865726e6574312f37"],
            [5, "746f722d37"]
        ]);
        data["lldp_raw"] = json!({"eth1": [[1, "04525400aabbcc"], [2, "05657468332f31"]]});
        let i = AgentInspect::new(AgentInspectConfig {
            physical_network_cidr_map: vec![
                parse_cidr_map_entry("10.0.0.0/24:physnet1").unwrap(),
                parse_cidr_map_entry("2001:db8::/64:physnet2").unwrap(),
            ],
            ..Default::default()
        });
        let d = i.parse(&JsonMap::new(), &data).unwrap();
        let eth0 = &d.ports[0];
        assert_eq!(eth0.local_link_connection["switch_id"], "52:54:00:aa:bb:cc");
        assert_eq!(eth0.local_link_connection["port_id"], "Ethernet1/7");
        assert_eq!(eth0.local_link_connection["switch_info"], "tor-7");
        assert_eq!(eth0.physical_network.as_deref(), Some("physnet1"));
        let eth1 = &d.ports[1];
        assert_eq!(eth1.local_link_connection["port_id"], "eth3/1");
        assert_eq!(eth1.physical_network, None);
        assert!(parse_cidr_map_entry("10.0.0.0:x").is_err());
        assert!(parse_cidr_map_entry("10.0.0.0/33:x").is_err());
    }

    #[test]
    fn root_device_hints_choose_the_disk() {
        let mut props = JsonMap::new();
        props.insert("root_device".into(), json!({"serial": "S1"}));
        let d = AgentInspect::default()
            .parse(&props, &ipa_inventory())
            .unwrap();
        assert_eq!(d.properties["local_gb"], 464);
        props.insert("root_device".into(), json!({"serial": "nope"}));
        let e = AgentInspect::default()
            .parse(&props, &ipa_inventory())
            .unwrap_err();
        assert!(e.to_string().contains("root device"), "{e}");
    }

    #[test]
    fn agent_root_disk_and_port_modes() {
        let mut data = ipa_inventory();
        data["root_disk"] =
            json!({"name": "/dev/sda", "size": 500107862016u64, "rotational": true});
        let i = AgentInspect::new(AgentInspectConfig {
            add_ports: AddPorts::Pxe,
            disk_partitioning_spacing: false,
            ..Default::default()
        });
        let d = i.parse(&JsonMap::new(), &data).unwrap();
        assert_eq!(d.properties["local_gb"], 465);
        assert_eq!(d.ports.len(), 1);
        assert_eq!(d.ports[0].address.to_string(), "52:54:00:ab:cd:ef");
        // no disk at all: local_gb 0; no interfaces: a clear error
        let d = i
            .parse(
                &JsonMap::new(),
                &json!({"interfaces": [{"mac_address": "52:54:00:00:00:01"}]}),
            )
            .unwrap();
        assert_eq!(d.properties["local_gb"], 0);
        assert!(d.ports[0].pxe_enabled);
        let e = i.parse(&JsonMap::new(), &json!({"cpu": {}})).unwrap_err();
        assert!(e.to_string().contains("interfaces"), "{e}");
        assert!(i.parse(&JsonMap::new(), &json!("garbage")).is_err());
    }
}
