//! Graphical consoles over VNC, as Ironic 39's `GraphicalConsole`: starting a
//! node's console asks a [console container provider](ConsoleContainerProvider)
//! to run a VNC server that shows it (Ironic's `ironic-console` image logs in to
//! the BMC's web UI and shows its HTML5 KVM), records where it listens
//! (`driver_internal_info.vnc_host`/`vnc_port`) and a noVNC token
//! ([`token`]); `GET /v1/nodes/{node}/states/console` then answers
//! `{"type": "vnc", "url": "<[vnc] public_url>?path=websockify%3Fnode%3D...%26token%3D..."}`,
//! and a noVNC proxy (the application's; `ironic serve` has one) checks the
//! token, does the RFB security handshake with the VNC server and relays the
//! bytes. The conductor stops consoles whose token expired
//! ([`ConsoleInterface::session_expired`], Ironic's `_expire_console_sessions`).
//!
//! - [`GraphicalConsole`]: the console interface over a [`ConsoleApp`] (which
//!   app the container runs, and what it gets to reach the console);
//!   `fake-graphical` is [`FakeGraphicalApp`], `redfish-graphical` lives in
//!   `ironic-drivers-redfish`.
//! - Providers: [`FakeConsoleContainer`] (`fake`, Ironic's default, serves
//!   nothing) and [`ProcessConsoleContainer`] (`process`, ironic-rs's own: runs
//!   a command on this host). Ironic's `systemd` (podman quadlets),
//!   `kubernetes` and `container` (docker CLI) providers are not here.

mod container;
mod process;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use container::{
    AppInfo, ConsoleContainerProvider, FakeConsoleContainer, RFB_VERSION_LENGTH, container_error,
    wait_for_listen,
};
pub use process::{ProcessConsoleContainer, ProcessSettings};

use crate::driver::{BaseInterface, ConsoleInfo, ConsoleInterface, PropertyDoc, Task};
use crate::error::DriverError;
use crate::hardware::InterfaceRegistry;

/// The `[vnc]` settings the console interfaces use.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VncSettings {
    /// The noVNC page the console URL points at (`[vnc] public_url`, e.g.
    /// `http://127.0.0.1:6090/vnc_auto.html`).
    pub public_url: String,
    /// Lifetime of a console token (`[vnc] token_timeout`, 600 s).
    pub token_timeout: Duration,
}

impl Default for VncSettings {
    fn default() -> Self {
        VncSettings {
            public_url: "http://127.0.0.1:6090/vnc_auto.html".into(),
            token_timeout: Duration::from_secs(600),
        }
    }
}

/// What the graphical console interfaces of one application share: the
/// container provider and the `[vnc]` settings.
#[derive(Clone, Debug)]
pub struct GraphicalConsoles {
    /// The provider (`[vnc] container_provider`).
    pub provider: Arc<dyn ConsoleContainerProvider>,
    /// The settings.
    pub settings: VncSettings,
}

impl Default for GraphicalConsoles {
    /// Ironic's defaults: the `fake` provider.
    fn default() -> Self {
        GraphicalConsoles {
            provider: Arc::new(FakeConsoleContainer),
            settings: VncSettings::default(),
        }
    }
}

/// The app a [`GraphicalConsole`] runs in the console container (Ironic's
/// `get_app_name`/`get_app_info`), with the interface's `driver_info` checks.
pub trait ConsoleApp: Send + Sync + std::fmt::Debug + 'static {
    /// The app's name, handed to the container (`APP`).
    fn app_name(&self) -> &'static str;
    /// The `driver_info` keys the app reads.
    fn properties(&self) -> Vec<PropertyDoc> {
        Vec::new()
    }
    /// Check the node's `driver_info` without contacting anything.
    fn validate(&self, task: &Task) -> Result<(), DriverError>;
    /// What the app needs to reach the console (`APP_INFO`); may hold secrets.
    fn app_info(&self, task: &Task) -> Result<AppInfo, DriverError> {
        let _ = task;
        Ok(AppInfo::default())
    }
}

/// A graphical console interface: Ironic's `GraphicalConsole` over an app.
#[derive(Debug)]
pub struct GraphicalConsole {
    app: Arc<dyn ConsoleApp>,
    consoles: GraphicalConsoles,
}

impl GraphicalConsole {
    /// The interface running `app` with the shared provider and settings.
    pub fn new(app: Arc<dyn ConsoleApp>, consoles: GraphicalConsoles) -> Self {
        GraphicalConsole { app, consoles }
    }
}

#[async_trait]
impl BaseInterface for GraphicalConsole {
    fn properties(&self) -> Vec<PropertyDoc> {
        self.app.properties()
    }
    fn validate(&self, task: &Task) -> Result<(), DriverError> {
        self.app.validate(task)
    }
}

#[async_trait]
impl ConsoleInterface for GraphicalConsole {
    /// Start the container, record `vnc_host`/`vnc_port` and a new token.
    async fn start_console(&self, task: &mut Task) -> Result<(), DriverError> {
        let info = self.app.app_info(task)?;
        let (host, port) = self
            .consoles
            .provider
            .start_container(&task.node, self.app.app_name(), &info)
            .await?;
        let dii = &mut task.node.driver_internal_info;
        dii.insert(token::VNC_HOST_KEY.into(), host.into());
        dii.insert(token::VNC_PORT_KEY.into(), port.into());
        task.node.console_enabled = true;
        token::authorize(&mut task.node);
        Ok(())
    }

    /// Stop the container and drop `vnc_host`/`vnc_port` and the token.
    async fn stop_console(&self, task: &mut Task) -> Result<(), DriverError> {
        self.consoles.provider.stop_container(&task.node).await?;
        let dii = &mut task.node.driver_internal_info;
        dii.remove(token::VNC_PORT_KEY);
        dii.remove(token::VNC_HOST_KEY);
        task.node.console_enabled = false;
        token::unauthorize(&mut task.node);
        Ok(())
    }

    async fn get_console(&self, task: &Task) -> Result<ConsoleInfo, DriverError> {
        Ok(ConsoleInfo {
            kind: "vnc".into(),
            url: token::console_url(&self.consoles.settings.public_url, &task.node),
        })
    }

    fn session_expired(&self, task: &Task) -> bool {
        task.node
            .driver_internal_info
            .get(token::TOKEN_KEY)
            .is_some_and(|t| t.as_str().is_some_and(|t| !t.is_empty()))
            && token::expired(&task.node, self.consoles.settings.token_timeout)
    }

    async fn stop_all(&self) -> Result<(), DriverError> {
        self.consoles.provider.stop_all_containers().await
    }
}

/// Ironic's `FakeGraphicalConsole` app (`fake`): no `driver_info`, nothing to
/// connect to; with the `process` provider the command still runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct FakeGraphicalApp;

impl ConsoleApp for FakeGraphicalApp {
    fn app_name(&self) -> &'static str {
        "fake"
    }
    fn validate(&self, _task: &Task) -> Result<(), DriverError> {
        Ok(())
    }
}

/// The name of the fake graphical console interface.
pub const FAKE_GRAPHICAL: &str = "fake-graphical";

/// Register `fake-graphical` (every generic hardware type supports it, as in
/// Ironic) over `consoles`.
pub fn register_fake_graphical(registry: &mut InterfaceRegistry, consoles: GraphicalConsoles) {
    registry.register_console(
        FAKE_GRAPHICAL,
        Arc::new(GraphicalConsole::new(Arc::new(FakeGraphicalApp), consoles)),
    );
}
