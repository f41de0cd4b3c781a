//! [`ObservedStore`]: a [`Store`] that reports the latency of every call.
//!
//! Generated from the `Store` trait: every method, including those with a default
//! body, is forwarded, so the wrapped store's own implementations are kept.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::Observer;
use crate::driver::{BiosSetting, FirmwareComponent};
use crate::ids::*;
use crate::mac::MacAddress;
use crate::model::*;
use crate::store::*;

/// A [`Store`] wrapped to report each call's latency to an [`Observer`]
/// ([`Observer::store_call`]); [`Conductor::start_observed`](crate::Conductor::start_observed)
/// wraps the conductor's store with it.
#[derive(Debug)]
pub struct ObservedStore {
    inner: Arc<dyn Store>,
    obs: Arc<dyn Observer>,
}

impl ObservedStore {
    /// Wrap `inner`, reporting to `obs`.
    pub fn new(inner: Arc<dyn Store>, obs: Arc<dyn Observer>) -> Self {
        ObservedStore { inner, obs }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    fn done(&self, op: &'static str, started: Instant, ok: bool) {
        self.obs.store_call(&super::StoreCall {
            op,
            duration: started.elapsed(),
            ok,
        });
    }
}

#[async_trait]
impl Store for ObservedStore {
    async fn notify(&self, payload: &str) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.notify(payload).await;
        self.done("notify", started, r.is_ok());
        r
    }

    fn notifications(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.inner.notifications()
    }

    async fn list_nodes_shared(&self, query: &NodeQuery) -> StoreResult<Vec<Arc<Node>>> {
        let started = Instant::now();
        let r = self.inner.list_nodes_shared(query).await;
        self.done("list_nodes_shared", started, r.is_ok());
        r
    }

    async fn create_node(&self, node: &Node) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.create_node(node).await;
        self.done("create_node", started, r.is_ok());
        r
    }

    async fn get_node(&self, ident: &Ident) -> StoreResult<Node> {
        let started = Instant::now();
        let r = self.inner.get_node(ident).await;
        self.done("get_node", started, r.is_ok());
        r
    }

    async fn update_node(&self, node: &Node) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.update_node(node).await;
        self.done("update_node", started, r.is_ok());
        r
    }

    async fn delete_node(&self, id: NodeId) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.delete_node(id).await;
        self.done("delete_node", started, r.is_ok());
        r
    }

    async fn list_nodes(&self, query: &NodeQuery) -> StoreResult<Vec<Node>> {
        let started = Instant::now();
        let r = self.inner.list_nodes(query).await;
        self.done("list_nodes", started, r.is_ok());
        r
    }

    async fn count_nodes(&self, filter: &NodeFilter) -> StoreResult<usize> {
        let started = Instant::now();
        let r = self.inner.count_nodes(filter).await;
        self.done("count_nodes", started, r.is_ok());
        r
    }

    async fn reserve_node(&self, id: NodeId, host: &str) -> StoreResult<Node> {
        let started = Instant::now();
        let r = self.inner.reserve_node(id, host).await;
        self.done("reserve_node", started, r.is_ok());
        r
    }

    async fn release_node(&self, id: NodeId, host: &str) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.release_node(id, host).await;
        self.done("release_node", started, r.is_ok());
        r
    }

    async fn update_node_and_release(&self, node: &Node, host: &str) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.update_node_and_release(node, host).await;
        self.done("update_node_and_release", started, r.is_ok());
        r
    }

    async fn clear_reservations(&self, host: &str) -> StoreResult<usize> {
        let started = Instant::now();
        let r = self.inner.clear_reservations(host).await;
        self.done("clear_reservations", started, r.is_ok());
        r
    }

    async fn create_port(&self, port: &Port) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.create_port(port).await;
        self.done("create_port", started, r.is_ok());
        r
    }

    async fn get_port(&self, ident: &Ident) -> StoreResult<Port> {
        let started = Instant::now();
        let r = self.inner.get_port(ident).await;
        self.done("get_port", started, r.is_ok());
        r
    }

    async fn get_port_by_address(&self, address: MacAddress) -> StoreResult<Port> {
        let started = Instant::now();
        let r = self.inner.get_port_by_address(address).await;
        self.done("get_port_by_address", started, r.is_ok());
        r
    }

    async fn update_port(&self, port: &Port) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.update_port(port).await;
        self.done("update_port", started, r.is_ok());
        r
    }

    async fn delete_port(&self, id: PortId) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.delete_port(id).await;
        self.done("delete_port", started, r.is_ok());
        r
    }

    async fn list_ports(&self, query: &PortQuery) -> StoreResult<Vec<Port>> {
        let started = Instant::now();
        let r = self.inner.list_ports(query).await;
        self.done("list_ports", started, r.is_ok());
        r
    }

    async fn create_portgroup(&self, pg: &Portgroup) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.create_portgroup(pg).await;
        self.done("create_portgroup", started, r.is_ok());
        r
    }

    async fn get_portgroup(&self, ident: &Ident) -> StoreResult<Portgroup> {
        let started = Instant::now();
        let r = self.inner.get_portgroup(ident).await;
        self.done("get_portgroup", started, r.is_ok());
        r
    }

    async fn update_portgroup(&self, pg: &Portgroup) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.update_portgroup(pg).await;
        self.done("update_portgroup", started, r.is_ok());
        r
    }

    async fn delete_portgroup(&self, id: PortgroupId) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.delete_portgroup(id).await;
        self.done("delete_portgroup", started, r.is_ok());
        r
    }

    async fn list_portgroups(&self, node: Option<NodeId>) -> StoreResult<Vec<Portgroup>> {
        let started = Instant::now();
        let r = self.inner.list_portgroups(node).await;
        self.done("list_portgroups", started, r.is_ok());
        r
    }

    async fn create_chassis(&self, c: &Chassis) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.create_chassis(c).await;
        self.done("create_chassis", started, r.is_ok());
        r
    }

    async fn get_chassis(&self, id: ChassisId) -> StoreResult<Chassis> {
        let started = Instant::now();
        let r = self.inner.get_chassis(id).await;
        self.done("get_chassis", started, r.is_ok());
        r
    }

    async fn update_chassis(&self, c: &Chassis) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.update_chassis(c).await;
        self.done("update_chassis", started, r.is_ok());
        r
    }

    async fn delete_chassis(&self, id: ChassisId) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.delete_chassis(id).await;
        self.done("delete_chassis", started, r.is_ok());
        r
    }

    async fn list_chassis(&self) -> StoreResult<Vec<Chassis>> {
        let started = Instant::now();
        let r = self.inner.list_chassis().await;
        self.done("list_chassis", started, r.is_ok());
        r
    }

    async fn create_allocation(&self, a: &Allocation) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.create_allocation(a).await;
        self.done("create_allocation", started, r.is_ok());
        r
    }

    async fn get_allocation(&self, ident: &Ident) -> StoreResult<Allocation> {
        let started = Instant::now();
        let r = self.inner.get_allocation(ident).await;
        self.done("get_allocation", started, r.is_ok());
        r
    }

    async fn update_allocation(&self, a: &Allocation) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.update_allocation(a).await;
        self.done("update_allocation", started, r.is_ok());
        r
    }

    async fn delete_allocation(&self, id: AllocationId) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.delete_allocation(id).await;
        self.done("delete_allocation", started, r.is_ok());
        r
    }

    async fn list_allocations(&self) -> StoreResult<Vec<Allocation>> {
        let started = Instant::now();
        let r = self.inner.list_allocations().await;
        self.done("list_allocations", started, r.is_ok());
        r
    }

    async fn create_deploy_template(&self, t: &DeployTemplate) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.create_deploy_template(t).await;
        self.done("create_deploy_template", started, r.is_ok());
        r
    }

    async fn get_deploy_template(&self, ident: &Ident) -> StoreResult<DeployTemplate> {
        let started = Instant::now();
        let r = self.inner.get_deploy_template(ident).await;
        self.done("get_deploy_template", started, r.is_ok());
        r
    }

    async fn update_deploy_template(&self, t: &DeployTemplate) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.update_deploy_template(t).await;
        self.done("update_deploy_template", started, r.is_ok());
        r
    }

    async fn delete_deploy_template(&self, id: DeployTemplateId) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.delete_deploy_template(id).await;
        self.done("delete_deploy_template", started, r.is_ok());
        r
    }

    async fn list_deploy_templates(&self) -> StoreResult<Vec<DeployTemplate>> {
        let started = Instant::now();
        let r = self.inner.list_deploy_templates().await;
        self.done("list_deploy_templates", started, r.is_ok());
        r
    }

    async fn create_volume_connector(&self, c: &VolumeConnector) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.create_volume_connector(c).await;
        self.done("create_volume_connector", started, r.is_ok());
        r
    }

    async fn get_volume_connector(&self, id: VolumeConnectorId) -> StoreResult<VolumeConnector> {
        let started = Instant::now();
        let r = self.inner.get_volume_connector(id).await;
        self.done("get_volume_connector", started, r.is_ok());
        r
    }

    async fn update_volume_connector(&self, c: &VolumeConnector) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.update_volume_connector(c).await;
        self.done("update_volume_connector", started, r.is_ok());
        r
    }

    async fn delete_volume_connector(&self, id: VolumeConnectorId) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.delete_volume_connector(id).await;
        self.done("delete_volume_connector", started, r.is_ok());
        r
    }

    async fn list_volume_connectors(
        &self,
        node: Option<NodeId>,
    ) -> StoreResult<Vec<VolumeConnector>> {
        let started = Instant::now();
        let r = self.inner.list_volume_connectors(node).await;
        self.done("list_volume_connectors", started, r.is_ok());
        r
    }

    async fn create_volume_target(&self, t: &VolumeTarget) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.create_volume_target(t).await;
        self.done("create_volume_target", started, r.is_ok());
        r
    }

    async fn get_volume_target(&self, id: VolumeTargetId) -> StoreResult<VolumeTarget> {
        let started = Instant::now();
        let r = self.inner.get_volume_target(id).await;
        self.done("get_volume_target", started, r.is_ok());
        r
    }

    async fn update_volume_target(&self, t: &VolumeTarget) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.update_volume_target(t).await;
        self.done("update_volume_target", started, r.is_ok());
        r
    }

    async fn delete_volume_target(&self, id: VolumeTargetId) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.delete_volume_target(id).await;
        self.done("delete_volume_target", started, r.is_ok());
        r
    }

    async fn list_volume_targets(&self, node: Option<NodeId>) -> StoreResult<Vec<VolumeTarget>> {
        let started = Instant::now();
        let r = self.inner.list_volume_targets(node).await;
        self.done("list_volume_targets", started, r.is_ok());
        r
    }

    async fn create_inspection_rule(&self, r: &InspectionRule) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.create_inspection_rule(r).await;
        self.done("create_inspection_rule", started, r.is_ok());
        r
    }
    async fn get_inspection_rule(&self, id: InspectionRuleId) -> StoreResult<InspectionRule> {
        let started = Instant::now();
        let r = self.inner.get_inspection_rule(id).await;
        self.done("get_inspection_rule", started, r.is_ok());
        r
    }
    async fn update_inspection_rule(&self, r: &InspectionRule) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.update_inspection_rule(r).await;
        self.done("update_inspection_rule", started, r.is_ok());
        r
    }
    async fn delete_inspection_rule(&self, id: InspectionRuleId) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.delete_inspection_rule(id).await;
        self.done("delete_inspection_rule", started, r.is_ok());
        r
    }
    async fn list_inspection_rules(&self) -> StoreResult<Vec<InspectionRule>> {
        let started = Instant::now();
        let r = self.inner.list_inspection_rules().await;
        self.done("list_inspection_rules", started, r.is_ok());
        r
    }
    async fn create_runbook(&self, r: &Runbook) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.create_runbook(r).await;
        self.done("create_runbook", started, r.is_ok());
        r
    }

    async fn get_runbook(&self, ident: &Ident) -> StoreResult<Runbook> {
        let started = Instant::now();
        let r = self.inner.get_runbook(ident).await;
        self.done("get_runbook", started, r.is_ok());
        r
    }

    async fn update_runbook(&self, r: &Runbook) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.update_runbook(r).await;
        self.done("update_runbook", started, r.is_ok());
        r
    }

    async fn delete_runbook(&self, id: RunbookId) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.delete_runbook(id).await;
        self.done("delete_runbook", started, r.is_ok());
        r
    }

    async fn list_runbooks(&self) -> StoreResult<Vec<Runbook>> {
        let started = Instant::now();
        let r = self.inner.list_runbooks().await;
        self.done("list_runbooks", started, r.is_ok());
        r
    }

    async fn upsert_conductor(&self, c: &ConductorRecord) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.upsert_conductor(c).await;
        self.done("upsert_conductor", started, r.is_ok());
        r
    }

    async fn touch_conductor(&self, hostname: &str) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.touch_conductor(hostname).await;
        self.done("touch_conductor", started, r.is_ok());
        r
    }

    async fn delete_conductor(&self, hostname: &str) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.delete_conductor(hostname).await;
        self.done("delete_conductor", started, r.is_ok());
        r
    }

    async fn forget_conductor(
        &self,
        hostname: &str,
        stamped_before: crate::model::Timestamp,
    ) -> StoreResult<bool> {
        let started = Instant::now();
        let r = self.inner.forget_conductor(hostname, stamped_before).await;
        self.done("forget_conductor", started, r.is_ok());
        r
    }

    async fn list_conductors(&self) -> StoreResult<Vec<ConductorRecord>> {
        let started = Instant::now();
        let r = self.inner.list_conductors().await;
        self.done("list_conductors", started, r.is_ok());
        r
    }

    async fn now(&self) -> StoreResult<Timestamp> {
        let started = Instant::now();
        let r = self.inner.now().await;
        self.done("now", started, r.is_ok());
        r
    }

    async fn add_history(&self, e: &HistoryEvent, max_per_node: usize) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.add_history(e, max_per_node).await;
        self.done("add_history", started, r.is_ok());
        r
    }

    async fn list_history(&self, node: NodeId) -> StoreResult<Vec<HistoryEvent>> {
        let started = Instant::now();
        let r = self.inner.list_history(node).await;
        self.done("list_history", started, r.is_ok());
        r
    }

    async fn set_bios_settings(&self, node: NodeId, s: &[BiosSetting]) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.set_bios_settings(node, s).await;
        self.done("set_bios_settings", started, r.is_ok());
        r
    }

    async fn get_bios_settings(&self, node: NodeId) -> StoreResult<Vec<BiosSetting>> {
        let started = Instant::now();
        let r = self.inner.get_bios_settings(node).await;
        self.done("get_bios_settings", started, r.is_ok());
        r
    }

    async fn set_firmware_components(
        &self,
        node: NodeId,
        c: &[FirmwareComponent],
    ) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.set_firmware_components(node, c).await;
        self.done("set_firmware_components", started, r.is_ok());
        r
    }

    async fn get_firmware_components(&self, node: NodeId) -> StoreResult<Vec<FirmwareComponent>> {
        let started = Instant::now();
        let r = self.inner.get_firmware_components(node).await;
        self.done("get_firmware_components", started, r.is_ok());
        r
    }

    async fn set_inventory(&self, node: NodeId, inventory: &serde_json::Value) -> StoreResult<()> {
        let started = Instant::now();
        let r = self.inner.set_inventory(node, inventory).await;
        self.done("set_inventory", started, r.is_ok());
        r
    }

    async fn get_inventory(&self, node: NodeId) -> StoreResult<Option<serde_json::Value>> {
        let started = Instant::now();
        let r = self.inner.get_inventory(node).await;
        self.done("get_inventory", started, r.is_ok());
        r
    }
}
