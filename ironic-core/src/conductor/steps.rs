//! Steps: computing the list a node runs (pure) and running it.
//!
//! The list lives in `driver_internal_info.{clean,deploy,service,verify}_steps`,
//! the index of the current step in `*_step_index` and the current step itself in
//! `node.{clean,deploy,service}_step`. Reserved step names (`power_on`,
//! `power_off`, `reboot`, `hold`, `wait`) are run by the conductor itself.

use std::cmp::Reverse;
use std::time::Duration;

use serde_json::{Value, json};

use super::job::{Job, event_type, wipe_token};
use crate::driver::{Step, StepDef, StepKind, StepOutcome};
use crate::error::{Error, Result};
use crate::model::{Fault, InterfaceType, JsonMap, Severity};
use crate::observe::StepResult;
use crate::states::{Event, PowerAction, ProvisionState as S};

/// Step names the conductor handles itself, for any interface.
pub const RESERVED_STEPS: [&str; 5] = ["power_on", "power_off", "reboot", "hold", "wait"];

/// A step as a user (API `clean_steps`/`deploy_steps`/`service_steps`) or a deploy
/// template asks for it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct UserStep {
    /// Interface.
    pub interface: InterfaceType,
    /// Step name.
    pub step: String,
    /// Arguments.
    pub args: JsonMap,
    /// Priority (deploy steps; required there).
    pub priority: Option<u32>,
}

/// Parse and check the shape of a user step list: each item an object with
/// `interface` (a known interface), `step` (non-empty), optional `args` (object)
/// and `priority` (non-negative integer; required for deploy steps). Errors name
/// the offending item.
pub fn parse_user_steps(
    kind: StepKind,
    raw: &[Value],
) -> std::result::Result<Vec<UserStep>, String> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, v) in raw.iter().enumerate() {
        let o = v
            .as_object()
            .ok_or_else(|| format!("{kind} step #{i} must be an object, got {v}"))?;
        if let Some(k) = o
            .keys()
            .find(|k| !matches!(k.as_str(), "interface" | "step" | "args" | "priority"))
        {
            return Err(format!("{kind} step #{i} has an unknown field {k:?}"));
        }
        let iface = o
            .get("interface")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{kind} step #{i} is missing 'interface'"))?;
        let interface: InterfaceType = iface
            .parse()
            .map_err(|_| format!("{kind} step #{i} has an unknown interface {iface:?}"))?;
        let step = o
            .get("step")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("{kind} step #{i} is missing 'step'"))?
            .to_owned();
        let args = match o.get("args") {
            None | Some(Value::Null) => JsonMap::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                return Err(format!(
                    "{kind} step #{i} 'args' must be an object, got {other}"
                ));
            }
        };
        let priority =
            match o.get("priority") {
                None | Some(Value::Null) => None,
                Some(p) => Some(p.as_u64().and_then(|p| u32::try_from(p).ok()).ok_or_else(
                    || {
                        format!(
                            "{kind} step #{i} 'priority' must be a non-negative integer, got {p}"
                        )
                    },
                )?),
            };
        if kind == StepKind::Deploy && priority.is_none() {
            return Err(format!(
                "deploy step #{i} ({iface}.{step}) is missing 'priority'"
            ));
        }
        out.push(UserStep {
            interface,
            step,
            args,
            priority,
        });
    }
    Ok(out)
}

fn sort_key(kind: StepKind, s: &Step) -> (u32, u32) {
    (s.priority, kind.interface_priority(s.interface))
}

fn sort_steps(kind: StepKind, steps: &mut [Step]) {
    steps.sort_by_key(|s| Reverse(sort_key(kind, s)));
}

fn reserved(interface: InterfaceType, name: &str, args: JsonMap, priority: u32) -> Step {
    Step {
        interface,
        step: name.to_owned(),
        priority,
        args,
        abortable: true,
        requires_ramdisk: false,
    }
}

fn check_args(def: &StepDef, u: &UserStep) -> std::result::Result<(), String> {
    let Some(info) = &def.argsinfo else {
        return Ok(());
    };
    if let Some(k) = u.args.keys().find(|k| !info.contains_key(*k)) {
        return Err(format!(
            "{} step {}.{} has an unexpected argument {k:?}; it accepts: {}",
            def.kind,
            u.interface,
            u.step,
            info.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some((k, _)) = info
        .iter()
        .find(|(k, a)| a.required && !u.args.contains_key(*k))
    {
        return Err(format!(
            "{} step {}.{} is missing the required argument {k:?}",
            def.kind, u.interface, u.step
        ));
    }
    Ok(())
}

/// Resolve a user step against what the driver offers.
fn resolve(
    kind: StepKind,
    available: &[(InterfaceType, StepDef)],
    u: &UserStep,
    disable_ramdisk: bool,
) -> std::result::Result<Step, String> {
    if RESERVED_STEPS.contains(&u.step.as_str()) {
        return Ok(reserved(
            u.interface,
            &u.step,
            u.args.clone(),
            u.priority.unwrap_or(0),
        ));
    }
    let (_, def) = available
        .iter()
        .find(|(i, d)| *i == u.interface && d.name == u.step)
        .ok_or_else(|| {
            format!(
                "{kind} step {}.{} is not supported by the node's {} interface",
                u.interface, u.step, u.interface
            )
        })?;
    check_args(def, u)?;
    if disable_ramdisk && def.requires_ramdisk {
        return Err(format!(
            "{kind} step {}.{} requires the ramdisk and cannot run with disable_ramdisk",
            u.interface, u.step
        ));
    }
    let mut s = Step::from_def(u.interface, def);
    s.args = u.args.clone();
    if let Some(p) = u.priority {
        s.priority = p;
    }
    Ok(s)
}

/// Automated steps: every offered step of `kind` with priority > 0, highest first
/// (ties broken by Ironic's interface priorities).
pub(crate) fn automated_steps(kind: StepKind, available: &[(InterfaceType, StepDef)]) -> Vec<Step> {
    let mut v: Vec<Step> = available
        .iter()
        .filter(|(_, d)| d.kind == kind && d.priority > 0)
        .map(|(i, d)| Step::from_def(*i, d))
        .collect();
    sort_steps(kind, &mut v);
    v
}

/// Deploy steps: the driver's, overridden by deploy templates, overridden by the
/// user's; priority 0 removes a step.
pub(crate) fn deploy_steps(
    available: &[(InterfaceType, StepDef)],
    templates: &[UserStep],
    user: &[UserStep],
) -> std::result::Result<Vec<Step>, String> {
    let mut v: Vec<Step> = available
        .iter()
        .filter(|(_, d)| d.kind == StepKind::Deploy)
        .map(|(i, d)| Step::from_def(*i, d))
        .collect();
    for u in templates.iter().chain(user) {
        let s = resolve(StepKind::Deploy, available, u, false)?;
        v.retain(|o| !(o.interface == s.interface && o.step == s.step));
        v.push(s);
    }
    v.retain(|s| s.priority > 0);
    sort_steps(StepKind::Deploy, &mut v);
    Ok(v)
}

/// Manual clean / service steps: exactly the user's, in their order.
pub(crate) fn manual_steps(
    kind: StepKind,
    available: &[(InterfaceType, StepDef)],
    user: &[UserStep],
    disable_ramdisk: bool,
) -> std::result::Result<Vec<Step>, String> {
    user.iter()
        .map(|u| resolve(kind, available, u, disable_ramdisk))
        .collect()
}

/// After the agent came up, splice the freshly computed list in after the step
/// that is running: completed steps stay, steps ordered after the current one are
/// replaced by the new list's.
pub(crate) fn splice_refreshed(
    kind: StepKind,
    old: &[Step],
    index: usize,
    new: Vec<Step>,
) -> Vec<Step> {
    let Some(cur) = old.get(index) else {
        return new;
    };
    let cur_key = sort_key(kind, cur);
    let done = &old[..=index];
    let mut out: Vec<Step> = done.to_vec();
    out.extend(new.into_iter().filter(|s| {
        sort_key(kind, s) < cur_key
            && !done
                .iter()
                .any(|d| d.interface == s.interface && d.step == s.step)
    }));
    out
}

pub(crate) fn steps_key(kind: StepKind) -> String {
    format!("{kind}_steps")
}
pub(crate) fn index_key(kind: StepKind) -> String {
    format!("{kind}_step_index")
}
pub(crate) fn refreshed_key(kind: StepKind) -> String {
    format!("{kind}_steps_refreshed")
}
pub(crate) fn requested_key(kind: StepKind) -> String {
    format!("requested_{kind}_steps")
}

fn wait_state(kind: StepKind) -> Option<S> {
    match kind {
        StepKind::Clean => Some(S::CleanWait),
        StepKind::Deploy => Some(S::DeployWait),
        StepKind::Service => Some(S::ServiceWait),
        StepKind::Verify => None,
    }
}

impl Job {
    pub(crate) fn steps(&self, kind: StepKind) -> Vec<Step> {
        self.node()
            .internal(&steps_key(kind))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    pub(crate) fn step_index(&self, kind: StepKind) -> Option<usize> {
        self.node()
            .internal(&index_key(kind))
            .and_then(Value::as_u64)
            .map(|i| i as usize)
    }

    pub(crate) fn set_steps(&mut self, kind: StepKind, steps: &[Step]) {
        let v = serde_json::to_value(steps).unwrap_or(Value::Array(Vec::new()));
        self.node_mut().set_internal(&steps_key(kind), v);
        self.node_mut().remove_internal(&index_key(kind));
    }

    fn current_step_field(&mut self, kind: StepKind) -> Option<&mut JsonMap> {
        let n = self.node_mut();
        match kind {
            StepKind::Clean => Some(&mut n.clean_step),
            StepKind::Deploy => Some(&mut n.deploy_step),
            StepKind::Service => Some(&mut n.service_step),
            StepKind::Verify => None,
        }
    }

    /// Forget the step list and current step of `kind`.
    pub(crate) fn clear_steps(&mut self, kind: StepKind) {
        for k in [
            steps_key(kind),
            index_key(kind),
            refreshed_key(kind),
            requested_key(kind),
        ] {
            self.node_mut().remove_internal(&k);
        }
        self.node_mut()
            .remove_internal(&format!("{kind}_disable_ramdisk"));
        if let Some(f) = self.current_step_field(kind) {
            f.clear();
        }
    }

    /// Every step the node's interfaces offer for `kind`.
    pub(crate) async fn available_steps(
        &self,
        kind: StepKind,
    ) -> Result<Vec<(InterfaceType, StepDef)>> {
        let driver = self.task.driver()?.clone();
        let mut out = Vec::new();
        for &t in InterfaceType::ALL {
            for d in driver.base(t).get_steps(&self.task, kind).await? {
                if d.kind == kind {
                    out.push((t, d));
                }
            }
        }
        Ok(out)
    }

    /// The user's requested steps stored at the start of the operation, if any.
    pub(crate) fn requested_steps(&self, kind: StepKind) -> Option<Vec<UserStep>> {
        let raw = self
            .node()
            .internal(&requested_key(kind))?
            .as_array()?
            .clone();
        parse_user_steps(kind, &raw).ok()
    }

    /// Compute and store the step list of a clean/service/verify operation
    /// (manual when steps were requested, automated otherwise). On error the
    /// operation fails.
    pub(crate) async fn compute_steps(
        &mut self,
        kind: StepKind,
    ) -> std::result::Result<(), String> {
        let available = self.available_steps(kind).await.map_err(|e| {
            format!(
                "Failed to get the {kind} steps of node {}: {e}",
                self.node().uuid
            )
        })?;
        let disable_ramdisk = self
            .node()
            .internal(&format!("{kind}_disable_ramdisk"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let steps = match self.requested_steps(kind) {
            Some(user) => manual_steps(kind, &available, &user, disable_ramdisk)?,
            None => automated_steps(kind, &available),
        };
        self.set_steps(kind, &steps);
        self.node_mut().set_internal(&refreshed_key(kind), true);
        Ok(())
    }

    /// Run the steps of `kind` from the one after the current index until one
    /// waits, holds, fails, or all are done.
    pub(crate) async fn run_steps(mut self, kind: StepKind) -> Job {
        loop {
            let steps = self.steps(kind);
            let next = self.step_index(kind).map_or(0, |i| i + 1);
            let Some(step) = steps.get(next).cloned() else {
                self.finish_steps(kind).await;
                return self;
            };
            self.node_mut().set_internal(&index_key(kind), next as u64);
            if let Some(f) = self.current_step_field(kind) {
                *f = step.to_json();
            }
            self.node_mut().step_started_at = Some(crate::model::now());
            if let Err(e) = self.save().await {
                tracing::error!(node = %self.node().uuid, error = %e, "could not save the step");
                return self;
            }
            tracing::info!(node = %self.node().uuid, kind = %kind, interface = %step.interface, step = %step.step, priority = step.priority, "executing step");
            match self.execute(kind, &step).await {
                Ok(Some(StepOutcome::Done)) => {
                    self.step_ended(
                        kind,
                        &step.interface.to_string(),
                        &step.step,
                        StepResult::Done,
                    );
                    continue;
                }
                Ok(Some(StepOutcome::Wait)) => {
                    let Some(_) = wait_state(kind) else {
                        let msg = format!(
                            "{kind} step {}.{} on node {} tried to wait, but {kind} steps must be synchronous",
                            step.interface,
                            step.step,
                            self.node().uuid
                        );
                        self.fail(msg, true).await;
                        return self;
                    };
                    self.transition_or_log(Event::Wait, None).await;
                    return self;
                }
                Ok(None) => {
                    // hold
                    self.transition_or_log(Event::Hold, None).await;
                    return self;
                }
                Err(e) => {
                    self.step_ended(
                        kind,
                        &step.interface.to_string(),
                        &step.step,
                        StepResult::Failed,
                    );
                    let msg = format!(
                        "{} step {}.{} failed on node {}: {e}",
                        capitalize(kind.as_str()),
                        step.interface,
                        step.step,
                        self.node().uuid
                    );
                    self.fail(msg, true).await;
                    return self;
                }
            }
        }
    }

    /// Report the end of the running step of `kind` to the observer (once: it
    /// forgets when the step started).
    pub(crate) fn step_ended(
        &mut self,
        kind: StepKind,
        interface: &str,
        step: &str,
        result: StepResult,
    ) {
        let Some(started) = self.node_mut().step_started_at.take() else {
            return;
        };
        let duration = (crate::model::now() - started).to_std().unwrap_or_default();
        let id = self.node().uuid;
        self.c.observer().step_finished(&crate::observe::step_event(
            id, kind, interface, step, duration, result,
        ));
    }

    /// Report the end of the current step of `kind` as recorded on the node
    /// (`clean_step`, `deploy_step`, `service_step`).
    pub(crate) fn current_step_ended(&mut self, kind: StepKind, result: StepResult) {
        let Some(f) = self.current_step_field(kind) else {
            self.node_mut().step_started_at = None;
            return;
        };
        let get = |k: &str| {
            f.get(k)
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned()
        };
        let (i, s) = (get("interface"), get("step"));
        self.step_ended(kind, &i, &s, result);
    }

    /// Run one step. `Ok(None)` means "hold".
    async fn execute(&mut self, kind: StepKind, step: &Step) -> Result<Option<StepOutcome>> {
        match step.step.as_str() {
            "power_on" => self
                .power(PowerAction::PowerOn)
                .await
                .map(|_| Some(StepOutcome::Done)),
            "power_off" => self
                .power(PowerAction::PowerOff)
                .await
                .map(|_| Some(StepOutcome::Done)),
            "reboot" => self
                .power(PowerAction::Reboot)
                .await
                .map(|_| Some(StepOutcome::Done)),
            "hold" if kind != StepKind::Verify => Ok(None),
            "wait" => match step.args.get("seconds") {
                Some(v) => {
                    let secs = v
                        .as_f64()
                        .filter(|s| *s >= 0.0 && *s <= 86400.0)
                        .ok_or_else(|| {
                            Error::Invalid(format!(
                                "wait step: 'seconds' must be a number of seconds, got {v}"
                            ))
                        })?;
                    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                    Ok(Some(StepOutcome::Done))
                }
                None => Ok(Some(StepOutcome::Wait)),
            },
            _ => {
                let driver = self.task.driver()?.clone();
                let out = driver
                    .base(step.interface)
                    .execute_step(&mut self.task, kind, step)
                    .await?;
                // Ironic's BIOS steps carry @cache_bios_settings.
                if step.interface == InterfaceType::Bios
                    && matches!(step.step.as_str(), "apply_configuration" | "factory_reset")
                {
                    self.cache_bios_settings().await;
                }
                Ok(Some(out))
            }
        }
    }

    /// The reserved `power_on`/`power_off`/`reboot` steps: one attempt, never
    /// re-sent (see `PowerInterface`'s contract); a failure fails the step.
    async fn power(&mut self, action: PowerAction) -> Result<()> {
        let timeout = Some(self.c.config().power_state_change_timeout);
        self.task.node_power_action(action, timeout).await?;
        Ok(())
    }

    /// All steps done: tear down and move to the operation's end state.
    async fn finish_steps(&mut self, kind: StepKind) {
        let disable_ramdisk = self
            .node()
            .internal(&format!("{kind}_disable_ramdisk"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let driver = match self.task.driver() {
            Ok(d) => d.clone(),
            Err(e) => {
                self.fail(e.to_string(), false).await;
                return;
            }
        };
        let teardown = match kind {
            StepKind::Clean if !disable_ramdisk => {
                driver.deploy.tear_down_cleaning(&mut self.task).await
            }
            StepKind::Service if !disable_ramdisk => {
                driver.deploy.tear_down_service(&mut self.task).await
            }
            _ => Ok(()),
        };
        if let Err(e) = teardown {
            let msg = format!(
                "Failed to tear down from {kind} for node {}: {e}",
                self.node().uuid
            );
            self.fail(msg, false).await;
            return;
        }
        self.clear_steps(kind);
        wipe_token(self.node_mut());
        self.node_mut().last_error = None;
        // Ironic's node_update_cache when verification, cleaning or servicing ends.
        if matches!(kind, StepKind::Verify | StepKind::Clean | StepKind::Service) {
            self.update_cache().await;
        }
        // Ironic's cleaning end: manual cleaning, and any cleaning of a retired
        // node, goes back to manageable instead of available.
        let event = match (kind, self.node().target_provision_state) {
            (StepKind::Clean, Some(S::Manageable)) => Event::Manage,
            (StepKind::Clean, _) if self.node().retired => Event::Manage,
            _ => Event::Done,
        };
        self.transition_or_log(event, None).await;
    }

    /// Fail the running operation: record `msg` in `last_error` and the history,
    /// clean up as the operation requires, and move to its failure state.
    /// `step_failure` puts a cleaning/servicing node into maintenance with a fault,
    /// as Ironic's error handlers do.
    pub(crate) async fn fail(&mut self, msg: String, step_failure: bool) {
        let state = self.node().provision_state;
        let id = self.node().uuid;
        tracing::error!(node = %id, state = %state, error = %msg, "operation failed");
        let driver = self.task.driver().ok().cloned();
        let mut cleanup_errors = Vec::new();
        let (event, kind) = match state {
            S::Deploying | S::DeployWait => (Event::Fail, Some(StepKind::Deploy)),
            S::DeployHold => (Event::Abort, Some(StepKind::Deploy)),
            S::Cleaning | S::CleanWait => (Event::Fail, Some(StepKind::Clean)),
            S::CleanHold => (Event::Abort, Some(StepKind::Clean)),
            S::Servicing | S::ServiceWait | S::ServiceHold => {
                (Event::Fail, Some(StepKind::Service))
            }
            S::Verifying => (Event::Fail, Some(StepKind::Verify)),
            _ => (Event::Fail, None),
        };
        // the fault first, as Ironic's cleaning/servicing error handlers: the
        // tear-down leaves a failed node as it is (powered, on its network)
        let faulted =
            step_failure && matches!(kind, Some(StepKind::Clean) | Some(StepKind::Service));
        if faulted {
            self.node_mut().fault = Some(if kind == Some(StepKind::Clean) {
                Fault::CleanFailure
            } else {
                Fault::ServiceFailure
            });
        }
        if let Some(d) = &driver {
            let r = match state {
                S::Deploying | S::DeployWait | S::DeployHold => {
                    d.deploy.clean_up(&mut self.task).await
                }
                S::Cleaning | S::CleanWait | S::CleanHold => {
                    d.deploy.tear_down_cleaning(&mut self.task).await
                }
                S::Servicing | S::ServiceWait | S::ServiceHold => {
                    d.deploy.tear_down_service(&mut self.task).await
                }
                S::Rescuing | S::RescueWait => d.rescue.clean_up(&mut self.task).await,
                _ => Ok(()),
            };
            if let Err(e) = r {
                cleanup_errors.push(e.to_string());
            }
        }
        let mut last_error = msg;
        if !cleanup_errors.is_empty() {
            last_error.push_str(&format!(
                "; cleaning up afterwards also failed: {}",
                cleanup_errors.join("; ")
            ));
        }
        if faulted {
            let n = self.node_mut();
            n.maintenance = true;
            n.maintenance_reason = Some(last_error.clone());
        }
        if let Some(k) = kind {
            self.current_step_ended(k, StepResult::Failed);
        }
        self.node_mut().step_started_at = None;
        if let Some(k) = kind {
            // keep the failed step visible, forget the list
            for key in [
                steps_key(k),
                index_key(k),
                refreshed_key(k),
                requested_key(k),
            ] {
                self.node_mut().remove_internal(&key);
            }
        }
        wipe_token(self.node_mut());
        self.node_mut().last_error = Some(last_error.clone());
        let node = self.node().clone();
        self.c
            .record_history(&node, event_type(state), Severity::Error, &last_error)
            .await;
        self.transition_or_log(event, None).await;
        if self.node().maintenance && self.node().fault.is_some() && step_failure {
            self.c.emit(super::NodeEvent::MaintenanceChanged {
                node: id,
                maintenance: true,
                reason: self.node().maintenance_reason.clone(),
            });
        }
    }

    /// The agent is back (or a hold was released): continue the steps of the
    /// operation waiting in `state`. Handles `abort_after` and the first-heartbeat
    /// refresh of agent-reported steps.
    pub(crate) async fn continue_from_wait(mut self) -> Job {
        let state = self.node().provision_state;
        let kind = match state {
            S::DeployWait => StepKind::Deploy,
            S::CleanWait => StepKind::Clean,
            S::ServiceWait => StepKind::Service,
            _ => return self,
        };
        let current = match kind {
            StepKind::Deploy => &self.node().deploy_step,
            StepKind::Clean => &self.node().clean_step,
            _ => &self.node().service_step,
        };
        let abort_after = current.get("abort_after").and_then(Value::as_bool) == Some(true);
        self.current_step_ended(kind, StepResult::Done);
        let current = match kind {
            StepKind::Deploy => &self.node().deploy_step,
            StepKind::Clean => &self.node().clean_step,
            _ => &self.node().service_step,
        };
        if abort_after {
            let step = format!(
                "{}.{}",
                current
                    .get("interface")
                    .and_then(Value::as_str)
                    .unwrap_or("?"),
                current.get("step").and_then(Value::as_str).unwrap_or("?")
            );
            let msg = format!(
                "{} aborted by request after step {step} completed",
                capitalize(event_type(state))
            );
            self.abort_now(msg).await;
            return self;
        }
        let refreshed = self
            .node()
            .internal(&refreshed_key(kind))
            .and_then(Value::as_bool)
            == Some(true);
        if !refreshed {
            let r = match kind {
                StepKind::Deploy => self.refresh_deploy_steps().await,
                _ => self.compute_steps(kind).await,
            };
            if let Err(msg) = r {
                self.fail(msg, false).await;
                return self;
            }
        }
        if let Err(e) = self.transition(Event::Resume, None).await {
            tracing::error!(node = %self.node().uuid, error = %e, "could not resume");
            return self;
        }
        self.run_steps(kind).await
    }

    async fn refresh_deploy_steps(&mut self) -> std::result::Result<(), String> {
        let kind = StepKind::Deploy;
        let new = self.compute_deploy_list().await?;
        let old = self.steps(kind);
        let index = self.step_index(kind);
        let list = match index {
            Some(i) => splice_refreshed(kind, &old, i, new),
            None => new,
        };
        let v = serde_json::to_value(&list).unwrap_or(json!([]));
        self.node_mut().set_internal(&steps_key(kind), v);
        self.node_mut().set_internal(&refreshed_key(kind), true);
        Ok(())
    }

    /// The deploy step list from the driver, the matching deploy templates and the
    /// user's requested steps.
    pub(crate) async fn compute_deploy_list(&mut self) -> std::result::Result<Vec<Step>, String> {
        let available = self.available_steps(StepKind::Deploy).await.map_err(|e| {
            format!(
                "Failed to get the deploy steps of node {}: {e}",
                self.node().uuid
            )
        })?;
        let traits: Vec<String> = self
            .node()
            .instance_info
            .get("traits")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut template_steps = Vec::new();
        if !traits.is_empty() {
            let templates = self
                .c
                .store()
                .list_deploy_templates()
                .await
                .map_err(|e| format!("Failed to read deploy templates: {e}"))?;
            for t in templates.iter().filter(|t| traits.contains(&t.name)) {
                for s in &t.steps {
                    let interface = s.interface.parse().map_err(|_| {
                        format!(
                            "Deploy template {} has a step with an unknown interface {}",
                            t.name, s.interface
                        )
                    })?;
                    template_steps.push(UserStep {
                        interface,
                        step: s.step.clone(),
                        args: s.args.clone(),
                        priority: Some(s.priority),
                    });
                }
            }
        }
        let user = self.requested_steps(StepKind::Deploy).unwrap_or_default();
        deploy_steps(&available, &template_steps, &user)
    }
}

pub(crate) fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avail() -> Vec<(InterfaceType, StepDef)> {
        vec![
            (InterfaceType::Deploy, StepDef::deploy("deploy", 100)),
            (InterfaceType::Deploy, StepDef::deploy("write_image", 80)),
            (InterfaceType::Deploy, StepDef::deploy("boot_instance", 20)),
            (
                InterfaceType::Bios,
                StepDef::deploy("apply_configuration", 0).arg("settings", "s", true),
            ),
            (
                InterfaceType::Raid,
                StepDef::clean("delete_configuration", 0),
            ),
            (InterfaceType::Deploy, StepDef::clean("erase_devices", 10)),
            (InterfaceType::Management, StepDef::clean("reset_bmc", 10)),
        ]
    }

    #[test]
    fn automated_clean_orders_by_priority_then_interface() {
        let s = automated_steps(StepKind::Clean, &avail());
        let names: Vec<_> = s
            .iter()
            .map(|s| format!("{}.{}", s.interface, s.step))
            .collect();
        assert_eq!(names, ["management.reset_bmc", "deploy.erase_devices"]);
    }

    #[test]
    fn user_and_template_deploy_steps_override_driver_steps() {
        let tmpl = parse_user_steps(
            StepKind::Deploy,
            &[json!({"interface": "bios", "step": "apply_configuration", "args": {"settings": []}, "priority": 90})],
        )
        .unwrap();
        let user = parse_user_steps(
            StepKind::Deploy,
            &[
                json!({"interface": "deploy", "step": "boot_instance", "priority": 0}),
                json!({"interface": "deploy", "step": "hold", "priority": 50}),
            ],
        )
        .unwrap();
        let s = deploy_steps(&avail(), &tmpl, &user).unwrap();
        let names: Vec<_> = s.iter().map(|s| (s.step.as_str(), s.priority)).collect();
        assert_eq!(
            names,
            [
                ("deploy", 100),
                ("apply_configuration", 90),
                ("write_image", 80),
                ("hold", 50)
            ]
        );
    }

    #[test]
    fn user_steps_are_checked() {
        assert!(
            parse_user_steps(
                StepKind::Deploy,
                &[json!({"interface": "deploy", "step": "x"})]
            )
            .is_err()
        );
        assert!(
            parse_user_steps(
                StepKind::Clean,
                &[json!({"interface": "nope", "step": "x"})]
            )
            .is_err()
        );
        assert!(parse_user_steps(StepKind::Clean, &[json!("str")]).is_err());
        assert!(
            parse_user_steps(
                StepKind::Clean,
                &[json!({"interface": "raid", "step": "x", "bogus": 1})]
            )
            .is_err()
        );
        let missing_arg = parse_user_steps(
            StepKind::Deploy,
            &[json!({"interface": "bios", "step": "apply_configuration", "priority": 5})],
        )
        .unwrap();
        let e = deploy_steps(&avail(), &[], &missing_arg).unwrap_err();
        assert!(e.contains("settings"), "{e}");
        let unknown = parse_user_steps(
            StepKind::Clean,
            &[json!({"interface": "raid", "step": "explode"})],
        )
        .unwrap();
        let e = manual_steps(StepKind::Clean, &avail(), &unknown, false).unwrap_err();
        assert!(e.contains("raid.explode"), "{e}");
        let erase = parse_user_steps(
            StepKind::Clean,
            &[json!({"interface": "deploy", "step": "erase_devices"})],
        )
        .unwrap();
        assert!(
            manual_steps(StepKind::Clean, &avail(), &erase, true)
                .unwrap_err()
                .contains("ramdisk")
        );
        assert_eq!(
            manual_steps(StepKind::Clean, &avail(), &erase, false)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn refresh_splices_after_current_step() {
        let old = deploy_steps(&avail(), &[], &[]).unwrap();
        let mut more = avail();
        more.push((InterfaceType::Deploy, StepDef::deploy("inband_config", 50)));
        more.push((InterfaceType::Deploy, StepDef::deploy("early", 150)));
        let new = deploy_steps(&more, &[], &[]).unwrap();
        let spliced = splice_refreshed(StepKind::Deploy, &old, 0, new);
        let names: Vec<_> = spliced.iter().map(|s| s.step.as_str()).collect();
        assert_eq!(
            names,
            ["deploy", "write_image", "inband_config", "boot_instance"]
        );
    }
}
