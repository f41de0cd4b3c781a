//! Network namespaces for the DHCP and QEMU tests: a "server" namespace with a
//! bridge (`br0`, 10.99.0.1/24), and peer namespaces or tap devices on it.
//! Everything is deleted on drop, also when a test fails.

use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::tool;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The server's address on the lab bridge.
pub const SERVER_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 99, 0, 1);

fn ip(args: &[&str]) {
    let ipt = tool("ip", "iproute2");
    let out = Command::new(ipt).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One network namespace, deleted on drop.
pub struct Netns {
    /// Its name.
    pub name: String,
}

impl Netns {
    /// A new namespace with a unique name (`ipxe-<pid>-<n>-<tag>`), loopback up.
    pub fn new(tag: &str) -> Netns {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("ipxe-{}-{n}-{tag}", std::process::id());
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Run `ip` inside.
    pub fn ip(&self, args: &[&str]) {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        ip(&a);
    }

    /// A command that runs inside (`ip netns exec NAME prog`).
    pub fn command(&self, prog: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(tool("ip", "iproute2"));
        c.args(["netns", "exec", &self.name]).arg(prog);
        c
    }

    /// Run `f` on a thread that has entered this namespace: sockets it creates
    /// (and threads it spawns) live in the namespace.
    pub fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("setns (the tests run as root)");
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new(tool("ip", "iproute2"))
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A lab segment: a server namespace with bridge `br0` at 10.99.0.1/24.
pub struct Lab {
    /// The server's namespace.
    pub srv: Netns,
    peers: u32,
}

impl Lab {
    /// Create the server namespace and its bridge.
    pub fn new() -> Lab {
        let srv = Netns::new("srv");
        srv.ip(&["link", "add", "br0", "type", "bridge"]);
        srv.ip(&["link", "set", "br0", "type", "bridge", "forward_delay", "0"]);
        srv.ip(&["addr", "add", "10.99.0.1/24", "dev", "br0"]);
        srv.ip(&["link", "set", "br0", "up"]);
        Lab { srv, peers: 0 }
    }

    /// A peer namespace wired to the bridge; its side of the link is `eth0`.
    pub fn peer(&mut self, tag: &str) -> Netns {
        let ns = Netns::new(tag);
        self.peers += 1;
        let port = format!("p{}", self.peers);
        self.srv.ip(&[
            "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
        ]);
        self.srv.ip(&["link", "set", &port, "master", "br0"]);
        self.srv.ip(&["link", "set", &port, "up"]);
        ns.ip(&["link", "set", "eth0", "up"]);
        ns
    }

    /// A tap device on the bridge for a VM; returns its name.
    pub fn tap(&mut self) -> String {
        self.peers += 1;
        let tap = format!("tap{}", self.peers);
        self.srv.ip(&["tuntap", "add", "dev", &tap, "mode", "tap"]);
        self.srv.ip(&["link", "set", &tap, "master", "br0"]);
        self.srv.ip(&["link", "set", &tap, "up"]);
        tap
    }
}
