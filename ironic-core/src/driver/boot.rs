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

/// Builds and publishes the bootable ISO a virtual media boot interface inserts
/// for one node (Ironic's `image_utils.prepare_deploy_iso`): the node's deploy or
/// rescue kernel and ramdisk with its own kernel command line (`ipa-api-url`,
/// `BOOTIF`, the console, ...) in the ISO's boot loader configuration, served
/// over HTTP for the BMC to download.
///
/// The program that runs the conductor gives one to the boot interfaces that use
/// virtual media (e.g. `ironic_drivers_redfish::register_with_boot_iso`); without
/// one they insert the prebuilt ISO `driver_info` names, as is.
///
/// # Contract
/// * `validate` checks, without building anything, that `prepare` can build an
///   ISO for the node (its kernel and ramdisk are known and readable, the ISO
///   can be served); the error says what is missing.
/// * `prepare` builds the node's ISO for `params.kind` with `params` on its
///   kernel command line, replacing an older ISO of the node, and returns the
///   URL the BMC downloads it from. It is idempotent.
/// * `clean_up` removes the node's ISO; nothing to remove is fine.
/// * Secrets (`ipa-agent-token`) never go into an ISO: whoever can download it
///   could read them.
#[async_trait]
pub trait BootIsoBuilder: Send + Sync + std::fmt::Debug {
    /// Check that an ISO of the `kind` ramdisk can be built for the node.
    fn validate(&self, task: &Task, kind: RamdiskKind) -> Result<(), DriverError>;

    /// Build (or rebuild) the node's ISO and return its URL.
    async fn prepare(&self, task: &Task, params: &RamdiskParams) -> Result<String, DriverError>;

    /// Remove the node's ISO.
    async fn clean_up(&self, task: &Task) -> Result<(), DriverError>;
}
