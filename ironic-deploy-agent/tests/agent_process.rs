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
    rig_on(tls, dir, disk, &[]).await
}

/// An agent whose disk is `disk` (a file or a block device), with extra flags.
async fn rig_on(
    tls: bool,
    dir: tempfile::TempDir,
    disk: std::path::PathBuf,
    extra: &[&str],
) -> Rig {
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
    .args(extra)
    .stdout(Stdio::null())
    .stderr(if std::env::var_os("AGENT_TEST_LOG").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    });
    // TLS is the agent's default (as IPA's); the plain-HTTP rigs turn it off
    cmd.arg(if tls { "--auto-tls" } else { "--no-auto-tls" });
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
    Step::new(InterfaceType::Deploy, name).with_requires_ramdisk(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_raw_and_qcow2_with_config_drive_over_tls() {
    let mut rig = rig(true, 96).await;
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
        // 64 MiB, as IPA makes it, whatever the ISO's size
        assert!(
            cd.start + cd.len <= 96 << 20 && cd.start >= 8 << 20 && cd.len == 64 << 20,
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
    // a whole-disk image's root uuid is the MBR signature, as IPA's get_disk_identifier
    let disk = std::fs::read(&rig.disk).unwrap();
    let sig = u32::from_le_bytes(disk[440..444].try_into().unwrap());
    assert_eq!(uuids, json!({"root uuid": format!("0x{sig:08x}")}));
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

/// Run `name` with `wait=true` and return the finished result.
async fn run_command(
    task: &Task,
    name: &str,
    params: Value,
) -> ironic_deploy_agent::protocol::CommandResult {
    let client = AgentClient::for_node(&task.node, Duration::from_secs(120)).unwrap();
    client
        .command(name, params.as_object().unwrap().clone(), true)
        .await
        .unwrap()
}

/// Partition images in BIOS and UEFI mode: the agent lays out the disk as IPA
/// does (msdos + bootable root for BIOS; GPT + 550 MiB ESP for UEFI), installs
/// GRUB from the ramdisk (not from the image), and the disk boots in QEMU into
/// the image's own grub.cfg.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_images_boot_in_bios_and_uefi() {
    for uefi in [false, true] {
        let mut rig = rig(true, if uefi { 640 } else { 64 }).await;
        let mode = if uefi { "uefi" } else { "bios" };
        let uuid = if uefi {
            "6d7a1a4e-0b5c-4f6e-9b8a-1c2d3e4f5a6b"
        } else {
            "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
        };
        let marker = format!("IRONIC-GRUB-OK-{mode}");
        let img = ext4_image(
            rig.dir.path(),
            uuid,
            &[
                ("/boot/grub/grub.cfg", &grub_cfg(&marker)),
                ("/etc/hostname", b"node\n"),
            ],
        );
        let data = std::fs::read(&img).unwrap();
        let name = img.file_name().unwrap().to_str().unwrap().to_owned();
        let srv = ImageServer::start(rig.dir.path(), ServeOptions::new())
            .await
            .unwrap();
        let task = rig.attach().await;
        let info = json!({"id": "part", "urls": [srv.url(&name)], "disk_format": "raw",
            "os_hash_algo": "sha256", "os_hash_value": sha256_hex(&data),
            "image_type": "partition", "root_mb": 32, "swap_mb": 8, "ephemeral_mb": 0,
            "deploy_boot_mode": mode, "boot_option": "local"});
        let r = run_command(
            &task,
            "standby.prepare_image",
            json!({"image_info": info, "configdrive": null}),
        )
        .await;
        assert_eq!(
            r.command_status,
            ironic_deploy_agent::protocol::CommandStatus::Succeeded,
            "{r:?}"
        );
        let uuids = run_command(&task, "standby.get_partition_uuids", json!({})).await;
        let uuids = uuids.command_result.unwrap();
        assert_eq!(uuids["root uuid"], uuid, "{uuids}");
        let f = std::fs::File::open(&rig.disk).unwrap();
        let table = ironic_deploy_agent::image::partition::read_table(&f).unwrap();
        let disk = std::fs::read(&rig.disk).unwrap();
        if uefi {
            assert!(
                matches!(
                    table,
                    ironic_deploy_agent::image::partition::Table::Gpt { .. }
                ),
                "{table:?}"
            );
            let esp = &table.partitions()[0];
            assert!(esp.is_esp() && esp.len == 550 << 20, "{esp:?}");
            // the ESP's FAT volume id is what Ironic gets, as blkid shows it
            let vid = uuids["efi system partition uuid"].as_str().unwrap();
            assert_eq!(vid.len(), 9, "{uuids}");
            assert!(
                r.command_result.as_ref().unwrap()["result"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("efi_system_partition_uuid={vid}")),
                "{r:?}"
            );
        } else {
            assert!(
                matches!(
                    table,
                    ironic_deploy_agent::image::partition::Table::Mbr { .. }
                ),
                "{table:?}"
            );
            // root last and active, swap before it, as IPA lays them out
            assert_eq!(disk[446 + 16 + 4], 0x83);
            assert_eq!(disk[446 + 16], 0x80, "root is marked bootable");
            assert_eq!(disk[446 + 4], 0x82, "swap");
            assert_eq!(uuids["efi system partition uuid"], Value::Null);
        }
        let root = table.partitions().last().unwrap();
        assert!(
            disk[root.start as usize..root.start as usize + data.len()] == data[..],
            "the root partition holds the image"
        );
        // swap signature
        let swap = &table.partitions()[table.partitions().len() - 2];
        assert_eq!(
            &disk[swap.start as usize + 4086..swap.start as usize + 4096],
            b"SWAPSPACE2"
        );

        let r = run_command(
            &task,
            "image.install_bootloader",
            json!({
            "root_uuid": uuid, "efi_system_part_uuid": uuids["efi system partition uuid"],
            "prep_boot_part_uuid": null, "target_boot_mode": mode}),
        )
        .await;
        assert_eq!(
            r.command_status,
            ironic_deploy_agent::protocol::CommandStatus::Succeeded,
            "{r:?}"
        );
        let msg = r.command_result.unwrap()["result"]
            .as_str()
            .unwrap()
            .to_owned();
        if uefi {
            assert!(
                msg.contains("BOOTX64.EFI") && msg.contains("NVRAM entries skipped"),
                "{msg}"
            );
        } else {
            assert!(msg.contains("BIOS: GRUB"), "{msg}");
        }
        let console = boot_until(&rig.disk, uefi, &marker);
        assert!(console.contains(&marker));
    }
}

/// Whole-disk images in UEFI mode: the ESP's loader is found (shim's CSV or the
/// removable path) and, on a file disk, the NVRAM write is skipped and said;
/// an image without an ESP fails with IPA's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_disk_uefi_bootloader() {
    let mut rig = rig(true, 64).await;
    let dir = rig.dir.path().to_owned();
    // a GPT image with an ESP made by the real tools (sfdisk, mkfs.vfat, mtools)
    let img = dir.join("uefi.raw");
    Command::new("truncate")
        .args(["-s", "48M"])
        .arg(&img)
        .status()
        .unwrap();
    let sf = Command::new("sfdisk")
        .args(["-q", img.to_str().unwrap()])
        .stdin(Stdio::piped())
        .spawn()
        .map(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"label: gpt\nstart=2048, size=40960, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=43008, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n").unwrap();
            c.wait().unwrap()
        })
        .expect("sfdisk (util-linux) is needed");
    assert!(sf.success());
    let esp = dir.join("esp.fat");
    Command::new("truncate")
        .args(["-s", "20M"])
        .arg(&esp)
        .status()
        .unwrap();
    tool("mkfs.vfat", &["-n", "EFI", esp.to_str().unwrap()]);
    std::fs::write(dir.join("shim"), b"MZ shim").unwrap();
    let csv: Vec<u8> = "\u{feff}shimx64.efi,Debian GNU/Linux,,This is the boot entry for debian\n"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    std::fs::write(dir.join("BOOTX64.CSV"), csv).unwrap();
    tool(
        "mmd",
        &[
            "-i",
            esp.to_str().unwrap(),
            "::/EFI",
            "::/EFI/BOOT",
            "::/EFI/debian",
        ],
    );
    for (src, dst) in [
        ("shim", "::/EFI/BOOT/BOOTX64.EFI"),
        ("shim", "::/EFI/debian/shimx64.efi"),
        ("BOOTX64.CSV", "::/EFI/debian/BOOTX64.CSV"),
    ] {
        tool(
            "mcopy",
            &[
                "-o",
                "-i",
                esp.to_str().unwrap(),
                dir.join(src).to_str().unwrap(),
                dst,
            ],
        );
    }
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
        f.write_all_at(&std::fs::read(&esp).unwrap(), 1 << 20)
            .unwrap();
    }
    let data = std::fs::read(&img).unwrap();
    // the same disk without the ESP partition's type: no ESP
    let plain = dir.join("plain.raw");
    std::fs::copy(&img, &plain).unwrap();
    Command::new("sfdisk")
        .args([
            "-q",
            "--part-type",
            plain.to_str().unwrap(),
            "1",
            "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
        ])
        .status()
        .unwrap();
    let plain_data = std::fs::read(&plain).unwrap();
    let srv = ImageServer::start(&dir, ServeOptions::new()).await.unwrap();
    let task = rig.attach().await;
    for (name, bytes, ok) in [("plain.raw", &plain_data, false), ("uefi.raw", &data, true)] {
        let info = json!({"id": name, "urls": [srv.url(name)], "disk_format": "raw",
            "os_hash_algo": "sha256", "os_hash_value": sha256_hex(bytes)});
        let r = run_command(
            &task,
            "standby.prepare_image",
            json!({"image_info": info, "configdrive": null}),
        )
        .await;
        assert_eq!(
            r.command_status,
            ironic_deploy_agent::protocol::CommandStatus::Succeeded,
            "{r:?}"
        );
        let uuids = run_command(&task, "standby.get_partition_uuids", json!({})).await;
        let root = uuids.command_result.unwrap()["root uuid"].clone();
        assert_eq!(
            root, "0x00000000",
            "sfdisk leaves a GPT image's MBR signature zero"
        );
        // Ironic's configure_local_boot for a whole-disk image in UEFI mode
        let r = run_command(
            &task,
            "image.install_bootloader",
            json!({
            "root_uuid": root, "efi_system_part_uuid": null, "prep_boot_part_uuid": null,
            "target_boot_mode": "uefi"}),
        )
        .await;
        if ok {
            assert_eq!(
                r.command_status,
                ironic_deploy_agent::protocol::CommandStatus::Succeeded,
                "{r:?}"
            );
            let msg = r.command_result.unwrap()["result"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(
                msg.contains("\\EFI\\debian\\shimx64.efi") && msg.contains("is a file, not a disk"),
                "{msg}"
            );
        } else {
            assert_eq!(
                r.command_status,
                ironic_deploy_agent::protocol::CommandStatus::Failed,
                "{r:?}"
            );
            assert!(
                r.error_message()
                    .contains("No EFI partition could be detected"),
                "{r:?}"
            );
            // BIOS mode needs nothing from the agent for a whole-disk image
            let r = run_command(
                &task,
                "image.install_bootloader",
                json!({
                "root_uuid": root, "target_boot_mode": "bios"}),
            )
            .await;
            assert_eq!(
                r.command_status,
                ironic_deploy_agent::protocol::CommandStatus::Succeeded,
                "{r:?}"
            );
        }
    }
    let _ = rig.hb.try_recv();
}

/// Run a tool of the test itself; a missing one fails with its Debian package.
fn host_tool(name: &str, package: &str, args: &[&str]) -> String {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!("{name} is needed by this test ({e}): apt-get install {package}")
    });
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A loop device over a file (`losetup --partscan`), detached when dropped.
struct Loop(String);
impl Loop {
    fn attach(file: &std::path::Path) -> Loop {
        let dev = host_tool(
            "losetup",
            "mount",
            &["--find", "--show", "--partscan", file.to_str().unwrap()],
        );
        Loop(dev.trim().to_owned())
    }
    fn part(&self, n: u32) -> String {
        format!("{}p{n}", self.0)
    }
}
impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("blockdev").args(["--setrw", &self.0]).status();
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// `clean.execute_clean_step` / `deploy.execute_deploy_step` as Ironic sends it,
/// waited for.
async fn agent_step(
    task: &Task,
    kind: &str,
    name: &str,
    node: Value,
    args: Value,
) -> ironic_deploy_agent::protocol::CommandResult {
    run_command(
        task,
        &format!("{kind}.execute_{kind}_step"),
        json!({"step": {"step": name, "interface": "deploy", "priority": 0, "args": args,
            "reboot_requested": false}, "node": node, "ports": []}),
    )
    .await
}

fn ok(r: &ironic_deploy_agent::protocol::CommandResult) -> Value {
    assert_eq!(
        r.command_status,
        ironic_deploy_agent::protocol::CommandStatus::Succeeded,
        "{}: {}",
        r.command_name,
        r.error_message()
    );
    // `{clean,deploy}_result` beside the step
    let v = r.command_result.clone().unwrap_or(Value::Null);
    v.as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.ends_with("_result")))
        .map(|(_, v)| v.clone())
        .unwrap_or(v)
}

fn failed(r: &ironic_deploy_agent::protocol::CommandResult) -> String {
    assert_eq!(
        r.command_status,
        ironic_deploy_agent::protocol::CommandStatus::Failed,
        "{}: {:?}",
        r.command_name,
        r.command_result
    );
    r.error_message()
}

/// The steps on a real block device (a loop device over a file, partitions
/// included): inject_files into ext4 (debugfs) and XFS (mounted), the skip list,
/// the read-only guard, the metadata erase checked with `wipefs`, the overwrite
/// fallback when the disk has no ATA security (hdparm asked), the express erase
/// with a discard; burn-in with stress-ng and fio; erase_pstore; and a step
/// whose tool is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_on_a_block_device() {
    let dir = tempfile::tempdir().unwrap();
    let backing = dir.path().join("backing");
    let before = make_raw(&backing, 48, 21);
    let lo = Loop::attach(&backing);
    let dev = lo.0.clone();
    // a GPT with an ext4 and an XFS partition, made by the real tools
    let mut c = Command::new("sfdisk")
        .args(["-q", &dev])
        .stdin(Stdio::piped())
        .spawn()
        .expect("sfdisk is needed: apt-get install fdisk");
    {
        use std::io::Write;
        c.stdin
            .take()
            .unwrap()
            .write_all(
                b"label: gpt\nstart=2048, size=32768, type=L\nstart=34816, size=40960, type=L\n",
            )
            .unwrap();
    }
    assert!(c.wait().unwrap().success());
    host_tool("partprobe", "parted", &[&dev]);
    host_tool(
        "mkfs.ext4",
        "e2fsprogs",
        &["-q", "-F", "-L", "root", &lo.part(1)],
    );
    host_tool(
        "mkfs.ext4",
        "e2fsprogs",
        &["-q", "-F", "-L", "data", &lo.part(2)],
    );
    // another device with XFS (which needs 300 MB), sparse
    let xfs_file = dir.path().join("xfs");
    std::fs::File::create(&xfs_file)
        .unwrap()
        .set_len(320 << 20)
        .unwrap();
    let xfs_lo = Loop::attach(&xfs_file);
    host_tool("mkfs.xfs", "xfsprogs", &["-q", "-f", &xfs_lo.0]);
    // a fake pstore: the agent reads its mounts from --proc-root
    let proc_root = dir.path().join("proc");
    let pstore = dir.path().join("pstore");
    std::fs::create_dir_all(&proc_root).unwrap();
    std::fs::create_dir_all(pstore.join("sub")).unwrap();
    std::fs::write(pstore.join("dmesg-efi-177"), b"oops").unwrap();
    for f in ["cpuinfo", "meminfo", "partitions"] {
        std::os::unix::fs::symlink(format!("/proc/{f}"), proc_root.join(f)).unwrap();
    }
    std::fs::write(
        proc_root.join("mounts"),
        format!(
            "sysfs /sys sysfs rw 0 0\npstore {} pstore rw 0 0\n",
            pstore.display()
        ),
    )
    .unwrap();
    let proc_arg = proc_root.display().to_string();
    let mut rig = rig_on(
        false,
        dir,
        std::path::PathBuf::from(&dev),
        &["--proc-root", &proc_arg],
    )
    .await;
    let task = rig.attach().await;
    let node_uuid = rig.node.uuid.to_string();
    let node = |extra: Value| {
        let mut n = json!({"uuid": node_uuid, "properties": {},
            "driver_info": {}, "driver_internal_info": {}, "instance_info": {}});
        for (k, v) in extra.as_object().unwrap() {
            n[k] = v.clone();
        }
        n
    };
    use base64::Engine as _;
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);

    // inject_files: ext4 by number, device path and label (debugfs on the block
    // device), XFS on another device (mounted, as IPA does); the node's files
    // come first
    let r = agent_step(
        &task,
        "deploy",
        "inject_files",
        node(json!({"properties": {"inject_files": [
            {"path": "/etc/hostname", "partition": "1", "content": b64(b"node-1\n")}]}})),
        json!({"files": [
            {"path": "/etc/ssh/sshd_config.d/ironic.conf", "partition": lo.part(1),
             "content": b64(b"PermitRootLogin no\n"), "mode": 0o600, "dirmode": 0o700,
             "owner": 1000, "group": 100},
            {"path": "/srv/data/hello", "partition": "LABEL=data", "content": b64(b"data\n")},
            {"path": "/xfs/hello", "partition": xfs_lo.0, "content": b64(b"xfs\n"),
             "mode": 0o640}]}),
    )
    .await;
    let v = ok(&r);
    assert_eq!(v["injected"].as_array().unwrap().len(), 4, "{v}");
    let p1 = lo.part(1);
    let cat = |path: &str| host_tool("debugfs", "e2fsprogs", &["-R", &format!("cat {path}"), &p1]);
    assert_eq!(cat("/etc/hostname"), "node-1\n");
    assert_eq!(
        cat("/etc/ssh/sshd_config.d/ironic.conf"),
        "PermitRootLogin no\n"
    );
    let stat = host_tool(
        "debugfs",
        "e2fsprogs",
        &["-R", "stat /etc/ssh/sshd_config.d/ironic.conf", &p1],
    );
    assert!(stat.contains("Mode:  0600"), "{stat}");
    assert!(
        stat.contains("User:  1000") && stat.contains("Group:   100"),
        "{stat}"
    );
    let dstat = host_tool(
        "debugfs",
        "e2fsprogs",
        &["-R", "stat /etc/ssh/sshd_config.d", &p1],
    );
    assert!(
        dstat.contains("Mode:  0700"),
        "the created leaf directory: {dstat}"
    );
    let data = host_tool(
        "debugfs",
        "e2fsprogs",
        &["-R", "cat /srv/data/hello", &lo.part(2)],
    );
    assert_eq!(data, "data\n");
    let mnt = tempfile::tempdir().unwrap();
    host_tool("mount", "mount", &[&xfs_lo.0, mnt.path().to_str().unwrap()]);
    let xfs = std::fs::read(mnt.path().join("xfs/hello"));
    let xmode = std::fs::metadata(mnt.path().join("xfs/hello")).map(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o7777
    });
    host_tool("umount", "mount", &[mnt.path().to_str().unwrap()]);
    assert_eq!(xfs.unwrap(), b"xfs\n");
    assert_eq!(xmode.unwrap(), 0o640);
    // deleted files go, a missing partition is a clear error
    let r = agent_step(
        &task,
        "deploy",
        "inject_files",
        node(json!({})),
        json!({"files": [{"path": "/etc/hostname", "deleted": true}]}),
    )
    .await;
    ok(&r);
    let gone = Command::new("debugfs")
        .args(["-R", "stat /etc/hostname", &p1])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&gone.stderr).contains("File not found"));
    let r = agent_step(
        &task,
        "deploy",
        "inject_files",
        node(json!({})),
        json!({"files": [{"path": "/opt/x", "content": b64(b"x")}]}),
    )
    .await;
    assert!(
        failed(&r).contains("No partition found with path /opt"),
        "{}",
        r.error_message()
    );

    // skip_block_devices: nothing is erased
    let r = agent_step(
        &task,
        "clean",
        "erase_devices_metadata",
        node(json!({"properties": {"skip_block_devices": [{"name": dev}]}})),
        json!({}),
    )
    .await;
    assert_eq!(ok(&r)["erased"], json!([]));
    assert!(host_tool("wipefs", "util-linux", &["--no-act", &dev]).contains("gpt"));
    // a read-only device fails a full erase unless the conductor allows skipping it
    host_tool("blockdev", "util-linux", &["--setro", &dev]);
    let r = agent_step(&task, "clean", "erase_devices", node(json!({})), json!({})).await;
    assert!(
        failed(&r).contains("flagged read-only"),
        "{}",
        r.error_message()
    );
    let r = agent_step(
        &task,
        "clean",
        "erase_devices",
        node(json!({"driver_internal_info": {"agent_erase_skip_read_only": true}})),
        json!({}),
    )
    .await;
    assert_eq!(ok(&r), json!({}));
    host_tool("blockdev", "util-linux", &["--setrw", &dev]);

    // metadata: no signature left on the disk or in the partitions' places
    let r = agent_step(
        &task,
        "clean",
        "erase_devices_metadata",
        node(json!({})),
        json!({}),
    )
    .await;
    assert_eq!(ok(&r)["erased"], json!([dev]));
    assert_eq!(
        host_tool("wipefs", "util-linux", &["--no-act", &dev]).trim(),
        ""
    );
    let bytes = std::fs::read(&backing).unwrap();
    for start in [2048usize * 512, 34816 * 512] {
        assert!(bytes[start..start + (1 << 20)].iter().all(|&b| b == 0));
    }

    // full erase: a loop device has no ATA security (hdparm is asked), so the
    // agent overwrites it: one random pass and no zeroes, as the node says
    let r = agent_step(
        &task,
        "clean",
        "erase_devices",
        node(
            json!({"driver_internal_info": {"agent_erase_devices_iterations": 1,
            "agent_erase_devices_zeroize": false, "agent_enable_ata_secure_erase": true}}),
        ),
        json!({}),
    )
    .await;
    let v = ok(&r);
    assert!(v[&dev].as_str().unwrap().contains("1 random pass"), "{v}");
    let after = std::fs::read(&backing).unwrap();
    let zero_mib = after
        .chunks(1 << 20)
        .filter(|c| c.iter().all(|&b| b == 0))
        .count();
    assert_eq!(zero_mib, 0, "random data everywhere");
    assert!(after[(40 << 20)..(41 << 20)] != before[(40 << 20)..(41 << 20)]);

    // express: the loop device discards (holes in the backing file), then metadata;
    // through the conductor's AgentDeploy this time
    let d = AgentDeploy::new(AgentConfig::default());
    let mut task = task;
    assert_eq!(
        d.execute_step(&mut task, StepKind::Clean, &step("erase_devices_express"))
            .await
            .unwrap(),
        StepOutcome::Wait
    );
    assert_eq!(
        rig.until_done(&d, &mut task).await,
        HeartbeatOutcome::Continue
    );
    let cmds = AgentClient::for_node(&task.node, Duration::from_secs(10))
        .unwrap()
        .commands()
        .await
        .unwrap();
    let last = cmds.last().unwrap();
    assert!(
        last.command_result.as_ref().unwrap()["clean_result"][&dev]
            .as_str()
            .unwrap()
            .contains("discarded"),
        "{:?}",
        last.command_result
    );
    assert!(std::fs::read(&backing).unwrap().iter().all(|&b| b == 0));

    // burn-in, bounded by the node's settings
    let burn = node(json!({"driver_info": {"agent_burnin_cpu_timeout": 1,
        "agent_burnin_vm_timeout": 1, "agent_burnin_vm_vm": 1, "agent_burnin_vm_vm-bytes": "16M",
        "agent_burnin_fio_disk_loops": 1, "agent_burnin_fio_disk_runtime": 1}}));
    for name in ["burnin_cpu", "burnin_memory"] {
        let v = ok(&agent_step(&task, "clean", name, burn.clone(), json!({})).await);
        assert!(v["report"].as_str().unwrap().contains("stress-ng"), "{v}");
    }
    let v = ok(&agent_step(&task, "clean", "burnin_disk", burn.clone(), json!({})).await);
    assert_eq!(v["disks"], json!([dev]));
    // gpu-burn is not on this host: the step says what it needs
    let e = failed(&agent_step(&task, "clean", "burnin_gpu", burn.clone(), json!({})).await);
    assert!(
        e.contains("gpu_burn") && e.contains("agent_burnin_gpu_install_dir"),
        "{e}"
    );

    // erase_pstore empties the pstore the agent finds in its mounts
    let v = ok(&agent_step(&task, "clean", "erase_pstore", node(json!({})), json!({})).await);
    assert_eq!(v["erased"], json!(["dmesg-efi-177", "sub"]));
    assert_eq!(std::fs::read_dir(&pstore).unwrap().count(), 0);
    drop(rig);
}

/// 4Kn disks (4096-byte logical sectors), on a `losetup --sector-size 4096`
/// loop device: a whole-disk image made for 512-byte sectors is refused; BIOS
/// mode is refused before anything is written; a partition image in UEFI mode
/// gets a GPT, an ESP (FAT with 4 KiB sectors) and a config drive that
/// util-linux, sgdisk and dosfstools read back, GRUB, and the disk boots in
/// OVMF as a virtio disk with 4 KiB blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_k_native_disk() {
    let dir = tempfile::tempdir().unwrap();
    let backing = dir.path().join("disk4k");
    std::fs::File::create(&backing)
        .unwrap()
        .set_len(704 << 20)
        .unwrap();
    let dev = host_tool(
        "losetup",
        "mount",
        &[
            "--find",
            "--show",
            "--partscan",
            "--sector-size",
            "4096",
            backing.to_str().unwrap(),
        ],
    );
    let lo = Loop(dev.trim().to_owned());
    assert_eq!(
        host_tool("blockdev", "util-linux", &["--getss", &lo.0]).trim(),
        "4096"
    );
    // a whole-disk GPT image made for 512-byte sectors (sfdisk on a file)
    let wd = dir.path().join("wd512.raw");
    std::fs::File::create(&wd)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let mut c = Command::new("sfdisk")
        .args(["-q", wd.to_str().unwrap()])
        .stdin(Stdio::piped())
        .spawn()
        .expect("sfdisk is needed: apt-get install fdisk");
    {
        use std::io::Write;
        c.stdin
            .take()
            .unwrap()
            .write_all(b"label: gpt\nstart=2048, size=8192, type=L\n")
            .unwrap();
    }
    assert!(c.wait().unwrap().success());
    let wd_data = std::fs::read(&wd).unwrap();
    let uuid = "4b4e0c6a-2f31-4d5e-8a7b-9c0d1e2f3a4b";
    let marker = "IRONIC-GRUB-OK-4kn";
    // ext4 with 4 KiB blocks (Linux mounts no smaller block on a 4Kn disk)
    let img = ext4_image_with(
        dir.path(),
        uuid,
        &[
            ("/boot/grub/grub.cfg", &grub_cfg(marker)),
            // no newline at its end: the agent's entry must not be glued to it
            (
                "/etc/fstab",
                format!("UUID={uuid} / ext4 defaults 0 1").as_bytes(),
            ),
        ],
        &["-b", "4096"],
    );
    let data = std::fs::read(&img).unwrap();
    let name = img.file_name().unwrap().to_str().unwrap().to_owned();
    let srv = ImageServer::start(dir.path(), ServeOptions::new())
        .await
        .unwrap();
    let mut rig = rig_on(false, dir, std::path::PathBuf::from(&lo.0), &[]).await;
    let task = rig.attach().await;
    let prepare = |info: Value, cd: Value| {
        run_command(
            &task,
            "standby.prepare_image",
            json!({"image_info": info, "configdrive": cd}),
        )
    };

    let r = prepare(
        json!({"id": "wd", "urls": [srv.url("wd512.raw")], "disk_format": "raw",
            "os_hash_algo": "sha256", "os_hash_value": sha256_hex(&wd_data)}),
        Value::Null,
    )
    .await;
    let e = failed(&r);
    assert!(
        e.contains("made for 512-byte sectors") && e.contains("4096-byte logical sectors"),
        "{e}"
    );

    let part_info = |mode: &str| {
        json!({"id": "part", "urls": [srv.url(&name)], "disk_format": "raw",
            "os_hash_algo": "sha256", "os_hash_value": sha256_hex(&data),
            "image_type": "partition", "root_mb": 32, "swap_mb": 8, "ephemeral_mb": 0,
            "deploy_boot_mode": mode, "boot_option": "local"})
    };
    // BIOS: refused before the disk is touched (the refused image is still there)
    host_tool("wipefs", "util-linux", &["--all", "--quiet", &lo.0]);
    let r = prepare(part_info("bios"), Value::Null).await;
    let e = failed(&r);
    assert!(
        e.contains("legacy BIOS cannot boot") && e.contains("UEFI"),
        "{e}"
    );
    assert_eq!(
        host_tool("wipefs", "util-linux", &["--no-act", &lo.0]).trim(),
        ""
    );

    let cd = ironic_deploy_agent::image::configdrive::build(
        &json!({"meta_data": {"uuid": uuid, "hostname": "node-4kn"}}),
    )
    .expect("genisoimage is needed: apt-get install genisoimage");
    let r = prepare(part_info("uefi"), json!(cd)).await;
    assert_eq!(
        r.command_status,
        ironic_deploy_agent::protocol::CommandStatus::Succeeded,
        "{r:?}"
    );
    // the table as util-linux and gdisk read it, in 4 KiB sectors: ESP, swap,
    // root (the image, byte for byte), config drive
    let sf: Value =
        serde_json::from_str(&host_tool("sfdisk", "fdisk", &["--json", &lo.0])).unwrap();
    let pt = &sf["partitiontable"];
    assert_eq!(pt["label"], "gpt", "{sf}");
    assert_eq!(pt["sectorsize"], 4096, "{sf}");
    let parts = pt["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 4, "{sf}");
    assert_eq!(parts[0]["start"], 256, "1 MiB in 4 KiB sectors: {sf}");
    assert_eq!(parts[0]["size"], 550 * 256, "{sf}");
    let verify = host_tool("sgdisk", "gdisk", &["--verify", &lo.0]);
    assert!(verify.contains("No problems found"), "{verify}");
    let root_start = parts[2]["start"].as_u64().unwrap() * 4096;
    let mut root = vec![0u8; data.len()];
    {
        use std::os::unix::fs::FileExt;
        std::fs::File::open(&backing)
            .unwrap()
            .read_exact_at(&mut root, root_start)
            .unwrap();
    }
    assert!(root == data, "the root partition holds the image");
    // the kernel re-read the table (the agent asked it to): each partition's
    // filesystem as blkid sees it
    let blkid = |n: u32, tag: &str| {
        host_tool(
            "blkid",
            "util-linux",
            &["-p", "-o", "value", "-s", tag, &lo.part(n)],
        )
        .trim()
        .to_owned()
    };
    assert_eq!(blkid(1, "TYPE"), "vfat");
    assert_eq!(blkid(3, "UUID"), uuid);
    assert_eq!(blkid(4, "TYPE"), "iso9660");
    assert_eq!(blkid(4, "LABEL"), "config-2");
    // dosfstools checks the ESP on the 4Kn device
    host_tool("fsck.fat", "dosfstools", &["-n", &lo.part(1)]);

    let uuids = run_command(&task, "standby.get_partition_uuids", json!({})).await;
    let uuids = uuids.command_result.unwrap();
    assert_eq!(uuids["root uuid"], uuid, "{uuids}");
    let r = run_command(
        &task,
        "image.install_bootloader",
        json!({"root_uuid": uuid, "efi_system_part_uuid": uuids["efi system partition uuid"],
            "prep_boot_part_uuid": null, "target_boot_mode": "uefi"}),
    )
    .await;
    let msg = ok(&r);
    assert!(msg.to_string().contains("BOOTX64.EFI"), "{msg}");
    // the directories the agent created (EFI, EFI/BOOT) pass fsck.fat too
    let fsck = host_tool("fsck.fat", "dosfstools", &["-n", &lo.part(1)]);
    assert!(!fsck.contains("should be"), "{fsck}");
    let efi = host_tool("mdir", "mtools", &["-b", "-i", &lo.part(1), "::/EFI/BOOT"]);
    assert!(efi.contains("BOOTX64.EFI"), "{efi}");
    // IPA's _append_uefi_to_fstab: the ESP by its FAT volume id, once
    let vid = uuids["efi system partition uuid"].as_str().unwrap();
    // read through the disk the agent wrote (the partition's device has its
    // own page cache, filled by blkid above)
    let fstab = host_tool(
        "debugfs",
        "e2fsprogs",
        &[
            "-R",
            "cat /etc/fstab",
            &format!("{}?offset={root_start}", lo.0),
        ],
    );
    assert_eq!(
        fstab,
        format!("UUID={uuid} / ext4 defaults 0 1\nUUID={vid}\t/boot/efi\tvfat\tumask=0077\t0\t1\n"),
        "{msg}"
    );
    assert!(msg.to_string().contains("added to /etc/fstab"), "{msg}");
    host_tool("sync", "coreutils", &[]);
    let console = boot_until_with(&backing, true, marker, 4096);
    assert!(console.contains(marker));
    drop(rig);
    drop(lo);
}

/// Serves one file over HTTP/1.1 on loopback (any path): the first MiB at once,
/// the rest once `open` fires, so a write can be watched half done.
async fn held_image(data: Vec<u8>) -> (String, tokio::sync::oneshot::Sender<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/img.raw", l.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "client closed before its request");
            req.extend_from_slice(&buf[..n]);
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
            data.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&data[..1 << 20]).await.unwrap();
        let _ = rx.await;
        s.write_all(&data[1 << 20..]).await.unwrap();
        let _ = s.shutdown().await;
    });
    (url, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_write_progress_reaches_the_node_through_heartbeats() {
    let dir = tempfile::tempdir().unwrap();
    let disk = make_disk(&dir.path().join("disk"), 16 << 20);
    // IPA's regular heartbeats are minutes apart: only progress makes them come
    let mut rig = rig_on(
        false,
        dir,
        disk,
        &["--heartbeat-interval", "300", "--progress-interval", "0.2"],
    )
    .await;
    let img = make_raw(&rig.dir.path().join("img.raw"), 8, 41);
    let (url, open) = held_image(img.clone()).await;
    let mut task = rig.attach().await;
    task.node.instance_info = json!({"image_source": url, "image_disk_format": "raw",
        "image_os_hash_algo": "sha256", "image_os_hash_value": sha256_hex(&img)})
    .as_object()
    .unwrap()
    .clone();
    let d = AgentDeploy::new(AgentConfig::default());
    let out = d
        .execute_step(&mut task, StepKind::Deploy, &step("write_image"))
        .await
        .unwrap();
    assert_eq!(out, StepOutcome::Wait);
    // the first MiB is written, the rest held: a heartbeat comes for it
    let hb: Heartbeat = serde_json::from_value(rig.next_hb().await).unwrap();
    assert_eq!(
        d.heartbeat(&mut task, &hb).await.unwrap(),
        HeartbeatOutcome::Wait
    );
    let p = task
        .node
        .internal("agent_progress")
        .cloned()
        .expect("agent_progress recorded while the write runs");
    assert_eq!(p["stage"], "writing image", "{p}");
    assert_eq!(p["step"], "write_image", "{p}");
    assert_eq!(p["command"], "prepare_image", "{p}");
    assert_eq!(p["total_bytes"], json!(img.len()), "{p}");
    assert_eq!(p["done_bytes"], json!(1 << 20), "{p}");
    assert_eq!(p["percent"], json!(12.5), "{p}");
    assert!(p["updated_at"].is_string(), "{p}");
    // Ironic's view: GET /v1/commands/ keeps IPA's fields; ours is one more
    let base = task
        .node
        .internal("agent_url")
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    let l: Value = reqwest::Client::new()
        .get(format!("{base}/v1/commands/?agent_token={TOKEN}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let running = l["commands"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(running["command_status"], "RUNNING");
    assert!(running["command_result"].is_null(), "{running}");
    assert_eq!(running["command_progress"]["done_bytes"], json!(1 << 20));
    // nothing moves while the download is held: no more heartbeats
    assert!(
        tokio::time::timeout(Duration::from_secs(2), rig.hb.recv())
            .await
            .is_err(),
        "a heartbeat without progress to report"
    );
    open.send(()).unwrap();
    assert_eq!(
        rig.until_done(&d, &mut task).await,
        HeartbeatOutcome::Continue
    );
    assert!(
        task.node.internal("agent_progress").is_none(),
        "progress removed when the command ended"
    );
    let disk = std::fs::read(&rig.disk).unwrap();
    assert!(disk[..img.len()] == img[..], "disk differs from the image");
    // the finished command keeps its last figures: the whole image read back
    let l: Value = reqwest::Client::new()
        .get(format!("{base}/v1/commands/?agent_token={TOKEN}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let done = l["commands"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(done["command_status"], "SUCCEEDED");
    assert_eq!(done["command_progress"]["stage"], "verifying image");
    assert_eq!(done["command_progress"]["percent"], json!(100.0));
}
