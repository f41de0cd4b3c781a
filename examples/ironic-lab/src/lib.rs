#![doc = include_str!("../README.md")]

pub mod images;
pub mod ipmi;
pub mod machine;
pub mod model;
pub mod rack;
pub mod redfish;

pub use ipmi::IpmiSim;
pub use model::{Faults, ServerSpec, SimServer};
pub use redfish::{RedfishSim, SessionCounts, SimOptions};
