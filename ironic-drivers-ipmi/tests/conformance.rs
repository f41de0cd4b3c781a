//! The ironic-core conformance kit against both real BMCs: ipmi_sim (suite 3) and
//! the pyghmi BMC (suites 3 and 17), plus `validate` never touching the BMC.

mod common;

use std::time::Duration;

use common::peers::{IpmiSim, PyghmiBmcs};
use common::{config, interfaces, task};
use ironic_core::testkit::{self, BmcFixture, Patience};

fn patience() -> Patience {
    Patience {
        timeout: Duration::from_secs(30),
        interval: Duration::from_millis(100),
    }
}

/// The kit's fixture over a BMC: the address and password hooks, and the stall
/// hook when the BMC can be made stuck. Commands to an unreachable BMC give up
/// after 3 s (the kit points the driver at closed and silent ports).
fn fixture(
    mut info: serde_json::Value,
    stall: Option<Box<dyn Fn(bool) + Send + Sync>>,
) -> BmcFixture {
    info["ipmi_command_retry_timeout"] = 3.into();
    let mut f = BmcFixture::new(task(info))
        .with_patience(patience())
        .with_action_timeout(Duration::from_secs(2))
        .with_address(|t, addr| {
            t.node
                .driver_info
                .insert("ipmi_address", addr.ip().to_string());
            t.node.driver_info.insert("ipmi_port", addr.port());
        })
        .with_password_key("ipmi_password");
    if let Some(stall) = stall {
        f = f.with_stall(stall);
    }
    f
}

/// `has_sdr`: whether the BMC has an SDR repository (pyghmi has none, so its
/// sensors are unsupported); `can_stall`: whether the fixture can make it stuck.
async fn run_kit(f: &BmcFixture, label: &str, has_sdr: bool, can_stall: bool) {
    let (power, mgmt) = interfaces(config());
    let report = testkit::run_power_suite(&*power, f).await;
    report.print();
    // every action is supported: the refusal check does not apply; nor does the
    // stuck-BMC check without a way to make the BMC stuck
    let mut expect_na = vec!["unsupported_power_action_is_refused"];
    if !can_stall {
        expect_na.push("power_action_timeout_is_final");
    }
    let mut na: Vec<_> = report
        .not_applicable()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    na.sort();
    expect_na.sort();
    assert_eq!(na, expect_na, "{label}: {report:?}");
    assert_eq!(report.passed(), 15 - expect_na.len(), "{label}: {report:?}");

    let report = testkit::run_management_suite(&*mgmt, f).await;
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
    assert_eq!(report.passed(), 10 - expect_na.len(), "{label}: {report:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kit_passes_against_ipmi_sim() {
    let sim = IpmiSim::start();
    let f = fixture(sim.driver_info(), Some(Box::new(sim.staller())));
    run_kit(&f, "ipmi_sim", true, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kit_passes_against_pyghmi_with_suites_3_and_17() {
    let bmcs = PyghmiBmcs::start(2);
    for (i, suite) in [(0, 3), (1, 17)] {
        let mut info = bmcs.driver_info(i);
        info["ipmi_cipher_suite"] = suite.into();
        run_kit(
            &fixture(info, None),
            &format!("pyghmi suite {suite}"),
            false,
            false,
        )
        .await;
    }
}
