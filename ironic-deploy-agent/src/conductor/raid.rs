//! `AgentRaid`: the `agent` RAID interface (Ironic's `agent.AgentRAID`): the
//! agent builds software RAID with mdadm (`create_configuration`,
//! `delete_configuration` clean steps, `apply_configuration` deploy and
//! service step), and the node's `raid_config`, `local_gb`, `raid_level`
//! capability and `root_device` hint follow, as Ironic's post-step hooks do.

use async_trait::async_trait;
use ironic_core::DriverError;
use ironic_core::driver::{
    BaseInterface, PropertyDoc, RaidInterface, Step, StepDef, StepKind, StepOutcome, Task,
};
use ironic_core::model::InterfaceType;
use ironic_core::model::JsonMap;
use serde_json::{Value, json};

use super::deploy::{AgentConfig, AgentDeploy};
use crate::protocol::CommandResult;

/// Settings of the `agent` RAID interface (Ironic's `[deploy]` priorities).
#[derive(Clone, Debug, Default)]
pub struct AgentRaidConfig {
    /// Priority of `create_configuration` in automated cleaning
    /// (`[deploy]create_configuration_priority`; 0: only when asked for).
    pub create_configuration_priority: u32,
    /// Priority of `delete_configuration` in automated cleaning
    /// (`[deploy]delete_configuration_priority`; 0: only when asked for).
    pub delete_configuration_priority: u32,
}

/// The `agent` RAID interface: software RAID built by the ramdisk agent.
#[derive(Clone, Debug, Default)]
pub struct AgentRaid {
    agent: AgentDeploy,
    cfg: AgentRaidConfig,
}

impl AgentRaid {
    /// Registered name.
    pub const NAME: &'static str = "agent";

    /// With the agent settings (shared with `direct`) and the priorities.
    pub fn new(agent: AgentConfig, cfg: AgentRaidConfig) -> Self {
        AgentRaid {
            agent: AgentDeploy::new(agent),
            cfg,
        }
    }
}

/// Ironic's `raid.filter_target_raid_config`.
pub fn filter_target_raid_config(
    node: &ironic_core::Node,
    create_root_volume: bool,
    create_nonroot_volumes: bool,
) -> Result<JsonMap, DriverError> {
    if node.target_raid_config.is_empty() {
        return Err(DriverError::missing(format!(
            "Node {} has no target RAID configuration.",
            node.uuid
        )));
    }
    let mut cfg = node.target_raid_config.clone();
    let mut skipped = Vec::new();
    let root = |d: &Value| {
        d.get("is_root_volume")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let mut disks: Vec<Value> = cfg
        .get("logical_disks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !create_root_volume {
        disks.retain(|d| !root(d));
        skipped.push("skipping root volume");
    }
    if !create_nonroot_volumes {
        disks.retain(root);
        skipped.push("skipping non-root volumes");
    }
    if disks.is_empty() {
        return Err(DriverError::missing(format!(
            "Node {} has empty target RAID configuration after {}.",
            node.uuid,
            skipped.join(" and ")
        )));
    }
    cfg.insert("logical_disks".into(), Value::Array(disks));
    Ok(cfg)
}

/// Ironic's `raid.update_raid_info`: `raid_config` (with `last_updated`), and
/// from the root volume `local_gb`, the `root_device` hint and the
/// `raid_level` capability.
pub fn update_raid_info(node: &mut ironic_core::Node, raid_config: &JsonMap) {
    let mut current = raid_config.clone();
    current.insert(
        "last_updated".into(),
        json!(
            ironic_core::model::now()
                .format("%Y-%m-%d %H:%M:%S%.6f")
                .to_string()
        ),
    );
    node.raid_config = current;
    let root = raid_config
        .get("logical_disks")
        .and_then(Value::as_array)
        .and_then(|d| {
            d.iter().find(|d| {
                d.get("is_root_volume")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            })
        })
        .cloned();
    if let Some(root) = root {
        if let Some(g) = root.get("size_gb").filter(|s| s.as_str() != Some("MAX")) {
            let gb = g
                .as_u64()
                .or_else(|| g.as_str().and_then(|s| s.parse().ok()));
            if let Some(gb) = gb {
                node.properties.insert("local_gb".into(), json!(gb));
            }
        }
        if let Some(h) = root.get("root_device_hint") {
            node.properties.insert("root_device".into(), h.clone());
        }
        if let Some(level) = root.get("raid_level").and_then(Value::as_str) {
            let caps = node
                .properties
                .get("capabilities")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let mut parts: Vec<String> = caps
                .split(',')
                .filter(|c| !c.is_empty() && !c.starts_with("raid_level:"))
                .map(str::to_owned)
                .collect();
            parts.push(format!("raid_level:{level}"));
            node.properties
                .insert("capabilities".into(), json!(parts.join(",")));
        }
    }
}

/// The post-step hooks (`_create_configuration_final`,
/// `_delete_configuration_final`) once the agent finished a RAID step.
pub(crate) fn after_step(task: &mut Task, step: &str, cmd: &CommandResult) -> Result<(), String> {
    match step {
        "create_configuration" | "apply_configuration" => {
            let result = cmd.command_result.as_ref().and_then(|r| {
                ["clean_result", "deploy_result", "service_result"]
                    .iter()
                    .find_map(|k| r.get(*k))
                    .and_then(Value::as_object)
                    .filter(|o| !o.is_empty())
                    .cloned()
            });
            match result {
                Some(cfg) => {
                    update_raid_info(&mut task.node, &cfg);
                    Ok(())
                }
                None => Err(format!(
                    "Agent ramdisk didn't return a proper command result while building RAID \
                     on {}. It returned '{}' after command execution.",
                    task.node.uuid,
                    cmd.command_result.clone().unwrap_or(Value::Null)
                )),
            }
        }
        "delete_configuration" => {
            task.node.properties.remove("root_device");
            task.node.raid_config = JsonMap::new();
            Ok(())
        }
        _ => Ok(()),
    }
}

#[async_trait]
impl BaseInterface for AgentRaid {
    fn properties(&self) -> Vec<PropertyDoc> {
        Vec::new()
    }

    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        if !task.node.target_raid_config.is_empty() {
            self.validate_raid_config(task, &task.node.target_raid_config)?;
        }
        Ok(())
    }

    fn steps(&self) -> Vec<StepDef> {
        let ramdisk = |s: StepDef| {
            let mut s = s.abortable(true);
            s.requires_ramdisk = true;
            s
        };
        let apply = |s: StepDef| {
            let mut s = s
                .arg("raid_config", "The RAID configuration to apply.", true)
                .arg(
                    "delete_existing",
                    "Setting this to 'True' indicates to delete existing RAID configuration \
                     prior to creating the new configuration. Default value is 'True'.",
                    false,
                );
            s.requires_ramdisk = true;
            s
        };
        vec![
            ramdisk(StepDef::clean(
                "delete_configuration",
                self.cfg.delete_configuration_priority,
            )),
            ramdisk(StepDef::clean(
                "create_configuration",
                self.cfg.create_configuration_priority,
            )),
            apply(StepDef::deploy("apply_configuration", 0)),
            apply(StepDef::service("apply_configuration", 0)),
        ]
    }

    async fn execute_step(
        &self,
        task: &mut Task,
        kind: StepKind,
        step: &Step,
    ) -> Result<StepOutcome, DriverError> {
        match (kind, step.step.as_str()) {
            (StepKind::Clean, "create_configuration") => {
                let flag = |k: &str| step.args.get(k).and_then(Value::as_bool).unwrap_or(true);
                self.create_configuration(
                    task,
                    flag("create_root_volume"),
                    flag("create_nonroot_volumes"),
                    false,
                )
                .await
            }
            (StepKind::Clean, "delete_configuration") => self.delete_configuration(task).await,
            (StepKind::Deploy | StepKind::Service, "apply_configuration") => {
                let cfg = step
                    .args
                    .get("raid_config")
                    .and_then(Value::as_object)
                    .cloned()
                    .ok_or_else(|| {
                        DriverError::missing("apply_configuration needs a 'raid_config' object")
                    })?;
                self.validate_raid_config(task, &cfg)?;
                self.agent.interface_step(task, kind, "raid", step).await
            }
            _ => Err(DriverError::unsupported(format!(
                "{kind} step raid.{} is not supported by the agent RAID interface",
                step.step
            ))),
        }
    }
}

#[async_trait]
impl RaidInterface for AgentRaid {
    async fn create_configuration(
        &self,
        task: &mut Task,
        create_root_volume: bool,
        create_nonroot_volumes: bool,
        _delete_existing: bool,
    ) -> Result<StepOutcome, DriverError> {
        let cfg =
            filter_target_raid_config(&task.node, create_root_volume, create_nonroot_volumes)?;
        // the agent builds this one (Ironic writes it there too, unsaved)
        task.node
            .set_internal("target_raid_config", Value::Object(cfg));
        let step = Step::new(InterfaceType::Raid, "create_configuration");
        self.agent
            .interface_step(task, StepKind::Clean, "raid", &step)
            .await
    }

    async fn delete_configuration(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        let step = Step::new(InterfaceType::Raid, "delete_configuration");
        self.agent
            .interface_step(task, StepKind::Clean, "raid", &step)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raid_info_follows_the_root_volume() {
        let mut n = ironic_core::Node::new("fake-hardware");
        n.properties
            .insert("capabilities".into(), json!("boot_mode:uefi,raid_level:5"));
        n.properties
            .insert("root_device".into(), json!({"name": "/dev/sda"}));
        let cfg: JsonMap = serde_json::from_value(json!({"logical_disks": [
            {"size_gb": 100, "raid_level": "1", "controller": "software", "is_root_volume": true},
            {"size_gb": "MAX", "raid_level": "0", "controller": "software"}]}))
        .unwrap();
        update_raid_info(&mut n, &cfg);
        assert_eq!(n.properties["local_gb"], 100);
        assert_eq!(n.properties["capabilities"], "boot_mode:uefi,raid_level:1");
        assert!(n.raid_config.contains_key("last_updated"));
        assert_eq!(n.raid_config["logical_disks"], cfg["logical_disks"]);

        n.target_raid_config = cfg;
        let f = filter_target_raid_config(&n, false, true).unwrap();
        assert_eq!(f["logical_disks"].as_array().unwrap().len(), 1);
        assert_eq!(f["logical_disks"][0]["raid_level"], "0");
        let e = filter_target_raid_config(&n, false, false).unwrap_err();
        assert!(
            e.to_string()
                .contains("after skipping root volume and skipping non-root volumes"),
            "{e}"
        );
        n.target_raid_config = JsonMap::new();
        assert!(filter_target_raid_config(&n, true, true).is_err());
    }
}
