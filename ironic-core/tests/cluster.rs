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

/// Poll `check` (every 20 ms, at most 60 s: a loaded 2-core machine) until it returns `Some`.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
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

/// The next event about `node` that `rx` sees which `pick` accepts (at most 60 s).
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
    tokio::time::timeout(Duration::from_secs(60), wait)
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

/// A conductor of its own on the PostgreSQL database at `url`, with fake hardware
/// of its own (the returned handle counts what that conductor asked of it) and a
/// takeover check every 300 ms.
async fn start_on_postgres(url: &str, host: &str) -> (Conductor, fake::FakeControl) {
    let store = PostgresStore::connect(url).await.expect("connect");
    let mut registry = InterfaceRegistry::with_noop();
    let control = fake::register(&mut registry, FakeConfig::default());
    let mut cfg = config(host);
    cfg.sync_local_state_interval = Duration::from_millis(300);
    let c = Conductor::start(Arc::new(store) as Arc<dyn Store>, registry, cfg)
        .await
        .expect("start the conductor");
    (c, control)
}

/// Runs `verb` on `c` and waits for the node to settle in `target`, unlocked.
async fn settle(c: &Conductor, node: ironic_core::ids::NodeId, verb: &str, target: S) {
    c.provision(&node.into(), ProvisionRequest::new(verb))
        .await
        .unwrap_or_else(|e| panic!("{verb} {node}: {e}"));
    eventually(&format!("{node} {target} after {verb}"), || async {
        let n = c.get_node(&node.into()).await.expect("get_node");
        (n.provision_state == target && n.reservation.is_none()).then_some(())
    })
    .await;
}

/// Ironic's takeover on a real PostgreSQL with two conductors, each with its own
/// store and its own (fake) hardware: when one leaves, the other prepares the
/// boot configuration of the `active` nodes it came to own on *its* hardware
/// (`boot.prepare_instance`) and restarts their console; a takeover that fails
/// (the BMC did not answer) leaves a `last_error` and is done at the next
/// `sync_local_state_interval`, which clears it. When the conductor comes back,
/// the nodes that map to it again move back once, and nobody takes them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_nodes_are_prepared_again_by_their_new_owner_on_postgres() {
    let db = TestDatabase::create().await;
    let (a, _hw_a) = start_on_postgres(db.url(), "pg-a").await;
    let (b, hw_b) = start_on_postgres(db.url(), "pg-b").await;
    let mut nodes = Vec::new();
    for i in 0..16 {
        let mut n = Node::new("fake-hardware");
        n.name = Some(format!("takeover-{i}"));
        nodes.push(a.create_node(n).await.expect("create_node").uuid);
    }
    let reader = &b;
    let node_of = move |id: ironic_core::ids::NodeId| async move {
        reader.get_node(&id.into()).await.expect("get_node")
    };
    eventually("both conductors on both rings", || async {
        let mut owners = std::collections::BTreeSet::new();
        for id in &nodes {
            let n = node_of(*id).await;
            match (a.owner_of(&n), b.owner_of(&n)) {
                (Some(x), Some(y)) if x == y => owners.insert(x),
                _ => return None,
            };
        }
        (owners.len() == 2).then_some(())
    })
    .await;
    // Every node deployed by its owner, which records itself as the one that
    // prepared its boot configuration.
    let mut of_a = Vec::new();
    for id in &nodes {
        let owner = a.owner_of(&node_of(*id).await).expect("an owner");
        let c = if owner == "pg-a" { &a } else { &b };
        settle(c, *id, "manage", S::Manageable).await;
        settle(c, *id, "provide", S::Available).await;
        settle(c, *id, "active", S::Active).await;
        let n = node_of(*id).await;
        assert_eq!(n.conductor_affinity.as_deref(), Some(owner.as_str()));
        if owner == "pg-a" {
            of_a.push(*id);
        }
    }
    assert!(of_a.len() >= 2, "pg-a owns some nodes: {of_a:?}");
    // One of a's nodes has its console running on a's side.
    let with_console = of_a[0];
    a.set_console_mode(&with_console.into(), true)
        .await
        .expect("console on");
    for id in &of_a {
        assert_eq!(hw_b.node(*id).boot_target, None, "b never booted a's nodes");
    }
    // b's BMC does not answer the first boot preparation it is asked for.
    hw_b.fail_next(
        "boot.prepare_instance",
        1,
        ironic_core::ErrorKind::Unreachable,
        false,
    );

    a.shutdown().await;
    for id in &of_a {
        let n = eventually("b took the node over", || async {
            let n = node_of(*id).await;
            (n.conductor_affinity.as_deref() == Some("pg-b") && n.reservation.is_none())
                .then_some(n)
        })
        .await;
        assert_eq!(n.provision_state, S::Active, "takeover keeps the instance");
        assert_eq!(
            n.last_error, None,
            "a takeover that worked leaves no error (the failed attempt's is cleared)"
        );
        assert_eq!(
            hw_b.node(*id).boot_target,
            Some("instance"),
            "b prepared the instance's boot configuration on its hardware"
        );
    }
    let failed: Vec<_> = {
        let mut v = Vec::new();
        for id in &of_a {
            let h = b.history(&(*id).into()).await.expect("history");
            if h.iter()
                .any(|e| e.event.starts_with("Failed to take over node"))
            {
                v.push(*id);
            }
        }
        v
    };
    assert_eq!(
        failed.len(),
        1,
        "the failed takeover is in one node's history, and was retried: {failed:?}"
    );
    assert!(
        hw_b.node(with_console).console,
        "the console runs on the new owner"
    );
    assert!(node_of(with_console).await.console_enabled);

    // a comes back (new process, new hardware handle): the nodes that map to it
    // move back to it once, and stay.
    let (a, hw_a) = start_on_postgres(db.url(), "pg-a").await;
    eventually("the nodes that map to a are a's again", || async {
        for id in &nodes {
            let n = node_of(*id).await;
            let owner = a.owner_of(&n)?;
            if b.owner_of(&n).as_deref() != Some(owner.as_str())
                || n.conductor_affinity.as_deref() != Some(owner.as_str())
            {
                return None;
            }
        }
        Some(())
    })
    .await;
    let moved_back = nodes
        .iter()
        .filter(|id| hw_a.node(**id).boot_target == Some("instance"))
        .count();
    assert!(moved_back >= 1, "a prepared the nodes it owns again");
    let calls = (
        hw_a.calls("boot.prepare_instance"),
        hw_b.calls("boot.prepare_instance"),
    );
    // Several takeover checks (300 ms) and keep-alives (100 ms) later nobody took
    // a node again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        (
            hw_a.calls("boot.prepare_instance"),
            hw_b.calls("boot.prepare_instance")
        ),
        calls,
        "conductors do not fight over nodes"
    );
    for id in &nodes {
        let n = node_of(*id).await;
        assert_eq!(n.conductor_affinity, a.owner_of(&n));
        assert_eq!(n.provision_state, S::Active);
        assert_eq!(n.reservation, None);
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// Offline conductors are forgotten `forget_offline_after` after their last
/// keep-alive, once they hold no lock: a dead conductor's lock on a node the
/// survivor owns is released, then it is forgotten; one whose lock no live
/// conductor can release (its node's group has no conductor) stays listed; one
/// that comes back registers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_conductors_are_forgotten_once_they_hold_no_lock() {
    let store = Arc::new(MemoryStore::new());
    let setup = start(&store, "setup").await;
    let mut served = setup
        .create_node(Node::new("fake-hardware"))
        .await
        .expect("create_node");
    served.name = Some("served".into());
    store.update_node(&served).await.expect("update_node");
    let mut unserved = Node::new("fake-hardware");
    unserved.conductor_group = "rack-z".into();
    let unserved = setup.create_node(unserved).await.expect("create_node");
    setup.shutdown().await;
    for ghost in ["ghost-locked", "ghost-idle", "ghost-stuck"] {
        let mut g = ConductorRecord::new(ghost);
        g.drivers = vec!["fake-hardware".into()];
        store.upsert_conductor(&g).await.expect("upsert");
    }
    store
        .reserve_node(served.uuid, "ghost-locked")
        .await
        .expect("reserve");
    store
        .reserve_node(unserved.uuid, "ghost-stuck")
        .await
        .expect("reserve");

    let mut cfg = config("survivor");
    cfg.forget_offline_after = Duration::from_secs(2);
    let mut registry = InterfaceRegistry::with_noop();
    fake::register(&mut registry, FakeConfig::default());
    let c = Conductor::start(store.clone() as Arc<dyn Store>, registry, cfg)
        .await
        .expect("start the conductor");
    let hosts = |c: &Conductor| {
        let c = c.clone();
        async move {
            c.list_conductors()
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.hostname)
                .collect::<Vec<_>>()
        }
    };
    eventually("the idle and the released ghosts forgotten", || async {
        let h = hosts(&c).await;
        (!h.iter().any(|h| h == "ghost-idle" || h == "ghost-locked")).then_some(())
    })
    .await;
    let n = c.get_node(&"served".into()).await.unwrap();
    assert_eq!(n.reservation, None, "its lock was released first");
    // The stuck ghost's lock is on a node no live conductor serves: nobody can
    // release it, so the ghost stays, offline, for a conductor of rack-z to find.
    let h = hosts(&c).await;
    assert!(h.contains(&"ghost-stuck".to_owned()), "{h:?}");
    assert!(h.contains(&"survivor".to_owned()), "{h:?}");
    let n = c.get_node(&unserved.uuid.into()).await.unwrap();
    assert_eq!(n.reservation.as_deref(), Some("ghost-stuck"));

    // A forgotten conductor that comes back registers again.
    let back = start(&store, "ghost-idle").await;
    let again = c
        .list_conductors()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.hostname == "ghost-idle")
        .expect("registered again");
    assert!(again.alive);
    back.shutdown().await;
    c.shutdown().await;
}
