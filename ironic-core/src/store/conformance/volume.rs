//! Volume connectors and targets, and runbooks.

use super::*;

fn connector(node: NodeId, kind: &str) -> VolumeConnector {
    let mut c = VolumeConnector::new(node, kind, unique("iqn.2004-10.org.example"));
    c.extra.insert("rack".into(), json!("r7"));
    c.created_at = at(3, 456);
    c
}

fn target(node: NodeId, boot_index: u32) -> VolumeTarget {
    let mut t = VolumeTarget::new(node, "iscsi", unique("vol"), boot_index);
    t.properties.insert(
        "target_iqn".into(),
        json!("iqn.2010-10.org.openstack:volume-1"),
    );
    t.properties
        .insert("target_portal".into(), json!("192.0.2.5:3260"));
    t.properties.insert("target_lun".into(), json!(0));
    t.created_at = at(4, 789);
    t
}

fn runbook(name: &str) -> Runbook {
    let mut r = Runbook::new(
        name,
        vec![
            RunbookStep {
                interface: "bios".into(),
                step: "apply_configuration".into(),
                args: json!({"settings": [{"name": "LogicalProc", "value": "Enabled"}]})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                order: 2,
            },
            RunbookStep {
                interface: "deploy".into(),
                step: "erase_devices_metadata".into(),
                args: JsonMap::new(),
                order: 1,
            },
        ],
    );
    r.owner = Some("project-a".into());
    r.description = Some("wipe then tune".into());
    r.traits = vec![name.to_owned()];
    r.created_at = at(5, 1);
    r
}

fn trait_name(tag: &str) -> String {
    format!("CUSTOM_{}", unique(tag).to_uppercase().replace('-', "_"))
}

/// Volume connectors: create, get, update, list per node and all in creation order,
/// delete; `(type, connector_id)` is unique with Ironic's message; a connector of a
/// missing node is `NotFound`; deleting the node deletes its connectors.
pub async fn volume_connector_crud(store: &dyn Store) {
    let node = Node::new("fake-hardware");
    let other = Node::new("fake-hardware");
    store.create_node(&node).await.expect("create_node");
    store.create_node(&other).await.expect("create_node");
    let mut c1 = connector(node.uuid, "iqn");
    let c2 = connector(node.uuid, "wwpn");
    let c3 = connector(other.uuid, "iqn");
    for c in [&c1, &c2, &c3] {
        store
            .create_volume_connector(c)
            .await
            .expect("create_volume_connector");
    }
    assert_eq!(
        store
            .get_volume_connector(c1.uuid)
            .await
            .expect("get_volume_connector"),
        c1
    );

    // The same (type, id) on any node is refused; the same id with another type is not.
    let mut dup = connector(other.uuid, "iqn");
    dup.connector_id = c1.connector_id.clone();
    let msg = expect_duplicate(
        store.create_volume_connector(&dup).await,
        "a second connector with the same type and id",
    );
    assert_eq!(
        msg,
        format!(
            "A volume connector with type iqn and connector ID {} already exists.",
            c1.connector_id
        )
    );
    expect_not_found(
        store.get_volume_connector(dup.uuid).await,
        "a refused connector is not written",
    );
    dup.connector_type = "ip".into();
    store
        .create_volume_connector(&dup)
        .await
        .expect("the same id with another type");
    let mut again = c2.clone();
    again.connector_id = unique("other");
    let msg = expect_duplicate(
        store.create_volume_connector(&again).await,
        "a connector with a taken UUID",
    );
    assert_eq!(
        msg,
        format!("A volume connector with UUID {} already exists.", c2.uuid)
    );

    // Update, and the uniqueness rule on update.
    c1.extra.insert("changed".into(), json!(true));
    c1.updated_at = Some(at(6, 7));
    store
        .update_volume_connector(&c1)
        .await
        .expect("update_volume_connector");
    assert_eq!(
        store
            .get_volume_connector(c1.uuid)
            .await
            .expect("get_volume_connector"),
        c1
    );
    let mut clash = c2.clone();
    clash.connector_type = c1.connector_type.clone();
    clash.connector_id = c1.connector_id.clone();
    expect_duplicate(
        store.update_volume_connector(&clash).await,
        "moving a connector onto a taken (type, id)",
    );
    assert_eq!(
        store
            .get_volume_connector(c2.uuid)
            .await
            .expect("get_volume_connector"),
        c2,
        "a refused update writes nothing"
    );
    let mut moved = c2.clone();
    moved.node_uuid = NodeId::new();
    expect_not_found(
        store.update_volume_connector(&moved).await,
        "moving a connector to a missing node",
    );

    // Listing.
    let of_node = store
        .list_volume_connectors(Some(node.uuid))
        .await
        .expect("list_volume_connectors");
    assert_eq!(of_node, vec![c1.clone(), c2.clone()], "a node's, in order");
    let all = store
        .list_volume_connectors(None)
        .await
        .expect("list_volume_connectors");
    let pos = |id| all.iter().position(|c| c.uuid == id).expect("listed");
    assert!(pos(c1.uuid) < pos(c2.uuid) && pos(c2.uuid) < pos(c3.uuid));

    // A missing node.
    expect_not_found(
        store
            .create_volume_connector(&connector(NodeId::new(), "iqn"))
            .await,
        "a connector of a missing node",
    );

    // Delete.
    store
        .delete_volume_connector(c2.uuid)
        .await
        .expect("delete_volume_connector");
    expect_not_found(
        store.get_volume_connector(c2.uuid).await,
        "a deleted connector",
    );
    expect_not_found(
        store.delete_volume_connector(c2.uuid).await,
        "deleting twice",
    );
    expect_not_found(
        store.update_volume_connector(&c2).await,
        "updating a deleted connector",
    );

    // The node's deletion takes its connectors (and frees their (type, id)).
    store.delete_node(node.uuid).await.expect("delete_node");
    expect_not_found(
        store.get_volume_connector(c1.uuid).await,
        "a connector of a deleted node",
    );
    let mut reuse = connector(other.uuid, "iqn");
    reuse.connector_id = c1.connector_id.clone();
    store
        .create_volume_connector(&reuse)
        .await
        .expect("a deleted node's connector id can be used again");
    assert_eq!(
        store
            .list_volume_connectors(Some(other.uuid))
            .await
            .expect("list")
            .len(),
        3,
        "the other node keeps its connectors"
    );
}

/// Volume targets: as connectors, with `(node, boot_index)` unique.
pub async fn volume_target_crud(store: &dyn Store) {
    let node = Node::new("fake-hardware");
    let other = Node::new("fake-hardware");
    store.create_node(&node).await.expect("create_node");
    store.create_node(&other).await.expect("create_node");
    let mut t0 = target(node.uuid, 0);
    let t1 = target(node.uuid, 1);
    let o0 = target(other.uuid, 0);
    for t in [&t0, &t1, &o0] {
        store
            .create_volume_target(t)
            .await
            .expect("create_volume_target (boot index 0 on two nodes is fine)");
    }
    assert_eq!(
        store
            .get_volume_target(t0.uuid)
            .await
            .expect("get_volume_target"),
        t0
    );
    let dup = target(node.uuid, 1);
    let msg = expect_duplicate(
        store.create_volume_target(&dup).await,
        "a second target with the same boot index on a node",
    );
    assert_eq!(
        msg,
        "A volume target with boot index '1' for the same node already exists."
    );
    expect_not_found(
        store.get_volume_target(dup.uuid).await,
        "a refused target is not written",
    );

    t0.volume_id = unique("vol-renamed");
    t0.properties.insert("auth_method".into(), json!("CHAP"));
    t0.updated_at = Some(at(8, 8));
    store
        .update_volume_target(&t0)
        .await
        .expect("update_volume_target");
    assert_eq!(
        store
            .get_volume_target(t0.uuid)
            .await
            .expect("get_volume_target"),
        t0
    );
    let mut clash = t1.clone();
    clash.boot_index = 0;
    expect_duplicate(
        store.update_volume_target(&clash).await,
        "moving a target onto a taken boot index",
    );
    let mut moved = t1.clone();
    moved.node_uuid = other.uuid;
    moved.boot_index = 0;
    expect_duplicate(
        store.update_volume_target(&moved).await,
        "moving a target to a node where its boot index is taken",
    );
    moved.node_uuid = NodeId::new();
    expect_not_found(
        store.update_volume_target(&moved).await,
        "moving a target to a missing node",
    );
    assert_eq!(
        store
            .get_volume_target(t1.uuid)
            .await
            .expect("get_volume_target"),
        t1,
        "refused updates write nothing"
    );

    assert_eq!(
        store
            .list_volume_targets(Some(node.uuid))
            .await
            .expect("list_volume_targets"),
        vec![t0.clone(), t1.clone()]
    );
    let all = store
        .list_volume_targets(None)
        .await
        .expect("list_volume_targets");
    assert!(all.contains(&o0) && all.contains(&t0));
    expect_not_found(
        store.create_volume_target(&target(NodeId::new(), 0)).await,
        "a target of a missing node",
    );

    store
        .delete_volume_target(t1.uuid)
        .await
        .expect("delete_volume_target");
    expect_not_found(store.get_volume_target(t1.uuid).await, "a deleted target");
    expect_not_found(store.delete_volume_target(t1.uuid).await, "deleting twice");
    store.delete_node(node.uuid).await.expect("delete_node");
    expect_not_found(
        store.get_volume_target(t0.uuid).await,
        "a target of a deleted node",
    );
    assert_eq!(
        store
            .list_volume_targets(Some(other.uuid))
            .await
            .expect("list"),
        vec![o0]
    );
}

/// Runbooks: create, get by UUID and by name, update (renaming frees the old
/// name), list in creation order, delete; names are unique with Ironic's message.
pub async fn runbook_crud(store: &dyn Store) {
    let mut r1 = runbook(&trait_name("RB"));
    let r2 = runbook(&trait_name("RB"));
    store.create_runbook(&r1).await.expect("create_runbook");
    store.create_runbook(&r2).await.expect("create_runbook");
    let by_name = Ident::Name(r1.name.clone());
    assert_eq!(store.get_runbook(&by_name).await.expect("get_runbook"), r1);
    assert_eq!(
        store
            .get_runbook(&Ident::Uuid(r1.uuid.0))
            .await
            .expect("get_runbook"),
        r1
    );
    let dup = runbook(&r1.name);
    let msg = expect_duplicate(store.create_runbook(&dup).await, "a taken runbook name");
    assert_eq!(
        msg,
        format!("A runbook with name {} already exists.", r1.name)
    );
    let mut same_uuid = runbook(&trait_name("RB"));
    same_uuid.uuid = r2.uuid;
    let msg = expect_duplicate(
        store.create_runbook(&same_uuid).await,
        "a taken runbook UUID",
    );
    assert_eq!(
        msg,
        format!("A runbook with UUID {} already exists.", r2.uuid)
    );

    r1.name = trait_name("RENAMED");
    r1.public = true;
    r1.disable_ramdisk = true;
    r1.steps.pop();
    r1.updated_at = Some(at(9, 1));
    store.update_runbook(&r1).await.expect("update_runbook");
    assert_eq!(
        store
            .get_runbook(&Ident::Uuid(r1.uuid.0))
            .await
            .expect("get_runbook"),
        r1
    );
    expect_not_found(store.get_runbook(&by_name).await, "the old runbook name");
    let mut clash = r2.clone();
    clash.name = r1.name.clone();
    expect_duplicate(
        store.update_runbook(&clash).await,
        "renaming onto a taken name",
    );
    let all = store.list_runbooks().await.expect("list_runbooks");
    let pos = |id| all.iter().position(|r| r.uuid == id).expect("listed");
    assert!(pos(r1.uuid) < pos(r2.uuid), "creation order");
    assert_eq!(all[pos(r2.uuid)], r2, "a refused update writes nothing");

    store.delete_runbook(r1.uuid).await.expect("delete_runbook");
    expect_not_found(
        store.get_runbook(&Ident::Uuid(r1.uuid.0)).await,
        "a deleted runbook",
    );
    expect_not_found(store.delete_runbook(r1.uuid).await, "deleting twice");
    expect_not_found(
        store.update_runbook(&r1).await,
        "updating a deleted runbook",
    );
}

/// Inspection rules: create, get, update, list in creation order, delete; UUIDs
/// are unique with Ironic's message; a missing rule is not found.
pub async fn inspection_rule_crud(store: &dyn Store) {
    let mut r1 = InspectionRule::new(vec![
        json!({"op": "add-trait", "args": {"name": "CUSTOM_X"}}),
    ]);
    r1.description = Some(unique("rule"));
    r1.priority = 50;
    r1.conditions = vec![
        json!({"op": "!is-empty", "args": {"value": "{inventory[bmc_address]}"}, "loop": [], "multiple": "any"}),
    ];
    r1.created_at = at(4, 321);
    let mut r2 = InspectionRule::new(vec![json!({"op": "log", "args": ["hello"]})]);
    r2.sensitive = true;
    store
        .create_inspection_rule(&r1)
        .await
        .expect("create_inspection_rule");
    store
        .create_inspection_rule(&r2)
        .await
        .expect("create_inspection_rule");
    assert_eq!(
        store
            .get_inspection_rule(r1.uuid)
            .await
            .expect("get_inspection_rule"),
        r1
    );
    let mut same = InspectionRule::new(vec![json!({"op": "fail", "args": {"msg": "x"}})]);
    same.uuid = r1.uuid;
    let msg = expect_duplicate(
        store.create_inspection_rule(&same).await,
        "a taken inspection rule UUID",
    );
    assert_eq!(msg, format!("A rule with UUID {} already exists.", r1.uuid));
    r1.priority = 7;
    r1.actions
        .push(json!({"op": "remove-trait", "args": {"name": "CUSTOM_Y"}}));
    r1.updated_at = Some(at(9, 2));
    store
        .update_inspection_rule(&r1)
        .await
        .expect("update_inspection_rule");
    assert_eq!(
        store
            .get_inspection_rule(r1.uuid)
            .await
            .expect("get_inspection_rule"),
        r1
    );
    let listed: Vec<InspectionRuleId> = store
        .list_inspection_rules()
        .await
        .expect("list_inspection_rules")
        .iter()
        .map(|r| r.uuid)
        .filter(|u| *u == r1.uuid || *u == r2.uuid)
        .collect();
    assert_eq!(listed, vec![r1.uuid, r2.uuid], "creation order");
    store
        .delete_inspection_rule(r1.uuid)
        .await
        .expect("delete_inspection_rule");
    expect_not_found(store.get_inspection_rule(r1.uuid).await, "a deleted rule");
    expect_not_found(
        store.delete_inspection_rule(r1.uuid).await,
        "a deleted rule",
    );
    expect_not_found(
        store.update_inspection_rule(&r1).await,
        "updating a deleted rule",
    );
    store
        .delete_inspection_rule(r2.uuid)
        .await
        .expect("delete_inspection_rule");
}
