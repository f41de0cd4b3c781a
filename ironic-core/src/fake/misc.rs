//! The optional fake interfaces: inspect, RAID, BIOS, firmware, rescue, console, vendor.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{FakeControl, FakeDeployMode};
use crate::driver::*;
use crate::error::DriverError;
use crate::ids::NodeId;
use crate::mac::MacAddress;
use crate::model::{InterfaceType, JsonMap};
use crate::states::PowerAction;

macro_rules! fake_struct {
    ($(#[$m:meta])* $name:ident, $iface:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone)]
        pub struct $name {
            control: FakeControl,
        }

        impl $name {
            /// A fake steered by `control`.
            pub fn new(control: FakeControl) -> Self {
                Self { control }
            }
        }
    };
}

/// Turn an ironic-python-agent inventory into inspection data: `cpu.count` and
/// `cpu.architecture`, `memory.physical_mb`, the largest disk (in GiB, minus one as
/// Ironic does) as `local_gb`, one port per interface with a valid MAC address, and
/// `boot.current_boot_mode`.
pub fn parse_inventory(inventory: &Value) -> Result<InspectionData, DriverError> {
    let inv = inventory.get("inventory").unwrap_or(inventory);
    let ifaces = inv
        .get("interfaces")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            DriverError::invalid("The inventory has no interfaces: at least one is required")
        })?;
    let pxe_mac = inv
        .get("boot")
        .and_then(|b| b.get("pxe_interface"))
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<MacAddress>().ok());
    let mut data = InspectionData::default();
    for i in ifaces {
        let Some(mac) = i
            .get("mac_address")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<MacAddress>().ok())
        else {
            continue;
        };
        if data.ports.iter().any(|p| p.address == mac) {
            continue;
        }
        data.ports.push(DiscoveredPort {
            address: mac,
            pxe_enabled: pxe_mac.is_none_or(|p| p == mac),
            local_link_connection: JsonMap::new(),
            physical_network: None,
        });
    }
    if data.ports.is_empty() {
        return Err(DriverError::invalid(
            "None of the inventory's interfaces has a valid MAC address",
        ));
    }
    if let Some(cpu) = inv.get("cpu") {
        if let Some(n) = cpu.get("count").and_then(Value::as_u64) {
            data.properties.insert("cpus".into(), json!(n));
        }
        if let Some(a) = cpu.get("architecture").and_then(Value::as_str) {
            data.properties.insert("cpu_arch".into(), json!(a));
        }
    }
    if let Some(mb) = inv
        .get("memory")
        .and_then(|m| m.get("physical_mb"))
        .and_then(Value::as_u64)
    {
        data.properties.insert("memory_mb".into(), json!(mb));
    }
    if let Some(disks) = inv.get("disks").and_then(Value::as_array)
        && let Some(max) = disks
            .iter()
            .filter_map(|d| d.get("size").and_then(Value::as_u64))
            .max()
    {
        let gb = (max / (1 << 30)).saturating_sub(1);
        data.properties.insert("local_gb".into(), json!(gb));
    }
    data.boot_mode = inv
        .get("boot")
        .and_then(|b| b.get("current_boot_mode"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    data.inventory = Some(inventory.clone());
    Ok(data)
}

fake_struct!(
    /// `inspect_interface = "fake"`: out-of-band inspection finds nothing new (as
    /// Ironic's fake); in agent mode it boots the ramdisk and waits for
    /// `continue_inspection`, whose inventory it parses with [`parse_inventory`].
    FakeInspect,
    "inspect"
);

#[async_trait]
impl BaseInterface for FakeInspect {
    fn validate(&self, _task: &Task) -> Result<(), DriverError> {
        self.control.enter_sync("inspect.validate")
    }
}

#[async_trait]
impl InspectInterface for FakeInspect {
    async fn inspect_hardware(&self, task: &mut Task) -> Result<InspectOutcome, DriverError> {
        self.control
            .enter(InterfaceType::Inspect, "inspect.inspect_hardware")
            .await?;
        if self.control.deploy_mode() == FakeDeployMode::Agent {
            if let Some(d) = task.driver.clone() {
                let params = RamdiskParams {
                    kind: RamdiskKind::Deploy,
                    kernel_params: BTreeMap::new(),
                };
                d.boot.prepare_ramdisk(task, &params).await?;
                task.node_power_action(PowerAction::Reboot, None).await?;
            }
            return Ok(InspectOutcome::Wait);
        }
        Ok(InspectOutcome::Done(InspectionData::default()))
    }

    async fn continue_inspection(
        &self,
        task: &mut Task,
        inventory: &Value,
    ) -> Result<InspectionData, DriverError> {
        self.control
            .enter(InterfaceType::Inspect, "inspect.continue_inspection")
            .await?;
        let data = parse_inventory(inventory)?;
        if let Some(d) = task.driver.clone() {
            d.boot.clean_up_ramdisk(task).await?;
            task.node_power_action(PowerAction::PowerOff, None).await?;
        }
        Ok(data)
    }

    async fn abort(&self, task: &mut Task) -> Result<(), DriverError> {
        self.control
            .enter(InterfaceType::Inspect, "inspect.abort")
            .await?;
        if let Some(d) = task.driver.clone() {
            d.boot.clean_up_ramdisk(task).await?;
        }
        Ok(())
    }
}

fake_struct!(
    /// `raid_interface = "fake"`: "creates" `target_raid_config` by copying it into
    /// `raid_config`. Clean steps `create_configuration`/`delete_configuration`,
    /// deploy step `apply_configuration` (all priority 0).
    FakeRaid,
    "raid"
);

#[async_trait]
impl BaseInterface for FakeRaid {
    fn validate(&self, _task: &Task) -> Result<(), DriverError> {
        self.control.enter_sync("raid.validate")
    }

    fn steps(&self) -> Vec<StepDef> {
        vec![
            StepDef::clean("create_configuration", 0).requires_ramdisk(false),
            StepDef::clean("delete_configuration", 0).requires_ramdisk(false),
            StepDef::deploy("apply_configuration", 0).arg(
                "raid_config",
                "The RAID configuration to apply.",
                true,
            ),
        ]
    }

    async fn execute_step(
        &self,
        task: &mut Task,
        kind: StepKind,
        step: &Step,
    ) -> Result<StepOutcome, DriverError> {
        match step.step.as_str() {
            "create_configuration" => self.create_configuration(task, true, true, true).await,
            "delete_configuration" => self.delete_configuration(task).await,
            "apply_configuration" if kind == StepKind::Deploy => {
                let cfg = step
                    .args
                    .get("raid_config")
                    .and_then(Value::as_object)
                    .cloned()
                    .ok_or_else(|| DriverError::missing("apply_configuration needs raid_config"))?;
                self.validate_raid_config(task, &cfg)?;
                task.node.target_raid_config = cfg;
                self.create_configuration(task, true, true, true).await
            }
            other => Err(DriverError::unsupported(format!(
                "{kind} step raid.{other} is not supported by the fake RAID interface"
            ))),
        }
    }
}

#[async_trait]
impl RaidInterface for FakeRaid {
    async fn create_configuration(
        &self,
        task: &mut Task,
        _root: bool,
        _nonroot: bool,
        _delete: bool,
    ) -> Result<StepOutcome, DriverError> {
        self.control
            .enter(InterfaceType::Raid, "raid.create_configuration")
            .await?;
        task.node.raid_config = task.node.target_raid_config.clone();
        Ok(StepOutcome::Done)
    }

    async fn delete_configuration(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        self.control
            .enter(InterfaceType::Raid, "raid.delete_configuration")
            .await?;
        task.node.raid_config = JsonMap::new();
        Ok(StepOutcome::Done)
    }
}

/// `bios_interface = "fake"`: keeps BIOS settings per node. Clean and deploy
/// steps `apply_configuration` (argument `settings`) and `factory_reset`, priority 0.
#[derive(Debug, Clone)]
pub struct FakeBios {
    control: FakeControl,
    settings: Arc<Mutex<HashMap<NodeId, BTreeMap<String, String>>>>,
}

impl FakeBios {
    /// A fake steered by `control`.
    pub fn new(control: FakeControl) -> Self {
        FakeBios {
            control,
            settings: Arc::default(),
        }
    }

    fn defaults() -> BTreeMap<String, String> {
        [("BootMode", "Uefi"), ("ProcVirtualization", "Enabled")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

#[async_trait]
impl BaseInterface for FakeBios {
    fn validate(&self, _task: &Task) -> Result<(), DriverError> {
        self.control.enter_sync("bios.validate")
    }

    fn steps(&self) -> Vec<StepDef> {
        let mut v = Vec::new();
        for kind in [StepKind::Clean, StepKind::Deploy, StepKind::Service] {
            v.push(
                StepDef::new(kind, "apply_configuration", 0)
                    .requires_ramdisk(false)
                    .arg("settings", "A list of {name, value} settings.", true),
            );
            v.push(StepDef::new(kind, "factory_reset", 0).requires_ramdisk(false));
        }
        v
    }

    async fn execute_step(
        &self,
        task: &mut Task,
        kind: StepKind,
        step: &Step,
    ) -> Result<StepOutcome, DriverError> {
        match step.step.as_str() {
            "apply_configuration" => {
                let raw =
                    step.args.get("settings").cloned().ok_or_else(|| {
                        DriverError::missing("apply_configuration needs settings")
                    })?;
                let settings: Vec<BiosSetting> = serde_json::from_value(raw)
                    .map_err(|e| DriverError::invalid(format!("Invalid BIOS settings: {e}")))?;
                self.apply_configuration(task, &settings).await
            }
            "factory_reset" => self.factory_reset(task).await,
            other => Err(DriverError::unsupported(format!(
                "{kind} step bios.{other} is not supported by the fake BIOS interface"
            ))),
        }
    }
}

#[async_trait]
impl BiosInterface for FakeBios {
    async fn apply_configuration(
        &self,
        task: &mut Task,
        settings: &[BiosSetting],
    ) -> Result<StepOutcome, DriverError> {
        self.control
            .enter(InterfaceType::Bios, "bios.apply_configuration")
            .await?;
        let mut all = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let node = all.entry(task.node.uuid).or_insert_with(Self::defaults);
        for s in settings {
            node.insert(s.name.clone(), s.value.clone().unwrap_or_default());
        }
        Ok(StepOutcome::Done)
    }

    async fn factory_reset(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        self.control
            .enter(InterfaceType::Bios, "bios.factory_reset")
            .await?;
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(task.node.uuid, Self::defaults());
        Ok(StepOutcome::Done)
    }

    async fn cache_bios_settings(&self, task: &mut Task) -> Result<Vec<BiosSetting>, DriverError> {
        self.control
            .enter(InterfaceType::Bios, "bios.cache_bios_settings")
            .await?;
        let mut all = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let node = all.entry(task.node.uuid).or_insert_with(Self::defaults);
        Ok(node
            .iter()
            .map(|(k, v)| BiosSetting {
                read_only: Some(false),
                reset_required: Some(true),
                ..BiosSetting::new(k.clone(), Some(v.clone()))
            })
            .collect())
    }
}

fake_struct!(
    /// `firmware_interface = "fake"`: components `bios` and `bmc`; the `update`
    /// clean/service step sets a component's version to the image URL's file name.
    FakeFirmware,
    "firmware"
);

#[async_trait]
impl BaseInterface for FakeFirmware {
    fn validate(&self, _task: &Task) -> Result<(), DriverError> {
        self.control.enter_sync("firmware.validate")
    }

    fn steps(&self) -> Vec<StepDef> {
        [StepKind::Clean, StepKind::Service]
            .into_iter()
            .map(|k| {
                StepDef::new(k, "update", 0).requires_ramdisk(false).arg(
                    "settings",
                    "A list of {component, url} updates.",
                    true,
                )
            })
            .collect()
    }

    async fn execute_step(
        &self,
        task: &mut Task,
        kind: StepKind,
        step: &Step,
    ) -> Result<StepOutcome, DriverError> {
        if step.step != "update" {
            return Err(DriverError::unsupported(format!(
                "{kind} step firmware.{} is not supported by the fake firmware interface",
                step.step
            )));
        }
        let raw = step
            .args
            .get("settings")
            .cloned()
            .ok_or_else(|| DriverError::missing("update needs settings"))?;
        let updates: Vec<FirmwareUpdate> = serde_json::from_value(raw)
            .map_err(|e| DriverError::invalid(format!("Invalid firmware updates: {e}")))?;
        self.update(task, &updates).await
    }
}

#[async_trait]
impl FirmwareInterface for FakeFirmware {
    async fn update(
        &self,
        task: &mut Task,
        updates: &[FirmwareUpdate],
    ) -> Result<StepOutcome, DriverError> {
        self.control
            .enter(InterfaceType::Firmware, "firmware.update")
            .await?;
        let mut versions = task
            .node
            .internal("fake_firmware")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for u in updates {
            if u.component != "bios" && u.component != "bmc" {
                return Err(DriverError::invalid(format!(
                    "Unknown firmware component {}; the fake has bios and bmc",
                    u.component
                )));
            }
            let v = u.url.rsplit('/').next().unwrap_or(&u.url).to_owned();
            versions.insert(u.component.clone(), json!(v));
        }
        task.node
            .set_internal("fake_firmware", Value::Object(versions));
        Ok(StepOutcome::Done)
    }

    async fn cache_firmware_components(
        &self,
        task: &mut Task,
    ) -> Result<Vec<FirmwareComponent>, DriverError> {
        self.control
            .enter(
                InterfaceType::Firmware,
                "firmware.cache_firmware_components",
            )
            .await?;
        let versions = task.node.internal("fake_firmware").cloned();
        Ok(["bios", "bmc"]
            .into_iter()
            .map(|c| {
                let cur = versions
                    .as_ref()
                    .and_then(|v| v.get(c))
                    .and_then(Value::as_str)
                    .unwrap_or("1.0.0")
                    .to_owned();
                FirmwareComponent::new(c, Some(cur))
            })
            .collect())
    }
}

fake_struct!(
    /// `rescue_interface = "fake"`: rescue finishes at once, or in agent mode boots
    /// the rescue ramdisk and waits for its heartbeat.
    FakeRescue,
    "rescue"
);

#[async_trait]
impl BaseInterface for FakeRescue {
    fn validate(&self, _task: &Task) -> Result<(), DriverError> {
        self.control.enter_sync("rescue.validate")
    }
}

#[async_trait]
impl RescueInterface for FakeRescue {
    async fn rescue(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        self.control
            .enter(InterfaceType::Rescue, "rescue.rescue")
            .await?;
        if self.control.deploy_mode() == FakeDeployMode::Agent {
            if let Some(d) = task.driver.clone() {
                let params = RamdiskParams {
                    kind: RamdiskKind::Rescue,
                    kernel_params: BTreeMap::new(),
                };
                d.boot.prepare_ramdisk(task, &params).await?;
                task.node_power_action(PowerAction::Reboot, None).await?;
            }
            return Ok(StepOutcome::Wait);
        }
        Ok(StepOutcome::Done)
    }

    async fn unrescue(&self, task: &mut Task) -> Result<(), DriverError> {
        self.control
            .enter(InterfaceType::Rescue, "rescue.unrescue")
            .await?;
        if let Some(d) = task.driver.clone() {
            d.boot.clean_up_ramdisk(task).await?;
            d.boot.prepare_instance(task).await?;
            task.node_power_action(PowerAction::Reboot, None).await?;
        }
        Ok(())
    }

    async fn clean_up(&self, task: &mut Task) -> Result<(), DriverError> {
        self.control
            .enter(InterfaceType::Rescue, "rescue.clean_up")
            .await?;
        if let Some(d) = task.driver.clone() {
            d.boot.clean_up_ramdisk(task).await?;
        }
        Ok(())
    }
}

fake_struct!(
    /// `console_interface = "fake"`: remembers whether the console runs.
    FakeConsole,
    "console"
);

#[async_trait]
impl BaseInterface for FakeConsole {
    fn validate(&self, _task: &Task) -> Result<(), DriverError> {
        self.control.enter_sync("console.validate")
    }
}

#[async_trait]
impl ConsoleInterface for FakeConsole {
    async fn start_console(&self, task: &mut Task) -> Result<(), DriverError> {
        self.control
            .enter(InterfaceType::Console, "console.start_console")
            .await?;
        self.control.with_node(task.node.uuid, |n| n.console = true);
        Ok(())
    }

    async fn stop_console(&self, task: &mut Task) -> Result<(), DriverError> {
        self.control
            .enter(InterfaceType::Console, "console.stop_console")
            .await?;
        self.control
            .with_node(task.node.uuid, |n| n.console = false);
        Ok(())
    }

    async fn get_console(&self, task: &Task) -> Result<ConsoleInfo, DriverError> {
        self.control
            .enter(InterfaceType::Console, "console.get_console")
            .await?;
        Ok(ConsoleInfo {
            kind: "fake".to_owned(),
            url: format!("fake://console/{}", task.node.uuid),
        })
    }
}

fake_struct!(
    /// `vendor_interface = "fake"`: one passthru method, `echo`, which returns its body.
    FakeVendor,
    "vendor"
);

#[async_trait]
impl BaseInterface for FakeVendor {
    fn validate(&self, _task: &Task) -> Result<(), DriverError> {
        self.control.enter_sync("vendor.validate")
    }
}

#[async_trait]
impl VendorInterface for FakeVendor {
    fn routes(&self) -> Vec<VendorRoute> {
        vec![VendorRoute {
            method: "echo".to_owned(),
            http_methods: vec!["POST".to_owned(), "PUT".to_owned()],
            is_async: false,
            description: "Return the request body.".to_owned(),
            attach: false,
            require_exclusive_lock: true,
        }]
    }

    async fn call(
        &self,
        _task: &mut Task,
        method: &str,
        http_method: &str,
        body: Value,
    ) -> Result<Value, DriverError> {
        self.control
            .enter(InterfaceType::Vendor, "vendor.call")
            .await?;
        match (method, http_method) {
            ("echo", "POST" | "PUT") => Ok(body),
            ("echo", other) => Err(DriverError::invalid(format!(
                "The method echo does not support HTTP {other}"
            ))),
            _ => Err(DriverError::unsupported(format!(
                "vendor passthru method {method} (the fake vendor interface has: echo)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_is_parsed() {
        let inv = json!({"inventory": {
            "interfaces": [{"name": "eth0", "mac_address": "52:54:00:12:34:56"},
                           {"name": "lo", "mac_address": "not-a-mac"}],
            "cpu": {"count": 8, "architecture": "x86_64"},
            "memory": {"physical_mb": 16384},
            "disks": [{"size": 10 * (1u64 << 30)}, {"size": 100 * (1u64 << 30)}],
            "boot": {"current_boot_mode": "uefi", "pxe_interface": "52:54:00:12:34:56"}}});
        let d = parse_inventory(&inv).unwrap();
        assert_eq!(d.ports.len(), 1);
        assert!(d.ports[0].pxe_enabled);
        assert_eq!(d.properties["cpus"], 8);
        assert_eq!(d.properties["memory_mb"], 16384);
        assert_eq!(d.properties["local_gb"], 99);
        assert_eq!(d.boot_mode.as_deref(), Some("uefi"));
        assert!(parse_inventory(&json!({"interfaces": []})).is_err());
        assert!(parse_inventory(&json!("garbage")).is_err());
    }
}
