//! `erase_devices`, `erase_devices_metadata` and `erase_devices_express`, as
//! IPA's generic hardware manager does them: which disks (skip list, virtual
//! media, RAID members, read-only devices, the shared-filesystem guard), NVMe
//! format and ATA security erase with the `driver_internal_info` flags Ironic
//! sends (`agent_enable_*_secure_erase`, `agent_continue_if_secure_erase_failed`,
//! `agent_erase_devices_iterations` / `_zeroize`, `agent_erase_skip_read_only`,
//! `disk_erasure_concurrency`), and the overwrite fallback (IPA's `shred`).
//!
//! Differences from IPA, on purpose:
//! - a disk file (`--root-device FILE`, for tests and the lab) is zeroed by
//!   punching holes instead of being overwritten pass by pass;
//! - the overwrite and the metadata erase are done in process (no `shred`,
//!   `dd`, `wipefs` or `sgdisk`); metadata erase zeroes the first and last MiB
//!   of every partition and of the disk (where partition tables, filesystem,
//!   LVM and RAID signatures live), which covers what `wipefs --all` on each
//!   partition and `sgdisk -Z` on the disk remove;
//! - `erase_devices_express` also discards devices that support it
//!   (`blkdiscard`; punched holes on a file disk) before the metadata erase
//!   when NVMe format is not available: IPA leaves the data of such disks
//!   readable after an express erase.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::{
    argv, blocking, info, info_bool, info_u64, is_block_device, run_tool, run_tool_status,
};
use crate::agent::{State, entropy, hints, inventory};
use crate::error::{AgentError, Result};
use crate::image::{self, partition};

const MIB: u64 = 1 << 20;

/// The md superblock magic (all metadata versions).
const MD_MAGIC: u32 = 0xa92b_4efc;
/// The gfs2 superblock magic (big-endian, at 64 KiB).
const GFS2_MAGIC: u32 = 0x0116_1970;

/// Partition types of shared-disk cluster filesystems that IPA refuses to erase
/// (`_check_for_special_partitions_filesystems`).
const GUARDED_GPT: &[(uuid::Uuid, &str)] = &[
    (
        uuid::Uuid::from_u128(0x37AFFC90_EF7D_4E96_91C3_2D7AE055B174),
        "IBM GPFS Partition",
    ),
    (
        uuid::Uuid::from_u128(0xAA31E02A_400F_11DB_9590_000C2911D1B8),
        "VMware VMFS Partition (GPT)",
    ),
];

/// Zero `[off, off+len)` of an open device or file: holes punched / blocks
/// zeroed by the kernel where it can (`fallocate`, which on a block device
/// guarantees zeroes), written zeroes otherwise.
pub(crate) fn zero_at(f: &std::fs::File, off: u64, len: u64) -> Result<()> {
    use rustix::fs::{FallocateFlags, fallocate};
    if len == 0 {
        return Ok(());
    }
    let punched = fallocate(
        f,
        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
        off,
        len,
    )
    .or_else(|_| {
        fallocate(
            f,
            FallocateFlags::ZERO_RANGE | FallocateFlags::KEEP_SIZE,
            off,
            len,
        )
    });
    if punched.is_err() {
        let zeros = vec![0u8; MIB.min(len) as usize];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(zeros.len() as u64) as usize;
            f.write_all_at(&zeros[..n], off + done)
                .map_err(|e| AgentError::io("writing zeroes", e))?;
            done += n as u64;
        }
    }
    Ok(())
}

/// The regions that hold metadata: the first and last MiB of every partition
/// (reverse order, as IPA erases partitions before their disk) and of the disk.
pub(crate) fn metadata_regions(table: &partition::Table, size: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut edges = |start: u64, len: u64| {
        let head = MIB.min(len);
        out.push((start, head));
        if len > head {
            let tail = MIB.min(len - head);
            out.push((start + len - tail, tail));
        }
    };
    for p in table.partitions().iter().rev() {
        if p.start < size {
            edges(p.start, p.len.min(size - p.start));
        }
    }
    edges(0, size);
    out
}

/// IPA's `destroy_disk_metadata`: partition tables (both GPTs, the MBR),
/// filesystem, swap, LVM and RAID signatures of the disk and its partitions.
pub(crate) fn erase_metadata(path: &Path) -> Result<()> {
    let (f, size) = image::open_device(path)?;
    // a damaged table is no reason not to erase: the disk's edges go anyway
    let table = partition::read_table(&f).unwrap_or(partition::Table::None);
    for (off, len) in metadata_regions(&table, size) {
        zero_at(&f, off, len)?;
    }
    f.sync_all()
        .map_err(|e| AgentError::io(format!("fsync {}", path.display()), e))
}

/// Overwrite a device with random data `passes` times (IPA's `shred` iterations).
///
/// The data comes from a xoshiro256++ generator (`SmallRng`) seeded by
/// [`entropy::fill`]:
/// - never from `rand::rng()`, which seeds itself with a blocking
///   `getrandom(2)` that waits for the kernel's random pool on a machine
///   without a hardware RNG (QEMU TCG without RDRAND);
/// - not from a cryptographic generator: the overwrite hides old data, it is
///   no key (`shred` uses ISAAC), and ChaCha costs far more CPU per byte:
///   64 MiB took 15.9 s with `StdRng` and 0.56 s with `SmallRng` in a debug
///   build on the test host, and the QEMU test's debug-built agent did not
///   finish a 64 MiB pass under TCG in 3 minutes.
fn random_passes(path: &Path, passes: u64) -> Result<()> {
    use rand::{RngCore, SeedableRng, rngs::SmallRng};
    let (f, size) = image::open_device(path)?;
    let mut seed = <SmallRng as SeedableRng>::Seed::default();
    entropy::fill(&mut seed);
    let mut rng = SmallRng::from_seed(seed);
    let mut buf = vec![0u8; MIB as usize];
    for _ in 0..passes {
        let mut off = 0;
        while off < size {
            let n = ((size - off) as usize).min(buf.len());
            rng.fill_bytes(&mut buf[..n]);
            f.write_all_at(&buf[..n], off)
                .map_err(|e| AgentError::io(format!("overwriting {}", path.display()), e))?;
            off += n as u64;
        }
        f.sync_all()
            .map_err(|e| AgentError::io(format!("fsync {}", path.display()), e))?;
    }
    Ok(())
}

/// Zero a whole device.
fn zero_all(path: &Path) -> Result<()> {
    let (f, size) = image::open_device(path)?;
    zero_at(&f, 0, size)?;
    f.sync_all()
        .map_err(|e| AgentError::io(format!("fsync {}", path.display()), e))
}

/// `/sys/block/<name>` of a `/dev/<name>` device.
fn sys_block(st: &State, dev: &str) -> Option<PathBuf> {
    let name = dev.strip_prefix("/dev/")?;
    Some(st.cfg.sys_root.join("block").join(name))
}

/// Whether the kernel flags the device read-only.
fn read_only(st: &State, dev: &str) -> bool {
    sys_block(st, dev)
        .and_then(|p| std::fs::read_to_string(p.join("ro")).ok())
        .is_some_and(|s| s.trim() == "1")
}

/// Whether the device discards (`queue/discard_max_bytes` > 0), or is a file.
fn discards(st: &State, dev: &str) -> bool {
    sys_block(st, dev)
        .and_then(|p| std::fs::read_to_string(p.join("queue/discard_max_bytes")).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .is_some_and(|n| n > 0)
}

/// The virtual media device Ironic attaches (label `ir-vfd-dev`), never erased.
fn virtual_media_device() -> Option<String> {
    let link = Path::new("/dev/disk/by-label/ir-vfd-dev");
    std::fs::canonicalize(link)
        .ok()
        .map(|p| p.display().to_string())
}

fn u32_le_at(f: &std::fs::File, off: u64) -> Option<u32> {
    let mut b = [0u8; 4];
    f.read_exact_at(&mut b, off).ok()?;
    Some(u32::from_le_bytes(b))
}

/// Whether `[start, start+len)` holds an md superblock (0.90 and 1.0 near the
/// end, 1.1 at the start, 1.2 at 4 KiB).
pub(crate) fn has_md_superblock(f: &std::fs::File, start: u64, len: u64) -> bool {
    let mut at = vec![start, start + 4096];
    if len >= 128 << 10 {
        // 1.0: 8 KiB before the end, 4 KiB aligned
        let sectors = len / 512;
        at.push(start + ((sectors - 16) & !7) * 512);
        // 0.90: the last 64 KiB-aligned 64 KiB block
        at.push(start + (len & !0xFFFF) - 0x10000);
    }
    at.into_iter().any(|o| u32_le_at(f, o) == Some(MD_MAGIC))
}

/// Whether the disk or one of its partitions is a Linux RAID member.
fn is_raid_member(path: &Path) -> bool {
    let Ok((f, size)) = image::open_device(path) else {
        return false;
    };
    if has_md_superblock(&f, 0, size) {
        return true;
    }
    let table = partition::read_table(&f).unwrap_or(partition::Table::None);
    table
        .partitions()
        .iter()
        .any(|p| has_md_superblock(&f, p.start, p.len))
}

/// IPA's `safety_check_block_device`: refuse disks that hold a shared-disk
/// cluster filesystem (GPFS, VMFS, GFS2), unless the node says
/// `driver_internal_info.wipe_special_filesystems = false`.
fn safety_check(node: &Value, path: &Path) -> Result<()> {
    if !info_bool(
        node,
        "driver_internal_info",
        "wipe_special_filesystems",
        true,
    ) {
        return Ok(());
    }
    let Ok((f, size)) = image::open_device(path) else {
        return Ok(());
    };
    let table = partition::read_table(&f).unwrap_or(partition::Table::None);
    let protected = |what: &str| {
        Err(AgentError::CommandFailed(format!(
            "Protected device {} found: it holds a {what}; cleaning stopped. Set \
             driver_internal_info wipe_special_filesystems=false to erase it anyway",
            path.display()
        )))
    };
    for p in table.partitions() {
        match p.kind {
            partition::PartKind::Gpt(g) => {
                if let Some((_, what)) = GUARDED_GPT.iter().find(|(t, _)| *t == g) {
                    return protected(what);
                }
            }
            partition::PartKind::Mbr(0xfb) => return protected("VMware VMFS Partition (MBR)"),
            partition::PartKind::Mbr(_) => {}
        }
    }
    let gfs2 = |start: u64| {
        let mut b = [0u8; 4];
        f.read_exact_at(&mut b, start + 65536).is_ok() && u32::from_be_bytes(b) == GFS2_MAGIC
    };
    if (size > 65540 && gfs2(0)) || table.partitions().iter().any(|p| gfs2(p.start)) {
        return protected("Red Hat Global File System 2");
    }
    Ok(())
}

/// Which erase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Full,
    Metadata,
    Express,
}

/// IPA's `list_block_devices_check_skip_list` + `_list_erasable_devices`: the
/// disks minus the `skip_block_devices` hints, the virtual media device, RAID
/// members and read-only devices (a read-only device fails a full erase unless
/// `agent_erase_skip_read_only`).
fn erasable(st: &State, node: &Value, mode: Mode) -> Result<Vec<inventory::BlockDevice>> {
    let mut disks = inventory::disks(&st.cfg);
    if let Some(Value::Array(skip)) = info(node, "properties", "skip_block_devices") {
        for hint in skip {
            let Some(h) = hint.as_object() else {
                return Err(AgentError::InvalidParams(format!(
                    "properties.skip_block_devices must be a list of device hints, got {hint}"
                )));
            };
            if h.contains_key("volume_name") {
                continue; // RAID volumes: see the raid steps
            }
            let mut kept = Vec::new();
            for d in disks {
                if hints::matches(h, &d)? {
                    tracing::warn!(device = %d.name, hint = %hint, "skipping a device of skip_block_devices");
                } else {
                    kept.push(d);
                }
            }
            disks = kept;
        }
    }
    let vmedia = virtual_media_device();
    let mut out = Vec::new();
    for d in disks {
        if vmedia.as_deref() == Some(d.name.as_str()) {
            tracing::info!(device = %d.name, "skipping the virtual media device");
            continue;
        }
        if is_raid_member(Path::new(&d.name)) {
            tracing::info!(device = %d.name, "skipping a RAID member device");
            continue;
        }
        if read_only(st, &d.name) {
            if mode == Mode::Full
                && !info_bool(
                    node,
                    "driver_internal_info",
                    "agent_erase_skip_read_only",
                    false,
                )
            {
                return Err(AgentError::CommandFailed(format!(
                    "Failed to invoke erase of device {} as the device is flagged read-only, \
                     and the conductor has not signaled this is a permitted case",
                    d.name
                )));
            }
            tracing::info!(device = %d.name, "skipping a read-only device");
            continue;
        }
        out.push(d);
    }
    Ok(out)
}

/// The lines of `hdparm -I`'s "Security:" section, as IPA's
/// `_get_ata_security_lines` reads them (`"supported"`, `"not frozen"`, ...).
pub(crate) fn ata_security_lines(hdparm_i: &str) -> Vec<String> {
    let Some((_, rest)) = hdparm_i.split_once("\nSecurity: \n") else {
        return Vec::new();
    };
    rest.lines()
        .take_while(|l| l.starts_with('\t'))
        .map(|l| l.trim().replace('\t', " "))
        .collect()
}

/// Whether a disk's driver never speaks ATA (virtio-blk `vd*`, Xen `xvd*`): ATA
/// IDENTIFY always fails on it, so the answer is known without hdparm (a ramdisk
/// for VMs need not ship it). Every other disk is asked, and a missing hdparm
/// stays an error there.
fn never_ata(dev: &str) -> bool {
    let name = dev.rsplit('/').next().unwrap_or(dev);
    name.starts_with("vd") || name.starts_with("xvd")
}

/// The security lines of a drive; none when it does not answer ATA IDENTIFY
/// (virtio, loop, SCSI without ATA passthrough). A missing hdparm is an error.
async fn hdparm_security(dev: &str) -> Result<Vec<String>> {
    if never_ata(dev) {
        tracing::debug!(
            device = dev,
            "a paravirtual disk: no ATA security to ask for"
        );
        return Ok(Vec::new());
    }
    let out = run_tool_status("hdparm", &argv(&["-I", dev])).await?;
    if !out.status.success() {
        tracing::debug!(device = dev, error = %out.stderr.trim(), "no ATA IDENTIFY");
        return Ok(Vec::new());
    }
    Ok(ata_security_lines(&out.stdout))
}

/// IPA's `_smartctl_security_check`: false when smartctl says ATA security is
/// unavailable through direct ATA commands (bridged devices); true when
/// smartctl is not in the ramdisk.
async fn smartctl_allows(dev: &str) -> bool {
    match run_tool_status("smartctl", &argv(&["-d", "ata", dev, "-g", "security"])).await {
        Err(_) => true,
        Ok(o) if o.status.code().is_some_and(|c| c == 0 || c == 127) => {
            !o.stdout.contains("Unavailable")
        }
        Ok(_) => false,
    }
}

/// IPA's `_ata_erase`: `Ok(None)` when the drive has no ATA security,
/// `Ok(Some(how))` when erased, an error when the drive supports it but the
/// erase cannot be done (frozen, a password set, the erase failed).
async fn ata_erase(dev: &str) -> Result<Option<String>> {
    let mut sec = hdparm_security(dev).await?;
    let has = |sec: &[String], w: &str| sec.iter().any(|l| l == w);
    if !smartctl_allows(dev).await || !has(&sec, "supported") {
        return Ok(None);
    }
    if !has(&sec, "not frozen") {
        return Err(AgentError::CommandFailed(format!(
            "Block device {dev} is frozen and cannot be erased"
        )));
    }
    let unlock = |sec: Vec<String>| async move {
        let mut sec = sec;
        for pw in ["NULL", ""] {
            if sec.iter().any(|l| l == "not locked") {
                break;
            }
            if let Err(e) = run_tool(
                "hdparm",
                &argv(&["--user-master", "u", "--security-unlock", pw, dev]),
            )
            .await
            {
                tracing::info!(device = dev, error = %e, "security unlock failed");
            }
            sec = hdparm_security(dev).await?;
        }
        Ok::<_, AgentError>(sec)
    };
    sec = unlock(sec).await?;
    if !has(&sec, "not locked") {
        return Err(AgentError::CommandFailed(format!(
            "Block device {dev} already has a security password set"
        )));
    }
    if has(&sec, "not enabled") {
        run_tool(
            "hdparm",
            &argv(&["--user-master", "u", "--security-set-pass", "NULL", dev]),
        )
        .await
        .map_err(|e| {
            AgentError::CommandFailed(format!(
                "Security password set failed for device {dev}: {e}"
            ))
        })?;
    }
    let option = if has(&sec, "not supported: enhanced erase") {
        "--security-erase"
    } else {
        "--security-erase-enhanced"
    };
    if let Err(e) = run_tool(
        "hdparm",
        &argv(&["--user-master", "u", option, "NULL", dev]),
    )
    .await
    {
        // unlock so that the overwrite fallback can write to the drive
        let _ = unlock(hdparm_security(dev).await.unwrap_or_default()).await;
        return Err(AgentError::CommandFailed(format!(
            "Erase failed for device {dev}: {e}"
        )));
    }
    if !has(&hdparm_security(dev).await?, "not enabled") {
        return Err(AgentError::CommandFailed(format!(
            "An unknown error occurred erasing block device {dev}"
        )));
    }
    Ok(Some(format!("ATA {}", option.trim_start_matches("--"))))
}

/// The `nvme format --ses` mode IPA picks from `nvme id-ctrl -o json`: 2
/// (cryptographic erase) when `fna` bit 2 is set, else 1 (user data erase) when
/// `oacs` bit 1 (Format NVM) is set.
pub(crate) fn nvme_format_mode(id_ctrl: &Value) -> std::result::Result<u8, String> {
    let oacs = id_ctrl
        .get("oacs")
        .and_then(Value::as_u64)
        .ok_or("nvme-cli did not return any information")?;
    if oacs & 0b10 == 0 {
        return Err("nvme-cli did not return any supported format modes".into());
    }
    let fna = id_ctrl.get("fna").and_then(Value::as_u64).unwrap_or(0);
    Ok(if fna & 0b100 != 0 { 2 } else { 1 })
}

/// IPA's `_nvme_erase`.
async fn nvme_erase(dev: &str) -> Result<String> {
    let out = run_tool("nvme", &argv(&["id-ctrl", dev, "-o", "json"]))
        .await
        .map_err(|e| {
            AgentError::CommandFailed(format!(
                "Failed to fetch NVMe capabilities for device {dev}: {e}"
            ))
        })?;
    let id: Value = serde_json::from_str(&out).map_err(|e| {
        AgentError::CommandFailed(format!("nvme id-ctrl {dev} printed no JSON: {e}"))
    })?;
    let mode = nvme_format_mode(&id)
        .map_err(|m| AgentError::CommandFailed(format!("{m} for device: {dev}")))?;
    run_tool(
        "nvme",
        &argv(&["format", dev, "-s", &mode.to_string(), "-f"]),
    )
    .await
    .map_err(|e| AgentError::CommandFailed(format!("Failed to nvme format device {dev}: {e}")))?;
    Ok(format!("nvme format --ses={mode}"))
}

fn is_nvme(dev: &str) -> bool {
    dev.starts_with("/dev/nvme")
}

/// IPA's `erase_block_device`: secure erase when the hardware can and the node
/// allows it; otherwise (or after a failed secure erase when
/// `agent_continue_if_secure_erase_failed`) overwrite: random passes
/// (`agent_erase_devices_iterations`, default 1) then zeroes
/// (`agent_erase_devices_zeroize`, default true).
async fn erase_device(node: &Value, d: &inventory::BlockDevice) -> Result<String> {
    let path = PathBuf::from(&d.name);
    if is_block_device(&path) {
        let key = if is_nvme(&d.name) {
            "agent_enable_nvme_secure_erase"
        } else {
            "agent_enable_ata_secure_erase"
        };
        if info_bool(node, "driver_internal_info", key, true) {
            let secure = if is_nvme(&d.name) {
                nvme_erase(&d.name).await.map(Some)
            } else {
                ata_erase(&d.name).await
            };
            match secure {
                Ok(Some(how)) => return Ok(how),
                Ok(None) => {}
                Err(e) => {
                    // the older name, for conductors that only send it
                    let go_on = info(
                        node,
                        "driver_internal_info",
                        "agent_continue_if_secure_erase_failed",
                    )
                    .or_else(|| {
                        info(
                            node,
                            "driver_internal_info",
                            "agent_continue_if_ata_erase_failed",
                        )
                    })
                    .and_then(super::as_bool)
                    .unwrap_or(false);
                    if !go_on {
                        return Err(AgentError::CommandFailed(format!(
                            "Failed to invoke secure erase, fallback to shred is not enabled: {e}"
                        )));
                    }
                    tracing::warn!(device = %d.name, error = %e, "secure erase failed, falling back to overwriting");
                }
            }
        }
    }
    let passes = info_u64(
        node,
        "driver_internal_info",
        "agent_erase_devices_iterations",
        1,
    )?;
    let zeroize = info_bool(
        node,
        "driver_internal_info",
        "agent_erase_devices_zeroize",
        true,
    );
    if passes == 0 && !zeroize {
        return Ok("nothing to do: agent_erase_devices_iterations=0 and zeroize off".into());
    }
    if !is_block_device(&path) {
        // a disk file (tests, the lab): its blocks are freed, which reads back
        // as zeroes; overwriting a file with random data protects nothing
        let p = path.clone();
        blocking(move || zero_all(&p)).await?;
        return Ok("disk file: zeroed (holes punched); overwrite passes are for devices".into());
    }
    let p = path.clone();
    blocking(move || {
        random_passes(&p, passes)?;
        if zeroize {
            zero_all(&p)?;
        }
        Ok(())
    })
    .await?;
    Ok(format!(
        "overwritten: {passes} random pass(es){}",
        if zeroize { " and zeroes" } else { "" }
    ))
}

/// Ask the kernel to re-read a block device's partition table (best effort).
async fn reread_partitions(dev: &str) {
    if is_block_device(Path::new(dev)) {
        let _ = run_tool("blockdev", &argv(&["--rereadpt", dev])).await;
    }
}

/// `erase_devices`: every erasable disk, `disk_erasure_concurrency` at a time.
/// The result maps each device to how it was erased.
pub(crate) async fn erase_devices(st: &Arc<State>, node: &Value) -> Result<Value> {
    let disks = erasable(st, node, Mode::Full)?;
    for d in &disks {
        safety_check(node, Path::new(&d.name))?;
    }
    let n = info_u64(node, "driver_internal_info", "disk_erasure_concurrency", 1)?.max(1) as usize;
    let results: Vec<(String, Result<String>)> = futures::stream::iter(disks)
        .map(|d| async move {
            let r = erase_device(node, &d).await;
            reread_partitions(&d.name).await;
            (d.name, r)
        })
        .buffer_unordered(n)
        .collect()
        .await;
    let mut done = Map::new();
    let mut errors = Vec::new();
    for (name, r) in results {
        match r {
            Ok(how) => {
                done.insert(name, json!(how));
            }
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    if !errors.is_empty() {
        errors.sort();
        return Err(AgentError::CommandFailed(errors.join("; ")));
    }
    Ok(Value::Object(done))
}

/// `erase_devices_metadata`.
pub(crate) async fn erase_devices_metadata(st: &Arc<State>, node: &Value) -> Result<Value> {
    let mut done = Vec::new();
    let mut errors = Vec::new();
    for d in erasable(st, node, Mode::Metadata)? {
        safety_check(node, Path::new(&d.name))?;
        let p = PathBuf::from(&d.name);
        match blocking(move || erase_metadata(&p)).await {
            Ok(()) => done.push(d.name.clone()),
            Err(e) => errors.push(format!("\"{}\": {e}", d.name)),
        }
        reread_partitions(&d.name).await;
    }
    if !errors.is_empty() {
        return Err(AgentError::CommandFailed(format!(
            "Failed to erase the metadata on the device(s): {}",
            errors.join("; ")
        )));
    }
    Ok(json!({"erased": done, "method": "metadata"}))
}

/// `erase_devices_express`: NVMe format where the device and the node allow it;
/// otherwise a discard of the whole device where it supports one, then the
/// metadata erase (always, so nothing recognisable is left even when the
/// device ignores discards).
pub(crate) async fn erase_devices_express(st: &Arc<State>, node: &Value) -> Result<Value> {
    let mut done = Map::new();
    let mut errors = Vec::new();
    for d in erasable(st, node, Mode::Express)? {
        safety_check(node, Path::new(&d.name))?;
        let path = PathBuf::from(&d.name);
        let mut how = Vec::new();
        let mut secure_error = None;
        if is_block_device(&path) {
            if is_nvme(&d.name)
                && info_bool(
                    node,
                    "driver_internal_info",
                    "agent_enable_nvme_secure_erase",
                    true,
                )
            {
                match nvme_erase(&d.name).await {
                    Ok(h) => {
                        done.insert(d.name.clone(), json!(h));
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(device = %d.name, error = %e, "secure erase failed, falling back to the metadata erase");
                        how.push(format!("secure erase failed ({e})"));
                        secure_error = Some(e);
                    }
                }
            }
            if discards(st, &d.name) {
                match run_tool("blkdiscard", &argv(&["-f", &d.name])).await {
                    Ok(_) => how.push("discarded".into()),
                    Err(e) => how.push(format!("not discarded ({e})")),
                }
            }
        } else {
            let p = path.clone();
            blocking(move || zero_all(&p)).await?;
            how.push("discarded (holes punched in the disk file)".into());
        }
        let p = path.clone();
        match blocking(move || erase_metadata(&p)).await {
            Ok(()) => how.push("metadata erased".into()),
            Err(e) => errors.push(match secure_error {
                Some(s) => format!(
                    "\"{}\": Secure erase failed: {s}. Fallback to metadata erase also failed: {e}.",
                    d.name
                ),
                None => format!("\"{}\": {e}", d.name),
            }),
        }
        reread_partitions(&d.name).await;
        done.insert(d.name.clone(), json!(how.join(", ")));
    }
    if !errors.is_empty() {
        return Err(AgentError::CommandFailed(format!(
            "Failed to conduct an express erase on the device(s): {}",
            errors.join("\n")
        )));
    }
    Ok(Value::Object(done))
}

/// `erase_pstore`: delete the kernel's saved crash records (IPA's
/// `_find_pstore_mount_point` reads `/proc/mounts`).
pub(crate) async fn erase_pstore(st: &Arc<State>) -> Result<Value> {
    let mounts = std::fs::read_to_string(st.cfg.proc_root.join("mounts")).unwrap_or_default();
    let Some(dir) = pstore_mount(&mounts) else {
        return Ok(json!({"erased": [], "note": "No pstore found"}));
    };
    let mut erased = Vec::new();
    for e in std::fs::read_dir(&dir)
        .map_err(|e| AgentError::io(format!("listing {}", dir.display()), e))?
    {
        let e = e.map_err(|e| AgentError::io("listing pstore", e))?;
        let p = e.path();
        let r = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        r.map_err(|err| AgentError::io(format!("removing {}", p.display()), err))?;
        erased.push(e.file_name().to_string_lossy().into_owned());
    }
    erased.sort();
    Ok(json!({"erased": erased, "pstore": dir}))
}

/// The pstore mount point in a `/proc/mounts` text (`pstore <dir> pstore ...`).
pub(crate) fn pstore_mount(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.len() >= 3 && w[0] == "pstore" && w[2] == "pstore").then(|| PathBuf::from(w[1]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HDPARM: &str = "/dev/sda:\n\nATA device, with non-removable media\n\tModel Number:       \
        INTEL SSDSC2BB480G4\nSecurity: \n\tMaster password revision code = 65534\n\t\tsupported\n\
        \tnot\tenabled\n\tnot\tlocked\n\tnot\tfrozen\n\tnot\texpired: security count\n\t\tsupported: \
        enhanced erase\n\t2min for SECURITY ERASE UNIT. 2min for ENHANCED SECURITY ERASE UNIT.\n\
        Logical Unit WWN Device Identifier: 55cd2e404c2b9d0b\n";

    #[test]
    fn paravirtual_disks_are_never_ata() {
        assert!(never_ata("/dev/vda"));
        assert!(never_ata("/dev/xvdb"));
        assert!(!never_ata("/dev/sda"));
        assert!(!never_ata("/dev/nvme0n1"));
        assert!(!never_ata("/dev/loop3"));
    }

    #[test]
    fn hdparm_security_section_as_ipa_reads_it() {
        let l = ata_security_lines(HDPARM);
        for w in [
            "supported",
            "not enabled",
            "not locked",
            "not frozen",
            "supported: enhanced erase",
        ] {
            assert!(l.iter().any(|x| x == w), "{w} in {l:?}");
        }
        assert!(!l.iter().any(|x| x.contains("WWN")), "{l:?}");
        assert!(ata_security_lines("/dev/vda:\n HDIO_DRIVE_CMD(identify) failed").is_empty());
        let frozen = HDPARM.replace("\tnot\tfrozen", "\t\tfrozen");
        assert!(
            !ata_security_lines(&frozen)
                .iter()
                .any(|x| x == "not frozen")
        );
    }

    #[test]
    fn nvme_format_mode_from_id_ctrl() {
        assert_eq!(nvme_format_mode(&json!({"oacs": 0x17, "fna": 4})), Ok(2));
        assert_eq!(nvme_format_mode(&json!({"oacs": 0x2, "fna": 0})), Ok(1));
        assert!(nvme_format_mode(&json!({"oacs": 0x1, "fna": 4})).is_err());
        assert!(nvme_format_mode(&json!({})).is_err());
    }

    #[test]
    fn pstore_from_proc_mounts() {
        let m = "sysfs /sys sysfs rw 0 0\npstore /sys/fs/pstore pstore rw,nosuid 0 0\n";
        assert_eq!(pstore_mount(m), Some(PathBuf::from("/sys/fs/pstore")));
        assert_eq!(pstore_mount("none /x tmpfs rw 0 0\npstore\n"), None);
    }

    fn disk(size: u64) -> (tempfile::NamedTempFile, std::fs::File) {
        let t = tempfile::NamedTempFile::new().unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(t.path())
            .unwrap();
        f.set_len(size).unwrap();
        (t, f)
    }

    #[test]
    fn md_superblocks_of_every_version_are_found() {
        let size = 64 << 20;
        let sectors = size / 512;
        for off in [
            0,
            4096,
            ((sectors - 16) & !7) * 512,
            (size & !0xFFFF) - 0x10000,
        ] {
            let (_t, f) = disk(size);
            assert!(!has_md_superblock(&f, 0, size));
            f.write_all_at(&MD_MAGIC.to_le_bytes(), off).unwrap();
            assert!(has_md_superblock(&f, 0, size), "magic at {off}");
        }
    }

    #[test]
    fn metadata_erase_clears_partition_and_disk_edges() {
        let size = 64 << 20;
        let (t, f) = disk(size);
        let specs = [
            partition::PartSpec {
                name: "a".into(),
                type_guid: partition::LINUX_FS,
                size: 8 << 20,
            },
            partition::PartSpec {
                name: "b".into(),
                type_guid: partition::LINUX_FS,
                size: 16 << 20,
            },
        ];
        let (_, parts) = partition::create_gpt(&f, size, &specs).unwrap();
        let junk = vec![0x5Au8; 2 << 20];
        for p in &parts {
            let n = (2 << 20).min(p.len as usize);
            f.write_all_at(&junk[..n], p.start).unwrap();
            f.write_all_at(&junk[..MIB as usize], p.start + p.len - MIB)
                .unwrap();
        }
        // data in the middle of a partition stays
        let mid = parts[1].start + 4 * MIB;
        f.write_all_at(&[0x77; 512], mid).unwrap();
        erase_metadata(t.path()).unwrap();
        let all = std::fs::read(t.path()).unwrap();
        for p in &parts {
            let s = p.start as usize;
            assert!(all[s..s + MIB as usize].iter().all(|&b| b == 0));
            let e = (p.start + p.len) as usize;
            assert!(all[e - MIB as usize..e].iter().all(|&b| b == 0));
        }
        assert!(
            all[..MIB as usize].iter().all(|&b| b == 0),
            "both GPTs gone"
        );
        assert!(all[all.len() - MIB as usize..].iter().all(|&b| b == 0));
        assert_eq!(&all[mid as usize..mid as usize + 512], &[0x77; 512][..]);
        assert!(matches!(
            partition::read_table(&f).unwrap(),
            partition::Table::None
        ));
    }

    #[test]
    fn random_passes_fill_the_device_with_fresh_data_each_pass() {
        let size = 3 * MIB + 4096;
        let (t, _f) = disk(size);
        random_passes(t.path(), 1).unwrap();
        let first = std::fs::read(t.path()).unwrap();
        assert_eq!(first.len() as u64, size, "the device keeps its size");
        // no 4 KiB block left as it was (zeroes), and the generator moves on
        // between the 1 MiB buffers it fills
        assert!(first.chunks(4096).all(|b| b.iter().any(|&x| x != 0)));
        let m = MIB as usize;
        assert_ne!(&first[..m], &first[m..2 * m]);
        random_passes(t.path(), 1).unwrap();
        let second = std::fs::read(t.path()).unwrap();
        assert_ne!(first, second, "a second pass writes other data");
    }

    #[test]
    fn shared_cluster_filesystems_are_guarded() {
        let size = 32 << 20;
        let (t, f) = disk(size);
        let specs = [partition::PartSpec {
            name: "gpfs".into(),
            type_guid: GUARDED_GPT[0].0,
            size: 8 << 20,
        }];
        partition::create_gpt(&f, size, &specs).unwrap();
        let e = safety_check(&json!({}), t.path()).unwrap_err();
        assert!(e.to_string().contains("IBM GPFS"), "{e}");
        safety_check(
            &json!({"driver_internal_info": {"wipe_special_filesystems": false}}),
            t.path(),
        )
        .unwrap();
        let (t, f) = disk(size);
        f.write_all_at(&GFS2_MAGIC.to_be_bytes(), 65536).unwrap();
        let e = safety_check(&json!({}), t.path()).unwrap_err();
        assert!(e.to_string().contains("Global File System 2"), "{e}");
    }
}
