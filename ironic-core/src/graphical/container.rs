//! Console container providers (Ironic's `ironic.console.container`): what runs
//! the VNC server that shows a node's graphical console.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::io::AsyncReadExt as _;

use crate::error::{DriverError, ErrorKind};
use crate::model::Node;
use crate::secret::mask_map;

/// Length of the RFB version string a VNC server sends first (`RFB 003.008\n`).
pub const RFB_VERSION_LENGTH: usize = 12;

/// What the app in the console container needs to reach the console (Ironic's
/// `get_app_info`: for Redfish, the parsed `driver_info` with the BMC password).
///
/// `Debug` masks every secret-looking value; [`AppInfo::to_json`] gives the real
/// values for the container only (never log it).
#[derive(Clone, Default, PartialEq)]
pub struct AppInfo(pub Map<String, Value>);

impl AppInfo {
    /// The JSON text handed to the container (`APP_INFO`), with the secrets.
    pub fn to_json(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }
}

impl fmt::Debug for AppInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = self.0.clone();
        mask_map(&mut m);
        fmt::Debug::fmt(&Value::Object(m), f)
    }
}

/// Runs one console container (a VNC server showing the console) per node:
/// Ironic's `BaseConsoleContainer`, chosen by `[vnc] container_provider`.
///
/// # Contract
/// - `start_container` returns once the VNC server at the returned host and port
///   answers with its RFB version ([`wait_for_listen`]); it is idempotent: a
///   container already running for the node is kept and its address returned.
/// - `stop_container` succeeds when nothing runs for the node.
/// - `stop_all_containers` runs at conductor start and shutdown (Ironic does so
///   at both), so that no container outlives the consoles it served.
/// - The app info holds the BMC's credentials: hand it to the container without
///   logging it and without putting it on a command line.
///
/// # For provider authors
/// Name errors with the provider (`Console container provider "NAME" failed:
/// ...`, see [`container_error`]) as Ironic's `ConsoleContainerError` does.
#[async_trait]
pub trait ConsoleContainerProvider: Send + Sync + fmt::Debug + 'static {
    /// The provider's name (`[vnc] container_provider`).
    fn name(&self) -> &'static str;
    /// Start a container for the node running `app` with `app_info`; returns the
    /// VNC server's host and port.
    async fn start_container(
        &self,
        node: &Node,
        app: &str,
        app_info: &AppInfo,
    ) -> Result<(String, u16), DriverError>;
    /// Stop the node's container, if any.
    async fn stop_container(&self, node: &Node) -> Result<(), DriverError>;
    /// Stop every container this provider runs.
    async fn stop_all_containers(&self) -> Result<(), DriverError>;
}

/// Ironic's `ConsoleContainerError`: `Console container provider "PROVIDER"
/// failed: REASON` (kind `Other`).
pub fn container_error(provider: &str, reason: impl fmt::Display) -> DriverError {
    DriverError::new(
        ErrorKind::Other,
        format!("Console container provider {provider:?} failed: {reason}"),
    )
}

/// Ironic's `fake` provider (the default of `[vnc] container_provider`): starts
/// nothing and answers a TEST-NET-1 address (`192.0.2.1:5900`) that serves no
/// console.
#[derive(Clone, Copy, Debug, Default)]
pub struct FakeConsoleContainer;

impl FakeConsoleContainer {
    /// The provider's name.
    pub const NAME: &'static str = "fake";
}

#[async_trait]
impl ConsoleContainerProvider for FakeConsoleContainer {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    async fn start_container(
        &self,
        _node: &Node,
        _app: &str,
        _app_info: &AppInfo,
    ) -> Result<(String, u16), DriverError> {
        Ok(("192.0.2.1".into(), 5900))
    }
    async fn stop_container(&self, _node: &Node) -> Result<(), DriverError> {
        Ok(())
    }
    async fn stop_all_containers(&self) -> Result<(), DriverError> {
        Ok(())
    }
}

/// Wait until a VNC server at `host:port` sends its 12-byte RFB version, trying
/// once a second (a one-second connect and read each) for `timeout` (Ironic's
/// `_wait_for_listen` with `[vnc] wait_for_ready_timeout`). The error names the
/// provider, host and port.
pub async fn wait_for_listen(
    provider: &str,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<(), DriverError> {
    let attempts = timeout.as_secs().max(1);
    for attempt in 0..attempts {
        if probe(host, port).await {
            return Ok(());
        }
        tracing::debug!(attempt, host, port, "VNC server not answering yet");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(container_error(
        provider,
        format!("RFB data not returned by {host}:{port}"),
    ))
}

/// One attempt of [`wait_for_listen`].
pub(crate) async fn probe(host: &str, port: u16) -> bool {
    let second = Duration::from_secs(1);
    let Ok(Ok(mut s)) =
        tokio::time::timeout(second, tokio::net::TcpStream::connect((host, port))).await
    else {
        return false;
    };
    let mut buf = [0u8; RFB_VERSION_LENGTH];
    matches!(
        tokio::time::timeout(second, s.read_exact(&mut buf)).await,
        Ok(Ok(_))
    )
}
