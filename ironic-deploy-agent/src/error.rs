//! The crate's one error type, mapped to [`DriverError`] kinds in one place.

use ironic_core::{DriverError, ErrorKind};

/// What can go wrong in the agent, the image writer or the agent client.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A parameter from Ironic / the user is wrong or missing.
    #[error("{0}")]
    InvalidParams(String),
    /// The image could not be downloaded (after retries).
    #[error("Image download failed: {0}")]
    Download(String),
    /// The download ended before the announced length.
    #[error("Image download truncated: {0}")]
    Truncated(String),
    /// The image's checksum did not match.
    #[error("Image checksum mismatch: {0}")]
    Checksum(String),
    /// The image format is unsupported or the image is malformed.
    #[error("Invalid image: {0}")]
    ImageFormat(String),
    /// The target device is too small for the image.
    #[error("Device too small: {0}")]
    DiskTooSmall(String),
    /// No device matched the root device hints.
    #[error("No suitable root device: {0}")]
    NoRootDevice(String),
    /// Reading back the written data did not give what was written.
    #[error("Verification of the written image failed: {0}")]
    Verify(String),
    /// Local I/O on the target device.
    #[error("I/O error on {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The agent runs another command (HTTP 409).
    #[error("Agent is busy")]
    Busy,
    /// The agent refused the token (HTTP 401).
    #[error("Agent refused the token: {0}")]
    Unauthorized(String),
    /// The agent (or Ironic) could not be reached.
    #[error("Unreachable: {0}")]
    Unreachable(String),
    /// The peer answered something unexpected.
    #[error("Protocol error: {0}")]
    Protocol(String),
    /// A command failed on the agent.
    #[error("{0}")]
    CommandFailed(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl AgentError {
    /// An I/O error with context.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        AgentError::Io {
            what: what.into(),
            source,
        }
    }

    /// IPA's error class name for `command_error.type`.
    pub fn ipa_type(&self) -> &'static str {
        match self {
            AgentError::InvalidParams(_) => "InvalidCommandParamsError",
            AgentError::Download(_) | AgentError::Truncated(_) => "ImageDownloadError",
            AgentError::Checksum(_) => "ImageChecksumError",
            AgentError::ImageFormat(_) => "InvalidImage",
            AgentError::DiskTooSmall(_) | AgentError::Verify(_) | AgentError::Io { .. } => {
                "ImageWriteError"
            }
            AgentError::NoRootDevice(_) => "DeviceNotFound",
            AgentError::Busy => "AgentIsBusy",
            _ => "CommandExecutionError",
        }
    }

    /// IPA's HTTP-ish code for `command_error.code`.
    pub fn ipa_code(&self) -> u16 {
        match self {
            AgentError::InvalidParams(_) => 400,
            AgentError::Busy => 409,
            AgentError::NoRootDevice(_) => 404,
            _ => 500,
        }
    }
}

impl AgentError {
    /// The contract's error kind for this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AgentError::InvalidParams(_) => ErrorKind::InvalidParameter,
            AgentError::Busy => ErrorKind::Busy,
            AgentError::Unauthorized(_) => ErrorKind::Unauthenticated,
            AgentError::Unreachable(_) => ErrorKind::Unreachable,
            AgentError::Protocol(_) => ErrorKind::Protocol,
            AgentError::NoRootDevice(_) => ErrorKind::NotFound,
            _ => ErrorKind::Other,
        }
    }
}

impl From<AgentError> for DriverError {
    fn from(e: AgentError) -> Self {
        DriverError::new(e.kind(), e.to_string())
    }
}

/// Result with [`AgentError`].
pub type Result<T, E = AgentError> = std::result::Result<T, E>;
