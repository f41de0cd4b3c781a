//! `ironic lab`: a simulated rack on loopback.
//!
//! Simulated servers ([`model::SimServer`]) with BMCs that speak real Redfish
//! ([`redfish::RedfishSim`]) or IPMI v2.0 lanplus
//! ([`ipmi::IpmiSim`]), and fault injection (slow, flaky, wrong password, stuck).

pub mod ipmi;
pub mod model;
pub mod redfish;

pub use ipmi::IpmiSim;
pub use model::{Faults, ServerSpec, SimServer};
pub use redfish::RedfishSim;
