//! The shared handle that steers the fake interfaces at runtime: delays, injected
//! failures, call counts, and the simulated hardware state of each node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;

use super::{Delay, FakeConfig, FakeDeployMode};
use crate::driver::{BootDevice, BootDeviceInfo, BootMode, StepDef};
use crate::error::{DriverError, ErrorKind};
use crate::ids::NodeId;
use crate::model::InterfaceType;
use crate::states::PowerState;

/// A failure rule: fail calls of a method (or of every method of an interface).
#[derive(Clone, Debug)]
struct FailureRule {
    target: String,
    remaining: Option<u32>,
    probability: f64,
    kind: ErrorKind,
    retryable: bool,
}

impl FailureRule {
    fn matches(&self, method: &str) -> bool {
        self.target == method
            || method
                .strip_prefix(self.target.as_str())
                .is_some_and(|rest| rest.starts_with('.'))
    }
}

/// The simulated hardware of one node, as the fakes see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FakeNodeState {
    /// Power state the fake BMC reports (`None` until first used; then the node's
    /// recorded power state, or off).
    pub power: Option<PowerState>,
    /// Boot device and persistence.
    pub boot_device: Option<BootDeviceInfo>,
    /// Boot mode.
    pub boot_mode: Option<BootMode>,
    /// Secure boot.
    pub secure_boot: bool,
    /// What the node will boot next: `"ramdisk"`, `"instance"` or nothing.
    pub boot_target: Option<&'static str>,
    /// Whether the fake ramdisk "agent" has called back (agent mode).
    pub ramdisk_up: bool,
    /// An asynchronous step the fake agent is running (agent mode).
    pub pending_command: Option<String>,
    /// Whether the console is running.
    pub console: bool,
    /// Health the fake BMC reports (`None`: `OK`).
    pub health: Option<String>,
    /// A stuck BMC: power commands are accepted but the power state does not
    /// change (see [`FakeControl::set_power_stuck`]).
    pub power_stuck: bool,
    /// Indicator states set through the management interface, by
    /// `"<indicator>@<component>"` (unset ones read `ON`, as Ironic's fake).
    pub indicators: std::collections::BTreeMap<String, String>,
}

#[derive(Debug)]
struct State {
    config: FakeConfig,
    method_delays: HashMap<String, Delay>,
    rules: Vec<FailureRule>,
    calls: HashMap<String, u64>,
    nodes: HashMap<NodeId, FakeNodeState>,
    agent_clean_steps: Vec<StepDef>,
    agent_deploy_steps: Vec<StepDef>,
    agent_service_steps: Vec<StepDef>,
}

/// A cheap, cloneable handle shared by all fake interfaces registered together.
///
/// Method names are `"<interface>.<method>"`, e.g. `"power.get_power_state"`,
/// `"power.set_power_state"`, `"power.reboot"`, `"management.set_boot_device"`,
/// `"boot.prepare_ramdisk"`, `"deploy.deploy"`, `"deploy.execute_step"`,
/// `"deploy.heartbeat"`, `"deploy.async_step"` (the completion of an asynchronous
/// agent step, reported at the next heartbeat), `"inspect.inspect_hardware"`, and
/// `"<interface>.validate"` for the synchronous validation. A rule for an interface
/// name alone (`"power"`) matches all of its methods.
#[derive(Clone, Debug)]
pub struct FakeControl {
    state: Arc<Mutex<State>>,
}

impl FakeControl {
    /// A handle with the given configuration.
    pub fn new(config: FakeConfig) -> Self {
        FakeControl {
            state: Arc::new(Mutex::new(State {
                config,
                method_delays: HashMap::new(),
                rules: Vec::new(),
                calls: HashMap::new(),
                nodes: HashMap::new(),
                agent_clean_steps: vec![
                    StepDef::clean("erase_devices_metadata", 99),
                    StepDef::clean("erase_devices", 10),
                ],
                agent_deploy_steps: Vec::new(),
                agent_service_steps: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Set the delay of every call to one interface (Ironic's `[fake] <iface>_delay`).
    pub fn set_delay(&self, interface: InterfaceType, delay: Delay) {
        self.lock().config.set_delay(interface, delay);
    }

    /// Set the delay of one method, overriding its interface's delay.
    pub fn set_method_delay(&self, method: &str, delay: Delay) {
        self.lock().method_delays.insert(method.to_owned(), delay);
    }

    /// Fail the next `n` calls of `method` (or of every method of an interface) with
    /// an error of `kind`.
    pub fn fail_next(&self, method: &str, n: u32, kind: ErrorKind, retryable: bool) {
        self.lock().rules.push(FailureRule {
            target: method.to_owned(),
            remaining: Some(n),
            probability: 1.0,
            kind,
            retryable,
        });
    }

    /// Fail every call of `method` with probability `p` (0.0..=1.0) until cleared.
    pub fn fail_with_probability(&self, method: &str, p: f64, kind: ErrorKind, retryable: bool) {
        self.lock().rules.push(FailureRule {
            target: method.to_owned(),
            remaining: None,
            probability: p.clamp(0.0, 1.0),
            kind,
            retryable,
        });
    }

    /// Remove every failure rule.
    pub fn clear_failures(&self) {
        self.lock().rules.clear();
    }

    /// How often `method` was called (validation included).
    pub fn calls(&self, method: &str) -> u64 {
        self.lock().calls.get(method).copied().unwrap_or(0)
    }

    /// Switch how the fake deploy interface behaves.
    pub fn set_deploy_mode(&self, mode: FakeDeployMode) {
        self.lock().config.deploy_mode = mode;
    }

    /// The current deploy mode.
    pub fn deploy_mode(&self) -> FakeDeployMode {
        self.lock().config.deploy_mode
    }

    /// Replace the steps the fake agent reports for `kind` once its ramdisk has
    /// called back (agent mode). Defaults: clean `erase_devices_metadata` (99) and
    /// `erase_devices` (10), like ironic-python-agent; no extra deploy or service steps.
    pub fn set_agent_steps(&self, kind: crate::driver::StepKind, steps: Vec<StepDef>) {
        let mut s = self.lock();
        match kind {
            crate::driver::StepKind::Clean => s.agent_clean_steps = steps,
            crate::driver::StepKind::Deploy => s.agent_deploy_steps = steps,
            crate::driver::StepKind::Service => s.agent_service_steps = steps,
            crate::driver::StepKind::Verify => {}
        }
    }

    pub(crate) fn agent_steps(&self, kind: crate::driver::StepKind) -> Vec<StepDef> {
        let s = self.lock();
        match kind {
            crate::driver::StepKind::Clean => s.agent_clean_steps.clone(),
            crate::driver::StepKind::Deploy => s.agent_deploy_steps.clone(),
            crate::driver::StepKind::Service => s.agent_service_steps.clone(),
            crate::driver::StepKind::Verify => Vec::new(),
        }
    }

    /// The simulated hardware of a node.
    pub fn node(&self, node: NodeId) -> FakeNodeState {
        self.lock().nodes.get(&node).cloned().unwrap_or_default()
    }

    /// Change the simulated power state from outside, as if someone pressed the
    /// power button.
    pub fn set_power(&self, node: NodeId, state: PowerState) {
        self.lock().nodes.entry(node).or_default().power = Some(state);
    }

    /// Change the health the fake BMC reports (`OK`, `Warning`, `Critical`, or
    /// anything else to see how the conductor treats a value it does not know).
    pub fn set_health(&self, node: NodeId, health: &str) {
        self.lock().nodes.entry(node).or_default().health = Some(health.to_owned());
    }

    /// Make the node's fake BMC stuck (or free it again): it accepts power commands
    /// and counts them, but the power state does not change, so `set_power_state`
    /// and `reboot` wait for their timeout and fail with a non-retryable
    /// [`ErrorKind::Timeout`], as the power contract says.
    pub fn set_power_stuck(&self, node: NodeId, stuck: bool) {
        self.lock().nodes.entry(node).or_default().power_stuck = stuck;
    }

    pub(crate) fn with_node<R>(&self, node: NodeId, f: impl FnOnce(&mut FakeNodeState) -> R) -> R {
        f(self.lock().nodes.entry(node).or_default())
    }

    fn check_rules(&self, s: &mut State, method: &str) -> Result<(), DriverError> {
        *s.calls.entry(method.to_owned()).or_insert(0) += 1;
        let mut rng = rand::rng();
        let mut hit = None;
        for (i, rule) in s.rules.iter_mut().enumerate() {
            if !rule.matches(method) {
                continue;
            }
            if rule.remaining == Some(0) {
                continue;
            }
            if rule.probability < 1.0 && !rng.random_bool(rule.probability) {
                continue;
            }
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
            hit = Some((i, rule.kind, rule.retryable));
            break;
        }
        s.rules.retain(|r| r.remaining != Some(0));
        match hit {
            None => Ok(()),
            Some((_, kind, retryable)) => Err(DriverError::new(
                kind,
                format!("fake {method} failed: injected {kind} failure"),
            )
            .with_retryable(retryable)),
        }
    }

    /// Count a synchronous call (validation) and apply failure rules, without delay.
    pub(crate) fn enter_sync(&self, method: &str) -> Result<(), DriverError> {
        let mut s = self.lock();
        self.check_rules(&mut s, method)
    }

    /// Count a call, sleep its configured delay, then apply failure rules.
    pub(crate) async fn enter(
        &self,
        interface: InterfaceType,
        method: &str,
    ) -> Result<(), DriverError> {
        let delay = {
            let s = self.lock();
            s.method_delays
                .get(method)
                .copied()
                .unwrap_or_else(|| s.config.delay(interface))
        };
        let d = delay.sample();
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
        let mut s = self.lock();
        self.check_rules(&mut s, method)
    }
}

impl Delay {
    /// Pick a duration: fixed, or uniformly random in `min..=max`.
    pub fn sample(self) -> Duration {
        match self {
            Delay::None => Duration::ZERO,
            Delay::Fixed(d) => d,
            Delay::Range(min, max) => {
                if max <= min {
                    min
                } else {
                    let span = (max - min).as_secs_f64();
                    min + Duration::from_secs_f64(rand::rng().random_range(0.0..=span))
                }
            }
        }
    }
}

pub(crate) fn default_boot_device() -> BootDeviceInfo {
    BootDeviceInfo {
        boot_device: Some(BootDevice::Pxe),
        persistent: Some(false),
    }
}
