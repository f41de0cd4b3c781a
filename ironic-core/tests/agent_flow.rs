//! The wait-for-callback paths, driven like the agent drives them: lookup, then
//! heartbeats, with the fake deploy interface in agent mode.

mod common;

use common::*;
use ironic_core::conductor::ProvisionRequest;
use ironic_core::driver::{StepDef, StepKind};
use ironic_core::fake::FakeDeployMode;
use ironic_core::{Error, ErrorKind, PowerState, ProvisionState as S};
use serde_json::json;

#[tokio::test]
async fn full_lifecycle_through_heartbeats() {
    let e = env(FakeDeployMode::Agent).await;
    let mut events = e.c.subscribe();
    let (n, mac) = node_with_port(&e.c, 1).await;
    let i = id(&n);
    provision(&e.c, &i, "manage").await;
    wait_state(&e.c, &i, S::Manageable).await;

    // provide: the ramdisk boots, the node waits in clean wait
    provision(&e.c, &i, "provide").await;
    let n = wait_state(&e.c, &i, S::CleanWait).await;
    assert_eq!(n.target_provision_state, Some(S::Available));
    assert_eq!(n.power_state, Some(PowerState::On));
    let first = agent_lookup(&e.c, mac).await;
    assert_eq!(first.agent_token.len(), 43);
    assert_eq!(agent_lookup(&e.c, mac).await.agent_token, "******");
    let token = first.agent_token;

    // wrong token is refused, nothing recorded
    let err =
        e.c.heartbeat(&i, "nope", hb("http://127.0.0.1:9999"))
            .await
            .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    assert!(
        e.c.get_node(&i)
            .await
            .unwrap()
            .internal("agent_url")
            .is_none()
    );

    // first heartbeat: agent steps are fetched, erase_devices_metadata (99) starts
    heartbeat_once(&e.c, &i, &token).await;
    let n = wait_until(&e.c, &i, "first clean step waiting", |n| {
        n.provision_state == S::CleanWait
            && n.clean_step.get("step") == Some(&json!("erase_devices_metadata"))
    })
    .await;
    let steps = n
        .internal("clean_steps")
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    let names: Vec<_> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(names, ["erase_devices_metadata", "erase_devices"]);
    // a changed callback_url is refused (pinning)
    let err =
        e.c.heartbeat(&i, &token, hb("http://127.0.0.2:9999"))
            .await
            .unwrap_err();
    assert!(err.to_string().contains("callback_url"), "{err}");
    heartbeat_once(&e.c, &i, &token).await;
    wait_until(&e.c, &i, "second clean step", |n| {
        n.clean_step.get("step") == Some(&json!("erase_devices"))
    })
    .await;
    heartbeat_once(&e.c, &i, &token).await;
    let n = wait_state(&e.c, &i, S::Available).await;
    assert!(n.clean_step.is_empty());
    assert!(
        n.internal("agent_secret_token").is_none(),
        "token wiped at the end"
    );
    assert!(n.internal("agent_url").is_none());
    assert_eq!(n.power_state, Some(PowerState::Off));

    // deploy: a new ramdisk boot gets a new token
    e.fake.set_agent_steps(
        StepKind::Deploy,
        vec![StepDef::deploy("inband_configure", 50)],
    );
    provision(&e.c, &i, "active").await;
    let n = wait_state(&e.c, &i, S::DeployWait).await;
    assert_eq!(n.deploy_step["step"], "deploy");
    let token2 = agent_lookup(&e.c, mac).await.agent_token;
    assert_eq!(token2.len(), 43);
    assert_ne!(token2, token);
    assert!(
        e.c.heartbeat(&i, &token, hb("http://127.0.0.1:9999"))
            .await
            .is_err(),
        "old token refused"
    );
    let before = n.provision_updated_at;
    heartbeat_once(&e.c, &i, &token2).await;
    let n = wait_until(&e.c, &i, "write_image waiting", |n| {
        n.provision_state == S::DeployWait
            && n.deploy_step.get("step") == Some(&json!("write_image"))
    })
    .await;
    assert!(
        n.provision_updated_at > before,
        "provision_updated_at touched"
    );
    // the agent-reported step was spliced in after the running one
    let names: Vec<String> = n
        .internal("deploy_steps")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "deploy",
            "write_image",
            "prepare_instance_boot",
            "inband_configure",
            "tear_down_agent",
            "switch_to_tenant_network",
            "boot_instance"
        ]
    );
    heartbeat_once(&e.c, &i, &token2).await;
    wait_until(&e.c, &i, "inband step waiting", |n| {
        n.deploy_step.get("step") == Some(&json!("inband_configure"))
    })
    .await;
    heartbeat_once(&e.c, &i, &token2).await;
    let n = wait_state(&e.c, &i, S::Active).await;
    assert_eq!(n.power_state, Some(PowerState::On));
    assert_eq!(e.fake.node(n.uuid).boot_target, Some("instance"));
    assert!(n.internal("agent_secret_token").is_none());

    // the event stream saw the whole story
    let mut seen = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let ironic_core::NodeEvent::ProvisionStateChanged { to, .. } = ev {
            seen.push(to);
        }
    }
    assert_eq!(
        seen,
        [
            S::Verifying,
            S::Manageable,
            S::Cleaning,
            S::CleanWait,
            S::Cleaning,
            S::CleanWait,
            S::Cleaning,
            S::CleanWait,
            S::Cleaning,
            S::Available,
            S::Deploying,
            S::DeployWait,
            S::Deploying,
            S::DeployWait,
            S::Deploying,
            S::DeployWait,
            S::Deploying,
            S::Active
        ]
    );

    // undeploy → automated cleaning through the agent again → available
    provision(&e.c, &i, "undeploy").await;
    wait_state(&e.c, &i, S::CleanWait).await;
    let t = agent_lookup(&e.c, mac).await.agent_token;
    for _ in 0..3 {
        heartbeat_once(&e.c, &i, &t).await;
        wait_until(&e.c, &i, "heartbeat processed", |n| {
            n.provision_state != S::Cleaning
        })
        .await;
    }
    let n = wait_state(&e.c, &i, S::Available).await;
    assert!(n.instance_info.is_empty());
    e.c.shutdown().await;
}

#[tokio::test]
async fn deploy_step_failure_lands_in_deploy_failed_with_a_meaningful_error() {
    let e = env(FakeDeployMode::Agent).await;
    let (n, mac) = node_with_port(&e.c, 2).await;
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
    let token = agent_lookup(&e.c, mac).await.agent_token;
    heartbeat_once(&e.c, &i, &token).await; // -> write_image runs in the agent
    wait_until(&e.c, &i, "write_image", |n| {
        n.deploy_step.get("step") == Some(&json!("write_image"))
    })
    .await;
    e.fake
        .fail_next("deploy.async_step", 1, ErrorKind::Other, false);
    heartbeat_once(&e.c, &i, &token).await;
    let n = wait_state(&e.c, &i, S::DeployFailed).await;
    let err = n.last_error.clone().unwrap();
    assert!(
        err.contains("write_image") && err.contains(&n.uuid.to_string()),
        "{err}"
    );
    assert_eq!(n.target_provision_state, Some(S::Active));
    assert!(n.internal("agent_secret_token").is_none());
    let hist = e.c.history(&i).await.unwrap();
    assert!(
        hist.iter()
            .any(|h| h.event == err && h.event_type == "deployment"),
        "{hist:?}"
    );

    // an out-of-band step failure (the deploy step itself)
    provision(&e.c, &i, "deleted").await;
    wait_state(&e.c, &i, S::Available).await;
    e.fake
        .fail_next("deploy.deploy", 1, ErrorKind::Unreachable, false);
    provision(&e.c, &i, "active").await;
    let n = wait_state(&e.c, &i, S::DeployFailed).await;
    let err = n.last_error.unwrap();
    assert!(
        err.starts_with("Deploy step deploy.deploy failed on node"),
        "{err}"
    );
    assert!(err.contains("injected unreachable failure"), "{err}");
    // from deploy failed one may deploy again
    provision(&e.c, &i, "active").await;
    wait_state(&e.c, &i, S::DeployWait).await;
    e.c.shutdown().await;
}

#[tokio::test]
async fn abort_in_clean_wait() {
    let e = env(FakeDeployMode::Agent).await;
    let (n, mac) = node_with_port(&e.c, 3).await;
    let i = id(&n);
    provision(&e.c, &i, "manage").await;
    wait_state(&e.c, &i, S::Manageable).await;
    provision(&e.c, &i, "provide").await;
    wait_state(&e.c, &i, S::CleanWait).await;
    // before any step: abort at once
    provision(&e.c, &i, "abort").await;
    let n = wait_state(&e.c, &i, S::CleanFailed).await;
    assert_eq!(
        n.last_error.as_deref(),
        Some("Cleaning was aborted by request")
    );
    assert_eq!(e.fake.node(n.uuid).boot_target, None, "ramdisk torn down");
    assert!(!n.maintenance, "an abort is not a fault");

    // during a non-abortable clean step: abort after it
    provision(&e.c, &i, "manage").await;
    wait_state(&e.c, &i, S::Manageable).await;
    provision(&e.c, &i, "provide").await;
    wait_state(&e.c, &i, S::CleanWait).await;
    let t = agent_lookup(&e.c, mac).await.agent_token;
    heartbeat_once(&e.c, &i, &t).await;
    wait_until(&e.c, &i, "step running", |n| !n.clean_step.is_empty()).await;
    provision(&e.c, &i, "abort").await;
    let n = e.c.get_node(&i).await.unwrap();
    assert_eq!(
        n.provision_state,
        S::CleanWait,
        "not abortable: keeps running"
    );
    assert_eq!(n.clean_step["abort_after"], true);
    heartbeat_once(&e.c, &i, &t).await;
    let n = wait_state(&e.c, &i, S::CleanFailed).await;
    let err = n.last_error.unwrap();
    assert!(
        err.contains("aborted") && err.contains("erase_devices_metadata"),
        "{err}"
    );
    e.c.shutdown().await;
}

#[tokio::test]
async fn hold_and_unhold_in_manual_cleaning_and_deploy() {
    let e = env(FakeDeployMode::Sync).await;
    let (n, _) = node_with_port(&e.c, 4).await;
    let i = id(&n);
    provision(&e.c, &i, "manage").await;
    wait_state(&e.c, &i, S::Manageable).await;
    let req = ProvisionRequest::new("clean").with_clean_steps(vec![
        json!({"interface": "deploy", "step": "hold"}),
        json!({"interface": "raid", "step": "delete_configuration"}),
        json!({"interface": "power", "step": "power_on"}),
    ]);
    e.c.provision(&i, req).await.unwrap();
    let n = wait_state(&e.c, &i, S::CleanHold).await;
    assert_eq!(n.target_provision_state, Some(S::Manageable));
    assert_eq!(n.clean_step["step"], "hold");
    provision(&e.c, &i, "unhold").await;
    let n = wait_state(&e.c, &i, S::Manageable).await;
    assert_eq!(
        n.power_state,
        Some(PowerState::On),
        "power_on reserved step ran"
    );
    assert!(n.clean_step.is_empty());

    // deploy with a user hold step
    provision(&e.c, &i, "provide").await;
    wait_state(&e.c, &i, S::Available).await;
    let req = ProvisionRequest::new("active").with_deploy_steps(vec![
        json!({"interface": "deploy", "step": "hold", "priority": 90}),
    ]);
    e.c.provision(&i, req).await.unwrap();
    let n = wait_state(&e.c, &i, S::DeployHold).await;
    assert_eq!(n.deploy_step["step"], "hold");
    // abort from deploy hold -> deploy failed
    provision(&e.c, &i, "abort").await;
    let n = wait_state(&e.c, &i, S::DeployFailed).await;
    assert!(n.last_error.unwrap().contains("aborted"));
    let req = ProvisionRequest::new("active").with_deploy_steps(vec![
        json!({"interface": "deploy", "step": "hold", "priority": 90}),
    ]);
    e.c.provision(&i, req).await.unwrap();
    wait_state(&e.c, &i, S::DeployHold).await;
    provision(&e.c, &i, "unhold").await;
    wait_state(&e.c, &i, S::Active).await;
    e.c.shutdown().await;
}

#[tokio::test]
async fn manual_clean_with_unknown_step_fails_cleanly() {
    let e = env(FakeDeployMode::Sync).await;
    let n =
        e.c.create_node(ironic_core::Node::new("fake-hardware"))
            .await
            .unwrap();
    let i = id(&n);
    provision(&e.c, &i, "manage").await;
    wait_state(&e.c, &i, S::Manageable).await;
    // bad shape: refused up front, nothing changes
    let err =
        e.c.provision(
            &i,
            ProvisionRequest::new("clean").with_clean_steps(vec![json!({"step": "x"})]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    assert!(matches!(
        e.c.provision(&i, ProvisionRequest::new("clean")).await,
        Err(Error::Invalid(_))
    ));
    // a step the driver does not have: clean failed, with the step named
    let req = ProvisionRequest::new("clean")
        .with_clean_steps(vec![json!({"interface": "bios", "step": "overclock"})]);
    e.c.provision(&i, req).await.unwrap();
    let n = wait_state(&e.c, &i, S::CleanFailed).await;
    assert!(n.last_error.unwrap().contains("bios.overclock"));
    e.c.shutdown().await;
}

/// A heartbeat that finds the node locked (a periodic task, an API call) is not lost:
/// it waits for the lock and is processed then, so a finished step is seen at once
/// rather than a whole heartbeat interval later (Ironic drops it).
#[tokio::test]
async fn a_heartbeat_that_finds_the_node_locked_is_processed_once_it_is_free() {
    let mut cfg = test_config();
    cfg.node_locked_retry_attempts = 50;
    cfg.node_locked_retry_interval = std::time::Duration::from_millis(100);
    let e = env_with(cfg, FakeDeployMode::Agent).await;
    let (n, mac) = node_with_port(&e.c, 1).await;
    let i = id(&n);
    provision(&e.c, &i, "manage").await;
    wait_state(&e.c, &i, S::Manageable).await;
    provision(&e.c, &i, "provide").await;
    wait_state(&e.c, &i, S::CleanWait).await;
    let token = agent_lookup(&e.c, mac).await.agent_token;
    heartbeat_once(&e.c, &i, &token).await;
    wait_until(&e.c, &i, "first clean step waiting", |n| {
        n.clean_step.get("step") == Some(&json!("erase_devices_metadata"))
    })
    .await;

    // someone else holds the lock when the agent says the step is done
    e.store.reserve_node(n.uuid, "another-host").await.unwrap();
    heartbeat_once(&e.c, &i, &token).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let held = e.c.get_node(&i).await.unwrap();
    assert_eq!(
        held.clean_step.get("step"),
        Some(&json!("erase_devices_metadata")),
        "nothing happens while the lock is held"
    );
    e.store.release_node(n.uuid, "another-host").await.unwrap();
    // no further heartbeat: the one that waited moves cleaning on
    wait_until(
        &e.c,
        &i,
        "second clean step after the lock was freed",
        |n| n.clean_step.get("step") == Some(&json!("erase_devices")),
    )
    .await;
}
