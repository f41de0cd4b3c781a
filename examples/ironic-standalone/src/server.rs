//! Wiring: store + driver registry + conductor + REST API in one process.
//!
//! Adding a driver crate is one `register` call in [`build_registry`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use std::collections::BTreeMap;

use ironic_core::InterfaceRegistry;
use ironic_core::conductor::{Conductor, ConductorConfig};
use ironic_core::model::InterfaceType;
use ironic_core::store::{MemoryStore, PostgresOptions, PostgresStore, SqliteStore, Store};
use tokio::net::TcpListener;

use crate::api::{self, ApiSettings, ApiState};
use crate::auth::Htpasswd;
use crate::boot::{BootPlan, BootServers};
use crate::config::{AuthStrategy, Backend, Config, DEFAULT_HARDWARE_TYPES, default_enabled, secs};

/// Why `ironic` could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address is taken.
    #[error(
        "cannot listen on {addr}: the address is already in use (another ironic or service on this port?); pick another with --listen or [api] listen"
    )]
    AddrInUse {
        /// The address.
        addr: SocketAddr,
    },
    /// Binding failed otherwise.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory or store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(String),
    /// The htpasswd file is bad.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthFileError),
    /// `[drivers]` enables something that does not exist or cannot work.
    #[error("invalid [drivers] configuration: {0}")]
    Drivers(String),
    /// The boot servers (`[boot]`) could not start.
    #[error("{0}")]
    Boot(String),
    /// The conductor did not start.
    #[error("cannot start the conductor: {0}")]
    Conductor(String),
    /// Serving failed.
    #[error("server error: {0}")]
    Serve(std::io::Error),
    /// The noVNC proxy (`[vnc] enabled`) could not start.
    #[error("cannot start the noVNC proxy: {0}")]
    Vnc(#[from] crate::vnc::VncError),
}

/// Every implementation this build has, registered over `[boot]` and `[fake]`,
/// with the names that exist but cannot serve this configuration and why.
fn available_registry(
    cfg: &Config,
    boot: &BootPlan,
) -> (
    InterfaceRegistry,
    BTreeMap<(InterfaceType, &'static str), String>,
) {
    let mut reg = InterfaceRegistry::with_noop();
    let mut unavailable = BTreeMap::new();
    if cfg.fake.enabled {
        use ironic_core::fake::{Delay, FakeConfig};
        // Config::check validated the syntax; a bad value cannot reach here.
        let d = |s: &str| Delay::parse(s).unwrap_or_default();
        let fake = {
            let mut v = FakeConfig::default();
            v.power_delay = d(&cfg.fake.power_delay);
            v.management_delay = d(&cfg.fake.management_delay);
            v.boot_delay = d(&cfg.fake.boot_delay);
            v.deploy_delay = d(&cfg.fake.deploy_delay);
            v.inspect_delay = d(&cfg.fake.inspect_delay);
            v.raid_delay = d(&cfg.fake.raid_delay);
            v.bios_delay = d(&cfg.fake.bios_delay);
            v
        };
        // The returned control handle (fault injection) is for ironic-core's own tests.
        let _control = ironic_core::fake::register(&mut reg, fake);
    }
    // The real hardware types: IPMI (native RMCP+) and Redfish (power, management,
    // virtual-media boot, inspection, BIOS, RAID, firmware), and the agent's `direct`
    // deploy (plus `agent` inspection).
    ironic_drivers_ipmi::register(&mut reg, ironic_drivers_ipmi::IpmiConfig::default());
    // Virtual media boots without a prebuilt ISO get one built per node with its
    // kernel parameters, served by the HTTP boot server (Ironic's prepare_deploy_iso).
    let isos = crate::vmedia::VmediaIsos::new(
        boot.files.clone(),
        crate::vmedia::VmediaSettings {
            dir: cfg.storage.data_dir.join("vmedia"),
            http_url: boot.http_url.clone(),
            default_kernel: cfg.boot.deploy_kernel.clone(),
            default_ramdisk: cfg.boot.deploy_ramdisk.clone(),
            console: cfg.boot.console.clone(),
            kernel_append_params: cfg.boot.kernel_append_params.clone(),
        },
    );
    ironic_drivers_redfish::register_with_boot_iso(
        &mut reg,
        cfg.redfish.driver_config(),
        std::sync::Arc::new(isos),
    );
    // Graphical consoles over the `[vnc]` container provider (one shared by both).
    match cfg.vnc.consoles() {
        Ok(consoles) => {
            ironic_core::graphical::register_fake_graphical(&mut reg, consoles.clone());
            ironic_drivers_redfish::register_graphical_console(
                &mut reg,
                consoles,
                cfg.redfish.driver_config().default_auth_type,
            );
        }
        Err(e) => {
            for name in ["fake-graphical", "redfish-graphical"] {
                unavailable.insert((InterfaceType::Console, name), e.clone());
            }
        }
    }
    // (Config::check validated [inspector]; an error here means it was skipped)
    let inspect = crate::network::inspect_config(cfg).unwrap_or_else(|e| {
        tracing::error!(error = %e, "[inspector] ignored");
        ironic_deploy_agent::AgentInspectConfig::default()
    });
    ironic_deploy_agent::register_with(
        &mut reg,
        ironic_deploy_agent::AgentConfig::default(),
        inspect,
    );
    // Network boot over the boot servers of `[boot]`, and the flat network.
    let b = &cfg.boot;
    let http_url = boot.http_url.clone();
    let mut pxe = ironic_boot_pxe::PxeConfig::new(
        boot.files.clone(),
        boot.tftp_address.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
        http_url.clone().unwrap_or_default(),
    );
    pxe.bios_nbp = b.bios_nbp.clone();
    pxe.uefi_nbp = b.uefi_nbp.clone();
    pxe.uefi_http_nbp = b.uefi_http_nbp.clone();
    pxe.kernel_append_params = b.kernel_append_params.clone();
    pxe.console = b.console.clone();
    pxe.default_deploy_kernel = b.deploy_kernel.clone();
    pxe.default_deploy_ramdisk = b.deploy_ramdisk.clone();
    pxe.dhcp = boot.dhcp.clone();
    ironic_boot_pxe::register(&mut reg, pxe);
    if http_url.is_none() {
        let why = format!(
            "the API listens on the wildcard address {}: set [boot] address (this host's address on the provisioning network) or [boot.http] url",
            cfg.api.listen
        );
        for name in ["ipxe", "pxe", "http"] {
            unavailable.insert((InterfaceType::Boot, name), why.clone());
        }
    }
    if !b.tftp.enabled {
        unavailable.insert(
            (InterfaceType::Boot, "pxe"),
            "the pxe boot interface loads everything over TFTP: set [boot.tftp] enabled = true"
                .into(),
        );
    } else if boot.tftp_address.is_none() {
        unavailable.insert(
            (InterfaceType::Boot, "pxe"),
            "[boot.tftp] listens on a wildcard address: set [boot] address so nodes can reach it"
                .into(),
        );
    }
    if !cfg.fake.enabled {
        for &t in InterfaceType::ALL {
            unavailable.insert((t, "fake"), "[fake] enabled = false".into());
        }
    }
    // Tenant isolation: the `switch` network interface over the configured switches
    // (Config::check validated them; nothing here contacts a switch).
    if crate::network::enabled(cfg) {
        match crate::network::build(cfg) {
            Ok(sn) => {
                // With this process's DHCP server, the switch interface also keeps
                // the `flat` interface's reservations: a node's MACs get an address
                // (and boot files) only while it is on a provisioning-side network.
                let sn = match &boot.dhcp {
                    Some(dhcp) => {
                        sn.with_dhcp(Arc::new(ironic_boot_pxe::DhcpNetwork::new(dhcp.clone())))
                    }
                    None => sn,
                };
                reg.register_network(ironic_core::switch::SwitchNetwork::NAME, Arc::new(sn));
            }
            Err(e) => {
                unavailable.insert((InterfaceType::Network, "switch"), e);
            }
        }
    }
    (reg, unavailable)
}

/// The driver registry of `ironic serve` and `ironic lab`: every implementation
/// this build has, reduced to what `[drivers]` enables (Ironic's
/// `enabled_hardware_types`, `enabled_<type>_interfaces`,
/// `default_<type>_interface`), with the boot interfaces serving from `boot`.
///
/// An unset list enables the defaults that this configuration can serve; a list
/// naming something unknown or unavailable (e.g. `pxe` without TFTP) is an error
/// naming the key, the name and why. As Ironic's conductor does at start, every
/// enabled hardware type must have a default for every interface type.
pub fn build_registry(cfg: &Config, boot: &BootPlan) -> Result<InterfaceRegistry, ServeError> {
    let (mut reg, unavailable) = available_registry(cfg, boot);
    let drivers = &cfg.drivers;
    let err = |m: String| ServeError::Drivers(m);
    // Hardware types.
    let known: Vec<String> = reg
        .hardware_types()
        .iter()
        .map(|h| h.name.to_owned())
        .collect();
    let hw: Vec<String> = match &drivers.enabled_hardware_types {
        Some(list) => {
            for n in list {
                if !known.contains(n) {
                    return Err(err(format!(
                        "drivers.enabled_hardware_types names {n:?}, which this build does not have ({}){}",
                        known.join(", "),
                        if n == "fake-hardware" || n == "manual-management" {
                            " : it needs [fake] enabled = true"
                        } else {
                            ""
                        }
                    )));
                }
            }
            list.clone()
        }
        None => DEFAULT_HARDWARE_TYPES
            .iter()
            .map(|s| s.to_string())
            .filter(|n| known.contains(n))
            .collect(),
    };
    reg.retain_hardware_types(|n| hw.iter().any(|h| h == n));
    // Interfaces.
    let mut dropped = Vec::new();
    for &t in InterfaceType::ALL {
        let names = reg.interface_names(t);
        let enabled: Vec<String> = match drivers.enabled(t) {
            Some(list) => {
                for n in list {
                    if let Some(why) = unavailable.get(&(t, n.as_str())) {
                        return Err(err(format!(
                            "drivers.enabled_{t}_interfaces names {n:?}, which cannot work here: {why}"
                        )));
                    }
                    if !names.contains(n) {
                        return Err(err(format!(
                            "drivers.enabled_{t}_interfaces names {n:?}, which this build does not have ({})",
                            names.join(", ")
                        )));
                    }
                }
                list.to_vec()
            }
            None => default_enabled(t)
                .iter()
                .filter(|n| names.iter().any(|x| x == *n))
                .filter(|n| match unavailable.get(&(t, **n)) {
                    Some(why) => {
                        dropped.push(format!("{t} interface {n:?} is not enabled: {why}"));
                        false
                    }
                    None => true,
                })
                .map(|s| s.to_string())
                .collect(),
        };
        reg.retain_interfaces(t, |n| enabled.iter().any(|e| e == n));
        if let Some(d) = drivers.default_for(t) {
            if let Some(why) = unavailable.get(&(t, d)) {
                return Err(err(format!(
                    "drivers.default_{t}_interface = {d:?} cannot work here: {why}"
                )));
            }
            reg.set_default_interface(t, d).map_err(|e| {
                err(format!(
                    "drivers.default_{t}_interface = {d:?} is not enabled: {}",
                    e.message()
                ))
            })?;
        }
    }
    reg.check_defaults().map_err(|e| {
        let mut m = format!(
            "{} (check [drivers] enabled_hardware_types and the enabled_*_interfaces lists)",
            e.message()
        );
        for d in &dropped {
            m.push_str("; ");
            m.push_str(d);
        }
        err(m)
    })?;
    for d in &dropped {
        tracing::info!("{d}");
    }
    Ok(reg)
}

/// The conductor settings from `[conductor]`.
pub fn conductor_config(cfg: &Config) -> ConductorConfig {
    let c = &cfg.conductor;
    {
        let mut v = ConductorConfig::default();
        v.host = cfg.host();
        v.conductor_group = c.conductor_group.to_lowercase();
        v.api_url = Some(cfg.api_url());
        v.url = Some(cfg.internal_url());
        v.takes_work = c.role != crate::config::Role::Api;
        v.settings = c.settings.clone();
        v.max_concurrent_operations = c.max_concurrent_operations;
        v.automated_clean = c.automated_clean;
        v.allow_provisioning_in_maintenance = c.allow_provisioning_in_maintenance;
        v.power_state_sync_interval = secs(c.power_state_sync_interval);
        v.power_state_sync_max_retries = c.power_state_sync_max_retries;
        v.power_failure_recovery_interval = secs(c.power_failure_recovery_interval);
        v.check_provision_state_interval = secs(c.check_provision_state_interval);
        v.deploy_callback_timeout = secs(c.deploy_callback_timeout);
        v.clean_callback_timeout = secs(c.clean_callback_timeout);
        v.inspect_wait_timeout = secs(c.inspect_wait_timeout);
        v.rescue_callback_timeout = secs(c.rescue_callback_timeout);
        v.service_callback_timeout = secs(c.service_callback_timeout);
        v.power_state_change_timeout = secs(c.power_state_change_timeout);
        v.node_locked_retry_attempts = c.node_locked_retry_attempts;
        v.node_locked_retry_interval = secs(c.node_locked_retry_interval);
        v.conductor_heartbeat_interval = secs(c.conductor_heartbeat_interval);
        v.heartbeat_timeout = secs(c.heartbeat_timeout);
        v.sync_local_state_interval = secs(c.sync_local_state_interval);
        v.forget_offline_after = secs(c.forget_offline_after);
        v.hash_ring_partitions = 1 << c.hash_partition_exponent;
        v.node_history_max_entries = c.node_history_max_entries;
        v.state_budgets = c
            .state_budgets
            .iter()
            .map(|(s, b)| (*s, secs(*b)))
            .collect();
        v.state_budget_check_interval = secs(c.state_budget_check_interval);
        v.console_session_check_interval = secs(cfg.vnc.expire_console_session_interval);
        v
    }
}

/// Open the configured store.
pub async fn open_store(cfg: &Config) -> Result<Arc<dyn Store>, ServeError> {
    match cfg.storage.backend {
        Backend::Memory => Ok(Arc::new(MemoryStore::new())),
        Backend::Postgres => {
            // Config::check made sure there is a postgres:// URL.
            let url = cfg.storage.url.as_deref().unwrap_or_default();
            let mut options = PostgresOptions::default();
            options.max_connections = cfg.storage.max_connections;
            let store = PostgresStore::connect_with(url, options)
                .await
                .map_err(|e| ServeError::Store(e.to_string()))?;
            Ok(Arc::new(store))
        }
        Backend::Sqlite => {
            std::fs::create_dir_all(&cfg.storage.data_dir).map_err(|e| {
                ServeError::Store(format!(
                    "cannot create data directory {}: {e}",
                    cfg.storage.data_dir.display()
                ))
            })?;
            let path = cfg.storage.data_dir.join("ironic.sqlite");
            let store: Arc<dyn Store> = Arc::new(
                SqliteStore::open(&path)
                    .await
                    .map_err(|e| ServeError::Store(format!("{}: {e}", path.display())))?,
            );
            if !cfg.storage.cache {
                return Ok(store);
            }
            let cached = crate::cache::CachedStore::load(store).await.map_err(|e| {
                ServeError::Store(format!("loading {} into memory: {e}", path.display()))
            })?;
            Ok(Arc::new(cached))
        }
    }
}

/// Bind the API address with a clear error when it is taken.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr).await.map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            ServeError::AddrInUse { addr }
        } else {
            ServeError::Bind { addr, source }
        }
    })
}

/// A started deployment: the conductor and the API state over it.
pub struct Deployment {
    /// The conductor.
    pub conductor: Conductor,
    /// The API state (for [`api::router`]).
    pub state: ApiState,
}

/// Start the store and the conductor over `registry`, and build the API state
/// (what [`launch`] does after building the registry from the configuration).
pub async fn start_with(
    cfg: &Config,
    registry: InterfaceRegistry,
) -> Result<Deployment, ServeError> {
    let auth = match cfg.api.auth_strategy {
        AuthStrategy::Noauth => None,
        AuthStrategy::HttpBasic => {
            let path = cfg
                .api
                .http_basic_auth_user_file
                .as_deref()
                .ok_or_else(|| {
                    ServeError::Store("http_basic needs api.http_basic_auth_user_file".into())
                })?;
            Some(Arc::new(Htpasswd::load(path)?))
        }
    };
    let store = open_store(cfg).await?;
    let metrics = cfg
        .metrics
        .enabled
        .then(|| Arc::new(crate::metrics::Metrics::new()));
    let mut conductor_cfg = conductor_config(cfg);
    conductor_cfg.inspection_rules = crate::inspection_rules::rules_config(&cfg.inspection_rules)
        .map_err(ServeError::Conductor)?;
    let conductor = match &metrics {
        Some(m) => Conductor::start_observed(store, registry, conductor_cfg, m.clone()).await,
        None => Conductor::start(store, registry, conductor_cfg).await,
    }
    .map_err(|e| ServeError::Conductor(e.to_string()))?;
    if cfg.storage.backend == Backend::Sqlite {
        // Volume connectors/targets and runbooks lived in this file before the store
        // had tables for them.
        let legacy = cfg.storage.data_dir.join("api-resources.json");
        api::extras::import_legacy_file(conductor.store().as_ref(), &legacy)
            .await
            .map_err(ServeError::Store)?;
    }
    let settings = ApiSettings {
        public_endpoint: cfg.api.public_endpoint.clone(),
        max_limit: cfg.api.max_limit,
        restrict_lookup: cfg.api.restrict_lookup,
        ramdisk_heartbeat_timeout: cfg.api.ramdisk_heartbeat_timeout,
        default_host: cfg.api.listen.to_string(),
        body_limits: cfg.api.body_limits(),
        max_list_body_size: cfg.api.max_list_body_size.saturating_mul(1024),
        max_response_memory: cfg.api.max_response_memory.saturating_mul(1024),
    };
    let mut state =
        ApiState::new(conductor.clone(), settings, auth).with_dashboard(api::DashboardSettings {
            enabled: cfg.dashboard.enabled,
            read_only: cfg.dashboard.read_only,
        });
    if let Some(m) = metrics {
        state = state.with_metrics(m);
    }
    Ok(Deployment { conductor, state })
}

/// A started service: the API's listener (not yet served), the conductor, the boot
/// servers, and the configuration as resolved (the API's real address).
pub struct Launched {
    /// The API's listener; serve [`Launched::router`] on it.
    pub listener: TcpListener,
    /// Where the API listens.
    pub addr: SocketAddr,
    /// The configuration, with `api.listen` set to the bound address.
    pub config: Config,
    /// The conductor and the API state.
    pub deployment: Deployment,
    /// The boot file set and DHCP reservations.
    pub boot: BootPlan,
    /// The running boot servers (stopped when dropped).
    pub boot_servers: BootServers,
    /// The noVNC proxy when `[vnc] enabled` (stopped when dropped).
    pub vnc: Option<crate::vnc::VncProxy>,
}

impl std::fmt::Debug for Launched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launched")
            .field("addr", &self.addr)
            .field("boot", &self.boot)
            .field("boot_servers", &self.boot_servers)
            .finish_non_exhaustive()
    }
}

impl Launched {
    /// The HTTP application: the Ironic API, and the boot files under `/boot` when
    /// `[boot.http]` has no address of its own.
    pub fn router(&self) -> axum::Router {
        let api = api::router(self.deployment.state.clone());
        if self.config.boot.http.listen.is_some() {
            return api;
        }
        axum::Router::new()
            .nest_service("/boot", ironic_boot_pxe::router(self.boot.files.clone()))
            .fallback_service(api)
    }
}

/// Bind the API, resolve `[boot]`, build the registry ([`build_registry`]), start
/// the boot servers and the conductor: everything `ironic serve` and `ironic lab`
/// run, in that order, so that a bad configuration fails before anything runs.
pub async fn launch(cfg: &Config) -> Result<Launched, ServeError> {
    let listener = bind(cfg.api.listen).await?;
    let addr = listener.local_addr().map_err(ServeError::Serve)?;
    let mut cfg = cfg.clone();
    cfg.api.listen = addr;
    let boot = crate::boot::plan(&cfg, addr)?;
    let registry = build_registry(&cfg, &boot)?;
    let api_url = cfg.api_url();
    if api_url.contains("//0.0.0.0") || api_url.contains("//[::]") {
        tracing::warn!(api_url = %api_url, "ramdisk agents cannot call back to a wildcard address: set [conductor] api_url, [api] public_endpoint or [boot] address");
    }
    let boot_servers = crate::boot::start(&cfg, &boot).await?;
    let deployment = start_with(&cfg, registry).await?;
    let vnc = if cfg.vnc.enabled {
        Some(crate::vnc::start(&cfg.vnc, deployment.conductor.clone()).await?)
    } else {
        None
    };
    tracing::info!(
        listen = %addr,
        api_url = %api_url,
        boot_http = ?boot.http_url,
        hardware_types = ?deployment.conductor.registry().hardware_types().iter().map(|h| h.name).collect::<Vec<_>>(),
        boot_interfaces = ?deployment.conductor.registry().interface_names(InterfaceType::Boot),
        "service started"
    );
    Ok(Launched {
        listener,
        addr,
        config: cfg,
        deployment,
        boot,
        boot_servers,
        vnc,
    })
}

/// Run API + conductor (and the boot servers) until `shutdown` resolves, then stop
/// accepting requests, give those in progress `[api] shutdown_timeout` to finish,
/// close what is left, and shut the conductor down (waiting for its operations), so
/// nothing is lost and a stuck client cannot keep the process alive.
pub async fn serve(
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let launched = launch(&cfg).await?;
    let mut limits = launched.config.api.http_limits();
    fit_connections_to_fd_limit(&mut limits);
    tracing::info!(listen = %launched.addr, store = ?launched.deployment.conductor.store(), host = %launched.deployment.conductor.config().host, max_connections = limits.max_connections, "ironic API and conductor running");
    let app = launched.router();
    let Launched {
        listener,
        deployment,
        boot_servers,
        vnc,
        ..
    } = launched;
    let report = crate::http::serve(listener, app, limits, shutdown).await;
    tracing::info!(
        drain_ms = report.drain.as_millis() as u64,
        closed_by_force = report.aborted_at_shutdown,
        accepted = report.accepted,
        evicted = report.evicted,
        accept_errors = report.accept_errors,
        "API stopped; shutting the conductor down"
    );
    drop(vnc);
    deployment.conductor.shutdown().await;
    drop(boot_servers);
    tracing::info!("conductor stopped");
    Ok(())
}

/// Raise the open-file limit to its hard maximum (as Go's runtime does at start)
/// and keep `max_connections` below it, with a reserve for the store, BMC and
/// agent clients, boot servers and logs: connections must never starve the rest.
pub fn fit_connections_to_fd_limit(limits: &mut crate::http::HttpLimits) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (lim.current, lim.maximum)
        && cur < max
    {
        let raised = rustix::process::Rlimit {
            current: Some(max),
            maximum: Some(max),
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                tracing::debug!(from = cur, to = max, "raised the open-file limit");
                lim.current = Some(max);
            }
            Err(e) => tracing::debug!(error = %e, "cannot raise the open-file limit"),
        }
    }
    let Some(nofile) = lim.current.and_then(|n| usize::try_from(n).ok()) else {
        return;
    };
    let reserve = (nofile / 4).max(64);
    let fit = nofile.saturating_sub(reserve).max(16);
    if limits.max_connections > fit {
        tracing::warn!(
            configured = limits.max_connections,
            max_connections = fit,
            open_file_limit = nofile,
            "[api] max_connections lowered to fit the open-file limit (raise it with ulimit -n or LimitNOFILE=)"
        );
        limits.max_connections = fit;
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironic_core::model::Node;

    fn registry_for(toml_text: &str) -> Result<InterfaceRegistry, ServeError> {
        let cfg: Config = toml::from_str(toml_text).unwrap();
        cfg.check().unwrap();
        let api = "127.0.0.1:6385".parse().unwrap();
        let boot = crate::boot::plan(&cfg, api)?;
        build_registry(&cfg, &boot)
    }

    fn resolve(reg: &InterfaceRegistry, driver: &str, set: &[(InterfaceType, &str)]) -> Node {
        let mut n = Node::new(driver);
        for (t, v) in set {
            n.interfaces.set(*t, *v);
        }
        reg.resolve_interfaces(&mut n)
            .unwrap_or_else(|e| panic!("{driver}: {e}"));
        n
    }

    #[test]
    fn defaults_enroll_ipmi_redfish_and_metal3_nodes() {
        let reg = registry_for("").unwrap();
        let hw: Vec<_> = reg.hardware_types().iter().map(|h| h.name).collect();
        assert_eq!(
            hw,
            ["fake-hardware", "ipmi", "manual-management", "redfish"]
        );
        let n = resolve(&reg, "ipmi", &[]);
        assert_eq!(n.interfaces.boot_interface, "ipxe");
        assert_eq!(n.interfaces.power_interface, "ipmitool");
        assert_eq!(n.interfaces.deploy_interface, "direct");
        assert_eq!(n.interfaces.network_interface, "flat");
        // Without TFTP, pxe is not enabled; http (UEFI HTTP boot) is.
        let boot = reg.interface_names(InterfaceType::Boot);
        assert!(!boot.contains(&"pxe".to_owned()), "{boot:?}");
        for b in [
            "ipxe",
            "http",
            "redfish-virtual-media",
            "redfish-https",
            "fake",
        ] {
            assert!(boot.contains(&b.to_owned()), "{b} missing from {boot:?}");
        }
        // What Metal3's baremetal-operator sends for a Redfish virtual-media host.
        let n = resolve(
            &reg,
            "redfish",
            &[
                (InterfaceType::Boot, "redfish-virtual-media"),
                (InterfaceType::Deploy, "direct"),
                (InterfaceType::Inspect, "agent"),
                (InterfaceType::Raid, "no-raid"),
                (InterfaceType::Bios, "redfish"),
                (InterfaceType::Firmware, "redfish"),
                (InterfaceType::Management, "redfish"),
                (InterfaceType::Power, "redfish"),
            ],
        );
        assert_eq!(n.interfaces.console_interface, "no-console");
        resolve(&reg, "fake-hardware", &[]);
        resolve(&reg, "manual-management", &[]);
    }

    #[test]
    fn tftp_enables_pxe_and_explicit_lists_are_strict() {
        let with_tftp = "[boot]\naddress = \"10.0.0.1\"\n[boot.tftp]\nenabled = true\nlisten = \"127.0.0.1:0\"\n";
        let reg = registry_for(with_tftp).unwrap();
        assert!(
            reg.interface_names(InterfaceType::Boot)
                .contains(&"pxe".to_owned())
        );
        let e = registry_for("[drivers]\nenabled_boot_interfaces = [\"pxe\", \"ipxe\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("enabled_boot_interfaces") && e.contains("tftp"),
            "{e}"
        );
        let e = registry_for("[drivers]\nenabled_boot_interfaces = [\"ipxe\", \"pixie\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"pixie\"") && e.contains("redfish-virtual-media"),
            "{e}"
        );
        let e = registry_for("[drivers]\nenabled_hardware_types = [\"idrac\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"idrac\"") && e.contains("ipmi"), "{e}");
        // Only redfish, only virtual media: ipmi is gone, redfish boots vmedia.
        let reg = registry_for(
            "[drivers]\nenabled_hardware_types = [\"redfish\"]\nenabled_boot_interfaces = [\"redfish-virtual-media\"]\n",
        )
        .unwrap();
        assert!(reg.hardware_type("ipmi").is_err());
        let n = resolve(&reg, "redfish", &[]);
        assert_eq!(n.interfaces.boot_interface, "redfish-virtual-media");
        // A hardware type left without a boot interface stops the start, naming it.
        let e = registry_for("[drivers]\nenabled_boot_interfaces = [\"redfish-virtual-media\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("has no boot interface enabled in this conductor"),
            "{e}"
        );
    }

    #[test]
    fn configured_defaults_win_and_must_fit() {
        let reg = registry_for("[drivers]\ndefault_boot_interface = \"http\"\n").unwrap();
        assert_eq!(resolve(&reg, "ipmi", &[]).interfaces.boot_interface, "http");
        let e = registry_for("[drivers]\ndefault_power_interface = \"ipmitool\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("default_power_interface") && e.contains("ipmitool"),
            "{e}"
        );
        let e = registry_for("[drivers]\ndefault_boot_interface = \"pxe\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tftp"), "{e}");
    }

    #[test]
    fn a_wildcard_api_without_an_address_says_what_to_set() {
        let cfg: Config = toml::from_str("[api]\nlisten = \"0.0.0.0:6385\"\n").unwrap();
        let boot = crate::boot::plan(&cfg, cfg.api.listen).unwrap();
        assert_eq!(boot.http_url, None);
        let e = build_registry(&cfg, &boot).unwrap_err().to_string();
        assert!(e.contains("[boot] address"), "{e}");
        let cfg: Config =
            toml::from_str("[api]\nlisten = \"0.0.0.0:6385\"\n[boot]\naddress = \"10.0.0.1\"\n")
                .unwrap();
        let boot = crate::boot::plan(&cfg, cfg.api.listen).unwrap();
        assert_eq!(boot.http_url.as_deref(), Some("http://10.0.0.1:6385/boot"));
        assert_eq!(cfg.api_url(), "http://10.0.0.1:6385");
        build_registry(&cfg, &boot).unwrap();
    }

    #[test]
    fn missing_ipxe_binaries_fail_at_start_when_tftp_hands_them_out() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[boot]\naddress = \"10.0.0.1\"\nipxe_dir = \"{}\"\n[boot.tftp]\nenabled = true\n",
            dir.path().display()
        );
        let e = registry_for(&text).unwrap_err().to_string();
        assert!(
            e.contains("undionly.kpxe") && e.contains("apt-get install ipxe"),
            "{e}"
        );
        // Without TFTP or DHCP nothing hands them out: no error.
        let text = format!("[boot]\nipxe_dir = \"{}\"\n", dir.path().display());
        registry_for(&text).unwrap();
    }
}
