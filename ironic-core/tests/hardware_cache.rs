//! What the conductor records from the BMC (vendor, boot mode, secure boot,
//! health, BIOS settings, firmware components) and when: verification, power
//! sync, cleaning, BIOS steps, inspection; and that a failing read never fails
//! the operation nor loses what was recorded.

mod common;

use common::*;
use ironic_core::conductor::ProvisionRequest;
use ironic_core::fake::FakeDeployMode;
use ironic_core::{ErrorKind, Node, ProvisionState as S};
use serde_json::json;

async fn managed(e: &Env) -> (Node, ironic_core::ids::Ident) {
    let n = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    let i = id(&n);
    provision(&e.c, &i, "manage").await;
    let n = wait_state(&e.c, &i, S::Manageable).await;
    (n, i)
}

#[tokio::test]
async fn verification_caches_vendor_boot_mode_bios_and_firmware() {
    let e = env(FakeDeployMode::Sync).await;
    let (n, _) = managed(&e).await;
    assert_eq!(n.properties["vendor"], "fake", "{:?}", n.properties);
    assert_eq!(n.secure_boot, Some(false));
    let bios = e.store.get_bios_settings(n.uuid).await.unwrap();
    assert!(!bios.is_empty(), "BIOS settings cached at verification");
    assert!(bios.iter().all(|s| s.created_at.is_some()));
    let fw = e.store.get_firmware_components(n.uuid).await.unwrap();
    let names: Vec<&str> = fw.iter().map(|c| c.component.as_str()).collect();
    assert_eq!(names, ["bios", "bmc"]);
    assert!(
        fw.iter()
            .all(|c| c.initial_version == c.current_version && c.last_version_flashed.is_none())
    );
}

#[tokio::test]
async fn a_failing_read_never_fails_verification_nor_drops_what_is_known() {
    let e = env(FakeDeployMode::Sync).await;
    let mut n = Node::new("fake-hardware");
    n.properties.insert("vendor".into(), json!("Contoso"));
    let n = e.c.create_node(n).await.unwrap();
    let i = id(&n);
    e.fake
        .fail_next("management.get_boot_mode", 1, ErrorKind::Unreachable, false);
    e.fake
        .fail_next("bios.cache_bios_settings", 1, ErrorKind::Other, false);
    e.fake.fail_next(
        "firmware.cache_firmware_components",
        1,
        ErrorKind::Unsupported,
        false,
    );
    provision(&e.c, &i, "manage").await;
    let n = wait_state(&e.c, &i, S::Manageable).await;
    assert_eq!(n.last_error, None);
    assert_eq!(n.properties["vendor"], "Contoso", "a known vendor is kept");
    assert_eq!(
        e.fake.calls("management.detect_vendor"),
        0,
        "the vendor is not asked again once known"
    );
    assert_eq!(
        n.secure_boot, None,
        "boot mode read failed: nothing recorded"
    );
    assert!(e.store.get_bios_settings(n.uuid).await.unwrap().is_empty());
    assert!(
        e.store
            .get_firmware_components(n.uuid)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn power_sync_records_health_changes_in_the_history() {
    let e = env(FakeDeployMode::Sync).await;
    let (n, i) = managed(&e).await;
    assert_eq!(n.health, None, "health is read by the power sync only");
    e.c.sync_power_states().await;
    let n = e.c.get_node(&i).await.unwrap();
    assert_eq!(n.health.as_deref(), Some("OK"));
    e.fake.set_health(n.uuid, "critical");
    e.c.sync_power_states().await;
    let n = e.c.get_node(&i).await.unwrap();
    assert_eq!(n.health.as_deref(), Some("Critical"));
    // a value outside Ironic's states is ignored; a failed read keeps the last one
    e.fake.set_health(n.uuid, "Degraded");
    e.c.sync_power_states().await;
    e.fake.fail_next(
        "management.get_node_health",
        1,
        ErrorKind::Unreachable,
        false,
    );
    e.c.sync_power_states().await;
    let n = e.c.get_node(&i).await.unwrap();
    assert_eq!(n.health.as_deref(), Some("Critical"));
    let h = e.c.history(&i).await.unwrap();
    let monitoring: Vec<&str> = h
        .iter()
        .filter(|e| e.event_type == "monitoring")
        .map(|e| e.event.as_str())
        .collect();
    assert_eq!(
        monitoring,
        [
            "Node health status changed: health='OK' (previously 'None')",
            "Node health status changed: health='Critical' (previously 'OK')",
        ]
    );
}

#[tokio::test]
async fn health_monitoring_can_be_turned_off() {
    let mut cfg = test_config();
    cfg.enable_health_monitoring = false;
    let e = env_with(cfg, FakeDeployMode::Sync).await;
    let (_, i) = managed(&e).await;
    e.c.sync_power_states().await;
    assert_eq!(e.c.get_node(&i).await.unwrap().health, None);
    assert_eq!(e.fake.calls("management.get_node_health"), 0);
}

#[tokio::test]
async fn power_sync_fills_a_vendor_missed_at_verification() {
    let e = env(FakeDeployMode::Sync).await;
    let n = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    let i = id(&n);
    e.fake
        .fail_next("management.detect_vendor", 1, ErrorKind::Unreachable, false);
    provision(&e.c, &i, "manage").await;
    let n = wait_state(&e.c, &i, S::Manageable).await;
    assert!(n.properties.get("vendor").is_none());
    e.c.sync_power_states().await;
    let n = e.c.get_node(&i).await.unwrap();
    assert_eq!(n.properties["vendor"], "fake");
    let calls = e.fake.calls("management.detect_vendor");
    e.c.sync_power_states().await;
    assert_eq!(e.fake.calls("management.detect_vendor"), calls);
}

#[tokio::test]
async fn bios_steps_and_cleaning_refresh_the_caches() {
    let e = env(FakeDeployMode::Sync).await;
    let (n, i) = managed(&e).await;
    let before = e.store.get_bios_settings(n.uuid).await.unwrap();
    let steps = json!([{
        "interface": "bios",
        "step": "apply_configuration",
        "args": {"settings": [{"name": "ProcVirtualization", "value": "Disabled"}]}
    }]);
    let req = ProvisionRequest::new("clean").with_clean_steps(steps.as_array().unwrap().clone());
    e.c.provision(&i, req).await.unwrap();
    let n = wait_state(&e.c, &i, S::Manageable).await;
    assert_eq!(n.last_error, None);
    let after = e.store.get_bios_settings(n.uuid).await.unwrap();
    let lp = after
        .iter()
        .find(|s| s.name == "ProcVirtualization")
        .unwrap();
    assert_eq!(lp.value.as_deref(), Some("Disabled"));
    let old = before
        .iter()
        .find(|s| s.name == "ProcVirtualization")
        .unwrap();
    assert_eq!(lp.created_at, old.created_at, "same setting, same record");
    assert!(lp.updated_at.is_some(), "a changed value is stamped");
}
