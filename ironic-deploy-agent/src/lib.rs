#![doc = include_str!("../README.md")]

pub mod error;
pub mod image;

pub use error::AgentError;
pub mod agent;
pub mod conductor;
pub mod httpd;
pub mod progress;
pub mod protocol;

pub use conductor::{
    AgentClient, AgentConfig, AgentDeploy, AgentInspect, AgentInspectConfig, AgentRaid, EraseConfig,
};

/// The hardware-independent name of this crate's deploy interface.
pub const NAME: &str = AgentDeploy::NAME;

/// Register the `direct` deploy interface, the `agent` inspect interface
/// (with [`AgentInspectConfig::default`]) and the `agent` RAID interface.
pub fn register(reg: &mut ironic_core::InterfaceRegistry, cfg: AgentConfig) {
    register_with(reg, cfg, AgentInspectConfig::default());
}

/// Register the `direct` deploy interface, the `agent` inspect and rescue
/// interfaces and the `agent` (software) RAID interface.
pub fn register_with(
    reg: &mut ironic_core::InterfaceRegistry,
    cfg: AgentConfig,
    inspect: AgentInspectConfig,
) {
    reg.register_raid(
        AgentRaid::NAME,
        std::sync::Arc::new(AgentRaid::new(
            cfg.clone(),
            conductor::raid::AgentRaidConfig::default(),
        )),
    )
    .register_rescue(
        conductor::AgentRescue::NAME,
        std::sync::Arc::new(conductor::AgentRescue::new(cfg.clone())),
    )
    .register_deploy(
        AgentDeploy::NAME,
        std::sync::Arc::new(AgentDeploy::new(cfg)),
    )
    .register_inspect(
        AgentInspect::NAME,
        std::sync::Arc::new(AgentInspect::new(inspect)),
    );
}
