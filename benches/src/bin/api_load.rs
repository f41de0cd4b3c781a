//! `api_load`: the REST API side by side with the real Ironic.
//!
//! Starts this workspace's `ironic` binary and the real Ironic (PyPI `ironic`,
//! all-in-one, noauth, fake-hardware, SQLite, `rpc_transport = none`) on loopback,
//! each on a fresh SQLite database, and measures against both:
//!
//! 1. enrolling 1,000 nodes (`POST /v1/nodes`): a quarter with one sequential
//!    client, the rest with 8 connections, and the server's CPU time per enroll
//!    (user + system of its process tree, from `/proc`),
//! 2. listing those 1,000 nodes in one page (4 connections): `GET /v1/nodes`,
//!    `GET /v1/nodes/detail` and `GET /v1/nodes?fields=...`, each with the
//!    server's CPU time per listing,
//! 3. `GET /v1/nodes/{uuid}` at 1, 8 and 32 connections,
//! 4. 100 nodes from enroll to active (manage, provide, deploy), each phase
//!    timed: ironic-rs watched on its change stream (`GET /dashboard/events`,
//!    what the dashboard uses) and again polled, Ironic polled (one GET per
//!    node not there yet, then `--poll-ms`, default 20),
//!
//! then prints each figure, the ratio, the peak RSS (`VmHWM`, summed over the
//! server's process tree) of both, and the machine's load average (the figures
//! of a shared machine move between runs; the ratios of one run are what count).
//!
//! ```sh
//! cargo build --release -p ironic-standalone --bin ironic
//! python3 -m venv /tmp/ironic-venv && /tmp/ironic-venv/bin/pip install 'ironic==39.*'
//! cargo run --release -p ironic-benches --bin api_load -- --ironic-venv /tmp/ironic-venv
//! ```
//! Options: `--ours PATH` (default `target/release/ironic`), `--seconds N` per
//! timed phase (default 5), `--nodes N` (default 1000), `--lifecycle N` (100), `--poll-ms N` (20),
//! `--only ours|ironic`.
//!
//! `--rss 10000,100000` measures only memory: for each count, `ironic serve` on
//! SQLite with the read cache on and then off, that many nodes enrolled (32
//! connections), one full listing paged 1,000 at a time, then its RSS (`VmRSS`)
//! and peak (`VmHWM`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ironic_benches::servers::{self, Server, cpu_time, peak_rss_kib};
use serde_json::{Value, json};

const VERSION: &str = "1.95";

struct Args {
    ours: PathBuf,
    ironic_venv: Option<PathBuf>,
    seconds: u64,
    nodes: usize,
    lifecycle: usize,
    /// `--poll-ms`: pause between polling rounds of the lifecycle phase.
    poll_ms: u64,
    only: Option<String>,
    /// `--rss N,M`: only measure memory with N, M nodes enrolled.
    rss: Vec<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        ours: PathBuf::from("target/release/ironic"),
        ironic_venv: std::env::var_os("IRONIC_BENCH_VENV").map(PathBuf::from),
        seconds: 5,
        nodes: 1000,
        lifecycle: 100,
        poll_ms: 20,
        only: None,
        rss: Vec::new(),
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
            "--poll-ms" => a.poll_ms = val()?.parse().map_err(|e| format!("--poll-ms: {e}"))?,
            "--only" => a.only = Some(val()?),
            "--rss" => {
                a.rss = val()?
                    .split(',')
                    .map(|n| n.trim().parse().map_err(|e| format!("--rss: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "-h" | "--help" => {
                return Err("usage: api_load [--ours PATH] [--ironic-venv DIR] [--seconds N] [--nodes N] [--lifecycle N] [--poll-ms N] [--only ours|ironic] [--rss N,M]".into());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
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

/// How the lifecycle phase learns that nodes reached a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Watch {
    /// The server's change stream (`GET /dashboard/events`, server-sent
    /// events: a node's row each time it changes), as the dashboard does; a
    /// node silent for a second is read once (a missed or merged event cannot
    /// hang the tool).
    Events,
    /// `GET /v1/nodes/{uuid}?fields=provision_state,last_error` for every
    /// node not there yet, then a pause of this many milliseconds, again.
    Poll(u64),
}

impl std::fmt::Display for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Watch::Events => f.write_str("change stream"),
            Watch::Poll(ms) => write!(f, "polled every {ms} ms"),
        }
    }
}

/// The provision state of every node, as the change stream last told it.
#[derive(Default)]
struct Seen {
    states: std::sync::Mutex<std::collections::HashMap<String, (String, String)>>,
    changed: tokio::sync::Notify,
}

impl Seen {
    fn set(&self, uuid: String, state: String, last_error: String) {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uuid, (state, last_error));
        self.changed.notify_waiters();
    }
}

/// Subscribe to `GET /dashboard/events` and keep `seen` up to date until the
/// stream ends; returns once the server answered (so later changes are seen).
async fn follow_events(base: &str, seen: Arc<Seen>) -> Result<tokio::task::JoinHandle<()>, String> {
    let c = reqwest::Client::builder()
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("{base}/dashboard/events");
    let mut resp = c
        .get(&url)
        .header("Accept", "text/event-stream")
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if resp.status() != 200 {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    Ok(tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            buf.extend_from_slice(&chunk);
            while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = buf.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&event);
                let mut kind = "message";
                let mut data = String::new();
                for line in text.lines() {
                    if let Some(k) = line.strip_prefix("event:") {
                        kind = k.trim();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                match kind {
                    "node" => {
                        let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                        if let (Some(u), Some(ps)) =
                            (v["uuid"].as_str(), v["provision_state"].as_str())
                        {
                            let err = v["last_error"].as_str().unwrap_or_default();
                            seen.set(u.to_owned(), ps.to_owned(), err.to_owned());
                        }
                    }
                    // Events were dropped: the waiter reads the nodes it still waits for.
                    "resync" => seen.changed.notify_waiters(),
                    _ => {}
                }
            }
        }
    }))
}

/// Read one node's provision state (and last error) over the API.
async fn node_state(c: &reqwest::Client, base: &str, id: &str) -> Result<(String, String), String> {
    let (_, v) = req(
        c,
        reqwest::Method::GET,
        format!("{base}/v1/nodes/{id}?fields=provision_state,last_error"),
        None,
    )
    .await?;
    Ok((
        v["provision_state"].as_str().unwrap_or("").to_owned(),
        v["last_error"].to_string(),
    ))
}

fn failed(id: &str, ps: &str, err: &str) -> Result<(), String> {
    if ps.ends_with("failed") || ps == "error" {
        return Err(format!("node {id} went to {ps}: {err}"));
    }
    Ok(())
}

/// Wait until every node of `ids` is in `state`, learning it as `watch` says.
async fn wait_state(
    c: &reqwest::Client,
    base: &str,
    ids: &[String],
    state: &str,
    watch: Watch,
    seen: &Seen,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut pending: Vec<&String> = ids.iter().collect();
    let mut read_all = matches!(watch, Watch::Poll(_));
    while !pending.is_empty() {
        if Instant::now() > deadline {
            return Err(format!("{} nodes did not reach {state}", pending.len()));
        }
        // Registered before looking, so no change between the look and the
        // wait is missed.
        let changed = seen.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let mut still = Vec::new();
        for id in pending {
            let (ps, err) = if read_all {
                node_state(c, base, id).await?
            } else {
                let states = seen.states.lock().unwrap_or_else(|e| e.into_inner());
                states.get(id.as_str()).cloned().unwrap_or_default()
            };
            failed(id, &ps, &err)?;
            if ps != state {
                still.push(id);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        read_all = match watch {
            Watch::Poll(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                true
            }
            // No change for a second (or events were dropped): read them once.
            Watch::Events => tokio::time::timeout(Duration::from_secs(1), changed)
                .await
                .is_err(),
        };
    }
    Ok(())
}

/// `n` nodes from enroll to active (enroll with 8 connections; manage, provide
/// and deploy each sent to all nodes, 8 at a time, then awaited); returns the
/// seconds of each phase (enroll, manage, provide, deploy) and, of the last
/// three, the seconds until every request was answered (202).
async fn lifecycle(
    base: &str,
    n: usize,
    watch: Watch,
    prefix: &str,
) -> Result<([f64; 4], [f64; 3]), String> {
    let c = client(8);
    let seen = Arc::new(Seen::default());
    let stream = match watch {
        Watch::Events => Some(follow_events(base, seen.clone()).await?),
        Watch::Poll(_) => None,
    };
    let mut phases = [0.0; 4];
    let mut sent = [0.0; 3];
    let mut t = Instant::now();
    let (_, ids) = enroll(base, n, 8, prefix).await?;
    phases[0] = t.elapsed().as_secs_f64();
    for (k, (verb, state)) in [
        ("manage", "manageable"),
        ("provide", "available"),
        ("active", "active"),
    ]
    .into_iter()
    .enumerate()
    {
        t = Instant::now();
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
        sent[k] = t.elapsed().as_secs_f64();
        wait_state(&c, base, &ids, state, watch, &seen).await?;
        phases[k + 1] = t.elapsed().as_secs_f64();
    }
    if let Some(s) = stream {
        s.abort();
    }
    Ok((phases, sent))
}

/// The list queries measured: (label, query string).
const LISTS: [(&str, &str); 3] = [
    ("GET /v1/nodes", ""),
    ("GET /v1/nodes/detail", "/detail"),
    (
        "GET /v1/nodes?fields=uuid,name,provision_state,driver_info",
        "FIELDS",
    ),
];

#[derive(Default, Clone)]
struct Figures {
    /// enrolls/s with one sequential client, and with 8 connections.
    enroll: [f64; 2],
    /// Server CPU per enroll (µs), over both enroll runs.
    enroll_cpu_us: f64,
    /// listings/s for each of `LISTS`.
    list: [f64; 3],
    /// Server CPU per listing (ms) for each of `LISTS`.
    list_cpu_ms: [f64; 3],
    get: [f64; 3],
    /// The lifecycle's phases (enroll, manage, provide, deploy), seconds: on
    /// the change stream where the server has one, else polled.
    lifecycle: [f64; 4],
    /// How `lifecycle` was watched.
    lifecycle_watch: Option<Watch>,
    /// The same, polled (ironic-rs only: Ironic's figure is polled already).
    lifecycle_polled: Option<[f64; 4]>,
    rss_kib: u64,
}

async fn measure(s: &Server, a: &Args) -> Result<Figures, String> {
    let base = s.url.clone();
    let pid = s.child.id();
    let mut f = Figures::default();
    let seq = a.nodes / 4;
    eprintln!(
        "[{}] enrolling {} nodes with one client, {} with 8 ...",
        s.name,
        seq,
        a.nodes - seq
    );
    let cpu0 = cpu_time(pid);
    let (r1, mut ids) = enroll(&base, seq, 1, "seq").await?;
    let (r8, more) = enroll(&base, a.nodes - seq, 8, "node").await?;
    let cpu = cpu_time(pid).saturating_sub(cpu0);
    ids.extend(more);
    f.enroll = [r1, r8];
    f.enroll_cpu_us = cpu.as_secs_f64() * 1e6 / a.nodes.max(1) as f64;
    eprintln!(
        "[{}] {r1:.1} enrolls/s (1 client), {r8:.1} enrolls/s (8), {:.0} µs server CPU each; listing ...",
        s.name, f.enroll_cpu_us
    );
    for (k, (label, q)) in LISTS.iter().enumerate() {
        let b = base.clone();
        let want = a.nodes;
        let q = q.to_string();
        let cpu0 = cpu_time(pid);
        let started = Instant::now();
        let rate = timed(4, a.seconds, move |c, _| {
            let url = match q.as_str() {
                "FIELDS" => format!(
                    "{b}/v1/nodes?limit={want}&fields=uuid,name,provision_state,driver_info"
                ),
                path => format!("{b}/v1/nodes{path}?limit={want}"),
            };
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
        let cpu = cpu_time(pid).saturating_sub(cpu0).as_secs_f64();
        let n = rate * started.elapsed().as_secs_f64();
        f.list[k] = rate;
        f.list_cpu_ms[k] = cpu * 1e3 / n.max(1.0);
        eprintln!(
            "[{}] {label}: {rate:.1} listings/s, {:.2} ms server CPU each",
            s.name, f.list_cpu_ms[k]
        );
    }
    let ids = Arc::new(ids);
    for (k, conns) in [1usize, 8, 32].into_iter().enumerate() {
        let (b, ids) = (base.clone(), ids.clone());
        f.get[k] = timed(conns, a.seconds, move |c, i| {
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
        eprintln!("[{}] {:.1} GETs/s at {conns} connections", s.name, f.get[k]);
    }
    let poll = Watch::Poll(a.poll_ms);
    let watches: &[Watch] = if s.name == "ironic-rs" {
        &[Watch::Events, poll]
    } else {
        &[poll]
    };
    for (k, &w) in watches.iter().enumerate() {
        eprintln!(
            "[{}] {} nodes enroll -> active ({w}) ...",
            s.name, a.lifecycle
        );
        let (p, sent) = lifecycle(&base, a.lifecycle, w, &format!("life{k}")).await?;
        eprintln!(
            "[{}] {:.3} s: enroll {:.3}, manage {:.3} (all 202 after {:.3}), provide {:.3} ({:.3}), deploy {:.3} ({:.3})",
            s.name,
            p.iter().sum::<f64>(),
            p[0],
            p[1],
            sent[0],
            p[2],
            sent[1],
            p[3],
            sent[2]
        );
        if k == 0 {
            f.lifecycle = p;
            f.lifecycle_watch = Some(w);
        } else {
            f.lifecycle_polled = Some(p);
        }
    }
    f.rss_kib = peak_rss_kib(pid);
    Ok(f)
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
    eprintln!("api_load: {}", servers::load());
    if !a.rss.is_empty() {
        if let Err(e) = rss_scale(&a).await {
            eprintln!("api_load: {e}");
            std::process::exit(1);
        }
        return;
    }
    let run_ours = a.only.as_deref() != Some("ironic");
    let run_real = a.only.as_deref() != Some("ours");
    let mut ours = None;
    let mut real = None;
    if run_ours {
        let s = servers::start_ours(&a.ours, &[]).unwrap_or_else(|e| {
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
        let s = servers::start_real(venv, "").unwrap_or_else(|e| {
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
    println!("{}", servers::load());
    println!(
        "{:<58} {:>14} {:>14} {:>9}",
        "measure", "ironic-rs", "Ironic 39", "ratio"
    );
    // The ratio says how many times better ironic-rs is: more per second,
    // or less CPU for rows marked "less is better".
    let row = |name: &str, x: f64, y: f64, unit: &str| {
        let better = if name.contains("less is better") {
            ratio(y, x)
        } else {
            ratio(x, y)
        };
        println!(
            "{:<58} {:>10.1} {unit:<3} {:>10.1} {unit:<3} {:>9}",
            name, x, y, better
        );
    };
    let seq = a.nodes / 4;
    row(
        &format!("enroll {seq} nodes, one client"),
        o.enroll[0],
        r.enroll[0],
        "/s",
    );
    row(
        &format!("enroll {} nodes, 8 connections", a.nodes - seq),
        o.enroll[1],
        r.enroll[1],
        "/s",
    );
    row(
        "server CPU per enroll (less is better)",
        o.enroll_cpu_us,
        r.enroll_cpu_us,
        "µs",
    );
    for (k, (label, _)) in LISTS.iter().enumerate() {
        row(
            &format!("{label} ({} nodes)", a.nodes),
            o.list[k],
            r.list[k],
            "/s",
        );
        row(
            "  server CPU per listing (less is better)",
            o.list_cpu_ms[k],
            r.list_cpu_ms[k],
            "ms",
        );
    }
    for (k, c) in [1, 8, 32].into_iter().enumerate() {
        row(
            &format!("GET /v1/nodes/{{uuid}} x{c} conns"),
            o.get[k],
            r.get[k],
            "/s",
        );
    }
    let secs = |name: &str, x: f64, y: f64| {
        println!(
            "{:<58} {:>10.3} s   {:>10.3} s   {:>9}",
            name,
            x,
            y,
            ratio(y, x)
        );
    };
    let watch = |f: &Figures| f.lifecycle_watch.map_or("-".into(), |w| w.to_string());
    println!(
        "{} nodes enroll -> active: ironic-rs {}, Ironic 39 {}",
        a.lifecycle,
        watch(&o),
        watch(&r)
    );
    let polled = o.lifecycle_polled.unwrap_or_default();
    for (k, phase) in ["enroll", "manage", "provide", "deploy"].iter().enumerate() {
        secs(&format!("  {phase}"), o.lifecycle[k], r.lifecycle[k]);
    }
    secs(
        "  total",
        o.lifecycle.iter().sum(),
        r.lifecycle.iter().sum(),
    );
    secs(
        &format!("  total, ironic-rs polled every {} ms too", a.poll_ms),
        polled.iter().sum(),
        r.lifecycle.iter().sum(),
    );
    println!(
        "{:<58} {:>10.1} MiB {:>10.1} MiB {:>9}",
        "peak RSS (VmHWM, process tree)",
        o.rss_kib as f64 / 1024.0,
        r.rss_kib as f64 / 1024.0,
        ratio(r.rss_kib as f64, o.rss_kib as f64)
    );
}

/// Follow `next` through every page of `GET /v1/nodes?limit=1000`; returns the
/// number of nodes seen.
async fn list_all(base: &str) -> Result<usize, String> {
    let c = client(1);
    let mut url = format!("{base}/v1/nodes?limit=1000");
    let mut seen = 0;
    for _ in 0..100_000 {
        let (st, v) = req(&c, reqwest::Method::GET, url.clone(), None).await?;
        if st != 200 {
            return Err(format!("list: HTTP {st}"));
        }
        seen += v["nodes"].as_array().map_or(0, |a| a.len());
        match v["next"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    Ok(seen)
}

/// `--rss`: memory of `ironic serve` (SQLite, cache on and off) at each count.
async fn rss_scale(a: &Args) -> Result<(), String> {
    let mut rows = Vec::new();
    for &n in &a.rss {
        for cache in [true, false] {
            let flag = if cache { "true" } else { "false" };
            let s = servers::start_ours(&a.ours, &[("IRONIC__STORAGE__CACHE", flag)])?;
            let idle = servers::rss_kib(s.child.id());
            eprintln!("[rss] {n} nodes, cache {flag}: enrolling ...");
            let (rate, _) = enroll(&s.url, n, 32, "rss").await?;
            let seen = list_all(&s.url).await?;
            if seen != n {
                return Err(format!("listed {seen} nodes, enrolled {n}"));
            }
            let rss = servers::rss_kib(s.child.id());
            let hwm = peak_rss_kib(s.child.id());
            eprintln!(
                "[rss] {n} nodes, cache {flag}: {rate:.0} enrolls/s, RSS {:.1} MiB, peak {:.1} MiB",
                rss as f64 / 1024.0,
                hwm as f64 / 1024.0
            );
            rows.push((n, cache, idle, rss, hwm, rate));
        }
    }
    println!("{}", servers::load());
    println!(
        "{:>8} {:>6} {:>12} {:>12} {:>12} {:>12}",
        "nodes", "cache", "idle MiB", "RSS MiB", "peak MiB", "enrolls/s"
    );
    for (n, cache, idle, rss, hwm, rate) in rows {
        println!(
            "{n:>8} {:>6} {:>12.1} {:>12.1} {:>12.1} {rate:>12.0}",
            if cache { "on" } else { "off" },
            idle as f64 / 1024.0,
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
    }
    Ok(())
}
