//! `ironic-agent` under the real OpenStack Ironic 39 conductor (PyPI `ironic`,
//! in `.venv-ironic`, made by `scripts/setup-test-deps.sh`) with Ironic's
//! default configuration where it matters to the agent: `[agent] require_tls =
//! True`, `[deploy] default_boot_mode = uefi`, the `direct` deploy interface,
//! automated cleaning, `image_download_source = http`, ramdisk logs collected on
//! failure. Only what a deployment must set is set (API URL, paths, a noop
//! network, `fake-hardware` for power/boot/management), plus the poll interval
//! of the post-deploy power-off wait (1 s instead of 5 s; the count stays 6).
//!
//! The node is a `manual-management` node (fake power, noop management) that
//! boots with Ironic's `pxe` boot interface: Ironic renders the PXE/GRUB
//! configuration of the deploy ramdisk, and the test's "machine" runs an
//! `ironic-agent` process with the kernel command line Ironic wrote there
//! (`ipa-api-url`, ...; the MAC as BOOTIF) and a file as its disk while Ironic
//! has the node in a ramdisk state (`wait call-back`, `clean wait`, ...). It is
//! stopped when the node leaves those states, as a power-off would; the agent's
//! own `standby.power_off` exits the process.
//!
//! Software RAID (`raid_interface = agent`) needs md arrays of real disks, so
//! that machine is a QEMU ramdisk (Debian's kernel, busybox, the agent,
//! mdadm) with two virtio disks, booted with the same command line and
//! reaching Ironic on the host's loopback through QEMU's user network.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use ironic_deploy_agent::httpd::{ImageServer, ServeOptions};
use serde_json::{Value, json};

struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_some() {
            return;
        }
        // SIGTERM first: Ironic's master process takes its workers down with it
        let _ = Command::new("kill")
            .arg(self.0.id().to_string())
            .stderr(Stdio::null())
            .status();
        for _ in 0..50 {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn venv_bin(name: &str) -> PathBuf {
    let p = workspace().join(".venv-ironic/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: the real Ironic is needed by this test; run scripts/setup-test-deps.sh \
         (it installs PyPI ironic 39 into .venv-ironic)",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Ironic {
    _proc: Guard,
    url: String,
    dir: PathBuf,
    http: reqwest::Client,
}

impl Ironic {
    async fn start(dir: &Path) -> Ironic {
        Self::start_with(dir, "").await
    }

    /// Start Ironic with `extra` appended to its configuration (a later value
    /// of an option wins; sections may repeat).
    async fn start_with(dir: &Path, extra: &str) -> Ironic {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        for d in [
            "tmp",
            "certs",
            "deploy-logs",
            "locks",
            "tftpboot/master_images",
            "images",
            "master_images",
            "httpboot",
        ] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let d = dir.display();
        let conf = format!(
            "[DEFAULT]\n\
             auth_strategy = noauth\n\
             rpc_transport = none\n\
             enabled_hardware_types = manual-management\n\
             enabled_boot_interfaces = pxe\n\
             enabled_deploy_interfaces = direct\n\
             enabled_power_interfaces = fake\n\
             enabled_management_interfaces = noop\n\
             enabled_network_interfaces = noop\n\
             default_network_interface = noop\n\
             enabled_inspect_interfaces = no-inspect\n\
             host = agent-test-{pid}\n\
             log_file = {d}/ironic.log\n\
             tempdir = {d}/tmp\n\
             [api]\n\
             host_ip = 127.0.0.1\n\
             port = {port}\n\
             [service_catalog]\n\
             endpoint_override = {url}\n\
             [database]\n\
             connection = sqlite:///{d}/ironic.sqlite\n\
             [conductor]\n\
             heartbeat_timeout = 86400\n\
             [agent]\n\
             certificates_path = {d}/certs\n\
             deploy_logs_local_path = {d}/deploy-logs\n\
             post_deploy_get_power_state_retry_interval = 1\n\
             [dhcp]\n\
             dhcp_provider = none\n\
             [pxe]\n\
             tftp_root = {d}/tftpboot\n\
             tftp_master_path = {d}/tftpboot/master_images\n\
             images_path = {d}/images\n\
             instance_master_path = {d}/master_images\n\
             tftp_server = 127.0.0.1\n\
             [deploy]\n\
             http_root = {d}/httpboot\n\
             http_url = http://127.0.0.1:9/\n\
             [oslo_concurrency]\n\
             lock_path = {d}/locks\n\
             {extra}",
            pid = std::process::id(),
        );
        let cf = dir.join("ironic.conf");
        std::fs::write(&cf, conf).unwrap();
        let out = Command::new(venv_bin("ironic-dbsync"))
            .arg("--config-file")
            .arg(&cf)
            .arg("create_schema")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ironic-dbsync failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let child = Command::new(venv_bin("ironic"))
            .arg("--config-file")
            .arg(&cf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ironic = Ironic {
            _proc: Guard(child),
            url,
            dir: dir.to_owned(),
            http: reqwest::Client::new(),
        };
        // Ironic needs a while to start (more on a loaded machine)
        for _ in 0..600 {
            if let Ok(r) = ironic.http.get(&ironic.url).send().await
                && r.status().is_success()
            {
                return ironic;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("Ironic did not answer within 300 s; see {d}/ironic.log");
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}/v1{path}", self.url))
            .header("X-OpenStack-Ironic-API-Version", "1.115");
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn node(&self, uuid: &str) -> Value {
        let (s, v) = self
            .call(reqwest::Method::GET, &format!("/nodes/{uuid}"), None)
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }

    async fn provision(&self, uuid: &str, body: Value) {
        let (s, v) = self
            .call(
                reqwest::Method::PUT,
                &format!("/nodes/{uuid}/states/provision"),
                Some(body),
            )
            .await;
        assert_eq!(s, 202, "{v}");
    }

    /// The tail of Ironic's log and of the newest agent's log, for a failure
    /// message (the temporary directory is gone once the test ends).
    fn diagnostics(&self) -> String {
        fn tail(p: &Path, lines: usize) -> String {
            let s = std::fs::read_to_string(p).unwrap_or_default();
            let v: Vec<&str> = s.lines().collect();
            v[v.len().saturating_sub(lines)..].join("\n")
        }
        let mut out = format!(
            "--- ironic.log (tail)\n{}\n",
            tail(&self.dir.join("ironic.log"), 60)
        );
        let newest = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with("agent-") && n.ends_with(".log")
            })
            .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
        if let Some(e) = newest {
            out.push_str(&format!(
                "--- {} (tail)\n{}\n",
                e.file_name().to_string_lossy(),
                tail(&e.path(), 80)
            ));
        }
        out
    }

    /// Wait until the node is in one of `states` (and not moving to another;
    /// failed states keep their target).
    async fn settle(&self, uuid: &str, states: &[&str]) -> Value {
        for _ in 0..900 {
            let n = self.node(uuid).await;
            let st = n["provision_state"].as_str().unwrap_or("");
            if states.contains(&st)
                && (n["target_provision_state"].is_null() || st.ends_with("failed"))
            {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let n = self.node(uuid).await;
        panic!(
            "node never reached {states:?}: {} / {}; see {}/ironic.log\n{}",
            n["provision_state"],
            n["last_error"],
            self.dir.display(),
            self.diagnostics()
        );
    }
}

/// The machine: runs the agent while Ironic has the node in a ramdisk state.
struct Machine {
    stop: Arc<AtomicBool>,
    boots: Arc<std::sync::atomic::AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

const RAMDISK_STATES: &[&str] = &[
    "wait call-back",
    "clean wait",
    "service wait",
    "rescue wait",
];

impl Machine {
    /// The machine of node `uuid`: `boot(n, cmdline)` starts its `n`th ramdisk
    /// with the kernel command line Ironic's PXE configuration gives.
    fn start(
        ironic: &Ironic,
        uuid: &str,
        dir: &Path,
        boot: impl Fn(u32, &str) -> Child + Send + 'static,
    ) -> Machine {
        let stop = Arc::new(AtomicBool::new(false));
        let boots = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (url, uuid, dir) = (ironic.url.clone(), uuid.to_owned(), dir.to_owned());
        let http = ironic.http.clone();
        let (stop2, boots2) = (stop.clone(), boots.clone());
        let task = tokio::spawn(async move {
            let mut agent: Option<Guard> = None;
            // Whether Ironic has held a token for the running agent: once it is
            // wiped again, Ironic powered the machine off or rebooted it.
            let mut token_issued = false;
            while !stop2.load(Ordering::SeqCst) {
                let state = async {
                    let r = http
                        .get(format!("{url}/v1/nodes/{uuid}"))
                        .header("X-OpenStack-Ironic-API-Version", "1.115")
                        .send()
                        .await
                        .ok()?;
                    let v: Value = r.json().await.ok()?;
                    // A real machine boots the ramdisk only after Ironic powered it
                    // off or rebooted it, which wipes the previous agent's token. An
                    // agent started before that (its predecessor just exited while
                    // Ironic is still finishing the step) would look up, get no
                    // token and be refused for ever: wait for the wipe.
                    let old_token = !v["driver_internal_info"]["agent_secret_token"].is_null();
                    let st = v["provision_state"].as_str().map(str::to_owned)?;
                    Some((st, old_token))
                }
                .await;
                let (state, old_token) = match state {
                    Some((s, t)) => (Some(s), t),
                    None => (None, false),
                };
                if let Some(a) = &mut agent
                    && a.0.try_wait().ok().flatten().is_some()
                {
                    // the agent powered the machine off (standby.power_off)
                    agent = None;
                }
                if agent.is_some() && old_token {
                    token_issued = true;
                } else if agent.is_some() && token_issued && !old_token && state.is_some() {
                    // Ironic power-cycled the machine (fake power) between two polls,
                    // e.g. deploy failed -> deleting -> cleaning -> clean wait in
                    // 130 ms: the running ramdisk is gone, a new one boots below
                    agent = None;
                }
                if agent.is_none() {
                    token_issued = false;
                }
                let in_ramdisk = state
                    .as_deref()
                    .is_some_and(|s| RAMDISK_STATES.contains(&s));
                let cmdline = in_ramdisk.then(|| pxe_cmdline(&dir, &uuid)).flatten();
                if in_ramdisk
                    && agent.is_none()
                    && !old_token
                    && let Some(cmdline) = cmdline
                {
                    let n = boots2.fetch_add(1, Ordering::SeqCst) + 1;
                    let child = boot(n, &cmdline);
                    agent = Some(Guard(child));
                } else if !in_ramdisk
                    && state.is_some()
                    && agent.is_some()
                    && !matches!(
                        state.as_deref(),
                        Some("deploying" | "cleaning" | "deleting" | "servicing" | "rescuing")
                    )
                {
                    // Ironic powered the node off (fake power): so does the machine
                    agent = None;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        Machine { stop, boots, task }
    }

    async fn shutdown(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
    }
}

/// The `n`th boot of a machine that runs `ironic-agent` on this host with
/// `disk` (a file) as its disk.
fn agent_process(dir: &Path, n: u32, cmdline: &str, mac: &str, disk: &Path) -> Child {
    let cmdline_file = dir.join(format!("cmdline-{n}"));
    std::fs::write(&cmdline_file, cmdline).unwrap();
    let log = std::fs::File::create(dir.join(format!("agent-{n}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_ironic-agent"))
        .arg("--cmdline")
        .arg(&cmdline_file)
        .args([
            "--mac",
            mac,
            "--listen",
            "127.0.0.1:0",
            "--advertise-host",
            "127.0.0.1",
        ])
        .args([
            "--power-off",
            "exit",
            "--heartbeat-interval",
            "2",
            "--heartbeat-min-interval",
            "1",
        ])
        .arg("--root-device")
        .arg(disk)
        .arg("--state-dir")
        .arg(dir.join(format!("agent-state-{n}")))
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// The kernel command line of the deploy ramdisk in the PXE (BIOS) or GRUB
/// (UEFI) configuration Ironic's `pxe` boot interface wrote for the node.
fn pxe_cmdline(dir: &Path, uuid: &str) -> Option<String> {
    let cfg = std::fs::read_to_string(dir.join("tftpboot").join(uuid).join("config")).ok()?;
    let line = cfg.lines().find(|l| {
        l.contains("ipa-api-url") && l.contains("deploy_kernel")
            || l.trim_start().starts_with("append") && l.contains("ipa-api-url")
    })?;
    // drop the loader's own words (`linux /uuid/deploy_kernel`, `append initrd=...`)
    let words: Vec<&str> = line
        .split_whitespace()
        .filter(|w| w.contains('=') && !w.starts_with("initrd="))
        .collect();
    Some(words.join(" "))
}

/// A GPT whole-disk image of `mib` MiB with an ESP holding `\EFI\BOOT\BOOTX64.EFI`
/// and a root partition of random data, made with sfdisk, mkfs.vfat and mtools.
fn uefi_image(dir: &Path, name: &str, mib: u64) -> Vec<u8> {
    let img = dir.join(name);
    make_raw(&img, mib as usize, 31);
    let mut c = Command::new("sfdisk")
        .args(["-q", img.to_str().unwrap()])
        .stdin(Stdio::piped())
        .spawn()
        .expect("sfdisk is needed: apt-get install fdisk");
    {
        use std::io::Write;
        c.stdin
            .take()
            .unwrap()
            .write_all(b"label: gpt\nstart=2048, size=40960, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=43008, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n")
            .unwrap();
    }
    assert!(c.wait().unwrap().success());
    let esp = dir.join(format!("{name}.esp"));
    let _ = std::fs::remove_file(&esp);
    Command::new("truncate")
        .args(["-s", "20M"])
        .arg(&esp)
        .status()
        .unwrap();
    tool("mkfs.vfat", &["-n", "EFI", esp.to_str().unwrap()]);
    tool(
        "mmd",
        &["-i", esp.to_str().unwrap(), "::/EFI", "::/EFI/BOOT"],
    );
    std::fs::write(dir.join("loader.efi"), b"MZ a UEFI loader").unwrap();
    tool(
        "mcopy",
        &[
            "-i",
            esp.to_str().unwrap(),
            dir.join("loader.efi").to_str().unwrap(),
            "::/EFI/BOOT/BOOTX64.EFI",
        ],
    );
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
        f.write_all_at(&std::fs::read(&esp).unwrap(), 1 << 20)
            .unwrap();
    }
    std::fs::read(&img).unwrap()
}

/// An ext4 filesystem image (a partition image) with the given UUID (a
/// grub.cfg and a motd), written as `dir/name` for the image server.
fn partition_image(dir: &Path, name: &str, uuid: &str) -> Vec<u8> {
    let img = ext4_image(
        dir,
        uuid,
        &[
            ("boot/grub/grub.cfg", b"echo partition image\n"),
            ("etc/motd", b"the image's motd\n"),
        ],
    );
    std::fs::rename(&img, dir.join(name)).unwrap();
    std::fs::read(dir.join(name)).unwrap()
}

fn config_drive_meta(disk: &Path, dir: &Path) -> Value {
    let f = std::fs::File::open(disk).unwrap();
    let t = ironic_deploy_agent::image::partition::read_table(&f).unwrap();
    let cd = t
        .partitions()
        .iter()
        .find(|p| p.name == "config-2")
        .expect("a config-2 partition")
        .clone();
    assert_eq!(cd.len, 64 << 20, "IPA's 64 MiB config drive partition");
    let bytes = std::fs::read(disk).unwrap();
    let iso = dir.join("cd.iso");
    std::fs::write(
        &iso,
        &bytes[cd.start as usize..(cd.start + cd.len) as usize],
    )
    .unwrap();
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

fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn all_zero(disk: &Path) -> bool {
    std::fs::read(disk).unwrap().iter().all(|&b| b == 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ironic_39_deploys_and_cleans_through_ironic_agent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ironic = Ironic::start(d).await;
    let srv = ImageServer::start(d, ServeOptions::new()).await.unwrap();
    let disk = make_disk(&d.join("disk"), 2 << 30);
    // the deploy kernel and ramdisk Ironic's pxe boot interface caches and links
    let (kernel, initrd) = (d.join("deploy.kernel"), d.join("deploy.initramfs"));
    std::fs::write(&kernel, b"kernel").unwrap();
    std::fs::write(&initrd, b"initramfs").unwrap();
    let mac = "52:54:00:1b:00:01";
    let (s, node) = ironic
        .call(
            reqwest::Method::POST,
            "/nodes",
            Some(json!({"name": "agent-node", "driver": "manual-management",
                "boot_interface": "pxe", "deploy_interface": "direct", "power_interface": "fake",
                "management_interface": "noop", "network_interface": "noop",
                "inspect_interface": "no-inspect",
                "driver_info": {"deploy_kernel": srv.url("deploy.kernel"),
                                "deploy_ramdisk": srv.url("deploy.initramfs")},
                "properties": {"cpu_arch": "x86_64", "memory_mb": 4096, "local_gb": 2}})),
        )
        .await;
    assert_eq!(s, 201, "{node}");
    let uuid = node["uuid"].as_str().unwrap().to_owned();
    let (s, v) = ironic
        .call(
            reqwest::Method::POST,
            "/ports",
            Some(json!({"node_uuid": uuid, "address": mac})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let machine = Machine::start(&ironic, &uuid, d, {
        let (d, disk, mac) = (d.to_owned(), disk.clone(), mac.to_owned());
        move |n, cmdline| agent_process(&d, n, cmdline, &mac, &disk)
    });

    // manage + provide: automated cleaning (erase_devices) through the agent, over TLS
    ironic.provision(&uuid, json!({"target": "manage"})).await;
    ironic.settle(&uuid, &["manageable"]).await;
    ironic.provision(&uuid, json!({"target": "provide"})).await;
    let n = ironic.settle(&uuid, &["available", "clean failed"]).await;
    assert_eq!(n["provision_state"], "available", "{}", n["last_error"]);
    assert!(all_zero(&disk), "automated cleaning erased the disk");
    let pinned = std::fs::read_dir(d.join("certs")).unwrap().count();
    assert!(
        pinned >= 1,
        "Ironic pinned the agent's auto-TLS certificate"
    );

    // whole-disk raw image with an ESP, UEFI (Ironic's default boot mode), config drive
    let img = uefi_image(d, "uefi.raw", 48);
    let set_image = |name: &str, fmt: &str, data: &[u8], extra: Value| {
        let mut ii = json!({"image_source": srv.url(name), "image_disk_format": fmt,
            "image_os_hash_algo": "sha256", "image_os_hash_value": sha256_hex(data)});
        for (k, v) in extra.as_object().unwrap() {
            ii[k] = v.clone();
        }
        json!([{"op": "add", "path": "/instance_info", "value": ii}])
    };
    let (s, v) = ironic
        .call(
            reqwest::Method::PATCH,
            &format!("/nodes/{uuid}"),
            Some(set_image("uefi.raw", "raw", &img, json!({}))),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    ironic
        .provision(
            &uuid,
            json!({"target": "active", "configdrive": {"meta_data": {"hostname": "agent-node"},
                   "user_data": "#cloud-config\n"}}),
        )
        .await;
    let n = ironic.settle(&uuid, &["active", "deploy failed"]).await;
    assert_eq!(n["provision_state"], "active", "{}", n["last_error"]);
    assert_eq!(
        n["driver_internal_info"]["root_uuid_or_disk_id"],
        "0x00000000"
    );
    let bytes = std::fs::read(&disk).unwrap();
    assert!(
        bytes[1 << 20..img.len() - (1 << 20)] == img[1 << 20..img.len() - (1 << 20)],
        "the image is on the disk"
    );
    assert_eq!(config_drive_meta(&disk, d)["hostname"], "agent-node");

    // undeploy: automated cleaning again
    ironic.provision(&uuid, json!({"target": "deleted"})).await;
    let n = ironic.settle(&uuid, &["available", "clean failed"]).await;
    assert_eq!(n["provision_state"], "available", "{}", n["last_error"]);
    assert!(all_zero(&disk));

    // qcow2 in BIOS mode (a whole-disk image: Ironic does not call install_bootloader)
    let raw = d.join("bios.raw");
    let data = make_raw(&raw, 24, 32);
    let _ = data;
    tool(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "qcow2",
            raw.to_str().unwrap(),
            d.join("bios.qcow2").to_str().unwrap(),
        ],
    );
    let q = std::fs::read(d.join("bios.qcow2")).unwrap();
    let raw_bytes = std::fs::read(&raw).unwrap();
    let (s, v) = ironic
        .call(
            reqwest::Method::PATCH,
            &format!("/nodes/{uuid}"),
            Some(set_image(
                "bios.qcow2",
                "qcow2",
                &q,
                json!({"capabilities": {"boot_mode": "bios"}}),
            )),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    ironic.provision(&uuid, json!({"target": "active"})).await;
    let n = ironic.settle(&uuid, &["active", "deploy failed"]).await;
    assert_eq!(n["provision_state"], "active", "{}", n["last_error"]);
    let bytes = std::fs::read(&disk).unwrap();
    assert!(
        bytes[..raw_bytes.len()] == raw_bytes[..],
        "qcow2 converted onto the disk"
    );
    ironic.provision(&uuid, json!({"target": "deleted"})).await;
    ironic.settle(&uuid, &["available"]).await;

    // partition images: UEFI (default) and BIOS; the agent lays out the disk and
    // installs the boot loader Ironic asks for
    for (mode, fs_uuid) in [
        ("uefi", "3b1f1d8e-6c55-4b0f-9d42-0d7b9f0e1a11"),
        ("bios", "9e0c5a7d-2f44-4d1b-8e3a-7c6b5a493822"),
    ] {
        let name = format!("part-{mode}.img");
        let part = partition_image(d, &name, fs_uuid);
        let (s, v) = ironic
            .call(
                reqwest::Method::PATCH,
                &format!("/nodes/{uuid}"),
                Some(set_image(
                    &name,
                    "raw",
                    &part,
                    json!({"image_type": "partition", "root_gb": 1,
                    "capabilities": {"boot_mode": mode}}),
                )),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        // UEFI: files injected by a deploy step named in the request (Ironic
        // 1.69's deploy_steps), from the node's properties and the step's args,
        // one of them fetched from a URL formatted with the node's UUID
        let body = if mode == "uefi" {
            std::fs::write(d.join(format!("inject-{uuid}.txt")), b"from a URL\n").unwrap();
            let (s, v) = ironic
                .call(
                    reqwest::Method::PATCH,
                    &format!("/nodes/{uuid}"),
                    Some(
                        json!([{"op": "add", "path": "/properties/inject_files", "value": [
                        {"path": "/etc/hostname", "content": b64(b"agent-node\n")}]}]),
                    ),
                )
                .await;
            assert_eq!(s, 200, "{v}");
            json!({"target": "active", "deploy_steps": [{"interface": "deploy",
            "step": "inject_files", "priority": 55, "args": {"files": [
                {"path": "/etc/ironic/injected.conf", "content": b64(b"key = value\n"),
                 "mode": 0o600, "dirmode": 0o700},
                {"path": "/etc/motd", "deleted": true},
                {"path": "/etc/from-url",
                 "content": format!("{}/inject-{{node[uuid]}}.txt", srv.url("").trim_end_matches('/'))},
                {"path": "/EFI/ironic/note.txt", "partition": "1", "content": b64(b"on the ESP\n")}
            ]}}]})
        } else {
            json!({"target": "active"})
        };
        ironic.provision(&uuid, body).await;
        let n = ironic.settle(&uuid, &["active", "deploy failed"]).await;
        assert_eq!(
            n["provision_state"], "active",
            "{mode}: {}",
            n["last_error"]
        );
        assert_eq!(n["driver_internal_info"]["root_uuid_or_disk_id"], fs_uuid);
        let f = std::fs::File::open(&disk).unwrap();
        let table = ironic_deploy_agent::image::partition::read_table(&f).unwrap();
        let bytes = std::fs::read(&disk).unwrap();
        if mode == "uefi" {
            let esp = table
                .partitions()
                .iter()
                .find(|p| p.is_esp())
                .expect("an ESP");
            let fat = ironic_deploy_agent::image::esp::open(&f, esp).unwrap();
            let loaders = ironic_deploy_agent::image::esp::find_loaders(&fat).unwrap();
            assert_eq!(loaders[0].path, "\\EFI\\BOOT\\BOOTX64.EFI", "{loaders:?}");
        } else {
            assert!(matches!(
                table,
                ironic_deploy_agent::image::partition::Table::Mbr { .. }
            ));
            // GRUB's boot code is in the MBR (its "GRUB " message string)
            assert!(
                bytes[..440].windows(5).any(|w| w == b"GRUB "),
                "GRUB boot code in the MBR"
            );
        }
        let root = table.partitions().last().unwrap();
        if mode == "uefi" {
            // read back with e2fsprogs and mtools, not with the agent's code
            let target = format!("{}?offset={}", disk.display(), root.start);
            let cat = |p: &str| {
                String::from_utf8_lossy(
                    &tool("debugfs", &["-R", &format!("cat {p}"), &target]).stdout,
                )
                .into_owned()
            };
            assert_eq!(cat("/etc/hostname"), "agent-node\n");
            assert_eq!(cat("/etc/ironic/injected.conf"), "key = value\n");
            assert_eq!(cat("/etc/from-url"), "from a URL\n");
            let st = tool(
                "debugfs",
                &["-R", "stat /etc/ironic/injected.conf", &target],
            );
            assert!(String::from_utf8_lossy(&st.stdout).contains("Mode:  0600"));
            let motd = Command::new("debugfs")
                .args(["-R", "stat /etc/motd", &target])
                .output()
                .unwrap();
            assert!(String::from_utf8_lossy(&motd.stderr).contains("File not found"));
            let esp = &table.partitions()[0];
            let note = tool(
                "mtype",
                &[
                    "-i",
                    &format!("{}@@{}", disk.display(), esp.start),
                    "::/EFI/ironic/note.txt",
                ],
            );
            assert_eq!(String::from_utf8_lossy(&note.stdout), "on the ESP\n");
        } else {
            assert!(bytes[root.start as usize..root.start as usize + part.len()] == part[..]);
        }
        ironic.provision(&uuid, json!({"target": "deleted"})).await;
        ironic.settle(&uuid, &["available"]).await;
    }

    // a wrong checksum fails the deploy with the agent's message; Ironic collects
    // the ramdisk logs ([agent] deploy_logs_collect = on_failure)
    let mut bad = set_image("uefi.raw", "raw", &img, json!({}));
    bad[0]["value"]["image_os_hash_value"] = json!("0".repeat(64));
    let (s, v) = ironic
        .call(reqwest::Method::PATCH, &format!("/nodes/{uuid}"), Some(bad))
        .await;
    assert_eq!(s, 200, "{v}");
    ironic.provision(&uuid, json!({"target": "active"})).await;
    let mut n = ironic.settle(&uuid, &["deploy failed", "active"]).await;
    assert_eq!(n["provision_state"], "deploy failed");
    // Ironic's set_failed_state saves `deploy failed` with last_error, then powers
    // the machine off (node_power_action saves last_error = None on success) and
    // only then writes last_error again: wait out that window.
    for _ in 0..120 {
        if n["last_error"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        n = ironic.node(&uuid).await;
    }
    let err = n["last_error"]
        .as_str()
        .expect("last_error after a failed deploy");
    assert!(err.to_lowercase().contains("checksum"), "{err}");
    let logs: Vec<_> = std::fs::read_dir(d.join("deploy-logs"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(logs.len(), 1, "one ramdisk log archive");
    let listing = Command::new("tar")
        .arg("tzf")
        .arg(logs[0].path())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for f in ["journal", "dmesg", "lsblk", "cmdline", "commands.json"] {
        assert!(
            listing.lines().any(|l| l == f),
            "{f} in the ramdisk logs: {listing}"
        );
    }
    ironic.provision(&uuid, json!({"target": "deleted"})).await;
    ironic.settle(&uuid, &["available"]).await;

    // manual cleaning with a step of the agent
    ironic.provision(&uuid, json!({"target": "manage"})).await;
    ironic.settle(&uuid, &["manageable"]).await;
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
        f.write_all_at(&[0xAB; 4096], 0).unwrap();
    }
    // the burn-in settings of the node, as IPA reads them from driver_info
    let (s, v) = ironic
        .call(
            reqwest::Method::PATCH,
            &format!("/nodes/{uuid}"),
            Some(
                json!([{"op": "add", "path": "/driver_info/agent_burnin_cpu_timeout", "value": 1},
                {"op": "add", "path": "/driver_info/agent_burnin_vm_timeout", "value": 1},
                {"op": "add", "path": "/driver_info/agent_burnin_vm_vm", "value": 1},
                {"op": "add", "path": "/driver_info/agent_burnin_vm_vm-bytes", "value": "16M"},
                {"op": "add", "path": "/driver_info/agent_burnin_fio_disk_loops", "value": 1},
                {"op": "add", "path": "/driver_info/agent_burnin_fio_disk_runtime", "value": 1}]),
            ),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let step = |name: &str| json!({"interface": "deploy", "step": name});
    ironic
        .provision(
            &uuid,
            json!({"target": "clean", "clean_steps": [step("burnin_cpu"), step("burnin_memory"),
                step("burnin_disk"), step("erase_pstore"), step("erase_devices_express"),
                step("erase_devices_metadata")]}),
        )
        .await;
    let n = ironic.settle(&uuid, &["manageable", "clean failed"]).await;
    assert_eq!(n["provision_state"], "manageable", "{}", n["last_error"]);
    // a step whose tool the ramdisk lacks fails the cleaning with its reason
    ironic
        .provision(
            &uuid,
            json!({"target": "clean", "clean_steps": [step("burnin_gpu")]}),
        )
        .await;
    let n = ironic.settle(&uuid, &["clean failed", "manageable"]).await;
    assert_eq!(n["provision_state"], "clean failed");
    let err = n["last_error"].as_str().unwrap();
    assert!(err.contains("gpu_burn"), "{err}");
    assert!(
        std::fs::read(&disk).unwrap()[..4096]
            .iter()
            .all(|&b| b == 0),
        "metadata erased"
    );
    assert!(
        machine.boots.load(Ordering::SeqCst) >= 9,
        "the agent booted for every ramdisk phase"
    );
    machine.shutdown().await;
}

/// The `n`th boot of a machine that runs `ironic-agent` in a QEMU ramdisk
/// (Debian's kernel, busybox, mdadm, GRUB for BIOS) with `disks` as its virtio
/// disks, the NIC `mac` on QEMU's user network: Ironic's API on this host's
/// loopback is `10.0.2.2` there, and the agent's port 9999 is forwarded to
/// `127.0.0.1:<port>`, which it advertises (with its auto-TLS certificate).
/// `forward`: ports of the host's loopback that the VM reaches as its own
/// `127.0.0.1` too (URLs that Ironic also checks from the host).
#[allow(clippy::too_many_arguments)]
fn agent_vm(
    dir: &Path,
    n: u32,
    cmdline: &str,
    mac: &str,
    disks: &[PathBuf],
    kernel: &Path,
    initrd: &Path,
    forward: u16,
) -> Child {
    let port = free_port();
    let cmdline = format!(
        "{} console=ttyS0 panic=-1 no_timer_check ipa-advertise-host=127.0.0.1 \
         ipa-advertise-port={port} test-forward-ports={forward}",
        cmdline.replace("://127.0.0.1:", "://10.0.2.2:")
    );
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-accel", "tcg", "-machine", "pc", "-cpu", "max", "-m", "768",
    ])
    .args(["-smp", "1", "-display", "none", "-no-reboot", "-nodefaults"])
    .arg("-kernel")
    .arg(kernel.join("vmlinuz"))
    .arg("-initrd")
    .arg(initrd)
    .arg("-append")
    .arg(cmdline)
    .arg("-serial")
    .arg(format!(
        "file:{}",
        dir.join(format!("agent-{n}.log")).display()
    ))
    .arg("-netdev")
    .arg(format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:9999"))
    .arg("-device")
    .arg(format!("virtio-net-pci,netdev=n0,mac={mac}"));
    for d in disks {
        cmd.arg("-drive")
            .arg(format!("file={},format=raw,if=virtio", d.display()));
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-system-x86_64 is needed: apt-get install qemu-system-x86")
}

/// Ironic 39's agent RAID interface (`raid_interface = agent`) through
/// ironic-agent in a QEMU ramdisk with two virtio disks: a RAID-1 root volume
/// from `target_raid_config` in manual cleaning (`delete_configuration`, then
/// `create_configuration`; Ironic records `raid_config`), automated cleaning
/// that leaves the arrays, a whole-disk image deployed onto the RAID root in
/// BIOS mode (Ironic sends `install_bootloader` with the image's
/// `rootfs_uuid` for software RAID: GRUB goes on both disks, which then boot
/// in SeaBIOS each alone), and `delete_configuration` in manual cleaning after
/// the undeploy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ironic_39_builds_software_raid_through_ironic_agent() {
    use common::vm;
    vm::need("qemu-system-x86_64", "qemu-system-x86");
    vm::need("mdadm", "mdadm");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let kernel = vm::kernel();
    let initrd = vm::agent_initramfs(&kernel, d);
    // Ironic caches the file:// image and serves it from http_root at
    // http_url (it checks that URL itself; the VM forwards its own
    // 127.0.0.1:<port> to the host's loopback, 10.0.2.2 there); the
    // agent heartbeats every 3-6 s (a third to a half of the timeout Ironic
    // gives at lookup; the host-process machine passes --heartbeat-interval)
    std::fs::create_dir_all(d.join("httpboot")).unwrap();
    let http = ImageServer::start(d.join("httpboot"), ServeOptions::new())
        .await
        .unwrap();
    let ironic = Ironic::start_with(
        d,
        &format!(
            "[DEFAULT]\n\
             enabled_raid_interfaces = agent,no-raid\n\
             default_raid_interface = no-raid\n\
             [deploy]\n\
             http_url = http://127.0.0.1:{}/\n\
             erase_devices_priority = 0\n\
             [conductor]\n\
             file_url_allowed_paths = {}\n\
             [api]\n\
             ramdisk_heartbeat_timeout = 10\n",
            http.addr().port(),
            d.display()
        ),
    )
    .await;
    let srv = ImageServer::start(d, ServeOptions::new()).await.unwrap();
    std::fs::write(d.join("deploy.kernel"), b"kernel").unwrap();
    std::fs::write(d.join("deploy.initramfs"), b"initramfs").unwrap();
    let disks: Vec<PathBuf> = (0..2)
        .map(|i| make_disk(&d.join(format!("disk{i}.raw")), 2 << 30))
        .collect();
    let mac = "52:54:00:1b:0d:01";
    let (s, node) = ironic
        .call(
            reqwest::Method::POST,
            "/nodes",
            Some(json!({"name": "raid-node", "driver": "manual-management",
                "boot_interface": "pxe", "deploy_interface": "direct", "power_interface": "fake",
                "management_interface": "noop", "network_interface": "noop",
                "inspect_interface": "no-inspect", "raid_interface": "agent",
                "driver_info": {"deploy_kernel": srv.url("deploy.kernel"),
                                "deploy_ramdisk": srv.url("deploy.initramfs")},
                "properties": {"cpu_arch": "x86_64", "memory_mb": 768, "local_gb": 2,
                               "capabilities": "boot_mode:bios"}})),
        )
        .await;
    assert_eq!(s, 201, "{node}");
    let uuid = node["uuid"].as_str().unwrap().to_owned();
    let (s, v) = ironic
        .call(
            reqwest::Method::POST,
            "/ports",
            Some(json!({"node_uuid": uuid, "address": mac})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let config = json!({"logical_disks": [{"size_gb": 1, "raid_level": "1",
        "controller": "software", "is_root_volume": true}]});
    let (s, v) = ironic
        .call(
            reqwest::Method::PUT,
            &format!("/nodes/{uuid}/states/raid"),
            Some(config.clone()),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let machine = Machine::start(&ironic, &uuid, d, {
        let (d, disks, kernel, initrd) =
            (d.to_owned(), disks.clone(), kernel.clone(), initrd.clone());
        let forward = http.addr().port();
        move |n, cmdline| agent_vm(&d, n, cmdline, mac, &disks, &kernel, &initrd, forward)
    });

    // manual cleaning builds the array, Ironic records it
    ironic.provision(&uuid, json!({"target": "manage"})).await;
    ironic.settle(&uuid, &["manageable"]).await;
    ironic
        .provision(
            &uuid,
            json!({"target": "clean", "clean_steps": [
                {"interface": "raid", "step": "delete_configuration"},
                {"interface": "raid", "step": "create_configuration"}]}),
        )
        .await;
    let n = ironic.settle(&uuid, &["manageable", "clean failed"]).await;
    assert_eq!(
        n["provision_state"],
        "manageable",
        "{}\n{}",
        n["last_error"],
        ironic.diagnostics()
    );
    let lds = n["raid_config"]["logical_disks"].as_array().unwrap();
    assert_eq!(lds.len(), 1, "{}", n["raid_config"]);
    assert_eq!(lds[0]["raid_level"], "1");
    assert_eq!(lds[0]["controller"], "software");
    for disk in &disks {
        let parts = vm::partitions(disk);
        assert_eq!(parts.len(), 1, "{parts:?}");
        let f = std::fs::File::open(disk).unwrap();
        let (_, name) = vm::md_superblock(&f, parts[0].0 + 4096)
            .unwrap_or_else(|| panic!("no md superblock on {}", disk.display()));
        assert!(!name.is_empty());
    }

    // provide: automated cleaning (erase_devices_metadata) keeps the RAID members
    ironic.provision(&uuid, json!({"target": "provide"})).await;
    let n = ironic.settle(&uuid, &["available", "clean failed"]).await;
    assert_eq!(
        n["provision_state"],
        "available",
        "{}\n{}",
        n["last_error"],
        ironic.diagnostics()
    );

    // deploy a whole-disk image onto the RAID-1 root in BIOS mode (image_type
    // given: without it Ironic 39 asks whether a file:// source is a path and
    // fails with a 500, "'str' object has no attribute 'url'")
    let img = vm::bios_image(d);
    std::fs::write(d.join("raid-image.raw"), &img).unwrap();
    let (s, v) = ironic
        .call(
            reqwest::Method::PATCH,
            &format!("/nodes/{uuid}"),
            Some(json!([{"op": "add", "path": "/instance_info", "value": {
                "image_source": format!("file://{}", d.join("raid-image.raw").display()),
                "image_disk_format": "raw", "image_os_hash_algo": "sha256",
                "image_os_hash_value": sha256_hex(&img),
                "image_rootfs_uuid": vm::ROOTFS_UUID, "image_type": "whole-disk",
                "capabilities": {"boot_mode": "bios"}}}])),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    ironic.provision(&uuid, json!({"target": "active"})).await;
    let n = ironic.settle(&uuid, &["active", "deploy failed"]).await;
    assert_eq!(
        n["provision_state"],
        "active",
        "{}\n{}",
        n["last_error"],
        ironic.diagnostics()
    );
    for disk in &disks {
        let parts = vm::partitions(disk);
        let f = std::fs::File::open(disk).unwrap();
        let (data_offset, _) = vm::md_superblock(&f, parts[0].0 + 4096).unwrap();
        let mut got = vec![0u8; img.len()];
        use std::os::unix::fs::FileExt;
        f.read_exact_at(&mut got, parts[0].0 + data_offset).unwrap();
        assert!(
            got[1 << 20..] == img[1 << 20..],
            "{} mirrors the image",
            disk.display()
        );
    }
    // GRUB on each disk: either one alone boots the image's grub.cfg
    let boot_dir = d.join("boot");
    std::fs::create_dir_all(&boot_dir).unwrap();
    vm::boot_disks(&disks[..1], &boot_dir, vm::BIOS_MARKER, false);
    vm::boot_disks(&disks[1..], &boot_dir, vm::BIOS_MARKER, false);

    // undeploy, then manual cleaning deletes the array
    ironic.provision(&uuid, json!({"target": "deleted"})).await;
    let n = ironic.settle(&uuid, &["available", "clean failed"]).await;
    assert_eq!(n["provision_state"], "available", "{}", n["last_error"]);
    ironic.provision(&uuid, json!({"target": "manage"})).await;
    ironic.settle(&uuid, &["manageable"]).await;
    ironic
        .provision(
            &uuid,
            json!({"target": "clean", "clean_steps": [
                {"interface": "raid", "step": "delete_configuration"}]}),
        )
        .await;
    let n = ironic.settle(&uuid, &["manageable", "clean failed"]).await;
    assert_eq!(
        n["provision_state"],
        "manageable",
        "{}\n{}",
        n["last_error"],
        ironic.diagnostics()
    );
    assert_eq!(
        n["raid_config"],
        json!({}),
        "Ironic's post-delete hook clears raid_config"
    );
    for disk in &disks {
        assert!(
            vm::partitions(disk).is_empty(),
            "{} still has partitions",
            disk.display()
        );
    }
    machine.shutdown().await;
}
