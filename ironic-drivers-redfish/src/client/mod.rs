//! The Redfish HTTP client: authentication (basic, sessions with re-login on
//! 401), TLS, connection reuse, timeouts, retries with backoff on 5xx and
//! connection errors, ETag/`If-Match` on PATCH, `@Redfish.Settings`, and task
//! monitors for `202 Accepted`.

mod auth;
mod sessions;
mod task;
mod tls;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::{RedfishConfig, RedfishDriverInfo};
use crate::error::{RedfishError, Result, status_is_retried};
use crate::models::{self, Collection, ServiceRoot};

pub(crate) use auth::Auth;
use auth::Live;
use sessions::BmcSessions;
pub use sessions::SessionStats;
pub(crate) use task::TaskOutcome;

/// The service root path.
pub const ROOT: &str = "/redfish/v1/";

/// A reply from the BMC.
#[derive(Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// `ETag` header.
    pub etag: Option<String>,
    /// `Location` header (task monitors, created resources).
    pub location: Option<String>,
    /// `Retry-After` in seconds.
    pub retry_after: Option<u64>,
    /// The body.
    pub body: bytes::Bytes,
    /// `X-Auth-Token` (session creation only).
    pub(crate) token: Option<ironic_core::Secret>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("etag", &self.etag)
            .field("location", &self.location)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A client for one BMC and one set of credentials. Cheap to share (`Arc`);
/// keeps its connections and session between calls.
pub struct RedfishClient {
    pub(crate) address: String,
    http: reqwest::Client,
    auth: Auth,
    config: RedfishConfig,
    systems: Mutex<HashMap<Option<String>, String>>,
    /// Paths the BMC served, to repair links it sends in another letter case.
    known: Mutex<HashSet<String>>,
    /// Links that needed repair (lower-case link → the path that works).
    aliases: Mutex<HashMap<String, String>>,
}

/// Link names as the schema spells them; a link whose segments come in another
/// letter case (iLO sends `/redfish/v1/systems/1/bios`) is retried with these.
const CANONICAL_SEGMENTS: &[&str] = &[
    "Systems",
    "Managers",
    "Chassis",
    "Bios",
    "SecureBoot",
    "SecureBootDatabases",
    "EthernetInterfaces",
    "SimpleStorage",
    "Storage",
    "Drives",
    "Volumes",
    "Processors",
    "Memory",
    "VirtualMedia",
    "NetworkAdapters",
    "NetworkInterfaces",
    "NetworkDeviceFunctions",
    "Settings",
    "SD",
    "SessionService",
    "Sessions",
    "UpdateService",
    "FirmwareInventory",
    "SoftwareInventory",
    "Thermal",
    "Power",
    "EventService",
    "Subscriptions",
    "Registries",
    "TaskService",
    "Tasks",
    "AccountService",
    "Accounts",
    "LogServices",
    "BootOptions",
];

/// The segment as the schema spells it, or with its first letter upper-cased.
fn canonical_segment(seg: &str) -> String {
    if let Some(c) = CANONICAL_SEGMENTS
        .iter()
        .find(|c| c.eq_ignore_ascii_case(seg))
    {
        return (*c).to_owned();
    }
    let mut chars = seg.chars();
    match chars.next() {
        Some(f) => f.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Paths to try for a link that is not found, in order: the longest known path
/// that is a case-insensitive prefix of it with the rest as sent, then with the
/// rest in the schema's spelling, then every segment in the schema's spelling.
pub(crate) fn case_variants(path: &str, known: &HashSet<String>) -> Vec<String> {
    let trimmed = path.trim_end_matches('/');
    let lower = trimmed.to_ascii_lowercase();
    let mut out: Vec<String> = Vec::new();
    let mut push = |p: String| {
        if p != trimmed && !out.contains(&p) {
            out.push(p);
        }
    };
    let prefix = known
        .iter()
        .filter(|k| {
            let kl = k.to_ascii_lowercase();
            lower == kl || lower.starts_with(&format!("{kl}/"))
        })
        .max_by_key(|k| k.len());
    if let Some(k) = prefix {
        let rest = &trimmed[k.len()..];
        push(format!("{k}{rest}"));
        let fixed: Vec<String> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(canonical_segment)
            .collect();
        if fixed.is_empty() {
            push(k.clone());
        } else {
            push(format!("{k}/{}", fixed.join("/")));
        }
    }
    if let Some(rest) = lower.strip_prefix("/redfish/v1") {
        let orig_rest = &trimmed[trimmed.len() - rest.len()..];
        let fixed: Vec<String> = orig_rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                CANONICAL_SEGMENTS
                    .iter()
                    .find(|c| c.eq_ignore_ascii_case(s))
                    .map(|c| (*c).to_owned())
                    .unwrap_or_else(|| s.to_owned())
            })
            .collect();
        push(format!("/redfish/v1/{}", fixed.join("/")));
        let all: Vec<String> = orig_rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(canonical_segment)
            .collect();
        push(format!("/redfish/v1/{}", all.join("/")));
    }
    out
}

impl fmt::Debug for RedfishClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedfishClient")
            .field("address", &self.address)
            .field("auth", &self.auth)
            .finish()
    }
}

impl RedfishClient {
    /// A client for the BMC that `info` names.
    pub fn new(
        info: &RedfishDriverInfo,
        config: &RedfishConfig,
    ) -> Result<Self, ironic_core::DriverError> {
        Ok(Self::new_inner(info, config)?)
    }

    pub(crate) fn new_inner(info: &RedfishDriverInfo, config: &RedfishConfig) -> Result<Self> {
        let pool = Arc::new(BmcSessions::new(config.max_sessions_per_bmc));
        Self::with_pool(info, config, pool)
    }

    fn with_pool(
        info: &RedfishDriverInfo,
        config: &RedfishConfig,
        pool: Arc<BmcSessions>,
    ) -> Result<Self> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.read_timeout)
            .pool_max_idle_per_host(config.max_idle_connections_per_bmc)
            .pool_idle_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("ironic-rs/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = tls::client_config(&info.verify_ca)? {
            b = b.use_preconfigured_tls(tls);
        }
        let http = b
            .build()
            .map_err(|e| RedfishError::Other(format!("cannot build the HTTP client: {e}")))?;
        Ok(RedfishClient {
            address: info.address.clone(),
            http,
            auth: Auth::new(info, pool),
            config: config.clone(),
            systems: Mutex::new(HashMap::new()),
            known: Mutex::new(HashSet::new()),
            aliases: Mutex::new(HashMap::new()),
        })
    }

    /// The full URL of a path (`@odata.id`), tolerating absolute URLs.
    pub(crate) fn url(&self, path: &str) -> String {
        let path = if path.starts_with("http://") || path.starts_with("https://") {
            match reqwest::Url::parse(path) {
                Ok(u) => match u.query() {
                    Some(q) => format!("{}?{q}", u.path()),
                    None => u.path().to_owned(),
                },
                Err(_) => path.to_owned(),
            }
        } else {
            path.to_owned()
        };
        if path.starts_with('/') {
            format!("{}{path}", self.address)
        } else {
            format!("{}/{path}", self.address)
        }
    }

    /// One HTTP exchange, no retries, with the given auth header.
    async fn exchange(
        &self,
        method: &Method,
        url: &str,
        body: Option<&Value>,
        extra: &HeaderMap,
        auth: Option<HeaderValue>,
    ) -> Result<Response> {
        let mut req = self
            .http
            .request(method.clone(), url)
            .header(header::ACCEPT, "application/json")
            .header("OData-Version", "4.0");
        for (k, v) in extra {
            req = req.header(k, v);
        }
        if let Some(a) = auth {
            let name = if a.as_bytes().starts_with(b"Basic ") {
                header::AUTHORIZATION
            } else {
                header::HeaderName::from_static("x-auth-token")
            };
            req = req.header(name, a);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.transport_error(method, url, e))?;
        let status = resp.status().as_u16();
        let h = resp.headers();
        let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let etag = get("etag");
        let location = get("location");
        let retry_after = get("retry-after").and_then(|s| s.trim().parse().ok());
        let token = get("x-auth-token");
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.transport_error(method, url, e))?;
        Ok(Response {
            status,
            etag,
            location,
            retry_after,
            body,
            token: token.map(ironic_core::Secret::new),
        })
    }

    fn transport_error(&self, method: &Method, url: &str, e: reqwest::Error) -> RedfishError {
        if let Some(detail) = tls::tls_failure(&e) {
            return RedfishError::Tls {
                address: self.address.clone(),
                detail,
            };
        }
        if e.is_timeout() {
            return RedfishError::RequestTimeout {
                method: method.to_string(),
                url: url.to_owned(),
                secs: self.config.read_timeout.as_secs(),
            };
        }
        let mut detail = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            src = s.source();
        }
        RedfishError::Connect {
            address: self.address.clone(),
            detail,
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        (self.config.retry_interval * factor).min(self.config.max_retry_interval)
    }

    /// One request with retries on 5xx (not 501) and connection errors; timeouts
    /// are retried for GET only (a POST may have been carried out).
    async fn with_retries(
        &self,
        method: &Method,
        url: &str,
        body: Option<&Value>,
        extra: &HeaderMap,
        auth: Option<HeaderValue>,
    ) -> Result<Response> {
        let attempts = self.config.connection_attempts.max(1);
        let mut attempt = 1;
        loop {
            let res = self.exchange(method, url, body, extra, auth.clone()).await;
            let retry = match &res {
                Ok(r) => status_is_retried(r.status),
                Err(RedfishError::Connect { .. }) => true,
                Err(RedfishError::RequestTimeout { .. }) => *method == Method::GET,
                Err(_) => false,
            };
            if !retry || attempt >= attempts {
                return res;
            }
            let mut pause = self.backoff(attempt);
            if let Ok(r) = &res
                && let Some(s) = r.retry_after
            {
                pause = pause.max(Duration::from_secs(s.min(30)));
            }
            match &res {
                Ok(r) => {
                    tracing::warn!(bmc = %self.address, %method, url, status = r.status, attempt, "Redfish BMC answered a server error; retrying")
                }
                Err(e) => {
                    tracing::warn!(bmc = %self.address, %method, url, error = %e, attempt, "Redfish request failed; retrying")
                }
            }
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    /// A request with authentication (logging in first, and again once on a 401
    /// when using a session) and retries. Returns any status; see [`Self::check`].
    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        extra: &HeaderMap,
    ) -> Result<Response> {
        let guard = self.auth.start_request();
        let res = self.request_inner(method, path, body, extra).await;
        drop(guard);
        // Others wait for a session at this BMC: hand this one over when idle.
        if self.auth.idle() && self.auth.pool().contended() && self.auth.logout(self).await {
            tracing::debug!(bmc = %self.address, "Redfish session handed over to another client of this BMC");
        }
        res
    }

    async fn request_inner(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        extra: &HeaderMap,
    ) -> Result<Response> {
        let path = self.alias(path);
        let path = path.as_str();
        let url = self.url(path);
        let (header, generation) = self.auth.header(self).await?;
        let resp = self
            .with_retries(&method, &url, body, extra, header)
            .await?;
        if resp.status == 401 && self.auth.uses_session().await {
            tracing::info!(bmc = %self.address, url, "Redfish session rejected (expired?); logging in again");
            let (header, _) = self.auth.relogin(self, generation).await?;
            let resp = self
                .with_retries(&method, &url, body, extra, header)
                .await?;
            if resp.status == 401 {
                return Err(self.auth.unauthorized(&self.address, &resp));
            }
            return Ok(resp);
        }
        if resp.status == 401 {
            return Err(self.auth.unauthorized(&self.address, &resp));
        }
        Ok(resp)
    }

    /// Turn a non-2xx reply into an error.
    pub(crate) fn check(&self, method: &Method, path: &str, resp: Response) -> Result<Response> {
        if resp.is_success() {
            return Ok(resp);
        }
        Err(RedfishError::Http {
            method: method.to_string(),
            url: self.url(path),
            status: resp.status,
            detail: self.auth.redact(models::error_messages(&resp.body)),
        })
    }

    /// GET a resource and parse it.
    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        Ok(self.get_with_etag(path).await?.0)
    }

    /// The path to use for a link: itself, or the spelling that worked when the
    /// BMC sent it in another letter case.
    fn alias(&self, path: &str) -> String {
        let key = path.trim_end_matches('/').to_ascii_lowercase();
        self.aliases
            .lock()
            .ok()
            .and_then(|a| a.get(&key).cloned())
            .unwrap_or_else(|| path.to_owned())
    }

    fn remember(&self, path: &str) {
        let p = path.trim_end_matches('/');
        if p.is_empty() || p.contains('?') {
            return;
        }
        if let Ok(mut k) = self.known.lock()
            && k.len() < 4096
        {
            k.insert(p.to_owned());
        }
    }

    /// GET with one repair: a 404 on a link the BMC sent in another letter case
    /// than the resource it names (iLO) is retried with the spellings of
    /// [`case_variants`]; the first that answers is used from then on.
    async fn get_response(&self, path: &str) -> Result<Response> {
        let resp = self
            .request(Method::GET, path, None, &HeaderMap::new())
            .await?;
        if resp.status != 404 {
            let resp = self.check(&Method::GET, path, resp)?;
            self.remember(&self.alias(path));
            return Ok(resp);
        }
        let variants = {
            let known = self.known.lock().map(|k| k.clone()).unwrap_or_default();
            case_variants(path, &known)
        };
        for v in variants.into_iter().take(4) {
            let r = self
                .request(Method::GET, &v, None, &HeaderMap::new())
                .await?;
            if r.is_success() {
                tracing::info!(bmc = %self.address, link = path, path = %v, "the BMC links a resource in another letter case; using the path that answers");
                if let Ok(mut a) = self.aliases.lock() {
                    a.insert(path.trim_end_matches('/').to_ascii_lowercase(), v.clone());
                }
                self.remember(&v);
                return Ok(r);
            }
        }
        self.check(&Method::GET, path, resp)
    }

    /// GET a resource, parse it, and return its ETag (header or `@odata.etag`).
    pub(crate) async fn get_with_etag<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<(T, Option<String>)> {
        let resp = self.get_response(path).await?;
        let value: Value = models::parse(&resp.body).map_err(|detail| RedfishError::Parse {
            url: self.url(path),
            detail,
        })?;
        let etag = resp.etag.clone().or_else(|| {
            value
                .get("@odata.etag")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let parsed = T::deserialize(value).map_err(|e| RedfishError::Parse {
            url: self.url(path),
            detail: e.to_string(),
        })?;
        Ok((parsed, etag))
    }

    /// GET every member of a collection (following `Members@odata.nextLink`),
    /// skipping members that fail to load with a warning.
    pub(crate) async fn members<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for link in self.member_links(path).await? {
            match self.get::<T>(&link).await {
                Ok(m) => out.push(m),
                Err(e) => {
                    tracing::warn!(bmc = %self.address, member = %link, error = %e, "skipping a collection member that could not be read")
                }
            }
        }
        Ok(out)
    }

    /// The member links of a collection (all pages).
    pub(crate) async fn member_links(&self, path: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut next = Some(path.to_owned());
        let mut pages = 0;
        while let Some(p) = next.take() {
            let c: Collection = self.get(&p).await?;
            out.extend(c.members.into_iter().map(|l| l.odata_id));
            pages += 1;
            if pages < 100 {
                next = c.next_link;
            }
        }
        Ok(out)
    }

    /// PATCH with `If-Match` when an ETag is known or the BMC demands one: on 412
    /// (stale ETag) or 428 (ETag required) the resource is re-read and the PATCH
    /// sent once more with its current ETag.
    pub(crate) async fn patch(
        &self,
        path: &str,
        body: &Value,
        etag: Option<&str>,
    ) -> Result<Response> {
        let send = |etag: Option<String>| async move {
            let mut h = HeaderMap::new();
            if let Some(e) = etag
                && let Ok(v) = HeaderValue::from_str(&e)
            {
                h.insert(header::IF_MATCH, v);
            }
            self.request(Method::PATCH, path, Some(body), &h).await
        };
        let resp = send(etag.map(str::to_owned)).await?;
        let resp = if matches!(resp.status, 412 | 428) {
            tracing::info!(bmc = %self.address, path, status = resp.status, "Redfish PATCH needs a fresh ETag; re-reading the resource");
            let (_, fresh): (Value, _) = self.get_with_etag(path).await?;
            send(fresh.or_else(|| Some("*".to_owned()))).await?
        } else {
            resp
        };
        self.check(&Method::PATCH, path, resp)
    }

    /// PATCH the settings object the resource advertises in `@Redfish.Settings`,
    /// or the resource itself when it advertises none.
    pub(crate) async fn patch_settings(&self, path: &str, body: &Value) -> Result<Response> {
        let (res, etag): (Value, _) = self.get_with_etag(path).await?;
        let settings = res
            .get("@Redfish.Settings")
            .and_then(|s| s.get("SettingsObject"))
            .and_then(|o| o.get("@odata.id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        match settings {
            Some(target) => {
                let (_, setting_etag): (Value, _) = match self.get_with_etag(&target).await {
                    Ok(x) => x,
                    Err(e) if e.status() == Some(404) => (Value::Null, None),
                    Err(e) => return Err(e),
                };
                self.patch(&target, body, setting_etag.as_deref()).await
            }
            None => self.patch(path, body, etag.as_deref()).await,
        }
    }

    /// POST and require a 2xx.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Response> {
        let resp = self
            .request(Method::POST, path, Some(body), &HeaderMap::new())
            .await?;
        self.check(&Method::POST, path, resp)
    }

    /// DELETE and require a 2xx.
    pub(crate) async fn delete(&self, path: &str) -> Result<Response> {
        let resp = self
            .request(Method::DELETE, path, None, &HeaderMap::new())
            .await?;
        self.check(&Method::DELETE, path, resp)
    }

    /// The service root (open without authentication).
    pub(crate) async fn root(&self) -> Result<ServiceRoot> {
        self.get(ROOT).await
    }

    /// The path of the node's system: `redfish_system_id` as given (a path), or
    /// the member of `/Systems` whose id it is, or the only system.
    pub(crate) async fn system_path(&self, system_id: Option<&str>) -> Result<String> {
        let key = system_id.map(str::to_owned);
        if let Some(p) = self.systems.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(p);
        }
        let path = match system_id {
            Some(id) if id.starts_with('/') => id.trim_end_matches('/').to_owned(),
            _ => {
                let root = self.root().await?;
                let systems = root
                    .systems
                    .map(|l| l.odata_id)
                    .unwrap_or_else(|| "/redfish/v1/Systems".into());
                let members = self.member_links(&systems).await?;
                match system_id {
                    Some(id) => members
                        .iter()
                        .find(|m| m.trim_end_matches('/').rsplit('/').next() == Some(id))
                        .cloned()
                        .ok_or_else(|| {
                            RedfishError::NotFound(format!(
                                "The Redfish BMC at {} has no system {id:?} (redfish_system_id); it has: {}",
                                self.address,
                                members.join(", ")
                            ))
                        })?,
                    None => match members.as_slice() {
                        [one] => one.clone(),
                        [] => {
                            return Err(RedfishError::NotFound(format!(
                                "The Redfish BMC at {} reports no systems",
                                self.address
                            )));
                        }
                        many => {
                            return Err(RedfishError::InvalidParameter(format!(
                                "The Redfish BMC at {} manages {} systems ({}); set redfish_system_id to one of them",
                                self.address,
                                many.len(),
                                many.join(", ")
                            )));
                        }
                    },
                }
            }
        };
        if let Ok(mut m) = self.systems.lock() {
            m.insert(key, path.clone());
        }
        Ok(path)
    }

    /// Wait for what a POST/PATCH/DELETE started: a `202` with a task monitor in
    /// `Location`, or a 2xx whose `Location` names a task. Other replies are done.
    pub(crate) async fn wait_for_task(
        &self,
        resp: &Response,
        what: &str,
        timeout: Duration,
    ) -> Result<TaskOutcome> {
        task::wait(self, resp, what, timeout, self.config.task_poll_interval).await
    }

    /// The driver settings this client was built with.
    pub(crate) fn config(&self) -> &RedfishConfig {
        &self.config
    }

    /// The Redfish sessions this process holds at this client's BMC (shared by
    /// the clients of one [`register`](crate::register) call).
    pub fn session_stats(&self) -> SessionStats {
        self.auth.pool().stats()
    }

    /// Log out the session (DELETE of its URI); a 404 or 401 means it is gone
    /// already. Failures are logged: the BMC expires the session in the end.
    async fn delete_session(&self, live: &Live) {
        let Some(loc) = &live.location else {
            tracing::warn!(bmc = %self.address, "the Redfish BMC gave no session URI: the session is left to expire");
            return;
        };
        let url = self.url(loc);
        match self
            .exchange(
                &Method::DELETE,
                &url,
                None,
                &HeaderMap::new(),
                Some(live.token.clone()),
            )
            .await
        {
            Ok(r) if r.is_success() || matches!(r.status, 401 | 404) => {
                tracing::debug!(bmc = %self.address, session = %loc, status = r.status, "Redfish session logged out")
            }
            Ok(r) => {
                tracing::warn!(bmc = %self.address, session = %loc, status = r.status, "the Redfish BMC refused to log the session out")
            }
            Err(e) => {
                tracing::warn!(bmc = %self.address, session = %loc, error = %e, "could not log the Redfish session out")
            }
        }
    }
}

impl Drop for RedfishClient {
    /// A dropped client logs its session out, in the background on the Tokio
    /// runtime it is dropped on (without one, the BMC expires the session).
    fn drop(&mut self) {
        let Some(live) = self.auth.take_live() else {
            return;
        };
        let Some(loc) = live.location.clone() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::debug!(bmc = %self.address, "no runtime to log the Redfish session out; it is left to expire");
            return;
        };
        let req = self
            .http
            .delete(self.url(&loc))
            .header(header::ACCEPT, "application/json")
            .header("OData-Version", "4.0")
            .header("x-auth-token", live.token.clone());
        let pool = self.auth.pool().clone();
        let address = self.address.clone();
        rt.spawn(async move {
            match req.send().await {
                Ok(r) => {
                    tracing::debug!(bmc = %address, session = %loc, status = r.status().as_u16(), "Redfish session of a dropped client logged out")
                }
                Err(e) => {
                    tracing::warn!(bmc = %address, session = %loc, error = %e, "could not log the Redfish session of a dropped client out")
                }
            }
            pool.logged_out();
            // the slot is given back once the BMC has let the session go
            drop(live);
        });
    }
}

/// Clients by BMC and credentials, shared by every interface of one
/// [`register`](crate::register) call (no global state).
#[derive(Default)]
pub(crate) struct ClientCache {
    clients: Mutex<HashMap<String, (RedfishDriverInfo, Arc<RedfishClient>)>>,
    /// Session slots by BMC (address), shared by its clients.
    pools: Mutex<HashMap<String, Arc<BmcSessions>>>,
}

impl fmt::Debug for ClientCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.clients.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("ClientCache").field("clients", &n).finish()
    }
}

/// How many BMC clients to keep (`[redfish]connection_cache_size`).
const CACHE_SIZE: usize = 1000;

/// Whether two nodes' `driver_info` reach their BMC the same way (all but the
/// system).
fn same_connection(a: &RedfishDriverInfo, b: &RedfishDriverInfo) -> bool {
    a.address == b.address
        && a.username == b.username
        && a.password == b.password
        && a.verify_ca == b.verify_ca
        && a.auth_type == b.auth_type
}

/// The BMC an address names, for its session slots: scheme, host and port as
/// URL parsing normalizes them (`https://BMC:443/` and `https://bmc` are one).
fn bmc_key(address: &str) -> String {
    match reqwest::Url::parse(address) {
        Ok(u) => format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port_or_known_default().unwrap_or(0)
        ),
        Err(_) => address.to_ascii_lowercase(),
    }
}

impl ClientCache {
    /// The client for `info`, reusing one built for the same BMC, user, password,
    /// TLS and auth settings, whatever the system (several systems behind one
    /// BMC share its client and so its session, as Ironic's `SessionCache`).
    /// New credentials for a BMC and user replace the client of the old ones.
    pub(crate) fn get(
        &self,
        info: &RedfishDriverInfo,
        config: &RedfishConfig,
    ) -> Result<Arc<RedfishClient>> {
        let key = format!(
            "{}|{}|{:?}|{}",
            info.address,
            info.username.as_deref().unwrap_or(""),
            info.verify_ca,
            info.auth_type.as_str()
        );
        let mut map = self
            .clients
            .lock()
            .map_err(|_| RedfishError::Other("Redfish client cache poisoned".into()))?;
        if let Some((cached, client)) = map.get(&key)
            && same_connection(cached, info)
        {
            return Ok(client.clone());
        }
        let pool = {
            let mut pools = self
                .pools
                .lock()
                .map_err(|_| RedfishError::Other("Redfish session pools poisoned".into()))?;
            if pools.len() >= CACHE_SIZE {
                pools.retain(|_, p| p.in_use() > 0 || Arc::strong_count(p) > 1);
            }
            pools
                .entry(bmc_key(&info.address))
                .or_insert_with(|| Arc::new(BmcSessions::new(config.max_sessions_per_bmc)))
                .clone()
        };
        let client = Arc::new(RedfishClient::with_pool(info, config, pool)?);
        if map.len() >= CACHE_SIZE
            && let Some(k) = map.keys().next().cloned()
        {
            map.remove(&k);
        }
        map.insert(key, (info.clone(), client.clone()));
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_in_another_letter_case_are_repaired() {
        let known: HashSet<String> = [
            "/redfish/v1",
            "/redfish/v1/Systems",
            "/redfish/v1/Systems/1",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        // iLO: the system links its BIOS as /redfish/v1/systems/1/bios
        let v = case_variants("/redfish/v1/systems/1/bios/", &known);
        assert_eq!(v[0], "/redfish/v1/Systems/1/bios");
        assert_eq!(v[1], "/redfish/v1/Systems/1/Bios");
        assert!(
            v.iter()
                .all(|p| p.eq_ignore_ascii_case("/redfish/v1/systems/1/bios"))
        );
        let v = case_variants("/redfish/v1/systems/1/bios/settings", &known);
        assert!(v.contains(&"/redfish/v1/Systems/1/Bios/Settings".to_owned()));
        // nothing known: the schema's spelling
        let v = case_variants("/redfish/v1/systems/x/securebOOT", &HashSet::new());
        assert_eq!(v[0], "/redfish/v1/Systems/x/SecureBoot");
        // a path already right yields only other spellings, never itself
        assert!(
            !case_variants("/redfish/v1/Systems/1", &known)
                .contains(&"/redfish/v1/Systems/1".to_owned())
        );
    }
}
