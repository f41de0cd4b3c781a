//! The dynamically linked tools the agent runs ([`TOOLS`]: GRUB, efibootmgr,
//! e2fsprogs, xfsprogs, parted, util-linux, mdadm, hdparm, nvme-cli,
//! smartmontools; with `--with-burnin` also [`BURNIN_TOOLS`]: stress-ng, fio),
//! taken from the build host with the shared libraries `ldd` names, as dracut
//! and initramfs-tools do.
//!
//! The burn-in tools are left out unless asked for: Debian's fio links the
//! libraries of every storage engine it has (Ceph's librados/librbd,
//! GlusterFS, RDMA, PMDK, NBD, and through them ICU's 31 MiB of data), and
//! stress-ng Mesa's EGL/GBM and Intel's IPsec library: about 100 MiB of
//! libraries, 34 MiB of the compressed initramfs, for steps only a burn-in
//! runs.
//!
//! The agent's `install_bootloader` builds GRUB with the ramdisk's own
//! `grub-mkimage` and modules (`/usr/lib/grub/i386-pc`, `/usr/lib/grub/x86_64-efi`)
//! and adds UEFI boot entries with `efibootmgr`; its steps run the others (a tool
//! missing on a real server is a step that fails).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::RamdiskError;

/// A program the ramdisk ships, the Debian package with it and how to ask its version.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    /// Its name (looked up in `/usr/sbin`, `/usr/bin`, `/sbin`, `/bin`; it goes to
    /// the same directory in the ramdisk).
    pub name: &'static str,
    /// Other names it answers to in the ramdisk (symbolic links beside it).
    pub aliases: &'static [&'static str],
    /// The Debian package that installs it.
    pub package: &'static str,
    /// The argument that makes it print its version (the ramdisk's `/init` runs
    /// each tool once with it, which proves its libraries are all there).
    pub version_arg: &'static str,
}

const fn tool(name: &'static str, package: &'static str, version_arg: &'static str) -> Tool {
    Tool {
        name,
        aliases: &[],
        package,
        version_arg,
    }
}

/// The programs the agent runs besides busybox: the bootloader of partition
/// images and UEFI boot entries (`install_bootloader`), file systems (ephemeral
/// partitions, `inject_files`), partition table rescans, software RAID
/// (`mdadm`: create/delete_configuration, RAID root volumes), `erase_devices`
/// (NVMe format, ATA security erase, discard, signatures) and SMART.
/// busybox has applets of some of these names (`blkdiscard`, `blockdev`,
/// `mke2fs`) without the options the agent passes, so the real ones come first
/// in `PATH`.
pub const TOOLS: &[Tool] = &[
    tool("grub-mkimage", "grub-common", "--version"),
    tool("efibootmgr", "efibootmgr", "--version"),
    Tool {
        name: "mke2fs",
        aliases: &["mkfs.ext2", "mkfs.ext3", "mkfs.ext4"],
        package: "e2fsprogs",
        version_arg: "-V",
    },
    tool("debugfs", "e2fsprogs", "-V"),
    tool("mkfs.xfs", "xfsprogs", "-V"),
    tool("partprobe", "parted", "--version"),
    tool("parted", "parted", "--version"),
    tool("blkdiscard", "util-linux", "-V"),
    tool("blockdev", "util-linux", "-V"),
    tool("wipefs", "util-linux", "-V"),
    tool("lsblk", "util-linux", "-V"),
    tool("mdadm", "mdadm", "--version"),
    tool("hdparm", "hdparm", "-V"),
    tool("nvme", "nvme-cli", "version"),
    tool("smartctl", "smartmontools", "--version"),
];

/// The burn-in steps' programs (`burnin_cpu`, `burnin_memory`: stress-ng;
/// `burnin_disk`, `burnin_network`: fio), in the ramdisk only when built with
/// `--with-burnin` (see the module's documentation for their size). Without
/// them a burn-in step fails, naming the tool and the option.
pub const BURNIN_TOOLS: &[Tool] = &[
    tool("stress-ng", "stress-ng", "--version"),
    tool("fio", "fio", "--version"),
];

/// The list `/init` reads to run each tool once (`path version-arg` lines).
pub fn version_probes(payload: &Payload) -> String {
    let mut s = String::new();
    for t in TOOLS.iter().chain(BURNIN_TOOLS) {
        if let Some((rel, _, _)) = payload
            .files
            .iter()
            .find(|(rel, _, _)| rel.rsplit('/').next() == Some(t.name))
        {
            s.push_str(&format!("/{rel} {}\n", t.version_arg));
        }
    }
    s
}

/// GRUB's module directories (`grub-mkimage -d`) and their Debian packages.
pub const GRUB_DIRS: &[(&str, &str)] = &[
    ("/usr/lib/grub/i386-pc", "grub-pc-bin"),
    ("/usr/lib/grub/x86_64-efi", "grub-efi-amd64-bin"),
];

/// What goes into the initramfs: `(path in the ramdisk, file on the host, mode)`
/// and `(link, target)` symbolic links.
#[derive(Debug, Default)]
pub struct Payload {
    /// Regular files.
    pub files: Vec<(String, PathBuf, u32)>,
    /// Symbolic links.
    pub links: Vec<(String, String)>,
}

impl Payload {
    /// Every directory the files and links need, parents first.
    pub fn dirs(&self) -> Vec<String> {
        let mut dirs = BTreeSet::new();
        for p in self
            .files
            .iter()
            .map(|f| f.0.as_str())
            .chain(self.links.iter().map(|l| l.0.as_str()))
        {
            let mut cur = String::new();
            let parts: Vec<&str> = p.split('/').collect();
            for part in &parts[..parts.len().saturating_sub(1)] {
                if !cur.is_empty() {
                    cur.push('/');
                }
                cur.push_str(part);
                dirs.insert(cur.clone());
            }
        }
        // BTreeSet order puts "a" before "a/b".
        dirs.into_iter().collect()
    }
}

/// The tool's path on the host and its directory relative to `root`.
fn find(name: &str, root: &Path) -> Option<(PathBuf, &'static str)> {
    ["usr/sbin", "usr/bin", "sbin", "bin"]
        .iter()
        .map(|d| (root.join(d).join(name), *d))
        .find(|(p, _)| p.is_file())
}

/// The shared libraries (and the dynamic loader) `ldd` says `bin` loads.
pub fn libraries(bin: &Path) -> Result<Vec<PathBuf>, RamdiskError> {
    let out = Command::new("ldd").arg(bin).output().map_err(|e| {
        RamdiskError::Tool(format!(
            "ldd could not run ({e}); install libc-bin (it lists the libraries of {})",
            bin.display()
        ))
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // A static executable: nothing to add.
        if text.contains("not a dynamic executable")
            || String::from_utf8_lossy(&out.stderr).contains("not a dynamic executable")
        {
            return Ok(Vec::new());
        }
        return Err(RamdiskError::Tool(format!(
            "ldd {} failed: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    parse_ldd(&text).map_err(|lib| {
        RamdiskError::Tool(format!(
            "{} needs {lib}, which is not installed on this host",
            bin.display()
        ))
    })
}

/// The paths in `ldd`'s output; `Err(name)` for a library it did not find.
pub fn parse_ldd(text: &str) -> Result<Vec<PathBuf>, String> {
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let (name, rest) = match line.split_once("=>") {
            Some((n, r)) => (n.trim(), r.trim()),
            None => ("", line),
        };
        if rest.starts_with("not found") {
            return Err(name.to_owned());
        }
        let path = rest.split_whitespace().next().unwrap_or("");
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

/// Collect the tools (with `burnin`, [`BURNIN_TOOLS`] too), their libraries
/// and GRUB's modules from the host (`root` is `/` except in tests). A missing
/// one is an error naming its package.
pub fn collect(root: &Path, burnin: bool) -> Result<Payload, RamdiskError> {
    let mut payload = Payload::default();
    let mut missing = BTreeSet::new();
    let mut libs = BTreeSet::new();
    let burnin_tools = if burnin { BURNIN_TOOLS } else { &[] };
    for tool in TOOLS.iter().chain(burnin_tools) {
        let Some((path, dir)) = find(tool.name, root) else {
            missing.insert(tool.package);
            continue;
        };
        libs.extend(libraries(&path)?);
        payload
            .files
            .push((format!("{dir}/{}", tool.name), path, 0o755));
        for alias in tool.aliases {
            payload
                .links
                .push((format!("{dir}/{alias}"), tool.name.to_owned()));
        }
    }
    for (dir, package) in GRUB_DIRS {
        let host = root.join(dir.trim_start_matches('/'));
        if !host.join("kernel.img").is_file() {
            missing.insert(package);
            continue;
        }
        let entries = std::fs::read_dir(&host).map_err(|e| RamdiskError::io(&host, e))?;
        // The modules and lists; not `monolithic/` (prebuilt signed images
        // grub-mkimage does not use).
        let mut names: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        for p in names {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            payload.files.push((
                format!("{}/{name}", dir.trim_start_matches('/')),
                p.clone(),
                0o644,
            ));
        }
    }
    if !missing.is_empty() {
        let list: Vec<&str> = missing.into_iter().collect();
        return Err(RamdiskError::Tool(format!(
            "the agent's tools are not installed on this host: `apt-get install {}` \
             (or build without them: --without-tools; partition images, UEFI boot \
             entries, disk erasure and burn-in then fail on the machine)",
            list.join(" ")
        )));
    }
    for lib in libs {
        let rel = lib.to_string_lossy().trim_start_matches('/').to_owned();
        let host = root.join(&rel);
        payload.files.push((rel, host, 0o755));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_is_read_and_a_missing_library_named() {
        let ok = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                  \tlibefivar.so.1 => /lib/x86_64-linux-gnu/libefivar.so.1 (0x00007f28)\n\
                  \t/lib64/ld-linux-x86-64.so.2 (0x00007f28)\n";
        assert_eq!(
            parse_ldd(ok).unwrap(),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libefivar.so.1"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        let bad = "\tlibpopt.so.0 => not found\n";
        assert_eq!(parse_ldd(bad).unwrap_err(), "libpopt.so.0");
    }

    #[test]
    fn a_host_without_the_tools_gets_the_packages_to_install() {
        let root = tempfile::tempdir().unwrap();
        let e = collect(root.path(), true).unwrap_err().to_string();
        for p in [
            "grub-common",
            "efibootmgr",
            "e2fsprogs",
            "grub-pc-bin",
            "grub-efi-amd64-bin",
            "xfsprogs",
            "parted",
            "util-linux",
            "mdadm",
            "hdparm",
            "nvme-cli",
            "smartmontools",
            "stress-ng",
            "fio",
        ] {
            assert!(e.contains(p), "{e}");
        }
        assert!(e.contains("--without-tools"), "{e}");
        // Without --with-burnin, stress-ng and fio are not needed.
        let e = collect(root.path(), false).unwrap_err().to_string();
        assert!(
            e.contains("grub-common") && e.contains("smartmontools"),
            "{e}"
        );
        assert!(!e.contains("stress-ng") && !e.contains("fio"), "{e}");
    }

    #[test]
    fn parent_directories_come_before_their_children() {
        let p = Payload {
            files: vec![("usr/lib/grub/i386-pc/boot.img".into(), "/x".into(), 0o644)],
            links: vec![("usr/sbin/mkfs.ext4".into(), "mke2fs".into())],
        };
        assert_eq!(
            p.dirs(),
            vec![
                "usr",
                "usr/lib",
                "usr/lib/grub",
                "usr/lib/grub/i386-pc",
                "usr/sbin"
            ]
        );
    }
}
