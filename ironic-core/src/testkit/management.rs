//! Management interface behaviours.

use super::{Outcome, Patience, Report};
use crate::driver::{BootDevice, BootDeviceInfo, BootMode, ManagementInterface, Task};
use crate::error::ErrorKind;

async fn supported(mgmt: &dyn ManagementInterface, task: &Task) -> Vec<BootDevice> {
    mgmt.get_supported_boot_devices(task)
        .await
        .unwrap_or_else(|e| panic!("get_supported_boot_devices failed: {e}"))
}

/// `get_supported_boot_devices` is non-empty, has no duplicates, and includes
/// `pxe` or `disk`.
pub async fn supported_boot_devices_are_sane(
    mgmt: &dyn ManagementInterface,
    task: &Task,
) -> Outcome {
    let s = supported(mgmt, task).await;
    assert!(!s.is_empty(), "no supported boot devices");
    let mut d = s.clone();
    d.sort_by_key(|x| x.as_str());
    d.dedup();
    assert_eq!(d.len(), s.len(), "duplicate boot devices in {s:?}");
    assert!(
        s.contains(&BootDevice::Pxe) || s.contains(&BootDevice::Disk),
        "neither pxe nor disk is supported: {s:?}"
    );
    Outcome::Passed
}

/// Set `device` (with `persistent`), then `get_boot_device` reads it back
/// (polling). Not applicable when the device is unsupported or the BMC does not
/// report the boot device at all (`None`). The persistence flag is compared only
/// when the BMC reports it.
pub async fn set_boot_device_roundtrips(
    mgmt: &dyn ManagementInterface,
    task: &Task,
    device: BootDevice,
    persistent: bool,
) -> Outcome {
    set_boot_device_roundtrips_within(mgmt, task, device, persistent, &Patience::default()).await
}

/// The same, with the given patience.
pub async fn set_boot_device_roundtrips_within(
    mgmt: &dyn ManagementInterface,
    task: &Task,
    device: BootDevice,
    persistent: bool,
    p: &Patience,
) -> Outcome {
    if !supported(mgmt, task).await.contains(&device) {
        return Outcome::na(format!("{device} is not a supported boot device"));
    }
    mgmt.set_boot_device(task, device, persistent)
        .await
        .unwrap_or_else(|e| {
            panic!("set_boot_device({device}, persistent={persistent}) failed: {e}")
        });
    let first = mgmt
        .get_boot_device(task)
        .await
        .unwrap_or_else(|e| panic!("get_boot_device failed: {e}"));
    if first.boot_device.is_none() {
        return Outcome::na("the BMC does not report the boot device");
    }
    let got: BootDeviceInfo = p
        .poll(
            &format!("boot device {device}"),
            || mgmt.get_boot_device(task),
            |i| i.boot_device == Some(device),
        )
        .await;
    if let Some(pers) = got.persistent {
        assert_eq!(
            pers, persistent,
            "boot device {device} was set with persistent={persistent} but reads back persistent={pers}"
        );
    }
    Outcome::Passed
}

/// A device not in `get_supported_boot_devices` is refused with an
/// invalid-parameter error.
pub async fn unsupported_boot_device_is_invalid_parameter(
    mgmt: &dyn ManagementInterface,
    task: &Task,
) -> Outcome {
    let s = supported(mgmt, task).await;
    let Some(device) = BootDevice::ALL.iter().copied().find(|d| !s.contains(d)) else {
        return Outcome::na("every boot device is supported");
    };
    let e = mgmt
        .set_boot_device(task, device, false)
        .await
        .err()
        .unwrap_or_else(|| panic!("unsupported boot device {device} was accepted"));
    assert_eq!(
        e.kind(),
        ErrorKind::InvalidParameter,
        "unsupported boot device {device} failed with kind {} instead of invalid parameter: {e}",
        e.kind()
    );
    Outcome::Passed
}

/// Every supported device among pxe, disk, cdrom and bios round-trips, one-time
/// and persistent.
pub async fn all_supported_boot_devices_roundtrip(
    mgmt: &dyn ManagementInterface,
    task: &Task,
) -> Outcome {
    all_supported_boot_devices_roundtrip_within(mgmt, task, &Patience::default()).await
}

/// The same, with the given patience.
pub async fn all_supported_boot_devices_roundtrip_within(
    mgmt: &dyn ManagementInterface,
    task: &Task,
    p: &Patience,
) -> Outcome {
    let mut any = false;
    for d in [
        BootDevice::Pxe,
        BootDevice::Disk,
        BootDevice::Cdrom,
        BootDevice::Bios,
    ] {
        for persistent in [false, true] {
            if set_boot_device_roundtrips_within(mgmt, task, d, persistent, p).await
                == Outcome::Passed
            {
                any = true;
            }
        }
    }
    if any {
        Outcome::Passed
    } else {
        Outcome::na("the BMC does not report the boot device")
    }
}

/// If the driver supports boot modes: each supported mode set reads back.
pub async fn boot_mode_roundtrips_if_supported(
    mgmt: &dyn ManagementInterface,
    task: &Task,
) -> Outcome {
    boot_mode_roundtrips_if_supported_within(mgmt, task, &Patience::default()).await
}

/// The same, with the given patience.
pub async fn boot_mode_roundtrips_if_supported_within(
    mgmt: &dyn ManagementInterface,
    task: &Task,
    p: &Patience,
) -> Outcome {
    let modes = match mgmt.get_supported_boot_modes(task).await {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            return Outcome::na("get_supported_boot_modes is unsupported");
        }
        Err(e) => panic!("get_supported_boot_modes failed: {e}"),
    };
    if modes.is_empty() {
        return Outcome::na("no boot modes supported");
    }
    let original = mgmt.get_boot_mode(task).await.ok().flatten();
    for m in modes.iter().copied().chain(original) {
        mgmt.set_boot_mode(task, m)
            .await
            .unwrap_or_else(|e| panic!("set_boot_mode({m}) failed: {e}"));
        p.poll(
            &format!("boot mode {m}"),
            || mgmt.get_boot_mode(task),
            |got: &Option<BootMode>| *got == Some(m),
        )
        .await;
    }
    Outcome::Passed
}

/// If sensors are supported: `{sensor_type: {sensor_id: {...}}}`, objects all the way.
pub async fn sensors_data_has_ironics_shape(
    mgmt: &dyn ManagementInterface,
    task: &Task,
) -> Outcome {
    let data = match mgmt.get_sensors_data(task).await {
        Ok(d) => d,
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            return Outcome::na("get_sensors_data is unsupported");
        }
        Err(e) => panic!("get_sensors_data failed: {e}"),
    };
    for (ty, sensors) in &data {
        let sensors = sensors
            .as_object()
            .unwrap_or_else(|| panic!("sensor type {ty} is not an object: {sensors}"));
        for (id, reading) in sensors {
            assert!(
                reading.is_object(),
                "sensor {ty}/{id} is not an object: {reading}"
            );
        }
    }
    Outcome::Passed
}

/// Every management behaviour, selected by what the driver declares. Leaves the
/// boot device set to a one-time `pxe` when supported.
pub async fn run_management_suite(
    mgmt: &dyn ManagementInterface,
    task: &Task,
    p: &Patience,
) -> Report {
    let mut r = Report::default();
    r.add(
        "supported_boot_devices_are_sane",
        supported_boot_devices_are_sane(mgmt, task).await,
    );
    r.add(
        "all_supported_boot_devices_roundtrip",
        all_supported_boot_devices_roundtrip_within(mgmt, task, p).await,
    );
    r.add(
        "unsupported_boot_device_is_invalid_parameter",
        unsupported_boot_device_is_invalid_parameter(mgmt, task).await,
    );
    r.add(
        "boot_mode_roundtrips_if_supported",
        boot_mode_roundtrips_if_supported_within(mgmt, task, p).await,
    );
    r.add(
        "sensors_data_has_ironics_shape",
        sensors_data_has_ironics_shape(mgmt, task).await,
    );
    r.add(
        "validate_reports_missing_keys",
        super::validate_reports_missing_keys(mgmt, task),
    );
    let _ = set_boot_device_roundtrips_within(mgmt, task, BootDevice::Pxe, false, p).await;
    r
}
