//! The driver's errors, and the one table that maps them onto the contract's kinds.

use ironic_core::{DriverError, ErrorKind};

/// What went wrong talking to OVSDB.
#[derive(Debug, thiserror::Error)]
pub enum OvsError {
    /// The settings are wrong.
    #[error("{0}")]
    Invalid(String),
    /// The database could not be reached.
    #[error("cannot connect to OVSDB at {endpoint}: {source}")]
    Connect {
        /// Where.
        endpoint: String,
        /// Why.
        source: std::io::Error,
    },
    /// The connection broke.
    #[error("the OVSDB connection to {0} closed")]
    Closed(String),
    /// No answer in time.
    #[error("{0}")]
    Timeout(String),
    /// ovsdb-server refused a request (JSON-RPC error).
    #[error("OVSDB refused the request: {0}")]
    Rpc(String),
    /// An operation of a transaction failed.
    #[error("OVSDB transaction failed: {error}{}", details.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Op {
        /// The OVSDB error name (`constraint violation`, ...).
        error: String,
        /// Its details.
        details: Option<String>,
    },
    /// Something the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the switch's state.
    #[error("{0}")]
    Conflict(String),
    /// The database answered something unexpected.
    #[error("unexpected OVSDB reply: {0}")]
    Protocol(String),
}

impl From<OvsError> for DriverError {
    fn from(e: OvsError) -> Self {
        let kind = match &e {
            OvsError::Invalid(_) => ErrorKind::InvalidParameter,
            OvsError::Connect { .. } | OvsError::Closed(_) => ErrorKind::Unreachable,
            OvsError::Timeout(_) => ErrorKind::Timeout,
            OvsError::Rpc(_) | OvsError::Protocol(_) => ErrorKind::Protocol,
            OvsError::Op { error, .. } => match error.as_str() {
                "constraint violation" | "domain error" | "range error" => {
                    ErrorKind::InvalidParameter
                }
                "referential integrity violation" | "duplicate uuid-name" => ErrorKind::Conflict,
                // a `wait` guard saw a concurrent change: try again
                "timed out" => ErrorKind::Busy,
                "not supported" | "permission error" => ErrorKind::Unsupported,
                _ => ErrorKind::Other,
            },
            OvsError::NotFound(_) => ErrorKind::NotFound,
            OvsError::Conflict(_) => ErrorKind::Conflict,
        };
        DriverError::new(kind, e.to_string())
    }
}
