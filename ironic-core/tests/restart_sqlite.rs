//! Everything survives a crash: a child process fills a SQLite file (through the
//! store, and through a conductor with fake hardware), and is killed with SIGKILL;
//! the file is then reopened in a new store (and a new conductor) and every record,
//! lock and state must be there, with Ironic's crash recovery applied by the new
//! conductor.
//!
//! The child is this same test binary, re-executed with an environment variable
//! naming the directory to fill (so the crash is real: no destructor, no close, no
//! WAL checkpoint runs).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironic_core::conductor::{Conductor, ConductorConfig, ProvisionRequest};
use ironic_core::driver::{BiosSetting, FirmwareComponent};
use ironic_core::fake::{self, Delay, FakeConfig, FakeControl, FakeDeployMode};
use ironic_core::ids::*;
use ironic_core::model::*;
use ironic_core::states::{PowerState, ProvisionState};
use ironic_core::store::{NodeQuery, PortQuery, SqliteStore, Store};
use ironic_core::{Ident, InterfaceRegistry, MacAddress};
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
            .map(|k| {
                let mut e = HistoryEvent::new(
                    n.uuid,
                    "provisioning",
                    Severity::Info,
                    format!("event {k} of node {i}"),
                );
                e.conductor = Some(DEAD_HOST.into());
                e.provision_state = Some(n.provision_state.to_string());
                e
            })
            .collect();
        for e in &events {
            store.add_history(e, 300).await.expect("add_history");
        }
        history.push((n.uuid, events));
        let mut setting = BiosSetting::new("ProcVirtualization", Some("Enabled".into()));
        setting.read_only = Some(false);
        setting.upper_bound = Some(64);
        let settings = vec![setting];
        store
            .set_bios_settings(n.uuid, &settings)
            .await
            .expect("set_bios_settings");
        bios.push((n.uuid, settings));
        let mut comp = FirmwareComponent::new("bmc", Some(format!("1.{i}")));
        comp.initial_version = Some("1.0".into());
        comp.serial_number = Some(format!("SN{i}"));
        let comps = vec![comp];
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
    let mut allocation = Allocation::new();
    allocation.resource_class = Some("baremetal".into());
    allocation.name = Some("alloc-1".into());
    allocation.state = AllocationState::Active;
    allocation.node_uuid = Some(nodes[3].uuid);
    store
        .create_allocation(&allocation)
        .await
        .expect("create_allocation");
    let template = DeployTemplate::new(
        "CUSTOM_HYPERTHREADING_ON",
        vec![DeployTemplateStep::new(
            "bios",
            "apply_configuration",
            JsonMap::new(),
            150,
        )],
    );
    store
        .create_deploy_template(&template)
        .await
        .expect("create_deploy_template");
    for host in [DEAD_HOST, OTHER_HOST] {
        let mut c = ConductorRecord::new(host);
        c.conductor_group = "rack1".into();
        c.drivers = vec!["fake-hardware".into()];
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
                &{
                    let mut e = HistoryEvent::new(
                        churn.uuid,
                        "churn",
                        Severity::Info,
                        format!("churn {i}"),
                    );
                    e.conductor = Some(DEAD_HOST.into());
                    e
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
    let mut last_committed: Option<u64> = None;
    crash_child(
        "sqlite_store_survives_a_killed_process",
        CHILD_DIR,
        dir.path(),
        |line| {
            if let Some(n) = line.strip_prefix("COMMITTED ") {
                last_committed = Some(n.parse().expect("counter"));
            }
            // Crash it in the middle of its writes.
            last_committed.is_some_and(|c| c >= 30)
        },
    );
    let last_committed = last_committed.expect("commits seen");

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

/// Run this test binary again as a child, with `env` naming `dir`, running only
/// `test`; feed each line it prints after `READY` to `crash_now` and SIGKILL it as
/// soon as that returns true. Panics if the child stops or takes more than 2 min.
fn crash_child(test: &str, env: &str, dir: &Path, mut crash_now: impl FnMut(&str) -> bool) {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = KillOnDrop(
        Command::new(exe)
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(env, dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child test process"),
    );
    let stdout = child.0.stdout.take().expect("child stdout");
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
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|e| {
            panic!("the child stopped before the crash point ({e}); ready={ready}")
        });
        if line.ends_with("READY") {
            ready = true;
        }
        if ready && crash_now(&line) {
            break;
        }
    }
    child.0.kill().expect("SIGKILL the child");
    let status = child.0.wait().expect("wait");
    assert!(
        !status.success(),
        "the child was killed, not finished: {status:?}"
    );
    let wal = dir.join(format!("{DB}-wal"));
    assert!(
        wal.exists(),
        "the killed process left its WAL behind (no clean shutdown)"
    );
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

// ---- the same through a conductor ----

const CONDUCTOR_CHILD_DIR: &str = "IRONIC_TEST_RESTART_CONDUCTOR_CHILD_DIR";
/// The conductor's host name, in both lives.
const HOST: &str = "restart-conductor";
/// Another (live) conductor, holding a lock the restart must not touch.
const PEER: &str = "peer-conductor";

/// A conductor config with the periodic tasks off, so nothing moves but what the
/// test does (and the recovery on start).
fn conductor_config() -> ConductorConfig {
    let mut v = ConductorConfig::default();
    v.host = HOST.into();
    v.conductor_group = "rack1".into();
    v.node_locked_retry_attempts = 1;
    v.node_locked_retry_interval = Duration::from_millis(10);
    v.power_state_sync_interval = Duration::ZERO;
    v.power_failure_recovery_interval = Duration::ZERO;
    v.check_provision_state_interval = Duration::ZERO;
    v
}

async fn start_conductor(store: Arc<dyn Store>) -> (Conductor, FakeControl) {
    let mut registry = InterfaceRegistry::with_noop();
    let fake = fake::register(&mut registry, FakeConfig::default());
    let c = Conductor::start(store, registry, conductor_config())
        .await
        .expect("start the conductor");
    (c, fake)
}

async fn wait_for(c: &Conductor, ident: &Ident, what: &str, pred: impl Fn(&Node) -> bool) -> Node {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = c.get_node(ident).await.expect("get_node");
        if pred(&n) {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: node is {} (target {:?}), reservation {:?}, last_error {:?}",
            n.provision_state,
            n.target_provision_state,
            n.reservation,
            n.last_error
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn settle(c: &Conductor, ident: &Ident, state: ProvisionState) -> Node {
    wait_for(c, ident, state.as_str(), |n| {
        n.provision_state == state && n.reservation.is_none()
    })
    .await
}

async fn verb(c: &Conductor, ident: &Ident, target: &str) {
    c.provision(ident, ProvisionRequest::new(target))
        .await
        .unwrap_or_else(|e| panic!("provision {target}: {e}"));
}

/// What the conductor child left, read back from its store just before the crash.
#[derive(Serialize, Deserialize)]
struct ConductorExpected {
    nodes: Vec<Node>,
    ports: Vec<Port>,
    portgroups: Vec<Portgroup>,
}

/// The child: a conductor on a SQLite file drives nodes into many states, leaves
/// one mid-deploy (its worker holding the lock inside the deploy step) and one
/// waiting for the agent in `clean wait`, then waits to be killed.
async fn conductor_child(dir: &Path) -> ! {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join(DB)).await.expect("open"));
    let (c, fake) = start_conductor(store.clone()).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        let mut n = Node::new("fake-hardware");
        n.name = Some(format!("node-{i}"));
        n.driver_info.insert("fake_password", "hunter2");
        n.properties.insert("cpus".into(), json!(4));
        let n = c.create_node(n).await.expect("create_node");
        let mut pg = Portgroup::new(n.uuid);
        pg.name = Some(format!("bond-{i}"));
        let pg = c.create_portgroup(pg).await.expect("create_portgroup");
        for j in 0..2 {
            let mut p = Port::new(n.uuid, mac(i, j));
            p.portgroup_uuid = (j == 0).then_some(pg.uuid);
            c.create_port(p).await.expect("create_port");
        }
        ids.push(Ident::from(n.uuid));
    }
    // node-0 stays in enroll. node-1: manageable. node-2..=5: available.
    for id in &ids[1..8] {
        verb(&c, id, "manage").await;
        settle(&c, id, ProvisionState::Manageable).await;
    }
    for id in &ids[2..8] {
        verb(&c, id, "provide").await;
        settle(&c, id, ProvisionState::Available).await;
    }
    // node-3: active. node-4: in maintenance.
    verb(&c, &ids[3], "active").await;
    settle(&c, &ids[3], ProvisionState::Active).await;
    c.set_maintenance(&ids[4], true, Some("disk swap".into()))
        .await
        .expect("set_maintenance");
    // node-5: cleaning waits for the agent (clean wait, no lock held).
    fake.set_deploy_mode(FakeDeployMode::Agent);
    verb(&c, &ids[5], "manage").await;
    settle(&c, &ids[5], ProvisionState::Manageable).await;
    verb(&c, &ids[5], "provide").await;
    settle(&c, &ids[5], ProvisionState::CleanWait).await;
    fake.set_deploy_mode(FakeDeployMode::Sync);
    // node-6: a deploy whose deploy step never ends: the worker holds the lock.
    fake.set_method_delay("deploy.deploy", Delay::Fixed(Duration::from_secs(3600)));
    verb(&c, &ids[6], "active").await;
    wait_for(&c, &ids[6], "deploying under lock", |n| {
        n.provision_state == ProvisionState::Deploying && n.reservation.as_deref() == Some(HOST)
    })
    .await;
    // node-7: another conductor's deploy, caught mid-way (its lock must survive).
    let mut n7 = c.get_node(&ids[7]).await.expect("get_node");
    n7.provision_state = ProvisionState::Deploying;
    n7.target_provision_state = Some(ProvisionState::Active);
    store.update_node(&n7).await.expect("update_node");
    store
        .reserve_node(n7.uuid, PEER)
        .await
        .expect("reserve_node");

    let expected = ConductorExpected {
        nodes: store
            .list_nodes(&NodeQuery::default())
            .await
            .expect("list_nodes"),
        ports: store
            .list_ports(&PortQuery::default())
            .await
            .expect("list_ports"),
        portgroups: store.list_portgroups(None).await.expect("list_portgroups"),
    };
    let tmp = dir.join("expected.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&expected).expect("serialize")).expect("write");
    std::fs::rename(&tmp, dir.join(EXPECTED)).expect("rename");
    println!("READY");
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conductor_recovers_from_a_killed_process() {
    if let Some(dir) = std::env::var_os(CONDUCTOR_CHILD_DIR) {
        conductor_child(Path::new(&dir)).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    crash_child(
        "conductor_recovers_from_a_killed_process",
        CONDUCTOR_CHILD_DIR,
        dir.path(),
        |_| true,
    );
    let expected: ConductorExpected =
        serde_json::from_slice(&std::fs::read(dir.path().join(EXPECTED)).expect("expected.json"))
            .expect("parse expected.json");
    let by_name = |name: &str| {
        expected
            .nodes
            .iter()
            .find(|n| n.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} in expected.json"))
            .clone()
    };

    // First, the file as the crash left it: everything, locks included.
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path().join(DB))
            .await
            .expect("reopen after the crash"),
    );
    check_integrity(&dir.path().join(DB)).await;
    assert_eq!(
        store
            .list_nodes(&NodeQuery::default())
            .await
            .expect("list_nodes"),
        expected.nodes
    );
    assert_eq!(
        store
            .list_ports(&PortQuery::default())
            .await
            .expect("list_ports"),
        expected.ports
    );
    assert_eq!(
        store.list_portgroups(None).await.expect("list_portgroups"),
        expected.portgroups
    );
    let states: Vec<(String, ProvisionState, Option<String>)> = expected
        .nodes
        .iter()
        .map(|n| {
            (
                n.name.clone().unwrap_or_default(),
                n.provision_state,
                n.reservation.clone(),
            )
        })
        .collect();
    use ProvisionState as S;
    let held = |h: &str| Some(h.to_string());
    assert_eq!(
        states,
        vec![
            ("node-0".into(), S::Enroll, None),
            ("node-1".into(), S::Manageable, None),
            ("node-2".into(), S::Available, None),
            ("node-3".into(), S::Active, None),
            ("node-4".into(), S::Available, None),
            ("node-5".into(), S::CleanWait, None),
            ("node-6".into(), S::Deploying, held(HOST)),
            ("node-7".into(), S::Deploying, held(PEER)),
        ],
        "the states and locks the crash left"
    );

    // Then a new conductor with the same host name on the same file.
    let (c, _fake) = start_conductor(store.clone()).await;
    let after = store
        .list_nodes(&NodeQuery::default())
        .await
        .expect("list_nodes");
    for (before, now) in expected.nodes.iter().zip(&after) {
        match before.name.as_deref() {
            Some("node-6") => {
                // Ironic's crash recovery: its own lock cleared, the deploy failed.
                assert_eq!(now.reservation, None, "the dead run's lock is cleared");
                assert_eq!(now.provision_state, S::DeployFailed);
                assert_eq!(now.target_provision_state, Some(S::Active));
                let err = now.last_error.as_deref().unwrap_or_default();
                assert!(
                    err.contains(HOST) && err.contains("restarted"),
                    "last_error: {err:?}"
                );
                assert!(now.deploy_step.is_empty(), "no step is running any more");
            }
            // Everything else is as it was: another host's lock and mid-deploy node,
            // the node waiting for its agent, maintenance, the active instance.
            _ => assert_eq!(now, before, "{} must not change", before.display_name()),
        }
    }
    let history = c
        .history(&by_name("node-6").uuid.into())
        .await
        .expect("history");
    assert!(
        history.iter().any(|e| e.event.contains("restarted")),
        "the recovery is recorded in the node's history: {history:?}"
    );
    let me = store
        .list_conductors()
        .await
        .expect("list_conductors")
        .into_iter()
        .find(|r| r.hostname == HOST)
        .expect("the conductor is registered");
    assert!(me.alive);

    // The recovered conductor works on the recovered file: node-2 deploys, the
    // failed node-6 is torn down and cleaned, node-0 is managed.
    let node2 = Ident::from(by_name("node-2").uuid);
    verb(&c, &node2, "active").await;
    settle(&c, &node2, S::Active).await;
    let node6 = Ident::from(by_name("node-6").uuid);
    verb(&c, &node6, "deleted").await;
    settle(&c, &node6, S::Available).await;
    let node0 = Ident::from(by_name("node-0").uuid);
    verb(&c, &node0, "manage").await;
    settle(&c, &node0, S::Manageable).await;
    // MAC addresses are still unique across the restart.
    let dup = Port::new(by_name("node-0").uuid, expected.ports[0].address);
    assert!(c.create_port(dup).await.is_err());
    c.shutdown().await;
    let node7 = store
        .get_node(&by_name("node-7").uuid.into())
        .await
        .expect("get_node");
    assert_eq!(
        node7.reservation.as_deref(),
        Some(PEER),
        "shutdown leaves other hosts' locks"
    );
}
