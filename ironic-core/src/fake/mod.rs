//! Ironic's `fake-hardware`: every interface implemented by a fake that keeps the
//! node's simulated hardware in memory, with configurable delays and injected
//! failures, for tests and scale runs. Also registers `manual-management`.
//!
//! ```
//! use ironic_core::fake::{self, Delay, FakeConfig};
//! use ironic_core::InterfaceRegistry;
//! use std::time::Duration;
//!
//! let mut reg = InterfaceRegistry::with_noop();
//! let mut config = FakeConfig::default();
//! config.power_delay = Delay::Range(Duration::from_millis(1), Duration::from_millis(5));
//! let control = fake::register(&mut reg, config);
//! // later, from a test: make the next two power reads fail
//! control.fail_next("power.get_power_state", 2, ironic_core::ErrorKind::Unreachable, true);
//! ```
//!
//! The [`FakeControl`] handle returned by [`register`] is shared by all the fakes
//! registered with it: change delays, inject failures, read call counts and the
//! simulated power state at runtime.
//!
//! ## Deploy modes
//! [`FakeDeployMode::Sync`] (Ironic's fake): every step finishes at once.
//! [`FakeDeployMode::Agent`]: the fake deploy interface behaves like the agent
//! deploy: the `deploy` step boots the "ramdisk" and returns
//! [`StepOutcome::Wait`](crate::driver::StepOutcome::Wait); `write_image` and the
//! agent's clean/service steps run "asynchronously" and finish at the next
//! heartbeat; `prepare_cleaning`/`prepare_service` boot the ramdisk and wait. A
//! test drives it by calling [`Conductor::lookup`](crate::conductor::Conductor::lookup)
//! and [`Conductor::heartbeat`](crate::conductor::Conductor::heartbeat), as the
//! real agent would.

mod control;
mod deploy;
mod misc;
mod power;

use std::sync::Arc;
use std::time::Duration;

pub use control::{FakeControl, FakeNodeState};
pub use deploy::{FakeBoot, FakeDeploy};
pub use misc::{
    FakeBios, FakeConsole, FakeFirmware, FakeInspect, FakeRaid, FakeRescue, FakeVendor,
    parse_inventory,
};
pub use power::{FakeManagement, FakePower};

use crate::hardware::{FAKE_HARDWARE, InterfaceRegistry, MANUAL_MANAGEMENT};
use crate::model::InterfaceType;

/// The name every fake interface is registered under.
pub const NAME: &str = "fake";

/// How long a fake call takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delay {
    /// No delay.
    #[default]
    None,
    /// Always this long.
    Fixed(Duration),
    /// Uniformly random between the two (inclusive).
    Range(Duration, Duration),
}

impl Delay {
    /// Parse Ironic's `[fake] *_delay` syntax: `"N"` seconds or `"min,max"`
    /// (fractions allowed); `"0"` or empty means no delay.
    pub fn parse(s: &str) -> Result<Delay, String> {
        let secs = |v: &str| -> Result<Duration, String> {
            let f: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("invalid fake delay {s:?}: expected N or MIN,MAX seconds"))?;
            if !(0.0..=86400.0).contains(&f) {
                return Err(format!("invalid fake delay {s:?}: out of range"));
            }
            Ok(Duration::from_secs_f64(f))
        };
        let s2 = s.trim();
        if s2.is_empty() {
            return Ok(Delay::None);
        }
        match s2.split_once(',') {
            None => {
                let d = secs(s2)?;
                Ok(if d.is_zero() {
                    Delay::None
                } else {
                    Delay::Fixed(d)
                })
            }
            Some((a, b)) => {
                let (a, b) = (secs(a)?, secs(b)?);
                if b < a {
                    return Err(format!("invalid fake delay {s:?}: max is below min"));
                }
                Ok(Delay::Range(a, b))
            }
        }
    }
}

/// How the fake deploy interface behaves (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FakeDeployMode {
    /// Every step finishes immediately (Ironic's `fake` deploy).
    #[default]
    Sync,
    /// Like the agent deploy: steps wait for heartbeats.
    Agent,
}

/// Configuration of the fakes: a delay per interface, like Ironic's `[fake]`
/// section, and the deploy mode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
#[non_exhaustive]
pub struct FakeConfig {
    pub power_delay: Delay,
    pub management_delay: Delay,
    pub boot_delay: Delay,
    pub deploy_delay: Delay,
    pub inspect_delay: Delay,
    pub raid_delay: Delay,
    pub bios_delay: Delay,
    pub firmware_delay: Delay,
    pub rescue_delay: Delay,
    pub console_delay: Delay,
    pub vendor_delay: Delay,
    /// How the deploy interface behaves.
    pub deploy_mode: FakeDeployMode,
}

impl FakeConfig {
    /// The delay of an interface.
    pub fn delay(&self, t: InterfaceType) -> Delay {
        match t {
            InterfaceType::Power => self.power_delay,
            InterfaceType::Management => self.management_delay,
            InterfaceType::Boot => self.boot_delay,
            InterfaceType::Deploy => self.deploy_delay,
            InterfaceType::Inspect => self.inspect_delay,
            InterfaceType::Raid => self.raid_delay,
            InterfaceType::Bios => self.bios_delay,
            InterfaceType::Firmware => self.firmware_delay,
            InterfaceType::Rescue => self.rescue_delay,
            InterfaceType::Console => self.console_delay,
            InterfaceType::Vendor => self.vendor_delay,
            InterfaceType::Network | InterfaceType::Storage => Delay::None,
        }
    }

    /// Set the delay of an interface (network and storage have no fake: ignored).
    pub fn set_delay(&mut self, t: InterfaceType, d: Delay) {
        match t {
            InterfaceType::Power => self.power_delay = d,
            InterfaceType::Management => self.management_delay = d,
            InterfaceType::Boot => self.boot_delay = d,
            InterfaceType::Deploy => self.deploy_delay = d,
            InterfaceType::Inspect => self.inspect_delay = d,
            InterfaceType::Raid => self.raid_delay = d,
            InterfaceType::Bios => self.bios_delay = d,
            InterfaceType::Firmware => self.firmware_delay = d,
            InterfaceType::Rescue => self.rescue_delay = d,
            InterfaceType::Console => self.console_delay = d,
            InterfaceType::Vendor => self.vendor_delay = d,
            InterfaceType::Network | InterfaceType::Storage => {}
        }
    }

    /// A configuration with every interface delayed by `d`.
    pub fn with_all_delays(d: Delay) -> Self {
        let mut c = FakeConfig::default();
        for &t in InterfaceType::ALL {
            c.set_delay(t, d);
        }
        c
    }
}

/// Register the `fake` implementation of every interface and the `fake-hardware`
/// and `manual-management` hardware types. Returns the handle that steers them.
///
/// Ironic's no-op interfaces (`InterfaceRegistry::with_noop`) must be registered too
/// for the network and storage interfaces. `manual-management` uses the generic boot
/// and deploy interfaces (`ipxe`/`pxe`, `direct`), so its nodes need a boot and a
/// deploy crate registered as well.
pub fn register(registry: &mut InterfaceRegistry, config: FakeConfig) -> FakeControl {
    let control = FakeControl::new(config);
    let c = || control.clone();
    registry
        .register_power(NAME, Arc::new(FakePower::new(c())))
        .register_management(NAME, Arc::new(FakeManagement::new(c())))
        .register_boot(NAME, Arc::new(FakeBoot::new(c())))
        .register_deploy(NAME, Arc::new(FakeDeploy::new(c())))
        .register_inspect(NAME, Arc::new(FakeInspect::new(c())))
        .register_raid(NAME, Arc::new(FakeRaid::new(c())))
        .register_bios(NAME, Arc::new(FakeBios::new(c())))
        .register_firmware(NAME, Arc::new(FakeFirmware::new(c())))
        .register_rescue(NAME, Arc::new(FakeRescue::new(c())))
        .register_console(NAME, Arc::new(FakeConsole::new(c())))
        .register_vendor(NAME, Arc::new(FakeVendor::new(c())))
        .register_hardware_type(FAKE_HARDWARE)
        .register_hardware_type(MANUAL_MANAGEMENT);
    control
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_parses_ironic_syntax() {
        assert_eq!(Delay::parse("0").unwrap(), Delay::None);
        assert_eq!(Delay::parse("").unwrap(), Delay::None);
        assert_eq!(
            Delay::parse("2").unwrap(),
            Delay::Fixed(Duration::from_secs(2))
        );
        assert_eq!(
            Delay::parse("0.5, 1.5").unwrap(),
            Delay::Range(Duration::from_millis(500), Duration::from_millis(1500))
        );
        assert!(Delay::parse("3,1").is_err());
        assert!(Delay::parse("x").is_err());
        assert!(Delay::parse("-1").is_err());
    }

    #[test]
    fn range_delay_samples_within_bounds() {
        let d = Delay::Range(Duration::from_millis(10), Duration::from_millis(20));
        for _ in 0..100 {
            let s = d.sample();
            assert!(s >= Duration::from_millis(10) && s <= Duration::from_millis(20));
        }
    }

    #[tokio::test]
    async fn failures_are_injected_counted_and_exhausted() {
        use crate::ErrorKind;
        let c = FakeControl::new(FakeConfig::default());
        c.fail_next("power", 2, ErrorKind::Unreachable, true);
        let e = c
            .enter(InterfaceType::Power, "power.get_power_state")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unreachable);
        assert!(e.is_retryable());
        assert!(c.enter(InterfaceType::Power, "power.reboot").await.is_err());
        assert!(c.enter(InterfaceType::Power, "power.reboot").await.is_ok());
        // "power" must not match "powerful.x"
        c.fail_next("power", 1, ErrorKind::Other, false);
        assert!(c.enter(InterfaceType::Power, "powerx.y").await.is_ok());
        assert_eq!(c.calls("power.reboot"), 2);
        c.fail_with_probability("boot.prepare_ramdisk", 1.0, ErrorKind::Timeout, false);
        for _ in 0..3 {
            assert!(
                c.enter(InterfaceType::Boot, "boot.prepare_ramdisk")
                    .await
                    .is_err()
            );
        }
        c.clear_failures();
        assert!(
            c.enter(InterfaceType::Boot, "boot.prepare_ramdisk")
                .await
                .is_ok()
        );
    }
}
