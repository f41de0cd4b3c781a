//! Toy boot, deploy and switch drivers for the boot, deploy, switch and
//! lifecycle behaviours of the kit: each correct toy passes its suite, and each
//! breakage breaks one rule of the trait's contract so that a test can prove the
//! kit catches it. They keep their own state (boot, switch) or delegate to the
//! fakes (deploy) and then misbehave on purpose.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ironic_core::driver::{
    BaseInterface, BootInterface, DeployInterface, Heartbeat, HeartbeatOutcome, PropertyDoc,
    RamdiskParams, Step, StepDef, StepKind, StepOutcome, Task,
};
use ironic_core::fake::{FakeControl, FakeDeploy};
use ironic_core::switch::{
    FakeSwitch, LagConfig, PortConfig, PortStatus, Switch, SwitchCapabilities, VlanMode,
};
use ironic_core::{DriverError, ErrorKind, NodeId, PowerAction};

// ---- boot ----

/// How [`ToyBoot`] is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokenBoot {
    /// The correct toy.
    Nothing,
    /// A second `prepare_ramdisk` fails ("already prepared").
    RamdiskTwiceFails,
    /// `clean_up_ramdisk` fails when nothing was prepared.
    RamdiskCleanUpNeedsPrepare,
    /// A second `prepare_instance` fails.
    InstanceTwiceFails,
    /// `clean_up_instance` fails when nothing was prepared.
    InstanceCleanUpNeedsPrepare,
    /// `clean_up_ramdisk` leaves the ramdisk configuration behind, and
    /// `prepare_instance` then refuses to overwrite it.
    RamdiskLeftBehind,
    /// `prepare_ramdisk` reboots the node itself.
    PowersTheNode,
}

#[derive(Clone, Copy, Debug, Default)]
struct BootState {
    ramdisk: bool,
    instance: bool,
}

/// A boot interface that writes a per-node boot configuration (kept in memory),
/// reading `driver_info.deploy_kernel`.
#[derive(Debug)]
pub struct ToyBoot {
    broken: BrokenBoot,
    nodes: Mutex<HashMap<NodeId, BootState>>,
}

impl ToyBoot {
    pub fn new(broken: BrokenBoot) -> Arc<ToyBoot> {
        Arc::new(ToyBoot {
            broken,
            nodes: Mutex::default(),
        })
    }

    fn with<R>(&self, task: &Task, f: impl FnOnce(&mut BootState) -> R) -> R {
        f(self
            .nodes
            .lock()
            .unwrap()
            .entry(task.node.uuid)
            .or_default())
    }

    fn refuse(&self, what: &str) -> Result<(), DriverError> {
        Err(DriverError::new(ErrorKind::Conflict, what.to_owned()))
    }
}

#[async_trait]
impl BaseInterface for ToyBoot {
    fn properties(&self) -> Vec<PropertyDoc> {
        vec![PropertyDoc::required(
            "deploy_kernel",
            "The deploy kernel's URL.",
        )]
    }
    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        match task.node.driver_info.get_str("deploy_kernel") {
            Some(_) => Ok(()),
            None => Err(DriverError::missing(
                "driver_info.deploy_kernel is required to boot the ramdisk",
            )),
        }
    }
}

#[async_trait]
impl BootInterface for ToyBoot {
    async fn prepare_ramdisk(
        &self,
        task: &mut Task,
        _params: &RamdiskParams,
    ) -> Result<(), DriverError> {
        if self.with(task, |s| s.ramdisk) && self.broken == BrokenBoot::RamdiskTwiceFails {
            return self.refuse("the ramdisk boot configuration already exists");
        }
        if self.broken == BrokenBoot::PowersTheNode {
            task.node_power_action(PowerAction::Reboot, None).await?;
        }
        self.with(task, |s| s.ramdisk = true);
        Ok(())
    }
    async fn clean_up_ramdisk(&self, task: &mut Task) -> Result<(), DriverError> {
        if !self.with(task, |s| s.ramdisk) && self.broken == BrokenBoot::RamdiskCleanUpNeedsPrepare
        {
            return self.refuse("there is no ramdisk boot configuration to remove");
        }
        if self.broken != BrokenBoot::RamdiskLeftBehind {
            self.with(task, |s| s.ramdisk = false);
        }
        Ok(())
    }
    async fn prepare_instance(&self, task: &mut Task) -> Result<(), DriverError> {
        let s = self.with(task, |s| *s);
        if s.instance && self.broken == BrokenBoot::InstanceTwiceFails {
            return self.refuse("the instance boot configuration already exists");
        }
        if s.ramdisk && self.broken == BrokenBoot::RamdiskLeftBehind {
            return self.refuse("a ramdisk boot configuration is in the way");
        }
        self.with(task, |s| s.instance = true);
        Ok(())
    }
    async fn clean_up_instance(&self, task: &mut Task) -> Result<(), DriverError> {
        if !self.with(task, |s| s.instance)
            && self.broken == BrokenBoot::InstanceCleanUpNeedsPrepare
        {
            return self.refuse("there is no instance boot configuration to remove");
        }
        self.with(task, |s| s.instance = false);
        Ok(())
    }
}

// ---- deploy ----

/// How [`ToyDeploy`] is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokenDeploy {
    /// The correct toy (the fake deploy).
    Nothing,
    /// The `deploy` step is offered with priority 90.
    DeployStepPriority,
    /// A clean step is listed twice.
    DuplicateStep,
    /// An unknown step "succeeds".
    AcceptsUnknownStep,
    /// An unknown step fails with kind `Other`.
    UnknownStepAsOther,
    /// A second `prepare` fails.
    PrepareTwiceFails,
    /// `tear_down` leaves the node powered on.
    TearDownLeavesPowerOn,
    /// `tear_down` reports success whatever failed under it.
    SwallowsTearDownErrors,
    /// `tear_down` fails with "tear down failed", the cause dropped.
    VagueTearDownErrors,
}

/// The fake deploy interface, broken one way.
#[derive(Debug)]
pub struct ToyDeploy {
    inner: FakeDeploy,
    broken: BrokenDeploy,
    prepared: Mutex<HashMap<NodeId, bool>>,
}

impl ToyDeploy {
    pub fn new(control: FakeControl, broken: BrokenDeploy) -> Arc<ToyDeploy> {
        Arc::new(ToyDeploy {
            inner: FakeDeploy::new(control),
            broken,
            prepared: Mutex::default(),
        })
    }
}

#[async_trait]
impl BaseInterface for ToyDeploy {
    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        self.inner.validate(task)
    }
    fn steps(&self) -> Vec<StepDef> {
        self.inner.steps()
    }
    async fn get_steps(&self, task: &Task, kind: StepKind) -> Result<Vec<StepDef>, DriverError> {
        let mut steps = self.inner.get_steps(task, kind).await?;
        match (self.broken, kind) {
            (BrokenDeploy::DeployStepPriority, StepKind::Deploy) => {
                for s in &mut steps {
                    if s.name == "deploy" {
                        s.priority = 90;
                    }
                }
            }
            (BrokenDeploy::DuplicateStep, StepKind::Clean) => {
                steps.push(StepDef::clean("erase_devices", 10));
                steps.push(StepDef::clean("erase_devices", 10));
            }
            _ => {}
        }
        Ok(steps)
    }
    async fn execute_step(
        &self,
        task: &mut Task,
        kind: StepKind,
        step: &Step,
    ) -> Result<StepOutcome, DriverError> {
        match self.inner.execute_step(task, kind, step).await {
            Err(e) if e.kind() == ErrorKind::Unsupported => match self.broken {
                BrokenDeploy::AcceptsUnknownStep => Ok(StepOutcome::Done),
                BrokenDeploy::UnknownStepAsOther => Err(DriverError::new(
                    ErrorKind::Other,
                    format!("cannot run {}", step.step),
                )),
                _ => Err(e),
            },
            r => r,
        }
    }
}

#[async_trait]
impl DeployInterface for ToyDeploy {
    async fn deploy(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        self.inner.deploy(task).await
    }
    async fn tear_down(&self, task: &mut Task) -> Result<(), DriverError> {
        if self.broken == BrokenDeploy::TearDownLeavesPowerOn {
            // forgets to power off: only removes the instance's boot configuration
            if let Some(d) = task.driver.clone() {
                d.boot.clean_up_instance(task).await?;
            }
            return Ok(());
        }
        match (self.inner.tear_down(task).await, self.broken) {
            (Ok(()), _) | (Err(_), BrokenDeploy::SwallowsTearDownErrors) => Ok(()),
            (Err(_), BrokenDeploy::VagueTearDownErrors) => {
                Err(DriverError::new(ErrorKind::Other, "tear down failed"))
            }
            (Err(e), _) => Err(e),
        }
    }
    async fn prepare(&self, task: &mut Task) -> Result<(), DriverError> {
        let again = self
            .prepared
            .lock()
            .unwrap()
            .insert(task.node.uuid, true)
            .is_some();
        if again && self.broken == BrokenDeploy::PrepareTwiceFails {
            return Err(DriverError::new(
                ErrorKind::Conflict,
                "the node is already prepared",
            ));
        }
        self.inner.prepare(task).await
    }
    async fn clean_up(&self, task: &mut Task) -> Result<(), DriverError> {
        self.prepared.lock().unwrap().remove(&task.node.uuid);
        self.inner.clean_up(task).await
    }
    async fn prepare_cleaning(&self, task: &mut Task) -> Result<StepOutcome, DriverError> {
        self.inner.prepare_cleaning(task).await
    }
    async fn tear_down_cleaning(&self, task: &mut Task) -> Result<(), DriverError> {
        self.inner.tear_down_cleaning(task).await
    }
    async fn heartbeat(
        &self,
        task: &mut Task,
        heartbeat: &Heartbeat,
    ) -> Result<HeartbeatOutcome, DriverError> {
        self.inner.heartbeat(task, heartbeat).await
    }
}

// ---- switch ----

/// How [`ToySwitch`] is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokenSwitch {
    /// The correct toy (the fake switch).
    Nothing,
    /// A trunk is stored as an access port on its native VLAN.
    TrunkAsAccess,
    /// Setting what a port already has fails.
    RefusesSameConfig,
    /// Shutting a port forgets its VLAN.
    ShutDropsVlan,
    /// The MTU is ignored.
    IgnoresMtu,
    /// An unknown port fails with kind `Other`.
    UnknownPortAsOther,
    /// `validate_port` accepts everything.
    NoValidation,
    /// A batch applies every change it can before reporting the first error.
    PartialBatch,
    /// `set_port` rewrites every port from a stale snapshot (lost updates).
    WholeSwitchRewrite,
    /// `list_ports` lists nothing.
    ListsNothing,
    /// Deleting a LAG that does not exist fails.
    LagDeleteNotIdempotent,
    /// `Debug` prints the switch's password.
    SecretInDebug,
}

/// The fake switch, broken one way.
pub struct ToySwitch {
    inner: FakeSwitch,
    broken: BrokenSwitch,
    secret: String,
}

impl std::fmt::Debug for ToySwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("ToySwitch");
        d.field("inner", &self.inner).field("broken", &self.broken);
        if self.broken == BrokenSwitch::SecretInDebug {
            d.field("password", &self.secret);
        }
        d.finish()
    }
}

impl ToySwitch {
    pub const SECRET: &str = "toy-switch-pw-8812";

    pub fn new(broken: BrokenSwitch) -> ToySwitch {
        ToySwitch {
            inner: FakeSwitch::with_ports("toy-tor", ["p0", "p1", "p2", "p3"]),
            broken,
            secret: Self::SECRET.to_owned(),
        }
    }
}

#[async_trait]
impl Switch for ToySwitch {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> SwitchCapabilities {
        self.inner.capabilities()
    }
    fn validate_port(&self, port: &str, config: &PortConfig) -> Result<(), DriverError> {
        if self.broken == BrokenSwitch::NoValidation {
            return Ok(());
        }
        self.inner.validate_port(port, config)
    }
    async fn get_port(&self, port: &str) -> Result<PortStatus, DriverError> {
        match self.inner.get_port(port).await {
            Err(e)
                if e.kind() == ErrorKind::NotFound
                    && self.broken == BrokenSwitch::UnknownPortAsOther =>
            {
                Err(DriverError::new(ErrorKind::Other, e.message().to_owned()))
            }
            r => r,
        }
    }
    async fn set_port(&self, port: &str, config: &PortConfig) -> Result<(), DriverError> {
        let mut c = config.clone();
        match self.broken {
            BrokenSwitch::TrunkAsAccess => {
                if let Some(VlanMode::Trunk {
                    native_vlan: Some(v),
                    ..
                }) = &c.vlan
                {
                    c.vlan = Some(VlanMode::access(*v));
                }
            }
            BrokenSwitch::RefusesSameConfig
                if self.inner.get_port(port).await?.config == c.normalized() =>
            {
                return Err(DriverError::new(
                    ErrorKind::Conflict,
                    format!("port {port} is already configured so"),
                ));
            }
            BrokenSwitch::ShutDropsVlan if !c.enabled => c.vlan = None,
            BrokenSwitch::IgnoresMtu => c.mtu = None,
            BrokenSwitch::UnknownPortAsOther => {
                self.get_port(port).await?;
            }
            BrokenSwitch::WholeSwitchRewrite => {
                // read the whole switch, think, write the whole switch back
                let mut snapshot = Vec::new();
                for p in self.inner.list_ports().await? {
                    let st = self.inner.get_port(&p).await?;
                    if st.lag.is_none() && p != port {
                        snapshot.push((p, st.config));
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                self.inner.set_port(port, &c).await?;
                for (p, old) in snapshot {
                    self.inner.set_port(&p, &old).await?;
                }
                return Ok(());
            }
            _ => {}
        }
        self.inner.set_port(port, &c).await
    }
    async fn set_ports(&self, changes: &[(String, PortConfig)]) -> Result<(), DriverError> {
        if self.broken != BrokenSwitch::PartialBatch {
            return self.inner.set_ports(changes).await;
        }
        let mut first = None;
        for (p, c) in changes {
            if let Err(e) = self.set_port(p, c).await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
    async fn list_ports(&self) -> Result<Vec<String>, DriverError> {
        if self.broken == BrokenSwitch::ListsNothing {
            return Ok(Vec::new());
        }
        self.inner.list_ports().await
    }
    async fn get_lag(&self, lag: &str) -> Result<Option<LagConfig>, DriverError> {
        self.inner.get_lag(lag).await
    }
    async fn set_lag(&self, lag: &str, config: &LagConfig) -> Result<(), DriverError> {
        self.inner.set_lag(lag, config).await
    }
    async fn delete_lag(&self, lag: &str) -> Result<(), DriverError> {
        if self.broken == BrokenSwitch::LagDeleteNotIdempotent
            && self.inner.get_lag(lag).await?.is_none()
        {
            return Err(DriverError::new(
                ErrorKind::NotFound,
                format!("no LAG {lag}"),
            ));
        }
        self.inner.delete_lag(lag).await
    }
}
