//! A read cache in front of the durable store, for the single-process deployment.
//!
//! [`CachedStore`] keeps nodes, ports, port groups and chassis in a
//! [`MemoryStore`] mirror and answers reads of them from memory; every write goes
//! to the durable store first (so nothing acknowledged is lost and the durable
//! store keeps enforcing uniqueness and reservations), then to the mirror.
//! Everything else (allocations, templates, volume connectors and targets,
//! runbooks, inspection rules, conductors, history, BIOS, firmware, inventory) passes straight
//! through. Valid only while this process is the only writer of the database,
//! which SQLite deployments are.

use std::sync::Arc;

use async_trait::async_trait;
use ironic_core::MacAddress;
use ironic_core::driver::{BiosSetting, FirmwareComponent};
use ironic_core::ids::*;
use ironic_core::model::*;
use ironic_core::store::*;

/// See the module docs.
#[derive(Debug)]
pub struct CachedStore {
    durable: Arc<dyn Store>,
    mem: MemoryStore,
}

impl CachedStore {
    /// Load the cached kinds from `durable` into memory.
    pub async fn load(durable: Arc<dyn Store>) -> StoreResult<Self> {
        let mem = MemoryStore::new();
        for c in durable.list_chassis().await? {
            mem.create_chassis(&c).await?;
        }
        let nodes = durable.list_nodes(&NodeQuery::default()).await?;
        // Parents before children (the mirror checks `parent_node`).
        let (roots, children): (Vec<Node>, Vec<Node>) =
            nodes.into_iter().partition(|n| n.parent_node.is_none());
        for n in roots.iter().chain(children.iter()) {
            mem.create_node(n).await?;
        }
        for pg in durable.list_portgroups(None).await? {
            mem.create_portgroup(&pg).await?;
        }
        for p in durable.list_ports(&PortQuery::default()).await? {
            mem.create_port(&p).await?;
        }
        Ok(CachedStore { durable, mem })
    }

    /// Mirror a write that already succeeded durably; a mirror failure means the
    /// two diverged, so re-read the record from the durable store.
    async fn mirror<T>(&self, what: &str, r: StoreResult<T>, node: Option<NodeId>) {
        if let Err(e) = r {
            tracing::warn!(what, error = %e, "cache mirror write failed; reloading the record");
            if let Some(id) = node
                && let Ok(n) = self.durable.get_node(&id.into()).await
            {
                let _ = self.mem.delete_node(id).await;
                let _ = self.mem.create_node(&n).await;
            }
        }
    }
}

#[async_trait]
impl Store for CachedStore {
    async fn create_node(&self, node: &Node) -> StoreResult<()> {
        self.durable.create_node(node).await?;
        self.mirror(
            "create_node",
            self.mem.create_node(node).await,
            Some(node.uuid),
        )
        .await;
        Ok(())
    }
    async fn get_node(&self, ident: &Ident) -> StoreResult<Node> {
        self.mem.get_node(ident).await
    }
    async fn update_node(&self, node: &Node) -> StoreResult<()> {
        self.durable.update_node(node).await?;
        self.mirror(
            "update_node",
            self.mem.update_node(node).await,
            Some(node.uuid),
        )
        .await;
        Ok(())
    }
    async fn delete_node(&self, id: NodeId) -> StoreResult<()> {
        self.durable.delete_node(id).await?;
        self.mirror("delete_node", self.mem.delete_node(id).await, None)
            .await;
        Ok(())
    }
    async fn list_nodes(&self, query: &NodeQuery) -> StoreResult<Vec<Node>> {
        self.mem.list_nodes(query).await
    }
    async fn list_nodes_shared(&self, query: &NodeQuery) -> StoreResult<Vec<Arc<Node>>> {
        self.mem.list_nodes_shared(query).await
    }
    async fn count_nodes(&self, filter: &NodeFilter) -> StoreResult<usize> {
        self.mem.count_nodes(filter).await
    }
    async fn reserve_node(&self, id: NodeId, host: &str) -> StoreResult<Node> {
        let n = self.durable.reserve_node(id, host).await?;
        self.mirror(
            "reserve_node",
            self.mem.reserve_node(id, host).await,
            Some(id),
        )
        .await;
        Ok(n)
    }
    async fn release_node(&self, id: NodeId, host: &str) -> StoreResult<()> {
        self.durable.release_node(id, host).await?;
        self.mirror(
            "release_node",
            self.mem.release_node(id, host).await,
            Some(id),
        )
        .await;
        Ok(())
    }
    async fn clear_reservations(&self, host: &str) -> StoreResult<usize> {
        let n = self.durable.clear_reservations(host).await?;
        self.mirror(
            "clear_reservations",
            self.mem.clear_reservations(host).await,
            None,
        )
        .await;
        Ok(n)
    }

    async fn create_port(&self, port: &Port) -> StoreResult<()> {
        self.durable.create_port(port).await?;
        self.mirror("create_port", self.mem.create_port(port).await, None)
            .await;
        Ok(())
    }
    async fn get_port(&self, ident: &Ident) -> StoreResult<Port> {
        self.mem.get_port(ident).await
    }
    async fn get_port_by_address(&self, address: MacAddress) -> StoreResult<Port> {
        self.mem.get_port_by_address(address).await
    }
    async fn update_port(&self, port: &Port) -> StoreResult<()> {
        self.durable.update_port(port).await?;
        self.mirror("update_port", self.mem.update_port(port).await, None)
            .await;
        Ok(())
    }
    async fn delete_port(&self, id: PortId) -> StoreResult<()> {
        self.durable.delete_port(id).await?;
        self.mirror("delete_port", self.mem.delete_port(id).await, None)
            .await;
        Ok(())
    }
    async fn list_ports(&self, query: &PortQuery) -> StoreResult<Vec<Port>> {
        self.mem.list_ports(query).await
    }

    async fn create_portgroup(&self, pg: &Portgroup) -> StoreResult<()> {
        self.durable.create_portgroup(pg).await?;
        self.mirror(
            "create_portgroup",
            self.mem.create_portgroup(pg).await,
            None,
        )
        .await;
        Ok(())
    }
    async fn get_portgroup(&self, ident: &Ident) -> StoreResult<Portgroup> {
        self.mem.get_portgroup(ident).await
    }
    async fn update_portgroup(&self, pg: &Portgroup) -> StoreResult<()> {
        self.durable.update_portgroup(pg).await?;
        self.mirror(
            "update_portgroup",
            self.mem.update_portgroup(pg).await,
            None,
        )
        .await;
        Ok(())
    }
    async fn delete_portgroup(&self, id: PortgroupId) -> StoreResult<()> {
        self.durable.delete_portgroup(id).await?;
        self.mirror(
            "delete_portgroup",
            self.mem.delete_portgroup(id).await,
            None,
        )
        .await;
        Ok(())
    }
    async fn list_portgroups(&self, node: Option<NodeId>) -> StoreResult<Vec<Portgroup>> {
        self.mem.list_portgroups(node).await
    }

    async fn create_chassis(&self, c: &Chassis) -> StoreResult<()> {
        self.durable.create_chassis(c).await?;
        self.mirror("create_chassis", self.mem.create_chassis(c).await, None)
            .await;
        Ok(())
    }
    async fn get_chassis(&self, id: ChassisId) -> StoreResult<Chassis> {
        self.mem.get_chassis(id).await
    }
    async fn update_chassis(&self, c: &Chassis) -> StoreResult<()> {
        self.durable.update_chassis(c).await?;
        self.mirror("update_chassis", self.mem.update_chassis(c).await, None)
            .await;
        Ok(())
    }
    async fn delete_chassis(&self, id: ChassisId) -> StoreResult<()> {
        self.durable.delete_chassis(id).await?;
        self.mirror("delete_chassis", self.mem.delete_chassis(id).await, None)
            .await;
        Ok(())
    }
    async fn list_chassis(&self) -> StoreResult<Vec<Chassis>> {
        self.mem.list_chassis().await
    }

    async fn create_allocation(&self, a: &Allocation) -> StoreResult<()> {
        self.durable.create_allocation(a).await
    }
    async fn get_allocation(&self, ident: &Ident) -> StoreResult<Allocation> {
        self.durable.get_allocation(ident).await
    }
    async fn update_allocation(&self, a: &Allocation) -> StoreResult<()> {
        self.durable.update_allocation(a).await
    }
    async fn delete_allocation(&self, id: AllocationId) -> StoreResult<()> {
        self.durable.delete_allocation(id).await
    }
    async fn list_allocations(&self) -> StoreResult<Vec<Allocation>> {
        self.durable.list_allocations().await
    }
    async fn create_deploy_template(&self, t: &DeployTemplate) -> StoreResult<()> {
        self.durable.create_deploy_template(t).await
    }
    async fn get_deploy_template(&self, ident: &Ident) -> StoreResult<DeployTemplate> {
        self.durable.get_deploy_template(ident).await
    }
    async fn update_deploy_template(&self, t: &DeployTemplate) -> StoreResult<()> {
        self.durable.update_deploy_template(t).await
    }
    async fn delete_deploy_template(&self, id: DeployTemplateId) -> StoreResult<()> {
        self.durable.delete_deploy_template(id).await
    }
    async fn list_deploy_templates(&self) -> StoreResult<Vec<DeployTemplate>> {
        self.durable.list_deploy_templates().await
    }
    async fn create_volume_connector(&self, c: &VolumeConnector) -> StoreResult<()> {
        self.durable.create_volume_connector(c).await
    }
    async fn get_volume_connector(&self, id: VolumeConnectorId) -> StoreResult<VolumeConnector> {
        self.durable.get_volume_connector(id).await
    }
    async fn update_volume_connector(&self, c: &VolumeConnector) -> StoreResult<()> {
        self.durable.update_volume_connector(c).await
    }
    async fn delete_volume_connector(&self, id: VolumeConnectorId) -> StoreResult<()> {
        self.durable.delete_volume_connector(id).await
    }
    async fn list_volume_connectors(
        &self,
        node: Option<NodeId>,
    ) -> StoreResult<Vec<VolumeConnector>> {
        self.durable.list_volume_connectors(node).await
    }
    async fn create_volume_target(&self, t: &VolumeTarget) -> StoreResult<()> {
        self.durable.create_volume_target(t).await
    }
    async fn get_volume_target(&self, id: VolumeTargetId) -> StoreResult<VolumeTarget> {
        self.durable.get_volume_target(id).await
    }
    async fn update_volume_target(&self, t: &VolumeTarget) -> StoreResult<()> {
        self.durable.update_volume_target(t).await
    }
    async fn delete_volume_target(&self, id: VolumeTargetId) -> StoreResult<()> {
        self.durable.delete_volume_target(id).await
    }
    async fn list_volume_targets(&self, node: Option<NodeId>) -> StoreResult<Vec<VolumeTarget>> {
        self.durable.list_volume_targets(node).await
    }
    async fn create_inspection_rule(&self, r: &InspectionRule) -> StoreResult<()> {
        self.durable.create_inspection_rule(r).await
    }
    async fn get_inspection_rule(&self, id: InspectionRuleId) -> StoreResult<InspectionRule> {
        self.durable.get_inspection_rule(id).await
    }
    async fn update_inspection_rule(&self, r: &InspectionRule) -> StoreResult<()> {
        self.durable.update_inspection_rule(r).await
    }
    async fn delete_inspection_rule(&self, id: InspectionRuleId) -> StoreResult<()> {
        self.durable.delete_inspection_rule(id).await
    }
    async fn list_inspection_rules(&self) -> StoreResult<Vec<InspectionRule>> {
        self.durable.list_inspection_rules().await
    }
    async fn create_runbook(&self, r: &Runbook) -> StoreResult<()> {
        self.durable.create_runbook(r).await
    }
    async fn get_runbook(&self, ident: &Ident) -> StoreResult<Runbook> {
        self.durable.get_runbook(ident).await
    }
    async fn update_runbook(&self, r: &Runbook) -> StoreResult<()> {
        self.durable.update_runbook(r).await
    }
    async fn delete_runbook(&self, id: RunbookId) -> StoreResult<()> {
        self.durable.delete_runbook(id).await
    }
    async fn list_runbooks(&self) -> StoreResult<Vec<Runbook>> {
        self.durable.list_runbooks().await
    }
    async fn upsert_conductor(&self, c: &ConductorRecord) -> StoreResult<()> {
        self.durable.upsert_conductor(c).await
    }
    async fn touch_conductor(&self, hostname: &str) -> StoreResult<()> {
        self.durable.touch_conductor(hostname).await
    }
    async fn delete_conductor(&self, hostname: &str) -> StoreResult<()> {
        self.durable.delete_conductor(hostname).await
    }
    async fn list_conductors(&self) -> StoreResult<Vec<ConductorRecord>> {
        self.durable.list_conductors().await
    }
    async fn forget_conductor(
        &self,
        hostname: &str,
        stamped_before: ironic_core::model::Timestamp,
    ) -> StoreResult<bool> {
        self.durable
            .forget_conductor(hostname, stamped_before)
            .await
    }
    async fn now(&self) -> StoreResult<ironic_core::model::Timestamp> {
        self.durable.now().await
    }
    async fn notify(&self, payload: &str) -> StoreResult<()> {
        self.durable.notify(payload).await
    }
    fn notifications(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.durable.notifications()
    }
    async fn add_history(&self, e: &HistoryEvent, max_per_node: usize) -> StoreResult<()> {
        self.durable.add_history(e, max_per_node).await
    }
    async fn list_history(&self, node: NodeId) -> StoreResult<Vec<HistoryEvent>> {
        self.durable.list_history(node).await
    }
    async fn set_bios_settings(&self, node: NodeId, s: &[BiosSetting]) -> StoreResult<()> {
        self.durable.set_bios_settings(node, s).await
    }
    async fn get_bios_settings(&self, node: NodeId) -> StoreResult<Vec<BiosSetting>> {
        self.durable.get_bios_settings(node).await
    }
    async fn set_firmware_components(
        &self,
        node: NodeId,
        c: &[FirmwareComponent],
    ) -> StoreResult<()> {
        self.durable.set_firmware_components(node, c).await
    }
    async fn get_firmware_components(&self, node: NodeId) -> StoreResult<Vec<FirmwareComponent>> {
        self.durable.get_firmware_components(node).await
    }
    async fn set_inventory(&self, node: NodeId, inventory: &serde_json::Value) -> StoreResult<()> {
        self.durable.set_inventory(node, inventory).await
    }
    async fn get_inventory(&self, node: NodeId) -> StoreResult<Option<serde_json::Value>> {
        self.durable.get_inventory(node).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_come_from_memory_and_writes_reach_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ironic.sqlite");
        let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
        let mut n = Node::new("fake-hardware");
        n.name = Some("before".into());
        sqlite.create_node(&n).await.unwrap();
        let cached = CachedStore::load(sqlite.clone()).await.unwrap();
        // Loaded at start.
        assert_eq!(
            cached
                .get_node(&Ident::Name("before".into()))
                .await
                .unwrap()
                .uuid,
            n.uuid
        );
        // A write goes to both.
        let mut m = Node::new("fake-hardware");
        m.name = Some("after".into());
        cached.create_node(&m).await.unwrap();
        assert!(sqlite.get_node(&m.uuid.into()).await.is_ok());
        // Uniqueness is still the durable store's: a duplicate name is refused
        // and the mirror is untouched.
        let mut dup = Node::new("fake-hardware");
        dup.name = Some("after".into());
        assert!(matches!(
            cached.create_node(&dup).await,
            Err(StoreError::Duplicate(_))
        ));
        assert_eq!(
            cached
                .list_nodes(&NodeQuery::default())
                .await
                .unwrap()
                .len(),
            2
        );
        // Reservations: compare-and-set on the durable store, mirrored.
        cached.reserve_node(m.uuid, "c1").await.unwrap();
        assert!(cached.reserve_node(m.uuid, "c2").await.is_err());
        assert_eq!(
            cached
                .get_node(&m.uuid.into())
                .await
                .unwrap()
                .reservation
                .as_deref(),
            Some("c1")
        );
        cached.release_node(m.uuid, "c1").await.unwrap();
        assert!(
            cached
                .get_node(&m.uuid.into())
                .await
                .unwrap()
                .reservation
                .is_none()
        );
        // A restart on the same file sees everything.
        drop(cached);
        let again = CachedStore::load(sqlite).await.unwrap();
        assert_eq!(
            again.list_nodes(&NodeQuery::default()).await.unwrap().len(),
            2
        );
    }
}
