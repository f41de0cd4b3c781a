//! Chassis, deploy templates, allocation updates, volume connectors/targets and
//! runbooks through the conductor: validation, Ironic's state rules, locks and the
//! resource event stream.

mod common;

use common::*;
use ironic_core::conductor::{ResourceAction, ResourceEvent, ResourceKind};
use ironic_core::fake::FakeDeployMode;
use ironic_core::ids::Ident;
use ironic_core::model::{
    Allocation, AllocationState, Chassis, DeployTemplate, DeployTemplateStep, JsonMap, Runbook,
    RunbookStep, VolumeConnector, VolumeTarget,
};
use ironic_core::{Error, Node, PowerState};
use tokio::sync::broadcast::error::TryRecvError;

fn next(rx: &mut tokio::sync::broadcast::Receiver<ResourceEvent>) -> ResourceEvent {
    match rx.try_recv() {
        Ok(e) => e,
        Err(e) => panic!("expected a resource event, got {e:?}"),
    }
}

async fn node_with_power(e: &Env, power: Option<PowerState>) -> Node {
    let n = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    let mut stored = e.store.get_node(&id(&n)).await.unwrap();
    stored.power_state = power;
    e.store.update_node(&stored).await.unwrap();
    stored
}

#[tokio::test]
async fn chassis_cannot_be_deleted_while_it_holds_nodes() {
    let e = env(FakeDeployMode::Sync).await;
    let mut rx = e.c.subscribe_resources();
    let mut c = Chassis::new();
    c.description = Some("rack 4".into());
    let c = e.c.create_chassis(c).await.unwrap();
    assert_eq!(
        next(&mut rx),
        ResourceEvent {
            kind: ResourceKind::Chassis,
            uuid: c.uuid.0,
            action: ResourceAction::Created
        }
    );
    let mut too_long = c.clone();
    too_long.description = Some("x".repeat(256));
    assert!(matches!(
        e.c.update_chassis(too_long).await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));

    let mut n = Node::new("fake-hardware");
    n.chassis_uuid = Some(c.uuid);
    let n = e.c.create_node(n).await.unwrap();
    match e.c.delete_chassis(c.uuid).await {
        Err(Error::Invalid(m)) => assert!(m.contains("contains nodes"), "{m}"),
        other => panic!("expected the chassis to be refused, got {other:?}"),
    }
    e.c.delete_node(&id(&n)).await.unwrap();
    let mut renamed = c.clone();
    renamed.description = Some("rack 5".into());
    renamed.created_at = ironic_core::model::now() + chrono::Duration::days(1);
    let updated = e.c.update_chassis(renamed).await.unwrap();
    assert_eq!(updated.created_at, c.created_at, "created_at is kept");
    assert!(updated.updated_at.is_some());
    assert_eq!(next(&mut rx).action, ResourceAction::Updated);
    e.c.delete_chassis(c.uuid).await.unwrap();
    assert_eq!(next(&mut rx).action, ResourceAction::Deleted);
    assert!(matches!(
        e.c.get_chassis(c.uuid).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn volume_changes_need_the_node_powered_off_and_its_lock() {
    let e = env(FakeDeployMode::Sync).await;
    let on = node_with_power(&e, Some(PowerState::On)).await;
    let off = node_with_power(&e, Some(PowerState::Off)).await;

    // Creation needs neither (as in Ironic), but a known type and an existing node.
    let c =
        e.c.create_volume_connector(VolumeConnector::new(
            on.uuid,
            "iqn",
            "iqn.2024-01.org.example:a",
        ))
        .await
        .unwrap();
    assert!(matches!(
        e.c.create_volume_connector(VolumeConnector::new(on.uuid, "fcoe", "x"))
            .await,
        Err(Error::Invalid(_))
    ));
    match e
        .c
        .create_volume_connector(VolumeConnector::new(
            ironic_core::NodeId::new(),
            "iqn",
            "iqn.2024-01.org.example:b",
        ))
        .await
    {
        Err(Error::Invalid(m)) => assert!(m.contains("could not be found"), "{m}"),
        other => panic!("a connector of a missing node: {other:?}"),
    }
    let dup =
        e.c.create_volume_connector(VolumeConnector::new(
            off.uuid,
            "iqn",
            "iqn.2024-01.org.example:a",
        ))
        .await;
    assert!(matches!(dup, Err(Error::Conflict(_))), "{dup:?}");

    // Update and delete: refused while powered on.
    let mut changed = c.clone();
    changed.extra.insert("k".into(), "v".into());
    match e.c.update_volume_connector(changed.clone()).await {
        Err(Error::InvalidState { action, state, .. }) => {
            assert_eq!(action, "volume connector update");
            assert_eq!(state, "power on");
        }
        other => panic!("update while powered on: {other:?}"),
    }
    // The node is `enroll`, a state nodes may be deleted in: deleting is allowed.
    let t =
        e.c.create_volume_target(VolumeTarget::new(on.uuid, "iscsi", "vol-1", 0))
            .await
            .unwrap();
    e.c.delete_volume_target(t.uuid).await.unwrap();

    // Moving the connector to the powered-off node still needs its own node off.
    changed.node_uuid = off.uuid;
    assert!(matches!(
        e.c.update_volume_connector(changed.clone()).await,
        Err(Error::InvalidState { .. })
    ));
    let mut stored = e.store.get_node(&id(&on)).await.unwrap();
    stored.power_state = Some(PowerState::Off);
    e.store.update_node(&stored).await.unwrap();
    let moved = e.c.update_volume_connector(changed).await.unwrap();
    assert_eq!(moved.node_uuid, off.uuid);
    assert_eq!(moved.created_at, c.created_at);
    assert_eq!(
        e.c.list_volume_connectors(Some(&id(&off)))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        e.c.list_volume_connectors(Some(&id(&on)))
            .await
            .unwrap()
            .is_empty()
    );

    // A node locked by someone else: the change waits for it, then fails.
    e.store
        .reserve_node(off.uuid, "another-host")
        .await
        .unwrap();
    match e.c.delete_volume_connector(c.uuid).await {
        Err(Error::NodeLocked { holder, .. }) => assert_eq!(holder, "another-host"),
        other => panic!("delete while locked: {other:?}"),
    }
    e.store
        .release_node(off.uuid, "another-host")
        .await
        .unwrap();
    e.c.delete_volume_connector(c.uuid).await.unwrap();
    assert!(
        e.store
            .get_node(&id(&off))
            .await
            .unwrap()
            .reservation
            .is_none(),
        "the lock is released"
    );

    // Targets: unique boot index per node.
    let t0 =
        e.c.create_volume_target(VolumeTarget::new(off.uuid, "iscsi", "vol-a", 0))
            .await
            .unwrap();
    let clash =
        e.c.create_volume_target(VolumeTarget::new(off.uuid, "iscsi", "vol-b", 0))
            .await;
    assert!(matches!(clash, Err(Error::Conflict(_))), "{clash:?}");
    let mut t0b = t0.clone();
    t0b.boot_index = 3;
    assert_eq!(e.c.update_volume_target(t0b).await.unwrap().boot_index, 3);
    assert!(matches!(
        e.c.create_volume_target(VolumeTarget::new(off.uuid, "", "vol-c", 1))
            .await,
        Err(Error::Invalid(_))
    ));
}

#[tokio::test]
async fn deploy_templates_runbooks_and_allocation_updates_are_validated() {
    let e = env(FakeDeployMode::Sync).await;
    let step =
        |iface: &str| DeployTemplateStep::new(iface, "apply_configuration", JsonMap::new(), 150);
    let t = DeployTemplate::new("CUSTOM_HT_ON", vec![step("bios")]);
    let t = e.c.create_deploy_template(t).await.unwrap();
    let with = |f: &dyn Fn(&mut DeployTemplate)| {
        let mut b = t.clone();
        f(&mut b);
        b
    };
    for bad in [
        with(&|b| b.name = "not a trait".into()),
        with(&|b| b.steps = vec![]),
        with(&|b| b.steps = vec![step("teleport")]),
        with(&|b| b.steps = vec![step("bios"), step("bios")]),
    ] {
        assert!(
            matches!(
                e.c.update_deploy_template(bad.clone()).await,
                Err(Error::Invalid(_))
            ),
            "{bad:?}"
        );
    }
    e.c.delete_deploy_template(&Ident::Name("CUSTOM_HT_ON".into()))
        .await
        .unwrap();

    let rb = Runbook::new(
        "CUSTOM_WIPE",
        vec![RunbookStep {
            interface: "deploy".into(),
            step: "erase_devices".into(),
            args: JsonMap::new(),
            order: 1,
        }],
    );
    let rb = e.c.create_runbook(rb).await.unwrap();
    let mut bad = rb.clone();
    bad.traits = vec!["lower".into()];
    assert!(matches!(
        e.c.update_runbook(bad).await,
        Err(Error::Invalid(_))
    ));
    let mut public = rb.clone();
    public.public = true;
    public.created_at = ironic_core::model::now() + chrono::Duration::days(1);
    let public = e.c.update_runbook(public).await.unwrap();
    assert!(public.public);
    assert_eq!(public.created_at, rb.created_at);
    assert!(matches!(
        e.c.create_runbook(Runbook::new("CUSTOM_WIPE", rb.steps.clone()))
            .await,
        Err(Error::Conflict(_))
    ));

    // Allocation updates change name, extra and owner only.
    let mut a = Allocation::new();
    a.resource_class = Some("none-has-it".into());
    let a = e.c.create_allocation(a).await.unwrap();
    assert_eq!(a.state, AllocationState::Allocating);
    // The worker finds no node of that class.
    let a = loop {
        let cur = e.c.get_allocation(&Ident::Uuid(a.uuid.0)).await.unwrap();
        if cur.state != AllocationState::Allocating {
            break cur;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(a.state, AllocationState::Error);
    let mut u = a.clone();
    u.name = Some("renamed".into());
    u.owner = Some("project-x".into());
    u.state = AllocationState::Active;
    u.resource_class = Some("other".into());
    let u = e.c.update_allocation(u).await.unwrap();
    assert_eq!(u.name.as_deref(), Some("renamed"));
    assert_eq!(u.owner.as_deref(), Some("project-x"));
    assert_eq!(u.state, AllocationState::Error, "state is not the caller's");
    assert_eq!(u.resource_class.as_deref(), Some("none-has-it"));
    let mut bad = u.clone();
    bad.name = Some("has space".into());
    assert!(matches!(
        e.c.update_allocation(bad).await,
        Err(Error::Invalid(_))
    ));
}
