//! Switch behaviours: what every [`Switch`] driver must do, checked against a real
//! switch (or its simulator). The kit reconfigures only the ports the
//! [`SwitchFixture`] names, and leaves them shut.

use super::{Outcome, Report};
use crate::error::ErrorKind;
use crate::switch::{LagConfig, LagMode, PortConfig, Switch, SwitchExt, VlanMode};

/// What the kit may touch on the switch under test.
#[derive(Clone, Debug)]
pub struct SwitchFixture {
    /// At least three ports the kit may reconfigure freely (nothing else uses them).
    pub ports: Vec<String>,
    /// Three distinct VLAN ids the kit may use.
    pub vlans: [u16; 3],
    /// A name no port or LAG of the switch has.
    pub missing_port: String,
    /// A name for the LAG the kit creates and deletes (must not exist).
    pub lag_name: String,
    /// The password or key the switch was configured with, if any: it must never
    /// appear in `Debug` output or error messages.
    pub secret: Option<String>,
}

impl SwitchFixture {
    /// A fixture over `ports`, with VLANs 101-103 and names derived from the first port.
    pub fn new(ports: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let ports: Vec<String> = ports.into_iter().map(Into::into).collect();
        let base = ports.first().cloned().unwrap_or_default();
        SwitchFixture {
            missing_port: format!("{base}-missing"),
            lag_name: format!("{base}-lag"),
            ports,
            vlans: [101, 102, 103],
            secret: None,
        }
    }

    fn port(&self, i: usize) -> &str {
        assert!(
            self.ports.len() >= 3,
            "the switch kit needs at least three ports in its fixture"
        );
        &self.ports[i]
    }
}

async fn read(sw: &dyn Switch, port: &str) -> PortConfig {
    match sw.get_port(port).await {
        Ok(s) => s.config,
        Err(e) => panic!("get_port({port}) failed: {e}"),
    }
}

async fn set(sw: &dyn Switch, port: &str, c: &PortConfig) {
    if let Err(e) = sw.set_port(port, c).await {
        panic!("set_port({port}, {c}) failed: {e}");
    }
}

/// Setting an access VLAN reads back exactly (enabled, on that VLAN), and moving
/// the port to another VLAN replaces the first.
pub async fn access_vlan_reads_back(sw: &dyn Switch, f: &SwitchFixture) -> Outcome {
    let p = f.port(0);
    for v in [f.vlans[0], f.vlans[1]] {
        let want = PortConfig::access(v);
        set(sw, p, &want).await;
        let got = read(sw, p).await;
        assert_eq!(got, want, "port {p} after setting access VLAN {v}");
        assert!(got.carries(v));
    }
    assert!(
        !read(sw, p).await.carries(f.vlans[0]),
        "port {p} still carries VLAN {} after moving to {}",
        f.vlans[0],
        f.vlans[1]
    );
    set(sw, p, &PortConfig::shut()).await;
    Outcome::Passed
}

/// A trunk (native VLAN plus allowed VLANs, given unsorted with a duplicate) reads
/// back normalized; a trunk without native VLAN too.
pub async fn trunk_reads_back(sw: &dyn Switch, f: &SwitchFixture) -> Outcome {
    if !sw.capabilities().trunk {
        return Outcome::na("the switch declares no trunk support");
    }
    let p = f.port(1);
    let [a, b, c] = f.vlans;
    let want = PortConfig {
        vlan: Some(VlanMode::Trunk {
            native_vlan: Some(a),
            allowed_vlans: vec![c, b, c, a],
        }),
        ..PortConfig::access(a)
    };
    set(sw, p, &want).await;
    assert_eq!(read(sw, p).await, want.normalized(), "trunk on port {p}");
    let tagged = PortConfig::trunk(None, [b, c]);
    set(sw, p, &tagged).await;
    let got = read(sw, p).await;
    assert_eq!(got, tagged.normalized(), "tagged-only trunk on port {p}");
    assert!(
        !got.carries(a),
        "port {p} still carries the old native VLAN {a}"
    );
    set(sw, p, &PortConfig::shut()).await;
    Outcome::Passed
}

/// Setting the configuration a port already has succeeds and changes nothing.
pub async fn set_port_is_idempotent(sw: &dyn Switch, f: &SwitchFixture) -> Outcome {
    let p = f.port(0);
    let want = PortConfig::access(f.vlans[2]);
    for _ in 0..3 {
        set(sw, p, &want).await;
    }
    assert_eq!(
        read(sw, p).await,
        want,
        "port {p} after setting it three times"
    );
    set(sw, p, &PortConfig::shut()).await;
    set(sw, p, &PortConfig::shut()).await;
    assert!(!read(sw, p).await.enabled);
    Outcome::Passed
}

/// `shut` disables a port and keeps its VLAN; `no_shut` enables it again; a shut
/// port carries nothing.
pub async fn shut_and_no_shut(sw: &dyn Switch, f: &SwitchFixture) -> Outcome {
    let p = f.port(2);
    let v = f.vlans[0];
    sw.set_access_vlan(p, v)
        .await
        .unwrap_or_else(|e| panic!("set_access_vlan({p}, {v}): {e}"));
    sw.shut(p)
        .await
        .unwrap_or_else(|e| panic!("shut({p}): {e}"));
    let got = read(sw, p).await;
    assert!(!got.enabled, "port {p} is enabled after shut");
    assert!(!got.carries(v), "a shut port must carry nothing");
    assert_eq!(
        got.vlan,
        Some(VlanMode::access(v)),
        "shut lost the VLAN of {p}"
    );
    sw.no_shut(p)
        .await
        .unwrap_or_else(|e| panic!("no_shut({p}): {e}"));
    assert_eq!(
        read(sw, p).await,
        PortConfig::access(v),
        "port {p} after no shut"
    );
    set(sw, p, &PortConfig::shut()).await;
    Outcome::Passed
}

/// An MTU reads back, and `None` returns to the switch's default.
pub async fn mtu_reads_back(sw: &dyn Switch, f: &SwitchFixture) -> Outcome {
    if !sw.capabilities().mtu {
        return Outcome::na("the switch declares no MTU support");
    }
    let p = f.port(1);
    let want = PortConfig::access(f.vlans[1]).with_mtu(Some(9000));
    set(sw, p, &want).await;
    assert_eq!(read(sw, p).await.mtu, Some(9000), "MTU of port {p}");
    sw.set_mtu(p, None)
        .await
        .unwrap_or_else(|e| panic!("set_mtu({p}, None): {e}"));
    assert_eq!(read(sw, p).await.mtu, None, "MTU of port {p} after reset");
    set(sw, p, &PortConfig::shut()).await;
    Outcome::Passed
}

/// An unknown port is `NotFound` (not retryable) for reads and writes, and its
/// name is in the message.
pub async fn unknown_port_is_not_found(sw: &dyn Switch, f: &SwitchFixture) -> Outcome {
    let m = &f.missing_port;
    let e = sw
        .get_port(m)
        .await
        .expect_err("get_port of a port that does not exist succeeded");
    assert_eq!(e.kind(), ErrorKind::NotFound, "get_port({m}): {e}");
    assert!(!e.is_retryable(), "NotFound must not be retryable: {e}");
    assert!(
        e.message().contains(m.as_str()),
        "the error does not name {m}: {e}"
    );
    let e = sw
        .set_port(m, &PortConfig::access(f.vlans[0]))
        .await
        .expect_err("set_port of a port that does not exist succeeded");
    assert_eq!(e.kind(), ErrorKind::NotFound, "set_port({m}): {e}");
    Outcome::Passed
}

/// A configuration the switch cannot take (VLAN 4095, VLAN 0, MTU 10) is refused
/// with an invalid-parameter error, by `validate_port` without I/O and by
/// `set_port`, and the port keeps what it had.
pub async fn invalid_config_changes_nothing(sw: &dyn Switch, f: &SwitchFixture) -> Outcome {
    let p = f.port(0);
    let before = PortConfig::access(f.vlans[0]);
    set(sw, p, &before).await;
    let bad = [
        PortConfig::access(4095),
        PortConfig::access(0),
        PortConfig::access(f.vlans[1]).with_mtu(Some(10)),
    ];
    for c in &bad {
        let e = sw
            .validate_port(p, c)
            .expect_err("validate_port accepted an invalid configuration");
        assert!(
            matches!(
                e.kind(),
                ErrorKind::InvalidParameter | ErrorKind::Unsupported
            ),
            "validate_port({c:?}) failed with kind {}: {e}",
            e.kind()
        );
        let e = sw
            .set_port(p, c)
            .await
            .expect_err("set_port accepted an invalid configuration");
        assert!(
            matches!(
                e.kind(),
                ErrorKind::InvalidParameter | ErrorKind::Unsupported
            ),
            "set_port({c:?}) failed with kind {}: {e}",
            e.kind()
        );
        assert_eq!(
            read(sw, p).await,
            before,
            "a refused change altered port {p}"
        );
    }
    set(sw, p, &PortConfig::shut()).await;
    Outcome::Passed
}

/// `set_ports` applies every change; one unknown port in the batch fails it with
/// `NotFound`, and (for a switch that is atomic) the others keep their configuration
/// or (for one that is not) at most the ports before it changed.
pub async fn set_ports_applies_all(sw: &dyn Switch, f: &SwitchFixture) -> Outcome {
    let changes: Vec<(String, PortConfig)> = (0..3)
        .map(|i| (f.port(i).to_owned(), PortConfig::access(f.vlans[i])))
        .collect();
    sw.set_ports(&changes)
        .await
        .unwrap_or_else(|e| panic!("set_ports failed: {e}"));
    for (p, c) in &changes {
        assert_eq!(&read(sw, p).await, c, "port {p} after set_ports");
    }
    let bad = vec![
        (f.missing_port.clone(), PortConfig::access(f.vlans[0])),
        (f.port(0).to_owned(), PortConfig::access(f.vlans[1])),
    ];
    let e = sw
        .set_ports(&bad)
        .await
        .expect_err("set_ports with an unknown port succeeded");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(
        read(sw, f.port(0)).await,
        changes[0].1,
        "a failed set_ports changed a port listed after the unknown one"
    );
    let off: Vec<(String, PortConfig)> = changes
        .iter()
        .map(|(p, _)| (p.clone(), PortConfig::shut()))
        .collect();
    sw.set_ports(&off)
        .await
        .unwrap_or_else(|e| panic!("set_ports (shut) failed: {e}"));
    Outcome::Passed
}

/// Changes of different ports made at the same time all land.
pub async fn concurrent_changes_all_land(sw: &dyn Switch, f: &SwitchFixture) -> Outcome {
    for round in 0..3 {
        let futs = (0..3).map(|i| {
            let v = f.vlans[(i + round) % 3];
            async move { (i, v, sw.set_port(f.port(i), &PortConfig::access(v)).await) }
        });
        for (i, v, r) in futures::future::join_all(futs).await {
            r.unwrap_or_else(|e| panic!("concurrent set_port({}, {v}): {e}", f.port(i)));
            assert_eq!(
                read(sw, f.port(i)).await,
                PortConfig::access(v),
                "port {} after concurrent changes (round {round})",
                f.port(i)
            );
        }
    }
    for i in 0..3 {
        set(sw, f.port(i), &PortConfig::shut()).await;
    }
    Outcome::Passed
}

/// The fixture's ports are listed.
pub async fn list_ports_has_the_ports(sw: &dyn Switch, f: &SwitchFixture) -> Outcome {
    let all = sw
        .list_ports()
        .await
        .unwrap_or_else(|e| panic!("list_ports failed: {e}"));
    for p in &f.ports {
        assert!(all.contains(p), "list_ports does not list {p}: {all:?}");
    }
    assert!(!all.contains(&f.missing_port));
    Outcome::Passed
}

/// A LAG: created over two ports (which then report it), configured as a port,
/// shrunk to one member (the other comes back standalone and shut), deleted (the
/// member comes back standalone), deleted again without error.
pub async fn lag_lifecycle(sw: &dyn Switch, f: &SwitchFixture) -> Outcome {
    let caps = sw.capabilities();
    if !caps.lag {
        return Outcome::na("the switch declares no LAG support");
    }
    let lag = f.lag_name.as_str();
    let (a, b) = (f.port(0).to_owned(), f.port(1).to_owned());
    let mode = if caps.lacp {
        LagMode::LacpActive
    } else {
        LagMode::Static
    };
    assert_eq!(
        sw.get_lag(lag)
            .await
            .unwrap_or_else(|e| panic!("get_lag({lag}): {e}")),
        None,
        "the fixture's LAG {lag} exists before the test"
    );
    let want = LagConfig::new(mode, [b.clone(), a.clone()]);
    for _ in 0..2 {
        sw.set_lag(lag, &want)
            .await
            .unwrap_or_else(|e| panic!("set_lag({lag}, {want:?}): {e}"));
    }
    assert_eq!(
        sw.get_lag(lag).await.ok().flatten(),
        Some(want.clone()),
        "LAG {lag}"
    );
    for m in [&a, &b] {
        let st = sw
            .get_port(m)
            .await
            .unwrap_or_else(|e| panic!("get_port({m}) of a LAG member: {e}"));
        assert_eq!(
            st.lag.as_deref(),
            Some(lag),
            "member {m} does not report LAG {lag}"
        );
    }
    let on = PortConfig::access(f.vlans[2]);
    set(sw, lag, &on).await;
    assert_eq!(read(sw, lag).await, on, "LAG {lag} configured as a port");
    sw.set_lag_members(lag, std::slice::from_ref(&a))
        .await
        .unwrap_or_else(|e| panic!("set_lag_members({lag}, [{a}]): {e}"));
    assert_eq!(
        sw.get_lag(lag).await.ok().flatten().map(|l| l.members),
        Some(vec![a.clone()])
    );
    assert_eq!(
        read(sw, lag).await,
        on,
        "changing members lost the LAG's configuration"
    );
    let left = sw
        .get_port(&b)
        .await
        .unwrap_or_else(|e| panic!("get_port({b}) after it left the LAG: {e}"));
    assert_eq!(left.lag, None, "{b} still reports a LAG after leaving it");
    assert!(
        !left.config.enabled,
        "{b} must come back shut after leaving the LAG"
    );
    sw.delete_lag(lag)
        .await
        .unwrap_or_else(|e| panic!("delete_lag({lag}): {e}"));
    assert_eq!(
        sw.get_lag(lag).await.ok().flatten(),
        None,
        "LAG {lag} after delete"
    );
    let back = sw
        .get_port(&a)
        .await
        .unwrap_or_else(|e| panic!("get_port({a}) after the LAG was deleted: {e}"));
    assert_eq!(back.lag, None);
    sw.delete_lag(lag)
        .await
        .unwrap_or_else(|e| panic!("deleting a LAG that does not exist failed: {e}"));
    // the members are usable standalone again
    set(sw, &a, &PortConfig::access(f.vlans[0])).await;
    assert_eq!(read(sw, &a).await, PortConfig::access(f.vlans[0]));
    set(sw, &a, &PortConfig::shut()).await;
    set(sw, &b, &PortConfig::shut()).await;
    Outcome::Passed
}

/// The switch's secret appears neither in its `Debug` output nor in an error.
pub async fn secrets_never_print(sw: &dyn Switch, f: &SwitchFixture) -> Outcome {
    let Some(secret) = f.secret.as_deref().filter(|s| !s.is_empty()) else {
        return Outcome::na("the fixture names no secret");
    };
    let dbg = format!("{sw:?}");
    assert!(
        !dbg.contains(secret),
        "the switch's Debug output shows its secret"
    );
    if let Err(e) = sw.get_port(&f.missing_port).await {
        assert!(
            !e.to_string().contains(secret),
            "an error shows the secret: {e}"
        );
        assert!(
            !format!("{e:?}").contains(secret),
            "an error's Debug shows the secret"
        );
    }
    Outcome::Passed
}

/// Every switch behaviour, in order.
pub async fn run_switch_suite(sw: &dyn Switch, f: &SwitchFixture) -> Report {
    let mut r = Report::default();
    r.add(
        "access_vlan_reads_back",
        access_vlan_reads_back(sw, f).await,
    );
    r.add("trunk_reads_back", trunk_reads_back(sw, f).await);
    r.add(
        "set_port_is_idempotent",
        set_port_is_idempotent(sw, f).await,
    );
    r.add("shut_and_no_shut", shut_and_no_shut(sw, f).await);
    r.add("mtu_reads_back", mtu_reads_back(sw, f).await);
    r.add(
        "unknown_port_is_not_found",
        unknown_port_is_not_found(sw, f).await,
    );
    r.add(
        "invalid_config_changes_nothing",
        invalid_config_changes_nothing(sw, f).await,
    );
    r.add("set_ports_applies_all", set_ports_applies_all(sw, f).await);
    r.add(
        "concurrent_changes_all_land",
        concurrent_changes_all_land(sw, f).await,
    );
    r.add(
        "list_ports_has_the_ports",
        list_ports_has_the_ports(sw, f).await,
    );
    r.add("lag_lifecycle", lag_lifecycle(sw, f).await);
    r.add("secrets_never_print", secrets_never_print(sw, f).await);
    r
}
