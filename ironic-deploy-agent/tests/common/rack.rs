//! A rack of "machines" for conductor-driven tests: each node's power and boot
//! interfaces (`rack`) drive a real `ironic-agent` process. Powering a node on
//! while its boot target is the ramdisk starts the agent with the kernel command
//! line the deploy interface asked for (written to a file the agent reads as its
//! `/proc/cmdline`) and a file as its only disk; powering off kills it; the agent
//! exiting (`standby.power_off`) is the machine powering itself off.
//!
//! The ramdisk endpoints of the Ironic API (`/v1/lookup`, `/v1/heartbeat/{node}`,
//! `/v1/continue_inspection`) are served on loopback by a thin axum shim over the
//! real [`Conductor`] methods.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use ironic_core::conductor::{ConductorConfig, LookupResult};
use ironic_core::driver::{
    BaseInterface, BootInterface, Heartbeat, PowerInterface, RamdiskParams, Task,
};
use ironic_core::fake::{self, FakeConfig};
use ironic_core::hardware::{FAKE_HARDWARE, HardwareType};
use ironic_core::store::MemoryStore;
use ironic_core::{
    Conductor, DriverError, Error, Ident, InterfaceRegistry, MacAddress, Node, NodeId, PowerAction,
    PowerState, ProvisionState,
};
use serde_json::{Value, json};

/// Records the agent exchanges and store calls reported to the conductor's observer.
#[derive(Debug, Default)]
pub struct Seen {
    /// Agent requests and commands, in order.
    pub agent: Mutex<Vec<ironic_core::observe::AgentCall>>,
    /// Store calls by method.
    pub store: Mutex<BTreeMap<&'static str, usize>>,
}

impl ironic_core::observe::Observer for Seen {
    fn agent_call(&self, e: &ironic_core::observe::AgentCall) {
        self.agent.lock().unwrap().push(e.clone());
    }
    fn store_call(&self, e: &ironic_core::observe::StoreCall) {
        *self.store.lock().unwrap().entry(e.op).or_default() += 1;
    }
}

/// The hardware type of rack machines: `rack` power and boot, agent deploy.
pub const RACK: HardwareType = FAKE_HARDWARE
    .named("agent-rack")
    .with_power(&["rack"])
    .with_boot(&["rack"])
    .with_deploy(&["direct"])
    .with_inspect(&["agent", "fake"]);

#[derive(Debug, Default)]
struct Machine {
    power: Option<PowerState>,
    boot_ramdisk: bool,
    cmdline: String,
    agent: Option<Child>,
    boots: u32,
    extra_args: Vec<String>,
}

/// Machines that boot the real ironic-python-agent instead of `ironic-agent`:
/// a QEMU VM (TCG) with the node's disk file as its only disk (virtio), a NIC
/// with the node's PXE MAC on QEMU's user network (the host's loopback is
/// `10.0.2.2` there; IPA's port 9999 is forwarded to `127.0.0.1:<port>`, which
/// IPA advertises), and the host's `/usr`, `/etc` and this checkout (which
/// holds `.venv-ipa`) mounted read-only over 9p. The initramfs's `/init`
/// builds a root from them and runs IPA with the kernel command line the
/// deploy interface asked for.
#[derive(Clone, Debug)]
pub struct IpaVm {
    /// Debian's kernel.
    pub kernel: PathBuf,
    /// The initramfs (busybox, virtio and 9p modules, `/init`).
    pub initrd: PathBuf,
    /// The checkout whose `.venv-ipa` holds IPA.
    pub root: PathBuf,
}

/// The machines, by node.
#[derive(Clone, Debug, Default)]
pub struct Rack {
    machines: Arc<Mutex<HashMap<NodeId, Machine>>>,
    dir: PathBuf,
    ipa: Option<Arc<IpaVm>>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Rack {
    fn new(dir: &Path) -> Self {
        Rack {
            machines: Default::default(),
            dir: dir.to_owned(),
            ipa: None,
        }
    }

    /// The serial console of the node's newest IPA VM.
    pub fn console(&self, node: NodeId) -> String {
        let boots = self.boots(node);
        std::fs::read_to_string(
            self.dir
                .join(node.to_string())
                .join(format!("console-{boots}.log")),
        )
        .unwrap_or_default()
    }

    fn start_ipa(&self, vm: &IpaVm, node: NodeId, m: &Machine) -> Result<Child, DriverError> {
        let dir = self.dir.join(node.to_string());
        let port = free_port();
        // BOOTIF=01-52-54-00-... is the PXE port the deploy interface booted from
        let mac = m
            .cmdline
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("BOOTIF=01-"))
            .map(|m| m.replace('-', ":"))
            .ok_or_else(|| DriverError::other("no BOOTIF in the ramdisk command line"))?;
        let cmdline = format!(
            "{} console=ttyS0 panic=-1 ipa-test-root={} ipa-advertise-host=127.0.0.1 \
             ipa-advertise-port={port} ipa-debug=1",
            m.cmdline.replace("://127.0.0.1:", "://10.0.2.2:"),
            vm.root.display()
        );
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args([
            "-accel", "tcg", "-machine", "pc", "-cpu", "max", "-m", "1024",
        ])
        .args(["-smp", "1", "-display", "none", "-no-reboot", "-nodefaults"])
        .arg("-kernel")
        .arg(&vm.kernel)
        .arg("-initrd")
        .arg(&vm.initrd)
        .arg("-append")
        .arg(cmdline)
        .arg("-serial")
        .arg(format!(
            "file:{}",
            dir.join(format!("console-{}.log", m.boots + 1)).display()
        ))
        .arg("-netdev")
        .arg(format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:9999"))
        .arg("-device")
        .arg(format!("virtio-net-pci,netdev=n0,mac={mac}"))
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=virtio",
            self.disk(node).display()
        ));
        for (path, tag) in [
            (Path::new("/usr"), "usr"),
            (Path::new("/etc"), "etc"),
            (vm.root.as_path(), "work"),
        ] {
            cmd.arg("-virtfs").arg(format!(
                "local,path={},mount_tag={tag},security_model=none,readonly=on",
                path.display()
            ));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| DriverError::other(format!("cannot start qemu-system-x86_64: {e}")))
    }

    /// The disk file of a node.
    pub fn disk(&self, node: NodeId) -> PathBuf {
        self.dir.join(format!("{node}.disk"))
    }

    /// Extra `ironic-agent` arguments for a node (e.g. a fake `/sys` tree).
    pub fn set_agent_args(&self, node: NodeId, args: &[&str]) {
        let mut g = self.machines.lock().unwrap();
        g.entry(node).or_default().extra_args = args.iter().map(|a| a.to_string()).collect();
    }

    /// How many times the node's agent was started.
    pub fn boots(&self, node: NodeId) -> u32 {
        self.machines
            .lock()
            .unwrap()
            .get(&node)
            .map_or(0, |m| m.boots)
    }

    /// Whether an agent process runs for the node now.
    pub fn agent_running(&self, node: NodeId) -> bool {
        let mut g = self.machines.lock().unwrap();
        let Some(m) = g.get_mut(&node) else {
            return false;
        };
        reap(m);
        m.agent.is_some()
    }

    /// Kill every agent process (also done on drop of the [`Env`]).
    pub fn kill_all(&self) {
        let mut g = self.machines.lock().unwrap_or_else(|e| e.into_inner());
        for m in g.values_mut() {
            kill(m);
        }
    }

    fn power_on(&self, node: NodeId) -> Result<(), DriverError> {
        let mut g = self.machines.lock().unwrap();
        let m = g.entry(node).or_default();
        kill(m);
        m.power = Some(PowerState::On);
        if !m.boot_ramdisk {
            return Ok(());
        }
        let dir = self.dir.join(node.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| DriverError::other(e.to_string()))?;
        if let Some(vm) = &self.ipa {
            let child = self.start_ipa(vm, node, m)?;
            m.agent = Some(child);
            m.boots += 1;
            return Ok(());
        }
        let cmdline = dir.join("cmdline");
        std::fs::write(&cmdline, &m.cmdline).map_err(|e| DriverError::other(e.to_string()))?;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ironic-agent"));
        cmd.arg("--cmdline")
            .arg(&cmdline)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--power-off",
                "exit",
                "--heartbeat-interval",
                "0.3",
                "--heartbeat-min-interval",
                "0",
                "--download-retries",
                "1",
                "--lookup-timeout",
                "60",
            ])
            .arg("--root-device")
            .arg(self.disk(node))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args(&m.extra_args)
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("AGENT_TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        let child = cmd
            .spawn()
            .map_err(|e| DriverError::other(format!("cannot start ironic-agent: {e}")))?;
        m.agent = Some(child);
        m.boots += 1;
        Ok(())
    }

    fn power_off(&self, node: NodeId) {
        let mut g = self.machines.lock().unwrap();
        let m = g.entry(node).or_default();
        kill(m);
        m.power = Some(PowerState::Off);
    }

    fn state(&self, node: NodeId, recorded: Option<PowerState>) -> PowerState {
        let mut g = self.machines.lock().unwrap();
        let m = g.entry(node).or_default();
        if let Some(c) = &mut m.agent
            && matches!(c.try_wait(), Ok(Some(_)))
        {
            // the agent powered the machine off (standby.power_off)
            m.agent = None;
            m.power = Some(PowerState::Off);
        }
        *m.power.get_or_insert(recorded.unwrap_or(PowerState::Off))
    }
}

fn reap(m: &mut Machine) {
    if let Some(c) = &mut m.agent
        && matches!(c.try_wait(), Ok(Some(_)))
    {
        m.agent = None;
    }
}

fn kill(m: &mut Machine) {
    if let Some(mut c) = m.agent.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// `power_interface = "rack"`.
#[derive(Clone, Debug)]
pub struct RackPower(pub Rack);

#[async_trait]
impl BaseInterface for RackPower {
    fn validate(&self, _task: &Task) -> Result<(), DriverError> {
        Ok(())
    }
}

#[async_trait]
impl PowerInterface for RackPower {
    async fn get_power_state(&self, task: &Task) -> Result<PowerState, DriverError> {
        Ok(self.0.state(task.node.uuid, task.node.power_state))
    }

    async fn set_power_state(
        &self,
        task: &Task,
        action: PowerAction,
        _timeout: Option<Duration>,
    ) -> Result<(), DriverError> {
        let cur = self.0.state(task.node.uuid, task.node.power_state);
        match action.resulting_state() {
            PowerState::On if cur == PowerState::On && !matches!(action, PowerAction::Reboot) => {
                Ok(())
            }
            PowerState::On => self.0.power_on(task.node.uuid),
            _ => {
                self.0.power_off(task.node.uuid);
                Ok(())
            }
        }
    }

    async fn reboot(&self, task: &Task, _timeout: Option<Duration>) -> Result<(), DriverError> {
        self.0.power_on(task.node.uuid)
    }
}

/// `boot_interface = "rack"`: the next boot is the ramdisk (with the kernel
/// parameters the deploy interface gave, plus `BOOTIF` of the PXE port) or the disk.
#[derive(Clone, Debug)]
pub struct RackBoot(pub Rack);

#[async_trait]
impl BaseInterface for RackBoot {
    fn validate(&self, _task: &Task) -> Result<(), DriverError> {
        Ok(())
    }
}

#[async_trait]
impl BootInterface for RackBoot {
    async fn prepare_ramdisk(
        &self,
        task: &mut Task,
        params: &RamdiskParams,
    ) -> Result<(), DriverError> {
        let mut params = params.clone();
        if let Some(p) = task.ports.iter().find(|p| p.pxe_enabled) {
            params.kernel_params.insert(
                "BOOTIF".into(),
                format!("01-{}", p.address.to_string().replace(':', "-")),
            );
        }
        let mut g = self.0.machines.lock().unwrap();
        let m = g.entry(task.node.uuid).or_default();
        m.boot_ramdisk = true;
        m.cmdline = params.command_line();
        Ok(())
    }

    async fn clean_up_ramdisk(&self, task: &mut Task) -> Result<(), DriverError> {
        let mut g = self.0.machines.lock().unwrap();
        g.entry(task.node.uuid).or_default().boot_ramdisk = false;
        Ok(())
    }

    async fn prepare_instance(&self, task: &mut Task) -> Result<(), DriverError> {
        self.clean_up_ramdisk(task).await
    }

    async fn clean_up_instance(&self, _task: &mut Task) -> Result<(), DriverError> {
        Ok(())
    }

    fn validate_inspection(&self, _task: &Task) -> Result<(), DriverError> {
        Ok(())
    }
}

/// A running conductor with the rack, the ramdisk API shim and a temp dir.
pub struct Env {
    /// The conductor.
    pub c: Conductor,
    /// What the conductor and the agent deploy interface reported.
    pub seen: Arc<Seen>,
    /// The machines.
    pub rack: Rack,
    /// The ramdisk API base URL.
    pub api_url: String,
    /// Scratch space (disks, images).
    pub dir: tempfile::TempDir,
    api: tokio::task::JoinHandle<()>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.rack.kill_all();
        self.api.abort();
    }
}

/// Start a conductor (MemoryStore, fake + rack + direct + agent inspect) and the shim.
pub async fn env() -> Env {
    env_with(ironic_deploy_agent::AgentConfig::default(), None).await
}

/// [`env`] with the agent deploy's configuration, and machines that boot IPA
/// in a VM when `ipa` is given.
pub async fn env_with(agent: ironic_deploy_agent::AgentConfig, ipa: Option<IpaVm>) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut rack = Rack::new(dir.path());
    rack.ipa = ipa.map(Arc::new);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}", l.local_addr().unwrap());
    let mut reg = InterfaceRegistry::with_noop();
    fake::register(&mut reg, FakeConfig::default());
    ironic_deploy_agent::register(&mut reg, agent);
    reg.register_power("rack", Arc::new(RackPower(rack.clone())))
        .register_boot("rack", Arc::new(RackBoot(rack.clone())))
        .register_hardware_type(RACK);
    let cfg = {
        let mut v = ConductorConfig::default();
        v.host = format!("agent-e2e-{}", &NodeId::new().to_string()[..8]);
        v.api_url = Some(api_url.clone());
        v.power_state_sync_interval = Duration::ZERO;
        v.power_failure_recovery_interval = Duration::ZERO;
        v.check_provision_state_interval = Duration::ZERO;
        v
    };
    let seen = Arc::new(Seen::default());
    let c = Conductor::start_observed(Arc::new(MemoryStore::new()), reg, cfg, seen.clone())
        .await
        .unwrap();
    let app = axum::Router::new()
        .route("/", axum::routing::get(root))
        .route("/v1/lookup", axum::routing::get(lookup))
        .route("/v1/heartbeat/{node}", axum::routing::post(heartbeat))
        .route(
            "/v1/continue_inspection",
            axum::routing::post(continue_inspection),
        )
        .with_state(c.clone());
    let api = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    Env {
        c,
        seen,
        rack,
        api_url,
        dir,
        api,
    }
}

impl Env {
    /// Enroll a node of the rack with one PXE port and a sparse file disk of `disk_mib`.
    pub async fn node(&self, mac: &str, disk_mib: u64) -> Node {
        let mut n = Node::new(RACK.name);
        n.name = Some(format!("rack-{}", &n.uuid.to_string()[..8]));
        let n = self.c.create_node(n).await.unwrap();
        let mut p = ironic_core::Port::new(n.uuid, mac.parse::<MacAddress>().unwrap());
        p.pxe_enabled = true;
        self.c.create_port(p).await.unwrap();
        super::make_disk(&self.rack.disk(n.uuid), disk_mib << 20);
        n
    }

    /// Wait (up to `secs`) until the node is unlocked and `pred` holds.
    pub async fn wait_until(
        &self,
        node: NodeId,
        secs: u64,
        what: &str,
        pred: impl Fn(&Node) -> bool,
    ) -> Node {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        let ident: Ident = node.into();
        loop {
            let n = self.c.get_node(&ident).await.unwrap();
            if pred(&n) && n.reservation.is_none() {
                return n;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}: node is {} (target {:?}), last_error {:?}, step {:?}",
                    n.provision_state, n.target_provision_state, n.last_error, n.deploy_step
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until the node settles in one of `states` (not a transient one).
    pub async fn settle(&self, node: NodeId, states: &[ProvisionState]) -> Node {
        self.wait_until(node, 120, &format!("{states:?}"), |n| {
            states.contains(&n.provision_state)
        })
        .await
    }
}

async fn root() -> Json<Value> {
    Json(json!({"default_version": {"id": "v1", "version": "1.99", "min_version": "1.1"}}))
}

type Reply = (StatusCode, Json<Value>);

fn fault(e: Error) -> Reply {
    let status = match &e {
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::NodeLocked { .. } | Error::Conflict(_) => StatusCode::CONFLICT,
        Error::NoFreeWorker | Error::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        Error::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    (
        status,
        Json(json!({"error_message": {"faultstring": e.to_string(), "faultcode": "Client"}})),
    )
}

fn lookup_body(r: LookupResult) -> Value {
    let n = &r.node;
    let mut dii = n.driver_internal_info.clone();
    dii.remove("agent_secret_token");
    json!({
        "node": {"uuid": n.uuid.to_string(), "properties": n.properties,
                 "instance_info": n.instance_info, "driver_internal_info": dii},
        "config": {"heartbeat_timeout": 300, "agent_token": r.agent_token,
                   "agent_token_required": true, "agent_md5_checksum_enable": false},
    })
}

async fn lookup(State(c): State<Conductor>, Query(q): Query<BTreeMap<String, String>>) -> Reply {
    let macs: Vec<MacAddress> = q
        .get("addresses")
        .map(|a| a.split(',').filter_map(|m| m.parse().ok()).collect())
        .unwrap_or_default();
    let uuid = q.get("node_uuid").and_then(|u| u.parse().ok());
    match c.lookup(&macs, uuid).await {
        Ok(r) => (StatusCode::OK, Json(lookup_body(r))),
        Err(e) => fault(e),
    }
}

async fn heartbeat(
    State(c): State<Conductor>,
    UrlPath(node): UrlPath<String>,
    Json(b): Json<Value>,
) -> Reply {
    let token = b
        .get("agent_token")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let hb: Heartbeat = match serde_json::from_value(b) {
        Ok(h) => h,
        Err(e) => return fault(Error::Invalid(format!("bad heartbeat body: {e}"))),
    };
    let ident: Ident = match node.parse::<NodeId>() {
        Ok(id) => id.into(),
        Err(_) => return fault(Error::node_not_found(node)),
    };
    match c.heartbeat(&ident, &token, hb).await {
        Ok(()) => (StatusCode::ACCEPTED, Json(Value::Null)),
        Err(e) => fault(e),
    }
}

async fn continue_inspection(
    State(c): State<Conductor>,
    Query(q): Query<BTreeMap<String, String>>,
    Json(b): Json<Value>,
) -> Reply {
    let uuid = q.get("node_uuid").and_then(|u| u.parse().ok());
    match c.continue_inspection(uuid, b).await {
        Ok(r) => (StatusCode::ACCEPTED, Json(lookup_body(r))),
        Err(e) => fault(e),
    }
}
