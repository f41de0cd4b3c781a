//! The `agent` rescue interface (Ironic's `AgentRescue`): boots the node's
//! rescue ramdisk (`rescue_kernel`/`rescue_ramdisk`, through the node's boot
//! interface: PXE/iPXE, or a virtual media ISO built from them) on the
//! rescuing network; the agent's first heartbeat in `rescue wait` makes the
//! deploy interface send `finalize_rescue` with the rescue password, after
//! which the node is in `rescue`. Unrescue powers off, removes the ramdisk and
//! the rescue password, puts the node back on its tenant networks and boots
//! the instance.

use async_trait::async_trait;
use ironic_core::driver::{
    BaseInterface, NetworkPhase, RamdiskKind, RamdiskParams, RescueInterface, StepOutcome, Task,
};
use ironic_core::{DriverError, PowerAction};

use super::deploy::{AgentConfig, AgentDeploy};

/// `rescue_interface = "agent"`.
#[derive(Debug, Clone)]
pub struct AgentRescue {
    cfg: AgentConfig,
}

impl AgentRescue {
    /// The interface name.
    pub const NAME: &'static str = "agent";

    /// A rescue interface with the agent settings `cfg` (power timeout, kernel
    /// parameters, TLS).
    pub fn new(cfg: AgentConfig) -> Self {
        AgentRescue { cfg }
    }

    fn params(&self, task: &Task) -> RamdiskParams {
        let mut p = RamdiskParams::new(RamdiskKind::Rescue);
        p.kernel_params = self.cfg.kernel_params.clone();
        if let Some(u) = &task.env.api_url {
            p.kernel_params.insert("ipa-api-url".into(), u.clone());
        }
        if !self.cfg.auto_tls {
            p.kernel_params
                .insert("ipa-enable-auto-tls".into(), "0".into());
        }
        p
    }
}

/// No properties of its own (as Ironic's: `rescue_kernel`/`rescue_ramdisk`
/// are the boot interface's).
#[async_trait]
impl BaseInterface for AgentRescue {
    /// The boot interface must be able to boot the rescue ramdisk (Ironic's
    /// `validate_rescue`).
    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        task.driver()?.boot.validate_rescue(task)
    }
}

#[async_trait]
impl RescueInterface for AgentRescue {
    async fn rescue(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        let driver = task.driver()?.clone();
        task.node_power_action(PowerAction::PowerOff, self.cfg.power_timeout)
            .await?;
        driver.boot.clean_up_instance(task).await?;
        driver.network.unconfigure_tenant_networks(task).await?;
        driver
            .network
            .add_network(task, NetworkPhase::Rescuing)
            .await?;
        AgentDeploy::wipe_agent(task);
        let params = self.params(task);
        driver.boot.prepare_ramdisk(task, &params).await?;
        task.node_power_action(PowerAction::PowerOn, self.cfg.power_timeout)
            .await?;
        Ok(StepOutcome::Wait)
    }

    async fn unrescue(&self, task: &mut Task) -> Result<(), DriverError> {
        let driver = task.driver()?.clone();
        task.node_power_action(PowerAction::PowerOff, self.cfg.power_timeout)
            .await?;
        self.clean_up(task).await?;
        driver.network.configure_tenant_networks(task).await?;
        driver.boot.prepare_instance(task).await?;
        task.node_power_action(PowerAction::PowerOn, self.cfg.power_timeout)
            .await?;
        Ok(())
    }

    async fn clean_up(&self, task: &mut Task) -> Result<(), DriverError> {
        for k in ["rescue_password", "hashed_rescue_password"] {
            task.node.instance_info.remove(k);
        }
        let driver = task.driver()?.clone();
        driver.boot.clean_up_ramdisk(task).await?;
        driver
            .network
            .remove_network(task, NetworkPhase::Rescuing)
            .await?;
        AgentDeploy::wipe_agent(task);
        Ok(())
    }
}
