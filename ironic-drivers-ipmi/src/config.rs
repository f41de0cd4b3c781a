//! Driver-wide settings ([`IpmiConfig`]) and the typed `driver_info` of a node
//! ([`IpmiDriverInfo`]), parsed without touching the BMC.

use std::time::Duration;

use ironic_core::driver::{BootMode, PropertyDoc};
use ironic_core::{DriverError, DriverInfo, Node, Secret};

use crate::error::Error;
use crate::session::Privilege;
use crate::session::crypto::CipherSuite;

/// Settings shared by every node this driver manages (Ironic's `[ipmi]` section and
/// the conductor's power timeouts). Per-node `driver_info` keys override some.
#[derive(Clone, Debug)]
pub struct IpmiConfig {
    /// How long to wait for a reply before retransmitting a packet.
    pub packet_timeout: Duration,
    /// Retransmissions of a packet after the first send.
    pub packet_retries: u32,
    /// Bound on one command including re-opened sessions and retries with backoff
    /// (Ironic's `[ipmi]command_retry_timeout`).
    pub command_retry_timeout: Duration,
    /// First backoff between retries of a retryable failure; doubles up to `retry_backoff_max`.
    pub retry_backoff: Duration,
    /// Longest backoff between retries.
    pub retry_backoff_max: Duration,
    /// Default wait for a hard power action to be reached (Ironic's
    /// `[conductor]power_state_change_timeout`).
    pub power_timeout: Duration,
    /// Default wait for a soft power off (Ironic's `[conductor]soft_power_off_timeout`).
    pub soft_power_off_timeout: Duration,
    /// How often to read the power state while waiting for an action.
    pub power_poll_interval: Duration,
    /// A session idle this long gets a keep-alive (Get Device ID).
    pub keepalive_interval: Duration,
    /// A session unused by callers this long is closed (BMCs have few session slots).
    pub session_idle_timeout: Duration,
    /// Privilege when `ipmi_priv_level` is not set.
    pub default_priv_level: Privilege,
    /// Cipher suite when `ipmi_cipher_suite` is not set; `None` tries 17 then 3.
    pub default_cipher_suite: Option<u8>,
    /// Send "disable the 60 s boot flag timeout" before setting a boot device
    /// (Ironic's `[ipmi]disable_boot_timeout`).
    pub disable_boot_timeout: bool,
    /// Boot mode when the node does not ask for one (Ironic's `[deploy]default_boot_mode`).
    pub default_boot_mode: BootMode,
    /// Address the serial console (SOL) listener binds to.
    pub console_bind: std::net::IpAddr,
    /// Bytes per Get SDR request: 255 reads whole records (falling back to 16-byte
    /// pieces when the BMC refuses); smaller values always read in pieces.
    pub sdr_chunk_size: u8,
}

impl Default for IpmiConfig {
    fn default() -> Self {
        IpmiConfig {
            packet_timeout: Duration::from_secs(1),
            packet_retries: 4,
            command_retry_timeout: Duration::from_secs(60),
            retry_backoff: Duration::from_millis(500),
            retry_backoff_max: Duration::from_secs(5),
            power_timeout: Duration::from_secs(60),
            soft_power_off_timeout: Duration::from_secs(600),
            power_poll_interval: Duration::from_secs(1),
            keepalive_interval: Duration::from_secs(20),
            session_idle_timeout: Duration::from_secs(60),
            default_priv_level: Privilege::Administrator,
            default_cipher_suite: None,
            disable_boot_timeout: true,
            default_boot_mode: BootMode::Uefi,
            console_bind: std::net::Ipv4Addr::LOCALHOST.into(),
            sdr_chunk_size: 0xFF,
        }
    }
}

/// `ipmi_bridging` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bridging {
    /// No bridging (the default).
    No,
}

/// A node's IPMI `driver_info`, typed.
#[derive(Clone, Debug)]
pub struct IpmiDriverInfo {
    /// `ipmi_address`: BMC host name or IP address.
    pub address: String,
    /// `ipmi_port` (623).
    pub port: u16,
    /// `ipmi_username` (empty: the anonymous user).
    pub username: String,
    /// `ipmi_password`.
    pub password: Secret,
    /// `ipmi_hex_kg_key`: the BMC key Kg, as hex.
    pub kg: Option<Secret>,
    /// `ipmi_cipher_suite` (3 or 17; `None`: try 17, then 3).
    pub cipher_suite: Option<CipherSuite>,
    /// `ipmi_priv_level`.
    pub priv_level: Privilege,
    /// `ipmi_bridging` (only `no` is supported).
    pub bridging: Bridging,
    /// `ipmi_disable_boot_timeout`.
    pub disable_boot_timeout: bool,
    /// `ipmi_packet_timeout` (seconds, fractional allowed).
    pub packet_timeout: Duration,
    /// `ipmi_packet_retries`.
    pub packet_retries: u32,
    /// `ipmi_command_retry_timeout` (seconds).
    pub command_retry_timeout: Duration,
    /// `ipmi_terminal_port`: TCP port of the serial console.
    pub terminal_port: Option<u16>,
}

/// The `driver_info` keys, for `GET /v1/drivers/ipmi/properties`.
pub(crate) const PROPERTIES: &[PropertyDoc] = &[
    PropertyDoc::required("ipmi_address", "IP address or hostname of the node's BMC."),
    PropertyDoc::optional("ipmi_port", "Remote IPMI RMCP+ port (default 623)."),
    PropertyDoc::optional(
        "ipmi_username",
        "IPMI user name (default: the anonymous user).",
    ),
    PropertyDoc::optional("ipmi_password", "IPMI password (at most 20 bytes)."),
    PropertyDoc::optional("ipmi_hex_kg_key", "BMC key Kg in hexadecimal."),
    PropertyDoc::optional(
        "ipmi_cipher_suite",
        "IPMI cipher suite: 3 (SHA1) or 17 (SHA256). Default: try 17, then 3.",
    ),
    PropertyDoc::optional(
        "ipmi_priv_level",
        "Privilege level: ADMINISTRATOR (default), OPERATOR, USER or CALLBACK.",
    ),
    PropertyDoc::optional("ipmi_bridging", "Bridging type; only \"no\" is supported."),
    PropertyDoc::optional(
        "ipmi_protocol_version",
        "IPMI protocol version; only \"2.0\" is supported.",
    ),
    PropertyDoc::optional(
        "ipmi_disable_boot_timeout",
        "Disable the BMC's 60 s boot flag timeout before setting the boot device (default true).",
    ),
    PropertyDoc::optional(
        "ipmi_packet_timeout",
        "Seconds to wait for a reply before retransmitting (default 1).",
    ),
    PropertyDoc::optional(
        "ipmi_packet_retries",
        "Retransmissions per packet (default 4).",
    ),
    PropertyDoc::optional(
        "ipmi_command_retry_timeout",
        "Seconds a command may take including retries (default 60).",
    ),
    PropertyDoc::optional(
        "ipmi_terminal_port",
        "TCP port for the serial console (ipmitool-socat console interface).",
    ),
];

fn invalid(key: &'static str, detail: impl Into<String>) -> Error {
    Error::InvalidKey {
        key,
        detail: detail.into(),
    }
}

fn get_bool(info: &DriverInfo, key: &'static str, default: bool) -> Result<bool, Error> {
    match info.get_str(key) {
        None => Ok(default),
        Some(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(invalid(key, format!("\"{s}\" is not a boolean"))),
        },
    }
}

fn get_secs(info: &DriverInfo, key: &'static str, default: Duration) -> Result<Duration, Error> {
    match info.get_str(key) {
        None => Ok(default),
        Some(s) => match s.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(Duration::from_secs_f64(v)),
            _ => Err(invalid(
                key,
                format!("\"{s}\" is not a number of seconds between 0 and 86400"),
            )),
        },
    }
}

fn get_port(info: &DriverInfo, key: &'static str) -> Result<Option<u16>, Error> {
    match info.get_str(key) {
        None => Ok(None),
        Some(s) => match s.trim().parse::<u16>() {
            Ok(p) if p > 0 => Ok(Some(p)),
            _ => Err(invalid(
                key,
                format!("\"{s}\" is not a port number (1-65535)"),
            )),
        },
    }
}

impl IpmiDriverInfo {
    /// Parse and check a node's `driver_info`. Never contacts the BMC.
    pub fn from_node(node: &Node, config: &IpmiConfig) -> Result<Self, DriverError> {
        Ok(Self::parse(&node.driver_info, config)?)
    }

    pub(crate) fn parse(info: &DriverInfo, config: &IpmiConfig) -> Result<Self, Error> {
        let address = match info.get_str("ipmi_address") {
            Some(a) if !a.trim().is_empty() => {
                let a = a.trim();
                let a = a
                    .strip_prefix('[')
                    .and_then(|x| x.strip_suffix(']'))
                    .unwrap_or(a);
                if a.chars().any(|c| c.is_whitespace() || c == '/') {
                    return Err(invalid(
                        "ipmi_address",
                        format!("\"{a}\" is not a host name or IP address"),
                    ));
                }
                a.to_owned()
            }
            Some(_) => return Err(invalid("ipmi_address", "must not be empty")),
            None => {
                return Err(Error::MissingKey {
                    key: "ipmi_address",
                    detail: "The IPMI address of the BMC is required.".into(),
                });
            }
        };
        let port = get_port(info, "ipmi_port")?.unwrap_or(623);
        let username = info.get_str("ipmi_username").unwrap_or_default();
        if username.len() > 16 {
            return Err(invalid(
                "ipmi_username",
                format!(
                    "IPMI user names are at most 16 bytes; \"{username}\" has {}",
                    username.len()
                ),
            ));
        }
        let password = Secret::new(info.get_str("ipmi_password").unwrap_or_default());
        if password.expose().len() > 20 {
            return Err(invalid(
                "ipmi_password",
                "IPMI v2.0 passwords are at most 20 bytes",
            ));
        }
        let kg = match info.get_str("ipmi_hex_kg_key") {
            None => None,
            Some(k) if k.is_empty() => None,
            Some(k) => match hex::decode(&k) {
                Ok(b) if b.len() <= 20 => Some(Secret::new(k)),
                _ => {
                    return Err(invalid(
                        "ipmi_hex_kg_key",
                        "must be hexadecimal, at most 40 digits (the value is not shown)",
                    ));
                }
            },
        };
        let cipher_suite = match info.get_str("ipmi_cipher_suite") {
            None => match config.default_cipher_suite {
                None => None,
                Some(id) => Some(CipherSuite::from_id(id).ok_or_else(|| {
                    invalid(
                        "ipmi_cipher_suite",
                        format!("the driver's default cipher suite {id} is not supported"),
                    )
                })?),
            },
            Some(s) => match s.trim().parse::<u8>().ok().and_then(CipherSuite::from_id) {
                Some(c) => Some(c),
                None => {
                    return Err(invalid(
                        "ipmi_cipher_suite",
                        format!("cipher suite \"{s}\" is not supported; use 3 or 17"),
                    ));
                }
            },
        };
        let priv_level = match info.get_str("ipmi_priv_level") {
            None => config.default_priv_level,
            Some(s) => Privilege::parse(&s).ok_or_else(|| {
                invalid(
                    "ipmi_priv_level",
                    format!("\"{s}\" is not one of ADMINISTRATOR, OPERATOR, USER, CALLBACK"),
                )
            })?,
        };
        let bridging = match info.get_str("ipmi_bridging").as_deref() {
            None | Some("no") => Bridging::No,
            Some(b @ ("single" | "dual")) => {
                return Err(invalid(
                    "ipmi_bridging",
                    format!("\"{b}\" bridging is not supported by this driver; use \"no\""),
                ));
            }
            Some(b) => {
                return Err(invalid(
                    "ipmi_bridging",
                    format!("\"{b}\" is not one of no, single, dual"),
                ));
            }
        };
        match info.get_str("ipmi_protocol_version").as_deref() {
            None | Some("2.0") => {}
            Some(v) => {
                return Err(invalid(
                    "ipmi_protocol_version",
                    format!("\"{v}\" is not supported; only IPMI 2.0 (lanplus) is"),
                ));
            }
        }
        let disable_boot_timeout = get_bool(
            info,
            "ipmi_disable_boot_timeout",
            config.disable_boot_timeout,
        )?;
        let packet_timeout = get_secs(info, "ipmi_packet_timeout", config.packet_timeout)?;
        let packet_retries = match info.get_str("ipmi_packet_retries") {
            None => config.packet_retries,
            Some(s) => match s.trim().parse::<u32>() {
                Ok(n) if n <= 20 => n,
                _ => {
                    return Err(invalid(
                        "ipmi_packet_retries",
                        format!("\"{s}\" is not a number between 0 and 20"),
                    ));
                }
            },
        };
        let command_retry_timeout = get_secs(
            info,
            "ipmi_command_retry_timeout",
            config.command_retry_timeout,
        )?;
        let terminal_port = get_port(info, "ipmi_terminal_port")?;
        Ok(IpmiDriverInfo {
            address,
            port,
            username,
            password,
            kg,
            cipher_suite,
            priv_level,
            bridging,
            disable_boot_timeout,
            packet_timeout,
            packet_retries,
            command_retry_timeout,
            terminal_port,
        })
    }

    /// `address:port` (brackets around IPv6 addresses), as messages show it.
    pub fn bmc(&self) -> String {
        if self.address.contains(':') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<IpmiDriverInfo, Error> {
        let info: DriverInfo = serde_json::from_value(v).unwrap();
        IpmiDriverInfo::parse(&info, &IpmiConfig::default())
    }

    #[test]
    fn minimal_and_defaults() {
        let i = parse(json!({"ipmi_address": "10.0.0.5"})).unwrap();
        assert_eq!(i.port, 623);
        assert_eq!(i.priv_level, Privilege::Administrator);
        assert_eq!(i.cipher_suite, None);
        assert_eq!(i.bmc(), "10.0.0.5:623");
        let i = parse(json!({"ipmi_address": "[fd00::1]", "ipmi_port": 6230})).unwrap();
        assert_eq!(i.bmc(), "[fd00::1]:6230");
    }

    #[test]
    fn each_bad_key_is_named() {
        let cases = [
            (json!({}), "ipmi_address"),
            (json!({"ipmi_address": ""}), "ipmi_address"),
            (json!({"ipmi_address": "a", "ipmi_port": "x"}), "ipmi_port"),
            (json!({"ipmi_address": "a", "ipmi_port": 0}), "ipmi_port"),
            (
                json!({"ipmi_address": "a", "ipmi_cipher_suite": 1}),
                "ipmi_cipher_suite",
            ),
            (
                json!({"ipmi_address": "a", "ipmi_priv_level": "ROOT"}),
                "ipmi_priv_level",
            ),
            (
                json!({"ipmi_address": "a", "ipmi_bridging": "single"}),
                "ipmi_bridging",
            ),
            (
                json!({"ipmi_address": "a", "ipmi_protocol_version": "1.5"}),
                "ipmi_protocol_version",
            ),
            (
                json!({"ipmi_address": "a", "ipmi_username": "u".repeat(17)}),
                "ipmi_username",
            ),
            (
                json!({"ipmi_address": "a", "ipmi_password": "p".repeat(21)}),
                "ipmi_password",
            ),
            (
                json!({"ipmi_address": "a", "ipmi_hex_kg_key": "zz"}),
                "ipmi_hex_kg_key",
            ),
            (
                json!({"ipmi_address": "a", "ipmi_packet_timeout": -1}),
                "ipmi_packet_timeout",
            ),
            (
                json!({"ipmi_address": "a", "ipmi_packet_retries": "many"}),
                "ipmi_packet_retries",
            ),
            (
                json!({"ipmi_address": "a", "ipmi_disable_boot_timeout": "perhaps"}),
                "ipmi_disable_boot_timeout",
            ),
        ];
        for (v, key) in cases {
            let e = DriverError::from(parse(v.clone()).unwrap_err());
            assert!(e.message().contains(key), "{v}: {e}");
        }
        let e = DriverError::from(parse(json!({})).unwrap_err());
        assert_eq!(e.kind(), ironic_core::ErrorKind::MissingParameter);
    }

    #[test]
    fn password_never_in_debug_or_errors() {
        let i = parse(
            json!({"ipmi_address": "a", "ipmi_password": "hunter2", "ipmi_hex_kg_key": "abcd"}),
        )
        .unwrap();
        let d = format!("{i:?}");
        assert!(!d.contains("hunter2") && !d.contains("abcd"), "{d}");
        let e = parse(json!({"ipmi_address": "a", "ipmi_password": "hunter2hunter2hunter2x"}))
            .unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
    }
}
