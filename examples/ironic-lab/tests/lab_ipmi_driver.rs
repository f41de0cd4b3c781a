//! The lab's IPMI simulator driven by this project's IPMI driver (`ironic-drivers-ipmi`).

mod lab_support;

use std::time::Duration;

use ironic_core::driver::{BootDevice, ManagementInterface, PowerInterface, Task};
use ironic_core::{DriverInfo, ErrorKind, Node, PowerAction, PowerState};
use ironic_drivers_ipmi::{IpmiConfig, IpmiInterfaces};
use ironic_lab::model::{BootEnabled, BootTarget, Power};
use ironic_lab::{Faults, IpmiSim};
use serde_json::json;

fn config() -> IpmiConfig {
    IpmiConfig {
        packet_timeout: Duration::from_millis(300),
        packet_retries: 2,
        command_retry_timeout: Duration::from_secs(5),
        retry_backoff: Duration::from_millis(50),
        retry_backoff_max: Duration::from_millis(200),
        power_timeout: Duration::from_secs(5),
        power_poll_interval: Duration::from_millis(100),
        ..IpmiConfig::default()
    }
}

fn task(sim: &IpmiSim, password: &str, suite: Option<u8>) -> Task {
    let mut info = json!({
        "ipmi_address": "127.0.0.1",
        "ipmi_port": sim.addr().port(),
        "ipmi_username": "admin",
        "ipmi_password": password,
    });
    if let Some(s) = suite {
        info["ipmi_cipher_suite"] = json!(s);
    }
    let mut node = Node::new("ipmi");
    node.driver_info = serde_json::from_value::<DriverInfo>(info).unwrap();
    Task::new(node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmi_driver_power_and_boot_device() {
    let dir = tempfile::tempdir().unwrap();
    let server = lab_support::server(dir.path(), "lab-0", 0);
    let sim = IpmiSim::start("127.0.0.1:0".parse().unwrap(), server.clone())
        .await
        .unwrap();
    let ipmi = IpmiInterfaces::new(config());
    // No suite given: the driver tries 17, which this BMC refuses, then 3.
    for t in [
        task(&sim, "pw-lab-0", Some(3)),
        task(&sim, "pw-lab-0", None),
    ] {
        assert_eq!(
            ipmi.power.get_power_state(&t).await.unwrap(),
            PowerState::Off
        );
        ipmi.management
            .set_boot_device(&t, BootDevice::Pxe, false)
            .await
            .unwrap();
        let b = server.boot_override();
        assert_eq!((b.target, b.enabled), (BootTarget::Pxe, BootEnabled::Once));
        let info = ipmi.management.get_boot_device(&t).await.unwrap();
        assert_eq!(
            (info.boot_device, info.persistent),
            (Some(BootDevice::Pxe), Some(false))
        );
        ipmi.power
            .set_power_state(&t, PowerAction::PowerOn, None)
            .await
            .unwrap();
        assert_eq!(server.power(), Power::On);
        // The one-time PXE override was consumed by that boot.
        assert_eq!(server.boot_override().enabled, BootEnabled::Disabled);
        ipmi.management
            .set_boot_device(&t, BootDevice::Disk, true)
            .await
            .unwrap();
        let info = ipmi.management.get_boot_device(&t).await.unwrap();
        assert_eq!(
            (info.boot_device, info.persistent),
            (Some(BootDevice::Disk), Some(true))
        );
        let boots = server.subscribe().borrow().boots;
        ipmi.power.reboot(&t, None).await.unwrap();
        assert!(server.subscribe().borrow().boots > boots);
        ipmi.power
            .set_power_state(&t, PowerAction::PowerOff, None)
            .await
            .unwrap();
        assert_eq!(server.power(), Power::Off);
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmi_driver_sees_the_injected_faults() {
    let dir = tempfile::tempdir().unwrap();
    let server = lab_support::server(dir.path(), "lab-0", 0);
    let sim = IpmiSim::start("127.0.0.1:0".parse().unwrap(), server.clone())
        .await
        .unwrap();
    let ipmi = IpmiInterfaces::new(config());

    let e = ipmi
        .power
        .get_power_state(&task(&sim, "nope", Some(3)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.to_string().contains("nope"), "{e}");

    let t = task(&sim, "pw-lab-0", Some(3));
    server.set_faults(Faults::parse("stuck").unwrap());
    let e = ipmi
        .power
        .set_power_state(&t, PowerAction::PowerOn, Some(Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(server.power(), Power::Off);

    // Some datagrams are lost: retransmission gets through.
    server.set_faults(Faults::parse("flaky=0.2").unwrap());
    for _ in 0..3 {
        assert_eq!(
            ipmi.power.get_power_state(&t).await.unwrap(),
            PowerState::Off
        );
    }
    server.set_faults(Faults::default());
    ipmi.power
        .set_power_state(&t, PowerAction::PowerOn, None)
        .await
        .unwrap();
    assert_eq!(server.power(), Power::On);
    sim.shutdown().await;
}
