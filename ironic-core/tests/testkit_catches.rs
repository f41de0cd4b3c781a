//! The conformance kit catches drivers that break the contract: each test runs one
//! behaviour against a toy driver broken in one way (`tests/toy`) and expects the
//! behaviour to fail with a message naming the broken rule. The correct toy driver
//! passes every behaviour, so each failure is the breakage's doing.

mod toy;

use std::sync::Arc;
use std::time::Duration;

use ironic_core::driver::{PowerInterface, Task};
use ironic_core::hardware::FAKE_HARDWARE;
use ironic_core::testkit::{self, BmcFixture, Outcome, Patience};
use ironic_core::{InterfaceRegistry, Node, fake};
use toy::{Broken, ToyBmc, ToyDriver};

/// A toy BMC whose power changes take 150 ms, and the fixture over it with every
/// hook: address, password key, stall.
async fn fixture() -> (ToyBmc, BmcFixture) {
    let bmc = ToyBmc::start(Duration::from_millis(150)).await;
    let stall = bmc.clone();
    let f = BmcFixture::new(Task::new(bmc.node()))
        .with_patience(Patience {
            timeout: Duration::from_secs(5),
            interval: Duration::from_millis(20),
        })
        .with_action_timeout(Duration::from_millis(600))
        .with_address(|t, addr| {
            t.node.driver_info.insert("toy_address", addr.to_string());
        })
        .with_password_key("toy_password")
        .with_stall(move |stuck| stall.set_stuck(stuck));
    (bmc, f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_correct_toy_driver_passes_the_whole_kit() {
    let (bmc, f) = fixture().await;
    let d = ToyDriver::new(Broken::Nothing);
    let power = testkit::run_power_suite(&*d, &f).await;
    power.print();
    let na: Vec<_> = power.not_applicable().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        na,
        ["soft_power_off_if_supported", "soft_reboot_if_supported"],
        "{power:?}"
    );
    assert_eq!(power.passed(), 13, "{power:?}");
    let mgmt = testkit::run_management_suite(&*d, &f).await;
    mgmt.print();
    let na: Vec<_> = mgmt.not_applicable().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        na,
        [
            "boot_mode_roundtrips_if_supported",
            "sensors_data_has_ironics_shape"
        ],
        "{mgmt:?}"
    );
    assert_eq!(mgmt.passed(), 8, "{mgmt:?}");
    assert!(bmc.power_commands() > 10);
}

/// A fixture without hooks makes the behaviours that need them not applicable,
/// and says which hook is missing: a driver cannot pass them by omission unseen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_hooks_are_reported_not_passed() {
    let (_bmc, full) = fixture().await;
    let f = BmcFixture::new(full.task.clone()).with_patience(full.patience.clone());
    let d = ToyDriver::new(Broken::Nothing);
    let power = testkit::run_power_suite(&*d, &f).await;
    let na = power.not_applicable();
    for (behaviour, hook) in [
        ("power_action_timeout_is_final", "with_stall"),
        ("wrong_credentials_are_final", "with_password_key"),
        ("unreachable_bmc_fails_cleanly", "with_address"),
        ("validate_never_contacts_bmc", "with_address"),
    ] {
        let why = na
            .iter()
            .find(|(n, _)| *n == behaviour)
            .unwrap_or_else(|| panic!("{behaviour} ran without its hook: {power:?}"));
        assert!(why.1.contains(hook), "{why:?}");
    }
}

macro_rules! catches {
    ($($name:ident: $broken:ident by $behaviour:ident, $expected:literal;)+) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[should_panic(expected = $expected)]
        async fn $name() {
            let (_bmc, f) = fixture().await;
            let d = ToyDriver::new(Broken::$broken);
            testkit::$behaviour(&*d, &f).await;
        }
    )+};
}

catches! {
    // power
    returning_before_the_state_is_reached: ReturnsBeforeReached
        by set_power_state_returns_once_reached, "returned before the node reached";
    ignoring_the_action_timeout: IgnoresTimeout
        by power_action_timeout_is_final, "the driver ignores the timeout it is given";
    a_retryable_action_timeout: RetryableTimeout
        by power_action_timeout_is_final, "failed with a retryable timeout";
    an_action_timeout_of_the_wrong_kind: TimeoutAsOther
        by power_action_timeout_is_final, "instead of timeout";
    success_when_the_state_was_not_reached: OkWhenNotReached
        by power_action_timeout_is_final, "succeeded after";
    retryable_wrong_credentials: RetryableAuth
        by wrong_credentials_are_final, "with a wrong password is marked retryable";
    wrong_credentials_of_the_wrong_kind: AuthAsOther
        by wrong_credentials_are_final, "instead of unauthenticated";
    a_password_in_an_error: PasswordInError
        by secrets_never_leak, "a secret of driver_info appears";
    a_password_in_the_logs: PasswordInLog
        by secrets_never_leak, "a secret of driver_info appears";
    a_password_in_debug_output: PasswordInDebug
        by secrets_never_leak, "a secret of driver_info appears";
    a_reboot_that_leaves_an_off_node_off: RebootLeavesOff
        by reboot_powers_on_an_off_node, "after rebooting an off node";
    refusing_the_current_state: NotIdempotent
        by power_is_idempotent, "failed: the node is already";
    accepting_an_undeclared_action: AcceptsUndeclared
        by unsupported_power_action_is_refused, "set_power_state accepted it";
    a_retryable_refusal: RetryableRefusal
        by unsupported_power_action_is_refused, "is marked retryable";
    a_refused_connection_of_the_wrong_kind: UnreachableAsOther
        by unreachable_bmc_fails_cleanly, "instead of unreachable/timeout";
    hanging_on_a_silent_bmc: HangsOnSilentBmc
        by unreachable_bmc_fails_cleanly, "did not return within";
    a_validate_that_contacts_the_bmc: ValidateContactsBmc
        by validate_never_contacts_bmc_with, "validate opened a TCP connection";
    // management
    an_unsupported_device_of_the_wrong_kind: DeviceRefusalAsOther
        by unsupported_boot_device_is_invalid_parameter, "instead of invalid parameter";
    ignoring_the_boot_device: IgnoresBootDevice
        by all_supported_boot_devices_roundtrip, "not reached within";
    a_persistence_flag_that_lies: PersistentAlways
        by all_supported_boot_devices_roundtrip, "reads back persistent=true";
    an_optional_method_failing_as_other: OptionalAsOther
        by optional_methods_work_or_are_unsupported, "instead of working or being unsupported";
    retryable_wrong_credentials_in_management: RetryableAuth
        by management_wrong_credentials_are_final, "is marked retryable";
    a_password_in_a_management_error: PasswordInError
        by management_secrets_never_leak, "a secret of driver_info appears";
    a_password_in_the_management_debug_output: PasswordInDebug
        by management_secrets_never_leak, "a secret of driver_info appears";
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "does not name the missing key")]
async fn a_validate_error_that_does_not_name_the_key() {
    let (_bmc, f) = fixture().await;
    let d = ToyDriver::new(Broken::ValidateVague);
    testkit::validate_reports_missing_keys(&*d, &f.task);
}

/// The same rules hold for the fakes, through a registry-resolved driver: a stuck
/// fake BMC makes the action time out, not retryably, and an action returns once
/// reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_power_interface_honours_the_timeout_rule() {
    let mut reg = InterfaceRegistry::with_noop();
    let control = fake::register(&mut reg, fake::FakeConfig::default());
    let mut node = Node::new(FAKE_HARDWARE.name);
    reg.resolve_interfaces(&mut node).unwrap();
    let driver = reg.driver_for(&node).unwrap();
    let uuid = node.uuid;
    let c = control.clone();
    let f = BmcFixture::new(Task::new(node).with_driver(driver.clone()))
        .with_patience(Patience {
            timeout: Duration::from_secs(5),
            interval: Duration::from_millis(10),
        })
        .with_action_timeout(Duration::from_millis(300))
        .with_stall(move |stuck| c.set_power_stuck(uuid, stuck));
    let power: Arc<dyn PowerInterface> = driver.power;
    assert_eq!(
        testkit::power_action_timeout_is_final(&*power, &f).await,
        Outcome::Passed
    );
    assert_eq!(
        testkit::set_power_state_returns_once_reached(&*power, &f).await,
        Outcome::Passed
    );
}

// ---- failure at every step (the lifecycle behaviours) ----

mod lifecycle {
    use super::*;
    use ironic_core::hardware::HardwareType;
    use ironic_core::store::MemoryStore;
    use ironic_core::testkit::{FaultInjector, LifecycleFixture, Transition};
    use ironic_core::{Conductor, ConductorConfig};
    use toy::kits::{BrokenDeploy, ToyDeploy};

    const TOY_HARDWARE: HardwareType = FAKE_HARDWARE
        .named("toy-hardware")
        .with_power(&["toy"])
        .with_management(&["toy"]);

    /// The toy driver for power and management, the fakes for the rest (or a
    /// broken deploy), on a conductor whose registry the kit wraps.
    async fn fixture(power: Broken, deploy: Option<BrokenDeploy>) -> (ToyBmc, LifecycleFixture) {
        let bmc = ToyBmc::start(Duration::from_millis(20)).await;
        let mut reg = InterfaceRegistry::with_noop();
        let control = fake::register(&mut reg, fake::FakeConfig::default());
        let toy = ToyDriver::new(power);
        reg.register_power("toy", toy.clone())
            .register_management("toy", toy)
            .register_hardware_type(TOY_HARDWARE);
        if let Some(b) = deploy {
            reg.register_deploy("fake", ToyDeploy::new(control, b));
        }
        let faults = FaultInjector::new();
        faults.wrap(&mut reg);
        let mut config = ConductorConfig::default();
        config.host = format!("catches-{}", ironic_core::NodeId::new());
        config.power_state_sync_interval = Duration::ZERO;
        config.power_failure_recovery_interval = Duration::ZERO;
        config.check_provision_state_interval = Duration::ZERO;
        let c = Conductor::start(Arc::new(MemoryStore::new()), reg, config)
            .await
            .unwrap();
        let f = LifecycleFixture::new(c, faults, bmc.node()).with_patience(Patience {
            timeout: Duration::from_secs(20),
            interval: Duration::from_millis(10),
        });
        (bmc, f)
    }

    /// An out-of-tree driver (the toy, over TCP) through the whole lifecycle kit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_correct_toy_driver_fails_cleanly_at_every_step() {
        let (bmc, f) = fixture(Broken::Nothing, None).await;
        for t in Transition::ALL {
            let report = testkit::fails_cleanly_at_every_call(&f, t).await;
            report.print();
            testkit::every_call_is_idempotent(&f, t).await;
        }
        assert!(bmc.power_commands() > 10);
        f.conductor.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    // (already its first power off fails: the node is off after the sync deploy)
    #[should_panic(expected = "with every call made twice ended in deploy failed")]
    async fn a_power_driver_that_refuses_the_current_state() {
        let (_bmc, f) = fixture(Broken::NotIdempotent, None).await;
        testkit::every_call_is_idempotent(&f, Transition::Deploy).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[should_panic(expected = "the failure was swallowed")]
    async fn a_deploy_that_swallows_tear_down_errors() {
        let (_bmc, f) = fixture(Broken::Nothing, Some(BrokenDeploy::SwallowsTearDownErrors)).await;
        testkit::fails_cleanly_at_every_call(&f, Transition::Undeploy).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[should_panic(expected = "last_error does not say what failed")]
    async fn a_deploy_whose_errors_do_not_say_what_failed() {
        let (_bmc, f) = fixture(Broken::Nothing, Some(BrokenDeploy::VagueTearDownErrors)).await;
        testkit::fails_cleanly_at_every_call(&f, Transition::Undeploy).await;
    }
}

// ---- boot, deploy and switch behaviours ----

mod boot_deploy {
    use super::*;
    use ironic_core::driver::{BootInterface, DeployInterface, RamdiskKind, RamdiskParams};
    use toy::kits::{BrokenBoot, BrokenDeploy, ToyBoot, ToyDeploy};

    /// A task over a fake-hardware node (fake power, to read what the boot and
    /// deploy interfaces did to the node), with the toy boot's kernel.
    fn task() -> (Task, fake::FakeControl) {
        let mut reg = InterfaceRegistry::with_noop();
        let control = fake::register(&mut reg, fake::FakeConfig::default());
        let mut node = Node::new(FAKE_HARDWARE.name);
        node.driver_info
            .insert("deploy_kernel", "http://127.0.0.1/deploy.kernel");
        reg.resolve_interfaces(&mut node).unwrap();
        let driver = reg.driver_for(&node).unwrap();
        (Task::new(node).with_driver(driver), control)
    }

    fn params() -> RamdiskParams {
        RamdiskParams::new(RamdiskKind::Deploy)
    }

    fn quick() -> Patience {
        Patience {
            timeout: Duration::from_secs(2),
            interval: Duration::from_millis(10),
        }
    }

    #[tokio::test]
    async fn the_correct_toy_boot_and_deploy_pass_their_suites() {
        let (t, control) = task();
        let boot = ToyBoot::new(BrokenBoot::Nothing);
        let r = testkit::run_boot_suite(&*boot, &t, &params()).await;
        r.print();
        assert_eq!(r.passed(), 7, "{r:?}");
        let deploy = ToyDeploy::new(control, BrokenDeploy::Nothing);
        let r = testkit::run_deploy_suite(&*deploy, &t, &quick()).await;
        r.print();
        assert_eq!(r.passed(), 4, "{r:?}");
        assert_eq!(r.not_applicable().len(), 1, "{r:?}");
    }

    macro_rules! boot_catches {
        ($($name:ident: $broken:ident by $behaviour:ident($($arg:expr),*), $expected:literal;)+) => {$(
            #[tokio::test]
            #[should_panic(expected = $expected)]
            async fn $name() {
                let (t, _control) = task();
                let boot = ToyBoot::new(BrokenBoot::$broken);
                let boot: &dyn BootInterface = &*boot;
                testkit::$behaviour(boot, &t $(, $arg)*).await;
            }
        )+};
    }

    boot_catches! {
        a_ramdisk_prepared_twice_fails: RamdiskTwiceFails
            by prepare_ramdisk_is_idempotent(&params()), "prepare_ramdisk (again) failed";
        a_ramdisk_clean_up_with_nothing_to_undo_fails: RamdiskCleanUpNeedsPrepare
            by clean_up_ramdisk_tolerates_nothing_to_undo(), "clean_up_ramdisk (nothing prepared) failed";
        an_instance_prepared_twice_fails: InstanceTwiceFails
            by prepare_instance_is_idempotent(), "prepare_instance (again) failed";
        an_instance_clean_up_with_nothing_to_undo_fails: InstanceCleanUpNeedsPrepare
            by clean_up_instance_tolerates_nothing_to_undo(), "clean_up_instance (nothing prepared) failed";
        a_ramdisk_configuration_left_behind: RamdiskLeftBehind
            by ramdisk_then_instance_cycle(&params()), "prepare_instance failed";
        a_boot_interface_that_powers_the_node: PowersTheNode
            by prepare_does_not_power_the_node(&params()), "prepare_ramdisk changed the power state";
    }

    macro_rules! deploy_catches {
        ($($name:ident: $broken:ident by $behaviour:ident($($arg:expr),*), $expected:literal;)+) => {$(
            #[tokio::test]
            #[should_panic(expected = $expected)]
            async fn $name() {
                let (t, control) = task();
                let deploy = ToyDeploy::new(control, BrokenDeploy::$broken);
                let deploy: &dyn DeployInterface = &*deploy;
                testkit::$behaviour(deploy, &t $(, $arg)*).await;
            }
        )+};
    }

    deploy_catches! {
        a_deploy_step_with_the_wrong_priority: DeployStepPriority
            by deploy_step_is_offered(), "the deploy step must have priority 100";
        a_step_listed_twice: DuplicateStep
            by deploy_step_is_offered(), "duplicate clean step names";
        an_unknown_step_that_succeeds: AcceptsUnknownStep
            by unknown_step_is_refused(), "an unknown deploy step was accepted";
        an_unknown_step_of_the_wrong_kind: UnknownStepAsOther
            by unknown_step_is_refused(), "instead of unsupported/invalid parameter";
        a_prepare_that_fails_when_repeated: PrepareTwiceFails
            by prepare_and_clean_up_are_idempotent(), "prepare (again) failed";
    }

    /// The tear-down behaviour needs a node that is on; the toy's breakage shows
    /// only then, so power it on first (through the fake BMC).
    #[tokio::test]
    #[should_panic(expected = "power off after tear_down: not reached")]
    async fn a_tear_down_that_leaves_a_running_node_on() {
        let (t, control) = task();
        control.set_power(t.node.uuid, ironic_core::PowerState::On);
        let deploy = ToyDeploy::new(control, BrokenDeploy::TearDownLeavesPowerOn);
        testkit::tear_down_is_idempotent_and_powers_off_within(&*deploy, &t, &quick()).await;
    }
}

mod switch {
    use super::*;
    use ironic_core::testkit::SwitchFixture;
    use toy::kits::{BrokenSwitch, ToySwitch};

    fn fixture() -> SwitchFixture {
        SwitchFixture {
            secret: Some(ToySwitch::SECRET.to_owned()),
            ..SwitchFixture::new(["p0", "p1", "p2"])
        }
    }

    #[tokio::test]
    async fn the_correct_toy_switch_passes_the_whole_kit() {
        let sw = ToySwitch::new(BrokenSwitch::Nothing);
        let r = testkit::run_switch_suite(&sw, &fixture()).await;
        r.print();
        assert_eq!(r.not_applicable(), vec![], "{r:?}");
        assert_eq!(r.passed(), 12, "{r:?}");
    }

    macro_rules! switch_catches {
        ($($name:ident: $broken:ident by $behaviour:ident, $expected:literal;)+) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[should_panic(expected = $expected)]
            async fn $name() {
                let sw = ToySwitch::new(BrokenSwitch::$broken);
                testkit::$behaviour(&sw, &fixture()).await;
            }
        )+};
    }

    switch_catches! {
        a_trunk_stored_as_an_access_port: TrunkAsAccess
            by trunk_reads_back, "trunk on port p1";
        refusing_the_configuration_a_port_has: RefusesSameConfig
            by set_port_is_idempotent, "is already configured so";
        a_shut_that_forgets_the_vlan: ShutDropsVlan
            by shut_and_no_shut, "shut lost the VLAN of p2";
        an_ignored_mtu: IgnoresMtu
            by mtu_reads_back, "MTU of port p1";
        an_unknown_port_of_the_wrong_kind: UnknownPortAsOther
            by unknown_port_is_not_found, "get_port(p0-missing)";
        no_validation_before_the_change: NoValidation
            by invalid_config_changes_nothing, "validate_port accepted an invalid configuration";
        a_batch_that_applies_what_it_can: PartialBatch
            by set_ports_applies_all, "a failed set_ports changed a port listed after the unknown one";
        lost_updates_under_concurrent_changes: WholeSwitchRewrite
            by concurrent_changes_all_land, "after concurrent changes";
        a_port_list_without_the_ports: ListsNothing
            by list_ports_has_the_ports, "list_ports does not list p0";
        deleting_a_missing_lag_fails: LagDeleteNotIdempotent
            by lag_lifecycle, "deleting a LAG that does not exist failed";
        a_password_in_the_debug_output: SecretInDebug
            by secrets_never_print, "the switch's Debug output shows its secret";
    }
}
