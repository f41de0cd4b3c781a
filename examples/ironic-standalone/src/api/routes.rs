//! The route table: every operation of the API is one [`Route`] (method, path,
//! handler, the microversion it appeared in, what a client older than that gets,
//! success status, request and response bodies). The axum router and the
//! OpenAPI document are both built from the same table, so the document cannot
//! drift from what is served.

use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

use super::error::ApiError;
use super::resource::Schema;
use super::{ApiState, ReqCtx};

/// What a client whose version predates a route gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// 404, as for a path that does not exist (webob's "The resource could not
    /// be found.").
    Path404,
    /// 404 in Ironic's fault format ("Resource could not be found."), as
    /// `exception.NotFound` gives.
    Fault404,
    /// 406 "Request not acceptable.".
    Fault406,
}

impl Gate {
    fn error(self) -> ApiError {
        match self {
            Gate::Path404 => ApiError::no_such_path(),
            Gate::Fault404 => ApiError::not_found("Resource could not be found."),
            Gate::Fault406 => ApiError::not_acceptable(),
        }
    }
}

/// A request or response body, for the document.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Body {
    /// No body.
    None,
    /// One resource.
    One(&'static Schema),
    /// A page of a collection (`{"<key>": [...], "next": "..."}`).
    List(&'static Schema),
    /// A create body (the schema's creatable fields).
    Create(&'static Schema),
    /// A JSON patch.
    Patch,
    /// A JSON object described in words.
    Object(&'static str),
}

/// One operation.
pub(crate) struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path in axum syntax (`/v1/nodes/{node}`).
    pub path: &'static str,
    /// One line for the document.
    pub summary: &'static str,
    /// Minor version that introduced it.
    pub since: u32,
    /// What older clients get.
    pub gate: Gate,
    /// Success status.
    pub status: u16,
    /// Request body.
    pub request: Body,
    /// Response body.
    pub response: Body,
    handler: MethodRouter<ApiState>,
}

/// `method path`, answering 200.
pub(crate) fn on<H, T>(method: Method, path: &'static str, h: H) -> Route
where
    H: Handler<T, ApiState>,
    T: 'static,
{
    route(method, path, h, 200)
}

fn route<H, T>(method: Method, path: &'static str, h: H, status: u16) -> Route
where
    H: Handler<T, ApiState>,
    T: 'static,
{
    let filter = axum::routing::MethodFilter::try_from(method.clone())
        .unwrap_or(axum::routing::MethodFilter::GET);
    Route {
        method,
        path,
        summary: "",
        since: 1,
        gate: Gate::Path404,
        status,
        request: Body::None,
        response: Body::None,
        handler: axum::routing::on(filter, h),
    }
}

/// `GET path` answering 200.
pub(crate) fn get<H: Handler<T, ApiState>, T: 'static>(path: &'static str, h: H) -> Route {
    route(Method::GET, path, h, 200)
}
/// `POST path` answering 201.
pub(crate) fn post<H: Handler<T, ApiState>, T: 'static>(path: &'static str, h: H) -> Route {
    route(Method::POST, path, h, 201)
}
/// `PUT path` answering 202.
pub(crate) fn put<H: Handler<T, ApiState>, T: 'static>(path: &'static str, h: H) -> Route {
    route(Method::PUT, path, h, 202)
}
/// `PATCH path` answering 200.
pub(crate) fn patch<H: Handler<T, ApiState>, T: 'static>(path: &'static str, h: H) -> Route {
    route(Method::PATCH, path, h, 200)
}
/// `DELETE path` answering 204.
pub(crate) fn delete<H: Handler<T, ApiState>, T: 'static>(path: &'static str, h: H) -> Route {
    route(Method::DELETE, path, h, 204)
}

impl Route {
    /// The summary.
    pub fn doc(mut self, summary: &'static str) -> Self {
        self.summary = summary;
        self
    }
    /// Exists from `1.minor` on; older clients get 404 as for an unknown path.
    pub fn since(mut self, minor: u32) -> Self {
        self.since = minor;
        self.gate = Gate::Path404;
        self
    }
    /// Exists from `1.minor` on; older clients get `gate`.
    pub fn since_or(mut self, minor: u32, gate: Gate) -> Self {
        self.since = minor;
        self.gate = gate;
        self
    }
    /// Success status.
    pub fn status(mut self, code: u16) -> Self {
        self.status = code;
        self
    }
    /// Request body.
    pub fn takes(mut self, b: Body) -> Self {
        self.request = b;
        self
    }
    /// Response body.
    pub fn returns(mut self, b: Body) -> Self {
        self.response = b;
        self
    }
}

async fn gate(State((since, gate)): State<(u32, Gate)>, req: Request, next: Next) -> Response {
    let old = req
        .extensions()
        .get::<ReqCtx>()
        .is_some_and(|c| !c.version.at_least(since));
    if old {
        return gate.error().into_response();
    }
    next.run(req).await
}

/// Build the axum router of `routes` (each gated by its version).
pub(crate) fn build(routes: Vec<Route>) -> axum::Router<ApiState> {
    let mut r = axum::Router::new();
    for rt in routes {
        let h = if rt.since > 1 {
            rt.handler
                .route_layer(middleware::from_fn_with_state((rt.since, rt.gate), gate))
        } else {
            rt.handler
        };
        r = r.route(rt.path, h);
    }
    r
}
