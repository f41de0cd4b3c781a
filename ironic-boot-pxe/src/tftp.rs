//! A read-only TFTP server over a [`BootFiles`] set.
//!
//! Options negotiated (RFC 2347 option extension): `blksize` (RFC 2348),
//! `timeout` and `tsize` (RFC 2349), `windowsize` (RFC 7440); `octet` and
//! `netascii` modes. Write requests are refused, and so are absolute paths and
//! paths that climb out of the root (see
//! [`sanitize_path`](crate::files::sanitize_path)). Every transfer gets its own
//! socket, connected to the client, so many clients are served at once and a
//! stray datagram from elsewhere cannot reach a transfer.
//!
//! Every bad datagram sent to the server's port gets an ERROR packet (RFC 1350
//! §5), so a client learns at once what is wrong instead of waiting for its own
//! timeout: a malformed request, an unknown opcode or a DATA/ACK sent to the
//! server's port is "illegal TFTP operation" (4), an unknown mode likewise, a
//! write request or a path outside the root is "access violation" (2), a
//! missing file "file not found" (1), a full server "not defined" (0) with a
//! message. An ERROR packet is never answered (no error loops).
//!
//! A read request from a client (address and port) that already has a transfer
//! in progress is handled as follows, so every request gets an answer at once
//! and a client cannot make the server hold more than two transfers for itself:
//! - the same request before the client acknowledged anything is a
//!   retransmission (our first answer was lost or slow): the transfer in progress
//!   sends its first packet again now, from the same port, and no second
//!   transfer starts;
//! - the same request after the client acknowledged something may be a late
//!   copy of the first or a client that started over: a second transfer starts
//!   beside the first, as tftpd-hpa would (the client ends the one it does not
//!   want with an "unknown transfer ID" error, or stops answering it); an older
//!   one beyond that is ended;
//! - a different request (another file or other options, as PXE ROMs send after
//!   their `tsize` probe) means the client gave up its transfer: that transfer
//!   is ended and the new one starts, as dnsmasq does on a single port.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::files::{BootFile, BootFiles, OpenError};
use crate::tftp_proto::{
    self as proto, DATA, ErrorCode, Mode, Negotiated, ReadRequest, Reply, Request,
};

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
    /// Transfers in progress at most (each holds a socket); a read request
    /// beyond it is answered with an error the client can retry on. Default 1000.
    pub max_transfers: usize,
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
            max_transfers: 1000,
        }
    }
}

/// Counters of a running server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TftpStats {
    /// Read requests that opened a file (transfers started).
    pub opened: u64,
    /// Requests refused (paths leaving the root, writes, a full server).
    pub refused: u64,
    /// Requests for files that do not exist.
    pub not_found: u64,
    /// Malformed datagrams (bad requests, unknown opcodes, DATA/ACK sent to
    /// the server's port), each answered with an ERROR packet.
    pub malformed: u64,
    /// Repeated read requests answered by the transfer in progress (its first
    /// packet sent again) instead of a new transfer.
    pub repeated: u64,
    /// Transfers ended because their client started another one from the same
    /// port (see the module documentation).
    pub replaced: u64,
    /// Transfers in progress now.
    pub in_progress: u64,
}

#[derive(Debug, Default)]
struct Counters {
    opened: AtomicU64,
    refused: AtomicU64,
    not_found: AtomicU64,
    malformed: AtomicU64,
    repeated: AtomicU64,
    replaced: AtomicU64,
}

/// A running TFTP server. Stops when dropped (or with [`TftpServer::shutdown`]).
pub struct TftpServer {
    local_addr: SocketAddr,
    counters: Arc<Counters>,
    shared: Arc<Shared>,
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
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// What the serving threads share.
struct Shared {
    files: Arc<BootFiles>,
    counters: Arc<Counters>,
    options: TftpOptions,
    /// The transfers in progress of each client, oldest first (at most two).
    peers: Mutex<HashMap<SocketAddr, Vec<PeerTransfer>>>,
    transfers: AtomicUsize,
    next_id: AtomicU64,
    /// Rate limit of the "malformed datagram" warning.
    last_warn: Mutex<Option<Instant>>,
}

/// One serving thread: a single-threaded runtime reading the server's port and
/// running the transfers it starts. Datagrams wake the transfer on the same
/// thread, with no hop.
fn spawn_worker(
    index: usize,
    socket: UdpSocket,
    shared: Arc<Shared>,
) -> io::Result<(tokio::sync::oneshot::Sender<()>, JoinHandle<()>)> {
    let local_addr = socket.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
    let thread = std::thread::Builder::new()
        .name(format!("tftp-{index}-{local_addr}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                let socket = match tokio::net::UdpSocket::from_std(socket) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                tokio::select! {
                    r = serve(socket, local_addr, shared) => {
                        if let Err(e) = r {
                            tracing::error!(addr = %local_addr, error = %e, "TFTP server stopped");
                        }
                    }
                    _ = rx => {}
                }
            });
            // Dropping the runtime drops the transfers in flight.
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
        let shared = Arc::new(Shared {
            files,
            counters: Arc::clone(&counters),
            options,
            peers: Mutex::new(HashMap::new()),
            transfers: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            last_warn: Mutex::new(None),
        });
        let mut stops = Vec::new();
        let mut threads = Vec::new();
        for (i, socket) in sockets.into_iter().enumerate() {
            let (stop, thread) = spawn_worker(i, socket, Arc::clone(&shared))?;
            stops.push(stop);
            threads.push(thread);
        }
        tracing::info!(addr = %local_addr, threads = threads.len(), "TFTP server listening");
        Ok(TftpServer {
            local_addr,
            counters,
            shared,
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
            malformed: self.counters.malformed.load(Ordering::Relaxed),
            repeated: self.counters.repeated.load(Ordering::Relaxed),
            replaced: self.counters.replaced.load(Ordering::Relaxed),
            in_progress: self.shared.transfers.load(Ordering::Relaxed) as u64,
        }
    }

    /// Stop serving and wait for the server threads (transfers in flight are dropped).
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

/// Read the server's port: answer what is not a valid read request, start a
/// transfer for each new one.
async fn serve(
    socket: tokio::net::UdpSocket,
    local: SocketAddr,
    shared: Arc<Shared>,
) -> io::Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            // ICMP errors from an earlier send surface here on some systems.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(e),
        };
        if peer.port() == 0 {
            continue;
        }
        match proto::parse_request(&buf[..len]) {
            Request::Ignore => {}
            Request::Refuse {
                code,
                message,
                malformed,
            } => {
                if malformed {
                    shared.counters.malformed.fetch_add(1, Ordering::Relaxed);
                    shared.warn_malformed(peer, message);
                } else {
                    shared.counters.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(client = %peer, "TFTP request refused: {message}");
                }
                let _ = socket
                    .send_to(&proto::error_packet(code, message), peer)
                    .await;
            }
            Request::Read(req) => {
                if let Err((code, message)) = start(&shared, local, peer, req) {
                    let _ = socket
                        .send_to(&proto::error_packet(code, &message), peer)
                        .await;
                }
            }
        }
    }
}

impl Shared {
    /// Log malformed datagrams at most once a second (a flood must not flood the log).
    fn warn_malformed(&self, peer: SocketAddr, what: &str) {
        let mut last = self.last_warn.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            *last = Some(Instant::now());
            tracing::warn!(
                client = %peer,
                total = self.counters.malformed.load(Ordering::Relaxed),
                "TFTP malformed datagram answered with an error: {what}"
            );
        }
    }
}

/// A transfer in progress, as its client's later requests see it.
struct PeerTransfer {
    id: u64,
    /// The request that started it.
    request: ReadRequest,
    /// The transfer's link to its task.
    link: Arc<Link>,
    abort: tokio::task::AbortHandle,
}

/// What the server's port tells a running transfer.
#[derive(Default)]
struct Link {
    /// The client acknowledged something (OACK or a block): it has this transfer.
    acked: AtomicBool,
    /// The client repeated its request: send the first packet again now.
    resend: Notify,
}

/// What a request from a client with transfers in progress does.
enum Repeat {
    /// A new transfer starts; these transfers it replaces are to be aborted
    /// (once the lock on the peers is released).
    Start(Vec<tokio::task::AbortHandle>),
    /// The transfer in progress answers it (its first packet is sent again).
    Answered,
}

/// Decide what a request from `peer` does to its transfers in progress (see
/// the module documentation).
fn repeat(
    shared: &Shared,
    peers: &mut HashMap<SocketAddr, Vec<PeerTransfer>>,
    peer: SocketAddr,
    req: &ReadRequest,
) -> Repeat {
    let Some(list) = peers.get_mut(&peer) else {
        return Repeat::Start(Vec::new());
    };
    let Some(last) = list.last() else {
        return Repeat::Start(Vec::new());
    };
    if last.request == *req {
        if !last.link.acked.load(Ordering::Relaxed) {
            last.link.resend.notify_one();
            shared.counters.repeated.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(client = %peer, path = %req.filename, "TFTP request repeated: answered by the transfer in progress");
            return Repeat::Answered;
        }
        // A second transfer beside the last one; older ones end.
        let keep = list.len() - 1;
        Repeat::Start(replaced(shared, list.drain(..keep), peer))
    } else {
        Repeat::Start(replaced(shared, list.drain(..), peer))
    }
}

/// Counts and logs transfers that a new one replaces; their abort handles.
fn replaced(
    shared: &Shared,
    ended: impl Iterator<Item = PeerTransfer>,
    peer: SocketAddr,
) -> Vec<tokio::task::AbortHandle> {
    ended
        .map(|t| {
            shared.counters.replaced.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(client = %peer, path = %t.request.filename, "TFTP transfer ended: its client started another");
            t.abort
        })
        .collect()
}

/// Open the file and spawn its transfer, or say why not.
fn start(
    shared: &Arc<Shared>,
    local: SocketAddr,
    peer: SocketAddr,
    req: ReadRequest,
) -> Result<(), (ErrorCode, String)> {
    let decision = {
        let mut peers = shared.peers.lock().unwrap_or_else(|e| e.into_inner());
        repeat(shared, &mut peers, peer, &req)
    };
    match decision {
        Repeat::Answered => return Ok(()),
        Repeat::Start(ended) => ended.iter().for_each(tokio::task::AbortHandle::abort),
    }
    let file = match shared.files.open(&req.filename) {
        Ok(f) => f,
        Err(OpenError::Refused(p)) => {
            shared.counters.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(client = %peer, path = %p, "TFTP request refused: path leaves the boot root");
            return Err((ErrorCode::AccessViolation, "Access violation".into()));
        }
        Err(e) => {
            shared.counters.not_found.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(client = %peer, path = %req.filename, error = %e, "TFTP file not found");
            return Err((ErrorCode::FileNotFound, "File not found".into()));
        }
    };
    if shared.transfers.load(Ordering::Relaxed) >= shared.options.max_transfers {
        shared.counters.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(client = %peer, "TFTP request refused: too many transfers in progress");
        return Err((
            ErrorCode::Undefined,
            "Server busy: too many transfers, try again".into(),
        ));
    }
    shared.transfers.fetch_add(1, Ordering::Relaxed);
    shared.counters.opened.fetch_add(1, Ordering::Relaxed);
    let len = file.len();
    tracing::debug!(client = %peer, path = %req.filename, len, "TFTP read");
    let source = match file {
        BootFile::Memory(b) => Source::Memory(b, 0),
        BootFile::Disk { file, .. } => Source::Disk(DiskReader::new(file)),
    };
    let source = match req.mode {
        Mode::Octet => Box::new(source) as Box<dyn Fill + Send>,
        Mode::Netascii => Box::new(Netascii::new(source)),
    };
    let o = &shared.options;
    let neg = proto::negotiate(
        &req,
        Some(len),
        o.max_block_size,
        o.max_window_size,
        o.timeout,
    );
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let link = Arc::new(Link::default());
    // The guard exists before the task can run, so the count is given back
    // however the task ends, even aborted before its first poll.
    let guard = TransferGuard {
        shared: Arc::clone(shared),
        peer,
        id,
    };
    let filename = req.filename.clone();
    let task_link = Arc::clone(&link);
    let mut peers = shared.peers.lock().unwrap_or_else(|e| e.into_inner());
    let task = tokio::spawn(async move {
        let guard = guard;
        let retries = guard.shared.options.max_send_retries;
        match transfer(local, peer, source, &neg, retries, &task_link).await {
            Ok(()) => tracing::debug!(client = %peer, path = %filename, "TFTP transfer done"),
            Err(End::ClientError(code)) => {
                // PXE ROMs abort the tsize probe this way: not a failure.
                tracing::debug!(client = %peer, path = %filename, code, "TFTP client ended the transfer")
            }
            Err(End::TimedOut) => {
                tracing::warn!(client = %peer, path = %filename, "TFTP transfer timed out: the client stopped answering")
            }
            Err(End::Io(e)) => {
                tracing::warn!(client = %peer, path = %filename, error = %e, "TFTP transfer failed")
            }
        }
    });
    peers.entry(peer).or_default().push(PeerTransfer {
        id,
        request: req,
        link,
        abort: task.abort_handle(),
    });
    Ok(())
}

/// Forgets the transfer when it ends, however it ends (done, failed, aborted).
struct TransferGuard {
    shared: Arc<Shared>,
    peer: SocketAddr,
    id: u64,
}

impl Drop for TransferGuard {
    fn drop(&mut self) {
        self.shared.transfers.fetch_sub(1, Ordering::Relaxed);
        let mut peers = self.shared.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = peers.get_mut(&self.peer) {
            list.retain(|t| t.id != self.id);
            if list.is_empty() {
                peers.remove(&self.peer);
            }
        }
    }
}

/// How a transfer ended without completing.
enum End {
    /// The client sent an ERROR packet (code).
    ClientError(u16),
    /// No acknowledgement after every retry.
    TimedOut,
    /// Reading the file or the socket failed.
    Io(io::Error),
}

impl From<io::Error> for End {
    fn from(e: io::Error) -> Self {
        End::Io(e)
    }
}

/// Send the file to `peer` from a new socket connected to it: the OACK if
/// options were granted (acknowledged by ACK 0), then windows of DATA blocks,
/// each window acknowledged by the ACK of its last block (RFC 7440); an ACK
/// inside the window resends from the block after it; a timeout resends the
/// window. Block numbers wrap from 65535 to 0, as tftp-hpa, curl and iPXE expect.
/// Until the client acknowledges something, a repeated request (`link.resend`)
/// sends the first packet again at once; it counts as a retry, so a flood of
/// them ends the transfer like a silent client does.
async fn transfer(
    local: SocketAddr,
    peer: SocketAddr,
    mut source: Box<dyn Fill + Send>,
    neg: &Negotiated,
    max_retries: u32,
    link: &Link,
) -> Result<(), End> {
    let sock = tokio::net::UdpSocket::bind(SocketAddr::new(local.ip(), 0)).await?;
    sock.connect(peer).await?;
    let mut rbuf = [0u8; 512];
    if let Some(oack) = &neg.oack {
        let mut retries = 0;
        loop {
            sock.send(oack).await?;
            match recv_reply(&sock, &mut rbuf, neg.timeout, Some(&link.resend)).await? {
                Some(Reply::Ack(0)) => {
                    link.acked.store(true, Ordering::Relaxed);
                    break;
                }
                Some(Reply::Error(code)) => return Err(End::ClientError(code)),
                Some(_) => continue,
                None => {
                    retries += 1;
                    if retries > max_retries {
                        return Err(End::TimedOut);
                    }
                }
            }
        }
    }
    // Unacknowledged blocks, oldest first: (wire number, packet).
    let mut window: std::collections::VecDeque<(u16, Vec<u8>)> =
        std::collections::VecDeque::with_capacity(neg.windowsize);
    let mut next: u64 = 1;
    let mut read_all = false;
    let mut sent = 0; // blocks of `window` sent since the last (re)send
    let mut retries = 0;
    loop {
        while window.len() < neg.windowsize && !read_all {
            let mut pkt = vec![0u8; 4 + neg.blksize];
            pkt[..2].copy_from_slice(&DATA.to_be_bytes());
            let wire = (next & 0xffff) as u16;
            pkt[2..4].copy_from_slice(&wire.to_be_bytes());
            let n = source.fill(&mut pkt[4..])?;
            pkt.truncate(4 + n);
            read_all = n < neg.blksize;
            window.push_back((wire, pkt));
            next += 1;
        }
        if window.is_empty() {
            return Ok(());
        }
        for (_, pkt) in window.iter().skip(sent) {
            sock.send(pkt).await?;
        }
        sent = window.len();
        let resend = (!link.acked.load(Ordering::Relaxed)).then_some(&link.resend);
        match recv_reply(&sock, &mut rbuf, neg.timeout, resend).await? {
            Some(Reply::Ack(n)) => {
                // An ACK of an older block (a duplicate) is ignored: resending
                // on it would double every later block (Sorcerer's Apprentice).
                if let Some(i) = window.iter().position(|(w, _)| *w == n) {
                    link.acked.store(true, Ordering::Relaxed);
                    // Every block of the window was sent before this wait:
                    // an ACK inside it means the client lost the rest (it
                    // drops what follows a gap), so what is left is resent.
                    window.drain(..=i);
                    retries = 0;
                    sent = 0;
                }
            }
            Some(Reply::Error(code)) => return Err(End::ClientError(code)),
            Some(Reply::Other) => {}
            None => {
                retries += 1;
                if retries > max_retries {
                    return Err(End::TimedOut);
                }
                sent = 0;
            }
        }
    }
}

/// The next reply of the client, or `None` after `timeout` or when `resend` is
/// notified (both mean: send again).
async fn recv_reply(
    sock: &tokio::net::UdpSocket,
    buf: &mut [u8],
    timeout: Duration,
    resend: Option<&Notify>,
) -> Result<Option<Reply>, End> {
    let resend = async {
        match resend {
            Some(n) => n.notified().await,
            None => std::future::pending().await,
        }
    };
    let received = tokio::select! {
        r = tokio::time::timeout(timeout, sock.recv(buf)) => r,
        () = resend => return Ok(None),
    };
    match received {
        Ok(Ok(n)) => Ok(Some(proto::parse_reply(&buf[..n]))),
        // The client's port is gone (ICMP port unreachable): it gave up.
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => Err(End::ClientError(0)),
        Ok(Err(e)) => Err(End::Io(e)),
        Err(_) => Ok(None),
    }
}

/// A byte source filling whole blocks.
trait Fill {
    /// Fill `out` entirely, unless the data ends first; the count written.
    fn fill(&mut self, out: &mut [u8]) -> io::Result<usize>;
}

/// What a transfer reads from.
enum Source {
    Memory(Bytes, usize),
    Disk(DiskReader),
}

impl Fill for Source {
    fn fill(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Memory(b, pos) => {
                let n = out.len().min(b.len() - *pos);
                out[..n].copy_from_slice(&b[*pos..*pos + n]);
                *pos += n;
                Ok(n)
            }
            Source::Disk(d) => {
                let mut filled = 0;
                while filled < out.len() {
                    let n = d.read(&mut out[filled..])?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                Ok(filled)
            }
        }
    }
}

/// Reads a file in 256 KiB chunks, synchronously, on the serving thread.
///
/// Boot files (NBPs, kernels, ramdisks) are read over and over and live in the
/// page cache, where a chunk takes microseconds; handing each read to a thread
/// pool cost a third of the throughput in the bench.
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

/// netascii (RFC 764): LF is sent as CR LF, a lone CR as CR NUL.
struct Netascii {
    inner: Source,
    buf: Vec<u8>,
    pos: usize,
    /// The second byte of a pair that did not fit in the last block.
    pending: Option<u8>,
}

impl Netascii {
    fn new(inner: Source) -> Self {
        Netascii {
            inner,
            buf: Vec::new(),
            pos: 0,
            pending: None,
        }
    }
}

impl Fill for Netascii {
    fn fill(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < out.len() {
            if let Some(b) = self.pending.take() {
                out[n] = b;
                n += 1;
                continue;
            }
            if self.pos == self.buf.len() {
                self.buf.resize(8192, 0);
                let got = self.inner.fill(&mut self.buf)?;
                self.buf.truncate(got);
                self.pos = 0;
                if got == 0 {
                    break;
                }
            }
            let b = self.buf[self.pos];
            self.pos += 1;
            match b {
                b'\n' => {
                    out[n] = b'\r';
                    self.pending = Some(b'\n');
                }
                b'\r' => {
                    out[n] = b'\r';
                    self.pending = Some(0);
                }
                b => out[n] = b,
            }
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(f: &mut dyn Fill, block: usize) -> Vec<u8> {
        let mut all = Vec::new();
        loop {
            let mut b = vec![0u8; block];
            let n = f.fill(&mut b).unwrap();
            all.extend_from_slice(&b[..n]);
            if n < block {
                return all;
            }
        }
    }

    #[test]
    fn netascii_converts_line_ends_across_blocks() {
        let text = b"a\nb\rc\r\n\n".repeat(300);
        let mut want = Vec::new();
        for b in &text {
            match b {
                b'\n' => want.extend_from_slice(b"\r\n"),
                b'\r' => want.extend_from_slice(b"\r\0"),
                b => want.push(*b),
            }
        }
        for block in [1, 2, 3, 512] {
            let mut n = Netascii::new(Source::Memory(Bytes::from(text.clone()), 0));
            assert_eq!(drain(&mut n, block), want, "block {block}");
        }
    }

    #[test]
    fn memory_source_ends_with_a_short_block() {
        let mut s = Source::Memory(Bytes::from(vec![7u8; 1024]), 0);
        let mut b = vec![0u8; 512];
        assert_eq!(s.fill(&mut b).unwrap(), 512);
        assert_eq!(s.fill(&mut b).unwrap(), 512);
        // A file of whole blocks ends with an empty block.
        assert_eq!(s.fill(&mut b).unwrap(), 0);
    }
}
