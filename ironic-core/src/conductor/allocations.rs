//! Allocations, as Ironic's `conductor/allocations.py`: an allocation is created
//! `allocating` and a worker picks a node in the background (clients poll); a
//! backfill (`node` given) is checked and recorded at once. The node picked gets
//! `instance_uuid` = the allocation's UUID, `allocation_uuid`, and the requested
//! traits in `instance_info.traits` (what the deploy steps of those traits run from).

use rand::seq::SliceRandom;

use super::{Conductor, NodeEvent};
use crate::error::{Error, Result};
use crate::ids::{Ident, NodeId, validate_name};
use crate::model::{Allocation, AllocationState, Node, validate_trait};
use crate::states::ProvisionState;
use crate::store::{NodeFilter, NodeQuery, StoreError};

/// Why an allocation failed (Ironic's `AllocationFailed`).
struct Failed(String);

/// A Python-like rendering of a list of strings (`['A', 'B']`), as Ironic's messages.
fn py_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("[{}]", inner.join(", "))
}

fn traits_match(node: &Node, a: &Allocation) -> bool {
    a.traits.iter().all(|t| node.traits.contains(t))
}

/// Ironic's `_verify_node`: the node still satisfies the request.
fn still_suitable(node: &Node, a: &Allocation) -> bool {
    !node.maintenance
        && node.instance_uuid.is_none()
        && node.allocation_uuid.is_none()
        && node.provision_state == ProvisionState::Available
        && node.resource_class == a.resource_class
        && traits_match(node, a)
}

impl Conductor {
    /// Create an allocation as Ironic does. Without `node_uuid` it is stored
    /// `allocating` and returned at once; a worker then picks a random node among
    /// the available, powered-managed, non-maintenance, unassociated nodes of the
    /// resource class that have all the traits (and are among `candidate_nodes`
    /// and owned or leased by `owner` when given; a node named as the allocation
    /// is tried first), retrying nodes that are locked, and leaves the allocation
    /// `active` with its node or `error` with `last_error`. With `node_uuid` it
    /// backfills that node, which must be `active` and match: the allocation is
    /// returned `active`, or the error is returned (and the allocation kept in
    /// `error`, as Ironic).
    pub async fn create_allocation(&self, mut a: Allocation) -> Result<Allocation> {
        self.check_accepting()?;
        if let Some(n) = &a.name {
            validate_name(n).map_err(Error::Invalid)?;
        }
        for t in &a.traits {
            validate_trait(t).map_err(Error::Invalid)?;
        }
        let backfill = a.node_uuid.take();
        let backfill = match backfill {
            Some(id) => Some(
                self.store()
                    .get_node(&id.into())
                    .await
                    .map_err(|_| Error::Invalid(format!("Node {id} could not be found.")))?,
            ),
            None => None,
        };
        if a.resource_class.as_deref().is_none_or(str::is_empty) {
            match &backfill {
                Some(n) => a.resource_class = n.resource_class.clone(),
                None => {
                    return Err(Error::Invalid(
                        "The resource_class field is mandatory when not backfilling".to_owned(),
                    ));
                }
            }
        }
        let mut candidates = Vec::with_capacity(a.candidate_nodes.len());
        for c in &a.candidate_nodes {
            let n = self
                .store()
                .get_node(&Ident::parse(c))
                .await
                .map_err(|_| Error::Invalid(format!("Node {c} could not be found.")))?;
            candidates.push(n.uuid.to_string());
        }
        a.candidate_nodes = candidates;
        a.state = AllocationState::Allocating;
        a.last_error = None;
        a.conductor_affinity = Some(self.config().host.clone());
        a.created_at = crate::model::now();
        a.updated_at = None;
        self.store().create_allocation(&a).await?;
        match backfill {
            Some(node) => self.backfill_allocation(a, node.uuid).await,
            None => {
                let c = self.clone();
                let work = a.clone();
                self.inner
                    .tracker
                    .spawn(async move { c.do_allocate(work).await });
                Ok(a)
            }
        }
    }

    /// Process an `allocating` allocation (Ironic's `do_allocate`); never fails,
    /// the outcome is in the stored allocation.
    pub(crate) async fn do_allocate(&self, mut a: Allocation) {
        let r = match self.candidate_nodes(&a).await {
            Ok(nodes) => self.allocate_node(&mut a, nodes).await,
            Err(e) => Err(e),
        };
        if let Err(Failed(reason)) = r {
            tracing::error!(allocation = %a.uuid, "{reason}");
            self.allocation_failed(&mut a, reason).await;
        }
    }

    async fn allocation_failed(&self, a: &mut Allocation, reason: String) {
        a.node_uuid = None;
        a.state = AllocationState::Error;
        a.last_error = Some(reason);
        a.updated_at = Some(crate::model::now());
        match self.store().update_allocation(a).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(allocation = %a.uuid, error = %e, "could not save the failed allocation");
            }
        }
    }

    fn failure(a: &Allocation, error: impl std::fmt::Display) -> Failed {
        Failed(format!("Failed to process allocation {}: {error}.", a.uuid))
    }

    /// Ironic's `_candidate_nodes`.
    async fn candidate_nodes(&self, a: &Allocation) -> std::result::Result<Vec<Node>, Failed> {
        let rc = a.resource_class.clone().unwrap_or_default();
        let listed = self
            .store()
            .list_nodes(&NodeQuery {
                filter: NodeFilter {
                    provision_state: Some(vec![ProvisionState::Available]),
                    maintenance: Some(false),
                    associated: Some(false),
                    resource_class: a.resource_class.clone(),
                    ..Default::default()
                },
                ..Default::default()
            })
            .await
            .map_err(|e| {
                Self::failure(a, format!("Unexpected exception during allocation: {e}"))
            })?;
        let mut nodes: Vec<Node> = listed
            .into_iter()
            .filter(|n| {
                n.power_state.is_some()
                    && n.allocation_uuid.is_none()
                    && (a.candidate_nodes.is_empty()
                        || a.candidate_nodes.contains(&n.uuid.to_string()))
                    && a.owner
                        .as_ref()
                        .is_none_or(|o| n.owner.as_ref() == Some(o) || n.lessee.as_ref() == Some(o))
            })
            .collect();
        if nodes.is_empty() {
            return Err(Self::failure(
                a,
                if a.candidate_nodes.is_empty() {
                    format!("no available nodes match the resource class {rc}")
                } else {
                    format!(
                        "none of the requested nodes are available and match the resource class {rc}"
                    )
                },
            ));
        }
        if !a.traits.is_empty() {
            nodes.retain(|n| traits_match(n, a));
            if nodes.is_empty() {
                return Err(Self::failure(
                    a,
                    format!(
                        "no suitable nodes have the requested traits {}",
                        a.traits.join(", ")
                    ),
                ));
            }
        }
        nodes.shuffle(&mut rand::rng());
        // As Ironic (API 1.79): a node whose name is the allocation's name comes first.
        if let Some(name) = &a.name
            && let Some(i) = nodes.iter().position(|n| n.name.as_ref() == Some(name))
        {
            let preferred = nodes.remove(i);
            nodes.insert(0, preferred);
        }
        tracing::debug!(allocation = %a.uuid, count = nodes.len(), "candidate nodes");
        Ok(nodes)
    }

    /// Ironic's `_allocate_node`: try each node; locked ones are tried again
    /// `node_locked_retry_attempts` times `node_locked_retry_interval` apart.
    async fn allocate_node(
        &self,
        a: &mut Allocation,
        mut nodes: Vec<Node>,
    ) -> std::result::Result<(), Failed> {
        let attempts = self.config().node_locked_retry_attempts.max(1);
        for attempt in 1..=attempts {
            let mut retry = Vec::new();
            for n in nodes {
                match self.reserve_for(a, n.uuid, false).await {
                    Ok(true) => return Ok(()),
                    Ok(false) => {}
                    Err(Error::NodeLocked { .. }) => {
                        tracing::debug!(node = %n.uuid, "node locked, trying the next one");
                        retry.push(n);
                    }
                    Err(Error::NotFound {
                        kind: "Allocation", ..
                    }) => {
                        tracing::debug!(allocation = %a.uuid, "allocation deleted while processing");
                        return Ok(());
                    }
                    Err(e) => {
                        tracing::debug!(node = %n.uuid, error = %e, "node not reserved, trying the next one");
                    }
                }
            }
            nodes = retry;
            if nodes.is_empty() || attempt == attempts {
                break;
            }
            tokio::time::sleep(self.config().node_locked_retry_interval).await;
        }
        Err(Self::failure(
            a,
            if nodes.is_empty() {
                "all nodes were filtered out during reservation".to_owned()
            } else {
                format!("could not reserve any of {} suitable nodes", nodes.len())
            },
        ))
    }

    /// Lock `node` and give it to `a` if it still suits (or, for a backfill,
    /// unconditionally: the caller checked). `Ok(false)`: it no longer suits.
    async fn reserve_for(&self, a: &mut Allocation, node: NodeId, backfill: bool) -> Result<bool> {
        let mut job = self.job(&node.into(), backfill).await?;
        let r = async {
            if !backfill && !still_suitable(job.node(), a) {
                return Ok(false);
            }
            // The allocation may have been deleted meanwhile.
            let current = self.store().get_allocation(&Ident::Uuid(a.uuid.0)).await?;
            let n = job.node();
            if let Some(inst) = &n.instance_uuid
                && *inst != a.uuid.to_string()
            {
                return Err(Error::Conflict(format!(
                    "Node {} is associated with instance {inst}.",
                    n.uuid
                )));
            }
            if let Some(other) = n.allocation_uuid
                && other != a.uuid
            {
                return Err(Error::Conflict(format!(
                    "Node {} already has allocation {other}.",
                    n.uuid
                )));
            }
            let n = job.node_mut();
            n.instance_uuid = Some(a.uuid.to_string());
            n.allocation_uuid = Some(a.uuid);
            n.instance_info.insert(
                "traits".to_owned(),
                serde_json::Value::from(a.traits.clone()),
            );
            job.save().await?;
            a.name = current.name;
            a.extra = current.extra;
            a.owner = current.owner;
            a.state = AllocationState::Active;
            a.node_uuid = Some(node);
            a.last_error = None;
            a.updated_at = Some(crate::model::now());
            if let Err(e) = self.store().update_allocation(a).await {
                // Deleted between the check and now: give the node back.
                let n = job.node_mut();
                n.instance_uuid = None;
                n.allocation_uuid = None;
                n.instance_info.remove("traits");
                job.save().await?;
                return Err(e.into());
            }
            Ok(true)
        }
        .await;
        job.finish().await;
        if matches!(r, Ok(true)) {
            tracing::info!(allocation = %a.uuid, node = %node, "node reserved for allocation");
            self.emit(NodeEvent::Updated { node });
        }
        r
    }

    /// Ironic's `backfill_allocation`: record an allocation for a node deployed
    /// without one.
    async fn backfill_allocation(&self, mut a: Allocation, node: NodeId) -> Result<Allocation> {
        let n = self.store().get_node(&node.into()).await?;
        let mut errors = Vec::new();
        if n.provision_state != ProvisionState::Active {
            errors.push(format!(
                "Node must be in the \"active\" state, but the current state is \"{}\"",
                n.provision_state
            ));
        }
        if a.resource_class.is_some() && n.resource_class != a.resource_class {
            errors.push(format!(
                "Resource class {} does not match the requested resource class {}",
                n.resource_class.as_deref().unwrap_or("None"),
                a.resource_class.as_deref().unwrap_or("None")
            ));
        }
        if !a.traits.is_empty() && !traits_match(&n, &a) {
            errors.push(format!(
                "List of traits {} does not match the requested traits {}",
                py_list(&n.traits),
                py_list(&a.traits)
            ));
        }
        if !a.candidate_nodes.is_empty() && !a.candidate_nodes.contains(&n.uuid.to_string()) {
            errors.push(format!(
                "Candidate nodes must be empty or contain the target node, but got {}",
                py_list(&a.candidate_nodes)
            ));
        }
        let outcome = if errors.is_empty() {
            self.reserve_for(&mut a, node, true).await.map(|_| ())
        } else {
            Err(Error::Invalid(
                Self::failure(
                    &a,
                    format!(
                        "Cannot backfill an allocation for node {}: {}",
                        n.uuid,
                        errors.join("; ")
                    ),
                )
                .0,
            ))
        };
        match outcome {
            Ok(()) => Ok(a),
            Err(e) => {
                let reason = e.to_string();
                tracing::error!(allocation = %a.uuid, "{reason}");
                self.allocation_failed(&mut a, reason).await;
                Err(e)
            }
        }
    }

    /// Pick up allocations a stopped conductor left `allocating` (Ironic's
    /// `_resume_allocations`, at start).
    pub(crate) async fn resume_allocations(&self) -> Result<()> {
        for a in self.store().list_allocations().await? {
            if a.state == AllocationState::Allocating
                && a.conductor_affinity
                    .as_ref()
                    .is_none_or(|h| *h == self.config().host)
            {
                tracing::info!(allocation = %a.uuid, "resuming allocation");
                let c = self.clone();
                self.inner
                    .tracker
                    .spawn(async move { c.do_allocate(a).await });
            }
        }
        Ok(())
    }

    /// Delete an allocation, freeing its node (refused while the node is `active`
    /// unless it is in maintenance, as in Ironic).
    pub async fn delete_allocation(&self, ident: &Ident) -> Result<()> {
        self.check_accepting()?;
        let a = self.store().get_allocation(ident).await?;
        if let Some(n) = a.node_uuid {
            match self.job(&n.into(), true).await {
                Ok(mut job) => {
                    let r = async {
                        let node = job.node();
                        if node.provision_state == ProvisionState::Active && !node.maintenance {
                            return Err(Error::InvalidState {
                                action: "delete allocation".to_owned(),
                                node: node.uuid.to_string(),
                                state: node.provision_state.to_string(),
                            });
                        }
                        let node = job.node_mut();
                        if node.allocation_uuid == Some(a.uuid) {
                            node.allocation_uuid = None;
                            if node.instance_uuid.as_deref() == Some(a.uuid.to_string().as_str()) {
                                node.instance_uuid = None;
                            }
                            job.save().await?;
                        }
                        Ok(())
                    }
                    .await;
                    job.finish().await;
                    r?;
                }
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.store().delete_allocation(a.uuid).await?;
        Ok(())
    }
}
