//! Software RAID (`create_configuration`, `delete_configuration`,
//! `apply_configuration`) with mdadm, as IPA's generic hardware manager does it
//! (`hardware.py` and `raid_utils.py`):
//!
//! - the node's `target_raid_config` (Ironic's filtered copy in
//!   `driver_internal_info` first) with `controller: software` logical disks,
//!   validated by IPA's rules (one or two logical disks, the first RAID-1, one
//!   `MAX` at most, levels 0/1/1+0/5/6, unique volume names, `physical_disks` as
//!   device hints);
//! - on each member disk a fresh partition table (GPT in UEFI mode, else the
//!   `disk_label` capability or msdos) with the first RAID partition after room
//!   for the ESP (551 MiB, UEFI) or a BIOS boot partition (8 MiB, GPT in BIOS
//!   mode), one partition per logical disk (`MAX` last), typed Linux RAID;
//! - `mdadm --create /dev/mdN --force --run --metadata=1 --level L --name
//!   <volume_name or mdN> --raid-devices n <partitions>`, members missing from
//!   the array re-added;
//! - delete: arrays assembled (`mdadm --assemble --scan`), each wiped, stopped,
//!   its members' superblocks zeroed, every leftover superblock on the disks
//!   zeroed, the holder disks' partition tables erased; arrays whose volume name
//!   is in `skip_block_devices` are kept (with their disks' tables), as IPA.
//!
//! The partition tables are written by this crate (`image::partition`), not
//! with parted; only `mdadm` is needed in the ramdisk.
//!
//! Better than IPA: the root volume (`is_root_volume`) is found again after the
//! ramdisk reboots between cleaning and deployment (IPA keeps it in memory and
//! then guesses), from the node's `raid_config` and the arrays' volume names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{argv, info, run_tool, run_tool_status};
use crate::agent::State;
use crate::agent::hints;
use crate::agent::inventory::{self, BlockDevice};
use crate::error::{AgentError, Result};
use crate::image::{self, partition};

/// Room left before the first RAID partition for the ESP in UEFI mode
/// (IPA's `ESP_SIZE_MIB` + 1).
pub(crate) const ESP_SIZE_MIB: u64 = 550;
const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// The size of a logical disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Size {
    Gib(u64),
    Max,
}

/// One logical disk of a software RAID configuration.
#[derive(Clone, Debug)]
struct LogicalDisk {
    size: Size,
    level: String,
    volume_name: Option<String>,
    is_root_volume: Option<bool>,
    physical_disks: Option<Vec<Map<String, Value>>>,
    software: bool,
}

fn invalid(msg: impl Into<String>) -> AgentError {
    AgentError::InvalidParams(msg.into())
}

fn raid_error(msg: impl Into<String>) -> AgentError {
    AgentError::CommandFailed(format!("Software RAID error: {}", msg.into()))
}

impl LogicalDisk {
    fn parse(v: &Value) -> Result<Self> {
        let o = v
            .as_object()
            .ok_or_else(|| invalid(format!("a logical disk must be an object, got {v}")))?;
        let size = match o.get("size_gb") {
            Some(Value::String(s)) if s == "MAX" => Size::Max,
            Some(Value::String(s)) => Size::Gib(
                s.trim()
                    .parse()
                    .map_err(|_| invalid(format!("size_gb must be a number or MAX, not {s:?}")))?,
            ),
            Some(Value::Number(n)) => Size::Gib(
                n.as_u64()
                    .ok_or_else(|| invalid(format!("size_gb must be a whole number, not {n}")))?,
            ),
            other => {
                return Err(invalid(format!(
                    "every logical disk needs size_gb (a number of GiB or MAX), got {}",
                    other.map_or("nothing".to_owned(), Value::to_string)
                )));
            }
        };
        let level = match o.get("raid_level") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(invalid("every logical disk needs raid_level")),
        };
        let volume_name = match o.get("volume_name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => return Err(invalid(format!("volume_name must be a string, not {v}"))),
        };
        let physical_disks = match o.get("physical_disks") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|h| {
                        h.as_object().cloned().ok_or_else(|| {
                            invalid(
                                "The physical_disks parameter for software RAID must be a \
                                 list of device hints (dictionaries)",
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
            Some(_) => {
                return Err(invalid(
                    "The physical_disks parameter for software RAID must be a list with at \
                     least 2 items, each specifying a disk in the device hints format",
                ));
            }
        };
        Ok(LogicalDisk {
            size,
            level,
            volume_name,
            is_root_volume: o.get("is_root_volume").and_then(super::as_bool),
            physical_disks,
            software: o.get("controller").and_then(Value::as_str) == Some("software"),
        })
    }

    /// The level as mdadm takes it (`1+0` is `10`).
    fn mdadm_level(&self) -> &str {
        if self.level == "1+0" {
            "10"
        } else {
            &self.level
        }
    }
}

fn logical_disks(cfg: &Value) -> Result<Vec<LogicalDisk>> {
    match cfg.get("logical_disks") {
        Some(Value::Array(a)) if !a.is_empty() => a.iter().map(LogicalDisk::parse).collect(),
        _ => Err(raid_error("RAID config contains no logical disks")),
    }
}

/// IPA's `validate_configuration`: every rule, all errors at once.
fn validate(cfg: &Value, node: &Value, disk_count: usize) -> Result<Vec<LogicalDisk>> {
    let lds = logical_disks(cfg)?;
    let mut errors = Vec::new();
    if !(1..=2).contains(&lds.len()) {
        errors.push("Software RAID configuration requires one or two logical disks".to_owned());
    }
    let skip_volumes = skip_volume_names(node)?;
    let mut names = Vec::new();
    let mut root = false;
    for ld in &lds {
        if !ld.software {
            errors.push(
                "Software RAID configuration requires all logical disks to have \
                 'controller'='software'"
                    .into(),
            );
        }
        match &ld.volume_name {
            None if !skip_volumes.is_empty() => errors.push(
                "All logical disks are required to have a volume name specified as a volume \
                 name is mentioned in the property skip block devices."
                    .into(),
            ),
            None => {}
            Some(n) if names.contains(n) => {
                errors.push(format!("Duplicate software RAID device name {n} detected"))
            }
            Some(n) => names.push(n.clone()),
        }
        if ld.is_root_volume == Some(true) {
            if root {
                errors.push(
                    "Software RAID configuration allows only one logical disk to be marked as \
                     is_root_volume"
                        .into(),
                );
            }
            root = true;
        }
        if let Some(p) = &ld.physical_disks
            && p.len() < 2
        {
            errors.push(
                "The physical_disks parameter for software RAID must be a list with at least 2 \
                 items, each specifying a disk in the device hints format"
                    .into(),
            );
        }
        if !["0", "1", "1+0", "5", "6"].contains(&ld.level.as_str()) {
            errors.push(format!(
                "Software RAID configuration does not support RAID level {}",
                ld.level
            ));
        }
    }
    if lds[0].level != "1" {
        errors
            .push("Software RAID Configuration requires RAID-1 for the first logical disk".into());
    }
    if lds.len() == 2 {
        if lds[0].size == Size::Max && lds[1].size == Size::Max {
            errors.push("Software RAID can have only one RAID device with size 'MAX'".into());
        }
        let level = lds[1].level.as_str();
        if level == "5" && disk_count < 3 {
            errors.push(format!(
                "Software RAID configuration is not possible for RAID level 5 with only \
                 {disk_count} block devices found."
            ));
        }
        if level == "6" && disk_count < 4 {
            errors.push(format!(
                "Software RAID configuration is not possible for RAID level 6 with only \
                 {disk_count} block devices found."
            ));
        }
    }
    if errors.is_empty() {
        Ok(lds)
    } else {
        Err(raid_error(format!(
            "Could not validate Software RAID config for {}: {}",
            node.get("uuid")
                .and_then(Value::as_str)
                .unwrap_or("the node"),
            errors.join("; ")
        )))
    }
}

/// The `volume_name` hints of `properties.skip_block_devices`.
fn skip_volume_names(node: &Value) -> Result<Vec<String>> {
    let mut out = Vec::new();
    if let Some(v) = info(node, "properties", "skip_block_devices") {
        let Value::Array(a) = v else {
            return Err(invalid(format!(
                "properties.skip_block_devices must be a list of device hints, got {v}"
            )));
        };
        for h in a {
            if let Some(n) = h.get("volume_name").and_then(Value::as_str) {
                out.push(n.to_owned());
            }
        }
    }
    Ok(out)
}

/// The disks RAID may use: the agent's disks minus the non-RAID hints of
/// `skip_block_devices` (IPA takes every disk; a disk the operator protects
/// is left alone here).
fn usable_disks(st: &State, node: &Value) -> Result<Vec<BlockDevice>> {
    let mut disks = inventory::disks(&st.cfg);
    if let Some(Value::Array(skip)) = info(node, "properties", "skip_block_devices") {
        for hint in skip {
            let Some(h) = hint.as_object() else {
                return Err(invalid(format!(
                    "properties.skip_block_devices must be a list of device hints, got {hint}"
                )));
            };
            if h.contains_key("volume_name") {
                continue;
            }
            let mut kept = Vec::new();
            for d in disks {
                if hints::matches(h, &d)? {
                    tracing::warn!(device = %d.name, hint = %hint, "software RAID: skipping a device of skip_block_devices");
                } else {
                    kept.push(d);
                }
            }
            disks = kept;
        }
    }
    Ok(disks)
}

/// A software RAID array the kernel knows (`/sys/block/mdN`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MdDevice {
    /// `/dev/md0`.
    pub name: String,
    /// `raid1`, `raid0`, ... (`md/level`).
    pub level: String,
    /// Size in bytes.
    pub size: u64,
    /// Member devices (`/dev/vda1`).
    pub members: Vec<String>,
    /// The disks holding the members (`/dev/vda`).
    pub holders: Vec<String>,
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The disk a block device belongs to (itself for a whole disk), by its place
/// in sysfs: `/sys/class/block/vda1` -> `.../block/vda/vda1`.
fn holder_of(sys: &Path, kname: &str) -> String {
    let link = sys.join("class/block").join(kname);
    if link.join("partition").exists()
        && let Ok(real) = std::fs::canonicalize(&link)
        && let Some(parent) = real.parent().and_then(Path::file_name)
    {
        return format!("/dev/{}", parent.to_string_lossy());
    }
    format!("/dev/{kname}")
}

/// The software RAID arrays of the machine (IPA's `list_all_block_devices`
/// of type raid/md), in name order.
pub(crate) fn md_devices(sys: &Path) -> Vec<MdDevice> {
    let Ok(rd) = std::fs::read_dir(sys.join("block")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("md"))
        .collect();
    names.sort_by_key(|n| (n.len(), n.clone()));
    let mut out = Vec::new();
    for n in names {
        let b = sys.join("block").join(&n);
        let mut members: Vec<String> = std::fs::read_dir(b.join("slaves"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        members.sort();
        let mut holders = Vec::new();
        for m in &members {
            let h = holder_of(sys, m);
            if !holders.contains(&h) {
                holders.push(h);
            }
        }
        out.push(MdDevice {
            name: format!("/dev/{n}"),
            level: read_trim(&b.join("md/level")).unwrap_or_default(),
            size: read_trim(&b.join("size"))
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
                * 512,
            members: members.iter().map(|m| format!("/dev/{m}")).collect(),
            holders,
        });
    }
    out
}

/// The volume name of an array as `mdadm --detail` prints it (`Name :
/// host:name (local to host host)`), as IPA's `get_volume_name_of_raid_device`.
pub(crate) fn parse_volume_name(detail: &str) -> Option<String> {
    let line = detail
        .lines()
        .find(|l| l.trim_start().starts_with("Name :"))?;
    let value = line.split_once(':')?.1.trim();
    let value = value.split(' ').next()?;
    let name = value.rsplit(':').next()?;
    (!name.is_empty()).then(|| name.to_owned())
}

pub(crate) async fn volume_name(md: &str) -> Option<String> {
    match run_tool("mdadm", &argv(&["--detail", md])).await {
        Ok(out) => parse_volume_name(&out),
        Err(e) => {
            tracing::warn!(device = md, error = %e, "could not read the volume name");
            None
        }
    }
}

/// The first free `/dev/mdN` from `from` on.
pub(crate) fn free_md(sys: &Path, from: u32) -> Result<String> {
    (from..128)
        .map(|i| format!("md{i}"))
        .find(|n| !sys.join("block").join(n).exists() && !Path::new("/dev").join(n).exists())
        .map(|n| format!("/dev/{n}"))
        .ok_or_else(|| raid_error("No free md (RAID) devices are left"))
}

/// IPA's `get_node_boot_mode`: secure boot means UEFI; then
/// `instance_info.deploy_boot_mode`, the `boot_mode` capability,
/// `driver_internal_info.deploy_boot_mode`, else how the ramdisk booted.
pub(crate) fn node_boot_mode(st: &State, node: &Value) -> &'static str {
    let caps = |section: &str| capabilities(node.get(section).and_then(|s| s.get("capabilities")));
    let ii = caps("instance_info");
    let props = caps("properties");
    let secure = |c: &Map<String, Value>| {
        c.get("secure_boot")
            .and_then(super::as_bool)
            .unwrap_or(false)
    };
    if secure(&ii) || secure(&props) {
        return "uefi";
    }
    let ramdisk = if st.cfg.sys_root.join("firmware/efi").is_dir() {
        "uefi"
    } else {
        "bios"
    };
    let mode = info(node, "instance_info", "deploy_boot_mode")
        .or_else(|| props.get("boot_mode"))
        .or_else(|| info(node, "driver_internal_info", "deploy_boot_mode"))
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    match mode.as_deref() {
        Some("uefi") => "uefi",
        Some("bios") => "bios",
        _ => ramdisk,
    }
}

/// Ironic's capabilities: a `"k1:v1,k2:v2"` string or an object.
fn capabilities(v: Option<&Value>) -> Map<String, Value> {
    match v {
        Some(Value::Object(o)) => o.clone(),
        Some(Value::String(s)) => s
            .split(',')
            .filter_map(|kv| kv.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), json!(v.trim())))
            .collect(),
        _ => Map::new(),
    }
}

/// IPA's `get_partition_table_type_from_specs`: GPT in UEFI mode, else the
/// `disk_label` capability (instance_info first), else msdos.
fn table_type(st: &State, node: &Value) -> &'static str {
    if node_boot_mode(st, node) == "uefi" {
        return "gpt";
    }
    let ii = capabilities(node.pointer("/instance_info/capabilities"));
    let props = capabilities(node.pointer("/properties/capabilities"));
    match ii
        .get("disk_label")
        .or_else(|| props.get("disk_label"))
        .and_then(Value::as_str)
    {
        Some("gpt") => "gpt",
        _ => "msdos",
    }
}

/// Where the first RAID partition starts (IPA's `calculate_raid_start`).
fn raid_start(boot_mode: &str, label: &str) -> u64 {
    match (boot_mode, label) {
        ("uefi", _) => (ESP_SIZE_MIB + 1) * MIB,
        (_, "gpt") => 8 * MIB,
        _ => MIB,
    }
}

/// Ask the kernel to re-read a disk's partitions (IPA's `rescan_device`):
/// partprobe, else `blockdev --rereadpt`; then wait for the partition nodes.
pub(crate) async fn rescan(dev: &str, expect: &[String]) {
    if let Err(e) = run_tool("partprobe", &[dev.to_owned()]).await {
        tracing::info!(device = dev, error = %e, "partprobe failed, asking for a re-read");
        if let Err(e) = run_tool("blockdev", &argv(&["--rereadpt", dev])).await {
            tracing::warn!(device = dev, error = %e, "the kernel did not re-read the partition table");
        }
    }
    for _ in 0..50 {
        if expect.iter().all(|p| Path::new(p).exists()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Match each logical disk to its disks (IPA's `get_block_devices_for_raid`):
/// by `physical_disks` hints (each hint a different disk) or all disks.
fn disks_for_raid(
    disks: &[BlockDevice],
    lds: &[LogicalDisk],
) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut all = Vec::new();
    let mut per_ld = Vec::new();
    for ld in lds {
        let matching = match &ld.physical_disks {
            Some(hs) => {
                let mut m: Vec<String> = Vec::new();
                for h in hs {
                    let mut candidates = Vec::new();
                    for d in disks {
                        if hints::matches(h, d)? {
                            candidates.push(d.name.clone());
                        }
                    }
                    if candidates.is_empty() {
                        return Err(raid_error(format!(
                            "No candidates for physical disk {} from the disks {}",
                            Value::Object(h.clone()),
                            disks
                                .iter()
                                .map(|d| d.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                    let pick = candidates.iter().find(|c| !m.contains(c)).ok_or_else(|| {
                        raid_error(format!(
                            "No candidates left for physical disk {} from the list {} after \
                             picking {} for previous volumes",
                            Value::Object(h.clone()),
                            candidates.join(", "),
                            m.join(", ")
                        ))
                    })?;
                    m.push(pick.clone());
                }
                m
            }
            None => disks.iter().map(|d| d.name.clone()).collect(),
        };
        for d in &matching {
            if !all.contains(d) {
                all.push(d.clone());
            }
        }
        per_ld.push(matching);
    }
    Ok((all, per_ld))
}

/// `create_configuration` / the create half of `apply_configuration`.
async fn do_create(st: &State, node: &Value, cfg: &Value) -> Result<Value> {
    let all = logical_disks(cfg)?;
    if !all.iter().any(|ld| ld.software) {
        tracing::debug!("no software RAID logical disk in the configuration");
        return Ok(json!({}));
    }
    let disks = usable_disks(st, node)?;
    let mut lds = validate(cfg, node, disks.len())?;
    tracing::info!(config = %cfg, "creating software RAID");

    // arrays kept by the skip list: their logical disks are not created again;
    // any other array left over is an error (IPA's _create_raid_ignore_list)
    let skip = skip_volume_names(node)?;
    let existing = md_devices(&st.cfg.sys_root);
    let mut kept_holders = Vec::new();
    for md in &existing {
        let name = volume_name(&md.name).await;
        match name {
            Some(n) if skip.contains(&n) => {
                tracing::info!(device = %md.name, volume = %n, "keeping a RAID volume of skip_block_devices");
                lds.retain(|ld| ld.volume_name.as_deref() != Some(n.as_str()));
                kept_holders.extend(md.holders.iter().cloned());
            }
            _ => {
                return Err(raid_error(format!(
                    "Existing Software RAID device {} (volume {}) detected that should not \
                     exist: run delete_configuration first",
                    md.name,
                    name.as_deref().unwrap_or("without a name")
                )));
            }
        }
    }
    if lds.is_empty() {
        return Ok(cfg.clone());
    }
    // MAX last (IPA reorders the same way; the md numbers follow this order)
    let (max, mut lds): (Vec<_>, Vec<_>) = lds.into_iter().partition(|ld| ld.size == Size::Max);
    lds.extend(max);
    let (block_devices, per_ld) = disks_for_raid(&disks, &lds)?;
    if let Some(d) = block_devices.iter().find(|d| kept_holders.contains(d)) {
        return Err(raid_error(format!(
            "{d} holds a RAID volume of skip_block_devices: new volumes cannot be partitioned \
             on it (name other disks with physical_disks)"
        )));
    }
    // no partitions may be left (IPA: "Partitions detected on devices ...")
    let mut with_parts = Vec::new();
    for d in &block_devices {
        let (f, _) = image::open_device(Path::new(d))?;
        if !partition::read_table(&f)
            .map(|t| t.partitions().is_empty())
            .unwrap_or(true)
        {
            with_parts.push(d.clone());
        }
    }
    if !with_parts.is_empty() {
        return Err(raid_error(format!(
            "Partitions detected on devices {} during RAID config (clean them with \
             delete_configuration or erase_devices_metadata first)",
            with_parts.join(", ")
        )));
    }
    let boot_mode = node_boot_mode(st, node);
    let label = table_type(st, node);
    // one fresh table per disk, then the partitions of every logical disk
    let mut next: std::collections::BTreeMap<String, u64> = Default::default();
    for d in &block_devices {
        let path = PathBuf::from(d);
        let (f, size) = image::open_device(&path)?;
        if label == "gpt" {
            partition::create_gpt(&f, size, &[])?;
        } else {
            partition::create_mbr(&f, size, &[], None)?;
        }
        next.insert(d.clone(), raid_start(boot_mode, label));
    }
    let mut members: Vec<Vec<String>> = vec![Vec::new(); lds.len()];
    for (i, ld) in lds.iter().enumerate() {
        for d in &per_ld[i] {
            let start = next[d];
            // IPA (parted): the first partition ends at size_gb GiB from the
            // disk's start, the next ones are size_gb GiB long
            let size = match ld.size {
                Size::Max => None,
                Size::Gib(g) if start < GIB => Some((g * GIB).saturating_sub(start)),
                Size::Gib(g) => Some(g * GIB),
            };
            if size == Some(0) {
                return Err(raid_error(format!(
                    "a {} GiB volume leaves no room on {d} after the first {} MiB",
                    match ld.size {
                        Size::Gib(g) => g,
                        Size::Max => 0,
                    },
                    start / MIB
                )));
            }
            let path = PathBuf::from(d);
            let (f, disk_size) = image::open_device(&path)?;
            let name = ld.volume_name.clone().unwrap_or_else(|| format!("md{i}"));
            let p =
                partition::add_partition(&f, disk_size, start, size, partition::LINUX_RAID, &name)
                    .map_err(|e| raid_error(format!("Failed to create partitions on {d}: {e}")))?;
            next.insert(d.clone(), p.start + p.len);
            members[i].push(partition::partition_path(d, p.number));
        }
    }
    for d in &block_devices {
        let expect: Vec<String> = members
            .iter()
            .flatten()
            .filter(|m| m.starts_with(d.as_str()))
            .cloned()
            .collect();
        rescan(d, &expect).await;
    }
    let mut created = Vec::new();
    for (i, ld) in lds.iter().enumerate() {
        let md = match format!("/dev/md{i}") {
            n if !Path::new(&n).exists()
                && !st
                    .cfg
                    .sys_root
                    .join("block")
                    .join(n.trim_start_matches("/dev/"))
                    .exists() =>
            {
                n
            }
            _ => free_md(&st.cfg.sys_root, i as u32)?,
        };
        let name = ld
            .volume_name
            .clone()
            .unwrap_or_else(|| md.trim_start_matches("/dev/").to_owned());
        let comps = &members[i];
        let mut args = argv(&[
            "--create",
            &md,
            "--force",
            "--run",
            "--metadata=1",
            "--level",
            ld.mdadm_level(),
            "--name",
            &name,
            "--raid-devices",
        ]);
        args.push(comps.len().to_string());
        args.extend(comps.iter().cloned());
        run_tool("mdadm", &args).await.map_err(|e| {
            raid_error(format!(
                "Failed to create md device {md} on {}: {e}",
                comps.join(" ")
            ))
        })?;
        // members missing from the array are added again (IPA)
        let detail = run_tool("mdadm", &argv(&["--detail", &md]))
            .await
            .unwrap_or_default();
        for c in comps {
            if !detail.contains(c.as_str()) {
                tracing::warn!(device = %c, md = %md, "member missing from the array, re-adding");
                run_tool("mdadm", &argv(&["--add", &md, c]))
                    .await
                    .map_err(|e| raid_error(format!("Failed re-add {c} to {md}: {e}")))?;
            }
        }
        tracing::info!(md = %md, volume = %name, level = %ld.level, members = ?comps, "software RAID device created");
        created.push(md);
    }
    tracing::info!(devices = ?created, "Successfully created Software RAID");
    Ok(cfg.clone())
}

/// What `delete_configuration` does with one array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Delete,
    /// On a disk with a kept array: its data is wiped, the array stays.
    Wipe,
    Keep,
}

async fn wipe(dev: &str) {
    let d = dev.to_owned();
    if let Err(e) = super::blocking(move || super::erase::erase_metadata(Path::new(&d))).await {
        tracing::warn!(device = dev, error = %e, "could not wipe the signatures");
    }
}

/// One pass of IPA's `_delete_config_pass`.
async fn delete_pass(st: &State, skip: &[String]) -> Result<Map<String, Value>> {
    let mds = md_devices(&st.cfg.sys_root);
    let mut actions: Vec<(MdDevice, Action, Option<String>)> = Vec::new();
    for md in mds {
        let name = volume_name(&md.name).await;
        let action = match &name {
            Some(n) if skip.contains(n) => Action::Keep,
            _ => Action::Delete,
        };
        actions.push((md, action, name));
    }
    // arrays sharing a disk with a kept one are wiped but not deleted
    let kept: Vec<String> = actions
        .iter()
        .filter(|a| a.1 == Action::Keep)
        .flat_map(|a| a.0.holders.clone())
        .collect();
    for a in &mut actions {
        if a.1 == Action::Delete && a.0.holders.iter().any(|h| kept.contains(h)) {
            a.1 = Action::Wipe;
        }
        // an ESP array next to a kept volume stays for it
        if a.1 == Action::Wipe && a.2.as_deref() == Some("esp") {
            a.1 = Action::Keep;
        }
    }
    let mut result = Map::new();
    let mut holders = Vec::new();
    let mut protected = Vec::new();
    for (md, action, name) in &actions {
        result.insert(
            md.name.clone(),
            json!(match action {
                Action::Delete => "delete",
                Action::Wipe => "wipe",
                Action::Keep => "keep",
            }),
        );
        match action {
            Action::Keep => {
                tracing::warn!(device = %md.name, volume = ?name, "Software RAID device is not going to be deleted (skip_block_devices)");
                protected.extend(md.members.iter().cloned());
                continue;
            }
            Action::Wipe => {
                tracing::warn!(device = %md.name, "Software RAID device shares a disk with a kept volume: wiped, not deleted");
                wipe(&md.name).await;
                protected.extend(md.members.iter().cloned());
                continue;
            }
            Action::Delete => {}
        }
        tracing::info!(device = %md.name, "Deleting Software RAID device");
        wipe(&md.name).await;
        if let Err(e) = run_tool("mdadm", &argv(&["--stop", &md.name])).await {
            tracing::warn!(device = %md.name, error = %e, "failed to stop the array");
        }
        for c in &md.members {
            if let Err(e) = run_tool("mdadm", &argv(&["--zero-superblock", c])).await {
                tracing::warn!(device = %c, error = %e, "failed to remove the md superblock");
            }
        }
        holders.extend(md.holders.iter().cloned());
    }
    // every other md superblock on the disks (partitions first), as IPA
    let disks = inventory::disks(&st.cfg);
    for d in disks.iter().rev() {
        let (f, size) = match image::open_device(Path::new(&d.name)) {
            Ok(x) => x,
            Err(_) => continue,
        };
        let table = partition::read_table(&f).unwrap_or(partition::Table::None);
        let mut candidates: Vec<(String, u64, u64)> = table
            .partitions()
            .iter()
            .rev()
            .map(|p| (partition::partition_path(&d.name, p.number), p.start, p.len))
            .collect();
        candidates.push((d.name.clone(), 0, size));
        for (dev, start, len) in candidates {
            if protected.contains(&dev)
                || (dev == d.name && protected.iter().any(|p| p.starts_with(&d.name)))
            {
                continue;
            }
            if super::erase::has_md_superblock(&f, start, len) && Path::new(&dev).exists() {
                tracing::info!(device = %dev, "zeroing a leftover md superblock");
                if let Err(e) = run_tool("mdadm", &argv(&["--zero-superblock", &dev])).await {
                    tracing::warn!(device = %dev, error = %e, "failed to remove the md superblock");
                }
            }
        }
    }
    // the partition tables made for the arrays
    holders.sort();
    holders.dedup();
    for h in holders {
        if protected.iter().any(|p| p.starts_with(&h)) {
            tracing::warn!(disk = %h, "holder disk keeps a volume of skip_block_devices: its partition table stays");
            continue;
        }
        tracing::info!(disk = %h, "Removing partitions on holder disk");
        wipe(&h).await;
        rescan(&h, &[]).await;
    }
    Ok(result)
}

/// IPA's `delete_configuration`: every array, two passes at most.
async fn delete(st: &State, node: &Value) -> Result<Value> {
    // arrays the kernel has not assembled yet (a fresh ramdisk)
    run_tool_status("mdadm", &argv(&["--assemble", "--scan"])).await?;
    let skip = skip_volume_names(node)?;
    let mut result = Map::new();
    for _ in 0..2 {
        result = delete_pass(st, &skip).await?;
        let _ = run_tool_status("mdadm", &argv(&["--assemble", "--scan"])).await;
        let left: Vec<String> = md_devices(&st.cfg.sys_root)
            .into_iter()
            .map(|m| m.name)
            .filter(|n| result.get(n).is_none_or(|a| a.as_str() == Some("delete")))
            .collect();
        if left.is_empty() {
            tracing::info!("Finished deleting Software RAID(s)");
            return Ok(Value::Object(result));
        }
        tracing::warn!(left = ?left, "software RAID devices left after a delete pass");
    }
    let left: Vec<String> = md_devices(&st.cfg.sys_root)
        .into_iter()
        .map(|m| m.name)
        .filter(|n| result.get(n).is_none_or(|a| a.as_str() == Some("delete")))
        .collect();
    Err(raid_error(format!(
        "Unable to clean all softraid correctly. Remaining {}",
        left.join(", ")
    )))
}

/// The configuration `create_configuration` builds: Ironic's filtered copy
/// (`driver_internal_info.target_raid_config`, honouring
/// `create_root_volume`/`create_nonroot_volumes`), else `target_raid_config`.
fn target_config(node: &Value) -> Option<Value> {
    info(node, "driver_internal_info", "target_raid_config")
        .or_else(|| node.get("target_raid_config"))
        .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
        .cloned()
}

/// Run a RAID step.
pub(crate) async fn run(
    st: &Arc<State>,
    name: &str,
    node: &Value,
    args: &Map<String, Value>,
) -> Result<Value> {
    match name {
        "create_configuration" => match target_config(node) {
            Some(cfg) => do_create(st, node, &cfg).await,
            None => {
                tracing::debug!("No target_raid_config found");
                Ok(json!({}))
            }
        },
        "delete_configuration" => delete(st, node).await,
        "apply_configuration" => {
            let cfg = args
                .get("raid_config")
                .filter(|v| v.is_object())
                .cloned()
                .ok_or_else(|| invalid("apply_configuration needs raid_config (an object)"))?;
            let disks = usable_disks(st, node)?.len();
            validate(&cfg, node, disks)?;
            let delete_existing = args
                .get("delete_existing")
                .map_or(Some(true), super::as_bool)
                .ok_or_else(|| invalid("delete_existing must be a boolean"))?;
            if delete_existing {
                delete(st, node).await?;
            }
            do_create(st, node, &cfg).await
        }
        other => Err(invalid(format!("Unknown RAID step {other}"))),
    }
}

/// The root device when software RAID volumes exist: the array of the
/// `is_root_volume` logical disk of the node's `raid_config` (by volume name,
/// or `mdN` as IPA names unnamed volumes), else the array of its first logical
/// disk (RAID-1 by IPA's rule), else the first RAID-1 array. Arrays of logical
/// disks with `is_root_volume: false` and the ESP array are never picked.
/// `None` when there is no array (then disks are picked as usual); root device
/// hints are ignored for a RAID root volume, as IPA does.
pub(crate) async fn root_volume(st: &State, node: &Value) -> Option<BlockDevice> {
    let mut mds = md_devices(&st.cfg.sys_root);
    let has_config = node
        .get("raid_config")
        .and_then(|c| logical_disks(c).ok())
        .is_some_and(|lds| !lds.is_empty());
    if mds.is_empty() && has_config {
        // a fresh ramdisk without udev's incremental assembly: assemble the
        // arrays the node's raid_config says exist (IPA's
        // _md_scan_and_assemble at hardware manager start)
        match run_tool_status("mdadm", &argv(&["--assemble", "--scan"])).await {
            Ok(_) => mds = md_devices(&st.cfg.sys_root),
            Err(e) => tracing::warn!(error = %e, "could not assemble the software RAID arrays"),
        }
    }
    if mds.is_empty() {
        return None;
    }
    let mut named = Vec::new();
    for md in mds {
        let n = volume_name(&md.name).await;
        if n.as_deref() != Some("esp") {
            named.push((md, n));
        }
    }
    let lds = node
        .get("raid_config")
        .and_then(|c| logical_disks(c).ok())
        .unwrap_or_default();
    // IPA's names: volume_name, else mdN in creation order (MAX last)
    let (max, mut order): (Vec<_>, Vec<_>) = lds.iter().partition(|ld| ld.size == Size::Max);
    order.extend(max);
    let name_of = |ld: &LogicalDisk| {
        ld.volume_name.clone().unwrap_or_else(|| {
            let i = order.iter().position(|o| std::ptr::eq(*o, ld)).unwrap_or(0);
            format!("md{i}")
        })
    };
    let excluded: Vec<String> = lds
        .iter()
        .filter(|ld| ld.is_root_volume == Some(false))
        .map(name_of)
        .collect();
    let wanted = lds
        .iter()
        .find(|ld| ld.is_root_volume == Some(true))
        .or(lds.first())
        .map(name_of);
    let pick = named
        .iter()
        .find(|(_, n)| wanted.is_some() && *n == wanted)
        .or_else(|| {
            named.iter().find(|(md, n)| {
                md.level == "raid1" && !n.as_ref().is_some_and(|n| excluded.contains(n))
            })
        })
        .or_else(|| {
            named
                .iter()
                .find(|(_, n)| !n.as_ref().is_some_and(|n| excluded.contains(n)))
        })?;
    let md = &pick.0;
    tracing::info!(device = %md.name, volume = ?pick.1, "software RAID root volume");
    Some(BlockDevice {
        name: md.name.clone(),
        model: Some(format!("software RAID ({})", md.level)),
        size: md.size,
        rotational: false,
        wwn: None,
        serial: None,
        vendor: None,
        wwn_with_extension: None,
        wwn_vendor_extension: None,
        hctl: None,
        by_path: None,
        logical_sectors: Some(512),
        physical_sectors: Some(512),
        tran: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(cfg: Value) -> Value {
        json!({"uuid": "n1", "target_raid_config": cfg, "properties": {}})
    }

    #[test]
    fn validation_is_ipas() {
        let ok = json!({"logical_disks": [
            {"size_gb": 10, "raid_level": "1", "controller": "software", "is_root_volume": true},
            {"size_gb": "MAX", "raid_level": "0", "controller": "software", "volume_name": "data"}
        ]});
        assert_eq!(validate(&ok, &node(ok.clone()), 2).unwrap().len(), 2);
        let bad = json!({"logical_disks": [
            {"size_gb": "MAX", "raid_level": "0", "controller": "software"},
            {"size_gb": "MAX", "raid_level": "5", "controller": "hardware"}
        ]});
        let e = validate(&bad, &node(bad.clone()), 2)
            .unwrap_err()
            .to_string();
        for want in [
            "requires RAID-1 for the first logical disk",
            "only one RAID device with size 'MAX'",
            "'controller'='software'",
            "RAID level 5 with only 2 block devices",
            "Could not validate Software RAID config for n1",
        ] {
            assert!(e.contains(want), "{want} not in {e}");
        }
        let three = json!({"logical_disks": [
            {"size_gb": 1, "raid_level": "1", "controller": "software"},
            {"size_gb": 1, "raid_level": "1", "controller": "software"},
            {"size_gb": 1, "raid_level": "1", "controller": "software"}
        ]});
        let e = validate(&three, &node(three.clone()), 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("one or two logical disks"), "{e}");
        let pd = json!({"logical_disks": [{"size_gb": 1, "raid_level": "1",
            "controller": "software", "physical_disks": [{"name": "/dev/vda"}]}]});
        let e = validate(&pd, &node(pd.clone()), 2).unwrap_err().to_string();
        assert!(e.contains("at least 2"), "{e}");
        let mut n = node(ok.clone());
        n["properties"]["skip_block_devices"] = json!([{"volume_name": "data"}]);
        let e = validate(&ok, &n, 2).unwrap_err().to_string();
        assert!(e.contains("required to have a volume name"), "{e}");
        assert!(LogicalDisk::parse(&json!({"raid_level": "1"})).is_err());
        assert!(LogicalDisk::parse(&json!({"size_gb": "big", "raid_level": "1"})).is_err());
        assert_eq!(
            LogicalDisk::parse(&json!({"size_gb": "12", "raid_level": "1+0"}))
                .unwrap()
                .mdadm_level(),
            "10"
        );
    }

    #[test]
    fn volume_names_as_mdadm_prints_them() {
        let d = "/dev/md0:\n           Version : 1.2\n        Raid Level : raid1\n\
                 \n              Name : ramdisk:root  (local to host ramdisk)\n              UUID : 1:2:3:4\n";
        assert_eq!(parse_volume_name(d).as_deref(), Some("root"));
        assert_eq!(
            parse_volume_name("              Name : md1\n").as_deref(),
            Some("md1")
        );
        assert_eq!(parse_volume_name("Version : 1.2\n"), None);
    }

    #[test]
    fn raid_starts_leave_room_for_the_boot_partitions() {
        assert_eq!(raid_start("uefi", "gpt"), 551 * MIB);
        assert_eq!(raid_start("bios", "gpt"), 8 * MIB);
        assert_eq!(raid_start("bios", "msdos"), MIB);
    }

    #[test]
    fn md_devices_from_sysfs() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path();
        // /sys/devices/.../block/vda/vda1, linked from class/block and block
        for (disk, part) in [("vda", "vda1"), ("vdb", "vdb1")] {
            let real = sys.join("devices/virtio").join(disk).join(part);
            std::fs::create_dir_all(&real).unwrap();
            std::fs::write(real.join("partition"), "1").unwrap();
            std::fs::create_dir_all(sys.join("class/block")).unwrap();
            std::os::unix::fs::symlink(&real, sys.join("class/block").join(part)).unwrap();
        }
        let md = sys.join("devices/virtual/block/md0");
        std::fs::create_dir_all(md.join("slaves")).unwrap();
        std::fs::create_dir_all(md.join("md")).unwrap();
        std::fs::write(md.join("md/level"), "raid1\n").unwrap();
        std::fs::write(md.join("size"), "2048\n").unwrap();
        for p in ["vda1", "vdb1"] {
            std::os::unix::fs::symlink(sys.join("class/block").join(p), md.join("slaves").join(p))
                .unwrap();
        }
        std::fs::create_dir_all(sys.join("block")).unwrap();
        std::os::unix::fs::symlink(&md, sys.join("block/md0")).unwrap();
        let got = md_devices(sys);
        assert_eq!(
            got,
            vec![MdDevice {
                name: "/dev/md0".into(),
                level: "raid1".into(),
                size: 2048 * 512,
                members: vec!["/dev/vda1".into(), "/dev/vdb1".into()],
                holders: vec!["/dev/vda".into(), "/dev/vdb".into()],
            }]
        );
    }

    #[test]
    fn the_config_ironic_filtered_comes_first() {
        let n = json!({"target_raid_config": {"logical_disks": [{"size_gb": 1}]},
            "driver_internal_info": {"target_raid_config": {"logical_disks": [{"size_gb": 2}]}}});
        assert_eq!(target_config(&n).unwrap()["logical_disks"][0]["size_gb"], 2);
        assert!(target_config(&json!({"target_raid_config": {}})).is_none());
    }
}
