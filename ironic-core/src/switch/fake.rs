//! `fake`: an in-memory switch, the switch counterpart of `fake-hardware`. It runs
//! the whole conformance kit (which keeps the kit honest), backs the network
//! interface's own tests, and takes injected faults.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{
    LagConfig, PortConfig, PortStatus, Switch, SwitchCapabilities, SwitchConfig, SwitchDriver,
};
use crate::driver::PropertyDoc;
use crate::error::{DriverError, ErrorKind};

#[derive(Debug, Default)]
struct State {
    ports: BTreeMap<String, PortStatus>,
    lags: BTreeMap<String, LagConfig>,
    faults: VecDeque<(ErrorKind, String)>,
    fail_ports: BTreeMap<String, ErrorKind>,
    fail_vlans: BTreeMap<u16, ErrorKind>,
    log: Vec<(String, PortConfig)>,
}

/// An in-memory switch with a fixed set of ports (all shut at first).
#[derive(Debug)]
pub struct FakeSwitch {
    name: String,
    state: Mutex<State>,
}

fn not_found(sw: &str, what: &str, name: &str) -> DriverError {
    DriverError::new(
        ErrorKind::NotFound,
        format!("switch {sw} has no {what} {name}"),
    )
}

impl FakeSwitch {
    /// A switch named `name` with these ports.
    pub fn with_ports(
        name: impl Into<String>,
        ports: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let ports = ports
            .into_iter()
            .map(|p| {
                (
                    p.into(),
                    PortStatus {
                        config: PortConfig::shut(),
                        lag: None,
                        link_up: None,
                    },
                )
            })
            .collect();
        FakeSwitch {
            name: name.into(),
            state: Mutex::new(State {
                ports,
                ..State::default()
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next `n` calls fail with `kind` (retryable per the kind's default).
    pub fn fail_next(&self, kind: ErrorKind, n: usize) {
        let mut s = self.state();
        for _ in 0..n {
            s.faults.push_back((
                kind,
                format!("injected {kind} failure on switch {}", self.name),
            ));
        }
    }

    /// Every change of `port` fails with `kind` until [`FakeSwitch::heal`].
    pub fn fail_port(&self, port: &str, kind: ErrorKind) {
        self.state().fail_ports.insert(port.to_owned(), kind);
    }

    /// Every change that would put a port on `vlan` fails with `kind` until
    /// [`FakeSwitch::heal`].
    pub fn fail_vlan(&self, vlan: u16, kind: ErrorKind) {
        self.state().fail_vlans.insert(vlan, kind);
    }

    /// Remove every injected fault.
    pub fn heal(&self) {
        let mut s = self.state();
        s.faults.clear();
        s.fail_ports.clear();
        s.fail_vlans.clear();
    }

    /// Every successful port change so far, in order.
    pub fn log(&self) -> Vec<(String, PortConfig)> {
        self.state().log.clone()
    }

    fn fault(&self, s: &mut State, port: Option<&str>) -> Result<(), DriverError> {
        if let Some((k, m)) = s.faults.pop_front() {
            return Err(DriverError::new(k, m));
        }
        if let Some(p) = port
            && let Some(k) = s.fail_ports.get(p)
        {
            return Err(DriverError::new(
                *k,
                format!("injected {k} failure on port {p} of switch {}", self.name),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl Switch for FakeSwitch {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> SwitchCapabilities {
        SwitchCapabilities {
            trunk: true,
            mtu: true,
            lag: true,
            lacp: true,
        }
    }

    async fn get_port(&self, port: &str) -> Result<PortStatus, DriverError> {
        let mut s = self.state();
        self.fault(&mut s, None)?;
        s.ports
            .get(port)
            .cloned()
            .ok_or_else(|| not_found(&self.name, "port", port))
    }

    async fn set_port(&self, port: &str, config: &PortConfig) -> Result<(), DriverError> {
        self.set_ports(&[(port.to_owned(), config.clone())]).await
    }

    async fn set_ports(&self, changes: &[(String, PortConfig)]) -> Result<(), DriverError> {
        for (p, c) in changes {
            self.validate_port(p, c)?;
        }
        let mut s = self.state();
        self.fault(&mut s, None)?;
        // all or nothing, as one transaction
        for (p, c) in changes {
            if !s.ports.contains_key(p) {
                return Err(not_found(&self.name, "port", p));
            }
            self.fault(&mut s, Some(p))?;
            if let Some((v, k)) = s.fail_vlans.iter().find(|(v, _)| c.carries(**v)) {
                return Err(DriverError::new(
                    *k,
                    format!(
                        "injected {k} failure putting port {p} of switch {} on VLAN {v}",
                        self.name
                    ),
                ));
            }
        }
        for (p, c) in changes {
            let c = c.normalized();
            if let Some(st) = s.ports.get_mut(p) {
                st.config = c.clone();
            }
            s.log.push((p.clone(), c));
        }
        Ok(())
    }

    async fn list_ports(&self) -> Result<Vec<String>, DriverError> {
        let mut s = self.state();
        self.fault(&mut s, None)?;
        Ok(s.ports.keys().cloned().collect())
    }

    async fn get_lag(&self, lag: &str) -> Result<Option<LagConfig>, DriverError> {
        let mut s = self.state();
        self.fault(&mut s, None)?;
        Ok(s.lags.get(lag).cloned())
    }

    async fn set_lag(&self, lag: &str, config: &LagConfig) -> Result<(), DriverError> {
        let config = config.normalized();
        config.validate()?;
        let mut s = self.state();
        self.fault(&mut s, None)?;
        if config.members.iter().any(|m| m == lag) {
            return Err(DriverError::invalid(format!(
                "LAG {lag} cannot be its own member"
            )));
        }
        for m in &config.members {
            match s.ports.get(m) {
                None => return Err(not_found(&self.name, "port", m)),
                Some(st) if st.lag.as_deref().is_some_and(|l| l != lag) => {
                    return Err(DriverError::new(
                        ErrorKind::Conflict,
                        format!(
                            "port {m} of switch {} is already in LAG {}",
                            self.name,
                            st.lag.as_deref().unwrap_or_default()
                        ),
                    ));
                }
                Some(_) => {}
            }
            if s.lags.contains_key(m) {
                return Err(DriverError::invalid(format!("{m} is a LAG, not a port")));
            }
        }
        if s.ports.contains_key(lag) && !s.lags.contains_key(lag) {
            return Err(DriverError::new(
                ErrorKind::Conflict,
                format!("switch {} already has a port named {lag}", self.name),
            ));
        }
        let old = s.lags.get(lag).cloned();
        if let Some(old) = old {
            for m in old.members.iter().filter(|m| !config.members.contains(m)) {
                if let Some(st) = s.ports.get_mut(m) {
                    st.lag = None;
                    st.config = PortConfig::shut();
                }
            }
        } else {
            s.ports.insert(
                lag.to_owned(),
                PortStatus {
                    config: PortConfig::shut(),
                    lag: None,
                    link_up: None,
                },
            );
        }
        for m in &config.members {
            if let Some(st) = s.ports.get_mut(m) {
                st.lag = Some(lag.to_owned());
            }
        }
        s.lags.insert(lag.to_owned(), config);
        Ok(())
    }

    async fn delete_lag(&self, lag: &str) -> Result<(), DriverError> {
        let mut s = self.state();
        self.fault(&mut s, None)?;
        let Some(old) = s.lags.remove(lag) else {
            return Ok(());
        };
        s.ports.remove(lag);
        for m in &old.members {
            if let Some(st) = s.ports.get_mut(m) {
                st.lag = None;
                st.config = PortConfig::shut();
            }
        }
        Ok(())
    }
}

/// The `fake` switch driver: builds a [`FakeSwitch`] whose ports are the
/// comma-separated `ports` option, and keeps every switch it built so that tests
/// can look at them ([`FakeSwitchDriver::built`]).
#[derive(Debug, Default, Clone)]
pub struct FakeSwitchDriver {
    built: Arc<Mutex<BTreeMap<String, Arc<FakeSwitch>>>>,
}

impl FakeSwitchDriver {
    /// The name configurations use.
    pub const NAME: &'static str = "fake";

    /// The switch built under `name`, if any.
    pub fn built(&self, name: &str) -> Option<Arc<FakeSwitch>> {
        self.built
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    fn ports(config: &SwitchConfig) -> Result<Vec<String>, DriverError> {
        let raw = config.option("ports").ok_or_else(|| {
            DriverError::missing(format!(
                "fake switch {:?} needs options.ports (a comma-separated list of port names)",
                config.name
            ))
        })?;
        Ok(raw
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

impl SwitchDriver for FakeSwitchDriver {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn properties(&self) -> Vec<PropertyDoc> {
        vec![PropertyDoc::required(
            "ports",
            "Comma-separated names of the switch's ports.",
        )]
    }

    fn validate(&self, config: &SwitchConfig) -> Result<(), DriverError> {
        Self::ports(config).map(|_| ())
    }

    fn build(&self, config: &SwitchConfig) -> Result<Arc<dyn Switch>, DriverError> {
        let sw = Arc::new(FakeSwitch::with_ports(&config.name, Self::ports(config)?));
        self.built
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(config.name.clone(), sw.clone());
        Ok(sw)
    }
}
