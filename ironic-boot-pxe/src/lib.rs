#![doc = include_str!("../README.md")]

mod config;
pub mod dhcp;
mod error;
pub mod files;
pub mod http;
mod http_boot;
mod ipxe;
mod netboot;
mod network;
mod pxe;
pub mod render;
pub mod tftp;
mod tftp_proto;

use std::sync::Arc;

use ironic_core::InterfaceRegistry;

pub use config::{ProvisioningDhcp, PxeConfig};
pub use dhcp::{
    BootOptions, DhcpBind, DhcpConfig, DhcpMode, DhcpServer, Reservation, Reservations,
};
pub use files::{BootFile, BootFiles, OpenError};
pub use http::{HttpBootServer, router};
pub use http_boot::HttpBoot;
pub use ipxe::IpxeBoot;
pub use network::DhcpNetwork;
pub use pxe::PxeBoot;
pub use tftp::{TftpOptions, TftpServer, TftpStats};

/// The crate's name, for logs.
pub const NAME: &str = "ironic-boot-pxe";

/// Register the boot interfaces `pxe`, `ipxe` and `http`, and the network
/// interface `flat` ([`DhcpNetwork`]: it drives this process's DHCP server when
/// `config.dhcp` is set, else DHCP is someone else's). Also publishes the generic
/// `boot.ipxe` script.
///
/// The servers are not started here: bind a [`TftpServer`], an
/// [`HttpBootServer`] (or mount [`router`]) and a [`DhcpServer`] over the same
/// [`BootFiles`] and [`Reservations`].
pub fn register(registry: &mut InterfaceRegistry, config: PxeConfig) {
    let _ = config.files.insert("boot.ipxe", render::BOOT_IPXE);
    let dhcp = config.dhcp.clone();
    let cfg = Arc::new(config);
    registry
        .register_boot(PxeBoot::NAME, Arc::new(PxeBoot::new(Arc::clone(&cfg))))
        .register_boot(IpxeBoot::NAME, Arc::new(IpxeBoot::new(Arc::clone(&cfg))))
        .register_boot(HttpBoot::NAME, Arc::new(HttpBoot::new(Arc::clone(&cfg))));
    registry.register_network(DhcpNetwork::NAME, network::shared(dhcp));
}
