//! `image.install_bootloader`, as IPA's `extensions/image.py` and
//! `efi_utils.py` do it, without running anything from the deployed image.
//!
//! UEFI: find the disk's EFI System Partition (by type, else by the
//! `efi_system_part_uuid` Ironic sends), find its loaders (shim's CSV first,
//! then `\EFI\BOOT\BOOTX64.EFI` and the other names IPA knows) and add a UEFI
//! boot entry for each with `efibootmgr`, replacing entries with the same label.
//! NVRAM can only be written from a UEFI-booted ramdisk to a real device: on a
//! file disk, or from a BIOS-booted ramdisk, the entry is skipped and the result
//! says so (the firmware still finds the removable-media path
//! `\EFI\BOOT\BOOTX64.EFI`).
//!
//! Whole-disk images carry their own boot loader: a root `uuid` of
//! `0x00000000` (the MBR signature of a GPT image) or an image this agent wrote
//! as whole-disk needs nothing else.
//!
//! IPA installs GRUB for partition images by running the image's own
//! `grub-install` in a chroot, which its 2026 security fix (CVE-2026-43003)
//! turned off by default (`enable_bios_bootloader_install`). This agent never
//! executes the image's binaries (see the private `grub` module).

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::State;
use crate::error::{AgentError, Result};
use crate::image::{self, ImageType, esp, partition};

/// The parameters Ironic sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    /// Root partition's filesystem UUID (partition images) or the disk
    /// identifier (`0x00000000`) of a whole-disk image.
    pub root_uuid: Option<String>,
    /// The ESP the agent created for a partition image.
    pub efi_system_part_uuid: Option<String>,
    /// PowerPC PReP partition (not supported).
    pub prep_boot_part_uuid: Option<String>,
    /// `uefi` or `bios` (IPA's default).
    pub target_boot_mode: String,
    /// Report success even if the boot loader could not be installed.
    pub ignore_failure: bool,
}

fn opt_str(p: &Map<String, Value>, k: &str) -> Result<Option<String>> {
    match p.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(AgentError::InvalidParams(format!(
            "{k} must be a string, not {v}"
        ))),
    }
}

impl Params {
    /// Parse `install_bootloader`'s parameters.
    pub fn parse(p: &Map<String, Value>) -> Result<Self> {
        let target_boot_mode = opt_str(p, "target_boot_mode")?.unwrap_or_else(|| "bios".into());
        if !matches!(target_boot_mode.as_str(), "bios" | "uefi") {
            return Err(AgentError::InvalidParams(format!(
                "target_boot_mode must be bios or uefi, not {target_boot_mode:?}"
            )));
        }
        let ignore_failure = match p.get("ignore_bootloader_failure") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => {
                matches!(s.to_ascii_lowercase().as_str(), "1" | "true" | "yes")
            }
            Some(v) => {
                return Err(AgentError::InvalidParams(format!(
                    "ignore_bootloader_failure must be a boolean, not {v}"
                )));
            }
        };
        Ok(Params {
            root_uuid: opt_str(p, "root_uuid")?,
            efi_system_part_uuid: opt_str(p, "efi_system_part_uuid")?,
            prep_boot_part_uuid: opt_str(p, "prep_boot_part_uuid")?,
            target_boot_mode,
            ignore_failure,
        })
    }
}

/// What one `efibootmgr` entry needs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    part_number: u32,
    loader: esp::Loader,
}

/// Why the UEFI setup did not add NVRAM entries (when it did not).
fn nvram_blocker(st: &State, device: &Path) -> Option<String> {
    let is_file = std::fs::metadata(device)
        .map(|m| m.is_file())
        .unwrap_or(false);
    if is_file {
        return Some(format!(
            "{} is a file, not a disk: UEFI NVRAM entries skipped",
            device.display()
        ));
    }
    if !st.cfg.sys_root.join("firmware/efi").exists() {
        return Some(
            "the ramdisk was not booted in UEFI mode, so it cannot write UEFI NVRAM entries".into(),
        );
    }
    None
}

/// Boot entries as `efibootmgr` lists them: `(number, label)`.
fn parse_boot_entries(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("Boot")?;
            let (num, rest) = rest.split_at(rest.find(|c: char| !c.is_ascii_hexdigit())?);
            if num.len() != 4 {
                return None;
            }
            let rest = rest.strip_prefix('*').unwrap_or(rest).trim_start();
            // the label ends where the device path (or a tab) starts
            let label = rest
                .split('\t')
                .next()
                .unwrap_or(rest)
                .split("  ")
                .next()
                .unwrap_or(rest);
            let label = [
                "HD(",
                "PciRoot(",
                "BBS(",
                "FvFile(",
                "FvVol(",
                "VenMsg(",
                "VenHw(",
                "UsbClass(",
            ]
            .iter()
            .filter_map(|m| label.find(m))
            .min()
            .map_or(label, |i| &label[..i]);
            Some((num.to_owned(), label.trim().to_owned()))
        })
        .collect()
}

async fn efibootmgr(args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new("efibootmgr")
        .args(args)
        .output()
        .await
        .map_err(|e| {
            AgentError::CommandFailed(format!(
                "efibootmgr could not run ({e}); the ramdisk needs the efibootmgr tool"
            ))
        })?;
    if !out.status.success() {
        return Err(AgentError::CommandFailed(format!(
            "efibootmgr {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Add (or replace) the UEFI boot entries, as IPA's `_run_efibootmgr`.
async fn write_nvram(device: &Path, entries: &[Entry]) -> Result<Vec<String>> {
    let existing = parse_boot_entries(&efibootmgr(&["-v"]).await?);
    let dev = device.to_string_lossy().into_owned();
    let mut done = Vec::new();
    for e in entries {
        for (num, label) in &existing {
            if *label == e.loader.label {
                efibootmgr(&["-b", num, "-B"]).await?;
            }
        }
        let part = e.part_number.to_string();
        efibootmgr(&[
            "-v",
            "-c",
            "-d",
            &dev,
            "-p",
            &part,
            "-w",
            "-L",
            &e.loader.label,
            "-l",
            &e.loader.path,
        ])
        .await?;
        done.push(format!("{} -> {}", e.loader.label, e.loader.path));
    }
    Ok(done)
}

/// Find the ESP: by partition type, else by the UUID Ironic recorded (a
/// partition GUID or a FAT volume id).
fn find_esp(f: &std::fs::File, uuid: Option<&str>) -> Result<Option<partition::Partition>> {
    let table = partition::read_table(f)?;
    if let Some(p) = table.partitions().iter().find(|p| p.is_esp()) {
        return Ok(Some(p.clone()));
    }
    let Some(uuid) = uuid else { return Ok(None) };
    for p in table.partitions() {
        if p.uuid.eq_ignore_ascii_case(uuid) {
            return Ok(Some(p.clone()));
        }
        if let Ok(fs) = esp::open(f, p)
            && esp::volume_id(&fs).eq_ignore_ascii_case(uuid)
        {
            return Ok(Some(p.clone()));
        }
    }
    Ok(None)
}

/// What the UEFI setup found and did.
#[derive(Debug)]
enum Uefi {
    /// Loaders found; entries written or the reason they were not.
    Done(String),
    /// The ESP has no loader.
    Empty(partition::Partition),
    /// No ESP on the disk.
    NoEsp,
}

async fn uefi_setup(st: &State, device: &Path, p: &Params) -> Result<Uefi> {
    let (f, _) = image::open_device(device)?;
    let Some(part) = find_esp(&f, p.efi_system_part_uuid.as_deref())? else {
        return Ok(Uefi::NoEsp);
    };
    let loaders = {
        let fs = esp::open(&f, &part)?;
        esp::find_loaders(&fs)?
    };
    if loaders.is_empty() {
        return Ok(Uefi::Empty(part));
    }
    let entries: Vec<Entry> = loaders
        .into_iter()
        .map(|loader| Entry {
            part_number: part.number,
            loader,
        })
        .collect();
    let found = entries
        .iter()
        .map(|e| e.loader.path.clone())
        .collect::<Vec<_>>()
        .join(", ");
    match nvram_blocker(st, device) {
        Some(why) => {
            tracing::warn!(device = %device.display(), loaders = %found, "{why}");
            Ok(Uefi::Done(format!(
                "EFI partition {} has {found}; {why}",
                part.number
            )))
        }
        None => {
            let done = write_nvram(device, &entries).await?;
            tracing::info!(device = %device.display(), entries = ?done, "UEFI boot entries written");
            Ok(Uefi::Done(format!(
                "EFI partition {}: UEFI boot entries {}",
                part.number,
                done.join(", ")
            )))
        }
    }
}

/// The UEFI boot entries for the ESP the agent just filled (partition images).
pub(super) async fn uefi_entries(st: &State, device: &Path, p: &Params) -> Result<String> {
    match uefi_setup(st, device, p).await? {
        Uefi::Done(msg) => Ok(msg),
        Uefi::Empty(part) => Err(AgentError::ImageFormat(format!(
            "the EFI partition {} has no boot loader after installing one",
            part.number
        ))),
        Uefi::NoEsp => Err(AgentError::NoRootDevice(format!(
            "no EFI System Partition on {}",
            device.display()
        ))),
    }
}

/// UEFI boot from a software RAID volume, as IPA's
/// `prepare_boot_partitions_for_softraid` + `manage_uefi`: an ESP on every
/// holder disk (in the room `create_configuration` left, 550 MiB from 1 MiB),
/// mirrored by a RAID-1 array with metadata 1.0 (the superblock at the end, so
/// the firmware reads each member as a plain FAT), named `esp`; the image's ESP
/// copied there with its volume id and label (its `/etc/fstab` entry stays
/// valid) and then wiped, so that only the mirrored one is found; a boot entry
/// per holder (`<label> (RAID, partN)`). An ESP array left by an earlier
/// deployment is reused. IPA mounts and `cp -a`s; this agent copies in user
/// space (no mount, no vfat module needed).
async fn uefi_on_raid(st: &State, md: &super::steps::raid::MdDevice, p: &Params) -> Result<String> {
    use super::steps::raid;
    let dev = Path::new(&md.name).to_owned();
    let (f, _) = image::open_device(&dev)?;
    let Some(img_esp) = find_esp(&f, p.efi_system_part_uuid.as_deref())? else {
        return Err(AgentError::NoRootDevice(format!(
            "No EFI partition could be detected on the software RAID device {} and EFI \
             partition UUID has not been recorded during deployment. Are you using a \
             UEFI-compatible image?",
            md.name
        )));
    };
    let (files, volume_id, label) = {
        let fs = esp::open(&f, &img_esp)?;
        let mut files = Vec::new();
        for path in esp::files(&fs)? {
            let data = esp::read(&fs, &path)?;
            files.push((path, data));
        }
        let label = fs.volume_label().trim().to_owned();
        (files, fs.volume_id(), label)
    };
    // the ESP array: one from an earlier deployment, else a new one
    let mut esp_md = None;
    for m in raid::md_devices(&st.cfg.sys_root) {
        if m.name != md.name
            && m.level == "raid1"
            && raid::volume_name(&m.name).await.as_deref() == Some("esp")
        {
            esp_md = Some(m.name.clone());
        }
    }
    let esp_md = match esp_md {
        Some(m) => {
            tracing::info!(device = %m, "Found RAIDed ESP, skip creation");
            m
        }
        None => {
            let mut members = Vec::new();
            for (n, holder) in md.holders.iter().enumerate() {
                let (hf, size) = image::open_device(Path::new(holder))?;
                let part = partition::add_partition(
                    &hf,
                    size,
                    1 << 20,
                    Some(raid::ESP_SIZE_MIB << 20),
                    partition::ESP,
                    &format!("uefi-holder-{n}"),
                )
                .map_err(|e| {
                    AgentError::CommandFailed(format!(
                        "no room for the ESP on the holder disk {holder} (was the RAID built \
                         in UEFI mode?): {e}"
                    ))
                })?;
                drop(hf);
                let path = partition::partition_path(holder, part.number);
                raid::rescan(holder, std::slice::from_ref(&path)).await;
                tracing::debug!(partition = %path, disk = %holder, "EFI partition created on a holder disk");
                members.push(path);
            }
            let name = raid::free_md(&st.cfg.sys_root, 0)?;
            let mut args = super::steps::argv(&[
                "--create",
                &name,
                "--force",
                "--run",
                "--metadata=1.0",
                "--level",
                "1",
                "--name",
                "esp",
                "--raid-devices",
            ]);
            args.push(members.len().to_string());
            args.extend(members.iter().cloned());
            super::steps::run_tool("mdadm", &args).await.map_err(|e| {
                AgentError::CommandFailed(format!("creating the RAID-1 ESP {name}: {e}"))
            })?;
            name
        }
    };
    // the image's ESP, copied with its id and label, then wiped (IPA: wipefs -a)
    let esp_path = Path::new(&esp_md).to_owned();
    let img_part = img_esp.clone();
    let copied = files.len();
    super::steps::blocking(move || {
        let (ef, size) = image::open_device(&esp_path)?;
        let whole = partition::Partition {
            number: 0,
            start: 0,
            len: size,
            name: String::new(),
            uuid: String::new(),
            kind: partition::PartKind::Gpt(partition::ESP),
        };
        let label = if label.is_empty() || label == "NO NAME" {
            "esp".to_owned()
        } else {
            label
        };
        esp::format_with_id(&ef, &whole, &label, volume_id)?;
        {
            let fs = esp::open(&ef, &whole)?;
            for (path, data) in &files {
                esp::write(&fs, path, data)?;
            }
            fs.unmount()
                .map_err(|e| AgentError::io("closing the RAID ESP", e))?;
        }
        ef.sync_all()
            .map_err(|e| AgentError::io("fsync the RAID ESP", e))?;
        let (mf, _) = image::open_device(&dev)?;
        super::steps::erase::zero_at(&mf, img_part.start, img_part.len.min(1 << 20))?;
        mf.sync_all()
            .map_err(|e| AgentError::io("fsync after wiping the image's ESP", e))
    })
    .await?;
    // the boot entries, one per member of the ESP array
    let (ef, size) = image::open_device(Path::new(&esp_md))?;
    let whole = partition::Partition {
        number: 0,
        start: 0,
        len: size,
        name: String::new(),
        uuid: String::new(),
        kind: partition::PartKind::Gpt(partition::ESP),
    };
    let loaders = {
        let fs = esp::open(&ef, &whole)?;
        esp::find_loaders(&fs)?
    };
    if loaders.is_empty() {
        return Err(AgentError::ImageFormat(format!(
            "the EFI partition of the image on {} has no boot loader (looked for {})",
            md.name,
            esp::BOOTLOADERS_EFI.join(", ")
        )));
    }
    let members = raid::md_devices(&st.cfg.sys_root)
        .into_iter()
        .find(|m| m.name == esp_md)
        .map(|m| m.members)
        .unwrap_or_default();
    let found = loaders
        .iter()
        .map(|l| l.path.clone())
        .collect::<Vec<_>>()
        .join(", ");
    let summary = format!(
        "software RAID {}: the image's ESP ({copied} files) mirrored to {esp_md} on {}",
        md.name,
        members.join(", ")
    );
    if let Some(why) = nvram_blocker(st, Path::new(&md.name)) {
        tracing::warn!(device = %md.name, loaders = %found, "{why}");
        return Ok(format!("{summary}; it has {found}; {why}"));
    }
    let mut done = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let holder = md
            .holders
            .iter()
            .find(|h| member.starts_with(h.as_str()))
            .cloned()
            .unwrap_or_else(|| {
                member
                    .trim_end_matches(|c: char| c.is_ascii_digit())
                    .to_owned()
            });
        let number: u32 = member
            .trim_start_matches(holder.as_str())
            .trim_start_matches('p')
            .parse()
            .map_err(|_| {
                AgentError::CommandFailed(format!(
                    "Could not extract the partition number from {member}!"
                ))
            })?;
        let entries: Vec<Entry> = loaders
            .iter()
            .map(|l| Entry {
                part_number: number,
                loader: esp::Loader {
                    path: l.path.clone(),
                    label: format!("{} (RAID, part{i})", l.label),
                },
            })
            .collect();
        done.extend(write_nvram(Path::new(&holder), &entries).await?);
    }
    Ok(format!("{summary}; UEFI boot entries {}", done.join(", ")))
}

/// Run `install_bootloader` on `device`.
pub(crate) async fn install(st: &Arc<State>, device: &Path, p: &Params) -> Result<String> {
    if p.prep_boot_part_uuid.is_some() {
        return Err(AgentError::CommandFailed(
            "PReP boot partitions (ppc64) are not supported by this agent".into(),
        ));
    }
    if let Some(md) = super::steps::raid::md_devices(&st.cfg.sys_root)
        .into_iter()
        .find(|m| Path::new(&m.name) == device)
    {
        if p.target_boot_mode == "uefi" {
            return uefi_on_raid(st, &md, p).await;
        }
        return super::grub::bios_on_raid(&md, p).await;
    }
    let image_type = *st.image_type.lock().await;
    let whole_disk = image_type == Some(ImageType::WholeDisk)
        || matches!(p.root_uuid.as_deref(), None | Some("0x00000000"));
    let current_uefi = st.cfg.sys_root.join("firmware/efi").exists();
    if p.target_boot_mode == "uefi" || current_uefi {
        if current_uefi != (p.target_boot_mode == "uefi") {
            tracing::warn!(
                target = %p.target_boot_mode,
                current = if current_uefi { "uefi" } else { "bios" },
                "boot mode mismatch: installing the boot loader may fail or work incorrectly"
            );
        }
        match uefi_setup(st, device, p).await? {
            Uefi::Done(msg) => return Ok(msg),
            Uefi::NoEsp if p.target_boot_mode == "uefi" => {
                return Err(AgentError::NoRootDevice(format!(
                    "No EFI partition could be detected on device {} and EFI partition UUID \
                     has not been recorded during deployment (which is often the case for \
                     whole disk images). Are you using a UEFI-compatible image?",
                    device.display()
                )));
            }
            Uefi::NoEsp => {}
            Uefi::Empty(part) if whole_disk => {
                return Err(AgentError::ImageFormat(format!(
                    "the EFI partition {} of the whole-disk image on {} has no boot loader \
                     (looked for {})",
                    part.number,
                    device.display(),
                    esp::BOOTLOADERS_EFI.join(", ")
                )));
            }
            Uefi::Empty(_) => {}
        }
    }
    if whole_disk {
        return Ok(format!(
            "whole-disk image on {}: it carries its own boot loader",
            device.display()
        ));
    }
    super::grub::install(st, device, p).await
}
