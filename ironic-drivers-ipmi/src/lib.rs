#![doc = include_str!("../README.md")]

mod client;
pub mod config;
mod console;
mod error;
mod management;
mod power;
mod sdr;
pub mod session;

use std::sync::Arc;

use ironic_core::InterfaceRegistry;
use ironic_core::hardware::{GENERIC, HardwareType};

pub use config::{IpmiConfig, IpmiDriverInfo};
pub use console::{CONSOLE_NAME, IpmiConsole};
pub use management::{IpmiManagement, SUPPORTED_BOOT_DEVICES};
pub use power::IpmiPower;
pub use session::Privilege;
pub use session::crypto::CipherSuite;

/// The name of the power and management interfaces (Ironic's `ipmitool`, so
/// existing node definitions work unchanged).
pub const NAME: &str = "ipmitool";

/// The `ipmi` hardware type, as Ironic defines it: power `ipmitool`, management
/// `ipmitool` or `noop`, console `ipmitool-socat`, `no-console` or `fake-graphical`, vendor
/// `ipmitool` or `no-vendor`, boot `ipxe`, `pxe`, `http-ipxe`, `http`.
/// Interfaces not registered in the registry are skipped when picking defaults.
pub const IPMI_HARDWARE: HardwareType = GENERIC
    .named("ipmi")
    .with_power(&[NAME])
    .with_management(&[NAME, "noop"])
    .with_console(&[CONSOLE_NAME, "no-console", "fake-graphical"])
    .with_vendor(&[NAME, "no-vendor"]);

/// The interfaces of this crate, sharing one client: one session and one command
/// queue per BMC, whichever interface sends the command.
#[derive(Clone, Debug)]
pub struct IpmiInterfaces {
    /// Power.
    pub power: Arc<IpmiPower>,
    /// Management.
    pub management: Arc<IpmiManagement>,
    /// Serial console (`ipmitool-socat`).
    pub console: Arc<IpmiConsole>,
}

impl IpmiInterfaces {
    /// Build the interfaces (for callers that hold them directly rather than
    /// through an [`InterfaceRegistry`]).
    pub fn new(config: IpmiConfig) -> Self {
        let console = Arc::new(IpmiConsole::new(config.clone()));
        let client = Arc::new(client::IpmiClient::new(config));
        IpmiInterfaces {
            power: Arc::new(IpmiPower::new(client.clone())),
            management: Arc::new(IpmiManagement::new(client)),
            console,
        }
    }
}

/// Register the `ipmitool` power and management interfaces, the `ipmitool-socat`
/// console interface and the `ipmi` hardware type. Power and management share one
/// client (one session per BMC); each console client gets its own SOL session.
pub fn register(registry: &mut InterfaceRegistry, config: IpmiConfig) {
    let i = IpmiInterfaces::new(config);
    registry
        .register_power(NAME, i.power)
        .register_management(NAME, i.management)
        .register_console(CONSOLE_NAME, i.console)
        .register_hardware_type(IPMI_HARDWARE);
}

/// Parsers exposed for the fuzz target; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    /// Feed arbitrary bytes to every parser that sees data from a BMC.
    pub fn parse_all(data: &[u8]) {
        use crate::session::packet;
        for alen in [0, 12, 16] {
            if let Ok(f) = packet::parse_frame(data, alen) {
                let _ = packet::parse_open_session_response(f.payload);
                let _ = packet::parse_rakp2(f.payload);
                let _ = packet::parse_rakp4(f.payload);
                let _ = packet::decode_response(f.payload);
            }
        }
        let _ = packet::decode_response(data);
        if let Ok(Some(r)) = crate::sdr::parse_record(data) {
            let _ = crate::sdr::sensor_entry(&r, Some(data));
        }
        let keys = crate::session::crypto::SessionKeys::derive(
            crate::session::crypto::CipherSuite::Suite3,
            b"fuzz",
        );
        let _ = keys.decrypt(data);
    }
}
