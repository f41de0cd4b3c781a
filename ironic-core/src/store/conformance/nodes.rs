//! Node records, uniqueness and the reservation (node lock).

use super::*;

/// A node reads back exactly as written (every field, full timestamp precision,
/// secrets included), by UUID and by name; updates replace it; deletes remove it;
/// missing nodes are `NotFound`.
pub async fn node_crud_roundtrip(store: &dyn Store) {
    let mut node = rich_node("crud");
    store.create_node(&node).await.expect("create_node");
    let got = store
        .get_node(&node.uuid.into())
        .await
        .expect("get_node by UUID");
    assert_eq!(got, node, "a node must read back exactly as written");
    let name = node.name.clone().unwrap();
    let by_name = store
        .get_node(&Ident::Name(name.clone()))
        .await
        .expect("get_node by name");
    assert_eq!(by_name, node, "get_node by name");

    // Change fields of every kind.
    node.name = Some(unique("crud-renamed"));
    node.provision_state = ProvisionState::Manageable;
    node.target_provision_state = Some(ProvisionState::Available);
    node.power_state = Some(PowerState::On);
    node.maintenance = true;
    node.maintenance_reason = Some("disk swap".into());
    node.fault = Some(Fault::PowerFailure);
    node.instance_uuid = Some(uuid::Uuid::new_v4().to_string());
    node.driver_info.insert("ipmi_password", "n3w-s3cr3t");
    node.remove_internal("agent_url");
    node.extra.insert("new".into(), json!({"k": [1]}));
    node.traits.push("CUSTOM_NEW".into());
    node.clean_step
        .insert("step".into(), json!("erase_devices"));
    node.provision_updated_at = Some(at(30, 5));
    node.updated_at = Some(at(31, 7));
    node.last_error = None;
    node.owner = None;
    store.update_node(&node).await.expect("update_node");
    let got = store
        .get_node(&node.uuid.into())
        .await
        .expect("get_node after update");
    assert_eq!(got, node, "update_node must replace every field");
    expect_not_found(
        store.get_node(&Ident::Name(name)).await,
        "the old name after a rename",
    );
    let listed = store
        .list_nodes(&NodeQuery {
            filter: NodeFilter {
                instance_uuid: node.instance_uuid.clone(),
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .expect("list_nodes");
    assert_eq!(
        listed,
        vec![node.clone()],
        "list_nodes returns the same record as get_node"
    );

    let ghost = Node::new("fake-hardware");
    expect_not_found(
        store.get_node(&ghost.uuid.into()).await,
        "get_node of a missing node",
    );
    expect_not_found(
        store.update_node(&ghost).await,
        "update_node of a missing node",
    );
    expect_not_found(
        store.delete_node(ghost.uuid).await,
        "delete_node of a missing node",
    );
    expect_not_found(
        store.get_node(&Ident::Name(unique("nobody"))).await,
        "get_node of an unknown name",
    );

    store.delete_node(node.uuid).await.expect("delete_node");
    expect_not_found(
        store.get_node(&node.uuid.into()).await,
        "get_node after delete",
    );
    expect_not_found(store.delete_node(node.uuid).await, "delete_node twice");
}

/// Names are unique among nodes, ports, port groups, allocations and deploy
/// templates; a refused create writes nothing, a refused update changes nothing,
/// nameless records never clash, and a freed name can be taken again.
pub async fn names_are_unique(store: &dyn Store) {
    let name = unique("rack1-n02");
    let mut a = Node::new("fake-hardware");
    a.name = Some(name.clone());
    store.create_node(&a).await.expect("create the first node");
    let mut b = Node::new("fake-hardware");
    b.name = Some(name.clone());
    let msg = expect_duplicate(
        store.create_node(&b).await,
        "a second node with the same name",
    );
    assert_eq!(msg, format!("A node with name {name} already exists."));
    expect_not_found(
        store.get_node(&b.uuid.into()).await,
        "a refused create writes nothing",
    );

    let mut c = Node::new("fake-hardware");
    c.name = Some(unique("other"));
    store.create_node(&c).await.expect("create a third node");
    let mut renamed = c.clone();
    renamed.name = Some(name.clone());
    renamed.description = Some("must not be written".into());
    let msg = expect_duplicate(
        store.update_node(&renamed).await,
        "renaming to a taken name",
    );
    assert!(msg.contains(&name), "the message names the value: {msg}");
    assert_eq!(
        store.get_node(&c.uuid.into()).await.expect("get_node"),
        c,
        "a refused update changes nothing"
    );

    for _ in 0..2 {
        store
            .create_node(&Node::new("fake-hardware"))
            .await
            .expect("nameless nodes never clash");
    }

    store.delete_node(a.uuid).await.expect("delete_node");
    store
        .create_node(&b)
        .await
        .expect("a freed name can be taken again");

    // Ports.
    let pname = unique("port");
    let mut p1 = Port::new(b.uuid, random_mac());
    p1.name = Some(pname.clone());
    store.create_port(&p1).await.expect("create_port");
    let mut p2 = Port::new(b.uuid, random_mac());
    p2.name = Some(pname.clone());
    let msg = expect_duplicate(store.create_port(&p2).await, "a port with a taken name");
    assert_eq!(msg, format!("A port with name {pname} already exists."));
    expect_not_found(
        store.get_port(&Ident::Uuid(p2.uuid.0)).await,
        "a refused port",
    );
    for _ in 0..2 {
        store
            .create_port(&Port::new(b.uuid, random_mac()))
            .await
            .expect("nameless ports never clash");
    }

    // Port groups.
    let gname = unique("bond");
    let mut g1 = Portgroup::new(b.uuid);
    g1.name = Some(gname.clone());
    store.create_portgroup(&g1).await.expect("create_portgroup");
    let mut g2 = Portgroup::new(b.uuid);
    g2.name = Some(gname.clone());
    let msg = expect_duplicate(
        store.create_portgroup(&g2).await,
        "a port group with a taken name",
    );
    assert_eq!(
        msg,
        format!("A portgroup with name {gname} already exists.")
    );
    for _ in 0..2 {
        store
            .create_portgroup(&Portgroup::new(b.uuid))
            .await
            .expect("nameless port groups never clash");
    }

    // Allocations.
    let aname = unique("alloc");
    let al1 = allocation(Some(&aname));
    store
        .create_allocation(&al1)
        .await
        .expect("create_allocation");
    let msg = expect_duplicate(
        store.create_allocation(&allocation(Some(&aname))).await,
        "an allocation with a taken name",
    );
    assert_eq!(
        msg,
        format!("An allocation with name {aname} already exists.")
    );
    for _ in 0..2 {
        store
            .create_allocation(&allocation(None))
            .await
            .expect("nameless allocations never clash");
    }

    // Deploy templates (named by a trait).
    let tname = format!("CUSTOM_{}", unique("T").to_uppercase().replace('-', "_"));
    store
        .create_deploy_template(&template(&tname))
        .await
        .expect("create_deploy_template");
    let msg = expect_duplicate(
        store.create_deploy_template(&template(&tname)).await,
        "a deploy template with a taken name",
    );
    assert_eq!(
        msg,
        format!("A deploy template with name {tname} already exists.")
    );
}

pub(super) fn allocation(name: Option<&str>) -> Allocation {
    Allocation {
        uuid: AllocationId::new(),
        name: name.map(str::to_owned),
        state: AllocationState::Allocating,
        node_uuid: None,
        resource_class: Some("baremetal".into()),
        traits: vec!["CUSTOM_GPU".into()],
        candidate_nodes: vec![],
        last_error: None,
        owner: Some("project-a".into()),
        extra: JsonMap::new(),
        conductor_affinity: None,
        created_at: at(1, 2),
        updated_at: None,
    }
}

pub(super) fn template(name: &str) -> DeployTemplate {
    DeployTemplate {
        uuid: DeployTemplateId::new(),
        name: name.to_owned(),
        steps: vec![DeployTemplateStep {
            interface: "bios".into(),
            step: "apply_configuration".into(),
            args: json!({"settings": [{"name": "LogicalProc", "value": "Enabled"}]})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            priority: 150,
        }],
        extra: JsonMap::new(),
        created_at: at(2, 3),
        updated_at: None,
    }
}

/// UUIDs are unique for every kind of record; the message names the UUID.
pub async fn uuids_are_unique(store: &dyn Store) {
    let node = Node::new("fake-hardware");
    store.create_node(&node).await.expect("create_node");
    let mut again = node.clone();
    again.name = Some(unique("same-uuid"));
    let msg = expect_duplicate(store.create_node(&again).await, "a node with a taken UUID");
    assert_eq!(
        msg,
        format!("A node with UUID {} already exists.", node.uuid)
    );

    let port = Port::new(node.uuid, random_mac());
    store.create_port(&port).await.expect("create_port");
    let mut again = port.clone();
    again.address = random_mac();
    let msg = expect_duplicate(store.create_port(&again).await, "a port with a taken UUID");
    assert!(
        msg.contains(&port.uuid.to_string()),
        "the message names the UUID: {msg}"
    );

    let pg = Portgroup::new(node.uuid);
    store.create_portgroup(&pg).await.expect("create_portgroup");
    let msg = expect_duplicate(
        store.create_portgroup(&pg).await,
        "a port group with a taken UUID",
    );
    assert!(
        msg.contains(&pg.uuid.to_string()),
        "the message names the UUID: {msg}"
    );

    let ch = Chassis::new();
    store.create_chassis(&ch).await.expect("create_chassis");
    let msg = expect_duplicate(
        store.create_chassis(&ch).await,
        "a chassis with a taken UUID",
    );
    assert!(
        msg.contains(&ch.uuid.to_string()),
        "the message names the UUID: {msg}"
    );

    let al = allocation(None);
    store
        .create_allocation(&al)
        .await
        .expect("create_allocation");
    let msg = expect_duplicate(
        store.create_allocation(&al).await,
        "an allocation with a taken UUID",
    );
    assert!(
        msg.contains(&al.uuid.to_string()),
        "the message names the UUID: {msg}"
    );

    let t = template(&format!(
        "CUSTOM_{}",
        unique("U").to_uppercase().replace('-', "_")
    ));
    store
        .create_deploy_template(&t)
        .await
        .expect("create_deploy_template");
    let mut again = t.clone();
    again.name = format!("CUSTOM_{}", unique("V").to_uppercase().replace('-', "_"));
    let msg = expect_duplicate(
        store.create_deploy_template(&again).await,
        "a deploy template with a taken UUID",
    );
    assert!(
        msg.contains(&t.uuid.to_string()),
        "the message names the UUID: {msg}"
    );
}

/// An instance can be associated with one node only.
pub async fn instance_uuids_are_unique(store: &dyn Store) {
    let instance = uuid::Uuid::new_v4().to_string();
    let mut a = Node::new("fake-hardware");
    a.instance_uuid = Some(instance.clone());
    store.create_node(&a).await.expect("create_node");
    let mut b = Node::new("fake-hardware");
    b.instance_uuid = Some(instance.clone());
    let msg = expect_duplicate(
        store.create_node(&b).await,
        "a second node with the same instance",
    );
    assert!(
        msg.contains(&instance),
        "the message names the instance: {msg}"
    );
    b.instance_uuid = None;
    store
        .create_node(&b)
        .await
        .expect("create_node without instance");
    b.instance_uuid = Some(instance.clone());
    expect_duplicate(store.update_node(&b).await, "associating a taken instance");
    a.instance_uuid = None;
    store.update_node(&a).await.expect("disassociate");
    store
        .update_node(&b)
        .await
        .expect("a freed instance can be associated again");
}

/// The lock is a compare-and-set: one holder, not re-entrant, released only by its
/// holder, visible in reads and filters.
pub async fn reservation_is_compare_and_set(store: &dyn Store) {
    let (a, b) = (unique("conductor-a"), unique("conductor-b"));
    let node = Node::new("fake-hardware");
    store.create_node(&node).await.expect("create_node");

    let locked = store
        .reserve_node(node.uuid, &a)
        .await
        .expect("reserve a free node");
    assert_eq!(
        locked.reservation.as_deref(),
        Some(a.as_str()),
        "reserve_node returns the node as stored"
    );
    assert_eq!(locked.uuid, node.uuid);
    let holder = expect_locked(
        store.reserve_node(node.uuid, &b).await,
        "reserving a held node",
    );
    assert_eq!(holder, a, "Locked names the holder");
    let holder = expect_locked(
        store.reserve_node(node.uuid, &a).await,
        "reserving again by the holder (locks are not re-entrant)",
    );
    assert_eq!(holder, a);
    let holder = expect_locked(
        store.release_node(node.uuid, &b).await,
        "releasing a lock another host holds",
    );
    assert_eq!(holder, a);
    let got = store.get_node(&node.uuid.into()).await.expect("get_node");
    assert_eq!(
        got.reservation.as_deref(),
        Some(a.as_str()),
        "the holder keeps the lock"
    );

    store
        .release_node(node.uuid, &a)
        .await
        .expect("the holder releases");
    let got = store.get_node(&node.uuid.into()).await.expect("get_node");
    assert_eq!(got.reservation, None, "released");
    store
        .release_node(node.uuid, &a)
        .await
        .expect("releasing an unlocked node succeeds");
    let locked = store
        .reserve_node(node.uuid, &b)
        .await
        .expect("another host can take it now");
    assert_eq!(locked.reservation.as_deref(), Some(b.as_str()));

    let ghost = NodeId::new();
    expect_not_found(
        store.reserve_node(ghost, &a).await,
        "reserving a missing node",
    );
    expect_not_found(
        store.release_node(ghost, &a).await,
        "releasing a missing node",
    );
}

/// `update_node_and_release` saves the node and releases the caller's lock in one
/// call: on a node the caller locked (also twice in a row with changes of
/// indexed columns), it ends as `update_node` then `release_node`; on a node
/// another host holds, the fields are written and the lock stays with its holder
/// (`Locked`); on a missing node, `NotFound`.
pub async fn update_and_release_saves_and_unlocks(store: &dyn Store) {
    let host = unique("conductor");
    let mut node = Node::new("fake-hardware");
    node.name = Some(unique("ur"));
    store.create_node(&node).await.expect("create_node");
    for (i, state) in [ProvisionState::Manageable, ProvisionState::Available]
        .into_iter()
        .enumerate()
    {
        let locked = store
            .reserve_node(node.uuid, &host)
            .await
            .expect("reserve_node");
        assert_eq!(locked.reservation.as_deref(), Some(host.as_str()));
        node.provision_state = state;
        node.description = Some(format!("saved at release {i}"));
        store
            .update_node_and_release(&node, &host)
            .await
            .expect("update_node_and_release");
        let got = store.get_node(&node.uuid.into()).await.expect("get_node");
        assert_eq!(got.reservation, None, "the lock is released");
        assert_eq!(got.provision_state, state, "the node is saved");
        assert_eq!(got.description, node.description);
        let mut q = NodeQuery::default();
        q.filter.provision_state = Some(vec![state]);
        q.filter.reserved = Some(false);
        let listed = store.list_nodes(&q).await.expect("list_nodes");
        assert!(
            listed.iter().any(|n| n.uuid == node.uuid),
            "the indexed columns follow (provision_state, reservation)"
        );
    }

    let other = unique("other");
    store
        .reserve_node(node.uuid, &other)
        .await
        .expect("reserve_node");
    node.description = Some("written under another's lock".into());
    match store.update_node_and_release(&node, &host).await {
        Err(StoreError::Locked { holder, .. }) => assert_eq!(holder, other),
        r => panic!("expected Locked by {other}, got {r:?}"),
    }
    let got = store.get_node(&node.uuid.into()).await.expect("get_node");
    assert_eq!(
        got.reservation.as_deref(),
        Some(other.as_str()),
        "the lock stays"
    );
    assert_eq!(
        got.description, node.description,
        "as update_node, the fields are written"
    );

    let missing = Node::new("fake-hardware");
    assert!(matches!(
        store.update_node_and_release(&missing, &host).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// `update_node` never writes `reservation`: neither taking a lock nor dropping one.
pub async fn update_does_not_touch_reservation(store: &dyn Store) {
    let host = unique("conductor");
    let mut node = Node::new("fake-hardware");
    store.create_node(&node).await.expect("create_node");

    node.reservation = Some(unique("intruder"));
    node.description = Some("written".into());
    store.update_node(&node).await.expect("update_node");
    let got = store.get_node(&node.uuid.into()).await.expect("get_node");
    assert_eq!(got.reservation, None, "update_node must not take a lock");
    assert_eq!(
        got.description.as_deref(),
        Some("written"),
        "the other fields are written"
    );

    store
        .reserve_node(node.uuid, &host)
        .await
        .expect("reserve_node");
    node.reservation = None;
    node.description = Some("written while locked".into());
    store
        .update_node(&node)
        .await
        .expect("update_node while locked");
    let got = store.get_node(&node.uuid.into()).await.expect("get_node");
    assert_eq!(
        got.reservation.as_deref(),
        Some(host.as_str()),
        "update_node must not drop a lock"
    );
    assert_eq!(got.description.as_deref(), Some("written while locked"));

    let listed = store
        .list_nodes(&NodeQuery {
            filter: NodeFilter {
                reserved_by: Some(host.clone()),
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .expect("list_nodes");
    assert_eq!(listed.len(), 1, "the lock is still found by reserved_by");
    assert_eq!(listed[0].reservation.as_deref(), Some(host.as_str()));
}

/// `clear_reservations` releases every lock of one host and no other, and counts them.
pub async fn clear_reservations_releases_only_that_host(store: &dyn Store) {
    let (a, b) = (unique("conductor-a"), unique("conductor-b"));
    let mut nodes = Vec::new();
    for host in [&a, &a, &b] {
        let n = Node::new("fake-hardware");
        store.create_node(&n).await.expect("create_node");
        store
            .reserve_node(n.uuid, host)
            .await
            .expect("reserve_node");
        nodes.push(n);
    }
    let free = Node::new("fake-hardware");
    store.create_node(&free).await.expect("create_node");

    assert_eq!(
        store
            .clear_reservations(&a)
            .await
            .expect("clear_reservations"),
        2
    );
    for n in &nodes[..2] {
        let got = store.get_node(&n.uuid.into()).await.expect("get_node");
        assert_eq!(got.reservation, None, "the host's locks are released");
    }
    let got = store
        .get_node(&nodes[2].uuid.into())
        .await
        .expect("get_node");
    assert_eq!(
        got.reservation.as_deref(),
        Some(b.as_str()),
        "another host's lock stays"
    );
    assert_eq!(
        store
            .clear_reservations(&a)
            .await
            .expect("clear_reservations"),
        0
    );
    assert_eq!(
        store
            .clear_reservations(&unique("nobody"))
            .await
            .expect("clear_reservations"),
        0
    );
}

/// Many hosts racing for one free node: exactly one wins, the others are told who.
pub async fn concurrent_reservations_have_one_winner(store: &dyn Store) {
    for _round in 0..3 {
        let node = Node::new("fake-hardware");
        store.create_node(&node).await.expect("create_node");
        let hosts: Vec<String> = (0..16).map(|i| unique(&format!("host{i}"))).collect();
        let results =
            futures::future::join_all(hosts.iter().map(|h| store.reserve_node(node.uuid, h))).await;
        let winners: Vec<&String> = hosts
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(h, _)| h)
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "exactly one reservation wins: {results:?}"
        );
        let winner = winners[0];
        for r in results.into_iter().filter(|r| r.is_err()) {
            let holder = expect_locked(r, "a losing reservation");
            assert_eq!(&holder, winner, "losers are told the winner");
        }
        let got = store.get_node(&node.uuid.into()).await.expect("get_node");
        assert_eq!(got.reservation.as_ref(), Some(winner));
    }
}

/// Racing creates of one name or one MAC address: exactly one is written.
pub async fn concurrent_creates_have_one_winner(store: &dyn Store) {
    let name = unique("contended");
    let nodes: Vec<Node> = (0..8)
        .map(|_| {
            let mut n = Node::new("fake-hardware");
            n.name = Some(name.clone());
            n
        })
        .collect();
    let results = futures::future::join_all(nodes.iter().map(|n| store.create_node(n))).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        ok, 1,
        "exactly one node with the name is created: {results:?}"
    );
    for r in results.into_iter().filter(|r| r.is_err()) {
        expect_duplicate(r, "a losing create");
    }
    let owner = store
        .get_node(&Ident::Name(name))
        .await
        .expect("the winner is readable by name");

    let mac = random_mac();
    let ports: Vec<Port> = (0..8).map(|_| Port::new(owner.uuid, mac)).collect();
    let results = futures::future::join_all(ports.iter().map(|p| store.create_port(p))).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "exactly one port with the MAC is created: {results:?}"
    );
    let listed = store
        .list_ports(&PortQuery {
            node: Some(owner.uuid),
            ..Default::default()
        })
        .await
        .expect("list_ports");
    assert_eq!(listed.len(), 1);
}

/// Deleting a node deletes its ports, port groups, history, BIOS settings, firmware
/// components and inventory, frees its MAC addresses, and leaves other nodes alone.
pub async fn delete_node_cascades(store: &dyn Store) {
    let victim = Node::new("fake-hardware");
    let bystander = Node::new("fake-hardware");
    let mut victim_ports = Vec::new();
    let mut victim_groups = Vec::new();
    for n in [&victim, &bystander] {
        store.create_node(n).await.expect("create_node");
        let mut pg = Portgroup::new(n.uuid);
        pg.address = Some(random_mac());
        store.create_portgroup(&pg).await.expect("create_portgroup");
        let mut p1 = Port::new(n.uuid, random_mac());
        p1.portgroup_uuid = Some(pg.uuid);
        let p2 = Port::new(n.uuid, random_mac());
        store.create_port(&p1).await.expect("create_port");
        store.create_port(&p2).await.expect("create_port");
        store
            .add_history(&history_event(n.uuid, "something happened", at(5, 0)), 10)
            .await
            .expect("add_history");
        store
            .set_bios_settings(n.uuid, &[bios("LogicalProc", "Enabled")])
            .await
            .expect("set_bios_settings");
        store
            .set_firmware_components(n.uuid, &[firmware("bmc", "1.0")])
            .await
            .expect("set_firmware_components");
        store
            .set_inventory(n.uuid, &json!({"cpu": {"count": 8}}))
            .await
            .expect("set_inventory");
        if n.uuid == victim.uuid {
            victim_ports = vec![p1, p2];
            victim_groups = vec![pg];
        }
    }

    store.delete_node(victim.uuid).await.expect("delete_node");
    for p in &victim_ports {
        expect_not_found(
            store.get_port(&Ident::Uuid(p.uuid.0)).await,
            "a port of a deleted node",
        );
        expect_not_found(
            store.get_port_by_address(p.address).await,
            "a port of a deleted node, by address",
        );
    }
    for g in &victim_groups {
        expect_not_found(
            store.get_portgroup(&Ident::Uuid(g.uuid.0)).await,
            "a port group of a deleted node",
        );
    }
    let ports = store
        .list_ports(&PortQuery {
            node: Some(victim.uuid),
            ..Default::default()
        })
        .await
        .expect("list_ports");
    assert!(ports.is_empty(), "no port of a deleted node is listed");
    assert!(
        store
            .list_portgroups(Some(victim.uuid))
            .await
            .expect("list_portgroups")
            .is_empty(),
        "no port group of a deleted node is listed"
    );
    assert!(
        store
            .list_history(victim.uuid)
            .await
            .expect("list_history")
            .is_empty()
    );
    assert!(
        store
            .get_bios_settings(victim.uuid)
            .await
            .expect("get_bios_settings")
            .is_empty()
    );
    assert!(
        store
            .get_firmware_components(victim.uuid)
            .await
            .expect("get_firmware_components")
            .is_empty()
    );
    assert_eq!(
        store
            .get_inventory(victim.uuid)
            .await
            .expect("get_inventory"),
        None
    );

    // The MAC addresses are free again.
    let reborn = Node::new("fake-hardware");
    store.create_node(&reborn).await.expect("create_node");
    store
        .create_port(&Port::new(reborn.uuid, victim_ports[0].address))
        .await
        .expect("a deleted node's MAC address can be used again");
    let mut pg = Portgroup::new(reborn.uuid);
    pg.address = victim_groups[0].address;
    store
        .create_portgroup(&pg)
        .await
        .expect("a deleted node's port group MAC address can be used again");

    // The bystander keeps everything.
    let ports = store
        .list_ports(&PortQuery {
            node: Some(bystander.uuid),
            ..Default::default()
        })
        .await
        .expect("list_ports");
    assert_eq!(ports.len(), 2);
    assert_eq!(
        store
            .list_portgroups(Some(bystander.uuid))
            .await
            .expect("list_portgroups")
            .len(),
        1
    );
    assert_eq!(
        store
            .list_history(bystander.uuid)
            .await
            .expect("list_history")
            .len(),
        1
    );
    assert_eq!(
        store
            .get_bios_settings(bystander.uuid)
            .await
            .expect("bios")
            .len(),
        1
    );
    assert_eq!(
        store
            .get_firmware_components(bystander.uuid)
            .await
            .expect("firmware")
            .len(),
        1
    );
    assert!(
        store
            .get_inventory(bystander.uuid)
            .await
            .expect("inventory")
            .is_some()
    );
}

pub(super) fn history_event(node: NodeId, event: &str, created_at: Timestamp) -> HistoryEvent {
    HistoryEvent {
        uuid: HistoryId::new(),
        node_uuid: node,
        event: event.to_owned(),
        event_type: "provisioning".into(),
        severity: Severity::Error,
        user: Some("project-a".into()),
        conductor: Some("conductor-1".into()),
        project: Some("project-a".into()),
        provision_state: Some("deploy failed".into()),
        target_provision_state: Some("active".into()),
        duration_seconds: Some(42),
        created_at,
    }
}

pub(super) fn bios(name: &str, value: &str) -> BiosSetting {
    BiosSetting {
        attribute_type: Some("Enumeration".into()),
        allowable_values: Some(vec!["Enabled".into(), "Disabled".into()]),
        read_only: Some(false),
        reset_required: Some(true),
        unique: Some(false),
        ..BiosSetting::new(name, Some(value.to_owned()))
    }
}

pub(super) fn firmware(component: &str, version: &str) -> FirmwareComponent {
    FirmwareComponent {
        initial_version: Some(version.to_owned()),
        vendor: Some("Contoso".into()),
        model: Some("X1".into()),
        serial_number: Some("SN-1".into()),
        ..FirmwareComponent::new(component, Some(version.to_owned()))
    }
}
