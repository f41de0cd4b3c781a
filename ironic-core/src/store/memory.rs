//! [`MemoryStore`]: the whole deployment in memory, behind one lock.
//!
//! For tests, examples and scale runs. It honours the full [`Store`] contract
//! (uniqueness, reservation compare-and-set, cascade delete, sorting, marker
//! pagination, filters), so code that works against it works against the durable
//! stores too. Nothing survives the process.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::*;
use crate::driver::{BiosSetting, FirmwareComponent};

#[derive(Default)]
struct Data {
    next_id: u64,
    /// Nodes behind `Arc`: a listing hands out references, not deep copies
    /// (a node holds a dozen maps and strings), and a write replaces the `Arc`.
    nodes: HashMap<NodeId, (u64, Arc<Node>)>,
    /// Nodes in creation order (`id` → UUID): the default sort of a listing
    /// reads one page from here instead of sorting every node.
    node_order: BTreeMap<u64, NodeId>,
    ports: HashMap<PortId, (u64, Port)>,
    portgroups: HashMap<PortgroupId, (u64, Portgroup)>,
    chassis: HashMap<ChassisId, (u64, Chassis)>,
    allocations: HashMap<AllocationId, (u64, Allocation)>,
    templates: HashMap<DeployTemplateId, (u64, DeployTemplate)>,
    connectors: HashMap<VolumeConnectorId, (u64, VolumeConnector)>,
    targets: HashMap<VolumeTargetId, (u64, VolumeTarget)>,
    runbooks: HashMap<RunbookId, (u64, Runbook)>,
    inspection_rules: HashMap<InspectionRuleId, (u64, InspectionRule)>,
    conductors: HashMap<String, ConductorRecord>,
    history: HashMap<NodeId, Vec<HistoryEvent>>,
    bios: HashMap<NodeId, Vec<BiosSetting>>,
    firmware: HashMap<NodeId, Vec<FirmwareComponent>>,
    inventory: HashMap<NodeId, serde_json::Value>,
    // indexes
    node_names: HashMap<String, NodeId>,
    node_instances: HashMap<String, NodeId>,
    port_addresses: HashMap<MacAddress, PortId>,
    node_ports: HashMap<NodeId, std::collections::BTreeSet<(u64, PortId)>>,
}

impl Data {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn find_node(&self, ident: &Ident) -> StoreResult<&(u64, Arc<Node>)> {
        let found = match ident {
            Ident::Uuid(u) => self.nodes.get(&NodeId(*u)),
            Ident::Name(n) => self.node_names.get(n).and_then(|id| self.nodes.get(id)),
        };
        found.ok_or_else(|| StoreError::not_found("Node", ident))
    }

    fn check_node_unique(&self, node: &Node) -> StoreResult<()> {
        if let Some(name) = &node.name
            && self.node_names.get(name).is_some_and(|o| *o != node.uuid)
        {
            return Err(StoreError::Duplicate(format!(
                "A node with name {name} already exists."
            )));
        }
        if let Some(inst) = &node.instance_uuid
            && self
                .node_instances
                .get(inst)
                .is_some_and(|o| *o != node.uuid)
        {
            return Err(StoreError::Duplicate(format!(
                "Instance {inst} is already associated with a node, it cannot be associated with this other node {}",
                node.uuid
            )));
        }
        Ok(())
    }

    fn unindex_node(&mut self, node: &Node) {
        if let Some(n) = &node.name {
            self.node_names.remove(n);
        }
        if let Some(i) = &node.instance_uuid {
            self.node_instances.remove(i);
        }
    }

    fn index_node(&mut self, node: &Node) {
        if let Some(n) = &node.name {
            self.node_names.insert(n.clone(), node.uuid);
        }
        if let Some(i) = &node.instance_uuid {
            self.node_instances.insert(i.clone(), node.uuid);
        }
    }

    fn unindex_port(&mut self, id: u64, port: &Port) {
        self.port_addresses.remove(&port.address);
        if let Some(set) = self.node_ports.get_mut(&port.node_uuid) {
            set.remove(&(id, port.uuid));
            if set.is_empty() {
                self.node_ports.remove(&port.node_uuid);
            }
        }
    }

    fn index_port(&mut self, id: u64, port: &Port) {
        self.port_addresses.insert(port.address, port.uuid);
        self.node_ports
            .entry(port.node_uuid)
            .or_default()
            .insert((id, port.uuid));
    }

    fn check_port_unique(&self, port: &Port) -> StoreResult<()> {
        if !self.nodes.contains_key(&port.node_uuid) {
            return Err(StoreError::not_found("Node", port.node_uuid));
        }
        if let Some(pg) = port.portgroup_uuid
            && !self.portgroups.contains_key(&pg)
        {
            return Err(StoreError::not_found("Portgroup", pg));
        }
        if self
            .port_addresses
            .get(&port.address)
            .is_some_and(|o| *o != port.uuid)
        {
            return Err(StoreError::Duplicate(format!(
                "A port with MAC address {} already exists.",
                port.address
            )));
        }
        if port.name.is_none() {
            return Ok(());
        }
        for (_, other) in self.ports.values() {
            if other.uuid == port.uuid {
                continue;
            }
            if other.name == port.name {
                return Err(StoreError::Duplicate(format!(
                    "A port with name {} already exists.",
                    port.name.as_deref().unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    fn check_portgroup_unique(&self, pg: &Portgroup) -> StoreResult<()> {
        if !self.nodes.contains_key(&pg.node_uuid) {
            return Err(StoreError::not_found("Node", pg.node_uuid));
        }
        for (_, other) in self.portgroups.values() {
            if other.uuid == pg.uuid {
                continue;
            }
            if pg.address.is_some() && other.address == pg.address {
                return Err(StoreError::Duplicate(format!(
                    "A portgroup with MAC address {} already exists.",
                    pg.address.map(|a| a.to_string()).unwrap_or_default()
                )));
            }
            if pg.name.is_some() && other.name == pg.name {
                return Err(StoreError::Duplicate(format!(
                    "A portgroup with name {} already exists.",
                    pg.name.as_deref().unwrap_or_default()
                )));
            }
        }
        Ok(())
    }
}

impl Data {
    /// One page of nodes. The default order (`id`, creation order) walks
    /// `node_order` from the marker and stops at the limit, so a page costs its
    /// own size, not a sort of every node; other keys sort the matching nodes.
    fn node_page(&self, query: &NodeQuery) -> StoreResult<Vec<Arc<Node>>> {
        let page = &query.page;
        let filter = &query.filter;
        if page.sort_key != NodeSortKey::Id {
            let items: Vec<_> = self
                .nodes
                .values()
                .filter(|(_, n)| node_matches(filter, n))
                .collect();
            let key = page.sort_key;
            return paginate(
                items,
                |a, b| cmp_node(key, a, b),
                page.sort_dir,
                page.marker,
                |n| n.uuid.0,
                page.limit,
                "Node",
            );
        }
        let after = match page.marker {
            None => None,
            // As the SQL stores (and Ironic's paginate_query): the marker is
            // looked up among all nodes, the page continues after it.
            Some(m) => match self.nodes.get(&NodeId(m)) {
                Some((seq, _)) => Some(*seq),
                None => return Err(StoreError::not_found("Node", format!("marker {m}"))),
            },
        };
        let ids: Box<dyn Iterator<Item = &NodeId>> = match (page.sort_dir, after) {
            (SortDir::Asc, None) => Box::new(self.node_order.values()),
            (SortDir::Asc, Some(s)) => Box::new(
                self.node_order
                    .range((std::ops::Bound::Excluded(s), std::ops::Bound::Unbounded))
                    .map(|(_, id)| id),
            ),
            (SortDir::Desc, None) => Box::new(self.node_order.values().rev()),
            (SortDir::Desc, Some(s)) => {
                Box::new(self.node_order.range(..s).rev().map(|(_, id)| id))
            }
        };
        Ok(ids
            .filter_map(|id| self.nodes.get(id))
            .filter(|(_, n)| node_matches(filter, n))
            .take(page.limit.unwrap_or(usize::MAX))
            .map(|(_, n)| n.clone())
            .collect())
    }

    fn check_connector(&self, c: &VolumeConnector) -> StoreResult<()> {
        if !self.nodes.contains_key(&c.node_uuid) {
            return Err(StoreError::not_found("Node", c.node_uuid));
        }
        if self.connectors.values().any(|(_, o)| {
            o.uuid != c.uuid
                && o.connector_type == c.connector_type
                && o.connector_id == c.connector_id
        }) {
            return Err(StoreError::Duplicate(connector_clash(c)));
        }
        Ok(())
    }

    fn check_target(&self, t: &VolumeTarget) -> StoreResult<()> {
        if !self.nodes.contains_key(&t.node_uuid) {
            return Err(StoreError::not_found("Node", t.node_uuid));
        }
        if self.targets.values().any(|(_, o)| {
            o.uuid != t.uuid && o.node_uuid == t.node_uuid && o.boot_index == t.boot_index
        }) {
            return Err(StoreError::Duplicate(target_clash(t)));
        }
        Ok(())
    }

    fn check_runbook(&self, r: &Runbook) -> StoreResult<()> {
        if self
            .runbooks
            .values()
            .any(|(_, o)| o.uuid != r.uuid && o.name == r.name)
        {
            return Err(StoreError::Duplicate(format!(
                "A runbook with name {} already exists.",
                r.name
            )));
        }
        Ok(())
    }
}

/// The whole deployment in memory. Cheap to create; `Debug` prints counts only.
#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<Data>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.lock();
        f.debug_struct("MemoryStore")
            .field("nodes", &d.nodes.len())
            .field("ports", &d.ports.len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        // A panic while holding the lock cannot leave `Data` half-written: every
        // method checks first and writes last. Recover from poisoning.
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn cmp_node(key: NodeSortKey, a: &(u64, Arc<Node>), b: &(u64, Arc<Node>)) -> Ordering {
    let (ai, a) = a;
    let (bi, b) = b;
    let primary = match key {
        NodeSortKey::Id => Ordering::Equal,
        NodeSortKey::Uuid => a.uuid.cmp(&b.uuid),
        NodeSortKey::Name => a.name.cmp(&b.name),
        NodeSortKey::CreatedAt => a.created_at.cmp(&b.created_at),
        NodeSortKey::UpdatedAt => a.updated_at.cmp(&b.updated_at),
        NodeSortKey::ProvisionState => a.provision_state.as_str().cmp(b.provision_state.as_str()),
        NodeSortKey::ProvisionUpdatedAt => a.provision_updated_at.cmp(&b.provision_updated_at),
        NodeSortKey::PowerState => a
            .power_state
            .map(|p| p.as_str())
            .cmp(&b.power_state.map(|p| p.as_str())),
        NodeSortKey::Driver => a.driver.cmp(&b.driver),
        NodeSortKey::Maintenance => a.maintenance.cmp(&b.maintenance),
        NodeSortKey::ResourceClass => a.resource_class.cmp(&b.resource_class),
        NodeSortKey::ConductorGroup => a.conductor_group.cmp(&b.conductor_group),
        NodeSortKey::Owner => a.owner.cmp(&b.owner),
        NodeSortKey::InstanceUuid => a.instance_uuid.cmp(&b.instance_uuid),
    };
    primary.then(ai.cmp(bi))
}

fn node_matches(f: &NodeFilter, n: &Node) -> bool {
    if let Some(states) = &f.provision_state
        && !states.contains(&n.provision_state)
    {
        return false;
    }
    if f.maintenance.is_some_and(|m| m != n.maintenance) {
        return false;
    }
    if f.associated.is_some_and(|a| a != n.instance_uuid.is_some()) {
        return false;
    }
    if f.driver.as_ref().is_some_and(|d| *d != n.driver) {
        return false;
    }
    if f.resource_class.is_some() && f.resource_class != n.resource_class {
        return false;
    }
    if f.conductor_group
        .as_ref()
        .is_some_and(|g| !g.eq_ignore_ascii_case(&n.conductor_group))
    {
        return false;
    }
    if f.owner.is_some() && f.owner != n.owner {
        return false;
    }
    if f.lessee.is_some() && f.lessee != n.lessee {
        return false;
    }
    if f.project.is_some() && f.project != n.owner && f.project != n.lessee {
        return false;
    }
    if f.fault.is_some() && f.fault != n.fault {
        return false;
    }
    if f.chassis_uuid.is_some() && f.chassis_uuid != n.chassis_uuid {
        return false;
    }
    if f.instance_uuid.is_some() && f.instance_uuid != n.instance_uuid {
        return false;
    }
    if f.retired.is_some_and(|r| r != n.retired) {
        return false;
    }
    if let Some(sub) = &f.description_contains
        && !n
            .description
            .as_deref()
            .is_some_and(|d| d.contains(sub.as_str()))
    {
        return false;
    }
    if let Some(shards) = &f.shard
        && !n.shard.as_ref().is_some_and(|s| shards.contains(s))
    {
        return false;
    }
    if f.sharded.is_some_and(|s| s != n.shard.is_some()) {
        return false;
    }
    if f.reserved.is_some_and(|r| r != n.reservation.is_some()) {
        return false;
    }
    if f.reserved_by.is_some() && f.reserved_by != n.reservation {
        return false;
    }
    if f.parent_node.is_some() && f.parent_node != n.parent_node {
        return false;
    }
    if f.exclude_children && n.parent_node.is_some() {
        return false;
    }
    if let Some(before) = f.provision_updated_before
        && n.provision_updated_at.is_none_or(|t| t >= before)
    {
        return false;
    }
    true
}

/// Sort `items`, then apply the marker (exclusive) and the limit.
fn paginate<T: Clone>(
    mut items: Vec<&(u64, T)>,
    cmp: impl Fn(&(u64, T), &(u64, T)) -> Ordering,
    dir: SortDir,
    marker: Option<uuid::Uuid>,
    uuid_of: impl Fn(&T) -> uuid::Uuid,
    limit: Option<usize>,
    kind: &'static str,
) -> StoreResult<Vec<T>> {
    items.sort_by(|a, b| match dir {
        SortDir::Asc => cmp(a, b),
        SortDir::Desc => cmp(b, a),
    });
    let start = match marker {
        None => 0,
        Some(m) => {
            items
                .iter()
                .position(|(_, t)| uuid_of(t) == m)
                .ok_or_else(|| StoreError::not_found(kind, format!("marker {m}")))?
                + 1
        }
    };
    let limit = limit.unwrap_or(usize::MAX);
    Ok(items
        .into_iter()
        .skip(start)
        .take(limit)
        .map(|(_, t)| t.clone())
        .collect())
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_node(&self, node: &Node) -> StoreResult<()> {
        let mut d = self.lock();
        if d.nodes.contains_key(&node.uuid) {
            return Err(StoreError::Duplicate(format!(
                "A node with UUID {} already exists.",
                node.uuid
            )));
        }
        d.check_node_unique(node)?;
        let id = d.next_id();
        d.index_node(node);
        d.nodes.insert(node.uuid, (id, Arc::new(node.clone())));
        d.node_order.insert(id, node.uuid);
        Ok(())
    }

    async fn get_node(&self, ident: &Ident) -> StoreResult<Node> {
        Ok(Node::clone(&self.lock().find_node(ident)?.1))
    }

    async fn update_node(&self, node: &Node) -> StoreResult<()> {
        let mut d = self.lock();
        if !d.nodes.contains_key(&node.uuid) {
            return Err(StoreError::not_found("Node", node.uuid));
        }
        d.check_node_unique(node)?;
        let old = d.nodes.get(&node.uuid).expect("checked above").1.clone();
        d.unindex_node(&old);
        d.index_node(node);
        let entry = d.nodes.get_mut(&node.uuid).expect("checked above");
        let mut new = node.clone();
        new.reservation.clone_from(&old.reservation);
        entry.1 = Arc::new(new);
        Ok(())
    }

    async fn delete_node(&self, id: NodeId) -> StoreResult<()> {
        let mut d = self.lock();
        let Some((seq, old)) = d.nodes.remove(&id) else {
            return Err(StoreError::not_found("Node", id));
        };
        d.node_order.remove(&seq);
        d.unindex_node(&old);
        for (_, pid) in d.node_ports.remove(&id).unwrap_or_default() {
            if let Some((_, p)) = d.ports.remove(&pid) {
                d.port_addresses.remove(&p.address);
            }
        }
        d.portgroups.retain(|_, (_, p)| p.node_uuid != id);
        d.connectors.retain(|_, (_, c)| c.node_uuid != id);
        d.targets.retain(|_, (_, t)| t.node_uuid != id);
        d.history.remove(&id);
        d.bios.remove(&id);
        d.firmware.remove(&id);
        d.inventory.remove(&id);
        Ok(())
    }

    async fn list_nodes(&self, query: &NodeQuery) -> StoreResult<Vec<Node>> {
        let page = self.lock().node_page(query)?;
        Ok(page.into_iter().map(Arc::unwrap_or_clone).collect())
    }

    async fn list_nodes_shared(&self, query: &NodeQuery) -> StoreResult<Vec<Arc<Node>>> {
        self.lock().node_page(query)
    }

    async fn count_nodes(&self, filter: &NodeFilter) -> StoreResult<usize> {
        let d = self.lock();
        Ok(d.nodes
            .values()
            .filter(|(_, n)| node_matches(filter, n))
            .count())
    }

    async fn reserve_node(&self, id: NodeId, host: &str) -> StoreResult<Node> {
        let mut d = self.lock();
        let (_, node) = d
            .nodes
            .get_mut(&id)
            .ok_or_else(|| StoreError::not_found("Node", id))?;
        if let Some(holder) = &node.reservation {
            return Err(StoreError::Locked {
                node: id,
                holder: holder.clone(),
            });
        }
        let node = Arc::make_mut(node);
        node.reservation = Some(host.to_owned());
        Ok(node.clone())
    }

    async fn release_node(&self, id: NodeId, host: &str) -> StoreResult<()> {
        let mut d = self.lock();
        let (_, node) = d
            .nodes
            .get_mut(&id)
            .ok_or_else(|| StoreError::not_found("Node", id))?;
        match &node.reservation {
            Some(h) if h == host => {
                Arc::make_mut(node).reservation = None;
                Ok(())
            }
            Some(h) => Err(StoreError::Locked {
                node: id,
                holder: h.clone(),
            }),
            None => Ok(()),
        }
    }

    async fn clear_reservations(&self, host: &str) -> StoreResult<usize> {
        let mut d = self.lock();
        let mut n = 0;
        for (_, node) in d.nodes.values_mut() {
            if node.reservation.as_deref() == Some(host) {
                Arc::make_mut(node).reservation = None;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn create_port(&self, port: &Port) -> StoreResult<()> {
        let mut d = self.lock();
        if d.ports.contains_key(&port.uuid) {
            return Err(StoreError::Duplicate(format!(
                "A port with UUID {} already exists.",
                port.uuid
            )));
        }
        d.check_port_unique(port)?;
        let id = d.next_id();
        d.index_port(id, port);
        d.ports.insert(port.uuid, (id, port.clone()));
        Ok(())
    }

    async fn get_port(&self, ident: &Ident) -> StoreResult<Port> {
        let d = self.lock();
        let found = match ident {
            Ident::Uuid(u) => d.ports.get(&PortId(*u)),
            Ident::Name(n) => d
                .ports
                .values()
                .find(|(_, p)| p.name.as_deref() == Some(n.as_str())),
        };
        found
            .map(|(_, p)| p.clone())
            .ok_or_else(|| StoreError::not_found("Port", ident))
    }

    async fn get_port_by_address(&self, address: MacAddress) -> StoreResult<Port> {
        let d = self.lock();
        d.port_addresses
            .get(&address)
            .and_then(|id| d.ports.get(id))
            .map(|(_, p)| p.clone())
            .ok_or_else(|| StoreError::not_found("Port", address))
    }

    async fn update_port(&self, port: &Port) -> StoreResult<()> {
        let mut d = self.lock();
        if !d.ports.contains_key(&port.uuid) {
            return Err(StoreError::not_found("Port", port.uuid));
        }
        d.check_port_unique(port)?;
        let (id, old) = d.ports.get(&port.uuid).cloned().expect("checked above");
        d.unindex_port(id, &old);
        d.index_port(id, port);
        d.ports.get_mut(&port.uuid).expect("checked above").1 = port.clone();
        Ok(())
    }

    async fn delete_port(&self, id: PortId) -> StoreResult<()> {
        let mut d = self.lock();
        let (seq, old) = d
            .ports
            .remove(&id)
            .ok_or_else(|| StoreError::not_found("Port", id))?;
        d.unindex_port(seq, &old);
        Ok(())
    }

    async fn list_ports(&self, q: &PortQuery) -> StoreResult<Vec<Port>> {
        let d = self.lock();
        let candidates: Box<dyn Iterator<Item = &(u64, Port)>> = match q.node {
            Some(n) => Box::new(
                d.node_ports
                    .get(&n)
                    .into_iter()
                    .flatten()
                    .filter_map(|(_, id)| d.ports.get(id)),
            ),
            None => Box::new(d.ports.values()),
        };
        let items: Vec<_> = candidates
            .filter(|(_, p)| {
                q.node.is_none_or(|n| p.node_uuid == n)
                    && q.portgroup.is_none_or(|g| p.portgroup_uuid == Some(g))
                    && q.address.is_none_or(|a| p.address == a)
                    && q.addresses.as_ref().is_none_or(|a| a.contains(&p.address))
                    && (q.physical_network.is_none() || q.physical_network == p.physical_network)
            })
            .collect();
        paginate(
            items,
            |a, b| a.0.cmp(&b.0),
            q.sort_dir,
            q.marker,
            |p| p.uuid.0,
            q.limit,
            "Port",
        )
    }

    async fn create_portgroup(&self, pg: &Portgroup) -> StoreResult<()> {
        let mut d = self.lock();
        if d.portgroups.contains_key(&pg.uuid) {
            return Err(StoreError::Duplicate(format!(
                "A portgroup with UUID {} already exists.",
                pg.uuid
            )));
        }
        d.check_portgroup_unique(pg)?;
        let id = d.next_id();
        d.portgroups.insert(pg.uuid, (id, pg.clone()));
        Ok(())
    }

    async fn get_portgroup(&self, ident: &Ident) -> StoreResult<Portgroup> {
        let d = self.lock();
        let found = match ident {
            Ident::Uuid(u) => d.portgroups.get(&PortgroupId(*u)),
            Ident::Name(n) => d
                .portgroups
                .values()
                .find(|(_, p)| p.name.as_deref() == Some(n.as_str())),
        };
        found
            .map(|(_, p)| p.clone())
            .ok_or_else(|| StoreError::not_found("Portgroup", ident))
    }

    async fn update_portgroup(&self, pg: &Portgroup) -> StoreResult<()> {
        let mut d = self.lock();
        if !d.portgroups.contains_key(&pg.uuid) {
            return Err(StoreError::not_found("Portgroup", pg.uuid));
        }
        d.check_portgroup_unique(pg)?;
        d.portgroups.get_mut(&pg.uuid).expect("checked above").1 = pg.clone();
        Ok(())
    }

    async fn delete_portgroup(&self, id: PortgroupId) -> StoreResult<()> {
        let mut d = self.lock();
        if d.portgroups.remove(&id).is_none() {
            return Err(StoreError::not_found("Portgroup", id));
        }
        for (_, p) in d.ports.values_mut() {
            if p.portgroup_uuid == Some(id) {
                p.portgroup_uuid = None;
            }
        }
        Ok(())
    }

    async fn list_portgroups(&self, node: Option<NodeId>) -> StoreResult<Vec<Portgroup>> {
        let d = self.lock();
        let mut v: Vec<_> = d
            .portgroups
            .values()
            .filter(|(_, p)| node.is_none_or(|n| p.node_uuid == n))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        Ok(v.into_iter().map(|(_, p)| p.clone()).collect())
    }

    async fn create_chassis(&self, c: &Chassis) -> StoreResult<()> {
        let mut d = self.lock();
        if d.chassis.contains_key(&c.uuid) {
            return Err(StoreError::Duplicate(format!(
                "A chassis with UUID {} already exists.",
                c.uuid
            )));
        }
        let id = d.next_id();
        d.chassis.insert(c.uuid, (id, c.clone()));
        Ok(())
    }

    async fn get_chassis(&self, id: ChassisId) -> StoreResult<Chassis> {
        self.lock()
            .chassis
            .get(&id)
            .map(|(_, c)| c.clone())
            .ok_or_else(|| StoreError::not_found("Chassis", id))
    }

    async fn update_chassis(&self, c: &Chassis) -> StoreResult<()> {
        let mut d = self.lock();
        let e = d
            .chassis
            .get_mut(&c.uuid)
            .ok_or_else(|| StoreError::not_found("Chassis", c.uuid))?;
        e.1 = c.clone();
        Ok(())
    }

    async fn delete_chassis(&self, id: ChassisId) -> StoreResult<()> {
        let mut d = self.lock();
        if d.chassis.remove(&id).is_none() {
            return Err(StoreError::not_found("Chassis", id));
        }
        for (_, n) in d.nodes.values_mut() {
            if n.chassis_uuid == Some(id) {
                Arc::make_mut(n).chassis_uuid = None;
            }
        }
        Ok(())
    }

    async fn list_chassis(&self) -> StoreResult<Vec<Chassis>> {
        let d = self.lock();
        let mut v: Vec<_> = d.chassis.values().collect();
        v.sort_by_key(|(id, _)| *id);
        Ok(v.into_iter().map(|(_, c)| c.clone()).collect())
    }

    async fn create_allocation(&self, a: &Allocation) -> StoreResult<()> {
        let mut d = self.lock();
        if d.allocations.contains_key(&a.uuid) {
            return Err(StoreError::Duplicate(format!(
                "An allocation with UUID {} already exists.",
                a.uuid
            )));
        }
        if a.name.is_some() && d.allocations.values().any(|(_, o)| o.name == a.name) {
            return Err(StoreError::Duplicate(format!(
                "An allocation with name {} already exists.",
                a.name.as_deref().unwrap_or_default()
            )));
        }
        let id = d.next_id();
        d.allocations.insert(a.uuid, (id, a.clone()));
        Ok(())
    }

    async fn get_allocation(&self, ident: &Ident) -> StoreResult<Allocation> {
        let d = self.lock();
        let found = match ident {
            Ident::Uuid(u) => d.allocations.get(&AllocationId(*u)),
            Ident::Name(n) => d
                .allocations
                .values()
                .find(|(_, a)| a.name.as_deref() == Some(n.as_str())),
        };
        found
            .map(|(_, a)| a.clone())
            .ok_or_else(|| StoreError::not_found("Allocation", ident))
    }

    async fn update_allocation(&self, a: &Allocation) -> StoreResult<()> {
        let mut d = self.lock();
        if !d.allocations.contains_key(&a.uuid) {
            return Err(StoreError::not_found("Allocation", a.uuid));
        }
        if a.name.is_some()
            && d.allocations
                .values()
                .any(|(_, o)| o.uuid != a.uuid && o.name == a.name)
        {
            return Err(StoreError::Duplicate(format!(
                "An allocation with name {} already exists.",
                a.name.as_deref().unwrap_or_default()
            )));
        }
        d.allocations.get_mut(&a.uuid).expect("checked above").1 = a.clone();
        Ok(())
    }

    async fn delete_allocation(&self, id: AllocationId) -> StoreResult<()> {
        let mut d = self.lock();
        d.allocations
            .remove(&id)
            .map(|_| ())
            .ok_or_else(|| StoreError::not_found("Allocation", id))
    }

    async fn list_allocations(&self) -> StoreResult<Vec<Allocation>> {
        let d = self.lock();
        let mut v: Vec<_> = d.allocations.values().collect();
        v.sort_by_key(|(id, _)| *id);
        Ok(v.into_iter().map(|(_, a)| a.clone()).collect())
    }

    async fn create_deploy_template(&self, t: &DeployTemplate) -> StoreResult<()> {
        let mut d = self.lock();
        if d.templates.contains_key(&t.uuid) {
            return Err(StoreError::Duplicate(format!(
                "A deploy template with UUID {} already exists.",
                t.uuid
            )));
        }
        if d.templates.values().any(|(_, o)| o.name == t.name) {
            return Err(StoreError::Duplicate(format!(
                "A deploy template with name {} already exists.",
                t.name
            )));
        }
        let id = d.next_id();
        d.templates.insert(t.uuid, (id, t.clone()));
        Ok(())
    }

    async fn get_deploy_template(&self, ident: &Ident) -> StoreResult<DeployTemplate> {
        let d = self.lock();
        let found = match ident {
            Ident::Uuid(u) => d.templates.get(&DeployTemplateId(*u)),
            Ident::Name(n) => d.templates.values().find(|(_, t)| t.name == *n),
        };
        found
            .map(|(_, t)| t.clone())
            .ok_or_else(|| StoreError::not_found("DeployTemplate", ident))
    }

    async fn update_deploy_template(&self, t: &DeployTemplate) -> StoreResult<()> {
        let mut d = self.lock();
        if !d.templates.contains_key(&t.uuid) {
            return Err(StoreError::not_found("DeployTemplate", t.uuid));
        }
        if d.templates
            .values()
            .any(|(_, o)| o.uuid != t.uuid && o.name == t.name)
        {
            return Err(StoreError::Duplicate(format!(
                "A deploy template with name {} already exists.",
                t.name
            )));
        }
        d.templates.get_mut(&t.uuid).expect("checked above").1 = t.clone();
        Ok(())
    }

    async fn delete_deploy_template(&self, id: DeployTemplateId) -> StoreResult<()> {
        let mut d = self.lock();
        d.templates
            .remove(&id)
            .map(|_| ())
            .ok_or_else(|| StoreError::not_found("DeployTemplate", id))
    }

    async fn list_deploy_templates(&self) -> StoreResult<Vec<DeployTemplate>> {
        let d = self.lock();
        let mut v: Vec<_> = d.templates.values().collect();
        v.sort_by_key(|(id, _)| *id);
        Ok(v.into_iter().map(|(_, t)| t.clone()).collect())
    }

    async fn create_volume_connector(&self, c: &VolumeConnector) -> StoreResult<()> {
        let mut d = self.lock();
        if d.connectors.contains_key(&c.uuid) {
            return Err(StoreError::Duplicate(format!(
                "A volume connector with UUID {} already exists.",
                c.uuid
            )));
        }
        d.check_connector(c)?;
        let id = d.next_id();
        d.connectors.insert(c.uuid, (id, c.clone()));
        Ok(())
    }

    async fn get_volume_connector(&self, id: VolumeConnectorId) -> StoreResult<VolumeConnector> {
        self.lock()
            .connectors
            .get(&id)
            .map(|(_, c)| c.clone())
            .ok_or_else(|| StoreError::not_found("Volume connector", id))
    }

    async fn update_volume_connector(&self, c: &VolumeConnector) -> StoreResult<()> {
        let mut d = self.lock();
        if !d.connectors.contains_key(&c.uuid) {
            return Err(StoreError::not_found("Volume connector", c.uuid));
        }
        d.check_connector(c)?;
        d.connectors.get_mut(&c.uuid).expect("checked above").1 = c.clone();
        Ok(())
    }

    async fn delete_volume_connector(&self, id: VolumeConnectorId) -> StoreResult<()> {
        self.lock()
            .connectors
            .remove(&id)
            .map(|_| ())
            .ok_or_else(|| StoreError::not_found("Volume connector", id))
    }

    async fn list_volume_connectors(
        &self,
        node: Option<NodeId>,
    ) -> StoreResult<Vec<VolumeConnector>> {
        let d = self.lock();
        let mut v: Vec<_> = d
            .connectors
            .values()
            .filter(|(_, c)| node.is_none_or(|n| c.node_uuid == n))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        Ok(v.into_iter().map(|(_, c)| c.clone()).collect())
    }

    async fn create_volume_target(&self, t: &VolumeTarget) -> StoreResult<()> {
        let mut d = self.lock();
        if d.targets.contains_key(&t.uuid) {
            return Err(StoreError::Duplicate(format!(
                "A volume target with UUID {} already exists.",
                t.uuid
            )));
        }
        d.check_target(t)?;
        let id = d.next_id();
        d.targets.insert(t.uuid, (id, t.clone()));
        Ok(())
    }

    async fn get_volume_target(&self, id: VolumeTargetId) -> StoreResult<VolumeTarget> {
        self.lock()
            .targets
            .get(&id)
            .map(|(_, t)| t.clone())
            .ok_or_else(|| StoreError::not_found("Volume target", id))
    }

    async fn update_volume_target(&self, t: &VolumeTarget) -> StoreResult<()> {
        let mut d = self.lock();
        if !d.targets.contains_key(&t.uuid) {
            return Err(StoreError::not_found("Volume target", t.uuid));
        }
        d.check_target(t)?;
        d.targets.get_mut(&t.uuid).expect("checked above").1 = t.clone();
        Ok(())
    }

    async fn delete_volume_target(&self, id: VolumeTargetId) -> StoreResult<()> {
        self.lock()
            .targets
            .remove(&id)
            .map(|_| ())
            .ok_or_else(|| StoreError::not_found("Volume target", id))
    }

    async fn list_volume_targets(&self, node: Option<NodeId>) -> StoreResult<Vec<VolumeTarget>> {
        let d = self.lock();
        let mut v: Vec<_> = d
            .targets
            .values()
            .filter(|(_, t)| node.is_none_or(|n| t.node_uuid == n))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        Ok(v.into_iter().map(|(_, t)| t.clone()).collect())
    }

    async fn create_inspection_rule(&self, r: &InspectionRule) -> StoreResult<()> {
        let mut d = self.lock();
        if d.inspection_rules.contains_key(&r.uuid) {
            return Err(StoreError::Duplicate(format!(
                "A rule with UUID {} already exists.",
                r.uuid
            )));
        }
        let id = d.next_id();
        d.inspection_rules.insert(r.uuid, (id, r.clone()));
        Ok(())
    }

    async fn get_inspection_rule(&self, id: InspectionRuleId) -> StoreResult<InspectionRule> {
        self.lock()
            .inspection_rules
            .get(&id)
            .map(|(_, r)| r.clone())
            .ok_or_else(|| StoreError::not_found("Rule", id))
    }

    async fn update_inspection_rule(&self, r: &InspectionRule) -> StoreResult<()> {
        let mut d = self.lock();
        match d.inspection_rules.get_mut(&r.uuid) {
            Some(slot) => {
                slot.1 = r.clone();
                Ok(())
            }
            None => Err(StoreError::not_found("Rule", r.uuid)),
        }
    }

    async fn delete_inspection_rule(&self, id: InspectionRuleId) -> StoreResult<()> {
        self.lock()
            .inspection_rules
            .remove(&id)
            .map(|_| ())
            .ok_or_else(|| StoreError::not_found("Rule", id))
    }

    async fn list_inspection_rules(&self) -> StoreResult<Vec<InspectionRule>> {
        let d = self.lock();
        let mut v: Vec<&(u64, InspectionRule)> = d.inspection_rules.values().collect();
        v.sort_by_key(|(id, _)| *id);
        Ok(v.into_iter().map(|(_, r)| r.clone()).collect())
    }

    async fn create_runbook(&self, r: &Runbook) -> StoreResult<()> {
        let mut d = self.lock();
        if d.runbooks.contains_key(&r.uuid) {
            return Err(StoreError::Duplicate(format!(
                "A runbook with UUID {} already exists.",
                r.uuid
            )));
        }
        d.check_runbook(r)?;
        let id = d.next_id();
        d.runbooks.insert(r.uuid, (id, r.clone()));
        Ok(())
    }

    async fn get_runbook(&self, ident: &Ident) -> StoreResult<Runbook> {
        let d = self.lock();
        let found = match ident {
            Ident::Uuid(u) => d.runbooks.get(&RunbookId(*u)),
            Ident::Name(n) => d.runbooks.values().find(|(_, r)| r.name == *n),
        };
        found
            .map(|(_, r)| r.clone())
            .ok_or_else(|| StoreError::not_found("Runbook", ident))
    }

    async fn update_runbook(&self, r: &Runbook) -> StoreResult<()> {
        let mut d = self.lock();
        if !d.runbooks.contains_key(&r.uuid) {
            return Err(StoreError::not_found("Runbook", r.uuid));
        }
        d.check_runbook(r)?;
        d.runbooks.get_mut(&r.uuid).expect("checked above").1 = r.clone();
        Ok(())
    }

    async fn delete_runbook(&self, id: RunbookId) -> StoreResult<()> {
        self.lock()
            .runbooks
            .remove(&id)
            .map(|_| ())
            .ok_or_else(|| StoreError::not_found("Runbook", id))
    }

    async fn list_runbooks(&self) -> StoreResult<Vec<Runbook>> {
        let d = self.lock();
        let mut v: Vec<_> = d.runbooks.values().collect();
        v.sort_by_key(|(id, _)| *id);
        Ok(v.into_iter().map(|(_, r)| r.clone()).collect())
    }

    async fn upsert_conductor(&self, c: &ConductorRecord) -> StoreResult<()> {
        let mut d = self.lock();
        let now = crate::model::now();
        let mut rec = c.clone();
        if let Some(old) = d.conductors.get(&c.hostname) {
            rec.created_at = old.created_at;
        }
        rec.updated_at = Some(now);
        d.conductors.insert(c.hostname.clone(), rec);
        Ok(())
    }

    async fn touch_conductor(&self, hostname: &str) -> StoreResult<()> {
        let mut d = self.lock();
        let c = d
            .conductors
            .get_mut(hostname)
            .ok_or_else(|| StoreError::not_found("Conductor", hostname))?;
        c.updated_at = Some(crate::model::now());
        Ok(())
    }

    async fn delete_conductor(&self, hostname: &str) -> StoreResult<()> {
        let mut d = self.lock();
        d.conductors
            .remove(hostname)
            .map(|_| ())
            .ok_or_else(|| StoreError::not_found("Conductor", hostname))
    }

    async fn forget_conductor(
        &self,
        hostname: &str,
        stamped_before: crate::model::Timestamp,
    ) -> StoreResult<bool> {
        let mut d = self.lock();
        let stale = d
            .conductors
            .get(hostname)
            .is_some_and(|c| c.updated_at.unwrap_or(c.created_at) < stamped_before);
        if !stale
            || d.nodes
                .values()
                .any(|(_, n)| n.reservation.as_deref() == Some(hostname))
        {
            return Ok(false);
        }
        d.conductors.remove(hostname);
        Ok(true)
    }

    async fn list_conductors(&self) -> StoreResult<Vec<ConductorRecord>> {
        let d = self.lock();
        let mut v: Vec<_> = d.conductors.values().cloned().collect();
        v.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        Ok(v)
    }

    async fn add_history(&self, e: &HistoryEvent, max_per_node: usize) -> StoreResult<()> {
        let mut d = self.lock();
        if !d.nodes.contains_key(&e.node_uuid) {
            return Err(StoreError::not_found("Node", e.node_uuid));
        }
        let h = d.history.entry(e.node_uuid).or_default();
        h.push(e.clone());
        if h.len() > max_per_node {
            let excess = h.len() - max_per_node;
            h.drain(..excess);
        }
        Ok(())
    }

    async fn list_history(&self, node: NodeId) -> StoreResult<Vec<HistoryEvent>> {
        Ok(self.lock().history.get(&node).cloned().unwrap_or_default())
    }

    async fn set_bios_settings(&self, node: NodeId, s: &[BiosSetting]) -> StoreResult<()> {
        let mut d = self.lock();
        if !d.nodes.contains_key(&node) {
            return Err(StoreError::not_found("Node", node));
        }
        d.bios.insert(node, s.to_vec());
        Ok(())
    }

    async fn get_bios_settings(&self, node: NodeId) -> StoreResult<Vec<BiosSetting>> {
        Ok(self.lock().bios.get(&node).cloned().unwrap_or_default())
    }

    async fn set_firmware_components(
        &self,
        node: NodeId,
        c: &[FirmwareComponent],
    ) -> StoreResult<()> {
        let mut d = self.lock();
        if !d.nodes.contains_key(&node) {
            return Err(StoreError::not_found("Node", node));
        }
        d.firmware.insert(node, c.to_vec());
        Ok(())
    }

    async fn get_firmware_components(&self, node: NodeId) -> StoreResult<Vec<FirmwareComponent>> {
        Ok(self.lock().firmware.get(&node).cloned().unwrap_or_default())
    }

    async fn set_inventory(&self, node: NodeId, inventory: &serde_json::Value) -> StoreResult<()> {
        let mut d = self.lock();
        if !d.nodes.contains_key(&node) {
            return Err(StoreError::not_found("Node", node));
        }
        d.inventory.insert(node, inventory.clone());
        Ok(())
    }

    async fn get_inventory(&self, node: NodeId) -> StoreResult<Option<serde_json::Value>> {
        Ok(self.lock().inventory.get(&node).cloned())
    }
}
