//! `ironic lab --switch ovs`: the simulated servers' NICs are ports of a real Open
//! vSwitch bridge, and each port's VLAN tag (as `ovs-vsctl` reads it) follows its
//! node: parked at enroll, the cleaning VLAN while cleaning, parked when available,
//! the provisioning VLAN while deploying, the tenant VLAN once active, cleaning
//! again after undeploy.
//!
//! Needs a running Open vSwitch (`scripts/setup-test-deps.sh` starts it).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ironic_core::driver::VifInfo;
use ironic_core::{Ident, ProvisionState};
use ironic_standalone::lab::enroll;
use ironic_standalone::lab::images;
use ironic_standalone::lab::run::{Lab, LabOptions};
use ironic_standalone::lab::switch::{
    CLEANING_VLAN, DEFAULT_OVSDB, PARKED_VLAN, PROVISIONING_VLAN, TENANT_NETWORKS,
};
use serde_json::json;

/// The tags a port went through, in order, without repeats.
type Seen = Arc<Mutex<Vec<Option<u16>>>>;

/// The distinct tags a port went through, polled every 50 ms.
fn watch(db: String, port: String) -> (Seen, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let h = tokio::spawn(async move {
        loop {
            let out = tokio::process::Command::new("ovs-vsctl")
                .args([&format!("--db={db}"), "get", "Port", &port, "tag"])
                .output()
                .await;
            if let Ok(o) = out
                && o.status.success()
            {
                let tag = String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<u16>()
                    .ok();
                let mut v = s.lock().unwrap();
                if v.last() != Some(&tag) {
                    v.push(tag);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (seen, h)
}

/// What the poller saw, ending with the tag read now.
/// The history so far, with `now` (a tag the test just read) recorded in it: a
/// state the test saw must stay in the history even when it lasted less than one
/// poll (a node undeployed at once leaves its tenant VLAN within milliseconds).
fn upto_now(seen: &Seen, now: &Option<u16>) -> Vec<Option<u16>> {
    let mut h = seen.lock().unwrap();
    if h.last() != Some(now) {
        h.push(*now);
    }
    h.clone()
}

/// Bridges this test made itself, deleted however the test ends.
struct Bridges(String, Vec<String>);

impl Drop for Bridges {
    fn drop(&mut self) {
        for b in &self.1 {
            let _ = std::process::Command::new("ovs-vsctl")
                .args([&format!("--db={}", self.0), "--if-exists", "del-br", b])
                .status();
        }
    }
}

fn vsctl(db: &str, args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new("ovs-vsctl")
        .arg(format!("--db={db}"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success() || args.contains(&"br-exists"),
        "ovs-vsctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn bridge_exists(db: &str, br: &str) -> bool {
    vsctl(db, &["br-exists", br]).status.code() == Some(0)
}

/// `/proc/PID/stat` field 22 (start time in clock ticks).
fn start_time(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_owned()
}

/// Makes a bridge that looks like a lab's, owned by `pid` started at `start`.
fn fake_lab_bridge(db: &str, name: &str, pid: u32, start: &str) {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    vsctl(
        db,
        &[
            "add-br",
            name,
            "--",
            "set",
            "bridge",
            name,
            "datapath_type=netdev",
            &format!("external_ids:ironic-lab-pid=\"{pid}\""),
            &format!("external_ids:ironic-lab-pid-start=\"{start}\""),
            &format!("external_ids:ironic-lab-boot-id=\"{}\"", boot.trim()),
        ],
    );
}

fn contains_in_order(h: &[Option<u16>], want: &[u16]) -> bool {
    let mut it = h.iter();
    want.iter().all(|w| it.any(|t| *t == Some(*w)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_nics_follow_their_node_on_an_ovs_bridge() {
    let db = std::env::var("OVSDB").unwrap_or_else(|_| DEFAULT_OVSDB.to_owned());
    let sock = db.strip_prefix("unix:").unwrap_or("");
    assert!(
        sock.is_empty() || std::path::Path::new(sock).exists(),
        "no Open vSwitch at {db}: apt-get install openvswitch-switch and start it (scripts/setup-test-deps.sh does both)"
    );
    // A bridge left by a lab that died (its pid has exited) is removed when a lab
    // starts; one of a lab still running (this process) is kept.
    let me = std::process::id();
    let (dead, live) = (format!("il{me:x}d"), format!("il{me:x}l"));
    let _mine = Bridges(db.clone(), vec![dead.clone(), live.clone()]);
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    fake_lab_bridge(&db, &dead, dead_pid, "1");
    fake_lab_bridge(&db, &live, me, &start_time(me));

    let dir = tempfile::tempdir().unwrap();
    let mut opts = LabOptions::new(dir.path().to_path_buf());
    opts.api_listen = "127.0.0.1:0".parse().unwrap();
    opts.servers = 1;
    opts.ovs = Some(db.clone());
    let lab = Lab::start(&opts).await.unwrap();
    assert!(
        !bridge_exists(&db, &dead),
        "the dead lab's bridge {dead} is still there"
    );
    assert!(
        bridge_exists(&db, &live),
        "a running lab's bridge {live} was removed"
    );
    let bridge = lab.bridge.as_ref().expect("the lab's bridge");
    let port = bridge.ports[0][0].clone();
    let name = lab.rack.servers[0].name().to_string();
    let ident = Ident::Name(name.clone());
    let node = lab.conductor.get_node(&ident).await.unwrap();
    assert_eq!(node.interfaces.network_interface, "switch");
    // enrolled: wired to the bridge, parked
    let mut q = ironic_core::store::PortQuery::default();
    q.node = Some(node.uuid);
    let ports = lab.conductor.store().list_ports(&q).await.unwrap();
    assert!(
        ports
            .iter()
            .any(|p| p.local_link_connection.get("port_id") == Some(&json!(port))),
        "{ports:?}"
    );
    assert_eq!(bridge.tag(&port).unwrap(), Some(PARKED_VLAN));
    let (seen, poller) = watch(db.clone(), port.clone());

    let failures = lab.make_available(Duration::from_secs(300)).await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(bridge.tag(&port).unwrap(), Some(PARKED_VLAN));
    let h = upto_now(&seen, &bridge.tag(&port).unwrap());
    assert!(
        contains_in_order(&h, &[PARKED_VLAN, CLEANING_VLAN, PARKED_VLAN]),
        "{h:?}"
    );

    // deploy onto tenant-a
    let (tenant, tenant_vlan) = TENANT_NETWORKS[0];
    lab.conductor
        .vif_attach(&ident, VifInfo::new(tenant))
        .await
        .unwrap();
    let mut node = lab.conductor.get_node(&ident).await.unwrap();
    let image = lab.file_server.url(images::TEST_IMAGE);
    node.instance_info
        .insert("image_source".into(), json!(image));
    node.instance_info
        .insert("image_checksum".into(), json!(lab.files.image_sha256));
    node.instance_info
        .insert("image_disk_format".into(), json!("raw"));
    lab.conductor.update_node(node, false).await.unwrap();
    enroll::drive(
        &lab.conductor,
        &ident,
        "active",
        ProvisionState::Active,
        Duration::from_secs(300),
    )
    .await
    .unwrap();
    assert_eq!(bridge.tag(&port).unwrap(), Some(tenant_vlan));
    let h = upto_now(&seen, &bridge.tag(&port).unwrap());
    assert!(
        contains_in_order(
            &h,
            &[
                CLEANING_VLAN,
                PARKED_VLAN,
                PROVISIONING_VLAN,
                // (parked for a moment in between: too short for the poll)
                tenant_vlan
            ]
        ),
        "{h:?}"
    );

    // undeploy: cleaned on the cleaning VLAN, parked when available again
    enroll::drive(
        &lab.conductor,
        &ident,
        "deleted",
        ProvisionState::Available,
        Duration::from_secs(300),
    )
    .await
    .unwrap();
    assert_eq!(bridge.tag(&port).unwrap(), Some(PARKED_VLAN));
    let h = upto_now(&seen, &bridge.tag(&port).unwrap());
    assert!(
        contains_in_order(&h, &[tenant_vlan, CLEANING_VLAN, PARKED_VLAN]),
        "{h:?}"
    );
    poller.abort();
    let br = bridge.name.clone();
    lab.shutdown().await;
    // the bridge goes with the lab
    assert!(!bridge_exists(&db, &br), "bridge {br} left behind");
}
