//! A small static file server with `Range` support, for serving images over
//! HTTP from the conductor host (and for tests and benches: it can cut the
//! connection at a given offset to simulate a broken download).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Behaviour of the server.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// Cut every response once this absolute file offset is reached (fault injection).
    pub truncate_at: Option<u64>,
    /// Answer `Range` requests with 206 (default true via [`ServeOptions::new`]).
    pub ranges: bool,
}

impl ServeOptions {
    /// Ranges on, no faults.
    pub fn new() -> Self {
        ServeOptions {
            truncate_at: None,
            ranges: true,
        }
    }
}

struct Inner {
    root: PathBuf,
    opts: ServeOptions,
}

/// A running server on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct ImageServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ImageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn parse_range(h: &str, len: u64) -> Option<(u64, u64)> {
    let spec = h.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        (len.saturating_sub(n), len.checked_sub(1)?)
    } else {
        let s: u64 = a.parse().ok()?;
        let e = if b.is_empty() {
            len.checked_sub(1)?
        } else {
            b.parse::<u64>().ok()?.min(len.checked_sub(1)?)
        };
        (s, e)
    };
    (start <= end && end < len).then_some((start, end))
}

async fn serve(
    State(inner): State<Arc<Inner>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    // a relative path of plain names: no `..`, no root, no `.`
    let rel = std::path::Path::new(&name);
    if name.is_empty()
        || !rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        return StatusCode::NOT_FOUND.into_response();
    }
    let path = inner.root.join(&name);
    let Ok(mut file) = tokio::fs::File::open(&path).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(meta) = file.metadata().await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if !meta.is_file() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let len = meta.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| inner.opts.ranges)
        .map(|r| parse_range(r, len));
    let (status, start, end) = match range {
        Some(Some((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e + 1),
        Some(None) => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{len}"))],
            )
                .into_response();
        }
        None => (StatusCode::OK, 0, len),
    };
    if file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let cut = inner.opts.truncate_at.unwrap_or(u64::MAX);
    let stream = futures::stream::unfold((file, start), move |(mut f, pos)| async move {
        if pos >= end {
            return None;
        }
        if pos >= cut {
            return Some((
                Err(std::io::Error::other("connection cut (fault injection)")),
                (f, end),
            ));
        }
        let n = (end - pos).min(cut - pos).min(1 << 20) as usize;
        let mut buf = vec![0u8; n];
        match f.read_exact(&mut buf).await {
            Ok(_) => Some((Ok(bytes::Bytes::from(buf)), (f, pos + n as u64))),
            Err(e) => Some((Err(e), (f, end))),
        }
    });
    let mut resp = Response::new(Body::from_stream(stream.boxed()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, (end - start).into());
    h.insert(
        header::ACCEPT_RANGES,
        header::HeaderValue::from_static("bytes"),
    );
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = format!("bytes {start}-{}/{len}", end - 1).parse()
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    resp
}

impl ImageServer {
    /// Serve the files of `root` and its subdirectories (e.g. Ironic's
    /// `http_root` with `agent_images/<node>`) on `127.0.0.1:<free port>`.
    pub async fn start(root: impl Into<PathBuf>, opts: ServeOptions) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            root: root.into(),
            opts,
        });
        let app = axum::Router::new()
            .route("/{*name}", axum::routing::get(serve))
            .with_state(inner);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(ImageServer { addr, task })
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// URL of a file.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=95-200", 100), Some((95, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=0-1,3-4", 100), None);
    }

    #[tokio::test]
    async fn serves_subdirectories_and_nothing_outside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("agent_images")).unwrap();
        std::fs::write(root.join("agent_images/node"), b"image").unwrap();
        std::fs::write(d.path().join("secret"), b"no").unwrap();
        let srv = super::ImageServer::start(&root, super::ServeOptions::new())
            .await
            .unwrap();
        let get = |p: &str| reqwest::get(format!("http://{}/{p}", srv.addr()));
        let r = get("agent_images/node").await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(&r.bytes().await.unwrap()[..], b"image");
        for p in [
            "agent_images/%2e%2e/%2e%2e/secret",
            "%2e%2e/secret",
            "agent_images",
        ] {
            assert_eq!(get(p).await.unwrap().status(), 404, "{p}");
        }
    }
}
