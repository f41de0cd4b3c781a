use serde::{Deserialize, Serialize};

use super::{JsonMap, Timestamp};
use crate::ids::{AllocationId, NodeId};

/// State of an allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllocationState {
    /// Looking for a node.
    Allocating,
    /// A node is reserved.
    Active,
    /// No node matched.
    Error,
}

/// A request for a node matching a resource class and traits (`/v1/allocations`, 1.52).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    /// UUID.
    pub uuid: AllocationId,
    /// Unique name.
    pub name: Option<String>,
    /// State.
    pub state: AllocationState,
    /// The node picked.
    pub node_uuid: Option<NodeId>,
    /// Required resource class.
    pub resource_class: Option<String>,
    /// Required traits.
    pub traits: Vec<String>,
    /// Nodes to choose from (names or UUIDs; empty = any).
    pub candidate_nodes: Vec<String>,
    /// Why it failed.
    pub last_error: Option<String>,
    /// Owner project.
    pub owner: Option<String>,
    /// Operator metadata.
    pub extra: JsonMap,
    /// Conductor affinity.
    pub conductor_affinity: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Option<Timestamp>,
}
