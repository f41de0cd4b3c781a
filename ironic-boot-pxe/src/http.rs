//! The HTTP boot server: kernels, ramdisks, iPXE scripts and images from a
//! [`BootFiles`] set, with single byte ranges (`Range: bytes=a-b`, `a-`, `-n`)
//! and exact `Content-Length`s.
//!
//! [`router`] gives an axum [`Router`] to mount into another application (the
//! API can `nest("/boot", router(files))`); [`HttpBootServer`] runs it
//! standalone.

use std::fmt;
use std::io::{self, SeekFrom};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::files::{BootFile, BootFiles, OpenError};

/// A router serving `files` under `/{*path}` for `GET` and `HEAD`.
pub fn router(files: Arc<BootFiles>) -> Router {
    Router::new()
        .route("/{*path}", get(serve_file))
        .with_state(files)
}

/// What a `Range` header asks for, resolved against a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No (usable) range: the whole file.
    Full,
    /// Bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// A range that lies outside the file: answer 416.
    Unsatisfiable,
}

/// Parse a `Range` header value for a file of `len` bytes (RFC 9110 §14).
/// Several ranges, other units and syntax errors are ignored (the whole file is
/// sent), as the RFC allows.
pub fn parse_range(value: &str, len: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (a.is_empty(), b.is_empty()) {
        (true, true) => RangeRequest::Full,
        (true, false) => match num(b) {
            None => RangeRequest::Full,
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if len == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Partial {
                start: len.saturating_sub(n),
                end: len - 1,
            },
        },
        (false, _) => {
            let Some(start) = num(a) else {
                return RangeRequest::Full;
            };
            let end = if b.is_empty() {
                u64::MAX
            } else {
                match num(b) {
                    Some(e) if e >= start => e,
                    _ => return RangeRequest::Full,
                }
            };
            if start >= len {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial {
                    start,
                    end: end.min(len - 1),
                }
            }
        }
    }
}

fn content_type(path: &str) -> &'static str {
    if path.ends_with(".ipxe") || path.ends_with(".cfg") || path.contains("pxelinux.cfg/") {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

async fn serve_file(
    State(files): State<Arc<BootFiles>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let opened = {
        let files = Arc::clone(&files);
        let p = path.clone();
        tokio::task::spawn_blocking(move || files.open(&p)).await
    };
    let file = match opened {
        Ok(Ok(f)) => f,
        Ok(Err(OpenError::Refused(p))) => {
            tracing::warn!(path = %p, "HTTP boot request refused: path leaves the boot root");
            return (StatusCode::FORBIDDEN, "forbidden\n").into_response();
        }
        Ok(Err(_)) => return (StatusCode::NOT_FOUND, "not found\n").into_response(),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let len = file.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, len))
        .unwrap_or(RangeRequest::Full);
    let (status, start, count) = match range {
        RangeRequest::Full => (StatusCode::OK, 0, len),
        RangeRequest::Partial { start, end } => {
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    tracing::debug!(path = %path, len, start, count, "HTTP boot read");
    let body = match file {
        BootFile::Memory(b) => Body::from(b.slice(start as usize..(start + count) as usize)),
        BootFile::Disk { file, .. } => match disk_body(file, start, count).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(path = %path, error = %e, "HTTP boot read failed");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        },
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", start + count - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    resp
}

async fn disk_body(file: std::fs::File, start: u64, count: u64) -> io::Result<Body> {
    let mut f = tokio::fs::File::from_std(file);
    if start > 0 {
        f.seek(SeekFrom::Start(start)).await?;
    }
    let stream = ReaderStream::with_capacity(f.take(count), 256 * 1024);
    Ok(Body::from_stream(stream))
}

/// A standalone HTTP server for a router (usually [`router`], possibly merged
/// with more routes). Stops when dropped.
pub struct HttpBootServer {
    local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for HttpBootServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpBootServer")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl HttpBootServer {
    /// Bind `addr` (port 0 picks one) and serve `app` in a tokio task.
    pub async fn bind(addr: SocketAddr, app: Router) -> io::Result<HttpBootServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(addr = %local_addr, error = %e, "HTTP boot server stopped");
            }
        });
        tracing::info!(addr = %local_addr, "HTTP boot server listening");
        Ok(HttpBootServer { local_addr, task })
    }

    /// Serve `app` on a listener bound elsewhere (in another network namespace,
    /// or handed over by a service manager). Call inside a tokio runtime.
    pub fn from_std(listener: std::net::TcpListener, app: Router) -> io::Result<HttpBootServer> {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let local_addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(addr = %local_addr, error = %e, "HTTP boot server stopped");
            }
        });
        tracing::info!(addr = %local_addr, "HTTP boot server listening");
        Ok(HttpBootServer { local_addr, task })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL, `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }
}

impl Drop for HttpBootServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=0-9", 100), Partial { start: 0, end: 9 });
        assert_eq!(
            parse_range("bytes=90-", 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            parse_range("bytes=-10", 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            parse_range("bytes=-1000", 100),
            Partial { start: 0, end: 99 }
        );
        assert_eq!(
            parse_range("bytes=50-1000", 100),
            Partial { start: 50, end: 99 }
        );
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=9-3", 100), Full);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Full);
        assert_eq!(parse_range("items=0-1", 100), Full);
        assert_eq!(parse_range("bytes=a-b", 100), Full);
        assert_eq!(parse_range("bytes=+1-2", 100), Full);
    }

    proptest! {
        #[test]
        fn ranges_stay_inside(s in "bytes=[0-9-]{0,12}", len in 0u64..10_000) {
            if let RangeRequest::Partial { start, end } = parse_range(&s, len) {
                prop_assert!(start <= end && end < len);
            }
        }
    }
}
