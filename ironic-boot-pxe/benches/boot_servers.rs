//! Load bench for the boot servers, side by side with the real tools:
//!
//! * TFTP: 1, 10 and 50 concurrent `curl tftp://` clients (blksize 1468, as PXE
//!   ROMs ask) each fetching a 32 MiB ramdisk, from this crate's [`TftpServer`]
//!   and from `tftpd-hpa` serving the same file on loopback. Reports aggregate
//!   throughput and per-transfer times.
//! * DHCP: DISCOVER → OFFER latency, measured by a client in a network
//!   namespace against this crate's [`DhcpServer`] and against dnsmasq with a
//!   reservation for the same MAC.
//!
//! Run (as root, release build): `cargo bench -p ironic-boot-pxe --bench boot_servers`.
//! `PXE_BENCH_CLIENTS=1,10` and `PXE_BENCH_DHCP_ROUNDS=200` change the sizes.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::netns::{Lab, Netns, SERVER_IP};
use common::{ChildGuard, random_file, tool};
use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use ironic_boot_pxe::{
    BootFiles, BootOptions, DhcpBind, DhcpConfig, DhcpServer, Reservation, Reservations,
    TftpOptions, TftpServer,
};

const SIZE: usize = 32 << 20;
const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0xbe, 0x0c, 0x01];

fn main() {
    let clients: Vec<usize> = std::env::var("PXE_BENCH_CLIENTS")
        .unwrap_or_else(|_| "1,10,50".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rounds: usize = std::env::var("PXE_BENCH_DHCP_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    tftp_bench(&clients);
    dhcp_bench(rounds);
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Run `n` curl clients at once; (wall time, per-transfer times).
fn fetch_all(addr: SocketAddr, n: usize) -> (Duration, Vec<Duration>) {
    let curl = tool("curl", "curl");
    let start = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let curl = curl.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                let out = Command::new(curl)
                    .args([
                        "-sS",
                        "--fail",
                        "--tftp-blksize",
                        "1468",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{size_download}",
                    ])
                    .arg(format!("tftp://{addr}/ramdisk.img"))
                    .output()
                    .unwrap();
                let took = t.elapsed();
                let got: usize = String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .unwrap_or(0);
                assert!(
                    out.status.success() && got == SIZE,
                    "transfer from {addr} failed: {} bytes, {}",
                    got,
                    String::from_utf8_lossy(&out.stderr)
                );
                took
            })
        })
        .collect();
    let times: Vec<Duration> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    (start.elapsed(), times)
}

fn report(server: &str, n: usize, wall: Duration, mut times: Vec<Duration>) {
    times.sort();
    let mib = (SIZE * n) as f64 / (1024.0 * 1024.0);
    let p50 = times[times.len() / 2];
    let max = *times.last().unwrap();
    println!(
        "| {server:<16} | {n:>3} | {:>8.1} | {:>8.2} | {:>8.2} | {:>8.2} |",
        mib / wall.as_secs_f64(),
        wall.as_secs_f64(),
        p50.as_secs_f64(),
        max.as_secs_f64()
    );
}

fn tftp_bench(clients: &[usize]) {
    let tftpd = tool("in.tftpd", "tftpd-hpa");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    random_file(&root.join("ramdisk.img"), SIZE, 99);
    let files = BootFiles::new(Some(&root)).unwrap();
    let ours = TftpServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        files,
        TftpOptions::default(),
    )
    .unwrap();
    // The same bytes generated in memory (how per-node files are served).
    let mem_files = BootFiles::new(None).unwrap();
    mem_files
        .insert(
            "ramdisk.img",
            std::fs::read(root.join("ramdisk.img")).unwrap(),
        )
        .unwrap();
    let ours_mem = TftpServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        mem_files,
        TftpOptions::default(),
    )
    .unwrap();
    let port = free_udp_port();
    let _hpa = ChildGuard(
        Command::new(&tftpd)
            .args(["--foreground", "--listen", "--user", "root", "--address"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--secure")
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let hpa: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    println!("\nTFTP: 32 MiB file, curl --tftp-blksize 1468, loopback\n");
    println!("| server           | clients | MiB/s total | wall s | p50 s | max s |");
    println!("|---|---|---|---|---|---|");
    for &n in clients {
        let (w, t) = fetch_all(ours.local_addr(), n);
        report("ironic-boot-pxe", n, w, t);
        let (w, t) = fetch_all(ours_mem.local_addr(), n);
        report("  (from memory)", n, w, t);
        let (w, t) = fetch_all(hpa, n);
        report("tftpd-hpa", n, w, t);
    }
}

fn discover(xid: u32) -> Vec<u8> {
    let mut m = Message::default();
    m.set_opcode(Opcode::BootRequest)
        .set_xid(xid)
        .set_chaddr(&MAC)
        .set_flags(Flags::default().set_broadcast());
    m.opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Discover));
    let mut buf = Vec::new();
    m.encode(&mut Encoder::new(&mut buf)).unwrap();
    buf
}

/// DISCOVER → OFFER round trips from the client namespace; sorted latencies.
fn dhcp_rounds(cli: &Netns, rounds: usize) -> Vec<Duration> {
    cli.enter(move || {
        let s = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .unwrap();
        s.set_broadcast(true).unwrap();
        s.set_reuse_address(true).unwrap();
        s.bind_device(Some(b"eth0")).unwrap();
        s.bind(&SocketAddr::from(([0, 0, 0, 0], 68)).into())
            .unwrap();
        let sock: UdpSocket = s.into();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut out = Vec::with_capacity(rounds);
        let mut buf = [0u8; 1500];
        for i in 0..rounds {
            let xid = 0x5000_0000 + i as u32;
            let t = Instant::now();
            sock.send_to(&discover(xid), "255.255.255.255:67").unwrap();
            loop {
                let (n, _) = sock
                    .recv_from(&mut buf)
                    .unwrap_or_else(|e| panic!("no OFFER for round {i}: {e}"));
                if let Ok(m) = Message::decode(&mut Decoder::new(&buf[..n]))
                    && m.xid() == xid
                    && m.opts().msg_type() == Some(MessageType::Offer)
                {
                    break;
                }
            }
            out.push(t.elapsed());
        }
        out.sort();
        out
    })
}

fn dhcp_line(server: &str, t: &[Duration]) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "| {server:<16} | {:>5} | {:>8.0} | {:>8.0} | {:>8.0} |",
        t.len(),
        us(t[t.len() / 2]),
        us(t[t.len() * 99 / 100]),
        us(t[t.len() - 1])
    );
}

fn dhcp_bench(rounds: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "\nDHCP DISCOVER → OFFER, {rounds} sequential rounds, veth + bridge in network namespaces\n"
    );
    println!("| server           | rounds | p50 µs | p99 µs | max µs |");
    println!("|---|---|---|---|---|");
    {
        let mut lab = Lab::new();
        let cli = lab.peer("cli");
        cli.ip(&["link", "set", "eth0", "address", "52:54:00:be:0c:01"]);
        let res = Arc::new(Reservations::default());
        res.insert(Reservation {
            mac: ironic_core::MacAddress(MAC),
            ip: Some(Ipv4Addr::new(10, 99, 0, 10)),
            hostname: None,
            boot: Some(BootOptions {
                next_server: SERVER_IP,
                bios_file: "undionly.kpxe".into(),
                uefi_file: "snponly.efi".into(),
                ipxe_script: None,
                http_boot_url: None,
            }),
        });
        let h = rt.handle().clone();
        let _server = lab.srv.enter(move || {
            let _g = h.enter();
            DhcpServer::bind(
                DhcpConfig::server(SERVER_IP),
                DhcpBind::interface("br0"),
                res,
            )
            .unwrap()
        });
        dhcp_line("ironic-boot-pxe", &dhcp_rounds(&cli, rounds));
    }
    {
        let dnsmasq = tool("dnsmasq", "dnsmasq-base");
        let mut lab = Lab::new();
        let cli = lab.peer("cli");
        cli.ip(&["link", "set", "eth0", "address", "52:54:00:be:0c:01"]);
        let dir = tempfile::tempdir().unwrap();
        let _d = ChildGuard(
            lab.srv
                .command(&dnsmasq)
                .args([
                    "--no-daemon",
                    "--conf-file=/dev/null",
                    "--port=0",
                    "--interface=br0",
                    "--bind-interfaces",
                    "--no-ping",
                    "--dhcp-range=10.99.0.10,static,255.255.255.0,1h",
                    "--dhcp-host=52:54:00:be:0c:01,10.99.0.10",
                    "--dhcp-boot=undionly.kpxe,,10.99.0.1",
                    "--quiet-dhcp",
                ])
                .arg(format!(
                    "--dhcp-leasefile={}",
                    dir.path().join("leases").display()
                ))
                .arg(format!("--pid-file={}", dir.path().join("pid").display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(500));
        dhcp_line("dnsmasq", &dhcp_rounds(&cli, rounds));
    }
}
