//! `network_interface = "switch"`: tenant isolation without Neutron. The interface
//! moves a node's switch ports through its lifecycle, as Ironic's `neutron` interface
//! does through Neutron and an ML2 switch driver:
//!
//! | node is | ports are on |
//! |---|---|
//! | cleaning / `clean wait` | the cleaning network |
//! | deploying / `wait call-back` | the provisioning network |
//! | inspecting, rescuing, servicing | the inspection, rescuing, servicing network |
//! | active | each VIF's tenant network; ports without a VIF are shut |
//! | anything else (enroll, manageable, available) | the idle network, or shut when none |
//!
//! Networks are configured by name ([`NetworkDef`]: VLAN, physical network, MTU);
//! VIFs attach to them by name (`POST /v1/nodes/{id}/vifs {"id": "tenant-a"}`, or any
//! VIF id with `"network": "tenant-a"` in its info). A port reaches its switch port
//! through `local_link_connection` (`switch_info` = the switch's name, or
//! `switch_id` = its LLDP chassis id, and `port_id`).
//!
//! Isolation: taking a node off a network moves its ports to the idle network (or
//! shuts them) *before* anything else is added, all ports of one switch in one call
//! ([`Switch::set_ports`], atomic on OVS). Tenant networks are only configured after
//! the provisioning network was removed, so a switch that fails leaves the node on
//! neither, never on both; the step fails with the switch's error.
//!
//! Port groups: a group whose bond mode needs the switch's help (`802.3ad`,
//! `balance-rr`, `balance-xor`, `broadcast`) becomes a LAG on the switch (LACP for
//! 802.3ad), named `lag-<first 8 of the group's uuid>`; the other modes
//! (`active-backup`, `balance-tlb`, `balance-alb`) put every member on the same
//! network. Either way [`get_node_network_data`](NetworkInterface::get_node_network_data)
//! describes the bond for the config drive (`network_data.json`, as cloud-init and
//! Glean read it).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{LagConfig, LagMode, PortConfig, Switch, SwitchRegistry, check_vlan};
use crate::driver::noop::detach_vif_from_port;
use crate::driver::{BaseInterface, NetworkInterface, NetworkPhase, PropertyDoc, Task, VifInfo};
use crate::error::{DriverError, ErrorKind};
use crate::model::{JsonMap, Port, Portgroup};
use crate::states::ProvisionState;

/// One network a node can be put on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkDef {
    /// The access VLAN the network is on.
    pub vlan: u16,
    /// The physical network it exists on; ports of another physical network cannot
    /// join it. `None`: every physical network.
    #[serde(default)]
    pub physical_network: Option<String>,
    /// MTU of the ports on it (and of the links in `network_data.json`).
    #[serde(default)]
    pub mtu: Option<u32>,
}

/// The settings of the `switch` network interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwitchNetworkConfig {
    /// Networks by name.
    pub networks: BTreeMap<String, NetworkDef>,
    /// Network of nodes being deployed (required to deploy).
    pub provisioning_network: Option<String>,
    /// Network of nodes being cleaned (default: the provisioning network).
    pub cleaning_network: Option<String>,
    /// Network of nodes being rescued (default: the provisioning network).
    pub rescuing_network: Option<String>,
    /// Network of nodes being inspected in band (default: the provisioning network).
    pub inspection_network: Option<String>,
    /// Network of nodes being serviced (default: the cleaning network).
    pub servicing_network: Option<String>,
    /// Network of nodes at rest (enroll, manageable, available); `None`: their
    /// ports are shut.
    pub idle_network: Option<String>,
}

impl SwitchNetworkConfig {
    /// Every referenced network exists and every VLAN is usable.
    pub fn validate(&self) -> Result<(), DriverError> {
        for (name, n) in &self.networks {
            if name.trim().is_empty() {
                return Err(DriverError::invalid("a network has an empty name"));
            }
            check_vlan(n.vlan, &format!("network {name}: VLAN"))?;
            if let Some(m) = n.mtu
                && !(68..=65535).contains(&m)
            {
                return Err(DriverError::invalid(format!(
                    "network {name}: MTU {m} is out of range (68 to 65535)"
                )));
            }
        }
        for (key, v) in self.phase_keys() {
            if let Some(n) = v
                && !self.networks.contains_key(n)
            {
                return Err(DriverError::invalid(format!(
                    "{key} = {n:?} is not a configured network (known: {})",
                    self.known()
                )));
            }
        }
        Ok(())
    }

    fn phase_keys(&self) -> [(&'static str, &Option<String>); 6] {
        [
            ("provisioning_network", &self.provisioning_network),
            ("cleaning_network", &self.cleaning_network),
            ("rescuing_network", &self.rescuing_network),
            ("inspection_network", &self.inspection_network),
            ("servicing_network", &self.servicing_network),
            ("idle_network", &self.idle_network),
        ]
    }

    fn known(&self) -> String {
        self.networks.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// Where a node's port is wired.
#[derive(Clone, Debug)]
struct Wire {
    switch: Arc<dyn Switch>,
    port_id: String,
}

/// One thing to configure on a switch: a port, or a LAG (and its members).
#[derive(Clone, Debug)]
struct Target {
    switch: Arc<dyn Switch>,
    /// The switch port (or LAG) name.
    name: String,
    /// LAG members and mode when `name` is a LAG.
    lag: Option<LagConfig>,
}

/// The changes to make on one switch.
type SwitchChanges = (Arc<dyn Switch>, Vec<(String, PortConfig)>);

/// What a target should be set to.
#[derive(Clone, Debug, PartialEq)]
enum Want {
    Network(String),
    Shut,
}

/// The `switch` network interface.
#[derive(Clone)]
pub struct SwitchNetwork {
    cfg: Arc<SwitchNetworkConfig>,
    switches: Arc<SwitchRegistry>,
    dhcp: Option<Arc<dyn NetworkInterface>>,
}

impl std::fmt::Debug for SwitchNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwitchNetwork")
            .field("networks", &self.cfg.networks.keys().collect::<Vec<_>>())
            .field("switches", &self.switches)
            .field("dhcp", &self.dhcp.is_some())
            .finish()
    }
}

fn phase_name(p: NetworkPhase) -> &'static str {
    match p {
        NetworkPhase::Provisioning => "provisioning",
        NetworkPhase::Cleaning => "cleaning",
        NetworkPhase::Rescuing => "rescuing",
        NetworkPhase::Inspection => "inspection",
        NetworkPhase::Servicing => "servicing",
    }
}

/// The name of the switch LAG a port group becomes.
pub fn lag_name(pg: &Portgroup) -> String {
    let u = pg.uuid.to_string();
    format!("lag-{}", &u[..8])
}

impl SwitchNetwork {
    /// The name it is registered under.
    pub const NAME: &'static str = "switch";

    /// The interface over `switches` with these networks. Check `cfg` with
    /// [`SwitchNetworkConfig::validate`] first (the application does at start).
    pub fn new(cfg: SwitchNetworkConfig, switches: Arc<SwitchRegistry>) -> Self {
        SwitchNetwork {
            cfg: Arc::new(cfg),
            switches,
            dhcp: None,
        }
    }

    /// Also run a DHCP-providing network interface (e.g. `flat`'s reservations) in
    /// the provisioning/cleaning/... phases: its `add_network` after the switch moved
    /// the ports, its `remove_network` before.
    pub fn with_dhcp(mut self, dhcp: Arc<dyn NetworkInterface>) -> Self {
        self.dhcp = Some(dhcp);
        self
    }

    /// The settings.
    pub fn config(&self) -> &SwitchNetworkConfig {
        &self.cfg
    }

    /// The switches.
    pub fn switches(&self) -> &SwitchRegistry {
        &self.switches
    }

    fn node_override(task: &Task, key: &str) -> Option<String> {
        task.node.driver_info.get_str(key).filter(|s| !s.is_empty())
    }

    /// The network of a phase for this node (`driver_info.<phase>_network` wins).
    pub fn phase_network(&self, task: &Task, phase: NetworkPhase) -> Result<String, DriverError> {
        let key = format!("{}_network", phase_name(phase));
        if let Some(n) = Self::node_override(task, &key) {
            return self.net(&n).map(|_| n);
        }
        let c = &self.cfg;
        let chosen = match phase {
            NetworkPhase::Provisioning => c.provisioning_network.clone(),
            NetworkPhase::Cleaning => c
                .cleaning_network
                .clone()
                .or(c.provisioning_network.clone()),
            NetworkPhase::Rescuing => c
                .rescuing_network
                .clone()
                .or(c.provisioning_network.clone()),
            NetworkPhase::Inspection => c
                .inspection_network
                .clone()
                .or(c.provisioning_network.clone()),
            NetworkPhase::Servicing => c
                .servicing_network
                .clone()
                .or(c.cleaning_network.clone())
                .or(c.provisioning_network.clone()),
        };
        chosen.ok_or_else(|| {
            DriverError::missing(format!(
                "node {}: no {key} is configured for the switch network interface (set it in the switch_network section or in driver_info.{key})",
                task.node.uuid
            ))
        })
    }

    fn idle(&self, task: &Task) -> Want {
        match Self::node_override(task, "idle_network").or(self.cfg.idle_network.clone()) {
            Some(n) => Want::Network(n),
            None => Want::Shut,
        }
    }

    fn net(&self, name: &str) -> Result<&NetworkDef, DriverError> {
        self.cfg.networks.get(name).ok_or_else(|| {
            DriverError::invalid(format!(
                "network {name:?} is not configured (known networks: {})",
                self.cfg.known()
            ))
        })
    }

    /// The physical network of a port: its own, else the one configured for the
    /// switch its `local_link_connection` names.
    fn physnet<'a>(&'a self, port: &'a Port) -> Option<&'a str> {
        port.physical_network.as_deref().or_else(|| {
            self.switches
                .find(&port.local_link_connection)
                .and_then(|(c, _)| c.physical_network.as_deref())
        })
    }

    fn wire(&self, port: &Port) -> Result<Option<Wire>, DriverError> {
        let llc = &port.local_link_connection;
        if llc.is_empty() {
            return Ok(None);
        }
        let port_id = llc
            .get("port_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                DriverError::invalid(format!(
                    "port {} ({}): local_link_connection has no port_id",
                    port.uuid, port.address
                ))
            })?;
        let (_, switch) = self.switches.find(llc).ok_or_else(|| {
            DriverError::invalid(format!(
                "port {} ({}): local_link_connection names no configured switch (switch_info {:?}, switch_id {:?}); configured: {}",
                port.uuid,
                port.address,
                llc.get("switch_info").and_then(Value::as_str).unwrap_or(""),
                llc.get("switch_id").and_then(Value::as_str).unwrap_or(""),
                self.switches.switches().map(|(c, _)| c.name.clone()).collect::<Vec<_>>().join(", ")
            ))
        })?;
        Ok(Some(Wire {
            switch,
            port_id: port_id.to_owned(),
        }))
    }

    /// The switch targets of a node: LAGs for port groups whose bond mode needs one,
    /// single ports otherwise, each with the VIF it carries (port or group).
    /// `strict`: a port without wiring is an error (else it is skipped).
    fn targets(
        &self,
        task: &Task,
        strict: bool,
    ) -> Result<Vec<(Target, Option<String>)>, DriverError> {
        let mut out = Vec::new();
        let mut in_lag = std::collections::BTreeSet::new();
        for pg in &task.portgroups {
            let members: Vec<&Port> = task
                .ports
                .iter()
                .filter(|p| p.portgroup_uuid == Some(pg.uuid))
                .collect();
            let mode = pg.mode.as_deref().unwrap_or("active-backup");
            let lag_mode = LagMode::for_bond_mode(mode)
                .map_err(|e| DriverError::invalid(format!("port group {}: {e}", pg.uuid)))?;
            let vif =
                pg_vif(pg).or_else(|| members.iter().find_map(|p| p.vif()).map(str::to_owned));
            let Some(lag_mode) = lag_mode else {
                // no switch help needed: members are configured one by one below,
                // carrying the group's VIF
                continue;
            };
            if members.is_empty() {
                continue;
            }
            let mut wires = Vec::new();
            for p in &members {
                match self.wire(p)? {
                    Some(w) => wires.push(w),
                    None if strict => return Err(unwired(p)),
                    None => {}
                }
            }
            let Some(first) = wires.first().cloned() else {
                continue;
            };
            if wires.iter().any(|w| w.switch.name() != first.switch.name()) {
                return Err(DriverError::invalid(format!(
                    "port group {}: its ports are wired to different switches; a LAG spanning switches (MLAG) is not supported",
                    pg.uuid
                )));
            }
            for p in &members {
                in_lag.insert(p.uuid);
            }
            out.push((
                Target {
                    switch: first.switch.clone(),
                    name: lag_name(pg),
                    lag: Some(LagConfig::new(
                        lag_mode,
                        wires.iter().map(|w| w.port_id.clone()),
                    )),
                },
                vif,
            ));
        }
        for p in task.ports.iter().filter(|p| !in_lag.contains(&p.uuid)) {
            let Some(w) = self.wire(p)? else {
                if strict {
                    return Err(unwired(p));
                }
                tracing::debug!(node = %task.node.uuid, port = %p.uuid, "port has no local_link_connection; left alone");
                continue;
            };
            let vif = p.vif().map(str::to_owned).or_else(|| {
                p.portgroup_uuid
                    .and_then(|g| task.portgroups.iter().find(|pg| pg.uuid == g))
                    .and_then(pg_vif)
            });
            out.push((
                Target {
                    switch: w.switch,
                    name: w.port_id,
                    lag: None,
                },
                vif,
            ));
        }
        Ok(out)
    }

    fn port_config(&self, want: &Want, task: &Task) -> Result<PortConfig, DriverError> {
        Ok(match want {
            Want::Shut => PortConfig::shut(),
            Want::Network(n) => {
                let net = self.net(n)?;
                PortConfig::access(net.vlan)
                    .with_mtu(net.mtu)
                    .with_description(format!("ironic node {} ({n})", task.node.uuid))
            }
        })
    }

    /// Apply: LAGs first (creating or fixing them), then every port/LAG config, one
    /// `set_ports` call per switch.
    async fn apply(
        &self,
        task: &Task,
        plan: Vec<(Target, Want)>,
        what: &str,
    ) -> Result<(), DriverError> {
        let mut by_switch: BTreeMap<String, SwitchChanges> = BTreeMap::new();
        for (t, want) in &plan {
            if let Some(lag) = &t.lag {
                let have = t
                    .switch
                    .get_lag(&t.name)
                    .await
                    .map_err(|e| self.fail(task, what, &t.switch, e))?;
                if have.as_ref() != Some(lag) {
                    t.switch
                        .set_lag(&t.name, lag)
                        .await
                        .map_err(|e| self.fail(task, what, &t.switch, e))?;
                }
            }
            let c = self.port_config(want, task)?;
            t.switch.validate_port(&t.name, &c)?;
            by_switch
                .entry(t.switch.name().to_owned())
                .or_insert_with(|| (t.switch.clone(), Vec::new()))
                .1
                .push((t.name.clone(), c));
        }
        for (_, (sw, changes)) in by_switch {
            sw.set_ports(&changes)
                .await
                .map_err(|e| self.fail(task, what, &sw, e))?;
            for (p, c) in &changes {
                tracing::info!(node = %task.node.uuid, switch = %sw.name(), port = %p, config = %c, "{what}");
            }
        }
        Ok(())
    }

    fn fail(&self, task: &Task, what: &str, sw: &Arc<dyn Switch>, e: DriverError) -> DriverError {
        DriverError::new(
            e.kind(),
            format!(
                "Failed to {what} for node {} on switch {}: {}",
                task.node.uuid,
                sw.name(),
                e.message()
            ),
        )
        .with_retryable(e.is_retryable())
    }

    /// Put every wired port of the node on `want`.
    async fn move_all(
        &self,
        task: &Task,
        want: Want,
        strict: bool,
        what: &str,
    ) -> Result<(), DriverError> {
        let plan = self
            .targets(task, strict)?
            .into_iter()
            .map(|(t, _)| (t, want.clone()))
            .collect();
        self.apply(task, plan, what).await
    }

    /// The network a port/group with `vif` is on while the node is active.
    fn vif_network(&self, task: &Task, vif: &str) -> Result<String, DriverError> {
        let name = task
            .ports
            .iter()
            .find(|p| p.vif() == Some(vif))
            .and_then(|p| p.internal_info.get("tenant_vif_network"))
            .or_else(|| {
                task.portgroups
                    .iter()
                    .find(|g| pg_vif(g).as_deref() == Some(vif))
                    .and_then(|g| g.internal_info.get("tenant_vif_network"))
            })
            .and_then(Value::as_str)
            .unwrap_or(vif)
            .to_owned();
        self.net(&name).map_err(|_| {
            DriverError::invalid(format!(
                "VIF {vif} of node {} names no configured network ({}); attach VIFs by network name",
                task.node.uuid,
                self.cfg.known()
            ))
        })?;
        Ok(name)
    }

    /// What the node's ports should be on in its current state.
    fn wants_now(&self, task: &Task) -> Result<Vec<(Target, Want)>, DriverError> {
        use ProvisionState as S;
        let phase = match task.node.provision_state {
            S::Cleaning | S::CleanWait => Some(NetworkPhase::Cleaning),
            S::Deploying | S::DeployWait => Some(NetworkPhase::Provisioning),
            S::Inspecting | S::InspectWait => Some(NetworkPhase::Inspection),
            S::Rescuing | S::RescueWait | S::Rescue => Some(NetworkPhase::Rescuing),
            S::Servicing | S::ServiceWait => Some(NetworkPhase::Servicing),
            _ => None,
        };
        let targets = self.targets(task, false)?;
        let mut out = Vec::new();
        for (t, vif) in targets {
            let want = if let Some(p) = phase {
                Want::Network(self.phase_network(task, p)?)
            } else if task.node.provision_state == S::Active {
                match vif {
                    Some(v) => Want::Network(self.vif_network(task, &v)?),
                    None => Want::Shut,
                }
            } else {
                self.idle(task)
            };
            out.push((t, want));
        }
        Ok(out)
    }
}

fn pg_vif(pg: &Portgroup) -> Option<String> {
    pg.internal_info
        .get("tenant_vif_port_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn unwired(p: &Port) -> DriverError {
    DriverError::invalid(format!(
        "port {} ({}) has no local_link_connection: set switch_info (or switch_id) and port_id, or inspect the node so that LLDP fills it",
        p.uuid, p.address
    ))
}

#[async_trait]
impl BaseInterface for SwitchNetwork {
    fn properties(&self) -> Vec<PropertyDoc> {
        vec![
            PropertyDoc::optional(
                "provisioning_network",
                "Network of this node while deploying (overrides the configured one).",
            ),
            PropertyDoc::optional("cleaning_network", "Network of this node while cleaning."),
            PropertyDoc::optional("rescuing_network", "Network of this node while rescuing."),
            PropertyDoc::optional(
                "inspection_network",
                "Network of this node during in-band inspection.",
            ),
            PropertyDoc::optional("servicing_network", "Network of this node while servicing."),
            PropertyDoc::optional(
                "idle_network",
                "Network of this node at rest (else its ports are shut).",
            ),
        ]
    }

    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        for key in [
            "provisioning_network",
            "cleaning_network",
            "rescuing_network",
            "inspection_network",
            "servicing_network",
            "idle_network",
        ] {
            if let Some(n) = Self::node_override(task, key) {
                self.net(&n).map_err(|e| {
                    DriverError::invalid(format!("driver_info.{key}: {}", e.message()))
                })?;
            }
        }
        self.phase_network(task, NetworkPhase::Provisioning)?;
        if let Some(d) = &self.dhcp {
            d.validate(task)?;
        }
        let inspecting = matches!(
            task.node.provision_state,
            ProvisionState::Enroll | ProvisionState::Inspecting | ProvisionState::InspectWait
        );
        // every wired port names a configured switch; outside inspection, ports that
        // carry traffic must be wired
        self.targets(task, false)?;
        if !inspecting {
            for p in task
                .ports
                .iter()
                .filter(|p| p.pxe_enabled || p.vif().is_some())
            {
                if p.local_link_connection.is_empty() {
                    return Err(unwired(p));
                }
            }
        }
        for pg in &task.portgroups {
            let nets: std::collections::BTreeSet<Option<&str>> = task
                .ports
                .iter()
                .filter(|p| p.portgroup_uuid == Some(pg.uuid))
                .map(|p| self.physnet(p))
                .collect();
            if nets.len() > 1 {
                return Err(DriverError::invalid(format!(
                    "port group {}: its ports are on different physical networks ({nets:?})",
                    pg.uuid
                )));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl NetworkInterface for SwitchNetwork {
    async fn port_changed(&self, task: &Task, port: &Port) -> Result<(), DriverError> {
        // put the (new or rewired) port where the node's state says it belongs
        let mut t = task.clone();
        match t.ports.iter_mut().find(|p| p.uuid == port.uuid) {
            Some(p) => *p = port.clone(),
            None => t.ports.push(port.clone()),
        }
        let plan: Vec<(Target, Want)> = self
            .wants_now(&t)?
            .into_iter()
            .filter(|(tg, _)| {
                self.wire(port).ok().flatten().is_some_and(|w| {
                    w.port_id == tg.name
                        || tg
                            .lag
                            .as_ref()
                            .is_some_and(|l| l.members.contains(&w.port_id))
                })
            })
            .collect();
        self.apply(&t, plan, "configure a changed port").await
    }

    async fn portgroup_changed(&self, task: &Task, pg: &Portgroup) -> Result<(), DriverError> {
        let mut t = task.clone();
        match t.portgroups.iter_mut().find(|g| g.uuid == pg.uuid) {
            Some(g) => *g = pg.clone(),
            None => t.portgroups.push(pg.clone()),
        }
        let plan = self.wants_now(&t)?;
        self.apply(&t, plan, "configure a changed port group").await
    }

    async fn vif_attach(&self, task: &mut Task, vif: &VifInfo) -> Result<Port, DriverError> {
        let already = task.ports.iter().any(|p| p.vif() == Some(vif.id.as_str()))
            || task
                .portgroups
                .iter()
                .any(|g| pg_vif(g).as_deref() == Some(vif.id.as_str()));
        if already {
            return Err(DriverError::new(
                ErrorKind::Conflict,
                format!(
                    "Unable to attach VIF {} because it is already attached to node {}",
                    vif.id, task.node.uuid
                ),
            ));
        }
        let network = vif
            .extra
            .get("network")
            .and_then(Value::as_str)
            .unwrap_or(&vif.id)
            .to_owned();
        let net = self.net(&network).map_err(|_| {
            DriverError::invalid(format!(
                "Unable to attach VIF {}: no network named {network:?} (configured: {}); use the network's name as the VIF id or pass network=<name>",
                vif.id,
                self.cfg.known()
            ))
        })?;
        let physnet_ok = |p: Option<&str>| match (&net.physical_network, p) {
            (Some(want), Some(have)) => want == have,
            _ => true,
        };
        let want_port = vif.extra.get("port_uuid").and_then(Value::as_str);
        let want_pg = vif.extra.get("portgroup_uuid").and_then(Value::as_str);
        // Ironic's preference: a free port group, then a free PXE-enabled port, then any
        // free port; all on the network's physical network.
        let pg_free = |g: &Portgroup| {
            pg_vif(g).is_none()
                && task.ports.iter().any(|p| p.portgroup_uuid == Some(g.uuid))
                && task
                    .ports
                    .iter()
                    .filter(|p| p.portgroup_uuid == Some(g.uuid))
                    .all(|p| p.vif().is_none() && physnet_ok(self.physnet(p)))
        };
        let chosen_pg = match (want_port, want_pg) {
            (Some(_), _) => None,
            (None, Some(u)) => Some(
                task.portgroups
                    .iter()
                    .position(|g| g.uuid.to_string() == u)
                    .filter(|i| pg_free(&task.portgroups[*i]))
                    .ok_or_else(|| {
                        DriverError::new(
                            ErrorKind::Conflict,
                            format!("Unable to attach VIF {}: port group {u} is not a free port group of node {} on physical network {:?}", vif.id, task.node.uuid, net.physical_network),
                        )
                    })?,
            ),
            (None, None) => task.portgroups.iter().position(pg_free),
        };
        let uuid = task.node.uuid;
        let now = crate::model::now();
        if let Some(i) = chosen_pg {
            let g = &mut task.portgroups[i];
            g.internal_info
                .insert("tenant_vif_port_id".into(), json!(vif.id));
            g.internal_info
                .insert("tenant_vif_network".into(), json!(network));
            g.updated_at = Some(now);
            let gid = g.uuid;
            if task.node.provision_state == ProvisionState::Active {
                let plan = self.wants_now(task)?;
                self.apply(task, plan, "attach a VIF").await?;
            }
            // the conductor saves the port it gets back; the group changed in the task
            let first = task
                .ports
                .iter()
                .find(|p| p.portgroup_uuid == Some(gid))
                .cloned()
                .ok_or_else(|| DriverError::other("port group without ports"))?;
            return Ok(first);
        }
        let free = |p: &Port| {
            p.vif().is_none()
                && physnet_ok(self.physnet(p))
                && p.portgroup_uuid
                    .and_then(|g| task.portgroups.iter().find(|pg| pg.uuid == g))
                    .is_none_or(|g| g.standalone_ports_supported && pg_vif(g).is_none())
        };
        let idx = match want_port {
            Some(u) => task
                .ports
                .iter()
                .position(|p| p.uuid.to_string() == u && free(p))
                .ok_or_else(|| {
                    DriverError::new(
                        ErrorKind::Conflict,
                        format!("Unable to attach VIF {}: port {u} is not a free port of node {uuid} on physical network {:?}", vif.id, net.physical_network),
                    )
                })?,
            None => task
                .ports
                .iter()
                .position(|p| free(p) && p.pxe_enabled)
                .or_else(|| task.ports.iter().position(free))
                .ok_or_else(|| {
                    DriverError::new(
                        ErrorKind::Conflict,
                        format!(
                            "Unable to attach VIF {}, not enough free physical ports on node {uuid} for network {network} (physical network {:?})",
                            vif.id, net.physical_network
                        ),
                    )
                })?,
        };
        {
            let p = &mut task.ports[idx];
            p.internal_info
                .insert("tenant_vif_port_id".into(), json!(vif.id));
            p.internal_info
                .insert("tenant_vif_network".into(), json!(network));
            p.updated_at = Some(now);
        }
        if task.node.provision_state == ProvisionState::Active {
            let plan = self.wants_now(task)?;
            self.apply(task, plan, "attach a VIF").await?;
        }
        Ok(task.ports[idx].clone())
    }

    fn physical_network_of(&self, port: &Port) -> Option<String> {
        self.physnet(port).map(str::to_owned)
    }

    async fn vif_detach(&self, task: &mut Task, vif_id: &str) -> Result<Port, DriverError> {
        let active = task.node.provision_state == ProvisionState::Active;
        if let Some(i) = task
            .portgroups
            .iter()
            .position(|g| pg_vif(g).as_deref() == Some(vif_id))
        {
            let g = &mut task.portgroups[i];
            g.internal_info.remove("tenant_vif_port_id");
            g.internal_info.remove("tenant_vif_network");
            g.updated_at = Some(crate::model::now());
            let gid = g.uuid;
            if active {
                let plan = self.wants_now(task)?;
                self.apply(task, plan, "detach a VIF").await?;
            }
            return task
                .ports
                .iter()
                .find(|p| p.portgroup_uuid == Some(gid))
                .cloned()
                .ok_or_else(|| DriverError::other("port group without ports"));
        }
        let mut port = detach_vif_from_port(task, vif_id)?;
        port.internal_info.remove("tenant_vif_network");
        if let Some(p) = task.ports.iter_mut().find(|p| p.uuid == port.uuid) {
            p.internal_info.remove("tenant_vif_network");
        }
        if active {
            let plan = self.wants_now(task)?;
            self.apply(task, plan, "detach a VIF").await?;
        }
        Ok(port)
    }

    async fn vif_list(&self, task: &Task) -> Result<Vec<String>, DriverError> {
        let mut v: Vec<String> = task.portgroups.iter().filter_map(pg_vif).collect();
        v.extend(task.ports.iter().filter_map(|p| p.vif().map(str::to_owned)));
        Ok(v)
    }

    async fn add_network(&self, task: &mut Task, phase: NetworkPhase) -> Result<(), DriverError> {
        let net = self.phase_network(task, phase)?;
        let strict = phase != NetworkPhase::Inspection;
        self.move_all(
            task,
            Want::Network(net.clone()),
            strict,
            &format!("add the {} network ({net})", phase_name(phase)),
        )
        .await?;
        if let Some(d) = &self.dhcp {
            d.add_network(task, phase).await?;
        }
        Ok(())
    }

    async fn remove_network(
        &self,
        task: &mut Task,
        phase: NetworkPhase,
    ) -> Result<(), DriverError> {
        if let Some(d) = &self.dhcp {
            d.remove_network(task, phase).await?;
        }
        let want = self.idle(task);
        self.move_all(
            task,
            want,
            false,
            &format!("remove the {} network", phase_name(phase)),
        )
        .await
    }

    async fn configure_tenant_networks(&self, task: &mut Task) -> Result<(), DriverError> {
        let mut plan = Vec::new();
        for (t, vif) in self.targets(task, false)? {
            let want = match vif {
                Some(v) => Want::Network(self.vif_network(task, &v)?),
                None => Want::Shut,
            };
            plan.push((t, want));
        }
        self.apply(task, plan, "configure the tenant networks")
            .await
    }

    async fn unconfigure_tenant_networks(&self, task: &mut Task) -> Result<(), DriverError> {
        let want = self.idle(task);
        self.move_all(task, want, false, "unconfigure the tenant networks")
            .await
    }

    fn get_node_network_data(&self, task: &Task) -> JsonMap {
        if !task.node.network_data.is_empty() {
            return task.node.network_data.clone();
        }
        network_data(self, task)
    }
}

/// `network_data.json` (the OpenStack metadata format cloud-init and Glean read) for
/// the node's VIFs: a `phy` link per port, a `bond` link per port group with a VIF
/// (`bond_mode`, `bond_links`, `bond_miimon`, `bond_xmit_hash_policy`, ... from the
/// group's `mode` and `properties`), and a DHCP network on each VIF's link.
fn network_data(sn: &SwitchNetwork, task: &Task) -> JsonMap {
    let mut links = Vec::new();
    let mut networks = Vec::new();
    let link_id = |p: &Port| {
        p.name
            .clone()
            .unwrap_or_else(|| format!("port-{}", &p.uuid.to_string()[..8]))
    };
    let mtu_of = |vif: &str| {
        sn.vif_network(task, vif)
            .ok()
            .and_then(|n| sn.cfg.networks.get(&n).and_then(|d| d.mtu))
            .unwrap_or(1500)
    };
    let mut net = |link: &str, vif: &str| {
        let name = sn.vif_network(task, vif).unwrap_or_else(|_| vif.to_owned());
        networks.push(json!({
            "id": format!("network{}", networks.len()),
            "type": "ipv4_dhcp",
            "link": link,
            "network_id": name,
        }));
    };
    for pg in &task.portgroups {
        let Some(vif) = pg_vif(pg) else { continue };
        let members: Vec<&Port> = task
            .ports
            .iter()
            .filter(|p| p.portgroup_uuid == Some(pg.uuid))
            .collect();
        if members.is_empty() {
            continue;
        }
        let mtu = mtu_of(&vif);
        for m in &members {
            links.push(json!({"id": link_id(m), "type": "phy", "ethernet_mac_address": m.address.to_string(), "mtu": mtu}));
        }
        let id = pg
            .name
            .clone()
            .unwrap_or_else(|| format!("bond-{}", &pg.uuid.to_string()[..8]));
        let mut bond = json!({
            "id": id,
            "type": "bond",
            "bond_mode": pg.mode.clone().unwrap_or_else(|| "active-backup".into()),
            "bond_links": members.iter().map(|m| link_id(m)).collect::<Vec<_>>(),
            "ethernet_mac_address": pg.address.unwrap_or(members[0].address).to_string(),
            "mtu": mtu,
            "vif_id": vif,
        });
        for (k, v) in &pg.properties {
            let key = if k.starts_with("bond_") {
                k.clone()
            } else {
                format!("bond_{k}")
            };
            bond[key] = v.clone();
        }
        links.push(bond);
        net(&id, &vif);
    }
    for p in &task.ports {
        let Some(vif) = p.vif() else { continue };
        let id = link_id(p);
        links.push(
            json!({"id": id, "type": "phy", "ethernet_mac_address": p.address.to_string(),
                          "mtu": mtu_of(vif), "vif_id": vif}),
        );
        net(&id, vif);
    }
    let mut out = JsonMap::new();
    if links.is_empty() {
        return out;
    }
    out.insert("links".into(), Value::Array(links));
    out.insert("networks".into(), Value::Array(networks));
    out.insert("services".into(), json!([]));
    out
}
