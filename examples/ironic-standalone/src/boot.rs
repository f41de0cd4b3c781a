//! The boot servers of `ironic serve` and `ironic lab`, from `[boot]`: the file set
//! they share with the boot interfaces (iPXE binaries, per-node scripts, kernels,
//! ramdisks and ISOs), the HTTP boot server (on the API's port under `/boot`, or on
//! its own address), the TFTP server and the DHCP server or ProxyDHCP.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ironic_boot_pxe::{
    BootFiles, DhcpBind, DhcpConfig, DhcpMode, DhcpServer, HttpBootServer, ProvisioningDhcp,
    Reservations, TftpOptions, TftpServer,
};

use crate::config::{Config, DhcpModeConfig};
use crate::server::ServeError;

/// What the boot servers and the boot interfaces share, resolved from `[boot]`
/// once the API's address is known.
#[derive(Clone, Debug)]
pub struct BootPlan {
    /// Files handed out over TFTP and HTTP.
    pub files: Arc<BootFiles>,
    /// Host reservations of the DHCP server (empty without one).
    pub reservations: Arc<Reservations>,
    /// The HTTP boot server's base URL as nodes see it; `None` when the API
    /// listens on a wildcard address and `[boot] address` is unset.
    pub http_url: Option<String>,
    /// The TFTP server's address as nodes see it.
    pub tftp_address: Option<Ipv4Addr>,
    /// The DHCP provider of the `flat` network, when this process runs DHCP.
    pub dhcp: Option<ProvisioningDhcp>,
}

fn boot_err(msg: impl Into<String>) -> ServeError {
    ServeError::Boot(msg.into())
}

/// Resolve `[boot]` for an API listening on `api`: open the boot root, publish
/// the iPXE binaries (a missing one is an error when TFTP or DHCP would hand it
/// out), compute the URLs nodes use.
pub fn plan(cfg: &Config, api: SocketAddr) -> Result<BootPlan, ServeError> {
    let b = &cfg.boot;
    let files = match &b.root {
        Some(root) => BootFiles::new(Some(root)).map_err(|e| {
            boot_err(format!(
                "boot.root {}: {e} (a directory of files to serve over TFTP and HTTP)",
                root.display()
            ))
        })?,
        None => BootFiles::new(None).map_err(|e| boot_err(e.to_string()))?,
    };
    let needs_ipxe = b.tftp.enabled || b.dhcp.mode != DhcpModeConfig::Off;
    let mut nbps = vec![
        b.bios_nbp.as_str(),
        b.uefi_nbp.as_str(),
        b.uefi_http_nbp.as_str(),
    ];
    nbps.dedup();
    for nbp in nbps {
        let path = b.ipxe_dir.join(nbp);
        match check_file(&path) {
            Ok(()) => files
                .link(nbp, &path)
                .map_err(|e| boot_err(e.to_string()))?,
            Err(e) if needs_ipxe => {
                return Err(boot_err(format!(
                    "the iPXE binary {} is not usable ({e}): install Debian's ipxe package (`apt-get install ipxe`) or set boot.ipxe_dir",
                    path.display()
                )));
            }
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "iPXE binary not published (no TFTP or DHCP configured)")
            }
        }
    }
    let reservations = Arc::new(Reservations::default());
    let dhcp = match b.dhcp.mode {
        DhcpModeConfig::Off => None,
        DhcpModeConfig::Server => Some(ProvisioningDhcp {
            reservations: reservations.clone(),
            mode: DhcpMode::Server,
            pool: (
                b.dhcp.pool_start.unwrap_or(Ipv4Addr::UNSPECIFIED),
                b.dhcp.pool_end.unwrap_or(Ipv4Addr::UNSPECIFIED),
            ),
        }),
        DhcpModeConfig::Proxy => Some(ProvisioningDhcp {
            reservations: reservations.clone(),
            mode: DhcpMode::Proxy,
            pool: (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED),
        }),
    };
    Ok(BootPlan {
        files,
        reservations,
        http_url: b.http_url(api),
        tftp_address: b.tftp_address(),
        dhcp,
    })
}

fn check_file(path: &Path) -> std::io::Result<()> {
    let f = std::fs::File::open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(())
}

/// The boot servers started from `[boot]`; they stop when dropped.
#[derive(Debug, Default)]
pub struct BootServers {
    /// The TFTP server.
    pub tftp: Option<TftpServer>,
    /// The DHCP server or ProxyDHCP.
    pub dhcp: Option<DhcpServer>,
    /// The HTTP boot server on its own address (None: mounted on the API).
    pub http: Option<HttpBootServer>,
}

fn bind_err(what: &str, addr: impl std::fmt::Display, e: std::io::Error) -> ServeError {
    let hint = match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        }
        std::io::ErrorKind::AddrInUse => " (another server, e.g. dnsmasq or tftpd, holds it)",
        _ => "",
    };
    boot_err(format!("cannot start the {what} on {addr}: {e}{hint}"))
}

/// Start the servers `[boot]` asks for (call inside a tokio runtime).
pub async fn start(cfg: &Config, plan: &BootPlan) -> Result<BootServers, ServeError> {
    let b = &cfg.boot;
    let mut servers = BootServers::default();
    if let Some(listen) = b.http.listen {
        let http = HttpBootServer::bind(listen, ironic_boot_pxe::router(plan.files.clone()))
            .await
            .map_err(|e| bind_err("HTTP boot server", listen, e))?;
        tracing::info!(listen = %http.local_addr(), url = ?plan.http_url, "HTTP boot server running");
        servers.http = Some(http);
    }
    if b.tftp.enabled {
        let tftp = TftpServer::bind(b.tftp.listen, plan.files.clone(), TftpOptions::default())
            .map_err(|e| bind_err("TFTP server", b.tftp.listen, e))?;
        tracing::info!(listen = %tftp.local_addr(), "TFTP server running");
        servers.tftp = Some(tftp);
    }
    if b.dhcp.mode != DhcpModeConfig::Off {
        // Config::check made sure of these.
        let server_ip = b
            .address
            .ok_or_else(|| boot_err("boot.dhcp needs boot.address"))?;
        let interface = b
            .dhcp
            .interface
            .clone()
            .ok_or_else(|| boot_err("boot.dhcp needs boot.dhcp.interface"))?;
        let config = DhcpConfig {
            mode: match b.dhcp.mode {
                DhcpModeConfig::Proxy => DhcpMode::Proxy,
                _ => DhcpMode::Server,
            },
            server_ip,
            subnet_mask: b.dhcp.subnet_mask,
            router: b.dhcp.router,
            dns_servers: b.dhcp.dns_servers.clone(),
            lease_time: Duration::from_secs(b.dhcp.lease_time),
        };
        let dhcp = DhcpServer::bind(
            config,
            DhcpBind::interface(interface.clone()),
            plan.reservations.clone(),
        )
        .map_err(|e| bind_err("DHCP server", format!("interface {interface}"), e))?;
        tracing::info!(interface = %interface, mode = ?b.dhcp.mode, "DHCP running");
        servers.dhcp = Some(dhcp);
        if !b.tftp.enabled {
            tracing::warn!(
                "DHCP runs but TFTP does not: PXE ROMs that are not iPXE need a TFTP server for the iPXE binary ([boot.tftp] enabled = true)"
            );
        }
    }
    Ok(servers)
}
