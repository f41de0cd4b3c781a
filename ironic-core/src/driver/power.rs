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
///   state the action leads to ([`PowerAction::resulting_state`]): the next
///   `get_power_state` reads that state. It does not return earlier.
/// * When the state is not reached within `timeout` (the driver's own default when
///   `None`), it fails with [`ErrorKind::Timeout`], **not retryable**, and returns
///   about when the timeout passes: the caller's time is spent and the BMC may have
///   acted on the command. The same holds for [`reboot`](Self::reboot).
/// * Asking for the state the node is already in succeeds.
/// * [`reboot`](Self::reboot) is a hard reboot and must power the node on if it is off.
/// * An action not in [`get_supported_power_states`](Self::get_supported_power_states)
///   is refused with [`ErrorKind::Unsupported`] (or `InvalidParameter`) and changes
///   nothing.
/// * Wrong credentials are [`ErrorKind::Unauthenticated`], not retryable. A BMC that
///   cannot be reached is [`ErrorKind::Unreachable`] (retryable) or `Timeout`.
/// * Secrets (`Secret` values of `driver_info`) never appear in `Debug`, `Display`,
///   error messages or logs.
///
/// # Retries
/// The conductor never re-sends a power action (as Ironic's `node_power_action`):
/// an error of `set_power_state` or `reboot` fails the request (API power requests
/// record it in `last_error`; the reserved `power_on`/`power_off`/`reboot` steps fail
/// their step). Retransmitting a lost packet or retrying a BMC that answered
/// "busy" is the driver's job, inside the action's timeout, because only the driver
/// knows whether the command reached the BMC. The retryable flag of an action's
/// error tells the caller whether asking again later may succeed. Reads
/// (`get_power_state`) that fail with a retryable error may be repeated by the
/// conductor (verification) and are tolerated while polling.
///
/// # For driver authors
/// Send the command, then poll with [`PowerInterfaceExt::wait_for_power_state`] (its
/// timeout error is already non-retryable); report unsupported actions (e.g. soft
/// power off) through [`get_supported_power_states`](Self::get_supported_power_states)
/// and [`DriverError::unsupported`]. The conformance kit (`testkit`, feature
/// `testkit`) checks each rule above.
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
    /// non-retryable [`ErrorKind::Timeout`] error after `timeout` (the contract's
    /// timeout of a power action). Read errors that are retryable are tolerated while
    /// time remains; a non-retryable one is returned at once.
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
                        timeout.as_secs_f64()
                    ),
                )
                .with_retryable(false));
            }
            tokio::time::sleep(interval).await;
        }
    }
}

impl<T: PowerInterface + ?Sized> PowerInterfaceExt for T {}
