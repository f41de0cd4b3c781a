//! The crate's one error enum and its mapping to [`DriverError`] kinds.

use ironic_core::{DriverError, ErrorKind};

/// Everything that goes wrong in this crate; mapped to [`DriverError`] in one
/// place (the `From` impl below).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PxeError {
    /// A boot file path that would leave the boot root.
    #[error("refused boot file path {0:?}: absolute or climbing out of the boot root")]
    BadPath(String),
    /// A required key is missing.
    #[error("{what}.{key} is missing: it must name the image to boot")]
    Missing {
        /// `driver_info` or `instance_info`.
        what: &'static str,
        /// The key.
        key: &'static str,
    },
    /// A key has a bad value.
    #[error("{key} has an invalid value: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A kernel/ramdisk file cannot be read.
    #[error("{key} {path:?} is not readable: {reason}")]
    Unreadable {
        /// The key naming it.
        key: &'static str,
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The node has no port to boot from.
    #[error(
        "node {0} has no PXE-enabled port: add a port with its MAC address (pxe_enabled=true) to network-boot it"
    )]
    NoPxePort(String),
    /// No address left for a port.
    #[error("no provisioning address for {mac}: {reason}")]
    NoAddress {
        /// The port's MAC.
        mac: String,
        /// Why.
        reason: String,
    },
}

impl From<PxeError> for DriverError {
    fn from(e: PxeError) -> Self {
        let kind = match &e {
            PxeError::BadPath(_) | PxeError::Invalid { .. } | PxeError::Unreadable { .. } => {
                ErrorKind::InvalidParameter
            }
            PxeError::Missing { .. } | PxeError::NoPxePort(_) => ErrorKind::MissingParameter,
            PxeError::NoAddress { .. } => ErrorKind::Conflict,
        };
        DriverError::new(kind, e.to_string())
    }
}
