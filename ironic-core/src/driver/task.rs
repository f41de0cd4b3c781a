use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{DriverError, ErrorKind};
use crate::hardware::Driver;
use crate::model::{Node, Port, Portgroup};
use crate::states::PowerAction;

/// What a driver method works on: a snapshot of the node and its ports, taken
/// under the node's lock.
///
/// Drivers read `driver_info`/`instance_info` from it and may change
/// `driver_internal_info`, `properties` and the like on `node`; the conductor saves
/// the node after the call (for methods taking `&mut Task`). A `shared` task is
/// read-only: whatever a driver changes on it is not saved.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Task {
    /// The node.
    pub node: Node,
    /// Its ports.
    pub ports: Vec<Port>,
    /// Its port groups.
    pub portgroups: Vec<Portgroup>,
    /// Whether the task holds only a shared lock.
    pub shared: bool,
    /// Facts about the deployment the drivers may need.
    pub env: TaskEnv,
    /// The node's resolved interfaces, so that one interface can reach the others
    /// (the agent deploy interface boots the ramdisk through `driver.boot` and
    /// reboots through `driver.power`, as Ironic's `task.driver.*`). The conductor
    /// sets it on every task it builds; `None` only in hand-made tasks.
    pub driver: Option<Driver>,
}

/// Facts about the conductor and the deployment a driver may need: where the API
/// is (for the agent's kernel command line), the conductor's host name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskEnv {
    /// Conductor host name.
    pub conductor: String,
    /// The URL the ramdisk agent should call (`ipa-api-url`), if an API is served.
    pub api_url: Option<String>,
    /// Free-form settings the application passes to drivers (e.g. deploy kernel defaults).
    pub settings: BTreeMap<String, String>,
    /// Where a driver reports what the conductor cannot see itself (the agent
    /// deploy interface's exchanges with the agent: [`crate::observe::Observer::agent_call`]).
    #[serde(skip)]
    pub observer: crate::observe::ObserverHandle,
}

impl Task {
    /// A task over a node with no ports (for tests and simple callers).
    pub fn new(node: Node) -> Self {
        Task {
            node,
            ports: Vec::new(),
            portgroups: Vec::new(),
            shared: false,
            env: TaskEnv::default(),
            driver: None,
        }
    }

    /// The same task with its resolved interfaces set.
    pub fn with_driver(mut self, driver: Driver) -> Self {
        self.driver = Some(driver);
        self
    }

    /// The node's resolved interfaces, or an error naming the node when the task was
    /// built without them.
    pub fn driver(&self) -> Result<&Driver, DriverError> {
        self.driver.as_ref().ok_or_else(|| {
            DriverError::new(
                ErrorKind::Other,
                format!(
                    "Task for node {} carries no resolved driver interfaces",
                    self.node.uuid
                ),
            )
        })
    }

    /// Ironic's `node_power_action`: run `action` through the node's power
    /// interface and record the resulting state in `node.power_state` (and clear
    /// `target_power_state`), so that the conductor saves it. Drivers that power the
    /// node during a step should use this rather than calling the power interface
    /// directly, or the conductor's power-state sync would see a stale state.
    pub async fn node_power_action(
        &mut self,
        action: PowerAction,
        timeout: Option<std::time::Duration>,
    ) -> Result<(), DriverError> {
        let power = self.driver()?.power.clone();
        let res = match action {
            PowerAction::Reboot => power.reboot(self, timeout).await,
            other => power.set_power_state(self, other, timeout).await,
        };
        self.node.target_power_state = None;
        res?;
        self.node.power_state = Some(action.resulting_state());
        Ok(())
    }

    /// A task over a node and its ports.
    pub fn with_ports(node: Node, ports: Vec<Port>) -> Self {
        Task {
            ports,
            ..Task::new(node)
        }
    }
}
