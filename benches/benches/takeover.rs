//! `takeover`: how long the nodes of a conductor killed with SIGKILL wait for a
//! new owner (issue 12), median of `--runs`.
//!
//! Starts three `ironic serve` processes on a new PostgreSQL database (the server
//! `scripts/setup-test-deps.sh` starts, or `IRONIC_TEST_POSTGRES_URL`), enrolls
//! `--nodes` fake nodes through the first one's API and makes them available.
//! Each run deploys every node (fake deploy taking `--deploy-delay` seconds, so
//! the conductors hold the nodes' locks), kills one of the other two conductors
//! with SIGKILL once the deploys run, and measures from the kill until
//! * every node it owned has a live owner again (the `conductor` field), and
//! * every node it had locked is unlocked and failed (`deploy failed`, with a
//!   `last_error` naming it).
//!
//! The bound is `heartbeat_timeout` + one keep-alive (`ironic serve` defaults to
//! 60 s and 10 s; the lab's, used here, 10 s and 2 s). Between runs
//! the killed conductor starts again and every node goes back to `available`.
//!
//! ```sh
//! cargo build --release -p ironic-standalone --bin ironic
//! cargo bench -p ironic-benches --bench takeover
//! ```
//! Knobs (environment): `TAKEOVER_IRONIC` (the `ironic` binary; default
//! `target/release/ironic`, else `target/debug/ironic`: the times are set by the
//! keep-alives, not by the binary's speed), `TAKEOVER_RUNS` (5), `TAKEOVER_NODES`
//! (300), `TAKEOVER_DEPLOY_DELAY` (30 s), `TAKEOVER_HEARTBEAT_INTERVAL` (2 s),
//! `TAKEOVER_HEARTBEAT_TIMEOUT` (10 s). The processes listen on free loopback
//! ports and are killed when this tool ends, by a panic too.

#![allow(missing_docs)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ironic_core::store::conformance::TestDatabase;
use serde_json::{Value, json};

struct Args {
    ironic: PathBuf,
    runs: usize,
    nodes: usize,
    deploy_delay: u64,
    heartbeat_interval: u64,
    heartbeat_timeout: u64,
}

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

impl Args {
    fn from_env() -> Args {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let default = ["release", "debug"]
            .iter()
            .map(|p| root.join("target").join(p).join("ironic"))
            .find(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("target/release/ironic"));
        Args {
            ironic: std::env::var_os("TAKEOVER_IRONIC")
                .map(PathBuf::from)
                .unwrap_or(default),
            runs: env("TAKEOVER_RUNS", 5),
            nodes: env("TAKEOVER_NODES", 300),
            deploy_delay: env("TAKEOVER_DEPLOY_DELAY", 30),
            heartbeat_interval: env("TAKEOVER_HEARTBEAT_INTERVAL", 2),
            heartbeat_timeout: env("TAKEOVER_HEARTBEAT_TIMEOUT", 10),
        }
    }
}

/// An `ironic serve` child, killed when dropped (a panic of this tool included),
/// so no run leaves conductors behind holding ports and the database.
struct Proc {
    host: String,
    url: String,
    log: PathBuf,
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// The last lines of its log.
    fn tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Panics with its log when it exited.
    fn check_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}); its log ends with:\n{}",
                self.host,
                self.tail()
            );
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn spawn(args: &Args, db: &str, k: usize, dir: &std::path::Path) -> Proc {
    let host = format!("takeover-{k}");
    let port = free_port();
    let data = dir.join(&host);
    std::fs::create_dir_all(&data).expect("data dir");
    let log = dir.join(format!("{host}-{port}.log"));
    let logf = std::fs::File::create(&log).expect("log");
    let child = Command::new(&args.ironic)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&data)
        .arg("serve")
        .env("IRONIC__STORAGE__BACKEND", "postgres")
        .env("IRONIC__STORAGE__URL", db)
        .env("IRONIC__CONDUCTOR__HOST", &host)
        .env(
            "IRONIC__CONDUCTOR__CONDUCTOR_HEARTBEAT_INTERVAL",
            args.heartbeat_interval.to_string(),
        )
        .env(
            "IRONIC__CONDUCTOR__HEARTBEAT_TIMEOUT",
            args.heartbeat_timeout.to_string(),
        )
        .env("IRONIC__CONDUCTOR__AUTOMATED_CLEAN", "false")
        .env("IRONIC__CONDUCTOR__MAX_CONCURRENT_OPERATIONS", "1000")
        .env("IRONIC__FAKE__DEPLOY_DELAY", args.deploy_delay.to_string())
        .env("IRONIC__LOG__LEVEL", "warn")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(logf.try_clone().expect("log"))
        .stderr(logf)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", args.ironic.display()));
    Proc {
        host,
        url: format!("http://127.0.0.1:{port}"),
        log,
        child,
    }
}

/// Wait until all of `procs` are registered and alive (seen through the first),
/// failing with the log of one that exited.
async fn all_alive(procs: &mut [Proc], secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        for p in procs.iter_mut() {
            p.check_running();
        }
        let live = alive(&procs[0].url).await;
        if procs.iter().all(|p| live.contains(&p.host)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not every conductor is alive after {secs} s (live: {live:?}); the first one's log ends with:\n{}",
            procs[0].tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .header("X-OpenStack-Ironic-API-Version", "latest");
    if let Some(b) = body {
        req = req.json(&b);
    }
    match req.send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            let t = r.text().await.unwrap_or_default();
            (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
        }
        Err(e) => (0, Value::String(e.to_string())),
    }
}

async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// name → node (name, conductor, reservation, provision_state, last_error).
async fn nodes(api: &str) -> Vec<Value> {
    let (s, v) = call(
        api,
        reqwest::Method::GET,
        "/v1/nodes?fields=name,conductor,reservation,provision_state,last_error&limit=1000",
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["nodes"].as_array().cloned().unwrap_or_default()
}

async fn alive(api: &str) -> Vec<String> {
    let (_, v) = call(api, reqwest::Method::GET, "/v1/conductors", None).await;
    v["conductors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|c| c["alive"] == json!(true))
                .filter_map(|c| c["hostname"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn all_in(api: &str, state: &str, secs: u64) {
    wait_for(&format!("every node {state}"), secs, || async {
        let n = nodes(api).await;
        n.iter()
            .all(|n| n["provision_state"] == json!(state) && n["reservation"].is_null())
            .then_some(())
    })
    .await;
}

async fn provision(api: &str, names: &[String], target: &str) {
    futures::future::join_all(names.iter().map(|n| async move {
        let (s, v) = call(
            api,
            reqwest::Method::PUT,
            &format!("/v1/nodes/{n}/states/provision"),
            Some(json!({ "target": target })),
        )
        .await;
        assert_eq!(s, 202, "{target} {n}: {v}");
    }))
    .await;
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let args = Args::from_env();
    println!("takeover: ironic binary {}", args.ironic.display());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(run(args));
}

async fn run(args: Args) {
    let db = TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut procs: Vec<Proc> = (1..=3)
        .map(|k| spawn(&args, db.url(), k, dir.path()))
        .collect();
    let api = procs[0].url.clone();
    all_alive(&mut procs, 90).await;
    tokio::time::sleep(Duration::from_secs(args.heartbeat_interval + 1)).await;
    let names: Vec<String> = (0..args.nodes).map(|i| format!("tk-{i:04}")).collect();
    for n in &names {
        let (s, v) = call(
            &api,
            reqwest::Method::POST,
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware", "name": n})),
        )
        .await;
        assert_eq!(s, 201, "{v}");
    }
    provision(&api, &names, "manage").await;
    all_in(&api, "manageable", 120).await;
    provision(&api, &names, "provide").await;
    all_in(&api, "available", 120).await;
    println!(
        "takeover: 3 ironic serve on PostgreSQL, {} fake nodes, keep-alive {} s, heartbeat_timeout {} s (bound {} s); deploys take {} s",
        args.nodes,
        args.heartbeat_interval,
        args.heartbeat_timeout,
        args.heartbeat_interval + args.heartbeat_timeout,
        args.deploy_delay
    );
    let (mut owners, mut failed) = (Vec::new(), Vec::new());
    for run in 0..args.runs {
        provision(&api, &names, "active").await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let victim = 1 + run % 2;
        let host = procs[victim].host.clone();
        let before = nodes(&api).await;
        let owned: Vec<String> = before
            .iter()
            .filter(|n| n["conductor"] == json!(host))
            .filter_map(|n| n["name"].as_str().map(str::to_owned))
            .collect();
        let locked: Vec<String> = before
            .iter()
            .filter(|n| n["reservation"] == json!(host))
            .filter_map(|n| n["name"].as_str().map(str::to_owned))
            .collect();
        procs[victim].child.kill().expect("kill -9");
        let killed = Instant::now();
        let _ = procs[victim].child.wait();
        for (k, p) in procs.iter_mut().enumerate() {
            if k != victim {
                p.check_running();
            }
        }
        let (mut t_owner, mut t_failed) = (None, None);
        while t_owner.is_none() || t_failed.is_none() {
            assert!(
                killed.elapsed() < Duration::from_secs(10 * args.heartbeat_timeout + 60),
                "no takeover"
            );
            let now = nodes(&api).await;
            let of = |name: &String| now.iter().find(|n| n["name"] == json!(name));
            if t_owner.is_none()
                && owned.iter().all(|name| {
                    of(name).is_some_and(|n| n["conductor"].as_str().is_some_and(|c| c != host))
                })
            {
                t_owner = Some(killed.elapsed());
            }
            if t_failed.is_none()
                && locked.iter().all(|name| {
                    of(name).is_some_and(|n| {
                        n["reservation"].is_null()
                            && n["provision_state"] == json!("deploy failed")
                            && n["last_error"].as_str().is_some_and(|e| e.contains(&host))
                    })
                })
            {
                t_failed = Some(killed.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (o, f) = (t_owner.unwrap_or_default(), t_failed.unwrap_or_default());
        println!(
            "run {}: killed {host} (owned {} nodes, {} locked mid-deploy): new owners after {:.2} s, locked ones failed and unlocked after {:.2} s",
            run + 1,
            owned.len(),
            locked.len(),
            o.as_secs_f64(),
            f.as_secs_f64()
        );
        owners.push(o.as_secs_f64());
        failed.push(f.as_secs_f64());
        // Back to the start: the conductor returns, every node available.
        procs[victim] = spawn(&args, db.url(), victim + 1, dir.path());
        all_alive(&mut procs, 90).await;
        tokio::time::sleep(Duration::from_secs(args.heartbeat_interval + 1)).await;
        wait_for("the deploys end", args.deploy_delay * 3 + 60, || async {
            let n = nodes(&api).await;
            n.iter()
                .all(|n| {
                    n["reservation"].is_null()
                        && matches!(
                            n["provision_state"].as_str(),
                            Some("active" | "deploy failed")
                        )
                })
                .then_some(())
        })
        .await;
        provision(&api, &names, "deleted").await;
        all_in(&api, "available", 120).await;
    }
    println!(
        "takeover median of {}: new owners {:.2} s, orphaned deploys failed {:.2} s (bound {} s)",
        args.runs,
        median(&mut owners),
        median(&mut failed),
        args.heartbeat_interval + args.heartbeat_timeout
    );
    // Dropping them kills them; then the database goes.
    drop(procs);
    drop(db);
}
