//! The lab's Redfish simulator driven by this project's Redfish driver
//! (`ironic-drivers-redfish`): power, management, virtual media boot, inspection,
//! event subscriptions through the vendor passthru.

mod lab_support;

use ironic_core::driver::{
    BaseInterface, BootDevice, BootInterface, BootMode, InspectInterface, InspectOutcome,
    ManagementInterface, PowerInterface, RamdiskKind, RamdiskParams, Task, VendorInterface,
};
use ironic_core::{DriverInfo, Node, PowerAction, PowerState};
use ironic_drivers_redfish::{
    RedfishConfig, RedfishHttpsBoot, RedfishInspect, RedfishManagement, RedfishPower,
    RedfishVendor, RedfishVirtualMediaBoot,
};
use ironic_lab::images::{self, FileServer};
use ironic_lab::model::{BootEnabled, BootSource, BootTarget, Power};
use ironic_lab::{Faults, RedfishSim, SimOptions, SimServer};
use serde_json::{Value, json};
use std::time::Duration;

fn config() -> RedfishConfig {
    RedfishConfig {
        connection_attempts: 3,
        retry_interval: Duration::from_millis(20),
        max_retry_interval: Duration::from_millis(50),
        power_state_timeout: Duration::from_secs(5),
        power_poll_interval: Duration::from_millis(50),
        ..RedfishConfig::default()
    }
}

fn task(sim: &RedfishSim, server: &SimServer, password: &str, extra: Value) -> Task {
    let mut info = json!({
        "redfish_address": sim.url(),
        "redfish_system_id": format!("/redfish/v1/Systems/{}", server.spec().name),
        "redfish_username": "admin",
        "redfish_password": password,
    });
    if let (Some(m), Value::Object(e)) = (info.as_object_mut(), extra) {
        m.extend(e);
    }
    let mut node = Node::new("redfish");
    node.driver_info = serde_json::from_value::<DriverInfo>(info).unwrap();
    Task::new(node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redfish_driver_power_management_and_inspection() {
    let dir = tempfile::tempdir().unwrap();
    let server = lab_support::server(dir.path(), "lab-0", 0);
    let other = lab_support::server(dir.path(), "lab-1", 1);
    let sim = RedfishSim::start(
        "127.0.0.1:0".parse().unwrap(),
        vec![server.clone(), other.clone()],
    )
    .await
    .unwrap();
    let t = task(&sim, &server, "pw-lab-0", json!({}));
    let power = RedfishPower::new(config());
    let mgmt = RedfishManagement::new(config());

    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::Off);
    power
        .set_power_state(&t, PowerAction::PowerOn, None)
        .await
        .unwrap();
    assert_eq!(server.power(), Power::On);
    let boots = server.subscribe().borrow().boots;
    power.reboot(&t, None).await.unwrap();
    assert!(server.subscribe().borrow().boots > boots);
    power
        .set_power_state(&t, PowerAction::PowerOff, None)
        .await
        .unwrap();
    assert_eq!(server.power(), Power::Off);
    assert_eq!(
        other.power(),
        Power::Off,
        "only the addressed system changes"
    );

    mgmt.set_boot_device(&t, BootDevice::Pxe, false)
        .await
        .unwrap();
    let b = server.boot_override();
    assert_eq!((b.target, b.enabled), (BootTarget::Pxe, BootEnabled::Once));
    let info = mgmt.get_boot_device(&t).await.unwrap();
    assert_eq!(
        (info.boot_device, info.persistent),
        (Some(BootDevice::Pxe), Some(false))
    );
    mgmt.set_boot_device(&t, BootDevice::Disk, true)
        .await
        .unwrap();
    let info = mgmt.get_boot_device(&t).await.unwrap();
    assert_eq!(
        (info.boot_device, info.persistent),
        (Some(BootDevice::Disk), Some(true))
    );
    mgmt.set_boot_mode(&t, BootMode::Bios).await.unwrap();
    assert_eq!(mgmt.get_boot_mode(&t).await.unwrap(), Some(BootMode::Bios));
    mgmt.set_boot_mode(&t, BootMode::Uefi).await.unwrap();
    assert_eq!(mgmt.get_boot_mode(&t).await.unwrap(), Some(BootMode::Uefi));
    let macs = mgmt.get_mac_addresses(&t).await.unwrap();
    assert_eq!(macs, vec!["52:54:00:aa:00:00", "52:54:00:bb:00:00"]);

    let mut t2 = task(&sim, &server, "pw-lab-0", json!({}));
    let InspectOutcome::Done(data) = RedfishInspect::new(config())
        .inspect_hardware(&mut t2)
        .await
        .unwrap()
    else {
        panic!("out-of-band inspection must finish");
    };
    let ports: Vec<String> = data.ports.iter().map(|p| p.address.to_string()).collect();
    assert_eq!(ports, macs);
    assert_eq!(data.properties["cpus"], json!(4));
    assert_eq!(data.properties["memory_mb"], json!(8192));
    // 8 GiB disk, one GiB kept back as Ironic does.
    assert_eq!(data.properties["local_gb"], json!(7));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redfish_driver_virtual_media_boot_starts_from_the_cd() {
    let dir = tempfile::tempdir().unwrap();
    let files = images::generate(&dir.path().join("images")).unwrap();
    let http = FileServer::start("127.0.0.1:0".parse().unwrap(), files.dir.clone())
        .await
        .unwrap();
    let server = lab_support::server(dir.path(), "lab-0", 0);
    let sim = RedfishSim::start("127.0.0.1:0".parse().unwrap(), vec![server.clone()])
        .await
        .unwrap();
    let iso = http.url(images::DEPLOY_ISO);
    let boot = RedfishVirtualMediaBoot::new(config());
    let mut t = task(
        &sim,
        &server,
        "pw-lab-0",
        json!({"redfish_deploy_iso": iso}),
    );
    boot.validate(&t).unwrap();
    let params =
        RamdiskParams::new(RamdiskKind::Deploy).with_param("ipa-api-url", "http://127.0.0.1:6385");
    boot.prepare_ramdisk(&mut t, &params).await.unwrap();
    assert_eq!(server.vmedia().image.as_deref(), Some(iso.as_str()));
    assert_eq!(server.boot_override().target, BootTarget::Cd);
    RedfishPower::new(config()).reboot(&t, None).await.unwrap();
    assert_eq!(
        server.subscribe().borrow().booted_from,
        Some(BootSource::VirtualMedia(iso.clone()))
    );
    boot.prepare_instance(&mut t).await.unwrap();
    assert!(!server.vmedia().inserted());
    assert_eq!(server.boot_override().target, BootTarget::Hdd);

    // The BMC downloads what it is given: a missing image is refused.
    let mut bad = task(
        &sim,
        &server,
        "pw-lab-0",
        json!({"redfish_deploy_iso": http.url("missing.iso")}),
    );
    let e = boot.prepare_ramdisk(&mut bad, &params).await.unwrap_err();
    assert!(e.message().contains("404"), "{e}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redfish_https_boot_loads_the_iso_over_uefi_http() {
    let dir = tempfile::tempdir().unwrap();
    let files = images::generate(&dir.path().join("images")).unwrap();
    let http = FileServer::start("127.0.0.1:0".parse().unwrap(), files.dir.clone())
        .await
        .unwrap();
    let server = lab_support::server(dir.path(), "lab-0", 0);
    let sim = RedfishSim::start("127.0.0.1:0".parse().unwrap(), vec![server.clone()])
        .await
        .unwrap();
    let iso = http.url(images::DEPLOY_ISO);
    let boot = RedfishHttpsBoot::new(config());
    let mut t = task(
        &sim,
        &server,
        "pw-lab-0",
        json!({"redfish_deploy_iso": iso}),
    );
    boot.validate(&t).unwrap();
    let params =
        RamdiskParams::new(RamdiskKind::Deploy).with_param("ipa-api-url", "http://127.0.0.1:6385");
    boot.prepare_ramdisk(&mut t, &params).await.unwrap();
    // UefiHttp once, with the ISO's URL; no virtual media used
    let o = server.boot_override();
    assert_eq!(
        (o.target, o.enabled),
        (BootTarget::UefiHttp, BootEnabled::Once)
    );
    assert_eq!(server.http_boot_uri().as_deref(), Some(iso.as_str()));
    assert!(!server.vmedia().inserted());
    assert_eq!(
        t.node.driver_internal_info.get("redfish_uefi_http_url"),
        Some(&json!(iso))
    );
    RedfishPower::new(config()).reboot(&t, None).await.unwrap();
    assert_eq!(
        server.subscribe().borrow().booted_from,
        Some(BootSource::VirtualMedia(iso.clone()))
    );
    // the one-time override is spent: the next boot is the machine's own
    assert_eq!(server.boot_override().enabled, BootEnabled::Disabled);

    // to the instance: disk, persistent, and the URI cleared
    boot.prepare_instance(&mut t).await.unwrap();
    let o = server.boot_override();
    assert_eq!(
        (o.target, o.enabled),
        (BootTarget::Hdd, BootEnabled::Continuous)
    );
    assert_eq!(server.http_boot_uri(), None);
    assert!(
        !t.node
            .driver_internal_info
            .contains_key("redfish_uefi_http_url")
    );

    // The BMC loads the URL itself: one it cannot download is refused.
    let mut bad = task(
        &sim,
        &server,
        "pw-lab-0",
        json!({"redfish_deploy_iso": http.url("missing.iso")}),
    );
    let e = boot.prepare_ramdisk(&mut bad, &params).await.unwrap_err();
    assert!(
        e.message().contains("HttpBootUri") && e.message().contains("404"),
        "{e}"
    );
    assert_eq!(server.http_boot_uri(), None);
    // Without a deploy ISO nor a builder, validate names the key.
    let none = task(&sim, &server, "pw-lab-0", json!({}));
    let e = boot.validate(&none).unwrap_err();
    assert!(e.message().contains("redfish_deploy_iso"), "{e}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redfish_driver_sees_the_injected_faults() {
    let dir = tempfile::tempdir().unwrap();
    let server = lab_support::server(dir.path(), "lab-0", 0);
    let sim = RedfishSim::start("127.0.0.1:0".parse().unwrap(), vec![server.clone()])
        .await
        .unwrap();
    let t = task(&sim, &server, "pw-lab-0", json!({}));
    let power = RedfishPower::new(config());

    let wrong = task(&sim, &server, "nope", json!({}));
    let e = power.get_power_state(&wrong).await.unwrap_err();
    assert_eq!(e.kind(), ironic_core::ErrorKind::Unauthenticated, "{e}");
    assert!(
        !e.to_string().contains("nope"),
        "no password in errors: {e}"
    );

    server.set_faults(Faults::parse("stuck").unwrap());
    let e = power
        .set_power_state(&t, PowerAction::PowerOn, Some(Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ironic_core::ErrorKind::Timeout, "{e}");
    assert_eq!(server.power(), Power::Off);

    // A third of the requests fail with 500: the driver's retries get through
    // (10 attempts: a call fails only with probability 0.3^10).
    let patient = RedfishPower::new(RedfishConfig {
        connection_attempts: 10,
        ..config()
    });
    server.set_faults(Faults::parse("flaky=0.3").unwrap());
    for _ in 0..5 {
        patient.get_power_state(&t).await.unwrap();
    }
    server.set_faults(Faults::parse("flaky=1").unwrap());
    assert!(power.get_power_state(&t).await.is_err());
    server.set_faults(Faults::default());
    power
        .set_power_state(&t, PowerAction::PowerOn, None)
        .await
        .unwrap();
    assert_eq!(server.power(), Power::On);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redfish_vendor_event_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let server = lab_support::server(dir.path(), "lab-0", 0);
    let sim = RedfishSim::start("127.0.0.1:0".parse().unwrap(), vec![server.clone()])
        .await
        .unwrap();
    let mut t = task(&sim, &server, "pw-lab-0", json!({}));
    let vendor = RedfishVendor::new(config());
    let client = reqwest::Client::new();
    let bmc_get = |path: String| {
        let client = client.clone();
        let url = format!("{}{path}", sim.url());
        async move {
            let r = client
                .get(url)
                .basic_auth("admin", Some("pw-lab-0"))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };

    // What Metal3 sends: Destination, Context, HttpHeaders (no EventTypes).
    let created = vendor
        .call(
            &mut t,
            "create_subscription",
            "POST",
            json!({"Destination": "https://metal3.example:8443/events/lab-0",
                   "Context": "ns/lab-0-events",
                   "HttpHeaders": [{"Authorization": "Bearer s3cr3t"}]}),
        )
        .await
        .unwrap();
    // Ironic's answer: the BMC's subscription, five fields, Ironic's defaults filled in.
    let id = created["Id"].as_str().unwrap().to_owned();
    assert_eq!(
        created,
        json!({"Id": id, "Destination": "https://metal3.example:8443/events/lab-0",
               "Context": "ns/lab-0-events", "Protocol": "Redfish", "EventTypes": ["Alert"]})
    );
    // The BMC holds it.
    let (status, on_bmc) = bmc_get(format!("/redfish/v1/EventService/Subscriptions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(on_bmc["Destination"], created["Destination"]);
    assert_eq!(
        on_bmc["HttpHeaders"],
        Value::Null,
        "headers are not read back"
    );

    let second = vendor
        .call(
            &mut t,
            "create_subscription",
            "POST",
            json!({"Destination": "http://10.0.0.5/hook", "EventTypes": ["StatusChange", "Alert"],
                   "Protocol": "Redfish", "Context": ""}),
        )
        .await
        .unwrap();
    assert_eq!(second["EventTypes"], json!(["StatusChange", "Alert"]));

    let all = vendor
        .call(&mut t, "get_all_subscriptions", "GET", json!({}))
        .await
        .unwrap();
    assert_eq!(all["Members@odata.count"], json!(2), "{all}");
    assert_eq!(
        vendor
            .call(&mut t, "get_subscription", "GET", json!({"id": id}))
            .await
            .unwrap(),
        created
    );

    // The BMC refuses an event type it does not offer; so does the driver, first.
    let e = vendor
        .call(
            &mut t,
            "create_subscription",
            "POST",
            json!({"Destination": "http://10.0.0.5/hook", "EventTypes": ["MetricReport"]}),
        )
        .await
        .unwrap_err();
    assert!(
        e.message()
            .starts_with("EventTypes ['MetricReport'] is not a valid value"),
        "{e}"
    );

    let out = vendor
        .call(&mut t, "delete_subscription", "DELETE", json!({"id": id}))
        .await
        .unwrap();
    assert_eq!(out, Value::Null);
    let (status, _) = bmc_get(format!("/redfish/v1/EventService/Subscriptions/{id}")).await;
    assert_eq!(status, 404);
    // Deleting it again: the BMC's 404 inside Ironic's message.
    let e = vendor
        .call(&mut t, "delete_subscription", "DELETE", json!({"id": id}))
        .await
        .unwrap_err();
    assert!(
        e.message().starts_with(&format!(
            "Redfish delete_subscription failed for subscription {id} on node"
        )),
        "{e}"
    );
    // Ironic raises it with code=404; the API answers 404 for this kind
    assert_eq!(e.kind(), ironic_core::ErrorKind::NotFound, "{e}");
    let all = vendor
        .call(&mut t, "get_all_subscriptions", "GET", json!({}))
        .await
        .unwrap();
    assert_eq!(all["Members@odata.count"], json!(1), "{all}");
}

/// The redfish interfaces of one registration (one client cache), plus a
/// deploy interface so that redfish nodes resolve.
fn redfish_registry(config: RedfishConfig) -> ironic_core::InterfaceRegistry {
    let mut reg = ironic_core::InterfaceRegistry::with_noop();
    ironic_drivers_redfish::register(&mut reg, config);
    let control = ironic_core::fake::register(&mut reg, ironic_core::fake::FakeConfig::default());
    reg.register_deploy(
        "direct",
        std::sync::Arc::new(ironic_core::fake::FakeDeploy::new(control)),
    );
    reg
}

/// 8 ops on each of `servers` at once, each node with its own credentials (so
/// one client, one session each), through one registration's interfaces.
async fn busy_conductor(
    reg: &ironic_core::InterfaceRegistry,
    sim: &RedfishSim,
    servers: &[SimServer],
) -> Vec<Result<(), ironic_core::DriverError>> {
    let mut set = tokio::task::JoinSet::new();
    for server in servers {
        for op in 0..8 {
            let spec = server.spec();
            let mut t = task(
                sim,
                server,
                spec.password.expose(),
                json!({"redfish_auth_type": "session", "redfish_username": spec.username}),
            );
            reg.resolve_interfaces(&mut t.node).unwrap();
            let d = reg.driver_for(&t.node).unwrap();
            set.spawn(async move {
                if op % 2 == 0 {
                    d.power.get_power_state(&t).await.map(|_| ())
                } else {
                    d.management.get_boot_device(&t).await.map(|_| ())
                }
            });
        }
    }
    set.join_all().await
}

async fn until_no_session_is_open(sim: &RedfishSim) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sim.sessions().open > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "sessions left open: {:?}",
            sim.sessions()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A BMC hosting 8 systems with their own credentials, which allows 4
/// sessions (as iDRAC refuses the 5th: 503): a busy conductor (64 operations at
/// once) stays within `max_sessions_per_bmc` (4) by handing sessions over, and
/// logs every session out when its clients go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redfish_sessions_stay_within_the_bmc_limit_and_are_logged_out() {
    let dir = tempfile::tempdir().unwrap();
    // each with its own user: 8 clients, 8 sessions if nothing bounds them
    let servers: Vec<SimServer> = (0..8u8)
        .map(|i| {
            let mut spec = lab_support::spec(dir.path(), &format!("lab-{i}"), i);
            spec.username = format!("user-{i}");
            SimServer::new(spec)
        })
        .collect();
    // and two systems with the same credentials (one chassis BMC, one account)
    let twins: Vec<SimServer> = (8..10u8)
        .map(|i| {
            let mut spec = lab_support::spec(dir.path(), &format!("lab-{i}"), i);
            spec.username = "chassis".into();
            spec.password = ironic_core::Secret::new("pw-chassis");
            SimServer::new(spec)
        })
        .collect();
    let sim = RedfishSim::start_with(
        "127.0.0.1:0".parse().unwrap(),
        servers.iter().chain(&twins).cloned().collect(),
        SimOptions::default().max_sessions(4),
    )
    .await
    .unwrap();

    // Allowed 8 sessions, the conductor runs into the BMC's limit.
    {
        let reg = redfish_registry(RedfishConfig {
            max_sessions_per_bmc: 8,
            ..config()
        });
        let results = busy_conductor(&reg, &sim, &servers).await;
        let refused = results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .filter(|e| {
                e.message()
                    .contains("The maximum number of user sessions is reached")
            })
            .count();
        assert!(refused > 0, "{results:?}");
        assert!(sim.sessions().refused > 0);
    }
    // the dropped clients logged their sessions out
    until_no_session_is_open(&sim).await;
    let before = sim.sessions();
    assert_eq!(before.deleted, before.created, "{before:?}");

    // The default (4): every operation succeeds, none refused.
    let reg = redfish_registry(config());
    for round in 0..3 {
        let results = busy_conductor(&reg, &sim, &servers).await;
        for r in &results {
            assert!(r.is_ok(), "round {round}: {r:?} {:?}", sim.sessions());
        }
    }
    let after = sim.sessions();
    eprintln!(
        "sessions after the unlimited conductor: {before:?}; after 3 rounds within 4: {after:?}"
    );
    assert_eq!(after.refused, before.refused, "{after:?}");
    assert!(after.open <= 4, "{after:?}");
    // 8 clients through 4 sessions: sessions were handed over (logged out and
    // created again)
    assert!(after.created - before.created > 8, "{before:?} {after:?}");
    assert!(after.deleted > before.deleted, "{before:?} {after:?}");
    drop(reg);
    until_no_session_is_open(&sim).await;
    let end = sim.sessions();
    assert_eq!(end.deleted, end.created, "{end:?}");

    // Systems reached with the same credentials share one client, one session.
    let reg = redfish_registry(config());
    for round in 0..6 {
        busy_conductor(&reg, &sim, &twins[round % 2..round % 2 + 1])
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
    }
    let shared = sim.sessions();
    assert_eq!(shared.created, end.created + 1, "{end:?} {shared:?}");
    drop(reg);
    until_no_session_is_open(&sim).await;
    sim.shutdown().await;
}
