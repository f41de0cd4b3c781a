//! Several conductors on one store: the hash rings they agree on, the rebuild when
//! one leaves, and the takeover of a dead conductor's nodes.
//!
//! The conductors share a `MemoryStore` in this process (the same code runs on
//! PostgreSQL across processes: see ironic-standalone's tests/multi_conductor.rs),
//! or one PostgreSQL database through a store each (event sharing; needs the
//! server `scripts/setup-test-deps.sh` starts, or IRONIC_TEST_POSTGRES_URL).
//! Keep-alives are fast here (100 ms, offline after 1.5 s) so the test is short.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ironic_core::conductor::{Conductor, ConductorConfig, NodeEvent, ProvisionRequest};
use ironic_core::fake::{self, FakeConfig};
use ironic_core::model::{ConductorRecord, Node};
use ironic_core::states::{PowerAction, PowerState, ProvisionState as S};
use ironic_core::store::conformance::TestDatabase;
use ironic_core::store::{MemoryStore, PostgresStore, Store};
use ironic_core::{Ident, InterfaceRegistry};

fn config(host: &str) -> ConductorConfig {
    let mut v = ConductorConfig::default();
    v.host = host.into();
    v.conductor_heartbeat_interval = Duration::from_millis(100);
    v.heartbeat_timeout = Duration::from_millis(1500);
    v.node_locked_retry_attempts = 1;
    v.node_locked_retry_interval = Duration::from_millis(10);
    v.power_state_sync_interval = Duration::ZERO;
    v.power_failure_recovery_interval = Duration::ZERO;
    v.check_provision_state_interval = Duration::ZERO;
    v
}

async fn start(store: &Arc<MemoryStore>, host: &str) -> Conductor {
    let mut registry = InterfaceRegistry::with_noop();
    fake::register(&mut registry, FakeConfig::default());
    Conductor::start(store.clone() as Arc<dyn Store>, registry, config(host))
        .await
        .expect("start the conductor")
}

/// Poll `check` (every 20 ms, at most 20 s) until it returns `Some`.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conductors_agree_on_owners_and_rebuild_the_ring_when_one_leaves() {
    let store = Arc::new(MemoryStore::new());
    let c1 = start(&store, "conductor-1").await;
    let c2 = start(&store, "conductor-2").await;
    let mut nodes = Vec::new();
    for i in 0..64 {
        let mut n = Node::new("fake-hardware");
        n.name = Some(format!("node-{i}"));
        nodes.push(c1.create_node(n).await.expect("create_node"));
    }
    // c1 started alone; it sees c2 at its next keep-alive.
    eventually("both conductors on both rings", || async {
        let both = |c: &Conductor| {
            nodes
                .iter()
                .filter_map(|n| c.owner_of(n))
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                == 2
        };
        (both(&c1) && both(&c2)).then_some(())
    })
    .await;
    for n in &nodes {
        assert_eq!(c1.owner_of(n), c2.owner_of(n), "one owner per node");
    }
    let alive: Vec<(String, bool)> = c1
        .list_conductors()
        .await
        .expect("list_conductors")
        .into_iter()
        .map(|c| (c.hostname, c.alive))
        .collect();
    assert!(alive.contains(&("conductor-1".into(), true)), "{alive:?}");
    assert!(alive.contains(&("conductor-2".into(), true)), "{alive:?}");

    // No conductor serves this group: the node has no owner.
    let mut lone = Node::new("fake-hardware");
    lone.conductor_group = "rack-9".into();
    let lone = c1.create_node(lone).await.expect("create_node");
    assert_eq!(c1.owner_of(&lone), None);

    // A conductor that stops unregisters; the other owns everything at its next
    // keep-alive.
    c2.shutdown().await;
    eventually("conductor-1 owns every node", || async {
        nodes
            .iter()
            .all(|n| c1.owner_of(n).as_deref() == Some("conductor-1"))
            .then_some(())
    })
    .await;
    c1.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_of_a_dead_conductor_are_taken_over() {
    let store = Arc::new(MemoryStore::new());
    // "ghost" registered, then never stamped again: offline 1.5 s later.
    let mut ghost = ConductorRecord::new("ghost");
    ghost.drivers = vec!["fake-hardware".into()];
    store.upsert_conductor(&ghost).await.expect("upsert");

    // What the ghost was doing when it died: a deploy (locked), a power action
    // (locked, target power state set), and an active node it had prepared.
    let mut deploying = Node::new("fake-hardware");
    deploying.name = Some("deploying".into());
    deploying.provision_state = S::Deploying;
    deploying.target_provision_state = Some(S::Active);
    deploying.power_state = Some(PowerState::On);
    let mut powering = Node::new("fake-hardware");
    powering.name = Some("powering".into());
    powering.provision_state = S::Manageable;
    powering.power_state = Some(PowerState::Off);
    powering.target_power_state = Some(PowerAction::PowerOn);
    let mut active = Node::new("fake-hardware");
    active.name = Some("active".into());
    active.provision_state = S::Active;
    active.power_state = Some(PowerState::On);
    active.conductor_affinity = Some("ghost".into());
    // Enrolled through a conductor (interfaces resolved), then set to what the
    // ghost left.
    let setup = start(&store, "setup").await;
    for n in [&mut deploying, &mut powering, &mut active] {
        let mut created = setup
            .create_node(Node::new("fake-hardware"))
            .await
            .expect("create_node");
        created.name = n.name.clone();
        created.provision_state = n.provision_state;
        created.target_provision_state = n.target_provision_state;
        created.power_state = n.power_state;
        created.target_power_state = n.target_power_state;
        created.conductor_affinity = n.conductor_affinity.clone();
        store.update_node(&created).await.expect("update_node");
        *n = created;
    }
    setup.shutdown().await;
    store
        .reserve_node(deploying.uuid, "ghost")
        .await
        .expect("reserve");
    store
        .reserve_node(powering.uuid, "ghost")
        .await
        .expect("reserve");

    let c = start(&store, "survivor").await;
    // While the ghost counts as alive, its locks are left alone.
    let n = c.get_node(&"deploying".into()).await.unwrap();
    assert_eq!(n.reservation.as_deref(), Some("ghost"));
    assert_eq!(n.provision_state, S::Deploying);

    let failed = eventually("the orphaned deploy failed", || async {
        let n = c.get_node(&Ident::from("deploying")).await.unwrap();
        (n.provision_state == S::DeployFailed && n.reservation.is_none()).then_some(n)
    })
    .await;
    let err = failed.last_error.clone().unwrap_or_default();
    assert!(
        err.contains("ghost") && err.contains("offline") && err.contains("deploying"),
        "last_error says which conductor died and what was aborted: {err}"
    );
    let powering = eventually("the pending power action aborted", || async {
        let n = c.get_node(&Ident::from("powering")).await.unwrap();
        n.reservation.is_none().then_some(n)
    })
    .await;
    assert_eq!(powering.target_power_state, None);
    assert_eq!(powering.provision_state, S::Manageable);
    assert!(
        powering
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("Pending power operation was aborted")),
        "{:?}",
        powering.last_error
    );
    let active = eventually("the active node taken over", || async {
        let n = c.get_node(&Ident::from("active")).await.unwrap();
        (n.conductor_affinity.as_deref() == Some("survivor")).then_some(n)
    })
    .await;
    assert_eq!(
        active.provision_state,
        S::Active,
        "takeover keeps the instance"
    );
    assert_eq!(active.last_error, None);
    let ghost = c
        .list_conductors()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.hostname == "ghost")
        .expect("the dead conductor stays listed");
    assert!(!ghost.alive);

    // The failed deploy is not stuck: it can be deployed again.
    c.provision(&"deploying".into(), ProvisionRequest::new("active"))
        .await
        .expect("redeploy");
    let again = eventually("the redeploy finished", || async {
        let n = c.get_node(&Ident::from("deploying")).await.unwrap();
        (n.provision_state == S::Active && n.reservation.is_none()).then_some(n)
    })
    .await;
    assert_eq!(again.conductor_affinity.as_deref(), Some("survivor"));
    let history = c.history(&"deploying".into()).await.unwrap();
    assert!(
        history.iter().any(|e| e.event.contains("ghost")),
        "the takeover is in the node's history: {history:?}"
    );
    c.shutdown().await;
}

/// The next event about `node` that `rx` sees which `pick` accepts (at most 20 s).
async fn next_event<T>(
    rx: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    what: &str,
    mut pick: impl FnMut(&NodeEvent) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if let Some(v) = pick(&e) {
                        return v;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event channel closed while waiting for {what}: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Two conductors on one PostgreSQL database, each with its own store (its own
/// connections, as two processes have): each one's `subscribe()` sees what the
/// other changed, exactly once and in the order it was done; each names the
/// other, with the URL it registered, as the remote owner of the other's nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conductors_on_postgres_share_events_and_name_the_remote_owner() {
    let db = TestDatabase::create().await;
    let start_pg = |host: &'static str| {
        let url = db.url().to_owned();
        async move {
            let store = PostgresStore::connect(&url).await.expect("connect");
            let mut registry = InterfaceRegistry::with_noop();
            fake::register(&mut registry, FakeConfig::default());
            let mut cfg = config(host);
            cfg.url = Some(format!("http://{host}.example:6385"));
            Conductor::start(Arc::new(store) as Arc<dyn Store>, registry, cfg)
                .await
                .expect("start the conductor")
        }
    };
    let a = start_pg("conductor-a").await;
    let b = start_pg("conductor-b").await;
    let mut nodes = Vec::new();
    for i in 0..32 {
        let mut n = Node::new("fake-hardware");
        n.name = Some(format!("pg-node-{i}"));
        nodes.push(a.create_node(n).await.expect("create_node"));
    }
    eventually("both conductors on both rings", || async {
        let both = |c: &Conductor| {
            nodes
                .iter()
                .filter_map(|n| c.owner_of(n))
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                == 2
        };
        (both(&a) && both(&b)).then_some(())
    })
    .await;
    let of = |host: &str| {
        nodes
            .iter()
            .find(|n| a.owner_of(n).as_deref() == Some(host))
            .expect("a node of each conductor")
            .clone()
    };
    let (na, nb) = (of("conductor-a"), of("conductor-b"));
    assert_eq!(a.remote_owner(&na), None, "a owns na");
    let owner = b.remote_owner(&na).expect("a is na's remote owner for b");
    assert_eq!(
        (owner.host.as_str(), owner.url.as_str()),
        ("conductor-a", "http://conductor-a.example:6385")
    );
    assert_eq!(
        a.remote_owner(&nb).map(|o| o.url),
        Some("http://conductor-b.example:6385".to_owned())
    );

    let (mut rx_a, mut rx_b) = (a.subscribe(), b.subscribe());
    let maint = |node: ironic_core::ids::NodeId| {
        move |e: &NodeEvent| match e {
            NodeEvent::MaintenanceChanged {
                node: n,
                maintenance,
                ..
            } if *n == node => Some(*maintenance),
            _ => None,
        }
    };
    // A change made by b reaches a's subscribers, in order.
    b.set_maintenance(&nb.uuid.into(), true, Some("one".into()))
        .await
        .expect("maintenance on");
    b.set_maintenance(&nb.uuid.into(), false, None)
        .await
        .expect("maintenance off");
    assert!(next_event(&mut rx_a, "b's first change on a", maint(nb.uuid)).await);
    assert!(!next_event(&mut rx_a, "b's second change on a", maint(nb.uuid)).await);
    // ... and b's own subscribers saw it once: b's own events are not echoed back.
    assert!(next_event(&mut rx_b, "b's first change on b", maint(nb.uuid)).await);
    assert!(!next_event(&mut rx_b, "b's second change on b", maint(nb.uuid)).await);
    // A change by a, sent after b's, arrives after them on b: no echo in between.
    a.set_maintenance(&na.uuid.into(), true, None)
        .await
        .expect("maintenance on");
    let first = next_event(&mut rx_b, "a's change on b", |e| match e {
        NodeEvent::MaintenanceChanged { node, .. } => Some(*node),
        _ => None,
    })
    .await;
    assert_eq!(first, na.uuid, "no echo of b's own events");
    a.shutdown().await;
    b.shutdown().await;
}
