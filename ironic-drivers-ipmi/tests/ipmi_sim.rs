//! Against OpenIPMI's ipmi_sim (cipher suite 3 only), cross-checked with ipmitool.

mod common;

use common::peers::{IpmiSim, PASSWORD, ipmitool};
use common::{config, interfaces, task};
use ironic_core::driver::BootDevice;
use ironic_core::{ErrorKind, PowerAction, PowerState};

fn sim_task(sim: &IpmiSim) -> ironic_core::driver::Task {
    task(sim.driver_info())
}

#[tokio::test]
async fn power_actions_are_reached_and_seen_by_ipmitool() {
    let sim = IpmiSim::start();
    let (power, _) = interfaces(config());
    let t = sim_task(&sim);
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::Off);

    power
        .set_power_state(&t, PowerAction::PowerOn, None)
        .await
        .unwrap();
    assert!(ipmitool(sim.port, 3, &["power", "status"]).contains("is on"));
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::On);
    // already on: succeeds
    power
        .set_power_state(&t, PowerAction::PowerOn, None)
        .await
        .unwrap();

    power.reboot(&t, None).await.unwrap();
    assert!(ipmitool(sim.port, 3, &["power", "status"]).contains("is on"));

    power
        .set_power_state(&t, PowerAction::SoftPowerOff, None)
        .await
        .unwrap();
    assert!(ipmitool(sim.port, 3, &["power", "status"]).contains("is off"));

    power
        .set_power_state(&t, PowerAction::SoftReboot, None)
        .await
        .unwrap();
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::On);

    power
        .set_power_state(&t, PowerAction::PowerOff, None)
        .await
        .unwrap();
    assert!(ipmitool(sim.port, 3, &["power", "status"]).contains("is off"));

    let calls = sim.calls();
    for c in ["set power 1", "set power 0", "set shutdown 1"] {
        assert!(
            calls.contains(c),
            "chassis_control never got {c:?}: {calls}"
        );
    }
}

#[tokio::test]
async fn boot_device_is_set_and_read_back() {
    let sim = IpmiSim::start();
    let (_, mgmt) = interfaces(config());
    let t = sim_task(&sim);
    for (dev, ipmitool_name) in [
        (BootDevice::Pxe, "Force PXE"),
        (BootDevice::Cdrom, "Force Boot from CD/DVD"),
        (BootDevice::Bios, "Force Boot into BIOS Setup"),
    ] {
        mgmt.set_boot_device(&t, dev, true).await.unwrap();
        let out = ipmitool(sim.port, 3, &["chassis", "bootparam", "get", "5"]);
        assert!(out.contains(ipmitool_name), "{dev}: {out}");
        let got = mgmt.get_boot_device(&t).await.unwrap();
        assert_eq!(got.boot_device, Some(dev));
    }
    // ipmi_sim keeps only the device (see test-peers.md): flags read back as unset
    assert!(sim.calls().contains("set boot pxe"));
    let e = mgmt
        .set_boot_device(&t, BootDevice::UefiHttp, false)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter);
}

#[tokio::test]
async fn sensors_come_from_the_sdr() {
    let sim = IpmiSim::start();
    let (_, mgmt) = interfaces(config());
    let data = mgmt.get_sensors_data(&sim_task(&sim)).await.unwrap();
    let temp = &data["Temperature"]["CPU Temp (0x1)"];
    assert_eq!(
        temp["Sensor Reading"], "45 (+/- 0) Degrees Celsius",
        "{data:#?}"
    );
    assert_eq!(temp["Status"], "ok");
    assert_eq!(temp["Upper Critical"], "90");
    let psu = &data["Power Supply"]["PSU Status (0x2)"];
    assert_eq!(
        psu["Sensor Type (Discrete)"], "Power Supply (0x08)",
        "{data:#?}"
    );
    // ipmitool reads the same value
    let out = ipmitool(sim.port, 3, &["sdr", "list"]);
    assert!(
        out.contains("CPU Temp") && out.contains("45 degrees C") && out.contains("ok"),
        "{out}"
    );
}

#[tokio::test]
async fn sdr_read_in_small_pieces_gives_the_same_sensors() {
    let sim = IpmiSim::start();
    let (_, whole) = interfaces(config());
    let (_, pieces) = interfaces(ironic_drivers_ipmi::IpmiConfig {
        sdr_chunk_size: 7,
        ..config()
    });
    let t = sim_task(&sim);
    let a = whole.get_sensors_data(&t).await.unwrap();
    let b = pieces.get_sensors_data(&t).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(
        b["Temperature"]["CPU Temp (0x1)"]["Sensor Reading"],
        "45 (+/- 0) Degrees Celsius"
    );
}

#[tokio::test]
async fn wrong_password_is_a_clear_non_retryable_error() {
    let sim = IpmiSim::start();
    let (power, _) = interfaces(config());
    let mut info = sim.driver_info();
    info["ipmi_password"] = "not-the-password".into();
    let started = std::time::Instant::now();
    let e = power.get_power_state(&task(info)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.is_retryable());
    let msg = e.to_string();
    assert!(msg.contains("authentication failed"), "{msg}");
    assert!(
        msg.contains(&format!("127.0.0.1:{}", sim.port)) && msg.contains("'admin'"),
        "{msg}"
    );
    assert!(!msg.contains("not-the-password") && !msg.contains(PASSWORD));
    assert!(!format!("{e:?}").contains("not-the-password"));
    // not retried until the command bound: well under ipmi_command_retry_timeout (20 s)
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test]
async fn privilege_is_raised_and_limits_are_reported() {
    let sim = IpmiSim::start();
    let (power, _) = interfaces(config());
    // the admin session is raised to ADMINISTRATOR: chassis control works
    let t = sim_task(&sim);
    power
        .set_power_state(&t, PowerAction::PowerOn, None)
        .await
        .unwrap();
    // "viewer" at USER (ipmi_sim does not refuse ADMINISTRATOR to it at session
    // setup, it checks each command) can read the power state but not change it
    let mut info = sim.driver_info();
    info["ipmi_username"] = "viewer".into();
    info["ipmi_password"] = "viewer-pw".into();
    info["ipmi_priv_level"] = "USER".into();
    let t = task(info);
    assert_eq!(power.get_power_state(&t).await.unwrap(), PowerState::On);
    let e = power
        .set_power_state(&t, PowerAction::PowerOff, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(e.to_string().contains("insufficient privilege"), "{e}");
}

#[tokio::test]
async fn suite_17_is_tried_then_3_and_explicit_17_is_refused_clearly() {
    let sim = IpmiSim::start();
    let (power, _) = interfaces(config());
    // no ipmi_cipher_suite: 17 is refused by ipmi_sim, 3 works
    assert_eq!(
        power.get_power_state(&sim_task(&sim)).await.unwrap(),
        PowerState::Off
    );
    let mut info = sim.driver_info();
    info["ipmi_cipher_suite"] = 17.into();
    let e = power.get_power_state(&task(info)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{e}");
    assert!(e.to_string().contains("cipher suite 17"), "{e}");
}

#[tokio::test]
async fn concurrent_callers_share_one_queue() {
    let sim = IpmiSim::start();
    let (power, _) = interfaces(config());
    let t = sim_task(&sim);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let p = power.clone();
        let t = t.clone();
        set.spawn(async move { p.get_power_state(&t).await });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap().unwrap(), PowerState::Off);
    }
}

/// Issue 17's case through the conductor: a stuck BMC (ipmi_sim accepts the
/// command, the power never changes) and a 1 s timeout. The BMC gets `power on`
/// once, the action fails with a non-retryable timeout in `last_error`, and the
/// node's lock is released; once the BMC recovers, asking again works.
#[tokio::test(flavor = "multi_thread")]
async fn a_power_action_on_a_stuck_bmc_is_sent_once() {
    use ironic_core::conductor::{Conductor, ConductorConfig};
    use ironic_core::store::MemoryStore;
    use ironic_core::{InterfaceRegistry, Node};
    use std::sync::Arc;
    use std::time::Duration;

    let sim = IpmiSim::start();
    // IPMI power and management, the fakes for boot and deploy (nothing here boots)
    let mut reg = InterfaceRegistry::with_noop();
    ironic_core::fake::register(&mut reg, ironic_core::fake::FakeConfig::default());
    ironic_drivers_ipmi::register(&mut reg, config());
    reg.register_hardware_type(
        ironic_drivers_ipmi::IPMI_HARDWARE
            .named("ipmi-power-only")
            .with_boot(&["fake"])
            .with_deploy(&["fake"]),
    );
    let mut cfg = ConductorConfig::default();
    cfg.power_state_sync_interval = Duration::ZERO;
    let c = Conductor::start(Arc::new(MemoryStore::new()), reg, cfg)
        .await
        .unwrap();
    let mut n = Node::new("ipmi-power-only");
    n.driver_info = serde_json::from_value(sim.driver_info()).unwrap();
    let n = c.create_node(n).await.unwrap();
    assert_eq!(n.interfaces.power_interface, "ipmitool");
    let id = n.uuid.into();
    let power_ons = || sim.calls().matches("set power 1").count();

    sim.set_stuck(true);
    c.set_power_state(&id, PowerAction::PowerOn, Some(Duration::from_secs(1)))
        .await
        .unwrap();
    let n = loop {
        let n = c.get_node(&id).await.unwrap();
        if n.target_power_state.is_none() {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        power_ons(),
        1,
        "the conductor re-sent the power action: {}",
        sim.calls()
    );
    let err = n.last_error.expect("last_error");
    assert!(
        err.contains("did not reach power state power on within 1s"),
        "{err}"
    );
    assert!(n.reservation.is_none(), "the node is still locked");

    sim.set_stuck(false);
    c.set_power_state(&id, PowerAction::PowerOn, Some(Duration::from_secs(10)))
        .await
        .unwrap();
    let n = loop {
        let n = c.get_node(&id).await.unwrap();
        if n.target_power_state.is_none() {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(n.power_state, Some(PowerState::On), "{:?}", n.last_error);
    assert!(n.last_error.is_none());
    assert_eq!(power_ons(), 2);
    c.shutdown().await;
}
