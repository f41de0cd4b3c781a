//! Nodes, ports, port groups, traits, VIFs, validation, maintenance, history.

use std::collections::BTreeMap;

use super::job::Job;
use super::{Conductor, NodeEvent, ValidationResult};
use crate::driver::{Task, VifInfo};
use crate::error::{DriverError, Error, ErrorKind, Result};
use crate::ids::{Ident, PortId, PortgroupId, validate_name};
use crate::model::{HistoryEvent, InterfaceType, Node, Port, Portgroup, validate_trait};
use crate::states::ProvisionState;
use crate::store::{NodeQuery, PortQuery};

/// Ironic's limit on traits per node.
const MAX_TRAITS: usize = 50;

fn check_traits(traits: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in traits {
        validate_trait(t).map_err(Error::Invalid)?;
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    if out.len() > MAX_TRAITS {
        return Err(Error::Invalid(format!(
            "A node can have at most {MAX_TRAITS} traits, {} were given",
            out.len()
        )));
    }
    Ok(out)
}

fn invalid_driver(e: DriverError) -> Error {
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::InvalidParameter => Error::Invalid(e.to_string()),
        _ => Error::Driver(e),
    }
}

impl Conductor {
    /// Create a node: checks the name, the hardware type and the interfaces (filling
    /// empty ones with the hardware type's defaults), and the traits. The node
    /// starts in `enroll` with no reservation.
    pub async fn create_node(&self, node: Node) -> Result<Node> {
        self.create_node_in(node, ProvisionState::Enroll).await
    }

    /// Create a node that starts in `available` rather than `enroll`, as Ironic
    /// does for API clients older than 1.11 (before the `enroll` state existed).
    /// Otherwise as [`Conductor::create_node`].
    pub async fn create_node_available(&self, node: Node) -> Result<Node> {
        self.create_node_in(node, ProvisionState::Available).await
    }

    async fn create_node_in(&self, mut node: Node, initial: ProvisionState) -> Result<Node> {
        self.check_accepting()?;
        if let Some(name) = &node.name {
            validate_name(name).map_err(Error::Invalid)?;
        }
        self.registry()
            .resolve_interfaces(&mut node)
            .map_err(invalid_driver)?;
        node.traits = check_traits(&node.traits)?;
        node.conductor_group = node.conductor_group.to_lowercase();
        node.provision_state = initial;
        node.target_provision_state = None;
        node.target_power_state = None;
        node.reservation = None;
        node.created_at = crate::model::now();
        node.updated_at = None;
        node.provision_updated_at = None;
        node.provision_state_since = Some(node.created_at);
        node.step_started_at = None;
        self.store().create_node(&node).await?;
        tracing::info!(node = %node.uuid, driver = %node.driver, "node created");
        self.emit(NodeEvent::Created { node: node.uuid });
        Ok(node)
    }

    /// A node by UUID or name.
    pub async fn get_node(&self, ident: &Ident) -> Result<Node> {
        Ok(self.store().get_node(ident).await?)
    }

    /// List nodes.
    pub async fn list_nodes(&self, q: &NodeQuery) -> Result<Vec<Node>> {
        Ok(self.store().list_nodes(q).await?)
    }

    /// List nodes shared rather than copied (see [`Store::list_nodes_shared`]):
    /// for callers that only read them.
    ///
    /// [`Store::list_nodes_shared`]: crate::store::Store::list_nodes_shared
    pub async fn list_nodes_shared(&self, q: &NodeQuery) -> Result<Vec<std::sync::Arc<Node>>> {
        Ok(self.store().list_nodes_shared(q).await?)
    }

    /// Apply an updated copy of a node (the API applied a JSON patch to it). Takes
    /// the exclusive lock; only the fields the API may change are copied
    /// (`PATCH_ALLOWED_FIELDS`); refuses while a transition is in progress unless
    /// the state allows updates; re-resolves interfaces when the driver or an
    /// interface changed (`reset_interfaces` resets them to the new hardware type's
    /// defaults).
    pub async fn update_node(&self, node: Node, reset_interfaces: bool) -> Result<Node> {
        self.check_accepting()?;
        let mut job = self.job(&node.uuid.into(), true).await?;
        let r = self.apply_update(&mut job, node, reset_interfaces).await;
        let out = job.node().clone();
        job.finish().await;
        r.map(|()| out)
    }

    async fn apply_update(
        &self,
        job: &mut Job,
        mut new: Node,
        reset_interfaces: bool,
    ) -> Result<()> {
        let old = job.node().clone();
        let uuid = old.uuid;
        let removing_instance_in_maintenance =
            old.maintenance && new.instance_uuid.is_none() && old.instance_uuid.is_some();
        if old.target_provision_state.is_some()
            && !old.provision_state.update_allowed()
            && !removing_instance_in_maintenance
        {
            return Err(Error::Conflict(format!(
                "Node {uuid} can not be updated while a state transition is in progress."
            )));
        }
        if let Some(name) = &new.name {
            validate_name(name).map_err(Error::Invalid)?;
        }
        if let (Some(a), Some(b)) = (&old.instance_uuid, &new.instance_uuid)
            && a != b
        {
            return Err(Error::Conflict(format!(
                "Node {uuid} is associated with instance {a}."
            )));
        }
        // Ironic's _check_update_protected / _check_update_retired: unsetting
        // the flag clears its reason; a reason alone is refused.
        if new.protected != old.protected {
            if !new.protected {
                new.protected_reason = None;
            } else if !matches!(
                old.provision_state,
                ProvisionState::Active | ProvisionState::Rescue
            ) {
                return Err(Error::Conflict(format!(
                    "Node {uuid} can only be made protected in provision states 'active' or 'rescue', the current state is '{}'",
                    old.provision_state
                )));
            }
        }
        if new.protected_reason != old.protected_reason
            && new
                .protected_reason
                .as_deref()
                .is_some_and(|r| !r.is_empty())
            && !new.protected
        {
            return Err(Error::Invalid(
                "The protected_reason field can only be set when protected is True".to_owned(),
            ));
        }
        if new.retired != old.retired {
            if !new.retired {
                new.retired_reason = None;
            } else if old.provision_state == ProvisionState::Available {
                return Err(Error::Conflict(format!(
                    "Node {uuid} can not have 'retired' set in provision state 'available', the current state is '{}'",
                    old.provision_state
                )));
            }
        }
        if new.retired_reason != old.retired_reason
            && new.retired_reason.as_deref().is_some_and(|r| !r.is_empty())
            && !new.retired
        {
            return Err(Error::Invalid(
                "The retired_reason field can only be set when retired is True".to_owned(),
            ));
        }
        let n = job.node_mut();
        n.automated_clean = new.automated_clean;
        n.chassis_uuid = new.chassis_uuid;
        n.conductor_group = new.conductor_group.to_lowercase();
        n.description = new.description;
        n.disable_power_off = new.disable_power_off;
        n.driver_info = new.driver_info;
        n.extra = new.extra;
        n.instance_info = new.instance_info;
        n.instance_name = new.instance_name;
        n.instance_uuid = new.instance_uuid;
        n.lessee = new.lessee;
        n.name = new.name;
        n.network_data = new.network_data;
        n.owner = new.owner;
        n.properties = new.properties;
        n.protected = new.protected;
        n.protected_reason = new.protected_reason;
        n.resource_class = new.resource_class;
        n.retired = new.retired;
        n.retired_reason = new.retired_reason;
        n.shard = new.shard;
        n.parent_node = new.parent_node;
        let maintenance_changed = n.maintenance != new.maintenance;
        n.maintenance = new.maintenance;
        n.maintenance_reason = if new.maintenance {
            new.maintenance_reason
        } else {
            None
        };
        if !n.maintenance {
            n.fault = None;
        }
        let driver_changed = n.driver != new.driver;
        let interfaces_changed = n.interfaces != new.interfaces;
        n.driver = new.driver;
        if reset_interfaces {
            let mut ifaces = new.interfaces.clone();
            for &t in InterfaceType::ALL {
                if old.interfaces.get(t) == new.interfaces.get(t) {
                    ifaces.set(t, "");
                }
            }
            n.interfaces = ifaces;
        } else {
            n.interfaces = new.interfaces;
        }
        if driver_changed || interfaces_changed || reset_interfaces {
            self.registry()
                .resolve_interfaces(n)
                .map_err(invalid_driver)?;
        }
        if let Some(p) = n.parent_node
            && p == uuid
        {
            return Err(Error::Invalid("A node cannot be its own parent".to_owned()));
        }
        job.save().await?;
        let n = job.node();
        tracing::info!(node = %uuid, "node updated");
        self.emit(NodeEvent::Updated { node: uuid });
        if maintenance_changed {
            self.emit(NodeEvent::MaintenanceChanged {
                node: uuid,
                maintenance: n.maintenance,
                reason: n.maintenance_reason.clone(),
            });
        }
        Ok(())
    }

    /// Delete a node (`DELETE_ALLOWED_STATES`, or any state in maintenance; not
    /// while locked, associated with an instance, or protected). Its ports, port
    /// groups and history go with it.
    pub async fn delete_node(&self, ident: &Ident) -> Result<()> {
        self.check_accepting()?;
        let mut job = self.job(ident, true).await?;
        let r = async {
            let n = job.node();
            let uuid = n.uuid;
            // Ironic's order (destroy_node): the instance, then protection,
            // then the state; maintenance lets a broken node go.
            if let Some(i) = &n.instance_uuid
                && !n.maintenance
            {
                return Err(Error::Conflict(format!(
                    "Node {uuid} is associated with instance {i}."
                )));
            }
            if n.protected {
                return Err(Error::Protected(uuid.to_string()));
            }
            if !n.provision_state.delete_allowed() && !n.maintenance {
                return Err(Error::Conflict(format!(
                    "Can not delete node \"{uuid}\" while it is in provision state \"{}\". \
                     Valid provision states to perform deletion are: \
                     \"('manageable', 'enroll', 'adopt failed', 'available')\", \
                     or set the node into maintenance mode",
                    n.provision_state
                )));
            }
            if n.console_enabled {
                let d = job.task.driver()?.clone();
                if let Err(e) = d.console.stop_console(&mut job.task).await {
                    tracing::warn!(node = %uuid, error = %e, "could not stop the console before deleting");
                }
            }
            if let Some(a) = job.node().allocation_uuid {
                let _ = self.store().delete_allocation(a).await;
            }
            self.store().delete_node(uuid).await?;
            Ok(uuid)
        }
        .await;
        job.finish().await;
        let uuid = r?;
        self.inner
            .power_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&uuid);
        tracing::info!(node = %uuid, "node deleted");
        self.emit(NodeEvent::Deleted { node: uuid });
        Ok(())
    }

    /// Switch maintenance on (with a reason) or off (clearing the reason and any fault).
    pub async fn set_maintenance(
        &self,
        ident: &Ident,
        on: bool,
        reason: Option<String>,
    ) -> Result<Node> {
        self.check_accepting()?;
        let mut job = self.job(ident, true).await?;
        let n = job.node_mut();
        n.maintenance = on;
        n.maintenance_reason = if on { reason } else { None };
        if !on {
            n.fault = None;
        }
        let r = job.save().await;
        let node = job.node().clone();
        job.finish().await;
        r?;
        tracing::info!(node = %node.uuid, maintenance = on, "maintenance changed");
        self.emit(NodeEvent::MaintenanceChanged {
            node: node.uuid,
            maintenance: on,
            reason: node.maintenance_reason.clone(),
        });
        Ok(node)
    }

    /// Validate every interface as `GET /v1/nodes/{id}/validate` reports it:
    /// `true`, `false` with the reason, or `None` when the interface does not
    /// support the node. Never contacts the BMC.
    pub async fn validate(
        &self,
        ident: &Ident,
    ) -> Result<BTreeMap<InterfaceType, ValidationResult>> {
        let task = self.shared_task(ident).await?;
        Ok(validate_task(&task))
    }

    async fn with_traits(
        &self,
        ident: &Ident,
        f: impl FnOnce(&mut Vec<String>) -> Result<()>,
    ) -> Result<Node> {
        self.check_accepting()?;
        let mut job = self.job(ident, true).await?;
        let r = async {
            let mut traits = job.node().traits.clone();
            f(&mut traits)?;
            job.node_mut().traits = check_traits(&traits)?;
            job.save().await
        }
        .await;
        let node = job.node().clone();
        job.finish().await;
        r?;
        self.emit(NodeEvent::Updated { node: node.uuid });
        Ok(node)
    }

    /// Replace the node's traits.
    pub async fn set_traits(&self, ident: &Ident, traits: Vec<String>) -> Result<Node> {
        self.with_traits(ident, |t| {
            *t = traits;
            Ok(())
        })
        .await
    }

    /// Add one trait (idempotent).
    pub async fn add_trait(&self, ident: &Ident, t: &str) -> Result<Node> {
        let t = t.to_owned();
        self.with_traits(ident, move |traits| {
            traits.push(t);
            Ok(())
        })
        .await
    }

    /// Remove one trait; `NotFound` if the node does not have it.
    pub async fn remove_trait(&self, ident: &Ident, t: &str) -> Result<Node> {
        let t = t.to_owned();
        let node = ident.to_string();
        self.with_traits(ident, move |traits| {
            let before = traits.len();
            traits.retain(|x| *x != t);
            if traits.len() == before {
                return Err(Error::NotFound {
                    kind: "Trait",
                    ident: format!("{t} of node {node}"),
                });
            }
            Ok(())
        })
        .await
    }

    /// A node's history, oldest first.
    pub async fn history(&self, ident: &Ident) -> Result<Vec<HistoryEvent>> {
        let id = self.node_id(ident).await?;
        self.store().get_node(&id.into()).await?;
        Ok(self.store().list_history(id).await?)
    }

    // ---- VIFs ----

    /// Attach a VIF through the node's network interface.
    pub async fn vif_attach(&self, ident: &Ident, vif: VifInfo) -> Result<()> {
        self.check_accepting()?;
        let mut job = self.job(ident, true).await?;
        let r = async {
            let d = job.task.driver()?.clone();
            let groups = job.task.portgroups.clone();
            let port = d.network.vif_attach(&mut job.task, &vif).await?;
            self.store().update_port(&port).await?;
            self.save_changed_portgroups(&groups, &job.task.portgroups)
                .await?;
            Ok(())
        }
        .await;
        job.finish().await;
        r
    }

    /// Detach a VIF.
    pub async fn vif_detach(&self, ident: &Ident, vif_id: &str) -> Result<()> {
        self.check_accepting()?;
        let mut job = self.job(ident, true).await?;
        let r = async {
            let d = job.task.driver()?.clone();
            let groups = job.task.portgroups.clone();
            let port = d.network.vif_detach(&mut job.task, vif_id).await?;
            self.store().update_port(&port).await?;
            self.save_changed_portgroups(&groups, &job.task.portgroups)
                .await?;
            Ok(())
        }
        .await;
        job.finish().await;
        r
    }

    /// Network interfaces that attach VIFs to port groups record them in the
    /// task's port groups: save those that changed.
    async fn save_changed_portgroups(
        &self,
        before: &[Portgroup],
        after: &[Portgroup],
    ) -> Result<()> {
        for pg in after {
            if before.iter().find(|b| b.uuid == pg.uuid) != Some(pg) {
                self.store().update_portgroup(pg).await?;
            }
        }
        Ok(())
    }

    /// The VIFs attached to a node.
    pub async fn vif_list(&self, ident: &Ident) -> Result<Vec<String>> {
        let task = self.shared_task(ident).await?;
        let d = task.driver()?.clone();
        Ok(d.network.vif_list(&task).await?)
    }

    // ---- ports ----

    /// Create a port: the node must exist and the MAC address be unique; the
    /// node's network interface is told (`port_changed`).
    pub async fn create_port(&self, mut port: Port) -> Result<Port> {
        self.check_accepting()?;
        if let Some(name) = &port.name {
            validate_name(name).map_err(Error::Invalid)?;
        }
        let mut job = self.job(&port.node_uuid.into(), true).await?;
        let r = async {
            self.check_portgroup_of(&port).await?;
            port.created_at = crate::model::now();
            port.updated_at = None;
            self.store().create_port(&port).await?;
            job.task.ports.push(port.clone());
            self.notify_port(&job.task, &port).await;
            Ok(port)
        }
        .await;
        job.finish().await;
        r
    }

    async fn check_portgroup_of(&self, port: &Port) -> Result<()> {
        if let Some(pg) = port.portgroup_uuid {
            let pg = self
                .store()
                .get_portgroup(&Ident::Uuid(pg.0))
                .await
                .map_err(|_| Error::Invalid(format!("Portgroup {pg} does not exist")))?;
            if pg.node_uuid != port.node_uuid {
                return Err(Error::Invalid(format!(
                    "Port group {} belongs to node {}, not to the port's node {}",
                    pg.uuid, pg.node_uuid, port.node_uuid
                )));
            }
        }
        Ok(())
    }

    async fn notify_port(&self, task: &Task, port: &Port) {
        if let Some(d) = &task.driver
            && let Err(e) = d.network.port_changed(task, port).await
        {
            tracing::warn!(node = %task.node.uuid, port = %port.uuid, error = %e, "network interface refused the port change");
        }
    }

    /// Update a port (fields the API may change; `internal_info` is kept), as
    /// Ironic's `update_port`: the address cannot change while the node is
    /// active or has an instance, nor the connectivity fields (port group,
    /// `pxe_enabled`, `local_link_connection`, `physical_network`) outside
    /// enroll, inspecting, inspect wait and manageable, unless the node is in
    /// maintenance.
    pub async fn update_port(&self, mut port: Port) -> Result<Port> {
        self.check_accepting()?;
        let old = self.store().get_port(&Ident::Uuid(port.uuid.0)).await?;
        if let Some(name) = &port.name {
            validate_name(name).map_err(Error::Invalid)?;
        }
        let job = self.job(&old.node_uuid.into(), true).await?;
        let r = async {
            let n = job.node();
            if old.address != port.address
                && (n.provision_state == ProvisionState::Active || n.instance_uuid.is_some())
                && !n.maintenance
            {
                return Err(Error::Conflict(format!(
                    "Cannot update hardware address for port {} as node {} is active or has instance UUID assigned",
                    port.uuid, n.uuid
                )));
            }
            // Ironic's update_port: what connects the port to a network only
            // changes while the node is not in use, or in maintenance.
            let connectivity_changed = old.portgroup_uuid != port.portgroup_uuid
                || old.pxe_enabled != port.pxe_enabled
                || old.local_link_connection != port.local_link_connection
                || old.physical_network != port.physical_network;
            if connectivity_changed
                && !n.maintenance
                && !matches!(
                    n.provision_state,
                    ProvisionState::Enroll
                        | ProvisionState::Inspecting
                        | ProvisionState::InspectWait
                        | ProvisionState::Manageable
                )
            {
                return Err(Error::Conflict(format!(
                    "Port {} can not have any connectivity attributes (portgroup_id, pxe_enabled, \
                     local_link_connection, physical_network) updated unless node {} is in a \
                     enroll, inspecting, inspect wait, manageable state or in maintenance mode. \
                     The current state is {}.",
                    port.uuid, n.uuid, n.provision_state
                )));
            }
            if port.node_uuid != old.node_uuid {
                self.store().get_node(&port.node_uuid.into()).await?;
            }
            self.check_portgroup_of(&port).await?;
            port.internal_info = old.internal_info.clone();
            port.created_at = old.created_at;
            port.updated_at = Some(crate::model::now());
            self.store().update_port(&port).await?;
            self.notify_port(&job.task, &port).await;
            Ok(port)
        }
        .await;
        job.finish().await;
        r
    }

    /// Delete a port; refused while a VIF is attached (unless the node is in
    /// maintenance), as Ironic's `destroy_port`.
    pub async fn delete_port(&self, id: PortId) -> Result<()> {
        self.check_accepting()?;
        let port = self.store().get_port(&Ident::Uuid(id.0)).await?;
        let job = self.job(&port.node_uuid.into(), true).await?;
        let n = job.node();
        let r = if let Some(vif) = port.vif()
            && !n.maintenance
        {
            Err(Error::Conflict(format!(
                "Cannot delete the port {id} as it is bound to VIF {vif} for use."
            )))
        } else {
            self.store().delete_port(id).await.map_err(Error::from)
        };
        job.finish().await;
        r
    }

    /// Create a port group.
    pub async fn create_portgroup(&self, mut pg: Portgroup) -> Result<Portgroup> {
        self.check_accepting()?;
        if let Some(name) = &pg.name {
            validate_name(name).map_err(Error::Invalid)?;
        }
        let job = self.job(&pg.node_uuid.into(), true).await?;
        pg.created_at = crate::model::now();
        pg.updated_at = None;
        let r = self.store().create_portgroup(&pg).await;
        if r.is_ok()
            && let Some(d) = &job.task.driver
            && let Err(e) = d.network.portgroup_changed(&job.task, &pg).await
        {
            tracing::warn!(portgroup = %pg.uuid, error = %e, "network interface refused the port group");
        }
        job.finish().await;
        r?;
        Ok(pg)
    }

    /// Update a port group (`internal_info` is kept).
    pub async fn update_portgroup(&self, mut pg: Portgroup) -> Result<Portgroup> {
        self.check_accepting()?;
        let old = self.store().get_portgroup(&Ident::Uuid(pg.uuid.0)).await?;
        if let Some(name) = &pg.name {
            validate_name(name).map_err(Error::Invalid)?;
        }
        if pg.node_uuid != old.node_uuid {
            return Err(Error::Invalid(
                "A port group cannot be moved to another node".to_owned(),
            ));
        }
        let job = self.job(&pg.node_uuid.into(), true).await?;
        pg.internal_info = old.internal_info;
        pg.created_at = old.created_at;
        pg.updated_at = Some(crate::model::now());
        let r = self.store().update_portgroup(&pg).await;
        if r.is_ok()
            && let Some(d) = &job.task.driver
            && let Err(e) = d.network.portgroup_changed(&job.task, &pg).await
        {
            tracing::warn!(portgroup = %pg.uuid, error = %e, "network interface refused the port group");
        }
        job.finish().await;
        r?;
        Ok(pg)
    }

    /// Delete a port group; refused while ports are in it (Ironic's `PortgroupNotEmpty`).
    pub async fn delete_portgroup(&self, id: PortgroupId) -> Result<()> {
        self.check_accepting()?;
        let pg = self.store().get_portgroup(&Ident::Uuid(id.0)).await?;
        let members = self
            .store()
            .list_ports(&PortQuery {
                portgroup: Some(id),
                ..Default::default()
            })
            .await?;
        if !members.is_empty() {
            return Err(Error::Conflict(format!(
                "Cannot complete the requested action because port group {id} contains ports; remove them first"
            )));
        }
        let job = self.job(&pg.node_uuid.into(), true).await?;
        let r = self.store().delete_portgroup(id).await;
        job.finish().await;
        Ok(r?)
    }
}

/// Validate every interface of a task (no I/O).
pub(crate) fn validate_task(task: &Task) -> BTreeMap<InterfaceType, ValidationResult> {
    let mut out = BTreeMap::new();
    let Some(d) = &task.driver else {
        return out;
    };
    for &t in InterfaceType::ALL {
        // Ironic's no-op interfaces of optional features (no-console,
        // no-rescue, no-bios, ...: its noop.FailMixin) fail validation with
        // UnsupportedDriverExtension, which the report shows as false
        let name = task.node.interfaces.get(t);
        if name.starts_with("no-") {
            out.insert(
                t,
                ValidationResult {
                    result: Some(false),
                    reason: Some(format!(
                        "Driver {} does not support {} (disabled or not implemented).",
                        task.node.driver,
                        t.as_str()
                    )),
                },
            );
            continue;
        }
        let r = d.base(t).validate(task);
        let r = match (t, r) {
            (InterfaceType::Rescue, Ok(())) => d.boot.validate_rescue(task).or_else(|e| {
                if e.kind() == ErrorKind::Unsupported
                    && task.node.interfaces.rescue_interface.starts_with("no-")
                {
                    Ok(())
                } else {
                    Err(e)
                }
            }),
            (_, r) => r,
        };
        let v = match r {
            Ok(()) => ValidationResult {
                result: Some(true),
                reason: None,
            },
            Err(e) if e.kind() == ErrorKind::Unsupported => ValidationResult {
                result: None,
                reason: Some(e.to_string()),
            },
            Err(e) => ValidationResult {
                result: Some(false),
                reason: Some(e.to_string()),
            },
        };
        out.insert(t, v);
    }
    out
}
