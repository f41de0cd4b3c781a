//! The conductor side of the agent deploy.

pub mod client;
pub mod deploy;
pub mod inspect;
pub mod raid;
pub mod rescue;

pub use client::AgentClient;
pub use deploy::{AgentConfig, AgentDeploy, EraseConfig};
pub use inspect::{AddPorts, AgentInspect, AgentInspectConfig};
pub use raid::AgentRaid;
pub use rescue::AgentRescue;
