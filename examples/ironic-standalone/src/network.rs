//! Tenant network isolation in the `ironic` binary: the `[switch_network]`,
//! `[networks.NAME]` and `[switches.NAME]` sections, and the `switch` network
//! interface built from them.

use std::collections::BTreeMap;
use std::sync::Arc;

use ironic_core::switch::{
    FakeSwitchDriver, SwitchConfig, SwitchNetwork, SwitchNetworkConfig, SwitchRegistry,
};
use ironic_core::{DriverInfo, MacAddress, Secret};
use serde::Deserialize;

/// `[switch_network]`: which configured network each phase of a node's life uses
/// (Ironic's `[neutron] *_network` options).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SwitchNetworkSection {
    /// Network of nodes being deployed (required once networks are configured).
    pub provisioning_network: Option<String>,
    /// Network of nodes being cleaned (default: provisioning).
    pub cleaning_network: Option<String>,
    /// Network of nodes being rescued (default: provisioning).
    pub rescuing_network: Option<String>,
    /// Network of nodes being inspected in band (default: provisioning).
    pub inspection_network: Option<String>,
    /// Network of nodes being serviced (default: cleaning).
    pub servicing_network: Option<String>,
    /// Network of nodes at rest; without one their switch ports are shut.
    pub idle_network: Option<String>,
}

/// `[switches.NAME]`: one switch.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SwitchSection {
    /// The switch driver: `ovs` (Open vSwitch over OVSDB) or `fake` (in memory).
    pub driver: String,
    /// How to reach it, in the driver's syntax (`unix:/var/run/openvswitch/db.sock`).
    pub address: String,
    /// User name, if the driver uses one.
    pub username: Option<String>,
    /// Password, if the driver uses one (never printed).
    pub password: Option<Secret>,
    /// The switch's LLDP chassis id (MAC): ports whose `switch_id` is this are on it.
    pub switch_id: Option<MacAddress>,
    /// The physical network of its ports (given to ports inspection finds on it).
    pub physical_network: Option<String>,
    /// Driver settings (`bridge` for `ovs`, `ports` for `fake`).
    pub options: BTreeMap<String, toml::Value>,
}

impl SwitchSection {
    fn to_config(&self, name: &str) -> SwitchConfig {
        let mut options = DriverInfo::new();
        for (k, v) in &self.options {
            let v = match v {
                toml::Value::String(s) => serde_json::Value::String(s.clone()),
                toml::Value::Integer(i) => serde_json::json!(i),
                toml::Value::Float(f) => serde_json::json!(f),
                toml::Value::Boolean(b) => serde_json::json!(b),
                other => serde_json::Value::String(other.to_string()),
            };
            options.insert(k.clone(), v);
        }
        SwitchConfig {
            name: name.to_owned(),
            driver: self.driver.clone(),
            address: self.address.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            switch_id: self.switch_id,
            physical_network: self.physical_network.clone(),
            options,
        }
    }
}

/// `[inspector]`: in-band inspection by the agent (Ironic's `[inspector]` options
/// that the `agent` inspect interface reads).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct InspectorSection {
    /// Extra kernel parameters for the inspection ramdisk, as a command line
    /// (`"ipa-inspection-dhcp-all-interfaces=1 ipa-debug=1"`; Ironic's
    /// `extra_kernel_params`).
    pub extra_kernel_params: String,
    /// Ask the agent to listen for LLDP while inspecting (`ipa-collect-lldp=1`), so
    /// ports get `local_link_connection` (switch and switch port) from what their
    /// switch announces. Default: on once `[switches]` are configured (Ironic
    /// leaves it to `extra_kernel_params`; without it the `switch` interface would
    /// need every port wired by hand).
    pub collect_lldp: Option<bool>,
    /// `"CIDR:PHYSNET"` entries: a port whose NIC has an address in CIDR gets that
    /// physical network (Ironic's `physical_network_cidr_map`). Ports without one
    /// get the physical network of the switch they turn out to be wired to.
    pub physical_network_cidr_map: Vec<String>,
}

/// The `agent` inspect interface's settings from `[inspector]` (and `[switches]`).
pub fn inspect_config(
    cfg: &crate::config::Config,
) -> Result<ironic_deploy_agent::AgentInspectConfig, String> {
    let s = &cfg.inspector;
    let mut out = ironic_deploy_agent::AgentInspectConfig::default();
    for word in s.extra_kernel_params.split_whitespace() {
        let (k, v) = word.split_once('=').unwrap_or((word, ""));
        if k.is_empty() {
            return Err(format!(
                "[inspector] extra_kernel_params: {word:?} has no parameter name"
            ));
        }
        out.kernel_params.insert(k.to_owned(), v.to_owned());
    }
    if s.collect_lldp.unwrap_or(!cfg.switches.is_empty()) {
        out.kernel_params
            .entry("ipa-collect-lldp".into())
            .or_insert_with(|| "1".into());
    }
    for e in &s.physical_network_cidr_map {
        out.physical_network_cidr_map.push(
            ironic_deploy_agent::conductor::inspect::parse_cidr_map_entry(e)
                .map_err(|m| format!("[inspector] physical_network_cidr_map: {m}"))?,
        );
    }
    Ok(out)
}

/// The switch drivers the binary knows.
pub fn switch_drivers() -> SwitchRegistry {
    let mut r = SwitchRegistry::new();
    ironic_switch_ovs::register(&mut r);
    r.register_driver(Arc::new(FakeSwitchDriver::default()));
    r
}

/// Whether the configuration sets up switch networking at all.
pub fn enabled(cfg: &crate::config::Config) -> bool {
    !cfg.networks.is_empty() || !cfg.switches.is_empty()
}

/// The interface's settings from the config.
pub fn network_config(cfg: &crate::config::Config) -> SwitchNetworkConfig {
    let s = &cfg.switch_network;
    SwitchNetworkConfig {
        networks: cfg.networks.clone(),
        provisioning_network: s.provisioning_network.clone(),
        cleaning_network: s.cleaning_network.clone(),
        rescuing_network: s.rescuing_network.clone(),
        inspection_network: s.inspection_network.clone(),
        servicing_network: s.servicing_network.clone(),
        idle_network: s.idle_network.clone(),
    }
}

/// Build the switches and the `switch` network interface (no I/O); the error says
/// which switch or network is wrong.
pub fn build(cfg: &crate::config::Config) -> Result<SwitchNetwork, String> {
    let nc = network_config(cfg);
    nc.validate()
        .map_err(|e| format!("[switch_network]/[networks]: {e}"))?;
    if nc.provisioning_network.is_none() {
        return Err(
            "[switch_network] provisioning_network must name one of the [networks] once networks or switches are configured"
                .into(),
        );
    }
    let mut reg = switch_drivers();
    for (name, s) in &cfg.switches {
        reg.add_switch(s.to_config(name))
            .map_err(|e| format!("[switches.{name}]: {e}"))?;
    }
    Ok(SwitchNetwork::new(nc, Arc::new(reg)))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const TOML: &str = r#"
[switch_network]
provisioning_network = "prov"
idle_network = "idle"

[networks]
prov = { vlan = 10 }
idle = { vlan = 5 }
tenant-a = { vlan = 100, physical_network = "physnet1", mtu = 9000 }

[switches.tor-1]
driver = "fake"
password = "sw-hunter2"
switch_id = "52:54:00:aa:bb:cc"
options = { ports = "p1,p2" }
"#;

    fn load(s: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ironic.toml");
        std::fs::write(&p, s).unwrap();
        Config::load(Some(&p), []).map_err(|e| e.to_string())
    }

    #[test]
    fn networks_and_switches_load_and_build() {
        let c = load(TOML).unwrap();
        assert!(super::enabled(&c));
        let sn = super::build(&c).unwrap();
        assert_eq!(sn.config().networks["tenant-a"].mtu, Some(9000));
        assert!(sn.switches().switch("tor-1").is_some());
        let dbg = format!("{c:?} {sn:?}");
        assert!(!dbg.contains("sw-hunter2"), "{dbg}");
        let registry = |c: &Config| {
            let boot = crate::boot::plan(c, "127.0.0.1:6385".parse().unwrap()).unwrap();
            crate::server::build_registry(c, &boot).unwrap()
        };
        let t = ironic_core::model::InterfaceType::Network;
        let reg = registry(&c);
        let names = reg.interface_names(t);
        assert!(names.contains(&"switch".to_string()), "{names:?}");
        // nodes get it by default once switch networking is configured
        let mut n = ironic_core::Node::new("fake-hardware");
        reg.resolve_interfaces(&mut n).unwrap();
        assert_eq!(n.interfaces.network_interface, "switch");
        // without networks nothing changes
        let plain = registry(&Config::default());
        assert!(!plain.interface_names(t).contains(&"switch".to_string()));
        let mut n = ironic_core::Node::new("fake-hardware");
        plain.resolve_interfaces(&mut n).unwrap();
        assert_ne!(n.interfaces.network_interface, "switch");
    }

    /// With `[boot.dhcp]` in server mode, the `switch` interface keeps the DHCP
    /// reservations as `flat` does: a node's PXE MAC gets an address while it is on
    /// the provisioning network, and none once it leaves it.
    #[tokio::test]
    async fn the_switch_interface_keeps_the_dhcp_reservations() {
        use ironic_core::driver::{NetworkInterface, NetworkPhase, Task};
        let text = format!(
            "{TOML}\n[boot]\naddress = \"10.9.0.1\"\n[boot.dhcp]\nmode = \"server\"\ninterface = \"eth9\"\npool_start = \"10.9.0.10\"\npool_end = \"10.9.0.20\"\n"
        );
        let c = load(&text).unwrap();
        let boot = crate::boot::plan(&c, "10.9.0.1:6385".parse().unwrap()).unwrap();
        let reg = crate::server::build_registry(&c, &boot).unwrap();
        let mut node = ironic_core::Node::new("fake-hardware");
        node.name = Some("n1".into());
        reg.resolve_interfaces(&mut node).unwrap();
        let driver = reg.driver_for(&node).unwrap();
        let mac: ironic_core::MacAddress = "52:54:00:12:34:56".parse().unwrap();
        let mut port = ironic_core::Port::new(node.uuid, mac);
        port.pxe_enabled = true;
        port.local_link_connection =
            serde_json::from_value(serde_json::json!({"switch_info": "tor-1", "port_id": "p1"}))
                .unwrap();
        let mut task = Task::new(node).with_driver(driver.clone());
        task.ports.push(port);
        let net: &dyn NetworkInterface = &*driver.network;
        net.validate(&task).unwrap();
        assert!(boot.reservations.get(&mac).is_none());
        net.add_network(&mut task, NetworkPhase::Provisioning)
            .await
            .unwrap();
        let r = boot
            .reservations
            .get(&mac)
            .expect("a reservation while provisioning");
        assert!(
            (u32::from(std::net::Ipv4Addr::new(10, 9, 0, 10))
                ..=u32::from(std::net::Ipv4Addr::new(10, 9, 0, 20)))
                .contains(&u32::from(r.ip.unwrap())),
            "{r:?}"
        );
        net.remove_network(&mut task, NetworkPhase::Provisioning)
            .await
            .unwrap();
        assert!(
            boot.reservations.get(&mac).is_none(),
            "the reservation must go with the provisioning network"
        );
        // cleaning too (the ramdisk boots over DHCP there as well)
        net.add_network(&mut task, NetworkPhase::Cleaning)
            .await
            .unwrap();
        assert!(boot.reservations.get(&mac).is_some());
        net.remove_network(&mut task, NetworkPhase::Cleaning)
            .await
            .unwrap();
        assert!(boot.reservations.is_empty());
    }

    #[test]
    fn inspector_settings_reach_the_agent_inspect_interface() {
        // with switches, LLDP is collected unless turned off
        let c = load(&format!(
            "{TOML}\n[inspector]\nextra_kernel_params = \"ipa-debug=1 nomodeset\"\nphysical_network_cidr_map = [\"10.1.0.0/16:physnet1\", \"fd00::/8:physnet6\"]\n"
        ))
        .unwrap();
        let ic = super::inspect_config(&c).unwrap();
        assert_eq!(ic.kernel_params["ipa-collect-lldp"], "1");
        assert_eq!(ic.kernel_params["ipa-debug"], "1");
        assert_eq!(ic.kernel_params["nomodeset"], "");
        assert_eq!(ic.physical_network_cidr_map.len(), 2);
        assert_eq!(ic.physical_network_cidr_map[0].1, 16);
        assert_eq!(ic.physical_network_cidr_map[1].2, "physnet6");
        let c = load(&format!("{TOML}\n[inspector]\ncollect_lldp = false\n")).unwrap();
        let ic = super::inspect_config(&c).unwrap();
        assert!(!ic.kernel_params.contains_key("ipa-collect-lldp"));
        // without switches, as Ironic: only when asked
        let ic = super::inspect_config(&Config::default()).unwrap();
        assert!(ic.kernel_params.is_empty());
        let c = load("[inspector]\nextra_kernel_params = \"ipa-collect-lldp=1\"\n").unwrap();
        assert_eq!(
            super::inspect_config(&c).unwrap().kernel_params["ipa-collect-lldp"],
            "1"
        );
        // a bad entry is refused at load, naming the section
        let e =
            load("[inspector]\nphysical_network_cidr_map = [\"10.1.0.0:physnet1\"]\n").unwrap_err();
        assert!(e.contains("[inspector] physical_network_cidr_map"), "{e}");
    }

    #[test]
    fn mistakes_name_the_section() {
        let e = load(&TOML.replace(
            "provisioning_network = \"prov\"",
            "provisioning_network = \"nope\"",
        ))
        .unwrap_err();
        assert!(
            e.contains("provisioning_network") && e.contains("nope"),
            "{e}"
        );
        let e = load(&TOML.replace("driver = \"fake\"", "driver = \"cisco\"")).unwrap_err();
        assert!(
            e.contains("[switches.tor-1]") && e.contains("known switch drivers"),
            "{e}"
        );
        let e = load(&TOML.replace("vlan = 10", "vlan = 4095")).unwrap_err();
        assert!(e.contains("4095"), "{e}");
        let e = load(&TOML.replace("options = { ports = \"p1,p2\" }", "")).unwrap_err();
        assert!(e.contains("ports"), "{e}");
        let e = load(&TOML.replace(
            "[switch_network]\nprovisioning_network = \"prov\"",
            "[switch_network]",
        ))
        .unwrap_err();
        assert!(e.contains("provisioning_network"), "{e}");
        let e = load(&format!(
            "{TOML}\n[networks.bad]\nvlan = 3\ncolour = \"red\"\n"
        ))
        .unwrap_err();
        assert!(e.contains("colour"), "{e}");
    }
}
