//! Errors: [`DriverError`] at the driver contract, [`Error`] from the conductor.

use std::fmt;

/// What went wrong, independent of the driver. `#[non_exhaustive]`: match with a
/// wildcard arm.
///
/// # Retryable or not
/// [`DriverError::new`] marks an error retryable by its kind
/// ([`default_retryable`](Self::default_retryable)); a driver overrides it with
/// [`DriverError::with_retryable`] where it knows better:
///
/// | kind | retryable by default | typical cause |
/// |---|---|---|
/// | `Unreachable` | yes | no route, connection refused, no answer |
/// | `Timeout` | yes | a request to the BMC or agent got no answer in time |
/// | `Busy` | yes | the BMC or agent is busy (HTTP 409/503, IPMI node busy) |
/// | `InvalidParameter`, `MissingParameter` | no | bad `driver_info` or arguments |
/// | `Unsupported` | no | the hardware or driver cannot do it |
/// | `Unauthenticated` | no | wrong credentials |
/// | `NotFound`, `Conflict`, `Protocol`, `Other` | no | |
///
/// One exception is part of the contract: a power action (`set_power_state`,
/// `reboot`) that does not reach its state within its timeout fails with a
/// `Timeout` that is **not** retryable (see
/// [`PowerInterface`](crate::driver::PowerInterface)); the conductor never re-sends
/// a power action in any case, and retries only reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A parameter has a value that is not allowed (`InvalidParameterValue`).
    InvalidParameter,
    /// A required parameter is missing (`MissingParameterValue`).
    MissingParameter,
    /// The driver does not support this operation (`UnsupportedDriverExtension`).
    Unsupported,
    /// The BMC/agent refused the credentials.
    Unauthenticated,
    /// The BMC/agent could not be reached.
    Unreachable,
    /// The operation did not finish in time.
    Timeout,
    /// The peer is busy (e.g. the agent runs another command); try later.
    Busy,
    /// Something the operation needs does not exist.
    NotFound,
    /// The operation conflicts with the current state.
    Conflict,
    /// The peer answered something that could not be parsed.
    Protocol,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Whether errors of this kind are worth retrying by default.
    pub const fn default_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Unreachable | ErrorKind::Timeout | ErrorKind::Busy
        )
    }

    /// A short name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidParameter => "invalid parameter",
            ErrorKind::MissingParameter => "missing parameter",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Busy => "busy",
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::Other => "error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one error type at the driver contract.
///
/// Its message is what lands in the node's `last_error`, so write it for an operator:
/// name the BMC address, the user, the key in `driver_info`; never a password or token.
pub struct DriverError {
    kind: ErrorKind,
    message: String,
    retryable: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl DriverError {
    /// A new error; retryable per [`ErrorKind::default_retryable`].
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retryable: kind.default_retryable(),
            source: None,
        }
    }
    /// `InvalidParameter`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParameter, message)
    }
    /// `MissingParameter`.
    pub fn missing(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::MissingParameter, message)
    }
    /// `Unsupported`, naming the interface and operation.
    pub fn unsupported(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, what)
    }
    /// `Other`.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Other, message)
    }
    /// Override the retryable flag.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }
    /// This error as the failure of a power action (`set_power_state`, `reboot`): a
    /// [`ErrorKind::Timeout`] becomes non-retryable, as the power contract wants
    /// (the BMC may have acted on the command; the caller's time is spent). Other
    /// errors are unchanged. Drivers apply it to what their power actions return.
    pub fn into_action_error(self) -> Self {
        if self.kind == ErrorKind::Timeout {
            self.with_retryable(false)
        } else {
            self
        }
    }
    /// Chain a source error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// Whether retrying the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
    /// The message (without the kind).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("DriverError");
        d.field("kind", &self.kind)
            .field("message", &self.message)
            .field("retryable", &self.retryable);
        if let Some(s) = &self.source {
            d.field("source", &s.to_string());
        }
        d.finish()
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// What the conductor's public API returns. Each variant maps to one HTTP status
/// in the REST layer (noted on each).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 404: no such resource.
    #[error("{kind} {ident} could not be found.")]
    NotFound {
        /// "Node", "Port", ...
        kind: &'static str,
        /// What was asked for.
        ident: String,
    },
    /// 409: the node is reserved by another operation.
    #[error(
        "Node {node} is locked by host {holder}, please retry after the current operation is completed."
    )]
    NodeLocked {
        /// The node.
        node: String,
        /// The host holding the reservation.
        holder: String,
    },
    /// 409: a unique value is taken, or the operation conflicts with the resource's state.
    #[error("{0}")]
    Conflict(String),
    /// 400: the provision state does not allow this event.
    #[error(
        "The requested action \"{action}\" can not be performed on node \"{node}\" while it is in state \"{state}\"."
    )]
    InvalidState {
        /// The verb or event.
        action: String,
        /// The node.
        node: String,
        /// Its current provision state.
        state: String,
    },
    /// 400: bad input.
    #[error("{0}")]
    Invalid(String),
    /// 400: the node is in maintenance and the action is refused.
    #[error("The node {0} is in maintenance mode.")]
    InMaintenance(String),
    /// 403: the node is `protected`: it cannot be undeployed, rebuilt or
    /// deleted until that is unset (Ironic's `NodeProtected`).
    #[error("Node {0} is protected and cannot be undeployed, rebuilt or deleted")]
    Protected(String),
    /// 400 (driver validation) / 500: a driver call failed.
    #[error("{0}")]
    Driver(#[from] DriverError),
    /// 503: no free worker to run the operation.
    #[error("Unable to process request: no free conductor workers available; please retry later.")]
    NoFreeWorker,
    /// 503: the conductor is shutting down.
    #[error("The conductor is shutting down.")]
    ShuttingDown,
    /// 500: the store failed.
    #[error("database error: {0}")]
    Store(String),
}

impl Error {
    /// A `NotFound` for a node.
    pub fn node_not_found(ident: impl fmt::Display) -> Self {
        Error::NotFound {
            kind: "Node",
            ident: ident.to_string(),
        }
    }
}

/// Result alias for the conductor API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_follows_kind_and_can_be_overridden() {
        assert!(DriverError::new(ErrorKind::Timeout, "t").is_retryable());
        assert!(!DriverError::new(ErrorKind::Unauthenticated, "a").is_retryable());
        assert!(
            !DriverError::new(ErrorKind::Timeout, "t")
                .with_retryable(false)
                .is_retryable()
        );
    }

    #[test]
    fn an_action_timeout_is_final() {
        let e = DriverError::new(ErrorKind::Timeout, "t").into_action_error();
        assert!(!e.is_retryable());
        let e = DriverError::new(ErrorKind::Busy, "b").into_action_error();
        assert!(e.is_retryable());
    }

    #[test]
    fn source_is_chained() {
        let io = std::io::Error::other("boom");
        let e = DriverError::other("failed").with_source(io);
        assert_eq!(std::error::Error::source(&e).unwrap().to_string(), "boom");
    }
}
