//! The deploy ramdisk as a bootable ISO (virtual media, USB, a CD): GRUB for BIOS
//! (El Torito "no emulation", as `grub-mkrescue`) and for UEFI (an EFI system
//! partition image in a second El Torito entry), both built with the host's
//! `grub-mkimage` and loading the kernel and initramfs from the ISO with the
//! kernel command line in `/boot/grub/grub.cfg`.
//!
//! The two GRUB images find the ISO by a file only it has and read
//! `/boot/grub/grub.cfg` from it, so a per-node ISO (its own command line: the
//! API URL, the node's parameters) only needs another `grub.cfg`: see
//! [`BootFiles::iso`]. Files a node's ISO carries for the ramdisk (Ironic's
//! `openstack/latest/network_data.json`) are on the ISO and also, in a small
//! uncompressed cpio archive ([`NODE_CPIO`]), handed to the kernel by GRUB as a
//! second initramfs, so the ramdisk finds them at the same path without a
//! driver for the CD. (GRUB's own `initrd newc:NAME:FILE` would do it without
//! the archive, but GRUB 2.06, Debian 12's, writes names without their NUL and
//! Linux 6.1 rejects the archive: "initramfs name without nulterm".)
//!
//! The BIOS image holds only what finds the ISO (`biosdisk`, `iso9660`,
//! `search`); GRUB loads the rest (`normal`, `linux`, `serial`, ...) from
//! `/boot/grub/i386-pc/` on the ISO, as `grub-mkrescue` does. With every module
//! built in, the image no longer fits below the BIOS disk buffer at 0x68000 and
//! GRUB stops with "incompatible license" (a module overwritten by the first
//! disk read). The UEFI image has no such limit and holds every module it needs.

use std::path::{Path, PathBuf};
use std::process::Command;

use ironic_iso::{IsoBuilder, fat_image};

use super::RamdiskError;

/// The file the GRUB images look for to find the ISO they boot from.
pub const MARKER: &str = "boot/grub/ironic-rs.ramdisk";

/// Where the kernel and initramfs are on the ISO.
pub const KERNEL: &str = "ironic-agent.kernel";
/// See [`KERNEL`].
pub const INITRAMFS: &str = "ironic-agent.initramfs";
/// The second initramfs of a node's ISO: the files it carries for the ramdisk.
pub const NODE_CPIO: &str = "ironic-node.cpio";

/// Modules built into the BIOS image; the others come from the ISO.
const BIOS_CORE_MODULES: &[&str] = &["biosdisk", "iso9660", "search", "search_fs_file"];

/// Modules built into the UEFI image.
const EFI_MODULES: &[&str] = &[
    "fat",
    "iso9660",
    "part_msdos",
    "part_gpt",
    "search",
    "search_fs_file",
    "configfile",
    "normal",
    "linux",
    "echo",
    "test",
    "gzio",
    "serial",
    "terminal",
    "all_video",
    "sleep",
    "reboot",
    "halt",
];

/// GRUB's configuration built into the UEFI image: find the ISO, read its grub.cfg.
pub fn embedded_config() -> String {
    format!(
        "search --no-floppy --set=root --file /{MARKER}\n\
         set prefix=($root)/boot/grub\n\
         configfile ($root)/boot/grub/grub.cfg\n\
         echo \"ironic-rs: /{MARKER} not found on any disk\"\n"
    )
}

/// GRUB's configuration built into the BIOS image: find the ISO and set the
/// prefix; GRUB then loads `normal` from the ISO, which reads `grub.cfg` there.
pub fn embedded_config_bios() -> String {
    format!(
        "search --no-floppy --set=root --file /{MARKER}\n\
         set prefix=($root)/boot/grub\n"
    )
}

/// The kernel command line as separate parameters: split at white space
/// outside double quotes, the quotes removed (`a="b c"` is the one parameter
/// `a=b c`), as the kernel itself reads it.
pub fn kernel_args(cmdline: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    args.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c if c.is_control() => {}
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        args.push(cur);
    }
    args
}

/// The `grub.cfg` that boots the ramdisk with `cmdline`; the serial console and
/// the screen both show the menu.
///
/// Each kernel parameter is its own GRUB word in single quotes: GRUB's `linux`
/// puts double quotes around a word with a space when it builds the kernel's
/// command line, so the whole line as one word would reach the kernel as a
/// single parameter (no `console=`, no `ipa-api-url=`: a silent boot).
///
/// With `node_cpio`, GRUB also loads [`NODE_CPIO`] as a second initramfs.
pub fn grub_cfg(cmdline: &str, node_cpio: bool) -> String {
    // GRUB's quoting: single quotes keep everything but a single quote.
    let words: Vec<String> = kernel_args(cmdline)
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    format!(
        "serial --unit=0 --speed=115200\n\
         terminal_input console serial\n\
         terminal_output console serial\n\
         set timeout=1\n\
         set default=0\n\
         menuentry 'ironic-rs deploy ramdisk' {{\n\
         \x20 echo 'Loading the kernel...'\n\
         \x20 linux /{KERNEL} {}\n\
         \x20 echo 'Loading the initramfs...'\n\
         \x20 initrd /{INITRAMFS}{}\n\
         }}\n",
        words.join(" "),
        if node_cpio {
            format!(" /{NODE_CPIO}")
        } else {
            String::new()
        }
    )
}

/// The GRUB images an ISO boots with.
#[derive(Clone)]
pub struct BootFiles {
    /// GRUB for BIOS (`grub-mkimage -O i386-pc-eltorito`).
    pub eltorito: Vec<u8>,
    /// The EFI system partition image holding `EFI/BOOT/BOOTX64.EFI`.
    pub esp: Vec<u8>,
    /// GRUB's BIOS modules and lists (`*.mod`, `*.lst`), which the BIOS image
    /// loads from `/boot/grub/i386-pc/` on the ISO.
    pub bios_modules: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for BootFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootFiles")
            .field("eltorito_bytes", &self.eltorito.len())
            .field("esp_bytes", &self.esp.len())
            .field("bios_modules", &self.bios_modules.len())
            .finish()
    }
}

/// GRUB's BIOS module directory.
const BIOS_DIR: &str = "/usr/lib/grub/i386-pc";

fn read_modules(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, RamdiskError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| RamdiskError::io(dir, e))? {
        let p = e.map_err(|e| RamdiskError::io(dir, e))?.path();
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if (name.ends_with(".mod") || name.ends_with(".lst")) && p.is_file() {
            let data = std::fs::read(&p).map_err(|e| RamdiskError::io(&p, e))?;
            out.push((name.to_owned(), data));
        }
    }
    out.sort();
    if !out.iter().any(|(n, _)| n == "normal.mod") {
        return Err(RamdiskError::Tool(format!(
            "GRUB's BIOS modules are not in {}: apt-get install grub-pc-bin",
            dir.display()
        )));
    }
    Ok(out)
}

fn mkimage(format: &str, dir: &str, mods: &[&str], cfg: &Path) -> Result<Vec<u8>, RamdiskError> {
    let tmp = cfg.with_extension(format);
    let out = Command::new("grub-mkimage")
        .args(["-d", dir, "-O", format, "-p", "/boot/grub", "-c"])
        .arg(cfg)
        .arg("-o")
        .arg(&tmp)
        .args(mods)
        .output()
        .map_err(|e| {
            RamdiskError::Tool(format!(
                "grub-mkimage could not run ({e}): apt-get install grub-common grub-pc-bin grub-efi-amd64-bin"
            ))
        })?;
    if !out.status.success() {
        return Err(RamdiskError::Tool(format!(
            "grub-mkimage -O {format} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let data = std::fs::read(&tmp).map_err(|e| RamdiskError::io(&tmp, e))?;
    let _ = std::fs::remove_file(&tmp);
    Ok(data)
}

impl BootFiles {
    /// Build both images with the host's `grub-mkimage` (working files in `tmp`).
    pub fn build(tmp: &Path) -> Result<BootFiles, RamdiskError> {
        for (dir, pkg) in super::tools::GRUB_DIRS {
            if !Path::new(dir).join("kernel.img").is_file() {
                return Err(RamdiskError::Tool(format!(
                    "GRUB's modules are not in {dir}: apt-get install {pkg} (the ISO boots with GRUB)"
                )));
            }
        }
        std::fs::create_dir_all(tmp).map_err(|e| RamdiskError::io(tmp, e))?;
        let cfg = tmp.join("ironic-rs-embedded.cfg");
        std::fs::write(&cfg, embedded_config()).map_err(|e| RamdiskError::io(&cfg, e))?;
        let bios_cfg = tmp.join("ironic-rs-embedded-bios.cfg");
        std::fs::write(&bios_cfg, embedded_config_bios())
            .map_err(|e| RamdiskError::io(&bios_cfg, e))?;
        let eltorito = mkimage("i386-pc-eltorito", BIOS_DIR, BIOS_CORE_MODULES, &bios_cfg)?;
        let efi = mkimage("x86_64-efi", "/usr/lib/grub/x86_64-efi", EFI_MODULES, &cfg)?;
        let _ = std::fs::remove_file(&cfg);
        let _ = std::fs::remove_file(&bios_cfg);
        let esp = fat_image("EFIBOOT", &[("EFI/BOOT/BOOTX64.EFI", &efi)])
            .map_err(|e| RamdiskError::Tool(e.to_string()))?;
        let bios_modules = read_modules(Path::new(BIOS_DIR))?;
        Ok(BootFiles {
            eltorito,
            esp,
            bios_modules,
        })
    }

    /// Read the images `ironic ramdisk build` left in `dir`.
    pub fn load(dir: &Path) -> Result<BootFiles, RamdiskError> {
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read(&p).map_err(|e| RamdiskError::io(&p, e))
        };
        Ok(BootFiles {
            eltorito: read(ELTORITO_FILE)?,
            esp: read(ESP_FILE)?,
            bios_modules: read_modules(&dir.join(BIOS_MODULES_DIR))?,
        })
    }

    /// Save them beside the kernel, for per-node ISOs.
    pub fn save(&self, dir: &Path) -> Result<(), RamdiskError> {
        for (name, data) in [(ELTORITO_FILE, &self.eltorito), (ESP_FILE, &self.esp)] {
            let p = dir.join(name);
            std::fs::write(&p, data).map_err(|e| RamdiskError::io(&p, e))?;
        }
        let mods = dir.join(BIOS_MODULES_DIR);
        std::fs::create_dir_all(&mods).map_err(|e| RamdiskError::io(&mods, e))?;
        for (name, data) in &self.bios_modules {
            let p = mods.join(name);
            std::fs::write(&p, data).map_err(|e| RamdiskError::io(&p, e))?;
        }
        Ok(())
    }

    /// An ISO that boots `kernel` + `initramfs` with `cmdline` in BIOS and UEFI
    /// mode, labelled `label`, written to `out`; returns its size. Each of
    /// `inject` (`(path, content)`) is on the ISO at `path` and in the
    /// ramdisk's file system at `/path` (through [`NODE_CPIO`]).
    pub fn iso(
        &self,
        kernel: &Path,
        initramfs: &Path,
        cmdline: &str,
        label: &str,
        inject: &[(&str, Vec<u8>)],
        out: &Path,
    ) -> Result<u64, RamdiskError> {
        let e = |e: ironic_iso::IsoError| {
            RamdiskError::Tool(format!("building {}: {e}", out.display()))
        };
        let mut iso = IsoBuilder::new(label).map_err(e)?;
        iso.publisher("ironic-rs");
        iso.add_path(KERNEL, kernel).map_err(e)?;
        iso.add_path(INITRAMFS, initramfs).map_err(e)?;
        iso.add_file(
            "boot/grub/grub.cfg",
            grub_cfg(cmdline, !inject.is_empty()).into_bytes(),
        )
        .map_err(e)?;
        for (path, data) in inject {
            iso.add_file(path.trim_start_matches('/'), data.clone())
                .map_err(e)?;
        }
        if !inject.is_empty() {
            iso.add_file(NODE_CPIO, node_cpio(inject)?).map_err(e)?;
        }
        iso.add_file(MARKER, label.as_bytes().to_vec()).map_err(e)?;
        iso.add_file("boot/grub/i386-pc/eltorito.img", self.eltorito.clone())
            .map_err(e)?;
        for (name, data) in &self.bios_modules {
            iso.add_file(&format!("boot/grub/i386-pc/{name}"), data.clone())
                .map_err(e)?;
        }
        iso.add_file("boot/efiboot.img", self.esp.clone())
            .map_err(e)?;
        iso.bios_boot("boot/grub/i386-pc/eltorito.img", 4, true)
            .uefi_boot("boot/efiboot.img");
        let tmp = out.with_extension("iso.tmp");
        let size = iso.write_file(&tmp).map_err(e)?;
        std::fs::rename(&tmp, out).map_err(|e| RamdiskError::io(out, e))?;
        Ok(size)
    }
}

/// The uncompressed `newc` archive of `files` (`(path, content)`, their
/// directories first), for [`NODE_CPIO`].
pub fn node_cpio(files: &[(&str, Vec<u8>)]) -> Result<Vec<u8>, RamdiskError> {
    let e = |e: std::io::Error| RamdiskError::Tool(format!("{NODE_CPIO}: {e}"));
    let mut w = super::CpioWriter::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for (path, _) in files {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        for i in 1..parts.len() {
            dirs.insert(parts[..i].join("/"));
        }
    }
    for d in &dirs {
        w.dir(d).map_err(e)?;
    }
    for (path, data) in files {
        w.file(path.trim_start_matches('/'), 0o644, data)
            .map_err(e)?;
    }
    w.finish().map_err(e)
}

/// File names of the saved GRUB images (see [`BootFiles::save`]).
pub const ELTORITO_FILE: &str = "ironic-agent.eltorito.img";
/// See [`ELTORITO_FILE`].
pub const ESP_FILE: &str = "ironic-agent.esp.img";
/// The directory of the saved BIOS modules (see [`BootFiles::save`]).
pub const BIOS_MODULES_DIR: &str = "ironic-agent.grub-i386-pc";

/// The default ISO path beside the kernel.
pub fn iso_path(dir: &Path) -> PathBuf {
    dir.join("ironic-agent.iso")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kernel_parameter_is_its_own_grub_word() {
        let cfg = grub_cfg(
            "console=ttyS0,115200n8 ipa-api-url=http://10.0.0.1:6385 a=\"b c\" it's",
            false,
        );
        assert!(
            cfg.contains(
                "linux /ironic-agent.kernel 'console=ttyS0,115200n8' 'ipa-api-url=http://10.0.0.1:6385' 'a=b c' 'it'\\''s'\n"
            ),
            "{cfg}"
        );
        assert_eq!(kernel_args("  a  b=\"x  y\"\tc\n"), ["a", "b=x  y", "c"]);
        assert!(cfg.contains("  initrd /ironic-agent.initramfs\n"), "{cfg}");
        assert!(kernel_args(" ").is_empty());
        let cfg = grub_cfg("a", true);
        assert!(
            cfg.contains("initrd /ironic-agent.initramfs /ironic-node.cpio\n"),
            "{cfg}"
        );
        assert!(embedded_config().contains(MARKER));
    }

    #[test]
    fn the_node_archive_holds_the_files_with_their_directories() {
        let a = node_cpio(&[("openstack/latest/network_data.json", b"{}".to_vec())]).unwrap();
        let text = String::from_utf8_lossy(&a);
        // newc, names NUL-terminated (what Linux checks), parents first, a trailer.
        assert!(text.starts_with("070701"), "{text}");
        let at = |n: &str| {
            text.find(n)
                .unwrap_or_else(|| panic!("{n} missing: {text}"))
        };
        assert!(at("openstack\0") < at("openstack/latest\0"));
        assert!(at("openstack/latest\0") < at("openstack/latest/network_data.json\0"));
        assert!(text.contains("TRAILER!!!\0"), "{text}");
    }
}
