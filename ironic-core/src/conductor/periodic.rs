//! Start-up recovery and the periodic tasks: conductor keep-alive, power-state
//! sync, power failure recovery, and callback timeouts of the wait states.
//!
//! A conductor looks after the nodes it owns: those its UUID maps to it on the
//! hash ring of the node's `conductor_group` (compared case-insensitively; the
//! empty group is a group too) and hardware type (see `cluster`). With several
//! conductors on one store every periodic task therefore covers each node once,
//! on its owner. API calls reach any node.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;

use super::cache::{Observed, Want};
use super::job::{event_type, wipe_token};
use super::{Conductor, NodeEvent};
use crate::error::Result;
use crate::model::{Fault, Node, Severity};
use crate::states::{Event, PowerState, ProvisionState as S};
use crate::store::{NodeFilter, NodeQuery};

impl Conductor {
    fn spawn_periodic<F, Fut>(&self, name: &'static str, interval: Duration, f: F)
    where
        F: Fn(Conductor) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if interval.is_zero() {
            tracing::debug!(task = name, "periodic task disabled");
            return;
        }
        let c = self.clone();
        let cancel = self.inner.cancel.clone();
        self.inner.periodics.spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {
                        tracing::trace!(task = name, "periodic task running");
                        tokio::select! {
                            _ = cancel.cancelled() => break,
                            _ = f(c.clone()) => {}
                        }
                    }
                }
            }
        });
    }

    pub(crate) fn spawn_periodics(&self) {
        let cfg = self.config().clone();
        self.spawn_periodic(
            "keep-alive",
            cfg.conductor_heartbeat_interval,
            |c| async move { c.refresh_membership().await },
        );
        if !cfg.takes_work {
            // An API-only front end follows the membership (for the nodes'
            // `conductor` field) and does no periodic node work.
            return;
        }
        self.spawn_takeover();
        self.spawn_periodic(
            "sync_power_states",
            cfg.power_state_sync_interval,
            |c| async move { c.sync_power_states().await },
        );
        self.spawn_periodic(
            "power_failure_recovery",
            cfg.power_failure_recovery_interval,
            |c| async move { c.power_failure_recovery().await },
        );
        self.spawn_periodic(
            "check_callback_timeouts",
            cfg.check_provision_state_interval,
            |c| async move { c.check_callback_timeouts().await },
        );
        self.spawn_periodic(
            "check_state_budgets",
            cfg.state_budget_check_interval,
            |c| async move { c.check_state_budgets().await },
        );
        self.spawn_periodic(
            "expire_console_sessions",
            cfg.console_session_check_interval,
            |c| async move {
                c.expire_console_sessions().await;
            },
        );
    }

    /// Clear what a previous run under this host name left: `target_power_state`
    /// of nodes it had reserved, its reservations, and nodes stuck in states that
    /// cannot be resumed (`STUCK_STATES_TREATED_AS_FAIL`), which get the `fail`
    /// event with a `last_error` saying why: the nodes it had locked, and the
    /// unlocked ones it owns.
    pub(crate) async fn recover_on_start(&self) -> Result<()> {
        let host = self.config().host.clone();
        let mine = self
            .store()
            .list_nodes(&NodeQuery {
                filter: NodeFilter {
                    reserved_by: Some(host.clone()),
                    ..Default::default()
                },
                ..Default::default()
            })
            .await?;
        let was_mine: std::collections::HashSet<crate::ids::NodeId> =
            mine.iter().map(|n| n.uuid).collect();
        for mut n in mine {
            if n.target_power_state.take().is_some() {
                self.store().update_node(&n).await?;
            }
        }
        let cleared = self.store().clear_reservations(&host).await?;
        if cleared > 0 {
            tracing::warn!(host = %host, count = cleared, "cleared reservations left by a previous run");
        }
        let stuck: Vec<S> = S::ALL
            .iter()
            .copied()
            .filter(|s| s.is_stuck_on_restart())
            .collect();
        // Nodes this host had locked were its own work, whatever their group;
        // other unlocked stuck nodes are looked after by their group's conductor.
        let group = self.config().conductor_group.to_lowercase();
        let nodes = self
            .store()
            .list_nodes(&NodeQuery {
                filter: NodeFilter {
                    provision_state: Some(stuck),
                    reserved: Some(false),
                    ..Default::default()
                },
                ..Default::default()
            })
            .await?;
        for n in nodes.into_iter().filter(|n| {
            was_mine.contains(&n.uuid)
                || (n.conductor_group.eq_ignore_ascii_case(&group) && self.owns(n))
        }) {
            let Ok((lock, mut node)) = self.lock_node(&n.uuid.into(), false).await else {
                continue;
            };
            let state = node.provision_state;
            if !state.is_stuck_on_restart() {
                lock.release().await;
                continue;
            }
            let what = if self.config().takes_work {
                "conductor"
            } else {
                "API service"
            };
            let msg = format!(
                "The {what} {host} was restarted while the node was {state}; the operation cannot be resumed and was marked failed"
            );
            if let Some((to, target)) =
                crate::states::apply(state, Event::Fail, node.target_provision_state)
            {
                wipe_token(&mut node);
                node.last_error = Some(msg.clone());
                let now = crate::model::now();
                let spent = node
                    .provision_state_since
                    .and_then(|t| (now - t).to_std().ok());
                node.provision_state = to;
                node.target_provision_state = target;
                node.provision_updated_at = Some(now);
                node.provision_state_since = Some(now);
                super::job::inspection_times(&mut node, state, to, now);
                node.step_started_at = None;
                for f in [
                    &mut node.clean_step,
                    &mut node.deploy_step,
                    &mut node.service_step,
                ] {
                    f.clear();
                }
                match self.store().update_node(&node).await {
                    Ok(()) => {
                        tracing::error!(node = %node.uuid, from = %state, to = %to, "recovered a node stuck by a restart");
                        self.observer()
                            .provision_state_left(&crate::observe::node_event(
                                node.uuid, state, to, spent,
                            ));
                        self.record_history(&node, event_type(state), Severity::Error, &msg)
                            .await;
                        self.emit(NodeEvent::ProvisionStateChanged {
                            node: node.uuid,
                            from: state,
                            to,
                            target,
                            last_error: Some(msg),
                        });
                    }
                    Err(e) => {
                        tracing::error!(node = %node.uuid, error = %e, "could not recover a stuck node")
                    }
                }
            }
            lock.release().await;
        }
        Ok(())
    }

    fn power_failures(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<crate::ids::NodeId, u32>> {
        self.inner
            .power_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// One pass of the power-state sync (normally run every
    /// `power_state_sync_interval`).
    pub async fn sync_power_states(&self) {
        let nodes = match self
            .store()
            .list_nodes(&NodeQuery {
                filter: NodeFilter {
                    conductor_group: Some(self.config().conductor_group.clone()),
                    maintenance: Some(false),
                    reserved: Some(false),
                    ..Default::default()
                },
                ..Default::default()
            })
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "power sync could not list nodes");
                return;
            }
        };
        let mut nodes: Vec<Node> = nodes
            .into_iter()
            .filter(|n| {
                !n.provision_state.power_sync_excluded()
                    && n.target_power_state.is_none()
                    && self.owns(n)
            })
            .collect();
        {
            // failing nodes first, as Ironic does
            let f = self.power_failures();
            nodes.sort_by_key(|n| std::cmp::Reverse(f.get(&n.uuid).copied().unwrap_or(0)));
        }
        let workers = self.config().sync_power_state_workers.max(1);
        futures::stream::iter(nodes)
            .for_each_concurrent(workers, |n| self.sync_one(n))
            .await;
    }

    async fn sync_one(&self, node: Node) {
        let uuid = node.uuid;
        let Ok(task) = self.task_for(node, true).await else {
            return;
        };
        let Some(d) = task.driver.clone() else { return };
        match d.power.get_power_state(&task).await {
            Ok(actual) => {
                self.power_failures().remove(&uuid);
                // Ironic caches the vendor (until known), boot mode, secure boot and
                // health on every sync, before comparing power states.
                let want = Want {
                    vendor: true,
                    boot_mode: true,
                    health: true,
                };
                let observed = Observed::read(self, &task, &d, want).await;
                if task.node.power_state == Some(actual) && !observed.changes(&task.node) {
                    return;
                }
                let Ok(mut job) = self.job(&uuid.into(), false).await else {
                    return;
                };
                let n = job.node();
                if n.maintenance || n.target_power_state.is_some() {
                    job.finish().await;
                    return;
                }
                let health_change = observed.apply(job.node_mut());
                let recorded = job.node().power_state;
                if recorded != Some(actual) {
                    let force = self.config().force_power_state_during_sync
                        && d.power.supports_power_sync(&job.task)
                        && matches!(recorded, Some(PowerState::On) | Some(PowerState::Off));
                    if force {
                        let want = match recorded {
                            Some(PowerState::On) => crate::states::PowerAction::PowerOn,
                            _ => crate::states::PowerAction::PowerOff,
                        };
                        tracing::warn!(node = %uuid, recorded = ?recorded.map(|p| p.as_str()), actual = %actual, "power state mismatch; forcing the recorded state onto the hardware");
                        let timeout = Some(self.config().power_state_change_timeout);
                        if let Err(e) = job.task.node_power_action(want, timeout).await {
                            tracing::error!(node = %uuid, error = %e, "could not force the power state; recording the actual one");
                            job.node_mut().power_state = Some(actual);
                        }
                    } else {
                        tracing::info!(node = %uuid, recorded = ?recorded.map(|p| p.as_str()), actual = %actual, "recording the power state the BMC reports");
                        job.node_mut().power_state = Some(actual);
                    }
                }
                job.save_or_log().await;
                let node = job.node().clone();
                job.finish().await;
                if let Some((msg, severity)) = health_change {
                    self.record_history(&node, "monitoring", severity, &msg)
                        .await;
                }
            }
            Err(e) => {
                let count = {
                    let mut f = self.power_failures();
                    let c = f.entry(uuid).or_insert(0);
                    *c += 1;
                    *c
                };
                let max = self.config().power_state_sync_max_retries.max(1);
                tracing::warn!(node = %uuid, attempt = count, max = max, error = %e, "power state read failed");
                if count < max {
                    return;
                }
                let Ok(mut job) = self.job(&uuid.into(), false).await else {
                    return;
                };
                self.power_failures().remove(&uuid);
                let msg = format!(
                    "During sync_power_state, max retries exceeded for node {uuid}, node state {} does not match expected state 'None'. Updating DB state to 'None' Switching node to maintenance mode. Error: {e}",
                    job.node().power_state.map(|p| p.as_str()).unwrap_or("None")
                );
                let n = job.node_mut();
                n.maintenance = true;
                n.maintenance_reason = Some(msg.clone());
                n.fault = Some(Fault::PowerFailure);
                n.power_state = None;
                n.last_error = Some(msg.clone());
                job.save_or_log().await;
                let node = job.node().clone();
                job.finish().await;
                tracing::error!(node = %uuid, "power failure: node put into maintenance");
                self.record_history(&node, "power", Severity::Error, &msg)
                    .await;
                self.emit(NodeEvent::MaintenanceChanged {
                    node: uuid,
                    maintenance: true,
                    reason: Some(msg),
                });
            }
        }
    }

    /// One pass of the power failure recovery: nodes the power sync put into
    /// maintenance (fault `power failure`) whose power state reads again get out of
    /// maintenance. Maintenance set by an operator is never cleared.
    pub async fn power_failure_recovery(&self) {
        let nodes = match self
            .store()
            .list_nodes(&NodeQuery {
                filter: NodeFilter {
                    conductor_group: Some(self.config().conductor_group.clone()),
                    maintenance: Some(true),
                    fault: Some(Fault::PowerFailure),
                    reserved: Some(false),
                    ..Default::default()
                },
                ..Default::default()
            })
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "power recovery could not list nodes");
                return;
            }
        };
        for node in nodes.into_iter().filter(|n| self.owns(n)) {
            let uuid = node.uuid;
            let Ok(task) = self.task_for(node, true).await else {
                continue;
            };
            let Some(d) = task.driver.clone() else {
                continue;
            };
            if d.power.validate(&task).is_err() {
                continue;
            }
            let Ok(actual) = d.power.get_power_state(&task).await else {
                tracing::debug!(node = %uuid, "power still unreadable; staying in maintenance");
                continue;
            };
            let Ok(mut job) = self.job(&uuid.into(), false).await else {
                continue;
            };
            if job.node().fault != Some(Fault::PowerFailure) {
                job.finish().await;
                continue;
            }
            let n = job.node_mut();
            n.maintenance = false;
            n.maintenance_reason = None;
            n.fault = None;
            n.power_state = Some(actual);
            job.save_or_log().await;
            job.finish().await;
            tracing::info!(node = %uuid, "power failure recovered; maintenance cleared");
            self.emit(NodeEvent::MaintenanceChanged {
                node: uuid,
                maintenance: false,
                reason: None,
            });
        }
    }

    /// One pass of the callback-timeout checks: nodes waiting longer than their
    /// state's timeout (measured from `provision_updated_at`, which heartbeats
    /// touch) are failed with a `last_error` that says so.
    pub async fn check_callback_timeouts(&self) {
        let cfg = self.config();
        let checks = [
            (S::DeployWait, cfg.deploy_callback_timeout),
            (S::CleanWait, cfg.clean_callback_timeout),
            (S::InspectWait, cfg.inspect_wait_timeout),
            (S::RescueWait, cfg.rescue_callback_timeout),
            (S::ServiceWait, cfg.service_callback_timeout),
        ];
        for (state, timeout) in checks {
            if timeout.is_zero() {
                continue;
            }
            let Ok(age) = chrono::Duration::from_std(timeout) else {
                continue;
            };
            let before = crate::model::now() - age;
            let nodes = match self
                .store()
                .list_nodes(&NodeQuery {
                    filter: NodeFilter {
                        conductor_group: Some(self.config().conductor_group.clone()),
                        provision_state: Some(vec![state]),
                        maintenance: Some(false),
                        reserved: Some(false),
                        provision_updated_before: Some(before),
                        ..Default::default()
                    },
                    ..Default::default()
                })
                .await
            {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "timeout check could not list nodes");
                    continue;
                }
            };
            for n in nodes.into_iter().filter(|n| self.owns(n)) {
                let Ok(mut job) = self.job(&n.uuid.into(), false).await else {
                    continue;
                };
                let node = job.node();
                if node.provision_state != state
                    || node.maintenance
                    || node.provision_updated_at.is_none_or(|t| t >= before)
                {
                    job.finish().await;
                    continue;
                }
                let uuid = node.uuid;
                let step = |s: &crate::model::JsonMap| {
                    format!(
                        "{}.{}",
                        s.get("interface").and_then(|v| v.as_str()).unwrap_or("?"),
                        s.get("step").and_then(|v| v.as_str()).unwrap_or("?")
                    )
                };
                let msg = match state {
                    S::DeployWait => format!(
                        "Timeout reached while waiting for callback for node {uuid} (deploy step {})",
                        step(&node.deploy_step)
                    ),
                    S::CleanWait => format!(
                        "Timeout reached while cleaning the node. Please check if the ramdisk responsible for the cleaning is running on the node. Failed on step {}.",
                        step(&node.clean_step)
                    ),
                    S::InspectWait => "Timeout reached while inspecting the node. Please check if the ramdisk is running on the node.".to_owned(),
                    S::RescueWait => format!("Timeout reached while waiting for rescue ramdisk callback for node {uuid}"),
                    _ => format!(
                        "Timeout reached while servicing the node. Please check if the ramdisk responsible for servicing is running on the node. Failed on step {}.",
                        step(&node.service_step)
                    ),
                };
                job.fail(msg, false).await;
                job.finish().await;
            }
        }
    }
}
