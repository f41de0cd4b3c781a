use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{BaseInterface, Task};
use crate::error::DriverError;

/// Which ramdisk to boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RamdiskKind {
    /// The deploy ramdisk (deploy, clean, inspect, service): `deploy_kernel`/`deploy_ramdisk`.
    Deploy,
    /// The rescue ramdisk: `rescue_kernel`/`rescue_ramdisk`.
    Rescue,
}

/// What the conductor asks a boot interface to boot: which ramdisk, and the kernel
/// parameters the agent needs (`ipa-api-url`, ...). Boot interfaces add their own
/// (`BOOTIF=`, console) and render them into the boot configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RamdiskParams {
    /// Which ramdisk.
    pub kind: RamdiskKind,
    /// Kernel command line parameters, `key=value` (an empty value renders as a bare `key`).
    pub kernel_params: BTreeMap<String, String>,
}

impl RamdiskParams {
    /// Boot `kind` with no kernel parameters yet.
    pub fn new(kind: RamdiskKind) -> Self {
        RamdiskParams {
            kind,
            kernel_params: BTreeMap::new(),
        }
    }

    /// Add the kernel parameter `key=value` (an empty value renders as a bare `key`).
    pub fn with_param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.kernel_params.insert(key.into(), value.into());
        self
    }

    /// The parameters rendered as a kernel command line, in key order.
    pub fn command_line(&self) -> String {
        self.kernel_params
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Booting the node: the agent ramdisk, then the instance (Ironic's `BootInterface`, core).
///
/// # Contract
/// * `prepare_ramdisk` makes the node boot the ramdisk on its next boot (writes
///   network boot configuration, inserts virtual media, sets the boot device); it does
///   not power the node. It is idempotent.
/// * `clean_up_ramdisk` undoes it and tolerates there being nothing to undo.
/// * `prepare_instance` makes the node boot the deployed instance (local disk: remove
///   network boot config and set the boot device to disk); `clean_up_instance` undoes it.
///
/// # For driver authors
/// Check in `validate` that the kernel and ramdisk the node names
/// (`driver_info.deploy_kernel`/`deploy_ramdisk`) are usable, without downloading them.
#[async_trait]
pub trait BootInterface: BaseInterface {
    /// Capabilities (`ramdisk_boot`, ...).
    fn capabilities(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// Arrange for the next boot to load the ramdisk.
    async fn prepare_ramdisk(
        &self,
        task: &mut Task,
        params: &RamdiskParams,
    ) -> Result<(), DriverError>;

    /// Remove what `prepare_ramdisk` set up.
    async fn clean_up_ramdisk(&self, task: &mut Task) -> Result<(), DriverError>;

    /// Arrange for the next boot to load the instance.
    async fn prepare_instance(&self, task: &mut Task) -> Result<(), DriverError>;

    /// Remove what `prepare_instance` set up.
    async fn clean_up_instance(&self, task: &mut Task) -> Result<(), DriverError>;

    /// Check that the rescue ramdisk can be booted.
    fn validate_rescue(&self, task: &Task) -> Result<(), DriverError> {
        let _ = task;
        Err(DriverError::unsupported("validate_rescue"))
    }

    /// Check that in-band inspection can boot the ramdisk.
    fn validate_inspection(&self, task: &Task) -> Result<(), DriverError> {
        let _ = task;
        Err(DriverError::unsupported("validate_inspection"))
    }
}
