use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::ids::{HistoryId, NodeId};

/// Severity of a history event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum Severity {
    /// Informational.
    Info,
    /// Warning.
    Warning,
    /// Error.
    Error,
}

/// An entry of a node's history (`/v1/nodes/{id}/history`, 1.78).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HistoryEvent {
    /// UUID.
    pub uuid: HistoryId,
    /// The node.
    pub node_uuid: NodeId,
    /// What happened (usually an error message).
    pub event: String,
    /// Kind (`provisioning`, `power`, `maintenance`, `deployment`, `cleaning`, ...).
    pub event_type: String,
    /// Severity.
    pub severity: Severity,
    /// User (project) that caused it, if known.
    pub user: Option<String>,
    /// Conductor host.
    pub conductor: Option<String>,
    /// Project that caused it, if known (API 1.113).
    #[serde(default)]
    pub project: Option<String>,
    /// Provision state at the time (`state` in the API, 1.115).
    pub provision_state: Option<String>,
    /// Target provision state at the time (API 1.115).
    #[serde(default)]
    pub target_provision_state: Option<String>,
    /// Seconds the node had spent in its provision state when the event was
    /// recorded (`now - provision_updated_at`, API 1.115).
    #[serde(default)]
    pub duration_seconds: Option<i64>,
    /// Created.
    pub created_at: Timestamp,
}

impl HistoryEvent {
    /// A new entry about `node`, dated now.
    pub fn new(
        node_uuid: NodeId,
        event_type: impl Into<String>,
        severity: Severity,
        event: impl Into<String>,
    ) -> Self {
        HistoryEvent {
            uuid: HistoryId::new(),
            node_uuid,
            event: event.into(),
            event_type: event_type.into(),
            severity,
            user: None,
            conductor: None,
            project: None,
            provision_state: None,
            target_provision_state: None,
            duration_seconds: None,
            created_at: super::now(),
        }
    }
}
