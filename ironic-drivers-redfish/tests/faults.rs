//! Fault tests: a proxy in front of a real `sushy-emulator` injects 500/503
//! replies and provides expiring sessions.

mod common;

use std::sync::atomic::Ordering;

use common::proxy::Proxy;
use common::{FakeSystem, Sushy, SushyOptions, fast_config, task};
use ironic_core::driver::{
    BootDevice, BootInterface, ManagementInterface, PowerInterface, RamdiskKind, RamdiskParams,
};
use ironic_core::{ErrorKind, PowerAction, PowerState};
use ironic_drivers_redfish::{RedfishManagement, RedfishPower, RedfishVirtualMediaBoot};
use serde_json::json;

fn emulator(auth: bool) -> Sushy {
    Sushy::start(SushyOptions {
        fake_systems: vec![FakeSystem::new(3)],
        auth: auth.then(|| ("admin".to_owned(), "pw".to_owned())),
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn intermittent_500_and_503_are_retried() {
    let emu = emulator(false);
    let proxy = Proxy::start(&emu.address, None).await;
    let power = RedfishPower::new(fast_config());
    let t = task(&proxy.address, json!({}));

    proxy.state.fail_next(2, 503);
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::Off);
    assert_eq!(proxy.state.injected.load(Ordering::SeqCst), 2);

    proxy.state.fail_next(3, 500);
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::Off);
    assert_eq!(proxy.state.injected.load(Ordering::SeqCst), 5);

    // Every other request fails while a whole power-on (reset + polling) runs.
    proxy.state.fail_every.store(2, Ordering::SeqCst);
    power
        .set_power_state(&t, PowerAction::PowerOn, None)
        .await
        .unwrap();
    let mgmt = RedfishManagement::new(fast_config());
    mgmt.set_boot_device(&t, BootDevice::Pxe, true)
        .await
        .unwrap();
    proxy.state.fail_every.store(0, Ordering::SeqCst);
    assert!(proxy.state.injected.load(Ordering::SeqCst) > 5);
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::On);
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_503_gives_a_retryable_error_after_the_attempts() {
    let emu = emulator(false);
    let proxy = Proxy::start(&emu.address, None).await;
    let power = RedfishPower::new(fast_config());
    let t = task(&proxy.address, json!({}));
    power.get_power_state(&t).await.unwrap(); // resolve the system first
    let before = proxy.state.requests.load(Ordering::SeqCst);
    proxy.state.fail_next(1000, 503);
    let e = power.get_power_state(&t).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
    assert!(e.is_retryable());
    assert!(e.message().contains("503"), "{e}");
    let sent = proxy.state.requests.load(Ordering::SeqCst) - before;
    assert_eq!(sent, fast_config().connection_attempts);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_errors_and_501_are_not_retried() {
    let emu = emulator(false);
    let proxy = Proxy::start(&emu.address, None).await;
    let power = RedfishPower::new(fast_config());
    let t = task(&proxy.address, json!({}));
    power.get_power_state(&t).await.unwrap();
    for (status, kind) in [(501, ErrorKind::Unsupported), (404, ErrorKind::NotFound)] {
        let before = proxy.state.requests.load(Ordering::SeqCst);
        proxy.state.fail_next(1, status);
        let e = power.get_power_state(&t).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert!(!e.is_retryable());
        assert_eq!(proxy.state.requests.load(Ordering::SeqCst) - before, 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_session_logs_in_again() {
    let emu = emulator(true);
    let proxy = Proxy::start(&emu.address, Some(("admin", "pw"))).await;
    let power = RedfishPower::new(fast_config());
    for auth in ["session", "auto"] {
        let t = task(
            &proxy.address,
            json!({"redfish_username": "admin", "redfish_password": "pw", "redfish_auth_type": auth}),
        );
        let logins = proxy.state.logins.load(Ordering::SeqCst);
        assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::Off);
        assert_eq!(proxy.state.logins.load(Ordering::SeqCst), logins + 1);
        // The session is reused...
        power.get_power_state(&t).await.unwrap();
        assert_eq!(proxy.state.logins.load(Ordering::SeqCst), logins + 1);
        // ...until it expires mid-operation: one new login, the call succeeds.
        proxy.state.expire_sessions();
        assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::Off);
        assert_eq!(proxy.state.logins.load(Ordering::SeqCst), logins + 2);
    }
    // Expiry in the middle of a power-on (reset, then polling).
    let t = task(
        &proxy.address,
        json!({"redfish_username": "admin", "redfish_password": "pw", "redfish_auth_type": "session"}),
    );
    let expirer = {
        let st = proxy.state.clone();
        tokio::spawn(async move {
            for _ in 0..5 {
                tokio::time::sleep(std::time::Duration::from_millis(700)).await;
                st.expire_sessions();
            }
        })
    };
    power
        .set_power_state(&t, PowerAction::PowerOn, None)
        .await
        .unwrap();
    expirer.await.unwrap();
    // Wrong password at session creation: clear and not retryable.
    let t = task(
        &proxy.address,
        json!({"redfish_username": "admin", "redfish_password": "wr0ng-Secret", "redfish_auth_type": "session"}),
    );
    let e = power.get_power_state(&t).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.is_retryable());
    // The BMC echoed the password; the error does not.
    assert!(e.message().contains("invalid credentials"), "{e}");
    assert!(!e.message().contains("wr0ng-Secret"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_bmc_is_retryable() {
    let port = common::free_port();
    let power = RedfishPower::new(fast_config());
    let t = task(&format!("http://127.0.0.1:{port}"), json!({}));
    let e = power.get_power_state(&t).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    assert!(e.is_retryable());
    assert!(e.message().contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn etag_demanding_bmc_gets_if_match() {
    let emu = emulator(false);
    let proxy = Proxy::start(&emu.address, None).await;
    let st = &proxy.state;
    st.require_etag.store(true, Ordering::SeqCst);
    st.etag_on_get.store(true, Ordering::SeqCst);
    let mgmt = RedfishManagement::new(fast_config());
    let t = task(&proxy.address, json!({}));
    // The ETag read with the resource goes along: no precondition failure.
    mgmt.set_boot_device(&t, BootDevice::Pxe, true)
        .await
        .unwrap();
    assert_eq!(st.precondition_failures.load(Ordering::SeqCst), 0);
    // A concurrent change (412): re-read, send again.
    st.stale_next.store(1, Ordering::SeqCst);
    mgmt.set_boot_device(&t, BootDevice::Cdrom, true)
        .await
        .unwrap();
    assert_eq!(st.precondition_failures.load(Ordering::SeqCst), 1);
    assert_eq!(
        mgmt.get_boot_device(&t).await.unwrap().boot_device,
        Some(BootDevice::Cdrom)
    );
    // No ETag offered but If-Match demanded (428): the wildcard is sent.
    st.etag_on_get.store(false, Ordering::SeqCst);
    mgmt.set_indicator_state(&t, "system", "led", "BLINKING")
        .await
        .unwrap();
    assert_eq!(st.precondition_failures.load(Ordering::SeqCst), 2);
    assert_eq!(
        mgmt.get_indicator_state(&t, "system", "led").await.unwrap(),
        "BLINKING"
    );
    // Stale twice in a row: a conflict error, not a loop.
    st.etag_on_get.store(true, Ordering::SeqCst);
    st.stale_next.store(2, Ordering::SeqCst);
    let e = mgmt
        .set_boot_device(&t, BootDevice::Disk, true)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn virtual_media_found_under_the_manager() {
    let emu = emulator(false);
    let proxy = Proxy::start(&emu.address, None).await;
    proxy.state.hide_system_vmedia.store(true, Ordering::SeqCst);
    let iso = common::IsoServer::start().await;
    let boot = RedfishVirtualMediaBoot::new(fast_config());
    let mut t = task(&proxy.address, json!({"redfish_deploy_iso": iso.url}));
    let params = RamdiskParams::new(RamdiskKind::Deploy);
    boot.prepare_ramdisk(&mut t, &params).await.unwrap();
    let sys = FakeSystem::new(3);
    let cd = common::raw_get(
        &emu.address,
        &format!("/redfish/v1/Systems/{}/VirtualMedia/Cd", sys.uuid),
        None,
    )
    .await;
    assert_eq!(cd["Inserted"], json!(true), "{cd}");
    boot.clean_up_ramdisk(&mut t).await.unwrap();
    let cd = common::raw_get(
        &emu.address,
        &format!("/redfish/v1/Systems/{}/VirtualMedia/Cd", sys.uuid),
        None,
    )
    .await;
    assert_eq!(cd["Inserted"], json!(false), "{cd}");
}
