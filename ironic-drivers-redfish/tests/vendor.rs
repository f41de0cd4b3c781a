//! The `redfish` vendor interface (Ironic's passthru methods) against peers
//! nobody here wrote:
//! - the EventService subscriptions of published Redfish trees (`tests/trees/`,
//!   served read-only by `sushy-static`): `get_all_subscriptions` and
//!   `get_subscription` answer exactly what Ironic answers, computed through
//!   `sushy` (the client Ironic uses) along Ironic's `RedfishVendorPassthru`;
//!   argument checks as Ironic's; creating on a read-only tree fails as it does
//!   for Ironic (sushy-static answers 204 without a `Location`);
//! - `eject_vmedia` on `sushy-emulator` (fake driver) with media really inserted.
//!
//! Creating and deleting subscriptions against a BMC that keeps them is tested
//! with the lab's Redfish simulator (`examples/ironic-lab/tests/lab_redfish_driver.rs`)
//! and through the API (`examples/ironic-standalone/tests/metal3_sequence.rs`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    FakeSystem, IsoServer, Sushy, SushyOptions, fast_config, raw_get, serve_static, task, tool,
};
use ironic_core::ErrorKind;
use ironic_core::driver::{ManagementInterface, VendorInterface, VmediaDevice};
use ironic_drivers_redfish::{RedfishManagement, RedfishVendor};
use serde_json::{Value, json};

/// What Ironic's `get_all_subscriptions` and `get_subscription` (for every
/// member) answer on the tree at `url`, through sushy as Ironic calls it.
const IRONIC_SUBSCRIPTIONS: &str = r#"
import json, sys
import sushy
FIELDS = {'Id', 'Context', 'Protocol', 'Destination', 'EventTypes'}
conn = sushy.Sushy(sys.argv[1], username='u', password='p')
try:
    es = conn.get_event_service()
    subs = es.subscriptions
    out = {'all': subs.json, 'members': {}}
    for path in subs.members_identities:
        m = subs.get_member(path)
        out['members'][m.json['Id']] = {k: v for k, v in m.json.items() if k in FIELDS}
except sushy.exceptions.SushyError as e:
    # Ironic answers a RedfishError (HTTP 500) then
    out = {'error': str(e)}
print(json.dumps(out))
"#;

fn ironic_answers(url: &str) -> Value {
    let out = Command::new(tool("python3"))
        .args(["-c", IRONIC_SUBSCRIPTIONS, &format!("{url}/redfish/v1")])
        .output()
        .expect("run python3 of the test venv (PyPI sushy)");
    assert!(
        out.status.success(),
        "sushy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn trees_with_subscriptions() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/trees");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("EventService/Subscriptions/index.json").exists())
        .collect();
    out.sort();
    out
}

async fn call(
    vendor: &RedfishVendor,
    url: &str,
    method: &str,
    http: &str,
    body: Value,
) -> Result<Value, ironic_core::DriverError> {
    let mut t = task(
        url,
        json!({"redfish_username": "u", "redfish_password": "p"}),
    );
    vendor.call(&mut t, method, http, body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_of_published_trees_read_as_ironic_reads_them() {
    let trees = trees_with_subscriptions();
    assert!(
        trees.len() >= 2,
        "expected published trees with EventService subscriptions: {trees:?}"
    );
    let vendor = RedfishVendor::new(fast_config());
    let mut members_checked = 0;
    let mut ironic_fails = 0;
    for tree in &trees {
        let name = tree.file_name().unwrap().to_string_lossy().to_string();
        let s = serve_static(tree);
        let ironic = ironic_answers(&s.url);
        let all = call(&vendor, &s.url, "get_all_subscriptions", "GET", json!({}))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let file: Value = serde_json::from_str(
            &std::fs::read_to_string(tree.join("EventService/Subscriptions/index.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            all, file,
            "{name}: get_all_subscriptions is the BMC's collection"
        );
        if let Some(e) = ironic.get("error") {
            // sushy refuses this tree's EventService (e.g. it has no `Actions`,
            // which sushy requires): Ironic fails where this driver reads it.
            eprintln!("{name}: Ironic fails ({e}); this driver reads the subscriptions");
            ironic_fails += 1;
            continue;
        }
        assert_eq!(all, ironic["all"], "{name}: get_all_subscriptions");
        for (id, want) in ironic["members"].as_object().unwrap() {
            let got = call(
                &vendor,
                &s.url,
                "get_subscription",
                "GET",
                json!({"id": id}),
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: get_subscription {id}: {e}"));
            assert_eq!(&got, want, "{name}: get_subscription {id}");
            members_checked += 1;
        }
        // A member that is not there: Ironic's message around the BMC's 404.
        let e = call(
            &vendor,
            &s.url,
            "get_subscription",
            "GET",
            json!({"id": "nope"}),
        )
        .await
        .unwrap_err();
        assert!(
            e.message()
                .starts_with("Redfish get_subscription failed for subscription nope on node"),
            "{name}: {e}"
        );
        // sushy-static takes the POST with 204 and no Location: no subscription
        // to read back (Ironic fails there too, with an AttributeError).
        let e = call(
            &vendor,
            &s.url,
            "create_subscription",
            "POST",
            json!({"Destination": "https://metal3.example:8443/events"}),
        )
        .await
        .unwrap_err();
        assert!(
            e.message()
                .starts_with("Failed to create subscription on node")
                && e.message().contains("https://metal3.example:8443/events")
                && e.message().contains("without a Location"),
            "{name}: {e}"
        );
        assert_eq!(e.kind(), ErrorKind::Other, "{name}: {e}");
    }
    assert!(
        members_checked >= 4,
        "only {members_checked} subscriptions compared"
    );
    eprintln!(
        "{} trees: {members_checked} subscriptions read as Ironic reads them; {ironic_fails} trees Ironic cannot read",
        trees.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn arguments_are_checked_as_ironic_checks_them() {
    let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/trees/dmtf-public-rackmount1");
    let s = serve_static(&tree);
    let vendor = RedfishVendor::new(fast_config());
    let cases = [
        (
            "create_subscription",
            "POST",
            json!({}),
            "Destination None is not a valid URI",
        ),
        (
            "create_subscription",
            "POST",
            json!({"Destination": "not a uri"}),
            "Destination not a uri is not a valid URI",
        ),
        (
            "create_subscription",
            "POST",
            json!({"Destination": "/relative/path"}),
            "Destination /relative/path is not a valid URI",
        ),
        (
            "create_subscription",
            "POST",
            json!({"Destination": "https://e.example/x", "Context": 5}),
            "Context 5 is not a valid string",
        ),
        (
            "create_subscription",
            "POST",
            json!({"Destination": "https://e.example/x", "Protocol": ["SNMP"]}),
            "Protocol ['SNMP'] is not a string",
        ),
        (
            "create_subscription",
            "POST",
            json!({"Destination": "https://e.example/x", "HttpHeaders": "X-A: b"}),
            "HttpHeaders X-A: b is not a list of headers",
        ),
        // the tree's EventTypesForSubscription has no MetricReport
        (
            "create_subscription",
            "POST",
            json!({"Destination": "https://e.example/x", "EventTypes": ["MetricReport"]}),
            "EventTypes ['MetricReport'] is not a valid value",
        ),
        (
            "delete_subscription",
            "DELETE",
            json!({}),
            "id can't be None",
        ),
        (
            "get_subscription",
            "GET",
            json!({"id": ""}),
            "id can't be None",
        ),
        (
            "create_subscription",
            "GET",
            json!({}),
            "The method create_subscription does not support HTTP GET",
        ),
        (
            "get_all_subscriptions",
            "POST",
            json!({}),
            "The method get_all_subscriptions does not support HTTP POST",
        ),
        (
            "no_such_method",
            "POST",
            json!({}),
            "No handler for method no_such_method",
        ),
        (
            "eject_vmedia",
            "POST",
            json!({"boot_device": "tape"}),
            "Boot device tape is not a valid value",
        ),
    ];
    for (method, http, body, want) in cases {
        let e = call(&vendor, &s.url, method, http, body.clone())
            .await
            .unwrap_err();
        assert!(e.message().starts_with(want), "{method} {body}: {e}");
        assert_eq!(
            e.kind(),
            ErrorKind::InvalidParameter,
            "{method} {body}: {e}"
        );
    }
    let routes: Vec<_> = vendor
        .routes()
        .into_iter()
        .map(|r| (r.method, r.http_methods, r.is_async))
        .collect();
    assert_eq!(
        routes,
        vec![
            ("eject_vmedia".to_owned(), vec!["POST".to_owned()], true),
            (
                "create_subscription".to_owned(),
                vec!["POST".to_owned()],
                false
            ),
            (
                "delete_subscription".to_owned(),
                vec!["DELETE".to_owned()],
                false
            ),
            (
                "get_all_subscriptions".to_owned(),
                vec!["GET".to_owned()],
                false
            ),
            ("get_subscription".to_owned(), vec!["GET".to_owned()], false),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn eject_vmedia_on_sushy_emulator() {
    let sys = FakeSystem::new(1);
    let emu = Sushy::start(SushyOptions {
        fake_systems: vec![sys.clone()],
        ..Default::default()
    });
    let iso = IsoServer::start().await;
    let mgmt = RedfishManagement::new(fast_config());
    let vendor = RedfishVendor::new(fast_config());
    let mut t = task(&emu.address, json!({}));
    let cd = format!("/redfish/v1/Systems/{}/VirtualMedia/Cd", sys.uuid);
    let usb = format!("/redfish/v1/Systems/{}/VirtualMedia/Floppy", sys.uuid);
    let inserted = |v: Value| v["Inserted"] == json!(true);

    mgmt.attach_virtual_media(&t, VmediaDevice::Cdrom, &iso.url)
        .await
        .unwrap();
    mgmt.attach_virtual_media(&t, VmediaDevice::Disk, &iso.url)
        .await
        .unwrap();
    assert!(inserted(raw_get(&emu.address, &cd, None).await));
    assert!(inserted(raw_get(&emu.address, &usb, None).await));
    // What `GET /v1/nodes/{id}/vmedia` answers (Ironic's list, which Metal3 decodes).
    let listed = mgmt.get_virtual_media(&t).await.unwrap();
    let listed = listed.as_array().expect("a list");
    assert_eq!(listed.len(), 2, "{listed:?}");
    for v in listed {
        assert_eq!(v["inserted"], json!(true), "{v}");
        assert_eq!(v["image"], json!(iso.url), "{v}");
        assert!(
            v["media_types"].as_array().is_some_and(|m| !m.is_empty()),
            "{v}"
        );
    }

    // Only the USB stick's slot.
    let out = vendor
        .call(
            &mut t,
            "eject_vmedia",
            "POST",
            json!({"boot_device": "usb"}),
        )
        .await
        .unwrap();
    assert_eq!(out, Value::Null);
    assert!(inserted(raw_get(&emu.address, &cd, None).await));
    assert!(!inserted(raw_get(&emu.address, &usb, None).await));

    // Everything (nothing named), twice: ejecting empty slots is fine.
    for _ in 0..2 {
        vendor
            .call(&mut t, "eject_vmedia", "POST", json!({}))
            .await
            .unwrap();
        assert!(!inserted(raw_get(&emu.address, &cd, None).await));
    }

    // sushy-emulator has no EventService: the same RedfishError as Ironic's.
    let e = vendor
        .call(&mut t, "get_all_subscriptions", "GET", json!({}))
        .await
        .unwrap_err();
    assert!(
        e.message()
            .starts_with("Redfish get_subscriptions failed for node")
            && e.message().contains("has no EventService"),
        "{e}"
    );
}
