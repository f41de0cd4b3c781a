//! The second profile: `sushy-emulator` with its libvirt driver on libvirt's
//! in-process `test:///default` hypervisor (no daemon), which has what the fake
//! driver lacks: BIOS attributes and registry, processors and memory, volumes,
//! firmware versions for SimpleUpdate.

mod common;

use common::{IsoServer, LIBVIRT_TEST_UUID, Sushy, SushyOptions, fast_config, raw_get, task};
use ironic_core::driver::{
    BiosInterface, BiosSetting, FirmwareInterface, FirmwareUpdate, InspectInterface,
    InspectOutcome, ManagementInterface, PowerInterface, RaidInterface, Step, StepKind,
};
use ironic_core::model::InterfaceType;
use ironic_core::{ErrorKind, PowerAction, PowerState};
use ironic_drivers_redfish::{
    RedfishBios, RedfishFirmware, RedfishInspect, RedfishManagement, RedfishPower, RedfishRaid,
};
use serde_json::json;

fn libvirt_emulator() -> Sushy {
    Sushy::start(SushyOptions {
        storage: true,
        ..Default::default()
    })
}

fn setting(name: &str, value: &str) -> BiosSetting {
    BiosSetting::new(name, Some(value.into()))
}

#[tokio::test(flavor = "multi_thread")]
async fn bios_read_apply_and_factory_reset() {
    let emu = libvirt_emulator();
    let bios = RedfishBios::new(fast_config());
    let mut t = task(&emu.address, json!({}));
    let settings = bios.cache_bios_settings(&mut t).await.unwrap();
    let turbo = settings.iter().find(|s| s.name == "ProcTurboMode").unwrap();
    assert_eq!(turbo.value.as_deref(), Some("Enabled"));
    // From the attribute registry.
    assert_eq!(
        turbo.allowable_values.as_deref(),
        Some(&["Enabled".to_owned(), "Disabled".to_owned()][..])
    );
    assert_eq!(turbo.read_only, Some(false));

    bios.apply_configuration(&mut t, &[setting("ProcTurboMode", "Disabled")])
        .await
        .unwrap();
    let after = bios.cache_bios_settings(&mut t).await.unwrap();
    let turbo = after.iter().find(|s| s.name == "ProcTurboMode").unwrap();
    assert_eq!(turbo.value.as_deref(), Some("Disabled"));

    let e = bios
        .apply_configuration(&mut t, &[setting("NoSuchKnob", "1")])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{e}");
    assert!(e.message().contains("NoSuchKnob"));

    // As a clean step with arguments, the way the conductor runs it.
    let step = Step::new(InterfaceType::Bios, "apply_configuration").with_args(
        json!({"settings": [{"name": "QuietBoot", "value": "false"}]})
            .as_object()
            .unwrap()
            .clone(),
    );
    ironic_core::driver::BaseInterface::execute_step(&bios, &mut t, StepKind::Clean, &step)
        .await
        .unwrap();
    let s = raw_get(
        &emu.address,
        &format!("/redfish/v1/Systems/{LIBVIRT_TEST_UUID}/BIOS"),
        None,
    )
    .await;
    assert_eq!(s["Attributes"]["QuietBoot"], json!("false"));

    bios.factory_reset(&mut t).await.unwrap();
    let reset = bios.cache_bios_settings(&mut t).await.unwrap();
    let turbo = reset.iter().find(|s| s.name == "ProcTurboMode").unwrap();
    assert_eq!(turbo.value.as_deref(), Some("Enabled"));
}

#[tokio::test(flavor = "multi_thread")]
async fn raid_creates_volumes_from_target_raid_config() {
    let emu = libvirt_emulator();
    let raid = RedfishRaid::new(fast_config());
    let mut t = task(&emu.address, json!({}));
    t.node.target_raid_config = json!({"logical_disks": [
        {"size_gb": 10, "raid_level": "1", "is_root_volume": true, "volume_name": "root"},
    ]})
    .as_object()
    .unwrap()
    .clone();
    raid.validate_raid_config(&t, &t.node.target_raid_config.clone())
        .unwrap();
    raid.create_configuration(&mut t, true, true, true)
        .await
        .unwrap();
    let lds = t.node.raid_config["logical_disks"].as_array().unwrap();
    assert_eq!(lds.len(), 1);
    assert_eq!(lds[0]["controller"], json!("1"));
    assert_eq!(
        lds[0]["physical_disks"],
        json!(["58CFF987G8J2V9KL", "32ADF365C6C1B7BD"])
    );
    let vols = raw_get(
        &emu.address,
        &format!("/redfish/v1/Systems/{LIBVIRT_TEST_UUID}/Storage/1/Volumes"),
        None,
    )
    .await;
    assert_eq!(vols["Members"].as_array().unwrap().len(), 1, "{vols}");

    // Too big for the drives: a clear error before anything is sent.
    t.node.target_raid_config = json!({"logical_disks": [{"size_gb": 5000, "raid_level": "1"}]})
        .as_object()
        .unwrap()
        .clone();
    let e = raid
        .create_configuration(&mut t, true, true, false)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{e}");

    // sushy-emulator has no DELETE for volumes: the BMC's refusal is reported.
    let e = raid.delete_configuration(&mut t).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.message().contains("DELETE"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn firmware_simple_update_follows_the_task() {
    let emu = libvirt_emulator();
    let files = IsoServer::start().await;
    let fw = RedfishFirmware::new(fast_config());
    let mut t = task(&emu.address, json!({}));
    let before = fw.cache_firmware_components(&mut t).await.unwrap();
    let bios = before.iter().find(|c| c.component == "bios").unwrap();
    assert_eq!(bios.current_version.as_deref(), Some("1.0.0"));
    assert!(before.iter().any(|c| c.component == "bmc"));

    fw.update(&mut t, &[FirmwareUpdate::new("bios", files.url.clone())])
        .await
        .unwrap();
    let after = fw.cache_firmware_components(&mut t).await.unwrap();
    let bios = after.iter().find(|c| c.component == "bios").unwrap();
    assert_eq!(bios.current_version.as_deref(), Some("1.1.0"));
    assert!(t.node.internal("redfish_firmware_updates").is_some());

    // The emulator refuses Manager targets; an unknown component never leaves.
    for (component, kind) in [
        ("bmc", ErrorKind::InvalidParameter),
        ("nic:1", ErrorKind::InvalidParameter),
    ] {
        let e = fw
            .update(&mut t, &[FirmwareUpdate::new(component, files.url.clone())])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{component}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn inspection_with_processors_and_memory() {
    let emu = libvirt_emulator();
    let inspect = RedfishInspect::new(fast_config());
    let mut t = task(&emu.address, json!({}));
    let InspectOutcome::Done(data) = inspect.inspect_hardware(&mut t).await.unwrap() else {
        panic!("out-of-band inspection must finish");
    };
    // TotalThreads arrive as strings ("1"): tolerated.
    assert_eq!(data.properties["cpus"], json!(2));
    assert_eq!(data.properties["cpu_arch"], json!("x86_64"));
    assert_eq!(data.properties["memory_mb"], json!(8192));
    // the smaller drive of at least 4 GiB (11.5 GiB) less one, as Ironic computes it
    assert_eq!(data.properties["local_gb"], json!(10));
    assert_eq!(data.ports.len(), 1);
    assert_eq!(data.ports[0].address.to_string(), "aa:bb:cc:dd:ee:ff");
}

#[tokio::test(flavor = "multi_thread")]
async fn power_and_nmi_on_the_libvirt_domain() {
    let emu = libvirt_emulator();
    let power = RedfishPower::new(fast_config());
    let mgmt = RedfishManagement::new(fast_config());
    let t = task(&emu.address, json!({}));
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::On);
    mgmt.inject_nmi(&t).await.unwrap();
    power
        .set_power_state(&t, PowerAction::PowerOff, None)
        .await
        .unwrap();
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::Off);
    power.reboot(&t, None).await.unwrap();
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::On);
}
