//! Store operations side by side: `MemoryStore`, SQLite file (WAL), SQLite in memory.
//!
//! `cargo bench -p ironic-benches --bench store`
//!
//! * `create_node`: insert one node (the table grows as the bench runs).
//! * `get_node`: read one node by UUID out of 1,000.
//! * `list_nodes_1000`: list 1,000 nodes (one driver's worth).
//! * `reserve_release`: take and drop the node lock.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ironic_core::Node;
use ironic_core::store::{MemoryStore, NodeQuery, SqliteStore, Store};
use serde_json::json;

/// A node shaped like a real one (driver_info, properties, interfaces, extra).
fn node(driver: &str, i: usize) -> Node {
    let mut n = Node::new(driver);
    n.name = Some(format!("{driver}-{i:05}"));
    n.driver_info
        .insert("ipmi_address", format!("10.0.{}.{}", i / 250, i % 250));
    n.driver_info.insert("ipmi_username", "admin");
    n.driver_info.insert("ipmi_password", "password");
    n.properties.insert("cpus".into(), json!(32));
    n.properties.insert("memory_mb".into(), json!(131_072));
    n.properties.insert("local_gb".into(), json!(900));
    n.properties.insert("cpu_arch".into(), json!("x86_64"));
    n.properties
        .insert("capabilities".into(), json!("boot_mode:uefi"));
    n.extra.insert("rack".into(), json!(format!("r{}", i / 40)));
    n.resource_class = Some("baremetal".into());
    n.traits = vec!["CUSTOM_RACK".into()];
    for &t in ironic_core::model::InterfaceType::ALL {
        n.interfaces.set(t, "fake");
    }
    n
}

struct Backend {
    name: &'static str,
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = SqliteStore::open(dir.path().join("bench.sqlite"))
        .await
        .expect("open SQLite file");
    vec![
        Backend {
            name: "memory",
            store: Arc::new(MemoryStore::new()),
            _dir: None,
        },
        Backend {
            name: "sqlite-file",
            store: Arc::new(file),
            _dir: Some(dir),
        },
        Backend {
            name: "sqlite-memory",
            store: Arc::new(SqliteStore::in_memory().await.expect("in-memory SQLite")),
            _dir: None,
        },
    ]
}

fn store_ops(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let backends = rt.block_on(backends());

    // 1,000 nodes of one driver, for get/list/reserve.
    let fleet: Vec<(String, Vec<Node>)> = rt.block_on(async {
        let mut out = Vec::new();
        for b in &backends {
            let nodes: Vec<Node> = (0..1000).map(|i| node("fleet", i)).collect();
            for n in &nodes {
                b.store.create_node(n).await.expect("create_node");
            }
            out.push((b.name.to_owned(), nodes));
        }
        out
    });

    let mut g = c.benchmark_group("store");
    for (b, (_, nodes)) in backends.iter().zip(&fleet) {
        let store = &b.store;
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("create_node", b.name), |bench| {
            bench.to_async(&rt).iter(|| {
                i += 1;
                let n = node("create", i);
                async move { store.create_node(&n).await.expect("create_node") }
            })
        });
        let target = nodes[500].uuid;
        g.bench_function(BenchmarkId::new("get_node", b.name), |bench| {
            bench
                .to_async(&rt)
                .iter(|| async { store.get_node(&target.into()).await.expect("get_node") })
        });
        let mut query = NodeQuery::default();
        query.filter.driver = Some("fleet".into());
        g.bench_function(BenchmarkId::new("list_nodes_1000", b.name), |bench| {
            bench.to_async(&rt).iter(|| async {
                let l = store.list_nodes(&query).await.expect("list_nodes");
                assert_eq!(l.len(), 1000);
            })
        });
        g.bench_function(BenchmarkId::new("reserve_release", b.name), |bench| {
            bench.to_async(&rt).iter(|| async {
                store.reserve_node(target, "bench").await.expect("reserve");
                store.release_node(target, "bench").await.expect("release");
            })
        });
    }
    g.finish();
}

criterion_group!(benches, store_ops);
criterion_main!(benches);
