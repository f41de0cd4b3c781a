//! Wiring: store + driver registry + conductor + REST API in one process.
//!
//! Adding a driver crate is one `register` call in [`build_registry`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use ironic_core::InterfaceRegistry;
use ironic_core::conductor::{Conductor, ConductorConfig};
use ironic_core::store::{MemoryStore, SqliteStore, Store};
use tokio::net::TcpListener;

use crate::api::{self, ApiSettings, ApiState};
use crate::auth::Htpasswd;
use crate::config::{AuthStrategy, Backend, Config, secs};

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
    /// The conductor did not start.
    #[error("cannot start the conductor: {0}")]
    Conductor(String),
    /// Serving failed.
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// The driver registry: Ironic's no-op interfaces, plus each enabled driver crate.
pub fn build_registry(cfg: &Config) -> InterfaceRegistry {
    let mut reg = InterfaceRegistry::with_noop();
    if cfg.fake.enabled {
        use ironic_core::fake::{Delay, FakeConfig};
        // Config::check validated the syntax; a bad value cannot reach here.
        let d = |s: &str| Delay::parse(s).unwrap_or_default();
        let fake = FakeConfig {
            power_delay: d(&cfg.fake.power_delay),
            management_delay: d(&cfg.fake.management_delay),
            boot_delay: d(&cfg.fake.boot_delay),
            deploy_delay: d(&cfg.fake.deploy_delay),
            inspect_delay: d(&cfg.fake.inspect_delay),
            raid_delay: d(&cfg.fake.raid_delay),
            bios_delay: d(&cfg.fake.bios_delay),
            ..FakeConfig::default()
        };
        // The returned control handle (fault injection) is for ironic-core's own tests.
        let _control = ironic_core::fake::register(&mut reg, fake);
    }
    // The real hardware types: IPMI (native RMCP+) and Redfish (power, management,
    // virtual-media boot, inspection, BIOS, RAID, firmware), and the agent's `direct`
    // deploy (plus `agent` inspection). They need no server of their own, so they are
    // always enabled; nodes pick them with `driver` and `*_interface`.
    ironic_drivers_ipmi::register(&mut reg, ironic_drivers_ipmi::IpmiConfig::default());
    ironic_drivers_redfish::register(&mut reg, ironic_drivers_redfish::RedfishConfig::default());
    ironic_deploy_agent::register(&mut reg, ironic_deploy_agent::AgentConfig::default());
    reg
}

/// The conductor settings from `[conductor]`.
pub fn conductor_config(cfg: &Config) -> ConductorConfig {
    let c = &cfg.conductor;
    ConductorConfig {
        host: cfg.host(),
        conductor_group: c.conductor_group.to_lowercase(),
        api_url: Some(cfg.api_url()),
        settings: c.settings.clone(),
        max_concurrent_operations: c.max_concurrent_operations,
        automated_clean: c.automated_clean,
        allow_provisioning_in_maintenance: c.allow_provisioning_in_maintenance,
        power_state_sync_interval: secs(c.power_state_sync_interval),
        power_state_sync_max_retries: c.power_state_sync_max_retries,
        power_failure_recovery_interval: secs(c.power_failure_recovery_interval),
        check_provision_state_interval: secs(c.check_provision_state_interval),
        deploy_callback_timeout: secs(c.deploy_callback_timeout),
        clean_callback_timeout: secs(c.clean_callback_timeout),
        inspect_wait_timeout: secs(c.inspect_wait_timeout),
        rescue_callback_timeout: secs(c.rescue_callback_timeout),
        service_callback_timeout: secs(c.service_callback_timeout),
        power_state_change_timeout: secs(c.power_state_change_timeout),
        node_locked_retry_attempts: c.node_locked_retry_attempts,
        node_locked_retry_interval: secs(c.node_locked_retry_interval),
        conductor_heartbeat_interval: secs(c.conductor_heartbeat_interval),
        node_history_max_entries: c.node_history_max_entries,
        ..ConductorConfig::default()
    }
}

/// Open the configured store.
pub async fn open_store(cfg: &Config) -> Result<Arc<dyn Store>, ServeError> {
    match cfg.storage.backend {
        Backend::Memory => Ok(Arc::new(MemoryStore::new())),
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

/// Start the store, registry and conductor, and build the API state.
pub async fn start(cfg: &Config) -> Result<Deployment, ServeError> {
    start_with(cfg, build_registry(cfg)).await
}

/// [`start`] with a registry the caller built (e.g. `ironic lab` adds drivers and
/// boot interfaces wired to its own servers).
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
    let conductor = Conductor::start(store, registry, conductor_config(cfg))
        .await
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
    };
    let state = ApiState::new(conductor.clone(), settings, auth);
    Ok(Deployment { conductor, state })
}

/// Run API + conductor until `shutdown` resolves, then stop accepting requests,
/// let in-flight ones finish and shut the conductor down (waiting for its
/// operations), so nothing is lost.
pub async fn serve(
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = bind(cfg.api.listen).await?;
    let local = listener.local_addr().map_err(ServeError::Serve)?;
    let dep = start(&cfg).await?;
    tracing::info!(listen = %local, data_dir = %cfg.storage.data_dir.display(), host = %dep.conductor.config().host, "ironic API and conductor running");
    let app = api::router(dep.state.clone());
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    tracing::info!("API stopped; shutting the conductor down");
    dep.conductor.shutdown().await;
    tracing::info!("conductor stopped");
    result.map_err(ServeError::Serve)
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
