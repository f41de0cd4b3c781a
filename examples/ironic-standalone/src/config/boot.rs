//! `[boot]` (the boot servers: HTTP, TFTP, DHCP, and what they hand out) and
//! `[drivers]` (which hardware types and interfaces are enabled, Ironic's
//! `enabled_*` / `default_*` options).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use ironic_core::model::InterfaceType;
use serde::Deserialize;

use super::ConfigError;

/// `[boot]`: how nodes boot the deploy, rescue and inspection ramdisks.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BootSection {
    /// This host's address on the provisioning network, as nodes reach it: the
    /// DHCP server's identifier and next-server, and the host of the default boot
    /// and callback URLs when the API listens on a wildcard address.
    pub address: Option<Ipv4Addr>,
    /// A directory served read-only over TFTP and HTTP beside the generated
    /// per-node files (deploy kernels and ramdisks, images). None: only
    /// generated files and the iPXE binaries.
    pub root: Option<PathBuf>,
    /// Where the iPXE binaries are (Debian's `ipxe` package).
    pub ipxe_dir: PathBuf,
    /// NBP for BIOS PXE ROMs (a file of `ipxe_dir`).
    pub bios_nbp: String,
    /// NBP for UEFI PXE (a file of `ipxe_dir`).
    pub uefi_nbp: String,
    /// EFI binary for UEFI HTTP boot (a file of `ipxe_dir`, served over HTTP).
    pub uefi_http_nbp: String,
    /// Kernel parameters of every ramdisk (Ironic's `[pxe]kernel_append_params`);
    /// a node's `driver_info.kernel_append_params` replaces them.
    pub kernel_append_params: String,
    /// The ramdisk's serial console (`console=` parameter), e.g. `ttyS0,115200n8`.
    pub console: Option<String>,
    /// Deploy kernel of nodes that name none (Ironic's `[conductor]deploy_kernel`).
    pub deploy_kernel: Option<String>,
    /// Deploy ramdisk of nodes that name none (`[conductor]deploy_ramdisk`).
    pub deploy_ramdisk: Option<String>,
    /// `[boot.http]`.
    pub http: BootHttp,
    /// `[boot.tftp]`.
    pub tftp: BootTftp,
    /// `[boot.dhcp]`.
    pub dhcp: BootDhcp,
}

impl Default for BootSection {
    fn default() -> Self {
        BootSection {
            address: None,
            root: None,
            ipxe_dir: PathBuf::from("/usr/lib/ipxe"),
            bios_nbp: "undionly.kpxe".into(),
            uefi_nbp: "snponly.efi".into(),
            uefi_http_nbp: "snponly.efi".into(),
            kernel_append_params: "nofb vga=normal".into(),
            console: None,
            deploy_kernel: None,
            deploy_ramdisk: None,
            http: BootHttp::default(),
            tftp: BootTftp::default(),
            dhcp: BootDhcp::default(),
        }
    }
}

/// `[boot.http]`: the HTTP boot server (iPXE scripts, kernels, ramdisks, ISOs).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BootHttp {
    /// Its own address; None: mounted on the API's port under `/boot`.
    pub listen: Option<SocketAddr>,
    /// Its base URL as nodes and BMCs see it (no trailing slash). Default:
    /// `http://<listen>` or `http://<api>/boot`, with `[boot] address` standing in
    /// for a wildcard listen address.
    pub url: Option<String>,
}

/// `[boot.tftp]`: the TFTP server (PXE ROMs load the iPXE NBP from it; the
/// `pxe` boot interface loads everything from it).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BootTftp {
    /// Start it.
    pub enabled: bool,
    /// Where it listens (port 69 needs root or CAP_NET_BIND_SERVICE).
    pub listen: SocketAddr,
}

impl Default for BootTftp {
    fn default() -> Self {
        BootTftp {
            enabled: false,
            listen: SocketAddr::from(([0, 0, 0, 0], 69)),
        }
    }
}

/// DHCP on the provisioning network.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DhcpModeConfig {
    /// An external DHCP server (dnsmasq, ISC) points nodes at our boot files.
    #[default]
    Off,
    /// This process hands out addresses from `pool_start..=pool_end` to the
    /// ports of nodes being provisioned, with their boot files.
    Server,
    /// A ProxyDHCP beside an existing DHCP server: boot options only (ports 67 and 4011).
    Proxy,
}

/// `[boot.dhcp]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BootDhcp {
    /// `off`, `server` or `proxy`.
    pub mode: DhcpModeConfig,
    /// The network interface to serve (needed to send and receive broadcasts).
    pub interface: Option<String>,
    /// First address handed out (server mode).
    pub pool_start: Option<Ipv4Addr>,
    /// Last address handed out (server mode).
    pub pool_end: Option<Ipv4Addr>,
    /// Subnet mask (option 1).
    pub subnet_mask: Ipv4Addr,
    /// Default gateway (option 3).
    pub router: Option<Ipv4Addr>,
    /// DNS servers (option 6).
    pub dns_servers: Vec<Ipv4Addr>,
    /// Lease time in seconds (option 51).
    pub lease_time: u64,
}

impl Default for BootDhcp {
    fn default() -> Self {
        BootDhcp {
            mode: DhcpModeConfig::Off,
            interface: None,
            pool_start: None,
            pool_end: None,
            subnet_mask: Ipv4Addr::new(255, 255, 255, 0),
            router: None,
            dns_servers: Vec::new(),
            lease_time: 3600,
        }
    }
}

impl BootSection {
    /// Cross-key checks of `[boot]`.
    pub fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if let Some(url) = &self.http.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return bad(format!(
                "boot.http.url must be an http:// or https:// URL, got {url:?}"
            ));
        }
        for (key, v) in [
            ("bios_nbp", &self.bios_nbp),
            ("uefi_nbp", &self.uefi_nbp),
            ("uefi_http_nbp", &self.uefi_http_nbp),
        ] {
            if v.is_empty() || v.contains('/') || v == ".." {
                return bad(format!(
                    "boot.{key} = {v:?}: expected a file name in boot.ipxe_dir"
                ));
            }
        }
        let dhcp = &self.dhcp;
        if dhcp.mode != DhcpModeConfig::Off {
            if dhcp.interface.as_deref().is_none_or(str::is_empty) {
                return bad(format!(
                    "boot.dhcp.mode = {:?} needs boot.dhcp.interface (the provisioning network's interface, e.g. \"eth1\")",
                    dhcp.mode
                ));
            }
            if self.address.is_none() {
                return bad(
                    "boot.dhcp.mode is not \"off\": set boot.address to this host's IPv4 address on the provisioning network"
                        .into(),
                );
            }
        }
        if dhcp.mode == DhcpModeConfig::Server {
            let (Some(a), Some(b)) = (dhcp.pool_start, dhcp.pool_end) else {
                return bad(
                    "boot.dhcp.mode = \"server\" needs boot.dhcp.pool_start and boot.dhcp.pool_end"
                        .into(),
                );
            };
            if u32::from(a) > u32::from(b) {
                return bad(format!(
                    "boot.dhcp.pool_start {a} comes after boot.dhcp.pool_end {b}"
                ));
            }
            let mask = u32::from(dhcp.subnet_mask);
            if mask.leading_ones() + mask.trailing_zeros() != 32 {
                return bad(format!(
                    "boot.dhcp.subnet_mask {} is not a netmask",
                    dhcp.subnet_mask
                ));
            }
            if let Some(server) = self.address {
                let net = |ip: Ipv4Addr| u32::from(ip) & mask;
                for ip in [a, b] {
                    if net(ip) != net(server) {
                        return bad(format!(
                            "boot.dhcp pool address {ip} is not in boot.address {server}'s subnet (mask {})",
                            dhcp.subnet_mask
                        ));
                    }
                }
                if (u32::from(a)..=u32::from(b)).contains(&u32::from(server)) {
                    return bad(format!(
                        "boot.address {server} lies inside the DHCP pool {a}-{b}"
                    ));
                }
            }
        }
        if dhcp.lease_time == 0 {
            return bad("boot.dhcp.lease_time must be at least 1 second".into());
        }
        if self.tftp.enabled
            && self.tftp.listen.ip().is_unspecified()
            && self.address.is_none()
            && dhcp.mode != DhcpModeConfig::Off
        {
            return bad(
                "boot.tftp listens on a wildcard address: set boot.address so DHCP can name it as next-server"
                    .into(),
            );
        }
        Ok(())
    }

    /// The boot HTTP server's base URL as nodes see it, given where the API
    /// listens. `None` when no usable host is known (a wildcard listen address
    /// and no `address`).
    pub fn http_url(&self, api: SocketAddr) -> Option<String> {
        if let Some(u) = &self.http.url {
            return Some(u.trim_end_matches('/').to_owned());
        }
        match self.http.listen {
            Some(l) => host_port(l, self.address).map(|h| format!("http://{h}")),
            None => host_port(api, self.address).map(|h| format!("http://{h}/boot")),
        }
    }

    /// The TFTP server's address as nodes see it (next-server).
    pub fn tftp_address(&self) -> Option<Ipv4Addr> {
        match self.tftp.listen.ip() {
            IpAddr::V4(ip) if !ip.is_unspecified() => Some(ip),
            _ => self.address,
        }
    }
}

/// `host:port` for a listen address, with `fallback` replacing a wildcard IP.
pub fn host_port(addr: SocketAddr, fallback: Option<Ipv4Addr>) -> Option<String> {
    if addr.ip().is_unspecified() {
        return fallback.map(|ip| format!("{ip}:{}", addr.port()));
    }
    Some(addr.to_string())
}

/// `[drivers]`: which hardware types and interfaces are enabled, as Ironic's
/// `enabled_hardware_types`, `enabled_<type>_interfaces` and
/// `default_<type>_interface`. An unset list means the defaults that this
/// configuration can serve (e.g. `pxe` only with `[boot.tftp] enabled`); a list
/// that is set is taken as it is, and naming something unavailable is an error.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)]
pub struct DriversSection {
    /// Hardware types nodes may use in `driver`.
    pub enabled_hardware_types: Option<Vec<String>>,
    pub enabled_bios_interfaces: Option<Vec<String>>,
    pub enabled_boot_interfaces: Option<Vec<String>>,
    pub enabled_console_interfaces: Option<Vec<String>>,
    pub enabled_deploy_interfaces: Option<Vec<String>>,
    pub enabled_firmware_interfaces: Option<Vec<String>>,
    pub enabled_inspect_interfaces: Option<Vec<String>>,
    pub enabled_management_interfaces: Option<Vec<String>>,
    pub enabled_network_interfaces: Option<Vec<String>>,
    pub enabled_power_interfaces: Option<Vec<String>>,
    pub enabled_raid_interfaces: Option<Vec<String>>,
    pub enabled_rescue_interfaces: Option<Vec<String>>,
    pub enabled_storage_interfaces: Option<Vec<String>>,
    pub enabled_vendor_interfaces: Option<Vec<String>>,
    pub default_bios_interface: Option<String>,
    pub default_boot_interface: Option<String>,
    pub default_console_interface: Option<String>,
    pub default_deploy_interface: Option<String>,
    pub default_firmware_interface: Option<String>,
    pub default_inspect_interface: Option<String>,
    pub default_management_interface: Option<String>,
    pub default_network_interface: Option<String>,
    pub default_power_interface: Option<String>,
    pub default_raid_interface: Option<String>,
    pub default_rescue_interface: Option<String>,
    pub default_storage_interface: Option<String>,
    pub default_vendor_interface: Option<String>,
}

/// The hardware types enabled when `enabled_hardware_types` is unset: Ironic's
/// (`ipmi`, `redfish`) and Metal3's ironic image's (`fake-hardware`,
/// `manual-management`).
pub const DEFAULT_HARDWARE_TYPES: &[&str] =
    &["ipmi", "redfish", "fake-hardware", "manual-management"];

/// The implementations enabled for an interface type when its list is unset
/// (those that exist in this build and that the configuration can serve).
pub fn default_enabled(t: InterfaceType) -> &'static [&'static str] {
    match t {
        InterfaceType::Bios => &["no-bios", "redfish", "fake"],
        InterfaceType::Boot => &[
            "ipxe",
            "pxe",
            "http",
            "redfish-virtual-media",
            "redfish-https",
            "fake",
        ],
        InterfaceType::Console => &["no-console", "fake"],
        InterfaceType::Deploy => &["direct", "ramdisk", "fake"],
        InterfaceType::Firmware => &["no-firmware", "redfish", "fake"],
        InterfaceType::Inspect => &["no-inspect", "agent", "redfish", "fake"],
        InterfaceType::Management => &["ipmitool", "redfish", "noop", "fake"],
        InterfaceType::Network => &["switch", "flat", "noop"],
        InterfaceType::Power => &["ipmitool", "redfish", "fake"],
        InterfaceType::Raid => &["agent", "no-raid", "redfish", "fake"],
        InterfaceType::Rescue => &["no-rescue", "agent", "fake"],
        InterfaceType::Storage => &["noop"],
        InterfaceType::Vendor => &["ipmitool", "redfish", "no-vendor", "fake"],
        // an interface type newer than this configuration: nothing of it enabled
        _ => &[],
    }
}

impl DriversSection {
    /// `enabled_<t>_interfaces` as configured (None: the defaults).
    pub fn enabled(&self, t: InterfaceType) -> Option<&[String]> {
        match t {
            InterfaceType::Bios => self.enabled_bios_interfaces.as_deref(),
            InterfaceType::Boot => self.enabled_boot_interfaces.as_deref(),
            InterfaceType::Console => self.enabled_console_interfaces.as_deref(),
            InterfaceType::Deploy => self.enabled_deploy_interfaces.as_deref(),
            InterfaceType::Firmware => self.enabled_firmware_interfaces.as_deref(),
            InterfaceType::Inspect => self.enabled_inspect_interfaces.as_deref(),
            InterfaceType::Management => self.enabled_management_interfaces.as_deref(),
            InterfaceType::Network => self.enabled_network_interfaces.as_deref(),
            InterfaceType::Power => self.enabled_power_interfaces.as_deref(),
            InterfaceType::Raid => self.enabled_raid_interfaces.as_deref(),
            InterfaceType::Rescue => self.enabled_rescue_interfaces.as_deref(),
            InterfaceType::Storage => self.enabled_storage_interfaces.as_deref(),
            InterfaceType::Vendor => self.enabled_vendor_interfaces.as_deref(),
            _ => None,
        }
    }

    /// `default_<t>_interface` as configured.
    pub fn default_for(&self, t: InterfaceType) -> Option<&str> {
        match t {
            InterfaceType::Bios => self.default_bios_interface.as_deref(),
            InterfaceType::Boot => self.default_boot_interface.as_deref(),
            InterfaceType::Console => self.default_console_interface.as_deref(),
            InterfaceType::Deploy => self.default_deploy_interface.as_deref(),
            InterfaceType::Firmware => self.default_firmware_interface.as_deref(),
            InterfaceType::Inspect => self.default_inspect_interface.as_deref(),
            InterfaceType::Management => self.default_management_interface.as_deref(),
            InterfaceType::Network => self.default_network_interface.as_deref(),
            InterfaceType::Power => self.default_power_interface.as_deref(),
            InterfaceType::Raid => self.default_raid_interface.as_deref(),
            InterfaceType::Rescue => self.default_rescue_interface.as_deref(),
            InterfaceType::Storage => self.default_storage_interface.as_deref(),
            InterfaceType::Vendor => self.default_vendor_interface.as_deref(),
            _ => None,
        }
        .filter(|s| !s.is_empty())
    }

    /// Syntax checks (names exist is checked when the registry is built).
    pub fn check(&self) -> Result<(), ConfigError> {
        let lists = std::iter::once((
            "enabled_hardware_types".to_owned(),
            self.enabled_hardware_types.as_deref(),
        ))
        .chain(
            InterfaceType::ALL
                .iter()
                .map(|t| (format!("enabled_{t}_interfaces"), self.enabled(*t))),
        );
        for (key, list) in lists {
            let Some(list) = list else { continue };
            if list.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "drivers.{key} is empty: list at least one name, or remove the key for the defaults"
                )));
            }
            let mut seen = std::collections::BTreeSet::new();
            for n in list {
                if !seen.insert(n) {
                    return Err(ConfigError::Invalid(format!(
                        "drivers.{key} names {n:?} twice"
                    )));
                }
            }
        }
        for &t in InterfaceType::ALL {
            if let (Some(d), Some(list)) = (self.default_for(t), self.enabled(t))
                && !list.iter().any(|n| n == d)
            {
                return Err(ConfigError::Invalid(format!(
                    "drivers.default_{t}_interface = {d:?} is not in drivers.enabled_{t}_interfaces {list:?}"
                )));
            }
        }
        Ok(())
    }
}
