//! The HTTP plumbing around the handlers: the per-request context, the
//! middleware that negotiates the microversion (406 outside the range), adds the
//! version headers and the request id, checks HTTP basic auth and rewrites every
//! error body into Ironic's format, the path normaliser, and response helpers.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::error::{ApiError, ApiResult, Formatted};
use super::resource::Ctx;
use super::version::{self, Version};

/// Per-request facts, put in the request extensions by the middleware.
#[derive(Clone, Debug)]
pub(crate) struct ReqCtx {
    /// Negotiated version.
    pub version: Version,
    /// Base URL (no trailing slash).
    pub base: Arc<str>,
}

impl ReqCtx {
    pub(crate) fn render<'a>(&'a self, st: &'a ApiState) -> Ctx<'a> {
        Ctx {
            version: self.version,
            base: &self.base,
            conductor: Some(st.conductor()),
        }
    }

    /// 406 unless the version is at least `1.minor`.
    pub(crate) fn require(&self, minor: u32) -> ApiResult<()> {
        if self.version.at_least(minor) {
            Ok(())
        } else {
            Err(ApiError::not_acceptable())
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

/// Whether the request may go on under the API's authentication (always when
/// auth is off); the 401 to answer otherwise.
pub(super) async fn authenticate(st: &ApiState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let ok = match st.auth() {
        Some(auth) => auth
            .check(header_str(headers, "authorization"))
            .await
            .is_some(),
        None => true,
    };
    if ok {
        return Ok(());
    }
    let mut r = ApiError::unauthorized().into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Baremetal API\""),
    );
    Err(Box::new(r))
}

/// Count the request into the metrics (by route template, never the raw path).
pub(super) async fn count(State(st): State<ApiState>, req: Request, next: Next) -> Response {
    let Some(m) = st.metrics().cloned() else {
        return next.run(req).await;
    };
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().clone();
    let start = std::time::Instant::now();
    let r = next.run(req).await;
    m.api_request(
        method.as_str(),
        &route,
        r.status().as_u16(),
        start.elapsed(),
    );
    r
}

pub(super) async fn middleware(
    State(st): State<ApiState>,
    mut req: Request,
    next: Next,
) -> Response {
    let request_id: Arc<str> = format!("req-{}", uuid::Uuid::new_v4()).into();
    let headers = req.headers();
    let negotiated = version::requested_in(headers).and_then(version::negotiate);
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
            let authorized = match st.auth() {
                Some(auth) if !is_public(req.uri().path()) => auth
                    .check(header_str(req.headers(), "authorization"))
                    .await
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
                req.extensions_mut().insert(ReqCtx { version: v, base });
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
pub(super) async fn normalize_path(mut req: Request<Body>) -> Request<Body> {
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
