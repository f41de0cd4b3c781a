//! The DHCP server and ProxyDHCP against real clients (busybox udhcpc, nmap's
//! broadcast-dhcp-discover) and beside a real DHCP server (dnsmasq), in network
//! namespaces joined by a bridge.

mod common;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use common::netns::{Lab, Netns, SERVER_IP};
use common::{ChildGuard, run, tool};
use dhcproto::v4::{Architecture, DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use ironic_boot_pxe::{BootOptions, DhcpBind, DhcpConfig, DhcpServer, Reservation, Reservations};

const MAC: &str = "52:54:00:aa:00:01";
const SCRIPT_URL: &str = "http://10.99.0.1:8080/pxelinux.cfg/52-54-00-aa-00-01";
const HTTP_URL: &str = "http://10.99.0.1:8080/snponly.efi";

fn reservation(ip: Option<Ipv4Addr>) -> Reservation {
    Reservation {
        mac: MAC.parse().unwrap(),
        ip,
        hostname: Some("node-1".into()),
        boot: Some(BootOptions {
            next_server: SERVER_IP,
            bios_file: "undionly.kpxe".into(),
            uefi_file: "snponly.efi".into(),
            ipxe_script: Some(SCRIPT_URL.into()),
            http_boot_url: Some(HTTP_URL.into()),
        }),
    }
}

fn start(lab: &Lab, config: DhcpConfig, res: Arc<Reservations>) -> DhcpServer {
    let h = tokio::runtime::Handle::current();
    lab.srv.enter(move || {
        let _g = h.enter();
        DhcpServer::bind(config, DhcpBind::interface("br0"), res).unwrap()
    })
}

/// Run udhcpc once in `ns`; returns the variables its script saw at "bound".
fn udhcpc(ns: &Netns, extra: &[&str]) -> Option<HashMap<String, String>> {
    let udhcpc = tool("udhcpc", "udhcpc");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.sh");
    let out = dir.path().join("bound");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = bound ] && env > {}\nexit 0\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (ok, log) = run(ns
        .command(udhcpc)
        .args([
            "-i", "eth0", "-f", "-q", "-n", "-t", "4", "-T", "2", "-O", "tftp", "-O", "bootfile",
            "-s",
        ])
        .arg(&script)
        .args(extra));
    if !ok {
        eprintln!("udhcpc: {log}");
        return None;
    }
    let env = std::fs::read_to_string(&out).ok()?;
    Some(
        env.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udhcpc_gets_reservation_and_boot_file_per_architecture() {
    let mut lab = Lab::new();
    let cli = lab.peer("cli");
    cli.ip(&["link", "set", "eth0", "address", MAC]);
    let res = Arc::new(Reservations::default());
    res.insert(reservation(Some(Ipv4Addr::new(10, 99, 0, 10))));
    let _server = start(&lab, DhcpConfig::server(SERVER_IP), Arc::clone(&res));

    let cases: Vec<(&str, Vec<&str>, Option<&str>)> = vec![
        ("plain client", vec![], None),
        (
            "BIOS PXE",
            vec!["-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000"],
            Some("undionly.kpxe"),
        ),
        (
            "UEFI PXE",
            vec!["-V", "PXEClient:Arch:00007:UNDI:003016", "-x", "0x5d:0007"],
            Some("snponly.efi"),
        ),
        (
            "UEFI HTTP",
            vec!["-V", "HTTPClient:Arch:00016:UNDI:003001", "-x", "0x5d:0010"],
            Some(HTTP_URL),
        ),
        (
            "iPXE",
            vec!["-x", "0x4d:69505845", "-x", "0x5d:0007"],
            Some(SCRIPT_URL),
        ),
    ];
    for (what, args, want) in cases {
        let env = tokio::task::block_in_place(|| udhcpc(&cli, &args))
            .unwrap_or_else(|| panic!("{what}: no lease"));
        assert_eq!(
            env.get("ip").map(String::as_str),
            Some("10.99.0.10"),
            "{what}: {env:?}"
        );
        assert_eq!(
            env.get("serverid").map(String::as_str),
            Some("10.99.0.1"),
            "{what}"
        );
        assert_eq!(
            env.get("subnet").map(String::as_str),
            Some("255.255.255.0"),
            "{what}"
        );
        assert_eq!(
            env.get("hostname").map(String::as_str),
            Some("node-1"),
            "{what}"
        );
        assert_eq!(
            env.get("bootfile").map(String::as_str),
            want,
            "{what}: {env:?}"
        );
        if let Some(w) = want {
            assert_eq!(env.get("boot_file").map(String::as_str), Some(w), "{what}");
            assert_eq!(
                env.get("siaddr").map(String::as_str),
                Some("10.99.0.1"),
                "{what}"
            );
            assert_eq!(
                env.get("tftp").map(String::as_str),
                Some("10.99.0.1"),
                "{what}"
            );
        }
    }

    // Once the node is done, its MAC is unknown again: no answer.
    res.remove(&MAC.parse().unwrap());
    assert!(tokio::task::block_in_place(|| udhcpc(&cli, &[])).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nmap_dhcp_discover_sees_offers_and_acks() {
    let nmap = tool("nmap", "nmap");
    let mut lab = Lab::new();
    let cli = lab.peer("cli");
    cli.ip(&["link", "set", "eth0", "address", MAC]);
    cli.ip(&["addr", "add", "10.99.0.60/24", "dev", "eth0"]);
    let res = Arc::new(Reservations::default());
    res.insert(reservation(Some(Ipv4Addr::new(10, 99, 0, 10))));
    let _server = start(&lab, DhcpConfig::server(SERVER_IP), Arc::clone(&res));
    // nmap's dhcp-discover script asks the server directly (UDP port 67), as
    // the interface's own MAC (with another MAC it poses as a relay agent).
    let probe = |mtype: &str| {
        run(cli.command(&nmap).args([
            "-sU",
            "-p",
            "67",
            "-Pn",
            "-n",
            "--script",
            "dhcp-discover",
            "--script-args",
            &format!("dhcp-discover.dhcptype={mtype}"),
            "10.99.0.1",
        ]))
    };
    let (ok, out) = tokio::task::block_in_place(|| probe("DHCPDISCOVER"));
    assert!(ok, "{out}");
    assert!(out.contains("DHCP Message Type: DHCPOFFER"), "{out}");
    assert!(out.contains("IP Offered: 10.99.0.10"), "{out}");
    assert!(out.contains("Server Identifier: 10.99.0.1"), "{out}");
    assert!(out.contains("Subnet Mask: 255.255.255.0"), "{out}");
    let (ok, out) = tokio::task::block_in_place(|| probe("DHCPINFORM"));
    assert!(ok, "{out}");
    assert!(out.contains("DHCP Message Type: DHCPACK"), "{out}");
    // An unknown MAC gets nothing.
    cli.ip(&["link", "set", "eth0", "address", "52:54:00:aa:00:99"]);
    let (_, out) = tokio::task::block_in_place(|| probe("DHCPDISCOVER"));
    assert!(!out.contains("DHCP Message Type"), "{out}");
}

/// A PXE client's DISCOVER, built by hand (no packaged client speaks
/// ProxyDHCP), sent from the client namespace; returns all replies in `wait`.
fn pxe_exchange(
    ns: &Netns,
    to: std::net::SocketAddrV4,
    mtype: MessageType,
    wait: Duration,
) -> Vec<Message> {
    let mac: ironic_core::MacAddress = MAC.parse().unwrap();
    ns.enter(move || {
        let s = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .unwrap();
        s.set_broadcast(true).unwrap();
        s.set_reuse_address(true).unwrap();
        s.bind_device(Some(b"eth0")).unwrap();
        let port = if mtype == MessageType::Discover {
            68
        } else {
            0
        };
        s.bind(&std::net::SocketAddr::from(([0, 0, 0, 0], port)).into())
            .unwrap();
        let sock: std::net::UdpSocket = s.into();
        let mut m = Message::default();
        m.set_opcode(Opcode::BootRequest)
            .set_xid(0xC0FFEE)
            .set_chaddr(&mac.octets())
            .set_flags(Flags::default().set_broadcast());
        if mtype != MessageType::Discover {
            m.set_ciaddr(Ipv4Addr::new(10, 99, 0, 50));
        }
        let o = m.opts_mut();
        o.insert(DhcpOption::MessageType(mtype));
        o.insert(DhcpOption::ClassIdentifier(
            b"PXEClient:Arch:00000:UNDI:002001".to_vec(),
        ));
        o.insert(DhcpOption::ClientSystemArchitecture(Architecture(0)));
        let mut buf = Vec::new();
        m.encode(&mut Encoder::new(&mut buf)).unwrap();
        sock.send_to(&buf, to).unwrap();
        let deadline = std::time::Instant::now() + wait;
        let mut replies = Vec::new();
        let mut rbuf = [0u8; 1500];
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match sock.recv_from(&mut rbuf) {
                Ok((n, _)) => {
                    if let Ok(r) = Message::decode(&mut Decoder::new(&rbuf[..n]))
                        && r.xid() == 0xC0FFEE
                        && r.opcode() == Opcode::BootReply
                    {
                        replies.push(r);
                    }
                }
                Err(_) => break,
            }
        }
        replies
    })
}

fn file_opt(m: &Message) -> Option<String> {
    match m.opts().get(OptionCode::BootfileName) {
        Some(DhcpOption::BootfileName(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_dhcp_answers_beside_dnsmasq() {
    let dnsmasq = tool("dnsmasq", "dnsmasq-base");
    let mut lab = Lab::new();
    let other = lab.peer("dns");
    other.ip(&["addr", "add", "10.99.0.2/24", "dev", "eth0"]);
    let cli = lab.peer("cli");
    cli.ip(&["link", "set", "eth0", "address", MAC]);
    let dir = tempfile::tempdir().unwrap();
    let _dnsmasq = ChildGuard(
        other
            .command(&dnsmasq)
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--port=0",
                "--interface=eth0",
                "--bind-interfaces",
                "--dhcp-range=10.99.0.100,10.99.0.150,255.255.255.0,1h",
                "--dhcp-authoritative",
                // Broadcast replies: its unicast offers to a client without an
                // address do not reach udhcpc across the veth pairs here.
                "--dhcp-broadcast",
            ])
            .arg(format!(
                "--dhcp-leasefile={}",
                dir.path().join("leases").display()
            ))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg("--log-dhcp")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("dnsmasq.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let res = Arc::new(Reservations::default());
    res.insert(reservation(None));
    let _proxy = start(&lab, DhcpConfig::proxy(SERVER_IP), Arc::clone(&res));
    let dnsmasq_log =
        || std::fs::read_to_string(dir.path().join("dnsmasq.log")).unwrap_or_default();
    // dnsmasq logs its DHCP range once its sockets are bound.
    for _ in 0..100 {
        if dnsmasq_log().contains("DHCP, sockets bound") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A plain client (udhcpc) is left to dnsmasq: the proxy stays silent.
    let env = tokio::task::block_in_place(|| udhcpc(&cli, &[]))
        .unwrap_or_else(|| panic!("no lease from dnsmasq: {}", dnsmasq_log()));
    assert_eq!(env.get("serverid").map(String::as_str), Some("10.99.0.2"));
    assert!(env.get("ip").unwrap().starts_with("10.99.0.1"), "{env:?}");
    assert!(!env.contains_key("bootfile"), "{env:?}");

    // A PXE client hears both: an address from dnsmasq, boot options from us.
    let replies = tokio::task::block_in_place(|| {
        pxe_exchange(
            &cli,
            "255.255.255.255:67".parse().unwrap(),
            MessageType::Discover,
            Duration::from_secs(3),
        )
    });
    let sid = |m: &Message| match m.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(a)) => Some(*a),
        _ => None,
    };
    let from_dnsmasq = replies
        .iter()
        .find(|m| sid(m) == Some(Ipv4Addr::new(10, 99, 0, 2)))
        .unwrap_or_else(|| panic!("no offer from dnsmasq: {replies:?}"));
    assert!(!from_dnsmasq.yiaddr().is_unspecified());
    let proxy = replies
        .iter()
        .find(|m| sid(m) == Some(SERVER_IP))
        .unwrap_or_else(|| panic!("no ProxyDHCP offer: {replies:?}"));
    assert_eq!(proxy.opts().msg_type(), Some(MessageType::Offer));
    assert!(proxy.yiaddr().is_unspecified());
    assert_eq!(file_opt(proxy).as_deref(), Some("undionly.kpxe"));
    assert_eq!(proxy.siaddr(), SERVER_IP);
    assert!(matches!(
        proxy.opts().get(OptionCode::ClassIdentifier),
        Some(DhcpOption::ClassIdentifier(v)) if v == b"PXEClient"
    ));

    // Then the PXE client asks the proxy on port 4011 and gets an ACK.
    cli.ip(&["addr", "add", "10.99.0.50/24", "dev", "eth0"]);
    let acks = tokio::task::block_in_place(|| {
        pxe_exchange(
            &cli,
            "10.99.0.1:4011".parse().unwrap(),
            MessageType::Request,
            Duration::from_secs(2),
        )
    });
    let ack = acks.first().unwrap_or_else(|| panic!("no ACK on 4011"));
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(file_opt(ack).as_deref(), Some("undionly.kpxe"));
}
