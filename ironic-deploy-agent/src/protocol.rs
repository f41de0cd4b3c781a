//! The wire format of Ironic's agent protocol (`reference/ipa-protocol.md`),
//! shared by the agent and the conductor side.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The agent's version as it reports it (`agent_version`).
pub const AGENT_VERSION: &str = concat!("ironic-rs-agent ", env!("CARGO_PKG_VERSION"));

/// Hardware manager versions the agent reports with its steps; a mismatch makes
/// Ironic refresh the steps (`CLEAN_VERSION_MISMATCH`).
pub const HARDWARE_MANAGER: (&str, &str) = ("generic_hardware_manager", "1.2");

/// `command_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommandStatus {
    /// Still running (asynchronous commands).
    Running,
    /// Finished.
    Succeeded,
    /// Failed; see `command_error`.
    Failed,
    /// The steps were computed for another hardware manager version.
    CleanVersionMismatch,
}

/// One command's state (`CommandResult` in IPA).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandResult {
    /// UUID.
    pub id: String,
    /// The command name after the dot (`prepare_image`).
    pub command_name: String,
    /// Status.
    pub command_status: CommandStatus,
    /// `{type, code, message, details}` on failure.
    #[serde(default)]
    pub command_error: Option<Value>,
    /// The result.
    #[serde(default)]
    pub command_result: Option<Value>,
    /// How far a long command (an image write) got: an ironic-rs extension.
    /// IPA has no such field and Ironic reads the other fields by name, so it
    /// ignores this one; absent from the JSON when there is nothing to report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_progress: Option<CommandProgress>,
}

/// Progress of a long command (`command_progress`), as the agent measured it.
/// The conductor copies it into `driver_internal_info.agent_progress`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandProgress {
    /// What is being done: `writing image` (downloading and writing, which
    /// stream together), `verifying image` (reading the written bytes back).
    pub stage: String,
    /// Bytes done in this stage.
    pub done_bytes: u64,
    /// Bytes the stage has in all, when known (the image's `Content-Length`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
    /// `done_bytes / total_bytes` in percent, one decimal, when the total is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// Mean rate of this stage so far.
    pub bytes_per_second: u64,
    /// Seconds since this stage started.
    pub elapsed_seconds: f64,
    /// Seconds left at the mean rate, when the total is known and bytes moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u64>,
}

/// `POST /v1/commands/` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandRequest {
    /// `<extension>.<command>`.
    pub name: String,
    /// Parameters.
    #[serde(default)]
    pub params: serde_json::Map<String, Value>,
}

/// `GET /v1/commands/` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandList {
    /// Oldest first.
    pub commands: Vec<CommandResult>,
}

/// IPA's error body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// `Client` or `Server`.
    pub faultcode: String,
    /// Message.
    pub faultstring: String,
}

/// `POST /v1/heartbeat/{node}` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatBody {
    /// Where the agent listens.
    pub callback_url: String,
    /// The token from lookup.
    pub agent_token: String,
    /// Agent version.
    pub agent_version: String,
    /// PEM of the agent's self-signed certificate (auto-TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_verify_ca: Option<String>,
    /// `start`/`end`/`error` (not sent by this agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_status: Option<String>,
    /// With `agent_status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_status_message: Option<String>,
}

/// `GET /v1/lookup` response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LookupResponse {
    /// The node (restricted fields).
    pub node: Value,
    /// Agent configuration, including `agent_token` and `heartbeat_timeout`.
    pub config: Value,
}

impl CommandResult {
    /// A finished synchronous result: a string result is wrapped as
    /// `{"result": ...}`, as IPA's `SyncCommandResult` does.
    pub fn sync_ok(name: &str, result: Value) -> Self {
        let result = match result {
            Value::String(s) => serde_json::json!({ "result": s }),
            other => other,
        };
        CommandResult {
            id: crate::agent::entropy::uuid_v4().to_string(),
            command_name: name.to_owned(),
            command_status: CommandStatus::Succeeded,
            command_error: None,
            command_result: Some(result),
            command_progress: None,
        }
    }

    /// A running asynchronous command.
    pub fn running(name: &str) -> Self {
        CommandResult {
            id: crate::agent::entropy::uuid_v4().to_string(),
            command_name: name.to_owned(),
            command_status: CommandStatus::Running,
            command_error: None,
            command_result: None,
            command_progress: None,
        }
    }

    /// The error message of a failed command, however the agent shaped it.
    pub fn error_message(&self) -> String {
        match &self.command_error {
            None | Some(Value::Null) => "unknown error".to_owned(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => {
                let msg = v.get("message").and_then(Value::as_str);
                let details = v.get("details").and_then(Value::as_str);
                match (msg, details) {
                    (Some(m), Some(d)) if !d.is_empty() && d != m => format!("{m}: {d}"),
                    (Some(m), _) => m.to_owned(),
                    (None, Some(d)) => d.to_owned(),
                    _ => v.to_string(),
                }
            }
        }
    }
}

/// IPA's `command_error` body for an error.
pub fn error_body(kind: &str, code: u16, message: &str, details: &str) -> Value {
    serde_json::json!({"type": kind, "code": code, "message": message, "details": details})
}
