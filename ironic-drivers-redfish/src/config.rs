//! Configuration: [`RedfishConfig`] (the application's settings for the driver,
//! Ironic's `[redfish]` section) and [`RedfishDriverInfo`] (a node's typed
//! `driver_info`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ironic_core::driver::PropertyDoc;
use ironic_core::{DriverInfo, Secret};

use crate::error::{RedfishError, Result};

/// The driver's settings (Ironic's `[redfish]` options). `Default` gives Ironic's
/// defaults where Ironic has one.
#[derive(Clone, Debug, PartialEq)]
pub struct RedfishConfig {
    /// TCP/TLS connect timeout (`[redfish]connect_timeout`, 30 s).
    pub connect_timeout: Duration,
    /// Whole-request timeout (`[redfish]read_timeout`, 60 s).
    pub read_timeout: Duration,
    /// Attempts per request on 5xx or connection errors (`[redfish]connection_attempts`, 5).
    pub connection_attempts: u32,
    /// First pause between attempts; it doubles each time up to [`Self::max_retry_interval`].
    pub retry_interval: Duration,
    /// Longest pause between attempts (`[redfish]connection_retry_interval`, 4 s).
    pub max_retry_interval: Duration,
    /// How long to wait for a power change to be observed (`[conductor]power_state_change_timeout`, 60 s).
    pub power_state_timeout: Duration,
    /// How often to read the power state while waiting.
    pub power_poll_interval: Duration,
    /// How long a BMC task (firmware update, volume creation) may run
    /// (`[redfish]firmware_update_overall_timeout`, 7200 s).
    pub task_timeout: Duration,
    /// How often to poll a task monitor.
    pub task_poll_interval: Duration,
    /// How long to wait for BIOS settings to show after the reboot that applies them.
    pub bios_apply_timeout: Duration,
    /// `redfish_auth_type` when a node does not set one (`[redfish]auth_type`, auto).
    pub default_auth_type: AuthType,
    /// Idle connections kept per BMC.
    pub max_idle_connections_per_bmc: usize,
    /// Redfish sessions held at once at one BMC by the clients of one
    /// [`register`](crate::register) call (one per set of credentials; 4, the
    /// fewest BMCs allow). Past it, a client waits for an idle one to be logged
    /// out or a busy one to be handed over, at most
    /// [`read_timeout`](Self::read_timeout).
    pub max_sessions_per_bmc: usize,
}

impl Default for RedfishConfig {
    fn default() -> Self {
        RedfishConfig {
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            connection_attempts: 5,
            retry_interval: Duration::from_millis(500),
            max_retry_interval: Duration::from_secs(4),
            power_state_timeout: Duration::from_secs(60),
            power_poll_interval: Duration::from_secs(1),
            task_timeout: Duration::from_secs(7200),
            task_poll_interval: Duration::from_secs(5),
            bios_apply_timeout: Duration::from_secs(600),
            default_auth_type: AuthType::Auto,
            max_idle_connections_per_bmc: 4,
            max_sessions_per_bmc: 4,
        }
    }
}

/// `redfish_auth_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthType {
    /// HTTP basic auth on every request.
    Basic,
    /// A Redfish session (`X-Auth-Token`), re-created when the BMC answers 401.
    Session,
    /// A session when the BMC offers a SessionService, basic auth otherwise.
    Auto,
}

impl AuthType {
    /// Ironic's string.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthType::Basic => "basic",
            AuthType::Session => "session",
            AuthType::Auto => "auto",
        }
    }
}

impl FromStr for AuthType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "basic" => Ok(AuthType::Basic),
            "session" => Ok(AuthType::Session),
            "auto" => Ok(AuthType::Auto),
            _ => Err(format!(
                "Invalid value {s:?} for redfish_auth_type: expected basic, session or auto"
            )),
        }
    }
}

/// How to check the BMC's TLS certificate (`redfish_verify_ca`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum VerifyCa {
    /// `true` (the default): verify against the public WebPKI roots.
    Default,
    /// `false`: do not verify. Explicit per node, as in Ironic.
    Disabled,
    /// A path to a PEM bundle: verify against these CAs; a self-signed BMC
    /// certificate that appears in the bundle itself is accepted too.
    Bundle(PathBuf),
    /// `sha256:<64 hex digits>`: accept exactly the certificate with this SHA-256
    /// fingerprint (colons allowed between bytes).
    Fingerprint([u8; 32]),
}

impl fmt::Debug for VerifyCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyCa::Default => f.write_str("true"),
            VerifyCa::Disabled => f.write_str("false"),
            VerifyCa::Bundle(p) => write!(f, "{}", p.display()),
            VerifyCa::Fingerprint(fp) => {
                f.write_str("sha256:")?;
                fp.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

impl VerifyCa {
    fn parse(v: &serde_json::Value) -> Result<Self> {
        let bad = |s: &str| {
            RedfishError::InvalidParameter(format!(
                "Invalid value {s:?} for redfish_verify_ca: expected a boolean, the path of a CA bundle, or \"sha256:<hex fingerprint>\""
            ))
        };
        let s = match v {
            serde_json::Value::Bool(true) => return Ok(VerifyCa::Default),
            serde_json::Value::Bool(false) => return Ok(VerifyCa::Disabled),
            serde_json::Value::String(s) => s.trim(),
            other => return Err(bad(&other.to_string())),
        };
        match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" | "y" | "t" => return Ok(VerifyCa::Default),
            "false" | "no" | "0" | "off" | "n" | "f" => return Ok(VerifyCa::Disabled),
            _ => {}
        }
        if let Some(hex) = s
            .strip_prefix("sha256:")
            .or_else(|| s.strip_prefix("SHA256:"))
        {
            let digits: String = hex.chars().filter(|c| *c != ':').collect();
            if digits.len() != 64 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad(s));
            }
            let mut fp = [0u8; 32];
            for (i, b) in fp.iter_mut().enumerate() {
                *b = u8::from_str_radix(&digits[i * 2..i * 2 + 2], 16).map_err(|_| bad(s))?;
            }
            return Ok(VerifyCa::Fingerprint(fp));
        }
        let path = PathBuf::from(s);
        if !path.is_file() {
            return Err(RedfishError::InvalidParameter(format!(
                "redfish_verify_ca is {s:?}, which is neither a boolean, a \"sha256:\" fingerprint nor an existing CA bundle file"
            )));
        }
        Ok(VerifyCa::Bundle(path))
    }
}

/// A node's `driver_info` for Redfish, parsed and checked.
#[derive(Clone, PartialEq)]
pub struct RedfishDriverInfo {
    /// The BMC's base URL, `scheme://host[:port]` (no path, no trailing slash).
    /// `redfish_address` without a scheme gets `https://`, as in Ironic.
    pub address: String,
    /// `redfish_system_id`: the system's `@odata.id` (`/redfish/v1/Systems/1`) or
    /// its `Id`; optional when the BMC has one system.
    pub system_id: Option<String>,
    /// `redfish_username`.
    pub username: Option<String>,
    /// `redfish_password`.
    pub password: Option<Secret>,
    /// `redfish_verify_ca`.
    pub verify_ca: VerifyCa,
    /// `redfish_auth_type`.
    pub auth_type: AuthType,
}

impl fmt::Debug for RedfishDriverInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedfishDriverInfo")
            .field("address", &self.address)
            .field("system_id", &self.system_id)
            .field("username", &self.username)
            .field(
                "password",
                &self.password.as_ref().map(|_| ironic_core::secret::MASK),
            )
            .field("verify_ca", &self.verify_ca)
            .field("auth_type", &self.auth_type)
            .finish()
    }
}

/// The `driver_info` keys of the Redfish interfaces.
pub const PROPERTIES: &[PropertyDoc] = &[
    PropertyDoc::required(
        "redfish_address",
        "The URL address to the Redfish controller. It must include the authority portion of the URL, and can optionally include the scheme. If the scheme is missing, https is assumed. For example: https://mgmt.vendor.com.",
    ),
    PropertyDoc::optional(
        "redfish_system_id",
        "The canonical path to the ComputerSystem resource that the driver will interact with. It should include the root service, version and the unique resource path to the ComputerSystem. For example: /redfish/v1/Systems/1. Optional when the BMC manages one system.",
    ),
    PropertyDoc::optional(
        "redfish_username",
        "User account with admin/server-profile access privilege.",
    ),
    PropertyDoc::optional("redfish_password", "User account password."),
    PropertyDoc::optional(
        "redfish_verify_ca",
        "Either a Boolean value, a path to a CA_BUNDLE file (which may hold the BMC's self-signed certificate), or \"sha256:<hex>\", the fingerprint of the BMC's certificate. Defaults to True; False disables verification.",
    ),
    PropertyDoc::optional(
        "redfish_auth_type",
        "Redfish HTTP client authentication method. One of \"basic\", \"session\" or \"auto\". Defaults to the driver's configured value (auto).",
    ),
];

fn opt_str(info: &DriverInfo, key: &str) -> Option<String> {
    info.get_str(key)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Normalise `redfish_address` into `scheme://host[:port]`.
pub(crate) fn normalize_address(raw: &str) -> Result<String> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("https://{raw}")
    };
    let url = reqwest::Url::parse(&with_scheme).map_err(|e| {
        RedfishError::InvalidParameter(format!(
            "Invalid redfish_address {raw:?}: {e}; expected e.g. https://10.0.0.5 or 10.0.0.5:8443"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(RedfishError::InvalidParameter(format!(
            "Invalid redfish_address {raw:?}: the scheme must be http or https"
        )));
    }
    let Some(host) = url.host_str() else {
        return Err(RedfishError::InvalidParameter(format!(
            "Invalid redfish_address {raw:?}: no host"
        )));
    };
    let path = url.path().trim_end_matches('/');
    if !path.is_empty() && path != "/redfish/v1" && path != "/redfish" {
        return Err(RedfishError::InvalidParameter(format!(
            "Invalid redfish_address {raw:?}: it must not have a path (put the system's path in redfish_system_id)"
        )));
    }
    let mut out = format!("{}://{}", url.scheme(), host);
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    Ok(out)
}

impl RedfishDriverInfo {
    /// Parse a node's `driver_info`; `default_auth` stands in for a missing
    /// `redfish_auth_type`. Never contacts the BMC (it does check that a CA
    /// bundle path exists).
    pub fn parse(
        info: &DriverInfo,
        default_auth: AuthType,
    ) -> Result<Self, ironic_core::DriverError> {
        Ok(Self::parse_inner(info, default_auth)?)
    }

    pub(crate) fn parse_inner(info: &DriverInfo, default_auth: AuthType) -> Result<Self> {
        let address = opt_str(info, "redfish_address").ok_or_else(|| {
            RedfishError::MissingParameter(
                "Missing the following Redfish properties in node's driver_info: redfish_address"
                    .into(),
            )
        })?;
        let address = normalize_address(&address)?;
        let system_id = opt_str(info, "redfish_system_id");
        let username = opt_str(info, "redfish_username");
        let password = info
            .get_str("redfish_password")
            .filter(|s| !s.is_empty())
            .map(Secret::new);
        if username.is_some() != password.is_some() {
            return Err(RedfishError::MissingParameter(format!(
                "Redfish driver_info must set both redfish_username and redfish_password or neither (only {} is set)",
                if username.is_some() {
                    "redfish_username"
                } else {
                    "redfish_password"
                }
            )));
        }
        let verify_ca = match info.get("redfish_verify_ca") {
            None | Some(serde_json::Value::Null) => VerifyCa::Default,
            Some(v) => VerifyCa::parse(v)?,
        };
        let auth_type = match opt_str(info, "redfish_auth_type") {
            None => default_auth,
            Some(s) => s.parse().map_err(RedfishError::InvalidParameter)?,
        };
        Ok(RedfishDriverInfo {
            address,
            system_id,
            username,
            password,
            verify_ca,
            auth_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info(v: serde_json::Value) -> DriverInfo {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn parses_ironic_driver_info() {
        let di = RedfishDriverInfo::parse_inner(
            &info(json!({
                "redfish_address": "10.0.0.5:8443",
                "redfish_system_id": "/redfish/v1/Systems/1",
                "redfish_username": "admin",
                "redfish_password": "s3cret",
                "redfish_verify_ca": "False",
                "redfish_auth_type": "session",
            })),
            AuthType::Auto,
        )
        .unwrap();
        assert_eq!(di.address, "https://10.0.0.5:8443");
        assert_eq!(di.verify_ca, VerifyCa::Disabled);
        assert_eq!(di.auth_type, AuthType::Session);
        let dbg = format!("{di:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
    }

    #[test]
    fn missing_and_bad_values_are_named() {
        let e = RedfishDriverInfo::parse(&info(json!({})), AuthType::Auto).unwrap_err();
        assert_eq!(e.kind(), ironic_core::ErrorKind::MissingParameter);
        assert!(e.message().contains("redfish_address"));
        let e = RedfishDriverInfo::parse(
            &info(json!({"redfish_address": "h", "redfish_auth_type": "kerberos"})),
            AuthType::Auto,
        )
        .unwrap_err();
        assert!(e.message().contains("redfish_auth_type"), "{e}");
        let e = RedfishDriverInfo::parse(
            &info(json!({"redfish_address": "h", "redfish_verify_ca": "/no/such/bundle.pem"})),
            AuthType::Auto,
        )
        .unwrap_err();
        assert!(e.message().contains("redfish_verify_ca"), "{e}");
        let e =
            RedfishDriverInfo::parse(&info(json!({"redfish_address": "ftp://h"})), AuthType::Auto)
                .unwrap_err();
        assert_eq!(e.kind(), ironic_core::ErrorKind::InvalidParameter);
        let e = RedfishDriverInfo::parse(
            &info(json!({"redfish_address": "h", "redfish_username": "u"})),
            AuthType::Auto,
        )
        .unwrap_err();
        assert!(e.message().contains("redfish_password"), "{e}");
    }

    #[test]
    fn addresses_normalise() {
        assert_eq!(normalize_address("bmc").unwrap(), "https://bmc");
        assert_eq!(
            normalize_address("http://127.0.0.1:8000/").unwrap(),
            "http://127.0.0.1:8000"
        );
        assert_eq!(
            normalize_address("https://[::1]:8443/redfish/v1/").unwrap(),
            "https://[::1]:8443"
        );
        assert!(normalize_address("https://bmc/some/path").is_err());
    }

    #[test]
    fn fingerprints_parse() {
        let fp = "sha256:".to_owned() + &"ab:".repeat(31) + "ab";
        assert_eq!(
            VerifyCa::parse(&json!(fp)).unwrap(),
            VerifyCa::Fingerprint([0xab; 32])
        );
        assert!(VerifyCa::parse(&json!("sha256:abcd")).is_err());
        assert_eq!(VerifyCa::parse(&json!(true)).unwrap(), VerifyCa::Default);
        assert!(VerifyCa::parse(&json!(3)).is_err());
    }
}
