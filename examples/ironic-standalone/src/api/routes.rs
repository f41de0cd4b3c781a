//! The route table: every operation of the API is one [`Route`] (method, path,
//! handler, the microversion it appeared in, what a client older than that gets,
//! success status, request and response bodies). The axum router and the
//! OpenAPI document are both built from the same table, so the document cannot
//! drift from what is served.

use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

use super::error::ApiError;
use super::resource::Schema;
use super::{ApiState, ReqCtx};

/// What a client whose version predates a route gets: Ironic answers each
/// endpoint its own way (404 or 405 or 406, webob's `code`/`title`/`description`
/// body or the fault body, with a message), and clients see the difference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gate {
    /// HTTP status.
    pub status: u16,
    /// `code`/`title`/`description` body (webob) instead of the fault body.
    pub webob: bool,
    /// The message.
    pub message: &'static str,
}

impl Gate {
    /// 404 as for a path that does not exist (webob, empty description).
    pub const PATH: Gate = Gate::webob(404, "");
    /// 404 "Resource could not be found." (`exception.NotFound`).
    pub const NOT_FOUND: Gate = Gate::fault(404, "Resource could not be found.");
    /// 404 "The API is not supported for this version".
    pub const UNSUPPORTED: Gate = Gate::fault(404, "The API is not supported for this version");
    /// 406 "Request not acceptable." (`exception.NotAcceptable`).
    pub const NOT_ACCEPTABLE: Gate = Gate::fault(406, "Request not acceptable.");

    /// A fault-format answer.
    pub const fn fault(status: u16, message: &'static str) -> Gate {
        Gate {
            status,
            webob: false,
            message,
        }
    }

    /// A webob-format answer.
    pub const fn webob(status: u16, message: &'static str) -> Gate {
        Gate {
            status,
            webob: true,
            message,
        }
    }

    /// The error to answer.
    pub fn error(self) -> ApiError {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::NOT_FOUND);
        if self.webob {
            ApiError::webob(status, self.message)
        } else {
            ApiError::new(status, self.message)
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
    /// The handler checks the version itself (after validating the body, as
    /// Ironic does for this endpoint); `since` is then only documentation.
    pub handler_gates: bool,
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
        gate: Gate::PATH,
        handler_gates: false,
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
        self.gate = Gate::PATH;
        self
    }
    /// Appeared in `1.minor`, but the handler refuses older clients itself.
    pub fn since_checked_by_handler(mut self, minor: u32) -> Self {
        self.since = minor;
        self.handler_gates = true;
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
        let h = if rt.since > 1 && !rt.handler_gates {
            rt.handler
                .route_layer(middleware::from_fn_with_state((rt.since, rt.gate), gate))
        } else {
            rt.handler
        };
        r = r.route(rt.path, h);
    }
    r
}
