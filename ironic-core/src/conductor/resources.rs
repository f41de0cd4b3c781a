//! The resources beside nodes: chassis, deploy templates, allocations (updates),
//! volume connectors and targets, runbooks.
//!
//! Every API write of them goes through these methods, so they are validated in
//! one place, take the node's lock where Ironic's conductor does (volume
//! connector/target updates and deletions), and are announced on
//! [`Conductor::subscribe_resources`].

use super::{Conductor, NodeEvent, ResourceAction, ResourceEvent, ResourceKind};
use crate::error::{Error, Result};
use crate::ids::{
    ChassisId, Ident, InspectionRuleId, NodeId, VolumeConnectorId, VolumeTargetId, validate_name,
};
use crate::model::{
    Allocation, Chassis, DeployTemplate, InspectionRule, InterfaceType, Node, Runbook,
    VolumeConnector, VolumeTarget, validate_trait,
};
use crate::states::PowerState;
use crate::store::{NodeFilter, NodeQuery, Page};

/// Ironic's limit on `description` and similar free text.
const MAX_DESCRIPTION: usize = 255;

fn check_description(d: Option<&str>) -> Result<()> {
    if d.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
        return Err(Error::Invalid(format!(
            "Invalid description: longer than {MAX_DESCRIPTION} characters"
        )));
    }
    Ok(())
}

/// The node of a volume connector/target being created: it must exist (a missing
/// node is bad input, 400, as in Ironic).
async fn node_for_volume(c: &Conductor, node: NodeId) -> Result<Node> {
    c.store().get_node(&node.into()).await.map_err(|e| match e {
        crate::store::StoreError::NotFound { .. } => {
            Error::Invalid(format!("Node {node} could not be found."))
        }
        other => other.into(),
    })
}

/// Ironic's rule for changing a node's volume configuration: the node must be
/// powered off (deletion is also allowed in the states a node may be deleted in).
fn check_volume_change(node: &Node, action: &str, deleting: bool) -> Result<()> {
    if deleting && node.provision_state.delete_allowed() {
        return Ok(());
    }
    if node.power_state != Some(PowerState::Off) {
        return Err(Error::InvalidState {
            action: action.to_owned(),
            node: node.uuid.to_string(),
            state: node
                .power_state
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "None".to_owned()),
        });
    }
    Ok(())
}

fn check_connector(c: &VolumeConnector) -> Result<()> {
    if !VolumeConnector::TYPES.contains(&c.connector_type.as_str()) {
        return Err(Error::Invalid(format!(
            "Invalid connector type {:?}: expected one of {}",
            c.connector_type,
            VolumeConnector::TYPES.join(", ")
        )));
    }
    if c.connector_id.trim().is_empty() {
        return Err(Error::Invalid(
            "A volume connector needs a connector_id".to_owned(),
        ));
    }
    Ok(())
}

fn check_target(t: &VolumeTarget) -> Result<()> {
    if t.volume_type.trim().is_empty() {
        return Err(Error::Invalid(
            "A volume target needs a volume_type".to_owned(),
        ));
    }
    if t.volume_id.trim().is_empty() {
        return Err(Error::Invalid(
            "A volume target needs a volume_id".to_owned(),
        ));
    }
    Ok(())
}

fn check_template(t: &DeployTemplate) -> Result<()> {
    validate_trait(&t.name).map_err(Error::Invalid)?;
    if t.steps.is_empty() {
        return Err(Error::Invalid(
            "A deploy template needs at least one step".to_owned(),
        ));
    }
    for s in &t.steps {
        if s.interface.parse::<InterfaceType>().is_err() {
            return Err(Error::Invalid(format!(
                "Invalid step interface {:?}",
                s.interface
            )));
        }
        if s.step.is_empty() {
            return Err(Error::Invalid("A step needs a name".to_owned()));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for s in t.steps.iter().filter(|s| s.priority > 0) {
        if !seen.insert((&s.interface, &s.step)) {
            return Err(Error::Invalid(format!(
                "Duplicate deploy step {}.{} in deploy template {}",
                s.interface, s.step, t.name
            )));
        }
    }
    Ok(())
}

fn check_runbook(r: &Runbook) -> Result<()> {
    // a trait name (API < 1.112) or, from 1.112, any name usable in a URL path
    let name_ok = !r.name.is_empty()
        && r.name.chars().count() <= 255
        && r.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'));
    if !name_ok {
        return Err(Error::Invalid(format!(
            "Invalid runbook name {:?}: 1-255 letters, digits, '-', '.', '_' or '~'",
            r.name
        )));
    }
    for t in &r.traits {
        validate_trait(t).map_err(Error::Invalid)?;
    }
    check_description(r.description.as_deref())?;
    if r.steps.is_empty() {
        return Err(Error::Invalid(
            "A runbook needs at least one step".to_owned(),
        ));
    }
    for s in &r.steps {
        if s.interface.parse::<InterfaceType>().is_err() {
            return Err(Error::Invalid(format!(
                "Invalid step interface {:?}",
                s.interface
            )));
        }
        if s.step.is_empty() {
            return Err(Error::Invalid("A step needs a name".to_owned()));
        }
    }
    for t in &r.traits {
        validate_trait(t).map_err(Error::Invalid)?;
    }
    Ok(())
}

impl Conductor {
    fn announce(&self, kind: ResourceKind, uuid: uuid::Uuid, action: ResourceAction) {
        tracing::info!(kind = kind.as_str(), uuid = %uuid, action = action.as_str(), "resource changed");
        self.emit_resource(ResourceEvent { kind, uuid, action });
    }

    // ---- chassis ----

    /// Create a chassis.
    pub async fn create_chassis(&self, mut c: Chassis) -> Result<Chassis> {
        self.check_accepting()?;
        check_description(c.description.as_deref())?;
        c.created_at = crate::model::now();
        c.updated_at = None;
        self.store().create_chassis(&c).await?;
        self.announce(ResourceKind::Chassis, c.uuid.0, ResourceAction::Created);
        Ok(c)
    }

    /// A chassis.
    pub async fn get_chassis(&self, id: ChassisId) -> Result<Chassis> {
        Ok(self.store().get_chassis(id).await?)
    }

    /// Every chassis, in creation order.
    pub async fn list_chassis(&self) -> Result<Vec<Chassis>> {
        Ok(self.store().list_chassis().await?)
    }

    /// Apply an updated copy of a chassis (`description`, `extra`).
    pub async fn update_chassis(&self, c: Chassis) -> Result<Chassis> {
        self.check_accepting()?;
        check_description(c.description.as_deref())?;
        let mut stored = self.store().get_chassis(c.uuid).await?;
        stored.description = c.description;
        stored.extra = c.extra;
        stored.updated_at = Some(crate::model::now());
        self.store().update_chassis(&stored).await?;
        self.announce(
            ResourceKind::Chassis,
            stored.uuid.0,
            ResourceAction::Updated,
        );
        Ok(stored)
    }

    /// Delete a chassis; refused while nodes are in it (Ironic's `ChassisNotEmpty`).
    pub async fn delete_chassis(&self, id: ChassisId) -> Result<()> {
        self.check_accepting()?;
        self.store().get_chassis(id).await?;
        let members = self
            .store()
            .list_nodes(&NodeQuery {
                filter: NodeFilter {
                    chassis_uuid: Some(id),
                    ..NodeFilter::default()
                },
                page: Page {
                    limit: Some(1),
                    ..Page::default()
                },
            })
            .await?;
        if !members.is_empty() {
            return Err(Error::Invalid(format!(
                "Cannot complete the requested action because chassis {id} contains nodes."
            )));
        }
        self.store().delete_chassis(id).await?;
        self.announce(ResourceKind::Chassis, id.0, ResourceAction::Deleted);
        Ok(())
    }

    // ---- deploy templates ----

    /// Create a deploy template: its name is a trait, it has at least one step, each
    /// on a known interface, and no step twice.
    pub async fn create_deploy_template(&self, mut t: DeployTemplate) -> Result<DeployTemplate> {
        self.check_accepting()?;
        check_template(&t)?;
        t.created_at = crate::model::now();
        t.updated_at = None;
        self.store().create_deploy_template(&t).await?;
        self.announce(
            ResourceKind::DeployTemplate,
            t.uuid.0,
            ResourceAction::Created,
        );
        Ok(t)
    }

    /// A deploy template by UUID or name.
    pub async fn get_deploy_template(&self, ident: &Ident) -> Result<DeployTemplate> {
        Ok(self.store().get_deploy_template(ident).await?)
    }

    /// Every deploy template, in creation order.
    pub async fn list_deploy_templates(&self) -> Result<Vec<DeployTemplate>> {
        Ok(self.store().list_deploy_templates().await?)
    }

    /// Apply an updated copy of a deploy template (`name`, `steps`, `extra`).
    pub async fn update_deploy_template(&self, t: DeployTemplate) -> Result<DeployTemplate> {
        self.check_accepting()?;
        check_template(&t)?;
        let mut stored = self
            .store()
            .get_deploy_template(&Ident::Uuid(t.uuid.0))
            .await?;
        stored.name = t.name;
        stored.steps = t.steps;
        stored.extra = t.extra;
        stored.updated_at = Some(crate::model::now());
        self.store().update_deploy_template(&stored).await?;
        self.announce(
            ResourceKind::DeployTemplate,
            stored.uuid.0,
            ResourceAction::Updated,
        );
        Ok(stored)
    }

    /// Delete a deploy template.
    pub async fn delete_deploy_template(&self, ident: &Ident) -> Result<()> {
        self.check_accepting()?;
        let t = self.store().get_deploy_template(ident).await?;
        self.store().delete_deploy_template(t.uuid).await?;
        self.announce(
            ResourceKind::DeployTemplate,
            t.uuid.0,
            ResourceAction::Deleted,
        );
        Ok(())
    }

    // ---- allocations (creation and deletion are in `allocations.rs`) ----

    /// An allocation by UUID or name.
    pub async fn get_allocation(&self, ident: &Ident) -> Result<Allocation> {
        Ok(self.store().get_allocation(ident).await?)
    }

    /// Every allocation, in creation order.
    pub async fn list_allocations(&self) -> Result<Vec<Allocation>> {
        Ok(self.store().list_allocations().await?)
    }

    /// Apply an updated copy of an allocation: only `name`, `extra` and `owner` may
    /// change (Ironic's `PATCH /v1/allocations/{id}`); the rest is kept as stored.
    pub async fn update_allocation(&self, a: Allocation) -> Result<Allocation> {
        self.check_accepting()?;
        if let Some(n) = &a.name {
            validate_name(n).map_err(Error::Invalid)?;
        }
        let mut stored = self.store().get_allocation(&Ident::Uuid(a.uuid.0)).await?;
        stored.name = a.name;
        stored.extra = a.extra;
        stored.owner = a.owner;
        stored.updated_at = Some(crate::model::now());
        self.store().update_allocation(&stored).await?;
        self.announce(
            ResourceKind::Allocation,
            stored.uuid.0,
            ResourceAction::Updated,
        );
        Ok(stored)
    }

    // ---- volume connectors ----

    /// Create a volume connector: the node must exist, the type be one of
    /// [`VolumeConnector::TYPES`], and `(type, connector_id)` be unused. As in Ironic,
    /// creation needs no lock and no particular power state.
    pub async fn create_volume_connector(&self, mut c: VolumeConnector) -> Result<VolumeConnector> {
        self.check_accepting()?;
        check_connector(&c)?;
        node_for_volume(self, c.node_uuid).await?;
        c.created_at = crate::model::now();
        c.updated_at = None;
        self.store().create_volume_connector(&c).await?;
        self.announce(
            ResourceKind::VolumeConnector,
            c.uuid.0,
            ResourceAction::Created,
        );
        self.emit(NodeEvent::Updated { node: c.node_uuid });
        Ok(c)
    }

    /// A volume connector.
    pub async fn get_volume_connector(&self, id: VolumeConnectorId) -> Result<VolumeConnector> {
        Ok(self.store().get_volume_connector(id).await?)
    }

    /// Volume connectors, of one node or all, in creation order.
    pub async fn list_volume_connectors(
        &self,
        node: Option<&Ident>,
    ) -> Result<Vec<VolumeConnector>> {
        let node = match node {
            Some(n) => Some(self.store().get_node(n).await?.uuid),
            None => None,
        };
        Ok(self.store().list_volume_connectors(node).await?)
    }

    /// Lock the node(s) of a volume change and check each is powered off; run
    /// `write` under the locks.
    async fn under_volume_locks<T>(
        &self,
        nodes: &[NodeId],
        action: &str,
        deleting: bool,
        write: impl AsyncFnOnce() -> Result<T>,
    ) -> Result<T> {
        let mut jobs = Vec::new();
        let mut r = Ok(());
        for n in nodes {
            if jobs.iter().any(|j: &super::job::Job| j.node().uuid == *n) {
                continue;
            }
            match self.job(&(*n).into(), true).await {
                Ok(job) => {
                    let checked = check_volume_change(job.node(), action, deleting);
                    jobs.push(job);
                    if let Err(e) = checked {
                        r = Err(e);
                        break;
                    }
                }
                Err(Error::NotFound { .. }) if jobs.is_empty() => {
                    r = Err(Error::Invalid(format!("Node {n} could not be found.")));
                    break;
                }
                Err(e) => {
                    r = Err(e);
                    break;
                }
            }
        }
        let out = match r {
            Ok(()) => write().await,
            Err(e) => Err(e),
        };
        for job in jobs {
            job.finish().await;
        }
        out
    }

    /// Apply an updated copy of a volume connector (`node_uuid`, `type`,
    /// `connector_id`, `extra`). Takes the lock of its node (and of the node it moves
    /// to); refused unless they are powered off, as in Ironic.
    pub async fn update_volume_connector(&self, c: VolumeConnector) -> Result<VolumeConnector> {
        self.check_accepting()?;
        check_connector(&c)?;
        let mut stored = self.store().get_volume_connector(c.uuid).await?;
        let nodes = [stored.node_uuid, c.node_uuid];
        let out = self
            .under_volume_locks(&nodes, "volume connector update", false, async || {
                stored.node_uuid = c.node_uuid;
                stored.connector_type = c.connector_type;
                stored.connector_id = c.connector_id;
                stored.extra = c.extra;
                stored.updated_at = Some(crate::model::now());
                self.store().update_volume_connector(&stored).await?;
                Ok(stored)
            })
            .await?;
        self.announce(
            ResourceKind::VolumeConnector,
            out.uuid.0,
            ResourceAction::Updated,
        );
        for n in nodes {
            self.emit(NodeEvent::Updated { node: n });
        }
        Ok(out)
    }

    /// Delete a volume connector, under its node's lock; refused unless the node is
    /// powered off or in a state it may be deleted in.
    pub async fn delete_volume_connector(&self, id: VolumeConnectorId) -> Result<()> {
        self.check_accepting()?;
        let c = self.store().get_volume_connector(id).await?;
        self.under_volume_locks(
            &[c.node_uuid],
            "volume connector deletion",
            true,
            async || Ok(self.store().delete_volume_connector(id).await?),
        )
        .await?;
        self.announce(ResourceKind::VolumeConnector, id.0, ResourceAction::Deleted);
        self.emit(NodeEvent::Updated { node: c.node_uuid });
        Ok(())
    }

    // ---- volume targets ----

    /// Create a volume target: the node must exist, `volume_type` and `volume_id`
    /// be set, and the boot index be unused on the node.
    pub async fn create_volume_target(&self, mut t: VolumeTarget) -> Result<VolumeTarget> {
        self.check_accepting()?;
        check_target(&t)?;
        node_for_volume(self, t.node_uuid).await?;
        t.created_at = crate::model::now();
        t.updated_at = None;
        self.store().create_volume_target(&t).await?;
        self.announce(
            ResourceKind::VolumeTarget,
            t.uuid.0,
            ResourceAction::Created,
        );
        self.emit(NodeEvent::Updated { node: t.node_uuid });
        Ok(t)
    }

    /// A volume target.
    pub async fn get_volume_target(&self, id: VolumeTargetId) -> Result<VolumeTarget> {
        Ok(self.store().get_volume_target(id).await?)
    }

    /// Volume targets, of one node or all, in creation order.
    pub async fn list_volume_targets(&self, node: Option<&Ident>) -> Result<Vec<VolumeTarget>> {
        let node = match node {
            Some(n) => Some(self.store().get_node(n).await?.uuid),
            None => None,
        };
        Ok(self.store().list_volume_targets(node).await?)
    }

    /// Apply an updated copy of a volume target, under the lock of its node(s),
    /// which must be powered off.
    pub async fn update_volume_target(&self, t: VolumeTarget) -> Result<VolumeTarget> {
        self.check_accepting()?;
        check_target(&t)?;
        let mut stored = self.store().get_volume_target(t.uuid).await?;
        let nodes = [stored.node_uuid, t.node_uuid];
        let out = self
            .under_volume_locks(&nodes, "volume target update", false, async || {
                stored.node_uuid = t.node_uuid;
                stored.volume_type = t.volume_type;
                stored.properties = t.properties;
                stored.boot_index = t.boot_index;
                stored.volume_id = t.volume_id;
                stored.extra = t.extra;
                stored.updated_at = Some(crate::model::now());
                self.store().update_volume_target(&stored).await?;
                Ok(stored)
            })
            .await?;
        self.announce(
            ResourceKind::VolumeTarget,
            out.uuid.0,
            ResourceAction::Updated,
        );
        for n in nodes {
            self.emit(NodeEvent::Updated { node: n });
        }
        Ok(out)
    }

    /// Delete a volume target, under its node's lock; refused unless the node is
    /// powered off or in a state it may be deleted in.
    pub async fn delete_volume_target(&self, id: VolumeTargetId) -> Result<()> {
        self.check_accepting()?;
        let t = self.store().get_volume_target(id).await?;
        self.under_volume_locks(&[t.node_uuid], "volume target deletion", true, async || {
            Ok(self.store().delete_volume_target(id).await?)
        })
        .await?;
        self.announce(ResourceKind::VolumeTarget, id.0, ResourceAction::Deleted);
        self.emit(NodeEvent::Updated { node: t.node_uuid });
        Ok(())
    }

    // ---- runbooks ----

    /// Create a runbook: its name (and each of its traits) is a trait, it has at
    /// least one step, each on a known interface.
    pub async fn create_runbook(&self, mut r: Runbook) -> Result<Runbook> {
        self.check_accepting()?;
        check_runbook(&r)?;
        r.created_at = crate::model::now();
        r.updated_at = None;
        self.store().create_runbook(&r).await?;
        self.announce(ResourceKind::Runbook, r.uuid.0, ResourceAction::Created);
        Ok(r)
    }

    /// A runbook by UUID or name.
    pub async fn get_runbook(&self, ident: &Ident) -> Result<Runbook> {
        Ok(self.store().get_runbook(ident).await?)
    }

    /// Every runbook, in creation order.
    pub async fn list_runbooks(&self) -> Result<Vec<Runbook>> {
        Ok(self.store().list_runbooks().await?)
    }

    /// Apply an updated copy of a runbook (everything but `uuid` and `created_at`).
    pub async fn update_runbook(&self, r: Runbook) -> Result<Runbook> {
        self.check_accepting()?;
        check_runbook(&r)?;
        let stored = self.store().get_runbook(&Ident::Uuid(r.uuid.0)).await?;
        let updated = Runbook {
            created_at: stored.created_at,
            updated_at: Some(crate::model::now()),
            ..r
        };
        self.store().update_runbook(&updated).await?;
        self.announce(
            ResourceKind::Runbook,
            updated.uuid.0,
            ResourceAction::Updated,
        );
        Ok(updated)
    }

    /// Delete a runbook.
    pub async fn delete_runbook(&self, ident: &Ident) -> Result<()> {
        self.check_accepting()?;
        let r = self.store().get_runbook(ident).await?;
        self.store().delete_runbook(r.uuid).await?;
        self.announce(ResourceKind::Runbook, r.uuid.0, ResourceAction::Deleted);
        Ok(())
    }

    // ---- inspection rules ----

    /// Create an inspection rule (validated as Ironic's `validate_rule`: phase,
    /// priority 0..=9999, the arguments of every operator and action).
    pub async fn create_inspection_rule(&self, mut r: InspectionRule) -> Result<InspectionRule> {
        self.check_accepting()?;
        crate::inspection_rules::validate_rule(&r, false).map_err(Error::Invalid)?;
        r.created_at = crate::model::now();
        r.updated_at = None;
        self.store().create_inspection_rule(&r).await?;
        self.announce(
            ResourceKind::InspectionRule,
            r.uuid.0,
            ResourceAction::Created,
        );
        Ok(r)
    }

    /// An inspection rule.
    pub async fn get_inspection_rule(&self, id: InspectionRuleId) -> Result<InspectionRule> {
        Ok(self.store().get_inspection_rule(id).await?)
    }

    /// Every stored inspection rule, in creation order (the built-in ones are in
    /// [`ConductorConfig::inspection_rules`](crate::conductor::ConductorConfig::inspection_rules)).
    pub async fn list_inspection_rules(&self) -> Result<Vec<InspectionRule>> {
        Ok(self.store().list_inspection_rules().await?)
    }

    /// Apply an updated copy of an inspection rule (everything but `uuid` and
    /// `created_at`); a sensitive rule stays sensitive.
    pub async fn update_inspection_rule(&self, r: InspectionRule) -> Result<InspectionRule> {
        self.check_accepting()?;
        crate::inspection_rules::validate_rule(&r, false).map_err(Error::Invalid)?;
        let stored = self.store().get_inspection_rule(r.uuid).await?;
        if stored.sensitive && !r.sensitive {
            return Err(Error::Invalid(
                "Inspection rules cannot have the sensitive flag unset.".to_owned(),
            ));
        }
        let updated = InspectionRule {
            created_at: stored.created_at,
            updated_at: Some(crate::model::now()),
            ..r
        };
        self.store().update_inspection_rule(&updated).await?;
        self.announce(
            ResourceKind::InspectionRule,
            updated.uuid.0,
            ResourceAction::Updated,
        );
        Ok(updated)
    }

    /// Delete an inspection rule.
    pub async fn delete_inspection_rule(&self, id: InspectionRuleId) -> Result<()> {
        self.check_accepting()?;
        self.store().delete_inspection_rule(id).await?;
        self.announce(ResourceKind::InspectionRule, id.0, ResourceAction::Deleted);
        Ok(())
    }
}
