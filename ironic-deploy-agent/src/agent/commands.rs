//! The command implementations, by IPA name.

use std::io::Write;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::State;
use super::config::PowerOffMode;
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
        | "image.install_bootloader" => Kind::Async,
        "standby.sync"
        | "standby.get_partition_uuids"
        | "deploy.get_deploy_steps"
        | "clean.get_clean_steps"
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

fn step_def(step: &str, priority: u32, abortable: bool) -> Value {
    json!({"step": step, "priority": priority, "interface": "deploy",
           "reboot_requested": false, "abortable": abortable, "argsinfo": null})
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
            "deploy_steps": {"GenericHardwareManager": [
                step_def("write_image", 0, true),
                step_def("erase_devices_metadata", 0, false),
            ]},
            "hardware_manager_version": versions(),
        })),
        "clean.get_clean_steps" => Ok(json!({
            "clean_steps": {"GenericHardwareManager": [
                step_def("erase_devices", 10, true),
                step_def("erase_devices_metadata", 99, true),
            ]},
            "hardware_manager_version": versions(),
        })),
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

async fn root_device(st: &State) -> Result<inventory::BlockDevice> {
    let disks = inventory::disks(&st.cfg);
    if st.cfg.root_device.is_some() {
        return disks.into_iter().next().ok_or_else(|| {
            AgentError::NoRootDevice("root device override is not readable".into())
        });
    }
    let node = st.node.read().await;
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
    };
    tracing::info!(image = %info.id, device = %dev.name, format = info.disk_format.as_str(), "writing image");
    let (f, size) = image::open_device(&path)?;
    let root_uuid;
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
            partition::fix_gpt(&f, size)?;
            let table = partition::read_table(&f)?;
            root_uuid = table.disk_identifier();
            if let Some(cd) = &configdrive {
                let p = configdrive::write(&f, size, cd)?;
                tracing::info!(partition = p.number, "config drive written");
            }
        }
        ImageType::Partition => {
            let mut specs = vec![partition::PartSpec {
                name: "root".into(),
                type_guid: partition::LINUX_FS,
                size: info.root_mb << 20,
            }];
            if info.swap_mb > 0 {
                specs.push(partition::PartSpec {
                    name: "swap".into(),
                    type_guid: partition::LINUX_SWAP,
                    size: info.swap_mb << 20,
                });
            }
            if info.ephemeral_mb > 0 {
                specs.push(partition::PartSpec {
                    name: "ephemeral".into(),
                    type_guid: partition::LINUX_FS,
                    size: info.ephemeral_mb << 20,
                });
            }
            if info.root_mb == 0 {
                return Err(AgentError::InvalidParams(
                    "partition images need root_mb".into(),
                ));
            }
            let (_, parts) = partition::create_gpt(&f, size, &specs)?;
            let root = &parts[0];
            let target = Target {
                path: path.clone(),
                offset: root.start,
                length: Some(root.len),
            };
            image::write_image(&fetcher, info.disk_format, &checksum, &target, &opts).await?;
            if let Some(cd) = &configdrive {
                configdrive::write(&f, size, cd)?;
            }
            root_uuid = partition::ext_uuid(&f, root.start).or_else(|| Some(root.uuid.clone()));
        }
    }
    let table = partition::read_table(&f)?;
    let parts: Map<String, Value> = table
        .partitions()
        .iter()
        .map(|p| {
            (
                p.number.to_string(),
                json!({"uuid": p.uuid, "name": p.name, "start": p.start, "size": p.len}),
            )
        })
        .collect();
    *st.partition_uuids.lock().await = json!({
        "root uuid": root_uuid,
        "efi system partition uuid": null,
        "PrEP Boot partition uuid": null,
        "partitions": parts,
    });
    Ok(format!(
        "image ({}) written to device {} root_uuid={}",
        info.id,
        dev.name,
        root_uuid.unwrap_or_default()
    ))
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
    let result = match name.as_str() {
        "write_image" if kind == "deploy" => Value::String(prepare_image(st, &args).await?),
        "erase_devices_metadata" => erase(st, false).await?,
        "erase_devices" if kind == "clean" => erase(st, true).await?,
        other => {
            return Err(AgentError::InvalidParams(format!(
                "Unknown {kind} step {other}: the agent offers write_image, erase_devices, erase_devices_metadata"
            )));
        }
    };
    Ok(json!({ format!("{kind}_result"): result, format!("{kind}_step"): step }))
}

/// Erase every disk: metadata only (first and last MiB: partition tables,
/// filesystem and RAID signatures) or all of it (punched/zeroed).
async fn erase(st: &Arc<State>, full: bool) -> Result<Value> {
    let disks = inventory::disks(&st.cfg);
    let mut done = Vec::new();
    for d in disks {
        let path = std::path::PathBuf::from(&d.name);
        let full_copy = full;
        tokio::task::spawn_blocking(move || -> Result<()> {
            let (f, size) = image::open_device(&path)?;
            let mut sink = image::DiskSink::new(f, path.clone(), 0, size, 1 << 20);
            if full_copy {
                sink.zero_units(0, size)?;
            } else {
                let n = (1u64 << 20).min(size);
                sink.zero_units(0, n)?;
                let tail = size - n;
                sink.zero_units(
                    tail / (1 << 20) * (1 << 20),
                    size - tail / (1 << 20) * (1 << 20),
                )?;
            }
            sink.finish(None)
        })
        .await
        .map_err(|e| AgentError::Other(format!("erase task: {e}")))??;
        done.push(d.name);
    }
    Ok(json!({"erased": done, "method": if full { "zero" } else { "metadata" }}))
}

async fn install_bootloader(st: &Arc<State>, _params: &Map<String, Value>) -> Result<Value> {
    let uuids = st.partition_uuids.lock().await.clone();
    Err(AgentError::CommandFailed(format!(
        "install_bootloader is not supported by this agent (no grub/efibootmgr in it); \
         deploy whole-disk images, which carry their own boot loader (last image: {})",
        uuids.get("root uuid").cloned().unwrap_or(Value::Null)
    )))
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

async fn collect_logs(st: &Arc<State>) -> Result<Value> {
    let mut tar = Vec::new();
    let cmdline = std::fs::read(st.cfg.proc_root.join("cmdline")).unwrap_or_default();
    tar_entry(&mut tar, "cmdline", &cmdline);
    let inv = serde_json::to_vec_pretty(&inventory::collect(&st.cfg)).unwrap_or_default();
    tar_entry(&mut tar, "inventory.json", &inv);
    let cmds = serde_json::to_vec_pretty(&*st.commands.lock().await).unwrap_or_default();
    tar_entry(&mut tar, "commands.json", &cmds);
    for f in ["meminfo", "mounts", "partitions"] {
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
