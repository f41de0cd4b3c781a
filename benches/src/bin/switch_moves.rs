//! Time to move bare-metal nodes between networks on Open vSwitch: the `ovs`
//! switch driver (OVSDB, one shared connection, waits until ovs-vswitchd applied
//! each change) side by side with `ovs-vsctl` (the tool operators and
//! networking-generic-switch use; it also waits for ovs-vswitchd by default).
//!
//! `cargo run --release -p ironic-benches --bin switch_moves -- --nodes 200`
//! (needs a running Open vSwitch; creates and removes a bridge of its own).

use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use ironic_core::switch::{PortConfig, SwitchConfig, SwitchDriver};

/// Arguments.
#[derive(Parser, Debug)]
struct Args {
    /// Nodes (one switch port each) moved at once.
    #[arg(long, default_value_t = 200)]
    nodes: usize,
    /// Single-node moves timed for the median.
    #[arg(long, default_value_t = 40)]
    repeat: usize,
    /// OVSDB address.
    #[arg(long, default_value = "unix:/var/run/openvswitch/db.sock")]
    db: String,
}

fn vsctl(db: &str, args: &[String]) {
    let out = Command::new("ovs-vsctl")
        .args(["--db", db, "--timeout=60"])
        .args(args)
        .output()
        .expect("run ovs-vsctl (apt-get install openvswitch-switch)");
    assert!(
        out.status.success(),
        "ovs-vsctl {:?}: {}",
        &args[..args.len().min(6)],
        String::from_utf8_lossy(&out.stderr)
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Bridge(String, String);
impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ovs-vsctl")
            .args(["--db", &self.1, "--if-exists", "del-br", &self.0])
            .output();
    }
}

#[tokio::main]
async fn main() {
    let a = Args::parse();
    let br = format!("swb{}", std::process::id() % 100000);
    let _guard = Bridge(br.clone(), a.db.clone());
    // the bridge and its ports in one ovs-vsctl transaction (internal ports)
    let mut args: Vec<String> = vec![
        "add-br".into(),
        br.clone(),
        "--".into(),
        "set".into(),
        "bridge".into(),
        br.clone(),
        "datapath_type=netdev".into(),
    ];
    let ports: Vec<String> = (0..a.nodes).map(|i| format!("{br}p{i}")).collect();
    for p in &ports {
        args.extend(
            [
                "--",
                "add-port",
                &br,
                p,
                "--",
                "set",
                "interface",
                p,
                "type=internal",
            ]
            .map(String::from),
        );
    }
    vsctl(&a.db, &args);
    let mut cfg = SwitchConfig::new("bench", "ovs", a.db.as_str());
    cfg.options.insert("bridge", br.as_str());
    let sw = ironic_switch_ovs::OvsSwitchDriver
        .build(&cfg)
        .expect("switch");
    sw.set_port(&ports[0], &PortConfig::access(10))
        .await
        .expect("warm-up");

    // one node moved, one at a time
    let mut ours = Vec::new();
    for i in 0..a.repeat {
        let t = Instant::now();
        sw.set_port(
            &ports[0],
            &PortConfig::access(if i % 2 == 0 { 20 } else { 10 }),
        )
        .await
        .expect("move");
        ours.push(t.elapsed());
    }
    let mut theirs = Vec::new();
    for i in 0..a.repeat {
        let t = Instant::now();
        vsctl(
            &a.db,
            &[
                "set".into(),
                "port".into(),
                ports[1].clone(),
                format!("tag={}", if i % 2 == 0 { 20 } else { 10 }),
            ],
        );
        theirs.push(t.elapsed());
    }
    // every node moved at once
    let t = Instant::now();
    let futs = ports.iter().map(|p| {
        let sw = sw.clone();
        async move { sw.set_port(p, &PortConfig::access(30)).await }
    });
    for r in futures::future::join_all(futs).await {
        r.expect("concurrent move");
    }
    let ours_all = t.elapsed();
    let t = Instant::now();
    let batch: Vec<(String, PortConfig)> = ports
        .iter()
        .map(|p| (p.clone(), PortConfig::access(40)))
        .collect();
    sw.set_ports(&batch).await.expect("batch move");
    let ours_batch = t.elapsed();
    let t = Instant::now();
    let mut kids: Vec<_> = ports
        .iter()
        .map(|p| {
            Command::new("ovs-vsctl")
                .args(["--db", &a.db, "--timeout=120", "set", "port", p, "tag=50"])
                .spawn()
                .expect("spawn ovs-vsctl")
        })
        .collect();
    for k in &mut kids {
        assert!(k.wait().expect("wait").success());
    }
    let theirs_all = t.elapsed();
    // check the result is real
    for p in &ports {
        let c = sw.get_port(p).await.expect("read back").config;
        assert_eq!(c.vlan, Some(ironic_core::switch::VlanMode::access(50)));
    }
    println!("switch_moves: {} nodes, OVS netdev bridge {br}", a.nodes);
    println!("| what | ovs driver (OVSDB) | ovs-vsctl |");
    println!("|---|---|---|");
    println!(
        "| one node moved (median of {}) | {:.1} ms | {:.1} ms |",
        a.repeat,
        median(ours).as_secs_f64() * 1e3,
        median(theirs).as_secs_f64() * 1e3
    );
    println!(
        "| {} nodes moved at once | {:.0} ms (concurrent calls), {:.0} ms (one set_ports) | {:.0} ms ({} processes) |",
        a.nodes,
        ours_all.as_secs_f64() * 1e3,
        ours_batch.as_secs_f64() * 1e3,
        theirs_all.as_secs_f64() * 1e3,
        a.nodes
    );
}
