//! Property tests: no input panics the parser or what reads the parsed models,
//! and every JSON object parses into every model.

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::inspect::{Facts, inspection_data};
use crate::management::device_of;
use crate::models::*;
use crate::power::power_state_of;

/// Field names the models read, so generated documents hit them.
const KEYS: &[&str] = &[
    "@odata.id",
    "@odata.etag",
    "Id",
    "Name",
    "PowerState",
    "Boot",
    "BootSourceOverrideTarget",
    "BootSourceOverrideEnabled",
    "BootSourceOverrideMode",
    "BootSourceOverrideTarget@Redfish.AllowableValues",
    "Members",
    "Members@odata.nextLink",
    "Links",
    "ManagedBy",
    "Chassis",
    "Actions",
    "#ComputerSystem.Reset",
    "target",
    "ResetType@Redfish.AllowableValues",
    "MemorySummary",
    "TotalSystemMemoryGiB",
    "ProcessorSummary",
    "Count",
    "Status",
    "State",
    "Health",
    "MACAddress",
    "PermanentMACAddress",
    "MediaTypes",
    "Inserted",
    "Image",
    "Attributes",
    "@Redfish.Settings",
    "SettingsObject",
    "TaskState",
    "PercentComplete",
    "Messages",
    "CapacityBytes",
    "Drives",
    "Volumes",
    "Devices",
    "InstructionSet",
    "TotalThreads",
    "StorageControllers",
    "SupportedRAIDTypes",
    "Oem",
    "IndicatorLED",
    "error",
    "message",
    "@Message.ExtendedInfo",
    "Temperatures",
    "ReadingCelsius",
];

const STRINGS: &[&str] = &[
    "On",
    "Off",
    "PoweringOn",
    "Unknown",
    "Pxe",
    "Hdd",
    "Cd",
    "UefiHttp",
    "UEFI",
    "Legacy",
    "Once",
    "Continuous",
    "",
    "None",
    "null",
    "52:54:00:12:34:56",
    "AC-1F-6B-12-34-56",
    "zz:zz",
    "x86-64",
    "ARM-A64",
    "Completed",
    "Exception",
    "Absent",
    "CD",
    "DVD",
    "/redfish/v1/Systems/1",
    "100",
    "-1",
    "1e400",
    "\u{0}",
    "é",
    "RAID1",
];

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        proptest::sample::select(STRINGS).prop_map(|s| Value::String(s.to_owned())),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        proptest::sample::select(KEYS).prop_map(str::to_owned),
                        "[A-Za-z@#.]{1,10}"
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn arb_object() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            proptest::sample::select(KEYS).prop_map(str::to_owned),
            arb_json(),
        ),
        0..12,
    )
    .prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

fn parse_all(body: &[u8]) -> bool {
    let ok = [
        parse::<ComputerSystem>(body).is_ok(),
        parse::<ServiceRoot>(body).is_ok(),
        parse::<Collection>(body).is_ok(),
        parse::<Manager>(body).is_ok(),
        parse::<VirtualMedia>(body).is_ok(),
        parse::<EthernetInterface>(body).is_ok(),
        parse::<Processor>(body).is_ok(),
        parse::<Storage>(body).is_ok(),
        parse::<Drive>(body).is_ok(),
        parse::<Volume>(body).is_ok(),
        parse::<SimpleStorage>(body).is_ok(),
        parse::<Bios>(body).is_ok(),
        parse::<Task>(body).is_ok(),
        parse::<UpdateService>(body).is_ok(),
        parse::<Chassis>(body).is_ok(),
        parse::<Thermal>(body).is_ok(),
        parse::<Power>(body).is_ok(),
        parse::<SecureBoot>(body).is_ok(),
        parse::<AttributeRegistry>(body).is_ok(),
    ];
    let _ = error_messages(body);
    ok.iter().all(|x| *x)
}

/// Read everything the drivers read from a parsed system.
fn use_system(s: ComputerSystem, nic: EthernetInterface, cpu: Processor) {
    let _ = power_state_of(&s);
    if let Some(b) = &s.boot {
        let _ = b.target.as_ref().map(device_of);
    }
    let _ = s.reset_action().map(|a| a.allowable_values("ResetType"));
    let _ = inspection_data(&Facts {
        system: s,
        processors: vec![cpu],
        disks: Vec::new(),
        nics: vec![nic],
    });
}

fn mutate(doc: &mut Value, path: &[usize], new: Value) {
    let Some((&i, rest)) = path.split_first() else {
        *doc = new;
        return;
    };
    let child = match doc {
        Value::Object(m) if !m.is_empty() => {
            let k = m.keys().nth(i % m.len()).unwrap().clone();
            m.get_mut(&k)
        }
        Value::Array(a) if !a.is_empty() => {
            let n = a.len();
            a.get_mut(i % n)
        }
        _ => None,
    };
    match child {
        Some(c) => mutate(c, rest, new),
        None => *doc = new,
    }
}

const FIXTURES: &[&[u8]] = &[
    include_bytes!("../../tests/fixtures/dell/system.json"),
    include_bytes!("../../tests/fixtures/dell/bios.json"),
    include_bytes!("../../tests/fixtures/hpe/system.json"),
    include_bytes!("../../tests/fixtures/hpe/virtual_media_cd.json"),
    include_bytes!("../../tests/fixtures/supermicro/system.json"),
    include_bytes!("../../tests/fixtures/supermicro/simple_storage.json"),
    include_bytes!("../../tests/fixtures/lenovo/system.json"),
    include_bytes!("../../tests/fixtures/lenovo/bios.json"),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_all(&body);
    }

    #[test]
    fn every_json_object_parses_into_every_model(doc in arb_object()) {
        let body = serde_json::to_vec(&doc).unwrap();
        prop_assert!(parse_all(&body), "{}", doc);
        let s: ComputerSystem = parse(&body).unwrap();
        let nic: EthernetInterface = parse(&body).unwrap();
        let cpu: Processor = parse(&body).unwrap();
        use_system(s, nic, cpu);
    }

    #[test]
    fn any_json_value_never_panics(doc in arb_json()) {
        let body = serde_json::to_vec(&doc).unwrap();
        prop_assert_eq!(parse_all(&body), doc.is_object());
    }

    #[test]
    fn mutated_vendor_fixtures_still_parse(
        which in 0..FIXTURES.len(),
        path in prop::collection::vec(any::<usize>(), 1..5),
        new in arb_json(),
    ) {
        let mut doc: Value = parse(FIXTURES[which]).unwrap();
        mutate(&mut doc, &path, new);
        let body = serde_json::to_vec(&doc).unwrap();
        prop_assert!(parse_all(&body));
        let s: ComputerSystem = parse(&body).unwrap();
        use_system(s, EthernetInterface::default(), Processor::default());
    }
}
