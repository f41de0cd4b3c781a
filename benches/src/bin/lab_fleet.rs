//! `lab_fleet`: `ironic lab` at fleet scale.
//!
//! Starts `ironic lab --servers N --no-clean` (Redfish and IPMI BMCs mixed, the real
//! `ironic-agent` in every simulated machine), deploys the lab's test image onto every
//! node at once through the REST API, and reports the time until all are `active`, the
//! API latency (`GET /v1/nodes/{uuid}`) measured during the run, and the peak RSS and
//! CPU time of the service process (and the peak summed RSS of the agents).
//!
//! ```sh
//! cargo build --release -p ironic-standalone --bin ironic -p ironic-deploy-agent --bin ironic-agent
//! cargo run --release -p ironic-benches --bin lab_fleet -- --servers 200
//! ```
//! Options: `--ironic PATH` (default `target/release/ironic`), `--servers N` (200),
//! `--redfish-ratio R` (0.5), `--port P` (16400).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

struct Args {
    ironic: PathBuf,
    servers: usize,
    redfish_ratio: f64,
    port: u16,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        ironic: PathBuf::from("target/release/ironic"),
        servers: 200,
        redfish_ratio: 0.5,
        port: 16400,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| format!("{k} needs a value"));
        match k.as_str() {
            "--ironic" => a.ironic = PathBuf::from(v()?),
            "--servers" => a.servers = v()?.parse().map_err(|e| format!("--servers: {e}"))?,
            "--redfish-ratio" => {
                a.redfish_ratio = v()?.parse().map_err(|e| format!("--redfish-ratio: {e}"))?
            }
            "--port" => a.port = v()?.parse().map_err(|e| format!("--port: {e}"))?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(a)
}

/// (VmHWM kB, utime+stime seconds) of a process.
fn proc_stats(pid: u32) -> Option<(u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some((hwm, ticks / 100.0))
}

/// Summed RSS (kB) of the lab's agent processes (children of `pid`).
fn agents_rss(pid: u32) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let ppid: u32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            if ppid != pid {
                return None;
            }
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = parse_args()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let api = format!("http://127.0.0.1:{}", args.port);
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&args.ironic)
        .args(["lab", "--no-clean", "--servers", &args.servers.to_string()])
        .args(["--redfish-ratio", &args.redfish_ratio.to_string()])
        .args([
            "--listen",
            &format!("127.0.0.1:{}", args.port),
            "--data-dir",
        ])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", args.ironic.display()))?;
    let pid = child.id().ok_or("no pid")?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let (mut image, mut sha) = (String::new(), String::new());
    while let Ok(Some(line)) = lines.next_line().await {
        for word in line.split_whitespace() {
            if let Some(v) = word.strip_prefix("image_source=") {
                image = v.to_string();
            }
            if let Some(v) = word.strip_prefix("image_checksum=") {
                sha = v.to_string();
            }
        }
        if line.contains("Ctrl-C stops everything") {
            break;
        }
    }
    if image.is_empty() || sha.is_empty() {
        return Err("the lab did not come up (no banner)".into());
    }
    let ready = started.elapsed();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| e.to_string())?;
    let ver = ("X-OpenStack-Ironic-API-Version", "1.95");
    let list: Value = http
        .get(format!("{api}/v1/nodes?limit=1000"))
        .header(ver.0, ver.1)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let uuids: Vec<String> = list["nodes"]
        .as_array()
        .ok_or("no node list")?
        .iter()
        .filter_map(|n| n["uuid"].as_str().map(str::to_string))
        .collect();
    println!(
        "lab up with {} nodes available in {:.1} s",
        uuids.len(),
        ready.as_secs_f64()
    );

    // API latency sampler during the run: 4 connections reading nodes round-robin.
    let stop = Arc::new(AtomicBool::new(false));
    let samplers: Vec<_> = (0..4)
        .map(|w| {
            let (http, api, uuids, stop) = (http.clone(), api.clone(), uuids.clone(), stop.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let ok = http
                        .get(format!("{api}/v1/nodes/{}", uuids[i % uuids.len()]))
                        .header(ver.0, ver.1)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    if ok {
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    i += 4;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                lat
            })
        })
        .collect();

    let t0 = Instant::now();
    let deploys = uuids.iter().map(|u| {
        let (http, api, image, sha) = (http.clone(), api.clone(), image.clone(), sha.clone());
        async move {
            let patch = json!([
                {"op": "add", "path": "/instance_info/image_source", "value": image},
                {"op": "add", "path": "/instance_info/image_checksum", "value": sha},
                {"op": "add", "path": "/instance_info/image_disk_format", "value": "raw"},
            ]);
            let r = http
                .patch(format!("{api}/v1/nodes/{u}"))
                .header(ver.0, ver.1)
                .json(&patch)
                .send()
                .await;
            if !r.as_ref().is_ok_and(|r| r.status().is_success()) {
                return Err(format!("{u}: patch failed"));
            }
            let r = http
                .put(format!("{api}/v1/nodes/{u}/states/provision"))
                .header(ver.0, ver.1)
                .json(&json!({"target": "active"}))
                .send()
                .await;
            match r {
                Ok(r) if r.status().as_u16() == 202 => Ok(()),
                Ok(r) => Err(format!("{u}: deploy answered {}", r.status())),
                Err(e) => Err(format!("{u}: {e}")),
            }
        }
    });
    use futures::StreamExt;
    let results: Vec<Result<(), String>> = futures::stream::iter(deploys)
        .buffer_unordered(32)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let mut peak_agents = 0u64;
    let (mut active, mut failed);
    loop {
        peak_agents = peak_agents.max(agents_rss(pid));
        let list: Value = http
            .get(format!(
                "{api}/v1/nodes?fields=uuid,provision_state&limit=1000"
            ))
            .header(ver.0, ver.1)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let states: Vec<&str> = list["nodes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n["provision_state"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        active = states.iter().filter(|s| **s == "active").count();
        failed = states.iter().filter(|s| s.contains("fail")).count();
        if active + failed == uuids.len() || t0.elapsed() > Duration::from_secs(1800) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all_active = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for s in samplers {
        lat.extend(s.await.unwrap_or_default());
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let (hwm, cpu) = proc_stats(pid).unwrap_or((0, 0.0));
    // Every disk file holds the image: the marker where its partition starts (1 MiB).
    let written = (0..args.servers)
        .filter(|i| {
            use std::io::{Read, Seek, SeekFrom};
            let mut buf = [0u8; 24];
            std::fs::File::open(dir.path().join(format!("disks/lab-{i}.img")))
                .and_then(|mut f| {
                    f.seek(SeekFrom::Start(1 << 20))?;
                    f.read_exact(&mut buf)
                })
                .is_ok()
                && &buf == b"IRONIC-RS LAB TEST IMAGE"
        })
        .count();
    println!(
        "deploy of {} nodes ({:.0}% Redfish): {active} active, {failed} failed, {written} disks hold the image, all done in {:.1} s",
        uuids.len(),
        args.redfish_ratio * 100.0,
        all_active.as_secs_f64()
    );
    println!(
        "API GET /v1/nodes/{{uuid}} during the run: {} requests, p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.95),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "service process (API + conductor + BMC simulators): peak RSS {:.1} MB, CPU {:.1} s; agents: peak summed RSS {:.1} MB",
        hwm as f64 / 1024.0,
        cpu,
        peak_agents as f64 / 1024.0
    );
    let _ = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(60), child.wait()).await;
    Ok(())
}
