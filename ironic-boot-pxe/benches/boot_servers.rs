//! Load bench for the boot servers, side by side with the real tools:
//!
//! * TFTP: 1, 10 and 50 concurrent `curl tftp://` clients (blksize 1468, as PXE
//!   ROMs ask) each fetching a 32 MiB ramdisk, from this crate's [`TftpServer`]
//!   and from `tftpd-hpa` serving the same file on loopback. Reports aggregate
//!   throughput, per-transfer times, and the CPU time of the server and of
//!   the curl clients during the round (user + system, from `/proc`): on a
//!   2-core machine the clients' CPU is most of it, so the figure to compare
//!   is how much CPU a server needs to move the same bytes.
//! * DHCP: DISCOVER → OFFER latency, measured by a client in a network
//!   namespace against this crate's [`DhcpServer`] and against dnsmasq with a
//!   reservation for the same MAC.
//!
//! Run (as root, release build): `cargo bench -p ironic-boot-pxe --bench boot_servers`.
//! `PXE_BENCH_CLIENTS=1,10` and `PXE_BENCH_DHCP_ROUNDS=200` change the sizes
//! (`PXE_BENCH_DHCP_ROUNDS=0`: TFTP only); `PXE_BENCH_TFTP_THREADS=1,4` adds
//! rows for our server with that many serving threads.

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
    if rounds > 0 {
        dhcp_bench(rounds);
    }
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

/// CPU seconds (user + system) from a `/proc/PID/stat` line: the process's
/// own, and that of its children it waited for.
fn proc_cpu(pid: &str) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<f64> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // After the command: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    let t = |i: usize| f.get(i - 3).copied().unwrap_or(0.0) / 100.0;
    (t(14) + t(15), t(16) + t(17))
}

/// Samples, every 10 ms until dropped, the CPU time of the processes `pid`
/// forked (tftpd-hpa's transfer processes: it does not wait for them, so their
/// time never reaches its own `/proc` figures); the sum of the last sample of
/// each (at most 10 ms of each process's CPU is missed).
struct ForkedCpu {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<f64>>,
}

impl ForkedCpu {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut seen = std::collections::HashMap::<String, f64>::new();
            let list = format!("/proc/{pid}/task/{pid}/children");
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let kids = std::fs::read_to_string(&list).unwrap_or_default();
                for k in kids.split_whitespace() {
                    let (own, _) = proc_cpu(k);
                    let e = seen.entry(k.to_owned()).or_default();
                    *e = e.max(own);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            seen.values().sum()
        });
        ForkedCpu {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> f64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().map_or(0.0, |t| t.join().unwrap_or(0.0))
    }
}

/// CPU used by the in-process server (this process) or by `tftpd-hpa`
/// (`Some(pid)`: the listening process only; its transfer processes are
/// counted by [`ForkedCpu`]), and by the curl clients (this process's
/// waited-for children).
#[derive(Clone, Copy)]
struct Cpu {
    server: f64,
    clients: f64,
}

fn cpu_now(hpa: Option<u32>) -> Cpu {
    let (me, children) = proc_cpu("self");
    let server = match hpa {
        Some(pid) => {
            let (own, reaped) = proc_cpu(&pid.to_string());
            own + reaped
        }
        None => me,
    };
    Cpu {
        server,
        clients: children,
    }
}

fn report(server: &str, n: usize, wall: Duration, mut times: Vec<Duration>, cpu: (Cpu, Cpu)) {
    times.sort();
    let mib = (SIZE * n) as f64 / (1024.0 * 1024.0);
    let p50 = times[times.len() / 2];
    let max = *times.last().unwrap();
    println!(
        "| {server:<16} | {n:>3} | {:>8.1} | {:>8.2} | {:>8.2} | {:>8.2} | {:>6.2} | {:>6.2} |",
        mib / wall.as_secs_f64(),
        wall.as_secs_f64(),
        p50.as_secs_f64(),
        max.as_secs_f64(),
        cpu.1.server - cpu.0.server,
        cpu.1.clients - cpu.0.clients,
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
    let extra: Vec<(usize, TftpServer)> = std::env::var("PXE_BENCH_TFTP_THREADS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .map(|threads| {
            let files = BootFiles::new(Some(&root)).unwrap();
            let opts = TftpOptions {
                threads,
                ..TftpOptions::default()
            };
            let srv = TftpServer::bind("127.0.0.1:0".parse().unwrap(), files, opts).unwrap();
            (threads, srv)
        })
        .collect();
    let port = free_udp_port();
    let hpa_proc = ChildGuard(
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
    println!(
        "| server           | clients | MiB/s total | wall s | p50 s | max s | server CPU s | curl CPU s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let hpa_pid = Some(hpa_proc.0.id());
    for &n in clients {
        let c0 = cpu_now(None);
        let (w, t) = fetch_all(ours.local_addr(), n);
        report("ironic-boot-pxe", n, w, t, (c0, cpu_now(None)));
        let c0 = cpu_now(None);
        let (w, t) = fetch_all(ours_mem.local_addr(), n);
        report("  (from memory)", n, w, t, (c0, cpu_now(None)));
        for (threads, srv) in &extra {
            let c0 = cpu_now(None);
            let (w, t) = fetch_all(srv.local_addr(), n);
            let name = format!("  ({threads} threads)");
            report(&name, n, w, t, (c0, cpu_now(None)));
        }
        let c0 = cpu_now(hpa_pid);
        let forked = ForkedCpu::start(hpa_proc.0.id());
        let (w, t) = fetch_all(hpa, n);
        let mut c1 = cpu_now(hpa_pid);
        c1.server += forked.finish();
        report("tftpd-hpa", n, w, t, (c0, c1));
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
