//! What to answer to one DHCP packet: pure and synchronous, no sockets.

use std::net::{Ipv4Addr, SocketAddrV4};

use dhcproto::v4::{
    Architecture, DhcpOption, DhcpOptions, Flags, HType, Message, MessageType, Opcode, OptionCode,
};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use ironic_core::MacAddress;

use super::{BootOptions, DhcpConfig, DhcpMode, Reservation, Reservations};

/// Which of the server's sockets a packet came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Port {
    /// The DHCP port (67).
    Dhcp,
    /// The PXE boot server port (4011, ProxyDHCP requests).
    Pxe,
}

/// The kind of boot loader that sent a request, from options 60, 77 and 93.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// Not a network-boot client (an OS's DHCP client, udhcpc, ...).
    Plain,
    /// A legacy BIOS PXE ROM (architecture 0).
    PxeBios,
    /// A UEFI PXE client (architectures 6, 7, 9, 11, ...).
    PxeUefi,
    /// A UEFI HTTP boot client (vendor class `HTTPClient`, architectures 15, 16, 19, ...).
    UefiHttp,
    /// iPXE (user class `iPXE`), whatever the firmware below it.
    Ipxe,
}

/// Classify a request.
pub fn classify(opts: &DhcpOptions) -> ClientKind {
    let vendor = match opts.get(OptionCode::ClassIdentifier) {
        Some(DhcpOption::ClassIdentifier(v)) => v.as_slice(),
        _ => &[],
    };
    if let Some(DhcpOption::UserClass(uc)) = opts.get(OptionCode::UserClass)
        && is_ipxe_user_class(uc)
    {
        return ClientKind::Ipxe;
    }
    let arch = match opts.get(OptionCode::ClientSystemArchitecture) {
        Some(DhcpOption::ClientSystemArchitecture(Architecture(a))) => Some(*a),
        _ => None,
    };
    if vendor.starts_with(b"HTTPClient") || matches!(arch, Some(15 | 16 | 18 | 19)) {
        return ClientKind::UefiHttp;
    }
    if vendor.starts_with(b"PXEClient") || arch.is_some() {
        return match arch {
            None | Some(0) => ClientKind::PxeBios,
            Some(_) => ClientKind::PxeUefi,
        };
    }
    ClientKind::Plain
}

/// Option 77 as iPXE sends it (`iPXE`), or in RFC 3004 form (length-prefixed classes).
fn is_ipxe_user_class(uc: &[u8]) -> bool {
    if uc == b"iPXE" {
        return true;
    }
    let mut rest = uc;
    while let Some((&len, tail)) = rest.split_first() {
        let len = len as usize;
        if len > tail.len() {
            return false;
        }
        if &tail[..len] == b"iPXE" {
            return true;
        }
        rest = &tail[len..];
    }
    false
}

/// The boot file a client of `kind` gets, if any.
pub fn boot_file(boot: &BootOptions, kind: ClientKind) -> Option<&str> {
    match kind {
        ClientKind::Plain => None,
        ClientKind::PxeBios => Some(boot.bios_file.as_str()),
        ClientKind::PxeUefi => Some(boot.uefi_file.as_str()),
        ClientKind::UefiHttp => boot.http_boot_url.as_deref(),
        ClientKind::Ipxe => boot.ipxe_script.as_deref(),
    }
    .filter(|s| !s.is_empty())
}

/// A reply to send.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) message: Message,
    /// What the client was taken for.
    pub(crate) kind: ClientKind,
    /// Where to send it; `None` = broadcast to port 68 on the interface.
    pub(crate) to: Option<SocketAddrV4>,
}

impl Reply {
    pub(crate) fn encode(&self) -> Option<Vec<u8>> {
        let mut buf = Vec::with_capacity(600);
        self.message.encode(&mut Encoder::new(&mut buf)).ok()?;
        Some(buf)
    }
}

/// Why a packet got no answer (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ignored {
    Malformed(String),
    NotARequest,
    UnknownMac(MacAddress),
    NotForUs,
    NotBooting,
    Unhandled(String),
}

/// Walk the option area before the decoder sees it: every option must fit in
/// the packet, and options with a fixed size must have it (the decoder
/// asserts some sizes instead of checking them). Split options (RFC 3396) are
/// checked on their total length, as the decoder joins them.
fn precheck(data: &[u8]) -> Result<(), String> {
    const COOKIE: [u8; 4] = [99, 130, 83, 99];
    if data.len() < 240 {
        return Err(format!(
            "{} bytes is too short for a DHCP message",
            data.len()
        ));
    }
    if data[236..240] != COOKIE {
        return Err("no DHCP magic cookie".into());
    }
    // (code, total length) of the current run of consecutive same-code options.
    let mut run: Option<(u8, usize)> = None;
    let mut i = 240;
    while i < data.len() {
        let code = data[i];
        if code == 0 || code == 255 {
            check_option_length(run.take())?;
            if code == 255 {
                break;
            }
            i += 1;
            continue;
        }
        let Some(&len) = data.get(i + 1) else {
            return Err(format!("option {code} has no length"));
        };
        let end = i + 2 + len as usize;
        if end > data.len() {
            return Err(format!("option {code} runs past the end of the packet"));
        }
        run = match run {
            Some((c, total)) if c == code => Some((c, total + len as usize)),
            other => {
                check_option_length(other)?;
                Some((code, len as usize))
            }
        };
        i = end;
    }
    check_option_length(run)
}

fn check_option_length(run: Option<(u8, usize)>) -> Result<(), String> {
    let Some((code, len)) = run else {
        return Ok(());
    };
    let ok = match code {
        53 => len == 1,
        80 => len == 0,
        81 => len >= 3,
        93 => len >= 2 && len % 2 == 0,
        94 => len == 3,
        151 => len >= 1,
        152..=155 => len == 4,
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("option {code} has a bad length {len}"))
    }
}

/// Decode a packet and decide the answer.
pub(crate) fn handle(
    config: &DhcpConfig,
    reservations: &Reservations,
    port: Port,
    source: SocketAddrV4,
    data: &[u8],
) -> Result<Reply, Ignored> {
    precheck(data).map_err(Ignored::Malformed)?;
    let msg =
        Message::decode(&mut Decoder::new(data)).map_err(|e| Ignored::Malformed(e.to_string()))?;
    if msg.opcode() != Opcode::BootRequest {
        return Err(Ignored::NotARequest);
    }
    if msg.htype() != HType::Eth || msg.hlen() != 6 || msg.chaddr().len() < 6 {
        return Err(Ignored::Malformed(
            "not an Ethernet hardware address".into(),
        ));
    }
    let mut octets = [0u8; 6];
    octets.copy_from_slice(&msg.chaddr()[..6]);
    let mac = MacAddress(octets);
    let Some(res) = reservations.get(&mac) else {
        return Err(Ignored::UnknownMac(mac));
    };
    let Some(mtype) = msg.opts().msg_type() else {
        return Err(Ignored::Malformed("no message type (option 53)".into()));
    };
    let kind = classify(msg.opts());
    match (config.mode, port, mtype) {
        (DhcpMode::Server, Port::Dhcp, MessageType::Discover) => {
            let ip = res.ip.ok_or(Ignored::NotForUs)?;
            Ok(reply(
                config,
                &res,
                &msg,
                kind,
                MessageType::Offer,
                Some(ip),
                port,
                source,
            ))
        }
        (DhcpMode::Server, Port::Dhcp, MessageType::Request) => {
            let ip = res.ip.ok_or(Ignored::NotForUs)?;
            if let Some(DhcpOption::ServerIdentifier(sid)) =
                msg.opts().get(OptionCode::ServerIdentifier)
                && *sid != config.server_ip
            {
                // The client took another server's offer.
                return Err(Ignored::NotForUs);
            }
            let asked = match msg.opts().get(OptionCode::RequestedIpAddress) {
                Some(DhcpOption::RequestedIpAddress(a)) => *a,
                _ => msg.ciaddr(),
            };
            if asked == ip {
                Ok(reply(
                    config,
                    &res,
                    &msg,
                    kind,
                    MessageType::Ack,
                    Some(ip),
                    port,
                    source,
                ))
            } else {
                Ok(nak(config, &msg))
            }
        }
        (DhcpMode::Server, Port::Dhcp, MessageType::Inform) => Ok(reply(
            config,
            &res,
            &msg,
            kind,
            MessageType::Ack,
            None,
            port,
            source,
        )),
        (DhcpMode::Proxy, Port::Dhcp, MessageType::Discover) => {
            if kind == ClientKind::Plain || res.boot.is_none() {
                return Err(Ignored::NotBooting);
            }
            Ok(reply(
                config,
                &res,
                &msg,
                kind,
                MessageType::Offer,
                None,
                port,
                source,
            ))
        }
        (DhcpMode::Proxy, Port::Pxe, MessageType::Request)
        | (DhcpMode::Proxy, Port::Pxe, MessageType::Inform) => {
            if kind == ClientKind::Plain || res.boot.is_none() {
                return Err(Ignored::NotBooting);
            }
            Ok(reply(
                config,
                &res,
                &msg,
                kind,
                MessageType::Ack,
                None,
                port,
                source,
            ))
        }
        (_, _, t) => Err(Ignored::Unhandled(format!("{t:?} on {port:?}"))),
    }
}

#[allow(clippy::too_many_arguments)]
fn reply(
    config: &DhcpConfig,
    res: &Reservation,
    req: &Message,
    kind: ClientKind,
    mtype: MessageType,
    yiaddr: Option<Ipv4Addr>,
    port: Port,
    source: SocketAddrV4,
) -> Reply {
    let mut m = Message::default();
    m.set_opcode(Opcode::BootReply)
        .set_htype(HType::Eth)
        .set_xid(req.xid())
        .set_flags(req.flags())
        .set_giaddr(req.giaddr())
        .set_ciaddr(req.ciaddr())
        .set_yiaddr(yiaddr.unwrap_or(Ipv4Addr::UNSPECIFIED))
        .set_chaddr(req.chaddr());
    let boot = res.boot.as_ref().filter(|_| kind != ClientKind::Plain);
    if let Some(b) = boot {
        m.set_siaddr(b.next_server);
    }
    let opts = m.opts_mut();
    opts.insert(DhcpOption::MessageType(mtype));
    opts.insert(DhcpOption::ServerIdentifier(config.server_ip));
    if config.mode == DhcpMode::Server {
        if yiaddr.is_some() {
            opts.insert(DhcpOption::AddressLeaseTime(
                config.lease_time.as_secs().min(u32::MAX as u64) as u32,
            ));
        }
        opts.insert(DhcpOption::SubnetMask(config.subnet_mask));
        if let Some(r) = config.router {
            opts.insert(DhcpOption::Router(vec![r]));
        }
        if !config.dns_servers.is_empty() {
            opts.insert(DhcpOption::DomainNameServer(config.dns_servers.clone()));
        }
        if let Some(h) = &res.hostname {
            opts.insert(DhcpOption::Hostname(h.clone()));
        }
    }
    match kind {
        _ if boot.is_none() => {}
        // A ProxyDHCP offer must say PXEClient (option 60) and carry PXE vendor
        // options (43: discovery control 8 = boot the file name given, PXE spec
        // 2.1). A server's offer must not: UEFI PXE (EDK2) takes a PXEClient
        // offer without a boot menu for a BINL offer and asks port 4011, where
        // a plain server does not listen; without option 60 it boots the file.
        ClientKind::PxeBios | ClientKind::PxeUefi if config.mode == DhcpMode::Proxy => {
            opts.insert(DhcpOption::ClassIdentifier(b"PXEClient".to_vec()));
            opts.insert(DhcpOption::VendorExtensions(vec![6, 1, 8, 255]));
        }
        ClientKind::UefiHttp => {
            opts.insert(DhcpOption::ClassIdentifier(b"HTTPClient".to_vec()));
        }
        ClientKind::Ipxe if config.mode == DhcpMode::Proxy => {
            opts.insert(DhcpOption::ClassIdentifier(b"PXEClient".to_vec()));
        }
        _ => {}
    }
    if let Some(b) = boot
        && let Some(file) = boot_file(b, kind)
    {
        opts.insert(DhcpOption::TFTPServerName(
            b.next_server.to_string().into_bytes(),
        ));
        opts.insert(DhcpOption::BootfileName(file.as_bytes().to_vec()));
        if file.len() < 128 {
            m.set_fname_str(file);
        }
    }
    let to = if port == Port::Pxe {
        Some(source)
    } else if !req.giaddr().is_unspecified() {
        Some(SocketAddrV4::new(req.giaddr(), 67))
    } else if !req.ciaddr().is_unspecified() && mtype == MessageType::Ack {
        Some(SocketAddrV4::new(req.ciaddr(), 68))
    } else {
        None
    };
    Reply {
        message: m,
        kind,
        to,
    }
}

fn nak(config: &DhcpConfig, req: &Message) -> Reply {
    let mut m = Message::default();
    m.set_opcode(Opcode::BootReply)
        .set_htype(HType::Eth)
        .set_xid(req.xid())
        .set_flags(Flags::default().set_broadcast())
        .set_giaddr(req.giaddr())
        .set_chaddr(req.chaddr());
    m.opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Nak));
    m.opts_mut()
        .insert(DhcpOption::ServerIdentifier(config.server_ip));
    let to = if req.giaddr().is_unspecified() {
        None
    } else {
        Some(SocketAddrV4::new(req.giaddr(), 67))
    };
    Reply {
        message: m,
        kind: classify(req.opts()),
        to,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn config(mode: DhcpMode) -> DhcpConfig {
        DhcpConfig {
            mode,
            server_ip: Ipv4Addr::new(10, 99, 0, 1),
            subnet_mask: Ipv4Addr::new(255, 255, 255, 0),
            router: None,
            dns_servers: vec![],
            lease_time: Duration::from_secs(600),
        }
    }

    fn reservations() -> Reservations {
        let r = Reservations::default();
        r.insert(Reservation {
            mac: "52:54:00:00:00:01".parse().unwrap(),
            ip: Some(Ipv4Addr::new(10, 99, 0, 10)),
            hostname: Some("node-1".into()),
            boot: Some(BootOptions {
                next_server: Ipv4Addr::new(10, 99, 0, 1),
                bios_file: "undionly.kpxe".into(),
                uefi_file: "snponly.efi".into(),
                ipxe_script: Some("http://10.99.0.1:8080/pxelinux.cfg/52-54-00-00-00-01".into()),
                http_boot_url: Some("http://10.99.0.1:8080/snponly.efi".into()),
            }),
        });
        r
    }

    fn discover(mac: [u8; 6], extra: Vec<DhcpOption>) -> Vec<u8> {
        let mut m = Message::default();
        m.set_opcode(Opcode::BootRequest)
            .set_xid(0x1234)
            .set_chaddr(&mac)
            .set_flags(Flags::default().set_broadcast());
        m.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Discover));
        for o in extra {
            m.opts_mut().insert(o);
        }
        let mut buf = Vec::new();
        m.encode(&mut Encoder::new(&mut buf)).unwrap();
        buf
    }

    fn src() -> SocketAddrV4 {
        "0.0.0.0:68".parse().unwrap()
    }

    fn file_of(r: &Reply) -> Option<String> {
        match r.message.opts().get(OptionCode::BootfileName) {
            Some(DhcpOption::BootfileName(b)) => Some(String::from_utf8(b.clone()).unwrap()),
            _ => None,
        }
    }

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];

    #[test]
    fn boot_file_by_architecture_and_user_class() {
        let c = config(DhcpMode::Server);
        let r = reservations();
        let cases: Vec<(Vec<DhcpOption>, Option<&str>)> = vec![
            (vec![], None),
            (
                vec![
                    DhcpOption::ClassIdentifier(b"PXEClient:Arch:00000:UNDI:002001".to_vec()),
                    DhcpOption::ClientSystemArchitecture(Architecture(0)),
                ],
                Some("undionly.kpxe"),
            ),
            (
                vec![
                    DhcpOption::ClassIdentifier(b"PXEClient:Arch:00007:UNDI:003016".to_vec()),
                    DhcpOption::ClientSystemArchitecture(Architecture(7)),
                ],
                Some("snponly.efi"),
            ),
            (
                vec![
                    DhcpOption::ClassIdentifier(b"HTTPClient:Arch:00016:UNDI:003001".to_vec()),
                    DhcpOption::ClientSystemArchitecture(Architecture(16)),
                ],
                Some("http://10.99.0.1:8080/snponly.efi"),
            ),
            (
                vec![
                    DhcpOption::ClientSystemArchitecture(Architecture(7)),
                    DhcpOption::UserClass(b"iPXE".to_vec()),
                ],
                Some("http://10.99.0.1:8080/pxelinux.cfg/52-54-00-00-00-01"),
            ),
        ];
        for (opts, want) in cases {
            let rep = handle(&c, &r, Port::Dhcp, src(), &discover(MAC, opts.clone())).unwrap();
            assert_eq!(file_of(&rep).as_deref(), want, "{opts:?}");
            assert_eq!(rep.message.yiaddr(), Ipv4Addr::new(10, 99, 0, 10));
            assert_eq!(rep.message.opts().msg_type(), Some(MessageType::Offer));
            // A server's PXE offers are plain DHCP offers with a file name.
            if !matches!(want, Some(w) if w.starts_with("http://10.99.0.1:8080/snponly")) {
                assert!(
                    rep.message
                        .opts()
                        .get(OptionCode::ClassIdentifier)
                        .is_none()
                );
            }
        }
    }

    #[test]
    fn unknown_macs_are_ignored() {
        let c = config(DhcpMode::Server);
        let e = handle(
            &c,
            &reservations(),
            Port::Dhcp,
            src(),
            &discover([2, 0, 0, 0, 0, 9], vec![]),
        )
        .unwrap_err();
        assert!(matches!(e, Ignored::UnknownMac(_)));
    }

    #[test]
    fn proxy_answers_only_booting_clients_without_an_address() {
        let c = config(DhcpMode::Proxy);
        let r = reservations();
        assert_eq!(
            handle(&c, &r, Port::Dhcp, src(), &discover(MAC, vec![])).unwrap_err(),
            Ignored::NotBooting
        );
        let rep = handle(
            &c,
            &r,
            Port::Dhcp,
            src(),
            &discover(
                MAC,
                vec![DhcpOption::ClassIdentifier(
                    b"PXEClient:Arch:00000:UNDI:002001".to_vec(),
                )],
            ),
        )
        .unwrap();
        assert_eq!(rep.message.yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(file_of(&rep).as_deref(), Some("undionly.kpxe"));
        assert!(rep.message.opts().get(OptionCode::SubnetMask).is_none());
        assert!(
            rep.message
                .opts()
                .get(OptionCode::VendorExtensions)
                .is_some()
        );
    }

    #[test]
    fn rfc3004_user_class() {
        assert!(is_ipxe_user_class(b"\x04iPXE"));
        assert!(is_ipxe_user_class(b"\x03abc\x04iPXE"));
        assert!(!is_ipxe_user_class(b"\x09iPXE"));
        assert!(!is_ipxe_user_class(b""));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..700)) {
            let _ = handle(&config(DhcpMode::Server), &reservations(), Port::Dhcp, src(), &data);
            let _ = handle(&config(DhcpMode::Proxy), &reservations(), Port::Pxe, src(), &data);
        }

        #[test]
        fn random_options_never_panic(opts in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut d = discover(MAC, vec![]);
            d.truncate(240);
            d.extend_from_slice(&opts);
            let _ = handle(&config(DhcpMode::Server), &reservations(), Port::Dhcp, src(), &d);
        }

        #[test]
        fn random_tlvs_never_panic(tlvs in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..12)), 0..20)) {
            let mut d = discover(MAC, vec![]);
            d.truncate(240);
            d.extend_from_slice(&[53, 1, 1]);
            for (code, body) in tlvs {
                d.push(code);
                d.push(body.len() as u8);
                d.extend_from_slice(&body);
            }
            d.push(255);
            let _ = handle(&config(DhcpMode::Server), &reservations(), Port::Dhcp, src(), &d);
            let _ = handle(&config(DhcpMode::Proxy), &reservations(), Port::Pxe, src(), &d);
        }

        #[test]
        fn mutated_discovers_never_panic(idx in 0usize..400, byte in any::<u8>(), cut in 0usize..400) {
            let mut d = discover(MAC, vec![
                DhcpOption::ClientSystemArchitecture(Architecture(7)),
                DhcpOption::UserClass(b"iPXE".to_vec()),
            ]);
            if idx < d.len() { d[idx] = byte; }
            d.truncate(cut.max(1).min(d.len()));
            let _ = handle(&config(DhcpMode::Server), &reservations(), Port::Dhcp, src(), &d);
        }
    }
}
