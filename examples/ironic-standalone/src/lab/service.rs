//! The lab's service: the `ironic` API, conductor and boot files, started exactly as
//! `ironic serve` starts them ([`server::launch`]).

use std::net::SocketAddr;

use axum::Router;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Backend, Config};
use crate::http::HttpLimits;
use crate::server::{self, ServeError};

/// An HTTP server started by the lab (the API, the boot file server).
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Serves `router` on an already bound listener, with the default limits.
    pub fn spawn(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<HttpServer> {
        Self::spawn_with(listener, router, HttpLimits::default())
    }

    /// Serves `router` on an already bound listener with `limits` (timeouts,
    /// connection limit, bounded drain: the serving loop of `ironic serve`).
    pub fn spawn_with(
        listener: tokio::net::TcpListener,
        router: Router,
        limits: HttpLimits,
    ) -> std::io::Result<HttpServer> {
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            let report = crate::http::serve(listener, router, limits, stop.cancelled_owned()).await;
            tracing::debug!(%addr, ?report, "lab HTTP server stopped");
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
    cfg.conductor.host = Some("ironic-lab".into());
    cfg.fake.enabled = true;
    cfg
}

/// A started service: conductor and API.
#[derive(Debug)]
pub struct Service {
    /// The conductor.
    pub conductor: ironic_core::conductor::Conductor,
    /// The API server (and the boot files under `/boot`).
    pub api: HttpServer,
    /// The boot files' base URL.
    pub boot_url: String,
    /// The boot servers `[boot]` asked for (none by default: the files are on the API).
    pub boot_servers: crate::boot::BootServers,
    /// The noVNC proxy when `[vnc] enabled`.
    pub vnc: Option<crate::vnc::VncProxy>,
}

/// Starts what `ironic serve` starts for `cfg` ([`server::launch`]: the same
/// registry, boot servers and conductor) and serves the Ironic API, with the boot
/// files under `/boot` on its port.
pub async fn start(cfg: &Config) -> Result<Service, ServeError> {
    let launched = server::launch(cfg).await?;
    let app = launched.router();
    let boot_url = launched.boot.http_url.clone().unwrap_or_default();
    let mut limits = launched.config.api.http_limits();
    server::fit_connections_to_fd_limit(&mut limits);
    let server::Launched {
        listener,
        deployment,
        boot_servers,
        vnc,
        ..
    } = launched;
    let api = HttpServer::spawn_with(listener, app, limits).map_err(ServeError::Serve)?;
    Ok(Service {
        conductor: deployment.conductor,
        api,
        boot_url,
        boot_servers,
        vnc,
    })
}
