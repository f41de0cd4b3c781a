//! IPMI fleet load tool: N simulated BMCs (one `ipmi_sim` process each, or one
//! pyghmi process serving all), driven concurrently by ironic-drivers-ipmi and,
//! for the same work, by `ipmitool -I lanplus` (one process per command, as
//! Ironic's ipmitool driver runs it).
//!
//! Work per BMC, all BMCs at once:
//! * status: `--polls` power-state reads (driver: `get_power_state`;
//!   ipmitool: `power status`);
//! * power: `--cycles` x (power on, power off), each action read-act-verify
//!   (driver: `set_power_state`, which reads, sends Chassis Control and polls until
//!   the state is reached; ipmitool: `power status`, `power on|off`, `power status`).
//!
//! "client CPU" is the CPU time of this process plus the ipmitool processes it ran
//! (the BMCs are separate processes and not counted).
//!
//! ```text
//! cargo run --release -p ironic-benches --bin ipmi-fleet -- --bmcs 100
//! ```

#[path = "../../../ironic-drivers-ipmi/tests/common/peers.rs"]
mod peers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use ironic_core::driver::{PowerInterface, Task};
use ironic_core::{Node, PowerAction};
use ironic_drivers_ipmi::{IpmiConfig, IpmiInterfaces};
use tokio::task::JoinSet;

#[derive(Parser, Debug)]
#[command(about = "IPMI fleet load: ironic-drivers-ipmi beside ipmitool")]
struct Args {
    /// Number of simulated BMCs.
    #[arg(long, default_value_t = 100)]
    bmcs: usize,
    /// Power-state reads per BMC.
    #[arg(long, default_value_t = 20)]
    polls: usize,
    /// Power on/off cycles per BMC.
    #[arg(long, default_value_t = 3)]
    cycles: usize,
    /// BMC implementation: ipmi_sim (one process per BMC) or pyghmi (one process).
    #[arg(long, default_value = "ipmi_sim")]
    peer: String,
    /// Skip the ipmitool runs.
    #[arg(long)]
    no_ipmitool: bool,
}

/// CPU seconds used so far by this process and by its reaped children
/// (`/proc/self/stat` utime+stime, cutime+cstime; 100 ticks a second).
fn cpu_secs() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // fields after the ")" that closes the command name; utime is field 14
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let get = |i: usize| f.get(i - 3).copied().unwrap_or(0.0) / 100.0;
    (get(14) + get(15), get(16) + get(17))
}

struct Stats {
    label: String,
    cpu: f64,
    ops: usize,
    wall: Duration,
    lat: Vec<Duration>,
    errors: usize,
}

impl Stats {
    fn print(&mut self) {
        self.lat.sort();
        let q = |p: f64| {
            if self.lat.is_empty() {
                return 0.0;
            }
            let i = ((self.lat.len() as f64 - 1.0) * p).round() as usize;
            self.lat[i].as_secs_f64() * 1000.0
        };
        println!(
            "{:<34} {:>6} ops {:>8.2} s {:>9.1} ops/s  p50 {:>8.1} ms  p95 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms  errors {}  client CPU {:.2} s ({:.2} ms/op)",
            self.label,
            self.ops,
            self.wall.as_secs_f64(),
            self.ops as f64 / self.wall.as_secs_f64(),
            q(0.5),
            q(0.95),
            q(0.99),
            q(1.0),
            self.errors,
            self.cpu,
            self.cpu * 1000.0 / self.ops.max(1) as f64
        );
    }
}

fn task(port: u16) -> Task {
    let mut n = Node::new("ipmi");
    n.driver_info = serde_json::from_value(serde_json::json!({
        "ipmi_address": "127.0.0.1",
        "ipmi_port": port,
        "ipmi_username": peers::USER,
        "ipmi_password": peers::PASSWORD,
        "ipmi_cipher_suite": 3,
    }))
    .unwrap();
    Task::new(n)
}

/// Run `per_bmc(port)` for every BMC at once; each returns its latencies and errors.
async fn fleet<F, Fut>(label: &str, ports: &[u16], per_bmc: F) -> Stats
where
    F: Fn(u16) -> Fut,
    Fut: std::future::Future<Output = (Vec<Duration>, usize)> + Send + 'static,
{
    let start = Instant::now();
    let (cpu0, children0) = cpu_secs();
    let mut set = JoinSet::new();
    for p in ports {
        set.spawn(per_bmc(*p));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    while let Some(r) = set.join_next().await {
        let (l, e) = r.expect("bench task");
        lat.extend(l);
        errors += e;
    }
    let (cpu1, children1) = cpu_secs();
    Stats {
        label: label.to_owned(),
        cpu: (cpu1 - cpu0) + (children1 - children0),
        ops: lat.len() + errors,
        wall: start.elapsed(),
        lat,
        errors,
    }
}

async fn ipmitool(port: u16, args: &[&str]) -> Result<String, String> {
    let out = tokio::process::Command::new("ipmitool")
        .args(["-I", "lanplus", "-H", "127.0.0.1", "-p", &port.to_string()])
        .args(["-U", peers::USER, "-P", peers::PASSWORD, "-C", "3"])
        .args(args)
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    println!(
        "ipmi-fleet: {} BMCs ({}), {} status polls and {} power on/off cycles per BMC, {} CPUs",
        args.bmcs,
        args.peer,
        args.polls,
        args.cycles,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let started = Instant::now();
    let (_sims, _pyg, ports): (Vec<peers::IpmiSim>, Option<peers::PyghmiBmcs>, Vec<u16>) =
        match args.peer.as_str() {
            "pyghmi" => {
                let p = peers::PyghmiBmcs::start(args.bmcs);
                let ports = p.ports.clone();
                (Vec::new(), Some(p), ports)
            }
            _ => {
                let sims: Vec<_> = (0..args.bmcs).map(|_| peers::IpmiSim::start()).collect();
                let ports = sims.iter().map(|s| s.port).collect();
                (sims, None, ports)
            }
        };
    println!(
        "started {} BMCs in {:.1} s",
        ports.len(),
        started.elapsed().as_secs_f64()
    );

    let config = IpmiConfig {
        power_poll_interval: Duration::from_millis(20),
        ..IpmiConfig::default()
    };
    let power: Arc<dyn PowerInterface> = IpmiInterfaces::new(config).power;

    // driver: status polls
    let polls = args.polls;
    let p = power.clone();
    let mut s = fleet("driver: power status", &ports, move |port| {
        let p = p.clone();
        async move {
            let t = task(port);
            let (mut lat, mut err) = (Vec::new(), 0);
            for _ in 0..polls {
                let s = Instant::now();
                match p.get_power_state(&t).await {
                    Ok(_) => lat.push(s.elapsed()),
                    Err(e) => {
                        eprintln!("{e}");
                        err += 1
                    }
                }
            }
            (lat, err)
        }
    })
    .await;
    s.print();

    // driver: power on/off
    let cycles = args.cycles;
    let p = power.clone();
    let mut s = fleet("driver: power on/off (verified)", &ports, move |port| {
        let p = p.clone();
        async move {
            let t = task(port);
            let (mut lat, mut err) = (Vec::new(), 0);
            for _ in 0..cycles {
                for a in [PowerAction::PowerOn, PowerAction::PowerOff] {
                    let s = Instant::now();
                    match p.set_power_state(&t, a, None).await {
                        Ok(()) => lat.push(s.elapsed()),
                        Err(e) => {
                            eprintln!("{e}");
                            err += 1
                        }
                    }
                }
            }
            (lat, err)
        }
    })
    .await;
    s.print();
    println!("driver process peak RSS: {:.1} MiB", rss_mib());

    if args.no_ipmitool {
        return;
    }
    // ipmitool: same work
    let mut s = fleet("ipmitool: power status", &ports, move |port| async move {
        let (mut lat, mut err) = (Vec::new(), 0);
        for _ in 0..polls {
            let s = Instant::now();
            match ipmitool(port, &["power", "status"]).await {
                Ok(_) => lat.push(s.elapsed()),
                Err(e) => {
                    eprintln!("ipmitool: {}", e.trim());
                    err += 1
                }
            }
        }
        (lat, err)
    })
    .await;
    s.print();
    let mut s = fleet(
        "ipmitool: power on/off (verified)",
        &ports,
        move |port| async move {
            let (mut lat, mut err) = (Vec::new(), 0);
            for _ in 0..cycles {
                for (verb, want) in [("on", "is on"), ("off", "is off")] {
                    let s = Instant::now();
                    let r = async {
                        ipmitool(port, &["power", "status"]).await?;
                        ipmitool(port, &["power", verb]).await?;
                        loop {
                            if ipmitool(port, &["power", "status"]).await?.contains(want) {
                                return Ok::<_, String>(());
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    .await;
                    match r {
                        Ok(()) => lat.push(s.elapsed()),
                        Err(e) => {
                            eprintln!("ipmitool: {}", e.trim());
                            err += 1
                        }
                    }
                }
            }
            (lat, err)
        },
    )
    .await;
    s.print();
}
