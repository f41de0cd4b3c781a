//! The agent that runs in the deploy ramdisk (`ironic-agent`): looks its node up,
//! heartbeats, and serves IPA's command API on port 9999.
//!
//! Run it on a host for tests with `--root-device FILE` (that file becomes the
//! only disk), `--listen 127.0.0.1:0` and `--power-off exit`.

mod api;
pub mod bootloader;
mod commands;
pub mod config;
pub mod entropy;
mod grub;
pub mod hints;
pub mod inventory;
mod ironic;
pub mod lldp;
pub mod netconfig;
pub mod steps;
mod tls;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ironic_core::Secret;
use serde_json::Value;
use tokio::sync::{Mutex, Notify, RwLock};

pub use config::{AgentConfig, PowerOffMode};
pub use tls::pinned_client_config;

use crate::error::{AgentError, Result};
use crate::progress::Progress;
use crate::protocol::CommandResult;

/// Shared agent state.
#[derive(Debug)]
pub(crate) struct State {
    pub cfg: AgentConfig,
    pub token: RwLock<Option<Secret>>,
    pub node: RwLock<Option<Value>>,
    pub lookup_config: RwLock<Value>,
    pub commands: Mutex<Vec<CommandResult>>,
    pub force_heartbeat: Notify,
    pub started_at: f64,
    pub partition_uuids: Mutex<Value>,
    /// What the last `prepare_image` wrote.
    pub image_type: Mutex<Option<crate::image::ImageType>>,
    pub locked: AtomicBool,
    pub shutdown: Notify,
    pub http: reqwest::Client,
    /// The running asynchronous command's id and progress (one runs at a time).
    pub progress: std::sync::Mutex<Option<(String, Arc<Progress>)>>,
}

impl State {
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::SeqCst)
    }

    pub fn lock_down(&self) {
        self.locked.store(true, Ordering::SeqCst);
        self.force_heartbeat.notify_one();
    }

    /// The progress counter of the running asynchronous command, for the work
    /// to report into.
    pub fn current_progress(&self) -> Option<Arc<Progress>> {
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(_, p)| p.clone())
    }

    /// What the running command `id` reported so far.
    pub fn progress_of(&self, id: &str) -> Option<crate::protocol::CommandProgress> {
        let g = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        match g.as_ref() {
            Some((running, p)) if running == id => p.snapshot(),
            _ => None,
        }
    }

    pub async fn allow_md5(&self) -> bool {
        self.lookup_config
            .read()
            .await
            .get("agent_md5_checksum_enable")
            .and_then(Value::as_bool)
            .unwrap_or(self.cfg.allow_md5)
    }
}

/// A running agent.
#[derive(Debug)]
pub struct Agent {
    state: Arc<State>,
    /// The address the command API listens on.
    pub addr: std::net::SocketAddr,
    listener: tokio::net::TcpListener,
}

impl Agent {
    /// Bind the command API; does not contact Ironic yet. The API is served (over
    /// TLS or not) once Ironic's API version is known, as IPA does.
    pub async fn bind(cfg: AgentConfig) -> Result<Agent> {
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(cfg.insecure)
            .connect_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| AgentError::Other(format!("HTTP client: {e}")))?;
        let needs_tls = cfg.auto_tls || cfg.api_urls.iter().any(|u| u.starts_with("https://"));
        if needs_tls && !entropy::crng_ready() {
            tracing::warn!(
                "the kernel's random pool is not initialised yet: TLS waits for it (give the machine a hardware RNG: RDRAND or virtio-rng)"
            );
        }
        let started_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let token = cfg
            .token
            .clone()
            .or_else(|| ironic::load_token(&cfg.state_dir));
        let state = Arc::new(State {
            token: RwLock::new(token),
            node: RwLock::new(None),
            lookup_config: RwLock::new(Value::Null),
            commands: Mutex::new(Vec::new()),
            force_heartbeat: Notify::new(),
            started_at,
            partition_uuids: Mutex::new(Value::Object(Default::default())),
            image_type: Mutex::new(None),
            locked: AtomicBool::new(false),
            shutdown: Notify::new(),
            http,
            progress: std::sync::Mutex::new(None),
            cfg,
        });
        let listener = tokio::net::TcpListener::bind(state.cfg.listen)
            .await
            .map_err(|e| AgentError::io(format!("binding {}", state.cfg.listen), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| AgentError::io("local address", e))?;
        Ok(Agent {
            state,
            addr,
            listener,
        })
    }

    /// Start serving the command API: over TLS with a fresh self-signed
    /// certificate when `tls`. Returns the callback URL and the certificate's PEM.
    async fn serve(
        st: &Arc<State>,
        listener: tokio::net::TcpListener,
        addr: std::net::SocketAddr,
        tls: bool,
    ) -> Result<(tokio::task::JoinHandle<()>, String, Option<String>)> {
        let host = match &st.cfg.advertise_host {
            Some(h) => h.clone(),
            None => ironic::advertise_host(&st.cfg, addr).await,
        };
        let (tls, cert_pem) = if tls {
            let (cfg, pem) = tls::self_signed(&host)?;
            (Some(cfg), Some(pem))
        } else {
            (None, None)
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let host_fmt = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let port = st.cfg.advertise_port.unwrap_or(addr.port());
        let callback_url = format!("{scheme}://{host_fmt}:{port}");
        let server = api::Server::new(st.clone(), listener, tls);
        tracing::info!(%callback_url, "serving the agent API");
        Ok((tokio::spawn(server.run()), callback_url, cert_pem))
    }

    /// Look up the node, serve the API, heartbeat; returns when the agent shuts down.
    pub async fn run(self) -> Result<()> {
        let st = self.state.clone();
        let Agent { addr, listener, .. } = self;
        let mut api_task = None;
        let main = async {
            if let Some(url) = st.cfg.inspection_callback_url.clone() {
                // booted for inspection: post the inventory first (IPA's inspector)
                if let Err(e) = ironic::inspect(&st, &url).await {
                    tracing::error!(error = %e, "inspection data could not be sent");
                }
            }
            if st.cfg.api_urls.is_empty() {
                // standalone: serve the API (plain HTTP, no Ironic to give a
                // certificate to) until powered off
                let (task, _, _) = Self::serve(&st, listener, addr, false).await?;
                api_task = Some(task);
                std::future::pending::<()>().await;
                return Ok(());
            }
            let found = ironic::lookup_node(&st).await?;
            // IPA's automatic TLS: on by default, used when Ironic can pin the
            // certificate (API 1.68+)
            let tls = st.cfg.auto_tls && found.api.supports_verify_ca();
            if st.cfg.auto_tls && !tls {
                tracing::warn!(
                    max_version = found.api.max_version,
                    "Ironic does not support automated TLS (API < 1.68): serving plain HTTP"
                );
            }
            let (task, callback_url, cert_pem) = Self::serve(&st, listener, addr, tls).await?;
            api_task = Some(task);
            ironic::heartbeat_forever(st.clone(), found, callback_url, cert_pem).await
        };
        let result = tokio::select! {
            r = main => r,
            _ = st.shutdown.notified() => Ok(()),
        };
        if let Some(t) = api_task {
            t.abort();
        }
        result
    }
}
