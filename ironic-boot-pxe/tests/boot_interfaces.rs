//! The boot interfaces and the DHCP network interface: what they publish is
//! fetched back with real clients (curl over HTTP and TFTP).

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;

use common::driver::{RecordingManagement, driver};
use common::{run, tool};
use ironic_boot_pxe::{
    BootFiles, DhcpMode, DhcpNetwork, HttpBoot, HttpBootServer, IpxeBoot, ProvisioningDhcp,
    PxeBoot, PxeConfig, Reservations, TftpOptions, TftpServer, router,
};
use ironic_core::driver::{
    BaseInterface, BootDevice, BootInterface, NetworkInterface, NetworkPhase, RamdiskKind,
    RamdiskParams, Task,
};
use ironic_core::{ErrorKind, MacAddress, Node, Port};

const MAC: &str = "52:54:00:12:34:56";

struct Env {
    dir: tempfile::TempDir,
    files: Arc<BootFiles>,
    res: Arc<Reservations>,
    http: HttpBootServer,
    tftp: TftpServer,
    cfg: Arc<PxeConfig>,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("images")).unwrap();
    std::fs::write(root.join("images/ipa.initramfs"), b"initramfs bytes").unwrap();
    std::fs::write(dir.path().join("ipa.kernel"), b"kernel bytes").unwrap();
    let files = BootFiles::new(Some(&root)).unwrap();
    let http = HttpBootServer::bind("127.0.0.1:0".parse().unwrap(), router(files.clone()))
        .await
        .unwrap();
    let tftp = TftpServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        files.clone(),
        TftpOptions::default(),
    )
    .unwrap();
    let res = Arc::new(Reservations::default());
    let mut cfg = PxeConfig::new(files.clone(), Ipv4Addr::LOCALHOST, http.url());
    cfg.console = Some("ttyS0,115200n8".into());
    cfg.dhcp = Some(ProvisioningDhcp {
        reservations: res.clone(),
        mode: DhcpMode::Server,
        pool: (Ipv4Addr::new(10, 99, 0, 10), Ipv4Addr::new(10, 99, 0, 11)),
    });
    Env {
        files,
        res,
        http,
        tftp,
        cfg: Arc::new(cfg),
        dir,
    }
}

impl Env {
    fn node(&self) -> Node {
        let mut n = Node::new("ipmi");
        n.name = Some("node-1".into());
        n.driver_info.insert(
            "deploy_kernel",
            self.dir.path().join("ipa.kernel").display().to_string(),
        );
        n.driver_info
            .insert("deploy_ramdisk", "images/ipa.initramfs");
        n
    }

    fn task(
        &self,
        node: Node,
        boot: Arc<dyn BootInterface>,
    ) -> (Task, Arc<RecordingManagement>, Arc<DhcpNetwork>) {
        let net = Arc::new(DhcpNetwork::new(self.cfg.dhcp.clone().unwrap()));
        let (drv, mgmt) = driver(boot, net.clone());
        let port = Port::new(node.uuid, MAC.parse().unwrap());
        let mut task = Task::with_ports(node, vec![port]).with_driver(drv);
        task.env.api_url = Some("http://10.99.0.1:6385".into());
        (task, mgmt, net)
    }
}

fn params() -> RamdiskParams {
    let mut kernel_params = BTreeMap::new();
    kernel_params.insert("ipa-debug".to_owned(), "1".to_owned());
    kernel_params.insert("ipa-agent-token".to_owned(), "do-not-leak".to_owned());
    {
        let mut p = RamdiskParams::new(RamdiskKind::Deploy);
        p.kernel_params = kernel_params;
        p
    }
}

fn curl(url: &str) -> (bool, String) {
    run(Command::new(tool("curl", "curl"))
        .args(["-sS", "--fail"])
        .arg(url))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipxe_prepare_ramdisk_publishes_script_images_and_dhcp_options() {
    let env = env().await;
    let boot = Arc::new(IpxeBoot::new(env.cfg.clone()));
    let (mut task, mgmt, net) = env.task(env.node(), boot.clone());
    boot.validate(&task).unwrap();
    net.add_network(&mut task, NetworkPhase::Provisioning)
        .await
        .unwrap();
    boot.prepare_ramdisk(&mut task, &params()).await.unwrap();
    // idempotent
    boot.prepare_ramdisk(&mut task, &params()).await.unwrap();

    let mac: MacAddress = MAC.parse().unwrap();
    let url = format!("{}/pxelinux.cfg/52-54-00-12-34-56", env.http.url());
    let (ok, script) = tokio::task::block_in_place(|| curl(&url));
    assert!(ok, "{script}");
    let node = task.node.uuid.to_string();
    let kernel_url = format!("{}/{node}/deploy_kernel", env.http.url());
    let ramdisk_url = format!("{}/{node}/deploy_ramdisk", env.http.url());
    assert!(script.starts_with("#!ipxe\n"), "{script}");
    assert!(
        script.contains(&format!("kernel {kernel_url} initrd=ramdisk ")),
        "{script}"
    );
    assert!(
        script.contains(&format!("initrd --name ramdisk {ramdisk_url}")),
        "{script}"
    );
    for want in [
        "ipa-api-url=http://10.99.0.1:6385",
        "BOOTIF=01-52-54-00-12-34-56",
        "console=ttyS0,115200n8",
        "ipa-debug=1",
        "nofb vga=normal",
    ] {
        assert!(script.contains(want), "{want} missing: {script}");
    }
    assert!(!script.contains("do-not-leak"), "token leaked: {script}");
    // The images, through the per-node links, intact.
    assert_eq!(
        tokio::task::block_in_place(|| curl(&kernel_url)).1,
        "kernel bytes"
    );
    assert_eq!(
        tokio::task::block_in_place(|| curl(&ramdisk_url)).1,
        "initramfs bytes"
    );

    // DHCP: an address from the pool and the boot options.
    let r = env.res.get(&mac).unwrap();
    assert_eq!(r.ip, Some(Ipv4Addr::new(10, 99, 0, 10)));
    assert_eq!(r.hostname.as_deref(), Some("node-1"));
    let b = r.boot.unwrap();
    assert_eq!(b.bios_file, "undionly.kpxe");
    assert_eq!(b.uefi_file, "snponly.efi");
    assert_eq!(b.ipxe_script.as_deref(), Some(url.as_str()));
    assert_eq!(
        mgmt.calls.lock().unwrap().last().copied(),
        Some((BootDevice::Pxe, false))
    );

    // Local boot: files and boot options go, the boot device becomes the disk.
    boot.prepare_instance(&mut task).await.unwrap();
    assert!(!tokio::task::block_in_place(|| curl(&url)).0);
    assert!(!tokio::task::block_in_place(|| curl(&kernel_url)).0);
    assert!(env.res.get(&mac).unwrap().boot.is_none());
    assert_eq!(
        mgmt.calls.lock().unwrap().last().copied(),
        Some((BootDevice::Disk, true))
    );
    boot.clean_up_instance(&mut task).await.unwrap();
    boot.clean_up_ramdisk(&mut task).await.unwrap();

    // Done with the network: the MAC is unknown to DHCP again.
    net.remove_network(&mut task, NetworkPhase::Provisioning)
        .await
        .unwrap();
    assert!(env.res.get(&mac).is_none());
    assert!(
        env.files
            .generated_paths()
            .iter()
            .all(|p| p == "boot.ipxe" || !p.contains(&node))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pxe_serves_everything_over_tftp() {
    let env = env().await;
    let boot = Arc::new(PxeBoot::new(env.cfg.clone()));
    let (mut task, _mgmt, _net) = env.task(env.node(), boot.clone());
    boot.prepare_ramdisk(&mut task, &params()).await.unwrap();
    let tftp = env.tftp.local_addr();
    let (ok, script) = tokio::task::block_in_place(|| {
        curl(&format!("tftp://{tftp}/pxelinux.cfg/52-54-00-12-34-56"))
    });
    assert!(ok, "{script}");
    let node = task.node.uuid.to_string();
    assert!(
        script.contains(&format!("kernel tftp://127.0.0.1/{node}/deploy_kernel")),
        "{script}"
    );
    let (ok, kernel) =
        tokio::task::block_in_place(|| curl(&format!("tftp://{tftp}/{node}/deploy_kernel")));
    assert!(ok);
    assert_eq!(kernel, "kernel bytes");
    // The DHCP script URL is a TFTP one too.
    let r = env.res.get(&MAC.parse().unwrap()).unwrap();
    assert!(
        r.boot
            .unwrap()
            .ipxe_script
            .unwrap()
            .starts_with("tftp://127.0.0.1/pxelinux.cfg/")
    );

    // An http URL cannot be loaded over TFTP.
    let mut n = env.node();
    n.driver_info
        .insert("deploy_kernel", "http://images.example/ipa.kernel");
    let (t, _, _) = env.task(n, boot.clone());
    let e = boot.validate(&t).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_boot_sets_uefi_http_and_refuses_bios_nodes() {
    let env = env().await;
    let boot = Arc::new(HttpBoot::new(env.cfg.clone()));
    let (mut task, mgmt, _net) = env.task(env.node(), boot.clone());
    boot.prepare_ramdisk(&mut task, &params()).await.unwrap();
    assert_eq!(
        mgmt.calls.lock().unwrap().last().copied(),
        Some((BootDevice::UefiHttp, false))
    );
    let b = env.res.get(&MAC.parse().unwrap()).unwrap().boot.unwrap();
    assert_eq!(
        b.http_boot_url.as_deref(),
        Some(format!("{}/snponly.efi", env.http.url()).as_str())
    );
    let mut n = env.node();
    n.boot_mode = Some("bios".into());
    let (t, _, _) = env.task(n, boot.clone());
    assert_eq!(
        boot.validate(&t).unwrap_err().kind(),
        ErrorKind::InvalidParameter
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramdisk_deploy_netboots_the_instance() {
    let env = env().await;
    let boot = Arc::new(IpxeBoot::new(env.cfg.clone()));
    let mut n = env.node();
    n.interfaces.deploy_interface = "ramdisk".into();
    n.instance_info
        .insert("kernel".into(), "http://images.example/vmlinuz".into());
    n.instance_info
        .insert("ramdisk".into(), "images/ipa.initramfs".into());
    let (mut task, mgmt, _net) = env.task(n, boot.clone());
    boot.validate(&task).unwrap();
    boot.prepare_instance(&mut task).await.unwrap();
    let script = env
        .files
        .generated("pxelinux.cfg/52-54-00-12-34-56")
        .unwrap();
    let script = String::from_utf8_lossy(&script);
    assert!(
        script.contains("kernel http://images.example/vmlinuz"),
        "{script}"
    );
    assert!(script.contains("instance_ramdisk"), "{script}");
    assert_eq!(
        mgmt.calls.lock().unwrap().last().copied(),
        Some((BootDevice::Pxe, true))
    );
    boot.clean_up_instance(&mut task).await.unwrap();
    assert!(
        env.files
            .generated("pxelinux.cfg/52-54-00-12-34-56")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_names_the_bad_key() {
    let env = env().await;
    let boot: Arc<dyn BootInterface> = Arc::new(IpxeBoot::new(env.cfg.clone()));
    let cases: Vec<(&str, Option<&str>, ErrorKind)> = vec![
        ("deploy_kernel", None, ErrorKind::MissingParameter),
        (
            "deploy_kernel",
            Some("/nonexistent/kernel"),
            ErrorKind::InvalidParameter,
        ),
        (
            "deploy_ramdisk",
            Some("../ipa.kernel"),
            ErrorKind::InvalidParameter,
        ),
        (
            "deploy_ramdisk",
            Some("images"),
            ErrorKind::InvalidParameter,
        ),
        (
            "deploy_ramdisk",
            Some("glance://1234"),
            ErrorKind::InvalidParameter,
        ),
        (
            "deploy_ramdisk",
            Some("http:///nohost"),
            ErrorKind::InvalidParameter,
        ),
    ];
    for (key, value, kind) in cases {
        let mut n = env.node();
        match value {
            Some(v) => n.driver_info.insert(key, v),
            None => {
                n.driver_info.0.remove(key);
            }
        }
        let (t, _, _) = env.task(n, boot.clone());
        let e = boot.validate(&t).unwrap_err();
        assert_eq!(e.kind(), kind, "{key}={value:?}: {e}");
        assert!(e.message().contains(key), "{key}: {e}");
    }
    // No port to boot from.
    let (mut t, _, _) = env.task(env.node(), boot.clone());
    t.ports.clear();
    let e = boot.prepare_ramdisk(&mut t, &params()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MissingParameter);
    // No resolved driver: a clear error, not a panic.
    let mut bare = Task::with_ports(env.node(), env.task(env.node(), boot.clone()).0.ports);
    let e = boot
        .prepare_ramdisk(&mut bare, &params())
        .await
        .unwrap_err();
    assert!(e.message().contains("no resolved driver"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dhcp_network_pool_is_exclusive_and_bounded() {
    let env = env().await;
    let boot = Arc::new(IpxeBoot::new(env.cfg.clone()));
    let net = DhcpNetwork::new(env.cfg.dhcp.clone().unwrap());
    let mut tasks = Vec::new();
    for i in 0..3u8 {
        let n = env.node();
        let port = Port::new(n.uuid, MacAddress([0x52, 0x54, 0, 0, 0, i]));
        let (d, _) = driver(
            boot.clone(),
            Arc::new(DhcpNetwork::new(env.cfg.dhcp.clone().unwrap())),
        );
        tasks.push(Task::with_ports(n, vec![port]).with_driver(d));
    }
    net.add_network(&mut tasks[0], NetworkPhase::Cleaning)
        .await
        .unwrap();
    net.add_network(&mut tasks[1], NetworkPhase::Cleaning)
        .await
        .unwrap();
    // Again: keeps its address.
    net.add_network(&mut tasks[0], NetworkPhase::Provisioning)
        .await
        .unwrap();
    let ips: Vec<_> = env.res.list().iter().map(|r| r.ip.unwrap()).collect();
    assert_eq!(
        ips,
        vec![Ipv4Addr::new(10, 99, 0, 10), Ipv4Addr::new(10, 99, 0, 11)]
    );
    let e = net
        .add_network(&mut tasks[2], NetworkPhase::Cleaning)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    net.remove_network(&mut tasks[0], NetworkPhase::Cleaning)
        .await
        .unwrap();
    net.add_network(&mut tasks[2], NetworkPhase::Cleaning)
        .await
        .unwrap();
    assert_eq!(
        env.res
            .get(&MacAddress([0x52, 0x54, 0, 0, 0, 2]))
            .unwrap()
            .ip,
        Some(Ipv4Addr::new(10, 99, 0, 10))
    );
}
