//! The Ironic-compatible v1 REST API.

pub mod error;
pub mod json;
pub mod patch;
pub mod query;
pub mod render;
pub mod version;
