//! A bridge per test on the machine's Open vSwitch, with unique names, removed on drop.
#![allow(dead_code)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ironic_core::switch::{Switch, SwitchConfig, SwitchDriver};
use ironic_switch_ovs::OvsSwitchDriver;

/// The OVSDB socket the tests use (`IRONIC_TEST_OVSDB` overrides).
pub fn db() -> String {
    std::env::var("IRONIC_TEST_OVSDB")
        .unwrap_or_else(|_| "unix:/var/run/openvswitch/db.sock".to_owned())
}

fn require_ovs() {
    let db = db();
    let path = db.strip_prefix("unix:").unwrap_or("");
    let ok = Command::new("ovs-vsctl")
        .args(["--db", &db, "--timeout=5", "show"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "Open vSwitch is not running (no answer on {db}{}). Install and start it: \
         apt-get install openvswitch-switch && /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random \
         (or run scripts/setup-test-deps.sh)",
        if path.is_empty() {
            ""
        } else {
            ", the socket ovs-vsctl uses"
        }
    );
}

/// `ovs-vsctl ARGS`, trimmed stdout; panics with stderr on failure.
pub fn vsctl(args: &[&str]) -> String {
    let db = db();
    let out = Command::new("ovs-vsctl")
        .args(["--db", &db, "--timeout=10"])
        .args(args)
        .output()
        .expect("run ovs-vsctl");
    assert!(
        out.status.success(),
        "ovs-vsctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A unique short name (interface names are at most 15 bytes).
pub fn unique(tag: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}{:x}{n}",
        &tag[..tag.len().min(4)],
        std::process::id() % 0xfffff
    )
}

/// A switch over bridge `bridge`.
pub fn switch_for(name: &str, bridge: &str) -> Arc<dyn Switch> {
    switch_at(name, &db(), bridge)
}

/// A switch at `address` over `bridge`.
pub fn switch_at(name: &str, address: &str, bridge: &str) -> Arc<dyn Switch> {
    let mut c = SwitchConfig::new(name, "ovs", address);
    c.options.insert("bridge", bridge);
    c.options.insert("timeout", "5");
    OvsSwitchDriver.build(&c).expect("build switch")
}

/// A netdev bridge with `n` ports (veth ends on the host; the peers either stay
/// down on the host or live in one namespace each).
pub struct Bridge {
    pub name: String,
    pub ports: Vec<String>,
    namespaces: Vec<String>,
    peers: Vec<String>,
}

impl Bridge {
    /// A bridge whose ports are veths (peers left on the host, down).
    pub fn new(tag: &str, n: usize) -> Bridge {
        Self::build(tag, n, false)
    }

    /// A bridge whose ports' peers are in one namespace each, `10.<x>.0.<i+1>/24`.
    pub fn with_namespaces(tag: &str, n: usize) -> Bridge {
        Self::build(tag, n, true)
    }

    fn build(tag: &str, n: usize, ns: bool) -> Bridge {
        require_ovs();
        let name = unique(tag);
        vsctl(&[
            "--may-exist",
            "add-br",
            &name,
            "--",
            "set",
            "bridge",
            &name,
            "datapath_type=netdev",
        ]);
        let mut b = Bridge {
            name: name.clone(),
            ports: Vec::new(),
            namespaces: Vec::new(),
            peers: Vec::new(),
        };
        for i in 0..n {
            let p = format!("{name}p{i}");
            let q = format!("{name}q{i}");
            ip(&["link", "add", &p, "type", "veth", "peer", "name", &q]);
            ip(&["link", "set", &p, "up"]);
            b.peers.push(q.clone());
            if ns {
                let nsn = format!("{name}n{i}");
                ip(&["netns", "add", &nsn]);
                b.namespaces.push(nsn.clone());
                ip(&["link", "set", &q, "netns", &nsn]);
                ip(&[
                    "-n",
                    &nsn,
                    "addr",
                    "add",
                    &format!("10.213.0.{}/24", i + 1),
                    "dev",
                    &q,
                ]);
                ip(&["-n", &nsn, "link", "set", &q, "up"]);
                ip(&["-n", &nsn, "link", "set", "lo", "up"]);
            }
            // a new port starts parked, as the driver would leave it
            vsctl(&[
                "add-port",
                &name,
                &p,
                "tag=4095",
                "protected=true",
                "external_ids:ironic-rs-shut=true",
                "external_ids:ironic-rs-vlan=null",
            ]);
            b.ports.push(p);
        }
        b
    }

    /// The driver over this bridge.
    pub fn switch(&self) -> Arc<dyn Switch> {
        switch_for("tor", &self.name)
    }

    /// Whether namespace `from` reaches `to`'s address (two pings, 1 s each).
    pub fn ping(&self, from: usize, to: usize) -> bool {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.namespaces[from],
                "busybox",
                "ping",
                "-c",
                "2",
                "-W",
                "1",
            ])
            .arg(format!("10.213.0.{}", to + 1))
            .output()
            .expect("run busybox ping (apt-get install busybox-static)")
            .status
            .success()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let db = db();
        let _ = Command::new("ovs-vsctl")
            .args(["--db", &db, "--if-exists", "del-br", &self.name])
            .output();
        for p in &self.ports {
            let _ = Command::new("ip").args(["link", "del", p]).output();
        }
        for n in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}
