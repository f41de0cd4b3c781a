#![doc = include_str!("../README.md")]

mod client;
mod error;
mod ovsdb;
mod switch;

use std::sync::Arc;

pub use client::Endpoint;
pub use error::OvsError;
pub use switch::{DEFAULT_ADDRESS, OvsSettings, OvsSwitch, OvsSwitchDriver, PARKING_VLAN};

/// The name switch configurations use in `driver`.
pub const NAME: &str = "ovs";

/// Register the `ovs` switch driver.
pub fn register(registry: &mut ironic_core::switch::SwitchRegistry) {
    registry.register_driver(Arc::new(OvsSwitchDriver));
}
