//! `ironic lab`: a simulated rack on loopback.
//!
//! The simulated servers and their BMCs live in the `ironic-lab` crate
//! (re-exported here): [`model::SimServer`] with a BMC that speaks real Redfish
//! ([`redfish::RedfishSim`]) or IPMI v2.0 lanplus ([`ipmi::IpmiSim`]), and fault
//! injection (slow, flaky, wrong password, stuck). This module runs them together with
//! the service: [`service`] wires the API and conductor, [`enroll`] enrolls the rack,
//! [`run`] is the whole lab and [`cli`] the `ironic lab` command; [`conductors`]
//! runs its service as several conductors on one PostgreSQL database.

pub mod cli;
pub mod conductors;
pub mod enroll;
pub mod run;
pub mod service;
pub mod switch;

pub use ironic_lab::{
    Faults, IpmiSim, RedfishSim, ServerSpec, SimServer, images, ipmi, machine, model, rack, redfish,
};
