//! Locks, workers, periodic tasks, crash recovery, shutdown.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ironic_core::conductor::{ConductorConfig, ProvisionRequest};
use ironic_core::fake::{Delay, FakeDeployMode};
use ironic_core::model::Fault;
use ironic_core::model::InterfaceType;
use ironic_core::store::{MemoryStore, Store};
use ironic_core::{Error, ErrorKind, Node, PowerAction, PowerState, ProvisionState as S};

#[tokio::test]
async fn second_exclusive_operation_gets_node_locked() {
    let e = env(FakeDeployMode::Sync).await;
    let n = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    let i = id(&n);
    e.fake.set_delay(
        InterfaceType::Power,
        Delay::Fixed(Duration::from_millis(300)),
    );
    e.c.set_power_state(&i, PowerAction::PowerOn, None)
        .await
        .unwrap();
    let locked = e.c.get_node(&i).await.unwrap();
    assert_eq!(
        locked.reservation.as_deref(),
        Some(e.c.config().host.as_str())
    );
    assert_eq!(locked.target_power_state, Some(PowerAction::PowerOn));
    let err =
        e.c.set_power_state(&i, PowerAction::PowerOff, None)
            .await
            .unwrap_err();
    match &err {
        Error::NodeLocked { holder, .. } => assert_eq!(holder, &e.c.config().host),
        other => panic!("expected NodeLocked, got {other:?}"),
    }
    assert!(err.to_string().contains("is locked by host"), "{err}");
    let err =
        e.c.provision(&i, ProvisionRequest::new("manage"))
            .await
            .unwrap_err();
    assert!(matches!(err, Error::NodeLocked { .. }), "{err:?}");
    // an action the state machine refuses on a locked node is reported as locked too (API pre-check)
    let err =
        e.c.provision(&i, ProvisionRequest::new("active"))
            .await
            .unwrap_err();
    assert!(matches!(err, Error::NodeLocked { .. }), "{err:?}");
    let n = wait_until(&e.c, &i, "power on done", |n| {
        n.target_power_state.is_none()
    })
    .await;
    assert_eq!(n.power_state, Some(PowerState::On));
    // unlocked: an invalid action is InvalidState
    let err =
        e.c.provision(&i, ProvisionRequest::new("active"))
            .await
            .unwrap_err();
    assert!(matches!(err, Error::InvalidState { .. }), "{err:?}");
    e.c.shutdown().await;
}

#[tokio::test]
async fn lock_retries_wait_for_the_holder() {
    let mut cfg = test_config();
    cfg.node_locked_retry_attempts = 3;
    cfg.node_locked_retry_interval = Duration::from_millis(200);
    let e = env_with(cfg, FakeDeployMode::Sync).await;
    let n = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    let i = id(&n);
    e.fake.set_delay(
        InterfaceType::Power,
        Delay::Fixed(Duration::from_millis(150)),
    );
    e.c.set_power_state(&i, PowerAction::PowerOn, None)
        .await
        .unwrap();
    // retried until the power action released the lock
    e.c.set_maintenance(&i, true, Some("disk swap".into()))
        .await
        .unwrap();
    let n = e.c.get_node(&i).await.unwrap();
    assert!(n.maintenance);
    assert_eq!(n.power_state, Some(PowerState::On));
    e.c.shutdown().await;
}

#[tokio::test]
async fn a_full_worker_pool_refuses_with_no_free_worker_and_changes_nothing() {
    let mut cfg = test_config();
    cfg.max_concurrent_operations = 1;
    let e = env_with(cfg, FakeDeployMode::Sync).await;
    let a = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    let b = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    e.fake.set_delay(
        InterfaceType::Power,
        Delay::Fixed(Duration::from_millis(300)),
    );
    e.c.set_power_state(&id(&a), PowerAction::PowerOn, None)
        .await
        .unwrap();
    assert_eq!(e.c.running_operations(), 1);
    let err =
        e.c.provision(&id(&b), ProvisionRequest::new("manage"))
            .await
            .unwrap_err();
    assert!(matches!(err, Error::NoFreeWorker), "{err:?}");
    let b2 = e.c.get_node(&id(&b)).await.unwrap();
    assert_eq!(b2.provision_state, S::Enroll);
    assert!(b2.reservation.is_none(), "the lock was released");
    e.c.shutdown().await;
}

#[tokio::test]
async fn callback_timeout_fails_the_wait_state() {
    let mut cfg = test_config();
    cfg.check_provision_state_interval = Duration::from_millis(50);
    cfg.deploy_callback_timeout = Duration::from_millis(300);
    cfg.clean_callback_timeout = Duration::from_millis(300);
    let e = env_with(cfg, FakeDeployMode::Agent).await;
    let (n, mac) = node_with_port(&e.c, 9).await;
    let i = id(&n);
    provision(&e.c, &i, "manage").await;
    wait_state(&e.c, &i, S::Manageable).await;
    provision(&e.c, &i, "provide").await;
    wait_state(&e.c, &i, S::CleanWait).await;
    // heartbeats keep it alive for longer than the timeout (two steps, two heartbeats)
    let t = agent_lookup(&e.c, mac).await.agent_token;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        e.c.heartbeat(&i, &t, hb("http://127.0.0.1:9999"))
            .await
            .unwrap();
        wait_until(&e.c, &i, "heartbeat handled", |_| true).await;
    }
    assert_ne!(
        e.c.get_node(&i).await.unwrap().provision_state,
        S::CleanFailed
    );
    // then silence: clean failed with the step named
    let n = wait_state(&e.c, &i, S::CleanFailed).await;
    let err = n.last_error.clone().unwrap();
    assert!(
        err.starts_with("Timeout reached while cleaning the node"),
        "{err}"
    );
    assert!(err.contains("erase_devices"), "{err}");
    assert_eq!(e.fake.node(n.uuid).boot_target, None, "ramdisk torn down");
    assert!(n.internal("agent_secret_token").is_none());

    // deploy wait timeout
    provision(&e.c, &i, "manage").await;
    wait_state(&e.c, &i, S::Manageable).await;
    e.c.update_node(
        {
            let mut n = e.c.get_node(&i).await.unwrap();
            n.automated_clean = Some(false);
            n
        },
        false,
    )
    .await
    .unwrap();
    provision(&e.c, &i, "provide").await;
    wait_state(&e.c, &i, S::Available).await;
    provision(&e.c, &i, "active").await;
    let n = wait_state(&e.c, &i, S::DeployFailed).await;
    assert!(
        n.last_error
            .unwrap()
            .starts_with("Timeout reached while waiting for callback")
    );
    e.c.shutdown().await;
}

#[tokio::test]
async fn power_sync_failures_put_the_node_into_maintenance_and_recovery_clears_it() {
    let mut cfg = test_config();
    cfg.power_state_sync_interval = Duration::from_millis(30);
    cfg.power_failure_recovery_interval = Duration::from_millis(50);
    let e = env_with(cfg, FakeDeployMode::Sync).await;
    let n = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    let i = id(&n);
    make_available(&e.c, &i).await;
    let mut events = e.c.subscribe();
    e.fake
        .fail_with_probability("power.get_power_state", 1.0, ErrorKind::Unreachable, true);
    let n = wait_until(&e.c, &i, "maintenance", |n| n.maintenance).await;
    assert_eq!(n.fault, Some(Fault::PowerFailure));
    assert_eq!(n.power_state, None);
    assert!(
        n.maintenance_reason
            .unwrap()
            .contains("max retries exceeded")
    );
    assert!(e.fake.calls("power.get_power_state") >= 3);
    let hist = e.c.history(&i).await.unwrap();
    assert!(hist.iter().any(|h| h.event_type == "power"));
    // the BMC answers again: recovery clears maintenance and the fault
    e.fake.clear_failures();
    let n = wait_until(&e.c, &i, "recovered", |n| !n.maintenance).await;
    assert_eq!(n.fault, None);
    assert_eq!(n.maintenance_reason, None);
    assert_eq!(n.power_state, Some(PowerState::Off));
    let mut maint = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let ironic_core::NodeEvent::MaintenanceChanged { maintenance, .. } = ev {
            maint.push(maintenance);
        }
    }
    assert_eq!(maint, [true, false]);

    // maintenance set by an operator is never cleared by recovery
    e.c.set_maintenance(&i, true, Some("operator".into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(e.c.get_node(&i).await.unwrap().maintenance);
    e.c.shutdown().await;
}

#[tokio::test]
async fn power_sync_forces_the_recorded_state() {
    let mut cfg = test_config();
    cfg.power_state_sync_interval = Duration::from_millis(30);
    let e = env_with(cfg, FakeDeployMode::Sync).await;
    let n = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    let i = id(&n);
    make_available(&e.c, &i).await;
    provision(&e.c, &i, "active").await;
    let n = wait_state(&e.c, &i, S::Active).await;
    assert_eq!(n.power_state, Some(PowerState::On));
    // someone pressed the power button
    e.fake.set_power(n.uuid, PowerState::Off);
    tokio::time::timeout(Duration::from_secs(5), async {
        while e.fake.node(n.uuid).power != Some(PowerState::On) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the sync powered the node back on");
    e.c.shutdown().await;
}

#[tokio::test]
async fn restart_fails_stuck_nodes_and_clears_own_locks() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let cfg = test_config();
    let host = cfg.host.clone();
    // a conductor "crashes" mid-deploy: we write what it would have left
    let mut stuck = Node::new("fake-hardware");
    stuck.interfaces = {
        let mut reg = ironic_core::InterfaceRegistry::with_noop();
        ironic_core::fake::register(&mut reg, Default::default());
        let mut n = stuck.clone();
        reg.resolve_interfaces(&mut n).unwrap();
        n.interfaces
    };
    stuck.provision_state = S::Deploying;
    stuck.target_provision_state = Some(S::Active);
    store.create_node(&stuck).await.unwrap();
    store.reserve_node(stuck.uuid, &host).await.unwrap();
    let mut waiting = stuck.clone();
    waiting.uuid = ironic_core::NodeId::new();
    waiting.provision_state = S::DeployWait;
    store.create_node(&waiting).await.unwrap();
    let mut other = stuck.clone();
    other.uuid = ironic_core::NodeId::new();
    store.create_node(&other).await.unwrap();
    store
        .reserve_node(other.uuid, "another-host")
        .await
        .unwrap();

    let e = env_on(store.clone(), cfg, FakeDeployMode::Sync).await;
    let n = e.c.get_node(&stuck.uuid.into()).await.unwrap();
    assert_eq!(n.provision_state, S::DeployFailed);
    assert_eq!(n.reservation, None);
    let err = n.last_error.unwrap();
    assert!(
        err.contains("restarted") && err.contains("deploying"),
        "{err}"
    );
    // wait states are resumable: left alone
    assert_eq!(
        e.c.get_node(&waiting.uuid.into())
            .await
            .unwrap()
            .provision_state,
        S::DeployWait
    );
    // someone else's lock is not ours to clear
    let o = e.c.get_node(&other.uuid.into()).await.unwrap();
    assert_eq!(o.provision_state, S::Deploying);
    assert_eq!(o.reservation.as_deref(), Some("another-host"));
    assert_eq!(e.store.list_conductors().await.unwrap().len(), 1);
    e.c.shutdown().await;
    assert!(e.store.list_conductors().await.unwrap().is_empty());
}

#[tokio::test]
async fn shutdown_waits_for_in_flight_operations() {
    let e = env(FakeDeployMode::Sync).await;
    let mut nodes = Vec::new();
    for _ in 0..5 {
        let n = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
        make_available(&e.c, &id(&n)).await;
        nodes.push(n);
    }
    e.fake.set_delay(
        InterfaceType::Deploy,
        Delay::Fixed(Duration::from_millis(100)),
    );
    for n in &nodes {
        provision(&e.c, &id(n), "active").await;
    }
    e.c.shutdown().await;
    for n in &nodes {
        let n = e.store.get_node(&id(n)).await.unwrap();
        assert_eq!(n.provision_state, S::Active, "nothing lost");
        assert_eq!(n.reservation, None);
    }
    let err =
        e.c.provision(&id(&nodes[0]), ProvisionRequest::new("deleted"))
            .await
            .unwrap_err();
    assert!(matches!(err, Error::ShuttingDown), "{err:?}");
}

#[tokio::test]
async fn automated_clean_can_be_disabled() {
    let mut cfg: ConductorConfig = test_config();
    cfg.automated_clean = false;
    let e = env_with(cfg, FakeDeployMode::Agent).await;
    let n = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    let i = id(&n);
    make_available(&e.c, &i).await;
    assert_eq!(e.fake.calls("deploy.prepare_cleaning"), 0);
    e.c.shutdown().await;
}

#[tokio::test]
async fn a_watcher_reacting_to_the_final_event_finds_the_node_unlocked() {
    let mut cfg = test_config();
    cfg.node_locked_retry_attempts = 1; // no retry: a lock still held would fail
    let e = env_with(cfg, FakeDeployMode::Sync).await;
    let mut events = e.c.subscribe();
    let n = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    let i = id(&n);
    for (verb, until) in [
        ("manage", S::Manageable),
        ("provide", S::Available),
        ("active", S::Active),
        ("deleted", S::Available),
    ] {
        e.c.provision(&i, ProvisionRequest::new(verb))
            .await
            .unwrap();
        loop {
            match events.recv().await.unwrap() {
                ironic_core::NodeEvent::ProvisionStateChanged { to, .. } if to == until => break,
                _ => {}
            }
        }
    }
    e.c.shutdown().await;
}

#[tokio::test]
async fn conductor_keep_alive_touches_its_record() {
    let mut cfg = test_config();
    cfg.conductor_heartbeat_interval = Duration::from_millis(20);
    let e = env_with(cfg, FakeDeployMode::Sync).await;
    let first = e.store.list_conductors().await.unwrap()[0].clone();
    assert_eq!(first.hostname, e.c.config().host);
    assert!(first.drivers.contains(&"fake-hardware".to_string()));
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if e.store.list_conductors().await.unwrap()[0].updated_at > first.updated_at {
                break;
            }
        }
    })
    .await
    .expect("keep-alive");
    e.c.shutdown().await;
}

/// The issue-17 case: a stuck BMC and a short timeout. Ironic does not re-send a
/// power action; neither does the conductor, whatever the error's retryable flag.
#[tokio::test]
async fn a_power_action_is_sent_once_even_when_it_times_out() {
    let e = env(FakeDeployMode::Sync).await;
    let n = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    let i = id(&n);
    e.fake.set_power_stuck(n.uuid, true);
    e.c.set_power_state(&i, PowerAction::PowerOn, Some(Duration::from_millis(300)))
        .await
        .unwrap();
    let n = wait_until(&e.c, &i, "power action over", |n| {
        n.target_power_state.is_none()
    })
    .await;
    assert_eq!(e.fake.calls("power.set_power_state"), 1, "re-sent");
    let err = n.last_error.clone().expect("last_error");
    assert!(err.contains("did not reach power state power on"), "{err}");
    assert_eq!(n.power_state, None, "the recorded state is unchanged");
    assert!(n.reservation.is_none(), "the lock is released");
    // the BMC recovers: asking again works and clears last_error
    e.fake.set_power_stuck(n.uuid, false);
    e.c.set_power_state(&i, PowerAction::PowerOn, Some(Duration::from_millis(300)))
        .await
        .unwrap();
    let n = wait_until(&e.c, &i, "power on", |n| n.target_power_state.is_none()).await;
    assert_eq!(n.power_state, Some(PowerState::On));
    assert!(n.last_error.is_none());
    assert_eq!(e.fake.calls("power.set_power_state"), 2);
    e.c.shutdown().await;
}

#[tokio::test]
async fn retryable_action_errors_are_reported_not_re_sent() {
    let e = env(FakeDeployMode::Sync).await;
    let n = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    let i = id(&n);
    for (calls, kind) in [
        (1, ErrorKind::Busy),
        (2, ErrorKind::Unreachable),
        (3, ErrorKind::Timeout),
    ] {
        e.fake.fail_next("power.set_power_state", 1, kind, true);
        e.c.set_power_state(&i, PowerAction::PowerOn, None)
            .await
            .unwrap();
        let n = wait_until(&e.c, &i, "power action over", |n| {
            n.target_power_state.is_none()
        })
        .await;
        assert_eq!(e.fake.calls("power.set_power_state"), calls, "{kind}");
        assert!(
            n.last_error.unwrap().contains(&format!("injected {kind}")),
            "{kind}"
        );
    }
    // the reserved power steps follow the same rule: the step fails, once
    provision(&e.c, &i, "manage").await;
    wait_state(&e.c, &i, S::Manageable).await;
    let before = e.fake.calls("power.set_power_state");
    e.fake
        .fail_next("power.set_power_state", 1, ErrorKind::Busy, true);
    let req = ProvisionRequest::new("clean").with_clean_steps(vec![
        serde_json::json!({"interface": "power", "step": "power_on"}),
    ]);
    e.c.provision(&i, req).await.unwrap();
    let n = wait_state(&e.c, &i, S::CleanFailed).await;
    assert_eq!(e.fake.calls("power.set_power_state"), before + 1);
    assert!(n.last_error.unwrap().contains("injected busy"));
    e.c.shutdown().await;
}

#[tokio::test]
async fn retryable_read_errors_are_retried_with_a_bound() {
    let e = env(FakeDeployMode::Sync).await;
    let n = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    let i = id(&n);
    // verification reads the power state: two retryable failures, the third works
    e.fake
        .fail_next("power.get_power_state", 2, ErrorKind::Unreachable, true);
    provision(&e.c, &i, "manage").await;
    wait_state(&e.c, &i, S::Manageable).await;
    assert_eq!(e.fake.calls("power.get_power_state"), 3);
    e.c.shutdown().await;
}

#[tokio::test]
async fn periodic_tasks_look_after_their_own_conductor_group_only() {
    let mut cfg = test_config();
    cfg.power_state_sync_interval = Duration::from_millis(20);
    let e = env_with(cfg, FakeDeployMode::Sync).await;
    let mut other = Node::new("fake-hardware");
    other.conductor_group = "Rack2".into();
    let other = e.c.create_node(other).await.unwrap();
    assert_eq!(other.conductor_group, "rack2");
    let mine = e.c.create_node(Node::new("fake-hardware")).await.unwrap();
    for n in [&other, &mine] {
        provision(&e.c, &id(n), "manage").await;
        wait_state(&e.c, &id(n), S::Manageable).await;
    }
    e.fake
        .fail_with_probability("power.get_power_state", 1.0, ErrorKind::Unreachable, true);
    wait_until(&e.c, &id(&mine), "maintenance", |n| n.maintenance).await;
    assert!(!e.c.get_node(&id(&other)).await.unwrap().maintenance);
    e.c.shutdown().await;
}
