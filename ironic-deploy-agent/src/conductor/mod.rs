//! The conductor side of the agent deploy.

pub mod client;
pub mod deploy;

pub use client::AgentClient;
pub use deploy::{AgentConfig, AgentDeploy};
