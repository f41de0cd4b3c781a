//! Power, management, virtual-media boot and inspection against a real
//! `sushy-emulator` with its fake driver.

mod common;

use common::{FakeSystem, IsoServer, Sushy, SushyOptions, fast_config, raw_get, task};
use ironic_core::driver::{
    BaseInterface, BootDevice, BootInterface, BootMode, InspectInterface, InspectOutcome,
    ManagementInterface, PowerInterface, RamdiskKind, RamdiskParams, VmediaDevice,
};
use ironic_core::{ErrorKind, InterfaceRegistry, PowerAction, PowerState};
use ironic_drivers_redfish::{
    RedfishHttpsBoot, RedfishInspect, RedfishManagement, RedfishPower, RedfishVirtualMediaBoot,
    register,
};
use serde_json::json;

fn one_system(power: &'static str) -> (Sushy, FakeSystem) {
    let mut sys = FakeSystem::new(1);
    sys.power = power;
    sys.macs = vec!["52:54:00:12:34:56".into(), "52:54:00:12:34:57".into()];
    let emu = Sushy::start(SushyOptions {
        fake_systems: vec![sys.clone()],
        storage: true,
        ..Default::default()
    });
    (emu, sys)
}

#[tokio::test(flavor = "multi_thread")]
async fn power_on_off_reboot_with_polling() {
    let (emu, _) = one_system("Off");
    let power = RedfishPower::new(fast_config());
    let t = task(&emu.address, json!({}));
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::Off);

    // sushy-emulator applies power changes 1-11 s later: set_power_state polls.
    power
        .set_power_state(&t, PowerAction::PowerOn, None)
        .await
        .unwrap();
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::On);
    // Already on: succeeds without a change.
    power
        .set_power_state(&t, PowerAction::PowerOn, None)
        .await
        .unwrap();
    power.reboot(&t, None).await.unwrap();
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::On);
    power
        .set_power_state(&t, PowerAction::SoftPowerOff, None)
        .await
        .unwrap();
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::Off);
    // Reboot of a node that is off powers it on.
    power.reboot(&t, None).await.unwrap();
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::On);
    power
        .set_power_state(&t, PowerAction::PowerOff, None)
        .await
        .unwrap();
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::Off);
}

#[tokio::test(flavor = "multi_thread")]
async fn management_boot_device_mode_led_and_macs() {
    let (emu, sys) = one_system("Off");
    let mgmt = RedfishManagement::new(fast_config());
    let t = task(&emu.address, json!({"redfish_system_id": sys.uuid}));

    let devices = mgmt.get_supported_boot_devices(&t).await.unwrap();
    for d in [BootDevice::Pxe, BootDevice::Cdrom, BootDevice::Disk] {
        assert!(devices.contains(&d), "{devices:?}");
    }
    mgmt.set_boot_device(&t, BootDevice::Pxe, true)
        .await
        .unwrap();
    let info = mgmt.get_boot_device(&t).await.unwrap();
    assert_eq!(info.boot_device, Some(BootDevice::Pxe));
    assert_eq!(info.persistent, Some(true));
    mgmt.set_boot_device(&t, BootDevice::Cdrom, false)
        .await
        .unwrap();
    let info = mgmt.get_boot_device(&t).await.unwrap();
    assert_eq!(info.boot_device, Some(BootDevice::Cdrom));
    // sushy-emulator ignores BootSourceOverrideEnabled (always Continuous).
    assert_eq!(info.persistent, Some(true));
    let e = mgmt
        .set_boot_device(&t, BootDevice::Floppy, false)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{e}");

    assert_eq!(mgmt.get_boot_mode(&t).await.unwrap(), Some(BootMode::Uefi));
    mgmt.set_boot_mode(&t, BootMode::Bios).await.unwrap();
    assert_eq!(mgmt.get_boot_mode(&t).await.unwrap(), Some(BootMode::Bios));
    mgmt.set_boot_mode(&t, BootMode::Uefi).await.unwrap();
    assert_eq!(mgmt.get_boot_mode(&t).await.unwrap(), Some(BootMode::Uefi));

    assert!(!mgmt.get_secure_boot_state(&t).await.unwrap());
    mgmt.set_secure_boot_state(&t, true).await.unwrap();
    assert!(mgmt.get_secure_boot_state(&t).await.unwrap());

    let ind = mgmt.get_supported_indicators(&t).await.unwrap();
    assert!(ind.contains_key("system"), "{ind:?}");
    mgmt.set_indicator_state(&t, "system", "led", "BLINKING")
        .await
        .unwrap();
    assert_eq!(
        mgmt.get_indicator_state(&t, "system", "led").await.unwrap(),
        "BLINKING"
    );
    mgmt.set_indicator_state(&t, "system", "led", "OFF")
        .await
        .unwrap();
    assert_eq!(
        mgmt.get_indicator_state(&t, "system", "led").await.unwrap(),
        "OFF"
    );

    let macs = mgmt.get_mac_addresses(&t).await.unwrap();
    assert_eq!(macs, vec!["52:54:00:12:34:56", "52:54:00:12:34:57"]);
    assert_eq!(
        mgmt.detect_vendor(&t).await.unwrap().as_deref(),
        Some("Sushy Emulator")
    );
    assert_eq!(
        mgmt.get_node_health(&t).await.unwrap().as_deref(),
        Some("OK")
    );

    // Sensors: the emulator's chassis has a Thermal resource.
    let sensors = mgmt.get_sensors_data(&t).await.unwrap();
    assert!(
        !sensors["Temperature"].as_object().unwrap().is_empty(),
        "{sensors:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn virtual_media_boot_flow() {
    let (emu, sys) = one_system("Off");
    let iso = IsoServer::start().await;
    let boot = RedfishVirtualMediaBoot::new(fast_config());
    let mut t = task(&emu.address, json!({"redfish_deploy_iso": iso.url}));
    boot.validate(&t).unwrap();

    // Nothing inserted yet: cleaning up is fine.
    boot.clean_up_ramdisk(&mut t).await.unwrap();

    let params =
        RamdiskParams::new(RamdiskKind::Deploy).with_param("ipa-api-url", "http://127.0.0.1:6385");
    boot.prepare_ramdisk(&mut t, &params).await.unwrap();
    let cd = raw_get(
        &emu.address,
        &format!("/redfish/v1/Systems/{}/VirtualMedia/Cd", sys.uuid),
        None,
    )
    .await;
    assert_eq!(cd["Inserted"], json!(true), "{cd}");
    assert_eq!(cd["Image"], json!(iso.url));
    let s = raw_get(
        &emu.address,
        &format!("/redfish/v1/Systems/{}", sys.uuid),
        None,
    )
    .await;
    assert_eq!(s["Boot"]["BootSourceOverrideTarget"], json!("Cd"));
    assert!(t.node.internal("redfish_vmedia").is_some());

    // Idempotent.
    boot.prepare_ramdisk(&mut t, &params).await.unwrap();

    boot.prepare_instance(&mut t).await.unwrap();
    let cd = raw_get(
        &emu.address,
        &format!("/redfish/v1/Systems/{}/VirtualMedia/Cd", sys.uuid),
        None,
    )
    .await;
    assert_eq!(cd["Inserted"], json!(false), "{cd}");
    let s = raw_get(
        &emu.address,
        &format!("/redfish/v1/Systems/{}", sys.uuid),
        None,
    )
    .await;
    assert_eq!(s["Boot"]["BootSourceOverrideTarget"], json!("Hdd"));
    // Nothing left to eject.
    boot.clean_up_instance(&mut t).await.unwrap();
    assert!(t.node.internal("redfish_vmedia").is_none());

    // A URL the BMC cannot download: a clear error.
    let mut bad = task(
        &emu.address,
        json!({"deploy_iso": iso.url.replace("deploy.iso", "missing.iso")}),
    );
    let e = boot.prepare_ramdisk(&mut bad, &params).await.unwrap_err();
    assert!(e.message().contains("InsertMedia"), "{e}");
}

/// `redfish-https` on sushy-emulator: it lists `UefiHttp` (and `HttpBootUri`)
/// only in UEFI mode, and its fake driver cannot keep an `HttpBootUri` (it
/// answers 400 "Failed to save HttpBootUri field value", which Ironic's
/// `RedfishHttpsBoot` gets too; the lab simulator and `lab_redfish_driver` cover
/// the boot itself).
#[tokio::test(flavor = "multi_thread")]
async fn https_boot_on_the_emulator_as_ironic_sees_it() {
    let (emu, sys) = one_system("Off");
    let iso = IsoServer::start().await;
    let boot = RedfishHttpsBoot::new(fast_config());
    let mgmt = RedfishManagement::new(fast_config());
    let mut t = task(&emu.address, json!({"redfish_deploy_iso": iso.url}));
    boot.validate(&t).unwrap();
    let params = RamdiskParams::new(RamdiskKind::Deploy);
    let system = format!("/redfish/v1/Systems/{}", sys.uuid);

    // Legacy BIOS: no UefiHttp among the allowed targets: Ironic's refusal.
    mgmt.set_boot_mode(&t, BootMode::Bios).await.unwrap();
    let e = boot.prepare_ramdisk(&mut t, &params).await.unwrap_err();
    assert!(
        e.message()
            .contains("hardware does not support feature UefiHttp boot"),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::Unsupported);

    // UEFI: UefiHttp allowed, HttpBootUri advertised ("None"); the PATCH
    // carries the URL and the fake driver refuses it.
    mgmt.set_boot_mode(&t, BootMode::Uefi).await.unwrap();
    let s = raw_get(&emu.address, &system, None).await;
    assert!(
        s["Boot"]["BootSourceOverrideTarget@Redfish.AllowableValues"]
            .as_array()
            .unwrap()
            .contains(&json!("UefiHttp")),
        "{s}"
    );
    let e = boot.prepare_ramdisk(&mut t, &params).await.unwrap_err();
    assert!(e.message().contains("HTTP 400"), "{e}");
    assert!(emu.log().contains("HttpBootUri"), "{}", emu.log());

    // UefiHttp without a URL (management, as the API sets it): sent without
    // one, and the emulator boots from the network (its DHCP-based HTTP boot).
    mgmt.set_boot_device(&t, BootDevice::UefiHttp, false)
        .await
        .unwrap();
    let s = raw_get(&emu.address, &system, None).await;
    assert_eq!(s["Boot"]["BootSourceOverrideTarget"], json!("Pxe"), "{s}");
    // prepare_instance boots the disk
    boot.prepare_instance(&mut t).await.unwrap();
    let s = raw_get(&emu.address, &system, None).await;
    assert_eq!(s["Boot"]["BootSourceOverrideTarget"], json!("Hdd"), "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn management_attaches_and_detaches_virtual_media() {
    let (emu, sys) = one_system("Off");
    let iso = IsoServer::start().await;
    let mgmt = RedfishManagement::new(fast_config());
    let t = task(&emu.address, json!({}));
    mgmt.attach_virtual_media(&t, VmediaDevice::Cdrom, &iso.url)
        .await
        .unwrap();
    let path = format!("/redfish/v1/Systems/{}/VirtualMedia/Cd", sys.uuid);
    assert_eq!(
        raw_get(&emu.address, &path, None).await["Inserted"],
        json!(true)
    );
    mgmt.detach_virtual_media(&t, &[]).await.unwrap();
    assert_eq!(
        raw_get(&emu.address, &path, None).await["Inserted"],
        json!(false)
    );
    mgmt.detach_virtual_media(&t, &[VmediaDevice::Cdrom])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn inspection_finds_nics_disks_and_boot_mode() {
    let (emu, _) = one_system("Off");
    let inspect = RedfishInspect::new(fast_config());
    let mut t = task(&emu.address, json!({}));
    let InspectOutcome::Done(data) = inspect.inspect_hardware(&mut t).await.unwrap() else {
        panic!("out-of-band inspection must finish");
    };
    let macs: Vec<String> = data.ports.iter().map(|p| p.address.to_string()).collect();
    assert_eq!(macs, vec!["52:54:00:12:34:56", "52:54:00:12:34:57"]);
    assert_eq!(data.boot_mode.as_deref(), Some("uefi"));
    // Ironic's rule (redfish inspect `_detect_local_gb`): the smallest drive of at
    // least 4 GiB, 12345670000 bytes = 11.5 GiB, less one GiB, truncated; never
    // the sum of both drives (849 GiB).
    assert_eq!(data.properties["local_gb"], json!(10));
    let inv = data.inventory.unwrap();
    assert_eq!(inv["disks"].as_array().unwrap().len(), 2, "{inv}");
}

#[tokio::test(flavor = "multi_thread")]
async fn several_systems_need_a_system_id() {
    let emu = Sushy::start(SushyOptions {
        fake_systems: vec![FakeSystem::new(1), FakeSystem::new(2)],
        ..Default::default()
    });
    let power = RedfishPower::new(fast_config());
    let e = power
        .get_power_state(&task(&emu.address, json!({})))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter);
    assert!(e.message().contains("redfish_system_id"), "{e}");
    let second = FakeSystem::new(2);
    // By Id and by path.
    for id in [
        second.uuid.clone(),
        format!("/redfish/v1/Systems/{}", second.uuid),
    ] {
        let t = task(&emu.address, json!({"redfish_system_id": id}));
        assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::Off);
    }
    let e = power
        .get_power_state(&task(&emu.address, json!({"redfish_system_id": "nope"})))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

#[test]
fn register_adds_the_redfish_hardware_type_and_interfaces() {
    use ironic_core::model::InterfaceType;
    let mut reg = InterfaceRegistry::with_noop();
    register(&mut reg, fast_config());
    let hw = reg.hardware_type("redfish").unwrap();
    for (t, want) in [
        (InterfaceType::Power, "redfish"),
        (InterfaceType::Management, "redfish"),
        (InterfaceType::Inspect, "redfish"),
        (InterfaceType::Boot, "redfish-virtual-media"),
    ] {
        assert_eq!(reg.enabled_for(&hw, t).first().copied(), Some(want), "{t}");
    }
    let boots = reg.enabled_for(&hw, InterfaceType::Boot);
    assert!(boots.contains(&"redfish-https"), "{boots:?}");
    // Ironic's order: the redfish vendor passthru (subscriptions, eject_vmedia)
    // first, then no-vendor.
    assert_eq!(
        reg.enabled_for(&hw, InterfaceType::Vendor),
        vec!["redfish", "no-vendor"]
    );
    let props = reg.properties(&hw);
    assert!(props["redfish_address"].ends_with("Required."), "{props:?}");
    assert!(props["redfish_password"].ends_with("Optional."));
}
