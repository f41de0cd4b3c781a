//! The noVNC proxy (Ironic's `ironic-novncproxy`), served when `[vnc] enabled`:
//! on `[vnc] host_ip:port` it serves the noVNC web app from `[vnc] novnc_web`
//! (files only, no listings) and, on a websocket request
//! (`/websockify?node=UUID&token=TOKEN`, the path the console URL hands noVNC):
//!
//! 1. checks the token against the node's (`driver_internal_info.novnc_secret_token`,
//!    not older than `[vnc] token_timeout`) and, when the browser sends an
//!    `Origin`, that its host is the one the request was sent to, as Ironic does;
//! 2. connects to the console's VNC server (`vnc_host`:`vnc_port`);
//! 3. does the RFB security handshake as Ironic's `RFBSecurityProxy`: RFB 3.8 on
//!    both sides, the server's security types read, the browser offered `None`
//!    only, the server answered with `None` (the only scheme of Ironic's
//!    `novnc_auth_schemes`); failures are told to the browser as RFB failures;
//! 4. relays bytes both ways until either side closes.
//!
//! Differences: a refused token is answered `401` before the websocket upgrade
//! (Ironic's websockify upgrades first and then closes); there is no TLS
//! (`[vnc] enable_ssl`: put a TLS proxy in front) and no session recording
//! (`novnc_record`). Tokens never reach the logs: requests are logged with the
//! node only.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{
    Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use ironic_core::Ident;
use ironic_core::conductor::Conductor;
use ironic_core::graphical::RFB_VERSION_LENGTH;
use ironic_core::graphical::token::{self, TokenError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::config::VncSection;

/// RFB security type `None`.
const AUTH_NONE: u8 = 1;

/// What the proxy needs.
#[derive(Clone)]
struct Proxy {
    conductor: Conductor,
    web: Arc<PathBuf>,
    token_timeout: Duration,
}

/// A running proxy; stopped when dropped.
#[derive(Debug)]
pub struct VncProxy {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl VncProxy {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for VncProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Why the proxy did not start.
#[derive(Debug, thiserror::Error)]
pub enum VncError {
    /// `[vnc] novnc_web` does not exist (Ironic's message).
    #[error(
        "Can not find html/js files at {0}. (install Debian's novnc package, or set [vnc] novnc_web)"
    )]
    NoWeb(PathBuf),
    /// The address could not be bound.
    #[error("cannot listen on {addr} ([vnc] host_ip, port): {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Start the proxy of `cfg` (call only with `[vnc] enabled`).
pub async fn start(cfg: &VncSection, conductor: Conductor) -> Result<VncProxy, VncError> {
    if !cfg.novnc_web.is_dir() {
        return Err(VncError::NoWeb(cfg.novnc_web.clone()));
    }
    let addr = match cfg.host_ip.parse::<std::net::IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, cfg.port),
        Err(_) => SocketAddr::from(([0, 0, 0, 0], cfg.port)),
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| VncError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| VncError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let proxy = Proxy {
        conductor,
        web: Arc::new(cfg.novnc_web.clone()),
        token_timeout: Duration::from_secs(cfg.token_timeout),
    };
    let app = axum::Router::new().fallback(handle).with_state(proxy);
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        let r = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(s.cancelled_owned())
        .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "noVNC proxy stopped");
        }
    });
    tracing::info!(listen = %addr, web = %cfg.novnc_web.display(), "noVNC proxy listening");
    Ok(VncProxy { addr, stop })
}

#[derive(serde::Deserialize)]
struct WsQuery {
    #[serde(default)]
    node: String,
    #[serde(default)]
    token: String,
}

async fn handle(
    State(p): State<Proxy>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match ws {
        Ok(ws) => {
            let q: WsQuery = Query::try_from_uri(&uri)
                .map(|Query(q)| q)
                .unwrap_or(WsQuery {
                    node: String::new(),
                    token: String::new(),
                });
            websocket(p, ws, q, &headers).await
        }
        Err(_) => static_file(&p.web, uri.path()).await,
    }
}

fn refused(node: &str, why: &str) -> Response {
    tracing::warn!(node = %node, reason = why, "console connection refused");
    (StatusCode::UNAUTHORIZED, "Not authorized.\n").into_response()
}

async fn websocket(p: Proxy, ws: WebSocketUpgrade, q: WsQuery, headers: &HeaderMap) -> Response {
    let Ok(uuid) = q.node.parse::<uuid::Uuid>() else {
        return refused(&q.node, "no node UUID");
    };
    let node = match p.conductor.store().get_node(&Ident::Uuid(uuid)).await {
        Ok(n) => n,
        Err(_) => return refused(&q.node, "no such node"),
    };
    if let Err(e) = token::validate(&node, &q.token, p.token_timeout) {
        let why = match e {
            TokenError::Expired => "token expired",
            _ => "token invalid",
        };
        return refused(&q.node, why);
    }
    if let Err(why) = check_origin(headers) {
        tracing::warn!(node = %uuid, reason = why, "console connection refused");
        return (StatusCode::FORBIDDEN, format!("{why}\n")).into_response();
    }
    let host = node
        .driver_internal_info
        .get(token::VNC_HOST_KEY)
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let port = node
        .driver_internal_info
        .get(token::VNC_PORT_KEY)
        .and_then(|v| v.as_u64())
        .and_then(|p| u16::try_from(p).ok());
    let (Some(host), Some(port)) = (host, port) else {
        return refused(&q.node, "no VNC server recorded");
    };
    ws.protocols(["binary"])
        .on_upgrade(move |socket| async move {
            tracing::info!(node = %uuid, target = %format!("{host}:{port}"), "console connection");
            match proxy(socket, &host, port).await {
                Ok(()) => tracing::info!(node = %uuid, "console connection closed"),
                Err(e) => tracing::warn!(node = %uuid, error = %e, "console connection ended"),
            }
        })
}

/// Ironic's origin check: an `Origin` header (browsers send one) must name the
/// host the request was addressed to (`Host`).
fn check_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let expected = hostname_of_authority(host);
    let origin = origin.to_str().unwrap_or_default();
    let Ok(url) = reqwest::Url::parse(origin) else {
        return Err("Origin header not valid.");
    };
    let got = url.host_str().unwrap_or_default();
    if got.is_empty() || url.scheme().is_empty() {
        return Err("Origin header not valid.");
    }
    if got.trim_matches(|c| c == '[' || c == ']') != expected {
        return Err("Origin header does not match this host.");
    }
    Ok(())
}

fn hostname_of_authority(a: &str) -> &str {
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    a.split(':').next().unwrap_or_default()
}

/// The browser's side of the handshake: websocket messages as a byte stream.
struct Tenant {
    ws: WebSocket,
    buf: Vec<u8>,
}

impl Tenant {
    async fn recv(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            match self.ws.recv().await {
                Some(Ok(Message::Binary(b))) => self.buf.extend_from_slice(&b),
                Some(Ok(Message::Text(t))) => self.buf.extend_from_slice(t.as_bytes()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => {
                    return Err(eof("the browser closed the connection"));
                }
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    async fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.ws
            .send(Message::Binary(data.to_vec().into()))
            .await
            .map_err(std::io::Error::other)
    }
}

fn eof(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, what.to_owned())
}

async fn recv_host(host: &mut TcpStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut b = vec![0u8; n];
    host.read_exact(&mut b).await?;
    Ok(b)
}

fn var_str(message: &str) -> Vec<u8> {
    let mut v = (message.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(message.as_bytes());
    v
}

/// `RFB 003.008\n` → (3, 8).
fn rfb_version(v: &[u8]) -> Option<(u32, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let rest = s.strip_prefix("RFB ")?.strip_suffix('\n')?;
    let (maj, min) = rest.split_once('.')?;
    Some((maj.parse().ok()?, min.parse().ok()?))
}

/// Ironic's `_fail`: tell the browser (a failed SecurityResult with a reason)
/// and, when given, the server (security type `Invalid`).
async fn fail(tenant: &mut Tenant, host: Option<&mut TcpStream>, message: &str) {
    let mut m = 1u32.to_be_bytes().to_vec();
    m.extend(var_str(message));
    let _ = tenant.send(&m).await;
    if let Some(h) = host {
        let _ = h.write_all(&[0]).await;
    }
}

/// The RFB security handshake of Ironic's `RFBSecurityProxy.connect`.
async fn security_handshake(tenant: &mut Tenant, host: &mut TcpStream) -> std::io::Result<()> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let host_version = recv_host(host, RFB_VERSION_LENGTH).await?;
    if rfb_version(&host_version) != Some((3, 8)) {
        return Err(bad(format!(
            "Security proxying requires RFB protocol version 3.8, but server sent {}",
            String::from_utf8_lossy(&host_version).trim_end()
        )));
    }
    host.write_all(&host_version).await?;
    tenant.send(&host_version).await?;
    let tenant_version = tenant.recv(RFB_VERSION_LENGTH).await?;
    if rfb_version(&tenant_version) != Some((3, 8)) {
        return Err(bad(format!(
            "Security proxying requires RFB protocol version 3.8, but tenant asked for {}",
            String::from_utf8_lossy(&tenant_version).trim_end()
        )));
    }
    let count = recv_host(host, 1).await?[0];
    if count == 0 {
        let len_raw = recv_host(host, 4).await?;
        let len = u32::from_be_bytes([len_raw[0], len_raw[1], len_raw[2], len_raw[3]]);
        let reason = if len <= 256 {
            recv_host(host, len as usize).await?
        } else {
            b"Unable to negotiate security with server".to_vec()
        };
        let mut m = vec![0u8];
        m.extend((reason.len() as u32).to_be_bytes());
        m.extend(&reason);
        let _ = tenant.send(&m).await;
        return Err(bad(format!(
            "the VNC server refused: {}",
            String::from_utf8_lossy(&reason)
        )));
    }
    let types = recv_host(host, count as usize).await?;
    tracing::debug!(types = ?types, "VNC server security types");
    tenant.send(&[1, AUTH_NONE]).await?;
    let client_auth = tenant.recv(1).await?[0];
    if client_auth != AUTH_NONE {
        fail(
            tenant,
            Some(host),
            "Only the security type 1 (NONE) is supported",
        )
        .await;
        return Err(bad(format!(
            "Client requested a security type other than 1 (NONE): {client_auth}"
        )));
    }
    if !types.contains(&AUTH_NONE) {
        fail(
            tenant,
            Some(host),
            "Unable to negotiate security with server",
        )
        .await;
        return Err(bad(format!(
            "No host auth available: the server offers security types {types:?}, [vnc] novnc_auth_schemes allows none (1)"
        )));
    }
    host.write_all(&[AUTH_NONE]).await?;
    Ok(())
}

async fn proxy(socket: WebSocket, host: &str, port: u16) -> std::io::Result<()> {
    let mut tsock = TcpStream::connect((host, port)).await?;
    let _ = tsock.set_nodelay(true);
    let mut tenant = Tenant {
        ws: socket,
        buf: Vec::new(),
    };
    if let Err(e) = security_handshake(&mut tenant, &mut tsock).await {
        let _ = tenant.ws.send(Message::Close(None)).await;
        return Err(e);
    }
    // What the browser sent past the handshake goes to the server.
    if !tenant.buf.is_empty() {
        tsock.write_all(&tenant.buf).await?;
    }
    let (mut ws_tx, mut ws_rx) = tenant.ws.split();
    let (mut rd, mut wr) = tsock.into_split();
    let up = async {
        while let Some(m) = ws_rx.next().await {
            match m.map_err(std::io::Error::other)? {
                Message::Binary(b) => wr.write_all(&b).await?,
                Message::Text(t) => wr.write_all(t.as_bytes()).await?,
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => {}
            }
        }
        let _ = wr.shutdown().await;
        std::io::Result::Ok(())
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            ws_tx
                .send(Message::Binary(buf[..n].to_vec().into()))
                .await
                .map_err(std::io::Error::other)?;
        }
        let _ = ws_tx.send(Message::Close(None)).await;
        std::io::Result::Ok(())
    };
    // Either side closing ends the connection.
    tokio::select! {
        r = up => r,
        r = down => r,
    }
}

/// A file of the noVNC web app (Ironic's websockify serves `novnc_web` with
/// `file_only`: no directory listings, nothing outside it).
async fn static_file(web: &Path, path: &str) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "Not found\n").into_response();
    let rel = path.trim_start_matches('/');
    let rel = Path::new(rel);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return not_found();
    }
    let full = web.join(rel);
    // symlinks (Debian's vnc_auto.html → vnc.html) may point inside the tree only
    let (Ok(real), Ok(root)) = (
        tokio::fs::canonicalize(&full).await,
        tokio::fs::canonicalize(web).await,
    ) else {
        return not_found();
    };
    if !real.starts_with(&root) || !real.is_file() {
        return not_found();
    }
    match tokio::fs::read(&real).await {
        Ok(bytes) => (
            [(header::CONTENT_TYPE, content_type(&real))],
            Body::from(bytes),
        )
            .into_response(),
        Err(_) => not_found(),
    }
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or_default() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "gif" => "image/gif",
        "jpg" | "jpeg" => "image/jpeg",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "mp3" => "audio/mpeg",
        "oga" | "ogg" => "audio/ogg",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_origins() {
        assert_eq!(rfb_version(b"RFB 003.008\n"), Some((3, 8)));
        assert_eq!(rfb_version(b"RFB 003.003\n"), Some((3, 3)));
        assert_eq!(rfb_version(b"garbage here"), None);
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:6090".parse().unwrap());
        assert_eq!(check_origin(&h), Ok(()));
        h.insert(header::ORIGIN, "http://127.0.0.1:6090".parse().unwrap());
        assert_eq!(check_origin(&h), Ok(()));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert_eq!(
            check_origin(&h),
            Err("Origin header does not match this host.")
        );
        h.insert(header::HOST, "[::1]:6090".parse().unwrap());
        h.insert(header::ORIGIN, "http://[::1]:6090".parse().unwrap());
        assert_eq!(check_origin(&h), Ok(()));
    }
}
