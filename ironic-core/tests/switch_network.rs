//! The `switch` network interface through the conductor, on the in-memory fake
//! switch: the VLAN of a node's switch ports follows its state (idle → cleaning →
//! idle → provisioning → tenant → cleaning → idle), VIFs pick free ports by physical
//! network, port groups become LAGs, and a switch failure never leaves a node on a
//! tenant network while the provisioning network is still reachable.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use ironic_core::conductor::Conductor;
use ironic_core::driver::VifInfo;
use ironic_core::fake::{self, FakeConfig};
use ironic_core::model::Portgroup;
use ironic_core::store::{MemoryStore, Store};
use ironic_core::switch::{
    FakeSwitch, FakeSwitchDriver, NetworkDef, Switch, SwitchConfig, SwitchNetwork,
    SwitchNetworkConfig, SwitchRegistry, lag_name,
};
use ironic_core::{ErrorKind, InterfaceRegistry, MacAddress, Node, Port, ProvisionState};
use serde_json::json;

fn net(vlan: u16, physnet: Option<&str>) -> NetworkDef {
    NetworkDef {
        vlan,
        physical_network: physnet.map(str::to_owned),
        mtu: None,
    }
}

struct Lab {
    c: Conductor,
    tor: Arc<FakeSwitch>,
    net: SwitchNetwork,
    fake: ironic_core::fake::FakeControl,
}

async fn lab() -> Lab {
    let drv = FakeSwitchDriver::default();
    let mut switches = SwitchRegistry::new();
    switches.register_driver(Arc::new(drv.clone()));
    let mut sc = SwitchConfig::new("tor-1", "fake", "memory");
    sc.options.insert("ports", "p1,p2,p3,p4,p5,p6");
    switches.add_switch(sc).unwrap();
    // a second switch whose ports are all on physnet2
    let mut sc = SwitchConfig::new("tor-2", "fake", "memory");
    sc.options.insert("ports", "q1,q2");
    sc.physical_network = Some("physnet2".into());
    switches.add_switch(sc).unwrap();
    let cfg = SwitchNetworkConfig {
        networks: BTreeMap::from([
            ("idle".to_owned(), net(5, None)),
            ("prov".to_owned(), net(10, None)),
            ("clean".to_owned(), net(20, None)),
            ("tenant-a".to_owned(), net(100, Some("physnet1"))),
            ("tenant-b".to_owned(), net(200, Some("physnet2"))),
        ]),
        provisioning_network: Some("prov".into()),
        cleaning_network: Some("clean".into()),
        idle_network: Some("idle".into()),
        ..SwitchNetworkConfig::default()
    };
    cfg.validate().unwrap();
    let sn = SwitchNetwork::new(cfg, Arc::new(switches));
    let mut reg = InterfaceRegistry::with_noop();
    let control = fake::register(&mut reg, FakeConfig::default());
    reg.register_network(SwitchNetwork::NAME, Arc::new(sn.clone()));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let c = Conductor::start(store, reg, test_config()).await.unwrap();
    Lab {
        c,
        tor: drv.built("tor-1").unwrap(),
        net: sn,
        fake: control,
    }
}

fn wired(node: &Node, mac: u8, sw_port: &str, physnet: &str) -> Port {
    let addr: MacAddress = format!("52:54:00:13:00:{mac:02x}").parse().unwrap();
    let mut p = Port::new(node.uuid, addr);
    p.local_link_connection = json!({"switch_info": "tor-1", "port_id": sw_port})
        .as_object()
        .unwrap()
        .clone();
    p.physical_network = Some(physnet.to_owned());
    p
}

async fn vlan(tor: &FakeSwitch, port: &str) -> Option<u16> {
    let c = tor.get_port(port).await.unwrap().config;
    if !c.enabled {
        return None;
    }
    match c.vlan {
        Some(ironic_core::switch::VlanMode::Access { vlan }) => Some(vlan),
        other => panic!("unexpected config {other:?}"),
    }
}

/// The VLANs a switch port went through, in order, without repeats.
fn history(tor: &FakeSwitch, port: &str) -> Vec<Option<u16>> {
    let mut out: Vec<Option<u16>> = Vec::new();
    for (p, c) in tor.log() {
        if p != port {
            continue;
        }
        let v = if c.enabled {
            c.vlan.map(|m| m.vlans()[0])
        } else {
            None
        };
        if out.last() != Some(&v) {
            out.push(v);
        }
    }
    out
}

#[tokio::test]
async fn ports_follow_the_node_through_its_lifecycle() {
    let lab = lab().await;
    let c = &lab.c;
    let n = c.create_node(Node::new("fake-hardware")).await.unwrap();
    assert_eq!(n.interfaces.network_interface, "switch");
    let ident = id(&n);
    let p1 = c.create_port(wired(&n, 1, "p1", "physnet1")).await.unwrap();
    let mut second = wired(&n, 2, "p2", "physnet1");
    second.pxe_enabled = false;
    c.create_port(second).await.unwrap();
    // a new port goes where the node's state says: idle
    assert_eq!(vlan(&lab.tor, "p1").await, Some(5));
    make_available(c, &ident).await;
    assert_eq!(history(&lab.tor, "p1"), vec![Some(5), Some(20), Some(5)]);

    // a VIF named after a network takes the PXE port on its physical network
    c.vif_attach(&ident, VifInfo::new("tenant-a"))
        .await
        .unwrap();
    assert_eq!(
        c.vif_list(&ident).await.unwrap(),
        vec!["tenant-a".to_string()]
    );
    let e = c
        .vif_attach(&ident, VifInfo::new("tenant-b"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("physical network"), "{e}");
    let e = c
        .vif_attach(&ident, VifInfo::new("nowhere"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no network named"), "{e}");

    provision(c, &ident, "active").await;
    wait_state(c, &ident, ProvisionState::Active).await;
    assert_eq!(
        vlan(&lab.tor, "p1").await,
        Some(100),
        "the VIF's port is on tenant-a"
    );
    assert_eq!(
        vlan(&lab.tor, "p2").await,
        None,
        "a port without VIF is shut"
    );
    let h = history(&lab.tor, "p1");
    assert_eq!(
        h,
        vec![Some(5), Some(20), Some(5), Some(10), Some(5), Some(100)]
    );

    // network_data for the config drive
    let task = ironic_core::driver::Task::with_ports(
        c.get_node(&ident).await.unwrap(),
        vec![
            c.store()
                .get_port(&ironic_core::Ident::Uuid(p1.uuid.0))
                .await
                .unwrap(),
        ],
    );
    let nd = ironic_core::driver::NetworkInterface::get_node_network_data(&lab.net, &task);
    assert_eq!(nd["links"][0]["type"], "phy");
    assert_eq!(nd["links"][0]["ethernet_mac_address"], "52:54:00:13:00:01");
    assert_eq!(nd["networks"][0]["type"], "ipv4_dhcp");
    assert_eq!(nd["networks"][0]["network_id"], "tenant-a");

    // detaching on an active node takes the port off the tenant network at once
    c.vif_detach(&ident, "tenant-a").await.unwrap();
    assert_eq!(vlan(&lab.tor, "p1").await, None);
    c.vif_attach(&ident, VifInfo::new("tenant-a"))
        .await
        .unwrap();
    assert_eq!(vlan(&lab.tor, "p1").await, Some(100));

    provision(c, &ident, "deleted").await;
    wait_state(c, &ident, ProvisionState::Available).await;
    let h = history(&lab.tor, "p1");
    assert_eq!(&h[h.len() - 3..], &[Some(5), Some(20), Some(5)], "{h:?}");
}

#[tokio::test]
async fn a_switch_failure_never_leaves_tenant_and_provisioning_together() {
    let lab = lab().await;
    let c = &lab.c;
    let n = c.create_node(Node::new("fake-hardware")).await.unwrap();
    let ident = id(&n);
    c.create_port(wired(&n, 3, "p3", "physnet1")).await.unwrap();
    make_available(c, &ident).await;
    c.vif_attach(&ident, VifInfo::new("tenant-a"))
        .await
        .unwrap();
    // 1. taking the node off the provisioning network fails: the deploy fails with
    //    the switch's error and the tenant network is never configured
    lab.tor.fail_vlan(5, ErrorKind::Unreachable);
    provision(c, &ident, "active").await;
    let node = wait_state(c, &ident, ProvisionState::DeployFailed).await;
    let err = node.last_error.unwrap_or_default();
    assert!(err.contains("tor-1") && err.contains("p3"), "{err}");
    assert_eq!(
        vlan(&lab.tor, "p3").await,
        Some(10),
        "still on provisioning only"
    );
    assert!(
        !history(&lab.tor, "p3").contains(&Some(100)),
        "never on the tenant VLAN"
    );
    lab.tor.heal();
    // 2. configuring the tenant network fails: the node is left on the idle network,
    //    off provisioning and off the tenant network
    lab.tor.fail_vlan(100, ErrorKind::Other);
    provision(c, &ident, "active").await;
    let node = wait_state(c, &ident, ProvisionState::DeployFailed).await;
    assert!(node.last_error.unwrap_or_default().contains("tenant"));
    assert_eq!(vlan(&lab.tor, "p3").await, Some(5));
    lab.tor.heal();
    provision(c, &ident, "active").await;
    wait_state(c, &ident, ProvisionState::Active).await;
    assert_eq!(vlan(&lab.tor, "p3").await, Some(100));
}

#[tokio::test]
async fn an_lacp_port_group_becomes_a_lag_and_a_bond() {
    let lab = lab().await;
    let c = &lab.c;
    let n = c.create_node(Node::new("fake-hardware")).await.unwrap();
    let ident = id(&n);
    let mut pg = Portgroup::new(n.uuid);
    pg.name = Some("bond0".into());
    pg.mode = Some("802.3ad".into());
    pg.properties = json!({"miimon": "100", "xmit_hash_policy": "layer3+4"})
        .as_object()
        .unwrap()
        .clone();
    let pg = c.create_portgroup(pg).await.unwrap();
    for (mac, sp) in [(4, "p4"), (5, "p5")] {
        let mut p = wired(&n, mac, sp, "physnet1");
        p.portgroup_uuid = Some(pg.uuid);
        c.create_port(p).await.unwrap();
    }
    let lag = lag_name(&pg);
    let l = lab
        .tor
        .get_lag(&lag)
        .await
        .unwrap()
        .expect("the LAG exists");
    assert_eq!(l.members, vec!["p4", "p5"]);
    assert_eq!(l.mode, ironic_core::switch::LagMode::LacpActive);
    make_available(c, &ident).await;
    c.vif_attach(&ident, VifInfo::new("tenant-a"))
        .await
        .unwrap();
    let got = c
        .store()
        .get_portgroup(&ironic_core::Ident::Uuid(pg.uuid.0))
        .await
        .unwrap();
    assert_eq!(got.internal_info["tenant_vif_port_id"], "tenant-a");
    provision(c, &ident, "active").await;
    wait_state(c, &ident, ProvisionState::Active).await;
    assert_eq!(vlan(&lab.tor, &lag).await, Some(100));
    let node = c.get_node(&ident).await.unwrap();
    let ports = c
        .store()
        .list_ports(&{
            let mut q = ironic_core::store::PortQuery::default();
            q.node = Some(node.uuid);
            q
        })
        .await
        .unwrap();
    let mut task = ironic_core::driver::Task::with_ports(node, ports);
    task.portgroups = vec![got];
    let nd = ironic_core::driver::NetworkInterface::get_node_network_data(&lab.net, &task);
    let bond = nd["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["type"] == "bond")
        .expect("a bond link")
        .clone();
    assert_eq!(bond["id"], "bond0");
    assert_eq!(bond["bond_mode"], "802.3ad");
    assert_eq!(bond["bond_miimon"], "100");
    assert_eq!(bond["bond_xmit_hash_policy"], "layer3+4");
    assert_eq!(bond["bond_links"].as_array().unwrap().len(), 2);
    assert_eq!(nd["networks"][0]["link"], "bond0");
}

#[tokio::test]
async fn unwired_ports_and_unknown_networks_are_refused_clearly() {
    let lab = lab().await;
    let c = &lab.c;
    let n = c.create_node(Node::new("fake-hardware")).await.unwrap();
    let ident = id(&n);
    c.create_port(Port::new(n.uuid, "52:54:00:13:00:09".parse().unwrap()))
        .await
        .unwrap();
    provision(c, &ident, "manage").await;
    wait_state(c, &ident, ProvisionState::Manageable).await;
    provision(c, &ident, "provide").await;
    let node = wait_state(c, &ident, ProvisionState::CleanFailed).await;
    let e = node.last_error.unwrap_or_default();
    assert!(e.contains("local_link_connection"), "{e}");
    let cfg = SwitchNetworkConfig {
        provisioning_network: Some("nope".into()),
        ..SwitchNetworkConfig::default()
    };
    let e = cfg.validate().unwrap_err();
    assert!(
        e.message().contains("provisioning_network") && e.message().contains("nope"),
        "{e}"
    );
}

#[tokio::test]
async fn a_port_without_physical_network_takes_its_switchs() {
    let lab = lab().await;
    lab.fake
        .set_deploy_mode(ironic_core::fake::FakeDeployMode::Agent);
    let c = &lab.c;
    let n = c.create_node(Node::new("fake-hardware")).await.unwrap();
    let ident = id(&n);
    let mut p = wired(&n, 0x31, "q1", "unused");
    p.physical_network = None;
    p.local_link_connection = json!({"switch_info": "tor-2", "port_id": "q1"})
        .as_object()
        .unwrap()
        .clone();
    let mac = p.address;
    let p = c.create_port(p).await.unwrap();
    // VIFs: the port counts as on tor-2's physical network
    let e = c
        .vif_attach(&ident, VifInfo::new("tenant-a"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("physnet1"), "{e}");
    c.vif_attach(&ident, VifInfo::new("tenant-b"))
        .await
        .unwrap();
    c.vif_detach(&ident, "tenant-b").await.unwrap();
    // in-band inspection records it on the port
    provision(c, &ident, "manage").await;
    wait_state(c, &ident, ProvisionState::Manageable).await;
    provision(c, &ident, "inspect").await;
    wait_state(c, &ident, ProvisionState::InspectWait).await;
    let inventory = json!({"inventory": {
        "interfaces": [{"name": "eth0", "mac_address": mac.to_string()}],
        "cpu": {"count": 4, "architecture": "x86_64"},
        "memory": {"physical_mb": 4096},
        "boot": {"current_boot_mode": "uefi", "pxe_interface": mac.to_string()}}});
    c.continue_inspection(None, inventory).await.unwrap();
    wait_state(c, &ident, ProvisionState::Manageable).await;
    let p = c
        .store()
        .get_port(&ironic_core::Ident::Uuid(p.uuid.0))
        .await
        .unwrap();
    assert_eq!(p.physical_network.as_deref(), Some("physnet2"));
    // an operator's physical network is kept
    let mut p2 = wired(&n, 0x32, "q2", "physnet9");
    p2.pxe_enabled = false;
    p2.local_link_connection = json!({"switch_info": "tor-2", "port_id": "q2"})
        .as_object()
        .unwrap()
        .clone();
    let p2 = c.create_port(p2).await.unwrap();
    assert_eq!(p2.physical_network.as_deref(), Some("physnet9"));
    assert_eq!(
        ironic_core::driver::NetworkInterface::physical_network_of(&lab.net, &p2).as_deref(),
        Some("physnet9")
    );
}
