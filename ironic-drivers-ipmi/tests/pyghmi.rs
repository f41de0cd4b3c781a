//! Against a pyghmi BMC (cipher suites 3 and 17, boot flags kept), cross-checked
//! with ipmitool using the same suite.

mod common;

use std::time::Duration;

use common::peers::{PyghmiBmcs, ipmitool};
use common::{config, interfaces, task};
use ironic_core::driver::BootDevice;
use ironic_core::{ErrorKind, PowerAction, PowerState};

fn with_suite(bmcs: &PyghmiBmcs, i: usize, suite: Option<u8>) -> serde_json::Value {
    let mut info = bmcs.driver_info(i);
    if let Some(s) = suite {
        info["ipmi_cipher_suite"] = s.into();
    }
    info
}

#[tokio::test]
async fn power_and_boot_flags_with_both_suites() {
    let bmcs = PyghmiBmcs::start(2);
    let (power, mgmt) = interfaces(config());
    for (i, suite) in [(0usize, 3u8), (1, 17)] {
        let port = bmcs.ports[i];
        let t = task(with_suite(&bmcs, i, Some(suite)));
        assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::Off);
        power
            .set_power_state(&t, PowerAction::PowerOn, None)
            .await
            .unwrap();
        assert!(ipmitool(port, suite, &["power", "status"]).contains("is on"));
        power.reboot(&t, None).await.unwrap();
        power
            .set_power_state(&t, PowerAction::SoftPowerOff, None)
            .await
            .unwrap();
        assert!(ipmitool(port, suite, &["power", "status"]).contains("is off"));

        // persistent + UEFI (the default boot mode)
        mgmt.set_boot_device(&t, BootDevice::Pxe, true)
            .await
            .unwrap();
        let out = ipmitool(port, suite, &["chassis", "bootparam", "get", "5"]);
        assert!(out.contains("Boot Flag Valid"), "{out}");
        assert!(out.contains("Options apply to all future boots"), "{out}");
        assert!(out.contains("BIOS EFI boot"), "{out}");
        assert!(out.contains("Force PXE"), "{out}");
        let got = mgmt.get_boot_device(&t).await.unwrap();
        assert_eq!(
            (got.boot_device, got.persistent),
            (Some(BootDevice::Pxe), Some(true))
        );

        // next boot only, legacy BIOS asked by the node's capabilities
        let mut legacy = t.clone();
        legacy
            .node
            .properties
            .insert("capabilities".into(), "boot_mode:bios".into());
        mgmt.set_boot_device(&legacy, BootDevice::Disk, false)
            .await
            .unwrap();
        let out = ipmitool(port, suite, &["chassis", "bootparam", "get", "5"]);
        assert!(out.contains("Options apply to only next boot"), "{out}");
        assert!(out.contains("BIOS PC Compatible (legacy) boot"), "{out}");
        assert!(out.contains("Force Boot from default Hard-Drive"), "{out}");
        let got = mgmt.get_boot_device(&t).await.unwrap();
        assert_eq!(
            (got.boot_device, got.persistent),
            (Some(BootDevice::Disk), Some(false))
        );

        mgmt.inject_nmi(&t).await.unwrap();
    }
    for p in &bmcs.ports {
        for what in ["nmi", "soft off"] {
            let line = format!("BMC {p} {what}");
            assert!(
                bmcs.logged(&line, Duration::from_secs(5)),
                "{line}: {:?}",
                bmcs.log()
            );
        }
    }
}

#[tokio::test]
async fn suite_17_is_chosen_when_not_configured() {
    let bmcs = PyghmiBmcs::start(1);
    let (power, _) = interfaces(config());
    let t = task(with_suite(&bmcs, 0, None));
    power
        .set_power_state(&t, PowerAction::PowerOn, None)
        .await
        .unwrap();
    // ipmitool with suite 17 sees it
    assert!(ipmitool(bmcs.ports[0], 17, &["power", "status"]).contains("is on"));
}

#[tokio::test]
async fn wrong_password_with_either_suite() {
    let bmcs = PyghmiBmcs::start(1);
    let (power, _) = interfaces(config());
    for suite in [3u8, 17] {
        let mut info = with_suite(&bmcs, 0, Some(suite));
        info["ipmi_password"] = "hunter2".into();
        let e = power.get_power_state(&task(info)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("'admin'") && !e.to_string().contains("hunter2"));
    }
}

#[tokio::test]
async fn many_concurrent_callers_on_several_bmcs() {
    let bmcs = PyghmiBmcs::start(4);
    let (power, _) = interfaces(config());
    let mut set = tokio::task::JoinSet::new();
    for i in 0..4 {
        for _ in 0..5 {
            let p = power.clone();
            let t = task(with_suite(&bmcs, i, Some(3)));
            set.spawn(async move { p.get_power_state(&t).await });
        }
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap().unwrap(), PowerState::Off);
    }
}

#[tokio::test]
async fn unknown_user_times_out_with_a_hint() {
    let bmcs = PyghmiBmcs::start(1);
    let (power, _) = interfaces(config());
    let mut info = with_suite(&bmcs, 0, Some(3));
    info["ipmi_username"] = "nobody".into();
    info["ipmi_packet_timeout"] = 0.2.into();
    info["ipmi_packet_retries"] = 1.into();
    info["ipmi_command_retry_timeout"] = 5.into();
    let e = power.get_power_state(&task(info)).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(e.to_string().contains("user 'nobody'"), "{e}");
}

// multi-thread: `logged` blocks its thread while the session worker runs
#[tokio::test(flavor = "multi_thread")]
async fn one_session_is_reused_kept_alive_and_closed_when_idle() {
    let bmcs = PyghmiBmcs::start(1);
    let port = bmcs.ports[0];
    let count = |what: &str| {
        let line = format!("BMC {port} {what}");
        bmcs.log().iter().filter(|l| **l == line).count()
    };
    let cfg = ironic_drivers_ipmi::IpmiConfig {
        keepalive_interval: Duration::from_millis(300),
        session_idle_timeout: Duration::from_millis(1500),
        ..config()
    };
    let (power, _) = interfaces(cfg);
    let t = task(with_suite(&bmcs, 0, Some(17)));
    for _ in 0..10 {
        power.get_power_state(&t).await.unwrap();
    }
    assert!(bmcs.logged(&format!("BMC {port} session open"), Duration::from_secs(5)));
    assert_eq!(count("session open"), 1, "{:?}", bmcs.log());
    // idle but in use: keep-alives, same session
    tokio::time::sleep(Duration::from_millis(1000)).await;
    power.get_power_state(&t).await.unwrap();
    assert!(count("device id") >= 1, "no keep-alive: {:?}", bmcs.log());
    assert_eq!(count("session open"), 1, "{:?}", bmcs.log());
    // idle past session_idle_timeout: Close Session, then a new session
    assert!(
        bmcs.logged(
            &format!("BMC {port} session close"),
            Duration::from_secs(10)
        ),
        "{:?}",
        bmcs.log()
    );
    power.get_power_state(&t).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(count("session open"), 2, "{:?}", bmcs.log());
}
