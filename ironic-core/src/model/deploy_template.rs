use serde::{Deserialize, Serialize};

use super::{JsonMap, Timestamp};
use crate::ids::DeployTemplateId;

/// One step of a deploy template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployTemplateStep {
    /// Interface (`bios`, `raid`, `deploy`, ...).
    pub interface: String,
    /// Step name.
    pub step: String,
    /// Arguments.
    #[serde(default)]
    pub args: JsonMap,
    /// Priority (0 disables).
    pub priority: u32,
}

/// Deploy steps applied when an instance asks for a trait (`/v1/deploy_templates`, 1.55).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployTemplate {
    /// UUID.
    pub uuid: DeployTemplateId,
    /// The trait name (`CUSTOM_*`), unique.
    pub name: String,
    /// Steps.
    pub steps: Vec<DeployTemplateStep>,
    /// Operator metadata.
    pub extra: JsonMap,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Option<Timestamp>,
}
