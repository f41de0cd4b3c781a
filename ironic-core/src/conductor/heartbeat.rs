//! The agent's endpoints: lookup, heartbeat, continue_inspection.
//!
//! The agent token lives in `driver_internal_info.agent_secret_token`. Lookup
//! hands it out once (43 URL-safe characters) and `"******"` afterwards; every
//! heartbeat must carry it (compared in constant time). It is wiped whenever a
//! ramdisk is booted for a new operation and when the operation ends, so each
//! ramdisk boot gets a fresh one.

use base64::Engine;
use rand::RngCore;
use serde_json::Value;

use super::job::Job;
use super::{Conductor, LookupResult, NodeEvent};
use crate::driver::{Heartbeat, HeartbeatOutcome, InspectionData};
use crate::error::{Error, Result};
use crate::ids::{Ident, NodeId};
use crate::mac::MacAddress;
use crate::model::{Node, Port};
use crate::observe::{HeartbeatResult, heartbeat_event};
use crate::secret::{MASK, Secret};
use crate::states::{Event, ProvisionState as S};
use crate::store::PortQuery;

const TOKEN_KEY: &str = "agent_secret_token";

fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn lookup_not_found(addresses: &[MacAddress], node: Option<NodeId>) -> Error {
    let what = match node {
        Some(n) => n.to_string(),
        None => addresses
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(","),
    };
    Error::NotFound {
        kind: "Node",
        ident: what,
    }
}

fn check_callback_url(url: &str, require_tls: bool) -> Result<()> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "Invalid callback_url {url:?}: it must be an http:// or https:// URL"
            ))
        })?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
        return Err(Error::Invalid(format!(
            "Invalid callback_url {url:?}: it has no host"
        )));
    }
    if require_tls && !url.starts_with("https://") {
        return Err(Error::Invalid(format!(
            "TLS is required but the agent's callback_url {url:?} is not https"
        )));
    }
    Ok(())
}

impl Conductor {
    async fn find_by_addresses(&self, addresses: &[MacAddress]) -> Result<Option<NodeId>> {
        if addresses.is_empty() {
            return Ok(None);
        }
        let ports = self
            .store()
            .list_ports(&PortQuery {
                addresses: Some(addresses.to_vec()),
                ..Default::default()
            })
            .await?;
        let mut nodes: Vec<NodeId> = ports.iter().map(|p| p.node_uuid).collect();
        nodes.sort();
        nodes.dedup();
        Ok(match nodes.as_slice() {
            [one] => Some(*one),
            _ => None,
        })
    }

    /// Agent lookup (`GET /v1/lookup`): the node owning one of `addresses` (or
    /// `node_uuid`), only in `LOOKUP_ALLOWED_STATES` (anything else is `NotFound`
    /// with the same message as an unknown node). Issues the agent token the first
    /// time; `"******"` afterwards.
    pub async fn lookup(
        &self,
        addresses: &[MacAddress],
        node_uuid: Option<NodeId>,
    ) -> Result<LookupResult> {
        if addresses.is_empty() && node_uuid.is_none() {
            return Err(Error::Invalid(
                "Lookup needs at least one valid MAC address or a node UUID".to_owned(),
            ));
        }
        let id = match node_uuid {
            Some(id) => Some(id),
            None => self.find_by_addresses(addresses).await?,
        };
        let id = id.ok_or_else(|| lookup_not_found(addresses, node_uuid))?;
        let node = self
            .store()
            .get_node(&id.into())
            .await
            .map_err(|_| lookup_not_found(addresses, node_uuid))?;
        if !node.provision_state.lookup_allowed() {
            return Err(lookup_not_found(addresses, node_uuid));
        }
        if node.internal(TOKEN_KEY).is_some() {
            return Ok(LookupResult {
                node,
                agent_token: MASK.to_owned(),
            });
        }
        let mut job = self.job(&id.into(), false).await?;
        let r = async {
            if !job.node().provision_state.lookup_allowed() {
                return Err(lookup_not_found(addresses, node_uuid));
            }
            if job.node().internal(TOKEN_KEY).is_some() {
                return Ok(MASK.to_owned());
            }
            let token = new_token();
            job.node_mut().set_internal(TOKEN_KEY, token.clone());
            job.save().await?;
            tracing::info!(node = %id, "agent token issued");
            Ok(token)
        }
        .await;
        let node = job.node().clone();
        job.finish().await;
        Ok(LookupResult {
            node,
            agent_token: r?,
        })
    }

    /// Agent heartbeat (`POST /v1/heartbeat/{node}`): checks the token (constant
    /// time), the callback URL (pinned once known) and the CA (pinned), records the
    /// agent's details, touches `provision_updated_at`, then has the deploy
    /// interface judge the heartbeat on a worker and acts on its
    /// [`HeartbeatOutcome`]: continue the steps, fail the operation, or wait.
    ///
    /// If the node is locked by another operation the heartbeat is skipped
    /// (`Ok`), or refused with `NodeLocked` when the agent is not yet known, as
    /// Ironic does.
    pub async fn heartbeat(&self, ident: &Ident, agent_token: &str, hb: Heartbeat) -> Result<()> {
        match self.heartbeat_inner(ident, agent_token, hb).await {
            // deferred until the lock is free: reported then
            Ok(None) => Ok(()),
            Ok(Some((state, result))) => {
                self.observer()
                    .heartbeat(&heartbeat_event(Some(state), result));
                Ok(())
            }
            Err(e) => {
                self.observer()
                    .heartbeat(&heartbeat_event(None, HeartbeatResult::Refused));
                Err(e)
            }
        }
    }

    async fn heartbeat_inner(
        &self,
        ident: &Ident,
        agent_token: &str,
        hb: Heartbeat,
    ) -> Result<Option<(crate::states::ProvisionState, HeartbeatResult)>> {
        self.check_accepting()?;
        let node = self.store().get_node(ident).await?;
        check_token(&node, agent_token)?;
        check_callback_url(&hb.callback_url, self.config().require_agent_tls)?;
        if hb.agent_version.is_none() && hb.agent_status.is_none() {
            return Err(Error::Invalid(
                "The agent did not send its version; the agent must be upgraded".to_owned(),
            ));
        }
        check_pins(&node, &hb)?;
        let job = match self.job(ident, false).await {
            Ok(j) => j,
            Err(Error::NodeLocked { .. }) if node.internal("agent_url").is_some() => {
                // Ironic skips a heartbeat that finds the node locked ("will retry on
                // the next heartbeat"): the agent then waits a whole heartbeat interval
                // (90-180 s with Ironic's default timeout) before a finished step is
                // seen. Here the heartbeat waits for the lock in the background
                // (node_locked_retry_attempts x node_locked_retry_interval) and is
                // processed as if it had just arrived; the agent gets its 202 at once.
                tracing::debug!(node = %node.uuid, "node is locked; the heartbeat waits for the lock");
                let c = self.clone();
                let ident = ident.clone();
                let token = agent_token.to_owned();
                let state = node.provision_state;
                tokio::spawn(async move {
                    let seen = match c.job(&ident, true).await {
                        Ok(job) => match c.act_on_heartbeat(job, &token, hb).await {
                            Ok((state, result)) => heartbeat_event(Some(state), result),
                            Err(e) => {
                                tracing::info!(node = %ident, error = %e, "deferred heartbeat refused");
                                heartbeat_event(Some(state), HeartbeatResult::Refused)
                            }
                        },
                        Err(e) => {
                            tracing::debug!(node = %ident, error = %e, "node still locked; heartbeat skipped (the agent sends the next one)");
                            heartbeat_event(Some(state), HeartbeatResult::Skipped)
                        }
                    };
                    c.observer().heartbeat(&seen);
                });
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        self.act_on_heartbeat(job, agent_token, hb).await.map(Some)
    }

    /// Record a heartbeat under the node's lock and, when its state accepts one, hand
    /// it to the deploy interface on a worker.
    async fn act_on_heartbeat(
        &self,
        mut job: Job,
        agent_token: &str,
        hb: Heartbeat,
    ) -> Result<(crate::states::ProvisionState, HeartbeatResult)> {
        let r = self.record_heartbeat(&mut job, agent_token, &hb).await;
        let act = match r {
            Ok(act) => act,
            Err(e) => {
                job.finish().await;
                return Err(e);
            }
        };
        let state = job.node().provision_state;
        if !act {
            job.finish().await;
            return Ok((state, HeartbeatResult::Recorded));
        }
        if let Err(e) = job.reserve_worker() {
            job.finish().await;
            return Err(e);
        }
        self.spawn_job(job, move |job| process_heartbeat(job, hb));
        Ok((state, HeartbeatResult::Processed))
    }

    /// Check again under the lock, record the agent, decide whether to act.
    async fn record_heartbeat(&self, job: &mut Job, token: &str, hb: &Heartbeat) -> Result<bool> {
        check_token(job.node(), token)?;
        check_pins(job.node(), hb)?;
        let state = job.node().provision_state;
        let n = job.node_mut();
        n.set_internal("agent_url", hb.callback_url.clone());
        if let Some(v) = &hb.agent_version {
            n.set_internal("agent_version", v.clone());
        }
        if let Some(ca) = &hb.agent_verify_ca {
            n.set_internal("agent_verify_ca", ca.clone());
        }
        if let Some(s) = &hb.agent_status {
            n.set_internal("agent_status", s.clone());
        }
        n.set_internal("agent_last_heartbeat", crate::model::now().to_rfc3339());
        if state.heartbeat_allowed() {
            n.provision_updated_at = Some(crate::model::now());
        }
        job.save().await?;
        if !state.heartbeat_allowed() {
            tracing::debug!(node = %job.node().uuid, state = %state, "heartbeat in a state that does not accept one; ignored");
            return Ok(false);
        }
        if job.node().maintenance {
            if self.config().allow_provisioning_in_maintenance {
                tracing::info!(node = %job.node().uuid, "heartbeat for a node in maintenance; ignored");
                return Ok(false);
            }
            return Ok(true);
        }
        Ok(true)
    }

    /// In-band inspection data (`POST /v1/continue_inspection`): finds the node
    /// (by UUID or by the inventory's MAC addresses), which must be in `inspect
    /// wait`, issues an agent token as lookup does, and processes the data on a
    /// worker: merges properties, creates ports for new MAC addresses, stores the
    /// inventory, and finishes inspection.
    pub async fn continue_inspection(
        &self,
        node: Option<NodeId>,
        inventory: Value,
    ) -> Result<LookupResult> {
        self.check_accepting()?;
        let macs = inventory_macs(&inventory);
        let id = match node {
            Some(n) => Some(n),
            None => self.find_by_addresses(&macs).await?,
        };
        let id = id.ok_or_else(|| lookup_not_found(&macs, node))?;
        let mut job = self.job(&id.into(), true).await?;
        if job.node().provision_state != S::InspectWait {
            let e = Error::InvalidState {
                action: "continue_inspection".to_owned(),
                node: id.to_string(),
                state: job.node().provision_state.to_string(),
            };
            job.finish().await;
            return Err(e);
        }
        let token = if job.node().internal(TOKEN_KEY).is_some() {
            MASK.to_owned()
        } else {
            new_token()
        };
        if token != MASK {
            job.node_mut().set_internal(TOKEN_KEY, token.clone());
        }
        job.node_mut().provision_updated_at = Some(crate::model::now());
        if let Err(e) = job.save().await {
            job.finish().await;
            return Err(e);
        }
        if let Err(e) = job.reserve_worker() {
            job.finish().await;
            return Err(e);
        }
        let node = job.node().clone();
        self.spawn_job(job, move |job| process_inspection(job, inventory));
        Ok(LookupResult {
            node,
            agent_token: token,
        })
    }
}

fn check_token(node: &Node, token: &str) -> Result<()> {
    let stored = node
        .internal(TOKEN_KEY)
        .and_then(Value::as_str)
        .map(Secret::new);
    match stored {
        Some(s) if s.ct_eq(token) => Ok(()),
        _ => Err(Error::Invalid(
            "Invalid or missing agent token received.".to_owned(),
        )),
    }
}

fn check_pins(node: &Node, hb: &Heartbeat) -> Result<()> {
    if let Some(url) = node.internal("agent_url").and_then(Value::as_str)
        && url != hb.callback_url
    {
        return Err(Error::Invalid(format!(
            "Detected change in ramdisk provided callback_url for node {}; refusing the heartbeat",
            node.uuid
        )));
    }
    if let (Some(old), Some(new)) = (
        node.internal("agent_verify_ca").and_then(Value::as_str),
        hb.agent_verify_ca.as_deref(),
    ) && old != new
    {
        return Err(Error::Invalid(format!(
            "Detected change in the agent's TLS certificate for node {}; refusing the heartbeat",
            node.uuid
        )));
    }
    Ok(())
}

fn inventory_macs(inventory: &Value) -> Vec<MacAddress> {
    let inv = inventory.get("inventory").unwrap_or(inventory);
    inv.get("interfaces")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| i.get("mac_address")?.as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

async fn process_heartbeat(mut job: Job, hb: Heartbeat) -> Job {
    let state = job.node().provision_state;
    let uuid = job.node().uuid;
    if job.node().maintenance {
        // allow_provisioning_in_maintenance is off: abort what the agent works on.
        let msg = format!("Node {uuid} is in maintenance; the operation was aborted");
        job.fail(msg, false).await;
        return job;
    }
    let d = match job.task.driver() {
        Ok(d) => d.clone(),
        Err(e) => {
            job.fail(e.to_string(), false).await;
            return job;
        }
    };
    let before = job.node().driver_internal_info.clone();
    let outcome = match d.deploy.heartbeat(&mut job.task, &hb).await {
        Ok(o) => o,
        Err(e) if e.is_retryable() => {
            tracing::warn!(node = %uuid, error = %e, "heartbeat processing failed; will retry on the next heartbeat");
            HeartbeatOutcome::Wait
        }
        Err(e) => {
            HeartbeatOutcome::Fail(format!("Heartbeat processing failed for node {uuid}: {e}"))
        }
    };
    match outcome {
        HeartbeatOutcome::Wait => {
            job.save_or_log().await;
            // what the driver recorded while waiting (e.g. the agent's progress)
            // reaches event subscribers (dashboards) without a state change
            if job.node().driver_internal_info != before && job.deferred.is_none() {
                job.deferred = Some(NodeEvent::Updated { node: uuid });
            }
            job
        }
        HeartbeatOutcome::Fail(msg) => {
            if state.heartbeat_allowed() {
                job.fail(msg, true).await;
            }
            job
        }
        HeartbeatOutcome::Continue => match state {
            S::DeployWait | S::CleanWait | S::ServiceWait => job.continue_from_wait().await,
            S::RescueWait => {
                // the rescue ramdisk is up: the operation ends, its token with it
                super::job::wipe_token(job.node_mut());
                job.node_mut().last_error = None;
                if job.transition(Event::Resume, None).await.is_ok() {
                    // Ironic's _finalize_rescue: the rescue boot (a virtual-media ISO
                    // stays inserted otherwise) and the rescuing network go, the
                    // tenant networks come back.
                    let r = async {
                        d.rescue.clean_up(&mut job.task).await?;
                        d.network.configure_tenant_networks(&mut job.task).await
                    }
                    .await;
                    match r {
                        Ok(()) => job.transition_or_log(Event::Done, None).await,
                        Err(e) => {
                            job.fail(
                                format!("Failed to finalize rescue for node {uuid}: {e}"),
                                false,
                            )
                            .await
                        }
                    }
                }
                job
            }
            _ => {
                job.save_or_log().await;
                job
            }
        },
    }
}

async fn process_inspection(mut job: Job, inventory: Value) -> Job {
    let uuid = job.node().uuid;
    let d = match job.task.driver() {
        Ok(d) => d.clone(),
        Err(e) => {
            job.fail(e.to_string(), false).await;
            return job;
        }
    };
    if let Err(e) = job.transition(Event::Resume, None).await {
        tracing::error!(node = %uuid, error = %e, "could not resume inspection");
        return job;
    }
    let data = match d
        .inspect
        .continue_inspection(&mut job.task, &inventory)
        .await
    {
        Ok(data) => data,
        Err(e) => {
            job.fail(
                format!("Failed to process the inspection data of node {uuid}: {e}"),
                false,
            )
            .await;
            return job;
        }
    };
    if let Err(msg) = job.apply_inspection(data).await {
        job.fail(msg, false).await;
        return job;
    }
    super::job::wipe_token(job.node_mut());
    job.node_mut().inspection_finished_at = Some(crate::model::now());
    job.transition_or_log(Event::Done, None).await;
    job
}

impl Job {
    /// The physical network the node's network interface knows for a port from its
    /// wiring (the `switch` interface: the physical network of its switch).
    fn wired_physnet(&self, port: &Port) -> Option<String> {
        self.task
            .driver
            .as_ref()
            .and_then(|d| d.network.physical_network_of(port))
    }

    /// Merge inspection results: properties (new keys and changed values), boot
    /// mode, a port per new MAC address (a MAC already used by another node is
    /// skipped with a warning); then run the inspection rules (as Ironic, after
    /// its processing hooks and before anything is stored) and store the
    /// inventory and plugin data. The error is the node's `last_error`.
    pub(crate) async fn apply_inspection(
        &mut self,
        data: InspectionData,
    ) -> std::result::Result<(), String> {
        let uuid = self.node().uuid;
        let stored = |e: Error| format!("Failed to store the inspection data of node {uuid}: {e}");
        let (inventory, mut plugin_data) = split_inspection_data(data.inventory.clone());
        self.merge_inspection(data).await.map_err(stored)?;
        self.run_inspection_rules(inventory.as_ref(), &mut plugin_data)
            .await?;
        if let Some(inv) = inventory {
            let doc = serde_json::json!({"inventory": inv, "plugin_data": plugin_data});
            self.c
                .store()
                .set_inventory(uuid, &doc)
                .await
                .map_err(|e| stored(e.into()))?;
        }
        // Ironic caches firmware components after inspection, while the node is
        // powered on (some BMCs report NIC firmware only then).
        if self.node().provision_state != crate::states::ProvisionState::Enroll {
            self.cache_firmware_components().await;
        }
        self.save().await.map_err(stored)
    }

    /// The stored rules and the built-in ones, against this node (Ironic's
    /// `apply_rules(task, inventory, plugin_data, 'main')`); changed ports are
    /// saved here, the node by the caller.
    async fn run_inspection_rules(
        &mut self,
        inventory: Option<&Value>,
        plugin_data: &mut Value,
    ) -> std::result::Result<(), String> {
        let uuid = self.node().uuid;
        let config = self.c.config().inspection_rules.clone();
        let rules = self.c.store().list_inspection_rules().await.map_err(|e| {
            format!("Failed to finish inspection: could not read the inspection rules: {e}")
        })?;
        if rules.is_empty() && config.built_in.is_empty() {
            return Ok(());
        }
        let empty = Value::Object(Default::default());
        let mut node = self.node().clone();
        let mut ports = self.task.ports.clone();
        let applied = crate::inspection_rules::apply_rules(
            &config,
            &rules,
            "main",
            crate::inspection_rules::Target {
                node: &mut node,
                ports: &mut ports,
                inventory: inventory.unwrap_or(&empty),
                plugin_data,
            },
        )
        .await
        .map_err(|e| format!("Failed to finish inspection: {e}"))?;
        *self.node_mut() = node;
        for i in &applied.ports_changed {
            let port = &mut ports[*i];
            port.updated_at = Some(crate::model::now());
            self.c.store().update_port(port).await.map_err(|e| {
                format!(
                    "Failed to finish inspection: could not save port {}: {e}",
                    port.uuid
                )
            })?;
        }
        self.task.ports = ports;
        tracing::info!(node = %uuid, rules = ?applied.rules, "Finished applying inspection rules");
        Ok(())
    }

    async fn merge_inspection(&mut self, data: InspectionData) -> Result<()> {
        let uuid = self.node().uuid;
        let n = self.node_mut();
        for (k, v) in data.properties {
            n.properties.insert(k, v);
        }
        if let Some(m) = data.boot_mode {
            n.boot_mode = Some(m);
        }
        for dp in data.ports {
            if let Some(i) = self.task.ports.iter().position(|p| p.address == dp.address) {
                // Ironic's local-link-connection and physical-network hooks: fill
                // the wiring fields not set yet (an operator's value wins), set
                // the physical network found
                let mut port = self.task.ports[i].clone();
                let mut changed = false;
                for (k, v) in dp.local_link_connection {
                    if !port.local_link_connection.contains_key(&k) {
                        port.local_link_connection.insert(k, v);
                        changed = true;
                    }
                }
                // the physical network found (CIDR map), else the one of the
                // switch the port turned out to be wired to, for a port without one
                let physnet = dp.physical_network.or_else(|| {
                    port.physical_network
                        .is_none()
                        .then(|| self.wired_physnet(&port))
                        .flatten()
                });
                if physnet.is_some() && physnet != port.physical_network {
                    port.physical_network = physnet;
                    changed = true;
                }
                if changed {
                    port.updated_at = Some(crate::model::now());
                    self.c.store().update_port(&port).await?;
                    tracing::info!(node = %uuid, address = %port.address, llc = ?port.local_link_connection, physical_network = ?port.physical_network, "port wiring updated by inspection");
                    self.task.ports[i] = port;
                }
                continue;
            }
            let mut port = Port::new(uuid, dp.address);
            port.pxe_enabled = dp.pxe_enabled;
            port.local_link_connection = dp.local_link_connection;
            port.physical_network = dp.physical_network.or_else(|| self.wired_physnet(&port));
            match self.c.store().create_port(&port).await {
                Ok(()) => {
                    tracing::info!(node = %uuid, address = %port.address, "port created by inspection");
                    self.task.ports.push(port);
                }
                Err(crate::store::StoreError::Duplicate(m)) => {
                    tracing::warn!(node = %uuid, address = %dp.address, reason = %m, "inspection found a MAC address that belongs to another port; skipped");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Ironic's split of what the agent posts: `inventory`, and the rest is plugin
/// data (its `logs` are not kept). An inventory reported alone (out-of-band
/// inspection) has empty plugin data; a document already split is kept so.
fn split_inspection_data(doc: Option<Value>) -> (Option<Value>, Value) {
    let empty = || Value::Object(Default::default());
    match doc {
        Some(Value::Object(mut m)) if m.contains_key("inventory") => {
            let inventory = m.remove("inventory");
            let mut plugin = match m.remove("plugin_data") {
                Some(Value::Object(p)) => p,
                _ => Default::default(),
            };
            m.remove("logs");
            plugin.extend(m);
            (inventory, Value::Object(plugin))
        }
        Some(other) => (Some(other), empty()),
        None => (None, empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_url_safe_characters() {
        let t = new_token();
        assert_eq!(t.len(), 43);
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(t, new_token());
    }

    #[test]
    fn callback_urls_are_checked() {
        assert!(check_callback_url("http://10.0.0.5:9999", false).is_ok());
        assert!(check_callback_url("https://[::1]:9999", true).is_ok());
        assert!(check_callback_url("http://10.0.0.5:9999", true).is_err());
        assert!(check_callback_url("ftp://x", false).is_err());
        assert!(check_callback_url("http://", false).is_err());
        assert!(check_callback_url("garbage", false).is_err());
    }
}
