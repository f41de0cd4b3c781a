//! Read requests repeated from the same client port: a retransmitted request is
//! answered at once by the transfer in progress (no second transfer), a client
//! that starts over gets a new transfer, and what a client abandons ends. Raw
//! datagrams for the exact cases, then tftp-hpa, atftp and curl through a relay
//! that loses the server's first answer, so each client must repeat its request.
//!
//! The server's own retransmission timeout is 60 s here: an answer within the
//! tests' 20 s bounds can only come from the repeated request.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{random_file, run, same_file, tool};
use ironic_boot_pxe::{BootFiles, TftpOptions, TftpServer, TftpStats};

const SMALL: &[u8] = b"hello from disk\n";

struct Lab {
    dir: tempfile::TempDir,
    server: TftpServer,
}

fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("small.txt"), SMALL).unwrap();
    // Three 512-byte blocks and a short one.
    let three: Vec<u8> = (0..1600u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.join("three.bin"), three).unwrap();
    random_file(&root.join("mid.img"), 256 << 10, 7);
    let files = BootFiles::new(Some(&root)).unwrap();
    let server = TftpServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        files,
        TftpOptions {
            timeout: Duration::from_secs(60),
            ..TftpOptions::default()
        },
    )
    .unwrap();
    Lab { dir, server }
}

fn client() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    // A bound for a reply on loopback, not a timing assertion.
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

fn recv(sock: &UdpSocket, what: &str) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 2048];
    let (n, from) = sock
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("no answer ({what}): {e}"));
    buf.truncate(n);
    (buf, from)
}

fn rrq(file: &str, options: &[(&str, &str)]) -> Vec<u8> {
    let mut p = b"\x00\x01".to_vec();
    for part in [file, "octet"]
        .into_iter()
        .chain(options.iter().flat_map(|(k, v)| [*k, *v]))
    {
        p.extend_from_slice(part.as_bytes());
        p.push(0);
    }
    p
}

fn ack(n: u16) -> [u8; 4] {
    let b = n.to_be_bytes();
    [0, 4, b[0], b[1]]
}

fn data(n: u16) -> [u8; 4] {
    let b = n.to_be_bytes();
    [0, 3, b[0], b[1]]
}

/// Waits until no transfer is in progress (bounded; the server would hold an
/// abandoned transfer for minutes).
fn settled(server: &TftpServer) -> TftpStats {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let st = server.stats();
        if st.in_progress == 0 {
            return st;
        }
        assert!(Instant::now() < end, "transfers left running: {st:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_repeated_request_is_answered_at_once_by_the_transfer_in_progress() {
    let lab = lab();
    let server = lab.server.local_addr();

    // With options the first answer is the OACK.
    let sock = client();
    let req = rrq("small.txt", &[("blksize", "1024")]);
    sock.send_to(&req, server).unwrap();
    let (oack, tid) = recv(&sock, "first OACK");
    assert_eq!(&oack[..2], b"\x00\x06", "{oack:?}");
    for i in 0..3 {
        sock.send_to(&req, server).unwrap();
        let again = recv(&sock, &format!("OACK for repeat {i}"));
        assert_eq!(again, (oack.clone(), tid), "repeat {i}");
    }
    sock.send_to(&ack(0), tid).unwrap();
    let (d, from) = recv(&sock, "DATA 1");
    assert_eq!((&d[..4], &d[4..], from), (&data(1)[..], SMALL, tid));
    sock.send_to(&ack(1), tid).unwrap();

    // Without options the first answer is DATA 1.
    let sock = client();
    let req = rrq("small.txt", &[]);
    sock.send_to(&req, server).unwrap();
    let (first, tid) = recv(&sock, "first DATA 1");
    assert_eq!(&first[..4], &data(1));
    sock.send_to(&req, server).unwrap();
    assert_eq!(recv(&sock, "DATA 1 again"), (first, tid));
    sock.send_to(&ack(1), tid).unwrap();

    let st = settled(&lab.server);
    assert_eq!((st.opened, st.repeated, st.replaced), (2, 4, 0), "{st:?}");
}

#[test]
fn a_client_starting_over_from_the_same_port_gets_a_new_transfer() {
    let lab = lab();
    let server = lab.server.local_addr();
    let three = std::fs::read(lab.dir.path().join("root/three.bin")).unwrap();

    // A tsize probe, then the real request from the same port without ending
    // the probe (PXE ROMs do this): the probe's transfer ends, the new one runs.
    let sock = client();
    sock.send_to(&rrq("small.txt", &[("tsize", "0")]), server)
        .unwrap();
    let (oack, probe) = recv(&sock, "OACK of the probe");
    assert_eq!(oack, b"\x00\x06tsize\x0016\x00");
    sock.send_to(&rrq("small.txt", &[("blksize", "1024")]), server)
        .unwrap();
    let (oack, tid) = recv(&sock, "OACK of the real request");
    assert_eq!(oack, b"\x00\x06blksize\x001024\x00");
    assert_ne!(tid, probe, "the new request needs a new transfer");
    sock.send_to(&ack(0), tid).unwrap();
    let (d, from) = recv(&sock, "DATA 1");
    assert_eq!((&d[4..], from), (SMALL, tid));
    sock.send_to(&ack(1), tid).unwrap();
    let st = settled(&lab.server);
    assert_eq!((st.opened, st.replaced), (2, 1), "{st:?}");

    // The same request again after acknowledging a block: a second transfer
    // starts beside the first, as tftpd-hpa would start one.
    let sock = client();
    let req = rrq("three.bin", &[]);
    sock.send_to(&req, server).unwrap();
    let (_, t1) = recv(&sock, "DATA 1 from the first transfer");
    sock.send_to(&ack(1), t1).unwrap();
    let (d, from) = recv(&sock, "DATA 2 from the first transfer");
    assert_eq!((&d[..4], from), (&data(2)[..], t1));
    sock.send_to(&req, server).unwrap();
    let (d, t2) = recv(&sock, "DATA 1 from the second transfer");
    assert_eq!(&d[..4], &data(1));
    assert_ne!(t2, t1);
    sock.send_to(&ack(1), t2).unwrap();
    let (d, from) = recv(&sock, "DATA 2 from the second transfer");
    assert_eq!((&d[..4], from), (&data(2)[..], t2));
    // A third time: at most two transfers per client, the oldest ends.
    sock.send_to(&req, server).unwrap();
    let (d, t3) = recv(&sock, "DATA 1 from the third transfer");
    assert_eq!(&d[..4], &data(1));
    assert!(t3 != t1 && t3 != t2);
    // The client keeps the third: it tells the second "unknown transfer ID".
    sock.send_to(b"\x00\x05\x00\x05Unknown transfer ID\x00", t2)
        .unwrap();
    let mut got = d[4..].to_vec();
    let mut block = 1u16;
    loop {
        sock.send_to(&ack(block), t3).unwrap();
        if got.len() == three.len() {
            break;
        }
        block += 1;
        let (d, from) = recv(&sock, &format!("DATA {block}"));
        assert_eq!((&d[..4], from), (&data(block)[..], t3));
        got.extend_from_slice(&d[4..]);
    }
    assert_eq!(got, three);
    let st = settled(&lab.server);
    assert_eq!((st.opened, st.replaced), (5, 2), "{st:?}");
}

/// A UDP relay between clients and the TFTP server that loses the server's
/// first datagram (the answer to the first request). The client sees the relay
/// as the server: each transfer port of the server gets a port of the relay.
struct LossyRelay {
    addr: SocketAddr,
    dropped: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LossyRelay {
    fn start(server: SocketAddr) -> LossyRelay {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let up = UdpSocket::bind("127.0.0.1:0").unwrap();
        for s in [&front, &up] {
            s.set_nonblocking(true).unwrap();
        }
        let addr = front.local_addr().unwrap();
        let dropped = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, st) = (Arc::clone(&dropped), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut client: Option<SocketAddr> = None;
            // (server transfer port, the relay's socket standing for it)
            let mut faces: Vec<(SocketAddr, UdpSocket)> = Vec::new();
            let mut buf = vec![0u8; 65536];
            let mut first = true;
            while !st.load(Ordering::Relaxed) {
                let mut idle = true;
                if let Ok((n, from)) = front.recv_from(&mut buf) {
                    idle = false;
                    client = Some(from);
                    let _ = up.send_to(&buf[..n], server);
                }
                if let Ok((n, tid)) = up.recv_from(&mut buf) {
                    idle = false;
                    if first {
                        first = false;
                        d.fetch_add(1, Ordering::Relaxed);
                    } else if let Some(c) = client {
                        if !faces.iter().any(|(t, _)| *t == tid) {
                            let f = UdpSocket::bind("127.0.0.1:0").unwrap();
                            f.set_nonblocking(true).unwrap();
                            faces.push((tid, f));
                        }
                        let (_, f) = faces.iter().find(|(t, _)| *t == tid).unwrap();
                        let _ = f.send_to(&buf[..n], c);
                    }
                }
                for (tid, f) in &faces {
                    if let Ok((n, _)) = f.recv_from(&mut buf) {
                        idle = false;
                        let _ = up.send_to(&buf[..n], tid);
                    }
                }
                if idle {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        LossyRelay {
            addr,
            dropped,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn real_clients_whose_first_answer_is_lost_repeat_the_request_and_get_the_file() {
    let lab = lab();
    let src = lab.dir.path().join("root/mid.img");
    let out = lab.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let (tftp, atftp, curl) = (
        tool("tftp", "tftp-hpa"),
        tool("atftp", "atftp"),
        tool("curl", "curl"),
    );
    let mut opened = 0;
    for (name, make) in [
        (
            "tftp-hpa",
            Box::new(|relay: SocketAddr, dest: &std::path::Path| {
                let mut c = Command::new(&tftp);
                c.args(["-4", "-v", "-m", "binary", "127.0.0.1"])
                    .arg(relay.port().to_string())
                    .args(["-c", "get", "mid.img"])
                    .arg(dest);
                c
            }) as Box<dyn Fn(SocketAddr, &std::path::Path) -> Command>,
        ),
        (
            "atftp",
            Box::new(|relay: SocketAddr, dest: &std::path::Path| {
                let mut c = Command::new(&atftp);
                // No `timeout` option: it would set the server's timer.
                c.args(["--option", "blksize 1428", "--option", "tsize 0", "-g"])
                    .arg("-r")
                    .arg("mid.img")
                    .arg("-l")
                    .arg(dest)
                    .arg("127.0.0.1")
                    .arg(relay.port().to_string());
                c
            }),
        ),
        (
            "curl",
            Box::new(|relay: SocketAddr, dest: &std::path::Path| {
                let mut c = Command::new(&curl);
                // With options curl asks for `timeout` 5 s, which sets the
                // server's timer: without them its repeat is what is answered.
                c.args(["-sS", "--fail", "--tftp-no-options", "-o"])
                    .arg(dest)
                    .arg(format!("tftp://{relay}/mid.img"));
                c
            }),
        ),
    ] {
        let relay = LossyRelay::start(lab.server.local_addr());
        let dest = out.join(name);
        let before = lab.server.stats();
        let (ok, log) = run(&mut make(relay.addr, &dest));
        assert!(ok && !log.contains("rror"), "{name}: {log}");
        assert!(same_file(&src, &dest), "{name}: the file differs");
        assert_eq!(relay.dropped.load(Ordering::Relaxed), 1, "{name}");
        let st = settled(&lab.server);
        opened += 1;
        assert_eq!(st.opened, opened, "{name}: one transfer: {st:?}");
        assert!(
            st.repeated > before.repeated,
            "{name}: the repeated request was not answered by the transfer: {st:?}"
        );
    }
}
