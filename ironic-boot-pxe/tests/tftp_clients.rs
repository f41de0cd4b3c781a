//! The TFTP server against real clients: tftp-hpa, atftp and curl.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{random_file, run, same_file, tool};
use ironic_boot_pxe::{BootFiles, TftpOptions, TftpServer};

const BIG: usize = 64 << 20;

struct Lab {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    out: std::path::PathBuf,
    files: Arc<BootFiles>,
    server: TftpServer,
}

fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let out = dir.path().join("out");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    // Outside the root: must never be served.
    std::fs::write(dir.path().join("secret"), b"top secret\n").unwrap();
    std::fs::write(root.join("sub/small.txt"), b"hello from disk\n").unwrap();
    let files = BootFiles::new(Some(&root)).unwrap();
    files
        .insert(
            "pxelinux.cfg/01-52-54-00-12-34-56",
            &b"default deploy\n"[..],
        )
        .unwrap();
    let server = TftpServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        Arc::clone(&files),
        TftpOptions::default(),
    )
    .unwrap();
    Lab {
        root,
        out,
        files,
        server,
        _dir: dir,
    }
}

fn big_file(root: &Path) -> std::path::PathBuf {
    let p = root.join("ramdisk.img");
    random_file(&p, BIG, 0x1234_5678);
    p
}

#[test]
fn tftp_hpa_gets_files_and_is_refused_traversal() {
    let tftp = tool("tftp", "tftp-hpa");
    let lab = lab();
    let port = lab.server.local_addr().port().to_string();
    let big = big_file(&lab.root);
    let get = |remote: &str, local: &Path| {
        run(Command::new(&tftp)
            .args(["-4", "-v", "-m", "binary", "127.0.0.1", &port, "-c", "get"])
            .arg(remote)
            .arg(local))
    };
    // 64 MiB at the default 512-byte blocks: 131072 blocks, so the block
    // number wraps around.
    let (ok, log) = get("ramdisk.img", &lab.out.join("big"));
    assert!(ok, "{log}");
    assert!(same_file(&big, &lab.out.join("big")), "64 MiB file differs");
    // Generated in memory.
    let (ok, log) = get("pxelinux.cfg/01-52-54-00-12-34-56", &lab.out.join("cfg"));
    assert!(ok, "{log}");
    assert_eq!(
        std::fs::read(lab.out.join("cfg")).unwrap(),
        b"default deploy\n"
    );
    // Traversal and absolute paths.
    for bad in [
        "../secret",
        "sub/../../secret",
        "/etc/passwd",
        "nonexistent",
    ] {
        let dest = lab.out.join("bad");
        let _ = std::fs::remove_file(&dest);
        let (_, log) = get(bad, &dest);
        // tftp-hpa exits 0 even on a server error; it prints the error.
        assert!(
            log.contains("Error code") || log.contains("error"),
            "{bad}: {log}"
        );
        let got = std::fs::read(&dest).unwrap_or_default();
        assert!(!got.starts_with(b"top secret"), "{bad} leaked");
        assert!(got.is_empty(), "{bad}: got {} bytes", got.len());
    }
    // Write requests are refused.
    std::fs::write(lab.out.join("up"), b"x").unwrap();
    let (_, log) = run(Command::new(&tftp)
        .args(["-4", "-v", "-m", "binary", "127.0.0.1", &port, "-c", "put"])
        .arg(lab.out.join("up"))
        .arg("uploaded"));
    assert!(log.contains("Error code") || log.contains("error"), "{log}");
    assert!(!lab.root.join("uploaded").exists());
    let st = lab.server.stats();
    assert_eq!(st.opened, 2, "{st:?}");
    assert_eq!(st.not_found, 1, "{st:?}");
    assert_eq!(st.refused, 4, "{st:?}");
    drop(lab.files);
}

#[test]
fn atftp_negotiates_options() {
    let atftp = tool("atftp", "atftp");
    let lab = lab();
    let port = lab.server.local_addr().port().to_string();
    let big = big_file(&lab.root);
    let dest = lab.out.join("big");
    let (ok, log) = run(Command::new(&atftp)
        .args([
            "--trace",
            "--option",
            "blksize 1468",
            "--option",
            "tsize 0",
            "--option",
            "timeout 2",
            "--option",
            "windowsize 8",
            "-g",
            "-r",
            "ramdisk.img",
            "-l",
        ])
        .arg(&dest)
        .args(["127.0.0.1", &port]));
    assert!(ok, "{log}");
    // atftp traces the server's OACK.
    let oack = log
        .lines()
        .find(|l| l.contains("OACK"))
        .unwrap_or_else(|| panic!("no OACK in atftp trace:\n{}", &log[..log.len().min(2000)]));
    assert!(oack.contains("blksize: 1468"), "{oack}");
    assert!(oack.contains(&format!("tsize: {BIG}")), "{oack}");
    assert!(oack.contains("timeout: 2"), "{oack}");
    assert!(oack.contains("windowsize: 8"), "{oack}");
    assert!(same_file(&big, &dest), "64 MiB file differs");

    let (ok, log) = run(Command::new(&atftp)
        .args(["--option", "blksize 1468", "-g", "-r", "../secret", "-l"])
        .arg(lab.out.join("secret"))
        .args(["127.0.0.1", &port]));
    assert!(!ok, "traversal must fail: {log}");
    assert!(
        std::fs::read(lab.out.join("secret"))
            .unwrap_or_default()
            .is_empty()
    );
}

#[test]
fn curl_tftp_with_blksize_and_tsize() {
    let curl = tool("curl", "curl");
    let lab = lab();
    let addr = lab.server.local_addr();
    let big = big_file(&lab.root);
    let dest = lab.out.join("big");
    let (ok, log) = run(Command::new(&curl)
        .args(["-sS", "--fail", "--tftp-blksize", "8192", "-o"])
        .arg(&dest)
        .arg(format!("tftp://{addr}/ramdisk.img")));
    assert!(ok, "{log}");
    assert!(same_file(&big, &dest), "64 MiB file differs");

    let (ok, log) = run(Command::new(&curl)
        .args(["-sS", "--fail", "-o", "-"])
        .arg(format!("tftp://{addr}/sub/small.txt")));
    assert!(ok, "{log}");
    assert_eq!(log, "hello from disk\n");

    // curl normalises "../" in URLs itself; %2e%2e reaches the server as "..".
    for bad in [
        "%2e%2e/secret",
        "sub/%2e%2e/%2e%2e/secret",
        "%2fetc%2fpasswd",
    ] {
        let (ok, log) = run(Command::new(&curl)
            .args(["-sS", "--fail", "-o", "-"])
            .arg(format!("tftp://{addr}/{bad}")));
        assert!(!ok, "{bad} must fail: {log}");
        assert!(!log.contains("top secret"), "{bad} leaked: {log}");
    }
}

#[test]
fn many_clients_at_once() {
    let curl = tool("curl", "curl");
    let lab = lab();
    let addr = lab.server.local_addr();
    let src = lab.root.join("mid.img");
    random_file(&src, 4 << 20, 42);
    let children: Vec<_> = (0..20)
        .map(|i| {
            let dest = lab.out.join(format!("mid{i}"));
            let child = Command::new(&curl)
                .args(["-sS", "--fail", "--tftp-blksize", "1468", "-o"])
                .arg(&dest)
                .arg(format!("tftp://{addr}/mid.img"))
                .spawn()
                .unwrap();
            (common::ChildGuard(child), dest)
        })
        .collect();
    for (mut c, dest) in children {
        assert!(c.0.wait().unwrap().success());
        assert!(same_file(&src, &dest));
    }
}

/// The server's reply to one datagram: (opcode, error code, message).
fn reply_to(
    sock: &std::net::UdpSocket,
    server: std::net::SocketAddr,
    datagram: &[u8],
) -> (u16, u16, String) {
    sock.send_to(datagram, server).unwrap();
    let mut buf = [0u8; 1024];
    // A bound for a reply on loopback, not a timing assertion: a server that
    // stays silent (the bug) makes this fail instead of hang.
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let (n, _) = sock
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("no reply to {datagram:?}: {e}"));
    assert!(n >= 5, "short reply {:?}", &buf[..n]);
    let msg = String::from_utf8_lossy(&buf[4..n - 1]).into_owned();
    assert_eq!(buf[n - 1], 0, "message not NUL-terminated");
    (
        u16::from_be_bytes([buf[0], buf[1]]),
        u16::from_be_bytes([buf[2], buf[3]]),
        msg,
    )
}

#[test]
fn malformed_datagrams_get_error_packets_at_once() {
    let lab = lab();
    let server = lab.server.local_addr();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let cases: &[(&[u8], u16)] = &[
        (b"\x00", 4),                                          // too short
        (b"\x00\x09x\x00octet\x00", 4),                        // unknown opcode
        (b"\x00\x01pxelinux.0", 4),                            // name not NUL-terminated
        (b"\x00\x01sub/small.txt\x00octet", 4),                // mode not NUL-terminated
        (b"\x00\x01sub/small.txt\x00bogus\x00", 4),            // unknown mode
        (b"\x00\x01sub/small.txt\x00mail\x00", 4),             // mail mode
        (b"\x00\x01sub/small.txt\x00octet\x00blksize\x00", 4), // option without value
        (b"\x00\x04\x00\x01", 4),                              // ACK to the server's port
        (b"\x00\x03\x00\x01data", 4),                          // DATA to the server's port
        (b"\x00\x02up\x00octet\x00", 2),                       // write request
        (b"\x00\x01../secret\x00octet\x00", 2),                // traversal
        (b"\x00\x01nonexistent\x00octet\x00", 1),              // missing file
    ];
    for (datagram, code) in cases {
        // An ERROR packet is never answered: the next reply is for the next case.
        sock.send_to(b"\x00\x05\x00\x00client says no\x00", server)
            .unwrap();
        let (op, got, msg) = reply_to(&sock, server, datagram);
        assert_eq!((op, got), (5, *code), "{datagram:?}: {msg}");
        assert!(!msg.is_empty(), "{datagram:?}: empty message");
    }
    let st = lab.server.stats();
    assert_eq!(st.malformed, 9, "{st:?}");
    assert_eq!((st.refused, st.not_found, st.opened), (2, 1, 0), "{st:?}");
    // The server still serves a well-formed request after all that.
    sock.send_to(b"\x00\x01sub/small.txt\x00octet\x00", server)
        .unwrap();
    let mut buf = [0u8; 600];
    let (n, from) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..4], b"\x00\x03\x00\x01");
    assert_eq!(&buf[4..n], b"hello from disk\n");
    sock.send_to(b"\x00\x04\x00\x01", from).unwrap();
}

#[test]
fn tftp_hpa_netascii_mode() {
    let tftp = tool("tftp", "tftp-hpa");
    let lab = lab();
    let port = lab.server.local_addr().port().to_string();
    let text = b"line one\nline two\r\nbare\rcr\n".repeat(100);
    std::fs::write(lab.root.join("text.cfg"), &text).unwrap();
    let dest = lab.out.join("text");
    let (ok, log) = run(Command::new(&tftp)
        .args([
            "-4",
            "-v",
            "-m",
            "ascii",
            "127.0.0.1",
            &port,
            "-c",
            "get",
            "text.cfg",
        ])
        .arg(&dest));
    assert!(ok && !log.contains("Error code"), "{log}");
    // tftp-hpa converts CR LF back to LF and CR NUL back to CR.
    assert_eq!(std::fs::read(&dest).unwrap(), text);
}
