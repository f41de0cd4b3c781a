//! Management interface behaviours: one per rule of
//! [`ManagementInterface`](crate::driver::ManagementInterface)'s `# Contract`.

use super::capture::Transcript;
use super::{BmcFixture, Outcome, Report, closed_address};
use crate::driver::{BootDevice, BootDeviceInfo, BootMode, ManagementInterface};
use crate::error::{DriverError, ErrorKind};

async fn supported(mgmt: &dyn ManagementInterface, f: &BmcFixture) -> Vec<BootDevice> {
    mgmt.get_supported_boot_devices(&f.task)
        .await
        .unwrap_or_else(|e| panic!("get_supported_boot_devices failed: {e}"))
}

/// `get_supported_boot_devices` is non-empty, has no duplicates, and includes
/// `pxe` or `disk`.
pub async fn supported_boot_devices_are_sane(
    mgmt: &dyn ManagementInterface,
    f: &BmcFixture,
) -> Outcome {
    let s = supported(mgmt, f).await;
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
    f: &BmcFixture,
    device: BootDevice,
    persistent: bool,
) -> Outcome {
    if !supported(mgmt, f).await.contains(&device) {
        return Outcome::na(format!("{device} is not a supported boot device"));
    }
    mgmt.set_boot_device(&f.task, device, persistent)
        .await
        .unwrap_or_else(|e| {
            panic!("set_boot_device({device}, persistent={persistent}) failed: {e}")
        });
    let first = mgmt
        .get_boot_device(&f.task)
        .await
        .unwrap_or_else(|e| panic!("get_boot_device failed: {e}"));
    if first.boot_device.is_none() {
        return Outcome::na("the BMC does not report the boot device");
    }
    let got: BootDeviceInfo = f
        .patience
        .poll(
            &format!("boot device {device}"),
            || mgmt.get_boot_device(&f.task),
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
/// invalid-parameter error that is not retryable.
pub async fn unsupported_boot_device_is_invalid_parameter(
    mgmt: &dyn ManagementInterface,
    f: &BmcFixture,
) -> Outcome {
    let s = supported(mgmt, f).await;
    let Some(device) = BootDevice::ALL.iter().copied().find(|d| !s.contains(d)) else {
        return Outcome::na("every boot device is supported");
    };
    let e = mgmt
        .set_boot_device(&f.task, device, false)
        .await
        .err()
        .unwrap_or_else(|| panic!("unsupported boot device {device} was accepted"));
    assert_eq!(
        e.kind(),
        ErrorKind::InvalidParameter,
        "unsupported boot device {device} failed with kind {} instead of invalid parameter: {e}",
        e.kind()
    );
    assert!(
        !e.is_retryable(),
        "refusing the unsupported boot device {device} is marked retryable: {e}"
    );
    Outcome::Passed
}

/// Every supported device among pxe, disk, cdrom and bios round-trips, one-time
/// and persistent.
pub async fn all_supported_boot_devices_roundtrip(
    mgmt: &dyn ManagementInterface,
    f: &BmcFixture,
) -> Outcome {
    let mut any = false;
    for d in [
        BootDevice::Pxe,
        BootDevice::Disk,
        BootDevice::Cdrom,
        BootDevice::Bios,
    ] {
        for persistent in [false, true] {
            if set_boot_device_roundtrips(mgmt, f, d, persistent).await == Outcome::Passed {
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

/// If the driver supports boot modes: each supported mode set reads back, and the
/// original mode is restored.
pub async fn boot_mode_roundtrips_if_supported(
    mgmt: &dyn ManagementInterface,
    f: &BmcFixture,
) -> Outcome {
    let modes = match mgmt.get_supported_boot_modes(&f.task).await {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            return Outcome::na("get_supported_boot_modes is unsupported");
        }
        Err(e) => panic!("get_supported_boot_modes failed: {e}"),
    };
    if modes.is_empty() {
        return Outcome::na("no boot modes supported");
    }
    let original = mgmt.get_boot_mode(&f.task).await.ok().flatten();
    for m in modes.iter().copied().chain(original) {
        mgmt.set_boot_mode(&f.task, m)
            .await
            .unwrap_or_else(|e| panic!("set_boot_mode({m}) failed: {e}"));
        f.patience
            .poll(
                &format!("boot mode {m}"),
                || mgmt.get_boot_mode(&f.task),
                |got: &Option<BootMode>| *got == Some(m),
            )
            .await;
    }
    Outcome::Passed
}

/// If sensors are supported: `{sensor_type: {sensor_id: {...}}}`, objects all the way.
pub async fn sensors_data_has_ironics_shape(
    mgmt: &dyn ManagementInterface,
    f: &BmcFixture,
) -> Outcome {
    let data = match mgmt.get_sensors_data(&f.task).await {
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

/// The optional reads (`get_sensors_data`, `get_supported_boot_modes`,
/// `get_boot_mode`, `get_secure_boot_state`, `get_supported_indicators`,
/// `get_virtual_media`, `get_mac_addresses`) either work or fail with
/// `Unsupported` (not retryable): an interface that lacks one says so in the
/// contract's terms, so the API can answer "not supported" rather than "error".
pub async fn optional_methods_work_or_are_unsupported(
    mgmt: &dyn ManagementInterface,
    f: &BmcFixture,
) -> Outcome {
    let t = &f.task;
    let results: Vec<(&str, Option<DriverError>)> = vec![
        ("get_sensors_data", mgmt.get_sensors_data(t).await.err()),
        (
            "get_supported_boot_modes",
            mgmt.get_supported_boot_modes(t).await.err(),
        ),
        ("get_boot_mode", mgmt.get_boot_mode(t).await.err()),
        (
            "get_secure_boot_state",
            mgmt.get_secure_boot_state(t).await.err(),
        ),
        (
            "get_supported_indicators",
            mgmt.get_supported_indicators(t).await.err(),
        ),
        ("get_virtual_media", mgmt.get_virtual_media(t).await.err()),
        ("get_mac_addresses", mgmt.get_mac_addresses(t).await.err()),
    ];
    for (what, e) in results {
        let Some(e) = e else { continue };
        assert_eq!(
            e.kind(),
            ErrorKind::Unsupported,
            "{what} failed with kind {} instead of working or being unsupported: {e}",
            e.kind()
        );
        assert!(!e.is_retryable(), "{what}: unsupported yet retryable: {e}");
    }
    Outcome::Passed
}

/// Wrong credentials: reading and setting the boot device fail with
/// `Unauthenticated`, not retryable. Needs [`BmcFixture::with_password_key`].
pub async fn management_wrong_credentials_are_final(
    mgmt: &dyn ManagementInterface,
    f: &BmcFixture,
) -> Outcome {
    let Some(bad) = f.with_wrong_password() else {
        return Outcome::na("the fixture names no password key (BmcFixture::with_password_key)");
    };
    let device = supported(mgmt, f).await[0];
    for (what, e) in [
        ("get_boot_device", mgmt.get_boot_device(&bad).await.err()),
        (
            "set_boot_device",
            mgmt.set_boot_device(&bad, device, false).await.err(),
        ),
    ] {
        let e = e.unwrap_or_else(|| panic!("{what} with a wrong password succeeded"));
        assert_eq!(
            e.kind(),
            ErrorKind::Unauthenticated,
            "{what} with a wrong password failed with kind {} instead of unauthenticated: {e}",
            e.kind()
        );
        assert!(
            !e.is_retryable(),
            "{what} with a wrong password is marked retryable: {e}"
        );
    }
    Outcome::Passed
}

/// No secret in what the management interface says or logs (see
/// [`secrets_never_leak`](super::secrets_never_leak)).
pub async fn management_secrets_never_leak(
    mgmt: &dyn ManagementInterface,
    f: &BmcFixture,
) -> Outcome {
    let secrets = f.secrets();
    let out = Transcript::default();
    out.debug("the interface", &mgmt);
    out.result("validate", &mgmt.validate(&f.task));
    out.run(async {
        let r = mgmt.get_boot_device(&f.task).await;
        out.result("get_boot_device", &r);
        let r = mgmt.get_supported_boot_devices(&f.task).await;
        out.result("get_supported_boot_devices", &r);
        if let Ok(s) = &r
            && let Some(d) = s.first()
        {
            let r = mgmt.set_boot_device(&f.task, *d, false).await;
            out.result("set_boot_device", &r);
        }
        let r = mgmt.get_sensors_data(&f.task).await;
        out.result("get_sensors_data", &r);
        if let Some(bad) = f.with_wrong_password() {
            out.result("validate (wrong password)", &mgmt.validate(&bad));
            let r = mgmt.get_boot_device(&bad).await;
            out.result("get_boot_device (wrong password)", &r);
        }
        if let Some(t) = f.pointed_at(closed_address()) {
            let r = mgmt.get_boot_device(&t).await;
            out.result("get_boot_device (unreachable)", &r);
        }
    })
    .await;
    out.debug("the interface after the calls", &mgmt);
    if let Some(line) = out.leak(&secrets) {
        panic!("a secret of driver_info appears in what the driver said or logged: {line}");
    }
    Outcome::Passed
}

/// Every management behaviour, selected by what the driver declares and the
/// fixture offers. Leaves the boot device set to a one-time `pxe` when supported.
pub async fn run_management_suite(mgmt: &dyn ManagementInterface, f: &BmcFixture) -> Report {
    let mut r = Report::default();
    r.add(
        "supported_boot_devices_are_sane",
        supported_boot_devices_are_sane(mgmt, f).await,
    );
    r.add(
        "all_supported_boot_devices_roundtrip",
        all_supported_boot_devices_roundtrip(mgmt, f).await,
    );
    r.add(
        "unsupported_boot_device_is_invalid_parameter",
        unsupported_boot_device_is_invalid_parameter(mgmt, f).await,
    );
    r.add(
        "boot_mode_roundtrips_if_supported",
        boot_mode_roundtrips_if_supported(mgmt, f).await,
    );
    r.add(
        "sensors_data_has_ironics_shape",
        sensors_data_has_ironics_shape(mgmt, f).await,
    );
    r.add(
        "optional_methods_work_or_are_unsupported",
        optional_methods_work_or_are_unsupported(mgmt, f).await,
    );
    r.add(
        "management_wrong_credentials_are_final",
        management_wrong_credentials_are_final(mgmt, f).await,
    );
    r.add(
        "management_secrets_never_leak",
        management_secrets_never_leak(mgmt, f).await,
    );
    r.add(
        "validate_reports_missing_keys",
        super::validate_reports_missing_keys(mgmt, &f.task),
    );
    r.add(
        "validate_never_contacts_bmc",
        super::validate_never_contacts_bmc_with(mgmt, f).await,
    );
    let _ = set_boot_device_roundtrips(mgmt, f, BootDevice::Pxe, false).await;
    r
}
