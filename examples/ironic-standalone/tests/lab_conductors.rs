//! `ironic lab --conductors 3 --database URL`: the lab's service as three
//! conductors (this process and two `ironic serve` processes) on one real
//! PostgreSQL database; one is killed with SIGKILL and the others take its nodes.
//!
//! Needs a PostgreSQL server: `scripts/setup-test-deps.sh` starts one (or set
//! IRONIC_TEST_POSTGRES_URL); the test creates and drops its own database.

mod api_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use api_support::call;
use ironic_core::store::conformance::TestDatabase;
use ironic_standalone::lab::conductors;
use ironic_standalone::lab::run::{Lab, LabOptions};
use serde_json::{Value, json};

async fn get(base: &str, path: &str) -> Value {
    let (s, v) = call(base, reqwest::Method::GET, path, None).await;
    assert_eq!(s, 200, "GET {path}: {v}");
    v
}

/// Poll `check` (every 200 ms, at most `secs`) until it returns `Some`.
async fn eventually<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// name → (conductor, power_state, reservation) of every node, as the API shows them.
async fn nodes(base: &str) -> Vec<(String, Value, Value, Value)> {
    let v = get(base, "/v1/nodes?detail=true").await;
    v["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap_or_default().to_owned(),
                n["conductor"].clone(),
                n["power_state"].clone(),
                n["reservation"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_runs_three_conductors_and_survives_a_kill_9() {
    let db = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = LabOptions::new(dir.path().to_path_buf());
    opts.api_listen = "127.0.0.1:0".parse().unwrap();
    opts.servers = 9;
    // BMCs only: manage and provide need no agent without cleaning.
    opts.agents = false;
    opts.automated_clean = false;
    opts.ready_timeout = Duration::from_secs(120);
    opts.conductors = 3;
    opts.database = Some(db.url().to_owned());
    opts.conductor_binary = Some(env!("CARGO_BIN_EXE_ironic").into());
    let lab = Lab::start(&opts).await.expect("the lab starts");
    assert_eq!(lab.conductors.len(), 2, "two conductor processes");
    let api = format!("http://{}", lab.api.addr());
    let hosts: BTreeSet<String> = (1..=3).map(conductors::host).collect();
    eventually("three live conductors", 30, || async {
        let v = get(&api, "/v1/conductors").await;
        let alive: BTreeSet<String> = v["conductors"]
            .as_array()?
            .iter()
            .filter(|c| c["alive"] == json!(true))
            .filter_map(|c| c["hostname"].as_str().map(str::to_owned))
            .collect();
        (alive == hosts).then_some(())
    })
    .await;
    // Every conductor's ring has all three before the nodes are driven, so each
    // action runs on its node's owner.
    tokio::time::sleep(Duration::from_secs(conductors::HEARTBEAT_INTERVAL + 1)).await;
    let failures = lab.make_available(opts.ready_timeout).await;
    assert!(failures.is_empty(), "{failures:?}");

    let owners: Vec<_> = nodes(&api).await;
    let spread: BTreeSet<&str> = owners.iter().filter_map(|n| n.1.as_str()).collect();
    assert!(
        spread.len() >= 2,
        "the ring spreads 9 nodes over the conductors: {owners:?}"
    );
    assert!(spread.iter().all(|h| hosts.contains(*h)), "{owners:?}");
    // Kill -9 the conductor process that owns the most nodes.
    let victim = lab
        .conductors
        .iter()
        .max_by_key(|c| owners.iter().filter(|n| n.1 == json!(c.host)).count())
        .expect("a conductor process");
    let orphans: Vec<String> = owners
        .iter()
        .filter(|n| n.1 == json!(victim.host))
        .map(|n| n.0.clone())
        .collect();
    assert!(
        !orphans.is_empty(),
        "{} owns some nodes: {owners:?}",
        victim.host
    );
    let pid = rustix::process::Pid::from_raw(victim.pid as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("kill -9");

    // Within heartbeat_timeout and a keep-alive (plus slack for a loaded machine)
    // it is offline and its nodes have a live owner; nothing stays locked.
    let victim_host = victim.host.clone();
    eventually("the killed conductor's nodes taken over", 60, || async {
        let v = get(&api, "/v1/conductors").await;
        let dead = v["conductors"]
            .as_array()?
            .iter()
            .any(|c| c["hostname"] == json!(victim_host) && c["alive"] == json!(false));
        let now = nodes(&api).await;
        let taken = now.iter().filter(|n| orphans.contains(&n.0)).all(|n| {
            n.1.as_str()
                .is_some_and(|h| h != victim_host && hosts.contains(h))
                && n.3.is_null()
        });
        (dead && taken).then_some(())
    })
    .await;
    // A node of the dead conductor obeys its new owner, which drives its
    // simulated BMC.
    let node = &orphans[0];
    let (s, v) = call(
        &api,
        reqwest::Method::PUT,
        &format!("/v1/nodes/{node}/states/power"),
        Some(json!({"target": "power on"})),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    eventually("the taken-over node powered on", 60, || async {
        let n = get(&api, &format!("/v1/nodes/{node}")).await;
        (n["power_state"] == json!("power on") && n["reservation"].is_null()).then_some(())
    })
    .await;
    let n = get(&api, &format!("/v1/nodes/{node}")).await;
    assert_eq!(n["provision_state"], json!("available"), "{n}");
    assert!(n["last_error"].is_null(), "{n}");
    lab.shutdown().await;
}
