use std::time::Duration;

use async_trait::async_trait;

use super::{BaseInterface, Task};
use crate::error::{DriverError, ErrorKind};
use crate::states::{PowerAction, PowerState};

/// Power control (Ironic's `PowerInterface`, core).
///
/// # Contract
/// * [`get_power_state`](Self::get_power_state) reads the state from the BMC; it may be
///   called often (power-state sync) and under a shared lock.
/// * [`set_power_state`](Self::set_power_state) returns once the node has reached the
///   state the action leads to ([`PowerAction::resulting_state`]), or fails with
///   [`ErrorKind::Timeout`] after `timeout` (the driver's own default when `None`).
///   Asking for the state the node is already in succeeds.
/// * [`reboot`](Self::reboot) is a hard reboot and must power the node on if it is off.
/// * Errors that a retry may fix (a lost packet, a busy BMC) are marked retryable;
///   wrong credentials are not.
///
/// # For driver authors
/// Use [`PowerInterfaceExt::wait_for_power_state`] to poll after sending the command;
/// report unsupported actions (e.g. soft power off) through
/// [`get_supported_power_states`](Self::get_supported_power_states) and
/// [`DriverError::unsupported`].
#[async_trait]
pub trait PowerInterface: BaseInterface {
    /// The current power state.
    async fn get_power_state(&self, task: &Task) -> Result<PowerState, DriverError>;

    /// Perform `action` and wait until it is reached.
    async fn set_power_state(
        &self,
        task: &Task,
        action: PowerAction,
        timeout: Option<Duration>,
    ) -> Result<(), DriverError>;

    /// Hard reboot; powers on a node that is off.
    async fn reboot(&self, task: &Task, timeout: Option<Duration>) -> Result<(), DriverError>;

    /// The actions this driver supports (default: on, off, reboot).
    fn get_supported_power_states(&self, task: &Task) -> Vec<PowerAction> {
        let _ = task;
        vec![
            PowerAction::PowerOn,
            PowerAction::PowerOff,
            PowerAction::Reboot,
        ]
    }

    /// Whether the conductor may force its recorded state onto the hardware during
    /// power-state sync (default true).
    fn supports_power_sync(&self, task: &Task) -> bool {
        let _ = task;
        true
    }
}

/// Helpers for every [`PowerInterface`].
#[async_trait]
pub trait PowerInterfaceExt: PowerInterface {
    /// Poll `get_power_state` every `interval` until it reads `want`, or fail with a
    /// [`ErrorKind::Timeout`] error after `timeout`. Read errors that are retryable are
    /// tolerated while time remains.
    async fn wait_for_power_state(
        &self,
        task: &Task,
        want: PowerState,
        timeout: Duration,
        interval: Duration,
    ) -> Result<(), DriverError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let last_err = match self.get_power_state(task).await {
                Ok(s) if s == want => return Ok(()),
                Ok(_) => None,
                Err(e) if e.is_retryable() => Some(e),
                Err(e) => return Err(e),
            };
            if tokio::time::Instant::now() + interval > deadline {
                let detail = last_err
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default();
                return Err(DriverError::new(
                    ErrorKind::Timeout,
                    format!(
                        "Node {} did not reach power state {want} within {}s{detail}",
                        task.node.uuid,
                        timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(interval).await;
        }
    }
}

impl<T: PowerInterface + ?Sized> PowerInterfaceExt for T {}
