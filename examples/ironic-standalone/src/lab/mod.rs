//! `ironic lab`: a simulated rack on loopback.
//!
//! Simulated servers ([`model::SimServer`]) with BMCs that speak real Redfish
//! ([`redfish::RedfishSim`]) and fault injection (slow, flaky, wrong password, stuck).

pub mod model;
pub mod redfish;

pub use model::{Faults, ServerSpec, SimServer};
pub use redfish::RedfishSim;
