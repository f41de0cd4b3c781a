//! GRUB for partition images, built from the ramdisk's own GRUB and never by
//! running anything from the deployed image.
//!
//! IPA runs the image's `grub-install` and `grub-mkconfig` in a chroot of the
//! root filesystem, which executes the tenant's binaries as root in the ramdisk
//! (CVE-2026-43003; IPA now refuses by default). This agent instead:
//!
//! * builds a core image with the ramdisk's `grub-mkimage` (`grub-pc-bin`,
//!   `grub-efi-amd64-bin`) whose embedded configuration finds the root
//!   filesystem by its UUID and hands over to the image's own
//!   `/boot/grub/grub.cfg` (or `/boot/grub2/grub.cfg`), falling back to
//!   `/vmlinuz` + `/initrd.img` when the image has no GRUB configuration;
//! * BIOS: writes GRUB's `boot.img` into the MBR's boot code (the partition
//!   table and disk signature stay) and the core image after the MBR (msdos
//!   label) or into the BIOS boot partition (GPT), patching the sector numbers
//!   as `grub-bios-setup` does;
//! * UEFI: writes the core image as `\EFI\BOOT\BOOTX64.EFI` on the ESP the
//!   agent created (the removable-media path every firmware tries), after
//!   copying the image's own `/boot/efi/EFI` tree there when it has one (shim
//!   and a signed GRUB keep Secure Boot working), then adds the NVRAM entry.
//!
//! Nothing is mounted: the ESP is written with `fatfs`, the root filesystem is
//! only read (ext2/3/4) with `ext4-view`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::State;
use super::bootloader::Params;
use crate::error::{AgentError, Result};
use crate::image::{self, esp, partition};

/// Where the ramdisk's GRUB modules are (`grub-pc-bin`, `grub-efi-amd64-bin`).
pub const GRUB_LIB: &str = "/usr/lib/grub";

/// Modules built into every core image: enough to find and read the root
/// filesystem and run its configuration.
const MODULES: &[&str] = &[
    "part_msdos",
    "part_gpt",
    "ext2",
    "xfs",
    "btrfs",
    "fat",
    "search",
    "search_fs_uuid",
    "search_label",
    "configfile",
    "normal",
    "linux",
    "test",
    "echo",
    "ls",
    "cat",
    "gzio",
    "minicmd",
    "all_video",
    "serial",
    "terminal",
    "halt",
    "reboot",
    "sleep",
];

/// The configuration embedded in the core image.
pub fn early_config(root_uuid: &str) -> String {
    format!(
        "search --no-floppy --fs-uuid --set=root {root_uuid}\n\
         if [ -f ($root)/boot/grub/grub.cfg ]; then\n\
         \x20 set prefix=($root)/boot/grub\n\
         \x20 configfile ($root)/boot/grub/grub.cfg\n\
         elif [ -f ($root)/boot/grub2/grub.cfg ]; then\n\
         \x20 set prefix=($root)/boot/grub2\n\
         \x20 configfile ($root)/boot/grub2/grub.cfg\n\
         elif [ -f ($root)/vmlinuz ]; then\n\
         \x20 linux ($root)/vmlinuz root=UUID={root_uuid} ro\n\
         \x20 if [ -f ($root)/initrd.img ]; then initrd ($root)/initrd.img; fi\n\
         \x20 boot\n\
         fi\n\
         echo \"ironic-agent GRUB: no /boot/grub/grub.cfg, /boot/grub2/grub.cfg or /vmlinuz on the filesystem {root_uuid}\"\n"
    )
}

/// Modules a core image needs to read a software RAID (md) array: GRUB
/// assembles it from the disks the firmware shows, degraded or not.
const RAID_MODULES: &[&str] = &["diskfilter", "mdraid1x", "mdraid09"];

/// Build a core image for `target` (`i386-pc`, `x86_64-efi`) with
/// `grub-mkimage`, with [`MODULES`] and `extra`.
async fn mkimage(target: &str, root_uuid: &str, format: &str, extra: &[&str]) -> Result<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!(
        "ironic-agent-grub-{}",
        crate::agent::entropy::uuid_v4()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| AgentError::io("creating a temp dir", e))?;
    let result = async {
        let cfg = dir.join("early.cfg");
        std::fs::write(&cfg, early_config(root_uuid))
            .map_err(|e| AgentError::io("writing the GRUB configuration", e))?;
        let out_path = dir.join("core.img");
        let moddir = Path::new(GRUB_LIB).join(target);
        if !moddir.is_dir() {
            return Err(AgentError::CommandFailed(format!(
                "the ramdisk has no GRUB modules for {target} in {} (install {})",
                moddir.display(),
                if target == "i386-pc" {
                    "grub-pc-bin"
                } else {
                    "grub-efi-amd64-bin"
                }
            )));
        }
        let mut mods: Vec<&str> = MODULES.to_vec();
        if target == "i386-pc" {
            mods.push("biosdisk");
        }
        mods.extend_from_slice(extra);
        let out = tokio::process::Command::new("grub-mkimage")
            .arg("-d")
            .arg(&moddir)
            .args(["-O", format, "-p", "/boot/grub", "-c"])
            .arg(&cfg)
            .arg("-o")
            .arg(&out_path)
            .args(&mods)
            .output()
            .await
            .map_err(|e| {
                AgentError::CommandFailed(format!(
                    "grub-mkimage could not run ({e}); the ramdisk needs grub-common"
                ))
            })?;
        if !out.status.success() {
            return Err(AgentError::CommandFailed(format!(
                "grub-mkimage -O {format} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        std::fs::read(&out_path).map_err(|e| AgentError::io("reading the GRUB core image", e))
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

const KERNEL_SECTOR: usize = 0x5c;
const BOOT_DRIVE: usize = 0x64;
const DRIVE_CHECK: usize = 0x66;
const BOOT_CODE: usize = 440;
const KERNEL_SEG: u16 = 0x800;

/// Put `boot.img` + the core image on `f`: the core image at sector
/// `core_start`, within `room` sectors (512-byte sectors, as BIOS GRUB uses).
pub fn embed_bios(
    f: &std::fs::File,
    boot_img: &[u8],
    core: &[u8],
    core_start: u64,
    room: u64,
) -> Result<()> {
    use std::os::unix::fs::FileExt;
    if boot_img.len() != 512 {
        return Err(AgentError::ImageFormat(
            "GRUB's boot.img is not 512 bytes".into(),
        ));
    }
    let sectors = core.len().div_ceil(512) as u64;
    if sectors < 2 || sectors > room {
        return Err(AgentError::DiskTooSmall(format!(
            "the GRUB core image needs {sectors} sectors, {room} are free for it"
        )));
    }
    let mut core = core.to_vec();
    core.resize(sectors as usize * 512, 0);
    // diskboot.img's block lists (12 bytes each, from the end of the first
    // sector down, ended by a zero length): one list for the rest of the image
    let mut at = 512 - 12;
    loop {
        let len = u16::from_le_bytes([core[at + 8], core[at + 9]]);
        if len == 0 {
            break;
        }
        core[at..at + 12].fill(0);
        if at < 12 + 0x20 {
            return Err(AgentError::ImageFormat(
                "no block list terminator in the GRUB core image".into(),
            ));
        }
        at -= 12;
    }
    let first = 512 - 12;
    core[first..first + 8].copy_from_slice(&(core_start + 1).to_le_bytes());
    core[first + 8..first + 10].copy_from_slice(&((sectors - 1) as u16).to_le_bytes());
    core[first + 10..first + 12].copy_from_slice(&(KERNEL_SEG + (512 >> 4)).to_le_bytes());
    let mut mbr = [0u8; 512];
    f.read_exact_at(&mut mbr, 0)
        .map_err(|e| AgentError::io("reading the MBR", e))?;
    mbr[..BOOT_CODE].copy_from_slice(&boot_img[..BOOT_CODE]);
    mbr[KERNEL_SECTOR..KERNEL_SECTOR + 8].copy_from_slice(&core_start.to_le_bytes());
    mbr[BOOT_DRIVE] = 0xff;
    // buggy BIOSes pass 0x00 instead of 0x80: don't trust the drive number
    mbr[DRIVE_CHECK] = 0x90;
    mbr[DRIVE_CHECK + 1] = 0x90;
    f.write_all_at(&core, core_start * 512)
        .map_err(|e| AgentError::io("writing the GRUB core image", e))?;
    f.write_all_at(&mbr, 0)
        .map_err(|e| AgentError::io("writing GRUB's boot code to the MBR", e))?;
    f.sync_all()
        .map_err(|e| AgentError::io("fsync after GRUB", e))
}

/// Legacy BIOS reads disks in 512-byte sectors (so do GRUB's boot.img and
/// the block lists of its core image): a 4Kn disk can only boot with UEFI.
pub(crate) fn refuse_bios_on_4kn(f: &std::fs::File) -> Result<()> {
    let ss = partition::sector_size(f);
    if ss != partition::SECTOR {
        return Err(AgentError::InvalidParams(format!(
            "the disk has {ss}-byte logical sectors: legacy BIOS cannot boot it, \
             deploy it in UEFI boot mode"
        )));
    }
    Ok(())
}

/// Where the BIOS core image goes: the BIOS boot partition (GPT) or the gap
/// between the MBR and the first partition (msdos).
fn bios_core_location(table: &partition::Table) -> Result<(u64, u64)> {
    match table {
        partition::Table::Gpt { parts, .. } => {
            let p = parts
                .iter()
                .find(|p| p.kind == partition::PartKind::Gpt(partition::BIOS_BOOT))
                .ok_or_else(|| {
                    AgentError::ImageFormat(
                        "a GPT disk booting in BIOS mode needs a BIOS boot partition for GRUB; \
                         deploy with disk_label msdos or let the agent partition the disk"
                            .into(),
                    )
                })?;
            Ok((p.start / 512, p.len / 512))
        }
        partition::Table::Mbr { parts, .. } => {
            let first = parts.iter().map(|p| p.start / 512).min().unwrap_or(2048);
            Ok((1, first.saturating_sub(1)))
        }
        partition::Table::None => Err(AgentError::ImageFormat(
            "the disk has no partition table".into(),
        )),
    }
}

/// Copy the root filesystem's `/boot/efi/EFI` tree (shim, signed GRUB) onto
/// the ESP, as IPA's `_preserve_efi_assets`; returns how many files.
fn copy_efi_assets(
    f: &std::fs::File,
    root: &partition::Partition,
    fat: &esp::Fat,
) -> Result<usize> {
    let region = esp::Region::new(f, root.start, root.len)?;
    let reader = Ext4Reader(region);
    let Ok(fs) = ext4_view::Ext4::load(Box::new(reader)) else {
        return Ok(0);
    };
    let Ok(true) = fs.exists("/boot/efi/EFI") else {
        return Ok(0);
    };
    let mut n = 0;
    let mut stack = vec![PathBuf::from("/boot/efi/EFI")];
    while let Some(dir) = stack.pop() {
        let d = dir.to_string_lossy().into_owned();
        let entries = fs
            .read_dir(d.as_str())
            .map_err(|e| AgentError::ImageFormat(format!("reading {d} in the image: {e}")))?;
        for e in entries {
            let e =
                e.map_err(|e| AgentError::ImageFormat(format!("reading {d} in the image: {e}")))?;
            let name = e.file_name().as_str().unwrap_or("").to_owned();
            if name == "." || name == ".." || name.is_empty() {
                continue;
            }
            let path = dir.join(&name);
            let p = path.to_string_lossy().into_owned();
            let ft = e
                .file_type()
                .map_err(|e| AgentError::ImageFormat(format!("reading {p} in the image: {e}")))?;
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_regular_file() {
                let data = fs.read(p.as_str()).map_err(|e| {
                    AgentError::ImageFormat(format!("reading {p} in the image: {e}"))
                })?;
                esp::write(fat, p.trim_start_matches("/boot/efi"), &data)?;
                n += 1;
            }
        }
    }
    Ok(n)
}

struct Ext4Reader(esp::Region);

fn ext4_open(f: &std::fs::File, part: &partition::Partition) -> Result<ext4_view::Ext4> {
    let region = esp::Region::new(f, part.start, part.len)?;
    ext4_view::Ext4::load(Box::new(Ext4Reader(region))).map_err(|e| {
        AgentError::ImageFormat(format!(
            "partition {} is not a readable ext2/3/4 filesystem: {e}",
            part.number
        ))
    })
}

/// Whether `path` is a directory in the ext2/3/4 filesystem of `part`.
pub(crate) fn ext4_is_dir(
    f: &std::fs::File,
    part: &partition::Partition,
    path: &str,
) -> Result<bool> {
    match ext4_open(f, part)?.metadata(path) {
        Ok(m) => Ok(m.is_dir()),
        Err(ext4_view::Ext4Error::NotFound | ext4_view::Ext4Error::NotADirectory) => Ok(false),
        Err(e) => Err(AgentError::ImageFormat(format!("looking up {path}: {e}"))),
    }
}

/// `(mode, uid, gid)` of `path` (not following a final symlink) in the ext2/3/4
/// filesystem of `part`, `None` when it does not exist.
pub(crate) fn ext4_metadata(
    f: &std::fs::File,
    part: &partition::Partition,
    path: &str,
) -> Result<Option<(u16, u32, u32)>> {
    match ext4_open(f, part)?.symlink_metadata(path) {
        Ok(m) => Ok(Some((m.mode(), m.uid(), m.gid()))),
        Err(ext4_view::Ext4Error::NotFound | ext4_view::Ext4Error::NotADirectory) => Ok(None),
        Err(e) => Err(AgentError::ImageFormat(format!("looking up {path}: {e}"))),
    }
}

/// Read a file of the ext2/3/4 filesystem of `part` (read-only, no mount).
pub(crate) fn ext4_read(
    f: &std::fs::File,
    part: &partition::Partition,
    path: &str,
) -> Result<Vec<u8>> {
    ext4_open(f, part)?
        .read(path)
        .map_err(|e| AgentError::ImageFormat(format!("reading {path}: {e}")))
}

impl ext4_view::Ext4Read for Ext4Reader {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        use std::io::{Read, Seek, SeekFrom};
        self.0.seek(SeekFrom::Start(start_byte))?;
        self.0.read_exact(dst)?;
        Ok(())
    }
}

/// Find the root partition by its filesystem UUID (or partition GUID).
fn root_partition(f: &std::fs::File, root_uuid: &str) -> Result<partition::Partition> {
    let table = partition::read_table(f)?;
    table
        .partitions()
        .iter()
        .find(|p| {
            p.uuid.eq_ignore_ascii_case(root_uuid)
                || partition::ext_uuid(f, p.start)
                    .is_some_and(|u| u.eq_ignore_ascii_case(root_uuid))
        })
        .cloned()
        .ok_or_else(|| {
            AgentError::NoRootDevice(format!(
                "no partition with the root filesystem UUID {root_uuid}"
            ))
        })
}

/// IPA's `_append_uefi_to_fstab`: when the image has an `/etc/fstab` that
/// does not name the ESP yet, add it at `/boot/efi` (`vfat`, `umask=0077`), by
/// `UUID=` (the FAT volume id) or, when the conductor named the ESP by its
/// partition GUID, `PARTUUID=`. Written with `debugfs` (ext2/3/4 roots; other
/// root filesystems are left alone and said so). As IPA, a failure here does
/// not fail the deployment: it is logged and said in the result.
async fn append_uefi_to_fstab(
    device: &Path,
    root: &partition::Partition,
    esp: &partition::Partition,
    volume_id: &str,
    given: Option<&str>,
) -> Option<String> {
    let (f, _) = image::open_device(device).ok()?;
    if partition::ext_uuid(&f, root.start).is_none() {
        tracing::info!("the root filesystem is not ext2/3/4: /etc/fstab left as it is");
        return Some("/etc/fstab not updated (the root filesystem is not ext2/3/4)".into());
    }
    let (label, id) = match given.filter(|g| !g.is_empty()) {
        Some(g) if g.eq_ignore_ascii_case(&esp.uuid) => ("PARTUUID", g),
        Some(g) => ("UUID", g),
        None => ("UUID", volume_id),
    };
    if !matches!(ext4_metadata(&f, root, "/etc/fstab"), Ok(Some(_)))
        || ext4_is_dir(&f, root, "/etc/fstab").unwrap_or(true)
    {
        return None; // no fstab: nothing to do, as IPA
    }
    let mut text = match ext4_read(&f, root, "/etc/fstab") {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "reading the image's /etc/fstab");
            return Some(format!("/etc/fstab not updated: {e}"));
        }
    };
    let entry = format!("{label}={id}");
    if text.contains(&entry) {
        return None;
    }
    // IPA appends as is; a last line without its newline would be merged
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("{entry}\t/boot/efi\tvfat\tumask=0077\t0\t1\n"));
    drop(f);
    match super::steps::inject::ext_write(device, root, "/etc/fstab", text.as_bytes()).await {
        Ok(()) => {
            tracing::info!(%entry, "the ESP added to the image's /etc/fstab");
            Some(format!("/boot/efi ({entry}) added to /etc/fstab"))
        }
        Err(e) => {
            tracing::warn!(error = %e, "adding the ESP to /etc/fstab");
            Some(format!("/etc/fstab not updated: {e}"))
        }
    }
}

/// Install GRUB for the partition image on `device`.
pub async fn install(st: &Arc<State>, device: &Path, p: &Params) -> Result<String> {
    let root_uuid = p.root_uuid.clone().ok_or_else(|| {
        AgentError::InvalidParams("install_bootloader needs root_uuid for a partition image".into())
    })?;
    let (f, _) = image::open_device(device)?;
    let root = root_partition(&f, &root_uuid)?;
    if p.target_boot_mode == "uefi" {
        let table = partition::read_table(&f)?;
        let part = table
            .partitions()
            .iter()
            .find(|q| q.is_esp())
            .cloned()
            .ok_or_else(|| {
                AgentError::NoRootDevice(format!("no EFI System Partition on {}", device.display()))
            })?;
        let (copied, have_fallback, volume_id) = {
            let fat = esp::open(&f, &part)?;
            let copied = copy_efi_assets(&f, &root, &fat)?;
            let have_fallback = esp::find_loaders(&fat)?
                .iter()
                .any(|l| l.path.eq_ignore_ascii_case("\\EFI\\BOOT\\BOOTX64.EFI"));
            (copied, have_fallback, esp::volume_id(&fat))
        };
        let mut what = Vec::new();
        if copied > 0 {
            what.push(format!(
                "copied {copied} files of the image's /boot/efi/EFI"
            ));
        }
        if !have_fallback {
            let img = mkimage("x86_64-efi", &root_uuid, "x86_64-efi", &[]).await?;
            let fat = esp::open(&f, &part)?;
            esp::write(&fat, "/EFI/BOOT/BOOTX64.EFI", &img)?;
            what.push("GRUB (from the ramdisk) as \\EFI\\BOOT\\BOOTX64.EFI".into());
        }
        f.sync_all()
            .map_err(|e| AgentError::io("fsync after the ESP", e))?;
        if let Some(said) = append_uefi_to_fstab(
            device,
            &root,
            &part,
            &volume_id,
            p.efi_system_part_uuid.as_deref(),
        )
        .await
        {
            what.push(said);
        }
        // now the NVRAM entry, as for a whole-disk image
        let p2 = Params {
            efi_system_part_uuid: p.efi_system_part_uuid.clone(),
            ..p.clone()
        };
        let nvram = super::bootloader::uefi_entries(st, device, &p2).await?;
        return Ok(format!("UEFI: {}; {nvram}", what.join(", ")));
    }
    refuse_bios_on_4kn(&f)?;
    let table = partition::read_table(&f)?;
    let (start, room) = bios_core_location(&table)?;
    let boot_img = std::fs::read(Path::new(GRUB_LIB).join("i386-pc/boot.img")).map_err(|e| {
        AgentError::CommandFailed(format!(
            "GRUB's boot.img is not in the ramdisk ({e}); install grub-pc-bin"
        ))
    })?;
    let core = mkimage("i386-pc", &root_uuid, "i386-pc", &[]).await?;
    embed_bios(&f, &boot_img, &core, start, room)?;
    tracing::info!(device = %device.display(), core_sector = start, root = %root_uuid, "GRUB installed for BIOS boot");
    Ok(format!(
        "BIOS: GRUB (from the ramdisk) in the MBR and at sector {start}, root filesystem {root_uuid}"
    ))
}

/// The root filesystem on a software RAID volume and its filesystem UUID: by
/// `root_uuid` when it names a filesystem or partition (Ironic sends the
/// image's `rootfs_uuid` for software RAID), else, when it is a disk
/// identifier (`0x...`, Ironic's fallback `root_uuid_or_disk_id` when the
/// image has no `rootfs_uuid`) or missing, the first ext2/3/4 partition with a
/// GRUB configuration or a `/vmlinuz`. (IPA skips GRUB then and the holders
/// are left without boot code; this agent finds the root or fails.)
fn raid_root(f: &std::fs::File, root_uuid: Option<&str>) -> Result<(partition::Partition, String)> {
    if let Some(u) = root_uuid.filter(|u| !u.starts_with("0x")) {
        let p = root_partition(f, u)?;
        let fs = partition::fs_uuid(f, p.start).unwrap_or_else(|| u.to_owned());
        return Ok((p, fs));
    }
    let table = partition::read_table(f)?;
    for p in table.partitions() {
        let Some(uuid) = partition::ext_uuid(f, p.start) else {
            continue;
        };
        for path in ["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg", "/vmlinuz"] {
            if matches!(ext4_metadata(f, p, path), Ok(Some(_))) {
                return Ok((p.clone(), uuid));
            }
        }
    }
    Err(AgentError::NoRootDevice(format!(
        "the root UUID {} does not name a filesystem and no partition of the software RAID \
         volume holds /boot/grub/grub.cfg, /boot/grub2/grub.cfg or /vmlinuz on ext2/3/4 \
         (set instance_info image_rootfs_uuid to the image's root filesystem UUID)",
        root_uuid.unwrap_or("(none)")
    )))
}

/// Legacy BIOS boot from a software RAID volume, as IPA's `_install_grub2`
/// with an md root device (`grub-install` on every holder disk) and
/// `prepare_boot_partitions_for_softraid` in BIOS mode (a 2 MiB BIOS boot
/// partition, `bios-boot-part-N`, on each GPT holder, in the room
/// `create_configuration` left before the RAID partitions; an msdos holder
/// keeps GRUB in the gap after its MBR). Every holder gets GRUB's `boot.img`
/// in its MBR and the same core image (from the ramdisk's GRUB, with the md
/// RAID modules): the firmware may boot any one disk, and GRUB assembles the
/// array from the disks it sees (degraded when one is gone), finds the root
/// filesystem by UUID on it and runs the image's `grub.cfg`. A BIOS boot
/// partition left by an earlier deployment is reused.
pub(crate) async fn bios_on_raid(md: &super::steps::raid::MdDevice, p: &Params) -> Result<String> {
    use super::steps::raid;
    let (f, _) = image::open_device(Path::new(&md.name))?;
    let (root, root_uuid) = raid_root(&f, p.root_uuid.as_deref())?;
    drop(f);
    if md.holders.is_empty() {
        return Err(AgentError::NoRootDevice(format!(
            "the software RAID volume {} has no holder disks",
            md.name
        )));
    }
    let boot_img = std::fs::read(Path::new(GRUB_LIB).join("i386-pc/boot.img")).map_err(|e| {
        AgentError::CommandFailed(format!(
            "GRUB's boot.img is not in the ramdisk ({e}); install grub-pc-bin"
        ))
    })?;
    let core = mkimage("i386-pc", &root_uuid, "i386-pc", RAID_MODULES).await?;
    let mut done = Vec::new();
    for (n, holder) in md.holders.iter().enumerate() {
        let (hf, size) = image::open_device(Path::new(holder))?;
        refuse_bios_on_4kn(&hf)?;
        let table = partition::read_table(&hf)?;
        let bios_boot = table
            .partitions()
            .iter()
            .find(|q| q.kind == partition::PartKind::Gpt(partition::BIOS_BOOT))
            .cloned();
        let (start, room, what) = match (&table, bios_boot) {
            (partition::Table::Gpt { .. }, Some(q)) => (
                q.start / 512,
                q.len / 512,
                format!("BIOS boot partition {}", q.number),
            ),
            (partition::Table::Gpt { .. }, None) => {
                let q = partition::add_partition(
                    &hf,
                    size,
                    1 << 20,
                    Some(2 << 20),
                    partition::BIOS_BOOT,
                    &format!("bios-boot-part-{n}"),
                )
                .map_err(|e| {
                    AgentError::CommandFailed(format!(
                        "no room for a BIOS boot partition on the holder disk {holder} \
                         (RAID partitions made in BIOS mode start at 8 MiB): {e}"
                    ))
                })?;
                raid::rescan(holder, &[partition::partition_path(holder, q.number)]).await;
                tracing::debug!(disk = %holder, partition = q.number, "BIOS boot partition created on a holder disk");
                (
                    q.start / 512,
                    q.len / 512,
                    format!("new BIOS boot partition {}", q.number),
                )
            }
            _ => {
                let (s, r) = bios_core_location(&table)?;
                (s, r, "the gap after the MBR".to_owned())
            }
        };
        embed_bios(&hf, &boot_img, &core, start, room).map_err(|e| {
            AgentError::CommandFailed(format!("installing GRUB on the holder disk {holder}: {e}"))
        })?;
        tracing::info!(disk = %holder, core_sector = start, root = %root_uuid, "GRUB installed on a holder disk");
        done.push(format!("{holder} ({what})"));
    }
    Ok(format!(
        "BIOS: GRUB (from the ramdisk) on every holder disk of the software RAID {}: {}; it \
         assembles the array and boots the root filesystem {root_uuid} (partition {})",
        md.name,
        done.join(", "),
        root.number
    ))
}
