//! Shared helpers for the conductor tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use ironic_core::conductor::{Conductor, ConductorConfig, ProvisionRequest};
use ironic_core::fake::{self, FakeConfig, FakeControl, FakeDeployMode};
use ironic_core::ids::Ident;
use ironic_core::store::{MemoryStore, Store};
use ironic_core::{InterfaceRegistry, Node, ProvisionState};

/// A config for tests: quick lock retries, periodic tasks off unless a test turns them on.
pub fn test_config() -> ConductorConfig {
    let mut c = ConductorConfig::default();
    c.host = format!("test-{}", uuid_suffix());
    c.node_locked_retry_attempts = 1;
    c.node_locked_retry_interval = Duration::from_millis(10);
    c.power_state_sync_interval = Duration::ZERO;
    c.power_failure_recovery_interval = Duration::ZERO;
    c.check_provision_state_interval = Duration::ZERO;
    c.retryable_error_backoff = Duration::from_millis(10);
    c
}

fn uuid_suffix() -> String {
    ironic_core::NodeId::new().to_string()[..8].to_owned()
}

pub struct Env {
    pub c: Conductor,
    pub fake: FakeControl,
    pub store: Arc<dyn Store>,
}

pub async fn env_with(config: ConductorConfig, mode: FakeDeployMode) -> Env {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    env_on(store, config, mode).await
}

pub async fn env_on(store: Arc<dyn Store>, config: ConductorConfig, mode: FakeDeployMode) -> Env {
    let mut reg = InterfaceRegistry::with_noop();
    let fake = fake::register(&mut reg, {
        let mut f = FakeConfig::default();
        f.deploy_mode = mode;
        f
    });
    let c = Conductor::start(store.clone(), reg, config).await.unwrap();
    Env { c, fake, store }
}

pub async fn env(mode: FakeDeployMode) -> Env {
    env_with(test_config(), mode).await
}

pub fn id(n: &Node) -> Ident {
    n.uuid.into()
}

/// Poll the node until `pred` holds (10 s at most).
pub async fn wait_until(
    c: &Conductor,
    ident: &Ident,
    what: &str,
    pred: impl Fn(&Node) -> bool,
) -> Node {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = c.get_node(ident).await.unwrap();
        if pred(&n) && n.reservation.is_none() {
            return n;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "timed out waiting for {what}: node is {} (target {:?}), last_error {:?}, reservation {:?}",
                n.provision_state, n.target_provision_state, n.last_error, n.reservation
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Wait until the node reaches `state` and is unlocked.
pub async fn wait_state(c: &Conductor, ident: &Ident, state: ProvisionState) -> Node {
    wait_until(c, ident, state.as_str(), |n| n.provision_state == state).await
}

pub async fn provision(c: &Conductor, ident: &Ident, target: &str) {
    c.provision(ident, ProvisionRequest::new(target))
        .await
        .unwrap_or_else(|e| panic!("provision {target}: {e}"));
}

/// enroll -> manageable -> available.
pub async fn make_available(c: &Conductor, ident: &Ident) {
    provision(c, ident, "manage").await;
    wait_state(c, ident, ProvisionState::Manageable).await;
    provision(c, ident, "provide").await;
    wait_state(c, ident, ProvisionState::Available).await;
}

use ironic_core::conductor::LookupResult;
use ironic_core::driver::Heartbeat;
use ironic_core::{MacAddress, Port};

/// A node with one port (MAC derived from `i`).
pub async fn node_with_port(c: &Conductor, i: u8) -> (Node, MacAddress) {
    let n = c.create_node(Node::new("fake-hardware")).await.unwrap();
    let mac: MacAddress = format!("52:54:00:00:00:{i:02x}").parse().unwrap();
    c.create_port(Port::new(n.uuid, mac)).await.unwrap();
    (n, mac)
}

pub fn hb(url: &str) -> Heartbeat {
    let mut hb = Heartbeat::new(url);
    hb.agent_version = Some("11.0.0".to_owned());
    hb
}

/// What the agent does on boot: look the node up by MAC and get a token.
pub async fn agent_lookup(c: &Conductor, mac: MacAddress) -> LookupResult {
    c.lookup(&[mac], None).await.expect("lookup")
}

/// Heartbeat until the node leaves `state` (each heartbeat lets the fake agent
/// finish its current command).
pub async fn heartbeat_once(c: &Conductor, ident: &Ident, token: &str) {
    c.heartbeat(ident, token, hb("http://127.0.0.1:9999"))
        .await
        .expect("heartbeat");
}
