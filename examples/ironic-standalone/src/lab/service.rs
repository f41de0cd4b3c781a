//! The lab's service: the `ironic` API and conductor (the same wiring as `ironic serve`),
//! with the hardware drivers and boot interfaces registered for the simulated rack.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use ironic_core::InterfaceRegistry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Backend, Config};
use crate::server::{self, Deployment, ServeError};

/// An HTTP server started by the lab (the API, the boot file server).
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Serves `router` on an already bound listener.
    pub fn spawn(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<HttpServer> {
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
            {
                tracing::error!(%addr, error = %e, "lab HTTP server stopped");
            }
        });
        Ok(HttpServer {
            addr,
            cancel,
            task: Some(task),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The service configuration of a lab: `ironic serve`'s defaults, an in-memory store
/// (the lab starts from scratch every time), fake hardware kept available.
pub fn config(api_listen: SocketAddr, automated_clean: bool) -> Config {
    let mut cfg = Config::default();
    cfg.api.listen = api_listen;
    cfg.storage.backend = Backend::Memory;
    cfg.conductor.automated_clean = automated_clean;
    cfg.conductor.api_url = Some(format!("http://{api_listen}"));
    cfg.conductor.host = Some("ironic-lab".into());
    cfg.fake.enabled = true;
    cfg
}

/// `ironic serve`'s registry plus, when that does not have them yet, the Redfish and
/// IPMI hardware types and the PXE/iPXE boot interfaces (serving from `boot_files`
/// at `boot_http_url`).
pub fn registry(
    cfg: &Config,
    boot_files: Arc<ironic_boot_pxe::BootFiles>,
    boot_http_url: &str,
) -> InterfaceRegistry {
    let mut reg = server::build_registry(cfg);
    if reg.hardware_type("redfish").is_err() {
        ironic_drivers_redfish::register(
            &mut reg,
            ironic_drivers_redfish::RedfishConfig::default(),
        );
    }
    if reg.hardware_type("ipmi").is_err() {
        ironic_drivers_ipmi::register(&mut reg, ironic_drivers_ipmi::IpmiConfig::default());
    }
    let deploy = reg.interface_names(ironic_core::model::InterfaceType::Deploy);
    if !deploy.iter().any(|d| d == ironic_deploy_agent::NAME) {
        ironic_deploy_agent::register(&mut reg, ironic_deploy_agent::AgentConfig::default());
    }
    let boot = reg.interface_names(ironic_core::model::InterfaceType::Boot);
    if !boot.iter().any(|b| b == "ipxe") {
        let pxe = ironic_boot_pxe::PxeConfig::new(
            boot_files,
            std::net::Ipv4Addr::LOCALHOST,
            boot_http_url,
        );
        ironic_boot_pxe::register(&mut reg, pxe);
    }
    reg
}

/// A started service: conductor and API.
#[derive(Debug)]
pub struct Service {
    /// The conductor.
    pub conductor: ironic_core::conductor::Conductor,
    /// The API server.
    pub api: HttpServer,
}

/// Binds the API address (a clear error when taken), starts the conductor over
/// `registry`, and serves the Ironic API.
pub async fn start(cfg: &Config, registry: InterfaceRegistry) -> Result<Service, ServeError> {
    let listener = server::bind(cfg.api.listen).await?;
    let local = listener.local_addr().map_err(ServeError::Serve)?;
    // With port 0 the agents must be told the port actually bound.
    let mut cfg = cfg.clone();
    cfg.api.listen = local;
    cfg.conductor.api_url = Some(format!("http://{local}"));
    let Deployment { conductor, state } = server::start_with(&cfg, registry).await?;
    let api = HttpServer::spawn(listener, crate::api::router(state)).map_err(ServeError::Serve)?;
    Ok(Service { conductor, api })
}
