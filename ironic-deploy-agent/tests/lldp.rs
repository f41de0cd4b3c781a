//! LLDP with a real `lldpd` playing the switch: two network namespaces joined by a
//! veth, lldpd on the switch end (system name, port id = its interface name), the
//! agent's collector on the node end; what it hears becomes the port's
//! `local_link_connection` the way the conductor's inspection maps it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ironic_deploy_agent::agent::lldp;

fn run(cmd: &[&str]) -> String {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Netns(Vec<String>, Option<Child>);

impl Drop for Netns {
    fn drop(&mut self) {
        if let Some(mut c) = self.1.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

#[test]
fn lldp_from_a_real_lldpd_becomes_local_link_connection() {
    assert!(
        Command::new("lldpd").arg("-v").output().is_ok(),
        "lldpd is missing: apt-get install lldpd (or run scripts/setup-test-deps.sh)"
    );
    let tag = format!("l{}", std::process::id() % 100000);
    let (sw, node) = (format!("{tag}sw"), format!("{tag}nd"));
    let mut ns = Netns(vec![sw.clone(), node.clone()], None);
    let (swif, ndif) = (format!("{tag}s"), format!("{tag}n"));
    run(&["ip", "netns", "add", &sw]);
    run(&["ip", "netns", "add", &node]);
    run(&[
        "ip", "link", "add", &swif, "type", "veth", "peer", "name", &ndif,
    ]);
    run(&["ip", "link", "set", &swif, "netns", &sw]);
    run(&["ip", "link", "set", &ndif, "netns", &node]);
    run(&["ip", "-n", &sw, "link", "set", &swif, "up"]);
    run(&["ip", "-n", &node, "link", "set", &ndif, "up"]);
    let mac_line = run(&["ip", "-n", &sw, "-o", "link", "show", &swif]);
    let sw_mac = mac_line
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .expect("switch interface MAC")
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("lldpd.sock");
    let sock = sock.to_str().unwrap().to_owned();
    let child = Command::new("ip")
        .args([
            "netns", "exec", &sw, "lldpd", "-d", "-u", &sock, "-I", &swif,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start lldpd");
    ns.1 = Some(child);
    // wait for its control socket, then make it the switch "tor-7" naming ports by ifname
    let mut ok = false;
    for _ in 0..100 {
        if Command::new("lldpcli")
            .args(["-u", &sock, "show", "chassis"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ok, "lldpd did not come up");
    for c in [
        "configure system hostname tor-7",
        "configure lldp portidsubtype ifname",
        "configure lldp tx-interval 1",
    ] {
        let mut args = vec!["-u", sock.as_str()];
        args.extend(c.split(' '));
        let out = Command::new("lldpcli").args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "lldpcli {c}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // the agent's collector, in the node's namespace
    let nd = ndif.clone();
    let node_ns = node.clone();
    let heard = std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/run/netns/{node_ns}")).expect("open netns");
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        lldp::collect(&[nd, "nonexistent0".into()], Duration::from_secs(20))
    })
    .join()
    .unwrap()
    .expect("collect LLDP");
    let tlvs = &heard[&ndif];
    assert!(!tlvs.is_empty(), "no LLDP heard on {ndif} within 20 s");
    assert!(heard["nonexistent0"].is_empty());
    let llc = lldp::local_link_connection(tlvs);
    assert_eq!(llc["switch_info"], "tor-7", "{llc:?}");
    assert_eq!(llc["port_id"], swif.as_str(), "{llc:?}");
    assert_eq!(llc["switch_id"], sw_mac.as_str(), "{llc:?}");
    // and through IPA's JSON form, as the conductor receives it
    let back = lldp::from_json(&lldp::to_json(tlvs));
    assert_eq!(lldp::local_link_connection(&back), llc);
}
