//! Lifecycle tests of the conductor over fake hardware.

mod common;

use common::*;
use ironic_core::fake::FakeDeployMode;
use ironic_core::{Node, PowerState, ProvisionState as S};

#[tokio::test]
async fn enroll_to_active_and_back_with_sync_fakes() {
    let e = env(FakeDeployMode::Sync).await;
    let n = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    assert_eq!(n.provision_state, S::Enroll);
    assert_eq!(n.interfaces.power_interface, "fake");
    let i = id(&n);
    provision(&e.c, &i, "manage").await;
    let n = wait_state(&e.c, &i, S::Manageable).await;
    assert_eq!(n.power_state, Some(PowerState::Off));
    provision(&e.c, &i, "provide").await;
    wait_state(&e.c, &i, S::Available).await;
    provision(&e.c, &i, "active").await;
    let n = wait_state(&e.c, &i, S::Active).await;
    assert_eq!(n.power_state, Some(PowerState::On));
    assert!(n.deploy_step.is_empty());
    assert_eq!(n.target_provision_state, None);
    provision(&e.c, &i, "deleted").await;
    let n = wait_state(&e.c, &i, S::Available).await;
    assert_eq!(n.power_state, Some(PowerState::Off));
    assert!(n.last_error.is_none());
    e.c.shutdown().await;
}

#[tokio::test]
async fn manual_management_needs_generic_boot_and_deploy_and_says_so() {
    let e = env(FakeDeployMode::Sync).await;
    let err =
        e.c.create_node(Node::new("manual-management"))
            .await
            .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("manual-management") && msg.contains("boot"),
        "{msg}"
    );
    // with fake power/management chosen explicitly it still needs a generic boot interface
    let mut n = Node::new("manual-management");
    n.interfaces.power_interface = "fake".into();
    assert!(e.c.create_node(n).await.is_err());
    e.c.shutdown().await;
}

#[tokio::test]
async fn wait_for_provision_state_returns_the_node_or_says_why_not() {
    use ironic_core::conductor::WaitError;
    use std::time::Duration;
    let e = env(FakeDeployMode::Sync).await;
    let n = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    let i = id(&n);
    provision(&e.c, &i, "manage").await;
    let n =
        e.c.wait_for_provision_state(&i, S::Manageable, Duration::from_secs(10))
            .await
            .unwrap();
    assert_eq!(n.provision_state, S::Manageable);
    assert!(n.reservation.is_none());
    provision(&e.c, &i, "provide").await;
    e.c.wait_for_provision_state(&i, S::Available, Duration::from_secs(10))
        .await
        .unwrap();
    // a state that will not come: the time is up
    let err =
        e.c.wait_for_provision_state(&i, S::Active, Duration::from_millis(300))
            .await
            .unwrap_err();
    assert!(matches!(err, WaitError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("\"available\""), "{err}");
    // a deploy that fails ends the wait at once, with the node's last_error
    e.fake.fail_next(
        "boot.prepare_instance",
        1,
        ironic_core::ErrorKind::Other,
        false,
    );
    provision(&e.c, &i, "active").await;
    let err =
        e.c.wait_for_provision_state(&i, S::Active, Duration::from_secs(10))
            .await
            .unwrap_err();
    let WaitError::Failed { node, want } = &err else {
        panic!("{err}")
    };
    assert_eq!((node.provision_state, *want), (S::DeployFailed, S::Active));
    assert!(err.to_string().contains("prepare_instance"), "{err}");
    e.c.shutdown().await;
}
