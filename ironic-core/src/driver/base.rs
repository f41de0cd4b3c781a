use std::fmt::Debug;

use async_trait::async_trait;

use super::{Step, StepDef, StepKind, StepOutcome, Task};
use crate::error::DriverError;

/// One `driver_info` (or `instance_info`) property an interface reads, as
/// `GET /v1/drivers/{name}/properties` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PropertyDoc {
    /// Key in `driver_info`.
    pub name: &'static str,
    /// Description for operators.
    pub description: &'static str,
    /// Whether validation fails without it.
    pub required: bool,
}

impl PropertyDoc {
    /// A required property.
    pub const fn required(name: &'static str, description: &'static str) -> Self {
        PropertyDoc {
            name,
            description,
            required: true,
        }
    }
    /// An optional property.
    pub const fn optional(name: &'static str, description: &'static str) -> Self {
        PropertyDoc {
            name,
            description,
            required: false,
        }
    }
}

/// What every interface has (Ironic's `BaseInterface`).
///
/// # Contract
/// * [`validate`](Self::validate) is synchronous, fast, and never contacts the BMC:
///   it parses `driver_info` and says which key is missing or wrong.
/// * [`get_steps`](Self::get_steps) lists the steps the interface offers for a kind;
///   the default returns the [`steps`](Self::steps) of that kind.
/// * [`execute_step`](Self::execute_step) runs one of them. Steps must be idempotent:
///   after a crash the conductor may run a step again.
///
/// # For driver authors
/// Implement `validate` and `properties`; list static steps in `steps` and dispatch
/// on `step.step` in `execute_step`. Return [`DriverError::unsupported`] for steps you
/// do not know.
#[async_trait]
pub trait BaseInterface: Send + Sync + Debug + 'static {
    /// The `driver_info` keys this interface reads.
    fn properties(&self) -> Vec<PropertyDoc> {
        Vec::new()
    }

    /// Check the node's configuration for this interface. Never does I/O.
    fn validate(&self, task: &Task) -> Result<(), DriverError>;

    /// Static step definitions (all kinds).
    fn steps(&self) -> Vec<StepDef> {
        Vec::new()
    }

    /// The steps offered for `kind` on this node. Override when steps come from
    /// elsewhere (the agent reports its own in-band steps).
    async fn get_steps(&self, task: &Task, kind: StepKind) -> Result<Vec<StepDef>, DriverError> {
        let _ = task;
        Ok(self
            .steps()
            .into_iter()
            .filter(|s| s.kind == kind)
            .collect())
    }

    /// Run one step.
    async fn execute_step(
        &self,
        task: &mut Task,
        kind: StepKind,
        step: &Step,
    ) -> Result<StepOutcome, DriverError> {
        let _ = task;
        Err(DriverError::unsupported(format!(
            "{} step {}.{} is not supported by this interface",
            kind, step.interface, step.step
        )))
    }
}
