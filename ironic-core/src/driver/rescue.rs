use async_trait::async_trait;

use super::{BaseInterface, StepOutcome, Task};
use crate::error::DriverError;

/// Rescue mode (Ironic's `RescueInterface`, optional). The rescue password is in
/// `instance_info.rescue_password`.
#[async_trait]
pub trait RescueInterface: BaseInterface {
    /// Boot the rescue ramdisk: [`StepOutcome::Wait`] when it will call back.
    async fn rescue(&self, task: &mut Task) -> Result<StepOutcome, DriverError>;
    /// Return to the instance.
    async fn unrescue(&self, task: &mut Task) -> Result<(), DriverError>;
    /// Clean up after a failed or aborted rescue.
    async fn clean_up(&self, task: &mut Task) -> Result<(), DriverError> {
        let _ = task;
        Ok(())
    }
}
