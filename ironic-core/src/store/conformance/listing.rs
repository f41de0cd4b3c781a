//! Listing: node filters, sorting and pagination; port listing.

use super::*;

/// Nodes in creation order, as `uuid`s, for messages.
fn ids(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .map(|n| n.name.clone().unwrap_or_else(|| n.uuid.to_string()))
        .collect()
}

/// List with `filter` (scoped to `driver`) and compare with `expected` in creation
/// order; `count_nodes` must agree.
async fn check_filter(
    store: &dyn Store,
    driver: &str,
    what: &str,
    mut filter: NodeFilter,
    expected: &[&Node],
) {
    filter.driver = Some(driver.to_owned());
    let got = store
        .list_nodes(&NodeQuery {
            filter: filter.clone(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("list_nodes ({what}): {e}"));
    let expected: Vec<Node> = expected.iter().map(|n| (*n).clone()).collect();
    assert_eq!(
        ids(&got),
        ids(&expected),
        "filter {what}: wrong nodes (in creation order)"
    );
    assert_eq!(
        got, expected,
        "filter {what}: listed records differ from the stored ones"
    );
    let count = store
        .count_nodes(&filter)
        .await
        .unwrap_or_else(|e| panic!("count_nodes ({what}): {e}"));
    assert_eq!(
        count,
        expected.len(),
        "count_nodes ({what}) must agree with list_nodes"
    );
}

/// Every [`NodeFilter`] field, alone and combined; `count_nodes` agrees with
/// `list_nodes`; results come in creation order.
pub async fn list_filters(store: &dyn Store) {
    let driver = unique("filter-driver");
    let host = unique("filter-host");
    let chassis = Chassis::new();
    store
        .create_chassis(&chassis)
        .await
        .expect("create_chassis");
    let (p1, p2) = (unique("project"), unique("project"));
    let (i1, i2) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );

    let mut n1 = node_with_driver(&driver);
    n1.name = Some(unique("f1"));
    n1.provision_state = ProvisionState::Enroll;
    n1.owner = Some(p1.clone());
    n1.resource_class = Some("rc-a".into());
    n1.conductor_group = "grp1".into();
    n1.instance_uuid = Some(i1.clone());
    n1.description = Some("rack 1 top".into());
    n1.shard = Some("s1".into());
    n1.chassis_uuid = Some(chassis.uuid);
    n1.provision_updated_at = Some(at(100, 0));

    let mut n2 = node_with_driver(&driver);
    n2.name = Some(unique("f2"));
    n2.provision_state = ProvisionState::Manageable;
    n2.maintenance = true;
    n2.maintenance_reason = Some("power".into());
    n2.fault = Some(Fault::PowerFailure);
    n2.owner = Some(p2.clone());
    n2.lessee = Some(p1.clone());
    n2.resource_class = Some("rc-b".into());
    n2.retired = true;
    n2.retired_reason = Some("old".into());
    n2.provision_updated_at = Some(at(300, 0));

    let mut n3 = node_with_driver(&driver);
    n3.name = Some(unique("f3"));
    n3.provision_state = ProvisionState::Available;
    n3.parent_node = Some(n1.uuid);
    n3.shard = Some("s2".into());
    n3.description = Some("rack 2".into());
    n3.provision_updated_at = Some(at(200, 0));

    let mut n4 = node_with_driver(&driver);
    n4.name = Some(unique("f4"));
    n4.provision_state = ProvisionState::Active;
    n4.instance_uuid = Some(i2.clone());
    n4.owner = Some(p1.clone());
    n4.conductor_group = "grp1".into();
    n4.parent_node = Some(n1.uuid);
    n4.fault = Some(Fault::CleanFailure);
    n4.maintenance = true;

    for n in [&n1, &n2, &n3, &n4] {
        store.create_node(n).await.expect("create_node");
    }
    n2 = store
        .reserve_node(n2.uuid, &host)
        .await
        .expect("reserve_node");

    let all = [&n1, &n2, &n3, &n4];
    let f = NodeFilter::default;
    check_filter(store, &driver, "driver", f(), &all).await;
    let other = NodeFilter {
        driver: Some(unique("no-such-driver")),
        ..f()
    };
    let none = store.count_nodes(&other).await.expect("count_nodes");
    assert_eq!(none, 0, "an unknown driver matches nothing");

    let states = |s: &[ProvisionState]| NodeFilter {
        provision_state: Some(s.to_vec()),
        ..f()
    };
    check_filter(
        store,
        &driver,
        "one provision state",
        states(&[ProvisionState::Manageable]),
        &[&n2],
    )
    .await;
    check_filter(
        store,
        &driver,
        "two provision states",
        states(&[ProvisionState::Active, ProvisionState::Enroll]),
        &[&n1, &n4],
    )
    .await;
    check_filter(store, &driver, "no provision state", states(&[]), &[]).await;
    let m = |v| NodeFilter {
        maintenance: Some(v),
        ..f()
    };
    check_filter(store, &driver, "maintenance=true", m(true), &[&n2, &n4]).await;
    check_filter(store, &driver, "maintenance=false", m(false), &[&n1, &n3]).await;
    let a = |v| NodeFilter {
        associated: Some(v),
        ..f()
    };
    check_filter(store, &driver, "associated=true", a(true), &[&n1, &n4]).await;
    check_filter(store, &driver, "associated=false", a(false), &[&n2, &n3]).await;
    let rc = NodeFilter {
        resource_class: Some("rc-a".into()),
        ..f()
    };
    check_filter(store, &driver, "resource_class", rc, &[&n1]).await;
    let g = |v: &str| NodeFilter {
        conductor_group: Some(v.into()),
        ..f()
    };
    check_filter(store, &driver, "conductor_group", g("grp1"), &[&n1, &n4]).await;
    check_filter(store, &driver, "empty conductor_group", g(""), &[&n2, &n3]).await;
    let o = NodeFilter {
        owner: Some(p1.clone()),
        ..f()
    };
    check_filter(store, &driver, "owner", o, &[&n1, &n4]).await;
    let l = NodeFilter {
        lessee: Some(p1.clone()),
        ..f()
    };
    check_filter(store, &driver, "lessee", l, &[&n2]).await;
    let p = NodeFilter {
        project: Some(p1.clone()),
        ..f()
    };
    check_filter(
        store,
        &driver,
        "project (owner or lessee)",
        p,
        &[&n1, &n2, &n4],
    )
    .await;
    let p = NodeFilter {
        project: Some(p2.clone()),
        ..f()
    };
    check_filter(store, &driver, "project (owner only)", p, &[&n2]).await;
    let fault = |v| NodeFilter {
        fault: Some(v),
        ..f()
    };
    check_filter(store, &driver, "fault", fault(Fault::PowerFailure), &[&n2]).await;
    check_filter(
        store,
        &driver,
        "other fault",
        fault(Fault::RescueAbortFailure),
        &[],
    )
    .await;
    let c = NodeFilter {
        chassis_uuid: Some(chassis.uuid),
        ..f()
    };
    check_filter(store, &driver, "chassis_uuid", c, &[&n1]).await;
    let i = NodeFilter {
        instance_uuid: Some(i2.clone()),
        ..f()
    };
    check_filter(store, &driver, "instance_uuid", i, &[&n4]).await;
    let r = |v| NodeFilter {
        retired: Some(v),
        ..f()
    };
    check_filter(store, &driver, "retired=true", r(true), &[&n2]).await;
    check_filter(store, &driver, "retired=false", r(false), &[&n1, &n3, &n4]).await;
    let d = |v: &str| NodeFilter {
        description_contains: Some(v.into()),
        ..f()
    };
    check_filter(
        store,
        &driver,
        "description_contains",
        d("rack"),
        &[&n1, &n3],
    )
    .await;
    check_filter(
        store,
        &driver,
        "description_contains (middle)",
        d("ck 1 t"),
        &[&n1],
    )
    .await;
    let s = |v: &[&str]| NodeFilter {
        shard: Some(v.iter().map(|s| s.to_string()).collect()),
        ..f()
    };
    check_filter(store, &driver, "shard", s(&["s2"]), &[&n3]).await;
    check_filter(
        store,
        &driver,
        "shards",
        s(&["s1", "s2", "s9"]),
        &[&n1, &n3],
    )
    .await;
    let sh = |v| NodeFilter {
        sharded: Some(v),
        ..f()
    };
    check_filter(store, &driver, "sharded=true", sh(true), &[&n1, &n3]).await;
    check_filter(store, &driver, "sharded=false", sh(false), &[&n2, &n4]).await;
    let res = |v| NodeFilter {
        reserved: Some(v),
        ..f()
    };
    check_filter(store, &driver, "reserved=true", res(true), &[&n2]).await;
    check_filter(
        store,
        &driver,
        "reserved=false",
        res(false),
        &[&n1, &n3, &n4],
    )
    .await;
    let rb = NodeFilter {
        reserved_by: Some(host.clone()),
        ..f()
    };
    check_filter(store, &driver, "reserved_by", rb, &[&n2]).await;
    let pn = NodeFilter {
        parent_node: Some(n1.uuid),
        ..f()
    };
    check_filter(store, &driver, "parent_node", pn, &[&n3, &n4]).await;
    let ex = NodeFilter {
        exclude_children: true,
        ..f()
    };
    check_filter(store, &driver, "exclude_children", ex, &[&n1, &n2]).await;
    let before = |s| NodeFilter {
        provision_updated_before: Some(at(s, 0)),
        ..f()
    };
    check_filter(
        store,
        &driver,
        "provision_updated_before",
        before(250),
        &[&n1, &n3],
    )
    .await;
    check_filter(
        store,
        &driver,
        "provision_updated_before (strict)",
        before(100),
        &[],
    )
    .await;

    let combined = NodeFilter {
        maintenance: Some(true),
        owner: Some(p1.clone()),
        associated: Some(true),
        provision_state: Some(vec![ProvisionState::Active, ProvisionState::Manageable]),
        ..f()
    };
    check_filter(store, &driver, "combined", combined, &[&n4]).await;
}

/// One sortable value; `Null` sorts first.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SortValue {
    Null,
    Bool(bool),
    Int(usize),
    Time(Timestamp),
    Text(String),
}

/// Every sort key (the exhaustive match in `sort_value` keeps this complete).
const SORT_KEYS: [NodeSortKey; 14] = [
    NodeSortKey::Id,
    NodeSortKey::Uuid,
    NodeSortKey::Name,
    NodeSortKey::CreatedAt,
    NodeSortKey::UpdatedAt,
    NodeSortKey::ProvisionState,
    NodeSortKey::ProvisionUpdatedAt,
    NodeSortKey::PowerState,
    NodeSortKey::Driver,
    NodeSortKey::Maintenance,
    NodeSortKey::ResourceClass,
    NodeSortKey::ConductorGroup,
    NodeSortKey::Owner,
    NodeSortKey::InstanceUuid,
];

fn sort_value(n: &Node, creation: usize, key: NodeSortKey) -> SortValue {
    let text = |s: Option<&str>| s.map_or(SortValue::Null, |s| SortValue::Text(s.to_owned()));
    let time = |t: Option<Timestamp>| t.map_or(SortValue::Null, SortValue::Time);
    match key {
        NodeSortKey::Id => SortValue::Int(creation),
        NodeSortKey::Uuid => SortValue::Text(n.uuid.to_string()),
        NodeSortKey::Name => text(n.name.as_deref()),
        NodeSortKey::CreatedAt => SortValue::Time(n.created_at),
        NodeSortKey::UpdatedAt => time(n.updated_at),
        NodeSortKey::ProvisionState => SortValue::Text(n.provision_state.as_str().to_owned()),
        NodeSortKey::ProvisionUpdatedAt => time(n.provision_updated_at),
        NodeSortKey::PowerState => text(n.power_state.map(|p| p.as_str())),
        NodeSortKey::Driver => SortValue::Text(n.driver.clone()),
        NodeSortKey::Maintenance => SortValue::Bool(n.maintenance),
        NodeSortKey::ResourceClass => text(n.resource_class.as_deref()),
        NodeSortKey::ConductorGroup => SortValue::Text(n.conductor_group.clone()),
        NodeSortKey::Owner => text(n.owner.as_deref()),
        NodeSortKey::InstanceUuid => text(n.instance_uuid.as_deref()),
    }
}

/// name, state, power, maintenance, resource class, group, owner, created,
/// updated, provision updated (seconds after a fixed instant).
type Spec = (
    &'static str,
    ProvisionState,
    Option<PowerState>,
    bool,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
    i64,
    Option<i64>,
    Option<i64>,
);

/// Every [`NodeSortKey`], ascending and descending: missing values first when
/// ascending (last when descending), ties in creation order (reversed when
/// descending), `limit` honoured, and walking pages with markers yields the same
/// sequence; an unknown marker is `NotFound`.
pub async fn pagination_and_sorting(store: &dyn Store) {
    let driver = unique("sort-driver");
    #[rustfmt::skip]
    let specs: [Spec; 7] = [
        // name, state, power, maintenance, resource class, group, owner, created, updated, provision updated
        ("delta", ProvisionState::Enroll, Some(PowerState::On), false, Some("rc-b"), "g2", Some("o1"), 5, Some(50), Some(7)),
        ("", ProvisionState::Active, None, true, None, "g1", None, 3, None, None),
        ("alpha", ProvisionState::Manageable, Some(PowerState::Off), false, Some("rc-a"), "g2", Some("o2"), 3, Some(10), Some(9)),
        ("charlie", ProvisionState::CleanWait, Some(PowerState::Error), true, Some("rc-b"), "g1", Some("o1"), 1, Some(10), None),
        ("", ProvisionState::Available, Some(PowerState::Off), false, None, "", None, 8, None, Some(7)),
        ("bravo", ProvisionState::Deploying, Some(PowerState::On), false, Some("rc-a"), "g3", Some("o1"), 2, Some(60), Some(1)),
        ("echo", ProvisionState::Active, None, true, Some("rc-c"), "g1", None, 5, Some(40), Some(9)),
    ];
    let suffix = unique("");
    let mut nodes = Vec::new();
    for (name, state, power, maint, rc, group, owner, created, updated, prov) in specs {
        let mut n = node_with_driver(&driver);
        n.name = (!name.is_empty()).then(|| format!("{name}{suffix}"));
        n.provision_state = state;
        n.power_state = power;
        n.maintenance = maint;
        n.resource_class = rc.map(str::to_owned);
        n.conductor_group = group.to_owned();
        n.owner = owner.map(str::to_owned);
        n.instance_uuid = (nodes.len() % 2 == 0).then(|| uuid::Uuid::new_v4().to_string());
        n.created_at = at(created, 0);
        n.updated_at = updated.map(|u| at(u, 0));
        n.provision_updated_at = prov.map(|p| at(p, 500));
        store.create_node(&n).await.expect("create_node");
        nodes.push(n);
    }

    for key in SORT_KEYS {
        for dir in [SortDir::Asc, SortDir::Desc] {
            let mut expected: Vec<(SortValue, usize, &Node)> = nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (sort_value(n, i, key), i, n))
                .collect();
            expected.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            if dir == SortDir::Desc {
                expected.reverse();
            }
            let expected: Vec<Node> = expected.into_iter().map(|(_, _, n)| n.clone()).collect();
            let query = |limit, marker| NodeQuery {
                filter: NodeFilter {
                    driver: Some(driver.clone()),
                    ..Default::default()
                },
                page: Page {
                    limit,
                    marker,
                    sort_key: key,
                    sort_dir: dir,
                },
            };
            let what = format!("sort_key={key:?} sort_dir={dir:?}");
            let all = store
                .list_nodes(&query(None, None))
                .await
                .expect("list_nodes");
            assert_eq!(ids(&all), ids(&expected), "{what}: wrong order");
            let first = store
                .list_nodes(&query(Some(3), None))
                .await
                .expect("list_nodes");
            assert_eq!(ids(&first), ids(&expected[..3]), "{what}: limit=3");

            for page_size in [1, 2, 3] {
                let mut walked: Vec<Node> = Vec::new();
                let mut marker = None;
                loop {
                    let page = store
                        .list_nodes(&query(Some(page_size), marker))
                        .await
                        .expect("list_nodes with a marker");
                    assert!(
                        page.len() <= page_size,
                        "{what}: a page longer than the limit"
                    );
                    let Some(last) = page.last() else { break };
                    marker = Some(last.uuid.0);
                    walked.extend(page);
                    assert!(walked.len() <= nodes.len(), "{what}: paging does not end");
                }
                assert_eq!(
                    ids(&walked),
                    ids(&expected),
                    "{what}: pages of {page_size} must walk the same sequence"
                );
            }
        }
    }

    let unknown = NodeQuery {
        page: Page {
            marker: Some(uuid::Uuid::new_v4()),
            ..Default::default()
        },
        ..Default::default()
    };
    expect_not_found(store.list_nodes(&unknown).await, "an unknown marker");
}

/// Port listing: every filter, creation order both ways, limit and marker.
pub async fn port_listing(store: &dyn Store) {
    let a = Node::new("fake-hardware");
    let b = Node::new("fake-hardware");
    store.create_node(&a).await.expect("create_node");
    store.create_node(&b).await.expect("create_node");
    let pg = Portgroup::new(a.uuid);
    store.create_portgroup(&pg).await.expect("create_portgroup");
    let physnet = unique("physnet");
    let mut ports = Vec::new();
    for i in 0..5 {
        let mut p = Port::new(a.uuid, random_mac());
        if i < 2 {
            p.portgroup_uuid = Some(pg.uuid);
        }
        if i % 2 == 0 {
            p.physical_network = Some(physnet.clone());
        }
        p.created_at = at(i, 0);
        store.create_port(&p).await.expect("create_port");
        ports.push(p);
    }
    let other = Port::new(b.uuid, random_mac());
    store.create_port(&other).await.expect("create_port");

    let uuids = |v: &[Port]| v.iter().map(|p| p.uuid).collect::<Vec<_>>();
    let node_a = PortQuery {
        node: Some(a.uuid),
        ..Default::default()
    };
    let got = store.list_ports(&node_a).await.expect("list_ports");
    assert_eq!(got, ports, "ports of a node, in creation order, as stored");
    let desc = PortQuery {
        sort_dir: SortDir::Desc,
        ..node_a.clone()
    };
    let mut reversed = ports.clone();
    reversed.reverse();
    assert_eq!(
        uuids(&store.list_ports(&desc).await.expect("list_ports")),
        uuids(&reversed),
        "desc"
    );

    let by_group = PortQuery {
        portgroup: Some(pg.uuid),
        ..Default::default()
    };
    assert_eq!(
        uuids(&store.list_ports(&by_group).await.expect("list_ports")),
        uuids(&ports[..2])
    );
    let by_physnet = PortQuery {
        physical_network: Some(physnet.clone()),
        ..Default::default()
    };
    let expected: Vec<Port> = ports.iter().step_by(2).cloned().collect();
    assert_eq!(
        uuids(&store.list_ports(&by_physnet).await.expect("list_ports")),
        uuids(&expected)
    );
    let by_address = PortQuery {
        address: Some(ports[3].address),
        ..Default::default()
    };
    assert_eq!(
        uuids(&store.list_ports(&by_address).await.expect("list_ports")),
        vec![ports[3].uuid]
    );
    let by_addresses = PortQuery {
        addresses: Some(vec![other.address, ports[1].address, random_mac()]),
        ..Default::default()
    };
    assert_eq!(
        uuids(&store.list_ports(&by_addresses).await.expect("list_ports")),
        vec![ports[1].uuid, other.uuid]
    );
    let no_addresses = PortQuery {
        addresses: Some(vec![]),
        node: Some(a.uuid),
        ..Default::default()
    };
    assert!(
        store
            .list_ports(&no_addresses)
            .await
            .expect("list_ports")
            .is_empty()
    );

    for dir in [SortDir::Asc, SortDir::Desc] {
        let expected = if dir == SortDir::Asc {
            &ports
        } else {
            &reversed
        };
        let mut walked = Vec::new();
        let mut marker = None;
        loop {
            let page = store
                .list_ports(&PortQuery {
                    limit: Some(2),
                    marker,
                    sort_dir: dir,
                    ..node_a.clone()
                })
                .await
                .expect("list_ports with a marker");
            assert!(page.len() <= 2);
            let Some(last) = page.last() else { break };
            marker = Some(last.uuid.0);
            walked.extend(page);
            assert!(walked.len() <= ports.len(), "paging does not end");
        }
        assert_eq!(uuids(&walked), uuids(expected), "port pages ({dir:?})");
    }
    let unknown = PortQuery {
        marker: Some(uuid::Uuid::new_v4()),
        ..Default::default()
    };
    expect_not_found(store.list_ports(&unknown).await, "an unknown port marker");
}
