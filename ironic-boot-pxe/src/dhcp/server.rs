//! The DHCP server's sockets and receive loops.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use super::logic::{self, Ignored, Port};
use super::{DhcpConfig, DhcpMode, Reservations};

/// Where the server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhcpBind {
    /// The interface to serve (`SO_BINDTODEVICE`). Needed to receive and send
    /// broadcasts, i.e. for every real client; without it only relayed
    /// (giaddr) and unicast requests are answered.
    pub interface: Option<String>,
    /// Address to bind; `0.0.0.0` with an interface.
    pub addr: Ipv4Addr,
    /// The DHCP port, 67.
    pub port: u16,
    /// The PXE port, 4011 (proxy mode only).
    pub pxe_port: u16,
}

impl DhcpBind {
    /// Ports 67 (and 4011) on an interface.
    pub fn interface(name: impl Into<String>) -> Self {
        DhcpBind {
            interface: Some(name.into()),
            addr: Ipv4Addr::UNSPECIFIED,
            port: 67,
            pxe_port: 4011,
        }
    }
}

/// A running DHCP server (or ProxyDHCP). Stops when dropped.
pub struct DhcpServer {
    addrs: Vec<SocketAddr>,
    tasks: JoinSet<()>,
}

impl fmt::Debug for DhcpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DhcpServer")
            .field("addrs", &self.addrs)
            .finish()
    }
}

fn udp_socket(bind: &DhcpBind, port: u16) -> io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_broadcast(true)?;
    if let Some(dev) = &bind.interface {
        s.bind_device(Some(dev.as_bytes()))?;
    }
    s.bind(&SocketAddr::V4(SocketAddrV4::new(bind.addr, port)).into())?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

impl DhcpServer {
    /// Bind and serve in tokio tasks (call inside a tokio runtime). In proxy
    /// mode the PXE port is bound too.
    pub fn bind(
        config: DhcpConfig,
        bind: DhcpBind,
        reservations: Arc<Reservations>,
    ) -> io::Result<DhcpServer> {
        let config = Arc::new(config);
        let mut sockets = vec![(Port::Dhcp, udp_socket(&bind, bind.port)?)];
        if config.mode == DhcpMode::Proxy {
            sockets.push((Port::Pxe, udp_socket(&bind, bind.pxe_port)?));
        }
        let mut tasks = JoinSet::new();
        let mut addrs = Vec::new();
        for (port, std_sock) in sockets {
            let sock = UdpSocket::from_std(std_sock)?;
            addrs.push(sock.local_addr()?);
            let config = Arc::clone(&config);
            let reservations = Arc::clone(&reservations);
            let has_device = bind.interface.is_some();
            tasks.spawn(serve(sock, port, config, reservations, has_device));
        }
        tracing::info!(addrs = ?addrs, interface = ?bind.interface, mode = ?config.mode, "DHCP server listening");
        Ok(DhcpServer { addrs, tasks })
    }

    /// The bound addresses (DHCP first, then PXE in proxy mode).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }
}

impl Drop for DhcpServer {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

async fn serve(
    sock: UdpSocket,
    port: Port,
    config: Arc<DhcpConfig>,
    reservations: Arc<Reservations>,
    has_device: bool,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        let (len, from) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "DHCP receive failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let SocketAddr::V4(from) = from else {
            continue;
        };
        let reply = match logic::handle(&config, &reservations, port, from, &buf[..len]) {
            Ok(r) => r,
            Err(Ignored::UnknownMac(mac)) => {
                tracing::debug!(%mac, "DHCP request from an unknown MAC ignored");
                continue;
            }
            Err(why) => {
                tracing::debug!(?why, %from, "DHCP packet ignored");
                continue;
            }
        };
        let Some(bytes) = reply.encode() else {
            tracing::warn!("DHCP reply could not be encoded");
            continue;
        };
        let to = match reply.to {
            Some(to) => to,
            None if has_device => SocketAddrV4::new(Ipv4Addr::BROADCAST, 68),
            None if !from.ip().is_unspecified() => SocketAddrV4::new(*from.ip(), 68),
            None => {
                tracing::warn!("DHCP reply needs a broadcast but no interface is configured");
                continue;
            }
        };
        tracing::debug!(
            kind = ?reply.kind,
            mac = ?reply.message.chaddr(),
            yiaddr = %reply.message.yiaddr(),
            msg = ?reply.message.opts().msg_type(),
            %to,
            "DHCP reply"
        );
        if let Err(e) = sock.send_to(&bytes, to).await {
            tracing::warn!(error = %e, %to, "DHCP send failed");
        }
    }
}
