//! Node locks and the unit of work that holds one.
//!
//! An exclusive lock is the node's `reservation` in the store, set by a
//! compare-and-set ([`Store::reserve_node`](crate::store::Store::reserve_node)), so
//! it is visible to every conductor sharing the store and survives a restart (a
//! restarting conductor clears its own). Shared locks take nothing: they read.
//!
//! A [`Job`] is a [`Task`] plus the lock (and, on a worker, the worker permit).
//! It saves the node, advances the state machine and records errors.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use super::{Conductor, NodeEvent};
use crate::driver::{Task, TaskEnv};
use crate::error::{Error, Result};
use crate::ids::{HistoryId, Ident, NodeId};
use crate::model::{HistoryEvent, Node, Severity};
use crate::states::{self, Event, PowerState, ProvisionState};
use crate::store::{Store, StoreError};

/// A node's exclusive lock. Released by [`NodeLock::release`]; if dropped
/// unreleased (a panic), a task releases it.
pub(crate) struct NodeLock {
    store: Arc<dyn Store>,
    host: String,
    node: NodeId,
    released: bool,
}

impl NodeLock {
    pub(crate) async fn release(mut self) {
        self.released = true;
        if let Err(e) = self.store.release_node(self.node, &self.host).await
            && !matches!(e, StoreError::NotFound { .. })
        {
            tracing::error!(node = %self.node, error = %e, "could not release the node lock");
        }
    }
}

impl Drop for NodeLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let (store, host, node) = (self.store.clone(), self.host.clone(), self.node);
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move {
                let _ = store.release_node(node, &host).await;
            });
        }
    }
}

/// Work on one node under its exclusive lock.
pub(crate) struct Job {
    pub(crate) c: Conductor,
    pub(crate) task: Task,
    lock: NodeLock,
    saved_power: Option<PowerState>,
    permit: Option<OwnedSemaphorePermit>,
    /// The event of a transition into a state where the job ends (stable, failed,
    /// waiting, held): sent after the lock is released, so that whoever reacts to it
    /// finds the node unlocked.
    pub(crate) deferred: Option<NodeEvent>,
    /// The node has changes not yet in the store: a worker's transition into a
    /// state where the job ends leaves its save to [`Job::finish`], which saves
    /// and releases the lock in one write.
    unsaved: bool,
}

/// Which operation a state belongs to, for messages and history.
pub(crate) fn event_type(state: ProvisionState) -> &'static str {
    use ProvisionState as S;
    match state {
        S::Deploying | S::DeployWait | S::DeployHold | S::DeployFailed => "deployment",
        S::Cleaning | S::CleanWait | S::CleanHold | S::CleanFailed => "cleaning",
        S::Servicing | S::ServiceWait | S::ServiceHold | S::ServiceFailed => "servicing",
        S::Inspecting | S::InspectWait | S::InspectFailed => "inspection",
        S::Rescuing | S::RescueWait | S::RescueFailed | S::Unrescuing | S::UnrescueFailed => {
            "rescue"
        }
        S::Verifying => "verification",
        S::Adopting | S::AdoptFailed => "adoption",
        _ => "provisioning",
    }
}

/// The token and agent details Ironic wipes when a ramdisk is booted again or an
/// operation ends (`wipe_token_and_url`).
pub(crate) fn wipe_token(node: &mut Node) {
    for k in [
        "agent_secret_token",
        "agent_secret_token_pregenerated",
        "agent_url",
        "agent_verify_ca",
        "agent_version",
        "agent_last_heartbeat",
    ] {
        node.remove_internal(k);
    }
}

impl Conductor {
    /// Resolve an identifier to a node UUID.
    pub(crate) async fn node_id(&self, ident: &Ident) -> Result<NodeId> {
        match ident {
            Ident::Uuid(u) => Ok(NodeId(*u)),
            Ident::Name(_) => Ok(self.store().get_node(ident).await?.uuid),
        }
    }

    /// Take a node's exclusive lock, retrying `node_locked_retry_attempts` times
    /// `node_locked_retry_interval` apart when `retry` (Ironic's defaults: 3 × 1 s).
    pub(crate) async fn lock_node(&self, ident: &Ident, retry: bool) -> Result<(NodeLock, Node)> {
        let id = self.node_id(ident).await?;
        let attempts = if retry {
            self.config().node_locked_retry_attempts.max(1)
        } else {
            1
        };
        let host = &self.config().host;
        let mut attempt = 1;
        let started = std::time::Instant::now();
        let report = |acquired| {
            self.observer()
                .lock_wait(&crate::observe::lock_event(started.elapsed(), acquired))
        };
        loop {
            match self.store().reserve_node(id, host).await {
                Ok(node) => {
                    report(true);
                    return Ok((
                        NodeLock {
                            store: self.store().clone(),
                            host: host.clone(),
                            node: id,
                            released: false,
                        },
                        node,
                    ));
                }
                Err(StoreError::Locked { holder, .. }) if attempt >= attempts => {
                    report(false);
                    return Err(Error::NodeLocked {
                        node: ident.to_string(),
                        holder,
                    });
                }
                Err(StoreError::Locked { .. }) => {
                    attempt += 1;
                    tokio::time::sleep(self.config().node_locked_retry_interval).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub(crate) fn env(&self) -> TaskEnv {
        TaskEnv {
            conductor: self.config().host.clone(),
            api_url: self.config().api_url.clone(),
            settings: self.config().settings.clone(),
            observer: crate::observe::ObserverHandle(self.inner.observer.clone()),
        }
    }

    /// A task over `node` with its ports, port groups and interfaces.
    pub(crate) async fn task_for(&self, node: Node, shared: bool) -> Result<Task> {
        let ports = self
            .store()
            .list_ports(&crate::store::PortQuery {
                node: Some(node.uuid),
                ..Default::default()
            })
            .await?;
        let portgroups = self.store().list_portgroups(Some(node.uuid)).await?;
        let driver = self.registry().driver_for(&node)?;
        Ok(Task {
            node,
            ports,
            portgroups,
            shared,
            env: self.env(),
            driver: Some(driver),
        })
    }

    /// Lock a node and build a job over it.
    pub(crate) async fn job(&self, ident: &Ident, retry: bool) -> Result<Job> {
        let (lock, node) = self.lock_node(ident, retry).await?;
        let saved_power = node.power_state;
        match self.task_for(node, false).await {
            Ok(task) => Ok(Job {
                c: self.clone(),
                task,
                lock,
                saved_power,
                permit: None,
                deferred: None,
                unsaved: false,
            }),
            Err(e) => {
                lock.release().await;
                Err(e)
            }
        }
    }

    /// A task under a shared lock (a plain read).
    pub(crate) async fn shared_task(&self, ident: &Ident) -> Result<Task> {
        let node = self.store().get_node(ident).await?;
        self.task_for(node, true).await
    }

    /// Run `work` on a worker, holding the job's lock until it returns.
    pub(crate) fn spawn_job<F, Fut>(&self, job: Job, work: F)
    where
        F: FnOnce(Job) -> Fut + Send + 'static,
        Fut: Future<Output = Job> + Send + 'static,
    {
        self.inner.tracker.spawn(async move {
            let job = work(job).await;
            job.finish().await;
        });
    }

    /// Record a history event (errors are logged, never fatal).
    pub(crate) async fn record_history(
        &self,
        node: &Node,
        event_type: &str,
        severity: Severity,
        event: &str,
    ) {
        let now = crate::model::now();
        let e = HistoryEvent {
            uuid: HistoryId::new(),
            node_uuid: node.uuid,
            event: event.to_owned(),
            event_type: event_type.to_owned(),
            severity,
            user: None,
            conductor: Some(self.config().host.clone()),
            project: None,
            provision_state: Some(node.provision_state.to_string()),
            target_provision_state: node.target_provision_state.map(|t| t.to_string()),
            duration_seconds: node.provision_updated_at.map(|t| (now - t).num_seconds()),
            created_at: now,
        };
        if let Err(err) = self
            .store()
            .add_history(&e, self.config().node_history_max_entries)
            .await
        {
            tracing::warn!(node = %node.uuid, error = %err, "could not record node history");
        }
    }
}

impl Job {
    /// Take a worker permit, or fail with `NoFreeWorker` (the caller then releases
    /// the lock by dropping or finishing the job).
    pub(crate) fn reserve_worker(&mut self) -> Result<()> {
        self.c.check_accepting()?;
        let permit = self
            .c
            .inner
            .workers
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::NoFreeWorker)?;
        self.permit = Some(permit);
        Ok(())
    }

    pub(crate) fn node(&self) -> &Node {
        &self.task.node
    }

    pub(crate) fn node_mut(&mut self) -> &mut Node {
        &mut self.task.node
    }

    /// Release the lock (and the worker permit), then send the last state change.
    /// A save left by the last transition is written with the release.
    pub(crate) async fn finish(mut self) {
        if self.unsaved {
            self.unsaved = false;
            let node = &self.task.node;
            match self
                .c
                .store()
                .update_node_and_release(node, &self.lock.host)
                .await
            {
                Ok(()) => self.lock.released = true,
                Err(e) => {
                    tracing::error!(node = %node.uuid, error = %e, "could not save the node");
                }
            }
            self.power_changed();
        }
        let Job {
            lock,
            permit,
            deferred,
            c,
            ..
        } = self;
        if !lock.released {
            lock.release().await;
        }
        drop(permit);
        if let Some(e) = deferred {
            c.emit(e);
        }
    }

    /// Save the node; emit a power event if the recorded power state changed.
    pub(crate) async fn save(&mut self) -> Result<()> {
        self.task.node.updated_at = Some(crate::model::now());
        self.c.store().update_node(&self.task.node).await?;
        self.unsaved = false;
        self.power_changed();
        Ok(())
    }

    /// After a save: emit a power event if the recorded power state changed.
    fn power_changed(&mut self) {
        let now = self.task.node.power_state;
        if now != self.saved_power {
            tracing::info!(node = %self.task.node.uuid, from = ?self.saved_power.map(|p| p.as_str()), to = ?now.map(|p| p.as_str()), "power state changed");
            self.c.emit(NodeEvent::PowerStateChanged {
                node: self.task.node.uuid,
                from: self.saved_power,
                to: now,
            });
            self.saved_power = now;
        }
    }

    /// Save, logging instead of failing (for error paths).
    pub(crate) async fn save_or_log(&mut self) {
        if let Err(e) = self.save().await {
            tracing::error!(node = %self.task.node.uuid, error = %e, "could not save the node");
        }
    }

    /// Advance the state machine and save. `target` overrides the new target
    /// (manual cleaning keeps `manageable`); internal events keep the current
    /// target, as `TaskManager.process_event` does.
    pub(crate) async fn transition(
        &mut self,
        event: Event,
        target: Option<ProvisionState>,
    ) -> Result<()> {
        let node = &mut self.task.node;
        let from = node.provision_state;
        let keep = matches!(
            event,
            Event::Done
                | Event::Fail
                | Event::Wait
                | Event::Resume
                | Event::Hold
                | Event::Unhold
                | Event::Abort
        );
        let over = target.or(if keep {
            node.target_provision_state
        } else {
            None
        });
        let (to, new_target) =
            states::apply(from, event, over).ok_or_else(|| Error::InvalidState {
                action: event.to_string(),
                node: node.uuid.to_string(),
                state: from.to_string(),
            })?;
        let now = crate::model::now();
        let spent = node
            .provision_state_since
            .and_then(|t| (now - t).to_std().ok());
        node.provision_state = to;
        node.target_provision_state = new_target;
        node.provision_updated_at = Some(now);
        if to != from {
            node.provision_state_since = Some(now);
        }
        inspection_times(node, from, to, now);
        let id = node.uuid;
        let last_error = node.last_error.clone();
        let job_ends_here =
            to.is_stable() || to.is_failure() || to.is_hold() || to.is_wait_for_callback();
        if job_ends_here && self.permit.is_some() {
            // A worker's job ends after this: `finish` saves with the release.
            self.task.node.updated_at = Some(now);
            self.unsaved = true;
        } else {
            self.save().await?;
        }
        if to.is_failure() || to == ProvisionState::Error {
            tracing::error!(node = %id, from = %from, to = %to, event = %event, last_error = last_error.as_deref().unwrap_or(""), "provision state changed");
        } else {
            tracing::info!(node = %id, from = %from, to = %to, event = %event, "provision state changed");
        }
        if to != from {
            self.c
                .observer()
                .provision_state_left(&crate::observe::node_event(id, from, to, spent));
        }
        if to.is_hold() || to.is_wait_for_callback() {
            self.c.record_wait(&self.task.node).await;
        }
        if let Some(e) = self.deferred.take() {
            self.c.emit(e);
        }
        let event = NodeEvent::ProvisionStateChanged {
            node: id,
            from,
            to,
            target: new_target,
            last_error,
        };
        if job_ends_here {
            self.deferred = Some(event);
        } else {
            self.c.emit(event);
        }
        Ok(())
    }

    /// Transition, logging a failure to save rather than returning it (the job is
    /// then left to the crash-recovery and timeout paths).
    pub(crate) async fn transition_or_log(&mut self, event: Event, target: Option<ProvisionState>) {
        if let Err(e) = self.transition(event, target).await {
            tracing::error!(node = %self.task.node.uuid, event = %event, error = %e, "state transition failed");
        }
    }
}

/// Ironic's rule for the inspection times (its database layer, on every
/// provision state change): leaving `inspecting` / `inspect wait` for
/// `manageable` finishes the inspection (`inspection_finished_at` now,
/// `inspection_started_at` cleared); leaving them for `inspect failed` clears
/// `inspection_started_at`.
pub(crate) fn inspection_times(
    node: &mut crate::model::Node,
    from: ProvisionState,
    to: ProvisionState,
    now: crate::model::Timestamp,
) {
    if !matches!(
        from,
        ProvisionState::Inspecting | ProvisionState::InspectWait
    ) {
        return;
    }
    match to {
        ProvisionState::Manageable => {
            node.inspection_finished_at = Some(now);
            node.inspection_started_at = None;
        }
        ProvisionState::InspectFailed => node.inspection_started_at = None,
        _ => {}
    }
}
