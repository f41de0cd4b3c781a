use serde::{Deserialize, Serialize};

use super::{JsonMap, Timestamp};
use crate::ids::RunbookId;

/// One step of a runbook: run `step` of `interface` with `args`, in `order`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunbookStep {
    /// Interface (`bios`, `deploy`, `management`, `raid`, ...).
    pub interface: String,
    /// Step name.
    pub step: String,
    /// Arguments.
    #[serde(default)]
    pub args: JsonMap,
    /// Position in the runbook (steps run in ascending order).
    pub order: u32,
}

/// A named, reusable list of manual clean or service steps (`/v1/runbooks`, 1.92).
///
/// The name is a trait (`CUSTOM_*`): before API 1.112 a node may run a runbook only
/// when it has that trait; from 1.112 when it has one of the runbook's `traits`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Runbook {
    /// UUID.
    pub uuid: RunbookId,
    /// Unique name (a trait name).
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Steps.
    pub steps: Vec<RunbookStep>,
    /// Run the steps without booting the ramdisk.
    pub disable_ramdisk: bool,
    /// Usable by every project.
    pub public: bool,
    /// Owner project (`None`: the administrators').
    pub owner: Option<String>,
    /// Node traits that approve this runbook (1.112).
    #[serde(default)]
    pub traits: Vec<String>,
    /// Operator metadata.
    pub extra: JsonMap,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Option<Timestamp>,
}

impl Runbook {
    /// A new runbook.
    pub fn new(name: impl Into<String>, steps: Vec<RunbookStep>) -> Self {
        Runbook {
            uuid: RunbookId::new(),
            name: name.into(),
            description: None,
            steps,
            disable_ramdisk: false,
            public: false,
            owner: None,
            traits: Vec::new(),
            extra: JsonMap::new(),
            created_at: super::now(),
            updated_at: None,
        }
    }

    /// The steps in the order they run (by `order`, ties kept as written), as
    /// `{interface, step, args}` objects for a clean or service request.
    pub fn ordered_steps(&self) -> Vec<serde_json::Value> {
        let mut steps: Vec<&RunbookStep> = self.steps.iter().collect();
        steps.sort_by_key(|s| s.order);
        steps
            .into_iter()
            .map(|s| {
                serde_json::json!({
                    "interface": s.interface,
                    "step": s.step,
                    "args": s.args,
                })
            })
            .collect()
    }
}
