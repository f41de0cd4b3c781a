//! Failure at every step (issue 17, item 7): the lifecycle kit
//! (`testkit::fails_cleanly_at_every_call`, `testkit::every_call_is_idempotent`)
//! run over the conductor and fake hardware, in the fake deploy's sync mode and
//! in its agent mode (driven by lookups and heartbeats, as the real agent does).
//! One test per transition and mode.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::*;
use ironic_core::conductor::Conductor;
use ironic_core::fake::{self, FakeConfig, FakeDeployMode};
use ironic_core::store::MemoryStore;
use ironic_core::testkit::{self, FailureOutcome, FaultInjector, LifecycleFixture, Transition};
use ironic_core::{InterfaceRegistry, MacAddress, Node, NodeId, Port, ProvisionState as S};

async fn fixture(mode: FakeDeployMode) -> LifecycleFixture {
    let mut reg = InterfaceRegistry::with_noop();
    let mut config = FakeConfig::default();
    config.deploy_mode = mode;
    fake::register(&mut reg, config);
    let faults = FaultInjector::new();
    faults.wrap(&mut reg);
    let c = Conductor::start(Arc::new(MemoryStore::new()), reg, test_config())
        .await
        .unwrap();
    let f = LifecycleFixture::new(c, faults, Node::new("fake-hardware"));
    if mode != FakeDeployMode::Agent {
        return f;
    }
    // the agent: one port per node, look up once per ramdisk boot, heartbeat
    let tokens: Arc<Mutex<HashMap<NodeId, String>>> = Arc::default();
    f.with_node_setup(|c, n| async move {
        c.create_port(Port::new(n.uuid, mac_of(n.uuid)))
            .await
            .expect("port");
    })
    .with_agent(move |c: Conductor, n: Node| {
        let tokens = tokens.clone();
        async move {
            if n.internal("agent_secret_token").is_none() {
                tokens.lock().unwrap().remove(&n.uuid);
            }
            let known = tokens.lock().unwrap().get(&n.uuid).cloned();
            let token = match known {
                Some(t) => t,
                None => {
                    let Ok(found) = c.lookup(&[mac_of(n.uuid)], None).await else {
                        return;
                    };
                    if found.agent_token == "******" {
                        return;
                    }
                    tokens
                        .lock()
                        .unwrap()
                        .insert(n.uuid, found.agent_token.clone());
                    found.agent_token
                }
            };
            // a refused heartbeat (e.g. the node moved on meanwhile) is retried
            // at the next poll, as the agent retries
            let _ = c
                .heartbeat(&n.uuid.into(), &token, hb("http://127.0.0.1:9999"))
                .await;
        }
    })
}

fn mac_of(id: NodeId) -> MacAddress {
    let b = id.as_uuid().as_bytes();
    format!("52:54:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
        .parse()
        .unwrap()
}

async fn every_failure(mode: FakeDeployMode, t: Transition) -> testkit::FlowReport {
    let f = fixture(mode).await;
    let report = testkit::fails_cleanly_at_every_call(&f, t).await;
    report.print();
    let calls = testkit::every_call_is_idempotent(&f, t).await;
    // the doubled run makes the recorded calls (and the nested calls of the
    // repeated outer ones again)
    for (call, _) in &report.calls {
        assert!(calls.contains(call), "{call} missing from {calls:?}");
    }
    assert!(calls.len() >= report.calls.len(), "{calls:?}");
    f.conductor.shutdown().await;
    report
}

fn outcomes(r: &testkit::FlowReport) -> Vec<(&str, &FailureOutcome)> {
    r.calls.iter().map(|(c, o)| (c.as_str(), o)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manage_fails_cleanly_at_every_step() {
    let r = every_failure(FakeDeployMode::Sync, Transition::Manage).await;
    let o = outcomes(&r);
    // verification reads the power state after validating power and management
    assert!(
        o.iter()
            .any(|(c, out)| *c == "power.get_power_state"
                && **out == FailureOutcome::Failed(S::Enroll)),
        "{o:?}"
    );
    assert!(r.tolerated().iter().all(|c| !c.contains("set_")), "{o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provide_fails_cleanly_at_every_step() {
    let r = every_failure(FakeDeployMode::Sync, Transition::Provide).await;
    assert!(
        r.calls
            .iter()
            .any(|(_, o)| *o == FailureOutcome::Failed(S::CleanFailed)),
        "{:?}",
        r.calls
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_fails_cleanly_at_every_step() {
    let r = every_failure(FakeDeployMode::Sync, Transition::Deploy).await;
    let o = outcomes(&r);
    for call in [
        "deploy.prepare",
        "deploy.execute_step(deploy.deploy)",
        "boot.prepare_instance",
        "power.set_power_state(power on)",
    ] {
        assert!(
            o.iter()
                .any(|(c, out)| *c == call && **out == FailureOutcome::Failed(S::DeployFailed)),
            "{call}: {o:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeploy_fails_cleanly_at_every_step() {
    let r = every_failure(FakeDeployMode::Sync, Transition::Undeploy).await;
    let o = outcomes(&r);
    assert!(
        o.iter()
            .any(|(c, out)| *c == "deploy.tear_down" && **out == FailureOutcome::Failed(S::Error)),
        "{o:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provide_through_the_agent_fails_cleanly_at_every_step() {
    let r = every_failure(FakeDeployMode::Agent, Transition::Provide).await;
    let o = outcomes(&r);
    for call in ["boot.prepare_ramdisk", "power.reboot", "deploy.heartbeat"] {
        assert!(
            o.iter()
                .any(|(c, out)| *c == call && **out == FailureOutcome::Failed(S::CleanFailed)),
            "{call}: {o:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_through_the_agent_fails_cleanly_at_every_step() {
    let r = every_failure(FakeDeployMode::Agent, Transition::Deploy).await;
    let o = outcomes(&r);
    for call in [
        "boot.prepare_ramdisk",
        "deploy.heartbeat",
        "boot.prepare_instance",
    ] {
        assert!(
            o.iter()
                .any(|(c, out)| *c == call && **out == FailureOutcome::Failed(S::DeployFailed)),
            "{call}: {o:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeploy_through_the_agent_fails_cleanly_at_every_step() {
    every_failure(FakeDeployMode::Agent, Transition::Undeploy).await;
}
