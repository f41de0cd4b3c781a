//! The `ovs` switch driver against a real ovsdb-server + ovs-vswitchd: the whole
//! switch conformance kit, a cross-check with `ovs-vsctl`, and the data plane (two
//! network namespaces on veths reach each other only when on the same VLAN).

mod support;

use ironic_core::ErrorKind;
use ironic_core::switch::{LagConfig, LagMode, PortConfig, SwitchExt};
use ironic_core::testkit::{self, SwitchFixture};
use support::{Bridge, vsctl};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ovs_passes_the_switch_kit() {
    let br = Bridge::new("kit", 3);
    let sw = br.switch();
    let mut f = SwitchFixture::new(br.ports.clone());
    f.lag_name = format!("{}lag", br.name);
    let report = testkit::run_switch_suite(&*sw, &f).await;
    report.print();
    // only the secret check does not apply: OVSDB over unix:/tcp: has no login
    assert_eq!(report.not_applicable().len(), 1, "{report:?}");
    assert_eq!(report.passed(), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_driver_writes_is_what_ovs_vsctl_reads() {
    let br = Bridge::new("xchk", 3);
    let sw = br.switch();
    let (a, b, c) = (&br.ports[0], &br.ports[1], &br.ports[2]);
    sw.set_access_vlan(a, 100).await.unwrap();
    assert_eq!(vsctl(&["get", "Port", a, "tag"]), "100");
    assert_eq!(vsctl(&["get", "Port", a, "vlan_mode"]), "access");
    sw.set_trunk(b, Some(10), &[30, 20]).await.unwrap();
    assert_eq!(vsctl(&["get", "Port", b, "trunks"]), "[10, 20, 30]");
    assert_eq!(vsctl(&["get", "Port", b, "vlan_mode"]), "native-untagged");
    sw.set_mtu(b, Some(9000)).await.unwrap();
    assert_eq!(vsctl(&["get", "Interface", b, "mtu_request"]), "9000");
    sw.shut(a).await.unwrap();
    assert_eq!(vsctl(&["get", "Port", a, "tag"]), "4095");
    assert_eq!(vsctl(&["get", "Port", a, "protected"]), "true");
    // and the other way: a change made with ovs-vsctl reads back
    vsctl(&[
        "set",
        "Port",
        c,
        "tag=321",
        "vlan_mode=access",
        "protected=false",
    ]);
    vsctl(&["remove", "Port", c, "external_ids", "ironic-rs-shut"]);
    assert_eq!(
        sw.get_port(c).await.unwrap().config,
        PortConfig::access(321)
    );
    // a LAG is one Port with two Interfaces
    let lag = format!("{}bond", br.name);
    sw.set_lag(
        &lag,
        &LagConfig::new(LagMode::LacpActive, [a.clone(), b.clone()]),
    )
    .await
    .unwrap();
    assert_eq!(vsctl(&["get", "Port", &lag, "lacp"]), "active");
    assert_eq!(vsctl(&["get", "Port", &lag, "bond_mode"]), "balance-tcp");
    let ports = vsctl(&["list-ports", &br.name]);
    assert!(ports.lines().any(|l| l == lag), "{ports}");
    assert!(!ports.lines().any(|l| l == a), "{ports}");
    assert_eq!(
        sw.get_port(a).await.unwrap().lag.as_deref(),
        Some(lag.as_str())
    );
    sw.delete_lag(&lag).await.unwrap();
    assert!(vsctl(&["list-ports", &br.name]).lines().any(|l| l == a));
    // a port of another bridge is not this switch's
    let other = Bridge::new("oth", 1);
    let e = sw.get_port(&other.ports[0]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    // a bridge that does not exist: NotFound naming it
    let ghost = support::switch_for("ghost", &format!("{}nobr", br.name));
    let e = ghost.get_port(a).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.message().contains("nobr"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlans_isolate_for_real() {
    let br = Bridge::with_namespaces("iso", 3);
    let sw = br.switch();
    let [a, b, c] = [0, 1, 2].map(|i| br.ports[i].clone());
    sw.set_ports(&[
        (a.clone(), PortConfig::access(100)),
        (b.clone(), PortConfig::access(100)),
        (c.clone(), PortConfig::access(200)),
    ])
    .await
    .unwrap();
    // set_ports returned once ovs-vswitchd applied it: no waiting needed
    assert!(br.ping(0, 1), "same VLAN: node 0 must reach node 1");
    assert!(!br.ping(0, 2), "VLAN 100 must not reach VLAN 200");
    sw.set_access_vlan(&c, 100).await.unwrap();
    assert!(br.ping(0, 2), "moved to VLAN 100, node 2 must be reachable");
    sw.set_access_vlan(&b, 200).await.unwrap();
    assert!(!br.ping(0, 1), "moved to VLAN 200, node 1 must be cut off");
    // parked (shut) ports reach nothing, not even each other
    sw.shut(&a).await.unwrap();
    sw.shut(&c).await.unwrap();
    assert!(!br.ping(0, 2), "two shut ports must not reach each other");
    sw.no_shut(&a).await.unwrap();
    sw.no_shut(&c).await.unwrap();
    assert!(br.ping(0, 2), "no shut restores VLAN 100");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_ovsdb_is_a_retryable_error() {
    let sw = support::switch_at("tor", "unix:/nonexistent/db.sock", "br0");
    let e = sw.get_port("x").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    assert!(e.is_retryable());
    assert!(e.message().contains("/nonexistent/db.sock"), "{e}");
}
