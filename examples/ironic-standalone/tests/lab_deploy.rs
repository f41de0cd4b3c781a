//! `ironic lab` end to end on loopback: the real drivers drive the simulated BMCs, the
//! simulated machines run the real `ironic-agent`, and the test image lands on the disk
//! files of a Redfish and an IPMI node (deploy), which then boot it; undeploy cleans them.

use std::time::Duration;

use ironic_core::conductor::ProvisionRequest;
use ironic_core::{Ident, ProvisionState};
use ironic_standalone::lab::enroll;
use ironic_standalone::lab::images;
use ironic_standalone::lab::machine::MachineState;
use ironic_standalone::lab::rack::BmcKind;
use ironic_standalone::lab::run::{Lab, LabOptions};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_deploys_the_test_image_over_redfish_and_ipmi() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = LabOptions::new(dir.path().to_path_buf());
    opts.api_listen = "127.0.0.1:0".parse().unwrap();
    opts.servers = 2;
    let lab = Lab::start(&opts).await.unwrap();
    assert!(
        lab.plans.iter().all(|p| p.uses_bmc),
        "this build must enroll with the real drivers: {:?}",
        lab.plans
    );
    let failures = lab.make_available(Duration::from_secs(300)).await;
    assert!(failures.is_empty(), "{failures:?}");

    let image = lab.file_server.url(images::TEST_IMAGE);
    let mut kinds = Vec::new();
    for s in &lab.rack.servers {
        assert!(
            !images::disk_has_test_image(s.server.disk()),
            "{} starts blank",
            s.name()
        );
        let ident = Ident::Name(s.name().to_string());
        let mut node = lab.conductor.get_node(&ident).await.unwrap();
        node.instance_info
            .insert("image_source".into(), json!(image));
        node.instance_info
            .insert("image_checksum".into(), json!(lab.files.image_sha256));
        node.instance_info
            .insert("image_disk_format".into(), json!("raw"));
        lab.conductor.update_node(node, false).await.unwrap();
        kinds.push(s.kind);
    }
    assert!(kinds.contains(&BmcKind::Redfish) && kinds.contains(&BmcKind::Ipmi));
    let deploys = lab.rack.servers.iter().map(|s| {
        let conductor = lab.conductor.clone();
        let ident = Ident::Name(s.name().to_string());
        async move {
            enroll::drive(
                &conductor,
                &ident,
                "active",
                ProvisionState::Active,
                Duration::from_secs(300),
            )
            .await
        }
    });
    for r in futures::future::join_all(deploys).await {
        r.unwrap();
    }
    for s in &lab.rack.servers {
        assert!(
            images::disk_has_test_image(s.server.disk()),
            "{}: image on the disk",
            s.name()
        );
        // The machine booted the instance from its disk.
        let mut state = s.machine_state();
        for _ in 0..100 {
            if state == Some(MachineState::Instance) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            state = s.machine_state();
        }
        assert_eq!(state, Some(MachineState::Instance), "{}", s.name());
    }

    // Undeploy: automated cleaning erases the disks through the agent again.
    for s in &lab.rack.servers {
        let ident = Ident::Name(s.name().to_string());
        lab.conductor
            .provision(&ident, ProvisionRequest::new("deleted"))
            .await
            .unwrap();
    }
    for s in &lab.rack.servers {
        let ident = Ident::Name(s.name().to_string());
        enroll::wait_for(
            &lab.conductor,
            &ident,
            ProvisionState::Available,
            Duration::from_secs(300),
        )
        .await
        .unwrap();
        assert!(
            !images::disk_has_test_image(s.server.disk()),
            "{}: cleaned",
            s.name()
        );
    }
    lab.shutdown().await;
}
