//! The Ironic-compatible v1 REST API: [`router`] gives an axum `Router` over a
//! running [`Conductor`], reusable by the `ironic` binary, tests and the lab.
//!
//! Every response passes through one middleware that negotiates the microversion
//! (406 outside the range), adds the min/max/negotiated version headers and the
//! request id, checks HTTP basic auth when configured, and rewrites any error
//! body into Ironic's double-encoded `error_message` format.

pub mod error;
pub mod json;
pub mod openapi;
pub mod patch;
pub mod query;
pub mod render;
pub mod version;

mod chassis;
mod drivers;
pub mod extras;
mod node_actions;
mod node_sub;
mod nodes;
mod ports;
mod ramdisk;
mod root;
mod scheduling;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ironic_core::conductor::Conductor;

use crate::auth::Htpasswd;
use error::{ApiError, ApiResult, Formatted};
use render::Ctx;
use version::Version;

/// Settings of the API layer (from `[api]`).
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// Base URL for links; `None` = from the request's `Host` header.
    pub public_endpoint: Option<String>,
    /// Maximum and default page size.
    pub max_limit: usize,
    /// Restrict `/v1/lookup` to nodes in lookup-allowed states.
    pub restrict_lookup: bool,
    /// Heartbeat interval the agent is told to keep (seconds).
    pub ramdisk_heartbeat_timeout: u64,
    /// Fallback host for links when a request has no `Host` header.
    pub default_host: String,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            public_endpoint: None,
            max_limit: 1000,
            restrict_lookup: true,
            ramdisk_heartbeat_timeout: 300,
            default_host: "127.0.0.1:6385".into(),
        }
    }
}

/// What handlers share.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<StateInner>,
}

struct StateInner {
    conductor: Conductor,
    settings: ApiSettings,
    auth: Option<Arc<Htpasswd>>,
}

impl ApiState {
    /// State over a started conductor. `auth` enables HTTP basic auth.
    pub fn new(conductor: Conductor, settings: ApiSettings, auth: Option<Arc<Htpasswd>>) -> Self {
        ApiState {
            inner: Arc::new(StateInner {
                conductor,
                settings,
                auth,
            }),
        }
    }

    /// The conductor.
    pub fn conductor(&self) -> &Conductor {
        &self.inner.conductor
    }

    fn settings(&self) -> &ApiSettings {
        &self.inner.settings
    }
}

/// Per-request facts, put in the request extensions by the middleware.
#[derive(Clone, Debug)]
pub struct ReqCtx {
    /// Negotiated version.
    pub version: Version,
    /// Base URL (no trailing slash).
    pub base: Arc<str>,
    /// `req-<uuid>`.
    pub request_id: Arc<str>,
}

impl ReqCtx {
    fn render<'a>(&'a self, st: &'a ApiState) -> Ctx<'a> {
        Ctx {
            version: self.version,
            base: &self.base,
            conductor_host: Some(st.conductor().config().host.as_str()),
        }
    }

    /// 406 unless the version is at least `1.minor`.
    fn require(&self, minor: u32) -> ApiResult<()> {
        if self.version.at_least(minor) {
            Ok(())
        } else {
            Err(ApiError::not_acceptable())
        }
    }

    /// 404 (the endpoint does not exist at this version) unless at least `1.minor`.
    fn exists_since(&self, minor: u32) -> ApiResult<()> {
        if self.version.at_least(minor) {
            Ok(())
        } else {
            Err(ApiError::no_such_path())
        }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ReqCtx {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ReqCtx>()
            .cloned()
            .ok_or_else(|| ApiError::internal("request context missing"))
    }
}

/// A JSON body response.
pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// 200 with a JSON body.
pub(crate) fn ok(body: Vec<u8>) -> Response {
    json_response(StatusCode::OK, body)
}

/// 200 with a serializable body.
pub(crate) fn ok_value<T: serde::Serialize>(v: &T) -> ApiResult<Response> {
    let body = serde_json::to_vec(v).map_err(ApiError::internal)?;
    Ok(ok(body))
}

/// 201 with `Location`.
pub(crate) fn created(location: &str, body: Vec<u8>) -> Response {
    let mut r = json_response(StatusCode::CREATED, body);
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// 202 with `Location` and no body.
pub(crate) fn accepted(location: Option<&str>) -> Response {
    let mut r = StatusCode::ACCEPTED.into_response();
    if let Some(l) = location
        && let Ok(v) = HeaderValue::from_str(l)
    {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// 204.
pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Parse a JSON request body into `T`, with a client error naming the problem.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "The request body is empty; a JSON document is expected.",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON in request body: {e}")))
}

/// Parse a JSON body that must be an object.
pub(crate) fn parse_object(body: &[u8]) -> ApiResult<serde_json::Map<String, serde_json::Value>> {
    match parse_body::<serde_json::Value>(body)? {
        serde_json::Value::Object(m) => Ok(m),
        other => Err(ApiError::bad_request(format!(
            "Invalid request body: expected a JSON object, got {other}"
        ))),
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Paths that stay open under HTTP basic auth (Ironic's `public_api_routes`).
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/" | "/v1" | "/v1/" | "/v1/lookup" | "/v1/lookup/" | "/v1/continue_inspection"
    ) || path.starts_with("/v1/heartbeat/")
}

async fn middleware(State(st): State<ApiState>, mut req: Request, next: Next) -> Response {
    let request_id: Arc<str> = format!("req-{}", uuid::Uuid::new_v4()).into();
    let headers = req.headers();
    let requested = version::requested(
        header_str(headers, version::OPENSTACK_HEADER),
        header_str(headers, version::HEADER),
    );
    let negotiated = version::negotiate(requested);
    let base: Arc<str> = match &st.settings().public_endpoint {
        Some(p) => p.trim_end_matches('/').into(),
        None => {
            let host = header_str(headers, "host").unwrap_or(&st.settings().default_host);
            format!("http://{host}").into()
        }
    };
    let mut resp = match negotiated {
        Err(e) => ApiError::version_not_acceptable(e.message()).into_response(),
        Ok(v) => {
            let authorized = match &st.inner.auth {
                Some(auth) if !is_public(req.uri().path()) => auth
                    .check(header_str(req.headers(), "authorization"))
                    .is_some(),
                _ => true,
            };
            if !authorized {
                let mut r = ApiError::unauthorized().into_response();
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"Baremetal API\""),
                );
                r
            } else {
                req.extensions_mut().insert(ReqCtx {
                    version: v,
                    base,
                    request_id: request_id.clone(),
                });
                let method = req.method().clone();
                let mut r = next.run(req).await;
                if (r.status().is_client_error() || r.status().is_server_error())
                    && r.extensions().get::<Formatted>().is_none()
                {
                    r = reformat(r, &method).await;
                }
                if let Ok(hv) = HeaderValue::from_str(&v.to_string()) {
                    r.headers_mut().insert(version::HEADER, hv);
                }
                r
            }
        }
    };
    let h = resp.headers_mut();
    h.insert(version::MIN_HEADER, HeaderValue::from_static("1.1"));
    if let Ok(hv) = HeaderValue::from_str(&version::MAX.to_string()) {
        h.insert(version::MAX_HEADER, hv);
    }
    if let Ok(hv) = HeaderValue::from_str(&request_id) {
        h.insert("x-openstack-request-id", hv.clone());
        h.insert("openstack-request-id", hv);
    }
    h.insert(header::SERVER, HeaderValue::from_static("ironic_api"));
    resp
}

/// Turn an error response produced outside our handlers (unknown path, wrong
/// method, body extractor rejections) into Ironic's error format.
async fn reformat(r: Response, _method: &Method) -> Response {
    let status = r.status();
    let e = match status {
        StatusCode::NOT_FOUND => ApiError::no_such_path(),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::method_not_allowed(),
        _ => {
            let bytes = axum::body::to_bytes(r.into_body(), 64 * 1024)
                .await
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes).trim().to_owned();
            let msg = if text.is_empty() {
                status.canonical_reason().unwrap_or("Error").to_owned()
            } else {
                text
            };
            ApiError::new(status, msg)
        }
    };
    e.into_response()
}

/// Normalise the path before routing: drop a trailing slash (`/v1/ports/`), and,
/// for clients asking for a version before 1.91, a `.json` suffix (Ironic's
/// `JsonExtensionMiddleware`).
async fn normalize_path(mut req: Request<Body>) -> Request<Body> {
    let path = req.uri().path();
    let mut new = path.to_owned();
    while new.len() > 1 && new.ends_with('/') {
        new.pop();
    }
    if new.ends_with(".json") {
        let old_client = header_str(req.headers(), version::HEADER)
            .and_then(|v| v.trim().split_once('.'))
            .and_then(|(_, minor)| minor.parse::<u32>().ok())
            .is_some_and(|minor| minor < version::feature::NO_JSON_SUFFIX);
        if old_client {
            new.truncate(new.len() - ".json".len());
        }
    }
    if new != path {
        let uri = match req.uri().query() {
            Some(q) => format!("{new}?{q}"),
            None => new,
        };
        if let Ok(uri) = uri.parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// The whole v1 API over `state`.
pub fn router(state: ApiState) -> Router {
    let routes: Router = Router::new()
        .route("/", get(root::root))
        .route("/v1", get(root::v1))
        .route("/v1/openapi.json", get(openapi::serve))
        .merge(nodes::routes())
        .merge(node_actions::routes())
        .merge(node_sub::routes())
        .merge(ports::routes())
        .merge(chassis::routes())
        .merge(drivers::routes())
        .merge(scheduling::routes())
        .merge(extras::routes())
        .route("/v1/lookup", get(ramdisk::lookup))
        .route("/v1/heartbeat/{node}", post(ramdisk::heartbeat))
        .route(
            "/v1/continue_inspection",
            post(ramdisk::continue_inspection),
        )
        .route("/v1/events", post(scheduling::events))
        .route("/v1/shards", get(scheduling::shards))
        .route(
            "/v1/nodes/{node}/states/console",
            get(node_actions::get_console).put(node_actions::set_console),
        )
        .with_state(state.clone());
    let inner = routes
        .fallback(|| async { ApiError::no_such_path() })
        .layer(middleware::from_fn_with_state(state, middleware));
    Router::new()
        .fallback_service(inner)
        .layer(middleware::map_request(normalize_path))
}
