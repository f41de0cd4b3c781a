//! The conductor API's request and event types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::NodeId;
use crate::model::Node;
use crate::secret::Secret;
use crate::states::{PowerState, ProvisionState};

/// A provisioning request (`PUT /v1/nodes/{id}/states/provision`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProvisionRequest {
    /// API verb target: `active|deploy|rebuild|deleted|undeploy|manage|provide|inspect|clean|abort|adopt|rescue|unrescue|unhold|service`.
    pub target: String,
    /// Config drive: a gzipped, base64-encoded ISO string, or a dict
    /// `{meta_data, network_data, user_data, vendor_data}`. Stored in
    /// `instance_info.configdrive` for the deploy interface.
    #[serde(default)]
    pub configdrive: Option<Value>,
    /// Manual clean steps `[{interface, step, args}]` (required for `clean`).
    #[serde(default)]
    pub clean_steps: Option<Vec<Value>>,
    /// Deploy steps `[{interface, step, args, priority}]` (for `active`/`deploy`/`rebuild`).
    #[serde(default)]
    pub deploy_steps: Option<Vec<Value>>,
    /// Service steps `[{interface, step, args}]` (required for `service`).
    #[serde(default)]
    pub service_steps: Option<Vec<Value>>,
    /// Rescue password (required for `rescue`).
    #[serde(default)]
    pub rescue_password: Option<Secret>,
    /// Run manual clean/service steps without booting the ramdisk.
    #[serde(default)]
    pub disable_ramdisk: Option<bool>,
}

impl ProvisionRequest {
    /// A request with only a target.
    pub fn new(target: impl Into<String>) -> Self {
        ProvisionRequest {
            target: target.into(),
            ..Default::default()
        }
    }

    /// Set the config drive (a gzipped, base64-encoded ISO string, or a dict).
    pub fn with_configdrive(mut self, configdrive: Value) -> Self {
        self.configdrive = Some(configdrive);
        self
    }

    /// Set the manual clean steps.
    pub fn with_clean_steps(mut self, steps: Vec<Value>) -> Self {
        self.clean_steps = Some(steps);
        self
    }

    /// Set the deploy steps.
    pub fn with_deploy_steps(mut self, steps: Vec<Value>) -> Self {
        self.deploy_steps = Some(steps);
        self
    }

    /// Set the service steps.
    pub fn with_service_steps(mut self, steps: Vec<Value>) -> Self {
        self.service_steps = Some(steps);
        self
    }

    /// Set the rescue password.
    pub fn with_rescue_password(mut self, password: Secret) -> Self {
        self.rescue_password = Some(password);
        self
    }

    /// Run manual clean/service steps without booting the ramdisk (or not).
    pub fn with_disable_ramdisk(mut self, disable: bool) -> Self {
        self.disable_ramdisk = Some(disable);
        self
    }
}

/// Something that happened to a node, broadcast to [`subscribe`](super::Conductor::subscribe)rs.
///
/// Delivery is best effort: a subscriber that falls behind by more than the
/// channel's capacity (4096 events) gets `RecvError::Lagged` and should re-read the
/// nodes it cares about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeEvent {
    /// A node was created.
    Created {
        /// The node.
        node: NodeId,
    },
    /// A node's fields were changed through the API, or by its deploy
    /// interface while it waits (the agent's progress in `driver_internal_info`).
    Updated {
        /// The node.
        node: NodeId,
    },
    /// A node was deleted.
    Deleted {
        /// The node.
        node: NodeId,
    },
    /// The provision state changed.
    ProvisionStateChanged {
        /// The node.
        node: NodeId,
        /// Old state.
        from: ProvisionState,
        /// New state.
        to: ProvisionState,
        /// New target.
        target: Option<ProvisionState>,
        /// `last_error` after the change.
        last_error: Option<String>,
    },
    /// The recorded power state changed.
    PowerStateChanged {
        /// The node.
        node: NodeId,
        /// Old state.
        from: Option<PowerState>,
        /// New state.
        to: Option<PowerState>,
    },
    /// Maintenance was switched on or off.
    MaintenanceChanged {
        /// The node.
        node: NodeId,
        /// New flag.
        maintenance: bool,
        /// Reason.
        reason: Option<String>,
    },
}

impl NodeEvent {
    /// The node the event is about.
    pub fn node(&self) -> NodeId {
        match self {
            NodeEvent::Created { node }
            | NodeEvent::Updated { node }
            | NodeEvent::Deleted { node }
            | NodeEvent::ProvisionStateChanged { node, .. }
            | NodeEvent::PowerStateChanged { node, .. }
            | NodeEvent::MaintenanceChanged { node, .. } => *node,
        }
    }
}

/// One interface's line of `GET /v1/nodes/{id}/validate`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationResult {
    /// `true` valid, `false` invalid, `None` not supported by the driver.
    pub result: Option<bool>,
    /// Why not.
    pub reason: Option<String>,
}

/// What the agent gets back from lookup (and from `continue_inspection`).
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct LookupResult {
    /// The node.
    pub node: Node,
    /// The one-time agent token (43 URL-safe characters) the first time, `"******"`
    /// afterwards.
    pub agent_token: String,
}

impl std::fmt::Debug for LookupResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LookupResult")
            .field("node", &self.node.uuid)
            .field("agent_token", &crate::secret::MASK)
            .finish()
    }
}

/// A kind of record other than a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResourceKind {
    /// A chassis.
    Chassis,
    /// A deploy template.
    DeployTemplate,
    /// An allocation.
    Allocation,
    /// A volume connector.
    VolumeConnector,
    /// A volume target.
    VolumeTarget,
    /// A runbook.
    Runbook,
    /// An inspection rule.
    InspectionRule,
}

impl ResourceKind {
    /// The name in logs and events (`chassis`, `deploy_template`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Chassis => "chassis",
            ResourceKind::DeployTemplate => "deploy_template",
            ResourceKind::Allocation => "allocation",
            ResourceKind::VolumeConnector => "volume_connector",
            ResourceKind::VolumeTarget => "volume_target",
            ResourceKind::Runbook => "runbook",
            ResourceKind::InspectionRule => "inspection_rule",
        }
    }
}

/// What happened to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceAction {
    /// Created.
    Created,
    /// Changed.
    Updated,
    /// Deleted.
    Deleted,
}

impl ResourceAction {
    /// `created`, `updated` or `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceAction::Created => "created",
            ResourceAction::Updated => "updated",
            ResourceAction::Deleted => "deleted",
        }
    }
}

/// A change to a record other than a node, broadcast to
/// [`subscribe_resources`](super::Conductor::subscribe_resources)rs (best effort, as
/// [`NodeEvent`]s are). Changes to a node's volume connectors and targets are also
/// announced as [`NodeEvent::Updated`] of that node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceEvent {
    /// Which kind of record.
    pub kind: ResourceKind,
    /// Its UUID.
    pub uuid: uuid::Uuid,
    /// What happened.
    pub action: ResourceAction,
}
