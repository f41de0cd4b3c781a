use serde::{Deserialize, Serialize};

use super::Timestamp;

/// A registered conductor (`/v1/conductors`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConductorRecord {
    /// Host name (unique).
    pub hostname: String,
    /// Conductor group it serves.
    pub conductor_group: String,
    /// Hardware types it has enabled.
    pub drivers: Vec<String>,
    /// Whether it is considered alive (derived from `updated_at`).
    pub alive: bool,
    /// Registered.
    pub created_at: Timestamp,
    /// Last keep-alive.
    pub updated_at: Option<Timestamp>,
}
