//! A fleet of fake nodes through the conductor: enroll → manage (verify) →
//! provide (automated cleaning) → available → deploy → active → undeploy
//! (tear down + cleaning) → available, on `MemoryStore`, on a SQLite file, and
//! on PostgreSQL with one conductor and with three (issue 12).
//!
//! `cargo bench -p ironic-benches --bench fleet`
//!
//! `postgres` and `postgres-3` need the server `scripts/setup-test-deps.sh` starts
//! (or `IRONIC_TEST_POSTGRES_URL`); each run gets a new database. With three
//! conductors each has its own store (connection pool), they share the database
//! as three processes would, and every action on a node goes to its owner on the
//! hash ring (all three run in this process, on the same cores: this measures
//! what the coordination costs, not what three machines add). `FLEET_STORES`
//! picks the full-size runs (default `memory,sqlite,postgres,postgres-3`);
//! `FLEET_CRITERION=0` skips the criterion part. `FLEET_SQLITE_CONNECTIONS`,
//! `FLEET_SQLITE_CACHE_KIB` and `FLEET_SQLITE_AUTOCHECKPOINT` override the SQLite
//! store's `max_connections`, `writer_cache_kib` and `wal_autocheckpoint`.
//!
//! First, one full-size run per store (`FLEET_NODES`, default 10,000) in a child
//! process of its own, so that its peak memory (`VmHWM` from `/proc/self/status`)
//! is the run's alone; it prints nodes per second and peak memory. Then criterion
//! measures a smaller fleet (`FLEET_BENCH_NODES`, default 500) per iteration.
//!
//! The fakes have no delay: this measures the engine (locks, state machine, steps,
//! store writes, events), not hardware. At most `FLEET_PARALLEL` (default 256)
//! nodes are in flight at once, under the conductor's 300 workers, the way a
//! client batches its requests.

#![allow(missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group};
use futures::StreamExt;
use ironic_core::conductor::{Conductor, ConductorConfig, NodeEvent, ProvisionRequest};
use ironic_core::fake::{self, FakeConfig};
use ironic_core::store::conformance::TestDatabase;
use ironic_core::store::{MemoryStore, PostgresStore, SqliteOptions, SqliteStore, Store};
use ironic_core::{Error, Ident, InterfaceRegistry, Node, NodeId, ProvisionState as S};
use tokio::sync::{broadcast, oneshot};

const CHILD: &str = "IRONIC_FLEET_CHILD";

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

type WaitMap = HashMap<NodeId, (S, oneshot::Sender<()>)>;

/// Routes `ProvisionStateChanged` events to whoever waits for a node to reach a state.
#[derive(Clone, Default)]
struct Waiters {
    inner: Arc<Mutex<WaitMap>>,
}

impl Waiters {
    fn expect(&self, node: NodeId, state: S) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.inner.lock().unwrap().insert(node, (state, tx));
        rx
    }

    fn fire(&self, node: NodeId, state: S) {
        let mut m = self.inner.lock().unwrap();
        if m.get(&node).is_some_and(|(s, _)| *s == state)
            && let Some((_, tx)) = m.remove(&node)
        {
            let _ = tx.send(());
        }
    }

    /// After lagging behind the event stream: check every waiter against the store.
    async fn resync(&self, store: &Arc<dyn Store>) {
        let pending: Vec<(NodeId, S)> = self
            .inner
            .lock()
            .unwrap()
            .iter()
            .map(|(n, (s, _))| (*n, *s))
            .collect();
        for (n, s) in pending {
            if let Ok(node) = store.get_node(&n.into()).await
                && node.provision_state == s
            {
                self.fire(n, s);
            }
        }
    }

    fn spawn(&self, c: &Conductor) -> tokio::task::JoinHandle<()> {
        let w = self.clone();
        let store = c.store().clone();
        let mut rx = c.subscribe();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(NodeEvent::ProvisionStateChanged { node, to, .. }) => w.fire(node, to),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => w.resync(&store).await,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    }
}

async fn verb(c: &Conductor, w: &Waiters, id: NodeId, target: &str, until: S) {
    let rx = w.expect(id, until);
    let ident: Ident = id.into();
    loop {
        match c.provision(&ident, ProvisionRequest::new(target)).await {
            Ok(()) => break,
            // the previous operation's worker is still releasing the lock
            Err(Error::NodeLocked { .. }) | Err(Error::NoFreeWorker) => {
                tokio::time::sleep(Duration::from_millis(1)).await
            }
            Err(e) => panic!("{target} on {id}: {e}"),
        }
    }
    // state reached before we registered? (cannot happen: registered first) — but
    // guard against a missed event anyway
    match tokio::time::timeout(Duration::from_secs(120), rx).await {
        Ok(_) => {}
        Err(_) => panic!("node {id} did not reach {until} after {target}"),
    }
}

async fn lifecycle(cs: &[Conductor], w: &Waiters, i: usize) {
    let mut n = Node::new("fake-hardware");
    n.name = Some(format!("fleet-{i:06}"));
    n.resource_class = Some("baremetal".into());
    n.driver_info
        .insert("fake_address", format!("10.1.{}.{}", i / 250, i % 250));
    let n = cs[0].create_node(n).await.expect("create_node");
    // The node's owner on the hash ring does the work (an API forwards to it).
    let c = cs
        .iter()
        .find(|c| c.owner_of(&n).as_deref() == Some(c.config().host.as_str()))
        .unwrap_or(&cs[0]);
    verb(c, w, n.uuid, "manage", S::Manageable).await;
    verb(c, w, n.uuid, "provide", S::Available).await;
    verb(c, w, n.uuid, "active", S::Active).await;
    verb(c, w, n.uuid, "deleted", S::Available).await;
}

async fn conductor(store: Arc<dyn Store>, host: &str) -> Conductor {
    let mut reg = InterfaceRegistry::with_noop();
    fake::register(&mut reg, FakeConfig::default());
    let cfg = {
        let mut v = ConductorConfig::default();
        v.host = host.into();
        v.conductor_heartbeat_interval = Duration::from_millis(500);
        v.node_locked_retry_attempts = 1;
        v.node_locked_retry_interval = Duration::from_millis(1);
        v.power_state_sync_interval = Duration::ZERO;
        v
    };
    Conductor::start(store, reg, cfg).await.expect("start")
}

/// Run `nodes` lifecycles with `parallel` in flight on one conductor per store
/// (all on one database); returns the elapsed time.
async fn fleet(stores: Vec<Arc<dyn Store>>, nodes: usize, parallel: usize) -> Duration {
    let mut cs = Vec::new();
    for (i, store) in stores.into_iter().enumerate() {
        cs.push(conductor(store, &format!("bench-{}", i + 1)).await);
    }
    if cs.len() > 1 {
        // Every conductor's rings hold all of them (keep-alives every 500 ms).
        let probe = cs[0]
            .create_node(Node::new("fake-hardware"))
            .await
            .expect("create_node");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let live = cs[0].list_conductors().await.expect("list_conductors");
            let owners: Vec<_> = cs.iter().map(|c| c.owner_of(&probe)).collect();
            if live.iter().filter(|c| c.alive).count() == cs.len()
                && owners.iter().all(|o| o.is_some() && *o == owners[0])
            {
                tokio::time::sleep(Duration::from_secs(1)).await;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the conductors did not see each other"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cs[0]
            .delete_node(&probe.uuid.into())
            .await
            .expect("delete the probe");
    }
    let w = Waiters::default();
    let routers: Vec<_> = cs.iter().map(|c| w.spawn(c)).collect();
    let start = Instant::now();
    futures::stream::iter(0..nodes)
        .for_each_concurrent(parallel, |i| {
            let (cs, w) = (&cs, w.clone());
            async move { lifecycle(cs, &w, i).await }
        })
        .await;
    let took = start.elapsed();
    for c in &cs {
        c.shutdown().await;
    }
    for r in routers {
        r.abort();
    }
    took
}

/// User + system CPU time of this process so far (`/proc/self/stat`, 100 Hz ticks).
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // fields 14 and 15 (utime, stime) are the 12th and 13th after the name
    (t(11) + t(12)) / 100.0
}

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The stores of a run: one, or one per conductor on one PostgreSQL database
/// (kept alive by the returned `TestDatabase`, dropped after the run).
async fn stores_for(
    kind: &str,
    dir: &std::path::Path,
) -> (Vec<Arc<dyn Store>>, Option<TestDatabase>) {
    let pg = |n: usize| async move {
        let db = TestDatabase::create().await;
        let mut v: Vec<Arc<dyn Store>> = Vec::new();
        for _ in 0..n {
            v.push(Arc::new(
                PostgresStore::connect(db.url())
                    .await
                    .expect("connect to PostgreSQL"),
            ));
        }
        (v, Some(db))
    };
    match kind {
        "memory" => (vec![Arc::new(MemoryStore::new())], None),
        "sqlite" => {
            // The store's options, each from the environment when set (to compare them).
            let mut o = SqliteOptions::default();
            o.max_connections = env_usize("FLEET_SQLITE_CONNECTIONS", o.max_connections as usize)
                .try_into()
                .expect("FLEET_SQLITE_CONNECTIONS");
            o.writer_cache_kib = env_usize("FLEET_SQLITE_CACHE_KIB", o.writer_cache_kib as usize)
                .try_into()
                .expect("FLEET_SQLITE_CACHE_KIB");
            o.wal_autocheckpoint =
                env_usize("FLEET_SQLITE_AUTOCHECKPOINT", o.wal_autocheckpoint as usize)
                    .try_into()
                    .expect("FLEET_SQLITE_AUTOCHECKPOINT");
            (
                vec![Arc::new(
                    SqliteStore::open_with(dir.join("fleet.sqlite"), o)
                        .await
                        .expect("open SQLite"),
                )],
                None,
            )
        }
        "postgres" => pg(1).await,
        "postgres-3" => pg(3).await,
        other => panic!("unknown store {other}"),
    }
}

/// The child: one full-size run, figures on stdout.
fn child(kind: &str) {
    let nodes = env_usize("FLEET_NODES", 10_000);
    let parallel = env_usize("FLEET_PARALLEL", 256);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let before = vm_hwm_kib().unwrap_or(0);
    let cpu_before = cpu_secs();
    let took = rt.block_on(async {
        let (stores, db) = stores_for(kind, dir.path()).await;
        let took = fleet(stores, nodes, parallel).await;
        drop(db);
        took
    });
    let hwm = vm_hwm_kib().unwrap_or(0);
    let cpu = cpu_secs() - cpu_before;
    println!(
        "fleet/{kind}: {nodes} nodes enroll→available→active→available in {:.2} s = {:.0} nodes/s; conductor CPU {:.1} s (user+sys, this process; not the database server's); peak memory (VmHWM) {:.1} MiB (at start {:.1} MiB)",
        took.as_secs_f64(),
        nodes as f64 / took.as_secs_f64(),
        cpu,
        hwm as f64 / 1024.0,
        before as f64 / 1024.0,
    );
}

fn full_size_runs() {
    let exe = std::env::current_exe().expect("current_exe");
    let kinds = std::env::var("FLEET_STORES")
        .unwrap_or_else(|_| "memory,sqlite,postgres,postgres-3".into());
    for kind in kinds.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        let out = std::process::Command::new(&exe)
            .env(CHILD, kind)
            .output()
            .expect("run the fleet child");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            panic!("the {kind} fleet run failed");
        }
    }
}

fn bench(c: &mut Criterion) {
    let nodes = env_usize("FLEET_BENCH_NODES", 500);
    let parallel = env_usize("FLEET_PARALLEL", 256);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut g = c.benchmark_group("fleet_lifecycle");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Elements(nodes as u64));
    for kind in ["memory", "sqlite"] {
        g.bench_with_input(BenchmarkId::new(kind, nodes), &kind, |b, kind| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().expect("tempdir");
                    total += rt.block_on(async {
                        let (stores, _db) = stores_for(kind, dir.path()).await;
                        fleet(stores, nodes, parallel).await
                    });
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(kind) = std::env::var(CHILD) {
        child(&kind);
        return;
    }
    full_size_runs();
    if std::env::var("FLEET_CRITERION").as_deref() == Ok("0") {
        return;
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
