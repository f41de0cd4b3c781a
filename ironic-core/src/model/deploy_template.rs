use serde::{Deserialize, Serialize};

use super::{JsonMap, Timestamp};
use crate::ids::DeployTemplateId;

/// One step of a deploy template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
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

impl DeployTemplateStep {
    /// A step of `interface` named `step`, with its arguments and priority.
    pub fn new(
        interface: impl Into<String>,
        step: impl Into<String>,
        args: JsonMap,
        priority: u32,
    ) -> Self {
        DeployTemplateStep {
            interface: interface.into(),
            step: step.into(),
            args,
            priority,
        }
    }
}

/// Deploy steps applied when an instance asks for a trait (`/v1/deploy_templates`, 1.55).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
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

impl DeployTemplate {
    /// A new template for the trait `name` with `steps`.
    pub fn new(name: impl Into<String>, steps: Vec<DeployTemplateStep>) -> Self {
        DeployTemplate {
            uuid: DeployTemplateId::new(),
            name: name.into(),
            steps,
            extra: JsonMap::new(),
            created_at: super::now(),
            updated_at: None,
        }
    }
}
