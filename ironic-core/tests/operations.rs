//! The other verbs and API calls: rescue, inspect, adopt, service, allocations,
//! node and port CRUD rules, validation, traits, management calls.

mod common;

use common::*;
use ironic_core::conductor::ProvisionRequest;
use ironic_core::driver::{BootDevice, VifInfo};
use ironic_core::fake::FakeDeployMode;
use ironic_core::ids::Ident;
use ironic_core::model::{Allocation, AllocationState, InterfaceType, JsonMap};
use ironic_core::{Error, ErrorKind, Node, Port, PowerState, ProvisionState as S, Secret};
use serde_json::json;

fn allocation(rc: &str, traits: &[&str]) -> Allocation {
    let mut a = Allocation::new();
    a.resource_class = Some(rc.to_owned());
    a.traits = traits.iter().map(|t| t.to_string()).collect();
    a
}

#[tokio::test]
async fn rescue_and_unrescue_through_the_agent() {
    let e = env(FakeDeployMode::Agent).await;
    let (n, mac) = node_with_port(&e.c, 0x10).await;
    let i = id(&n);
    e.c.update_node(
        {
            let mut n = n.clone();
            n.automated_clean = Some(false);
            n
        },
        false,
    )
    .await
    .unwrap();
    make_available(&e.c, &i).await;
    provision(&e.c, &i, "active").await;
    wait_state(&e.c, &i, S::DeployWait).await;
    let t = agent_lookup(&e.c, mac).await.agent_token;
    for _ in 0..2 {
        heartbeat_once(&e.c, &i, &t).await;
        wait_until(&e.c, &i, "hb", |n| n.provision_state != S::Deploying).await;
    }
    wait_state(&e.c, &i, S::Active).await;
    // rescue needs a password
    let err =
        e.c.provision(&i, ProvisionRequest::new("rescue"))
            .await
            .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    let req = ProvisionRequest::new("rescue").with_rescue_password(Secret::new("s3cret"));
    e.c.provision(&i, req).await.unwrap();
    wait_state(&e.c, &i, S::RescueWait).await;
    let t = agent_lookup(&e.c, mac).await.agent_token;
    heartbeat_once(&e.c, &i, &t).await;
    let n = wait_state(&e.c, &i, S::Rescue).await;
    assert_eq!(n.instance_info["rescue_password"], "s3cret");
    assert!(
        n.internal("agent_secret_token").is_none(),
        "token wiped at the end"
    );
    provision(&e.c, &i, "unrescue").await;
    let n = wait_state(&e.c, &i, S::Active).await;
    assert!(n.instance_info.get("rescue_password").is_none());
    assert_eq!(n.power_state, Some(PowerState::On));
    // rescue wait can be aborted
    let req = ProvisionRequest::new("rescue").with_rescue_password(Secret::new("x"));
    e.c.provision(&i, req).await.unwrap();
    wait_state(&e.c, &i, S::RescueWait).await;
    provision(&e.c, &i, "abort").await;
    let n = wait_state(&e.c, &i, S::RescueFailed).await;
    // as Ironic's _do_node_rescue_abort: no last_error, an informational
    // history entry
    assert_eq!(n.last_error, None);
    let hist = e.c.history(&i).await.unwrap();
    assert!(
        hist.iter().any(
            |h| h.event == "By request, the rescue operation was aborted."
                && h.severity == ironic_core::model::Severity::Info
        ),
        "{hist:?}"
    );
    // and undeployed from there
    provision(&e.c, &i, "deleted").await;
    wait_state(&e.c, &i, S::Available).await;
    e.c.shutdown().await;
}

#[tokio::test]
async fn in_band_inspection_creates_ports_and_merges_properties() {
    let e = env(FakeDeployMode::Agent).await;
    let (n, mac) = node_with_port(&e.c, 0x20).await;
    let i = id(&n);
    provision(&e.c, &i, "manage").await;
    wait_state(&e.c, &i, S::Manageable).await;
    provision(&e.c, &i, "inspect").await;
    let n = wait_state(&e.c, &i, S::InspectWait).await;
    assert!(n.inspection_started_at.is_some());
    let inventory = json!({"inventory": {
        "interfaces": [{"name": "eth0", "mac_address": mac.to_string()},
                       {"name": "eth1", "mac_address": "52:54:00:aa:bb:cc"}],
        "cpu": {"count": 16, "architecture": "x86_64"},
        "memory": {"physical_mb": 65536},
        "disks": [{"name": "/dev/sda", "size": 500u64 * (1 << 30)}],
        "boot": {"current_boot_mode": "uefi", "pxe_interface": mac.to_string()}}});
    let r =
        e.c.continue_inspection(None, inventory.clone())
            .await
            .unwrap();
    assert_eq!(r.node.uuid, n.uuid);
    assert_eq!(r.agent_token.len(), 43);
    let n = wait_state(&e.c, &i, S::Manageable).await;
    assert_eq!(n.properties["cpus"], 16);
    assert_eq!(n.properties["memory_mb"], 65536);
    assert_eq!(n.properties["local_gb"], 499);
    assert_eq!(n.boot_mode.as_deref(), Some("uefi"));
    assert!(n.inspection_finished_at.is_some());
    let ports = e
        .store
        .list_ports(&{
            let mut q = ironic_core::store::PortQuery::default();
            q.node = Some(n.uuid);
            q
        })
        .await
        .unwrap();
    assert_eq!(ports.len(), 2);
    assert!(
        ports
            .iter()
            .any(|p| p.address.to_string() == "52:54:00:aa:bb:cc" && !p.pxe_enabled)
    );
    // stored as Ironic does: the inventory, and the rest as plugin data
    assert_eq!(
        e.store.get_inventory(n.uuid).await.unwrap(),
        Some(json!({"inventory": inventory["inventory"], "plugin_data": {}}))
    );
    // not waiting any more: refused
    assert!(matches!(
        e.c.continue_inspection(Some(n.uuid), json!({})).await,
        Err(Error::InvalidState { .. })
    ));
    // garbage inventory fails inspection with a clear message, nothing created
    provision(&e.c, &i, "inspect").await;
    wait_state(&e.c, &i, S::InspectWait).await;
    e.c.continue_inspection(Some(n.uuid), json!({"inventory": {"interfaces": []}}))
        .await
        .unwrap();
    let n = wait_state(&e.c, &i, S::InspectFailed).await;
    assert!(n.last_error.unwrap().contains("no interfaces"));
    // abort in inspect wait
    provision(&e.c, &i, "inspect").await;
    wait_state(&e.c, &i, S::InspectWait).await;
    provision(&e.c, &i, "abort").await;
    wait_state(&e.c, &i, S::InspectFailed).await;
    provision(&e.c, &i, "manage").await;
    wait_state(&e.c, &i, S::Manageable).await;
    e.c.shutdown().await;
}

#[tokio::test]
async fn adopt_and_service() {
    let e = env(FakeDeployMode::Sync).await;
    let n = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    let i = id(&n);
    provision(&e.c, &i, "manage").await;
    wait_state(&e.c, &i, S::Manageable).await;
    e.fake
        .fail_next("boot.prepare_instance", 1, ErrorKind::Other, false);
    provision(&e.c, &i, "adopt").await;
    let n = wait_state(&e.c, &i, S::AdoptFailed).await;
    assert!(n.last_error.unwrap().contains("adopt"));
    provision(&e.c, &i, "adopt").await;
    wait_state(&e.c, &i, S::Active).await;
    // service with firmware and bios steps
    let req = ProvisionRequest::new("service").with_service_steps(vec![
            json!({"interface": "firmware", "step": "update", "args": {"settings": [{"component": "bmc", "url": "http://x/bmc-2.1.bin"}]}}),
            json!({"interface": "deploy", "step": "hold"}),
        ]);
    e.c.provision(&i, req).await.unwrap();
    let n = wait_state(&e.c, &i, S::ServiceHold).await;
    assert_eq!(n.internal("fake_firmware").unwrap()["bmc"], "bmc-2.1.bin");
    provision(&e.c, &i, "unhold").await;
    wait_state(&e.c, &i, S::Active).await;
    // a failing service step: service failed, maintenance with the fault; abort returns to active
    let req = ProvisionRequest::new("service").with_service_steps(vec![
            json!({"interface": "firmware", "step": "update", "args": {"settings": [{"component": "gpu", "url": "http://x/g"}]}}),
        ]);
    e.c.provision(&i, req).await.unwrap();
    let n = wait_state(&e.c, &i, S::ServiceFailed).await;
    assert!(
        n.last_error.clone().unwrap().contains("firmware.update"),
        "{:?}",
        n.last_error
    );
    assert_eq!(n.fault, Some(ironic_core::model::Fault::ServiceFailure));
    // in maintenance, abort is refused as Ironic's conductor does (InvalidState,
    // 409) until the operator takes the node out of maintenance
    let err = e.c.provision(&i, ProvisionRequest::new("abort")).await;
    assert!(
        matches!(&err, Err(Error::Conflict(m)) if m.contains("maintenance")),
        "{err:?}"
    );
    e.c.set_maintenance(&i, false, None).await.unwrap();
    provision(&e.c, &i, "abort").await;
    wait_state(&e.c, &i, S::Active).await;
    e.c.shutdown().await;
}

/// As Ironic's do_node_service: when no requested step needs the ramdisk
/// (out-of-band firmware/BIOS steps, what Metal3 services with), the steps run
/// at once without booting it; a step that needs it still boots it.
#[tokio::test]
async fn service_boots_the_ramdisk_only_for_steps_that_need_it() {
    let e = env(FakeDeployMode::Agent).await;
    let n = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    let i = id(&n);
    provision(&e.c, &i, "manage").await;
    wait_state(&e.c, &i, S::Manageable).await;
    provision(&e.c, &i, "adopt").await;
    wait_state(&e.c, &i, S::Active).await;
    let req = ProvisionRequest::new("service").with_service_steps(vec![
            json!({"interface": "firmware", "step": "update", "args": {"settings": [{"component": "bmc", "url": "http://x/bmc-2.1.bin"}]}}),
        ]);
    e.c.provision(&i, req).await.unwrap();
    let n = wait_state(&e.c, &i, S::Active).await;
    assert_eq!(n.internal("fake_firmware").unwrap()["bmc"], "bmc-2.1.bin");
    assert_eq!(e.fake.calls("deploy.prepare_service"), 0);
    assert_eq!(e.fake.calls("deploy.tear_down_service"), 0);
    // an in-band step (the default for service steps): the ramdisk boots
    e.fake.set_agent_steps(
        ironic_core::driver::StepKind::Service,
        vec![ironic_core::driver::StepDef::service("burnin_cpu", 0)],
    );
    let req = ProvisionRequest::new("service")
        .with_service_steps(vec![json!({"interface": "deploy", "step": "burnin_cpu"})]);
    e.c.provision(&i, req).await.unwrap();
    wait_state(&e.c, &i, S::ServiceWait).await;
    assert_eq!(e.fake.calls("deploy.prepare_service"), 1);
    e.c.shutdown().await;
}

/// Wait until the background worker has processed an allocation.
async fn settle(c: &ironic_core::Conductor, a: &Allocation) -> Allocation {
    assert_eq!(
        a.state,
        AllocationState::Allocating,
        "an allocation is created allocating, as in Ironic"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let cur = c.get_allocation(&Ident::Uuid(a.uuid.0)).await.unwrap();
        if cur.state != AllocationState::Allocating {
            return cur;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "allocation {} is still allocating",
            a.uuid
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn allocations_pick_matching_available_nodes() {
    let e = env(FakeDeployMode::Sync).await;
    let mut ids = Vec::new();
    for k in 0..3 {
        let mut n = Node::new("fake-hardware");
        n.resource_class = Some(if k < 2 { "gold" } else { "silver" }.into());
        if k == 1 {
            n.traits = vec!["CUSTOM_GPU".into(), "CUSTOM_FAST".into()];
        }
        let n = e.c.create_node(n).await.unwrap();
        make_available(&e.c, &id(&n)).await;
        ids.push(n.uuid);
    }
    let a = e.c.create_allocation(allocation("gold", &["CUSTOM_GPU"]));
    let a = settle(&e.c, &a.await.unwrap()).await;
    assert_eq!(a.state, AllocationState::Active, "{:?}", a.last_error);
    assert_eq!(a.node_uuid, Some(ids[1]));
    let n = e.c.get_node(&ids[1].into()).await.unwrap();
    assert_eq!(n.allocation_uuid, Some(a.uuid));
    assert_eq!(n.instance_uuid, Some(a.uuid.to_string()));
    // The requested traits (not every trait of the node) go to instance_info,
    // as Ironic's update_allocation does.
    assert_eq!(n.instance_info["traits"], json!(["CUSTOM_GPU"]));
    // the GPU node is taken; nothing else matches: Ironic's message
    let b = e.c.create_allocation(allocation("gold", &["CUSTOM_GPU"]));
    let b = settle(&e.c, &b.await.unwrap()).await;
    assert_eq!(b.state, AllocationState::Error);
    assert_eq!(
        b.last_error.as_deref(),
        Some(
            format!(
                "Failed to process allocation {}: no suitable nodes have the requested traits CUSTOM_GPU.",
                b.uuid
            )
            .as_str()
        )
    );
    assert_eq!(b.node_uuid, None);
    // candidate_nodes restrict the choice (given by name or UUID)
    let mut c = allocation("gold", &[]);
    c.candidate_nodes = vec![ids[2].to_string()];
    let c = settle(&e.c, &e.c.create_allocation(c).await.unwrap()).await;
    assert_eq!(c.state, AllocationState::Error);
    assert!(
        c.last_error.unwrap().contains(
            "none of the requested nodes are available and match the resource class gold"
        )
    );
    let mut c = allocation("gold", &[]);
    c.candidate_nodes = vec![ids[0].to_string()];
    let c = settle(&e.c, &e.c.create_allocation(c).await.unwrap()).await;
    assert_eq!(c.node_uuid, Some(ids[0]));
    assert_eq!(c.candidate_nodes, vec![ids[0].to_string()]);
    // an unknown candidate is refused before anything is stored
    let mut bad = allocation("gold", &[]);
    bad.candidate_nodes = vec!["no-such-node".into()];
    assert!(matches!(
        e.c.create_allocation(bad).await,
        Err(Error::Invalid(m)) if m.contains("no-such-node")
    ));
    // deleting frees the node
    e.c.delete_allocation(&Ident::Uuid(a.uuid.0)).await.unwrap();
    let n = e.c.get_node(&ids[1].into()).await.unwrap();
    assert_eq!(n.allocation_uuid, None);
    assert_eq!(n.instance_uuid, None);
    // undeploy deletes the allocation of a deployed node
    let a = e.c.create_allocation(allocation("gold", &["CUSTOM_GPU"]));
    let a = settle(&e.c, &a.await.unwrap()).await;
    assert_eq!(a.node_uuid, Some(ids[1]));
    provision(&e.c, &ids[1].into(), "active").await;
    wait_state(&e.c, &ids[1].into(), S::Active).await;
    assert!(matches!(
        e.c.delete_allocation(&Ident::Uuid(a.uuid.0)).await,
        Err(Error::InvalidState { .. })
    ));
    provision(&e.c, &ids[1].into(), "deleted").await;
    let n = wait_state(&e.c, &ids[1].into(), S::Available).await;
    assert_eq!(n.allocation_uuid, None);
    assert!(
        e.store
            .get_allocation(&Ident::Uuid(a.uuid.0))
            .await
            .is_err()
    );
    e.c.shutdown().await;
}

#[tokio::test]
async fn allocations_backfill_deployed_nodes() {
    let e = env(FakeDeployMode::Sync).await;
    let mut n = Node::new("fake-hardware");
    n.resource_class = Some("gold".into());
    n.traits = vec!["CUSTOM_GPU".into()];
    let n = e.c.create_node(n).await.unwrap();
    let i = id(&n);
    make_available(&e.c, &i).await;
    // Not active yet: the backfill is refused with Ironic's reasons, and the
    // allocation stays in error.
    let mut a = allocation("silver", &["CUSTOM_NONE"]);
    a.node_uuid = Some(n.uuid);
    let uuid = a.uuid;
    let err = e.c.create_allocation(a).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    for part in [
        "Cannot backfill an allocation for node",
        "Node must be in the \"active\" state, but the current state is \"available\"",
        "Resource class gold does not match the requested resource class silver",
        "List of traits ['CUSTOM_GPU'] does not match the requested traits ['CUSTOM_NONE']",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
    let failed = e.c.get_allocation(&Ident::Uuid(uuid.0)).await.unwrap();
    assert_eq!(failed.state, AllocationState::Error);
    assert_eq!(failed.last_error.as_deref(), Some(msg.as_str()));
    e.c.delete_allocation(&Ident::Uuid(uuid.0)).await.unwrap();
    // Deployed without an allocation, then backfilled: active at once, the
    // resource class taken from the node.
    provision(&e.c, &i, "active").await;
    wait_state(&e.c, &i, S::Active).await;
    let mut a = allocation("", &["CUSTOM_GPU"]);
    a.resource_class = None;
    a.node_uuid = Some(n.uuid);
    let a = e.c.create_allocation(a).await.unwrap();
    assert_eq!(a.state, AllocationState::Active);
    assert_eq!(a.node_uuid, Some(n.uuid));
    assert_eq!(a.resource_class.as_deref(), Some("gold"));
    let got = e.c.get_node(&i).await.unwrap();
    assert_eq!(got.allocation_uuid, Some(a.uuid));
    assert_eq!(got.instance_uuid, Some(a.uuid.to_string()));
    // A node already associated with another instance: 409.
    let mut other = allocation("gold", &[]);
    other.node_uuid = Some(n.uuid);
    assert!(matches!(
        e.c.create_allocation(other).await,
        Err(Error::Conflict(_))
    ));
    e.c.shutdown().await;
}

#[tokio::test]
async fn allocations_left_allocating_resume_on_start() {
    let e = env(FakeDeployMode::Sync).await;
    let mut n = Node::new("fake-hardware");
    n.resource_class = Some("gold".into());
    let n = e.c.create_node(n).await.unwrap();
    make_available(&e.c, &id(&n)).await;
    // As if a conductor had stopped between storing and processing it.
    let mut a = allocation("gold", &[]);
    a.conductor_affinity = Some(e.c.config().host.clone());
    e.store.create_allocation(&a).await.unwrap();
    e.c.shutdown().await;
    let c = ironic_core::Conductor::start(
        e.store.clone(),
        e.c.registry().clone(),
        e.c.config().clone(),
    )
    .await
    .unwrap();
    let a = settle(&c, &a).await;
    assert_eq!(a.state, AllocationState::Active, "{:?}", a.last_error);
    assert_eq!(a.node_uuid, Some(n.uuid));
    c.shutdown().await;
}

#[tokio::test]
async fn node_rules() {
    let e = env(FakeDeployMode::Sync).await;
    // bad name, unknown driver (lists the known ones), unknown interface
    let mut n = Node::new("fake-hardware");
    n.name = Some("has space".into());
    assert!(matches!(e.c.create_node(n).await, Err(Error::Invalid(_))));
    let err = e.c.create_node(Node::new("nope")).await.unwrap_err();
    assert!(err.to_string().contains("fake-hardware"), "{err}");
    let mut n = Node::new("fake-hardware");
    n.interfaces.power_interface = "ipmi".into();
    assert!(matches!(e.c.create_node(n).await, Err(Error::Invalid(_))));
    let mut n = Node::new("fake-hardware");
    n.traits = vec!["lowercase".into()];
    assert!(matches!(e.c.create_node(n).await, Err(Error::Invalid(_))));
    // names unique
    let mut n = Node::new("fake-hardware");
    n.name = Some("node-1".into());
    let n1 = e.c.create_node(n.clone()).await.unwrap();
    n.uuid = ironic_core::NodeId::new();
    let err = e.c.create_node(n).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(e.c.get_node(&"node-1".into()).await.unwrap().uuid, n1.uuid);
    // interfaces default from the hardware type; validate reports every interface
    let v = e.c.validate(&"node-1".into()).await.unwrap();
    assert_eq!(v.len(), 13);
    assert!(v.values().all(|r| r.result == Some(true)), "{v:?}");
    e.fake
        .fail_next("power.validate", 1, ErrorKind::MissingParameter, false);
    let v = e.c.validate(&"node-1".into()).await.unwrap();
    assert_eq!(v[&InterfaceType::Power].result, Some(false));
    assert!(
        v[&InterfaceType::Power]
            .reason
            .as_ref()
            .unwrap()
            .contains("injected")
    );
    assert_eq!(
        e.fake.calls("power.get_power_state"),
        0,
        "validate never contacts the BMC"
    );
    // update: fields the API may not change are kept
    let mut upd = n1.clone();
    upd.provision_state = S::Active;
    upd.extra.insert("rack".into(), json!("r1"));
    upd.interfaces.boot_interface = "fake".into();
    let got = e.c.update_node(upd, false).await.unwrap();
    assert_eq!(got.provision_state, S::Enroll);
    assert_eq!(got.extra["rack"], "r1");
    // reset_interfaces after a driver change
    let mut upd = got.clone();
    upd.driver = "fake-hardware".into();
    assert_eq!(
        e.c.update_node(upd, true)
            .await
            .unwrap()
            .interfaces
            .power_interface,
        "fake"
    );
    // traits
    let n = e.c.add_trait(&"node-1".into(), "CUSTOM_A").await.unwrap();
    assert_eq!(n.traits, ["CUSTOM_A"]);
    assert_eq!(
        e.c.add_trait(&"node-1".into(), "CUSTOM_A")
            .await
            .unwrap()
            .traits
            .len(),
        1
    );
    assert!(matches!(
        e.c.remove_trait(&"node-1".into(), "CUSTOM_B").await,
        Err(Error::NotFound { .. })
    ));
    assert!(
        e.c.set_traits(&"node-1".into(), vec![])
            .await
            .unwrap()
            .traits
            .is_empty()
    );
    // instance traits must be node traits
    let i: ironic_core::Ident = "node-1".into();
    make_available(&e.c, &i).await;
    let mut upd = e.c.get_node(&i).await.unwrap();
    upd.instance_info
        .insert("traits".into(), json!(["CUSTOM_X"]));
    e.c.update_node(upd, false).await.unwrap();
    let err =
        e.c.provision(&i, ProvisionRequest::new("active"))
            .await
            .unwrap_err();
    assert!(err.to_string().contains("CUSTOM_X"), "{err}");
    // maintenance refuses deploy
    e.c.set_maintenance(&i, true, Some("x".into()))
        .await
        .unwrap();
    assert!(matches!(
        e.c.provision(&i, ProvisionRequest::new("active")).await,
        Err(Error::InMaintenance(_))
    ));
    e.c.set_maintenance(&i, false, None).await.unwrap();
    // delete: not while associated, allowed when available
    let mut upd = e.c.get_node(&i).await.unwrap();
    upd.instance_uuid = Some("inst-1".into());
    upd.instance_info.clear();
    e.c.update_node(upd, false).await.unwrap();
    assert!(matches!(e.c.delete_node(&i).await, Err(Error::Conflict(_))));
    let mut upd = e.c.get_node(&i).await.unwrap();
    upd.instance_uuid = None;
    e.c.update_node(upd, false).await.unwrap();
    e.c.delete_node(&i).await.unwrap();
    assert!(matches!(
        e.c.get_node(&i).await,
        Err(Error::NotFound { .. })
    ));
    // unknown target
    assert!(matches!(
        e.c.provision(&n1.uuid.into(), ProvisionRequest::new("explode"))
            .await,
        Err(Error::Invalid(_)) | Err(Error::NotFound { .. })
    ));
    e.c.shutdown().await;
}

#[tokio::test]
async fn update_is_refused_during_a_transition() {
    let e = env(FakeDeployMode::Agent).await;
    let (n, _) = node_with_port(&e.c, 0x30).await;
    let i = id(&n);
    provision(&e.c, &i, "manage").await;
    wait_state(&e.c, &i, S::Manageable).await;
    provision(&e.c, &i, "provide").await;
    let n = wait_state(&e.c, &i, S::CleanWait).await;
    let err = e.c.update_node(n.clone(), false).await.unwrap_err();
    assert!(
        err.to_string().contains("state transition is in progress"),
        "{err}"
    );
    e.c.shutdown().await;
}

#[tokio::test]
async fn ports_vifs_and_management_calls() {
    let e = env(FakeDeployMode::Sync).await;
    let (n, mac) = node_with_port(&e.c, 0x40).await;
    let i = id(&n);
    // MAC addresses are unique
    let err = e.c.create_port(Port::new(n.uuid, mac)).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    // ports need an existing node
    assert!(
        e.c.create_port(Port::new(
            ironic_core::NodeId::new(),
            "52:54:00:99:99:99".parse().unwrap()
        ))
        .await
        .is_err()
    );
    // VIFs
    e.c.vif_attach(&i, VifInfo::new("vif-1")).await.unwrap();
    assert_eq!(e.c.vif_list(&i).await.unwrap(), ["vif-1"]);
    let err = e.c.vif_attach(&i, VifInfo::new("vif-2")).await.unwrap_err();
    assert!(err.to_string().contains("not enough free"), "{err}");
    // boot device
    e.c.set_boot_device(&i, BootDevice::Disk, true)
        .await
        .unwrap();
    let b = e.c.get_boot_device(&i).await.unwrap();
    assert_eq!(
        (b.boot_device, b.persistent),
        (Some(BootDevice::Disk), Some(true))
    );
    let err =
        e.c.set_boot_device(&i, BootDevice::Wanboot, false)
            .await
            .unwrap_err();
    assert!(
        matches!(&err, Error::Driver(d) if d.kind() == ErrorKind::InvalidParameter),
        "{err:?}"
    );
    assert!(!e.c.get_sensors_data(&i).await.unwrap().is_empty());
    // console
    assert_eq!(e.c.get_console(&i).await.unwrap(), None);
    e.c.set_console_mode(&i, true).await.unwrap();
    assert_eq!(e.c.get_console(&i).await.unwrap().unwrap().kind, "fake");
    // vendor passthru
    let out =
        e.c.vendor_passthru(&i, "echo", "POST", json!({"a": 1}))
            .await
            .unwrap();
    assert_eq!(out, json!({"a": 1}));
    assert!(
        e.c.vendor_passthru(&i, "nope", "POST", json!({}))
            .await
            .is_err()
    );
    // RAID config is checked by the RAID interface
    assert!(
        e.c.set_target_raid_config(&i, JsonMap::from_iter([("x".to_string(), json!(1))]))
            .await
            .is_err()
    );
    let cfg = JsonMap::from_iter([(
        "logical_disks".to_string(),
        json!([{"size_gb": 100, "raid_level": "1"}]),
    )]);
    e.c.set_target_raid_config(&i, cfg.clone()).await.unwrap();
    assert_eq!(e.c.get_node(&i).await.unwrap().target_raid_config, cfg);
    // power: unsupported timeout value, and a failing BMC is recorded in last_error
    assert!(
        e.c.set_power_state(
            &i,
            ironic_core::PowerAction::PowerOn,
            Some(std::time::Duration::ZERO)
        )
        .await
        .is_err()
    );
    e.fake
        .fail_next("power.set_power_state", 1, ErrorKind::Unreachable, false);
    e.c.set_power_state(&i, ironic_core::PowerAction::PowerOn, None)
        .await
        .unwrap();
    let n = wait_until(&e.c, &i, "power failed", |n| {
        n.target_power_state.is_none() && n.last_error.is_some()
    })
    .await;
    assert!(
        n.last_error
            .unwrap()
            .contains("Failed to change power state")
    );
    assert_eq!(n.power_state, None, "unchanged after a failed action");
    e.c.shutdown().await;
}

#[tokio::test]
async fn secrets_never_show_in_errors() {
    let e = env(FakeDeployMode::Agent).await;
    let (n, mac) = node_with_port(&e.c, 0x50).await;
    let i = id(&n);
    provision(&e.c, &i, "manage").await;
    wait_state(&e.c, &i, S::Manageable).await;
    provision(&e.c, &i, "provide").await;
    wait_state(&e.c, &i, S::CleanWait).await;
    let r = agent_lookup(&e.c, mac).await;
    let dbg = format!("{r:?}");
    assert!(
        !dbg.contains(&r.agent_token),
        "LookupResult Debug leaks the token"
    );
    let err =
        e.c.heartbeat(
            &i,
            &format!("{}x", r.agent_token),
            hb("http://127.0.0.1:9999"),
        )
        .await
        .unwrap_err();
    assert!(!err.to_string().contains(&r.agent_token));
    e.c.shutdown().await;
}

#[tokio::test]
async fn deploy_templates_matching_instance_traits_add_steps() {
    use ironic_core::model::{DeployTemplate, DeployTemplateStep};
    let e = env(FakeDeployMode::Sync).await;
    let mut n = Node::new("fake-hardware");
    n.traits = vec!["CUSTOM_RAID1".into(), "CUSTOM_OTHER".into()];
    let n = e.c.create_node(n).await.unwrap();
    let i = id(&n);
    make_available(&e.c, &i).await;
    let tmpl = DeployTemplate::new(
        "CUSTOM_RAID1",
        vec![
            DeployTemplateStep::new(
                "raid",
                "apply_configuration",
                JsonMap::from_iter([(
                    "raid_config".to_string(),
                    json!({"logical_disks": [{"size_gb": 10, "raid_level": "1"}]}),
                )]),
                90,
            ),
            DeployTemplateStep::new(
                "deploy",
                "wait",
                JsonMap::from_iter([("seconds".to_string(), json!(0.05))]),
                85,
            ),
        ],
    );
    e.store.create_deploy_template(&tmpl).await.unwrap();
    let mut upd = e.c.get_node(&i).await.unwrap();
    upd.instance_info
        .insert("traits".into(), json!(["CUSTOM_RAID1"]));
    e.c.update_node(upd, false).await.unwrap();
    let mut events = e.c.subscribe();
    provision(&e.c, &i, "active").await;
    let n = wait_state(&e.c, &i, S::Active).await;
    assert_eq!(
        n.raid_config["logical_disks"][0]["raid_level"], "1",
        "the template's RAID step ran"
    );
    // the wait step ran between, the deploy step list order followed priorities
    let mut order = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let ironic_core::NodeEvent::ProvisionStateChanged { to, .. } = ev {
            order.push(to);
        }
    }
    assert_eq!(order, [S::Deploying, S::Active]);
    e.c.shutdown().await;
}
