//! Power actions and the management, console, RAID and vendor calls.

use std::time::Duration;

use serde_json::Value;

use super::Conductor;
use super::job::Job;
use crate::driver::{BootDevice, BootDeviceInfo, BootMode, ConsoleInfo};
use crate::error::{DriverError, Error, Result};
use crate::ids::Ident;
use crate::model::{JsonMap, Severity};
use crate::states::{PowerAction, ProvisionState};

impl Conductor {
    /// Request a power action (HTTP 202 semantics): records `target_power_state`
    /// and returns; a worker performs the action with `timeout` (default
    /// `power_state_change_timeout`), then records the new `power_state`, or the
    /// error in `last_error` and the history.
    pub async fn set_power_state(
        &self,
        ident: &Ident,
        action: PowerAction,
        timeout: Option<Duration>,
    ) -> Result<()> {
        self.check_accepting()?;
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::Invalid(
                "The power action timeout must be a positive number of seconds".to_owned(),
            ));
        }
        let mut job = self.job(ident, true).await?;
        match self.prepare_power(&mut job, action).await {
            Ok(()) => {
                let timeout = timeout.unwrap_or(self.config().power_state_change_timeout);
                self.spawn_job(job, move |job| do_power(job, action, timeout));
                Ok(())
            }
            Err(e) => {
                job.finish().await;
                Err(e)
            }
        }
    }

    async fn prepare_power(&self, job: &mut Job, action: PowerAction) -> Result<()> {
        let n = job.node();
        let uuid = n.uuid;
        if matches!(
            n.provision_state,
            ProvisionState::Cleaning | ProvisionState::CleanWait
        ) {
            return Err(Error::InvalidState {
                action: action.to_string(),
                node: uuid.to_string(),
                state: n.provision_state.to_string(),
            });
        }
        if n.disable_power_off
            && matches!(action, PowerAction::PowerOff | PowerAction::SoftPowerOff)
        {
            return Err(Error::Invalid(format!(
                "Node {uuid} has disable_power_off set and cannot be powered off"
            )));
        }
        let d = job.task.driver()?.clone();
        d.power.validate(&job.task)?;
        if !d
            .power
            .get_supported_power_states(&job.task)
            .contains(&action)
        {
            return Err(Error::Invalid(format!(
                "The requested action \"{action}\" is not supported by the power interface {} of node {uuid}",
                job.node().interfaces.power_interface
            )));
        }
        job.reserve_worker()?;
        job.node_mut().target_power_state = Some(action);
        job.node_mut().last_error = None;
        job.save().await
    }

    /// The boot device as the BMC reports it.
    pub async fn get_boot_device(&self, ident: &Ident) -> Result<BootDeviceInfo> {
        let task = self.shared_task(ident).await?;
        let d = task.driver()?.clone();
        Ok(d.management.get_boot_device(&task).await?)
    }

    /// Set the boot device (synchronous; exclusive lock).
    pub async fn set_boot_device(
        &self,
        ident: &Ident,
        device: BootDevice,
        persistent: bool,
    ) -> Result<()> {
        self.check_accepting()?;
        let job = self.job(ident, true).await?;
        let r: Result<()> = async {
            let d = job.task.driver()?.clone();
            d.management.validate(&job.task)?;
            let supported = d.management.get_supported_boot_devices(&job.task).await?;
            if !supported.contains(&device) {
                return Err(Error::Driver(DriverError::invalid(format!(
                    "Invalid boot device {device} for node {}: supported are {}",
                    job.node().uuid,
                    supported
                        .iter()
                        .map(|d| d.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))));
            }
            d.management
                .set_boot_device(&job.task, device, persistent)
                .await?;
            Ok(())
        }
        .await;
        job.finish().await;
        r
    }

    /// Devices `set_boot_device` accepts.
    pub async fn get_supported_boot_devices(&self, ident: &Ident) -> Result<Vec<BootDevice>> {
        let task = self.shared_task(ident).await?;
        let d = task.driver()?.clone();
        Ok(d.management.get_supported_boot_devices(&task).await?)
    }

    /// Set the boot mode; refused while the node is in a transient state.
    pub async fn set_boot_mode(&self, ident: &Ident, mode: BootMode) -> Result<()> {
        self.check_accepting()?;
        let mut job = self.job(ident, true).await?;
        let r: Result<()> = async {
            let n = job.node();
            if n.provision_state.is_transient() {
                return Err(Error::Conflict(format!(
                    "Node {} is in state {}; the boot mode cannot change now",
                    n.uuid, n.provision_state
                )));
            }
            let d = job.task.driver()?.clone();
            d.management.set_boot_mode(&job.task, mode).await?;
            job.node_mut().boot_mode = Some(mode.as_str().to_owned());
            job.save().await
        }
        .await;
        job.finish().await;
        r
    }

    /// Turn secure boot on or off; refused while the node is in a transient state.
    pub async fn set_secure_boot(&self, ident: &Ident, on: bool) -> Result<()> {
        self.check_accepting()?;
        let mut job = self.job(ident, true).await?;
        let r: Result<()> = async {
            let n = job.node();
            if n.provision_state.is_transient() {
                return Err(Error::Conflict(format!(
                    "Node {} is in state {}; secure boot cannot change now",
                    n.uuid, n.provision_state
                )));
            }
            let d = job.task.driver()?.clone();
            d.management.set_secure_boot_state(&job.task, on).await?;
            job.node_mut().secure_boot = Some(on);
            job.save().await
        }
        .await;
        job.finish().await;
        r
    }

    /// Inject a non-maskable interrupt.
    pub async fn inject_nmi(&self, ident: &Ident) -> Result<()> {
        self.check_accepting()?;
        let job = self.job(ident, true).await?;
        let r: Result<()> = async {
            let d = job.task.driver()?.clone();
            Ok(d.management.inject_nmi(&job.task).await?)
        }
        .await;
        job.finish().await;
        r
    }

    /// Sensor readings.
    pub async fn get_sensors_data(&self, ident: &Ident) -> Result<JsonMap> {
        let task = self.shared_task(ident).await?;
        let d = task.driver()?.clone();
        Ok(d.management.get_sensors_data(&task).await?)
    }

    /// Start or stop the console and record `console_enabled`, as Ironic's
    /// `set_console_mode`: nothing is done when the console is already in that
    /// state (after validating); `last_error` is cleared first, and a failure is
    /// recorded in `last_error` and the node's history
    /// (`Error enabling the console on node ...`) and returned.
    pub async fn set_console_mode(&self, ident: &Ident, enabled: bool) -> Result<()> {
        self.check_accepting()?;
        let mut job = self.job(ident, true).await?;
        let d = match job.task.driver() {
            Ok(d) => d.clone(),
            Err(e) => {
                job.finish().await;
                return Err(e.into());
            }
        };
        if let Err(e) = d.console.validate(&job.task) {
            job.finish().await;
            return Err(e.into());
        }
        if job.node().console_enabled == enabled {
            tracing::info!(node = %job.node().uuid, enabled, "no console action: the console is already in that state");
            job.finish().await;
            return Ok(());
        }
        job.node_mut().last_error = None;
        let r = if enabled {
            d.console.start_console(&mut job.task).await
        } else {
            d.console.stop_console(&mut job.task).await
        };
        let r: Result<()> = match r {
            Ok(()) => {
                job.node_mut().console_enabled = enabled;
                job.save().await
            }
            Err(e) => {
                let msg = format!(
                    "Error {} the console on node {}. Reason: {e}",
                    if enabled { "enabling" } else { "disabling" },
                    job.node().uuid
                );
                tracing::error!(node = %job.node().uuid, "{msg}");
                job.node_mut().last_error = Some(msg.clone());
                if job.save().await.is_ok() {
                    let node = job.node().clone();
                    self.record_history(&node, "console", crate::model::Severity::Error, &msg)
                        .await;
                }
                Err(e.into())
            }
        };
        job.finish().await;
        r
    }

    /// Console connection details, `None` when the console is disabled.
    pub async fn get_console(&self, ident: &Ident) -> Result<Option<ConsoleInfo>> {
        let task = self.shared_task(ident).await?;
        if !task.node.console_enabled {
            return Ok(None);
        }
        let d = task.driver()?.clone();
        Ok(Some(d.console.get_console(&task).await?))
    }

    /// Set `target_raid_config` after the RAID interface checked it (an empty
    /// object clears it).
    pub async fn set_target_raid_config(&self, ident: &Ident, cfg: JsonMap) -> Result<()> {
        self.check_accepting()?;
        let mut job = self.job(ident, true).await?;
        let r: Result<()> = async {
            if !cfg.is_empty() {
                let d = job.task.driver()?.clone();
                d.raid.validate_raid_config(&job.task, &cfg)?;
            }
            job.node_mut().target_raid_config = cfg;
            job.save().await
        }
        .await;
        job.finish().await;
        r
    }

    /// Call a vendor passthru method (synchronously, under the exclusive lock).
    pub async fn vendor_passthru(
        &self,
        ident: &Ident,
        method: &str,
        http_method: &str,
        body: Value,
    ) -> Result<Value> {
        self.check_accepting()?;
        let mut job = self.job(ident, true).await?;
        let r: Result<Value> = async {
            let d = job.task.driver()?.clone();
            d.vendor.validate(&job.task)?;
            let out = d
                .vendor
                .call(&mut job.task, method, http_method, body)
                .await?;
            job.save().await?;
            Ok(out)
        }
        .await;
        job.finish().await;
        r
    }
}

async fn do_power(mut job: Job, action: PowerAction, timeout: Duration) -> Job {
    let uuid = job.node().uuid;
    let before = job.node().power_state;
    tracing::info!(node = %uuid, action = %action, "power action");
    // One attempt, as Ironic's `node_power_action`: the conductor never re-sends a
    // power action, whatever the error says (see `PowerInterface`'s contract). The
    // driver retries its own transport within `timeout`, where it knows whether the
    // command reached the BMC; a retryable error here only tells the caller that
    // asking again later may work.
    let r = job.task.node_power_action(action, Some(timeout)).await;
    if let Err(e) = r {
        let msg = format!(
            "Failed to change power state to '{}' by '{action}' for node {uuid}. Error: {e}",
            action.resulting_state()
        );
        tracing::error!(node = %uuid, error = %msg, "power action failed");
        let n = job.node_mut();
        n.last_error = Some(msg.clone());
        n.target_power_state = None;
        n.power_state = before;
        let node = job.node().clone();
        job.c
            .record_history(&node, "power", Severity::Error, &msg)
            .await;
    }
    job.save_or_log().await;
    job
}
