//! `ironic ramdisk build`: the deploy kernel and initramfs from Debian's kernel
//! package, `busybox-static` and the statically linked `ironic-agent`.
//!
//! The initramfs holds busybox (the shell, `udhcpc`, `ip`, `insmod`), the agent,
//! and the kernel modules for common NICs and storage controllers with their
//! dependencies ([`MODULES`]); its `/init` loads them, brings the boot interface
//! up with DHCP (`BOOTIF=` from the kernel command line, else every interface),
//! and runs the agent, which reads IPA's parameters (`ipa-api-url`, ...) from the
//! kernel command line. IPA's ramdisks are ~400 MiB; this one is a few tens.
//!
//! The agent's tools (GRUB's `grub-mkimage` and modules, `efibootmgr`,
//! e2fsprogs, xfsprogs, parted, util-linux, mdadm, hdparm, nvme-cli,
//! smartmontools; stress-ng and fio for the burn-in steps when asked for) come
//! from the build host with their shared libraries ([`tools`]). The bootable ISO ([`iso`]) boots the same kernel and initramfs
//! with GRUB in BIOS and UEFI mode; per-node ISOs (virtual media) reuse its
//! GRUB images with the node's own kernel command line.

mod cpio;
pub mod iso;
mod kernel;
pub mod tools;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use cpio::CpioWriter;
pub use kernel::{ModuleTree, check_bzimage};

use crate::progress::Progress;

/// The modules put into the initramfs (with their dependencies), when the kernel
/// has them as modules: virtual machines, the common server NICs and storage
/// controllers, software RAID (md), USB and CD (virtual media), the file
/// systems the agent mounts, and a hardware RNG.
pub const MODULES: &[&str] = &[
    // virtio (QEMU/KVM, clouds)
    "virtio_pci",
    "virtio_net",
    "virtio_blk",
    "virtio_scsi",
    "virtio_rng",
    // NICs
    "e1000",
    "e1000e",
    "igb",
    "ixgbe",
    "i40e",
    "ice",
    "mlx5_core",
    "bnxt_en",
    "tg3",
    "vmxnet3",
    // storage
    "nvme",
    "ahci",
    "megaraid_sas",
    "mpt3sas",
    "sd_mod",
    "sr_mod",
    // crc32c for libcrc32c (XFS, RAID 4/5/6) and ext4's metadata checksums:
    // a soft dependency ("softdep libcrc32c pre: crc32c") that modules.dep does
    // not list, and /init has no modprobe to follow it
    "crc32c_generic",
    // software RAID (the agent's create_configuration with mdadm)
    "md_mod",
    "raid0",
    "raid1",
    "raid10",
    "raid456",
    // virtual media over USB
    "xhci_pci",
    "ehci_pci",
    "usb_storage",
    "uas",
    // VLANs and bonds of a node's network_data
    "8021q",
    "bonding",
    // file systems (config drives, ESPs, ISOs)
    "isofs",
    "vfat",
    "nls_cp437",
    "nls_iso8859_1",
    "ext4",
    // inject_files mounts XFS root file systems
    "xfs",
    "af_packet",
    // UEFI variables (efibootmgr)
    "efivarfs",
];

/// Why the ramdisk could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RamdiskError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `--kernel` is not a kernel.
    #[error("{path} is not a Linux kernel: {why}")]
    NotAKernel {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The agent binary is missing or cannot run in the ramdisk.
    #[error("{0}")]
    Agent(String),
    /// A tool (apt-get, dpkg-deb, depmod, xz) failed or is missing.
    #[error("{0}")]
    Tool(String),
}

impl RamdiskError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        RamdiskError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// What to build from.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Where the results go (created).
    pub output: PathBuf,
    /// A kernel of your own (a bzImage); default: Debian's, fetched with `apt-get download`.
    pub kernel: Option<PathBuf>,
    /// The module tree of `kernel` (`/lib/modules/<version>`); default: found from the
    /// kernel's version.
    pub modules: Option<PathBuf>,
    /// The agent; default: `ironic-agent` beside this program.
    pub agent: Option<PathBuf>,
    /// busybox, statically linked; default `/bin/busybox` (Debian's `busybox-static`).
    pub busybox: Option<PathBuf>,
    /// Where Debian's kernel is cached; default `<output>/.cache`.
    pub cache: Option<PathBuf>,
    /// Leave out the host's tools ([`tools::TOOLS`]): a smaller ramdisk that
    /// cannot install a bootloader for partition images, add UEFI boot entries,
    /// erase disks securely nor run the burn-in steps.
    pub without_tools: bool,
    /// Add the burn-in steps' tools ([`tools::BURNIN_TOOLS`]: stress-ng, fio,
    /// with about 100 MiB of libraries); ignored with `without_tools`.
    pub with_burnin: bool,
    /// Also build the bootable ISO (`ironic-agent.iso`, BIOS and UEFI) with this
    /// kernel command line, and keep its GRUB images beside it.
    pub iso_cmdline: Option<String>,
}

/// What was built.
#[derive(Clone, Debug)]
pub struct BuildReport {
    /// The kernel (`ironic-agent.kernel`).
    pub kernel: PathBuf,
    /// The initramfs (`ironic-agent.initramfs`).
    pub initramfs: PathBuf,
    /// The kernel's version.
    pub kernel_version: String,
    /// Modules included (dependencies counted).
    pub modules: usize,
    /// Modules of [`MODULES`] this kernel has built in or lacks.
    pub not_included: Vec<String>,
    /// The tools taken from the host (empty with `without_tools`).
    pub tools: Vec<String>,
    /// Whether the burn-in tools are among them.
    pub burnin: bool,
    /// The bootable ISO, when asked for.
    pub iso: Option<PathBuf>,
    /// How long it took.
    pub elapsed: Duration,
}

impl BuildReport {
    /// What `ironic ramdisk build` prints.
    pub fn summary(&self) -> String {
        let size = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| format!("{:.1} MiB", m.len() as f64 / (1 << 20) as f64))
                .unwrap_or_else(|_| "?".into())
        };
        let mut s = format!(
            "built in {:.1} s:\n  {}  {}  (Linux {})\n  {}  {}  ({} modules)\n",
            self.elapsed.as_secs_f64(),
            self.kernel.display(),
            size(&self.kernel),
            self.kernel_version,
            self.initramfs.display(),
            size(&self.initramfs),
            self.modules,
        );
        if self.tools.is_empty() {
            s.push_str(
                "  without the host's tools (partition images, UEFI boot entries, secure erase and burn-in will fail)\n",
            );
        } else {
            s.push_str(&format!("  tools: {}\n", self.tools.join(", ")));
            if !self.burnin {
                s.push_str(
                    "  without the burn-in tools (stress-ng, fio: --with-burnin adds them and their libraries, ~34 MiB; burn-in steps fail without them)\n",
                );
            }
        }
        if let Some(iso) = &self.iso {
            s.push_str(&format!(
                "  {}  {}  (BIOS and UEFI; GRUB images for per-node ISOs beside it)\n",
                iso.display(),
                size(iso)
            ));
        }
        if !self.not_included.is_empty() {
            s.push_str(&format!(
                "  not loadable modules of this kernel (built in or absent): {}\n",
                self.not_included.join(", ")
            ));
        }
        s.push_str(&format!(
            "\nIn the config file:\n  [boot]\n  deploy_kernel = \"{}\"\n  deploy_ramdisk = \"{}\"\n",
            self.kernel.display(),
            self.initramfs.display()
        ));
        s
    }
}

/// Whether an ELF executable asks for a program interpreter (is dynamically linked).
pub fn is_dynamic(data: &[u8]) -> Option<bool> {
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?) as usize);
    let u64_at = |o: usize| Some(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?) as usize);
    let (phoff, phentsize, phnum) = (u64_at(0x20)?, u16_at(0x36)?, u16_at(0x38)?);
    for i in 0..phnum {
        let p = phoff.checked_add(i.checked_mul(phentsize)?)?;
        let kind = u32::from_le_bytes(data.get(p..p + 4)?.try_into().ok()?);
        if kind == 3 {
            return Some(true);
        }
    }
    Some(false)
}

fn static_binary(path: &Path, what: &str, how: &str) -> Result<Vec<u8>, RamdiskError> {
    let data = std::fs::read(path)
        .map_err(|e| RamdiskError::Agent(format!("{what} {}: {e}; {how}", path.display())))?;
    match is_dynamic(&data) {
        None => Err(RamdiskError::Agent(format!(
            "{what} {} is not an x86-64 ELF executable; {how}",
            path.display()
        ))),
        Some(true) => Err(RamdiskError::Agent(format!(
            "{what} {} is dynamically linked, but the ramdisk has no libc; {how}",
            path.display()
        ))),
        Some(false) => Ok(data),
    }
}

const AGENT_HOW: &str = "build a static one with `RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu -p ironic-deploy-agent --bin ironic-agent` (glibc's static libraries come with libc6-dev) and pass --agent target/x86_64-unknown-linux-gnu/release/ironic-agent";

fn default_agent() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("ironic-agent")))
        .unwrap_or_else(|| PathBuf::from("ironic-agent"))
}

/// Build the kernel and initramfs into `opts.output`.
pub fn build(opts: &BuildOptions) -> Result<BuildReport, RamdiskError> {
    build_reporting(opts, &Progress::silent())
}

/// [`build`], saying each step (fetching the kernel, collecting the host's
/// tools, GRUB, the initramfs file by file, the ISO) to `progress`.
pub fn build_reporting(
    opts: &BuildOptions,
    progress: &Progress,
) -> Result<BuildReport, RamdiskError> {
    let r = build_steps(opts, progress);
    progress.finish();
    r
}

fn build_steps(opts: &BuildOptions, progress: &Progress) -> Result<BuildReport, RamdiskError> {
    let started = Instant::now();
    let out = &opts.output;
    std::fs::create_dir_all(out).map_err(|e| RamdiskError::io(out, e))?;
    // Check what is given before fetching anything.
    let agent_path = opts.agent.clone().unwrap_or_else(default_agent);
    let agent = static_binary(&agent_path, "the agent", AGENT_HOW)?;
    let busybox_path = opts
        .busybox
        .clone()
        .unwrap_or_else(|| PathBuf::from("/bin/busybox"));
    let busybox = static_binary(
        &busybox_path,
        "busybox",
        "install Debian's busybox-static (`apt-get install busybox-static`) or pass --busybox",
    )?;
    let (kernel_src, modules_dir) = match &opts.kernel {
        Some(k) => {
            let version = check_bzimage(k)?;
            let modules = match (&opts.modules, &version) {
                (Some(m), _) => m.clone(),
                (None, Some(v)) => PathBuf::from("/lib/modules").join(v),
                (None, None) => {
                    return Err(RamdiskError::NotAKernel {
                        path: k.clone(),
                        why: "it names no version: give its modules with --modules DIR".into(),
                    });
                }
            };
            (k.clone(), modules)
        }
        None => {
            let cache = opts.cache.clone().unwrap_or_else(|| out.join(".cache"));
            progress.step(&format!(
                "kernel: Debian's kernel package (apt-get download, cached in {})",
                cache.join("kernel").display()
            ));
            kernel::fetch_debian(&cache.join("kernel"))?
        }
    };
    let version = check_bzimage(&kernel_src)?.unwrap_or_else(|| "unknown".into());
    let tree = ModuleTree::open(&modules_dir).map_err(|e| match e {
        RamdiskError::Io { path, source } => RamdiskError::Tool(format!(
            "the kernel's modules are not at {}: {source} (pass --modules DIR, the kernel's /lib/modules/<version>)",
            path.parent().unwrap_or(&path).display()
        )),
        other => other,
    })?;
    let not_included: Vec<String> = MODULES
        .iter()
        .filter(|m| !tree.has(m))
        .map(|m| m.to_string())
        .collect();
    let order = tree.resolve(MODULES.iter().copied());
    let payload = if opts.without_tools {
        tools::Payload::default()
    } else {
        progress.step(if opts.with_burnin {
            "collecting the host's tools, the burn-in tools and their libraries"
        } else {
            "collecting the host's tools and their libraries"
        });
        tools::collect(Path::new("/"), opts.with_burnin)?
    };
    // GRUB for the ISO before the long part, so that a missing GRUB fails early.
    let boot_files = match &opts.iso_cmdline {
        Some(_) => {
            progress.step("GRUB images for the ISO (BIOS and UEFI)");
            Some(iso::BootFiles::build(&out.join(".grub"))?)
        }
        None => None,
    };
    // Every file of the initramfs: the tools, busybox, the agent, the modules.
    progress.counted(
        "initramfs: files written and compressed",
        (payload.files.len() + 2 + order.len()) as u64,
    );

    // The initramfs.
    let initramfs = out.join("ironic-agent.initramfs");
    let tmp = out.join(".ironic-agent.initramfs.tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| RamdiskError::io(&tmp, e))?;
    let gz =
        flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::new(6));
    let mut w = CpioWriter::new(gz);
    let e = |e: std::io::Error| RamdiskError::io(&tmp, e);
    for d in [
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "var",
        "var/log",
        "mnt",
        "lib",
        "lib/modules",
    ] {
        w.dir(d).map_err(e)?;
    }
    let mut made: std::collections::BTreeSet<String> = [
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "var",
        "var/log",
        "mnt",
        "lib",
        "lib/modules",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for d in payload.dirs() {
        if made.insert(d.clone()) {
            w.dir(&d).map_err(e)?;
        }
    }
    for (rel, host, mode) in &payload.files {
        let data = std::fs::read(host).map_err(|e| RamdiskError::io(host, e))?;
        w.file(rel, *mode, &data).map_err(e)?;
        progress.inc(true);
    }
    for (link, target) in &payload.links {
        w.symlink(link, target).map_err(e)?;
    }
    w.file("bin/busybox", 0o755, &busybox).map_err(e)?;
    progress.inc(true);
    w.symlink("bin/sh", "busybox").map_err(e)?;
    w.file("bin/ironic-agent", 0o755, &agent).map_err(e)?;
    progress.inc(true);
    let mut list = String::new();
    for rel in &order {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        let name = name.split(".ko").next().unwrap_or(name);
        let data = tree.read(rel)?;
        w.file(&format!("lib/modules/{name}.ko"), 0o644, &data)
            .map_err(e)?;
        list.push_str(name);
        list.push('\n');
        progress.inc(true);
    }
    w.file("etc/modules.order", 0o644, list.as_bytes())
        .map_err(e)?;
    w.file("init", 0o755, INIT.as_bytes()).map_err(e)?;
    w.file(
        "etc/ironic-tools",
        0o644,
        tools::version_probes(&payload).as_bytes(),
    )
    .map_err(e)?;
    w.file("etc/udhcpc.sh", 0o755, UDHCPC.as_bytes())
        .map_err(e)?;
    w.file(
        "etc/ironic-ramdisk",
        0o644,
        format!("ironic-rs deploy ramdisk, Linux {version}\n").as_bytes(),
    )
    .map_err(e)?;
    let gz = w.finish().map_err(e)?;
    let mut buf = gz.finish().map_err(e)?;
    buf.flush().map_err(e)?;
    drop(buf);
    std::fs::rename(&tmp, &initramfs).map_err(|e| RamdiskError::io(&initramfs, e))?;
    let kernel = out.join("ironic-agent.kernel");
    if kernel_src != kernel {
        std::fs::copy(&kernel_src, &kernel).map_err(|e| RamdiskError::io(&kernel, e))?;
    }
    let iso = match (&boot_files, &opts.iso_cmdline) {
        (Some(files), Some(cmdline)) => {
            progress.step("ironic-agent.iso (BIOS and UEFI)");
            files.save(out)?;
            let _ = std::fs::remove_dir_all(out.join(".grub"));
            let path = iso::iso_path(out);
            files.iso(&kernel, &initramfs, cmdline, "IRONIC_AGENT", &[], &path)?;
            Some(path)
        }
        _ => None,
    };
    Ok(BuildReport {
        kernel,
        initramfs,
        kernel_version: version,
        modules: order.len(),
        not_included,
        tools: tools::TOOLS
            .iter()
            .chain(if opts.with_burnin {
                tools::BURNIN_TOOLS
            } else {
                &[]
            })
            .filter(|_| !opts.without_tools)
            .map(|t| t.name.to_string())
            .collect(),
        burnin: opts.with_burnin && !opts.without_tools,
        iso,
        elapsed: started.elapsed(),
    })
}

/// PID 1 of the ramdisk: modules, the network (static from
/// `/openstack/latest/network_data.json` when the node's ISO brought one, else
/// DHCP on the `BOOTIF` interface, else on every interface), then the agent; when the agent stops, the machine
/// powers off (IPA's ramdisk does the same through systemd).
pub const INIT: &str = r#"#!/bin/sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run/ironic-agent
mount -t devpts devpts /dev/pts
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
echo "ironic-rs ramdisk: $(cat /etc/ironic-ramdisk)"
for m in $(cat /etc/modules.order); do
  insmod /lib/modules/$m.ko 2>/dev/null
done
echo "ironic-rs ramdisk: modules: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
echo "ironic-rs ramdisk: md $(head -n1 /proc/mdstat 2>/dev/null)"
if [ -d /sys/firmware/efi ]; then
  mount -t efivarfs efivarfs /sys/firmware/efi/efivars 2>/dev/null
  echo "ironic-rs ramdisk: booted in UEFI mode"
else
  echo "ironic-rs ramdisk: booted in BIOS mode"
fi
# Each tool runs once (its libraries are all there); full paths, because
# busybox's shell runs its own applets (mke2fs, blkdiscard) before PATH.
while read -r tool arg; do
  echo "ironic-rs ramdisk: tool ${tool##*/}: $("$tool" $arg 2>&1 | head -n1)"
done < /etc/ironic-tools
ip link set lo up
param() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p; s/^$1=\([^[:space:]]*\).*/\1/p" /proc/cmdline | head -n1; }
export RUST_LOG=$(param ipa-log-level)
mac=$(param BOOTIF | sed 's/^01-//' | tr 'A-F-' 'a-f:')
devs=""
static=""
# The node's network data (virtual media ISOs carry it, GRUB hands it over):
# static addresses as it says, DHCP only on the links it names for DHCP.
nd=/openstack/latest/network_data.json
if [ -f $nd ]; then
  if dhcp=$(/bin/ironic-agent --apply-network-data $nd); then
    static=1
    devs=$(echo $dhcp)
    echo "ironic-rs ramdisk: network configured from $nd"
  else
    echo "ironic-rs ramdisk: $nd could not be applied: DHCP instead"
  fi
fi
# Devices (NICs) may take a moment to appear after their module loads.
n=0
[ -n "$static" ] && n=20
while [ $n -lt 20 ]; do
  for d in /sys/class/net/*; do
    name=${d##*/}
    [ "$name" = lo ] && continue
    if [ -n "$mac" ]; then
      [ "$(cat $d/address 2>/dev/null)" = "$mac" ] && devs=$name
    else
      devs="$devs $name"
    fi
  done
  [ -n "$devs" ] && break
  n=$((n+1)); sleep 0.5
done
for dev in $devs; do
  ip link set $dev up
  udhcpc -i $dev -b -t 10 -T 2 -s /etc/udhcpc.sh -q >/dev/null 2>&1 &
done
n=0
[ -n "$static" ] && [ -z "$devs" ] && n=120
until [ $n -ge 120 ] || ip -4 -o addr show scope global | grep -q inet; do
  n=$((n+1)); [ $n -ge 120 ] && break
  sleep 0.5
done
echo "ironic-rs ramdisk: $(ip -4 -o addr show scope global | awk '{print $2, $4}' | tr '\n' ' ')disks: $(ls /sys/block | tr '\n' ' ')"
RUST_LOG=${RUST_LOG:-info} /bin/ironic-agent
echo "ironic-rs ramdisk: ironic-agent exited with status $?"
poweroff -f
"#;

const UDHCPC: &str = "#!/bin/sh\n\
case \"$1\" in bound|renew)\n\
  ip addr flush dev \"$interface\"\n\
  ip addr add \"$ip/${mask:-24}\" dev \"$interface\"\n\
  [ -n \"$router\" ] && ip route replace default via ${router%% *} dev \"$interface\"\n\
  [ -n \"$dns\" ] && for d in $dns; do echo \"nameserver $d\"; done > /etc/resolv.conf\n\
  ;;\n\
esac\n\
exit 0\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_binaries_and_non_elf_files_are_told_apart() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        // Test binaries are dynamically linked against glibc.
        assert_eq!(is_dynamic(&me), Some(true));
        assert_eq!(is_dynamic(b"#!/bin/sh\n"), None);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent");
        std::fs::write(&p, &me).unwrap();
        let e = static_binary(&p, "the agent", AGENT_HOW)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dynamically linked") && e.contains("crt-static"),
            "{e}"
        );
    }
}
