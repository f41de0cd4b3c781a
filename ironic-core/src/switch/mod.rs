//! The switch contract: how ironic-rs moves a node's switch ports between networks.
//!
//! Ironic isolates tenants through Neutron and an ML2 switch driver; here the
//! network interface talks to the switch itself through the [`Switch`] trait, shaped
//! like the BMC driver traits: object-safe and async, registered by name
//! ([`SwitchRegistry`]), secrets masked ([`SwitchConfig`]), [`validate`](Switch::validate_port)
//! without I/O, one error type ([`DriverError`]) whose kinds say what may be retried,
//! and a conformance kit (`testkit::run_switch_suite`, feature `testkit`) that every
//! switch driver runs. Open vSwitch is the reference driver (crate
//! `ironic-switch-ovs`); vendors publish their own crates the same way.
//!
//! The vocabulary: a switch has named ports; a [`PortConfig`] says which VLANs a
//! port carries ([`VlanMode`]: access, or trunk with a native VLAN and allowed
//! VLANs), its MTU and whether it is shut; a [`LagConfig`] bundles ports into a LAG
//! (which is configured as a port by its own name). Reading back gives a
//! [`PortStatus`].
//!
//! ```
//! # async fn demo() -> Result<(), ironic_core::DriverError> {
//! use ironic_core::switch::{FakeSwitch, PortConfig, Switch, SwitchExt};
//! let sw = FakeSwitch::with_ports("tor-1", ["eth1", "eth2"]);
//! sw.set_access_vlan("eth1", 100).await?;
//! assert_eq!(sw.get_port("eth1").await?.config, PortConfig::access(100));
//! sw.shut("eth1").await?;
//! assert!(!sw.get_port("eth1").await?.config.enabled);
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

mod fake;
mod network;
mod registry;
mod types;

use std::fmt::Debug;

use async_trait::async_trait;

pub use fake::{FakeSwitch, FakeSwitchDriver};
pub use network::{NetworkDef, SwitchNetwork, SwitchNetworkConfig, lag_name};
pub use registry::{SwitchConfig, SwitchDriver, SwitchRegistry};
pub use types::{
    LagConfig, LagMode, PortConfig, PortStatus, VLAN_MAX, VLAN_MIN, VlanMode, check_vlan,
};

use crate::error::{DriverError, ErrorKind};

/// What a switch driver can do beyond port VLANs and shut/no-shut, so that callers
/// (and the conformance kit) know what to ask for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwitchCapabilities {
    /// Trunk ports (native + allowed VLANs).
    pub trunk: bool,
    /// Per-port MTU.
    pub mtu: bool,
    /// Link aggregation (`set_lag`, `delete_lag`).
    pub lag: bool,
    /// LACP on LAGs (else only static LAGs).
    pub lacp: bool,
}

/// A switch the network interface configures.
///
/// # Contract
/// * Port names are the switch's own (`Ethernet1/3`, `xe-0/0/3`, an OVS port name):
///   what LLDP reports as the port id and what ports' `local_link_connection.port_id`
///   holds.
/// * [`set_port`](Self::set_port) sets the whole configuration of a port and returns
///   once the switch *applies* it (not just accepted it): after it returns, frames
///   flow as configured. It is idempotent: setting what is already set succeeds.
/// * [`set_ports`](Self::set_ports) applies several ports; a driver that can do so
///   atomically (one transaction, one commit) should; the default sets them one by
///   one and stops at the first error.
/// * [`get_port`](Self::get_port) reads back what the switch has, normalized
///   ([`PortConfig::normalized`]): after `set_port(p, c)`, `get_port(p).config ==
///   c.normalized()` (a description the switch cannot store reads back `None`).
/// * An unknown port or LAG is [`ErrorKind::NotFound`]; a configuration the switch
///   cannot take is [`ErrorKind::InvalidParameter`] or [`ErrorKind::Unsupported`],
///   checked before anything is changed; refused credentials are
///   [`ErrorKind::Unauthenticated`]; an unreachable switch, a timeout or a busy
///   switch are retryable. Nothing is retried inside the driver beyond reconnecting.
/// * Secrets (passwords, private keys) never appear in `Debug`, `Display`, error
///   messages or logs.
///
/// # For driver authors
/// Implement the required methods and declare [`capabilities`](Self::capabilities);
/// LAG methods default to [`ErrorKind::Unsupported`]. Parse your settings in a
/// [`SwitchDriver`] (no I/O there) and connect lazily. Run the conformance kit
/// (`ironic_core::testkit::run_switch_suite`) against your switch or its simulator.
#[async_trait]
pub trait Switch: Send + Sync + Debug + 'static {
    /// The name this switch is configured under (what ports' `switch_info` holds).
    fn name(&self) -> &str;

    /// What the driver supports.
    fn capabilities(&self) -> SwitchCapabilities;

    /// Check a port name and a configuration for this switch without I/O (VLAN
    /// ranges, MTU support, naming rules). `set_port` calls it first.
    fn validate_port(&self, port: &str, config: &PortConfig) -> Result<(), DriverError> {
        default_validate(self.capabilities(), port, config)
    }

    /// Read a port back.
    async fn get_port(&self, port: &str) -> Result<PortStatus, DriverError>;

    /// Set the whole configuration of a port (see the contract).
    async fn set_port(&self, port: &str, config: &PortConfig) -> Result<(), DriverError>;

    /// Set several ports; atomic where the switch allows it.
    async fn set_ports(&self, changes: &[(String, PortConfig)]) -> Result<(), DriverError> {
        for (p, c) in changes {
            self.set_port(p, c).await?;
        }
        Ok(())
    }

    /// The names of the ports the switch has (LAGs included).
    async fn list_ports(&self) -> Result<Vec<String>, DriverError>;

    /// A LAG's membership and mode, `None` when there is no such LAG.
    async fn get_lag(&self, lag: &str) -> Result<Option<LagConfig>, DriverError> {
        let _ = lag;
        Err(DriverError::unsupported(format!(
            "switch {} does not support link aggregation",
            self.name()
        )))
    }

    /// Create a LAG or change its members and mode. Ports joining it lose their own
    /// VLAN configuration (the LAG's applies: configure it with `set_port(lag, ..)`);
    /// ports leaving it come back as standalone ports, shut. Idempotent.
    async fn set_lag(&self, lag: &str, config: &LagConfig) -> Result<(), DriverError> {
        let _ = (lag, config);
        Err(DriverError::unsupported(format!(
            "switch {} does not support link aggregation",
            self.name()
        )))
    }

    /// Delete a LAG; its members come back as standalone ports, shut. Deleting a
    /// LAG that does not exist succeeds.
    async fn delete_lag(&self, lag: &str) -> Result<(), DriverError> {
        let _ = lag;
        Err(DriverError::unsupported(format!(
            "switch {} does not support link aggregation",
            self.name()
        )))
    }
}

/// The checks [`Switch::validate_port`] does by default: a non-empty port name
/// without control characters, a valid configuration, and no trunk or MTU the
/// capabilities do not declare.
pub fn default_validate(
    caps: SwitchCapabilities,
    port: &str,
    config: &PortConfig,
) -> Result<(), DriverError> {
    if port.trim().is_empty() || port.chars().any(char::is_control) {
        return Err(DriverError::invalid(format!(
            "switch port name {port:?} is empty or has control characters"
        )));
    }
    config.validate()?;
    if matches!(config.vlan, Some(VlanMode::Trunk { .. })) && !caps.trunk {
        return Err(DriverError::unsupported(
            "this switch driver does not support trunk ports",
        ));
    }
    if config.mtu.is_some() && !caps.mtu {
        return Err(DriverError::unsupported(
            "this switch driver does not support setting a port MTU",
        ));
    }
    Ok(())
}

/// The single-purpose operations (set an access VLAN, a trunk, an MTU, shut,
/// no shut, change LAG members), as read-modify-write over [`Switch::get_port`] and
/// [`Switch::set_port`]; every switch has them.
#[async_trait]
pub trait SwitchExt: Switch {
    /// Put `port` on access VLAN `vlan` (and enable it), keeping its MTU.
    async fn set_access_vlan(&self, port: &str, vlan: u16) -> Result<(), DriverError> {
        modify(self, port, |c| {
            c.vlan = Some(VlanMode::access(vlan));
            c.enabled = true;
        })
        .await
    }

    /// Make `port` a trunk (and enable it), keeping its MTU.
    async fn set_trunk(
        &self,
        port: &str,
        native_vlan: Option<u16>,
        allowed_vlans: &[u16],
    ) -> Result<(), DriverError> {
        let mode = VlanMode::trunk(native_vlan, allowed_vlans.iter().copied());
        modify(self, port, |c| {
            c.vlan = Some(mode);
            c.enabled = true;
        })
        .await
    }

    /// Set the MTU of `port` (`None`: the switch's default).
    async fn set_mtu(&self, port: &str, mtu: Option<u32>) -> Result<(), DriverError> {
        modify(self, port, |c| c.mtu = mtu).await
    }

    /// Administratively disable `port` (`shutdown`), keeping its VLANs.
    async fn shut(&self, port: &str) -> Result<(), DriverError> {
        modify(self, port, |c| c.enabled = false).await
    }

    /// Administratively enable `port` (`no shutdown`).
    async fn no_shut(&self, port: &str) -> Result<(), DriverError> {
        modify(self, port, |c| c.enabled = true).await
    }

    /// Change the members of an existing LAG, keeping its mode.
    async fn set_lag_members(&self, lag: &str, members: &[String]) -> Result<(), DriverError> {
        let cur = self.get_lag(lag).await?.ok_or_else(|| {
            DriverError::new(
                ErrorKind::NotFound,
                format!("switch {} has no LAG {lag}", self.name()),
            )
        })?;
        self.set_lag(lag, &LagConfig::new(cur.mode, members.iter().cloned()))
            .await
    }
}

impl<T: Switch + ?Sized> SwitchExt for T {}

/// Read `port`, change its configuration with `f`, write it back.
async fn modify<S: Switch + ?Sized>(
    sw: &S,
    port: &str,
    f: impl FnOnce(&mut PortConfig),
) -> Result<(), DriverError> {
    let mut c = sw.get_port(port).await?.config;
    f(&mut c);
    sw.set_port(port, &c).await
}
