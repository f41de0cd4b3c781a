//! Fault injection around any driver: [`FaultInjector`] wraps the power,
//! management, boot, deploy and network implementations of an
//! [`InterfaceRegistry`] so that, per node, every driver call can be recorded,
//! one chosen call can fail, or every call can be made twice.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::driver::*;
use crate::error::{DriverError, ErrorKind};
use crate::hardware::InterfaceRegistry;
use crate::ids::NodeId;
use crate::model::{JsonMap, Port, Portgroup};
use crate::states::{PowerAction, PowerState};

/// The text every injected failure carries (its message is
/// `"<MARKER> #<index>: <interface>.<method> (<kind>)"`).
pub const INJECTED: &str = "kit-injected failure";

#[derive(Clone, Debug, Default)]
enum Mode {
    #[default]
    Record,
    FailAt(usize),
    Twice,
}

#[derive(Clone, Debug, Default)]
struct Run {
    mode: Mode,
    calls: Vec<String>,
    injected: Option<String>,
    repeat_failures: Vec<(String, String)>,
}

/// What the driver calls of one node were while the injector watched it
/// ([`FaultInjector::stop`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallLog {
    /// Every call, in order: `"<interface>.<method>"`, steps as
    /// `"deploy.execute_step(deploy.write_image)"`.
    pub calls: Vec<String>,
    /// The message of the failure injected by [`FaultInjector::fail_call`], if
    /// that call happened.
    pub injected: Option<String>,
    /// Calls that succeeded once and failed when repeated
    /// ([`FaultInjector::repeat_calls`]), with the second error.
    pub repeat_failures: Vec<(String, String)>,
}

/// Wraps a registry's power, management, boot, deploy and network
/// implementations (your driver's and the fakes alike) and steers them per node:
/// record every call ([`record`](Self::record)), fail the call at an index
/// ([`fail_call`](Self::fail_call)), or run every call twice
/// ([`repeat_calls`](Self::repeat_calls)). Nodes it was not told about are
/// untouched. Synchronous calls without I/O (`properties`, `steps`,
/// `get_supported_power_states`, `capabilities`, ...) are forwarded unrecorded;
/// `validate` is recorded (it can fail).
///
/// The lifecycle behaviours ([`fails_cleanly_at_every_call`](super::fails_cleanly_at_every_call),
/// [`every_call_is_idempotent`](super::every_call_is_idempotent)) drive it.
#[derive(Clone, Default)]
pub struct FaultInjector {
    state: Arc<Mutex<HashMap<NodeId, Run>>>,
    kind: Option<ErrorKind>,
}

impl fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultInjector")
            .field("nodes", &self.lock().len())
            .finish()
    }
}

impl FaultInjector {
    /// An injector that watches no node yet; injected failures are
    /// non-retryable [`ErrorKind::Other`] errors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inject failures of this kind instead (always non-retryable: a retryable
    /// one could be retried past the fault).
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = Some(kind);
        self
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<NodeId, Run>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wrap every power, management, boot, deploy and network implementation
    /// registered in `reg` (call it after registering, before
    /// [`Conductor::start`](crate::Conductor::start)).
    pub fn wrap(&self, reg: &mut InterfaceRegistry) {
        for imp in reg.power.values_mut() {
            *imp = Arc::new(Injected::new(imp.clone(), self.clone(), "power"));
        }
        for imp in reg.management.values_mut() {
            *imp = Arc::new(Injected::new(imp.clone(), self.clone(), "management"));
        }
        for imp in reg.boot.values_mut() {
            *imp = Arc::new(Injected::new(imp.clone(), self.clone(), "boot"));
        }
        for imp in reg.deploy.values_mut() {
            *imp = Arc::new(Injected::new(imp.clone(), self.clone(), "deploy"));
        }
        for imp in reg.network.values_mut() {
            *imp = Arc::new(Injected::new(imp.clone(), self.clone(), "network"));
        }
    }

    fn start(&self, node: NodeId, mode: Mode) {
        self.lock().insert(
            node,
            Run {
                mode,
                ..Run::default()
            },
        );
    }

    /// Record every call for `node` from now on.
    pub fn record(&self, node: NodeId) {
        self.start(node, Mode::Record);
    }

    /// Record every call for `node` and fail the one at `index` (0-based).
    pub fn fail_call(&self, node: NodeId, index: usize) {
        self.start(node, Mode::FailAt(index));
    }

    /// Record every call for `node` and make each twice: a call that succeeded
    /// is repeated with the same arguments and the repeat's result is returned.
    pub fn repeat_calls(&self, node: NodeId) {
        self.start(node, Mode::Twice);
    }

    /// Stop watching `node`; what happened since [`record`](Self::record),
    /// [`fail_call`](Self::fail_call) or [`repeat_calls`](Self::repeat_calls).
    pub fn stop(&self, node: NodeId) -> CallLog {
        let run = self.lock().remove(&node).unwrap_or_default();
        CallLog {
            calls: run.calls,
            injected: run.injected,
            repeat_failures: run.repeat_failures,
        }
    }

    /// A call starts: `Err` when it is the one to fail, `Ok(Some(name))` when it
    /// must be made twice.
    fn enter(
        &self,
        node: NodeId,
        name: impl FnOnce() -> String,
    ) -> Result<Option<String>, DriverError> {
        let mut s = self.lock();
        let Some(run) = s.get_mut(&node) else {
            return Ok(None);
        };
        let name = name();
        let index = run.calls.len();
        run.calls.push(name.clone());
        match run.mode {
            Mode::Record => Ok(None),
            Mode::Twice => Ok(Some(name)),
            Mode::FailAt(k) if k == index => {
                let kind = self.kind.unwrap_or(ErrorKind::Other);
                let msg = format!("{INJECTED} #{index}: {name} ({kind})");
                run.injected = Some(msg.clone());
                Err(DriverError::new(kind, msg).with_retryable(false))
            }
            Mode::FailAt(_) => Ok(None),
        }
    }

    fn repeated<T>(&self, node: NodeId, name: String, r: &Result<T, DriverError>) {
        if let Err(e) = r
            && let Some(run) = self.lock().get_mut(&node)
        {
            run.repeat_failures.push((name, e.to_string()));
        }
    }
}

/// One implementation wrapped by a [`FaultInjector`].
struct Injected<T: ?Sized> {
    inner: Arc<T>,
    faults: FaultInjector,
    iface: &'static str,
}

impl<T: ?Sized> Injected<T> {
    fn new(inner: Arc<T>, faults: FaultInjector, iface: &'static str) -> Self {
        Injected {
            inner,
            faults,
            iface,
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Injected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// Run `$call` (an async call on `self.inner`) under the injector.
macro_rules! inject {
    ($self:ident, $node:expr, $method:expr, $call:expr) => {{
        let node = $node;
        match $self
            .faults
            .enter(node, || format!("{}.{}", $self.iface, $method))?
        {
            None => $call.await,
            Some(name) => match $call.await {
                Err(e) => Err(e),
                Ok(_) => {
                    let r = $call.await;
                    $self.faults.repeated(node, name, &r);
                    r
                }
            },
        }
    }};
}

/// The synchronous form of [`inject!`].
macro_rules! inject_sync {
    ($self:ident, $node:expr, $method:expr, $call:expr) => {{
        let node = $node;
        match $self
            .faults
            .enter(node, || format!("{}.{}", $self.iface, $method))?
        {
            None => $call,
            Some(name) => match $call {
                Err(e) => Err(e),
                Ok(_) => {
                    let r = $call;
                    $self.faults.repeated(node, name, &r);
                    r
                }
            },
        }
    }};
}

macro_rules! forward_base {
    ($t:ident) => {
        #[async_trait]
        impl BaseInterface for Injected<dyn $t> {
            fn properties(&self) -> Vec<PropertyDoc> {
                self.inner.properties()
            }
            fn validate(&self, task: &Task) -> Result<(), DriverError> {
                inject_sync!(self, task.node.uuid, "validate", self.inner.validate(task))
            }
            fn steps(&self) -> Vec<StepDef> {
                self.inner.steps()
            }
            async fn get_steps(
                &self,
                task: &Task,
                kind: StepKind,
            ) -> Result<Vec<StepDef>, DriverError> {
                inject!(
                    self,
                    task.node.uuid,
                    format!("get_steps({kind})"),
                    self.inner.get_steps(task, kind)
                )
            }
            async fn execute_step(
                &self,
                task: &mut Task,
                kind: StepKind,
                step: &Step,
            ) -> Result<StepOutcome, DriverError> {
                inject!(
                    self,
                    task.node.uuid,
                    format!("execute_step({}.{})", step.interface, step.step),
                    self.inner.execute_step(task, kind, step)
                )
            }
        }
    };
}

forward_base!(PowerInterface);
forward_base!(ManagementInterface);
forward_base!(BootInterface);
forward_base!(DeployInterface);
forward_base!(NetworkInterface);

#[async_trait]
impl PowerInterface for Injected<dyn PowerInterface> {
    async fn get_power_state(&self, task: &Task) -> Result<PowerState, DriverError> {
        inject!(
            self,
            task.node.uuid,
            "get_power_state",
            self.inner.get_power_state(task)
        )
    }
    async fn set_power_state(
        &self,
        task: &Task,
        action: PowerAction,
        timeout: Option<Duration>,
    ) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            format!("set_power_state({action})"),
            self.inner.set_power_state(task, action, timeout)
        )
    }
    async fn reboot(&self, task: &Task, timeout: Option<Duration>) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            "reboot",
            self.inner.reboot(task, timeout)
        )
    }
    fn get_supported_power_states(&self, task: &Task) -> Vec<PowerAction> {
        self.inner.get_supported_power_states(task)
    }
    fn supports_power_sync(&self, task: &Task) -> bool {
        self.inner.supports_power_sync(task)
    }
}

#[async_trait]
impl ManagementInterface for Injected<dyn ManagementInterface> {
    async fn get_supported_boot_devices(
        &self,
        task: &Task,
    ) -> Result<Vec<BootDevice>, DriverError> {
        inject!(
            self,
            task.node.uuid,
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
        inject!(
            self,
            task.node.uuid,
            format!("set_boot_device({device})"),
            self.inner.set_boot_device(task, device, persistent)
        )
    }
    async fn get_boot_device(&self, task: &Task) -> Result<BootDeviceInfo, DriverError> {
        inject!(
            self,
            task.node.uuid,
            "get_boot_device",
            self.inner.get_boot_device(task)
        )
    }
    async fn get_sensors_data(&self, task: &Task) -> Result<JsonMap, DriverError> {
        inject!(
            self,
            task.node.uuid,
            "get_sensors_data",
            self.inner.get_sensors_data(task)
        )
    }
    async fn get_supported_boot_modes(&self, task: &Task) -> Result<Vec<BootMode>, DriverError> {
        inject!(
            self,
            task.node.uuid,
            "get_supported_boot_modes",
            self.inner.get_supported_boot_modes(task)
        )
    }
    async fn set_boot_mode(&self, task: &Task, mode: BootMode) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            "set_boot_mode",
            self.inner.set_boot_mode(task, mode)
        )
    }
    async fn get_boot_mode(&self, task: &Task) -> Result<Option<BootMode>, DriverError> {
        inject!(
            self,
            task.node.uuid,
            "get_boot_mode",
            self.inner.get_boot_mode(task)
        )
    }
    async fn get_secure_boot_state(&self, task: &Task) -> Result<bool, DriverError> {
        inject!(
            self,
            task.node.uuid,
            "get_secure_boot_state",
            self.inner.get_secure_boot_state(task)
        )
    }
    async fn set_secure_boot_state(&self, task: &Task, on: bool) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            "set_secure_boot_state",
            self.inner.set_secure_boot_state(task, on)
        )
    }
    async fn inject_nmi(&self, task: &Task) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            "inject_nmi",
            self.inner.inject_nmi(task)
        )
    }
    async fn get_node_health(&self, task: &Task) -> Result<Option<String>, DriverError> {
        inject!(
            self,
            task.node.uuid,
            "get_node_health",
            self.inner.get_node_health(task)
        )
    }
    async fn get_supported_indicators(&self, task: &Task) -> Result<JsonMap, DriverError> {
        inject!(
            self,
            task.node.uuid,
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
        inject!(
            self,
            task.node.uuid,
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
        inject!(
            self,
            task.node.uuid,
            "get_indicator_state",
            self.inner.get_indicator_state(task, component, indicator)
        )
    }
    async fn get_mac_addresses(&self, task: &Task) -> Result<Vec<String>, DriverError> {
        inject!(
            self,
            task.node.uuid,
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
        inject!(
            self,
            task.node.uuid,
            "attach_virtual_media",
            self.inner.attach_virtual_media(task, device, image_url)
        )
    }
    async fn detach_virtual_media(
        &self,
        task: &Task,
        devices: &[VmediaDevice],
    ) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            "detach_virtual_media",
            self.inner.detach_virtual_media(task, devices)
        )
    }
    async fn get_virtual_media(&self, task: &Task) -> Result<serde_json::Value, DriverError> {
        inject!(
            self,
            task.node.uuid,
            "get_virtual_media",
            self.inner.get_virtual_media(task)
        )
    }
    async fn detect_vendor(&self, task: &Task) -> Result<Option<String>, DriverError> {
        inject!(
            self,
            task.node.uuid,
            "detect_vendor",
            self.inner.detect_vendor(task)
        )
    }
}

#[async_trait]
impl BootInterface for Injected<dyn BootInterface> {
    fn capabilities(&self) -> Vec<&'static str> {
        self.inner.capabilities()
    }
    async fn prepare_ramdisk(
        &self,
        task: &mut Task,
        params: &RamdiskParams,
    ) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            "prepare_ramdisk",
            self.inner.prepare_ramdisk(task, params)
        )
    }
    async fn clean_up_ramdisk(&self, task: &mut Task) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            "clean_up_ramdisk",
            self.inner.clean_up_ramdisk(task)
        )
    }
    async fn prepare_instance(&self, task: &mut Task) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            "prepare_instance",
            self.inner.prepare_instance(task)
        )
    }
    async fn clean_up_instance(&self, task: &mut Task) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            "clean_up_instance",
            self.inner.clean_up_instance(task)
        )
    }
    fn validate_rescue(&self, task: &Task) -> Result<(), DriverError> {
        inject_sync!(
            self,
            task.node.uuid,
            "validate_rescue",
            self.inner.validate_rescue(task)
        )
    }
    fn validate_inspection(&self, task: &Task) -> Result<(), DriverError> {
        inject_sync!(
            self,
            task.node.uuid,
            "validate_inspection",
            self.inner.validate_inspection(task)
        )
    }
}

#[async_trait]
impl DeployInterface for Injected<dyn DeployInterface> {
    async fn deploy(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        inject!(self, task.node.uuid, "deploy", self.inner.deploy(task))
    }
    async fn tear_down(&self, task: &mut Task) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            "tear_down",
            self.inner.tear_down(task)
        )
    }
    async fn prepare(&self, task: &mut Task) -> Result<(), DriverError> {
        inject!(self, task.node.uuid, "prepare", self.inner.prepare(task))
    }
    async fn clean_up(&self, task: &mut Task) -> Result<(), DriverError> {
        inject!(self, task.node.uuid, "clean_up", self.inner.clean_up(task))
    }
    async fn take_over(&self, task: &mut Task) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            "take_over",
            self.inner.take_over(task)
        )
    }
    async fn prepare_cleaning(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        inject!(
            self,
            task.node.uuid,
            "prepare_cleaning",
            self.inner.prepare_cleaning(task)
        )
    }
    async fn tear_down_cleaning(&self, task: &mut Task) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            "tear_down_cleaning",
            self.inner.tear_down_cleaning(task)
        )
    }
    async fn prepare_service(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        inject!(
            self,
            task.node.uuid,
            "prepare_service",
            self.inner.prepare_service(task)
        )
    }
    async fn tear_down_service(&self, task: &mut Task) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            "tear_down_service",
            self.inner.tear_down_service(task)
        )
    }
    async fn heartbeat(
        &self,
        task: &mut Task,
        heartbeat: &Heartbeat,
    ) -> Result<HeartbeatOutcome, DriverError> {
        inject!(
            self,
            task.node.uuid,
            "heartbeat",
            self.inner.heartbeat(task, heartbeat)
        )
    }
}

#[async_trait]
impl NetworkInterface for Injected<dyn NetworkInterface> {
    async fn port_changed(&self, task: &Task, port: &Port) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            "port_changed",
            self.inner.port_changed(task, port)
        )
    }
    async fn portgroup_changed(&self, task: &Task, pg: &Portgroup) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            "portgroup_changed",
            self.inner.portgroup_changed(task, pg)
        )
    }
    async fn vif_attach(&self, task: &mut Task, vif: &VifInfo) -> Result<Port, DriverError> {
        inject!(
            self,
            task.node.uuid,
            "vif_attach",
            self.inner.vif_attach(task, vif)
        )
    }
    async fn vif_detach(&self, task: &mut Task, vif_id: &str) -> Result<Port, DriverError> {
        inject!(
            self,
            task.node.uuid,
            "vif_detach",
            self.inner.vif_detach(task, vif_id)
        )
    }
    async fn vif_list(&self, task: &Task) -> Result<Vec<String>, DriverError> {
        inject!(self, task.node.uuid, "vif_list", self.inner.vif_list(task))
    }
    async fn add_network(&self, task: &mut Task, phase: NetworkPhase) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            format!("add_network({phase:?})"),
            self.inner.add_network(task, phase)
        )
    }
    async fn remove_network(
        &self,
        task: &mut Task,
        phase: NetworkPhase,
    ) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            format!("remove_network({phase:?})"),
            self.inner.remove_network(task, phase)
        )
    }
    async fn configure_tenant_networks(&self, task: &mut Task) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            "configure_tenant_networks",
            self.inner.configure_tenant_networks(task)
        )
    }
    async fn unconfigure_tenant_networks(&self, task: &mut Task) -> Result<(), DriverError> {
        inject!(
            self,
            task.node.uuid,
            "unconfigure_tenant_networks",
            self.inner.unconfigure_tenant_networks(task)
        )
    }
    fn need_power_on(&self, task: &Task) -> bool {
        self.inner.need_power_on(task)
    }
    fn get_node_network_data(&self, task: &Task) -> JsonMap {
        self.inner.get_node_network_data(task)
    }
    fn physical_network_of(&self, port: &Port) -> Option<String> {
        self.inner.physical_network_of(port)
    }
}
