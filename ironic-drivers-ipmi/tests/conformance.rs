//! The ironic-core conformance kit against both real BMCs: ipmi_sim (suite 3) and
//! the pyghmi BMC (suites 3 and 17), plus `validate` never touching the BMC.

mod common;

use std::time::Duration;

use common::peers::{IpmiSim, PyghmiBmcs};
use common::{config, interfaces, task};
use ironic_core::driver::{BaseInterface, Task};
use ironic_core::testkit::{self, Patience};

fn patience() -> Patience {
    Patience {
        timeout: Duration::from_secs(30),
        interval: Duration::from_millis(100),
    }
}

/// `has_sdr`: whether the BMC has an SDR repository (pyghmi has none, so its
/// sensors are unsupported).
async fn run_kit(t: &Task, label: &str, has_sdr: bool) {
    let (power, mgmt) = interfaces(config());
    let report = testkit::run_power_suite(&*power, t, &patience()).await;
    report.print();
    // every action is supported: only the refusal check does not apply
    let na: Vec<_> = report
        .not_applicable()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        na,
        ["unsupported_power_action_is_refused"],
        "{label}: {report:?}"
    );
    assert_eq!(report.passed(), 8, "{label}: {report:?}");

    let report = testkit::run_management_suite(&*mgmt, t, &patience()).await;
    report.print();
    let mut expect_na = vec!["boot_mode_roundtrips_if_supported"];
    if !has_sdr {
        expect_na.push("sensors_data_has_ironics_shape");
    }
    let na: Vec<_> = report
        .not_applicable()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(na, expect_na, "{label}: {report:?}");
    assert_eq!(report.passed(), 6 - expect_na.len(), "{label}: {report:?}");

    for iface in [&*power as &dyn BaseInterface, &*mgmt as &dyn BaseInterface] {
        testkit::validate_never_contacts_bmc(iface, t, |t, addr| {
            t.node
                .driver_info
                .insert("ipmi_address", addr.ip().to_string());
            t.node.driver_info.insert("ipmi_port", addr.port());
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kit_passes_against_ipmi_sim() {
    let sim = IpmiSim::start();
    run_kit(&task(sim.driver_info()), "ipmi_sim", true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kit_passes_against_pyghmi_with_suites_3_and_17() {
    let bmcs = PyghmiBmcs::start(2);
    for (i, suite) in [(0, 3), (1, 17)] {
        let mut info = bmcs.driver_info(i);
        info["ipmi_cipher_suite"] = suite.into();
        run_kit(&task(info), &format!("pyghmi suite {suite}"), false).await;
    }
}
