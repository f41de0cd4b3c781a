//! The simulated machine behind a BMC: what "powered on" means.
//!
//! A [`Machine`] follows its [`SimServer`]'s power status. Booting from the network (PXE,
//! UEFI HTTP) or from a virtual CD starts the real `ironic-agent` as a child process, with
//! the server's disk file as its root device, a loopback listen address and the server's
//! MACs; powering off kills it, a reset restarts it. Booting from the disk with an image on
//! it counts as "instance running" (logged, no process). The agent exiting by itself with
//! success is the ramdisk powering the machine off.
//!
//! Agents are tied to the process that started them: each gets `--parent-pid` (it
//! exits when its parent dies, even by `kill -9`), runs in its own process group,
//! and is recorded in `<log_dir>/<server>-agent.pid`, so that a lab started again
//! on the same directory ends whatever its predecessor left behind
//! ([`reap_stale_agents`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::model::{BootSource, Power, PowerStatus, SimServer};

/// Name of the agent binary.
pub const AGENT_BINARY: &str = "ironic-agent";

/// Finds the `ironic-agent` binary: `$IRONIC_AGENT_BIN`, next to the current executable
/// (or one directory up, for test binaries in `target/*/deps`), then `PATH`.
pub fn find_agent_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("IRONIC_AGENT_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("IRONIC_AGENT_BIN={} is not a file", p.display()))
        };
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join(AGENT_BINARY));
        if let Some(up) = dir.parent() {
            candidates.push(up.join(AGENT_BINARY));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join(AGENT_BINARY)));
    }
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        "the `ironic-agent` binary was not found next to this executable nor on PATH: build it with \
         `cargo build -p ironic-deploy-agent --bin ironic-agent` (or set IRONIC_AGENT_BIN)"
            .to_string()
    })
}

/// [`find_agent_binary`], and when it is missing under `cargo run` (which sets `CARGO`
/// and `CARGO_MANIFEST_DIR`), builds it with the same profile first, so that
/// `cargo run -p ironic-standalone --bin ironic -- lab` works on a fresh checkout.
pub fn ensure_agent_binary() -> Result<PathBuf, String> {
    match find_agent_binary() {
        Ok(p) => Ok(p),
        Err(not_found) => {
            let (Some(cargo), Some(dir)) = (
                std::env::var_os("CARGO"),
                std::env::var_os("CARGO_MANIFEST_DIR"),
            ) else {
                return Err(not_found);
            };
            let release = std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(|d| d.ends_with("release")))
                .unwrap_or(false);
            tracing::info!(
                "building the ironic-agent binary (cargo build -p ironic-deploy-agent --bin ironic-agent)"
            );
            let mut cmd = std::process::Command::new(cargo);
            cmd.current_dir(dir).args([
                "build",
                "-p",
                "ironic-deploy-agent",
                "--bin",
                AGENT_BINARY,
            ]);
            if release {
                cmd.arg("--release");
            }
            match cmd.status() {
                Ok(s) if s.success() => find_agent_binary(),
                Ok(s) => Err(format!("building ironic-agent failed ({s}); {not_found}")),
                Err(e) => Err(format!(
                    "cannot run cargo to build ironic-agent: {e}; {not_found}"
                )),
            }
        }
    }
}

/// How machines start the agent.
#[derive(Clone, Debug)]
pub struct AgentLaunch {
    /// The `ironic-agent` binary.
    pub binary: PathBuf,
    /// The Ironic API the agent looks itself up in and heartbeats to.
    pub api_url: String,
    /// Where each agent's output goes (`<server>-agent.log`).
    pub log_dir: PathBuf,
}

impl AgentLaunch {
    /// The command line of one server's agent: its disk as the root device, its MACs,
    /// a loopback command API on any free port, a fresh state directory (a ramdisk keeps
    /// nothing across boots), and `--power-off exit` (the ramdisk's power off ends the
    /// process instead of the host).
    pub fn command(&self, server: &SimServer, state_dir: &Path) -> Command {
        let spec = server.spec();
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--api-url")
            .arg(&self.api_url)
            .arg("--parent-pid")
            .arg(std::process::id().to_string())
            .arg("--root-device")
            .arg(&spec.disk)
            .args(["--listen", "127.0.0.1:0", "--advertise-host", "127.0.0.1"])
            .args(["--power-off", "exit", "--cmdline", "/dev/null"])
            .arg("--state-dir")
            .arg(state_dir);
        for mac in &spec.macs {
            cmd.arg("--mac").arg(mac.to_string());
        }
        cmd
    }
}

/// Where a server's running agent is recorded: `PID STARTTIME` (start time in clock
/// ticks since boot, from `/proc/PID/stat`, so a recycled PID is never mistaken for it).
pub fn agent_pid_file(log_dir: &Path, server: &str) -> PathBuf {
    log_dir.join(format!("{server}-agent.pid"))
}

/// The start time of a live (not zombie) process, from `/proc/PID/stat`.
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may contain spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is the state (field 3), so field 22 (starttime) is fields[19].
    if fields.first().is_some_and(|s| *s == "Z" || *s == "X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether `pid` is a live process (zombies count as dead).
pub fn process_alive(pid: u32) -> bool {
    process_start_time(pid).is_some()
}

/// Records `pid` as the running agent of `server` (see [`agent_pid_file`]).
pub fn record_agent(log_dir: &Path, server: &str, pid: u32) {
    let Some(start) = process_start_time(pid) else {
        return;
    };
    if let Err(e) = std::fs::write(agent_pid_file(log_dir, server), format!("{pid} {start}\n")) {
        tracing::warn!(server, error = %e, "cannot record the agent's pid");
    }
}

fn forget_agent(log_dir: &Path, server: &str) {
    let _ = std::fs::remove_file(agent_pid_file(log_dir, server));
}

/// Ends the agents that a previous lab on `log_dir` left running (it was killed
/// before it could stop them): each recorded agent still alive with the same start
/// time and an `ironic-agent` command line gets SIGTERM, then SIGKILL after a
/// second, with its whole process group. Returns the PIDs ended. Call it only while
/// holding the lab directory (no other lab uses `log_dir`).
pub fn reap_stale_agents(log_dir: &Path) -> Vec<u32> {
    use rustix::process::{Pid, Signal, kill_process_group};
    let Ok(entries) = std::fs::read_dir(log_dir) else {
        return Vec::new();
    };
    let mut ended = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with("-agent.pid"))
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let _ = std::fs::remove_file(&path);
        let mut it = text.split_whitespace().map(str::parse::<u64>);
        let (Some(Ok(pid)), Some(Ok(start))) = (it.next(), it.next()) else {
            continue;
        };
        let Ok(pid) = u32::try_from(pid) else {
            continue;
        };
        let ours = process_start_time(pid) == Some(start)
            && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                c.windows(AGENT_BINARY.len())
                    .any(|w| w == AGENT_BINARY.as_bytes())
            });
        let Some(group) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
            continue;
        };
        if !ours {
            continue;
        }
        tracing::warn!(pid, file = %path.display(), "ending an agent left running by a previous lab");
        let _ = kill_process_group(group, Signal::TERM);
        // A stopped process acts on SIGTERM only once continued.
        let _ = kill_process_group(group, Signal::CONT);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while process_alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if process_alive(pid) {
            let _ = kill_process_group(group, Signal::KILL);
        }
        ended.push(pid);
    }
    ended
}

/// What the machine is doing, for progress displays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MachineState {
    /// Powered off.
    Off,
    /// Running the deploy agent (process id).
    Agent(u32),
    /// Booted the instance from its disk.
    Instance,
    /// On, with nothing bootable (or in firmware setup).
    Idle,
}

/// A running machine; stops (killing its agent) when dropped or on [`Machine::shutdown`].
#[derive(Debug)]
pub struct Machine {
    state: Arc<Mutex<MachineState>>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Machine {
    /// Starts following `server`.
    pub fn spawn(server: SimServer, launch: AgentLaunch) -> Machine {
        let state = Arc::new(Mutex::new(MachineState::Off));
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(server, launch, state.clone(), cancel.clone()));
        Machine {
            state,
            cancel,
            task: Some(task),
        }
    }

    /// What the machine is doing now.
    pub fn state(&self) -> MachineState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops following the server and kills its agent.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Whether a disk file holds a bootable image: an MBR boot signature, or a GPT header.
pub fn disk_is_bootable(disk: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut f = match std::fs::File::open(disk) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut head = [0u8; 520];
    let mut n = 0;
    while n < head.len() {
        let r = f.read(&mut head[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    let mbr = n >= 512 && head[510] == 0x55 && head[511] == 0xAA;
    let gpt = n >= 520 && &head[512..520] == b"EFI PART";
    Ok(mbr || gpt)
}

fn set(state: &Mutex<MachineState>, s: MachineState) {
    *state.lock().unwrap_or_else(|e| e.into_inner()) = s;
}

async fn stop(child: &mut Option<Child>, name: &str, log_dir: &Path) {
    if let Some(mut c) = child.take() {
        let _ = c.start_kill();
        let _ = c.wait().await;
        forget_agent(log_dir, name);
        tracing::info!(server = %name, "agent stopped");
    }
}

async fn run(
    server: SimServer,
    launch: AgentLaunch,
    state: Arc<Mutex<MachineState>>,
    cancel: CancellationToken,
) {
    let name = server.spec().name.clone();
    let mut rx = server.subscribe();
    let mut seen_boots = rx.borrow().boots;
    let mut child: Option<Child> = None;
    loop {
        let status: PowerStatus = rx.borrow_and_update().clone();
        if status.power == Power::Off {
            stop(&mut child, &name, &launch.log_dir).await;
            set(&state, MachineState::Off);
        } else if status.boots != seen_boots {
            stop(&mut child, &name, &launch.log_dir).await;
            match status.booted_from.clone().unwrap_or(BootSource::Firmware) {
                BootSource::Network | BootSource::VirtualMedia(_) => {
                    match start_agent(&server, &launch) {
                        Ok(c) => {
                            set(&state, MachineState::Agent(c.id().unwrap_or(0)));
                            child = Some(c);
                        }
                        Err(e) => {
                            tracing::error!(server = %name, error = %e, "could not start the agent");
                            set(&state, MachineState::Idle);
                        }
                    }
                }
                BootSource::Disk => match disk_is_bootable(server.disk()) {
                    Ok(true) => {
                        tracing::info!(server = %name, disk = %server.disk().display(), "booted from disk: instance running");
                        set(&state, MachineState::Instance);
                    }
                    Ok(false) => {
                        tracing::info!(server = %name, "no bootable disk: idle");
                        set(&state, MachineState::Idle);
                    }
                    Err(e) => {
                        tracing::warn!(server = %name, error = %e, "cannot read the disk file");
                        set(&state, MachineState::Idle);
                    }
                },
                BootSource::Firmware => set(&state, MachineState::Idle),
            }
        }
        seen_boots = status.boots;
        let exited = async {
            match child.as_mut() {
                Some(c) => c.wait().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => break,
            changed = rx.changed() => if changed.is_err() { break },
            code = exited => {
                child = None;
                forget_agent(&launch.log_dir, &name);
                match code {
                    Some(c) if c.success() => {
                        tracing::info!(server = %name, "agent exited: the ramdisk powered the machine off");
                        server.os_halted();
                    }
                    Some(c) if c.code().is_none() => {
                        // Killed by a signal: someone killed it.
                        tracing::info!(server = %name, status = %c, "agent killed; the machine hangs until reset");
                        set(&state, MachineState::Idle);
                    }
                    other => {
                        tracing::warn!(server = %name, status = ?other, "agent failed; the machine hangs until reset");
                        set(&state, MachineState::Idle);
                    }
                }
            }
        }
    }
    stop(&mut child, &name, &launch.log_dir).await;
}

fn start_agent(server: &SimServer, launch: &AgentLaunch) -> std::io::Result<Child> {
    let name = &server.spec().name;
    std::fs::create_dir_all(&launch.log_dir)?;
    let log_path = launch.log_dir.join(format!("{name}-agent.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let state_dir = launch.log_dir.join(format!("{name}-agent-state"));
    if state_dir.exists() {
        std::fs::remove_dir_all(&state_dir)?;
    }
    std::fs::create_dir_all(&state_dir)?;
    let mut cmd = launch.command(server, &state_dir);
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: Ctrl-C in the lab's terminal reaches the lab only,
        // which stops the agents in order; a later lab can end the whole group.
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd.spawn()?;
    if let Some(pid) = child.id() {
        record_agent(&launch.log_dir, name, pid);
    }
    tracing::info!(server = %name, pid = child.id().unwrap_or(0), log = %log_path.display(), "booted the deploy ramdisk: agent started");
    Ok(child)
}
