//! Node actions run on the conductor that owns the node.
//!
//! With several conductors on one database every node has an owner: the live
//! conductor its UUID maps to on the hash ring of its group and driver
//! ([`Conductor::remote_owner`](ironic_core::conductor::Conductor::remote_owner)).
//! Ironic's API hands node actions to the owner over RPC; here an API that is not
//! the owner forwards the request, as it came (authentication included), to the
//! owner's API (`[conductor] internal_url`, recorded in the conductors table), and
//! answers with the owner's response. So the power, boot, deploy and agent work
//! of a node always runs on the conductor that serves its network, its boot
//! files and its periodic tasks.
//!
//! Forwarded: every change under `/v1/nodes/{node}` (PATCH, DELETE, POST, PUT),
//! the reads that ask the hardware (validate, boot device, indicators, console,
//! virtual media, vendor passthru) and the agent's `POST /v1/heartbeat/{node}`.
//! Reads of the database run wherever they arrive.
//!
//! A forwarded request carries [`FORWARDED_BY`] and is never forwarded again. When
//! the owner cannot be reached at all (connection refused, unknown host), the
//! request runs here, under the node's lock in the database, with a warning: the
//! two conductors can never work on one node at once, and the action is not lost
//! to a stale or misconfigured URL. Once the owner got the request, its failure to
//! answer is a 503 (the action may have run there).

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ironic_core::conductor::RemoteOwner;

use super::ApiState;
use super::error::{ApiError, Formatted};
use super::http::ReqCtx;

/// Header naming the conductor that forwarded a request to the owner.
pub(crate) const FORWARDED_BY: &str = "x-ironic-forwarded-by";

/// How long a forwarded request may take (Ironic's `rpc_response_timeout` is 60 s;
/// synchronous vendor passthru and console calls can take as long as the BMC).
const TIMEOUT: Duration = Duration::from_secs(120);

/// The node a request acts on, when it must run on the node's owner.
fn routed_node<'p>(method: &Method, path: &'p str) -> Option<&'p str> {
    if let Some(node) = path.strip_prefix("/v1/heartbeat/") {
        return (*method == Method::POST && !node.is_empty() && !node.contains('/'))
            .then_some(node);
    }
    let rest = path.strip_prefix("/v1/nodes/")?;
    let (node, sub) = match rest.split_once('/') {
        Some((n, s)) => (n, Some(s)),
        None => (rest, None),
    };
    if node.is_empty() || node == "detail" {
        return None;
    }
    let hardware_read = |sub: &str| {
        [
            "validate",
            "management/",
            "states/console",
            "vendor_passthru",
            "vmedia",
        ]
        .iter()
        .any(|p| sub == p.trim_end_matches('/') || sub.starts_with(p))
            && sub != "vendor_passthru/methods"
    };
    match (method, sub) {
        (&Method::GET | &Method::HEAD, None) => None,
        (&Method::GET | &Method::HEAD, Some(s)) => hardware_read(s).then_some(node),
        (&Method::PATCH | &Method::DELETE, None) => Some(node),
        (&Method::POST | &Method::PUT | &Method::PATCH | &Method::DELETE, Some(_)) => Some(node),
        _ => None,
    }
}

/// Headers a proxy must not pass on (RFC 9110 §7.6.1), and the body's length,
/// which the client sets again.
fn hop_by_hop(name: &header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    )
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap_or_default()
    })
}

/// The middleware: forward a node action to its owner, or run it here.
pub(super) async fn to_owner(State(st): State<ApiState>, req: Request, next: Next) -> Response {
    if req.headers().contains_key(FORWARDED_BY) {
        return next.run(req).await;
    }
    let Some(ident) = routed_node(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let Some(ctx) = req.extensions().get::<ReqCtx>().cloned() else {
        return next.run(req).await;
    };
    // An unknown node or a bad identifier: the handler here gives the error.
    let Ok(node) = super::nodes::node(&st, &ctx, ident).await else {
        return next.run(req).await;
    };
    let Some(owner) = st.conductor().remote_owner(&node) else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    // `limits::limit_body` already read and bounded the body.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::bad_request(format!("The request body could not be read: {e}"))
                .into_response();
        }
    };
    let me = st.conductor().config().host.clone();
    match forward(&parts, bytes.clone(), &owner, &me).await {
        Ok(r) => r,
        Err(e) if e.is_connect() => {
            tracing::warn!(node = %node.uuid, owner = %owner.host, url = %owner.url, error = %without_url(&e),
                "the node's owner cannot be reached; running the action here under the node's lock");
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) => {
            tracing::error!(node = %node.uuid, owner = %owner.host, url = %owner.url, error = %without_url(&e),
                "the node's owner did not answer a forwarded request");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "Conductor {} that manages node {} did not answer: {}",
                    owner.host,
                    node.uuid,
                    without_url(&e)
                ),
            )
            .into_response()
        }
    }
}

/// A client error without the URL (which may carry a query).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "");
    }
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

async fn forward(
    parts: &axum::http::request::Parts,
    body: axum::body::Bytes,
    owner: &RemoteOwner,
    me: &str,
) -> Result<Response, reqwest::Error> {
    let path_query = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str());
    let url = format!("{}{}", owner.url.trim_end_matches('/'), path_query);
    let mut headers = HeaderMap::new();
    for (k, v) in &parts.headers {
        if !hop_by_hop(k) {
            headers.append(k.clone(), v.clone());
        }
    }
    if let Ok(v) = me.parse() {
        headers.insert(FORWARDED_BY, v);
    }
    tracing::debug!(method = %parts.method, path = %parts.uri.path(), owner = %owner.host, "forwarding a node action to its owner");
    let resp = client()
        .request(parts.method.clone(), url)
        .headers(headers)
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let mut out_headers = HeaderMap::new();
    for (k, v) in resp.headers() {
        if !hop_by_hop(k) {
            out_headers.append(k.clone(), v.clone());
        }
    }
    let bytes = resp.bytes().await?;
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    *r.headers_mut() = out_headers;
    // The owner formatted its errors already.
    r.extensions_mut().insert(Formatted);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_actions_and_hardware_reads_are_routed_database_reads_are_not() {
        fn r(m: Method, p: &str) -> Option<&str> {
            routed_node(&m, p)
        }
        assert_eq!(r(Method::PUT, "/v1/nodes/n1/states/provision"), Some("n1"));
        assert_eq!(r(Method::PUT, "/v1/nodes/n1/states/power"), Some("n1"));
        assert_eq!(r(Method::PATCH, "/v1/nodes/n1"), Some("n1"));
        assert_eq!(r(Method::DELETE, "/v1/nodes/n1"), Some("n1"));
        assert_eq!(r(Method::POST, "/v1/nodes/n1/vifs"), Some("n1"));
        assert_eq!(r(Method::DELETE, "/v1/nodes/n1/vifs/v"), Some("n1"));
        assert_eq!(r(Method::GET, "/v1/nodes/n1/validate"), Some("n1"));
        assert_eq!(
            r(Method::GET, "/v1/nodes/n1/management/boot_device/supported"),
            Some("n1")
        );
        assert_eq!(r(Method::GET, "/v1/nodes/n1/states/console"), Some("n1"));
        assert_eq!(r(Method::GET, "/v1/nodes/n1/vendor_passthru"), Some("n1"));
        assert_eq!(r(Method::POST, "/v1/heartbeat/n1"), Some("n1"));
        assert_eq!(r(Method::GET, "/v1/nodes/n1"), None);
        assert_eq!(r(Method::GET, "/v1/nodes/n1/states"), None);
        assert_eq!(r(Method::GET, "/v1/nodes/n1/history"), None);
        assert_eq!(r(Method::GET, "/v1/nodes/n1/vendor_passthru/methods"), None);
        assert_eq!(r(Method::GET, "/v1/nodes/detail"), None);
        assert_eq!(r(Method::POST, "/v1/nodes"), None);
        assert_eq!(r(Method::GET, "/v1/nodes"), None);
        assert_eq!(r(Method::GET, "/v1/lookup"), None);
        assert_eq!(r(Method::POST, "/v1/ports"), None);
    }

    #[test]
    fn hop_by_hop_headers_and_the_length_are_not_passed_on() {
        assert!(hop_by_hop(&header::CONNECTION));
        assert!(hop_by_hop(&header::TRANSFER_ENCODING));
        assert!(hop_by_hop(&header::CONTENT_LENGTH));
        assert!(!hop_by_hop(&header::AUTHORIZATION));
        assert!(!hop_by_hop(&header::HOST));
        assert!(!hop_by_hop(&header::CONTENT_TYPE));
    }
}
