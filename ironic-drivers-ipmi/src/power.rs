//! [`IpmiPower`]: Ironic's `ipmitool` power interface over the native session.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ironic_core::driver::{BaseInterface, PowerInterface, PowerInterfaceExt, PropertyDoc, Task};
use ironic_core::{DriverError, PowerAction, PowerState};

use crate::client::{IpmiClient, Request};
use crate::config::{IpmiDriverInfo, PROPERTIES};
use crate::error::Error;

/// Chassis Control operations (IPMI v2.0 28.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChassisControl {
    PowerDown = 0,
    PowerUp = 1,
    DiagnosticInterrupt = 4,
    SoftShutdown = 5,
}

pub(crate) async fn chassis_power(
    client: &IpmiClient,
    info: &IpmiDriverInfo,
) -> Result<PowerState, Error> {
    let data = client
        .call(info, Request::new(0x00, 0x01, [], "Get Chassis Status"))
        .await?;
    match data.first() {
        Some(b) if b & 1 == 1 => Ok(PowerState::On),
        Some(_) => Ok(PowerState::Off),
        None => Err(Error::Unexpected {
            bmc: info.bmc(),
            what: "Get Chassis Status",
            detail: "empty response".into(),
        }),
    }
}

pub(crate) async fn chassis_control(
    client: &IpmiClient,
    info: &IpmiDriverInfo,
    op: ChassisControl,
) -> Result<(), Error> {
    let what = match op {
        ChassisControl::PowerDown => "Chassis Control (power down)",
        ChassisControl::PowerUp => "Chassis Control (power up)",
        ChassisControl::DiagnosticInterrupt => "Chassis Control (diagnostic interrupt)",
        ChassisControl::SoftShutdown => "Chassis Control (soft shutdown)",
    };
    client
        .call(info, Request::new(0x00, 0x02, [op as u8], what))
        .await?;
    Ok(())
}

/// Power control over IPMI (registered as `ipmitool`, Ironic's name).
///
/// Hard actions use Chassis Control power up/down; `reboot` is power off then on
/// (as Ironic does, so a boot device set before it applies); soft actions send an
/// ACPI soft shutdown. Every action polls Get Chassis Status until the state is
/// reached or the timeout passes.
#[derive(Clone, Debug)]
pub struct IpmiPower {
    client: Arc<IpmiClient>,
}

impl IpmiPower {
    pub(crate) fn new(client: Arc<IpmiClient>) -> Self {
        IpmiPower { client }
    }

    fn info(&self, task: &Task) -> Result<IpmiDriverInfo, DriverError> {
        IpmiDriverInfo::from_node(&task.node, self.client.config())
    }

    async fn reach(
        &self,
        task: &Task,
        info: &IpmiDriverInfo,
        op: ChassisControl,
        want: PowerState,
        timeout: Duration,
    ) -> Result<(), DriverError> {
        async {
            if chassis_power(&self.client, info).await? == want {
                return Ok(());
            }
            chassis_control(&self.client, info, op).await?;
            self.wait_for_power_state(
                task,
                want,
                timeout,
                self.client.config().power_poll_interval,
            )
            .await
        }
        .await
        // a power action's timeout is final (the power contract): the command may
        // have reached the BMC, and the caller's time is spent
        .map_err(DriverError::into_action_error)
    }
}

#[async_trait]
impl BaseInterface for IpmiPower {
    fn properties(&self) -> Vec<PropertyDoc> {
        PROPERTIES.to_vec()
    }

    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        self.info(task).map(|_| ())
    }
}

#[async_trait]
impl PowerInterface for IpmiPower {
    async fn get_power_state(&self, task: &Task) -> Result<PowerState, DriverError> {
        let info = self.info(task)?;
        Ok(chassis_power(&self.client, &info).await?)
    }

    async fn set_power_state(
        &self,
        task: &Task,
        action: PowerAction,
        timeout: Option<Duration>,
    ) -> Result<(), DriverError> {
        let info = self.info(task)?;
        let cfg = self.client.config();
        let hard = timeout.unwrap_or(cfg.power_timeout);
        let soft = timeout.unwrap_or(cfg.soft_power_off_timeout);
        tracing::info!(node = %task.node.uuid, bmc = %info.bmc(), %action, "IPMI power action");
        match action {
            PowerAction::PowerOn => {
                self.reach(task, &info, ChassisControl::PowerUp, PowerState::On, hard)
                    .await
            }
            PowerAction::PowerOff => {
                self.reach(
                    task,
                    &info,
                    ChassisControl::PowerDown,
                    PowerState::Off,
                    hard,
                )
                .await
            }
            PowerAction::Reboot => self.reboot(task, timeout).await,
            PowerAction::SoftPowerOff => {
                self.reach(
                    task,
                    &info,
                    ChassisControl::SoftShutdown,
                    PowerState::Off,
                    soft,
                )
                .await
            }
            PowerAction::SoftReboot => {
                self.reach(
                    task,
                    &info,
                    ChassisControl::SoftShutdown,
                    PowerState::Off,
                    soft,
                )
                .await?;
                self.reach(task, &info, ChassisControl::PowerUp, PowerState::On, hard)
                    .await
            }
            other => Err(DriverError::unsupported(format!(
                "The power action {other} is not supported by IPMI"
            ))),
        }
    }

    async fn reboot(&self, task: &Task, timeout: Option<Duration>) -> Result<(), DriverError> {
        let info = self.info(task)?;
        let t = timeout.unwrap_or(self.client.config().power_timeout);
        self.reach(task, &info, ChassisControl::PowerDown, PowerState::Off, t)
            .await?;
        self.reach(task, &info, ChassisControl::PowerUp, PowerState::On, t)
            .await
    }

    fn get_supported_power_states(&self, _task: &Task) -> Vec<PowerAction> {
        vec![
            PowerAction::PowerOn,
            PowerAction::PowerOff,
            PowerAction::Reboot,
            PowerAction::SoftPowerOff,
            PowerAction::SoftReboot,
        ]
    }
}
