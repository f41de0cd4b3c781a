//! `ironic lab`: the service plus a rack of simulated servers, enrolled and made
//! `available`, until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ironic_core::conductor::Conductor;
use ironic_core::{Ident, ProvisionState};

use crate::lab::enroll::{self, NodePlan};
use crate::lab::images::{self, FileServer, LabFiles};
use crate::lab::machine::{self, AgentLaunch};
use crate::lab::model::Faults;
use crate::lab::rack::{Rack, RackConfig};
use crate::lab::service::{self, HttpServer};

/// What `ironic lab` starts.
#[derive(Clone, Debug)]
pub struct LabOptions {
    /// Number of simulated servers.
    pub servers: usize,
    /// Share of Redfish BMCs (the rest IPMI).
    pub redfish_ratio: f64,
    /// The lab's own directory (disks, images, logs); reset on every start.
    pub data_dir: PathBuf,
    /// Where the Ironic API listens.
    pub api_listen: SocketAddr,
    /// Faults per server index.
    pub faults: Vec<(usize, Faults)>,
    /// Run the real agent in the simulated machines (false: BMCs only).
    pub agents: bool,
    /// Automated cleaning on `provide` (boots every machine into the agent once).
    pub automated_clean: bool,
    /// How long to wait for every node to become `available`.
    pub ready_timeout: Duration,
    /// `--switch ovs`: wire every NIC to a new Open vSwitch bridge over this OVSDB
    /// address and isolate the nodes with the `switch` network interface.
    pub ovs: Option<String>,
}

impl LabOptions {
    /// Defaults: 4 servers, half Redfish, API on 127.0.0.1:6385, agents and cleaning on.
    pub fn new(data_dir: PathBuf) -> LabOptions {
        LabOptions {
            servers: 4,
            redfish_ratio: 0.5,
            data_dir,
            api_listen: SocketAddr::from(([127, 0, 0, 1], 6385)),
            faults: Vec::new(),
            agents: true,
            automated_clean: true,
            ready_timeout: Duration::from_secs(600),
            ovs: None,
        }
    }
}

/// Why the lab could not start.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The service did not start.
    #[error(transparent)]
    Service(#[from] crate::server::ServeError),
    /// The conductor refused something.
    #[error("{0}")]
    Conductor(String),
    /// A required part is missing.
    #[error("{0}")]
    Missing(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
    let what = what.into();
    move |source| LabError::Io { what, source }
}

/// A running lab.
#[derive(Debug)]
pub struct Lab {
    /// The conductor.
    pub conductor: Conductor,
    /// The rack.
    pub rack: Rack,
    /// The generated files.
    pub files: LabFiles,
    /// The server of those files.
    pub file_server: FileServer,
    /// How each server was enrolled, in rack order.
    pub plans: Vec<NodePlan>,
    /// The Ironic API.
    pub api: HttpServer,
    /// The boot servers (the boot files are served on the API's port under `/boot`).
    pub boot_servers: crate::boot::BootServers,
    /// The boot files' base URL.
    pub boot_url: String,
    /// `<data_dir>/lab.lock`, locked for the lab's lifetime.
    _lock: std::fs::File,
    /// The Open vSwitch bridge the servers' NICs are plugged into (`--switch ovs`).
    pub bridge: Option<crate::lab::switch::LabBridge>,
}

/// Takes `<dir>/lab.lock` (an exclusive `flock`, released by the kernel when the
/// process ends however it ends): one lab per directory at a time.
fn lock_lab_dir(dir: &std::path::Path) -> Result<std::fs::File, LabError> {
    use std::io::{Read, Seek, Write};
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let path = dir.join("lab.lock");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io(format!("opening {}", path.display())))?;
    if rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut holder = String::new();
        let _ = f.read_to_string(&mut holder);
        return Err(LabError::Missing(format!(
            "another ironic lab (pid {}) is using {}: stop it first, or pick another --data-dir",
            holder.trim(),
            dir.display()
        )));
    }
    let _ = f.set_len(0);
    let _ = f.rewind();
    let _ = writeln!(f, "{}", std::process::id());
    Ok(f)
}

impl Lab {
    /// Starts everything and enrolls the servers (in `enroll`; see [`Lab::make_available`]).
    pub async fn start(opts: &LabOptions) -> Result<Lab, LabError> {
        let dir = &opts.data_dir;
        let lock = lock_lab_dir(dir)?;
        // A lab killed before it could stop its agents (kill -9, a crash) left them
        // running: end them before starting new ones on the same disks.
        let logs = dir.join("logs");
        let ended = tokio::task::spawn_blocking(move || machine::reap_stale_agents(&logs))
            .await
            .unwrap_or_default();
        if !ended.is_empty() {
            tracing::warn!(agents = ?ended, "ended agents left running by a previous lab on this directory");
        }
        if dir.join("disks").exists() {
            std::fs::remove_dir_all(dir.join("disks")).map_err(io("clearing the old lab disks"))?;
        }
        let files = images::generate(&dir.join("images")).map_err(io("writing the lab images"))?;
        let file_server =
            FileServer::start(SocketAddr::from(([127, 0, 0, 1], 0)), files.dir.clone())
                .await
                .map_err(io("starting the image server"))?;
        let mut cfg = service::config(opts.api_listen, opts.automated_clean);
        let mut bridge = match &opts.ovs {
            Some(db) => {
                let b = crate::lab::switch::LabBridge::create(db).map_err(LabError::Missing)?;
                b.configure(&mut cfg);
                tracing::info!(bridge = %b.name, "Open vSwitch bridge created: the servers' NICs are its ports");
                Some(b)
            }
            None => None,
        };
        let svc = service::start(&cfg).await?;
        let conductor = svc.conductor;
        let api = svc.api;
        let boot_servers = svc.boot_servers;
        let boot_url = svc.boot_url;
        let api_url = format!("http://{}", api.addr());
        tracing::info!(api = %api_url, "Ironic API and conductor running");

        let mut rack_cfg = RackConfig::new(opts.servers, dir.join("disks"));
        rack_cfg.redfish_ratio = opts.redfish_ratio;
        rack_cfg.faults = opts.faults.clone();
        let plans: Vec<NodePlan> = (0..opts.servers)
            .map(|i| enroll::plan(&conductor, rack_cfg.kind_of(i)))
            .collect();
        // Machines run the agent only when some node is deployed by it.
        let agent = if opts.agents && plans.iter().any(|p| p.uses_bmc) {
            let binary = machine::ensure_agent_binary().map_err(LabError::Missing)?;
            Some(AgentLaunch {
                binary,
                api_url,
                log_dir: dir.join("logs"),
            })
        } else {
            None
        };
        let rack = Rack::start(&rack_cfg, agent)
            .await
            .map_err(io("starting the simulated servers"))?;

        if let Some(b) = &mut bridge {
            for s in &rack.servers {
                b.add_server(&s.server.spec().macs)
                    .map_err(LabError::Missing)?;
            }
        }
        for (i, (s, plan)) in rack.servers.iter().zip(&plans).enumerate() {
            if !plan.uses_bmc {
                tracing::warn!(server = %s.name(), "this build lacks the {:?} driver, a boot or the direct deploy interface: enrolled with fake-hardware", s.kind);
            }
            let wiring: Vec<_> = (0..s.server.spec().macs.len())
                .filter_map(|j| bridge.as_ref().and_then(|b| b.wiring(i, j)))
                .collect();
            enroll::create(&conductor, s, plan, &file_server, &wiring)
                .await
                .map_err(|e| LabError::Conductor(format!("enrolling {}: {e}", s.name())))?;
            tracing::info!(node = %s.name(), driver = %plan.driver, boot = %plan.boot, deploy = %plan.deploy, bmc = %s.bmc, "enrolled");
        }
        Ok(Lab {
            conductor,
            rack,
            files,
            file_server,
            plans,
            api,
            boot_servers,
            boot_url,
            _lock: lock,
            bridge,
        })
    }

    /// `manage` then `provide` every node, concurrently; returns the names that failed
    /// with why.
    pub async fn make_available(&self, timeout: Duration) -> Vec<(String, String)> {
        let started = Instant::now();
        let jobs = self.rack.servers.iter().map(|s| {
            let conductor = self.conductor.clone();
            let name = s.name().to_string();
            async move {
                let ident = Ident::Name(name.clone());
                let r = async {
                    enroll::drive(
                        &conductor,
                        &ident,
                        "manage",
                        ProvisionState::Manageable,
                        timeout,
                    )
                    .await?;
                    tracing::info!(node = %name, "manageable");
                    enroll::drive(
                        &conductor,
                        &ident,
                        "provide",
                        ProvisionState::Available,
                        timeout,
                    )
                    .await?;
                    tracing::info!(node = %name, "available");
                    Ok::<(), String>(())
                }
                .await;
                r.err().map(|e| (name, e))
            }
        });
        let failures: Vec<_> = futures::future::join_all(jobs)
            .await
            .into_iter()
            .flatten()
            .collect();
        tracing::info!(
            ready = self.rack.servers.len() - failures.len(),
            failed = failures.len(),
            secs = started.elapsed().as_secs_f32(),
            "lab nodes made available"
        );
        failures
    }

    /// Stops the API, the conductor, the machines (agents) and the BMCs.
    pub async fn shutdown(self) {
        self.api.shutdown().await;
        self.conductor.shutdown().await;
        self.rack.shutdown().await;
        drop(self.boot_servers);
        self.file_server.shutdown().await;
        drop(self.bridge);
    }
}
