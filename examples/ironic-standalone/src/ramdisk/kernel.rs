//! The kernel of the ramdisk: checking that a file is an x86 Linux kernel (bzImage),
//! reading its version, fetching Debian's with `apt-get download`, and picking
//! modules with their dependencies from `modules.dep`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::RamdiskError;

/// Check the x86 boot protocol header of a bzImage (`0xAA55` at 0x1FE, `HdrS` at
/// 0x202) and return the kernel's version string (its first word), if it has one.
pub fn check_bzimage(path: &Path) -> Result<Option<String>, RamdiskError> {
    let data = std::fs::read(path).map_err(|e| RamdiskError::io(path, e))?;
    let not = |why: &str| RamdiskError::NotAKernel {
        path: path.to_owned(),
        why: why.to_owned(),
    };
    if data.len() < 0x1000 {
        return Err(not("it is too small"));
    }
    if data[0x1FE..0x200] != [0x55, 0xAA] || &data[0x202..0x206] != b"HdrS" {
        return Err(not(
            "it has no x86 boot protocol header (0xAA55 at 0x1FE, \"HdrS\" at 0x202): give a bzImage such as /boot/vmlinuz-*",
        ));
    }
    // kernel_version: a pointer (minus 0x200) to a NUL-terminated string.
    let ptr = u16::from_le_bytes([data[0x20E], data[0x20F]]) as usize;
    if ptr == 0 {
        return Ok(None);
    }
    let start = ptr + 0x200;
    let Some(rest) = data.get(start..) else {
        return Ok(None);
    };
    let end = rest.iter().position(|b| *b == 0).unwrap_or(0).min(256);
    let text = String::from_utf8_lossy(&rest[..end]);
    Ok(text.split_whitespace().next().map(str::to_owned))
}

/// Debian's current amd64 kernel, unpacked in `cache`: `(vmlinuz, modules dir)`.
/// Reuses what an earlier run fetched.
pub fn fetch_debian(cache: &Path) -> Result<(PathBuf, PathBuf), RamdiskError> {
    let vmlinuz = cache.join("vmlinuz");
    let modules = cache.join("modules");
    if vmlinuz.is_file() && modules.join("modules.dep").is_file() {
        return Ok((vmlinuz, modules));
    }
    std::fs::create_dir_all(cache).map_err(|e| RamdiskError::io(cache, e))?;
    let pkg = debian_kernel_package()?;
    let unpack = cache.join("unpacked");
    let _ = std::fs::remove_dir_all(&unpack);
    run(
        Command::new("apt-get")
            .arg("download")
            .arg(&pkg)
            .current_dir(cache),
        "apt-get download (Debian's kernel package)",
    )?;
    let deb = std::fs::read_dir(cache)
        .map_err(|e| RamdiskError::io(cache, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&pkg) && n.ends_with(".deb"))
        })
        .ok_or_else(|| RamdiskError::Tool(format!("apt-get download {pkg} left no .deb")))?;
    run(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpack),
        "dpkg-deb -x",
    )?;
    let boot = unpack.join("boot");
    let kernel = std::fs::read_dir(&boot)
        .map_err(|e| RamdiskError::io(&boot, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .ok_or_else(|| RamdiskError::Tool(format!("{pkg} has no /boot/vmlinuz-*")))?;
    let libmods = ["usr/lib/modules", "lib/modules"]
        .iter()
        .map(|d| unpack.join(d))
        .find(|d| d.is_dir())
        .ok_or_else(|| RamdiskError::Tool(format!("{pkg} has no modules directory")))?;
    let version_dir = std::fs::read_dir(&libmods)
        .map_err(|e| RamdiskError::io(&libmods, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.is_dir())
        .ok_or_else(|| RamdiskError::Tool(format!("{pkg} has no modules")))?;
    // depmod's files are made by the package's postinst, not shipped: make them.
    if !version_dir.join("modules.dep").is_file() {
        let version = version_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let base = libmods
            .parent()
            .and_then(Path::parent)
            .unwrap_or(&unpack)
            .to_owned();
        run(
            Command::new("depmod").arg("-b").arg(&base).arg(&version),
            "depmod (package kmod)",
        )?;
    }
    let _ = std::fs::remove_dir_all(&modules);
    std::fs::rename(&version_dir, &modules).map_err(|e| RamdiskError::io(&modules, e))?;
    std::fs::rename(&kernel, &vmlinuz).map_err(|e| RamdiskError::io(&vmlinuz, e))?;
    let _ = std::fs::remove_dir_all(&unpack);
    let _ = std::fs::remove_file(&deb);
    std::fs::write(cache.join("package"), &pkg).map_err(|e| RamdiskError::io(cache, e))?;
    Ok((vmlinuz, modules))
}

fn debian_kernel_package() -> Result<String, RamdiskError> {
    let find = || -> Option<String> {
        let out = Command::new("apt-cache")
            .args(["depends", "linux-image-amd64"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .find(|p| p.starts_with("linux-image-") && p.ends_with("-amd64"))
            .map(str::to_owned)
    };
    if let Some(p) = find() {
        return Ok(p);
    }
    let _ = Command::new("apt-get").args(["update", "-qq"]).output();
    find().ok_or_else(|| {
        RamdiskError::Tool(
            "cannot find Debian's kernel package (apt-cache depends linux-image-amd64); give one with --kernel PATH --modules DIR".into(),
        )
    })
}

pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<(), RamdiskError> {
    let out = cmd
        .output()
        .map_err(|e| RamdiskError::Tool(format!("{what}: cannot run {cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(RamdiskError::Tool(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The modules of a kernel (its `/lib/modules/<version>` directory).
#[derive(Debug)]
pub struct ModuleTree {
    dir: PathBuf,
    /// name (underscores) -> (relative path, dependencies' relative paths)
    deps: BTreeMap<String, (String, Vec<String>)>,
    builtin: BTreeSet<String>,
}

/// `virtio-net` and `virtio_net` name the same module.
pub fn norm(name: &str) -> String {
    name.replace('-', "_")
}

fn module_name(rel: &str) -> String {
    let file = rel.rsplit('/').next().unwrap_or(rel);
    let base = file.split(".ko").next().unwrap_or(file);
    norm(base)
}

impl ModuleTree {
    /// Read `modules.dep` (and `modules.builtin`) of `dir`.
    pub fn open(dir: &Path) -> Result<ModuleTree, RamdiskError> {
        let dep_path = dir.join("modules.dep");
        let text =
            std::fs::read_to_string(&dep_path).map_err(|e| RamdiskError::io(&dep_path, e))?;
        let mut deps = BTreeMap::new();
        for line in text.lines() {
            let Some((module, rest)) = line.split_once(':') else {
                continue;
            };
            let module = module.trim();
            deps.insert(
                module_name(module),
                (
                    module.to_owned(),
                    rest.split_whitespace().map(str::to_owned).collect(),
                ),
            );
        }
        let builtin = std::fs::read_to_string(dir.join("modules.builtin"))
            .unwrap_or_default()
            .lines()
            .map(module_name)
            .collect();
        Ok(ModuleTree {
            dir: dir.to_owned(),
            deps,
            builtin,
        })
    }

    /// Whether the kernel has `name` built in.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&norm(name))
    }

    /// Whether `name` is a loadable module of this kernel.
    pub fn has(&self, name: &str) -> bool {
        self.deps.contains_key(&norm(name))
    }

    /// `names` and everything they depend on, dependencies first (an order in
    /// which `insmod` succeeds); relative paths.
    pub fn resolve<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        for n in names {
            if let Some((rel, _)) = self.deps.get(&norm(n)) {
                self.visit(rel, &mut seen, &mut order);
            }
        }
        order
    }

    fn visit(&self, rel: &str, seen: &mut BTreeSet<String>, order: &mut Vec<String>) {
        if !seen.insert(rel.to_owned()) {
            return;
        }
        if let Some((_, deps)) = self.deps.get(&module_name(rel)) {
            for d in deps {
                self.visit(d, seen, order);
            }
        }
        order.push(rel.to_owned());
    }

    /// The content of a module, uncompressed (`.ko.xz` / `.ko.zst` / `.ko.gz` are
    /// unpacked with `xz` / `zstd` / `gzip`).
    pub fn read(&self, rel: &str) -> Result<Vec<u8>, RamdiskError> {
        let path = self.dir.join(rel);
        let tool = if rel.ends_with(".xz") {
            Some(("xz", "xz-utils"))
        } else if rel.ends_with(".zst") {
            Some(("zstd", "zstd"))
        } else if rel.ends_with(".gz") {
            Some(("gzip", "gzip"))
        } else {
            None
        };
        match tool {
            None => std::fs::read(&path).map_err(|e| RamdiskError::io(&path, e)),
            Some((t, pkg)) => {
                let out = Command::new(t)
                    .arg("-dc")
                    .arg(&path)
                    .output()
                    .map_err(|e| {
                        RamdiskError::Tool(format!(
                            "{}: cannot run {t} (apt-get install {pkg}): {e}",
                            path.display()
                        ))
                    })?;
                if !out.status.success() {
                    return Err(RamdiskError::Tool(format!(
                        "{t} -dc {} failed: {}",
                        path.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
                Ok(out.stdout)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_first_and_names_are_normalised() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("modules.dep"),
            "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n\
             kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n\
             kernel/net/core/failover.ko:\n\
             kernel/drivers/nvme/host/nvme.ko.xz: kernel/drivers/nvme/host/nvme-core.ko.xz\n\
             kernel/drivers/nvme/host/nvme-core.ko.xz:\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("modules.builtin"),
            "kernel/drivers/ata/ahci.ko\n",
        )
        .unwrap();
        let t = ModuleTree::open(dir.path()).unwrap();
        assert_eq!(
            t.resolve(["virtio-net", "nvme", "nope"]),
            [
                "kernel/net/core/failover.ko",
                "kernel/drivers/net/net_failover.ko",
                "kernel/drivers/net/virtio_net.ko",
                "kernel/drivers/nvme/host/nvme-core.ko.xz",
                "kernel/drivers/nvme/host/nvme.ko.xz",
            ]
        );
        assert!(t.is_builtin("ahci") && !t.has("ahci") && t.has("nvme_core"));
    }

    #[test]
    fn a_file_that_is_not_a_kernel_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vmlinuz");
        std::fs::write(&p, vec![0u8; 8192]).unwrap();
        let e = check_bzimage(&p).unwrap_err().to_string();
        assert!(e.contains("vmlinuz") && e.contains("HdrS"), "{e}");
        let mut k = vec![0u8; 8192];
        k[0x1FE] = 0x55;
        k[0x1FF] = 0xAA;
        k[0x202..0x206].copy_from_slice(b"HdrS");
        k[0x20E..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        k[0x300..0x310].copy_from_slice(b"6.1.0-9-amd64 (x");
        std::fs::write(&p, &k).unwrap();
        assert_eq!(check_bzimage(&p).unwrap().as_deref(), Some("6.1.0-9-amd64"));
    }
}
