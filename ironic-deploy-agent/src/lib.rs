#![doc = include_str!("../README.md")]

pub mod error;
pub mod image;

pub use error::AgentError;
pub mod httpd;
