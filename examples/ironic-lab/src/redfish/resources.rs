//! The Redfish documents the simulator serves, in DMTF shapes (ServiceRoot 1.x,
//! ComputerSystem 1.x, Manager, VirtualMedia, EthernetInterface, Processor, Memory,
//! SimpleStorage, Chassis, SessionService, Session, error bodies).

use serde_json::{Value, json};

use crate::model::{BootMode, BootTarget, Power, ResetAction, SimServer};

/// The id of the only virtual media device each manager has.
pub const VMEDIA_ID: &str = "Cd";

/// `/redfish/v1/`.
pub fn service_root(uuid: &uuid::Uuid) -> Value {
    json!({
        "@odata.type": "#ServiceRoot.v1_11_0.ServiceRoot",
        "@odata.id": "/redfish/v1/",
        "Id": "RootService",
        "Name": "ironic-rs lab Redfish service",
        "RedfishVersion": "1.11.0",
        "UUID": uuid.to_string(),
        "Product": "ironic-rs lab BMC",
        "Vendor": "ironic-rs",
        "ProtocolFeaturesSupported": {
            "ExpandQuery": {"ExpandAll": false, "Levels": false, "Links": false, "NoLinks": false},
            "FilterQuery": false,
            "SelectQuery": false,
            "OnlyMemberQuery": false,
            "ExcerptQuery": false
        },
        "Systems": {"@odata.id": "/redfish/v1/Systems"},
        "Managers": {"@odata.id": "/redfish/v1/Managers"},
        "Chassis": {"@odata.id": "/redfish/v1/Chassis"},
        "SessionService": {"@odata.id": "/redfish/v1/SessionService"},
        "EventService": {"@odata.id": "/redfish/v1/EventService"},
        "Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}}
    })
}

/// A resource collection.
pub fn collection(odata_type: &str, id: &str, name: &str, members: Vec<String>) -> Value {
    let count = members.len();
    json!({
        "@odata.type": format!("#{odata_type}.{odata_type}"),
        "@odata.id": id,
        "Name": name,
        "Members@odata.count": count,
        "Members": members.into_iter().map(|m| json!({"@odata.id": m})).collect::<Vec<_>>()
    })
}

fn status() -> Value {
    json!({"State": "Enabled", "Health": "OK", "HealthRollup": "OK"})
}

/// `/redfish/v1/Systems/{id}`.
pub fn system(s: &SimServer) -> Value {
    let spec = s.spec();
    let st = s.state();
    let id = &spec.name;
    let base = format!("/redfish/v1/Systems/{id}");
    let power = match st.power {
        Power::On => "On",
        Power::Off => "Off",
    };
    json!({
        "@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem",
        "@odata.id": base,
        "Id": id,
        "Name": id,
        "SystemType": "Physical",
        "Manufacturer": "ironic-rs",
        "Model": "lab server",
        "SerialNumber": format!("LAB-{}", &spec.uuid.simple().to_string()[..8]),
        "UUID": spec.uuid.to_string(),
        "HostName": id,
        "PowerState": power,
        "Status": status(),
        "BiosVersion": "1.0.0",
        "Boot": {
            "BootSourceOverrideEnabled": st.boot.enabled.redfish_name(),
            "BootSourceOverrideEnabled@Redfish.AllowableValues": ["Disabled", "Once", "Continuous"],
            "BootSourceOverrideTarget": st.boot.target.redfish_name(),
            "BootSourceOverrideTarget@Redfish.AllowableValues":
                BootTarget::ALL.iter().map(|t| t.redfish_name()).collect::<Vec<_>>(),
            "BootSourceOverrideMode": st.boot.mode.redfish_name(),
            "BootSourceOverrideMode@Redfish.AllowableValues":
                [BootMode::Uefi.redfish_name(), BootMode::Legacy.redfish_name()],
            "HttpBootUri": st.http_boot_uri
        },
        "ProcessorSummary": {"Count": spec.cpus, "LogicalProcessorCount": spec.cpus, "Model": "Lab vCPU", "Status": status()},
        "MemorySummary": {"TotalSystemMemoryGiB": spec.memory_mib as f64 / 1024.0, "Status": status()},
        "Processors": {"@odata.id": format!("{base}/Processors")},
        "Memory": {"@odata.id": format!("{base}/Memory")},
        "SimpleStorage": {"@odata.id": format!("{base}/SimpleStorage")},
        "EthernetInterfaces": {"@odata.id": format!("{base}/EthernetInterfaces")},
        "Links": {
            "Chassis": [{"@odata.id": format!("/redfish/v1/Chassis/{id}")}],
            "ManagedBy": [{"@odata.id": format!("/redfish/v1/Managers/{id}")}]
        },
        "Actions": {
            "#ComputerSystem.Reset": {
                "target": format!("{base}/Actions/ComputerSystem.Reset"),
                "ResetType@Redfish.AllowableValues":
                    ResetAction::ALL.iter().map(|a| a.redfish_name()).collect::<Vec<_>>()
            }
        }
    })
}

/// `/redfish/v1/Systems/{id}/EthernetInterfaces/{n}`.
pub fn ethernet_interface(s: &SimServer, index: usize) -> Option<Value> {
    let spec = s.spec();
    let mac = spec.macs.get(index)?;
    Some(json!({
        "@odata.type": "#EthernetInterface.v1_6_0.EthernetInterface",
        "@odata.id": format!("/redfish/v1/Systems/{}/EthernetInterfaces/{index}", spec.name),
        "Id": index.to_string(),
        "Name": format!("NIC {index}"),
        "Status": {"State": "Enabled", "Health": "OK"},
        "LinkStatus": "LinkUp",
        "InterfaceEnabled": true,
        "SpeedMbps": 10000,
        "MACAddress": mac.to_string(),
        "PermanentMACAddress": mac.to_string()
    }))
}

/// `/redfish/v1/Systems/{id}/Processors/CPU0`.
pub fn processor(s: &SimServer) -> Value {
    let spec = s.spec();
    json!({
        "@odata.type": "#Processor.v1_10_0.Processor",
        "@odata.id": format!("/redfish/v1/Systems/{}/Processors/CPU0", spec.name),
        "Id": "CPU0",
        "Name": "Processor 0",
        "Socket": "CPU 0",
        "ProcessorType": "CPU",
        "ProcessorArchitecture": "x86",
        "InstructionSet": "x86-64",
        "Manufacturer": "ironic-rs",
        "Model": "Lab vCPU",
        "MaxSpeedMHz": 2400,
        "TotalCores": spec.cpus,
        "TotalThreads": spec.cpus,
        "Status": {"State": "Enabled", "Health": "OK"}
    })
}

/// `/redfish/v1/Systems/{id}/Memory/DIMM0`.
pub fn memory(s: &SimServer) -> Value {
    let spec = s.spec();
    json!({
        "@odata.type": "#Memory.v1_11_0.Memory",
        "@odata.id": format!("/redfish/v1/Systems/{}/Memory/DIMM0", spec.name),
        "Id": "DIMM0",
        "Name": "DIMM 0",
        "MemoryType": "DRAM",
        "MemoryDeviceType": "DDR4",
        "CapacityMiB": spec.memory_mib,
        "OperatingSpeedMhz": 3200,
        "Status": {"State": "Enabled", "Health": "OK"}
    })
}

/// `/redfish/v1/Systems/{id}/SimpleStorage/0`.
pub fn simple_storage(s: &SimServer) -> Value {
    let spec = s.spec();
    json!({
        "@odata.type": "#SimpleStorage.v1_3_0.SimpleStorage",
        "@odata.id": format!("/redfish/v1/Systems/{}/SimpleStorage/0", spec.name),
        "Id": "0",
        "Name": "Disk controller",
        "UefiDevicePath": "PciRoot(0x0)/Pci(0x1F,0x2)",
        "Status": status(),
        "Devices": [{
            "Name": "Lab disk 0",
            "Manufacturer": "ironic-rs",
            "Model": "file disk",
            "CapacityBytes": spec.disk_size,
            "Status": {"State": "Enabled", "Health": "OK"}
        }]
    })
}

/// `/redfish/v1/Managers/{id}`.
pub fn manager(s: &SimServer) -> Value {
    let id = &s.spec().name;
    json!({
        "@odata.type": "#Manager.v1_10_0.Manager",
        "@odata.id": format!("/redfish/v1/Managers/{id}"),
        "Id": id,
        "Name": format!("BMC of {id}"),
        "ManagerType": "BMC",
        "UUID": uuid::Uuid::new_v5(&s.spec().uuid, b"bmc").to_string(),
        "Model": "ironic-rs lab BMC",
        "FirmwareVersion": env!("CARGO_PKG_VERSION"),
        "PowerState": "On",
        "Status": status(),
        "VirtualMedia": {"@odata.id": format!("/redfish/v1/Managers/{id}/VirtualMedia")},
        "Links": {
            "ManagerForServers": [{"@odata.id": format!("/redfish/v1/Systems/{id}")}],
            "ManagerForChassis": [{"@odata.id": format!("/redfish/v1/Chassis/{id}")}]
        },
        "Actions": {
            "#Manager.Reset": {
                "target": format!("/redfish/v1/Managers/{id}/Actions/Manager.Reset"),
                "ResetType@Redfish.AllowableValues": ["GracefulRestart", "ForceRestart"]
            }
        }
    })
}

/// `/redfish/v1/Managers/{id}/VirtualMedia/Cd`.
pub fn virtual_media(s: &SimServer) -> Value {
    let id = &s.spec().name;
    let vm = s.vmedia();
    let base = format!("/redfish/v1/Managers/{id}/VirtualMedia/{VMEDIA_ID}");
    let image_name = vm
        .image
        .as_deref()
        .and_then(|u| u.rsplit('/').next())
        .unwrap_or("");
    json!({
        "@odata.type": "#VirtualMedia.v1_5_0.VirtualMedia",
        "@odata.id": base,
        "Id": VMEDIA_ID,
        "Name": "Virtual CD",
        "MediaTypes": ["CD", "DVD"],
        "Image": vm.image,
        "ImageName": image_name,
        "ConnectedVia": if vm.inserted() { "URI" } else { "NotConnected" },
        "Inserted": vm.inserted(),
        "WriteProtected": vm.write_protected,
        "TransferProtocolType": vm.image.as_deref().and_then(|u| u.split_once("://")).map(|(p, _)| p.to_ascii_uppercase()),
        "Actions": {
            "#VirtualMedia.InsertMedia": {"target": format!("{base}/Actions/VirtualMedia.InsertMedia")},
            "#VirtualMedia.EjectMedia": {"target": format!("{base}/Actions/VirtualMedia.EjectMedia")}
        }
    })
}

/// `/redfish/v1/Chassis/{id}`.
pub fn chassis(s: &SimServer) -> Value {
    let id = &s.spec().name;
    let power = match s.power() {
        Power::On => "On",
        Power::Off => "Off",
    };
    json!({
        "@odata.type": "#Chassis.v1_14_0.Chassis",
        "@odata.id": format!("/redfish/v1/Chassis/{id}"),
        "Id": id,
        "Name": format!("Chassis of {id}"),
        "ChassisType": "RackMount",
        "Manufacturer": "ironic-rs",
        "PowerState": power,
        "Status": status(),
        "Links": {
            "ComputerSystems": [{"@odata.id": format!("/redfish/v1/Systems/{id}")}],
            "ManagedBy": [{"@odata.id": format!("/redfish/v1/Managers/{id}")}]
        }
    })
}

/// `/redfish/v1/SessionService`.
pub fn session_service(timeout_secs: u64) -> Value {
    json!({
        "@odata.type": "#SessionService.v1_1_8.SessionService",
        "@odata.id": "/redfish/v1/SessionService",
        "Id": "SessionService",
        "Name": "Session Service",
        "ServiceEnabled": true,
        "SessionTimeout": timeout_secs,
        "Status": {"State": "Enabled", "Health": "OK"},
        "Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}
    })
}

/// `/redfish/v1/SessionService/Sessions/{id}`.
pub fn session(id: &str, user: &str) -> Value {
    json!({
        "@odata.type": "#Session.v1_3_0.Session",
        "@odata.id": format!("/redfish/v1/SessionService/Sessions/{id}"),
        "Id": id,
        "Name": "User Session",
        "UserName": user
    })
}

/// `/redfish/v1/EventService`.
pub fn event_service(event_types: &[&str]) -> Value {
    json!({
        "@odata.type": "#EventService.v1_7_0.EventService",
        "@odata.id": "/redfish/v1/EventService",
        "Id": "EventService",
        "Name": "Event Service",
        "ServiceEnabled": true,
        "DeliveryRetryAttempts": 3,
        "DeliveryRetryIntervalSeconds": 60,
        "EventTypesForSubscription": event_types,
        "Status": {"State": "Enabled", "Health": "OK"},
        "Subscriptions": {"@odata.id": "/redfish/v1/EventService/Subscriptions"},
        "Actions": {"#EventService.SubmitTestEvent": {
            "target": "/redfish/v1/EventService/Actions/EventService.SubmitTestEvent"}}
    })
}

/// `/redfish/v1/EventService/Subscriptions/{id}` (`HttpHeaders` is null on a GET).
pub fn event_destination(
    path: &str,
    id: &str,
    destination: &str,
    context: &str,
    protocol: &str,
    event_types: &[String],
) -> Value {
    json!({
        "@odata.type": "#EventDestination.v1_7_0.EventDestination",
        "@odata.id": path,
        "Id": id,
        "Name": "Event Subscription",
        "Destination": destination,
        "Context": context,
        "Protocol": protocol,
        "EventTypes": event_types,
        "SubscriptionType": "RedfishEvent",
        "HttpHeaders": null
    })
}

/// A Redfish error body with one extended message from the Base registry.
pub fn error(message_id: &str, message: &str) -> Value {
    json!({
        "error": {
            "code": format!("Base.1.8.{message_id}"),
            "message": message,
            "@Message.ExtendedInfo": [{
                "@odata.type": "#Message.v1_1_1.Message",
                "MessageId": format!("Base.1.8.{message_id}"),
                "Message": message,
                "Severity": "Critical",
                "Resolution": "Correct the request and resubmit it."
            }]
        }
    })
}
