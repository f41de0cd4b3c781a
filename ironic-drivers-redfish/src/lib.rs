#![doc = include_str!("../README.md")]

mod bios;
pub mod client;
pub mod config;
mod console;
mod error;
mod firmware;
mod https_boot;
mod inspect;
mod management;
pub mod models;
mod power;
mod raid;
#[cfg(test)]
mod tests;
mod vendor;
mod vmedia;

use std::sync::Arc;

use ironic_core::driver::Task;
use ironic_core::hardware::GENERIC;
use ironic_core::{DriverError, HardwareType, InterfaceRegistry};

pub use bios::RedfishBios;
pub use client::{RedfishClient, SessionStats};
pub use config::{AuthType, RedfishConfig, RedfishDriverInfo, VerifyCa};
pub use console::{GRAPHICAL_CONSOLE, RedfishConsoleApp, register_graphical_console};
pub use firmware::RedfishFirmware;
pub use https_boot::{RedfishHttpsBoot, UEFI_HTTP_URL};
pub use inspect::RedfishInspect;
pub use management::RedfishManagement;
pub use power::RedfishPower;
pub use raid::RedfishRaid;
pub use vendor::RedfishVendor;
pub use vmedia::RedfishVirtualMediaBoot;

use crate::client::ClientCache;

/// The name of this driver's interfaces (`power_interface = "redfish"`, ...).
pub const NAME: &str = "redfish";

/// The virtual-media boot interface's name.
pub const VIRTUAL_MEDIA_BOOT: &str = "redfish-virtual-media";

/// The UEFI HTTP boot interface's name.
pub const HTTPS_BOOT: &str = "redfish-https";

/// The `redfish` hardware type, as Ironic's `RedfishHardware` defines it. This
/// crate provides the `redfish` implementations (the vendor interface with
/// Ironic's passthru methods: event subscriptions, `eject_vmedia`),
/// `redfish-virtual-media`, `redfish-https` and `redfish-graphical`.
///
/// Consoles: Ironic lists `redfish-graphical`, `ipmitool-socat`, `no-console`,
/// `fake-graphical`, and its default `enabled_console_interfaces` is `no-console`
/// alone, so a node gets `no-console` unless the operator enables a console.
/// Here registering is enabling, so `no-console` comes first to keep that
/// default; `ipmitool-socat` is not offered for Redfish nodes.
pub const REDFISH_HARDWARE: HardwareType = GENERIC
    .named("redfish")
    .with_bios(&["redfish", "no-bios"])
    .with_boot(&[
        "ipxe",
        "pxe",
        "http-ipxe",
        "http",
        "redfish-virtual-media",
        "redfish-https",
    ])
    .with_console(&["no-console", "redfish-graphical", "fake-graphical"])
    .with_firmware(&["redfish", "no-firmware"])
    .with_inspect(&["redfish", "agent", "no-inspect"])
    .with_management(&["redfish", "noop"])
    .with_power(&["redfish"])
    .with_raid(&["redfish", "no-raid", "agent"])
    .with_vendor(&["redfish", "no-vendor"]);

/// Register the Redfish interfaces and the `redfish` hardware type. Every
/// interface registered by one call shares one client cache (connections and
/// sessions per BMC).
pub fn register(registry: &mut InterfaceRegistry, config: RedfishConfig) {
    register_inner(registry, config, None);
}

/// [`register`], with `redfish-virtual-media` and `redfish-https` building each node's ISO with
/// `builder` (its kernel parameters baked in) when `driver_info` names no
/// prebuilt `redfish_deploy_iso`, as Ironic's `prepare_deploy_iso` does.
pub fn register_with_boot_iso(
    registry: &mut InterfaceRegistry,
    config: RedfishConfig,
    builder: Arc<dyn ironic_core::driver::BootIsoBuilder>,
) {
    register_inner(registry, config, Some(builder));
}

fn register_inner(
    registry: &mut InterfaceRegistry,
    config: RedfishConfig,
    builder: Option<Arc<dyn ironic_core::driver::BootIsoBuilder>>,
) {
    let shared = Arc::new(Shared::new(config));
    let mut vmedia = RedfishVirtualMediaBoot::with_shared(shared.clone());
    let mut https = RedfishHttpsBoot::with_shared(shared.clone());
    if let Some(b) = builder {
        vmedia = vmedia.with_boot_iso(b.clone());
        https = https.with_boot_iso(b);
    }
    registry
        .register_power(NAME, Arc::new(RedfishPower::with_shared(shared.clone())))
        .register_management(
            NAME,
            Arc::new(RedfishManagement::with_shared(shared.clone())),
        )
        .register_boot(VIRTUAL_MEDIA_BOOT, Arc::new(vmedia))
        .register_boot(HTTPS_BOOT, Arc::new(https))
        .register_inspect(NAME, Arc::new(RedfishInspect::with_shared(shared.clone())))
        .register_bios(NAME, Arc::new(RedfishBios::with_shared(shared.clone())))
        .register_raid(NAME, Arc::new(RedfishRaid::with_shared(shared.clone())))
        .register_firmware(NAME, Arc::new(RedfishFirmware::with_shared(shared.clone())))
        .register_vendor(NAME, Arc::new(RedfishVendor::with_shared(shared.clone())))
        .register_hardware_type(REDFISH_HARDWARE);
    // Ironic's default console provider (`fake`) until the application passes
    // its own with `register_graphical_console`.
    let auth = shared.config.default_auth_type;
    register_graphical_console(registry, Default::default(), auth);
}

/// What the interfaces of one registration share: the settings and the clients.
#[derive(Debug)]
pub(crate) struct Shared {
    config: RedfishConfig,
    clients: ClientCache,
}

impl Shared {
    pub(crate) fn new(config: RedfishConfig) -> Self {
        Shared {
            config,
            clients: ClientCache::default(),
        }
    }

    /// The node's parsed `driver_info`.
    pub(crate) fn info(&self, task: &Task) -> Result<RedfishDriverInfo, DriverError> {
        RedfishDriverInfo::parse(&task.node.driver_info, self.config.default_auth_type)
    }

    /// The client for the node's BMC (for services that are not the system's:
    /// the EventService).
    pub(crate) fn client(&self, task: &Task) -> Result<Arc<RedfishClient>, error::RedfishError> {
        let info =
            RedfishDriverInfo::parse_inner(&task.node.driver_info, self.config.default_auth_type)?;
        self.clients.get(&info, &self.config)
    }

    /// The client for the node's BMC and the path of its system.
    pub(crate) async fn connect(
        &self,
        task: &Task,
    ) -> Result<(Arc<RedfishClient>, String), error::RedfishError> {
        let info =
            RedfishDriverInfo::parse_inner(&task.node.driver_info, self.config.default_auth_type)?;
        let client = self.clients.get(&info, &self.config)?;
        let system = client.system_path(info.system_id.as_deref()).await?;
        Ok((client, system))
    }
}
