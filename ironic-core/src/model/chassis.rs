use serde::{Deserialize, Serialize};

use super::{JsonMap, Timestamp};
use crate::ids::ChassisId;

/// A chassis: a grouping of nodes (`/v1/chassis`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Chassis {
    /// UUID.
    pub uuid: ChassisId,
    /// Free text.
    pub description: Option<String>,
    /// Operator metadata.
    pub extra: JsonMap,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Option<Timestamp>,
}

impl Chassis {
    /// A new chassis.
    pub fn new() -> Self {
        Chassis {
            uuid: ChassisId::new(),
            description: None,
            extra: JsonMap::new(),
            created_at: super::now(),
            updated_at: None,
        }
    }
}

impl Default for Chassis {
    fn default() -> Self {
        Self::new()
    }
}
