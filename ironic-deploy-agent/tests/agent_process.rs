//! The `ironic-agent` binary as a process on loopback, with a file as its disk,
//! driven through `AgentDeploy` + `AgentClient` by heartbeats from a minimal
//! Ironic ramdisk API (lookup/heartbeat as `reference/ipa-protocol.md` says).

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use common::*;
use ironic_core::driver::{
    BaseInterface, DeployInterface, Heartbeat, HeartbeatOutcome, Step, StepKind, StepOutcome, Task,
};
use ironic_core::model::InterfaceType;
use ironic_core::{Node, ProvisionState};
use ironic_deploy_agent::httpd::{ImageServer, ServeOptions};
use ironic_deploy_agent::{AgentClient, AgentConfig, AgentDeploy, AgentError};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const TOKEN: &str = "tokentokentokentokentokentokentokentoken123";

struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Clone)]
struct Api {
    node: String,
    issued: Arc<Mutex<bool>>,
    hb: mpsc::UnboundedSender<Value>,
}

async fn root() -> Json<Value> {
    Json(json!({"default_version": {"id": "v1", "version": "1.99", "min_version": "1.1"}}))
}

async fn lookup(State(api): State<Api>) -> (StatusCode, Json<Value>) {
    let mut issued = api.issued.lock().unwrap();
    let token = if *issued { "******" } else { TOKEN };
    *issued = true;
    (
        StatusCode::OK,
        Json(json!({
        "node": {"uuid": api.node, "properties": {}, "instance_info": {}, "driver_internal_info": {}},
        "config": {"heartbeat_timeout": 300, "agent_token": token, "agent_token_required": true,
                   "agent_md5_checksum_enable": true}})),
    )
}

async fn heartbeat(
    State(api): State<Api>,
    Path(node): Path<String>,
    Json(b): Json<Value>,
) -> StatusCode {
    if node != api.node {
        return StatusCode::NOT_FOUND;
    }
    if b["agent_token"] != TOKEN {
        return StatusCode::BAD_REQUEST;
    }
    let _ = api.hb.send(b);
    StatusCode::ACCEPTED
}

struct Rig {
    _agent: Guard,
    _api: tokio::task::JoinHandle<()>,
    hb: mpsc::UnboundedReceiver<Value>,
    node: Node,
    dir: tempfile::TempDir,
    disk: std::path::PathBuf,
}

async fn rig(tls: bool, disk_mib: u64) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let disk = make_disk(&dir.path().join("disk"), disk_mib << 20);
    let node = Node::new("fake-hardware");
    let (tx, rx) = mpsc::unbounded_channel();
    let api = Api {
        node: node.uuid.to_string(),
        issued: Arc::new(Mutex::new(false)),
        hb: tx,
    };
    let app = axum::Router::new()
        .route("/", axum::routing::get(root))
        .route("/v1/lookup", axum::routing::get(lookup))
        .route("/v1/heartbeat/{node}", axum::routing::post(heartbeat))
        .with_state(api);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let api_task = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ironic-agent"));
    cmd.args([
        "--cmdline",
        "/nonexistent",
        "--api-url",
        &url,
        "--mac",
        "52:54:00:aa:bb:cc",
        "--listen",
        "127.0.0.1:0",
        "--power-off",
        "exit",
        "--heartbeat-interval",
        "0.3",
        "--heartbeat-min-interval",
        "0",
        "--download-retries",
        "1",
    ])
    .arg("--root-device")
    .arg(&disk)
    .arg("--state-dir")
    .arg(dir.path().join("state"))
    .stdout(Stdio::null())
    .stderr(if std::env::var_os("AGENT_TEST_LOG").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    });
    if tls {
        cmd.arg("--auto-tls");
    }
    let agent = Guard(cmd.spawn().expect("spawn ironic-agent"));
    Rig {
        _agent: agent,
        _api: api_task,
        hb: rx,
        node,
        dir,
        disk,
    }
}

impl Rig {
    async fn next_hb(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(30), self.hb.recv())
            .await
            .expect("agent heartbeat within 30 s")
            .expect("heartbeat channel")
    }

    /// Take the first heartbeat: record what the conductor records.
    async fn attach(&mut self) -> Task {
        let hb = self.next_hb().await;
        let mut node = self.node.clone();
        node.provision_state = ProvisionState::DeployWait;
        node.set_internal("agent_url", hb["callback_url"].clone());
        node.set_internal("agent_secret_token", TOKEN);
        if let Some(ca) = hb.get("agent_verify_ca").filter(|v| !v.is_null()) {
            node.set_internal("agent_verify_ca", ca.clone());
        }
        Task::new(node)
    }

    /// Heartbeats until the deploy interface says something other than Wait.
    async fn until_done(&mut self, d: &AgentDeploy, task: &mut Task) -> HeartbeatOutcome {
        for _ in 0..200 {
            let hb = self.next_hb().await;
            let hb: Heartbeat = serde_json::from_value(hb).unwrap();
            match d.heartbeat(task, &hb).await.unwrap() {
                HeartbeatOutcome::Wait => continue,
                other => return other,
            }
        }
        panic!("the command never finished");
    }
}

fn step(name: &str) -> Step {
    Step {
        interface: InterfaceType::Deploy,
        step: name.into(),
        priority: 0,
        args: Default::default(),
        abortable: false,
        requires_ramdisk: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_raw_and_qcow2_with_config_drive_over_tls() {
    let mut rig = rig(true, 24).await;
    let img = make_raw(&rig.dir.path().join("img.raw"), 8, 11);
    // a GPT in the image so the config drive partition can be added after it
    {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(rig.dir.path().join("img.raw"))
            .unwrap();
        ironic_deploy_agent::image::partition::create_gpt(
            &f,
            8 << 20,
            &[ironic_deploy_agent::image::partition::PartSpec {
                name: "root".into(),
                type_guid: ironic_deploy_agent::image::partition::LINUX_FS,
                size: 4 << 20,
            }],
        )
        .unwrap();
    }
    let img = {
        let _ = img;
        std::fs::read(rig.dir.path().join("img.raw")).unwrap()
    };
    tool(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "qcow2",
            rig.dir.path().join("img.raw").to_str().unwrap(),
            rig.dir.path().join("img.qcow2").to_str().unwrap(),
        ],
    );
    let q = std::fs::read(rig.dir.path().join("img.qcow2")).unwrap();
    let srv = ImageServer::start(rig.dir.path(), ServeOptions::new())
        .await
        .unwrap();
    let mut task = rig.attach().await;
    assert!(
        task.node
            .internal("agent_url")
            .unwrap()
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    let d = AgentDeploy::new(AgentConfig::default());
    for (name, fmt, data) in [("img.raw", "raw", &img), ("img.qcow2", "qcow2", &q)] {
        task.node.instance_info = json!({
            "image_source": srv.url(name), "image_disk_format": fmt,
            "image_os_hash_algo": "sha256", "image_os_hash_value": sha256_hex(data),
            "configdrive": {"meta_data": {"uuid": task.node.uuid.to_string(), "hostname": "node-1"},
                            "user_data": "#cloud-config\n"},
        })
        .as_object()
        .unwrap()
        .clone();
        let out = d
            .execute_step(&mut task, StepKind::Deploy, &step("write_image"))
            .await
            .unwrap();
        assert_eq!(out, StepOutcome::Wait);
        assert_eq!(
            rig.until_done(&d, &mut task).await,
            HeartbeatOutcome::Continue,
            "{name}"
        );
        let disk = std::fs::read(&rig.disk).unwrap();
        // the image's first 1 MiB before its GPT was rewritten for the bigger disk: compare the data
        assert!(
            disk[1 << 20..img.len()] == img[1 << 20..],
            "{name}: disk differs from image"
        );
        // the config drive partition, at the end of the disk, is a readable ISO
        let f = std::fs::File::open(&rig.disk).unwrap();
        let t = ironic_deploy_agent::image::partition::read_table(&f).unwrap();
        let cd = t
            .partitions()
            .iter()
            .find(|p| p.name == "config-2")
            .expect("config-2 partition")
            .clone();
        assert!(
            cd.start + cd.len <= 24 << 20 && cd.start >= 8 << 20,
            "{cd:?}"
        );
        let iso = rig.dir.path().join("cd.iso");
        std::fs::write(&iso, &disk[cd.start as usize..(cd.start + cd.len) as usize]).unwrap();
        let out = tool(
            "isoinfo",
            &[
                "-i",
                iso.to_str().unwrap(),
                "-R",
                "-x",
                "/openstack/latest/meta_data.json",
            ],
        );
        let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(meta["hostname"], "node-1");
    }
    // partition uuids as Ironic reads them
    let client = AgentClient::for_node(&task.node, Duration::from_secs(10)).unwrap();
    let uuids = client.get_partition_uuids().await.unwrap();
    assert!(uuids["root uuid"].as_str().unwrap().len() == 36, "{uuids}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_reported_and_tokens_checked() {
    let mut rig = rig(false, 8).await;
    let img = make_raw(&rig.dir.path().join("img.raw"), 4, 12);
    let big = make_raw(&rig.dir.path().join("big.raw"), 12, 13);
    let srv = ImageServer::start(rig.dir.path(), ServeOptions::new())
        .await
        .unwrap();
    let cut = ImageServer::start(
        rig.dir.path(),
        ServeOptions {
            truncate_at: Some(1 << 20),
            ranges: true,
        },
    )
    .await
    .unwrap();
    let mut task = rig.attach().await;
    let d = AgentDeploy::new(AgentConfig::default());
    let cases = [
        (srv.url("img.raw"), sha256_hex(b"wrong"), "checksum"),
        (cut.url("img.raw"), sha256_hex(&img), "truncated"),
        (srv.url("big.raw"), sha256_hex(&big), "Device too small"),
    ];
    for (url, sum, want) in cases {
        task.node.instance_info = json!({"image_source": url, "image_checksum": sum})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            d.execute_step(&mut task, StepKind::Deploy, &step("write_image"))
                .await
                .unwrap(),
            StepOutcome::Wait
        );
        match rig.until_done(&d, &mut task).await {
            HeartbeatOutcome::Fail(m) => assert!(m.contains(want), "expected {want:?} in {m}"),
            other => panic!("{want}: expected a failure, got {other:?}"),
        }
    }
    // wrong token: refused with IPA's 401 "Token invalid."
    let mut bad = task.node.clone();
    bad.set_internal("agent_secret_token", "x".repeat(43));
    let e = AgentClient::for_node(&bad, Duration::from_secs(5))
        .unwrap()
        .commands()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AgentError::Unauthorized(m) if m == "Token invalid."),
        "{e}"
    );
    // one command at a time: a second one while the first runs is "busy"
    task.node.instance_info =
        json!({"image_source": srv.url("img.raw"), "image_checksum": sha256_hex(&img)})
            .as_object()
            .unwrap()
            .clone();
    assert_eq!(
        d.execute_step(&mut task, StepKind::Deploy, &step("write_image"))
            .await
            .unwrap(),
        StepOutcome::Wait
    );
    let client = AgentClient::for_node(&task.node, Duration::from_secs(5)).unwrap();
    match client.power_off().await {
        Err(AgentError::Busy) => {}
        Ok(r) => assert_ne!(
            r.command_status,
            ironic_deploy_agent::protocol::CommandStatus::Running,
            "accepted while busy"
        ),
        Err(e) => panic!("{e}"),
    }
    assert_eq!(
        rig.until_done(&d, &mut task).await,
        HeartbeatOutcome::Continue
    );
    // clean: erase_devices_metadata wipes the partition table area
    let mut clean = step("erase_devices_metadata");
    clean.priority = 99;
    assert_eq!(
        d.execute_step(&mut task, StepKind::Clean, &clean)
            .await
            .unwrap(),
        StepOutcome::Wait
    );
    assert_eq!(
        rig.until_done(&d, &mut task).await,
        HeartbeatOutcome::Continue
    );
    let disk = std::fs::read(&rig.disk).unwrap();
    assert!(
        disk[..1 << 20].iter().all(|&b| b == 0)
            && disk[disk.len() - (1 << 20)..].iter().all(|&b| b == 0)
    );
    // undeploy: erase_devices zeroes the whole disk
    let mut clean = step("erase_devices");
    clean.priority = 10;
    assert_eq!(
        d.execute_step(&mut task, StepKind::Clean, &clean)
            .await
            .unwrap(),
        StepOutcome::Wait
    );
    assert_eq!(
        rig.until_done(&d, &mut task).await,
        HeartbeatOutcome::Continue
    );
    assert!(std::fs::read(&rig.disk).unwrap().iter().all(|&b| b == 0));
    assert!(
        d.steps()
            .iter()
            .any(|s| s.name == "erase_devices_metadata" && s.priority == 99)
    );
}

/// Requests and responses shaped exactly as Ironic and IPA send them
/// (`reference/ipa-protocol.md` §1-2), replayed against both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_compat_with_ipa_shapes() {
    let mut rig = rig(false, 8).await;
    // the agent's heartbeat body has IPA's keys
    let hb = rig.next_hb().await;
    for k in ["callback_url", "agent_token", "agent_version"] {
        assert!(hb.get(k).is_some(), "heartbeat lacks {k}: {hb}");
    }
    let base = hb["callback_url"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    // Ironic's agent_client: POST {agent_url}/v1/commands/?wait=false&agent_token=T
    let r = http.post(format!("{base}/v1/commands/?wait=false&agent_token={TOKEN}"))
        .json(&json!({"name": "clean.get_clean_steps", "params": {"node": {"uuid": "x"}, "ports": []}}))
        .send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["command_name"], "get_clean_steps");
    assert_eq!(v["command_status"], "SUCCEEDED");
    assert!(v["command_error"].is_null());
    let steps = &v["command_result"]["clean_steps"]["GenericHardwareManager"];
    assert!(
        steps
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["step"] == "erase_devices" && s["priority"] == 10)
    );
    assert!(v["command_result"]["hardware_manager_version"].is_object());
    // GET /v1/commands/ lists oldest first
    let l: Value = http
        .get(format!("{base}/v1/commands/?agent_token={TOKEN}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(l["commands"][0]["id"], v["id"]);
    // no token: 401 with IPA's fault body
    let r = http
        .get(format!("{base}/v1/commands/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let f: Value = r.json().await.unwrap();
    assert_eq!(f["faultstring"], "Token invalid.");
    // unknown extension: 404; status needs no token
    let r = http
        .post(format!("{base}/v1/commands/?agent_token={TOKEN}"))
        .json(&json!({"name": "nope.nothing", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let s: Value = http
        .get(format!("{base}/v1/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(s["version"].is_string() && s["started_at"].is_number());
    // the conductor side reads a result IPA would send for a failed prepare_image
    let ipa: ironic_deploy_agent::protocol::CommandResult = serde_json::from_value(json!({
        "id": "3b7d5a2e-0000-4000-8000-000000000000", "command_name": "prepare_image",
        "command_status": "FAILED", "command_result": null,
        "command_error": {"type": "ImageChecksumError", "code": 500,
            "message": "Error verifying image checksum", "details": "Image failed to verify against checksum. location: http://x; image ID: y; image checksum: a; verification checksum: b"}
    })).unwrap();
    assert!(
        ipa.error_message()
            .starts_with("Error verifying image checksum: Image failed to verify")
    );
}
