//! `FakePower` and `FakeManagement`: a simulated BMC per node.

use std::time::Duration;

use async_trait::async_trait;

use super::FakeControl;
use super::control::default_boot_device;
use crate::driver::*;
use crate::error::{DriverError, ErrorKind};
use crate::model::{InterfaceType, JsonMap};
use crate::states::{PowerAction, PowerState};

const P: InterfaceType = InterfaceType::Power;
const M: InterfaceType = InterfaceType::Management;

/// `power_interface = "fake"`: keeps a power state per node. A node the fake has
/// not seen yet starts in the power state recorded on the node (off if none).
#[derive(Debug, Clone)]
pub struct FakePower {
    control: FakeControl,
}

impl FakePower {
    /// A fake power interface steered by `control`.
    pub fn new(control: FakeControl) -> Self {
        FakePower { control }
    }

    /// Wait until the simulated BMC reports `want` (at once unless it is stuck),
    /// reading it directly (no call counted, no injected failure), for at most
    /// `timeout` (default [`FakePower::DEFAULT_TIMEOUT`]).
    async fn reached(
        &self,
        task: &Task,
        want: PowerState,
        timeout: Option<Duration>,
    ) -> Result<(), DriverError> {
        let timeout = timeout.unwrap_or(Self::DEFAULT_TIMEOUT);
        let deadline = tokio::time::Instant::now() + timeout;
        while self.current(task) != want {
            if tokio::time::Instant::now() >= deadline {
                return Err(DriverError::new(
                    ErrorKind::Timeout,
                    format!(
                        "Node {} did not reach power state {want} within {}s (the fake BMC is stuck)",
                        task.node.uuid,
                        timeout.as_secs_f64()
                    ),
                )
                .with_retryable(false));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// How long a power action waits when the caller gives no timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

    fn current(&self, task: &Task) -> PowerState {
        let recorded = task.node.power_state.unwrap_or(PowerState::Off);
        self.control
            .with_node(task.node.uuid, |n| *n.power.get_or_insert(recorded))
    }
}

#[async_trait]
impl BaseInterface for FakePower {
    fn validate(&self, _task: &Task) -> Result<(), DriverError> {
        self.control.enter_sync("power.validate")
    }
}

#[async_trait]
impl PowerInterface for FakePower {
    async fn get_power_state(&self, task: &Task) -> Result<PowerState, DriverError> {
        self.control.enter(P, "power.get_power_state").await?;
        Ok(self.current(task))
    }

    async fn set_power_state(
        &self,
        task: &Task,
        action: PowerAction,
        timeout: Option<Duration>,
    ) -> Result<(), DriverError> {
        self.control.enter(P, "power.set_power_state").await?;
        self.current(task);
        let want = action.resulting_state();
        self.control.with_node(task.node.uuid, |n| {
            if !n.power_stuck {
                n.power = Some(want);
            }
        });
        self.reached(task, want, timeout).await
    }

    async fn reboot(&self, task: &Task, timeout: Option<Duration>) -> Result<(), DriverError> {
        self.control.enter(P, "power.reboot").await?;
        self.control.with_node(task.node.uuid, |n| {
            if !n.power_stuck {
                n.power = Some(PowerState::On);
            }
        });
        self.reached(task, PowerState::On, timeout).await
    }

    fn get_supported_power_states(&self, _task: &Task) -> Vec<PowerAction> {
        PowerAction::ALL.to_vec()
    }
}

/// `management_interface = "fake"`: keeps boot device, boot mode and secure boot
/// per node. Supports `pxe`, `disk`, `cdrom`, `bios` and `safe`, as Ironic's fake.
#[derive(Debug, Clone)]
pub struct FakeManagement {
    control: FakeControl,
}

impl FakeManagement {
    /// A fake management interface steered by `control`.
    pub fn new(control: FakeControl) -> Self {
        FakeManagement { control }
    }

    /// The devices the fake supports.
    pub const SUPPORTED: [BootDevice; 5] = [
        BootDevice::Pxe,
        BootDevice::Disk,
        BootDevice::Cdrom,
        BootDevice::Bios,
        BootDevice::Safe,
    ];
}

#[async_trait]
impl BaseInterface for FakeManagement {
    fn validate(&self, _task: &Task) -> Result<(), DriverError> {
        self.control.enter_sync("management.validate")
    }
}

#[async_trait]
impl ManagementInterface for FakeManagement {
    async fn get_supported_boot_devices(
        &self,
        _task: &Task,
    ) -> Result<Vec<BootDevice>, DriverError> {
        self.control
            .enter(M, "management.get_supported_boot_devices")
            .await?;
        Ok(Self::SUPPORTED.to_vec())
    }

    async fn set_boot_device(
        &self,
        task: &Task,
        device: BootDevice,
        persistent: bool,
    ) -> Result<(), DriverError> {
        self.control.enter(M, "management.set_boot_device").await?;
        if !Self::SUPPORTED.contains(&device) {
            return Err(DriverError::invalid(format!(
                "Invalid boot device {device} specified for node {}; supported: pxe, disk, cdrom, bios, safe",
                task.node.uuid
            )));
        }
        self.control.with_node(task.node.uuid, |n| {
            n.boot_device = Some(BootDeviceInfo {
                boot_device: Some(device),
                persistent: Some(persistent),
            })
        });
        Ok(())
    }

    async fn get_boot_device(&self, task: &Task) -> Result<BootDeviceInfo, DriverError> {
        self.control.enter(M, "management.get_boot_device").await?;
        Ok(self.control.with_node(task.node.uuid, |n| {
            n.boot_device.clone().unwrap_or_else(default_boot_device)
        }))
    }

    async fn get_sensors_data(&self, task: &Task) -> Result<JsonMap, DriverError> {
        self.control.enter(M, "management.get_sensors_data").await?;
        let power = self.control.node(task.node.uuid).power;
        let on = power == Some(PowerState::On);
        let v = serde_json::json!({
            "Temperature": {"CPU1 Temp (0x1)": {
                "Sensor Reading": if on { "42 (+/- 1) degrees C" } else { "20 (+/- 1) degrees C" },
                "Sensor ID": "CPU1 Temp (0x1)", "Status": "ok", "Units": "degrees C"}},
            "Fan": {"Fan1 (0x30)": {
                "Sensor Reading": if on { "4200 (+/- 75) RPM" } else { "0 (+/- 75) RPM" },
                "Sensor ID": "Fan1 (0x30)", "Status": "ok", "Units": "RPM"}},
        });
        match v {
            serde_json::Value::Object(m) => Ok(m),
            _ => Ok(JsonMap::new()),
        }
    }

    async fn get_supported_boot_modes(&self, _task: &Task) -> Result<Vec<BootMode>, DriverError> {
        self.control
            .enter(M, "management.get_supported_boot_modes")
            .await?;
        Ok(vec![BootMode::Bios, BootMode::Uefi])
    }

    async fn set_boot_mode(&self, task: &Task, mode: BootMode) -> Result<(), DriverError> {
        self.control.enter(M, "management.set_boot_mode").await?;
        self.control
            .with_node(task.node.uuid, |n| n.boot_mode = Some(mode));
        Ok(())
    }

    async fn get_boot_mode(&self, task: &Task) -> Result<Option<BootMode>, DriverError> {
        self.control.enter(M, "management.get_boot_mode").await?;
        Ok(self.control.node(task.node.uuid).boot_mode)
    }

    async fn get_secure_boot_state(&self, task: &Task) -> Result<bool, DriverError> {
        self.control
            .enter(M, "management.get_secure_boot_state")
            .await?;
        Ok(self.control.node(task.node.uuid).secure_boot)
    }

    async fn set_secure_boot_state(&self, task: &Task, on: bool) -> Result<(), DriverError> {
        self.control
            .enter(M, "management.set_secure_boot_state")
            .await?;
        self.control
            .with_node(task.node.uuid, |n| n.secure_boot = on);
        Ok(())
    }

    async fn inject_nmi(&self, _task: &Task) -> Result<(), DriverError> {
        self.control.enter(M, "management.inject_nmi").await
    }

    async fn get_node_health(&self, task: &Task) -> Result<Option<String>, DriverError> {
        self.control.enter(M, "management.get_node_health").await?;
        Ok(Some(
            self.control
                .node(task.node.uuid)
                .health
                .unwrap_or_else(|| "OK".to_owned()),
        ))
    }

    async fn get_supported_indicators(&self, _task: &Task) -> Result<JsonMap, DriverError> {
        self.control
            .enter(M, "management.get_supported_indicators")
            .await?;
        Ok(fake_indicators())
    }

    async fn get_indicator_state(
        &self,
        task: &Task,
        component: &str,
        indicator: &str,
    ) -> Result<String, DriverError> {
        self.control
            .enter(M, "management.get_indicator_state")
            .await?;
        fake_indicator(component, indicator)?;
        let key = format!("{indicator}@{component}");
        Ok(self.control.with_node(task.node.uuid, |n| {
            n.indicators
                .get(&key)
                .cloned()
                .unwrap_or_else(|| "ON".to_owned())
        }))
    }

    async fn set_indicator_state(
        &self,
        task: &Task,
        component: &str,
        indicator: &str,
        state: &str,
    ) -> Result<(), DriverError> {
        self.control
            .enter(M, "management.set_indicator_state")
            .await?;
        let spec = fake_indicator(component, indicator)?;
        if spec["readonly"] == true {
            return Err(DriverError::invalid(format!(
                "Indicator {indicator} of component {component} is read-only"
            )));
        }
        let state = state.to_ascii_uppercase();
        if !spec["states"]
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s == state.as_str()))
        {
            return Err(DriverError::invalid(format!(
                "Invalid state {state} for indicator {indicator} of component {component}; valid: {}",
                spec["states"]
            )));
        }
        let key = format!("{indicator}@{component}");
        self.control
            .with_node(task.node.uuid, |n| n.indicators.insert(key, state));
        Ok(())
    }

    async fn get_mac_addresses(&self, task: &Task) -> Result<Vec<String>, DriverError> {
        self.control
            .enter(M, "management.get_mac_addresses")
            .await?;
        Ok(task.ports.iter().map(|p| p.address.to_string()).collect())
    }

    async fn detect_vendor(&self, _task: &Task) -> Result<Option<String>, DriverError> {
        self.control.enter(M, "management.detect_vendor").await?;
        Ok(Some("fake".to_owned()))
    }
}

/// The indicators of Ironic's fake management interface: a read-only chassis LED
/// and a settable system LED.
fn fake_indicators() -> JsonMap {
    match serde_json::json!({
        "chassis": {"led-0": {"readonly": true, "states": ["OFF", "ON"]}},
        "system": {"led": {"readonly": false, "states": ["BLINKING", "OFF", "ON"]}},
    }) {
        serde_json::Value::Object(m) => m,
        _ => JsonMap::new(),
    }
}

fn fake_indicator(component: &str, indicator: &str) -> Result<serde_json::Value, DriverError> {
    let all = fake_indicators();
    let comp = all
        .get(component)
        .ok_or_else(|| DriverError::invalid(format!("Invalid component {component} specified.")))?;
    comp.get(indicator)
        .cloned()
        .ok_or_else(|| DriverError::invalid(format!("Invalid indicator {indicator} specified.")))
}
