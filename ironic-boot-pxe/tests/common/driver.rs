//! A `Driver` for hand-made tasks: the boot interface under test, a management
//! interface that records the boot devices it is asked for (the real ones are
//! tested against BMC emulators in their own crates), and `Unsupported` for the
//! power and deploy interfaces, which these tests never call.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ironic_core::driver::*;
use ironic_core::hardware::{Driver, GENERIC};
use ironic_core::{DriverError, InterfaceRegistry, Node, PowerAction, PowerState};

/// Records `set_boot_device` calls.
#[derive(Debug, Default)]
pub struct RecordingManagement {
    pub calls: Mutex<Vec<(BootDevice, bool)>>,
}

#[async_trait]
impl BaseInterface for RecordingManagement {
    fn validate(&self, _task: &Task) -> Result<(), DriverError> {
        Ok(())
    }
}

#[async_trait]
impl ManagementInterface for RecordingManagement {
    async fn get_supported_boot_devices(&self, _t: &Task) -> Result<Vec<BootDevice>, DriverError> {
        Ok(vec![
            BootDevice::Pxe,
            BootDevice::Disk,
            BootDevice::UefiHttp,
        ])
    }
    async fn set_boot_device(&self, _t: &Task, d: BootDevice, p: bool) -> Result<(), DriverError> {
        self.calls.lock().unwrap().push((d, p));
        Ok(())
    }
    async fn get_boot_device(&self, _t: &Task) -> Result<BootDeviceInfo, DriverError> {
        let last = self.calls.lock().unwrap().last().copied();
        Ok(BootDeviceInfo {
            boot_device: last.map(|l| l.0),
            persistent: last.map(|l| l.1),
        })
    }
}

#[derive(Debug)]
pub struct Unused;

#[async_trait]
impl BaseInterface for Unused {
    fn validate(&self, _task: &Task) -> Result<(), DriverError> {
        Ok(())
    }
}

#[async_trait]
impl PowerInterface for Unused {
    async fn get_power_state(&self, _t: &Task) -> Result<PowerState, DriverError> {
        Err(DriverError::unsupported("power: not used by these tests"))
    }
    async fn set_power_state(
        &self,
        _t: &Task,
        _a: PowerAction,
        _d: Option<Duration>,
    ) -> Result<(), DriverError> {
        Err(DriverError::unsupported("power: not used by these tests"))
    }
    async fn reboot(&self, _t: &Task, _d: Option<Duration>) -> Result<(), DriverError> {
        Err(DriverError::unsupported("power: not used by these tests"))
    }
}

#[async_trait]
impl DeployInterface for Unused {
    async fn deploy(&self, _t: &mut Task) -> Result<StepOutcome, DriverError> {
        Err(DriverError::unsupported("deploy: not used by these tests"))
    }
    async fn tear_down(&self, _t: &mut Task) -> Result<(), DriverError> {
        Err(DriverError::unsupported("deploy: not used by these tests"))
    }
    async fn prepare(&self, _t: &mut Task) -> Result<(), DriverError> {
        Err(DriverError::unsupported("deploy: not used by these tests"))
    }
    async fn clean_up(&self, _t: &mut Task) -> Result<(), DriverError> {
        Err(DriverError::unsupported("deploy: not used by these tests"))
    }
}

/// A driver around `boot` and `network` with a recording management interface.
pub fn driver(
    boot: Arc<dyn BootInterface>,
    network: Arc<dyn NetworkInterface>,
) -> (Driver, Arc<RecordingManagement>) {
    let mgmt = Arc::new(RecordingManagement::default());
    // `Driver` is non-exhaustive: build it the way the conductor does, through a
    // registry and a hardware type naming exactly these interfaces.
    let mut reg = InterfaceRegistry::with_noop();
    reg.register_boot("under-test", boot)
        .register_network("under-test", network)
        .register_management("recording", mgmt.clone())
        .register_power("unused", Arc::new(Unused))
        .register_deploy("unused", Arc::new(Unused))
        .register_hardware_type(
            GENERIC
                .named("boot-test")
                .with_boot(&["under-test"])
                .with_network(&["under-test"])
                .with_management(&["recording"])
                .with_power(&["unused"])
                .with_deploy(&["unused"]),
        );
    let mut node = Node::new("boot-test");
    reg.resolve_interfaces(&mut node)
        .expect("interfaces resolve");
    let d = reg.driver_for(&node).expect("driver");
    (d, mgmt)
}
