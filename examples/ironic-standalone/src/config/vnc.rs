//! `[vnc]`: graphical consoles (Ironic's `[vnc]`): the noVNC proxy, the console
//! tokens and the console container provider.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ironic_core::graphical::{
    ConsoleContainerProvider, FakeConsoleContainer, GraphicalConsoles, ProcessConsoleContainer,
    ProcessSettings, VncSettings,
};
use serde::Deserialize;

use super::ConfigError;

/// The providers this build has (`[vnc] container_provider`).
pub const CONTAINER_PROVIDERS: &[&str] = &["fake", "process"];

/// `[vnc]`. Option names and defaults are Ironic's, except the `process_*`
/// options of ironic-rs's own `process` provider.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct VncSection {
    /// Serve the noVNC proxy (Ironic runs it as `ironic-novncproxy`; here it is
    /// part of `ironic serve` and `ironic lab`).
    pub enabled: bool,
    /// Address the proxy listens on.
    pub host_ip: String,
    /// Port the proxy listens on.
    pub port: u16,
    /// The noVNC page console URLs point at (default:
    /// `http://<host_ip, 127.0.0.1 for a wildcard>:<port>/vnc_auto.html`; Ironic
    /// has no default).
    pub public_url: Option<String>,
    /// The noVNC web app the proxy serves (Debian's `novnc` package).
    pub novnc_web: PathBuf,
    /// Keyboard and mouse are not passed to the console (handed to the app as
    /// `READ_ONLY`).
    pub read_only: bool,
    /// Lifetime of a console token, seconds (at least 10).
    pub token_timeout: u64,
    /// Seconds between checks that stop consoles whose token expired (at least 1).
    pub expire_console_session_interval: u64,
    /// `fake` (Ironic's default: an address that serves nothing) or `process`.
    pub container_provider: String,
    /// Seconds a console's VNC server may take to answer (at least 1).
    pub wait_for_ready_timeout: u64,
    /// `process` provider: the command (program and arguments; `{host}`,
    /// `{port}`, `{node}` and `{app}` replaced) that starts a VNC server showing
    /// the console; it gets `APP`, `APP_INFO` (JSON with the BMC credentials),
    /// `READ_ONLY`, `VNC_HOST`, `VNC_PORT` and `NODE_UUID` in its environment.
    pub process_command: Vec<String>,
    /// `process` provider: the address its VNC servers listen on.
    pub process_host: String,
    /// `process` provider: seconds from SIGTERM to SIGKILL when a console stops
    /// (Ironic's `[console] kill_timeout`).
    pub process_kill_timeout: u64,
    /// `process` provider: directory for each console's output
    /// (`<node>.log`); unset discards it.
    pub process_log_dir: Option<PathBuf>,
}

impl Default for VncSection {
    fn default() -> Self {
        VncSection {
            enabled: false,
            host_ip: "0.0.0.0".into(),
            port: 6090,
            public_url: None,
            novnc_web: PathBuf::from("/usr/share/novnc"),
            read_only: false,
            token_timeout: 600,
            expire_console_session_interval: 120,
            container_provider: "fake".into(),
            wait_for_ready_timeout: 10,
            process_command: Vec::new(),
            process_host: "127.0.0.1".into(),
            process_kill_timeout: 1,
            process_log_dir: None,
        }
    }
}

impl VncSection {
    /// Cross-key checks.
    pub fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !CONTAINER_PROVIDERS.contains(&self.container_provider.as_str()) {
            return bad(format!(
                "vnc.container_provider = {:?}: this build has {} (Ironic's systemd, kubernetes and container providers are not available)",
                self.container_provider,
                CONTAINER_PROVIDERS.join(", ")
            ));
        }
        if self.container_provider == "process" && self.process_command.is_empty() {
            return bad(
                "vnc.container_provider = \"process\" needs vnc.process_command (the program and arguments that start a VNC server showing the console)".into(),
            );
        }
        for (key, v, min) in [
            ("token_timeout", self.token_timeout, 10),
            (
                "expire_console_session_interval",
                self.expire_console_session_interval,
                1,
            ),
            ("wait_for_ready_timeout", self.wait_for_ready_timeout, 1),
        ] {
            if v < min {
                return bad(format!("vnc.{key} = {v}: must be at least {min}"));
            }
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return bad(format!(
                "vnc.public_url must be an http:// or https:// URL, got {url:?}"
            ));
        }
        if self.enabled && self.host_ip.parse::<std::net::IpAddr>().is_err() {
            return bad(format!(
                "vnc.host_ip must be an IP address, got {:?}",
                self.host_ip
            ));
        }
        Ok(())
    }

    /// The console URL base: `public_url`, or the proxy's own address.
    pub fn public_url(&self) -> String {
        if let Some(u) = &self.public_url {
            return u.clone();
        }
        let host = match self.host_ip.parse::<std::net::IpAddr>() {
            Ok(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
            Ok(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => self.host_ip.clone(),
        };
        format!("http://{host}:{}/vnc_auto.html", self.port)
    }

    /// The token settings.
    pub fn settings(&self) -> VncSettings {
        let mut s = VncSettings::default();
        s.public_url = self.public_url();
        s.token_timeout = Duration::from_secs(self.token_timeout);
        s
    }

    /// The provider and settings the graphical console interfaces share.
    pub fn consoles(&self) -> Result<GraphicalConsoles, String> {
        let provider: Arc<dyn ConsoleContainerProvider> = match self.container_provider.as_str() {
            "process" => {
                let mut s = ProcessSettings::new(self.process_command.clone());
                s.host = self.process_host.clone();
                s.wait_for_ready_timeout = Duration::from_secs(self.wait_for_ready_timeout);
                s.kill_timeout = Duration::from_secs(self.process_kill_timeout);
                s.read_only = self.read_only;
                s.log_dir = self.process_log_dir.clone();
                Arc::new(ProcessConsoleContainer::new(s).map_err(|e| e.to_string())?)
            }
            _ => Arc::new(FakeConsoleContainer),
        };
        Ok(GraphicalConsoles {
            provider,
            settings: self.settings(),
        })
    }
}
