//! `ironic serve` on a (virtual) rack of UEFI machines, as the README's "Deploy a
//! real server" tells an operator: the `ironic` binary runs as a subprocess with
//! the README's `/etc/ironic/ironic.toml` (addresses, interface and paths
//! replaced for the test's network namespace; TCG's `no_timer_check` given as
//! `IRONIC__BOOT__KERNEL_APPEND_PARAMS`), serving DHCP, TFTP and HTTP itself,
//! with the deploy ramdisk made by `ironic ramdisk build` as the README runs it.
//!
//! Four QEMU machines, three with OVMF (UEFI) firmware and one with SeaBIOS,
//! deployed at the same time through the API with HTTP basic auth:
//! * behind the lab's Redfish simulator, `ipxe` boot: a GPT whole-disk image
//!   whose EFI system partition holds a GRUB that prints a marker; after the
//!   deploy the agent adds the UEFI boot entry, the machine boots the image from
//!   its disk; undeploy cleans it in the ramdisk;
//! * behind OpenIPMI's `ipmi_sim`, `pxe` boot (TFTP): a partition image (`kernel`,
//!   `ramdisk`, `root_gb` in `instance_info`), laid out with an ESP; the agent
//!   installs GRUB from the ramdisk, the machine boots the image's own grub.cfg;
//! * behind the Redfish simulator, `redfish-virtual-media` boot: `ironic serve`
//!   builds the node's ISO (its kernel parameters: the API URL, BOOTIF, the
//!   console), the simulator's InsertMedia downloads it and the machine boots it
//!   as its CD-ROM (no network boot: the agent finds the conductor from the ISO's
//!   kernel command line); the node has `network_data` with a static address
//!   outside the DHCP pool, which the ISO carries (`openstack/latest/network_data.json`)
//!   and the ramdisk configures instead of DHCP: the agent calls back from that
//!   address; cleaned, deployed with a GPT whole-disk image, booted from its
//!   disk, undeployed;
//! * behind the Redfish simulator, legacy BIOS (`boot_mode:bios`), `pxe` boot
//!   (SeaBIOS, the NIC's PXE ROM, `undionly.kpxe` over TFTP): a partition image
//!   laid out with an MBR; the agent installs GRUB for BIOS from the ramdisk, the
//!   machine boots the image's own grub.cfg; undeployed.
//!
//! Each machine's deploy is timed: deploy request → power-on → the agent's first
//! heartbeat (`agent_url` in `driver_internal_info`) → `active`.
//!
//! Needs root, QEMU, OVMF, iPXE, OpenIPMI, busybox-static, the ramdisk tools'
//! packages, mtools, dosfstools and apache2-utils; a missing one fails the test
//! with the package to install.

mod e2e_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e_support::api::Api;
use e2e_support::ipmi_bmc::{self, IpmiBmc};
use e2e_support::netns::{BRIDGE, LabNet, SERVER_IP};
use e2e_support::qemu::{QemuMachine, VmSpec, clean};
use e2e_support::{ChildGuard, need_file, ramdisk, run, target_dir, tool};
use ironic_core::Secret;
use ironic_standalone::lab::RedfishSim;
use ironic_standalone::lab::model::{BootMode, BootSource, ServerSpec, SimServer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const API_PORT: u16 = 6385;
const IPMI_PORT: u16 = 623;
/// Bound on each provisioning wait (TCG, OVMF, two machines on a loaded host).
const STATE_TIMEOUT: Duration = Duration::from_secs(600);
const ADMIN_PASSWORD: &str = "e2e-admin-password";
/// The virtual media machine's address from its `network_data`.
const STATIC_IP: &str = "10.99.0.50";

/// The README's configuration file, made to fit the test's namespace.
fn readme_config(dir: &Path, ramdisk_dir: &Path) -> String {
    let readme = include_str!("../README.md");
    let start = readme
        .find("`/etc/ironic/ironic.toml`:")
        .expect("README: the Deploy a real server section names /etc/ironic/ironic.toml");
    let block = &readme[start..];
    let block = &block[block.find("```toml\n").expect("its toml block") + 8..];
    let block = &block[..block.find("```").unwrap()];
    let d = |p: &str| dir.join(p).display().to_string();
    block
        .replace("\"192.0.2.10\"", &format!("\"{SERVER_IP}\""))
        .replace("192.0.2.", "10.99.0.")
        .replace("\"eno2\"", &format!("\"{BRIDGE}\""))
        .replace("/etc/ironic/htpasswd", &d("htpasswd"))
        .replace("/var/lib/ironic", &d("ironic-data"))
        .replace("/srv/ironic/images", &d("images"))
        .replace("/srv/ironic/ramdisk", &ramdisk_dir.display().to_string())
}

/// A GPT whole-disk image whose ESP holds a GRUB (`\EFI\BOOT\BOOTX64.EFI`) that
/// prints `marker` on the serial console; made with sfdisk, mkfs.vfat, mtools
/// and grub-mkimage. Returns its SHA-256.
fn uefi_whole_disk_image(dir: &Path, path: &Path, marker: &str) -> String {
    let cfg = dir.join("wd-embed.cfg");
    std::fs::write(
        &cfg,
        format!(
            "serial --unit=0 --speed=115200\nterminal_output serial\necho {marker}\nsleep 86400\n"
        ),
    )
    .unwrap();
    let efi = dir.join("BOOTX64.EFI");
    run(
        Command::new(tool("grub-mkimage", "grub-common"))
            .args([
                "-d",
                "/usr/lib/grub/x86_64-efi",
                "-O",
                "x86_64-efi",
                "-p",
                "/EFI/BOOT",
                "-c",
            ])
            .arg(&cfg)
            .arg("-o")
            .arg(&efi)
            .args(["serial", "terminal", "echo", "sleep"]),
        "grub-mkimage",
    );
    let esp = dir.join("wd-esp.fat");
    std::fs::File::create(&esp)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    run(
        Command::new(tool("mkfs.vfat", "dosfstools"))
            .args(["-n", "EFI"])
            .arg(&esp),
        "mkfs.vfat",
    );
    let e = esp.to_str().unwrap();
    run(
        Command::new(tool("mmd", "mtools")).args(["-i", e, "::/EFI", "::/EFI/BOOT"]),
        "mmd",
    );
    run(
        Command::new(tool("mcopy", "mtools"))
            .args(["-i", e])
            .arg(&efi)
            .arg("::/EFI/BOOT/BOOTX64.EFI"),
        "mcopy",
    );
    std::fs::File::create(path)
        .unwrap()
        .set_len(40 << 20)
        .unwrap();
    let mut sf = Command::new(tool("sfdisk", "fdisk"))
        .args(["-q"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        sf.stdin
            .take()
            .unwrap()
            .write_all(
                b"label: gpt\nstart=2048, size=65536, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n",
            )
            .unwrap();
    }
    assert!(sf.wait().unwrap().success(), "sfdisk");
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.write_all_at(&std::fs::read(&esp).unwrap(), 1 << 20)
            .unwrap();
    }
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// An ext4 partition image whose /boot/grub/grub.cfg prints `marker`.
fn partition_image(dir: &Path, path: &Path, marker: &str) -> String {
    let tree = dir.join("part-tree");
    std::fs::create_dir_all(tree.join("boot/grub")).unwrap();
    std::fs::write(
        tree.join("boot/grub/grub.cfg"),
        format!(
            "serial --unit=0 --speed=115200\nterminal_output serial\necho {marker}\nsleep 86400\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::write(tree.join("etc/hostname"), "vm-part\n").unwrap();
    std::fs::File::create(path)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    run(
        Command::new(tool("mkfs.ext4", "e2fsprogs"))
            .args(["-q", "-F", "-d"])
            .arg(&tree)
            .arg(path),
        "mkfs.ext4",
    );
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn ironic_serve_deploys_uefi_and_bios_machines_with_the_readme_config() {
    tool("qemu-system-x86_64", "qemu-system-x86");
    need_file("/usr/share/OVMF/OVMF_CODE_4M.fd", "ovmf");
    need_file("/usr/lib/ipxe/qemu/efi-virtio.rom", "ipxe-qemu");
    need_file("/usr/lib/ipxe/snponly.efi", "ipxe");
    need_file("/usr/lib/grub/x86_64-efi/kernel.img", "grub-efi-amd64-bin");
    tool("ipmi_sim", "openipmi");
    tool("htpasswd", "apache2-utils");
    tool("ip", "iproute2");

    let started = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_owned();
    // The ramdisk, as the README builds it.
    let agent = ramdisk::static_agent();
    let rd = dir.join("ramdisk");
    let out = Command::new(env!("CARGO_BIN_EXE_ironic"))
        .args(["ramdisk", "build", "--output"])
        .arg(&rd)
        .arg("--agent")
        .arg(&agent)
        .arg("--cache")
        .arg(target_dir().join("ramdisk-cache"))
        .arg("--iso-kernel-params")
        .arg(format!("ipa-api-url=http://{SERVER_IP}:{API_PORT}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ironic ramdisk build: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "ramdisk built after {:?}:\n{}",
        started.elapsed(),
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::create_dir_all(dir.join("images")).unwrap();
    let config = dir.join("ironic.toml");
    std::fs::write(&config, readme_config(&dir, &rd)).unwrap();
    run(
        Command::new("htpasswd")
            .args(["-B", "-c", "-b"])
            .arg(dir.join("htpasswd"))
            .args(["admin", ADMIN_PASSWORD]),
        "htpasswd",
    );

    let mut net = LabNet::new();
    let taps = [net.tap(), net.tap(), net.tap(), net.tap()];
    let result = net.run_inside(move || {
        // `ironic serve` in the namespace (a child of this thread).
        let log = dir.join("ironic.log");
        let child = Command::new(env!("CARGO_BIN_EXE_ironic"))
            .args(["serve", "--config"])
            .arg(&config)
            .env(
                "IRONIC__BOOT__KERNEL_APPEND_PARAMS",
                // TCG on a loaded host fails the kernel's IO-APIC timer check.
                "nofb vga=normal no_timer_check",
            )
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("ironic.err")).unwrap())
            .spawn()
            .expect("start ironic serve");
        let serve = ChildGuard(child);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(scenario(dir.clone(), taps))
        }));
        drop(rt);
        drop(serve);
        if let Err(p) = r {
            let tail = |f: &str| {
                let t = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
                let lines: Vec<&str> = t.lines().collect();
                lines[lines.len().saturating_sub(60)..].join("\n")
            };
            eprintln!(
                "ironic serve's log (tail):\n{}\n{}",
                tail("ironic.log"),
                tail("ironic.err")
            );
            std::panic::resume_unwind(p);
        }
    });
    drop(net);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    eprintln!("done in {:?}", started.elapsed());
}

struct Vm {
    name: &'static str,
    mac: &'static str,
    server: SimServer,
    machine: QemuMachine,
    marker: String,
    /// Firmware mode the deploy must boot the disk in.
    mode: BootMode,
    /// Where the ramdisk must boot from.
    ramdisk_from_cd: bool,
}

async fn scenario(dir: PathBuf, taps: [String; 4]) {
    let base = format!("http://{SERVER_IP}:{API_PORT}");
    let api = Api::new(&base, STATE_TIMEOUT).with_basic_auth("admin", ADMIN_PASSWORD);
    // the service answers (its root needs no auth)
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.http.get(&base).send().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "ironic serve did not answer on {base}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let password = format!("pw-{}", std::process::id());
    let mk = |name: &'static str, mac: &'static str, tap: &str, disk_size: u64, mode: BootMode| {
        let disk = dir.join(format!("{name}.disk"));
        std::fs::File::create(&disk)
            .unwrap()
            .set_len(disk_size)
            .unwrap();
        let server = SimServer::new(ServerSpec {
            name: name.into(),
            uuid: uuid::Uuid::new_v4(),
            macs: vec![mac.parse().unwrap()],
            disk: disk.clone(),
            disk_size,
            cpus: 1,
            memory_mib: 768,
            username: ipmi_bmc::USER.into(),
            password: Secret::new(password.clone()),
        });
        server.set_boot_override(None, None, Some(mode));
        let machine = QemuMachine::spawn(
            server.clone(),
            VmSpec {
                name: name.into(),
                mac: mac.into(),
                tap: tap.into(),
                disk,
                dir: dir.clone(),
                memory_mib: 768,
            },
        );
        Vm {
            name,
            mac,
            server,
            machine,
            marker: format!("IRONIC-SERVE-{name}-{:08x}", rand::random::<u32>()),
            mode,
            ramdisk_from_cd: name == "vm-vmedia",
        }
    };
    let uefi = BootMode::Uefi;
    let vm_wd = mk(
        "vm-wholedisk",
        "52:54:00:e2:e1:01",
        &taps[0],
        64 << 20,
        uefi,
    );
    // root_gb = 1 after a 550 MiB ESP
    let vm_part = mk(
        "vm-partition",
        "52:54:00:e2:e1:02",
        &taps[1],
        1700 << 20,
        uefi,
    );
    let vm_cd = mk("vm-vmedia", "52:54:00:e2:e1:03", &taps[2], 64 << 20, uefi);
    // root_gb = 1 in an MBR
    let vm_bios = mk(
        "vm-bios",
        "52:54:00:e2:e1:04",
        &taps[3],
        1200 << 20,
        BootMode::Legacy,
    );
    let redfish = RedfishSim::start(
        "127.0.0.1:0".parse().unwrap(),
        vec![
            vm_wd.server.clone(),
            vm_cd.server.clone(),
            vm_bios.server.clone(),
        ],
    )
    .await
    .expect("Redfish simulator");
    let ipmi = IpmiBmc::start(vm_part.server.clone(), IPMI_PORT, &password, &dir).await;

    // The images, on the boot HTTP server ([boot] root).
    let images = dir.join("images");
    let wd_sha = uefi_whole_disk_image(&dir, &images.join("wholedisk.raw"), &vm_wd.marker);
    let part_sha = partition_image(&dir, &images.join("root.ext4"), &vm_part.marker);
    let cd_sha = uefi_whole_disk_image(&dir, &images.join("vmedia-disk.raw"), &vm_cd.marker);
    let bios_sha = partition_image(&dir, &images.join("root-bios.ext4"), &vm_bios.marker);
    let boot_url = format!("{base}/boot");

    let wd_node = json!({
        "name": vm_wd.name, "driver": "redfish", "boot_interface": "ipxe",
        "properties": {"capabilities": "boot_mode:uefi"},
        "driver_info": {
            "redfish_address": redfish.url(),
            "redfish_system_id": format!("/redfish/v1/Systems/{}", vm_wd.name),
            "redfish_username": ipmi_bmc::USER, "redfish_password": password,
        },
    });
    let wd_image = json!({
        "image_source": format!("{boot_url}/wholedisk.raw"),
        "image_checksum": format!("sha256:{wd_sha}"),
    });
    let part_node = json!({
        "name": vm_part.name, "driver": "ipmi", "boot_interface": "pxe",
        // the agent would shred the 1.7 GiB disk under TCG
        "automated_clean": false,
        "properties": {"capabilities": "boot_mode:uefi"},
        "driver_info": {
            "ipmi_address": "127.0.0.1", "ipmi_port": ipmi.port,
            "ipmi_username": ipmi_bmc::USER, "ipmi_password": password,
            "ipmi_cipher_suite": 3,
        },
    });
    let part_image = json!({
        "image_source": format!("{boot_url}/root.ext4"),
        "image_checksum": format!("sha256:{part_sha}"),
        "kernel": format!("{boot_url}/vmlinuz"), "ramdisk": format!("{boot_url}/initrd"),
        "root_gb": "1",
    });
    let cd_node = json!({
        "name": vm_cd.name, "driver": "redfish", "boot_interface": "redfish-virtual-media",
        "properties": {"capabilities": "boot_mode:uefi"},
        // Outside the DHCP pool (README: .100-.199).
        "network_data": {
            "links": [{"id": "nic0", "type": "phy", "ethernet_mac_address": vm_cd.mac}],
            "networks": [{"id": "prov", "type": "ipv4", "link": "nic0",
                          "ip_address": STATIC_IP, "netmask": "255.255.255.0",
                          "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": SERVER_IP}]}],
            "services": [{"type": "dns", "address": SERVER_IP}],
        },
        "driver_info": {
            "redfish_address": redfish.url(),
            "redfish_system_id": format!("/redfish/v1/Systems/{}", vm_cd.name),
            "redfish_username": ipmi_bmc::USER, "redfish_password": password,
        },
    });
    let cd_image = json!({
        "image_source": format!("{boot_url}/vmedia-disk.raw"),
        "image_checksum": format!("sha256:{cd_sha}"),
    });
    let bios_node = json!({
        "name": vm_bios.name, "driver": "redfish", "boot_interface": "pxe",
        "automated_clean": false,
        "properties": {"capabilities": "boot_mode:bios"},
        "driver_info": {
            "redfish_address": redfish.url(),
            "redfish_system_id": format!("/redfish/v1/Systems/{}", vm_bios.name),
            "redfish_username": ipmi_bmc::USER, "redfish_password": password,
        },
    });
    let bios_image = json!({
        "image_source": format!("{boot_url}/root-bios.ext4"),
        "image_checksum": format!("sha256:{bios_sha}"),
        "kernel": format!("{boot_url}/vmlinuz"), "ramdisk": format!("{boot_url}/initrd"),
        "root_gb": "1",
    });
    let t0 = Instant::now();
    let (r1, r2, r3, r4) = tokio::join!(
        lifecycle(&api, &vm_wd, wd_node, wd_image, true, t0),
        lifecycle(&api, &vm_part, part_node, part_image, false, t0),
        lifecycle(&api, &vm_cd, cd_node, cd_image, true, t0),
        lifecycle(&api, &vm_bios, bios_node, bios_image, false, t0),
    );
    if r1.is_err() || r2.is_err() || r3.is_err() || r4.is_err() {
        let report = |vm: &Vm| format!("{}\n{}", vm.machine.events(), vm.machine.consoles());
        panic!(
            "deploy failed:\n{}: {r1:?}\n{}: {r2:?}\n{}: {r3:?}\n{}: {r4:?}\n\n{}\n{}\n{}\n{}\nipmi_sim chassis_control calls:\n{}",
            vm_wd.name,
            vm_part.name,
            vm_cd.name,
            vm_bios.name,
            report(&vm_wd),
            report(&vm_part),
            report(&vm_cd),
            report(&vm_bios),
            ipmi.calls()
        );
    }
    for (vm, r) in [(&vm_wd, r1), (&vm_part, r2), (&vm_cd, r3), (&vm_bios, r4)] {
        eprintln!("{}: {}", vm.name, r.unwrap());
    }
    vm_wd.machine.shutdown().await;
    vm_part.machine.shutdown().await;
    vm_cd.machine.shutdown().await;
    vm_bios.machine.shutdown().await;
}

/// Enroll, manage, provide, deploy, check the boot from disk, undeploy.
/// Returns the deploy's timings.
async fn lifecycle(
    api: &Api,
    vm: &Vm,
    body: Value,
    image: Value,
    whole_disk: bool,
    t0: Instant,
) -> Result<String, String> {
    // The whole-disk machine is cleaned (a 64 MiB disk); the partition one has
    // automated cleaning off.
    let cleaning = whole_disk;
    let say = |what: &str| eprintln!("[{:>6.1}s {}] {what}", t0.elapsed().as_secs_f64(), vm.name);
    let node = api.post("/v1/nodes", body).await?;
    let uuid = node["uuid"].as_str().ok_or("no uuid")?.to_owned();
    api.post(
        "/v1/ports",
        json!({"node_uuid": uuid, "address": vm.mac, "pxe_enabled": true}),
    )
    .await?;
    api.provision(&uuid, json!({"target": "manage"})).await?;
    api.wait_state(&uuid, "manageable", vm.name).await?;
    api.provision(&uuid, json!({"target": "provide"})).await?;
    api.wait_state(&uuid, "available", vm.name).await?;
    say("available");
    let ops: Vec<Value> = image
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| json!({"op": "add", "path": format!("/instance_info/{k}"), "value": v}))
        .collect();
    api.patch(&uuid, Value::Array(ops)).await?;
    let requested = Instant::now();
    api.provision(&uuid, json!({"target": "active"})).await?;
    let (heartbeat, agent_url) = api.wait_state(&uuid, "active", vm.name).await?;
    // The ramdisk of the node with network_data took its static address.
    if vm.name == "vm-vmedia" {
        let url = agent_url.unwrap_or_default();
        if !url.contains(&format!("//{STATIC_IP}:")) {
            return Err(format!(
                "the agent called back from {url:?}, not the network_data address {STATIC_IP}"
            ));
        }
        let console = ramdisk_console(vm, requested);
        if !console.contains("network configured from /openstack/latest/network_data.json") {
            return Err(format!(
                "the ramdisk did not apply its network_data:\n{console}"
            ));
        }
    }
    let active = requested.elapsed();
    // The first boot after the request is the ramdisk's (the next one, the disk's).
    let boots = vm.machine.boots();
    let ramdisk_boot = boots
        .iter()
        .find(|b| b.at > requested)
        .ok_or("no boot after the deploy request")?;
    let expected = if vm.ramdisk_from_cd {
        matches!(ramdisk_boot.source, BootSource::VirtualMedia(_))
    } else {
        ramdisk_boot.source == BootSource::Network
    };
    if !expected {
        return Err(format!(
            "the deploy booted the ramdisk from {:?}",
            ramdisk_boot.source
        ));
    }
    let power_on = ramdisk_boot.at - requested;
    let heartbeat = heartbeat.ok_or("active without a heartbeat seen (no agent_url)")?;
    if heartbeat < power_on {
        return Err(format!(
            "agent_url seen {heartbeat:?} after the deploy request, before the ramdisk booted ({power_on:?}): not wiped since cleaning"
        ));
    }
    let timings = format!(
        "deploy request -> power-on {:.1} s -> first heartbeat +{:.1} s -> active +{:.1} s (power-on to active {:.1} s, ramdisk from {:?}, {:?})",
        power_on.as_secs_f64(),
        heartbeat.saturating_sub(power_on).as_secs_f64(),
        active.saturating_sub(heartbeat).as_secs_f64(),
        active.saturating_sub(power_on).as_secs_f64(),
        match &ramdisk_boot.source {
            BootSource::VirtualMedia(_) => "virtual CD",
            BootSource::Network => "network",
            _ => "?",
        },
        ramdisk_boot.mode,
    );
    say(&format!("active: {timings}"));
    // The machine boots the deployed disk in its firmware mode and prints the marker.
    let boots = vm
        .machine
        .wait_disk_marker(&vm.marker, Duration::from_secs(300))
        .await?;
    let last = boots.last().expect("a boot");
    if last.mode != vm.mode {
        return Err(format!("booted the disk in {:?} mode", last.mode));
    }
    say(&format!(
        "booted the deployed image from its disk ({:?}, marker on the console)",
        vm.mode
    ));
    let n = api.get(&format!("/v1/nodes/{uuid}")).await?;
    let dii = &n["driver_internal_info"];
    if dii["is_whole_disk_image"] != json!(whole_disk) {
        return Err(format!("driver_internal_info: {dii}"));
    }
    api.provision(&uuid, json!({"target": "deleted"})).await?;
    api.wait_state(&uuid, "available", vm.name).await?;
    say(if cleaning {
        "undeployed and cleaned"
    } else {
        "undeployed"
    });
    Ok(timings)
}

/// The console of the machine's first boot after `since` (the ramdisk's).
fn ramdisk_console(vm: &Vm, since: Instant) -> String {
    vm.machine
        .boots()
        .iter()
        .find(|b| b.at > since)
        .map(|b| clean(&b.console()))
        .unwrap_or_default()
}
