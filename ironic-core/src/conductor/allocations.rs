//! Allocations: pick an available node matching a resource class and traits.

use rand::seq::SliceRandom;

use super::{Conductor, NodeEvent};
use crate::error::{Error, Result};
use crate::ids::{Ident, NodeId, validate_name};
use crate::model::{Allocation, AllocationState, Node, validate_trait};
use crate::states::ProvisionState;
use crate::store::{NodeFilter, NodeQuery};

fn eligible(node: &Node, a: &Allocation, backfill: bool) -> bool {
    let state_ok = node.provision_state == ProvisionState::Available
        || (backfill && node.provision_state == ProvisionState::Active);
    state_ok
        && !node.maintenance
        && node.allocation_uuid.is_none()
        && (node.instance_uuid.is_none() || backfill)
        && a.resource_class
            .as_ref()
            .is_none_or(|rc| node.resource_class.as_ref() == Some(rc))
        && a.traits.iter().all(|t| node.traits.contains(t))
}

impl Conductor {
    /// Create an allocation and try to fulfil it at once: a random node among the
    /// available, non-maintenance, unassociated nodes with the resource class, all
    /// the traits and (if given) among `candidate_nodes` gets `instance_uuid` and
    /// `allocation_uuid` set. Returns the allocation `active` with its node, or in
    /// `error` with `last_error` when nothing matched. With `node_uuid` set it
    /// backfills that node (which may be `active`).
    pub async fn create_allocation(&self, mut a: Allocation) -> Result<Allocation> {
        self.check_accepting()?;
        if let Some(n) = &a.name {
            validate_name(n).map_err(Error::Invalid)?;
        }
        for t in &a.traits {
            validate_trait(t).map_err(Error::Invalid)?;
        }
        let backfill = a.node_uuid;
        if a.resource_class.as_deref().is_none_or(str::is_empty) && backfill.is_none() {
            return Err(Error::Invalid(
                "An allocation needs a resource_class".to_owned(),
            ));
        }
        let mut candidates: Vec<NodeId> = Vec::new();
        for c in &a.candidate_nodes {
            let n = self
                .store()
                .get_node(&Ident::parse(c))
                .await
                .map_err(|_| Error::Invalid(format!("Candidate node {c} does not exist")))?;
            candidates.push(n.uuid);
        }
        a.state = AllocationState::Allocating;
        a.node_uuid = None;
        a.last_error = None;
        a.created_at = crate::model::now();
        self.store().create_allocation(&a).await?;

        let mut pool: Vec<Node> = match backfill {
            Some(id) => vec![self.store().get_node(&id.into()).await?],
            None => {
                self.store()
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
                    .await?
            }
        };
        pool.retain(|n| {
            eligible(n, &a, backfill.is_some())
                && (candidates.is_empty() || candidates.contains(&n.uuid))
        });
        pool.shuffle(&mut rand::rng());
        // As Ironic (API 1.79): a node whose name is the allocation's name is tried first.
        if let Some(name) = &a.name
            && let Some(i) = pool.iter().position(|n| n.name.as_ref() == Some(name))
        {
            let preferred = pool.remove(i);
            pool.insert(0, preferred);
        }
        for n in pool {
            let Ok(mut job) = self.job(&n.uuid.into(), false).await else {
                continue;
            };
            if !eligible(job.node(), &a, backfill.is_some()) {
                job.finish().await;
                continue;
            }
            let node = job.node_mut();
            if node.instance_uuid.is_none() {
                node.instance_uuid = Some(a.uuid.to_string());
            }
            node.allocation_uuid = Some(a.uuid);
            let saved = job.save().await;
            job.finish().await;
            if let Err(e) = saved {
                tracing::warn!(node = %n.uuid, error = %e, "could not allocate node; trying another");
                continue;
            }
            a.state = AllocationState::Active;
            a.node_uuid = Some(n.uuid);
            a.updated_at = Some(crate::model::now());
            self.store().update_allocation(&a).await?;
            tracing::info!(allocation = %a.uuid, node = %n.uuid, "allocation fulfilled");
            self.emit(NodeEvent::Updated { node: n.uuid });
            return Ok(a);
        }
        a.state = AllocationState::Error;
        a.last_error = Some(format!(
            "Failed to process allocation {}: no available nodes match the resource class {}{}{}",
            a.uuid,
            a.resource_class.as_deref().unwrap_or("(any)"),
            if a.traits.is_empty() {
                String::new()
            } else {
                format!(" and traits {}", a.traits.join(", "))
            },
            if candidates.is_empty() {
                String::new()
            } else {
                " among the candidate nodes".to_owned()
            }
        ));
        a.updated_at = Some(crate::model::now());
        self.store().update_allocation(&a).await?;
        Ok(a)
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
