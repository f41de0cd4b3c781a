//! The deploy ramdisk: Debian's kernel (fetched with `apt-get download` and
//! unpacked with `dpkg-deb -x`, cached under `target/e2e-kernel`), and an
//! initramfs of `busybox-static`, the virtio modules and the `ironic-agent`
//! binary linked statically (`-C target-feature=+crt-static`, built into
//! `target/x86_64-unknown-linux-gnu/debug`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{run, target_dir, tool, workspace_dir};

/// The Rust target the static agent is built for.
pub const AGENT_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Debian's kernel: `vmlinuz` and `modules/` in the returned directory.
pub fn kernel() -> PathBuf {
    let cache = target_dir().join("e2e-kernel");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e_support/fetch-kernel.sh");
    tool("apt-get", "apt");
    tool("dpkg-deb", "dpkg");
    run(
        Command::new("sh").arg(&script).arg(&cache),
        "fetching Debian's kernel package (apt-get download linux-image-*-amd64)",
    );
    cache
}

/// Build `ironic-agent` as a static executable (glibc's static libraries come
/// with `libc6-dev`) and return its path.
pub fn static_agent() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_dir())
        .args([
            "build",
            "--quiet",
            "--locked",
            "-p",
            "ironic-deploy-agent",
            "--bin",
            "ironic-agent",
            "--target",
            AGENT_TARGET,
        ])
        .env("CARGO_TARGET_DIR", target_dir())
        // Only the target's artifacts get these flags (the host's, for build
        // scripts and proc macros, stay as they are).
        .env(
            "RUSTFLAGS",
            "-C target-feature=+crt-static -C strip=debuginfo",
        );
    run(
        &mut cmd,
        "building the static ironic-agent (cargo build --target x86_64-unknown-linux-gnu with +crt-static)",
    );
    let bin = target_dir()
        .join(AGENT_TARGET)
        .join("debug")
        .join("ironic-agent");
    assert!(bin.is_file(), "{} was not built", bin.display());
    assert!(
        !has_interpreter(&bin),
        "{} is dynamically linked: the ramdisk has no libc (install libc6-dev for glibc's static libraries)",
        bin.display()
    );
    bin
}

/// Whether an ELF64 executable asks for a program interpreter (is dynamic).
fn has_interpreter(bin: &Path) -> bool {
    let data = std::fs::read(bin).unwrap();
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(&data[..4], b"\x7fELF", "{} is not ELF", bin.display());
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let p = phoff + i * phentsize;
        u32::from_le_bytes(data[p..p + 4].try_into().unwrap()) == 3 // PT_INTERP
    })
}

/// The virtio modules, in an order that works in two passes (dependencies first).
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
];

/// PID 1 of the ramdisk: modules, network by DHCP, then the agent; when the agent
/// stops, the machine powers off.
const INIT: &str = r#"#!/bin/sh
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin /tmp /run /var/log
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for pass in 1 2; do
  for m in failover net_failover virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_net virtio_blk; do
    [ -d /sys/module/$m ] || insmod /modules/$m.ko 2>/dev/null
  done
done
ip link set lo up
export RUST_LOG=$(sed -n 's/.*e2e-agent-log=\([^ ]*\).*/\1/p' /proc/cmdline)
mac=$(sed -n 's/.*BOOTIF=01-\([0-9a-fA-F-]*\).*/\1/p' /proc/cmdline | tr 'A-F-' 'a-f:')
dev=eth0
for d in /sys/class/net/*; do
  [ "$(cat $d/address 2>/dev/null)" = "$mac" ] && dev=${d##*/}
done
ip link set $dev up
n=0
until udhcpc -i $dev -n -q -t 5 -T 2 -s /udhcpc.sh; do
  n=$((n+1)); [ $n -ge 10 ] && break
done
echo "e2e-ramdisk: $dev $(ip -4 -o addr show dev $dev | awk '{print $4}'), disks: $(ls /sys/block | tr '\n' ' ')"
RUST_LOG=${RUST_LOG:-info} /bin/ironic-agent
echo "e2e-ramdisk: ironic-agent exited with status $?"
poweroff -f
"#;

const UDHCPC: &str = "#!/bin/sh\n\
case \"$1\" in bound|renew) ip addr flush dev \"$interface\"; ip addr add \"$ip/${mask:-24}\" dev \"$interface\" ;; esac\n\
exit 0\n";

/// Build the initramfs (`newc` cpio, gzip) in `dir`; returns its path.
pub fn initramfs(kernel: &Path, agent: &Path, dir: &Path) -> PathBuf {
    let busybox = tool("busybox", "busybox-static");
    let tree = dir.join("initramfs");
    for d in ["bin", "modules"] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
    }
    std::fs::copy(&busybox, tree.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", tree.join("bin/sh")).unwrap();
    std::fs::copy(agent, tree.join("bin/ironic-agent")).unwrap();
    let mods = kernel.join("modules/kernel");
    for rel in MODULES {
        let src = mods.join(rel);
        assert!(
            src.is_file(),
            "{} is missing from Debian's kernel package",
            src.display()
        );
        std::fs::copy(&src, tree.join("modules").join(src.file_name().unwrap())).unwrap();
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
    tool("gzip", "gzip");
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
