//! The model: nodes, ports, port groups, chassis, conductors, allocations, deploy
//! templates, volume connectors and targets, runbooks and node history, with
//! Ironic's field names and JSON shapes.
//!
//! These are the stored records. The REST layer renders them (masking secrets,
//! hiding fields newer than the requested microversion); the conductor changes them.

mod allocation;
mod chassis;
mod conductor;
mod deploy_template;
mod history;
mod inspection_rule;
mod node;
mod port;
mod runbook;
mod volume;

pub use allocation::{Allocation, AllocationState};
pub use chassis::Chassis;
pub use conductor::ConductorRecord;
pub use deploy_template::{DeployTemplate, DeployTemplateStep};
pub use history::{HistoryEvent, Severity};
pub use inspection_rule::InspectionRule;
pub use node::{Fault, InterfaceType, Node, NodeInterfaces};
pub use port::{Port, Portgroup};
pub use runbook::{Runbook, RunbookStep};
pub use volume::{VolumeConnector, VolumeTarget};

/// A free-form JSON object (`extra`, `properties`, `instance_info`, ...).
pub type JsonMap = serde_json::Map<String, serde_json::Value>;

/// A timestamp (UTC).
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Now, in UTC.
pub fn now() -> Timestamp {
    chrono::Utc::now()
}

/// Validate a trait name as Ironic does: a standard os-traits name (upper case,
/// digits, `_`) or `CUSTOM_` prefixed, at most 255 characters.
pub fn validate_trait(t: &str) -> Result<(), String> {
    if t.is_empty() || t.len() > 255 {
        return Err(format!("Invalid trait {t:?}: must be 1 to 255 characters"));
    }
    if !t
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(format!(
            "Invalid trait {t:?}: a trait must be a standard trait or start with CUSTOM_ and contain only A-Z, 0-9 and _"
        ));
    }
    Ok(())
}
