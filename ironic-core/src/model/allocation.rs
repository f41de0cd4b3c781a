use serde::{Deserialize, Serialize};

use super::{JsonMap, Timestamp};
use crate::ids::{AllocationId, NodeId};

/// State of an allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
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
#[non_exhaustive]
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

impl Allocation {
    /// A new allocation in state `allocating`, asking for nothing yet.
    pub fn new() -> Self {
        Allocation {
            uuid: AllocationId::new(),
            name: None,
            state: AllocationState::Allocating,
            node_uuid: None,
            resource_class: None,
            traits: Vec::new(),
            candidate_nodes: Vec::new(),
            last_error: None,
            owner: None,
            extra: JsonMap::new(),
            conductor_affinity: None,
            created_at: super::now(),
            updated_at: None,
        }
    }
}

impl Default for Allocation {
    fn default() -> Self {
        Self::new()
    }
}
