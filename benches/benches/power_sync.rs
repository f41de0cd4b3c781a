//! One conductor's power-state sync round over 10,000 nodes whose BMCs are the
//! lab's simulators (issue 12's "10,000 nodes per conductor").
//!
//! ```sh
//! cargo bench -p ironic-benches --bench power_sync
//! ```
//!
//! The simulated BMCs run in a child process (this binary started again with
//! `--serve-bmcs N`): `POWER_SYNC_NODES` (default 10,000) of them, half Redfish
//! and half IPMI v2.0 lanplus, each on its own loopback port, as
//! [`ironic_lab::rack::Rack`] builds them. Each BMC costs file descriptors on
//! both sides (Redfish: a listener and the server side of each connection;
//! IPMI: a socket), so with the open-file limit of 20,000 here the BMCs and the
//! conductor each need a process of their own. The child ends when its standard
//! input closes: when this process exits, even by a panic.
//!
//! This process is the conductor: the service `ironic lab` runs (the same
//! registry and settings as `ironic serve`; SQLite store by default,
//! `POWER_SYNC_STORE=memory` for the in-memory one), with the periodic power sync
//! off. It enrolls every node (`redfish` or `ipmi` hardware type), makes them
//! `manageable` (verification reads each BMC), then runs `POWER_SYNC_ROUNDS`
//! (default 3) full rounds of [`Conductor::sync_power_states`] (every node's power
//! state read from its BMC, `sync_power_state_workers` at a time, 8 as in
//! Ironic) and prints for each the time, this
//! process's CPU time (user + system: the conductor alone, the BMCs are in the
//! child) and its resident memory.
//!
//! The aim of the issue: a round well inside the 120 s `power_state_sync_interval`
//! on 2 cores.
//!
//! [`Conductor::sync_power_states`]: ironic_core::conductor::Conductor::sync_power_states

#![allow(missing_docs)]

use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use ironic_core::Node;
use ironic_lab::rack::{BmcKind, Rack, RackConfig};
use serde_json::{Value, json};

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// User + system CPU time of this process so far (`/proc/self/stat`, 100 Hz ticks).
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn status_mib(key: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// The child: `n` simulated BMCs; one JSON line per server on stdout, then
/// `ready`; runs until stdin closes.
fn serve_bmcs(n: usize) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let rack = rt.block_on(async {
        let mut cfg = RackConfig::new(n, dir.path().join("disks"));
        cfg.disk_size = 1 << 20;
        Rack::start(&cfg, None)
            .await
            .expect("the simulated BMCs start")
    });
    let mut out = std::io::stdout().lock();
    for s in &rack.servers {
        let kind = match s.kind {
            BmcKind::Redfish => "redfish",
            BmcKind::Ipmi => "ipmi",
        };
        let line = json!({"name": s.name(), "kind": kind, "driver_info": s.driver_info()});
        writeln!(out, "{line}").expect("stdout");
    }
    writeln!(out, "ready").expect("stdout");
    out.flush().expect("stdout");
    drop(out);
    // Until the parent goes (its end of our stdin closes).
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    std::process::exit(0);
}

/// The BMC process; killed when dropped (a panic included).
struct Bmcs {
    child: Child,
    servers: Vec<(String, BmcKind, serde_json::Map<String, Value>)>,
}

impl Bmcs {
    fn start(n: usize) -> Bmcs {
        let exe = std::env::current_exe().expect("this binary");
        let mut child = Command::new(exe)
            .arg("--serve-bmcs")
            .arg(n.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the BMC process");
        let stdout = child.stdout.take().expect("stdout");
        let mut bmcs = Bmcs {
            child,
            servers: Vec::with_capacity(n),
        };
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.expect("the BMC process's output");
            if line == "ready" {
                return bmcs;
            }
            let v: Value = serde_json::from_str(&line).expect("a server line");
            let kind = if v["kind"] == "redfish" {
                BmcKind::Redfish
            } else {
                BmcKind::Ipmi
            };
            let info = v["driver_info"].as_object().cloned().unwrap_or_default();
            bmcs.servers.push((
                v["name"].as_str().unwrap_or_default().to_owned(),
                kind,
                info,
            ));
        }
        panic!("the BMC process ended before it was ready");
    }

    /// The BMC process's CPU seconds (user + system) and resident MiB.
    fn stats(&self) -> (f64, f64) {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        ((t(11) + t(12)) / 100.0, rss / 1024.0)
    }
}

impl Drop for Bmcs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--serve-bmcs") {
        let n = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(0);
        serve_bmcs(n);
        return;
    }
    let nodes = env_usize("POWER_SYNC_NODES", 10_000);
    let rounds = env_usize("POWER_SYNC_ROUNDS", 3);
    let memory = std::env::var("POWER_SYNC_STORE").is_ok_and(|v| v == "memory");
    let started = Instant::now();
    let bmcs = Bmcs::start(nodes);
    println!(
        "power_sync: {nodes} simulated BMCs up in another process in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = ironic_standalone::lab::service::config("127.0.0.1:0".parse().expect("addr"), false);
        if !memory {
            cfg.storage.backend = ironic_standalone::config::Backend::Sqlite;
            cfg.storage.data_dir = dir.path().join("data");
        }
        cfg.conductor.power_state_sync_interval = 0;
        let svc = ironic_standalone::lab::service::start(&cfg)
            .await
            .expect("the service starts");
        let conductor = svc.conductor.clone();
        let workers = conductor.config().sync_power_state_workers;
        let t = Instant::now();
        let mut by_driver = std::collections::BTreeMap::<String, usize>::new();
        for (name, kind, info) in &bmcs.servers {
            let plan = ironic_standalone::lab::enroll::plan(&conductor, *kind);
            let mut node = Node::new(plan.driver.clone());
            node.name = Some(name.clone());
            let mut info = info.clone();
            for k in ["deploy_kernel", "deploy_ramdisk", "deploy_iso"] {
                info.insert(k.into(), json!(format!("http://127.0.0.1:9/{k}")));
            }
            node.driver_info = info.into();
            node.interfaces.boot_interface = plan.boot.clone();
            node.interfaces.deploy_interface = plan.deploy.clone();
            node.interfaces.network_interface = "noop".into();
            conductor.create_node(node).await.expect("create_node");
            *by_driver.entry(plan.driver).or_default() += 1;
        }
        let enrolled = t.elapsed();
        // `manage` (its verification reads the BMC) takes the nodes out of
        // `enroll`, which the power sync skips; 200 at a time.
        let failures: Vec<String> = futures::stream::iter(bmcs.servers.iter())
            .map(|(name, _, _)| {
                let c = conductor.clone();
                let ident = ironic_core::Ident::Name(name.clone());
                async move {
                    ironic_standalone::lab::enroll::drive(
                        &c,
                        &ident,
                        "manage",
                        ironic_core::ProvisionState::Manageable,
                        Duration::from_secs(900),
                    )
                    .await
                    .err()
                }
            })
            .buffer_unordered(200)
            .filter_map(|r| async move { r })
            .collect()
            .await;
        assert!(
            failures.is_empty(),
            "{} nodes did not become manageable, e.g. {:?}",
            failures.len(),
            failures.first()
        );
        println!(
            "power_sync: {nodes} nodes {by_driver:?} on {} enrolled in {:.1} s, manageable after {:.1} s more; RSS {:.1} MiB",
            if memory { "MemoryStore" } else { "SQLite" },
            enrolled.as_secs_f64(),
            t.elapsed().as_secs_f64() - enrolled.as_secs_f64(),
            status_mib("VmRSS:")
        );
        for round in 1..=rounds {
            let cpu = cpu_secs();
            let (bmc_cpu, _) = bmcs.stats();
            let t = Instant::now();
            conductor.sync_power_states().await;
            let took = t.elapsed();
            let (bmc_cpu_after, bmc_rss) = bmcs.stats();
            println!(
                "power_sync round {round}: {nodes} nodes in {:.2} s ({:.0} nodes/s, {workers} workers); conductor CPU {:.2} s, RSS {:.1} MiB (peak {:.1} MiB), {} open files; BMC process CPU {:.2} s, RSS {:.1} MiB",
                took.as_secs_f64(),
                nodes as f64 / took.as_secs_f64(),
                cpu_secs() - cpu,
                status_mib("VmRSS:"),
                status_mib("VmHWM:"),
                open_fds(),
                bmc_cpu_after - bmc_cpu,
                bmc_rss
            );
        }
        // Every node's power state was read: none left unknown.
        let unknown = conductor
            .list_nodes(&Default::default())
            .await
            .expect("list_nodes")
            .iter()
            .filter(|n| n.power_state.is_none())
            .count();
        println!("power_sync: nodes without a power state after the rounds: {unknown}");
        svc.api.shutdown().await;
        conductor.shutdown().await;
    });
    drop(bmcs);
}
