//! The crate's one error enum and the one table that maps it (and HTTP status
//! codes) to [`DriverError`] kinds.
//!
//! Messages are written for an operator reading `last_error`: they name the BMC
//! address, the user, the resource and the `driver_info` key to change, never a
//! password or a session token.

use ironic_core::{DriverError, ErrorKind};

/// Everything that can go wrong talking Redfish. Private to the crate; it leaves
/// as a [`DriverError`] through [`From`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum RedfishError {
    /// `driver_info` is missing a key.
    #[error("{0}")]
    MissingParameter(String),
    /// `driver_info` has a bad value.
    #[error("{0}")]
    InvalidParameter(String),
    /// The BMC answered with an HTTP error status.
    #[error("Redfish {method} {url} failed with HTTP {status}{}", fmt_detail(.detail))]
    Http {
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
    /// The BMC refused the credentials.
    #[error(
        "The Redfish BMC at {address} refused the credentials of user {user:?} (HTTP {status}{}); check redfish_username and redfish_password",
        fmt_detail(.detail)
    )]
    Unauthorized {
        address: String,
        user: String,
        status: u16,
        detail: String,
    },
    /// The BMC's TLS certificate did not verify.
    #[error(
        "The TLS certificate of the Redfish BMC at {address} could not be verified ({detail}). Set driver_info redfish_verify_ca to the path of a CA bundle (PEM) that holds the BMC's CA or its self-signed certificate, to its fingerprint as \"sha256:<hex>\", or to false to skip verification"
    )]
    Tls { address: String, detail: String },
    /// The BMC could not be reached (connection refused, reset, DNS).
    #[error("Could not connect to the Redfish BMC at {address}: {detail}")]
    Connect { address: String, detail: String },
    /// A request did not finish in time.
    #[error("Redfish {method} {url} timed out after {secs}s")]
    RequestTimeout {
        method: String,
        url: String,
        secs: u64,
    },
    /// A body that could not be understood.
    #[error("The Redfish BMC at {url} sent a reply that could not be parsed: {detail}")]
    Parse { url: String, detail: String },
    /// The BMC lacks something the operation needs.
    #[error("{0}")]
    Unsupported(String),
    /// Something the operation needs does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A BMC task ended in failure.
    #[error("Redfish task {task} ended in state {state}{}", fmt_detail(.detail))]
    TaskFailed {
        task: String,
        state: String,
        detail: String,
    },
    /// Waiting for something took too long.
    #[error("{0}")]
    Timeout(String),
    /// Every Redfish session this process may hold at the BMC is in use.
    #[error("{0}")]
    Busy(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

fn fmt_detail(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// The one table: HTTP status → (kind, retryable). Retryable means "the same
/// call may succeed later"; the client itself retries only 5xx (except 501) and
/// connection errors.
pub(crate) fn status_kind(status: u16) -> (ErrorKind, bool) {
    match status {
        400 | 422 => (ErrorKind::InvalidParameter, false),
        401 | 403 => (ErrorKind::Unauthenticated, false),
        404 | 410 => (ErrorKind::NotFound, false),
        405 | 501 => (ErrorKind::Unsupported, false),
        408 | 504 => (ErrorKind::Timeout, true),
        409 | 412 | 428 => (ErrorKind::Conflict, false),
        429 | 503 => (ErrorKind::Busy, true),
        500 | 502 => (ErrorKind::Unreachable, true),
        400..=499 => (ErrorKind::InvalidParameter, false),
        _ => (ErrorKind::Other, false),
    }
}

/// Whether the client retries a request that got this status.
pub(crate) fn status_is_retried(status: u16) -> bool {
    matches!(status, 500 | 502 | 503 | 504)
}

impl RedfishError {
    /// The kind and retryable flag of this error (the mapping table).
    pub(crate) fn classify(&self) -> (ErrorKind, bool) {
        match self {
            RedfishError::MissingParameter(_) => (ErrorKind::MissingParameter, false),
            RedfishError::InvalidParameter(_) => (ErrorKind::InvalidParameter, false),
            RedfishError::Http { status, .. } => status_kind(*status),
            RedfishError::Unauthorized { .. } => (ErrorKind::Unauthenticated, false),
            RedfishError::Tls { .. } => (ErrorKind::InvalidParameter, false),
            RedfishError::Connect { .. } => (ErrorKind::Unreachable, true),
            RedfishError::RequestTimeout { .. } => (ErrorKind::Timeout, true),
            RedfishError::Parse { .. } => (ErrorKind::Protocol, false),
            RedfishError::Unsupported(_) => (ErrorKind::Unsupported, false),
            RedfishError::NotFound(_) => (ErrorKind::NotFound, false),
            RedfishError::TaskFailed { .. } => (ErrorKind::Other, false),
            RedfishError::Timeout(_) => (ErrorKind::Timeout, true),
            RedfishError::Busy(_) => (ErrorKind::Busy, true),
            RedfishError::Other(_) => (ErrorKind::Other, false),
        }
    }

    /// The HTTP status, when the BMC answered with one.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            RedfishError::Http { status, .. } | RedfishError::Unauthorized { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

impl From<RedfishError> for DriverError {
    fn from(e: RedfishError) -> Self {
        let (kind, retryable) = e.classify();
        DriverError::new(kind, e.to_string()).with_retryable(retryable)
    }
}

/// Result alias inside the crate.
pub(crate) type Result<T, E = RedfishError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_the_statuses_bmcs_send() {
        assert_eq!(status_kind(401), (ErrorKind::Unauthenticated, false));
        assert_eq!(status_kind(404).0, ErrorKind::NotFound);
        assert_eq!(status_kind(501), (ErrorKind::Unsupported, false));
        assert_eq!(status_kind(503), (ErrorKind::Busy, true));
        assert_eq!(status_kind(500), (ErrorKind::Unreachable, true));
        assert_eq!(status_kind(418).0, ErrorKind::InvalidParameter);
        assert!(status_is_retried(503) && status_is_retried(500));
        assert!(!status_is_retried(501) && !status_is_retried(400));
    }

    #[test]
    fn unauthorized_is_clear_and_not_retryable() {
        let e: DriverError = RedfishError::Unauthorized {
            address: "https://10.0.0.1".into(),
            user: "admin".into(),
            status: 401,
            detail: String::new(),
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert!(!e.is_retryable());
        assert!(e.message().contains("redfish_password"), "{e}");
    }

    #[test]
    fn tls_error_names_the_option() {
        let e: DriverError = RedfishError::Tls {
            address: "https://10.0.0.1".into(),
            detail: "unknown issuer".into(),
        }
        .into();
        assert!(e.message().contains("redfish_verify_ca"));
        assert!(!e.is_retryable());
    }
}
