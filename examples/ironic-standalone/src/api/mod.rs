//! The Ironic-compatible v1 REST API: [`router`] gives an axum `Router` over a
//! running [`Conductor`], reusable by the `ironic` binary, tests and the lab.
//!
//! The layer is a thin adapter: handlers parse and check the request as Ironic
//! does (microversion gates, JSON schemas, JSON patch), call the [`Conductor`],
//! and render the result. Layout:
//! - `routes`: the route table; every operation is one entry naming its method,
//!   path, handler, microversion and bodies. The router and the OpenAPI document
//!   (`GET /v1/openapi.json`) are both built from it.
//! - `resource`: a resource's field table (the one source of its JSON body,
//!   `fields=` checks, create/PATCH rules and OpenAPI schema) and the list, show
//!   and patch code every resource shares.
//! - one file per resource: `nodes/` (with the node's sub-resources), `ports`,
//!   `portgroups`, `chassis`, `drivers`, `conductors`, `allocations`,
//!   `deploy_templates`, `extras` (volume connectors/targets, runbooks),
//!   `events`, `shards`, `ramdisk` (lookup, heartbeat, continue_inspection), `root`.
//! - `http` (middleware, request context), `error`, `version`, `query`, `patch`,
//!   `json`: the protocol.

mod allocations;
mod chassis;
mod conductors;
mod dashboard;
mod deploy_templates;
mod drivers;
mod error;
mod events;
pub(crate) mod extras;
mod forward;
mod http;
mod inspection_rules;
mod json;
pub mod limits;
mod nodes;
mod openapi;
mod patch;
mod portgroups;
mod ports;
mod query;
mod ramdisk;
mod resource;
mod root;
mod routes;
mod shards;
mod version;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use ironic_core::conductor::Conductor;

use crate::auth::Htpasswd;
pub(crate) use error::{ApiError, ApiResult};
pub(crate) use http::ReqCtx;

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
    /// Request-body limits (size per endpoint, JSON depth, read deadline).
    pub body_limits: limits::BodyLimits,
    /// Byte budget of one list response: a page is cut after the item that
    /// crosses it, with a `next` link (bounds the memory a list takes).
    pub max_list_body_size: usize,
    /// Memory all large responses being sent may hold at once, bytes (see
    /// [`limits::ResponseBudget`]).
    pub max_response_memory: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            public_endpoint: None,
            max_limit: 1000,
            restrict_lookup: true,
            ramdisk_heartbeat_timeout: 300,
            default_host: "127.0.0.1:6385".into(),
            body_limits: limits::BodyLimits::default(),
            max_list_body_size: 16 << 20,
            max_response_memory: 256 << 20,
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
    openapi: OnceLock<serde_json::Value>,
    metrics: OnceLock<Arc<crate::metrics::Metrics>>,
    dashboard: OnceLock<DashboardSettings>,
}

/// Settings of the built-in dashboard (`/dashboard`, from `[dashboard]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DashboardSettings {
    /// Serve the dashboard at all.
    pub enabled: bool,
    /// Hide the buttons that change nodes (the API still decides what a user may do).
    pub read_only: bool,
}

impl ApiState {
    /// State over a started conductor. `auth` enables HTTP basic auth.
    pub fn new(conductor: Conductor, settings: ApiSettings, auth: Option<Arc<Htpasswd>>) -> Self {
        ApiState {
            inner: Arc::new(StateInner {
                conductor,
                settings,
                auth,
                openapi: OnceLock::new(),
                metrics: OnceLock::new(),
                dashboard: OnceLock::new(),
            }),
        }
    }

    /// Serve `GET /metrics` from `metrics` (give the same value to
    /// `Conductor::start_observed`) and count API requests into it. Once; later
    /// calls are ignored.
    pub fn with_metrics(self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        let _ = self.inner.metrics.set(metrics);
        self
    }

    /// Serve the dashboard with these settings. Once; later calls are ignored.
    pub fn with_dashboard(self, settings: DashboardSettings) -> Self {
        let _ = self.inner.dashboard.set(settings);
        self
    }

    fn metrics(&self) -> Option<&Arc<crate::metrics::Metrics>> {
        self.inner.metrics.get()
    }

    fn dashboard(&self) -> Option<&DashboardSettings> {
        self.inner.dashboard.get().filter(|d| d.enabled)
    }

    /// The conductor.
    pub fn conductor(&self) -> &Conductor {
        &self.inner.conductor
    }

    fn settings(&self) -> &ApiSettings {
        &self.inner.settings
    }

    fn auth(&self) -> Option<&Arc<Htpasswd>> {
        self.inner.auth.as_ref()
    }

    fn openapi(&self) -> &serde_json::Value {
        static EMPTY: serde_json::Value = serde_json::Value::Null;
        self.inner.openapi.get().unwrap_or(&EMPTY)
    }
}

/// A JSON body response.
fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    r
}

/// 200 with a JSON body.
fn ok(body: Vec<u8>) -> Response {
    json_response(StatusCode::OK, body)
}

/// 200 with a serializable body.
fn ok_value<T: serde::Serialize>(v: &T) -> ApiResult<Response> {
    let body = serde_json::to_vec(v).map_err(ApiError::internal)?;
    Ok(ok(body))
}

/// 201 with `Location`.
fn created(location: &str, body: Vec<u8>) -> Response {
    let mut r = json_response(StatusCode::CREATED, body);
    if let Ok(v) = axum::http::HeaderValue::from_str(location) {
        r.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    r
}

/// 202 with `Location` and no body.
fn accepted(location: Option<&str>) -> Response {
    let mut r = StatusCode::ACCEPTED.into_response();
    if let Some(l) = location
        && let Ok(v) = axum::http::HeaderValue::from_str(l)
    {
        r.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    r
}

/// 204.
fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Parse a JSON request body into `T`, with a client error naming the problem.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "The request body is empty; a JSON document is expected.",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON in request body: {e}")))
}

/// Parse a JSON body that must be an object.
fn parse_object(body: &[u8]) -> ApiResult<serde_json::Map<String, serde_json::Value>> {
    match parse_body::<serde_json::Value>(body)? {
        serde_json::Value::Object(m) => Ok(m),
        other => Err(ApiError::bad_request(format!(
            "Invalid request body: expected a JSON object, got {other}"
        ))),
    }
}

/// Every operation of the API, in one table.
fn all_routes() -> Vec<routes::Route> {
    let mut r = Vec::with_capacity(160);
    r.extend(root::routes());
    r.extend(nodes::routes());
    r.extend(ports::routes());
    r.extend(portgroups::routes());
    r.extend(chassis::routes());
    r.extend(drivers::routes());
    r.extend(conductors::routes());
    r.extend(allocations::routes());
    r.extend(deploy_templates::routes());
    r.extend(inspection_rules::routes());
    r.extend(extras::routes());
    r.extend(events::routes());
    r.extend(shards::routes());
    r.extend(ramdisk::routes());
    r
}

/// The whole v1 API over `state`.
pub fn router(state: ApiState) -> Router {
    let table = all_routes();
    let _ = state.inner.openapi.set(openapi::document(&table));
    let inner = routes::build(table)
        .with_state(state.clone())
        .fallback(|| async { ApiError::no_such_path() })
        // Bodies are bounded by `limits` (after authentication), not axum's 2 MiB.
        .layer(axum::extract::DefaultBodyLimit::disable())
        // Node actions run on the node's conductor (after authentication and the
        // body limits, before routing).
        .layer(middleware::from_fn_with_state(
            state.clone(),
            forward::to_owner,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::new(state.settings().body_limits.clone()),
            limits::limit_body,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::new(limits::ResponseBudget::new(
                state.settings().max_response_memory,
            )),
            limits::bound_response,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            http::middleware,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), http::count));
    // outside /v1: no microversion headers, same authentication
    Router::new()
        .merge(dashboard::router(state))
        .fallback_service(inner)
        .layer(middleware::map_request(http::normalize_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_no_duplicate_operations_and_every_route_is_documented() {
        let table = all_routes();
        let mut seen = std::collections::HashSet::new();
        for r in &table {
            assert!(
                seen.insert((r.method.clone(), r.path)),
                "{} {} twice",
                r.method,
                r.path
            );
            assert!(
                !r.summary.is_empty(),
                "{} {} has no summary",
                r.method,
                r.path
            );
        }
        let doc = openapi::document(&table);
        let paths = doc["paths"].as_object().unwrap();
        for r in &table {
            let m = r.method.as_str().to_ascii_lowercase();
            let op = &paths[r.path][&m];
            assert_eq!(
                op["x-openstack-microversion-min"],
                format!("1.{}", r.since),
                "{m} {}",
                r.path
            );
            assert!(op["responses"][r.status.to_string()].is_object());
        }
        assert_eq!(
            doc["components"]["schemas"]["NodeCreate"]["properties"]["driver"]["type"],
            "string"
        );
        assert!(
            doc["components"]["schemas"]["Node"]["properties"]
                .get("provision_state")
                .is_some()
        );
        assert!(
            doc["components"]["schemas"]["PortCreate"]["properties"]
                .get("node")
                .is_some()
        );
        assert!(
            doc["components"]["schemas"]["Port"]["properties"]
                .get("node")
                .is_none()
        );
    }
}
