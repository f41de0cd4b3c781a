use serde::{Deserialize, Serialize};

use super::Timestamp;

/// A process registered on a shared store: a conductor (`/v1/conductors`), or an
/// API-only front end.
///
/// API-only front ends (`ConductorConfig::takes_work` false) register too, with no
/// hardware types, so that their death is seen like a conductor's and the node
/// locks one held are released by the nodes' owners. With no hardware type they
/// are on no hash ring, and [`Conductor::list_conductors`] leaves them out, as
/// Ironic lists only conductors (whose start fails without a hardware type).
///
/// [`Conductor::list_conductors`]: crate::conductor::Conductor::list_conductors
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConductorRecord {
    /// Host name (unique).
    pub hostname: String,
    /// Conductor group it serves.
    pub conductor_group: String,
    /// Hardware types it has enabled; none for an API-only front end.
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
    /// Whether this is a conductor (it has hardware types), not an API-only
    /// front end.
    pub fn is_conductor(&self) -> bool {
        !self.drivers.is_empty()
    }

    /// A live record `hostname` in the default group, registered now, with no
    /// hardware types yet (an API-only front end until `drivers` is filled).
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
