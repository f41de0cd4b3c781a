use serde::{Deserialize, Serialize};

use super::Timestamp;

/// A registered conductor (`/v1/conductors`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
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
    /// Where the other conductors reach this one to hand it the operations on the
    /// nodes it owns (its API's base URL); `None` when it cannot be reached.
    #[serde(default)]
    pub url: Option<String>,
}

impl ConductorRecord {
    /// A live conductor `hostname` in the default group, registered now.
    pub fn new(hostname: impl Into<String>) -> Self {
        ConductorRecord {
            hostname: hostname.into(),
            conductor_group: String::new(),
            drivers: Vec::new(),
            alive: true,
            created_at: super::now(),
            updated_at: None,
            url: None,
        }
    }
}
