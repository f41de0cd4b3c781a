//! The `process` console container provider ([`ProcessConsoleContainer`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use rustix::process::{Pid, Signal, kill_process_group};
use tokio::process::{Child, Command};

use super::container::{AppInfo, ConsoleContainerProvider, container_error, probe};
use crate::error::DriverError;
use crate::ids::NodeId;
use crate::model::Node;

/// Settings of the [`ProcessConsoleContainer`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessSettings {
    /// The program and its arguments (`{host}`, `{port}`, `{node}`, `{app}`
    /// replaced); must not be empty.
    pub command: Vec<String>,
    /// The address the VNC server is told to listen on, and that the proxy
    /// connects to (127.0.0.1).
    pub host: String,
    /// How long the VNC server may take to answer (`[vnc] wait_for_ready_timeout`, 10 s).
    pub wait_for_ready_timeout: Duration,
    /// SIGTERM to SIGKILL (`[console] kill_timeout`, 1 s).
    pub kill_timeout: Duration,
    /// `READ_ONLY` (`[vnc] read_only`, false).
    pub read_only: bool,
    /// Where each process's output goes (`<dir>/<node>.log`); `None` discards it.
    pub log_dir: Option<PathBuf>,
}

impl ProcessSettings {
    /// Settings running `command` with the defaults.
    pub fn new(command: Vec<String>) -> Self {
        ProcessSettings {
            command,
            host: "127.0.0.1".into(),
            wait_for_ready_timeout: Duration::from_secs(10),
            kill_timeout: Duration::from_secs(1),
            read_only: false,
            log_dir: None,
        }
    }
}

struct Running {
    child: Child,
    pid: u32,
    port: u16,
}

/// The `process` console container provider: ironic-rs's own (Ironic has no such
/// provider). It runs an operator-configured command on the conductor's host for
/// each console, where Ironic's `systemd` provider runs the `ironic-console`
/// container image with podman: the command is expected to start a VNC server
/// (without authentication, on the given address and port) that shows the
/// node's console, e.g. Xvnc with a browser logged in to the BMC's HTML5 KVM.
///
/// The command gets what Ironic's container gets, in its environment (never on
/// its command line, which every user of the host can read):
///
/// | variable | value |
/// |---|---|
/// | `APP` | the app: `redfish-graphical`, `fake` |
/// | `APP_INFO` | the app info as JSON (for Redfish: address, system_id, username, **password**, verify_ca, auth_type, node_uuid) |
/// | `READ_ONLY` | `True` or `False` (`[vnc] read_only`; Ironic's template writes Python's booleans) |
/// | `VNC_HOST`, `VNC_PORT` | where to listen (the container maps its port 5900 instead) |
/// | `NODE_UUID` | the node |
///
/// In the arguments, `{host}`, `{port}`, `{node}` and `{app}` are replaced by
/// the same values. The process runs in a process group of its own; stopping the
/// console sends that group SIGTERM, then SIGKILL after the kill timeout (Ironic's
/// `[console] kill_timeout`, 1 s). Its output goes to `<log_dir>/<node>.log` when
/// a log directory is set, else nowhere (it may print what it was given).
pub struct ProcessConsoleContainer {
    settings: ProcessSettings,
    running: tokio::sync::Mutex<HashMap<NodeId, Running>>,
    /// PIDs of the running process groups, for `Drop` (which cannot await).
    groups: Mutex<HashMap<NodeId, u32>>,
}

impl std::fmt::Debug for ProcessConsoleContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessConsoleContainer")
            .field("command", &self.settings.command)
            .field("host", &self.settings.host)
            .field("running", &self.pids())
            .finish()
    }
}

impl Drop for ProcessConsoleContainer {
    fn drop(&mut self) {
        if let Ok(g) = self.groups.get_mut() {
            for pid in g.values() {
                signal_group(*pid, Signal::KILL);
            }
        }
    }
}

fn signal_group(pid: u32, sig: Signal) {
    if let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process_group(p, sig);
    }
}

impl ProcessConsoleContainer {
    /// The provider's name (`[vnc] container_provider = "process"`).
    pub const NAME: &'static str = "process";

    /// A provider running `settings.command`; an empty command is an error.
    pub fn new(settings: ProcessSettings) -> Result<Self, DriverError> {
        if settings.command.first().is_none_or(|p| p.is_empty()) {
            return Err(container_error(
                Self::NAME,
                "no command configured ([vnc] process_command)",
            ));
        }
        Ok(ProcessConsoleContainer {
            settings,
            running: tokio::sync::Mutex::new(HashMap::new()),
            groups: Mutex::new(HashMap::new()),
        })
    }

    /// The PID of each running console process.
    pub fn pids(&self) -> HashMap<NodeId, u32> {
        self.groups.lock().map(|g| g.clone()).unwrap_or_default()
    }

    fn free_port(&self) -> Result<u16, DriverError> {
        let l = std::net::TcpListener::bind((self.settings.host.as_str(), 0)).map_err(|e| {
            container_error(
                Self::NAME,
                format!("no free port on {}: {e}", self.settings.host),
            )
        })?;
        l.local_addr()
            .map(|a| a.port())
            .map_err(|e| container_error(Self::NAME, e))
    }

    async fn stop_running(&self, node: NodeId, mut r: Running) {
        if let Ok(mut g) = self.groups.lock() {
            g.remove(&node);
        }
        if matches!(r.child.try_wait(), Ok(Some(_))) {
            // The leader is gone; what it left in its group goes too.
            signal_group(r.pid, Signal::KILL);
            return;
        }
        signal_group(r.pid, Signal::TERM);
        signal_group(r.pid, Signal::CONT);
        if tokio::time::timeout(self.settings.kill_timeout, r.child.wait())
            .await
            .is_err()
        {
            tracing::warn!(node = %node, pid = r.pid, "console process did not end on SIGTERM; killing it");
        }
        signal_group(r.pid, Signal::KILL);
        let _ = r.child.wait().await;
        tracing::info!(node = %node, pid = r.pid, "console process stopped");
    }
}

#[async_trait]
impl ConsoleContainerProvider for ProcessConsoleContainer {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn start_container(
        &self,
        node: &Node,
        app: &str,
        app_info: &AppInfo,
    ) -> Result<(String, u16), DriverError> {
        let mut running = self.running.lock().await;
        let host = self.settings.host.clone();
        if let Some(r) = running.get_mut(&node.uuid) {
            if matches!(r.child.try_wait(), Ok(None)) {
                return Ok((host, r.port));
            }
            if let Some(r) = running.remove(&node.uuid) {
                self.stop_running(node.uuid, r).await;
            }
        }
        let port = self.free_port()?;
        let uuid = node.uuid.to_string();
        let subst = |s: &str| {
            s.replace("{host}", &host)
                .replace("{port}", &port.to_string())
                .replace("{node}", &uuid)
                .replace("{app}", app)
        };
        let argv: Vec<String> = self.settings.command.iter().map(|a| subst(a)).collect();
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env("APP", app)
            .env("APP_INFO", app_info.to_json())
            .env(
                "READ_ONLY",
                if self.settings.read_only {
                    "True"
                } else {
                    "False"
                },
            )
            .env("VNC_HOST", &host)
            .env("VNC_PORT", port.to_string())
            .env("NODE_UUID", &uuid)
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        match &self.settings.log_dir {
            Some(dir) => {
                let path = dir.join(format!("{uuid}.log"));
                let f = std::fs::File::create(&path)
                    .map_err(|e| container_error(Self::NAME, format!("{}: {e}", path.display())))?;
                let f2 = f.try_clone().map_err(|e| container_error(Self::NAME, e))?;
                cmd.stdout(f).stderr(f2);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| container_error(Self::NAME, format!("cannot run {:?}: {e}", argv[0])))?;
        let pid = child.id().unwrap_or_default();
        tracing::info!(node = %node.uuid, pid, port, app, program = %argv[0], "console process started");
        if let Ok(mut g) = self.groups.lock() {
            g.insert(node.uuid, pid);
        }
        let r = Running { child, pid, port };
        // Wait for the VNC server as `wait_for_listen` does, and stop early when
        // the process ends.
        let deadline = tokio::time::Instant::now() + self.settings.wait_for_ready_timeout;
        let mut r = r;
        loop {
            if probe(&host, port).await {
                running.insert(node.uuid, r);
                return Ok((host, port));
            }
            if let Ok(Some(status)) = r.child.try_wait() {
                self.stop_running(node.uuid, r).await;
                return Err(container_error(
                    Self::NAME,
                    format!(
                        "the console process {:?} ended before its VNC server answered on {host}:{port} ({status})",
                        argv[0]
                    ),
                ));
            }
            if tokio::time::Instant::now() >= deadline {
                self.stop_running(node.uuid, r).await;
                return Err(container_error(
                    Self::NAME,
                    format!("RFB data not returned by {host}:{port}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn stop_container(&self, node: &Node) -> Result<(), DriverError> {
        let r = self.running.lock().await.remove(&node.uuid);
        if let Some(r) = r {
            self.stop_running(node.uuid, r).await;
        }
        Ok(())
    }

    async fn stop_all_containers(&self) -> Result<(), DriverError> {
        let all: Vec<(NodeId, Running)> = self.running.lock().await.drain().collect();
        for (node, r) in all {
            self.stop_running(node, r).await;
        }
        Ok(())
    }
}
