//! The HTTP serving loop of the API: HTTP/1.1 (hyper) with the limits a service
//! facing slow, broken and hostile clients needs.
//!
//! - **Request heads** must arrive within [`HttpLimits::header_read_timeout`]
//!   (slowloris); the same timer closes keep-alive connections left idle that long.
//!   Heads larger than [`HttpLimits::max_header_size`] get `431`.
//! - **Responses** to a client that stops reading fail after
//!   [`HttpLimits::write_timeout`] without progress, and the connection is closed.
//! - **Connections** are limited to [`HttpLimits::max_connections`]. At the limit, a new
//!   connection closes the one that has been waiting longest without a request in
//!   progress (a half-sent head, or an idle keep-alive), so a flood of slow clients
//!   cannot lock out a client that sends whole requests; when every connection is
//!   busy, new ones wait in the listen backlog.
//! - **Accept errors** (out of file descriptors, ...) free an idle connection and
//!   back off (5 ms doubling to 1 s) instead of spinning; they are logged at most once
//!   a second.
//! - **Shutdown** stops accepting, closes connections without a request in progress,
//!   lets requests in progress finish for at most [`HttpLimits::drain_timeout`], then
//!   closes whatever is left, so a stuck client cannot hold the process up.
//!
//! Request bodies (size, JSON depth, read deadline) are bounded by the API's own
//! middleware (`api::limits`), which knows the per-endpoint limits.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Limits of the serving loop (from `[api]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time a client has to send a whole request head; also how long a keep-alive
    /// connection may stay idle.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers), in bytes; larger gets `431`.
    pub max_header_size: usize,
    /// Most header fields in a request; more gets `431`.
    pub max_headers: usize,
    /// Time a response write may make no progress (the client stopped reading).
    pub write_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Time requests in progress get to finish at shutdown.
    pub drain_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(30),
            max_header_size: 32 * 1024,
            max_headers: 100,
            write_timeout: Duration::from_secs(60),
            max_connections: 1000,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// What a [`serve`] run did, for the log and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServeReport {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed to make room for a new one (at the connection limit).
    pub evicted: u64,
    /// Failed `accept` calls (e.g. out of file descriptors).
    pub accept_errors: u64,
    /// Connections still open when the drain time ran out, closed by force.
    pub aborted_at_shutdown: usize,
    /// How long the drain took.
    pub drain: Duration,
}

/// Per-connection state shared between the accept loop, the connection task and
/// the requests on it.
struct Conn {
    /// Requests in progress (from the head received to the response body sent).
    busy: AtomicUsize,
    /// When the connection last became free of requests (ms since the registry's epoch).
    idle_since: AtomicU64,
    /// Close the connection now.
    close: CancellationToken,
}

struct Registry {
    epoch: Instant,
    next: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    /// One permit per closed connection (the accept loop waits on it at the limit,
    /// the drain waits on it to see the registry empty).
    freed: Notify,
}

impl Registry {
    fn new() -> Arc<Registry> {
        Arc::new(Registry {
            epoch: Instant::now(),
            next: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
            freed: Notify::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn add(&self) -> (u64, Arc<Conn>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.now_ms()),
            close: CancellationToken::new(),
        });
        self.lock().insert(id, conn.clone());
        (id, conn)
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
        self.freed.notify_one();
    }

    /// Whether some connection has no request in progress (and can be evicted).
    fn has_idle(&self) -> bool {
        self.lock()
            .values()
            .any(|c| c.busy.load(Ordering::Acquire) == 0 && !c.close.is_cancelled())
    }

    /// Close the connection that has waited longest without a request; false when
    /// every connection is busy.
    fn evict_oldest_idle(&self) -> bool {
        let conns = self.lock();
        let victim = conns
            .values()
            .filter(|c| c.busy.load(Ordering::Acquire) == 0 && !c.close.is_cancelled())
            .min_by_key(|c| c.idle_since.load(Ordering::Relaxed));
        match victim {
            Some(c) => {
                c.close.cancel();
                true
            }
            None => false,
        }
    }

    /// Close every connection with no request in progress; returns how many.
    fn close_idle(&self) -> usize {
        let conns = self.lock();
        let mut n = 0;
        for c in conns.values() {
            if c.busy.load(Ordering::Acquire) == 0 && !c.close.is_cancelled() {
                c.close.cancel();
                n += 1;
            }
        }
        n
    }

    /// Close every connection; returns how many were open.
    fn close_all(&self) -> usize {
        let conns = self.lock();
        for c in conns.values() {
            c.close.cancel();
        }
        conns.len()
    }

    /// Wait until no connection is left, or `deadline`; true when none is left.
    async fn wait_empty(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let freed = self.freed.notified();
            if self.len() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return self.len() == 0;
            }
        }
    }
}

/// Marks a connection busy while a request is in progress (until its response body
/// has been sent or dropped).
struct BusyGuard {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl BusyGuard {
    fn new(conn: Arc<Conn>, registry: Arc<Registry>) -> BusyGuard {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        BusyGuard { conn, registry }
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        if self.conn.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.conn
                .idle_since
                .store(self.registry.now_ms(), Ordering::Relaxed);
        }
    }
}

/// A response body that keeps its connection marked busy until it is dropped.
struct GuardedBody {
    inner: Body,
    _guard: BusyGuard,
}

impl HttpBody for GuardedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A TCP stream whose writes fail with `TimedOut` after `timeout` without progress.
struct WriteTimeout {
    inner: TcpStream,
    timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl WriteTimeout {
    fn poll_progress<T>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(v) => {
                self.stalled = None;
                Poll::Ready(v)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if sleep.as_mut().poll(cx).is_ready() {
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client stopped reading the response",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl AsyncRead for WriteTimeout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteTimeout {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.poll_progress(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.poll_progress(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.poll_progress(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Logs a repeated condition at most once per interval, with how many were skipped.
struct RateLimitedLog {
    last: Option<Instant>,
    skipped: u64,
}

impl RateLimitedLog {
    fn new() -> Self {
        RateLimitedLog {
            last: None,
            skipped: 0,
        }
    }

    /// `Some(skipped since the last line)` when a line may be logged now.
    fn ready(&mut self, every: Duration) -> Option<u64> {
        if self.last.is_some_and(|t| t.elapsed() < every) {
            self.skipped += 1;
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.skipped))
    }
}

/// Accept errors that concern one connection only (the client went away before we
/// accepted it): retry at once.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

fn builder(limits: &HttpLimits) -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers.max(1))
        .max_header_size(limits.max_header_size)
        // A head that never completes is cut at the read buffer's size.
        .max_buf_size(limits.max_header_size.max(8192))
        .keep_alive(true);
    b
}

/// Serve `app` on `listener` until `shutdown` resolves, then drain as described in
/// the module docs. Returns what happened.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) -> ServeReport {
    let registry = Registry::new();
    let graceful = CancellationToken::new();
    let builder = Arc::new(builder(&limits));
    let max = limits.max_connections.max(1);
    let mut report = ServeReport::default();
    let mut backoff = Duration::from_millis(5);
    let mut accept_log = RateLimitedLog::new();
    let mut evict_log = RateLimitedLog::new();
    tokio::pin!(shutdown);
    'accept: loop {
        // At the limit with every connection busy: wait for one to close.
        while registry.len() >= max && !registry.has_idle() {
            let freed = registry.freed.notified();
            tokio::select! {
                _ = freed => {}
                // Busy connections may become idle without closing.
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = &mut shutdown => break 'accept,
            }
        }
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = &mut shutdown => break 'accept,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                report.accepted += 1;
                if registry.len() >= max && registry.evict_oldest_idle() {
                    report.evicted += 1;
                    if let Some(skipped) = evict_log.ready(Duration::from_secs(10)) {
                        tracing::warn!(
                            max_connections = max,
                            evicted_since_last = skipped + 1,
                            "connection limit reached: closing connections that have not sent a whole request"
                        );
                    }
                }
                let (id, conn) = registry.add();
                let _ = stream.set_nodelay(true);
                tokio::spawn(run_conn(
                    builder.clone(),
                    stream,
                    peer,
                    app.clone(),
                    limits.write_timeout,
                    registry.clone(),
                    id,
                    conn,
                    graceful.clone(),
                ));
            }
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                report.accept_errors += 1;
                // Out of descriptors (or memory): make room, and do not spin.
                let freed = registry.evict_oldest_idle();
                if let Some(skipped) = accept_log.ready(Duration::from_secs(1)) {
                    tracing::warn!(
                        error = %e,
                        open_connections = registry.len(),
                        freed_an_idle_connection = freed,
                        backoff_ms = backoff.as_millis() as u64,
                        suppressed = skipped,
                        "accept failed; backing off"
                    );
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = &mut shutdown => break 'accept,
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
    // Drain.
    drop(listener);
    let started = Instant::now();
    let open = registry.len();
    graceful.cancel();
    let closed_idle = registry.close_idle();
    tracing::info!(
        open_connections = open,
        closed_idle,
        drain_timeout_s = limits.drain_timeout.as_secs_f32(),
        "stopped accepting; waiting for requests in progress"
    );
    let deadline = tokio::time::Instant::now() + limits.drain_timeout;
    if !registry.wait_empty(deadline).await {
        // Idle again after their last response, or stuck: close them all.
        report.aborted_at_shutdown = registry.close_all();
        tracing::warn!(
            connections = report.aborted_at_shutdown,
            "drain time is up: closing the connections still open"
        );
        registry
            .wait_empty(tokio::time::Instant::now() + Duration::from_secs(1))
            .await;
    }
    report.drain = started.elapsed();
    report
}

#[allow(clippy::too_many_arguments)]
async fn run_conn(
    builder: Arc<hyper::server::conn::http1::Builder>,
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    write_timeout: Duration,
    registry: Arc<Registry>,
    id: u64,
    conn: Arc<Conn>,
    graceful: CancellationToken,
) {
    let io = TokioIo::new(WriteTimeout {
        inner: stream,
        timeout: write_timeout,
        stalled: None,
    });
    let svc_conn = conn.clone();
    let svc_registry = registry.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let guard = BusyGuard::new(svc_conn.clone(), svc_registry.clone());
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = TowerToHyperService::new(app.clone());
        async move {
            let resp = hyper::service::Service::call(&app, req.map(Body::new)).await;
            resp.map(|r| {
                r.map(|b| {
                    Body::new(GuardedBody {
                        inner: b,
                        _guard: guard,
                    })
                })
            })
        }
    });
    let mut http = Box::pin(builder.serve_connection(io, service));
    let mut draining = false;
    loop {
        tokio::select! {
            r = http.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = conn.close.cancelled() => {
                tracing::debug!(%peer, "connection closed by the server");
                break;
            }
            _ = graceful.cancelled(), if !draining => {
                draining = true;
                http.as_mut().graceful_shutdown();
            }
        }
    }
    drop(http);
    registry.remove(id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_idle_connection_is_evicted_and_busy_ones_never() {
        let r = Registry::new();
        let (_, a) = r.add();
        let (_, b) = r.add();
        let (_, c) = r.add();
        a.idle_since.store(30, Ordering::Relaxed);
        b.idle_since.store(10, Ordering::Relaxed);
        c.idle_since.store(20, Ordering::Relaxed);
        let _busy = BusyGuard::new(b.clone(), r.clone());
        assert!(r.evict_oldest_idle());
        assert!(c.close.is_cancelled() && !a.close.is_cancelled() && !b.close.is_cancelled());
        assert!(r.evict_oldest_idle());
        assert!(a.close.is_cancelled());
        // Only the busy one is left: nothing to evict.
        assert!(!r.evict_oldest_idle() && !r.has_idle());
        assert!(!b.close.is_cancelled());
        drop(_busy);
        assert!(r.has_idle());
        assert_eq!(r.close_all(), 3);
    }

    #[test]
    fn repeated_log_lines_are_rate_limited_with_a_count() {
        let mut l = RateLimitedLog::new();
        assert_eq!(l.ready(Duration::from_secs(60)), Some(0));
        assert_eq!(l.ready(Duration::from_secs(60)), None);
        assert_eq!(l.ready(Duration::from_secs(60)), None);
        assert_eq!(l.ready(Duration::ZERO), Some(2));
    }
}
