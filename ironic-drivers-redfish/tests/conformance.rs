//! The ironic-core conformance kit against a real `sushy-emulator` (fake
//! driver): the power suite over TLS with basic auth, the management behaviours,
//! the virtual-media boot suite, and `validate` never touching the BMC.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{FakeSystem, IsoServer, Sushy, SushyOptions, fast_config, task};
use ironic_core::driver::{
    BaseInterface, BootDevice, ManagementInterface, RamdiskKind, RamdiskParams,
};
use ironic_core::testkit::{self, BmcFixture, Outcome, Patience};
use ironic_drivers_redfish::{
    RedfishBios, RedfishFirmware, RedfishInspect, RedfishManagement, RedfishPower, RedfishRaid,
    RedfishVirtualMediaBoot,
};
use serde_json::json;

/// sushy-emulator applies power changes 1-11 s after the request.
fn patience() -> Patience {
    Patience {
        timeout: Duration::from_secs(60),
        interval: Duration::from_millis(500),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn power_suite_over_tls_with_basic_auth() {
    let emu = Sushy::start(SushyOptions {
        fake_systems: vec![FakeSystem::new(11)],
        tls: true,
        auth: Some(("admin".into(), "s3cret".into())),
        ..Default::default()
    });
    let cert = emu.cert.clone().unwrap();
    let t = task(
        &emu.address,
        json!({"redfish_username": "admin", "redfish_password": "s3cret",
               "redfish_verify_ca": cert.to_str().unwrap()}),
    );
    let f = BmcFixture::new(t)
        .with_patience(patience())
        .with_address(|t, addr| {
            t.node
                .driver_info
                .insert("redfish_address", format!("https://{addr}"));
        })
        .with_password_key("redfish_password");
    let power = RedfishPower::new(fast_config());
    let report = testkit::run_power_suite(&power, &f).await;
    report.print();
    // Every action is supported, so the refusal check does not apply; nor does the
    // stuck-BMC check (sushy-emulator cannot be made stuck: the lab's Redfish
    // simulator runs it, in examples/ironic-lab).
    let na: Vec<_> = report
        .not_applicable()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        na,
        [
            "unsupported_power_action_is_refused",
            "power_action_timeout_is_final"
        ],
        "{report:?}"
    );
    assert_eq!(report.passed(), 13, "{report:?}");
    // the management rules that need credentials, on the same BMC
    let mgmt = RedfishManagement::new(fast_config());
    for (name, o) in [
        (
            "management_wrong_credentials_are_final",
            testkit::management_wrong_credentials_are_final(&mgmt, &f).await,
        ),
        (
            "management_secrets_never_leak",
            testkit::management_secrets_never_leak(&mgmt, &f).await,
        ),
        (
            "validate_never_contacts_bmc",
            testkit::validate_never_contacts_bmc_with(&mgmt, &f).await,
        ),
    ] {
        assert_eq!(o, Outcome::Passed, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn management_behaviours() {
    let emu = Sushy::start(SushyOptions {
        fake_systems: vec![FakeSystem::new(12)],
        ..Default::default()
    });
    let t = task(&emu.address, json!({}));
    let f = BmcFixture::new(t.clone()).with_patience(patience());
    let mgmt = Arc::new(RedfishManagement::new(fast_config()));
    for (name, o) in [
        (
            "supported_boot_devices_are_sane",
            testkit::supported_boot_devices_are_sane(&*mgmt, &f).await,
        ),
        (
            "unsupported_boot_device_is_invalid_parameter",
            testkit::unsupported_boot_device_is_invalid_parameter(&*mgmt, &f).await,
        ),
        (
            "boot_mode_roundtrips_if_supported",
            testkit::boot_mode_roundtrips_if_supported(&*mgmt, &f).await,
        ),
        (
            "sensors_data_has_ironics_shape",
            testkit::sensors_data_has_ironics_shape(&*mgmt, &f).await,
        ),
        (
            "optional_methods_work_or_are_unsupported",
            testkit::optional_methods_work_or_are_unsupported(&*mgmt, &f).await,
        ),
        (
            "validate_reports_missing_keys",
            testkit::validate_reports_missing_keys(&*mgmt, &t),
        ),
    ] {
        assert_eq!(o, Outcome::Passed, "{name}");
    }
    for d in mgmt.get_supported_boot_devices(&t).await.unwrap() {
        if d == BootDevice::UefiHttp {
            // sushy-emulator turns UefiHttp without an HttpBootUri into Pxe
            // (sushy_tools/emulator/main.py, system_resource PATCH).
            mgmt.set_boot_device(&t, d, true).await.unwrap();
            let got = mgmt.get_boot_device(&t).await.unwrap();
            assert_eq!(got.boot_device, Some(BootDevice::Pxe));
            continue;
        }
        let o = testkit::set_boot_device_roundtrips(&*mgmt, &f, d, true).await;
        assert_eq!(o, Outcome::Passed, "persistent {d}");
    }
    // sushy-emulator ignores BootSourceOverrideEnabled and always reads
    // Continuous (reference/test-peers.md), so the kit's one-time round trip
    // must fail there, and only on the persistence flag.
    let (m, f2) = (mgmt.clone(), f.clone());
    let once = tokio::spawn(async move {
        testkit::set_boot_device_roundtrips(&*m, &f2, BootDevice::Pxe, false).await
    })
    .await;
    let panic =
        once.expect_err("sushy-emulator now keeps one-time boot: run the whole management suite");
    let msg = panic
        .into_panic()
        .downcast::<String>()
        .map(|s| *s)
        .unwrap_or_default();
    assert!(
        msg.contains("persistent=false but reads back persistent=true"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn virtual_media_boot_suite() {
    let emu = Sushy::start(SushyOptions {
        fake_systems: vec![FakeSystem::new(13)],
        ..Default::default()
    });
    let iso = IsoServer::start().await;
    let t = task(&emu.address, json!({"redfish_deploy_iso": iso.url}));
    let boot = RedfishVirtualMediaBoot::new(fast_config());
    let params =
        RamdiskParams::new(RamdiskKind::Deploy).with_param("ipa-api-url", "http://127.0.0.1:6385");
    let report = testkit::run_boot_suite(&boot, &t, &params).await;
    report.print();
    assert_eq!(report.passed(), 6, "{report:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_never_contacts_the_bmc() {
    let t = task(
        "http://127.0.0.1:9",
        json!({"redfish_deploy_iso": "http://127.0.0.1:9/deploy.iso",
               "redfish_username": "admin", "redfish_password": "pw"}),
    );
    let c = fast_config;
    let ifaces: Vec<Box<dyn BaseInterface>> = vec![
        Box::new(RedfishPower::new(c())),
        Box::new(RedfishManagement::new(c())),
        Box::new(RedfishVirtualMediaBoot::new(c())),
        Box::new(RedfishInspect::new(c())),
        Box::new(RedfishBios::new(c())),
        Box::new(RedfishRaid::new(c())),
        Box::new(RedfishFirmware::new(c())),
    ];
    for iface in &ifaces {
        let o = testkit::validate_never_contacts_bmc(&**iface, &t, |t, addr| {
            t.node
                .driver_info
                .insert("redfish_address", format!("https://{addr}"));
        })
        .await;
        assert_eq!(o, Outcome::Passed, "{iface:?}");
        assert_eq!(
            testkit::validate_reports_missing_keys(&**iface, &t),
            Outcome::Passed,
            "{iface:?}"
        );
    }
}
