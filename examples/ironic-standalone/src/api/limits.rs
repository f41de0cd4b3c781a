//! Request-body limits, as Ironic's `JsonDepthMiddleware` sets them (OSSN-0099):
//! `[api]max_json_body_size` (1 MiB) for every endpoint, except
//! `PUT .../states/provision` (`max_json_body_size_provision`, 64 MiB: config
//! drives) and `POST /v1/continue_inspection` (`max_json_body_size_inspection`,
//! 16 MiB: ramdisk logs); a body over its limit is refused with 413, before it is
//! read when `Content-Length` says so. JSON nested deeper than
//! `max_json_body_depth` (25) is refused with 400.
//!
//! Unlike Ironic, which checks only bodies declared as JSON and waits for a slow
//! body as long as the socket lives, every body is bounded (whatever its
//! `Content-Type`), and the whole body must arrive within the read timeout (408).
//!
//! Responses are bounded too: all large responses being sent share the memory
//! of `[api]max_response_memory` ([`ResponseBudget`]).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::error::ApiError;

/// Body limits of the API (bytes, except the depth).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyLimits {
    /// Every endpoint but the two below.
    pub max: usize,
    /// `PUT /v1/nodes/{node}/states/provision`.
    pub provision: usize,
    /// `POST /v1/continue_inspection`.
    pub inspection: usize,
    /// Deepest JSON nesting.
    pub max_depth: usize,
    /// Time for the whole body to arrive.
    pub read_timeout: Duration,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            max: 1024 * 1024,
            provision: 64 * 1024 * 1024,
            inspection: 16 * 1024 * 1024,
            max_depth: 25,
            read_timeout: Duration::from_secs(60),
        }
    }
}

impl BodyLimits {
    /// The limit of a path, and the setting that sets it.
    pub fn for_path(&self, path: &str) -> (usize, &'static str) {
        let p = path.trim_end_matches('/');
        if p.ends_with("/states/provision") {
            (self.provision, "max_json_body_size_provision")
        } else if p.ends_with("continue_inspection") {
            (self.inspection, "max_json_body_size_inspection")
        } else {
            (self.max, "max_json_body_size")
        }
    }
}

/// Whether JSON text nests deeper than `max` (brackets inside strings do not count).
/// Scans bytes without recursion, so any input is safe.
pub fn too_deep(raw: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escape) = (0usize, false, false);
    for &b in raw {
        if escape {
            escape = false;
        } else if in_string {
            match b {
                b'\\' => escape = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    if depth > max {
                        return true;
                    }
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    false
}

fn too_large(len: Option<usize>, limit: usize, setting: &str) -> Response {
    let got = len.map(|l| format!(" ({l} bytes)")).unwrap_or_default();
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "Request body is too large{got}: the limit of this endpoint is {} KiB ([api]{setting}).",
            limit / 1024
        ),
    )
    .into_response()
}

enum ReadError {
    /// Over the limit; what the client has not sent yet is still to come.
    TooLarge(axum::body::BodyDataStream),
    Broken(axum::Error),
}

/// At most this much of a refused body is still read after the 413, within
/// [`LINGER_TIME`] (as nginx's lingering close).
const LINGER_BYTES: usize = 16 * 1024 * 1024;
/// How long the rest of a refused body is read after the 413.
const LINGER_TIME: Duration = Duration::from_secs(10);

/// Read and drop what is left of a refused body, bounded, so that a client still
/// sending it gets the 413 instead of a broken pipe: a connection closed with
/// unread data makes the kernel reset it, and HTTP clients that write the whole
/// body before reading the response (hyper's, reqwest's) then report an error.
fn linger(mut rest: axum::body::BodyDataStream) {
    tokio::spawn(async move {
        let mut read = 0usize;
        let _ = tokio::time::timeout(LINGER_TIME, async {
            while let Some(Ok(chunk)) = rest.next().await {
                read += chunk.len();
                if read > LINGER_BYTES {
                    break;
                }
            }
        })
        .await;
    });
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ReadError> {
    let mut stream = body.into_data_stream();
    // A body in one chunk (the usual case) is not copied.
    let mut first: Option<Bytes> = None;
    let mut buf = Vec::new();
    let mut len = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(ReadError::Broken)?;
        len += chunk.len();
        if len > limit {
            return Err(ReadError::TooLarge(stream));
        }
        match first.take() {
            None if buf.is_empty() => first = Some(chunk),
            prev => {
                if let Some(p) = prev {
                    buf.extend_from_slice(&p);
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(buf)))
}

/// The middleware: reads the whole body within the limits, then hands the request
/// on with the body in memory.
pub async fn limit_body(
    State(limits): State<Arc<BodyLimits>>,
    req: Request,
    next: Next,
) -> Response {
    let (limit, setting) = limits.for_path(req.uri().path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = declared
        && len > limit as u64
    {
        tracing::warn!(path = %req.uri().path(), len, limit, "request body over the limit refused before reading");
        if len <= LINGER_BYTES as u64 {
            linger(req.into_body().into_data_stream());
        }
        return too_large(usize::try_from(len).ok(), limit, setting);
    }
    if declared == Some(0) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(limits.read_timeout, read_limited(body, limit)).await {
        Ok(Ok(b)) => b,
        Ok(Err(ReadError::TooLarge(rest))) => {
            tracing::warn!(path = %parts.uri.path(), limit, "request body over the limit refused");
            linger(rest);
            return too_large(None, limit, setting);
        }
        Ok(Err(ReadError::Broken(e))) => {
            return ApiError::bad_request(format!("The request body could not be read: {e}"))
                .into_response();
        }
        Err(_) => {
            tracing::warn!(path = %parts.uri.path(), timeout_s = limits.read_timeout.as_secs(), "request body not received in time");
            let mut r = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "The request body was not received within {} seconds.",
                    limits.read_timeout.as_secs()
                ),
            )
            .into_response();
            r.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            return r;
        }
    };
    if too_deep(&bytes, limits.max_depth) {
        tracing::warn!(path = %parts.uri.path(), max_depth = limits.max_depth, "request body nested too deeply");
        return ApiError::bad_request(
            "Request body JSON is nested too deeply. Please contact the service administrator.",
        )
        .into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Responses at least this large count against the [`ResponseBudget`].
pub const LARGE_RESPONSE: usize = 64 * 1024;

/// Size of the pieces a budgeted response is handed to the connection in.
const CHUNK: usize = 64 * 1024;

/// The memory all large responses being sent may hold at once (`[api]
/// max_response_memory`).
///
/// A list page is bounded by `max_list_body_size`, but each slow or stalled
/// reader holds its page until the write timeout cuts it, so many of them could
/// hold any amount. A response of [`LARGE_RESPONSE`] or more takes its size from
/// this budget when it is ready and gives it back when its body is dropped (sent
/// to the end, or the connection closed); the body is handed to the connection
/// in 64 KiB pieces, so it stays counted while the client is still reading it.
/// A response that does not fit is refused with 503 and `Retry-After: 1` (its
/// memory is freed at once). Ironic has no such bound.
#[derive(Debug)]
pub struct ResponseBudget {
    permits: Arc<tokio::sync::Semaphore>,
    /// The budget in KiB (permits are KiB).
    total_kib: u32,
    /// When a refusal was last logged, and the refusals since (logged at most
    /// once a second, so a flood of list requests does not flood the log).
    last_warn: std::sync::Mutex<(Option<std::time::Instant>, u64)>,
}

impl ResponseBudget {
    /// A budget of `bytes` (at least 1 KiB).
    pub fn new(bytes: usize) -> Self {
        let total_kib = u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX >> 4);
        ResponseBudget {
            permits: Arc::new(tokio::sync::Semaphore::new(total_kib as usize)),
            total_kib,
            last_warn: std::sync::Mutex::new((None, 0)),
        }
    }

    /// Logs a refusal, at most once a second (with the count since the last line).
    fn warn_refused(&self, path: &str, len: usize) {
        let mut w = self.last_warn.lock().unwrap_or_else(|e| e.into_inner());
        w.1 += 1;
        if w.0.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            tracing::warn!(
                %path,
                len,
                budget_kib = self.total_kib,
                refused = w.1,
                "large response refused: the memory for responses being sent is spent ([api]max_response_memory)"
            );
            *w = (Some(std::time::Instant::now()), 0);
        }
    }
}

/// A response body holding its share of the [`ResponseBudget`] until dropped,
/// handed out in [`CHUNK`]-sized pieces.
struct BudgetedBody {
    inner: Body,
    pending: Bytes,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl http_body::Body for BudgetedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        use std::task::Poll;
        if !self.pending.is_empty() {
            let n = self.pending.len().min(CHUNK);
            let piece = self.pending.split_to(n);
            return Poll::Ready(Some(Ok(http_body::Frame::data(piece))));
        }
        match std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(mut data) => {
                    if data.len() > CHUNK {
                        self.pending = data.split_off(CHUNK);
                    }
                    Poll::Ready(Some(Ok(http_body::Frame::data(data))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let inner = self.inner.size_hint();
        let pending = self.pending.len() as u64;
        let mut hint = http_body::SizeHint::new();
        hint.set_lower(inner.lower() + pending);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + pending);
        }
        hint
    }
}

/// The middleware: counts large responses against the [`ResponseBudget`], or
/// refuses them with 503 when it is spent.
pub async fn bound_response(
    State(budget): State<Arc<ResponseBudget>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    let Some(len) = http_body::Body::size_hint(resp.body()).exact() else {
        return resp;
    };
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len < LARGE_RESPONSE {
        return resp;
    }
    // A response larger than the whole budget takes all of it.
    let kib = u32::try_from(len.div_ceil(1024))
        .unwrap_or(u32::MAX)
        .min(budget.total_kib);
    match Arc::clone(&budget.permits).try_acquire_many_owned(kib) {
        Ok(permit) => resp.map(|inner| {
            Body::new(BudgetedBody {
                inner,
                pending: Bytes::new(),
                _permit: permit,
            })
        }),
        Err(_) => {
            budget.warn_refused(&path, len);
            let mut r = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is sending too many large responses at once ([api]max_response_memory). Please retry the request later.",
            )
            .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        assert!(!too_deep(br#"{"a": [1, {"b": 2}]}"#, 3));
        assert!(too_deep(br#"{"a": [1, {"b": 2}]}"#, 2));
        assert!(!too_deep(br#"{"a": "[[[[[[[[[[{{{{{{"}"#, 1));
        assert!(!too_deep(br#"{"a": "\"[[[["}"#, 1));
        assert!(too_deep(&b"[".repeat(100_000), 25));
        assert!(!too_deep(b"", 1));
    }

    #[test]
    fn provision_and_inspection_have_their_own_limits() {
        let l = BodyLimits::default();
        assert_eq!(l.for_path("/v1/nodes/n1/states/provision").0, 64 << 20);
        assert_eq!(l.for_path("/v1/nodes/n1/states/provision/").0, 64 << 20);
        assert_eq!(l.for_path("/v1/continue_inspection").0, 16 << 20);
        assert_eq!(l.for_path("/v1/nodes").0, 1 << 20);
        assert_eq!(l.for_path("/v1/nodes/n1/states/power").0, 1 << 20);
    }

    #[tokio::test]
    async fn a_budgeted_body_is_sent_whole_in_pieces_and_gives_its_share_back() {
        let budget = ResponseBudget::new(300 * 1024);
        let data: Vec<u8> = (0..200 * 1024 + 7).map(|i| (i % 251) as u8).collect();
        let permit = Arc::clone(&budget.permits)
            .try_acquire_many_owned(201)
            .unwrap();
        assert_eq!(budget.permits.available_permits(), 99);
        // A second response of the same size does not fit meanwhile.
        assert!(
            Arc::clone(&budget.permits)
                .try_acquire_many_owned(201)
                .is_err()
        );
        let mut body = BudgetedBody {
            inner: Body::from(data.clone()),
            pending: Bytes::new(),
            _permit: permit,
        };
        assert_eq!(
            http_body::Body::size_hint(&body).exact(),
            Some(data.len() as u64)
        );
        let mut got = Vec::new();
        let mut pieces = 0;
        while let Some(frame) = std::future::poll_fn(|cx| {
            http_body::Body::poll_frame(std::pin::Pin::new(&mut body), cx)
        })
        .await
        {
            let d = frame.unwrap().into_data().unwrap();
            assert!(d.len() <= CHUNK);
            got.extend_from_slice(&d);
            pieces += 1;
            // Still counted while pieces are out.
            assert_eq!(budget.permits.available_permits(), 99);
        }
        assert_eq!((got, pieces), (data, 4));
        drop(body);
        assert_eq!(budget.permits.available_permits(), 300);
    }
}
