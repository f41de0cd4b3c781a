use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{BaseInterface, StepOutcome, Task};
use crate::error::DriverError;

/// What an agent sends in `POST /v1/heartbeat/{node}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Heartbeat {
    /// Where the agent's API listens (`http(s)://host:9999`).
    pub callback_url: String,
    /// Agent version.
    pub agent_version: Option<String>,
    /// PEM certificate the agent's API uses (auto-TLS), to pin.
    pub agent_verify_ca: Option<String>,
    /// `start` / `end` / `error` (anaconda-style ramdisks).
    pub agent_status: Option<String>,
    /// Message with `agent_status`.
    pub agent_status_message: Option<String>,
}

impl Heartbeat {
    /// A heartbeat from an agent listening at `callback_url`, with nothing else.
    pub fn new(callback_url: impl Into<String>) -> Self {
        Heartbeat {
            callback_url: callback_url.into(),
            agent_version: None,
            agent_verify_ca: None,
            agent_status: None,
            agent_status_message: None,
        }
    }
}

/// What the deploy interface concluded from a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeartbeatOutcome {
    /// Nothing to do now: the agent is still busy, or the heartbeat was only a sign of life.
    Wait,
    /// What the node waited for is done (the ramdisk is up, or the asynchronous step
    /// finished): the conductor continues with the next step.
    Continue,
    /// The asynchronous work failed; the message goes to `last_error`.
    Fail(String),
}

/// Deploying an image (Ironic's `DeployInterface`, core).
///
/// Deployment runs as deploy steps; the `deploy` step (priority 100) is the one every
/// deploy interface has: it boots whatever does the writing (the agent ramdisk) and
/// usually returns [`StepOutcome::Wait`]. Agent heartbeats then reach
/// [`heartbeat`](Self::heartbeat), which tells the conductor when to continue.
///
/// # Contract
/// * `prepare`, `clean_up`, `tear_down` are idempotent.
/// * `tear_down` leaves the node powered off with no instance boot configuration.
/// * `prepare_cleaning`/`prepare_service` return [`StepOutcome::Wait`] when they
///   booted a ramdisk that will call back, [`StepOutcome::Done`] otherwise.
/// * `heartbeat` never blocks for long: it checks the agent's last command and returns.
///
/// # For driver authors
/// List the `deploy` step (and any others) in [`BaseInterface::steps`] and dispatch to
/// [`deploy`](Self::deploy) from [`BaseInterface::execute_step`].
#[async_trait]
pub trait DeployInterface: BaseInterface {
    /// The `deploy` deploy step.
    async fn deploy(&self, task: &mut Task) -> Result<StepOutcome, DriverError>;

    /// Tear the instance down (undeploy).
    async fn tear_down(&self, task: &mut Task) -> Result<(), DriverError>;

    /// Prepare for deployment (networks, boot).
    async fn prepare(&self, task: &mut Task) -> Result<(), DriverError>;

    /// Clean up after deployment or tear-down.
    async fn clean_up(&self, task: &mut Task) -> Result<(), DriverError>;

    /// Take over an active node from another conductor (rewrite boot configuration).
    async fn take_over(&self, task: &mut Task) -> Result<(), DriverError> {
        let _ = task;
        Ok(())
    }

    /// Prepare the node for cleaning (boot the agent ramdisk if in-band steps run).
    async fn prepare_cleaning(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        let _ = task;
        Ok(StepOutcome::Done)
    }

    /// Undo `prepare_cleaning`.
    async fn tear_down_cleaning(&self, task: &mut Task) -> Result<(), DriverError> {
        let _ = task;
        Ok(())
    }

    /// Prepare the node for servicing.
    async fn prepare_service(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        let _ = task;
        Ok(StepOutcome::Done)
    }

    /// Undo `prepare_service`.
    async fn tear_down_service(&self, task: &mut Task) -> Result<(), DriverError> {
        let _ = task;
        Ok(())
    }

    /// An agent heartbeated while the node is in a state that accepts heartbeats.
    /// The conductor has already checked the token and recorded the agent URL in
    /// `driver_internal_info.agent_url`.
    async fn heartbeat(
        &self,
        task: &mut Task,
        heartbeat: &Heartbeat,
    ) -> Result<HeartbeatOutcome, DriverError> {
        let _ = (task, heartbeat);
        Ok(HeartbeatOutcome::Wait)
    }
}
