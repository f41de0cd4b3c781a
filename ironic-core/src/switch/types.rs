//! What a switch port and a link aggregation look like, as the [`Switch`](super::Switch)
//! contract speaks of them. Plain data, validated without I/O.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DriverError;

/// The lowest usable 802.1Q VLAN id.
pub const VLAN_MIN: u16 = 1;
/// The highest usable 802.1Q VLAN id (4095 is reserved).
pub const VLAN_MAX: u16 = 4094;

/// Check an 802.1Q VLAN id (1 to 4094).
pub fn check_vlan(vlan: u16, what: &str) -> Result<(), DriverError> {
    if (VLAN_MIN..=VLAN_MAX).contains(&vlan) {
        Ok(())
    } else {
        Err(DriverError::invalid(format!(
            "{what} {vlan} is not a usable VLAN id ({VLAN_MIN} to {VLAN_MAX})"
        )))
    }
}

/// How a port carries VLANs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum VlanMode {
    /// Untagged frames only, all on one VLAN (`switchport mode access`).
    Access {
        /// The access VLAN.
        vlan: u16,
    },
    /// Tagged frames of the allowed VLANs, plus untagged frames on the native VLAN if
    /// one is set (`switchport mode trunk`).
    Trunk {
        /// The VLAN of untagged frames; `None`: untagged frames are dropped.
        native_vlan: Option<u16>,
        /// The tagged VLANs, sorted and without duplicates (see [`VlanMode::trunk`]).
        /// The native VLAN need not be listed.
        allowed_vlans: Vec<u16>,
    },
}

impl VlanMode {
    /// An access port on `vlan`.
    pub fn access(vlan: u16) -> Self {
        VlanMode::Access { vlan }
    }

    /// A trunk; the allowed list is sorted and deduplicated, the native VLAN removed
    /// from it (it is carried untagged).
    pub fn trunk(native_vlan: Option<u16>, allowed: impl IntoIterator<Item = u16>) -> Self {
        let mut allowed_vlans: Vec<u16> = allowed.into_iter().collect();
        allowed_vlans.sort_unstable();
        allowed_vlans.dedup();
        if let Some(n) = native_vlan {
            allowed_vlans.retain(|v| *v != n);
        }
        VlanMode::Trunk {
            native_vlan,
            allowed_vlans,
        }
    }

    /// The same mode in canonical form (trunk lists sorted, deduplicated, without
    /// the native VLAN), so that two equal configurations compare equal.
    pub fn normalized(&self) -> Self {
        match self {
            VlanMode::Access { vlan } => VlanMode::access(*vlan),
            VlanMode::Trunk {
                native_vlan,
                allowed_vlans,
            } => VlanMode::trunk(*native_vlan, allowed_vlans.iter().copied()),
        }
    }

    /// Every VLAN id is usable; a trunk carries at least one VLAN.
    pub fn validate(&self) -> Result<(), DriverError> {
        match self {
            VlanMode::Access { vlan } => check_vlan(*vlan, "access VLAN"),
            VlanMode::Trunk {
                native_vlan,
                allowed_vlans,
            } => {
                if let Some(n) = native_vlan {
                    check_vlan(*n, "native VLAN")?;
                }
                for v in allowed_vlans {
                    check_vlan(*v, "allowed VLAN")?;
                }
                if native_vlan.is_none() && allowed_vlans.is_empty() {
                    return Err(DriverError::invalid(
                        "a trunk needs a native VLAN or at least one allowed VLAN",
                    ));
                }
                Ok(())
            }
        }
    }

    /// The VLANs whose frames reach the port (untagged or tagged).
    pub fn vlans(&self) -> Vec<u16> {
        match self.normalized() {
            VlanMode::Access { vlan } => vec![vlan],
            VlanMode::Trunk {
                native_vlan,
                mut allowed_vlans,
            } => {
                allowed_vlans.extend(native_vlan);
                allowed_vlans.sort_unstable();
                allowed_vlans.dedup();
                allowed_vlans
            }
        }
    }
}

impl fmt::Display for VlanMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.normalized() {
            VlanMode::Access { vlan } => write!(f, "access/vlan={vlan}"),
            VlanMode::Trunk {
                native_vlan,
                allowed_vlans,
            } => {
                f.write_str("trunk")?;
                if let Some(n) = native_vlan {
                    write!(f, "/native_vlan={n}")?;
                }
                let list: Vec<String> = allowed_vlans.iter().map(u16::to_string).collect();
                write!(f, "/allowed_vlans={}", list.join(","))
            }
        }
    }
}

/// The configuration of one switch port (or of a LAG, which is a port too).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortConfig {
    /// VLANs; `None`: the port is on no VLAN the switch driver manages (the
    /// switch's default; OVS: untagged and unrestricted). Isolation never relies
    /// on `None`: an isolated port is shut or on a quarantine VLAN.
    pub vlan: Option<VlanMode>,
    /// MTU in bytes; `None` leaves the switch's default.
    pub mtu: Option<u32>,
    /// Administratively up (`no shutdown`) or down (`shutdown`).
    pub enabled: bool,
    /// Free text the switch shows for the port (`description`), if it has one.
    pub description: Option<String>,
}

impl PortConfig {
    /// An enabled access port on `vlan`.
    pub fn access(vlan: u16) -> Self {
        PortConfig {
            vlan: Some(VlanMode::access(vlan)),
            mtu: None,
            enabled: true,
            description: None,
        }
    }

    /// An enabled trunk port.
    pub fn trunk(native_vlan: Option<u16>, allowed: impl IntoIterator<Item = u16>) -> Self {
        PortConfig {
            vlan: Some(VlanMode::trunk(native_vlan, allowed)),
            ..PortConfig::access(1)
        }
    }

    /// A port that is shut and on no VLAN.
    pub fn shut() -> Self {
        PortConfig {
            vlan: None,
            mtu: None,
            enabled: false,
            description: None,
        }
    }

    /// The same configuration with an MTU.
    pub fn with_mtu(mut self, mtu: Option<u32>) -> Self {
        self.mtu = mtu;
        self
    }

    /// The same configuration with a description.
    pub fn with_description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }

    /// Canonical form (see [`VlanMode::normalized`]).
    pub fn normalized(&self) -> Self {
        PortConfig {
            vlan: self.vlan.as_ref().map(VlanMode::normalized),
            ..self.clone()
        }
    }

    /// VLAN ids usable, MTU between 68 and 65535 bytes, description printable.
    pub fn validate(&self) -> Result<(), DriverError> {
        if let Some(v) = &self.vlan {
            v.validate()?;
        }
        if let Some(m) = self.mtu
            && !(68..=65535).contains(&m)
        {
            return Err(DriverError::invalid(format!(
                "MTU {m} is out of range (68 to 65535)"
            )));
        }
        if let Some(d) = &self.description
            && d.chars().any(char::is_control)
        {
            return Err(DriverError::invalid(
                "a port description may not contain control characters",
            ));
        }
        Ok(())
    }

    /// Whether frames of `vlan` reach this port: it is enabled and carries the VLAN.
    pub fn carries(&self, vlan: u16) -> bool {
        self.enabled
            && self
                .vlan
                .as_ref()
                .is_some_and(|m| m.vlans().contains(&vlan))
    }
}

impl fmt::Display for PortConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.enabled {
            f.write_str("shutdown")?;
            if self.vlan.is_none() {
                return Ok(());
            }
            f.write_str(" ")?;
        }
        match &self.vlan {
            Some(v) => write!(f, "{v}")?,
            None => f.write_str("no vlan")?,
        }
        if let Some(m) = self.mtu {
            write!(f, " mtu={m}")?;
        }
        Ok(())
    }
}

/// What reading a port back gives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStatus {
    /// Its configuration, as the switch reports it (normalized).
    pub config: PortConfig,
    /// The LAG the port is a member of, if any. A member's own VLAN configuration
    /// does not apply while it is in a LAG: the LAG's does.
    pub lag: Option<String>,
    /// Link (carrier) state, when the switch reports it.
    pub link_up: Option<bool>,
}

/// How a LAG negotiates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LagMode {
    /// A static aggregation (`channel-group N mode on`); for host bonds in
    /// `balance-rr`, `balance-xor` and `broadcast` mode.
    Static,
    /// LACP, actively negotiating (`mode active`); for `802.3ad` host bonds.
    LacpActive,
    /// LACP, answering only (`mode passive`).
    LacpPassive,
}

impl LagMode {
    /// The switch side a Linux bond mode needs (Ironic port group `mode`):
    /// `Some(mode)` for modes that need an aggregation on the switch, `None` for
    /// `active-backup`, `balance-tlb` and `balance-alb` (and their numbers 1, 5, 6),
    /// which work with independent switch ports. An unknown mode is an error.
    pub fn for_bond_mode(mode: &str) -> Result<Option<LagMode>, DriverError> {
        match mode {
            "802.3ad" | "4" => Ok(Some(LagMode::LacpActive)),
            "balance-rr" | "0" | "balance-xor" | "2" | "broadcast" | "3" => {
                Ok(Some(LagMode::Static))
            }
            "active-backup" | "1" | "balance-tlb" | "5" | "balance-alb" | "6" => Ok(None),
            other => Err(DriverError::invalid(format!(
                "unknown bond mode {other:?}: expected one of balance-rr, active-backup, balance-xor, broadcast, 802.3ad, balance-tlb, balance-alb"
            ))),
        }
    }
}

impl fmt::Display for LagMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LagMode::Static => "static",
            LagMode::LacpActive => "lacp-active",
            LagMode::LacpPassive => "lacp-passive",
        })
    }
}

/// A link aggregation (LAG, port channel, bond) on one switch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LagConfig {
    /// Member ports (switch port names), sorted and deduplicated; at least one.
    pub members: Vec<String>,
    /// Negotiation.
    pub mode: LagMode,
}

impl LagConfig {
    /// A LAG over `members`.
    pub fn new(mode: LagMode, members: impl IntoIterator<Item = impl Into<String>>) -> Self {
        LagConfig {
            members: members.into_iter().map(Into::into).collect(),
            mode,
        }
        .normalized()
    }

    /// Members sorted and deduplicated.
    pub fn normalized(&self) -> Self {
        let mut members = self.members.clone();
        members.sort();
        members.dedup();
        LagConfig {
            members,
            mode: self.mode,
        }
    }

    /// At least one member; no empty names.
    pub fn validate(&self) -> Result<(), DriverError> {
        if self.members.is_empty() {
            return Err(DriverError::invalid("a LAG needs at least one member port"));
        }
        if self.members.iter().any(|m| m.trim().is_empty()) {
            return Err(DriverError::invalid("a LAG member port name is empty"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunks_normalize_and_validate() {
        let t = VlanMode::trunk(Some(10), [30, 20, 10, 20]);
        assert_eq!(
            t,
            VlanMode::Trunk {
                native_vlan: Some(10),
                allowed_vlans: vec![20, 30]
            }
        );
        assert_eq!(t.vlans(), vec![10, 20, 30]);
        assert_eq!(t.to_string(), "trunk/native_vlan=10/allowed_vlans=20,30");
        assert!(VlanMode::trunk(None, []).validate().is_err());
        assert!(VlanMode::access(0).validate().is_err());
        assert!(VlanMode::access(4095).validate().is_err());
        assert!(VlanMode::access(4094).validate().is_ok());
        let e = VlanMode::trunk(Some(5000), [3]).validate().unwrap_err();
        assert!(e.message().contains("5000"), "{e}");
    }

    #[test]
    fn port_configs_say_what_they_carry() {
        let p = PortConfig::access(100);
        assert!(p.carries(100) && !p.carries(200));
        assert!(!PortConfig::shut().carries(1));
        let mut off = PortConfig::access(100);
        off.enabled = false;
        assert!(!off.carries(100));
        assert_eq!(off.to_string(), "shutdown access/vlan=100");
        assert!(PortConfig::access(1).with_mtu(Some(20)).validate().is_err());
        assert!(
            PortConfig::access(1)
                .with_mtu(Some(9000))
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn bond_modes_map_to_switch_sides() {
        assert_eq!(
            LagMode::for_bond_mode("802.3ad").unwrap(),
            Some(LagMode::LacpActive)
        );
        assert_eq!(
            LagMode::for_bond_mode("balance-xor").unwrap(),
            Some(LagMode::Static)
        );
        assert_eq!(LagMode::for_bond_mode("active-backup").unwrap(), None);
        assert_eq!(LagMode::for_bond_mode("6").unwrap(), None);
        assert!(LagMode::for_bond_mode("balance-fast").is_err());
        assert!(
            LagConfig::new(LagMode::Static, Vec::<String>::new())
                .validate()
                .is_err()
        );
        assert_eq!(
            LagConfig::new(LagMode::Static, ["b", "a", "b"]).members,
            vec!["a", "b"]
        );
    }
}
