//! The crate's one error enum and its mapping to [`DriverError`] kinds, in one place.
//!
//! Messages name the BMC (`address:port`) and the user, never the password.

use std::time::Duration;

use ironic_core::{DriverError, ErrorKind};

use crate::session::packet::rmcp_status_text;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A `driver_info` key is missing.
    #[error("Missing the following IPMI credentials in node's driver_info: {key}. {detail}")]
    MissingKey { key: &'static str, detail: String },
    /// A `driver_info` key has a bad value.
    #[error("Invalid value for driver_info[{key}]: {detail}")]
    InvalidKey { key: &'static str, detail: String },
    /// The BMC does not accept the credentials.
    #[error("IPMI authentication failed for user '{user}' on BMC {bmc}: {reason}")]
    AuthFailed {
        bmc: String,
        user: String,
        reason: String,
    },
    /// The BMC refuses the privilege level.
    #[error("BMC {bmc} refused privilege level {level} for user '{user}': {detail}")]
    Privilege {
        bmc: String,
        user: String,
        level: &'static str,
        detail: String,
    },
    /// The BMC refused the session with an RMCP+ status code.
    #[error(
        "BMC {bmc} refused the RMCP+ session for user '{user}' at {stage}: {} (RMCP+ status 0x{status:02x})",
        rmcp_status_text(*status)
    )]
    SessionRefused {
        bmc: String,
        user: String,
        stage: &'static str,
        status: u8,
    },
    /// The BMC does not support the cipher suite.
    #[error(
        "BMC {bmc} does not support IPMI cipher suite {suite} ({}); set driver_info[ipmi_cipher_suite] to one it supports",
        rmcp_status_text(*status)
    )]
    CipherSuite { bmc: String, suite: u8, status: u8 },
    /// No reply after every retransmission.
    #[error("no reply from BMC {bmc} to {what} after {attempts} attempt(s)")]
    Timeout {
        bmc: String,
        what: String,
        attempts: u32,
    },
    /// The whole operation ran past its bound (`ipmi_command_retry_timeout`).
    #[error("{what} on BMC {bmc} did not complete within {:.1}s{last}", .bound.as_secs_f64())]
    Deadline {
        bmc: String,
        what: String,
        bound: Duration,
        last: String,
    },
    /// The socket failed (connection refused, no route, ...).
    #[error("BMC {bmc} is unreachable: {source}")]
    Unreachable {
        bmc: String,
        #[source]
        source: std::io::Error,
    },
    /// Only malformed or unexpected packets came back.
    #[error("BMC {bmc} sent no valid reply to {what}; last packet rejected: {detail}")]
    BadReply {
        bmc: String,
        what: String,
        detail: String,
    },
    /// The BMC answered with a non-zero completion code.
    #[error("BMC {bmc} rejected {what}: {} (completion code 0x{code:02x})", completion_text(*code))]
    Completion {
        bmc: String,
        what: &'static str,
        code: u8,
    },
    /// A reply parsed but its content makes no sense.
    #[error("BMC {bmc} sent an unexpected answer to {what}: {detail}")]
    Unexpected {
        bmc: String,
        what: &'static str,
        detail: String,
    },
}

/// Text of an IPMI completion code (IPMI v2.0 table 5-2).
pub(crate) fn completion_text(code: u8) -> &'static str {
    use ipmi_rs_core::connection::CompletionErrorCode as C;
    match C::try_from(code) {
        Err(()) => "success",
        Ok(C::NodeBusy) => "node busy",
        Ok(C::InvalidCommand) => "invalid command",
        Ok(C::InvalidCommandForLun) => "invalid command for LUN",
        Ok(C::ProcessingTimeout) => "timeout while processing command",
        Ok(C::OutOfSpace) => "out of space",
        Ok(C::ReservationCancelledOrInvalidId) => "reservation cancelled or invalid",
        Ok(C::RequestDataTruncated) => "request data truncated",
        Ok(C::RequestDataLenInvalid) => "request data length invalid",
        Ok(C::RequestDataLengthLimitExceeded) => "request data field length limit exceeded",
        Ok(C::ParameterOutOfRange) => "parameter out of range",
        Ok(C::CannotReturnNumOfRequestedBytes) => "cannot return number of requested data bytes",
        Ok(C::RequestedDatapointNotPresent) => "requested sensor, data, or record not present",
        Ok(C::InvalidDataFieldInRequest) => "invalid data field in request",
        Ok(C::CommandIllegalForSensorOrRecord) => "command illegal for specified sensor or record",
        Ok(C::ResponseUnavailable { .. }) => match code {
            0xD0 => "SDR repository in update mode",
            0xD1 => "device in firmware update mode",
            0xD2 => "BMC initialization in progress",
            _ => "command response could not be provided",
        },
        Ok(C::CannotExecuteDuplicateRequest) => "cannot execute duplicated request",
        Ok(C::DestinationUnavailable) => "destination unavailable",
        Ok(C::InsufficientPrivilege) => "insufficient privilege level",
        Ok(C::CannotExecuteCommandInCurrentState) => "command not supported in present state",
        Ok(C::SubFunctionDisabled) => "command sub-function disabled or unavailable",
        Ok(C::Unspecified) => "unspecified error",
        Ok(C::Oem(_)) => "OEM-specific error",
        Ok(C::CommandSpecific(_)) => "command-specific error",
        Ok(C::Reserved(_)) => "reserved completion code",
    }
}

impl Error {
    /// The one table: kind and retryable flag of every error.
    pub(crate) fn classify(&self) -> (ErrorKind, bool) {
        match self {
            Error::MissingKey { .. } => (ErrorKind::MissingParameter, false),
            Error::InvalidKey { .. } | Error::CipherSuite { .. } => {
                (ErrorKind::InvalidParameter, false)
            }
            Error::AuthFailed { .. } | Error::Privilege { .. } => {
                (ErrorKind::Unauthenticated, false)
            }
            // out of session slots: another session may close soon
            Error::SessionRefused {
                status: 0x01 | 0x0B,
                ..
            } => (ErrorKind::Busy, true),
            // a lost RAKP message makes the BMC forget the half-open session
            Error::SessionRefused {
                status: 0x02 | 0x08,
                ..
            } => (ErrorKind::Protocol, true),
            Error::SessionRefused { .. } => (ErrorKind::Other, false),
            Error::Timeout { .. } | Error::Deadline { .. } => (ErrorKind::Timeout, true),
            Error::Unreachable { .. } => (ErrorKind::Unreachable, true),
            Error::BadReply { .. } => (ErrorKind::Protocol, true),
            Error::Unexpected { .. } => (ErrorKind::Protocol, false),
            Error::Completion { code, .. } => match code {
                // busy, timeout, response unavailable, duplicate request
                0xC0 | 0xC3 | 0xCE | 0xCF | 0xD0 | 0xD1 | 0xD2 => (ErrorKind::Busy, true),
                0xC5 => (ErrorKind::Conflict, true),
                0xC1 | 0xC2 | 0xD5 | 0xD6 => (ErrorKind::Unsupported, false),
                0xD4 => (ErrorKind::Unauthenticated, false),
                0xCB => (ErrorKind::NotFound, false),
                0xC7 | 0xC8 | 0xC9 | 0xCC => (ErrorKind::InvalidParameter, false),
                _ => (ErrorKind::Other, false),
            },
        }
    }

    /// Whether a retry may succeed.
    pub(crate) fn is_retryable(&self) -> bool {
        self.classify().1
    }
}

impl From<Error> for DriverError {
    fn from(e: Error) -> Self {
        let (kind, retryable) = e.classify();
        let message = e.to_string();
        let d = DriverError::new(kind, message).with_retryable(retryable);
        match e {
            Error::Unreachable { source, .. } => d.with_source(source),
            _ => d,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_failure_is_not_retryable_and_names_bmc_and_user() {
        let e: DriverError = Error::AuthFailed {
            bmc: "10.0.0.1:623".into(),
            user: "admin".into(),
            reason: "wrong password".into(),
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert!(!e.is_retryable());
        assert!(e.message().contains("10.0.0.1:623") && e.message().contains("admin"));
    }

    #[test]
    fn completion_codes_map_to_kinds() {
        let c = |code| Error::Completion {
            bmc: "b".into(),
            what: "x",
            code,
        };
        assert_eq!(c(0xC0).classify(), (ErrorKind::Busy, true));
        assert_eq!(c(0xC1).classify(), (ErrorKind::Unsupported, false));
        assert_eq!(c(0xD4).classify(), (ErrorKind::Unauthenticated, false));
        assert!(c(0xCC).to_string().contains("invalid data field"));
    }
}
