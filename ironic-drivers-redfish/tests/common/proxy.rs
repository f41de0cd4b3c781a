//! A fault-injecting proxy in front of a real sushy-emulator: it answers 500/503
//! on a schedule, and adds what sushy-emulator lacks, a SessionService
//! (`X-Auth-Token` sessions whose tokens the test can expire), forwarding the
//! requests of a valid session to sushy with basic auth.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub struct Proxy {
    pub address: String,
    pub state: Arc<ProxyState>,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

#[derive(Default)]
pub struct ProxyState {
    upstream: String,
    /// Answer this status to the next `fail_next` requests (0 = none).
    pub fail_status: AtomicU32,
    pub fail_next: AtomicU32,
    /// Fail every `fail_every`th request (0 = never).
    pub fail_every: AtomicU32,
    /// Requests seen, and those answered with an injected error.
    pub requests: AtomicU32,
    pub injected: AtomicU32,
    /// Session logins.
    pub logins: AtomicU32,
    /// Behave like BMCs that demand `If-Match` on PATCH (HPE iLO): 428 without
    /// it, 412 when it is stale. `etag_on_get` adds `ETag` headers to GETs.
    pub require_etag: AtomicBool,
    pub etag_on_get: AtomicBool,
    /// Answer 412 to the next `stale_next` PATCHes (a concurrent change).
    pub stale_next: AtomicU32,
    /// 428/412 answers given.
    pub precondition_failures: AtomicU32,
    /// Drop `VirtualMedia` from systems, as BMCs before Redfish 1.11 do (the
    /// slots are then found under the Manager).
    pub hide_system_vmedia: AtomicBool,
    /// Credentials (for sessions) and valid tokens.
    creds: Option<(String, String)>,
    tokens: Mutex<HashSet<String>>,
    counter: AtomicU32,
    client: reqwest::Client,
}

impl ProxyState {
    /// Invalidate every session token (as a BMC does when sessions time out).
    pub fn expire_sessions(&self) {
        self.tokens.lock().unwrap().clear();
    }
    /// Fail the next `n` requests with `status`.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.fail_status.store(status as u32, Ordering::SeqCst);
        self.fail_next.store(n, Ordering::SeqCst);
    }
}

impl Proxy {
    /// Proxy to `upstream` (http). With `sessions`, offer a SessionService for
    /// these credentials.
    pub async fn start(upstream: &str, sessions: Option<(&str, &str)>) -> Proxy {
        let state = Arc::new(ProxyState {
            upstream: upstream.to_owned(),
            creds: sessions.map(|(u, p)| (u.to_owned(), p.to_owned())),
            client: reqwest::Client::new(),
            ..Default::default()
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Proxy {
            address: format!("http://127.0.0.1:{port}"),
            state,
            handle,
        }
    }
}

fn error(status: u16, msg: &str) -> Response {
    let body = json!({"error": {"code": "Base.1.0.GeneralError", "message": msg}});
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(State(st): State<Arc<ProxyState>>, req: Request) -> Response {
    let n = st.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let pending = st.fail_next.load(Ordering::SeqCst);
    if pending > 0 {
        st.fail_next.store(pending - 1, Ordering::SeqCst);
        st.injected.fetch_add(1, Ordering::SeqCst);
        return error(
            st.fail_status.load(Ordering::SeqCst) as u16,
            "injected fault",
        );
    }
    let every = st.fail_every.load(Ordering::SeqCst);
    if every > 0 && n % every == 0 {
        st.injected.fetch_add(1, Ordering::SeqCst);
        return error(503, "injected: service temporarily unavailable");
    }
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let headers = req.headers().clone();
    let body = to_bytes(req.into_body(), usize::MAX)
        .await
        .unwrap_or_default();

    let mut upstream_auth: Option<HeaderValue> = headers.get("authorization").cloned();
    if let Some((user, pass)) = &st.creds {
        if method == "POST" && path.trim_end_matches('/') == "/redfish/v1/SessionService/Sessions" {
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            if v["UserName"] != *user || v["Password"] != *pass {
                // Like a sloppy BMC, echo what was sent.
                return error(
                    401,
                    &format!("invalid credentials {} / {}", v["UserName"], v["Password"]),
                );
            }
            st.logins.fetch_add(1, Ordering::SeqCst);
            let id = st.counter.fetch_add(1, Ordering::SeqCst);
            let token = format!("tok-{id}-{}", uuid_like(id));
            st.tokens.lock().unwrap().insert(token.clone());
            let mut h = HeaderMap::new();
            h.insert("x-auth-token", HeaderValue::from_str(&token).unwrap());
            h.insert(
                "location",
                HeaderValue::from_str(&format!("/redfish/v1/SessionService/Sessions/{id}"))
                    .unwrap(),
            );
            h.insert("content-type", HeaderValue::from_static("application/json"));
            let body = json!({"@odata.id": format!("/redfish/v1/SessionService/Sessions/{id}"), "Id": id.to_string(), "UserName": user});
            return (StatusCode::CREATED, h, body.to_string()).into_response();
        }
        if let Some(t) = headers.get("x-auth-token") {
            let ok = t
                .to_str()
                .is_ok_and(|t| st.tokens.lock().unwrap().contains(t));
            if !ok {
                return error(401, "session expired");
            }
            let basic = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("{user}:{pass}"),
            );
            upstream_auth = Some(HeaderValue::from_str(&format!("Basic {basic}")).unwrap());
        }
    }

    if method == "PATCH" && st.require_etag.load(Ordering::SeqCst) {
        let given = headers
            .get("if-match")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let Some(given) = given else {
            st.precondition_failures.fetch_add(1, Ordering::SeqCst);
            return error(428, "If-Match header required");
        };
        let stale = st.stale_next.load(Ordering::SeqCst);
        if stale > 0 {
            st.stale_next.store(stale - 1, Ordering::SeqCst);
            st.precondition_failures.fetch_add(1, Ordering::SeqCst);
            return error(412, "ETag does not match (changed concurrently)");
        }
        if given != "*" {
            let mut cur = st.client.get(format!("{}{path}", st.upstream));
            if let Some(a) = &upstream_auth {
                cur = cur.header("authorization", a.to_str().unwrap());
            }
            let body = cur.send().await.unwrap().bytes().await.unwrap();
            if given != etag_of(&body) {
                st.precondition_failures.fetch_add(1, Ordering::SeqCst);
                return error(412, "ETag does not match");
            }
        }
    }

    let mut req = st.client.request(
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
        format!("{}{path}", st.upstream),
    );
    if let Some(a) = upstream_auth {
        req = req.header("authorization", a.to_str().unwrap());
    }
    for name in ["content-type", "if-match"] {
        if let Some(v) = headers.get(name) {
            req = req.header(name, v.to_str().unwrap_or_default());
        }
    }
    if !body.is_empty() {
        req = req.body(body.to_vec());
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return error(502, &format!("upstream: {e}")),
    };
    let status = resp.status().as_u16();
    let mut h = HeaderMap::new();
    for name in ["content-type", "location", "etag"] {
        if let Some(v) = resp.headers().get(name) {
            h.insert(name, HeaderValue::from_bytes(v.as_bytes()).unwrap());
        }
    }
    let mut bytes = resp.bytes().await.unwrap_or_default().to_vec();
    if method == "GET" && st.etag_on_get.load(Ordering::SeqCst) {
        h.insert("etag", HeaderValue::from_str(&etag_of(&bytes)).unwrap());
    }
    let is_system = path.starts_with("/redfish/v1/Systems/")
        && path.trim_end_matches('/').matches('/').count() == 4;
    if method == "GET"
        && is_system
        && st.hide_system_vmedia.load(Ordering::SeqCst)
        && let Ok(mut v) = serde_json::from_slice::<Value>(&bytes)
    {
        if let Some(m) = v.as_object_mut() {
            m.remove("VirtualMedia");
        }
        bytes = v.to_string().into_bytes();
    }
    if st.creds.is_some() && path.trim_end_matches('/') == "/redfish/v1" {
        // Advertise the session service in the service root.
        if let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) {
            v["SessionService"] = json!({"@odata.id": "/redfish/v1/SessionService"});
            v["Links"] = json!({"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}});
            bytes = v.to_string().into_bytes();
        }
    }
    (StatusCode::from_u16(status).unwrap(), h, Body::from(bytes)).into_response()
}

/// A strong ETag over a resource's JSON content.
fn etag_of(body: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let v: Value = serde_json::from_slice(body).unwrap_or_default();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    format!("\"{:016x}\"", h.finish())
}

fn uuid_like(i: u32) -> String {
    format!(
        "{:08x}{:08x}",
        i.wrapping_mul(2654435761),
        std::process::id()
    )
}
