//! Several `ironic serve` processes (conductors) on one real PostgreSQL database.
//!
//! Needs a PostgreSQL server: `scripts/setup-test-deps.sh` starts one (or set
//! IRONIC_TEST_POSTGRES_URL); each test creates and drops its own database.

mod api_support;

use api_support::Ironic;
use ironic_core::store::conformance::TestDatabase;
use serde_json::{Value, json};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A `reqwest` JSON call: (status, body).
async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = client
        .request(method, format!("{base}{path}"))
        .header("X-OpenStack-Ironic-API-Version", "latest");
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

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
