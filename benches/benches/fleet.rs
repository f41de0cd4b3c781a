//! A fleet of fake nodes through the conductor: enroll → manage (verify) →
//! provide (automated cleaning) → available → deploy → active → undeploy
//! (tear down + cleaning) → available, on `MemoryStore` and on a SQLite file.
//!
//! `cargo bench -p ironic-benches --bench fleet`
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
use ironic_core::store::{MemoryStore, SqliteStore, Store};
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

async fn lifecycle(c: &Conductor, w: &Waiters, i: usize) {
    let mut n = Node::new("fake-hardware");
    n.name = Some(format!("fleet-{i:06}"));
    n.resource_class = Some("baremetal".into());
    n.driver_info
        .insert("fake_address", format!("10.1.{}.{}", i / 250, i % 250));
    let n = c.create_node(n).await.expect("create_node");
    verb(c, w, n.uuid, "manage", S::Manageable).await;
    verb(c, w, n.uuid, "provide", S::Available).await;
    verb(c, w, n.uuid, "active", S::Active).await;
    verb(c, w, n.uuid, "deleted", S::Available).await;
}

async fn conductor(store: Arc<dyn Store>) -> Conductor {
    let mut reg = InterfaceRegistry::with_noop();
    fake::register(&mut reg, FakeConfig::default());
    let cfg = {
        let mut v = ConductorConfig::default();
        v.host = "bench".into();
        v.node_locked_retry_attempts = 1;
        v.node_locked_retry_interval = Duration::from_millis(1);
        v.power_state_sync_interval = Duration::ZERO;
        v
    };
    Conductor::start(store, reg, cfg).await.expect("start")
}

/// Run `nodes` lifecycles with `parallel` in flight; returns the elapsed time.
async fn fleet(store: Arc<dyn Store>, nodes: usize, parallel: usize) -> Duration {
    let c = conductor(store).await;
    let w = Waiters::default();
    let router = w.spawn(&c);
    let start = Instant::now();
    futures::stream::iter(0..nodes)
        .for_each_concurrent(parallel, |i| {
            let (c, w) = (c.clone(), w.clone());
            async move { lifecycle(&c, &w, i).await }
        })
        .await;
    let took = start.elapsed();
    c.shutdown().await;
    router.abort();
    took
}

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn store_for(kind: &str, dir: &std::path::Path) -> Arc<dyn Store> {
    match kind {
        "memory" => Arc::new(MemoryStore::new()),
        "sqlite" => Arc::new(
            SqliteStore::open(dir.join("fleet.sqlite"))
                .await
                .expect("open SQLite"),
        ),
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
    let took = rt.block_on(async {
        let store = store_for(kind, dir.path()).await;
        fleet(store, nodes, parallel).await
    });
    let hwm = vm_hwm_kib().unwrap_or(0);
    println!(
        "fleet/{kind}: {nodes} nodes enroll→available→active→available in {:.2} s = {:.0} nodes/s; peak memory (VmHWM) {:.1} MiB (at start {:.1} MiB)",
        took.as_secs_f64(),
        nodes as f64 / took.as_secs_f64(),
        hwm as f64 / 1024.0,
        before as f64 / 1024.0,
    );
}

fn full_size_runs() {
    let exe = std::env::current_exe().expect("current_exe");
    for kind in ["memory", "sqlite"] {
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
                        let store = store_for(kind, dir.path()).await;
                        fleet(store, nodes, parallel).await
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
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
