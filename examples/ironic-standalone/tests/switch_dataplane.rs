//! Tenant isolation through the whole service, on the data plane: a real Open
//! vSwitch bridge is the top-of-rack switch, the service (`ironic serve`'s
//! configuration: API, conductor, DHCP, TFTP and HTTP boot servers, the `switch`
//! network interface with the `ovs` driver) runs in a namespace of its own wired to
//! the bridge on the provisioning VLAN (and the cleaning VLAN), and each node is a
//! namespace wired to a bridge port, as a server's NIC is wired to a switch port.
//!
//! Node A is deployed by the real `ironic-agent` running in its namespace, after
//! the node "firmware" (real clients: busybox udhcpc and tftp, curl) got its
//! address, its NBP and its iPXE script from the service's boot servers. Once
//! active on tenant-a, A gets none of them any more (even with its old address),
//! reaches B (tenant-a) and not C (tenant-b). After undeploy, A is cleaned on the
//! cleaning network: the agent reaches the API there and nothing of tenant-a.
//!
//! Needs root (namespaces), a running Open vSwitch (`scripts/setup-test-deps.sh`),
//! busybox, curl and iPXE (examples/ironic-standalone/test-deps/apt.txt).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ironic_core::conductor::{Conductor, ProvisionRequest};
use ironic_core::driver::VifInfo;
use ironic_core::{Ident, Node, Port, PowerState, ProvisionState};
use ironic_standalone::config::Config;
use ironic_standalone::lab::{enroll, images, machine, service};
use serde_json::json;

/// The service's addresses: provisioning (VLAN 10) and cleaning (VLAN 20).
const SVC_PROV: &str = "10.61.0.1";
const SVC_CLEAN: &str = "10.62.0.1";
const PROV_VLAN: u16 = 10;
const CLEAN_VLAN: u16 = 20;
const TENANT_A_VLAN: u16 = 101;
const TENANT_B_VLAN: u16 = 102;
const PARKED: u16 = 4095;
/// The nodes' addresses on their tenant networks: one subnet, so that only the
/// VLANs keep tenant-a and tenant-b apart.
const TENANT_IP: [&str; 3] = ["10.70.0.11", "10.70.0.12", "10.70.0.13"];
const MACS: [&str; 3] = [
    "52:54:00:d9:00:0a",
    "52:54:00:d9:00:0b",
    "52:54:00:d9:00:0c",
];
const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];

fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "test peer `{name}` is missing: apt-get install -y {package} \
                 (examples/ironic-standalone/test-deps/apt.txt; scripts/setup-test-deps.sh installs it)"
            )
        })
}

/// Runs a command; (success, stdout + stderr).
fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn must(cmd: &mut Command) -> String {
    let what = format!("{cmd:?}");
    let (ok, out) = run(cmd);
    assert!(ok, "{what} failed: {out}");
    out
}

fn ip(args: &[&str]) {
    must(Command::new(tool("ip", "iproute2")).args(args));
}

fn vsctl(args: &[&str]) -> String {
    must(
        Command::new(tool("ovs-vsctl", "openvswitch-switch"))
            .arg("--timeout=30")
            .args(args),
    )
    .trim()
    .to_owned()
}

/// The VLAN tag of a bridge port.
fn tag(port: &str) -> Option<u16> {
    vsctl(&["get", "Port", port, "tag"]).parse().ok()
}

/// Everything the test creates on the host, removed however the test ends: the
/// bridge, the namespaces (and what still runs in them: only this test's processes).
struct Net {
    bridge: String,
    namespaces: Vec<String>,
}

impl Net {
    fn new() -> Net {
        let ok = Command::new("ovs-vsctl")
            .args(["--timeout=5", "show"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "Open vSwitch is not running: apt-get install openvswitch-switch && \
             /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random (or run scripts/setup-test-deps.sh)"
        );
        let bridge = format!("dp{:x}", std::process::id());
        // (a bridge of that name can only be left by a crashed run with this pid)
        vsctl(&[
            "--if-exists",
            "del-br",
            &bridge,
            "--",
            "add-br",
            &bridge,
            "--",
            "set",
            "bridge",
            &bridge,
            "datapath_type=netdev",
        ]);
        Net {
            bridge,
            namespaces: Vec::new(),
        }
    }

    /// A namespace (`<bridge>-<tag>`) with loopback up.
    fn namespace(&mut self, tag: &str) -> String {
        let ns = format!("{}-{tag}", self.bridge);
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        ip(&["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ns
    }

    /// A veth from bridge port `<bridge><suffix>` (suffix: a non-hex letter first,
    /// so that no other process's names can be the same) to `dev` in `ns` (with `mac`), the
    /// port starting with `tag` (4095 + protected: parked, as the driver parks).
    fn wire(&self, suffix: &str, ns: &str, dev: &str, mac: Option<&str>, tag: u16) -> String {
        let port = format!("{}{suffix}", self.bridge);
        let _ = Command::new("ip").args(["link", "del", &port]).output();
        ip(&[
            "link", "add", &port, "type", "veth", "peer", "name", dev, "netns", ns,
        ]);
        if let Some(mac) = mac {
            ip(&["-n", ns, "link", "set", dev, "address", mac]);
        }
        ip(&["link", "set", &port, "up"]);
        ip(&["-n", ns, "link", "set", dev, "up"]);
        // The userspace (netdev) datapath forwards what it reads from the veth as is:
        // a UDP/TCP checksum left to offload would arrive unfilled, and the peer drops
        // it. Checksums are computed in software on the namespace's side instead.
        must(in_ns(ns, tool("ethtool", "ethtool")).args(["-K", dev, "tx", "off"]));
        let mut args = vec![
            "add-port".to_owned(),
            self.bridge.clone(),
            port.clone(),
            format!("tag={tag}"),
        ];
        if tag == PARKED {
            args.extend([
                "protected=true".to_owned(),
                "external_ids:ironic-rs-shut=true".to_owned(),
                "external_ids:ironic-rs-vlan=null".to_owned(),
            ]);
        }
        vsctl(&args.iter().map(String::as_str).collect::<Vec<_>>());
        port
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let me = std::process::id().to_string();
        for ns in &self.namespaces {
            let pids = Command::new("ip")
                .args(["netns", "pids", ns])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            for pid in pids.split_whitespace().filter(|p| *p != me) {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ovs-vsctl")
            .args(["--if-exists", "del-br", &self.bridge])
            .output();
        for ns in &self.namespaces {
            // deleting a namespace deletes its veth ends, and with them the pairs
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// A command run inside namespace `ns`.
fn in_ns(ns: &str, prog: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(tool("ip", "iproute2"));
    c.args(["netns", "exec", ns]).arg(prog);
    c
}

fn busybox(ns: &str, applet: &str) -> Command {
    let mut c = in_ns(ns, tool("busybox", "busybox-static"));
    c.arg(applet);
    c
}

/// One DHCP exchange with busybox udhcpc on `eth0` (`extra`: vendor class and
/// options as a PXE ROM or iPXE sends them); the variables of the lease.
fn udhcpc(
    ns: &str,
    dir: &Path,
    extra: &[&str],
) -> Option<std::collections::HashMap<String, String>> {
    let script = dir.join("udhcpc.sh");
    let out = dir.join(format!("lease-{ns}"));
    let _ = std::fs::remove_file(&out);
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = bound ] && env > {}\nexit 0\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (ok, log) = run(busybox(ns, "udhcpc")
        .args(["-i", "eth0", "-f", "-q", "-n", "-t", "3", "-T", "1"])
        .args(["-O", "tftp", "-O", "bootfile", "-s"])
        .arg(&script)
        .args(extra));
    if !ok {
        eprintln!("udhcpc in {ns}: {log}");
        return None;
    }
    let env = std::fs::read_to_string(&out).ok()?;
    Some(
        env.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

/// GET `url` from `ns` with curl (5 s at most); the body, or None.
fn curl(ns: &str, url: &str) -> Option<Vec<u8>> {
    let out = in_ns(ns, tool("curl", "curl"))
        .args(["-sf", "--max-time", "5", url])
        .output()
        .unwrap();
    out.status.success().then_some(out.stdout)
}

/// TFTP read of `file` from `server` in `ns` (busybox tftp, 6 s at most).
fn tftp(ns: &str, server: &str, file: &str, dir: &Path) -> Option<Vec<u8>> {
    let local = dir.join(format!("tftp-{ns}"));
    let _ = std::fs::remove_file(&local);
    let (ok, log) = run(Command::new("timeout")
        .arg("6")
        .arg(tool("ip", "iproute2"))
        .args(["netns", "exec", ns])
        .arg(tool("busybox", "busybox-static"))
        .args(["tftp", "-g", "-r", file, "-l"])
        .arg(&local)
        .arg(server));
    if !ok {
        eprintln!("tftp {file} from {server} in {ns}: {log}");
        return None;
    }
    std::fs::read(&local).ok()
}

fn ping(ns: &str, to: &str) -> bool {
    run(busybox(ns, "ping").args(["-c", "2", "-W", "1", to])).0
}

/// The `ironic-agent` of node A, in its namespace, killed when dropped.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Agent {
    /// Starts the agent as the deploy ramdisk would: the node's MAC, its disk, the
    /// API URL of its kernel command line, its command API on the node's address.
    fn start(ns: &str, api_url: &str, addr: &str, disk: &Path, dir: &Path, n: u32) -> Agent {
        let bin = machine::ensure_agent_binary().expect("the ironic-agent binary");
        let state = dir.join(format!("agent-state-{n}"));
        std::fs::create_dir_all(&state).unwrap();
        let log = std::fs::File::create(dir.join(format!("agent-{n}.log"))).unwrap();
        let child = in_ns(ns, bin)
            .args(["--api-url", api_url, "--root-device"])
            .arg(disk)
            .args(["--listen", &format!("{addr}:0"), "--advertise-host", addr])
            .args([
                "--power-off",
                "exit",
                "--cmdline",
                "/dev/null",
                "--state-dir",
            ])
            .arg(&state)
            .args(["--mac", MACS[0]])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start ironic-agent");
        Agent(child)
    }

    /// Whether the agent has exited (the ramdisk powered the node off).
    fn exited(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(Some(_)))
    }
}

async fn wait_state(c: &Conductor, id: &Ident, want: ProvisionState, dir: &Path) {
    if let Err(e) = enroll::wait_for(c, id, want, Duration::from_secs(240)).await {
        let logs: String = (0..2)
            .filter_map(|n| std::fs::read_to_string(dir.join(format!("agent-{n}.log"))).ok())
            .collect();
        panic!("{id:?} did not reach {want}: {e}\nagent logs:\n{logs}");
    }
}

#[test]
fn a_deployed_node_leaves_the_provisioning_network_for_its_tenants_only() {
    let started = std::time::Instant::now();
    let mut net = Net::new();
    let svc = net.namespace("svc");
    // the service: provisioning VLAN on `prov`, cleaning VLAN on `clean`
    net.wire("sp", &svc, "prov", None, PROV_VLAN);
    net.wire("sc", &svc, "clean", None, CLEAN_VLAN);
    ip(&[
        "-n",
        &svc,
        "addr",
        "add",
        &format!("{SVC_PROV}/24"),
        "dev",
        "prov",
    ]);
    ip(&[
        "-n",
        &svc,
        "addr",
        "add",
        &format!("{SVC_CLEAN}/24"),
        "dev",
        "clean",
    ]);
    // the nodes: eth0 with the NIC's MAC, on a parked port
    let mut ports = Vec::new();
    let mut nss = Vec::new();
    for (i, n) in ["a", "b", "c"].iter().enumerate() {
        let ns = net.namespace(n);
        ports.push(net.wire(&format!("n{n}"), &ns, "eth0", Some(MACS[i]), PARKED));
        nss.push(ns);
    }
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_owned();
    let bridge = net.bridge.clone();
    let svc_ns = svc.clone();
    let result = std::thread::spawn(move || {
        use std::os::fd::AsFd;
        let f = std::fs::File::open(format!("/run/netns/{svc_ns}")).unwrap();
        nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("setns into the service's namespace (the test runs as root)");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(scenario(dir_path, bridge, ports, nss));
    })
    .join();
    drop(net);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    eprintln!("data-plane isolation test done in {:?}", started.elapsed());
}

async fn scenario(dir: PathBuf, bridge: String, ports: Vec<String>, nss: Vec<String>) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            std::env::var("RUST_LOG")
                .unwrap_or_else(|_| "warn,ironic_core=info,ironic_deploy_agent=info".into()),
        )
        .with_test_writer()
        .try_init();
    let root = dir.join("boot");
    let files = images::generate(&root).unwrap();
    for nbp in ["undionly.kpxe", "snponly.efi"] {
        assert!(
            Path::new("/usr/lib/ipxe").join(nbp).is_file(),
            "/usr/lib/ipxe/{nbp} is missing: apt-get install -y ipxe"
        );
    }
    // What an operator writes for `ironic serve` on this rack.
    let toml = format!(
        r#"
[api]
listen = "0.0.0.0:0"
ramdisk_heartbeat_timeout = 10
[storage]
backend = "memory"
[conductor]
automated_clean = true
[fake]
enabled = true
[boot]
address = "{SVC_PROV}"
root = "{root}"
[boot.tftp]
enabled = true
listen = "{SVC_PROV}:69"
[boot.dhcp]
mode = "server"
interface = "prov"
pool_start = "10.61.0.100"
pool_end = "10.61.0.120"
[switch_network]
provisioning_network = "provisioning"
cleaning_network = "cleaning"
[networks.provisioning]
vlan = {PROV_VLAN}
[networks.cleaning]
vlan = {CLEAN_VLAN}
[networks.tenant-a]
vlan = {TENANT_A_VLAN}
[networks.tenant-b]
vlan = {TENANT_B_VLAN}
[switches.tor]
driver = "ovs"
address = "unix:/var/run/openvswitch/db.sock"
options = {{ bridge = "{bridge}" }}
"#,
        root = root.display()
    );
    let cfg_path = dir.join("ironic.toml");
    std::fs::write(&cfg_path, toml).unwrap();
    let cfg = Config::load(Some(&cfg_path), std::iter::empty()).expect("the configuration");
    let s = service::start(&cfg).await.expect("the service");
    let c = s.conductor.clone();
    let port = s.api.addr().port();
    let api = format!("http://{SVC_PROV}:{port}");

    // --- enroll: A is deployed by the agent over iPXE, B and C by the fake deploy
    let mut ids = Vec::new();
    for (i, name) in NODES.iter().enumerate() {
        let mut node = Node::new("fake-hardware");
        node.name = Some((*name).into());
        node.interfaces.network_interface = "switch".into();
        if i == 0 {
            node.interfaces.boot_interface = "ipxe".into();
            node.interfaces.deploy_interface = "direct".into();
            node.driver_info = serde_json::from_value(json!({
                "deploy_kernel": format!("{api}/boot/{}", images::DEPLOY_KERNEL),
                "deploy_ramdisk": format!("{api}/boot/{}", images::DEPLOY_RAMDISK),
            }))
            .unwrap();
            node.properties = serde_json::from_value(json!({
                "capabilities": "boot_mode:bios", "cpu_arch": "x86_64"
            }))
            .unwrap();
            // no cleaning at provide (the agent is not up yet); cleaned after undeploy
            node.automated_clean = Some(false);
        } else {
            node.interfaces.boot_interface = "fake".into();
            node.interfaces.deploy_interface = "fake".into();
        }
        let node = c.create_node(node).await.expect("create node");
        let mut p = Port::new(node.uuid, MACS[i].parse().unwrap());
        p.pxe_enabled = true;
        p.local_link_connection = serde_json::from_value(json!({
            "switch_info": "tor", "port_id": ports[i]
        }))
        .unwrap();
        c.create_port(p).await.expect("create port");
        let id = Ident::Name((*name).into());
        for (verb, want) in [
            ("manage", ProvisionState::Manageable),
            ("provide", ProvisionState::Available),
        ] {
            c.provision(&id, ProvisionRequest::new(verb)).await.unwrap();
            wait_state(&c, &id, want, &dir).await;
        }
        assert_eq!(tag(&ports[i]), Some(PARKED), "{name} available: parked");
        ids.push(id);
    }
    // an available (parked) node gets nothing from the boot servers
    assert!(
        udhcpc(&nss[0], &dir, &[]).is_none(),
        "a parked port must not get a DHCP lease"
    );

    // --- B on tenant-a, C on tenant-b
    for (i, net) in [(1, "tenant-a"), (2, "tenant-b")] {
        c.vif_attach(&ids[i], VifInfo::new(net)).await.unwrap();
        c.provision(&ids[i], ProvisionRequest::new("active"))
            .await
            .unwrap();
        wait_state(&c, &ids[i], ProvisionState::Active, &dir).await;
        ip(&[
            "-n",
            &nss[i],
            "addr",
            "add",
            &format!("{}/24", TENANT_IP[i]),
            "dev",
            "eth0",
        ]);
    }
    assert_eq!(tag(&ports[1]), Some(TENANT_A_VLAN));
    assert_eq!(tag(&ports[2]), Some(TENANT_B_VLAN));
    assert!(
        !ping(&nss[1], TENANT_IP[2]),
        "tenant-a's B must not reach tenant-b's C"
    );

    // --- deploy A onto tenant-a
    c.vif_attach(&ids[0], VifInfo::new("tenant-a"))
        .await
        .unwrap();
    let disk = dir.join("node-a.disk");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let mut node = c.get_node(&ids[0]).await.unwrap();
    node.instance_info = serde_json::from_value(json!({
        "image_source": format!("{api}/boot/{}", images::TEST_IMAGE),
        "image_checksum": files.image_sha256,
        "image_disk_format": "raw",
    }))
    .unwrap();
    c.update_node(node, false).await.unwrap();
    c.provision(&ids[0], ProvisionRequest::new("active"))
        .await
        .unwrap();
    wait_state(&c, &ids[0], ProvisionState::DeployWait, &dir).await;
    assert_eq!(
        tag(&ports[0]),
        Some(PROV_VLAN),
        "deploying: provisioning VLAN"
    );
    let a = &nss[0];
    // the PXE ROM: an address, the next server and the NBP
    let lease = udhcpc(
        a,
        &dir,
        &["-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000"],
    )
    .expect("a lease from the service's DHCP server while deploying");
    assert_eq!(
        lease.get("serverid").map(String::as_str),
        Some(SVC_PROV),
        "{lease:?}"
    );
    assert_eq!(
        lease.get("siaddr").map(String::as_str),
        Some(SVC_PROV),
        "{lease:?}"
    );
    let nbp = lease.get("bootfile").cloned().expect("a boot file");
    let addr = lease["ip"].clone();
    assert!(addr.starts_with("10.61.0.1"), "{lease:?}");
    ip(&["-n", a, "addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
    let got = tftp(a, SVC_PROV, &nbp, &dir).expect("the NBP over TFTP");
    assert_eq!(
        got,
        std::fs::read(Path::new("/usr/lib/ipxe").join(&nbp)).unwrap(),
        "{nbp}"
    );
    // iPXE: its script over HTTP, then the node's, then the kernel and ramdisk
    let lease =
        udhcpc(a, &dir, &["-x", "0x4d:69505845", "-x", "0x5d:0000"]).expect("a lease for iPXE");
    let script_url = lease.get("bootfile").cloned().expect("the iPXE script URL");
    let script = String::from_utf8(curl(a, &script_url).expect("the iPXE script")).unwrap();
    // the node's own script, or the generic one chaining it by MAC
    let node_script = match script
        .lines()
        .find_map(|l| l.strip_prefix("chain "))
        .and_then(|l| l.split_whitespace().next())
    {
        None => script,
        Some(chain) => {
            let path = chain.replace("${mac:hexhyp}", &MACS[0].replace(':', "-"));
            let url = if path.contains("://") {
                path
            } else {
                format!(
                    "{}{path}",
                    &script_url[..script_url.rfind('/').unwrap() + 1]
                )
            };
            String::from_utf8(curl(a, &url).expect("the node's iPXE script")).unwrap()
        }
    };
    let kernel_line = node_script
        .lines()
        .find_map(|l| l.strip_prefix("kernel "))
        .unwrap_or_else(|| panic!("no kernel in {node_script}"));
    let kernel_url = kernel_line.split_whitespace().next().unwrap();
    assert_eq!(
        curl(a, kernel_url).expect("the deploy kernel over HTTP"),
        std::fs::read(root.join(images::DEPLOY_KERNEL)).unwrap()
    );
    let api_url = kernel_line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ipa-api-url="))
        .unwrap_or_else(|| panic!("no ipa-api-url in {kernel_line}"))
        .to_owned();
    // the ramdisk: the agent looks itself up, heartbeats, writes the image
    let mut agent = Agent::start(a, &api_url, &addr, &disk, &dir, 0);
    wait_state(&c, &ids[0], ProvisionState::Active, &dir).await;
    assert!(
        images::disk_has_test_image(&disk),
        "the image is on A's disk"
    );
    assert!(machine::disk_is_bootable(&disk).unwrap());
    for _ in 0..50 {
        if agent.exited() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        agent.exited(),
        "the agent powered the node off after the deploy"
    );
    drop(agent);

    // --- active: tenant-a only, even with the ramdisk's address still configured
    assert_eq!(tag(&ports[0]), Some(TENANT_A_VLAN), "active: tenant-a");
    ip(&[
        "-n",
        a,
        "addr",
        "add",
        &format!("{}/24", TENANT_IP[0]),
        "dev",
        "eth0",
    ]);
    assert!(
        curl(a, &format!("{api}/")).is_none(),
        "active A must not reach the API"
    );
    assert!(
        tftp(a, SVC_PROV, &nbp, &dir).is_none(),
        "active A must not reach TFTP"
    );
    assert!(
        udhcpc(a, &dir, &[]).is_none(),
        "active A must not get a DHCP lease"
    );
    assert!(!ping(a, SVC_PROV), "active A must not reach the service");
    assert!(ping(a, TENANT_IP[1]), "A must reach B on tenant-a");
    assert!(!ping(a, TENANT_IP[2]), "A must not reach C on tenant-b");

    // --- undeploy: A is cleaned on the cleaning network
    let mut node = c.get_node(&ids[0]).await.unwrap();
    node.automated_clean = Some(true);
    c.update_node(node, false).await.unwrap();
    c.provision(&ids[0], ProvisionRequest::new("deleted"))
        .await
        .unwrap();
    wait_state(&c, &ids[0], ProvisionState::CleanWait, &dir).await;
    assert_eq!(tag(&ports[0]), Some(CLEAN_VLAN), "cleaning: cleaning VLAN");
    ip(&["-n", a, "addr", "flush", "dev", "eth0"]);
    // the cleaning network's addressing (its own DHCP in a real rack), the tenant
    // address kept to show tenant-a is out of reach
    let clean_addr = "10.62.0.50";
    ip(&[
        "-n",
        a,
        "addr",
        "add",
        &format!("{clean_addr}/24"),
        "dev",
        "eth0",
    ]);
    ip(&[
        "-n",
        a,
        "addr",
        "add",
        &format!("{}/24", TENANT_IP[0]),
        "dev",
        "eth0",
    ]);
    ip(&["-n", a, "route", "add", "default", "via", SVC_CLEAN]);
    assert!(
        curl(a, &format!("http://{SVC_CLEAN}:{port}/")).is_some(),
        "cleaning A must reach the API on the cleaning network"
    );
    assert!(!ping(a, TENANT_IP[1]), "cleaning A must not reach tenant-a");
    let agent = Agent::start(a, &api_url, clean_addr, &disk, &dir, 1);
    wait_state(&c, &ids[0], ProvisionState::Available, &dir).await;
    assert_eq!(tag(&ports[0]), Some(PARKED), "available again: parked");
    assert!(
        !machine::disk_is_bootable(&disk).unwrap(),
        "cleaning erased the partition table of A's disk"
    );
    // As Ironic, the conductor ends cleaning with a power off through the power
    // interface (not the agent): on real hardware that stops the ramdisk.
    assert_eq!(
        c.get_node(&ids[0]).await.unwrap().power_state,
        Some(PowerState::Off)
    );
    drop(agent);
    assert!(
        curl(a, &format!("http://{SVC_CLEAN}:{port}/")).is_none(),
        "parked A must reach nothing"
    );
    s.api.shutdown().await;
    c.shutdown().await;
}
