//! The agent's configuration: the kernel command line (`/proc/cmdline`) as IPA
//! reads it, overridden by command-line flags.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ironic_core::{MacAddress, Secret};

use crate::error::{AgentError, Result};

/// What `standby.power_off` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerOffMode {
    /// Power the machine off (`poweroff -f`), as in a ramdisk.
    System,
    /// Exit the agent process (running on a host for tests: the fake BMC sees it).
    Exit,
}

/// Agent configuration.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Ironic API URLs (`ipa-api-url`, comma separated).
    pub api_urls: Vec<String>,
    /// The MAC the node booted from (`BOOTIF=01-aa-bb-...`).
    pub bootif: Option<MacAddress>,
    /// Extra MACs to look up with (`--mac`), for hosts whose NICs are not the node's.
    pub macs: Vec<MacAddress>,
    /// Node UUID to look up with (`ipa-node-uuid`).
    pub node_uuid: Option<String>,
    /// Where to post the inventory when booted for inspection
    /// (`ipa-inspection-callback-url`, Ironic's `/v1/continue_inspection`).
    pub inspection_callback_url: Option<String>,
    /// A pre-generated token (`ipa-agent-token`).
    pub token: Option<Secret>,
    /// Where the command API listens (`ipa-listen-port`; default `0.0.0.0:9999`).
    pub listen: SocketAddr,
    /// Host to advertise in `callback_url` (`ipa-advertise-host`).
    pub advertise_host: Option<String>,
    /// Port to advertise in `callback_url` when it is not the one the API
    /// listens on, e.g. behind a port forward (`ipa-advertise-port`).
    pub advertise_port: Option<u16>,
    /// Serve the API over TLS with a self-signed certificate whose PEM goes to
    /// Ironic in the heartbeat, when Ironic supports it (API 1.68+)
    /// (`ipa-enable-auto-tls`; on by default, as in IPA).
    pub auto_tls: bool,
    /// Sent as `X-OpenStack-Request-ID` to Ironic (`ipa-global-request-id`).
    pub global_request_id: Option<String>,
    /// Don't verify Ironic's certificate (`ipa-insecure`).
    pub insecure: bool,
    /// Use this device (or file) as the only disk and the root device.
    pub root_device: Option<PathBuf>,
    /// Give up lookup after this long (`ipa-lookup-timeout`, 600 s).
    pub lookup_timeout: Duration,
    /// First lookup retry interval (`ipa-lookup-interval`, 1 s).
    pub lookup_interval: Duration,
    /// Minimum spacing of forced heartbeats (5 s as IPA).
    pub heartbeat_min_interval: Duration,
    /// Override of the heartbeat interval (default from lookup: 0.3–0.6 × `heartbeat_timeout`).
    pub heartbeat_interval: Option<Duration>,
    /// While a command reports progress (an image write), heartbeat this often
    /// when it moved on, so that the conductor records it (`ipa-progress-interval`,
    /// an ironic-rs parameter; 15 s; 0 turns it off and only IPA's heartbeats remain).
    pub progress_interval: Duration,
    /// What `standby.power_off` does.
    pub power_off: PowerOffMode,
    /// Where the token is kept so that a restarted agent process keeps it.
    pub state_dir: PathBuf,
    /// The file the kernel parameters were read from (`/proc/cmdline`, or
    /// `--cmdline`); collected with the logs.
    pub cmdline_path: Option<PathBuf>,
    /// `/sys` root (tests).
    pub sys_root: PathBuf,
    /// `/proc` root (tests).
    pub proc_root: PathBuf,
    /// Download retries (`ipa-image-download-connection-retries`, 9).
    pub download_retries: u32,
    /// Reorder buffer for out-of-order qcow2 clusters.
    pub reorder_buffer: u64,
    /// Read the written image back to verify it.
    pub verify_writes: bool,
    /// Allow MD5 image checksums (Ironic says so in lookup's config).
    pub allow_md5: bool,
    /// Listen for LLDP on every NIC while inspecting (`ipa-collect-lldp`, off).
    pub collect_lldp: bool,
    /// How long to listen for LLDP (`ipa-lldp-timeout`, 30 s).
    pub lldp_timeout: Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            api_urls: Vec::new(),
            bootif: None,
            macs: Vec::new(),
            node_uuid: None,
            inspection_callback_url: None,
            token: None,
            listen: SocketAddr::from(([0, 0, 0, 0], 9999)),
            advertise_host: None,
            advertise_port: None,
            auto_tls: true,
            global_request_id: None,
            insecure: false,
            root_device: None,
            lookup_timeout: Duration::from_secs(600),
            lookup_interval: Duration::from_secs(1),
            heartbeat_min_interval: Duration::from_secs(5),
            heartbeat_interval: None,
            progress_interval: Duration::from_secs(15),
            power_off: PowerOffMode::System,
            state_dir: PathBuf::from("/run/ironic-agent"),
            cmdline_path: None,
            sys_root: PathBuf::from("/sys"),
            proc_root: PathBuf::from("/proc"),
            download_retries: 9,
            reorder_buffer: 16 << 20,
            verify_writes: true,
            allow_md5: true,
            collect_lldp: false,
            lldp_timeout: Duration::from_secs(30),
        }
    }
}

/// Split a kernel command line into `key -> value` (bare words map to "").
pub fn parse_cmdline(line: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut words = Vec::new();
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    for w in words {
        match w.split_once('=') {
            Some((k, v)) => out.insert(k.to_owned(), v.to_owned()),
            None => out.insert(w, String::new()),
        };
    }
    out
}

fn truthy(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on" | ""
    )
}

fn secs(k: &str, v: &str) -> Result<Duration> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| AgentError::InvalidParams(format!("{k}={v:?} is not a number of seconds")))
}

impl AgentConfig {
    /// Apply kernel parameters (the IPA names).
    pub fn apply_cmdline(&mut self, params: &BTreeMap<String, String>) -> Result<()> {
        for (k, v) in params {
            match k.as_str() {
                "ipa-api-url" => {
                    self.api_urls = v
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
                "BOOTIF" => {
                    // PXELINUX form 01-aa-bb-cc-dd-ee-ff (hardware type prefix)
                    let mac = v.strip_prefix("01-").unwrap_or(v);
                    self.bootif = Some(mac.parse().map_err(|_| {
                        AgentError::InvalidParams(format!("BOOTIF={v:?} is not a MAC address"))
                    })?);
                }
                "ipa-node-uuid" => self.node_uuid = Some(v.clone()),
                "ipa-inspection-callback-url" if !v.is_empty() => {
                    self.inspection_callback_url = Some(v.clone())
                }
                "ipa-agent-token" => self.token = Some(Secret::new(v.clone())),
                "ipa-listen-port" => {
                    let p: u16 = v
                        .parse()
                        .map_err(|_| AgentError::InvalidParams(format!("ipa-listen-port={v:?}")))?;
                    self.listen.set_port(p);
                }
                "ipa-listen-host" => {
                    let ip = v
                        .parse()
                        .map_err(|_| AgentError::InvalidParams(format!("ipa-listen-host={v:?}")))?;
                    self.listen.set_ip(ip);
                }
                "ipa-advertise-host" => self.advertise_host = Some(v.clone()),
                "ipa-advertise-port" => {
                    let p = v.parse().map_err(|_| {
                        AgentError::InvalidParams(format!("ipa-advertise-port={v:?}"))
                    })?;
                    self.advertise_port = Some(p);
                }
                "ipa-enable-auto-tls" => self.auto_tls = truthy(v),
                "ipa-global-request-id" if !v.is_empty() => {
                    self.global_request_id = Some(v.clone())
                }
                "ipa-insecure" => self.insecure = truthy(v),
                "ipa-collect-lldp" => self.collect_lldp = truthy(v),
                "ipa-lldp-timeout" => self.lldp_timeout = secs(k, v)?,
                "ipa-lookup-timeout" => self.lookup_timeout = secs(k, v)?,
                "ipa-lookup-interval" => self.lookup_interval = secs(k, v)?,
                "ipa-progress-interval" => self.progress_interval = secs(k, v)?,
                "ipa-image-download-connection-retries" => {
                    self.download_retries = v
                        .parse()
                        .map_err(|_| AgentError::InvalidParams(format!("{k}={v:?}")))?
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ipa_kernel_parameters() {
        let p = parse_cmdline(
            "BOOT_IMAGE=/vmlinuz ipa-api-url=http://10.0.0.1:6385,http://10.0.0.2:6385 \
             BOOTIF=01-52-54-00-12-34-56 ipa-agent-token=abc quiet ipa-insecure=1 \
             ipa-lookup-timeout=30 console=\"ttyS0,115200\" \
             ipa-inspection-callback-url=http://10.0.0.1:6385/v1/continue_inspection \
             ipa-global-request-id=req-1234 ipa-enable-auto-tls=0 ipa-progress-interval=2.5 \
             ipa-advertise-host=127.0.0.1 ipa-advertise-port=45001",
        );
        assert_eq!(p["console"], "ttyS0,115200");
        assert_eq!(p["quiet"], "");
        let mut c = AgentConfig::default();
        c.apply_cmdline(&p).unwrap();
        assert_eq!(c.api_urls.len(), 2);
        assert_eq!(c.bootif.unwrap().to_string(), "52:54:00:12:34:56");
        assert_eq!(c.token.unwrap().expose(), "abc");
        assert!(c.insecure);
        assert_eq!(
            c.inspection_callback_url.as_deref(),
            Some("http://10.0.0.1:6385/v1/continue_inspection")
        );
        assert_eq!(c.lookup_timeout, Duration::from_secs(30));
        assert_eq!(c.global_request_id.as_deref(), Some("req-1234"));
        assert!(!c.auto_tls);
        assert_eq!(c.progress_interval, Duration::from_millis(2500));
        assert_eq!(c.advertise_host.as_deref(), Some("127.0.0.1"));
        assert_eq!(c.advertise_port, Some(45001));
        assert!(
            AgentConfig::default().auto_tls,
            "auto TLS is on by default, as in IPA"
        );
        let mut c = AgentConfig::default();
        assert!(c.apply_cmdline(&parse_cmdline("BOOTIF=zz")).is_err());
        assert!(
            c.apply_cmdline(&parse_cmdline("ipa-lookup-timeout=x"))
                .is_err()
        );
        assert!(
            c.apply_cmdline(&parse_cmdline("ipa-advertise-port=99999"))
                .is_err()
        );
    }
}
