//! Ports, port groups, chassis, allocations, deploy templates, conductors, history
//! and the per-node caches.

use super::nodes::{allocation, bios, firmware, history_event, template};
use super::*;

/// MAC addresses are unique among ports and among port groups (a port and a port
/// group may share one, as a bond and its first NIC do), with Ironic's messages.
pub async fn mac_addresses_are_unique(store: &dyn Store) {
    let node = Node::new("fake-hardware");
    store.create_node(&node).await.expect("create_node");
    let mac = random_mac();
    let p1 = Port::new(node.uuid, mac);
    store.create_port(&p1).await.expect("create_port");
    // The same address written differently is the same address.
    let upper: MacAddress = mac
        .to_string()
        .to_uppercase()
        .replace(':', "-")
        .parse()
        .expect("MAC");
    let p2 = Port::new(node.uuid, upper);
    let msg = expect_duplicate(
        store.create_port(&p2).await,
        "a second port with the same MAC",
    );
    assert_eq!(
        msg,
        format!("A port with MAC address {mac} already exists.")
    );
    expect_not_found(
        store.get_port(&Ident::Uuid(p2.uuid.0)).await,
        "a refused port is not written",
    );

    let p3 = Port::new(node.uuid, random_mac());
    store.create_port(&p3).await.expect("create_port");
    let mut moved = p3.clone();
    moved.address = mac;
    moved.physical_network = Some("must-not-be-written".into());
    let msg = expect_duplicate(
        store.update_port(&moved).await,
        "moving a port to a taken MAC",
    );
    assert_eq!(
        msg,
        format!("A port with MAC address {mac} already exists.")
    );
    assert_eq!(
        store
            .get_port(&Ident::Uuid(p3.uuid.0))
            .await
            .expect("get_port"),
        p3
    );

    assert_eq!(
        store
            .get_port_by_address(mac)
            .await
            .expect("get_port_by_address"),
        p1
    );
    expect_not_found(
        store.get_port_by_address(random_mac()).await,
        "an unknown MAC",
    );

    let mut g1 = Portgroup::new(node.uuid);
    g1.address = Some(mac);
    store
        .create_portgroup(&g1)
        .await
        .expect("a port group may share a port's MAC address");
    let mut g2 = Portgroup::new(node.uuid);
    g2.address = Some(mac);
    let msg = expect_duplicate(
        store.create_portgroup(&g2).await,
        "a second port group with the same MAC",
    );
    assert_eq!(
        msg,
        format!("A portgroup with MAC address {mac} already exists.")
    );
    let g3 = Portgroup::new(node.uuid);
    let g4 = Portgroup::new(node.uuid);
    store
        .create_portgroup(&g3)
        .await
        .expect("port groups without an address never clash");
    store
        .create_portgroup(&g4)
        .await
        .expect("port groups without an address never clash");

    store.delete_port(p1.uuid).await.expect("delete_port");
    store
        .create_port(&p2)
        .await
        .expect("a freed MAC address can be used again");
    store
        .update_port(&moved)
        .await
        .expect_err("still taken, by p2");
}

/// Ports and port groups read back as written (by UUID and by name), update, list
/// per node, and delete; missing ones are `NotFound`.
pub async fn port_and_portgroup_crud(store: &dyn Store) {
    let node = Node::new("fake-hardware");
    let node2 = Node::new("fake-hardware");
    store.create_node(&node).await.expect("create_node");
    store.create_node(&node2).await.expect("create_node");

    let mut pg = Portgroup::new(node.uuid);
    pg.name = Some(unique("bond0"));
    pg.address = Some(random_mac());
    pg.mode = Some("802.3ad".into());
    pg.properties.insert("miimon".into(), json!("100"));
    pg.standalone_ports_supported = false;
    pg.physical_network = Some("physnet1".into());
    pg.extra.insert("k".into(), json!(["v"]));
    pg.created_at = at(1, 42);
    store.create_portgroup(&pg).await.expect("create_portgroup");
    assert_eq!(
        store
            .get_portgroup(&Ident::Uuid(pg.uuid.0))
            .await
            .expect("get_portgroup"),
        pg
    );
    let by_name = Ident::Name(pg.name.clone().unwrap());
    assert_eq!(
        store
            .get_portgroup(&by_name)
            .await
            .expect("get_portgroup by name"),
        pg
    );

    let mut port = Port::new(node.uuid, random_mac());
    port.name = Some(unique("eth0"));
    port.portgroup_uuid = Some(pg.uuid);
    port.local_link_connection
        .insert("switch_id".into(), json!("0a:1b:2c:3d:4e:5f"));
    port.local_link_connection
        .insert("port_id".into(), json!("Ethernet3/1"));
    port.physical_network = Some("physnet1".into());
    port.internal_info
        .insert("tenant_vif_port_id".into(), json!("vif-1"));
    port.is_smartnic = true;
    port.description = Some("first NIC".into());
    port.created_at = at(3, 7);
    store.create_port(&port).await.expect("create_port");
    assert_eq!(
        store
            .get_port(&Ident::Uuid(port.uuid.0))
            .await
            .expect("get_port"),
        port
    );
    let by_name = Ident::Name(port.name.clone().unwrap());
    assert_eq!(
        store.get_port(&by_name).await.expect("get_port by name"),
        port
    );

    // Update: move the port to another node, out of the group.
    port.node_uuid = node2.uuid;
    port.portgroup_uuid = None;
    port.pxe_enabled = false;
    port.address = random_mac();
    port.updated_at = Some(at(4, 0));
    store.update_port(&port).await.expect("update_port");
    assert_eq!(
        store
            .get_port(&Ident::Uuid(port.uuid.0))
            .await
            .expect("get_port"),
        port
    );
    assert_eq!(
        store
            .get_port_by_address(port.address)
            .await
            .expect("by new address"),
        port
    );
    let on_node2 = store
        .list_ports(&PortQuery {
            node: Some(node2.uuid),
            ..Default::default()
        })
        .await
        .expect("list_ports");
    assert_eq!(on_node2, vec![port.clone()]);

    pg.mode = Some("active-backup".into());
    pg.name = Some(unique("bond1"));
    pg.updated_at = Some(at(5, 0));
    store.update_portgroup(&pg).await.expect("update_portgroup");
    assert_eq!(
        store
            .get_portgroup(&Ident::Uuid(pg.uuid.0))
            .await
            .expect("get_portgroup"),
        pg
    );
    let pg2 = Portgroup::new(node2.uuid);
    store
        .create_portgroup(&pg2)
        .await
        .expect("create_portgroup");
    assert_eq!(
        store
            .list_portgroups(Some(node.uuid))
            .await
            .expect("list_portgroups"),
        vec![pg.clone()]
    );
    assert_eq!(
        store
            .list_portgroups(Some(node2.uuid))
            .await
            .expect("list_portgroups"),
        vec![pg2.clone()]
    );
    let everything = store.list_portgroups(None).await.expect("list_portgroups");
    let pos = |id| everything.iter().position(|g| g.uuid == id);
    let (i1, i2) = (
        pos(pg.uuid).expect("listed"),
        pos(pg2.uuid).expect("listed"),
    );
    assert!(i1 < i2, "port groups are listed in creation order");

    let ghost_port = Port::new(node.uuid, random_mac());
    expect_not_found(
        store.get_port(&Ident::Uuid(ghost_port.uuid.0)).await,
        "get_port missing",
    );
    expect_not_found(
        store.get_port(&Ident::Name(unique("nic"))).await,
        "get_port unknown name",
    );
    expect_not_found(store.update_port(&ghost_port).await, "update_port missing");
    expect_not_found(
        store.delete_port(ghost_port.uuid).await,
        "delete_port missing",
    );
    let ghost_pg = Portgroup::new(node.uuid);
    expect_not_found(
        store.get_portgroup(&Ident::Uuid(ghost_pg.uuid.0)).await,
        "get_portgroup missing",
    );
    expect_not_found(
        store.update_portgroup(&ghost_pg).await,
        "update_portgroup missing",
    );
    expect_not_found(
        store.delete_portgroup(ghost_pg.uuid).await,
        "delete_portgroup missing",
    );

    store.delete_port(port.uuid).await.expect("delete_port");
    expect_not_found(
        store.get_port(&Ident::Uuid(port.uuid.0)).await,
        "a deleted port",
    );
    store
        .delete_portgroup(pg.uuid)
        .await
        .expect("delete_portgroup");
    expect_not_found(
        store.get_portgroup(&Ident::Uuid(pg.uuid.0)).await,
        "a deleted port group",
    );
}

/// Deleting a port group keeps its member ports, now without a group.
pub async fn deleting_a_portgroup_keeps_its_ports(store: &dyn Store) {
    let node = Node::new("fake-hardware");
    store.create_node(&node).await.expect("create_node");
    let pg = Portgroup::new(node.uuid);
    store.create_portgroup(&pg).await.expect("create_portgroup");
    let mut port = Port::new(node.uuid, random_mac());
    port.portgroup_uuid = Some(pg.uuid);
    store.create_port(&port).await.expect("create_port");

    store
        .delete_portgroup(pg.uuid)
        .await
        .expect("delete_portgroup");
    let got = store
        .get_port(&Ident::Uuid(port.uuid.0))
        .await
        .expect("the port stays");
    assert_eq!(
        got.portgroup_uuid, None,
        "the port no longer names the deleted group"
    );
    port.portgroup_uuid = None;
    assert_eq!(got, port, "nothing else changes");
    let members = store
        .list_ports(&PortQuery {
            portgroup: Some(pg.uuid),
            ..Default::default()
        })
        .await
        .expect("list_ports");
    assert!(members.is_empty());
}

/// Ports, port groups, history and per-node caches cannot be written for a node (or
/// port group) that does not exist: `NotFound`, and nothing is written.
pub async fn children_need_their_node(store: &dyn Store) {
    let ghost = NodeId::new();
    let port = Port::new(ghost, random_mac());
    expect_not_found(store.create_port(&port).await, "a port of a missing node");
    expect_not_found(
        store.get_port_by_address(port.address).await,
        "a refused port is not written",
    );
    expect_not_found(
        store.create_portgroup(&Portgroup::new(ghost)).await,
        "a port group of a missing node",
    );
    expect_not_found(
        store
            .add_history(&history_event(ghost, "x", at(0, 0)), 10)
            .await,
        "history of a missing node",
    );
    expect_not_found(
        store.set_bios_settings(ghost, &[bios("A", "B")]).await,
        "BIOS settings of a missing node",
    );
    expect_not_found(
        store
            .set_firmware_components(ghost, &[firmware("bmc", "1")])
            .await,
        "firmware components of a missing node",
    );
    expect_not_found(
        store.set_inventory(ghost, &json!({})).await,
        "the inventory of a missing node",
    );

    let node = Node::new("fake-hardware");
    store.create_node(&node).await.expect("create_node");
    let mut port = Port::new(node.uuid, random_mac());
    port.portgroup_uuid = Some(PortgroupId::new());
    expect_not_found(
        store.create_port(&port).await,
        "a port in a missing port group",
    );
    port.portgroup_uuid = None;
    store.create_port(&port).await.expect("create_port");
    let mut moved = port.clone();
    moved.node_uuid = ghost;
    expect_not_found(
        store.update_port(&moved).await,
        "moving a port to a missing node",
    );
    assert_eq!(
        store
            .get_port(&Ident::Uuid(port.uuid.0))
            .await
            .expect("get_port"),
        port
    );
}

/// Chassis, allocations and deploy templates: create, get (by name where they have
/// one), update, list in creation order, delete; missing ones are `NotFound`.
pub async fn chassis_allocation_template_crud(store: &dyn Store) {
    // Chassis.
    let mut c1 = Chassis::new();
    c1.description = Some("rack 1".into());
    c1.extra.insert("row".into(), json!(3));
    let c2 = Chassis::new();
    store.create_chassis(&c1).await.expect("create_chassis");
    store.create_chassis(&c2).await.expect("create_chassis");
    assert_eq!(store.get_chassis(c1.uuid).await.expect("get_chassis"), c1);
    c1.description = Some("rack 2".into());
    c1.updated_at = Some(at(9, 9));
    store.update_chassis(&c1).await.expect("update_chassis");
    assert_eq!(store.get_chassis(c1.uuid).await.expect("get_chassis"), c1);
    let all = store.list_chassis().await.expect("list_chassis");
    let pos = |id| all.iter().position(|c| c.uuid == id).expect("listed");
    assert!(
        pos(c1.uuid) < pos(c2.uuid),
        "chassis are listed in creation order"
    );
    assert_eq!(all[pos(c1.uuid)], c1);
    store.delete_chassis(c1.uuid).await.expect("delete_chassis");
    expect_not_found(store.get_chassis(c1.uuid).await, "a deleted chassis");
    expect_not_found(
        store.update_chassis(&c1).await,
        "update of a deleted chassis",
    );
    expect_not_found(
        store.delete_chassis(c1.uuid).await,
        "delete of a deleted chassis",
    );

    // Allocations.
    let node = Node::new("fake-hardware");
    store.create_node(&node).await.expect("create_node");
    let mut a1 = allocation(Some(&unique("alloc")));
    let a2 = allocation(None);
    store
        .create_allocation(&a1)
        .await
        .expect("create_allocation");
    store
        .create_allocation(&a2)
        .await
        .expect("create_allocation");
    assert_eq!(
        store
            .get_allocation(&Ident::Uuid(a1.uuid.0))
            .await
            .expect("get_allocation"),
        a1
    );
    let by_name = Ident::Name(a1.name.clone().unwrap());
    assert_eq!(
        store
            .get_allocation(&by_name)
            .await
            .expect("get_allocation by name"),
        a1
    );
    a1.state = AllocationState::Active;
    a1.node_uuid = Some(node.uuid);
    a1.name = Some(unique("alloc-renamed"));
    store
        .update_allocation(&a1)
        .await
        .expect("update_allocation");
    assert_eq!(
        store
            .get_allocation(&Ident::Uuid(a1.uuid.0))
            .await
            .expect("get_allocation"),
        a1
    );
    expect_not_found(
        store.get_allocation(&by_name).await,
        "the old allocation name",
    );
    let all = store.list_allocations().await.expect("list_allocations");
    let pos = |id| all.iter().position(|a| a.uuid == id).expect("listed");
    assert!(
        pos(a1.uuid) < pos(a2.uuid),
        "allocations are listed in creation order"
    );
    store
        .delete_allocation(a1.uuid)
        .await
        .expect("delete_allocation");
    expect_not_found(
        store.get_allocation(&Ident::Uuid(a1.uuid.0)).await,
        "a deleted allocation",
    );
    expect_not_found(
        store.update_allocation(&a1).await,
        "update of a deleted allocation",
    );
    expect_not_found(
        store.delete_allocation(a1.uuid).await,
        "delete of a deleted allocation",
    );

    // Deploy templates.
    let trait_name = |t: &str| format!("CUSTOM_{}", unique(t).to_uppercase().replace('-', "_"));
    let mut t1 = template(&trait_name("A"));
    let t2 = template(&trait_name("B"));
    store
        .create_deploy_template(&t1)
        .await
        .expect("create_deploy_template");
    store
        .create_deploy_template(&t2)
        .await
        .expect("create_deploy_template");
    let by_name = Ident::Name(t1.name.clone());
    assert_eq!(
        store
            .get_deploy_template(&by_name)
            .await
            .expect("get_deploy_template"),
        t1
    );
    t1.steps[0].priority = 10;
    t1.name = trait_name("C");
    store
        .update_deploy_template(&t1)
        .await
        .expect("update_deploy_template");
    assert_eq!(
        store
            .get_deploy_template(&Ident::Uuid(t1.uuid.0))
            .await
            .expect("get_deploy_template"),
        t1
    );
    expect_not_found(
        store.get_deploy_template(&by_name).await,
        "the old template name",
    );
    let all = store
        .list_deploy_templates()
        .await
        .expect("list_deploy_templates");
    let pos = |id| all.iter().position(|t| t.uuid == id).expect("listed");
    assert!(
        pos(t1.uuid) < pos(t2.uuid),
        "deploy templates are listed in creation order"
    );
    store
        .delete_deploy_template(t1.uuid)
        .await
        .expect("delete_deploy_template");
    expect_not_found(
        store.get_deploy_template(&Ident::Uuid(t1.uuid.0)).await,
        "a deleted deploy template",
    );
    expect_not_found(
        store.update_deploy_template(&t1).await,
        "update of a deleted template",
    );
    expect_not_found(
        store.delete_deploy_template(t1.uuid).await,
        "delete of a deleted template",
    );
}

/// Registering sets `updated_at` to now; re-registering updates the record but keeps
/// `created_at`; touching moves `updated_at` (by the clock [`Store::now`] reads);
/// unknown hosts are `NotFound`.
pub async fn conductors_upsert_and_touch(store: &dyn Store) {
    let host = unique("conductor");
    let find =
        |list: Vec<ConductorRecord>, host: &str| list.into_iter().find(|c| c.hostname == host);
    let before = now();
    let record = ConductorRecord {
        hostname: host.clone(),
        conductor_group: "group-a".into(),
        drivers: vec!["fake-hardware".into(), "ipmi".into()],
        alive: true,
        created_at: at(0, 77),
        updated_at: None,
        url: Some("http://10.0.0.7:6385".into()),
    };
    store
        .upsert_conductor(&record)
        .await
        .expect("upsert_conductor");
    let got = find(
        store.list_conductors().await.expect("list_conductors"),
        &host,
    )
    .expect("registered");
    assert_eq!(got.conductor_group, record.conductor_group);
    assert_eq!(got.drivers, record.drivers);
    assert_eq!(got.url, record.url);
    assert!(got.alive);
    assert_eq!(got.created_at, record.created_at, "created_at as given");
    let first = got.updated_at.expect("upsert_conductor sets updated_at");
    assert!(first >= before, "updated_at is the store's current time");

    let again = ConductorRecord {
        conductor_group: "group-b".into(),
        drivers: vec!["redfish".into()],
        alive: false,
        created_at: at(500, 0),
        url: None,
        ..record.clone()
    };
    store
        .upsert_conductor(&again)
        .await
        .expect("upsert_conductor again");
    let all = store.list_conductors().await.expect("list_conductors");
    assert_eq!(
        all.iter().filter(|c| c.hostname == host).count(),
        1,
        "one record per host"
    );
    let got = find(all, &host).expect("registered");
    assert_eq!(got.conductor_group, "group-b");
    assert_eq!(got.drivers, vec!["redfish".to_string()]);
    assert_eq!(got.url, None, "re-registering replaces the URL");
    assert!(!got.alive);
    assert_eq!(
        got.created_at, record.created_at,
        "re-registering keeps created_at"
    );
    let second = got.updated_at.expect("updated_at");
    assert!(second >= first);

    let before_touch = now();
    store.touch_conductor(&host).await.expect("touch_conductor");
    let got = find(
        store.list_conductors().await.expect("list_conductors"),
        &host,
    )
    .expect("registered");
    assert!(
        got.updated_at.expect("updated_at") >= before_touch,
        "touch moves updated_at"
    );
    assert_eq!(
        got.drivers,
        vec!["redfish".to_string()],
        "touch changes nothing else"
    );
    let clock = store.now().await.expect("now");
    assert!(
        clock >= got.updated_at.expect("updated_at"),
        "the keep-alive stamps come from the clock `now` reads, so conductors judge liveness by one clock"
    );

    expect_not_found(
        store.touch_conductor(&unique("ghost")).await,
        "touching an unknown conductor",
    );
    store
        .delete_conductor(&host)
        .await
        .expect("delete_conductor");
    assert!(
        find(
            store.list_conductors().await.expect("list_conductors"),
            &host
        )
        .is_none()
    );
    expect_not_found(store.delete_conductor(&host).await, "deleting twice");
    expect_not_found(
        store.touch_conductor(&host).await,
        "touching a deleted conductor",
    );
}

/// `forget_conductor` removes a record only when its last stamp is older than the
/// given instant and no node is reserved under its host name; otherwise (and for
/// unknown hosts) it keeps everything and answers `false`.
pub async fn offline_conductors_are_forgotten_only_unlocked(store: &dyn Store) {
    let host = unique("offline");
    let listed = |list: Vec<ConductorRecord>| list.iter().any(|c| c.hostname == host);
    let before = store.now().await.expect("now");
    let mut record = ConductorRecord::new(host.clone());
    record.drivers = vec!["fake-hardware".into()];
    store
        .upsert_conductor(&record)
        .await
        .expect("upsert_conductor");
    assert!(
        !store
            .forget_conductor(&host, before)
            .await
            .expect("forget_conductor"),
        "stamped after the instant: kept"
    );
    assert!(listed(store.list_conductors().await.expect("list")));

    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let after = store.now().await.expect("now");
    let node = Node::new("fake-hardware");
    store.create_node(&node).await.expect("create_node");
    store
        .reserve_node(node.uuid, &host)
        .await
        .expect("reserve_node");
    assert!(
        !store
            .forget_conductor(&host, after)
            .await
            .expect("forget_conductor"),
        "a conductor still holding a lock is kept"
    );
    assert!(listed(store.list_conductors().await.expect("list")));

    store
        .release_node(node.uuid, &host)
        .await
        .expect("release_node");
    assert!(
        store
            .forget_conductor(&host, after)
            .await
            .expect("forget_conductor"),
        "stale and holding no lock: forgotten"
    );
    assert!(!listed(store.list_conductors().await.expect("list")));
    assert!(
        !store
            .forget_conductor(&host, after)
            .await
            .expect("forget_conductor"),
        "forgetting twice"
    );
    assert!(
        !store
            .forget_conductor(&unique("never"), after)
            .await
            .expect("forget_conductor"),
        "an unknown host"
    );
    // A forgotten conductor that comes back registers again.
    store
        .upsert_conductor(&record)
        .await
        .expect("upsert_conductor");
    assert!(listed(store.list_conductors().await.expect("list")));
    store
        .delete_conductor(&host)
        .await
        .expect("delete_conductor");
    store.delete_node(node.uuid).await.expect("delete_node");
}

/// History keeps at most `max_per_node` events per node, dropping the oldest, and
/// lists them oldest first, exactly as written.
pub async fn history_is_capped(store: &dyn Store) {
    let node = Node::new("fake-hardware");
    let other = Node::new("fake-hardware");
    store.create_node(&node).await.expect("create_node");
    store.create_node(&other).await.expect("create_node");
    let theirs: Vec<HistoryEvent> = (0..2)
        .map(|i| history_event(other.uuid, &format!("other {i}"), at(i, 0)))
        .collect();
    for e in &theirs {
        store.add_history(e, 3).await.expect("add_history");
    }
    let mut events = Vec::new();
    for i in 0..7 {
        let mut e = history_event(node.uuid, &format!("event {i}"), at(10 + i, i as u32));
        e.severity = if i % 2 == 0 {
            Severity::Info
        } else {
            Severity::Warning
        };
        e.user = None;
        store.add_history(&e, 3).await.expect("add_history");
        events.push(e);
        let kept = store.list_history(node.uuid).await.expect("list_history");
        let from = events.len().saturating_sub(3);
        assert_eq!(
            kept,
            events[from..],
            "after {} events, the newest 3, oldest first",
            i + 1
        );
    }
    assert_eq!(
        store.list_history(other.uuid).await.expect("list_history"),
        theirs,
        "other nodes keep theirs"
    );
    // A larger cap keeps more from then on.
    let e = history_event(node.uuid, "event 7", at(30, 0));
    store.add_history(&e, 10).await.expect("add_history");
    events.push(e);
    assert_eq!(
        store.list_history(node.uuid).await.expect("list_history"),
        events[4..]
    );
    assert!(
        store
            .list_history(NodeId::new())
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

/// BIOS settings, firmware components and inventory read back as written and are
/// replaced whole; a node without any reads empty.
pub async fn bios_firmware_inventory_roundtrip(store: &dyn Store) {
    let node = Node::new("fake-hardware");
    store.create_node(&node).await.expect("create_node");
    assert!(
        store
            .get_bios_settings(node.uuid)
            .await
            .expect("get_bios_settings")
            .is_empty()
    );
    assert!(
        store
            .get_firmware_components(node.uuid)
            .await
            .expect("get_firmware")
            .is_empty()
    );
    assert_eq!(
        store.get_inventory(node.uuid).await.expect("get_inventory"),
        None
    );

    let mut minimal = bios("NumLock", "On");
    minimal.allowable_values = None;
    minimal.read_only = None;
    minimal.reset_required = None;
    minimal.value = None;
    let settings = vec![
        bios("ProcVirtualization", "Enabled"),
        minimal,
        bios("BootMode", "Uefi"),
    ];
    store
        .set_bios_settings(node.uuid, &settings)
        .await
        .expect("set_bios_settings");
    assert_eq!(
        store
            .get_bios_settings(node.uuid)
            .await
            .expect("get_bios_settings"),
        settings
    );
    let fewer = vec![bios("BootMode", "Bios")];
    store
        .set_bios_settings(node.uuid, &fewer)
        .await
        .expect("set_bios_settings");
    assert_eq!(
        store
            .get_bios_settings(node.uuid)
            .await
            .expect("get_bios_settings"),
        fewer,
        "replaced whole"
    );
    store
        .set_bios_settings(node.uuid, &[])
        .await
        .expect("set_bios_settings");
    assert!(
        store
            .get_bios_settings(node.uuid)
            .await
            .expect("get_bios_settings")
            .is_empty()
    );

    let mut flashed = firmware("bios", "2.1");
    flashed.current_version = Some("2.2".into());
    flashed.last_version_flashed = Some("2.2".into());
    let comps = vec![firmware("bmc", "1.0"), flashed];
    store
        .set_firmware_components(node.uuid, &comps)
        .await
        .expect("set_firmware_components");
    assert_eq!(
        store
            .get_firmware_components(node.uuid)
            .await
            .expect("get_firmware"),
        comps
    );
    store
        .set_firmware_components(node.uuid, &comps[1..])
        .await
        .expect("set_firmware_components");
    assert_eq!(
        store
            .get_firmware_components(node.uuid)
            .await
            .expect("get_firmware"),
        comps[1..]
    );

    let inventory = json!({
        "inventory": {
            "cpu": {"count": 16, "architecture": "x86_64", "flags": ["vmx", "sse4_2"]},
            "memory": {"physical_mb": 65536},
            "interfaces": [{"name": "eth0", "mac_address": "52:54:00:12:34:56", "ipv4_address": null}],
            "disks": [{"name": "/dev/sda", "size": 480_103_981_056_u64, "rotational": false}]
        },
        "plugin_data": {"boot_interface": "52:54:00:12:34:56", "ratio": 0.75}
    });
    store
        .set_inventory(node.uuid, &inventory)
        .await
        .expect("set_inventory");
    assert_eq!(
        store.get_inventory(node.uuid).await.expect("get_inventory"),
        Some(inventory)
    );
    let replaced = json!({"inventory": {}, "plugin_data": {}});
    store
        .set_inventory(node.uuid, &replaced)
        .await
        .expect("set_inventory");
    assert_eq!(
        store.get_inventory(node.uuid).await.expect("get_inventory"),
        Some(replaced)
    );
}
