//! The observation hook and the "why is it stuck" answers: state changes, steps,
//! driver calls, heartbeats and lock waits reach the observer; wait states carry
//! their reason and deadline in the history; a node past its state's budget is
//! reported once.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ironic_core::conductor::{Conductor, over_budget, wait_info};
use ironic_core::fake::{self, FakeConfig, FakeDeployMode};
use ironic_core::observe::{
    DriverCall, HeartbeatResult, HeartbeatSeen, LockWait, Observer, OverBudget, StateLeft,
    StepFinished, StepResult,
};
use ironic_core::store::{MemoryStore, Store};
use ironic_core::{InterfaceRegistry, ProvisionState as S};

#[derive(Debug, Default)]
struct Seen {
    left: Mutex<Vec<StateLeft>>,
    steps: Mutex<Vec<StepFinished>>,
    calls: Mutex<Vec<DriverCall>>,
    heartbeats: Mutex<Vec<HeartbeatSeen>>,
    locks: Mutex<Vec<LockWait>>,
    budgets: Mutex<Vec<OverBudget>>,
}

impl Observer for Seen {
    fn provision_state_left(&self, e: &StateLeft) {
        self.left.lock().unwrap().push(e.clone());
    }
    fn step_finished(&self, e: &StepFinished) {
        self.steps.lock().unwrap().push(e.clone());
    }
    fn driver_call(&self, e: &DriverCall) {
        self.calls.lock().unwrap().push(e.clone());
    }
    fn heartbeat(&self, e: &HeartbeatSeen) {
        self.heartbeats.lock().unwrap().push(e.clone());
    }
    fn lock_wait(&self, e: &LockWait) {
        self.locks.lock().unwrap().push(e.clone());
    }
    fn over_budget(&self, e: &OverBudget) {
        self.budgets.lock().unwrap().push(e.clone());
    }
}

async fn observed(config: ironic_core::conductor::ConductorConfig) -> (Conductor, Arc<Seen>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut reg = InterfaceRegistry::with_noop();
    let mut f = FakeConfig::default();
    f.deploy_mode = FakeDeployMode::Agent;
    fake::register(&mut reg, f);
    let seen = Arc::new(Seen::default());
    let c = Conductor::start_observed(store, reg, config, seen.clone())
        .await
        .unwrap();
    (c, seen)
}

#[tokio::test]
async fn the_observer_sees_states_steps_driver_calls_heartbeats_and_locks() {
    let (c, seen) = observed(test_config()).await;
    let (n, mac) = node_with_port(&c, 1).await;
    let i = id(&n);
    provision(&c, &i, "manage").await;
    wait_state(&c, &i, S::Manageable).await;
    provision(&c, &i, "provide").await;
    let n = wait_state(&c, &i, S::CleanWait).await;
    assert!(n.provision_state_since.is_some());

    // the wait is explained, in the history too, with its deadline
    let w = wait_info(&n, c.config()).expect("clean wait waits");
    assert!(w.reason.contains("agent"), "{}", w.reason);
    assert_eq!(w.timeout_setting, Some("clean_callback_timeout"));
    let deadline = w.deadline.expect("clean wait has a deadline");
    let since = w.since.unwrap();
    assert_eq!(
        (deadline - since).to_std().unwrap(),
        c.config().clean_callback_timeout
    );
    let hist = c.history(&i).await.unwrap();
    let said = hist
        .iter()
        .find(|h| h.event.starts_with("clean wait: "))
        .unwrap_or_else(|| panic!("no wait reason in history: {hist:#?}"));
    assert!(said.event.contains("times out at"), "{}", said.event);

    let token = agent_lookup(&c, mac).await.agent_token;
    for _ in 0..20 {
        if c.get_node(&i).await.unwrap().provision_state == S::Available {
            break;
        }
        let _ = c.heartbeat(&i, &token, hb("http://127.0.0.1:9999")).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_state(&c, &i, S::Available).await;
    // a refused heartbeat is counted as such
    assert!(
        c.heartbeat(&i, "bad", hb("http://127.0.0.1:9999"))
            .await
            .is_err()
    );
    c.shutdown().await;

    let left = seen.left.lock().unwrap().clone();
    let path: Vec<_> = left.iter().map(|e| (e.from, e.to)).collect();
    for step in [
        (S::Enroll, S::Verifying),
        (S::Verifying, S::Manageable),
        (S::Manageable, S::Cleaning),
        (S::Cleaning, S::CleanWait),
        (S::CleanWait, S::Cleaning),
    ] {
        assert!(path.contains(&step), "{step:?} not in {path:?}");
    }
    assert!(
        left.iter()
            .all(|e| e.node == n.uuid && e.duration.is_some())
    );

    let steps = seen.steps.lock().unwrap().clone();
    assert!(!steps.is_empty(), "no step reported");
    assert!(
        steps.iter().all(|s| s.result == StepResult::Done),
        "{steps:#?}"
    );
    assert!(steps.iter().any(|s| s.interface == "deploy"), "{steps:#?}");

    let calls = seen.calls.lock().unwrap().clone();
    assert!(
        calls
            .iter()
            .any(|c| c.implementation == "fake" && c.method == "set_power_state"),
        "{calls:#?}"
    );
    assert!(calls.iter().all(|c| c.error.is_none()));

    let hbs = seen.heartbeats.lock().unwrap().clone();
    assert!(
        hbs.iter()
            .any(|h| h.result == HeartbeatResult::Processed && h.state == Some(S::CleanWait)),
        "{hbs:#?}"
    );
    assert_eq!(hbs.last().unwrap().result, HeartbeatResult::Refused);
    assert!(seen.locks.lock().unwrap().iter().all(|l| l.acquired));
    assert!(!seen.locks.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_node_past_its_state_budget_is_reported_once_per_stay() {
    let mut cfg = test_config();
    cfg.state_budgets
        .insert(S::CleanWait, Duration::from_millis(200));
    cfg.state_budget_check_interval = Duration::ZERO; // the test runs the check
    let (c, seen) = observed(cfg).await;
    let (n, _) = node_with_port(&c, 2).await;
    let i = id(&n);
    provision(&c, &i, "manage").await;
    wait_state(&c, &i, S::Manageable).await;
    provision(&c, &i, "provide").await;
    let n = wait_state(&c, &i, S::CleanWait).await;
    c.check_state_budgets().await;
    assert!(
        seen.budgets.lock().unwrap().is_empty(),
        "reported too early"
    );
    assert!(over_budget(&n, c.config(), ironic_core::model::now()).is_none());

    tokio::time::sleep(Duration::from_millis(300)).await;
    c.check_state_budgets().await;
    c.check_state_budgets().await;
    let b = seen.budgets.lock().unwrap().clone();
    assert_eq!(b.len(), 1, "{b:#?}");
    assert_eq!(b[0].state, S::CleanWait);
    assert_eq!(b[0].node, n.uuid);
    assert!(b[0].elapsed >= Duration::from_millis(200));
    let n = c.get_node(&i).await.unwrap();
    assert!(over_budget(&n, c.config(), ironic_core::model::now()).is_some());
    let hist = c.history(&i).await.unwrap();
    let warn = hist
        .iter()
        .find(|h| h.event.contains("over its budget"))
        .unwrap_or_else(|| panic!("{hist:#?}"));
    assert!(warn.event.contains("clean wait"), "{}", warn.event);
    c.shutdown().await;
}
