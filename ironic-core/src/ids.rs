//! Typed identifiers.
//!
//! Every resource Ironic exposes is addressed by a UUID; nodes (and, since later
//! microversions, ports and port groups) may also be addressed by a unique name.
//! Each resource gets its own id type so that a port id can never be passed where
//! a node id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new random (v4) id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
            /// The UUID inside.
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

typed_id!(
    /// The UUID of a node.
    NodeId
);
typed_id!(
    /// The UUID of a port.
    PortId
);
typed_id!(
    /// The UUID of a port group.
    PortgroupId
);
typed_id!(
    /// The UUID of a chassis.
    ChassisId
);
typed_id!(
    /// The UUID of an allocation.
    AllocationId
);
typed_id!(
    /// The UUID of a deploy template.
    DeployTemplateId
);
typed_id!(
    /// The UUID of a node history event.
    HistoryId
);
typed_id!(
    /// The UUID of a volume connector.
    VolumeConnectorId
);
typed_id!(
    /// The UUID of a volume target.
    VolumeTargetId
);
typed_id!(
    /// The UUID of a runbook.
    RunbookId
);
typed_id!(
    /// The UUID of an inspection rule.
    InspectionRuleId
);

/// How a caller names a resource that may be addressed by UUID or by name
/// (`/v1/nodes/{node_ident}`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ident {
    /// A UUID.
    Uuid(Uuid),
    /// A logical name.
    Name(String),
}

impl Ident {
    /// Parse an identifier: anything that parses as a UUID is a UUID, the rest is a name.
    pub fn parse(s: &str) -> Self {
        match Uuid::parse_str(s) {
            Ok(u) => Ident::Uuid(u),
            Err(_) => Ident::Name(s.to_owned()),
        }
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ident::Uuid(u) => fmt::Display::fmt(&u.hyphenated(), f),
            Ident::Name(n) => f.write_str(n),
        }
    }
}

impl From<NodeId> for Ident {
    fn from(id: NodeId) -> Self {
        Ident::Uuid(id.0)
    }
}

impl From<&str> for Ident {
    fn from(s: &str) -> Self {
        Ident::parse(s)
    }
}

/// Check a logical name as Ironic does (`utils.is_valid_logical_name`): RFC 3986
/// unreserved characters only (`A-Z a-z 0-9 - . _ ~`), 1..=255 characters, and not
/// something that parses as a UUID.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!(
            "Expected a logical name but received {name:?}: must be 1 to 255 characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')))
    {
        return Err(format!(
            "Expected a logical name but received {name:?}: character {c:?} is not allowed (use A-Z, a-z, 0-9, '-', '.', '_', '~')"
        ));
    }
    if Uuid::parse_str(name).is_ok() {
        return Err(format!(
            "Expected a logical name but received {name:?}, which is a UUID"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ident_parses_uuid_or_name() {
        let id = NodeId::new();
        assert_eq!(Ident::parse(&id.to_string()), Ident::Uuid(id.0));
        assert_eq!(Ident::parse("node-1"), Ident::Name("node-1".into()));
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("rack1.node-02_a~").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("has space").is_err());
        assert!(validate_name(&NodeId::new().to_string()).is_err());
        assert!(validate_name(&"a".repeat(256)).is_err());
    }

    #[test]
    fn ids_serialize_as_plain_uuid_strings() {
        let id = NodeId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        let back: NodeId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
    }
}
