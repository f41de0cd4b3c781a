//! Observation hooks: what the conductor reports to whoever keeps metrics.
//!
//! ironic-core does not depend on any metrics library. An application that wants
//! metrics implements [`Observer`] (every method has an empty default) and starts
//! the conductor with [`Conductor::start_observed`](crate::Conductor::start_observed);
//! the `ironic` binary turns these calls into Prometheus metrics. The calls are
//! synchronous and made on the conductor's tasks: keep them cheap (update an
//! atomic counter or a histogram, never block or do I/O).
//!
//! Everything an observer is told has bounded cardinality on purpose: states,
//! step and interface names, driver names and error kinds, never a node. The node
//! is given where it helps to log, and must not become a metric label unless the
//! application accepts one series per node.
//!
//! Driver calls are observed by wrapping the power and management implementations
//! of the [`InterfaceRegistry`](crate::InterfaceRegistry) (see
//! [`InterfaceRegistry::observe`](crate::InterfaceRegistry::observe)), so calls made
//! by other interfaces (a boot interface setting the boot device, the agent deploy
//! rebooting the node) are seen too, for in-tree and out-of-tree drivers alike.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::driver::{
    BaseInterface, BootDevice, BootDeviceInfo, BootMode, ManagementInterface, PowerInterface,
    PropertyDoc, Step, StepDef, StepKind, StepOutcome, Task, VmediaDevice,
};
use crate::error::{DriverError, ErrorKind};
use crate::ids::NodeId;
use crate::model::{InterfaceType, JsonMap};
use crate::states::{PowerAction, PowerState, ProvisionState};

mod store;
pub use store::ObservedStore;

/// Receives what the conductor does. All methods default to doing nothing.
///
/// # Contract
/// Methods are called synchronously from the conductor's tasks, possibly from
/// several threads at once; they must be cheap and must not panic.
pub trait Observer: Send + Sync + fmt::Debug + 'static {
    /// A node left a provision state.
    fn provision_state_left(&self, e: &StateLeft) {
        let _ = e;
    }
    /// A clean, deploy, service or verify step ended (done, failed or aborted).
    fn step_finished(&self, e: &StepFinished) {
        let _ = e;
    }
    /// A call into a power or management interface returned.
    fn driver_call(&self, e: &DriverCall) {
        let _ = e;
    }
    /// An agent heartbeat was received.
    fn heartbeat(&self, e: &HeartbeatSeen) {
        let _ = e;
    }
    /// An attempt to take a node's exclusive lock ended.
    fn lock_wait(&self, e: &LockWait) {
        let _ = e;
    }
    /// A store call returned (the store of a conductor started with
    /// [`Conductor::start_observed`](crate::Conductor::start_observed), which wraps
    /// it in an [`ObservedStore`]).
    fn store_call(&self, e: &StoreCall) {
        let _ = e;
    }
    /// A deploy interface talked to a ramdisk agent: one request answered (or
    /// not), or one asynchronous command seen finished. Reported by deploy
    /// interfaces through [`TaskEnv::observer`](crate::driver::TaskEnv::observer).
    fn agent_call(&self, e: &AgentCall) {
        let _ = e;
    }
    /// A node has been in its provision state longer than the state's budget
    /// (told once per stay in the state).
    fn over_budget(&self, e: &OverBudget) {
        let _ = e;
    }
}

/// The observer that does nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl Observer for NoopObserver {}

/// A node left `from` for `to` after `duration` in `from`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StateLeft {
    /// The node (for logs; not a label).
    pub node: NodeId,
    /// The state left.
    pub from: ProvisionState,
    /// The new state.
    pub to: ProvisionState,
    /// Time spent in `from`, when known (nodes saved by an older version lack it).
    pub duration: Option<Duration>,
}

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StepResult {
    /// It finished.
    Done,
    /// It failed (or its wait timed out).
    Failed,
    /// The operation was aborted while it ran.
    Aborted,
}

impl StepResult {
    /// `done`, `failed`, `aborted`.
    pub const fn as_str(self) -> &'static str {
        match self {
            StepResult::Done => "done",
            StepResult::Failed => "failed",
            StepResult::Aborted => "aborted",
        }
    }
}

/// A step ended.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StepFinished {
    /// The node (for logs; not a label).
    pub node: NodeId,
    /// Clean, deploy, service or verify.
    pub kind: StepKind,
    /// The interface that ran it.
    pub interface: String,
    /// The step's name.
    pub step: String,
    /// From the step's start to its end, including time waiting for the agent.
    pub duration: Duration,
    /// How it ended.
    pub result: StepResult,
}

/// A driver call returned.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct DriverCall {
    /// `power` or `management`.
    pub interface: InterfaceType,
    /// The implementation's registered name (`redfish`, `ipmitool`, `fake`, ...).
    pub implementation: String,
    /// The trait method (`get_power_state`, `set_boot_device`, ...).
    pub method: &'static str,
    /// How long it took.
    pub duration: Duration,
    /// The error's kind, when it failed.
    pub error: Option<ErrorKind>,
}

/// The conductor's observer as drivers reach it ([`TaskEnv::observer`](crate::driver::TaskEnv::observer)):
/// a no-op unless the conductor was started with
/// [`Conductor::start_observed`](crate::Conductor::start_observed). Two handles
/// are equal when they share the observer.
#[derive(Clone, Debug)]
pub struct ObserverHandle(pub Arc<dyn Observer>);

impl Default for ObserverHandle {
    fn default() -> Self {
        ObserverHandle(Arc::new(NoopObserver))
    }
}

impl PartialEq for ObserverHandle {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.0), Arc::as_ptr(&other.0))
    }
}

impl Eq for ObserverHandle {}

impl std::ops::Deref for ObserverHandle {
    type Target = dyn Observer;
    fn deref(&self) -> &dyn Observer {
        &*self.0
    }
}

/// A store call.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StoreCall {
    /// The [`Store`](crate::store::Store) method (`get_node`, `update_node`, ...).
    pub op: &'static str,
    /// How long it took.
    pub duration: Duration,
    /// Whether it succeeded (a "not found" counts as a failure).
    pub ok: bool,
}

/// What an [`AgentCall`] measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AgentCallKind {
    /// One HTTP request to the agent's API, answered or failed.
    Request,
    /// An asynchronous command, from its start to the heartbeat that found it
    /// finished (so up to one heartbeat interval late).
    Command,
}

impl AgentCallKind {
    /// `request`, `command`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AgentCallKind::Request => "request",
            AgentCallKind::Command => "command",
        }
    }
}

/// A deploy interface's exchange with a ramdisk agent.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct AgentCall {
    /// The node (for logs; not a label).
    pub node: NodeId,
    /// The agent command (`standby.prepare_image`, `clean.execute_clean_step`),
    /// or `get_commands` for the status poll.
    pub command: String,
    /// A request or a whole command.
    pub kind: AgentCallKind,
    /// How long it took.
    pub duration: Duration,
    /// Why it failed, when it did (for a command: the agent reported a failure).
    pub error: Option<ErrorKind>,
}

impl AgentCall {
    /// An exchange of `node`'s agent.
    pub fn new(
        node: NodeId,
        command: impl Into<String>,
        kind: AgentCallKind,
        duration: Duration,
        error: Option<ErrorKind>,
    ) -> Self {
        AgentCall {
            node,
            command: command.into(),
            kind,
            duration,
            error,
        }
    }
}

/// What became of an agent heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeartbeatResult {
    /// Recorded and acted on (the deploy interface judged it).
    Processed,
    /// Recorded; nothing to do (the node is not waiting, or waits for something else).
    Recorded,
    /// Skipped because another operation holds the node.
    Skipped,
    /// Refused (bad token, bad callback URL, unknown node, ...).
    Refused,
}

impl HeartbeatResult {
    /// `processed`, `recorded`, `skipped`, `refused`.
    pub const fn as_str(self) -> &'static str {
        match self {
            HeartbeatResult::Processed => "processed",
            HeartbeatResult::Recorded => "recorded",
            HeartbeatResult::Skipped => "skipped",
            HeartbeatResult::Refused => "refused",
        }
    }
}

/// An agent heartbeat.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct HeartbeatSeen {
    /// The node's provision state when it arrived (`None` if the node is unknown).
    pub state: Option<ProvisionState>,
    /// What became of it.
    pub result: HeartbeatResult,
}

/// An attempt to take a node's exclusive lock.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LockWait {
    /// From the first attempt to the lock (or to giving up), retries included.
    pub waited: Duration,
    /// Whether the lock was taken.
    pub acquired: bool,
}

/// A node past its state's budget.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct OverBudget {
    /// The node.
    pub node: NodeId,
    /// Its provision state.
    pub state: ProvisionState,
    /// The budget.
    pub budget: Duration,
    /// Time in the state so far.
    pub elapsed: Duration,
}

pub(crate) fn node_event(
    node: NodeId,
    from: ProvisionState,
    to: ProvisionState,
    duration: Option<Duration>,
) -> StateLeft {
    StateLeft {
        node,
        from,
        to,
        duration,
    }
}

pub(crate) fn step_event(
    node: NodeId,
    kind: StepKind,
    interface: &str,
    step: &str,
    duration: Duration,
    result: StepResult,
) -> StepFinished {
    StepFinished {
        node,
        kind,
        interface: interface.to_owned(),
        step: step.to_owned(),
        duration,
        result,
    }
}

pub(crate) fn heartbeat_event(
    state: Option<ProvisionState>,
    result: HeartbeatResult,
) -> HeartbeatSeen {
    HeartbeatSeen { state, result }
}

pub(crate) fn lock_event(waited: Duration, acquired: bool) -> LockWait {
    LockWait { waited, acquired }
}

pub(crate) fn budget_event(
    node: NodeId,
    state: ProvisionState,
    budget: Duration,
    elapsed: Duration,
) -> OverBudget {
    OverBudget {
        node,
        state,
        budget,
        elapsed,
    }
}

/// Times one call and reports it.
struct Call<'a> {
    obs: &'a dyn Observer,
    interface: InterfaceType,
    implementation: &'a str,
    method: &'static str,
    start: Instant,
}

impl<'a> Call<'a> {
    fn end<T>(self, r: Result<T, DriverError>) -> Result<T, DriverError> {
        self.obs.driver_call(&DriverCall {
            interface: self.interface,
            implementation: self.implementation.to_owned(),
            method: self.method,
            duration: self.start.elapsed(),
            error: r.as_ref().err().map(DriverError::kind),
        });
        r
    }
}

/// A power or management implementation wrapped to report its calls.
///
/// Every method of the traits is forwarded to the wrapped implementation
/// (including those with default bodies, so an implementation's overrides are
/// kept); the asynchronous ones are timed. `validate`, `properties` and the step
/// listings are forwarded untimed: they never touch the BMC.
pub struct Observed<T: ?Sized> {
    inner: Arc<T>,
    name: String,
    obs: Arc<dyn Observer>,
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Observed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T: ?Sized> Observed<T> {
    /// Wrap `inner`, registered as `name`.
    pub fn new(inner: Arc<T>, name: impl Into<String>, obs: Arc<dyn Observer>) -> Self {
        Observed {
            inner,
            name: name.into(),
            obs,
        }
    }

    fn call(&self, interface: InterfaceType, method: &'static str) -> Call<'_> {
        Call {
            obs: &*self.obs,
            interface,
            implementation: &self.name,
            method,
            start: Instant::now(),
        }
    }
}

macro_rules! forward_base {
    ($t:ident, $it:expr) => {
        #[async_trait]
        impl BaseInterface for Observed<dyn $t> {
            fn properties(&self) -> Vec<PropertyDoc> {
                self.inner.properties()
            }
            fn validate(&self, task: &Task) -> Result<(), DriverError> {
                self.inner.validate(task)
            }
            fn steps(&self) -> Vec<StepDef> {
                self.inner.steps()
            }
            async fn get_steps(
                &self,
                task: &Task,
                kind: StepKind,
            ) -> Result<Vec<StepDef>, DriverError> {
                self.inner.get_steps(task, kind).await
            }
            async fn execute_step(
                &self,
                task: &mut Task,
                kind: StepKind,
                step: &Step,
            ) -> Result<StepOutcome, DriverError> {
                let c = self.call($it, "execute_step");
                c.end(self.inner.execute_step(task, kind, step).await)
            }
        }
    };
}

forward_base!(PowerInterface, InterfaceType::Power);
forward_base!(ManagementInterface, InterfaceType::Management);

#[async_trait]
impl PowerInterface for Observed<dyn PowerInterface> {
    async fn get_power_state(&self, task: &Task) -> Result<PowerState, DriverError> {
        let c = self.call(InterfaceType::Power, "get_power_state");
        c.end(self.inner.get_power_state(task).await)
    }
    async fn set_power_state(
        &self,
        task: &Task,
        action: PowerAction,
        timeout: Option<Duration>,
    ) -> Result<(), DriverError> {
        let c = self.call(InterfaceType::Power, "set_power_state");
        c.end(self.inner.set_power_state(task, action, timeout).await)
    }
    async fn reboot(&self, task: &Task, timeout: Option<Duration>) -> Result<(), DriverError> {
        let c = self.call(InterfaceType::Power, "reboot");
        c.end(self.inner.reboot(task, timeout).await)
    }
    fn get_supported_power_states(&self, task: &Task) -> Vec<PowerAction> {
        self.inner.get_supported_power_states(task)
    }
    fn supports_power_sync(&self, task: &Task) -> bool {
        self.inner.supports_power_sync(task)
    }
}

macro_rules! timed {
    ($self:ident, $m:literal, $e:expr) => {{
        let c = $self.call(InterfaceType::Management, $m);
        c.end($e.await)
    }};
}

#[async_trait]
impl ManagementInterface for Observed<dyn ManagementInterface> {
    async fn get_supported_boot_devices(
        &self,
        task: &Task,
    ) -> Result<Vec<BootDevice>, DriverError> {
        timed!(
            self,
            "get_supported_boot_devices",
            self.inner.get_supported_boot_devices(task)
        )
    }
    async fn set_boot_device(
        &self,
        task: &Task,
        device: BootDevice,
        persistent: bool,
    ) -> Result<(), DriverError> {
        timed!(
            self,
            "set_boot_device",
            self.inner.set_boot_device(task, device, persistent)
        )
    }
    async fn get_boot_device(&self, task: &Task) -> Result<BootDeviceInfo, DriverError> {
        timed!(self, "get_boot_device", self.inner.get_boot_device(task))
    }
    async fn get_sensors_data(&self, task: &Task) -> Result<JsonMap, DriverError> {
        timed!(self, "get_sensors_data", self.inner.get_sensors_data(task))
    }
    async fn get_supported_boot_modes(&self, task: &Task) -> Result<Vec<BootMode>, DriverError> {
        timed!(
            self,
            "get_supported_boot_modes",
            self.inner.get_supported_boot_modes(task)
        )
    }
    async fn set_boot_mode(&self, task: &Task, mode: BootMode) -> Result<(), DriverError> {
        timed!(self, "set_boot_mode", self.inner.set_boot_mode(task, mode))
    }
    async fn get_boot_mode(&self, task: &Task) -> Result<Option<BootMode>, DriverError> {
        timed!(self, "get_boot_mode", self.inner.get_boot_mode(task))
    }
    async fn get_secure_boot_state(&self, task: &Task) -> Result<bool, DriverError> {
        timed!(
            self,
            "get_secure_boot_state",
            self.inner.get_secure_boot_state(task)
        )
    }
    async fn set_secure_boot_state(&self, task: &Task, on: bool) -> Result<(), DriverError> {
        timed!(
            self,
            "set_secure_boot_state",
            self.inner.set_secure_boot_state(task, on)
        )
    }
    async fn inject_nmi(&self, task: &Task) -> Result<(), DriverError> {
        timed!(self, "inject_nmi", self.inner.inject_nmi(task))
    }
    async fn get_node_health(&self, task: &Task) -> Result<Option<String>, DriverError> {
        timed!(self, "get_node_health", self.inner.get_node_health(task))
    }
    async fn get_supported_indicators(&self, task: &Task) -> Result<JsonMap, DriverError> {
        timed!(
            self,
            "get_supported_indicators",
            self.inner.get_supported_indicators(task)
        )
    }
    async fn set_indicator_state(
        &self,
        task: &Task,
        component: &str,
        indicator: &str,
        state: &str,
    ) -> Result<(), DriverError> {
        timed!(
            self,
            "set_indicator_state",
            self.inner
                .set_indicator_state(task, component, indicator, state)
        )
    }
    async fn get_indicator_state(
        &self,
        task: &Task,
        component: &str,
        indicator: &str,
    ) -> Result<String, DriverError> {
        timed!(
            self,
            "get_indicator_state",
            self.inner.get_indicator_state(task, component, indicator)
        )
    }
    async fn get_mac_addresses(&self, task: &Task) -> Result<Vec<String>, DriverError> {
        timed!(
            self,
            "get_mac_addresses",
            self.inner.get_mac_addresses(task)
        )
    }
    async fn attach_virtual_media(
        &self,
        task: &Task,
        device: VmediaDevice,
        image_url: &str,
    ) -> Result<(), DriverError> {
        timed!(
            self,
            "attach_virtual_media",
            self.inner.attach_virtual_media(task, device, image_url)
        )
    }
    async fn detach_virtual_media(
        &self,
        task: &Task,
        devices: &[VmediaDevice],
    ) -> Result<(), DriverError> {
        timed!(
            self,
            "detach_virtual_media",
            self.inner.detach_virtual_media(task, devices)
        )
    }
    async fn get_virtual_media(&self, task: &Task) -> Result<serde_json::Value, DriverError> {
        timed!(
            self,
            "get_virtual_media",
            self.inner.get_virtual_media(task)
        )
    }
    async fn detect_vendor(&self, task: &Task) -> Result<Option<String>, DriverError> {
        timed!(self, "detect_vendor", self.inner.detect_vendor(task))
    }
}
