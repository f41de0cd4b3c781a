//! Whole deploys driven through the real `Conductor` (MemoryStore): the node's
//! power-on starts the real `ironic-agent` process with a file as its disk (see
//! `common/rack.rs`), the agent looks the node up and heartbeats through the
//! conductor's ramdisk endpoints, and `AgentDeploy` drives it step by step.

mod common;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use common::rack::{Env, env};
use common::*;
use futures::StreamExt;
use ironic_core::driver::Heartbeat;
use ironic_core::{
    Error, ErrorKind, Ident, Node, NodeId, PowerState, ProvisionRequest, ProvisionState as S,
};
use ironic_deploy_agent::httpd::{ImageServer, ServeOptions};
use serde_json::{Value, json};
use tokio::sync::watch;

/// Serves files of a directory, sending the first MiB at once and the rest only
/// once the gate opens (a deploy held in `wait call-back` while `write_image` runs).
struct GatedServer {
    url: String,
    gate: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GatedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn gated_file(
    State((root, gate)): State<(std::path::PathBuf, watch::Receiver<bool>)>,
    Path(name): Path<String>,
) -> Response {
    let Ok(data) = std::fs::read(root.join(&name)) else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::empty())
            .unwrap();
    };
    let len = data.len();
    let cut = len.min(1 << 20);
    let first = Bytes::copy_from_slice(&data[..cut]);
    let rest = Bytes::copy_from_slice(&data[cut..]);
    let mut gate = gate.clone();
    let s = futures::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(
        futures::stream::once(async move {
            let _ = gate.wait_for(|open| *open).await;
            Ok(rest)
        }),
    );
    Response::builder()
        .header(header::CONTENT_LENGTH, len)
        .body(Body::from_stream(s))
        .unwrap()
}

async fn gated_server(root: &std::path::Path) -> GatedServer {
    let (tx, rx) = watch::channel(false);
    let app = axum::Router::new()
        .route("/{name}", axum::routing::get(gated_file))
        .with_state((root.to_owned(), rx));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    GatedServer {
        url,
        gate: tx,
        task,
    }
}

fn id(n: &Node) -> Ident {
    n.uuid.into()
}

async fn provision(env: &Env, node: NodeId, req: ProvisionRequest) {
    let t = req.target.clone();
    env.c
        .provision(&node.into(), req)
        .await
        .unwrap_or_else(|e| panic!("provision {t}: {e}"));
}

/// enroll → manageable → (automated cleaning by the agent) → available.
async fn make_available(env: &Env, node: NodeId) -> Node {
    provision(env, node, ProvisionRequest::new("manage")).await;
    env.settle(node, &[S::Manageable]).await;
    provision(env, node, ProvisionRequest::new("provide")).await;
    let n = env.settle(node, &[S::Available, S::CleanFailed]).await;
    assert_eq!(n.provision_state, S::Available, "{:?}", n.last_error);
    n
}

async fn set_image(env: &Env, node: NodeId, info: Value) {
    let mut n = env.c.get_node(&node.into()).await.unwrap();
    n.instance_info = info.as_object().unwrap().clone();
    env.c.update_node(n, false).await.unwrap();
}

fn image_with_gpt(path: &std::path::Path, mib: usize, seed: u64) -> Vec<u8> {
    make_raw(path, mib, seed);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    ironic_deploy_agent::image::partition::create_gpt(
        &f,
        (mib as u64) << 20,
        &[ironic_deploy_agent::image::partition::PartSpec {
            name: "root".into(),
            type_guid: ironic_deploy_agent::image::partition::LINUX_FS,
            size: (mib as u64 / 2) << 20,
        }],
    )
    .unwrap();
    std::fs::read(path).unwrap()
}

/// The image's bytes are on the disk (its first MiB holds the GPT, rewritten for
/// the bigger disk and the config drive partition: compare the rest).
fn assert_disk_holds(env: &Env, node: NodeId, img: &[u8], what: &str) {
    let disk = std::fs::read(env.rack.disk(node)).unwrap();
    assert!(
        disk[1 << 20..img.len()] == img[1 << 20..],
        "{what}: the disk's bytes differ from the image's"
    );
}

fn read_config_drive(env: &Env, node: NodeId) -> Value {
    let path = env.rack.disk(node);
    let f = std::fs::File::open(&path).unwrap();
    let t = ironic_deploy_agent::image::partition::read_table(&f).unwrap();
    let cd = t
        .partitions()
        .iter()
        .find(|p| p.name == "config-2")
        .expect("a config-2 partition")
        .clone();
    assert_eq!(
        cd.len,
        64 << 20,
        "IPA makes a 64 MiB config drive partition"
    );
    let disk = std::fs::read(&path).unwrap();
    let iso = env.dir.path().join(format!("{node}.iso"));
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
    serde_json::from_slice(&out.stdout).unwrap()
}

fn hb_from(n: &Node) -> Heartbeat {
    let mut hb = Heartbeat::new(n.internal("agent_url").unwrap().as_str().unwrap());
    hb.agent_version = Some("ironic-rs-agent test".into());
    hb
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_clean_and_redeploy_through_the_conductor() {
    let env = env().await;
    let img = image_with_gpt(&env.dir.path().join("img.raw"), 8, 21);
    tool(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "qcow2",
            env.dir.path().join("img.raw").to_str().unwrap(),
            env.dir.path().join("img.qcow2").to_str().unwrap(),
        ],
    );
    let q = std::fs::read(env.dir.path().join("img.qcow2")).unwrap();
    let img2 = image_with_gpt(&env.dir.path().join("img2.raw"), 8, 22);
    tool(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "qcow2",
            env.dir.path().join("img2.raw").to_str().unwrap(),
            env.dir.path().join("img2.qcow2").to_str().unwrap(),
        ],
    );
    let q2 = std::fs::read(env.dir.path().join("img2.qcow2")).unwrap();
    let srv = ImageServer::start(env.dir.path(), ServeOptions::new())
        .await
        .unwrap();
    let gated = gated_server(env.dir.path()).await;

    let node = env.node("52:54:00:e2:e0:01", 96).await;
    let u = node.uuid;
    // provide: automated cleaning boots the agent, which erases the old data
    make_available(&env, u).await;
    assert_eq!(env.rack.boots(u), 1, "cleaning booted the ramdisk once");
    let disk = std::fs::read(env.rack.disk(u)).unwrap();
    assert!(disk.iter().all(|&b| b == 0), "cleaning left data on disk");

    // deploy the qcow2, the download held after its first MiB
    set_image(
        &env,
        u,
        json!({"image_source": format!("{}/img.qcow2", gated.url), "image_disk_format": "qcow2",
               "image_os_hash_algo": "sha256", "image_os_hash_value": sha256_hex(&q)}),
    )
    .await;
    let mut events = env.c.subscribe();
    let mut req = ProvisionRequest::new("active");
    req.configdrive = Some(
        json!({"meta_data": {"uuid": u.to_string(), "hostname": "e2e-1"},
                                  "user_data": "#cloud-config\n"}),
    );
    provision(&env, u, req).await;
    // the agent came up, the first heartbeat moved on to write_image, which runs
    let n = env
        .wait_until(u, 60, "write_image running", |n| {
            n.provision_state == S::DeployWait
                && n.deploy_step.get("step") == Some(&json!("write_image"))
        })
        .await;
    assert!(n.internal("agent_secret_token").is_some());
    let seen = n.internal("agent_last_heartbeat").cloned();
    // a wrong token is refused, through the conductor and through the HTTP endpoint
    let e = env
        .c
        .heartbeat(&id(&n), &"x".repeat(43), hb_from(&n))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Invalid(m) if m.contains("agent token")),
        "{e:?}"
    );
    let r = reqwest::Client::new()
        .post(format!("{}/v1/heartbeat/{u}", env.api_url))
        .json(
            &json!({"callback_url": n.internal("agent_url"), "agent_token": "y".repeat(43),
                      "agent_version": "1"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // a second lookup does not reveal the token
    let mac = "52:54:00:e2:e0:01".parse().unwrap();
    let l = env.c.lookup(&[mac], None).await.unwrap();
    assert_eq!(l.agent_token, "******");
    // the agent's heartbeats (RUNNING command) keep the node waiting
    let n = env
        .wait_until(u, 30, "more heartbeats", |n| {
            n.internal("agent_last_heartbeat").cloned() != seen
        })
        .await;
    assert_eq!(n.provision_state, S::DeployWait);
    assert!(n.last_error.is_none(), "{:?}", n.last_error);
    // how far the write got, as `baremetal node show` shows it: the first MiB
    let n = env
        .wait_until(u, 30, "agent_progress recorded", |n| {
            n.internal("agent_progress").is_some()
        })
        .await;
    let p = n.internal("agent_progress").unwrap();
    assert_eq!(p["stage"], "writing image", "{p}");
    assert_eq!(p["step"], "write_image", "{p}");
    assert_eq!(p["total_bytes"], json!(q.len()), "{p}");
    assert_eq!(p["done_bytes"], json!(1 << 20), "{p}");
    let pct = p["percent"].as_f64().unwrap();
    assert!(pct > 0.0 && pct < 100.0, "{p}");
    // subscribers (the dashboard) heard of it without a state change
    let heard = loop {
        match events.try_recv() {
            Ok(ironic_core::conductor::NodeEvent::Updated { node }) if node == u => break true,
            Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break false,
        }
    };
    assert!(heard, "no Updated event for the recorded progress");
    gated.gate.send_replace(true);
    let n = env.settle(u, &[S::Active, S::DeployFailed]).await;
    assert_eq!(n.provision_state, S::Active, "{:?}", n.last_error);
    assert_eq!(n.power_state, Some(PowerState::On));
    assert!(
        n.internal("agent_secret_token").is_none(),
        "token wiped at the end"
    );
    assert!(
        n.internal("agent_progress").is_none(),
        "progress removed at the end"
    );
    // what the observer (the `ironic` binary's metrics) was told: the agent's
    // requests, the status polls, and the image write as a whole command
    {
        use ironic_core::observe::AgentCallKind::{Command, Request};
        let calls = env.seen.agent.lock().unwrap().clone();
        let has = |kind, cmd: &str| {
            calls
                .iter()
                .any(|c| c.kind == kind && c.command == cmd && c.node == u)
        };
        assert!(has(Request, "get_commands"), "{calls:?}");
        assert!(has(Request, "prepare_image"), "{calls:?}");
        assert!(has(Request, "execute_clean_step"), "{calls:?}");
        let write = calls
            .iter()
            .find(|c| c.kind == Command && c.command == "prepare_image")
            .unwrap_or_else(|| panic!("no finished prepare_image: {calls:?}"));
        assert!(write.error.is_none(), "{write:?}");
        // it ran at least while the download was held
        assert!(!write.duration.is_zero(), "{write:?}");
        let store = env.seen.store.lock().unwrap().clone();
        assert!(
            store.get("update_node").is_some_and(|n| *n > 0),
            "{store:?}"
        );
    }
    assert!(n.internal("root_uuid_or_disk_id").is_some());
    assert!(
        !env.rack.agent_running(u),
        "tear_down_agent powered the ramdisk off"
    );
    assert_disk_holds(&env, u, &img, "qcow2");
    assert_eq!(read_config_drive(&env, u)["hostname"], "e2e-1");

    // undeploy: cleaning by the agent (a new ramdisk boot, a new token) → available
    provision(&env, u, ProvisionRequest::new("deleted")).await;
    let n = env.settle(u, &[S::Available, S::CleanFailed]).await;
    assert_eq!(n.provision_state, S::Available, "{:?}", n.last_error);
    assert_eq!(env.rack.boots(u), 3);
    let disk = std::fs::read(env.rack.disk(u)).unwrap();
    assert!(disk.iter().all(|&b| b == 0), "undeploy did not clean");

    // redeploy from a raw image, then another qcow2 (rebuild)
    set_image(
        &env,
        u,
        json!({"image_source": srv.url("img2.raw"), "image_os_hash_algo": "sha512",
               "image_os_hash_value": hex::encode(<sha2::Sha512 as sha2::Digest>::digest(&img2))}),
    )
    .await;
    provision(&env, u, ProvisionRequest::new("active")).await;
    let n = env.settle(u, &[S::Active, S::DeployFailed]).await;
    assert_eq!(n.provision_state, S::Active, "{:?}", n.last_error);
    assert_disk_holds(&env, u, &img2, "raw");
    set_image(
        &env,
        u,
        json!({"image_source": srv.url("img2.qcow2"), "image_disk_format": "qcow2",
               "image_checksum": sha256_hex(&q2)}),
    )
    .await;
    provision(&env, u, ProvisionRequest::new("rebuild")).await;
    let n = env.settle(u, &[S::Active, S::DeployFailed]).await;
    assert_eq!(n.provision_state, S::Active, "{:?}", n.last_error);
    assert_disk_holds(&env, u, &img2, "qcow2 rebuild");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_images_fail_the_deploy_with_a_clear_last_error() {
    let env = env().await;
    let img = make_raw(&env.dir.path().join("img.raw"), 4, 31);
    let big = make_raw(&env.dir.path().join("big.raw"), 12, 32);
    let srv = ImageServer::start(env.dir.path(), ServeOptions::new())
        .await
        .unwrap();
    let cut = ImageServer::start(
        env.dir.path(),
        ServeOptions {
            truncate_at: Some(1 << 20),
            ranges: true,
        },
    )
    .await
    .unwrap();
    let node = env.node("52:54:00:e2:e0:02", 8).await;
    let u = node.uuid;
    make_available(&env, u).await;
    // Instance info that cannot deploy is refused before anything starts (Ironic's
    // deploy-interface validation): a clear client error, the node left available.
    let refused = [
        (json!({}), "instance_info.image_source"),
        (json!({"image_source": ""}), "instance_info.image_source"),
        (
            json!({"image_source": 7, "image_checksum": "x"}),
            "must be a string",
        ),
        (
            json!({"image_source": srv.url("img.raw")}),
            "image_checksum",
        ),
        (
            json!({"image_source": srv.url("img.raw"), "image_os_hash_algo": "sha256"}),
            "image_os_hash_value",
        ),
        (
            json!({"image_source": srv.url("img.raw"), "image_checksum": sha256_hex(&img),
                   "image_type": "floppy"}),
            "Invalid image_type",
        ),
        (
            json!({"image_source": "file:///img.raw", "image_checksum": sha256_hex(&img)}),
            "http(s) URL",
        ),
    ];
    for (info, want) in refused {
        set_image(&env, u, info.clone()).await;
        let e = env
            .c
            .provision(&u.into(), ProvisionRequest::new("active"))
            .await
            .expect_err(&format!("deploy with {info} must be refused"));
        assert!(
            matches!(&e, Error::Driver(d) if matches!(
                d.kind(),
                ErrorKind::MissingParameter | ErrorKind::InvalidParameter
            )),
            "{info}: {e:?}"
        );
        assert!(e.to_string().contains(want), "{info}: {e}");
        let n = env.c.get_node(&u.into()).await.unwrap();
        assert_eq!(n.provision_state, S::Available, "{info}");
        assert!(n.last_error.is_none(), "{info}: {:?}", n.last_error);
    }
    let cases = [
        (srv.url("img.raw"), sha256_hex(b"not the image"), "checksum"),
        (cut.url("img.raw"), sha256_hex(&img), "truncated"),
        (srv.url("big.raw"), sha256_hex(&big), "Device too small"),
    ];
    for (url, sum, want) in cases {
        set_image(&env, u, json!({"image_source": url, "image_checksum": sum})).await;
        provision(&env, u, ProvisionRequest::new("active")).await;
        let n = env.settle(u, &[S::Active, S::DeployFailed]).await;
        assert_eq!(n.provision_state, S::DeployFailed, "{want}");
        let err = n.last_error.clone().unwrap_or_default();
        assert!(
            err.contains(want) && err.contains("write_image"),
            "expected {want:?} in last_error {err:?}"
        );
        assert!(n.internal("agent_secret_token").is_none());
        // the disk is never reported good: no partition UUIDs were recorded
        assert!(n.internal("root_uuid_or_disk_id").is_none(), "{want}");
    }
    // a good image after the failures deploys, then undeploy cleans
    set_image(
        &env,
        u,
        json!({"image_source": srv.url("img.raw"), "image_checksum": sha256_hex(&img)}),
    )
    .await;
    provision(&env, u, ProvisionRequest::new("active")).await;
    let n = env.settle(u, &[S::Active, S::DeployFailed]).await;
    assert_eq!(n.provision_state, S::Active, "{:?}", n.last_error);
    let disk = std::fs::read(env.rack.disk(u)).unwrap();
    assert!(disk[..img.len()] == img[..]);
    provision(&env, u, ProvisionRequest::new("deleted")).await;
    let n = env.settle(u, &[S::Available, S::CleanFailed]).await;
    assert_eq!(n.provision_state, S::Available, "{:?}", n.last_error);
    assert!(
        std::fs::read(env.rack.disk(u))
            .unwrap()
            .iter()
            .all(|&b| b == 0)
    );
}

/// Partition images through the conductor, as Ironic's `configure_local_boot`
/// deploys them: `kernel` and `ramdisk` in `instance_info` make the image a
/// partition image, `root_gb` (a string, as the `baremetal` CLI sends it) its
/// root size, the node's `boot_mode` capability (or UEFI by default) the layout;
/// after the image is written the conductor asks the agent to install the boot
/// loader, and the disk boots in QEMU (SeaBIOS and OVMF) into the image's own
/// grub.cfg. Both nodes deploy at once; so do both machines boot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_images_get_a_boot_loader_and_boot_in_bios_and_uefi() {
    let env = env().await;
    let dir = env.dir.path().to_owned();
    let srv = ImageServer::start(&dir, ServeOptions::new()).await.unwrap();
    let mut nodes = Vec::new();
    for (i, mode) in ["bios", "uefi"].into_iter().enumerate() {
        // root_gb = 1 after the ESP (550 MiB, UEFI) or the 1 MiB gap (BIOS)
        let node = env.node(&format!("52:54:00:e2:e1:0{i}"), 1700).await;
        let u = node.uuid;
        let mut n = env.c.get_node(&u.into()).await.unwrap();
        // no automated cleaning: the agent would shred the 1.7 GiB disk
        n.automated_clean = Some(false);
        if mode == "bios" {
            n.properties
                .insert("capabilities".into(), json!("boot_mode:bios"));
        }
        env.c.update_node(n, false).await.unwrap();
        provision(&env, u, ProvisionRequest::new("manage")).await;
        env.settle(u, &[S::Manageable]).await;
        provision(&env, u, ProvisionRequest::new("provide")).await;
        env.settle(u, &[S::Available]).await;
        let fs_uuid = format!("5e1f0c2a-0000-4000-8000-00000000000{i}");
        let marker = format!("IRONIC-LOCAL-BOOT-{mode}-{:08x}", rand::random::<u32>());
        let img = ext4_image(
            &dir,
            &fs_uuid,
            &[
                ("/boot/grub/grub.cfg", &grub_cfg(&marker)),
                ("/etc/hostname", b"part\n"),
            ],
        );
        let data = std::fs::read(&img).unwrap();
        let name = img.file_name().unwrap().to_str().unwrap().to_owned();
        let mut ii = json!({"image_source": srv.url(&name),
            "image_os_hash_algo": "sha256", "image_os_hash_value": sha256_hex(&data),
            "kernel": srv.url("vmlinuz"), "ramdisk": srv.url("initrd")});
        // Bad input first: a partition image without its root size.
        set_image(&env, u, ii.clone()).await;
        let e = env
            .c
            .provision(&u.into(), ProvisionRequest::new("active"))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("root_gb"), "{e}");
        ii["root_gb"] = json!("1");
        set_image(&env, u, ii).await;
        nodes.push((u, mode, fs_uuid, marker));
    }
    for (u, ..) in &nodes {
        provision(&env, *u, ProvisionRequest::new("active")).await;
    }
    for (u, mode, fs_uuid, _) in &nodes {
        let n = env.settle(*u, &[S::Active, S::DeployFailed]).await;
        assert_eq!(n.provision_state, S::Active, "{mode}: {:?}", n.last_error);
        assert_eq!(n.internal("is_whole_disk_image"), Some(&json!(false)));
        assert_eq!(
            n.internal("root_uuid_or_disk_id"),
            Some(&json!(fs_uuid)),
            "{mode}"
        );
        let f = std::fs::File::open(env.rack.disk(*u)).unwrap();
        let table = ironic_deploy_agent::image::partition::read_table(&f).unwrap();
        let root = table.partitions().last().unwrap().clone();
        assert_eq!(root.len, 1 << 30, "{mode}: root_gb = 1: {table:?}");
        match *mode {
            "uefi" => assert!(
                matches!(
                    table,
                    ironic_deploy_agent::image::partition::Table::Gpt { .. }
                ) && table.partitions()[0].is_esp(),
                "{table:?}"
            ),
            _ => assert!(
                matches!(
                    table,
                    ironic_deploy_agent::image::partition::Table::Mbr { .. }
                ),
                "{table:?}"
            ),
        }
    }
    {
        use ironic_core::observe::AgentCallKind::Request;
        let calls = env.seen.agent.lock().unwrap().clone();
        for (u, mode, ..) in &nodes {
            assert!(
                calls.iter().any(|c| c.kind == Request
                    && c.command == "install_bootloader"
                    && c.node == *u
                    && c.error.is_none()),
                "{mode}: no install_bootloader: {calls:?}"
            );
        }
    }
    // Both disks boot their image's grub.cfg, at once.
    let boots: Vec<_> = nodes
        .iter()
        .map(|(u, mode, _, marker)| {
            let disk = env.rack.disk(*u);
            let uefi = *mode == "uefi";
            let marker = marker.clone();
            std::thread::spawn(move || boot_until(&disk, uefi, &marker))
        })
        .collect();
    for (b, (_, mode, _, marker)) in boots.into_iter().zip(&nodes) {
        let console = b
            .join()
            .unwrap_or_else(|_| panic!("{mode}: the disk did not boot"));
        assert!(console.contains(marker.as_str()), "{mode}");
    }
}
