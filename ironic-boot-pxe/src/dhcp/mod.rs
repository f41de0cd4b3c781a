//! DHCP for the provisioning network: a server with per-port host
//! reservations, or a ProxyDHCP beside a DHCP server that already exists.
//!
//! Only MACs with a [`Reservation`] get an answer; everything else is left to
//! whatever else runs on the segment. The boot file follows the client:
//!
//! | client (options 60 / 77 / 93) | boot file |
//! |---|---|
//! | PXE ROM, BIOS (arch 0) | [`BootOptions::bios_file`] over TFTP from `next_server` |
//! | PXE, UEFI (arch 6, 7, 9, 11, ...) | [`BootOptions::uefi_file`] over TFTP |
//! | UEFI HTTP boot (`HTTPClient`, arch 15, 16, 19) | [`BootOptions::http_boot_url`] |
//! | iPXE (user class `iPXE`) | [`BootOptions::ipxe_script`] |
//! | anything else | an address only (server mode); nothing (proxy mode) |
//!
//! In [`DhcpMode::Proxy`] the server hands out no addresses: it answers PXE
//! DISCOVERs on port 67 with boot options only (option 60 `PXEClient`, 43, 66,
//! 67) and the PXE clients' REQUESTs on port 4011.

mod logic;
mod server;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::RwLock;
use std::time::Duration;

use ironic_core::MacAddress;

pub use logic::{ClientKind, boot_file, classify};
pub use server::{DhcpBind, DhcpServer};

/// Server or ProxyDHCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DhcpMode {
    /// Hand out the reserved addresses and the boot options.
    #[default]
    Server,
    /// Another server hands out addresses; answer PXE clients with boot options
    /// only (ports 67 and 4011).
    Proxy,
}

/// Network-wide settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhcpConfig {
    /// Server or proxy.
    pub mode: DhcpMode,
    /// This server's address on the segment (option 54).
    pub server_ip: Ipv4Addr,
    /// Option 1 (server mode).
    pub subnet_mask: Ipv4Addr,
    /// Option 3 (server mode).
    pub router: Option<Ipv4Addr>,
    /// Option 6 (server mode).
    pub dns_servers: Vec<Ipv4Addr>,
    /// Option 51 (server mode).
    pub lease_time: Duration,
}

impl DhcpConfig {
    /// A server on `server_ip`/24 with one-hour leases and no router.
    pub fn server(server_ip: Ipv4Addr) -> Self {
        DhcpConfig {
            mode: DhcpMode::Server,
            server_ip,
            subnet_mask: Ipv4Addr::new(255, 255, 255, 0),
            router: None,
            dns_servers: Vec::new(),
            lease_time: Duration::from_secs(3600),
        }
    }

    /// A ProxyDHCP on `server_ip`.
    pub fn proxy(server_ip: Ipv4Addr) -> Self {
        DhcpConfig {
            mode: DhcpMode::Proxy,
            ..Self::server(server_ip)
        }
    }
}

/// What a reserved host boots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootOptions {
    /// TFTP server (siaddr, option 66).
    pub next_server: Ipv4Addr,
    /// NBP for BIOS PXE ROMs, e.g. `undionly.kpxe`.
    pub bios_file: String,
    /// NBP for UEFI PXE, e.g. `snponly.efi`.
    pub uefi_file: String,
    /// What iPXE gets: the URL of its script (`http://...` or `tftp://...`).
    pub ipxe_script: Option<String>,
    /// What a UEFI HTTP boot client gets: the URL of an EFI binary.
    pub http_boot_url: Option<String>,
}

/// A host reservation: one MAC, its address and what it boots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// The port's MAC address.
    pub mac: MacAddress,
    /// The address to hand out (required in server mode, unused by a proxy).
    pub ip: Option<Ipv4Addr>,
    /// Option 12.
    pub hostname: Option<String>,
    /// Boot options; `None` = an address only (server mode) or no answer (proxy).
    pub boot: Option<BootOptions>,
}

/// The reservations a [`DhcpServer`] answers for; shared with whoever adds and
/// removes them (the DHCP network interface).
#[derive(Debug, Default)]
pub struct Reservations {
    by_mac: RwLock<HashMap<MacAddress, Reservation>>,
}

impl Reservations {
    /// Add or replace the reservation for its MAC. Returns the one replaced.
    pub fn insert(&self, r: Reservation) -> Option<Reservation> {
        self.by_mac
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(r.mac, r)
    }

    /// Remove a MAC's reservation.
    pub fn remove(&self, mac: &MacAddress) -> Option<Reservation> {
        self.by_mac
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(mac)
    }

    /// A MAC's reservation.
    pub fn get(&self, mac: &MacAddress) -> Option<Reservation> {
        self.by_mac
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(mac)
            .cloned()
    }

    /// The reservation holding `ip`, if any.
    pub fn by_ip(&self, ip: Ipv4Addr) -> Option<Reservation> {
        self.by_mac
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .find(|r| r.ip == Some(ip))
            .cloned()
    }

    /// Set (or clear) the boot options of a MAC. Creates a reservation without an
    /// address if there is none (enough for a ProxyDHCP). Returns whether the MAC
    /// has a reservation afterwards.
    pub fn set_boot(&self, mac: MacAddress, boot: Option<BootOptions>) -> bool {
        let mut map = self.by_mac.write().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&mac) {
            Some(r) => {
                r.boot = boot;
                true
            }
            None if boot.is_some() => {
                map.insert(
                    mac,
                    Reservation {
                        mac,
                        ip: None,
                        hostname: None,
                        boot,
                    },
                );
                true
            }
            None => false,
        }
    }

    /// Give `mac` an address from `first..=last` (keeping the one it has), in
    /// one step under the lock so two nodes never get the same address.
    pub fn reserve(
        &self,
        mac: MacAddress,
        first: Ipv4Addr,
        last: Ipv4Addr,
        hostname: Option<String>,
    ) -> Result<Ipv4Addr, String> {
        let mut map = self.by_mac.write().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = map.get_mut(&mac)
            && let Some(ip) = r.ip
        {
            r.hostname = hostname;
            return Ok(ip);
        }
        let used: std::collections::HashSet<Ipv4Addr> = map.values().filter_map(|r| r.ip).collect();
        let ip = (u32::from(first)..=u32::from(last))
            .map(Ipv4Addr::from)
            .find(|ip| !used.contains(ip))
            .ok_or_else(|| format!("the pool {first}-{last} is exhausted"))?;
        let entry = map.entry(mac).or_insert(Reservation {
            mac,
            ip: None,
            hostname: None,
            boot: None,
        });
        entry.ip = Some(ip);
        entry.hostname = hostname;
        Ok(ip)
    }

    /// All reservations, sorted by MAC.
    pub fn list(&self) -> Vec<Reservation> {
        let mut v: Vec<Reservation> = self
            .by_mac
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|r| r.mac);
        v
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.by_mac.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
