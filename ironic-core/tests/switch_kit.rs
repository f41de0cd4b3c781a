//! The in-memory `fake` switch passes the whole switch conformance kit (keeping the
//! kit honest), and the kit catches a switch that breaks the contract.

use std::sync::Arc;

use async_trait::async_trait;
use ironic_core::switch::{
    FakeSwitch, FakeSwitchDriver, PortConfig, PortStatus, Switch, SwitchCapabilities, SwitchConfig,
    SwitchRegistry,
};
use ironic_core::testkit::{self, SwitchFixture};
use ironic_core::{DriverError, ErrorKind, Secret};

fn fixture() -> SwitchFixture {
    SwitchFixture::new(["p0", "p1", "p2"])
}

#[tokio::test]
async fn the_fake_switch_passes_the_whole_kit() {
    let mut reg = SwitchRegistry::new();
    reg.register_driver(Arc::new(FakeSwitchDriver::default()));
    let mut cfg = SwitchConfig::new("tor-1", "fake", "memory");
    cfg.password = Some(Secret::new("sw-secret-42"));
    cfg.options.insert("ports", "p0, p1, p2, p3");
    let sw = reg.add_switch(cfg).unwrap();
    let f = SwitchFixture {
        secret: Some("sw-secret-42".into()),
        ..fixture()
    };
    let report = testkit::run_switch_suite(&*sw, &f).await;
    report.print();
    assert_eq!(report.not_applicable(), vec![], "{report:?}");
    assert_eq!(report.passed(), 12);
    // the kit leaves its ports shut
    for p in &f.ports {
        assert!(!sw.get_port(p).await.unwrap().config.enabled);
    }
}

#[tokio::test]
async fn a_fake_switch_without_ports_is_refused_by_name() {
    let mut reg = SwitchRegistry::new();
    reg.register_driver(Arc::new(FakeSwitchDriver::default()));
    let e = reg
        .add_switch(SwitchConfig::new("tor-9", "fake", ""))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MissingParameter);
    assert!(
        e.message().contains("tor-9") && e.message().contains("ports"),
        "{e}"
    );
}

#[tokio::test]
async fn injected_faults_are_retryable_by_kind() {
    let sw = FakeSwitch::with_ports("tor", ["a"]);
    sw.fail_next(ErrorKind::Unreachable, 1);
    let e = sw.set_port("a", &PortConfig::access(5)).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    sw.set_port("a", &PortConfig::access(5)).await.unwrap();
    sw.fail_port("a", ErrorKind::Unauthenticated);
    let e = sw.set_port("a", &PortConfig::access(6)).await.unwrap_err();
    assert!(!e.is_retryable());
    assert_eq!(
        sw.get_port("a").await.unwrap().config,
        PortConfig::access(5)
    );
    sw.heal();
    sw.set_port("a", &PortConfig::access(6)).await.unwrap();
    assert_eq!(sw.log().len(), 2);
}

/// A switch that accepts changes but forgets the VLAN: the kit must notice.
#[derive(Debug)]
struct Forgetful(FakeSwitch);

#[async_trait]
impl Switch for Forgetful {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn capabilities(&self) -> SwitchCapabilities {
        SwitchCapabilities::default()
    }
    async fn get_port(&self, port: &str) -> Result<PortStatus, DriverError> {
        self.0.get_port(port).await
    }
    async fn set_port(&self, port: &str, c: &PortConfig) -> Result<(), DriverError> {
        let mut c = c.clone();
        c.vlan = None;
        self.0.set_port(port, &c).await
    }
    async fn list_ports(&self) -> Result<Vec<String>, DriverError> {
        self.0.list_ports().await
    }
}

#[tokio::test]
async fn the_kit_catches_a_switch_that_drops_vlans() {
    let sw = Forgetful(FakeSwitch::with_ports("bad", ["p0", "p1", "p2"]));
    let f = fixture();
    let caught = tokio::spawn(async move { testkit::access_vlan_reads_back(&sw, &f).await })
        .await
        .unwrap_err();
    assert!(caught.is_panic());
    // and one without LAG support gets "not applicable", not a failure
    let sw = Forgetful(FakeSwitch::with_ports("bad", ["p0", "p1", "p2"]));
    assert!(matches!(
        testkit::lag_lifecycle(&sw, &fixture()).await,
        testkit::Outcome::NotApplicable(_)
    ));
}
