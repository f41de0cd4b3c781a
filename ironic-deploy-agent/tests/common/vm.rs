//! Linux in QEMU for the tests that need a real kernel (md RAID, 9p, a
//! firmware that boots the deployed disks): Debian's kernel, a busybox
//! initramfs with `ironic-agent`, and helpers to look at the disks after.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Kills a QEMU (or any child) when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn need(tool: &str, package: &str) -> PathBuf {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .unwrap();
    let p = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && !p.is_empty(),
        "{tool} is needed by this test: apt-get install {package}"
    );
    PathBuf::from(p)
}

pub fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Debian's kernel (vmlinuz + modules), cached in `target/e2e-kernel`.
pub fn kernel() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let cache = target.join("e2e-kernel");
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/ironic-standalone/tests/e2e_support/fetch-kernel.sh");
    need("apt-get", "apt");
    need("dpkg-deb", "dpkg");
    run(
        Command::new("sh").arg(&script).arg(&cache),
        "fetching Debian's kernel package (apt-get download linux-image-*-amd64)",
    );
    cache
}

/// Copy an executable and the shared libraries `ldd` names into `root`.
pub fn install_with_libs(bin: &Path, root: &Path, dest: &str) {
    let d = root.join(dest.trim_start_matches('/'));
    std::fs::create_dir_all(d.parent().unwrap()).unwrap();
    std::fs::copy(bin, &d).unwrap();
    let ldd = run(Command::new("ldd").arg(bin), "ldd");
    for line in ldd.lines() {
        let lib = match line.split_once("=>") {
            Some((_, r)) => r.split_whitespace().next().unwrap_or(""),
            None => line.split_whitespace().next().unwrap_or(""),
        };
        if !lib.starts_with('/') {
            continue;
        }
        let to = root.join(lib.trim_start_matches('/'));
        if !to.exists() {
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(lib, &to).unwrap();
        }
    }
}

pub const MODULES: &[&str] = &[
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "drivers/net/virtio_net.ko",
    "drivers/block/virtio_blk.ko",
    "drivers/md/md-mod.ko",
    "drivers/md/raid0.ko",
    "drivers/md/raid1.ko",
];

/// PID 1: modules, QEMU's user network, then the agent, configured by the
/// kernel command line (`ipa-*`: standalone with `ipa-agent-token`, or looking
/// up through `ipa-api-url`); when the agent stops, the machine powers off.
pub const INIT: &str = r#"#!/bin/sh
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin /tmp /run /var/log /etc
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for pass in 1 2; do
  for m in failover net_failover virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_net virtio_blk md-mod raid0 raid1; do
    [ -d /sys/module/$(echo $m | tr - _) ] || insmod /modules/$m.ko 2>/dev/null
  done
done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
# test-forward-ports=P1,P2: the VM's 127.0.0.1:P is the host's loopback (10.0.2.2:P),
# for URLs that the host and the VM must both reach (Ironic's http_url)
for p in $(sed -n 's/.*test-forward-ports=\([^ ]*\).*/\1/p' /proc/cmdline | tr , ' '); do
  printf '#!/bin/sh\nexec nc 10.0.2.2 %s\n' "$p" > /bin/fwd-$p
  chmod +x /bin/fwd-$p
  nc -ll -p "$p" -e /bin/fwd-$p &
done
echo "raid-ramdisk: disks: $(ls /sys/block | tr '\n' ' ')"
RUST_LOG=info /bin/ironic-agent --listen 0.0.0.0:9999 --state-dir /run/ironic-agent
echo "raid-ramdisk: ironic-agent exited with status $?"
poweroff -f
"#;

/// The initramfs (newc cpio, gzip) in `dir`.
pub fn agent_initramfs(kernel: &Path, dir: &Path) -> PathBuf {
    let tree = dir.join("initramfs");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::create_dir_all(tree.join("modules")).unwrap();
    std::fs::copy(need("busybox", "busybox-static"), tree.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", tree.join("bin/sh")).unwrap();
    install_with_libs(
        Path::new(env!("CARGO_BIN_EXE_ironic-agent")),
        &tree,
        "/bin/ironic-agent",
    );
    install_with_libs(&need("mdadm", "mdadm"), &tree, "/sbin/mdadm");
    // parted's partprobe (BLKPG: adds a partition to a disk whose other
    // partitions are in use), not busybox's (BLKRRPART, refused then)
    install_with_libs(&need("partprobe", "parted"), &tree, "/sbin/partprobe");
    // GRUB for BIOS from the ramdisk (install_bootloader on a RAID root in BIOS mode)
    install_with_libs(
        &need("grub-mkimage", "grub-common"),
        &tree,
        "/sbin/grub-mkimage",
    );
    let grub_pc = Path::new("/usr/lib/grub/i386-pc");
    assert!(
        grub_pc.join("boot.img").is_file(),
        "GRUB for BIOS is needed by this test: apt-get install grub-pc-bin"
    );
    let to = tree.join("usr/lib/grub/i386-pc");
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(grub_pc).unwrap().flatten() {
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
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
    let out = dir.join("initramfs.gz");
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The partitions of a disk file as sfdisk sees them: (start byte, size, type).
pub fn partitions(disk: &Path) -> Vec<(u64, u64, String)> {
    let out = Command::new("sfdisk")
        .arg("--json")
        .arg(disk)
        .output()
        .expect("sfdisk is needed: apt-get install fdisk");
    if !out.status.success() {
        return Vec::new();
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["start"].as_u64().unwrap() * 512,
                p["size"].as_u64().unwrap() * 512,
                p["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// An md 1.x superblock at `at`: (data offset in bytes, array name).
pub fn md_superblock(f: &std::fs::File, at: u64) -> Option<(u64, String)> {
    let mut sb = [0u8; 256];
    f.read_exact_at(&mut sb, at).ok()?;
    if u32::from_le_bytes(sb[0..4].try_into().unwrap()) != 0xa92b_4efc {
        return None;
    }
    let data_offset = u64::from_le_bytes(sb[128..136].try_into().unwrap()) * 512;
    let name = String::from_utf8_lossy(&sb[32..64])
        .trim_end_matches('\0')
        .to_owned();
    Some((data_offset, name))
}

/// Boot `disks` (virtio) in OVMF until the console shows `marker`.
pub fn boot_uefi(disks: &[PathBuf], dir: &Path, marker: &str) {
    boot_disks(disks, dir, marker, true)
}

/// Boot `disks` (virtio) in OVMF (`uefi`) or SeaBIOS until the console shows
/// `marker`.
pub fn boot_disks(disks: &[PathBuf], dir: &Path, marker: &str, uefi: bool) {
    let console = dir.join("firmware-console.log");
    let _ = std::fs::remove_file(&console);
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-accel", "tcg", "-m", "256", "-display", "none"])
        .args(["-no-reboot", "-nodefaults"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()));
    if uefi {
        let vars = dir.join("OVMF_VARS.fd");
        std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars)
            .expect("OVMF firmware is needed: apt-get install ovmf");
        cmd.args(["-machine", "q35"])
            .args([
                "-drive",
                "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
            ])
            .arg("-drive")
            .arg(format!("if=pflash,format=raw,file={}", vars.display()));
    } else {
        // SeaBIOS
        cmd.args(["-machine", "pc"]);
    }
    for d in disks {
        cmd.arg("-drive").arg(format!(
            "file={},format=raw,if=virtio,readonly=on",
            d.display()
        ));
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("qemu-system-x86_64 is needed: apt-get install qemu-system-x86");
    let _vm = Guard(child);
    let read = || std::fs::read_to_string(&console).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(240);
    while Instant::now() < deadline {
        if read().contains(marker) {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!(
        "{} disk(s) did not boot ({}) to {marker:?} within 240 s; console:\n{}",
        disks.len(),
        if uefi { "OVMF" } else { "SeaBIOS" },
        read()
    );
}

/// What the BIOS test image's grub.cfg prints.
pub const BIOS_MARKER: &str = "ironic-rs-raid-bios-boots";
/// The BIOS test image's root filesystem UUID (its `rootfs_uuid`).
pub const ROOTFS_UUID: &str = "5f0c2a1e-8d43-4b6e-9a57-2c7d1e9b4f10";

/// A 24 MiB whole-disk msdos image: one ext4 root partition (made by
/// mke2fs) whose `/boot/grub/grub.cfg` prints [`BIOS_MARKER`]. No boot code:
/// GRUB for BIOS comes from the ramdisk, as this agent never runs the image's
/// own `grub-install` (IPA's `_install_grub2` does, in a chroot, and has it off
/// by default since CVE-2026-43003).
pub fn bios_image(dir: &Path) -> Vec<u8> {
    let tree = dir.join("bios-root");
    std::fs::create_dir_all(tree.join("boot/grub")).unwrap();
    std::fs::write(
        tree.join("boot/grub/grub.cfg"),
        format!(
            "serial --unit=0 --speed=115200\nterminal_output serial\necho {BIOS_MARKER}\nsleep 1\nhalt\n"
        ),
    )
    .unwrap();
    let fs = dir.join("bios-root.ext4");
    std::fs::File::create(&fs)
        .unwrap()
        .set_len(20 << 20)
        .unwrap();
    run(
        Command::new(need("mkfs.ext4", "e2fsprogs"))
            .args(["-q", "-F", "-U", ROOTFS_UUID, "-d"])
            .arg(&tree)
            .arg(&fs),
        "mkfs.ext4",
    );
    let img = dir.join("bios-image.raw");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(24 << 20)
        .unwrap();
    let mut c = Command::new("sfdisk")
        .args(["-q", img.to_str().unwrap()])
        .stdin(Stdio::piped())
        .spawn()
        .expect("sfdisk is needed: apt-get install fdisk");
    std::io::Write::write_all(
        &mut c.stdin.take().unwrap(),
        b"label: dos\nlabel-id: 0x1e2f3a4b\nstart=2048, size=40960, type=83\n",
    )
    .unwrap();
    assert!(c.wait().unwrap().success());
    let mut data = std::fs::read(&img).unwrap();
    let root = std::fs::read(&fs).unwrap();
    data[(1 << 20)..(1 << 20) + root.len()].copy_from_slice(&root);
    data
}
