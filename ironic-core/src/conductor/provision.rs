//! The provisioning verbs (`PUT /v1/nodes/{id}/states/provision`).

use serde_json::Value;

use super::job::{Job, event_type, wipe_token};
use super::steps::{capitalize, parse_user_steps, refreshed_key, requested_key};
use super::{Conductor, ProvisionRequest};
use crate::driver::{InspectOutcome, StepKind, StepOutcome};
use crate::error::{DriverError, Error, Result};
use crate::ids::Ident;
use crate::model::{InterfaceType, Node, Severity};
use crate::states::{self, Event, ProvisionState as S};

/// What a verb continues with on a worker.
enum Cont {
    Deploy,
    TearDown { prev: S },
    Clean,
    Verify,
    Inspect,
    Adopt,
    Rescue,
    Unrescue,
    Service,
    Abort(String),
    ContinueWait,
}

fn validate_iface(job: &Job, t: InterfaceType) -> Result<()> {
    let d = job.task.driver()?;
    d.base(t).validate(&job.task).map_err(|e| {
        Error::Driver(
            DriverError::new(
                e.kind(),
                format!(
                    "Failed to validate the {t} interface of node {}: {e}",
                    job.node().uuid
                ),
            )
            .with_retryable(false),
        )
    })
}

fn is_agent_waiting(node: &Node) -> bool {
    node.internal("agent_url").is_some()
}

impl Conductor {
    /// Run a provisioning verb. Returns once the request is accepted and the node's
    /// state has changed (e.g. to `deploying`); the work continues on a worker.
    ///
    /// Errors: [`Error::Invalid`] for an unknown target or bad steps,
    /// [`Error::InvalidState`] when the state machine does not allow the verb,
    /// [`Error::NodeLocked`] when another operation holds the node,
    /// [`Error::InMaintenance`], [`Error::Driver`] when validation fails,
    /// [`Error::NoFreeWorker`] when the pool is full (nothing changed then).
    pub async fn provision(&self, ident: &Ident, req: ProvisionRequest) -> Result<()> {
        self.check_accepting()?;
        let event = states::verb_event(&req.target).ok_or_else(|| {
            Error::Invalid(format!(
                "\"{}\" is not a valid provision state target: expected one of active, deploy, rebuild, deleted, undeploy, manage, provide, inspect, clean, abort, adopt, rescue, unrescue, unhold, service",
                req.target
            ))
        })?;
        // Lock first: the node comes with the lock (prepare_verb checks its
        // state). Only when it is locked elsewhere, read it: a verb its state
        // does not allow fails at once, the holder may be changing that state.
        let mut job = match self.job(ident, false).await {
            Err(Error::NodeLocked { .. }) => {
                let node = self.store().get_node(ident).await?;
                if states::next(node.provision_state, event).is_none() {
                    return Err(match node.reservation {
                        Some(holder) => Error::NodeLocked {
                            node: ident.to_string(),
                            holder,
                        },
                        None => invalid_state(&req.target, &node),
                    });
                }
                self.job(ident, true).await?
            }
            r => r?,
        };
        match self.prepare_verb(&mut job, event, &req).await {
            Err(e) => {
                job.finish().await;
                Err(e)
            }
            Ok(None) => {
                job.finish().await;
                Ok(())
            }
            Ok(Some(cont)) => {
                self.spawn_job(job, move |job| run_cont(job, cont));
                Ok(())
            }
        }
    }

    async fn prepare_verb(
        &self,
        job: &mut Job,
        event: Event,
        req: &ProvisionRequest,
    ) -> Result<Option<Cont>> {
        let state = job.node().provision_state;
        if states::next(state, event).is_none() {
            return Err(invalid_state(&req.target, job.node()));
        }
        let uuid = job.node().uuid.to_string();
        match event {
            Event::Deploy | Event::Rebuild => {
                if job.node().maintenance {
                    return Err(Error::InMaintenance(uuid));
                }
                if event == Event::Rebuild && job.node().protected {
                    return Err(Error::Protected(uuid));
                }
                for t in [
                    InterfaceType::Power,
                    InterfaceType::Deploy,
                    InterfaceType::Boot,
                ] {
                    validate_iface(job, t)?;
                }
                check_instance_traits(job.node())?;
                let user = match &req.deploy_steps {
                    Some(raw) => {
                        parse_user_steps(StepKind::Deploy, raw).map_err(Error::Invalid)?;
                        Some(Value::Array(raw.clone()))
                    }
                    None => None,
                };
                if let Some(cd) = &req.configdrive
                    && !(cd.is_string() || cd.is_object())
                {
                    return Err(Error::Invalid(
                        "configdrive must be a gzipped, base64-encoded string or an object with meta_data, network_data, user_data and vendor_data".to_owned(),
                    ));
                }
                job.reserve_worker()?;
                job.clear_steps(StepKind::Deploy);
                wipe_token(job.node_mut());
                let n = job.node_mut();
                n.last_error = None;
                match &req.configdrive {
                    Some(cd) => n.instance_info.insert("configdrive".into(), cd.clone()),
                    None => n.instance_info.remove("configdrive"),
                };
                if let Some(u) = user {
                    n.set_internal(&requested_key(StepKind::Deploy), u);
                }
                job.transition(event, None).await?;
                Ok(Some(Cont::Deploy))
            }
            Event::Delete => {
                if job.node().protected {
                    return Err(Error::Protected(uuid));
                }
                job.reserve_worker()?;
                job.node_mut().last_error = None;
                job.transition(event, None).await?;
                Ok(Some(Cont::TearDown { prev: state }))
            }
            Event::Manage if state == S::Enroll => {
                job.reserve_worker()?;
                job.node_mut().last_error = None;
                job.transition(event, None).await?;
                Ok(Some(Cont::Verify))
            }
            Event::Manage => {
                job.transition(event, None).await?;
                Ok(None)
            }
            Event::Provide => {
                if job.node().maintenance && !self.config().allow_provisioning_in_maintenance {
                    return Err(Error::InMaintenance(uuid));
                }
                if job.node().retired {
                    return Err(Error::Invalid(format!(
                        "The providing operation can't be performed on node {uuid} because it is retired."
                    )));
                }
                job.reserve_worker()?;
                job.clear_steps(StepKind::Clean);
                job.node_mut().last_error = None;
                job.transition(event, None).await?;
                Ok(Some(Cont::Clean))
            }
            Event::Clean => {
                let raw = req.clean_steps.as_ref().ok_or_else(|| {
                    Error::Invalid("clean_steps is required for manual cleaning".to_owned())
                })?;
                parse_user_steps(StepKind::Clean, raw).map_err(Error::Invalid)?;
                job.reserve_worker()?;
                job.clear_steps(StepKind::Clean);
                let n = job.node_mut();
                n.last_error = None;
                n.set_internal(&requested_key(StepKind::Clean), Value::Array(raw.clone()));
                if req.disable_ramdisk == Some(true) {
                    n.set_internal("clean_disable_ramdisk", true);
                }
                job.transition(event, Some(S::Manageable)).await?;
                Ok(Some(Cont::Clean))
            }
            Event::Inspect => {
                validate_iface(job, InterfaceType::Inspect)?;
                job.reserve_worker()?;
                let n = job.node_mut();
                n.last_error = None;
                n.inspection_started_at = Some(crate::model::now());
                n.inspection_finished_at = None;
                job.transition(event, None).await?;
                Ok(Some(Cont::Inspect))
            }
            Event::Adopt => {
                for t in [
                    InterfaceType::Power,
                    InterfaceType::Boot,
                    InterfaceType::Deploy,
                ] {
                    validate_iface(job, t)?;
                }
                job.reserve_worker()?;
                job.node_mut().last_error = None;
                job.transition(event, None).await?;
                Ok(Some(Cont::Adopt))
            }
            Event::Rescue => {
                if job.node().maintenance {
                    return Err(Error::InMaintenance(uuid));
                }
                let pw = req
                    .rescue_password
                    .as_ref()
                    .filter(|p| !p.expose().trim().is_empty())
                    .ok_or_else(|| {
                        Error::Invalid(
                            "A non-empty rescue_password is required to rescue a node".to_owned(),
                        )
                    })?;
                validate_iface(job, InterfaceType::Rescue)?;
                job.reserve_worker()?;
                let n = job.node_mut();
                n.last_error = None;
                n.instance_info
                    .insert("rescue_password".into(), pw.expose().into());
                job.transition(event, None).await?;
                Ok(Some(Cont::Rescue))
            }
            Event::Unrescue => {
                if job.node().maintenance {
                    return Err(Error::InMaintenance(uuid));
                }
                job.reserve_worker()?;
                job.node_mut().last_error = None;
                job.transition(event, None).await?;
                Ok(Some(Cont::Unrescue))
            }
            Event::Service => {
                let raw = req.service_steps.as_ref().ok_or_else(|| {
                    Error::Invalid("service_steps is required for servicing".to_owned())
                })?;
                parse_user_steps(StepKind::Service, raw).map_err(Error::Invalid)?;
                job.reserve_worker()?;
                job.clear_steps(StepKind::Service);
                let n = job.node_mut();
                n.last_error = None;
                n.set_internal(&requested_key(StepKind::Service), Value::Array(raw.clone()));
                if req.disable_ramdisk == Some(true) {
                    n.set_internal("service_disable_ramdisk", true);
                }
                job.transition(event, None).await?;
                Ok(Some(Cont::Service))
            }
            Event::Abort => self.prepare_abort(job).await,
            Event::Unhold => {
                let resume_now = state == S::ServiceHold || !is_agent_waiting(job.node());
                if resume_now {
                    job.reserve_worker()?;
                }
                job.transition(event, None).await?;
                Ok(resume_now.then_some(Cont::ContinueWait))
            }
            other => Err(Error::Invalid(format!(
                "\"{other}\" is an internal event, not a provisioning verb"
            ))),
        }
    }

    async fn prepare_abort(&self, job: &mut Job) -> Result<Option<Cont>> {
        let state = job.node().provision_state;
        let current = match state {
            S::CleanWait | S::CleanHold => Some(job.node().clean_step.clone()),
            S::DeployWait | S::DeployHold => Some(job.node().deploy_step.clone()),
            S::ServiceWait | S::ServiceHold => Some(job.node().service_step.clone()),
            _ => None,
        };
        let step_name = current.as_ref().filter(|s| !s.is_empty()).map(|s| {
            format!(
                "{}.{}",
                s.get("interface").and_then(Value::as_str).unwrap_or("?"),
                s.get("step").and_then(Value::as_str).unwrap_or("?")
            )
        });
        if state.is_wait_for_callback()
            && let Some(step) = current.filter(|s| !s.is_empty())
            && step.get("abortable").and_then(Value::as_bool) != Some(true)
        {
            // Not abortable: abort once the running step has finished.
            let mut step = step;
            step.insert("abort_after".into(), true.into());
            match state {
                S::CleanWait => job.node_mut().clean_step = step,
                S::DeployWait => job.node_mut().deploy_step = step,
                _ => job.node_mut().service_step = step,
            }
            job.save().await?;
            tracing::info!(node = %job.node().uuid, step = step_name.as_deref().unwrap_or(""), "abort requested; the current step is not abortable, aborting after it");
            return Ok(None);
        }
        let what = capitalize(event_type(state));
        let msg = match &step_name {
            Some(s) => format!("{what} was aborted by request during step {s}"),
            None => format!("{what} was aborted by request"),
        };
        match state {
            S::ServiceFailed => {
                // Ironic's do_provisioning_action: InvalidState (409)
                if job.node().maintenance {
                    return Err(Error::Conflict(format!(
                        "Can not abort service on node \"{}\" while it is in maintenance mode. Please remove the node from maintenance prior to issuing the request to abort the service operation.",
                        job.node().uuid
                    )));
                }
                job.transition(Event::Abort, None).await?;
                Ok(None)
            }
            S::InspectWait => {
                let d = job.task.driver()?.clone();
                d.inspect.abort(&mut job.task).await?;
                job.abort_now(msg).await;
                Ok(None)
            }
            _ => {
                job.reserve_worker()?;
                Ok(Some(Cont::Abort(msg)))
            }
        }
    }
}

fn invalid_state(target: &str, node: &Node) -> Error {
    Error::InvalidState {
        action: target.to_owned(),
        node: node.uuid.to_string(),
        state: node.provision_state.to_string(),
    }
}

fn check_instance_traits(node: &Node) -> Result<()> {
    let Some(v) = node.instance_info.get("traits") else {
        return Ok(());
    };
    let traits = v
        .as_array()
        .filter(|a| a.iter().all(Value::is_string))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "instance_info.traits of node {} must be a list of strings",
                node.uuid
            ))
        })?;
    let missing: Vec<&str> = traits
        .iter()
        .filter_map(Value::as_str)
        .filter(|t| !node.traits.iter().any(|n| n == t))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Invalid(format!(
            "Cannot deploy node {}: instance_info.traits asks for {} which the node does not have",
            node.uuid,
            missing.join(", ")
        )));
    }
    Ok(())
}

async fn run_cont(job: Job, cont: Cont) -> Job {
    match cont {
        Cont::Deploy => do_deploy(job).await,
        Cont::TearDown { prev } => do_tear_down(job, prev).await,
        Cont::Clean => start_clean(job).await,
        Cont::Verify => do_verify(job).await,
        Cont::Inspect => do_inspect(job).await,
        Cont::Adopt => do_adopt(job).await,
        Cont::Rescue => do_rescue(job).await,
        Cont::Unrescue => do_unrescue(job).await,
        Cont::Service => start_service(job).await,
        Cont::Abort(msg) => {
            let mut job = job;
            job.abort_now(msg).await;
            job
        }
        Cont::ContinueWait => job.continue_from_wait().await,
    }
}

macro_rules! try_or_fail {
    ($job:ident, $e:expr, $($msg:tt)+) => {
        match $e {
            Ok(v) => v,
            Err(e) => {
                let m = format!($($msg)+, e = e);
                $job.fail(m, false).await;
                return $job;
            }
        }
    };
}

async fn do_deploy(mut job: Job) -> Job {
    let d = try_or_fail!(job, job.task.driver().cloned(), "{e}");
    let uuid = job.node().uuid;
    try_or_fail!(
        job,
        d.deploy.prepare(&mut job.task).await,
        "Error preparing deploy for node {uuid}: {e}"
    );
    // As Ironic's do_node_deploy: the conductor that prepared the deploy is the
    // one whose boot configuration the node uses; takeover compares against it.
    job.node_mut().conductor_affinity = Some(job.c.config().host.clone());
    let steps = try_or_fail!(job, job.compute_deploy_list().await, "{e}");
    job.set_steps(StepKind::Deploy, &steps);
    job.run_steps(StepKind::Deploy).await
}

async fn do_tear_down(mut job: Job, prev: S) -> Job {
    let d = try_or_fail!(job, job.task.driver().cloned(), "{e}");
    let uuid = job.node().uuid;
    if matches!(
        prev,
        S::Rescue | S::RescueWait | S::RescueFailed | S::UnrescueFailed
    ) {
        try_or_fail!(
            job,
            d.rescue.clean_up(&mut job.task).await,
            "Failed to clean up rescue for node {uuid}: {e}"
        );
    }
    try_or_fail!(
        job,
        d.deploy.tear_down(&mut job.task).await,
        "Error in tear_down of node {uuid}: {e}"
    );
    try_or_fail!(
        job,
        d.deploy.clean_up(&mut job.task).await,
        "Error cleaning up after tear_down of node {uuid}: {e}"
    );
    if let Some(a) = job.node().allocation_uuid
        && let Err(e) = job.c.store().delete_allocation(a).await
    {
        tracing::warn!(node = %uuid, allocation = %a, error = %e, "could not delete the allocation");
    }
    job.clear_steps(StepKind::Deploy);
    wipe_token(job.node_mut());
    let n = job.node_mut();
    n.instance_info.clear();
    n.instance_uuid = None;
    n.instance_name = None;
    n.allocation_uuid = None;
    n.remove_internal("is_whole_disk_image");
    n.remove_internal("root_uuid_or_disk_id");
    try_or_fail!(job, job.transition(Event::Clean, None).await, "{e}");
    start_clean(job).await
}

async fn start_clean(mut job: Job) -> Job {
    let uuid = job.node().uuid;
    wipe_token(job.node_mut());
    let manual = job
        .node()
        .internal(&requested_key(StepKind::Clean))
        .is_some();
    let enabled = job
        .node()
        .automated_clean
        .unwrap_or(job.c.config().automated_clean);
    if !manual && !enabled {
        tracing::info!(node = %uuid, "automated cleaning is disabled; skipping it");
        job.transition_or_log(Event::Done, None).await;
        return job;
    }
    let disable_ramdisk = job
        .node()
        .internal("clean_disable_ramdisk")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let d = try_or_fail!(job, job.task.driver().cloned(), "{e}");
    job.update_cache().await;
    let outcome = if disable_ramdisk {
        StepOutcome::Done
    } else {
        try_or_fail!(
            job,
            d.deploy.prepare_cleaning(&mut job.task).await,
            "Failed to prepare node {uuid} for cleaning: {e}"
        )
    };
    match outcome {
        StepOutcome::Wait => {
            job.transition_or_log(Event::Wait, None).await;
            job
        }
        StepOutcome::Done => {
            try_or_fail!(job, job.compute_steps(StepKind::Clean).await, "{e}");
            job.run_steps(StepKind::Clean).await
        }
    }
}

async fn start_service(mut job: Job) -> Job {
    let uuid = job.node().uuid;
    wipe_token(job.node_mut());
    let disable_ramdisk = job
        .node()
        .internal("service_disable_ramdisk")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let d = try_or_fail!(job, job.task.driver().cloned(), "{e}");
    job.update_cache().await;
    // As Ironic's do_node_service: the step list is composed first, and the
    // ramdisk boots only when one of the steps requires it (or the list cannot
    // be composed yet); out-of-band steps alone (BIOS, firmware over the BMC,
    // what Metal3 services with) run at once, as with disable_ramdisk.
    let ramdisk_needed = !disable_ramdisk
        && match job.compute_steps(StepKind::Service).await {
            Ok(()) => {
                let needed = job
                    .steps(StepKind::Service)
                    .iter()
                    .any(|s| s.requires_ramdisk);
                if needed {
                    // composed again once the ramdisk is up
                    job.node_mut()
                        .remove_internal(&refreshed_key(StepKind::Service));
                } else {
                    tracing::debug!(node = %uuid, "no service step requires the ramdisk: servicing without it");
                    job.node_mut().set_internal("service_disable_ramdisk", true);
                }
                needed
            }
            Err(_) => true,
        };
    let outcome = if !ramdisk_needed {
        StepOutcome::Done
    } else {
        try_or_fail!(
            job,
            d.deploy.prepare_service(&mut job.task).await,
            "Failed to prepare node {uuid} for servicing: {e}"
        )
    };
    match outcome {
        StepOutcome::Wait => {
            job.transition_or_log(Event::Wait, None).await;
            job
        }
        StepOutcome::Done => {
            try_or_fail!(job, job.compute_steps(StepKind::Service).await, "{e}");
            job.run_steps(StepKind::Service).await
        }
    }
}

async fn do_verify(mut job: Job) -> Job {
    let d = try_or_fail!(job, job.task.driver().cloned(), "{e}");
    let uuid = job.node().uuid;
    try_or_fail!(
        job,
        d.power.validate(&job.task),
        "Failed to validate the power interface of node {uuid}: {e}"
    );
    try_or_fail!(
        job,
        d.management.validate(&job.task),
        "Failed to validate the management interface of node {uuid}: {e}"
    );
    let c = job.c.clone();
    let state = try_or_fail!(
        job,
        c.with_retries("power state read", || d.power.get_power_state(&job.task))
            .await,
        "Failed to get the power state of node {uuid}: {e}"
    );
    job.node_mut().power_state = Some(state);
    try_or_fail!(job, job.compute_steps(StepKind::Verify).await, "{e}");
    job.run_steps(StepKind::Verify).await
}

async fn do_inspect(mut job: Job) -> Job {
    let d = try_or_fail!(job, job.task.driver().cloned(), "{e}");
    wipe_token(job.node_mut());
    let out = try_or_fail!(
        job,
        d.inspect.inspect_hardware(&mut job.task).await,
        "Failed to inspect hardware. Reason: {e}"
    );
    match out {
        InspectOutcome::Wait => {
            job.transition_or_log(Event::Wait, None).await;
        }
        InspectOutcome::Done(data) => {
            try_or_fail!(job, job.apply_inspection(data).await, "{e}");
            job.node_mut().inspection_finished_at = Some(crate::model::now());
            job.transition_or_log(Event::Done, None).await;
        }
    }
    job
}

async fn do_adopt(mut job: Job) -> Job {
    let d = try_or_fail!(job, job.task.driver().cloned(), "{e}");
    let uuid = job.node().uuid;
    let r: std::result::Result<_, DriverError> = async {
        d.boot.prepare_instance(&mut job.task).await?;
        d.deploy.take_over(&mut job.task).await?;
        d.power.get_power_state(&job.task).await
    }
    .await;
    let state = try_or_fail!(job, r, "Error while attempting to adopt node {uuid}: {e}");
    job.node_mut().power_state = Some(state);
    job.transition_or_log(Event::Done, None).await;
    job
}

async fn do_rescue(mut job: Job) -> Job {
    let d = try_or_fail!(job, job.task.driver().cloned(), "{e}");
    let uuid = job.node().uuid;
    wipe_token(job.node_mut());
    let out = try_or_fail!(
        job,
        d.rescue.rescue(&mut job.task).await,
        "Failed to rescue node {uuid}: {e}"
    );
    let ev = match out {
        StepOutcome::Done => Event::Done,
        StepOutcome::Wait => Event::Wait,
    };
    job.transition_or_log(ev, None).await;
    job
}

async fn do_unrescue(mut job: Job) -> Job {
    let d = try_or_fail!(job, job.task.driver().cloned(), "{e}");
    let uuid = job.node().uuid;
    try_or_fail!(
        job,
        d.rescue.unrescue(&mut job.task).await,
        "Failed to unrescue node {uuid}: {e}"
    );
    job.node_mut().instance_info.remove("rescue_password");
    wipe_token(job.node_mut());
    job.transition_or_log(Event::Done, None).await;
    job
}

impl Job {
    /// Abort the operation now: clean up, record why, and take the `abort` event
    /// (twice from `service wait`/`service hold`, ending in `active`).
    pub(crate) async fn abort_now(&mut self, msg: String) {
        let state = self.node().provision_state;
        let mut errors = Vec::new();
        if let Ok(d) = self.task.driver().cloned() {
            let r = match state {
                S::CleanWait | S::CleanHold => d.deploy.tear_down_cleaning(&mut self.task).await,
                S::DeployWait => d.deploy.clean_up(&mut self.task).await,
                S::DeployHold => match d.deploy.tear_down(&mut self.task).await {
                    Ok(()) => d.deploy.clean_up(&mut self.task).await,
                    Err(e) => Err(e),
                },
                S::ServiceWait | S::ServiceHold => d.deploy.tear_down_service(&mut self.task).await,
                S::RescueWait => d.rescue.clean_up(&mut self.task).await,
                _ => Ok(()),
            };
            if let Err(e) = r {
                errors.push(e.to_string());
            }
        }
        let kind = match state {
            S::CleanWait | S::CleanHold => Some(StepKind::Clean),
            S::DeployWait | S::DeployHold => Some(StepKind::Deploy),
            S::ServiceWait | S::ServiceHold => Some(StepKind::Service),
            _ => None,
        };
        if let Some(k) = kind {
            self.current_step_ended(k, crate::observe::StepResult::Aborted);
            self.clear_steps(k);
        }
        self.node_mut().step_started_at = None;
        wipe_token(self.node_mut());
        let mut last_error = msg;
        if !errors.is_empty() {
            last_error.push_str(&format!("; cleaning up also failed: {}", errors.join("; ")));
        }
        if state == S::RescueWait && errors.is_empty() {
            // Ironic's _do_node_rescue_abort: the node is back to normal, no
            // last_error; the history says it (not as an error)
            let node = self.node().clone();
            self.c
                .record_history(
                    &node,
                    event_type(state),
                    Severity::Info,
                    "By request, the rescue operation was aborted.",
                )
                .await;
        } else {
            self.node_mut().last_error = Some(last_error.clone());
            let node = self.node().clone();
            self.c
                .record_history(&node, event_type(state), Severity::Warning, &last_error)
                .await;
        }
        self.transition_or_log(Event::Abort, None).await;
        if self.node().provision_state == S::ServiceFailed {
            self.transition_or_log(Event::Abort, None).await;
        }
    }
}
