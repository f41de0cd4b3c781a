//! `api_load`: the REST API side by side with the real Ironic.
//!
//! Starts this workspace's `ironic` binary and the real Ironic (PyPI `ironic`,
//! all-in-one, noauth, fake-hardware, SQLite, `rpc_transport = none`) on loopback,
//! each on a fresh SQLite database, and measures against both:
//!
//! 1. enrolling 1,000 nodes (`POST /v1/nodes`, 8 connections),
//! 2. `GET /v1/nodes` with those 1,000 nodes (full listings, 4 connections),
//! 3. `GET /v1/nodes/{uuid}` at 1, 8 and 32 connections,
//! 4. 100 nodes from enroll to active (manage, provide, deploy, polling),
//!
//! then prints each figure, the ratio, and the peak RSS (`VmHWM`, summed over the
//! server's process tree) of both.
//!
//! ```sh
//! cargo build --release -p ironic-standalone --bin ironic
//! python3 -m venv /tmp/ironic-venv && /tmp/ironic-venv/bin/pip install 'ironic==39.*'
//! cargo run --release -p ironic-benches --bin api_load -- --ironic-venv /tmp/ironic-venv
//! ```
//! Options: `--ours PATH` (default `target/release/ironic`), `--seconds N` per
//! timed phase (default 5), `--nodes N` (default 1000), `--lifecycle N` (100),
//! `--only ours|ironic`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const VERSION: &str = "1.95";

struct Args {
    ours: PathBuf,
    ironic_venv: Option<PathBuf>,
    seconds: u64,
    nodes: usize,
    lifecycle: usize,
    only: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        ours: PathBuf::from("target/release/ironic"),
        ironic_venv: std::env::var_os("IRONIC_BENCH_VENV").map(PathBuf::from),
        seconds: 5,
        nodes: 1000,
        lifecycle: 100,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--ours" => a.ours = PathBuf::from(val()?),
            "--ironic-venv" => a.ironic_venv = Some(PathBuf::from(val()?)),
            "--seconds" => a.seconds = val()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--nodes" => a.nodes = val()?.parse().map_err(|e| format!("--nodes: {e}"))?,
            "--lifecycle" => {
                a.lifecycle = val()?.parse().map_err(|e| format!("--lifecycle: {e}"))?
            }
            "--only" => a.only = Some(val()?),
            "-h" | "--help" => {
                return Err("usage: api_load [--ours PATH] [--ironic-venv DIR] [--seconds N] [--nodes N] [--lifecycle N] [--only ours|ironic]".into());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// A server under test, killed on drop.
struct Server {
    name: &'static str,
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(16385)
}

fn wait_up(url: &str, child: &mut Child, what: &str) -> Result<(), String> {
    let addr = url.trim_start_matches("http://").to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            return Err(format!("{what} exited early with {s}"));
        }
        if std::net::TcpStream::connect(&addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{what} did not listen on {addr} within 120 s"))
}

fn start_ours(bin: &Path) -> Result<Server, String> {
    if !bin.exists() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p ironic-standalone --bin ironic` or pass --ours",
            bin.display()
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join("ironic.log")).map_err(|e| e.to_string())?;
    let mut child = Command::new(bin)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("start {}: {e}", bin.display()))?;
    wait_up(&url, &mut child, "ironic-rs")?;
    Ok(Server {
        name: "ironic-rs",
        child,
        url,
        _dir: dir,
    })
}

fn start_real(venv: &Path) -> Result<Server, String> {
    let ironic = venv.join("bin/ironic");
    let dbsync = venv.join("bin/ironic-dbsync");
    if !ironic.exists() {
        return Err(format!(
            "{} not found: python3 -m venv {v} && {v}/bin/pip install 'ironic==39.*'",
            ironic.display(),
            v = venv.display()
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let port = free_port();
    let d = dir.path().display();
    let conf = format!(
        "[DEFAULT]\nauth_strategy = noauth\nrpc_transport = none\nhost = bench-conductor\n\
         enabled_hardware_types = fake-hardware\nenabled_bios_interfaces = fake\nenabled_boot_interfaces = fake\n\
         enabled_console_interfaces = fake\nenabled_deploy_interfaces = fake\nenabled_firmware_interfaces = fake\n\
         enabled_inspect_interfaces = fake\nenabled_management_interfaces = fake\nenabled_network_interfaces = noop\n\
         enabled_power_interfaces = fake\nenabled_raid_interfaces = fake\nenabled_rescue_interfaces = fake\n\
         enabled_storage_interfaces = noop\nenabled_vendor_interfaces = fake\n\
         [api]\nhost_ip = 127.0.0.1\nport = {port}\n\
         [database]\nconnection = sqlite:///{d}/ironic.sqlite\n\
         [conductor]\nheartbeat_timeout = 86400\n[dhcp]\ndhcp_provider = none\n\
         [oslo_concurrency]\nlock_path = {d}/locks\n"
    );
    let conf_path = dir.path().join("ironic.conf");
    std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
    let st = Command::new(&dbsync)
        .arg("--config-file")
        .arg(&conf_path)
        .arg("create_schema")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("ironic-dbsync: {e}"))?;
    if !st.success() {
        return Err(format!("ironic-dbsync create_schema failed: {st}"));
    }
    let log = std::fs::File::create(dir.path().join("ironic.log")).map_err(|e| e.to_string())?;
    let mut child = Command::new(&ironic)
        .arg("--config-file")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("start ironic: {e}"))?;
    let url = format!("http://127.0.0.1:{port}");
    wait_up(&url, &mut child, "Ironic")?;
    Ok(Server {
        name: "Ironic 39",
        child,
        url,
        _dir: dir,
    })
}

/// Peak RSS in KiB summed over `pid` and its descendants (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    fn children(pid: u32) -> Vec<u32> {
        let mut out = Vec::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for e in entries.flatten() {
                let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat"))
                    && let Some(rest) = stat.rsplit(')').next()
                    && rest
                        .split_whitespace()
                        .nth(1)
                        .and_then(|x| x.parse::<u32>().ok())
                        == Some(pid)
                {
                    out.push(p);
                }
            }
        }
        out
    }
    let hwm = |p: u32| -> u64 {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
            })
            .unwrap_or(0)
    };
    let mut total = hwm(pid);
    let mut stack = children(pid);
    while let Some(c) = stack.pop() {
        total += hwm(c);
        stack.extend(children(c));
    }
    total
}

fn client(conns: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(conns.max(1))
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client")
}

async fn req(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    let mut r = c
        .request(method, &url)
        .header("X-OpenStack-Ironic-API-Version", VERSION)
        .header("Accept", "application/json");
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(|e| format!("{url}: {e}"))?;
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    Ok((status, v))
}

/// A request whose body is only counted (the client should not be the bottleneck).
async fn req_raw(c: &reqwest::Client, url: String) -> Result<(u16, bytes_len::Len), String> {
    let resp = c
        .get(&url)
        .header("X-OpenStack-Ironic-API-Version", VERSION)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(|e| format!("{url}: {e}"))?;
    Ok((status, bytes_len::Len(bytes)))
}

mod bytes_len {
    /// A response body, parsed lazily.
    pub struct Len(pub bytes::Bytes);

    /// `{"nodes": [...]}` with the items skipped, not built.
    #[derive(serde::Deserialize)]
    struct NodeList {
        nodes: Vec<serde::de::IgnoredAny>,
    }

    impl Len {
        /// How many nodes a listing body holds.
        pub fn nodes(&self) -> usize {
            serde_json::from_slice::<NodeList>(&self.0)
                .map(|l| l.nodes.len())
                .unwrap_or(0)
        }
    }
}

/// Enroll `n` nodes with `conns` concurrent connections; returns (nodes/s, uuids).
async fn enroll(
    base: &str,
    n: usize,
    conns: usize,
    prefix: &str,
) -> Result<(f64, Vec<String>), String> {
    let c = client(conns);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let c = c.clone();
        let next = next.clone();
        let base = base.to_owned();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    return Ok::<_, String>(ids);
                }
                let body = json!({"driver": "fake-hardware", "name": format!("{prefix}-{i:05}"),
                                  "properties": {"cpus": 4, "memory_mb": 8192, "local_gb": 100}});
                let (s, v) = req(
                    &c,
                    reqwest::Method::POST,
                    format!("{base}/v1/nodes"),
                    Some(body),
                )
                .await?;
                if s != 201 {
                    return Err(format!("enroll: HTTP {s}: {v}"));
                }
                ids.push(v["uuid"].as_str().unwrap_or_default().to_owned());
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    Ok((n as f64 / started.elapsed().as_secs_f64(), all))
}

/// Run `conns` loops of `f` for `secs`; returns requests/s.
async fn timed<F, Fut>(conns: usize, secs: u64, f: F) -> Result<f64, String>
where
    F: Fn(reqwest::Client, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let c = client(conns);
    let f = Arc::new(f);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..conns {
        let (c, f, done) = (c.clone(), f.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while Instant::now() < stop {
                f(c.clone(), i).await?;
                done.fetch_add(1, Ordering::Relaxed);
                i += conns;
            }
            Ok::<_, String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

async fn wait_state(
    c: &reqwest::Client,
    base: &str,
    ids: &[String],
    state: &str,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut pending: Vec<&String> = ids.iter().collect();
    while !pending.is_empty() {
        if Instant::now() > deadline {
            return Err(format!("{} nodes did not reach {state}", pending.len()));
        }
        let mut still = Vec::new();
        for id in pending {
            let (_, v) = req(
                c,
                reqwest::Method::GET,
                format!("{base}/v1/nodes/{id}?fields=provision_state,last_error"),
                None,
            )
            .await?;
            let ps = v["provision_state"].as_str().unwrap_or("");
            if ps == state {
                continue;
            }
            if ps.ends_with("failed") || ps == "error" {
                return Err(format!("node {id} went to {ps}: {}", v["last_error"]));
            }
            still.push(id);
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// 100 nodes from enroll to active; returns seconds.
async fn lifecycle(base: &str, n: usize) -> Result<f64, String> {
    let c = client(8);
    let started = Instant::now();
    let (_, ids) = enroll(base, n, 8, "life").await?;
    for (verb, state) in [
        ("manage", "manageable"),
        ("provide", "available"),
        ("active", "active"),
    ] {
        for chunk in ids.chunks(8) {
            let mut hs = Vec::new();
            for id in chunk {
                let c = c.clone();
                let url = format!("{base}/v1/nodes/{id}/states/provision");
                hs.push(tokio::spawn(async move {
                    let (s, v) =
                        req(&c, reqwest::Method::PUT, url, Some(json!({"target": verb}))).await?;
                    if s != 202 {
                        return Err(format!("{verb}: HTTP {s}: {v}"));
                    }
                    Ok::<_, String>(())
                }));
            }
            for h in hs {
                h.await.map_err(|e| e.to_string())??;
            }
        }
        wait_state(&c, base, &ids, state).await?;
    }
    Ok(started.elapsed().as_secs_f64())
}

#[derive(Default, Clone)]
struct Figures {
    enroll: f64,
    list: f64,
    get: [f64; 3],
    lifecycle_s: f64,
    rss_kib: u64,
}

async fn measure(s: &Server, a: &Args) -> Result<Figures, String> {
    let base = s.url.clone();
    eprintln!("[{}] enrolling {} nodes ...", s.name, a.nodes);
    let (enroll_rate, ids) = enroll(&base, a.nodes, 8, "node").await?;
    eprintln!("[{}] {enroll_rate:.1} enrolls/s; listing ...", s.name);
    let b = base.clone();
    let want = a.nodes;
    let list = timed(4, a.seconds, move |c, _| {
        let url = format!("{b}/v1/nodes?limit={want}");
        async move {
            let (st, body) = req_raw(&c, url).await?;
            let got = body.nodes();
            if st != 200 || got != want {
                return Err(format!("list: HTTP {st}, {got} nodes"));
            }
            Ok(())
        }
    })
    .await?;
    eprintln!("[{}] {list:.1} listings/s; single GETs ...", s.name);
    let ids = Arc::new(ids);
    let mut get = [0.0; 3];
    for (k, conns) in [1usize, 8, 32].into_iter().enumerate() {
        let (b, ids) = (base.clone(), ids.clone());
        get[k] = timed(conns, a.seconds, move |c, i| {
            let url = format!("{b}/v1/nodes/{}", ids[i % ids.len()]);
            async move {
                let (st, body) = req_raw(&c, url).await?;
                if st != 200 || body.0.is_empty() {
                    return Err(format!("get: HTTP {st}"));
                }
                Ok(())
            }
        })
        .await?;
        eprintln!("[{}] {:.1} GETs/s at {conns} connections", s.name, get[k]);
    }
    eprintln!("[{}] {} nodes enroll -> active ...", s.name, a.lifecycle);
    let lifecycle_s = lifecycle(&base, a.lifecycle).await?;
    eprintln!("[{}] {lifecycle_s:.2} s", s.name);
    Ok(Figures {
        enroll: enroll_rate,
        list,
        get,
        lifecycle_s,
        rss_kib: peak_rss_kib(s.child.id()),
    })
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.1}x", a / b)
    } else {
        "-".into()
    }
}

#[tokio::main]
async fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("api_load: {e}");
            std::process::exit(2);
        }
    };
    let run_ours = a.only.as_deref() != Some("ironic");
    let run_real = a.only.as_deref() != Some("ours");
    let mut ours = None;
    let mut real = None;
    if run_ours {
        let s = start_ours(&a.ours).unwrap_or_else(|e| {
            eprintln!("api_load: {e}");
            std::process::exit(2)
        });
        ours = Some(measure(&s, &a).await.unwrap_or_else(|e| {
            eprintln!("api_load: ironic-rs: {e}");
            std::process::exit(1)
        }));
    }
    if run_real {
        let Some(venv) = a.ironic_venv.as_deref() else {
            eprintln!(
                "api_load: pass --ironic-venv DIR (a venv with `pip install 'ironic==39.*'`) or --only ours"
            );
            std::process::exit(2)
        };
        let s = start_real(venv).unwrap_or_else(|e| {
            eprintln!("api_load: {e}");
            std::process::exit(2)
        });
        real = Some(measure(&s, &a).await.unwrap_or_else(|e| {
            eprintln!("api_load: Ironic: {e}");
            std::process::exit(1)
        }));
    }
    let o = ours.clone().unwrap_or_default();
    let r = real.clone().unwrap_or_default();
    println!(
        "{:<42} {:>14} {:>14} {:>9}",
        "measure", "ironic-rs", "Ironic 39", "ratio"
    );
    let row = |name: &str, x: f64, y: f64, unit: &str| {
        println!(
            "{:<42} {:>10.1} {unit:<3} {:>10.1} {unit:<3} {:>9}",
            name,
            x,
            y,
            ratio(x, y)
        );
    };
    row(
        &format!("enroll {} nodes", a.nodes),
        o.enroll,
        r.enroll,
        "/s",
    );
    row(
        &format!("GET /v1/nodes ({} nodes)", a.nodes),
        o.list,
        r.list,
        "/s",
    );
    for (k, c) in [1, 8, 32].into_iter().enumerate() {
        row(
            &format!("GET /v1/nodes/{{uuid}} x{c} conns"),
            o.get[k],
            r.get[k],
            "/s",
        );
    }
    println!(
        "{:<42} {:>10.2} s   {:>10.2} s   {:>9}",
        format!("{} nodes enroll -> active", a.lifecycle),
        o.lifecycle_s,
        r.lifecycle_s,
        ratio(r.lifecycle_s, o.lifecycle_s)
    );
    println!(
        "{:<42} {:>10.1} MiB {:>10.1} MiB {:>9}",
        "peak RSS (VmHWM, process tree)",
        o.rss_kib as f64 / 1024.0,
        r.rss_kib as f64 / 1024.0,
        ratio(r.rss_kib as f64, o.rss_kib as f64)
    );
}
