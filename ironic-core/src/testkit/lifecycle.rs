//! Failure at every step, as omicron tests its sagas
//! (`actions_succeed_idempotently`, `action_failure_can_unwind`): each
//! provisioning transition of manage → provide → deploy → undeploy is run once
//! to record every driver call it makes, then once per call with that call
//! failing, then once with every call made twice.
//!
//! ```no_run
//! # async fn f(mut registry: ironic_core::InterfaceRegistry, store: std::sync::Arc<dyn ironic_core::store::Store>, config: ironic_core::ConductorConfig) {
//! use ironic_core::testkit::{self, FaultInjector, LifecycleFixture, Transition};
//! use ironic_core::{Conductor, Node};
//! // register your driver (and the fakes for the interfaces you do not test)
//! let faults = FaultInjector::new();
//! faults.wrap(&mut registry);
//! // periodic tasks off: their calls would make the recorded flow vary
//! let conductor = Conductor::start(store, registry, config).await.unwrap();
//! let mut node = Node::new("my-hardware");
//! node.driver_info.insert("my_address", "10.0.0.5");
//! let fixture = LifecycleFixture::new(conductor, faults, node);
//! for t in Transition::ALL {
//!     let flow = testkit::fails_cleanly_at_every_call(&fixture, t).await;
//!     flow.print();
//!     testkit::every_call_is_idempotent(&fixture, t).await;
//! }
//! # }
//! ```
//!
//! What a failure must lead to (Ironic's behaviour): the node ends in the
//! transition's failure state (`enroll` when verification fails, `clean failed`,
//! `deploy failed`, `error` when tearing down fails), unlocked, with a
//! `last_error` that says what failed, and the way back out (manage, provide,
//! deploy or undeploy again, maintenance off after a clean failure) succeeds.
//! A failure of a synchronous validation may instead refuse the request, leaving
//! the node as it was. Only a failed *read* (`get_*`, `detect_vendor`) may be
//! tolerated, i.e. the transition still succeeds: Ironic refreshes cached facts
//! (boot mode, secure boot, vendor) on a best-effort basis. A failed write that
//! is swallowed is a defect.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::Patience;
use super::inject::{CallLog, FaultInjector, INJECTED};
use crate::conductor::{Conductor, ProvisionRequest};
use crate::ids::{Ident, NodeId};
use crate::model::Node;
use crate::states::ProvisionState as S;

/// One provisioning transition the lifecycle behaviours exercise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transition {
    /// `enroll` → (`verifying`) → `manageable`.
    Manage,
    /// `manageable` → (`cleaning`) → `available`.
    Provide,
    /// `available` → (`deploying`) → `active`.
    Deploy,
    /// `active` → (`deleting`, `cleaning`) → `available`.
    Undeploy,
}

impl Transition {
    /// The four, in lifecycle order.
    pub const ALL: [Transition; 4] = [
        Transition::Manage,
        Transition::Provide,
        Transition::Deploy,
        Transition::Undeploy,
    ];

    /// The state the node starts in.
    pub const fn start(self) -> S {
        match self {
            Transition::Manage => S::Enroll,
            Transition::Provide => S::Manageable,
            Transition::Deploy => S::Available,
            Transition::Undeploy => S::Active,
        }
    }

    /// The provisioning verb (API `target`).
    pub const fn verb(self) -> &'static str {
        match self {
            Transition::Manage => "manage",
            Transition::Provide => "provide",
            Transition::Deploy => "active",
            Transition::Undeploy => "deleted",
        }
    }

    /// The state the node reaches when all goes well.
    pub const fn target(self) -> S {
        match self {
            Transition::Manage => S::Manageable,
            Transition::Provide | Transition::Undeploy => S::Available,
            Transition::Deploy => S::Active,
        }
    }

    /// The states a failure may leave the node in (Ironic's).
    pub const fn failure_states(self) -> &'static [S] {
        match self {
            Transition::Manage => &[S::Enroll],
            Transition::Provide => &[S::CleanFailed],
            Transition::Deploy => &[S::DeployFailed],
            Transition::Undeploy => &[S::Error, S::CleanFailed],
        }
    }

    fn position(self) -> usize {
        Transition::ALL
            .iter()
            .position(|t| *t == self)
            .unwrap_or_default()
    }
}

/// What to do while a node waits for its ramdisk (`clean wait`, `deploy wait`):
/// act as the agent (look up, heartbeat). Called whenever the node sits unlocked
/// in a wait-for-callback state.
pub type AgentHook =
    Arc<dyn Fn(Conductor, Node) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The system under test: a conductor whose registry was wrapped by `faults`
/// ([`FaultInjector::wrap`]), with periodic tasks off, and the node to create for
/// each run.
#[derive(Clone)]
pub struct LifecycleFixture {
    /// The conductor.
    pub conductor: Conductor,
    /// The injector that wraps its registry.
    pub faults: FaultInjector,
    /// The node created for each run (driver, interfaces, `driver_info`,
    /// `instance_info` for the deploy).
    pub node: Node,
    /// How long a transition may take (default 120 s, polled every 20 ms).
    pub patience: Patience,
    agent: Option<AgentHook>,
    setup: Option<AgentHook>,
}

impl std::fmt::Debug for LifecycleFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LifecycleFixture")
            .field("driver", &self.node.driver)
            .field("patience", &self.patience)
            .field("agent_hook", &self.agent.is_some())
            .finish()
    }
}

impl LifecycleFixture {
    /// A fixture without an agent hook (the deploy interface must finish
    /// without callbacks, as the fake's sync mode does).
    pub fn new(conductor: Conductor, faults: FaultInjector, node: Node) -> Self {
        LifecycleFixture {
            conductor,
            faults,
            node,
            patience: Patience {
                timeout: Duration::from_secs(120),
                interval: Duration::from_millis(20),
            },
            agent: None,
            setup: None,
        }
    }

    /// Set the patience.
    pub fn with_patience(mut self, patience: Patience) -> Self {
        self.patience = patience;
        self
    }

    /// Act as the agent while a node waits for its callback.
    pub fn with_agent<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Conductor, Node) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.agent = Some(Arc::new(move |c, n| Box::pin(hook(c, n))));
        self
    }

    /// Run after each node is created (e.g. to give it ports).
    pub fn with_node_setup<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Conductor, Node) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.setup = Some(Arc::new(move |c, n| Box::pin(hook(c, n))));
        self
    }

    /// A new node, driven (unwatched) to the start of `t`.
    async fn node_at(&self, t: Transition) -> Ident {
        // a new identity each time; everything else as the fixture says
        let mut node = self.node.clone();
        node.uuid = NodeId::new();
        if let Some(name) = &mut node.name {
            name.push_str(&format!("-{}", &node.uuid.to_string()[..8]));
        }
        let n = self
            .conductor
            .create_node(node)
            .await
            .unwrap_or_else(|e| panic!("the fixture's node cannot be created: {e}"));
        if let Some(setup) = &self.setup {
            setup(self.conductor.clone(), n.clone()).await;
        }
        let id: Ident = n.uuid.into();
        for before in &Transition::ALL[..t.position()] {
            self.verb(&id, before.verb()).await.unwrap_or_else(|e| {
                panic!("{} (setting up {t:?}) was refused: {e}", before.verb())
            });
            let n = self.settle(&id).await;
            assert_eq!(
                n.provision_state,
                before.target(),
                "setting up {t:?}: {} ended in {} (last_error {:?})",
                before.verb(),
                n.provision_state,
                n.last_error
            );
        }
        id
    }

    async fn verb(&self, id: &Ident, verb: &str) -> crate::Result<()> {
        self.conductor
            .provision(id, ProvisionRequest::new(verb))
            .await
    }

    /// Wait until the node is unlocked in a state that only a request changes,
    /// acting as the agent in wait states.
    async fn settle(&self, id: &Ident) -> Node {
        let deadline = tokio::time::Instant::now() + self.patience.timeout;
        loop {
            let n = self
                .conductor
                .get_node(id)
                .await
                .unwrap_or_else(|e| panic!("reading the node failed: {e}"));
            let state = n.provision_state;
            if n.reservation.is_none() {
                if !state.is_transient() {
                    return n;
                }
                if state.is_wait_for_callback()
                    && let Some(agent) = &self.agent
                {
                    agent(self.conductor.clone(), n.clone()).await;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                let hint = if state.is_wait_for_callback() && self.agent.is_none() {
                    " (the node waits for its agent: give the fixture an agent hook, LifecycleFixture::with_agent)"
                } else {
                    ""
                };
                panic!(
                    "node {} did not settle within {:?}: it is {state} (reservation {:?}, last_error {:?}){hint}",
                    n.uuid, self.patience.timeout, n.reservation, n.last_error
                );
            }
            tokio::time::sleep(self.patience.interval).await;
        }
    }

    /// Drive a node that failed `t` back to `t`'s target the way an operator
    /// does; panics when that does not work.
    async fn recover(&self, id: &Ident, t: Transition, after: &str) {
        for _ in 0..6 {
            let n = self.settle(id).await;
            let state = n.provision_state;
            if state == t.target() {
                assert!(
                    n.last_error.is_none(),
                    "after recovering from {after}, {state} still shows last_error {:?}",
                    n.last_error
                );
                return;
            }
            if n.maintenance {
                self.conductor
                    .set_maintenance(id, false, None)
                    .await
                    .unwrap_or_else(|e| panic!("maintenance off failed: {e}"));
            }
            let verb = match state {
                S::Enroll | S::CleanFailed => "manage",
                S::Manageable => "provide",
                S::Available | S::DeployFailed if t.target() == S::Active => "active",
                S::DeployFailed | S::Error | S::Active => "deleted",
                other => panic!("after {after} the node is {other}: no way back is known"),
            };
            if let Err(e) = self.verb(id, verb).await {
                panic!("retrying after {after}: {verb} from {state} was refused: {e}");
            }
        }
        let n = self.settle(id).await;
        panic!(
            "retrying after {after} did not reach {}: node is {} (last_error {:?})",
            t.target(),
            n.provision_state,
            n.last_error
        );
    }
}

/// How one injected failure ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureOutcome {
    /// The node went to this failure state with `last_error` saying why.
    Failed(S),
    /// The request was refused (a validation failed); the node did not change.
    Refused,
    /// The transition succeeded anyway (only allowed for reads).
    Tolerated,
}

/// What [`fails_cleanly_at_every_call`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowReport {
    /// The transition.
    pub transition: Transition,
    /// Each driver call of the flow and what failing it led to.
    pub calls: Vec<(String, FailureOutcome)>,
}

impl FlowReport {
    /// Print one line per call to stderr (test output).
    pub fn print(&self) {
        for (i, (call, o)) in self.calls.iter().enumerate() {
            eprintln!("testkit: {:?} call #{i} {call}: {o:?}", self.transition);
        }
    }

    /// The calls whose failure was tolerated.
    pub fn tolerated(&self) -> Vec<&str> {
        self.calls
            .iter()
            .filter(|(_, o)| *o == FailureOutcome::Tolerated)
            .map(|(c, _)| c.as_str())
            .collect()
    }
}

fn is_read(call: &str) -> bool {
    let method = call.split_once('.').map_or(call, |(_, m)| m);
    method.starts_with("get_") || method.starts_with("detect_")
}

/// Record every driver call of transition `t`, then for each call in turn run
/// `t` on a new node with that call failing, and check that the node ends in
/// `t`'s failure state, unlocked, with `last_error` naming the failure (or the
/// request refused with the node unchanged; or, for reads only, the transition
/// succeeding), and that the operator's retry then succeeds.
pub async fn fails_cleanly_at_every_call(f: &LifecycleFixture, t: Transition) -> FlowReport {
    // the flow as it runs without faults, twice: it must not vary
    let mut recorded = Vec::new();
    for _ in 0..2 {
        let id = f.node_at(t).await;
        let uuid = f.conductor.get_node(&id).await.expect("node").uuid;
        f.faults.record(uuid);
        f.verb(&id, t.verb())
            .await
            .unwrap_or_else(|e| panic!("{:?}: {} was refused: {e}", t, t.verb()));
        let n = f.settle(&id).await;
        let log = f.faults.stop(uuid);
        assert_eq!(
            n.provision_state,
            t.target(),
            "{t:?} without faults ended in {} (last_error {:?})",
            n.provision_state,
            n.last_error
        );
        assert!(
            !log.calls.is_empty(),
            "{t:?} made no driver call the injector saw: was the registry wrapped (FaultInjector::wrap) before the conductor started?"
        );
        recorded.push(log.calls);
    }
    assert_eq!(
        recorded[0], recorded[1],
        "{t:?} made different driver calls on two runs: turn the conductor's periodic tasks off"
    );
    let calls = recorded.swap_remove(0);
    let mut report = FlowReport {
        transition: t,
        calls: Vec::new(),
    };
    for (index, call) in calls.iter().enumerate() {
        let what = format!("{t:?} with call #{index} ({call}) failing");
        let id = f.node_at(t).await;
        let before = f.conductor.get_node(&id).await.expect("node");
        f.faults.fail_call(before.uuid, index);
        let accepted = f.verb(&id, t.verb()).await;
        let n = f.settle(&id).await;
        let log: CallLog = f.faults.stop(before.uuid);
        assert_eq!(
            log.calls.get(index),
            Some(call),
            "{what}: the calls before it differ from the recorded flow ({:?}): turn periodic tasks off",
            log.calls
        );
        let injected = log
            .injected
            .unwrap_or_else(|| panic!("{what}: the call was not made"));
        let outcome = match accepted {
            Err(e) => {
                assert_eq!(
                    n.provision_state,
                    t.start(),
                    "{what}: the request was refused ({e}) but the node moved to {}",
                    n.provision_state
                );
                let msg = e.to_string();
                assert!(
                    msg.contains(INJECTED) || msg.contains(method_of(call)),
                    "{what}: the refusal does not say what failed: {msg}"
                );
                FailureOutcome::Refused
            }
            Ok(()) if n.provision_state == t.target() => {
                assert!(
                    is_read(call),
                    "{what}: the failure was swallowed: the node reached {} as if nothing had failed (a failed write must fail the transition)",
                    n.provision_state
                );
                FailureOutcome::Tolerated
            }
            Ok(()) => {
                assert!(
                    t.failure_states().contains(&n.provision_state),
                    "{what}: the node ended in {} instead of {:?} (last_error {:?})",
                    n.provision_state,
                    t.failure_states(),
                    n.last_error
                );
                let last = n.last_error.as_deref().unwrap_or_else(|| {
                    panic!(
                        "{what}: the node is {} without last_error",
                        n.provision_state
                    )
                });
                assert!(
                    last.contains(&injected) || last.contains(method_of(call)),
                    "{what}: last_error does not say what failed (expected {injected:?}): {last}"
                );
                FailureOutcome::Failed(n.provision_state)
            }
        };
        assert!(n.reservation.is_none(), "{what}: the node stays locked");
        f.recover(&id, t, &what).await;
        report.calls.push((call.clone(), outcome));
    }
    report
}

fn method_of(call: &str) -> &str {
    let m = call.split_once('.').map_or(call, |(_, m)| m);
    m.split_once('(').map_or(m, |(m, _)| m)
}

/// Run transition `t` with every driver call made twice (the repeat with the
/// same arguments, its result returned): every repeat must succeed and the node
/// must reach `t`'s target without `last_error`. Returns the calls made.
pub async fn every_call_is_idempotent(f: &LifecycleFixture, t: Transition) -> Vec<String> {
    let id = f.node_at(t).await;
    let uuid = f.conductor.get_node(&id).await.expect("node").uuid;
    f.faults.repeat_calls(uuid);
    let accepted = f.verb(&id, t.verb()).await;
    let n = f.settle(&id).await;
    let log = f.faults.stop(uuid);
    if let Some((call, e)) = log.repeat_failures.first() {
        panic!("{t:?}: {call} succeeded once and failed when repeated: {e} (not idempotent)");
    }
    if let Err(e) = accepted {
        panic!("{t:?} with every call made twice was refused: {e}");
    }
    assert_eq!(
        n.provision_state,
        t.target(),
        "{t:?} with every call made twice ended in {} (last_error {:?})",
        n.provision_state,
        n.last_error
    );
    assert!(
        n.last_error.is_none(),
        "{t:?} with every call made twice left last_error {:?}",
        n.last_error
    );
    log.calls
}
