//! Shared helpers of the integration tests.

#![allow(dead_code)]

pub mod peers;

use std::sync::Arc;
use std::time::Duration;

use ironic_core::Node;
use ironic_core::driver::{ManagementInterface, PowerInterface, Task};
use ironic_drivers_ipmi::IpmiConfig;

/// A node of hardware type `ipmi` with this driver_info.
pub fn node(driver_info: serde_json::Value) -> Node {
    let mut n = Node::new("ipmi");
    n.driver_info = serde_json::from_value(driver_info).unwrap();
    n
}

/// A task over such a node.
pub fn task(driver_info: serde_json::Value) -> Task {
    Task::new(node(driver_info))
}

/// Config with short timers for tests.
pub fn config() -> IpmiConfig {
    IpmiConfig {
        power_poll_interval: Duration::from_millis(100),
        power_timeout: Duration::from_secs(15),
        soft_power_off_timeout: Duration::from_secs(15),
        retry_backoff: Duration::from_millis(100),
        ..IpmiConfig::default()
    }
}

/// The power and management interfaces, sharing one client.
pub fn interfaces(config: IpmiConfig) -> (Arc<dyn PowerInterface>, Arc<dyn ManagementInterface>) {
    let i = ironic_drivers_ipmi::IpmiInterfaces::new(config);
    (i.power, i.management)
}
