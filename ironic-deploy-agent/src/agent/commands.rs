//! The command implementations, by IPA name.

use std::io::Write;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::State;
use super::config::PowerOffMode;
use super::steps::{self, StepKind};
use super::{hints, inventory};
use crate::error::{AgentError, Result};
use crate::image::{
    self, DownloadOptions, ExpectedChecksum, Fetcher, ImageInfo, ImageType, Target, WriteOptions,
    configdrive, partition,
};
use crate::protocol::HARDWARE_MANAGER;

/// How a command runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Answered at once.
    Sync,
    /// Started in the background; polled with `GET /v1/commands/`.
    Async,
}

/// The catalogue: `extension.command` → kind.
pub fn kind_of(name: &str) -> Option<Kind> {
    Some(match name {
        "standby.prepare_image"
        | "standby.power_off"
        | "deploy.execute_deploy_step"
        | "clean.execute_clean_step"
        | "service.execute_service_step"
        | "image.install_bootloader" => Kind::Async,
        "standby.sync"
        | "standby.get_partition_uuids"
        | "deploy.get_deploy_steps"
        | "clean.get_clean_steps"
        | "service.get_service_steps"
        | "log.collect_system_logs"
        | "rescue.finalize_rescue"
        | "system.lockdown"
        | "poll.get_hardware_info" => Kind::Sync,
        _ => return None,
    })
}

/// Raised for `clean_version`/`deploy_version` mismatches.
pub struct VersionMismatch(pub String);

fn versions() -> Value {
    json!({ HARDWARE_MANAGER.0: HARDWARE_MANAGER.1 })
}

fn check_version(
    params: &Map<String, Value>,
    key: &str,
) -> std::result::Result<(), VersionMismatch> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(v) if *v == versions() => Ok(()),
        Some(v) => Err(VersionMismatch(format!(
            "Hardware managers version mismatch: agent has {}, Ironic sent {v}",
            versions()
        ))),
    }
}

fn param<'a>(params: &'a Map<String, Value>, key: &str) -> Result<&'a Value> {
    params
        .get(key)
        .ok_or_else(|| AgentError::InvalidParams(format!("Missing parameter {key}")))
}

/// The outcome of a command: a result, or an error, or a version mismatch.
pub enum Outcome {
    /// Succeeded.
    Ok(Value),
    /// Failed.
    Err(AgentError),
    /// Steps out of date.
    Mismatch(String),
}

/// Run one command.
pub async fn run(st: &Arc<State>, name: &str, params: Map<String, Value>) -> Outcome {
    let r = match name {
        "standby.prepare_image" => prepare_image(st, &params).await.map(Value::String),
        "standby.get_partition_uuids" => Ok(st.partition_uuids.lock().await.clone()),
        "standby.sync" => {
            rustix::fs::sync();
            Ok(Value::Null)
        }
        "standby.power_off" => power_off(st).await,
        "deploy.get_deploy_steps" => Ok(json!({
            "deploy_steps": {"GenericHardwareManager": steps::catalogue(StepKind::Deploy)},
            "hardware_manager_version": versions(),
        })),
        "clean.get_clean_steps" => Ok(json!({
            "clean_steps": {"GenericHardwareManager": steps::catalogue(StepKind::Clean)},
            "hardware_manager_version": versions(),
        })),
        "service.get_service_steps" => Ok(json!({
            "service_steps": {"GenericHardwareManager": steps::catalogue(StepKind::Service)},
            "hardware_manager_version": versions(),
        })),
        "service.execute_service_step" => {
            if let Err(VersionMismatch(m)) = check_version(&params, "service_version") {
                return Outcome::Mismatch(m);
            }
            execute_step(st, &params, "service").await
        }
        "deploy.execute_deploy_step" => {
            if let Err(VersionMismatch(m)) = check_version(&params, "deploy_version") {
                return Outcome::Mismatch(m);
            }
            execute_step(st, &params, "deploy").await
        }
        "clean.execute_clean_step" => {
            if let Err(VersionMismatch(m)) = check_version(&params, "clean_version") {
                return Outcome::Mismatch(m);
            }
            execute_step(st, &params, "clean").await
        }
        "image.install_bootloader" => install_bootloader(st, &params).await,
        "log.collect_system_logs" => collect_logs(st).await,
        "rescue.finalize_rescue" => finalize_rescue(st, &params).await,
        "system.lockdown" => {
            st.lock_down();
            Ok(Value::Null)
        }
        "poll.get_hardware_info" => Ok(inventory::collect(&st.cfg)),
        other => Err(AgentError::InvalidParams(format!(
            "Unknown command {other}"
        ))),
    };
    match r {
        Ok(v) => Outcome::Ok(v),
        Err(e) => Outcome::Err(e),
    }
}

/// The path of the device the image goes to.
pub(crate) async fn root_device_path(st: &State) -> Result<std::path::PathBuf> {
    Ok(std::path::PathBuf::from(root_device(st).await?.name))
}

async fn root_device(st: &State) -> Result<inventory::BlockDevice> {
    let disks = inventory::disks(&st.cfg);
    if st.cfg.root_device.is_some() {
        return disks.into_iter().next().ok_or_else(|| {
            AgentError::NoRootDevice("root device override is not readable".into())
        });
    }
    let node = st.node.read().await;
    // software RAID volumes (built by create_configuration) come first
    if let Some(md) = steps::raid::root_volume(st, node.as_ref().unwrap_or(&Value::Null)).await {
        return Ok(md);
    }
    let hints = node.as_ref().and_then(|n| {
        n.pointer("/instance_info/root_device")
            .or_else(|| n.pointer("/properties/root_device"))
            .and_then(Value::as_object)
            .cloned()
    });
    hints::pick(&disks, hints.as_ref())
}

async fn prepare_image(st: &Arc<State>, params: &Map<String, Value>) -> Result<String> {
    let info = ImageInfo::parse(param(params, "image_info")?, st.allow_md5().await)?;
    let configdrive = match params.get("configdrive") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.starts_with("http://") || s.starts_with("https://") => {
            let body = st
                .http
                .get(s)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| AgentError::Download(format!("config drive: {e}")))?
                .text()
                .await
                .map_err(|e| AgentError::Download(format!("config drive: {e}")))?;
            Some(configdrive::decode(&body)?)
        }
        Some(Value::String(s)) => Some(configdrive::decode(s)?),
        Some(_) => {
            return Err(AgentError::InvalidParams(
                "configdrive must be a base64 string or a URL".into(),
            ));
        }
    };
    let dev = root_device(st).await?;
    let path = std::path::PathBuf::from(&dev.name);
    let download = DownloadOptions {
        retries: st.cfg.download_retries,
        authorization: info.authorization.clone(),
        ..DownloadOptions::default()
    };
    let fetcher = Fetcher::new(st.http.clone(), info.urls.clone(), download)?;
    let checksum = match &info.checksum {
        image::info::ChecksumSpec::Value(c) => c.clone(),
        image::info::ChecksumSpec::Url(u) => {
            let text = st
                .http
                .get(u)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| AgentError::Download(format!("checksum file: {e}")))?
                .text()
                .await
                .map_err(|e| AgentError::Download(format!("checksum file: {e}")))?;
            let name = info.urls[0]
                .split('?')
                .next()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("");
            ExpectedChecksum::from_checksum_file(&text, name, st.allow_md5().await)?
        }
    };
    let opts = WriteOptions {
        verify: st.cfg.verify_writes,
        max_buffer: st.cfg.reorder_buffer,
        download: fetcher.options().clone(),
        progress: st.current_progress(),
    };
    tracing::info!(image = %info.id, device = %dev.name, format = info.disk_format.as_str(), "writing image");
    let (f, size) = image::open_device(&path)?;
    let root_uuid;
    let mut esp_uuid = None;
    let mut part_paths = Map::new();
    match info.image_type {
        ImageType::WholeDisk => {
            let r = image::write_image(
                &fetcher,
                info.disk_format,
                &checksum,
                &Target::whole(&path),
                &opts,
            )
            .await?;
            tracing::info!(image = %info.id, bytes = r.image_size, seconds = r.seconds, "image written");
            partition::check_image_sector_size(&f, partition::sector_size(&f))?;
            partition::fix_gpt(&f, size)?;
            // IPA's get_disk_identifier: the MBR signature (0x00000000 on most
            // GPT images, which tells install_bootloader there is no GRUB to install)
            root_uuid = Some(partition::mbr_signature(&f)?);
            if let Some(cd) = &configdrive {
                let p = configdrive::write(&f, size, cd)?;
                tracing::info!(partition = p.number, "config drive written");
            }
        }
        ImageType::Partition => {
            if info.root_mb == 0 {
                return Err(AgentError::InvalidParams(
                    "partition images need root_mb".into(),
                ));
            }
            if info.boot_mode.as_deref() != Some("uefi") {
                // before anything is written
                super::grub::refuse_bios_on_4kn(&f)?;
            }
            let layout = partition_layout(&info);
            let gpt = layout.disk_label == "gpt";
            let parts = if gpt {
                partition::create_gpt(&f, size, &layout.specs)?.1
            } else {
                partition::create_mbr(&f, size, &layout.specs, layout.bootable)?.1
            };
            let root = parts.last().expect("root is always laid out").clone();
            let target = Target {
                path: path.clone(),
                offset: root.start,
                length: Some(root.len),
            };
            image::write_image(&fetcher, info.disk_format, &checksum, &target, &opts).await?;
            for (spec, part) in layout.specs.iter().zip(&parts) {
                let dev_path = partition::partition_path(&dev.name, part.number);
                match spec.name.as_str() {
                    "efi system partition" => {
                        esp_uuid = Some(image::esp::format(&f, part, "efi-part")?);
                    }
                    "swap" => partition::mkswap(&f, part, "swap1")?,
                    "ephemeral" => {
                        mkfs_ephemeral(&path, &f, part, &dev_path, &info.ephemeral_format).await?
                    }
                    _ => {}
                }
                part_paths.insert(spec.name.clone(), json!(dev_path));
            }
            if let Some(cd) = &configdrive {
                let p = configdrive::write(&f, size, cd)?;
                part_paths.insert(
                    "configdrive".into(),
                    json!(partition::partition_path(&dev.name, p.number)),
                );
            }
            root_uuid = partition::fs_uuid(&f, root.start).or_else(|| Some(root.uuid.clone()));
        }
    }
    // as IPA's trigger_device_rescan: the kernel learns the new partitions
    // (a file disk has none to learn) with partprobe, which adds them one by
    // one (BLKPG) where a whole-table re-read is not done (loop devices)
    drop(f);
    if std::fs::metadata(&path).is_ok_and(|m| {
        use std::os::unix::fs::FileTypeExt;
        m.file_type().is_block_device()
    }) {
        let dev_arg = [dev.name.clone()];
        if let Err(e) = super::steps::run_tool("partprobe", &dev_arg).await {
            tracing::info!(device = %dev.name, error = %e, "partprobe failed, asking for a re-read");
            if let Err(e) =
                super::steps::run_tool("blockdev", &["--rereadpt".into(), dev.name.clone()]).await
            {
                tracing::warn!(device = %dev.name, error = %e, "the kernel did not re-read the partition table");
            }
        }
    }
    // the shape of IPA's get_partition_uuids: whole-disk images report only the
    // disk identifier; partition images add the created partitions' devices
    *st.image_type.lock().await = Some(info.image_type);
    *st.partition_uuids.lock().await = match info.image_type {
        ImageType::WholeDisk => json!({ "root uuid": root_uuid }),
        ImageType::Partition => json!({
            "root uuid": root_uuid,
            "efi system partition uuid": esp_uuid,
            "partitions": part_paths,
        }),
    };
    // IPA's _message_format
    let mut msg = format!(
        "image ({}) written to device {} root_uuid={}",
        info.id,
        dev.name,
        root_uuid.unwrap_or_default()
    );
    if info.boot_mode.as_deref() == Some("uefi")
        && let Some(e) = esp_uuid
    {
        msg.push_str(&format!(" efi_system_partition_uuid={e}"));
    }
    Ok(msg)
}

/// A partition image's partitions, as IPA's `disk_utils.make_partitions` lays
/// them out: ESP (UEFI) or BIOS boot partition (BIOS on GPT), ephemeral, swap,
/// root last; `gpt` for UEFI and `msdos` for BIOS unless `disk_label` says.
struct Layout {
    disk_label: &'static str,
    specs: Vec<partition::PartSpec>,
    bootable: Option<usize>,
}

fn partition_layout(info: &ImageInfo) -> Layout {
    let uefi = info.boot_mode.as_deref() == Some("uefi");
    let disk_label = match info.disk_label.as_deref() {
        Some("gpt") => "gpt",
        Some("msdos") => "msdos",
        _ if uefi => "gpt",
        _ => "msdos",
    };
    let spec = |name: &str, type_guid, mib: u64| partition::PartSpec {
        name: name.into(),
        type_guid,
        size: mib << 20,
    };
    let mut specs = Vec::new();
    if uefi {
        specs.push(spec("efi system partition", partition::ESP, 550));
    } else if disk_label == "gpt" {
        specs.push(spec("BIOS Boot partition", partition::BIOS_BOOT, 1));
    }
    if info.ephemeral_mb > 0 {
        specs.push(spec("ephemeral", partition::LINUX_FS, info.ephemeral_mb));
    }
    if info.swap_mb > 0 {
        specs.push(spec("swap", partition::LINUX_SWAP, info.swap_mb));
    }
    specs.push(spec("root", partition::LINUX_FS, info.root_mb));
    let bootable = (!uefi && disk_label == "msdos").then(|| specs.len() - 1);
    Layout {
        disk_label,
        specs,
        bootable,
    }
}

/// Make the ephemeral filesystem (`ephemeral_format`, labelled `ephemeral0` as
/// IPA does): ext2/3/4 with `mkfs.extN -E offset=` (works on a file disk too),
/// vfat in user space, anything else with `mkfs.<fs>` on the partition device.
async fn mkfs_ephemeral(
    disk: &std::path::Path,
    f: &std::fs::File,
    part: &partition::Partition,
    dev_path: &str,
    fs: &str,
) -> Result<()> {
    let mut cmd = tokio::process::Command::new(format!("mkfs.{fs}"));
    match fs {
        "vfat" | "fat" | "fat32" => {
            image::esp::format(f, part, "ephemeral0")?;
            return Ok(());
        }
        "ext2" | "ext3" | "ext4" => {
            cmd.args(["-q", "-F", "-L", "ephemeral0", "-E"])
                .arg(format!("offset={}", part.start))
                .arg(disk)
                .arg(format!("{}k", part.len / 1024));
        }
        other => {
            let dev = std::path::Path::new(dev_path);
            if !dev.exists() {
                return Err(AgentError::CommandFailed(format!(
                    "cannot make a {other} ephemeral filesystem: {dev_path} does not exist \
                     (ext2/3/4 and vfat work on any disk)"
                )));
            }
            cmd.args(["-L", "ephemeral0"]).arg(dev);
        }
    }
    let out = cmd.output().await.map_err(|e| {
        AgentError::CommandFailed(format!(
            "mkfs.{fs} could not run ({e}); the ramdisk needs it"
        ))
    })?;
    if !out.status.success() {
        return Err(AgentError::CommandFailed(format!(
            "mkfs.{fs} for the ephemeral partition failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

async fn power_off(st: &Arc<State>) -> Result<Value> {
    rustix::fs::sync();
    match st.cfg.power_off {
        PowerOffMode::Exit => {
            let st = st.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                tracing::info!("power_off: exiting the agent");
                st.shutdown.notify_waiters();
                std::process::exit(0);
            });
            Ok(Value::Null)
        }
        PowerOffMode::System => {
            let out = tokio::process::Command::new("poweroff")
                .arg("-f")
                .output()
                .await;
            match out {
                Ok(o) if o.status.success() => Ok(Value::Null),
                Ok(o) => Err(AgentError::CommandFailed(format!(
                    "poweroff failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ))),
                Err(e) => Err(AgentError::CommandFailed(format!("poweroff: {e}"))),
            }
        }
    }
}

async fn execute_step(st: &Arc<State>, params: &Map<String, Value>, kind: &str) -> Result<Value> {
    let step = param(params, "step")?.clone();
    let name = step
        .get("step")
        .and_then(Value::as_str)
        .ok_or_else(|| AgentError::InvalidParams("step has no name".into()))?
        .to_owned();
    let args = step
        .get("args")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let which = match kind {
        "clean" => StepKind::Clean,
        "service" => StepKind::Service,
        _ => StepKind::Deploy,
    };
    if !steps::offered(which, &name) {
        let names: Vec<String> = steps::catalogue(which)
            .iter()
            .filter_map(|s| s["step"].as_str().map(str::to_owned))
            .collect();
        return Err(AgentError::InvalidParams(format!(
            "Unknown {kind} step {name}: the agent offers {}",
            names.join(", ")
        )));
    }
    // Ironic sends the node (and its ports) with every step; the node looked
    // up at start is the fallback
    let node = match params.get("node") {
        Some(n) if n.is_object() => {
            // as IPA's cache_node: later commands (prepare_image) see it too
            *st.node.write().await = Some(n.clone());
            n.clone()
        }
        _ => st.node.read().await.clone().unwrap_or(Value::Null),
    };
    let ports = params.get("ports").cloned().unwrap_or(Value::Array(vec![]));
    let result = match name.as_str() {
        "write_image" => Value::String(prepare_image(st, &args).await?),
        "erase_devices_metadata" => steps::erase::erase_devices_metadata(st, &node).await?,
        "erase_devices" => steps::erase::erase_devices(st, &node).await?,
        "erase_devices_express" => steps::erase::erase_devices_express(st, &node).await?,
        "erase_pstore" => steps::erase::erase_pstore(st).await?,
        "clean_uefi_nvram" => steps::nvram::clean_uefi_nvram(st, &args).await?,
        "inject_files" => steps::inject::inject_files(st, &node, &ports, &args).await?,
        "burnin_cpu" => steps::burnin::stress_ng(&node, "cpu").await?,
        "burnin_memory" => steps::burnin::stress_ng(&node, "vm").await?,
        "burnin_disk" => steps::burnin::fio_disk(st, &node).await?,
        "burnin_network" => steps::burnin::fio_network(&node).await?,
        "burnin_gpu" => steps::burnin::gpu_burn(&node).await?,
        "create_configuration" | "delete_configuration" | "apply_configuration" => {
            steps::raid::run(st, &name, &node, &args).await?
        }
        other => {
            return Err(AgentError::InvalidParams(format!(
                "Unknown {kind} step {other}"
            )));
        }
    };
    Ok(json!({ format!("{kind}_result"): result, format!("{kind}_step"): step }))
}

async fn install_bootloader(st: &Arc<State>, params: &Map<String, Value>) -> Result<Value> {
    let p = super::bootloader::Params::parse(params)?;
    let dev = root_device(st).await?;
    match super::bootloader::install(st, std::path::Path::new(&dev.name), &p).await {
        Ok(msg) => Ok(Value::String(msg)),
        Err(e) if p.ignore_failure => {
            tracing::warn!(error = %e, "boot loader installation failed; ignored as asked");
            Ok(Value::String(format!(
                "boot loader installation failed and was ignored: {e}"
            )))
        }
        Err(e) => Err(e),
    }
}

fn tar_entry(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    let mut h = [0u8; 512];
    h[..name.len().min(99)].copy_from_slice(&name.as_bytes()[..name.len().min(99)]);
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// The commands IPA's `collect_system_logs` runs, by the file they go to.
const LOG_COMMANDS: &[(&str, &str, &[&str])] = &[
    (
        "journal",
        "journalctl",
        &["--full", "--no-pager", "-b", "-n", "10000"],
    ),
    ("dmesg", "dmesg", &[]),
    (
        "lsblk",
        "lsblk",
        &[
            "--all",
            "-o",
            "+UUID,PTUUID,PARTUUID,LABEL,PARTLABEL,FSTYPE,MODEL,SERIAL",
        ],
    ),
    ("ip_addr", "ip", &["addr"]),
    ("ps", "ps", &["-ax"]),
    ("df", "df", &["-a"]),
    ("mount", "mount", &[]),
];

/// Run a tool for the logs: its output, or why there is none.
async fn log_command(tool: &str, args: &[&str]) -> Vec<u8> {
    let run = tokio::process::Command::new(tool)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(std::time::Duration::from_secs(30), run).await {
        Ok(Ok(o)) => {
            let mut out = o.stdout;
            if !o.status.success() {
                out.extend_from_slice(format!("\n[{tool} exited with {}]\n", o.status).as_bytes());
                out.extend_from_slice(&o.stderr);
            }
            out
        }
        Ok(Err(e)) => format!("[{tool} could not run: {e}]\n").into_bytes(),
        Err(_) => format!("[{tool} did not finish within 30 s]\n").into_bytes(),
    }
}

/// IPA's `log.collect_system_logs`: a gzip'd tar (base64) of the journal,
/// `dmesg`, `lsblk`, addresses, processes, mounts, the kernel command line the
/// agent read, its inventory and its command history.
async fn collect_logs(st: &Arc<State>) -> Result<Value> {
    let mut tar = Vec::new();
    let cmdline_path = st
        .cfg
        .cmdline_path
        .clone()
        .unwrap_or_else(|| st.cfg.proc_root.join("cmdline"));
    let cmdline = std::fs::read(&cmdline_path).unwrap_or_else(|e| {
        format!("[{} could not be read: {e}]\n", cmdline_path.display()).into_bytes()
    });
    tar_entry(&mut tar, "cmdline", &cmdline);
    for (name, tool, args) in LOG_COMMANDS {
        let out = log_command(tool, args).await;
        tar_entry(&mut tar, name, &out);
    }
    let inv = serde_json::to_vec_pretty(&inventory::collect(&st.cfg)).unwrap_or_default();
    tar_entry(&mut tar, "inventory.json", &inv);
    let cmds = serde_json::to_vec_pretty(&*st.commands.lock().await).unwrap_or_default();
    tar_entry(&mut tar, "commands.json", &cmds);
    for f in ["meminfo", "mounts", "partitions", "mdstat"] {
        if let Ok(d) = std::fs::read(st.cfg.proc_root.join(f)) {
            tar_entry(&mut tar, f, &d);
        }
    }
    tar.extend_from_slice(&[0u8; 1024]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar)
        .map_err(|e| AgentError::io("compressing logs", e))?;
    let gz = gz
        .finish()
        .map_err(|e| AgentError::io("compressing logs", e))?;
    Ok(json!({"system_logs": base64::engine::general_purpose::STANDARD.encode(gz)}))
}

async fn finalize_rescue(st: &Arc<State>, params: &Map<String, Value>) -> Result<Value> {
    let pw = param(params, "rescue_password")?
        .as_str()
        .ok_or_else(|| AgentError::InvalidParams("rescue_password must be a string".into()))?;
    let dir = st.cfg.state_dir.join("ipa-rescue-config");
    std::fs::create_dir_all(&dir)
        .map_err(|e| AgentError::io("creating the rescue config dir", e))?;
    std::fs::write(dir.join("ipa-rescue-password"), pw)
        .map_err(|e| AgentError::io("writing the rescue password", e))?;
    // the agent's job ends here: no more heartbeats or commands
    st.lock_down();
    Ok(Value::Null)
}
