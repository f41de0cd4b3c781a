//! `RedfishPower`: `ComputerSystem.Reset`, then poll `PowerState` until reached.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ironic_core::driver::{BaseInterface, PowerInterface, PowerInterfaceExt, PropertyDoc, Task};
use ironic_core::{DriverError, PowerAction, PowerState};
use serde_json::json;

use crate::client::RedfishClient;
use crate::error::{RedfishError, Result};
use crate::models::{self, ComputerSystem, ResetType};
use crate::{RedfishConfig, Shared, config};

/// Power control over Redfish (`power_interface = "redfish"`).
#[derive(Debug, Clone)]
pub struct RedfishPower {
    shared: Arc<Shared>,
}

impl RedfishPower {
    /// A power interface with its own client cache.
    pub fn new(config: RedfishConfig) -> Self {
        Self::with_shared(Arc::new(Shared::new(config)))
    }

    pub(crate) fn with_shared(shared: Arc<Shared>) -> Self {
        RedfishPower { shared }
    }
}

/// Ironic's mapping of Redfish power states (transitional states count as the
/// state they lead to).
pub(crate) fn power_state_of(system: &ComputerSystem) -> PowerState {
    match system.power_state {
        Some(models::PowerState::On | models::PowerState::PoweringOn) => PowerState::On,
        Some(models::PowerState::Off | models::PowerState::PoweringOff) => PowerState::Off,
        _ => PowerState::Error,
    }
}

/// The first of `prefs` the BMC allows (any of them when it does not say).
pub(crate) fn pick_reset(allowed: &[String], prefs: &[ResetType]) -> Option<ResetType> {
    if allowed.is_empty() {
        return prefs.first().cloned();
    }
    prefs
        .iter()
        .find(|p| allowed.iter().any(|a| a.eq_ignore_ascii_case(p.as_str())))
        .cloned()
}

/// POST `ComputerSystem.Reset` with the first allowed of `prefs`.
pub(crate) async fn reset(
    client: &RedfishClient,
    system_path: &str,
    system: &ComputerSystem,
    prefs: &[ResetType],
) -> Result<ResetType> {
    let action = system.reset_action();
    let allowed = action
        .as_ref()
        .map(|a| a.allowable_values("ResetType"))
        .unwrap_or_default();
    let kind = pick_reset(&allowed, prefs).ok_or_else(|| {
        RedfishError::Unsupported(format!(
            "The Redfish system {system_path} at {} allows reset types {allowed:?}, none of {:?}",
            client.address,
            prefs.iter().map(ResetType::as_str).collect::<Vec<_>>()
        ))
    })?;
    let target = action
        .map(|a| a.target)
        .unwrap_or_else(|| format!("{system_path}/Actions/ComputerSystem.Reset"));
    let resp = client
        .post(&target, &json!({"ResetType": kind.as_str()}))
        .await?;
    client
        .wait_for_task(&resp, "power change", client.config().power_state_timeout)
        .await?;
    tracing::info!(bmc = %client.address, system = system_path, reset = kind.as_str(), "Redfish reset sent");
    Ok(kind)
}

impl RedfishPower {
    async fn read(&self, task: &Task) -> Result<PowerState> {
        let (client, path) = self.shared.connect(task).await?;
        let system: ComputerSystem = client.get(&path).await?;
        Ok(power_state_of(&system))
    }

    async fn act(&self, task: &Task, action: PowerAction) -> Result<()> {
        let (client, path) = self.shared.connect(task).await?;
        let system: ComputerSystem = client.get(&path).await?;
        let current = power_state_of(&system);
        let prefs: &[ResetType] = match action {
            PowerAction::PowerOn if current == PowerState::On => return Ok(()),
            PowerAction::PowerOff | PowerAction::SoftPowerOff if current == PowerState::Off => {
                return Ok(());
            }
            PowerAction::PowerOn => &[ResetType::On, ResetType::ForceOn],
            PowerAction::PowerOff => &[ResetType::ForceOff],
            PowerAction::SoftPowerOff => &[ResetType::GracefulShutdown],
            PowerAction::Reboot | PowerAction::SoftReboot if current == PowerState::Off => {
                &[ResetType::On, ResetType::ForceOn]
            }
            PowerAction::Reboot => &[ResetType::ForceRestart, ResetType::PowerCycle],
            PowerAction::SoftReboot => &[ResetType::GracefulRestart],
            other => {
                return Err(RedfishError::Unsupported(format!(
                    "The power action {other} is not supported by Redfish"
                )));
            }
        };
        reset(&client, &path, &system, prefs).await?;
        Ok(())
    }
}

#[async_trait]
impl BaseInterface for RedfishPower {
    fn properties(&self) -> Vec<PropertyDoc> {
        config::PROPERTIES.to_vec()
    }

    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        self.shared.info(task).map(|_| ())
    }
}

#[async_trait]
impl PowerInterface for RedfishPower {
    async fn get_power_state(&self, task: &Task) -> Result<PowerState, DriverError> {
        Ok(self.read(task).await?)
    }

    async fn set_power_state(
        &self,
        task: &Task,
        action: PowerAction,
        timeout: Option<Duration>,
    ) -> Result<(), DriverError> {
        async {
            self.act(task, action).await?;
            let cfg = &self.shared.config;
            self.wait_for_power_state(
                task,
                action.resulting_state(),
                timeout.unwrap_or(cfg.power_state_timeout),
                cfg.power_poll_interval,
            )
            .await
        }
        .await
        // a power action's timeout is final (the power contract)
        .map_err(DriverError::into_action_error)
    }

    async fn reboot(&self, task: &Task, timeout: Option<Duration>) -> Result<(), DriverError> {
        self.set_power_state(task, PowerAction::Reboot, timeout)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_types_follow_allowable_values() {
        let allowed = vec![
            "ForceOn".to_owned(),
            "ForceOff".to_owned(),
            "PowerCycle".into(),
        ];
        assert_eq!(
            pick_reset(&allowed, &[ResetType::On, ResetType::ForceOn]),
            Some(ResetType::ForceOn)
        );
        assert_eq!(
            pick_reset(&allowed, &[ResetType::ForceRestart, ResetType::PowerCycle]),
            Some(ResetType::PowerCycle)
        );
        assert_eq!(pick_reset(&allowed, &[ResetType::GracefulShutdown]), None);
        assert_eq!(pick_reset(&[], &[ResetType::On]), Some(ResetType::On));
    }

    #[test]
    fn power_states_map_like_ironic() {
        let sys = |s: &str| -> ComputerSystem {
            models::parse(format!(r#"{{"PowerState": "{s}"}}"#).as_bytes()).unwrap()
        };
        assert_eq!(power_state_of(&sys("On")), PowerState::On);
        assert_eq!(power_state_of(&sys("PoweringOn")), PowerState::On);
        assert_eq!(power_state_of(&sys("off")), PowerState::Off);
        assert_eq!(power_state_of(&sys("Resetting")), PowerState::Error);
        assert_eq!(
            power_state_of(&ComputerSystem::default()),
            PowerState::Error
        );
    }
}
