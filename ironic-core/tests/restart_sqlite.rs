//! Everything survives a crash: a child process fills a SQLite file, keeps writing,
//! and is killed with SIGKILL mid-write; the file is then reopened in a new store
//! and every record, lock and state must be there.
//!
//! The child is this same test binary, re-executed with an environment variable
//! naming the directory to fill (so the crash is real: no destructor, no close, no
//! WAL checkpoint runs).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ironic_core::driver::{BiosSetting, FirmwareComponent};
use ironic_core::ids::*;
use ironic_core::model::*;
use ironic_core::states::{PowerState, ProvisionState};
use ironic_core::store::{NodeQuery, PortQuery, SqliteStore, Store};
use ironic_core::{Ident, MacAddress};
use serde::{Deserialize, Serialize};
use serde_json::json;

const CHILD_DIR: &str = "IRONIC_TEST_RESTART_CHILD_DIR";
const DB: &str = "ironic.sqlite";
const EXPECTED: &str = "expected.json";
/// The host whose process dies holding a lock.
const DEAD_HOST: &str = "conductor-a";
/// Another conductor holding a lock; the crash must not touch it.
const OTHER_HOST: &str = "conductor-b";
/// Name of the node the child keeps updating until it is killed.
const CHURN: &str = "churn";

/// What the child wrote, as it held it in memory.
#[derive(Serialize, Deserialize)]
struct Expected {
    nodes: Vec<Node>,
    ports: Vec<Port>,
    portgroups: Vec<Portgroup>,
    chassis: Vec<Chassis>,
    allocations: Vec<Allocation>,
    templates: Vec<DeployTemplate>,
    conductors: Vec<ConductorRecord>,
    history: Vec<(NodeId, Vec<HistoryEvent>)>,
    bios: Vec<(NodeId, Vec<BiosSetting>)>,
    firmware: Vec<(NodeId, Vec<FirmwareComponent>)>,
    inventory: Vec<(NodeId, serde_json::Value)>,
}

/// Kills the child on drop, whatever happens in the parent.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mac(i: usize, j: usize) -> MacAddress {
    MacAddress([0x52, 0x54, 0x00, 0xaa, i as u8, j as u8])
}

/// Nodes in many states, as a conductor leaves them: stable, mid-transition,
/// waiting for a callback, failed, in maintenance.
fn fleet(chassis: ChassisId) -> Vec<Node> {
    let states = [
        (ProvisionState::Enroll, None),
        (ProvisionState::Manageable, None),
        (ProvisionState::Available, None),
        (ProvisionState::Active, None),
        (ProvisionState::Deploying, Some(ProvisionState::Active)),
        (ProvisionState::CleanWait, Some(ProvisionState::Available)),
        (ProvisionState::DeployFailed, Some(ProvisionState::Active)),
        (ProvisionState::Inspecting, Some(ProvisionState::Manageable)),
        (ProvisionState::Available, None),
    ];
    states
        .into_iter()
        .enumerate()
        .map(|(i, (state, target))| {
            let mut n = Node::new("fake-hardware");
            n.name = Some(if i == 8 {
                CHURN.into()
            } else {
                format!("rack1-n{i:02}")
            });
            n.provision_state = state;
            n.target_provision_state = target;
            n.provision_updated_at = Some(now());
            n.power_state = Some(if i % 2 == 0 {
                PowerState::On
            } else {
                PowerState::Off
            });
            n.chassis_uuid = Some(chassis);
            n.driver_info.insert("ipmi_address", format!("192.0.2.{i}"));
            n.driver_info.insert("ipmi_password", "hunter2");
            n.properties.insert("cpus".into(), json!(8 + i));
            n.resource_class = Some("baremetal".into());
            n.traits = vec!["CUSTOM_RACK1".into()];
            n.conductor_group = "rack1".into();
            match state {
                ProvisionState::Active => {
                    n.instance_uuid = Some(uuid::Uuid::new_v4().to_string());
                    n.instance_info
                        .insert("image_source".into(), json!("http://192.0.2.1/img.qcow2"));
                }
                ProvisionState::Deploying => {
                    n.instance_uuid = Some(uuid::Uuid::new_v4().to_string());
                    n.deploy_step.insert("step".into(), json!("write_image"));
                    n.deploy_step.insert("interface".into(), json!("deploy"));
                    n.set_internal("deploy_step_index", 1);
                    n.set_internal("agent_secret_token", "t0k3n");
                }
                ProvisionState::CleanWait => {
                    n.clean_step.insert("step".into(), json!("erase_devices"));
                    n.set_internal("clean_step_index", 0);
                }
                ProvisionState::DeployFailed => {
                    n.last_error = Some("Deploy step deploy.write_image failed: boom".into());
                }
                ProvisionState::Manageable => {
                    n.maintenance = true;
                    n.maintenance_reason = Some("power failure".into());
                    n.fault = Some(Fault::PowerFailure);
                }
                _ => {}
            }
            n
        })
        .collect()
}

/// The child: fill the store, announce READY, then update the churn node until killed.
async fn child(dir: &Path) -> ! {
    let store = SqliteStore::open(dir.join(DB)).await.expect("child: open");
    let chassis = Chassis::new();
    store
        .create_chassis(&chassis)
        .await
        .expect("create_chassis");
    let mut nodes = fleet(chassis.uuid);
    let mut ports = Vec::new();
    let mut portgroups = Vec::new();
    let mut history = Vec::new();
    let mut bios = Vec::new();
    let mut firmware = Vec::new();
    let mut inventory = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        store.create_node(n).await.expect("create_node");
        let mut pg = Portgroup::new(n.uuid);
        pg.name = Some(format!("bond-{i}"));
        pg.address = Some(mac(i, 0));
        store.create_portgroup(&pg).await.expect("create_portgroup");
        for j in 0..2 {
            let mut p = Port::new(n.uuid, mac(i, j));
            p.portgroup_uuid = Some(pg.uuid);
            p.local_link_connection
                .insert("port_id".into(), json!(format!("Ethernet1/{i}{j}")));
            store.create_port(&p).await.expect("create_port");
            ports.push(p);
        }
        portgroups.push(pg);
        let events: Vec<HistoryEvent> = (0..3)
            .map(|k| HistoryEvent {
                uuid: HistoryId::new(),
                node_uuid: n.uuid,
                event: format!("event {k} of node {i}"),
                event_type: "provisioning".into(),
                severity: Severity::Info,
                user: None,
                conductor: Some(DEAD_HOST.into()),
                provision_state: Some(n.provision_state.to_string()),
                created_at: now(),
            })
            .collect();
        for e in &events {
            store.add_history(e, 300).await.expect("add_history");
        }
        history.push((n.uuid, events));
        let settings = vec![BiosSetting {
            name: "ProcVirtualization".into(),
            value: Some("Enabled".into()),
            allowable_values: None,
            read_only: Some(false),
            reset_required: None,
        }];
        store
            .set_bios_settings(n.uuid, &settings)
            .await
            .expect("set_bios_settings");
        bios.push((n.uuid, settings));
        let comps = vec![FirmwareComponent {
            component: "bmc".into(),
            initial_version: Some("1.0".into()),
            current_version: Some(format!("1.{i}")),
            last_version_flashed: None,
        }];
        store
            .set_firmware_components(n.uuid, &comps)
            .await
            .expect("set_firmware");
        firmware.push((n.uuid, comps));
        let inv = json!({"inventory": {"cpu": {"count": 8 + i}}, "plugin_data": {}});
        store
            .set_inventory(n.uuid, &inv)
            .await
            .expect("set_inventory");
        inventory.push((n.uuid, inv));
    }
    // Locks: the dying host holds the node mid-deploy and the cleaning one; another
    // conductor holds the inspecting one.
    for (i, host) in [(4, DEAD_HOST), (5, DEAD_HOST), (7, OTHER_HOST)] {
        nodes[i] = store
            .reserve_node(nodes[i].uuid, host)
            .await
            .expect("reserve_node");
    }
    let allocation = Allocation {
        uuid: AllocationId::new(),
        name: Some("alloc-1".into()),
        state: AllocationState::Active,
        node_uuid: Some(nodes[3].uuid),
        resource_class: Some("baremetal".into()),
        traits: vec![],
        candidate_nodes: vec![],
        last_error: None,
        owner: None,
        extra: JsonMap::new(),
        conductor_affinity: None,
        created_at: now(),
        updated_at: None,
    };
    store
        .create_allocation(&allocation)
        .await
        .expect("create_allocation");
    let template = DeployTemplate {
        uuid: DeployTemplateId::new(),
        name: "CUSTOM_HYPERTHREADING_ON".into(),
        steps: vec![DeployTemplateStep {
            interface: "bios".into(),
            step: "apply_configuration".into(),
            args: JsonMap::new(),
            priority: 150,
        }],
        extra: JsonMap::new(),
        created_at: now(),
        updated_at: None,
    };
    store
        .create_deploy_template(&template)
        .await
        .expect("create_deploy_template");
    for host in [DEAD_HOST, OTHER_HOST] {
        let c = ConductorRecord {
            hostname: host.into(),
            conductor_group: "rack1".into(),
            drivers: vec!["fake-hardware".into()],
            alive: true,
            created_at: now(),
            updated_at: None,
        };
        store.upsert_conductor(&c).await.expect("upsert_conductor");
    }
    // Conductors get their updated_at from the store: read them back.
    let conductors = store.list_conductors().await.expect("list_conductors");

    let expected = Expected {
        nodes,
        ports,
        portgroups,
        chassis: vec![chassis],
        allocations: vec![allocation],
        templates: vec![template],
        conductors,
        history,
        bios,
        firmware,
        inventory,
    };
    let tmp = dir.join("expected.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&expected).expect("serialize")).expect("write");
    std::fs::rename(&tmp, dir.join(EXPECTED)).expect("rename");
    println!("READY");

    let mut churn = expected.nodes.last().expect("churn node").clone();
    for i in 0u64.. {
        churn.extra.insert("counter".into(), json!(i));
        churn.provision_updated_at = Some(now());
        store.update_node(&churn).await.expect("update churn node");
        store
            .add_history(
                &HistoryEvent {
                    uuid: HistoryId::new(),
                    node_uuid: churn.uuid,
                    event: format!("churn {i}"),
                    event_type: "churn".into(),
                    severity: Severity::Info,
                    user: None,
                    conductor: Some(DEAD_HOST.into()),
                    provision_state: None,
                    created_at: now(),
                },
                5,
            )
            .await
            .expect("add_history");
        println!("COMMITTED {i}");
    }
    unreachable!("the loop never ends")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_survives_a_killed_process() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        child(Path::new(&dir)).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = KillOnDrop(
        Command::new(exe)
            .args([
                "sqlite_store_survives_a_killed_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child test process"),
    );
    let stdout = child.0.stdout.take().expect("child stdout");
    // Read the child's lines on a thread; wait for READY and then some commits.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut ready = false;
    let mut last_committed: Option<u64> = None;
    while last_committed.is_none_or(|c| c < 30) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|e| {
            panic!("the child stopped before the crash point ({e}); ready={ready}")
        });
        if line == "READY" {
            ready = true;
        } else if let Some(n) = line.strip_prefix("COMMITTED ") {
            last_committed = Some(n.parse().expect("counter"));
        }
    }
    // Crash it in the middle of its writes.
    child.0.kill().expect("SIGKILL the child");
    let status = child.0.wait().expect("wait");
    assert!(
        !status.success(),
        "the child was killed, not finished: {status:?}"
    );
    let last_committed = last_committed.expect("commits seen");
    let wal = dir.path().join(format!("{DB}-wal"));
    assert!(
        wal.exists(),
        "the killed process left its WAL behind (no clean shutdown)"
    );

    let expected: Expected =
        serde_json::from_slice(&std::fs::read(dir.path().join(EXPECTED)).expect("expected.json"))
            .expect("parse expected.json");
    let store = SqliteStore::open(dir.path().join(DB))
        .await
        .expect("reopen after the crash");
    check_integrity(&dir.path().join(DB)).await;

    // Every node is there, exactly (locks and mid-transition states included),
    // except the churn node, whose counter must have reached the last commit seen.
    let listed = store
        .list_nodes(&NodeQuery::default())
        .await
        .expect("list_nodes");
    assert_eq!(listed.len(), expected.nodes.len());
    for want in &expected.nodes {
        let got = store.get_node(&want.uuid.into()).await.expect("get_node");
        if want.name.as_deref() == Some(CHURN) {
            let counter = got.extra.get("counter").and_then(|c| c.as_u64());
            assert!(
                counter.is_some_and(|c| c >= last_committed),
                "the churn node keeps every committed update: {counter:?} < {last_committed}"
            );
            let mut got = got;
            got.extra = want.extra.clone();
            got.provision_updated_at = want.provision_updated_at;
            assert_eq!(&got, want, "the churn node's other fields");
            let history = store.list_history(want.uuid).await.expect("list_history");
            assert_eq!(history.len(), 5, "history stays capped across the crash");
            continue;
        }
        assert_eq!(&got, want, "node {} after the crash", want.display_name());
    }
    let locked: Vec<(String, Option<String>)> = listed
        .iter()
        .filter(|n| n.reservation.is_some())
        .map(|n| (n.name.clone().unwrap_or_default(), n.reservation.clone()))
        .collect();
    assert_eq!(
        locked,
        vec![
            ("rack1-n04".to_string(), Some(DEAD_HOST.to_string())),
            ("rack1-n05".to_string(), Some(DEAD_HOST.to_string())),
            ("rack1-n07".to_string(), Some(OTHER_HOST.to_string())),
        ],
        "every lock survives the crash"
    );
    let mid = store
        .get_node(&Ident::Name("rack1-n04".into()))
        .await
        .expect("get_node");
    assert_eq!(mid.provision_state, ProvisionState::Deploying);
    assert_eq!(mid.target_provision_state, Some(ProvisionState::Active));

    // Ports, port groups, and the per-node data.
    let ports = store
        .list_ports(&PortQuery::default())
        .await
        .expect("list_ports");
    assert_eq!(ports, expected.ports);
    for p in &expected.ports {
        assert_eq!(
            &store
                .get_port_by_address(p.address)
                .await
                .expect("by address"),
            p
        );
    }
    assert_eq!(
        store.list_portgroups(None).await.expect("list_portgroups"),
        expected.portgroups
    );
    for (node, events) in &expected.history {
        if *node == expected.nodes.last().expect("churn").uuid {
            continue;
        }
        assert_eq!(
            &store.list_history(*node).await.expect("list_history"),
            events
        );
    }
    for (node, settings) in &expected.bios {
        assert_eq!(
            &store.get_bios_settings(*node).await.expect("bios"),
            settings
        );
    }
    for (node, comps) in &expected.firmware {
        assert_eq!(
            &store
                .get_firmware_components(*node)
                .await
                .expect("firmware"),
            comps
        );
    }
    for (node, inv) in &expected.inventory {
        assert_eq!(
            store
                .get_inventory(*node)
                .await
                .expect("inventory")
                .as_ref(),
            Some(inv)
        );
    }
    assert_eq!(
        store.list_chassis().await.expect("list_chassis"),
        expected.chassis
    );
    assert_eq!(
        store.list_allocations().await.expect("list_allocations"),
        expected.allocations
    );
    assert_eq!(
        store.list_deploy_templates().await.expect("templates"),
        expected.templates
    );
    assert_eq!(
        store.list_conductors().await.expect("list_conductors"),
        expected.conductors
    );

    // Unique constraints still hold after recovery.
    let dup = Port::new(expected.nodes[0].uuid, expected.ports[0].address);
    assert!(
        store.create_port(&dup).await.is_err(),
        "MAC uniqueness after the crash"
    );

    // What a restarting conductor does first: drop its own stale locks, only those.
    assert_eq!(
        store
            .clear_reservations(DEAD_HOST)
            .await
            .expect("clear_reservations"),
        2
    );
    let still: Vec<Option<String>> = store
        .list_nodes(&NodeQuery::default())
        .await
        .expect("list_nodes")
        .into_iter()
        .filter_map(|n| n.reservation.map(Some))
        .collect();
    assert_eq!(still, vec![Some(OTHER_HOST.to_string())]);
}

/// `PRAGMA integrity_check` on the recovered file, through a separate connection.
async fn check_integrity(path: &Path) {
    use sqlx::ConnectOptions;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .expect("connect for integrity_check");
    let result: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .expect("integrity_check");
    assert_eq!(result, "ok", "the recovered database is intact");
}
