//! Hardware types as plain data, and the registry the application fills.
//!
//! A [`HardwareType`] names, for each interface, the implementations it supports,
//! the preferred (default) one first. Variants are derived from another type with
//! `const` builder methods (the struct is `#[non_exhaustive]`, so that a new
//! interface type is not a breaking change):
//!
//! ```
//! use ironic_core::hardware::{HardwareType, GENERIC};
//! const MY_VENDOR: HardwareType = GENERIC
//!     .named("my-vendor")
//!     .with_power(&["my-vendor"])
//!     .with_management(&["my-vendor", "noop"]);
//! assert_eq!(MY_VENDOR.deploy, GENERIC.deploy);
//! assert_eq!(MY_VENDOR.power, &["my-vendor"]);
//! ```
//!
//! The [`InterfaceRegistry`] holds implementations by `(interface type, name)` and
//! the hardware types. Nothing registers itself: each driver crate exports a
//! `register(&mut InterfaceRegistry, ...)` and the application calls it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::driver::noop::*;
use crate::driver::*;
use crate::error::{DriverError, ErrorKind};
use crate::model::{InterfaceType, Node, NodeInterfaces};

/// A hardware type: which implementations of each interface it supports, the
/// default first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
#[non_exhaustive]
pub struct HardwareType {
    /// The name nodes use in `driver`.
    pub name: &'static str,
    pub bios: &'static [&'static str],
    pub boot: &'static [&'static str],
    pub console: &'static [&'static str],
    pub deploy: &'static [&'static str],
    pub firmware: &'static [&'static str],
    pub inspect: &'static [&'static str],
    pub management: &'static [&'static str],
    pub network: &'static [&'static str],
    pub power: &'static [&'static str],
    pub raid: &'static [&'static str],
    pub rescue: &'static [&'static str],
    pub storage: &'static [&'static str],
    pub vendor: &'static [&'static str],
}

impl HardwareType {
    /// This hardware type under another name (to derive a variant:
    /// `GENERIC.named("my-vendor").with_power(&["my-vendor"])`).
    pub const fn named(self, name: &'static str) -> Self {
        HardwareType { name, ..self }
    }

    /// The same hardware type supporting `names` for interface `t`, the default first.
    pub const fn with(self, t: InterfaceType, names: &'static [&'static str]) -> Self {
        let mut h = self;
        match t {
            InterfaceType::Bios => h.bios = names,
            InterfaceType::Boot => h.boot = names,
            InterfaceType::Console => h.console = names,
            InterfaceType::Deploy => h.deploy = names,
            InterfaceType::Firmware => h.firmware = names,
            InterfaceType::Inspect => h.inspect = names,
            InterfaceType::Management => h.management = names,
            InterfaceType::Network => h.network = names,
            InterfaceType::Power => h.power = names,
            InterfaceType::Raid => h.raid = names,
            InterfaceType::Rescue => h.rescue = names,
            InterfaceType::Storage => h.storage = names,
            InterfaceType::Vendor => h.vendor = names,
        }
        h
    }

    /// The same hardware type supporting `names` as bios interfaces, the default first.
    pub const fn with_bios(self, names: &'static [&'static str]) -> Self {
        HardwareType {
            bios: names,
            ..self
        }
    }

    /// The same hardware type supporting `names` as boot interfaces, the default first.
    pub const fn with_boot(self, names: &'static [&'static str]) -> Self {
        HardwareType {
            boot: names,
            ..self
        }
    }

    /// The same hardware type supporting `names` as console interfaces, the default first.
    pub const fn with_console(self, names: &'static [&'static str]) -> Self {
        HardwareType {
            console: names,
            ..self
        }
    }

    /// The same hardware type supporting `names` as deploy interfaces, the default first.
    pub const fn with_deploy(self, names: &'static [&'static str]) -> Self {
        HardwareType {
            deploy: names,
            ..self
        }
    }

    /// The same hardware type supporting `names` as firmware interfaces, the default first.
    pub const fn with_firmware(self, names: &'static [&'static str]) -> Self {
        HardwareType {
            firmware: names,
            ..self
        }
    }

    /// The same hardware type supporting `names` as inspect interfaces, the default first.
    pub const fn with_inspect(self, names: &'static [&'static str]) -> Self {
        HardwareType {
            inspect: names,
            ..self
        }
    }

    /// The same hardware type supporting `names` as management interfaces, the default first.
    pub const fn with_management(self, names: &'static [&'static str]) -> Self {
        HardwareType {
            management: names,
            ..self
        }
    }

    /// The same hardware type supporting `names` as network interfaces, the default first.
    pub const fn with_network(self, names: &'static [&'static str]) -> Self {
        HardwareType {
            network: names,
            ..self
        }
    }

    /// The same hardware type supporting `names` as power interfaces, the default first.
    pub const fn with_power(self, names: &'static [&'static str]) -> Self {
        HardwareType {
            power: names,
            ..self
        }
    }

    /// The same hardware type supporting `names` as raid interfaces, the default first.
    pub const fn with_raid(self, names: &'static [&'static str]) -> Self {
        HardwareType {
            raid: names,
            ..self
        }
    }

    /// The same hardware type supporting `names` as rescue interfaces, the default first.
    pub const fn with_rescue(self, names: &'static [&'static str]) -> Self {
        HardwareType {
            rescue: names,
            ..self
        }
    }

    /// The same hardware type supporting `names` as storage interfaces, the default first.
    pub const fn with_storage(self, names: &'static [&'static str]) -> Self {
        HardwareType {
            storage: names,
            ..self
        }
    }

    /// The same hardware type supporting `names` as vendor interfaces, the default first.
    pub const fn with_vendor(self, names: &'static [&'static str]) -> Self {
        HardwareType {
            vendor: names,
            ..self
        }
    }

    /// The supported implementations of one interface.
    pub fn supported(&self, t: InterfaceType) -> &'static [&'static str] {
        match t {
            InterfaceType::Bios => self.bios,
            InterfaceType::Boot => self.boot,
            InterfaceType::Console => self.console,
            InterfaceType::Deploy => self.deploy,
            InterfaceType::Firmware => self.firmware,
            InterfaceType::Inspect => self.inspect,
            InterfaceType::Management => self.management,
            InterfaceType::Network => self.network,
            InterfaceType::Power => self.power,
            InterfaceType::Raid => self.raid,
            InterfaceType::Rescue => self.rescue,
            InterfaceType::Storage => self.storage,
            InterfaceType::Vendor => self.vendor,
        }
    }
}

/// Ironic's `GenericHardware` defaults (`name = "generic"`); hardware types derive
/// from it and override what they add (it has no power interface of its own):
///
/// | interface | implementations (default first) |
/// |---|---|
/// | bios | `no-bios` |
/// | boot | `ipxe`, `pxe`, `http-ipxe`, `http` |
/// | console | `no-console`, `fake-graphical` |
/// | deploy | `direct`, `ramdisk` |
/// | firmware | `no-firmware` |
/// | inspect | `agent`, `no-inspect` |
/// | management | `noop` |
/// | network | `switch`, `flat`, `noop` |
/// | power | (none: a hardware type must add its own) |
/// | raid | `no-raid`, `agent` |
/// | rescue | `no-rescue`, `agent` |
/// | storage | `noop` |
/// | vendor | `no-vendor` |
pub const GENERIC: HardwareType = HardwareType {
    name: "generic",
    bios: &["no-bios"],
    boot: &["ipxe", "pxe", "http-ipxe", "http"],
    console: &["no-console", "fake-graphical"],
    deploy: &["direct", "ramdisk"],
    firmware: &["no-firmware"],
    inspect: &["agent", "no-inspect"],
    management: &["noop"],
    network: &["switch", "flat", "noop"],
    power: &[],
    raid: &["no-raid", "agent"],
    rescue: &["no-rescue", "agent"],
    storage: &["noop"],
    vendor: &["no-vendor"],
};

/// `fake-hardware`: every interface `fake` first, plus the generic ones. To test a
/// new interface with the fakes for all the others, derive from it
/// (`FAKE_HARDWARE.named("my-hw").with_power(&["my-power"])`) and register
/// [`crate::fake`] beside your interface:
///
/// | interface | implementations (default first) |
/// |---|---|
/// | bios | `fake`, `no-bios` |
/// | boot | `fake`, `ipxe`, `pxe`, `http-ipxe`, `http` |
/// | console | `fake`, `no-console`, `fake-graphical` |
/// | deploy | `fake`, `direct`, `ramdisk` |
/// | firmware | `fake`, `no-firmware` |
/// | inspect | `fake`, `agent`, `no-inspect` |
/// | management | `fake`, `noop` |
/// | network | `switch`, `noop`, `flat` |
/// | power | `fake` |
/// | raid | `fake`, `no-raid`, `agent` |
/// | rescue | `fake`, `no-rescue`, `agent` |
/// | storage | `noop` |
/// | vendor | `fake`, `no-vendor` |
pub const FAKE_HARDWARE: HardwareType = HardwareType {
    name: "fake-hardware",
    bios: &["fake", "no-bios"],
    boot: &["fake", "ipxe", "pxe", "http-ipxe", "http"],
    console: &["fake", "no-console", "fake-graphical"],
    deploy: &["fake", "direct", "ramdisk"],
    firmware: &["fake", "no-firmware"],
    inspect: &["fake", "agent", "no-inspect"],
    management: &["fake", "noop"],
    network: &["switch", "noop", "flat"],
    power: &["fake"],
    raid: &["fake", "no-raid", "agent"],
    rescue: &["fake", "no-rescue", "agent"],
    storage: &["noop"],
    vendor: &["fake", "no-vendor"],
};

/// `manual-management`: the operator powers the node by hand; otherwise
/// [`GENERIC`]:
///
/// | interface | implementations (default first) |
/// |---|---|
/// | bios | `no-bios` |
/// | boot | `ipxe`, `pxe`, `http-ipxe`, `http` |
/// | console | `no-console`, `fake-graphical` |
/// | deploy | `direct`, `ramdisk` |
/// | firmware | `no-firmware` |
/// | inspect | `agent`, `no-inspect` |
/// | management | `noop`, `fake` |
/// | network | `switch`, `noop`, `flat` |
/// | power | `agent`, `fake` |
/// | raid | `no-raid`, `agent` |
/// | rescue | `no-rescue`, `agent` |
/// | storage | `noop` |
/// | vendor | `no-vendor` |
pub const MANUAL_MANAGEMENT: HardwareType = GENERIC
    .named("manual-management")
    .with_power(&["agent", "fake"])
    .with_management(&["noop", "fake"])
    .with_network(&["switch", "noop", "flat"]);

/// The interface implementations a node resolves to.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
#[non_exhaustive]
pub struct Driver {
    /// The hardware type.
    pub hardware_type: HardwareType,
    pub bios: Arc<dyn BiosInterface>,
    pub boot: Arc<dyn BootInterface>,
    pub console: Arc<dyn ConsoleInterface>,
    pub deploy: Arc<dyn DeployInterface>,
    pub firmware: Arc<dyn FirmwareInterface>,
    pub inspect: Arc<dyn InspectInterface>,
    pub management: Arc<dyn ManagementInterface>,
    pub network: Arc<dyn NetworkInterface>,
    pub power: Arc<dyn PowerInterface>,
    pub raid: Arc<dyn RaidInterface>,
    pub rescue: Arc<dyn RescueInterface>,
    pub storage: Arc<dyn StorageInterface>,
    pub vendor: Arc<dyn VendorInterface>,
}

impl Driver {
    /// One interface, as its base trait (for validation and steps).
    pub fn base(&self, t: InterfaceType) -> &dyn BaseInterface {
        match t {
            InterfaceType::Bios => &*self.bios,
            InterfaceType::Boot => &*self.boot,
            InterfaceType::Console => &*self.console,
            InterfaceType::Deploy => &*self.deploy,
            InterfaceType::Firmware => &*self.firmware,
            InterfaceType::Inspect => &*self.inspect,
            InterfaceType::Management => &*self.management,
            InterfaceType::Network => &*self.network,
            InterfaceType::Power => &*self.power,
            InterfaceType::Raid => &*self.raid,
            InterfaceType::Rescue => &*self.rescue,
            InterfaceType::Storage => &*self.storage,
            InterfaceType::Vendor => &*self.vendor,
        }
    }
}

macro_rules! registry_impl {
    ($( $variant:ident / $field:ident : $tr:ident => $reg:ident ),+ $(,)?) => {
        /// Interface implementations by name, and hardware types. Filled by the
        /// application: `ironic_core::fake::register(&mut reg, ..)`,
        /// `ironic_drivers_ipmi::register(&mut reg, ..)`, ...
        #[derive(Clone, Default)]
        pub struct InterfaceRegistry {
            hardware_types: BTreeMap<&'static str, HardwareType>,
            defaults: BTreeMap<InterfaceType, String>,
            $( pub(crate) $field: BTreeMap<String, Arc<dyn $tr>>, )+
        }

        impl InterfaceRegistry {
            $(
                #[doc = concat!("Register a `", stringify!($field), "` interface implementation under `name`.")]
                pub fn $reg(&mut self, name: impl Into<String>, imp: Arc<dyn $tr>) -> &mut Self {
                    self.$field.insert(name.into(), imp);
                    self
                }
            )+

            /// Names registered for an interface type, sorted.
            pub fn interface_names(&self, t: InterfaceType) -> Vec<String> {
                match t {
                    $( InterfaceType::$variant => self.$field.keys().cloned().collect(), )+
                }
            }

            /// Keep only the implementations of `t` whose name `keep` accepts
            /// (the application's `enabled_<type>_interfaces`); returns the names removed.
            pub fn retain_interfaces(&mut self, t: InterfaceType, mut keep: impl FnMut(&str) -> bool) -> Vec<String> {
                let mut removed = Vec::new();
                match t {
                    $( InterfaceType::$variant => self.$field.retain(|k, _| {
                        let k2 = keep(k);
                        if !k2 {
                            removed.push(k.clone());
                        }
                        k2
                    }), )+
                }
                removed
            }

            fn base_of(&self, t: InterfaceType, name: &str) -> Option<&dyn BaseInterface> {
                match t {
                    $( InterfaceType::$variant => self.$field.get(name).map(|i| &**i as &dyn BaseInterface), )+
                }
            }

            /// Resolve a node's interfaces into a [`Driver`].
            pub fn driver_for(&self, node: &Node) -> Result<Driver, DriverError> {
                let hw = self.hardware_type(&node.driver)?;
                Ok(Driver {
                    hardware_type: hw,
                    $( $field: self.$field
                        .get(node.interfaces.get(InterfaceType::$variant))
                        .cloned()
                        .ok_or_else(|| self.unknown(InterfaceType::$variant, node.interfaces.get(InterfaceType::$variant)))?, )+
                })
            }
        }
    };
}

registry_impl! {
    Bios / bios: BiosInterface => register_bios,
    Boot / boot: BootInterface => register_boot,
    Console / console: ConsoleInterface => register_console,
    Deploy / deploy: DeployInterface => register_deploy,
    Firmware / firmware: FirmwareInterface => register_firmware,
    Inspect / inspect: InspectInterface => register_inspect,
    Management / management: ManagementInterface => register_management,
    Network / network: NetworkInterface => register_network,
    Power / power: PowerInterface => register_power,
    Raid / raid: RaidInterface => register_raid,
    Rescue / rescue: RescueInterface => register_rescue,
    Storage / storage: StorageInterface => register_storage,
    Vendor / vendor: VendorInterface => register_vendor,
}

impl std::fmt::Debug for InterfaceRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("InterfaceRegistry");
        d.field(
            "hardware_types",
            &self.hardware_types.keys().collect::<Vec<_>>(),
        );
        for &t in InterfaceType::ALL {
            d.field(t.as_str(), &self.interface_names(t));
        }
        d.finish()
    }
}

impl InterfaceRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry with Ironic's no-op interfaces (`no-bios`, `no-console`,
    /// `no-inspect`, `no-raid`, `no-rescue`, `no-firmware`, `no-vendor`, storage
    /// `noop`, network `noop`, management `noop`) that hardware types fall back on.
    pub fn with_noop() -> Self {
        let mut r = Self::new();
        r.register_bios(NoBios::NAME, Arc::new(NoBios))
            .register_console(NoConsole::NAME, Arc::new(NoConsole))
            .register_inspect(NoInspect::NAME, Arc::new(NoInspect))
            .register_raid(NoRaid::NAME, Arc::new(NoRaid))
            .register_rescue(NoRescue::NAME, Arc::new(NoRescue))
            .register_firmware(NoFirmware::NAME, Arc::new(NoFirmware))
            .register_vendor(NoVendor::NAME, Arc::new(NoVendor))
            .register_storage(NoopStorage::NAME, Arc::new(NoopStorage))
            .register_network(NoopNetwork::NAME, Arc::new(NoopNetwork))
            .register_management(NoopManagement::NAME, Arc::new(NoopManagement));
        r
    }

    /// Wrap every registered power and management implementation so that each of
    /// its calls is reported to `observer` ([`crate::observe::Observer::driver_call`]).
    /// Call it once, after registering; [`crate::Conductor::start_observed`] does.
    pub fn observe(&mut self, observer: Arc<dyn crate::observe::Observer>) {
        use crate::observe::Observed;
        for (name, imp) in self.power.iter_mut() {
            let inner: Arc<dyn PowerInterface> = imp.clone();
            *imp = Arc::new(Observed::new(inner, name.clone(), observer.clone()));
        }
        for (name, imp) in self.management.iter_mut() {
            let inner: Arc<dyn ManagementInterface> = imp.clone();
            *imp = Arc::new(Observed::new(inner, name.clone(), observer.clone()));
        }
    }

    /// Register (or replace) a hardware type.
    pub fn register_hardware_type(&mut self, hw: HardwareType) -> &mut Self {
        self.hardware_types.insert(hw.name, hw);
        self
    }

    /// Keep only the hardware types whose name `keep` accepts (the application's
    /// `enabled_hardware_types`); returns the names removed.
    pub fn retain_hardware_types(&mut self, mut keep: impl FnMut(&str) -> bool) -> Vec<String> {
        let mut removed = Vec::new();
        self.hardware_types.retain(|k, _| {
            let k2 = keep(k);
            if !k2 {
                removed.push((*k).to_owned());
            }
            k2
        });
        removed
    }

    /// Make `name` the default implementation of `t` for every hardware type
    /// that supports it (Ironic's `default_<type>_interface`). It must be
    /// registered; [`InterfaceRegistry::check_defaults`] then tells whether
    /// every hardware type can use it.
    pub fn set_default_interface(
        &mut self,
        t: InterfaceType,
        name: impl Into<String>,
    ) -> Result<(), DriverError> {
        let name = name.into();
        if self.base_of(t, &name).is_none() {
            return Err(self.unknown(t, &name));
        }
        self.defaults.insert(t, name);
        Ok(())
    }

    /// The configured default of `t` (see [`InterfaceRegistry::set_default_interface`]).
    pub fn default_interface_name(&self, t: InterfaceType) -> Option<&str> {
        self.defaults.get(&t).map(String::as_str)
    }

    /// Check, as Ironic's conductor does when it starts, that every registered
    /// hardware type has a default for every interface type: a configured default
    /// it supports, else one supported implementation that is registered. The
    /// error names the hardware type, the interface type, what it supports and
    /// what is registered.
    pub fn check_defaults(&self) -> Result<(), DriverError> {
        for hw in self.hardware_types.values() {
            self.default_interfaces(hw)?;
        }
        Ok(())
    }

    /// The default implementation of `t` for `hw`: the configured default when
    /// set (it must be supported by `hw`), else the first supported one that is
    /// registered (Ironic's `driver_factory.default_interface`).
    pub fn default_interface(
        &self,
        hw: &HardwareType,
        t: InterfaceType,
    ) -> Result<&'static str, DriverError> {
        if let Some(name) = self.defaults.get(&t) {
            return hw
                .supported(t)
                .iter()
                .copied()
                .find(|n| n == name)
                .ok_or_else(|| {
                    DriverError::new(
                        ErrorKind::NotFound,
                        format!(
                            "Hardware type {:?} has no valid default {t} interface: the configured default_{t}_interface {name:?} is not one it supports ({})",
                            hw.name,
                            Self::listing("it supports", hw.supported(t)),
                        ),
                    )
                });
        }
        self.enabled_for(hw, t).first().copied().ok_or_else(|| {
            DriverError::new(
                ErrorKind::NotFound,
                format!(
                    "Hardware type {:?} has no {t} interface enabled in this conductor: {}, and {}; register one of the former (enabled_{t}_interfaces)",
                    hw.name,
                    Self::listing("it supports", hw.supported(t)),
                    Self::listing(&format!("enabled {t} interfaces"), &self.interface_names(t)),
                ),
            )
        })
    }

    /// The registered hardware types, sorted by name.
    pub fn hardware_types(&self) -> Vec<HardwareType> {
        self.hardware_types.values().copied().collect()
    }

    /// A hardware type by name; the error lists the known ones.
    pub fn hardware_type(&self, name: &str) -> Result<HardwareType, DriverError> {
        self.hardware_types.get(name).copied().ok_or_else(|| {
            DriverError::new(
                ErrorKind::NotFound,
                format!(
                    "No hardware type named {name:?} is enabled in this conductor (it is not registered, or enabled_hardware_types leaves it out); {}",
                    Self::listing(
                        "enabled hardware types",
                        &self.hardware_types.keys().copied().collect::<Vec<_>>()
                    )
                ),
            )
        })
    }

    /// "`name` is not a registered `t` interface", with the registered ones (or
    /// that there is none).
    fn unknown(&self, t: InterfaceType, name: &str) -> DriverError {
        DriverError::new(
            ErrorKind::NotFound,
            format!(
                "No {t} interface named {name:?} is enabled in this conductor (it is not registered in its InterfaceRegistry, or enabled_{t}_interfaces leaves it out); {}",
                Self::listing(&format!("enabled {t} interfaces"), &self.interface_names(t))
            ),
        )
    }

    /// "`what`: a, b" or "there are no `what`".
    fn listing(what: &str, names: &[impl AsRef<str>]) -> String {
        if names.is_empty() {
            format!("there are no {what}")
        } else {
            let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
            format!("{what}: {}", names.join(", "))
        }
    }

    /// The implementations of `t` that `hw` supports and that are registered, in the
    /// hardware type's order of preference.
    pub fn enabled_for(&self, hw: &HardwareType, t: InterfaceType) -> Vec<&'static str> {
        hw.supported(t)
            .iter()
            .copied()
            .filter(|n| self.base_of(t, n).is_some())
            .collect()
    }

    /// Default interface choice for a hardware type: the configured default, else
    /// the first supported one that is registered (Ironic's
    /// `driver_factory.default_interface`), for every interface type.
    pub fn default_interfaces(&self, hw: &HardwareType) -> Result<NodeInterfaces, DriverError> {
        let mut out = NodeInterfaces::default();
        for &t in InterfaceType::ALL {
            out.set(t, self.default_interface(hw, t)?);
        }
        Ok(out)
    }

    /// Fill the node's empty interface fields with the hardware type's defaults and
    /// check that every named one is supported by the hardware type and registered.
    pub fn resolve_interfaces(&self, node: &mut Node) -> Result<(), DriverError> {
        let hw = self.hardware_type(&node.driver)?;
        for &t in InterfaceType::ALL {
            let current = node.interfaces.get(t).to_owned();
            if current.is_empty() {
                let name = self.default_interface(&hw, t)?;
                node.interfaces.set(t, name);
            } else if !hw.supported(t).contains(&current.as_str()) {
                return Err(DriverError::invalid(format!(
                    "Hardware type {:?} does not support the {t} interface {current:?} ({}; of those, {}); set {t}_interface to one of them or leave it empty for the default",
                    hw.name,
                    Self::listing("it supports", hw.supported(t)),
                    Self::listing("enabled in this conductor", &self.enabled_for(&hw, t)),
                )));
            } else if self.base_of(t, &current).is_none() {
                return Err(self.unknown(t, &current));
            }
        }
        Ok(())
    }

    /// The `driver_info` properties of a hardware type's default interfaces
    /// (`GET /v1/drivers/{name}/properties`).
    pub fn properties(&self, hw: &HardwareType) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for &t in InterfaceType::ALL {
            for name in self.default_interface(hw, t).into_iter() {
                if let Some(i) = self.base_of(t, name) {
                    for p in i.properties() {
                        let desc = if p.required {
                            format!("{} Required.", p.description)
                        } else {
                            format!("{} Optional.", p.description)
                        };
                        out.insert(p.name.to_owned(), desc);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_hardware_type_lists_known_ones() {
        let mut r = InterfaceRegistry::with_noop();
        r.register_hardware_type(MANUAL_MANAGEMENT);
        let e = r.hardware_type("nope").unwrap_err();
        assert!(e.message().contains("manual-management"), "{e}");
    }

    #[test]
    fn enabled_lists_and_configured_defaults() {
        let mut r = InterfaceRegistry::with_noop();
        r.register_hardware_type(GENERIC)
            .register_hardware_type(MANUAL_MANAGEMENT);
        // GENERIC has no power interface at all: the start-up check names it.
        let e = r.check_defaults().unwrap_err();
        assert!(
            e.message().contains("boot") && e.message().contains("generic"),
            "{e}"
        );
        assert_eq!(r.retain_hardware_types(|n| n != "generic"), vec!["generic"]);
        // manual-management needs power agent/fake, none registered.
        assert!(r.check_defaults().is_err());
        let removed = r.retain_interfaces(InterfaceType::Rescue, |n| n != "no-rescue");
        assert_eq!(removed, vec!["no-rescue"]);
        assert!(r.interface_names(InterfaceType::Rescue).is_empty());
        let e = r
            .set_default_interface(InterfaceType::Boot, "ipxe")
            .unwrap_err();
        assert!(e.message().contains("ipxe"), "{e}");
        r.set_default_interface(InterfaceType::Network, "noop")
            .unwrap();
        assert_eq!(
            r.default_interface_name(InterfaceType::Network),
            Some("noop")
        );
        let hw = MANUAL_MANAGEMENT;
        assert_eq!(
            r.default_interface(&hw, InterfaceType::Network).unwrap(),
            "noop"
        );
        let e = r.default_interface(&hw, InterfaceType::Rescue).unwrap_err();
        assert!(e.message().contains("rescue"), "{e}");
    }

    /// Item 4 of issue 17: the errors say what is wrong in this project's terms
    /// (hardware type support, enabled in this conductor), never Python entry
    /// points, and never an empty list.
    #[test]
    fn interface_errors_say_what_is_wrong() {
        let mut r = InterfaceRegistry::with_noop();
        let _ = crate::fake::register(&mut r, crate::fake::FakeConfig::default());
        // not supported by the hardware type (registered or not)
        let mut n = Node::new(FAKE_HARDWARE.name);
        n.interfaces.set(InterfaceType::Power, "ipmitool");
        let e = r.resolve_interfaces(&mut n).unwrap_err().to_string();
        assert!(
            e.contains("does not support the power interface \"ipmitool\"")
                && e.contains("it supports: fake")
                && e.contains("enabled in this conductor: fake"),
            "{e}"
        );
        assert!(!e.contains("entrypoint"), "{e}");
        // supported but not enabled here
        r.retain_interfaces(InterfaceType::Power, |_| false);
        let mut n = Node::new(FAKE_HARDWARE.name);
        n.interfaces.set(InterfaceType::Power, "fake");
        let e = r.resolve_interfaces(&mut n).unwrap_err().to_string();
        assert!(
            e.contains("No power interface named \"fake\" is enabled in this conductor")
                && e.contains("there are no enabled power interfaces"),
            "{e}"
        );
        // and the default cannot be chosen
        let e = r
            .default_interface(&FAKE_HARDWARE, InterfaceType::Power)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("has no power interface enabled in this conductor")
                && e.contains("it supports: fake")
                && e.contains("there are no enabled power interfaces"),
            "{e}"
        );
        let e = r.hardware_type("nope").unwrap_err().to_string();
        assert!(e.contains("No hardware type named \"nope\""), "{e}");
        assert!(e.contains("enabled hardware types: "), "{e}");
    }

    #[test]
    fn builders_derive_variants() {
        assert_eq!(MANUAL_MANAGEMENT.deploy, GENERIC.deploy);
        assert_eq!(MANUAL_MANAGEMENT.power, &["agent", "fake"]);
        const X: HardwareType = FAKE_HARDWARE.named("x").with(InterfaceType::Raid, &["r"]);
        assert_eq!(X.name, "x");
        assert_eq!(X.supported(InterfaceType::Raid), &["r"]);
        assert_eq!(X.boot, FAKE_HARDWARE.boot);
        for &t in InterfaceType::ALL {
            let y = GENERIC.with(t, &["only"]);
            assert_eq!(y.supported(t), &["only"], "{t}");
        }
    }

    /// The tables in the docs of the built-in hardware types are their contents.
    #[test]
    fn documented_tables_match_the_data() {
        let src = include_str!("hardware.rs");
        for ht in [GENERIC, FAKE_HARDWARE, MANUAL_MANAGEMENT] {
            let mut table = String::from(
                "/// | interface | implementations (default first) |\n/// |---|---|\n",
            );
            for &t in InterfaceType::ALL {
                let v = ht
                    .supported(t)
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let v = if v.is_empty() {
                    "(none: a hardware type must add its own)".to_owned()
                } else {
                    v
                };
                table.push_str(&format!("/// | {t} | {v} |\n"));
            }
            assert!(
                src.contains(&table),
                "the docs of {} do not show:\n{table}",
                ht.name
            );
        }
    }
}
