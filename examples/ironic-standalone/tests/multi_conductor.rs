//! Several `ironic serve` processes (conductors) on one real PostgreSQL database.
//!
//! Needs a PostgreSQL server: `scripts/setup-test-deps.sh` starts one (or set
//! IRONIC_TEST_POSTGRES_URL); each test creates and drops its own database.

mod api_support;

use api_support::{Ironic, call, rt};
use ironic_core::store::conformance::TestDatabase;
use serde_json::{Value, json};

/// `ironic` as conductor `host` on the database `url`.
fn conductor(db: &TestDatabase, host: &str) -> Ironic {
    Ironic::start(
        &[],
        &[
            ("IRONIC__STORAGE__BACKEND", "postgres"),
            ("IRONIC__STORAGE__URL", db.url()),
            ("IRONIC__CONDUCTOR__HOST", host),
        ],
    )
}

#[test]
fn a_refused_database_is_a_clear_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ironic"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(dir.path())
        .env("IRONIC__STORAGE__BACKEND", "postgres")
        .env(
            "IRONIC__STORAGE__URL",
            format!("postgres://ironic:hunter2@127.0.0.1:{port}/ironic"),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect") && err.contains(&port.to_string()),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "the password leaked: {err}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ironic"))
        .arg("--data-dir")
        .arg(dir.path())
        .env("IRONIC__STORAGE__BACKEND", "postgres")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("storage.url"), "{err}");
}

#[test]
fn two_processes_share_one_database() {
    let rt = rt();
    let db = rt.block_on(TestDatabase::create());
    let a = conductor(&db, "conductor-a");
    let b = conductor(&db, "conductor-b");
    rt.block_on(async {
        let (s, n) = call(
            &a.url,
            reqwest::Method::POST,
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware", "name": "shared-1"})),
        )
        .await;
        assert_eq!(s, 201, "{n}");
        let (s, seen) = call(&b.url, reqwest::Method::GET, "/v1/nodes/shared-1", None).await;
        assert_eq!(s, 200, "{seen}");
        assert_eq!(seen["uuid"], n["uuid"]);
        let (s, _) = call(
            &b.url,
            reqwest::Method::POST,
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware", "name": "shared-1"})),
        )
        .await;
        assert_eq!(s, 409, "names are unique across processes");
        let (_, c) = call(&a.url, reqwest::Method::GET, "/v1/conductors", None).await;
        let hosts: Vec<&str> = c["conductors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["hostname"].as_str())
            .collect();
        assert!(
            hosts.contains(&"conductor-a") && hosts.contains(&"conductor-b"),
            "{c}"
        );
    });
    drop((a, b));
}

/// `ironic` as conductor `host` on `db`, with fast keep-alives (offline after 3 s),
/// deploys that take `deploy_delay` seconds, and no automated cleaning.
fn fast_conductor(db: &TestDatabase, host: &str, deploy_delay: &str) -> Ironic {
    Ironic::start(
        &[],
        &[
            ("IRONIC__STORAGE__BACKEND", "postgres"),
            ("IRONIC__STORAGE__URL", db.url()),
            ("IRONIC__CONDUCTOR__HOST", host),
            ("IRONIC__CONDUCTOR__CONDUCTOR_HEARTBEAT_INTERVAL", "1"),
            ("IRONIC__CONDUCTOR__HEARTBEAT_TIMEOUT", "3"),
            ("IRONIC__CONDUCTOR__AUTOMATED_CLEAN", "false"),
            ("IRONIC__CONDUCTOR__MAX_CONCURRENT_OPERATIONS", "500"),
            ("IRONIC__FAKE__DEPLOY_DELAY", deploy_delay),
        ],
    )
}

async fn nodes(base: &str) -> Vec<Value> {
    let (s, v) = call(
        base,
        reqwest::Method::GET,
        "/v1/nodes?detail=true&limit=1000",
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["nodes"].as_array().cloned().unwrap_or_default()
}

async fn set_state(base: &str, node: &str, target: &str) {
    let (s, v) = call(
        base,
        reqwest::Method::PUT,
        &format!("/v1/nodes/{node}/states/provision"),
        Some(json!({ "target": target })),
    )
    .await;
    assert_eq!(s, 202, "{target} on {node}: {v}");
}

/// Poll the node list on `base` until `done` holds (at most `secs` seconds).
async fn wait_nodes(
    base: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let all = nodes(base).await;
        if done(&all) {
            return all;
        }
        if std::time::Instant::now() > deadline {
            let states: std::collections::BTreeMap<String, usize> =
                all.iter().fold(Default::default(), |mut m, n| {
                    *m.entry(format!(
                        "{} reserved by {}",
                        n["provision_state"], n["reservation"]
                    ))
                    .or_default() += 1;
                    m
                });
            panic!("timed out waiting for {what}: {states:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Three conductors on one database: 300 nodes enrolled through one API, deployed
/// through another; that conductor is killed with SIGKILL mid-deploy. No node is
/// lost, every orphan is failed by its new owner with a `last_error` naming the
/// dead conductor within the heartbeat timeout plus a keep-alive or two, and is
/// deployed again. Every API names the same owner for each node.
#[test]
fn a_conductor_killed_mid_deploy_is_taken_over() {
    const N: usize = 300;
    let rt = rt();
    let db = rt.block_on(TestDatabase::create());
    let a = fast_conductor(&db, "conductor-a", "0");
    let mut b = fast_conductor(&db, "conductor-b", "60");
    let c = fast_conductor(&db, "conductor-c", "0");
    rt.block_on(async {
        for i in 0..N {
            let (s, v) = call(
                &a.url,
                reqwest::Method::POST,
                "/v1/nodes",
                Some(json!({"driver": "fake-hardware", "name": format!("n{i:03}")})),
            )
            .await;
            assert_eq!(s, 201, "{v}");
        }
        // A node of a group no conductor serves has no owner.
        let (s, v) = call(
            &a.url,
            reqwest::Method::POST,
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware", "name": "elsewhere", "conductor_group": "rack-z"})),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["conductor"], Value::Null, "{v}");

        // Every API names the same owner, and the three share the nodes.
        let owners = |all: &[Value]| -> Vec<(String, String)> {
            let mut o: Vec<(String, String)> = all
                .iter()
                .filter(|n| n["name"] != "elsewhere")
                .map(|n| {
                    (
                        n["name"].as_str().unwrap_or_default().to_owned(),
                        n["conductor"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            o.sort();
            o
        };
        let seen_a = wait_nodes(&a.url, 30, "three owners", |all| {
            owners(all)
                .iter()
                .map(|(_, c)| c.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                == 3
        })
        .await;
        let seen_c = nodes(&c.url).await;
        assert_eq!(owners(&seen_a), owners(&seen_c), "APIs disagree on owners");
        let (_, filtered) = call(
            &c.url,
            reqwest::Method::GET,
            "/v1/nodes?conductor=conductor-b&limit=1000",
            None,
        )
        .await;
        let of_b = owners(&seen_a)
            .iter()
            .filter(|(_, c)| c == "conductor-b")
            .count();
        assert_eq!(filtered["nodes"].as_array().map(Vec::len), Some(of_b));

        for i in 0..N {
            set_state(&a.url, &format!("n{i:03}"), "manage").await;
        }
        wait_nodes(&a.url, 120, "all manageable", |all| {
            all.iter()
                .filter(|n| n["provision_state"] == "manageable" && n["reservation"].is_null())
                .count()
                == N
        })
        .await;
        for i in 0..N {
            set_state(&a.url, &format!("n{i:03}"), "provide").await;
        }
        wait_nodes(&a.url, 120, "all available", |all| {
            all.iter()
                .filter(|n| n["provision_state"] == "available" && n["reservation"].is_null())
                .count()
                == N
        })
        .await;

        // Deploy everything through A's API. Each deploy runs on the node's owner
        // (Ironic's RPC to the owner): A and C deploy at once, B's deploys take a
        // minute, so exactly B's nodes stay in `deploying`, locked by B.
        // Meanwhile A's dashboard streams the node changes A sees.
        let stream = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (subscribed, ready) = tokio::sync::oneshot::channel();
        let reader = {
            let (stream, url) = (stream.clone(), format!("{}/dashboard/events", a.url));
            tokio::spawn(async move {
                let mut r = reqwest::get(url).await.expect("A's dashboard event stream");
                assert_eq!(r.status().as_u16(), 200);
                // The stream subscribed before answering.
                let _ = subscribed.send(());
                while let Ok(Some(chunk)) = r.chunk().await {
                    stream
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&chunk));
                }
            })
        };
        ready.await.expect("A's dashboard event stream opened");
        for i in 0..N {
            set_state(&a.url, &format!("n{i:03}"), "active").await;
        }
        let owned_by_b = owners(&seen_a)
            .into_iter()
            .filter(|(_, c)| c == "conductor-b")
            .map(|(name, _)| name)
            .collect::<std::collections::BTreeSet<_>>();
        let settled = wait_nodes(&a.url, 60, "A's and C's nodes active", |all| {
            all.iter()
                .filter(|n| n["provision_state"] == "active" && n["reservation"].is_null())
                .count()
                == N - owned_by_b.len()
        })
        .await;
        let deploying_on_b = settled
            .iter()
            .filter(|n| n["provision_state"] == "deploying" && n["reservation"] == "conductor-b")
            .map(|n| n["name"].as_str().unwrap_or_default().to_owned())
            .collect::<std::collections::BTreeSet<_>>();
        assert_eq!(
            deploying_on_b, owned_by_b,
            "every deploy ran on its node's owner, whichever API accepted it"
        );
        // The owner's events reach every conductor's subscribers: A's dashboard
        // stream shows the deploys that B started (A only forwarded them).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let seen = stream.lock().unwrap().clone();
            let shown = owned_by_b
                .iter()
                .filter(|name| seen.contains(&format!("\"name\":\"{name}\"")))
                .count();
            if shown == owned_by_b.len() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "A's dashboard stream shows {shown} of B's {} deploys",
                owned_by_b.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        reader.abort();
        let held = deploying_on_b.len();
        assert!(held > 0, "B holds the locks of its deploys");
        b.kill9();
        let killed = std::time::Instant::now();

        let after = wait_nodes(&a.url, 60, "every orphan failed and unlocked", |all| {
            all.iter()
                .filter(|n| n["name"] != "elsewhere")
                .all(|n| n["reservation"].is_null() && n["provision_state"] != "deploying")
        })
        .await;
        let took = killed.elapsed();
        assert_eq!(after.len(), N + 1, "no node lost");
        let failed: Vec<&Value> = after
            .iter()
            .filter(|n| n["provision_state"] == "deploy failed")
            .collect();
        assert_eq!(failed.len(), held, "every deploy B held failed");
        for n in &failed {
            let err = n["last_error"].as_str().unwrap_or_default();
            assert!(
                err.contains("conductor-b") && err.contains("offline"),
                "a clear last_error: {err}"
            );
            assert_ne!(n["conductor"], "conductor-b", "a new owner");
        }
        println!("takeover of {held} deploys took {took:?} (heartbeat_timeout 3 s)");
        let (_, cs) = call(&c.url, reqwest::Method::GET, "/v1/conductors", None).await;
        let b_alive = cs["conductors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["hostname"] == "conductor-b")
            .map(|r| r["alive"].clone());
        assert_eq!(b_alive, Some(Value::Bool(false)), "{cs}");

        // Orphans are deployable again, through any API.
        for n in &failed {
            set_state(&c.url, n["name"].as_str().unwrap(), "active").await;
        }
        wait_nodes(&c.url, 120, "all active", |all| {
            all.iter()
                .filter(|n| n["provision_state"] == "active" && n["reservation"].is_null())
                .count()
                == N
        })
        .await;
    });
    drop((a, c));
}

/// An API-only process (`ironic serve --role api`) in front of a conductor on one
/// database: it registers no conductor and owns no node, and the node actions it
/// accepts run on the conductor (which holds the node's lock while they run).
#[test]
fn an_api_only_process_hands_node_actions_to_the_conductor() {
    let rt = rt();
    let db = rt.block_on(TestDatabase::create());
    let conductor = Ironic::start(
        &[],
        &[
            ("IRONIC__STORAGE__BACKEND", "postgres"),
            ("IRONIC__STORAGE__URL", db.url()),
            ("IRONIC__CONDUCTOR__HOST", "worker-1"),
            ("IRONIC__FAKE__POWER_DELAY", "3"),
        ],
    );
    let api = Ironic::start(
        &["serve", "--role", "api"],
        &[
            ("IRONIC__STORAGE__BACKEND", "postgres"),
            ("IRONIC__STORAGE__URL", db.url()),
            ("IRONIC__CONDUCTOR__HOST", "front-1"),
            ("IRONIC__CONDUCTOR__CONDUCTOR_HEARTBEAT_INTERVAL", "1"),
        ],
    );
    rt.block_on(async {
        let (s, n) = call(
            &api.url,
            reqwest::Method::POST,
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware", "name": "behind-api"})),
        )
        .await;
        assert_eq!(s, 201, "{n}");
        // The API process sees the conductor at its first keep-alive after the
        // conductor registered.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let (_, node) =
                call(&api.url, reqwest::Method::GET, "/v1/nodes/behind-api", None).await;
            if node["conductor"] == "worker-1" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no owner: {node}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let (_, cs) = call(&api.url, reqwest::Method::GET, "/v1/conductors", None).await;
        let hosts: Vec<&str> = cs["conductors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["hostname"].as_str())
            .collect();
        assert_eq!(hosts, ["worker-1"], "an API-only process is no conductor");

        let (s, v) = call(
            &api.url,
            reqwest::Method::PUT,
            "/v1/nodes/behind-api/states/power",
            Some(json!({"target": "power on"})),
        )
        .await;
        assert_eq!(s, 202, "{v}");
        // The power action takes 3 s on the conductor, under its lock.
        let mut holder = Value::Null;
        for _ in 0..20 {
            let (_, node) =
                call(&api.url, reqwest::Method::GET, "/v1/nodes/behind-api", None).await;
            holder = node["reservation"].clone();
            if !holder.is_null() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(holder, "worker-1", "the conductor runs the action");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (_, node) =
                call(&api.url, reqwest::Method::GET, "/v1/nodes/behind-api", None).await;
            if node["power_state"] == "power on" && node["reservation"].is_null() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{node}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
    drop((api, conductor));
}

/// An API-only process registers (it is no conductor: `GET /v1/conductors` does
/// not list it), so its death is seen. Here it runs a power action itself (the
/// node's owner cannot be reached at its `internal_url`), holding the node's lock,
/// and is killed with SIGKILL: the owner releases the lock and aborts the pending
/// power action with a `last_error` naming the dead API service, and the node
/// works again. An API-only process under a live conductor's host name is refused.
#[test]
fn the_locks_of_a_dead_api_only_process_are_released() {
    let rt = rt();
    let db = rt.block_on(TestDatabase::create());
    // A port nothing listens on for the whole test: the local end of a
    // connection the test holds, so no server started meanwhile (this test's or
    // another's) can take it and answer the conductor's internal URL (a port
    // merely freed could be handed to the next listener: the API process then
    // forwarded to whoever got it).
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let kept = std::net::TcpStream::connect(holder.local_addr().unwrap()).unwrap();
    let closed = kept.local_addr().unwrap().port();
    let unreachable = format!("http://127.0.0.1:{closed}");
    let conductor = Ironic::start(
        &[],
        &[
            ("IRONIC__STORAGE__BACKEND", "postgres"),
            ("IRONIC__STORAGE__URL", db.url()),
            ("IRONIC__CONDUCTOR__HOST", "worker-1"),
            ("IRONIC__CONDUCTOR__INTERNAL_URL", &unreachable),
            ("IRONIC__CONDUCTOR__CONDUCTOR_HEARTBEAT_INTERVAL", "1"),
            ("IRONIC__CONDUCTOR__HEARTBEAT_TIMEOUT", "3"),
        ],
    );
    let mut api = Ironic::start(
        &["serve", "--role", "api"],
        &[
            ("IRONIC__STORAGE__BACKEND", "postgres"),
            ("IRONIC__STORAGE__URL", db.url()),
            ("IRONIC__CONDUCTOR__HOST", "front-1"),
            ("IRONIC__CONDUCTOR__CONDUCTOR_HEARTBEAT_INTERVAL", "1"),
            ("IRONIC__CONDUCTOR__HEARTBEAT_TIMEOUT", "3"),
            // The power action it runs itself takes ten minutes.
            ("IRONIC__FAKE__POWER_DELAY", "600"),
        ],
    );

    rt.block_on(async {
        let (s, n) = call(
            &api.url,
            reqwest::Method::POST,
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware", "name": "held"})),
        )
        .await;
        assert_eq!(s, 201, "{n}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let (_, node) = call(&api.url, reqwest::Method::GET, "/v1/nodes/held", None).await;
            if node["conductor"] == "worker-1" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no owner: {node}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        // A second API-only process under the conductor's host name would share
        // its record and its locks: refused at start (now that the conductor
        // registered: it owns the node).
        let dir = tempfile::tempdir().unwrap();
        let mut twin = std::process::Command::new(env!("CARGO_BIN_EXE_ironic"))
            .args([
                "serve",
                "--role",
                "api",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(dir.path())
            .env("IRONIC__STORAGE__BACKEND", "postgres")
            .env("IRONIC__STORAGE__URL", db.url())
            .env("IRONIC__CONDUCTOR__HOST", "worker-1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let status = loop {
            if let Some(status) = twin.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = twin.kill();
                let _ = twin.wait();
                panic!("an API-only process under a live conductor's host name was not refused");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert!(!status.success());
        let mut err = String::new();
        std::io::Read::read_to_string(&mut twin.stderr.take().unwrap(), &mut err).unwrap();
        assert!(
            err.contains("worker-1") && err.contains("host name of its own"),
            "{err}"
        );

        let (_, cs) = call(&conductor.url, reqwest::Method::GET, "/v1/conductors", None).await;
        let hosts: Vec<&str> = cs["conductors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["hostname"].as_str())
            .collect();
        assert_eq!(hosts, ["worker-1"], "an API-only process is no conductor");
        let (s, _) = call(
            &conductor.url,
            reqwest::Method::GET,
            "/v1/conductors/front-1",
            None,
        )
        .await;
        assert_eq!(s, 404);

        let (s, v) = call(
            &api.url,
            reqwest::Method::PUT,
            "/v1/nodes/held/states/power",
            Some(json!({"target": "power on"})),
        )
        .await;
        assert_eq!(s, 202, "{v}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let (_, node) = call(&api.url, reqwest::Method::GET, "/v1/nodes/held", None).await;
            // Locked first, then the pending action recorded.
            if node["reservation"] == "front-1" && node["target_power_state"] == "power on" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the API process did not run the action itself: {node}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        api.kill9();

        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let node = loop {
            let (_, node) =
                call(&conductor.url, reqwest::Method::GET, "/v1/nodes/held", None).await;
            // The owner releases the dead process's lock, then (under its own
            // lock) aborts the pending power action.
            if node["reservation"].is_null() && node["target_power_state"].is_null() {
                break node;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the dead API process's lock was not released: {node}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        };
        let err = node["last_error"].as_str().unwrap_or_default();
        assert!(
            err.contains("Pending power operation was aborted")
                && err.contains("API service front-1")
                && err.contains("offline"),
            "a clear last_error: {err}"
        );

        // The node is not stuck: its owner powers it on.
        let (s, v) = call(
            &conductor.url,
            reqwest::Method::PUT,
            "/v1/nodes/held/states/power",
            Some(json!({"target": "power on"})),
        )
        .await;
        assert_eq!(s, 202, "{v}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (_, node) =
                call(&conductor.url, reqwest::Method::GET, "/v1/nodes/held", None).await;
            if node["power_state"] == "power on" && node["reservation"].is_null() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{node}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
    drop(conductor);
}
