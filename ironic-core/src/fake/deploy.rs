//! `FakeBoot` and `FakeDeploy`.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{FakeControl, FakeDeployMode};
use crate::driver::*;
use crate::error::DriverError;
use crate::model::InterfaceType;
use crate::states::PowerAction;

const B: InterfaceType = InterfaceType::Boot;
const D: InterfaceType = InterfaceType::Deploy;

/// `boot_interface = "fake"`: records what the node would boot next.
#[derive(Debug, Clone)]
pub struct FakeBoot {
    control: FakeControl,
}

impl FakeBoot {
    /// A fake boot interface steered by `control`.
    pub fn new(control: FakeControl) -> Self {
        FakeBoot { control }
    }
}

#[async_trait]
impl BaseInterface for FakeBoot {
    fn validate(&self, _task: &Task) -> Result<(), DriverError> {
        self.control.enter_sync("boot.validate")
    }
}

#[async_trait]
impl BootInterface for FakeBoot {
    async fn prepare_ramdisk(
        &self,
        task: &mut Task,
        _params: &RamdiskParams,
    ) -> Result<(), DriverError> {
        self.control.enter(B, "boot.prepare_ramdisk").await?;
        self.control.with_node(task.node.uuid, |n| {
            n.boot_target = Some("ramdisk");
            n.ramdisk_up = false;
            n.pending_command = None;
        });
        Ok(())
    }

    async fn clean_up_ramdisk(&self, task: &mut Task) -> Result<(), DriverError> {
        self.control.enter(B, "boot.clean_up_ramdisk").await?;
        self.control.with_node(task.node.uuid, |n| {
            if n.boot_target == Some("ramdisk") {
                n.boot_target = None;
            }
        });
        Ok(())
    }

    async fn prepare_instance(&self, task: &mut Task) -> Result<(), DriverError> {
        self.control.enter(B, "boot.prepare_instance").await?;
        self.control.with_node(task.node.uuid, |n| {
            n.boot_target = Some("instance");
            n.boot_device = Some(BootDeviceInfo {
                boot_device: Some(BootDevice::Disk),
                persistent: Some(true),
            });
        });
        Ok(())
    }

    async fn clean_up_instance(&self, task: &mut Task) -> Result<(), DriverError> {
        self.control.enter(B, "boot.clean_up_instance").await?;
        self.control.with_node(task.node.uuid, |n| {
            if n.boot_target == Some("instance") {
                n.boot_target = None;
            }
        });
        Ok(())
    }

    fn validate_rescue(&self, _task: &Task) -> Result<(), DriverError> {
        self.control.enter_sync("boot.validate_rescue")
    }

    fn validate_inspection(&self, _task: &Task) -> Result<(), DriverError> {
        self.control.enter_sync("boot.validate_inspection")
    }
}

/// `deploy_interface = "fake"`. Offers the deploy steps of Ironic's agent deploy
/// with its priorities (`deploy` 100, `write_image` 80, `prepare_instance_boot` 60,
/// `tear_down_agent` 40, `switch_to_tenant_network` 30, `boot_instance` 20) and, in
/// [`FakeDeployMode::Agent`], the steps a fake agent reports once its ramdisk is
/// up. It drives the node's other interfaces through [`Task::driver`] as the
/// agent deploy does (boot the ramdisk, power cycle, boot the instance).
#[derive(Debug, Clone)]
pub struct FakeDeploy {
    control: FakeControl,
}

/// Ironic's default deploy steps of the agent ("direct") deploy interface.
pub(crate) fn default_deploy_steps() -> Vec<StepDef> {
    vec![
        StepDef::deploy("deploy", 100),
        StepDef::deploy("write_image", 80),
        StepDef::deploy("prepare_instance_boot", 60),
        StepDef::deploy("tear_down_agent", 40),
        StepDef::deploy("switch_to_tenant_network", 30),
        StepDef::deploy("boot_instance", 20),
    ]
}

impl FakeDeploy {
    /// A fake deploy interface steered by `control`.
    pub fn new(control: FakeControl) -> Self {
        FakeDeploy { control }
    }

    fn agent(&self) -> bool {
        self.control.deploy_mode() == FakeDeployMode::Agent
    }

    /// Boot the fake ramdisk: prepare the boot interface and power-cycle the node.
    async fn boot_ramdisk(&self, task: &mut Task) -> Result<(), DriverError> {
        let mut params = RamdiskParams {
            kind: RamdiskKind::Deploy,
            kernel_params: BTreeMap::new(),
        };
        if let Some(url) = &task.env.api_url {
            params
                .kernel_params
                .insert("ipa-api-url".to_owned(), url.clone());
        }
        if let Some(d) = task.driver.clone() {
            d.boot.prepare_ramdisk(task, &params).await?;
            task.node_power_action(PowerAction::Reboot, None).await?;
        }
        self.control.with_node(task.node.uuid, |n| {
            n.ramdisk_up = false;
            n.pending_command = None;
        });
        Ok(())
    }

    async fn shut_ramdisk(&self, task: &mut Task) -> Result<(), DriverError> {
        if let Some(d) = task.driver.clone() {
            d.boot.clean_up_ramdisk(task).await?;
            task.node_power_action(PowerAction::PowerOff, None).await?;
        }
        self.control.with_node(task.node.uuid, |n| {
            n.ramdisk_up = false;
            n.pending_command = None;
        });
        Ok(())
    }

    /// An in-band step: in agent mode it runs "asynchronously" until the next heartbeat.
    fn inband(&self, task: &Task, name: &str) -> StepOutcome {
        if self.agent() {
            self.control.with_node(task.node.uuid, |n| {
                n.pending_command = Some(name.to_owned())
            });
            StepOutcome::Wait
        } else {
            StepOutcome::Done
        }
    }
}

#[async_trait]
impl BaseInterface for FakeDeploy {
    fn validate(&self, _task: &Task) -> Result<(), DriverError> {
        self.control.enter_sync("deploy.validate")
    }

    fn steps(&self) -> Vec<StepDef> {
        default_deploy_steps()
    }

    async fn get_steps(&self, task: &Task, kind: StepKind) -> Result<Vec<StepDef>, DriverError> {
        let mut steps: Vec<StepDef> = self
            .steps()
            .into_iter()
            .filter(|s| s.kind == kind)
            .collect();
        if self.agent() && self.control.node(task.node.uuid).ramdisk_up {
            for s in self.control.agent_steps(kind) {
                steps.retain(|o| o.name != s.name);
                steps.push(s);
            }
        }
        Ok(steps)
    }

    async fn execute_step(
        &self,
        task: &mut Task,
        kind: StepKind,
        step: &Step,
    ) -> Result<StepOutcome, DriverError> {
        self.control.enter(D, "deploy.execute_step").await?;
        let name = step.step.as_str();
        if kind == StepKind::Deploy {
            match name {
                "deploy" => return self.deploy(task).await,
                "write_image" => return Ok(self.inband(task, name)),
                "prepare_instance_boot" => {
                    if let Some(d) = task.driver.clone() {
                        d.boot.prepare_instance(task).await?;
                    }
                    return Ok(StepOutcome::Done);
                }
                "tear_down_agent" => {
                    self.shut_ramdisk(task).await?;
                    return Ok(StepOutcome::Done);
                }
                "switch_to_tenant_network" => {
                    if let Some(d) = task.driver.clone() {
                        d.network
                            .remove_network(task, NetworkPhase::Provisioning)
                            .await?;
                        d.network.configure_tenant_networks(task).await?;
                    }
                    return Ok(StepOutcome::Done);
                }
                "boot_instance" => {
                    if task.driver.is_some() {
                        task.node_power_action(PowerAction::PowerOn, None).await?;
                    }
                    return Ok(StepOutcome::Done);
                }
                _ => {}
            }
        }
        if self
            .control
            .agent_steps(kind)
            .iter()
            .any(|s| s.name == name)
        {
            return Ok(self.inband(task, name));
        }
        Err(DriverError::unsupported(format!(
            "{kind} step deploy.{name} is not supported by the fake deploy interface"
        )))
    }
}

#[async_trait]
impl DeployInterface for FakeDeploy {
    async fn deploy(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        self.control.enter(D, "deploy.deploy").await?;
        if self.agent() {
            self.boot_ramdisk(task).await?;
            Ok(StepOutcome::Wait)
        } else {
            Ok(StepOutcome::Done)
        }
    }

    async fn tear_down(&self, task: &mut Task) -> Result<(), DriverError> {
        self.control.enter(D, "deploy.tear_down").await?;
        if let Some(d) = task.driver.clone() {
            task.node_power_action(PowerAction::PowerOff, None).await?;
            d.boot.clean_up_instance(task).await?;
            d.network.unconfigure_tenant_networks(task).await?;
        }
        Ok(())
    }

    async fn prepare(&self, task: &mut Task) -> Result<(), DriverError> {
        self.control.enter(D, "deploy.prepare").await?;
        if let Some(d) = task.driver.clone() {
            d.network
                .add_network(task, NetworkPhase::Provisioning)
                .await?;
        }
        Ok(())
    }

    async fn clean_up(&self, task: &mut Task) -> Result<(), DriverError> {
        self.control.enter(D, "deploy.clean_up").await?;
        if let Some(d) = task.driver.clone() {
            d.boot.clean_up_ramdisk(task).await?;
        }
        Ok(())
    }

    async fn prepare_cleaning(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        self.control.enter(D, "deploy.prepare_cleaning").await?;
        if let Some(d) = task.driver.clone() {
            d.network.add_network(task, NetworkPhase::Cleaning).await?;
        }
        if self.agent() {
            self.boot_ramdisk(task).await?;
            Ok(StepOutcome::Wait)
        } else {
            Ok(StepOutcome::Done)
        }
    }

    async fn tear_down_cleaning(&self, task: &mut Task) -> Result<(), DriverError> {
        self.control.enter(D, "deploy.tear_down_cleaning").await?;
        if self.agent() {
            self.shut_ramdisk(task).await?;
        }
        if let Some(d) = task.driver.clone() {
            d.network
                .remove_network(task, NetworkPhase::Cleaning)
                .await?;
        }
        Ok(())
    }

    async fn prepare_service(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        self.control.enter(D, "deploy.prepare_service").await?;
        if let Some(d) = task.driver.clone() {
            d.network.add_network(task, NetworkPhase::Servicing).await?;
        }
        if self.agent() {
            self.boot_ramdisk(task).await?;
            Ok(StepOutcome::Wait)
        } else {
            Ok(StepOutcome::Done)
        }
    }

    async fn tear_down_service(&self, task: &mut Task) -> Result<(), DriverError> {
        self.control.enter(D, "deploy.tear_down_service").await?;
        if self.agent() {
            self.shut_ramdisk(task).await?;
            if task.driver.is_some() {
                task.node_power_action(PowerAction::PowerOn, None).await?;
            }
        }
        if let Some(d) = task.driver.clone() {
            d.network
                .remove_network(task, NetworkPhase::Servicing)
                .await?;
            d.network.configure_tenant_networks(task).await?;
        }
        Ok(())
    }

    async fn heartbeat(
        &self,
        task: &mut Task,
        _heartbeat: &Heartbeat,
    ) -> Result<HeartbeatOutcome, DriverError> {
        self.control.enter(D, "deploy.heartbeat").await?;
        let pending = self.control.with_node(task.node.uuid, |n| {
            n.ramdisk_up = true;
            n.pending_command.take()
        });
        if let Some(cmd) = pending
            && let Err(e) = self.control.enter_sync("deploy.async_step")
        {
            return Ok(HeartbeatOutcome::Fail(format!(
                "Agent command {cmd} failed on node {}: {e}",
                task.node.uuid
            )));
        }
        Ok(HeartbeatOutcome::Continue)
    }
}
