//! The fakes pass the whole conformance kit, through the interfaces a conductor
//! resolves for a fake-hardware node.

use std::time::Duration;

use ironic_core::driver::{RamdiskKind, RamdiskParams, Task};
use ironic_core::fake::{self, Delay, FakeConfig};
use ironic_core::testkit::{self, BmcFixture, Outcome, Patience};
use ironic_core::{InterfaceRegistry, Node};

fn task(config: FakeConfig) -> (Task, fake::FakeControl) {
    let mut reg = InterfaceRegistry::with_noop();
    let control = fake::register(&mut reg, config);
    let mut node = Node::new("fake-hardware");
    reg.resolve_interfaces(&mut node).unwrap();
    let driver = reg.driver_for(&node).unwrap();
    (Task::new(node).with_driver(driver), control)
}

fn quick() -> Patience {
    Patience {
        timeout: Duration::from_secs(10),
        interval: Duration::from_millis(5),
    }
}

/// The fakes' fixture: they can be made stuck, but have no address or password.
fn fixture(t: &Task, control: &fake::FakeControl) -> BmcFixture {
    let (c, uuid) = (control.clone(), t.node.uuid);
    BmcFixture::new(t.clone())
        .with_patience(quick())
        .with_action_timeout(Duration::from_millis(300))
        .with_stall(move |stuck| c.set_power_stuck(uuid, stuck))
}

#[tokio::test]
async fn fakes_pass_the_whole_kit() {
    let (t, control) = task(FakeConfig::default());
    let f = fixture(&t, &control);
    let d = t.driver.clone().unwrap();
    let power = testkit::run_power_suite(&*d.power, &f).await;
    power.print();
    // the fake supports every action and has no address, password or required
    // driver_info key: exactly those behaviours do not apply
    let na: Vec<_> = power.not_applicable().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        na,
        [
            "unsupported_power_action_is_refused",
            "wrong_credentials_are_final",
            "unreachable_bmc_fails_cleanly",
            "validate_reports_missing_keys",
            "validate_never_contacts_bmc",
        ],
        "{power:?}"
    );
    assert_eq!(power.passed(), 10, "{power:?}");
    let mgmt = testkit::run_management_suite(&*d.management, &f).await;
    mgmt.print();
    assert!(mgmt.passed() >= 5, "{mgmt:?}");
    let params = RamdiskParams::new(RamdiskKind::Deploy);
    let boot = testkit::run_boot_suite(&*d.boot, &t, &params).await;
    assert_eq!(boot.passed(), 6, "{boot:?}");
    assert_eq!(boot.not_applicable().len(), 1, "{boot:?}");
    let deploy = testkit::run_deploy_suite(&*d.deploy, &t, &quick()).await;
    assert_eq!(deploy.passed(), 4, "{deploy:?}");
    for iface in [
        &*d.power as &dyn ironic_core::driver::BaseInterface,
        &*d.management,
        &*d.boot,
        &*d.deploy,
    ] {
        let o = testkit::validate_never_contacts_bmc(iface, &t, |t, addr| {
            t.node.driver_info.insert("fake_address", addr.to_string());
        })
        .await;
        assert_eq!(o, Outcome::Passed);
    }
    assert!(
        control.calls("power.validate") >= 2,
        "validate was exercised"
    );
}

#[tokio::test]
async fn the_kit_polls_slow_hardware() {
    // every power call takes a while, as a real BMC's
    let mut config = FakeConfig::default();
    config.power_delay = Delay::Range(Duration::from_millis(5), Duration::from_millis(30));
    let (t, c) = task(config);
    let f = fixture(&t, &c);
    let d = t.driver.clone().unwrap();
    assert_eq!(
        testkit::power_on_then_off_reaches_states(&*d.power, &f).await,
        Outcome::Passed
    );
    assert_eq!(
        testkit::reboot_powers_on_an_off_node(&*d.power, &f).await,
        Outcome::Passed
    );
}

#[tokio::test]
#[should_panic(expected = "not reached within")]
async fn the_kit_catches_a_power_interface_that_lies() {
    // a BMC whose reads keep failing (retryable) never reaches the state
    let (t, c) = task(FakeConfig::default());
    c.fail_with_probability(
        "power.get_power_state",
        1.0,
        ironic_core::ErrorKind::Timeout,
        true,
    );
    let d = t.driver.clone().unwrap();
    let f = fixture(&t, &c).with_patience(Patience {
        timeout: Duration::from_millis(100),
        interval: Duration::from_millis(10),
    });
    testkit::power_on_then_off_reaches_states(&*d.power, &f).await;
}

#[tokio::test]
#[should_panic(expected = "instead of invalid parameter")]
async fn the_kit_catches_a_wrong_error_kind() {
    // management that fails unsupported devices with the wrong kind
    let (t, c) = task(FakeConfig::default());
    c.fail_next(
        "management.set_boot_device",
        1,
        ironic_core::ErrorKind::Other,
        false,
    );
    let d = t.driver.clone().unwrap();
    testkit::unsupported_boot_device_is_invalid_parameter(&*d.management, &fixture(&t, &c)).await;
}

/// A power "driver" whose validate pings the BMC: the kit must catch it.
#[derive(Debug)]
struct ChattyValidate;

#[async_trait::async_trait]
impl ironic_core::driver::BaseInterface for ChattyValidate {
    fn validate(&self, task: &Task) -> Result<(), ironic_core::DriverError> {
        let addr = task.node.driver_info.get_str("bmc").unwrap();
        let _ = std::net::TcpStream::connect(addr);
        Ok(())
    }
}

#[tokio::test]
#[should_panic(expected = "validate opened a TCP connection")]
async fn the_kit_catches_a_validate_that_contacts_the_bmc() {
    let (t, _c) = task(FakeConfig::default());
    testkit::validate_never_contacts_bmc(&ChattyValidate, &t, |t, addr| {
        t.node.driver_info.insert("bmc", addr.to_string());
    })
    .await;
}
