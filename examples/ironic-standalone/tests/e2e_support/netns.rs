//! The lab network: a namespace of its own with a bridge at 10.99.0.1/24 and one
//! tap device per VM. Nothing is reachable from outside the namespace; everything
//! the test starts (servers, BMCs, QEMU) runs inside it, so fixed addresses and
//! ports cannot collide with other tests.

use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::tool;

/// The lab server's address on the bridge.
pub const SERVER_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 99, 0, 1);
/// The bridge.
pub const BRIDGE: &str = "br0";

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    let out = Command::new(tool("ip", "iproute2"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ip {}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "ip {}: {} (the end-to-end test needs root for network namespaces)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// A network namespace with the lab bridge; on drop, every process still in it
/// is killed and the namespace is deleted.
pub struct LabNet {
    /// The namespace's name (`e2e-<pid>-<n>`).
    pub name: String,
    taps: u32,
}

impl LabNet {
    /// Create the namespace, loopback, and the bridge with the server's address.
    pub fn new() -> LabNet {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("e2e-{}-{n}", std::process::id());
        ip(&["netns", "add", &name]);
        let net = LabNet { name, taps: 0 };
        net.ip(&["link", "set", "lo", "up"]);
        net.ip(&["link", "add", BRIDGE, "type", "bridge"]);
        net.ip(&[
            "link",
            "set",
            BRIDGE,
            "type",
            "bridge",
            "forward_delay",
            "0",
        ]);
        net.ip(&["addr", "add", "10.99.0.1/24", "dev", BRIDGE]);
        net.ip(&["link", "set", BRIDGE, "up"]);
        net
    }

    /// Run `ip -n NAME ...`.
    pub fn ip(&self, args: &[&str]) {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        ip(&a);
    }

    /// A tap device on the bridge for a VM; returns its name.
    pub fn tap(&mut self) -> String {
        let tap = format!("tap{}", self.taps);
        self.taps += 1;
        self.ip(&["tuntap", "add", "dev", &tap, "mode", "tap"]);
        self.ip(&["link", "set", &tap, "master", BRIDGE]);
        self.ip(&["link", "set", &tap, "up"]);
        tap
    }

    /// Run `f` on a new thread that has entered the namespace. Sockets it opens,
    /// threads it starts (a tokio runtime's workers included) and processes it
    /// spawns all live in the namespace.
    pub fn run_inside<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::Result<T> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::Builder::new()
            .name(format!("netns-{}", self.name))
            .spawn(move || {
                let file =
                    std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .expect("setns into the lab namespace (the test runs as root)");
                f()
            })
            .expect("spawn the namespace thread")
            .join()
    }

    /// PIDs of the processes in the namespace.
    pub fn pids(&self) -> Vec<u32> {
        Command::new(tool("ip", "iproute2"))
            .args(["netns", "pids", &self.name])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for LabNet {
    fn drop(&mut self) {
        // Only processes this test started can be in its namespace.
        for pid in self.pids() {
            if pid != std::process::id() {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        let _ = Command::new(tool("ip", "iproute2"))
            .args(["netns", "del", &self.name])
            .output();
    }
}
