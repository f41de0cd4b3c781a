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
/// is already stopped.
#[async_trait]
pub trait ConsoleInterface: BaseInterface {
    /// Start the console.
    async fn start_console(&self, task: &mut Task) -> Result<(), DriverError>;
    /// Stop the console.
    async fn stop_console(&self, task: &mut Task) -> Result<(), DriverError>;
    /// Connection information.
    async fn get_console(&self, task: &Task) -> Result<ConsoleInfo, DriverError>;
}
