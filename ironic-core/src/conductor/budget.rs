//! "Why is it stuck": what a node in a wait or hold state waits for, since when
//! and until when, and the time budget (a service-level objective) per
//! provision state.
//!
//! [`wait_info`] is a pure reading of a node and the conductor's settings; the
//! conductor records it in the node's history when the node starts waiting, and
//! the periodic budget check logs one line (and records one history event) when a
//! node stays in a state longer than its budget.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::{Conductor, ConductorConfig};
use crate::ids::NodeId;
use crate::model::{Node, Severity, Timestamp};
use crate::states::ProvisionState as S;
use crate::store::{NodeFilter, NodeQuery};

/// What a node waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WaitInfo {
    /// What it waits for, in words for an operator.
    pub reason: String,
    /// Since when (the state change or power request; for callback waits the
    /// last heartbeat, which restarts the timeout).
    pub since: Option<Timestamp>,
    /// When the wait times out and the operation fails (`None`: it never does,
    /// e.g. a hold, or the timeout is disabled).
    pub deadline: Option<Timestamp>,
    /// The setting that bounds the wait (`deploy_callback_timeout`, ...).
    pub timeout_setting: Option<&'static str>,
}

fn step_name(step: &crate::model::JsonMap) -> Option<String> {
    let i = step.get("interface").and_then(Value::as_str)?;
    let s = step.get("step").and_then(Value::as_str)?;
    Some(format!("{i}.{s}"))
}

fn plus(t: Option<Timestamp>, d: Duration) -> Option<Timestamp> {
    if d.is_zero() {
        return None;
    }
    Some(t? + chrono::Duration::from_std(d).ok()?)
}

/// What `node` waits for, or `None` when it waits for nothing: a callback from
/// the ramdisk agent (the wait states), an operator (the hold states) or the BMC
/// (a power change in progress).
pub fn wait_info(node: &Node, cfg: &ConductorConfig) -> Option<WaitInfo> {
    let state = node.provision_state;
    let (step, timeout, setting) = match state {
        S::DeployWait => (
            step_name(&node.deploy_step),
            cfg.deploy_callback_timeout,
            "deploy_callback_timeout",
        ),
        S::CleanWait => (
            step_name(&node.clean_step),
            cfg.clean_callback_timeout,
            "clean_callback_timeout",
        ),
        S::ServiceWait => (
            step_name(&node.service_step),
            cfg.service_callback_timeout,
            "service_callback_timeout",
        ),
        S::InspectWait => (None, cfg.inspect_wait_timeout, "inspect_wait_timeout"),
        S::RescueWait => (None, cfg.rescue_callback_timeout, "rescue_callback_timeout"),
        S::DeployHold | S::CleanHold | S::ServiceHold => {
            let step = match state {
                S::DeployHold => step_name(&node.deploy_step),
                S::CleanHold => step_name(&node.clean_step),
                _ => step_name(&node.service_step),
            };
            return Some(WaitInfo {
                reason: format!(
                    "held by {}: waiting for an operator to run `baremetal node unhold {}`",
                    step.map_or_else(|| "a hold step".to_owned(), |s| format!("step {s}")),
                    node.name.as_deref().unwrap_or(&node.uuid.to_string()),
                ),
                since: node.provision_state_since.or(node.provision_updated_at),
                deadline: None,
                timeout_setting: None,
            });
        }
        _ => {
            let target = node.target_power_state?;
            let since = node.updated_at;
            return Some(WaitInfo {
                reason: format!("waiting for the BMC to reach power state '{target}'"),
                since,
                deadline: plus(since, cfg.power_state_change_timeout),
                timeout_setting: Some("power_state_change_timeout"),
            });
        }
    };
    let pending = node
        .internal("agent_pending_command")
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str);
    let heard = node.internal("agent_last_heartbeat").is_some();
    let reason = match (state, pending, &step) {
        (S::InspectWait, _, _) => {
            "waiting for the ramdisk agent to send the inspection data".to_owned()
        }
        (S::RescueWait, _, _) => "waiting for the rescue ramdisk's agent to heartbeat".to_owned(),
        (_, Some(cmd), Some(s)) => {
            format!("waiting for the agent to finish step {s} (agent command {cmd})")
        }
        (_, Some(cmd), None) => format!("waiting for the agent to finish command {cmd}"),
        (_, None, Some(s)) if !heard && (s == "deploy.deploy" || state != S::DeployWait) => {
            format!("waiting for the ramdisk to boot and its agent to heartbeat (step {s})")
        }
        (_, None, Some(s)) => format!("waiting for a heartbeat to continue step {s}"),
        (_, None, None) => "waiting for the ramdisk to boot and its agent to heartbeat".to_owned(),
    };
    // heartbeats touch provision_updated_at, which restarts the timeout
    let since = node.provision_updated_at.or(node.provision_state_since);
    Some(WaitInfo {
        reason,
        since,
        deadline: plus(since, timeout),
        timeout_setting: Some(setting),
    })
}

/// How long `node` has been in its provision state at `now`, when known.
pub fn time_in_state(node: &Node, now: Timestamp) -> Option<Duration> {
    let since = node.provision_state_since?;
    (now - since).to_std().ok()
}

/// How far past its state's budget `node` is at `now` (`None`: within it, or the
/// state has no budget).
pub fn over_budget(node: &Node, cfg: &ConductorConfig, now: Timestamp) -> Option<Duration> {
    let budget = *cfg.state_budgets.get(&node.provision_state)?;
    let t = time_in_state(node, now)?;
    t.checked_sub(budget).filter(|d| !d.is_zero())
}

/// Which nodes were already reported over budget for their current stay.
#[derive(Debug, Default)]
pub(crate) struct Budgets {
    reported: Mutex<HashMap<NodeId, Timestamp>>,
}

impl Conductor {
    /// What `node` waits for (see [`wait_info`]), with this conductor's settings.
    pub fn wait_info(&self, node: &Node) -> Option<WaitInfo> {
        wait_info(node, self.config())
    }

    /// Record in the history why a node that just entered a wait or hold state
    /// waits, and until when.
    pub(crate) async fn record_wait(&self, node: &Node) {
        let Some(w) = wait_info(node, self.config()) else {
            return;
        };
        let mut msg = format!("{}: {}", node.provision_state, w.reason);
        match (w.deadline, w.timeout_setting) {
            (Some(d), Some(s)) => msg.push_str(&format!(
                "; times out at {} ({s}; each heartbeat restarts it)",
                d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
            _ => msg.push_str("; no timeout"),
        }
        self.record_history(
            node,
            super::job::event_type(node.provision_state),
            Severity::Info,
            &msg,
        )
        .await;
    }

    /// One pass of the budget check (normally every
    /// `state_budget_check_interval`): every node of this conductor's group that
    /// has been in its provision state longer than the state's budget is logged
    /// once per stay, recorded in its history and reported to the observer.
    pub async fn check_state_budgets(&self) {
        let cfg = self.config();
        if cfg.state_budgets.is_empty() {
            return;
        }
        let nodes = match self
            .store()
            .list_nodes(&NodeQuery {
                filter: NodeFilter {
                    conductor_group: Some(cfg.conductor_group.clone()),
                    provision_state: Some(cfg.state_budgets.keys().copied().collect()),
                    ..Default::default()
                },
                ..Default::default()
            })
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "state budget check could not list nodes");
                return;
            }
        };
        let now = crate::model::now();
        let mut fresh = Vec::new();
        {
            let mut reported = self
                .inner
                .budgets
                .reported
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let mut keep = HashMap::new();
            for n in &nodes {
                let (Some(over), Some(since)) = (over_budget(n, cfg, now), n.provision_state_since)
                else {
                    continue;
                };
                if reported.get(&n.uuid) != Some(&since) {
                    fresh.push((n.clone(), over));
                }
                keep.insert(n.uuid, since);
            }
            *reported = keep;
        }
        for (n, over) in fresh {
            let budget = cfg.state_budgets[&n.provision_state];
            let elapsed = budget + over;
            let waiting = wait_info(&n, cfg)
                .map(|w| format!("; {}", w.reason))
                .unwrap_or_default();
            let msg = format!(
                "Node {} has been in {} for {} s, over its budget of {} s{waiting}",
                n.display_name(),
                n.provision_state,
                elapsed.as_secs(),
                budget.as_secs()
            );
            tracing::warn!(node = %n.uuid, state = %n.provision_state, elapsed_s = elapsed.as_secs(), budget_s = budget.as_secs(), "{msg}");
            self.record_history(
                &n,
                super::job::event_type(n.provision_state),
                Severity::Warning,
                &msg,
            )
            .await;
            self.observer().over_budget(&crate::observe::budget_event(
                n.uuid,
                n.provision_state,
                budget,
                elapsed,
            ));
        }
    }
}
