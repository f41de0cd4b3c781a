//! Downloading the image: one streaming GET that resumes with `Range` after a
//! broken connection (keeping the running hash, since the stream is consumed in
//! order), and ranged GETs for the clusters a qcow2 conversion needs again.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use ironic_core::Secret;
use reqwest::StatusCode;
use tokio::sync::mpsc::Sender;

use crate::error::{AgentError, Result};

/// How the image is fetched.
#[derive(Clone, Debug)]
pub struct DownloadOptions {
    /// Attempts after the first one (IPA: `image_download_connection_retries`).
    pub retries: u32,
    /// Pause before the first retry; doubles each time (capped at 30 s).
    pub retry_interval: Duration,
    /// A read that makes no progress for this long fails the attempt.
    pub stall_timeout: Duration,
    /// Size of the buffers handed to the writer.
    pub chunk_size: usize,
    /// Extra header (`Authorization`) from `image_request_authorization` or basic auth.
    pub authorization: Option<Secret>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            retries: 9,
            retry_interval: Duration::from_secs(1),
            stall_timeout: Duration::from_secs(60),
            chunk_size: 1 << 20,
            authorization: None,
        }
    }
}

/// What the stream tells the writer.
#[derive(Debug)]
pub enum StreamMsg {
    /// The image's total length, as soon as the server announced it.
    Length(u64),
    /// The next bytes.
    Data(Bytes),
}

/// Fetches one image from a list of URLs.
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: reqwest::Client,
    urls: Vec<String>,
    opts: DownloadOptions,
}

enum Attempt {
    Done,
    Retry(String),
}

fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    // "bytes 100-199/1000" or "bytes 100-199/*"
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let total = if total.trim() == "*" {
        None
    } else {
        Some(total.trim().parse().ok()?)
    };
    Some((start, total))
}

fn redact(url: &str) -> String {
    // never log credentials or signed query strings
    let no_query = url.split('?').next().unwrap_or(url);
    let Some((scheme, rest)) = no_query.split_once("://") else {
        return no_query.to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{path}"),
        None => no_query.to_owned(),
    }
}

impl Fetcher {
    /// A fetcher trying `urls` in order.
    pub fn new(client: reqwest::Client, urls: Vec<String>, opts: DownloadOptions) -> Result<Self> {
        if urls.is_empty() {
            return Err(AgentError::InvalidParams(
                "image_info has no urls to download from".into(),
            ));
        }
        for u in &urls {
            let parsed = reqwest::Url::parse(u).map_err(|e| {
                AgentError::InvalidParams(format!("Invalid image URL {}: {e}", redact(u)))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(AgentError::InvalidParams(format!(
                    "Unsupported image URL scheme {:?}: only http and https",
                    parsed.scheme()
                )));
            }
        }
        Ok(Fetcher { client, urls, opts })
    }

    /// The options.
    pub fn options(&self) -> &DownloadOptions {
        &self.opts
    }

    fn request(&self, url: &str) -> reqwest::RequestBuilder {
        let mut r = self.client.get(url);
        if let Some(a) = &self.opts.authorization {
            r = r.header(reqwest::header::AUTHORIZATION, a.expose());
        }
        r
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let d = self.opts.retry_interval.saturating_mul(1 << attempt.min(5));
        d.min(Duration::from_secs(30))
    }

    /// Stream the whole image in order to `writers` (each gets every chunk; the
    /// first also gets [`StreamMsg::Length`]). Returns the number of bytes.
    pub async fn stream_to(&self, writers: &[Sender<StreamMsg>]) -> Result<u64> {
        let mut offset = 0u64;
        let mut expected: Option<u64> = None;
        let mut attempt = 0u32;
        let mut url_idx = 0usize;
        let mut last_err;
        let mut buf = BytesMut::with_capacity(self.opts.chunk_size);
        loop {
            let url = &self.urls[url_idx % self.urls.len()];
            match self
                .attempt(url, writers, &mut offset, &mut expected, &mut buf)
                .await?
            {
                Attempt::Done => return Ok(offset),
                Attempt::Retry(why) => {
                    tracing::warn!(url = %redact(url), offset, attempt, error = %why, "image download interrupted");
                    last_err = why;
                }
            }
            attempt += 1;
            if attempt > self.opts.retries {
                break;
            }
            url_idx += 1;
            tokio::time::sleep(self.backoff(attempt - 1)).await;
        }
        Err(match expected {
            Some(total) if offset < total && offset > 0 => AgentError::Truncated(format!(
                "received {offset} of {total} bytes after {attempt} attempts ({last_err})"
            )),
            _ => AgentError::Download(format!(
                "{} after {attempt} attempts from {}",
                last_err,
                self.urls
                    .iter()
                    .map(|u| redact(u))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        })
    }

    async fn send(writers: &[Sender<StreamMsg>], chunk: Bytes) -> Result<()> {
        for w in writers {
            w.send(StreamMsg::Data(chunk.clone()))
                .await
                .map_err(|_| AgentError::Other("image writer stopped".into()))?;
        }
        Ok(())
    }

    async fn attempt(
        &self,
        url: &str,
        writers: &[Sender<StreamMsg>],
        offset: &mut u64,
        expected: &mut Option<u64>,
        buf: &mut BytesMut,
    ) -> Result<Attempt> {
        let mut req = self.request(url);
        if *offset > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={}-", *offset));
        }
        let resp = match tokio::time::timeout(self.opts.stall_timeout, req.send()).await {
            Err(_) => return Ok(Attempt::Retry("timed out connecting".into())),
            Ok(Err(e)) => return Ok(Attempt::Retry(format!("request failed: {e}"))),
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        let mut skip = 0u64;
        let total = match status {
            StatusCode::OK => {
                skip = *offset;
                resp.content_length()
            }
            StatusCode::PARTIAL_CONTENT if *offset > 0 => {
                let cr = resp
                    .headers()
                    .get(reqwest::header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_content_range);
                match cr {
                    Some((start, total)) if start == *offset => total,
                    _ => {
                        return Ok(Attempt::Retry(
                            "server answered a resume request with a wrong Content-Range".into(),
                        ));
                    }
                }
            }
            s if s.is_client_error()
                && s != StatusCode::REQUEST_TIMEOUT
                && s != StatusCode::TOO_MANY_REQUESTS =>
            {
                if self.urls.len() == 1 {
                    return Err(AgentError::Download(format!(
                        "GET {} returned HTTP {s}",
                        redact(url)
                    )));
                }
                return Ok(Attempt::Retry(format!(
                    "GET {} returned HTTP {s}",
                    redact(url)
                )));
            }
            s => {
                return Ok(Attempt::Retry(format!(
                    "GET {} returned HTTP {s}",
                    redact(url)
                )));
            }
        };
        if let Some(t) = total {
            match *expected {
                None => {
                    *expected = Some(t);
                    if let Some(first) = writers.first() {
                        first
                            .send(StreamMsg::Length(t))
                            .await
                            .map_err(|_| AgentError::Other("image writer stopped".into()))?;
                    }
                }
                Some(e) if e != t => {
                    return Err(AgentError::Download(format!(
                        "the image changed size between requests ({e} then {t} bytes)"
                    )));
                }
                _ => {}
            }
        }
        let mut body = resp.bytes_stream();
        loop {
            let next = match tokio::time::timeout(self.opts.stall_timeout, body.next()).await {
                Err(_) => return Ok(Attempt::Retry("download stalled".into())),
                Ok(n) => n,
            };
            match next {
                None => break,
                Some(Err(e)) => {
                    if !buf.is_empty() {
                        Self::send(writers, buf.split().freeze()).await?;
                    }
                    return Ok(Attempt::Retry(format!("connection broken: {e}")));
                }
                Some(Ok(mut b)) => {
                    if skip > 0 {
                        let n = (skip as usize).min(b.len());
                        let _ = b.split_to(n);
                        skip -= n as u64;
                    }
                    if let Some(t) = *expected
                        && *offset + (b.len() as u64) > t
                    {
                        return Err(AgentError::Download(format!(
                            "the server sent more than the announced {t} bytes"
                        )));
                    }
                    *offset += b.len() as u64;
                    let mut rest = &b[..];
                    while !rest.is_empty() {
                        let room = self.opts.chunk_size - buf.len();
                        let n = room.min(rest.len());
                        buf.extend_from_slice(&rest[..n]);
                        rest = &rest[n..];
                        if buf.len() == self.opts.chunk_size {
                            let chunk = buf.split().freeze();
                            buf.reserve(self.opts.chunk_size);
                            Self::send(writers, chunk).await?;
                        }
                    }
                }
            }
        }
        if !buf.is_empty() {
            Self::send(writers, buf.split().freeze()).await?;
        }
        match *expected {
            Some(t) if *offset < t => Ok(Attempt::Retry(format!(
                "connection closed after {} of {t} bytes",
                *offset
            ))),
            _ => Ok(Attempt::Done),
        }
    }

    /// Fetch `[off, off+len)` with a ranged GET (retrying like the stream). The
    /// server must honour `Range`.
    pub async fn fetch_range(&self, off: u64, len: u64) -> Result<Vec<u8>> {
        let mut last = String::new();
        for attempt in 0..=self.opts.retries {
            if attempt > 0 {
                tokio::time::sleep(self.backoff(attempt - 1)).await;
            }
            let url = &self.urls[attempt as usize % self.urls.len()];
            let resp = self
                .request(url)
                .header(
                    reqwest::header::RANGE,
                    format!("bytes={off}-{}", off + len - 1),
                )
                .send()
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    last = format!("request failed: {e}");
                    continue;
                }
            };
            if resp.status() == StatusCode::OK {
                return Err(AgentError::Download(format!(
                    "{} does not honour Range requests, which this image's layout needs \
                     (its qcow2 metadata comes after the data it maps; raise the agent's \
                     reorder buffer or serve the image from a server with Range support)",
                    redact(url)
                )));
            }
            if resp.status() != StatusCode::PARTIAL_CONTENT {
                last = format!("ranged GET returned HTTP {}", resp.status());
                continue;
            }
            match resp.bytes().await {
                Ok(b) => return Ok(b.to_vec()),
                Err(e) => last = format!("connection broken: {e}"),
            }
        }
        Err(AgentError::Download(format!(
            "re-fetching bytes {off}..{} failed: {last}",
            off + len
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            Some((100, Some(1000)))
        );
        assert_eq!(parse_content_range("bytes 0-1/*"), Some((0, None)));
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact("http://user:pw@host/x.img?sig=abc"),
            "http://***@host/x.img"
        );
        assert_eq!(redact("http://host/a@b"), "http://host/a@b");
    }

    #[test]
    fn rejects_bad_urls() {
        let c = reqwest::Client::new();
        assert!(Fetcher::new(c.clone(), vec![], DownloadOptions::default()).is_err());
        assert!(
            Fetcher::new(
                c.clone(),
                vec!["ftp://x/y".into()],
                DownloadOptions::default()
            )
            .is_err()
        );
        assert!(Fetcher::new(c, vec!["http://x/y".into()], DownloadOptions::default()).is_ok());
    }
}
