//! End to end: a real QEMU machine (TCG) network-boots from this crate's
//! servers alone, in a network namespace: DHCP → (UEFI: TFTP NBP → iPXE) →
//! iPXE script over HTTP → kernel + initramfs over HTTP → the initramfs gets an
//! address by DHCP and reports its kernel command line back over HTTP.
//!
//! BIOS: QEMU's NIC option ROM is iPXE already, so it asks DHCP as iPXE and
//! gets the script URL directly. UEFI (OVMF): the firmware's own PXE client asks
//! as `PXEClient:Arch:00007`, loads `snponly.efi` over TFTP, which asks again as
//! iPXE. The kernel is Debian's, fetched by `tests/qemu/fetch-kernel.sh` into
//! `target/pxe-test-kernel` (cached).

mod common;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use common::driver::driver;
use common::netns::{Lab, SERVER_IP};
use common::{ChildGuard, tool};
use ironic_boot_pxe::{
    BootFiles, DhcpBind, DhcpConfig, DhcpMode, DhcpNetwork, DhcpServer, HttpBootServer, IpxeBoot,
    ProvisioningDhcp, PxeBoot, PxeConfig, Reservations, TftpOptions, TftpServer, router,
};
use ironic_core::driver::{
    BootInterface, NetworkInterface, NetworkPhase, RamdiskKind, RamdiskParams, Task,
};
use ironic_core::{Node, Port};
use tokio::sync::mpsc;

const HTTP_PORT: u16 = 8080;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Debian's kernel and its modules (downloaded once with apt-get download).
fn kernel() -> PathBuf {
    let cache = target_dir().join("pxe-test-kernel");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/qemu/fetch-kernel.sh");
    let out = Command::new("sh")
        .arg(&script)
        .arg(&cache)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fetching the Debian kernel failed ({}): {}{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    cache
}

const INIT: &str = r#"#!/bin/sh
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin /tmp
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for pass in 1 2; do
  for m in failover net_failover virtio virtio_ring virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_net; do
    insmod /modules/$m.ko 2>/dev/null
  done
done
api=$(sed -n 's/.*ipa-api-url=\([^ ]*\).*/\1/p' /proc/cmdline)
ip link set lo up
ip link set eth0 up
udhcpc -i eth0 -n -q -t 10 -T 2 -s /udhcpc.sh
addr=$(ip -4 -o addr show dev eth0 | awk '{print $4}')
echo "test ramdisk: api=$api addr=$addr"
wget -q -O - --post-data "addr=$addr cmdline=$(cat /proc/cmdline)" "$api/report"
echo "test ramdisk: reported"
poweroff -f
"#;

const UDHCPC: &str = "#!/bin/sh\n\
case \"$1\" in bound|renew) ip addr add \"$ip/${mask:-24}\" dev \"$interface\" ;; esac\n\
exit 0\n";

/// A busybox initramfs with the virtio modules and the reporting /init.
fn initramfs(kernel: &Path, dir: &Path) -> PathBuf {
    let busybox = tool("busybox", "busybox-static");
    let tree = dir.join("initramfs");
    for d in ["bin", "modules"] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
    }
    std::fs::copy(&busybox, tree.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", tree.join("bin/sh")).unwrap();
    let mods = kernel.join("modules/kernel");
    for rel in [
        "net/core/failover.ko",
        "drivers/net/net_failover.ko",
        "drivers/net/virtio_net.ko",
        "drivers/virtio/virtio.ko",
        "drivers/virtio/virtio_ring.ko",
        "drivers/virtio/virtio_pci.ko",
        "drivers/virtio/virtio_pci_legacy_dev.ko",
        "drivers/virtio/virtio_pci_modern_dev.ko",
    ] {
        let src = mods.join(rel);
        if src.exists() {
            std::fs::copy(&src, tree.join("modules").join(src.file_name().unwrap())).unwrap();
        }
    }
    for (name, body) in [("init", INIT), ("udhcpc.sh", UDHCPC)] {
        std::fs::write(tree.join(name), body).unwrap();
        std::fs::set_permissions(
            tree.join(name),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }
    tool("cpio", "cpio");
    let out = dir.join("initramfs.gz");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {} && find . | cpio -o -H newc --quiet | gzip -1 > {}",
            tree.display(),
            out.display()
        ))
        .status()
        .unwrap();
    assert!(st.success(), "building the initramfs failed");
    out
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Firmware {
    Bios,
    Uefi,
}

async fn report(State(tx): State<mpsc::UnboundedSender<String>>, body: String) -> &'static str {
    let _ = tx.send(body);
    "ok\n"
}

async fn boot(fw: Firmware, over_tftp: bool, kernel: &Path, initrd: &Path, mac: &str) {
    let qemu = tool("qemu-system-x86_64", "qemu-system-x86");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    for nbp in ["undionly.kpxe", "snponly.efi"] {
        let src = Path::new("/usr/lib/ipxe").join(nbp);
        assert!(
            src.exists(),
            "{} is missing: apt-get install -y ipxe",
            src.display()
        );
        std::fs::copy(&src, root.join(nbp)).unwrap();
    }
    let mut lab = Lab::new();
    let tap = lab.tap();

    // The servers, inside the lab namespace.
    let files = BootFiles::new(Some(&root)).unwrap();
    let res = Arc::new(Reservations::default());
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let app: Router =
        router(files.clone()).merge(Router::new().route("/report", post(report)).with_state(tx));
    let h = tokio::runtime::Handle::current();
    let (f2, r2) = (files.clone(), res.clone());
    let (_http, tftp, _dhcp) = lab.srv.enter(move || {
        let _g = h.enter();
        let l = std::net::TcpListener::bind(SocketAddr::from((SERVER_IP, HTTP_PORT))).unwrap();
        let http = HttpBootServer::from_std(l, app).unwrap();
        let tftp = TftpServer::bind(
            SocketAddr::from((SERVER_IP, 69)),
            f2,
            TftpOptions::default(),
        )
        .unwrap();
        let dhcp = DhcpServer::bind(
            DhcpConfig::server(SERVER_IP),
            DhcpBind::interface("br0"),
            r2,
        )
        .unwrap();
        (http, tftp, dhcp)
    });

    // The node, driven through the network and boot interfaces.
    let mut cfg = PxeConfig::new(
        files.clone(),
        SERVER_IP,
        format!("http://{SERVER_IP}:{HTTP_PORT}"),
    );
    cfg.console = Some("ttyS0".into());
    // TCG on a loaded host is too slow for the kernel's IO-APIC timer check
    // ("IO-APIC + timer doesn't work!" panic); real hardware never needs this.
    cfg.kernel_append_params.push_str(" no_timer_check");
    cfg.dhcp = Some(ProvisioningDhcp {
        reservations: res.clone(),
        mode: DhcpMode::Server,
        pool: (Ipv4Addr::new(10, 99, 0, 10), Ipv4Addr::new(10, 99, 0, 20)),
    });
    let cfg = Arc::new(cfg);
    let boot: Arc<dyn BootInterface> = if over_tftp {
        Arc::new(PxeBoot::new(cfg.clone()))
    } else {
        Arc::new(IpxeBoot::new(cfg.clone()))
    };
    let net = Arc::new(DhcpNetwork::new(cfg.dhcp.clone().unwrap()));
    let mut node = Node::new("manual-management");
    node.driver_info.insert(
        "deploy_kernel",
        kernel.join("vmlinuz").display().to_string(),
    );
    node.driver_info
        .insert("deploy_ramdisk", initrd.display().to_string());
    let port = Port::new(node.uuid, mac.parse().unwrap());
    let (drv, _mgmt) = driver(boot.clone(), net.clone());
    let mut task = Task::with_ports(node, vec![port]).with_driver(drv);
    let mut params = BTreeMap::new();
    params.insert(
        "ipa-api-url".to_owned(),
        format!("http://{SERVER_IP}:{HTTP_PORT}"),
    );
    boot.validate(&task).unwrap();
    net.add_network(&mut task, NetworkPhase::Provisioning)
        .await
        .unwrap();
    boot.prepare_ramdisk(&mut task, &{
        let mut p = RamdiskParams::new(RamdiskKind::Deploy);
        p.kernel_params = params;
        p
    })
    .await
    .unwrap();

    // The machine.
    let serial = dir.path().join("serial.log");
    let mut cmd = lab.srv.command(&qemu);
    cmd.args([
        "-accel",
        "tcg",
        "-m",
        "512",
        "-smp",
        "1",
        "-display",
        "none",
        "-monitor",
        "none",
        "-no-reboot",
    ])
    .arg("-serial")
    .arg(format!("file:{}", serial.display()))
    .args([
        "-netdev",
        &format!("tap,id=n0,ifname={tap},script=no,downscript=no"),
    ])
    .args([
        "-device",
        &format!(
            "virtio-net-pci,netdev=n0,mac={mac},bootindex=1{}",
            // UEFI: no iPXE option ROM, so that OVMF's own virtio-net driver and
            // PXE client boot, as a real UEFI NIC would.
            if fw == Firmware::Uefi {
                ",romfile="
            } else {
                ""
            }
        ),
    ]);
    if fw == Firmware::Uefi {
        let code = Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd");
        assert!(code.exists(), "OVMF is missing: apt-get install -y ovmf");
        let vars = dir.path().join("OVMF_VARS.fd");
        std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars).unwrap();
        cmd.args([
            "-drive",
            &format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={}",
                code.display()
            ),
        ])
        .args([
            "-drive",
            &format!("if=pflash,format=raw,unit=1,file={}", vars.display()),
        ]);
    } else {
        cmd.args(["-boot", "n"]);
    }
    let started = std::time::Instant::now();
    let mut vm = ChildGuard(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let got = tokio::time::timeout(Duration::from_secs(240), rx.recv()).await;
    let took = started.elapsed();
    let serial_log = || std::fs::read_to_string(&serial).unwrap_or_default();
    let body = match got {
        Ok(Some(b)) => b,
        _ => {
            let _ = vm.0.kill();
            let mut err = String::new();
            if let Some(mut e) = vm.0.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            panic!(
                "{fw:?}: no report from the ramdisk within 240 s\nqemu stderr: {err}\nserial:\n{}\nreservations: {:?}",
                serial_log(),
                res.list()
            );
        }
    };
    eprintln!("{fw:?} (over TFTP: {over_tftp}): the ramdisk reported after {took:?}: {body}");
    assert!(body.contains("addr=10.99.0.10/24"), "{fw:?}: {body}");
    assert!(
        body.contains(&format!("BOOTIF=01-{}", mac.replace(':', "-"))),
        "{fw:?}: {body}"
    );
    assert!(body.contains("console=ttyS0"), "{fw:?}: {body}");
    assert!(
        body.contains(&format!("ipa-api-url=http://{SERVER_IP}:{HTTP_PORT}")),
        "{fw:?}: {body}"
    );
    let stats = tftp.stats();
    match (fw, over_tftp) {
        // iPXE in the NIC ROM, ipxe interface: everything over HTTP.
        (Firmware::Bios, false) => assert_eq!(stats.opened, 0, "{stats:?}"),
        // pxe interface: script, kernel and initramfs over TFTP.
        (_, true) => assert!(stats.opened >= 3, "{stats:?}"),
        // OVMF's PXE client loaded snponly.efi over TFTP first.
        (Firmware::Uefi, false) => assert!(stats.opened >= 1, "{stats:?}"),
    }
    assert_eq!(stats.refused, 0, "{stats:?}");
    // Done: the node leaves the provisioning network.
    boot.clean_up_ramdisk(&mut task).await.unwrap();
    net.remove_network(&mut task, NetworkPhase::Provisioning)
        .await
        .unwrap();
    assert!(res.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_network_boots_bios_and_uefi() {
    // The servers' logs show in the output of a failing run.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("ironic_boot_pxe=debug")
        .with_test_writer()
        .try_init();
    let k = kernel();
    let dir = tempfile::tempdir().unwrap();
    let initrd = initramfs(&k, dir.path());
    // UEFI: firmware PXE → snponly.efi over TFTP → iPXE → script, kernel and
    // initramfs over HTTP (the ipxe interface).
    boot(Firmware::Uefi, false, &k, &initrd, "52:54:00:be:00:02").await;
    // BIOS: the NIC's iPXE ROM → script, kernel, initramfs over HTTP (ipxe) ...
    boot(Firmware::Bios, false, &k, &initrd, "52:54:00:be:00:01").await;
    // ... and over TFTP (the pxe interface).
    boot(Firmware::Bios, true, &k, &initrd, "52:54:00:be:00:03").await;
}
