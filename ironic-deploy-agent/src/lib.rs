#![doc = include_str!("../README.md")]

pub mod error;
pub mod image;

pub use error::AgentError;
pub mod agent;
pub mod conductor;
pub mod httpd;
pub mod protocol;

pub use conductor::{AgentClient, AgentConfig, AgentDeploy};

/// The hardware-independent name of this crate's deploy interface.
pub const NAME: &str = AgentDeploy::NAME;

/// Register the `direct` deploy interface.
pub fn register(reg: &mut ironic_core::InterfaceRegistry, cfg: AgentConfig) {
    reg.register_deploy(
        AgentDeploy::NAME,
        std::sync::Arc::new(AgentDeploy::new(cfg)),
    );
}
