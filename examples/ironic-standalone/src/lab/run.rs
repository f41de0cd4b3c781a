//! `ironic lab`: the service plus a rack of simulated servers, enrolled and made
//! `available`, until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ironic_core::conductor::Conductor;
use ironic_core::{Ident, ProvisionState};

use crate::lab::conductors::{self, LabConductor};
use crate::lab::enroll::{self, NodePlan};
use crate::lab::images::{self, FileServer, LabFiles};
use crate::lab::machine::{self, AgentLaunch};
use crate::lab::model::Faults;
use crate::lab::rack::{Rack, RackConfig};
use crate::lab::service::{self, HttpServer};
use crate::progress::Progress;

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
    /// How many conductors run the service (1). More than one needs `database`:
    /// the lab's process is conductor 1, the others are `ironic serve` processes
    /// (see [`crate::lab::conductors`]).
    pub conductors: usize,
    /// A PostgreSQL database for the service (`postgres://USER@HOST:PORT/DB`,
    /// empty of nodes) instead of the in-memory store.
    pub database: Option<String>,
    /// The `ironic` binary the extra conductors run (default: this executable).
    pub conductor_binary: Option<PathBuf>,
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
            conductors: 1,
            database: None,
            conductor_binary: None,
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
    /// The noVNC proxy when `[vnc] enabled` (graphical consoles).
    pub vnc: Option<crate::vnc::VncProxy>,
    /// `<data_dir>/lab.lock`, locked for the lab's lifetime.
    _lock: std::fs::File,
    /// The Open vSwitch bridge the servers' NICs are plugged into (`--switch ovs`).
    pub bridge: Option<crate::lab::switch::LabBridge>,
    /// Conductors 2 to N (`--conductors N`), processes of their own.
    pub conductors: Vec<LabConductor>,
    /// Whether node actions go through the API, to the node's owner (several
    /// conductors), rather than straight to the lab's conductor.
    via_api: bool,
}

/// Conductors 2 to N on the database `url`, once it is known to hold no nodes.
async fn start_conductors(
    opts: &LabOptions,
    url: &str,
    api_url: &str,
    conductor: &Conductor,
) -> Result<Vec<LabConductor>, LabError> {
    let present = conductor
        .list_nodes(&Default::default())
        .await
        .map_err(|e| LabError::Conductor(e.to_string()))?;
    if !present.is_empty() {
        return Err(LabError::Missing(format!(
            "the database of --database already holds {} nodes; the lab enrolls its own: \
             give it an empty database (e.g. `dropdb ironic_lab; createdb ironic_lab`)",
            present.len()
        )));
    }
    let binary = match &opts.conductor_binary {
        Some(b) => b.clone(),
        None => std::env::current_exe().map_err(io("finding the ironic binary"))?,
    };
    let shared = conductors::Shared {
        dir: &opts.data_dir,
        database: url,
        api_url,
        automated_clean: opts.automated_clean,
    };
    let mut started = Vec::new();
    for k in 2..=opts.conductors {
        let port = match opts.api_listen.port() {
            0 => 0,
            p => p.saturating_add(u16::try_from(k - 1).unwrap_or(u16::MAX)),
        };
        let listen = SocketAddr::new(opts.api_listen.ip(), port);
        match conductors::spawn(&binary, &shared, k, listen, conductor).await {
            Ok(c) => {
                tracing::info!(host = %c.host, pid = c.pid, url = %c.url, log = %c.log.display(), "conductor started");
                started.push(c);
            }
            Err(e) => {
                futures::future::join_all(started.into_iter().map(LabConductor::stop)).await;
                return Err(e);
            }
        }
    }
    Ok(started)
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
        if opts.conductors == 0 {
            return Err(LabError::Missing("--conductors must be at least 1".into()));
        }
        if opts.conductors > 1 && opts.database.is_none() {
            return Err(LabError::Missing(format!(
                "--conductors {} needs --database postgres://USER@HOST:PORT/DB: several conductors share one PostgreSQL database",
                opts.conductors
            )));
        }
        if opts.database.is_some() && opts.ovs.is_some() {
            return Err(LabError::Missing(
                "--switch ovs runs with the lab's own store only, not with --database".into(),
            ));
        }
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
        if let Some(url) = &opts.database {
            cfg.storage.backend = crate::config::Backend::Postgres;
            cfg.storage.url = Some(url.clone());
            cfg.storage.data_dir = dir.join("conductor-1");
            cfg.conductor.host = Some(conductors::host(1));
            cfg.conductor.conductor_heartbeat_interval = conductors::HEARTBEAT_INTERVAL;
            cfg.conductor.heartbeat_timeout = conductors::HEARTBEAT_TIMEOUT;
            cfg.conductor.sync_local_state_interval = conductors::SYNC_LOCAL_STATE_INTERVAL;
        }
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
        let vnc = svc.vnc;
        let api_url = format!("http://{}", api.addr());
        tracing::info!(api = %api_url, "Ironic API and conductor running");
        let extra = match &opts.database {
            Some(url) => match start_conductors(opts, url, &api_url, &conductor).await {
                Ok(c) => c,
                Err(e) => {
                    api.shutdown().await;
                    conductor.shutdown().await;
                    return Err(e);
                }
            },
            None => Vec::new(),
        };

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
            vnc,
            _lock: lock,
            bridge,
            conductors: extra,
            via_api: opts.database.is_some(),
        })
    }

    /// `manage` then `provide` every node, concurrently; returns the names that failed
    /// with why.
    pub async fn make_available(&self, timeout: Duration) -> Vec<(String, String)> {
        self.make_available_reporting(timeout, &Progress::silent())
            .await
    }

    /// [`Lab::make_available`], counting the nodes that got there (or failed) in
    /// `progress`.
    pub async fn make_available_reporting(
        &self,
        timeout: Duration,
        progress: &Progress,
    ) -> Vec<(String, String)> {
        let started = Instant::now();
        progress.counted(
            "nodes available (manage, then provide: cleaning)",
            self.rack.servers.len() as u64,
        );
        let api = self.via_api.then(|| format!("http://{}", self.api.addr()));
        let jobs = self.rack.servers.iter().map(|s| {
            let conductor = self.conductor.clone();
            let name = s.name().to_string();
            let api = api.clone();
            async move {
                let ident = Ident::Name(name.clone());
                let drive = |verb: &'static str, target| {
                    let (conductor, ident, api, name) = (&conductor, &ident, &api, &name);
                    async move {
                        match api {
                            Some(api) => {
                                enroll::drive_via_api(api, name, verb).await?;
                                enroll::wait_for(conductor, ident, target, timeout).await
                            }
                            None => enroll::drive(conductor, ident, verb, target, timeout).await,
                        }
                    }
                };
                let r = async {
                    drive("manage", ProvisionState::Manageable).await?;
                    tracing::info!(node = %name, "manageable");
                    drive("provide", ProvisionState::Available).await?;
                    tracing::info!(node = %name, "available");
                    Ok::<(), String>(())
                }
                .await;
                progress.inc(r.is_ok());
                r.err().map(|e| (name, e))
            }
        });
        let failures: Vec<_> = futures::future::join_all(jobs)
            .await
            .into_iter()
            .flatten()
            .collect();
        progress.finish();
        tracing::info!(
            ready = self.rack.servers.len() - failures.len(),
            failed = failures.len(),
            secs = started.elapsed().as_secs_f32(),
            "lab nodes made available"
        );
        failures
    }

    /// Stops the API, the conductors, the machines (agents) and the BMCs.
    pub async fn shutdown(self) {
        self.api.shutdown().await;
        drop(self.vnc);
        futures::future::join_all(self.conductors.into_iter().map(LabConductor::stop)).await;
        self.conductor.shutdown().await;
        self.rack.shutdown().await;
        drop(self.boot_servers);
        self.file_server.shutdown().await;
        drop(self.bridge);
    }
}
