//! Power-state reads across many emulated systems: ironic-drivers-redfish
//! (`RedfishPower::get_power_state`) vs the `sushy` Python client
//! (`system.refresh(force=True); system.power_state`), both against one
//! `sushy-emulator --fake` serving N systems on 127.0.0.1.
//!
//! ```text
//! IRONIC_TEST_VENV=/path/to/venv cargo bench -p ironic-benches --bench redfish_power
//! ```
//! Knobs: `REDFISH_BENCH_SYSTEMS` (100), `REDFISH_BENCH_SECS` per run (10),
//! `REDFISH_BENCH_CONCURRENCY` (comma list, "1,100").
//!
//! Both clients talk to the same single-process emulator, so at high
//! concurrency the emulator bounds the throughput; the client CPU time per 1000
//! reads and the client's peak memory show what each client costs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ironic_core::driver::{PowerInterface, Task};
use ironic_core::{DriverInfo, Node};
use ironic_drivers_redfish::{RedfishConfig, RedfishPower};
use serde_json::json;

fn tool(name: &str) -> PathBuf {
    let mut dirs = Vec::new();
    if let Ok(v) = std::env::var("IRONIC_TEST_VENV") {
        dirs.push(Path::new(&v).join("bin"));
    }
    if let Ok(p) = std::env::var("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("{name} not found: run scripts/setup-test-deps.sh and set IRONIC_TEST_VENV=$PWD/.venv-test")
        })
}

struct Emulator(Child);

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn uuid(i: usize) -> String {
    format!("5e2c0000-0000-4000-8000-{i:012x}")
}

fn start_emulator(dir: &Path, systems: usize) -> (Emulator, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut conf = format!(
        "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\nSUSHY_EMULATOR_LISTEN_PORT = {port}\nSUSHY_EMULATOR_STATE_DIR = {:?}\nSUSHY_EMULATOR_FAKE_DRIVER = True\nSUSHY_EMULATOR_FAKE_SYSTEMS = [\n",
        dir.join("state").to_str().unwrap()
    );
    for i in 0..systems {
        conf.push_str(&format!(
            "  {{'uuid': '{}', 'name': 'node-{i}', 'power_state': '{}', 'nics': [{{'mac': '52:54:00:bb:{:02x}:{:02x}', 'ip': '10.8.0.1'}}]}},\n",
            uuid(i),
            if i % 2 == 0 { "On" } else { "Off" },
            i / 256,
            i % 256
        ));
    }
    conf.push_str("]\n");
    let path = dir.join("emulator.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(tool("sushy-emulator"))
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sushy-emulator");
    let emu = Emulator(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sushy-emulator did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (emu, format!("http://127.0.0.1:{port}"))
}

/// (user+system CPU seconds, peak RSS in MiB) of this process.
fn self_usage() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after ')'.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0;
    (cpu, hwm)
}

struct Result {
    ops: u64,
    secs: f64,
    cpu: f64,
    rss_mib: f64,
}

async fn rust_run(address: &str, systems: usize, concurrency: usize, secs: u64) -> Result {
    let power = Arc::new(RedfishPower::new(RedfishConfig {
        max_idle_connections_per_bmc: concurrency,
        ..RedfishConfig::default()
    }));
    let tasks: Arc<Vec<Task>> = Arc::new(
        (0..systems)
            .map(|i| {
                let mut n = Node::new("redfish");
                n.driver_info = serde_json::from_value::<DriverInfo>(json!({
                    "redfish_address": address,
                    "redfish_system_id": format!("/redfish/v1/Systems/{}", uuid(i)),
                }))
                .unwrap();
                Task::new(n)
            })
            .collect(),
    );
    // Warm up: one read per system.
    for t in tasks.iter() {
        power.get_power_state(t).await.unwrap();
    }
    let ops = Arc::new(AtomicU64::new(0));
    let (cpu0, _) = self_usage();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut set = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let (power, tasks, ops) = (power.clone(), tasks.clone(), ops.clone());
        set.spawn(async move {
            let mut i = w;
            while Instant::now() < deadline {
                power
                    .get_power_state(&tasks[i % tasks.len()])
                    .await
                    .unwrap();
                ops.fetch_add(1, Ordering::Relaxed);
                i += concurrency;
            }
        });
    }
    while set.join_next().await.is_some() {}
    let elapsed = start.elapsed().as_secs_f64();
    let (cpu1, rss) = self_usage();
    Result {
        ops: ops.load(Ordering::Relaxed),
        secs: elapsed,
        cpu: cpu1 - cpu0,
        rss_mib: rss,
    }
}

const SUSHY_SCRIPT: &str = r#"
import json, resource, sys, threading, time
import sushy

url, systems, workers, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
root = sushy.Sushy(url + '/redfish/v1/')
ids = ['/redfish/v1/Systems/5e2c0000-0000-4000-8000-%012x' % i for i in range(systems)]
objs = [root.get_system(i) for i in ids]
for o in objs:
    o.power_state
counts = [0] * workers
def worker(w):
    mine = [root.get_system(ids[i]) for i in range(w, systems, workers)] or [root.get_system(ids[w % systems])]
    i = 0
    while time.time() < deadline:
        s = mine[i % len(mine)]
        s.refresh(force=True)
        s.power_state
        counts[w] += 1
        i += 1
r0 = resource.getrusage(resource.RUSAGE_SELF)
start = time.time()
deadline = start + secs
threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.time() - start
r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(json.dumps({"ops": sum(counts), "secs": elapsed, "cpu": cpu, "rss_mib": r1.ru_maxrss / 1024.0}))
"#;

fn sushy_run(dir: &Path, address: &str, systems: usize, concurrency: usize, secs: u64) -> Result {
    let script = dir.join("sushy_bench.py");
    std::fs::write(&script, SUSHY_SCRIPT).unwrap();
    let emulator = tool("sushy-emulator");
    let python = emulator.parent().unwrap().join("python3");
    let out = Command::new(&python)
        .arg(&script)
        .arg(address)
        .arg(systems.to_string())
        .arg(concurrency.to_string())
        .arg(secs.to_string())
        .output()
        .expect("python3 of the venv with sushy");
    assert!(
        out.status.success(),
        "sushy bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(
        out.stdout
            .split(|b| *b == b'\n')
            .rfind(|l| !l.is_empty())
            .unwrap_or_default(),
    )
    .unwrap();
    Result {
        ops: v["ops"].as_u64().unwrap(),
        secs: v["secs"].as_f64().unwrap(),
        cpu: v["cpu"].as_f64().unwrap(),
        rss_mib: v["rss_mib"].as_f64().unwrap(),
    }
}

fn report(client: &str, concurrency: usize, r: &Result) {
    println!(
        "{client:<28} {concurrency:>5} {:>10.0} {:>14.1} {:>12.0}",
        r.ops as f64 / r.secs,
        r.cpu * 1_000_000.0 / r.ops.max(1) as f64,
        r.rss_mib
    );
}

fn main() {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let systems: usize = env("REDFISH_BENCH_SYSTEMS", "100").parse().unwrap();
    let secs: u64 = env("REDFISH_BENCH_SECS", "10").parse().unwrap();
    let levels: Vec<usize> = env("REDFISH_BENCH_CONCURRENCY", "1,100")
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run short.
    let secs = if std::env::args().any(|a| a == "--bench") {
        secs
    } else {
        1
    };
    let dir = tempfile::tempdir().unwrap();
    let (_emu, address) = start_emulator(dir.path(), systems);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("power-state reads, {systems} systems on one sushy-emulator --fake, {secs} s per run");
    println!(
        "{:<28} {:>5} {:>10} {:>14} {:>12}",
        "client", "conc", "reads/s", "CPU ms/1000", "peak RSS MiB"
    );
    for &c in &levels {
        let r = rt.block_on(rust_run(&address, systems, c, secs));
        report("ironic-drivers-redfish", c, &r);
        let r = sushy_run(dir.path(), &address, systems, c, secs);
        report("sushy (Python, threads)", c, &r);
    }
}
