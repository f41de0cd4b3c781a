//! A read-only TFTP server over a [`BootFiles`] set.
//!
//! Options negotiated (RFC 2347 option extension): `blksize` (RFC 2348),
//! `timeout` and `tsize` (RFC 2349), `windowsize` (RFC 7440). Write requests
//! are refused, and so are absolute paths and paths that climb out of the root
//! (see [`sanitize_path`](crate::files::sanitize_path)). Every transfer gets its
//! own socket, so many clients are served at once.
//!
//! The protocol engine is the `async-tftp` crate, kept private behind this
//! type: nothing of it shows in the public API, so it can be replaced.

use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use async_tftp::packet;
use async_tftp::server::{Handler, TftpServerBuilder};
use bytes::Bytes;
use futures_lite::AsyncRead;
use futures_lite::io::Cursor;

use crate::files::{BootFile, BootFiles, OpenError};

/// Limits and defaults of the TFTP server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TftpOptions {
    /// The largest `blksize` granted (RFC 2348 allows 8..=65464). Default 65464.
    pub max_block_size: u16,
    /// The largest `windowsize` granted (RFC 7440). Default 64.
    pub max_window_size: u16,
    /// Retransmission timeout when the client asks for none. Default 3 s.
    pub timeout: Duration,
    /// How often a block is resent before the transfer is dropped. Default 10.
    pub max_send_retries: u32,
    /// Serving threads (each with its own socket on the port). Default: the
    /// number of CPUs, at most 8.
    pub threads: usize,
}

impl Default for TftpOptions {
    fn default() -> Self {
        TftpOptions {
            max_block_size: 65464,
            max_window_size: 64,
            timeout: Duration::from_secs(3),
            max_send_retries: 10,
            threads: std::thread::available_parallelism()
                .map(|n| n.get().min(8))
                .unwrap_or(1),
        }
    }
}

/// Counters of a running server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TftpStats {
    /// Read requests that opened a file (transfers started).
    pub opened: u64,
    /// Requests refused (paths leaving the root, writes).
    pub refused: u64,
    /// Requests for files that do not exist.
    pub not_found: u64,
}

#[derive(Debug, Default)]
struct Counters {
    opened: AtomicU64,
    refused: AtomicU64,
    not_found: AtomicU64,
}

/// A running TFTP server. Stops when dropped (or with [`TftpServer::shutdown`]).
pub struct TftpServer {
    local_addr: SocketAddr,
    counters: Arc<Counters>,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl fmt::Debug for TftpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TftpServer")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

fn reuseport_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    s.set_reuse_port(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// One serving thread: an `async-tftp` server on its own socket.
fn spawn_worker(
    index: usize,
    socket: UdpSocket,
    handler: FileHandler,
    options: &TftpOptions,
) -> io::Result<(tokio::sync::oneshot::Sender<()>, JoinHandle<()>)> {
    let local_addr = socket.local_addr()?;
    let options = options.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
    let thread = std::thread::Builder::new()
        .name(format!("tftp-{index}-{local_addr}"))
        .spawn(move || {
            // async-io's block_on runs the I/O reactor on this thread while it
            // waits, so a datagram wakes the transfer without a thread hop.
            async_io::block_on(async move {
                let builder = TftpServerBuilder::with_handler(handler)
                    .block_size_limit(options.max_block_size.clamp(8, 65464))
                    .window_size_limit(options.max_window_size.max(1))
                    .timeout(options.timeout)
                    .max_send_retries(options.max_send_retries);
                let server = match builder.std_socket(socket) {
                    Ok(b) => b.build().await,
                    Err(e) => Err(e),
                };
                let server = match server {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(io::Error::other(e.to_string())));
                        return;
                    }
                };
                let stop = async {
                    let _ = rx.await;
                    Ok(())
                };
                if let Err(e) = futures_lite::future::or(server.serve(), stop).await {
                    tracing::error!(addr = %local_addr, error = %e, "TFTP server stopped");
                }
            })
        })?;
    ready_rx
        .recv()
        .map_err(|_| io::Error::other("TFTP server thread died"))??;
    Ok((tx, thread))
}

impl TftpServer {
    /// Bind `addr` (port 0 picks a free port) and serve `files` until dropped,
    /// from [`TftpOptions::threads`] threads, each with its own socket on the
    /// same port (`SO_REUSEPORT`: the kernel spreads clients over them, a
    /// client's packets always reach the same one).
    pub fn bind(
        addr: SocketAddr,
        files: Arc<BootFiles>,
        options: TftpOptions,
    ) -> io::Result<TftpServer> {
        let first = reuseport_socket(addr)?;
        let local_addr = first.local_addr()?;
        let mut sockets = vec![first];
        for _ in 1..options.threads.max(1) {
            sockets.push(reuseport_socket(local_addr)?);
        }
        let counters = Arc::new(Counters::default());
        let mut stops = Vec::new();
        let mut threads = Vec::new();
        for (i, socket) in sockets.into_iter().enumerate() {
            let handler = FileHandler {
                files: Arc::clone(&files),
                counters: Arc::clone(&counters),
            };
            let (stop, thread) = spawn_worker(i, socket, handler, &options)?;
            stops.push(stop);
            threads.push(thread);
        }
        tracing::info!(addr = %local_addr, threads = threads.len(), "TFTP server listening");
        Ok(TftpServer {
            local_addr,
            counters,
            stops,
            threads,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// What the server has done so far.
    pub fn stats(&self) -> TftpStats {
        TftpStats {
            opened: self.counters.opened.load(Ordering::Relaxed),
            refused: self.counters.refused.load(Ordering::Relaxed),
            not_found: self.counters.not_found.load(Ordering::Relaxed),
        }
    }

    /// Stop serving and wait for the server thread (transfers in flight are dropped).
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        for tx in self.stops.drain(..) {
            let _ = tx.send(());
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for TftpServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

struct FileHandler {
    files: Arc<BootFiles>,
    counters: Arc<Counters>,
}

/// What a transfer reads from.
enum Reader {
    Memory(Cursor<Bytes>),
    Disk(DiskReader),
}

/// Reads a file in 256 KiB chunks, synchronously, on the serving thread.
///
/// Boot files (NBPs, kernels, ramdisks) are read over and over and live in the
/// page cache, where a chunk takes microseconds; handing each read to a thread
/// pool (`blocking::Unblock`) cost a third of the throughput in the bench.
struct DiskReader {
    file: std::fs::File,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
}

impl DiskReader {
    fn new(file: std::fs::File) -> Self {
        DiskReader {
            file,
            buf: vec![0u8; 256 * 1024].into_boxed_slice(),
            pos: 0,
            len: 0,
        }
    }

    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.len {
            self.len = std::io::Read::read(&mut self.file, &mut self.buf)?;
            self.pos = 0;
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl AsyncRead for Reader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Reader::Memory(c) => Pin::new(c).poll_read(cx, buf),
            Reader::Disk(f) => Poll::Ready(f.read(buf)),
        }
    }
}

impl Handler for FileHandler {
    type Reader = Reader;
    type Writer = futures_lite::io::Sink;

    async fn read_req_open(
        &mut self,
        client: &SocketAddr,
        path: &Path,
    ) -> Result<(Self::Reader, Option<u64>), packet::Error> {
        let Some(name) = path.to_str() else {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%client, "TFTP request for a non-UTF-8 path refused");
            return Err(packet::Error::PermissionDenied);
        };
        match self.files.open(name) {
            Ok(file) => {
                let len = file.len();
                self.counters.opened.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%client, path = name, len, "TFTP read");
                let reader = match file {
                    BootFile::Memory(b) => Reader::Memory(Cursor::new(b)),
                    BootFile::Disk { file, .. } => Reader::Disk(DiskReader::new(file)),
                };
                Ok((reader, Some(len)))
            }
            Err(OpenError::Refused(p)) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%client, path = %p, "TFTP request refused: path leaves the boot root");
                Err(packet::Error::PermissionDenied)
            }
            Err(e) => {
                self.counters.not_found.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%client, path = name, error = %e, "TFTP file not found");
                Err(packet::Error::FileNotFound)
            }
        }
    }

    async fn write_req_open(
        &mut self,
        client: &SocketAddr,
        path: &Path,
        _size: Option<u64>,
    ) -> Result<Self::Writer, packet::Error> {
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%client, path = %path.display(), "TFTP write refused: the server is read-only");
        Err(packet::Error::Msg("read-only server".into()))
    }
}
