//! What an operator's tools cost on a big conductor: a `GET /metrics` scrape and
//! one dashboard page, over 1,000 and 10,000 nodes (fake hardware, in-memory
//! store, the `ironic` binary's real API router on loopback).
//!
//! `cargo bench -p ironic-benches --bench observability`
//!
//! * `metrics_scrape/N`: `GET /metrics` (reads every node: state, power,
//!   maintenance, fault and budget gauges) and its text.
//! * `dashboard_page/N`: `GET /dashboard/api/nodes?limit=50` (one page, the
//!   total and the count per state).
//! * `dashboard_filtered/N`: the same filtered to one provision state.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ironic_core::conductor::{Conductor, ConductorConfig};
use ironic_core::store::{MemoryStore, Store};
use ironic_core::{InterfaceRegistry, Node, PowerState, ProvisionState};
use ironic_standalone::api::{self, ApiSettings, ApiState, DashboardSettings};
use ironic_standalone::metrics::Metrics;

const STATES: [ProvisionState; 5] = [
    ProvisionState::Available,
    ProvisionState::Active,
    ProvisionState::DeployWait,
    ProvisionState::CleanWait,
    ProvisionState::Manageable,
];

async fn serve(n: usize) -> (String, Conductor) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    for i in 0..n {
        let mut node = Node::new("fake-hardware");
        node.name = Some(format!("node-{i:05}"));
        node.provision_state = STATES[i % STATES.len()];
        node.power_state = Some(if i % 2 == 0 {
            PowerState::On
        } else {
            PowerState::Off
        });
        node.provision_state_since = Some(ironic_core::model::now());
        node.maintenance = i % 97 == 0;
        for t in ironic_core::model::InterfaceType::ALL {
            node.interfaces.set(*t, "fake");
        }
        store.create_node(&node).await.expect("create node");
    }
    let mut reg = InterfaceRegistry::with_noop();
    ironic_core::fake::register(&mut reg, Default::default());
    let mut cfg = ConductorConfig::default();
    cfg.power_state_sync_interval = Duration::ZERO;
    cfg.check_provision_state_interval = Duration::ZERO;
    cfg.state_budget_check_interval = Duration::ZERO;
    cfg.state_budgets
        .insert(ProvisionState::DeployWait, Duration::from_secs(1800));
    cfg.state_budgets
        .insert(ProvisionState::CleanWait, Duration::from_secs(1800));
    let metrics = Arc::new(Metrics::new());
    let c = Conductor::start_observed(store, reg, cfg, metrics.clone())
        .await
        .expect("start conductor");
    let state = ApiState::new(c.clone(), ApiSettings::default(), None)
        .with_metrics(metrics)
        .with_dashboard(DashboardSettings {
            enabled: true,
            read_only: false,
        });
    let app = api::router(state);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, c)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let http = reqwest::Client::new();
    let mut g = c.benchmark_group("observability");
    g.sample_size(20);
    for n in [1_000usize, 10_000] {
        let (url, _conductor) = rt.block_on(serve(n));
        for (name, path) in [
            ("metrics_scrape", "/metrics".to_owned()),
            ("dashboard_page", "/dashboard/api/nodes?limit=50".to_owned()),
            (
                "dashboard_filtered",
                // DeployWait as the API names it
                "/dashboard/api/nodes?limit=50&provision_state=wait%20call-back".to_owned(),
            ),
        ] {
            let u = format!("{url}{path}");
            g.bench_with_input(BenchmarkId::new(name, n), &u, |b, u| {
                b.to_async(&rt).iter(|| async {
                    let r = http.get(u).send().await.expect("GET");
                    assert!(r.status().is_success(), "{u}: {}", r.status());
                    r.bytes().await.expect("body").len()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
