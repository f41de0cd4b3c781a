//! The `ironic` configuration: a TOML file (every key documented in
//! `ironic.example.toml`), overridden by `IRONIC__SECTION__KEY` environment
//! variables (`IRONIC__SECTION__SUBSECTION__KEY` for sub-sections such as
//! `[boot.dhcp]` and map entries such as `[switches.NAME]`), then by
//! command-line flags. Defaults work on a laptop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod boot;
mod vnc;

pub use boot::{
    BootDhcp, BootHttp, BootSection, BootTftp, DEFAULT_HARDWARE_TYPES, DhcpModeConfig,
    DriversSection, default_enabled, host_port,
};
pub use vnc::{CONTAINER_PROVIDERS, VncSection};

/// Everything `ironic` reads.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[api]`.
    pub api: ApiConfig,
    /// `[storage]`.
    pub storage: StorageConfig,
    /// `[conductor]`.
    pub conductor: ConductorSection,
    /// `[fake]`.
    pub fake: FakeSection,
    /// `[drivers]`.
    pub drivers: DriversSection,
    /// `[boot]`.
    pub boot: BootSection,
    /// `[redfish]`: settings of the Redfish driver.
    pub redfish: RedfishSection,
    /// `[metrics]`.
    pub metrics: MetricsSection,
    /// `[dashboard]`.
    pub dashboard: DashboardSection,
    /// `[log]`.
    pub log: LogConfig,
    /// `[switch_network]`: the network of each phase (switch network interface).
    pub switch_network: crate::network::SwitchNetworkSection,
    /// `[networks.NAME]`: networks nodes can be put on (VLAN, physical network, MTU).
    pub networks: BTreeMap<String, ironic_core::switch::NetworkDef>,
    /// `[switches.NAME]`: the switches nodes are wired to.
    pub switches: BTreeMap<String, crate::network::SwitchSection>,
    /// `[inspector]`: in-band inspection (extra kernel parameters, LLDP, the
    /// physical network CIDR map).
    pub inspector: crate::network::InspectorSection,
    /// `[inspection_rules]`: built-in rules and secret masking (API 1.96).
    pub inspection_rules: crate::inspection_rules::InspectionRulesSection,
    /// `[vnc]`: graphical consoles (the noVNC proxy, tokens, container provider).
    pub vnc: VncSection,
}

/// How clients authenticate.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthStrategy {
    /// No authentication; `X-Auth-Token` is accepted and ignored.
    #[default]
    Noauth,
    /// HTTP basic auth against an htpasswd file with bcrypt hashes.
    HttpBasic,
}

/// `[api]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address the REST API listens on.
    pub listen: SocketAddr,
    /// Base URL used in links (`links`, `next`, `Location`); default: from the
    /// request's `Host` header.
    pub public_endpoint: Option<String>,
    /// Maximum (and default) page size of lists.
    pub max_limit: usize,
    /// `noauth` or `http_basic`.
    pub auth_strategy: AuthStrategy,
    /// htpasswd file for `http_basic` (bcrypt entries only).
    pub http_basic_auth_user_file: Option<PathBuf>,
    /// Only nodes in lookup-allowed states are returned by `/v1/lookup`.
    pub restrict_lookup: bool,
    /// Seconds between agent heartbeats that the agent is told to keep.
    pub ramdisk_heartbeat_timeout: u64,
    /// Largest request body, KiB (Ironic's `[api]max_json_body_size`).
    pub max_json_body_size: usize,
    /// Largest body of `PUT /v1/nodes/{node}/states/provision`, KiB.
    pub max_json_body_size_provision: usize,
    /// Largest body of `POST /v1/continue_inspection`, KiB.
    pub max_json_body_size_inspection: usize,
    /// Deepest JSON nesting accepted in a request body.
    pub max_json_body_depth: usize,
    /// Largest request head (request line and headers), KiB.
    pub max_header_size: usize,
    /// Seconds to send a whole request head (and the keep-alive idle time).
    pub header_read_timeout: u64,
    /// Seconds to send a whole request body.
    pub body_read_timeout: u64,
    /// Seconds a response write may make no progress.
    pub write_timeout: u64,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Seconds requests in progress get to finish at shutdown.
    pub shutdown_timeout: u64,
    /// Byte budget of one list response, KiB: a page is cut after the item
    /// that crosses it, with a `next` link to the rest.
    pub max_list_body_size: usize,
    /// Memory all large responses (64 KiB and more) being sent may hold at
    /// once, KiB: past it a large response is refused with 503 and `Retry-After`
    /// instead of being held for a client that reads slowly or not at all.
    pub max_response_memory: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 6385)),
            public_endpoint: None,
            max_limit: 1000,
            auth_strategy: AuthStrategy::Noauth,
            http_basic_auth_user_file: None,
            restrict_lookup: true,
            ramdisk_heartbeat_timeout: 300,
            max_json_body_size: 1024,
            max_json_body_size_provision: 65536,
            max_json_body_size_inspection: 16384,
            max_json_body_depth: 25,
            max_header_size: 32,
            header_read_timeout: 30,
            body_read_timeout: 60,
            write_timeout: 60,
            max_connections: 1000,
            shutdown_timeout: 10,
            max_list_body_size: 16384,
            max_response_memory: 262144,
        }
    }
}

impl ApiConfig {
    /// The serving loop's limits.
    pub fn http_limits(&self) -> crate::http::HttpLimits {
        crate::http::HttpLimits {
            header_read_timeout: secs(self.header_read_timeout),
            max_header_size: self.max_header_size.saturating_mul(1024),
            max_headers: 100,
            write_timeout: secs(self.write_timeout),
            max_connections: self.max_connections,
            drain_timeout: secs(self.shutdown_timeout),
        }
    }

    /// The request-body limits of the API.
    pub fn body_limits(&self) -> crate::api::limits::BodyLimits {
        crate::api::limits::BodyLimits {
            max: self.max_json_body_size.saturating_mul(1024),
            provision: self.max_json_body_size_provision.saturating_mul(1024),
            inspection: self.max_json_body_size_inspection.saturating_mul(1024),
            max_depth: self.max_json_body_depth,
            read_timeout: secs(self.body_read_timeout),
        }
    }
}

/// What an `ironic serve` process does (`[conductor] role`, `ironic serve --role`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// API and conductor (the default).
    #[default]
    All,
    /// API only: it owns no node and runs no periodic task; node actions go to
    /// the nodes' owners (`internal_url`), everything else runs here on the
    /// shared database (Ironic's `ironic-api`). It registers with no hardware
    /// types (not listed by `GET /v1/conductors`), so that when it dies the
    /// locks it held are released; its default `host` is `<host name>-api`.
    Api,
    /// A conductor. It serves the API as `all` does: the other processes forward
    /// the actions on its nodes to it there, and ramdisk agents call it there.
    Conductor,
}

/// Which store keeps the state.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// One SQLite file under `data_dir` (durable; the default).
    #[default]
    Sqlite,
    /// In memory (lost at exit; for experiments and scale runs).
    Memory,
    /// A PostgreSQL database (`url`), which several `ironic serve` processes share
    /// as conductors of one deployment.
    Postgres,
}

/// `[storage]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `sqlite`, `memory` or `postgres`.
    pub backend: Backend,
    /// Directory holding `ironic.sqlite` and other state.
    pub data_dir: PathBuf,
    /// Serve reads of nodes, ports, port groups and chassis from an in-memory
    /// mirror (writes still go to SQLite first). SQLite only: with PostgreSQL other
    /// processes write too.
    pub cache: bool,
    /// The PostgreSQL database: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`
    /// (libpq query parameters such as `sslmode` allowed). Never logged with its
    /// password.
    pub url: Option<String>,
    /// Connections in the PostgreSQL pool.
    pub max_connections: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: Backend::Sqlite,
            data_dir: PathBuf::from("./ironic-data"),
            cache: true,
            url: None,
            max_connections: 10,
        }
    }
}

/// `[conductor]`: maps onto `ironic_core::conductor::ConductorConfig`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConductorSection {
    /// Host name recorded in reservations and the conductors list (default: the
    /// machine's host name; `<host name>-api` for `role = "api"`).
    pub host: Option<String>,
    /// Conductor group served.
    pub conductor_group: String,
    /// What this process does: `all`, `api` (no conductor) or `conductor`.
    pub role: Role,
    /// URL of this API that ramdisk agents call back (default: from `api.listen`).
    pub api_url: Option<String>,
    /// URL of this process's API as the other conductors on the same database
    /// reach it: node actions accepted by another conductor's API are forwarded
    /// here when this conductor owns the node (Ironic's RPC to the owner). Default:
    /// `http://<api.listen>`, with `host` for a wildcard listen address.
    pub internal_url: Option<String>,
    /// Bounded worker pool; a full pool answers 503.
    pub max_concurrent_operations: usize,
    /// Clean nodes automatically on `provide` and after undeploy.
    pub automated_clean: bool,
    /// Allow provisioning actions on nodes in maintenance.
    pub allow_provisioning_in_maintenance: bool,
    /// Seconds between power-state syncs (0 disables).
    pub power_state_sync_interval: u64,
    /// Failed power reads before a node goes into maintenance.
    pub power_state_sync_max_retries: u32,
    /// Seconds between checks of nodes in maintenance for power failure.
    pub power_failure_recovery_interval: u64,
    /// Seconds between callback-timeout checks.
    pub check_provision_state_interval: u64,
    /// Seconds to wait for the agent during deploy.
    pub deploy_callback_timeout: u64,
    /// Seconds to wait for the agent during cleaning.
    pub clean_callback_timeout: u64,
    /// Seconds to wait for inspection data.
    pub inspect_wait_timeout: u64,
    /// Seconds to wait for the rescue agent.
    pub rescue_callback_timeout: u64,
    /// Seconds to wait for the agent during servicing.
    pub service_callback_timeout: u64,
    /// Default timeout of power actions, in seconds.
    pub power_state_change_timeout: u64,
    /// Retries when a node is locked.
    pub node_locked_retry_attempts: u32,
    /// Seconds between those retries.
    pub node_locked_retry_interval: u64,
    /// Seconds between conductor keep-alives (each also refreshes the hash rings).
    pub conductor_heartbeat_interval: u64,
    /// Seconds without a keep-alive after which a conductor is offline and its
    /// nodes are taken over (Ironic's `[conductor]heartbeat_timeout`).
    pub heartbeat_timeout: u64,
    /// Seconds between takeover checks of `active` nodes this conductor came to
    /// own (Ironic's `[conductor]sync_local_state_interval`, 180; 0 disables the
    /// periodic check, a ring change still triggers one).
    pub sync_local_state_interval: u64,
    /// Seconds after which a conductor (or API-only process) that stopped
    /// stamping its record is forgotten, once it holds no node lock (86400; 0
    /// keeps offline conductors forever, as Ironic does).
    pub forget_offline_after: u64,
    /// `2^hash_partition_exponent` points per conductor on a hash ring (Ironic's
    /// `[DEFAULT]hash_partition_exponent`, 5 = 32 points).
    pub hash_partition_exponent: u32,
    /// History entries kept per node.
    pub node_history_max_entries: usize,
    /// Free-form settings passed to drivers.
    pub settings: BTreeMap<String, String>,
    /// Time budget per provision state, in seconds (a service-level objective).
    pub state_budgets: BTreeMap<ironic_core::ProvisionState, u64>,
    /// Seconds between checks of the state budgets (0 disables).
    pub state_budget_check_interval: u64,
}

impl Default for ConductorSection {
    fn default() -> Self {
        ConductorSection {
            host: None,
            conductor_group: String::new(),
            role: Role::All,
            api_url: None,
            internal_url: None,
            max_concurrent_operations: 300,
            automated_clean: true,
            allow_provisioning_in_maintenance: true,
            power_state_sync_interval: 120,
            power_state_sync_max_retries: 3,
            power_failure_recovery_interval: 300,
            check_provision_state_interval: 60,
            deploy_callback_timeout: 1800,
            clean_callback_timeout: 1800,
            inspect_wait_timeout: 1800,
            rescue_callback_timeout: 1800,
            service_callback_timeout: 1800,
            power_state_change_timeout: 60,
            node_locked_retry_attempts: 3,
            node_locked_retry_interval: 1,
            conductor_heartbeat_interval: 10,
            heartbeat_timeout: 60,
            sync_local_state_interval: 180,
            forget_offline_after: 86_400,
            hash_partition_exponent: 5,
            node_history_max_entries: 300,
            settings: BTreeMap::new(),
            state_budgets: BTreeMap::new(),
            state_budget_check_interval: 60,
        }
    }
}

/// `[fake]`: the fake-hardware driver. Delays use Ironic's `[fake] *_delay`
/// syntax: `"N"` seconds or `"min,max"` (fractions allowed), `"0"` for none.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FakeSection {
    /// Make `fake-hardware` and the `fake` interfaces available (they are
    /// enabled when `[drivers]` lists them, as its defaults do); false removes
    /// them from the defaults.
    pub enabled: bool,
    /// Delay of fake power actions.
    #[serde(deserialize_with = "delay")]
    pub power_delay: String,
    /// Delay of fake management calls (boot device, ...).
    #[serde(deserialize_with = "delay")]
    pub management_delay: String,
    /// Delay of fake boot preparation.
    #[serde(deserialize_with = "delay")]
    pub boot_delay: String,
    /// Delay of fake deploys.
    #[serde(deserialize_with = "delay")]
    pub deploy_delay: String,
    /// Delay of fake inspection.
    #[serde(deserialize_with = "delay")]
    pub inspect_delay: String,
    /// Delay of fake RAID steps.
    #[serde(deserialize_with = "delay")]
    pub raid_delay: String,
    /// Delay of fake BIOS steps.
    #[serde(deserialize_with = "delay")]
    pub bios_delay: String,
}

impl Default for FakeSection {
    fn default() -> Self {
        FakeSection {
            enabled: true,
            power_delay: "0".into(),
            management_delay: "0".into(),
            boot_delay: "0".into(),
            deploy_delay: "0".into(),
            inspect_delay: "0".into(),
            raid_delay: "0".into(),
            bios_delay: "0".into(),
        }
    }
}

/// `[redfish]`: settings of the Redfish driver (Ironic's `[redfish]`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RedfishSection {
    /// Redfish sessions held at once at one BMC (one per set of credentials);
    /// past it requests wait for one to be handed over (at least 1).
    pub max_sessions_per_bmc: usize,
}

impl Default for RedfishSection {
    fn default() -> Self {
        RedfishSection {
            max_sessions_per_bmc: ironic_drivers_redfish::RedfishConfig::default()
                .max_sessions_per_bmc,
        }
    }
}

impl RedfishSection {
    /// The driver settings: Ironic's defaults with this section's values.
    pub fn driver_config(&self) -> ironic_drivers_redfish::RedfishConfig {
        ironic_drivers_redfish::RedfishConfig {
            max_sessions_per_bmc: self.max_sessions_per_bmc.max(1),
            ..Default::default()
        }
    }
}

/// `[metrics]`: Prometheus metrics at `GET /metrics`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// Serve `GET /metrics` and collect the conductor's and the API's metrics.
    pub enabled: bool,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection { enabled: true }
    }
}

/// `[dashboard]`: the built-in web dashboard at `/dashboard`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardSection {
    /// Serve the dashboard.
    pub enabled: bool,
    /// Hide the buttons that change nodes.
    pub read_only: bool,
}

impl Default for DashboardSection {
    fn default() -> Self {
        DashboardSection {
            enabled: true,
            read_only: false,
        }
    }
}

/// `[log]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter (`info`, `ironic_core=debug,info`, ...). `RUST_LOG` wins.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

/// Log line format.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// A configuration that could not be loaded; the message names the file, the key
/// and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or a key has a wrong type/value.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message: line, column, key and expectation.
        message: String,
    },
    /// An `IRONIC__*` environment variable is wrong.
    #[error("invalid environment override {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// Keys are valid one by one but do not fit together.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Prefix of environment overrides: `IRONIC__API__LISTEN=127.0.0.1:7000`,
/// `IRONIC__BOOT__DHCP__MODE=server` (each `__` goes one section down; names
/// are lower-cased).
pub const ENV_PREFIX: &str = "IRONIC__";

impl Config {
    /// Load `path` (if any), then apply `env` overrides (`(name, value)` pairs; pass
    /// `std::env::vars()`), then check.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (text, shown) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?,
                p.to_owned(),
            ),
            None => (String::new(), PathBuf::from("<defaults>")),
        };
        // Parse the file alone first, so errors point at its lines and keys.
        let _: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: shown.clone(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        // Sorted, so that the outcome does not depend on the environment's order.
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(var, _)| var.starts_with(ENV_PREFIX))
            .collect();
        env.sort();
        for (var, value) in env {
            let rest = &var[ENV_PREFIX.len()..];
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if path.len() < 2 || path.iter().any(String::is_empty) {
                return Err(ConfigError::Env {
                    var,
                    message: "expected IRONIC__<SECTION>__<KEY> or IRONIC__<SECTION>__<SUBSECTION>__<KEY>, e.g. IRONIC__API__LISTEN or IRONIC__BOOT__DHCP__MODE".into(),
                });
            }
            // A TOML literal when it is one and fits the key (`50`, `true`,
            // `["a"]`), else the raw text: `IRONIC__FAKE__POWER_DELAY=2` is the
            // string "2" that key expects, `IRONIC__CONDUCTOR__HOST=1234` a name.
            let typed = parse_env_value(&value);
            let raw = toml::Value::String(value.clone());
            let mut result = check_override(&table, &path, &typed);
            let mut chosen = typed;
            if result.is_err() && !chosen.is_str() && check_override(&table, &path, &raw).is_ok() {
                chosen = raw;
                result = Ok(());
            }
            match result {
                Ok(()) => {}
                // A map entry (`[switches.NAME]`) set key by key: its other
                // required keys may come from the next variables; the whole
                // configuration is checked at the end.
                Err(message) if message.contains("missing field") => {}
                Err(message) => return Err(ConfigError::Env { var, message }),
            }
            if let Err(message) = insert_at(&mut table, &path, chosen) {
                return Err(ConfigError::Env { var, message });
            }
        }
        let text = toml::to_string(&table).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let cfg: Config = toml::from_str(&text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Cross-key checks.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.api.max_limit == 0 {
            return Err(ConfigError::Invalid(
                "api.max_limit must be at least 1".into(),
            ));
        }
        if self.api.auth_strategy == AuthStrategy::HttpBasic
            && self.api.http_basic_auth_user_file.is_none()
        {
            return Err(ConfigError::Invalid(
                "api.auth_strategy = \"http_basic\" needs api.http_basic_auth_user_file (an htpasswd file with bcrypt entries)".into(),
            ));
        }
        if let Some(url) = &self.api.public_endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(format!(
                "api.public_endpoint must be an http:// or https:// URL, got {url:?}"
            )));
        }
        if self.conductor.role == Role::Api && self.storage.backend != Backend::Postgres {
            return Err(ConfigError::Invalid(
                "conductor.role = \"api\" needs a database shared with conductors (storage.backend = \"postgres\")".into(),
            ));
        }
        if let Some(url) = &self.conductor.internal_url
            && (!(url.starts_with("http://") || url.starts_with("https://"))
                || reqwest::Url::parse(url).is_err())
        {
            return Err(ConfigError::Invalid(format!(
                "conductor.internal_url must be an http:// or https:// URL, got {url:?}"
            )));
        }
        for (key, v) in [
            ("power_delay", &self.fake.power_delay),
            ("management_delay", &self.fake.management_delay),
            ("boot_delay", &self.fake.boot_delay),
            ("deploy_delay", &self.fake.deploy_delay),
            ("inspect_delay", &self.fake.inspect_delay),
            ("raid_delay", &self.fake.raid_delay),
            ("bios_delay", &self.fake.bios_delay),
        ] {
            ironic_core::fake::Delay::parse(v)
                .map_err(|e| ConfigError::Invalid(format!("fake.{key} = {v:?}: {e}")))?;
        }
        self.boot.check()?;
        self.drivers.check()?;
        self.vnc.check()?;
        if crate::network::enabled(self) {
            crate::network::build(self).map_err(ConfigError::Invalid)?;
        }
        crate::network::inspect_config(self).map_err(ConfigError::Invalid)?;
        match (&self.storage.backend, &self.storage.url) {
            (Backend::Postgres, None) => {
                return Err(ConfigError::Invalid(
                    "storage.backend = \"postgres\" needs storage.url (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE; or IRONIC__STORAGE__URL)".into(),
                ));
            }
            (Backend::Postgres, Some(url))
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) =>
            {
                return Err(ConfigError::Invalid(format!(
                    "storage.url must be a postgres:// URL, got {}",
                    ironic_core::store::redact_url(url)
                )));
            }
            (Backend::Sqlite | Backend::Memory, Some(_)) => {
                return Err(ConfigError::Invalid(
                    "storage.url is only read with storage.backend = \"postgres\"".into(),
                ));
            }
            _ => {}
        }
        if self.storage.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "storage.max_connections must be at least 1".into(),
            ));
        }
        let a = &self.api;
        for (key, v, min) in [
            ("max_json_body_size", a.max_json_body_size, 4),
            (
                "max_json_body_size_provision",
                a.max_json_body_size_provision,
                4,
            ),
            (
                "max_json_body_size_inspection",
                a.max_json_body_size_inspection,
                4,
            ),
            ("max_json_body_depth", a.max_json_body_depth, 8),
            ("max_header_size", a.max_header_size, 8),
            ("max_connections", a.max_connections, 1),
            ("max_list_body_size", a.max_list_body_size, 64),
            ("max_response_memory", a.max_response_memory, 1024),
        ] {
            if v < min {
                return Err(ConfigError::Invalid(format!(
                    "api.{key} = {v}: must be at least {min}"
                )));
            }
        }
        for (key, v) in [
            ("header_read_timeout", a.header_read_timeout),
            ("body_read_timeout", a.body_read_timeout),
            ("write_timeout", a.write_timeout),
        ] {
            if v == 0 {
                return Err(ConfigError::Invalid(format!(
                    "api.{key} must be at least 1 second"
                )));
            }
        }
        if self.conductor.max_concurrent_operations == 0 {
            return Err(ConfigError::Invalid(
                "conductor.max_concurrent_operations must be at least 1".into(),
            ));
        }
        let c = &self.conductor;
        if c.conductor_heartbeat_interval == 0
            || c.heartbeat_timeout <= c.conductor_heartbeat_interval
        {
            return Err(ConfigError::Invalid(format!(
                "conductor.heartbeat_timeout ({} s) must be longer than conductor.conductor_heartbeat_interval ({} s), which must be at least 1: \
                 otherwise live conductors are judged offline between two keep-alives",
                c.heartbeat_timeout, c.conductor_heartbeat_interval
            )));
        }
        if c.hash_partition_exponent > 12 {
            return Err(ConfigError::Invalid(format!(
                "conductor.hash_partition_exponent = {} is too large (at most 12: 4096 points per conductor)",
                c.hash_partition_exponent
            )));
        }
        Ok(())
    }

    /// The conductor's host name: configured, else the machine's (with `-api`
    /// for `role = "api"`), else `localhost`.
    pub fn host(&self) -> String {
        if let Some(h) = &self.conductor.host {
            return h.clone();
        }
        let machine = machine_host();
        // An API-only process registers too (so the locks it holds when it dies
        // are released): beside a conductor on the same machine it needs a name
        // of its own.
        if self.conductor.role == Role::Api {
            format!("{machine}-api")
        } else {
            machine
        }
    }

    /// Where the other conductors reach this process's API (`conductor.internal_url`,
    /// else `http://<api.listen>` with the conductor's host name for a wildcard
    /// address, as Ironic's JSON-RPC reaches a conductor by its host name).
    pub fn internal_url(&self) -> String {
        if let Some(u) = &self.conductor.internal_url {
            return u.trim_end_matches('/').to_owned();
        }
        let l = self.api.listen;
        if l.ip().is_unspecified() {
            let host = self.conductor.host.clone().unwrap_or_else(machine_host);
            format!("http://{host}:{}", l.port())
        } else {
            format!("http://{l}")
        }
    }

    /// The callback URL given to ramdisk agents: `conductor.api_url`, else
    /// `api.public_endpoint`, else `http://<api.listen>` (with `boot.address` for a
    /// wildcard listen address).
    pub fn api_url(&self) -> String {
        self.conductor
            .api_url
            .clone()
            .or_else(|| self.api.public_endpoint.clone())
            .unwrap_or_else(|| {
                let host = host_port(self.api.listen, self.boot.address)
                    .unwrap_or_else(|| self.api.listen.to_string());
                format!("http://{host}")
            })
    }
}

/// Put `value` at `path` (`["boot", "dhcp", "mode"]`) of `table`, creating the
/// sections on the way; an error when something on the way is not a section.
fn insert_at(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (key, sections) = path.split_last().ok_or("empty path")?;
    let mut t = table;
    for (i, name) in sections.iter().enumerate() {
        let entry = t
            .entry(name.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry
            .as_table_mut()
            .ok_or_else(|| format!("{} is a key, not a section", path[..=i].join(".")))?;
    }
    t.insert(key.clone(), value);
    Ok(())
}

/// Whether the configuration `table` with `value` at `path` is valid; the error
/// message otherwise (one line, naming the key and the value).
fn check_override(table: &toml::Table, path: &[String], value: &toml::Value) -> Result<(), String> {
    let shown = format!("{} = {value}", path.join("."));
    let mut probe = table.clone();
    insert_at(&mut probe, path, value.clone()).map_err(|e| format!("{shown}: {e}"))?;
    toml::Value::Table(probe)
        .try_into::<Config>()
        .map(|_| ())
        .map_err(|e| format!("{shown}: {}", e.to_string().trim_end().replace('\n', " ")))
}

/// A fake-hardware delay: Ironic's string syntax (`"2"`, `"0.5"`, `"1,3"`), or a
/// bare number of seconds (`power_delay = 2`).
fn delay<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(i64),
        Float(f64),
        Text(String),
    }
    let why = "a delay: seconds as a number (2, 0.5) or a string (\"2\", \"1,3\" for a random delay between)";
    match Raw::deserialize(d).map_err(|_| serde::de::Error::custom(why))? {
        Raw::Int(n) => Ok(n.to_string()),
        Raw::Float(f) => Ok(f.to_string()),
        Raw::Text(t) => Ok(t),
    }
}

fn parse_env_value(v: &str) -> toml::Value {
    // A TOML literal (number, bool, array, quoted string) if it parses as one,
    // else the raw string.
    let doc = format!("v = {v}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(v.into())),
        Err(_) => toml::Value::String(v.into()),
    }
}

/// Seconds as a [`Duration`].
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The machine's host name (`localhost` when it has none).
fn machine_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(s: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ironic.toml");
        std::fs::write(&p, s).unwrap();
        Config::load(
            Some(&p),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn defaults_work_on_a_laptop() {
        let c = Config::load(None, []).unwrap();
        assert_eq!(c.api.listen.to_string(), "127.0.0.1:6385");
        assert_eq!(c.storage.data_dir, PathBuf::from("./ironic-data"));
        assert!(c.fake.enabled);
        assert_eq!(c.api.auth_strategy, AuthStrategy::Noauth);
    }

    #[test]
    fn the_shipped_example_is_the_defaults() {
        let text = include_str!("../ironic.example.toml");
        let c: Config = toml::from_str(text).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn bad_keys_and_types_are_named() {
        let e = load_str("[api]\nmax_limit = \"lots\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_limit") && e.contains("line 2"), "{e}");
        let e = load_str("[api]\nlisten = \"nowhere\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen"), "{e}");
        let e = load_str("[api]\nlisen = \"127.0.0.1:1\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("lisen") && e.contains("listen"), "{e}");
        let e = load_str("[nope]\n", &[]).unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
        let e = load_str("[api]\nauth_strategy = \"http_basic\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("http_basic_auth_user_file"), "{e}");
    }

    #[test]
    fn env_overrides_win_and_are_checked() {
        let c = load_str(
            "[api]\nlisten = \"127.0.0.1:7000\"\n",
            &[
                ("IRONIC__API__LISTEN", "127.0.0.1:7001"),
                ("IRONIC__API__MAX_LIMIT", "50"),
                ("IRONIC__STORAGE__BACKEND", "memory"),
                ("HOME", "/root"),
            ],
        )
        .unwrap();
        assert_eq!(c.api.listen.to_string(), "127.0.0.1:7001");
        assert_eq!(c.api.max_limit, 50);
        assert_eq!(c.storage.backend, Backend::Memory);
        let e = load_str("", &[("IRONIC__API__MAX_LIMIT", "many")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("IRONIC__API__MAX_LIMIT"), "{e}");
        let e = load_str("", &[("IRONIC__API", "x")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("IRONIC__<SECTION>__<KEY>"), "{e}");
        let e = load_str("", &[("IRONIC__API__NOPE", "1")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn boot_and_drivers_keys_are_checked_together() {
        let e = |t: &str| load_str(t, &[]).unwrap_err().to_string();
        let m = e("[boot.dhcp]\nmode = \"server\"\n");
        assert!(m.contains("boot.dhcp.interface"), "{m}");
        let m = e(
            "[boot]\naddress = \"10.0.0.1\"\n[boot.dhcp]\nmode = \"server\"\ninterface = \"eth1\"\n",
        );
        assert!(m.contains("pool_start"), "{m}");
        let m = e(
            "[boot]\naddress = \"10.0.0.1\"\n[boot.dhcp]\nmode = \"server\"\ninterface = \"eth1\"\npool_start = \"10.0.1.10\"\npool_end = \"10.0.1.20\"\n",
        );
        assert!(m.contains("10.0.1.10") && m.contains("subnet"), "{m}");
        let m = e("[boot.dhcp]\nmode = \"proxy\"\ninterface = \"eth1\"\n");
        assert!(m.contains("boot.address"), "{m}");
        let m = e("[boot.dhcp]\nmode = \"relay\"\n");
        assert!(m.contains("relay") && m.contains("proxy"), "{m}");
        let m = e("[boot.tftp]\nenable = true\n");
        assert!(m.contains("enable") && m.contains("enabled"), "{m}");
        let m = e("[drivers]\nenabled_boot_interfaces = []\n");
        assert!(m.contains("enabled_boot_interfaces"), "{m}");
        let m = e(
            "[drivers]\nenabled_boot_interfaces = [\"ipxe\"]\ndefault_boot_interface = \"pxe\"\n",
        );
        assert!(m.contains("default_boot_interface"), "{m}");
        let c = load_str(
            "[boot]\naddress = \"10.0.0.1\"\n[boot.dhcp]\nmode = \"server\"\ninterface = \"eth1\"\npool_start = \"10.0.0.100\"\npool_end = \"10.0.0.199\"\n",
            &[("IRONIC__BOOT__KERNEL_APPEND_PARAMS", "quiet")],
        )
        .unwrap();
        assert_eq!(c.boot.dhcp.mode, DhcpModeConfig::Server);
        assert_eq!(c.boot.kernel_append_params, "quiet");
    }

    #[test]
    fn numbers_are_accepted_where_a_delay_is_expected() {
        let c = load_str(
            "[fake]\npower_delay = 2\nboot_delay = 0.5\ndeploy_delay = \"1,3\"\n",
            &[
                ("IRONIC__FAKE__MANAGEMENT_DELAY", "2"),
                ("IRONIC__FAKE__RAID_DELAY", "0.25"),
                ("IRONIC__FAKE__BIOS_DELAY", "1,2"),
                ("IRONIC__CONDUCTOR__HOST", "1234"),
            ],
        )
        .unwrap();
        assert_eq!(c.fake.power_delay, "2");
        assert_eq!(c.fake.boot_delay, "0.5");
        assert_eq!(c.fake.deploy_delay, "1,3");
        assert_eq!(c.fake.management_delay, "2");
        assert_eq!(c.fake.raid_delay, "0.25");
        assert_eq!(c.fake.bios_delay, "1,2");
        assert_eq!(c.conductor.host.as_deref(), Some("1234"));
        // A wrong value is still refused with the variable named.
        let e = load_str("", &[("IRONIC__FAKE__POWER_DELAY", "soon")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("power_delay") && e.contains("soon"), "{e}");
        let e = load_str("[fake]\npower_delay = true\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("a delay"), "{e}");
        // A number where a number is expected stays a number.
        let e = load_str("", &[("IRONIC__API__MAX_LIMIT", "lots")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("IRONIC__API__MAX_LIMIT"), "{e}");
    }

    #[test]
    fn env_overrides_reach_sub_sections_and_map_entries() {
        let c = load_str(
            "[boot]\naddress = \"10.0.0.1\"\n",
            &[
                ("IRONIC__BOOT__DHCP__MODE", "server"),
                ("IRONIC__BOOT__DHCP__INTERFACE", "eth1"),
                ("IRONIC__BOOT__DHCP__POOL_START", "10.0.0.100"),
                ("IRONIC__BOOT__DHCP__POOL_END", "10.0.0.199"),
                ("IRONIC__BOOT__DHCP__DNS_SERVERS", "[\"10.0.0.53\"]"),
                ("IRONIC__BOOT__TFTP__ENABLED", "true"),
                ("IRONIC__BOOT__HTTP__LISTEN", "10.0.0.1:8080"),
                ("IRONIC__CONDUCTOR__SETTINGS__SITE", "lab"),
                ("IRONIC__NETWORKS__PROVISIONING__VLAN", "10"),
                // the required vlan comes from the next variable
                ("IRONIC__NETWORKS__TENANT__MTU", "9000"),
                ("IRONIC__NETWORKS__TENANT__VLAN", "100"),
                (
                    "IRONIC__SWITCH_NETWORK__PROVISIONING_NETWORK",
                    "provisioning",
                ),
                ("IRONIC__SWITCHES__TOR1__DRIVER", "ovs"),
                (
                    "IRONIC__SWITCHES__TOR1__ADDRESS",
                    "unix:/run/openvswitch/db.sock",
                ),
                ("IRONIC__SWITCHES__TOR1__OPTIONS__BRIDGE", "br-metal"),
            ],
        )
        .unwrap();
        assert_eq!(c.boot.dhcp.mode, DhcpModeConfig::Server);
        assert_eq!(c.boot.dhcp.interface.as_deref(), Some("eth1"));
        assert_eq!(
            c.boot.dhcp.pool_start,
            Some(std::net::Ipv4Addr::new(10, 0, 0, 100))
        );
        assert_eq!(
            c.boot.dhcp.dns_servers,
            vec![std::net::Ipv4Addr::new(10, 0, 0, 53)]
        );
        assert!(c.boot.tftp.enabled);
        assert_eq!(c.boot.http.listen, Some("10.0.0.1:8080".parse().unwrap()));
        assert_eq!(c.conductor.settings["site"], "lab");
        assert_eq!(c.networks["provisioning"].vlan, 10);
        assert_eq!(c.networks["tenant"].vlan, 100);
        assert_eq!(c.networks["tenant"].mtu, Some(9000));
        assert_eq!(c.switches["tor1"].driver, "ovs");
        assert_eq!(
            c.switches["tor1"].options["bridge"],
            toml::Value::String("br-metal".into())
        );
        // An environment variable wins over the file's sub-section.
        let c = load_str(
            "[boot.tftp]\nenabled = true\nlisten = \"127.0.0.1:6969\"\n",
            &[("IRONIC__BOOT__TFTP__LISTEN", "127.0.0.1:7070")],
        )
        .unwrap();
        assert_eq!(c.boot.tftp.listen.to_string(), "127.0.0.1:7070");
        assert!(c.boot.tftp.enabled);

        let env_err = |vars: &[(&str, &str)]| match load_str("", vars) {
            Err(ConfigError::Env { var, message }) => format!("{var}: {message}"),
            other => panic!("{vars:?}: expected an environment error, got {other:?}"),
        };
        // Unknown keys are named, with the ones that exist.
        let e = env_err(&[("IRONIC__BOOT__DHCP__NOPE", "1")]);
        assert!(
            e.starts_with("IRONIC__BOOT__DHCP__NOPE")
                && e.contains("boot.dhcp.nope")
                && e.contains("pool_start"),
            "{e}"
        );
        let e = env_err(&[("IRONIC__BOOT__DCHP__MODE", "server")]);
        assert!(e.contains("dchp") && e.contains("dhcp"), "{e}");
        // Wrong values are named with the key.
        let e = env_err(&[("IRONIC__BOOT__DHCP__MODE", "relay")]);
        assert!(e.contains("boot.dhcp.mode") && e.contains("relay"), "{e}");
        let e = env_err(&[("IRONIC__BOOT__TFTP__LISTEN", "nowhere")]);
        assert!(
            e.contains("boot.tftp.listen") && e.contains("nowhere"),
            "{e}"
        );
        // A key is not a section, a section is not a key.
        let e = env_err(&[("IRONIC__BOOT__DHCP__MODE__X", "1")]);
        assert!(e.contains("boot.dhcp.mode.x") && e.contains("off"), "{e}");
        let e = load_str(
            "[boot.dhcp]\nmode = \"off\"\n",
            &[("IRONIC__BOOT__DHCP__MODE__X", "1")],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("boot.dhcp.mode is a key, not a section"), "{e}");
        let e = env_err(&[("IRONIC__BOOT__TFTP", "true")]);
        assert!(e.contains("boot.tftp"), "{e}");
        let e = env_err(&[("IRONIC__BOOT__DHCP__", "1")]);
        assert!(e.contains("IRONIC__<SECTION>__<SUBSECTION>__<KEY>"), "{e}");
        // A map entry still missing a required key after every variable.
        let e = load_str("", &[("IRONIC__NETWORKS__TENANT__MTU", "9000")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("vlan"), "{e}");
    }

    /// Every key `ironic.example.toml` documents, set or shown commented out
    /// (`# key = value` under its section, `# [switches.NAME]` too), can be set
    /// from the environment with the example's value: the variable is accepted
    /// (a cross-key check may still refuse a key alone, as `storage.url` without
    /// the postgres backend) and its value lands in the configuration.
    #[test]
    fn every_documented_key_can_come_from_the_environment() {
        let text = include_str!("../ironic.example.toml");
        let mut section: Vec<String> = Vec::new();
        let mut keys = 0;
        for line in text.lines() {
            let l = line.trim_start_matches('#').trim();
            if l.starts_with('[') && l.ends_with(']') && !l.contains(' ') {
                section = l
                    .trim_matches(|c| c == '[' || c == ']')
                    .split('.')
                    .map(str::to_owned)
                    .collect();
                continue;
            }
            let Some((key, value)) = l.split_once(" = ") else {
                continue;
            };
            if key.is_empty()
                || !key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c))
            {
                continue;
            }
            // the value without a trailing comment
            let value = match value.find("  #") {
                Some(i) => value[..i].trim(),
                None => value.trim(),
            };
            let mut path = section.clone();
            path.push(key.to_owned());
            let var = format!("{ENV_PREFIX}{}", path.join("__").to_ascii_uppercase());
            keys += 1;
            let want = parse_env_value(value);
            match load_str("", &[(var.as_str(), value)]) {
                Ok(c) => {
                    // The value is where the file would put it.
                    let mut doc = toml::Table::new();
                    insert_at(&mut doc, &path, want.clone()).unwrap();
                    let from_file: Config = toml::Value::Table(doc).try_into().unwrap();
                    assert_eq!(c, from_file, "{var}={value}");
                }
                Err(ConfigError::Invalid(m)) => {
                    assert!(!m.contains("unknown field"), "{var}={value}: {m}")
                }
                Err(e) => panic!("{var}={value}: {e}"),
            }
        }
        assert!(keys > 100, "only {keys} documented keys found");
    }

    #[test]
    fn missing_file_is_reported() {
        let e = Config::load(Some(Path::new("/nonexistent/ironic.toml")), [])
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/ironic.toml"), "{e}");
    }
}
