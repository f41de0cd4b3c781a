//! `hostile_api`: the API under a wrong-password flood, and its drain on SIGTERM.
//!
//! 1. **Wrong-password flood** (`auth_strategy = http_basic`, a bcrypt htpasswd
//!    file made with the real `htpasswd -B`): the latency (p50, p99) of one client
//!    calling the public `GET /v1` and an authenticated `GET /v1/nodes`, first
//!    alone, then while `--clients` (16) clients send wrong passwords (known and
//!    unknown users) as fast as they are answered. Run against this workspace's
//!    `ironic` and, with `--ironic-venv`, the real Ironic 39 configured the same.
//! 2. **Drain on SIGTERM** (`ironic serve`, SQLite): `--inflight` (32) clients
//!    keep `GET /v1/nodes/detail` (200 nodes) requests in flight; SIGTERM; the time
//!    until the process exits, and how many requests that had been sent before
//!    the signal failed (should be none). Then the same with one more client
//!    stuck half-way through a request body: the drain waits for it until
//!    `[api] shutdown_timeout` (set to `--shutdown-timeout`, 5 s) and the process
//!    still exits.
//!
//! ```sh
//! cargo build --release -p ironic-standalone --bin ironic -p ironic-benches --bin hostile_api
//! target/release/hostile_api --ironic-venv .venv-ironic
//! ```
//! Needs `htpasswd` (Debian `apache2-utils`). Every loop is bounded in time;
//! all traffic goes to loopback.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ironic_benches::servers::{self, Server, quantile};
use serde_json::json;
use tokio::io::AsyncWriteExt;

const VERSION: &str = "1.95";

struct Args {
    ours: PathBuf,
    ironic_venv: Option<PathBuf>,
    clients: usize,
    seconds: u64,
    inflight: usize,
    shutdown_timeout: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        ours: PathBuf::from("target/release/ironic"),
        ironic_venv: std::env::var_os("IRONIC_BENCH_VENV").map(PathBuf::from),
        clients: 16,
        seconds: 5,
        inflight: 32,
        shutdown_timeout: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--ours" => a.ours = PathBuf::from(val()?),
            "--ironic-venv" => a.ironic_venv = Some(PathBuf::from(val()?)),
            "--clients" => a.clients = num(val()?)? as usize,
            "--seconds" => a.seconds = num(val()?)?,
            "--inflight" => a.inflight = num(val()?)? as usize,
            "--shutdown-timeout" => a.shutdown_timeout = num(val()?)?,
            "-h" | "--help" => {
                return Err(
                    "usage: hostile_api [--ours PATH] [--ironic-venv DIR] [--clients N] \
                            [--seconds N] [--inflight N] [--shutdown-timeout S]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn htpasswd(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("htpasswd")
        .args(args)
        .output()
        .map_err(|e| {
            format!(
                "`htpasswd` is needed (Debian apache2-utils: apt-get install apache2-utils): {e}"
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "htpasswd {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// p50 and p99 of one sequential client's requests.
#[derive(Clone, Copy, Default)]
struct Lat {
    p50: Duration,
    p99: Duration,
    n: usize,
}

impl std::fmt::Display for Lat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:>8.2} ms  p99 {:>8.2} ms  ({} requests)",
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.n
        )
    }
}

/// One client calling `url` for `secs` (with basic credentials when given).
async fn sample(url: &str, auth: Option<(&str, &str)>, secs: u64) -> Result<Lat, String> {
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let stop = Instant::now() + Duration::from_secs(secs);
    let mut times = Vec::new();
    while Instant::now() < stop {
        let mut r = c.get(url).header("X-OpenStack-Ironic-API-Version", VERSION);
        if let Some((u, p)) = auth {
            r = r.basic_auth(u, Some(p));
        }
        let t = Instant::now();
        let resp = r.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        resp.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        times.push(t.elapsed());
        if !status.is_success() {
            return Err(format!("{url}: HTTP {status}"));
        }
    }
    let n = times.len();
    Ok(Lat {
        p50: quantile(&mut times, 0.5),
        p99: quantile(&mut times, 0.99),
        n,
    })
}

#[derive(Default)]
struct Flood {
    v1_alone: Lat,
    nodes_alone: Lat,
    v1_flood: Lat,
    nodes_flood: Lat,
    wrong_per_s: f64,
}

/// The latency of `GET /v1` and an authenticated `GET /v1/nodes`, alone and
/// during a wrong-password flood of `clients` clients.
async fn flood(s: &Server, a: &Args) -> Result<Flood, String> {
    let v1 = format!("{}/v1", s.url);
    let nodes = format!("{}/v1/nodes", s.url);
    let good = Some(("admin", "s3cret"));
    let mut f = Flood::default();
    eprintln!("[{}] alone ...", s.name);
    f.v1_alone = sample(&v1, None, a.seconds).await?;
    f.nodes_alone = sample(&nodes, good, a.seconds).await?;
    eprintln!("[{}] during a flood of {} clients ...", s.name, a.clients);
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..a.clients {
        let (stop, refused, url) = (stop.clone(), refused.clone(), nodes.clone());
        tasks.push(tokio::spawn(async move {
            let c = reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .map_err(|e| e.to_string())?;
            // Half the flood names a known user, half an unknown one.
            let user = if i % 2 == 0 { "admin" } else { "mallory" };
            let deadline = Instant::now() + Duration::from_secs(600);
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                k += 1;
                let r = c
                    .get(&url)
                    .basic_auth(user, Some(format!("wrong-{i}-{k}")))
                    .send()
                    .await
                    .map_err(|e| format!("flood: {e}"))?;
                if r.status().as_u16() != 401 {
                    return Err(format!("a wrong password got HTTP {}", r.status()));
                }
                refused.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, String>(())
        }));
    }
    // Let the flood reach its pace first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let before = refused.load(Ordering::Relaxed);
    let v1_flood = sample(&v1, None, a.seconds).await;
    let nodes_flood = sample(&nodes, good, a.seconds).await;
    f.wrong_per_s =
        (refused.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    f.v1_flood = v1_flood?;
    f.nodes_flood = nodes_flood?;
    Ok(f)
}

/// What one drain run saw.
struct Drain {
    /// SIGTERM to process exit.
    exit: Option<Duration>,
    /// Requests sent before SIGTERM and answered 200.
    answered: u64,
    /// Requests sent before SIGTERM that failed.
    lost: u64,
    /// Whether the stuck client's connection was closed by the server.
    stuck_closed: Option<bool>,
}

/// `inflight` clients keep listing requests in flight; SIGTERM; how long until
/// the process exits and what happened to the requests in flight.
async fn drain(bin: &Path, a: &Args, stuck: bool) -> Result<Drain, String> {
    let timeout = a.shutdown_timeout.to_string();
    let mut s = servers::start_ours(bin, &[("IRONIC__API__SHUTDOWN_TIMEOUT", &timeout)])?;
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    for i in 0..200 {
        let r = c
            .post(format!("{}/v1/nodes", s.url))
            .header("X-OpenStack-Ironic-API-Version", VERSION)
            .json(
                &json!({"driver": "fake-hardware", "name": format!("drain-{i}"),
                          "properties": {"cpus": 4, "memory_mb": 8192, "local_gb": 100}}),
            )
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status().as_u16() != 201 {
            return Err(format!("enroll: HTTP {}", r.status()));
        }
    }
    let mut stuck_conn = None;
    if stuck {
        let mut t = tokio::net::TcpStream::connect(s.addr())
            .await
            .map_err(|e| e.to_string())?;
        t.write_all(
            b"POST /v1/nodes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n{\"driver\":",
        )
        .await
        .map_err(|e| e.to_string())?;
        stuck_conn = Some(t);
    }
    // Requests in flight: each client records the send time of every request and
    // whether it was answered.
    let signalled: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let (answered, lost) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for _ in 0..a.inflight {
        let (c, url) = (c.clone(), format!("{}/v1/nodes/detail", s.url));
        let (signalled, answered, lost) = (signalled.clone(), answered.clone(), lost.clone());
        tasks.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline {
                let sent = Instant::now();
                let r = c
                    .get(&url)
                    .header("X-OpenStack-Ironic-API-Version", VERSION)
                    .send()
                    .await;
                let ok = match r {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                };
                let before_signal = signalled.lock().unwrap().is_none_or(|t| sent < t);
                if !before_signal {
                    // Requests sent after SIGTERM are refused: the drain is over
                    // for this client.
                    return;
                }
                if ok {
                    answered.fetch_add(1, Ordering::Relaxed);
                } else {
                    lost.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    *signalled.lock().unwrap() = Some(Instant::now());
    let limit = Duration::from_secs(a.shutdown_timeout + 30);
    let exit = tokio::task::spawn_blocking(move || {
        let r = s.terminate(limit);
        (r, s)
    });
    for t in tasks {
        let _ = t.await;
    }
    let (exit, _s) = exit.await.map_err(|e| e.to_string())?;
    let stuck_closed = match stuck_conn {
        None => None,
        Some(mut t) => {
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 512];
            Some(matches!(
                tokio::time::timeout(Duration::from_secs(5), t.read(&mut buf)).await,
                Ok(Ok(_)) | Ok(Err(_))
            ))
        }
    };
    Ok(Drain {
        exit,
        answered: answered.load(Ordering::Relaxed),
        lost: lost.load(Ordering::Relaxed),
        stuck_closed,
    })
}

async fn run(a: &Args) -> Result<(), String> {
    eprintln!("hostile_api: {}", servers::load());
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("htpasswd");
    let f = file.to_str().ok_or("temp path not UTF-8")?;
    htpasswd(&["-c", "-B", "-b", f, "admin", "s3cret"])?;
    htpasswd(&["-B", "-b", f, "ops", "0ps-pass"])?;
    let ours = {
        let s = servers::start_ours(
            &a.ours,
            &[
                ("IRONIC__API__AUTH_STRATEGY", "http_basic"),
                ("IRONIC__API__HTTP_BASIC_AUTH_USER_FILE", f),
            ],
        )?;
        flood(&s, a).await?
    };
    let real = match &a.ironic_venv {
        None => None,
        Some(venv) => {
            let s = servers::start_real(
                venv,
                &format!("auth_strategy = http_basic\nhttp_basic_auth_user_file = {f}\n"),
            )?;
            Some(flood(&s, a).await?)
        }
    };
    eprintln!("drain: {} clients with requests in flight ...", a.inflight);
    let plain = drain(&a.ours, a, false).await?;
    eprintln!("drain: the same plus one client stuck in a request body ...");
    let stuck = drain(&a.ours, a, true).await?;

    println!("{}", servers::load());
    println!(
        "wrong-password flood ({} clients, bcrypt htpasswd), one client's latency:",
        a.clients
    );
    let rows = |name: &str, f: &Flood| {
        println!("  {name}: GET /v1 alone            {}", f.v1_alone);
        println!("  {name}: GET /v1 during flood     {}", f.v1_flood);
        println!("  {name}: GET /v1/nodes alone      {}", f.nodes_alone);
        println!("  {name}: GET /v1/nodes in flood   {}", f.nodes_flood);
        println!("  {name}: wrong passwords refused  {:.0} /s", f.wrong_per_s);
    };
    rows("ironic-rs", &ours);
    if let Some(r) = &real {
        rows("Ironic 39", r);
    }
    let show = |name: &str, d: &Drain| {
        println!(
            "  {name}: exit {} after SIGTERM; requests in flight answered {}, failed {}{}",
            d.exit
                .map(|t| format!("{:.3} s", t.as_secs_f64()))
                .unwrap_or_else(|| "NOT within the limit".into()),
            d.answered,
            d.lost,
            match d.stuck_closed {
                Some(true) => ", stuck client closed",
                Some(false) => ", stuck client NOT closed",
                None => "",
            }
        );
    };
    println!(
        "drain on SIGTERM ({} clients listing 200 nodes, shutdown_timeout {} s):",
        a.inflight, a.shutdown_timeout
    );
    show("requests in flight         ", &plain);
    show("plus a client stuck in body", &stuck);
    Ok(())
}

#[tokio::main]
async fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hostile_api: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&a).await {
        eprintln!("hostile_api: {e}");
        std::process::exit(1);
    }
}
