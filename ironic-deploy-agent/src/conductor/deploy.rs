//! `AgentDeploy`: the `direct` deploy interface (Ironic's `agent.AgentDeploy`).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use ironic_core::driver::{
    BaseInterface, DeployInterface, Heartbeat, HeartbeatOutcome, NetworkPhase, PropertyDoc,
    RamdiskKind, RamdiskParams, Step, StepDef, StepKind, StepOutcome, Task,
};
use ironic_core::model::Fault;
use ironic_core::{DriverError, PowerAction, ProvisionState, Secret};
use serde_json::{Value, json};

use super::client::{AgentClient, node_view};
use crate::error::AgentError;
use crate::image::configdrive;
use crate::protocol::{CommandStatus, HARDWARE_MANAGER};

/// Settings of the agent deploy interface (Ironic's `[agent]` options).
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Timeout of one command POST/GET (`[agent]command_timeout`, 60 s).
    pub command_timeout: Duration,
    /// Timeout for power actions (driver default when `None`).
    pub power_timeout: Option<Duration>,
    /// Priority of `erase_devices` (10).
    pub erase_devices_priority: u32,
    /// Priority of `erase_devices_metadata` (99).
    pub erase_devices_metadata_priority: u32,
    /// Let agents serve their API over TLS with a certificate pinned at the
    /// first heartbeat (IPA's default); `false` passes `ipa-enable-auto-tls=0`.
    pub auto_tls: bool,
    /// Extra kernel parameters for the ramdisk.
    pub kernel_params: BTreeMap<String, String>,
    /// How disks are erased, sent to the agent with every cleaning.
    pub erase: EraseConfig,
}

/// How the agent erases disks: Ironic's `[deploy]` options that
/// `agent_add_clean_params` copies into `driver_internal_info` at the start of
/// cleaning, under the names IPA reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EraseConfig {
    /// Random overwrite passes of `erase_devices`
    /// (`shred_random_overwrite_iterations`, 1).
    pub shred_random_overwrite_iterations: u32,
    /// Finish `erase_devices` with zeroes (`shred_final_overwrite_with_zeros`, true).
    pub shred_final_overwrite_with_zeros: bool,
    /// Overwrite when a secure erase fails (`continue_if_disk_secure_erase_fails`, false).
    pub continue_if_disk_secure_erase_fails: bool,
    /// Try ATA security erase (`enable_ata_secure_erase`, true).
    pub enable_ata_secure_erase: bool,
    /// Try NVMe format (`enable_nvme_secure_erase`, true).
    pub enable_nvme_secure_erase: bool,
    /// Disks erased at once (`disk_erasure_concurrency`, 4).
    pub disk_erasure_concurrency: u32,
    /// Skip read-only disks instead of failing (`erase_skip_read_only`, false).
    pub erase_skip_read_only: bool,
}

impl Default for EraseConfig {
    fn default() -> Self {
        EraseConfig {
            shred_random_overwrite_iterations: 1,
            shred_final_overwrite_with_zeros: true,
            continue_if_disk_secure_erase_fails: false,
            enable_ata_secure_erase: true,
            enable_nvme_secure_erase: true,
            disk_erasure_concurrency: 4,
            erase_skip_read_only: false,
        }
    }
}

impl EraseConfig {
    /// Ironic's `agent_add_clean_params`: the settings into `driver_internal_info`.
    pub fn add_clean_params(&self, node: &mut ironic_core::Node) {
        node.set_internal(
            "agent_erase_devices_iterations",
            self.shred_random_overwrite_iterations,
        );
        node.set_internal(
            "agent_erase_devices_zeroize",
            self.shred_final_overwrite_with_zeros,
        );
        for k in [
            "agent_continue_if_secure_erase_failed",
            "agent_continue_if_ata_erase_failed",
        ] {
            node.set_internal(k, self.continue_if_disk_secure_erase_fails);
        }
        node.set_internal(
            "agent_enable_nvme_secure_erase",
            self.enable_nvme_secure_erase,
        );
        node.set_internal(
            "agent_enable_ata_secure_erase",
            self.enable_ata_secure_erase,
        );
        node.set_internal("disk_erasure_concurrency", self.disk_erasure_concurrency);
        node.set_internal("agent_erase_skip_read_only", self.erase_skip_read_only);
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            command_timeout: Duration::from_secs(60),
            power_timeout: None,
            erase_devices_priority: 10,
            erase_devices_metadata_priority: 99,
            auto_tls: true,
            kernel_params: BTreeMap::new(),
            erase: EraseConfig::default(),
        }
    }
}

/// Key in `driver_internal_info` naming the asynchronous agent command a step waits for.
pub const PENDING: &str = "agent_pending_command";
/// Key in `driver_internal_info` with how far the running agent command got
/// (the agent's `command_progress` plus `step`, `command` and `updated_at`), set
/// at each heartbeat while it runs and removed when it ends. An ironic-rs
/// addition: Ironic has no such field; `baremetal node show` and the dashboard
/// show it.
pub const PROGRESS: &str = "agent_progress";
const TOKEN_KEYS: [&str; 6] = [
    "agent_secret_token",
    "agent_secret_token_pregenerated",
    "agent_url",
    "agent_verify_ca",
    PENDING,
    PROGRESS,
];

/// The `direct` deploy interface.
#[derive(Clone, Debug, Default)]
pub struct AgentDeploy {
    cfg: AgentConfig,
}

fn err(e: AgentError) -> DriverError {
    e.into()
}

/// A count given as a number or a numeric string (the `baremetal` CLI sends
/// `--instance-info root_gb=10` as a string).
fn json_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Whether the node's target RAID configuration asks for software RAID (a
/// logical disk with `controller: software`), as Ironic's `configure_local_boot`
/// checks it.
pub fn is_software_raid(node: &ironic_core::Node) -> bool {
    node.target_raid_config
        .get("logical_disks")
        .and_then(Value::as_array)
        .is_some_and(|lds| {
            lds.iter()
                .any(|ld| ld.get("controller").and_then(Value::as_str) == Some("software"))
        })
}

/// The boot mode the instance is deployed for (`uefi` or `bios`):
/// `instance_info.deploy_boot_mode`, the `boot_mode` capability of
/// `instance_info`, the node's `boot_mode`, the `boot_mode` capability of its
/// properties, else UEFI (Ironic's `[deploy]default_boot_mode`).
pub fn deploy_boot_mode(node: &ironic_core::Node) -> &'static str {
    fn capability(v: Option<&Value>) -> Option<String> {
        match v? {
            // instance_info.capabilities may be a JSON object in a string
            Value::String(s) if s.trim_start().starts_with('{') => {
                capability(serde_json::from_str::<Value>(s).ok().as_ref())
            }
            Value::String(s) => s.split(',').find_map(|kv| {
                kv.trim()
                    .strip_prefix("boot_mode:")
                    .map(|m| m.trim().to_owned())
            }),
            Value::Object(m) => m
                .get("boot_mode")
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        }
    }
    let found = node
        .instance_info
        .get("deploy_boot_mode")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| capability(node.instance_info.get("capabilities")))
        .or_else(|| node.boot_mode.clone())
        .or_else(|| capability(node.properties.get("capabilities")));
    match found.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("bios") => "bios",
        _ => "uefi",
    }
}

impl AgentDeploy {
    /// Registered name.
    pub const NAME: &'static str = "direct";

    /// With settings.
    pub fn new(cfg: AgentConfig) -> Self {
        AgentDeploy { cfg }
    }

    fn client(&self, task: &Task) -> Result<AgentClient, DriverError> {
        AgentClient::for_node(&task.node, self.cfg.command_timeout)
            .map(|c| c.observed(task.node.uuid, task.env.observer.clone()))
            .map_err(err)
    }

    fn ramdisk_params(&self, task: &Task) -> RamdiskParams {
        let mut kp = self.cfg.kernel_params.clone();
        if let Some(u) = &task.env.api_url {
            kp.insert("ipa-api-url".into(), u.clone());
        }
        if !self.cfg.auto_tls {
            kp.insert("ipa-enable-auto-tls".into(), "0".into());
        }
        {
            let mut p = RamdiskParams::new(RamdiskKind::Deploy);
            p.kernel_params = kp;
            p
        }
    }

    /// Forget the agent: its token, URL and certificate (a new ramdisk boot gets a new token).
    pub fn wipe_agent(task: &mut Task) {
        for k in TOKEN_KEYS {
            task.node.remove_internal(k);
        }
    }

    async fn boot_ramdisk(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        Self::wipe_agent(task);
        let driver = task.driver()?.clone();
        let params = self.ramdisk_params(task);
        driver.boot.prepare_ramdisk(task, &params).await?;
        task.node_power_action(PowerAction::Reboot, self.cfg.power_timeout)
            .await?;
        Ok(StepOutcome::Wait)
    }

    /// Ironic's `AgentDeploy.validate` rules for `instance_info`: `image_source`
    /// present and not empty; `image_type`, when set, `partition` or `whole-disk`;
    /// a checksum: `image_checksum`, or `image_os_hash_algo` together with
    /// `image_os_hash_value`. Without them a deploy would boot the ramdisk and wait
    /// in `wait call-back` for an image it can never write.
    fn validate_image(task: &Task) -> Result<(), DriverError> {
        let ii = &task.node.instance_info;
        let uuid = task.node.uuid;
        let present = |k: &str| match ii.get(k) {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(_) => true,
        };
        if !present("image_source") {
            return Err(DriverError::missing(format!(
                "Node {uuid} failed to validate deploy image info. Some parameters were missing. Missing are: ['instance_info.image_source']"
            )));
        }
        if !ii.get("image_source").is_some_and(Value::is_string) {
            return Err(DriverError::invalid(
                "instance_info.image_source must be a string (the image URL)",
            ));
        }
        if let Some(t) = ii.get("image_type").filter(|v| !v.is_null())
            && !matches!(t.as_str(), Some("partition" | "whole-disk"))
        {
            return Err(DriverError::invalid(format!(
                "Invalid image_type {t}, valid are partition, whole-disk"
            )));
        }
        if !Self::is_whole_disk(ii) && !present("root_gb") && !present("root_mb") {
            return Err(DriverError::missing(format!(
                "Cannot validate image information for node {uuid} because one or more parameters are missing from its instance_info and insufficent information is present to boot from a remote volume. Missing are: ['root_gb']"
            )));
        }
        let (algo, value, checksum) = (
            present("image_os_hash_algo"),
            present("image_os_hash_value"),
            present("image_checksum"),
        );
        if algo != value || (!value && !checksum) {
            return Err(DriverError::missing(format!(
                "image_source's \"image_checksum\", or \"image_os_hash_algo\" and \"image_os_hash_value\" must be provided in instance_info for node {uuid}"
            )));
        }
        Ok(())
    }

    /// Whether the node's image is a whole-disk image, as Ironic decides for an
    /// image that is not in Glance: `instance_info.image_type` when set, else a
    /// partition image when `kernel` and `ramdisk` are both given.
    pub fn is_whole_disk(ii: &serde_json::Map<String, Value>) -> bool {
        match ii.get("image_type").and_then(Value::as_str) {
            Some("partition") => false,
            Some(_) => true,
            None => {
                let given = |k: &str| {
                    ii.get(k)
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.trim().is_empty())
                };
                !(given("kernel") && given("ramdisk"))
            }
        }
    }

    fn image_info(task: &Task) -> Result<Value, DriverError> {
        let ii = &task.node.instance_info;
        let source = ii
            .get("image_source")
            .and_then(Value::as_str)
            .ok_or_else(|| DriverError::missing("instance_info.image_source is required"))?;
        if !(source.starts_with("http://") || source.starts_with("https://")) {
            return Err(DriverError::invalid(format!(
                "instance_info.image_source must be an http(s) URL, not {source:?} (no Glance here)"
            )));
        }
        let mut info = json!({
            // as Ironic's AgentDeploy.write_image (image_source.split('/')[-1]):
            // IPA names its download of a non-raw image /tmp/<id>, so a whole
            // URL there fails (ironic-agent accepted any id)
            "id": source.rsplit('/').next().unwrap_or(source),
            "urls": [source],
            "disk_format": ii.get("image_disk_format").cloned().unwrap_or(json!("raw")),
            "container_format": "bare",
            "stream_raw_images": true,
            "node_uuid": task.node.uuid.to_string(),
        });
        for (from, to) in [
            ("image_checksum", "checksum"),
            ("image_os_hash_algo", "os_hash_algo"),
            ("image_os_hash_value", "os_hash_value"),
            ("image_type", "image_type"),
            ("root_mb", "root_mb"),
            ("swap_mb", "swap_mb"),
            ("ephemeral_mb", "ephemeral_mb"),
        ] {
            if let Some(v) = ii.get(from).filter(|v| !v.is_null()) {
                info[to] = v.clone();
            }
        }
        if Self::is_whole_disk(ii) {
            info["image_type"] = json!("whole-disk");
        } else {
            // Ironic's build_instance_info_for_deploy: the layout of a partition
            // image follows the boot mode (GPT with an ESP for UEFI), and the
            // instance boots from its disk.
            info["image_type"] = json!("partition");
            info["deploy_boot_mode"] = json!(deploy_boot_mode(&task.node));
            info["boot_option"] = json!("local");
            if let Some(gb) = ii.get("root_gb").and_then(json_u64)
                && ii.get("root_mb").is_none()
            {
                info["root_mb"] = json!(gb * 1024);
            }
            for (from, to) in [("swap_mb", "swap_mb"), ("ephemeral_gb", "ephemeral_mb")] {
                if info.get(to).is_none()
                    && let Some(n) = ii.get(from).and_then(json_u64)
                {
                    info[to] = json!(if from == "ephemeral_gb" { n * 1024 } else { n });
                }
            }
            if let Some(f) = ii.get("ephemeral_format").and_then(Value::as_str) {
                info["ephemeral_format"] = json!(f);
            }
        }
        if info.get("checksum").is_none() && info.get("os_hash_value").is_none() {
            return Err(DriverError::missing(
                "instance_info needs image_checksum or image_os_hash_algo + image_os_hash_value",
            ));
        }
        Ok(info)
    }

    fn configdrive(task: &Task) -> Result<Option<String>, DriverError> {
        match task.node.instance_info.get("configdrive") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Object(o)) => {
                // Ironic's check_and_fix_configdrive: without usable network_data, the
                // network interface's (e.g. the switch interface's bonds) goes in
                let mut o = o.clone();
                let usable = o
                    .get("network_data")
                    .and_then(Value::as_object)
                    .is_some_and(|n| {
                        ["links", "networks", "services"].iter().any(|k| {
                            n.get(*k)
                                .and_then(Value::as_array)
                                .is_some_and(|a| !a.is_empty())
                        })
                    });
                if !usable && let Some(d) = &task.driver {
                    let nd = d.network.get_node_network_data(task);
                    if !nd.is_empty() {
                        o.insert("network_data".into(), Value::Object(nd));
                    }
                }
                configdrive::build(&Value::Object(o)).map(Some).map_err(err)
            }
            Some(_) => Err(DriverError::invalid(
                "instance_info.configdrive must be a string or an object",
            )),
        }
    }

    async fn start_command(
        &self,
        task: &mut Task,
        step: &str,
        fut: impl std::future::Future<Output = crate::error::Result<crate::protocol::CommandResult>>,
    ) -> Result<StepOutcome, DriverError> {
        let r = fut.await.map_err(err)?;
        task.node.remove_internal(PROGRESS);
        task.node.set_internal(
            PENDING,
            json!({"id": r.id, "name": r.command_name, "step": step,
                   "started_at": ironic_core::model::now().to_rfc3339()}),
        );
        if r.command_status == CommandStatus::Failed {
            task.node.remove_internal(PENDING);
            return Err(DriverError::other(format!(
                "Agent returned error for {step} on node {}: {}",
                task.node.uuid,
                r.error_message()
            )));
        }
        Ok(StepOutcome::Wait)
    }

    async fn write_image(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        let info = Self::image_info(task)?;
        let cd = Self::configdrive(task)?;
        let client = self.client(task)?;
        self.start_command(task, "write_image", client.prepare_image(info, cd))
            .await
    }

    async fn prepare_instance_boot(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        let client = self.client(task)?;
        let uuids = client.get_partition_uuids().await.map_err(err)?;
        if let Some(root) = uuids.get("root uuid").and_then(Value::as_str) {
            task.node.set_internal("root_uuid_or_disk_id", root);
        }
        let whole_disk = Self::is_whole_disk(&task.node.instance_info);
        task.node.set_internal("is_whole_disk_image", whole_disk);
        let mode = deploy_boot_mode(&task.node);
        let software_raid = is_software_raid(&task.node);
        // Ironic's configure_local_boot: a partition image gets a boot loader
        // (GRUB from the ramdisk); a whole-disk image brings its own, and under
        // UEFI gets a boot entry for the loader on its ESP; a software RAID
        // root always gets one (on every holder disk).
        if software_raid || !whole_disk || mode == "uefi" {
            self.install_bootloader(task, &client, &uuids, whole_disk, mode, software_raid)
                .await?;
        }
        let _ = client.sync().await;
        let driver = task.driver()?.clone();
        driver.boot.prepare_instance(task).await?;
        Ok(StepOutcome::Done)
    }

    /// `image.install_bootloader`, waited for (Ironic's `configure_local_boot`).
    async fn install_bootloader(
        &self,
        task: &Task,
        client: &AgentClient,
        uuids: &Value,
        whole_disk: bool,
        mode: &str,
        software_raid: bool,
    ) -> Result<(), DriverError> {
        let uuid = task.node.uuid;
        let failed = |why: String| {
            DriverError::other(format!(
                "Failed to install a bootloader when deploying node {uuid}. Error: {why}"
            ))
        };
        let part = |k: &str| uuids.get(k).filter(|v| !v.is_null()).cloned();
        // software RAID: the image's root filesystem UUID (Ironic reads
        // instance_info image_rootfs_uuid, then Glance's rootfs_uuid), else
        // root_uuid_or_disk_id
        let rootfs = task
            .node
            .instance_info
            .get("image_rootfs_uuid")
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
            .cloned();
        let root = match rootfs {
            Some(r) if software_raid => Some(r),
            _ => part("root uuid"),
        };
        if !whole_disk && root.is_none() {
            return Err(failed(
                "the agent reported no root partition UUID for the partition image".into(),
            ));
        }
        let mut p = serde_json::Map::new();
        p.insert("root_uuid".into(), root.unwrap_or(Value::Null));
        // A whole-disk image's ESP is found by the agent on the disk.
        let (efi, prep) = if whole_disk {
            (None, None)
        } else {
            (
                part("efi system partition uuid"),
                part("PReP Boot partition uuid"),
            )
        };
        p.insert("efi_system_part_uuid".into(), efi.unwrap_or(Value::Null));
        p.insert("prep_boot_part_uuid".into(), prep.unwrap_or(Value::Null));
        p.insert("target_boot_mode".into(), json!(mode));
        if let Some(v) = task.node.driver_info.get("ignore_bootloader_failure") {
            p.insert("ignore_bootloader_failure".into(), v.clone());
        }
        let r = client
            .command("image.install_bootloader", p, true)
            .await
            .map_err(|e| failed(e.to_string()))?;
        match r.command_status {
            CommandStatus::Succeeded => {
                let result = r
                    .command_result
                    .as_ref()
                    .and_then(|v| v.get("result"))
                    .cloned()
                    .unwrap_or(Value::Null);
                tracing::info!(node = %uuid, boot_mode = mode, whole_disk, %result,
                    "boot loader installed");
                Ok(())
            }
            // A whole-disk image brings its own boot loader, so a failed UEFI
            // boot entry is not fatal; on software RAID nothing boots without
            // the boot loader on the holders.
            _ if whole_disk && !software_raid => {
                tracing::info!(node = %uuid, error = %r.error_message(),
                    "could not install the boot loader of a whole-disk image; it boots with its own");
                Ok(())
            }
            _ => Err(failed(r.error_message())),
        }
    }

    async fn tear_down_agent(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        // ask the agent to power off (it syncs first); the BMC makes sure
        if let Ok(c) = self.client(task)
            && let Err(e) = c.power_off().await
        {
            tracing::info!(node = %task.node.uuid, error = %e, "agent power_off failed; powering off via the BMC");
        }
        task.node_power_action(PowerAction::PowerOff, self.cfg.power_timeout)
            .await?;
        Self::wipe_agent(task);
        Ok(StepOutcome::Done)
    }

    /// Run one of the agent's steps (`{kind}.execute_{kind}_step`) and wait for it.
    async fn agent_step(
        &self,
        task: &mut Task,
        kind: StepKind,
        step: &Step,
    ) -> Result<StepOutcome, DriverError> {
        self.interface_step(task, kind, "deploy", step).await
    }

    /// Run one of the agent's steps of `interface` (`deploy`, `raid`) and wait
    /// for it; the next heartbeat finishes it.
    pub(crate) async fn interface_step(
        &self,
        task: &mut Task,
        kind: StepKind,
        interface: &str,
        step: &Step,
    ) -> Result<StepOutcome, DriverError> {
        let client = self.client(task)?;
        let step_json = json!({
            "interface": interface, "step": step.step, "priority": step.priority,
            "args": step.args, "abortable": step.abortable, "reboot_requested": false,
        });
        let version = json!({ HARDWARE_MANAGER.0: HARDWARE_MANAGER.1 });
        let ports: Value = json!(
            task.ports
                .iter()
                .map(|p| json!({"address": p.address.to_string(), "uuid": p.uuid.to_string()}))
                .collect::<Vec<_>>()
        );
        let node = task.node.clone();
        let kind_name = match kind {
            StepKind::Deploy => "deploy",
            StepKind::Service => "service",
            _ => "clean",
        };
        let r = self
            .start_command(
                task,
                &step.step.clone(),
                client.execute_step(kind_name, step_json, &node, ports, version),
            )
            .await;
        if let Some(Value::Object(p)) = task.node.driver_internal_info.get_mut(PENDING) {
            p.insert("interface".into(), json!(interface));
        }
        r
    }
}

/// The agent's own steps (IPA's generic hardware manager) this interface
/// offers besides erase_devices(_metadata), all priority 0: they run when asked
/// for (manual cleaning, deploy templates, runbooks, servicing).
const AGENT_CLEAN_STEPS: &[&str] = &[
    "erase_devices_express",
    "erase_pstore",
    "clean_uefi_nvram",
    "burnin_cpu",
    "burnin_gpu",
    "burnin_disk",
    "burnin_memory",
    "burnin_network",
];
const AGENT_DEPLOY_STEPS: &[&str] = &["erase_devices_metadata", "clean_uefi_nvram", "inject_files"];
const AGENT_SERVICE_STEPS: &[&str] = &[
    "burnin_cpu",
    "burnin_gpu",
    "burnin_memory",
    "burnin_network",
    "inject_files",
];

#[async_trait]
impl BaseInterface for AgentDeploy {
    fn properties(&self) -> Vec<PropertyDoc> {
        vec![
            PropertyDoc::optional("deploy_kernel", "Kernel of the deploy ramdisk (agent)."),
            PropertyDoc::optional("deploy_ramdisk", "Initramfs of the deploy ramdisk (agent)."),
        ]
    }

    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        Self::validate_image(task)?;
        Self::image_info(task).map(|_| ())
    }

    fn steps(&self) -> Vec<StepDef> {
        vec![
            StepDef::deploy("deploy", 100),
            StepDef::deploy("write_image", 80),
            StepDef::deploy("prepare_instance_boot", 60),
            StepDef::deploy("tear_down_agent", 40),
            StepDef::deploy("switch_to_tenant_network", 30),
            StepDef::deploy("boot_instance", 20),
            StepDef::clean(
                "erase_devices_metadata",
                self.cfg.erase_devices_metadata_priority,
            )
            .abortable(true),
            StepDef::clean("erase_devices", self.cfg.erase_devices_priority).abortable(true),
        ]
        .into_iter()
        .chain(
            AGENT_CLEAN_STEPS
                .iter()
                .map(|n| StepDef::clean(*n, 0).abortable(true)),
        )
        .chain(AGENT_DEPLOY_STEPS.iter().map(|n| {
            let mut s = StepDef::deploy(*n, 0);
            s.requires_ramdisk = true;
            s
        }))
        .chain(
            AGENT_SERVICE_STEPS
                .iter()
                .map(|n| StepDef::service(*n, 0).abortable(true)),
        )
        .collect()
    }

    async fn execute_step(
        &self,
        task: &mut Task,
        kind: StepKind,
        step: &Step,
    ) -> Result<StepOutcome, DriverError> {
        match (kind, step.step.as_str()) {
            (StepKind::Deploy, "deploy") => self.deploy(task).await,
            (StepKind::Deploy, "write_image") => self.write_image(task).await,
            (StepKind::Deploy, "prepare_instance_boot") => self.prepare_instance_boot(task).await,
            (StepKind::Deploy, "tear_down_agent") => self.tear_down_agent(task).await,
            (StepKind::Deploy, "switch_to_tenant_network") => {
                let driver = task.driver()?.clone();
                driver
                    .network
                    .remove_network(task, NetworkPhase::Provisioning)
                    .await?;
                driver.network.configure_tenant_networks(task).await?;
                Ok(StepOutcome::Done)
            }
            (StepKind::Deploy, "boot_instance") => {
                task.node_power_action(PowerAction::PowerOn, self.cfg.power_timeout)
                    .await?;
                Ok(StepOutcome::Done)
            }
            (StepKind::Clean, "erase_devices" | "erase_devices_metadata") => {
                self.agent_step(task, kind, step).await
            }
            (StepKind::Clean, n) if AGENT_CLEAN_STEPS.contains(&n) => {
                self.agent_step(task, kind, step).await
            }
            (StepKind::Deploy, n) if AGENT_DEPLOY_STEPS.contains(&n) => {
                self.agent_step(task, kind, step).await
            }
            (StepKind::Service, n) if AGENT_SERVICE_STEPS.contains(&n) => {
                self.agent_step(task, kind, step).await
            }
            _ => Err(DriverError::unsupported(format!(
                "{kind} step deploy.{} is not supported by the direct deploy interface",
                step.step
            ))),
        }
    }
}

#[async_trait]
impl DeployInterface for AgentDeploy {
    async fn deploy(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        self.boot_ramdisk(task).await
    }

    async fn tear_down(&self, task: &mut Task) -> Result<(), DriverError> {
        // a node that must not be powered off is rebooted in clean_up instead
        // (Ironic's AgentBaseMixin.tear_down / clean_up)
        if !task.node.disable_power_off {
            task.node_power_action(PowerAction::PowerOff, self.cfg.power_timeout)
                .await?;
        }
        let driver = task.driver()?.clone();
        driver.network.unconfigure_tenant_networks(task).await?;
        driver.boot.clean_up_instance(task).await?;
        Self::wipe_agent(task);
        Ok(())
    }

    async fn prepare(&self, task: &mut Task) -> Result<(), DriverError> {
        if task.node.provision_state == ProvisionState::Deploying {
            let driver = task.driver()?.clone();
            driver
                .network
                .add_network(task, NetworkPhase::Provisioning)
                .await?;
        }
        Ok(())
    }

    async fn clean_up(&self, task: &mut Task) -> Result<(), DriverError> {
        let driver = task.driver()?.clone();
        driver.boot.clean_up_ramdisk(task).await?;
        driver.boot.clean_up_instance(task).await?;
        // tear_down cannot power it off: reboot so that it no longer runs the
        // instance (Ironic's AgentBaseMixin.clean_up)
        if task.node.disable_power_off {
            task.node_power_action(PowerAction::Reboot, self.cfg.power_timeout)
                .await?;
        }
        Self::wipe_agent(task);
        Ok(())
    }

    async fn prepare_cleaning(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        self.cfg.erase.add_clean_params(&mut task.node);
        let driver = task.driver()?.clone();
        driver
            .network
            .add_network(task, NetworkPhase::Cleaning)
            .await?;
        self.boot_ramdisk(task).await
    }

    async fn tear_down_cleaning(&self, task: &mut Task) -> Result<(), DriverError> {
        // The ramdisk is done: power the node off, unless cleaning failed (it
        // stays up to be looked at) or it must not be powered off, which is
        // rebooted at the end instead (Ironic's tear_down_inband_cleaning).
        let failure = task.node.fault == Some(Fault::CleanFailure);
        if !failure && !task.node.disable_power_off {
            task.node_power_action(PowerAction::PowerOff, self.cfg.power_timeout)
                .await?;
        }
        let driver = task.driver()?.clone();
        driver.boot.clean_up_ramdisk(task).await?;
        driver
            .network
            .remove_network(task, NetworkPhase::Cleaning)
            .await?;
        if !failure && task.node.disable_power_off {
            task.node_power_action(PowerAction::Reboot, self.cfg.power_timeout)
                .await?;
        }
        Self::wipe_agent(task);
        Ok(())
    }

    async fn prepare_service(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        let driver = task.driver()?.clone();
        driver
            .network
            .add_network(task, NetworkPhase::Servicing)
            .await?;
        self.boot_ramdisk(task).await
    }

    async fn tear_down_service(&self, task: &mut Task) -> Result<(), DriverError> {
        // Ironic's tear_down_inband_service: off (unless servicing failed, or
        // the node must not be powered off), the ramdisk cleaned up; then,
        // unless it failed, back on the instance's networks and booted into
        // the instance again (rebooted when it must not be powered off).
        let failure = task.node.fault == Some(Fault::ServiceFailure);
        if !failure && !task.node.disable_power_off {
            task.node_power_action(PowerAction::PowerOff, self.cfg.power_timeout)
                .await?;
        }
        let driver = task.driver()?.clone();
        driver.boot.clean_up_ramdisk(task).await?;
        if !failure {
            driver
                .network
                .remove_network(task, NetworkPhase::Servicing)
                .await?;
            driver.network.configure_tenant_networks(task).await?;
            driver.boot.prepare_instance(task).await?;
            let next = if task.node.disable_power_off {
                PowerAction::Reboot
            } else {
                PowerAction::PowerOn
            };
            task.node_power_action(next, self.cfg.power_timeout).await?;
        }
        Self::wipe_agent(task);
        Ok(())
    }

    async fn heartbeat(
        &self,
        task: &mut Task,
        _hb: &Heartbeat,
    ) -> Result<HeartbeatOutcome, DriverError> {
        let pending = task.node.internal(PENDING).cloned();
        let Some(pending) = pending else {
            return match task.node.provision_state {
                ProvisionState::RescueWait => {
                    let pw = task
                        .node
                        .instance_info
                        .get("hashed_rescue_password")
                        .or_else(|| task.node.instance_info.get("rescue_password"))
                        .and_then(Value::as_str)
                        .map(Secret::new)
                        .ok_or_else(|| {
                            DriverError::missing("instance_info has no rescue password")
                        })?;
                    self.client(task)?.finalize_rescue(&pw).await.map_err(err)?;
                    Ok(HeartbeatOutcome::Continue)
                }
                _ if ramdisk_just_booted(&task.node) => Ok(HeartbeatOutcome::Continue),
                // another step waits (an out-of-band one, or `wait`): not ours to end
                _ => Ok(HeartbeatOutcome::Wait),
            };
        };
        let name = pending
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let id = pending
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let step = pending
            .get("step")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let client = self.client(task)?;
        let cmds = match client.commands().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(node = %task.node.uuid, error = %e, "cannot read agent commands; will retry on next heartbeat");
                return Ok(HeartbeatOutcome::Wait);
            }
        };
        let Some(cmd) = cmds
            .iter()
            .rev()
            .find(|c| c.id == id || (id.is_empty() && c.command_name == name))
        else {
            task.node.remove_internal(PENDING);
            return Ok(HeartbeatOutcome::Fail(format!(
                "The agent has no record of command {name} for step {step} (did the ramdisk restart?)"
            )));
        };
        if cmd.command_status != CommandStatus::Running {
            report_command(task, &pending, &name, cmd.command_status);
        }
        match cmd.command_status {
            CommandStatus::Running => {
                if let Some(p) = &cmd.command_progress {
                    record_progress(&mut task.node, &step, &name, p);
                }
                Ok(HeartbeatOutcome::Wait)
            }
            CommandStatus::Succeeded => {
                task.node.remove_internal(PENDING);
                task.node.remove_internal(PROGRESS);
                if pending.get("interface").and_then(Value::as_str) == Some("raid")
                    && let Err(why) = super::raid::after_step(task, &step, cmd)
                {
                    return Ok(HeartbeatOutcome::Fail(why));
                }
                Ok(HeartbeatOutcome::Continue)
            }
            CommandStatus::Failed | CommandStatus::CleanVersionMismatch => {
                task.node.remove_internal(PENDING);
                task.node.remove_internal(PROGRESS);
                if let Ok(logs) = client.collect_system_logs().await
                    && let Some(l) = logs.get("system_logs").and_then(Value::as_str)
                {
                    task.node.set_internal("agent_last_logs_size", l.len());
                }
                Ok(HeartbeatOutcome::Fail(format!(
                    "Agent returned error for step {step} on node {}: {}",
                    task.node.uuid,
                    cmd.error_message()
                )))
            }
        }
    }
}

/// Tell the observer how long an asynchronous command ran: from its start to
/// this heartbeat, which found it finished.
fn report_command(task: &Task, pending: &Value, name: &str, status: CommandStatus) {
    let Some(started) = pending
        .get("started_at")
        .cloned()
        .and_then(|v| serde_json::from_value::<ironic_core::model::Timestamp>(v).ok())
    else {
        return;
    };
    let took = (ironic_core::model::now() - started)
        .to_std()
        .unwrap_or_default();
    let error = (status != CommandStatus::Succeeded).then_some(ironic_core::ErrorKind::Other);
    task.env
        .observer
        .agent_call(&ironic_core::observe::AgentCall::new(
            task.node.uuid,
            name,
            ironic_core::observe::AgentCallKind::Command,
            took,
            error,
        ));
}

/// Record the running command's progress in `driver_internal_info.agent_progress`.
fn record_progress(
    node: &mut ironic_core::Node,
    step: &str,
    command: &str,
    p: &crate::protocol::CommandProgress,
) {
    let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("step".into(), json!(step));
        m.insert("command".into(), json!(command));
        m.insert(
            "updated_at".into(),
            json!(ironic_core::model::now().to_rfc3339()),
        );
        node.set_internal(PROGRESS, v);
    }
}

/// Whether a heartbeat without a pending agent command means "the ramdisk we
/// booted is up, go on" (Ironic's `in_core_deploy_step` / first clean heartbeat):
/// in `wait call-back` while the `deploy.deploy` step (which boots the ramdisk)
/// is current, or in `clean wait` / `service wait` before any step ran. Any
/// other waiting step is someone else's to finish.
fn ramdisk_just_booted(node: &ironic_core::Node) -> bool {
    let is = |step: &ironic_core::model::JsonMap, iface: &str, name: &str| {
        step.get("interface").and_then(Value::as_str) == Some(iface)
            && step.get("step").and_then(Value::as_str) == Some(name)
    };
    match node.provision_state {
        ProvisionState::DeployWait => {
            node.deploy_step.is_empty() || is(&node.deploy_step, "deploy", "deploy")
        }
        ProvisionState::CleanWait => node.clean_step.is_empty(),
        ProvisionState::ServiceWait => node.service_step.is_empty(),
        _ => false,
    }
}

/// The node fields the agent sees (for tests and callers).
pub fn agent_node_view(task: &Task) -> Value {
    node_view(&task.node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironic_core::Node;

    fn hb() -> Heartbeat {
        let mut hb = Heartbeat::new("http://127.0.0.1:9");
        hb.agent_version = Some("x".into());
        hb
    }

    async fn outcome(state: ProvisionState, f: impl FnOnce(&mut Node)) -> HeartbeatOutcome {
        let mut n = Node::new("fake-hardware");
        n.provision_state = state;
        f(&mut n);
        let mut task = Task::new(n);
        AgentDeploy::default()
            .heartbeat(&mut task, &hb())
            .await
            .unwrap()
    }

    fn step(iface: &str, name: &str) -> ironic_core::model::JsonMap {
        json!({"interface": iface, "step": name, "priority": 10, "args": {}})
            .as_object()
            .unwrap()
            .clone()
    }

    fn node_with(ii: Value, f: impl FnOnce(&mut Node)) -> Task {
        let mut n = Node::new("fake-hardware");
        n.instance_info = ii.as_object().unwrap().clone();
        f(&mut n);
        Task::new(n)
    }

    #[test]
    fn software_raid_is_a_software_logical_disk_in_the_target_config() {
        let mut n = Node::new("fake-hardware");
        assert!(!is_software_raid(&n));
        n.target_raid_config = json!({"logical_disks": [
            {"size_gb": 100, "raid_level": "5", "controller": "RAID.Integrated.1-1"}]})
        .as_object()
        .unwrap()
        .clone();
        assert!(!is_software_raid(&n), "a hardware controller");
        n.target_raid_config = json!({"logical_disks": [
            {"size_gb": "MAX", "raid_level": "1", "controller": "software"}]})
        .as_object()
        .unwrap()
        .clone();
        assert!(is_software_raid(&n));
    }

    #[test]
    fn partition_images_are_told_apart_and_laid_out_for_the_boot_mode() {
        let base = json!({"image_source": "http://x/img", "image_checksum": "abc"});
        // whole disk unless said, or unless kernel and ramdisk are given (Ironic)
        let t = node_with(base.clone(), |_| {});
        assert!(AgentDeploy::is_whole_disk(&t.node.instance_info));
        let info = AgentDeploy::image_info(&t).unwrap();
        assert_eq!(info["image_type"], "whole-disk");
        assert_eq!(info["id"], "img", "the last part of the URL, as Ironic");
        assert!(info.get("deploy_boot_mode").is_none(), "{info}");
        let mut ii = base.clone();
        ii["kernel"] = json!("http://x/vmlinuz");
        ii["ramdisk"] = json!("http://x/initrd");
        ii["root_gb"] = json!("2");
        let t = node_with(ii.clone(), |_| {});
        assert!(!AgentDeploy::is_whole_disk(&t.node.instance_info));
        let info = AgentDeploy::image_info(&t).unwrap();
        assert_eq!(info["image_type"], "partition");
        assert_eq!(info["root_mb"], 2048, "root_gb as the CLI sends it");
        assert_eq!(info["deploy_boot_mode"], "uefi", "Ironic's default");
        assert_eq!(info["boot_option"], "local");
        // the boot mode: instance_info, then the node, then its capabilities
        let t = node_with(ii.clone(), |n| {
            n.properties
                .insert("capabilities".into(), json!("cpu_vt:true,boot_mode:bios"));
        });
        assert_eq!(
            AgentDeploy::image_info(&t).unwrap()["deploy_boot_mode"],
            "bios"
        );
        let t = node_with(ii.clone(), |n| {
            n.properties
                .insert("capabilities".into(), json!("boot_mode:bios"));
            n.boot_mode = Some("uefi".into());
        });
        assert_eq!(deploy_boot_mode(&t.node), "uefi");
        let mut ii2 = ii.clone();
        ii2["capabilities"] = json!("{\"boot_mode\": \"bios\"}");
        let t = node_with(ii2, |n| n.boot_mode = Some("uefi".into()));
        assert_eq!(deploy_boot_mode(&t.node), "bios");
        let mut ii3 = ii.clone();
        ii3["deploy_boot_mode"] = json!("bios");
        assert_eq!(deploy_boot_mode(&node_with(ii3, |_| {}).node), "bios");
        // an explicit image_type wins; a partition image needs its root size
        let mut ii4 = base.clone();
        ii4["image_type"] = json!("partition");
        let t = node_with(ii4.clone(), |_| {});
        let e = AgentDeploy::validate_image(&t).unwrap_err().to_string();
        assert!(e.contains("root_gb"), "{e}");
        ii4["root_gb"] = json!(1);
        AgentDeploy::validate_image(&node_with(ii4, |_| {})).unwrap();
        let mut ii5 = ii.clone();
        ii5["image_type"] = json!("whole-disk");
        assert!(AgentDeploy::is_whole_disk(
            &node_with(ii5, |_| {}).node.instance_info
        ));
    }

    #[tokio::test]
    async fn first_heartbeat_continues_only_after_the_ramdisk_boot() {
        use HeartbeatOutcome::*;
        use ProvisionState::*;
        let core = step("deploy", "deploy");
        assert_eq!(
            outcome(DeployWait, |n| n.deploy_step = core.clone()).await,
            Continue
        );
        // another interface's step waits without an agent command: keep waiting
        let bios = step("bios", "apply_configuration");
        assert_eq!(outcome(DeployWait, |n| n.deploy_step = bios).await, Wait);
        let wait = step("deploy", "wait");
        assert_eq!(outcome(DeployWait, |n| n.deploy_step = wait).await, Wait);
        assert_eq!(outcome(CleanWait, |_| {}).await, Continue);
        let erase = step("deploy", "erase_devices");
        assert_eq!(
            outcome(CleanWait, |n| n.clean_step = erase.clone()).await,
            Wait
        );
        assert_eq!(outcome(ServiceWait, |_| {}).await, Continue);
        assert_eq!(outcome(InspectWait, |_| {}).await, Wait);
    }

    /// A task for a fake-hardware node whose deploy interface is this one,
    /// with the fakes for the rest; and their call counters.
    fn fake_task(f: impl FnOnce(&mut Node)) -> (Task, ironic_core::fake::FakeControl) {
        let mut reg = ironic_core::InterfaceRegistry::with_noop();
        let fake = ironic_core::fake::register(&mut reg, Default::default());
        reg.register_deploy(
            AgentDeploy::NAME,
            std::sync::Arc::new(AgentDeploy::default()),
        );
        let mut n = Node::new("fake-hardware");
        n.interfaces.deploy_interface = AgentDeploy::NAME.into();
        n.interfaces.network_interface = "noop".into();
        n.provision_state = ProvisionState::ServiceWait;
        f(&mut n);
        reg.resolve_interfaces(&mut n).unwrap();
        let driver = reg.driver_for(&n).unwrap();
        (Task::new(n).with_driver(driver), fake)
    }

    /// Ironic's tear_down_inband_service: the instance boots again after
    /// servicing (rebooted, never powered off, for a disable_power_off node);
    /// after a failure the node is left as it is.
    #[tokio::test]
    async fn service_tear_down_boots_the_instance_and_respects_disable_power_off() {
        let (mut t, fake) = fake_task(|_| {});
        AgentDeploy::default()
            .tear_down_service(&mut t)
            .await
            .unwrap();
        assert_eq!(fake.calls("power.set_power_state"), 2, "off, then on");
        assert_eq!(fake.calls("boot.prepare_instance"), 1);
        assert_eq!(t.node.power_state, Some(ironic_core::PowerState::On));

        let (mut t, fake) = fake_task(|n| n.disable_power_off = true);
        AgentDeploy::default()
            .tear_down_service(&mut t)
            .await
            .unwrap();
        assert_eq!(fake.calls("power.set_power_state"), 0, "never off");
        assert_eq!(fake.calls("power.reboot"), 1);
        assert_eq!(fake.calls("boot.prepare_instance"), 1);

        let (mut t, fake) = fake_task(|n| n.fault = Some(Fault::ServiceFailure));
        AgentDeploy::default()
            .tear_down_service(&mut t)
            .await
            .unwrap();
        assert_eq!(fake.calls("power.set_power_state"), 0);
        assert_eq!(fake.calls("power.reboot"), 0);
        assert_eq!(fake.calls("boot.prepare_instance"), 0);
        assert_eq!(fake.calls("boot.clean_up_ramdisk"), 1);
    }

    /// Cleaning and deprovisioning never power off a disable_power_off node:
    /// they reboot it instead (Ironic's tear_down_inband_cleaning, tear_down
    /// and clean_up).
    #[tokio::test]
    async fn disable_power_off_nodes_are_rebooted_not_powered_off() {
        let (mut t, fake) = fake_task(|n| {
            n.disable_power_off = true;
            n.provision_state = ProvisionState::CleanWait;
        });
        AgentDeploy::default()
            .tear_down_cleaning(&mut t)
            .await
            .unwrap();
        assert_eq!(fake.calls("power.set_power_state"), 0);
        assert_eq!(fake.calls("power.reboot"), 1);

        let (mut t, fake) = fake_task(|n| {
            n.disable_power_off = true;
            n.provision_state = ProvisionState::Deleting;
        });
        let d = AgentDeploy::default();
        d.clean_up(&mut t).await.unwrap();
        d.tear_down(&mut t).await.unwrap();
        assert_eq!(fake.calls("power.set_power_state"), 0);
        assert_eq!(fake.calls("power.reboot"), 1);

        let (mut t, fake) = fake_task(|n| n.provision_state = ProvisionState::Deleting);
        d.clean_up(&mut t).await.unwrap();
        d.tear_down(&mut t).await.unwrap();
        assert_eq!(fake.calls("power.set_power_state"), 1, "powered off");
        assert_eq!(fake.calls("power.reboot"), 0);
    }
}
