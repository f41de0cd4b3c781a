//! In-band inspection driven through the real `Conductor`: `inspect` boots the
//! `ironic-agent` process (see `common/rack.rs`) with
//! `ipa-inspection-callback-url`, the agent posts its inventory (read from a
//! fake `/sys` + `/proc` tree) to `/v1/continue_inspection`, and the `agent`
//! inspect interface turns it into properties and ports.

mod common;

use common::rack::env;
use ironic_core::store::PortQuery;
use ironic_core::{ProvisionRequest, ProvisionState as S};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspection_through_the_conductor_sets_properties_and_ports() {
    let env = env().await;
    let node = env.node("52:54:00:12:34:56", 10 << 10).await;
    let u = node.uuid;
    assert_eq!(
        node.interfaces.inspect_interface, "agent",
        "{:?}",
        node.interfaces
    );
    // the machine: two NICs, two CPUs, ~2 GB of RAM, BIOS boot
    let (sys, proc_root) =
        ironic_deploy_agent::agent::inventory::write_fixture(&env.dir.path().join("hw"));
    std::fs::create_dir_all(sys.join("class/net/eth1")).unwrap();
    std::fs::write(sys.join("class/net/eth1/address"), "52:54:00:12:34:57\n").unwrap();
    env.rack.set_agent_args(
        u,
        &[
            "--sys-root",
            sys.to_str().unwrap(),
            "--proc-root",
            proc_root.to_str().unwrap(),
        ],
    );
    env.c
        .provision(&u.into(), ProvisionRequest::new("manage"))
        .await
        .unwrap();
    env.settle(u, &[S::Manageable]).await;
    env.c
        .provision(&u.into(), ProvisionRequest::new("inspect"))
        .await
        .unwrap();
    let n = env.settle(u, &[S::Manageable, S::InspectFailed]).await;
    assert_eq!(n.provision_state, S::Manageable, "{:?}", n.last_error);
    assert_eq!(env.rack.boots(u), 1);
    assert!(n.inspection_finished_at.is_some());
    assert_eq!(n.properties["cpus"], 2);
    assert_eq!(n.properties["cpu_arch"], std::env::consts::ARCH);
    assert_eq!(n.properties["memory_mb"], 2000);
    // the 10 GiB disk is the root disk; 1 GiB is kept for partitioning
    assert_eq!(n.properties["local_gb"], 9);
    assert_eq!(n.boot_mode.as_deref(), Some("bios"));
    assert!(n.internal("agent_secret_token").is_none());
    assert!(
        !env.rack.agent_running(u),
        "inspection powered the node off"
    );
    let mut ports = env
        .c
        .store()
        .list_ports(&{
            let mut q = PortQuery::default();
            q.node = Some(u);
            q
        })
        .await
        .unwrap();
    ports.sort_by_key(|p| p.address.to_string());
    let got: Vec<(String, bool)> = ports
        .iter()
        .map(|p| (p.address.to_string(), p.pxe_enabled))
        .collect();
    assert_eq!(
        got,
        vec![
            ("52:54:00:12:34:56".to_string(), true),
            ("52:54:00:12:34:57".to_string(), false)
        ]
    );
    let inv = env.c.store().get_inventory(u).await.unwrap().unwrap();
    assert_eq!(inv["inventory"]["system_vendor"]["manufacturer"], "QEMU");
    // what the agent sent besides the inventory is the plugin data, as in Ironic
    assert_eq!(inv["plugin_data"]["boot_interface"], "52:54:00:12:34:56");
}
