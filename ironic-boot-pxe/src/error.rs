//! The crate's one error enum and its mapping to [`DriverError`] kinds.

use ironic_core::{DriverError, ErrorKind};

/// Everything that goes wrong in this crate, mapped to [`DriverError`] in one
/// place ([`From<PxeError> for DriverError`](DriverError)).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PxeError {
    /// A boot file path that would leave the boot root.
    #[error("refused boot file path {0:?}: absolute or climbing out of the boot root")]
    BadPath(String),
}

impl From<PxeError> for DriverError {
    fn from(e: PxeError) -> Self {
        let kind = match &e {
            PxeError::BadPath(_) => ErrorKind::InvalidParameter,
        };
        DriverError::new(kind, e.to_string())
    }
}
