use async_trait::async_trait;

use super::{BaseInterface, Task};
use crate::error::DriverError;

/// Boot-from-volume storage (Ironic's `StorageInterface`, optional).
#[async_trait]
pub trait StorageInterface: BaseInterface {
    /// Attach volumes.
    async fn attach_volumes(&self, task: &mut Task) -> Result<(), DriverError>;
    /// Detach volumes.
    async fn detach_volumes(&self, task: &mut Task) -> Result<(), DriverError>;
    /// Whether the deploy writes an image (false when booting from a volume).
    fn should_write_image(&self, task: &Task) -> bool;
}
