//! Switch drivers by name, and the configured switches.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Switch;
use crate::driver::PropertyDoc;
use crate::error::{DriverError, ErrorKind};
use crate::mac::MacAddress;
use crate::model::JsonMap;
use crate::secret::{DriverInfo, Secret};

/// One switch as the operator configures it. `Debug` masks the password and every
/// option whose key looks like a secret (`*password*`, `*private_key*`, ...).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwitchConfig {
    /// The switch's name: what ports' `local_link_connection.switch_info` holds.
    pub name: String,
    /// The switch driver (`ovs`, `fake`, a vendor's).
    pub driver: String,
    /// How to reach it, in the driver's syntax (`unix:/run/openvswitch/db.sock`,
    /// `tcp:10.0.0.2:6640`, `ssh://10.0.0.3`, ...).
    pub address: String,
    /// User name, if the switch wants one.
    pub username: Option<String>,
    /// Password; never printed.
    pub password: Option<Secret>,
    /// The switch's LLDP chassis id (a MAC address): ports whose
    /// `local_link_connection.switch_id` is this belong to the switch.
    pub switch_id: Option<MacAddress>,
    /// The physical network the switch's ports are on, given to ports that
    /// inspection finds wired to it.
    pub physical_network: Option<String>,
    /// Driver-specific settings (see the driver's [`SwitchDriver::properties`]).
    pub options: DriverInfo,
}

impl SwitchConfig {
    /// A switch named `name` using `driver` at `address`.
    pub fn new(
        name: impl Into<String>,
        driver: impl Into<String>,
        address: impl Into<String>,
    ) -> Self {
        SwitchConfig {
            name: name.into(),
            driver: driver.into(),
            address: address.into(),
            ..SwitchConfig::default()
        }
    }

    /// A string option.
    pub fn option(&self, key: &str) -> Option<String> {
        self.options.get_str(key)
    }

    /// Whether a port's `local_link_connection` names this switch: `switch_info`
    /// equal to the name, or `switch_id` equal to the chassis id.
    pub fn matches(&self, llc: &JsonMap) -> bool {
        let info = llc.get("switch_info").and_then(|v| v.as_str());
        if info == Some(self.name.as_str()) {
            return true;
        }
        let id = llc
            .get("switch_id")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<MacAddress>().ok());
        id.is_some() && id == self.switch_id
    }
}

impl fmt::Debug for SwitchConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwitchConfig")
            .field("name", &self.name)
            .field("driver", &self.driver)
            .field("address", &self.address)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("switch_id", &self.switch_id)
            .field("physical_network", &self.physical_network)
            .field("options", &self.options)
            .finish()
    }
}

/// A switch driver: turns a [`SwitchConfig`] into a [`Switch`].
///
/// # Contract
/// [`validate`](Self::validate) and [`build`](Self::build) do no I/O: they parse the
/// configuration and say which key is missing or wrong; the switch connects when
/// first used.
pub trait SwitchDriver: Send + Sync + fmt::Debug + 'static {
    /// The name configurations use in `driver`.
    fn name(&self) -> &'static str;

    /// The `options` keys it reads.
    fn properties(&self) -> Vec<PropertyDoc> {
        Vec::new()
    }

    /// Check a configuration (no I/O).
    fn validate(&self, config: &SwitchConfig) -> Result<(), DriverError>;

    /// Build the switch (no I/O).
    fn build(&self, config: &SwitchConfig) -> Result<Arc<dyn Switch>, DriverError>;
}

/// Switch drivers by name and the switches configured with them. Filled by the
/// application: `registry.register_driver(Arc::new(OvsSwitchDriver))`, then
/// `registry.add_switch(config)` for each configured switch.
#[derive(Clone, Default)]
pub struct SwitchRegistry {
    drivers: BTreeMap<&'static str, Arc<dyn SwitchDriver>>,
    switches: BTreeMap<String, (SwitchConfig, Arc<dyn Switch>)>,
}

impl fmt::Debug for SwitchRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwitchRegistry")
            .field("drivers", &self.drivers.keys().collect::<Vec<_>>())
            .field("switches", &self.switches.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SwitchRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register (or replace) a driver under its name.
    pub fn register_driver(&mut self, driver: Arc<dyn SwitchDriver>) -> &mut Self {
        self.drivers.insert(driver.name(), driver);
        self
    }

    /// The registered driver names, sorted.
    pub fn driver_names(&self) -> Vec<&'static str> {
        self.drivers.keys().copied().collect()
    }

    /// A driver by name; the error lists the known ones.
    pub fn driver(&self, name: &str) -> Result<Arc<dyn SwitchDriver>, DriverError> {
        self.drivers.get(name).cloned().ok_or_else(|| {
            DriverError::new(
                ErrorKind::NotFound,
                format!(
                    "unknown switch driver {name:?}; known switch drivers: {}",
                    self.driver_names().join(", ")
                ),
            )
        })
    }

    /// Validate and build a configured switch and keep it under its name.
    pub fn add_switch(&mut self, config: SwitchConfig) -> Result<Arc<dyn Switch>, DriverError> {
        if config.name.trim().is_empty() {
            return Err(DriverError::missing("a switch needs a name"));
        }
        if self.switches.contains_key(&config.name) {
            return Err(DriverError::invalid(format!(
                "switch {:?} is configured twice",
                config.name
            )));
        }
        if let Some(id) = config.switch_id
            && let Some((other, _)) = self
                .switches
                .values()
                .find(|(c, _)| c.switch_id == Some(id))
        {
            return Err(DriverError::invalid(format!(
                "switches {:?} and {:?} have the same switch_id {id}",
                other.name, config.name
            )));
        }
        let driver = self.driver(&config.driver)?;
        driver
            .validate(&config)
            .map_err(|e| DriverError::new(e.kind(), format!("switch {:?}: {e}", config.name)))?;
        let sw = driver.build(&config)?;
        self.switches
            .insert(config.name.clone(), (config, sw.clone()));
        Ok(sw)
    }

    /// A switch by name.
    pub fn switch(&self, name: &str) -> Option<Arc<dyn Switch>> {
        self.switches.get(name).map(|(_, s)| s.clone())
    }

    /// A switch's configuration by name.
    pub fn config(&self, name: &str) -> Option<&SwitchConfig> {
        self.switches.get(name).map(|(c, _)| c)
    }

    /// The configured switches, by name.
    pub fn switches(&self) -> impl Iterator<Item = (&SwitchConfig, &Arc<dyn Switch>)> {
        self.switches.values().map(|(c, s)| (c, s))
    }

    /// Whether no switch is configured.
    pub fn is_empty(&self) -> bool {
        self.switches.is_empty()
    }

    /// The switch a port's `local_link_connection` names (by `switch_info`, else by
    /// `switch_id`), with its configuration.
    pub fn find(&self, llc: &JsonMap) -> Option<(&SwitchConfig, Arc<dyn Switch>)> {
        let info = llc.get("switch_info").and_then(|v| v.as_str());
        if let Some((c, s)) = info.and_then(|i| self.switches.get(i)) {
            return Some((c, s.clone()));
        }
        self.switches
            .values()
            .find(|(c, _)| c.matches(llc))
            .map(|(c, s)| (c, s.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::FakeSwitchDriver;
    use serde_json::json;

    #[test]
    fn secrets_do_not_print() {
        let mut c = SwitchConfig::new("tor", "fake", "mem:");
        c.password = Some(Secret::new("hunter2"));
        c.options.insert("ssl_private_key_passphrase", "p4ss");
        c.options.insert("bridge", "br0");
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && !d.contains("p4ss"), "{d}");
        assert!(d.contains("br0"), "{d}");
    }

    #[test]
    fn switches_are_found_by_name_or_chassis_id() {
        let mut r = SwitchRegistry::new();
        r.register_driver(Arc::new(FakeSwitchDriver::default()));
        let mut c = SwitchConfig::new("tor-1", "fake", "");
        c.switch_id = Some("52:54:00:aa:bb:cc".parse().unwrap());
        c.options.insert("ports", "eth1");
        r.add_switch(c.clone()).unwrap();
        let e = r.add_switch(c.clone()).unwrap_err();
        assert!(e.message().contains("twice"), "{e}");
        let e = r
            .add_switch(SwitchConfig::new("tor-2", "cisco", ""))
            .unwrap_err();
        assert!(e.message().contains("known switch drivers: fake"), "{e}");
        let by_name = json!({"switch_info": "tor-1", "port_id": "eth1"});
        let by_id = json!({"switch_id": "52-54-00-AA-BB-CC", "port_id": "eth1"});
        let none = json!({"switch_id": "52:54:00:00:00:01", "switch_info": "x"});
        for (llc, want) in [(by_name, true), (by_id, true), (none, false)] {
            let m = llc.as_object().unwrap();
            assert_eq!(r.find(m).is_some(), want, "{m:?}");
        }
    }
}
