//! Durable state: the [`Store`] trait and its implementations.
//!
//! * [`MemoryStore`]: in memory, for tests and scale runs.
//! * `SqliteStore` (feature `sqlite`, default): the embedded default; one file, WAL.
//! * `PostgresStore` (feature `postgres`): several conductors on one database.
//!
//! The trait speaks in model types and plain queries only (no SQL), so a PostgreSQL
//! store can be added without changing it. Reservations (node locks) live in the
//! store, so they survive a restart and can be shared by several conductors.

#[cfg(any(test, feature = "testkit"))]
pub mod conformance;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStore, redact_url};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOptions, SqliteStore};

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::driver::{BiosSetting, FirmwareComponent};
use crate::ids::*;
use crate::mac::MacAddress;
use crate::model::*;
use crate::states::ProvisionState;

/// What a store call can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record does not exist.
    #[error("{kind} {ident} could not be found.")]
    NotFound {
        /// Kind of record.
        kind: &'static str,
        /// What was asked for.
        ident: String,
    },
    /// A unique value is taken (name, MAC address, ...).
    #[error("{0}")]
    Duplicate(String),
    /// The node is reserved by another host.
    #[error("node {node} is locked by host {holder}")]
    Locked {
        /// The node.
        node: NodeId,
        /// The holder.
        holder: String,
    },
    /// The backend failed.
    #[error("store error: {0}")]
    Backend(String),
}

impl StoreError {
    /// A `NotFound`.
    pub fn not_found(kind: &'static str, ident: impl ToString) -> Self {
        StoreError::NotFound {
            kind,
            ident: ident.to_string(),
        }
    }
}

/// Ironic's message for a taken `(type, connector_id)`.
pub(crate) fn connector_clash(c: &VolumeConnector) -> String {
    format!(
        "A volume connector with type {} and connector ID {} already exists.",
        c.connector_type, c.connector_id
    )
}

/// Ironic's message for a taken `(node, boot_index)`.
pub(crate) fn target_clash(t: &VolumeTarget) -> String {
    format!(
        "A volume target with boot index '{}' for the same node already exists.",
        t.boot_index
    )
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// The JSON kept in `data`: the whole node except `reservation`, which lives in its
/// own column only (so a stale copy can never be read back). Both SQL stores keep it.
pub(crate) fn node_data(node: &Node) -> StoreResult<String> {
    // Straight to text: through a `serde_json::Value` (a map and a key per
    // field, then printed) this was a fifth of the conductor's CPU in the fleet.
    let unlocked;
    let node = match node.reservation {
        None => node,
        Some(_) => {
            unlocked = Node {
                reservation: None,
                ..node.clone()
            };
            &unlocked
        }
    };
    serde_json::to_string(node)
        .map_err(|e| StoreError::Backend(format!("cannot serialize node {}: {e}", node.uuid)))
}

/// Result of store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Sort direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortDir {
    /// Ascending (default).
    #[default]
    Asc,
    /// Descending.
    Desc,
}

/// Node columns lists can be sorted by (JSON fields are not sortable, as in Ironic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeSortKey {
    /// Creation order (Ironic's internal `id`; the default).
    #[default]
    Id,
    /// `uuid`.
    Uuid,
    /// `name`.
    Name,
    /// `created_at`.
    CreatedAt,
    /// `updated_at`.
    UpdatedAt,
    /// `provision_state`.
    ProvisionState,
    /// `provision_updated_at`.
    ProvisionUpdatedAt,
    /// `power_state`.
    PowerState,
    /// `driver`.
    Driver,
    /// `maintenance`.
    Maintenance,
    /// `resource_class`.
    ResourceClass,
    /// `conductor_group`.
    ConductorGroup,
    /// `owner`.
    Owner,
    /// `instance_uuid`.
    InstanceUuid,
}

impl NodeSortKey {
    /// Parse Ironic's `sort_key` value.
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

/// Filters for listing nodes; `None` means "don't filter".
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct NodeFilter {
    /// Any of these provision states.
    pub provision_state: Option<Vec<ProvisionState>>,
    /// Maintenance flag.
    pub maintenance: Option<bool>,
    /// Whether an instance is associated (`instance_uuid` set).
    pub associated: Option<bool>,
    /// Hardware type.
    pub driver: Option<String>,
    /// Resource class.
    pub resource_class: Option<String>,
    /// Conductor group (case-insensitive in Ironic; stored lower-case).
    pub conductor_group: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Lessee.
    pub lessee: Option<String>,
    /// Owner or lessee (Ironic's `project`).
    pub project: Option<String>,
    /// Fault.
    pub fault: Option<Fault>,
    /// Chassis.
    pub chassis_uuid: Option<ChassisId>,
    /// Instance UUID.
    pub instance_uuid: Option<String>,
    /// Retired flag.
    pub retired: Option<bool>,
    /// Substring of `description`.
    pub description_contains: Option<String>,
    /// Shard(s).
    pub shard: Option<Vec<String>>,
    /// Whether a shard is set.
    pub sharded: Option<bool>,
    /// Reserved (locked) or not.
    pub reserved: Option<bool>,
    /// Reserved by this host.
    pub reserved_by: Option<String>,
    /// Parent node.
    pub parent_node: Option<NodeId>,
    /// Only nodes without a parent (Ironic hides children by default since 1.83).
    pub exclude_children: bool,
    /// Provision state changed before this time (for timeouts).
    pub provision_updated_before: Option<Timestamp>,
}

/// A page request.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Page<K> {
    /// Maximum items (None = all).
    pub limit: Option<usize>,
    /// UUID of the last item of the previous page.
    pub marker: Option<uuid::Uuid>,
    /// Sort key.
    pub sort_key: K,
    /// Direction.
    pub sort_dir: SortDir,
}

/// A node listing query.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct NodeQuery {
    /// Filters.
    pub filter: NodeFilter,
    /// Paging and sorting.
    pub page: Page<NodeSortKey>,
}

impl NodeQuery {
    /// A query with these filters and this page.
    pub fn new(filter: NodeFilter, page: Page<NodeSortKey>) -> Self {
        NodeQuery { filter, page }
    }
}

/// A port listing query.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct PortQuery {
    /// Ports of this node.
    pub node: Option<NodeId>,
    /// Ports of this port group.
    pub portgroup: Option<PortgroupId>,
    /// With this address.
    pub address: Option<MacAddress>,
    /// Any of these addresses.
    pub addresses: Option<Vec<MacAddress>>,
    /// Physical network.
    pub physical_network: Option<String>,
    /// Paging (sorted by creation order).
    pub limit: Option<usize>,
    /// Marker (UUID of the last port of the previous page).
    pub marker: Option<uuid::Uuid>,
    /// Direction.
    pub sort_dir: SortDir,
}

/// The durable state of a deployment.
///
/// # Contract
/// * `create_*` fails with [`StoreError::Duplicate`] when a unique value (UUID, name,
///   MAC address, instance UUID, trait name) is taken, and writes nothing.
/// * `update_node` writes every field **except `reservation`**, which only
///   `reserve_node`/`release_node`/`clear_reservations` change, atomically.
/// * `reserve_node` is a compare-and-set: it succeeds only when the node has no
///   reservation (or is already reserved by the same host, which is refused too:
///   locks are not re-entrant), and returns the node as stored.
/// * Deleting a node deletes its ports, port groups, volume connectors and targets,
///   history, BIOS settings, firmware components and inventory.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    // ---- nodes ----
    /// Insert a node.
    async fn create_node(&self, node: &Node) -> StoreResult<()>;
    /// A node by UUID or name.
    async fn get_node(&self, ident: &Ident) -> StoreResult<Node>;
    /// Replace a node's fields (not `reservation`).
    async fn update_node(&self, node: &Node) -> StoreResult<()>;
    /// Delete a node and what belongs to it.
    async fn delete_node(&self, id: NodeId) -> StoreResult<()>;
    /// List nodes.
    async fn list_nodes(&self, query: &NodeQuery) -> StoreResult<Vec<Node>>;
    /// [`list_nodes`](Self::list_nodes), the nodes shared rather than copied.
    ///
    /// A store that keeps nodes in memory hands out references to them, so a
    /// caller that only reads (the API rendering a page of 1,000 nodes) copies
    /// nothing. The default wraps what `list_nodes` returns.
    async fn list_nodes_shared(&self, query: &NodeQuery) -> StoreResult<Vec<Arc<Node>>> {
        Ok(self
            .list_nodes(query)
            .await?
            .into_iter()
            .map(Arc::new)
            .collect())
    }
    /// Count nodes matching a filter.
    async fn count_nodes(&self, filter: &NodeFilter) -> StoreResult<usize>;
    /// Take the exclusive lock: set `reservation = host` if it is empty.
    async fn reserve_node(&self, id: NodeId, host: &str) -> StoreResult<Node>;
    /// Release the lock if `host` holds it.
    async fn release_node(&self, id: NodeId, host: &str) -> StoreResult<()>;
    /// Save a node and release the lock `host` holds on it: what a job does at
    /// its end. The default calls [`update_node`](Store::update_node), then
    /// [`release_node`](Store::release_node), with their errors; a store may do
    /// both in one write (the SQLite and PostgreSQL stores do), which must end
    /// as those two calls would.
    async fn update_node_and_release(&self, node: &Node, host: &str) -> StoreResult<()> {
        self.update_node(node).await?;
        self.release_node(node.uuid, host).await
    }
    /// Release every lock `host` holds (conductor start-up). Returns how many.
    async fn clear_reservations(&self, host: &str) -> StoreResult<usize>;

    // ---- ports ----
    /// Insert a port.
    async fn create_port(&self, port: &Port) -> StoreResult<()>;
    /// A port by UUID or name.
    async fn get_port(&self, ident: &Ident) -> StoreResult<Port>;
    /// A port by MAC address.
    async fn get_port_by_address(&self, address: MacAddress) -> StoreResult<Port>;
    /// Replace a port.
    async fn update_port(&self, port: &Port) -> StoreResult<()>;
    /// Delete a port.
    async fn delete_port(&self, id: PortId) -> StoreResult<()>;
    /// List ports.
    async fn list_ports(&self, query: &PortQuery) -> StoreResult<Vec<Port>>;

    // ---- port groups ----
    /// Insert a port group.
    async fn create_portgroup(&self, pg: &Portgroup) -> StoreResult<()>;
    /// A port group by UUID or name.
    async fn get_portgroup(&self, ident: &Ident) -> StoreResult<Portgroup>;
    /// Replace a port group.
    async fn update_portgroup(&self, pg: &Portgroup) -> StoreResult<()>;
    /// Delete a port group.
    async fn delete_portgroup(&self, id: PortgroupId) -> StoreResult<()>;
    /// Port groups, of one node or all.
    async fn list_portgroups(&self, node: Option<NodeId>) -> StoreResult<Vec<Portgroup>>;

    // ---- chassis ----
    /// Insert a chassis.
    async fn create_chassis(&self, c: &Chassis) -> StoreResult<()>;
    /// A chassis.
    async fn get_chassis(&self, id: ChassisId) -> StoreResult<Chassis>;
    /// Replace a chassis.
    async fn update_chassis(&self, c: &Chassis) -> StoreResult<()>;
    /// Delete a chassis.
    async fn delete_chassis(&self, id: ChassisId) -> StoreResult<()>;
    /// All chassis.
    async fn list_chassis(&self) -> StoreResult<Vec<Chassis>>;

    // ---- allocations ----
    /// Insert an allocation.
    async fn create_allocation(&self, a: &Allocation) -> StoreResult<()>;
    /// An allocation by UUID or name.
    async fn get_allocation(&self, ident: &Ident) -> StoreResult<Allocation>;
    /// Replace an allocation.
    async fn update_allocation(&self, a: &Allocation) -> StoreResult<()>;
    /// Delete an allocation.
    async fn delete_allocation(&self, id: AllocationId) -> StoreResult<()>;
    /// All allocations.
    async fn list_allocations(&self) -> StoreResult<Vec<Allocation>>;

    // ---- deploy templates ----
    /// Insert a deploy template.
    async fn create_deploy_template(&self, t: &DeployTemplate) -> StoreResult<()>;
    /// A deploy template by UUID or name.
    async fn get_deploy_template(&self, ident: &Ident) -> StoreResult<DeployTemplate>;
    /// Replace a deploy template.
    async fn update_deploy_template(&self, t: &DeployTemplate) -> StoreResult<()>;
    /// Delete a deploy template.
    async fn delete_deploy_template(&self, id: DeployTemplateId) -> StoreResult<()>;
    /// All deploy templates.
    async fn list_deploy_templates(&self) -> StoreResult<Vec<DeployTemplate>>;

    // ---- volume connectors and targets ----
    /// Insert a volume connector (its node must exist; `(type, connector_id)` is unique).
    async fn create_volume_connector(&self, c: &VolumeConnector) -> StoreResult<()>;
    /// A volume connector.
    async fn get_volume_connector(&self, id: VolumeConnectorId) -> StoreResult<VolumeConnector>;
    /// Replace a volume connector.
    async fn update_volume_connector(&self, c: &VolumeConnector) -> StoreResult<()>;
    /// Delete a volume connector.
    async fn delete_volume_connector(&self, id: VolumeConnectorId) -> StoreResult<()>;
    /// Volume connectors, of one node or all, in creation order.
    async fn list_volume_connectors(
        &self,
        node: Option<NodeId>,
    ) -> StoreResult<Vec<VolumeConnector>>;
    /// Insert a volume target (its node must exist; `(node, boot_index)` is unique).
    async fn create_volume_target(&self, t: &VolumeTarget) -> StoreResult<()>;
    /// A volume target.
    async fn get_volume_target(&self, id: VolumeTargetId) -> StoreResult<VolumeTarget>;
    /// Replace a volume target.
    async fn update_volume_target(&self, t: &VolumeTarget) -> StoreResult<()>;
    /// Delete a volume target.
    async fn delete_volume_target(&self, id: VolumeTargetId) -> StoreResult<()>;
    /// Volume targets, of one node or all, in creation order.
    async fn list_volume_targets(&self, node: Option<NodeId>) -> StoreResult<Vec<VolumeTarget>>;

    // ---- runbooks ----
    /// Insert a runbook (the name is unique).
    async fn create_runbook(&self, r: &Runbook) -> StoreResult<()>;
    /// A runbook by UUID or name.
    async fn get_runbook(&self, ident: &Ident) -> StoreResult<Runbook>;
    /// Replace a runbook.
    async fn update_runbook(&self, r: &Runbook) -> StoreResult<()>;
    /// Delete a runbook.
    async fn delete_runbook(&self, id: RunbookId) -> StoreResult<()>;
    /// All runbooks, in creation order.
    async fn list_runbooks(&self) -> StoreResult<Vec<Runbook>>;

    // ---- inspection rules ----
    /// Insert an inspection rule (the UUID is unique).
    async fn create_inspection_rule(&self, r: &InspectionRule) -> StoreResult<()>;
    /// An inspection rule.
    async fn get_inspection_rule(&self, id: InspectionRuleId) -> StoreResult<InspectionRule>;
    /// Replace an inspection rule.
    async fn update_inspection_rule(&self, r: &InspectionRule) -> StoreResult<()>;
    /// Delete an inspection rule.
    async fn delete_inspection_rule(&self, id: InspectionRuleId) -> StoreResult<()>;
    /// All inspection rules, in creation order.
    async fn list_inspection_rules(&self) -> StoreResult<Vec<InspectionRule>>;

    // ---- conductors ----
    /// Register or refresh a conductor (sets `updated_at`).
    async fn upsert_conductor(&self, c: &ConductorRecord) -> StoreResult<()>;
    /// Touch a conductor's keep-alive.
    async fn touch_conductor(&self, hostname: &str) -> StoreResult<()>;
    /// Remove a conductor.
    async fn delete_conductor(&self, hostname: &str) -> StoreResult<()>;
    /// All conductors (`alive` as stored; callers derive liveness from `updated_at`).
    async fn list_conductors(&self) -> StoreResult<Vec<ConductorRecord>>;
    /// Remove the record `hostname` if its last keep-alive (`updated_at`, else
    /// `created_at`) is older than `stamped_before` and no node is reserved under
    /// `hostname`: how a long-offline conductor is forgotten once the owners of
    /// its nodes released its locks. `Ok(true)` when removed, `Ok(false)` when
    /// kept (or absent). A shared database must check and delete atomically, so a
    /// conductor stamping its record or taking a lock meanwhile is never removed;
    /// the default (list, then delete) is right only for a store one process
    /// opens.
    async fn forget_conductor(
        &self,
        hostname: &str,
        stamped_before: Timestamp,
    ) -> StoreResult<bool> {
        let stale = self.list_conductors().await?.into_iter().any(|c| {
            c.hostname == hostname && c.updated_at.unwrap_or(c.created_at) < stamped_before
        });
        if !stale {
            return Ok(false);
        }
        let mut q = NodeQuery::default();
        q.filter.reserved_by = Some(hostname.to_owned());
        q.page.limit = Some(1);
        if !self.list_nodes(&q).await?.is_empty() {
            return Ok(false);
        }
        match self.delete_conductor(hostname).await {
            Ok(()) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
    /// The clock the conductors' keep-alive stamps come from. Conductors compare
    /// `updated_at` with it, never with their own clock, so hosts with skewed
    /// clocks agree on who is alive. Default: this process's clock (right for
    /// stores one process owns); a shared database returns its own clock.
    async fn now(&self) -> StoreResult<Timestamp> {
        Ok(crate::model::now())
    }

    /// Hand `payload` to every process that has this store's database open, this
    /// one included, through [`Store::notifications`]: how the conductors sharing
    /// a database see each other's node events. Best effort (a payload may be lost
    /// when a connection drops, none is delivered twice); payloads up to 7,000
    /// bytes. Default: nothing to do, for stores that only one process opens.
    async fn notify(&self, _payload: &str) -> StoreResult<()> {
        Ok(())
    }

    /// The payloads given to [`Store::notify`] by every process sharing this
    /// store's database, this one's included, in the order each process sent
    /// them. `None` (the default) for a store only one process opens.
    fn notifications(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }

    // ---- history, BIOS, firmware, inventory ----
    /// Append a history event (keeping at most `max_per_node`, oldest dropped).
    async fn add_history(&self, e: &HistoryEvent, max_per_node: usize) -> StoreResult<()>;
    /// A node's history, oldest first.
    async fn list_history(&self, node: NodeId) -> StoreResult<Vec<HistoryEvent>>;
    /// Replace a node's cached BIOS settings.
    async fn set_bios_settings(&self, node: NodeId, s: &[BiosSetting]) -> StoreResult<()>;
    /// A node's cached BIOS settings.
    async fn get_bios_settings(&self, node: NodeId) -> StoreResult<Vec<BiosSetting>>;
    /// Replace a node's cached firmware components.
    async fn set_firmware_components(
        &self,
        node: NodeId,
        c: &[FirmwareComponent],
    ) -> StoreResult<()>;
    /// A node's cached firmware components.
    async fn get_firmware_components(&self, node: NodeId) -> StoreResult<Vec<FirmwareComponent>>;
    /// Store a node's inspection inventory.
    async fn set_inventory(&self, node: NodeId, inventory: &serde_json::Value) -> StoreResult<()>;
    /// A node's inspection inventory.
    async fn get_inventory(&self, node: NodeId) -> StoreResult<Option<serde_json::Value>>;
}
