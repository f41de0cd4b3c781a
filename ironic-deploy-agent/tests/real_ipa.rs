//! The reverse direction of `real_ironic.rs`: this project's conductor
//! (`Conductor` + `AgentDeploy`, with the ramdisk endpoints `/v1/lookup` and
//! `/v1/heartbeat` of `common/rack.rs` over the conductor's own methods)
//! drives the real ironic-python-agent 13 (PyPI, in `.venv-ipa`).
//!
//! IPA runs inside a QEMU VM, never on this host: its generic hardware
//! manager erases, partitions and writes every disk it finds, and its
//! `standby.power_off` ends with `echo o > /proc/sysrq-trigger` when
//! `poweroff` fails, which on the host would power the machine off. In the
//! VM (Debian's kernel, a busybox initramfs whose `/init` mounts the host's
//! `/usr`, `/etc` and this checkout read-only over 9p and runs IPA in a chroot
//! of them) its only disk is the node's disk file and its power-off ends the
//! VM, which the rack's power interface reads as the machine powered off.
//!
//! Covered: lookup by the PXE MAC and heartbeats with IPA's auto-TLS
//! certificate (pinned by the conductor), automated cleaning with
//! `erase_devices_metadata` from IPA's own step list, deploys of a raw and a
//! qcow2 whole-disk image (`write_image` as `standby.prepare_image`,
//! `get_partition_uuids`, `image.install_bootloader` in UEFI mode,
//! `standby.power_off`), tear-down cleaning between them.
//!
//! Needs root, `qemu-system-x86`, `busybox-static`, `cpio`, `qemu-utils`,
//! `fdisk`, Debian's kernel package (fetched into `target/e2e-kernel`) and IPA
//! in `.venv-ipa` made with Debian's `/usr/bin/python3`
//! (`bash scripts/setup-test-deps.sh`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::rack::{Env, IpaVm, env_with};
use common::vm::{kernel, need, run};
use common::{make_raw, sha256_hex};
use ironic_core::{NodeId, ProvisionRequest, ProvisionState as S};
use ironic_deploy_agent::httpd::{ImageServer, ServeOptions};
use serde_json::{Value, json};

/// The checkout (it holds `.venv-ipa`).
fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// IPA in `.venv-ipa`, on Debian's python (the VM sees only the host's `/usr`).
fn ipa_venv() -> PathBuf {
    let venv = checkout().join(".venv-ipa");
    let bin = venv.join("bin/ironic-python-agent");
    assert!(
        bin.is_file(),
        "the real ironic-python-agent is needed by this test and is not in {}: run \
         `bash scripts/setup-test-deps.sh` (it installs ironic-python-agent from PyPI into \
         .venv-ipa with /usr/bin/python3)",
        venv.display()
    );
    let py = std::fs::canonicalize(venv.join("bin/python")).unwrap();
    assert!(
        py.starts_with("/usr/"),
        "{} runs {}, not Debian's python under /usr (the VM mounts only /usr): run \
         `bash scripts/setup-test-deps.sh` to make it again",
        venv.display(),
        py.display()
    );
    venv
}

const MODULES: &[&str] = &[
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "drivers/net/virtio_net.ko",
    "drivers/block/virtio_blk.ko",
    "fs/netfs/netfs.ko",
    "fs/fscache/fscache.ko",
    "net/9p/9pnet.ko",
    "net/9p/9pnet_virtio.ko",
    "fs/9p/9p.ko",
];

/// PID 1: modules, QEMU's user network, a root of the host's `/usr`, `/etc`
/// and the checkout (9p, read-only) with fresh `/proc`, `/sys`, `/dev` and
/// tmpfs for the rest, then IPA in it; when IPA stops, the machine powers off.
const INIT: &str = r#"#!/bin/sh
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin /r
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in failover net_failover virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_net virtio_blk netfs fscache 9pnet 9pnet_virtio 9p; do
  insmod /modules/$m.ko || echo "ipa-vm: insmod $m failed"
done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
W=$(sed -n 's/.*ipa-test-root=\([^ ]*\).*/\1/p' /proc/cmdline)
mount -t tmpfs tmpfs /r
mkdir -p /r/usr /r/etc /r$W /r/proc /r/sys /r/dev /r/tmp /r/run /r/var/tmp /r/var/lib /r/var/log /r/root
O=trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose
mount -t 9p -o $O usr /r/usr || echo "ipa-vm: 9p /usr failed"
mount -t 9p -o $O etc /r/etc || echo "ipa-vm: 9p /etc failed"
mount -t 9p -o $O work /r$W || echo "ipa-vm: 9p $W failed"
ln -s usr/bin /r/bin; ln -s usr/sbin /r/sbin; ln -s usr/lib /r/lib; ln -s usr/lib64 /r/lib64
mount -t proc proc /r/proc
mount -t sysfs sysfs /r/sys
mount -t devtmpfs devtmpfs /r/dev
echo "ipa-vm: disks: $(ls /r/sys/block | tr '\n' ' ')"
chroot /r /usr/bin/env -i PATH=/usr/sbin:/usr/bin HOME=/root $W/.venv-ipa/bin/ironic-python-agent
echo "ipa-vm: ironic-python-agent exited with status $?"
poweroff -f
"#;

/// The initramfs (newc cpio, gzip) in `dir`.
fn initramfs(kernel: &Path, dir: &Path) -> PathBuf {
    let tree = dir.join("initramfs");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::create_dir_all(tree.join("modules")).unwrap();
    std::fs::copy(need("busybox", "busybox-static"), tree.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", tree.join("bin/sh")).unwrap();
    for rel in MODULES {
        let src = kernel.join("modules/kernel").join(rel);
        assert!(
            src.is_file(),
            "{} is missing from Debian's kernel package",
            src.display()
        );
        std::fs::copy(&src, tree.join("modules").join(src.file_name().unwrap())).unwrap();
    }
    std::fs::write(tree.join("init"), INIT).unwrap();
    std::fs::set_permissions(
        tree.join("init"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    need("cpio", "cpio");
    let out = dir.join("ipa-initramfs.gz");
    run(
        Command::new("sh").arg("-c").arg(format!(
            "cd '{}' && find . | cpio -o -H newc --quiet | gzip -1 > '{}'",
            tree.display(),
            out.display()
        )),
        "building the initramfs",
    );
    out
}

/// An image of `mib` MiB: random data under a GPT with one partition.
fn image_with_gpt(path: &Path, mib: usize, seed: u64) -> Vec<u8> {
    make_raw(path, mib, seed);
    let mut c = Command::new("sfdisk")
        .args(["-q", path.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sfdisk is needed: apt-get install fdisk");
    std::io::Write::write_all(
        &mut c.stdin.take().unwrap(),
        b"label: gpt\nstart=2048, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n",
    )
    .unwrap();
    assert!(c.wait().unwrap().success());
    std::fs::read(path).unwrap()
}

async fn provision(env: &Env, node: NodeId, target: &str) {
    env.c
        .provision(&node.into(), ProvisionRequest::new(target))
        .await
        .unwrap_or_else(|e| panic!("provision {target}: {e}"));
}

/// Wait (long: IPA boots in a TCG VM) until the node settles in `states`.
async fn settle(env: &Env, node: NodeId, states: &[S], secs: u64) -> ironic_core::Node {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let n = env.c.get_node(&node.into()).await.unwrap();
        if states.contains(&n.provision_state) && n.reservation.is_none() {
            return n;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "timed out waiting for {states:?}: node is {} (target {:?}), last_error {:?}, \
                 step {:?}; IPA's console:\n{}",
                n.provision_state,
                n.target_provision_state,
                n.last_error,
                n.deploy_step,
                tail(&env.rack.console(node), 120)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The first `len` bytes of the node's disk (a sparse 5 GiB file).
fn disk_head(env: &Env, node: NodeId, len: usize) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut b = vec![0u8; len];
    std::fs::File::open(env.rack.disk(node))
        .unwrap()
        .read_exact_at(&mut b, 0)
        .unwrap();
    b
}

/// The image's partition data is on the disk (IPA moves the backup GPT to the
/// end of the disk, rewriting the headers: compare from 1 MiB to the image's
/// last 64 KiB).
fn assert_disk_holds(env: &Env, node: NodeId, img: &[u8], what: &str) {
    let disk = disk_head(env, node, img.len());
    let body = 1 << 20..img.len() - (64 << 10);
    assert!(
        disk[body.clone()] == img[body],
        "{what}: the disk's bytes differ from the image's; IPA's console:\n{}",
        tail(&env.rack.console(node), 60)
    );
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// The names of the agent commands the conductor sent, in order.
fn commands(env: &Env) -> Vec<String> {
    env.seen
        .agent
        .lock()
        .unwrap()
        .iter()
        .map(|c| format!("{c:?}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_conductor_drives_the_real_ipa() {
    need("qemu-system-x86_64", "qemu-system-x86");
    need("qemu-img", "qemu-utils");
    ipa_venv();
    let kernel = kernel();
    let work = tempfile::tempdir().unwrap();
    let initrd = initramfs(&kernel, work.path());
    // automated cleaning as Ironic's defaults but erase_devices (shred of a 5 GiB
    // disk under TCG) at priority 0: erase_devices_metadata (99) runs
    let cfg = ironic_deploy_agent::AgentConfig {
        erase_devices_priority: 0,
        ..Default::default()
    };
    let env = env_with(
        cfg,
        Some(IpaVm {
            kernel: kernel.join("vmlinuz"),
            initrd,
            root: checkout(),
        }),
    )
    .await;
    let dir = env.dir.path().to_owned();
    let img = image_with_gpt(&dir.join("img.raw"), 8, 41);
    let img2 = image_with_gpt(&dir.join("img2.raw"), 8, 42);
    run(
        Command::new("qemu-img")
            .args(["convert", "-f", "raw", "-O", "qcow2"])
            .arg(dir.join("img2.raw"))
            .arg(dir.join("img2.qcow2")),
        "qemu-img convert",
    );
    let q2 = std::fs::read(dir.join("img2.qcow2")).unwrap();
    let srv = ImageServer::start(&dir, ServeOptions::new()).await.unwrap();
    // the VM reaches the host's loopback as 10.0.2.2
    let url = |name: &str| {
        srv.url(name)
            .replace("127.0.0.1", "10.0.2.2")
            .replace("localhost", "10.0.2.2")
    };

    // IPA's root device is the smallest disk of at least 4 GiB
    let node = env.node("52:54:00:1a:0e:01", 5 << 10).await;
    let u = node.uuid;
    // old data for cleaning to remove: a GPT header
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(env.rack.disk(u))
            .unwrap();
        f.write_all_at(&img[..1 << 20], 0).unwrap();
    }

    // manage, provide: automated cleaning boots IPA, which looks the node up
    // by its MAC and runs erase_devices_metadata
    provision(&env, u, "manage").await;
    settle(&env, u, &[S::Manageable], 60).await;
    provision(&env, u, "provide").await;
    let n = settle(&env, u, &[S::Available, S::CleanFailed], 900).await;
    assert_eq!(
        n.provision_state,
        S::Available,
        "{:?}\nIPA's console:\n{}",
        n.last_error,
        tail(&env.rack.console(u), 120)
    );
    assert_eq!(env.rack.boots(u), 1, "cleaning booted IPA once");
    let disk = disk_head(&env, u, 1 << 20);
    assert!(
        disk[512..520] != *b"EFI PART",
        "erase_devices_metadata left the GPT"
    );
    // IPA logs each command with its arguments
    let console = env.rack.console(u);
    assert!(
        console.contains("'step': 'erase_devices_metadata'"),
        "{}",
        tail(&console, 80)
    );
    assert!(
        !console.contains("'step': 'erase_devices'"),
        "erase_devices has priority 0: {}",
        tail(&console, 80)
    );

    // deploy the raw image
    let mut n = env.c.get_node(&u.into()).await.unwrap();
    n.instance_info = json!({"image_source": url("img.raw"), "image_disk_format": "raw",
        "image_os_hash_algo": "sha256", "image_os_hash_value": sha256_hex(&img)})
    .as_object()
    .unwrap()
    .clone();
    env.c.update_node(n, false).await.unwrap();
    provision(&env, u, "active").await;
    let n = settle(&env, u, &[S::Active, S::DeployFailed], 900).await;
    assert_eq!(
        n.provision_state,
        S::Active,
        "{:?}\nIPA's console:\n{}",
        n.last_error,
        tail(&env.rack.console(u), 120)
    );
    assert_disk_holds(&env, u, &img, "raw");
    // IPA's get_partition_uuids for a GPT whole-disk image
    assert_eq!(
        n.internal("root_uuid_or_disk_id"),
        Some(&Value::from("0x00000000")),
        "{:?}",
        n.driver_internal_info
    );
    let seen = commands(&env).join("\n");
    // (the conductor offers the agent steps from its own catalogue: it does
    // not ask for get_clean_steps / get_deploy_steps as Ironic does)
    for c in [
        "execute_clean_step",
        "prepare_image",
        "get_partition_uuids",
        "install_bootloader",
        "power_off",
    ] {
        assert!(seen.contains(c), "{c} was not sent: {seen}");
    }

    // undeploy (tear-down cleaning through IPA again), then the qcow2 image
    provision(&env, u, "deleted").await;
    let n = settle(&env, u, &[S::Available, S::CleanFailed], 900).await;
    assert_eq!(n.provision_state, S::Available, "{:?}", n.last_error);
    let mut n = env.c.get_node(&u.into()).await.unwrap();
    n.instance_info = json!({"image_source": url("img2.qcow2"), "image_disk_format": "qcow2",
        "image_os_hash_algo": "sha256", "image_os_hash_value": sha256_hex(&q2)})
    .as_object()
    .unwrap()
    .clone();
    env.c.update_node(n, false).await.unwrap();
    provision(&env, u, "active").await;
    let n = settle(&env, u, &[S::Active, S::DeployFailed], 900).await;
    assert_eq!(
        n.provision_state,
        S::Active,
        "{:?}\nIPA's console:\n{}",
        n.last_error,
        tail(&env.rack.console(u), 120)
    );
    assert_disk_holds(&env, u, &img2, "qcow2");
    assert_eq!(env.rack.boots(u), 4, "clean, deploy, clean, deploy");
}
