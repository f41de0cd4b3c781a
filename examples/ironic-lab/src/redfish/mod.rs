//! A Redfish BMC simulator on loopback (axum).
//!
//! One listener hosts one or many [`SimServer`]s: each is `/redfish/v1/Systems/{name}`,
//! managed by `/redfish/v1/Managers/{name}` (with a virtual CD) in `/redfish/v1/Chassis/{name}`.
//! Authentication is HTTP basic or a session (`POST /redfish/v1/SessionService/Sessions`,
//! then `X-Auth-Token`), checked against the credentials of the system addressed (on a
//! listener with several systems, a session carries the systems whose credentials it was
//! opened with). Every document carries an `ETag`; `PATCH` honours `If-Match`.
//! `Boot.HttpBootUri` is kept (a URL the BMC cannot download is refused); a UEFI
//! HTTP boot with one boots that ISO, without one it boots from the network.
//! `/redfish/v1/EventService` keeps event subscriptions (created, read, deleted;
//! no events are sent).
//! Faults: latency and flaky (HTTP 500) per system, wrong password (401), stuck (power
//! actions answered 204 that never take effect).
//! Sessions can be limited ([`RedfishSim::start_with`], [`SimOptions::max_sessions`]): a
//! login past the limit is refused as iDRAC does (HTTP 503, "The maximum number of user
//! sessions is reached"); [`RedfishSim::sessions`] counts them.

mod events;
mod managers;
mod resources;
mod sessions;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::model::{BootEnabled, BootMode, BootTarget, ResetAction, SimError, SimServer};
use events::*;
use managers::*;
use resources::VMEDIA_ID;
use sessions::*;

/// Idle time after which a Redfish session expires.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(1800);

/// How a simulator behaves beyond its servers.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct SimOptions {
    /// The most sessions open at once (`None`: no limit).
    pub max_sessions: Option<usize>,
}

impl SimOptions {
    /// Refuse logins past `n` open sessions.
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = Some(n);
        self
    }
}

/// What happened to the simulator's sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionCounts {
    /// Open now.
    pub open: usize,
    /// The most open at once.
    pub peak: usize,
    /// Created (logins).
    pub created: u64,
    /// Deleted by their clients (logouts).
    pub deleted: u64,
    /// Logins refused for the limit.
    pub refused: u64,
}

/// A running Redfish simulator; stops when dropped or on [`RedfishSim::shutdown`].
#[derive(Debug)]
pub struct RedfishSim {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
    bmc: Shared,
}

impl RedfishSim {
    /// Binds `addr` (use port 0 for any free port) and serves `servers`.
    pub async fn start(addr: SocketAddr, servers: Vec<SimServer>) -> std::io::Result<RedfishSim> {
        Self::start_with(addr, servers, SimOptions::default()).await
    }

    /// [`RedfishSim::start`] with `options`.
    pub async fn start_with(
        addr: SocketAddr,
        servers: Vec<SimServer>,
        options: SimOptions,
    ) -> std::io::Result<RedfishSim> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let bmc = bmc(servers, options);
        let router = routes(bmc.clone());
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            let serve =
                axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::error!(%addr, error = %e, "Redfish simulator stopped");
            }
        });
        tracing::debug!(%addr, "Redfish simulator listening");
        Ok(RedfishSim {
            addr,
            cancel,
            task: Some(task),
            bmc,
        })
    }

    /// The sessions so far.
    pub fn sessions(&self) -> SessionCounts {
        let open = {
            let mut sessions = self.bmc.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions.retain(|_, s| s.last_used.elapsed() < SESSION_TIMEOUT);
            sessions.len()
        };
        let counts = *self.bmc.counts.lock().unwrap_or_else(|e| e.into_inner());
        SessionCounts { open, ..counts }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL (`http://127.0.0.1:PORT`), as `redfish_address` wants it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and waits for the server task.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RedfishSim {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

struct Session {
    id: String,
    user: String,
    /// The systems whose credentials opened this session.
    systems: Vec<String>,
    last_used: Instant,
}

struct Bmc {
    service_uuid: uuid::Uuid,
    systems: BTreeMap<String, SimServer>,
    /// Keyed by token.
    sessions: Mutex<HashMap<String, Session>>,
    max_sessions: Option<usize>,
    /// `open` unused here (the map's length).
    counts: Mutex<SessionCounts>,
    /// EventService subscriptions by id, and the last id given.
    subscriptions: Mutex<BTreeMap<String, Subscription>>,
    next_subscription: Mutex<u64>,
}

type Shared = Arc<Bmc>;

impl std::fmt::Debug for Bmc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bmc")
            .field("systems", &self.systems.keys().collect::<Vec<_>>())
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

fn bmc(servers: Vec<SimServer>, options: SimOptions) -> Shared {
    Arc::new(Bmc {
        service_uuid: uuid::Uuid::new_v4(),
        systems: servers
            .into_iter()
            .map(|s| (s.spec().name.clone(), s))
            .collect(),
        sessions: Mutex::new(HashMap::new()),
        max_sessions: options.max_sessions,
        counts: Mutex::new(SessionCounts::default()),
        subscriptions: Mutex::new(BTreeMap::new()),
        next_subscription: Mutex::new(0),
    })
}

/// The axum router of a simulator hosting `servers` (for embedding in another listener).
pub fn router(servers: Vec<SimServer>) -> Router {
    routes(bmc(servers, SimOptions::default()))
}

fn routes(bmc: Shared) -> Router {
    Router::new()
        .route("/redfish", get(versions))
        .route("/redfish/v1", get(service_root))
        .route("/redfish/v1/", get(service_root))
        .route("/redfish/v1/Systems", get(systems))
        .route("/redfish/v1/Systems/{id}", get(system).patch(patch_system))
        .route(
            "/redfish/v1/Systems/{id}/Actions/ComputerSystem.Reset",
            post(reset),
        )
        .route("/redfish/v1/Systems/{id}/EthernetInterfaces", get(nics))
        .route(
            "/redfish/v1/Systems/{id}/EthernetInterfaces/{nic}",
            get(nic),
        )
        .route("/redfish/v1/Systems/{id}/Processors", get(processors))
        .route("/redfish/v1/Systems/{id}/Processors/{cpu}", get(processor))
        .route("/redfish/v1/Systems/{id}/Memory", get(memories))
        .route("/redfish/v1/Systems/{id}/Memory/{dimm}", get(memory))
        .route("/redfish/v1/Systems/{id}/SimpleStorage", get(storages))
        .route("/redfish/v1/Systems/{id}/SimpleStorage/{ctl}", get(storage))
        .route("/redfish/v1/Managers", get(managers))
        .route("/redfish/v1/Managers/{id}", get(manager))
        .route("/redfish/v1/Managers/{id}/VirtualMedia", get(vmedias))
        .route(
            "/redfish/v1/Managers/{id}/VirtualMedia/{dev}",
            get(vmedia).patch(patch_vmedia),
        )
        .route(
            "/redfish/v1/Managers/{id}/VirtualMedia/{dev}/Actions/VirtualMedia.InsertMedia",
            post(insert_media),
        )
        .route(
            "/redfish/v1/Managers/{id}/VirtualMedia/{dev}/Actions/VirtualMedia.EjectMedia",
            post(eject_media),
        )
        .route("/redfish/v1/Chassis", get(chassis_list))
        .route("/redfish/v1/Chassis/{id}", get(chassis))
        .route("/redfish/v1/SessionService", get(session_service))
        .route(
            "/redfish/v1/SessionService/Sessions",
            get(sessions).post(create_session),
        )
        .route(
            "/redfish/v1/SessionService/Sessions/{sid}",
            get(session).delete(delete_session),
        )
        .route("/redfish/v1/EventService", get(event_service))
        .route(
            "/redfish/v1/EventService/Subscriptions",
            get(subscriptions).post(create_subscription),
        )
        .route(
            "/redfish/v1/EventService/Subscriptions/{sid}",
            get(subscription).delete(delete_subscription),
        )
        .fallback(not_found)
        .with_state(bmc)
}

/// A Redfish error response.
#[derive(Debug)]
enum RfError {
    NotFound(String),
    Unauthorized,
    BadRequest { id: &'static str, message: String },
    PreconditionFailed,
    Conflict(String),
    Injected,
    SessionLimit,
}

impl From<SimError> for RfError {
    fn from(e: SimError) -> Self {
        match e {
            SimError::Conflict(m) => RfError::Conflict(m),
            SimError::Invalid(m) => RfError::BadRequest {
                id: "PropertyValueFormatError",
                message: m,
            },
        }
    }
}

impl IntoResponse for RfError {
    fn into_response(self) -> Response {
        let (status, id, message) = match self {
            RfError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                format!("The requested resource {what} was not found."),
            ),
            RfError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "NoValidSession",
                "There is no valid session established with the implementation.".to_string(),
            ),
            RfError::BadRequest { id, message } => (StatusCode::BAD_REQUEST, id, message),
            RfError::PreconditionFailed => (
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                "The ETag supplied did not match the ETag required to change this resource."
                    .to_string(),
            ),
            RfError::Conflict(m) => (StatusCode::CONFLICT, "ResourceInUse", m),
            // iDRAC answers 503 (RAC0218); Base's message id for it
            RfError::SessionLimit => (
                StatusCode::SERVICE_UNAVAILABLE,
                "SessionLimitExceeded",
                "The maximum number of user sessions is reached.".to_string(),
            ),
            RfError::Injected => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "The request failed due to an internal service error (injected fault).".to_string(),
            ),
        };
        let mut resp = (status, Json(resources::error(id, &message))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"ironic-rs lab BMC\""),
            );
        }
        resp
    }
}

type RfResult = Result<Response, RfError>;

/// The strong ETag of a document.
fn etag_of(v: &Value) -> String {
    let digest = Sha256::digest(v.to_string().as_bytes());
    format!("\"{}\"", hex::encode(&digest[..8]))
}

/// A JSON document with its ETag and OData headers.
fn doc(v: Value) -> Response {
    let etag = etag_of(&v);
    let mut resp = Json(v).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert("OData-Version", HeaderValue::from_static("4.0"));
    resp
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn parse_body(body: &Bytes) -> Result<Map<String, Value>, RfError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(RfError::BadRequest {
            id: "MalformedJSON",
            message: "The request body must be a JSON object.".into(),
        }),
        Err(e) => Err(RfError::BadRequest {
            id: "MalformedJSON",
            message: format!("The request body submitted was malformed JSON: {e}."),
        }),
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

impl Bmc {
    fn server(&self, id: &str) -> Result<&SimServer, RfError> {
        self.systems
            .get(id)
            .ok_or_else(|| RfError::NotFound(format!("/redfish/v1/Systems/{id}")))
    }

    /// The server whose faults apply to a request: the one addressed, or the only one.
    fn fault_target<'a>(&'a self, server: Option<&'a SimServer>) -> Option<&'a SimServer> {
        server.or_else(|| {
            if self.systems.len() == 1 {
                self.systems.values().next()
            } else {
                None
            }
        })
    }

    async fn inject(&self, server: Option<&SimServer>) -> Result<(), RfError> {
        if let Some(s) = self.fault_target(server) {
            let faults = s.faults();
            if !faults.latency.is_zero() {
                tokio::time::sleep(faults.latency).await;
            }
            if faults.roll_flaky() {
                tracing::debug!(server = %s.spec().name, "flaky: answering 500");
                return Err(RfError::Injected);
            }
        }
        Ok(())
    }

    fn authorize(&self, headers: &HeaderMap, server: Option<&SimServer>) -> Result<(), RfError> {
        if let Some(token) = headers.get("X-Auth-Token").and_then(|v| v.to_str().ok()) {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions.retain(|_, s| s.last_used.elapsed() < SESSION_TIMEOUT);
            if let Some(sess) = sessions.get_mut(token)
                && server.is_none_or(|srv| sess.systems.iter().any(|n| *n == srv.spec().name))
            {
                sess.last_used = Instant::now();
                return Ok(());
            }
            return Err(RfError::Unauthorized);
        }
        let Some((user, pass)) = basic_credentials(headers) else {
            return Err(RfError::Unauthorized);
        };
        let ok = match server {
            Some(s) => s.check_credentials(&user, &pass),
            None => self
                .systems
                .values()
                .any(|s| s.check_credentials(&user, &pass)),
        };
        if ok {
            Ok(())
        } else {
            Err(RfError::Unauthorized)
        }
    }

    /// Faults, then authentication, for a request on one system.
    async fn system_request(&self, id: &str, headers: &HeaderMap) -> Result<&SimServer, RfError> {
        let server = self.server(id)?;
        self.inject(Some(server)).await?;
        self.authorize(headers, Some(server))?;
        Ok(server)
    }

    /// Faults, then authentication, for a service-level request.
    async fn service_request(&self, headers: &HeaderMap) -> Result<(), RfError> {
        self.inject(None).await?;
        self.authorize(headers, None)
    }
}

async fn not_found(uri: axum::http::Uri) -> RfError {
    RfError::NotFound(uri.path().to_string())
}

async fn versions() -> Response {
    Json(serde_json::json!({"v1": "/redfish/v1/"})).into_response()
}

async fn service_root(State(bmc): State<Shared>) -> RfResult {
    // The service root is readable without authentication (DSP0266).
    bmc.inject(None).await?;
    Ok(doc(resources::service_root(&bmc.service_uuid)))
}

fn member_paths(bmc: &Bmc, prefix: &str) -> Vec<String> {
    bmc.systems
        .keys()
        .map(|n| format!("{prefix}/{n}"))
        .collect()
}

async fn systems(State(bmc): State<Shared>, headers: HeaderMap) -> RfResult {
    bmc.service_request(&headers).await?;
    Ok(doc(resources::collection(
        "ComputerSystemCollection",
        "/redfish/v1/Systems",
        "Computer System Collection",
        member_paths(&bmc, "/redfish/v1/Systems"),
    )))
}

async fn system(State(bmc): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> RfResult {
    let s = bmc.system_request(&id, &headers).await?;
    Ok(doc(resources::system(s)))
}

fn if_match_ok(headers: &HeaderMap, current: &Value) -> bool {
    let Some(wanted) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let etag = etag_of(current);
    wanted
        .split(',')
        .map(str::trim)
        .any(|w| w == "*" || w.trim_start_matches("W/") == etag)
}

fn string_prop<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, RfError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(RfError::BadRequest {
            id: "PropertyValueTypeError",
            message: format!(
                "The value {other} for the property {key} is of a different type than the property can accept."
            ),
        }),
    }
}

fn not_in_list(key: &str, value: &str) -> RfError {
    RfError::BadRequest {
        id: "PropertyValueNotInList",
        message: format!(
            "The value {value} for the property {key} is not in the list of acceptable values."
        ),
    }
}

async fn patch_system(
    State(bmc): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> RfResult {
    let s = bmc.system_request(&id, &headers).await?;
    let body = parse_body(&body)?;
    if !if_match_ok(&headers, &resources::system(s)) {
        return Err(RfError::PreconditionFailed);
    }
    let mut target = None;
    let mut enabled = None;
    let mut mode = None;
    // Some(None): cleared (null).
    let mut http_uri: Option<Option<String>> = None;
    for (key, value) in &body {
        match (key.as_str(), value) {
            ("Boot", Value::Object(boot)) => {
                for k in boot.keys() {
                    if !matches!(
                        k.as_str(),
                        "BootSourceOverrideTarget"
                            | "BootSourceOverrideEnabled"
                            | "BootSourceOverrideMode"
                            | "HttpBootUri"
                    ) {
                        return Err(RfError::BadRequest {
                            id: "PropertyNotWritable",
                            message: format!(
                                "The property Boot/{k} is a read only property and cannot be assigned a value."
                            ),
                        });
                    }
                }
                if let Some(t) = string_prop(boot, "BootSourceOverrideTarget")? {
                    target = Some(
                        BootTarget::from_redfish(t)
                            .ok_or_else(|| not_in_list("BootSourceOverrideTarget", t))?,
                    );
                }
                if let Some(e) = string_prop(boot, "BootSourceOverrideEnabled")? {
                    enabled = Some(
                        BootEnabled::from_redfish(e)
                            .ok_or_else(|| not_in_list("BootSourceOverrideEnabled", e))?,
                    );
                }
                if boot.contains_key("HttpBootUri") {
                    http_uri = Some(string_prop(boot, "HttpBootUri")?.map(str::to_owned));
                }
                if let Some(m) = string_prop(boot, "BootSourceOverrideMode")? {
                    mode = Some(
                        BootMode::from_redfish(m)
                            .ok_or_else(|| not_in_list("BootSourceOverrideMode", m))?,
                    );
                }
            }
            ("Boot", _) => {
                return Err(RfError::BadRequest {
                    id: "PropertyValueTypeError",
                    message: "The property Boot must be an object.".into(),
                });
            }
            (k, _) => {
                return Err(RfError::BadRequest {
                    id: "PropertyUnknown",
                    message: format!(
                        "The property {k} is not in the list of valid properties for the resource."
                    ),
                });
            }
        }
    }
    // The BMC loads the HTTP boot URI itself: one it cannot download is refused.
    if let Some(Some(url)) = &http_uri {
        check_url(url, "the property Boot/HttpBootUri").await?;
    }
    s.set_boot_override(target, enabled, mode);
    if let Some(uri) = http_uri {
        s.set_http_boot_uri(uri.filter(|u| !u.is_empty()));
    }
    Ok(no_content())
}

async fn reset(
    State(bmc): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> RfResult {
    let s = bmc.system_request(&id, &headers).await?;
    let body = parse_body(&body)?;
    let Some(kind) = string_prop(&body, "ResetType")? else {
        return Err(RfError::BadRequest {
            id: "ActionParameterMissing",
            message: "The action ComputerSystem.Reset requires the parameter ResetType to be present in the request body.".into(),
        });
    };
    let action = ResetAction::from_redfish(kind).ok_or_else(|| RfError::BadRequest {
        id: "ActionParameterNotSupported",
        message: format!("The parameter ResetType={kind} for the action ComputerSystem.Reset is not supported on the target resource."),
    })?;
    s.reset(action)?;
    Ok(no_content())
}

async fn nics(State(bmc): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> RfResult {
    let s = bmc.system_request(&id, &headers).await?;
    let base = format!("/redfish/v1/Systems/{id}/EthernetInterfaces");
    let members = (0..s.spec().macs.len())
        .map(|i| format!("{base}/{i}"))
        .collect();
    Ok(doc(resources::collection(
        "EthernetInterfaceCollection",
        &base,
        "Ethernet Interface Collection",
        members,
    )))
}

async fn nic(
    State(bmc): State<Shared>,
    Path((id, nic)): Path<(String, String)>,
    headers: HeaderMap,
) -> RfResult {
    let s = bmc.system_request(&id, &headers).await?;
    nic.parse::<usize>()
        .ok()
        .and_then(|i| resources::ethernet_interface(s, i))
        .map(doc)
        .ok_or_else(|| {
            RfError::NotFound(format!("/redfish/v1/Systems/{id}/EthernetInterfaces/{nic}"))
        })
}

/// A collection with one member, and that member.
macro_rules! single_member {
    ($list:ident, $one:ident, $sub:literal, $member:literal, $ty:literal, $name:literal, $build:path) => {
        async fn $list(
            State(bmc): State<Shared>,
            Path(id): Path<String>,
            headers: HeaderMap,
        ) -> RfResult {
            bmc.system_request(&id, &headers).await?;
            let base = format!("/redfish/v1/Systems/{id}/{}", $sub);
            Ok(doc(resources::collection(
                $ty,
                &base,
                $name,
                vec![format!("{base}/{}", $member)],
            )))
        }

        async fn $one(
            State(bmc): State<Shared>,
            Path((id, member)): Path<(String, String)>,
            headers: HeaderMap,
        ) -> RfResult {
            let s = bmc.system_request(&id, &headers).await?;
            if member != $member {
                return Err(RfError::NotFound(format!(
                    "/redfish/v1/Systems/{id}/{}/{member}",
                    $sub
                )));
            }
            Ok(doc($build(s)))
        }
    };
}

single_member!(
    processors,
    processor,
    "Processors",
    "CPU0",
    "ProcessorCollection",
    "Processors Collection",
    resources::processor
);
single_member!(
    memories,
    memory,
    "Memory",
    "DIMM0",
    "MemoryCollection",
    "Memory Module Collection",
    resources::memory
);
single_member!(
    storages,
    storage,
    "SimpleStorage",
    "0",
    "SimpleStorageCollection",
    "Simple Storage Collection",
    resources::simple_storage
);

async fn chassis_list(State(bmc): State<Shared>, headers: HeaderMap) -> RfResult {
    bmc.service_request(&headers).await?;
    Ok(doc(resources::collection(
        "ChassisCollection",
        "/redfish/v1/Chassis",
        "Chassis Collection",
        member_paths(&bmc, "/redfish/v1/Chassis"),
    )))
}

async fn chassis(
    State(bmc): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> RfResult {
    let s = bmc
        .system_request(&id, &headers)
        .await
        .map_err(|e| match e {
            RfError::NotFound(_) => RfError::NotFound(format!("/redfish/v1/Chassis/{id}")),
            other => other,
        })?;
    Ok(doc(resources::chassis(s)))
}
