//! Parsing vendor-shaped payloads (tests/fixtures/*), including values outside
//! the schema and fields of the wrong type.

use ironic_core::PowerState;
use ironic_core::driver::{BiosSetting, BootDevice};
use serde_json::json;

use crate::inspect::{Disk, Facts, cpu_arch, drive_disk, inspection_data, nic_mac};
use crate::management::device_of;
use crate::models::*;
use crate::power::{pick_reset, power_state_of};

macro_rules! fixture {
    ($path:literal) => {
        include_bytes!(concat!("../../tests/fixtures/", $path))
    };
}

fn p<T: serde::de::DeserializeOwned>(body: &[u8]) -> T {
    parse(body).unwrap()
}

#[test]
fn dell_idrac() {
    let s: ComputerSystem = p(fixture!("dell/system.json"));
    assert_eq!(
        s.odata_id.as_deref(),
        Some("/redfish/v1/Systems/System.Embedded.1")
    );
    assert_eq!(power_state_of(&s), PowerState::On);
    let boot = s.boot.clone().unwrap();
    assert_eq!(boot.target, Some(BootSource::None));
    assert_eq!(boot.enabled, Some(BootOverrideEnabled::Disabled));
    assert_eq!(boot.mode, Some(BootOverrideMode::Uefi));
    let devices: Vec<BootDevice> = boot
        .target_allowable
        .iter()
        .filter_map(|t| device_of(&BootSource::from(t.as_str())))
        .collect();
    assert_eq!(
        devices,
        [
            BootDevice::Pxe,
            BootDevice::Floppy,
            BootDevice::Cdrom,
            BootDevice::Disk,
            BootDevice::Bios,
            BootDevice::UefiHttp
        ]
    );
    assert_eq!(
        s.managers()[0].odata_id,
        "/redfish/v1/Managers/iDRAC.Embedded.1"
    );
    assert!(s.virtual_media.is_some());
    assert_eq!(
        s.oem["Dell"]["DellSystem"]["SystemGeneration"],
        json!("14G Monolithic")
    );
    let reset = s.reset_action().unwrap();
    assert!(reset.target.ends_with("ComputerSystem.Reset"));
    assert_eq!(
        pick_reset(
            &reset.allowable_values("ResetType"),
            &[ResetType::ForceRestart]
        ),
        Some(ResetType::ForceRestart)
    );

    let vm: VirtualMedia = p(fixture!("dell/virtual_media_cd.json"));
    assert!(vm.accepts(&["CD"]) && !vm.accepts(&["Floppy"]));
    assert!(!vm.is_inserted());
    assert!(vm.insert_action().unwrap().target.ends_with("InsertMedia"));

    let bios: Bios = p(fixture!("dell/bios.json"));
    let settings = bios.settings.clone().unwrap();
    assert_eq!(
        settings.settings_object.unwrap().odata_id,
        "/redfish/v1/Systems/System.Embedded.1/Bios/Settings"
    );
    assert_eq!(bios.attributes["AcPwrRcvryUserDelay"], json!(60));
    assert!(bios.reset_action().is_some());

    let d: Drive = p(fixture!("dell/drive.json"));
    let disk = drive_disk(&d, "x").unwrap();
    assert_eq!(disk.size, 599550590976);
    assert_eq!(disk.rotational, Some(true));
    assert_eq!(d.links.unwrap().volumes.len(), 1);

    let nic: EthernetInterface = p(fixture!("dell/ethernet_interface.json"));
    assert_eq!(nic_mac(&nic), Some("E4:43:4B:12:34:56"));

    let t: Task = p(fixture!("dell/task_running.json"));
    assert_eq!(t.task_state, Some(TaskState::Starting));
    assert!(!t.task_state.unwrap().is_final());
    assert_eq!(t.percent_complete, Some(0));
}

#[test]
fn hpe_ilo() {
    let s: ComputerSystem = p(fixture!("hpe/system.json"));
    assert_eq!(s.etag.as_deref(), Some("W/\"9D3E4F5A\""));
    assert_eq!(
        s.bios.as_ref().unwrap().odata_id,
        "/redfish/v1/systems/1/bios/"
    );
    assert_eq!(s.indicator_led, Some(IndicatorLed::Off));
    assert_eq!(s.oem["Hpe"]["PostState"], json!("FinishedPost"));
    // "State": "Starting" is not an enum here; kept as text.
    assert_eq!(s.status.unwrap().state.as_deref(), Some("Starting"));

    let m: Manager = p(fixture!("hpe/manager.json"));
    assert_eq!(
        m.virtual_media.unwrap().odata_id,
        "/redfish/v1/Managers/1/VirtualMedia/"
    );
    assert_eq!(m.firmware_version.as_deref(), Some("iLO 5 v2.72"));

    let vm: VirtualMedia = p(fixture!("hpe/virtual_media_cd.json"));
    assert!(vm.is_inserted());
    assert_eq!(
        vm.image.as_deref(),
        Some("http://10.0.0.1/images/deploy.iso")
    );
    assert!(vm.eject_action().is_some());

    let bios: Bios = p(fixture!("hpe/bios.json"));
    let settings = bios.settings.unwrap();
    assert_eq!(
        settings.settings_object.unwrap().odata_id,
        "/redfish/v1/systems/1/bios/settings/"
    );
    assert_eq!(settings.messages.len(), 2);
    assert_eq!(
        settings.messages[1].message_id.as_deref(),
        Some("Base.1.0.PropertyValueNotInList")
    );

    let t: Task = p(fixture!("hpe/task_completed.json"));
    // PercentComplete sent as a string.
    assert_eq!(t.percent_complete, Some(100));
    assert!(t.task_state.as_ref().unwrap().is_final());
    assert_eq!(t.message_text(), "The update was successful.");
}

#[test]
fn values_outside_the_schema_and_wrong_types() {
    let s: ComputerSystem = p(fixture!("hpe/system_unknown_power.json"));
    assert_eq!(s.power_state, Some(PowerState_::Other("Unknown".into())));
    assert_eq!(power_state_of(&s), PowerState::Error);
    assert_eq!(
        s.indicator_led,
        Some(IndicatorLed::Other("Flashing".into()))
    );
    let boot = s.boot.clone().unwrap();
    assert_eq!(boot.target, Some(BootSource::UefiBootNext));
    assert_eq!(device_of(boot.target.as_ref().unwrap()), None);
    assert_eq!(s.memory_summary.as_ref().unwrap().total_gib, None);
    assert_eq!(s.processor_summary.as_ref().unwrap().count, None);
    assert!(
        s.status.is_none(),
        "a string where an object belongs reads as absent"
    );
    assert!(
        s.managers().is_empty(),
        "an object where a list belongs reads as empty"
    );
    // Nothing of that stops inspection.
    let data = inspection_data(&Facts {
        system: s,
        ..Default::default()
    });
    assert!(data.properties.get("memory_mb").is_none());
    assert_eq!(data.boot_mode.as_deref(), Some("uefi"));
}

#[test]
fn supermicro() {
    let s: ComputerSystem = p(fixture!("supermicro/system.json"));
    // Numbers sent as strings.
    assert_eq!(s.processor_summary.as_ref().unwrap().count, Some(2));
    assert_eq!(s.memory_summary.as_ref().unwrap().total_gib, Some(64.0));
    assert_eq!(s.status.as_ref().unwrap().health, Some(Health::Critical));
    let boot = s.boot.clone().unwrap();
    assert_eq!(boot.target, Some(BootSource::Other("UsbCd".into())));
    assert_eq!(boot.enabled, Some(BootOverrideEnabled::Once));
    assert_eq!(boot.mode, Some(BootOverrideMode::Legacy));
    assert_eq!(boot.mode_allowable, ["Legacy", "UEFI"]);
    // The reset action names its ActionInfo instead of allowable values.
    let reset = s.reset_action().unwrap();
    assert!(reset.allowable_values("ResetType").is_empty());
    assert_eq!(
        pick_reset(
            &reset.allowable_values("ResetType"),
            &[ResetType::On, ResetType::ForceOn]
        ),
        Some(ResetType::On)
    );
    let data = inspection_data(&Facts {
        system: s,
        ..Default::default()
    });
    assert_eq!(data.properties["memory_mb"], json!(65536));
    assert_eq!(data.properties["cpus"], json!(2));
    assert_eq!(data.boot_mode.as_deref(), Some("bios"));

    let vm: VirtualMedia = p(fixture!("supermicro/virtual_media_cd.json"));
    // Booleans sent as strings.
    assert_eq!(vm.inserted, Some(false));
    assert_eq!(vm.write_protected, Some(true));
    assert!(!vm.is_inserted());

    // A leading blank line, a device that is not an object, a negative size.
    let ss: SimpleStorage = p(fixture!("supermicro/simple_storage.json"));
    assert_eq!(ss.devices.len(), 3);
    assert_eq!(ss.devices[0].capacity_bytes, Some(500107862016));
    assert!(ss.devices[1].status.as_ref().unwrap().is_absent());
    assert_eq!(ss.devices[2].capacity_bytes, None);

    // An empty MACAddress next to a dash-separated PermanentMACAddress.
    let nic: EthernetInterface = p(fixture!("supermicro/ethernet_interface.json"));
    assert_eq!(nic.speed_mbps, Some(1000));
    let data = inspection_data(&Facts {
        nics: vec![nic],
        ..Default::default()
    });
    assert_eq!(data.ports[0].address.to_string(), "ac:1f:6b:12:34:56");
}

#[test]
fn lenovo_xcc() {
    let s: ComputerSystem = p(fixture!("lenovo/system.json"));
    assert_eq!(s.etag.as_deref(), Some("\"1b1f0e6c0a7e1b2f9dc\""));
    assert_eq!(s.location_indicator_active, Some(false));
    assert_eq!(
        s.boot.as_ref().unwrap().http_boot_uri.as_deref(),
        Some("None")
    );
    let cpu: Processor = p(fixture!("lenovo/processor.json"));
    assert_eq!(cpu_arch(&cpu), Some("x86_64"));
    let data = inspection_data(&Facts {
        system: s,
        processors: vec![cpu],
        disks: vec![Disk {
            name: "M.2".into(),
            size: 480 << 30,
            rotational: Some(false),
            ..Disk::default()
        }],
        nics: Vec::new(),
    });
    assert_eq!(data.properties["cpus"], json!(24));
    assert_eq!(data.properties["cpu_arch"], json!("x86_64"));
    // 255.5 GiB.
    assert_eq!(data.properties["memory_mb"], json!(261632));
    assert_eq!(data.properties["local_gb"], json!(479));
    assert_eq!(data.properties["capabilities"], json!("boot_mode:uefi"));
    let inv = data.inventory.unwrap();
    assert_eq!(inv["system_vendor"]["manufacturer"], json!("Lenovo"));
    assert_eq!(inv["cpu"]["frequency"], json!(4000));

    let vm: VirtualMedia = p(fixture!("lenovo/virtual_media.json"));
    // An empty MediaTypes list: taken to accept anything.
    assert!(vm.accepts(&["CD", "DVD"]));
    let bios: Bios = p(fixture!("lenovo/bios.json"));
    assert_eq!(
        bios.settings.unwrap().settings_object.unwrap().odata_id,
        "/redfish/v1/Systems/1/Bios/Pending"
    );
    assert_eq!(bios.attributes["Power_WorkloadProfile"], json!(null));
    assert_eq!(
        BiosSetting::value_from_json(&bios.attributes["SystemOobCustom_SecureBoot"]).as_deref(),
        Some("0"),
        "a JSON false is stored as Ironic stores it"
    );
    assert_eq!(
        BiosSetting::value_from_json(&bios.attributes["Power_WorkloadProfile"]),
        None
    );
}

type PowerState_ = crate::models::PowerState;
