//! Several conductors on one store: membership, the hash rings, and takeover.
//!
//! Every `conductor_heartbeat_interval` a conductor stamps its record (with the
//! store's clock), reads every record, and counts as alive those stamped less
//! than `heartbeat_timeout` ago. From the live ones it builds one [`HashRing`] per
//! `(conductor_group, hardware type)`, as Ironic does: a node belongs to the
//! conductor its UUID maps to on the ring of its group and driver. When the live
//! set changes the rings are rebuilt at once, and the new owners of a dead
//! conductor's nodes take them over:
//!
//! * the locks it held are released;
//! * nodes it left in a transient state (`deploying`, `cleaning`, ...; the states
//!   a restart cannot resume) are failed with a `last_error` naming the dead
//!   conductor, so they can be retried;
//! * a pending power action is aborted (`target_power_state` cleared);
//! * `active` nodes get their boot configuration prepared again by the new owner
//!   (Ironic's `take_over`), which records itself in `conductor_affinity`.
//!
//! A conductor that comes back joins the ring again; the nodes that map to it
//! move back once they are unlocked, and it never takes a lock another holds.
//!
//! A conductor offline longer than `forget_offline_after` (a day by default)
//! that holds no lock is removed from the store (Ironic keeps them forever).
//!
//! An API-only front end (`takes_work` false) registers and stamps its record
//! too, with no hardware types: it is on no ring and owns nothing, but it takes
//! a node's lock when it runs an action itself (the owner could not be reached),
//! so its death is handled as a conductor's: the owners release its locks, fail
//! what it left in a transient state and abort its pending power actions.
//!
//! The keep-alive only finds the work; a takeover task of its own does it, so a
//! conductor taking over thousands of nodes keeps stamping its record (and is
//! not judged dead in turn). That task also runs every
//! `sync_local_state_interval` (Ironic's `_sync_local_state`), which retries the
//! takeovers that failed (the BMC did not answer) or found the node locked.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;

use super::ring::HashRing;
use super::{Conductor, NodeEvent};
use crate::model::{ConductorRecord, Node, Severity};
use crate::states::ProvisionState as S;
use crate::store::{NodeFilter, NodeQuery};

/// How the `last_error` of a failed takeover of an `active` node begins.
const TAKEOVER_FAILED: &str = "Failed to take over node";

/// Another conductor that owns a node: see [`Conductor::remote_owner`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteOwner {
    /// Its host name.
    pub host: String,
    /// The URL it is reached at (its API's base URL).
    pub url: String,
}

/// What the keep-alive found for the takeover task: see [`Conductor::spawn_takeover`].
#[derive(Debug, Default)]
pub(crate) struct TakeoverQueue {
    work: std::sync::Mutex<TakeoverWork>,
    wake: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct TakeoverWork {
    /// Offline conductors (and API-only front ends: `true`) whose locks may
    /// need releasing.
    dead: BTreeMap<String, bool>,
    /// Offline longer than `forget_offline_after`: forget each once it holds no
    /// lock (the store's clock before which its last stamp must lie).
    forget: Option<crate::model::Timestamp>,
    /// The rings changed: look for `active` nodes to take over.
    active: bool,
}

/// Who is alive, and the rings built from them.
#[derive(Debug, Default)]
pub(crate) struct Membership {
    /// Every registered conductor, `alive` as judged by the store's clock.
    pub(crate) conductors: Vec<ConductorRecord>,
    /// `(group, hardware type)` → ring over the live conductors having both.
    rings: BTreeMap<(String, String), HashRing>,
}

impl Membership {
    fn build(
        mut conductors: Vec<ConductorRecord>,
        now: crate::model::Timestamp,
        timeout: chrono::Duration,
        partitions: usize,
    ) -> Membership {
        for c in &mut conductors {
            let last = c.updated_at.unwrap_or(c.created_at);
            c.alive = c.alive && now - last < timeout;
        }
        let mut members: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for c in conductors.iter().filter(|c| c.alive) {
            for d in &c.drivers {
                members
                    .entry((c.conductor_group.to_lowercase(), d.clone()))
                    .or_default()
                    .push(c.hostname.clone());
            }
        }
        let rings = members
            .into_iter()
            .map(|(k, hosts)| (k, HashRing::new(hosts, partitions)))
            .collect();
        Membership { conductors, rings }
    }

    /// The live conductors, sorted.
    pub(crate) fn live(&self) -> BTreeSet<&str> {
        self.conductors
            .iter()
            .filter(|c| c.alive)
            .map(|c| c.hostname.as_str())
            .collect()
    }

    /// The conductor owning `node`, if any live conductor serves its group and driver.
    pub(crate) fn owner(&self, node: &Node) -> Option<&str> {
        self.rings
            .get(&(node.conductor_group.to_lowercase(), node.driver.clone()))
            .and_then(|r| r.owner(node.uuid.0.as_bytes()))
    }

    /// Whether the rings differ (a member joined or left).
    fn same_rings(&self, other: &Membership) -> bool {
        self.rings == other.rings
    }
}

impl Conductor {
    /// The current membership (cheap: an `Arc`).
    pub(crate) fn membership(&self) -> Arc<Membership> {
        self.inner
            .membership
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The conductor that owns `node` (Ironic's `conductor` field): the live
    /// conductor its UUID maps to on the hash ring of its conductor group and
    /// hardware type, or `None` when no live conductor serves those.
    pub fn owner_of(&self, node: &Node) -> Option<String> {
        self.membership().owner(node).map(str::to_owned)
    }

    /// The live conductor other than this one that owns `node`, with the URL it is
    /// reached at: where an API should hand an operation on `node` (Ironic's RPC
    /// to the owner's topic). `None` when this conductor owns the node, when no
    /// live conductor serves its group and driver, or when the owner recorded no
    /// URL; the operation then runs here, under the node's lock in the store.
    pub fn remote_owner(&self, node: &Node) -> Option<RemoteOwner> {
        let m = self.membership();
        let host = m.owner(node)?;
        if host == self.config().host {
            return None;
        }
        let record = m.conductors.iter().find(|c| c.hostname == host)?;
        Some(RemoteOwner {
            host: host.to_owned(),
            url: record.url.clone()?,
        })
    }

    /// Whether this conductor owns `node`. An API-only front end owns nothing.
    pub(crate) fn owns(&self, node: &Node) -> bool {
        self.config().takes_work
            && self.membership().owner(node) == Some(self.config().host.as_str())
    }

    /// Every registered conductor, with `alive` judged by the store's clock and
    /// `heartbeat_timeout` (the rings use the same judgement). API-only front
    /// ends are registered too but are no conductors: they are left out.
    pub async fn list_conductors(&self) -> crate::Result<Vec<ConductorRecord>> {
        let records = self.store().list_conductors().await?;
        let now = self.store().now().await?;
        let mut all = Membership::build(records, now, self.heartbeat_timeout(), 1).conductors;
        all.retain(ConductorRecord::is_conductor);
        Ok(all)
    }

    fn heartbeat_timeout(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config().heartbeat_timeout).unwrap_or(chrono::Duration::MAX)
    }

    /// Stamp this conductor's record (re-registering it if it was removed), read
    /// every record, rebuild the rings if the live set changed, and take over the
    /// nodes of conductors that died. Run every `conductor_heartbeat_interval`.
    pub(crate) async fn refresh_membership(&self) {
        let host = self.config().host.clone();
        match self.store().touch_conductor(&host).await {
            Ok(()) => {}
            Err(crate::store::StoreError::NotFound { .. }) => {
                tracing::warn!(host = %host, "this conductor's record was gone; registering again");
                if let Err(e) = self.register().await {
                    tracing::error!(host = %host, error = %e, "could not register the conductor");
                }
            }
            Err(e) => {
                tracing::warn!(host = %host, error = %e, "conductor keep-alive failed");
            }
        }
        let (records, now) = match (
            self.store().list_conductors().await,
            self.store().now().await,
        ) {
            (Ok(r), Ok(n)) => (r, n),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "could not read the conductors; keeping the current hash rings");
                return;
            }
        };
        let new = Membership::build(
            records,
            now,
            self.heartbeat_timeout(),
            self.config().hash_ring_partitions,
        );
        let old = self.membership();
        let changed = !old.same_rings(&new);
        let dead: BTreeMap<String, bool> = new
            .conductors
            .iter()
            .filter(|c| !c.alive && c.hostname != host)
            .map(|c| (c.hostname.clone(), !c.is_conductor()))
            .collect();
        if changed {
            let live: Vec<&str> = new.live().into_iter().collect();
            let offline: Vec<&String> = dead.keys().collect();
            tracing::info!(host = %host, live = ?live, offline = ?offline, "hash ring rebuilt");
        }
        // Never sooner than a conductor counts as offline.
        let forget = chrono::Duration::from_std(self.config().forget_offline_after)
            .ok()
            .filter(|d| !d.is_zero())
            .map(|d| now - d.max(self.heartbeat_timeout()))
            .filter(|before| {
                new.conductors
                    .iter()
                    .any(|c| !c.alive && c.updated_at.unwrap_or(c.created_at) < *before)
            });
        *self
            .inner
            .membership
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
        if self.config().takes_work && (changed || !dead.is_empty()) {
            let q = &self.inner.takeover;
            {
                let mut w = q.work.lock().unwrap_or_else(|e| e.into_inner());
                w.dead = dead;
                w.forget = forget;
                w.active |= changed;
            }
            q.wake.notify_one();
        }
    }

    /// The takeover task (see the module docs): waits for work from the
    /// keep-alive or for the next `sync_local_state_interval`, and does it.
    pub(crate) fn spawn_takeover(&self) {
        let c = self.clone();
        let cancel = self.inner.cancel.clone();
        let interval = self.config().sync_local_state_interval;
        self.inner.periodics.spawn(async move {
            let mut tick = (!interval.is_zero()).then(|| {
                let mut t =
                    tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            loop {
                let periodic = tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = c.inner.takeover.wake.notified() => false,
                    _ = async {
                        match &mut tick {
                            Some(t) => { t.tick().await; }
                            None => std::future::pending::<()>().await,
                        }
                    } => true,
                };
                let (dead, active, forget) = {
                    let mut w = c
                        .inner
                        .takeover
                        .work
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    (
                        std::mem::take(&mut w.dead),
                        std::mem::take(&mut w.active),
                        w.forget.take(),
                    )
                };
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = async {
                        for (d, api_only) in &dead {
                            c.take_over_orphans(d, *api_only).await;
                        }
                        if let Some(before) = forget {
                            for d in dead.keys() {
                                c.forget_offline(d, before).await;
                            }
                        }
                        if active || periodic {
                            c.take_over_active_nodes().await;
                        }
                    } => {}
                }
            }
        });
    }

    /// Register this process at start. A live record of the other kind under
    /// the same host name (a conductor where this is an API-only front end, or
    /// the reverse) is refused: the two would share their locks and one record.
    pub(crate) async fn register_at_start(&self) -> crate::Result<()> {
        let host = &self.config().host;
        let records = self.store().list_conductors().await?;
        let now = self.store().now().await?;
        let membership = Membership::build(records, now, self.heartbeat_timeout(), 1);
        if let Some(other) = membership.conductors.iter().find(|c| {
            &c.hostname == host && c.alive && c.is_conductor() != self.config().takes_work
        }) {
            let (it, me) = if other.is_conductor() {
                ("a live conductor", "an API-only service")
            } else {
                ("a live API-only service", "a conductor")
            };
            return Err(crate::Error::Conflict(format!(
                "the host name {host} is registered by {it}; {me} needs a host name of its own"
            )));
        }
        self.register().await
    }

    /// Register (or re-register) this process in the store: a conductor with its
    /// hardware types, an API-only front end with none.
    pub(crate) async fn register(&self) -> crate::Result<()> {
        let drivers = if self.config().takes_work {
            self.registry()
                .hardware_types()
                .iter()
                .map(|h| h.name.to_owned())
                .collect()
        } else {
            Vec::new()
        };
        Ok(self
            .store()
            .upsert_conductor(&ConductorRecord {
                hostname: self.config().host.clone(),
                conductor_group: self.config().conductor_group.to_lowercase(),
                drivers,
                alive: true,
                created_at: crate::model::now(),
                updated_at: None,
                url: self.config().url.clone(),
            })
            .await?)
    }

    /// Nodes still locked by the dead conductor (or API-only front end) `dead`
    /// that this conductor now owns: release the lock; fail a transient state;
    /// abort a pending power action.
    async fn take_over_orphans(&self, dead: &str, api_only: bool) {
        let orphans = match self
            .store()
            .list_nodes(&NodeQuery {
                filter: NodeFilter {
                    reserved_by: Some(dead.to_owned()),
                    ..Default::default()
                },
                ..Default::default()
            })
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(dead = %dead, error = %e, "could not list the nodes of an offline conductor");
                return;
            }
        };
        // Every lock first (one store call each), so no orphan waits behind
        // another's clean-up; then each orphan is failed on its own, at most
        // `max_concurrent_operations` at once (Ironic spawns each in a worker):
        // a failure runs the driver's clean-up (power off, boot clean-up), which
        // takes as long as the BMC does, and a dead conductor may leave
        // thousands of nodes mid-deploy.
        let mut released = Vec::new();
        for n in orphans.into_iter().filter(|n| self.owns(n)) {
            let uuid = n.uuid;
            match self.store().release_node(uuid, dead).await {
                Ok(()) => {
                    tracing::warn!(node = %uuid, old = %dead, new = %self.config().host, "released the lock of an offline conductor");
                    released.push(uuid);
                }
                Err(e) => {
                    // Someone else got there first (or the node is gone).
                    tracing::debug!(node = %uuid, error = %e, "could not release an orphaned lock");
                }
            }
        }
        let what = if api_only { "API service" } else { "conductor" };
        let reason = format!(
            "{what} {dead} went offline (no heartbeat for {} s)",
            self.config().heartbeat_timeout.as_secs()
        );
        futures::stream::iter(released)
            .for_each_concurrent(self.config().max_concurrent_operations.max(1), |uuid| {
                self.fail_orphan(uuid, &reason)
            })
            .await;
    }

    /// A node whose lock was just taken from an offline conductor: abort its
    /// pending power action, fail a transient state (`reason` says why).
    async fn fail_orphan(&self, uuid: crate::ids::NodeId, reason: &str) {
        let Ok(mut job) = self.job(&uuid.into(), false).await else {
            return;
        };
        if job.node().target_power_state.is_some() {
            let msg =
                format!("Pending power operation was aborted due to conductor take over: {reason}");
            job.node_mut().target_power_state = None;
            job.node_mut().last_error = Some(msg.clone());
            job.save_or_log().await;
            self.record_history(job.node(), "takeover", Severity::Error, &msg)
                .await;
        }
        let state = job.node().provision_state;
        if state.is_stuck_on_restart() && !job.node().maintenance {
            let msg = format!(
                "Operation was aborted due to conductor take over: {reason} while the node was {state}"
            );
            job.fail(msg, false).await;
        }
        job.finish().await;
    }

    /// Forget the offline conductor (or API-only front end) `dead` if its last
    /// keep-alive is older than `before` and it holds no lock any more (the
    /// owners released them): Ironic keeps offline conductors forever, so a
    /// deployment whose conductors come and go under new names (containers)
    /// piles up records, each one queried at every keep-alive. One still holding
    /// a lock (a node no live conductor serves) stays until that lock is released.
    async fn forget_offline(&self, dead: &str, before: crate::model::Timestamp) {
        match self.store().forget_conductor(dead, before).await {
            Ok(true) => tracing::info!(
                host = %dead,
                offline_for_more_than_s = self.config().forget_offline_after.as_secs(),
                "forgot an offline conductor that holds no lock"
            ),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(host = %dead, error = %e, "could not forget an offline conductor")
            }
        }
    }

    /// `active` nodes this conductor owns whose boot configuration another
    /// conductor prepared (`conductor_affinity`): prepare it here (Ironic's
    /// `_sync_local_state` → `_do_takeover`).
    async fn take_over_active_nodes(&self) {
        let host = self.config().host.clone();
        let nodes = match self
            .store()
            .list_nodes(&NodeQuery {
                filter: NodeFilter {
                    provision_state: Some(vec![S::Active]),
                    maintenance: Some(false),
                    reserved: Some(false),
                    conductor_group: Some(self.config().conductor_group.clone()),
                    ..Default::default()
                },
                ..Default::default()
            })
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "takeover could not list active nodes");
                return;
            }
        };
        for n in nodes
            .into_iter()
            .filter(|n| n.conductor_affinity.as_deref() != Some(host.as_str()) && self.owns(n))
        {
            let Ok(mut job) = self.job(&n.uuid.into(), false).await else {
                continue;
            };
            let node = job.node();
            if node.provision_state != S::Active
                || node.maintenance
                || node.conductor_affinity.as_deref() == Some(host.as_str())
            {
                job.finish().await;
                continue;
            }
            let from = node.conductor_affinity.clone();
            let r: crate::Result<Option<String>> = async {
                let d = job.task.driver()?.clone();
                d.boot.prepare_instance(&mut job.task).await?;
                d.deploy.take_over(&mut job.task).await?;
                // Ironic's `_do_takeover`: the console session moves too; a
                // console that does not start is switched off, the takeover stands.
                let mut console_error = None;
                if job.node().console_enabled
                    && let Err(e) = d.console.start_console(&mut job.task).await
                {
                    console_error = Some(format!(
                        "Failed to start console while taking over the node {}: {e}",
                        n.uuid
                    ));
                }
                crate::Result::Ok(console_error)
            }
            .await;
            match r {
                Ok(console_error) => {
                    let node = job.node_mut();
                    node.conductor_affinity = Some(host.clone());
                    if node
                        .last_error
                        .as_deref()
                        .is_some_and(|e| e.starts_with(TAKEOVER_FAILED))
                    {
                        // The previous attempt's error; this one worked.
                        node.last_error = None;
                    }
                    if let Some(msg) = &console_error {
                        node.console_enabled = false;
                        node.last_error = Some(msg.clone());
                    }
                    job.save_or_log().await;
                    if let Some(msg) = &console_error {
                        tracing::error!(node = %n.uuid, "{msg}");
                        self.record_history(job.node(), "takeover", Severity::Error, msg)
                            .await;
                    }
                    tracing::info!(node = %n.uuid, from = ?from, to = %host, "took over an active node");
                    self.emit(NodeEvent::Updated { node: n.uuid });
                }
                Err(e) => {
                    let retry = match self.config().sync_local_state_interval.as_secs() {
                        0 => String::new(),
                        s => format!(" (tried again every {s} s)"),
                    };
                    let msg = format!(
                        "{TAKEOVER_FAILED} {} on conductor {host}: {e}{retry}",
                        n.uuid
                    );
                    tracing::error!(node = %n.uuid, error = %e, "takeover failed");
                    job.node_mut().last_error = Some(msg.clone());
                    job.save_or_log().await;
                    self.record_history(job.node(), "takeover", Severity::Error, &msg)
                        .await;
                }
            }
            job.finish().await;
        }
    }
}
