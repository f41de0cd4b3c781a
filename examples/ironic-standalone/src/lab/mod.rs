//! `ironic lab`: a simulated rack on loopback.
//!
//! Simulated servers ([`model::SimServer`]) with BMCs that speak real Redfish
//! ([`redfish::RedfishSim`]) or IPMI v2.0 lanplus
//! ([`ipmi::IpmiSim`]), and fault injection (slow, flaky, wrong password, stuck).

pub mod cli;
pub mod enroll;
pub mod images;
pub mod ipmi;
pub mod machine;
pub mod model;
pub mod rack;
pub mod redfish;
pub mod run;
pub mod service;

pub use ipmi::IpmiSim;
pub use model::{Faults, ServerSpec, SimServer};
pub use redfish::RedfishSim;
