use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{BaseInterface, Task};
use crate::error::DriverError;

/// How to reach a node's console (`GET /v1/nodes/{id}/states/console`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleInfo {
    /// `socat`, `shellinabox`, `vnc`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Where to connect.
    pub url: String,
}

/// Serial or graphical console (Ironic's `ConsoleInterface`, optional).
///
/// # Contract
/// `start_console` succeeds if the console is already started; `stop_console` if it
/// is already stopped. Both may change the node (the conductor saves it with
/// `console_enabled`). Graphical consoles ([`crate::graphical`]) also say when a
/// session has expired ([`ConsoleInterface::session_expired`]): the conductor's
/// periodic check stops those consoles.
#[async_trait]
pub trait ConsoleInterface: BaseInterface {
    /// Start the console.
    async fn start_console(&self, task: &mut Task) -> Result<(), DriverError>;
    /// Stop the console.
    async fn stop_console(&self, task: &mut Task) -> Result<(), DriverError>;
    /// Connection information.
    async fn get_console(&self, task: &Task) -> Result<ConsoleInfo, DriverError>;
    /// Whether the node's console session has expired and the console should be
    /// stopped (Ironic's `_expire_console_sessions` of graphical consoles). Must
    /// not contact anything. Default: never.
    fn session_expired(&self, task: &Task) -> bool {
        let _ = task;
        false
    }
    /// Stop every console this interface runs, whatever the node (Ironic's
    /// `stop_all_containers`, at conductor shutdown). Default: nothing to do.
    async fn stop_all(&self) -> Result<(), DriverError> {
        Ok(())
    }
}
