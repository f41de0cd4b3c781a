//! ironic-core's conformance kit against the `pxe`, `ipxe` and `http` boot
//! interfaces, resolved through a registry filled by `register()` beside
//! Ironic's `fake-hardware` (fake power and management, as Ironic's own tests
//! run the PXE interfaces).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ironic_boot_pxe::{
    BootFiles, DhcpMode, HttpBootServer, ProvisioningDhcp, PxeConfig, Reservations, register,
    router,
};
use ironic_core::driver::{BootDevice, RamdiskKind, RamdiskParams, Task};
use ironic_core::fake::{self, FakeConfig};
use ironic_core::model::InterfaceType;
use ironic_core::testkit::{self, Outcome};
use ironic_core::{InterfaceRegistry, Node, Port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_interfaces_pass_the_conformance_kit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ipa.kernel"), b"kernel").unwrap();
    std::fs::write(dir.path().join("ipa.initramfs"), b"initramfs").unwrap();
    let files = BootFiles::new(Some(dir.path())).unwrap();
    let http = HttpBootServer::bind("127.0.0.1:0".parse().unwrap(), router(files.clone()))
        .await
        .unwrap();
    let res = Arc::new(Reservations::default());
    let mut cfg = PxeConfig::new(files.clone(), Ipv4Addr::LOCALHOST, http.url());
    cfg.dhcp = Some(ProvisioningDhcp {
        reservations: res.clone(),
        mode: DhcpMode::Server,
        pool: (Ipv4Addr::new(10, 99, 0, 10), Ipv4Addr::new(10, 99, 0, 50)),
    });
    let mut reg = InterfaceRegistry::with_noop();
    fake::register(&mut reg, FakeConfig::default());
    register(&mut reg, cfg);
    assert!(
        reg.interface_names(InterfaceType::Network)
            .contains(&"flat".to_owned())
    );

    let mut params = BTreeMap::new();
    params.insert("ipa-api-url".to_owned(), "http://127.0.0.1:6385".to_owned());
    let params = {
        let mut p = RamdiskParams::new(RamdiskKind::Deploy);
        p.kernel_params = params;
        p
    };
    for name in ["pxe", "ipxe", "http"] {
        let mut node = Node::new("fake-hardware");
        node.interfaces.boot_interface = name.into();
        node.interfaces.network_interface = "flat".into();
        node.driver_info.insert(
            "deploy_kernel",
            dir.path().join("ipa.kernel").display().to_string(),
        );
        node.driver_info.insert("deploy_ramdisk", "ipa.initramfs");
        reg.resolve_interfaces(&mut node).unwrap();
        let driver = reg.driver_for(&node).unwrap();
        let port = Port::new(node.uuid, "52:54:00:c0:ff:01".parse().unwrap());
        let mut task = Task::with_ports(node, vec![port]).with_driver(driver.clone());

        driver
            .network
            .add_network(&mut task, ironic_core::driver::NetworkPhase::Provisioning)
            .await
            .unwrap();
        let report = testkit::run_boot_suite(&*driver.boot, &task, &params).await;
        report.print();
        assert!(report.passed() >= 6, "{name}: {report:?}");

        // validate never downloads the images it checks.
        let outcome = testkit::validate_never_contacts_bmc(&*driver.boot, &task, |t, addr| {
            t.node
                .driver_info
                .insert("deploy_kernel", format!("http://{addr}/ipa.kernel"));
        })
        .await;
        assert_eq!(outcome, Outcome::Passed, "{name}");

        // After the cycle the node boots from disk, and the network is left.
        let mut t = task.clone();
        driver.boot.prepare_instance(&mut t).await.unwrap();
        let dev = driver.management.get_boot_device(&t).await.unwrap();
        assert_eq!(dev.boot_device, Some(BootDevice::Disk), "{name}");
        driver
            .network
            .remove_network(&mut t, ironic_core::driver::NetworkPhase::Provisioning)
            .await
            .unwrap();
        assert!(res.is_empty(), "{name}: {:?}", res.list());
    }
    // Nothing per-node left behind.
    assert_eq!(files.generated_paths(), vec!["boot.ipxe".to_owned()]);
}
