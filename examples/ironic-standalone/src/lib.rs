//! The ironic-rs reference deployment: the `ironic` binary's library half.

pub mod lab;
